//! `$include`, `${VAR}` and config discovery against real files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use pincer_config::{ConfigError, Env, Mode, load};

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn single_include_replaces_the_object_and_siblings_override() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "providers/lmstudio.json5",
        "{ baseUrl: 'http://127.0.0.1:1234/v1', api: 'openai-responses', models: [{ id: 'a' }] }",
    );
    let main = write(
        dir.path(),
        "openclaw.json",
        "{ models: { providers: { lmstudio: { $include: './providers/lmstudio.json5', api: 'openai-completions' } } } }",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let p = &loaded.config.models.providers[0];
    assert_eq!(
        p.base_url.as_ref().unwrap().value,
        "http://127.0.0.1:1234/v1"
    );
    assert_eq!(p.api.as_ref().unwrap().value.as_str(), "openai-completions");
    assert_eq!(p.models.as_ref().unwrap()[0].id.value, "a");
}

#[test]
fn include_array_deep_merges_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.json5",
        "{ mode: 'replace', providers: { x: { baseUrl: 'http://127.0.0.1:1/v1', models: [] } } }",
    );
    write(
        dir.path(),
        "b.json5",
        "{ mode: 'merge', providers: { x: { maxTokens: 100 } } }",
    );
    let main = write(
        dir.path(),
        "openclaw.json",
        "{ models: { $include: ['a.json5', 'b.json5'] } }",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.config.models.mode, Mode::Merge);
    let x = &loaded.config.models.providers[0];
    assert_eq!(x.max_tokens, Some(100));
    assert!(x.base_url.is_some());
}

#[test]
fn errors_in_included_files_point_into_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sub/models.json5",
        "{\n  mode: 'merge',\n  providers: { x: { maxTokens: 'lots' } },\n}\n",
    );
    let main = write(
        dir.path(),
        "openclaw.json",
        "{ models: { $include: 'sub/models.json5' } }",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    let d = loaded
        .errors()
        .find(|d| d.path == "models.providers.x.maxTokens")
        .expect("error reported");
    let loc = d.location.as_ref().unwrap();
    assert_eq!(
        (loc.file.as_str(), loc.line, loc.column),
        ("sub/models.json5", 3, 32)
    );
}

#[test]
fn missing_include_cycle_and_escape_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "openclaw.json",
        "{\n  models: { $include: 'nope.json5' },\n}",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    let d = loaded.errors().next().expect("missing include is an error");
    assert_eq!(d.path, "models.$include");
    assert!(d.message.contains("cannot read included file"), "{d}");
    assert_eq!(
        d.location.as_ref().map(|l| (l.line, l.column)),
        Some((2, 23))
    );

    write(dir.path(), "loop.json5", "{ $include: 'loop.json5' }");
    let main = write(
        dir.path(),
        "openclaw.json",
        "{ models: { $include: 'loop.json5' } }",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    assert!(
        loaded.errors().any(|d| d.message.contains("include cycle")),
        "{:#?}",
        loaded.diagnostics
    );

    let outside = tempfile::tempdir().unwrap();
    let other = write(outside.path(), "x.json5", "{}");
    let text = format!(
        "{{ models: {{ $include: {:?} }} }}",
        other.display().to_string()
    );
    let main = write(dir.path(), "openclaw.json", &text);
    let loaded = load(Some(&main), &env(&[])).unwrap();
    assert!(
        loaded
            .errors()
            .any(|d| d.message.contains("OPENCLAW_INCLUDE_ROOTS")),
        "{:#?}",
        loaded.diagnostics
    );
    let roots = outside.path().display().to_string();
    let loaded = load(
        Some(&main),
        &env(&[("OPENCLAW_INCLUDE_ROOTS", roots.as_str())]),
    )
    .unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
}

#[test]
fn env_vars_fill_strings_and_config_env_vars_fill_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "openclaw.json",
        r#"{
  env: { vars: { BOX_HOST: "10.0.0.5" } },
  models: { providers: { box: {
    baseUrl: "http://${BOX_HOST}:${BOX_PORT}/v1",
    apiKey: "$${NOT_A_VAR}",
    models: [{ id: "m" }],
  } } },
}"#,
    );
    let loaded = load(Some(&main), &env(&[("BOX_PORT", "8000")])).unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let p = &loaded.config.models.providers[0];
    assert_eq!(
        p.base_url.as_ref().unwrap().value,
        "http://10.0.0.5:8000/v1"
    );
    let key = p.api_key.as_ref().unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(key.secret.expose_secret(), "${NOT_A_VAR}");
}

#[test]
fn no_file_means_defaults_but_a_named_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().display().to_string();
    let loaded = load(None, &env(&[("HOME", home.as_str())])).unwrap();
    assert!(loaded.path.is_none());
    assert!(loaded.diagnostics.is_empty());

    let missing = dir.path().join("nope.json");
    match load(Some(&missing), &env(&[])) {
        Err(ConfigError::NotFound { via, .. }) => assert_eq!(via, "--config"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let m = missing.display().to_string();
    assert!(matches!(
        load(None, &env(&[("OPENCLAW_CONFIG_PATH", m.as_str())])),
        Err(ConfigError::NotFound { .. })
    ));
}

#[test]
fn state_dir_config_is_found() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "openclaw.json",
        "{ models: { mode: 'replace' } }",
    );
    let state = dir.path().display().to_string();
    let loaded = load(None, &env(&[("OPENCLAW_STATE_DIR", state.as_str())])).unwrap();
    assert_eq!(loaded.config.models.mode, Mode::Replace);
}

#[test]
fn unused_sections_are_kept_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "openclaw.json",
        "{ channels: { whatsapp: { selfChatMode: true }, discord: {} }, tools: { profile: 'full', elevated: {} }, session: { dmScope: 'main', reset: {} }, gateway: { port: 18790, bind: 'lan', auth: { mode: 'token', token: 'tok-123' }, controlUi: {} }, auth: { profiles: { 'openai:work': { provider: 'openai', mode: 'api_key' } }, order: { openai: ['openai:work'] } }, agents: { defaults: { heartbeat: {} } } }",
    );
    let loaded = load(Some(&main), &env(&[])).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(
        loaded.config.not_used,
        vec![
            "channels.whatsapp.selfChatMode",
            "channels.discord",
            "tools.elevated",
            "session.reset",
            "agents.defaults.heartbeat"
        ]
    );
    assert_eq!(
        loaded
            .config
            .tools
            .profile
            .as_ref()
            .map(|p| p.value.as_str()),
        Some("full")
    );
    let g = &loaded.config.gateway;
    assert_eq!(g.port.as_ref().map(|p| p.value), Some(18790));
    assert_eq!(g.bind.as_ref().map(|b| b.value.as_str()), Some("lan"));
    assert!(g.token.is_some());
    let a = &loaded.config.auth;
    assert_eq!(a.profiles[0].provider, "openai");
    assert_eq!(a.order[0].1[0].value, "openai:work");
    let shown = loaded.to_redacted_json();
    assert_eq!(shown["tools"]["profile"], "full");
}
