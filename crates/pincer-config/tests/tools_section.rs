//! `tools` (top level and per agent) and a model's `compat.supportsTools`,
//! in the shapes OpenClaw's docs show; wrong types are errors with their
//! path and line:column, unknown keys warnings with a suggestion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use pincer_config::{Env, load_text};

fn load(text: &str) -> pincer_config::Loaded {
    load_text(text, Path::new("openclaw.json"), &Env::from_pairs(&[]))
}

#[test]
fn openclaw_shapes_are_read() {
    let l = load(
        r#"{
  tools: {
    profile: "coding",
    allow: ["group:fs", "exec"],
    deny: ["web_*"],
    byProvider: { ollama: { profile: "minimal", allow: ["read"] }, "openai/gpt-5": { deny: ["exec"] } },
    exec: { security: "allowlist", ask: "on-miss", host: "sandbox", timeoutSec: 60, backgroundMs: 5000, safeBins: ["wc"], notifyOnExit: true },
    web: { fetch: { enabled: true, maxChars: 20000, timeoutSeconds: 10, maxRedirects: 2, ssrfPolicy: { allowPrivateNetwork: true } }, search: { enabled: false } },
    fs: { workspaceOnly: true },
    loopDetection: { enabled: true, warningThreshold: 5, criticalThreshold: 8 },
    elevated: { enabled: false },
  },
  agents: { entries: { work: { tools: { profile: "messaging", alsoAllow: ["read"] } } } },
  models: { providers: { lm: { baseUrl: "http://127.0.0.1:1234/v1", models: [{ id: "m", compat: { supportsTools: false, maxTokensField: "max_tokens" } }] } } },
}"#,
    );
    assert!(
        l.diagnostics.iter().all(|d| !d.is_error()),
        "{:#?}",
        l.diagnostics
    );
    let t = &l.config.tools;
    assert_eq!(t.profile.as_ref().unwrap().value, "coding");
    assert_eq!(t.allow.as_ref().unwrap().len(), 2);
    assert_eq!(t.by_provider.len(), 2);
    assert_eq!(t.by_provider[1].0, "openai/gpt-5");
    assert_eq!(t.exec.security.as_deref(), Some("allowlist"));
    assert_eq!(t.exec.timeout_sec, Some(60));
    assert_eq!(t.web_fetch.max_chars, Some(20000));
    assert_eq!(t.web_fetch.allow_private_network, Some(true));
    assert_eq!(t.loop_detection.critical_threshold, Some(8));
    assert_eq!(t.fs_workspace_only, Some(true));
    let work = &l.config.agents.entries[0].settings.tools;
    assert_eq!(work.profile.as_ref().unwrap().value, "messaging");
    let model = &l.config.models.providers[0].models.as_ref().unwrap()[0];
    assert_eq!(model.compat.supports_tools, Some(false));
}

#[test]
fn wrong_types_name_the_key_and_its_place() {
    // (the section, the path named, the value the error points at)
    for (tools, path, value) in [
        ("{ profile: 'codeing' }", "tools.profile", "'codeing'"),
        ("{ allow: 'read' }", "tools.allow", "'read'"),
        (
            "{ exec: { security: 'yes' } }",
            "tools.exec.security",
            "'yes'",
        ),
        (
            "{ exec: { timeoutSec: -5 } }",
            "tools.exec.timeoutSec",
            "-5",
        ),
        (
            "{ byProvider: { ollama: [] } }",
            "tools.byProvider.ollama",
            "[]",
        ),
        (
            "{ web: { fetch: { maxChars: 'lots' } } }",
            "tools.web.fetch.maxChars",
            "'lots'",
        ),
        (
            "{ fs: { workspaceOnly: 'no' } }",
            "tools.fs.workspaceOnly",
            "'no'",
        ),
    ] {
        let text = format!("{{ tools: {tools} }}");
        let at = format!("1:{}", text.find(value).unwrap() + 1);
        let l = load(&text);
        let errors: Vec<String> = l.errors().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{tools}: {errors:?}");
        assert!(errors[0].contains(path), "{tools}: {}", errors[0]);
        assert!(errors[0].contains(&at), "{tools}: {}", errors[0]);
    }
    // A typo is a warning that suggests the key.
    let l = load("{ tools: { alsoAllows: ['read'] } }");
    let w: Vec<String> = l.warnings().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w.contains("did you mean \"alsoAllow\"")),
        "{w:?}"
    );
}

#[test]
fn compat_flags_are_read_checked_and_kept() {
    let l = load(
        r#"{ models: { providers: { lm: { baseUrl: "http://127.0.0.1:1234/v1",
  compat: { supportsUsageInStreaming: false, thinkingFormat: "qwen", toolSchemaProfile: "llamacpp" },
  models: [{ id: "m", compat: { maxTokensField: "max_tokens", supportsStreamingToolCalls: false, requiresStringContent: true } }] } } } }"#,
    );
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let p = &l.config.models.providers[0];
    assert_eq!(p.compat.supports_usage_in_streaming, Some(false));
    assert_eq!(p.compat.tool_schema_profile.as_deref(), Some("llamacpp"));
    let m = &p.models.as_ref().unwrap()[0];
    assert_eq!(m.compat.max_tokens_field.as_deref(), Some("max_tokens"));
    assert_eq!(m.compat.supports_streaming_tool_calls, Some(false));
    // OpenClaw's flags Pincer does not act on are kept and listed.
    assert!(
        l.config
            .not_used
            .iter()
            .any(|n| n.ends_with("compat.thinkingFormat"))
    );

    let l = load(
        r#"{ models: { providers: { lm: { baseUrl: "http://127.0.0.1:1234/v1",
  models: [{ id: "m", compat: { supportTools: false, maxTokensField: "max_toks", supportsTemperature: "no" } }] } } } }"#,
    );
    let w: Vec<String> = l.warnings().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("did you mean \"supportsTools\"")),
        "{w:?}"
    );
    let e: Vec<String> = l.errors().map(ToString::to_string).collect();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter()
            .any(|e| e.contains("compat.maxTokensField") && e.contains("openclaw.json:2:")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|e| e.contains("compat.supportsTemperature")),
        "{e:?}"
    );
}

#[test]
fn the_main_session_and_session_visibility_are_read() {
    let l =
        load(r#"{ session: { mainKey: "Home" }, tools: { sessions: { visibility: "self" } } }"#);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.config.session.main_session("Main"), "agent:main:home");
    assert_eq!(l.config.tools.sessions_visibility.as_deref(), Some("self"));
    let d = load(r#"{ tools: { sessions: { visibility: "everyone" } } }"#);
    assert!(
        d.diagnostics
            .iter()
            .any(|d| d.to_string().contains("tools.sessions.visibility")),
        "{:?}",
        d.diagnostics
    );
    assert_eq!(
        load("{}").config.session.main_session("main"),
        "agent:main:main"
    );
}
