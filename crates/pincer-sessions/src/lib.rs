//! Sessions in OpenClaw's layouts, under the state dir:
//!
//! ```text
//! agents/<agentId>/agent/openclaw-agent.sqlite   OpenClaw's current store: the index
//!                                                and every transcript (SQLite)
//! agents/<agentId>/sessions/sessions.json        the legacy index (sessionKey → SessionEntry)
//! agents/<agentId>/sessions/<sessionId>.jsonl    a legacy transcript, one event per line
//! ```
//!
//! A state dir with the database, or with neither, uses the database; one
//! with only the legacy index keeps using it (OpenClaw's doctor, or
//! `SessionStore::import`, moves it into the database). Both sit behind
//! [`Backend`]; the rules (new sessions, pruning, entry chains) are here.
//! A session enters the index before its transcript has an event, so every
//! transcript has an entry.

mod backend;
mod entry;
mod json;
mod sqlite;

pub use backend::{Backend, Durability, Pruned, Stamp};
pub use entry::{Body, Entry, SUMMARY_PREFIX, Tree, messages_of};
pub use sqlite::SCHEMA_VERSION;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use pincer_types::{Message, Reply, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid session index: {source}", path.display())]
    BadIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {source}", path.display())]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot use {} as a session store: {problem}", path.display())]
    Schema { path: PathBuf, problem: String },
    #[error("{}: the session {key:?} is not a valid entry: {source}", path.display())]
    BadRow {
        path: PathBuf,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no session {0:?}")]
    Unknown(String),
    #[error("the session index is unusable: a writer panicked")]
    Poisoned,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SessionError {
    let path = path.to_path_buf();
    move |source| SessionError::Io {
        action,
        path,
        source,
    }
}

/// One session in the index (OpenClaw's `SessionEntry`; fields Pincer does
/// not know are kept as they were).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEntry {
    pub session_id: String,
    #[serde(default)]
    pub session_started_at: u64,
    #[serde(default)]
    pub updated_at: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// Pincer's additions: completed turns and their summed cost.
    #[serde(default)]
    pub turns: u64,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// What one turn adds to a transcript.
#[derive(Debug, Clone)]
pub struct TurnRecord<'a> {
    /// The messages the caller sent that are new in this turn (the last
    /// user message and any tool results before it).
    pub input: &'a [Message],
    /// `provider/model` that answered.
    pub model: &'a str,
    pub api: &'a str,
    pub reply: &'a Reply,
    pub cost_usd: f64,
    /// Candidates that failed or were skipped before (or while) the answer
    /// came, each with what followed: kept as `pincerAttempts`.
    pub attempts: &'a [String],
    /// Why the turn failed, when it did (the reply is then what was said).
    pub error: Option<String>,
    /// A later round of a turn already counted (after tool results).
    pub continues: bool,
}

/// How the index is kept from growing without bound (OpenClaw's
/// `session.maintenance`, with its defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Maintenance {
    /// Prune (`enforce`) or leave everything (`warn`).
    pub enforce: bool,
    /// Sessions untouched this long are pruned.
    pub prune_after: std::time::Duration,
    /// The most sessions kept; past it (plus some slack, so pruning runs in
    /// batches) the least recently used are pruned.
    pub max_entries: usize,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            enforce: true,
            prune_after: std::time::Duration::from_secs(30 * 86_400),
            max_entries: 500,
        }
    }
}

impl Maintenance {
    /// Pruning starts this far past `max_entries` (OpenClaw's batching).
    fn slack(&self) -> usize {
        if self.max_entries <= 49 {
            0
        } else {
            (self.max_entries / 10).max(25)
        }
    }
}

/// Never pruned: an agent's main session and the global one.
fn protected(key: &str) -> bool {
    key == "global" || key.ends_with(":main")
}

/// Sessions made for one stateless request (`agent:<id>:openai:<uuid>`):
/// pruned with their transcript. Others keep theirs as `*.deleted.<time>`.
fn disposable(key: &str) -> bool {
    key.contains(":openai:") || key.contains(":openresponses:")
}

/// A change to a session that is not a turn, written as its own entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// `/new` or `/reset`: the model's context starts over after it.
    Reset { reason: String },
    /// A session model override (`/model`).
    ModelChange { provider: String, model_id: String },
    /// A session thinking level (`/think`).
    ThinkingLevel(String),
    /// Older history summarised: the model sees `summary`, then the
    /// entries from `first_kept_entry_id` on.
    Compaction {
        summary: String,
        first_kept_entry_id: Option<String>,
        tokens_before: u64,
    },
}

fn new_entry(now: u64) -> SessionEntry {
    SessionEntry {
        session_id: uuid::Uuid::new_v4().to_string(),
        session_started_at: now,
        updated_at: now,
        input_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
        turns: 0,
        cost_usd: 0.0,
        other: serde_json::Map::new(),
    }
}

/// The database file of an agent, under `agents/<id>/agent/`.
pub const DB_FILE: &str = "openclaw-agent.sqlite";

/// The sessions of one agent.
pub struct SessionStore {
    /// The agent's `sessions` folder: legacy transcripts, set-aside ones.
    dir: PathBuf,
    backend: Box<dyn Backend>,
    /// The last entry of each transcript written lately (the next entry's
    /// `parentId`); a session not here is read once to find it.
    leaves: Mutex<HashMap<String, Option<String>>>,
    maintenance: Maintenance,
}

/// Past this many sessions, the leaf cache starts over (each is read again
/// from its file on its next turn): memory stays bounded.
const MAX_CACHED_LEAVES: usize = 10_000;

/// What one model did across an agent's sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub turns: u64,
    pub errors: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub cost_usd: f64,
}

/// A transcript as read back.
#[derive(Debug)]
pub struct Transcript {
    pub events: Vec<Value>,
    /// A last line cut short by a crash was skipped.
    pub torn_tail: bool,
}

/// What `SessionStore::import` moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub sessions: usize,
    pub events: usize,
    /// Where the legacy index and transcripts went.
    pub archive: PathBuf,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

struct Paths {
    sessions: PathBuf,
    db: PathBuf,
}

fn paths(state_dir: &Path, agent: &str) -> Paths {
    let agent_dir = state_dir.join("agents").join(agent);
    Paths {
        sessions: agent_dir.join("sessions"),
        db: agent_dir.join("agent").join(DB_FILE),
    }
}

impl SessionStore {
    /// The store of `agent` under `state_dir`: its database (created when
    /// there is none), or its legacy `sessions.json` when only that exists.
    pub fn open(state_dir: &Path, agent: &str) -> Result<SessionStore, SessionError> {
        let p = paths(state_dir, agent);
        let backend: Box<dyn Backend> =
            if !p.db.exists() && p.sessions.join("sessions.json").is_file() {
                Box::new(json::JsonFiles::open(&p.sessions)?)
            } else {
                Box::new(sqlite::Sqlite::open(&p.db, agent, &p.sessions)?)
            };
        Ok(SessionStore::with_backend(&p.sessions, backend))
    }

    /// The legacy layout only (`sessions.json` and JSONL files in `dir`),
    /// for tools and tests of that layout.
    pub fn open_legacy(dir: &Path) -> Result<SessionStore, SessionError> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        Ok(SessionStore::with_backend(
            dir,
            Box::new(json::JsonFiles::open(dir)?),
        ))
    }

    /// A store over any backend; `dir` takes set-aside transcripts.
    pub fn with_backend(dir: &Path, backend: Box<dyn Backend>) -> SessionStore {
        SessionStore {
            dir: dir.to_path_buf(),
            backend,
            leaves: Mutex::new(HashMap::new()),
            maintenance: Maintenance::default(),
        }
    }

    /// Moves `agent`'s legacy index and transcripts into its database (as
    /// `openclaw doctor --fix` does): every entry and event is copied, then
    /// the legacy files are moved to `agents/<id>/session-sqlite-import-archive/`.
    /// `None` when there is no legacy index. A session already in the
    /// database is left as it is.
    pub fn import(state_dir: &Path, agent: &str) -> Result<Option<Imported>, SessionError> {
        let p = paths(state_dir, agent);
        let index = p.sessions.join("sessions.json");
        if !index.is_file() {
            return Ok(None);
        }
        let legacy = json::JsonFiles::open(&p.sessions)?;
        let db = sqlite::Sqlite::open(&p.db, agent, &p.sessions)?;
        let mut imported = Imported {
            sessions: 0,
            events: 0,
            archive: state_dir
                .join("agents")
                .join(agent)
                .join("session-sqlite-import-archive"),
        };
        let mut moved = Vec::new();
        for (key, entry) in legacy.list()? {
            let transcript = legacy.read(&entry.session_id)?;
            let (_, fresh) = db.get_or_insert(&key, entry.clone())?;
            if let Some(text) = &transcript {
                if fresh {
                    let events: Vec<Value> = text
                        .split('\n')
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    db.append(&key, &entry.session_id, &events)?;
                    imported.events += events.len();
                }
                moved.push(entry.session_id.clone());
            }
            imported.sessions += usize::from(fresh);
        }
        std::fs::create_dir_all(&imported.archive).map_err(io("create", &imported.archive))?;
        let stamp = now_ms();
        let archived = imported
            .archive
            .join(format!("legacy-store.sessions.json.imported-{stamp}"));
        std::fs::rename(&index, &archived).map_err(io("move", &index))?;
        for id in moved {
            let from = p.sessions.join(format!("{id}.jsonl"));
            let to = imported
                .archive
                .join(format!("{id}.jsonl.imported-{stamp}"));
            std::fs::rename(&from, &to).map_err(io("move", &from))?;
        }
        Ok(Some(imported))
    }

    /// Prunes by `m` from now on (the default is OpenClaw's).
    pub fn with_maintenance(mut self, m: Maintenance) -> SessionStore {
        self.maintenance = m;
        self
    }

    /// What maintenance prunes, as a new session is made: sessions
    /// untouched for `prune_after`, then the least recently used past
    /// `max_entries`. Only counts and old rows are read unless the index
    /// is over its cap, so a new session costs the same however many exist.
    fn prunable(&self, now: u64, keep: &str) -> Result<Vec<Pruned>, SessionError> {
        let m = &self.maintenance;
        if !m.enforce {
            return Ok(Vec::new());
        }
        let cutoff =
            now.saturating_sub(u64::try_from(m.prune_after.as_millis()).unwrap_or(u64::MAX));
        let prunable = |k: &str| !protected(k) && k != keep;
        let mut gone: Vec<Stamp> = self
            .backend
            .stamps(Some(cutoff))?
            .into_iter()
            .filter(|s| prunable(&s.key))
            .collect();
        let left = self.backend.count()?.saturating_sub(gone.len());
        if left > m.max_entries + m.slack() {
            // One-request sessions go first, then the least recently used:
            // a burst of stateless calls does not push out a conversation.
            let mut by_age: Vec<Stamp> = self
                .backend
                .stamps(None)?
                .into_iter()
                .filter(|s| prunable(&s.key) && s.updated_at >= cutoff)
                .collect();
            by_age.sort_by_key(|s| (!disposable(&s.key), s.updated_at));
            gone.extend(by_age.into_iter().take(left - m.max_entries));
        }
        Ok(gone
            .into_iter()
            .map(|s| Pruned {
                keep_transcript: !disposable(&s.key),
                key: s.key,
                session_id: s.session_id,
            })
            .collect())
    }

    /// The agent's `sessions` folder (legacy transcripts, set-aside ones).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index's file or database.
    pub fn location(&self) -> &Path {
        self.backend.location()
    }

    /// Every session, by key.
    pub fn list(&self) -> Vec<(String, SessionEntry)> {
        self.backend.list().unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<SessionEntry> {
        self.backend.get(key).ok().flatten()
    }

    /// The session ids `key` has had (one per `/new`), oldest first; the
    /// legacy layout knows only the current one.
    pub fn generations(&self, key: &str) -> Result<Vec<String>, SessionError> {
        self.backend.generations(key)
    }

    /// A session by its key or its id.
    pub fn find(&self, key_or_id: &str) -> Option<(String, SessionEntry)> {
        if let Some(e) = self.get(key_or_id) {
            return Some((key_or_id.to_string(), e));
        }
        self.backend.find_id(key_or_id).ok().flatten()
    }

    /// Turns, tokens and cost by `provider/model`, read from every transcript.
    pub fn usage_by_model(&self) -> Result<BTreeMap<String, ModelUsage>, SessionError> {
        let mut out: BTreeMap<String, ModelUsage> = BTreeMap::new();
        for (_, entry) in self.backend.list()? {
            // An index entry whose transcript was never written (a crash
            // between the two) has no turns.
            let Some(text) = self.backend.read(&entry.session_id)? else {
                continue;
            };
            for event in parse_events(&text).0 {
                let m = &event["message"];
                if event["type"] != "message" || m["role"] != "assistant" {
                    continue;
                }
                let model = format!(
                    "{}/{}",
                    m["provider"].as_str().unwrap_or(""),
                    m["model"].as_str().unwrap_or("")
                );
                let u = &m["usage"];
                let n = |k: &str| u[k].as_u64().unwrap_or(0);
                let row = out.entry(model).or_default();
                row.turns += 1;
                row.errors += u64::from(m["stopReason"] == "error");
                row.input += n("input");
                row.output += n("output");
                row.cache_read += n("cacheRead");
                row.cache_write += n("cacheWrite");
                row.cost_usd += u["cost"]["total"].as_f64().unwrap_or(0.0);
            }
        }
        Ok(out)
    }

    /// Finds `key`'s session, creating it (in the index, durably, pruning
    /// others as maintenance says) when it has none. Returns its id and,
    /// for a new one, the transcript's header line to write first.
    fn open_session(&self, key: &str, now: u64) -> Result<(String, Option<Value>), SessionError> {
        let (entry, fresh) = self.backend.get_or_insert(key, new_entry(now))?;
        if !fresh {
            return Ok((entry.session_id, None));
        }
        let pruned = self.prunable(now, key)?;
        self.backend.remove(&pruned)?;
        if let Ok(mut leaves) = self.leaves.lock() {
            for p in &pruned {
                leaves.remove(&p.session_id);
            }
        }
        Ok((entry.session_id.clone(), Some(header(&entry.session_id))))
    }

    /// Appends one turn to `key`'s transcript (creating the session on its
    /// first turn, which is written to the index at once) and adds its usage
    /// to the index's totals (durable by the next `flush`). Returns the
    /// entries written, for a caller that keeps the conversation in memory.
    pub fn record(&self, key: &str, turn: &TurnRecord<'_>) -> Result<Vec<Entry>, SessionError> {
        let now = now_ms();
        let (id, header) = self.open_session(key, now)?;
        let leaf = if header.is_some() {
            None
        } else {
            self.leaf(&id)?
        };
        let (turn_lines, leaf) = turn_lines(turn, leaf);
        let written = self.append(key, &id, header, &turn_lines)?;
        self.remember_leaf(&id, leaf);
        let u = &turn.reply.usage;
        // The transcript, already written, is the record; the index only
        // sums it up.
        self.backend.update(
            key,
            &mut |entry| {
                entry.updated_at = now;
                entry.input_tokens += u.prompt_tokens();
                entry.output_tokens += u.output;
                entry.total_tokens += u.prompt_tokens() + u.output;
                if !turn.continues {
                    entry.turns += 1;
                }
                entry.cost_usd += turn.cost_usd;
            },
            Durability::Soon,
        )?;
        Ok(written)
    }

    /// Appends `messages` (tool results of a turn cut short) to `key`'s
    /// transcript, without an answer.
    pub fn record_messages(
        &self,
        key: &str,
        messages: &[Message],
    ) -> Result<Vec<Entry>, SessionError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let (id, header) = self.open_session(key, now_ms())?;
        let leaf = if header.is_some() {
            None
        } else {
            self.leaf(&id)?
        };
        let (lines, leaf) = message_lines(messages, leaf);
        let written = self.append(key, &id, header, &lines)?;
        self.remember_leaf(&id, leaf);
        Ok(written)
    }

    /// Removes a session from the index, its transcript set aside (not
    /// deleted), as OpenClaw's `sessions.delete` does; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool, SessionError> {
        let Some(e) = self.get(key) else {
            return Ok(false);
        };
        self.backend.remove(&[Pruned {
            key: key.to_string(),
            session_id: e.session_id,
            keep_transcript: true,
        }])?;
        Ok(true)
    }

    /// Sets one of the session's own fields in the index (`responseUsage`,
    /// `reasoningLevel`…: OpenClaw's names), creating the session when new.
    pub fn set_field(&self, key: &str, field: &str, value: Value) -> Result<(), SessionError> {
        let (id, header) = self.open_session(key, now_ms())?;
        if header.is_some() {
            self.append(key, &id, header, &[])?;
            self.remember_leaf(&id, None);
        }
        self.backend.update(
            key,
            &mut |e| {
                e.other.insert(field.to_string(), value.clone());
            },
            Durability::Now,
        )?;
        Ok(())
    }

    /// Gives `key` a new session (`/new`, `/reset`): a new id and an empty
    /// transcript. The old transcript stays where it was, whole.
    pub fn renew(&self, key: &str) -> Result<String, SessionError> {
        let entry = new_entry(now_ms());
        self.backend.put(key, &entry, Durability::Now)?;
        let id = entry.session_id;
        self.append(key, &id, Some(header(&id)), &[])?;
        self.remember_leaf(&id, None);
        Ok(id)
    }

    /// Makes the index's running totals durable. A server calls this every
    /// second and when it stops; after a crash the totals in a legacy index
    /// may trail the transcripts by that much (the database has them at once).
    pub fn flush(&self) -> Result<(), SessionError> {
        self.backend.flush()
    }

    /// The transcript of `session_id`, skipping a torn last line.
    pub fn transcript(&self, session_id: &str) -> Result<Transcript, SessionError> {
        let text = self
            .backend
            .read(session_id)?
            .ok_or_else(|| SessionError::Unknown(session_id.to_string()))?;
        let (events, torn_tail) = parse_events(&text);
        Ok(Transcript { events, torn_tail })
    }

    /// The transcript of `session_id` as a conversation tree (entries,
    /// branch, what the model sees); none is an empty tree.
    pub fn tree(&self, session_id: &str) -> Result<Tree, SessionError> {
        Ok(self
            .backend
            .read(session_id)?
            .map(|text| Tree::parse(&text))
            .unwrap_or_default())
    }

    /// Appends `mark` to `key`'s transcript, after its last entry (creating
    /// the session when it has none yet); returns the entry written.
    pub fn mark(&self, key: &str, mark: &Mark) -> Result<Entry, SessionError> {
        let (session_id, header) = self.open_session(key, now_ms())?;
        let leaf = if header.is_some() {
            None
        } else {
            self.leaf(&session_id)?
        };
        let id = entry_id();
        let (kind, fields) = match mark {
            Mark::Reset { reason } => ("reset", json!({"reason": reason})),
            Mark::ModelChange { provider, model_id } => (
                "model_change",
                json!({"provider": provider, "modelId": model_id}),
            ),
            Mark::ThinkingLevel(level) => {
                ("thinking_level_change", json!({"thinkingLevel": level}))
            }
            Mark::Compaction {
                summary,
                first_kept_entry_id,
                tokens_before,
            } => (
                "compaction",
                json!({"summary": summary, "firstKeptEntryId": first_kept_entry_id,
                    "tokensBefore": tokens_before}),
            ),
        };
        let mut line = json!({"type": kind, "id": id, "parentId": leaf, "timestamp": timestamp()});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let mut written = self.append(key, &session_id, header, &[line])?;
        self.remember_leaf(&session_id, Some(id));
        if let Mark::Compaction { .. } = mark {
            self.backend.update(
                key,
                &mut |e| {
                    let n = e.other.get("compactionCount").and_then(Value::as_u64);
                    e.other
                        .insert("compactionCount".into(), (n.unwrap_or(0) + 1).into());
                },
                Durability::Soon,
            )?;
        }
        written.pop().ok_or(SessionError::Unknown(session_id))
    }

    fn remember_leaf(&self, session_id: &str, leaf: Option<String>) {
        if let Ok(mut leaves) = self.leaves.lock() {
            if leaves.len() >= MAX_CACHED_LEAVES {
                leaves.clear();
            }
            leaves.insert(session_id.to_string(), leaf);
        }
    }

    /// The id of the last entry of `session_id`'s transcript.
    fn leaf(&self, session_id: &str) -> Result<Option<String>, SessionError> {
        if let Some(leaf) = self
            .leaves
            .lock()
            .ok()
            .and_then(|l| l.get(session_id).cloned())
        {
            return Ok(leaf);
        }
        Ok(self.tree(session_id)?.leaf)
    }

    /// Appends `lines` (after `header`, for a new transcript) in one step,
    /// and returns them as entries.
    fn append(
        &self,
        key: &str,
        session_id: &str,
        header: Option<Value>,
        lines: &[Value],
    ) -> Result<Vec<Entry>, SessionError> {
        let events: Vec<Value> = header.into_iter().chain(lines.iter().cloned()).collect();
        self.backend.append(key, session_id, &events)?;
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        Ok(Tree::parse(&text).entries)
    }
}

/// The first line of a transcript (OpenClaw's version-4 header).
fn header(session_id: &str) -> Value {
    json!({"type": "session", "version": 4, "id": session_id, "timestamp": timestamp()})
}

/// The events of JSONL text, and whether a line was torn.
fn parse_events(text: &str) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    let mut torn = false;
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        // Only a crash mid-append tears a line: at the end, or in the
        // middle once a later append has closed it off.
        match serde_json::from_str(line) {
            Ok(v) => events.push(v),
            Err(_) => torn = true,
        }
    }
    (events, torn)
}

/// One message entry chained to `leaf`, which becomes its id.
fn message_line(message: Value, leaf: &mut Option<String>) -> Value {
    let id = entry_id();
    let line = json!({"type": "message", "id": id, "parentId": leaf, "timestamp": timestamp(), "message": message});
    *leaf = Some(id);
    line
}

/// The entries of `messages`, chained from `leaf`; returns them and the new leaf.
fn message_lines(messages: &[Message], mut leaf: Option<String>) -> (Vec<Value>, Option<String>) {
    let lines = messages
        .iter()
        .map(|m| message_line(message_json(m), &mut leaf))
        .collect();
    (lines, leaf)
}

/// The entries of one turn, chained from `leaf`; returns them and the new leaf.
fn turn_lines(turn: &TurnRecord<'_>, leaf: Option<String>) -> (Vec<Value>, Option<String>) {
    let (mut lines, mut leaf) = message_lines(turn.input, leaf);
    let mut entry = |message: Value| message_line(message, &mut leaf);
    let (provider, model) = turn.model.split_once('/').unwrap_or(("", turn.model));
    let mut content = Vec::new();
    if !turn.reply.reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": turn.reply.reasoning}));
    }
    if !turn.reply.text.is_empty() {
        content.push(json!({"type": "text", "text": turn.reply.text}));
    }
    for c in &turn.reply.tool_calls {
        // Arguments as the JSON object OpenClaw stores (as text when not JSON).
        let arguments = serde_json::from_str::<Value>(&c.arguments)
            .unwrap_or_else(|_| Value::String(c.arguments.clone()));
        content
            .push(json!({"type": "toolCall", "id": c.id, "name": c.name, "arguments": arguments}));
    }
    let mut assistant = json!({
        "role": "assistant",
        "content": content,
        "api": turn.api,
        "provider": provider,
        "model": model,
        "usage": usage_json(&turn.reply.usage, turn.cost_usd),
        "stopReason": match (&turn.error, &turn.reply.finish) {
            (Some(_), _) => "error",
            (None, Some(f)) => f.as_str(),
            (None, None) => "stop",
        },
        "timestamp": now_ms(),
    });
    if let Some(e) = &turn.error {
        assistant["errorMessage"] = e.clone().into();
    }
    if !turn.attempts.is_empty() {
        assistant["pincerAttempts"] = turn.attempts.into();
    }
    if let Some(p) = &turn.reply.served_by {
        assistant["upstreamProvider"] = p.clone().into();
    }
    lines.push(entry(assistant));
    (lines, leaf)
}

/// An entry id: 12 hex characters (OpenClaw uses 8; longer makes a clash
/// within one transcript negligible without keeping every id).
fn entry_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(12);
    id
}

fn message_json(m: &Message) -> Value {
    match m {
        Message::System { text } => json!({"role": "system", "content": text}),
        Message::User { text } => json!({"role": "user", "content": text, "timestamp": now_ms()}),
        Message::Assistant {
            text, tool_calls, ..
        } => json!({"role": "assistant", "content": text, "toolCalls": tool_calls}),
        Message::Tool {
            call_id,
            name,
            content,
            is_error,
        } => {
            json!({"role": "toolResult", "toolCallId": call_id, "toolName": name,
                "content": [{"type": "text", "text": content}], "isError": is_error, "timestamp": now_ms()})
        }
    }
}

fn usage_json(u: &Usage, cost: f64) -> Value {
    json!({
        "input": u.input,
        "output": u.output,
        "cacheRead": u.cache_read,
        "cacheWrite": u.cache_write,
        "totalTokens": u.prompt_tokens() + u.output,
        "cost": {"total": cost},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn reply(text: &str) -> Reply {
        Reply {
            text: text.into(),
            usage: Usage {
                input: 10,
                output: 3,
                ..Usage::default()
            },
            ..Reply::default()
        }
    }

    fn turn<'a>(input: &'a [Message], r: &'a Reply) -> TurnRecord<'a> {
        TurnRecord {
            input,
            model: "local/smollm2",
            api: "openai-completions",
            reply: r,
            cost_usd: 0.0,
            attempts: &[],
            error: None,
            continues: false,
        }
    }

    /// A store of the database layout, or of the legacy one (a state dir
    /// that has only `sessions.json`).
    fn open(dir: &Path, legacy: bool) -> SessionStore {
        if legacy {
            let sessions = dir.join("agents/main/sessions");
            std::fs::create_dir_all(&sessions).unwrap();
            if !sessions.join("sessions.json").exists() {
                std::fs::write(sessions.join("sessions.json"), "{}").unwrap();
            }
        }
        SessionStore::open(dir, "main").unwrap()
    }

    #[test]
    fn turns_are_appended_and_counted() {
        for legacy in [false, true] {
            turns_are_appended_and_counted_in(legacy);
        }
    }

    fn turns_are_appended_and_counted_in(legacy: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), legacy);
        assert_eq!(
            store.location().ends_with("sessions.json"),
            legacy,
            "{}",
            store.location().display()
        );
        let r = reply("Paris");
        store
            .record(
                "agent:main:openai-user:ada",
                &turn(&[Message::user("Capital of France?")], &r),
            )
            .unwrap();
        store
            .record(
                "agent:main:openai-user:ada",
                &turn(&[Message::user("And Italy?")], &r),
            )
            .unwrap();
        store.flush().unwrap();
        // A second process sees the same.
        let again = open(dir.path(), legacy);
        let entry = again.get("agent:main:openai-user:ada").unwrap();
        assert_eq!(
            again.find(&entry.session_id).map(|(k, _)| k).as_deref(),
            Some("agent:main:openai-user:ada")
        );
        assert_eq!(
            (entry.turns, entry.input_tokens, entry.output_tokens),
            (2, 20, 6)
        );
        let t = again.transcript(&entry.session_id).unwrap();
        assert!(!t.torn_tail);
        assert_eq!(t.events.len(), 5, "header + 2 × (user, assistant)");
        assert_eq!(t.events[0]["type"], "session");
        assert_eq!(t.events[4]["message"]["content"][0]["text"], "Paris");
        assert_eq!(t.events[4]["message"]["provider"], "local");
        // Read back as a conversation: what the next turn's model would see.
        let tree = again.tree(&entry.session_id).unwrap();
        let seen: Vec<String> = tree
            .context()
            .iter()
            .map(|m| match m {
                Message::User { text } => format!("user: {text}"),
                Message::Assistant { text, .. } => format!("assistant: {text}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            [
                "user: Capital of France?",
                "assistant: Paris",
                "user: And Italy?",
                "assistant: Paris"
            ]
        );
        assert!(again.tree("no-such-session").unwrap().entries.is_empty());
        // Every entry has an id and hangs off the one before, also across a
        // restart (the new store finds the leaf in the file).
        assert_eq!(tree.branch().len(), tree.entries.len());
        assert!(t.events[1]["parentId"].is_null() && t.events[1]["id"].is_string());
        again
            .record(
                "agent:main:openai-user:ada",
                &turn(&[Message::user("And Spain?")], &reply("Madrid")),
            )
            .unwrap();
        let tree = again.tree(&entry.session_id).unwrap();
        assert_eq!(tree.entries.len(), 6);
        assert_eq!(tree.branch().len(), 6, "one chain: {:?}", tree.entries);
        // A model change and a reset: the next context starts after the reset.
        let key = "agent:main:openai-user:ada";
        let model = Mark::ModelChange {
            provider: "lmstudio".into(),
            model_id: "qwen3".into(),
        };
        assert_eq!(
            again.mark(key, &model).unwrap().body,
            Body::ModelChange {
                provider: "lmstudio".into(),
                model_id: "qwen3".into()
            }
        );
        let reset = Mark::Reset {
            reason: "new".into(),
        };
        again.mark(key, &reset).unwrap();
        again
            .record(key, &turn(&[Message::user("Hello again")], &reply("Hi")))
            .unwrap();
        let tree = again.tree(&entry.session_id).unwrap();
        assert_eq!(tree.model(), Some(("lmstudio".into(), "qwen3".into())));
        assert_eq!(tree.context().len(), 2, "{:?}", tree.context());
        // A new session for the key: a new id, the old transcript untouched.
        let before = again.transcript(&entry.session_id).unwrap().events.len();
        let renewed = again.renew(key).unwrap();
        assert_ne!(renewed, entry.session_id);
        assert_eq!(again.get(key).unwrap().session_id, renewed);
        assert_eq!(
            again.transcript(&entry.session_id).unwrap().events.len(),
            before
        );
        assert!(again.tree(&renewed).unwrap().entries.is_empty());
        let written = again
            .record(key, &turn(&[Message::user("Fresh")], &reply("Yes")))
            .unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].parent_id, None, "the new transcript's root");
        let summary = Mark::Compaction {
            summary: "## Goal\nchat".into(),
            first_kept_entry_id: Some(written[0].id.clone()),
            tokens_before: 99,
        };
        again.mark(key, &summary).unwrap();
        assert_eq!(again.get(key).unwrap().other["compactionCount"], 1);
        assert_eq!(again.tree(&renewed).unwrap().context().len(), 3);
    }

    #[test]
    fn maintenance_keeps_the_index_bounded_and_loses_nothing_durable() {
        for legacy in [false, true] {
            maintenance_in(legacy);
        }
    }

    fn maintenance_in(legacy: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), legacy).with_maintenance(Maintenance {
            enforce: true,
            prune_after: std::time::Duration::from_secs(3600),
            max_entries: 3,
        });
        let r = reply("ok");
        let say = |key: &str| {
            store
                .record(key, &turn(&[Message::user("hi")], &r))
                .unwrap()
        };
        say("agent:main:main");
        say("agent:main:openai-user:ada");
        let ada = store.get("agent:main:openai-user:ada").unwrap().session_id;
        for n in 0..6 {
            say(&format!("agent:main:openai:{n}"));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let keys: Vec<String> = store.list().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "agent:main:main",
                "agent:main:openai-user:ada",
                "agent:main:openai:5"
            ],
            "protected, a conversation, the newest stateless one"
        );
        // Past the cap with only conversations left, the least recent is set
        // aside (its transcript kept as `*.deleted.<time>`); one-request
        // sessions went with their transcripts.
        say("agent:main:openai-user:bob");
        std::thread::sleep(std::time::Duration::from_millis(2));
        say("agent:main:openai-user:cy");
        let files: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f != "sessions.json")
            .collect();
        // Legacy: main's, bob's and cy's transcripts are files too.
        let expected = if legacy { 4 } else { 1 };
        assert_eq!(files.len(), expected, "ada set aside: {files:?}");
        let aside = files
            .iter()
            .find(|f| f.starts_with(&format!("{ada}.jsonl.deleted.")))
            .unwrap_or_else(|| panic!("{files:?}"));
        let kept = std::fs::read_to_string(store.dir().join(aside)).unwrap();
        assert_eq!(Tree::parse(&kept).context().len(), 2, "{kept}");
        // The store agrees with memory after a restart.
        store.flush().unwrap();
        let again = open(dir.path(), legacy);
        assert_eq!(again.list().len(), 3);
        assert!(again.get("agent:main:openai-user:ada").is_none());

        // `warn` prunes nothing.
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), legacy).with_maintenance(Maintenance {
            enforce: false,
            max_entries: 1,
            ..Maintenance::default()
        });
        for n in 0..3 {
            store
                .record(
                    &format!("agent:main:openai:{n}"),
                    &turn(&[Message::user("hi")], &r),
                )
                .unwrap();
        }
        assert_eq!(store.list().len(), 3);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_closed_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open_legacy(dir.path()).unwrap();
        let r = reply("one");
        store.record("k", &turn(&[Message::user("1")], &r)).unwrap();
        let id = store.get("k").unwrap().session_id;
        let path = dir.path().join(format!("{id}.jsonl"));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"type":"message","message":{"role":"us"#)
            .unwrap();
        assert!(store.transcript(&id).unwrap().torn_tail);
        store.record("k", &turn(&[Message::user("2")], &r)).unwrap();
        let t = store.transcript(&id).unwrap();
        assert_eq!(
            t.events.len(),
            5,
            "the torn line is dropped, both turns are there"
        );
        assert_eq!(t.events[3]["message"]["content"], "2");
    }

    #[test]
    fn fields_openclaw_wrote_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("agents/main/sessions");
        std::fs::create_dir_all(&sessions).unwrap();
        std::fs::write(
            sessions.join("sessions.json"),
            r#"{"agent:main:main":{"sessionId":"abc","chatType":"direct","thinkingLevel":"off"}}"#,
        )
        .unwrap();
        let store = SessionStore::open(dir.path(), "main").unwrap();
        let r = reply("hi");
        store
            .record("agent:main:main", &turn(&[Message::user("hi")], &r))
            .unwrap();
        store.flush().unwrap();
        let text = std::fs::read_to_string(sessions.join("sessions.json")).unwrap();
        assert!(text.contains(r#""chatType": "direct""#), "{text}");
        assert!(sessions.join("abc.jsonl").is_file());
    }
}
