//! The pipeline every channel shares, from an accepted message to the
//! chunks of its answer (see the crate's documentation for the order).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_agent::{AgentError, AgentEvent, Command, Delivery, Runtime};
use pincer_config::{ChannelAccess, Config, DmScope};
use pincer_tools::untrusted::{Source, wrap};
use pincer_types::Message;
use tokio::sync::mpsc;

use crate::access::{self, Verdict};
use crate::inbox::{Inbox, State};
use crate::pairing::Pairing;
use crate::status::Board;
use crate::{ChatKind, Inbound, chunk, route};

/// Messages one chat may have waiting; past it they are recorded failed.
const CHAT_QUEUE: usize = 64;
/// A chat's worker ends after this long without messages.
const IDLE: Duration = Duration::from_secs(600);
/// Sends of one chunk tried before the message is recorded failed.
const SEND_TRIES: u32 = 5;
/// Rapid messages joined into one turn, at most (OpenClaw's bounds).
const MAX_JOINED: usize = 12;
const MAX_JOINED_BYTES: usize = 50_000;
/// How long one "typing…" call may take.
const TYPING_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The service asked to wait (Telegram's 429 `retry_after`).
    #[error("rate limited; retry after {0:?}")]
    RetryAfter(Duration),
    /// A network error or a server error: worth trying again.
    #[error("{0}")]
    Transient(String),
    /// The service refused it for good (the bot was blocked, the chat is gone).
    #[error("{0}")]
    Refused(String),
}

/// What a channel does for the layer: send text to a chat, show typing.
pub trait Outbound: Send + Sync + 'static {
    fn send(
        &self,
        chat: &crate::Chat,
        text: &str,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
    /// Shows "typing…" in `chat` for a few seconds (failures are ignored).
    fn typing(&self, chat: &crate::Chat) -> impl Future<Output = ()> + Send;
}

/// A channel's settings, resolved once from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub channel: String,
    pub account: String,
    pub access: ChannelAccess,
    /// The agent that answers (the default agent).
    pub agent: String,
    pub main_key: String,
    pub dm_scope: DmScope,
    /// `messages.inbound.debounceMs` (by channel first; OpenClaw's
    /// default: 300 ms for Telegram, none for the others).
    pub debounce: Duration,
    /// `textChunkLimit`.
    pub limit: usize,
    /// How often "typing…" is renewed while the agent works.
    pub typing_every: Duration,
}

impl Settings {
    pub fn resolve(
        config: &Config,
        channel: &str,
        access: &ChannelAccess,
        agent: &str,
    ) -> Settings {
        let inbound = &config.messages.inbound;
        let debounce_ms = inbound
            .by_channel
            .get(channel)
            .copied()
            .or(inbound.debounce_ms)
            .unwrap_or(if channel == "telegram" { 300 } else { 0 });
        Settings {
            channel: channel.to_string(),
            account: "default".into(),
            access: access.clone(),
            agent: agent.to_string(),
            main_key: config.session.main_name().to_string(),
            dm_scope: config.session.dm_scope.unwrap_or(DmScope::Main),
            debounce: Duration::from_millis(debounce_ms),
            limit: access
                .text_chunk_limit
                .map_or(chunk::DEFAULT_LIMIT, |n| n.min(4096) as usize),
            typing_every: Duration::from_secs(5),
        }
    }
}

pub struct Layer<O: Outbound> {
    rt: &'static Runtime<'static>,
    out: O,
    s: Settings,
    inbox: Inbox,
    pairing: Pairing,
    board: Arc<Board>,
    /// One worker per chat (and topic), fed in order.
    workers: Mutex<HashMap<String, mpsc::Sender<Inbound>>>,
}

impl<O: Outbound> Layer<O> {
    /// The layer for `channel` as the config sets it up: its inbox, its
    /// pairing files and its settings, under `state_dir`.
    pub fn open(
        rt: &'static Runtime<'static>,
        out: O,
        config: &Config,
        channel: &str,
        access: &ChannelAccess,
        state_dir: &std::path::Path,
        board: Arc<Board>,
    ) -> Result<Arc<Layer<O>>, String> {
        let inbox = Inbox::open(&Inbox::path(state_dir, channel, "default"))?;
        let settings = Settings::resolve(config, channel, access, &rt.default_agent().id);
        let pairing = Pairing::new(state_dir, channel);
        Ok(Layer::new(rt, out, settings, inbox, pairing, board))
    }

    pub fn new(
        rt: &'static Runtime<'static>,
        out: O,
        s: Settings,
        inbox: Inbox,
        pairing: Pairing,
        board: Arc<Board>,
    ) -> Arc<Layer<O>> {
        Arc::new(Layer {
            rt,
            out,
            s,
            inbox,
            pairing,
            board,
            workers: Mutex::new(HashMap::new()),
        })
    }

    pub fn out(&self) -> &O {
        &self.out
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// Answers what the last run left pending (call once, at start).
    pub fn resume(self: &Arc<Self>) {
        let pending = self.inbox.pending();
        if !pending.is_empty() {
            tracing::info!(
                "{}: answering {} message(s) left pending by the last run",
                self.s.channel,
                pending.len()
            );
        }
        for e in pending {
            self.dispatch(e.msg);
        }
    }

    /// Records `msgs` and the service's new resume point, then answers
    /// them. When this returns `Ok`, the caller may acknowledge them.
    pub fn accept(self: &Arc<Self>, msgs: Vec<Inbound>, offset: Option<i64>) -> Result<(), String> {
        let any = !msgs.is_empty();
        let fresh = self.inbox.accept(msgs, offset)?;
        if any {
            self.board.inbound(&self.s.channel);
        }
        for m in fresh {
            self.dispatch(m);
        }
        Ok(())
    }

    /// Hands `m` to its chat's worker; `/stop` jumps the queue.
    fn dispatch(self: &Arc<Self>, m: Inbound) {
        if is_stop(&m) {
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.handle(m, None).await;
            });
            return;
        }
        let key = format!("{}/{}", m.chat.id, m.chat.thread.as_deref().unwrap_or(""));
        let full = {
            let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
            match workers.get(&key) {
                Some(tx) => match tx.try_send(m) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(m)) => Some(m),
                    Err(mpsc::error::TrySendError::Closed(m)) => {
                        self.spawn_worker(&mut workers, key, m);
                        None
                    }
                },
                None => {
                    self.spawn_worker(&mut workers, key, m);
                    None
                }
            }
        };
        if let Some(m) = full {
            tracing::warn!(
                "{}: chat {} has too many messages waiting",
                self.s.channel,
                m.chat.id
            );
            self.record(
                &m,
                State::Failed,
                "too many messages were waiting in this chat",
            );
        }
    }

    fn spawn_worker(
        self: &Arc<Self>,
        workers: &mut HashMap<String, mpsc::Sender<Inbound>>,
        key: String,
        m: Inbound,
    ) {
        let (tx, rx) = mpsc::channel(CHAT_QUEUE);
        let _ = tx.try_send(m);
        workers.insert(key.clone(), tx);
        tokio::spawn(self.clone().worker(key, rx));
    }

    async fn worker(self: Arc<Self>, key: String, mut rx: mpsc::Receiver<Inbound>) {
        let mut next: Option<Inbound> = None;
        loop {
            let m = match next.take() {
                Some(m) => m,
                None => match tokio::time::timeout(IDLE, rx.recv()).await {
                    Ok(Some(m)) => m,
                    Ok(None) => return,
                    Err(_) => {
                        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
                        if rx.is_empty() {
                            workers.remove(&key);
                            return;
                        }
                        continue;
                    }
                },
            };
            next = self.handle(m, Some(&mut rx)).await;
        }
    }

    fn record(&self, m: &Inbound, state: State, note: &str) {
        if let Err(e) = self.inbox.finish(m, state, Some(note.to_string())) {
            tracing::error!("{}: {e}", self.s.channel);
        }
    }

    fn verdict(&self, m: &Inbound) -> Verdict {
        access::decide(&self.s.access, m, &|ids| self.pairing.is_approved(ids))
    }

    /// Answers `m`. While waiting out the debounce it may take the chat's
    /// next message: one that joins `m` is answered with it; one that does
    /// not is returned, to be handled next.
    async fn handle(
        &self,
        m: Inbound,
        rx: Option<&mut mpsc::Receiver<Inbound>>,
    ) -> Option<Inbound> {
        // Answered before a restart, but not all of it was sent.
        if let Some(reply) = self
            .inbox
            .get(&m)
            .and_then(|e| e.reply.map(|r| (r, e.sent)))
        {
            self.send_chunks(&m, &reply.0, reply.1).await;
            return None;
        }
        match self.verdict(&m) {
            Verdict::Ignore(why) => {
                tracing::debug!("{}: message {} ignored: {why}", self.s.channel, m.id);
                self.record(&m, State::Done, &format!("ignored: {why}"));
                return None;
            }
            Verdict::Refuse(why) => {
                self.reply(&m, why.to_string()).await;
                return None;
            }
            Verdict::Pair => {
                match self.pairing.request(&m.sender) {
                    Ok(Some(code)) => {
                        let text = crate::pairing::reply_text(&self.s.channel, &m.sender, &code);
                        self.reply(&m, text).await;
                    }
                    Ok(None) => self.record(
                        &m,
                        State::Done,
                        "ignored: too many pairing requests pending",
                    ),
                    Err(e) => {
                        tracing::error!("{}: pairing: {e}", self.s.channel);
                        self.record(&m, State::Failed, &e.to_string());
                    }
                }
                return None;
            }
            Verdict::Answer => {}
        }
        let mut m = m;
        if m.text.trim().is_empty() {
            match m.media.clone() {
                Some(kind) => {
                    let text = format!(
                        "I can only read text for now: this {kind} was not passed on. Please send your message as text."
                    );
                    self.reply(&m, text).await;
                }
                None => self.record(&m, State::Done, "empty"),
            }
            return None;
        }
        let is_command = pincer_agent::parse(&m.text).is_some();
        let mut next = None;
        if let Some(rx) = rx
            && !is_command
            && !self.s.debounce.is_zero()
        {
            // Joined while the sender keeps writing, within bounds: a
            // sender who never pauses is still answered.
            let until = tokio::time::Instant::now() + self.s.debounce * 8;
            let mut joined = 1;
            loop {
                let wait = self
                    .s
                    .debounce
                    .min(until.saturating_duration_since(tokio::time::Instant::now()));
                if wait.is_zero() || joined >= MAX_JOINED || m.text.len() >= MAX_JOINED_BYTES {
                    break;
                }
                let Ok(Some(n)) = tokio::time::timeout(wait, rx.recv()).await else {
                    break;
                };
                let joins = n.sender == m.sender
                    && n.media.is_none()
                    && pincer_agent::parse(&n.text).is_none()
                    && self.verdict(&n) == Verdict::Answer;
                if !joins {
                    next = Some(n);
                    break;
                }
                m.text = format!("{}\n{}", m.text, n.text);
                joined += 1;
                if let Err(e) = self.inbox.join(&m, &n) {
                    tracing::error!("{}: {e}", self.s.channel);
                }
            }
        }
        match self.answer(&m, is_command).await {
            Some(text) => self.reply(&m, text).await,
            None => self.record(&m, State::Done, "nothing to send"),
        }
        next
    }

    /// What the model reads: a group message from anyone but the owner is
    /// someone else's words, so it arrives marked untrusted.
    fn model_text(&self, m: &Inbound, is_command: bool) -> String {
        let mut text = m.text.clone();
        if let Some(kind) = &m.media {
            text.push_str(&format!(
                "\n\n[A {kind} came with this message; it was not passed on.]"
            ));
        }
        if m.chat.kind == ChatKind::Direct || is_command {
            return text;
        }
        let from = m.sender.label();
        if access::listed(&self.s.access.allow_from, &m.sender.ids())
            && !self.s.access.allow_from.iter().any(|a| a.trim() == "*")
        {
            return format!("[{from}] {text}");
        }
        wrap(
            &text,
            Source::ChatMessage,
            &[
                ("Channel", &self.s.channel),
                ("From", &from),
                ("Group", &m.chat.id),
            ],
            false,
        )
    }

    /// The agent's final text for `m` (`None`: nothing to send), with
    /// "typing…" shown while it works.
    async fn answer(&self, m: &Inbound, is_command: bool) -> Option<String> {
        let d = Delivery {
            agent: self.s.agent.clone(),
            session_key: route::session_key(&self.s.agent, &self.s.main_key, self.s.dm_scope, m),
            input: vec![Message::user(self.model_text(m, is_command))],
            agent_prompt: true,
            whole: true,
            // The chat's own worker already orders its messages; chats that
            // share a session (`dmScope: main`) are answered one after the
            // other, each in its own chat.
            channel: None,
            ..Delivery::default()
        };
        let (tx, mut rx) = mpsc::channel::<AgentEvent>(64);
        let run = self.rt.deliver(d, tx);
        // "typing…" renewed beside the run, never in its way: a slow chat
        // API delays the indicator, not the answer.
        let typing = async {
            let mut tick = tokio::time::interval(self.s.typing_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let _ = tokio::time::timeout(TYPING_TIMEOUT, self.out.typing(&m.chat)).await;
            }
        };
        // The events are not shown in a chat app; they are read so the run
        // never waits on them.
        let drain = async {
            while rx.recv().await.is_some() {}
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            biased;
            r = run => r,
            () = typing => return None,
            () = drain => return None,
        };
        match result {
            Ok(d) if d.queued.is_some() => None,
            Ok(d) => d.final_text,
            Err(AgentError::Aborted) => None,
            Err(e) => {
                tracing::warn!("{}: message {}: {e}", self.s.channel, m.id);
                self.board.error(&self.s.channel, &e.to_string());
                Some(match e {
                    // Paths and file errors are the owner's business.
                    AgentError::Store { .. } => {
                        "⚠️ The assistant could not read or write this conversation; the gateway's log says why.".into()
                    }
                    e => format!("⚠️ {e}"),
                })
            }
        }
    }

    /// Records the answer's chunks, then sends them.
    async fn reply(&self, m: &Inbound, text: String) {
        let chunks = chunk::chunks(&text, self.s.limit);
        if let Err(e) = self.inbox.set_reply(m, chunks.clone()) {
            tracing::error!("{}: {e}", self.s.channel);
        }
        self.send_chunks(m, &chunks, 0).await;
    }

    async fn send_chunks(&self, m: &Inbound, chunks: &[String], from: usize) {
        for (i, c) in chunks.iter().enumerate().skip(from) {
            let mut tries = 0;
            loop {
                tries += 1;
                let wait = match self.out.send(&m.chat, c).await {
                    Ok(()) => break,
                    Err(SendError::RetryAfter(d)) if tries < SEND_TRIES => {
                        d.min(Duration::from_secs(120))
                    }
                    Err(SendError::Transient(_)) if tries < SEND_TRIES => {
                        Duration::from_secs(1 << tries)
                    }
                    Err(e) => {
                        let note = format!("sending chunk {} of {}: {e}", i + 1, chunks.len());
                        tracing::error!("{}: message {}: {note}", self.s.channel, m.id);
                        self.board.error(&self.s.channel, &note);
                        self.record(m, State::Failed, &note);
                        return;
                    }
                };
                tokio::time::sleep(wait).await;
            }
            if let Err(e) = self.inbox.set_sent(m, i + 1) {
                tracing::error!("{}: {e}", self.s.channel);
            }
        }
        self.board.outbound(&self.s.channel);
        if let Err(e) = self.inbox.finish(m, State::Done, None) {
            tracing::error!("{}: {e}", self.s.channel);
        }
    }
}

/// A stop command that skips the chat's queue: `/stop`, or a bare stop
/// word in a direct chat (in a group, "wait" is usually said to someone
/// else).
fn is_stop(m: &Inbound) -> bool {
    let text = m.text.trim();
    pincer_agent::parse(text) == Some(Command::Stop)
        && (m.chat.kind == ChatKind::Direct || text.starts_with('/'))
}
