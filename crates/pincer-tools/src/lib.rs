//! The agent's tools: what they are (`catalog`: OpenClaw's names and
//! schemas, typed arguments), which an agent may use (`policy`, one table
//! test), how outside content is marked before a model reads it
//! (`untrusted`), tool calls printed as text (`textcall`), and the tools
//! themselves: files confined to the workspace (`fs`), commands under the
//! exec policy and a sandbox (`exec`), and the public web (`web`).
//!
//! [`Toolbox::run`] is the one way a call is executed: arguments checked
//! against the tool's type, the tool run, its output bounded and every
//! special token defused; a failure is an error result for the model,
//! never a crashed turn.

pub mod catalog;
pub mod exec;
pub mod fs;
pub mod policy;
pub mod textcall;
pub mod untrusted;
pub mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pincer_config::ToolsConfig;

use crate::catalog::{
    EditArgs, ExecArgs, ProcessArgs, ReadArgs, SessionArgs, WebFetchArgs, WriteArgs, typed,
};
use crate::exec::{Approvals, Decision, ExecSettings, Job, PendingExec, Processes, Verdict};
use crate::fs::Files;
use crate::untrusted::{Source, defuse, wrap};
use crate::web::FetchSettings;

pub use policy::{Policy, Row, Visibility};

/// The sessions of the calling agent, as the session tools see them (the
/// runtime implements it over its stores).
pub trait SessionsView: Send + Sync {
    fn status(&self, key: &str) -> Result<String, String>;
    /// The newest `limit` sessions whose key `visible` accepts.
    fn list(
        &self,
        limit: usize,
        active_minutes: Option<u64>,
        visible: &dyn Fn(&str) -> bool,
    ) -> String;
    fn history(&self, key: &str, limit: usize, include_tools: bool) -> Result<String, String>;
}

/// An agent's tool settings, resolved once from the config.
#[derive(Debug, Clone)]
pub struct AgentTools {
    pub files: Files,
    pub exec: ExecSettings,
    pub fetch: FetchSettings,
    /// Folders commands never see (the state dir, the home folder).
    pub hidden: Vec<PathBuf>,
    /// Which sessions the session tools reach.
    pub visibility: Visibility,
}

impl AgentTools {
    pub fn new(
        global: &ToolsConfig,
        agent: Option<&ToolsConfig>,
        workspace: &Path,
        hidden: Vec<PathBuf>,
    ) -> AgentTools {
        // The agent's settings win field by field.
        let t = agent.map_or_else(|| global.clone(), |a| a.over(global));
        AgentTools {
            files: Files::new(workspace, t.fs_workspace_only.unwrap_or(true)),
            exec: ExecSettings::from_config(&t.exec),
            fetch: FetchSettings::from_config(&t.web_fetch),
            hidden,
            visibility: Visibility::from_config(t.sessions_visibility.as_deref()),
        }
    }
}

/// An agent's own tool settings: its `tools` over `agents.defaults.tools`
/// (the layer the policy applies after the top-level `tools`).
pub fn agent_layer(config: &pincer_config::Config, agent: &str) -> ToolsConfig {
    let defaults = &config.agents.defaults.tools;
    config
        .agents
        .entries
        .iter()
        .find(|e| e.id.value.eq_ignore_ascii_case(agent))
        .map_or_else(|| defaults.clone(), |e| e.settings.tools.over(defaults))
}

/// One call's context.
pub struct Call<'a> {
    pub agent: &'a str,
    pub session_key: &'a str,
    /// The agent's main session (`agent:<id>:<mainKey>`).
    pub main_session: &'a str,
    pub tools: &'a AgentTools,
    pub sessions: &'a dyn SessionsView,
    /// `process` is allowed: long commands may go to the background.
    pub background: bool,
    /// The most characters a result may hold (a share of the model's
    /// window): content is cut to it before it is wrapped, so the end
    /// marker always stays.
    pub max_chars: usize,
}

impl Call<'_> {
    /// Whether the session tools may reach `key` from this session.
    fn visible(&self, key: &str) -> Result<(), String> {
        let v = self.tools.visibility;
        if v.allows(self.session_key, key, self.main_session) {
            Ok(())
        } else {
            Err(format!(
                "session {key:?} is not visible from this session (tools.sessions.visibility: {})",
                v.as_str()
            ))
        }
    }
}

/// What a call gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub text: String,
    pub is_error: bool,
    /// A command that waits for the user's `/approve`.
    pub approval: Option<PendingExec>,
}

impl Outcome {
    fn ok(text: String) -> Outcome {
        Outcome {
            text: defuse(&text),
            is_error: false,
            approval: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Outcome {
        Outcome {
            text: defuse(&text.into()),
            is_error: true,
            approval: None,
        }
    }
}

/// The state tools keep between calls: background commands and approvals.
pub struct Toolbox {
    processes: Processes,
    approvals: Approvals,
}

impl Toolbox {
    /// Approvals are kept in `state_dir/exec-approvals.json`.
    pub fn new(state_dir: &Path) -> Toolbox {
        Toolbox {
            processes: Processes::default(),
            approvals: Approvals::new(state_dir),
        }
    }

    /// Runs the built-in tool `name` with `raw` arguments (JSON text).
    pub async fn run(&self, c: &Call<'_>, name: &str, raw: &str) -> Outcome {
        let args = match catalog::arguments(raw) {
            Ok(a) => a,
            Err(e) => return Outcome::error(format!("{name}: {e}")),
        };
        let result = match name {
            // File work runs off the async threads: a huge file or a slow
            // disk never stalls other sessions.
            "read" => match typed::<ReadArgs>(name, &args) {
                Ok(a) => {
                    let files = c.tools.files.clone();
                    let max = c.max_chars;
                    blocking(move || {
                        let text = files.read(&a.path, a.offset, a.limit)?;
                        let text = fit(&text, max);
                        Ok(wrap(&text, Source::File, &[("Path", &a.path)], false))
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            "write" => match typed::<WriteArgs>(name, &args) {
                Ok(a) => {
                    let files = c.tools.files.clone();
                    blocking(move || files.write(&a.path, &a.content)).await
                }
                Err(e) => Err(e),
            },
            "edit" => match typed::<EditArgs>(name, &args).and_then(|a| {
                let edits = a.replacements()?;
                Ok((a.path, edits))
            }) {
                Ok((path, edits)) => {
                    let files = c.tools.files.clone();
                    blocking(move || files.edit(&path, &edits)).await
                }
                Err(e) => Err(e),
            },
            "exec" => match typed::<ExecArgs>(name, &args) {
                Ok(a) => return self.exec(c, a).await,
                Err(e) => Err(e),
            },
            "process" => match typed::<ProcessArgs>(name, &args) {
                Ok(a) => {
                    self.processes
                        .act(&exec::owner(c.agent, c.session_key), &a)
                        .await
                }
                Err(e) => Err(e),
            },
            "web_fetch" => match typed::<WebFetchArgs>(name, &args) {
                Ok(_) if !c.tools.fetch.enabled => {
                    Err("web_fetch is turned off (tools.web.fetch.enabled)".into())
                }
                Ok(a) => {
                    let wanted = a.max_chars.unwrap_or(c.tools.fetch.max_chars as u64);
                    let max = wanted.min(c.max_chars as u64);
                    web::fetch(&c.tools.fetch, &a.url, Some(max)).await
                }
                Err(e) => Err(e),
            },
            // The session tools read transcripts from disk through borrowed
            // stores: off the async threads in place, where the runtime can.
            "session_status" | "sessions_list" | "sessions_history" => {
                in_place(|| self.session_tool(c, name, &args))
            }
            other => Err(format!("Tool {other} not found")),
        };
        match result {
            Ok(text) => Outcome::ok(text),
            Err(e) => Outcome::error(e),
        }
    }

    fn session_tool(
        &self,
        c: &Call<'_>,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<String, String> {
        match name {
            "session_status" => typed::<SessionArgs>(name, args).and_then(|a| {
                let key = match a.session_key.as_deref() {
                    None | Some("current") | Some("") => c.session_key.to_string(),
                    Some(k) => k.to_string(),
                };
                c.visible(&key)?;
                c.sessions.status(&key)
            }),
            "sessions_list" => typed::<SessionArgs>(name, args).map(|a| {
                c.sessions.list(
                    a.limit.unwrap_or(20).min(200) as usize,
                    a.active_minutes,
                    &|k| c.visible(k).is_ok(),
                )
            }),
            "sessions_history" => typed::<SessionArgs>(name, args).and_then(|a| {
                let key = a
                    .session_key
                    .ok_or("invalid arguments for sessions_history: missing field `sessionKey`")?;
                c.visible(&key)?;
                let text = c.sessions.history(
                    &key,
                    a.limit.unwrap_or(20).min(200) as usize,
                    a.include_tools.unwrap_or(false),
                )?;
                let text = fit(&text, c.max_chars);
                // Another session may hold other people's words.
                Ok(if key == c.session_key {
                    text
                } else {
                    wrap(&text, Source::Session, &[("Session", &key)], false)
                })
            }),
            other => Err(format!("Tool {other} not found")),
        }
    }

    fn job(&self, c: &Call<'_>, a: &ExecArgs) -> Result<Job, String> {
        let files = &c.tools.files;
        let workdir = match a.workdir.as_deref() {
            Some(w) if !w.trim().is_empty() => files.resolve(w)?,
            _ => files.root().to_path_buf(),
        };
        if !workdir.is_dir() {
            return Err(format!("workdir {} is not a folder", files.shown(&workdir)));
        }
        Ok(Job {
            command: a.command.clone(),
            workdir,
            workspace: files.root().to_path_buf(),
            hidden: c.tools.hidden.clone(),
            env: a.env.clone(),
            sandbox: c.tools.exec.sandbox,
        })
    }

    async fn exec(&self, c: &Call<'_>, a: ExecArgs) -> Outcome {
        if a.command.trim().is_empty() {
            return Outcome::error("exec: command is empty");
        }
        let job = match self.job(c, &a) {
            Ok(j) => j,
            Err(e) => return Outcome::error(e),
        };
        let host = in_place(|| self.approvals.for_agent(c.agent));
        let settings = c.tools.exec.tightened(&host);
        match exec::decide(&settings, &host.allowlist, &a.command, !a.env.is_empty()) {
            Decision::Deny(why) => Outcome::error(format!("Exec denied: {why}.")),
            Decision::Ask { why, every_time } => {
                let p = self
                    .approvals
                    .request(c.agent, c.session_key, job, every_time);
                let text = format!(
                    "{}\n(Why: {why}.) The user must approve it; do not try another way.",
                    exec::approval_text(&p)
                );
                // The model's copy is defused; the user's (the approval
                // prompt) shows exactly what would run.
                Outcome {
                    text: defuse(&text),
                    is_error: false,
                    approval: Some(p),
                }
            }
            Decision::Run => {
                let timeout = a
                    .timeout
                    .map_or(c.tools.exec.timeout, Duration::from_secs)
                    .min(c.tools.exec.timeout);
                let background = c.background && a.background == Some(true);
                let yield_after = if c.background {
                    a.yield_ms
                        .map_or(c.tools.exec.yield_after, Duration::from_millis)
                } else {
                    timeout
                };
                let owner = exec::owner(c.agent, c.session_key);
                self.run_job(&owner, &job, timeout, background, yield_after, c.max_chars)
                    .await
            }
        }
    }

    async fn run_job(
        &self,
        owner: &str,
        job: &Job,
        timeout: Duration,
        background: bool,
        yield_after: Duration,
        max_chars: usize,
    ) -> Outcome {
        let (proc, note) = match exec::spawn(job, owner) {
            Ok(p) => p,
            Err(e) => return Outcome::error(e),
        };
        // A turn aborted while the command runs takes the command with it.
        let mut guard = KillOnDrop(Some(proc.clone()));
        let first = if background {
            Duration::ZERO
        } else {
            yield_after.min(timeout)
        };
        let finished = proc.wait(first).await;
        if !finished && first < timeout {
            // Still going: on to the background, its time limit kept.
            guard.0 = None;
            let p = proc.clone();
            let rest = timeout - first;
            tokio::spawn(async move {
                if !p.wait(rest).await {
                    p.kill();
                }
            });
            return match self.processes.add(proc.clone()) {
                Ok(()) => Outcome::ok(format!(
                    "Command still running (session {}, pid {}). Use process (list/poll/log/kill) for follow-up.",
                    proc.id, proc.pid
                )),
                Err(e) => Outcome::error(e),
            };
        }
        guard.0 = None;
        if !finished {
            proc.kill();
            proc.wait(Duration::from_secs(5)).await;
        }
        let (text, is_error) = exec::result_text(&proc, (!finished).then_some(timeout), max_chars);
        let mut text = wrap(&text, Source::Command, &[("Command", &job.command)], false);
        if let Some(n) = note {
            text = format!("{n}\n{text}");
        }
        Outcome {
            text,
            is_error,
            approval: None,
        }
    }

    /// `/approve <id> <verdict>` from `session_key`: runs (or drops) the
    /// command and says what happened.
    pub async fn approve(
        &self,
        session_key: &str,
        id: &str,
        verdict: Verdict,
        tools: &AgentTools,
    ) -> Result<String, String> {
        let p = self.approvals.take(id, session_key)?;
        if verdict == Verdict::Deny {
            return Ok(format!(
                "Exec denied (gateway id={}, user-denied): {}",
                p.id, p.job.command
            ));
        }
        let mut not_always = String::new();
        if verdict == Verdict::AllowAlways {
            if p.every_time {
                return Err("the approval policy asks every time (tools.exec.ask: \"always\"); use allow-once".into());
            }
            let (added, kept_out) = self.approvals.allow_always(&p.agent, &p.job.command)?;
            if !added.is_empty() {
                tracing::info!(
                    "agent {}: exec allowlist now has {}",
                    p.agent,
                    added.join(", ")
                );
            }
            if !kept_out.is_empty() {
                not_always = format!(
                    "\n(Not added to the allowlist, since they run other programs: {}. They will ask again.)",
                    kept_out.join(", ")
                );
            }
        }
        let out = self
            .run_job(
                &exec::owner(&p.agent, &p.session_key),
                &p.job,
                tools.exec.timeout,
                false,
                tools.exec.yield_after,
                exec::RESULT_CHARS,
            )
            .await;
        Ok(format!(
            "Exec finished (gateway id={}, {}):{not_always}\n{}",
            p.id,
            verdict.as_str(),
            out.text
        ))
    }
}

/// `text` within `max` characters: its head and tail, with a note of what
/// was left out between them.
pub fn fit(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(80) / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(n - keep).collect();
    format!(
        "{head}\n[… {} characters left out to fit the context …]\n{tail}",
        n - 2 * keep
    )
}

/// Runs `f`, which blocks, where a worker thread of a multi-threaded
/// runtime may block (others take its tasks); elsewhere as it is.
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Runs file work on the blocking pool.
async fn blocking(
    f: impl FnOnce() -> Result<String, String> + Send + 'static,
) -> Result<String, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("the tool failed: {e}")))
}

/// Kills a command whose caller went away before it was done with it.
struct KillOnDrop(Option<std::sync::Arc<exec::Proc>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.kill();
        }
    }
}
