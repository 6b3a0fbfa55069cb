//! Model discovery, the part without I/O: which providers list their models
//! from their server, what a listed model is, and how the lists join the
//! catalog (as rows marked discovered, beside the config's own).
//!
//! A provider is discovered when its models come from its server: a local
//! provider with a `baseUrl` and no `models` of its own in the config, or a
//! built-in local one (Ollama, LM Studio, vLLM, SGLang, llama.cpp, LiteLLM)
//! that the agents' models name. OpenClaw does the same for the servers it
//! knows.

use pincer_config::{Api, Config, ModelConfig, ModelsConfig, ProviderConfig, Spanned};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;

/// Discovery never keeps more models than this per server.
pub const MAX_DISCOVERED: usize = 200;
/// A discovered local Ollama model runs with at most this context unless
/// the config says otherwise (as OpenClaw: a model trained for 128k would
/// otherwise reserve memory for all of it).
pub const OLLAMA_LOCAL_CONTEXT: u64 = 32_768;

/// One model a server listed, with what it said about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredModel {
    pub id: String,
    /// The most the model takes (trained, or the server's maximum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// What it runs with now, when the server says (llama.cpp's `n_ctx`,
    /// LM Studio's loaded context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// The server says it thinks (Ollama's `thinking` capability).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<bool>,
    /// The server says whether it can call tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vision: bool,
    /// In memory now, when the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<bool>,
}

/// What one provider's server said, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    pub provider: String,
    pub base_url: String,
    /// Which server software answered (`Ollama`, `llama.cpp`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub models: Vec<DiscoveredModel>,
    /// Why the server could not be asked this time; `models` are then the
    /// last list it gave, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the list was asked for (ms since the epoch).
    pub at_ms: u64,
}

/// The built-in providers that run on the user's machine and list their
/// models.
const LOCAL_SERVERS: &[&str] = &[
    "ollama",
    "lmstudio",
    "vllm",
    "sglang",
    "llama-cpp",
    "litellm",
];

/// Whether `provider`'s models come from its server: it has a `baseUrl`,
/// speaks a dialect that lists models, and the config gives it no models of
/// its own.
pub fn is_discoverable(catalog: &Catalog<'_>, provider: &str) -> bool {
    let Some(p) = catalog.provider(provider) else {
        return false;
    };
    let lists = matches!(
        p.api,
        Some(Api::OpenAiCompletions | Api::OpenAiResponses | Api::Ollama)
    );
    let own_models = catalog
        .config_provider_models(provider)
        .is_some_and(|ms| ms.iter().any(|m| !m.discovered));
    // A hosted built-in provider (OpenRouter, OpenAI…) keeps the catalog's
    // list: its hundreds of models are known, with their facts.
    let ours = p.local || !p.builtin;
    p.base_url.is_some() && lists && !own_models && ours
}

/// The providers to discover for running turns: configured discoverable
/// ones, and built-in local servers the agents' models name. With `every`
/// (`pincer models list --local`), every discoverable local provider.
pub fn providers_to_discover(config: &Config, catalog: &Catalog<'_>, every: bool) -> Vec<String> {
    let named: Vec<String> = crate::selection::named_providers(config);
    catalog
        .providers()
        .filter(|p| is_discoverable(catalog, &p.id))
        .filter(|p| {
            let configured = config.models.providers.iter().any(|c| c.id.value == p.id);
            let builtin_local = LOCAL_SERVERS.contains(&p.id.as_str());
            if every {
                p.local && (configured || builtin_local)
            } else {
                configured || (builtin_local && named.contains(&p.id))
            }
        })
        .map(|p| p.id.clone())
        .collect()
}

/// Whether an id looks like a reasoning model (when the server does not
/// say): OpenClaw's rule.
fn looks_reasoning(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    ["r1", "reasoning", "think", "reason"]
        .iter()
        .any(|w| id.contains(w))
}

/// The catalog row for a discovered model.
fn row(provider: &str, m: &DiscoveredModel) -> ModelConfig {
    let path = format!("models.providers.{provider}.models");
    let mut compat = pincer_config::Compat::default();
    if m.tools == Some(false) {
        compat.supports_tools = Some(false);
    }
    // What the server did not say is left to the catalog (a built-in row of
    // the same id) or the defaults.
    ModelConfig {
        id: Spanned::new(m.id.clone(), path, None),
        reasoning: m
            .reasoning
            .or_else(|| looks_reasoning(&m.id).then_some(true)),
        input: m
            .vision
            .then(|| vec!["text".to_string(), "image".to_string()]),
        context_window: m.context_window,
        context_tokens: m.context_tokens,
        compat,
        discovered: true,
        ..ModelConfig::default()
    }
}

/// Joins what the servers listed to the config's providers, as rows marked
/// discovered (a provider the config does not name gets an entry of its
/// own, so a built-in server's models are there too).
pub fn apply(models: &mut ModelsConfig, found: &[Discovery]) {
    for d in found.iter().filter(|d| !d.models.is_empty()) {
        let i = match models
            .providers
            .iter()
            .position(|p| p.id.value == d.provider)
        {
            Some(i) => i,
            None => {
                models.providers.push(ProviderConfig::new(
                    Spanned::new(d.provider.clone(), "models.providers", None),
                    None,
                ));
                models.providers.len() - 1
            }
        };
        let rows = models.providers[i].models.get_or_insert_with(Vec::new);
        // The config's own rows stay; a fresh list replaces the last one.
        rows.retain(|r| !r.discovered);
        for m in d.models.iter().take(MAX_DISCOVERED) {
            if rows.iter().any(|r| r.id.value == m.id) {
                continue;
            }
            rows.push(row(&d.provider, m));
        }
    }
}
