//! Settings that shape how Pincer waits and prunes, read from OpenClaw's
//! config: a provider's `params` record (which OpenClaw passes on
//! unchecked) and `session.maintenance`. Read, validated, and defaulted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use pincer_config::{
    Config, Env, MaintenanceConfig, Patience, QueueDrop, QueueMode, SameModelRetry, load_text,
};

/// The config `text` makes, and its errors.
fn read(text: &str) -> (Config, Vec<String>) {
    let loaded = load_text(text, Path::new("openclaw.json"), &Env::from_pairs(&[]));
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    (loaded.config, errors)
}

fn patience(params: &str) -> (Patience, Vec<String>) {
    let (config, errors) = read(&format!(
        "{{ models: {{ providers: {{ lm: {{ baseUrl: 'http://127.0.0.1:1234/v1', params: {params}, models: [{{ id: 'a' }}] }} }} }} }}"
    ));
    (config.models.providers[0].patience, errors)
}

fn maintenance(section: &str) -> (MaintenanceConfig, Vec<String>) {
    let (config, errors) = read(&format!("{{ session: {section} }}"));
    (config.session.maintenance, errors)
}

#[test]
fn retry_and_first_token_limit_from_params() {
    let table: [(&str, Option<SameModelRetry>, Option<u64>); 6] = [
        ("{}", None, None),
        ("{ preload: false }", None, None),
        ("{ retry: false }", Some(SameModelRetry::OFF), None),
        ("{ retry: true }", Some(SameModelRetry::DEFAULT), None),
        (
            "{ retry: { maxWaitSeconds: 5 }, firstTokenTimeoutSeconds: 30 }",
            Some(SameModelRetry {
                max_wait_seconds: 5.0,
                transient: true,
            }),
            Some(30),
        ),
        (
            "{ retry: { transient: false }, firstTokenTimeoutSeconds: 0 }",
            Some(SameModelRetry {
                max_wait_seconds: 2.0,
                transient: false,
            }),
            Some(0),
        ),
    ];
    for (params, retry, first_token) in table {
        let (p, errors) = patience(params);
        assert!(errors.is_empty(), "{params}: {errors:?}");
        assert_eq!(p.retry, retry, "{params}");
        assert_eq!(p.first_token_seconds, first_token, "{params}");
    }
}

#[test]
fn wrong_values_are_errors_that_name_the_key() {
    for (params, path) in [
        ("{ retry: 'yes' }", "params.retry"),
        (
            "{ retry: { maxWaitSeconds: 600 } }",
            "params.retry.maxWaitSeconds",
        ),
        ("{ retry: { transient: 1 } }", "params.retry.transient"),
        (
            "{ firstTokenTimeoutSeconds: -1 }",
            "params.firstTokenTimeoutSeconds",
        ),
        (
            "{ firstTokenTimeoutSeconds: 2.5 }",
            "params.firstTokenTimeoutSeconds",
        ),
        ("[]", "lm.params"),
    ] {
        let (_, errors) = patience(params);
        assert_eq!(errors.len(), 1, "{params}: {errors:?}");
        assert!(errors[0].contains(path), "{params}: {}", errors[0]);
    }
}

#[test]
fn maintenance_settings_and_their_errors() {
    let (m, errors) = maintenance(
        "{ dmScope: 'per-peer', maintenance: { mode: 'warn', pruneAfter: '7d', maxEntries: 100, maxDiskBytes: '1gb' } }",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        m,
        MaintenanceConfig {
            enforce: Some(false),
            prune_after: Some(Duration::from_secs(7 * 86_400)),
            max_entries: Some(100),
        }
    );
    assert_eq!(
        maintenance("{ maintenance: { pruneDays: 2 } }")
            .0
            .prune_after,
        Some(Duration::from_secs(2 * 86_400))
    );
    assert_eq!(maintenance("{}").0, MaintenanceConfig::default());
    for (bad, path) in [
        (
            "{ maintenance: { pruneAfter: 'soon' } }",
            "session.maintenance.pruneAfter",
        ),
        (
            "{ maintenance: { mode: 'delete' } }",
            "session.maintenance.mode",
        ),
        (
            "{ maintenance: { maxEntries: 0 } }",
            "session.maintenance.maxEntries",
        ),
        ("{ maintenance: 5 }", "session.maintenance"),
    ] {
        let (_, errors) = maintenance(bad);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(errors[0].contains(path), "{bad}: {}", errors[0]);
    }
}

#[test]
fn queue_settings_and_their_errors() {
    let (config, errors) = read(
        "{ messages: { ackReaction: '👀', queue: { mode: 'coalesce', byChannel: { Telegram: 'interrupt' }, \
         debounceMs: 0, debounceMsByChannel: { whatsapp: 1500 }, cap: 5, drop: 'old' } } }",
    );
    assert!(errors.is_empty(), "{errors:?}");
    let q = config.messages.queue;
    assert_eq!(q.mode, Some(QueueMode::Collect));
    assert_eq!(q.by_channel.get("telegram"), Some(&QueueMode::Interrupt));
    assert_eq!(
        (
            q.debounce_ms,
            q.debounce_ms_by_channel.get("whatsapp"),
            q.cap,
            q.drop
        ),
        (Some(0), Some(&1500), Some(5), Some(QueueDrop::Old))
    );
    assert!(config.not_used.iter().any(|p| p == "messages.ackReaction"));
    for (bad, path) in [
        ("{ queue: { mode: 'stack' } }", "messages.queue.mode"),
        (
            "{ queue: { byChannel: { telegram: 'later' } } }",
            "messages.queue.byChannel.telegram",
        ),
        ("{ queue: { drop: 'all' } }", "messages.queue.drop"),
        ("{ queue: { cap: 0 } }", "messages.queue.cap"),
        ("{ queue: { debounceMs: -1 } }", "messages.queue.debounceMs"),
        ("{ queue: 'collect' }", "messages.queue"),
    ] {
        let (_, errors) = read(&format!("{{ messages: {bad} }}"));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(errors[0].contains(path), "{bad}: {}", errors[0]);
    }
}
