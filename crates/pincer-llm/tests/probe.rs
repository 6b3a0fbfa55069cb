//! Asking servers about a model: llama.cpp's real server, and the documented
//! replies of LM Studio and Ollama (which do not install here) from a small
//! axum app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::target;
use pincer_llm::{Client, Dialect, ErrorKind, LoadState, ServerKind, ServerReport};
use pincer_testkit::{LlamaServer, free_port};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(3);

async fn probe(base_url: &str, model: &str, key: Option<&str>) -> ServerReport {
    let mut t = target(Dialect::OpenAiCompletions, base_url, key);
    t.model_id = model.into();
    Client::new().unwrap().probe(&t, LIMIT).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/v1")
}

fn json_route(body: Value) -> axum::routing::MethodRouter {
    get(move || async move { axum::Json(body) })
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn llama_cpp_server_reports_listed_loaded_and_its_context() {
    let server = LlamaServer::start_with_ctx(3072);
    let r = probe(&server.base_url(), "smollm2", None).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.server, Some(ServerKind::LlamaCpp));
    assert_eq!(r.listed, Some(true));
    assert_eq!(r.state, Some(LoadState::Loaded));
    assert_eq!(r.context_limit, Some(3072));

    let r = probe(&server.base_url(), "qwen3-8b", None).await;
    assert_eq!(r.listed, Some(false));
    assert_eq!(r.models, vec!["smollm2".to_string()]);
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error() {
    let r = probe(&format!("http://127.0.0.1:{}/v1", free_port()), "m", None).await;
    assert_eq!(r.error.map(|e| e.kind), Some(ErrorKind::Connection));
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error_without_the_key() {
    let key = "sk-probe-secret-0123456789";
    let app = Router::new().route(
        "/v1/models",
        get(move || async move {
            (
                StatusCode::UNAUTHORIZED,
                format!(r#"{{"error":{{"message":"Incorrect API key provided: {key}"}}}}"#),
            )
        }),
    );
    let r = probe(&serve(app).await, "m", Some(key)).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(!e.message.contains(key), "{}", e.message);
}

#[tokio::test]
async fn llama_cpp_while_loading() {
    let app = Router::new().fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#,
        )
    });
    let r = probe(&serve(app).await, "m", None).await;
    assert!(r.error.is_none());
    assert_eq!(r.state, Some(LoadState::Loading));
}

#[tokio::test]
async fn lm_studio_cold_and_loaded_models() {
    let app = Router::new()
        .route(
            "/v1/models",
            json_route(json!({"object":"list","data":[
                {"id":"qwen3-8b","object":"model","owned_by":"organization_owner"},
                {"id":"gemma-3-4b","object":"model","owned_by":"organization_owner"}]})),
        )
        .route(
            "/api/v0/models",
            json_route(json!({"object":"list","data":[
                {"id":"qwen3-8b","type":"llm","state":"not-loaded","max_context_length":40960},
                {"id":"gemma-3-4b","type":"vlm","state":"loaded","max_context_length":131072,
                 "loaded_context_length":4096}]})),
        );
    let base = serve(app).await;
    let cold = probe(&base, "qwen3-8b", None).await;
    assert_eq!(cold.server, Some(ServerKind::LmStudio));
    assert_eq!(cold.state, Some(LoadState::Cold));
    let warm = probe(&base, "gemma-3-4b", None).await;
    assert_eq!(warm.state, Some(LoadState::Loaded));
    // The context it was loaded with, not the model's maximum.
    assert_eq!(warm.context_limit, Some(4096));
}

#[tokio::test]
async fn ollama_running_models() {
    let app = Router::new()
        .route(
            "/v1/models",
            json_route(json!({"object":"list","data":[
                {"id":"llama3.2:latest","object":"model","owned_by":"library"},
                {"id":"qwen3:8b","object":"model","owned_by":"library"}]})),
        )
        .route(
            "/api/ps",
            json_route(
                json!({"models":[{"name":"llama3.2:latest","model":"llama3.2:latest",
                "size_vram":2000000000u64,"context_length":8192}]}),
            ),
        );
    let base = serve(app).await;
    let warm = probe(&base, "llama3.2", None).await;
    assert_eq!(warm.server, Some(ServerKind::Ollama));
    assert_eq!(warm.listed, Some(true));
    assert_eq!(warm.state, Some(LoadState::Loaded));
    assert_eq!(warm.context_limit, Some(8192));
    let cold = probe(&base, "qwen3:8b", None).await;
    assert_eq!(cold.state, Some(LoadState::Cold));
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn llama_cpp_server_says_when_it_is_reading_a_prompt() {
    let server = LlamaServer::start_with_ctx(8192);
    let url = server.base_url();
    let idle = probe(&url, "smollm2", None).await;
    assert_eq!(idle.busy, Some(false), "{idle:?}");
    // A long prompt: llama.cpp's /health stays "ok" while it is read, and
    // its /slots says a slot is processing.
    let body = json!({
        "model": "smollm2",
        "messages": [{"role": "user", "content": "apple pear ".repeat(3000)}],
        "max_tokens": 4,
    });
    let chat = format!("{url}/chat/completions");
    let long =
        tokio::spawn(async move { reqwest::Client::new().post(chat).json(&body).send().await });
    let mut seen_busy = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = probe(&url, "smollm2", None).await;
        assert_eq!(r.state, Some(LoadState::Loaded));
        if r.busy == Some(true) {
            seen_busy = true;
            break;
        }
    }
    assert!(seen_busy, "no probe saw the slot at work");
    let _ = long.await;
}
