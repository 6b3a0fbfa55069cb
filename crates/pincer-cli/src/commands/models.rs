//! `pincer models list|resolve`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use pincer_catalog::discovery::Discovery;
use pincer_catalog::{
    AgentModels, Aliases, Catalog, ModelSpec, agents, configured_refs, resolve as resolve_model,
    roles,
};
use pincer_config::{Env, Loaded};
use pincer_gguf::Silent;
use pincer_router::KeyStatus;
use serde_json::json;

use crate::cli::{ListArgs, ResolveArgs};
use crate::format;

pub(crate) fn pick_agent(loaded: &Loaded, id: Option<&str>) -> Result<AgentModels> {
    let all = agents(&loaded.config);
    match id {
        Some(id) => all
            .into_iter()
            .find(|a| a.id.eq_ignore_ascii_case(id))
            .with_context(|| format!("no agent {id:?} in the config")),
        None => all
            .into_iter()
            .find(|a| a.is_default)
            .context("the config defines no agent"),
    }
}

pub fn list(
    loaded: &Loaded,
    env: &Env,
    args: &ListArgs,
    servers: &[Discovery],
) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let roles = roles(&catalog, &agent);
    if let Some(p) = &args.provider
        && catalog.provider(&p.to_ascii_lowercase()).is_none()
    {
        bail!("unknown provider {p:?}");
    }
    let mut models: Vec<ModelSpec> = if args.configured {
        configured_refs(&loaded.config, &catalog)
            .iter()
            .filter_map(|r| pincer_catalog::ModelRef::parse(r).ok())
            .filter_map(|r| catalog.model(&r))
            .collect()
    } else {
        catalog.all_models().collect()
    };
    models.retain(|m| {
        args.provider
            .as_ref()
            .is_none_or(|p| m.provider == p.to_ascii_lowercase())
            && (!args.local || m.local)
    });
    // The agent's chain first, in order; then the rest as listed.
    let rank = |m: &ModelSpec| {
        roles
            .get(&m.reference)
            .and_then(|r| r.first())
            .map(|r| match r.as_str() {
                "primary" => 0,
                other => other
                    .trim_start_matches("fallback#")
                    .parse::<usize>()
                    .unwrap_or(0),
            })
    };
    models.sort_by_key(|m| rank(m).unwrap_or(usize::MAX));
    // The router's own key rule, so "missing" here is what a turn would miss.
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Silent))?;
    let key = |m: &ModelSpec| providers.key_status(&catalog, m, &agent.id);
    let servers: Vec<&Discovery> = servers
        .iter()
        .filter(|d| {
            args.provider
                .as_ref()
                .is_none_or(|p| d.provider == p.to_ascii_lowercase())
        })
        .collect();

    if args.json {
        let rows: Vec<_> = models
            .iter()
            .map(|m| {
                json!({
                    "ref": m.reference,
                    "alias": agent.aliases.of(&m.reference),
                    "provider": m.provider,
                    "api": m.api,
                    "contextWindow": m.context_window,
                    "maxTokens": m.max_tokens,
                    "cost": m.cost,
                    "local": m.local,
                    "discovered": m.discovered,
                    "key": key(m),
                    "roles": roles.get(&m.reference).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let servers: Vec<_> = servers
            .iter()
            .map(|d| {
                json!({
                    "provider": d.provider,
                    "baseUrl": d.base_url,
                    "server": d.server,
                    "up": d.error.is_none(),
                    "error": d.error,
                    "models": d.models.len(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "agent": agent.id, "models": rows, "servers": servers })
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = format::table(&[
        "MODEL",
        "ALIAS",
        "PROVIDER",
        "API",
        "CTX",
        "MAX OUT",
        "COST IN/OUT /1M",
        "LOCAL",
        "KEY",
        "ROLE",
    ]);
    for m in &models {
        let key = format::key(&key(m));
        t.add_row(vec![
            m.reference.clone(),
            agent.aliases.of(&m.reference).unwrap_or("").to_string(),
            m.provider.clone(),
            m.api.to_string(),
            format::tokens(m.context_window),
            format::tokens(m.max_tokens),
            format::cost(&m.cost),
            match (m.local, m.discovered) {
                (true, true) => "local (discovered)",
                (true, false) => "local",
                (false, true) => "hosted (discovered)",
                (false, false) => "hosted",
            }
            .to_string(),
            key,
            roles
                .get(&m.reference)
                .map(|r| r.join(","))
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    for d in &servers {
        let what = d.server.as_deref().unwrap_or("server");
        match &d.error {
            None => eprintln!(
                "{}: {what} at {} lists {} model(s)",
                d.provider,
                d.base_url,
                d.models.len()
            ),
            Some(e) => eprintln!("{}: down at {} ({e})", d.provider, d.base_url),
        }
    }
    eprintln!(
        "{} model(s); agent {}; catalog: {}",
        models.len(),
        agent.id,
        catalog.source()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn resolve(loaded: &Loaded, env: &Env, args: &ResolveArgs) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let resolved = resolve_model(&catalog, &agent.aliases, &args.model)?;
    let spec = &resolved.spec;
    let role = roles(&catalog, &agent)
        .remove(&spec.reference)
        .unwrap_or_default();
    let allowed = agent.allow.allows(spec, &agent.aliases);
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Silent))?;
    let key = providers.key_status(&catalog, spec, &agent.id);
    if args.json {
        let out = json!({
            "input": resolved.input,
            "alias": resolved.alias,
            "model": spec,
            "key": key,
            "agent": agent.id,
            "roles": role,
            "allowed": allowed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_spec(spec, &key, &agent.aliases, &resolved.alias);
    let role = if role.is_empty() {
        "-".to_string()
    } else {
        role.join(", ")
    };
    println!("  {:<16}{role} (agent {})", "role", agent.id);
    println!(
        "  {:<16}{}",
        "selectable",
        if allowed {
            "yes"
        } else {
            "no: not in the agent's allowlist"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn print_spec(spec: &ModelSpec, key: &KeyStatus, aliases: &Aliases, via: &Option<String>) {
    let alias = via
        .clone()
        .or_else(|| aliases.of(&spec.reference).map(str::to_string));
    match alias {
        Some(a) => println!("{} (alias {a})", spec.reference),
        None => println!("{}", spec.reference),
    }
    let origin = |field: &str| {
        spec.origins
            .get(field)
            .map(|o| o.to_string())
            .unwrap_or_default()
    };
    let row = |field: &str, value: String| println!("  {field:<16}{value:<34}{}", origin(field));
    row("name", spec.name.clone());
    row("api", spec.api.to_string());
    row(
        "baseUrl",
        spec.base_url.clone().unwrap_or_else(|| "(none)".into()),
    );
    row("contextWindow", spec.context_window.to_string());
    if let Some(ct) = spec.context_tokens {
        row("contextTokens", ct.to_string());
    }
    row("maxTokens", spec.max_tokens.to_string());
    row("cost.input", format!("${}/1M", spec.cost.input));
    row("cost.output", format!("${}/1M", spec.cost.output));
    row("cost.cacheRead", format!("${}/1M", spec.cost.cache_read));
    row("cost.cacheWrite", format!("${}/1M", spec.cost.cache_write));
    row("reasoning", spec.reasoning.to_string());
    row("input", spec.input.join(", "));
    if let Some(p) = &spec.path {
        row("path", p.clone());
    }
    println!(
        "  {:<16}{}",
        "toolCalls",
        spec.tool_call
            .map(|t| t.to_string())
            .unwrap_or_else(|| "unknown".into())
    );
    println!(
        "  {:<16}{}",
        "where",
        if spec.local { "local" } else { "hosted" }
    );
    println!("  {:<16}{}", "key", format::key(key));
    if let Some(s) = &spec.status {
        println!("  {:<16}{s}", "status");
    }
}
