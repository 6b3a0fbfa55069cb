//! The embedded engine on the real SmolLM2 GGUF, checked against llama.cpp's
//! own server where the answer can be compared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use pincer_engine::{EngineOptions, KvCache, LoadedModel};
use pincer_testkit::{LlamaServer, gguf_path};
use pincer_types::{ChatRequest, ErrorKind, Event, FinishReason, Message, Reply};
use serde_json::{Value, json};

const REF: &str = "embedded/smollm2-135m-instruct";

/// One test at a time: each runs llama.cpp on both cores (some with
/// llama-server beside it), and side by side their spinning threads made the
/// suite several times slower than one after the other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

fn options() -> EngineOptions {
    EngineOptions {
        threads: Some(2),
        context_window: 8192,
        max_tokens: 256,
        // llama-server's own cache type, so greedy answers can be compared.
        kv_cache: KvCache::F16,
    }
}

async fn load() -> LoadedModel {
    LoadedModel::load(&gguf_path(), REF, options())
        .await
        .unwrap()
}

fn chat(messages: Vec<Message>, max_tokens: u64) -> ChatRequest {
    ChatRequest {
        messages,
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

fn capital() -> Vec<Message> {
    vec![
        Message::system("You are a concise assistant."),
        Message::user("What is the capital of France?"),
    ]
}

/// All events of one answer, which must end in `Done` (or an error).
async fn events(model: &LoadedModel, session: &str, req: ChatRequest) -> Vec<Event> {
    let mut g = model.generate(session, req);
    let mut out = Vec::new();
    while let Some(e) = g.next().await {
        out.push(e.unwrap());
    }
    assert!(
        matches!(out.last(), Some(Event::Done { .. })),
        "the stream ends with Done: {out:?}"
    );
    out
}

async fn answer(model: &LoadedModel, req: ChatRequest) -> Reply {
    Reply::from_events(&events(model, "s", req).await)
}

/// llama-server's greedy answer to the same conversation.
async fn server_answer(server: &LlamaServer, messages: &[Message]) -> Value {
    let wire: Vec<Value> = messages
        .iter()
        .map(|m| match m {
            Message::System { text } => json!({"role": "system", "content": text}),
            Message::User { text } => json!({"role": "user", "content": text}),
            Message::Assistant { text, .. } => json!({"role": "assistant", "content": text}),
            Message::Tool { .. } => unreachable!(),
        })
        .collect();
    reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&json!({
            "model": "smollm2",
            "messages": wire,
            "max_tokens": 48,
            "temperature": 0,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_same(ours: &Reply, theirs: &Value) {
    let text = theirs["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(ours.text, text, "same template, tokens and greedy choice");
    assert_eq!(
        ours.usage.prompt_tokens(),
        theirs["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the GGUF's chat template renders the same prompt"
    );
    let finish = theirs["choices"][0]["finish_reason"].as_str().unwrap();
    assert_eq!(ours.finish, Some(FinishReason::from_wire(finish)));
    let their_output = theirs["usage"]["completion_tokens"].as_u64().unwrap();
    if finish == "length" {
        assert_eq!(ours.usage.output, their_output, "both stop at the cap");
    } else {
        // An answer that ended on the model's end-of-generation token: builds
        // of llama-server differ on whether that token counts (seen: 7 vs 8
        // for the same text), so one token apart is the same answer.
        assert!(
            ours.usage.output.abs_diff(their_output) <= 1,
            "output tokens: ours {} vs llama-server {their_output}",
            ours.usage.output
        );
    }
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn greedy_answers_match_llama_server_token_for_token() {
    let _one = one_at_a_time().await;
    let server = LlamaServer::start();
    let model = load().await;
    let mut messages = capital();
    let first = answer(&model, chat(messages.clone(), 48)).await;
    assert!(first.text.contains("Paris"), "{:?}", first.text);
    assert_same(&first, &server_answer(&server, &messages).await);

    // The next turn carries the answer. The engine re-reads only the new
    // messages (cache_read), and still answers exactly as a cold server does.
    messages.push(Message::assistant(first.text.clone()));
    messages.push(Message::user("And what is the capital of Italy?"));
    let second = answer(&model, chat(messages.clone(), 48)).await;
    assert!(
        second.usage.cache_read > first.usage.input / 2,
        "{:?}",
        second.usage
    );
    assert_same(&second, &server_answer(&server, &messages).await);
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn streams_token_by_token_and_stops_at_max_tokens() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let ev = events(
        &model,
        "s",
        chat(vec![Message::user("Write a long story about a cat.")], 24),
    )
    .await;
    let texts = ev
        .iter()
        .filter(|e| matches!(e, Event::Text { .. }))
        .count();
    assert!(texts >= 10, "one event per token or so, got {texts}");
    let reply = Reply::from_events(&ev);
    assert_eq!(reply.usage.output, 24);
    assert_eq!(reply.finish, Some(FinishReason::Length));
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn stop_strings_end_the_answer_and_are_never_sent() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let full = answer(&model, chat(capital(), 48)).await;
    let at = full.text.find("Paris").expect("Paris in the answer");
    let mut req = chat(capital(), 48);
    req.stop = vec!["Paris".into()];
    let cut = answer(&model, req).await;
    assert_eq!(cut.text, full.text[..at]);
    assert_eq!(cut.finish, Some(FinishReason::Stop));
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn a_prompt_over_the_window_is_refused_with_both_numbers() {
    let _one = one_at_a_time().await;
    let mut opts = options();
    opts.context_window = 64;
    let model = LoadedModel::load(&gguf_path(), REF, opts).await.unwrap();
    let long = "word ".repeat(200);
    let mut g = model.generate("s", chat(vec![Message::user(long)], 10));
    let err = g.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextOverflow);
    let o = err.overflow.unwrap();
    assert_eq!(o.limit, Some(64));
    assert!(o.requested.unwrap() > 200, "{o:?}");
    assert!(
        err.message.contains("context window of 64"),
        "{}",
        err.message
    );
    assert!(g.next().await.is_none());

    // The model still answers what fits.
    let ok = answer(&model, chat(vec![Message::user("Hi")], 8)).await;
    assert!(!ok.text.is_empty());
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn dropping_the_stream_cancels_and_the_model_stays_usable() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let mut g = model.generate(
        "s",
        chat(vec![Message::user("Count from one to one thousand.")], 2000),
    );
    assert!(matches!(g.next().await, Some(Ok(Event::Text { .. }))));
    drop(g);
    // Queued and then abandoned: never run.
    drop(model.generate("s", chat(vec![Message::user("Never run.")], 2000)));
    let reply = answer(&model, chat(capital(), 16)).await;
    assert!(reply.text.contains("Paris"));
    let stats = model.stats();
    assert_eq!(
        stats.started, 2,
        "the abandoned queued request never ran: {stats:?}"
    );
    assert_eq!((stats.cancelled, stats.completed), (1, 1), "{stats:?}");
    // The dropped answer stopped within a few tokens, far from its 2000.
    assert!(
        stats.generated_tokens < reply.usage.output + 100,
        "{stats:?}"
    );
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn sessions_take_turns_on_one_model() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The busy session queues three requests before the quiet one sends its one.
    let mut tasks = Vec::new();
    for (session, n) in [("busy", 1), ("busy", 2), ("busy", 3), ("quiet", 1)] {
        let g = model.generate(session, chat(vec![Message::user(format!("Say {n}."))], 12));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut g = g;
            while let Some(e) = g.next().await {
                e.unwrap();
            }
            tx.send(format!("{session}{n}")).unwrap();
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(s) = rx.recv().await {
        order.push(s);
    }
    let quiet = order.iter().position(|s| s == "quiet1").unwrap();
    let busy3 = order.iter().position(|s| s == "busy3").unwrap();
    assert!(
        quiet < busy3,
        "the quiet session is not stuck behind the busy one: {order:?}"
    );
}

#[tokio::test]
async fn a_missing_or_broken_file_is_a_clear_error() {
    let _one = one_at_a_time().await;
    let err = LoadedModel::load(std::path::Path::new("/nonexistent/m.gguf"), REF, options())
        .await
        .err()
        .unwrap();
    let e = pincer_types::ProviderError::from(err);
    assert_eq!(e.kind, ErrorKind::ModelNotFound);
    assert!(e.message.contains("/nonexistent/m.gguf"), "{}", e.message);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF but not really a model").unwrap();
    let err = LoadedModel::load(&bad, REF, options()).await.err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot load") && msg.contains("bad.gguf"),
        "{msg}"
    );
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn a_final_assistant_message_is_continued_like_llama_server_does() {
    let _one = one_at_a_time().await;
    let server = LlamaServer::start();
    let model = load().await;
    let prefill = "1, 2, 3, 4, 5,";
    let messages = vec![
        Message::user("Count from 1 to 20, separated by commas."),
        Message::assistant(prefill),
    ];
    let ours = answer(&model, chat(messages.clone(), 24)).await;
    assert!(
        !ours.text.trim_start().starts_with("1,"),
        "continues, does not start over: {:?}",
        ours.text
    );
    let whole = format!("{prefill}{}", ours.text);
    assert!(whole.contains("5, 6, 7"), "{whole:?}");
    // llama-server returns the prefill and its continuation as one text.
    let theirs = server_answer(&server, &messages).await;
    let theirs = theirs["choices"][0]["message"]["content"].as_str().unwrap();
    let n = whole.len().min(theirs.len());
    assert_eq!(whole[..n], theirs[..n], "the same continuation");
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn a_seed_makes_sampling_repeatable() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let sampled = |seed: u64| ChatRequest {
        messages: vec![Message::user("Write a short poem about the sea.")],
        max_tokens: Some(12),
        temperature: Some(1.0),
        seed: Some(seed),
        ..ChatRequest::default()
    };
    // Separate sessions, so no answer starts from another's cache.
    let first = Reply::from_events(&events(&model, "a", sampled(42)).await);
    let again = Reply::from_events(&events(&model, "b", sampled(42)).await);
    assert_eq!(first.text, again.text);
    let mut others = Vec::new();
    for (i, seed) in [1, 2].into_iter().enumerate() {
        let r = Reply::from_events(&events(&model, &format!("c{i}"), sampled(seed)).await);
        others.push(r.text);
    }
    assert!(
        others.iter().any(|t| *t != first.text),
        "other seeds gave the same answer: {others:?}"
    );
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn repetition_penalties_change_the_greedy_answer() {
    let _one = one_at_a_time().await;
    let model = load().await;
    let ask = |penalty: Option<f32>| ChatRequest {
        messages: vec![Message::user("Say the word cat ten times.")],
        max_tokens: Some(20),
        temperature: Some(0.0),
        frequency_penalty: penalty,
        ..ChatRequest::default()
    };
    let plain = Reply::from_events(&events(&model, "plain", ask(None)).await);
    let again = Reply::from_events(&events(&model, "again", ask(None)).await);
    assert_eq!(plain.text, again.text, "greedy answers repeat");
    let penalised = Reply::from_events(&events(&model, "penalised", ask(Some(2.0))).await);
    assert_ne!(plain.text, penalised.text);
}
