//! One error type for every route, answered in OpenAI's error shape so the
//! official SDKs raise the right exception (401 → AuthenticationError, 404 →
//! NotFoundError, …).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pincer_llm::ErrorKind;
use pincer_router::AllFailed;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("too many failed authentication attempts; retry in {0} s")]
    LockedOut(u64),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    UnknownModel { message: String },
    #[error("{0}")]
    Disabled(&'static str),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The turn stopped without finishing its answer (and said nothing why).
    #[error("the answer ended before it was complete")]
    Incomplete,
    /// No candidate answered.
    #[error("{0}")]
    Upstream(Box<AllFailed>),
    /// The answer broke after it began and no other model could continue
    /// it: the upstream's own words, and what was tried to rescue it.
    #[error("{0}")]
    MidAnswer(Box<MidAnswer>),
    /// The prompt is too long for the model, even after compaction.
    #[error("{0}")]
    ContextOverflow(String),
    /// A `/stop` ended the run.
    #[error("the run was aborted by /stop")]
    Aborted,
    /// The gateway itself failed (a session that cannot be written).
    #[error("{0}")]
    Internal(String),
}

pub use pincer_agent::MidAnswer;

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::LockedOut(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) | ApiError::UnknownModel { .. } | ApiError::Disabled(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Upstream(f) => status_of(f.last.as_ref().map(|e| e.kind)),
            ApiError::MidAnswer(m) => status_of(Some(m.error.kind)),
            ApiError::Incomplete => StatusCode::BAD_GATEWAY,
            ApiError::ContextOverflow(_) => StatusCode::BAD_REQUEST,
            ApiError::Aborted => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn kind(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ApiError::BadRequest(_) | ApiError::TooLarge(_) => ("invalid_request_error", None),
            ApiError::Unauthorized => ("unauthorized", None),
            ApiError::LockedOut(_) => ("rate_limit_error", None),
            ApiError::NotFound(_) | ApiError::Disabled(_) => ("not_found_error", None),
            ApiError::UnknownModel { .. } => ("invalid_request_error", Some("model_not_found")),
            ApiError::Incomplete | ApiError::Aborted | ApiError::Internal(_) => ("api_error", None),
            ApiError::ContextOverflow(_) => kind_of(Some(ErrorKind::ContextOverflow)),
            ApiError::Upstream(f) => kind_of(f.last.as_ref().map(|e| e.kind)),
            ApiError::MidAnswer(m) => kind_of(Some(m.error.kind)),
        }
    }

    /// The error as an OpenAI-style JSON body (also used inside streams).
    pub fn body(&self) -> serde_json::Value {
        let (kind, code) = self.kind();
        json!({"error": {"message": self.to_string(), "type": kind, "param": null, "code": code}})
    }
}

/// The status the failure policy gives the failure that decided the turn.
fn status_of(kind: Option<ErrorKind>) -> StatusCode {
    StatusCode::from_u16(pincer_router::http_status(kind)).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// OpenAI's error type (and code) for an upstream failure.
fn kind_of(kind: Option<ErrorKind>) -> (&'static str, Option<&'static str>) {
    match kind {
        Some(ErrorKind::BadRequest) => ("invalid_request_error", None),
        Some(ErrorKind::ContextOverflow) => {
            ("invalid_request_error", Some("context_length_exceeded"))
        }
        Some(ErrorKind::RateLimit) => ("rate_limit_error", None),
        _ => ("api_error", None),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::LockedOut(s) => Some(*s),
            ApiError::Upstream(f) => f
                .retry_at_ms
                .map(|at| at.saturating_sub(pincer_router::now_ms()).div_ceil(1000)),
            _ => None,
        };
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(s) = retry_after
            && let Ok(v) = HeaderValue::from_str(&s.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<pincer_agent::AgentError> for ApiError {
    fn from(e: pincer_agent::AgentError) -> ApiError {
        use pincer_agent::AgentError as A;
        match e {
            A::UnknownAgent(id) => ApiError::UnknownModel {
                message: format!("unknown agent {id:?}"),
            },
            A::Models(e) => chain_error(e),
            A::Upstream(f) => ApiError::Upstream(f),
            A::MidAnswer(m) => ApiError::MidAnswer(m),
            A::TooLarge(o) => ApiError::ContextOverflow(o.to_string()),
            e @ A::ContextOverflow(_) => ApiError::ContextOverflow(e.to_string()),
            A::Aborted => ApiError::Aborted,
            A::ClientGone => ApiError::Incomplete,
            e @ A::Store { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

/// A model the request (or the session) named that cannot be used.
pub fn chain_error(e: pincer_catalog::ChainError) -> ApiError {
    use pincer_catalog::ChainError;
    match e {
        ChainError::NoUsableModel { .. } => ApiError::BadRequest(e.to_string()),
        ChainError::UnknownModel { .. } => ApiError::UnknownModel {
            message: format!("{e}; use \"openclaw\" for the agent, or a model ref"),
        },
        ChainError::NotAllowed { .. } => ApiError::UnknownModel {
            message: e.to_string(),
        },
    }
}
