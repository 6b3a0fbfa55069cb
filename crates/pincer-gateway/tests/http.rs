//! The gateway in-process (`oneshot`), over scripted upstreams: auth and its
//! lockout, routing and failover as a client sees them, reasoning kept out
//! of chat text, sessions, limits and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pincer_config::{Env, load_text};
use pincer_gateway::{Gateway, Settings, app};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, Step, completions_stream, free_port, sse_head};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789";

/// A gateway whose default agent runs `acme/m` then `backup/m`, with a token.
fn gateway(primary: &str, fallback: &str, extra: &str, state: &Path) -> &'static Gateway {
    let section = format!(r#"auth: {{ token: "{TOKEN}" }}, {extra}"#);
    gateway_with(primary, fallback, &section, state)
}

/// The same, with `gateway: { <section> }` as given.
fn gateway_with(primary: &str, fallback: &str, section: &str, state: &Path) -> &'static Gateway {
    gateway_tuned(primary, fallback, section, state, |_| {})
}

/// The same, with the settings changed by `tune` before it starts.
fn gateway_tuned(
    primary: &str,
    fallback: &str,
    section: &str,
    state: &Path,
    tune: impl FnOnce(&mut Settings),
) -> &'static Gateway {
    let text = format!(
        r#"{{
  models: {{ mode: "replace", providers: {{
    acme: {{ baseUrl: "{primary}", api: "openai-completions", timeoutSeconds: 5,
      models: [{{ id: "m", contextWindow: 4096, maxTokens: 64 }}] }},
    backup: {{ baseUrl: "{fallback}", api: "openai-completions", timeoutSeconds: 5,
      models: [{{ id: "m", contextWindow: 4096, maxTokens: 64 }}] }},
  }} }},
  agents: {{ defaults: {{ model: {{ primary: "acme/m", fallbacks: ["backup/m"] }} }} }},
  gateway: {{ {section} }},
}}"#
    );
    let env = Env::from_pairs(&[]);
    let loaded = load_text(&text, Path::new("/nowhere/openclaw.json"), &env);
    assert!(
        loaded.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        loaded.diagnostics
    );
    let loaded = Box::leak(Box::new(loaded));
    let mut settings = Settings::resolve(&loaded.config, &env, Some(0), None).unwrap();
    tune(&mut settings);
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    Gateway::new(loaded, settings, router, state).unwrap()
}

fn closed() -> String {
    format!("http://127.0.0.1:{}/v1", free_port())
}

fn post(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(
    gw: &'static Gateway,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app(gw).oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn authed_get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

fn chat(content: &str) -> Value {
    json!({"model": "openclaw", "messages": [{"role": "user", "content": content}]})
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn auth_guards_all_but_health_and_locks_out_a_guesser() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    let get = |path: &str, token: Option<&str>, ip: [u8; 4]| {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let mut req = b.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        req
    };
    let (s, _, _) = send(gw, get("/healthz", None, [10, 0, 0, 1])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = send(gw, get("/v1/models", None, [10, 0, 0, 1])).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "unauthorized"
    );
    let (s, _, _) = send(gw, get("/v1/models", Some(TOKEN), [10, 0, 0, 1])).await;
    assert_eq!(s, StatusCode::OK);

    for _ in 0..10 {
        let (s, _, _) = send(gw, get("/v1/models", Some("guess"), [10, 0, 0, 2])).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Locked out now, even with the right token; other addresses are not.
    let (s, headers, _) = send(gw, get("/v1/models", Some(TOKEN), [10, 0, 0, 2])).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 300, "{retry}");
    let (s, _, _) = send(gw, get("/v1/models", Some(TOKEN), [10, 0, 0, 3])).await;
    assert_eq!(s, StatusCode::OK);
}

#[test]
fn listening_beyond_loopback_needs_auth() {
    let env = Env::from_pairs(&[]);
    let open = load_text("{}", Path::new("/nowhere/openclaw.json"), &env);
    let e = Settings::resolve(&open.config, &env, None, Some("lan"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("0.0.0.0:18789") && e.contains("gateway.auth.token"),
        "{e}"
    );
    assert!(Settings::resolve(&open.config, &env, None, None).is_ok());
    let env = Env::from_pairs(&[("OPENCLAW_GATEWAY_TOKEN", TOKEN)]);
    let s = Settings::resolve(&open.config, &env, Some(9000), Some("lan")).unwrap();
    assert_eq!(s.addr.to_string(), "0.0.0.0:9000");
}

#[tokio::test]
async fn reasoning_never_reaches_chat_text_and_is_an_item_in_responses() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(vec![completions_stream(&[
        r#"{"reasoning_content":"The user asks about France. "}"#,
        r#"{"content":"<think>hidden plan</think>"}"#,
        r#"{"content":"Paris."}"#,
    ])]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());

    let (s, headers, body) = send(gw, post("/v1/chat/completions", &chat("Capital?"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Paris.");
    assert!(
        !body.contains("France.") && !body.contains("hidden plan"),
        "{body}"
    );
    assert_eq!(headers["x-pincer-model"], "acme/m");
    assert_eq!(v["metadata"]["model"], "acme/m");

    let mut streamed = chat("Capital?");
    streamed["stream"] = json!(true);
    let (_, _, body) = send(gw, post("/v1/chat/completions", &streamed)).await;
    assert!(
        !body.contains("France.") && !body.contains("hidden plan"),
        "{body}"
    );
    let lines = data_lines(&body);
    assert_eq!(lines.last().unwrap(), "[DONE]");
    let text: String = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "Paris.");

    let (_, _, body) = send(
        gw,
        post(
            "/v1/responses",
            &json!({"model": "openclaw", "input": "Capital?"}),
        ),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["output"][0]["type"], "reasoning");
    let reasoning = v["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(
        reasoning.contains("France") && reasoning.contains("hidden plan"),
        "{reasoning}"
    );
    assert_eq!(v["output"][1]["type"], "message");
    assert_eq!(v["output"][1]["content"][0]["text"], "Paris.");
    assert_eq!(v["status"], "completed");
}

#[tokio::test]
async fn a_failed_primary_is_invisible_but_named() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(vec![completions_stream(&[
        r#"{"content":"Hi from backup"}"#,
    ])]);
    let gw = gateway(&closed(), &up.base_url(), "", dir.path());
    let (s, headers, body) = send(gw, post("/v1/chat/completions", &chat("Hi"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["x-pincer-model"], "backup/m");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hi from backup");
    let from = v["metadata"]["fallback_from"].as_str().unwrap();
    assert!(from.starts_with("acme/m ("), "{from}");
    // `model` is the model that answered (OpenAI's meaning), everywhere;
    // the agent stays visible in the metadata.
    assert_eq!(v["model"], "backup/m");
    assert_eq!(v["metadata"]["agent"], "main");
    let mut streamed = chat("Hi");
    streamed["stream"] = json!(true);
    let (_, _, body) = send(gw, post("/v1/chat/completions", &streamed)).await;
    for chunk in data_lines(&body)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        assert_eq!(chunk["model"], "backup/m", "{chunk}");
    }
    for stream in [false, true] {
        let req = json!({"input": "Hi", "stream": stream});
        let (_, _, body) = send(gw, post("/v1/responses", &req)).await;
        assert!(body.contains(r#""model":"backup/m""#), "{body}");
        assert!(!body.contains(r#""model":"openclaw""#), "{body}");
    }
}

#[tokio::test]
async fn when_every_model_fails_the_status_and_message_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    for stream in [false, true] {
        let mut req = chat("Hi");
        req["stream"] = json!(stream);
        let (s, _, body) = send(gw, post("/v1/chat/completions", &req)).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("acme/m") && message.contains("backup/m"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_answer_cut_mid_stream_ends_in_an_error_not_a_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut = sse_head();
    cut.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once upon\"}}]}\n\n",
    );
    let up = FakeUpstream::start(vec![vec![Step::Send(cut)]]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let mut req = chat("Tell a story");
    req["stream"] = json!(true);
    let (s, _, body) = send(gw, post("/v1/chat/completions", &req)).await;
    assert_eq!(s, StatusCode::OK);
    let lines = data_lines(&body);
    assert!(body.contains("Once upon"));
    assert!(!body.contains("finish_reason\":\"stop"), "{body}");
    let error: Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acme/m"),
        "{body}"
    );

    let (_, _, body) = send(
        gw,
        post(
            "/v1/responses",
            &json!({"input": "Tell a story", "stream": true}),
        ),
    )
    .await;
    assert!(body.contains("event: response.failed"), "{body}");
    assert!(!body.contains("response.completed"), "{body}");
}

#[tokio::test]
async fn a_stream_broken_after_a_tool_call_names_the_upstream_cause() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut = sse_head();
    cut.extend_from_slice(
        br#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}

"#,
    );
    let up = FakeUpstream::start(vec![vec![Step::Send(cut)]]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let mut req = chat("Weather?");
    req["stream"] = json!(true);
    req["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let (s, _, body) = send(gw, post("/v1/chat/completions", &req)).await;
    assert_eq!(s, StatusCode::OK);
    let lines = data_lines(&body);
    let error: Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("acme/m stopped mid-answer"), "{message}");
    assert!(
        message.contains("stream ended before the model finished"),
        "the upstream's own cause: {message}"
    );
    assert!(!message.contains("no model answered"), "{message}");
}

#[tokio::test]
async fn unknown_models_and_agents_are_404s() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    for model in ["nope/x", "openclaw/ghost", "agent:ghost"] {
        let mut req = chat("Hi");
        req["model"] = json!(model);
        let (s, _, body) = send(gw, post("/v1/chat/completions", &req)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{model}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
    }
    let (s, _, _) = send(gw, authed_get("/v1/models/nope")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, body) = send(gw, authed_get("/v1/models")).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    for id in [
        "openclaw",
        "openclaw/default",
        "openclaw/main",
        "acme/m",
        "backup/m",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
}

#[tokio::test]
async fn bad_requests_get_a_400_or_413_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    let raw = |body: Body| {
        Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(body)
            .unwrap()
    };
    let (s, _, body) = send(gw, raw(Body::from("{not json"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("not valid JSON"), "{body}");
    let (s, _, body) = send(gw, post("/v1/chat/completions", &json!({"messages": "hi"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("messages"), "{body}");
    let big = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(21 << 20)
    );
    let (s, _, _) = send(gw, raw(Body::from(big))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn disabled_endpoints_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        &closed(),
        &closed(),
        "http: { endpoints: { responses: { enabled: false } } }",
        dir.path(),
    );
    let (s, _, body) = send(gw, post("/v1/responses", &json!({"input": "hi"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("responses.enabled"), "{body}");
}

#[tokio::test]
async fn the_user_field_keeps_one_session_and_turns_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Noted."}"#])]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    for (i, text) in ["first", "second"].iter().enumerate() {
        let mut req = chat(text);
        req["user"] = json!("ada");
        req["stream"] = json!(i == 1);
        let (s, _, _) = send(gw, post("/v1/chat/completions", &req)).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _, _) = send(gw, post("/v1/chat/completions", &chat("anonymous"))).await;
    assert_eq!(s, StatusCode::OK);

    let store = &gw.sessions()["main"];
    let sessions = store.list();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let entry = store.get("agent:main:openai-user:ada").unwrap();
    assert_eq!(entry.turns, 2);
    let t = store.transcript(&entry.session_id).unwrap();
    let users: Vec<&str> = t
        .events
        .iter()
        .filter(|e| e["message"]["role"] == "user")
        .map(|e| e["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["first", "second"]);
    let answers = t
        .events
        .iter()
        .filter(|e| e["message"]["role"] == "assistant")
        .count();
    assert_eq!(answers, 2);

    let (s, _, body) = send(gw, authed_get("/metrics")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("pincer_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("pincer_turns_total{model=\"acme/m\"} 3"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow = vec![Step::Send(sse_head())];
    for _ in 0..50 {
        slow.push(Step::Send(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tick \"}}]}\n\n".to_vec(),
        ));
        slow.push(Step::Sleep(Duration::from_millis(200)));
    }
    let up = FakeUpstream::start(vec![slow]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let mut req = chat("count");
    req["stream"] = json!(true);
    let response = app(gw)
        .oneshot(post("/v1/chat/completions", &req))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    // The turn notices and stops; it is recorded as cut short.
    let metrics = || async {
        let (_, _, m) = send(gw, authed_get("/metrics")).await;
        m
    };
    let mut cancelled = false;
    for _ in 0..100 {
        if metrics().await.contains("pincer_turns_cancelled_total 1") {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "{}", metrics().await);
    let store = &gw.sessions()["main"];
    let (_, entry) = store.list().pop().unwrap();
    let t = store.transcript(&entry.session_id).unwrap();
    let last = &t.events.last().unwrap()["message"];
    assert_eq!(last["stopReason"], "error");
    assert!(last["errorMessage"].as_str().unwrap().contains("went away"));
}

#[tokio::test]
async fn keep_warm_pings_the_providers_models_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"."}"#])]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    assert_eq!(
        gw.unknown_providers(&[pincer_gateway::KeepWarm::parse("nowhere").unwrap()]),
        ["nowhere"]
    );
    let warm = pincer_gateway::KeepWarm {
        provider: "acme".into(),
        every: Duration::from_millis(100),
    };
    let task = tokio::spawn(gw.keep_warm(warm));
    let mut pings = 0;
    for _ in 0..100 {
        pings = up.requests().len();
        if pings >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert!(pings >= 2, "{pings} pings");
    let body: Value = serde_json::from_str(&up.requests()[0].body).unwrap();
    assert_eq!(body["model"], "m");
    assert_eq!(body["max_tokens"], 1);
    // Pings are not turns: they open no session.
    assert!(gw.sessions()["main"].list().is_empty());
}

#[tokio::test]
async fn readiness_details_are_for_local_or_authenticated_callers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    let ready = |ip: [u8; 4], token: Option<&str>| {
        let mut b = Request::get("/readyz");
        if let Some(t) = token {
            b = b.header("authorization", format!("bearer {t}"));
        }
        let mut req = b.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        req
    };
    // The primary's server is down: not ready, and local callers see why.
    let (s, _, body) = send(gw, ready([127, 0, 0, 1], None)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["failing"][0].as_str().unwrap().contains("acme/m"),
        "{body}"
    );
    let (s, _, body) = send(gw, ready([10, 0, 0, 9], None)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, r#"{"ready":false}"#);
    let (_, _, body) = send(gw, ready([10, 0, 0, 9], Some(TOKEN))).await;
    assert!(body.contains("acme/m"), "{body}");
}

fn from(req: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    let mut req = req;
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    req
}

#[tokio::test]
async fn rate_limit_follows_the_config_and_spares_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = || {
        Request::get("/v1/models")
            .header("authorization", "Bearer guess")
            .body(Body::empty())
            .unwrap()
    };
    // OpenClaw's default: loopback callers are never locked out.
    let gw = gateway(&closed(), &closed(), "", dir.path());
    for _ in 0..12 {
        let (s, _, _) = send(gw, from(wrong(), [127, 0, 0, 1])).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = send(gw, from(authed_get("/v1/models"), [127, 0, 0, 1])).await;
    assert_eq!(s, StatusCode::OK);

    let section = format!(
        r#"auth: {{ token: "{TOKEN}", rateLimit: {{ maxAttempts: 3, lockoutMs: 60000, exemptLoopback: false }} }}"#
    );
    let gw = gateway_with(&closed(), &closed(), &section, dir.path());
    for _ in 0..3 {
        let (s, _, _) = send(gw, from(wrong(), [127, 0, 0, 1])).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, headers, _) = send(gw, from(authed_get("/v1/models"), [127, 0, 0, 1])).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 60, "{retry}");
}

#[test]
fn a_token_and_a_password_without_a_mode_are_refused() {
    let env = Env::from_pairs(&[("OPENCLAW_GATEWAY_PASSWORD", "hunter2-hunter2")]);
    let both = load_text(
        &format!(r#"{{ gateway: {{ auth: {{ token: "{TOKEN}" }} }} }}"#),
        Path::new("/nowhere/openclaw.json"),
        &env,
    );
    let e = Settings::resolve(&both.config, &env, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gateway.auth.mode"), "{e}");
    assert!(!e.contains(TOKEN) && !e.contains("hunter2"), "{e}");
    let chosen = load_text(
        &format!(r#"{{ gateway: {{ auth: {{ mode: "password", token: "{TOKEN}" }} }} }}"#),
        Path::new("/nowhere/openclaw.json"),
        &env,
    );
    assert!(Settings::resolve(&chosen.config, &env, None, None).is_ok());
}

#[tokio::test]
async fn loopback_listens_on_ipv4_and_ipv6() {
    let env = Env::from_pairs(&[]);
    let open = load_text("{}", Path::new("/nowhere/openclaw.json"), &env);
    let settings = Settings::resolve(&open.config, &env, Some(0), None).unwrap();
    let listeners = pincer_gateway::listen(&settings).await.unwrap();
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    assert!(
        addrs[0].ip().is_loopback() && addrs[0].is_ipv4(),
        "{addrs:?}"
    );
    // Where this host has IPv6, ::1 answers on the same port.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert_eq!(addrs[1].to_string(), format!("[::1]:{}", addrs[0].port()));
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&closed(), &closed(), "", dir.path());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pincer_gateway::serve(gw, listeners, async move {
        let _ = stop_rx.await;
    }));
    for addr in &addrs {
        let r = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{addr}");
    }
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn tool_choice_and_sampling_settings_reach_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(vec![
        completions_stream(&[r#"{"content":"ok"}"#]),
        completions_stream(&[r#"{"content":"ok"}"#]),
    ]);
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let weather = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let mut body = chat("Weather in Paris?");
    body["tools"] = json!([weather]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    body["top_p"] = json!(0.5);
    body["seed"] = json!(7);
    body["frequency_penalty"] = json!(0.25);
    let (s, _, text) = send(gw, post("/v1/chat/completions", &body)).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let sent: Value = serde_json::from_str(&up.requests()[0].body).unwrap();
    assert_eq!(sent["tool_choice"], body["tool_choice"]);
    assert_eq!(
        (sent["top_p"].clone(), sent["seed"].clone()),
        (json!(0.5), json!(7))
    );
    assert_eq!(sent["frequency_penalty"], json!(0.25));

    // Responses names the function at the top level; the echo says what was asked.
    let responses = json!({"model": "openclaw", "input": "Weather in Paris?",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "tool_choice": "required"});
    let (s, _, text) = send(gw, post("/v1/responses", &responses)).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["tool_choice"], "required");
    assert_eq!(r["tools"][0]["name"], "get_weather");
    let sent: Value = serde_json::from_str(&up.requests()[1].body).unwrap();
    assert_eq!(sent["tool_choice"], "required");

    // Choices that cannot be honoured are refused before any model is called.
    let bad = [
        (json!("sometimes"), true, "\"sometimes\""),
        (
            json!({"type": "function", "function": {"name": "get_time"}}),
            true,
            "\"get_time\", which is not in `tools`",
        ),
        (json!("required"), false, "no `tools`"),
    ];
    for (choice, with_tools, says) in bad {
        let mut body = chat("Weather in Paris?");
        if with_tools {
            body["tools"] = json!([weather]);
        }
        body["tool_choice"] = choice;
        let (s, _, text) = send(gw, post("/v1/chat/completions", &body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn readiness_checks_do_not_turn_into_load_on_the_model_server() {
    let list = pincer_testkit::http_response(
        200,
        &[],
        r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#,
    );
    let up = FakeUpstream::routed(vec![], vec![("/models", vec![Step::Send(list)])]);
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let ready = || Request::get("/readyz").body(Body::empty()).unwrap();
    let (s, _, body) = send(gw, ready()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let one_probe = up.requests().len();
    assert!(one_probe > 0, "the first check asks the server");
    // Twenty checks at once and one after the other: still that one probe.
    let many = (0..20).map(|_| send(gw, ready()));
    for (s, _, _) in futures_util::future::join_all(many).await {
        assert_eq!(s, StatusCode::OK);
    }
    for _ in 0..20 {
        send(gw, ready()).await;
    }
    assert_eq!(up.requests().len(), one_probe);
}

#[tokio::test]
async fn a_silent_stream_gets_keep_alive_comments_so_proxies_do_not_cut_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = sse_head();
    first.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Thinking\"}}]}\n\n",
    );
    let rest = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" done\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_vec();
    let up = FakeUpstream::start(vec![vec![
        Step::Send(first),
        Step::Sleep(Duration::from_millis(1500)),
        Step::Send(rest),
    ]]);
    let section = format!(r#"auth: {{ token: "{TOKEN}" }}"#);
    let gw = gateway_tuned(&up.base_url(), &closed(), &section, dir.path(), |s| {
        s.keep_alive = Duration::from_millis(300);
    });
    for (path, body) in [
        ("/v1/chat/completions", {
            let mut r = chat("Think");
            r["stream"] = json!(true);
            r
        }),
        ("/v1/responses", json!({"input": "Think", "stream": true})),
    ] {
        let (s, headers, body) = send(gw, post(path, &body)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], "text/event-stream", "{path}");
        assert!(body.contains(": keep-alive\n"), "{path}: {body}");
        assert!(body.contains(" done"), "{path}: {body}");
    }
}

#[tokio::test]
async fn fields_pincer_does_not_use_are_named_in_a_header() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hi"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&up.base_url(), &closed(), "", dir.path());
    let mut req = chat("Hi");
    req["top_k"] = json!(40);
    req["min_p"] = json!(0.1);
    req["logprobs"] = json!(false);
    let (s, headers, _) = send(gw, post("/v1/chat/completions", &req)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["x-pincer-ignored-fields"], "min_p, top_k");
}
