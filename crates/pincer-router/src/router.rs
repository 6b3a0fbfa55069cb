//! One turn over an agent's candidate models: each is tried in order until
//! one starts answering. What happened to every candidate is kept, failing
//! providers are cooled down, and the decision to move on depends on the kind
//! of failure.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pincer_catalog::{Catalog, ModelSpec};
use pincer_config::Api;
use pincer_llm::{
    ChatRequest, ErrorKind, Event, LoadState, Message, ProviderError, Reply, Timeouts,
    refuses_prefill,
};

use crate::cooldown::{Cooldowns, now_ms};
use crate::keys::Credential;
use crate::policy::{Decision, Scope, cooldown_key, decide, policy};
use crate::providers::{AnswerStream, Providers};

/// With no first token after this long, the server is asked whether the
/// model is loading, so the user hears why it is slow.
const SLOW_START: Duration = Duration::from_secs(2);
/// How often a model that is loading is asked again.
const LOADING_POLL: Duration = Duration::from_secs(1);
/// The longest `Retry-After` worth waiting for when no other model is left.
const MAX_SAME_MODEL_WAIT: Duration = Duration::from_secs(20);
/// The pause before asking a model again after one transient failure (plus
/// up to as much again of jitter, so many turns do not return at once).
const TRANSIENT_BACKOFF: Duration = Duration::from_millis(250);

/// Something worth telling the user (and the log) while a turn is under way.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The model is being loaded: a cold start, not an outage.
    Loading { model: String, on: String },
    /// A candidate failed or was skipped; `attempt.next` says what followed.
    Attempt(Attempt),
    /// A model failed mid-answer; another continues the same answer.
    Continued { from: String, to: String },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Loading { model, on } => write!(f, "loading model {model} on {on}…"),
            Notice::Attempt(a) => f.write_str(&a.told()),
            Notice::Continued { from, to } => {
                write!(f, "{from} stopped mid-answer; {to} continues it")
            }
        }
    }
}

type Observer = Arc<dyn Fn(&Notice) + Send + Sync>;

/// What followed a failed or skipped candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The same model was asked again after this pause (a short
    /// `Retry-After`, one transient failure, or without the refused prefill).
    SameModel(Duration),
    /// The provider's next key was tried.
    Key(String),
    /// The turn moved on to this candidate.
    Model(String),
    /// No candidate was left (or the request itself was refused).
    Nothing,
}

impl Next {
    /// A label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Next::SameModel(_) => "same_model",
            Next::Key(_) => "next_key",
            Next::Model(_) => "next_model",
            Next::Nothing => "none",
        }
    }

    fn after(next: Option<&ModelSpec>) -> Next {
        next.map_or(Next::Nothing, |s| Next::Model(s.reference.clone()))
    }
}

impl std::fmt::Display for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Next::SameModel(d) if d.is_zero() => f.write_str("asking it again"),
            Next::SameModel(d) => write!(f, "asking it again in {:.1} s", d.as_secs_f32()),
            Next::Key(k) => write!(f, "trying key {k}"),
            Next::Model(m) => write!(f, "trying {m}"),
            Next::Nothing => f.write_str("no model left to try"),
        }
    }
}

/// What became of one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub model: String,
    /// `None` when the candidate was skipped without a call.
    pub kind: Option<ErrorKind>,
    pub message: String,
    pub took: Duration,
    pub next: Next,
}

impl Attempt {
    /// The attempt and what came next, as the log and transcripts tell it.
    pub fn told(&self) -> String {
        format!("{self}; {}", self.next)
    }
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
    // Models, not calls: a model asked again, with another key, or skipped
    // and then probed, counts once.
    let calls = attempts
        .iter()
        .map(|a| a.model.split(" (key ").next().unwrap_or_default())
        .collect::<HashSet<_>>()
        .len();
    let mut s = format!("no model answered ({calls} tried):");
    for a in attempts {
        s.push_str(&format!("\n  {a}"));
        if let Next::SameModel(_) | Next::Key(_) = a.next {
            s.push_str(&format!("; {}", a.next));
        }
    }
    if let Some(at) = retry_at_ms {
        let secs = at.saturating_sub(now_ms()).div_ceil(1000);
        s.push_str(&format!("\n  the earliest cooldown ends in {secs} s"));
    }
    s
}

/// A complete answer and how it came about.
#[derive(Debug)]
pub struct Completed {
    pub spec: ModelSpec,
    pub attempts: Vec<Attempt>,
    pub reply: Reply,
}

/// Who a call is for and what it asks.
#[derive(Clone, Copy)]
struct Call<'a> {
    agent: &'a str,
    session: &'a str,
    req: &'a ChatRequest,
}

/// Calls candidates with failover and remembers who is cooling down.
pub struct Router {
    providers: Providers,
    cooldowns: Mutex<Cooldowns>,
    state_file: Option<PathBuf>,
    /// Numbers each change of `cooldowns`; `written` is the last one saved.
    generation: AtomicU64,
    written: Mutex<u64>,
    /// Models that refused an assistant prefill: a continuation on them
    /// restarts the answer instead of making a call that will be refused.
    no_prefill: Mutex<HashSet<String>>,
    observer: Observer,
}

/// A candidate that has started answering: events read while waiting for
/// its first token come first, then the rest of its stream. If it fails
/// mid-answer, a later candidate picks up where it stopped (continuing a
/// prefilled answer, or restarting it when the restart repeats what was
/// already sent); otherwise the error is returned, never a silent truncation.
pub struct Answering<'r> {
    router: &'r Router,
    catalog: &'r Catalog<'r>,
    /// The model answering now (the one that continued, after a failover).
    pub spec: ModelSpec,
    pub attempts: Vec<Attempt>,
    pending: VecDeque<Event>,
    stream: AnswerStream,
    agent: String,
    session: String,
    req: ChatRequest,
    /// Candidates after the one answering, for a continuation.
    rest: Vec<ModelSpec>,
    /// The answer's text so far, and whether it called a tool.
    text: String,
    tool_called: bool,
    echo: Option<Echo>,
    /// The model that broke off first and its failure, which a continuation
    /// is rescuing (reported if the rescue fails).
    rescuing: Option<(String, ProviderError)>,
    /// Set once an error was returned: the stream is over.
    ended: bool,
    /// Whether a break mid-answer is continued elsewhere (a caller that
    /// shows nothing until the end restarts instead).
    continues: bool,
}

/// The text already sent, as a continuation may repeat it: llama.cpp echoes
/// a prefill, and a restarted answer must begin with it.
struct Echo {
    sent: String,
    seen: String,
    /// A restart: an answer that does not begin with `sent` cannot be used.
    required: bool,
}

/// What the continuation's first text turned out to be.
enum Echoed {
    /// Still possibly the repeat: wait for more.
    Pending,
    /// The new text after the repeat (or all of it, when nothing repeated).
    Fresh(String),
    /// A restart that said something else.
    Diverged,
}

impl Echo {
    fn strip(&mut self, delta: &str) -> Echoed {
        self.seen.push_str(delta);
        let sent = self.sent.trim_start();
        let seen = self.seen.trim_start();
        if seen.len() >= sent.len() {
            return match seen.strip_prefix(sent) {
                Some(rest) => Echoed::Fresh(rest.to_string()),
                None if self.required => Echoed::Diverged,
                None => Echoed::Fresh(std::mem::take(&mut self.seen)),
            };
        }
        if sent.starts_with(seen) {
            Echoed::Pending
        } else if self.required {
            Echoed::Diverged
        } else {
            Echoed::Fresh(std::mem::take(&mut self.seen))
        }
    }
}

impl Answering<'_> {
    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        if self.ended {
            return None;
        }
        loop {
            let event = match self.pending.pop_front() {
                Some(e) => e,
                None => match self.stream.next().await? {
                    Ok(e) => e,
                    Err(e) => {
                        self.router
                            .failed(self.catalog, &self.spec, &self.agent, &e);
                        self.record_stop(&e);
                        let original = self.original_failure();
                        if self.continue_elsewhere().await {
                            continue;
                        }
                        return Some(Err(self.end(original)));
                    }
                },
            };
            match self.deliver(event) {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => {}
                Err(()) => {
                    // A restart that did not repeat the answer so far.
                    let original = self.original_failure();
                    self.attempts.push(Attempt {
                        model: self.spec.reference.clone(),
                        kind: Some(ErrorKind::BadRequest),
                        message: "refused to continue the answer (no prefill), and its new \
                                  answer did not begin with the text already sent"
                            .to_string(),
                        took: Duration::ZERO,
                        next: Next::after(self.rest.first()),
                    });
                    if self.continue_elsewhere().await {
                        continue;
                    }
                    return Some(Err(self.end(original)));
                }
            }
        }
    }

    /// The model whose failure broke the answer (it may differ from `spec`
    /// when a continuation took over and failed too).
    pub fn stopped_model(&self) -> &str {
        self.rescuing
            .as_ref()
            .map_or(self.spec.reference.as_str(), |(m, _)| m.as_str())
    }

    fn original_failure(&self) -> ProviderError {
        self.rescuing.as_ref().map_or_else(
            || ProviderError::new(ErrorKind::Protocol, "the answer broke off"),
            |(_, e)| e.clone(),
        )
    }

    /// The error that ends the stream: the failure that broke the answer,
    /// with what was tried to rescue it.
    fn end(&mut self, mut original: ProviderError) -> ProviderError {
        self.ended = true;
        let notes: Vec<String> = self
            .attempts
            .iter()
            .filter(|a| a.message.contains("prefill"))
            .map(ToString::to_string)
            .collect();
        if !notes.is_empty() {
            original.message = format!("{} (note: {})", original.message, notes.join("; "));
        }
        original
    }

    /// The answering model broke off: that goes in the attempts (and the log).
    fn record_stop(&mut self, e: &ProviderError) {
        if self.rescuing.is_none() {
            self.rescuing = Some((self.spec.reference.clone(), e.clone()));
        }
        let next = if self.continues && (self.tool_called || self.text.trim().is_empty()) {
            Next::Nothing
        } else {
            Next::after(self.rest.first())
        };
        self.router.record(
            &mut self.attempts,
            Attempt {
                model: self.spec.reference.clone(),
                kind: Some(e.kind),
                message: format!("stopped mid-answer: {}", e.message),
                took: Duration::ZERO,
                next,
            },
        );
    }

    /// Drops a repeated prefill (or the restarted part of an answer) and
    /// keeps track of the answer so far. `Err` when a restart diverged.
    fn deliver(&mut self, event: Event) -> Result<Option<Event>, ()> {
        let event = match (event, &mut self.echo) {
            (Event::Text { delta }, Some(echo)) => match echo.strip(&delta) {
                Echoed::Pending => return Ok(None),
                Echoed::Diverged => return Err(()),
                Echoed::Fresh(fresh) => {
                    self.echo = None;
                    if fresh.is_empty() {
                        return Ok(None);
                    }
                    Event::Text { delta: fresh }
                }
            },
            // A restart's reasoning was shown already, in the first answer.
            (Event::Reasoning { .. }, Some(echo)) if echo.required => return Ok(None),
            (Event::ToolCall { .. }, Some(echo)) if echo.required => return Err(()),
            (e @ Event::Done { .. }, Some(echo)) => {
                if echo.required {
                    return Err(());
                }
                self.echo = None;
                e
            }
            (e, _) => e,
        };
        match &event {
            Event::Text { delta } => self.text.push_str(delta),
            Event::ToolCall { .. } => self.tool_called = true,
            _ => {}
        }
        Ok(Some(event))
    }

    /// After a failure mid-answer: the next candidate carries on from the
    /// text so far, continuing it as a prefill, or restarting the answer
    /// where it refuses prefills (only a restart that repeats the text so
    /// far is used).
    async fn continue_elsewhere(&mut self) -> bool {
        if !self.continues || self.tool_called || self.text.trim().is_empty() {
            return false;
        }
        let mut prefilled = self.req.clone();
        prefilled
            .messages
            .push(Message::assistant(self.text.clone()));
        let now = now_ms();
        while !self.rest.is_empty() {
            let spec = self.rest.remove(0);
            let next = Next::after(self.rest.first());
            if let Some((until, reason)) = self.router.cooling(&spec, now) {
                let attempt = skipped(&spec, until, &reason, now, next);
                self.router.record(&mut self.attempts, attempt);
                continue;
            }
            if !Router::continues_prefill(&spec) {
                self.router.record(
                    &mut self.attempts,
                    Attempt {
                        model: spec.reference.clone(),
                        kind: None,
                        message: "its API cannot continue an answer".into(),
                        took: Duration::ZERO,
                        next,
                    },
                );
                continue;
            }
            let mut restart = self.router.refuses_prefill(&spec);
            loop {
                let req = if restart { &self.req } else { &prefilled };
                let started = Instant::now();
                let call = Call {
                    agent: &self.agent,
                    session: &self.session,
                    req,
                };
                let tried = self
                    .router
                    .try_candidate(self.catalog, &spec, call, false, &mut self.attempts)
                    .await;
                match tried {
                    Ok((stream, pending)) => {
                        self.router.succeeded(&spec);
                        self.router.notify(Notice::Continued {
                            from: self.spec.reference.clone(),
                            to: spec.reference.clone(),
                        });
                        self.stream = stream;
                        self.pending = pending;
                        self.spec = spec;
                        self.echo = Some(Echo {
                            sent: self.text.clone(),
                            seen: String::new(),
                            required: restart,
                        });
                        return true;
                    }
                    Err(e) if !restart && refuses_prefill(&e) => {
                        self.router.remember_no_prefill(&spec);
                        self.router.record(
                            &mut self.attempts,
                            Attempt {
                                model: spec.reference.clone(),
                                kind: Some(e.kind),
                                message: format!("refused the prefill: {}", e.message),
                                took: started.elapsed(),
                                next: Next::SameModel(Duration::ZERO),
                            },
                        );
                        restart = true;
                    }
                    Err(e) => {
                        self.router.failed(self.catalog, &spec, &self.agent, &e);
                        self.router.record(
                            &mut self.attempts,
                            Attempt {
                                model: spec.reference.clone(),
                                kind: Some(e.kind),
                                message: e.message.clone(),
                                took: started.elapsed(),
                                next: Next::after(self.rest.first()),
                            },
                        );
                        break;
                    }
                }
            }
        }
        false
    }
}

/// Whether a candidate cooling down for `reason` is worth a probe when
/// every other candidate failed: yes for a server's trouble; no for a rate
/// limit (its `Retry-After` is a floor), billing or a refused key.
fn probe_worthy(reason: &str) -> bool {
    !matches!(reason, "rate_limit" | "billing" | "auth")
}

/// The attempt for a candidate skipped while it cools down.
fn skipped(spec: &ModelSpec, until: u64, reason: &str, now: u64, next: Next) -> Attempt {
    Attempt {
        model: spec.reference.clone(),
        kind: None,
        message: format!(
            "{} is cooling down for {} s after {reason}",
            spec.provider,
            until.saturating_sub(now).div_ceil(1000)
        ),
        took: Duration::ZERO,
        next,
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
            generation: AtomicU64::new(0),
            written: Mutex::new(0),
            no_prefill: Mutex::new(HashSet::new()),
            observer: Arc::new(|_| {}),
        }
    }

    /// Calls `observer` with each `Notice` (loads, failed and skipped
    /// candidates with what followed, continuations).
    pub fn with_notices(mut self, observer: impl Fn(&Notice) + Send + Sync + 'static) -> Router {
        self.observer = Arc::new(observer);
        self
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Records what became of a candidate and tells the observer.
    fn record(&self, attempts: &mut Vec<Attempt>, attempt: Attempt) {
        self.notify(Notice::Attempt(attempt.clone()));
        attempts.push(attempt);
    }

    /// Tries `candidates` in order until one produces its first token.
    /// `agent` picks whose keys are used; `session` whose turn it is on a
    /// shared embedded model.
    pub async fn start<'a>(
        &'a self,
        catalog: &'a Catalog<'a>,
        candidates: &[ModelSpec],
        agent: &str,
        session: &str,
        req: &ChatRequest,
    ) -> Result<Answering<'a>, AllFailed> {
        let call = Call {
            agent,
            session,
            req,
        };
        let mut attempts = Vec::new();
        let mut last = None;
        let mut overflowed_at: Option<u64> = None;
        // Providers found unreachable in this turn: their other models are
        // skipped, not called (a model's own failure leaves its siblings on).
        let mut down: Vec<(String, ErrorKind)> = Vec::new();
        let now = now_ms();
        let cooling: Vec<Option<(u64, String)>> =
            candidates.iter().map(|s| self.cooling(s, now)).collect();
        // Candidates cooling down are skipped while another may answer; when
        // none did, those cooled for a server's trouble (not a rate limit,
        // billing or a key: those windows are the provider's word) are tried
        // after all (as probes), in order: failing without a call helps
        // nobody, and the first to have recovered answers. With one healthy
        // candidate, cooled ones cost nothing.
        let all_cooling = cooling.iter().all(Option::is_some);
        let mut probing = all_cooling;
        let mut queue: VecDeque<usize> = (0..candidates.len()).collect();
        let mut deferred: Vec<usize> = Vec::new();
        loop {
            if queue.is_empty() && !probing {
                probing = true;
                queue.extend(deferred.drain(..));
            }
            let Some(i) = queue.pop_front() else { break };
            let spec = &candidates[i];
            let cooled_now = cooling[i].as_ref().filter(|_| !probing);
            // A cooled candidate skipped now may be probed later: it is
            // deferred before what comes next is told.
            if let Some((_, reason)) = cooled_now
                && probe_worthy(reason)
            {
                deferred.push(i);
            }
            let following = queue
                .front()
                .or(if probing { None } else { deferred.first() })
                .map(|&j| &candidates[j]);
            let next = Next::after(following);
            let skip = |message: String| Attempt {
                model: spec.reference.clone(),
                kind: None,
                message,
                took: Duration::ZERO,
                next: next.clone(),
            };
            if let Some((until, reason)) = cooled_now {
                let attempt = skipped(spec, *until, reason, now, next.clone());
                self.record(&mut attempts, attempt);
                continue;
            }
            if let Some((_, kind)) = down.iter().find(|(p, _)| *p == spec.provider) {
                let attempt = skip(format!("{} is down ({kind}) in this turn", spec.provider));
                self.record(&mut attempts, attempt);
                continue;
            }
            if let Some(window) = overflowed_at
                && spec.budget() <= window
            {
                let attempt = skip(format!(
                    "its context window ({}) is not larger",
                    spec.budget()
                ));
                self.record(&mut attempts, attempt);
                continue;
            }
            let started = Instant::now();
            // The last to be asked waits out a cold load (cooled candidates
            // still to be probed do not count: they are the worse bet).
            let last_resort = probing && queue.is_empty()
                || !probing && !queue.iter().any(|&j| cooling[j].is_none());
            let tried = self
                .try_candidate(catalog, spec, call, last_resort, &mut attempts)
                .await;
            match tried {
                Ok((stream, pending)) => {
                    self.succeeded(spec);
                    return Ok(Answering {
                        router: self,
                        catalog,
                        spec: spec.clone(),
                        attempts,
                        pending,
                        stream,
                        agent: agent.to_string(),
                        session: session.to_string(),
                        req: req.clone(),
                        // What this turn has not tried yet, in order.
                        rest: queue
                            .iter()
                            .chain(if probing { &[][..] } else { &deferred[..] })
                            .map(|&j| candidates[j].clone())
                            .collect(),
                        text: String::new(),
                        tool_called: false,
                        echo: None,
                        rescuing: None,
                        ended: false,
                        continues: true,
                    });
                }
                Err(e) => {
                    self.failed(catalog, spec, agent, &e);
                    if policy(e.kind).cooldown == Scope::Provider {
                        down.push((spec.provider.clone(), e.kind));
                    }
                    let decision = decide(e.kind);
                    self.record(
                        &mut attempts,
                        Attempt {
                            model: spec.reference.clone(),
                            kind: Some(e.kind),
                            message: e.message.clone(),
                            took: started.elapsed(),
                            next: if decision == Decision::Stop {
                                Next::Nothing
                            } else {
                                next
                            },
                        },
                    );
                    // A probe's failure does not replace the failure that
                    // decided the turn (its status is what a client gets).
                    if last.is_none() || !probing || all_cooling {
                        last = Some(e);
                    }
                    match decision {
                        Decision::Stop => break,
                        Decision::NextLargerWindow => {
                            let w = spec.budget();
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

    /// A whole answer, for a caller that shows nothing until it is complete:
    /// a failure mid-answer starts the answer again on the next candidate
    /// (nothing was shown, so nothing needs continuing).
    pub async fn complete(
        &self,
        catalog: &Catalog<'_>,
        candidates: &[ModelSpec],
        agent: &str,
        session: &str,
        req: &ChatRequest,
    ) -> Result<Completed, AllFailed> {
        let mut attempts = Vec::new();
        let mut remaining = candidates.to_vec();
        loop {
            let mut a = match self.start(catalog, &remaining, agent, session, req).await {
                Ok(a) => a,
                Err(mut e) => {
                    attempts.append(&mut e.attempts);
                    e.attempts = attempts;
                    return Err(e);
                }
            };
            // Nothing was shown: a break restarts on a candidate not tried
            // yet (which the attempt names) instead of continuing.
            a.continues = false;
            remaining = a.rest.clone();
            let mut events = Vec::new();
            let failed = loop {
                match a.next().await {
                    Some(Ok(e)) => events.push(e),
                    Some(Err(e)) => break Some(e),
                    None => break None,
                }
            };
            attempts.append(&mut a.attempts);
            let Some(e) = failed else {
                return Ok(Completed {
                    spec: a.spec,
                    attempts,
                    reply: Reply::from_events(&events),
                });
            };
            if remaining.is_empty() {
                let now = now_ms();
                return Err(AllFailed {
                    attempts,
                    retry_at_ms: candidates
                        .iter()
                        .filter_map(|s| self.cooling(s, now).map(|c| c.0))
                        .min(),
                    last: Some(e),
                });
            }
        }
    }

    /// One candidate, with the retries that stay on it: waiting while its
    /// server loads the model, the provider's next key when a key is refused
    /// or limited, and one more call after a short `Retry-After` or a single
    /// transient failure (a longer wait when no other model is left).
    async fn try_candidate(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        last_resort: bool,
        attempts: &mut Vec<Attempt>,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let keys = self.ordered_keys(catalog, spec, call.agent);
        let timeouts = Timeouts::for_model(spec);
        let load_deadline = Instant::now() + timeouts.first_event;
        // With nobody to fail over to, a slow first token is waited for; a
        // reply asked for whole has no first token to wait for.
        let patience = timeouts
            .first_token
            .filter(|_| !last_resort && pincer_llm::streamed(&spec.compat, call.req));
        let (mut k, mut retried, mut announced) = (0, false, false);
        loop {
            let key = keys.get(k);
            let started = Instant::now();
            let e = match self.try_one(catalog, spec, call, key, patience).await {
                Ok(answering) => {
                    if let Some(key) = key {
                        self.update(|c| c.record_success(&key_cooldown(key)));
                    }
                    return Ok(answering);
                }
                Err(e) => e,
            };
            if e.kind == ErrorKind::ModelLoading && Instant::now() + LOADING_POLL < load_deadline {
                if !announced {
                    announced = true;
                    self.notify(Notice::Loading {
                        model: spec.reference.clone(),
                        on: spec.provider.clone(),
                    });
                }
                tokio::time::sleep(LOADING_POLL).await;
                continue;
            }
            let attempt = |model: String, next: Next| Attempt {
                model,
                kind: Some(e.kind),
                message: e.message.clone(),
                took: started.elapsed(),
                next,
            };
            if let Some(key) = key
                && rotates_key(e.kind)
                && let Some(next) = keys.get(k + 1)
            {
                self.update(|c| {
                    c.record_failure(&key_cooldown(key), e.kind, e.retry_after, now_ms())
                });
                self.record(
                    attempts,
                    attempt(
                        format!("{} (key {})", spec.reference, key.id),
                        Next::Key(next.id.clone()),
                    ),
                );
                k += 1;
                continue;
            }
            if !retried && let Some(pause) = same_model_pause(spec, &e, last_resort) {
                retried = true;
                self.record(
                    attempts,
                    attempt(spec.reference.clone(), Next::SameModel(pause)),
                );
                tokio::time::sleep(pause).await;
                continue;
            }
            if let Some(key) = key
                && rotates_key(e.kind)
            {
                self.update(|c| {
                    c.record_failure(&key_cooldown(key), e.kind, e.retry_after, now_ms())
                });
            }
            return Err(e);
        }
    }

    /// The provider's keys, those cooling down last (soonest back first).
    fn ordered_keys(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        agent: &str,
    ) -> Vec<Credential> {
        let mut keys = self.providers.keys(catalog, spec, agent);
        let now = now_ms();
        let until = |k: &Credential| {
            self.cooldowns
                .lock()
                .ok()
                .and_then(|c| c.active(&key_cooldown(k), now).map(|(u, _)| u))
                .unwrap_or(0)
        };
        keys.sort_by_cached_key(until);
        keys
    }

    /// Opens the stream up to the first token. When that is slow, asks the
    /// server whether the model is loading and says so. Only a server that
    /// is loading, or says it is working on a request (llama.cpp's slots),
    /// is waited for past `patience` (when there is one): one that is up,
    /// idle, and silent that long is given up on.
    async fn try_one(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        key: Option<&Credential>,
        patience: Option<Duration>,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let started = tokio::time::Instant::now();
        let heard = AtomicBool::new(false);
        let work = self.open_until_answer(catalog, spec, call, key, &heard);
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => return r,
            () = tokio::time::sleep(SLOW_START) => {}
        }
        let limit = async {
            match patience {
                Some(p) => tokio::time::sleep_until(started + p).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(limit);
        let announce = self.announce_if_loading(catalog, spec, call.agent);
        tokio::pin!(announce);
        let worth_waiting = tokio::select! {
            r = &mut work => return r,
            patient = &mut announce => patient,
            () = &mut limit => false,
        };
        if worth_waiting || heard.load(Ordering::Relaxed) {
            return work.await;
        }
        tokio::select! {
            r = &mut work => return r,
            () = &mut limit => {}
        }
        if heard.load(Ordering::Relaxed) {
            return work.await;
        }
        Err(ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "no first token in {} s, and {} is neither loading the model nor \
                 working on a request (params.firstTokenTimeoutSeconds)",
                patience.unwrap_or_default().as_secs(),
                spec.provider
            ),
        ))
    }

    /// Says so when the model is loading (or about to be: not in memory),
    /// and returns whether the server is worth waiting for: loading, or
    /// (llama.cpp) working on a request, such as reading a long prompt.
    async fn announce_if_loading(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        agent: &str,
    ) -> bool {
        if !spec.local {
            return false;
        }
        let on = match self.providers.probe(catalog, spec, agent, SLOW_START).await {
            Some(r) if matches!(r.state, Some(LoadState::Cold | LoadState::Loading)) => {
                match r.server {
                    Some(kind) => format!("{} ({kind})", spec.provider),
                    None => spec.provider.clone(),
                }
            }
            Some(r) => return r.busy == Some(true),
            // The embedded engine: loading when the file is there but not in memory.
            None if self.providers.embedded_present(spec)
                && !self.providers.embedded_loaded(spec).await =>
            {
                "the embedded engine".to_string()
            }
            None => return false,
        };
        self.notify(Notice::Loading {
            model: spec.reference.clone(),
            on,
        });
        true
    }

    /// Whether `spec` can continue an answer given as a final assistant
    /// message. Hosted OpenAI-style APIs would start a new answer instead.
    fn continues_prefill(spec: &ModelSpec) -> bool {
        match spec.api {
            Api::AnthropicMessages | Api::Embedded => true,
            Api::OpenAiCompletions => spec.local,
            _ => false,
        }
    }

    fn refuses_prefill(&self, spec: &ModelSpec) -> bool {
        self.no_prefill
            .lock()
            .is_ok_and(|m| m.contains(&spec.reference))
    }

    fn remember_no_prefill(&self, spec: &ModelSpec) {
        if let Ok(mut m) = self.no_prefill.lock() {
            m.insert(spec.reference.clone());
        }
    }

    fn notify(&self, notice: Notice) {
        (self.observer)(&notice);
    }

    /// Opens the stream and reads it up to the first token of the answer;
    /// `heard` is set at the first token of any kind (reasoning included).
    async fn open_until_answer(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        key: Option<&Credential>,
        heard: &AtomicBool,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let mut stream = self
            .providers
            .stream_with_key(catalog, spec, call.session, call.req, key)
            .await?;
        let mut pending = VecDeque::new();
        while let Some(item) = stream.next().await {
            let event = item?;
            let answered = matches!(
                &event,
                Event::Text { delta } if !delta.trim().is_empty()
            ) || matches!(event, Event::ToolCall { .. });
            if answered || matches!(&event, Event::Reasoning { delta } if !delta.is_empty()) {
                heard.store(true, Ordering::Relaxed);
            }
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

    /// How many providers, models and keys are cooling down now.
    pub fn cooling_now(&self) -> usize {
        self.cooldowns.lock().map_or(0, |c| c.running(now_ms()))
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

    /// Cools down what failed, by the failure policy: the provider, the
    /// model, or (when the call had a key) nothing beyond the key itself.
    fn failed(&self, catalog: &Catalog<'_>, spec: &ModelSpec, agent: &str, e: &ProviderError) {
        let keyed = !self.providers.keys(catalog, spec, agent).is_empty();
        if let Some(key) = cooldown_key(e.kind, &spec.provider, &spec.reference, keyed) {
            self.update(|c| c.record_failure(&key, e.kind, e.retry_after, now_ms()));
        }
    }

    fn succeeded(&self, spec: &ModelSpec) {
        self.update(|c| {
            c.record_success(&spec.provider);
            c.record_success(&spec.reference);
        });
    }

    /// Changes the state under its lock; the file is written after the lock
    /// is released (other turns never wait on the disk), newest state last.
    fn update(&self, f: impl FnOnce(&mut Cooldowns)) {
        let snapshot = {
            let Ok(mut c) = self.cooldowns.lock() else {
                return;
            };
            let before = c.clone();
            f(&mut c);
            if *c == before || self.state_file.is_none() {
                return;
            }
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            (generation, c.clone())
        };
        let (generation, state) = snapshot;
        let Some(path) = &self.state_file else { return };
        let Ok(mut written) = self.written.lock() else {
            return;
        };
        // A later change was saved first: this older state must not overwrite it.
        if *written >= generation {
            return;
        }
        // Health state is advisory: failing to persist it must not fail
        // the user's turn; the next change tries again.
        if state.save(path).is_ok() {
            *written = generation;
        }
    }
}

/// How long to pause before asking the same model again, if at all: a
/// `Retry-After` up to the provider's limit (longer when no other model is
/// left), or a short jittered pause after one 5xx or reset. Refusals are
/// never asked again.
fn same_model_pause(spec: &ModelSpec, e: &ProviderError, last_resort: bool) -> Option<Duration> {
    let retry = spec.retry;
    let limit = if last_resort {
        MAX_SAME_MODEL_WAIT
    } else {
        Duration::from_secs_f64(retry.max_wait_seconds)
    };
    match (e.kind, e.retry_after) {
        (ErrorKind::RateLimit | ErrorKind::Overloaded, Some(after)) => {
            (after <= limit && !limit.is_zero()).then_some(after)
        }
        (ErrorKind::Server | ErrorKind::Reset | ErrorKind::Overloaded, None) if retry.transient => {
            Some(TRANSIENT_BACKOFF + jitter(TRANSIENT_BACKOFF))
        }
        _ => None,
    }
}

/// Up to `max`, different from one call to the next (no crate for this).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let max = max.as_millis().max(1) as u32;
    Duration::from_millis(u64::from(nanos % max))
}

/// Failures that belong to the key rather than to the server.
fn rotates_key(kind: ErrorKind) -> bool {
    policy(kind).rotates_key
}

fn key_cooldown(key: &Credential) -> String {
    format!("key:{}", key.id)
}
