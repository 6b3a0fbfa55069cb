//! OpenClaw's current layout: one SQLite database per agent
//! (`agents/<id>/agent/openclaw-agent.sqlite`, schema version 23) holding
//! the index (`session_nodes`: the whole entry as JSON under its key), the
//! transcript generations of each key (`session_windows`) and their events
//! (`transcript_events`, in order by `seq`).
//!
//! Opened as OpenClaw opens it: WAL, `synchronous = NORMAL`, foreign keys on,
//! a 5 s busy timeout, every change in one `BEGIN IMMEDIATE` transaction. A
//! change costs a few row writes whatever the number of sessions. A database
//! OpenClaw made is read and written in place (its own tables, triggers and
//! derived search indexes are left to it); a new one gets only the tables a
//! session store needs, with OpenClaw's names and columns.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::backend::{Backend, Durability, Pruned, Stamp, set_aside_name};
use crate::{SessionEntry, SessionError, io, now_ms};

/// The schema version OpenClaw 2026.9.6 writes, and the one read here.
pub const SCHEMA_VERSION: i64 = 23;

/// The largest event OpenClaw stores compressed; a frame that says more is
/// not read.
const MAX_EVENT_BYTES: u64 = 4 * 1024 * 1024;

/// What a new database gets (OpenClaw's tables for sessions, with its
/// column names and types; its other tables are OpenClaw's business).
const SCHEMA: &str = "
CREATE TABLE schema_meta (
  meta_key TEXT NOT NULL PRIMARY KEY,
  role TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  agent_id TEXT,
  app_version TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE session_nodes (
  session_key TEXT NOT NULL PRIMARY KEY,
  current_session_id TEXT NOT NULL,
  entry_json TEXT NOT NULL,
  entry_valid INTEGER NOT NULL DEFAULT 0 CHECK (entry_valid IN (-1, 0, 1)),
  updated_at INTEGER NOT NULL,
  created_at INTEGER
) STRICT;
CREATE INDEX idx_agent_session_nodes_updated_at ON session_nodes(updated_at DESC, session_key);
CREATE INDEX idx_agent_session_nodes_current_session_id ON session_nodes(current_session_id);
CREATE TABLE session_windows (
  session_id TEXT NOT NULL PRIMARY KEY,
  session_key TEXT NOT NULL REFERENCES session_nodes(session_key) ON DELETE CASCADE,
  previous_session_id TEXT,
  reason TEXT,
  session_scope TEXT NOT NULL DEFAULT 'conversation',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  transcript_updated_at INTEGER DEFAULT NULL
) STRICT;
CREATE INDEX idx_agent_session_windows_session_key
  ON session_windows(session_key, updated_at DESC, session_id);
CREATE TABLE transcript_events (
  session_id TEXT NOT NULL REFERENCES session_windows(session_id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  event_json TEXT,
  created_at INTEGER NOT NULL,
  event_zstd BLOB,
  event_utf8_bytes INTEGER,
  navigation_json TEXT,
  PRIMARY KEY (session_id, seq)
) STRICT;
CREATE TABLE transcript_rewrite_watermarks (
  session_id TEXT NOT NULL PRIMARY KEY REFERENCES session_windows(session_id) ON DELETE CASCADE,
  generation TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE transcript_event_identities (
  session_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_type TEXT,
  parent_id TEXT,
  message_idempotency_key TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, event_id),
  FOREIGN KEY (session_id, seq) REFERENCES transcript_events(session_id, seq) ON DELETE CASCADE
) STRICT;
";

pub(crate) struct Sqlite {
    path: PathBuf,
    /// Where set-aside transcripts go (the agent's `sessions` folder).
    archive: PathBuf,
    db: Mutex<Connection>,
}

/// `i64` for SQLite; times past 2262 are clamped.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Sqlite {
    /// Opens (or creates) the database at `path` for `agent`; set-aside
    /// transcripts go to `archive`.
    /// Opens (or makes) the database. Processes starting together may
    /// find it locked in ways SQLite's busy timeout does not wait out (a
    /// switch to the write-ahead log): those tries are made again, for up
    /// to 5 s.
    pub(crate) fn open(path: &Path, agent: &str, archive: &Path) -> Result<Sqlite, SessionError> {
        let started = std::time::Instant::now();
        loop {
            match Sqlite::open_once(path, agent, archive) {
                Err(SessionError::Db { source, .. })
                    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && started.elapsed() < std::time::Duration::from_secs(5) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path, agent: &str, archive: &Path) -> Result<Sqlite, SessionError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        create_private_file(path)?;
        let db_err = db_error(path);
        let mut db = Connection::open(path).map_err(&db_err)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&db_err)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(&db_err)?;
        let schema = |problem: String| SessionError::Schema {
            path: path.to_path_buf(),
            problem,
        };
        if version > SCHEMA_VERSION {
            return Err(schema(format!(
                "it has schema version {version}, written by a newer OpenClaw; Pincer reads version {SCHEMA_VERSION}"
            )));
        }
        if version > 0 && version < SCHEMA_VERSION {
            return Err(schema(format!(
                "it has the older schema version {version}; run `openclaw doctor --fix` to migrate it to {SCHEMA_VERSION}"
            )));
        }
        let journal: String = db
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(&db_err)?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(schema(format!(
                "it cannot use a write-ahead log (journal mode {journal})"
            )));
        }
        db.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(&db_err)?;
        // Made here, or by another process that got there first.
        let made = version == 0 && create(&mut db, agent).map_err(&db_err)?;
        if !made {
            let version: i64 = db
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(&db_err)?;
            if version == 0 {
                return Err(schema(
                    "it is not an OpenClaw agent database (no schema version)".into(),
                ));
            }
            let owner: Option<(String, Option<String>)> = db
                .query_row(
                    "SELECT role, agent_id FROM schema_meta WHERE meta_key = 'primary'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(&db_err)?;
            match owner {
                Some((role, Some(id))) if role == "agent" && id == agent => {}
                Some((role, id)) => {
                    return Err(schema(format!(
                        "it belongs to {role} {:?}, not agent {agent:?}",
                        id.unwrap_or_default()
                    )));
                }
                None => return Err(schema("it has no schema_meta row".into())),
            }
        }
        Ok(Sqlite {
            path: path.to_path_buf(),
            archive: archive.to_path_buf(),
            db: Mutex::new(db),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, SessionError> {
        self.db.lock().map_err(|_| SessionError::Poisoned)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SessionError + '_ {
        db_error(&self.path)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed when it
    /// returns `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let mut db = self.lock()?;
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let out = f(&tx)?;
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    fn parse(&self, key: &str, json: &str) -> Result<SessionEntry, SessionError> {
        serde_json::from_str(json).map_err(|source| SessionError::BadRow {
            path: self.path.clone(),
            key: key.to_string(),
            source,
        })
    }

    fn entry(&self, db: &Connection, key: &str) -> Result<Option<SessionEntry>, SessionError> {
        let json: Option<String> = db
            .prepare_cached(
                "SELECT entry_json FROM session_nodes WHERE session_key = ?1 AND entry_valid >= 0",
            )
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(self.err())?;
        json.map(|j| self.parse(key, &j)).transpose()
    }

    /// Writes `entry` as `key`'s node, and the window of its session (a new
    /// one follows the session it replaces).
    fn write_node(
        &self,
        tx: &Transaction<'_>,
        key: &str,
        entry: &SessionEntry,
    ) -> Result<(), SessionError> {
        let err = self.err();
        let json = serde_json::to_string(entry).map_err(|source| SessionError::BadRow {
            path: self.path.clone(),
            key: key.to_string(),
            source,
        })?;
        let previous: Option<String> = tx
            .prepare_cached("SELECT current_session_id FROM session_nodes WHERE session_key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(&err)?
            .filter(|id: &String| *id != entry.session_id);
        let now = int(now_ms());
        tx.prepare_cached(
            "INSERT INTO session_nodes
               (session_key, current_session_id, entry_json, entry_valid, updated_at, created_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?5)
             ON CONFLICT (session_key) DO UPDATE SET
               current_session_id = excluded.current_session_id,
               entry_json = excluded.entry_json,
               updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                key,
                entry.session_id,
                json,
                int(entry.updated_at),
                int(entry.session_started_at)
            ])
        })
        .map_err(&err)?;
        // OpenClaw's triggers mark a changed row for validation; this writer
        // has just validated it.
        tx.prepare_cached("UPDATE session_nodes SET entry_valid = 1 WHERE session_key = ?1")
            .and_then(|mut s| s.execute([key]))
            .map_err(&err)?;
        let reason = if previous.is_some() {
            "reset"
        } else {
            "initial"
        };
        let created = tx
            .prepare_cached(
                "INSERT INTO session_windows
                   (session_id, session_key, previous_session_id, reason, session_scope,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'conversation', ?5, ?5)
                 ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![entry.session_id, key, previous, reason, now]))
            .map_err(&err)?;
        if created > 0 {
            tx.prepare_cached(
                "INSERT INTO transcript_rewrite_watermarks (session_id, generation, updated_at)
                 VALUES (?1, ?2, ?3) ON CONFLICT (session_id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    entry.session_id,
                    uuid::Uuid::new_v4().simple().to_string(),
                    now
                ])
            })
            .map_err(&err)?;
        }
        Ok(())
    }

    /// The transcript generations of `key`, oldest first.
    fn windows(&self, db: &Connection, key: &str) -> Result<Vec<String>, SessionError> {
        db.prepare_cached(
            "SELECT session_id FROM session_windows WHERE session_key = ?1
             ORDER BY created_at, rowid",
        )
        .and_then(|mut s| {
            s.query_map([key], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(self.err())
    }

    /// Writes the transcripts of `key`'s windows beside the index, as
    /// OpenClaw's archive files, before the rows go.
    fn set_aside(&self, db: &Connection, key: &str) -> Result<(), SessionError> {
        let ids = self.windows(db, key)?;
        create_private_dir(&self.archive)?;
        for id in ids {
            let Some(text) = self.events(db, &id)? else {
                continue;
            };
            let path = self.archive.join(set_aside_name(&id));
            let mut file =
                atomic_write_file::AtomicWriteFile::open(&path).map_err(io("write", &path))?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io("write", &path))?;
            file.commit().map_err(io("write", &path))?;
        }
        Ok(())
    }

    /// The events of `session_id` as JSONL; rows that cannot be decoded are
    /// left out, as a torn line is.
    fn events(&self, db: &Connection, session_id: &str) -> Result<Option<String>, SessionError> {
        let mut text = String::new();
        let mut any = false;
        let mut stmt = db
            .prepare_cached(
                "SELECT event_json, event_zstd FROM transcript_events
                 WHERE session_id = ?1 ORDER BY seq",
            )
            .map_err(self.err())?;
        let mut rows = stmt.query([session_id]).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            any = true;
            let json: Option<String> = row.get(0).map_err(self.err())?;
            let line = match json {
                Some(j) => Some(j),
                None => {
                    let zstd: Option<Vec<u8>> = row.get(1).map_err(self.err())?;
                    zstd.as_deref().and_then(decompress)
                }
            };
            if let Some(line) = line.filter(|l| !l.contains('\n')) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        Ok(any.then_some(text))
    }
}

/// One zstd frame (OpenClaw's compressed events), at most 4 MiB of UTF-8.
fn decompress(frame: &[u8]) -> Option<String> {
    let decoder = ruzstd::decoding::StreamingDecoder::new(frame).ok()?;
    let mut out = String::new();
    decoder
        .take(MAX_EVENT_BYTES + 1)
        .read_to_string(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_EVENT_BYTES).then_some(out)
}

fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> SessionError + use<> {
    let path = path.to_path_buf();
    move |source| SessionError::Db {
        path: path.clone(),
        source,
    }
}

/// A folder only its owner can read (the database holds conversations).
fn create_private_dir(dir: &Path) -> Result<(), SessionError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))
}

/// The database file, created readable by its owner only when new.
fn create_private_file(path: &Path) -> Result<(), SessionError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("create", path)(e)),
    }
}

/// Makes an empty database a new one (the tables, the version and whose
/// it is), in one transaction that first checks it is still empty: `false`
/// when it is not (another process made it, or it is not OpenClaw's).
fn create(db: &mut Connection, agent: &str) -> rusqlite::Result<bool> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let objects: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?;
    if objects > 0 {
        return Ok(false);
    }
    tx.execute_batch(SCHEMA)?;
    let now = int(now_ms());
    tx.execute(
        "INSERT INTO schema_meta
           (meta_key, role, schema_version, agent_id, app_version, created_at, updated_at)
         VALUES ('primary', 'agent', ?1, ?2, ?3, ?4, ?4)",
        params![
            SCHEMA_VERSION,
            agent,
            concat!("pincer-", env!("CARGO_PKG_VERSION")),
            now
        ],
    )?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(true)
}

impl Backend for Sqlite {
    fn location(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &str) -> Result<Option<SessionEntry>, SessionError> {
        let db = self.lock()?;
        self.entry(&db, key)
    }

    fn find_id(&self, session_id: &str) -> Result<Option<(String, SessionEntry)>, SessionError> {
        let db = self.lock()?;
        let row: Option<(String, String)> = db
            .prepare_cached(
                "SELECT session_key, entry_json FROM session_nodes
                 WHERE current_session_id = ?1 AND entry_valid >= 0 LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([session_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(self.err())?;
        row.map(|(k, j)| Ok((k.clone(), self.parse(&k, &j)?)))
            .transpose()
    }

    fn list(&self) -> Result<Vec<(String, SessionEntry)>, SessionError> {
        let db = self.lock()?;
        let rows: Vec<(String, String)> = db
            .prepare_cached(
                "SELECT session_key, entry_json FROM session_nodes
                 WHERE entry_valid >= 0 ORDER BY session_key",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.err())?;
        // A row that is not an entry is left out of listings, as OpenClaw
        // does (reading it by its key says what is wrong).
        Ok(rows
            .into_iter()
            .filter_map(|(k, j)| Some((k.clone(), self.parse(&k, &j).ok()?)))
            .collect())
    }

    fn count(&self) -> Result<usize, SessionError> {
        let db = self.lock()?;
        let n: i64 = db
            .prepare_cached("SELECT count(*) FROM session_nodes WHERE entry_valid >= 0")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(self.err())?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn generations(&self, key: &str) -> Result<Vec<String>, SessionError> {
        let db = self.lock()?;
        self.windows(&db, key)
    }

    fn stamps(&self, before: Option<u64>) -> Result<Vec<Stamp>, SessionError> {
        let db = self.lock()?;
        db.prepare_cached(
            "SELECT session_key, current_session_id, updated_at FROM session_nodes
             WHERE entry_valid >= 0 AND updated_at < ?1",
        )
        .and_then(|mut s| {
            s.query_map([before.map_or(i64::MAX, int)], |r| {
                Ok(Stamp {
                    key: r.get(0)?,
                    session_id: r.get(1)?,
                    updated_at: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(self.err())
    }

    fn get_or_insert(
        &self,
        key: &str,
        fresh: SessionEntry,
    ) -> Result<(SessionEntry, bool), SessionError> {
        self.write(|tx| {
            if let Some(e) = self.entry(tx, key)? {
                return Ok((e, false));
            }
            self.write_node(tx, key, &fresh)?;
            Ok((fresh, true))
        })
    }

    fn put(&self, key: &str, entry: &SessionEntry, _when: Durability) -> Result<(), SessionError> {
        self.write(|tx| self.write_node(tx, key, entry))
    }

    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut SessionEntry),
        _when: Durability,
    ) -> Result<bool, SessionError> {
        // A commit without a sync of the log (`synchronous = NORMAL`) costs
        // about what remembering the change for `flush` would.
        self.write(|tx| {
            let Some(mut e) = self.entry(tx, key)? else {
                return Ok(false);
            };
            change(&mut e);
            self.write_node(tx, key, &e)?;
            Ok(true)
        })
    }

    fn remove(&self, gone: &[Pruned]) -> Result<(), SessionError> {
        if gone.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for p in gone {
                // A transcript that cannot be set aside keeps its session:
                // nothing is lost.
                if p.keep_transcript && self.set_aside(tx, &p.key).is_err() {
                    continue;
                }
                tx.prepare_cached("DELETE FROM session_nodes WHERE session_key = ?1")
                    .and_then(|mut s| s.execute([&p.key]))
                    .map_err(self.err())?;
            }
            Ok(())
        })
    }

    fn flush(&self) -> Result<(), SessionError> {
        Ok(())
    }

    fn append(&self, key: &str, session_id: &str, events: &[Value]) -> Result<(), SessionError> {
        self.write(|tx| {
            let err = self.err();
            let now = int(now_ms());
            tx.prepare_cached(
                "INSERT INTO session_windows
                   (session_id, session_key, session_scope, created_at, updated_at)
                 VALUES (?1, ?2, 'conversation', ?3, ?3)
                 ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![session_id, key, now]))
            .map_err(&err)?;
            let first: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(seq) + 1, 0) FROM transcript_events WHERE session_id = ?1",
                )
                .and_then(|mut s| s.query_row([session_id], |r| r.get(0)))
                .map_err(&err)?;
            for (seq, event) in (first..).zip(events) {
                let json = event.to_string();
                tx.prepare_cached(
                    "INSERT INTO transcript_events
                       (session_id, seq, event_json, event_utf8_bytes, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        session_id,
                        seq,
                        json,
                        i64::try_from(json.len()).unwrap_or(i64::MAX),
                        now
                    ])
                })
                .map_err(&err)?;
                if let Some(id) = event["id"].as_str().filter(|_| event["type"] != "session") {
                    tx.prepare_cached(
                        "INSERT INTO transcript_event_identities
                           (session_id, event_id, seq, event_type, parent_id, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (session_id, event_id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            session_id,
                            id,
                            seq,
                            event["type"].as_str(),
                            event["parentId"].as_str(),
                            now
                        ])
                    })
                    .map_err(&err)?;
                }
            }
            tx.prepare_cached(
                "UPDATE session_windows
                 SET transcript_updated_at = max(coalesce(transcript_updated_at, 0) + 1, ?2)
                 WHERE session_id = ?1",
            )
            .and_then(|mut s| s.execute(params![session_id, now]))
            .map_err(&err)?;
            Ok(())
        })
    }

    fn read(&self, session_id: &str) -> Result<Option<String>, SessionError> {
        let db = self.lock()?;
        self.events(&db, session_id)
    }
}
