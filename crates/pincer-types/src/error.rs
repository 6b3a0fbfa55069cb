//! Every failure of a model call as one typed error whose kind a router can
//! act on, keeping the upstream's own message (minus secrets). How a
//! server's reply becomes one is `pincer-llm`'s business (its wording tables).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Key missing, wrong or revoked.
    Auth,
    /// Out of credit or quota.
    Billing,
    /// Too many requests; see `retry_after`.
    RateLimit,
    /// The server is busy or unavailable for now.
    Overloaded,
    /// A local server is still loading the model: a cold start, not an outage.
    ModelLoading,
    /// No answer in time.
    Timeout,
    /// Could not connect (refused, DNS, TLS).
    Connection,
    /// The server accepted the connection, then dropped it before it replied.
    Reset,
    /// The prompt plus output does not fit the model's context window.
    ContextOverflow,
    /// The server does not have (or has not loaded) this model.
    ModelNotFound,
    /// The request itself is wrong: it would fail on any server.
    BadRequest,
    /// Any other server-side failure (5xx).
    Server,
    /// The reply is not what the dialect promises: malformed or cut short.
    Protocol,
    /// The model finished without an answer: no text and no tool call (an
    /// empty reply, or reasoning only).
    EmptyReply,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Billing => "billing",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ModelLoading => "model_loading",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Reset => "reset",
            ErrorKind::ContextOverflow => "context_overflow",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Server => "server",
            ErrorKind::Protocol => "protocol",
            ErrorKind::EmptyReply => "empty_reply",
        }
    }

    /// Failures that may pass on their own (worth a retry or a cooldown, not a config fix).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit
                | ErrorKind::Overloaded
                | ErrorKind::ModelLoading
                | ErrorKind::Timeout
                | ErrorKind::Connection
                | ErrorKind::Reset
                | ErrorKind::Server
                | ErrorKind::Protocol
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token counts a server gave with a context overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Overflow {
    pub requested: Option<u64>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("{kind}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    /// The upstream's own words, secrets removed.
    pub message: String,
    pub retry_after: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            overflow: None,
        }
    }
}
