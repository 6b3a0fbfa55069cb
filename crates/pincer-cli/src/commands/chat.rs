//! `pincer chat`: one message or an interactive session, streamed to the
//! terminal, with the model, tokens and cost at the end of each answer.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pincer_catalog::{AgentModels, Catalog, ModelSpec, turn_candidates};
use pincer_config::{Env, Loaded};
use pincer_llm::{ChatRequest, Event, Message, Reply, cost};
use pincer_router::{Attempt, Router, state_path};
use serde_json::json;

use super::models::pick_agent;
use super::progress::Bar;
use crate::cli::ChatArgs;

/// The embedded engine's queue key for this terminal's turns.
const CLI_SESSION: &str = "cli";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

struct Answer {
    spec: ModelSpec,
    reply: Reply,
    took: Duration,
    attempts: Vec<Attempt>,
}

pub fn run(loaded: &Loaded, env: &Env, args: &ChatArgs) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let agent = pick_agent(loaded, args.agent.as_deref())?;
    let candidates = candidates(&catalog, &agent, args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Bar::new()))?;
    let router = Router::new(providers, env.state_dir().map(|d| state_path(&d)))
        .with_notices(|n| eprintln!("note: {n}"));
    let mut history = Vec::new();
    if let Some(system) = &args.system {
        history.push(Message::system(system));
    }
    let session = Session {
        catalog: &catalog,
        agent: &agent.id,
        args,
        router: &router,
        candidates: &candidates,
    };

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
        history.push(Message::user(text));
        runtime.block_on(session.turn(&history))?;
        return Ok(ExitCode::SUCCESS);
    }

    eprintln!(
        "pincer chat with {} (agent {}). /exit or Ctrl-D to leave.",
        candidates
            .first()
            .map(|s| s.reference.as_str())
            .unwrap_or("?"),
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
        history.push(Message::user(line));
        match runtime.block_on(session.turn(&history)) {
            Ok(answer) => history.push(Message::assistant(answer.reply.text)),
            Err(e) => {
                // The failed message is dropped so the next one starts clean.
                history.pop();
                eprintln!("error: {e:#}");
            }
        }
    }
}

/// The models to try, in order: `--model` (if the agent's allowlist lets it
/// through), else the agent's primary and fallbacks: the gateway's rule.
fn candidates(
    catalog: &Catalog<'_>,
    agent: &AgentModels,
    args: &ChatArgs,
) -> Result<Vec<ModelSpec>> {
    let (out, bad) = turn_candidates(catalog, agent, args.model.as_deref())?;
    for (input, e) in bad {
        eprintln!("note: skipping {input}: {e}");
    }
    Ok(out)
}

struct Session<'a> {
    catalog: &'a Catalog<'a>,
    agent: &'a str,
    args: &'a ChatArgs,
    router: &'a Router,
    candidates: &'a [ModelSpec],
}

impl Session<'_> {
    /// One answer to the conversation so far, printed as it streams.
    async fn turn(&self, history: &[Message]) -> Result<Answer> {
        let req = ChatRequest {
            messages: history.to_vec(),
            max_tokens: self.args.max_tokens,
            temperature: self.args.temperature,
            ..ChatRequest::default()
        };
        let started = Instant::now();
        if self.args.json {
            // Nothing is shown before the end, so a failure mid-answer can
            // start over on the next model instead of continuing.
            let done = self
                .router
                .complete(self.catalog, self.candidates, self.agent, CLI_SESSION, &req)
                .await?;
            let answer = Answer {
                spec: done.spec,
                reply: done.reply,
                took: started.elapsed(),
                attempts: done.attempts,
            };
            self.report(&answer)?;
            return Ok(answer);
        }
        let mut answering = self
            .router
            .start(self.catalog, self.candidates, self.agent, CLI_SESSION, &req)
            .await?;
        let mut reply = Reply::default();
        while let Some(event) = answering.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    println!();
                    bail!(
                        "{} stopped mid-answer: {e} (the answer above is incomplete)",
                        answering.spec.reference
                    );
                }
            };
            self.show(&event);
            reply.apply(&event);
        }
        let answer = Answer {
            spec: answering.spec.clone(),
            reply,
            took: started.elapsed(),
            attempts: answering.attempts.clone(),
        };
        self.report(&answer)?;
        Ok(answer)
    }

    fn show(&self, event: &Event) {
        if self.args.json {
            return;
        }
        match event {
            Event::Text { delta } => {
                print!("{delta}");
                std::io::stdout().flush().ok();
            }
            Event::Reasoning { delta } if self.args.show_reasoning => {
                if std::io::stderr().is_terminal() {
                    eprint!("{DIM}{delta}{RESET}");
                } else {
                    eprint!("{delta}");
                }
            }
            _ => {}
        }
    }

    fn report(&self, a: &Answer) -> Result<()> {
        let usage = a.reply.usage;
        let usd = cost(&a.spec, &usage);
        let finish = a.reply.finish.as_ref().map(|f| f.as_str()).unwrap_or("?");
        if self.args.json {
            let mut out = json!({
                "model": a.spec.reference,
                "text": a.reply.text,
                "finish": finish,
                "usage": usage,
                "cost": usd,
                "durationMs": a.took.as_millis() as u64,
                "attempts": a.attempts.iter().map(|t| json!({
                    "model": t.model,
                    "kind": t.kind.map(|k| k.as_str()),
                    "error": t.message,
                    "durationMs": t.took.as_millis() as u64,
                    "next": t.next.to_string(),
                })).collect::<Vec<_>>(),
            });
            if self.args.show_reasoning {
                out["reasoning"] = a.reply.reasoning.clone().into();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        // Failed and skipped candidates were told as they happened (notices).
        println!();
        if a.reply.text.trim().is_empty() {
            eprintln!("note: {} gave no final text", a.spec.reference);
        }
        eprintln!(
            "[{} · {} in · {} out · ${usd:.6} · {:.1} s · {finish}]",
            a.spec.reference,
            usage.prompt_tokens(),
            usage.output,
            a.took.as_secs_f64()
        );
        Ok(())
    }
}
