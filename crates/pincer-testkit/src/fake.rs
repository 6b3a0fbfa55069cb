//! A scripted HTTP upstream for fault injection: each connection reads one
//! request, records it, then plays the next script byte for byte (with
//! pauses), so a test can send any status, a cut stream or nothing at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Step {
    Send(Vec<u8>),
    Sleep(Duration),
}

/// What a client sent.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request line and headers, as sent.
    pub head: String,
    pub body: String,
}

impl Recorded {
    /// A header's value (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// The paths servers are probed on (model lists, llama.cpp's `/props` and
/// `/slots`, Ollama's `/api/*`, health checks).
const PROBES: [&str; 7] = [
    "/models",
    "/props",
    "/slots",
    "/health",
    "/api/tags",
    "/api/ps",
    "/api/version",
];

pub struct FakeUpstream {
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeUpstream {
    /// Serve `scripts` in turn, one per request; the last one repeats. A
    /// probe (a GET of `/models`, `/props`…) gets a 404 unless a route
    /// scripts it (`routed`).
    pub fn start(scripts: Vec<Vec<Step>>) -> FakeUpstream {
        FakeUpstream::routed(scripts, Vec::new())
    }

    /// As `start`, but a request whose path ends with one of `routes`' paths
    /// (`/models`, `/health`…) gets that route's script and leaves the
    /// sequence alone: a probe does not eat the next chat reply.
    pub fn routed(scripts: Vec<Vec<Step>>, routes: Vec<(&str, Vec<Step>)>) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let routes: Arc<Vec<(String, Vec<Step>)>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, s)| (p.to_string(), s))
                .collect(),
        );
        let scripts = Arc::new(scripts);
        let served = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (seen, routes, scripts, served) = (
                    Arc::clone(&seen),
                    Arc::clone(&routes),
                    Arc::clone(&scripts),
                    Arc::clone(&served),
                );
                std::thread::spawn(move || {
                    serve(conn, &seen, |method, path, _body| {
                        if let Some((_, s)) =
                            routes.iter().find(|(p, _)| path.ends_with(p.as_str()))
                        {
                            return Some(s.clone());
                        }
                        // A probe nobody scripted (of the window, the load
                        // state): a 404, as from a plain OpenAI-style
                        // server, neither recorded nor eating a chat reply.
                        if method == "GET" && PROBES.iter().any(|p| path.ends_with(p)) {
                            return None;
                        }
                        let n = served.fetch_add(1, Ordering::SeqCst);
                        Some(
                            scripts
                                .get(n)
                                .or(scripts.last())
                                .cloned()
                                .unwrap_or_default(),
                        )
                    })
                });
            }
        });
        FakeUpstream { port, requests }
    }

    /// An upstream whose every chat reply is what `answer` makes of the
    /// request body: a model that does whatever its prompt says, for
    /// testing defences that must not rely on the model. Probes get a 404.
    pub fn responding(answer: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (seen, answer) = (Arc::clone(&seen), Arc::clone(&answer));
                std::thread::spawn(move || {
                    serve(conn, &seen, |method, path, body| {
                        if method == "GET" && PROBES.iter().any(|p| path.ends_with(p)) {
                            return None;
                        }
                        Some(answer(body))
                    })
                });
            }
        });
        FakeUpstream { port, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Reads one request, records it, and plays the script `pick` chooses for
/// its method and path (`None`: an unrecorded 404).
pub(crate) fn serve(
    conn: TcpStream,
    seen: &Mutex<Vec<Recorded>>,
    pick: impl FnOnce(&str, &str, &str) -> Option<Vec<Step>>,
) {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut conn = reader.into_inner();
    let text = String::from_utf8_lossy(&body).into_owned();
    let Some(script) = pick(&method, &path, &text) else {
        let _ = conn.write_all(&http_response(404, &[], r#"{"error":"not found"}"#));
        return;
    };
    if let Ok(mut s) = seen.lock() {
        s.push(Recorded { head, body: text });
    }
    for step in &script {
        match step {
            Step::Send(bytes) => {
                if conn.write_all(bytes).and_then(|()| conn.flush()).is_err() {
                    return;
                }
            }
            Step::Sleep(d) => std::thread::sleep(*d),
        }
    }
    // Dropping the connection closes it: the end of the script is the end of the reply.
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn http_response(status: u16, extra_headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

/// The head of a 200 event stream; the body follows until the connection closes.
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_vec()
}

/// A whole `openai-completions` event stream: one chunk per delta object
/// (`{"content":"Hi"}`, `{"reasoning_content":"…"}`), then `stop` and `[DONE]`.
pub fn completions_stream(deltas: &[&str]) -> Vec<Step> {
    let mut b = sse_head();
    for d in deltas {
        b.extend_from_slice(
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{d}}}]}}\n\n").as_bytes(),
        );
    }
    b.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
    );
    vec![Step::Send(b)]
}

/// A whole (non-streamed) reply in `dialect` (`openai-completions`,
/// `openai-responses`, `anthropic-messages`): `text`, and tool calls as
/// (id, name, arguments JSON), with the finish reason that goes with them.
pub fn whole_reply(dialect: &str, text: &str, calls: &[(&str, &str, &str)]) -> Vec<Step> {
    let body = match dialect {
        "openai-responses" => {
            let mut output = Vec::new();
            if !text.is_empty() {
                output.push(serde_json::json!({"type": "message", "id": "msg_1", "role": "assistant",
                    "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}));
            }
            for (id, name, args) in calls {
                output.push(
                    serde_json::json!({"type": "function_call", "id": format!("fc_{id}"),
                    "call_id": id, "name": name, "arguments": args, "status": "completed"}),
                );
            }
            serde_json::json!({"id": "resp_1", "object": "response", "status": "completed", "model": "m",
                "output": output, "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}})
        }
        "anthropic-messages" => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(serde_json::json!({"type": "text", "text": text}));
            }
            for (id, name, args) in calls {
                let input: serde_json::Value = serde_json::from_str(args).unwrap_or_default();
                content.push(
                    serde_json::json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                );
            }
            let stop = if calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            serde_json::json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                "content": content, "stop_reason": stop, "usage": {"input_tokens": 20, "output_tokens": 5}})
        }
        _ => {
            let tool_calls: Vec<serde_json::Value> = calls
                .iter()
                .map(|(id, name, args)| {
                    serde_json::json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args}})
                })
                .collect();
            let mut message = serde_json::json!({"role": "assistant", "content": text});
            if !tool_calls.is_empty() {
                message["tool_calls"] = tool_calls.into();
            }
            let finish = if calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            serde_json::json!({"id": "c1", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
        }
    };
    vec![Step::Send(http_response(200, &[], &body.to_string()))]
}

/// A streamed `openai-completions` reply that calls tools (id, name,
/// arguments JSON), the arguments split in two chunks.
pub fn completions_tool_stream(calls: &[(&str, &str, &str)]) -> Vec<Step> {
    let mut b = sse_head();
    for (i, (id, name, args)) in calls.iter().enumerate() {
        let half = args.len() / 2;
        let half = (0..=half)
            .rev()
            .find(|h| args.is_char_boundary(*h))
            .unwrap_or(0);
        let first = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "id": id,
            "type": "function", "function": {"name": name, "arguments": &args[..half]}}]}}]});
        let second = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i,
            "function": {"arguments": &args[half..]}}]}}]});
        b.extend_from_slice(format!("data: {first}\n\ndata: {second}\n\n").as_bytes());
    }
    b.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
    );
    vec![Step::Send(b)]
}
