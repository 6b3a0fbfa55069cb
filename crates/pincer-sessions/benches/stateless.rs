//! `cargo bench -p pincer-sessions --bench stateless`: what a turn costs the
//! session store as one-request sessions pile up (each stateless OpenAI call
//! is a new session, as in OpenClaw). 4,000 sessions are recorded with
//! OpenClaw's default maintenance (the index capped at 500) and with
//! maintenance off; the table shows the median and p99 record time of the
//! first and the last 500.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use pincer_sessions::{Maintenance, SessionStore, TurnRecord};
use pincer_types::{Message, Reply};

const SESSIONS: usize = 4_000;
const WINDOW: usize = 500;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn run(maintenance: Maintenance) -> (Vec<Duration>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), "main")
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
    };
    let mut took = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let key = format!("agent:main:openai:{n:08}");
        let started = Instant::now();
        store.record(&key, &turn).unwrap();
        took.push(started.elapsed());
    }
    let files = std::fs::read_dir(store.dir()).unwrap().count();
    (took, files)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("### Session store, {SESSIONS} one-request sessions\n");
    println!("| maintenance | first {WINDOW}: p50 | p99 | last {WINDOW}: p50 | p99 | files left |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, m) in [
        ("default (maxEntries 500)", Maintenance::default()),
        (
            "off (mode warn)",
            Maintenance {
                enforce: false,
                ..Maintenance::default()
            },
        ),
    ] {
        let (took, files) = run(m);
        let mut first = took[..WINDOW].to_vec();
        let mut last = took[SESSIONS - WINDOW..].to_vec();
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {name} | {} | {} | {} | {} | {files} |",
            ms(percentile(&mut first, 0.5)),
            ms(percentile(&mut first, 0.99)),
            ms(percentile(&mut last, 0.5)),
            ms(percentile(&mut last, 0.99)),
        );
    }
}
