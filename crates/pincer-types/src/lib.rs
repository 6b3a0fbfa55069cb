//! The vocabulary shared by everything that asks a model for an answer:
//! `ChatRequest` and its `Message`s in, a stream of `Event`s out, folded into
//! a `Reply`; `Usage` counts tokens; every failure is a `ProviderError` with
//! an `ErrorKind` a router can act on. `ThinkSplitter` keeps reasoning out of
//! the answer text, for any transport.
//!
//! No I/O here: the HTTP dialects (`pincer-llm`), the embedded engine, the
//! router, the session store and the gateway all speak these types, and none
//! of them needs another's transport to do so.

mod error;
mod event;
mod request;
mod think;
mod usage;

pub use error::{ErrorKind, Overflow, ProviderError};
pub use event::{Event, FinishReason, Reply};
pub use request::{ChatRequest, Message, ReasoningEffort, Tool, ToolCall, ToolChoice};
pub use think::ThinkSplitter;
pub use usage::Usage;
