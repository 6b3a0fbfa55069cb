//! How a request's sampling and tool settings are written in each dialect's
//! body: the field names and shapes each API documents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_llm::{ChatRequest, Dialect, Message, ReasoningEffort, Tool, ToolChoice, WireRequest};
use serde_json::{Value, json};

fn weather() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: "Current weather for a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

fn body(dialect: Dialect, req: &ChatRequest, reasoning: bool) -> Value {
    dialect.body(&WireRequest {
        model_id: "m",
        req,
        max_tokens: 4096,
        context_window: 8192,
        stream: false,
        reasoning,
        local: false,
        compat: &Default::default(),
        params: None,
    })
}

fn with_choice(choice: Option<ToolChoice>) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("Weather in Paris?")],
        tools: vec![weather()],
        tool_choice: choice,
        ..ChatRequest::default()
    }
}

#[test]
fn tool_choice_takes_each_dialects_shape() {
    let named = Some(ToolChoice::Tool("get_weather".into()));
    let cases = [
        (
            Dialect::OpenAiCompletions,
            [
                json!("auto"),
                json!("required"),
                json!({"type": "function", "function": {"name": "get_weather"}}),
            ],
        ),
        (
            Dialect::OpenAiResponses,
            [
                json!("auto"),
                json!("required"),
                json!({"type": "function", "name": "get_weather"}),
            ],
        ),
        (
            Dialect::AnthropicMessages,
            [
                json!({"type": "auto"}),
                json!({"type": "any"}),
                json!({"type": "tool", "name": "get_weather"}),
            ],
        ),
    ];
    for (dialect, [auto, required, tool]) in cases {
        let name = dialect.as_str();
        assert_eq!(
            body(dialect, &with_choice(None), false)["tool_choice"],
            auto,
            "{name}"
        );
        let b = body(dialect, &with_choice(Some(ToolChoice::Required)), false);
        assert_eq!(b["tool_choice"], required, "{name}");
        assert_eq!(
            body(dialect, &with_choice(named.clone()), false)["tool_choice"],
            tool,
            "{name}"
        );

        // No tools, no tool_choice: servers refuse one without the other.
        let mut bare = with_choice(Some(ToolChoice::Required));
        bare.tools.clear();
        let b = body(dialect, &bare, false);
        assert!(
            b.get("tool_choice").is_none() && b.get("tools").is_none(),
            "{name}: {b}"
        );
    }
}

#[test]
fn a_forced_tool_call_turns_anthropic_thinking_off() {
    let mut req = with_choice(Some(ToolChoice::Tool("get_weather".into())));
    req.reasoning_effort = Some(ReasoningEffort::High);
    let b = body(Dialect::AnthropicMessages, &req, true);
    assert!(b.get("thinking").is_none(), "{b}");
    req.tool_choice = Some(ToolChoice::Auto);
    let b = body(Dialect::AnthropicMessages, &req, true);
    assert_eq!(b["thinking"]["type"], "enabled", "{b}");
}

#[test]
fn sampling_settings_are_sent_where_the_api_has_them() {
    let req = ChatRequest {
        messages: vec![Message::user("Hi")],
        top_p: Some(0.5),
        seed: Some(42),
        frequency_penalty: Some(0.5),
        presence_penalty: Some(-0.5),
        ..ChatRequest::default()
    };
    let b = body(Dialect::OpenAiCompletions, &req, false);
    assert_eq!(b["top_p"], json!(0.5));
    assert_eq!(b["seed"], json!(42));
    assert_eq!(b["frequency_penalty"], json!(0.5));
    assert_eq!(b["presence_penalty"], json!(-0.5));
    // The Responses and Messages APIs have neither seed nor penalties.
    for dialect in [Dialect::OpenAiResponses, Dialect::AnthropicMessages] {
        let b = body(dialect, &req, false);
        assert_eq!(b["top_p"], json!(0.5), "{}", dialect.as_str());
        for absent in ["seed", "frequency_penalty", "presence_penalty"] {
            assert!(b.get(absent).is_none(), "{}: {absent}", dialect.as_str());
        }
    }
}

/// A completions body for a local server with `compat` set.
fn compat_body(compat: &pincer_config::Compat, stream: bool) -> Value {
    let mut tool = weather();
    tool.parameters = json!({"type": "object", "properties": {"city": {"type": "string",
        "pattern": "^[A-Z]", "maxLength": 65536, "description": "kept"}}});
    let req = ChatRequest {
        messages: vec![
            Message::system("be brief"),
            Message::user("Weather in Paris?"),
            Message::Assistant {
                text: String::new(),
                reasoning: None,
                tool_calls: vec![pincer_llm::ToolCall {
                    id: "c1".into(),
                    name: "get_weather".into(),
                    arguments: "{}".into(),
                }],
            },
            Message::Tool {
                call_id: "c1".into(),
                name: "get_weather".into(),
                content: "sunny".into(),
                is_error: false,
            },
        ],
        tools: vec![
            tool,
            Tool {
                name: "glob".into(),
                description: String::new(),
                parameters: json!({"type": "object", "required": ["pattern"],
                    "properties": {"pattern": {"type": "string", "pattern": "^[^/]"}}}),
            },
        ],
        temperature: Some(0.2),
        reasoning_effort: Some(ReasoningEffort::Low),
        ..ChatRequest::default()
    };
    Dialect::OpenAiCompletions.body(&WireRequest {
        model_id: "m",
        req: &req,
        max_tokens: 100,
        context_window: 8192,
        stream,
        reasoning: true,
        local: true,
        compat,
        params: None,
    })
}

#[test]
fn compat_flags_shape_a_completions_body() {
    use pincer_config::Compat;
    let plain = compat_body(&Compat::default(), true);
    assert_eq!(plain["max_tokens"], 100);
    assert!(plain.get("stream_options").is_some());
    assert_eq!(
        plain["temperature"].as_f64().map(|t| (t * 10.0).round()),
        Some(2.0)
    );
    assert_eq!(plain["reasoning_effort"], "low");
    assert_eq!(plain["messages"][0]["role"], "system");
    assert!(plain["messages"][3].get("name").is_none());
    assert_eq!(
        plain["tools"][0]["function"]["parameters"]["properties"]["city"]["pattern"],
        "^[A-Z]"
    );

    let c = Compat {
        supports_usage_in_streaming: Some(false),
        supports_reasoning_effort: Some(false),
        supports_temperature: Some(false),
        supports_developer_role: Some(true),
        requires_tool_result_name: Some(true),
        max_tokens_field: Some("max_completion_tokens".into()),
        tool_schema_profile: Some("llamacpp".into()),
        ..Compat::default()
    };
    let b = compat_body(&c, true);
    assert!(b.get("max_tokens").is_none());
    assert_eq!(b["max_completion_tokens"], 100);
    assert!(b.get("stream_options").is_none());
    assert!(b.get("temperature").is_none());
    assert!(b.get("reasoning_effort").is_none());
    assert_eq!(b["messages"][0]["role"], "developer");
    assert_eq!(b["messages"][3]["name"], "get_weather");
    let city = &b["tools"][0]["function"]["parameters"]["properties"]["city"];
    assert!(city.get("pattern").is_none() && city.get("maxLength").is_none());
    assert_eq!(city["description"], "kept");
    // A parameter that is called `pattern` is a parameter, not the keyword.
    let glob = b["tools"][1]["function"]["parameters"]["properties"]["pattern"].clone();
    assert_eq!(glob["type"], "string");
    assert!(glob.get("pattern").is_none());
    assert_eq!(
        b["tools"][1]["function"]["parameters"]["required"][0],
        "pattern"
    );
}
