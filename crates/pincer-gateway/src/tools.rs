//! `POST /tools/invoke`, as OpenClaw has it: one of an agent's tools run
//! directly by an HTTP caller, under the agent's policy and a deny list
//! for HTTP callers (`exec`, `write`, `edit`, `process`, … unless
//! `gateway.tools.allow` takes them off it). Answers in OpenClaw's shape:
//! `{ok: true, result}` or `{ok: false, error: {type, message}}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;

/// OpenClaw's body limit for this endpoint.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokeBody {
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    session_key: Option<String>,
    /// Reserved by OpenClaw; ignored.
    #[serde(default, rename = "dryRun")]
    _dry_run: Option<bool>,
}

/// A refusal in OpenClaw's shape.
struct Refused(StatusCode, &'static str, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({"ok": false, "error": {"type": self.1, "message": self.2}});
        (self.0, axum::Json(body)).into_response()
    }
}

pub async fn invoke(
    State(gw): State<&'static Gateway>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match run(gw, &headers, &bytes).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn run(gw: &'static Gateway, headers: &HeaderMap, bytes: &[u8]) -> Result<Response, Refused> {
    let invalid = |m: String| Refused(StatusCode::BAD_REQUEST, "invalid_request", m);
    let body: InvokeBody = serde_json::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the request body is not a tools.invoke request: {e}"
        ))
    })?;
    let tool = body
        .tool
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("tools.invoke requires body.tool".into()))?
        .to_string();
    let mut args = match body.args {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(a) = body.action
        && pincer_tools::catalog::takes_action(&tool)
        && !args.contains_key("action")
    {
        args.insert("action".into(), a.into());
    }
    let rt = gw.runtime();
    let default = rt.default_agent().id.clone();
    let key = match body.session_key.as_deref().map(str::trim) {
        None | Some("") | Some("main") => rt.main_session(&default),
        Some(k) => k.to_ascii_lowercase(),
    };
    let agent = headers
        .get("x-openclaw-agent-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            key.strip_prefix("agent:")
                .and_then(|r| r.split(':').next())
                .map(str::to_string)
        })
        .unwrap_or(default);
    let not_found = || {
        Refused(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Tool not available: {tool}"),
        )
    };
    if gw
        .settings
        .http_tool_deny
        .iter()
        .any(|d| pincer_tools::policy::covers(d, &tool))
    {
        return Err(not_found());
    }
    let args = Value::Object(args).to_string();
    let out = rt
        .run_tool(&agent, &key, &tool, &args)
        .await
        .ok_or_else(not_found)?;
    if out.is_error {
        return Err(Refused(StatusCode::BAD_REQUEST, "tool_error", out.text));
    }
    let result = json!({"content": [{"type": "text", "text": out.text}], "details": {}});
    Ok((
        StatusCode::OK,
        axum::Json(json!({"ok": true, "result": result})),
    )
        .into_response())
}
