//! `pincer chat`: one message or an interactive session, streamed to the
//! terminal, with the model, tokens and cost at the end of each answer.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pincer_agent::{Budget, Command, ModelArg, estimate};
use pincer_catalog::{AgentModels, Catalog, ModelSpec, turn_candidates};
use pincer_config::{Env, Loaded};
use pincer_llm::{ChatRequest, Event, Message, Reply, cost};
use pincer_router::{Attempt, Router, state_path};
use pincer_sessions::{Mark, SessionStore, TurnRecord};
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let saved = match &args.session {
        Some(name) => {
            let dir = env
                .state_dir()
                .context("no state dir for --session: set OPENCLAW_STATE_DIR or HOME")?;
            Some(Saved {
                store: SessionStore::open(&dir, &agent.id)?
                    .with_maintenance(pincer_gateway::maintenance(&loaded.config)),
                key: format!("agent:{}:cli:{name}", agent.id),
            })
        }
        None => None,
    };
    // A saved conversation continues where it stopped, on its model.
    let mut history = Vec::new();
    let mut model = args.model.clone();
    if let Some(s) = &saved
        && let Some(entry) = s.store.get(&s.key)
    {
        let tree = s.store.tree(&entry.session_id)?;
        history = tree.context();
        if model.is_none() {
            model = tree.model().map(|(p, m)| format!("{p}/{m}"));
        }
        eprintln!(
            "note: continuing session {} ({} messages)",
            s.key,
            history.len()
        );
    }
    let candidates = candidates(&catalog, &agent, model.as_deref())?;
    let providers = super::providers(loaded, env, &[&agent.id], Arc::new(Bar::new()))?;
    let router = Router::new(providers, env.state_dir().map(|d| state_path(&d)))
        .with_notices(|n| eprintln!("note: {n}"));
    let system: Vec<Message> = args.system.iter().map(Message::system).collect();
    let mut session = Session {
        catalog: &catalog,
        agent: &agent,
        args,
        router: &router,
        candidates,
        system,
        history,
        saved,
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
        runtime.block_on(session.say(text.trim()))?;
        return Ok(ExitCode::SUCCESS);
    }

    eprintln!(
        "pincer chat with {} (agent {}). /help for commands, /exit or Ctrl-D to leave.",
        session
            .candidates
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
        if let Err(e) = runtime.block_on(session.say(line)) {
            eprintln!("error: {e:#}");
        }
    }
}

/// `--session`: where the conversation is kept.
struct Saved {
    store: SessionStore,
    key: String,
}

/// The models to try, in order: `--model` (if the agent's allowlist lets it
/// through), else the agent's primary and fallbacks: the gateway's rule.
fn candidates(
    catalog: &Catalog<'_>,
    agent: &AgentModels,
    model: Option<&str>,
) -> Result<Vec<ModelSpec>> {
    let (out, bad) = turn_candidates(catalog, agent, model)?;
    for (input, e) in bad {
        eprintln!("note: skipping {input}: {e}");
    }
    Ok(out)
}

struct Session<'a> {
    catalog: &'a Catalog<'a>,
    agent: &'a AgentModels,
    args: &'a ChatArgs,
    router: &'a Router,
    candidates: Vec<ModelSpec>,
    system: Vec<Message>,
    /// The conversation so far (without the system prompt).
    history: Vec<Message>,
    saved: Option<Saved>,
}

impl Session<'_> {
    /// One message from the user: a command, or a turn whose answer joins
    /// the conversation (and the saved session).
    async fn say(&mut self, text: &str) -> Result<()> {
        // Only `/…` here: a bare "stop" has nothing to abort in a terminal.
        if text.starts_with('/')
            && let Some(command) = pincer_agent::parse(text)
        {
            return self.command(command);
        }
        let user = Message::user(text);
        let answer = self.turn(&user).await?;
        if let Some(s) = &self.saved {
            let turn = TurnRecord {
                input: std::slice::from_ref(&user),
                model: &answer.spec.reference,
                api: answer.spec.api.as_str(),
                reply: &answer.reply,
                cost_usd: cost(&answer.spec, &answer.reply.usage),
                attempts: &[],
                error: None,
            };
            s.store.record(&s.key, &turn)?;
            s.store.flush()?;
        }
        self.history.push(user);
        self.history.push(Message::assistant(answer.reply.text));
        Ok(())
    }

    /// The chat commands `pincer chat` answers itself.
    fn command(&mut self, command: Command) -> Result<()> {
        let mark = |s: &Self, m: Mark| -> Result<()> {
            if let Some(saved) = &s.saved {
                saved.store.mark(&saved.key, &m)?;
            }
            Ok(())
        };
        match command {
            Command::New { model } => {
                if let Some(m) = model {
                    self.candidates = candidates(self.catalog, self.agent, Some(&m))?;
                }
                self.history.clear();
                mark(
                    self,
                    Mark::Reset {
                        reason: "new".into(),
                    },
                )?;
                eprintln!("✅ New session started · model: {}", self.model());
            }
            Command::Reset => {
                self.history.clear();
                mark(
                    self,
                    Mark::Reset {
                        reason: "reset".into(),
                    },
                )?;
                eprintln!("✅ New session started · model: {}", self.model());
            }
            Command::Model(ModelArg::Set(m)) => {
                self.candidates = candidates(self.catalog, self.agent, Some(&m))?;
                if let Some(spec) = self.candidates.first() {
                    let (provider, model_id) = (spec.provider.clone(), spec.id.clone());
                    mark(self, Mark::ModelChange { provider, model_id })?;
                }
                eprintln!("Model set to {}.", self.model());
            }
            Command::Model(ModelArg::Default) => {
                self.candidates = candidates(self.catalog, self.agent, None)?;
                eprintln!("Model reset to default ({}).", self.model());
            }
            Command::Model(_) | Command::Status => {
                let used: u64 = self.system.iter().chain(&self.history).map(estimate).sum();
                let window = self.candidates.first().map_or(0, ModelSpec::budget);
                eprintln!(
                    "🧠 Model: {} · 📚 Context: ~{}/{} tokens · {} messages{}",
                    self.model(),
                    used,
                    window,
                    self.history.len(),
                    self.saved
                        .as_ref()
                        .map(|s| format!(" · 🧵 Session: {}", s.key))
                        .unwrap_or_default()
                );
            }
            Command::Help => eprintln!(
                "/new [model], /reset: start over · /model <ref|alias|default>: switch · \
                 /status: model and context · /exit: leave"
            ),
            Command::Invalid { hint, .. } => eprintln!("{hint}"),
            other => eprintln!("{other:?} is not available in pincer chat"),
        }
        Ok(())
    }

    fn model(&self) -> &str {
        self.candidates
            .first()
            .map_or("?", |s| s.reference.as_str())
    }

    /// The conversation that fits the first candidate's window: whole turns
    /// from the oldest are left out when it does not.
    fn prompt(&self, user: &Message, req: &ChatRequest) -> Result<Vec<Message>> {
        let Some(spec) = self.candidates.first() else {
            bail!("no model to ask");
        };
        let budget = Budget {
            window: spec.budget(),
            output: req.output_cap(spec.max_tokens),
        };
        // A message too large even alone goes without history: the router's
        // preflight refuses it, or a fallback with a larger window takes it.
        let keep_from = match budget.fit(&self.system, &self.history, std::slice::from_ref(user)) {
            Ok(fit) => fit.keep_from,
            Err(_) => self.history.len(),
        };
        if keep_from > 0 {
            eprintln!(
                "note: the oldest {keep_from} messages do not fit {}'s window of {}; they are left out",
                spec.reference, budget.window
            );
        }
        let mut messages = self.system.clone();
        messages.extend_from_slice(&self.history[keep_from..]);
        messages.push(user.clone());
        Ok(messages)
    }

    /// One answer to the conversation so far, printed as it streams.
    async fn turn(&self, user: &Message) -> Result<Answer> {
        let mut req = ChatRequest {
            max_tokens: self.args.max_tokens,
            temperature: self.args.temperature,
            ..ChatRequest::default()
        };
        req.messages = self.prompt(user, &req)?;
        let started = Instant::now();
        if self.args.json {
            // Nothing is shown before the end, so a failure mid-answer can
            // start over on the next model instead of continuing.
            let done = self
                .router
                .complete(
                    self.catalog,
                    &self.candidates,
                    &self.agent.id,
                    CLI_SESSION,
                    &req,
                )
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
            .start(
                self.catalog,
                &self.candidates,
                &self.agent.id,
                CLI_SESSION,
                &req,
            )
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
