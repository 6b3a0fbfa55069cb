//! Each dialect against real servers nobody here wrote: llama.cpp's
//! `llama-server` speaks all three itself, and LiteLLM's proxy speaks
//! `/v1/responses` and `/v1/messages` in front of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, assert_well_formed, hello, stream_all, target};
use pincer_llm::{
    ChatRequest, Client, Dialect, ErrorKind, Message, Reply, ToolCall, ToolChoice,
    estimate_prompt_tokens,
};
use pincer_testkit::{LiteLlm, LlamaServer};

async fn stream_and_whole(dialect: Dialect, base_url: &str, key: Option<&str>) {
    let t = target(dialect, base_url, key);
    let events = stream_all(&t, &hello())
        .await
        .unwrap_or_else(|e| panic!("{} stream: {e}", dialect.as_str()));
    assert_well_formed(&events);
    let streamed = Reply::from_events(&events);
    assert_answer(&streamed, 24);

    let whole = Client::new()
        .unwrap()
        .complete(&t, &hello())
        .await
        .unwrap_or_else(|e| panic!("{} whole: {e}", dialect.as_str()));
    assert_answer(&whole, 24);
    // Greedy decoding: the same prompt gives the same words either way.
    assert_eq!(
        streamed.text.trim(),
        whole.text.trim(),
        "{}",
        dialect.as_str()
    );

    // A second turn: the first answer goes back as an assistant message.
    let mut req = hello();
    req.messages.push(Message::assistant(whole.text));
    req.messages.push(Message::user("And now say goodbye."));
    let events = stream_all(&t, &req)
        .await
        .unwrap_or_else(|e| panic!("{} second turn: {e}", dialect.as_str()));
    assert_answer(&Reply::from_events(&events), 24);
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn llama_server_speaks_all_three_dialects() {
    let server = LlamaServer::start();
    for dialect in Dialect::SSE {
        stream_and_whole(dialect, &server.base_url(), None).await;
    }
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn litellm_proxy_responses_and_messages() {
    let server = LlamaServer::start();
    let proxy = LiteLlm::start(&server.base_url());
    for dialect in [Dialect::OpenAiResponses, Dialect::AnthropicMessages] {
        stream_and_whole(dialect, &proxy.base_url(), Some(&proxy.key)).await;
    }
}

/// Our tool call and its result, sent back in each dialect's shape with a
/// named tool choice, are accepted by the real server and reach the model's
/// prompt.
#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn tool_call_round_trip_is_accepted() {
    let server = LlamaServer::start();
    let weather = pincer_llm::Tool {
        name: "get_weather".into(),
        description: "Current weather for a city".into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    };
    let tool_result = "Paris: 18 degrees and sunny, light wind from the west";
    let history = |with_result: bool| {
        let mut messages = vec![
            Message::user("What is the weather in Paris?"),
            Message::Assistant {
                text: String::new(),
                reasoning: None,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
            },
        ];
        if with_result {
            messages.push(Message::Tool {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                content: tool_result.into(),
                is_error: false,
            });
        }
        ChatRequest {
            messages,
            tools: vec![weather.clone()],
            max_tokens: Some(16),
            temperature: Some(0.0),
            ..ChatRequest::default()
        }
    };
    for dialect in Dialect::SSE {
        let t = target(dialect, &server.base_url(), None);
        let client = Client::new().unwrap();
        // A named tool choice in the dialect's own shape is accepted too.
        let mut with = history(true);
        with.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
        let with = client.complete(&t, &with).await;
        let with = with.unwrap_or_else(|e| panic!("{}: {e}", dialect.as_str()));
        assert!(with.finish.is_some());
        // The result's words are in the prompt the server built.
        let prompt = |r: &Reply| r.usage.input + r.usage.cache_read;
        let mut without = history(false);
        without.messages.push(Message::user("ok"));
        let without = client.complete(&t, &without).await.unwrap();
        assert!(
            prompt(&with) > prompt(&without) + 8,
            "{}: tool result not in the prompt ({} vs {})",
            dialect.as_str(),
            prompt(&with),
            prompt(&without)
        );
    }
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn server_context_overflow_is_classified() {
    // The config claims a large window; the server was started with 512.
    let server = LlamaServer::start_with_ctx(512);
    let long = "Tell me about the history of the city. ".repeat(200);
    let req = ChatRequest {
        messages: vec![Message::user(long)],
        max_tokens: Some(16),
        ..ChatRequest::default()
    };
    for dialect in Dialect::SSE {
        let mut t = target(dialect, &server.base_url(), None);
        t.context_window = 32_768;
        let err = Client::new().unwrap().complete(&t, &req).await.unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::ContextOverflow,
            "{}: {err}",
            dialect.as_str()
        );
        let overflow = err.overflow.expect("counts from the server");
        assert_eq!(overflow.limit, Some(512), "{}: {err}", dialect.as_str());
        assert!(overflow.requested.unwrap() > 512);
        // Streaming hits the same error before any event.
        let err = stream_all(&t, &req).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ContextOverflow, "{err}");
    }
}

#[tokio::test]
async fn preflight_refuses_what_cannot_fit_and_says_by_how_much() {
    // Nothing listens here: the request must be refused before any connection.
    let mut t = target(Dialect::OpenAiCompletions, "http://127.0.0.1:9/v1", None);
    t.context_window = 1000;
    t.max_tokens = 400;
    let req = ChatRequest {
        messages: vec![Message::user("x".repeat(3000))],
        ..ChatRequest::default()
    };
    let prompt = estimate_prompt_tokens(&req);
    let err = Client::new().unwrap().complete(&t, &req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextOverflow);
    let over = prompt + 400 - 1000;
    assert!(
        err.message.contains(&format!("by {over}")),
        "{}",
        err.message
    );
    assert!(err.message.contains("not sent"), "{}", err.message);
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn output_is_capped_at_the_models_max_tokens() {
    let server = LlamaServer::start();
    let mut t = target(Dialect::OpenAiCompletions, &server.base_url(), None);
    t.max_tokens = 5;
    let mut req = hello();
    req.max_tokens = Some(500);
    req.messages
        .push(Message::user("Now write a long story about a dragon."));
    let reply = Client::new().unwrap().complete(&t, &req).await.unwrap();
    assert!(reply.usage.output <= 5, "{reply:?}");
    assert_eq!(reply.finish, Some(pincer_llm::FinishReason::Length));
}

#[tokio::test]
async fn refused_connection_is_a_connection_error() {
    let port = pincer_testkit::free_port();
    let t = target(
        Dialect::OpenAiCompletions,
        &format!("http://127.0.0.1:{port}/v1"),
        None,
    );
    let err = stream_all(&t, &hello()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
}
