//! `pincer sessions list|show|usage`: what the gateway recorded, read from
//! the session stores in the state dir (OpenClaw's layout).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pincer_config::{Env, Loaded};
use pincer_sessions::{ModelUsage, SessionStore};
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
    }
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
            store.dir().display()
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
    for event in &transcript.events {
        if event["type"] != "message" {
            continue;
        }
        let m = &event["message"];
        match m["role"].as_str().unwrap_or("") {
            "assistant" => {
                let text = assistant_text(m);
                println!(
                    "[{}/{}] {text}",
                    m["provider"].as_str().unwrap_or(""),
                    m["model"].as_str().unwrap_or("")
                );
                if let Some(e) = m["errorMessage"].as_str() {
                    println!("  (error: {e})");
                }
            }
            "toolResult" => println!(
                "[tool {}] {}",
                m["toolName"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or("")
            ),
            role => println!("[{role}] {}", m["content"].as_str().unwrap_or("")),
        }
    }
    if transcript.torn_tail {
        println!("(a line cut short by a crash was skipped)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The text and tool calls of an assistant message; reasoning is left out.
fn assistant_text(m: &Value) -> String {
    let mut out = Vec::new();
    for part in m["content"].as_array().into_iter().flatten() {
        match part["type"].as_str() {
            Some("text") => out.push(part["text"].as_str().unwrap_or("").to_string()),
            Some("toolCall") => out.push(format!(
                "→ {}({})",
                part["name"].as_str().unwrap_or(""),
                part["arguments"].as_str().unwrap_or("")
            )),
            _ => {}
        }
    }
    out.join(" ")
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
