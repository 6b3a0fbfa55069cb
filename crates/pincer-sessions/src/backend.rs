//! The one interface a session store implements: an index of sessions by
//! key and an append-only transcript per session. `SessionStore` keeps the
//! rules (new sessions, pruning, entry chains) and calls only this, so the
//! files of OpenClaw's legacy layout, its SQLite database and later a shared
//! database are interchangeable.

use std::path::Path;

use serde_json::Value;

use crate::{SessionEntry, SessionError};

/// How soon a change must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the call returns (a new session, a setting).
    Now,
    /// By the next `flush` (running totals: the transcript is the record).
    Soon,
}

/// A session as maintenance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub key: String,
    pub session_id: String,
    pub updated_at: u64,
}

/// A session maintenance removes, and what becomes of its transcripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub key: String,
    pub session_id: String,
    /// Set aside as `<sessionId>.jsonl.deleted.<time>` in the sessions
    /// folder rather than deleted (a conversation, not a one-request call).
    pub keep_transcript: bool,
}

pub trait Backend: Send + Sync {
    /// The index's file or database, for messages.
    fn location(&self) -> &Path;

    fn get(&self, key: &str) -> Result<Option<SessionEntry>, SessionError>;

    /// The session whose id is `session_id`, with its key.
    fn find_id(&self, session_id: &str) -> Result<Option<(String, SessionEntry)>, SessionError>;

    /// Every session, ordered by key.
    fn list(&self) -> Result<Vec<(String, SessionEntry)>, SessionError>;

    fn count(&self) -> Result<usize, SessionError>;

    /// The session ids `key` has had, oldest first, where the store keeps
    /// them (the legacy index knows only the current one).
    fn generations(&self, key: &str) -> Result<Vec<String>, SessionError>;

    /// Sessions last updated before `before` (ms since the epoch), or all of
    /// them when `before` is `None`.
    fn stamps(&self, before: Option<u64>) -> Result<Vec<Stamp>, SessionError>;

    /// `key`'s session, or `fresh` stored (durably) as it, in one step.
    /// Returns the entry and whether it is `fresh`.
    fn get_or_insert(
        &self,
        key: &str,
        fresh: SessionEntry,
    ) -> Result<(SessionEntry, bool), SessionError>;

    /// Stores `entry` as `key`'s session, replacing the one it had (which
    /// keeps its transcript; a new `session_id` starts a new one).
    fn put(&self, key: &str, entry: &SessionEntry, when: Durability) -> Result<(), SessionError>;

    /// Changes `key`'s entry in place; `false` when it has none.
    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut SessionEntry),
        when: Durability,
    ) -> Result<bool, SessionError>;

    /// Removes these sessions with their transcripts (set aside or deleted).
    fn remove(&self, gone: &[Pruned]) -> Result<(), SessionError>;

    /// Makes every `Soon` change durable.
    fn flush(&self) -> Result<(), SessionError>;

    /// Appends `events` to `session_id`'s transcript (of `key`'s session)
    /// in one step: a crash leaves all of them or, at worst, a torn last one
    /// that readers skip.
    fn append(&self, key: &str, session_id: &str, events: &[Value]) -> Result<(), SessionError>;

    /// The transcript as JSONL text, `None` when it has none.
    fn read(&self, session_id: &str) -> Result<Option<String>, SessionError>;
}

/// The name a set-aside transcript gets: `<sessionId>.jsonl.deleted.<time>`
/// (the time with `-` for `:`, so it is a valid file name everywhere).
pub(crate) fn set_aside_name(session_id: &str) -> String {
    let stamp = crate::timestamp().replace(':', "-");
    format!("{session_id}.jsonl.deleted.{stamp}")
}
