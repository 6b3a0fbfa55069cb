//! The seed document's configs, run through the real `pincer` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/openclaw-configs")
}

fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(
        p.exists(),
        "fixture {} is missing (../shared must sit beside the repo)",
        p.display()
    );
    p
}

/// Run pincer with a clean environment: no keys, no config but the one given.
fn pincer(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The built-in catalog's row for a model, read straight from the data file.
fn catalog_row(provider: &str, model: &str) -> Value {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/models.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let p = data["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == provider)
        .unwrap();
    p["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == model)
        .unwrap()
        .clone()
}

#[test]
fn every_fixture_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.unwrap().path();
        let out = pincer(&["config", "validate", path.to_str().unwrap(), "--json"]);
        let report = json(&out);
        assert_eq!(report["ok"], true, "{}: {report:#}", path.display());
        assert_eq!(report["errors"], 0);
        assert_eq!(report["warnings"], 0, "{}: {report:#}", path.display());
        n += 1;
    }
    assert!(n >= 4, "only {n} fixtures found");
}

fn list(fixture_name: &str) -> Vec<Value> {
    let f = fixture(fixture_name);
    let out = pincer(&[
        "--config",
        f.to_str().unwrap(),
        "models",
        "list",
        "--configured",
        "--json",
    ]);
    json(&out)["models"].as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [Value], r: &str) -> &'a Value {
    rows.iter()
        .find(|m| m["ref"] == r)
        .unwrap_or_else(|| panic!("{r} not listed: {rows:#?}"))
}

#[test]
fn hosted_primary_local_fallback_roles_and_aliases() {
    let rows = list("hosted-primary-local-fallback.json5");
    let sonnet = row(&rows, "anthropic/claude-sonnet-4-5");
    assert_eq!(sonnet["roles"], serde_json::json!(["primary"]));
    assert_eq!(sonnet["alias"], "Sonnet");
    let local = row(&rows, "lmstudio/minimax-m2.1-gs32");
    assert_eq!(local["roles"], serde_json::json!(["fallback#1"]));
    assert_eq!(local["alias"], "MiniMax Local");
    assert_eq!(local["contextWindow"], 196608);
    assert_eq!(local["maxTokens"], 8192);
    assert_eq!(local["local"], true);
    assert_eq!(local["api"], "openai-responses");
    let opus = row(&rows, "anthropic/claude-opus-4-5");
    assert_eq!(opus["roles"], serde_json::json!(["fallback#2"]));
    assert_eq!(opus["alias"], "Opus");
    // Listed in chain order.
    assert_eq!(rows[0]["ref"], "anthropic/claude-sonnet-4-5");
    assert_eq!(rows[1]["ref"], "lmstudio/minimax-m2.1-gs32");
    assert_eq!(rows[2]["ref"], "anthropic/claude-opus-4-5");
}

#[test]
fn merge_mode_resolves_anthropic_fallbacks_from_the_catalog() {
    let rows = list("local-primary-hosted-fallback.json5");
    assert_eq!(
        row(&rows, "lmstudio/minimax-m2.1-gs32")["roles"],
        serde_json::json!(["primary"])
    );
    for (model, role) in [
        ("claude-sonnet-4-5", "fallback#1"),
        ("claude-opus-4-5", "fallback#2"),
    ] {
        let r = row(&rows, &format!("anthropic/{model}"));
        let want = catalog_row("anthropic", model);
        assert_eq!(r["roles"], serde_json::json!([role]));
        assert_eq!(r["contextWindow"], want["ctx"], "{model}");
        assert_eq!(r["maxTokens"], want["out"], "{model}");
        assert_eq!(
            r["cost"]["input"].as_f64(),
            want["cost"][0].as_f64(),
            "{model}"
        );
        assert_eq!(
            r["cost"]["output"].as_f64(),
            want["cost"][1].as_f64(),
            "{model}"
        );
        assert_eq!(
            r["cost"]["cacheRead"].as_f64(),
            want["cost"][2].as_f64(),
            "{model}"
        );
        assert_eq!(r["api"], "anthropic-messages");
        assert_eq!(r["local"], false);
        assert_eq!(r["key"]["state"], "missing");
        assert!(r["contextWindow"].as_u64().unwrap() >= 200_000);
        assert!(r["cost"]["input"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn lmstudio_fixture_lists_primary_and_alias_only_models() {
    let rows = list("lmstudio-minimax-local.json5");
    let p = row(&rows, "lmstudio/minimax-m2.1-gs32");
    assert_eq!(p["roles"], serde_json::json!(["primary"]));
    assert_eq!(p["alias"], "Minimax");
    assert_eq!(row(&rows, "anthropic/claude-opus-4-5")["alias"], "Opus");
}

#[test]
fn proxy_fixture_without_primary_uses_embedded_default() {
    let rows = list("openai-compatible-proxy.json5");
    assert_eq!(
        row(&rows, "embedded/smollm2-135m-instruct")["roles"],
        serde_json::json!(["primary"])
    );
    let local = row(&rows, "local/my-local-model");
    assert_eq!(local["contextWindow"], 120000);
    assert_eq!(local["local"], true);
}

#[test]
fn resolve_alias_reports_field_origins() {
    let f = fixture("hosted-primary-local-fallback.json5");
    let out = pincer(&[
        "--config",
        f.to_str().unwrap(),
        "models",
        "resolve",
        "opus",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["alias"], "Opus");
    assert_eq!(v["model"]["ref"], "anthropic/claude-opus-4-5");
    assert_eq!(v["model"]["origins"]["contextWindow"]["from"], "builtin");
    let out = pincer(&[
        "--config",
        f.to_str().unwrap(),
        "models",
        "resolve",
        "MINIMAX LOCAL",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["model"]["ref"], "lmstudio/minimax-m2.1-gs32");
    assert_eq!(v["model"]["origins"]["contextWindow"]["from"], "config");
    assert!(
        v["model"]["origins"]["contextWindow"]["at"]
            .as_str()
            .unwrap()
            .starts_with("hosted-primary-local-fallback.json5:")
    );
}

#[test]
fn bad_config_fails_with_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("openclaw.json");
    std::fs::write(&p, "{\n  models: { providers: { lmstudio: { models: [{ id: 'm', contextWindow: 'big' }] } } },\n}\n").unwrap();
    let out = pincer(&["config", "validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: models.providers.lmstudio.models[0].contextWindow: expected a positive integer, found \"big\" (openclaw.json:2:73)"),
        "{stdout}"
    );
    let out = pincer(&["--config", p.to_str().unwrap(), "models", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("contextWindow"));
}

#[test]
fn config_show_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("openclaw.json");
    std::fs::write(&p, "{ models: { providers: { openrouter: { apiKey: 'sk-or-very-secret' } } }, gateway: { auth: { token: 'gw-secret' } } }").unwrap();
    let out = pincer(&["--config", p.to_str().unwrap(), "config", "show"]);
    let v = json(&out);
    assert_eq!(v["models"]["providers"]["openrouter"]["apiKey"], "***");
    assert_eq!(v["gateway"]["auth"]["token"], "***");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret") && !text.contains("gw-secret"));
    let out = pincer(&[
        "--config",
        p.to_str().unwrap(),
        "models",
        "list",
        "--configured",
        "--json",
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("very-secret"), "{all}");
}

#[test]
fn filters_narrow_the_list() {
    let out = pincer(&["models", "list", "--provider", "anthropic", "--json"]);
    let rows = json(&out)["models"].as_array().unwrap().clone();
    assert!(rows.len() > 5 && rows.iter().all(|r| r["provider"] == "anthropic"));
    let out = pincer(&["models", "list", "--local", "--json"]);
    let rows = json(&out)["models"].as_array().unwrap().clone();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["local"] == true));
    let out = pincer(&["models", "list", "--provider", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["models", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "resolve", "--help"],
        vec!["config", "--help"],
        vec!["config", "validate", "--help"],
        vec!["config", "show", "--help"],
    ] {
        let out = pincer(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}
