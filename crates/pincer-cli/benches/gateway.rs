//! `cargo bench -p pincer-cli --bench gateway`: what `pincer gateway` adds
//! in front of one real upstream (llama.cpp's server on SmolLM2), all on
//! 127.0.0.1, bounded in time. For 1, 64 and 512 concurrent clients, each
//! client sends streamed chat turns back to back (4 output tokens, the same
//! prompt, so the upstream answers from its prompt cache) directly to the
//! upstream, then through Pincer, then through LiteLLM's proxy when it is
//! installed; latency is request to last byte. Then the gateway's RSS idle
//! and at its peak under 512 concurrent streams. Prints Markdown tables.
//!
//! `BENCH_SECONDS` (default 8) bounds each measurement.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pincer_testkit::{LiteLlm, LlamaServer, free_port, litellm_available};
use serde_json::json;

const LEVELS: [usize; 3] = [1, 64, 512];

struct Target {
    name: &'static str,
    url: String,
    model: &'static str,
    key: Option<String>,
}

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    )
}

/// Resident memory of `pid` in MiB, from /proc.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn start_gateway(home: &Path, llama: &LlamaServer, port: u16) -> Child {
    let config = home.join("openclaw.json");
    std::fs::write(
        &config,
        format!(
            r#"{{ models: {{ mode: "replace", providers: {{ llama: {{ baseUrl: "{}", api: "openai-completions",
  models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 256 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "llama/smollm2" }} }} }} }}"#,
            llama.base_url()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "gateway",
            "--port",
            &port.to_string(),
        ])
        .env("OPENCLAW_STATE_DIR", home.join("state"))
        .env("PINCER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the gateway did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// One streamed turn, read to its last byte.
async fn turn(client: &reqwest::Client, t: &Target, user: &str) -> Option<Duration> {
    let body = json!({
        "model": t.model, "stream": true, "max_tokens": 4, "temperature": 0, "user": user,
        "messages": [{"role": "user", "content": "Say hello."}],
    });
    let started = Instant::now();
    let mut req = client.post(&t.url).json(&body);
    if let Some(k) = &t.key {
        req = req.bearer_auth(k);
    }
    let mut response = req.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut tail = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        tail = chunk.to_vec();
    }
    let complete = String::from_utf8_lossy(&tail).contains("[DONE]");
    complete.then(|| started.elapsed())
}

struct Measured {
    latencies: Vec<Duration>,
    failed: u64,
}

/// `clients` loops of back-to-back turns for the bench duration.
fn measure(rt: &tokio::runtime::Runtime, t: &Arc<Target>, clients: usize) -> Measured {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + seconds();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, t, stop, failed) = (
                client.clone(),
                Arc::clone(t),
                Arc::clone(&stop),
                Arc::clone(&failed),
            );
            rt.spawn(async move {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match turn(&client, &t, &format!("bench-{i}")).await {
                        Some(d) => mine.push(d),
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(rt.block_on(task).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    latencies.sort();
    Measured {
        latencies,
        failed: failed.load(Ordering::Relaxed),
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let llama = LlamaServer::start();
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut gateway = start_gateway(home.path(), &llama, port);
    let pid = gateway.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_mib(pid);
    let litellm = litellm_available().then(|| LiteLlm::start(&llama.base_url()));

    let mut targets = vec![
        Arc::new(Target {
            name: "direct",
            url: format!("{}/chat/completions", llama.base_url()),
            model: "smollm2",
            key: None,
        }),
        Arc::new(Target {
            name: "pincer",
            url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
            model: "openclaw",
            key: None,
        }),
    ];
    if let Some(l) = &litellm {
        targets.push(Arc::new(Target {
            name: "litellm",
            url: format!("{}/chat/completions", l.base_url()),
            model: "smollm2",
            key: Some(l.key.clone()),
        }));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm-up: connections, the upstream's prompt cache, the gateway's pools.
    for t in &targets {
        rt.block_on(turn(&reqwest::Client::new(), t, "warmup"));
    }

    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(false));
    {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        std::thread::spawn(move || {
            loop {
                if sampling.load(Ordering::Relaxed) {
                    let kib = (rss_mib(pid) * 1024.0) as u64;
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    println!(
        "\n| clients | target | turns | failed | p50 ms | p99 ms | added p50 ms | added p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for clients in LEVELS {
        let mut direct: Option<Measured> = None;
        let mut added = Vec::new();
        for t in &targets {
            sampling.store(t.name == "pincer" && clients == 512, Ordering::Relaxed);
            let m = measure(&rt, t, clients);
            sampling.store(false, Ordering::Relaxed);
            let (p50, p99) = (pct(&m.latencies, 0.5), pct(&m.latencies, 0.99));
            let (a50, a99) = match &direct {
                Some(d) => (p50 - pct(&d.latencies, 0.5), p99 - pct(&d.latencies, 0.99)),
                None => (0.0, 0.0),
            };
            println!(
                "| {clients} | {} | {} | {} | {p50:.2} | {p99:.2} | {} | {} |",
                t.name,
                m.latencies.len(),
                m.failed,
                if direct.is_some() {
                    format!("{a50:+.2}")
                } else {
                    "–".into()
                },
                if direct.is_some() {
                    format!("{a99:+.2}")
                } else {
                    "–".into()
                },
            );
            if t.name != "direct" {
                added.push((t.name, a50, a99));
            }
            if direct.is_none() {
                direct = Some(m);
            }
        }
        let get = |name| added.iter().find(|(n, _, _)| *n == name).copied();
        if let (Some((_, p50, p99)), Some((_, l50, l99))) = (get("pincer"), get("litellm")) {
            ratios.push((clients, l50 / p50, l99 / p99));
        }
    }
    let peak_rss = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    println!("\n| pincer gateway RSS | MiB |\n|---|---|");
    println!("| idle (no embedded model) | {idle_rss:.1} |");
    println!("| peak under 512 concurrent streams | {peak_rss:.1} |");
    if !ratios.is_empty() {
        println!("\n| clients | LiteLLM added ÷ Pincer added, p50 | p99 |\n|---|---|---|");
        for (c, r50, r99) in ratios {
            println!("| {c} | {r50:.1}× | {r99:.1}× |");
        }
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    // Keep the servers alive until the end.
    drop(litellm);
}
