//! Runs started over the protocol (`chat.send`, `agent`): each is one
//! delivery to the agent runtime, known by its run id (the caller's
//! `idempotencyKey`, so a retried request never runs a turn twice), told
//! to every connection as `chat` and `agent` events, and awaited by
//! `agent` and `agent.wait`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pincer_agent::{AgentError, AgentEvent, Delivered, Delivery};
use pincer_llm::{Event, FinishReason, Message};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use super::now_ms;
use crate::Gateway;

/// Runs remembered (finished ones are forgotten oldest first).
const MAX_RUNS: usize = 1024;
/// Events queued for all connections; a connection further behind is
/// closed as too slow.
const HUB: usize = 4096;
/// At most one `chat` delta per run this often (OpenClaw's throttle).
const DELTA_EVERY: Duration = Duration::from_millis(150);

/// An event for every connection.
#[derive(Debug)]
pub struct HubEvent {
    pub event: &'static str,
    pub payload: Value,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok {
        text: Option<String>,
        model: String,
        session_id: String,
        stop_reason: &'static str,
    },
    Aborted,
    Error(String),
}

struct Run {
    session_key: String,
    started_at: u64,
    ended_at: Option<u64>,
    done: watch::Receiver<Option<Outcome>>,
}

/// A run asked for again, or started now.
pub enum Start {
    Started(watch::Receiver<Option<Outcome>>),
    Known(watch::Receiver<Option<Outcome>>),
    /// The key names a run of another session: a client's mistake, never
    /// an answer from someone else's conversation.
    Elsewhere(String),
}

pub struct Runs {
    events: broadcast::Sender<Arc<HubEvent>>,
    runs: Mutex<(HashMap<String, Run>, VecDeque<String>)>,
}

impl Default for Runs {
    fn default() -> Runs {
        Runs {
            events: broadcast::channel(HUB).0,
            runs: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }
}

/// What a run's events say of it.
pub struct RunInfo {
    pub session_key: String,
    pub started_at: u64,
    pub ended_at: Option<u64>,
    pub done: watch::Receiver<Option<Outcome>>,
}

impl Runs {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.events.subscribe()
    }

    pub fn broadcast(&self, event: &'static str, payload: Value) {
        let _ = self.events.send(Arc::new(HubEvent { event, payload }));
    }

    pub fn get(&self, run_id: &str) -> Option<RunInfo> {
        let runs = self.runs.lock().ok()?;
        runs.0.get(run_id).map(|r| RunInfo {
            session_key: r.session_key.clone(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            done: r.done.clone(),
        })
    }

    /// The runs of a session still under way.
    pub fn in_flight(&self, session_key: &str) -> Vec<String> {
        let Ok(runs) = self.runs.lock() else {
            return Vec::new();
        };
        runs.0
            .iter()
            .filter(|(_, r)| r.session_key == session_key && r.done.borrow().is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn ended(&self, run_id: &str) {
        if let Ok(mut runs) = self.runs.lock()
            && let Some(r) = runs.0.get_mut(run_id)
        {
            r.ended_at = Some(now_ms());
        }
    }

    /// Starts `message` as run `run_id` in `session_key`, unless that run
    /// is known already.
    pub fn start(
        &self,
        gw: &'static Gateway,
        run_id: &str,
        agent: &str,
        session_key: &str,
        message: String,
    ) -> Start {
        let rx = {
            let Ok(mut runs) = self.runs.lock() else {
                let (_, rx) =
                    watch::channel(Some(Outcome::Error("the gateway is shutting down".into())));
                return Start::Known(rx);
            };
            if let Some(r) = runs.0.get(run_id) {
                if r.session_key != session_key {
                    return Start::Elsewhere(r.session_key.clone());
                }
                return Start::Known(r.done.clone());
            }
            // Forget the oldest finished runs past the cap.
            while runs.1.len() >= MAX_RUNS {
                let Some(old) = runs.1.pop_front() else { break };
                let finished = runs.0.get(&old).is_none_or(|r| r.done.borrow().is_some());
                if finished {
                    runs.0.remove(&old);
                } else {
                    runs.1.push_back(old);
                    break;
                }
            }
            let (tx, rx) = watch::channel(None);
            runs.0.insert(
                run_id.to_string(),
                Run {
                    session_key: session_key.to_string(),
                    started_at: now_ms(),
                    ended_at: None,
                    done: rx.clone(),
                },
            );
            runs.1.push_back(run_id.to_string());
            let (run_id, agent, session_key) = (
                run_id.to_string(),
                agent.to_string(),
                session_key.to_string(),
            );
            tokio::spawn(async move {
                // A run that panics still ends: its waiters hear of it.
                let done = Done(tx);
                let outcome = drive(gw, &run_id, &agent, &session_key, message).await;
                gw.ws.ended(&run_id);
                let _ = done.0.send(Some(outcome));
            });
            rx
        };
        Start::Started(rx)
    }
}

/// A run's outcome channel; dropped unanswered, the run is lost.
struct Done(watch::Sender<Option<Outcome>>);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.borrow().is_none() {
            let _ = self.0.send(Some(Outcome::Error("the run was lost".into())));
        }
    }
}

/// One run's events, numbered per run (`chat` and `agent` share it).
struct Teller<'a> {
    gw: &'static Gateway,
    run_id: &'a str,
    agent: &'a str,
    session_key: &'a str,
    seq: u64,
    text: String,
    sent_upto: usize,
    last_delta: Option<Instant>,
}

impl Teller<'_> {
    fn base(&mut self) -> serde_json::Map<String, Value> {
        self.seq += 1;
        let mut m = serde_json::Map::new();
        m.insert("runId".into(), self.run_id.into());
        m.insert("sessionKey".into(), self.session_key.into());
        m.insert("agentId".into(), self.agent.into());
        m.insert("seq".into(), self.seq.into());
        m
    }

    fn agent(&mut self, stream: &str, data: Value) {
        let mut m = self.base();
        m.insert("stream".into(), stream.into());
        m.insert("ts".into(), now_ms().into());
        m.insert("data".into(), data);
        self.gw.ws.broadcast("agent", Value::Object(m));
    }

    fn chat(&mut self, state: &str, extra: Value) {
        let mut m = self.base();
        m.insert("state".into(), state.into());
        if let Value::Object(extra) = extra {
            m.extend(extra);
        }
        self.gw.ws.broadcast("chat", Value::Object(m));
    }

    fn message(text: &str) -> Value {
        json!({ "role": "assistant", "content": [{ "type": "text", "text": text }], "timestamp": now_ms() })
    }

    /// A `chat` delta with what is new since the last one, at most every
    /// `DELTA_EVERY` unless `now`.
    fn delta(&mut self, now: bool) {
        if self.sent_upto >= self.text.len() {
            return;
        }
        if !now && self.last_delta.is_some_and(|t| t.elapsed() < DELTA_EVERY) {
            return;
        }
        let delta = self
            .text
            .get(self.sent_upto..)
            .unwrap_or_default()
            .to_string();
        self.sent_upto = self.text.len();
        self.last_delta = Some(Instant::now());
        // What is new, at most every `DELTA_EVERY`: the answer so far goes
        // out a few times a second, not once per token.
        let text = self.text.clone();
        self.agent("assistant", json!({ "text": text, "delta": delta }));
        let message = Self::message(&self.text);
        self.chat("delta", json!({ "deltaText": delta, "message": message }));
    }
}

async fn drive(
    gw: &'static Gateway,
    run_id: &str,
    agent: &str,
    session_key: &str,
    message: String,
) -> Outcome {
    let d = Delivery {
        agent: agent.to_string(),
        session_key: session_key.to_string(),
        input: vec![Message::user(message)],
        agent_prompt: true,
        ..Delivery::default()
    };
    let (tx, mut rx) = mpsc::channel(256);
    let started_at = now_ms();
    let mut t = Teller {
        gw,
        run_id,
        agent,
        session_key,
        seq: 0,
        text: String::new(),
        sent_upto: 0,
        last_delta: None,
    };
    let tell = async {
        while let Some(ev) = rx.recv().await {
            match ev {
                AgentEvent::Started { session_id } => {
                    t.agent(
                        "lifecycle",
                        json!({ "phase": "start", "startedAt": started_at, "sessionId": session_id }),
                    );
                }
                AgentEvent::Model { model } => {
                    let (provider, id) = model.split_once('/').unwrap_or(("", &model));
                    t.agent(
                        "lifecycle",
                        json!({ "phase": "model", "provider": provider, "model": id }),
                    );
                }
                AgentEvent::Llm(Event::Text { delta }) => {
                    t.text.push_str(&delta);
                    t.delta(false);
                }
                AgentEvent::Llm(Event::Reasoning { delta }) => {
                    t.agent("thinking", json!({ "delta": delta }));
                }
                AgentEvent::Llm(Event::Usage { usage }) => {
                    t.agent(
                        "usage",
                        json!({ "inputTokens": usage.input, "outputTokens": usage.output,
                            "cacheRead": usage.cache_read }),
                    );
                }
                AgentEvent::Llm(_) => {}
                AgentEvent::Tool(tool) => {
                    let phase = if tool.result.is_some() {
                        "result"
                    } else {
                        "start"
                    };
                    t.agent(
                        "tool",
                        json!({ "phase": phase, "toolCallId": tool.id, "name": tool.name,
                            "args": tool.arguments, "result": tool.result, "isError": tool.is_error }),
                    );
                }
                AgentEvent::Note(note) => t.agent("note", json!({ "text": note })),
            }
        }
        t
    };
    let (done, mut t) = tokio::join!(gw.runtime().deliver(d, tx), tell);
    t.delta(true);
    super::methods::sessions_changed(gw, session_key, "turn");
    let ended_at = now_ms();
    match done {
        Ok(d) => {
            gw.count(&d);
            finished(&mut t, d, started_at, ended_at)
        }
        Err(AgentError::Aborted | AgentError::ClientGone) => {
            t.agent(
                "lifecycle",
                json!({ "phase": "end", "aborted": true, "startedAt": started_at, "endedAt": ended_at }),
            );
            t.chat("aborted", json!({ "stopReason": "rpc" }));
            Outcome::Aborted
        }
        Err(e) => {
            gw.count_failure(&e);
            let message = e.to_string();
            t.agent(
                "lifecycle",
                json!({ "phase": "error", "error": message, "startedAt": started_at, "endedAt": ended_at }),
            );
            t.chat(
                "error",
                json!({ "errorMessage": message, "errorKind": error_kind(&e) }),
            );
            Outcome::Error(message)
        }
    }
}

fn finished(t: &mut Teller<'_>, d: Delivered, started_at: u64, ended_at: u64) -> Outcome {
    let stop_reason = match d.reply.finish {
        Some(FinishReason::Length) => "length",
        Some(FinishReason::ToolCalls) => "toolUse",
        _ => "stop",
    };
    let (provider, model) = (d.spec.provider.clone(), d.spec.id.clone());
    t.agent(
        "lifecycle",
        json!({ "phase": "end", "stopReason": stop_reason, "aborted": false,
            "startedAt": started_at, "endedAt": ended_at,
            "terminalReply": { "disposition": if d.final_text.is_some() { "visible" } else { "silent" },
                "text": d.final_text },
            "provider": provider, "model": model }),
    );
    let mut extra = json!({ "stopReason": stop_reason,
        "usage": { "input": d.reply.usage.input, "output": d.reply.usage.output, "cost": d.cost_usd },
        "model": d.spec.reference });
    if let (Some(text), Value::Object(m)) = (&d.final_text, &mut extra) {
        m.insert("message".into(), Teller::message(text));
    }
    t.chat("final", extra);
    Outcome::Ok {
        text: d.final_text,
        model: d.spec.reference,
        session_id: d.session_id,
        stop_reason,
    }
}

/// OpenClaw's `errorKind` for a failed run.
fn error_kind(e: &AgentError) -> &'static str {
    match e {
        AgentError::ContextOverflow(_) | AgentError::TooLarge(_) => "context_length",
        AgentError::Upstream(_) | AgentError::MidAnswer(_) => "provider",
        _ => "unknown",
    }
}
