//! Running one request as an agent turn: the request's messages become a
//! delivery to the agent runtime (which keeps the session, its history and
//! commands), and what comes back is counted in the metrics. Streamed turns
//! run in their own task and hand events over a channel; when the client
//! goes away the channel closes and the runtime drops the upstream call.
//!
//! How `messages` map onto the session (OpenClaw runs every request as an
//! agent turn; Pincer keeps history server-side for stable sessions):
//! - system and developer messages are the request's system text;
//! - the messages after the last assistant message are the new input (the
//!   user's message, and any tool results before it);
//! - anything before that is the caller's own history: when it sends one,
//!   it is used instead of the session's; when it sends only the new
//!   message, a stable session (`user`, `x-openclaw-session-key`) continues
//!   from its transcript.

use pincer_agent::{AgentEvent, Delivered, Delivery};
use pincer_llm::{ChatRequest, Event, Message};
use pincer_router::{Attempt, Completed};
use tokio::sync::{mpsc, oneshot};

use crate::Gateway;
use crate::error::ApiError;
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
    fn delivery(&self, plan: &Plan, mut req: ChatRequest, whole: bool) -> Delivery {
        let messages = std::mem::take(&mut req.messages);
        let mut system = Vec::new();
        let mut rest = Vec::new();
        for m in messages {
            match m {
                Message::System { text } => system.push(text),
                other => rest.push(other),
            }
        }
        let from = rest
            .iter()
            .rposition(|m| matches!(m, Message::Assistant { .. }))
            .map_or(0, |i| i + 1);
        let input = rest.split_off(from);
        Delivery {
            agent: plan.agent.id.clone(),
            session_key: plan.session_key.clone(),
            input,
            history: (!rest.is_empty()).then_some(rest),
            system,
            model: plan.direct.clone(),
            request: req,
            // A one-off call that names a model is a plain model call;
            // everything else is the agent's turn, with its prompt.
            agent_prompt: plan.direct.is_none() || plan.stable,
            whole,
            // Each request waits for its own answer (`followup`).
            channel: None,
        }
    }

    /// Counts a finished delivery.
    pub(crate) fn count(&self, d: &Delivered) {
        self.metrics
            .turn(&d.spec.reference, &d.reply.usage, d.cost_usd);
        if !d.command {
            self.last_used.touch(&d.spec.reference);
        }
        self.count_fallbacks(&d.attempts);
    }

    fn count_fallbacks(&self, attempts: &[Attempt]) {
        for a in attempts {
            self.metrics
                .fallback(a.kind.map_or("skipped", |k| k.as_str()), a.next.as_str());
        }
    }

    pub(crate) fn count_failure(&self, e: &pincer_agent::AgentError) {
        use pincer_agent::AgentError as A;
        match e {
            A::Upstream(f) | A::ContextOverflow(f) => self.count_fallbacks(&f.attempts),
            A::MidAnswer(m) => self.count_fallbacks(&m.attempts),
            A::ClientGone => self.metrics.cancelled(),
            _ => {}
        }
    }

    /// A whole answer (`stream: false`): the final text only.
    pub async fn complete(
        &'static self,
        plan: &Plan,
        req: ChatRequest,
    ) -> Result<Completed, ApiError> {
        let _active = self.metrics.active();
        let d = self.delivery(plan, req, true);
        let (tx, mut rx) = mpsc::channel(64);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (done, ()) = tokio::join!(self.rt.deliver(d, tx), drain);
        match done {
            Ok(d) => {
                self.count(&d);
                let mut reply = d.reply;
                reply.text = d.final_text.unwrap_or_default();
                Ok(Completed {
                    spec: d.spec,
                    attempts: d.attempts,
                    reply,
                })
            }
            Err(e) => {
                self.count_failure(&e);
                Err(e.into())
            }
        }
    }

    /// Starts a streamed answer; returns once a model has started answering
    /// (or the turn failed before that, which is then an ordinary error
    /// response).
    pub async fn stream(&'static self, plan: Plan, req: ChatRequest) -> Result<Started, ApiError> {
        let (start_tx, start_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(64);
        let d = self.delivery(&plan, req, false);
        tokio::spawn(self.run_stream(d, start_tx, tx));
        match start_rx.await {
            Ok(Ok(model)) => Ok(Started { model, rx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::Incomplete),
        }
    }

    async fn run_stream(
        &'static self,
        d: Delivery,
        start: oneshot::Sender<Result<String, ApiError>>,
        tx: mpsc::Sender<Out>,
    ) {
        let _active = self.metrics.active();
        let began = std::time::Instant::now();
        let (atx, mut arx) = mpsc::channel(64);
        let out = tx.clone();
        let key = d.session_key.clone();
        let note_key = key.clone();
        // Hands the runtime's events on. When the client goes away it stops,
        // dropping the runtime's channel, which ends the run.
        let forward = async move {
            let mut start = Some(start);
            loop {
                let e = tokio::select! {
                    e = arx.recv() => e,
                    () = out.closed() => return None,
                };
                let Some(e) = e else { return start };
                match e {
                    AgentEvent::Model { model } => {
                        if let Some(s) = start.take()
                            && s.send(Ok(model)).is_err()
                        {
                            return None;
                        }
                    }
                    AgentEvent::Llm(event) => {
                        if out.send(Out::Event(event)).await.is_err() {
                            return None;
                        }
                    }
                    AgentEvent::Note(note) => tracing::info!("{note_key}: {note}"),
                    // The agent's own tools run here; the caller sees
                    // their outcome in the answer.
                    AgentEvent::Started { .. } | AgentEvent::Tool(_) => {}
                }
            }
        };
        let (done, start) = tokio::join!(self.rt.deliver(d, atx), forward);
        self.metrics.stream_time(began.elapsed());
        match done {
            Ok(d) => {
                self.count(&d);
                let model = d.spec.reference.clone();
                if let Some(s) = start {
                    let _ = s.send(Ok(model.clone()));
                }
                let _ = tx
                    .send(Out::Finished {
                        model,
                        attempts: d.attempts,
                    })
                    .await;
            }
            Err(e) => {
                self.count_failure(&e);
                tracing::debug!("{key}: {e}");
                let e = ApiError::from(e);
                match start {
                    Some(s) => {
                        let _ = s.send(Err(e));
                    }
                    None => {
                        let _ = tx.send(Out::Error(e)).await;
                    }
                }
            }
        }
    }
}
