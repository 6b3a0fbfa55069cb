//! `cargo bench -p pincer-router --bench failover`: what failing over costs.
//! A healthy fallback (a scripted upstream on 127.0.0.1) answers every turn;
//! in front of it the primary is either absent, refusing connections (a
//! closed port), or cooling down after such a failure. Prints p50/p99 of the
//! time to the first token and what the primary added.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pincer_catalog::{Catalog, ModelRef, ModelSpec};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, Message};
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, completions_stream, free_port};

const RUNS: usize = 300;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let fallback = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  dead: {{ baseUrl: "{closed}", api: "openai-completions", models: [{{ id: "m" }}] }},
  good: {{ baseUrl: "{}", api: "openai-completions", models: [{{ id: "m" }}] }},
}} }} }}"#,
        fallback.base_url()
    );
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[("HOME", dir.path().to_str().unwrap())]);
    let loaded = load_text(&text, &dir.path().join("openclaw.json"), &env);
    let catalog = Catalog::new(&loaded.config.models);
    let spec = |r: &str| -> ModelSpec { catalog.model(&ModelRef::parse(r).unwrap()).unwrap() };
    let only_good = vec![spec("good/m")];
    let dead_first = vec![spec("dead/m"), spec("good/m")];
    let req = ChatRequest {
        messages: vec![Message::user("Hi")],
        ..ChatRequest::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new_router = || Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let time = |router: &Router, cands: &[ModelSpec]| {
        rt.block_on(async {
            let started = Instant::now();
            let mut a = router
                .start(&catalog, cands, "main", "b", &req)
                .await
                .unwrap();
            let took = started.elapsed();
            while a.next().await.is_some() {}
            assert_eq!(a.spec.reference, "good/m");
            took
        })
    };

    let mut base = Vec::new();
    let mut refused = Vec::new();
    let mut cooling = Vec::new();
    let warm = new_router();
    time(&warm, &dead_first); // puts `dead` in cooldown for this router
    for _ in 0..RUNS {
        base.push(time(&new_router(), &only_good));
        // A fresh router each time: no cooldown, the refused connect is paid.
        refused.push(time(&new_router(), &dead_first));
        cooling.push(time(&warm, &dead_first));
    }
    let row = |name: &str, v: &mut Vec<Duration>, b50: Duration, b99: Duration| {
        let (p50, p99) = (percentile(v, 0.5), percentile(v, 0.99));
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:+.2} ms | {:+.2} ms |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            (p50.as_secs_f64() - b50.as_secs_f64()) * 1e3,
            (p99.as_secs_f64() - b99.as_secs_f64()) * 1e3,
        );
    };
    let (b50, b99) = (percentile(&mut base, 0.5), percentile(&mut base, 0.99));
    println!("### Failover cost, time to first token, {RUNS} turns each (loopback)\n");
    println!("| primary | p50 | p99 | added p50 | added p99 |");
    println!("|---|---:|---:|---:|---:|");
    row("none (fallback only)", &mut base, b50, b99);
    row("refused connection, then fallback", &mut refused, b50, b99);
    row(
        "in cooldown (skipped), then fallback",
        &mut cooling,
        b50,
        b99,
    );
}
