//! `pincer gateway` as a process, over llama.cpp's real server: killed with
//! SIGKILL in the middle of 50 streaming turns it loses nothing that was
//! answered and leaves no file that fails to load; stopped with SIGTERM it
//! finishes the answer in flight first. Over a scripted upstream: each agent
//! calls with the keys of its own profile store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pincer_testkit::{FakeUpstream, LlamaServer, completions_stream, free_port};
use serde_json::{Value, json};

/// One test at a time: each runs its own llama-server with two threads, and
/// on two cores a second one running beside it (50 streams) slows the other
/// tenfold, past the 30 s a shutdown waits.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Gateway {
    child: Child,
    port: u16,
}

impl Gateway {
    fn start(home: &Path, config: &Path, port: u16) -> Gateway {
        let child = common::gateway_command(home, config, port)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gw = Gateway { child, port };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return gw;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the gateway did not start listening on {port}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(llama: &LlamaServer) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("openclaw.json");
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
    (home, config)
}

/// What a streaming client got: the text, and whether the stream finished.
struct Seen {
    user: String,
    text: String,
    done: bool,
}

fn turn_body(user: &str, max_tokens: u64) -> Value {
    json!({
        "model": "openclaw", "user": user, "stream": true, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": format!("Write a short poem about the number {user}.")}],
    })
}

async fn stream_turn(client: &reqwest::Client, url: &str, user: &str, max_tokens: u64) -> Seen {
    match client
        .post(url)
        .json(&turn_body(user, max_tokens))
        .send()
        .await
    {
        Ok(response) => read_stream(response, user, String::new()).await,
        Err(_) => Seen {
            user: user.to_string(),
            text: String::new(),
            done: false,
        },
    }
}

/// Reads SSE frames to the end; `buffer` holds what was read already.
async fn read_stream(mut response: reqwest::Response, user: &str, mut buffer: String) -> Seen {
    let mut seen = Seen {
        user: user.to_string(),
        text: String::new(),
        done: false,
    };
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                seen.done = true;
            } else if let Ok(v) = serde_json::from_str::<Value>(data)
                && let Some(t) = v["choices"][0]["delta"]["content"].as_str()
            {
                seen.text.push_str(t);
            }
        }
        match response.chunk().await {
            Ok(Some(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return seen,
        }
    }
}

fn assistant_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["message"]["role"] == "assistant")
        .map(|e| {
            e["message"]["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .collect()
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn a_killed_gateway_loses_no_answered_turn_and_no_file_is_torn() {
    let _serial = one_at_a_time();
    let llama = LlamaServer::start();
    let (home, config) = setup(&llama);
    let port = free_port();
    let mut gw = Gateway::start(home.path(), &config, port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (client, url, finished) = (client.clone(), gw.url(), Arc::clone(&finished));
            rt.spawn(async move {
                let seen = stream_turn(&client, &url, &format!("u{i}"), 48).await;
                if seen.done {
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                seen
            })
        })
        .collect();
    // Kill it once some turns are answered and most are not.
    let start = Instant::now();
    while finished.load(Ordering::SeqCst) < 5 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    let seen: Vec<Seen> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
    let answered: Vec<&Seen> = seen.iter().filter(|s| s.done).collect();
    assert!(
        answered.len() >= 5,
        "only {} turns finished",
        answered.len()
    );
    assert!(answered.len() < 50, "every turn finished before the kill");

    // The store opens, and every transcript reads whole.
    let store = pincer_sessions::SessionStore::open(&home.path().join("state"), "main").unwrap();
    let index = store.list();
    for (key, entry) in &index {
        let t = store.transcript(&entry.session_id).unwrap();
        assert!(!t.torn_tail, "torn event in {key}");
    }

    // A restarted gateway serves again, and every answered turn is on record.
    let gw = Gateway::start(home.path(), &config, port);
    let after = rt.block_on(stream_turn(&client, &gw.url(), "after-restart", 8));
    assert!(after.done, "the restarted gateway did not answer");
    let list = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "sessions",
            "list",
            "--json",
        ])
        .env_clear()
        .env("HOME", home.path())
        .env("OPENCLAW_STATE_DIR", home.path().join("state"))
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    for s in &answered {
        let key = format!("agent:main:openai-user:{}", s.user);
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key.as_str())
            .unwrap_or_else(|| panic!("{key} is not in the index: {index:?}"));
        let id = entry["entry"]["sessionId"].as_str().unwrap();
        let events = store.transcript(id).unwrap().events;
        assert_eq!(assistant_texts(&events), vec![s.text.clone()], "{key}");
    }
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn sigterm_lets_the_answer_in_flight_finish() {
    let _serial = one_at_a_time();
    let llama = LlamaServer::start();
    let (home, config) = setup(&llama);
    let mut gw = Gateway::start(home.path(), &config, free_port());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    // The answer is under way once its first chunk is here; then stop. It
    // is short enough to finish well within the 30 s the shutdown waits,
    // even on a machine busy with other tests.
    let mut response = rt
        .block_on(
            client
                .post(gw.url())
                .json(&turn_body("graceful", 48))
                .send(),
        )
        .unwrap();
    let first = rt.block_on(response.chunk()).unwrap().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let seen = rt.block_on(read_stream(
        response,
        "graceful",
        String::from_utf8_lossy(&first).into_owned(),
    ));
    assert!(
        seen.done,
        "the stream was cut by the shutdown: {:?}",
        seen.text
    );
    assert!(!seen.text.is_empty());
    let exit = gw.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    let store = pincer_sessions::SessionStore::open(&home.path().join("state"), "main").unwrap();
    assert!(store.get("agent:main:openai-user:graceful").is_some());
}

/// A whole chat turn over a plain connection; the status line and body.
fn post_chat(port: u16, model: &str) -> String {
    use std::io::{Read, Write};
    let body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn each_agent_calls_with_the_keys_of_its_own_profile_store() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello"}"#])]);
    let home = tempfile::tempdir().unwrap();
    for (agent, key) in [("main", "sk-main-111"), ("work", "sk-work-222")] {
        let store = home
            .path()
            .join("state/agents")
            .join(agent)
            .join("agent/auth-profiles.json");
        std::fs::create_dir_all(store.parent().unwrap()).unwrap();
        std::fs::write(
            &store,
            format!(
                r#"{{"version":1,"profiles":{{"acme:{agent}":{{"type":"api_key","provider":"acme","key":"{key}"}}}}}}"#
            ),
        )
        .unwrap();
    }
    let config = home.path().join("openclaw.json");
    std::fs::write(
        &config,
        format!(
            r#"{{ models: {{ mode: "replace", providers: {{ acme: {{ baseUrl: "{}", api: "openai-completions",
  models: [{{ id: "m", contextWindow: 2048, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "acme/m" }} }}, list: [{{ id: "main", default: true }}, {{ id: "work" }}] }} }}"#,
            up.base_url()
        ),
    )
    .unwrap();
    let port = free_port();
    let gw = Gateway::start(home.path(), &config, port);
    for (model, key) in [
        ("openclaw/work", "sk-work-222"),
        ("openclaw", "sk-main-111"),
    ] {
        let reply = post_chat(gw.port, model);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let seen = up.requests().last().unwrap().header("authorization");
        assert_eq!(
            seen.as_deref(),
            Some(format!("Bearer {key}").as_str()),
            "{model}"
        );
    }
}
