//! `provider/model` references.

use std::fmt;

use serde::Serialize;

/// A model reference: `provider/model`. Only the first `/` splits, so
/// `openrouter/minimax/minimax-m2.1` is provider `openrouter`, model `minimax/minimax-m2.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("{0:?} is not a model ref: expected \"provider/model\"")]
    NotARef(String),
}

impl ModelRef {
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        ModelRef {
            provider: provider.into(),
            model: model.into(),
        }
    }

    /// Split at the first `/`; the provider id is trimmed and lowercased.
    pub fn parse(s: &str) -> Result<ModelRef, RefError> {
        let s = s.trim();
        match s.split_once('/') {
            Some((p, m)) if !p.trim().is_empty() && !m.trim().is_empty() => {
                Ok(ModelRef::new(p.trim().to_ascii_lowercase(), m.trim()))
            }
            _ => Err(RefError::NotARef(s.to_string())),
        }
    }

    /// `provider/*` and `provider/namespace/*` patterns (allowlists).
    pub fn is_wildcard(s: &str) -> bool {
        s.ends_with("/*")
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_slash_only() {
        let r = ModelRef::parse("openrouter/minimax/minimax-m2.1").unwrap();
        assert_eq!(r.provider, "openrouter");
        assert_eq!(r.model, "minimax/minimax-m2.1");
        let r = ModelRef::parse(" LMStudio/qwen/qwen3.5-9b ").unwrap();
        assert_eq!(r.provider, "lmstudio");
        assert_eq!(r.model, "qwen/qwen3.5-9b");
        assert_eq!(r.to_string(), "lmstudio/qwen/qwen3.5-9b");
    }

    #[test]
    fn rejects_missing_halves() {
        for bad in ["", "opus", "/m", "p/", " / "] {
            assert!(ModelRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
