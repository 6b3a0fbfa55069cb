//! What the agent runtime itself costs per turn, and what a big transcript
//! costs to load and keep.
//!
//! `cargo bench -p pincer-agent --bench turn`
//!
//! 1. A session of 500 entries, then 300 more turns through
//!    `Runtime::deliver` against a scripted upstream that answers at once.
//!    The same request sent straight through the router is the model call.
//!    What the runtime adds is the difference: finding the session, the
//!    system prompt, counting tokens, fitting, and writing the turn.
//! 2. A 10 MB transcript: the time to read it as a tree, the time of the
//!    first (cold) turn on it, and how much the process grew to keep it warm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pincer_agent::{Delivery, Runtime};
use pincer_config::{Env, Loaded, load_text};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_sessions::{Maintenance, SessionStore, TurnRecord};
use pincer_testkit::{FakeUpstream, completions_stream};
use pincer_types::{ChatRequest, Message, Reply, Usage};

const KEY: &str = "agent:main:bench";

fn loaded(url: &str) -> &'static Loaded {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{url}", api: "openai-completions",
      models: [{{ id: "m", contextWindow: 1000000, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }} }} }} }}"#
    );
    Box::leak(Box::new(load_text(
        &text,
        Path::new("/nowhere/openclaw.json"),
        &Env::from_pairs(&[]),
    )))
}

fn runtime(loaded: &'static Loaded, state: &Path) -> Runtime<'static> {
    let router = Router::new(
        Providers::new(Env::from_pairs(&[]), Arc::new(Silent)).unwrap(),
        None,
    );
    Runtime::new(&loaded.config, router, state, Maintenance::default()).unwrap()
}

/// Writes `turns` turns of `chars` characters each to the bench session.
fn seed(state: &Path, turns: usize, chars: usize) {
    let store = SessionStore::open(state, "main").unwrap();
    let text = "w".repeat(chars);
    let reply = Reply {
        text: text.clone(),
        usage: Usage {
            input: 10,
            output: 10,
            ..Usage::default()
        },
        ..Reply::default()
    };
    for n in 0..turns {
        let input = [Message::user(format!("{n} {text}"))];
        let turn = TurnRecord {
            input: &input,
            model: "up/m",
            api: "openai-completions",
            reply: &reply,
            cost_usd: 0.0,
            attempts: &[],
            error: None,
            continues: false,
        };
        store.record(KEY, &turn).unwrap();
    }
    store.flush().unwrap();
}

fn delivery(text: &str) -> Delivery {
    Delivery {
        agent: "main".into(),
        session_key: KEY.into(),
        input: vec![Message::user(text)],
        agent_prompt: true,
        whole: true,
        ..Delivery::default()
    }
}

async fn deliver(rt: &Runtime<'_>, text: &str) -> Duration {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = async move { while rx.recv().await.is_some() {} };
    let (done, ()) = tokio::join!(rt.deliver(delivery(text), tx), drain);
    done.unwrap();
    started.elapsed()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"ok"}"#])]);
    let loaded = loaded(&up.base_url());

    // 1. Per turn, on a 500-entry session.
    let state = tempfile::tempdir().unwrap();
    seed(state.path(), 250, 200);
    let runtime_ = runtime(loaded, state.path());
    let catalog = runtime_.catalog();
    let spec = pincer_catalog::turn_candidates(catalog, runtime_.default_agent(), None)
        .unwrap()
        .0;
    rt.block_on(async {
        deliver(&runtime_, "warm up").await;
        let mut turns = Vec::new();
        let mut calls = Vec::new();
        for n in 0..300 {
            turns.push(deliver(&runtime_, &format!("turn {n}")).await);
            // The model call alone: the same size of request, straight to the router.
            let store = &runtime_.stores()["main"];
            let entry = store.get(KEY).unwrap();
            let mut messages = vec![Message::system("s".repeat(600))];
            messages.extend(store.tree(&entry.session_id).unwrap().context());
            let req = ChatRequest {
                messages,
                ..ChatRequest::default()
            };
            let started = Instant::now();
            runtime_
                .router()
                .complete(catalog, &spec, "main", "bench-direct", &req)
                .await
                .unwrap();
            calls.push(started.elapsed());
        }
        turns.sort();
        calls.sort();
        println!("turn through the runtime, 500-800 entries (300 turns):");
        for (name, d) in [("runtime", &turns), ("model call alone", &calls)] {
            println!(
                "  {name:>16}: p50 {:>7.3} ms  p99 {:>7.3} ms",
                pct(d, 0.5).as_secs_f64() * 1e3,
                pct(d, 0.99).as_secs_f64() * 1e3
            );
        }
        println!(
            "  {:>16}: p50 {:>7.3} ms  p99 {:>7.3} ms",
            "added",
            pct(&turns, 0.5)
                .saturating_sub(pct(&calls, 0.5))
                .as_secs_f64()
                * 1e3,
            pct(&turns, 0.99)
                .saturating_sub(pct(&calls, 0.99))
                .as_secs_f64()
                * 1e3
        );
    });

    // 2. A 10 MB transcript.
    let state = tempfile::tempdir().unwrap();
    seed(state.path(), 5_000, 1_000);
    let store = SessionStore::open(state.path(), "main").unwrap();
    let id = store.get(KEY).unwrap().session_id;
    // The rows were just written, so they are in the page cache: the time
    // is the read and the parse. What the process grows by holding the
    // tree is the warm cost.
    let before = rss_kb();
    let started = Instant::now();
    let tree = store.tree(&id).unwrap();
    let parse = started.elapsed();
    let grew = rss_kb().saturating_sub(before);
    // Its size as a JSONL file.
    let file: u64 = store
        .transcript(&id)
        .unwrap()
        .events
        .iter()
        .map(|e| e.to_string().len() as u64 + 1)
        .sum();
    let context = tree.context().len();
    println!(
        "{:.1} MB transcript, {} entries ({context} in the context): read as a tree in {:.1} ms; \
         the process grew {:.1} MB holding it ({:.2}× the file)",
        file as f64 / 1e6,
        tree.entries.len(),
        parse.as_secs_f64() * 1e3,
        grew as f64 / 1e3,
        grew as f64 * 1e3 / file as f64
    );
}
