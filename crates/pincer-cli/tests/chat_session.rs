//! `pincer chat --session`: a conversation kept in the agent's sessions and
//! continued by the next run, its commands, and its window budget, against a
//! scripted upstream (the requests it received are what is checked).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use pincer_testkit::{FakeUpstream, completions_stream};
use serde_json::Value;

fn config(dir: &Path, url: &str) -> String {
    let text = format!(
        r#"{{ agents: {{ defaults: {{ model: {{ primary: "acme/a" }},
    models: {{ "acme/a": {{}}, "acme/b": {{}}, "acme/tiny": {{}} }} }} }},
  models: {{ mode: "replace", providers: {{ acme: {{ baseUrl: "{url}", api: "openai-completions",
    models: [{{ id: "a", contextWindow: 4096, maxTokens: 64 }}, {{ id: "b", contextWindow: 4096, maxTokens: 64 }},
             {{ id: "tiny", contextWindow: 700, maxTokens: 64 }}] }} }} }} }}"#
    );
    let path = dir.join("openclaw.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn chat(home: &Path, config: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(["--config", config, "chat"])
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (model, the contents of every message after the system prompt) of the
/// n-th request.
fn sent(up: &FakeUpstream, n: usize) -> (String, Vec<String>) {
    let r = &up.requests()[n];
    let body: Value = serde_json::from_str(&r.body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system", "{body}");
    let contents = messages[1..]
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    (body["model"].as_str().unwrap().to_string(), contents)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_saved_conversation_continues_obeys_commands_and_fits_the_window() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path(), &up.base_url());
    let h = home.path();

    chat(h, &cfg, &["--session", "s1", "-m", "My name is Ada"]);
    let out = chat(h, &cfg, &["--session", "s1", "-m", "What is my name?"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("continuing session agent:main:cli:s1 (1 turn so far)"),
        "{said}"
    );
    assert_eq!(
        sent(&up, 1),
        (
            "a".to_string(),
            vec![
                "My name is Ada".into(),
                "Hello".into(),
                "What is my name?".into()
            ]
        )
    );

    // /model is kept with the session; no model is called for a command.
    let out = chat(h, &cfg, &["--session", "s1", "-m", "/model acme/b"]);
    assert!(
        stdout(&out).contains("Model set to acme/b."),
        "{}",
        stdout(&out)
    );
    assert_eq!(up.requests().len(), 2);
    chat(h, &cfg, &["--session", "s1", "-m", "Still there?"]);
    let (model, contents) = sent(&up, 2);
    assert_eq!((model.as_str(), contents.len()), ("b", 5));

    // /new starts the context over; the old turns stay in the transcript.
    let out = chat(h, &cfg, &["--session", "s1", "-m", "/new"]);
    assert!(stdout(&out).contains("✅ New session started · model: acme/a"));
    chat(h, &cfg, &["--session", "s1", "-m", "Fresh start"]);
    assert_eq!(sent(&up, 3).1, ["Fresh start"]);

    // Without --session nothing is remembered; the workspace's files are
    // still the user's.
    let workspace = h.join(".openclaw/workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("SOUL.md"), "Speak like a pirate.").unwrap();
    chat(h, &cfg, &["-m", "Who am I?"]);
    assert_eq!(sent(&up, 4).1, ["Who am I?"]);
    let body: Value = serde_json::from_str(&up.requests()[4].body).unwrap();
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("## SOUL.md\n\nSpeak like a pirate."),
        "{system}"
    );

    // A small window: the third long message finds the conversation past
    // the reserve, so older history is summarised first (a summary call),
    // and the turn goes with the summary and the recent tail.
    let long = "x".repeat(600);
    for _ in 0..2 {
        chat(
            h,
            &cfg,
            &["--session", "s2", "-M", "acme/tiny", "-m", &long],
        );
    }
    assert_eq!(up.requests().len(), 7);
    let out = chat(
        h,
        &cfg,
        &["--session", "s2", "-M", "acme/tiny", "-m", &long],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: 🧹 Auto-compaction complete"), "{said}");
    let summary: Value = serde_json::from_str(&up.requests()[7].body).unwrap();
    assert!(
        summary["messages"][1]["content"]
            .as_str()
            .unwrap()
            .starts_with("<conversation>\n[User]: xxx"),
        "{summary}"
    );
    let (_, contents) = sent(&up, 8);
    assert!(
        contents[0].starts_with(pincer_sessions::SUMMARY_PREFIX),
        "{contents:?}"
    );
    assert_eq!(contents.last().unwrap(), &long);

    // A message larger than the window is refused before any call (by the
    // router's preflight, which would also try a larger fallback).
    let huge = "y".repeat(4000);
    let out = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(["--config", &cfg, "chat", "-M", "acme/tiny", "-m", &huge])
        .env_clear()
        .env("HOME", h)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("(700-token window less 64"), "{said}");
    assert_eq!(
        up.requests().len(),
        9,
        "no call for a message that cannot fit"
    );

    // The transcript keeps everything: the compaction is an entry of its own.
    let out = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args([
            "--config",
            &cfg,
            "sessions",
            "show",
            "agent:main:cli:s2",
            "--json",
        ])
        .env_clear()
        .env("HOME", h)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("\"type\": \"compaction\""), "{shown}");

    // `/usage` and `/reasoning` are the session's: kept in its index entry
    // (OpenClaw's field names) and applied to the final text.
    let out = chat(h, &cfg, &["--session", "s3", "-m", "/usage tokens"]);
    assert!(stdout(&out).contains("⚙️ Usage footer: tokens."));
    let out = chat(h, &cfg, &["--session", "s3", "-m", "/reasoning"]);
    assert!(
        stdout(&out).contains("Reasoning visibility: off."),
        "{}",
        stdout(&out)
    );
    let out = chat(h, &cfg, &["--session", "s3", "--json", "-m", "Count it"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["text"], "Hello\n\n🧮 0 in / 0 out", "{v}");
    let store = pincer_sessions::SessionStore::open(&h.join(".openclaw"), "main").unwrap();
    let entry = store.get("agent:main:cli:s3").unwrap();
    assert_eq!(entry.other["responseUsage"], "tokens", "{entry:?}");
}
