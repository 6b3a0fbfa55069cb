//! `pincer doctor` and `pincer models status --probe` against llama.cpp's
//! real server: what a user would read, and the exit code scripts rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json, pincer, write_config};
use pincer_testkit::{LlamaServer, free_port};
use serde_json::Value;

/// (check, subject) of every finding of one severity.
fn findings(report: &Value, severity: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(list: &[(String, String)], check: &str, subject: &str) -> bool {
    list.iter().any(|(c, s)| c == check && s == subject)
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn doctor_finds_the_classic_local_model_mistakes() {
    let server = LlamaServer::start_with_ctx(2048);
    let home = tempfile::tempdir().unwrap();
    let closed = free_port();
    let config = write_config(
        home.path(),
        &format!(
            r#"{{
  agents: {{ defaults: {{ model: {{ primary: "local/smollm2",
    fallbacks: ["lmstudio/qwen3-8b", "local/qwen-typo", "anthropic/claude-sonnet-4-5"] }} }} }},
  gateway: {{ bind: "lan" }},
  models: {{ mode: "merge", providers: {{
    local: {{ baseUrl: "{}", api: "openai-completions", models: [
      {{ id: "smollm2", contextWindow: 32768, maxTokens: 4096 }},
      {{ id: "qwen-typo", contextWindow: 2048, maxTokens: 256 }} ] }},
    lmstudio: {{ baseUrl: "http://127.0.0.1:{closed}/v1", api: "openai-completions",
      models: [{{ id: "qwen3-8b", contextWindow: 8192, maxTokens: 1024 }}] }},
  }} }},
}}"#,
            server.base_url()
        ),
    );
    let out = pincer(home.path(), &["--config", &config, "doctor", "--json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["ok"], false);
    let errors = findings(&report, "error");
    assert!(
        has(&errors, "context.too_large", "local/smollm2"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "max_tokens.too_large", "local/smollm2"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "server.unreachable", "lmstudio/qwen3-8b"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "model.not_listed", "local/qwen-typo"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "key.missing", "anthropic/claude-sonnet-4-5"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "gateway.bind_no_auth", "gateway.bind"),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 6, "{errors:?}");

    let fix = |check: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .unwrap()["fix"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(fix("context.too_large").contains("set contextWindow to 2048"));
    assert!(
        fix("server.unreachable").contains(&format!("curl -s http://127.0.0.1:{closed}/v1/models"))
    );
    assert!(fix("model.not_listed").contains("smollm2"));
    assert!(fix("key.missing").contains("ANTHROPIC_API_KEY"));

    // The same, as a person reads it.
    let out = pincer(home.path(), &["--config", &config, "doctor"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✗ error   local/smollm2: contextWindow is 32768 but the server runs the model with 2048 tokens"), "{text}");
    assert!(text.contains("6 error(s)"), "{text}");
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn a_sound_local_setup_passes_with_warnings_only() {
    let server = LlamaServer::start_with_ctx(2048);
    let home = tempfile::tempdir().unwrap();
    let config = write_config(
        home.path(),
        &format!(
            r#"{{
  agents: {{ defaults: {{ model: {{ primary: "local/smollm2" }} }} }},
  gateway: {{ bind: "lan", auth: {{ mode: "token", token: "${{GW_TOKEN}}" }} }},
  models: {{ mode: "replace", providers: {{
    local: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 512 }}] }} }} }},
}}"#,
            server.base_url()
        ),
    );
    let vars = [("GW_TOKEN", "a-long-random-gateway-token-0123456789")];
    let out = pincer(
        home.path(),
        &["--config", &config, "doctor", "--json"],
        &vars,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    assert!(findings(&report, "error").is_empty());
    // (Whether exec has its sandbox depends on the machine: bubblewrap.)
    let mut warnings = findings(&report, "warning");
    warnings.retain(|(check, _)| check != "tools.sandbox_missing");
    assert_eq!(
        warnings,
        vec![("fallback.no_hosted".to_string(), "agent main".to_string())]
    );
    let text = String::from_utf8_lossy(&report.to_string().into_bytes()).into_owned();
    assert!(
        !text.contains("a-long-random-gateway-token"),
        "token leaked"
    );

    let out = pincer(
        home.path(),
        &["--config", &config, "models", "status", "--probe", "--json"],
        &vars,
    );
    assert!(out.status.success());
    let models = json(&out);
    let m = &models[0];
    assert_eq!(m["ref"], "local/smollm2");
    assert_eq!(m["roles"][0], "primary");
    assert_eq!(m["server"]["server"], "llama.cpp");
    assert_eq!(m["server"]["listed"], true);
    assert_eq!(m["server"]["state"], "loaded");
    assert_eq!(m["server"]["contextLimit"], 2048);
}

#[test]
fn doctor_without_a_config_checks_the_embedded_default() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let data = data.to_str().unwrap();
    let out = pincer(
        home.path(),
        &["doctor", "--json"],
        &[("PINCER_DATA_DIR", data)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    let warnings = findings(&report, "warning");
    assert!(
        has(
            &warnings,
            "model.weak_primary",
            "embedded/smollm2-135m-instruct"
        ),
        "{warnings:?}"
    );
    assert!(
        has(&warnings, "fallback.no_hosted", "agent main"),
        "{warnings:?}"
    );
    assert!(has(
        &findings(&report, "info"),
        "embedded.not_fetched",
        "embedded/smollm2-135m-instruct"
    ));
}

#[test]
fn models_status_shows_what_is_cooling_down_by_scope() {
    let home = tempfile::tempdir().unwrap();
    let config = write_config(
        home.path(),
        r#"{ models: { mode: "replace", providers: {
  acme: { baseUrl: "http://127.0.0.1:9/v1", api: "openai-completions",
    models: [{ id: "a", contextWindow: 4096 }, { id: "b", contextWindow: 4096 }] } } },
  agents: { defaults: { model: { primary: "acme/a", fallbacks: ["acme/b"] } } } }"#,
    );
    let until = pincer_router::now_ms() + 120_000;
    let entry = |reason: &str| {
        serde_json::json!({"cooldownUntil": until, "reason": reason, "errorCount": 1,
            "rateLimitCount": 0, "billingCount": 0, "lastFailureAt": until - 150_000})
    };
    let state = home.path().join(".openclaw/pincer");
    std::fs::create_dir_all(&state).unwrap();
    let saved = serde_json::json!({"version": 1, "entries": {
        "acme/a": entry("server"),
        "key:env:ACME_API_KEYS#2": entry("auth"),
    }});
    std::fs::write(state.join("cooldowns.json"), saved.to_string()).unwrap();
    let vars = [
        ("OPENCLAW_CONFIG_PATH", config.as_str()),
        ("ACME_API_KEYS", "sk-1,sk-2"),
    ];
    let out = pincer(home.path(), &["models", "status", "--json"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models = json(&out);
    let scopes = |i: usize| -> Vec<(String, String)> {
        models[i]["cooldowns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["scope"].as_str().unwrap().into(),
                    c["name"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let model = |s: &str, n: &str| (s.to_string(), n.to_string());
    assert_eq!(
        scopes(0),
        [
            model("model", "acme/a"),
            model("key", "env:ACME_API_KEYS#2")
        ],
        "{models}"
    );
    assert_eq!(
        scopes(1),
        [model("key", "env:ACME_API_KEYS#2")],
        "the sibling model is not cooling down"
    );
    let out = pincer(home.path(), &["models", "status"], &vars);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("model 120 s (server)"), "{table}");
    assert!(!table.contains("sk-2"), "{table}");
}

/// Ollama's own API, probed through the test kit's replay of it: a model
/// not pulled, one configured past its trained context, one that cannot
/// call tools, one cold; and an Ollama that is not running.
#[test]
fn doctor_reads_ollamas_own_api() {
    use pincer_testkit::{OllamaModel, OllamaReplay};
    let mut cold = OllamaModel::new("qwen3:8b", 40960, &["completion", "tools", "thinking"]);
    cold.loaded = false;
    let ollama = OllamaReplay::start(vec![
        cold,
        OllamaModel::new("gemma:2b", 8192, &["completion"]),
    ]);
    let home = tempfile::tempdir().unwrap();
    let config = write_config(
        home.path(),
        &format!(
            r#"{{
  agents: {{ defaults: {{ model: {{ primary: "ollama/qwen3:8b",
    fallbacks: ["ollama/gemma:2b", "ollama/llama3", "down/m", "oldway/qwen3"] }} }} }},
  models: {{ mode: "replace", providers: {{
    ollama: {{ baseUrl: "{}", api: "ollama", models: [
      {{ id: "qwen3:8b", contextWindow: 32768, maxTokens: 4096 }},
      {{ id: "gemma:2b", contextWindow: 32768, maxTokens: 1024 }},
      {{ id: "llama3", contextWindow: 8192, maxTokens: 1024 }} ] }},
    down: {{ baseUrl: "http://127.0.0.1:{}", api: "ollama",
      models: [{{ id: "m", contextWindow: 8192, maxTokens: 1024 }}] }},
    oldway: {{ baseUrl: "http://127.0.0.1:11434/v1", api: "openai-completions",
      models: [{{ id: "qwen3", contextWindow: 8192, maxTokens: 1024 }}] }},
  }} }},
}}"#,
            ollama.base_url(),
            free_port()
        ),
    );
    let out = pincer(home.path(), &["--config", &config, "doctor", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "errors found");
    let report = json(&out);
    let (errors, warnings, infos) = (
        findings(&report, "error"),
        findings(&report, "warning"),
        findings(&report, "info"),
    );
    assert!(
        has(&errors, "model.not_listed", "ollama/llama3"),
        "{errors:?}"
    );
    assert!(has(&errors, "server.unreachable", "down/m"), "{errors:?}");
    assert!(
        has(&warnings, "context.over_trained", "ollama/gemma:2b"),
        "{warnings:?}"
    );
    assert!(
        has(&warnings, "model.cold", "ollama/qwen3:8b"),
        "{warnings:?}"
    );
    assert!(
        has(&infos, "model.no_tools", "ollama/gemma:2b"),
        "{infos:?}"
    );
    assert!(
        !has(&warnings, "context.over_trained", "ollama/qwen3:8b"),
        "within its training: {warnings:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ollama serve"),
        "the fix names Ollama's own command"
    );
}
