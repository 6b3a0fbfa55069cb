//! Shared by the runtime's tests: a runtime from config text, and a
//! delivery run to its end with every event it told.
// Each test file uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use pincer_agent::{AgentError, AgentEvent, Delivered, Delivery, Runtime};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};

/// The runtime `text` (openclaw.json, which must load without errors)
/// configures, its sessions under `state`.
pub fn runtime(text: &str, state: &Path) -> Runtime<'static> {
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        text,
        Path::new("/x/openclaw.json"),
        &env,
    )));
    assert!(loaded.errors().next().is_none(), "{:?}", loaded.diagnostics);
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    Runtime::new(&loaded.config, router, state, Default::default()).unwrap()
}

/// Delivers `d`; returns its result and every event it told.
pub async fn deliver(
    rt: &Runtime<'_>,
    d: Delivery,
) -> (Result<Delivered, AgentError>, Vec<AgentEvent>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let collect = async move {
        let mut all = Vec::new();
        while let Some(e) = rx.recv().await {
            all.push(e);
        }
        all
    };
    tokio::join!(rt.deliver(d, tx), collect)
}
