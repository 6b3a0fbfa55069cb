//! Property test: the JSON5 parser, loader and validator never panic, on
//! random text and on mutations of real configs, and every location they
//! report lies inside the file. Bounded: PROPTEST_CASES (default 1500 per property).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;

use pincer_catalog::{Catalog, agents, check, resolve};
use pincer_config::{Env, load_text};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!(
        "../../../../shared/fixtures/openclaw-configs/hosted-primary-local-fallback.json5"
    ),
    include_str!("../../../../shared/fixtures/openclaw-configs/openai-compatible-proxy.json5"),
    r#"{ agents: { list: [{ id: "a", default: true, model: { fallbacks: ["x/y"] } }], defaults: { modelPolicy: { allow: ["anthropic/*"] } } },
        models: { mode: "replace", providers: { x: { baseUrl: "http://${HOST}:1/v1", apiKey: { source: "env", id: "K" }, models: [{ id: "y", cost: { input: 1e3 } }] } } },
        env: { vars: { HOST: "h" } }, channels: { a: "$${B}" } }"#,
];

fn check_text(text: &str) {
    let env = Env::Map(HashMap::from([("K".to_string(), "v".to_string())]));
    let loaded = load_text(text, Path::new("/nonexistent/openclaw.json"), &env);
    let lines = text.split('\n').count() as u32;
    for d in &loaded.diagnostics {
        if let Some(l) = &d.location {
            assert!(
                l.line >= 1 && l.line <= lines && l.column >= 1,
                "{d} outside the file"
            );
        }
        assert!(
            !d.to_string().contains('\n'),
            "a diagnostic is one line: {d:?}"
        );
    }
    let catalog = Catalog::new(&loaded.config.models);
    let _ = check(&loaded.config, &catalog);
    for a in agents(&loaded.config) {
        let _ = resolve(&catalog, &a.aliases, &a.primary);
    }
    let _ = loaded.to_redacted_json();
}

/// Characters that matter to JSON5, so mutations hit interesting paths.
fn json5_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '{', '}', '[', ']', ':', ',', '"', '\'', '/', '*', '\\', '\n', ' ', '$', '-', '+', '.',
            '0', '9', 'e', 'x', 'I', 'N', 'u', 'é', '\u{2028}',
        ]),
        any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), json5_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), json5_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % chars.len());
            }
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
            Edit::Duplicate(i, len) if !chars.is_empty() => {
                let start = i % chars.len();
                let end = (start + len).min(chars.len());
                let piece: Vec<char> = chars[start..end].to_vec();
                chars.splice(start..start, piece);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(chars in prop::collection::vec(json5_char(), 0..400)) {
        check_text(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn mutated_configs_never_panic(seed in 0..SEEDS.len(), edits in prop::collection::vec(edit(), 1..12)) {
        check_text(&apply(SEEDS[seed], &edits));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check_text(&text);
    let text = format!(
        "{{ models: {}1{} }}",
        "{ a: ".repeat(5000),
        " }".repeat(5000)
    );
    check_text(&text);
}
