//! Compaction, as OpenClaw's runtime does it: older history is summarised
//! into a `compaction` entry, and the model then sees the summary and the
//! recent tail (from `firstKeptEntryId` on). This module decides what is
//! summarised and builds the summary requests; the runtime makes the calls
//! and writes the entry.
//!
//! - The tail kept word for word is about `keepRecentTokens` (20,000 by
//!   default, at most an eighth of the window), cut only where a turn
//!   starts, so a tool result never loses its call.
//! - The older part is written out as plain text (`[User]: …`), so the
//!   summariser does not continue the chat, and summarised with OpenClaw's
//!   sections. An earlier summary is updated, not stacked: it goes with the
//!   request and the new summary replaces it.
//! - A conversation too long for the summariser's own window is summarised
//!   in stages, each stage updating the summary of the ones before.

use pincer_sessions::{Body, Entry};
use pincer_types::{ChatRequest, Message};

use crate::budget::estimate;

/// OpenClaw's default tail, and the tool-result length kept in the text
/// given to the summariser.
pub const KEEP_RECENT_TOKENS: u64 = 20_000;
const TOOL_RESULT_CHARS: usize = 2_000;

/// What a compaction summarises and keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// The entry the kept tail starts at.
    pub first_kept_entry_id: String,
    /// The older messages, to summarise.
    pub older: Vec<Message>,
    /// The summary being replaced, if the conversation was compacted before.
    pub previous_summary: Option<String>,
    /// Estimated tokens of the conversation before (summary included).
    pub tokens_before: u64,
    /// Estimated tokens of the tail kept.
    pub tokens_kept: u64,
}

/// What of `branch` (a session's conversation, root to leaf) to summarise
/// so that about `keep_recent` tokens stay word for word. `None` when there
/// is nothing older than the newest turn to summarise.
pub fn plan(branch: &[&Entry], keep_recent: u64) -> Option<Cut> {
    // The live part: after the latest reset, or the latest compaction's
    // kept tail and what came after it.
    let last = branch
        .iter()
        .rposition(|e| matches!(e.body, Body::Compaction { .. } | Body::Reset { .. }));
    let (previous_summary, live): (Option<String>, Vec<&Entry>) = match last {
        None => (None, branch.to_vec()),
        Some(c) => {
            let (summary, kept) = match &branch[c].body {
                Body::Compaction {
                    summary,
                    first_kept_entry_id,
                    ..
                } => (Some(summary.clone()), first_kept_entry_id.as_deref()),
                _ => (None, None),
            };
            let from = kept.and_then(|k| branch[..c].iter().position(|e| e.id == k));
            let mut live: Vec<&Entry> = from.map(|f| branch[f..c].to_vec()).unwrap_or_default();
            live.extend_from_slice(&branch[c + 1..]);
            (summary, live)
        }
    };
    // Turn starts, newest first: the only places the tail may begin.
    let starts: Vec<usize> = live
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.body, Body::Message(Message::User { .. })))
        .map(|(i, _)| i)
        .collect();
    let tokens = |es: &[&Entry]| -> u64 {
        pincer_sessions::messages_of(es)
            .iter()
            .map(estimate)
            .sum::<u64>()
    };
    let summary_tokens = previous_summary
        .as_ref()
        .map_or(0, |s| estimate(&Message::user(s.clone())));
    let all = tokens(&live);
    // The newest turn start whose tail reaches `keep_recent`; at least the
    // newest turn is kept, and at least one turn must be left to summarise.
    let mut cut = *starts.last()?;
    for &s in starts.iter().rev() {
        cut = s;
        if tokens(&live[s..]) >= keep_recent {
            break;
        }
    }
    if cut == 0 {
        // The whole live part fits in the tail: summarise all but the newest turn.
        cut = *starts.iter().rfind(|&&s| s > 0)?;
    }
    let older = pincer_sessions::messages_of(&live[..cut]);
    if older.is_empty() {
        return None;
    }
    let kept = tokens(&live[cut..]);
    Some(Cut {
        first_kept_entry_id: live[cut].id.clone(),
        older,
        previous_summary,
        tokens_before: all + summary_tokens,
        tokens_kept: kept,
    })
}

/// Older messages as plain text for the summariser.
pub fn transcript_text(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::System { .. } => None,
            Message::User { text } => Some(format!("[User]: {text}")),
            Message::Assistant {
                text,
                tool_calls,
                reasoning: _,
            } => {
                let mut s = String::new();
                if !text.trim().is_empty() {
                    s.push_str(&format!("[Assistant]: {}", text.trim()));
                }
                if !tool_calls.is_empty() {
                    if !s.is_empty() {
                        s.push('\n');
                    }
                    let calls: Vec<String> = tool_calls
                        .iter()
                        .map(|c| format!("{}({})", c.name, c.arguments))
                        .collect();
                    s.push_str(&format!("[Assistant tool calls]: {}", calls.join("; ")));
                }
                (!s.is_empty()).then_some(s)
            }
            Message::Tool { content, .. } => {
                let mut c: String = content.chars().take(TOOL_RESULT_CHARS).collect();
                if c.len() < content.len() {
                    c.push_str(" […]");
                }
                Some(format!("[Tool result]: {c}"))
            }
        })
        .collect()
}

const SUMMARISER: &str = "You summarise conversations between a user and an AI assistant. \
Read the conversation and write the structured summary asked for. Do not continue the \
conversation and do not answer questions in it: output only the summary.";

const SECTIONS: &str = "Write the summary with these sections:
## Goal
## Constraints & Preferences
## Progress
### Done
### In Progress
### Blocked
## Key Decisions
## Next Steps
## Critical Context
Keep each section short. Keep exact names, numbers, file paths and error messages.";

const UPDATE: &str = "The previous summary is above. Update it with the new conversation: \
keep what still holds, add what is new, move finished items from In Progress to Done.";

/// The summary requests for `cut`, in stages that each fit `room` prompt
/// tokens: every stage after the first updates the summary so far (the
/// runtime puts each answer into the next request with `with_summary`).
pub fn stages(cut: &Cut, room: u64, focus: Option<&str>) -> Vec<Vec<String>> {
    // Room for the conversation text, after instructions and the summary.
    let fixed = estimate(&Message::system(SUMMARISER)) + estimate(&Message::user(SECTIONS)) + 64;
    let summary_room = cut.previous_summary.as_ref().map_or(room / 4, |s| {
        estimate(&Message::user(s.clone())).max(room / 4)
    });
    let chars = (room.saturating_sub(fixed + summary_room).max(64) * 4) as usize;
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut size = 0;
    for line in transcript_text(&cut.older) {
        let line: String = line.chars().take(chars).collect();
        let n = line.chars().count() + 1;
        match out.last_mut() {
            Some(stage) if size + n <= chars => stage.push(line),
            _ => out.push(vec![line]),
        }
        if out.last().map(Vec::len) == Some(1) {
            size = 0;
        }
        size += n;
    }
    if let Some(f) = focus.filter(|f| !f.trim().is_empty())
        && let Some(last) = out.last_mut()
    {
        last.push(format!("Additional focus: {}", f.trim()));
    }
    out
}

/// One summary request: `lines` of conversation, after `summary` so far.
pub fn request(lines: &[String], summary: Option<&str>, max_tokens: u64) -> ChatRequest {
    let (focus, conversation): (Vec<&String>, Vec<&String>) = lines
        .iter()
        .partition(|l| l.starts_with("Additional focus: "));
    let mut text = format!(
        "<conversation>\n{}\n</conversation>\n\n",
        conversation
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    if let Some(s) = summary {
        text.push_str(&format!(
            "<previous-summary>\n{s}\n</previous-summary>\n\n{UPDATE}\n\n"
        ));
    }
    text.push_str(SECTIONS);
    for f in focus {
        text.push_str(&format!("\n\n{f}"));
    }
    ChatRequest {
        messages: vec![Message::system(SUMMARISER), Message::user(text)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.2),
        ..ChatRequest::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_sessions::Tree;

    /// The lines of a transcript of `turns` turns of about `chars`
    /// characters each, with a tool call in the second turn.
    fn lines(turns: usize, chars: usize) -> String {
        let mut lines = Vec::new();
        let mut parent = "null".to_string();
        let mut n = 0;
        let mut push = |lines: &mut Vec<String>, message: String| {
            n += 1;
            lines.push(format!(
                r#"{{"type":"message","id":"e{n}","parentId":{parent},"message":{message}}}"#
            ));
            parent = format!("\"e{n}\"");
        };
        let text = "w".repeat(chars);
        for t in 0..turns {
            push(
                &mut lines,
                format!(r#"{{"role":"user","content":"q{t} {text}"}}"#),
            );
            if t == 1 {
                push(&mut lines, r#"{"role":"assistant","content":[{"type":"toolCall","id":"c","name":"read","arguments":{"path":"a.txt"}}]}"#.into());
                push(&mut lines, r#"{"role":"toolResult","toolCallId":"c","toolName":"read","content":[{"type":"text","text":"file body"}]}"#.into());
            }
            push(
                &mut lines,
                format!(
                    r#"{{"role":"assistant","content":[{{"type":"text","text":"a{t} {text}"}}]}}"#
                ),
            );
        }
        lines.join("\n")
    }

    fn transcript(turns: usize, chars: usize) -> Tree {
        Tree::parse(&lines(turns, chars))
    }

    #[test]
    fn the_tail_starts_at_a_turn_and_keeps_about_keep_recent() {
        let tree = transcript(10, 400);
        let branch = tree.branch();
        // Each turn ≈ 2 × 105 tokens: a 500-token tail is the last 3 turns.
        let cut = plan(&branch, 500).unwrap();
        let kept = branch
            .iter()
            .position(|e| e.id == cut.first_kept_entry_id)
            .unwrap();
        assert!(matches!(
            branch[kept].body,
            Body::Message(Message::User { .. })
        ));
        assert!(cut.tokens_kept >= 500 && cut.tokens_kept < 750, "{cut:?}");
        assert_eq!(
            cut.older.len(),
            2 * 7 + 2,
            "seven turns, one with a call and result"
        );
        let text = transcript_text(&cut.older).join("\n");
        assert!(
            text.contains("[Assistant tool calls]: read({\"path\":\"a.txt\"})"),
            "{text}"
        );
        assert!(text.contains("[Tool result]: file body"));
        assert!(cut.tokens_before > cut.tokens_kept);

        // After that compaction, the next one updates its summary and does
        // not summarise again what it already covered.
        let text = format!(
            "{}\n{{\"type\":\"compaction\",\"id\":\"k1\",\"parentId\":\"{}\",\"summary\":\"S1\",\"firstKeptEntryId\":\"{}\"}}\n",
            lines(10, 400),
            branch.last().unwrap().id,
            cut.first_kept_entry_id
        );
        let again = Tree::parse(&text);
        let next = plan(&again.branch(), 100).unwrap();
        assert_eq!(next.previous_summary.as_deref(), Some("S1"));
        assert_eq!(next.older.len(), 4, "the two kept turns before the newest");
    }

    #[test]
    fn one_turn_is_nothing_to_compact() {
        let tree = transcript(1, 4000);
        assert_eq!(plan(&tree.branch(), 10), None);
        assert_eq!(plan(&Tree::default().branch(), 10), None);
        // Two turns, a tail larger than both: the older turn is summarised.
        let tree = transcript(2, 40);
        let cut = plan(&tree.branch(), 100_000).unwrap();
        assert_eq!(cut.older.len(), 2);
    }

    #[test]
    fn a_long_conversation_is_summarised_in_stages_that_fit() {
        let tree = transcript(40, 2000);
        let cut = plan(&tree.branch(), 600).unwrap();
        let stages = stages(&cut, 2_000, Some("the file names"));
        assert!(stages.len() > 5, "{}", stages.len());
        for (i, s) in stages.iter().enumerate() {
            let summary = (i > 0).then_some("## Goal\nso far");
            let req = request(s, summary, 400);
            let tokens: u64 = req.messages.iter().map(estimate).sum();
            assert!(tokens <= 2_000, "stage {i}: {tokens}");
            let Message::User { text } = &req.messages[1] else {
                panic!("{req:?}")
            };
            assert_eq!(text.contains("<previous-summary>"), i > 0, "stage {i}");
        }
        let last = request(stages.last().unwrap(), None, 400);
        let Message::User { text } = &last.messages[1] else {
            panic!()
        };
        assert!(text.ends_with("Additional focus: the file names"), "{text}");
    }
}
