//! Test support. Real servers nobody here wrote — llama.cpp's `llama-server`
//! and LiteLLM's proxy — started on 127.0.0.1 and stopped on drop; and a
//! scripted fake upstream for what real servers will not do on demand (cut
//! streams, hangs, exact error bodies).
//!
//! `scripts/test-deps` installs the real parts; their paths come from
//! `PINCER_TEST_*` variables or the cache directory that script uses.

// Test support: failing loudly, with the reason, is its whole job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake;
mod ollama;
mod servers;
pub mod telegram;

pub use fake::{
    FakeUpstream, Recorded, Step, completions_stream, completions_tool_stream, http_response,
    sse_head, whole_reply,
};
pub use ollama::{OllamaModel, OllamaReplay};
pub use servers::{LiteLlm, LlamaServer, free_port, gguf_path, litellm_available, openai_python};
