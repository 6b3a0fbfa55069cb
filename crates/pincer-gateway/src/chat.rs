//! `POST /v1/chat/completions` in OpenAI's wire shapes, streamed
//! (`chat.completion.chunk` frames, then `[DONE]`) or whole. Reasoning is
//! never part of the reply: chat clients show `content` as the answer.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, stream};
use pincer_llm::{ChatRequest, Event, FinishReason, Message, Reply, ToolCall, Usage};
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;
use crate::plan::plan;
use crate::turn::Out;
use crate::wire::{self, frame, new_id, unix_now};

struct Parsed {
    model: String,
    req: ChatRequest,
    stream: bool,
    include_usage: bool,
    user: Option<String>,
}

pub async fn handle(
    State(gw): State<&'static Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !gw.settings.chat_completions {
        return Err(ApiError::Disabled(
            "/v1/chat/completions is disabled (gateway.http.endpoints.chatCompletions.enabled)",
        ));
    }
    let p = parse(&wire::parse_body(&body)?)?;
    let plan = plan(gw, &p.model, &headers, p.user.as_deref(), "openai")?;
    let id = new_id("chatcmpl-");
    if !p.stream {
        let done = gw.complete(&plan, &p.req).await?;
        let model = done.spec.reference.clone();
        // `model` echoes what was asked for (as OpenClaw does); who
        // answered is in `metadata.model` and the header.
        let body = whole(
            &id,
            &p.model,
            &done.reply,
            wire::metadata(&model, &done.attempts),
        );
        let mut response = axum::Json(body).into_response();
        wire::with_model(&mut response, &model);
        return Ok(response);
    }
    let started = gw.stream(plan, p.req).await?;
    let chunks = Chunks {
        id,
        model: p.model,
        created: unix_now(),
        include_usage: p.include_usage,
        finish: None,
        usage: Usage::default(),
    };
    let role = chunks.delta(json!({"role": "assistant", "content": ""}), None);
    let frames = stream::unfold(
        (started.rx, chunks, false),
        |(mut rx, mut c, ended)| async move {
            if ended {
                return None;
            }
            let (batch, ended) = match rx.recv().await {
                Some(out) => c.frames(out),
                // The turn ended without finishing: never a silent success.
                None => (c.error(&ApiError::Incomplete), true),
            };
            Some((stream::iter(batch), (rx, c, ended)))
        },
    )
    .flatten();
    Ok(wire::sse_response(
        &started.model,
        stream::iter([role]).chain(frames),
    ))
}

/// Turns the events of a streamed turn into chunk frames.
struct Chunks {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    finish: Option<FinishReason>,
    usage: Usage,
}

const DONE: &[u8] = b"data: [DONE]\n\n";

impl Chunks {
    fn base(&self) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model})
    }

    fn delta(&self, delta: Value, finish: Option<&str>) -> Bytes {
        frame(None, &chunk_json(&self.base(), delta, finish))
    }

    /// The frames for one thing the turn sent, and whether the stream ends.
    fn frames(&mut self, out: Out) -> (Vec<Bytes>, bool) {
        let frames = match out {
            Out::Event(Event::Text { delta }) if !delta.is_empty() => {
                vec![self.delta(json!({"content": delta}), None)]
            }
            Out::Event(Event::ToolCall {
                index,
                id,
                name,
                arguments,
            }) => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                vec![self.delta(json!({"tool_calls": [call]}), None)]
            }
            Out::Event(Event::Usage { usage }) => {
                self.usage = usage;
                vec![]
            }
            Out::Event(Event::Done { finish }) => {
                self.finish = Some(finish);
                vec![]
            }
            Out::Event(_) => vec![],
            Out::Finished { model, attempts } => {
                let finish = self.finish.as_ref().map_or("stop", FinishReason::as_str);
                let mut last = chunk_json(&self.base(), json!({}), Some(finish));
                last["metadata"] = wire::metadata(&model, &attempts);
                let mut out = vec![frame(None, &last)];
                if self.include_usage {
                    let mut u = self.base();
                    u["choices"] = json!([]);
                    u["usage"] = usage_json(&self.usage);
                    out.push(frame(None, &u));
                }
                out.push(Bytes::from_static(DONE));
                return (out, true);
            }
            Out::Error(e) => return (self.error(&e), true),
        };
        (frames, false)
    }

    /// An error frame (the SDKs raise it) and `[DONE]`, as OpenClaw ends
    /// a failed stream; the missing finish chunk marks the answer as cut.
    fn error(&self, e: &ApiError) -> Vec<Bytes> {
        vec![frame(None, &e.body()), Bytes::from_static(DONE)]
    }
}

fn chunk_json(base: &Value, delta: Value, finish: Option<&str>) -> Value {
    let mut c = base.clone();
    c["choices"] = json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    c
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens(),
        "completion_tokens": u.output,
        "total_tokens": u.prompt_tokens() + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

fn whole(id: &str, model: &str, reply: &Reply, metadata: Value) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if reply.text.is_empty() && !reply.tool_calls.is_empty() { Value::Null } else { json!(reply.text) },
        "refusal": null,
    });
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    let finish = reply.finish.as_ref().map_or("stop", FinishReason::as_str);
    json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage_json(&reply.usage),
        "system_fingerprint": null,
        "metadata": metadata,
    })
}

fn parse(v: &Value) -> Result<Parsed, ApiError> {
    let model = wire::str_field(v, "model")?
        .unwrap_or("openclaw")
        .to_string();
    if let Some(n) = v.get("n").and_then(Value::as_u64)
        && n != 1
    {
        return Err(ApiError::BadRequest("only n = 1 is supported".into()));
    }
    let messages = match v.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => messages(list)?,
        _ => {
            return Err(ApiError::BadRequest(
                "`messages` must be a non-empty list".into(),
            ));
        }
    };
    let (tools, tool_choice) = wire::tools_and_choice(v, true)?;
    let req = ChatRequest {
        messages,
        tools,
        tool_choice,
        top_p: wire::top_p(v)?,
        seed: wire::seed(v)?,
        frequency_penalty: wire::penalty(v, "frequency_penalty")?,
        presence_penalty: wire::penalty(v, "presence_penalty")?,
        max_tokens: match wire::u64_field(v, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => wire::u64_field(v, "max_tokens")?,
        },
        temperature: wire::temperature(v)?,
        reasoning_effort: wire::effort(wire::str_field(v, "reasoning_effort")?)?,
        stop: wire::stop(v)?,
    };
    Ok(Parsed {
        model,
        req,
        stream: wire::bool_field(v, "stream")?,
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        user: wire::str_field(v, "user")?.map(str::to_string),
    })
}

fn messages(list: &[Value]) -> Result<Vec<Message>, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        let text = || wire::content_text(content, &at);
        out.push(match role {
            "system" | "developer" => Message::System { text: text()? },
            "user" => Message::User { text: text()? },
            "assistant" => Message::Assistant {
                text: text()?,
                reasoning: None,
                tool_calls: assistant_calls(m, &at)?,
            },
            "tool" => {
                let call_id = wire::str_field(m, "tool_call_id")?
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("{at}: `tool_call_id` is missing"))
                    })?
                    .to_string();
                let name = tool_name(&out, &call_id);
                Message::Tool {
                    call_id,
                    name,
                    content: text()?,
                }
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{at}: role {other:?} is not system, developer, user, assistant or tool"
                )));
            }
        });
    }
    Ok(out)
}

/// The name of the tool a result answers, from the call that asked for it
/// (some dialects need it; OpenAI's tool messages do not carry it).
pub fn tool_name(earlier: &[Message], call_id: &str) -> String {
    earlier
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls
                .iter()
                .find(|c| c.id == call_id)
                .map(|c| c.name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn assistant_calls(m: &Value, at: &str) -> Result<Vec<ToolCall>, ApiError> {
    let Some(Value::Array(calls)) = m.get("tool_calls") else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let f = c.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::BadRequest(format!("{at}.tool_calls[{j}]: `function.name` is missing"))
            })?;
            Ok(ToolCall {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                name: name.to_string(),
                arguments: f
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_the_sdks_send() {
        let v = json!({
            "model": "openclaw",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "max_completion_tokens": 50,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let p = parse(&v).unwrap();
        assert!(p.stream && p.include_usage);
        assert_eq!(p.req.max_tokens, Some(50));
        assert_eq!(p.req.stop, vec!["END"]);
        assert_eq!(p.req.tools[0].name, "get_weather");
        assert_eq!(
            p.req.messages[3],
            Message::Tool {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                content: "sunny".into()
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for (body, needle) in [
            (json!({"messages": []}), "non-empty"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "image_url",
            ),
            (
                json!({"messages": [{"role": "function", "content": "x"}]}),
                "role \"function\"",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n = 1",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
                "`temperature` must be a number from 0 to 2",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "top_p": 1.5}),
                "`top_p` must be a number from 0 to 1",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "presence_penalty": -3}),
                "`presence_penalty` must be a number from -2 to 2",
            ),
        ] {
            let e = parse(&body).err().unwrap().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
