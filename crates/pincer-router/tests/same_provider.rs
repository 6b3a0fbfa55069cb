//! Primary and fallback on one provider (one LM Studio or Ollama serving two
//! models, or OpenRouter serving many): a model that breaks mid-answer cools
//! down that model, not its server, so its sibling continues the answer; a
//! server that is down cools down the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use pincer_catalog::{Catalog, ModelRef, ModelSpec};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, Event, Message};
use pincer_router::{Next, Providers, Router};
use pincer_testkit::{
    FakeUpstream, OllamaModel, OllamaReplay, Step, free_port, http_response, sse_head,
};

fn completions(deltas: &[&str], finish: bool) -> Vec<u8> {
    let mut b = sse_head();
    for d in deltas {
        b.extend_from_slice(
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{d:?}}}}}]}}\n\n")
                .as_bytes(),
        );
    }
    if finish {
        b.extend_from_slice(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        );
    }
    b
}

fn anthropic(deltas: &[&str], finish: bool) -> Vec<u8> {
    let mut b = sse_head();
    let mut ev = |name: &str, data: String| {
        b.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes());
    };
    ev(
        "message_start",
        r#"{"type":"message_start","message":{"id":"m1","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":0}}}"#.into(),
    );
    ev(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            .into(),
    );
    for d in deltas {
        ev(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{d:?}}}}}"#
            ),
        );
    }
    if finish {
        ev(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#.into(),
        );
        ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#.into(),
        );
        ev("message_stop", r#"{"type":"message_stop"}"#.into());
    }
    b
}

fn catalog_text(api: &str, url: &str) -> String {
    format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  box: {{ baseUrl: "{url}", api: "{api}", timeoutSeconds: 2,
    models: [{{ id: "a", contextWindow: 4096, maxTokens: 64 }}, {{ id: "b", contextWindow: 4096, maxTokens: 64 }}, {{ id: "c", contextWindow: 4096, maxTokens: 64 }}] }},
}} }} }}"#
    )
}

async fn answer(api: &str, url: &str) -> (String, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[("HOME", dir.path().to_str().unwrap())]);
    let loaded = load_text(&catalog_text(api, url), &dir.path().join("c.json"), &env);
    let catalog = Catalog::new(&loaded.config.models);
    let candidates: Vec<ModelSpec> = ["box/a", "box/b"]
        .iter()
        .map(|r| catalog.model(&ModelRef::parse(r).unwrap()).unwrap())
        .collect();
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    let req = ChatRequest {
        messages: vec![Message::user("Tell a story")],
        ..ChatRequest::default()
    };
    let mut a = match router.start(&catalog, &candidates, "main", "t", &req).await {
        Ok(a) => a,
        Err(e) => return (String::new(), String::new(), vec![e.to_string()]),
    };
    let mut text = String::new();
    let mut error = Vec::new();
    while let Some(e) = a.next().await {
        match e {
            Ok(Event::Text { delta }) => text.push_str(&delta),
            Ok(_) => {}
            Err(e) => error.push(e.to_string()),
        }
    }
    (a.spec.reference.clone(), text, error)
}

#[tokio::test]
async fn a_model_cut_mid_answer_is_continued_by_its_sibling_on_the_same_server() {
    for api in ["openai-completions", "anthropic-messages"] {
        let (cut, rest): (Vec<u8>, Vec<u8>) = if api == "anthropic-messages" {
            (
                anthropic(&["Once", " upon"], false),
                anthropic(&[" a time."], true),
            )
        } else {
            (
                completions(&["Once", " upon"], false),
                completions(&[" a time."], true),
            )
        };
        // Cut, a stall, and a malformed chunk (in the same read as the
        // text before it): each breaks model a mid-answer.
        for broken in [
            vec![Step::Send(cut.clone())],
            vec![
                Step::Send(cut.clone()),
                Step::Sleep(std::time::Duration::from_secs(4)),
            ],
            vec![Step::Send(
                [cut.clone(), b"data: {not json\n\n".to_vec()].concat(),
            )],
        ] {
            let up = FakeUpstream::start(vec![broken, vec![Step::Send(rest.clone())]]);
            let (model, text, errors) = answer(api, &up.base_url()).await;
            assert!(errors.is_empty(), "{api}: {errors:?}");
            assert_eq!(model, "box/b", "{api}");
            assert_eq!(text, "Once upon a time.", "{api}");
        }
    }
}

#[tokio::test]
async fn a_server_that_is_down_skips_every_model_on_it() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let (_, _, errors) = answer("openai-completions", &url).await;
    let all = errors.join("\n");
    assert!(all.contains("box/a") && all.contains("connection"), "{all}");
    assert!(
        all.contains("box/b: skipped, box is down (connection)"),
        "{all}"
    );
}

fn responses(deltas: &[&str], finish: bool) -> Vec<u8> {
    let mut b = sse_head();
    for d in deltas {
        b.extend_from_slice(
            format!(
                "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":{d:?}}}\n\n"
            )
            .as_bytes(),
        );
    }
    if finish {
        b.extend_from_slice(
            b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":2,\"total_tokens\":5}}}\n\n",
        );
    }
    b
}

/// A whole answer in `api`'s stream format.
fn whole(api: &str, deltas: &[&str]) -> Vec<Step> {
    vec![Step::Send(match api {
        "anthropic-messages" => anthropic(deltas, true),
        "openai-responses" => responses(deltas, true),
        _ => completions(deltas, true),
    })]
}

const APIS: [&str; 3] = [
    "openai-completions",
    "openai-responses",
    "anthropic-messages",
];

/// Models `a` and `b` on one provider, with extra provider settings.
fn catalog_with(api: &str, url: &str, extra: &str) -> String {
    format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  box: {{ baseUrl: "{url}", api: "{api}", timeoutSeconds: 2, {extra}
    models: [{{ id: "a", contextWindow: 4096, maxTokens: 64 }}, {{ id: "b", contextWindow: 4096, maxTokens: 64 }}, {{ id: "c", contextWindow: 4096, maxTokens: 64 }}] }},
}} }} }}"#
    )
}

struct Outcome {
    model: String,
    text: String,
    errors: Vec<String>,
    attempts: Vec<pincer_router::Attempt>,
    /// The model whose failure broke the answer off.
    stopped: String,
}

/// One streamed turn over `box/a`, `box/b` on `router`.
async fn turn_on(router: &Router, text: &str) -> Outcome {
    turn_over(router, text, &["box/a", "box/b"]).await
}

async fn turn_over(router: &Router, text: &str, refs: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[("HOME", dir.path().to_str().unwrap())]);
    let loaded = load_text(text, &dir.path().join("c.json"), &env);
    assert!(
        loaded.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        loaded.diagnostics
    );
    let catalog = Catalog::new(&loaded.config.models);
    let candidates: Vec<ModelSpec> = refs
        .iter()
        .map(|r| catalog.model(&ModelRef::parse(r).unwrap()).unwrap())
        .collect();
    let req = ChatRequest {
        messages: vec![Message::user("Tell a story")],
        ..ChatRequest::default()
    };
    let mut a = match router.start(&catalog, &candidates, "main", "t", &req).await {
        Ok(a) => a,
        Err(e) => {
            return Outcome {
                model: String::new(),
                text: String::new(),
                errors: vec![e.to_string()],
                attempts: e.attempts,
                stopped: String::new(),
            };
        }
    };
    let (mut text, mut errors) = (String::new(), Vec::new());
    while let Some(e) = a.next().await {
        match e {
            Ok(Event::Text { delta }) => text.push_str(&delta),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    Outcome {
        model: a.spec.reference.clone(),
        text,
        errors,
        attempts: a.attempts.clone(),
        stopped: a.stopped_model().to_string(),
    }
}

fn plain_router() -> Router {
    let env = Env::from_pairs(&[("HOME", "/nonexistent")]);
    Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None)
}

/// The chat calls a fake upstream received (probes left out), by model id.
fn chat_calls(up: &FakeUpstream) -> Vec<String> {
    up.requests()
        .iter()
        .filter(|r| {
            let line = r.head.lines().next().unwrap_or_default();
            ["/chat/completions", "/responses", "/messages"]
                .iter()
                .any(|p| line.contains(p))
        })
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            body["model"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

const PREFILL_REFUSED: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}"#;

#[tokio::test]
async fn a_refused_prefill_restarts_the_answer_and_is_remembered() {
    for api in ["openai-completions", "anthropic-messages"] {
        let cut = |d: &[&str]| {
            if api == "anthropic-messages" {
                anthropic(d, false)
            } else {
                completions(d, false)
            }
        };
        let router = plain_router();
        let up = FakeUpstream::start(vec![
            vec![Step::Send(cut(&["Once", " upon"]))],
            vec![Step::Send(http_response(400, &[], PREFILL_REFUSED))],
            whole(api, &["Once upon", " a time."]),
        ]);
        let text = catalog_text(api, &up.base_url());
        let o = turn_on(&router, &text).await;
        assert!(o.errors.is_empty(), "{api}: {:?}", o.errors);
        assert_eq!(
            (o.model.as_str(), o.text.as_str()),
            ("box/b", "Once upon a time."),
            "{api}"
        );
        let bodies: Vec<String> = up.requests().iter().map(|r| r.body.clone()).collect();
        assert_eq!(bodies.len(), 3, "{api}");
        assert!(
            bodies[1].contains("Once upon"),
            "{api}: the prefill was sent"
        );
        assert!(
            !bodies[2].contains("Once upon"),
            "{api}: the restart has no prefill"
        );
        assert!(
            o.attempts
                .iter()
                .any(|a| a.model == "box/b" && a.message.contains("refused the prefill")),
            "{api}: {:?}",
            o.attempts
        );

        // Remembered: the next rescue on box/b restarts at once (box/a
        // is cooling down now, so box/c breaks off this time).
        let up = FakeUpstream::start(vec![
            vec![Step::Send(cut(&["Once", " upon"]))],
            whole(api, &["Once upon a time."]),
        ]);
        let text = catalog_text(api, &up.base_url());
        let o = turn_over(&router, &text, &["box/c", "box/b"]).await;
        assert!(o.errors.is_empty(), "{api}: {:?}", o.errors);
        assert_eq!(o.text, "Once upon a time.", "{api}");
        assert_eq!(
            up.requests().len(),
            2,
            "{api}: no call that would be refused"
        );
    }
}

#[tokio::test]
async fn a_restart_that_says_something_else_ends_with_the_original_failure() {
    let router = plain_router();
    let up = FakeUpstream::start(vec![
        vec![Step::Send(completions(&["Once", " upon"], false))],
        vec![Step::Send(http_response(400, &[], PREFILL_REFUSED))],
        whole("openai-completions", &["A different story."]),
    ]);
    let o = turn_on(&router, &catalog_text("openai-completions", &up.base_url())).await;
    assert_eq!(o.text, "Once upon", "nothing of the other answer is shown");
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    let e = &o.errors[0];
    assert!(
        e.starts_with("protocol"),
        "the original failure (the cut): {e}"
    );
    assert_eq!(o.stopped, "box/a", "named after the model that broke off");
    assert!(
        e.contains("box/b") && e.contains("prefill"),
        "the refusal, as a note: {e}"
    );
}

fn rate_limited(retry_after: &str) -> Vec<Step> {
    vec![Step::Send(http_response(
        429,
        &[("retry-after", retry_after)],
        r#"{"error":{"message":"Rate limit reached"}}"#,
    ))]
}

#[tokio::test]
async fn a_short_wait_or_one_transient_failure_stays_on_the_primary_in_every_dialect() {
    for api in APIS {
        let ok = whole(api, &["Hello"]);
        // Retry-After: 2, once: the primary answers after the wait.
        let up = FakeUpstream::start(vec![rate_limited("2"), ok.clone()]);
        let started = std::time::Instant::now();
        let o = turn_on(&plain_router(), &catalog_text(api, &up.base_url())).await;
        let took = started.elapsed();
        assert_eq!(
            (o.model.as_str(), o.text.as_str()),
            ("box/a", "Hello"),
            "{api}: {:?}",
            o.errors
        );
        assert!(
            took >= std::time::Duration::from_secs(2),
            "{api}: waited {took:?}"
        );
        assert_eq!(chat_calls(&up), ["a", "a"], "{api}");
        assert_eq!(o.attempts.len(), 1, "{api}: the retry is counted");
        assert_eq!(
            o.attempts[0].next,
            Next::SameModel(std::time::Duration::from_secs(2))
        );

        // One 500, then the primary answers.
        let up = FakeUpstream::start(vec![
            vec![Step::Send(http_response(
                500,
                &[],
                r#"{"error":{"message":"boom"}}"#,
            ))],
            ok.clone(),
        ]);
        let o = turn_on(&plain_router(), &catalog_text(api, &up.base_url())).await;
        assert_eq!(
            (o.model.as_str(), o.text.as_str()),
            ("box/a", "Hello"),
            "{api}"
        );
        assert_eq!(chat_calls(&up), ["a", "a"], "{api}");

        // A reset after the server took the request, then the primary answers.
        let up = FakeUpstream::start(vec![
            vec![Step::Sleep(std::time::Duration::from_millis(700))],
            ok.clone(),
        ]);
        let o = turn_on(&plain_router(), &catalog_text(api, &up.base_url())).await;
        assert_eq!(
            (o.model.as_str(), o.text.as_str()),
            ("box/a", "Hello"),
            "{api}"
        );
        assert_eq!(
            o.attempts[0].kind,
            Some(pincer_llm::ErrorKind::Reset),
            "{api}"
        );

        // A long Retry-After fails over at once.
        let up = FakeUpstream::start(vec![rate_limited("30"), ok.clone()]);
        let started = std::time::Instant::now();
        let o = turn_on(&plain_router(), &catalog_text(api, &up.base_url())).await;
        assert_eq!(o.model, "box/b", "{api}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{api}"
        );

        // Pure failover when the provider says so.
        let up = FakeUpstream::start(vec![
            vec![Step::Send(http_response(
                500,
                &[],
                r#"{"error":{"message":"boom"}}"#,
            ))],
            ok.clone(),
        ]);
        let text = catalog_with(api, &up.base_url(), "params: { retry: false },");
        let o = turn_on(&plain_router(), &text).await;
        assert_eq!(o.model, "box/b", "{api}");
        assert_eq!(chat_calls(&up), ["a", "b"], "{api}");

        // A refusal is never asked again.
        let up = FakeUpstream::start(vec![vec![Step::Send(http_response(
            403,
            &[],
            r#"{"error":{"message":"Your request was flagged by the content filter"}}"#,
        ))]]);
        let _ = turn_on(&plain_router(), &catalog_text(api, &up.base_url())).await;
        assert_eq!(
            chat_calls(&up).iter().filter(|m| *m == "a").count(),
            1,
            "{api}"
        );
    }
}

/// A llama.cpp server's own endpoints, as the router's probe asks them;
/// `busy`: a slot is working on a request.
fn llama_cpp_routes(health: Vec<Step>, busy: bool) -> Vec<(&'static str, Vec<Step>)> {
    let list = r#"{"object":"list","data":[{"id":"a","object":"model","owned_by":"llamacpp"},{"id":"b","object":"model","owned_by":"llamacpp"}]}"#;
    let slots = format!(
        r#"[{{"id":0,"n_ctx":4096,"is_processing":{busy},"next_token":[{{"has_next_token":true,"n_remain":5,"n_decoded":0}}]}}]"#
    );
    vec![
        ("/models", vec![Step::Send(http_response(200, &[], list))]),
        ("/props", vec![Step::Send(http_response(404, &[], "{}"))]),
        ("/health", health),
        ("/slots", vec![Step::Send(http_response(200, &[], &slots))]),
    ]
}

#[tokio::test]
async fn a_silent_server_that_is_not_loading_is_left_at_the_first_token_limit() {
    for api in APIS {
        let up = FakeUpstream::routed(
            vec![
                vec![Step::Sleep(std::time::Duration::from_secs(30))],
                whole(api, &["Hello"]),
            ],
            llama_cpp_routes(
                vec![Step::Send(http_response(200, &[], r#"{"status":"ok"}"#))],
                false,
            ),
        );
        let text = with_first_token_limit(api, &up.base_url());
        let started = std::time::Instant::now();
        let o = turn_on(&plain_router(), &text).await;
        let took = started.elapsed();
        assert_eq!(
            (o.model.as_str(), o.text.as_str()),
            ("box/b", "Hello"),
            "{api}: {:?}",
            o.errors
        );
        assert!(
            took < std::time::Duration::from_secs(4),
            "{api}: took {took:?}"
        );
        assert_eq!(
            chat_calls(&up),
            ["a", "b"],
            "{api}: the silent server is called once"
        );
        assert_eq!(
            o.attempts[0].kind,
            Some(pincer_llm::ErrorKind::Timeout),
            "{api}"
        );
    }
}

/// Models `a` and `b` with a 3 s first-token limit inside a 60 s timeout.
fn with_first_token_limit(api: &str, url: &str) -> String {
    catalog_with(api, url, "params: { firstTokenTimeoutSeconds: 3 },")
        .replace("timeoutSeconds: 2,", "timeoutSeconds: 60,")
}

/// `a` answers after 5 s (past the limit) behind llama.cpp endpoints that
/// say `routes`; the model that answered, and the chat calls made.
async fn after_five_seconds(routes: Vec<(&'static str, Vec<Step>)>) -> (Outcome, Vec<String>) {
    let mut slow = vec![Step::Sleep(std::time::Duration::from_secs(5))];
    slow.extend(whole("openai-completions", &["From a"]));
    let up = FakeUpstream::routed(
        vec![slow, whole("openai-completions", &["Fallback"])],
        routes,
    );
    let text = with_first_token_limit("openai-completions", &up.base_url());
    let o = turn_on(&plain_router(), &text).await;
    (o, chat_calls(&up))
}

#[tokio::test]
async fn a_server_loading_the_model_is_waited_for_past_the_limit() {
    let loading = r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#;
    let (o, calls) = after_five_seconds(llama_cpp_routes(
        vec![Step::Send(http_response(503, &[], loading))],
        false,
    ))
    .await;
    assert_eq!(
        (o.model.as_str(), o.text.as_str()),
        ("box/a", "From a"),
        "{:?}",
        o.errors
    );
    assert_eq!(calls, ["a"]);
}

#[tokio::test]
async fn a_server_reading_a_long_prompt_is_waited_for_past_the_limit() {
    // llama.cpp's /health says ok while a slot processes the prompt; its
    // /slots says a request is being worked on.
    let ok = vec![Step::Send(http_response(200, &[], r#"{"status":"ok"}"#))];
    let (o, calls) = after_five_seconds(llama_cpp_routes(ok, true)).await;
    assert_eq!(
        (o.model.as_str(), o.text.as_str()),
        ("box/a", "From a"),
        "{:?}",
        o.errors
    );
    assert_eq!(calls, ["a"]);
}

/// Ollama (its own API) loads a cold model on the first request, silently:
/// its `/api/ps` does not list the model, so the wait past the first-token
/// limit is a load, waited for, not a stuck server left for the next model.
#[tokio::test]
async fn an_ollama_model_loading_on_first_use_is_waited_for() {
    let mut a = OllamaModel::new("a", 4096, &["completion"]);
    a.loaded = false;
    a.load_time = std::time::Duration::from_secs(5);
    let ollama = OllamaReplay::start(vec![a, OllamaModel::new("b", 4096, &["completion"])]);
    let text = with_first_token_limit("ollama", &ollama.base_url());
    let o = turn_on(&plain_router(), &text).await;
    assert_eq!(o.model, "box/a", "{:?}", o.errors);
    assert!(o.text.starts_with("Hello from"), "{}", o.text);
    let chats: Vec<String> = ollama
        .chats()
        .iter()
        .map(|c| c["model"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(chats, ["a"], "no call to the next model");
}
