//! Talking to model servers: one `ChatRequest` in, one stream of `Event`s
//! out, whatever the dialect (`openai-completions`, `openai-responses`,
//! `anthropic-messages`); every failure a typed `ProviderError` whose kind a
//! router can act on; usage turned into cost.
//!
//! Data flows one way: `Target` (catalog model + key) → `preflight` (caps and
//! context check) → `Dialect::body` → HTTP → `StreamDecoder` (SSE → events,
//! `<think>` split out) → `Reply`.

mod client;
mod dialect;
mod error;
mod event;
mod preflight;
mod probe;
mod request;
pub mod sse;
mod target;
mod think;
mod usage;

pub use client::{Client, EventStream};
pub use dialect::{Dialect, StreamDecoder, WireRequest};
pub use error::{ErrorKind, Overflow, ProviderError, classify_http, classify_stream_error, scrub};
pub use event::{Event, FinishReason, Reply};
pub use preflight::{estimate_prompt_tokens, preflight};
pub use probe::{LoadState, ServerKind, ServerReport};
pub use request::{ChatRequest, Message, ReasoningEffort, Tool, ToolCall, ToolChoice};
pub use target::{Target, Timeouts};
pub use think::ThinkSplitter;
pub use usage::{Usage, cost};
