//! One line of facts per configured model: where it runs, its limits, its
//! keys, its cooldown, and (when probed) what its server says about it.

use std::time::Duration;

use futures_util::future::join_all;
use pincer_catalog::{Catalog, DEFAULT_MODEL, ModelSpec};
use pincer_config::{Api, Env};
use pincer_llm::ServerReport;
use pincer_router::{Cooldowns, Providers, now_ms};
use serde::Serialize;

/// How long each question to a server may take.
pub const PROBE_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    #[serde(rename = "ref")]
    pub reference: String,
    /// `primary`, `fallback#1`, … for the chosen agent.
    pub roles: Vec<String>,
    pub provider: String,
    pub api: Option<String>,
    pub local: bool,
    pub embedded: bool,
    pub base_url: Option<String>,
    pub context_window: u64,
    pub max_tokens: u64,
    pub keys: KeyState,
    pub cooldown: Option<Cooldown>,
    /// The GGUF of an embedded model and whether it is on disk.
    pub file: Option<FileState>,
    /// What the server said, when probed.
    pub server: Option<ServerReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum KeyState {
    /// How many keys, by name (never the secrets).
    Present {
        names: Vec<String>,
    },
    /// No key; any of these variables would do.
    Missing {
        env: Vec<String>,
    },
    NotNeeded,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cooldown {
    pub reason: String,
    pub until_ms: u64,
    pub seconds_left: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    pub path: Option<String>,
    pub present: bool,
    /// The default model is fetched on first use.
    pub fetched_on_first_use: bool,
}

/// The status of every model `refs` names, probing servers when `probe`.
pub async fn statuses(
    catalog: &Catalog<'_>,
    providers: &Providers,
    env: &Env,
    agent_roles: &std::collections::BTreeMap<String, Vec<String>>,
    refs: &[String],
    probe: bool,
) -> Vec<ModelStatus> {
    let cooldowns = env
        .state_dir()
        .and_then(|d| Cooldowns::load(&pincer_router::state_path(&d)).ok())
        .unwrap_or_default();
    let specs: Vec<ModelSpec> = refs
        .iter()
        .filter_map(|r| catalog.model(&pincer_catalog::ModelRef::parse(r).ok()?))
        .collect();
    let all = specs.iter().map(|spec| async {
        let mut s = status(catalog, providers, env, &cooldowns, spec);
        s.roles = agent_roles
            .get(&spec.reference)
            .cloned()
            .unwrap_or_default();
        if probe && !s.embedded && !matches!(s.keys, KeyState::Missing { .. }) {
            s.server = providers.probe(catalog, spec, PROBE_LIMIT).await;
        }
        s
    });
    join_all(all).await
}

fn status(
    catalog: &Catalog<'_>,
    providers: &Providers,
    env: &Env,
    cooldowns: &Cooldowns,
    spec: &ModelSpec,
) -> ModelStatus {
    let provider = catalog.provider(&spec.provider);
    let api = spec.api.or(provider.and_then(|p| p.api));
    let embedded = api == Some(Api::Embedded);
    let keys = providers.keys(catalog, spec);
    let keys = if !keys.is_empty() {
        KeyState::Present {
            names: keys.into_iter().map(|k| k.id).collect(),
        }
    } else if spec.local || embedded {
        KeyState::NotNeeded
    } else {
        KeyState::Missing {
            env: provider.map(|p| p.env_keys.clone()).unwrap_or_default(),
        }
    };
    let now = now_ms();
    let cooldown = [spec.provider.as_str(), spec.reference.as_str()]
        .into_iter()
        .filter_map(|k| cooldowns.active(k, now))
        .max_by_key(|(until, _)| *until)
        .map(|(until, reason)| Cooldown {
            reason: reason.to_string(),
            until_ms: until,
            seconds_left: until.saturating_sub(now).div_ceil(1000),
        });
    let file = embedded.then(|| FileState {
        path: spec.path.clone().or_else(|| {
            (spec.reference == DEFAULT_MODEL)
                .then(|| pincer_models::SMOLLM2.path(env))
                .flatten()
                .map(|p| p.display().to_string())
        }),
        present: providers.embedded_present(spec),
        fetched_on_first_use: spec.reference == DEFAULT_MODEL && spec.path.is_none(),
    });
    ModelStatus {
        reference: spec.reference.clone(),
        roles: Vec::new(),
        provider: spec.provider.clone(),
        api: api.map(|a| a.as_str().to_string()),
        local: spec.local,
        embedded,
        base_url: spec
            .base_url
            .clone()
            .or_else(|| provider.and_then(|p| p.base_url.clone())),
        context_window: spec
            .context_tokens
            .map_or(spec.context_window, |t| t.min(spec.context_window)),
        max_tokens: spec.max_tokens,
        keys,
        cooldown,
        file,
        server: None,
    }
}
