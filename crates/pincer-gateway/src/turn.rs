//! Running one turn: one at a time per session, through the router, into
//! the session's transcript and the metrics. Streamed turns run in their own
//! task and hand events over a channel; when the client goes away the
//! channel closes and the task drops the upstream call.

use std::sync::Arc;
use std::time::Instant;

use pincer_llm::{ChatRequest, Event, Message, Reply, cost};
use pincer_router::{AllFailed, Attempt, Completed};
use pincer_sessions::TurnRecord;
use tokio::sync::{mpsc, oneshot};

use crate::Gateway;
use crate::error::{ApiError, MidAnswer};
use crate::plan::Plan;

/// What a streamed turn hands to the response.
pub enum Out {
    Event(Event),
    /// The answer is complete: who gave it (after a continuation, the model
    /// that finished it) and what failed before.
    Finished {
        model: String,
        attempts: Vec<Attempt>,
    },
    /// The answer broke off and nothing could continue it.
    Error(ApiError),
}

/// A streamed turn that has started answering.
pub struct Started {
    /// `provider/model` answering.
    pub model: String,
    pub rx: mpsc::Receiver<Out>,
}

impl Gateway {
    async fn session_lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop the locks nobody holds, so the map stays small.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Counts the turn and appends it to its session's transcript; done
    /// before the caller hears the answer is complete, so a completed
    /// answer is always on disk.
    async fn record(
        &'static self,
        plan: &Plan,
        req: &ChatRequest,
        model: &str,
        reply: &Reply,
        attempts: &[Attempt],
        error: Option<String>,
    ) {
        let spec = plan.candidates.iter().find(|s| s.reference == model);
        let usd = spec.map_or(0.0, |s| cost(s, &reply.usage));
        let api = spec.map_or("", |s| s.api.as_str());
        self.metrics.turn(model, &reply.usage, usd);
        if error.is_none() {
            self.last_used.touch(model);
        }
        let Some(store) = self.sessions.get(&plan.agent.id) else {
            return;
        };
        let key = plan.session_key.clone();
        let input = new_input(&req.messages).to_vec();
        let (model, reply) = (model.to_string(), reply.clone());
        let attempts: Vec<String> = attempts.iter().map(Attempt::told).collect();
        // File writes stay off the async workers.
        let written = tokio::task::spawn_blocking(move || {
            let turn = TurnRecord {
                input: &input,
                model: &model,
                api,
                reply: &reply,
                cost_usd: usd,
                attempts: &attempts,
                error,
            };
            store
                .record(&key, &turn)
                .map_err(|e| format!("session {key}: {e}"))
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            // The caller has its answer; a transcript that cannot be written
            // is the operator's problem, said in the log.
            Ok(Err(e)) => tracing::error!("{e}"),
            Err(e) => tracing::error!("session {}: {e}", plan.session_key),
        }
    }

    fn count_fallbacks(&self, attempts: &[Attempt]) {
        for a in attempts {
            self.metrics
                .fallback(a.kind.map_or("skipped", |k| k.as_str()), a.next.as_str());
        }
    }

    /// A whole answer (`stream: false`).
    pub async fn complete(
        &'static self,
        plan: &Plan,
        req: &ChatRequest,
    ) -> Result<Completed, ApiError> {
        let _turn = self.session_lock(&plan.session_key).await;
        let _active = self.metrics.active();
        match self
            .router
            .complete(
                &self.catalog,
                &plan.candidates,
                &plan.agent.id,
                &plan.session_key,
                req,
            )
            .await
        {
            Ok(done) => {
                self.count_fallbacks(&done.attempts);
                self.record(
                    plan,
                    req,
                    &done.spec.reference,
                    &done.reply,
                    &done.attempts,
                    None,
                )
                .await;
                Ok(done)
            }
            Err(f) => Err(self.failed(plan, req, f).await),
        }
    }

    async fn failed(&'static self, plan: &Plan, req: &ChatRequest, f: AllFailed) -> ApiError {
        self.count_fallbacks(&f.attempts);
        let model = plan.candidates.first().map_or("", |s| s.reference.as_str());
        self.record(
            plan,
            req,
            model,
            &Reply::default(),
            &[],
            Some(f.to_string()),
        )
        .await;
        ApiError::Upstream(Box::new(f))
    }

    /// Starts a streamed answer; returns once a model has started answering
    /// (or every candidate failed, which is then an ordinary error response).
    pub async fn stream(&'static self, plan: Plan, req: ChatRequest) -> Result<Started, ApiError> {
        let (start_tx, start_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.run_stream(plan, req, start_tx, tx));
        match start_rx.await {
            Ok(Ok(model)) => Ok(Started { model, rx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::Incomplete),
        }
    }

    async fn run_stream(
        &'static self,
        plan: Plan,
        req: ChatRequest,
        start: oneshot::Sender<Result<String, ApiError>>,
        tx: mpsc::Sender<Out>,
    ) {
        let _turn = self.session_lock(&plan.session_key).await;
        let _active = self.metrics.active();
        let mut a = match self
            .router
            .start(
                &self.catalog,
                &plan.candidates,
                &plan.agent.id,
                &plan.session_key,
                &req,
            )
            .await
        {
            Ok(a) => a,
            Err(f) => {
                let _ = start.send(Err(self.failed(&plan, &req, f).await));
                return;
            }
        };
        if start.send(Ok(a.spec.reference.clone())).is_err() {
            return;
        }
        let started = Instant::now();
        let mut reply = Reply::default();
        let mut error = None;
        loop {
            let item = tokio::select! {
                item = a.next() => item,
                () = tx.closed() => {
                    self.metrics.cancelled();
                    error = Some("the client went away".to_string());
                    break;
                }
            };
            match item {
                None => break,
                Some(Ok(event)) => {
                    reply.apply(&event);
                    if tx.send(Out::Event(event)).await.is_err() {
                        self.metrics.cancelled();
                        error = Some("the client went away".to_string());
                        break;
                    }
                }
                Some(Err(e)) => {
                    let broken = ApiError::MidAnswer(Box::new(MidAnswer {
                        model: a.stopped_model().to_string(),
                        error: e,
                        attempts: a.attempts.clone(),
                    }));
                    error = Some(broken.to_string());
                    let _ = tx.send(Out::Error(broken)).await;
                    break;
                }
            }
        }
        self.count_fallbacks(&a.attempts);
        self.metrics.stream_time(started.elapsed());
        self.record(
            &plan,
            &req,
            &a.spec.reference,
            &reply,
            &a.attempts,
            error.clone(),
        )
        .await;
        if error.is_none() {
            let _ = tx
                .send(Out::Finished {
                    model: a.spec.reference.clone(),
                    attempts: a.attempts.clone(),
                })
                .await;
        }
    }
}

/// The messages of this turn: everything after the last assistant message.
fn new_input(messages: &[Message]) -> &[Message] {
    let from = messages
        .iter()
        .rposition(|m| matches!(m, Message::Assistant { .. }))
        .map_or(0, |i| i + 1);
    messages.get(from..).unwrap_or_default()
}
