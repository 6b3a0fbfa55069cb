//! `session.maintenance`, read as OpenClaw writes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use pincer_config::{Env, MaintenanceConfig, load_text};

fn read(section: &str) -> (MaintenanceConfig, Vec<String>) {
    let loaded = load_text(
        &format!("{{ session: {section} }}"),
        Path::new("openclaw.json"),
        &Env::from_pairs(&[]),
    );
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    (loaded.config.session.maintenance, errors)
}

#[test]
fn maintenance_settings_and_their_errors() {
    let (m, errors) = read(
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
        read("{ maintenance: { pruneDays: 2 } }").0.prune_after,
        Some(Duration::from_secs(2 * 86_400))
    );
    assert_eq!(read("{}").0, MaintenanceConfig::default());
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
        let (_, errors) = read(bad);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(errors[0].contains(path), "{bad}: {}", errors[0]);
    }
}
