//! Whether the gateway slows down as one-request sessions pile up: 4,000
//! stateless `POST /v1/chat/completions` in a row (each a new session, as an
//! OpenAI client without `user` makes), through the whole in-process stack
//! (routes, the agent runtime, the session store with OpenClaw's default
//! maintenance), against a scripted upstream that answers at once.
//!
//! `cargo bench -p pincer-gateway --bench stateless`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body_util::BodyExt as _;
use pincer_config::{Env, load_text};
use pincer_gateway::{Gateway, Settings, app};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, completions_stream};
use tower::ServiceExt as _;

const TURNS: usize = 4_000;

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn main() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"ok"}"#])]);
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "m", contextWindow: 8192, maxTokens: 16 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }} }} }},
  gateway: {{ auth: {{ mode: "none" }} }} }}"#,
        up.base_url()
    );
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/x/openclaw.json"),
        &env,
    )));
    let state = tempfile::tempdir().unwrap();
    let settings = Settings::resolve(&loaded.config, &env, Some(0), None).unwrap();
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let gw = Gateway::new(loaded, settings, router, state.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = r#"{"model":"openclaw","messages":[{"role":"user","content":"Hi"}]}"#;
    let took: Vec<Duration> = rt.block_on(async {
        let mut took = Vec::with_capacity(TURNS);
        for _ in 0..TURNS {
            let mut req = Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            let started = Instant::now();
            let response = app(gw).oneshot(req).await.unwrap();
            assert!(response.status().is_success());
            response.into_body().collect().await.unwrap();
            took.push(started.elapsed());
        }
        took
    });
    let first = median(took[..500].to_vec());
    let last = median(took[TURNS - 500..].to_vec());
    let kept = pincer_sessions::SessionStore::open(state.path(), "main")
        .unwrap()
        .list()
        .len();
    println!(
        "{TURNS} stateless turns: median of the first 500 {:.2} ms, of the last 500 {:.2} ms \
         ({:.2}×); {kept} sessions kept",
        first.as_secs_f64() * 1e3,
        last.as_secs_f64() * 1e3,
        last.as_secs_f64() / first.as_secs_f64()
    );
}
