//! The SQLite layout as OpenClaw's tools see it: the rows, a database that
//! is not one Pincer can use, rows OpenClaw wrote compressed, and the move
//! of a legacy store into the database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::say;

use std::path::{Path, PathBuf};

use pincer_sessions::{SCHEMA_VERSION, SessionError, SessionStore};
use pincer_types::Message;
use rusqlite::{Connection, params};

fn db_path(state: &Path) -> PathBuf {
    state.join("agents/main/agent/openclaw-agent.sqlite")
}

fn said(store: &SessionStore, key: &str) -> Vec<String> {
    let id = store.get(key).unwrap().session_id;
    store
        .tree(&id)
        .unwrap()
        .context()
        .iter()
        .map(|m| match m {
            Message::User { text } | Message::Assistant { text, .. } => text.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn the_rows_are_openclaws() {
    let state = tempfile::tempdir().unwrap();
    let store = SessionStore::open(state.path(), "main").unwrap();
    assert_eq!(store.location(), db_path(state.path()));
    say(&store, "agent:main:main", "hello");
    say(&store, "agent:main:main", "again");
    let first = store.get("agent:main:main").unwrap().session_id;
    let second = store.renew("agent:main:main").unwrap();
    say(&store, "agent:main:main", "fresh");

    let db = Connection::open(db_path(state.path())).unwrap();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let journal: String = db
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let (role, agent): (String, String) = db
        .query_row(
            "SELECT role, agent_id FROM schema_meta WHERE meta_key = 'primary'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((role.as_str(), agent.as_str()), ("agent", "main"));
    // The node: the whole entry as JSON, its id and time projected.
    let (current, json, valid, updated): (String, String, i64, i64) = db
        .query_row(
            "SELECT current_session_id, entry_json, entry_valid, updated_at
             FROM session_nodes WHERE session_key = 'agent:main:main'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(current, second);
    assert_eq!(entry["sessionId"], second.as_str());
    assert_eq!(entry["updatedAt"], updated);
    assert_eq!(entry["turns"], 1);
    assert_eq!(valid, 1);
    // Two generations of the key, the second after a reset of the first.
    let windows: Vec<(String, Option<String>, String)> = db
        .prepare(
            "SELECT session_id, previous_session_id, reason FROM session_windows
             WHERE session_key = 'agent:main:main' ORDER BY created_at, reason",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        windows,
        [
            (first.clone(), None, "initial".to_string()),
            (second.clone(), Some(first.clone()), "reset".to_string())
        ]
    );
    // The events in order, the header first, each entry's identity kept.
    let events: Vec<(i64, String)> = db
        .prepare("SELECT seq, event_json FROM transcript_events WHERE session_id = ?1 ORDER BY seq")
        .unwrap()
        .query_map([&first], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 5, "header + 2 × (user, assistant)");
    assert_eq!(
        events.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(events[0].1.contains(r#""type":"session""#));
    let identities: i64 = db
        .query_row(
            "SELECT count(*) FROM transcript_event_identities WHERE session_id = ?1",
            [&first],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(identities, 4);
    assert_eq!(
        store.generations("agent:main:main").unwrap(),
        [first.clone(), second.clone()]
    );
    // The old generation is still read whole; the new one is the context.
    assert_eq!(store.tree(&first).unwrap().context().len(), 4);
    assert_eq!(said(&store, "agent:main:main"), ["fresh", "re: fresh"]);
}

#[test]
fn a_database_pincer_cannot_use_is_refused_with_the_reason() {
    type Spoil<'a> = &'a dyn Fn(&Connection);
    let cases: [(&str, Spoil, &str); 4] = [
        (
            "newer",
            &|db| db.pragma_update(None, "user_version", 24).unwrap(),
            "schema version 24, written by a newer OpenClaw",
        ),
        (
            "older",
            &|db| db.pragma_update(None, "user_version", 19).unwrap(),
            "run `openclaw doctor --fix`",
        ),
        (
            "foreign",
            &|db| db.execute_batch("CREATE TABLE notes (x TEXT)").unwrap(),
            "not an OpenClaw agent database",
        ),
        (
            "another agent's",
            &|db| {
                db.execute("UPDATE schema_meta SET agent_id = 'work'", [])
                    .unwrap();
            },
            r#"belongs to agent "work", not agent "main""#,
        ),
    ];
    for (name, spoil, says) in cases {
        let state = tempfile::tempdir().unwrap();
        let path = db_path(state.path());
        if name == "another agent's" {
            drop(SessionStore::open(state.path(), "main").unwrap());
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        spoil(&Connection::open(&path).unwrap());
        let err = match SessionStore::open(state.path(), "main") {
            Err(e) => e,
            Ok(_) => panic!("{name}: opened"),
        };
        assert!(
            matches!(err, SessionError::Schema { .. }),
            "{name}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(says), "{name}: {text}");
        assert!(text.contains("openclaw-agent.sqlite"), "{name}: {text}");
    }
}

#[test]
fn rows_openclaw_wrote_are_read_and_kept() {
    let state = tempfile::tempdir().unwrap();
    drop(SessionStore::open(state.path(), "main").unwrap());
    let db = Connection::open(db_path(state.path())).unwrap();
    // An entry with OpenClaw's own fields, a placeholder row OpenClaw reads
    // as absent, and a transcript with a compressed event.
    let entry = r#"{"sessionId":"s1","updatedAt":5,"chatType":"direct","thinkingLevel":"low"}"#;
    db.execute(
        "INSERT INTO session_nodes (session_key, current_session_id, entry_json, entry_valid, updated_at)
         VALUES ('agent:main:main', 's1', ?1, 1, 5), ('agent:main:gone', 's2', '{}', -1, 5)",
        [entry],
    )
    .unwrap();
    db.execute(
        "INSERT INTO session_windows (session_id, session_key, created_at, updated_at)
         VALUES ('s1', 'agent:main:main', 5, 5)",
        [],
    )
    .unwrap();
    let header =
        r#"{"type":"session","version":4,"id":"s1","timestamp":"2026-12-01T10:00:00.000Z"}"#;
    let user = r#"{"type":"message","id":"a1","parentId":null,"timestamp":"2026-12-01T10:00:01.000Z","message":{"role":"user","content":[{"type":"text","text":"what is the tide?"}]}}"#;
    let long = "low water at six, high at noon. ".repeat(64);
    let assistant = serde_json::json!({"type": "message", "id": "a2", "parentId": "a1",
        "timestamp": "2026-12-01T10:00:02.000Z",
        "message": {"role": "assistant", "content": [{"type": "text", "text": long}],
            "provider": "ollama", "model": "qwen3", "stopReason": "stop",
            "usage": {"input": 9, "output": 99}}})
    .to_string();
    let frame = ruzstd::encoding::compress_to_vec(
        assistant.as_bytes(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    assert!(frame.len() < assistant.len() / 2);
    db.execute(
        "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES ('s1', 0, ?1, 5), ('s1', 1, ?2, 5)",
        params![header, user],
    )
    .unwrap();
    db.execute(
        "INSERT INTO transcript_events (session_id, seq, event_zstd, event_utf8_bytes, navigation_json, created_at)
         VALUES ('s1', 2, ?1, ?2, '{}', 5)",
        params![frame, assistant.len() as i64],
    )
    .unwrap();
    drop(db);

    let store = SessionStore::open(state.path(), "main").unwrap();
    let keys: Vec<String> = store.list().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["agent:main:main"], "the placeholder is absent");
    assert!(store.get("agent:main:gone").is_none());
    assert_eq!(
        said(&store, "agent:main:main"),
        ["what is the tide?", long.as_str()]
    );
    let usage = store.usage_by_model().unwrap();
    assert_eq!(usage["ollama/qwen3"].output, 99);
    // A turn continues the chain after OpenClaw's last entry, and the
    // fields Pincer does not know are still there.
    say(&store, "agent:main:main", "and tomorrow?");
    let tree = store.tree("s1").unwrap();
    assert_eq!(tree.branch().len(), 4, "{:?}", tree.entries);
    let e = store.get("agent:main:main").unwrap();
    assert_eq!(e.other["chatType"], "direct");
    assert_eq!(e.other["thinkingLevel"], "low");
    assert_eq!(e.turns, 1);

    // A row that is not an entry: reading it by key says so.
    let db = Connection::open(db_path(state.path())).unwrap();
    db.execute(
        "UPDATE session_nodes SET entry_json = '{\"updatedAt\": 5}' WHERE session_key = 'agent:main:main'",
        [],
    )
    .unwrap();
    assert!(store.list().is_empty());
    assert!(store.get("agent:main:main").is_none());
}

#[test]
fn a_legacy_store_moves_into_the_database() {
    let state = tempfile::tempdir().unwrap();
    let sessions = state.path().join("agents/main/sessions");
    let legacy = SessionStore::open_legacy(&sessions).unwrap();
    say(&legacy, "agent:main:main", "one");
    say(&legacy, "agent:main:main", "two");
    say(&legacy, "agent:main:cli:notes", "three");
    legacy.flush().unwrap();
    drop(legacy);
    // Until it is imported, the legacy store is the one used.
    let before = SessionStore::open(state.path(), "main").unwrap();
    assert!(before.location().ends_with("sessions.json"));
    drop(before);

    let imported = SessionStore::import(state.path(), "main").unwrap().unwrap();
    assert_eq!((imported.sessions, imported.events), (2, 8));
    assert!(!sessions.join("sessions.json").exists());
    let archived: Vec<String> = std::fs::read_dir(&imported.archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(archived.len(), 3, "{archived:?}");
    assert!(
        archived
            .iter()
            .any(|f| f.starts_with("legacy-store.sessions.json.imported-"))
    );

    let store = SessionStore::open(state.path(), "main").unwrap();
    assert_eq!(store.location(), db_path(state.path()));
    assert_eq!(
        said(&store, "agent:main:main"),
        ["one", "re: one", "two", "re: two"]
    );
    assert_eq!(store.get("agent:main:main").unwrap().turns, 2);
    assert_eq!(said(&store, "agent:main:cli:notes"), ["three", "re: three"]);
    // Nothing to import the second time.
    assert!(
        SessionStore::import(state.path(), "main")
            .unwrap()
            .is_none()
    );
}

#[test]
fn processes_starting_together_share_one_new_database() {
    let state = tempfile::tempdir().unwrap();
    let opened: Vec<Result<SessionStore, SessionError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| SessionStore::open(state.path(), "main")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stores: Vec<SessionStore> = opened.into_iter().map(Result::unwrap).collect();
    say(&stores[0], "agent:main:main", "one");
    say(&stores[3], "agent:main:cli:x", "two");
    assert_eq!(stores[1].list().len(), 2);
}
