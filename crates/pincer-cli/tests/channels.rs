//! `pincer channels` and `pincer pairing` without a gateway: linking
//! WhatsApp where WhatsApp cannot be reached fails within its timeout and
//! leaves nothing half-linked; the status says what is not set up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json, pincer, write_config};

#[test]
fn whatsapp_login_without_its_servers_fails_cleanly_and_status_says_unlinked() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "{ channels: { whatsapp: {} } }");
    let state = home.path().join("state");
    let vars = [("OPENCLAW_STATE_DIR", state.to_str().unwrap())];
    let out = pincer(
        home.path(),
        &[
            "--config",
            &cfg,
            "channels",
            "login",
            "whatsapp",
            "--timeout",
            "3",
        ],
        &vars,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not linked within 3 s"), "{err}");
    let creds = state.join("credentials/whatsapp/default");
    assert_eq!(std::fs::read_dir(&creds).map(|d| d.count()).unwrap_or(0), 0);

    let out = pincer(
        home.path(),
        &["--config", &cfg, "channels", "status", "--json"],
        &vars,
    );
    let status = json(&out);
    let wa = &status["channels"][1];
    assert_eq!(wa["channel"], "whatsapp");
    assert!(
        wa["state"].as_str().unwrap().starts_with("not linked"),
        "{wa}"
    );
    assert_eq!(status["channels"][0]["state"], "not configured");

    let out = pincer(
        home.path(),
        &["--config", &cfg, "channels", "logout", "whatsapp"],
        &vars,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not linked"));
    let out = pincer(
        home.path(),
        &["--config", &cfg, "channels", "login", "telegram"],
        &vars,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("@BotFather"));
}

#[test]
fn approving_an_unknown_code_is_refused_with_the_way_to_list_them() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "{}");
    let state = home.path().join("state");
    let vars = [("OPENCLAW_STATE_DIR", state.to_str().unwrap())];
    let out = pincer(
        home.path(),
        &[
            "--config", &cfg, "pairing", "approve", "telegram", "ABCD2345",
        ],
        &vars,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pincer pairing list telegram"), "{err}");
    let out = pincer(
        home.path(),
        &["--config", &cfg, "pairing", "approve", "signal", "X"],
        &vars,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown channel"));
    let out = pincer(
        home.path(),
        &["--config", &cfg, "pairing", "list", "--json"],
        &vars,
    );
    assert_eq!(json(&out)["requests"], serde_json::json!([]));
}
