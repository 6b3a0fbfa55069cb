//! OpenClaw's legacy layout: `sessions/sessions.json` (key → entry, kept
//! in memory and replaced whole and atomically) and one append-only
//! `<sessionId>.jsonl` per transcript.
//!
//! Crash safety: the index is written to a temp file, synced and renamed, so
//! it is always the old or the new one. Transcripts are only appended, one
//! write per call; a line torn by a crash is the last one, is skipped when
//! read, and is closed off before the next append.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::backend::{Backend, Durability, Pruned, Stamp, set_aside_name};
use crate::{SessionEntry, SessionError, io};

pub(crate) struct JsonFiles {
    dir: PathBuf,
    path: PathBuf,
    index: Mutex<Index>,
    /// The index version on disk; held while the file is written, so turns
    /// finishing together share one write (group commit).
    saved: Mutex<u64>,
}

#[derive(Default)]
struct Index {
    entries: BTreeMap<String, SessionEntry>,
    /// Bumped by every change.
    version: u64,
}

impl JsonFiles {
    /// The index at `dir/sessions.json` (none yet is an empty one).
    pub(crate) fn open(dir: &Path) -> Result<JsonFiles, SessionError> {
        let path = dir.join("sessions.json");
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| SessionError::BadIndex {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(JsonFiles {
            dir: dir.to_path_buf(),
            path,
            index: Mutex::new(Index {
                entries,
                version: 0,
            }),
            saved: Mutex::new(0),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Index>, SessionError> {
        self.index.lock().map_err(|_| SessionError::Poisoned)
    }

    /// Bumps the version after a change and writes it when `when` says so.
    fn changed(
        &self,
        mut index: MutexGuard<'_, Index>,
        when: Durability,
    ) -> Result<(), SessionError> {
        index.version += 1;
        let version = index.version;
        drop(index);
        match when {
            Durability::Now => self.commit(version),
            Durability::Soon => Ok(()),
        }
    }

    /// Makes sure the index on disk is at least at `version`: a write by
    /// another turn that started later already covers this one.
    fn commit(&self, version: u64) -> Result<(), SessionError> {
        let mut saved = self.saved.lock().map_err(|_| SessionError::Poisoned)?;
        if *saved >= version {
            return Ok(());
        }
        let (text, now_at) = {
            let index = self.lock()?;
            let text = serde_json::to_string_pretty(&index.entries).unwrap_or_else(|_| "{}".into());
            (text, index.version)
        };
        // Written beside the old index, synced, renamed over it and the
        // folder synced: a crash leaves the old index or the new one, whole.
        let mut file = atomic_write_file::AtomicWriteFile::open(&self.path)
            .map_err(io("write", &self.path))?;
        file.write_all(text.as_bytes())
            .map_err(io("write", &self.path))?;
        file.commit().map_err(io("replace", &self.path))?;
        *saved = now_at;
        Ok(())
    }

    fn transcript_path(&self, session_id: &str) -> PathBuf {
        self.dir.join(format!("{session_id}.jsonl"))
    }
}

impl Backend for JsonFiles {
    fn location(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &str) -> Result<Option<SessionEntry>, SessionError> {
        Ok(self.lock()?.entries.get(key).cloned())
    }

    fn find_id(&self, session_id: &str) -> Result<Option<(String, SessionEntry)>, SessionError> {
        Ok(self
            .lock()?
            .entries
            .iter()
            .find(|(_, e)| e.session_id == session_id)
            .map(|(k, e)| (k.clone(), e.clone())))
    }

    fn list(&self) -> Result<Vec<(String, SessionEntry)>, SessionError> {
        Ok(self
            .lock()?
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn count(&self) -> Result<usize, SessionError> {
        Ok(self.lock()?.entries.len())
    }

    fn generations(&self, key: &str) -> Result<Vec<String>, SessionError> {
        Ok(self.get(key)?.into_iter().map(|e| e.session_id).collect())
    }

    fn stamps(&self, before: Option<u64>) -> Result<Vec<Stamp>, SessionError> {
        Ok(self
            .lock()?
            .entries
            .iter()
            .filter(|(_, e)| before.is_none_or(|b| e.updated_at < b))
            .map(|(k, e)| Stamp {
                key: k.clone(),
                session_id: e.session_id.clone(),
                updated_at: e.updated_at,
            })
            .collect())
    }

    fn get_or_insert(
        &self,
        key: &str,
        fresh: SessionEntry,
    ) -> Result<(SessionEntry, bool), SessionError> {
        let mut index = self.lock()?;
        if let Some(e) = index.entries.get(key) {
            return Ok((e.clone(), false));
        }
        index.entries.insert(key.to_string(), fresh.clone());
        self.changed(index, Durability::Now)?;
        Ok((fresh, true))
    }

    fn put(&self, key: &str, entry: &SessionEntry, when: Durability) -> Result<(), SessionError> {
        let mut index = self.lock()?;
        index.entries.insert(key.to_string(), entry.clone());
        self.changed(index, when)
    }

    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut SessionEntry),
        when: Durability,
    ) -> Result<bool, SessionError> {
        let mut index = self.lock()?;
        let Some(e) = index.entries.get_mut(key) else {
            return Ok(false);
        };
        change(e);
        self.changed(index, when)?;
        Ok(true)
    }

    fn remove(&self, gone: &[Pruned]) -> Result<(), SessionError> {
        if gone.is_empty() {
            return Ok(());
        }
        let mut index = self.lock()?;
        for p in gone {
            index.entries.remove(&p.key);
        }
        // The index that no longer names them is on disk before the
        // transcripts go.
        self.changed(index, Durability::Now)?;
        for p in gone {
            let path = self.transcript_path(&p.session_id);
            // A transcript that cannot be moved stays where it was: nothing
            // is lost, and the index no longer lists it.
            let _ = if p.keep_transcript {
                std::fs::rename(&path, self.dir.join(set_aside_name(&p.session_id)))
            } else {
                std::fs::remove_file(&path)
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), SessionError> {
        let version = self.lock()?.version;
        self.commit(version)
    }

    fn append(&self, _key: &str, session_id: &str, events: &[Value]) -> Result<(), SessionError> {
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
        for event in events {
            out.push_str(&event.to_string());
            out.push('\n');
        }
        // One write for the whole turn: a crash leaves at most its tail torn.
        file.write_all(out.as_bytes())
            .map_err(io("append to", &path))
    }

    fn read(&self, session_id: &str) -> Result<Option<String>, SessionError> {
        let path = self.transcript_path(session_id);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
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
