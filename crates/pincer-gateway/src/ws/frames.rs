//! OpenClaw's gateway protocol (version 4) on the wire: requests,
//! responses and events as typed frames, and the `connect` handshake's
//! parameters. Shapes recorded from a real OpenClaw 2026.9 gateway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version Pincer speaks (OpenClaw 2026.9's).
pub const PROTOCOL: u32 = 4;

/// A frame from the client: only requests are sent that way.
#[derive(Debug, Deserialize)]
pub struct Request {
    #[serde(rename = "type")]
    pub kind: String,
    /// Opaque; echoed verbatim (OpenClaw's clients send `"<n>:<uuid>"`).
    pub id: String,
    pub method: String,
    #[serde(default)]
    pub params: Option<Value>,
}

/// An error a response carries.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ErrorBody {
    pub fn invalid(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code: "INVALID_REQUEST",
            message: message.into(),
            details: None,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code: "UNAVAILABLE",
            message: message.into(),
            details: None,
        }
    }
}

/// A frame to the client.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum Frame {
    #[serde(rename = "res")]
    Res {
        id: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    #[serde(rename = "event")]
    Event {
        event: &'static str,
        payload: Value,
        /// Per socket, from 1; the challenge has none.
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
}

impl Frame {
    pub fn ok(id: &str, payload: impl Serialize) -> Frame {
        Frame::Res {
            id: id.to_string(),
            ok: true,
            payload: Some(to_value(payload)),
            error: None,
        }
    }

    pub fn err(id: &str, error: ErrorBody) -> Frame {
        Frame::Res {
            id: id.to_string(),
            ok: false,
            payload: None,
            error: Some(error),
        }
    }

    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A value as JSON (a typed payload never fails to serialize; if one did,
/// the client would get `null` rather than a dropped socket).
pub fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `connect`'s parameters (what Pincer reads of them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    pub min_protocol: u32,
    pub max_protocol: u32,
    pub client: ClientInfo,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    // `caps`, `device` (an identity OpenClaw accepts beside a shared token
    // on loopback; Pincer issues no device tokens), `locale`, `userAgent`:
    // accepted and not used.
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub id: String,
    pub mode: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectAuth {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// The client modes OpenClaw accepts.
pub const CLIENT_MODES: &[&str] = &[
    "webchat", "cli", "ui", "backend", "node", "worker", "probe", "test",
];

/// `hello-ok`, the answer to a good `connect`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloOk {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub protocol: u32,
    pub server: ServerInfo,
    pub features: Features,
    pub snapshot: Value,
    pub auth: HelloAuth,
    pub policy: Policy,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub version: String,
    pub conn_id: String,
}

#[derive(Debug, Serialize)]
pub struct Features {
    pub methods: Vec<&'static str>,
    pub events: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct HelloAuth {
    pub method: &'static str,
    pub role: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub max_payload: usize,
    pub max_buffered_bytes: usize,
    pub tick_interval_ms: u64,
}
