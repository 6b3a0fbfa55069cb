//! The one handler path both OpenAI surfaces take: the typed body, the
//! endpoint switch, the plan (agent, candidates, session), then a whole
//! answer or an SSE stream (with keep-alive comments while the model is
//! silent). A surface only says how its requests read and its replies look.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, stream};
use pincer_llm::ChatRequest;
use pincer_router::Completed;
use serde::de::DeserializeOwned;

use crate::Gateway;
use crate::error::ApiError;
use crate::plan::plan;
use crate::settings::Settings;
use crate::turn::Out;
use crate::wire::{Body, IGNORED_HEADER, MODEL_HEADER, set_header};

/// What one request asks for, read and checked.
pub struct Turn<E> {
    /// The `model` field: an agent or a model.
    pub model: String,
    pub user: Option<String>,
    pub stream: bool,
    pub req: ChatRequest,
    /// Fields the request carried that Pincer does not use.
    pub ignored: Vec<String>,
    /// What the reply needs of the request (ids, echoes, options).
    pub echo: E,
}

/// One OpenAI surface: its request body, and its replies.
pub trait Surface: DeserializeOwned + Send + 'static {
    /// Names the surface in generated session keys (`openai`, `openresponses`).
    const KEY: &'static str;
    type Echo: Send + 'static;
    type Frames: Frames;

    /// The 404 of a surface the config turned off: how to turn it on.
    const DISABLED: &'static str;
    fn enabled(settings: &Settings) -> bool;
    fn turn(self) -> Result<Turn<Self::Echo>, ApiError>;
    /// The whole reply (`stream: false`) of `agent`'s turn.
    fn whole(echo: &Self::Echo, done: &Completed, agent: &str) -> Response;
    /// The frames of `agent`'s turn, which `model` started to answer.
    fn frames(echo: Self::Echo, model: &str, agent: &str) -> Self::Frames;
}

/// A streamed reply's frames, step by step.
pub trait Frames: Send + 'static {
    /// Sent before the first event.
    fn head(&mut self) -> Vec<SseEvent>;
    /// The frames for one thing the turn sent, and whether the stream ends.
    fn out(&mut self, out: Out) -> (Vec<SseEvent>, bool);
    /// The turn ended without finishing: never a silent success.
    fn cut(&mut self) -> Vec<SseEvent>;
}

pub async fn serve<S: Surface>(
    State(gw): State<&'static Gateway>,
    headers: HeaderMap,
    Body(body): Body<S>,
) -> Result<Response, ApiError> {
    if !S::enabled(&gw.settings) {
        return Err(ApiError::Disabled(S::DISABLED));
    }
    let t = body.turn()?;
    let plan = plan(gw, &t.model, &headers, t.user.as_deref(), S::KEY)?;
    let mut response = if t.stream {
        let plan_agent = plan.agent.id.clone();
        let started = gw.stream(plan, t.req).await?;
        let mut frames = S::frames(t.echo, &started.model, &plan_agent);
        let head = frames.head();
        let rest = stream::unfold(
            (started.rx, frames, false),
            |(mut rx, mut frames, ended)| async move {
                if ended {
                    return None;
                }
                let (batch, ended) = match rx.recv().await {
                    Some(out) => frames.out(out),
                    None => (frames.cut(), true),
                };
                Some((stream::iter(batch), (rx, frames, ended)))
            },
        )
        .flatten();
        let events = stream::iter(head).chain(rest).map(Ok::<_, Infallible>);
        let keep_alive = KeepAlive::new()
            .interval(gw.settings.keep_alive)
            .text("keep-alive");
        let mut r = Sse::new(events).keep_alive(keep_alive).into_response();
        set_header(&mut r, MODEL_HEADER, &started.model);
        r
    } else {
        let done = gw.complete(&plan, t.req).await?;
        let mut r = S::whole(&t.echo, &done, &plan.agent.id);
        set_header(&mut r, MODEL_HEADER, &done.spec.reference);
        r
    };
    if !t.ignored.is_empty() {
        let names = t.ignored.join(", ");
        tracing::debug!("{}: fields not used: {names}", S::KEY);
        set_header(&mut response, IGNORED_HEADER, &names);
    }
    Ok(response)
}
