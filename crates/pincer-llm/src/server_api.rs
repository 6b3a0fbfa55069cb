//! What local servers say about their models, as typed replies: Ollama's
//! `/api/tags`, `/api/ps` and `/api/show`, LM Studio's `/api/v0/models`,
//! and the OpenAI-style `/v1/models` with what llama.cpp and vLLM add to it.
//! Shapes recorded from the servers' own API references and sources; every
//! field a server may leave out is optional.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Ollama's `GET /api/tags`: the models pulled.
#[derive(Debug, Deserialize)]
pub struct OllamaTags {
    pub models: Vec<OllamaTag>,
}

#[derive(Debug, Deserialize)]
pub struct OllamaTag {
    pub name: String,
    #[serde(default)]
    pub digest: Option<String>,
    /// Newer servers (0.30+) list capabilities here too.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub details: Option<OllamaDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OllamaDetails {
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub parameter_size: Option<String>,
    #[serde(default)]
    pub quantization_level: Option<String>,
    /// Newer servers (0.30+).
    #[serde(default)]
    pub context_length: Option<u64>,
}

/// Ollama's `GET /api/ps`: the models in memory.
#[derive(Debug, Deserialize)]
pub struct OllamaPs {
    #[serde(default)]
    pub models: Vec<OllamaRunning>,
}

#[derive(Debug, Deserialize)]
pub struct OllamaRunning {
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    /// The context it was loaded with (0.10+).
    #[serde(default)]
    pub context_length: Option<u64>,
}

impl OllamaRunning {
    /// Whether this is the model asked for as `wanted`.
    pub fn is(&self, wanted: &str) -> bool {
        std::iter::once(&self.name)
            .chain(self.model.as_ref())
            .any(|n| same_ollama_model(n, wanted))
    }
}

/// Ollama's `POST /api/show`.
#[derive(Debug, Deserialize)]
pub struct OllamaShow {
    #[serde(default)]
    pub parameters: Option<String>,
    #[serde(default)]
    pub model_info: BTreeMap<String, Value>,
    /// `completion`, `tools`, `thinking`, `vision`, `embedding`… (0.6.4+).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

impl OllamaShow {
    /// The most context the model takes: what it was trained for
    /// (`<arch>.context_length`), or a Modelfile `num_ctx` above it.
    pub fn max_context(&self) -> Option<u64> {
        let arch = self
            .model_info
            .get("general.architecture")
            .and_then(Value::as_str);
        let trained = arch.and_then(|a| {
            self.model_info
                .get(&format!("{a}.context_length"))
                .and_then(Value::as_u64)
        });
        match (trained, self.modelfile_num_ctx()) {
            (Some(t), Some(m)) => Some(t.max(m)),
            (t, m) => t.or(m),
        }
    }

    /// A `num_ctx` the Modelfile sets (the last one).
    fn modelfile_num_ctx(&self) -> Option<u64> {
        self.parameters
            .as_deref()?
            .lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix("num_ctx"))
            .find_map(|v| v.trim().parse().ok())
    }
}

/// `GET /v1/models` (OpenAI's list), as llama.cpp, vLLM, LM Studio, Ollama
/// and LiteLLM serve it.
#[derive(Debug, Deserialize)]
pub struct ModelList {
    pub data: Vec<ListedModel>,
}

#[derive(Debug, Deserialize)]
pub struct ListedModel {
    pub id: String,
    #[serde(default)]
    pub owned_by: Option<String>,
    /// vLLM: the context it serves.
    #[serde(default)]
    pub max_model_len: Option<u64>,
    /// llama.cpp: the model's metadata (null while loading).
    #[serde(default)]
    pub meta: Option<LlamaCppMeta>,
    /// llama.cpp's router mode: loaded, loading, unloaded…
    #[serde(default)]
    pub status: Option<ListedStatus>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct LlamaCppMeta {
    #[serde(default)]
    pub n_ctx_train: Option<u64>,
    /// The per-request context (newer servers).
    #[serde(default)]
    pub n_ctx: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct ListedStatus {
    pub value: String,
}

/// LM Studio's `GET /api/v0/models`.
#[derive(Debug, Deserialize)]
pub struct LmStudioModels {
    pub data: Vec<LmStudioModel>,
}

#[derive(Debug, Deserialize)]
pub struct LmStudioModel {
    pub id: String,
    /// `llm`, `vlm` or `embeddings`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `loaded`, `not-loaded` (and `loading`).
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub max_context_length: Option<u64>,
    #[serde(default)]
    pub loaded_context_length: Option<u64>,
    /// `tool_use`… (0.3.16+).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

/// llama.cpp's `GET /props` (the part Pincer reads).
#[derive(Debug, Deserialize)]
pub struct LlamaCppProps {
    #[serde(default)]
    pub default_generation_settings: Option<LlamaCppSettings>,
    #[serde(default)]
    pub is_sleeping: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct LlamaCppSettings {
    #[serde(default)]
    pub n_ctx: Option<u64>,
}

/// Ollama lists `llama3:latest` for a model asked for as `llama3`.
pub fn same_ollama_model(listed: &str, wanted: &str) -> bool {
    listed == wanted || listed.strip_suffix(":latest") == Some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_reads_the_trained_context_and_the_modelfile() {
        let show: OllamaShow = serde_json::from_str(
            r#"{"parameters":"num_ctx 4096\nstop \"<|eot_id|>\"\nnum_ctx 8192",
                "model_info":{"general.architecture":"llama","llama.context_length":131072},
                "capabilities":["completion","tools"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(show.max_context(), Some(131_072));
        assert_eq!(show.modelfile_num_ctx(), Some(8192));
        let small: OllamaShow = serde_json::from_str(
            r#"{"parameters":"num_ctx 65536","model_info":{"general.architecture":"qwen3","qwen3.context_length":40960}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            small.max_context(),
            Some(65_536),
            "the Modelfile's above it wins"
        );
    }

    #[test]
    fn ollama_latest_tag() {
        assert!(same_ollama_model("llama3:latest", "llama3"));
        assert!(same_ollama_model("llama3:8b", "llama3:8b"));
        assert!(!same_ollama_model("llama3:8b", "llama3"));
    }
}
