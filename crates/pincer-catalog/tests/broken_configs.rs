//! Broken configs, each checked for the JSON path, the file's line:column and
//! the wording of the message a user gets. `«` marks where the location must point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use pincer_catalog::{Catalog, check};
use pincer_config::{Diagnostic, Env, Severity, load_text};

fn env() -> Env {
    Env::from_pairs(&[("HOME", "/nonexistent"), ("LMSTUDIO_KEY", "lm-secret")])
}

/// All diagnostics for a config text, as `pincer config validate` reports them.
fn diagnose_at(text: &str, path: &Path) -> Vec<Diagnostic> {
    let env = env();
    let loaded = load_text(text, path, &env);
    let mut all = loaded.diagnostics.clone();
    let catalog = Catalog::new(&loaded.config.models);
    all.extend(check(&loaded.config, &catalog));
    all
}

/// Line and column (1-based, in characters) of the `«` marker, and the text without it.
fn marked(src: &str) -> (String, u32, u32) {
    let idx = src.find('«').expect("case has a « marker");
    let before = &src[..idx];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() as u32 + 1;
    (src.replacen('«', "", 1), line, col)
}

#[track_caller]
fn expect(src: &str, severity: Severity, path: &str, msg: &str) {
    let (text, line, col) = marked(src);
    let diags = diagnose_at(&text, Path::new("/nonexistent/dir/openclaw.json"));
    let found = diags
        .iter()
        .find(|d| d.severity == severity && d.path == path && d.message.contains(msg));
    let Some(d) = found else {
        panic!("no {severity:?} at {path:?} containing {msg:?}; got:\n{diags:#?}");
    };
    let loc = d.location.as_ref().expect("diagnostic has a location");
    assert_eq!((loc.line, loc.column), (line, col), "location of {d}");
    assert_eq!(loc.file, "openclaw.json");
}

const PROVIDER_HEAD: &str = r#"{
  models: {
    providers: {
      lmstudio: {
        baseUrl: "http://127.0.0.1:1234/v1",
        api: "openai-responses",
        models: [
"#;

fn model_case(model_body: &str) -> String {
    format!(
        "{PROVIDER_HEAD}          {{ id: \"m\", {model_body} }},\n        ],\n      }},\n    }},\n  }},\n}}\n"
    )
}

// ---- syntax ----

#[test]
fn syntax_missing_comma() {
    expect(
        "{\n  agents: {}«\n  models: {},\n}",
        Severity::Error,
        "",
        "invalid JSON5: Expected comma",
    );
}

#[test]
fn syntax_unterminated_object() {
    expect(
        "{\n  models: «{\n    mode: \"merge\",\n",
        Severity::Error,
        "",
        "invalid JSON5: Unterminated object",
    );
}

#[test]
fn syntax_unterminated_string() {
    expect(
        "{\n  models: { mode: «\"merge }\n}",
        Severity::Error,
        "",
        "invalid JSON5",
    );
}

#[test]
fn syntax_stray_token() {
    expect("{\n  models: «@,\n}", Severity::Error, "", "invalid JSON5");
}

#[test]
fn syntax_unterminated_comment() {
    expect(
        "{\n  «/* never closed\n  models: {},\n}",
        Severity::Error,
        "",
        "invalid JSON5",
    );
}

#[test]
fn syntax_two_root_values() {
    expect("{}\n«{}", Severity::Error, "", "more than one JSON value");
}

#[test]
fn syntax_root_not_object() {
    expect(
        "«[1, 2]",
        Severity::Error,
        "",
        "expected an object at the top of the file",
    );
}

// ---- wrong types and values ----

#[test]
fn context_window_not_a_number() {
    expect(
        &model_case("contextWindow: «\"big\""),
        Severity::Error,
        "models.providers.lmstudio.models[0].contextWindow",
        "expected a positive integer, found \"big\"",
    );
}

#[test]
fn context_window_negative() {
    expect(
        &model_case("contextWindow: «-5"),
        Severity::Error,
        "models.providers.lmstudio.models[0].contextWindow",
        "expected a positive integer, found -5",
    );
}

#[test]
fn context_window_fraction() {
    expect(
        &model_case("contextWindow: «1.5"),
        Severity::Error,
        "models.providers.lmstudio.models[0].contextWindow",
        "found 1.5",
    );
}

#[test]
fn max_tokens_zero() {
    expect(
        &model_case("maxTokens: «0"),
        Severity::Error,
        "models.providers.lmstudio.models[0].maxTokens",
        "expected a positive integer, found 0",
    );
}

#[test]
fn max_tokens_above_context_window() {
    expect(
        &model_case("contextWindow: 4096, maxTokens: «8192"),
        Severity::Warning,
        "models.providers.lmstudio.models[0].maxTokens",
        "larger than contextWindow (4096)",
    );
}

#[test]
fn reasoning_not_bool() {
    expect(
        &model_case("reasoning: «\"yes\""),
        Severity::Error,
        "models.providers.lmstudio.models[0].reasoning",
        "expected true or false, found \"yes\"",
    );
}

#[test]
fn input_unknown_modality() {
    expect(
        &model_case("input: [\"text\", «\"smell\"]"),
        Severity::Error,
        "models.providers.lmstudio.models[0].input[1]",
        "found \"smell\"",
    );
}

#[test]
fn cost_negative() {
    expect(
        &model_case("cost: { input: «-1, output: 0 }"),
        Severity::Error,
        "models.providers.lmstudio.models[0].cost.input",
        "expected a number ≥ 0, found -1",
    );
}

#[test]
fn model_without_id() {
    let src = format!(
        "{PROVIDER_HEAD}          «{{ name: \"x\" }},\n        ],\n      }},\n    }},\n  }},\n}}\n"
    );
    expect(
        &src,
        Severity::Error,
        "models.providers.lmstudio.models[0]",
        "missing required key \"id\"",
    );
}

#[test]
fn providers_is_an_array() {
    expect(
        "{\n  models: {\n    providers: «[],\n  },\n}",
        Severity::Error,
        "models.providers",
        "expected an object of providers by id, found an array",
    );
}

#[test]
fn provider_models_not_an_array() {
    expect(
        "{ models: { providers: { x: { baseUrl: \"http://127.0.0.1:1/v1\", models: «{} } } } }",
        Severity::Error,
        "models.providers.x.models",
        "expected an array of models",
    );
}

#[test]
fn base_url_without_scheme() {
    expect(
        "{ models: { providers: { x: { baseUrl: «\"127.0.0.1:1234/v1\", models: [] } } } }",
        Severity::Error,
        "models.providers.x.baseUrl",
        "expected an http:// or https:// URL",
    );
}

#[test]
fn api_unknown_value() {
    expect(
        "{ models: { providers: { lmstudio: { api: «\"openai-chat\" } } } }",
        Severity::Error,
        "models.providers.lmstudio.api",
        "found \"openai-chat\"",
    );
}

#[test]
fn api_renamed_value() {
    expect(
        "{ models: { providers: { openai: { api: «\"openai-codex-responses\" } } } }",
        Severity::Error,
        "models.providers.openai.api",
        "renamed to \"openai-chatgpt-responses\"",
    );
}

#[test]
fn api_valid_for_openclaw_but_not_pincer() {
    expect(
        "{ models: { providers: { google: { api: «\"google-generative-ai\" } } } }",
        Severity::Warning,
        "models.providers.google.api",
        "Pincer does not speak it yet",
    );
}

#[test]
fn models_mode_unknown() {
    expect(
        "{ models: { mode: «\"merge-all\" } }",
        Severity::Error,
        "models.mode",
        "expected one of \"merge\", \"replace\", found \"merge-all\"",
    );
}

#[test]
fn default_model_wrong_type() {
    expect(
        "{ agents: { defaults: { model: «42 } } }",
        Severity::Error,
        "agents.defaults.model",
        "expected a model ref string or { primary, fallbacks }, found 42",
    );
}

#[test]
fn fallbacks_not_a_list() {
    expect(
        "{ agents: { defaults: { model: { primary: \"anthropic/claude-opus-4-5\", fallbacks: «\"x\" } } } }",
        Severity::Error,
        "agents.defaults.model.fallbacks",
        "expected an array of strings",
    );
}

#[test]
fn headers_not_an_object() {
    expect(
        "{ models: { providers: { x: { baseUrl: \"http://127.0.0.1:1/v1\", models: [], headers: «\"a\" } } } }",
        Severity::Error,
        "models.providers.x.headers",
        "expected an object of header names to values",
    );
}

#[test]
fn provider_id_with_slash() {
    expect(
        "{ models: { providers: { «\"a/b\": {} } } }",
        Severity::Error,
        "models.providers[\"a/b\"]",
        "must be non-empty and contain no '/'",
    );
}

#[test]
fn provider_defined_twice() {
    expect(
        "{ models: { providers: {\n  lmstudio: {},\n  «LMStudio: {},\n} } }",
        Severity::Error,
        "models.providers.LMStudio",
        "defined twice",
    );
}

#[test]
fn model_listed_twice() {
    let src = format!(
        "{PROVIDER_HEAD}          {{ id: \"m\" }},\n          {{ id: «\"m\" }},\n        ],\n      }},\n    }},\n  }},\n}}\n"
    );
    expect(
        &src,
        Severity::Error,
        "models.providers.lmstudio.models[1].id",
        "listed twice",
    );
}

// ---- agents ----

#[test]
fn agent_without_id() {
    expect(
        "{ agents: { list: [ «{ name: \"x\" } ] } }",
        Severity::Error,
        "agents.list[0]",
        "missing required key \"id\"",
    );
}

#[test]
fn agent_defined_twice() {
    expect(
        "{ agents: { list: [ { id: \"work\" }, { id: «\"work\" } ] } }",
        Severity::Error,
        "agents.list[1].id",
        "defined twice",
    );
}

#[test]
fn agent_bad_id() {
    expect(
        "{ agents: { entries: { «\"my agent\": {} } } }",
        Severity::Error,
        "agents.entries[\"my agent\"]",
        "must be 1-64 letters",
    );
}

#[test]
fn two_default_agents() {
    expect(
        "{ agents: { list: [ { id: \"a\", default: true }, { id: «\"b\", default: true } ] } }",
        Severity::Error,
        "agents.list[1].id",
        "more than one agent has default: true",
    );
}

// ---- environment variables ----

#[test]
fn missing_env_var_in_api_key() {
    expect(
        "{ models: { providers: { lmstudio: {\n  apiKey: «\"${LMSTUDIO_API_KEY_TYPO}\",\n} } } }",
        Severity::Error,
        "models.providers.lmstudio.apiKey",
        "environment variable LMSTUDIO_API_KEY_TYPO is not set",
    );
}

#[test]
fn missing_env_var_in_base_url_is_reported_once() {
    let (text, ..) = marked(
        "{ models: { providers: { x: { baseUrl: «\"${NO_SUCH_BASE}/v1\", models: [] } } } }",
    );
    let diags = diagnose_at(&text, Path::new("/nonexistent/openclaw.json"));
    let about: Vec<_> = diags
        .iter()
        .filter(|d| d.path == "models.providers.x.baseUrl")
        .collect();
    assert_eq!(about.len(), 1, "{about:#?}");
    assert!(about[0].message.contains("NO_SUCH_BASE"));
}

#[test]
fn missing_env_var_in_unused_section_is_a_warning() {
    expect(
        "{ channels: { telegram: { botToken: «\"${NO_TELEGRAM_TOKEN}\" } } }",
        Severity::Warning,
        "channels.telegram.botToken",
        "not used by Pincer",
    );
}

// ---- unknown keys ----

#[test]
fn unknown_model_key_suggests() {
    expect(
        &model_case("«contextWindows: 4096"),
        Severity::Warning,
        "models.providers.lmstudio.models[0].contextWindows",
        "did you mean \"contextWindow\"?",
    );
}

#[test]
fn unknown_top_level_section_suggests() {
    expect(
        "{ «model: {} }",
        Severity::Warning,
        "model",
        "did you mean \"models\"?",
    );
}

#[test]
fn unknown_agent_default_key() {
    expect(
        "{ agents: { defaults: { «bogusKey: 1 } } }",
        Severity::Warning,
        "agents.defaults.bogusKey",
        "unknown key \"bogusKey\"",
    );
}

#[test]
fn duplicate_key_warns() {
    expect(
        "{ models: { mode: \"merge\", «mode: \"replace\" } }",
        Severity::Warning,
        "models.mode",
        "appears twice",
    );
}

// ---- references ----

#[test]
fn primary_unknown_provider() {
    expect(
        "{ agents: { defaults: { model: { primary: «\"lmstduio/minimax\" } } } }",
        Severity::Error,
        "agents.defaults.model.primary",
        "unknown provider \"lmstduio\" (did you mean \"lmstudio\"?)",
    );
}

#[test]
fn primary_unknown_model_of_custom_provider() {
    expect(
        "{ agents: { defaults: { model: «\"box/qwen3-8\" } },\n  models: { providers: { box: { baseUrl: \"http://127.0.0.1:8000/v1\", models: [{ id: \"qwen3-8b\" }] } } } }",
        Severity::Error,
        "agents.defaults.model",
        "provider \"box\" has no model \"qwen3-8\" (did you mean \"qwen3-8b\"?); it lists qwen3-8b",
    );
}

#[test]
fn hosted_model_missing_from_catalog_warns() {
    expect(
        "{ agents: { defaults: { model: { primary: «\"anthropic/claude-opus-99\" } } } }",
        Severity::Warning,
        "agents.defaults.model.primary",
        "not in the built-in catalog for \"anthropic\"",
    );
}

#[test]
fn fallback_repeats_primary() {
    expect(
        "{ agents: { defaults: { model: { primary: \"anthropic/claude-opus-4-5\",\n  fallbacks: [«\"anthropic/claude-opus-4-5\"] } } } }",
        Severity::Warning,
        "agents.defaults.model.fallbacks[0]",
        "is the primary model",
    );
}

#[test]
fn fallback_repeats_primary_through_alias() {
    expect(
        "{ agents: { defaults: {\n  model: { primary: \"anthropic/claude-opus-4-5\", fallbacks: [«\"opus\"] },\n  models: { \"anthropic/claude-opus-4-5\": { alias: \"Opus\" } } } } }",
        Severity::Warning,
        "agents.defaults.model.fallbacks[0]",
        "is the primary model",
    );
}

#[test]
fn alias_used_twice() {
    expect(
        "{ agents: { defaults: { models: {\n  \"anthropic/claude-opus-4-5\": { alias: \"Claude\" },\n  \"anthropic/claude-sonnet-4-5\": { alias: «\"claude\" },\n} } } }",
        Severity::Error,
        "agents.defaults.models[\"anthropic/claude-sonnet-4-5\"].alias",
        "alias \"claude\" is already used at openclaw.json:2:41",
    );
}

#[test]
fn bare_model_id_is_ambiguous() {
    expect(
        "{ agents: { defaults: { model: «\"claude-opus-4-5\" } } }",
        Severity::Error,
        "agents.defaults.model",
        "is offered by several providers (",
    );
}

#[test]
fn custom_provider_without_base_url() {
    expect(
        "{ models: { providers: { «mybox: { models: [{ id: \"m\" }] } } } }",
        Severity::Error,
        "models.providers.mybox",
        "custom provider \"mybox\" needs \"baseUrl\"",
    );
}

#[test]
fn models_map_key_not_a_ref() {
    expect(
        "{ agents: { defaults: { models: { «opus: { alias: \"O\" } } } } }",
        Severity::Error,
        "agents.defaults.models.opus",
        "is not a model ref",
    );
}

#[test]
fn allowlist_unknown_provider_wildcard() {
    expect(
        "{ agents: { defaults: { modelPolicy: { allow: [«\"nosuch/*\"] } } } }",
        Severity::Error,
        "agents.defaults.modelPolicy.allow[0]",
        "unknown provider \"nosuch\"",
    );
}

#[test]
fn replace_mode_drops_builtin_models() {
    expect(
        "{ agents: { defaults: { model: «\"anthropic/claude-opus-4-5\" } }, models: { mode: \"replace\" } }",
        Severity::Error,
        "agents.defaults.model",
        "unknown provider \"anthropic\"",
    );
}

// ---- whole-file behaviour ----

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = model_case("contextWindow: \"big\", maxTokens: -1, reasoning: 3");
    let diags = diagnose_at(&text, Path::new("/nonexistent/openclaw.json"));
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.path.as_str())
        .collect();
    for field in ["contextWindow", "maxTokens", "reasoning"] {
        let want = format!("models.providers.lmstudio.models[0].{field}");
        assert!(
            errors.contains(&want.as_str()),
            "{want} missing from {errors:?}"
        );
    }
}

#[test]
fn message_reads_as_one_line_with_location() {
    let (text, ..) = marked(&model_case("contextWindow: «\"big\""));
    let diags = diagnose_at(&text, Path::new("/nonexistent/openclaw.json"));
    let d = diags.iter().find(|d| d.is_error()).unwrap();
    assert_eq!(
        d.to_string(),
        "models.providers.lmstudio.models[0].contextWindow: expected a positive integer, found \"big\" (openclaw.json:8:37)"
    );
}

#[test]
fn env_var_is_substituted_and_secret_stays_out_of_output() {
    let text = "{ models: { providers: { lmstudio: { apiKey: \"${LMSTUDIO_KEY}\", headers: { \"X-Token\": \"plain-secret\" } } } } }";
    let env = env();
    let loaded = load_text(text, Path::new("/nonexistent/openclaw.json"), &env);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let shown = serde_json::to_string(&loaded.to_redacted_json()).unwrap();
    assert!(
        !shown.contains("lm-secret") && !shown.contains("plain-secret"),
        "{shown}"
    );
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("lm-secret") && !debug.contains("plain-secret"));
}
