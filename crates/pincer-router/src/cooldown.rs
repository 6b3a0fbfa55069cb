//! Which providers, models and keys to skip for a while after they failed (the
//! failure policy says which), with OpenClaw's schedule: 30 s, 1 min, then 5 min for
//! ordinary failures; 30 s doubling (capped at 24 h) for rate limits; 10 min
//! doubling (capped at 24 h) for billing. A window already running is never
//! extended; counters reset after 24 h without failures. The state is kept in
//! a JSON file so a restart does not forget a dead provider.
//!
//! One difference from OpenClaw, on purpose: OpenClaw restarts the count once
//! a window expires, so a provider that stays down is probed every 30 s
//! forever. Here the count runs until a success (or a day without failures),
//! so a dead provider is probed every 5 minutes after its third failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pincer_types::ErrorKind;
use serde::{Deserialize, Serialize};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Milliseconds since the Unix epoch (what the state file stores).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub cooldown_until: u64,
    pub reason: String,
    pub error_count: u32,
    /// Kept across counter resets, as OpenClaw does: a provider that keeps
    /// rate-limiting backs off further each time.
    pub rate_limit_count: u32,
    pub billing_count: u32,
    pub last_failure_at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cooldowns {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

impl Cooldowns {
    /// How many cooldowns are running at `now`.
    pub fn running(&self, now: u64) -> usize {
        self.entries
            .values()
            .filter(|e| e.cooldown_until > now)
            .count()
    }

    /// The cooldown running for `key` at `now`: until when, and why.
    pub fn active(&self, key: &str, now: u64) -> Option<(u64, &str)> {
        self.entries
            .get(key)
            .filter(|e| e.cooldown_until > now)
            .map(|e| (e.cooldown_until, e.reason.as_str()))
    }

    pub fn record_failure(
        &mut self,
        key: &str,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        now: u64,
    ) {
        let e = self.entries.entry(key.to_string()).or_default();
        if e.cooldown_until > now {
            // Never extend a window that is already running.
            return;
        }
        if now.saturating_sub(e.last_failure_at) > DAY_MS {
            e.error_count = 0;
        }
        e.error_count += 1;
        e.last_failure_at = now;
        let wait = match kind {
            ErrorKind::RateLimit => {
                e.rate_limit_count += 1;
                doubling(30_000, e.rate_limit_count, DAY_MS)
            }
            ErrorKind::Billing => {
                e.billing_count += 1;
                doubling(600_000, e.billing_count, DAY_MS)
            }
            _ => match e.error_count {
                1 => 30_000,
                2 => 60_000,
                _ => 300_000,
            },
        };
        // A server's own Retry-After is a floor.
        let wait = wait.max(retry_after.map_or(0, |d| d.as_millis() as u64));
        e.cooldown_until = now + wait;
        e.reason = kind.as_str().to_string();
    }

    /// A success clears the failure count (the rate-limit count stays).
    pub fn record_success(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.error_count = 0;
            e.cooldown_until = 0;
            e.reason.clear();
        }
    }

    /// Reads the state file; a missing file is an empty state, and a broken
    /// one is reported and replaced rather than trusted.
    pub fn load(path: &Path) -> Result<Cooldowns, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a cooldown state file ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cooldowns::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes the state whole: a temporary file renamed over the old one, so
    /// a crash leaves either the old state or the new one.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_whole(
            path,
            &Cooldowns {
                version: 1,
                entries: self.entries.clone(),
            },
        )
    }
}

/// Writes `value` as JSON to `path` whole: a temporary file renamed over
/// the old one, so a crash leaves either the old file or the new one.
pub fn write_whole(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    let mut file = atomic_write_file::AtomicWriteFile::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.commit())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn doubling(base_ms: u64, n: u32, cap_ms: u64) -> u64 {
    base_ms
        .saturating_mul(1u64 << n.saturating_sub(1).min(40))
        .min(cap_ms)
}

/// Where the state lives: `<OpenClaw state dir>/pincer/cooldowns.json`.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("pincer").join("cooldowns.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn ordinary_failures_back_off_30s_1m_5m() {
        let mut c = Cooldowns::default();
        let mut now = T0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            c.record_failure("lmstudio", ErrorKind::Connection, None, now);
            let (until, reason) = c.active("lmstudio", now).unwrap();
            assert_eq!(reason, "connection");
            waits.push((until - now) / 1000);
            now = until; // the window expires, the probe fails again
        }
        assert_eq!(waits, [30, 60, 300, 300]);
    }

    #[test]
    fn a_success_or_a_quiet_day_restarts_the_schedule() {
        let mut c = Cooldowns::default();
        c.record_failure("p", ErrorKind::Server, None, T0);
        c.record_failure("p", ErrorKind::Server, None, T0 + 30_000);
        c.record_success("p");
        c.record_failure("p", ErrorKind::Server, None, T0 + 100_000);
        assert_eq!(c.active("p", T0 + 100_000).unwrap().0, T0 + 130_000);
        let later = T0 + 2 * DAY_MS;
        c.record_failure("p", ErrorKind::Server, None, later);
        assert_eq!(c.active("p", later).unwrap().0, later + 30_000);
    }

    #[test]
    fn a_running_window_is_not_extended() {
        let mut c = Cooldowns::default();
        c.record_failure("p", ErrorKind::Timeout, None, T0);
        c.record_failure("p", ErrorKind::Timeout, None, T0 + 1000);
        assert_eq!(c.active("p", T0 + 1000).unwrap().0, T0 + 30_000);
        assert!(c.active("p", T0 + 30_000).is_none());
    }

    #[test]
    fn rate_limits_double_per_model_and_respect_retry_after() {
        let mut c = Cooldowns::default();
        let key = "openai/gpt-5";
        let mut now = T0;
        let mut waits = Vec::new();
        for _ in 0..3 {
            c.record_failure(key, ErrorKind::RateLimit, None, now);
            let until = c.active(key, now).unwrap().0;
            waits.push((until - now) / 1000);
            now = until;
        }
        assert_eq!(waits, [30, 60, 120]);
        c.record_failure(
            key,
            ErrorKind::RateLimit,
            Some(Duration::from_secs(900)),
            now,
        );
        assert_eq!(c.active(key, now).unwrap().0 - now, 900_000);
    }

    #[test]
    fn success_clears_and_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let mut c = Cooldowns::default();
        c.record_failure("dead", ErrorKind::Connection, None, T0);
        c.record_failure("busy", ErrorKind::Overloaded, None, T0);
        c.record_success("busy");
        c.save(&path).unwrap();
        let back = Cooldowns::load(&path).unwrap();
        assert_eq!(
            back.active("dead", T0 + 1),
            Some((T0 + 30_000, "connection"))
        );
        assert!(back.active("busy", T0 + 1).is_none());

        std::fs::write(&path, "{ torn").unwrap();
        let err = Cooldowns::load(&path).unwrap_err();
        assert!(err.contains("cooldowns.json"), "{err}");
        assert_eq!(
            Cooldowns::load(&dir.path().join("none.json")).unwrap(),
            Cooldowns::default()
        );
    }
}
