//! Pincer's embedded engine: a GGUF model run in-process by llama.cpp (through
//! the `llama-cpp-2` crate), loaded once and kept warm, answering with the same
//! `Event` stream as every HTTP dialect, so routing and failover treat it like
//! any other provider.
//!
//! - `engine`: the loaded model, its thread, context growth and prompt reuse;
//! - `queue`: fair turns between sessions sharing one model;
//! - `text`: token bytes to UTF-8 text, with stop strings held back;
//! - `template`: the chat template from the GGUF.

mod engine;
mod error;
mod queue;
mod template;
mod text;

pub use engine::{EngineOptions, Generation, KvCache, LoadedModel, ModelInfo};
pub use error::EngineError;
pub use queue::FairQueue;
pub use text::{Scanned, StopScanner, Utf8Joiner};
