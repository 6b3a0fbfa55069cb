//! `openai-completions`: `POST {baseUrl}/chat/completions`, as OpenAI, llama.cpp,
//! vLLM, LM Studio, Ollama and LiteLLM serve it.

use serde_json::{Map, Value, json};

use super::{Decoder, ToolIndex, WireRequest, field_str, field_u64, parse_json, stream_error};
use crate::sse::SseEvent;
use pincer_types::ThinkSplitter;
use pincer_types::Usage;
use pincer_types::{ErrorKind, ProviderError};
use pincer_types::{Event, FinishReason};
use pincer_types::{Message, ToolChoice};

/// Fields servers use for reasoning beside `content`.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "reasoning", "reasoning_text"];

pub fn body(w: &WireRequest<'_>) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), w.model_id.into());
    b.insert(
        "messages".into(),
        w.req
            .messages
            .iter()
            .map(|m| message(m, w.compat))
            .collect(),
    );
    b.insert("stream".into(), w.stream.into());
    if w.stream && w.compat.supports_usage_in_streaming != Some(false) {
        b.insert("stream_options".into(), json!({"include_usage": true}));
    }
    // OpenAI's reasoning models refuse `max_tokens`; local servers and older
    // proxies only know it (`compat.maxTokensField` says otherwise).
    let cap_field = match w.compat.max_tokens_field.as_deref() {
        Some("max_tokens") => "max_tokens",
        Some(_) => "max_completion_tokens",
        None if w.local => "max_tokens",
        None => "max_completion_tokens",
    };
    b.insert(cap_field.into(), w.max_tokens.into());
    if !w.req.tools.is_empty() {
        let tools: Vec<Value> = w
            .req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": w.tool_schema(&t.parameters)}})
            })
            .collect();
        b.insert("tools".into(), tools.into());
        let choice = match &w.req.tool_choice {
            None | Some(ToolChoice::Auto) => json!("auto"),
            Some(ToolChoice::Required) => json!("required"),
            Some(ToolChoice::Tool(name)) => json!({"type": "function", "function": {"name": name}}),
            Some(ToolChoice::None) => json!("none"),
        };
        b.insert("tool_choice".into(), choice);
    }
    // A final assistant message is a prefill to continue (failover mid-answer).
    // vLLM needs to be told; llama.cpp continues it either way.
    if w.local && matches!(w.req.messages.last(), Some(Message::Assistant { .. })) {
        b.insert("continue_final_message".into(), true.into());
        b.insert("add_generation_prompt".into(), false.into());
    }
    if let Some(t) = w.temperature() {
        b.insert("temperature".into(), t.into());
    }
    if let Some(p) = w.req.top_p {
        b.insert("top_p".into(), p.into());
    }
    if let Some(seed) = w.req.seed {
        b.insert("seed".into(), seed.into());
    }
    if let Some(p) = w.req.frequency_penalty {
        b.insert("frequency_penalty".into(), p.into());
    }
    if let Some(p) = w.req.presence_penalty {
        b.insert("presence_penalty".into(), p.into());
    }
    if !w.req.stop.is_empty() {
        b.insert("stop".into(), w.req.stop.clone().into());
    }
    if let Some(effort) = w.reasoning_effort() {
        b.insert("reasoning_effort".into(), effort.as_str().into());
    }
    w.add_params(&mut b);
    Value::Object(b)
}

fn message(m: &Message, compat: &pincer_config::Compat) -> Value {
    match m {
        Message::System { text } if compat.supports_developer_role == Some(true) => {
            json!({"role": "developer", "content": text})
        }
        Message::System { text } => json!({"role": "system", "content": text}),
        Message::User { text } => json!({"role": "user", "content": text}),
        Message::Assistant {
            text, tool_calls, ..
        } => {
            let mut v = json!({"role": "assistant", "content": text});
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
                v["tool_calls"] = calls.into();
            }
            v
        }
        Message::Tool {
            call_id,
            content,
            name,
            ..
        } => {
            let mut v = json!({"role": "tool", "tool_call_id": call_id, "content": content});
            if compat.requires_tool_result_name == Some(true) {
                v["name"] = name.clone().into();
            }
            v
        }
    }
}

fn usage(u: &Value) -> Usage {
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| field_u64(d, "cached_tokens"))
        .unwrap_or(0);
    Usage {
        input: field_u64(u, "prompt_tokens")
            .unwrap_or(0)
            .saturating_sub(cached),
        output: field_u64(u, "completion_tokens").unwrap_or(0),
        cache_read: cached,
        cache_write: 0,
        reasoning: u
            .get("completion_tokens_details")
            .and_then(|d| field_u64(d, "reasoning_tokens"))
            .unwrap_or(0),
    }
}

/// What a streamed call has said so far.
#[derive(Debug, Clone, Default)]
struct CallSeen {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

#[derive(Default)]
pub struct CompletionsDecoder {
    think: ThinkSplitter,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    calls: ToolIndex,
    /// Per dense call: its id and the arguments so far, to read servers
    /// that number calls oddly or send them again whole.
    seen: Vec<CallSeen>,
    /// Call numbers moved to a fresh number (a server that reuses one).
    renumbered: std::collections::HashMap<u64, u64>,
    /// The number of the call the last piece went to.
    last_wire: Option<u64>,
    /// Fresh numbers handed out, counting down from `u64::MAX`.
    fresh: u64,
    /// OpenRouter's `provider` was told.
    served: bool,
    done: bool,
}

impl CompletionsDecoder {
    /// A call number no server sends.
    fn fresh_wire(&mut self) -> u64 {
        self.fresh += 1;
        u64::MAX - self.fresh
    }

    /// One choice's `delta` (streaming) or `message` (whole reply).
    fn content(&mut self, d: &Value, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        for f in REASONING_FIELDS {
            if let Some(r) = field_str(d, f).filter(|r| !r.is_empty()) {
                out.push(Event::Reasoning { delta: r.into() });
            }
        }
        if let Some(text) = field_str(d, "content") {
            self.think.push(text, out);
        }
        let Some(calls) = d.get("tool_calls").and_then(Value::as_array) else {
            return Ok(());
        };
        for c in calls {
            let f = c.get("function");
            let id = field_str(c, "id")
                .filter(|i| !i.is_empty())
                .map(str::to_string);
            let name = f
                .and_then(|f| field_str(f, "name"))
                .filter(|n| !n.is_empty());
            let has_arguments = f
                .and_then(|f| f.get("arguments"))
                .is_some_and(|a| !a.is_null() && a.as_str() != Some(""));
            // An empty call object (some proxies add one to text replies)
            // says nothing.
            if id.is_none() && name.is_none() && !has_arguments {
                continue;
            }
            let raw = field_u64(c, "index");
            // The call this piece belongs to: its number (as renumbered),
            // or, without one, the call before (Ollama's and some proxies'
            // streams).
            let mut wire = match raw {
                Some(i) => self.renumbered.get(&i).copied().unwrap_or(i),
                None => match self.last_wire {
                    Some(w) => w,
                    None => self.fresh_wire(),
                },
            };
            // A different id, or a new name once the arguments were whole,
            // on a number already used: a new call (servers that number
            // every call 0).
            if let Some(dense) = self.calls.find(wire)
                && let Some(prev) = self.seen.get(dense)
            {
                let new_id = id.is_some() && prev.id.is_some() && id != prev.id;
                // Without a number, any name after whole arguments is one.
                let new_name = name.is_some()
                    && prev.name.is_some()
                    && (name != prev.name.as_deref() || raw.is_none())
                    && complete_json(&prev.arguments);
                if new_id || new_name {
                    wire = self.fresh_wire();
                    if let Some(i) = raw {
                        self.renumbered.insert(i, wire);
                    }
                }
            }
            self.last_wire = Some(wire);
            let index = self.calls.dense(wire)?;
            if self.seen.len() <= index {
                self.seen.resize(index + 1, CallSeen::default());
            }
            let mut arguments = f
                .and_then(|f| f.get("arguments"))
                .map(|a| match a {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            let seen = &mut self.seen[index];
            // The whole arguments again, after they were complete: not a
            // second copy to append. (The piece is looked at first: most
            // pieces are not a whole object, so the sum is rarely parsed.)
            if arguments.trim_start().starts_with('{')
                && complete_json(&arguments)
                && !seen.arguments.is_empty()
                && complete_json(&seen.arguments)
            {
                arguments.clear();
            }
            seen.arguments.push_str(&arguments);
            // A name or id sent again with every piece is said once.
            let id = id.filter(|i| seen.id.as_ref() != Some(i));
            if id.is_some() {
                seen.id.clone_from(&id);
            }
            let name = name
                .filter(|n| seen.name.as_deref() != Some(*n))
                .map(str::to_string);
            if name.is_some() {
                seen.name.clone_from(&name);
            }
            out.push(Event::ToolCall {
                index,
                id,
                name,
                arguments,
            });
        }
        Ok(())
    }

    fn chunk(
        &mut self,
        v: &Value,
        message_key: &str,
        out: &mut Vec<Event>,
    ) -> Result<(), ProviderError> {
        if let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            if let Some(d) = choice.get(message_key) {
                self.content(d, out)?;
            }
            if let Some(f) = field_str(choice, "finish_reason") {
                self.finish = Some(FinishReason::from_wire(f));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
        }
        // OpenRouter names the provider that answered on every chunk.
        if !self.served
            && let Some(p) = field_str(v, "provider").filter(|p| !p.is_empty())
        {
            self.served = true;
            out.push(Event::Served {
                provider: p.to_string(),
            });
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        self.think.finish(out);
        if let Some(usage) = self.usage.take() {
            out.push(Event::Usage { usage });
        }
        // Servers that end a reply with calls as `stop` (or say nothing)
        // still made calls.
        let finish = match self.finish.take() {
            Some(FinishReason::Stop) | None if self.seen.iter().any(|c| c.name.is_some()) => {
                FinishReason::ToolCalls
            }
            Some(f) => f,
            None => FinishReason::Stop,
        };
        out.push(Event::Done { finish });
        self.done = true;
    }
}

impl Decoder for CompletionsDecoder {
    fn event(&mut self, sse: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let data = sse.data.trim();
        if data == "[DONE]" {
            self.end(out);
            return Ok(());
        }
        if sse.event.as_deref() == Some("error") {
            return Err(stream_error(data));
        }
        let v = parse_json(data)?;
        if v.get("error").is_some() {
            return Err(stream_error(data));
        }
        self.chunk(&v, "delta", out)
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        // No `[DONE]`: complete only if the model said why it stopped.
        if self.finish.is_none() {
            return Err(ProviderError::new(
                ErrorKind::Protocol,
                "stream ended before the model finished (no finish_reason, no [DONE])",
            ));
        }
        self.end(out);
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// Whether `s` is one whole JSON value.
fn complete_json(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

pub fn parse_reply(body: &str) -> Result<Vec<Event>, ProviderError> {
    let v = parse_json(body)?;
    if v.get("choices").and_then(Value::as_array).is_none() {
        return Err(ProviderError::new(
            ErrorKind::Protocol,
            "reply has no `choices`: not a chat completion",
        ));
    }
    let mut d = CompletionsDecoder::default();
    let mut out = Vec::new();
    d.chunk(&v, "message", &mut out)?;
    d.end(&mut out);
    Ok(out)
}
