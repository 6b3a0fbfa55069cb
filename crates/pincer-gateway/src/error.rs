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
    /// The turn stopped without finishing its answer (and said nothing why).
    #[error("the answer ended before it was complete")]
    Incomplete,
    /// No candidate answered.
    #[error("{0}")]
    Upstream(Box<AllFailed>),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::LockedOut(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) | ApiError::UnknownModel { .. } | ApiError::Disabled(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Upstream(f) => upstream_status(f),
            ApiError::Incomplete => StatusCode::BAD_GATEWAY,
        }
    }

    fn kind(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ApiError::BadRequest(_) => ("invalid_request_error", None),
            ApiError::Unauthorized => ("unauthorized", None),
            ApiError::LockedOut(_) => ("rate_limit_error", None),
            ApiError::NotFound(_) | ApiError::Disabled(_) => ("not_found_error", None),
            ApiError::UnknownModel { .. } => ("invalid_request_error", Some("model_not_found")),
            ApiError::Incomplete => ("api_error", None),
            ApiError::Upstream(f) => match f.last.as_ref().map(|e| e.kind) {
                Some(ErrorKind::BadRequest) => ("invalid_request_error", None),
                Some(ErrorKind::ContextOverflow) => {
                    ("invalid_request_error", Some("context_length_exceeded"))
                }
                Some(ErrorKind::RateLimit) => ("rate_limit_error", None),
                _ => ("api_error", None),
            },
        }
    }

    /// The error as an OpenAI-style JSON body (also used inside streams).
    pub fn body(&self) -> serde_json::Value {
        let (kind, code) = self.kind();
        json!({"error": {"message": self.to_string(), "type": kind, "param": null, "code": code}})
    }
}

/// Whose fault, as a status: the request's (400), the upstreams' (502), a
/// rate limit (429), or everyone cooling down or overloaded (503).
fn upstream_status(f: &AllFailed) -> StatusCode {
    match f.last.as_ref().map(|e| e.kind) {
        Some(ErrorKind::BadRequest | ErrorKind::ContextOverflow) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::RateLimit) => StatusCode::TOO_MANY_REQUESTS,
        Some(ErrorKind::Overloaded | ErrorKind::ModelLoading) => StatusCode::SERVICE_UNAVAILABLE,
        Some(ErrorKind::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        None => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
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
