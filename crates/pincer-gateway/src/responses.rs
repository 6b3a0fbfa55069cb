//! `POST /v1/responses` in the Responses API's wire shapes: output items
//! (`reasoning`, `message`, `function_call`), streamed as typed events
//! (`response.created` … `response.completed`) or returned whole.
//! Reasoning is its own item, never part of the message's text.

use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use pincer_llm::{ChatRequest, Event, FinishReason, Message, Reply, ToolCall, ToolChoice, Usage};
use pincer_router::{Attempt, Completed};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::chat::tool_name;
use crate::error::ApiError;
use crate::settings::Settings;
use crate::surface::{Frames, Surface, Turn};
use crate::turn::Out;
use crate::wire::{
    self, CachedTokens, Content, Extra, FunctionDef, Metadata, ReasoningTokens, WireToolChoice,
    done, frame, new_id, unix_now,
};

/// Fields OpenAI defines that Pincer accepts and does not use.
const KNOWN: [&str; 14] = [
    "store",
    "metadata",
    "parallel_tool_calls",
    "text",
    "truncation",
    "include",
    "service_tier",
    "background",
    "prompt",
    "prompt_cache_key",
    "safety_identifier",
    "top_logprobs",
    "max_tool_calls",
    "conversation",
];

/// A Responses API request, as the SDKs send it.
#[derive(Debug, Deserialize)]
pub struct ResponsesBody {
    model: Option<String>,
    input: Option<Input>,
    instructions: Option<String>,
    stream: Option<bool>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    reasoning: Option<ReasoningOptions>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    user: Option<String>,
    previous_response_id: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[derive(Debug, Deserialize)]
struct InputItem {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    content: Option<Content>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    output: Option<Content>,
}

#[derive(Debug, Deserialize)]
struct ReasoningOptions {
    effort: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireTool {
    #[serde(rename = "type", default)]
    kind: String,
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
}

/// What the reply needs of the request.
pub struct Echo {
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    tools: Vec<ToolOut>,
    tool_choice: ToolChoiceOut,
}

impl Surface for ResponsesBody {
    const KEY: &'static str = "openresponses";
    type Echo = Echo;
    type Frames = Output;

    const DISABLED: &'static str =
        "/v1/responses is disabled (gateway.http.endpoints.responses.enabled)";

    fn enabled(settings: &Settings) -> bool {
        settings.responses
    }

    fn turn(self) -> Result<Turn<Echo>, ApiError> {
        if self.previous_response_id.is_some() {
            return Err(ApiError::BadRequest(
                "`previous_response_id` is not supported: send the conversation in `input` \
                 (the session keeps its transcript either way)"
                    .into(),
            ));
        }
        let mut messages = Vec::new();
        if let Some(i) = &self.instructions {
            messages.push(Message::system(i));
        }
        match self.input {
            Some(Input::Text(s)) => messages.push(Message::user(s)),
            Some(Input::Items(items)) => input_items(items, &mut messages)?,
            None => {
                return Err(ApiError::BadRequest(
                    "`input` must be a string or a list of items".into(),
                ));
            }
        }
        if !messages
            .iter()
            .any(|m| !matches!(m, Message::System { .. }))
        {
            return Err(ApiError::BadRequest("`input` holds no message".into()));
        }
        let tools = wire::function_tools(
            self.tools.unwrap_or_default().into_iter().map(|t| {
                let def = FunctionDef {
                    name: t.name,
                    description: t.description,
                    parameters: t.parameters,
                };
                (t.kind, def)
            }),
            "name",
        )?;
        let (tools, tool_choice) = wire::tool_choice(
            tools,
            self.tool_choice,
            r#"{"type": "function", "name": …}"#,
        )?;
        let req = ChatRequest {
            messages,
            max_tokens: wire::positive(self.max_output_tokens, "max_output_tokens")?,
            temperature: wire::temperature(self.temperature)?,
            reasoning_effort: wire::effort(self.reasoning.and_then(|r| r.effort).as_deref())?,
            top_p: wire::top_p(self.top_p)?,
            tools,
            tool_choice,
            ..ChatRequest::default()
        };
        let model = self.model.unwrap_or_else(|| "openclaw".into());
        Ok(Turn {
            echo: Echo {
                instructions: self.instructions,
                max_output_tokens: req.max_tokens,
                tools: req
                    .tools
                    .iter()
                    .map(|t| ToolOut {
                        kind: "function",
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.clone(),
                        strict: false,
                    })
                    .collect(),
                tool_choice: match &req.tool_choice {
                    None | Some(ToolChoice::Auto) => ToolChoiceOut::Mode("auto"),
                    Some(ToolChoice::Required) => ToolChoiceOut::Mode("required"),
                    Some(ToolChoice::Tool(name)) => ToolChoiceOut::Named {
                        kind: "function",
                        name: name.clone(),
                    },
                    Some(ToolChoice::None) => ToolChoiceOut::Mode("none"),
                },
            },
            model,
            user: self.user,
            stream: self.stream.unwrap_or(false),
            req,
            ignored: wire::ignored(&self.extra, &KNOWN),
        })
    }

    fn whole(echo: &Echo, done: &Completed, agent: &str) -> Response {
        let mut out = Output::new(echo, &done.spec.reference, agent);
        for event in reply_events(&done.reply) {
            out.event(event);
        }
        out.events.clear();
        axum::Json(out.finish(&done.spec.reference, &done.attempts)).into_response()
    }

    fn frames(echo: Echo, model: &str, agent: &str) -> Output {
        Output::new(&echo, model, agent)
    }
}

fn input_items(items: Vec<InputItem>, out: &mut Vec<Message>) -> Result<(), ApiError> {
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("input[{i}]");
        let missing = |k: &str| ApiError::BadRequest(format!("{at}: `{k}` is missing"));
        match item.kind.as_deref().unwrap_or("message") {
            "message" => {
                let text = Content::text(item.content, &at)?;
                out.push(match item.role.as_deref() {
                    Some("system" | "developer") => Message::System { text },
                    Some("user") => Message::User { text },
                    Some("assistant") => Message::assistant(text),
                    other => {
                        return Err(ApiError::BadRequest(format!(
                            "{at}: role {other:?} is not system, developer, user or assistant"
                        )));
                    }
                });
            }
            "function_call" => {
                let call = ToolCall {
                    id: item.call_id.ok_or_else(|| missing("call_id"))?,
                    name: item.name.ok_or_else(|| missing("name"))?,
                    arguments: item.arguments.ok_or_else(|| missing("arguments"))?,
                };
                // Calls made in one turn belong to one assistant message.
                match out.last_mut() {
                    Some(Message::Assistant { tool_calls, .. }) => tool_calls.push(call),
                    _ => out.push(Message::Assistant {
                        text: String::new(),
                        reasoning: None,
                        tool_calls: vec![call],
                    }),
                }
            }
            "function_call_output" => {
                let call_id = item.call_id.ok_or_else(|| missing("call_id"))?;
                let content = Content::text(item.output, &at)?;
                let name = tool_name(out, &call_id);
                out.push(Message::Tool {
                    call_id,
                    name,
                    content,
                    is_error: false,
                });
            }
            // Earlier reasoning is the model's own scratch work: not resent.
            "reasoning" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{at}: items of type {other:?} are not supported"
                )));
            }
        }
    }
    Ok(())
}

/// A whole reply as the events a stream would have carried.
fn reply_events(r: &Reply) -> Vec<Event> {
    let mut events = Vec::new();
    if !r.reasoning.is_empty() {
        events.push(Event::Reasoning {
            delta: r.reasoning.clone(),
        });
    }
    if !r.text.is_empty() || r.tool_calls.is_empty() {
        events.push(Event::Text {
            delta: r.text.clone(),
        });
    }
    for (index, c) in r.tool_calls.iter().enumerate() {
        events.push(Event::ToolCall {
            index,
            id: Some(c.id.clone()),
            name: Some(c.name.clone()),
            arguments: c.arguments.clone(),
        });
    }
    events.push(Event::Usage { usage: r.usage });
    if let Some(f) = &r.finish {
        events.push(Event::Done { finish: f.clone() });
    }
    events
}

/// One output item of a response.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    Reasoning {
        id: String,
        summary: Vec<()>,
        content: Vec<Part>,
        status: &'static str,
    },
    Message {
        id: String,
        role: &'static str,
        status: &'static str,
        content: Vec<Part>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: &'static str,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. }
            | Item::Message { id, .. }
            | Item::FunctionCall { id, .. } => id,
        }
    }

    fn complete(&mut self) {
        match self {
            Item::Reasoning { status, .. }
            | Item::Message { status, .. }
            | Item::FunctionCall { status, .. } => *status = "completed",
        }
    }

    /// The text part of a reasoning or message item.
    fn part(&self) -> Option<&Part> {
        match self {
            Item::Reasoning { content, .. } | Item::Message { content, .. } => content.first(),
            Item::FunctionCall { .. } => None,
        }
    }

    fn part_mut(&mut self) -> Option<&mut Part> {
        match self {
            Item::Reasoning { content, .. } | Item::Message { content, .. } => content.first_mut(),
            Item::FunctionCall { .. } => None,
        }
    }

    fn is_reasoning(&self) -> bool {
        matches!(self, Item::Reasoning { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    ReasoningText {
        text: String,
    },
    OutputText {
        text: String,
        annotations: Vec<()>,
        logprobs: Vec<()>,
    },
}

impl Part {
    fn text(&self) -> &str {
        match self {
            Part::ReasoningText { text } | Part::OutputText { text, .. } => text,
        }
    }

    fn push(&mut self, delta: &str) {
        match self {
            Part::ReasoningText { text } | Part::OutputText { text, .. } => text.push_str(delta),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct ToolOut {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    description: String,
    parameters: Value,
    strict: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum ToolChoiceOut {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        name: String,
    },
}

/// The response object.
#[derive(Debug, Clone, Serialize)]
struct ResponseObject {
    id: String,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    model: String,
    output: Vec<Item>,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    parallel_tool_calls: bool,
    tool_choice: ToolChoiceOut,
    tools: Vec<ToolOut>,
    text: TextFormat,
    truncation: &'static str,
    store: bool,
    error: Option<ErrorOut>,
    incomplete_details: Option<Incomplete>,
    #[serde(serialize_with = "empty_unless_set")]
    metadata: Option<Metadata>,
    usage: Option<WireUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_text: Option<String>,
}

fn empty_unless_set<S: Serializer>(m: &Option<Metadata>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => m.serialize(s),
        None => std::collections::BTreeMap::<(), ()>::new().serialize(s),
    }
}

#[derive(Debug, Clone, Serialize)]
struct TextFormat {
    format: FormatKind,
}

#[derive(Debug, Clone, Serialize)]
struct FormatKind {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorOut {
    code: &'static str,
    message: String,
}

#[derive(Debug, Clone, Serialize)]
struct Incomplete {
    reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct WireUsage {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            input_tokens: u.prompt_tokens(),
            input_tokens_details: CachedTokens {
                cached_tokens: u.cache_read,
            },
            output_tokens: u.output,
            output_tokens_details: ReasoningTokens {
                reasoning_tokens: u.reasoning,
            },
            total_tokens: u.prompt_tokens() + u.output,
        }
    }
}

/// The streamed events, each with its own fields (`type` is the name).
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum StreamEvent {
    #[serde(rename = "response.created")]
    Created { response: ResponseObject },
    #[serde(rename = "response.in_progress")]
    InProgress { response: ResponseObject },
    #[serde(rename = "response.output_item.added")]
    ItemAdded { output_index: usize, item: Item },
    #[serde(rename = "response.content_part.added")]
    PartAdded {
        item_id: String,
        output_index: usize,
        content_index: usize,
        part: Part,
    },
    #[serde(rename = "response.reasoning_text.delta")]
    ReasoningDelta {
        item_id: String,
        output_index: usize,
        content_index: usize,
        delta: String,
    },
    #[serde(rename = "response.output_text.delta")]
    TextDelta {
        item_id: String,
        output_index: usize,
        content_index: usize,
        delta: String,
        logprobs: Vec<()>,
    },
    #[serde(rename = "response.reasoning_text.done")]
    ReasoningDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        text: String,
    },
    #[serde(rename = "response.output_text.done")]
    TextDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        text: String,
        logprobs: Vec<()>,
    },
    #[serde(rename = "response.content_part.done")]
    PartDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        part: Part,
    },
    #[serde(rename = "response.output_item.done")]
    ItemDone { output_index: usize, item: Item },
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta {
        item_id: String,
        output_index: usize,
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone {
        item_id: String,
        output_index: usize,
        name: String,
        arguments: String,
    },
    #[serde(rename = "response.completed")]
    Completed { response: ResponseObject },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: ResponseObject },
    #[serde(rename = "response.failed")]
    Failed { response: ResponseObject },
}

impl StreamEvent {
    fn name(&self) -> &'static str {
        match self {
            StreamEvent::Created { .. } => "response.created",
            StreamEvent::InProgress { .. } => "response.in_progress",
            StreamEvent::ItemAdded { .. } => "response.output_item.added",
            StreamEvent::PartAdded { .. } => "response.content_part.added",
            StreamEvent::ReasoningDelta { .. } => "response.reasoning_text.delta",
            StreamEvent::TextDelta { .. } => "response.output_text.delta",
            StreamEvent::ReasoningDone { .. } => "response.reasoning_text.done",
            StreamEvent::TextDone { .. } => "response.output_text.done",
            StreamEvent::PartDone { .. } => "response.content_part.done",
            StreamEvent::ItemDone { .. } => "response.output_item.done",
            StreamEvent::ArgumentsDelta { .. } => "response.function_call_arguments.delta",
            StreamEvent::ArgumentsDone { .. } => "response.function_call_arguments.done",
            StreamEvent::Completed { .. } => "response.completed",
            StreamEvent::Incomplete { .. } => "response.incomplete",
            StreamEvent::Failed { .. } => "response.failed",
        }
    }
}

/// An event on the wire: its fields and its place in the stream.
#[derive(Serialize)]
struct Numbered<'a> {
    #[serde(flatten)]
    event: &'a StreamEvent,
    sequence_number: u64,
}

/// The response's output items as they grow, and the SSE events that
/// describe each step.
pub struct Output {
    id: String,
    /// The model answering now (after a continuation, the one that took over).
    model: String,
    agent: String,
    created_at: u64,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    tools: Vec<ToolOut>,
    tool_choice: ToolChoiceOut,
    items: Vec<Item>,
    /// The reasoning or message item taking deltas now.
    open: Option<usize>,
    /// Tool call index → its item, while its arguments stream.
    calls: Vec<(usize, usize)>,
    usage: Usage,
    finish: Option<FinishReason>,
    seq: u64,
    events: Vec<SseEvent>,
    /// The event names, in order (for tests).
    #[cfg(test)]
    names: Vec<&'static str>,
}

impl Output {
    fn new(echo: &Echo, model: &str, agent: &str) -> Output {
        Output {
            id: new_id("resp_"),
            model: model.to_string(),
            agent: agent.to_string(),
            created_at: unix_now(),
            instructions: echo.instructions.clone(),
            max_output_tokens: echo.max_output_tokens,
            tools: echo.tools.clone(),
            tool_choice: echo.tool_choice.clone(),
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            usage: Usage::default(),
            finish: None,
            seq: 0,
            events: Vec::new(),
            #[cfg(test)]
            names: Vec::new(),
        }
    }

    fn emit(&mut self, event: StreamEvent) {
        let name = event.name();
        self.events.push(frame(
            Some(name),
            &Numbered {
                event: &event,
                sequence_number: self.seq,
            },
        ));
        self.seq += 1;
        #[cfg(test)]
        self.names.push(name);
    }

    fn response(&self, status: &'static str) -> ResponseObject {
        ResponseObject {
            id: self.id.clone(),
            object: "response",
            created_at: self.created_at,
            status,
            model: self.model.clone(),
            output: self.items.clone(),
            instructions: self.instructions.clone(),
            max_output_tokens: self.max_output_tokens,
            parallel_tool_calls: true,
            tool_choice: self.tool_choice.clone(),
            tools: self.tools.clone(),
            text: TextFormat {
                format: FormatKind { kind: "text" },
            },
            truncation: "disabled",
            store: false,
            error: None,
            incomplete_details: None,
            metadata: None,
            usage: None,
            output_text: None,
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Reasoning { delta } => {
                let i = self.open_item(true);
                self.append(i, &delta);
                let item_id = self.items[i].id().to_string();
                self.emit(StreamEvent::ReasoningDelta {
                    item_id,
                    output_index: i,
                    content_index: 0,
                    delta,
                });
            }
            Event::Text { delta } => {
                let i = self.open_item(false);
                self.append(i, &delta);
                if !delta.is_empty() {
                    let item_id = self.items[i].id().to_string();
                    self.emit(StreamEvent::TextDelta {
                        item_id,
                        output_index: i,
                        content_index: 0,
                        delta,
                        logprobs: Vec::new(),
                    });
                }
            }
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => self.tool_call(index, id, name, &arguments),
            Event::Usage { usage } => self.usage = usage,
            Event::Done { finish } => self.finish = Some(finish),
            // The OpenAI surfaces have no field for it; the transcript keeps it.
            Event::Served { .. } => {}
        }
    }

    fn append(&mut self, i: usize, delta: &str) {
        if let Some(part) = self.items.get_mut(i).and_then(Item::part_mut) {
            part.push(delta);
        }
    }

    /// The open reasoning (or message) item, closing whatever else was open.
    fn open_item(&mut self, reasoning: bool) -> usize {
        if let Some(i) = self.open
            && self.items[i].is_reasoning() == reasoning
        {
            return i;
        }
        self.close_open();
        let i = self.items.len();
        let (item, part) = if reasoning {
            let part = Part::ReasoningText {
                text: String::new(),
            };
            let item = Item::Reasoning {
                id: new_id("rs_"),
                summary: Vec::new(),
                content: vec![part.clone()],
                status: "in_progress",
            };
            (item, part)
        } else {
            let part = Part::OutputText {
                text: String::new(),
                annotations: Vec::new(),
                logprobs: Vec::new(),
            };
            let item = Item::Message {
                id: new_id("msg_"),
                role: "assistant",
                status: "in_progress",
                content: vec![part.clone()],
            };
            (item, part)
        };
        // Announced without its part, which follows in its own event.
        let mut added = item.clone();
        match &mut added {
            Item::Reasoning { content, .. } | Item::Message { content, .. } => content.clear(),
            Item::FunctionCall { .. } => {}
        }
        let item_id = item.id().to_string();
        self.items.push(item);
        self.open = Some(i);
        self.emit(StreamEvent::ItemAdded {
            output_index: i,
            item: added,
        });
        self.emit(StreamEvent::PartAdded {
            item_id,
            output_index: i,
            content_index: 0,
            part,
        });
        i
    }

    fn close_open(&mut self) {
        let Some(i) = self.open.take() else { return };
        let Some(part) = self.items[i].part().cloned() else {
            return;
        };
        let item_id = self.items[i].id().to_string();
        let text = part.text().to_string();
        self.emit(if self.items[i].is_reasoning() {
            StreamEvent::ReasoningDone {
                item_id: item_id.clone(),
                output_index: i,
                content_index: 0,
                text,
            }
        } else {
            StreamEvent::TextDone {
                item_id: item_id.clone(),
                output_index: i,
                content_index: 0,
                text,
                logprobs: Vec::new(),
            }
        });
        self.emit(StreamEvent::PartDone {
            item_id,
            output_index: i,
            content_index: 0,
            part,
        });
        self.items[i].complete();
        let item = self.items[i].clone();
        self.emit(StreamEvent::ItemDone {
            output_index: i,
            item,
        });
    }

    fn tool_call(&mut self, index: usize, id: Option<String>, name: Option<String>, args: &str) {
        let i = match self.calls.iter().find(|(c, _)| *c == index) {
            Some((_, i)) => *i,
            None => {
                self.close_open();
                let i = self.items.len();
                let item = Item::FunctionCall {
                    id: new_id("fc_"),
                    call_id: id.clone().unwrap_or_else(|| new_id("call_")),
                    name: name.clone().unwrap_or_default(),
                    arguments: String::new(),
                    status: "in_progress",
                };
                self.items.push(item.clone());
                self.calls.push((index, i));
                self.emit(StreamEvent::ItemAdded {
                    output_index: i,
                    item,
                });
                i
            }
        };
        let Item::FunctionCall {
            id: item_id,
            name: call_name,
            arguments,
            ..
        } = &mut self.items[i]
        else {
            return;
        };
        if let Some(name) = name {
            *call_name = name;
        }
        arguments.push_str(args);
        let item_id = item_id.clone();
        if !args.is_empty() {
            self.emit(StreamEvent::ArgumentsDelta {
                item_id,
                output_index: i,
                delta: args.to_string(),
            });
        }
    }

    fn close_calls(&mut self) {
        let mut open: Vec<usize> = self.calls.drain(..).map(|(_, i)| i).collect();
        open.sort_unstable();
        for i in open {
            self.items[i].complete();
            let item = self.items[i].clone();
            if let Item::FunctionCall {
                id,
                name,
                arguments,
                ..
            } = &item
            {
                self.emit(StreamEvent::ArgumentsDone {
                    item_id: id.clone(),
                    output_index: i,
                    name: name.clone(),
                    arguments: arguments.clone(),
                });
            }
            self.emit(StreamEvent::ItemDone {
                output_index: i,
                item,
            });
        }
    }

    /// Closes every item; the final response object.
    fn finish(&mut self, model: &str, attempts: &[Attempt]) -> ResponseObject {
        self.model = model.to_string();
        self.close_open();
        self.close_calls();
        let cut = self.finish == Some(FinishReason::Length);
        let mut r = self.response(if cut { "incomplete" } else { "completed" });
        if cut {
            r.incomplete_details = Some(Incomplete {
                reason: "max_output_tokens",
            });
        }
        r.usage = Some(WireUsage::from(&self.usage));
        r.metadata = Some(Metadata::new(model, &self.agent, attempts));
        r.output_text = Some(
            self.items
                .iter()
                .filter(|i| matches!(i, Item::Message { .. }))
                .filter_map(Item::part)
                .map(Part::text)
                .collect(),
        );
        r
    }

    fn failed(&mut self, e: &ApiError) {
        let mut r = self.response("failed");
        r.error = Some(ErrorOut {
            code: "server_error",
            message: e.to_string(),
        });
        r.usage = Some(WireUsage::from(&self.usage));
        self.emit(StreamEvent::Failed { response: r });
        self.events.push(done());
    }
}

impl Frames for Output {
    fn head(&mut self) -> Vec<SseEvent> {
        self.emit(StreamEvent::Created {
            response: self.response("in_progress"),
        });
        self.emit(StreamEvent::InProgress {
            response: self.response("in_progress"),
        });
        std::mem::take(&mut self.events)
    }

    fn out(&mut self, out: Out) -> (Vec<SseEvent>, bool) {
        let ended = match out {
            Out::Event(e) => {
                self.event(e);
                false
            }
            Out::Finished { model, attempts } => {
                let response = self.finish(&model, &attempts);
                self.emit(if response.status == "incomplete" {
                    StreamEvent::Incomplete { response }
                } else {
                    StreamEvent::Completed { response }
                });
                self.events.push(done());
                true
            }
            Out::Error(e) => {
                self.failed(&e);
                true
            }
        };
        (std::mem::take(&mut self.events), ended)
    }

    fn cut(&mut self) -> Vec<SseEvent> {
        self.failed(&ApiError::Incomplete);
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Result<Turn<Echo>, ApiError> {
        wire::read::<ResponsesBody>(v.to_string().as_bytes())?.turn()
    }

    #[test]
    fn a_stream_opens_and_closes_each_item_in_order() {
        let p = parse(&json!({"input": "hi", "stream": true})).unwrap();
        let mut out = Output::new(&p.echo, "local/m", "main");
        out.event(Event::Reasoning {
            delta: "think".into(),
        });
        out.event(Event::Text {
            delta: "Hel".into(),
        });
        out.event(Event::Text { delta: "lo".into() });
        out.event(Event::ToolCall {
            index: 0,
            id: Some("call_1".into()),
            name: Some("f".into()),
            arguments: "{}".into(),
        });
        out.event(Event::Done {
            finish: FinishReason::ToolCalls,
        });
        let r = serde_json::to_value(out.finish("local/m", &[])).unwrap();
        assert_eq!(
            out.names,
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
            ]
        );
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output"][0]["type"], "reasoning");
        assert_eq!(r["output"][0]["content"][0]["text"], "think");
        assert_eq!(r["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(r["output"][1]["content"][0]["type"], "output_text");
        assert_eq!(r["output"][2]["type"], "function_call");
        assert_eq!(r["output"][2]["call_id"], "call_1");
        assert_eq!(r["output_text"], "Hello");
        assert_eq!(r["metadata"]["model"], "local/m");
    }

    #[test]
    fn input_items_become_one_conversation() {
        let p = parse(&json!({
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": "weather in Paris?"},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
        }))
        .unwrap();
        assert_eq!(p.req.messages.len(), 4);
        assert_eq!(
            p.req.messages[3],
            Message::Tool {
                call_id: "c1".into(),
                name: "weather".into(),
                content: "sunny".into(),
                is_error: false
            }
        );
        assert!(parse(&json!({"input": [{"type": "item_reference", "id": "x"}]})).is_err());
        assert!(parse(&json!({"input": "x", "previous_response_id": "resp_1"})).is_err());
        let e = parse(&json!({"input": 5})).err().unwrap().to_string();
        assert!(e.contains("`input`"), "{e}");
    }

    /// Odd shapes never panic: every field in the wrong type.
    #[test]
    fn any_field_of_any_type_is_an_error_not_a_panic() {
        let odd = [
            json!(null),
            json!(1),
            json!("x"),
            json!([]),
            json!({}),
            json!(true),
        ];
        for field in [
            "model",
            "input",
            "instructions",
            "stream",
            "max_output_tokens",
            "temperature",
            "reasoning",
            "tools",
            "tool_choice",
            "user",
            "previous_response_id",
        ] {
            for v in &odd {
                let mut body = json!({"input": "x"});
                body[field] = v.clone();
                let _ = parse(&body);
                let mut body = json!({"input": [{"type": "function_call"}]});
                body["input"][0][field] = v.clone();
                let _ = parse(&body);
            }
        }
    }
}
