//! `cargo bench -p pincer-cli --bench gateway`: what `pincer gateway` adds
//! in front of one real upstream (llama.cpp's server on SmolLM2), all on
//! 127.0.0.1, bounded in time. For 1, 64 and 512 concurrent clients, each
//! client sends streamed chat turns back to back (4 output tokens, the same
//! prompt, so the upstream answers from its prompt cache), alternating
//! between the upstream directly and through Pincer, so both see the same
//! upstream at the same load; then the same with LiteLLM's proxy in Pincer's
//! place when it is installed. Latency is request to last byte; "added" is
//! the difference to the direct turns of the same run.
//!
//! With 64 or more clients the real upstream is saturated (2 cores, a few
//! slots) and its queue decides every latency, so the same runs are made
//! once more against a replay upstream that answers at once with a stream
//! recorded from llama-server: there the difference is what Pincer itself
//! adds at that concurrency. Back-to-back clients would then saturate the
//! two cores (client, replay and gateway share them) and measure queueing
//! again, so replay clients are paced: 1,000 turns/s in all, spread over
//! the clients. Then the gateway's RSS idle and at its peak
//! under 512 concurrent streams. Prints Markdown tables.
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

fn start_gateway(home: &Path, llama: &LlamaServer, replay: &str, port: u16) -> Child {
    let config = home.join("openclaw.json");
    std::fs::write(
        &config,
        format!(
            r#"{{ models: {{ mode: "replace", providers: {{
  llama: {{ baseUrl: "{}", api: "openai-completions", models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 256 }}] }},
  replay: {{ baseUrl: "{replay}", api: "openai-completions", models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 256 }}] }},
  }} }},
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
    let request = || {
        let mut req = client.post(&t.url).json(&body);
        if let Some(k) = &t.key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    // llama-server closes kept-alive connections now and then; a client
    // that pools connections tries once more, as Pincer does upstream.
    let mut response = match request().await {
        Ok(r) => r,
        Err(_) => request().await.ok()?,
    };
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

/// `clients` loops of turns for the bench duration, each client taking the
/// targets in turn: back to back, or one turn per `pace` per client.
fn measure(
    rt: &tokio::runtime::Runtime,
    targets: &[Arc<Target>],
    clients: usize,
    pace: Option<Duration>,
) -> Vec<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let deadline = Instant::now() + seconds();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, targets) = (client.clone(), targets.to_vec());
            rt.spawn(async move {
                let mut mine: Vec<Measured> = targets
                    .iter()
                    .map(|_| Measured {
                        latencies: Vec::new(),
                        failed: 0,
                    })
                    .collect();
                let mut n = i;
                // Spread the paced clients' starts over one period.
                let mut next =
                    Instant::now() + pace.map_or(Duration::ZERO, |p| p * i as u32 / clients as u32);
                while Instant::now() < deadline {
                    if let Some(p) = pace {
                        tokio::time::sleep_until(next.into()).await;
                        next += p;
                    }
                    let k = n % targets.len();
                    n += 1;
                    match turn(&client, &targets[k], &format!("bench-{i}")).await {
                        Some(d) => mine[k].latencies.push(d),
                        None => mine[k].failed += 1,
                    }
                }
                mine
            })
        })
        .collect();
    let mut out: Vec<Measured> = targets
        .iter()
        .map(|_| Measured {
            latencies: Vec::new(),
            failed: 0,
        })
        .collect();
    for task in tasks {
        for (k, m) in rt.block_on(task).unwrap().into_iter().enumerate() {
            out[k].latencies.extend(m.latencies);
            out[k].failed += m.failed;
        }
    }
    for m in &mut out {
        m.latencies.sort();
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// llama-server's streamed answer to the bench's turn, as bytes.
fn record(rt: &tokio::runtime::Runtime, llama: &LlamaServer) -> bytes::Bytes {
    rt.block_on(async {
        let body = json!({
            "model": "smollm2", "stream": true, "max_tokens": 4, "temperature": 0,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Say hello."}],
        });
        let url = format!("{}/chat/completions", llama.base_url());
        let r = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap()
    })
}

/// An upstream that answers every chat request at once with `recorded`.
fn start_replay(rt: &tokio::runtime::Runtime, recorded: bytes::Bytes) -> String {
    use axum::serve::ListenerExt as _;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let body = recorded.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                    body,
                )
            }
        }),
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    rt.spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/v1")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let llama = LlamaServer::start();
    let replay = start_replay(&rt, record(&rt, &llama));
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut gateway = start_gateway(home.path(), &llama, &replay, port);
    let pid = gateway.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_mib(pid);
    let litellm = litellm_available().then(|| LiteLlm::start(&llama.base_url()));

    let direct = Arc::new(Target {
        name: "direct",
        url: format!("{}/chat/completions", llama.base_url()),
        model: "smollm2",
        key: None,
    });
    let pincer = Arc::new(Target {
        name: "pincer",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        model: "openclaw",
        key: None,
    });
    let mut runs = vec![("llama-server", vec![Arc::clone(&direct), pincer])];
    if let Some(l) = &litellm {
        let peer = Arc::new(Target {
            name: "litellm",
            url: format!("{}/chat/completions", l.base_url()),
            model: "smollm2",
            key: Some(l.key.clone()),
        });
        runs.push(("llama-server", vec![direct, peer]));
    }
    let replay_direct = Arc::new(Target {
        name: "direct",
        url: format!("{replay}/chat/completions"),
        model: "smollm2",
        key: None,
    });
    let replay_pincer = Arc::new(Target {
        name: "pincer",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        model: "replay/smollm2",
        key: None,
    });
    runs.push(("replay", vec![replay_direct, replay_pincer]));
    // Warm-up: connections, the upstream's prompt cache, the gateway's pools.
    for t in runs.iter().flat_map(|(_, r)| r) {
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
        "\n| clients | upstream | target | turns | failed | p50 ms | p99 ms | added p50 ms | added p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for clients in LEVELS {
        for (r, (upstream, run)) in runs.iter().enumerate() {
            sampling.store(r == 0 && clients == 512, Ordering::Relaxed);
            // 1,000 turns a second in all: each client one turn per `clients` ms.
            let pace = (*upstream == "replay").then(|| Duration::from_millis(clients as u64));
            let measured = measure(&rt, run, clients, pace);
            sampling.store(false, Ordering::Relaxed);
            let d = &measured[0].latencies;
            let (d50, d99) = (pct(d, 0.5), pct(d, 0.99));
            for (t, m) in run.iter().zip(&measured) {
                let (p50, p99) = (pct(&m.latencies, 0.5), pct(&m.latencies, 0.99));
                let (a50, a99) = if t.name == "direct" {
                    ("–".to_string(), "–".to_string())
                } else {
                    (format!("{:+.2}", p50 - d50), format!("{:+.2}", p99 - d99))
                };
                println!(
                    "| {clients} | {upstream} | {} | {} | {} | {p50:.2} | {p99:.2} | {a50} | {a99} |",
                    t.name,
                    m.latencies.len(),
                    m.failed,
                );
            }
        }
    }
    let peak_rss = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    println!("\n| pincer gateway RSS | MiB |\n|---|---|");
    println!("| idle (no embedded model) | {idle_rss:.1} |");
    println!("| peak under 512 concurrent streams | {peak_rss:.1} |");
    let _ = gateway.kill();
    let _ = gateway.wait();
    drop(litellm);
}
