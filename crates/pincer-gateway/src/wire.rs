//! What both OpenAI surfaces share on the wire: the body extractor (its
//! rejection is an `ApiError`), request fields that come in more than one
//! shape, the range checks, ids, the `metadata` object and SSE frames.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use pincer_llm::{ReasoningEffort, Tool, ToolChoice};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// The header naming the model that answered (`provider/model`).
pub const MODEL_HEADER: &str = "x-pincer-model";
/// The header listing request fields Pincer did not use.
pub const IGNORED_HEADER: &str = "x-pincer-ignored-fields";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh id with OpenAI's prefix for its kind (`chatcmpl-`, `resp_`, `msg_`…).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A request body read as `T`, whatever its content type (curl's `-d` sends
/// none that says JSON). A body that is not `T` is a 400 naming the field.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(crate::MAX_BODY)
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
            }
        })?;
        read(&bytes).map(Body)
    }
}

/// A request body as `T`; what is wrong is a 400 naming the field.
pub fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::BadRequest(format!("the request body is not a request: {inner}"))
        } else {
            ApiError::BadRequest(format!("`{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Fields a request carried that Pincer does not use. OpenAI refuses
/// unknown fields; Pincer keeps the turn going (clients of local servers
/// send `top_k`, `min_p`, … as a matter of course) and names them in the
/// `x-pincer-ignored-fields` header and the log instead.
pub type Extra = BTreeMap<String, Value>;

/// The extra fields' names, apart from those OpenAI defines and Pincer
/// knowingly leaves alone (`known`).
pub fn ignored(extra: &Extra, known: &[&str]) -> Vec<String> {
    extra
        .iter()
        .filter(|(k, v)| !v.is_null() && !known.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
        .collect()
}

/// `max_tokens` and friends: a positive integer.
pub fn positive(n: Option<u64>, key: &str) -> Result<Option<u64>, ApiError> {
    match n {
        Some(0) => Err(ApiError::BadRequest(format!(
            "`{key}` must be a positive integer"
        ))),
        n => Ok(n),
    }
}

/// A number that must lie in `lo..=hi`.
pub fn number_in(x: Option<f64>, key: &str, lo: f64, hi: f64) -> Result<Option<f32>, ApiError> {
    match x {
        None => Ok(None),
        #[allow(clippy::cast_possible_truncation)]
        Some(x) if (lo..=hi).contains(&x) => Ok(Some(x as f32)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`{key}` must be a number from {lo} to {hi}"
        ))),
    }
}

pub fn temperature(x: Option<f64>) -> Result<Option<f32>, ApiError> {
    number_in(x, "temperature", 0.0, 2.0)
}

pub fn top_p(x: Option<f64>) -> Result<Option<f32>, ApiError> {
    number_in(x, "top_p", 0.0, 1.0)
}

pub fn penalty(x: Option<f64>, key: &str) -> Result<Option<f32>, ApiError> {
    number_in(x, key, -2.0, 2.0)
}

/// `seed`: any integer (OpenAI takes negative ones too).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum Seed {
    Unsigned(u64),
    Signed(i64),
}

impl Seed {
    pub fn bits(self) -> u64 {
        match self {
            Seed::Unsigned(n) => n,
            Seed::Signed(n) => n as u64,
        }
    }
}

pub fn effort(s: Option<&str>) -> Result<Option<ReasoningEffort>, ApiError> {
    Ok(match s {
        None => None,
        Some("minimal" | "none") => Some(ReasoningEffort::Minimal),
        Some("low") => Some(ReasoningEffort::Low),
        Some("medium") => Some(ReasoningEffort::Medium),
        Some("high" | "xhigh") => Some(ReasoningEffort::High),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "reasoning effort {other:?} is not minimal, low, medium or high"
            )));
        }
    })
}

/// `stop`: a string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(stop: Option<Stop>) -> Vec<String> {
        match stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        }
    }
}

/// Message content: a string, or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// One content part; only text parts are understood.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    /// The text of the content (`text`, `input_text`, `output_text` parts).
    /// Anything else (images, audio, files) is refused rather than silently
    /// dropped.
    pub fn text(content: Option<Content>, at: &str) -> Result<String, ApiError> {
        match content {
            None => Ok(String::new()),
            Some(Content::Text(s)) => Ok(s),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match part.kind.as_str() {
                        "text" | "input_text" | "output_text" => {
                            text.push_str(part.text.as_deref().unwrap_or(""));
                        }
                        "refusal" => {}
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "{at}: content parts of type {other:?} are not supported (text only)"
                            )));
                        }
                    }
                }
                Ok(text)
            }
        }
    }
}

/// A function's definition: nested under `function` in chat, on the tool
/// itself in the Responses API.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FunctionDef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `tools` as (type, definition): function tools only; `name_field` is
/// where the surface keeps a function's name, for the error.
pub fn function_tools(
    tools: impl Iterator<Item = (String, FunctionDef)>,
    name_field: &str,
) -> Result<Vec<Tool>, ApiError> {
    tools
        .enumerate()
        .map(|(i, (kind, def))| {
            if kind != "function" {
                return Err(ApiError::BadRequest(format!(
                    "tools[{i}]: only tools of type \"function\" are supported"
                )));
            }
            let name = def.name.ok_or_else(|| {
                ApiError::BadRequest(format!("tools[{i}]: `{name_field}` is missing"))
            })?;
            Ok(Tool {
                name,
                description: def.description.unwrap_or_default(),
                parameters: def
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

/// `tool_choice` as either surface sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WireToolChoice {
    Mode(String),
    Named {
        #[serde(rename = "type")]
        kind: String,
        /// Responses: the name on the choice itself.
        #[serde(default)]
        name: Option<String>,
        /// Chat: `{"type": "function", "function": {"name": …}}`.
        #[serde(default)]
        function: Option<FunctionDef>,
    },
}

/// The tools a request offers and what the model must do with them. `none`
/// offers no tools at all, which every server understands.
pub fn tool_choice(
    tools: Vec<Tool>,
    choice: Option<WireToolChoice>,
    shape: &str,
) -> Result<(Vec<Tool>, Option<ToolChoice>), ApiError> {
    let choice = match choice {
        None => return Ok((tools, None)),
        Some(WireToolChoice::Mode(s)) => match s.as_str() {
            "none" => return Ok((Vec::new(), None)),
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "`tool_choice` {other:?} is not \"none\", \"auto\", \"required\" or a function"
                )));
            }
        },
        Some(WireToolChoice::Named {
            kind,
            name,
            function,
        }) => match (kind.as_str(), name.or(function.and_then(|f| f.name))) {
            ("function", Some(name)) => ToolChoice::Tool(name),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`tool_choice` must be \"none\", \"auto\", \"required\" or {shape}"
                )));
            }
        },
    };
    match &choice {
        ToolChoice::Required if tools.is_empty() => Err(ApiError::BadRequest(
            "`tool_choice` is \"required\" but the request has no `tools`".into(),
        )),
        ToolChoice::Tool(name) if !tools.iter().any(|t| &t.name == name) => {
            Err(ApiError::BadRequest(format!(
                "`tool_choice` names {name:?}, which is not in `tools`"
            )))
        }
        _ => Ok((tools, Some(choice))),
    }
}

/// `…_tokens_details.cached_tokens` of both surfaces' usage.
#[derive(Debug, Clone, Serialize)]
pub struct CachedTokens {
    pub cached_tokens: u64,
}

/// `…_tokens_details.reasoning_tokens` of both surfaces' usage.
#[derive(Debug, Clone, Serialize)]
pub struct ReasoningTokens {
    pub reasoning_tokens: u64,
}

/// The `metadata` object every reply carries: who answered and, when others
/// were tried first, which and why. String values only, as OpenAI's
/// `metadata` maps are typed.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub model: String,
    /// The agent whose turn it was.
    pub agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}

impl Metadata {
    pub fn new(model: &str, agent: &str, attempts: &[pincer_router::Attempt]) -> Metadata {
        let tried: Vec<String> = attempts
            .iter()
            .map(|a| format!("{} ({})", a.model, a.kind.map_or("skipped", |k| k.as_str())))
            .collect();
        Metadata {
            model: model.to_string(),
            agent: agent.to_string(),
            fallback_from: (!tried.is_empty()).then(|| tried.join(", ")),
        }
    }
}

/// One SSE frame with this JSON as its data (and this event name).
pub fn frame(event: Option<&str>, data: &impl Serialize) -> SseEvent {
    let e = SseEvent::default();
    let e = match event {
        Some(name) => e.event(name),
        None => e,
    };
    // Serializing these types cannot fail (string keys, finite numbers).
    e.json_data(data)
        .unwrap_or_else(|_| SseEvent::default().data("{}"))
}

/// The `[DONE]` marker both surfaces end a stream with.
pub fn done() -> SseEvent {
    SseEvent::default().data("[DONE]")
}

pub fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}
