//! One turn over an agent's candidate models: each is tried in order until
//! one starts answering. What happened to every candidate is kept, failing
//! providers are cooled down, and the decision to move on depends on the kind
//! of failure.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pincer_catalog::{Catalog, ModelSpec};
use pincer_llm::{ChatRequest, ErrorKind, Event, ProviderError};

use crate::cooldown::{Cooldowns, key_for, now_ms};
use crate::providers::{AnswerStream, Providers};

/// What became of one candidate.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub model: String,
    /// `None` when the candidate was skipped without a call.
    pub kind: Option<ErrorKind>,
    pub message: String,
    pub took: Duration,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Some(k) => write!(f, "{}: {} ({k})", self.model, self.message),
            None => write!(f, "{}: skipped, {}", self.model, self.message),
        }
    }
}

/// Every candidate failed (or a bad request stopped the turn).
#[derive(Debug, thiserror::Error)]
#[error("{}", summary(.attempts, *.retry_at_ms))]
pub struct AllFailed {
    pub attempts: Vec<Attempt>,
    /// When the earliest cooldown among the candidates ends (ms since epoch).
    pub retry_at_ms: Option<u64>,
    /// The error to answer with when one failure decides the turn.
    pub last: Option<ProviderError>,
}

fn summary(attempts: &[Attempt], retry_at_ms: Option<u64>) -> String {
    let mut s = format!("no model answered ({} tried):", attempts.len());
    for a in attempts {
        s.push_str(&format!("\n  {a}"));
    }
    if let Some(at) = retry_at_ms {
        let secs = at.saturating_sub(now_ms()).div_ceil(1000);
        s.push_str(&format!("\n  the earliest cooldown ends in {secs} s"));
    }
    s
}

/// What to do after a candidate failed with this kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the next candidate.
    Next,
    /// Only a candidate with a larger context window can help.
    NextLargerWindow,
    /// Stop: the request itself is wrong and would fail everywhere.
    Stop,
}

pub fn decide(kind: ErrorKind) -> Decision {
    match kind {
        ErrorKind::BadRequest => Decision::Stop,
        ErrorKind::ContextOverflow => Decision::NextLargerWindow,
        _ => Decision::Next,
    }
}

/// Calls candidates with failover and remembers who is cooling down.
pub struct Router {
    providers: Providers,
    cooldowns: Mutex<Cooldowns>,
    state_file: Option<PathBuf>,
}

/// A candidate that has started answering: events read while waiting for
/// its first token come first, then the rest of its stream.
pub struct Answering<'r> {
    router: &'r Router,
    pub spec: ModelSpec,
    pub attempts: Vec<Attempt>,
    pending: VecDeque<Event>,
    stream: AnswerStream,
}

impl Answering<'_> {
    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        if let Some(e) = self.pending.pop_front() {
            return Some(Ok(e));
        }
        let item = self.stream.next().await;
        if let Some(Err(e)) = &item {
            self.router.failed(&self.spec, e);
        }
        item
    }
}

impl Router {
    /// `state_file` keeps cooldowns across restarts (`None`: memory only).
    pub fn new(providers: Providers, state_file: Option<PathBuf>) -> Router {
        let cooldowns = state_file
            .as_deref()
            .and_then(|p| Cooldowns::load(p).ok())
            .unwrap_or_default();
        Router {
            providers,
            cooldowns: Mutex::new(cooldowns),
            state_file,
        }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Tries `candidates` in order until one produces its first token.
    pub async fn start(
        &self,
        catalog: &Catalog<'_>,
        candidates: &[ModelSpec],
        session: &str,
        req: &ChatRequest,
    ) -> Result<Answering<'_>, AllFailed> {
        let mut attempts = Vec::new();
        let mut last = None;
        let mut overflowed_at: Option<u64> = None;
        let now = now_ms();
        let cooling: Vec<Option<(u64, String)>> =
            candidates.iter().map(|s| self.cooling(s, now)).collect();
        // When every candidate is cooling down, all are tried anyway (as
        // probes): failing without a call helps nobody, and the first to have
        // recovered answers. With one healthy candidate, cooled ones cost nothing.
        let probe_all = cooling.iter().all(Option::is_some);
        for (i, spec) in candidates.iter().enumerate() {
            if let Some((until, reason)) = &cooling[i]
                && !probe_all
            {
                attempts.push(Attempt {
                    model: spec.reference.clone(),
                    kind: None,
                    message: format!(
                        "{} is cooling down for {} s after {reason}",
                        spec.provider,
                        until.saturating_sub(now).div_ceil(1000)
                    ),
                    took: Duration::ZERO,
                });
                continue;
            }
            if let Some(window) = overflowed_at
                && window_of(spec) <= window
            {
                attempts.push(Attempt {
                    model: spec.reference.clone(),
                    kind: None,
                    message: format!("its context window ({}) is not larger", window_of(spec)),
                    took: Duration::ZERO,
                });
                continue;
            }
            let started = Instant::now();
            match self.try_one(catalog, spec, session, req).await {
                Ok((stream, pending)) => {
                    self.succeeded(spec);
                    return Ok(Answering {
                        router: self,
                        spec: spec.clone(),
                        attempts,
                        pending,
                        stream,
                    });
                }
                Err(e) => {
                    self.failed(spec, &e);
                    attempts.push(Attempt {
                        model: spec.reference.clone(),
                        kind: Some(e.kind),
                        message: e.message.clone(),
                        took: started.elapsed(),
                    });
                    let decision = decide(e.kind);
                    last = Some(e);
                    match decision {
                        Decision::Stop => break,
                        Decision::NextLargerWindow => {
                            let w = window_of(spec);
                            overflowed_at = Some(overflowed_at.map_or(w, |o| o.max(w)));
                        }
                        Decision::Next => {}
                    }
                }
            }
        }
        let now = now_ms();
        let retry_at_ms = candidates
            .iter()
            .filter_map(|s| self.cooling(s, now).map(|c| c.0))
            .min();
        Err(AllFailed {
            attempts,
            retry_at_ms,
            last,
        })
    }

    /// Opens the stream and reads it up to the first token of the answer.
    async fn try_one(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        session: &str,
        req: &ChatRequest,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let mut stream = self.providers.stream(catalog, spec, session, req).await?;
        let mut pending = VecDeque::new();
        while let Some(item) = stream.next().await {
            let event = item?;
            let answered = matches!(
                &event,
                Event::Text { delta } if !delta.trim().is_empty()
            ) || matches!(event, Event::ToolCall { .. });
            let done = matches!(event, Event::Done { .. });
            pending.push_back(event);
            if answered {
                return Ok((stream, pending));
            }
            if done {
                break;
            }
        }
        let reasoned = pending
            .iter()
            .any(|e| matches!(e, Event::Reasoning { delta } if !delta.trim().is_empty()));
        Err(ProviderError::new(
            ErrorKind::EmptyReply,
            if reasoned {
                "the model reasoned but gave no answer"
            } else {
                "the model gave an empty answer"
            },
        ))
    }

    /// The running cooldown of this model or its provider.
    fn cooling(&self, spec: &ModelSpec, now: u64) -> Option<(u64, String)> {
        let c = self.cooldowns.lock().ok()?;
        [spec.provider.as_str(), spec.reference.as_str()]
            .into_iter()
            .filter_map(|k| c.active(k, now))
            .max_by_key(|(until, _)| *until)
            .map(|(until, reason)| (until, reason.to_string()))
    }

    fn failed(&self, spec: &ModelSpec, e: &ProviderError) {
        let key = key_for(e.kind, &spec.provider, &spec.reference);
        self.update(|c| c.record_failure(&key, e.kind, e.retry_after, now_ms()));
    }

    fn succeeded(&self, spec: &ModelSpec) {
        self.update(|c| {
            c.record_success(&spec.provider);
            c.record_success(&spec.reference);
        });
    }

    fn update(&self, f: impl FnOnce(&mut Cooldowns)) {
        let Ok(mut c) = self.cooldowns.lock() else {
            return;
        };
        let before = c.clone();
        f(&mut c);
        if *c != before
            && let Some(path) = &self.state_file
        {
            // Health state is advisory: failing to persist it must not fail
            // the user's turn; the next change tries again.
            let _ = c.save(path);
        }
    }
}

fn window_of(spec: &ModelSpec) -> u64 {
    spec.context_tokens.unwrap_or(spec.context_window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_by_kind() {
        assert_eq!(decide(ErrorKind::BadRequest), Decision::Stop);
        assert_eq!(
            decide(ErrorKind::ContextOverflow),
            Decision::NextLargerWindow
        );
        for k in [
            ErrorKind::Connection,
            ErrorKind::Timeout,
            ErrorKind::Overloaded,
            ErrorKind::Server,
            ErrorKind::RateLimit,
            ErrorKind::Auth,
            ErrorKind::Billing,
            ErrorKind::ModelNotFound,
            ErrorKind::ModelLoading,
            ErrorKind::Protocol,
            ErrorKind::EmptyReply,
        ] {
            assert_eq!(decide(k), Decision::Next, "{k}");
        }
    }
}
