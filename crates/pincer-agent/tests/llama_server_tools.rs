//! A real tool call from a real model: llama.cpp's `llama-server` (with
//! `--jinja`) serving SmolLM2-135M-Instruct, the only small model a
//! package ships. Its own chat template has no tools, and this llama.cpp
//! build neither enforces `tool_choice: "required"` for it nor takes a
//! grammar beside tools; so the server runs it with a ChatML template that
//! has Hermes' `<tool_call>` blocks and one example call
//! (`pincer-testkit/templates/smollm2-tools.jinja`). The model then calls
//! `read` on its own, llama.cpp parses the call into `tool_calls`, and
//! Pincer must run it, feed the result back and finish the turn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pincer_agent::{AgentEvent, Delivery};
use pincer_sessions::Body;
use pincer_testkit::LlamaServer;
use pincer_types::{ChatRequest, Message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn llama_server_makes_a_tool_call_that_pincer_runs() {
    let server = LlamaServer::start_with_tools(4096);
    let port = server.port;
    let state = tempfile::tempdir().unwrap();
    let ws = state.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("notes.txt"), "The code word is PINEAPPLE.\n").unwrap();
    // Only `read` is offered: the forced call can only be that one.
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ llama: {{
      baseUrl: "http://127.0.0.1:{port}/v1", api: "openai-completions",
      models: [{{ id: "smollm2", contextWindow: 4096, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "llama/smollm2" }}, workspace: "{}",
    params: {{ maxToolIterations: 3 }} }} }},
  tools: {{ allow: ["read"] }} }}"#,
        ws.display()
    );
    let rt = common::runtime(&text, state.path());

    let d = Delivery {
        agent: "main".into(),
        session_key: "agent:main:tools".into(),
        input: vec![Message::user(
            "Read the file notes.txt and tell me the code word.",
        )],
        request: ChatRequest {
            temperature: Some(0.0),
            ..ChatRequest::default()
        },
        agent_prompt: true,
        ..Delivery::default()
    };
    let (done, events) = common::deliver(&rt, d).await;
    let tools: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Tool(t) => Some(t),
            _ => None,
        })
        .collect();
    let done = done.unwrap();
    // The model's call ran: a start and a result for `read`.
    let ran: Vec<_> = tools.iter().filter(|t| t.result.is_some()).collect();
    assert!(!ran.is_empty(), "no tool ran: {tools:?}");
    assert!(ran.iter().all(|t| t.name == "read"), "{ran:?}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&ran[0].arguments).unwrap()["path"].is_string(),
        "{:?}",
        ran[0].arguments
    );
    // The path the model chose is the user's file, and Pincer read it.
    assert!(
        ran.iter()
            .any(|t| t.result.as_deref().is_some_and(|r| r.contains("PINEAPPLE"))),
        "{ran:?}"
    );
    eprintln!(
        "llama-server called read({}) → {}; answered {:?}",
        ran[0].arguments,
        ran[0]
            .result
            .as_deref()
            .unwrap_or_default()
            .lines()
            .nth(3)
            .unwrap_or(""),
        done.final_text
    );
    // The transcript holds the call and its result.
    let store = &rt.stores()["main"];
    let e = store.get("agent:main:tools").unwrap();
    let tree = store.tree(&e.session_id).unwrap();
    let calls = tree
        .entries
        .iter()
        .filter(|e| matches!(&e.body, Body::Message(Message::Assistant { tool_calls, .. }) if !tool_calls.is_empty()))
        .count();
    let results = tree
        .entries
        .iter()
        .filter(|e| matches!(&e.body, Body::Message(Message::Tool { .. })))
        .count();
    assert!(
        calls >= 1 && results >= calls,
        "calls {calls}, results {results}"
    );
}
