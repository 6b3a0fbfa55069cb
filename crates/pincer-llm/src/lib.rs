//! Talking to model servers over HTTP: one `ChatRequest` in, one stream of `Event`s
//! out, whatever the dialect (`openai-completions`, `openai-responses`,
//! `anthropic-messages`); every failure a typed `ProviderError` whose kind a
//! router can act on; usage turned into cost.
//!
//! Data flows one way: `Target` (catalog model + key) → `preflight` (caps and
//! context check) → `Dialect::body` → HTTP → `StreamDecoder` (SSE → events,
//! `<think>` split out) → `Reply`.

mod classify;
mod client;
mod dialect;
mod discover;
mod preflight;
mod probe;
pub mod server_api;
pub mod sse;
mod target;
mod usage;

pub use classify::{classify_http, classify_stream_error, refuses_prefill, scrub};
pub use client::{Client, EventStream, streamed};
pub use dialect::{Dialect, MAX_TOOL_CALLS, StreamDecoder, WireRequest};
/// The shared vocabulary, re-exported for callers of the dialects.
pub use pincer_types::{
    ChatRequest, ErrorKind, Event, FinishReason, Message, Overflow, ProviderError, ReasoningEffort,
    Reply, ThinkSplitter, Tool, ToolCall, ToolChoice, Usage,
};
pub use preflight::{estimate_prompt_tokens, preflight};
pub use probe::{LoadState, ServerKind, ServerReport};
pub use target::{Target, Timeouts};
pub use usage::cost;
