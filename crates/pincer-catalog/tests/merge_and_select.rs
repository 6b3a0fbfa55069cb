//! Merge rules (config wins field by field), replace mode, ref resolution,
//! agent inheritance and allowlists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use pincer_catalog::{
    Allowlist, Catalog, DEFAULT_MODEL, ModelRef, Origin, ResolveError, agents, resolve,
};
use pincer_config::{Env, Loaded, load_text};

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs)
}

fn load(text: &str) -> Loaded {
    let loaded = load_text(text, Path::new("/nonexistent/openclaw.json"), &env(&[]));
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded
}

#[test]
fn config_overrides_a_catalog_model_field_by_field() {
    let loaded = load(
        "{ models: { providers: { anthropic: { models: [{ id: 'claude-opus-4-5', contextWindow: 100000, cost: { output: 1 } }] } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let spec = catalog
        .model(&ModelRef::parse("anthropic/claude-opus-4-5").unwrap())
        .unwrap();
    assert_eq!(spec.context_window, 100_000);
    assert!(matches!(
        spec.origins["contextWindow"],
        Origin::Config { .. }
    ));
    assert_eq!(spec.cost.output, 1.0);
    assert_eq!(spec.cost.input, 5.0, "input cost still from the catalog");
    assert_eq!(spec.origins["cost.input"], Origin::Builtin);
    assert_eq!(spec.max_tokens, 64_000);
    assert_eq!(spec.base_url.as_deref(), Some("https://api.anthropic.com"));
    // Other models of the provider stay listed in merge mode.
    assert!(
        catalog
            .model(&ModelRef::parse("anthropic/claude-sonnet-4-5").unwrap())
            .is_some()
    );
}

#[test]
fn replace_mode_keeps_only_configured_rows() {
    let loaded = load(
        "{ models: { mode: 'replace', providers: { anthropic: { apiKey: 'k', models: [{ id: 'claude-opus-4-5' }] } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let spec = catalog
        .model(&ModelRef::parse("anthropic/claude-opus-4-5").unwrap())
        .unwrap();
    assert_eq!(spec.context_window, 200_000);
    assert_eq!(
        spec.origins["contextWindow"],
        Origin::Default,
        "no catalog values in replace mode"
    );
    assert_eq!(spec.cost.input, 0.0);
    assert!(
        catalog
            .model(&ModelRef::parse("anthropic/claude-sonnet-4-5").unwrap())
            .is_none()
    );
    assert!(catalog.provider("openrouter").is_none());
    assert!(
        catalog.provider("embedded").is_some(),
        "the embedded engine is always there"
    );
}

#[test]
fn defaults_for_a_custom_model() {
    let loaded = load(
        "{ models: { providers: { box: { baseUrl: 'http://192.168.1.9:8000/v1', maxTokens: 2048, models: [{ id: 'qwen' }] } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let spec = catalog
        .model(&ModelRef::parse("box/qwen").unwrap())
        .unwrap();
    assert_eq!(spec.api.as_str(), "openai-completions");
    assert_eq!(spec.context_window, 200_000);
    assert_eq!(
        spec.max_tokens, 2048,
        "provider maxTokens is the default cap"
    );
    assert_eq!(spec.input, vec!["text"]);
    assert!(!spec.reasoning);
    assert!(spec.local);
}

#[test]
fn resolution_by_alias_ref_and_bare_id() {
    let loaded = load(
        "{ agents: { defaults: { models: { 'lmstudio/qwen/qwen3.5-9b': { alias: 'Qwen' } } } },
           models: { providers: { lmstudio: { models: [{ id: 'qwen/qwen3.5-9b' }] }, box: { baseUrl: 'http://h:1/v1', models: [{ id: 'gpt-4o' }] } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let a = &agents(&loaded.config)[0];
    assert_eq!(
        resolve(&catalog, &a.aliases, "qWeN")
            .unwrap()
            .spec
            .reference,
        "lmstudio/qwen/qwen3.5-9b"
    );
    assert_eq!(
        resolve(&catalog, &a.aliases, "LMStudio/qwen/qwen3.5-9b")
            .unwrap()
            .spec
            .id,
        "qwen/qwen3.5-9b"
    );
    // A configured provider wins a bare id over the catalog's many providers.
    assert_eq!(
        resolve(&catalog, &a.aliases, "gpt-4o")
            .unwrap()
            .spec
            .reference,
        "box/gpt-4o"
    );
    match resolve(&catalog, &a.aliases, "claude-opus-4-5") {
        Err(ResolveError::Ambiguous { candidates, .. }) => {
            assert!(
                candidates.contains(&"anthropic/claude-opus-4-5".to_string()),
                "{candidates:?}"
            )
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
    assert!(matches!(
        resolve(&catalog, &a.aliases, "nothing-like-this"),
        Err(ResolveError::NotFound { .. })
    ));
}

#[test]
fn agent_inheritance_follows_openclaw() {
    let loaded = load(
        "{ agents: {
             defaults: { model: { primary: 'anthropic/claude-sonnet-4-5', fallbacks: ['anthropic/claude-opus-4-5'] } },
             list: [
               { id: 'plain' },
               { id: 'strict', model: 'anthropic/claude-haiku-4-5' },
               { id: 'onlyfb', default: true, model: { fallbacks: ['openrouter/openai/gpt-4o'] } },
               { id: 'none', model: { primary: 'anthropic/claude-haiku-4-5', fallbacks: [] } },
             ] } }",
    );
    let all = agents(&loaded.config);
    let by = |id: &str| all.iter().find(|a| a.id == id).unwrap();
    assert_eq!(by("plain").primary, "anthropic/claude-sonnet-4-5");
    assert_eq!(by("plain").fallbacks, vec!["anthropic/claude-opus-4-5"]);
    assert_eq!(by("strict").primary, "anthropic/claude-haiku-4-5");
    assert!(
        by("strict").fallbacks.is_empty(),
        "own model without fallbacks is strict"
    );
    assert_eq!(by("onlyfb").primary, "anthropic/claude-sonnet-4-5");
    assert_eq!(by("onlyfb").fallbacks, vec!["openrouter/openai/gpt-4o"]);
    assert!(by("onlyfb").is_default);
    assert!(by("none").fallbacks.is_empty());
}

#[test]
fn no_config_means_main_agent_on_the_embedded_default() {
    let loaded = load("{}");
    let all = agents(&loaded.config);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, "main");
    assert_eq!(all[0].primary, DEFAULT_MODEL);
    let catalog = Catalog::new(&loaded.config.models);
    let spec = resolve(&catalog, &all[0].aliases, &all[0].primary)
        .unwrap()
        .spec;
    assert!(spec.local);
    assert_eq!(spec.api.as_str(), "embedded");
}

#[test]
fn allowlists_explicit_legacy_and_wildcards() {
    let legacy = load(
        "{ agents: { defaults: { models: { 'anthropic/claude-opus-4-5': { alias: 'Opus' } } } } }",
    );
    let a = &agents(&legacy.config)[0];
    let catalog = Catalog::new(&legacy.config.models);
    let opus = catalog
        .model(&ModelRef::parse("anthropic/claude-opus-4-5").unwrap())
        .unwrap();
    let sonnet = catalog
        .model(&ModelRef::parse("anthropic/claude-sonnet-4-5").unwrap())
        .unwrap();
    assert_eq!(
        a.allow,
        Allowlist::Only(vec!["anthropic/claude-opus-4-5".into()])
    );
    assert!(a.allow.allows(&opus, &a.aliases));
    assert!(!a.allow.allows(&sonnet, &a.aliases));

    let explicit = load(
        "{ agents: { defaults: { modelPolicy: { allow: ['anthropic/*'] }, models: { 'openai/gpt-4o': {} } } } }",
    );
    let a = &agents(&explicit.config)[0];
    assert!(a.allow.allows(&sonnet, &a.aliases));
    let gpt = catalog
        .model(&ModelRef::parse("openai/gpt-4o").unwrap())
        .unwrap();
    assert!(
        !a.allow.allows(&gpt, &a.aliases),
        "modelPolicy.allow replaces the legacy keys"
    );

    let open = load(
        "{ agents: { defaults: { modelPolicy: { allow: [] }, models: { 'openai/gpt-4o': {} } } } }",
    );
    assert_eq!(agents(&open.config)[0].allow, Allowlist::Any);
}

#[test]
fn a_models_compat_is_its_own_over_its_providers() {
    let loaded = load(
        "{ models: { providers: { lm: { baseUrl: 'http://127.0.0.1:1234/v1', compat: { supportsTools: false, maxTokensField: 'max_tokens' },
           models: [{ id: 'a' }, { id: 'b', compat: { supportsTools: true, requiresToolResultName: true } }] } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let a = catalog.model(&ModelRef::parse("lm/a").unwrap()).unwrap();
    let b = catalog.model(&ModelRef::parse("lm/b").unwrap()).unwrap();
    assert_eq!(a.tool_call, Some(false));
    assert_eq!(a.compat.max_tokens_field.as_deref(), Some("max_tokens"));
    assert_eq!(b.tool_call, Some(true));
    assert_eq!(b.compat.requires_tool_result_name, Some(true));
    assert_eq!(b.compat.max_tokens_field.as_deref(), Some("max_tokens"));
}

#[test]
fn model_params_are_found_by_ref_or_bare_id() {
    let loaded = load(
        "{ models: { providers: { lm: { baseUrl: 'http://127.0.0.1:1234/v1', models: [{ id: 'a' }, { id: 'b' }] } } },
           agents: { defaults: { model: { primary: 'lm/a', fallbacks: ['lm/b'] },
             models: { 'lm/a': { params: { temperature: 0.1 } }, 'b': { params: { temperature: 0.9 } } } } } }",
    );
    let catalog = Catalog::new(&loaded.config.models);
    let agent = &agents(&loaded.config)[0];
    let (specs, _) = pincer_catalog::turn_candidates(&catalog, agent, None).unwrap();
    assert_eq!(specs[0].params.as_ref().unwrap()["temperature"], 0.1);
    assert_eq!(specs[1].params.as_ref().unwrap()["temperature"], 0.9);
}
