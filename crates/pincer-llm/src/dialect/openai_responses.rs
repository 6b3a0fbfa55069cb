//! `openai-responses`: `POST {baseUrl}/responses`. Reasoning arrives as its own
//! items, apart from `output_text`, so it cannot leak into the answer.

use serde_json::{Map, Value, json};

use super::{Decoder, ToolIndex, WireRequest, field_str, field_u64, parse_json, stream_error};
use crate::sse::SseEvent;
use pincer_types::ThinkSplitter;
use pincer_types::Usage;
use pincer_types::{ErrorKind, ProviderError};
use pincer_types::{Event, FinishReason};
use pincer_types::{Message, ToolChoice};

pub fn body(w: &WireRequest<'_>) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), w.model_id.into());
    let input: Vec<Value> = w.req.messages.iter().flat_map(items).collect();
    b.insert("input".into(), input.into());
    b.insert("stream".into(), w.stream.into());
    b.insert("store".into(), false.into());
    b.insert("max_output_tokens".into(), w.max_tokens.into());
    if !w.req.tools.is_empty() {
        let tools: Vec<Value> = w
            .req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name,
                       "description": t.description, "parameters": t.parameters})
            })
            .collect();
        b.insert("tools".into(), tools.into());
        let choice = match &w.req.tool_choice {
            None | Some(ToolChoice::Auto) => json!("auto"),
            Some(ToolChoice::Required) => json!("required"),
            Some(ToolChoice::Tool(name)) => json!({"type": "function", "name": name}),
            Some(ToolChoice::None) => json!("none"),
        };
        b.insert("tool_choice".into(), choice);
    }
    if let Some(t) = w.temperature() {
        b.insert("temperature".into(), t.into());
    }
    if let Some(p) = w.req.top_p {
        b.insert("top_p".into(), p.into());
    }
    if let Some(effort) = w.reasoning_effort() {
        b.insert("reasoning".into(), json!({"effort": effort.as_str()}));
    }
    w.add_params(&mut b);
    Value::Object(b)
}

/// A typed message item: servers differ on the short `{role, content}` form
/// (llama-server cannot tell its type for assistant turns).
fn message(role: &str, part: &str, text: &str) -> Value {
    json!({"type": "message", "role": role, "content": [{"type": part, "text": text}]})
}

fn items(m: &Message) -> Vec<Value> {
    match m {
        Message::System { text } => vec![message("system", "input_text", text)],
        Message::User { text } => vec![message("user", "input_text", text)],
        Message::Assistant {
            text, tool_calls, ..
        } => {
            let mut v = Vec::new();
            if !text.is_empty() {
                v.push(message("assistant", "output_text", text));
            }
            v.extend(tool_calls.iter().map(|c| {
                json!({"type": "function_call", "call_id": c.id,
                       "name": c.name, "arguments": c.arguments})
            }));
            v
        }
        Message::Tool {
            call_id, content, ..
        } => vec![json!({"type": "function_call_output", "call_id": call_id, "output": content})],
    }
}

fn usage(u: &Value) -> Usage {
    let cached = u
        .get("input_tokens_details")
        .and_then(|d| field_u64(d, "cached_tokens"))
        .unwrap_or(0);
    Usage {
        input: field_u64(u, "input_tokens")
            .unwrap_or(0)
            .saturating_sub(cached),
        output: field_u64(u, "output_tokens").unwrap_or(0),
        cache_read: cached,
        cache_write: 0,
        reasoning: u
            .get("output_tokens_details")
            .and_then(|d| field_u64(d, "reasoning_tokens"))
            .unwrap_or(0),
    }
}

#[derive(Default)]
pub struct ResponsesDecoder {
    think: ThinkSplitter,
    /// output_index of a function_call item → our tool-call index.
    calls: ToolIndex,
    /// By tool-call index: its arguments arrived in deltas.
    streamed: Vec<bool>,
    done: bool,
}

impl ResponsesDecoder {
    fn call_index(&mut self, output_index: u64) -> Result<usize, ProviderError> {
        let i = self.calls.dense(output_index)?;
        if self.streamed.len() <= i {
            self.streamed.resize(i + 1, false);
        }
        Ok(i)
    }

    /// A whole output item (non-streaming, or `output_item.done` for calls).
    fn item(
        &mut self,
        output_index: u64,
        item: &Value,
        out: &mut Vec<Event>,
    ) -> Result<(), ProviderError> {
        match field_str(item, "type") {
            Some("reasoning") => {
                for part in ["content", "summary"] {
                    for p in item
                        .get(part)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(t) = field_str(p, "text").filter(|t| !t.is_empty()) {
                            out.push(Event::Reasoning { delta: t.into() });
                        }
                    }
                }
            }
            Some("message") => {
                for p in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = field_str(p, "text") {
                        self.think.push(t, out);
                    }
                }
            }
            Some("function_call") => {
                let index = self.call_index(output_index)?;
                out.push(Event::ToolCall {
                    index,
                    id: field_str(item, "call_id").map(str::to_string),
                    name: field_str(item, "name").map(str::to_string),
                    arguments: field_str(item, "arguments").unwrap_or_default().into(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, response: &Value, out: &mut Vec<Event>) {
        self.think.finish(out);
        if let Some(u) = response.get("usage").filter(|u| u.is_object()) {
            out.push(Event::Usage { usage: usage(u) });
        }
        let finish = match field_str(response, "status") {
            Some("incomplete") => {
                let reason = response
                    .get("incomplete_details")
                    .and_then(|d| field_str(d, "reason"))
                    .unwrap_or("incomplete");
                FinishReason::from_wire(reason)
            }
            _ if !self.calls.is_empty() => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        };
        out.push(Event::Done { finish });
        self.done = true;
    }
}

fn failure(response: &Value, data: &str) -> ProviderError {
    match response.get("error").filter(|e| e.is_object()) {
        Some(e) => stream_error(&json!({ "error": e }).to_string()),
        None => stream_error(data),
    }
}

impl Decoder for ResponsesDecoder {
    fn event(&mut self, sse: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let data = sse.data.trim();
        if data == "[DONE]" {
            return Ok(());
        }
        let v = parse_json(data)?;
        let kind = field_str(&v, "type").or(sse.event.as_deref()).unwrap_or("");
        let output_index = field_u64(&v, "output_index").unwrap_or(0);
        match kind {
            "response.output_text.delta" | "response.text.delta" => {
                self.think
                    .push(field_str(&v, "delta").unwrap_or_default(), out);
            }
            "response.reasoning_text.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning.delta" => {
                if let Some(d) = field_str(&v, "delta").filter(|d| !d.is_empty()) {
                    out.push(Event::Reasoning { delta: d.into() });
                }
            }
            "response.output_item.added" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                if field_str(item, "type") == Some("function_call") {
                    let index = self.call_index(output_index)?;
                    out.push(Event::ToolCall {
                        index,
                        id: field_str(item, "call_id").map(str::to_string),
                        name: field_str(item, "name").map(str::to_string),
                        arguments: String::new(),
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                let index = self.call_index(output_index)?;
                self.streamed[index] = true;
                out.push(Event::ToolCall {
                    index,
                    id: None,
                    name: None,
                    arguments: field_str(&v, "delta").unwrap_or_default().into(),
                });
            }
            "response.output_item.done" => {
                // Servers that send a call whole, without argument deltas.
                let item = v.get("item").unwrap_or(&Value::Null);
                if field_str(item, "type") == Some("function_call") {
                    let index = self.call_index(output_index)?;
                    if !self.streamed[index] {
                        self.item(output_index, item, out)?;
                        self.streamed[index] = true;
                    }
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = v.get("response").unwrap_or(&Value::Null);
                self.end(response, out);
            }
            "response.failed" => {
                return Err(failure(v.get("response").unwrap_or(&Value::Null), data));
            }
            "error" => return Err(stream_error(data)),
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Event>) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ErrorKind::Protocol,
            "stream ended before `response.completed`",
        ))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

pub fn parse_reply(body: &str) -> Result<Vec<Event>, ProviderError> {
    let v = parse_json(body)?;
    if field_str(&v, "status") == Some("failed") {
        return Err(failure(&v, body));
    }
    let Some(output) = v.get("output").and_then(Value::as_array) else {
        return Err(ProviderError::new(
            ErrorKind::Protocol,
            "reply has no `output`: not a Responses API response",
        ));
    };
    let mut d = ResponsesDecoder::default();
    let mut out = Vec::new();
    for (i, item) in output.iter().enumerate() {
        d.item(i as u64, item, &mut out)?;
    }
    d.end(&v, &mut out);
    Ok(out)
}
