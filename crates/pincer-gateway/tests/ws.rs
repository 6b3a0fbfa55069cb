//! OpenClaw's gateway protocol (version 4) on the gateway's port, as a
//! client sees it: the challenge and `connect` (and each way it is
//! refused), `hello-ok`, the methods, a chat run's events, retries that
//! never run a turn twice, `agent`'s two answers, aborts, and unknown
//! methods answered at once. Frame shapes recorded from a real OpenClaw
//! 2026.9 gateway; OpenClaw's own CLI is in `openclaw_cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::TOKEN;
use futures_util::{SinkExt, StreamExt};
use pincer_testkit::{FakeUpstream, Step, completions_stream, sse_head};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(up: &FakeUpstream, state: &Path) -> SocketAddr {
    common::serve(&up.base_url(), state).await
}

async fn open(addr: SocketAddr) -> Socket {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}"))
        .await
        .unwrap();
    ws
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => {
                return json!({ "closed": c.map(|c| (u16::from(c.code), c.reason.to_string())) });
            }
            _ => {}
        }
    }
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

fn connect(id: &str, token: &str) -> Value {
    connect_as(id, token, &["operator.write"])
}

fn connect_as(id: &str, token: &str, scopes: &[&str]) -> Value {
    json!({"type": "req", "id": id, "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": "cli",
            "instanceId": "6e63644e-021e-420a-8ff8-4a98e63c3ddd"},
        "caps": [], "auth": {"token": token}, "role": "operator", "scopes": scopes}})
}

/// Opens a socket and connects; returns it after `hello-ok`.
async fn connected(addr: SocketAddr) -> (Socket, Value) {
    let mut ws = open(addr).await;
    let challenge = next(&mut ws).await;
    assert_eq!(challenge["event"], "connect.challenge");
    send(&mut ws, connect("1:c", TOKEN)).await;
    let hello = next(&mut ws).await;
    assert_eq!(hello["ok"], true, "{hello}");
    (ws, hello)
}

/// The response to request `id`, skipping events (returned beside it).
async fn response(ws: &mut Socket, id: &str) -> (Value, Vec<Value>) {
    let mut events = Vec::new();
    loop {
        let f = next(ws).await;
        if f["type"] == "res" && f["id"] == id {
            return (f, events);
        }
        assert!(f.get("closed").is_none(), "closed while waiting: {f}");
        events.push(f);
    }
}

/// Events until a terminal `chat` event of `run`.
async fn until_final(ws: &mut Socket, run: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = next(ws).await;
        assert!(f.get("closed").is_none(), "{f}");
        let terminal = f["event"] == "chat"
            && f["payload"]["runId"] == run
            && ["final", "error", "aborted"]
                .contains(&f["payload"]["state"].as_str().unwrap_or(""));
        seen.push(f);
        if terminal {
            return seen;
        }
    }
}

fn words(n: usize) -> Vec<Step> {
    let mut b = sse_head();
    for i in 0..n {
        b.extend_from_slice(
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
            )
            .as_bytes(),
        );
    }
    b.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
    );
    vec![Step::Send(b)]
}

#[tokio::test]
async fn the_handshake_and_what_hello_ok_says() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hi"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;

    let mut ws = open(addr).await;
    let challenge = next(&mut ws).await;
    assert!(challenge.get("seq").is_none());
    assert!(!challenge["payload"]["nonce"].as_str().unwrap().is_empty());
    assert!(challenge["payload"]["ts"].as_u64().unwrap() > 0);
    send(&mut ws, connect("1:c", TOKEN)).await;
    let hello = next(&mut ws).await;
    let p = &hello["payload"];
    assert_eq!(
        (hello["id"].as_str(), p["type"].as_str()),
        (Some("1:c"), Some("hello-ok"))
    );
    assert_eq!(p["protocol"], 4);
    assert_eq!(p["auth"]["method"], "token");
    assert_eq!(p["auth"]["scopes"], json!(["operator.write"]));
    assert_eq!(p["policy"]["tickIntervalMs"], 30000);
    assert_eq!(
        p["snapshot"]["sessionDefaults"]["mainSessionKey"],
        "agent:main:main"
    );
    let methods: Vec<&str> = p["features"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in [
        "health",
        "chat.send",
        "chat.history",
        "chat.abort",
        "agent",
        "agent.wait",
        "sessions.list",
        "models.list",
    ] {
        assert!(methods.contains(&m), "{m} listed");
    }
    // Every listed method answers (none is listed and missing).
    for (i, m) in methods.iter().enumerate() {
        let id = format!("m{i}");
        send(
            &mut ws,
            json!({"type": "req", "id": id, "method": m, "params": {}}),
        )
        .await;
        let (res, _) = response(&mut ws, &id).await;
        let unknown = res["error"]["message"]
            .as_str()
            .is_some_and(|e| e.starts_with("unknown method"));
        assert!(!unknown, "{m}: {res}");
    }
    // An unknown method is answered at once, and the socket stays.
    send(
        &mut ws,
        json!({"type": "req", "id": "u", "method": "nope.method", "params": {}}),
    )
    .await;
    let (res, _) = response(&mut ws, "u").await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "unknown method: nope.method");
    send(
        &mut ws,
        json!({"type": "req", "id": "h", "method": "health"}),
    )
    .await;
    let (res, _) = response(&mut ws, "h").await;
    assert_eq!(res["payload"]["ok"], true);
}

#[tokio::test]
async fn refused_connects_say_why_and_close() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hi"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let refused = |frame: Value| async move {
        let mut ws = open(addr).await;
        next(&mut ws).await;
        send(&mut ws, frame).await;
        let res = next(&mut ws).await;
        let closed = next(&mut ws).await;
        (res, closed["closed"].clone())
    };

    let (res, closed) = refused(connect("a", "wrong-token")).await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
    assert_eq!(closed[0], 1008);
    assert!(
        !res.to_string().contains(TOKEN),
        "the token is never echoed"
    );

    let mut bad_mode = connect("b", TOKEN);
    bad_mode["params"]["client"]["mode"] = json!("nonsense");
    let (res, closed) = refused(bad_mode).await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/client/mode")
    );
    assert_eq!(closed[0], 1008);

    let mut old = connect("c", TOKEN);
    old["params"]["minProtocol"] = json!(3);
    old["params"]["maxProtocol"] = json!(3);
    let (res, closed) = refused(old).await;
    assert_eq!(res["error"]["details"]["code"], "PROTOCOL_MISMATCH");
    assert_eq!(closed[0], 1002);

    let (res, closed) = refused(json!({"type": "req", "id": "d", "method": "health"})).await;
    assert_eq!(
        res["error"]["message"],
        "invalid handshake: first request must be connect"
    );
    assert_eq!(closed[0], 1008);
}

#[tokio::test]
async fn a_chat_run_streams_to_every_client_and_is_never_run_twice() {
    let up = FakeUpstream::start(vec![words(40)]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let (mut a, _) = connected(addr).await;
    let (mut b, _) = connected(addr).await;

    send(
        &mut a,
        json!({"type": "req", "id": "s1", "method": "chat.send",
        "params": {"sessionKey": "main", "message": "Count", "idempotencyKey": "run-1"}}),
    )
    .await;
    let (ack, mut early) = response(&mut a, "s1").await;
    assert_eq!(
        ack["payload"],
        json!({"runId": "run-1", "status": "started"})
    );
    // The same key again, while it runs or after: no second turn.
    send(
        &mut a,
        json!({"type": "req", "id": "s2", "method": "chat.send",
        "params": {"sessionKey": "main", "message": "Count", "idempotencyKey": "run-1"}}),
    )
    .await;
    let (again, more) = response(&mut a, "s2").await;
    early.extend(more);
    assert!(
        ["in_flight", "ok"].contains(&again["payload"]["status"].as_str().unwrap()),
        "{again}"
    );

    for (i, ws) in [&mut a, &mut b].into_iter().enumerate() {
        // What reached `a` before its acks belongs to the run too.
        let mut events = if i == 0 {
            std::mem::take(&mut early)
        } else {
            Vec::new()
        };
        let done = events
            .iter()
            .any(|e| e["event"] == "chat" && e["payload"]["state"] == "final");
        if !done {
            events.extend(until_final(ws, "run-1").await);
        }
        let chat: Vec<&Value> = events.iter().filter(|e| e["event"] == "chat").collect();
        let last = chat.last().unwrap();
        assert_eq!(last["payload"]["state"], "final");
        assert_eq!(last["payload"]["sessionKey"], "agent:main:main");
        let text = last["payload"]["message"]["content"][0]["text"]
            .as_str()
            .unwrap();
        assert!(
            text.starts_with("w0 w1 w2") && text.contains("w39"),
            "{text}"
        );
        // Deltas add up to the answer (throttled: fewer than the tokens).
        let deltas: String = chat
            .iter()
            .filter(|e| e["payload"]["state"] == "delta")
            .map(|e| e["payload"]["deltaText"].as_str().unwrap())
            .collect();
        assert_eq!(deltas.trim_end(), text.trim_end());
        // Agent events: lifecycle start … end, the assistant's text.
        let phases: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "agent" && e["payload"]["stream"] == "lifecycle")
            .filter_map(|e| e["payload"]["data"]["phase"].as_str())
            .collect();
        assert_eq!(phases.first(), Some(&"start"));
        assert_eq!(phases.last(), Some(&"end"));
        // Frame numbers rise by one per socket; run numbers rise per run.
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    assert_eq!(up.requests().len(), 1, "one turn for one key");
    // The same key in another session is refused, not answered with this run.
    send(
        &mut a,
        json!({"type": "req", "id": "s4", "method": "chat.send",
        "params": {"sessionKey": "other", "message": "Count", "idempotencyKey": "run-1"}}),
    )
    .await;
    let (other, _) = response(&mut a, "s4").await;
    assert!(
        other["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another session"),
        "{other}"
    );
    send(
        &mut a,
        json!({"type": "req", "id": "s3", "method": "chat.send",
        "params": {"sessionKey": "main", "message": "Count", "idempotencyKey": "run-1"}}),
    )
    .await;
    let (after, _) = response(&mut a, "s3").await;
    assert_eq!(after["payload"]["status"], "ok");

    // The history has the turn, as OpenClaw's clients read it.
    send(
        &mut a,
        json!({"type": "req", "id": "h", "method": "chat.history",
        "params": {"sessionKey": "main", "limit": 50}}),
    )
    .await;
    let (h, _) = response(&mut a, "h").await;
    let msgs = h["payload"]["messages"].as_array().unwrap();
    assert_eq!(msgs[0], json!({"role": "user", "content": "Count"}));
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["model"], "m");
    send(
        &mut a,
        json!({"type": "req", "id": "l", "method": "sessions.list"}),
    )
    .await;
    let (l, _) = response(&mut a, "l").await;
    assert_eq!(l["payload"]["sessions"][0]["key"], "agent:main:main");

    // A note injected into the transcript: told as a final chat event, kept.
    send(
        &mut a,
        json!({"type": "req", "id": "i", "method": "chat.inject",
        "params": {"sessionKey": "main", "message": "remember the milk"}}),
    )
    .await;
    let (i, _) = response(&mut a, "i").await;
    assert_eq!(i["payload"]["ok"], true);
    let told = loop {
        let f = next(&mut b).await;
        if f["event"] == "chat"
            && f["payload"]["runId"]
                .as_str()
                .unwrap_or("")
                .starts_with("inject-")
        {
            break f;
        }
    };
    assert_eq!(
        told["payload"]["message"]["content"][0]["text"],
        "remember the milk"
    );
    send(
        &mut a,
        json!({"type": "req", "id": "h2", "method": "chat.history",
        "params": {"sessionKey": "main"}}),
    )
    .await;
    let (h, _) = response(&mut a, "h2").await;
    let last = h["payload"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["content"][0]["text"], "remember the milk");

    // Usage so far. The config and deleting need the admin scope.
    send(
        &mut a,
        json!({"type": "req", "id": "u", "method": "usage.cost"}),
    )
    .await;
    let (u, _) = response(&mut a, "u").await;
    assert_eq!(u["payload"]["byModel"]["acme/m"]["turns"], 1, "{u}");
    assert!(u["payload"]["byModel"].get("/").is_none(), "{u}");
    send(
        &mut a,
        json!({"type": "req", "id": "c", "method": "config.get"}),
    )
    .await;
    let (c, _) = response(&mut a, "c").await;
    assert_eq!(c["error"]["code"], "FORBIDDEN", "{c}");
    let mut admin = admin(addr).await;
    send(
        &mut admin,
        json!({"type": "req", "id": "c", "method": "config.get"}),
    )
    .await;
    let (c, _) = response(&mut admin, "c").await;
    assert!(
        !c.to_string().contains(TOKEN),
        "the token never leaves: {c}"
    );
    assert_eq!(c["payload"]["valid"], true);

    // The main session cannot be deleted, under any spelling.
    for key in ["main", "MAIN", "agent:main:main"] {
        send(
            &mut admin,
            json!({"type": "req", "id": "d1", "method": "sessions.delete",
            "params": {"key": key}}),
        )
        .await;
        let (d1, _) = response(&mut admin, "d1").await;
        assert!(
            d1["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("cannot delete the main session"),
            "{d1}"
        );
    }
    send(
        &mut admin,
        json!({"type": "req", "id": "h3", "method": "chat.history",
        "params": {"sessionKey": "main"}}),
    )
    .await;
    let (h, _) = response(&mut admin, "h3").await;
    assert!(!h["payload"]["messages"].as_array().unwrap().is_empty());
}

/// A connection with the admin scope.
async fn admin(addr: SocketAddr) -> Socket {
    let mut ws = open(addr).await;
    next(&mut ws).await;
    send(&mut ws, connect_as("1:adm", TOKEN, &["operator.admin"])).await;
    let hello = next(&mut ws).await;
    assert_eq!(hello["ok"], true);
    ws
}

/// A page from another site may not open the gateway's socket (the
/// browser would let it); the gateway's own page and clients outside a
/// browser may.
#[tokio::test]
async fn only_the_gateways_own_pages_open_its_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hi"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let with_origin = |origin: String| {
        let mut req = format!("ws://{addr}/").into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    let foreign =
        tokio_tungstenite::connect_async(with_origin("https://evil.example".into())).await;
    let refused = match foreign {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!("a foreign page got in: {other:?}"),
    };
    assert_eq!(refused, 403);
    let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(format!("http://{addr}")))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["event"], "connect.challenge");
}

#[tokio::test]
async fn agent_answers_twice_and_wait_finds_the_run() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hello there"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let (mut ws, _) = connected(addr).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "1:a", "method": "agent", "params": {
        "message": "Say hi", "sessionKey": "agent:main:cli-test", "deliver": false,
        "timeout": 600, "idempotencyKey": "k-1"}}),
    )
    .await;
    let (first, _) = response(&mut ws, "1:a").await;
    assert_eq!(first["payload"]["status"], "accepted");
    assert_eq!(first["payload"]["sessionKey"], "agent:main:cli-test");
    let (second, _) = response(&mut ws, "1:a").await;
    assert_eq!(second["payload"]["status"], "ok", "{second}");
    assert_eq!(
        second["payload"]["result"]["payloads"][0]["text"],
        "Hello there"
    );
    send(
        &mut ws,
        json!({"type": "req", "id": "w", "method": "agent.wait",
        "params": {"runId": "k-1", "timeoutMs": 1000}}),
    )
    .await;
    let (w, _) = response(&mut ws, "w").await;
    assert_eq!(w["payload"]["status"], "ok");
    send(
        &mut ws,
        json!({"type": "req", "id": "w2", "method": "agent.wait",
        "params": {"runId": "nope"}}),
    )
    .await;
    let (w2, _) = response(&mut ws, "w2").await;
    assert_eq!(w2["ok"], false);

    // That session can be deleted (with the admin scope), and is gone.
    let mut ws = admin(addr).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "d", "method": "sessions.delete",
        "params": {"key": "agent:main:cli-test"}}),
    )
    .await;
    let (d, _) = response(&mut ws, "d").await;
    assert_eq!(d["payload"]["deleted"], true, "{d}");
    send(
        &mut ws,
        json!({"type": "req", "id": "l", "method": "sessions.list"}),
    )
    .await;
    let (l, _) = response(&mut ws, "l").await;
    assert!(!l.to_string().contains("cli-test"), "{l}");
}

#[tokio::test]
async fn a_run_is_aborted_and_says_so() {
    // The model starts, then stalls: the abort ends it.
    let mut slow = sse_head();
    slow.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once\"}}]}\n\n",
    );
    let up = FakeUpstream::start(vec![vec![
        Step::Send(slow),
        Step::Sleep(Duration::from_secs(20)),
    ]]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let (mut ws, _) = connected(addr).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "s", "method": "chat.send",
        "params": {"sessionKey": "main", "message": "Tell a story", "idempotencyKey": "r"}}),
    )
    .await;
    response(&mut ws, "s").await;
    // Wait for the first words, then abort.
    loop {
        let f = next(&mut ws).await;
        if f["event"] == "agent" && f["payload"]["stream"] == "assistant" {
            break;
        }
    }
    send(
        &mut ws,
        json!({"type": "req", "id": "x", "method": "chat.abort",
        "params": {"sessionKey": "main"}}),
    )
    .await;
    let (res, _) = response(&mut ws, "x").await;
    assert_eq!(res["payload"]["aborted"], true);
    assert_eq!(res["payload"]["runIds"], json!(["r"]));
    let events = until_final(&mut ws, "r").await;
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "aborted", "{last}");
}

/// OpenClaw's own CLI (`openclaw agent`, from its npm package) against
/// Pincer: it connects with the gateway token, sends one `agent` request
/// and prints the second answer's text.
#[tokio::test]
#[ignore = "needs OpenClaw's npm package and Node 24 (PINCER_TEST_NODE, PINCER_TEST_OPENCLAW_PKG): scripts/test installs them and runs this"]
async fn openclaws_own_cli_talks_to_pincer() {
    let node = std::env::var("PINCER_TEST_NODE").expect("PINCER_TEST_NODE");
    let pkg = std::env::var("PINCER_TEST_OPENCLAW_PKG").expect("PINCER_TEST_OPENCLAW_PKG");
    let up = FakeUpstream::start(vec![completions_stream(&[
        r#"{"content":"Hello from Pincer"}"#,
    ])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(node)
        .arg(Path::new(&pkg).join("openclaw.mjs"))
        .args([
            "agent",
            "--message",
            "Say hi",
            "--session-key",
            "agent:main:cli-test",
            "--json",
        ])
        .env_clear()
        .env("HOME", home.path())
        .env("OPENCLAW_STATE_DIR", home.path().join(".openclaw"))
        .env("OPENCLAW_GATEWAY_URL", format!("ws://{addr}"))
        .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("openclaw agent ends")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Hello from Pincer"), "{stdout}\n{stderr}");
    assert_eq!(up.requests().len(), 1);
}

/// The web chat's files, compiled in, served without auth under a strict
/// Content-Security-Policy.
#[tokio::test]
async fn the_web_chat_is_served_from_the_binary() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"Hi"}"#])]);
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&up, dir.path()).await;
    let get = |path: &str| reqwest::get(format!("http://{addr}{path}"));
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/webchat/app.js") && !html.contains("http"),
        "no CDN: {html}"
    );
    let js = get("/webchat/app.js").await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(get("/webchat/style.css").await.unwrap().status(), 200);
    assert_eq!(get("/webchat/nope.js").await.unwrap().status(), 404);
}
