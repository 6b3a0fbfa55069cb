//! The one stream of events every dialect decodes into, and the reply they add up to.

use serde::Serialize;

use crate::request::ToolCall;
use crate::usage::Usage;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Final text, safe to show to the user.
    Text {
        delta: String,
    },
    /// The model's thinking: never part of the final text.
    Reasoning {
        delta: String,
    },
    /// Part of a tool call. `index` groups the parts of one call; `id` and
    /// `name` come with the first part, `arguments` arrive in pieces.
    ToolCall {
        index: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        arguments: String,
    },
    Usage {
        usage: Usage,
    },
    /// Who served the answer behind a router (OpenRouter's `provider`).
    Served {
        provider: String,
    },
    /// The model finished. Nothing follows.
    Done {
        finish: FinishReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    /// Hit the output cap.
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

impl FinishReason {
    /// The OpenAI / Anthropic / llama.cpp names for why a reply ended.
    pub fn from_wire(s: &str) -> FinishReason {
        match s {
            "stop" | "end_turn" | "stop_sequence" | "completed" | "eos" => FinishReason::Stop,
            "length" | "max_tokens" | "max_output_tokens" | "incomplete" => FinishReason::Length,
            "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
            "content_filter" | "refusal" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// A whole reply, built from events: what a non-streaming caller gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reply {
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish: Option<FinishReason>,
    /// The upstream provider that served it, when a router says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
}

impl Reply {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Text { delta } => self.text.push_str(delta),
            Event::Reasoning { delta } => self.reasoning.push_str(delta),
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                // Decoders number calls densely from 0; a number past the
                // end starts a new call rather than growing a gap.
                if *index >= self.tool_calls.len() {
                    self.tool_calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let last = self.tool_calls.len() - 1;
                let Some(call) = self.tool_calls.get_mut((*index).min(last)) else {
                    return;
                };
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(arguments);
            }
            Event::Usage { usage } => self.usage = *usage,
            Event::Served { provider } => self.served_by = Some(provider.clone()),
            Event::Done { finish } => self.finish = Some(finish.clone()),
        }
    }

    /// The reply as the assistant message a conversation continues from.
    pub fn as_message(&self) -> crate::Message {
        crate::Message::Assistant {
            text: self.text.clone(),
            reasoning: (!self.reasoning.is_empty()).then(|| self.reasoning.clone()),
            tool_calls: self.tool_calls.clone(),
        }
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Reply {
        let mut reply = Reply::default();
        for e in events {
            reply.apply(e);
        }
        reply
    }
}
