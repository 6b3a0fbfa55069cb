//! `pincer tools list`: what an agent may use with its primary model, and
//! which rule allowed or denied each tool.

use std::process::ExitCode;

use anyhow::Result;
use pincer_catalog::{Catalog, turn_candidates};
use pincer_config::{Env, Loaded};
use pincer_tools::exec::{Approvals, ExecSettings, sandbox};
use pincer_tools::policy;
use serde_json::json;

use crate::cli::ToolsArgs;

pub fn list(loaded: &Loaded, env: &Env, args: &ToolsArgs) -> Result<ExitCode> {
    let config = &loaded.config;
    let agent = super::models::pick_agent(loaded, args.agent.as_deref())?;
    let catalog = Catalog::new(&config.models);
    let first = turn_candidates(&catalog, &agent, None)
        .ok()
        .and_then(|(specs, _)| specs.into_iter().next());
    let model = first
        .as_ref()
        .map_or_else(|| agent.primary.clone(), |s| s.reference.clone());
    let window = first.as_ref().map(|s| s.budget());
    let own = pincer_tools::agent_layer(config, &agent.id);
    // The runtime's rule: below this window only chosen tools are offered.
    let small = window
        .filter(|w| !policy::offered_on(*w, &config.tools, &own))
        .map(|w| {
            format!(
                "{model}'s window ({w} tokens) is below {}: no tools are offered unless the config chooses them (tools.profile, allow or alsoAllow)",
                policy::TOOLS_MIN_WINDOW
            )
        });
    let p = policy::resolve(&config.tools, Some(&own), &model);
    // The host's exec-approvals.json can only tighten what the config says.
    let host = env
        .state_dir()
        .map(|d| Approvals::new(&d).for_agent(&agent.id))
        .unwrap_or_default();
    let exec = ExecSettings::from_config(&own.over(&config.tools).exec).tightened(&host);
    let (security, ask) = (exec.security.as_str(), exec.ask.as_str());
    let sandboxed = match (exec.sandbox, sandbox()) {
        (false, _) => "off (tools.exec.host: \"gateway\")".to_string(),
        (true, Ok(path)) => format!("bubblewrap ({})", path.display()),
        (true, Err(why)) => format!("none: {why}; commands run unsandboxed"),
    };
    if args.json {
        let rows: Vec<_> = p
            .rows
            .iter()
            .map(|r| json!({"tool": r.tool, "allowed": r.allowed, "why": r.why}))
            .collect();
        let out = json!({
            "agent": agent.id,
            "model": model,
            "tools": rows,
            "warnings": p.warnings,
            "exec": {"security": security, "ask": ask, "sandbox": sandboxed},
            "offered": small.is_none(),
            "note": small,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("agent {} · model {model}", agent.id);
    let width = p.rows.iter().map(|r| r.tool.len()).max().unwrap_or(0);
    for r in &p.rows {
        let mark = if r.allowed { "allowed" } else { "denied " };
        println!("  {:width$}  {mark}  {}", r.tool, r.why);
    }
    println!("exec: security {security}, ask {ask}; sandbox: {sandboxed}");
    if let Some(n) = &small {
        println!("note: {n}");
    }
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
