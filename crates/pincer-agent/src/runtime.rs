//! The agent runtime: one entry point, [`Runtime::deliver`], that takes a
//! user's message to a session of an agent and answers it. Every surface
//! (the gateway's OpenAI endpoints, `pincer chat`, later the web chat and
//! the chat apps) calls it.
//!
//! A delivery, in order:
//! 1. `/stop` aborts the session's run at once; any other command waits its
//!    turn and is answered without a model call.
//! 2. One run per session: a message that arrives while one runs is
//!    queued as `messages.queue` says (`queue`): collected with the others
//!    into one turn, run after it, or run instead of it.
//! 3. The session is found warm in memory or read once from its transcript.
//! 4. The models: the session's override, else the agent's chain; the
//!    window is the smallest of the configured one, `contextTokens` and
//!    what the server really runs (probed once a minute).
//! 5. The prompt: the agent's system prompt (lean below 32k), the history
//!    (compacted first when it no longer leaves the reserve free), the new
//!    message; old tool results trimmed; refused before any call when the
//!    message alone cannot fit.
//! 6. The call, through the router (failover, continuation), streamed to the
//!    caller as [`AgentEvent`]s; a context overflow from the server is
//!    compacted and retried, at most three times.
//! 7. The turn is appended to the transcript before the caller hears it is
//!    complete; the final text is what [`final_text`] leaves.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pincer_catalog::{
    AgentModels, Catalog, ChainError, ModelSpec, configured_refs, turn_candidates,
};
use pincer_config::{Config, QueueMode, RuntimeSettings};
use pincer_llm::cost;
use pincer_router::{AllFailed, Attempt, Router};
use pincer_sessions::{Entry, Mark, SessionError, SessionStore, Tree, TurnRecord};
use pincer_tools::exec::{RESULT_CHARS, Verdict};
use pincer_tools::{
    AgentTools, Call, Outcome, SessionsView, Toolbox, agent_layer, catalog, policy, textcall,
};
use pincer_types::{
    ChatRequest, ErrorKind, Event, FinishReason, Message, ProviderError, ReasoningEffort, Reply,
    Tool, ToolCall, ToolChoice, Usage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Overflow, RESERVE_TOKENS, estimate, trim_old_tool_results};
use crate::command::{Command, ModelArg};
use crate::compact::{self, KEEP_RECENT_TOKENS};
use crate::prompt::{LEAN_BELOW_TOKENS, PromptFacts, PromptReport, Workspace, system_prompt};
use crate::queue::{Admit, Pending, QueueSettings};
use crate::reply::{final_text, is_silent, may_be_silent};

/// Context overflows answered by compacting and trying again, per turn.
const MAX_OVERFLOW_COMPACTIONS: usize = 3;
/// How long a probed server context is trusted.
const WINDOW_TTL: Duration = Duration::from_secs(60);
/// How long the workspace files are trusted before they are read again.
const WORKSPACE_TTL: Duration = Duration::from_secs(2);
/// How long a server that refused tools is not offered them again (it may
/// load another model meanwhile).
const REFUSED_TOOLS_TTL: Duration = Duration::from_secs(600);
/// Warm sessions kept, by count and by transcript bytes.
const WARM_SESSIONS: usize = 1_024;
const WARM_BYTES: usize = 256 << 20;
/// The summary call's default time limit (OpenClaw's `timeoutSeconds`).
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(180);
/// Tool rounds per turn, and identical calls with identical results,
/// before the loop is stopped with a summary.
const MAX_TOOL_ROUNDS: usize = 25;
/// Calls run from one reply; the rest get an error result.
const MAX_CALLS_PER_ROUND: usize = 16;
const REPEAT_LIMIT: usize = 3;
/// The text OpenClaw answers when nothing brings a prompt under the window.
pub const CONTEXT_OVERFLOW_TEXT: &str = "Context overflow: prompt too large for the model. \
Try /reset (or /new) to start a fresh session, or use a larger-context model.";

/// One message to deliver.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub agent: String,
    pub session_key: String,
    /// The new messages: the user's (last) and any tool results before it.
    pub input: Vec<Message>,
    /// The conversation as the caller keeps it, when it sends one: used
    /// instead of the session's own history (still recorded in it).
    pub history: Option<Vec<Message>>,
    /// System text sent with the message (an API request's system messages).
    pub system: Vec<String>,
    /// A model for this message only (the request's `model`, `--model`).
    pub model: Option<String>,
    /// Sampling and output settings; `messages` is filled in here.
    pub request: ChatRequest,
    /// Build the agent's system prompt (off for a plain model call).
    pub agent_prompt: bool,
    /// The caller shows nothing before the end: a failure mid-answer starts
    /// again on the next model instead of continuing.
    pub whole: bool,
    /// Where the message came from (`telegram`, `webchat`…): picks the
    /// queue mode while the session is busy. `None`: a caller waiting for
    /// its own answer (an HTTP request, `pincer chat`), which queues as
    /// `followup`.
    pub channel: Option<String>,
}

/// What a delivery tells its caller while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The run began, on this session.
    Started { session_id: String },
    /// A model started answering (again after a failover).
    Model { model: String },
    /// A piece of the answer: text, reasoning, tool-call deltas, usage.
    Llm(Event),
    /// Something the user should know (a compaction, a failed one).
    Note(String),
    /// One of the agent's own tools starts (`result: None`) or has run.
    Tool(ToolEvent),
}

/// A tool call the agent runs, and its result once it has run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEvent {
    pub id: String,
    pub name: String,
    /// As the model wrote them (JSON text).
    pub arguments: String,
    pub result: Option<String>,
    pub is_error: bool,
}

/// A delivered message.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The model that answered (for a command, the session's model).
    pub spec: ModelSpec,
    /// The answer as the model gave it.
    pub reply: Reply,
    /// What the user receives (`None`: nothing, e.g. `NO_REPLY`).
    pub final_text: Option<String>,
    pub attempts: Vec<Attempt>,
    pub cost_usd: f64,
    /// The message was a command, answered without a model call.
    pub command: bool,
    pub session_id: String,
    /// Compactions done for this message.
    pub compactions: usize,
    /// The message waited for a busy session and was not answered on its
    /// own (nothing is to be sent for it).
    pub queued: Option<Queued>,
}

/// What became of a message that waited while its session was busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Answered with the others in one turn (`collect`), by the delivery
    /// that ran it.
    Collected,
    /// Dropped: the session's queue was full (`messages.queue.cap`).
    Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error("{0}")]
    Models(#[from] ChainError),
    #[error("{0}")]
    Upstream(Box<AllFailed>),
    #[error("{0}")]
    MidAnswer(Box<MidAnswer>),
    /// The message cannot fit even alone: refused before any call.
    #[error("{0}")]
    TooLarge(Overflow),
    /// The server said the prompt is too long, and compacting did not help.
    #[error("{CONTEXT_OVERFLOW_TEXT}")]
    ContextOverflow(Box<AllFailed>),
    #[error("the run was aborted")]
    Aborted,
    #[error("the client went away")]
    ClientGone,
    #[error("session {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: SessionError,
    },
}

/// An answer that broke after it began.
#[derive(Debug, thiserror::Error)]
#[error("{}", mid_answer(.model, .error, .attempts))]
pub struct MidAnswer {
    pub model: String,
    pub error: ProviderError,
    pub attempts: Vec<Attempt>,
}

fn mid_answer(model: &str, error: &ProviderError, attempts: &[Attempt]) -> String {
    let mut s = format!("{model} stopped mid-answer: {error}");
    let rescues: Vec<String> = attempts
        .iter()
        .filter(|a| a.model != model)
        .map(ToString::to_string)
        .collect();
    if !rescues.is_empty() {
        s.push_str(&format!(
            "; no other model could continue it ({})",
            rescues.join("; ")
        ));
    }
    s
}

/// An agent's runtime settings, resolved once from the config.
#[derive(Debug, Clone)]
struct AgentSetup {
    models: AgentModels,
    /// `workspace` as configured; else one under the workspace root.
    workspace: Option<PathBuf>,
    context_cap: Option<u64>,
    file_max_chars: Option<usize>,
    total_max_chars: Option<usize>,
    timezone: String,
    thinking_default: String,
    /// `params.leanPrompt`: true/false forces it, a number sets the window
    /// below which it is automatic.
    lean: Lean,
    compaction: Compaction,
    /// The agent's own `tools` over `agents.defaults.tools`.
    tools: pincer_config::ToolsConfig,
    /// Model replies with tool calls in one turn before the loop is
    /// stopped (`params.maxToolIterations`, default 25).
    max_tool_rounds: usize,
    /// The same call with the same result this many times stops the loop
    /// (`tools.loopDetection.criticalThreshold`, default 3).
    repeat_limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lean {
    Always,
    Never,
    Below(u64),
}

#[derive(Debug, Clone)]
struct Compaction {
    enabled: bool,
    reserve_tokens: u64,
    keep_recent: u64,
    model: Option<String>,
    timeout: Duration,
}

/// A session kept in memory between turns.
#[derive(Default)]
struct Warm {
    tree: Tree,
    bytes: usize,
    /// The last prompt's size as the provider counted it.
    last_prompt_tokens: Option<u64>,
    used: u64,
}

#[derive(Default)]
struct WarmCache {
    sessions: HashMap<String, Warm>,
    bytes: usize,
    clock: u64,
}

impl WarmCache {
    fn take(&mut self, id: &str) -> Option<Warm> {
        let w = self.sessions.remove(id)?;
        self.bytes -= w.bytes;
        Some(w)
    }

    fn put(&mut self, id: String, mut w: Warm) {
        self.clock += 1;
        w.used = self.clock;
        self.bytes += w.bytes;
        self.sessions.insert(id, w);
        while self.sessions.len() > WARM_SESSIONS || self.bytes > WARM_BYTES {
            let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, w)| w.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.take(&oldest);
        }
    }
}

/// A message waiting in a busy session's `collect` queue. Dropped (the
/// caller went away), it takes its message out of the queue.
struct Ticket<'r, 'c> {
    rt: &'r Runtime<'c>,
    key: String,
    n: u64,
    debounce: Duration,
}

impl Ticket<'_, '_> {
    /// Once the session is held: waits until the queue has been quiet for
    /// the debounce, then takes everything waiting as one message, or
    /// learns that an earlier delivery took this one (or that it was
    /// dropped).
    async fn batch(&self) -> Result<String, Queued> {
        loop {
            let quiet = self.with(|_, last| last.elapsed());
            match quiet {
                Some(q) if q < self.debounce => tokio::time::sleep(self.debounce - q).await,
                _ => break,
            }
        }
        let n = self.n;
        self.with(|p, _| {
            if p.holds(n) {
                p.drain(QueueMode::Collect).map(|b| b.prompt)
            } else {
                None
            }
        })
        .flatten()
        .ok_or_else(|| {
            if self.with(|p, _| p.was_dropped(n)) == Some(true) {
                Queued::Dropped
            } else {
                Queued::Collected
            }
        })
    }

    /// Runs `f` on the session's queue; an emptied queue is removed.
    fn with<T>(&self, f: impl FnOnce(&mut Pending, Instant) -> T) -> Option<T> {
        let mut queues = self.rt.queues.lock().unwrap_or_else(|e| e.into_inner());
        let (pending, last) = queues.get_mut(&self.key)?;
        let out = f(pending, *last);
        if pending.is_empty() {
            queues.remove(&self.key);
        }
        Some(out)
    }
}

impl Drop for Ticket<'_, '_> {
    fn drop(&mut self) {
        let n = self.n;
        self.with(|p, _| p.forget(n));
    }
}

/// The runtime every surface shares.
pub struct Runtime<'c> {
    config: &'c Config,
    catalog: Catalog<'c>,
    agents: Vec<AgentSetup>,
    router: Router,
    stores: HashMap<String, SessionStore>,
    warm: Mutex<WarmCache>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Messages waiting for a busy session (`collect`), and when the last
    /// one came.
    queues: Mutex<HashMap<String, (Pending, Instant)>>,
    windows: Mutex<HashMap<String, (Instant, Option<u64>)>>,
    /// Models whose server refused tools, and when: their next turns go
    /// without them for a while (the user was told once).
    refused_tools: Mutex<HashMap<String, Instant>>,
    workspaces: Mutex<HashMap<String, (Instant, Arc<Workspace>)>>,
    /// Where workspaces are by default: `<root>/workspace` for the default
    /// agent, `<root>/workspace-<id>` for the others (OpenClaw's layout).
    workspace_root: PathBuf,
    state_dir: PathBuf,
    toolbox: Toolbox,
    agent_tools: Mutex<HashMap<String, Arc<AgentTools>>>,
}

impl<'c> Runtime<'c> {
    /// The runtime for `config`'s agents, their sessions under `state_dir`.
    pub fn new(
        config: &'c Config,
        router: Router,
        state_dir: &Path,
        maintenance: pincer_sessions::Maintenance,
    ) -> Result<Runtime<'c>, AgentError> {
        let catalog = Catalog::new(&config.models);
        let mut agents = Vec::new();
        let mut stores = HashMap::new();
        for models in pincer_catalog::agents(config) {
            let store = SessionStore::open(state_dir, &models.id)
                .map_err(|source| AgentError::Store {
                    key: format!("agent:{}", models.id),
                    source,
                })?
                .with_maintenance(maintenance);
            stores.insert(models.id.clone(), store);
            agents.push(setup(config, models));
        }
        if agents.is_empty() {
            return Err(AgentError::UnknownAgent(String::new()));
        }
        Ok(Runtime {
            config,
            catalog,
            agents,
            router,
            stores,
            warm: Mutex::new(WarmCache::default()),
            locks: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            refused_tools: Mutex::new(HashMap::new()),
            workspaces: Mutex::new(HashMap::new()),
            workspace_root: state_dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            toolbox: Toolbox::new(state_dir),
            agent_tools: Mutex::new(HashMap::new()),
        })
    }

    /// Default workspaces under `state_dir` instead of the sessions' one
    /// (`pincer chat` keeps an unnamed session in a scratch folder, but the
    /// user's workspace files are still theirs).
    pub fn with_workspace_root(mut self, state_dir: &Path) -> Runtime<'c> {
        self.workspace_root = state_dir.to_path_buf();
        self.toolbox = Toolbox::new(state_dir);
        self.state_dir = state_dir.to_path_buf();
        self
    }

    /// The agent's tool settings (workspace files, exec, web), resolved once.
    fn agent_tools(&self, setup: &AgentSetup) -> Arc<AgentTools> {
        let id = &setup.models.id;
        if let Some(t) = self
            .agent_tools
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
        {
            return t;
        }
        let mut hidden = vec![self.state_dir.clone()];
        if let Some(home) = std::env::var_os("HOME") {
            hidden.push(PathBuf::from(home));
        }
        let t = Arc::new(AgentTools::new(
            &self.config.tools,
            Some(&setup.tools),
            &self.workspace_dir(setup),
            hidden,
        ));
        if let Ok(mut m) = self.agent_tools.lock() {
            m.insert(id.clone(), t.clone());
        }
        t
    }

    /// Runs one of `agent`'s tools outside a turn (`POST /tools/invoke`),
    /// under the agent's policy for its own first model. `None`: no such
    /// agent, or the tool is not one it may use.
    pub async fn run_tool(
        &self,
        agent: &str,
        session_key: &str,
        name: &str,
        args: &str,
    ) -> Option<Outcome> {
        let setup = self.setup(agent)?;
        let store = self.stores.get(&setup.models.id)?;
        let model = self.default_model(setup);
        let policy = policy::resolve(&self.config.tools, Some(&setup.tools), &model);
        if !policy.allows(name) {
            return None;
        }
        let background = policy.allows("process");
        let out = self
            .run_agent_tool(
                setup,
                store,
                session_key,
                (name, args),
                background,
                RESULT_CHARS,
            )
            .await;
        Some(out)
    }

    /// Runs one of the agent's tools for `session_key`: the one way a call
    /// reaches the toolbox, from a turn or from `/tools/invoke`.
    async fn run_agent_tool(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        session_key: &str,
        (name, args): (&str, &str),
        background: bool,
        max_chars: usize,
    ) -> Outcome {
        let view = SessionsOf {
            rt: self,
            setup,
            store,
        };
        let tools = self.agent_tools(setup);
        let main_session = self.main_session(&setup.models.id);
        let call = Call {
            agent: &setup.models.id,
            session_key,
            main_session: &main_session,
            tools: &tools,
            sessions: &view,
            background,
            max_chars,
        };
        self.toolbox.run(&call, name, args).await
    }

    /// The agent's tools for this turn on `spec`: none for a plain model
    /// call, or for a model that takes none.
    fn turn_tools(
        &self,
        setup: &AgentSetup,
        d: &Delivery,
        spec: &ModelSpec,
        window: u64,
    ) -> TurnTools {
        if !d.agent_prompt {
            return TurnTools::default();
        }
        // Unless the config chose tools, a small window keeps its room for
        // the conversation.
        if !policy::offered_on(window, &self.config.tools, &setup.tools) {
            return TurnTools::default();
        }
        let policy = policy::resolve(&self.config.tools, Some(&setup.tools), &spec.reference);
        for w in &policy.warnings {
            tracing::debug!("agent {}: {w}", setup.models.id);
        }
        let allowed = policy.allowed();
        if allowed.is_empty() {
            return TurnTools::default();
        }
        if spec.tool_call == Some(false) {
            return TurnTools {
                note: Some(format!(
                    "🔧 {} does not take tools (compat.supportsTools: false): this turn runs without them",
                    spec.reference
                )),
                ..TurnTools::default()
            };
        }
        let refused = self.refused_tools.lock().ok().and_then(|r| {
            r.get(&spec.reference)
                .filter(|at| at.elapsed() < REFUSED_TOOLS_TTL)
                .copied()
        });
        if refused.is_some() {
            return TurnTools {
                note: Some(format!(
                    "🔧 {}'s server refused tools earlier: this turn runs without them (set compat.supportsTools: false to make it lasting)",
                    spec.reference
                )),
                ..TurnTools::default()
            };
        }
        // The caller's own tools keep their names; an agent tool of the
        // same name is not offered.
        let clash = |n: &str| {
            d.request
                .tools
                .iter()
                .any(|t| t.name.eq_ignore_ascii_case(n))
        };
        let offered = catalog::definitions(allowed.into_iter().filter(|n| !clash(n)));
        TurnTools {
            names: offered.iter().map(|t| t.name.clone()).collect(),
            offered,
            note: None,
        }
    }

    /// Writes `messages` to the transcript (tool results of a cut turn).
    fn record_messages(
        &self,
        store: &SessionStore,
        s: &mut Open,
        key: &str,
        messages: &[Message],
    ) -> Result<(), AgentError> {
        let written = store
            .record_messages(key, messages)
            .map_err(|source| AgentError::Store {
                key: key.to_string(),
                source,
            })?;
        self.grew(s, store, written);
        Ok(())
    }

    fn workspace_dir(&self, setup: &AgentSetup) -> PathBuf {
        match &setup.workspace {
            Some(w) => w.clone(),
            None if setup.models.is_default => self.workspace_root.join("workspace"),
            None => self
                .workspace_root
                .join(format!("workspace-{}", setup.models.id)),
        }
    }

    pub fn catalog(&self) -> &Catalog<'c> {
        &self.catalog
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Every agent's models, the default first-listed.
    pub fn agents(&self) -> impl Iterator<Item = &AgentModels> {
        self.agents.iter().map(|a| &a.models)
    }

    pub fn agent(&self, id: &str) -> Option<&AgentModels> {
        self.setup(id).map(|a| &a.models)
    }

    /// `agent`'s main session key (`session.mainKey`).
    pub fn main_session(&self, agent: &str) -> String {
        self.config.session.main_session(agent)
    }

    pub fn default_agent(&self) -> &AgentModels {
        self.agents
            .iter()
            .find(|a| a.models.is_default)
            .map_or(&self.agents[0].models, |a| &a.models)
    }

    /// The session store of each agent.
    pub fn stores(&self) -> &HashMap<String, SessionStore> {
        &self.stores
    }

    fn setup(&self, id: &str) -> Option<&AgentSetup> {
        self.agents
            .iter()
            .find(|a| a.models.id.eq_ignore_ascii_case(id))
    }

    /// Writes every session index whose totals changed.
    pub fn flush(&self) {
        for (agent, store) in &self.stores {
            if let Err(e) = store.flush() {
                tracing::error!("sessions of agent {agent}: {e}");
            }
        }
    }

    fn session_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Drop the locks nobody holds, so the map stays small.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Takes the session for `d`: at once when it is free; else as the
    /// queue mode says (see `queue`). Returns the guard and, for a message
    /// that waited in `collect`, the ticket it waited with.
    async fn take_session<'r>(
        &'r self,
        d: &Delivery,
        text: &str,
        command: bool,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Option<Ticket<'r, 'c>>), Queued> {
        let lock = self.session_lock(&d.session_key);
        let busy = match lock.clone().try_lock_owned() {
            Ok(guard) => return Ok((guard, None)),
            Err(_) => lock,
        };
        let settings = QueueSettings::resolve(&self.config.messages.queue, d.channel.as_deref());
        let mut ticket = None;
        if !command {
            match settings.mode {
                QueueMode::Interrupt => {
                    if let Some(token) = self.active_run(&d.session_key) {
                        token.cancel();
                    }
                }
                QueueMode::Collect => {
                    let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                    let (pending, last) = queues
                        .entry(d.session_key.clone())
                        .or_insert_with(|| (Pending::default(), Instant::now()));
                    *last = Instant::now();
                    match pending.push(text, &settings) {
                        Admit::Queued(n) => {
                            ticket = Some(Ticket {
                                rt: self,
                                key: d.session_key.clone(),
                                n,
                                debounce: settings.debounce,
                            });
                        }
                        Admit::Refused => {
                            tracing::warn!(
                                "session {}: queue full ({} waiting), message dropped",
                                d.session_key,
                                settings.cap
                            );
                            return Err(Queued::Dropped);
                        }
                    }
                }
                QueueMode::Followup | QueueMode::Steer => {}
            }
        }
        Ok((busy.lock_owned().await, ticket))
    }

    /// Aborts the run under way in a session (as `/stop` does); whether
    /// there was one.
    pub fn abort(&self, session_key: &str) -> bool {
        match self.active_run(session_key) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn active_run(&self, key: &str) -> Option<CancellationToken> {
        self.active.lock().ok().and_then(|a| a.get(key).cloned())
    }

    /// Delivers `d` and answers it, telling `events` as it goes. The turn
    /// is in the transcript before this returns.
    pub async fn deliver(
        &self,
        d: Delivery,
        events: mpsc::Sender<AgentEvent>,
    ) -> Result<Delivered, AgentError> {
        let setup = self
            .setup(&d.agent)
            .ok_or_else(|| AgentError::UnknownAgent(d.agent.clone()))?;
        let store = self
            .stores
            .get(&setup.models.id)
            .ok_or_else(|| AgentError::UnknownAgent(d.agent.clone()))?;
        let text = match d.input.last() {
            Some(Message::User { text }) => text.trim().to_string(),
            _ => String::new(),
        };
        let command = crate::command::parse(&text);
        if command == Some(Command::Stop) {
            if let Some(token) = self.active_run(&d.session_key) {
                token.cancel();
            }
            let spec = self.candidates(setup, None, None)?.remove(0);
            return Ok(self
                .said(spec, "⚙️ Agent was aborted.".into(), String::new(), &events)
                .await);
        }
        let mut d = d;
        let _turn = match self.take_session(&d, &text, command.is_some()).await {
            Ok((guard, None)) => guard,
            Ok((guard, Some(ticket))) => match ticket.batch().await {
                Ok(prompt) => {
                    if let Some(last) = d.input.last_mut() {
                        *last = Message::user(prompt);
                    }
                    guard
                }
                Err(queued) => return self.not_answered(setup, queued),
            },
            Err(queued) => return self.not_answered(setup, queued),
        };
        let mut s = self.open(store, &d.session_key)?;
        let _ = events
            .send(AgentEvent::Started {
                session_id: s.id.clone(),
            })
            .await;
        let result = match command {
            Some(c) => self.command(setup, store, &d, &mut s, c, &events).await,
            None => self.turn(setup, store, &d, &mut s, &events).await,
        };
        self.close(s);
        result
    }

    /// The result for a message another delivery answered, or dropped.
    fn not_answered(&self, setup: &AgentSetup, queued: Queued) -> Result<Delivered, AgentError> {
        Ok(Delivered {
            spec: self.candidates(setup, None, None)?.remove(0),
            reply: Reply::default(),
            final_text: None,
            attempts: Vec::new(),
            cost_usd: 0.0,
            command: false,
            session_id: String::new(),
            compactions: 0,
            queued: Some(queued),
        })
    }

    fn open(&self, store: &SessionStore, key: &str) -> Result<Open, AgentError> {
        let store_err = |source| AgentError::Store {
            key: key.to_string(),
            source,
        };
        let Some(entry) = store.get(key) else {
            return Ok(Open {
                key: key.to_string(),
                id: String::new(),
                warm: Warm::default(),
                entry: None,
            });
        };
        let id = entry.session_id.clone();
        let cached = self.warm.lock().ok().and_then(|mut w| w.take(&id));
        let warm = match cached {
            Some(w) => w,
            None => {
                let tree = store.tree(&id).map_err(store_err)?;
                if tree.skipped > 0 {
                    tracing::warn!(
                        "session {key}: {} damaged transcript line(s) skipped",
                        tree.skipped
                    );
                }
                let bytes = tree_bytes(&tree);
                Warm {
                    tree,
                    bytes,
                    ..Warm::default()
                }
            }
        };
        Ok(Open {
            key: key.to_string(),
            id,
            warm,
            entry: Some(entry),
        })
    }

    fn close(&self, s: Open) {
        if s.id.is_empty() {
            return;
        }
        if let Ok(mut w) = self.warm.lock() {
            w.put(s.id, s.warm);
        }
    }

    /// The models for a turn: `picked`, else the session's override, else
    /// the agent's chain.
    fn candidates(
        &self,
        setup: &AgentSetup,
        picked: Option<&str>,
        tree: Option<&Tree>,
    ) -> Result<Vec<ModelSpec>, AgentError> {
        let session = tree.and_then(Tree::model).map(|(p, m)| format!("{p}/{m}"));
        let picked = picked.map(str::to_string).or(session);
        let (specs, bad) = turn_candidates(&self.catalog, &setup.models, picked.as_deref())?;
        for (input, e) in bad {
            tracing::debug!("agent {}: skipping {input}: {e}", setup.models.id);
        }
        Ok(specs)
    }

    /// The window `spec` really has: the configured one, capped by the
    /// agent's `contextTokens` and by what its server runs.
    async fn window(&self, setup: &AgentSetup, spec: &ModelSpec) -> u64 {
        let mut window = spec.budget();
        if let Some(cap) = setup.context_cap {
            window = window.min(cap);
        }
        if spec.is_embedded() || !spec.local {
            return window;
        }
        let cached = self
            .windows
            .lock()
            .ok()
            .and_then(|w| w.get(&spec.reference).copied())
            .filter(|(at, _)| at.elapsed() < WINDOW_TTL);
        let served = match cached {
            Some((_, n)) => n,
            None => {
                let report = self
                    .router
                    .providers()
                    .probe(
                        &self.catalog,
                        spec,
                        &setup.models.id,
                        Duration::from_secs(2),
                    )
                    .await;
                let n = report.and_then(|r| r.context_limit);
                if let Some(n) = n
                    && n < window
                {
                    tracing::info!(
                        "{}: the server runs a {n}-token context, smaller than the configured {window}; using {n}",
                        spec.reference
                    );
                }
                self.remember_window(&spec.reference, n);
                n
            }
        };
        served.map_or(window, |n| window.min(n))
    }

    fn remember_window(&self, model: &str, n: Option<u64>) {
        if let Ok(mut w) = self.windows.lock() {
            w.insert(model.to_string(), (Instant::now(), n));
        }
    }

    fn workspace(&self, setup: &AgentSetup) -> Arc<Workspace> {
        let id = &setup.models.id;
        if let Some((at, w)) = self.workspaces.lock().ok().and_then(|w| w.get(id).cloned())
            && at.elapsed() < WORKSPACE_TTL
        {
            return w;
        }
        let w = Arc::new(Workspace::load(&self.workspace_dir(setup)));
        for (name, why) in &w.unreadable {
            tracing::warn!(
                "agent {id}: cannot read {} in its workspace: {why}; the prompt goes without it",
                name
            );
        }
        if let Ok(mut ws) = self.workspaces.lock() {
            ws.insert(id.clone(), (Instant::now(), w.clone()));
        }
        w
    }

    fn system(
        &self,
        setup: &AgentSetup,
        d: &Delivery,
        spec: &ModelSpec,
        window: u64,
        thinking: &str,
        tools: Option<&TurnTools>,
    ) -> (Vec<Message>, PromptReport) {
        if !d.agent_prompt {
            let report = PromptReport::default();
            return (d.system.iter().map(Message::system).collect(), report);
        }
        let lean = match setup.lean {
            Lean::Always => true,
            Lean::Never => false,
            Lean::Below(n) => window < n,
        };
        let workspace = self.workspace(setup);
        let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let default_model = self.default_model(setup);
        let facts = PromptFacts {
            agent: &setup.models.id,
            model: &spec.reference,
            default_model: &default_model,
            lean,
            reasoning_tags: spec.reasoning && spec.local,
            thinking,
            timezone: &setup.timezone,
            date: date.get(..10).unwrap_or(&date),
            file_max_chars: setup.file_max_chars,
            total_max_chars: setup.total_max_chars,
            extra: &d.system,
            tools: &[],
        };
        let computed;
        let turn_tools = match tools {
            Some(t) => t,
            None => {
                computed = self.turn_tools(setup, d, spec, window);
                &computed
            }
        };
        let tools: Vec<(&str, &str)> = turn_tools
            .offered
            .iter()
            .filter_map(|t| catalog::def(&t.name))
            .map(|def| (def.name, def.summary))
            .collect();
        let facts = PromptFacts {
            tools: &tools,
            ..facts
        };
        let (text, report) = system_prompt(&workspace, &facts);
        (vec![Message::system(text)], report)
    }

    async fn turn(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        d: &Delivery,
        s: &mut Open,
        events: &mpsc::Sender<AgentEvent>,
    ) -> Result<Delivered, AgentError> {
        let candidates = self.candidates(setup, d.model.as_deref(), Some(&s.warm.tree))?;
        let spec = candidates[0].clone();
        let thinking = s
            .warm
            .tree
            .thinking_level()
            .unwrap_or_else(|| setup.thinking_default.clone());
        let mut req = d.request.clone();
        if req.reasoning_effort.is_none() {
            req.reasoning_effort = effort(&thinking);
        }
        let window = self.window(setup, &spec).await;
        let budget = Budget {
            window,
            output: req.output_cap(spec.max_tokens),
            reserve_tokens: setup.compaction.reserve_tokens,
        };
        let tools = self.turn_tools(setup, d, &spec, window);
        let (system, _) = self.system(setup, d, &spec, window, &thinking, Some(&tools));
        let server_history = d.history.is_none();
        let history_now = |s: &Open| d.history.clone().unwrap_or_else(|| s.warm.tree.context());
        let mut history = history_now(s);
        let mut compactions = 0;
        // Compact before the turn when the conversation leaves less than
        // the reserve free (by the provider's count when there is one).
        if server_history && setup.compaction.enabled {
            let estimated: u64 = system
                .iter()
                .chain(&history)
                .chain(&d.input)
                .map(estimate)
                .sum();
            let tokens = estimated.max(s.warm.last_prompt_tokens.unwrap_or(0));
            if budget.should_compact(tokens) {
                match self
                    .compact(setup, store, s, &candidates, budget, None)
                    .await
                {
                    Ok(Some(done)) => {
                        compactions += 1;
                        history = history_now(s);
                        note(
                            events,
                            format!(
                                "🧹 Auto-compaction complete ({} → {} tokens)",
                                done.0, done.1
                            ),
                        )
                        .await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        note(events, format!(
                                "Compaction failed: {e}; the oldest messages are left out of this turn instead (the transcript keeps them)"
                            )).await;
                    }
                }
            }
        }
        let token = CancellationToken::new();
        let _active = ActiveRun::start(self, &d.session_key, &token);
        if let Some(n) = &tools.note {
            note(events, n.clone()).await;
        }
        let client_tools = d.request.tools.clone();
        let client_names: HashSet<String> = client_tools.iter().map(|t| t.name.clone()).collect();
        // The messages new in this turn: the input, then each round's
        // assistant message and tool results.
        let mut turn_msgs = d.input.clone();
        let mut recorded = 0;
        let mut rounds = 0usize;
        let mut total = Usage::default();
        let mut usd = 0.0;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut stop: Option<String> = None;
        let mut pending: Vec<String> = Vec::new();
        let mut refused_tools = false;
        let mut refusal_note: Option<String> = None;
        let mut budget = budget;
        let result_chars = (budget.window as usize * 4 * 3 / 10).clamp(2_000, RESULT_CHARS);
        let accepts = |n: &str, args: &serde_json::Value| {
            tools.names.contains(n) && catalog::check(n, args).is_ok()
        };
        let outcome: Result<Answer, AgentError> = loop {
            let offering = stop.is_none() && !refused_tools && !tools.offered.is_empty();
            req.tools = client_tools.clone();
            if !refused_tools {
                // Still defined for the summary round: the conversation
                // holds calls, and some APIs refuse those without tools.
                req.tools.extend(tools.offered.iter().cloned());
            }
            if stop.is_some() && !req.tools.is_empty() {
                req.tool_choice = Some(ToolChoice::None);
            } else if refused_tools && client_tools.is_empty() {
                req.tool_choice = None;
            }
            let ctl = StepCtl {
                callers: (!tools.names.is_empty()).then_some(&client_names),
                hold_end: tools.holds_end(),
                separate: rounds > 0,
                promote: offering
                    .then_some(&accepts as &(dyn Fn(&str, &serde_json::Value) -> bool + Sync)),
            };
            let answer = loop {
                let mut input = turn_msgs.clone();
                trim_old_tool_results(&mut input);
                let messages = match fit(&system, history.clone(), &input, budget, &candidates) {
                    Ok(m) => m,
                    Err(e) => break Err(AgentError::TooLarge(e)),
                };
                req.messages = messages;
                let answer = self
                    .call(
                        setup,
                        &candidates,
                        &d.session_key,
                        &req,
                        d.whole,
                        &token,
                        events,
                        &ctl,
                    )
                    .await;
                match answer {
                    Err(AgentError::Upstream(f))
                        if overflowed(&f)
                            && server_history
                            && setup.compaction.enabled
                            && compactions < MAX_OVERFLOW_COMPACTIONS =>
                    {
                        // The server's own limit, when it says one, is the
                        // window from now on (for this turn and the next).
                        let limit = f
                            .last
                            .as_ref()
                            .and_then(|e| e.overflow)
                            .and_then(|o| o.limit);
                        if let Some(limit) = limit {
                            self.remember_window(&spec.reference, Some(limit));
                            budget.window = budget.window.min(limit);
                        }
                        match self
                            .compact(setup, store, s, &candidates, budget, None)
                            .await
                        {
                            Ok(Some(done)) => {
                                compactions += 1;
                                history = history_now(s);
                                // The rounds already recorded are in the
                                // history now.
                                turn_msgs.drain(..recorded);
                                recorded = 0;
                                note(events, format!(
                                    "🧹 The prompt was too long for {}: compacted ({} → {} tokens) and trying again",
                                    spec.reference, done.0, done.1
                                )).await;
                            }
                            Ok(None) => break Err(AgentError::ContextOverflow(f)),
                            Err(e) => {
                                note(events, format!("Compaction failed: {e}")).await;
                                break Err(AgentError::ContextOverflow(f));
                            }
                        }
                    }
                    Err(AgentError::Upstream(f)) if overflowed(&f) => {
                        break Err(AgentError::ContextOverflow(f));
                    }
                    Err(AgentError::Upstream(f))
                        if offering && !refused_tools && refuses_tools(&f) =>
                    {
                        // A model that cannot take tools answers without them.
                        refused_tools = true;
                        req.tools = client_tools.clone();
                        req.tool_choice = None;
                        let why = format!(
                            "🔧 {} does not take tools ({}); answering without them. Set compat.supportsTools: false for this model to skip the attempt.",
                            spec.reference,
                            f.last.as_ref().map_or(String::new(), |e| e
                                .message
                                .chars()
                                .take(160)
                                .collect())
                        );
                        note(events, why.clone()).await;
                        // A surprise the user should act on: also told in
                        // the answer, where chat apps and HTTP callers see
                        // it, once: the next turns skip the attempt.
                        refusal_note = Some(why);
                        if let Ok(mut r) = self.refused_tools.lock() {
                            r.insert(spec.reference.clone(), Instant::now());
                        }
                    }
                    Err(AgentError::Upstream(f))
                        if req.reasoning_effort.is_some() && refuses_thinking(&f) =>
                    {
                        // A model that cannot think answers without it
                        // (Ollama refuses `think` for such a model).
                        req.reasoning_effort = None;
                        note(events, format!(
                            "💭 {} does not think on request; answering without reasoning. Set reasoning: false for this model to skip the attempt.",
                            spec.reference
                        )).await;
                    }
                    other => break other,
                }
            };
            let offering = offering && !refused_tools;
            // A message refused before any call is not a turn; later in
            // one, the results so far are kept.
            if let Err(AgentError::TooLarge(e)) = answer {
                self.record_messages(store, s, &d.session_key, &turn_msgs[recorded..])?;
                break Err(AgentError::TooLarge(e));
            }
            let mut answer = answer;
            // A call printed as text, to a tool this turn offered, runs.
            if let Ok(a) = &mut answer
                && offering
                && a.reply.tool_calls.is_empty()
                && let Some(calls) = textcall::promote(&a.reply.text, &accepts)
            {
                a.reply.tool_calls = calls
                    .into_iter()
                    .map(|(name, arguments)| ToolCall {
                        id: call_id(),
                        name,
                        arguments,
                    })
                    .collect();
                a.reply.text.clear();
                // A reply cut by the output limit stays cut: its calls are
                // answered with an error below, not run.
                if a.reply.finish != Some(FinishReason::Length) {
                    a.reply.finish = Some(FinishReason::ToolCalls);
                }
            }
            // Every round goes into the transcript, failed ones with why.
            let (model, reply, attempts, error) = match &answer {
                Ok(a) => (a.spec.clone(), a.reply.clone(), a.attempts.clone(), None),
                Err(e) => (
                    spec.clone(),
                    Reply::default(),
                    attempts_of(e),
                    Some(e.to_string()),
                ),
            };
            let step_usd = cost(&model, &reply.usage);
            usd += step_usd;
            total.add(&reply.usage);
            let told: Vec<String> = attempts.iter().map(Attempt::told).collect();
            let record = TurnRecord {
                input: &turn_msgs[recorded..],
                model: &model.reference,
                api: model.api.as_str(),
                reply: &reply,
                cost_usd: step_usd,
                attempts: &told,
                error,
                continues: rounds > 0,
            };
            let written =
                store
                    .record(&d.session_key, &record)
                    .map_err(|source| AgentError::Store {
                        key: d.session_key.clone(),
                        source,
                    })?;
            self.grew(s, store, written);
            if reply.usage.prompt_tokens() > 0 {
                s.warm.last_prompt_tokens = Some(reply.usage.prompt_tokens() + reply.usage.output);
            }
            let a = match answer {
                Ok(a) => a,
                Err(e) => break Err(e),
            };
            let agent_calls = offering
                && a.reply
                    .tool_calls
                    .iter()
                    .any(|c| !client_names.contains(&c.name));
            if !agent_calls {
                // Only the caller's own calls go back to it; any other the
                // model made after the loop was stopped is dropped.
                let mut a = a;
                let before = a.reply.tool_calls.len();
                a.reply
                    .tool_calls
                    .retain(|c| client_names.contains(&c.name));
                if before > 0 && a.reply.tool_calls.is_empty() {
                    a.reply.finish = Some(FinishReason::Stop);
                }
                break Ok(a);
            }
            // Run the agent's calls, in order; the caller's own go back to it.
            let truncated = a.reply.finish == Some(FinishReason::Length);
            let mut results = Vec::new();
            for (n, c) in a
                .reply
                .tool_calls
                .iter()
                .filter(|c| !client_names.contains(&c.name))
                .enumerate()
            {
                let _ = events
                    .send(AgentEvent::Tool(ToolEvent {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                        result: None,
                        is_error: false,
                    }))
                    .await;
                let out = if n >= MAX_CALLS_PER_ROUND {
                    Outcome::error(format!(
                        "Tool call \"{}\" was not executed: one reply may make at most {MAX_CALLS_PER_ROUND} calls.",
                        c.name
                    ))
                } else if truncated {
                    Outcome::error(format!(
                        "Tool call \"{}\" was not executed: the response hit the output token limit, so its arguments may be cut. Re-issue the tool call with complete arguments.",
                        c.name
                    ))
                } else if !tools.names.contains(&c.name) {
                    Outcome::error(format!(
                        "Tool {} not found. Available tools: {}.",
                        c.name,
                        tools
                            .offered
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                } else {
                    let run = self.run_agent_tool(
                        setup,
                        store,
                        &d.session_key,
                        (&c.name, &c.arguments),
                        tools.names.contains("process"),
                        result_chars,
                    );
                    tokio::select! {
                        out = run => out,
                        () = token.cancelled() => Outcome::error("The run was aborted while this tool ran."),
                    }
                };
                // Tools cut their own content to fit; anything else longer
                // keeps its head and tail (and so the end marker).
                let text = pincer_tools::fit(&out.text, result_chars + 400);
                if let Some(p) = &out.approval {
                    let prompt = pincer_tools::exec::approval_text(p);
                    if !pending.contains(&prompt) {
                        pending.push(prompt);
                    }
                }
                // The same call with the same outcome (marker ids aside).
                let key = format!(
                    "{}\u{0}{}\u{0}{}",
                    c.name,
                    c.arguments,
                    without_marker_ids(&text)
                );
                *seen.entry(key).or_default() += 1;
                let _ = events
                    .send(AgentEvent::Tool(ToolEvent {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                        result: Some(text.clone()),
                        is_error: out.is_error,
                    }))
                    .await;
                results.push(Message::Tool {
                    call_id: c.id.clone(),
                    name: c.name.clone(),
                    content: text,
                    is_error: out.is_error,
                });
            }
            // The assistant message is in the transcript already.
            turn_msgs.push(a.reply.as_message());
            recorded = turn_msgs.len();
            if token.is_cancelled() {
                turn_msgs.extend(results);
                let _ = self.record_messages(store, s, &d.session_key, &turn_msgs[recorded..]);
                break Err(AgentError::Aborted);
            }
            turn_msgs.extend(results);
            rounds += 1;
            // A forced choice (`required`, one tool) is for the first
            // round: forced every round, a model could never answer.
            req.tool_choice = None;
            let client_calls = a
                .reply
                .tool_calls
                .iter()
                .any(|c| client_names.contains(&c.name));
            if client_calls {
                // The caller runs its own tools: the turn ends with its calls.
                let _ = self.record_messages(store, s, &d.session_key, &turn_msgs[recorded..]);
                let mut a = a;
                a.reply
                    .tool_calls
                    .retain(|c| client_names.contains(&c.name));
                a.reply.text.clear();
                break Ok(a);
            }
            let repeated = seen.values().copied().max().unwrap_or(0);
            if rounds >= setup.max_tool_rounds {
                stop = Some(format!(
                    "the turn reached {} tool rounds (params.maxToolIterations)",
                    setup.max_tool_rounds
                ));
            } else if repeated >= setup.repeat_limit {
                stop = Some(format!(
                    "the same tool call gave the same result {repeated} times"
                ));
            }
            if let Some(why) = &stop {
                note(
                    events,
                    format!("🛑 Tool loop stopped: {why}. Asking the model for a summary."),
                )
                .await;
                turn_msgs.push(Message::user(format!(
                    "[Pincer] Stop using tools now: {why}. Summarize what you did and found so far, and answer the user."
                )));
            }
        };
        let mut answered = outcome?;
        answered.reply.usage = total;
        // Told after the answer, in the stream as in the final text.
        let mut told: Vec<String> = refusal_note.into_iter().collect();
        if let Some(why) = &stop {
            told.push(format!("⚠️ Tool loop stopped: {why}."));
        }
        told.extend(pending);
        let mut final_text = shaped(s, &answered, usd);
        if !told.is_empty() {
            let extra = told.join("\n\n");
            let _ = events
                .send(AgentEvent::Llm(Event::Text {
                    delta: format!("\n\n{extra}"),
                }))
                .await;
            final_text = Some(match final_text {
                Some(t) => format!("{t}\n\n{extra}"),
                None => extra,
            });
        }
        if tools.holds_end() {
            let _ = events
                .send(AgentEvent::Llm(Event::Usage { usage: total }))
                .await;
            let finish = answered.reply.finish.clone().unwrap_or(FinishReason::Stop);
            let _ = events.send(AgentEvent::Llm(Event::Done { finish })).await;
        }
        Ok(Delivered {
            final_text,
            spec: answered.spec,
            reply: answered.reply,
            attempts: answered.attempts,
            cost_usd: usd,
            command: false,
            session_id: s.id.clone(),
            compactions,
            queued: None,
        })
    }

    /// Adds entries just written to the warm session.
    fn grew(&self, s: &mut Open, store: &SessionStore, written: Vec<Entry>) {
        if s.id.is_empty()
            && let Some(e) = store.get(&s.key)
        {
            s.id = e.session_id;
        }
        for e in written {
            s.warm.bytes += entry_bytes(&e);
            s.warm.tree.leaf = Some(e.id.clone());
            s.warm.tree.entries.push(e);
        }
    }

    /// One model answer, streamed to `events`.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        setup: &AgentSetup,
        candidates: &[ModelSpec],
        key: &str,
        req: &ChatRequest,
        whole: bool,
        token: &CancellationToken,
        events: &mpsc::Sender<AgentEvent>,
        ctl: &StepCtl<'_>,
    ) -> Result<Answer, AgentError> {
        let agent = &setup.models.id;
        let mut filter = Filter::new(ctl);
        if whole {
            let done = tokio::select! {
                done = self.router.complete(&self.catalog, candidates, agent, key, req) => done,
                () = token.cancelled() => return Err(AgentError::Aborted),
                () = events.closed() => return Err(AgentError::ClientGone),
            };
            let done = done.map_err(|f| AgentError::Upstream(Box::new(f)))?;
            return Ok(Answer {
                spec: done.spec,
                reply: done.reply,
                attempts: done.attempts,
            });
        }
        let started = tokio::select! {
            a = self.router.start(&self.catalog, candidates, agent, key, req) => a,
            () = token.cancelled() => return Err(AgentError::Aborted),
            () = events.closed() => return Err(AgentError::ClientGone),
        };
        let mut a = started.map_err(|f| AgentError::Upstream(Box::new(f)))?;
        let _ = events
            .send(AgentEvent::Model {
                model: a.spec.reference.clone(),
            })
            .await;
        let mut reply = Reply::default();
        // Text that may still turn out to be `NO_REPLY` is held back, so a
        // streaming surface never shows the silent-reply token.
        let mut held: Option<Vec<Event>> = Some(Vec::new());
        loop {
            let item = tokio::select! {
                item = a.next() => item,
                () = token.cancelled() => return Err(AgentError::Aborted),
                () = events.closed() => return Err(AgentError::ClientGone),
            };
            match item {
                None => break,
                Some(Ok(event)) => {
                    reply.apply(&event);
                    // Text that may still be a call printed as text is held
                    // too: a call is not shown as an answer.
                    let maybe_call = ctl.promote.is_some() && textcall::may_be_call(&reply.text);
                    let out = match (&mut held, &event) {
                        (Some(h), Event::Text { .. })
                            if may_be_silent(&reply.text) || maybe_call =>
                        {
                            h.push(event);
                            continue;
                        }
                        // Past the token's shape, or something else comes
                        // while the text is not the whole token: the held
                        // text goes first, in order.
                        (Some(_), Event::Text { .. }) => {
                            let mut out = held.take().unwrap_or_default();
                            out.push(event);
                            out
                        }
                        (Some(h), _) if !h.is_empty() && !is_silent(&reply.text) && !maybe_call => {
                            let mut out = held.take().unwrap_or_default();
                            out.push(event);
                            out
                        }
                        _ => vec![event],
                    };
                    for e in out.into_iter().flat_map(|e| filter.pass(e)) {
                        if events.send(AgentEvent::Llm(e)).await.is_err() {
                            return Err(AgentError::ClientGone);
                        }
                    }
                }
                Some(Err(error)) => {
                    return Err(AgentError::MidAnswer(Box::new(MidAnswer {
                        model: a.stopped_model().to_string(),
                        error,
                        attempts: a.attempts.clone(),
                    })));
                }
            }
        }
        // Held text that was not the silent token (or a call) after all
        // goes out now.
        let promoted = ctl
            .promote
            .is_some_and(|accepts| textcall::promote(&reply.text, accepts).is_some());
        if let Some(h) = held
            && !is_silent(&reply.text)
            && !promoted
        {
            for e in h.into_iter().flat_map(|e| filter.pass(e)) {
                let _ = events.send(AgentEvent::Llm(e)).await;
            }
        }
        Ok(Answer {
            spec: a.spec.clone(),
            reply,
            attempts: a.attempts.clone(),
        })
    }

    /// Summarises the older part of `s` into a `compaction` entry. Returns
    /// the estimated tokens before and after, or `None` when there was
    /// nothing to summarise; on failure the transcript is untouched.
    async fn compact(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        s: &mut Open,
        candidates: &[ModelSpec],
        budget: Budget,
        focus: Option<&str>,
    ) -> Result<Option<(u64, u64)>, String> {
        let keep_recent = setup.compaction.keep_recent.min(budget.window / 8).max(1);
        let branch = s.warm.tree.branch();
        let Some(cut) = compact::plan(&branch, keep_recent) else {
            return Ok(None);
        };
        drop(branch);
        let summarisers = match &setup.compaction.model {
            Some(m) => self
                .candidates(setup, Some(m), None)
                .map_err(|e| format!("compaction.model: {e}"))?,
            None => candidates.to_vec(),
        };
        let spec = &summarisers[0];
        let window = self.window(setup, spec).await;
        let reserve = Budget {
            window,
            output: 0,
            reserve_tokens: setup.compaction.reserve_tokens,
        }
        .reserve();
        // The summary and the tail must leave room: on a small window each
        // gets an eighth at most, or a compaction would not make room.
        let max_tokens = (reserve * 4 / 5).min(window / 16).max(128);
        let room = window.saturating_sub(max_tokens);
        let stages = compact::stages(&cut, room, focus);
        let work = async {
            let mut summary = cut.previous_summary.clone();
            for lines in &stages {
                let req = compact::request(lines, summary.as_deref(), max_tokens);
                let done = self
                    .router
                    .complete(&self.catalog, &summarisers, &setup.models.id, &s.key, &req)
                    .await
                    .map_err(|f| f.to_string())?;
                let text = final_text(&done.reply.text)
                    .ok_or_else(|| format!("{} wrote an empty summary", done.spec.reference))?;
                summary = Some(text);
            }
            summary.ok_or_else(|| "nothing to summarise".to_string())
        };
        let summary = tokio::time::timeout(setup.compaction.timeout, work)
            .await
            .map_err(|_| {
                format!(
                    "the summary took longer than {} s (compaction.timeoutSeconds)",
                    setup.compaction.timeout.as_secs()
                )
            })??;
        let after = estimate(&Message::user(summary.clone())) + cut.tokens_kept;
        let mark = Mark::Compaction {
            summary,
            first_kept_entry_id: Some(cut.first_kept_entry_id.clone()),
            tokens_before: cut.tokens_before,
        };
        let entry = store.mark(&s.key, &mark).map_err(|e| e.to_string())?;
        self.grew(s, store, vec![entry]);
        s.warm.last_prompt_tokens = None;
        Ok(Some((cut.tokens_before, after)))
    }

    /// A reply that is not a model's (a command's acknowledgement), told to
    /// `events` as a model's text would be.
    async fn said(
        &self,
        spec: ModelSpec,
        text: String,
        session_id: String,
        events: &mpsc::Sender<AgentEvent>,
    ) -> Delivered {
        let _ = events
            .send(AgentEvent::Model {
                model: spec.reference.clone(),
            })
            .await;
        let _ = events
            .send(AgentEvent::Llm(Event::Text {
                delta: text.clone(),
            }))
            .await;
        Delivered {
            spec,
            reply: Reply {
                text: text.clone(),
                ..Reply::default()
            },
            final_text: Some(text),
            attempts: Vec::new(),
            cost_usd: 0.0,
            command: true,
            session_id,
            compactions: 0,
            queued: None,
        }
    }

    async fn command(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        d: &Delivery,
        s: &mut Open,
        command: Command,
        events: &mpsc::Sender<AgentEvent>,
    ) -> Result<Delivered, AgentError> {
        // A session whose model can no longer be used still takes commands
        // (`/new`, `/model` are how the user gets out of it).
        let current = self
            .candidates(setup, d.model.as_deref(), Some(&s.warm.tree))
            .or_else(|_| self.candidates(setup, None, None))?;
        let spec = current[0].clone();
        let mut compactions = 0;
        let text = match command {
            Command::New { model } => self.new_session(setup, store, s, model.as_deref())?,
            Command::Reset => self.new_session(setup, store, s, None)?,
            Command::Stop => "⚙️ Agent was aborted.".into(),
            Command::Compact { instructions } => {
                let window = self.window(setup, &spec).await;
                let budget = Budget {
                    window,
                    output: d.request.output_cap(spec.max_tokens),
                    reserve_tokens: setup.compaction.reserve_tokens,
                };
                let label = match self
                    .compact(setup, store, s, &current, budget, instructions.as_deref())
                    .await
                {
                    Ok(Some((before, after))) => {
                        compactions += 1;
                        format!("Compacted ({} → {})", short(before), short(after))
                    }
                    Ok(None) => "Compaction skipped: nothing to compact yet".into(),
                    Err(e) => format!("Compaction failed: {e}"),
                };
                let used = self.context_tokens(setup, d, s, &spec, window);
                format!("⚙️ {label} • {}", context_short(used, window))
            }
            Command::Model(arg) => self.model_command(setup, store, s, arg, &spec).await?,
            Command::Think { level } => match level {
                None => format!(
                    "Current thinking level: {}.",
                    s.warm
                        .tree
                        .thinking_level()
                        .unwrap_or_else(|| setup.thinking_default.clone())
                ),
                Some(level) => {
                    let mark = Mark::ThinkingLevel(level.clone());
                    self.mark(store, s, &mark)?;
                    if level == "off" {
                        "Thinking disabled.".into()
                    } else {
                        format!("Thinking level set to {level}.")
                    }
                }
            },
            Command::Status => {
                let window = self.window(setup, &spec).await;
                self.status(setup, d, s, &spec, window)
            }
            Command::Context { .. } => {
                let window = self.window(setup, &spec).await;
                self.context_report(setup, d, s, &spec, window)
            }
            Command::Usage { mode } => {
                // Bare `/usage` cycles off → tokens → full → off.
                let mode = mode.unwrap_or_else(|| {
                    match session_field(s, USAGE_FIELD).as_deref() {
                        Some("tokens") => "full",
                        Some("full") => "off",
                        _ => "tokens",
                    }
                    .into()
                });
                self.set_field(store, s, USAGE_FIELD, &mode)?;
                format!("⚙️ Usage footer: {mode}.")
            }
            Command::Reasoning { mode: None } => format!(
                "Reasoning visibility: {}.",
                session_field(s, REASONING_FIELD).unwrap_or_else(|| "off".into())
            ),
            Command::Reasoning { mode: Some(mode) } => {
                self.set_field(store, s, REASONING_FIELD, &mode)?;
                format!("⚙️ Reasoning visibility: {mode}.")
            }
            Command::Help => HELP.into(),
            Command::Whoami => format!("🧵 Session: {}", d.session_key),
            Command::Invalid { hint, .. } => hint,
            Command::Approve { id, decision } => {
                self.approve(setup, store, d, s, &id, &decision).await?
            }
            Command::Verbose { .. } => {
                "Verbose tool output is not available in Pincer yet; tool calls are shown as they run.".into()
            }
        };
        let mut done = self.said(spec, text, s.id.clone(), events).await;
        done.compactions = compactions;
        Ok(done)
    }

    /// `/approve <id> allow-once|allow-always|deny`: runs (or drops) the
    /// waiting command; its outcome goes into the transcript, so the
    /// model knows it next turn.
    async fn approve(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        d: &Delivery,
        s: &mut Open,
        id: &str,
        decision: &str,
    ) -> Result<String, AgentError> {
        let Some(verdict) = Verdict::parse(decision) else {
            return Ok("Usage: /approve <id> allow-once|allow-always|deny".into());
        };
        let tools = self.agent_tools(setup);
        match self
            .toolbox
            .approve(&d.session_key, id, verdict, &tools)
            .await
        {
            Ok(outcome) => {
                let ack = format!("✅ Exec approval {} submitted for {id}.", verdict.as_str());
                let note = Message::user(format!("System: {outcome}"));
                self.record_messages(store, s, &d.session_key, &[note])?;
                Ok(format!("{ack}\n{outcome}"))
            }
            Err(e) => Ok(format!("❌ Failed to submit approval: {e}")),
        }
    }

    /// `/new [model]`, `/reset`: a new session id (the old transcript
    /// stays), on `model` when one is named and usable.
    fn new_session(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        s: &mut Open,
        model: Option<&str>,
    ) -> Result<String, AgentError> {
        let picked = match model {
            Some(m) => match self.candidates(setup, Some(m), None) {
                Ok(mut c) => Some(c.remove(0)),
                Err(e) => return Ok(e.to_string()),
            },
            None => None,
        };
        self.renew(store, s).map_err(|source| AgentError::Store {
            key: s.key.clone(),
            source,
        })?;
        if let Some(p) = &picked {
            let mark = Mark::ModelChange {
                provider: p.provider.clone(),
                model_id: p.id.clone(),
            };
            self.mark(store, s, &mark)?;
        }
        let model = picked.map_or_else(|| self.default_model(setup), |p| p.reference);
        Ok(format!("✅ New session started · model: {model}"))
    }

    /// Sets a session field in the index and in this delivery's copy.
    fn set_field(
        &self,
        store: &SessionStore,
        s: &mut Open,
        field: &str,
        value: &str,
    ) -> Result<(), AgentError> {
        store
            .set_field(&s.key, field, value.into())
            .map_err(|source| AgentError::Store {
                key: s.key.clone(),
                source,
            })?;
        s.entry = store.get(&s.key);
        if s.id.is_empty()
            && let Some(e) = &s.entry
        {
            s.id = e.session_id.clone();
        }
        Ok(())
    }

    /// The agent's own first model.
    fn default_model(&self, setup: &AgentSetup) -> String {
        self.candidates(setup, None, None)
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|s| s.reference)
            .unwrap_or_default()
    }

    /// Writes `mark` to the session (creating it when new) and keeps the
    /// warm copy in step.
    fn mark(&self, store: &SessionStore, s: &mut Open, mark: &Mark) -> Result<(), AgentError> {
        let e = store
            .mark(&s.key, mark)
            .map_err(|source| AgentError::Store {
                key: s.key.clone(),
                source,
            })?;
        self.grew(s, store, vec![e]);
        Ok(())
    }

    /// `/new`, `/reset`: a new session id; the old transcript stays.
    fn renew(&self, store: &SessionStore, s: &mut Open) -> Result<(), SessionError> {
        let old = std::mem::take(&mut s.id);
        if !old.is_empty()
            && let Ok(mut w) = self.warm.lock()
        {
            w.take(&old);
        }
        s.id = store.renew(&s.key)?;
        s.warm = Warm::default();
        Ok(())
    }

    async fn model_command(
        &self,
        setup: &AgentSetup,
        store: &SessionStore,
        s: &mut Open,
        arg: ModelArg,
        spec: &ModelSpec,
    ) -> Result<String, AgentError> {
        let choices = self.choices(setup);
        let set = |picked: &str| -> Result<ModelSpec, String> {
            self.candidates(setup, Some(picked), None)
                .map(|mut c| c.remove(0))
                .map_err(|e| e.to_string())
        };
        let picked = match arg {
            ModelArg::List => {
                let mut out = vec![format!("Models (current: {}):", spec.reference)];
                for (i, c) in choices.iter().enumerate() {
                    let alias = setup.models.aliases.of(c).map(|a| format!(" ({a})"));
                    out.push(format!("{}. {c}{}", i + 1, alias.unwrap_or_default()));
                }
                out.push("Pick with /model <number>, an alias or provider/model.".into());
                return Ok(out.join("\n"));
            }
            ModelArg::Status => {
                let window = self.window(setup, spec).await;
                return Ok(format!(
                    "🧠 Model: {} · api {} · {}\n📚 Window: {} tokens · output cap {}",
                    spec.reference,
                    spec.api.as_str(),
                    spec.base_url.as_deref().unwrap_or("in-process"),
                    window,
                    spec.max_tokens
                ));
            }
            ModelArg::Pick(n) => match choices.get(n.wrapping_sub(1)) {
                Some(r) => set(r),
                None => Err(format!(
                    "There is no model {n}: pick 1 to {}, or see /model list.",
                    choices.len()
                )),
            },
            ModelArg::Set(m) => set(&m),
            ModelArg::Default => {
                let default = self.candidates(setup, None, None).map(|c| c[0].clone())?;
                let mark = Mark::ModelChange {
                    provider: default.provider.clone(),
                    model_id: default.id.clone(),
                };
                self.mark(store, s, &mark)?;
                return Ok(format!("Model reset to default ({}).", default.reference));
            }
        };
        match picked {
            Err(e) => Ok(e),
            Ok(p) => {
                let mark = Mark::ModelChange {
                    provider: p.provider.clone(),
                    model_id: p.id.clone(),
                };
                self.mark(store, s, &mark)?;
                Ok(match setup.models.aliases.of(&p.reference) {
                    Some(alias) => format!("Model set to {alias} ({}).", p.reference),
                    None => format!("Model set to {}.", p.reference),
                })
            }
        }
    }

    /// The models `/model` offers: those the config names that the agent
    /// may use.
    fn choices(&self, setup: &AgentSetup) -> Vec<String> {
        configured_refs(self.config, &self.catalog)
            .into_iter()
            .filter(|r| self.candidates(setup, Some(r), None).is_ok())
            .collect()
    }

    fn context_tokens(
        &self,
        setup: &AgentSetup,
        d: &Delivery,
        s: &Open,
        spec: &ModelSpec,
        window: u64,
    ) -> u64 {
        let thinking = setup.thinking_default.clone();
        let (system, _) = self.system(setup, d, spec, window, &thinking, None);
        system
            .iter()
            .chain(&s.warm.tree.context())
            .map(estimate)
            .sum()
    }

    fn status(
        &self,
        setup: &AgentSetup,
        d: &Delivery,
        s: &Open,
        spec: &ModelSpec,
        window: u64,
    ) -> String {
        let entry = s.entry.as_ref();
        let (input, output) = entry.map_or((0, 0), |e| (e.input_tokens, e.output_tokens));
        let used = self.context_tokens(setup, d, s, spec, window);
        let compactions = s
            .warm
            .tree
            .branch()
            .iter()
            .filter(|e| matches!(e.body, pincer_sessions::Body::Compaction { .. }))
            .count();
        let thinking = s
            .warm
            .tree
            .thinking_level()
            .unwrap_or_else(|| setup.thinking_default.clone());
        let queue = QueueSettings::resolve(&self.config.messages.queue, d.channel.as_deref());
        let depth = self
            .queues
            .lock()
            .ok()
            .and_then(|q| q.get(&d.session_key).map(|(p, _)| p.len()))
            .unwrap_or(0);
        let updated = entry.map_or("new".to_string(), |e| {
            let ago = pincer_sessions::now_ms().saturating_sub(e.updated_at) / 1000;
            if ago < 60 {
                "updated just now".into()
            } else {
                format!(
                    "updated {} ago",
                    humantime::format_duration(Duration::from_secs(ago))
                )
            }
        });
        [
            format!("🦞 Pincer {}", env!("CARGO_PKG_VERSION")),
            format!("🧠 Model: {}", spec.reference),
            format!("🧮 Tokens: {} in / {} out", short(input), short(output)),
            format!(
                "📚 {} · 🧹 Compactions: {compactions}",
                context_short(used, window)
            ),
            format!("🧵 Session: {} • {updated}", d.session_key),
            format!(
                "⚙️ Think: {thinking} · 🪢 Queue: {} (depth {depth})",
                queue.mode.as_str()
            ),
        ]
        .join("\n")
    }

    fn context_report(
        &self,
        setup: &AgentSetup,
        d: &Delivery,
        s: &Open,
        spec: &ModelSpec,
        window: u64,
    ) -> String {
        let (system, report) = self.system(setup, d, spec, window, &setup.thinking_default, None);
        let system_tokens: u64 = system.iter().map(estimate).sum();
        let history = s.warm.tree.context();
        let history_tokens: u64 = history.iter().map(estimate).sum();
        let mut out = vec![format!(
            "System prompt: {} chars (~{} tok)",
            report.chars, system_tokens
        )];
        for (name, used, all) in &report.files {
            out.push(format!("  {name}: {used} of {all} chars"));
        }
        let w = self.workspace(setup);
        for (name, why) in &w.unreadable {
            out.push(format!("  {name}: not read ({why})"));
        }
        if !w.exists {
            out.push(format!("  workspace {} does not exist", w.dir.display()));
        }
        out.push(format!(
            "History: {} messages (~{} tok)",
            history.len(),
            history_tokens
        ));
        out.push(context_short(system_tokens + history_tokens, window));
        out.join("\n")
    }
}

/// The session fields `/usage` and `/reasoning` set (OpenClaw's names).
const USAGE_FIELD: &str = "responseUsage";
const REASONING_FIELD: &str = "reasoningLevel";

fn session_field(s: &Open, field: &str) -> Option<String> {
    s.entry
        .as_ref()?
        .other
        .get(field)?
        .as_str()
        .map(str::to_string)
}

/// The final text as this session wants it: the reasoning first when
/// `/reasoning on`, and a usage footer by `/usage`.
fn shaped(s: &Open, a: &Answer, usd: f64) -> Option<String> {
    let mut text = final_text(&a.reply.text)?;
    if session_field(s, REASONING_FIELD).as_deref() == Some("on")
        && !a.reply.reasoning.trim().is_empty()
    {
        text = format!("Reasoning:\n{}\n\n{text}", a.reply.reasoning.trim());
    }
    let u = &a.reply.usage;
    let tokens = format!(
        "🧮 {} in / {} out",
        short(u.prompt_tokens()),
        short(u.output)
    );
    let footer = match session_field(s, USAGE_FIELD).as_deref() {
        Some("tokens") => Some(tokens),
        Some("full") => Some(format!("{tokens} · {}", a.spec.reference)),
        Some("cost") => Some(format!("{tokens} · 💸 ${usd:.4}")),
        _ => None,
    };
    if let Some(f) = footer {
        text.push_str(&format!("\n\n{f}"));
    }
    Some(text)
}

/// Tells the caller something while the run goes on.
async fn note(events: &mpsc::Sender<AgentEvent>, text: String) {
    let _ = events.send(AgentEvent::Note(text)).await;
}

/// A session during one delivery.
struct Open {
    key: String,
    /// Empty until the session's first entry is written.
    id: String,
    warm: Warm,
    entry: Option<pincer_sessions::SessionEntry>,
}

/// A model's answer.
struct Answer {
    spec: ModelSpec,
    reply: Reply,
    attempts: Vec<Attempt>,
}

const HELP: &str = "Commands: /new [model] · /reset · /stop · /compact [focus] · \
/model [list|status|<n>|<ref>|default] · /think <off|minimal|low|medium|high|xhigh> · \
/reasoning on|off · /status · /usage off|tokens|full|cost · /context · /whoami · /help";

fn setup(config: &Config, models: AgentModels) -> AgentSetup {
    let tools = agent_layer(config, &models.id);
    let d = &config.agents.defaults;
    let own = config
        .agents
        .entries
        .iter()
        .find(|e| e.id.value.eq_ignore_ascii_case(&models.id))
        .map(|e| &e.settings);
    let pick = |f: fn(&RuntimeSettings) -> Option<u64>| {
        own.and_then(|s| f(&s.runtime)).or_else(|| f(&d.runtime))
    };
    let rt = |s: &pincer_config::AgentSettings| s.runtime.clone();
    let (mine, defaults) = (own.map(rt).unwrap_or_default(), rt(d));
    let workspace = mine
        .workspace
        .or(defaults.workspace.clone())
        .map(|w| expand_home(&w.value));
    let c = |f: fn(&pincer_config::CompactionConfig) -> Option<u64>| {
        f(&mine.compaction).or_else(|| f(&defaults.compaction))
    };
    let floor = c(|c| c.reserve_tokens_floor).unwrap_or(RESERVE_TOKENS);
    let reserve_tokens = c(|c| c.reserve_tokens).unwrap_or(16_384).max(floor);
    let param = |key: &str| {
        own.and_then(|s| s.params.as_ref())
            .and_then(|p| p.get(key))
            .or_else(|| d.params.as_ref().and_then(|p| p.get(key)))
    };
    let params = param("leanPrompt");
    let lean = match params {
        Some(serde_json::Value::Bool(true)) => Lean::Always,
        Some(serde_json::Value::Bool(false)) => Lean::Never,
        Some(v) => Lean::Below(v.as_u64().unwrap_or(LEAN_BELOW_TOKENS)),
        None => Lean::Below(LEAN_BELOW_TOKENS),
    };
    AgentSetup {
        workspace,
        context_cap: pick(|r| r.context_tokens),
        file_max_chars: pick(|r| r.bootstrap_max_chars).map(|n| n as usize),
        total_max_chars: pick(|r| r.bootstrap_total_max_chars).map(|n| n as usize),
        timezone: mine
            .user_timezone
            .or(defaults.user_timezone)
            .unwrap_or_else(|| "UTC".into()),
        thinking_default: mine
            .thinking_default
            .or(defaults.thinking_default)
            .unwrap_or_else(|| "off".into()),
        lean,
        compaction: Compaction {
            enabled: mine
                .compaction
                .enabled
                .or(defaults.compaction.enabled)
                .unwrap_or(true),
            reserve_tokens,
            keep_recent: c(|c| c.keep_recent_tokens).unwrap_or(KEEP_RECENT_TOKENS),
            model: mine
                .compaction
                .model
                .clone()
                .or(defaults.compaction.model.clone())
                .map(|m| m.value),
            timeout: c(|c| c.timeout_seconds).map_or(COMPACTION_TIMEOUT, Duration::from_secs),
        },
        max_tool_rounds: param("maxToolIterations")
            .and_then(serde_json::Value::as_u64)
            .map_or(MAX_TOOL_ROUNDS, |n| n.max(1) as usize),
        repeat_limit: tools
            .over(&config.tools)
            .loop_detection
            .critical_threshold
            .map_or(REPEAT_LIMIT, |n| n.max(2) as usize),
        tools,
        models,
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The prompt: system, the history that fits, the new messages; refused
/// when the new messages cannot fit even alone in any candidate's window.
fn fit(
    system: &[Message],
    history: Vec<Message>,
    input: &[Message],
    budget: Budget,
    candidates: &[ModelSpec],
) -> Result<Vec<Message>, Overflow> {
    let keep_from = match budget.fit(system, &history, input) {
        Ok(fit) => fit.keep_from,
        Err(e) => {
            // A fallback with a larger window may still take it, alone.
            let larger = candidates.iter().skip(1).any(|c| {
                Budget {
                    window: c.budget(),
                    ..budget
                }
                .fit(system, &[], input)
                .is_ok()
            });
            if !larger {
                return Err(e);
            }
            history.len()
        }
    };
    let mut messages = system.to_vec();
    messages.extend(history.into_iter().skip(keep_from));
    trim_old_tool_results(&mut messages);
    messages.extend_from_slice(input);
    Ok(messages)
}

fn overflowed(f: &AllFailed) -> bool {
    f.last
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::ContextOverflow)
        || f.attempts
            .iter()
            .any(|a| a.kind == Some(ErrorKind::ContextOverflow))
}

fn effort(level: &str) -> Option<ReasoningEffort> {
    match level {
        "minimal" => Some(ReasoningEffort::Minimal),
        "low" => Some(ReasoningEffort::Low),
        "medium" => Some(ReasoningEffort::Medium),
        "high" | "xhigh" => Some(ReasoningEffort::High),
        _ => None,
    }
}

fn attempts_of(e: &AgentError) -> Vec<Attempt> {
    match e {
        AgentError::Upstream(f) | AgentError::ContextOverflow(f) => f.attempts.clone(),
        AgentError::MidAnswer(m) => m.attempts.clone(),
        _ => Vec::new(),
    }
}

/// Tokens as `/status` shows them: `950`, `12k`, `1.2M`.
fn short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..10_000 => format!("{:.1}k", n as f64 / 1e3),
        10_000..1_000_000 => format!("{}k", n / 1_000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn context_short(used: u64, window: u64) -> String {
    let pct = (used * 100).checked_div(window).unwrap_or(0);
    format!("Context {}/{} ({pct}%)", short(used), short(window))
}

fn tree_bytes(tree: &Tree) -> usize {
    tree.entries.iter().map(entry_bytes).sum()
}

fn entry_bytes(e: &Entry) -> usize {
    let body = match &e.body {
        pincer_sessions::Body::Message(m) => m.prompt_chars(),
        pincer_sessions::Body::Compaction { summary, .. } => summary.len(),
        _ => 16,
    };
    body + e.id.len() + 64
}

/// Whether a tool (by name) takes these arguments.
type Accepts<'a> = dyn Fn(&str, &serde_json::Value) -> bool + Sync + 'a;

/// What one round of a turn streams.
struct StepCtl<'t> {
    /// When the agent offers tools, the caller's own tool names: only calls
    /// to those stream to the caller (any other runs here, or is answered
    /// "not found" here). `None`: every call is the caller's.
    callers: Option<&'t HashSet<String>>,
    /// Usage and `Done` are told once, for the whole turn, at its end.
    hold_end: bool,
    /// Text of this round follows an earlier round's.
    separate: bool,
    /// Which printed calls would run (tools are offered): text that may
    /// be one is held back, and not shown when it is one.
    promote: Option<&'t Accepts<'t>>,
}

/// Passes a round's events to the caller: the agent's tool calls are kept
/// back (they are told as [`AgentEvent::Tool`]), the caller's own are
/// numbered from 0.
struct Filter<'t> {
    ctl: &'t StepCtl<'t>,
    texted: bool,
    calls: HashMap<usize, Slot>,
    next: usize,
}

/// Whose a streamed call (by its index in the reply) is.
enum Slot {
    /// No name yet: its deltas wait for one.
    Undecided(Vec<Event>),
    /// The caller's, under this index.
    Caller(usize),
    Agent,
}

impl<'t> Filter<'t> {
    fn new(ctl: &'t StepCtl<'t>) -> Filter<'t> {
        Filter {
            ctl,
            texted: false,
            calls: HashMap::new(),
            next: 0,
        }
    }

    fn pass(&mut self, e: Event) -> Vec<Event> {
        match e {
            Event::Text { delta } if self.ctl.separate && !self.texted && !delta.is_empty() => {
                self.texted = true;
                vec![Event::Text {
                    delta: format!("\n\n{delta}"),
                }]
            }
            Event::Text { delta } => {
                self.texted |= !delta.is_empty();
                vec![Event::Text { delta }]
            }
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let e = Event::ToolCall {
                    index,
                    id,
                    name: name.clone(),
                    arguments,
                };
                let slot = self
                    .calls
                    .entry(index)
                    .or_insert_with(|| Slot::Undecided(Vec::new()));
                if let Slot::Undecided(waiting) = slot {
                    let Some(name) = name.filter(|n| !n.is_empty()) else {
                        waiting.push(e);
                        return Vec::new();
                    };
                    let mut out = std::mem::take(waiting);
                    out.push(e);
                    let caller = self.ctl.callers.is_none_or(|c| c.contains(&name));
                    *slot = if caller {
                        self.next += 1;
                        Slot::Caller(self.next - 1)
                    } else {
                        Slot::Agent
                    };
                    return match slot {
                        Slot::Caller(n) => out.into_iter().map(|e| renumber(e, *n)).collect(),
                        _ => Vec::new(),
                    };
                }
                match slot {
                    Slot::Caller(n) => vec![renumber(e, *n)],
                    _ => Vec::new(),
                }
            }
            Event::Usage { .. } | Event::Done { .. } if self.ctl.hold_end => Vec::new(),
            other => vec![other],
        }
    }
}

/// A streamed call's delta under the caller's numbering.
fn renumber(e: Event, n: usize) -> Event {
    match e {
        Event::ToolCall {
            id,
            name,
            arguments,
            ..
        } => Event::ToolCall {
            index: n,
            id,
            name,
            arguments,
        },
        other => other,
    }
}

/// The tools of one turn.
#[derive(Default)]
struct TurnTools {
    /// Definitions sent to the model.
    offered: Vec<Tool>,
    names: HashSet<String>,
    /// Why the turn goes without tools, when the user should know.
    note: Option<String>,
}

/// `text` without the untrusted-content markers' random ids.
fn without_marker_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("id=\"") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 4..];
        let id_len = after.find('"').unwrap_or(0);
        rest = &after[id_len..];
    }
    out.push_str(rest);
    out
}

impl TurnTools {
    /// A turn with tools tells usage and `Done` once, at its end.
    fn holds_end(&self) -> bool {
        !self.offered.is_empty()
    }
}

/// The session's run, known to `/stop` while it lasts.
struct ActiveRun<'r, 'c> {
    rt: &'r Runtime<'c>,
    key: String,
}

impl<'r, 'c> ActiveRun<'r, 'c> {
    fn start(rt: &'r Runtime<'c>, key: &str, token: &CancellationToken) -> ActiveRun<'r, 'c> {
        if let Ok(mut a) = rt.active.lock() {
            a.insert(key.to_string(), token.clone());
        }
        ActiveRun {
            rt,
            key: key.to_string(),
        }
    }
}

impl Drop for ActiveRun<'_, '_> {
    fn drop(&mut self) {
        if let Ok(mut a) = self.rt.active.lock() {
            a.remove(&self.key);
        }
    }
}

/// A fresh tool-call id, for calls a model printed as text.
fn call_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("call_{}", &id[..12])
}

/// A server's words for "this model takes no tools" (Ollama, vLLM,
/// OpenRouter, llama.cpp without `--jinja`).
fn refuses_tools(f: &AllFailed) -> bool {
    let Some(e) = &f.last else { return false };
    if !matches!(
        e.kind,
        ErrorKind::BadRequest | ErrorKind::ModelNotFound | ErrorKind::Server
    ) {
        return false;
    }
    let m = e.message.to_ascii_lowercase();
    [
        "does not support tools",
        "tool choice requires --enable-auto-tool-choice",
        "support tool use",
        "tools param requires --jinja",
        "tools are not supported",
        "does not support function calling",
        "tool_choice is not supported",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// A server's words for "this model does not think on request" (Ollama).
fn refuses_thinking(f: &AllFailed) -> bool {
    f.last.as_ref().is_some_and(|e| {
        e.kind == ErrorKind::BadRequest
            && e.message
                .to_ascii_lowercase()
                .contains("does not support thinking")
    })
}

/// The sessions of one agent, as its session tools see them.
struct SessionsOf<'a, 'c> {
    rt: &'a Runtime<'c>,
    setup: &'a AgentSetup,
    store: &'a SessionStore,
}

impl SessionsView for SessionsOf<'_, '_> {
    fn status(&self, key: &str) -> Result<String, String> {
        let key = key.to_ascii_lowercase();
        let e = self
            .store
            .get(&key)
            .ok_or_else(|| format!("no session {key:?} for agent {}", self.setup.models.id))?;
        let model = self
            .store
            .tree(&e.session_id)
            .ok()
            .and_then(|t| t.model())
            .map(|(p, m)| format!("{p}/{m}"))
            .unwrap_or_else(|| self.rt.default_model(self.setup));
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        Ok([
            format!("🧵 Session: {key}"),
            format!("🧠 Model: {model}"),
            format!(
                "🧮 Tokens: {} in / {} out · turns {} · 💸 ${:.4}",
                short(e.input_tokens),
                short(e.output_tokens),
                e.turns,
                e.cost_usd
            ),
            format!("🕒 Time: {now} (time zone {})", self.setup.timezone),
        ]
        .join("\n"))
    }

    fn list(
        &self,
        limit: usize,
        active_minutes: Option<u64>,
        visible: &dyn Fn(&str) -> bool,
    ) -> String {
        let now = pincer_sessions::now_ms();
        let mut rows = self.store.list();
        rows.sort_by_key(|(_, e)| std::cmp::Reverse(e.updated_at));
        let rows: Vec<String> = rows
            .into_iter()
            .filter(|(k, e)| {
                visible(k)
                    && active_minutes.is_none_or(|m| now.saturating_sub(e.updated_at) <= m * 60_000)
            })
            .take(limit)
            .map(|(k, e)| {
                let ago = now.saturating_sub(e.updated_at) / 1000;
                format!("{k} · {} turns · updated {ago} s ago", e.turns)
            })
            .collect();
        if rows.is_empty() {
            "No sessions.".into()
        } else {
            rows.join("\n")
        }
    }

    fn history(&self, key: &str, limit: usize, include_tools: bool) -> Result<String, String> {
        let key = key.to_ascii_lowercase();
        let (_, e) = self
            .store
            .find(&key)
            .ok_or_else(|| format!("no session {key:?} for agent {}", self.setup.models.id))?;
        let tree = self.store.tree(&e.session_id).map_err(|e| e.to_string())?;
        let lines: Vec<String> = tree
            .context()
            .into_iter()
            .filter_map(|m| match m {
                Message::User { text } => Some(format!("user: {text}")),
                Message::Assistant {
                    text, tool_calls, ..
                } => {
                    let calls: Vec<String> = tool_calls
                        .iter()
                        .filter(|_| include_tools)
                        .map(|c| format!("[called {} {}]", c.name, c.arguments))
                        .collect();
                    let body = [text, calls.join(" ")].join(" ").trim().to_string();
                    (!body.is_empty()).then(|| format!("assistant: {body}"))
                }
                Message::Tool { name, content, .. } if include_tools => Some(format!(
                    "tool {name}: {}",
                    content.chars().take(500).collect::<String>()
                )),
                _ => None,
            })
            .collect();
        let from = lines.len().saturating_sub(limit);
        Ok(if lines.is_empty() {
            "No messages.".into()
        } else {
            lines[from..].join("\n")
        })
    }
}
