//! `/healthz`: the process answers. `/readyz`: the config is loaded and the
//! default agent's primary can answer (its server is reachable and lists it,
//! or the embedded model is in memory); what fails is shown to local and
//! authenticated callers only.

use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pincer_catalog::candidate_chain;
use serde_json::json;

use crate::Gateway;
use crate::auth;

pub async fn live() -> impl IntoResponse {
    Json(json!({"ok": true, "status": "live"}))
}

pub async fn ready(State(gw): State<&'static Gateway>, req: Request) -> impl IntoResponse {
    let mut failing = Vec::new();
    let (chain, _) = candidate_chain(&gw.catalog, gw.default_agent());
    let primary = chain.first();
    match primary {
        None => failing.push("config: the default agent has no usable model".to_string()),
        Some(spec) => {
            let providers = gw.router.providers();
            match providers
                .probe(&gw.catalog, spec, Duration::from_secs(2))
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
        "primary": primary.map(|s| s.reference.clone()),
        "uptimeMs": u64::try_from(gw.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    (status, Json(body))
}
