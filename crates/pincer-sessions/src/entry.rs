//! A transcript as OpenClaw writes it (session header version 4): entries
//! linked by `id`/`parentId` into a tree whose last entry is the leaf, and
//! the branch from the root to that leaf is the conversation. What the model
//! sees is that branch from the latest `compaction` (its summary, then the
//! entries from `firstKeptEntryId` on) or the latest `reset`.
//!
//! Reading is lenient, as a gateway that restarts on old files must be:
//! transcripts written by earlier Pincer versions (no ids, `content` as a
//! string, `toolCalls` beside it) are chained in file order; entry types
//! Pincer does not use (`label`, `custom`, `branch_summary`…) keep their
//! place in the chain; a line that is not JSON is counted and skipped.

use std::collections::{HashMap, HashSet};

use pincer_types::{Message, ToolCall};
use serde::Deserialize;
use serde_json::{Map, Value};

/// How the summary of compacted history is shown to the model (a user
/// message, as OpenClaw's runtime does).
pub const SUMMARY_PREFIX: &str =
    "The conversation history before this point was compacted into the following summary:";

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub parent_id: Option<String>,
    pub body: Body,
    /// For an assistant message: `provider/model` that gave it, and why it
    /// failed when it did.
    pub answered_by: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Message(Message),
    Compaction {
        summary: String,
        first_kept_entry_id: Option<String>,
        tokens_before: u64,
    },
    ModelChange {
        provider: String,
        model_id: String,
    },
    ThinkingLevelChange {
        thinking_level: String,
    },
    Reset {
        reason: String,
        first_kept_entry_id: Option<String>,
    },
    /// A type Pincer does not act on (or a message role it does not know);
    /// kept so the chain through it holds.
    Other(String),
}

/// A whole transcript, read.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub session_id: Option<String>,
    pub version: Option<u32>,
    /// In file order.
    pub entries: Vec<Entry>,
    /// The entry the conversation continues from (the last one, unless a
    /// `leaf` record moved it).
    pub leaf: Option<String>,
    /// Lines that were not JSON entries (a torn last line, or damage).
    pub skipped: usize,
}

/// The first fields of every line.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    parent_id: Option<Option<String>>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `parentId: null` (a root) apart from no `parentId` at all (legacy).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompactionBody {
    summary: String,
    first_kept_entry_id: Option<String>,
    #[serde(default)]
    tokens_before: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelChangeBody {
    provider: String,
    model_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingBody {
    thinking_level: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetBody {
    #[serde(default)]
    reason: String,
    first_kept_entry_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeafBody {
    target_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageBody {
    message: AgentMessage,
}

/// Who answered, for an assistant message.
fn answered(m: &AgentMessage) -> (Option<String>, Option<String>) {
    match m {
        AgentMessage::Assistant {
            provider,
            model,
            error_message,
            ..
        } => (
            (!model.is_empty()).then(|| {
                if provider.is_empty() {
                    model.clone()
                } else {
                    format!("{provider}/{model}")
                }
            }),
            error_message.clone(),
        ),
        _ => (None, None),
    }
}

/// OpenClaw's message payloads, and the shapes earlier Pincer versions wrote.
#[derive(Deserialize)]
#[serde(tag = "role", rename_all = "camelCase")]
enum AgentMessage {
    System {
        content: Content,
    },
    User {
        content: Content,
    },
    #[serde(rename_all = "camelCase")]
    Assistant {
        #[serde(default)]
        content: Content,
        /// Earlier Pincer versions: calls beside a string `content`.
        #[serde(default)]
        tool_calls: Vec<LegacyCall>,
        #[serde(default)]
        provider: String,
        #[serde(default)]
        model: String,
        error_message: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_call_id: String,
        #[serde(default)]
        tool_name: String,
        #[serde(default)]
        content: Content,
        #[serde(default)]
        is_error: bool,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

impl Default for Content {
    fn default() -> Self {
        Content::Text(String::new())
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Block {
    Text {
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolCall {
        id: String,
        name: String,
        #[serde(default)]
        arguments: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct LegacyCall {
    id: String,
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Tool arguments as the JSON text Pincer passes around.
fn arguments(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => "{}".to_string(),
        other => other.to_string(),
    }
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Blocks(blocks) => blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

impl AgentMessage {
    fn into_message(self) -> Option<Message> {
        Some(match self {
            AgentMessage::System { content } => Message::system(content.text()),
            AgentMessage::User { content } => Message::user(content.text()),
            AgentMessage::Assistant {
                content,
                tool_calls,
                ..
            } => {
                let text = content.text();
                let mut reasoning = String::new();
                let mut calls: Vec<ToolCall> = tool_calls
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.name,
                        arguments: arguments(c.arguments),
                    })
                    .collect();
                if let Content::Blocks(blocks) = content {
                    for b in blocks {
                        match b {
                            Block::Thinking { thinking } => reasoning.push_str(&thinking),
                            Block::ToolCall {
                                id,
                                name,
                                arguments: a,
                            } => calls.push(ToolCall {
                                id,
                                name,
                                arguments: arguments(a),
                            }),
                            _ => {}
                        }
                    }
                }
                Message::Assistant {
                    text,
                    reasoning: (!reasoning.is_empty()).then_some(reasoning),
                    tool_calls: calls,
                }
            }
            AgentMessage::ToolResult {
                tool_call_id,
                tool_name,
                content,
                is_error,
            } => Message::Tool {
                call_id: tool_call_id,
                name: tool_name,
                content: content.text(),
                is_error,
            },
            AgentMessage::Other => return None,
        })
    }
}

type Answered = (Option<String>, Option<String>);

fn body(kind: &str, rest: Map<String, Value>) -> Result<(Body, Answered), serde_json::Error> {
    let rest = Value::Object(rest);
    Ok((
        match kind {
            "message" => {
                let m: MessageBody = serde_json::from_value(rest)?;
                let who = answered(&m.message);
                let body = match m.message.into_message() {
                    Some(m) => Body::Message(m),
                    None => Body::Other("message".into()),
                };
                return Ok((body, who));
            }
            "compaction" => {
                let c: CompactionBody = serde_json::from_value(rest)?;
                Body::Compaction {
                    summary: c.summary,
                    first_kept_entry_id: c.first_kept_entry_id,
                    tokens_before: c.tokens_before,
                }
            }
            "model_change" => {
                let c: ModelChangeBody = serde_json::from_value(rest)?;
                Body::ModelChange {
                    provider: c.provider,
                    model_id: c.model_id,
                }
            }
            "thinking_level_change" => {
                let c: ThinkingBody = serde_json::from_value(rest)?;
                Body::ThinkingLevelChange {
                    thinking_level: c.thinking_level,
                }
            }
            "reset" => {
                let c: ResetBody = serde_json::from_value(rest)?;
                Body::Reset {
                    reason: c.reason,
                    first_kept_entry_id: c.first_kept_entry_id,
                }
            }
            other => Body::Other(other.to_string()),
        },
        (None, None),
    ))
}

impl Tree {
    /// Reads the lines of a transcript file.
    pub fn parse(text: &str) -> Tree {
        let mut tree = Tree::default();
        let mut previous: Option<String> = None;
        for (n, raw) in text.split('\n').enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let Ok(line) = serde_json::from_str::<Line>(raw) else {
                tree.skipped += 1;
                continue;
            };
            match line.kind.as_str() {
                "session" => {
                    tree.session_id = line.id;
                    tree.version = line
                        .rest
                        .get("version")
                        .and_then(Value::as_u64)
                        .and_then(|v| u32::try_from(v).ok());
                    continue;
                }
                "leaf" => {
                    if let Ok(l) = serde_json::from_value::<LeafBody>(Value::Object(line.rest)) {
                        tree.leaf = l.target_id;
                    }
                    continue;
                }
                _ => {}
            }
            let Ok((body, (answered_by, error))) = body(&line.kind, line.rest) else {
                tree.skipped += 1;
                continue;
            };
            // Legacy lines have no id: chained in file order.
            let id = line.id.unwrap_or_else(|| format!("line-{}", n + 1));
            let parent_id = match line.parent_id {
                Some(p) => p,
                None => previous.clone(),
            };
            previous = Some(id.clone());
            tree.leaf = Some(id.clone());
            tree.entries.push(Entry {
                id,
                parent_id,
                body,
                answered_by,
                error,
            });
        }
        tree
    }

    /// The conversation: the entries from the root to the leaf, in order.
    /// A broken or cyclic chain ends where it breaks.
    pub fn branch(&self) -> Vec<&Entry> {
        let by_id: HashMap<&str, &Entry> =
            self.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut path = Vec::new();
        let mut seen = HashSet::new();
        let mut at = self.leaf.as_deref();
        while let Some(id) = at {
            let Some(e) = by_id.get(id) else { break };
            if !seen.insert(id) {
                break;
            }
            path.push(*e);
            at = e.parent_id.as_deref();
        }
        path.reverse();
        path
    }

    /// What the model sees of the conversation: after the latest reset, or
    /// the latest compaction's summary and the entries it kept.
    pub fn context(&self) -> Vec<Message> {
        let branch = self.branch();
        let cut = branch
            .iter()
            .rposition(|e| matches!(e.body, Body::Compaction { .. } | Body::Reset { .. }));
        let Some(cut) = cut else {
            return messages_of(&branch);
        };
        let (summary, kept) = match &branch[cut].body {
            Body::Compaction {
                summary,
                first_kept_entry_id,
                ..
            } => (Some(summary), first_kept_entry_id),
            Body::Reset {
                first_kept_entry_id,
                ..
            } => (None, first_kept_entry_id),
            _ => (None, &None),
        };
        let from = kept
            .as_deref()
            .and_then(|k| branch[..cut].iter().position(|e| e.id == k));
        let mut out = Vec::new();
        if let Some(s) = summary {
            out.push(Message::user(format!(
                "{SUMMARY_PREFIX}\n\n<summary>\n{s}\n</summary>"
            )));
        }
        if let Some(from) = from {
            out.extend(messages_of(&branch[from..cut]));
        }
        out.extend(messages_of(&branch[cut + 1..]));
        out
    }

    /// The session's model override, from the latest `model_change`.
    pub fn model(&self) -> Option<(String, String)> {
        self.branch().iter().rev().find_map(|e| match &e.body {
            Body::ModelChange { provider, model_id } => Some((provider.clone(), model_id.clone())),
            _ => None,
        })
    }

    /// The session's thinking level, from the latest change.
    pub fn thinking_level(&self) -> Option<String> {
        self.branch().iter().rev().find_map(|e| match &e.body {
            Body::ThinkingLevelChange { thinking_level } => Some(thinking_level.clone()),
            _ => None,
        })
    }
}

/// The messages of `entries`, without turns that failed: a turn whose
/// answer has an `errorMessage` is left out whole (its user message too), so
/// the model never sees half an answer or two questions in a row.
pub fn messages_of(entries: &[&Entry]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut turn_start = 0;
    for e in entries {
        let Body::Message(m) = &e.body else { continue };
        match m {
            Message::User { .. } if !matches!(out.last(), Some(Message::User { .. })) => {
                turn_start = out.len();
            }
            Message::Assistant { .. } if e.error.is_some() => {
                out.truncate(turn_start);
                continue;
            }
            _ => {}
        }
        out.push(m.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ms: &[Message]) -> Vec<String> {
        ms.iter()
            .map(|m| match m {
                Message::System { text } | Message::User { text } => format!("u:{text}"),
                Message::Assistant { text, .. } => format!("a:{text}"),
                Message::Tool { content, .. } => format!("t:{content}"),
            })
            .collect()
    }

    #[test]
    fn an_openclaw_v4_transcript_with_a_compaction_and_a_branch() {
        let text = r#"{"type":"session","version":4,"id":"s1","timestamp":"2026-11-01T00:00:00Z","cwd":"/w"}
{"type":"message","id":"a1","parentId":null,"timestamp":"t","message":{"role":"user","content":"one","timestamp":1}}
{"type":"message","id":"a2","parentId":"a1","timestamp":"t","message":{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"two"},{"type":"toolCall","id":"c1","name":"read","arguments":{"path":"x"}}],"api":"openai-completions","provider":"p","model":"m","stopReason":"toolUse","timestamp":2}}
{"type":"message","id":"a3","parentId":"a2","timestamp":"t","message":{"role":"toolResult","toolCallId":"c1","toolName":"read","content":[{"type":"text","text":"file"}],"isError":false,"timestamp":3}}
{"type":"label","id":"l1","parentId":"a3","timestamp":"t","targetId":"a1","label":"start"}
{"type":"message","id":"a4","parentId":"l1","timestamp":"t","message":{"role":"user","content":[{"type":"text","text":"three"}],"timestamp":4}}
{"type":"message","id":"x9","parentId":"a1","timestamp":"t","message":{"role":"assistant","content":[{"type":"text","text":"abandoned branch"}],"timestamp":5}}
{"type":"leaf","id":"lf","parentId":null,"timestamp":"t","targetId":"c2"}
{"type":"model_change","id":"m1","parentId":"a4","timestamp":"t","provider":"lmstudio","modelId":"qwen3"}
{"type":"compaction","id":"c2","parentId":"m1","timestamp":"t","summary":"Goal: three","firstKeptEntryId":"a3","tokensBefore":1200}
"#;
        let tree = Tree::parse(text);
        assert_eq!(tree.session_id.as_deref(), Some("s1"));
        assert_eq!(tree.version, Some(4));
        assert_eq!(tree.skipped, 0);
        let ids: Vec<&str> = tree.branch().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            ["a1", "a2", "a3", "l1", "a4", "m1", "c2"],
            "the abandoned branch is off the path"
        );
        let context = tree.context();
        assert_eq!(
            texts(&context),
            [
                format!("u:{SUMMARY_PREFIX}\n\n<summary>\nGoal: three\n</summary>"),
                "t:file".to_string(),
                "u:three".to_string()
            ]
        );
        assert_eq!(tree.model(), Some(("lmstudio".into(), "qwen3".into())));
        // The assistant's blocks: text, reasoning and the call, arguments as JSON text.
        let Body::Message(Message::Assistant {
            text,
            reasoning,
            tool_calls,
        }) = &tree.entries[1].body
        else {
            panic!("{:?}", tree.entries[1]);
        };
        assert_eq!((text.as_str(), reasoning.as_deref()), ("two", Some("hm")));
        assert_eq!(tool_calls[0].arguments, r#"{"path":"x"}"#);
        assert_eq!(tree.entries[1].answered_by.as_deref(), Some("p/m"));
    }

    #[test]
    fn transcripts_of_earlier_pincer_versions_chain_in_file_order() {
        let text = r#"{"type":"session","version":4,"id":"s0","timestamp":"t"}
{"type":"message","timestamp":"t","message":{"role":"user","content":"hi"}}
{"type":"message","timestamp":"t","message":{"role":"assistant","content":"","toolCalls":[{"id":"c","name":"f","arguments":"{}"}]}}
{"type":"message","timestamp":"t","message":{"role":"toolResult","toolCallId":"c","toolName":"f","content":"42"}}
{"type":"message","timestamp":"t","message":{"role":"assistant","content":[{"type":"text","text":"It is 42."}],"provider":"p","model":"m"}}
{"type":"message","timestamp":"t","mess"#;
        let tree = Tree::parse(text);
        assert_eq!(tree.skipped, 1, "the torn last line");
        assert_eq!(
            texts(&tree.context()),
            ["u:hi", "a:", "t:42", "a:It is 42."]
        );
        let Body::Message(Message::Assistant { tool_calls, .. }) = &tree.entries[1].body else {
            panic!()
        };
        assert_eq!(tool_calls.len(), 1);
    }

    #[test]
    fn a_failed_turn_is_left_out_of_the_context() {
        let text = r#"{"type":"message","id":"1","parentId":null,"message":{"role":"user","content":"one"}}
{"type":"message","id":"2","parentId":"1","message":{"role":"assistant","content":[{"type":"text","text":"fine"}]}}
{"type":"message","id":"3","parentId":"2","message":{"role":"user","content":"two"}}
{"type":"message","id":"4","parentId":"3","message":{"role":"assistant","content":[{"type":"text","text":"half an ans"}],"stopReason":"error","errorMessage":"stream cut"}}
{"type":"message","id":"5","parentId":"4","message":{"role":"user","content":"two, again"}}
"#;
        let tree = Tree::parse(text);
        assert_eq!(tree.entries[3].error.as_deref(), Some("stream cut"));
        assert_eq!(texts(&tree.context()), ["u:one", "a:fine", "u:two, again"]);
    }

    #[test]
    fn a_reset_starts_the_context_over_and_a_cycle_ends_the_chain() {
        let text = r#"{"type":"message","id":"1","parentId":null,"message":{"role":"user","content":"old"}}
{"type":"reset","id":"2","parentId":"1","reason":"new"}
{"type":"message","id":"3","parentId":"2","message":{"role":"user","content":"new"}}
"#;
        assert_eq!(texts(&Tree::parse(text).context()), ["u:new"]);
        let cyclic = r#"{"type":"message","id":"1","parentId":"2","message":{"role":"user","content":"a"}}
{"type":"message","id":"2","parentId":"1","message":{"role":"user","content":"b"}}
"#;
        assert_eq!(Tree::parse(cyclic).branch().len(), 2);
        // Not JSON, a wrong shape, an unknown role: skipped or kept aside, never a panic.
        let bad = "not json\n{\"type\":\"compaction\",\"id\":\"c\"}\n{\"type\":\"message\",\"id\":\"m\",\"message\":{\"role\":\"bashExecution\"}}\n";
        let tree = Tree::parse(bad);
        assert_eq!(tree.skipped, 2);
        assert_eq!(tree.entries[0].body, Body::Other("message".into()));
    }
}
