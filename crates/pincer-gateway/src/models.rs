//! `/v1/models`: the agents (`openclaw`, `openclaw/default`,
//! `openclaw/<id>`), then the models a caller may pick directly, by ref and
//! by alias.

use axum::Json;
use axum::extract::{Path, State};
use pincer_catalog::{Allowlist, candidate_chain, resolve};
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;

fn entry(id: &str, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

fn all(gw: &Gateway) -> Vec<Value> {
    let mut out = vec![
        entry("openclaw", "openclaw"),
        entry("openclaw/default", "openclaw"),
    ];
    for a in gw.rt.agents() {
        out.push(entry(&format!("openclaw/{}", a.id), "openclaw"));
    }
    let agent = gw.default_agent();
    let mut refs: Vec<String> = match &agent.allow {
        Allowlist::Only(list) => list
            .iter()
            .filter_map(|m| resolve(gw.catalog(), &agent.aliases, m).ok())
            .map(|r| r.spec.reference)
            .collect(),
        Allowlist::Any => candidate_chain(gw.catalog(), agent)
            .0
            .into_iter()
            .map(|s| s.reference)
            .collect(),
    };
    refs.dedup();
    for r in &refs {
        let provider = r.split_once('/').map_or("", |(p, _)| p);
        out.push(entry(r, provider));
    }
    for a in agent.aliases.iter() {
        if let Ok(r) = resolve(gw.catalog(), &agent.aliases, &a.alias) {
            out.push(entry(&a.alias, &r.spec.provider));
        }
    }
    out
}

pub async fn list(State(gw): State<&'static Gateway>) -> Json<Value> {
    Json(json!({"object": "list", "data": all(gw)}))
}

pub async fn one(
    State(gw): State<&'static Gateway>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    all(gw)
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("the model {id:?} does not exist")))
}
