//! `pincer chat` end to end: the real binary, a config file naming llama.cpp's
//! real server, each dialect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use pincer_testkit::{LlamaServer, free_port};
use serde_json::Value;

/// A config with provider `llamacpp` at `base_url` speaking `api`, plus a
/// `dead` provider nobody listens on.
fn config(dir: &std::path::Path, base_url: &str, api: &str, primary: &str) -> std::path::PathBuf {
    let dead = format!("http://127.0.0.1:{}/v1", free_port());
    let text = format!(
        r#"{{
  agents: {{ defaults: {{
    model: {{ primary: "{primary}", fallbacks: ["llamacpp/smollm2"] }},
    models: {{ "llamacpp/smollm2": {{ alias: "smol" }} }},
  }} }},
  models: {{ mode: "merge", providers: {{
    llamacpp: {{ baseUrl: "{base_url}", api: "{api}", apiKey: "sk-local-secret-0123456789",
      models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 256 }}] }},
    dead: {{ baseUrl: "{dead}", api: "openai-completions",
      models: [{{ id: "gone", contextWindow: 2048, maxTokens: 256 }}] }},
  }} }},
}}"#
    );
    let path = dir.join("openclaw.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn pincer(home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn chat_answers_in_every_dialect_with_model_tokens_and_cost() {
    let server = LlamaServer::start();
    let home = tempfile::tempdir().unwrap();
    for api in [
        "openai-completions",
        "openai-responses",
        "anthropic-messages",
    ] {
        let cfg = config(home.path(), &server.base_url(), api, "llamacpp/smollm2");
        let cfg = cfg.to_str().unwrap();

        let out = pincer(
            home.path(),
            &[
                "--config",
                cfg,
                "chat",
                "-m",
                "Say hello to Ada.",
                "--max-tokens",
                "20",
            ],
            None,
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{api}: {stderr}");
        assert!(!stdout.trim().is_empty(), "{api}: no answer");
        let summary = stderr.lines().last().unwrap_or_default();
        assert!(
            summary.starts_with("[llamacpp/smollm2 · "),
            "{api}: {stderr}"
        );
        assert!(summary.contains(" out · $0.000000 · "), "{api}: {summary}");
        assert!(!stderr.contains("sk-local-secret"), "{api}: key leaked");

        let out = pincer(
            home.path(),
            &[
                "--config",
                cfg,
                "chat",
                "-M",
                "smol",
                "-m",
                "Hi",
                "--temperature",
                "0",
                "--max-tokens",
                "8",
                "--json",
            ],
            None,
        );
        assert!(out.status.success(), "{api}: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["model"], "llamacpp/smollm2");
        assert!(!v["text"].as_str().unwrap().is_empty());
        let output = v["usage"]["output"].as_u64().unwrap();
        assert!((1..=8).contains(&output), "{api}: {v}");
        assert_eq!(v["cost"], 0.0);
        assert!(v.get("reasoning").is_none());
    }
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn chat_reads_the_message_from_stdin_when_piped() {
    let server = LlamaServer::start();
    let home = tempfile::tempdir().unwrap();
    let cfg = config(
        home.path(),
        &server.base_url(),
        "openai-completions",
        "llamacpp/smollm2",
    );
    let out = pincer(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "chat",
            "--max-tokens",
            "8",
            "--json",
        ],
        Some("Say hi"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["usage"]["input"].as_u64().unwrap() + v["usage"]["cacheRead"].as_u64().unwrap() > 0);
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn a_dead_primary_falls_back_and_says_so() {
    let server = LlamaServer::start();
    let home = tempfile::tempdir().unwrap();
    let cfg = config(
        home.path(),
        &server.base_url(),
        "openai-completions",
        "dead/gone",
    );
    let out = pincer(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "chat",
            "-m",
            "Hi",
            "--temperature",
            "0",
            "--max-tokens",
            "8",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "llamacpp/smollm2");
    assert_eq!(v["attempts"][0]["model"], "dead/gone");
    assert_eq!(v["attempts"][0]["kind"], "connection", "{v}");
    assert_eq!(v["attempts"][0]["next"], "trying llamacpp/smollm2", "{v}");
    let said = text(&out.stderr);
    assert_eq!(
        said.matches("note: dead/gone: ").count(),
        1,
        "told once, as it happened, with what came next: {said}"
    );
    assert!(
        said.contains("(connection); trying llamacpp/smollm2"),
        "{said}"
    );
    assert!(
        v["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{v}"
    );

    // With the server gone too, one error lists both attempts. The dead
    // primary is cooling down now, so it is skipped without a call.
    let port = server.port;
    server.stop();
    let chat = || {
        pincer(
            home.path(),
            &[
                "--config",
                cfg.to_str().unwrap(),
                "chat",
                "-m",
                "Hi",
                "--temperature",
                "0",
                "--max-tokens",
                "8",
            ],
            None,
        )
    };
    let out = chat();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no model answered (2 tried)"), "{stderr}");
    assert!(
        stderr.contains("dead/gone: skipped, dead is cooling down for")
            && stderr.contains("llamacpp/smollm2: ")
            && stderr.contains("(connection)"),
        "{stderr}"
    );
    assert!(stderr.contains("the earliest cooldown ends in"), "{stderr}");
    // The cooldowns are kept in the state dir for the next run.
    let state = home.path().join(".openclaw/pincer/cooldowns.json");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        saved["entries"]["llamacpp"]["reason"], "connection",
        "{saved}"
    );

    // The server comes back: with every candidate cooling down, all are
    // probed, and the one that recovered answers at once.
    let server = LlamaServer::start_on(port, 2048);
    let out = chat();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("[llamacpp/smollm2 ·"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["entries"]["llamacpp"]["cooldownUntil"], 0, "{saved}");
    server.stop();
}

#[test]
fn a_prompt_over_the_window_is_refused_before_sending() {
    let home = tempfile::tempdir().unwrap();
    // Nothing listens on the provider's port: the refusal must come first.
    let cfg = config(
        home.path(),
        &format!("http://127.0.0.1:{}/v1", free_port()),
        "openai-completions",
        "llamacpp/smollm2",
    );
    let long = "word ".repeat(4000);
    let out = pincer(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "chat",
            "-M",
            "smol",
            "-m",
            &long,
        ],
        None,
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the message needs about") && stderr.contains("(2048-token window"),
        "{stderr}"
    );
}

#[test]
fn a_model_outside_the_agents_allowlist_is_refused_as_the_gateway_refuses_it() {
    let home = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let cfg = config(
        home.path(),
        &closed,
        "openai-completions",
        "llamacpp/smollm2",
    );
    let out = pincer(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "chat",
            "-M",
            "dead/gone",
            "-m",
            "Hi",
        ],
        None,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the model dead/gone is not allowed for agent main"),
        "{err}"
    );
}
