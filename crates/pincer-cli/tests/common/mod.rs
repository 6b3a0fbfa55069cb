//! Shared by the tests that run the `pincer` binary with a config of their
//! own.
// Each test file uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `pincer` with `home` as its home and only `vars` besides `PATH`.
pub fn pincer(home: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

/// `pincer gateway` on `port` with `home` as its home (state under
/// `home/state`), its output discarded but for its log on stderr.
pub fn gateway_command(home: &Path, config: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pincer"));
    c.args([
        "--config",
        config.to_str().unwrap(),
        "gateway",
        "--port",
        &port.to_string(),
    ])
    .env_clear()
    .env("HOME", home)
    .env("OPENCLAW_STATE_DIR", home.join("state"))
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null());
    c
}

/// Writes `text` as `dir/openclaw.json`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("openclaw.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The command's stdout as JSON (its output shown when it is not).
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}
