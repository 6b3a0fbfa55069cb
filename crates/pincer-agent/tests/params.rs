//! A model's `params` from `agents.defaults.models` (OpenRouter's
//! `provider` routing, `temperature`, `extra_body`) go out with each
//! request, against a scripted upstream that answers in OpenRouter's reply
//! shape; the provider that served the answer is kept in the transcript.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use pincer_agent::Delivery;
use pincer_config::{Env, load_text};
use pincer_testkit::{FakeUpstream, Step, sse_head};
use pincer_types::Message;
use serde_json::Value;

/// OpenRouter's streamed reply: every chunk names the model and the
/// provider that served it; usage comes in the last chunk.
fn openrouter_stream(text: &str, provider: &str) -> Vec<Step> {
    let mut b = sse_head();
    let chunk = |delta: &str, finish: &str, usage: &str| {
        format!(
            r#"data: {{"id":"gen-1","provider":"{provider}","model":"minimax/minimax-m2.1","object":"chat.completion.chunk","created":1,"choices":[{{"index":0,"delta":{delta},"finish_reason":{finish},"native_finish_reason":{finish}}}]{usage}}}"#
        ) + "\n\n"
    };
    b.extend(chunk(r#"{"role":"assistant","content":""}"#, "null", "").as_bytes());
    b.extend(chunk(&format!(r#"{{"content":"{text}"}}"#), "null", "").as_bytes());
    b.extend(
        chunk(
            "{}",
            r#""stop""#,
            r#","usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}"#,
        )
        .as_bytes(),
    );
    b.extend(b"data: [DONE]\n\n");
    vec![Step::Send(b)]
}

#[tokio::test]
async fn openrouter_routing_goes_out_and_the_serving_provider_is_kept() {
    let up = FakeUpstream::start(vec![openrouter_stream("Bonjour", "DeepInfra")]);
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ openrouter: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "minimax/minimax-m2.1", contextWindow: 8192, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "openrouter/minimax/minimax-m2.1" }},
    models: {{ "openrouter/minimax/minimax-m2.1": {{ params: {{
      provider: {{ order: ["deepinfra", "together"], allow_fallbacks: false, data_collection: "deny", max_price: {{ prompt: 1 }} }},
      temperature: 0.3, extra_body: {{ transforms: ["middle-out"], temperature: 2, tool_choice: "required", stream: false }} }} }} }} }} }} }}"#,
        up.base_url()
    );
    // No warning either: every key is one Pincer reads.
    let loaded = load_text(&text, Path::new("/x/openclaw.json"), &Env::from_pairs(&[]));
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let rt = common::runtime(&text, state.path());
    let d = Delivery {
        agent: "main".into(),
        session_key: "agent:main:or".into(),
        input: vec![Message::user("Say hello in French")],
        agent_prompt: true,
        ..Delivery::default()
    };
    let (done, _) = common::deliver(&rt, d).await;
    let done = done.unwrap();
    assert_eq!(done.final_text.as_deref(), Some("Bonjour"));
    assert_eq!(done.reply.served_by.as_deref(), Some("DeepInfra"));

    let body: Value = serde_json::from_str(&up.requests()[0].body).unwrap();
    assert_eq!(body["provider"]["order"][0], "deepinfra");
    assert_eq!(body["provider"]["allow_fallbacks"], false);
    assert_eq!(body["provider"]["data_collection"], "deny");
    assert_eq!(body["transforms"][0], "middle-out");
    // extra_body never sets a field Pincer decides.
    assert!(body.get("tool_choice").is_none());
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["temperature"].as_f64().map(|t| (t * 10.0).round()),
        Some(3.0)
    );

    let store = &rt.stores()["main"];
    let e = store.get("agent:main:or").unwrap();
    let events = store.transcript(&e.session_id).unwrap().events;
    let assistant = events
        .iter()
        .find(|e| e["message"]["role"] == "assistant")
        .unwrap();
    assert_eq!(assistant["message"]["upstreamProvider"], "DeepInfra");
}

#[test]
fn a_routing_preference_of_the_wrong_type_is_an_error_with_its_line() {
    let text = r#"{ agents: { defaults: { models: { "openrouter/x": { params: {
  provider: { order: "deepinfra", allow_fallbacks: "no", sort: "cheapest", max_price: { prompt: -1 } } } } } } } }"#;
    let loaded = load_text(text, Path::new("/x/openclaw.json"), &Env::from_pairs(&[]));
    let errors: Vec<String> = loaded.errors().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    for key in ["order", "allow_fallbacks", "sort", "max_price.prompt"] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("params.provider.{key}"))
                    && e.contains("openclaw.json:2:")),
            "{key}: {errors:?}"
        );
    }
}
