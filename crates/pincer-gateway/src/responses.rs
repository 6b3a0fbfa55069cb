//! `POST /v1/responses` in the Responses API's wire shapes: output items
//! (`reasoning`, `message`, `function_call`), streamed as typed events
//! (`response.created` … `response.completed`) or returned whole.
//! Reasoning is its own item, never part of the message's text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, stream};
use pincer_llm::{ChatRequest, Event, FinishReason, Message, Reply, ToolCall, ToolChoice, Usage};
use pincer_router::Attempt;
use serde_json::{Value, json};

use crate::Gateway;
use crate::chat::tool_name;
use crate::error::ApiError;
use crate::plan::plan;
use crate::turn::Out;
use crate::wire::{self, frame, new_id, unix_now};

struct Parsed {
    model: String,
    req: ChatRequest,
    stream: bool,
    user: Option<String>,
    instructions: Option<String>,
}

pub async fn handle(
    State(gw): State<&'static Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !gw.settings.responses {
        return Err(ApiError::Disabled(
            "/v1/responses is disabled (gateway.http.endpoints.responses.enabled)",
        ));
    }
    let p = parse(&wire::parse_body(&body)?)?;
    let plan = plan(gw, &p.model, &headers, p.user.as_deref(), "openresponses")?;
    let mut out = Output::new(&p);
    if !p.stream {
        let done = gw.complete(&plan, &p.req).await?;
        let model = done.spec.reference.clone();
        for event in reply_events(&done.reply) {
            out.event(event);
        }
        out.events.clear();
        let body = out.finish(&model, &done.attempts);
        let mut response = axum::Json(body).into_response();
        wire::with_model(&mut response, &model);
        return Ok(response);
    }
    let started = gw.stream(plan, p.req).await?;
    let created = out.response("in_progress");
    out.emit("response.created", json!({"response": created}));
    out.emit("response.in_progress", json!({"response": created}));
    let head = std::mem::take(&mut out.events);
    let frames = stream::unfold(
        (started.rx, out, false),
        |(mut rx, mut out, ended)| async move {
            if ended {
                return None;
            }
            let ended = match rx.recv().await {
                Some(Out::Event(e)) => {
                    out.event(e);
                    false
                }
                Some(Out::Finished { model, attempts }) => {
                    let response = out.finish(&model, &attempts);
                    let kind = format!(
                        "response.{}",
                        response["status"].as_str().unwrap_or("completed")
                    );
                    out.emit(&kind, json!({"response": response}));
                    out.events.push(Bytes::from_static(b"data: [DONE]\n\n"));
                    true
                }
                Some(Out::Error(e)) => {
                    out.failed(&e);
                    true
                }
                None => {
                    out.failed(&ApiError::Incomplete);
                    true
                }
            };
            Some((
                stream::iter(std::mem::take(&mut out.events)),
                (rx, out, ended),
            ))
        },
    )
    .flatten();
    Ok(wire::sse_response(
        &started.model,
        stream::iter(head).chain(frames),
    ))
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

/// The response's output items as they grow, and the SSE events that
/// describe each step.
struct Output {
    id: String,
    model: String,
    created_at: u64,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    /// The request's tools and tool choice, echoed as the Responses API does.
    tools: Value,
    tool_choice: Value,
    items: Vec<Value>,
    /// The reasoning or message item taking deltas now.
    open: Option<usize>,
    /// Tool call index → its item, while its arguments stream.
    calls: HashMap<usize, usize>,
    usage: Usage,
    finish: Option<FinishReason>,
    seq: u64,
    events: Vec<Bytes>,
}

impl Output {
    fn new(p: &Parsed) -> Output {
        Output {
            id: new_id("resp_"),
            model: p.model.clone(),
            created_at: unix_now(),
            instructions: p.instructions.clone(),
            max_output_tokens: p.req.max_tokens,
            tools: p
                .req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "name": t.name, "description": t.description,
                           "parameters": t.parameters, "strict": false})
                })
                .collect(),
            tool_choice: match &p.req.tool_choice {
                None | Some(ToolChoice::Auto) => json!("auto"),
                Some(ToolChoice::Required) => json!("required"),
                Some(ToolChoice::Tool(name)) => json!({"type": "function", "name": name}),
            },
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            usage: Usage::default(),
            finish: None,
            seq: 0,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.events.push(frame(Some(kind), &data));
    }

    fn response(&self, status: &str) -> Value {
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": self.items,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "parallel_tool_calls": true,
            "tool_choice": self.tool_choice,
            "tools": self.tools,
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": false,
            "error": null,
            "incomplete_details": null,
            "metadata": {},
            "usage": null,
        })
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Reasoning { delta } => {
                let i = self.open_item("reasoning");
                append(&mut self.items[i]["content"][0]["text"], &delta);
                let id = self.items[i]["id"].clone();
                self.emit(
                    "response.reasoning_text.delta",
                    json!({"item_id": id, "output_index": i, "content_index": 0, "delta": delta}),
                );
            }
            Event::Text { delta } => {
                let i = self.open_item("message");
                append(&mut self.items[i]["content"][0]["text"], &delta);
                if !delta.is_empty() {
                    let id = self.items[i]["id"].clone();
                    self.emit(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "delta": delta, "logprobs": []}),
                    );
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
        }
    }

    /// The open item of this kind, closing whatever else was open.
    fn open_item(&mut self, kind: &str) -> usize {
        if let Some(i) = self.open
            && self.items[i]["type"] == kind
        {
            return i;
        }
        self.close_open();
        let i = self.items.len();
        let (item, part) = if kind == "reasoning" {
            let part = json!({"type": "reasoning_text", "text": ""});
            (
                json!({"type": "reasoning", "id": new_id("rs_"), "summary": [], "content": [part], "status": "in_progress"}),
                part,
            )
        } else {
            let part =
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            (
                json!({"type": "message", "id": new_id("msg_"), "role": "assistant", "status": "in_progress", "content": [part]}),
                part,
            )
        };
        let mut added = item.clone();
        added["content"] = json!([]);
        let id = item["id"].clone();
        self.items.push(item);
        self.open = Some(i);
        self.emit(
            "response.output_item.added",
            json!({"output_index": i, "item": added}),
        );
        self.emit(
            "response.content_part.added",
            json!({"item_id": id, "output_index": i, "content_index": 0, "part": part}),
        );
        i
    }

    fn close_open(&mut self) {
        let Some(i) = self.open.take() else { return };
        let id = self.items[i]["id"].clone();
        let part = self.items[i]["content"][0].clone();
        let text = part["text"].clone();
        if self.items[i]["type"] == "reasoning" {
            self.emit(
                "response.reasoning_text.done",
                json!({"item_id": id, "output_index": i, "content_index": 0, "text": text}),
            );
        } else {
            self.emit(
                "response.output_text.done",
                json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}),
            );
        }
        self.emit(
            "response.content_part.done",
            json!({"item_id": id, "output_index": i, "content_index": 0, "part": part}),
        );
        self.items[i]["status"] = json!("completed");
        let item = self.items[i].clone();
        self.emit(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
        );
    }

    fn tool_call(&mut self, index: usize, id: Option<String>, name: Option<String>, args: &str) {
        let i = match self.calls.get(&index) {
            Some(i) => *i,
            None => {
                self.close_open();
                let i = self.items.len();
                let call_id = id.clone().unwrap_or_else(|| new_id("call_"));
                let item = json!({
                    "type": "function_call", "id": new_id("fc_"), "call_id": call_id,
                    "name": name.clone().unwrap_or_default(), "arguments": "", "status": "in_progress",
                });
                self.items.push(item.clone());
                self.calls.insert(index, i);
                self.emit(
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                );
                i
            }
        };
        if let Some(name) = name {
            self.items[i]["name"] = json!(name);
        }
        append(&mut self.items[i]["arguments"], args);
        if !args.is_empty() {
            let id = self.items[i]["id"].clone();
            self.emit(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": i, "delta": args}),
            );
        }
    }

    fn close_calls(&mut self) {
        let mut open: Vec<usize> = self.calls.drain().map(|(_, i)| i).collect();
        open.sort_unstable();
        for i in open {
            self.items[i]["status"] = json!("completed");
            let item = self.items[i].clone();
            self.emit(
                "response.function_call_arguments.done",
                json!({"item_id": item["id"], "output_index": i, "name": item["name"], "arguments": item["arguments"]}),
            );
            self.emit(
                "response.output_item.done",
                json!({"output_index": i, "item": item}),
            );
        }
    }

    /// Closes every item; the final response object.
    fn finish(&mut self, model: &str, attempts: &[Attempt]) -> Value {
        self.close_open();
        self.close_calls();
        let cut = self.finish == Some(FinishReason::Length);
        let mut r = self.response(if cut { "incomplete" } else { "completed" });
        if cut {
            r["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        r["usage"] = usage_json(&self.usage);
        r["metadata"] = wire::metadata(model, attempts);
        r["output_text"] = json!(
            self.items
                .iter()
                .filter(|i| i["type"] == "message")
                .filter_map(|i| i["content"][0]["text"].as_str())
                .collect::<String>()
        );
        r
    }

    fn failed(&mut self, e: &ApiError) {
        let mut r = self.response("failed");
        let message = e.to_string();
        r["error"] = json!({"code": "server_error", "message": message});
        r["usage"] = usage_json(&self.usage);
        self.emit("response.failed", json!({"response": r}));
        self.events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

fn append(field: &mut Value, delta: &str) {
    if let Value::String(s) = field {
        s.push_str(delta);
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens(),
        "input_tokens_details": {"cached_tokens": u.cache_read},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.prompt_tokens() + u.output,
    })
}

fn parse(v: &Value) -> Result<Parsed, ApiError> {
    if v.get("previous_response_id").is_some_and(|p| !p.is_null()) {
        return Err(ApiError::BadRequest(
            "`previous_response_id` is not supported: send the conversation in `input` \
             (the session keeps its transcript either way)"
                .into(),
        ));
    }
    let instructions = wire::str_field(v, "instructions")?.map(str::to_string);
    let mut messages = Vec::new();
    if let Some(i) = &instructions {
        messages.push(Message::system(i));
    }
    match v.get("input") {
        Some(Value::String(s)) => messages.push(Message::user(s)),
        Some(Value::Array(items)) => input_items(items, &mut messages)?,
        _ => {
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
    let (tools, tool_choice) = wire::tools_and_choice(v, false)?;
    Ok(Parsed {
        model: wire::str_field(v, "model")?
            .unwrap_or("openclaw")
            .to_string(),
        req: ChatRequest {
            messages,
            tools,
            max_tokens: wire::u64_field(v, "max_output_tokens")?,
            temperature: wire::temperature(v)?,
            reasoning_effort: wire::effort(v.pointer("/reasoning/effort").and_then(Value::as_str))?,
            stop: Vec::new(),
            top_p: wire::top_p(v)?,
            seed: None,
            frequency_penalty: None,
            presence_penalty: None,
            tool_choice,
        },
        stream: wire::bool_field(v, "stream")?,
        user: wire::str_field(v, "user")?.map(str::to_string),
        instructions,
    })
}

fn input_items(items: &[Value], out: &mut Vec<Message>) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => {
                let text = wire::content_text(item.get("content").unwrap_or(&Value::Null), &at)?;
                out.push(match item.get("role").and_then(Value::as_str) {
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
                let field = |k: &str| {
                    item.get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::BadRequest(format!("{at}: `{k}` is missing")))
                };
                let call = ToolCall {
                    id: field("call_id")?,
                    name: field("name")?,
                    arguments: field("arguments")?,
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
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::BadRequest(format!("{at}: `call_id` is missing")))?
                    .to_string();
                let content = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => wire::content_text(other, &at)?,
                    None => String::new(),
                };
                let name = tool_name(out, &call_id);
                out.push(Message::Tool {
                    call_id,
                    name,
                    content,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn events(out: &Output) -> Vec<String> {
        out.events
            .iter()
            .map(|b| {
                let s = String::from_utf8_lossy(b);
                s.lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("event: ")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_stream_opens_and_closes_each_item_in_order() {
        let p = parse(&json!({"input": "hi", "stream": true})).unwrap();
        let mut out = Output::new(&p);
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
        let r = out.finish("local/m", &[]);
        assert_eq!(
            events(&out),
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
        assert_eq!(r["output"][0]["content"][0]["text"], "think");
        assert_eq!(r["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(r["output"][2]["call_id"], "call_1");
        assert_eq!(r["output_text"], "Hello");
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
                content: "sunny".into()
            }
        );
        assert!(parse(&json!({"input": [{"type": "item_reference", "id": "x"}]})).is_err());
        assert!(parse(&json!({"input": "x", "previous_response_id": "resp_1"})).is_err());
    }
}
