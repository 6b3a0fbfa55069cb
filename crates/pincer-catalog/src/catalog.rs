//! The catalog Pincer routes with: built-in providers and models (merge mode)
//! overlaid field by field with the user's `models.providers`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use pincer_config::{
    Api, ApiKey, Compat, Location, Mode, ModelConfig, ModelsConfig, Patience, ProviderConfig,
    SameModelRetry,
};
use secrecy::SecretString;
use serde::Serialize;

use crate::builtin::{Builtin, BuiltinModel, BuiltinProvider, builtin};
use crate::model_ref::ModelRef;

/// Budget used for a model whose context window nobody stated (OpenClaw's default).
pub const DEFAULT_CONTEXT_WINDOW: u64 = 200_000;
/// Output cap for a model whose limit nobody stated (OpenClaw's default).
pub const DEFAULT_MAX_TOKENS: u64 = 8192;
/// Pincer's in-process engine; always available, in `replace` mode too.
pub const EMBEDDED_PROVIDER: &str = "embedded";
/// The model used when the config names no primary.
pub const DEFAULT_MODEL: &str = "embedded/smollm2-135m-instruct";

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum Origin {
    /// The built-in models.dev catalog.
    Builtin,
    /// The user's config, at this place.
    Config { at: Option<String> },
    /// Nobody said; Pincer's (OpenClaw's) default.
    Default,
    /// The model's server listed it (model discovery).
    Discovered,
}

impl Origin {
    fn config(loc: &Option<Location>) -> Origin {
        Origin::Config {
            at: loc.as_ref().map(ToString::to_string),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in catalog"),
            Origin::Config { at: Some(at) } => write!(f, "config ({at})"),
            Origin::Config { at: None } => f.write_str("config"),
            Origin::Default => f.write_str("default"),
            Origin::Discovered => f.write_str("the server (discovered)"),
        }
    }
}

pub type Origins = BTreeMap<&'static str, Origin>;

#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub api: Option<Api>,
    pub base_url: Option<String>,
    /// Environment variables that may hold this provider's key.
    pub env_keys: Vec<String>,
    pub api_key: Option<ApiKey>,
    pub headers: Vec<(String, SecretString)>,
    pub max_tokens: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub patience: Patience,
    /// The provider's `compat` flags.
    pub compat: Compat,
    pub local: bool,
    pub builtin: bool,
    pub configured: bool,
    /// The provider's documentation page (built-in providers).
    pub doc: Option<String>,
    pub origins: Origins,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// Everything known about one model, and where each field came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    #[serde(rename = "ref")]
    pub reference: String,
    pub provider: String,
    pub id: String,
    pub name: String,
    /// The dialect to speak: the model's, else its provider's, else
    /// `openai-completions` (resolved once, here).
    pub api: Api,
    /// The model's, else its provider's.
    pub base_url: Option<String>,
    pub context_window: u64,
    /// Effective input cap for budgeting, when set below the native window.
    pub context_tokens: Option<u64>,
    pub max_tokens: u64,
    pub cost: Cost,
    /// Prices above a context size: (min context, cost).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cost_tiers: Vec<(u64, Cost)>,
    pub reasoning: bool,
    /// None when nobody said (models known only from the config).
    pub tool_call: Option<bool>,
    /// What the model's server takes (`compat`, the model's over the
    /// provider's), resolved once.
    #[serde(skip_serializing_if = "is_default")]
    pub compat: Compat,
    /// The agent's `params` for this model (`agents.defaults.models[ref]`:
    /// OpenRouter's `provider` routing, `temperature`, `extra_body`), set
    /// by `turn_candidates` for the agent whose turn it is.
    #[serde(skip)]
    pub params: Option<serde_json::Value>,
    pub input: Vec<String>,
    pub output: Vec<String>,
    pub local: bool,
    /// The provider's `timeoutSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The provider's same-model retry (its `params.retry`, else the default).
    #[serde(skip)]
    pub retry: SameModelRetry,
    /// The provider's `params.firstTokenTimeoutSeconds`.
    #[serde(skip)]
    pub first_token_seconds: Option<u64>,
    pub open_weights: bool,
    /// Listed by its server (model discovery), not by the config or catalog.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub discovered: bool,
    /// GGUF file, for the embedded engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub origins: Origins,
}

impl ModelSpec {
    pub fn model_ref(&self) -> ModelRef {
        ModelRef::new(&self.provider, &self.id)
    }

    /// The tokens prompt + output may take: `contextTokens` when set (never
    /// above the window), else `contextWindow`. Budgets, preflight checks,
    /// failover by window size and the engine's context all use this.
    pub fn budget(&self) -> u64 {
        self.context_tokens.unwrap_or(self.context_window)
    }

    /// Runs in-process on the embedded engine.
    pub fn is_embedded(&self) -> bool {
        self.api == Api::Embedded
    }

    /// The built-in default model, fetched on first use (no `path` of its own).
    pub fn is_default_model(&self) -> bool {
        self.reference == DEFAULT_MODEL && self.path.is_none()
    }
}

/// Built-in catalog + config, by the config's `models.mode`.
pub struct Catalog<'c> {
    mode: Mode,
    builtin: &'static Builtin,
    config: &'c ModelsConfig,
    providers: BTreeMap<String, Provider>,
}

impl<'c> Catalog<'c> {
    pub fn new(config: &'c ModelsConfig) -> Catalog<'c> {
        let builtin = builtin();
        let mut providers = BTreeMap::new();
        for b in &builtin.data.providers {
            if config.mode == Mode::Merge || b.id == EMBEDDED_PROVIDER {
                let c = config.providers.iter().find(|c| c.id.value == b.id);
                providers.insert(b.id.to_string(), merge_provider(Some(b), c));
            }
        }
        for c in &config.providers {
            let b = builtin.provider(&c.id.value);
            providers.insert(c.id.value.clone(), merge_provider(b, Some(c)));
        }
        Catalog {
            mode: config.mode,
            builtin,
            config,
            providers,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Where the built-in catalog came from (models.dev snapshot).
    pub fn source(&self) -> String {
        format!(
            "{} ({})",
            self.builtin.data.source, self.builtin.data.generated_at
        )
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.get(id)
    }

    fn builtin_rows(&self, provider: &str) -> Option<&'static BuiltinProvider<'static>> {
        match self.mode {
            Mode::Merge => self.builtin.provider(provider),
            Mode::Replace if provider == EMBEDDED_PROVIDER => self.builtin.provider(provider),
            Mode::Replace => None,
        }
    }

    fn config_provider(&self, provider: &str) -> Option<&'c ProviderConfig> {
        self.config
            .providers
            .iter()
            .find(|c| c.id.value == provider)
    }

    /// Whether the provider's model list is complete: true for providers only
    /// the config defines, and for every provider in `replace` mode; false
    /// for a provider whose models come from its server (discovery), which
    /// may list more by the time a turn runs.
    pub fn is_exhaustive(&self, provider: &str) -> bool {
        self.builtin_rows(provider).is_none() && !crate::discovery::is_discoverable(self, provider)
    }

    /// The config's rows for a provider (discovered ones included).
    pub fn config_provider_models(&self, provider: &str) -> Option<&'c [ModelConfig]> {
        self.config_provider(provider)
            .and_then(|c| c.models.as_deref())
    }

    /// A model the catalog does not list, as it would be called on
    /// `provider` with the provider's settings and default limits.
    pub fn unlisted(&self, provider: &str, id: &str) -> Option<ModelSpec> {
        let p = self.providers.get(provider)?;
        Some(merge_model(p, id, None, None))
    }

    pub fn model(&self, r: &ModelRef) -> Option<ModelSpec> {
        let p = self.providers.get(&r.provider)?;
        let rows = self
            .config_provider(&r.provider)
            .and_then(|c| c.models.as_deref())
            .unwrap_or_default();
        // Ollama lists `llama3:latest` for the model users (and Ollama
        // itself) call `llama3`.
        let latest = format!("{}:latest", r.model);
        let c = rows
            .iter()
            .find(|m| m.id.value == r.model)
            .or_else(|| rows.iter().find(|m| m.discovered && m.id.value == latest));
        let b = self
            .builtin_rows(&r.provider)
            .and_then(|bp| bp.model(&r.model));
        if c.is_none() && b.is_none() {
            return None;
        }
        Some(merge_model(p, &r.model, b, c))
    }

    /// Every model of one provider: the config's rows first, then built-in rows.
    pub fn models_of(&self, provider: &str) -> Vec<ModelSpec> {
        let Some(p) = self.providers.get(provider) else {
            return Vec::new();
        };
        let configured: &[ModelConfig] = self
            .config_provider(provider)
            .and_then(|c| c.models.as_deref())
            .unwrap_or_default();
        let rows = self.builtin_rows(provider);
        let mut out: Vec<ModelSpec> = configured
            .iter()
            .map(|c| {
                merge_model(
                    p,
                    &c.id.value,
                    rows.and_then(|b| b.model(&c.id.value)),
                    Some(c),
                )
            })
            .collect();
        if let Some(rows) = rows {
            out.extend(
                rows.models
                    .iter()
                    .filter(|b| !configured.iter().any(|c| c.id.value == b.id))
                    .map(|b| merge_model(p, &b.id, Some(b), None)),
            );
        }
        out
    }

    pub fn all_models(&self) -> impl Iterator<Item = ModelSpec> + '_ {
        self.providers.keys().flat_map(|id| self.models_of(id))
    }

    /// Providers that list a model with exactly this id (for bare ids).
    pub fn providers_with_model(&self, model: &str) -> Vec<ModelRef> {
        let mut refs = Vec::new();
        for id in self.providers.keys() {
            let in_config = self
                .config_provider(id)
                .and_then(|c| c.models.as_ref())
                .is_some_and(|ms| ms.iter().any(|m| m.id.value == model));
            let in_builtin = self
                .builtin_rows(id)
                .is_some_and(|b| b.model(model).is_some());
            if in_config || in_builtin {
                refs.push(ModelRef::new(id, model));
            }
        }
        refs
    }

    /// Providers the config defines that list this model id.
    pub fn configured_providers_with_model(&self, model: &str) -> Vec<ModelRef> {
        self.config
            .providers
            .iter()
            .filter(|c| {
                c.models
                    .as_ref()
                    .is_some_and(|ms| ms.iter().any(|m| m.id.value == model))
            })
            .map(|c| ModelRef::new(&c.id.value, model))
            .collect()
    }
}

/// A base URL on this machine or the local network (no key needed, no cost).
pub fn is_local_url(base_url: &str) -> bool {
    let Ok(url) = url::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_local_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_local_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".local")
                || !d.contains('.')
        }
        None => false,
    }
}

fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn merge_provider(b: Option<&BuiltinProvider<'_>>, c: Option<&ProviderConfig>) -> Provider {
    let mut origins = Origins::new();
    let id = c
        .map(|c| c.id.value.clone())
        .or_else(|| b.map(|b| b.id.to_string()))
        .unwrap_or_default();
    let name = b.map(|b| b.name.to_string()).unwrap_or_else(|| id.clone());

    let cfg_api = c.and_then(|c| c.api.as_ref());
    let api = if let Some(a) = cfg_api {
        origins.insert("api", Origin::config(&a.loc));
        Some(a.value)
    } else if let Some(a) = b.and_then(|b| b.api.as_deref()).and_then(Api::parse) {
        origins.insert("api", Origin::Builtin);
        Some(a)
    } else if c.is_some_and(|c| c.base_url.is_some()) {
        // OpenClaw: a custom provider with a baseUrl and no api speaks chat completions.
        origins.insert("api", Origin::Default);
        Some(Api::OpenAiCompletions)
    } else {
        None
    };

    let base_url = if let Some(u) = c.and_then(|c| c.base_url.as_ref()) {
        origins.insert("baseUrl", Origin::config(&u.loc));
        Some(u.value.clone())
    } else if let Some(u) = b.and_then(|b| b.base_url.as_deref()) {
        origins.insert("baseUrl", Origin::Builtin);
        Some(u.to_string())
    } else {
        None
    };

    let env_keys: Vec<String> = b
        .map(|b| b.env.iter().map(|e| e.to_string()).collect())
        .unwrap_or_default();
    let api_key = c.and_then(|c| c.api_key.clone());
    let local = api == Some(Api::Embedded)
        || base_url.as_deref().is_some_and(is_local_url)
        || (base_url.is_none() && b.is_some_and(|b| b.local));
    Provider {
        id,
        name,
        api,
        base_url,
        env_keys,
        api_key,
        headers: c.map(|c| c.headers.clone()).unwrap_or_default(),
        max_tokens: c.and_then(|c| c.max_tokens),
        timeout_seconds: c.and_then(|c| c.timeout_seconds),
        patience: c.map(|c| c.patience).unwrap_or_default(),
        compat: c.map(|c| c.compat.clone()).unwrap_or_default(),
        local,
        builtin: b.is_some(),
        configured: c.is_some(),
        doc: b.and_then(|b| b.doc.as_ref()).map(|d| d.to_string()),
        origins,
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Pick the config's value, else the built-in one, else a default, and say which.
fn pick<T>(
    origins: &mut Origins,
    field: &'static str,
    cfg: Option<T>,
    cfg_origin: &Origin,
    builtin: Option<T>,
    default: T,
) -> T {
    if let Some(v) = cfg {
        origins.insert(field, cfg_origin.clone());
        v
    } else if let Some(v) = builtin {
        origins.insert(field, Origin::Builtin);
        v
    } else {
        origins.insert(field, Origin::Default);
        default
    }
}

fn merge_model(
    p: &Provider,
    id: &str,
    b: Option<&BuiltinModel<'_>>,
    c: Option<&ModelConfig>,
) -> ModelSpec {
    let mut o = Origins::new();
    // A row the server listed (discovery) is not the user's config.
    let loc = match c {
        Some(c) if c.discovered => Origin::Discovered,
        _ => Origin::config(&c.and_then(|c| c.loc.clone())),
    };
    let compat = c.map_or_else(|| p.compat.clone(), |c| c.compat.over(&p.compat));
    let name = pick(
        &mut o,
        "name",
        c.and_then(|c| c.name.clone()),
        &loc,
        b.map(|b| b.name.to_string()),
        id.to_string(),
    );
    // The provider's own api/baseUrl (config) beats a built-in per-model override.
    let provider_cfg_api = p
        .origins
        .get("api")
        .is_some_and(|o| matches!(o, Origin::Config { .. }));
    let model_builtin_api = b.and_then(|b| b.api.as_deref()).and_then(Api::parse);
    let api = match (c.and_then(|c| c.api.as_ref()), model_builtin_api) {
        (Some(a), _) => {
            o.insert("api", Origin::config(&a.loc));
            Some(a.value)
        }
        (None, Some(a)) if !provider_cfg_api => {
            o.insert("api", Origin::Builtin);
            Some(a)
        }
        _ => {
            if let Some(origin) = p.origins.get("api") {
                o.insert("api", origin.clone());
            }
            p.api
        }
    };
    let api = api.unwrap_or_else(|| {
        // Nobody named a dialect: OpenAI's chat completions, as OpenClaw assumes.
        o.insert("api", Origin::Default);
        Api::OpenAiCompletions
    });
    let provider_cfg_url = p
        .origins
        .get("baseUrl")
        .is_some_and(|o| matches!(o, Origin::Config { .. }));
    let base_url = match (
        c.and_then(|c| c.base_url.as_ref()),
        b.and_then(|b| b.base_url.as_deref()),
    ) {
        (Some(u), _) => {
            o.insert("baseUrl", Origin::config(&u.loc));
            Some(u.value.clone())
        }
        (None, Some(u)) if !provider_cfg_url => {
            o.insert("baseUrl", Origin::Builtin);
            Some(u.to_string())
        }
        _ => {
            if let Some(origin) = p.origins.get("baseUrl") {
                o.insert("baseUrl", origin.clone());
            }
            p.base_url.clone()
        }
    };
    let context_window = pick(
        &mut o,
        "contextWindow",
        c.and_then(|c| c.context_window),
        &loc,
        b.map(|b| b.ctx).filter(|&n| n > 0),
        DEFAULT_CONTEXT_WINDOW,
    );
    let default_max = p
        .max_tokens
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .min(context_window);
    let max_tokens = pick(
        &mut o,
        "maxTokens",
        c.and_then(|c| c.max_tokens),
        &loc,
        b.map(|b| b.out).filter(|&n| n > 0),
        default_max,
    )
    .min(context_window);
    let cc = c.map(|c| c.cost).unwrap_or_default();
    let bc = b.map(|b| b.cost);
    let cost = Cost {
        input: pick(&mut o, "cost.input", cc.input, &loc, bc.map(|x| x[0]), 0.0),
        output: pick(
            &mut o,
            "cost.output",
            cc.output,
            &loc,
            bc.map(|x| x[1]),
            0.0,
        ),
        cache_read: pick(
            &mut o,
            "cost.cacheRead",
            cc.cache_read,
            &loc,
            bc.map(|x| x[2]),
            0.0,
        ),
        cache_write: pick(
            &mut o,
            "cost.cacheWrite",
            cc.cache_write,
            &loc,
            bc.map(|x| x[3]),
            0.0,
        ),
    };
    let reasoning = pick(
        &mut o,
        "reasoning",
        c.and_then(|c| c.reasoning),
        &loc,
        b.map(|b| b.reasoning()),
        false,
    );
    let input = pick(
        &mut o,
        "input",
        c.and_then(|c| c.input.clone()),
        &loc,
        b.map(|b| b.input.iter().map(|s| s.to_string()).collect()),
        vec!["text".to_string()],
    );
    let context_tokens = c
        .and_then(|c| c.context_tokens)
        .map(|n| n.min(context_window));
    if context_tokens.is_some() {
        o.insert("contextTokens", loc.clone());
    }
    let path = c.and_then(|c| c.path.as_ref()).map(|p| p.value.clone());
    if path.is_some() {
        o.insert("path", loc.clone());
    }
    ModelSpec {
        reference: format!("{}/{id}", p.id),
        provider: p.id.clone(),
        id: id.to_string(),
        name,
        api,
        base_url,
        context_window,
        context_tokens,
        max_tokens,
        cost,
        cost_tiers: b
            .map(|b| {
                b.tiers
                    .iter()
                    .map(|t| {
                        let cost = Cost {
                            input: t[1],
                            output: t[2],
                            cache_read: t[3],
                            cache_write: t[4],
                        };
                        (t[0] as u64, cost)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        reasoning,
        tool_call: compat.supports_tools.or_else(|| b.map(|b| b.tool_call())),
        compat,
        params: None,
        input,
        output: b
            .map(|b| b.output.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| vec!["text".into()]),
        local: p.local,
        timeout_seconds: p.timeout_seconds,
        retry: p.patience.retry.unwrap_or_default(),
        first_token_seconds: p.patience.first_token_seconds,
        open_weights: b.is_some_and(|b| b.open),
        discovered: c.is_some_and(|c| c.discovered),
        path,
        status: b.and_then(|b| b.status.as_ref()).map(|s| s.to_string()),
        origins: o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls() {
        for u in [
            "http://127.0.0.1:1234/v1",
            "http://localhost:11434",
            "http://192.168.1.20:8000/v1",
            "http://10.0.0.5/v1",
            "http://[::1]:8080/v1",
            "http://gpu-box:8000/v1",
            "http://studio.local:1234/v1",
        ] {
            assert!(is_local_url(u), "{u}");
        }
        for u in [
            "https://api.anthropic.com",
            "https://openrouter.ai/api/v1",
            "not a url",
        ] {
            assert!(!is_local_url(u), "{u}");
        }
    }
}
