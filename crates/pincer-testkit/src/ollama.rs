//! A local stand-in for Ollama's own API (`/api/chat`, `/api/tags`,
//! `/api/ps`, `/api/show`, `/api/version`), replaying Ollama's wire format
//! as its API reference and sources record it: NDJSON chat streams with
//! `thinking` and whole `tool_calls`, usage in the final `done` line, and
//! Ollama's own error bodies and statuses (model not found, no tool
//! support, prompt over `num_ctx` with `truncate: false`, out of memory,
//! an error line mid-stream). No Ollama build installs here, so the tests
//! of `api: "ollama"` run against this.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake::{Recorded, Step, http_response, serve};

/// One pulled model.
#[derive(Debug, Clone)]
pub struct OllamaModel {
    /// As `/api/tags` lists it (`qwen3:8b`, `llama3.2:latest`).
    pub name: String,
    /// `model_info["<arch>.context_length"]`.
    pub context_length: u64,
    /// `completion`, `tools`, `thinking`, `vision`, `embedding`…
    pub capabilities: Vec<String>,
    /// In memory at start (`/api/ps`).
    pub loaded: bool,
    /// Loading it takes this long (the first chat waits, as Ollama's does).
    pub load_time: Duration,
    /// Loading it fails for lack of memory.
    pub too_big: bool,
    /// Its streams break off with an error line after the first words.
    pub breaks: bool,
}

impl OllamaModel {
    pub fn new(name: &str, context_length: u64, capabilities: &[&str]) -> OllamaModel {
        OllamaModel {
            name: name.to_string(),
            context_length,
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            loaded: true,
            load_time: Duration::ZERO,
            too_big: false,
            breaks: false,
        }
    }

    fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

struct State {
    /// Set: every connection is closed at once, as by a crashed server.
    down: std::sync::atomic::AtomicBool,
    models: Vec<OllamaModel>,
    loaded: Mutex<HashSet<String>>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct OllamaReplay {
    pub port: u16,
    state: Arc<State>,
}

impl OllamaReplay {
    pub fn start(models: Vec<OllamaModel>) -> OllamaReplay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let loaded = models
            .iter()
            .filter(|m| m.loaded)
            .map(|m| m.name.clone())
            .collect();
        let state = Arc::new(State {
            down: std::sync::atomic::AtomicBool::new(false),
            models,
            loaded: Mutex::new(loaded),
            requests: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if shared.down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(conn);
                    continue;
                }
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    serve(conn, &state.requests, |method, path, body| {
                        Some(state.answer(method, path, body))
                    });
                });
            }
        });
        OllamaReplay { port, state }
    }

    /// Ollama's address, as configs name it (no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request, probes included.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The bodies of the chat requests, parsed.
    pub fn chats(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.head.starts_with("POST /api/chat"))
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect()
    }

    /// From now on every connection is closed unanswered.
    pub fn go_down(&self) {
        self.state
            .down
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Takes the model out of memory (as `keep_alive` running out does).
    pub fn unload(&self, name: &str) {
        if let Ok(mut l) = self.state.loaded.lock() {
            l.remove(name);
        }
    }
}

fn json_response(status: u16, body: &Value) -> Vec<Step> {
    vec![Step::Send(http_response(status, &[], &body.to_string()))]
}

fn error(status: u16, message: &str) -> Vec<Step> {
    json_response(status, &json!({ "error": message }))
}

fn ndjson_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n".to_vec()
}

const CREATED: &str = "2026-09-30T10:12:31.184789Z";

fn details(m: &OllamaModel) -> Value {
    let family = m.name.split(':').next().unwrap_or_default();
    json!({"parent_model": "", "format": "gguf", "family": family, "families": [family],
        "parameter_size": "135M", "quantization_level": "Q4_K_M"})
}

impl State {
    fn model(&self, name: &str) -> Option<&OllamaModel> {
        self.models
            .iter()
            .find(|m| m.name == name || m.name.strip_suffix(":latest") == Some(name))
    }

    fn answer(&self, method: &str, path: &str, body: &str) -> Vec<Step> {
        match (method, path) {
            ("GET" | "HEAD", "/") => vec![Step::Send(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 17\r\nconnection: close\r\n\r\nOllama is running"
                    .to_vec(),
            )],
            ("GET", "/api/version") => json_response(200, &json!({"version": "0.12.6"})),
            ("GET", "/api/tags") => {
                let models: Vec<Value> = self
                    .models
                    .iter()
                    .map(|m| {
                        json!({"name": m.name, "model": m.name,
                            "modified_at": "2026-09-01T17:37:44.706015396-07:00",
                            "size": 91_739_840, "digest": format!("{:0>64}", m.name.len()),
                            "details": details(m)})
                    })
                    .collect();
                json_response(200, &json!({ "models": models }))
            }
            ("GET", "/api/ps") => {
                let loaded = self.loaded.lock().map(|l| l.clone()).unwrap_or_default();
                let models: Vec<Value> = self
                    .models
                    .iter()
                    .filter(|m| loaded.contains(&m.name))
                    .map(|m| {
                        json!({"name": m.name, "model": m.name, "size": 91_739_840,
                            "digest": format!("{:0>64}", m.name.len()), "details": details(m),
                            "expires_at": "2026-09-30T10:17:31.83753Z", "size_vram": 0,
                            "context_length": 4096})
                    })
                    .collect();
                json_response(200, &json!({ "models": models }))
            }
            ("POST", "/api/show") => {
                let v: Value = serde_json::from_str(body).unwrap_or_default();
                let name = v
                    .get("model")
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match self.model(name) {
                    None => error(404, &format!("model '{name}' not found")),
                    Some(m) => json_response(
                        200,
                        &json!({
                            "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", m.name),
                            "parameters": "stop \"<|im_start|>\"\nstop \"<|im_end|>\"",
                            "template": "{{ .Prompt }}",
                            "details": details(m),
                            "model_info": {"general.architecture": "llama",
                                "general.parameter_count": 134_515_008_u64,
                                "llama.context_length": m.context_length,
                                "llama.embedding_length": 576},
                            "capabilities": m.capabilities,
                            "modified_at": "2026-09-01T17:37:44.706015396-07:00"
                        }),
                    ),
                }
            }
            ("POST", "/api/chat") => self.chat(body),
            _ => vec![Step::Send(http_response(404, &[], "404 page not found"))],
        }
    }

    fn chat(&self, body: &str) -> Vec<Step> {
        let Ok(req) = serde_json::from_str::<Value>(body) else {
            return error(400, "invalid character 'x' looking for beginning of value");
        };
        let name = req.get("model").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return error(400, "model is required");
        }
        let Some(m) = self.model(name) else {
            return error(404, &format!("model '{name}' not found"));
        };
        let tools = req
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !tools.is_empty() && !m.has("tools") {
            return error(
                400,
                &format!(
                    "registry.ollama.ai/library/{} does not support tools",
                    m.name
                ),
            );
        }
        let think = req.get("think").filter(|t| *t != &json!(false)).is_some();
        if think && !m.has("thinking") {
            return error(400, &format!("\"{name}\" does not support thinking"));
        }
        let messages = req
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let num_ctx = req
            .pointer("/options/num_ctx")
            .and_then(Value::as_u64)
            .unwrap_or(4096);
        let prompt_tokens: u64 = messages
            .iter()
            .map(|m| m.get("content").and_then(Value::as_str).unwrap_or("").len() as u64 / 4 + 4)
            .sum();
        let truncate = req.get("truncate").and_then(Value::as_bool) != Some(false);
        if prompt_tokens > num_ctx && !truncate {
            return error(400, "the input length exceeds the context length");
        }
        let mut steps = Vec::new();
        let cold = !self.loaded.lock().is_ok_and(|l| l.contains(&m.name));
        if cold {
            if m.too_big {
                return error(
                    500,
                    "model requires more system memory (5.3 GiB) than is available (4.4 GiB)",
                );
            }
            steps.push(Step::Sleep(m.load_time));
            if let Ok(mut l) = self.loaded.lock() {
                l.insert(m.name.clone());
            }
        }
        let (thinking, text, calls) = reply(&messages, &tools, think);
        let stream = req.get("stream").and_then(Value::as_bool) != Some(false);
        let num_predict = req
            .pointer("/options/num_predict")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let words: Vec<String> = text
            .split_inclusive(' ')
            .take(usize::try_from(num_predict).unwrap_or(usize::MAX))
            .map(str::to_string)
            .collect();
        let cut = (words.len() as u64) < text.split_inclusive(' ').count() as u64;
        let done_reason = if cut { "length" } else { "stop" };
        let eval_count = words.len() as u64 + calls.len() as u64 * 8;
        let last = |message: Value| {
            json!({"model": name, "created_at": CREATED, "message": message,
                "done_reason": done_reason, "done": true, "total_duration": 182_242_375_u64,
                "load_duration": if cold { 41_295_167_u64 } else { 0 },
                "prompt_eval_count": prompt_tokens.min(num_ctx), "prompt_eval_duration": 24_573_166_u64,
                "eval_count": eval_count, "eval_duration": 115_959_084_u64})
        };
        if !stream {
            let mut message = json!({"role": "assistant", "content": words.concat()});
            if !thinking.is_empty() {
                message["thinking"] = thinking.into();
            }
            if !calls.is_empty() {
                message["tool_calls"] = calls.into();
            }
            steps.push(Step::Send(http_response(
                200,
                &[],
                &last(message).to_string(),
            )));
            return steps;
        }
        let mut lines = Vec::new();
        let chunk = |message: Value| json!({"model": name, "created_at": CREATED, "message": message, "done": false});
        for t in thinking.split_inclusive(' ') {
            lines.push(chunk(
                json!({"role": "assistant", "content": "", "thinking": t}),
            ));
        }
        for w in &words {
            lines.push(chunk(json!({"role": "assistant", "content": w})));
        }
        // Tool calls come whole, in a chunk of their own.
        if !calls.is_empty() {
            lines.push(chunk(
                json!({"role": "assistant", "content": "", "tool_calls": calls}),
            ));
        }
        let mut head = ndjson_head();
        if m.breaks {
            // The first words, then the runner dies: an error line, no `done`.
            for l in lines.iter().take(2) {
                head.extend_from_slice(format!("{l}\n").as_bytes());
            }
            head.extend_from_slice(
                b"{\"error\":\"model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details\"}\n",
            );
            steps.push(Step::Send(head));
            return steps;
        }
        steps.push(Step::Send(head));
        for l in lines {
            steps.push(Step::Send(format!("{l}\n").into_bytes()));
            steps.push(Step::Sleep(Duration::from_millis(2)));
        }
        steps.push(Step::Send(
            format!("{}\n", last(json!({"role": "assistant", "content": ""}))).into_bytes(),
        ));
        steps
    }
}

/// What the replayed model says: with tools offered and a user's turn, a
/// call of the first tool (its first string parameter set to the user's
/// words); after a tool result, an answer that quotes it; else a greeting.
/// With `think`, a line of thinking first.
fn reply(messages: &[Value], tools: &[Value], think: bool) -> (String, String, Vec<Value>) {
    let last = messages.last();
    let role = last
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let content = last
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let thinking = if think {
        "The user wants an answer. I will give one.".to_string()
    } else {
        String::new()
    };
    if role == "tool" {
        let tool = last
            .and_then(|m| m.get("tool_name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        return (
            thinking,
            format!("The {tool} tool said: {content}"),
            Vec::new(),
        );
    }
    if let Some(f) = tools.first().and_then(|t| t.get("function")) {
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let param = f
            .pointer("/parameters/required/0")
            .and_then(Value::as_str)
            .unwrap_or("input");
        let call = json!({"id": "call_k3j9x0a1", "function": {"index": 0, "name": name,
            "arguments": { param: content }}});
        return (thinking, String::new(), vec![call]);
    }
    (
        thinking,
        "Hello from the replayed Ollama model, nice to meet you.".to_string(),
        Vec::new(),
    )
}
