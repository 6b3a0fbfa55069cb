//! `anthropic-messages`: `POST {baseUrl}/v1/messages` with `x-api-key` and
//! `anthropic-version`. Thinking comes in its own content blocks.

use serde_json::{Map, Value, json};

use super::{Decoder, ToolIndex, WireRequest, field_str, field_u64, parse_json, stream_error};
use crate::sse::SseEvent;
use pincer_types::ThinkSplitter;
use pincer_types::Usage;
use pincer_types::{ErrorKind, ProviderError};
use pincer_types::{Event, FinishReason};
use pincer_types::{Message, ToolChoice};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub fn body(w: &WireRequest<'_>) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), w.model_id.into());
    b.insert("max_tokens".into(), w.max_tokens.into());
    let system: Vec<&str> = w
        .req
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !system.is_empty() {
        b.insert("system".into(), system.join("\n\n").into());
    }
    b.insert("messages".into(), messages(&w.req.messages).into());
    b.insert("stream".into(), w.stream.into());
    if !w.req.tools.is_empty() {
        let tools: Vec<Value> = w
            .req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        b.insert("tools".into(), tools.into());
        let choice = match &w.req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
            Some(ToolChoice::None) => json!({"type": "none"}),
        };
        b.insert("tool_choice".into(), choice);
    }
    if !w.req.stop.is_empty() {
        b.insert("stop_sequences".into(), w.req.stop.clone().into());
    }
    // Anthropic refuses a forced tool call with thinking on; the caller who
    // forces one needs the call more than the thinking.
    let forced = !w.req.tools.is_empty()
        && matches!(
            w.req.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Tool(_))
        );
    match w.reasoning_effort() {
        // Anthropic refuses a temperature with thinking on, and needs the
        // budget below max_tokens.
        Some(effort) if w.max_tokens > 1024 && !forced => {
            let budget = effort.thinking_budget().min(w.max_tokens - 1).max(1024);
            b.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        _ => {
            if let Some(t) = w.temperature() {
                b.insert("temperature".into(), t.into());
            }
            if let Some(p) = w.req.top_p {
                b.insert("top_p".into(), p.into());
            }
        }
    }
    Value::Object(b)
}

/// Messages as content blocks, consecutive ones of one role merged (the API
/// wants user and assistant turns to alternate; tool results are user turns).
fn messages(msgs: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in msgs {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Message::Assistant {
                text, tool_calls, ..
            } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for c in tool_calls {
                    let input: Value =
                        serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                ("assistant", blocks)
            }
            Message::Tool {
                call_id,
                content,
                is_error,
                ..
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = true.into();
                }
                ("user", vec![block])
            }
        };
        match out.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn add_usage(total: &mut Usage, u: &Value) {
    let n = |k: &str| field_u64(u, k);
    if let Some(v) = n("input_tokens") {
        total.input = v;
    }
    if let Some(v) = n("output_tokens") {
        total.output = v;
    }
    if let Some(v) = n("cache_read_input_tokens") {
        total.cache_read = v;
    }
    if let Some(v) = n("cache_creation_input_tokens") {
        total.cache_write = v;
    }
}

#[derive(Default)]
pub struct MessagesDecoder {
    think: ThinkSplitter,
    /// Content block index → our tool-call index.
    tools: ToolIndex,
    usage: Usage,
    stop: Option<FinishReason>,
    done: bool,
}

impl MessagesDecoder {
    fn block(
        &mut self,
        index: u64,
        block: &Value,
        out: &mut Vec<Event>,
    ) -> Result<(), ProviderError> {
        match field_str(block, "type") {
            Some("text") => {
                if let Some(t) = field_str(block, "text") {
                    self.think.push(t, out);
                }
            }
            Some("thinking") => {
                if let Some(t) = field_str(block, "thinking").filter(|t| !t.is_empty()) {
                    out.push(Event::Reasoning { delta: t.into() });
                }
            }
            Some("tool_use") => {
                let i = self.tools.dense(index)?;
                // Streams send `input: {}` here and the JSON in deltas.
                let input = block
                    .get("input")
                    .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
                out.push(Event::ToolCall {
                    index: i,
                    id: field_str(block, "id").map(str::to_string),
                    name: field_str(block, "name").map(str::to_string),
                    arguments: input.map(Value::to_string).unwrap_or_default(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        self.think.finish(out);
        out.push(Event::Usage { usage: self.usage });
        let finish = self.stop.take().unwrap_or(FinishReason::Stop);
        out.push(Event::Done { finish });
        self.done = true;
    }
}

impl Decoder for MessagesDecoder {
    fn event(&mut self, sse: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let data = sse.data.trim();
        let v = parse_json(data)?;
        let kind = field_str(&v, "type").or(sse.event.as_deref()).unwrap_or("");
        let index = field_u64(&v, "index").unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(u) = v.get("message").and_then(|m| m.get("usage")) {
                    add_usage(&mut self.usage, u);
                }
            }
            "content_block_start" => {
                self.block(index, v.get("content_block").unwrap_or(&Value::Null), out)?;
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                match field_str(d, "type") {
                    Some("text_delta") => self
                        .think
                        .push(field_str(d, "text").unwrap_or_default(), out),
                    Some("thinking_delta") => {
                        if let Some(t) = field_str(d, "thinking").filter(|t| !t.is_empty()) {
                            out.push(Event::Reasoning { delta: t.into() });
                        }
                    }
                    Some("input_json_delta") => {
                        let i = self.tools.dense(index)?;
                        out.push(Event::ToolCall {
                            index: i,
                            id: None,
                            name: None,
                            arguments: field_str(d, "partial_json").unwrap_or_default().into(),
                        });
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v.get("delta").and_then(|d| field_str(d, "stop_reason")) {
                    self.stop = Some(FinishReason::from_wire(r));
                }
                if let Some(u) = v.get("usage") {
                    add_usage(&mut self.usage, u);
                }
            }
            "message_stop" => self.end(out),
            "error" => return Err(stream_error(data)),
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        // No `message_stop`: complete only if the model said why it stopped.
        if self.stop.is_none() {
            return Err(ProviderError::new(
                ErrorKind::Protocol,
                "stream ended before the model finished (no stop_reason, no message_stop)",
            ));
        }
        self.end(out);
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

pub fn parse_reply(body: &str) -> Result<Vec<Event>, ProviderError> {
    let v = parse_json(body)?;
    if field_str(&v, "type") == Some("error") {
        return Err(stream_error(body));
    }
    let Some(content) = v.get("content").and_then(Value::as_array) else {
        return Err(ProviderError::new(
            ErrorKind::Protocol,
            "reply has no `content`: not an Anthropic message",
        ));
    };
    let mut d = MessagesDecoder::default();
    let mut out = Vec::new();
    for (i, block) in content.iter().enumerate() {
        d.block(i as u64, block, &mut out)?;
    }
    if let Some(u) = v.get("usage") {
        add_usage(&mut d.usage, u);
    }
    d.stop = field_str(&v, "stop_reason").map(FinishReason::from_wire);
    d.end(&mut out);
    Ok(out)
}
