//! A model that fails mid-answer: a streaming caller gets the answer
//! continued by the next model (llama.cpp's real server, from a prefill);
//! where no model can continue, a clear error; a caller that waits for the
//! whole answer gets the next model's complete answer instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use pincer_catalog::{Catalog, ModelRef, ModelSpec};
use pincer_config::{Env, Loaded, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, ErrorKind, Event, Message};
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, LlamaServer, Step, sse_head};

const PARTIAL: [&str; 2] = ["1, 2,", " 3, 4, 5,"];

/// A completions stream that sends `PARTIAL` and then drops the connection.
fn cut_stream() -> FakeUpstream {
    let mut b = sse_head();
    for d in PARTIAL {
        b.extend_from_slice(
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{d:?}}}}}]}}\n\n")
                .as_bytes(),
        );
    }
    FakeUpstream::start(vec![vec![Step::Send(b)]])
}

fn setup(primary: &str, fallback_url: &str, fallback_api: &str) -> (Loaded, Env) {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  primary: {{ baseUrl: "{primary}", api: "openai-completions", timeoutSeconds: 5,
    models: [{{ id: "m", contextWindow: 2048, maxTokens: 64 }}] }},
  next: {{ baseUrl: "{fallback_url}", api: "{fallback_api}", timeoutSeconds: 30,
    models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 64 }}] }} }} }} }}"#
    );
    let env = Env::from_pairs(&[]);
    let loaded = load_text(&text, std::path::Path::new("/nowhere/openclaw.json"), &env);
    (loaded, env)
}

fn specs(catalog: &Catalog<'_>) -> Vec<ModelSpec> {
    ["primary/m", "next/smollm2"]
        .iter()
        .map(|r| catalog.model(&ModelRef::parse(r).unwrap()).unwrap())
        .collect()
}

fn count() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("Count from 1 to 20, separated by commas.")],
        max_tokens: Some(24),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn a_streaming_answer_cut_mid_way_is_continued_by_the_next_model() {
    let server = LlamaServer::start();
    let primary = cut_stream();
    let (loaded, env) = setup(
        &primary.base_url(),
        &server.base_url(),
        "openai-completions",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let candidates = specs(&catalog);
    let mut a = router
        .start(&catalog, &candidates, "main", "s", &count())
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(e) = a.next().await {
        if let Event::Text { delta } = e.unwrap() {
            text.push_str(&delta);
        }
    }
    // One answer, no repeat of what was already said, carried on by llama.cpp.
    assert!(text.starts_with("1, 2, 3, 4, 5, 6, 7"), "{text:?}");
    assert_eq!(text.matches("5,").count(), 1, "{text:?}");
    assert_eq!(a.spec.reference, "next/smollm2");
    assert_eq!(a.attempts.len(), 1);
    assert_eq!(a.attempts[0].model, "primary/m");
    assert_eq!(a.attempts[0].kind, Some(ErrorKind::Protocol));
    assert!(a.attempts[0].message.starts_with("stopped mid-answer"));
}

#[tokio::test]
async fn without_a_model_that_can_continue_the_error_is_returned() {
    // The Responses API has no prefill: it would start a new answer.
    let next = FakeUpstream::start(vec![vec![]]);
    let primary = cut_stream();
    let (loaded, env) = setup(&primary.base_url(), &next.base_url(), "openai-responses");
    let catalog = Catalog::new(&loaded.config.models);
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let candidates = specs(&catalog);
    let mut a = router
        .start(&catalog, &candidates, "main", "s", &count())
        .await
        .unwrap();
    let mut text = String::new();
    let err = loop {
        match a.next().await {
            Some(Ok(Event::Text { delta })) => text.push_str(&delta),
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("a cut answer must not end as a success: {text:?}"),
        }
    };
    assert_eq!(text, PARTIAL.concat());
    assert_eq!(err.kind, ErrorKind::Protocol);
    assert!(next.requests().is_empty(), "the fallback was not asked");
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn a_whole_answer_starts_over_on_the_next_model() {
    let server = LlamaServer::start();
    let primary = cut_stream();
    let (loaded, env) = setup(
        &primary.base_url(),
        &server.base_url(),
        "openai-completions",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let candidates = specs(&catalog);
    let done = router
        .complete(&catalog, &candidates, "main", "s", &count())
        .await
        .unwrap();
    assert_eq!(done.spec.reference, "next/smollm2");
    assert!(!done.reply.text.is_empty());
    assert!(done.attempts[0].message.starts_with("stopped mid-answer"));
    // llama.cpp's own answer to the question, not a continuation of the cut one.
    let direct: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(
            &serde_json::json!({"model": "smollm2", "max_tokens": 24, "temperature": 0,
            "messages": [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        done.reply.text,
        direct["choices"][0]["message"]["content"].as_str().unwrap()
    );
}
