//! What is wrong and how to fix it.
//!
//! - `status`: facts per configured model (where it runs, limits, keys,
//!   cooldown) and, when probed, what its server says (reachable, listed,
//!   loaded or cold, the context it really runs with);
//! - `checks`: those facts, the config and the agent's chain turned into
//!   findings with a fix each (`pincer doctor`).

mod checks;
mod status;

use std::collections::BTreeMap;

use pincer_catalog::{AgentModels, Catalog, candidate_chain, configured_refs, roles};
use pincer_config::{Diagnostic, Env, Loaded, Mode};
use pincer_router::Providers;
use serde::Serialize;

pub use checks::{Finding, Severity};
pub use status::{Cooldown, FileState, ModelStatus, PROBE_LIMIT, statuses};

/// Every model the config names, the chosen agent's chain first.
pub fn models_to_check(loaded: &Loaded, catalog: &Catalog<'_>, agent: &AgentModels) -> Vec<String> {
    let mut refs = chain(catalog, agent);
    refs.extend(configured_refs(&loaded.config, catalog));
    let mut seen = std::collections::HashSet::new();
    refs.retain(|r| seen.insert(r.clone()));
    refs
}

/// The agent's primary and fallbacks, as model refs, in order.
fn chain(catalog: &Catalog<'_>, agent: &AgentModels) -> Vec<String> {
    candidate_chain(catalog, agent)
        .0
        .into_iter()
        .map(|s| s.reference)
        .collect()
}

/// The doctor's whole answer.
#[derive(Debug, Serialize)]
pub struct Report {
    /// No finding is an error.
    pub ok: bool,
    pub config: Option<String>,
    pub agent: String,
    pub findings: Vec<Finding>,
    pub models: Vec<ModelStatus>,
}

/// Runs every check: the config's own problems, each model (probing its
/// server), the agent's chain and the gateway's exposure.
pub async fn diagnose(
    loaded: &Loaded,
    diagnostics: &[Diagnostic],
    env: &Env,
    providers: &Providers,
    agent: &AgentModels,
    discovered: &[pincer_catalog::discovery::Discovery],
) -> Report {
    let catalog = Catalog::new(&loaded.config.models);
    let refs = models_to_check(loaded, &catalog, agent);
    let agent_roles: BTreeMap<String, Vec<String>> = roles(&catalog, agent);
    let models = statuses(
        &catalog,
        providers,
        env,
        &agent.id,
        &agent_roles,
        &refs,
        true,
    )
    .await;

    let mut findings: Vec<Finding> = diagnostics.iter().map(config_finding).collect();
    for m in &models {
        findings.extend(checks::model_findings(m));
    }
    let chain_refs = chain(&catalog, agent);
    let chain: Vec<&ModelStatus> = chain_refs
        .iter()
        .filter_map(|r| models.iter().find(|m| &m.reference == r))
        .collect();
    findings.extend(checks::chain_findings(
        agent,
        &chain,
        loaded.config.models.mode == Mode::Replace,
    ));
    findings.extend(checks::gateway_findings(&loaded.config, env));
    findings.extend(checks::tool_findings(&loaded.config));
    findings.extend(checks::channel_findings(&loaded.config, env));
    findings.extend(checks::discovery_findings(discovered));
    findings.sort_by_key(|f| f.severity);
    Report {
        ok: !findings.iter().any(|f| f.severity == Severity::Error),
        config: loaded.path.as_ref().map(|p| p.display().to_string()),
        agent: agent.id.clone(),
        findings,
        models,
    }
}

fn config_finding(d: &Diagnostic) -> Finding {
    Finding {
        severity: if d.is_error() {
            Severity::Error
        } else {
            Severity::Warning
        },
        check: "config",
        subject: d.path.clone(),
        message: d.to_string(),
        fix: "edit the config at the place named; `pincer config validate` lists every problem"
            .into(),
    }
}
