//! `POST /v1/chat/completions` in OpenAI's wire shapes, streamed
//! (`chat.completion.chunk` frames, then `[DONE]`) or whole. Reasoning is
//! never part of the reply: chat clients show `content` as the answer.

use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use pincer_llm::{ChatRequest, Event, FinishReason, Message, ToolCall, Usage};
use pincer_router::Completed;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::settings::Settings;
use crate::surface::{Frames, Surface, Turn};
use crate::turn::Out;
use crate::wire::{
    self, CachedTokens, Content, Extra, FunctionDef, Metadata, ReasoningTokens, Seed, Stop,
    WireToolChoice, done, frame, new_id, unix_now,
};

/// Fields OpenAI defines that Pincer accepts and does not use.
const KNOWN: [&str; 17] = [
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "response_format",
    "parallel_tool_calls",
    "metadata",
    "store",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "web_search_options",
    "functions",
    "function_call",
];

/// A chat completion request, as the SDKs send it.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<WireMessage>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    seed: Option<Seed>,
    stop: Option<Stop>,
    reasoning_effort: Option<String>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    n: Option<u64>,
    user: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    role: String,
    content: Option<Content>,
    tool_calls: Option<Vec<WireCall>>,
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireCall {
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireTool {
    #[serde(rename = "type", default)]
    kind: String,
    function: Option<FunctionDef>,
}

/// What the reply needs of the request.
pub struct Echo {
    id: String,
    include_usage: bool,
}

impl Surface for ChatBody {
    const KEY: &'static str = "openai";
    type Echo = Echo;
    type Frames = Chunks;

    const DISABLED: &'static str =
        "/v1/chat/completions is disabled (gateway.http.endpoints.chatCompletions.enabled)";

    fn enabled(settings: &Settings) -> bool {
        settings.chat_completions
    }

    fn turn(self) -> Result<Turn<Echo>, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::BadRequest("only n = 1 is supported".into()));
        }
        if self.messages.is_empty() {
            return Err(ApiError::BadRequest(
                "`messages` must be a non-empty list".into(),
            ));
        }
        let messages = messages(self.messages)?;
        let tools = wire::function_tools(
            self.tools
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.kind, t.function.unwrap_or_default())),
            "function.name",
        )?;
        let (tools, tool_choice) = wire::tool_choice(
            tools,
            self.tool_choice,
            r#"{"type": "function", "function": {"name": …}}"#,
        )?;
        let max_tokens = match wire::positive(self.max_completion_tokens, "max_completion_tokens")?
        {
            Some(n) => Some(n),
            None => wire::positive(self.max_tokens, "max_tokens")?,
        };
        let req = ChatRequest {
            messages,
            tools,
            tool_choice,
            top_p: wire::top_p(self.top_p)?,
            seed: self.seed.map(Seed::bits),
            frequency_penalty: wire::penalty(self.frequency_penalty, "frequency_penalty")?,
            presence_penalty: wire::penalty(self.presence_penalty, "presence_penalty")?,
            max_tokens,
            temperature: wire::temperature(self.temperature)?,
            reasoning_effort: wire::effort(self.reasoning_effort.as_deref())?,
            stop: Stop::into_vec(self.stop),
        };
        let model = self.model.unwrap_or_else(|| "openclaw".into());
        Ok(Turn {
            echo: Echo {
                id: new_id("chatcmpl-"),
                include_usage: self
                    .stream_options
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
            },
            model,
            user: self.user,
            stream: self.stream.unwrap_or(false),
            req,
            ignored: wire::ignored(&self.extra, &KNOWN),
        })
    }

    fn whole(echo: &Echo, done: &Completed, agent: &str) -> Response {
        let r = &done.reply;
        // `model` is the model that answered, as OpenAI defines it (OpenClaw
        // echoes the request's); the agent is in `metadata.agent`.
        axum::Json(Completion {
            id: &echo.id,
            object: "chat.completion",
            created: unix_now(),
            model: &done.spec.reference,
            choices: [Choice {
                index: 0,
                message: AssistantOut {
                    role: "assistant",
                    content: (!r.text.is_empty() || r.tool_calls.is_empty())
                        .then_some(r.text.as_str()),
                    refusal: None,
                    tool_calls: r.tool_calls.iter().map(CallOut::from).collect(),
                },
                logprobs: None,
                finish_reason: finish_str(r.finish.as_ref()),
            }],
            usage: WireUsage::from(&r.usage),
            system_fingerprint: None,
            metadata: Metadata::new(&done.spec.reference, agent, &done.attempts),
        })
        .into_response()
    }

    fn frames(echo: Echo, model: &str, agent: &str) -> Chunks {
        Chunks {
            echo,
            model: model.to_string(),
            agent: agent.to_string(),
            created: unix_now(),
            finish: None,
            usage: Usage::default(),
        }
    }
}

fn finish_str(f: Option<&FinishReason>) -> &str {
    f.map_or("stop", FinishReason::as_str)
}

fn messages(list: Vec<WireMessage>) -> Result<Vec<Message>, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        let text = Content::text(m.content, &at)?;
        out.push(match m.role.as_str() {
            "system" | "developer" => Message::System { text },
            "user" => Message::User { text },
            "assistant" => Message::Assistant {
                text,
                reasoning: None,
                tool_calls: assistant_calls(m.tool_calls.unwrap_or_default(), &at)?,
            },
            "tool" => {
                let call_id = m.tool_call_id.ok_or_else(|| {
                    ApiError::BadRequest(format!("{at}: `tool_call_id` is missing"))
                })?;
                let name = tool_name(&out, &call_id);
                Message::Tool {
                    call_id,
                    name,
                    content: text,
                    is_error: false,
                }
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{at}: role {other:?} is not system, developer, user, assistant or tool"
                )));
            }
        });
    }
    Ok(out)
}

/// The name of the tool a result answers, from the call that asked for it
/// (some dialects need it; OpenAI's tool messages do not carry it).
pub fn tool_name(earlier: &[Message], call_id: &str) -> String {
    earlier
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls
                .iter()
                .find(|c| c.id == call_id)
                .map(|c| c.name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn assistant_calls(calls: Vec<WireCall>, at: &str) -> Result<Vec<ToolCall>, ApiError> {
    calls
        .into_iter()
        .enumerate()
        .map(|(j, c)| {
            let f = c.function.unwrap_or(WireFunction {
                name: None,
                arguments: None,
            });
            let name = f.name.ok_or_else(|| {
                ApiError::BadRequest(format!("{at}.tool_calls[{j}]: `function.name` is missing"))
            })?;
            Ok(ToolCall {
                id: c.id.unwrap_or_default(),
                name,
                arguments: f.arguments.unwrap_or_else(|| "{}".into()),
            })
        })
        .collect()
}

/// `chat.completion`.
#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: WireUsage,
    system_fingerprint: Option<()>,
    metadata: Metadata,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct AssistantOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallOut<'a>>,
}

#[derive(Serialize)]
struct CallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

impl<'a> From<&'a ToolCall> for CallOut<'a> {
    fn from(c: &'a ToolCall) -> Self {
        CallOut {
            id: &c.id,
            kind: "function",
            function: FunctionOut {
                name: Some(&c.name),
                arguments: &c.arguments,
            },
        }
    }
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            prompt_tokens: u.prompt_tokens(),
            completion_tokens: u.output,
            total_tokens: u.prompt_tokens() + u.output,
            prompt_tokens_details: CachedTokens {
                cached_tokens: u.cache_read,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: u.reasoning,
            },
        }
    }
}

/// `chat.completion.chunk`.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallDelta<'a>>,
}

#[derive(Serialize)]
struct CallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

/// Turns the events of a streamed turn into chunk frames.
pub struct Chunks {
    echo: Echo,
    /// The model answering now (after a continuation, the one that took over).
    model: String,
    agent: String,
    created: u64,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl Chunks {
    fn chunk<'a>(&'a self, delta: Delta<'a>, finish: Option<&'a str>) -> Chunk<'a> {
        Chunk {
            id: &self.echo.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            usage: None,
            metadata: None,
        }
    }

    fn delta(&self, delta: Delta<'_>) -> SseEvent {
        frame(None, &self.chunk(delta, None))
    }

    /// An error frame (the SDKs raise it) and `[DONE]`, as OpenClaw ends a
    /// failed stream; the missing finish chunk marks the answer as cut.
    fn error(e: &ApiError) -> Vec<SseEvent> {
        vec![frame(None, &e.body()), done()]
    }
}

impl Frames for Chunks {
    fn head(&mut self) -> Vec<SseEvent> {
        vec![self.delta(Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        })]
    }

    fn out(&mut self, out: Out) -> (Vec<SseEvent>, bool) {
        let frames = match out {
            Out::Event(Event::Text { delta }) if !delta.is_empty() => vec![self.delta(Delta {
                content: Some(&delta),
                ..Delta::default()
            })],
            Out::Event(Event::ToolCall {
                index,
                id,
                name,
                arguments,
            }) => vec![self.delta(Delta {
                tool_calls: vec![CallDelta {
                    index,
                    kind: id.is_some().then_some("function"),
                    id: id.as_deref(),
                    function: FunctionOut {
                        name: name.as_deref(),
                        arguments: &arguments,
                    },
                }],
                ..Delta::default()
            })],
            Out::Event(Event::Usage { usage }) => {
                self.usage = usage;
                vec![]
            }
            Out::Event(Event::Done { finish }) => {
                self.finish = Some(finish);
                vec![]
            }
            Out::Event(_) => vec![],
            Out::Finished { model, attempts } => {
                self.model = model;
                let mut last = self.chunk(Delta::default(), Some(finish_str(self.finish.as_ref())));
                last.metadata = Some(Metadata::new(&self.model, &self.agent, &attempts));
                let mut out = vec![frame(None, &last)];
                if self.echo.include_usage {
                    let mut u = self.chunk(Delta::default(), None);
                    u.choices.clear();
                    u.usage = Some(WireUsage::from(&self.usage));
                    out.push(frame(None, &u));
                }
                out.push(done());
                return (out, true);
            }
            Out::Error(e) => return (Chunks::error(&e), true),
        };
        (frames, false)
    }

    fn cut(&mut self) -> Vec<SseEvent> {
        Chunks::error(&ApiError::Incomplete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(v: &Value) -> Result<Turn<Echo>, ApiError> {
        wire::read::<ChatBody>(v.to_string().as_bytes())?.turn()
    }

    #[test]
    fn parses_the_shapes_the_sdks_send() {
        let v = json!({
            "model": "openclaw",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "max_completion_tokens": 50,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "top_k": 40,
            "logprobs": false,
        });
        let p = parse(&v).unwrap();
        assert!(p.stream && p.echo.include_usage);
        assert_eq!(p.req.max_tokens, Some(50));
        assert_eq!(p.req.stop, vec!["END"]);
        assert_eq!(p.req.tools[0].name, "get_weather");
        assert_eq!(
            p.req.messages[3],
            Message::Tool {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                content: "sunny".into(),
                is_error: false
            }
        );
        // Kept and named, not refused: OpenAI does not know `top_k`.
        assert_eq!(p.ignored, vec!["top_k"]);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for (body, needle) in [
            (json!({"messages": []}), "non-empty"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "image_url",
            ),
            (
                json!({"messages": [{"role": "function", "content": "x"}]}),
                "role \"function\"",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n = 1",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
                "`temperature`: invalid type",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "`temperature` must be a number from 0 to 2",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "top_p": 1.5}),
                "`top_p` must be a number from 0 to 1",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "presence_penalty": -3}),
                "`presence_penalty` must be a number from -2 to 2",
            ),
            (
                json!({"messages": [{"role": "user", "content": 7}]}),
                "`messages[0].content`",
            ),
            (json!({"messages": "hi"}), "`messages`"),
            (json!(["not", "an", "object"]), "not a request"),
        ] {
            let e = parse(&body).err().unwrap().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    /// Odd shapes never panic: every field of the request in the wrong type.
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
            "messages",
            "stream",
            "stream_options",
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "tools",
            "tool_choice",
            "n",
            "user",
            "reasoning_effort",
        ] {
            for v in &odd {
                let mut body = json!({"messages": [{"role": "user", "content": "x"}]});
                body[field] = v.clone();
                let _ = parse(&body);
                let mut body =
                    json!({"messages": [{"role": "user", "content": "x", "tool_calls": [{}]}]});
                body["messages"][0][field] = v.clone();
                let _ = parse(&body);
            }
        }
    }
}
