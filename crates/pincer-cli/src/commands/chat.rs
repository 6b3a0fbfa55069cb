//! `pincer chat`: a client of the agent runtime. One message or an
//! interactive session, streamed to the terminal, with the model, tokens
//! and cost at the end of each answer. With `--session NAME` the
//! conversation lives in the agent's sessions (`agent:<id>:cli:<NAME>`) and
//! the next run continues it; without, it lasts as long as the process.
//! Chat commands (`/new`, `/model`, `/compact`, `/status`…) are the
//! runtime's, as in every other surface.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pincer_agent::{AgentEvent, Delivered, Delivery, Runtime};
use pincer_config::{Env, Loaded};
use pincer_llm::{ChatRequest, Event, Message};
use pincer_router::{Router, state_path};
use serde_json::json;

use super::models::pick_agent;
use super::progress::Bar;
use crate::cli::ChatArgs;

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub fn run(loaded: &Loaded, env: &Env, args: &ChatArgs) -> Result<ExitCode> {
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A named session lives in the state dir; an unnamed one in a folder
    // that goes when the process ends.
    let scratch;
    let state_dir = match &args.session {
        Some(_) => env
            .state_dir()
            .context("no state dir for --session: set OPENCLAW_STATE_DIR or HOME")?,
        None => {
            scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
            scratch.path().to_path_buf()
        }
    };
    let key = format!(
        "agent:{}:cli:{}",
        agent.id,
        args.session.as_deref().unwrap_or("scratch")
    );
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Bar::new()))?;
    let router = Router::new(providers, env.state_dir().map(|d| state_path(&d)))
        .with_notices(|n| eprintln!("note: {n}"));
    let mut rt = Runtime::new(
        &loaded.config,
        router,
        &state_dir,
        pincer_gateway::maintenance(&loaded.config),
    )?;
    if let Some(home) = env.state_dir() {
        rt = rt.with_workspace_root(&home);
    }
    let chat = Chat {
        rt: &rt,
        agent: agent.id.clone(),
        key,
        args,
    };
    if let Some(store) = rt.stores().get(&agent.id)
        && let Some(entry) = store.get(&chat.key)
        && !args.new
    {
        let s = if entry.turns == 1 { "" } else { "s" };
        eprintln!(
            "note: continuing session {} ({} turn{s} so far)",
            chat.key, entry.turns
        );
    }
    if args.new {
        runtime.block_on(chat.say("/new"))?;
    }

    if args.lines {
        let mut failed = 0;
        for line in std::io::stdin().lock().lines() {
            let line = line.context("cannot read stdin")?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            eprintln!("> {line}");
            if let Err(e) = runtime.block_on(chat.say(line)) {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let one_shot = match &args.message {
        Some(m) => Some(m.clone()),
        None if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the message from stdin")?;
            Some(text)
        }
        None => None,
    };
    if let Some(text) = one_shot {
        if text.trim().is_empty() {
            bail!("the message is empty");
        }
        runtime.block_on(chat.say(text.trim()))?;
        return Ok(ExitCode::SUCCESS);
    }

    eprintln!(
        "pincer chat, agent {}. /help for commands, /exit or Ctrl-D to leave.",
        agent.id
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => return Ok(ExitCode::SUCCESS),
            _ => {}
        }
        if let Err(e) = runtime.block_on(chat.say(line)) {
            eprintln!("error: {e:#}");
        }
    }
}

struct Chat<'a> {
    rt: &'a Runtime<'a>,
    agent: String,
    key: String,
    args: &'a ChatArgs,
}

impl Chat<'_> {
    /// One message to the agent: printed as it streams, then a line with
    /// the model, tokens, cost and time.
    async fn say(&self, text: &str) -> Result<()> {
        let d = Delivery {
            agent: self.agent.clone(),
            session_key: self.key.clone(),
            input: vec![Message::user(text)],
            history: None,
            system: self.args.system.iter().cloned().collect(),
            model: self.args.model.clone(),
            request: ChatRequest {
                max_tokens: self.args.max_tokens,
                temperature: self.args.temperature,
                ..ChatRequest::default()
            },
            agent_prompt: true,
            // `--json` shows nothing before the end, so a failure mid-answer
            // can start over on the next model instead of continuing.
            whole: self.args.json,
            channel: None,
        };
        let started = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let show = async {
            while let Some(e) = rx.recv().await {
                self.show(&e);
            }
        };
        let (done, ()) = tokio::join!(self.rt.deliver(d, tx), show);
        self.rt.flush();
        match done {
            Ok(d) => self.report(&d, started.elapsed()),
            Err(e @ pincer_agent::AgentError::MidAnswer(_)) => {
                println!();
                bail!("{e} (the answer above is incomplete)")
            }
            Err(e) => Err(e.into()),
        }
    }

    fn show(&self, event: &AgentEvent) {
        match event {
            AgentEvent::Note(n) => eprintln!("note: {n}"),
            AgentEvent::Tool(t) if !self.args.json => match &t.result {
                None => eprintln!("🔧 {} {}", t.name, t.arguments),
                Some(r) => {
                    let lines = r.lines().count();
                    let first = r
                        .lines()
                        .find(|l| {
                            !l.trim().is_empty()
                                && !l.starts_with("<<<")
                                && !l.starts_with("Source:")
                        })
                        .unwrap_or("");
                    let first: String = first.chars().take(100).collect();
                    let tag = if t.is_error { "error" } else { "ok" };
                    eprintln!("   → {tag} · {lines} lines · {first}");
                }
            },
            AgentEvent::Llm(_) if self.args.json => {}
            AgentEvent::Llm(Event::Text { delta }) => {
                print!("{delta}");
                std::io::stdout().flush().ok();
            }
            AgentEvent::Llm(Event::Reasoning { delta }) if self.args.show_reasoning => {
                if std::io::stderr().is_terminal() {
                    eprint!("{DIM}{delta}{RESET}");
                } else {
                    eprint!("{delta}");
                }
            }
            _ => {}
        }
    }

    fn report(&self, d: &Delivered, took: Duration) -> Result<()> {
        let usage = d.reply.usage;
        let finish = d.reply.finish.as_ref().map(|f| f.as_str()).unwrap_or("?");
        if self.args.json {
            let mut out = json!({
                "model": d.spec.reference,
                "servedBy": d.reply.served_by,
                "text": d.final_text.clone().unwrap_or_default(),
                "finish": finish,
                "usage": usage,
                "cost": d.cost_usd,
                "durationMs": took.as_millis() as u64,
                "session": {"key": self.key, "id": d.session_id},
                "command": d.command,
                "compactions": d.compactions,
                "attempts": d.attempts.iter().map(|t| json!({
                    "model": t.model,
                    "kind": t.kind.map(|k| k.as_str()),
                    "error": t.message,
                    "durationMs": t.took.as_millis() as u64,
                    "next": t.next.to_string(),
                })).collect::<Vec<_>>(),
            });
            if self.args.show_reasoning {
                out["reasoning"] = d.reply.reasoning.clone().into();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        // Failed and skipped candidates were told as they happened (notices).
        println!();
        if d.command {
            return Ok(());
        }
        if d.final_text.is_none() {
            eprintln!("note: {} gave no final text", d.spec.reference);
        }
        let via = d
            .reply
            .served_by
            .as_ref()
            .map(|p| format!(" via {p}"))
            .unwrap_or_default();
        eprintln!(
            "[{}{via} · {} in · {} out · ${:.6} · {:.1} s · {finish}]",
            d.spec.reference,
            usage.prompt_tokens(),
            usage.output,
            d.cost_usd,
            took.as_secs_f64()
        );
        Ok(())
    }
}
