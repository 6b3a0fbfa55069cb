//! `cargo bench -p pincer-cli --bench embedded`: Pincer's embedded engine
//! against llama.cpp's own server, side by side in one run, on the same GGUF
//! and thread count; then peak memory and start-up of `pincer chat` on the
//! default model. Prints Markdown tables (pasted into the README).
//!
//! Both sides get the same prompts at temperature 0, with a different first
//! line each round so neither can reuse a cached prompt, and are timed the
//! same way from the client's side: prompt tok/s = prompt tokens / time to the
//! first token; generation tok/s = (tokens - 1) / (last token - first token).
//! llama-server's own `timings` are shown beside them as a cross-check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pincer_engine::{EngineOptions, KvCache, LoadedModel};
use pincer_llm::{ChatRequest, Event, Message};
use pincer_testkit::{LlamaServer, gguf_path};
use serde_json::{Value, json};

const ROUNDS: usize = 5;
const THREADS: usize = 2;
const MAX_TOKENS: u64 = 160;

#[derive(Debug, Clone, Copy)]
struct Run {
    prompt_tokens: u64,
    output_tokens: u64,
    prompt_tps: f64,
    gen_tps: f64,
}

fn messages(round: usize) -> Vec<Message> {
    let system = format!(
        "Session {round}. You are a careful assistant. Answer in plain prose, in detail, \
         with examples. Do not use lists. Keep each sentence short and clear."
    );
    let user = "Explain how a bicycle stays upright while it moves, why it falls over \
                when it stops, and what a rider does with the handlebars to keep balance. \
                Then describe how brakes, gears and tyres affect a long ride on a windy day.";
    vec![Message::system(system), Message::user(user)]
}

fn wire_messages(round: usize) -> Value {
    let m: Vec<Value> = messages(round)
        .iter()
        .map(|m| match m {
            Message::System { text } => json!({"role": "system", "content": text}),
            Message::User { text } => json!({"role": "user", "content": text}),
            _ => unreachable!(),
        })
        .collect();
    Value::Array(m)
}

async fn pincer_run(model: &LoadedModel, round: usize) -> Run {
    let req = ChatRequest {
        messages: messages(round),
        max_tokens: Some(MAX_TOKENS),
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    let started = Instant::now();
    let mut first = None;
    let mut last = started;
    let mut usage = None;
    let mut g = model.generate("bench", req);
    while let Some(e) = g.next().await {
        match e.expect("embedded answer") {
            Event::Text { .. } | Event::Reasoning { .. } => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
            }
            Event::Usage { usage: u } => usage = Some(u),
            _ => {}
        }
    }
    let usage = usage.expect("usage");
    let first = first.expect("a token");
    Run {
        prompt_tokens: usage.prompt_tokens(),
        output_tokens: usage.output,
        prompt_tps: usage.prompt_tokens() as f64 / (first - started).as_secs_f64(),
        gen_tps: (usage.output - 1) as f64 / (last - first).as_secs_f64(),
    }
}

/// One streamed chat completion from llama-server; also returns its own timings.
async fn server_run(http: &reqwest::Client, base: &str, round: usize) -> (Run, (f64, f64)) {
    let body = json!({
        "model": "smollm2",
        "messages": wire_messages(round),
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
        "cache_prompt": false,
    });
    let started = Instant::now();
    let mut resp = http
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let mut first = None;
    let mut last = started;
    let mut buf = String::new();
    let (mut prompt_n, mut out_n, mut timings) = (0u64, 0u64, (0.0, 0.0));
    while let Some(chunk) = resp.chunk().await.unwrap() {
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            let delta = &v["choices"][0]["delta"];
            if delta["content"].as_str().is_some_and(|s| !s.is_empty()) {
                first.get_or_insert(now);
                last = now;
            }
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                prompt_n = u["prompt_tokens"].as_u64().unwrap();
                out_n = u["completion_tokens"].as_u64().unwrap();
            }
            if let Some(t) = v.get("timings") {
                timings = (
                    t["prompt_per_second"].as_f64().unwrap_or(0.0),
                    t["predicted_per_second"].as_f64().unwrap_or(0.0),
                );
            }
        }
    }
    let first = first.expect("a token");
    let run = Run {
        prompt_tokens: prompt_n,
        output_tokens: out_n,
        prompt_tps: prompt_n as f64 / (first - started).as_secs_f64(),
        gen_tps: (out_n - 1) as f64 / (last - first).as_secs_f64(),
    };
    (run, timings)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Peak RSS (VmHWM) of a command, sampled from /proc while it runs, and the
/// time to its first byte on stdout and to its exit.
fn measure_command(cmd: &mut Command) -> (u64, Duration, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut first = None;
        let mut buf = [0u8; 256];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    first.get_or_insert_with(|| started.elapsed());
                }
            }
        }
        first
    });
    let mut peak_kb = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let total = started.elapsed();
    let first = reader
        .join()
        .unwrap()
        .expect("the command printed an answer");
    (peak_kb * 1024, first, total)
}

fn pincer_chat_memory(gguf: &Path) {
    let data = tempfile::tempdir().unwrap();
    let models = data.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(gguf, models.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_pincer");
    let gguf_mb = std::fs::metadata(gguf).unwrap().len() as f64 / 1e6;
    println!("\n### `pincer chat` on the default model (GGUF {gguf_mb:.0} MB)\n");
    println!("| run | first answer byte | whole run | peak RSS | RSS / GGUF |");
    println!("|---|---:|---:|---:|---:|");
    for run in 1..=3 {
        let (peak, first, total) = measure_command(
            Command::new(bin)
                .args(["chat", "-m", "Name three colours of the rainbow."])
                .env_clear()
                .env("HOME", home.path())
                .env("PINCER_DATA_DIR", data.path())
                .env("PATH", std::env::var("PATH").unwrap_or_default()),
        );
        let mb = peak as f64 / 1e6;
        println!(
            "| {run} | {:.0} ms | {:.0} ms | {mb:.0} MB | {:.2}× |",
            first.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            mb / gguf_mb
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` run passes nothing
    // and must not start servers.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let gguf = gguf_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let load = |kv_cache| {
        rt.block_on(LoadedModel::load(
            &gguf,
            "embedded/smollm2-135m-instruct",
            EngineOptions {
                threads: Some(THREADS),
                context_window: 8192,
                max_tokens: 2048,
                kv_cache,
            },
        ))
        .unwrap()
    };
    // F16 is llama-server's own KV cache type: the like-for-like comparison.
    // Q8_0 is Pincer's default.
    let model = load(KvCache::F16);
    let model_q8 = load(KvCache::Q8_0);
    let server = LlamaServer::start_with_ctx(4096);
    let base = server.base_url();
    // A fresh connection per request: llama-server closes kept-alive
    // connections on its own schedule, and a reused one can fail mid-bench.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Warm-up: first touches of the mapped weights are not what we measure.
    rt.block_on(pincer_run(&model, 999));
    rt.block_on(pincer_run(&model_q8, 999));
    rt.block_on(server_run(&http, &base, 999));

    let mut ours = Vec::new();
    let mut ours_q8 = Vec::new();
    let mut theirs = Vec::new();
    let mut own_timings = Vec::new();
    for round in 0..ROUNDS {
        // Alternate who goes first so neither always runs on a warmer machine.
        ours_q8.push(rt.block_on(pincer_run(&model_q8, round)));
        if round % 2 == 0 {
            ours.push(rt.block_on(pincer_run(&model, round)));
            let (r, t) = rt.block_on(server_run(&http, &base, round));
            theirs.push(r);
            own_timings.push(t);
        } else {
            let (r, t) = rt.block_on(server_run(&http, &base, round));
            theirs.push(r);
            own_timings.push(t);
            ours.push(rt.block_on(pincer_run(&model, round)));
        }
    }
    server.stop();
    let m = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let (op, og) = (m(&ours, |r| r.prompt_tps), m(&ours, |r| r.gen_tps));
    let (qp, qg) = (m(&ours_q8, |r| r.prompt_tps), m(&ours_q8, |r| r.gen_tps));
    let (tp, tg) = (m(&theirs, |r| r.prompt_tps), m(&theirs, |r| r.gen_tps));
    let sp = median(own_timings.iter().map(|t| t.0).collect());
    let sg = median(own_timings.iter().map(|t| t.1).collect());
    println!(
        "### Embedded engine vs llama-server: {} GGUF, {THREADS} threads, median of {ROUNDS} rounds\n",
        gguf.file_name().unwrap().to_string_lossy()
    );
    println!(
        "prompt {} tokens, answer {} tokens (Pincer) / {} tokens (llama-server)\n",
        ours[0].prompt_tokens, ours[0].output_tokens, theirs[0].output_tokens
    );
    println!("| | prompt tok/s | generation tok/s |");
    println!("|---|---:|---:|");
    println!("| Pincer embedded, f16 KV cache (as llama-server) | {op:.0} | {og:.1} |");
    println!("| Pincer embedded, q8_0 KV cache (Pincer's default) | {qp:.0} | {qg:.1} |");
    println!("| llama-server (client side, HTTP stream) | {tp:.0} | {tg:.1} |");
    println!("| llama-server (its own `timings`) | {sp:.0} | {sg:.1} |");
    println!(
        "| **ratio Pincer f16 / llama-server** (client side) | **{:.2}×** | **{:.2}×** |",
        op / tp,
        og / tg
    );
    drop(model);
    drop(model_q8);
    pincer_chat_memory(&gguf);
}
