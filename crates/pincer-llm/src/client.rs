//! Sending a `ChatRequest` to a `Target` over HTTP and reading the reply as
//! events, streamed or whole, with every failure typed.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout};

use crate::classify::{classify_http, scrub};
use crate::dialect::{ANTHROPIC_VERSION, Dialect, StreamDecoder, WireRequest};
use crate::preflight::preflight;
use crate::target::Target;
use pincer_types::ChatRequest;
use pincer_types::{ErrorKind, ProviderError};
use pincer_types::{Event, Reply};

/// Error bodies longer than this are cut: the message is all we keep.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A whole (non-streamed) reply larger than this is refused.
const MAX_REPLY_BODY: usize = 32 * 1024 * 1024;

/// Whether `req` goes out streamed: not when it has tools and the server
/// loses streamed tool calls (`compat.supportsStreamingToolCalls: false`);
/// its whole reply is then read as the stream's events. The router asks
/// too: a whole reply has no first token to wait for.
pub fn streamed(compat: &pincer_config::Compat, req: &ChatRequest) -> bool {
    compat.supports_streaming_tool_calls != Some(false) || req.tools.is_empty()
}

/// One HTTP client shared by every call (keeps connections alive).
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
}

impl Client {
    pub fn new() -> Result<Client, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Under the 5 s keep-alive of cpp-httplib (llama.cpp's server),
            // so idle connections are dropped by us before the server does.
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::new(ErrorKind::Connection, e.to_string()))?;
        Ok(Client { http })
    }

    /// Start a streamed reply. Returns once the server has answered with a
    /// success status; events then come from `EventStream::next`.
    pub async fn stream(
        &self,
        t: &Target,
        req: &ChatRequest,
    ) -> Result<EventStream, ProviderError> {
        let deadline = Instant::now() + t.timeouts.first_event;
        let stream = streamed(&t.compat, req);
        let response = self.send(t, req, stream, deadline).await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        Ok(EventStream {
            response: Some(response),
            decoder: t.dialect.stream_decoder(),
            dialect: t.dialect,
            whole_json: is_json,
            queue: VecDeque::new(),
            first_deadline: Some(deadline),
            first_timeout: t.timeouts.first_event,
            idle: t.timeouts.idle,
            secrets: t.secrets().iter().map(|s| s.to_string()).collect(),
            finished: false,
        })
    }

    /// A whole reply in one request (`stream: false`).
    pub async fn complete(&self, t: &Target, req: &ChatRequest) -> Result<Reply, ProviderError> {
        let deadline = Instant::now() + t.timeouts.first_event;
        let response = self.send(t, req, false, deadline).await?;
        let body = read_body(response, MAX_REPLY_BODY, Some(deadline)).await?;
        let events = t
            .dialect
            .parse_reply(&body)
            .map_err(|e| scrubbed(e, &t.secrets()))?;
        Ok(Reply::from_events(&events))
    }

    async fn send(
        &self,
        t: &Target,
        req: &ChatRequest,
        stream: bool,
        deadline: Instant,
    ) -> Result<reqwest::Response, ProviderError> {
        let max_tokens = preflight(t, req)?;
        let wire = WireRequest {
            model_id: &t.model_id,
            req,
            max_tokens,
            context_window: t.context_window,
            stream,
            reasoning: t.reasoning,
            local: t.local,
            compat: &t.compat,
            params: t.params.as_ref(),
        };
        let body = t.dialect.body(&wire);
        let headers = headers(t)?;
        let secrets = t.secrets();
        let mut retried = false;
        let response = loop {
            let sent = Instant::now();
            let request = self
                .http
                .post(t.dialect.url(&t.base_url))
                .headers(headers.clone())
                .json(&body);
            match tokio::time::timeout_at(deadline, request.send()).await {
                Err(_) => {
                    return Err(ProviderError::new(
                        ErrorKind::Timeout,
                        format!(
                            "no answer from {} within {} s",
                            t.reference,
                            t.timeouts.first_event.as_secs()
                        ),
                    ));
                }
                // A kept-alive connection the server closed as we reused it
                // (llama.cpp's server does this after a few requests): the
                // request never reached the model, so one retry on a fresh
                // connection is safe and is not an outage. Only when it
                // closed at once: a server that took the request and went
                // silent before closing has seen it, and is not asked twice.
                Ok(Err(e))
                    if !retried && sent.elapsed() < STALE_CLOSE && closed_before_reply(&e) =>
                {
                    retried = true;
                }
                Ok(Err(e)) => return Err(transport_error(&e, &secrets)),
                Ok(Ok(r)) => break r,
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = read_body(response, MAX_ERROR_BODY, Some(deadline))
            .await
            .unwrap_or_default();
        Err(classify_http(
            status.as_u16(),
            &text,
            retry_after.as_deref(),
            &secrets,
        ))
    }
}

pub(crate) fn headers(t: &Target) -> Result<HeaderMap, ProviderError> {
    let mut h = HeaderMap::new();
    let bad = |what: &str| {
        ProviderError::new(
            ErrorKind::BadRequest,
            format!("{}: {what} is not a valid HTTP header", t.reference),
        )
    };
    let mut secret = |name: HeaderName, value: &str| -> Result<(), ProviderError> {
        let mut v = HeaderValue::from_str(value).map_err(|_| bad(name.as_str()))?;
        v.set_sensitive(true);
        h.insert(name, v);
        Ok(())
    };
    match (t.dialect, &t.api_key) {
        (Dialect::AnthropicMessages, Some(k)) => {
            secret(HeaderName::from_static("x-api-key"), k.expose_secret())?;
        }
        (_, Some(k)) => secret(
            reqwest::header::AUTHORIZATION,
            &format!("Bearer {}", k.expose_secret()),
        )?,
        (_, None) => {}
    }
    for (name, value) in &t.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(name))?;
        secret(name, value.expose_secret())?;
    }
    if t.dialect == Dialect::AnthropicMessages && !h.contains_key("anthropic-version") {
        h.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    Ok(h)
}

pub(crate) fn transport_error(e: &reqwest::Error, secrets: &[&str]) -> ProviderError {
    // A connect timeout is the server being unreachable (it cools down the
    // provider), not a slow model.
    let kind = if e.is_connect() {
        ErrorKind::Connection
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Protocol
    } else {
        // Connected, then dropped before a reply: the server is up.
        ErrorKind::Reset
    };
    // reqwest's message hides the cause; the chain says "connection refused".
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    ProviderError::new(kind, scrub(&message, secrets))
}

/// How soon a closed kept-alive connection counts as stale (closed as it was
/// reused) rather than as a server that saw the request and gave up.
const STALE_CLOSE: Duration = Duration::from_millis(500);

/// The connection closed before any byte of the response arrived.
fn closed_before_reply(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        source = s.source();
    }
    false
}

fn scrubbed(mut e: ProviderError, secrets: &[&str]) -> ProviderError {
    e.message = scrub(&e.message, secrets);
    e
}

pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    deadline: Option<Instant>,
) -> Result<String, ProviderError> {
    let mut buf = Vec::new();
    loop {
        let chunk = match deadline {
            Some(d) => tokio::time::timeout_at(d, response.chunk())
                .await
                .map_err(|_| ProviderError::new(ErrorKind::Timeout, "reply body timed out"))?,
            None => response.chunk().await,
        };
        match chunk.map_err(|e| transport_error(&e, &[]))? {
            Some(c) => {
                if buf.len() + c.len() > limit {
                    return Err(ProviderError::new(
                        ErrorKind::Protocol,
                        format!("reply larger than {limit} bytes"),
                    ));
                }
                buf.extend_from_slice(&c);
            }
            None => break,
        }
    }
    String::from_utf8(buf)
        .map_err(|_| ProviderError::new(ErrorKind::Protocol, "reply is not valid UTF-8"))
}

/// A streamed reply. Ends with `Event::Done`, or with one error.
pub struct EventStream {
    /// None once the body has been read whole.
    response: Option<reqwest::Response>,
    decoder: StreamDecoder,
    dialect: Dialect,
    /// The server ignored `stream: true` and sent one JSON reply.
    whole_json: bool,
    queue: VecDeque<Event>,
    first_deadline: Option<Instant>,
    first_timeout: Duration,
    idle: Duration,
    secrets: Vec<String>,
    finished: bool,
}

impl EventStream {
    /// The next event; `None` after `Done` or after an error.
    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(Ok(e));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fill().await {
                self.finished = true;
                let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
                return Some(Err(scrubbed(e, &secrets)));
            }
        }
    }

    async fn fill(&mut self) -> Result<(), ProviderError> {
        if self.whole_json {
            self.finished = true;
            let Some(response) = self.response.take() else {
                return Ok(());
            };
            let body = read_body(response, MAX_REPLY_BODY, self.first_deadline).await?;
            self.queue.extend(self.dialect.parse_reply(&body)?);
            return Ok(());
        }
        if let Some(e) = self.decoder.take_failure() {
            return Err(e);
        }
        let Some(response) = self.response.as_mut() else {
            self.finished = true;
            return Ok(());
        };
        let chunk = match self.first_deadline {
            Some(d) => tokio::time::timeout_at(d, response.chunk()).await,
            None => timeout(self.idle, response.chunk()).await,
        };
        let chunk = match chunk {
            Err(_) => {
                let message = match self.first_deadline {
                    Some(_) => format!("no first event within {} s", self.first_timeout.as_secs()),
                    None => format!("the stream stalled: nothing for {} s", self.idle.as_secs()),
                };
                return Err(ProviderError::new(ErrorKind::Timeout, message));
            }
            Ok(r) => r.map_err(|e| {
                let mut err = transport_error(&e, &[]);
                err.kind = ErrorKind::Protocol;
                err.message = format!("stream cut: {}", err.message);
                err
            })?,
        };
        match chunk {
            Some(bytes) => {
                let events = self.decoder.feed(&bytes)?;
                if !events.is_empty() {
                    self.first_deadline = None;
                }
                self.finished = self.decoder.is_done();
                self.queue.extend(events);
            }
            None => {
                self.queue.extend(self.decoder.finish()?);
                self.finished = true;
            }
        }
        Ok(())
    }
}
