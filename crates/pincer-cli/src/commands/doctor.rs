//! `pincer doctor` and `pincer models status`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use pincer_catalog::{Catalog, roles};
use pincer_config::{Env, Loaded};
use pincer_doctor::{ModelStatus, Report, Severity, diagnose, models_to_check, statuses};
use pincer_gguf::Silent;
use pincer_llm::LoadState;

use crate::cli::{DoctorArgs, StatusArgs};
use crate::commands::models::pick_agent;
use crate::format;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn status(loaded: &Loaded, env: &Env, args: &StatusArgs) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Silent))?;
    let refs = models_to_check(loaded, &catalog, &agent);
    let agent_roles = roles(&catalog, &agent);
    let models = runtime()?.block_on(statuses(
        &catalog,
        &providers,
        env,
        &agent.id,
        &agent_roles,
        &refs,
        args.probe,
    ));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = format::table(&[
        "Model",
        "Role",
        "Where",
        "Ctx",
        "Keys",
        "Cooldown",
        "Server",
        "State",
        "Server ctx",
        "Latency",
    ]);
    for m in &models {
        t.add_row(status_row(m));
    }
    println!("{t}");
    if !args.probe {
        println!(
            "(add --probe to ask each server whether the model is listed, loaded and with what context)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status_row(m: &ModelStatus) -> Vec<String> {
    let dash = || "-".to_string();
    let place = if m.embedded {
        "embedded".to_string()
    } else {
        m.base_url.clone().unwrap_or_else(dash)
    };
    let keys = format::key(&m.keys);
    let cooldown = if m.cooldowns.is_empty() {
        dash()
    } else {
        m.cooldowns
            .iter()
            .map(|c| match c.scope {
                "key" => format!("key {} {} s ({})", c.name, c.seconds_left, c.reason),
                scope => format!("{scope} {} s ({})", c.seconds_left, c.reason),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (server, state, limit, latency) = match (&m.server, &m.file) {
        (Some(r), _) => (
            match (&r.error, r.listed) {
                (Some(e), _) => e.kind.to_string(),
                (None, Some(false)) => "not listed".into(),
                (None, _) => r.server.map_or("ok".into(), |k| format!("ok ({k})")),
            },
            r.state.map_or_else(dash, load_state),
            r.context_limit.map_or_else(dash, |n| {
                let mark = if n < m.context_window {
                    " (< ctx!)"
                } else {
                    ""
                };
                format!("{}{mark}", format::tokens(n))
            }),
            if r.error.is_some() {
                dash()
            } else {
                format!("{} ms", r.latency.as_millis())
            },
        ),
        (None, Some(f)) => (
            if f.present {
                "file ok".into()
            } else if f.fetched_on_first_use {
                "fetched on first use".into()
            } else {
                "file missing".into()
            },
            dash(),
            dash(),
            dash(),
        ),
        (None, None) => (dash(), dash(), dash(), dash()),
    };
    vec![
        m.reference.clone(),
        if m.roles.is_empty() {
            dash()
        } else {
            m.roles.join(",")
        },
        place,
        format::tokens(m.context_window),
        keys,
        cooldown,
        server,
        state,
        limit,
        latency,
    ]
}

fn load_state(s: LoadState) -> String {
    match s {
        LoadState::Loaded => "loaded",
        LoadState::Loading => "loading",
        LoadState::Cold => "cold",
    }
    .into()
}

pub fn run(
    loaded: &Loaded,
    env: &Env,
    args: &DoctorArgs,
    discovered: &[pincer_catalog::discovery::Discovery],
) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let diagnostics = super::diagnostics(loaded, &catalog);
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Silent))?;
    let report = runtime()?.block_on(diagnose(
        loaded,
        &diagnostics,
        env,
        &providers,
        &agent,
        discovered,
    ));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(r: &Report) {
    println!(
        "config: {}   agent: {}",
        r.config.as_deref().unwrap_or("none (built-in defaults)"),
        r.agent
    );
    for f in &r.findings {
        let mark = match f.severity {
            Severity::Error => "✗ error  ",
            Severity::Warning => "! warning",
            Severity::Info => "i info   ",
        };
        println!("{mark} {}: {}", f.subject, f.message);
        println!("          fix: {}", f.fix);
    }
    let count = |s: Severity| r.findings.iter().filter(|f| f.severity == s).count();
    println!(
        "{} {} model(s) checked: {} error(s), {} warning(s), {} note(s)",
        if r.ok { "✓" } else { "✗" },
        r.models.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
}
