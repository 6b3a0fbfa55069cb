//! What both OpenAI surfaces share: request fields that come in more than
//! one shape, ids, the answering-model header and SSE bodies.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use pincer_llm::{ReasoningEffort, Tool, ToolChoice};
use serde_json::Value;

use crate::error::ApiError;

/// The header naming the model that answered (`provider/model`).
pub const MODEL_HEADER: &str = "x-pincer-model";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh id with OpenAI's prefix for its kind (`chatcmpl-`, `resp_`, `msg_`…).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The request body as JSON, with a 400 that says what is wrong.
pub fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

pub fn str_field<'v>(v: &'v Value, key: &str) -> Result<Option<&'v str>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(format!("`{key}` must be a string"))),
    }
}

pub fn u64_field(v: &Value, key: &str) -> Result<Option<u64>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("`{key}` must be a positive integer"))),
    }
}

pub fn temperature(v: &Value) -> Result<Option<f32>, ApiError> {
    number_in(v, "temperature", 0.0, 2.0)
}

/// A number field that must lie in `lo..=hi`.
fn number_in(v: &Value, key: &str, lo: f64, hi: f64) -> Result<Option<f32>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => match n.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(x) if (lo..=hi).contains(&x) => Ok(Some(x as f32)),
            _ => Err(ApiError::BadRequest(format!(
                "`{key}` must be a number from {lo} to {hi}"
            ))),
        },
    }
}

pub fn bool_field(v: &Value, key: &str) -> Result<bool, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`{key}` must be true or false"
        ))),
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
pub fn stop(v: &Value) -> Result<Vec<String>, ApiError> {
    match v.get("stop") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::BadRequest("`stop` must hold strings".into()))
            })
            .collect(),
        Some(_) => Err(ApiError::BadRequest(
            "`stop` must be a string or a list of strings".into(),
        )),
    }
}

/// Message content: a string, or a list of text parts (`text`, `input_text`,
/// `output_text`). Anything else (images, audio, files) is refused rather
/// than silently dropped.
pub fn content_text(content: &Value, at: &str) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match kind {
                    "text" | "input_text" | "output_text" => {
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
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
        _ => Err(ApiError::BadRequest(format!(
            "{at}: content must be a string or a list of parts"
        ))),
    }
}

/// `tools`: function tools only. Chat nests each definition under
/// `function`; the Responses API puts its fields on the tool itself.
pub fn function_tools(v: Option<&Value>, nested: bool) -> Result<Vec<Tool>, ApiError> {
    let Some(Value::Array(list)) = v else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(ApiError::BadRequest(format!(
                    "tools[{i}]: only tools of type \"function\" are supported"
                )));
            }
            let (def, prefix) = if nested {
                (t.get("function").unwrap_or(&Value::Null), "function.")
            } else {
                (t, "")
            };
            let name = def.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::BadRequest(format!("tools[{i}]: `{prefix}name` is missing"))
            })?;
            Ok(Tool {
                name: name.to_string(),
                description: def
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                parameters: def
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

/// The tools a request offers and what the model must do with them, from
/// `tools` and `tool_choice`. `none` offers no tools at all, which every
/// server understands. Chat nests a function's fields under `function`;
/// Responses does not.
pub fn tools_and_choice(
    v: &Value,
    nested: bool,
) -> Result<(Vec<Tool>, Option<ToolChoice>), ApiError> {
    let tools = function_tools(v.get("tools"), nested)?;
    let choice = match v.get("tool_choice") {
        None | Some(Value::Null) => return Ok((tools, None)),
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok((Vec::new(), None)),
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "`tool_choice` {other:?} is not \"none\", \"auto\", \"required\" or a function"
                )));
            }
        },
        Some(named) => {
            let name = if named.get("type").and_then(Value::as_str) == Some("function") {
                let name = if nested {
                    named.pointer("/function/name")
                } else {
                    named.get("name")
                };
                name.and_then(Value::as_str)
            } else {
                None
            };
            let Some(name) = name else {
                let shape = if nested {
                    r#"{"type": "function", "function": {"name": …}}"#
                } else {
                    r#"{"type": "function", "name": …}"#
                };
                return Err(ApiError::BadRequest(format!(
                    "`tool_choice` must be \"none\", \"auto\", \"required\" or {shape}"
                )));
            };
            ToolChoice::Tool(name.to_string())
        }
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

/// `top_p`: a number from 0 to 1.
pub fn top_p(v: &Value) -> Result<Option<f32>, ApiError> {
    number_in(v, "top_p", 0.0, 1.0)
}

/// `frequency_penalty` / `presence_penalty`: a number from -2 to 2.
pub fn penalty(v: &Value, key: &str) -> Result<Option<f32>, ApiError> {
    number_in(v, key, -2.0, 2.0)
}

/// `seed`: any integer (OpenAI takes negative ones too).
pub fn seed(v: &Value) -> Result<Option<u64>, ApiError> {
    match v.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(|i| i as u64))
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("`seed` must be an integer".into())),
    }
}

/// One SSE frame: `data: <json>` (chat) or `event: <type>` + `data:` (responses).
pub fn frame(event: Option<&str>, data: &Value) -> Bytes {
    let data = data.to_string();
    Bytes::from(match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    })
}

/// A streamed response, with the answering model in its header.
pub fn sse_response(model: &str, frames: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures_util::StreamExt as _;
    let body = Body::from_stream(frames.map(Ok::<_, Infallible>));
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    with_model(&mut response, model);
    response
}

pub fn with_model(response: &mut Response, model: &str) {
    if let Ok(v) = HeaderValue::from_str(model) {
        response.headers_mut().insert(MODEL_HEADER, v);
    }
}

/// The `metadata` object every reply carries: who answered and, when others
/// were tried first, which and why. String values only, as OpenAI's
/// `metadata` maps are typed.
pub fn metadata(model: &str, attempts: &[pincer_router::Attempt]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("model".into(), Value::String(model.to_string()));
    if !attempts.is_empty() {
        let tried: Vec<String> = attempts
            .iter()
            .map(|a| format!("{} ({})", a.model, a.kind.map_or("skipped", |k| k.as_str())))
            .collect();
        m.insert("fallback_from".into(), Value::String(tried.join(", ")));
    }
    Value::Object(m)
}
