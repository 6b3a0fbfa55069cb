//! `cargo bench -p pincer-sessions --bench stateless`: what a turn costs the
//! session store as one-request sessions pile up (each stateless OpenAI call
//! is a new session, as in OpenClaw). 4,000 sessions are recorded in each
//! layout (the SQLite database, the legacy `sessions.json`) with OpenClaw's
//! default maintenance (the index capped at 500) and with maintenance off;
//! the table shows the median and p99 record time of the first and the last
//! 500.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use pincer_sessions::{Maintenance, SessionStore, TurnRecord};
use pincer_types::{Message, Reply};

const SESSIONS: usize = 4_000;
const WINDOW: usize = 500;
const OFF: Maintenance = Maintenance {
    enforce: false,
    prune_after: Duration::from_secs(30 * 86_400),
    max_entries: 500,
};

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn run(legacy: bool, maintenance: Maintenance) -> (Vec<Duration>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = if legacy {
        SessionStore::open_legacy(dir.path())
    } else {
        SessionStore::open(dir.path(), "main")
    }
    .unwrap()
    .with_maintenance(maintenance);
    let input = [Message::user("What is the capital of France?")];
    let reply = Reply {
        text: "Paris.".into(),
        ..Reply::default()
    };
    let turn = TurnRecord {
        input: &input,
        model: "local/smollm2",
        api: "openai-completions",
        reply: &reply,
        cost_usd: 0.0,
        attempts: &[],
        error: None,
        continues: false,
    };
    let mut took = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let key = format!("agent:main:openai:{n:08}");
        let started = Instant::now();
        store.record(&key, &turn).unwrap();
        took.push(started.elapsed());
    }
    (took, store.list().len())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("### Session store, {SESSIONS} one-request sessions\n");
    println!(
        "| layout | maintenance | first {WINDOW}: p50 | p99 | last {WINDOW}: p50 | p99 | sessions kept |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (layout, legacy, name, m) in [
        (
            "SQLite",
            false,
            "default (maxEntries 500)",
            Maintenance::default(),
        ),
        ("SQLite", false, "off (mode warn)", OFF),
        (
            "legacy JSON",
            true,
            "default (maxEntries 500)",
            Maintenance::default(),
        ),
        ("legacy JSON", true, "off (mode warn)", OFF),
    ] {
        let (took, kept) = run(legacy, m);
        let mut first = took[..WINDOW].to_vec();
        let mut last = took[SESSIONS - WINDOW..].to_vec();
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {layout} | {name} | {} | {} | {} | {} | {kept} |",
            ms(percentile(&mut first, 0.5)),
            ms(percentile(&mut first, 0.99)),
            ms(percentile(&mut last, 0.5)),
            ms(percentile(&mut last, 0.99)),
        );
    }
}
