//! `ollama`: Ollama's own `POST {baseUrl}/api/chat`, streamed as
//! newline-delimited JSON. Unlike Ollama's OpenAI-compatible endpoint it
//! keeps streamed tool calls, takes the context size (`options.num_ctx`,
//! set from the model's budget so Ollama's small default never silently
//! cuts the conversation), and returns thinking apart from the answer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Decoder, WireRequest, parse_json, stream_error};
use crate::sse::SseEvent;
use pincer_types::{ErrorKind, Event, FinishReason, Message, ProviderError};
use pincer_types::{ReasoningEffort, ThinkSplitter, ToolChoice, Usage};

/// The server's root: Ollama's API lives beside its `/v1`, not under it.
pub fn root(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    /// A level (`low`, `medium`, `high`), only for reasoning models that
    /// were asked to reason; otherwise the model's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<&'static str>,
    options: Options<'a>,
}

/// The model's `params` that go into `options` (Ollama's own names).
const OPTION_PARAMS: &[&str] = &[
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_last_n",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
];

/// The model's `params` that go on the body itself.
const TOP_PARAMS: &[&str] = &["format", "keep_alive", "truncate", "shift"];

#[derive(Serialize)]
struct Options<'a> {
    num_ctx: u64,
    num_predict: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCallOut<'a>>,
    /// The tool a result belongs to (Ollama matches results by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Serialize)]
struct WireCallOut<'a> {
    function: WireFunctionOut<'a>,
}

#[derive(Serialize)]
struct WireFunctionOut<'a> {
    name: &'a str,
    /// Ollama wants the arguments as an object, not a JSON string.
    arguments: Value,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireToolFunction<'a>,
}

#[derive(Serialize)]
struct WireToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: Value,
}

pub fn body(w: &WireRequest<'_>) -> Value {
    // Ollama has no `tool_choice`: a turn that must not call tools is sent
    // none.
    let tools = if matches!(w.req.tool_choice, Some(ToolChoice::None)) {
        Vec::new()
    } else {
        w.req
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireToolFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: w.tool_schema(&t.parameters),
                },
            })
            .collect()
    };
    let body = ChatBody {
        model: w.model_id,
        messages: w.req.messages.iter().map(message).collect(),
        stream: w.stream,
        tools,
        think: w.reasoning_effort().map(|e| match e {
            ReasoningEffort::Minimal | ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }),
        options: Options {
            num_ctx: w.context_window,
            num_predict: w.max_tokens,
            temperature: w.temperature(),
            top_p: w.req.top_p,
            seed: w.req.seed,
            frequency_penalty: w.req.frequency_penalty,
            presence_penalty: w.req.presence_penalty,
            stop: &w.req.stop,
        },
    };
    let mut b = match serde_json::to_value(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // A local Ollama refuses a prompt over `num_ctx` instead of silently
    // dropping the start of the conversation (its default).
    if w.local {
        b.insert("truncate".into(), false.into());
        b.insert("shift".into(), false.into());
    }
    // The model's own Ollama params: options (`top_k`, `num_gpu`…) where
    // the request set none (`num_ctx` always: it is Ollama's own knob), and
    // `keep_alive` ("10m", "24h", seconds, -1 for ever), `format`,
    // `truncate`, `shift` on the body. (`temperature` is read with the
    // other dialects' rule, `WireRequest::temperature`.)
    if let Some(Value::Object(p)) = w.params {
        if let Some(Value::Object(options)) = b.get_mut("options") {
            for (k, v) in p
                .iter()
                .filter(|(k, _)| OPTION_PARAMS.contains(&k.as_str()))
            {
                if k == "num_ctx" {
                    options.insert(k.clone(), v.clone());
                } else {
                    options.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        for (k, v) in p.iter().filter(|(k, _)| TOP_PARAMS.contains(&k.as_str())) {
            b.insert(k.clone(), v.clone());
        }
        if let Some(k) = p.get("keepAlive") {
            b.entry("keep_alive").or_insert_with(|| k.clone());
        }
    }
    w.add_params(&mut b);
    Value::Object(b)
}

fn message(m: &Message) -> WireMessage<'_> {
    let plain = |role, content| WireMessage {
        role,
        content,
        thinking: None,
        tool_calls: Vec::new(),
        tool_name: None,
    };
    match m {
        Message::System { text } => plain("system", text),
        Message::User { text } => plain("user", text),
        Message::Assistant {
            text, tool_calls, ..
        } => WireMessage {
            tool_calls: tool_calls
                .iter()
                .map(|c| WireCallOut {
                    function: WireFunctionOut {
                        name: &c.name,
                        arguments: serde_json::from_str::<Value>(&c.arguments)
                            .ok()
                            .filter(Value::is_object)
                            .unwrap_or_else(|| Value::Object(Map::new())),
                    },
                })
                .collect(),
            ..plain("assistant", text)
        },
        Message::Tool { content, name, .. } => WireMessage {
            tool_name: Some(name),
            ..plain("tool", content)
        },
    }
}

/// One line of `/api/chat`'s reply (or the whole reply, unstreamed).
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    message: Option<ChunkMessage>,
    /// Required: a line without it is not Ollama's.
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    /// Prompt tokens served from Ollama's cache (newer servers).
    #[serde(default)]
    prompt_eval_cached_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
}

#[derive(Deserialize)]
struct ChunkMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    /// What some builds call `thinking`.
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireCallIn>>,
}

#[derive(Deserialize)]
struct WireCallIn {
    #[serde(default)]
    id: Option<String>,
    function: WireFunctionIn,
}

#[derive(Deserialize)]
struct WireFunctionIn {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Default)]
pub struct OllamaDecoder {
    think: ThinkSplitter,
    /// Calls so far: Ollama sends each one whole, in the chunk it is made.
    calls: usize,
    /// Tells this reply's call ids apart from other replies' (older Ollama
    /// versions give calls no id).
    nonce: Option<String>,
    usage: Usage,
    finish: Option<FinishReason>,
    done: bool,
}

impl OllamaDecoder {
    fn chunk(&mut self, c: Chunk, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if let Some(m) = c.message {
            if let Some(t) = m.thinking.or(m.reasoning).filter(|t| !t.is_empty()) {
                out.push(Event::Reasoning { delta: t });
            }
            if let Some(t) = m.content {
                self.think.push(&t, out);
            }
            for call in m.tool_calls.unwrap_or_default() {
                self.call(call, out)?;
            }
        }
        if c.done {
            let cached = c.prompt_eval_cached_count.unwrap_or(0);
            self.usage.input = c.prompt_eval_count.unwrap_or(0).saturating_sub(cached);
            self.usage.cache_read = cached;
            self.usage.output = c.eval_count.unwrap_or(0);
            self.finish = Some(match c.done_reason.as_deref() {
                Some("length") => FinishReason::Length,
                _ if self.calls > 0 => FinishReason::ToolCalls,
                Some(r) => FinishReason::from_wire(r),
                None => FinishReason::Stop,
            });
            self.end(out);
        }
        Ok(())
    }

    fn call(&mut self, call: WireCallIn, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if call.function.name.is_empty() {
            return Ok(());
        }
        if self.calls >= super::MAX_TOOL_CALLS {
            return Err(ProviderError::new(
                ErrorKind::Protocol,
                format!(
                    "the server sent more than {} tool calls in one reply",
                    super::MAX_TOOL_CALLS
                ),
            ));
        }
        let index = self.calls;
        self.calls += 1;
        let id = match call.id.filter(|i| !i.is_empty()) {
            Some(id) => id,
            None => {
                let nonce = self.nonce.get_or_insert_with(|| {
                    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
                });
                format!("call_{nonce}_{index}")
            }
        };
        let arguments = match call.function.arguments {
            Value::Null => "{}".to_string(),
            // Some models' calls carry the arguments as a JSON string.
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.push(Event::ToolCall {
            index,
            id: Some(id),
            name: Some(call.function.name),
            arguments,
        });
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        self.think.finish(out);
        out.push(Event::Usage { usage: self.usage });
        let finish = self.finish.take().unwrap_or(FinishReason::Stop);
        out.push(Event::Done { finish });
        self.done = true;
    }
}

impl Decoder for OllamaDecoder {
    fn event(&mut self, sse: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let chunk = parse_chunk(sse.data.trim())?;
        self.chunk(chunk, out)
    }

    fn finish(&mut self, _out: &mut Vec<Event>) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ErrorKind::Protocol,
            "stream ended before the model finished (no line with \"done\": true)",
        ))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// One line: an error line (Ollama's `{"error": "…"}`) is the error it
/// says; anything else must be a chat reply.
fn parse_chunk(data: &str) -> Result<Chunk, ProviderError> {
    let v = parse_json(data)?;
    if v.get("error").is_some() {
        return Err(stream_error(data));
    }
    serde_json::from_value(v).map_err(|e| {
        ProviderError::new(
            ErrorKind::Protocol,
            format!("not an Ollama chat reply ({e})"),
        )
    })
}

pub fn parse_reply(body: &str) -> Result<Vec<Event>, ProviderError> {
    let chunk = parse_chunk(body.trim())?;
    if !chunk.done {
        return Err(ProviderError::new(
            ErrorKind::Protocol,
            "reply is not done: not a whole Ollama chat reply",
        ));
    }
    let mut d = OllamaDecoder::default();
    let mut out = Vec::new();
    d.chunk(chunk, &mut out)?;
    Ok(out)
}
