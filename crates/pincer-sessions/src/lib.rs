//! Sessions in OpenClaw's JSON layout, under the state dir:
//!
//! ```text
//! agents/<agentId>/sessions/sessions.json      sessionKey → SessionEntry (the index)
//! agents/<agentId>/sessions/<sessionId>.jsonl  the transcript, one event per line
//! ```
//!
//! Crash safety: the index is written whole to a temp file and renamed, so it
//! is always the old or the new one. Transcripts are only appended, one line
//! per write; a line torn by a crash is the last one, is skipped when read,
//! and is closed off before the next append. A session enters the index
//! before its transcript is created, so every transcript has an entry; the
//! index's running totals are written by `flush` (the transcripts hold
//! every turn either way).

mod entry;

pub use entry::{Body, Entry, SUMMARY_PREFIX, Tree, messages_of};

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
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

/// The sessions of one agent.
pub struct SessionStore {
    dir: PathBuf,
    index: Mutex<Index>,
    /// The index version on disk; held while the file is written, so turns
    /// finishing together share one write (group commit).
    saved: Mutex<u64>,
    /// The last entry of each transcript written lately (the next entry's
    /// `parentId`); a session not here is read once to find it.
    leaves: Mutex<HashMap<String, Option<String>>>,
    maintenance: Maintenance,
}

/// Past this many sessions, the leaf cache starts over (each is read again
/// from its file on its next turn): memory stays bounded.
const MAX_CACHED_LEAVES: usize = 10_000;

#[derive(Default)]
struct Index {
    entries: BTreeMap<String, SessionEntry>,
    /// Bumped by every change.
    version: u64,
}

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

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl SessionStore {
    /// `<state_dir>/agents/<agent>/sessions`, created when missing.
    pub fn open(state_dir: &Path, agent: &str) -> Result<SessionStore, SessionError> {
        let dir = state_dir.join("agents").join(agent).join("sessions");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join("sessions.json");
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|source| SessionError::BadIndex { path, source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(SessionStore {
            dir,
            index: Mutex::new(Index {
                entries,
                version: 0,
            }),
            saved: Mutex::new(0),
            leaves: Mutex::new(HashMap::new()),
            maintenance: Maintenance::default(),
        })
    }

    /// Prunes by `m` from now on (the default is OpenClaw's).
    pub fn with_maintenance(mut self, m: Maintenance) -> SessionStore {
        self.maintenance = m;
        self
    }

    /// Removes from `index` what maintenance prunes: sessions untouched for
    /// `prune_after`, then the least recently used past `max_entries`.
    /// Returns (session id, disposable) of each, for their transcripts.
    fn prune(&self, index: &mut Index, now: u64, keep: &str) -> Vec<(String, bool)> {
        let m = &self.maintenance;
        if !m.enforce {
            return Vec::new();
        }
        let cutoff =
            now.saturating_sub(u64::try_from(m.prune_after.as_millis()).unwrap_or(u64::MAX));
        let prunable = |k: &str| !protected(k) && k != keep;
        let mut gone: Vec<String> = index
            .entries
            .iter()
            .filter(|(k, e)| prunable(k) && e.updated_at < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        let left = index.entries.len() - gone.len();
        if left > m.max_entries + m.slack() {
            // One-request sessions go first, then the least recently used:
            // a burst of stateless calls does not push out a conversation.
            let mut by_age: Vec<(&String, (bool, u64))> = index
                .entries
                .iter()
                .filter(|(k, e)| prunable(k) && e.updated_at >= cutoff)
                .map(|(k, e)| (k, (!disposable(k), e.updated_at)))
                .collect();
            by_age.sort_by_key(|(_, order)| *order);
            gone.extend(
                by_age
                    .iter()
                    .take(left - m.max_entries)
                    .map(|(k, _)| (*k).clone()),
            );
        }
        gone.into_iter()
            .filter_map(|k| {
                let e = index.entries.remove(&k)?;
                Some((e.session_id, disposable(&k)))
            })
            .collect()
    }

    /// Deletes (disposable) or sets aside the transcripts of pruned sessions,
    /// after the index that no longer names them is on disk.
    fn drop_transcripts(&self, pruned: &[(String, bool)]) {
        let stamp = timestamp().replace(':', "-");
        for (id, disposable) in pruned {
            if let Ok(mut leaves) = self.leaves.lock() {
                leaves.remove(id);
            }
            let path = self.transcript_path(id);
            // A transcript that cannot be moved stays where it was: nothing
            // is lost, and the index no longer lists it.
            let _ = if *disposable {
                std::fs::remove_file(&path)
            } else {
                std::fs::rename(&path, path.with_extension(format!("jsonl.deleted.{stamp}")))
            };
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every session, by key.
    pub fn list(&self) -> Vec<(String, SessionEntry)> {
        self.index
            .lock()
            .map(|i| {
                i.entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<SessionEntry> {
        self.index.lock().ok()?.entries.get(key).cloned()
    }

    /// A session by its key or its id.
    pub fn find(&self, key_or_id: &str) -> Option<(String, SessionEntry)> {
        let index = self.index.lock().ok()?;
        if let Some(e) = index.entries.get(key_or_id) {
            return Some((key_or_id.to_string(), e.clone()));
        }
        index
            .entries
            .iter()
            .find(|(_, e)| e.session_id == key_or_id)
            .map(|(k, e)| (k.clone(), e.clone()))
    }

    /// Turns, tokens and cost by `provider/model`, read from every transcript.
    pub fn usage_by_model(&self) -> Result<BTreeMap<String, ModelUsage>, SessionError> {
        let mut out: BTreeMap<String, ModelUsage> = BTreeMap::new();
        for (_, entry) in self.list() {
            let transcript = match self.transcript(&entry.session_id) {
                Ok(t) => t,
                // An index entry whose transcript was never written (a crash
                // between the two) has no turns.
                Err(SessionError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            for event in &transcript.events {
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

    /// Finds `key`'s session, creating it (in the index, on disk at once,
    /// pruning others as maintenance says) when it has none. Returns its id
    /// and, for a new one, the transcript's header line to write first.
    fn open_session(&self, key: &str, now: u64) -> Result<(String, Option<Value>), SessionError> {
        let (id, fresh) = {
            let mut index = self.lock_index()?;
            let fresh = !index.entries.contains_key(key);
            let entry = index
                .entries
                .entry(key.to_string())
                .or_insert_with(|| new_entry(now));
            let id = entry.session_id.clone();
            let pruned = if fresh {
                index.version += 1;
                self.prune(&mut index, now, key)
            } else {
                Vec::new()
            };
            (id, fresh.then_some((index.version, pruned)))
        };
        let Some((version, pruned)) = fresh else {
            return Ok((id, None));
        };
        // The index names the session before its transcript exists.
        self.commit(version)?;
        self.drop_transcripts(&pruned);
        let header = json!({"type": "session", "version": 4, "id": id, "timestamp": timestamp()});
        Ok((id, Some(header)))
    }

    /// Appends one turn to `key`'s transcript (creating the session on its
    /// first turn, which is written to the index at once) and adds its usage
    /// to the index's totals in memory (see `flush`). Returns the entries
    /// written, for a caller that keeps the conversation in memory.
    pub fn record(&self, key: &str, turn: &TurnRecord<'_>) -> Result<Vec<Entry>, SessionError> {
        let now = now_ms();
        let (id, header) = self.open_session(key, now)?;
        let leaf = if header.is_some() {
            None
        } else {
            self.leaf(&id)?
        };
        let (turn_lines, leaf) = turn_lines(turn, leaf);
        let written = self.append(&id, header, &turn_lines)?;
        self.remember_leaf(&id, leaf);
        let mut index = self.lock_index()?;
        if let Some(entry) = index.entries.get_mut(key) {
            let u = &turn.reply.usage;
            entry.updated_at = now;
            entry.input_tokens += u.prompt_tokens();
            entry.output_tokens += u.output;
            entry.total_tokens += u.prompt_tokens() + u.output;
            entry.turns += 1;
            entry.cost_usd += turn.cost_usd;
        }
        // The totals reach the file with the next `flush` (the transcript,
        // already written, is the record; the index only sums it up).
        index.version += 1;
        Ok(written)
    }

    /// Sets one of the session's own fields in the index (`responseUsage`,
    /// `reasoningLevel`…: OpenClaw's names), creating the session when new.
    pub fn set_field(&self, key: &str, field: &str, value: Value) -> Result<(), SessionError> {
        let (id, header) = self.open_session(key, now_ms())?;
        if header.is_some() {
            self.append(&id, header, &[])?;
            self.remember_leaf(&id, None);
        }
        let version = {
            let mut index = self.lock_index()?;
            if let Some(e) = index.entries.get_mut(key) {
                e.other.insert(field.to_string(), value);
            }
            index.version += 1;
            index.version
        };
        self.commit(version)
    }

    /// Gives `key` a new session (`/new`, `/reset`): a new id and an empty
    /// transcript. The old transcript stays where it was, whole.
    pub fn renew(&self, key: &str) -> Result<String, SessionError> {
        let now = now_ms();
        let version = {
            let mut index = self.lock_index()?;
            index.entries.insert(key.to_string(), new_entry(now));
            index.version += 1;
            index.version
        };
        self.commit(version)?;
        let (id, header) = self.open_session(key, now)?;
        self.append(&id, header, &[])?;
        self.remember_leaf(&id, None);
        Ok(id)
    }
    /// Writes the index if it changed since it was last written. A server
    /// calls this every second and when it stops; after a crash the totals
    /// in the index may trail the transcripts by that much.
    pub fn flush(&self) -> Result<(), SessionError> {
        let version = self.lock_index()?.version;
        self.commit(version)
    }

    fn lock_index(&self) -> Result<std::sync::MutexGuard<'_, Index>, SessionError> {
        self.index.lock().map_err(|_| SessionError::Poisoned)
    }

    /// Makes sure the index on disk is at least at `version`: a write by
    /// another turn that started later already covers this one.
    fn commit(&self, version: u64) -> Result<(), SessionError> {
        let mut saved = self.saved.lock().map_err(|_| SessionError::Poisoned)?;
        if *saved >= version {
            return Ok(());
        }
        let (text, now_at) = {
            let index = self.lock_index()?;
            let text = serde_json::to_string_pretty(&index.entries).unwrap_or_else(|_| "{}".into());
            (text, index.version)
        };
        self.save(&text)?;
        *saved = now_at;
        Ok(())
    }

    /// The transcript of `session_id`, skipping a torn last line.
    pub fn transcript(&self, session_id: &str) -> Result<Transcript, SessionError> {
        let path = self.transcript_path(session_id);
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        let mut events = Vec::new();
        let mut torn_tail = false;
        for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
            // Only a crash mid-append tears a line: at the end, or in the
            // middle once a later append has closed it off.
            match serde_json::from_str(line) {
                Ok(v) => events.push(v),
                Err(_) => torn_tail = true,
            }
        }
        Ok(Transcript { events, torn_tail })
    }

    /// The transcript of `session_id` as a conversation tree (entries,
    /// branch, what the model sees); a missing file is an empty tree.
    pub fn tree(&self, session_id: &str) -> Result<Tree, SessionError> {
        let path = self.transcript_path(session_id);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Tree::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tree::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
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
        let mut written = self.append(&session_id, header, &[line])?;
        self.remember_leaf(&session_id, Some(id));
        if let Mark::Compaction { .. } = mark {
            let mut index = self.lock_index()?;
            if let Some(e) = index.entries.get_mut(key) {
                let n = e.other.get("compactionCount").and_then(Value::as_u64);
                e.other
                    .insert("compactionCount".into(), (n.unwrap_or(0) + 1).into());
                index.version += 1;
            }
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

    fn transcript_path(&self, session_id: &str) -> PathBuf {
        self.dir.join(format!("{session_id}.jsonl"))
    }

    /// Appends `lines` (after `header`, for a new transcript) in one write,
    /// and returns them as entries.
    fn append(
        &self,
        session_id: &str,
        header: Option<Value>,
        lines: &[Value],
    ) -> Result<Vec<Entry>, SessionError> {
        let path = self.transcript_path(session_id);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io("open", &path))?;
        let mut out = String::new();
        if ends_without_newline(&mut file).map_err(io("read", &path))? {
            out.push('\n');
        }
        if let Some(h) = header {
            out.push_str(&h.to_string());
            out.push('\n');
        }
        let from = out.len();
        for line in lines {
            out.push_str(&line.to_string());
            out.push('\n');
        }
        // One write for the whole turn: a crash leaves at most its tail torn.
        file.write_all(out.as_bytes())
            .map_err(io("append to", &path))?;
        Ok(Tree::parse(&out[from..]).entries)
    }

    fn save(&self, text: &str) -> Result<(), SessionError> {
        let path = self.dir.join("sessions.json");
        // Written beside the old index, synced, renamed over it and the
        // folder synced: a crash leaves the old index or the new one, whole.
        let mut file =
            atomic_write_file::AtomicWriteFile::open(&path).map_err(io("write", &path))?;
        file.write_all(text.as_bytes())
            .map_err(io("write", &path))?;
        file.commit().map_err(io("replace", &path))
    }
}

/// A torn last line has no newline; the next append must not glue onto it.
fn ends_without_newline(file: &mut std::fs::File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The entries of one turn, chained from `leaf`; returns them and the new leaf.
fn turn_lines(turn: &TurnRecord<'_>, mut leaf: Option<String>) -> (Vec<Value>, Option<String>) {
    let mut entry = |message: Value| {
        let id = entry_id();
        let line = json!({"type": "message", "id": id, "parentId": leaf, "timestamp": timestamp(), "message": message});
        leaf = Some(id);
        line
    };
    let mut lines: Vec<Value> = turn.input.iter().map(|m| entry(message_json(m))).collect();
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
        } => {
            json!({"role": "toolResult", "toolCallId": call_id, "toolName": name,
                "content": [{"type": "text", "text": content}], "isError": false, "timestamp": now_ms()})
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
        }
    }

    #[test]
    fn turns_are_appended_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path(), "main").unwrap();
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
        let again = SessionStore::open(dir.path(), "main").unwrap();
        let entry = again.get("agent:main:openai-user:ada").unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path(), "main")
            .unwrap()
            .with_maintenance(Maintenance {
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
        assert_eq!(files.len(), 4, "main, bob, cy and ada set aside: {files:?}");
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(&format!("{ada}.jsonl.deleted."))),
            "{files:?}"
        );
        // The file agrees with memory after a restart.
        store.flush().unwrap();
        let again = SessionStore::open(dir.path(), "main").unwrap();
        assert_eq!(again.list().len(), 3);
        assert!(again.get("agent:main:openai-user:ada").is_none());

        // `warn` prunes nothing.
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path(), "main")
            .unwrap()
            .with_maintenance(Maintenance {
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
        let store = SessionStore::open(dir.path(), "main").unwrap();
        let r = reply("one");
        store.record("k", &turn(&[Message::user("1")], &r)).unwrap();
        let id = store.get("k").unwrap().session_id;
        let path = store.transcript_path(&id);
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
