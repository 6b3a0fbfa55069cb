//! Shared by the WebSocket and web chat tests: a gateway with token auth
//! served on a port, its agent on two models of one scripted upstream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use pincer_config::{Env, load_text};
use pincer_gateway::{Gateway, Settings, app};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};

pub const TOKEN: &str = "ws-test-token-0123456789";

/// A gateway whose agent runs `acme/m`, then `acme/b` (alias `backup`),
/// both at `base_url`; sessions under `state`.
pub async fn serve(base_url: &str, state: &Path) -> SocketAddr {
    let text = format!(
        r#"{{
  models: {{ mode: "replace", providers: {{
    acme: {{ baseUrl: "{base_url}", api: "openai-completions", timeoutSeconds: 30,
      models: [{{ id: "m", contextWindow: 4096, maxTokens: 64 }},
               {{ id: "b", contextWindow: 4096, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "acme/m", fallbacks: ["acme/b"] }},
    models: {{ "acme/m": {{}}, "acme/b": {{ alias: "backup" }} }} }} }},
  gateway: {{ auth: {{ token: "{TOKEN}" }} }},
}}"#
    );
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/x/openclaw.json"),
        &env,
    )));
    assert!(loaded.errors().next().is_none(), "{:?}", loaded.diagnostics);
    let settings = Settings::resolve(&loaded.config, &env, Some(0), None).unwrap();
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    let gw = Gateway::new(loaded, settings, router, state).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(gw).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}
