//! `api: "ollama"`: Ollama's own `/api/chat`, against the test kit's replay
//! of Ollama's wire format (no Ollama installs here): a whole answer, a
//! stream, thinking apart from the answer, a tool round trip, the request
//! Ollama gets (`num_ctx` from the budget, `keep_alive`, `truncate: false`,
//! `tool_name`), and Ollama's failures (overflow, model not found, no tool
//! support, out of memory, a runner dying mid-stream), plus the probe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{stream_all, target};
use pincer_llm::{
    ChatRequest, Client, Dialect, ErrorKind, Event, FinishReason, LoadState, Message,
    ReasoningEffort, Reply, ServerKind, Target, Tool, ToolCall,
};
use pincer_testkit::{OllamaModel, OllamaReplay};
use serde_json::{Value, json};

fn ollama() -> OllamaReplay {
    let mut cold = OllamaModel::new("qwen3:0.6b", 40960, &["completion", "tools", "thinking"]);
    cold.loaded = false;
    let mut big = OllamaModel::new("llama3.3:70b", 131072, &["completion", "tools"]);
    big.loaded = false;
    big.too_big = true;
    let mut broken = OllamaModel::new("flaky:latest", 8192, &["completion"]);
    broken.breaks = true;
    OllamaReplay::start(vec![
        OllamaModel::new("smollm2:135m", 8192, &["completion"]),
        cold,
        big,
        broken,
    ])
}

fn on(server: &OllamaReplay, model: &str) -> Target {
    // A `/v1` left on the URL (as for Ollama's OpenAI endpoint) is dropped.
    let mut t = target(Dialect::Ollama, &format!("{}/v1", server.base_url()), None);
    t.model_id = model.into();
    t.reference = format!("ollama/{model}");
    t.context_window = 6000;
    t
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("Be brief."), Message::user("Hi")],
        max_tokens: Some(40),
        temperature: Some(0.2),
        ..ChatRequest::default()
    }
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: "The weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"]}),
    }
}

#[tokio::test]
async fn a_whole_answer_and_the_request_ollama_gets() {
    let server = ollama();
    let mut t = on(&server, "smollm2:135m");
    t.params = Some(json!({"keep_alive": "30m", "top_k": 20, "num_ctx": 3000,
        "num_predict": 9999, "temperature": 1.5}));
    let reply = Client::new().unwrap().complete(&t, &hello()).await.unwrap();
    assert!(
        reply
            .text
            .starts_with("Hello from the replayed Ollama model")
    );
    assert_eq!(reply.finish, Some(FinishReason::Stop));
    assert!(reply.usage.input > 0 && reply.usage.output > 0, "{reply:?}");

    let body = &server.chats()[0];
    assert_eq!(body["model"], "smollm2:135m");
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    // The request's cap and temperature win over the model's params.
    assert_eq!(body["options"]["num_predict"], 40);
    let temperature = body["options"]["temperature"].as_f64().unwrap();
    assert!((temperature - 0.2).abs() < 1e-6, "{temperature}");
    // The model's params: its own num_ctx over the budget, Ollama options,
    // and keep_alive on the body.
    assert_eq!(body["options"]["num_ctx"], 3000);
    assert_eq!(body["options"]["top_k"], 20);
    assert_eq!(body["keep_alive"], "30m");
    // A local Ollama refuses an overflow rather than cutting the start.
    assert_eq!(body["truncate"], false);
    assert!(body.get("think").is_none(), "not a reasoning model");
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn a_stream_sets_num_ctx_from_the_budget() {
    let server = ollama();
    let t = on(&server, "smollm2:135m");
    let events = stream_all(&t, &hello()).await.unwrap();
    let reply = Reply::from_events(&events);
    assert_eq!(
        reply.text,
        "Hello from the replayed Ollama model, nice to meet you."
    );
    let texts = events
        .iter()
        .filter(|e| matches!(e, Event::Text { .. }))
        .count();
    assert!(texts > 3, "streamed word by word: {events:?}");
    assert!(matches!(events.last(), Some(Event::Done { .. })));
    let body = &server.chats()[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"]["num_ctx"], 6000);
}

#[tokio::test]
async fn thinking_stays_apart_from_the_answer() {
    let server = ollama();
    let mut t = on(&server, "qwen3:0.6b");
    t.reasoning = true;
    let req = ChatRequest {
        reasoning_effort: Some(ReasoningEffort::Minimal),
        ..hello()
    };
    let reply = Reply::from_events(&stream_all(&t, &req).await.unwrap());
    assert_eq!(
        reply.reasoning,
        "The user wants an answer. I will give one."
    );
    assert!(reply.text.starts_with("Hello from"), "{reply:?}");
    assert!(!reply.text.contains("The user wants"));
    assert_eq!(server.chats()[0]["think"], "low");
}

#[tokio::test]
async fn a_tool_round_trip() {
    let server = ollama();
    let t = on(&server, "qwen3:0.6b");
    let mut req = ChatRequest {
        messages: vec![Message::user("Paris")],
        tools: vec![weather_tool()],
        ..ChatRequest::default()
    };
    let reply = Reply::from_events(&stream_all(&t, &req).await.unwrap());
    assert_eq!(reply.finish, Some(FinishReason::ToolCalls));
    assert_eq!(reply.tool_calls.len(), 1);
    let call = &reply.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.id, "call_k3j9x0a1");
    let args: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let sent = &server.chats()[0];
    assert_eq!(
        sent["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather",
            "description": "The weather in a city", "parameters": weather_tool().parameters}})
    );

    // The result goes back as Ollama takes it: the call with its arguments
    // as an object, the result named by its tool.
    req.messages.push(reply.as_message());
    req.messages.push(Message::Tool {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content: "11 degrees".into(),
        is_error: false,
    });
    let reply = Reply::from_events(&stream_all(&t, &req).await.unwrap());
    assert_eq!(reply.text, "The get_weather tool said: 11 degrees");
    let sent = &server.chats()[1];
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": {"city": "Paris"}})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "11 degrees", "tool_name": "get_weather"})
    );
}

#[tokio::test]
async fn calls_without_ids_get_ids_of_their_own() {
    // Older Ollama versions send calls without `id`.
    let line = r#"{"model":"m","created_at":"2026-09-30T10:12:31Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{}}},{"function":{"name":"b","arguments":{"x":1}}}]},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":3}"#;
    let mut d = Dialect::Ollama.stream_decoder();
    let events = d.feed(format!("{line}\n").as_bytes()).unwrap();
    let reply = Reply::from_events(&events);
    let ids: Vec<&str> = reply.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| i.starts_with("call_")) && ids[0] != ids[1]);
    assert_eq!(reply.tool_calls[1].arguments, r#"{"x":1}"#);
    assert_eq!(reply.finish, Some(FinishReason::ToolCalls));
    assert_eq!((reply.usage.input, reply.usage.output), (9, 3));
}

#[tokio::test]
async fn the_forbidden_turn_sends_no_tools() {
    let server = ollama();
    let t = on(&server, "qwen3:0.6b");
    let req = ChatRequest {
        tools: vec![weather_tool()],
        tool_choice: Some(pincer_llm::ToolChoice::None),
        ..hello()
    };
    stream_all(&t, &req).await.unwrap();
    assert!(server.chats()[0].get("tools").is_none());
}

#[tokio::test]
async fn ollamas_failures_are_typed() {
    let server = ollama();
    let err = |model: &str, req: ChatRequest| {
        let t = on(&server, model);
        async move { stream_all(&t, &req).await.unwrap_err() }
    };
    let e = err("nope:1b", hello()).await;
    assert_eq!(e.kind, ErrorKind::ModelNotFound, "{e:?}");
    assert!(e.message.contains("model 'nope:1b' not found"));

    let long = ChatRequest {
        messages: vec![Message::user("word ".repeat(40_000))],
        ..hello()
    };
    let e = err("smollm2:135m", long).await;
    assert_eq!(e.kind, ErrorKind::ContextOverflow, "{e:?}");

    let tools = ChatRequest {
        tools: vec![weather_tool()],
        ..hello()
    };
    let e = err("smollm2:135m", tools).await;
    assert!(e.message.contains("does not support tools"), "{e:?}");

    let e = err("llama3.3:70b", hello()).await;
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.message.contains("requires more system memory"));

    // The runner dies after the first words: those words, then the error.
    let t = on(&server, "flaky:latest");
    let mut s = Client::new().unwrap().stream(&t, &hello()).await.unwrap();
    let mut text = String::new();
    let failure = loop {
        match s.next().await {
            Some(Ok(Event::Text { delta })) => text.push_str(&delta),
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("no error"),
        }
    };
    assert_eq!(text, "Hello from ");
    assert_eq!(failure.kind, ErrorKind::Server);
    assert!(failure.message.contains("unexpectedly stopped"));
}

#[tokio::test]
async fn a_stream_without_its_done_line_is_incomplete() {
    let mut d = Dialect::Ollama.stream_decoder();
    let events = d
        .feed(b"{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n")
        .unwrap();
    assert_eq!(events, vec![Event::Text { delta: "Hi".into() }]);
    let e = d.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    // A line that is not Ollama's is refused, not read as nothing.
    let mut d = Dialect::Ollama.stream_decoder();
    assert_eq!(d.feed(b"{}\n").unwrap_err().kind, ErrorKind::Protocol);
}

#[tokio::test]
async fn a_cut_reply_says_so() {
    let server = ollama();
    let t = on(&server, "smollm2:135m");
    let req = ChatRequest {
        max_tokens: Some(3),
        ..hello()
    };
    let reply = Reply::from_events(&stream_all(&t, &req).await.unwrap());
    assert_eq!(reply.finish, Some(FinishReason::Length));
    assert_eq!(reply.text, "Hello from the ");
}

#[tokio::test]
async fn the_probe_asks_ollamas_own_api() {
    let server = ollama();
    let client = Client::new().unwrap();
    let limit = Duration::from_secs(3);

    let r = client.probe(&on(&server, "smollm2:135m"), limit).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.server, Some(ServerKind::Ollama));
    assert_eq!(r.listed, Some(true));
    assert_eq!(r.state, Some(LoadState::Loaded));
    assert_eq!(r.max_context, Some(8192));
    assert_eq!(
        r.capabilities.as_deref(),
        Some(&["completion".to_string()][..])
    );
    // Pincer sets the context per request: what a loaded model runs with
    // now is no limit.
    assert_eq!(r.context_limit, None);

    let r = client.probe(&on(&server, "qwen3:0.6b"), limit).await;
    assert_eq!(r.state, Some(LoadState::Cold));
    assert!(r.capabilities.unwrap().contains(&"thinking".to_string()));

    let r = client.probe(&on(&server, "qwen3"), limit).await;
    assert_eq!(r.listed, Some(false));
    assert!(r.models.contains(&"qwen3:0.6b".to_string()));

    // Down: a connection error, not a hang.
    drop(server);
    let t = on(&OllamaReplay::start(Vec::new()), "x");
    let mut t2 = t.clone();
    t2.base_url = format!("http://127.0.0.1:{}", pincer_testkit::free_port());
    let r = client.probe(&t2, limit).await;
    assert_eq!(r.error.map(|e| e.kind), Some(ErrorKind::Connection));
}

#[test]
fn assistant_calls_keep_their_arguments_as_objects() {
    let t = target(Dialect::Ollama, "http://127.0.0.1:11434", None);
    let req = ChatRequest {
        messages: vec![Message::Assistant {
            text: String::new(),
            reasoning: None,
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "read".into(),
                arguments: "not json".into(),
            }],
        }],
        ..ChatRequest::default()
    };
    let wire = pincer_llm::WireRequest {
        model_id: "m",
        req: &req,
        max_tokens: 10,
        context_window: 100,
        stream: true,
        reasoning: false,
        local: true,
        compat: &t.compat,
        params: None,
    };
    let body = Dialect::Ollama.body(&wire);
    // Arguments that are not an object go as an empty one, never a string.
    assert_eq!(
        body["messages"][0]["tool_calls"][0]["function"]["arguments"],
        json!({})
    );
    assert_eq!(
        Dialect::Ollama.url("http://127.0.0.1:11434/v1/"),
        "http://127.0.0.1:11434/api/chat"
    );
}
