//! One database, two programs: OpenClaw's own code (its npm package, run by
//! `scripts/openclaw/*.mjs`) makes an agent database and a session with a
//! compressed event; Pincer continues that session and starts another; then
//! OpenClaw lists and reads both, through its startup maintenance.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::say;

use std::path::Path;
use std::process::Command;

use pincer_sessions::SessionStore;
use pincer_types::Message;
use serde_json::Value;

const NEEDS: &str = "set PINCER_TEST_NODE (Node.js 24) and PINCER_TEST_OPENCLAW_PKG (the openclaw npm package); scripts/test-deps installs both";

/// Runs one of the scripts with OpenClaw's package; its JSON output.
fn openclaw(script: &str, state: &Path) -> Value {
    let node = std::env::var("PINCER_TEST_NODE").expect(NEEDS);
    let pkg = std::env::var("PINCER_TEST_OPENCLAW_PKG").expect(NEEDS);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/openclaw")
        .join(script);
    let out = Command::new(node)
        .arg(&path)
        .arg(state)
        .arg("main")
        .env("OPENCLAW_PKG", pkg)
        .env("HOME", state)
        .current_dir(state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}

/// The texts of OpenClaw's page of visible messages.
fn visible(read: &Value, key: &str) -> Vec<String> {
    let page = &read["transcripts"][key]["visible"];
    assert_eq!(page["kind"], "page", "{key}: {page}");
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let content = &e["message"]["content"];
            match content {
                Value::String(s) => s.clone(),
                _ => content[0]["text"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

#[test]
#[ignore = "needs OpenClaw's npm package and Node.js 24: scripts/test installs them and runs this"]
fn openclaw_and_pincer_share_one_database() {
    let state = tempfile::tempdir().unwrap();
    let made = openclaw("make-db.mjs", state.path());
    let id = made["sessionId"].as_str().unwrap().to_string();
    assert!(made["zstdRows"].as_u64().unwrap() >= 1, "{made}");

    // Pincer reads OpenClaw's session, its compressed answer included.
    let store = SessionStore::open(state.path(), "main").unwrap();
    let entry = store.get("agent:main:main").unwrap();
    assert_eq!(entry.session_id, id);
    assert_eq!(entry.other["chatType"], "direct");
    let tree = store.tree(&id).unwrap();
    let context = tree.context();
    assert_eq!(context.len(), 2, "{context:?}");
    assert!(
        matches!(&context[0], Message::User { text } if text == "Write me a long story about sqlite.")
    );
    assert!(matches!(&context[1], Message::Assistant { text, .. } if text.len() > 8000));
    let openclaws_last = tree.leaf.clone().unwrap();
    // It continues that session and starts one of its own.
    say(&store, "agent:main:main", "and a shorter one?");
    say(&store, "agent:main:cli:notes", "remember the milk");
    drop(store);

    // OpenClaw lists both and reads both, after its startup maintenance.
    let read = openclaw("read-db.mjs", state.path());
    let entries = read["entries"].as_object().unwrap();
    assert!(entries.contains_key("agent:main:cli:notes"), "{read}");
    assert_eq!(read["entries"]["agent:main:main"]["sessionId"], id.as_str());
    assert_eq!(read["entries"]["agent:main:main"]["turns"], 1);
    let events = read["transcripts"]["agent:main:main"]["events"]
        .as_array()
        .unwrap();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[3]["parentId"], openclaws_last.as_str());
    assert_eq!(
        visible(&read, "agent:main:cli:notes"),
        ["remember the milk", "re: remember the milk"]
    );
    assert_eq!(visible(&read, "agent:main:main").len(), 4);

    // And Pincer reads the database OpenClaw has since maintained.
    let store = SessionStore::open(state.path(), "main").unwrap();
    assert_eq!(store.tree(&id).unwrap().context().len(), 4);
    assert_eq!(store.list().len(), 2);
}
