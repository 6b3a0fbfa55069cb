//! OpenClaw's gateway protocol over WebSocket, on the gateway's own port at
//! `/` (as OpenClaw's clients expect: `ws://127.0.0.1:18789`), so its CLI,
//! TUI and apps can talk to Pincer.
//!
//! A connection: the server's `connect.challenge`; the client's `connect`
//! (token or password, checked as the HTTP auth checks it, with its
//! lockout); `hello-ok` listing what Pincer implements; then requests
//! answered by `methods`, events from the runs (`runs`) and a `tick` every
//! 30 s. Frames before `connect` are limited to 64 KiB, later ones to
//! `MAX_PAYLOAD`; every connection has a bounded queue of frames to send,
//! and a client that falls behind it is closed with 1008 "slow consumer",
//! as OpenClaw does, so a slow client never holds up the others.

mod frames;
mod methods;
mod runs;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::Gateway;
use crate::settings::Auth;
pub use frames::PROTOCOL;
use frames::{ConnectParams, ErrorBody, Frame, Request};
pub use runs::Runs;

/// Frames after `connect` (OpenClaw allows 25 MiB for attachments, which
/// Pincer does not take; a chat message fits easily).
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;
/// Frames before `connect`.
const MAX_HANDSHAKE_FRAME: usize = 64 * 1024;
/// Bytes the server may have queued for one client before it is dropped
/// as too slow (OpenClaw's `policy.maxBufferedBytes`).
const MAX_BUFFERED_BYTES: usize = 50 * 1024 * 1024;
/// Frames queued for one client before it is dropped as too slow.
const QUEUE: usize = 1024;
const TICK: Duration = Duration::from_secs(30);
/// A client that has not sent `connect` by then is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// `/`: the WebSocket protocol for an upgrade, else the web chat.
///
/// A browser lets any page open a WebSocket anywhere, so an upgrade that
/// comes from a page (it has an `Origin`) must come from this gateway's own
/// origin, and, on a gateway without auth, under a loopback host name (no
/// DNS rebinding onto 127.0.0.1). Clients outside a browser send no
/// `Origin`.
pub async fn root(
    State(gw): State<&'static Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => {
            if let Err(why) = same_origin(&headers, matches!(gw.settings.auth, Auth::None)) {
                return (StatusCode::FORBIDDEN, why).into_response();
            }
            ws.max_message_size(MAX_PAYLOAD)
                .max_frame_size(MAX_PAYLOAD)
                .on_upgrade(move |socket| serve(gw, socket, peer))
        }
        // An upgrade asked for and malformed is an error, not the page.
        Err(e) if headers.contains_key(header::UPGRADE) => e.into_response(),
        Err(_) => crate::webchat::page().await,
    }
}

/// Whether a browser's upgrade comes from this gateway's own page.
fn same_origin(headers: &HeaderMap, loopback_only: bool) -> Result<(), &'static str> {
    let value = |h| headers.get(h).and_then(|v| v.to_str().ok());
    let host = value(header::HOST).unwrap_or_default().to_ascii_lowercase();
    if loopback_only {
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host.as_str(), |(name, _)| name);
        if !["127.0.0.1", "localhost", "[::1]"].contains(&name) {
            return Err("a gateway without auth answers only on a loopback host name");
        }
    }
    let Some(origin) = value(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_ascii_lowercase();
    let ours = ["http://", "https://"]
        .iter()
        .any(|scheme| origin == format!("{scheme}{host}"));
    if ours {
        Ok(())
    } else {
        Err("a page from another origin may not open the gateway's WebSocket")
    }
}

fn close(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason[..end].to_string()),
    }))
}

/// What the writer task sends: a frame, or a close.
enum Out {
    Text(String),
    Close(u16, String),
}

/// A connection's handle for sending: bounded, and closing the connection
/// when the client cannot keep up.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Out>,
    seq: std::sync::Arc<std::sync::atomic::AtomicU64>,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Set when the client fell behind: the writer closes at once, even
    /// with its queue full.
    slow: std::sync::Arc<tokio::sync::Notify>,
}

impl Outbox {
    fn push(&self, text: String) -> bool {
        use std::sync::atomic::Ordering;
        let len = text.len();
        if self.queued.load(Ordering::Relaxed) + len > MAX_BUFFERED_BYTES {
            self.slow.notify_one();
            return false;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if self.tx.try_send(Out::Text(text)).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.slow.notify_one();
            return false;
        }
        true
    }

    pub(crate) fn send(&self, frame: &Frame) -> bool {
        self.push(frame.text())
    }

    /// An event, numbered for this socket.
    pub(crate) fn event(&self, event: &'static str, payload: serde_json::Value) -> bool {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.send(&Frame::Event {
            event,
            payload,
            seq: Some(seq),
        })
    }

    fn close(&self, code: u16, reason: &str) {
        let _ = self.tx.try_send(Out::Close(code, reason.to_string()));
    }
}

async fn serve(gw: &'static Gateway, socket: WebSocket, peer: SocketAddr) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(QUEUE);
    let outbox = Outbox {
        tx,
        seq: Default::default(),
        queued: Default::default(),
        slow: Default::default(),
    };
    let queued = outbox.queued.clone();
    let slow = outbox.slow.clone();
    let writer = tokio::spawn(async move {
        loop {
            let out = tokio::select! {
                out = rx.recv() => out,
                () = slow.notified() => Some(Out::Close(1008, "slow consumer".into())),
            };
            let Some(out) = out else { break };
            match out {
                Out::Text(t) => {
                    let len = t.len();
                    let sent = sink.send(Message::Text(t.into())).await;
                    queued.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                    if sent.is_err() {
                        break;
                    }
                }
                Out::Close(code, reason) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break;
                }
            }
        }
        let _ = sink.close().await;
    });

    let nonce = uuid::Uuid::new_v4().to_string();
    outbox.send(&Frame::Event {
        event: "connect.challenge",
        payload: json!({ "nonce": nonce, "ts": now_ms() }),
        seq: None,
    });
    let conn =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(gw, &mut stream, &outbox, peer))
            .await
        {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                drop(outbox);
                let _ = writer.await;
                return;
            }
            Err(_) => {
                outbox.close(1000, "connect timeout");
                drop(outbox);
                let _ = writer.await;
                return;
            }
        };
    let mut events = gw.ws.subscribe();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        outbox.close(1003, "binary frames are not part of the protocol");
                        break;
                    }
                    _ => continue,
                };
                let req = match serde_json::from_str::<Request>(&text) {
                    Ok(r) if r.kind == "req" => r,
                    _ => {
                        outbox.close(1008, "invalid-frame");
                        break;
                    }
                };
                methods::handle(gw, &conn, &outbox, req).await;
            }
            ev = events.recv() => {
                match ev {
                    Ok(ev) => {
                        if !outbox.event(ev.event, ev.payload.clone()) {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        outbox.close(1008, "slow consumer");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            _ = tick.tick() => {
                if !outbox.event("tick", json!({ "ts": now_ms() })) {
                    break;
                }
            }
        }
    }
    // The connection is over: stop listening to the runs, and close even
    // while a spawned answer (an `agent` waiting for its run) still holds
    // the outbox.
    drop(events);
    outbox.close(1000, "");
    drop(outbox);
    let _ = writer.await;
}

/// Who is on the other end, once connected.
pub(crate) struct Conn {
    pub client_id: String,
    pub client_mode: String,
    pub scopes: Vec<String>,
}

/// Waits for `connect` and answers it; `None` when the connection was
/// refused (and told so).
async fn handshake(
    gw: &'static Gateway,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    outbox: &Outbox,
    peer: SocketAddr,
) -> Option<Conn> {
    let text = loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => break t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(Message::Binary(_)) => {
                outbox.close(1008, "invalid-handshake");
                return None;
            }
            Ok(_) => {}
        }
    };
    if text.len() > MAX_HANDSHAKE_FRAME {
        outbox.close(1008, "invalid-handshake");
        return None;
    }
    let Ok(req) = serde_json::from_str::<Request>(&text) else {
        outbox.close(1008, "invalid-handshake");
        return None;
    };
    let refuse = |error: ErrorBody, code: u16| {
        let reason = error.message.clone();
        outbox.send(&Frame::err(&req.id, error));
        outbox.close(code, &reason);
        None
    };
    if req.kind != "req" || req.method != "connect" {
        return refuse(
            ErrorBody::invalid("invalid handshake: first request must be connect"),
            1008,
        );
    }
    let params: ConnectParams = match req.params.clone().map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return refuse(
                ErrorBody::invalid(format!("invalid connect params: {e}")),
                1008,
            );
        }
        None => return refuse(ErrorBody::invalid("invalid connect params: missing"), 1008),
    };
    if !(params.min_protocol..=params.max_protocol).contains(&PROTOCOL) {
        return refuse(
            ErrorBody {
                code: "INVALID_REQUEST",
                message: format!(
                    "protocol mismatch: this gateway speaks protocol {PROTOCOL}, the client {}..{}",
                    params.min_protocol, params.max_protocol
                ),
                details: Some(json!({ "code": "PROTOCOL_MISMATCH", "expectedProtocol": PROTOCOL })),
            },
            1002,
        );
    }
    if !frames::CLIENT_MODES.contains(&params.client.mode.as_str()) {
        return refuse(
            ErrorBody::invalid(
                "invalid connect params: at /client/mode: must be equal to one of the allowed values",
            ),
            1008,
        );
    }
    let role = params.role.clone().unwrap_or_else(|| "operator".into());
    if role != "operator" {
        return refuse(ErrorBody::invalid("invalid role"), 1008);
    }
    let method = match &gw.settings.auth {
        Auth::Secret(secret) => {
            let ip = peer.ip();
            let limit = &gw.settings.rate_limit;
            let counted = !(limit.exempt_loopback && ip.is_loopback());
            if counted && let Some(left) = gw.failures.locked(ip) {
                return refuse(
                    ErrorBody {
                        code: "UNAVAILABLE",
                        message: format!("too many failed attempts; retry in {left} s"),
                        details: Some(
                            json!({ "code": "AUTH_RATE_LIMITED", "retryAfterMs": left * 1000 }),
                        ),
                    },
                    1008,
                );
            }
            let auth = params.auth.as_ref();
            let token = auth.and_then(|a| a.token.as_deref());
            let password = auth.and_then(|a| a.password.as_deref());
            let given = token.or(password).unwrap_or_default();
            if !crate::auth::matches(given, secret) {
                // No token at all is a client asking what it needs (the
                // web chat's first try), not a guess.
                if counted && !given.is_empty() {
                    gw.failures.fail(ip, limit);
                }
                let (message, code) = if given.is_empty() {
                    (
                        "unauthorized: gateway token missing (set gateway.auth.token on the client)",
                        "AUTH_TOKEN_MISSING",
                    )
                } else {
                    (
                        "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token)",
                        "AUTH_TOKEN_MISMATCH",
                    )
                };
                return refuse(
                    ErrorBody {
                        code: "INVALID_REQUEST",
                        message: message.into(),
                        details: Some(json!({ "code": code })),
                    },
                    1008,
                );
            }
            if counted {
                gw.failures.succeed(ip);
            }
            if password.is_some() && token.is_none() {
                "password"
            } else {
                "token"
            }
        }
        Auth::None => "none",
        Auth::TrustedProxy => "trusted-proxy",
    };
    let hello = frames::HelloOk {
        kind: "hello-ok",
        protocol: PROTOCOL,
        server: frames::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            conn_id: uuid::Uuid::new_v4().to_string(),
        },
        features: frames::Features {
            methods: methods::METHODS.to_vec(),
            events: methods::EVENTS.to_vec(),
        },
        snapshot: methods::snapshot(gw),
        auth: frames::HelloAuth {
            method,
            role: role.clone(),
            scopes: params.scopes.clone(),
        },
        policy: frames::Policy {
            max_payload: MAX_PAYLOAD,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
            tick_interval_ms: u64::try_from(TICK.as_millis()).unwrap_or(30_000),
        },
    };
    outbox.send(&Frame::ok(&req.id, hello));
    Some(Conn {
        client_id: params.client.id,
        client_mode: params.client.mode,
        scopes: params.scopes,
    })
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
