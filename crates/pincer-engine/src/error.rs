//! What can go wrong in the embedded engine, and how a router sees it.

use std::path::PathBuf;

use pincer_types::{ErrorKind, Overflow, ProviderError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {} not found", .0.display())]
    MissingFile(PathBuf),
    #[error("cannot load {}: {reason} (is it a GGUF file llama.cpp supports?)", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("cannot start llama.cpp: {0}")]
    Backend(String),
    #[error("cannot create a context of {n_ctx} tokens: {reason}")]
    Context { n_ctx: u32, reason: String },
    #[error("{0}")]
    BadPrompt(String),
    #[error(
        "not sent: the prompt is {prompt} tokens, over {model}'s context window of {window} by {}",
        prompt + 1 - window
    )]
    Overflow {
        model: String,
        prompt: u64,
        window: u64,
    },
    #[error("llama.cpp failed while generating: {0}")]
    Decode(String),
    #[error("the engine for {0} has stopped")]
    Stopped(String),
}

impl From<EngineError> for ProviderError {
    fn from(e: EngineError) -> ProviderError {
        let kind = match &e {
            EngineError::MissingFile(_) => ErrorKind::ModelNotFound,
            EngineError::Load { .. } | EngineError::Backend(_) | EngineError::Context { .. } => {
                ErrorKind::Server
            }
            EngineError::BadPrompt(_) => ErrorKind::BadRequest,
            EngineError::Overflow { .. } => ErrorKind::ContextOverflow,
            EngineError::Decode(_) | EngineError::Stopped(_) => ErrorKind::Server,
        };
        let mut out = ProviderError::new(kind, e.to_string());
        if let EngineError::Overflow { prompt, window, .. } = e {
            out.overflow = Some(Overflow {
                requested: Some(prompt),
                limit: Some(window),
            });
        }
        out
    }
}
