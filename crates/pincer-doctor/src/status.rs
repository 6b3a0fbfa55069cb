//! One line of facts per configured model: where it runs, its limits, its
//! keys, its cooldown, and (when probed) what its server says about it.

use std::time::Duration;

use futures_util::future::join_all;
use pincer_catalog::{Catalog, ModelSpec};
use pincer_config::Env;
use pincer_llm::ServerReport;
use pincer_router::{Cooldowns, Gguf, KeyStatus, Providers, now_ms};
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
    pub api: String,
    pub local: bool,
    pub embedded: bool,
    pub base_url: Option<String>,
    pub context_window: u64,
    pub max_tokens: u64,
    /// Whether the model calls tools, when known (`compat.supportsTools`,
    /// else the catalog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<bool>,
    pub keys: KeyStatus,
    /// What is cooling down for this model: its server (the provider), the
    /// model itself, and each of its keys.
    pub cooldowns: Vec<Cooldown>,
    /// The GGUF of an embedded model and whether it is on disk.
    pub file: Option<FileState>,
    /// What the server said, when probed.
    pub server: Option<ServerReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cooldown {
    /// `provider`, `model` or `key`.
    pub scope: &'static str,
    /// The provider id, the model ref, or the key's id (never the key).
    pub name: String,
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

/// The status of every model `refs` names for `agent` (whose keys count),
/// probing servers when `probe`.
pub async fn statuses(
    catalog: &Catalog<'_>,
    providers: &Providers,
    env: &Env,
    agent: &str,
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
        let mut s = status(catalog, providers, agent, &cooldowns, spec);
        s.roles = agent_roles
            .get(&spec.reference)
            .cloned()
            .unwrap_or_default();
        if probe && !s.embedded && !matches!(s.keys, KeyStatus::Missing { .. }) {
            s.server = providers.probe(catalog, spec, agent, PROBE_LIMIT).await;
        }
        s
    });
    join_all(all).await
}

fn status(
    catalog: &Catalog<'_>,
    providers: &Providers,
    agent: &str,
    cooldowns: &Cooldowns,
    spec: &ModelSpec,
) -> ModelStatus {
    let embedded = spec.is_embedded();
    let now = now_ms();
    let keys = providers.keys(catalog, spec, agent);
    let scopes = [
        ("provider", spec.provider.clone(), spec.provider.clone()),
        ("model", spec.reference.clone(), spec.reference.clone()),
    ]
    .into_iter()
    .chain(
        keys.iter()
            .map(|k| ("key", k.id.clone(), format!("key:{}", k.id))),
    );
    let cooldowns = scopes
        .filter_map(|(scope, name, entry)| {
            let (until, reason) = cooldowns.active(&entry, now)?;
            Some(Cooldown {
                scope,
                name,
                reason: reason.to_string(),
                until_ms: until,
                seconds_left: until.saturating_sub(now).div_ceil(1000),
            })
        })
        .collect();
    let file = embedded.then(|| {
        let gguf = providers.gguf(spec);
        FileState {
            path: match &gguf {
                Gguf::Unresolvable(p) => Some(p.clone()),
                g => g.path().map(|p| p.display().to_string()),
            },
            present: gguf.path().is_some_and(|p| p.is_file()),
            fetched_on_first_use: matches!(gguf, Gguf::Default(_)),
        }
    });
    ModelStatus {
        reference: spec.reference.clone(),
        roles: Vec::new(),
        provider: spec.provider.clone(),
        api: spec.api.as_str().to_string(),
        local: spec.local,
        embedded,
        base_url: spec.base_url.clone(),
        context_window: spec.budget(),
        max_tokens: spec.max_tokens,
        tool_call: spec.tool_call,
        keys: providers.key_status(catalog, spec, agent),
        cooldowns,
        file,
        server: None,
    }
}
