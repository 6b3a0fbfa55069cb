//! `compat.supportsStreamingToolCalls: false`: a request with tools goes
//! out whole (`stream: false`), and its JSON reply still arrives as the
//! stream's events; without tools the request streams as usual.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pincer_llm::{ChatRequest, Dialect, Message, Reply, Tool};
use pincer_testkit::{FakeUpstream, completions_stream, whole_reply};
use serde_json::{Value, json};

#[tokio::test]
async fn a_server_that_loses_streamed_calls_is_asked_whole() {
    let up = FakeUpstream::start(vec![
        whole_reply(
            "openai-completions",
            "",
            &[("c1", "read", r#"{"path":"a"}"#)],
        ),
        completions_stream(&[r#"{"content":"hi"}"#]),
    ]);
    let mut t = common::target(Dialect::OpenAiCompletions, &up.base_url(), None);
    t.compat.supports_streaming_tool_calls = Some(false);
    let with_tools = ChatRequest {
        messages: vec![Message::user("read a")],
        tools: vec![Tool {
            name: "read".into(),
            description: String::new(),
            parameters: json!({"type": "object"}),
        }],
        ..ChatRequest::default()
    };
    let events = common::stream_all(&t, &with_tools).await.unwrap();
    let reply = Reply::from_events(&events);
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].name, "read");
    let plain = ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    };
    let events = common::stream_all(&t, &plain).await.unwrap();
    assert_eq!(Reply::from_events(&events).text, "hi");
    let reqs = up.requests();
    let first: Value = serde_json::from_str(&reqs[0].body).unwrap();
    let second: Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(first["stream"], false);
    assert_eq!(second["stream"], true);
}
