//! Pincer's web chat at `/`: one page, its script and its styles, compiled
//! into the binary (no CDN, nothing fetched at run time). It speaks
//! OpenClaw's WebSocket protocol to the gateway like any other client, and
//! asks for the gateway token itself (kept in the browser), so the page is
//! served without auth; everything it does goes through `connect`.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("webchat/index.html");
const SCRIPT: &str = include_str!("webchat/app.js");
const STYLE: &str = include_str!("webchat/style.css");

/// The page may load only its own script and styles, and talk only to
/// this gateway.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn page() -> Response {
    serve("text/html; charset=utf-8", INDEX)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => serve("text/javascript; charset=utf-8", SCRIPT),
        "style.css" => serve("text/css; charset=utf-8", STYLE),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
