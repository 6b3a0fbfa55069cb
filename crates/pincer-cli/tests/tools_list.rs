//! `pincer tools list`: every tool's verdict with the rule that decided,
//! per agent, as text and JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

fn tools(config: &str, args: &[&str]) -> (String, String) {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("openclaw.json");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(["--config", path.to_str().unwrap(), "tools", "list"])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_tool_says_which_rule_decided() {
    let config = r#"{
  models: { mode: "replace", providers: { big: { baseUrl: "http://127.0.0.1:9/v1",
    models: [{ id: "m", contextWindow: 65536 }] } } },
  agents: { defaults: { model: { primary: "big/m" } },
    entries: { main: { default: true }, helper: { tools: { profile: "minimal" } } } },
  tools: { deny: ["group:runtime", "exce"] },
}"#;
    let (out, err) = tools(config, &[]);
    assert!(out.contains("agent main · model big/m"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(line("read ").contains("allowed") && line("read ").contains("Pincer's default policy"));
    assert!(
        line("exec ").contains("denied by tools.deny (group:runtime)"),
        "{out}"
    );
    assert!(
        line("web_fetch ").contains("not in Pincer's default policy"),
        "{out}"
    );
    assert!(
        out.contains("exec: security allowlist, ask on-miss"),
        "{out}"
    );
    assert!(err.contains("\"exce\" names no tool"), "{err}");

    let (out, _) = tools(config, &["--agent", "helper", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let allowed: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["allowed"] == true)
        .map(|t| t["tool"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, ["session_status"]);
    assert_eq!(v["offered"], true);
}

#[test]
fn a_small_window_gets_no_tools_unless_chosen() {
    let (out, _) = tools("{}", &[]);
    assert!(out.contains("embedded/smollm2-135m-instruct"), "{out}");
    assert!(
        out.contains("no tools are offered unless the config chooses them"),
        "{out}"
    );
    let (out, _) = tools("{ tools: { alsoAllow: [\"web_fetch\"] } }", &["--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["offered"], true);
}
