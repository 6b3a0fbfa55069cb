//! One turn over an agent's candidate models: each is tried in order until
//! one starts answering. What happened to every candidate is kept, failing
//! providers are cooled down, and the decision to move on depends on the kind
//! of failure.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pincer_catalog::{Catalog, ModelSpec};
use pincer_config::Api;
use pincer_llm::{
    ChatRequest, ErrorKind, Event, LoadState, Message, ProviderError, Reply, Timeouts,
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

/// Something worth telling the user while a turn is under way.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The model is being loaded: a cold start, not an outage.
    Loading { model: String, on: String },
    /// A key was refused or limited; the provider's next key is tried.
    NextKey {
        model: String,
        failed: String,
        kind: ErrorKind,
        next: String,
    },
    /// A model failed mid-answer; another continues the same answer.
    Continued { from: String, to: String },
    /// Waiting as the server asked before asking the same model again.
    Retrying {
        model: String,
        kind: ErrorKind,
        after: Duration,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Loading { model, on } => write!(f, "loading model {model} on {on}…"),
            Notice::NextKey {
                model,
                failed,
                kind,
                next,
            } => write!(
                f,
                "{model}: key {failed} failed ({kind}); trying key {next}"
            ),
            Notice::Continued { from, to } => {
                write!(f, "{from} stopped mid-answer; {to} continues it")
            }
            Notice::Retrying { model, kind, after } => write!(
                f,
                "{model}: {kind}; asking again in {} s as the server asked",
                after.as_secs_f32().ceil()
            ),
        }
    }
}

type Observer = Arc<dyn Fn(&Notice) + Send + Sync>;

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
    observer: Observer,
}

/// A candidate that has started answering: events read while waiting for
/// its first token come first, then the rest of its stream. If it fails
/// mid-answer, a later candidate that can continue a prefilled answer picks
/// up where it stopped; otherwise the error is returned, never a silent
/// truncation.
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
}

/// Some servers repeat the prefill at the start of a continuation
/// (llama.cpp does); that repeat is dropped.
struct Echo {
    prefill: String,
    seen: String,
}

impl Echo {
    /// What of `delta` is new text; `None` while it may still be the repeat.
    fn strip(&mut self, delta: &str) -> Option<String> {
        self.seen.push_str(delta);
        if self.seen.len() >= self.prefill.len() {
            let seen = std::mem::take(&mut self.seen);
            return Some(match seen.strip_prefix(&self.prefill) {
                Some(rest) => rest.to_string(),
                None => seen,
            });
        }
        if self.prefill.starts_with(&self.seen) {
            None
        } else {
            Some(std::mem::take(&mut self.seen))
        }
    }
}

impl Answering<'_> {
    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        loop {
            let event = match self.pending.pop_front() {
                Some(e) => e,
                None => match self.stream.next().await? {
                    Ok(e) => e,
                    Err(e) => {
                        self.router
                            .failed(self.catalog, &self.spec, &self.agent, &e);
                        if self.continue_elsewhere(&e).await {
                            continue;
                        }
                        return Some(Err(e));
                    }
                },
            };
            if let Some(event) = self.deliver(event) {
                return Some(Ok(event));
            }
        }
    }

    /// Drops a repeated prefill and keeps track of the answer so far.
    fn deliver(&mut self, event: Event) -> Option<Event> {
        let event = match (event, &mut self.echo) {
            (Event::Text { delta }, Some(echo)) => {
                let fresh = echo.strip(&delta)?;
                self.echo = None;
                if fresh.is_empty() {
                    return None;
                }
                Event::Text { delta: fresh }
            }
            (e @ Event::Done { .. }, Some(_)) => {
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
        Some(event)
    }

    /// After a failure mid-answer: the next candidate that can continue a
    /// prefilled answer carries on from the text so far.
    async fn continue_elsewhere(&mut self, e: &ProviderError) -> bool {
        if self.tool_called || self.text.trim().is_empty() {
            return false;
        }
        self.attempts.push(Attempt {
            model: self.spec.reference.clone(),
            kind: Some(e.kind),
            message: format!("stopped mid-answer: {}", e.message),
            took: Duration::ZERO,
        });
        let mut req = self.req.clone();
        req.messages.push(Message::assistant(self.text.clone()));
        let now = now_ms();
        while !self.rest.is_empty() {
            let spec = self.rest.remove(0);
            if !Router::continues_prefill(&spec) || self.router.cooling(&spec, now).is_some() {
                continue;
            }
            let started = Instant::now();
            let tried = self
                .router
                .try_candidate(
                    self.catalog,
                    &spec,
                    Call {
                        agent: &self.agent,
                        session: &self.session,
                        req: &req,
                    },
                    false,
                    &mut self.attempts,
                )
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
                        prefill: self.text.clone(),
                        seen: String::new(),
                    });
                    return true;
                }
                Err(e) => {
                    self.router.failed(self.catalog, &spec, &self.agent, &e);
                    self.attempts.push(Attempt {
                        model: spec.reference.clone(),
                        kind: Some(e.kind),
                        message: e.message.clone(),
                        took: started.elapsed(),
                    });
                }
            }
        }
        false
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
            observer: Arc::new(|_| {}),
        }
    }

    /// Calls `observer` with each `Notice` (loads, key rotation, waits).
    pub fn with_notices(mut self, observer: impl Fn(&Notice) + Send + Sync + 'static) -> Router {
        self.observer = Arc::new(observer);
        self
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
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
            if let Some((_, kind)) = down.iter().find(|(p, _)| *p == spec.provider) {
                attempts.push(Attempt {
                    model: spec.reference.clone(),
                    kind: None,
                    message: format!("{} is down ({kind}) in this turn", spec.provider),
                    took: Duration::ZERO,
                });
                continue;
            }
            if let Some(window) = overflowed_at
                && spec.budget() <= window
            {
                attempts.push(Attempt {
                    model: spec.reference.clone(),
                    kind: None,
                    message: format!("its context window ({}) is not larger", spec.budget()),
                    took: Duration::ZERO,
                });
                continue;
            }
            let started = Instant::now();
            let last_resort = !(i + 1..candidates.len()).any(|j| probe_all || cooling[j].is_none());
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
                        rest: candidates[i + 1..].to_vec(),
                        text: String::new(),
                        tool_called: false,
                        echo: None,
                    });
                }
                Err(e) => {
                    self.failed(catalog, spec, agent, &e);
                    attempts.push(Attempt {
                        model: spec.reference.clone(),
                        kind: Some(e.kind),
                        message: e.message.clone(),
                        took: started.elapsed(),
                    });
                    if policy(e.kind).cooldown == Scope::Provider {
                        down.push((spec.provider.clone(), e.kind));
                    }
                    let decision = decide(e.kind);
                    last = Some(e);
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
        let mut from = 0;
        loop {
            let mut a = match self
                .start(catalog, &candidates[from..], agent, session, req)
                .await
            {
                Ok(a) => a,
                Err(mut e) => {
                    attempts.append(&mut e.attempts);
                    e.attempts = attempts;
                    return Err(e);
                }
            };
            a.rest.clear();
            let started = Instant::now();
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
            attempts.push(Attempt {
                model: a.spec.reference.clone(),
                kind: Some(e.kind),
                message: format!("stopped mid-answer: {}", e.message),
                took: started.elapsed(),
            });
            from += 1 + candidates[from..]
                .iter()
                .position(|c| c.reference == a.spec.reference)
                .unwrap_or(0);
            if from >= candidates.len() {
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
    /// or limited, and one wait for `Retry-After` when no other model is left.
    async fn try_candidate(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        last_resort: bool,
        attempts: &mut Vec<Attempt>,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let keys = self.ordered_keys(catalog, spec, call.agent);
        let load_deadline = Instant::now() + Timeouts::for_model(spec).first_event;
        let (mut k, mut waited, mut announced) = (0, false, false);
        loop {
            let key = keys.get(k);
            let started = Instant::now();
            let e = match self.try_one(catalog, spec, call, key).await {
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
            let record = |attempts: &mut Vec<Attempt>, model: String| {
                attempts.push(Attempt {
                    model,
                    kind: Some(e.kind),
                    message: e.message.clone(),
                    took: started.elapsed(),
                });
            };
            if let Some(key) = key
                && rotates_key(e.kind)
                && let Some(next) = keys.get(k + 1)
            {
                self.update(|c| {
                    c.record_failure(&key_cooldown(key), e.kind, e.retry_after, now_ms())
                });
                record(attempts, format!("{} (key {})", spec.reference, key.id));
                self.notify(Notice::NextKey {
                    model: spec.reference.clone(),
                    failed: key.id.clone(),
                    kind: e.kind,
                    next: next.id.clone(),
                });
                k += 1;
                continue;
            }
            if last_resort
                && !waited
                && matches!(e.kind, ErrorKind::RateLimit | ErrorKind::Overloaded)
                && let Some(after) = e.retry_after.filter(|d| *d <= MAX_SAME_MODEL_WAIT)
            {
                waited = true;
                record(attempts, spec.reference.clone());
                self.notify(Notice::Retrying {
                    model: spec.reference.clone(),
                    kind: e.kind,
                    after,
                });
                tokio::time::sleep(after).await;
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
    /// server whether the model is loading and says so, still waiting.
    async fn try_one(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        key: Option<&Credential>,
    ) -> Result<(AnswerStream, VecDeque<Event>), ProviderError> {
        let work = self.open_until_answer(catalog, spec, call, key);
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => return r,
            () = tokio::time::sleep(SLOW_START) => {}
        }
        let announce = self.announce_if_loading(catalog, spec, call.agent);
        tokio::pin!(announce);
        tokio::select! {
            r = &mut work => return r,
            () = &mut announce => {}
        }
        work.await
    }

    async fn announce_if_loading(&self, catalog: &Catalog<'_>, spec: &ModelSpec, agent: &str) {
        if !spec.local {
            return;
        }
        let on = match self.providers.probe(catalog, spec, agent, SLOW_START).await {
            Some(r) if matches!(r.state, Some(LoadState::Cold | LoadState::Loading)) => {
                match r.server {
                    Some(kind) => format!("{} ({kind})", spec.provider),
                    None => spec.provider.clone(),
                }
            }
            Some(_) => return,
            // The embedded engine: loading when the file is there but not in memory.
            None if self.providers.embedded_present(spec)
                && !self.providers.embedded_loaded(spec).await =>
            {
                "the embedded engine".to_string()
            }
            None => return,
        };
        self.notify(Notice::Loading {
            model: spec.reference.clone(),
            on,
        });
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

    fn notify(&self, notice: Notice) {
        (self.observer)(&notice);
    }

    /// Opens the stream and reads it up to the first token of the answer.
    async fn open_until_answer(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        call: Call<'_>,
        key: Option<&Credential>,
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

/// Failures that belong to the key rather than to the server.
fn rotates_key(kind: ErrorKind) -> bool {
    policy(kind).rotates_key
}

fn key_cooldown(key: &Credential) -> String {
    format!("key:{}", key.id)
}
