//! The protocol's methods Pincer implements, each with typed parameters;
//! any other method is answered at once with an error naming it.

use std::time::Duration;

use pincer_agent::Delivery;
use pincer_catalog::{AgentModels, candidate_chain};
use pincer_llm::Message;
use pincer_sessions::Body;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::frames::{ErrorBody, Frame, Request, to_value};
use super::runs::{Outcome, Start};
use super::{Conn, Outbox, now_ms};
use crate::Gateway;

/// The longest an `agent` request waits for its run (OpenClaw's CLI asks
/// for 600 s).
const AGENT_LIMIT: Duration = Duration::from_secs(600);

/// What `hello-ok` lists: exactly what `handle` answers.
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "models.list",
    "agents.list",
    "sessions.list",
    "sessions.reset",
    "sessions.patch",
    "sessions.compact",
    "sessions.delete",
    "sessions.subscribe",
    "chat.send",
    "chat.inject",
    "chat.history",
    "chat.abort",
    "agent",
    "agent.wait",
    "config.get",
    "usage.cost",
];

pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "chat",
    "agent",
    "sessions.changed",
];

/// An agent's main session, OpenClaw's `mainSessionKey`.
fn main_key(gw: &Gateway, agent: &str) -> String {
    gw.runtime().main_session(agent)
}

/// `hello-ok`'s snapshot.
pub fn snapshot(gw: &'static Gateway) -> Value {
    let agent = &gw.default_agent().id;
    json!({
        "presence": [],
        "health": health(gw),
        "stateVersion": { "presence": 0, "health": 0 },
        "uptimeMs": u64::try_from(gw.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "sessionDefaults": {
            "defaultAgentId": agent,
            "mainKey": "main",
            "mainSessionKey": main_key(gw, agent),
            "scope": "per-sender",
        },
        "authMode": match gw.settings.auth {
            crate::settings::Auth::Secret(_) => "token",
            crate::settings::Auth::None => "none",
            crate::settings::Auth::TrustedProxy => "trusted-proxy",
        },
    })
}

fn health(gw: &'static Gateway) -> Value {
    json!({
        "ok": true,
        "ts": now_ms(),
        "durationMs": 0,
        "defaultAgentId": gw.default_agent().id,
        "agents": gw.runtime().agents().map(|a| json!({ "agentId": a.id, "isDefault": a.is_default })).collect::<Vec<_>>(),
    })
}

/// A session key as the caller wrote it → the canonical one and its agent:
/// `main` (or any bare key) belongs to the default agent; keys are
/// lowercased (as the HTTP surface does) and the agent must exist.
fn session(
    gw: &'static Gateway,
    key: Option<&str>,
    agent: Option<&str>,
) -> Result<(String, String), ErrorBody> {
    let known = |id: &str| {
        gw.runtime()
            .agent(id)
            .map(|a| a.id.clone())
            .ok_or_else(|| ErrorBody::invalid(format!("unknown agent: {id}")))
    };
    let agent = match agent {
        Some(a) => known(a)?,
        None => gw.default_agent().id.clone(),
    };
    let key = key
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| !k.is_empty());
    match key {
        Some(k) if k.starts_with("agent:") => {
            let mut parts = k.splitn(3, ':');
            let (_, id, rest) = (parts.next(), parts.next(), parts.next());
            let (Some(id), Some(rest)) = (id, rest.filter(|r| !r.is_empty())) else {
                return Err(ErrorBody::invalid(format!(
                    "invalid session key {k:?}: expected agent:<agent>:<name>"
                )));
            };
            let agent = known(id)?;
            Ok((format!("agent:{agent}:{rest}"), agent))
        }
        // "main" names the main session, whatever `session.mainKey` calls it.
        Some(k) if k == "main" => Ok((main_key(gw, &agent), agent)),
        Some(k) => Ok((format!("agent:{agent}:{k}"), agent)),
        None => Ok((main_key(gw, &agent), agent)),
    }
}

fn params<T: DeserializeOwned>(req: &Request) -> Result<T, ErrorBody> {
    let v = req.params.clone().unwrap_or_else(|| json!({}));
    serde_json::from_value(v)
        .map_err(|e| ErrorBody::invalid(format!("invalid {} params: {e}", req.method)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatSend {
    #[serde(default)]
    session_key: Option<String>,
    message: String,
    idempotency_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentParams {
    message: String,
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    idempotency_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inject {
    #[serde(default)]
    session_key: Option<String>,
    message: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunRef {
    run_id: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRef {
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    thinking_level: Option<String>,
}

impl SessionRef {
    fn key(&self) -> Option<&str> {
        self.session_key.as_deref().or(self.key.as_deref())
    }
}

/// Who may call what: every method needs one of the operator scopes the
/// client was granted at `connect`; changing things needs `operator.write`
/// (or admin); the config and deleting sessions need `operator.admin`.
pub(super) fn needs(method: &str) -> &'static str {
    match method {
        "config.get" | "sessions.delete" => "operator.admin",
        "chat.send" | "chat.abort" | "chat.inject" | "agent" | "sessions.reset"
        | "sessions.patch" | "sessions.compact" => "operator.write",
        _ => "operator.read",
    }
}

/// Whether `granted` covers `needed` (admin covers all, write covers read).
pub(super) fn permits(granted: &[String], needed: &str) -> bool {
    granted.iter().any(|g| {
        g == needed || g == "operator.admin" || (g == "operator.write" && needed == "operator.read")
    })
}

fn answer(id: &str, r: Result<Value, ErrorBody>) -> Frame {
    match r {
        Ok(v) => Frame::ok(id, v),
        Err(e) => Frame::err(id, e),
    }
}

pub(super) async fn handle(gw: &'static Gateway, conn: &Conn, out: &Outbox, req: Request) {
    let id = req.id.clone();
    if METHODS.contains(&req.method.as_str()) && !permits(&conn.scopes, needs(&req.method)) {
        out.send(&Frame::err(
            &id,
            ErrorBody {
                code: "FORBIDDEN",
                message: format!("{} needs the scope {}", req.method, needs(&req.method)),
                details: None,
            },
        ));
        return;
    }
    // Methods that read or write the session files run on the blocking
    // pool, so the connection keeps forwarding events meanwhile.
    let blocking = |work: Box<dyn FnOnce() -> Result<Value, ErrorBody> + Send>| {
        let (out, id) = (out.clone(), id.clone());
        tokio::spawn(async move {
            let r = tokio::task::spawn_blocking(work)
                .await
                .unwrap_or_else(|_| Err(ErrorBody::unavailable("the request failed")));
            out.send(&answer(&id, r));
        });
    };
    match req.method.as_str() {
        "sessions.list" => return blocking(Box::new(move || Ok(sessions(gw)))),
        "usage.cost" => return blocking(Box::new(move || Ok(usage(gw)))),
        "chat.history" => {
            return match params::<SessionRef>(&req) {
                Ok(p) => blocking(Box::new(move || history(gw, &p))),
                Err(e) => {
                    out.send(&Frame::err(&id, e));
                }
            };
        }
        "chat.inject" => {
            return match params::<Inject>(&req) {
                Ok(p) => blocking(Box::new(move || inject(gw, &p))),
                Err(e) => {
                    out.send(&Frame::err(&id, e));
                }
            };
        }
        "sessions.delete" => {
            return match params::<SessionRef>(&req) {
                Ok(p) => blocking(Box::new(move || delete(gw, &p))),
                Err(e) => {
                    out.send(&Frame::err(&id, e));
                }
            };
        }
        _ => {}
    }
    let answer = match req.method.as_str() {
        "health" => Ok(health(gw)),
        "status" => Ok(status(gw, conn)),
        "models.list" => Ok(models(gw)),
        "agents.list" => Ok(agents(gw)),
        "chat.send" => params::<ChatSend>(&req).and_then(|p| chat_send(gw, p)),
        "chat.abort" => params::<SessionRef>(&req).and_then(|p| chat_abort(gw, &p)),
        // Every connection gets `sessions.changed` (there is no per-socket
        // filter to turn on).
        "sessions.subscribe" => Ok(json!({ "ok": true })),
        "config.get" => Ok(config(gw)),
        "agent" => match params::<AgentParams>(&req) {
            Ok(p) => {
                agent(gw, out, &id, p);
                return;
            }
            Err(e) => Err(e),
        },
        "agent.wait" => match params::<RunRef>(&req) {
            Ok(p) => {
                let out = out.clone();
                tokio::spawn(async move {
                    let frame = match agent_wait(gw, p).await {
                        Ok(v) => Frame::ok(&id, v),
                        Err(e) => Frame::err(&id, e),
                    };
                    out.send(&frame);
                });
                return;
            }
            Err(e) => Err(e),
        },
        "sessions.reset" | "sessions.patch" | "sessions.compact" => {
            match params::<SessionRef>(&req) {
                Ok(p) => {
                    let out = out.clone();
                    let method = req.method.clone();
                    tokio::spawn(async move {
                        let frame = match session_command(gw, &method, &p).await {
                            Ok(v) => Frame::ok(&id, v),
                            Err(e) => Frame::err(&id, e),
                        };
                        out.send(&frame);
                    });
                    return;
                }
                Err(e) => Err(e),
            }
        }
        other => Err(ErrorBody::invalid(format!("unknown method: {other}"))),
    };
    out.send(&match answer {
        Ok(v) => Frame::ok(&id, v),
        Err(e) => Frame::err(&id, e),
    });
}

fn status(gw: &'static Gateway, conn: &Conn) -> Value {
    json!({
        "ok": true,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeMs": u64::try_from(gw.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "defaultAgentId": gw.default_agent().id,
        "client": { "id": conn.client_id, "mode": conn.client_mode, "scopes": conn.scopes },
    })
}

fn models(gw: &'static Gateway) -> Value {
    let agent = gw.default_agent();
    let (chain, _) = candidate_chain(gw.catalog(), agent);
    let models: Vec<Value> = chain
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let tag = if i == 0 {
                "default".to_string()
            } else {
                format!("fallback#{i}")
            };
            json!({
                "id": m.id, "name": m.name, "provider": m.provider,
                "alias": agent.aliases.of(&m.reference),
                "contextWindow": m.budget(), "reasoning": m.reasoning,
                "input": m.input, "tags": [tag], "available": true,
            })
        })
        .collect();
    json!({ "models": models })
}

fn agents(gw: &'static Gateway) -> Value {
    let list: Vec<Value> = gw
        .runtime()
        .agents()
        .map(|a: &AgentModels| {
            json!({ "id": a.id, "model": { "primary": a.primary, "fallbacks": a.fallbacks } })
        })
        .collect();
    json!({
        "defaultId": gw.default_agent().id,
        "mainKey": "main",
        "scope": "per-sender",
        "agents": list,
    })
}

fn sessions(gw: &'static Gateway) -> Value {
    let mut rows: Vec<(u64, Value)> = Vec::new();
    for (agent, store) in gw.sessions() {
        for (key, e) in store.list() {
            rows.push((
                e.updated_at,
                json!({
                    "key": key, "kind": "direct", "agentId": agent,
                    "sessionId": e.session_id, "updatedAt": e.updated_at,
                    "inputTokens": e.input_tokens, "outputTokens": e.output_tokens,
                    "totalTokens": e.total_tokens,
                }),
            ));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let sessions: Vec<Value> = rows.into_iter().map(|(_, v)| v).collect();
    json!({ "ts": now_ms(), "count": sessions.len(), "sessions": sessions })
}

/// A transcript as OpenClaw's clients read it.
fn history(gw: &'static Gateway, p: &SessionRef) -> Result<Value, ErrorBody> {
    let asked = p.key().unwrap_or("main").to_string();
    let (key, agent) = session(gw, Some(&asked), None)?;
    let Some(store) = gw.sessions().get(&agent) else {
        return Err(ErrorBody::invalid(format!("unknown agent: {agent}")));
    };
    let Some(entry) = store.get(&key) else {
        return Ok(json!({ "sessionKey": asked, "messages": [] }));
    };
    let tree = store
        .tree(&entry.session_id)
        .map_err(|e| ErrorBody::unavailable(e.to_string()))?;
    let mut messages: Vec<Value> = tree
        .branch()
        .into_iter()
        .filter_map(|e| match &e.body {
            Body::Message(m) => Some(display(m, e.answered_by.as_deref())),
            _ => None,
        })
        .collect();
    let limit = p.limit.unwrap_or(200).min(1000);
    if messages.len() > limit {
        messages.drain(..messages.len() - limit);
    }
    Ok(json!({ "sessionKey": asked, "sessionId": entry.session_id, "messages": messages }))
}

fn display(m: &Message, model: Option<&str>) -> Value {
    match m {
        Message::User { text } => json!({ "role": "user", "content": text }),
        Message::System { text } => json!({ "role": "system", "content": text }),
        Message::Assistant {
            text, tool_calls, ..
        } => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(json!({ "type": "text", "text": text }));
            }
            for c in tool_calls {
                content.push(json!({ "type": "toolCall", "id": c.id, "name": c.name, "arguments": c.arguments }));
            }
            let (provider, id) = model.and_then(|m| m.split_once('/')).unzip();
            json!({ "role": "assistant", "content": content, "provider": provider, "model": id })
        }
        Message::Tool {
            call_id,
            name,
            content,
            is_error,
        } => json!({ "role": "toolResult", "toolCallId": call_id, "toolName": name,
            "content": [{ "type": "text", "text": content }], "isError": is_error }),
    }
}

/// `chat.inject`: an assistant note in the transcript, told as a final
/// `chat` event; no model runs.
fn inject(gw: &'static Gateway, p: &Inject) -> Result<Value, ErrorBody> {
    let (key, agent) = session(gw, p.session_key.as_deref(), None)?;
    let store = gw
        .sessions()
        .get(&agent)
        .ok_or_else(|| ErrorBody::invalid(format!("unknown agent: {agent}")))?;
    let text = match &p.label {
        Some(l) => format!("[{l}] {}", p.message),
        None => p.message.clone(),
    };
    let written = store
        .record_messages(
            &key,
            &[Message::Assistant {
                text: text.clone(),
                reasoning: None,
                tool_calls: Vec::new(),
            }],
        )
        .map_err(|e| ErrorBody::unavailable(e.to_string()))?;
    let message_id = written.last().map(|e| e.id.clone());
    let run_id = format!("inject-{}", message_id.clone().unwrap_or_default());
    gw.ws.broadcast(
        "chat",
        json!({ "runId": run_id, "sessionKey": key, "seq": 0, "state": "final",
            "message": { "role": "assistant", "content": [{ "type": "text", "text": text }], "timestamp": now_ms() } }),
    );
    sessions_changed(gw, &key, "inject");
    Ok(json!({ "ok": true, "messageId": message_id }))
}

fn delete(gw: &'static Gateway, p: &SessionRef) -> Result<Value, ErrorBody> {
    let (key, agent) = session(gw, p.key(), None)?;
    if key == main_key(gw, &agent) {
        return Err(ErrorBody::invalid(format!(
            "cannot delete the main session ({key}); use sessions.reset"
        )));
    }
    let store = gw
        .sessions()
        .get(&agent)
        .ok_or_else(|| ErrorBody::invalid(format!("unknown agent: {agent}")))?;
    let deleted = store
        .delete(&key)
        .map_err(|e| ErrorBody::unavailable(e.to_string()))?;
    if deleted {
        sessions_changed(gw, &key, "delete");
    }
    Ok(json!({ "ok": true, "key": key, "deleted": deleted }))
}

/// Tells every connection a session changed.
pub(super) fn sessions_changed(gw: &'static Gateway, key: &str, reason: &str) {
    gw.ws.broadcast(
        "sessions.changed",
        json!({ "sessionKey": key, "reason": reason, "ts": now_ms() }),
    );
}

/// OpenClaw's mark for a value it will not show.
const REDACTED: &str = "__OPENCLAW_REDACTED__";

/// Replaces whatever may hold a secret: anything under a key that names
/// one (its whole subtree: arrays of keys too), every `env` value, and the
/// credentials and query of URLs.
fn scrub(v: &mut Value, top: bool) {
    const SECRET: [&str; 8] = [
        "key",
        "token",
        "secret",
        "password",
        "auth",
        "credential",
        "cookie",
        "bearer",
    ];
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET.iter().any(|s| lower.contains(s)) || (top && lower == "env");
                if secret && !child.is_null() && !child.is_boolean() {
                    *child = Value::String(REDACTED.into());
                } else {
                    scrub(child, false);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| scrub(c, false)),
        Value::String(s) => {
            if let Ok(mut u) = url::Url::parse(s)
                && u.has_host()
                && (!u.username().is_empty() || u.password().is_some() || u.query().is_some())
            {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                *s = u.to_string();
            }
        }
        _ => {}
    }
}

/// The effective config, every secret replaced.
fn config(gw: &'static Gateway) -> Value {
    let loaded = gw.loaded;
    let mut shown = loaded.to_redacted_json();
    scrub(&mut shown, true);
    json!({
        "path": loaded.path.as_ref().map(|p| p.display().to_string()),
        "config": shown,
        "valid": loaded.errors().next().is_none(),
        // Where each problem is, not its text (which may quote a value).
        "issues": loaded.diagnostics.iter().map(|d| json!({
            "path": d.path,
            "severity": if d.is_error() { "error" } else { "warning" } })).collect::<Vec<_>>(),
    })
}

/// Tokens and cost so far, by model, from the sessions' transcripts.
fn usage(gw: &'static Gateway) -> Value {
    let mut models = serde_json::Map::new();
    let (mut input, mut output, mut cost) = (0u64, 0u64, 0f64);
    for store in gw.sessions().values() {
        let Ok(by_model) = store.usage_by_model() else {
            continue;
        };
        // Notes injected into a transcript answer as no model.
        for (model, u) in by_model.into_iter().filter(|(m, _)| m.len() > 1) {
            input += u.input;
            output += u.output;
            cost += u.cost_usd;
            models.insert(model, to_value(&u));
        }
    }
    json!({ "updatedAt": now_ms(),
        "totals": { "input": input, "output": output, "totalTokens": input + output, "totalCost": cost },
        "byModel": models })
}

fn chat_send(gw: &'static Gateway, p: ChatSend) -> Result<Value, ErrorBody> {
    let (key, agent) = session(gw, p.session_key.as_deref(), None)?;
    let run_id = p.idempotency_key;
    Ok(match gw.ws.start(gw, &run_id, &agent, &key, p.message) {
        Start::Elsewhere(other) => return Err(reused(&run_id, &other)),
        Start::Started(_) => json!({ "runId": run_id, "status": "started" }),
        Start::Known(done) => match &*done.borrow() {
            None => json!({ "runId": run_id, "status": "in_flight" }),
            Some(Outcome::Error(e)) => json!({ "runId": run_id, "status": "error", "summary": e }),
            Some(Outcome::Aborted) => json!({ "runId": run_id, "status": "aborted" }),
            Some(Outcome::Ok { .. }) => json!({ "runId": run_id, "status": "ok" }),
        },
    })
}

fn reused(run_id: &str, other: &str) -> ErrorBody {
    ErrorBody::invalid(format!(
        "idempotencyKey {run_id:?} was already used for a run in another session ({other})"
    ))
}

/// `chat.abort`: the run named (in whatever session it is), else what
/// runs in the session.
fn chat_abort(gw: &'static Gateway, p: &SessionRef) -> Result<Value, ErrorBody> {
    let key = match p.run_id.as_deref().and_then(|r| gw.ws.get(r)) {
        Some(run) => run.session_key,
        None if p.run_id.is_some() => {
            return Ok(json!({ "ok": true, "aborted": false, "runIds": [] }));
        }
        None => session(gw, p.key(), None)?.0,
    };
    let runs = gw.ws.in_flight(&key);
    let aborted = gw.runtime().abort(&key);
    Ok(json!({ "ok": true, "aborted": aborted, "runIds": if aborted { runs } else { Vec::new() } }))
}

/// `agent`: answered twice on the same id, as OpenClaw does: accepted at
/// once, then the run's result.
fn agent(gw: &'static Gateway, out: &Outbox, id: &str, p: AgentParams) {
    let (key, agent) = match session(gw, p.session_key.as_deref(), p.agent_id.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            out.send(&Frame::err(id, e));
            return;
        }
    };
    let run_id = p.idempotency_key;
    let accepted_at = now_ms();
    let done = match gw.ws.start(gw, &run_id, &agent, &key, p.message) {
        Start::Started(done) | Start::Known(done) => done,
        Start::Elsewhere(other) => {
            out.send(&Frame::err(id, reused(&run_id, &other)));
            return;
        }
    };
    out.send(&Frame::ok(
        id,
        json!({ "runId": run_id, "status": "accepted", "sessionKey": key, "agentId": agent,
            "acceptedAt": accepted_at }),
    ));
    let (out, id) = (out.clone(), id.to_string());
    tokio::spawn(async move {
        let mut done = done;
        // A turn may take long; not longer than OpenClaw's own limit.
        let outcome = tokio::time::timeout(AGENT_LIMIT, done.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|o| o.clone()));
        let frame = match outcome {
            Some(Outcome::Ok {
                text,
                model,
                session_id,
                stop_reason,
            }) => {
                let (provider, model) = model.split_once('/').unwrap_or(("", &model));
                Frame::ok(
                    &id,
                    json!({ "runId": run_id, "status": "ok", "summary": "completed",
                        "result": {
                            "payloads": text.map(|t| vec![json!({ "text": t, "mediaUrl": null })]).unwrap_or_default(),
                            "meta": { "durationMs": now_ms().saturating_sub(accepted_at), "stopReason": stop_reason,
                                "agentMeta": { "sessionId": session_id, "provider": provider, "model": model } } } }),
                )
            }
            Some(Outcome::Aborted) => Frame::Res {
                id: id.clone(),
                ok: false,
                payload: Some(json!({ "runId": run_id, "status": "aborted" })),
                error: Some(ErrorBody::unavailable("the run was aborted")),
            },
            Some(Outcome::Error(e)) => Frame::Res {
                id: id.clone(),
                ok: false,
                payload: Some(json!({ "runId": run_id, "status": "error", "summary": e })),
                error: Some(ErrorBody::unavailable(e)),
            },
            None => Frame::err(
                &id,
                ErrorBody::unavailable("no result within the time allowed"),
            ),
        };
        out.send(&frame);
    });
}

async fn agent_wait(gw: &'static Gateway, p: RunRef) -> Result<Value, ErrorBody> {
    let Some(info) = gw.ws.get(&p.run_id) else {
        return Err(ErrorBody::invalid(format!("unknown run: {}", p.run_id)));
    };
    let limit = Duration::from_millis(p.timeout_ms.unwrap_or(30_000).min(600_000));
    let mut done = info.done.clone();
    let outcome = tokio::time::timeout(limit, done.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|o| o.clone()));
    let ended_at = gw.ws.get(&p.run_id).and_then(|i| i.ended_at);
    Ok(match outcome {
        None => json!({ "runId": p.run_id, "status": "timeout" }),
        Some(Outcome::Ok {
            stop_reason, text, ..
        }) => json!({
            "runId": p.run_id, "status": "ok", "startedAt": info.started_at, "endedAt": ended_at,
            "stopReason": stop_reason, "terminalReply": { "text": text } }),
        Some(Outcome::Aborted) => json!({ "runId": p.run_id, "status": "error",
            "startedAt": info.started_at, "endedAt": ended_at, "error": "aborted" }),
        Some(Outcome::Error(e)) => json!({ "runId": p.run_id, "status": "error",
            "startedAt": info.started_at, "endedAt": ended_at, "error": e }),
    })
}

/// `sessions.reset`, `.patch {model}` and `.compact` are the runtime's own
/// commands (`/reset`, `/model`, `/compact`) on that session.
async fn session_command(
    gw: &'static Gateway,
    method: &str,
    p: &SessionRef,
) -> Result<Value, ErrorBody> {
    let (key, agent) = session(gw, p.key(), None)?;
    let commands: Vec<String> = match method {
        "sessions.reset" => vec!["/reset".into()],
        "sessions.compact" => vec!["/compact".into()],
        _ => p
            .model
            .iter()
            .map(|m| format!("/model {m}"))
            .chain(p.thinking_level.iter().map(|t| format!("/think {t}")))
            .collect(),
    };
    let mut said = Vec::new();
    for command in commands {
        let d = Delivery {
            agent: agent.clone(),
            session_key: key.clone(),
            input: vec![Message::user(command)],
            ..Delivery::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (done, ()) = tokio::join!(gw.runtime().deliver(d, tx), drain);
        let done = done.map_err(|e| ErrorBody::unavailable(e.to_string()))?;
        said.extend(done.final_text);
    }
    sessions_changed(gw, &key, method.trim_start_matches("sessions."));
    let entry = gw.sessions().get(&agent).and_then(|s| s.get(&key));
    Ok(
        json!({ "ok": true, "key": key, "sessionId": entry.map(|e| e.session_id),
        "message": (!said.is_empty()).then(|| said.join("\n")) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who may call what, one row per kind of method and scope.
    #[test]
    fn scopes_table() {
        let table: [(&[&str], &str, bool); 9] = [
            (&["operator.read"], "sessions.list", true),
            (&["operator.read"], "chat.send", false),
            (&["operator.write"], "chat.send", true),
            (&["operator.write"], "agents.list", true),
            (&["operator.write"], "config.get", false),
            (&["operator.write"], "sessions.delete", false),
            (&["operator.admin"], "config.get", true),
            (&["operator.admin"], "agent", true),
            (&[], "health", false),
        ];
        for (granted, method, ok) in table {
            let granted: Vec<String> = granted.iter().map(|s| s.to_string()).collect();
            assert_eq!(permits(&granted, needs(method)), ok, "{granted:?} {method}");
        }
    }

    #[test]
    fn the_config_shown_has_no_secrets() {
        let mut v = json!({
            "env": { "OPENROUTER": "sk-or-1" },
            "models": { "providers": { "a": {
                "apiKey": "sk-a", "apiKeys": ["sk-b", "sk-c"],
                "baseUrl": "https://user:pw@example.com/v1?key=sk-d",
                "headers": { "Authorization": "Bearer sk-e" } } } },
            "gateway": { "auth": { "mode": "token", "token": "t0k" }, "port": 18789 },
        });
        scrub(&mut v, true);
        let text = v.to_string();
        for secret in [
            "sk-or-1", "sk-a", "sk-b", "sk-c", "pw", "sk-d", "sk-e", "t0k",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["gateway"]["port"], 18789);
        assert_eq!(
            v["models"]["providers"]["a"]["baseUrl"],
            "https://example.com/v1"
        );
    }
}
