//! Failover decisions, from scripted upstreams: which failures move on to the
//! next candidate, which stop the turn, and what is remembered afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pincer_catalog::{Catalog, ModelRef, ModelSpec};
use pincer_config::{Env, Loaded, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, ErrorKind, Event, Message};
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, Step, completions_stream, http_response, sse_head};

const API: [&str; 3] = [
    "openai-completions",
    "openai-responses",
    "anthropic-messages",
];

/// A 503 as servers word it.
fn unavailable() -> Vec<Step> {
    status(503, &[], r#"{"error":{"message":"Service Unavailable"}}"#)
}

fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Vec<Step> {
    vec![Step::Send(http_response(code, headers, body))]
}

struct Setup {
    loaded: Loaded,
    env: Env,
    _dir: tempfile::TempDir,
}

/// `primary` (in `api`) at `primary_url`, `small` and `big` fallbacks (completions).
fn setup(api: &str, primary_url: &str, small_url: &str, big_url: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  primary: {{ baseUrl: "{primary_url}", api: "{api}", apiKey: "sk-test-0123456789abcdef", timeoutSeconds: 1,
    models: [{{ id: "m", contextWindow: 4096, maxTokens: 64 }}] }},
  small: {{ baseUrl: "{small_url}", api: "openai-completions", timeoutSeconds: 1,
    models: [{{ id: "m", contextWindow: 2048, maxTokens: 64 }}] }},
  big: {{ baseUrl: "{big_url}", api: "openai-completions", timeoutSeconds: 1,
    models: [{{ id: "m", contextWindow: 100000, maxTokens: 64 }}] }},
}} }} }}"#
    );
    let env = Env::from_pairs(&[("HOME", dir.path().to_str().unwrap())]);
    let loaded = load_text(&text, &dir.path().join("openclaw.json"), &env);
    assert!(
        loaded.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        loaded.diagnostics
    );
    Setup {
        loaded,
        env,
        _dir: dir,
    }
}

fn specs(catalog: &Catalog<'_>, refs: &[&str]) -> Vec<ModelSpec> {
    refs.iter()
        .map(|r| catalog.model(&ModelRef::parse(r).unwrap()).unwrap())
        .collect()
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("Hi")],
        ..ChatRequest::default()
    }
}

fn router(s: &Setup, state: Option<&Path>) -> Router {
    let providers = Providers::new(s.env.clone(), Arc::new(Silent)).unwrap();
    Router::new(providers, state.map(Path::to_path_buf))
}

/// The answer's model and text, or the all-failed error.
async fn run(
    r: &Router,
    s: &Setup,
    refs: &[&str],
) -> Result<(String, String, Vec<Option<ErrorKind>>), String> {
    let catalog = Catalog::new(&s.loaded.config.models);
    let candidates = specs(&catalog, refs);
    let mut a = r
        .start(&catalog, &candidates, "main", "t", &hello())
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    while let Some(e) = a.next().await {
        if let Event::Text { delta } = e.unwrap() {
            text.push_str(&delta);
        }
    }
    let kinds = a.attempts.iter().map(|t| t.kind).collect();
    Ok((a.spec.reference.clone(), text, kinds))
}

#[tokio::test]
async fn transient_failures_move_on_in_every_dialect() {
    let cases: Vec<(&str, Vec<Step>, ErrorKind)> = vec![
        (
            "500",
            status(500, &[], r#"{"error":{"message":"boom"}}"#),
            ErrorKind::Server,
        ),
        (
            "503",
            status(503, &[], r#"{"error":{"message":"Service Unavailable"}}"#),
            ErrorKind::Overloaded,
        ),
        (
            "429",
            status(
                429,
                &[("retry-after", "120")],
                r#"{"error":{"message":"Rate limit reached"}}"#,
            ),
            ErrorKind::RateLimit,
        ),
        (
            "401",
            status(401, &[], r#"{"error":{"message":"Invalid API key"}}"#),
            ErrorKind::Auth,
        ),
        (
            "hang before headers",
            vec![Step::Sleep(Duration::from_secs(30))],
            ErrorKind::Timeout,
        ),
        (
            "stall after headers",
            vec![Step::Send(sse_head()), Step::Sleep(Duration::from_secs(30))],
            ErrorKind::Timeout,
        ),
        (
            "truncated",
            vec![Step::Send([sse_head(), b"data: {\"choi".to_vec()].concat())],
            ErrorKind::Protocol,
        ),
    ];
    for api in API {
        for (name, script, kind) in &cases {
            let primary = FakeUpstream::start(vec![script.clone()]);
            let fallback =
                FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
            let s = setup(
                api,
                &primary.base_url(),
                &fallback.base_url(),
                "http://127.0.0.1:9/v1",
            );
            let r = router(&s, None);
            let started = Instant::now();
            let (model, text, kinds) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
            assert_eq!(
                (model.as_str(), text.as_str()),
                ("small/m", "Hello"),
                "{api} {name}"
            );
            // A single 5xx is asked again once (the same reply here), then
            // the turn moves on; other failures move on at once.
            let retried = matches!(kind, ErrorKind::Server | ErrorKind::Overloaded);
            let calls = if retried { 2 } else { 1 };
            assert_eq!(kinds, vec![Some(*kind); calls], "{api} {name}");
            assert_eq!(primary.requests().len(), calls, "{api} {name}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{api} {name}: no hang past the timeouts"
            );
        }
    }
}

#[tokio::test]
async fn a_bad_request_stops_at_once() {
    for api in API {
        let primary = FakeUpstream::start(vec![status(
            400,
            &[],
            r#"{"error":{"message":"messages: invalid role"}}"#,
        )]);
        let fallback = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
        let s = setup(
            api,
            &primary.base_url(),
            &fallback.base_url(),
            "http://127.0.0.1:9/v1",
        );
        let err = run(&router(&s, None), &s, &["primary/m", "small/m"])
            .await
            .unwrap_err();
        assert!(
            err.contains("invalid role") && err.contains("bad_request"),
            "{api}: {err}"
        );
        assert!(
            fallback.requests().is_empty(),
            "{api}: the fallback was never called"
        );
    }
}

#[tokio::test]
async fn a_context_overflow_goes_to_a_larger_window_only() {
    let primary = FakeUpstream::start(vec![status(
        400,
        &[],
        r#"{"error":{"message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."}}"#,
    )]);
    let small = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let big = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let s = setup(
        "openai-completions",
        &primary.base_url(),
        &small.base_url(),
        &big.base_url(),
    );
    let (model, _, kinds) = run(&router(&s, None), &s, &["primary/m", "small/m", "big/m"])
        .await
        .unwrap();
    assert_eq!(model, "big/m");
    assert_eq!(kinds, [Some(ErrorKind::ContextOverflow), None]);
    assert!(small.requests().is_empty(), "a smaller window cannot help");
}

#[tokio::test]
async fn empty_and_reasoning_only_replies_are_not_answers() {
    for (deltas, words) in [
        (vec![], "empty answer"),
        (
            vec![r#"{"reasoning_content":"Let me think."}"#],
            "reasoned but gave no answer",
        ),
    ] {
        let primary = FakeUpstream::start(vec![completions_stream(&deltas)]);
        let fallback = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
        let s = setup(
            "openai-completions",
            &primary.base_url(),
            &fallback.base_url(),
            "http://127.0.0.1:9/v1",
        );
        let r = router(&s, None);
        let (model, _, kinds) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
        assert_eq!(model, "small/m");
        assert_eq!(kinds, [Some(ErrorKind::EmptyReply)]);
        // Reasoning that comes before the answer is still delivered with it.
        let primary = FakeUpstream::start(vec![completions_stream(&[
            r#"{"reasoning_content":"Let me think."}"#,
            r#"{"content":"Yes."}"#,
        ])]);
        let s = setup(
            "openai-completions",
            &primary.base_url(),
            &fallback.base_url(),
            "http://127.0.0.1:9/v1",
        );
        let (model, text, _) = run(&router(&s, None), &s, &["primary/m", "small/m"])
            .await
            .unwrap();
        assert_eq!(
            (model.as_str(), text.as_str()),
            ("primary/m", "Yes."),
            "{words}"
        );
    }
}

#[tokio::test]
async fn a_failed_provider_is_skipped_without_a_call_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cooldowns.json");
    let primary = FakeUpstream::start(vec![status(
        503,
        &[],
        r#"{"error":{"message":"Service Unavailable"}}"#,
    )]);
    let fallback = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let s = setup(
        "openai-completions",
        &primary.base_url(),
        &fallback.base_url(),
        "http://127.0.0.1:9/v1",
    );
    let r = router(&s, Some(&state));
    run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
    assert_eq!(primary.requests().len(), 2, "one same-model retry");

    // A restart: a new router reads the state file and skips the primary.
    let r = router(&s, Some(&state));
    let (model, _, kinds) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
    assert_eq!(model, "small/m");
    assert_eq!(kinds, [None], "skipped, not called");
    assert_eq!(
        primary.requests().len(),
        2,
        "no call to a provider in cooldown"
    );

    // Every candidate failing: one error, every attempt, and when to retry.
    let dead = "http://127.0.0.1:9/v1";
    let s2 = setup("openai-completions", dead, dead, dead);
    let err = run(&router(&s2, None), &s2, &["primary/m", "small/m"])
        .await
        .unwrap_err();
    assert!(err.starts_with("no model answered (2 tried):"), "{err}");
    assert!(
        err.contains("primary/m: ") && err.contains("small/m: "),
        "{err}"
    );
    assert!(err.contains("the earliest cooldown ends in 30 s"), "{err}");
}

/// A cooled candidate is skipped while another may answer, and asked after
/// all when every other failed: a server that came back answers, whichever
/// cooldown happens to run out first.
#[tokio::test]
async fn a_cooled_candidate_is_probed_when_every_other_failed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cooldowns.json");
    let primary = FakeUpstream::start(vec![
        unavailable(),
        unavailable(),
        completions_stream(&[r#"{"content":"Back"}"#]),
    ]);
    let fallback = FakeUpstream::start(vec![
        completions_stream(&[r#"{"content":"Hello"}"#]),
        unavailable(),
    ]);
    let s = setup(
        "openai-completions",
        &primary.base_url(),
        &fallback.base_url(),
        "http://127.0.0.1:9/v1",
    );
    let r = router(&s, Some(&state));
    let (model, _, _) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
    assert_eq!(model, "small/m");
    assert_eq!(primary.requests().len(), 2, "failed, and is cooling down");

    // The primary cools, the fallback fails now: the primary is asked
    // anyway, last, and answers.
    let (model, text, kinds) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
    assert_eq!((model.as_str(), text.as_str()), ("primary/m", "Back"));
    assert_eq!(kinds.first(), Some(&None), "skipped first: {kinds:?}");
    assert!(kinds.contains(&Some(ErrorKind::Overloaded)), "{kinds:?}");
    assert_eq!(primary.requests().len(), 3);
}

/// A probed candidate that answered, then broke: nothing already tried in
/// the turn is asked again (whole answers start over only on untried ones),
/// and the skip told the truth about what came next.
#[tokio::test]
async fn a_turn_never_asks_a_candidate_twice_after_a_probe() {
    let cut = vec![Step::Send(
        [
            sse_head(),
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Ba\"}}]}\n\n".to_vec(),
        ]
        .concat(),
    )];
    let primary = FakeUpstream::start(vec![unavailable(), unavailable(), cut]);
    let fallback = FakeUpstream::start(vec![
        completions_stream(&[r#"{"content":"Hello"}"#]),
        unavailable(),
    ]);
    let s = setup(
        "openai-completions",
        &primary.base_url(),
        &fallback.base_url(),
        "http://127.0.0.1:9/v1",
    );
    let r = router(&s, None);
    run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
    let before = fallback.requests().len();

    let catalog = Catalog::new(&s.loaded.config.models);
    let candidates = specs(&catalog, &["primary/m", "small/m"]);
    let err = r
        .complete(&catalog, &candidates, "main", "t", &hello())
        .await
        .unwrap_err();
    let asked = fallback.requests().len() - before;
    assert!(
        (1..=2).contains(&asked),
        "the fallback's own try (and retry): {asked}"
    );
    assert_eq!(primary.requests().len(), 3, "probed once");
    // The skip said the primary would be tried again, and it was.
    let skip = &err.attempts[0];
    assert_eq!((skip.model.as_str(), skip.kind), ("primary/m", None));
    assert_eq!(skip.next, pincer_router::Next::Model("small/m".into()));
    let text = err.to_string();
    assert!(text.starts_with("no model answered (2 tried)"), "{text}");
}

#[tokio::test]
async fn refused_and_malformed_move_on_in_every_dialect() {
    for api in API {
        // Nobody listens on the primary's port.
        let fallback = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
        let closed = format!("http://127.0.0.1:{}/v1", pincer_testkit::free_port());
        let s = setup(api, &closed, &fallback.base_url(), "http://127.0.0.1:9/v1");
        let (model, _, kinds) = run(&router(&s, None), &s, &["primary/m", "small/m"])
            .await
            .unwrap();
        assert_eq!(model, "small/m", "{api}");
        assert_eq!(kinds, [Some(ErrorKind::Connection)], "{api}");

        // A stream of garbage that never becomes an answer.
        let garbage = [
            sse_head(),
            b"data: {not json at all\n\ndata: }}}\n\n".to_vec(),
        ]
        .concat();
        let primary = FakeUpstream::start(vec![vec![Step::Send(garbage)]]);
        let s = setup(
            api,
            &primary.base_url(),
            &fallback.base_url(),
            "http://127.0.0.1:9/v1",
        );
        let (model, _, kinds) = run(&router(&s, None), &s, &["primary/m", "small/m"])
            .await
            .unwrap();
        assert_eq!(model, "small/m", "{api}");
        assert_eq!(kinds, [Some(ErrorKind::Protocol)], "{api}");
    }
}

#[tokio::test]
async fn every_vendors_overflow_wording_goes_to_a_larger_window() {
    let bodies = [
        (
            "llama.cpp",
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}"#,
        ),
        (
            "LM Studio",
            r#"{"error":"Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough."}"#,
        ),
        (
            "vLLM",
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4936 in the messages, 64 in the completion).","type":"BadRequestError","param":null,"code":400}"#,
        ),
        (
            "OpenAI",
            r#"{"error":{"message":"This model's maximum context length is 4096 tokens. However, your messages resulted in 5000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        ),
        (
            "Anthropic",
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 5000 tokens > 4096 maximum"}}"#,
        ),
    ];
    for (vendor, body) in bodies {
        let primary = FakeUpstream::start(vec![status(400, &[], body)]);
        let small = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
        let big = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
        let s = setup(
            "openai-completions",
            &primary.base_url(),
            &small.base_url(),
            &big.base_url(),
        );
        let (model, _, kinds) = run(&router(&s, None), &s, &["primary/m", "small/m", "big/m"])
            .await
            .unwrap();
        assert_eq!(model, "big/m", "{vendor}");
        assert_eq!(kinds, [Some(ErrorKind::ContextOverflow), None], "{vendor}");
        assert!(small.requests().is_empty(), "{vendor}");
    }
}

/// Text, then silence: each dialect's way of saying "Hel" and stalling.
fn text_then_stall(api: &str) -> Vec<Step> {
    let body = match api {
        "openai-completions" => {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_string()
        }
        "openai-responses" => "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hel\"}\n\n".to_string(),
        _ => concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
        )
        .to_string(),
    };
    vec![
        Step::Send([sse_head(), body.into_bytes()].concat()),
        Step::Sleep(Duration::from_secs(30)),
    ]
}

#[tokio::test]
async fn a_stall_mid_stream_is_continued_by_the_fallback_in_every_dialect() {
    for api in API {
        let primary = FakeUpstream::start(vec![text_then_stall(api)]);
        let fallback =
            FakeUpstream::start(vec![completions_stream(&[r#"{"content":"lo there"}"#])]);
        let s = setup(
            api,
            &primary.base_url(),
            &fallback.base_url(),
            "http://127.0.0.1:9/v1",
        );
        let r = router(&s, None);
        let started = Instant::now();
        let (model, text, kinds) = run(&r, &s, &["primary/m", "small/m"]).await.unwrap();
        assert_eq!(
            (model.as_str(), text.as_str()),
            ("small/m", "Hello there"),
            "{api}"
        );
        assert_eq!(kinds, [Some(ErrorKind::Timeout)], "{api}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{api}: no hang past the idle timeout"
        );
        let sent: serde_json::Value = serde_json::from_str(&fallback.requests()[0].body).unwrap();
        let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last,
            serde_json::json!({"role": "assistant", "content": "Hel"}),
            "{api}"
        );
        assert_eq!(sent["continue_final_message"], true, "{api}");
    }
}
