//! Each tool against bad and hostile input: paths that escape, huge and
//! binary files, commands that never end or print garbage, secrets in the
//! environment, redirects to private addresses. Every case ends in a clear
//! tool error or a bounded result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use pincer_config::{ExecConfig, ToolsConfig, WebFetchConfig};
use pincer_tools::{AgentTools, Call, Outcome, SessionsView, Toolbox};

struct NoSessions;

impl SessionsView for NoSessions {
    fn status(&self, _: &str) -> Result<String, String> {
        Ok("status".into())
    }
    fn list(&self, _: usize, _: Option<u64>, _: &dyn Fn(&str) -> bool) -> String {
        String::new()
    }
    fn history(&self, _: &str, _: usize, _: bool) -> Result<String, String> {
        Err("none".into())
    }
}

struct Kit {
    state: tempfile::TempDir,
    tools: AgentTools,
    toolbox: Toolbox,
}

impl Kit {
    fn new(config: ToolsConfig) -> Kit {
        let state = tempfile::tempdir().unwrap();
        let ws = state.path().join("ws");
        let tools = AgentTools::new(&config, None, &ws, vec![state.path().join("secret-state")]);
        let toolbox = Toolbox::new(state.path());
        Kit {
            state,
            tools,
            toolbox,
        }
    }

    fn full_exec() -> Kit {
        Kit::new(ToolsConfig {
            exec: ExecConfig {
                security: Some("full".into()),
                timeout_sec: Some(3),
                background_ms: Some(1000),
                ..ExecConfig::default()
            },
            ..ToolsConfig::default()
        })
    }

    fn ws(&self) -> &Path {
        self.tools.files.root()
    }

    /// A workspace file's text.
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.ws().join(name)).unwrap()
    }

    async fn run(&self, name: &str, args: &str) -> Outcome {
        self.run_in("agent:main:t", name, args).await
    }

    async fn run_in(&self, session_key: &str, name: &str, args: &str) -> Outcome {
        let call = Call {
            agent: "main",
            session_key,
            main_session: "agent:main:main",
            tools: &self.tools,
            sessions: &NoSessions,
            background: true,
            max_chars: 30_000,
        };
        self.toolbox.run(&call, name, args).await
    }
}

#[tokio::test]
async fn paths_cannot_leave_the_workspace() {
    let k = Kit::new(ToolsConfig::default());
    let outside = k.state.path().join("outside.txt");
    std::fs::write(&outside, "secret").unwrap();
    std::os::unix::fs::symlink(&outside, k.ws().join("link.txt")).unwrap();
    std::os::unix::fs::symlink(k.state.path(), k.ws().join("dir-link")).unwrap();
    for (tool, args) in [
        ("read", r#"{"path":"../outside.txt"}"#.to_string()),
        ("read", format!(r#"{{"path":"{}"}}"#, outside.display())),
        ("read", r#"{"path":"link.txt"}"#.into()),
        ("read", r#"{"path":"dir-link/outside.txt"}"#.into()),
        (
            "write",
            r#"{"path":"dir-link/new.txt","content":"x"}"#.into(),
        ),
        (
            "write",
            r#"{"path":"a/../../new.txt","content":"x"}"#.into(),
        ),
        (
            "edit",
            r#"{"path":"link.txt","oldText":"secret","newText":"x"}"#.into(),
        ),
        ("exec", r#"{"command":"ls","workdir":"../"}"#.into()),
    ] {
        let out = k.run(tool, &args).await;
        assert!(out.is_error, "{tool} {args}: {}", out.text);
        assert!(
            out.text.contains("outside the workspace"),
            "{tool} {args}: {}",
            out.text
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
    assert!(!k.state.path().join("new.txt").exists());
    // Inside is fine, through `..` that stays inside too.
    let out = k
        .run("write", r#"{"path":"sub/../ok.txt","content":"fine"}"#)
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(k.file("ok.txt"), "fine");
}

#[tokio::test]
async fn huge_binary_and_invalid_files_give_bounded_answers() {
    let k = Kit::new(ToolsConfig::default());
    // A 1 GB sparse file with no line ends: one page, the line cut.
    let f = std::fs::File::create(k.ws().join("huge.txt")).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let out = k.run("read", r#"{"path":"huge.txt"}"#).await;
    // NUL bytes: refused as binary.
    assert!(out.is_error && out.text.contains("binary"), "{}", out.text);
    // 1 GB that starts as text and has no line end: one call reads at
    // most 64 MiB of it, and says so.
    let mut f = std::fs::File::create(k.ws().join("huge-text.txt")).unwrap();
    f.write_all(&[b'a'; 8192]).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let out = k.run("read", r#"{"path":"huge-text.txt"}"#).await;
    assert!(!out.is_error, "{}", out.text);
    assert!(
        out.text.contains("line cut"),
        "{}",
        &out.text[out.text.len() - 300..]
    );
    assert!(
        out.text.contains("Stopped reading at 64 MiB"),
        "{}",
        &out.text[out.text.len() - 300..]
    );
    let out = k
        .run("read", r#"{"path":"huge-text.txt","offset":5}"#)
        .await;
    assert!(
        out.is_error && out.text.contains("past the first 64 MiB"),
        "{}",
        out.text
    );
    // 5 MB of text on one line, and 100k short lines.
    std::fs::write(k.ws().join("long-line.txt"), "a".repeat(5 << 20)).unwrap();
    let out = k.run("read", r#"{"path":"long-line.txt"}"#).await;
    assert!(!out.is_error);
    assert!(out.text.len() < 60_000, "{}", out.text.len());
    assert!(out.text.contains("line cut"));
    let many: String = (1..=100_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(k.ws().join("many.txt"), many).unwrap();
    let out = k.run("read", r#"{"path":"many.txt"}"#).await;
    assert!(out.text.contains("line 2000\n") && !out.text.contains("line 2001\n"));
    assert!(out.text.contains("Use offset=2001 to continue"));
    let out = k
        .run("read", r#"{"path":"many.txt","offset":99999,"limit":5}"#)
        .await;
    assert!(
        out.text.contains("line 99999\nline 100000\n"),
        "{}",
        out.text
    );
    let out = k
        .run("read", r#"{"path":"many.txt","offset":200000}"#)
        .await;
    assert!(out.is_error && out.text.contains("beyond end of file"));
    // Invalid UTF-8 is replaced, not an error.
    std::fs::write(k.ws().join("latin1.txt"), b"caf\xe9 ok\n").unwrap();
    let out = k.run("read", r#"{"path":"latin1.txt"}"#).await;
    assert!(!out.is_error && out.text.contains("caf\u{fffd} ok"));
    // A folder and a missing file.
    assert!(
        k.run("read", r#"{"path":"."}"#)
            .await
            .text
            .contains("is a directory")
    );
    assert!(
        k.run("read", r#"{"path":"nope"}"#)
            .await
            .text
            .contains("File not found")
    );
}

#[tokio::test]
async fn edits_must_match_once() {
    let k = Kit::new(ToolsConfig::default());
    std::fs::write(k.ws().join("f.txt"), "one two two\n").unwrap();
    let cases = [
        (
            r#"{"path":"f.txt","oldText":"three","newText":"x"}"#,
            "Could not find the exact text",
        ),
        (
            r#"{"path":"f.txt","oldText":"two","newText":"x"}"#,
            "Found 2 occurrences",
        ),
        (
            r#"{"path":"f.txt","oldText":"one","newText":"one"}"#,
            "No changes made",
        ),
        (
            r#"{"path":"f.txt","edits":[{"oldText":"one two","newText":"x"},{"oldText":"two two","newText":"y"}]}"#,
            "overlap",
        ),
        (r#"{"path":"f.txt"}"#, "at least one"),
    ];
    for (args, want) in cases {
        let out = k.run("edit", args).await;
        assert!(
            out.is_error && out.text.contains(want),
            "{args}: {}",
            out.text
        );
    }
    assert_eq!(k.file("f.txt"), "one two two\n");
    let out = k
        .run("edit", r#"{"path":"f.txt","edits":[{"oldText":"one","newText":"1"},{"oldText":"two\n","newText":"2\n"}]}"#)
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(k.file("f.txt"), "1 two 2\n");
}

#[tokio::test]
async fn commands_are_bounded_and_see_no_secrets() {
    // SAFETY of the test: only this process's environment.
    let k = Kit::full_exec();
    // The gateway's environment never reaches a command.
    let out = k.run("exec", r#"{"command":"env"}"#).await;
    assert!(!out.is_error, "{}", out.text);
    assert!(!out.text.contains("CARGO"), "{}", out.text);
    assert!(out.text.contains("PATH="));
    let out = k
        .run("exec", r#"{"command":"true","env":{"LD_PRELOAD":"/x.so"}}"#)
        .await;
    assert!(out.is_error && out.text.contains("LD_PRELOAD"));
    // Invalid UTF-8 and a lot of output.
    let out = k
        .run(
            "exec",
            r#"{"command":"printf 'caf\\351\\n'; seq 1 200000"}"#,
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.contains("bytes of earlier output omitted"));
    assert!(out.text.contains("200000"));
    assert!(out.text.len() < 40_000);
    // A failing command says its code; a missing one says so.
    let out = k.run("exec", r#"{"command":"exit 3"}"#).await;
    assert!(
        out.text.contains("(Command exited with code 3)"),
        "{}",
        out.text
    );
    let out = k.run("exec", r#"{"command":"no-such-command-here"}"#).await;
    assert!(
        out.is_error && out.text.contains("Command not found"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn a_command_that_never_ends_goes_to_the_background_and_is_killed() {
    let k = Kit::full_exec();
    // Backgrounded after yieldMs (1 s here), not waited for.
    let out = k
        .run("exec", r#"{"command":"echo started; sleep 600"}"#)
        .await;
    assert!(out.text.contains("Command still running"), "{}", out.text);
    let id = out
        .text
        .split("session ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let out = k.run("process", r#"{"action":"list"}"#).await;
    assert!(
        out.text.contains(&id) && out.text.contains("running"),
        "{}",
        out.text
    );
    let out = k
        .run(
            "process",
            &format!(r#"{{"action":"poll","sessionId":"{id}"}}"#),
        )
        .await;
    assert!(out.text.contains("started"), "{}", out.text);
    // Another session (another chat) neither sees nor reaches it.
    let other = "agent:main:telegram:group:-100";
    let out = k.run_in(other, "process", r#"{"action":"list"}"#).await;
    assert!(!out.text.contains(&id), "{}", out.text);
    let kill = format!(r#"{{"action":"kill","sessionId":"{id}"}}"#);
    let out = k.run_in(other, "process", &kill).await;
    assert!(out.is_error, "{}", out.text);
    // The time limit (3 s here) still holds in the background.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = k
        .run(
            "process",
            &format!(r#"{{"action":"poll","sessionId":"{id}","timeout":3000}}"#),
        )
        .await;
    assert!(out.text.contains("Process exited"), "{}", out.text);
    // kill on a fresh one.
    let out = k
        .run("exec", r#"{"command":"sleep 600","background":true}"#)
        .await;
    let id = out
        .text
        .split("session ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let out = k
        .run(
            "process",
            &format!(r#"{{"action":"kill","sessionId":"{id}"}}"#),
        )
        .await;
    assert!(out.text.contains("Killed"), "{}", out.text);
    let out = k
        .run("process", r#"{"action":"poll","sessionId":"exec-nope"}"#)
        .await;
    assert!(out.is_error);
}

#[tokio::test]
async fn the_sandbox_has_no_network_and_a_read_only_system() {
    if pincer_tools::exec::sandbox().is_err() {
        eprintln!("bubblewrap is not usable here: sandbox checks skipped");
        return;
    }
    let k = Kit::full_exec();
    std::fs::create_dir_all(k.state.path().join("secret-state")).unwrap();
    std::fs::write(k.state.path().join("secret-state/key"), "sk-secret").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cmd = format!(
        "echo hi > in-ws.txt && cat in-ws.txt; touch /usr/pwned 2>&1; cat {}/secret-state/key 2>&1; (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>&1 || echo no-network",
        k.state.path().display()
    );
    let args = serde_json::json!({"command": format!("bash -c '{cmd}'")}).to_string();
    let out = k.run("exec", &args).await;
    assert!(out.text.contains("hi"), "{}", out.text);
    assert!(k.ws().join("in-ws.txt").exists());
    assert!(out.text.contains("Read-only file system"), "{}", out.text);
    assert!(!out.text.contains("sk-secret"), "{}", out.text);
    assert!(out.text.contains("no-network"), "{}", out.text);
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the network"
    );
}

#[tokio::test]
async fn web_fetch_follows_no_redirect_into_the_private_network() {
    // A "public" server is not available offline; the check is the same
    // on every hop, so: allowed private here, refused for the hop only
    // when private addresses are off. A redirect loop ends at the limit.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let mut c = conn.unwrap();
            let mut buf = [0u8; 2048];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let resp = if req.starts_with("GET /loop") {
                format!(
                    "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/loop\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
            } else if req.starts_with("GET /to-metadata") {
                "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
            } else if req.starts_with("GET /big") {
                let body = "<p>".to_string() + &"word ".repeat(100_000) + "</p>";
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc".to_string()
            };
            let _ = c.write_all(resp.as_bytes());
        }
    });
    let open = |allow: bool| {
        Kit::new(ToolsConfig {
            web_fetch: WebFetchConfig {
                allow_private_network: Some(allow).filter(|a| *a),
                timeout_seconds: Some(5),
                ..WebFetchConfig::default()
            },
            ..ToolsConfig::default()
        })
    };
    let k = open(true);
    let out = k
        .run(
            "web_fetch",
            &format!(r#"{{"url":"http://127.0.0.1:{port}/loop"}}"#),
        )
        .await;
    assert!(
        out.is_error && out.text.contains("too many redirects"),
        "{}",
        out.text
    );
    let out = k
        .run(
            "web_fetch",
            &format!(r#"{{"url":"http://127.0.0.1:{port}/big","maxChars":1000}}"#),
        )
        .await;
    assert!(
        !out.is_error && out.text.contains("cut at 1000 characters"),
        "{}",
        out.text
    );
    let out = k
        .run(
            "web_fetch",
            &format!(r#"{{"url":"http://127.0.0.1:{port}/bin"}}"#),
        )
        .await;
    assert!(
        out.is_error && out.text.contains("cannot show as text"),
        "{}",
        out.text
    );
    let out = k.run("web_fetch", r#"{"url":"file:///etc/passwd"}"#).await;
    assert!(
        out.is_error && out.text.contains("only http and https"),
        "{}",
        out.text
    );
    // A host the policy trusts by name is fetched; its redirect to the
    // metadata address is checked on its own and refused.
    let trusted = Kit::new(ToolsConfig {
        web_fetch: WebFetchConfig {
            allowed_hostnames: Some(vec!["127.0.0.1".into()]),
            blocked_hostnames: Some(vec!["*.blocked.test".into()]),
            timeout_seconds: Some(5),
            ..WebFetchConfig::default()
        },
        ..ToolsConfig::default()
    });
    let big = format!(r#"{{"url":"http://127.0.0.1:{port}/big","maxChars":200}}"#);
    let out = trusted.run("web_fetch", &big).await;
    assert!(!out.is_error && out.text.contains("word"), "{}", out.text);
    let hop = format!(r#"{{"url":"http://127.0.0.1:{port}/to-metadata"}}"#);
    let out = trusted.run("web_fetch", &hop).await;
    assert!(
        out.is_error && out.text.contains("169.254.169.254") && out.text.contains("private"),
        "{}",
        out.text
    );
    let out = trusted
        .run("web_fetch", r#"{"url":"http://x.blocked.test/"}"#)
        .await;
    assert!(
        out.is_error && out.text.contains("blockedHostnames"),
        "{}",
        out.text
    );
    // hostnameAllowlist: only the hosts it names, redirects included.
    let only = Kit::new(ToolsConfig {
        web_fetch: WebFetchConfig {
            allow_private_network: Some(true),
            only_hostnames: Some(vec!["localhost".into()]),
            timeout_seconds: Some(5),
            ..WebFetchConfig::default()
        },
        ..ToolsConfig::default()
    });
    let out = only.run("web_fetch", &big).await;
    assert!(
        out.is_error
            && out
                .text
                .contains("not in tools.web.fetch.ssrfPolicy.hostnameAllowlist"),
        "{}",
        out.text
    );
    let k = open(false);
    for url in [
        format!("http://127.0.0.1:{port}/to-metadata"),
        "http://[::1]:9/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://localhost:9/".to_string(),
    ] {
        let out = k.run("web_fetch", &format!(r#"{{"url":"{url}"}}"#)).await;
        assert!(
            out.is_error && out.text.contains("private"),
            "{url}: {}",
            out.text
        );
    }
}
