//! Which models an agent uses: aliases, primary and fallbacks, allowlists,
//! and turning what a user typed (`Opus`, `claude-opus-4-5`, `anthropic/claude-opus-4-5`) into a model.

use std::collections::BTreeMap;

use pincer_config::{AgentSettings, Config, Location, Spanned, did_you_mean};
use serde::Serialize;

use crate::catalog::{Catalog, DEFAULT_MODEL, ModelSpec, Origin};
use crate::model_ref::ModelRef;

/// The implicit agent's id when the config lists none (as in OpenClaw).
pub const DEFAULT_AGENT_ID: &str = "main";

#[derive(Debug, Clone, Serialize)]
pub struct Alias {
    pub alias: String,
    /// The ref it stands for, as written in the config.
    pub target: String,
    #[serde(skip)]
    pub loc: Option<Location>,
    #[serde(skip)]
    pub path: String,
}

/// Aliases from `agents.defaults.models` (and an agent's own `models`), matched case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Aliases(Vec<Alias>);

impl Aliases {
    pub fn from_settings<'a>(settings: impl IntoIterator<Item = &'a AgentSettings>) -> Aliases {
        let mut out: Vec<Alias> = Vec::new();
        for s in settings {
            for e in &s.models {
                if let Some(a) = &e.alias {
                    // A later definition of the same alias wins, as in OpenClaw.
                    out.retain(|x| !x.alias.eq_ignore_ascii_case(&a.value));
                    out.push(Alias {
                        alias: a.value.clone(),
                        target: e.reference.value.clone(),
                        loc: a.loc.clone(),
                        path: a.path.clone(),
                    });
                }
            }
        }
        Aliases(out)
    }

    pub fn get(&self, name: &str) -> Option<&Alias> {
        let name = name.trim();
        self.0.iter().find(|a| a.alias.eq_ignore_ascii_case(name))
    }

    /// The alias of a ref, for display.
    pub fn of(&self, reference: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|a| a.target == reference)
            .map(|a| a.alias.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Alias> {
        self.0.iter()
    }
}

/// Models a user may switch to (`/model`, `--model`); configured primary
/// and fallbacks are operator intent and are not filtered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "patterns", rename_all = "lowercase")]
pub enum Allowlist {
    Any,
    /// Exact refs, aliases, or `provider/*` prefixes.
    Only(Vec<String>),
}

impl Allowlist {
    pub fn allows(&self, spec: &ModelSpec, aliases: &Aliases) -> bool {
        match self {
            Allowlist::Any => true,
            Allowlist::Only(patterns) => patterns.iter().any(|p| {
                if let Some(prefix) = p.strip_suffix('*') {
                    spec.reference
                        .to_ascii_lowercase()
                        .starts_with(&prefix.to_ascii_lowercase())
                } else if let Some(a) = aliases.get(p) {
                    a.target == spec.reference
                } else {
                    ModelRef::parse(p).is_ok_and(|r| r == spec.model_ref())
                }
            }),
        }
    }
}

/// One agent's model settings after OpenClaw's inheritance rules.
#[derive(Debug, Clone, Serialize)]
pub struct AgentModels {
    pub id: String,
    pub is_default: bool,
    /// The primary as written (a ref or an alias), or the built-in default.
    pub primary: String,
    #[serde(skip)]
    pub primary_origin: Origin,
    pub fallbacks: Vec<String>,
    #[serde(skip)]
    pub fallback_refs: Vec<Spanned<String>>,
    pub allow: Allowlist,
    #[serde(skip)]
    pub aliases: Aliases,
    /// Per-model `params` (`agents.defaults.models[ref].params`, the
    /// agent's own keys over them), by model ref.
    #[serde(skip)]
    pub params: Vec<(String, serde_json::Value)>,
}

impl AgentModels {
    /// The `params` this agent gives `spec`: its models-map entry, written
    /// as `provider/model`, as the bare model id, or as its alias.
    pub fn params_for(&self, spec: &ModelSpec) -> Option<&serde_json::Value> {
        let alias = self.aliases.of(&spec.reference);
        let names = |key: &str| {
            key.eq_ignore_ascii_case(&spec.reference)
                || key.eq_ignore_ascii_case(&spec.id)
                || alias.is_some_and(|a| a.eq_ignore_ascii_case(key))
        };
        // The full ref wins over the other spellings.
        self.params
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(&spec.reference))
            .or_else(|| self.params.iter().find(|(r, _)| names(r)))
            .map(|(_, p)| p)
    }
}

/// Model params of `settings` in order, later keys over earlier ones.
fn model_params<'a>(
    settings: impl IntoIterator<Item = &'a AgentSettings>,
) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    for s in settings {
        for m in &s.models {
            let Some(serde_json::Value::Object(p)) = &m.params else {
                continue;
            };
            let r = &m.reference.value;
            match out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(r)) {
                Some((_, serde_json::Value::Object(mine))) => {
                    for (k, v) in p {
                        mine.insert(k.clone(), v.clone());
                    }
                }
                _ => out.push((r.clone(), serde_json::Value::Object(p.clone()))),
            }
        }
    }
    out
}

/// Every agent: the implicit `main` when the config lists none.
pub fn agents(config: &Config) -> Vec<AgentModels> {
    let d = &config.agents.defaults;
    let default_primary = d.model.as_ref().and_then(|m| m.primary.clone());
    let default_fallbacks = d
        .model
        .as_ref()
        .and_then(|m| m.fallbacks.clone())
        .unwrap_or_default();
    let primary_of = |p: Option<Spanned<String>>| match p {
        Some(s) => (
            s.value.clone(),
            Origin::Config {
                at: s.loc.as_ref().map(ToString::to_string),
            },
        ),
        None => (DEFAULT_MODEL.to_string(), Origin::Default),
    };
    let entries = &config.agents.entries;
    if entries.is_empty() {
        let (primary, primary_origin) = primary_of(default_primary);
        return vec![AgentModels {
            id: DEFAULT_AGENT_ID.into(),
            is_default: true,
            primary,
            primary_origin,
            fallbacks: default_fallbacks.iter().map(|s| s.value.clone()).collect(),
            fallback_refs: default_fallbacks,
            allow: allowlist(d, None),
            aliases: Aliases::from_settings([d]),
            params: model_params([d]),
        }];
    }
    let default_idx = entries.iter().position(|e| e.default).unwrap_or(0);
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // An agent whose own model has no `fallbacks` is strict; one with only
            // `fallbacks` keeps the inherited primary; no `model` inherits both.
            let (primary, fallbacks) = match &e.settings.model {
                None => (default_primary.clone(), default_fallbacks.clone()),
                Some(m) => (
                    m.primary.clone().or_else(|| default_primary.clone()),
                    m.fallbacks.clone().unwrap_or_default(),
                ),
            };
            let (primary, primary_origin) = primary_of(primary);
            AgentModels {
                id: e.id.value.clone(),
                is_default: i == default_idx,
                primary,
                primary_origin,
                fallbacks: fallbacks.iter().map(|s| s.value.clone()).collect(),
                fallback_refs: fallbacks,
                allow: allowlist(d, Some(&e.settings)),
                aliases: Aliases::from_settings([d, &e.settings]),
                params: model_params([d, &e.settings]),
            }
        })
        .collect()
}

fn allowlist(defaults: &AgentSettings, agent: Option<&AgentSettings>) -> Allowlist {
    let explicit = agent
        .and_then(|a| a.allow.as_ref())
        .or(defaults.allow.as_ref());
    if let Some(list) = explicit {
        return if list.is_empty() {
            Allowlist::Any
        } else {
            Allowlist::Only(list.iter().map(|s| s.value.clone()).collect())
        };
    }
    // Legacy: the keys of a non-empty `models` map are the allowlist.
    let keys: Vec<String> = [Some(defaults), agent]
        .into_iter()
        .flatten()
        .flat_map(|s| s.models.iter().map(|m| m.reference.value.clone()))
        .collect();
    if keys.is_empty() {
        Allowlist::Any
    } else {
        Allowlist::Only(keys)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown provider {provider:?}{}", hint(suggestion))]
    UnknownProvider {
        provider: String,
        suggestion: Option<String>,
    },
    #[error("provider {provider:?} has no model {model:?}{}", hint(suggestion))]
    UnknownModel {
        provider: String,
        model: String,
        suggestion: Option<String>,
        /// False when the provider is a built-in catalog one: the model may
        /// simply be newer than the catalog.
        exhaustive: bool,
    },
    #[error(
        "{input:?} is offered by several providers ({}); write it as provider/model",
        list(candidates)
    )]
    Ambiguous {
        input: String,
        candidates: Vec<String>,
    },
    #[error("no model or alias named {input:?}{}", hint(suggestion))]
    NotFound {
        input: String,
        suggestion: Option<String>,
    },
}

fn list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

fn hint(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub input: String,
    /// The alias the input matched, if any.
    pub alias: Option<String>,
    pub spec: ModelSpec,
}

/// Role of each model ref for one agent: `primary`, `fallback#1`, …
pub fn roles(catalog: &Catalog<'_>, agent: &AgentModels) -> BTreeMap<String, Vec<String>> {
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |input: &str, role: String| {
        if let Ok(r) = resolve(catalog, &agent.aliases, input) {
            roles.entry(r.spec.reference).or_default().push(role);
        }
    };
    add(&agent.primary, "primary".into());
    for (i, f) in agent.fallbacks.iter().enumerate() {
        add(f, format!("fallback#{}", i + 1));
    }
    roles
}

/// Refs the config names anywhere: provider rows, agents' models maps, chains, allowlists.
pub fn configured_refs(config: &Config, catalog: &Catalog<'_>) -> Vec<String> {
    let mut refs = Vec::new();
    for p in &config.models.providers {
        for m in p.models.iter().flatten() {
            refs.push(format!("{}/{}", p.id.value, m.id.value));
        }
    }
    for (agent, input) in named_models(config) {
        if let Ok(r) = resolve(catalog, &agent.aliases, &input) {
            refs.push(r.spec.reference);
        }
    }
    let mut seen = std::collections::HashSet::new();
    refs.retain(|r| seen.insert(r.clone()));
    refs
}

/// What each agent names as a model (chains, models maps, allowlists), as
/// written.
fn named_models(config: &Config) -> Vec<(AgentModels, String)> {
    let mut out = Vec::new();
    for agent in agents(config) {
        let settings = std::iter::once(&config.agents.defaults)
            .chain(config.agents.entries.iter().map(|e| &e.settings));
        let named: Vec<String> = std::iter::once(agent.primary.clone())
            .chain(agent.fallbacks.iter().cloned())
            .chain(settings.flat_map(|s| s.models.iter().map(|m| m.reference.value.clone())))
            .chain(match &agent.allow {
                Allowlist::Only(list) => list.clone(),
                Allowlist::Any => Vec::new(),
            })
            .collect();
        for input in named {
            out.push((agent.clone(), input));
        }
    }
    out
}

/// The providers the agents' models name (through aliases too), whether or
/// not the catalog lists those models yet.
pub fn named_providers(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (agent, input) in named_models(config) {
        let target = agent
            .aliases
            .get(&input)
            .map_or(input.as_str(), |a| a.target.as_str());
        if let Ok(r) = ModelRef::parse(target)
            && !out.contains(&r.provider)
        {
            out.push(r.provider);
        }
    }
    out
}

/// Chain entries that do not resolve, with the reason.
pub type Skipped = Vec<(String, ResolveError)>;

/// Why a turn has no models to try.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error("the model {input:?} does not exist: {error}")]
    UnknownModel { input: String, error: ResolveError },
    #[error("the model {model} is not allowed for agent {agent}")]
    NotAllowed { model: String, agent: String },
    #[error("agent {agent} has no usable model")]
    NoUsableModel { agent: String },
}

/// The models one turn tries, in order, for every surface (the gateway,
/// `pincer chat`, later the channels): a model the caller picked (`--model`,
/// the request's `model`, `/model`) alone and only if the agent's allowlist
/// lets it through, no fallback (as in OpenClaw); otherwise the agent's
/// primary and fallbacks. Entries of the chain that do not resolve come back
/// beside it, with the reason.
pub fn turn_candidates(
    catalog: &Catalog<'_>,
    agent: &AgentModels,
    picked: Option<&str>,
) -> Result<(Vec<ModelSpec>, Skipped), ChainError> {
    if let Some(m) = picked {
        let r = resolve(catalog, &agent.aliases, m).map_err(|error| ChainError::UnknownModel {
            input: m.to_string(),
            error,
        })?;
        if !agent.allow.allows(&r.spec, &agent.aliases) {
            return Err(ChainError::NotAllowed {
                model: r.spec.reference,
                agent: agent.id.clone(),
            });
        }
        let mut spec = r.spec;
        spec.params = agent.params_for(&spec).cloned();
        return Ok((vec![spec], Vec::new()));
    }
    let (mut specs, bad) = candidate_chain(catalog, agent);
    for s in &mut specs {
        s.params = agent.params_for(s).cloned();
    }
    if specs.is_empty() {
        return Err(ChainError::NoUsableModel {
            agent: agent.id.clone(),
        });
    }
    Ok((specs, bad))
}

/// The agent's primary then its fallbacks, as models, without repeats;
/// entries that do not resolve come back beside them, with the reason.
pub fn candidate_chain(catalog: &Catalog<'_>, agent: &AgentModels) -> (Vec<ModelSpec>, Skipped) {
    let (mut specs, mut bad) = (Vec::<ModelSpec>::new(), Vec::new());
    for input in std::iter::once(&agent.primary).chain(&agent.fallbacks) {
        match resolve(catalog, &agent.aliases, input) {
            Ok(r) if specs.iter().any(|s| s.reference == r.spec.reference) => {}
            Ok(r) => specs.push(r.spec),
            Err(e) => bad.push((input.clone(), e)),
        }
    }
    (specs, bad)
}

/// Turn a ref, alias or bare model id into a model of the catalog.
pub fn resolve(
    catalog: &Catalog<'_>,
    aliases: &Aliases,
    input: &str,
) -> Result<Resolved, ResolveError> {
    let input = input.trim();
    let (alias, target) = match aliases.get(input) {
        Some(a) => (Some(a.alias.clone()), a.target.as_str()),
        None => (None, input),
    };
    let r = match ModelRef::parse(target) {
        Ok(r) => r,
        Err(_) => bare_id(catalog, aliases, target)?,
    };
    let Some(provider) = catalog.provider(&r.provider) else {
        let ids: Vec<&str> = catalog.providers().map(|p| p.id.as_str()).collect();
        return Err(ResolveError::UnknownProvider {
            suggestion: did_you_mean(&r.provider, ids).map(str::to_string),
            provider: r.provider,
        });
    };
    match catalog.model(&r) {
        Some(spec) => Ok(Resolved {
            input: input.to_string(),
            alias,
            spec,
        }),
        None => {
            let models = catalog.models_of(&provider.id);
            let suggestion =
                did_you_mean(&r.model, models.iter().map(|m| m.id.as_str())).map(str::to_string);
            Err(ResolveError::UnknownModel {
                exhaustive: catalog.is_exhaustive(&r.provider),
                provider: r.provider,
                model: r.model,
                suggestion,
            })
        }
    }
}

/// A bare model id: a unique configured provider first, then a unique catalog match.
fn bare_id(catalog: &Catalog<'_>, aliases: &Aliases, id: &str) -> Result<ModelRef, ResolveError> {
    let configured = catalog.configured_providers_with_model(id);
    if configured.len() == 1 {
        return Ok(configured[0].clone());
    }
    let all = if configured.is_empty() {
        catalog.providers_with_model(id)
    } else {
        configured
    };
    match all.len() {
        1 => Ok(all[0].clone()),
        0 => Err(ResolveError::NotFound {
            input: id.to_string(),
            suggestion: did_you_mean(id, aliases.iter().map(|a| a.alias.as_str()))
                .map(str::to_string),
        }),
        _ => Err(ResolveError::Ambiguous {
            input: id.to_string(),
            candidates: all.iter().map(ToString::to_string).collect(),
        }),
    }
}
