//! The four API dialects (OpenAI's chat completions and responses,
//! Anthropic's messages, Ollama's own chat): how a `ChatRequest` goes on the
//! wire, and how each one's reply (streamed or whole) comes back as the same
//! `Event`s.

mod anthropic_messages;
mod ollama;
mod openai_completions;
mod openai_responses;

use serde_json::Value;

use crate::classify::classify_stream_error;
use crate::sse::{SseDecoder, SseEvent};
use pincer_types::Event;
use pincer_types::{ChatRequest, ReasoningEffort};
use pincer_types::{ErrorKind, ProviderError};

pub use anthropic_messages::ANTHROPIC_VERSION;
pub use ollama::root as ollama_root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAiCompletions,
    OpenAiResponses,
    AnthropicMessages,
    /// Ollama's own `/api/chat`.
    Ollama,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [
        Dialect::OpenAiCompletions,
        Dialect::OpenAiResponses,
        Dialect::AnthropicMessages,
        Dialect::Ollama,
    ];

    /// The dialects that stream server-sent events (OpenAI's two and
    /// Anthropic's); Ollama's own streams newline-delimited JSON.
    pub const SSE: [Dialect; 3] = [
        Dialect::OpenAiCompletions,
        Dialect::OpenAiResponses,
        Dialect::AnthropicMessages,
    ];

    /// The name used in `api:` of the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAiCompletions => "openai-completions",
            Dialect::OpenAiResponses => "openai-responses",
            Dialect::AnthropicMessages => "anthropic-messages",
            Dialect::Ollama => "ollama",
        }
    }

    /// Where to send the request, from the provider's `baseUrl`.
    pub fn url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            Dialect::OpenAiCompletions => format!("{base}/chat/completions"),
            Dialect::OpenAiResponses => format!("{base}/responses"),
            // Anthropic's base URL is the host; some configs include `/v1`.
            Dialect::AnthropicMessages if base.ends_with("/v1") => format!("{base}/messages"),
            Dialect::AnthropicMessages => format!("{base}/v1/messages"),
            Dialect::Ollama => format!("{}/api/chat", ollama::root(base)),
        }
    }

    pub fn body(self, w: &WireRequest<'_>) -> Value {
        match self {
            Dialect::OpenAiCompletions => openai_completions::body(w),
            Dialect::OpenAiResponses => openai_responses::body(w),
            Dialect::AnthropicMessages => anthropic_messages::body(w),
            Dialect::Ollama => ollama::body(w),
        }
    }

    pub fn stream_decoder(self) -> StreamDecoder {
        let inner: Box<dyn Decoder> = match self {
            Dialect::OpenAiCompletions => Box::<openai_completions::CompletionsDecoder>::default(),
            Dialect::OpenAiResponses => Box::<openai_responses::ResponsesDecoder>::default(),
            Dialect::AnthropicMessages => Box::<anthropic_messages::MessagesDecoder>::default(),
            Dialect::Ollama => Box::<ollama::OllamaDecoder>::default(),
        };
        StreamDecoder {
            sse: match self {
                Dialect::Ollama => SseDecoder::ndjson(),
                _ => SseDecoder::new(),
            },
            inner,
            failed: None,
        }
    }

    /// A whole (non-streamed) reply as events.
    pub fn parse_reply(self, body: &str) -> Result<Vec<Event>, ProviderError> {
        match self {
            Dialect::OpenAiCompletions => openai_completions::parse_reply(body),
            Dialect::OpenAiResponses => openai_responses::parse_reply(body),
            Dialect::AnthropicMessages => anthropic_messages::parse_reply(body),
            Dialect::Ollama => ollama::parse_reply(body),
        }
    }
}

/// Request fields Pincer sets (or leaves out on purpose): `extra_body`
/// never adds them.
pub const OWNED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "input",
    "system",
    "instructions",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "reasoning_effort",
    "reasoning",
    "thinking",
    "provider",
    "continue_final_message",
    "add_generation_prompt",
    "think",
];

/// Everything a dialect needs to write one request.
#[derive(Debug, Clone, Copy)]
pub struct WireRequest<'a> {
    /// The model id as the server knows it (without the provider prefix).
    pub model_id: &'a str,
    pub req: &'a ChatRequest,
    /// Output cap, already limited by the model's `maxTokens`.
    pub max_tokens: u64,
    /// The model's budget for prompt + output (Ollama's `num_ctx`).
    pub context_window: u64,
    pub stream: bool,
    /// The model is marked `reasoning: true`.
    pub reasoning: bool,
    /// A local server (picks the field names local servers understand).
    pub local: bool,
    /// What the server takes (`compat`).
    pub compat: &'a pincer_config::Compat,
    /// The agent's `params` for the model.
    pub params: Option<&'a Value>,
}

impl WireRequest<'_> {
    fn reasoning_effort(&self) -> Option<ReasoningEffort> {
        self.req
            .reasoning_effort
            .filter(|_| self.reasoning && self.compat.supports_reasoning_effort != Some(false))
    }

    fn temperature(&self) -> Option<f32> {
        self.req
            .temperature
            .or_else(|| {
                self.params
                    .and_then(|p| p.get("temperature"))
                    .and_then(Value::as_f64)
                    .map(|t| t as f32)
            })
            .filter(|_| self.compat.supports_temperature != Some(false))
    }

    /// The model's `params` that go on the wire as they are: OpenRouter's
    /// `provider` routing preferences, and `extra_body` (or `extraBody`)
    /// fields, which never replace a field the request set.
    fn add_params(&self, b: &mut serde_json::Map<String, Value>) {
        let Some(p) = self.params else { return };
        if let Some(provider) = p.get("provider").filter(|v| v.is_object()) {
            b.insert("provider".into(), provider.clone());
        }
        let extra = p.get("extra_body").or_else(|| p.get("extraBody"));
        if let Some(Value::Object(extra)) = extra {
            for (k, v) in extra {
                // Fields Pincer decides (and may have left out on purpose)
                // are not the config's to add.
                if OWNED_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                b.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }

    /// A tool's parameter schema as this server takes it: for llama.cpp
    /// (`toolSchemaProfile: "llamacpp"`) without `pattern` and without a
    /// `maxLength` its grammar cannot hold.
    fn tool_schema(&self, schema: &Value) -> Value {
        match self.compat.tool_schema_profile.as_deref() {
            Some("llamacpp") => llamacpp_schema(schema),
            _ => schema.clone(),
        }
    }
}

fn llamacpp_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| {
                    let pattern = *k == "pattern" && v.is_string();
                    let too_long = *k == "maxLength" && v.as_u64().is_some_and(|n| n >= 2000);
                    !(pattern || too_long)
                })
                .map(|(k, v)| {
                    // Under these keys the names are parameters, not schema
                    // keywords: a parameter called `pattern` stays.
                    let v = match (k.as_str(), v) {
                        ("properties" | "$defs" | "definitions", Value::Object(props)) => {
                            Value::Object(
                                props
                                    .iter()
                                    .map(|(name, schema)| (name.clone(), llamacpp_schema(schema)))
                                    .collect(),
                            )
                        }
                        _ => llamacpp_schema(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(llamacpp_schema).collect()),
        other => other.clone(),
    }
}

/// A dialect's reading of SSE events.
pub(crate) trait Decoder: Send {
    fn event(&mut self, sse: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError>;
    /// The bytes ended: emit what is left, or say why the reply is incomplete.
    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError>;
    /// The reply is complete (`Done` was emitted).
    fn is_done(&self) -> bool;
}

/// Bytes in, events out, for one streamed reply.
pub struct StreamDecoder {
    sse: SseDecoder,
    inner: Box<dyn Decoder>,
    /// An error met after events of the same read: those events go out
    /// first, the error on the next call.
    failed: Option<ProviderError>,
}

impl StreamDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ProviderError> {
        let mut out = Vec::new();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.inner.is_done() {
            return Ok(out);
        }
        for sse in self.sse.feed(bytes)? {
            if let Err(e) = self.inner.event(&sse, &mut out) {
                // What arrived before the bad chunk is part of the answer.
                if out.is_empty() {
                    return Err(e);
                }
                self.failed = Some(e);
                return Ok(out);
            }
            if self.inner.is_done() {
                break;
            }
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<Event>, ProviderError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut out = Vec::new();
        if self.inner.is_done() {
            return Ok(out);
        }
        if let Some(sse) = self.sse.finish()? {
            self.inner.event(&sse, &mut out)?;
        }
        if !self.inner.is_done() {
            self.inner.finish(&mut out)?;
        }
        Ok(out)
    }

    pub fn is_done(&self) -> bool {
        self.inner.is_done()
    }

    /// The error met after the events already returned, if any.
    pub fn take_failure(&mut self) -> Option<ProviderError> {
        self.failed.take()
    }
}

/// Most tool calls one reply may make. A server's own call numbers (OpenAI's
/// `index`, Responses' `output_index`, Anthropic's block `index`) are mapped
/// to dense numbers from 0, so a hostile number allocates nothing; a reply
/// with more distinct calls than this is refused.
pub const MAX_TOOL_CALLS: usize = 128;

/// The server's tool-call numbers → dense indices, at most `MAX_TOOL_CALLS`.
#[derive(Debug, Default)]
struct ToolIndex {
    seen: Vec<u64>,
}

impl ToolIndex {
    fn dense(&mut self, wire: u64) -> Result<usize, ProviderError> {
        if let Some(i) = self.seen.iter().position(|&w| w == wire) {
            return Ok(i);
        }
        if self.seen.len() >= MAX_TOOL_CALLS {
            return Err(ProviderError::new(
                ErrorKind::Protocol,
                format!("the server sent more than {MAX_TOOL_CALLS} tool calls in one reply"),
            ));
        }
        self.seen.push(wire);
        Ok(self.seen.len() - 1)
    }

    fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The dense index of a number already seen.
    fn find(&self, wire: u64) -> Option<usize> {
        self.seen.iter().position(|&w| w == wire)
    }
}

fn parse_json(data: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(data).map_err(|e| {
        let shown: String = data.chars().take(120).collect();
        ProviderError::new(
            ErrorKind::Protocol,
            format!("malformed JSON from the server ({e}): {shown}"),
        )
    })
}

fn stream_error(data: &str) -> ProviderError {
    classify_stream_error(data, &[])
}

fn field_str<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn field_u64(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_indices_are_dense_and_bounded() {
        let mut t = ToolIndex::default();
        assert_eq!(t.dense(4_000_000_000).ok(), Some(0));
        assert_eq!(t.dense(7).ok(), Some(1));
        assert_eq!(t.dense(4_000_000_000).ok(), Some(0));
        for i in 0..(MAX_TOOL_CALLS as u64 - 2) {
            assert!(t.dense(100 + i).is_ok());
        }
        let e = t.dense(1).err().map(|e| e.kind);
        assert_eq!(e, Some(ErrorKind::Protocol));
    }
}
