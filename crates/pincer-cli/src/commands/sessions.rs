//! `pincer sessions list|show|usage|import`: what the gateway recorded, read
//! from the session stores in the state dir (OpenClaw's layouts).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pincer_config::{Env, Loaded};
use pincer_llm::Message;
use pincer_sessions::{Body, ModelUsage, SessionStore};
use serde_json::{Value, json};

use crate::cli::{SessionsArgs, SessionsCommand, ShowArgs};
use crate::format;

fn store(loaded: &Loaded, env: &Env, agent: Option<&str>) -> Result<(String, SessionStore)> {
    let agent = super::models::pick_agent(loaded, agent)?;
    let state_dir = env
        .state_dir()
        .context("no state dir: set OPENCLAW_STATE_DIR or HOME")?;
    let store = SessionStore::open(&state_dir, &agent.id)?;
    Ok((agent.id, store))
}

pub fn run(loaded: &Loaded, env: &Env, command: &SessionsCommand) -> Result<ExitCode> {
    match command {
        SessionsCommand::List(args) => list(loaded, env, args),
        SessionsCommand::Show(args) => show(loaded, env, args),
        SessionsCommand::Usage(args) => usage(loaded, env, args),
        SessionsCommand::Import(args) => import(loaded, env, args),
    }
}

fn import(loaded: &Loaded, env: &Env, args: &SessionsArgs) -> Result<ExitCode> {
    let agent = super::models::pick_agent(loaded, args.agent.as_deref())?;
    let state_dir = env
        .state_dir()
        .context("no state dir: set OPENCLAW_STATE_DIR or HOME")?;
    let imported = SessionStore::import(&state_dir, &agent.id)?;
    if args.json {
        let out = imported
            .as_ref()
            .map(|i| json!({"sessions": i.sessions, "events": i.events, "archive": i.archive}));
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"agent": agent.id, "imported": out}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    match imported {
        None => println!("agent {}: no legacy sessions.json to import", agent.id),
        Some(i) => println!(
            "agent {}: imported {} sessions ({} transcript events); the legacy files are in {}",
            agent.id,
            i.sessions,
            i.events,
            i.archive.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(loaded: &Loaded, env: &Env, args: &SessionsArgs) -> Result<ExitCode> {
    let (agent, store) = store(loaded, env, args.agent.as_deref())?;
    let mut sessions = store.list();
    sessions.sort_by_key(|(_, e)| std::cmp::Reverse(e.updated_at));
    if args.json {
        let rows: Vec<Value> = sessions
            .iter()
            .map(|(key, e)| json!({"key": key, "entry": e}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        println!(
            "agent {agent} has no sessions yet (in {})",
            store.location().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = format::table(&[
        "Session key",
        "Id",
        "Turns",
        "Tokens in",
        "Tokens out",
        "Cost",
        "Updated",
    ]);
    for (key, e) in &sessions {
        t.add_row(vec![
            key.clone(),
            e.session_id.chars().take(8).collect(),
            e.turns.to_string(),
            e.input_tokens.to_string(),
            e.output_tokens.to_string(),
            format::usd(e.cost_usd),
            format::ago(e.updated_at),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

fn show(loaded: &Loaded, env: &Env, args: &ShowArgs) -> Result<ExitCode> {
    let (agent, store) = store(loaded, env, args.agent.as_deref())?;
    let Some((key, entry)) = store.find(&args.session) else {
        bail!(
            "agent {agent} has no session {:?} (see `pincer sessions list`)",
            args.session
        );
    };
    let transcript = store.transcript(&entry.session_id)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"key": key, "entry": entry, "events": transcript.events})
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{key} ({}), {} turns, {}",
        entry.session_id,
        entry.turns,
        format::usd(entry.cost_usd)
    );
    let tree = store.tree(&entry.session_id)?;
    for e in tree.branch() {
        match &e.body {
            Body::Message(Message::Assistant {
                text, tool_calls, ..
            }) => {
                let mut out = vec![text.clone()];
                out.extend(
                    tool_calls
                        .iter()
                        .map(|c| format!("→ {}({})", c.name, c.arguments)),
                );
                println!(
                    "[{}] {}",
                    e.answered_by.as_deref().unwrap_or("assistant"),
                    out.join(" ").trim()
                );
                if let Some(err) = &e.error {
                    println!("  (error: {err})");
                }
            }
            Body::Message(Message::Tool { name, content, .. }) => {
                println!("[tool {name}] {content}");
            }
            Body::Message(Message::User { text }) => println!("[user] {text}"),
            Body::Message(Message::System { text }) => println!("[system] {text}"),
            Body::Compaction {
                summary,
                tokens_before,
                ..
            } => println!("[compacted from ~{tokens_before} tokens] {summary}"),
            Body::ModelChange { provider, model_id } => {
                println!("[model set to {provider}/{model_id}]");
            }
            Body::ThinkingLevelChange { thinking_level } => {
                println!("[thinking set to {thinking_level}]");
            }
            Body::Reset { .. } => println!("[session reset]"),
            Body::Other(_) => {}
        }
    }
    if transcript.torn_tail {
        println!("(a line cut short by a crash was skipped)");
    }
    Ok(ExitCode::SUCCESS)
}

fn usage(loaded: &Loaded, env: &Env, args: &SessionsArgs) -> Result<ExitCode> {
    let (agent, store) = store(loaded, env, args.agent.as_deref())?;
    let by_model = store.usage_by_model()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&by_model)?);
        return Ok(ExitCode::SUCCESS);
    }
    if by_model.is_empty() {
        println!("agent {agent} has no recorded turns yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = format::table(&[
        "Model",
        "Turns",
        "Errors",
        "In",
        "Out",
        "Cache read",
        "Cache write",
        "Cost",
    ]);
    let mut total = ModelUsage::default();
    for (model, u) in &by_model {
        t.add_row(row(model, u));
        total.turns += u.turns;
        total.errors += u.errors;
        total.input += u.input;
        total.output += u.output;
        total.cache_read += u.cache_read;
        total.cache_write += u.cache_write;
        total.cost_usd += u.cost_usd;
    }
    t.add_row(row("total", &total));
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

fn row(model: &str, u: &ModelUsage) -> Vec<String> {
    vec![
        model.to_string(),
        u.turns.to_string(),
        u.errors.to_string(),
        u.input.to_string(),
        u.output.to_string(),
        u.cache_read.to_string(),
        u.cache_write.to_string(),
        format::usd(u.cost_usd),
    ]
}
