//! `/healthz`: the process answers. `/readyz`: the config is loaded and the
//! default agent's primary can answer (its server is reachable and lists it,
//! or the embedded model is in memory); what fails is shown to local and
//! authenticated callers only.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pincer_catalog::{ModelSpec, candidate_chain};
use serde_json::json;

use crate::Gateway;
use crate::auth;

pub async fn live() -> impl IntoResponse {
    Json(json!({"ok": true, "status": "live"}))
}

/// How long one look at the primary's server answers `/readyz`: a check
/// every second, or anyone who can reach the port, must not become load on
/// the model server.
const READY_TTL: Duration = Duration::from_secs(3);

/// The last readiness result; its lock is held while a probe runs, so there
/// is at most one probe in flight and callers meanwhile wait for its result.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

impl Readiness {
    async fn failing(&self, gw: &Gateway) -> Vec<String> {
        let mut last = self.last.lock().await;
        if let Some((at, failing)) = last.as_ref()
            && at.elapsed() < READY_TTL
        {
            return failing.clone();
        }
        let failing = probe_primary(gw).await;
        *last = Some((Instant::now(), failing.clone()));
        failing
    }
}

/// The default agent's primary, by the one chain every turn uses.
fn primary(gw: &Gateway) -> Option<ModelSpec> {
    candidate_chain(gw.catalog(), gw.default_agent())
        .0
        .into_iter()
        .next()
}

async fn probe_primary(gw: &Gateway) -> Vec<String> {
    let mut failing = Vec::new();
    match primary(gw).as_ref() {
        None => failing.push("config: the default agent has no usable model".to_string()),
        Some(spec) => {
            let providers = gw.rt.router().providers();
            match providers
                .probe(
                    gw.catalog(),
                    spec,
                    &gw.default_agent().id,
                    Duration::from_secs(2),
                )
                .await
            {
                Some(r) => {
                    if let Some(e) = r.error {
                        failing.push(format!("{}: {}", spec.reference, e.message));
                    } else if r.listed == Some(false) {
                        failing.push(format!("{}: not listed by its server", spec.reference));
                    }
                }
                None if !providers.embedded_loaded(spec).await => {
                    failing.push(format!(
                        "{}: the embedded model is not loaded yet",
                        spec.reference
                    ));
                }
                None => {}
            }
        }
    }
    failing
}

pub async fn ready(State(gw): State<&'static Gateway>, req: Request) -> impl IntoResponse {
    let failing = gw.readiness.failing(gw).await;
    let ready = failing.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !auth::may_see_details(gw, &req) {
        return (status, Json(json!({"ready": ready})));
    }
    let body = json!({
        "ready": ready,
        "failing": failing,
        "primary": primary(gw).map(|s| s.reference),
        "uptimeMs": u64::try_from(gw.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    (status, Json(body))
}
