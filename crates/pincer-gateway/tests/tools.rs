//! The agent's tools through the gateway: `POST /tools/invoke` with its
//! deny list for HTTP callers, and the OpenAI endpoint keeping the
//! caller's own tools apart from the agent's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pincer_config::{Env, load_text};
use pincer_gateway::{Gateway, Settings, app};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, completions_tool_stream, whole_reply};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "tools-token-0123456789";

/// A gateway on `up` (a 32k window: tools are offered), its workspace.
fn gateway(up: &str, section: &str, state: &Path) -> (&'static Gateway, PathBuf) {
    let ws = state.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let text = format!(
        r#"{{
  models: {{ mode: "replace", providers: {{ acme: {{ baseUrl: "{up}", api: "openai-completions",
    models: [{{ id: "m", contextWindow: 32768, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "acme/m" }}, workspace: "{}" }} }},
  gateway: {{ auth: {{ token: "{TOKEN}" }}, {section} }},
}}"#,
        ws.display()
    );
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/x/openclaw.json"),
        &env,
    )));
    assert!(loaded.errors().next().is_none(), "{:?}", loaded.diagnostics);
    let settings = Settings::resolve(&loaded.config, &env, Some(0), None).unwrap();
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    (Gateway::new(loaded, settings, router, state).unwrap(), ws)
}

async fn post(gw: &'static Gateway, path: &str, body: String, auth: bool) -> (StatusCode, Value) {
    let mut b = Request::post(path).header("content-type", "application/json");
    if auth {
        b = b.header("authorization", format!("Bearer {TOKEN}"));
    }
    let response = app(gw)
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn tools_invoke_runs_allowed_tools_and_refuses_the_rest() {
    let state = tempfile::tempdir().unwrap();
    let (gw, ws) = gateway("http://127.0.0.1:9/v1", "", state.path());
    std::fs::write(ws.join("notes.txt"), "remember the milk").unwrap();
    let invoke = |body: Value| post(gw, "/tools/invoke", body.to_string(), true);

    let (s, v) = invoke(json!({"tool": "read", "args": {"path": "notes.txt"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true);
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("remember the milk")
    );

    let (s, v) = invoke(json!({"tool": "session_status", "sessionKey": "main"})).await;
    // No session yet: the tool says so, as a tool error.
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["type"], "tool_error");

    // HTTP callers never get exec, write, edit or process, whatever the policy.
    for tool in [
        "exec",
        "write",
        "edit",
        "process",
        "sessions_spawn",
        "no_such_tool",
    ] {
        let (s, v) = invoke(
            json!({"tool": tool, "args": {"command": "touch x", "path": "x", "content": "x"}}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{tool}: {v}");
        assert_eq!(v["error"]["type"], "not_found");
        assert_eq!(v["error"]["message"], format!("Tool not available: {tool}"));
    }
    assert!(!ws.join("x").exists());
    // web_fetch is not in the default policy either.
    let (s, _) = invoke(json!({"tool": "web_fetch", "args": {"url": "http://example.com"}})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = invoke(json!({"args": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["message"], "tools.invoke requires body.tool");
    let (s, v) = invoke(json!({"tool": "read", "args": {"path": "../../etc/passwd"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the workspace")
    );
    let (s, _) = post(gw, "/tools/invoke", "not json".into(), true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post(
        gw,
        "/tools/invoke",
        json!({"tool": "read"}).to_string(),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let big = json!({"tool": "read", "args": {"path": "x".repeat(3 << 20)}}).to_string();
    let (s, _) = post(gw, "/tools/invoke", big, true).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn gateway_tools_allow_takes_a_tool_off_the_deny_list() {
    let state = tempfile::tempdir().unwrap();
    let (gw, ws) = gateway(
        "http://127.0.0.1:9/v1",
        r#"tools: { allow: ["write"], deny: ["read"] }"#,
        state.path(),
    );
    let (s, v) = post(
        gw,
        "/tools/invoke",
        json!({"tool": "write", "args": {"path": "w.txt", "content": "hi"}}).to_string(),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(std::fs::read_to_string(ws.join("w.txt")).unwrap(), "hi");
    let (s, _) = post(
        gw,
        "/tools/invoke",
        json!({"tool": "read", "args": {"path": "w.txt"}}).to_string(),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_callers_tools_come_back_to_it_and_the_agents_run_here() {
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&[("c1", "read", r#"{"path":"city.txt"}"#)]),
        completions_tool_stream(&[("c2", "get_weather", r#"{"city":"Paris"}"#)]),
        whole_reply("openai-completions", "It is sunny in Paris.", &[]),
    ]);
    let state = tempfile::tempdir().unwrap();
    let (gw, ws) = gateway(&up.base_url(), "", state.path());
    std::fs::write(ws.join("city.txt"), "Paris").unwrap();
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "openclaw", "user": "u1", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "Weather in the city from city.txt?"}]});
    let response = app(gw)
        .oneshot(
            Request::post("/v1/chat/completions")
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    // Only the caller's call reaches the caller, numbered from 0.
    assert!(text.contains("get_weather"), "{text}");
    assert!(!text.contains("\"read\""), "{text}");
    assert!(text.contains("\"finish_reason\":\"tool_calls\""), "{text}");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    let first: Value = serde_json::from_str(&reqs[0].body).unwrap();
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"get_weather") && names.contains(&"read"),
        "{names:?}"
    );
    // The agent's read ran and its result went to the model.
    assert!(reqs[1].body.contains("Paris"));

    // The caller answers its call; the turn goes on server-side.
    let body = json!({"model": "openclaw", "user": "u1", "tools": tools, "messages": [
        {"role": "user", "content": "Weather in the city from city.txt?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c2", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny"}]});
    let (s, v) = post(gw, "/v1/chat/completions", body.to_string(), true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "It is sunny in Paris."
    );
}
