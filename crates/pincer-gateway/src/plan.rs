//! From a request to a turn: which agent, which models in which order, and
//! which session. The `model` field names an agent (`openclaw`,
//! `openclaw/<id>`, `openclaw:<id>`, `agent:<id>`) or a model directly (a ref
//! or an alias); headers may override each part.

use axum::http::HeaderMap;
use pincer_catalog::{AgentModels, ModelSpec, turn_candidates};

use crate::Gateway;
use crate::error::{ApiError, chain_error};

/// Session namespaces that belong to OpenClaw's internals, not to HTTP callers.
const RESERVED_SESSIONS: [&str; 3] = ["subagent:", "cron:", "acp:"];

pub struct Plan {
    pub agent: &'static AgentModels,
    pub candidates: Vec<ModelSpec>,
    pub session_key: String,
    /// The model the request named itself (the `model` field or
    /// `x-openclaw-model`), for this turn only.
    pub direct: Option<String>,
    /// The session outlives the request (`user`, `x-openclaw-session-key`).
    pub stable: bool,
}

/// What the `model` field asks for.
enum Wanted<'a> {
    Agent(Option<&'a str>),
    Model(&'a str),
}

fn wanted(model: &str) -> Wanted<'_> {
    let m = model.trim();
    if m == "openclaw" || m == "openclaw/default" || m.is_empty() {
        return Wanted::Agent(None);
    }
    for prefix in ["openclaw/", "openclaw:", "agent:"] {
        if let Some(id) = m.strip_prefix(prefix) {
            return Wanted::Agent(Some(id));
        }
    }
    Wanted::Model(m)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `surface` names the API in generated session keys (`openai`, `openresponses`).
pub fn plan(
    gw: &'static Gateway,
    model: &str,
    headers: &HeaderMap,
    user: Option<&str>,
    surface: &str,
) -> Result<Plan, ApiError> {
    let wanted = wanted(model);
    let agent_id = header(headers, "x-openclaw-agent-id").or(match wanted {
        Wanted::Agent(id) => id,
        Wanted::Model(_) => None,
    });
    let agent = match agent_id {
        Some(id) => gw.rt.agent(id).ok_or_else(|| ApiError::UnknownModel {
            message: format!(
                "unknown agent {id:?}; agents: {}",
                gw.rt
                    .agents()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?,
        None => gw.rt.default_agent(),
    };
    let direct = header(headers, "x-openclaw-model").or(match wanted {
        Wanted::Model(m) => Some(m),
        Wanted::Agent(_) => None,
    });
    let (candidates, _) = turn_candidates(gw.rt.catalog(), agent, direct).map_err(chain_error)?;
    let (session_key, stable) = session_key(headers, user, &agent.id, surface)?;
    Ok(Plan {
        agent,
        candidates,
        session_key,
        direct: direct.map(str::to_string),
        stable,
    })
}

/// The session's key, and whether it outlives the request.
/// Keys are lowercased, as OpenClaw stores them.
fn session_key(
    headers: &HeaderMap,
    user: Option<&str>,
    agent: &str,
    surface: &str,
) -> Result<(String, bool), ApiError> {
    if let Some(key) = header(headers, "x-openclaw-session-key") {
        if RESERVED_SESSIONS.iter().any(|p| key.starts_with(p)) {
            return Err(ApiError::BadRequest(format!(
                "x-openclaw-session-key {key:?} is in a reserved namespace"
            )));
        }
        return Ok((key.to_lowercase(), true));
    }
    Ok(match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => (
            format!("agent:{agent}:{surface}-user:{u}").to_lowercase(),
            true,
        ),
        None => (
            format!("agent:{agent}:{surface}:{}", uuid::Uuid::new_v4()),
            false,
        ),
    })
}
