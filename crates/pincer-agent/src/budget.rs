//! What of a conversation goes to the model. Tokens are estimated as
//! OpenClaw does (characters / 4, plus a little per message), since the
//! only exact counts are the ones a provider reports after the fact.
//!
//! - The prompt (system messages, history, the new message) must leave the
//!   output cap free: `window − output cap`.
//! - Compaction is due when the conversation passes `window − reserve`,
//!   where the reserve is OpenClaw's: 20,000 tokens, at most a quarter of
//!   the window (so a small local window keeps three quarters for prompts).
//! - When history does not fit, whole turns are dropped from the oldest
//!   (a turn starts at a user message), so a tool result never loses its
//!   call; the newest turn always stays.

use pincer_types::Message;

/// OpenClaw's compaction reserve floor (`reserveTokensFloor`), and Pincer's
/// cap on it as a share of the window.
pub const RESERVE_TOKENS: u64 = 20_000;
const MAX_RESERVE_SHARE: f64 = 0.25;
/// Role and framing tokens per message, beyond its text.
const PER_MESSAGE: u64 = 4;

/// Estimated tokens of one message.
pub fn estimate(m: &Message) -> u64 {
    let chars = match m {
        Message::System { text } | Message::User { text } => text.chars().count(),
        Message::Assistant {
            text, tool_calls, ..
        } => {
            text.chars().count()
                + tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.chars().count())
                    .sum::<usize>()
        }
        Message::Tool { name, content, .. } => name.len() + content.chars().count(),
    };
    (chars as u64).div_ceil(4) + PER_MESSAGE
}

fn total(ms: &[Message]) -> u64 {
    ms.iter().map(estimate).sum()
}

/// A model's room, resolved once: its context budget and output cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `contextTokens`, else `contextWindow` (`ModelSpec::budget`).
    pub window: u64,
    /// The output cap sent with the request.
    pub output: u64,
    /// The compaction reserve the config asks for (`reserveTokensFloor`,
    /// pi's `reserveTokens`); at most a quarter of the window is kept.
    pub reserve_tokens: u64,
}

/// The new message (with the system prompt) cannot fit even without history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the message needs about {needed} tokens, and the model has room for {room} \
     ({window}-token window less {output} for the answer): shorten it, or use a model with a larger window"
)]
pub struct Overflow {
    pub needed: u64,
    pub room: u64,
    pub window: u64,
    pub output: u64,
}

/// What of the history fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// History from this index on is sent.
    pub keep_from: usize,
    /// Estimated tokens of the whole prompt sent.
    pub prompt_tokens: u64,
}

impl Budget {
    /// Tokens kept free before compaction: 20,000 (or as configured), at
    /// most a quarter of the window.
    pub fn reserve(&self) -> u64 {
        self.reserve_tokens
            .min((self.window as f64 * MAX_RESERVE_SHARE) as u64)
    }

    /// Room for the prompt.
    pub fn room(&self) -> u64 {
        self.window.saturating_sub(self.output)
    }

    /// Whether a conversation of `tokens` should be compacted before the
    /// next turn.
    pub fn should_compact(&self, tokens: u64) -> bool {
        tokens > self.window.saturating_sub(self.reserve())
    }

    /// How much of `history` (oldest first) fits beside `system` and `new`.
    pub fn fit(
        &self,
        system: &[Message],
        history: &[Message],
        new: &[Message],
    ) -> Result<Fit, Overflow> {
        let fixed = total(system) + total(new);
        let room = self.room();
        if fixed > room {
            return Err(Overflow {
                needed: fixed,
                room,
                window: self.window,
                output: self.output,
            });
        }
        // Turn starts, oldest first: the only places history may be cut.
        let mut starts: Vec<usize> = history
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m, Message::User { .. }))
            .map(|(i, _)| i)
            .collect();
        starts.push(history.len());
        let mut from = 0;
        let mut kept = total(history);
        for &start in &starts {
            if fixed + kept <= room {
                break;
            }
            kept = total(&history[start..]);
            from = start;
        }
        Ok(Fit {
            keep_from: from,
            prompt_tokens: fixed + kept,
        })
    }
}

/// Tool results longer than this are trimmed in the prompt once they are
/// old, and the share of them kept at each end.
const TRIM_ABOVE_CHARS: usize = 4_000;
const TRIM_KEEP_CHARS: usize = 1_500;
/// Results after this many of the newest assistant messages stay whole.
const KEEP_LAST_ASSISTANTS: usize = 3;

/// Trims old tool results in a prompt (never in the transcript): a result
/// older than the last three assistant messages and over 4,000 characters
/// keeps its head and tail. Done for every provider, local ones included.
pub fn trim_old_tool_results(messages: &mut [Message]) {
    let mut assistants = 0;
    for m in messages.iter_mut().rev() {
        match m {
            Message::Assistant { .. } => assistants += 1,
            Message::Tool { content, .. } if assistants >= KEEP_LAST_ASSISTANTS => {
                let n = content.chars().count();
                if n > TRIM_ABOVE_CHARS {
                    let head: String = content.chars().take(TRIM_KEEP_CHARS).collect();
                    let tail: String = content.chars().skip(n - TRIM_KEEP_CHARS).collect();
                    *content = format!(
                        "{head}\n...\n{tail}\n[Old tool result trimmed from {n} characters.]"
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_types::ToolCall;

    fn user(chars: usize) -> Message {
        Message::user("u".repeat(chars))
    }

    fn call(id: &str) -> Message {
        Message::Assistant {
            text: String::new(),
            reasoning: None,
            tool_calls: vec![ToolCall {
                id: id.into(),
                name: "read".into(),
                arguments: "{}".into(),
            }],
        }
    }

    fn result(chars: usize) -> Message {
        Message::Tool {
            call_id: "c".into(),
            name: "read".into(),
            content: "r".repeat(chars),
            is_error: false,
        }
    }

    #[test]
    fn reserve_is_openclaws_capped_at_a_quarter_of_the_window() {
        for (window, reserve, compact_above) in [
            (200_000, 20_000, 180_000),
            (80_000, 20_000, 60_000),
            (32_768, 8_192, 24_576),
            (8_192, 2_048, 6_144),
            (2_048, 512, 1_536),
        ] {
            let b = Budget {
                window,
                output: 512,
                reserve_tokens: RESERVE_TOKENS,
            };
            assert_eq!(b.reserve(), reserve, "{window}");
            assert!(!b.should_compact(compact_above), "{window}");
            assert!(b.should_compact(compact_above + 1), "{window}");
        }
    }

    #[test]
    fn history_is_cut_at_turn_starts_from_the_oldest() {
        // Room: 1000 − 200 = 800 tokens. Each 400-char message ≈ 104.
        let b = Budget {
            window: 1000,
            output: 200,
            reserve_tokens: RESERVE_TOKENS,
        };
        let system = [Message::system("s".repeat(400))];
        let new = [user(400)];
        let history = vec![
            user(400),
            Message::assistant("a".repeat(400)),
            user(400),
            call("c1"),
            result(1600),
            Message::assistant("a".repeat(400)),
            user(400),
            Message::assistant("a".repeat(400)),
        ];
        let fit = b.fit(&system, &history, &new).unwrap();
        // Dropping the first turn is not enough (the tool turn is ≈ 728):
        // the cut lands at the last turn start, never between call and result.
        assert_eq!(fit.keep_from, 6);
        assert!(fit.prompt_tokens <= b.room(), "{fit:?}");

        // Everything fits: nothing is dropped.
        let short = [user(40), Message::assistant("ok")];
        assert_eq!(b.fit(&system, &short, &new).unwrap().keep_from, 0);

        // Even the newest turn does not fit: all history goes.
        let huge = [user(40), Message::assistant("a".repeat(4000))];
        assert_eq!(b.fit(&system, &huge, &new).unwrap().keep_from, 2);
    }

    #[test]
    fn old_long_tool_results_are_trimmed_in_the_prompt() {
        let mut ms = vec![
            user(10),
            call("c1"),
            result(10_000),
            Message::assistant("a"),
            user(10),
            Message::assistant("b"),
            user(10),
            call("c2"),
            result(10_000),
            Message::assistant("c"),
        ];
        trim_old_tool_results(&mut ms);
        let len = |m: &Message| match m {
            Message::Tool { content, .. } => content.chars().count(),
            _ => 0,
        };
        assert!(len(&ms[2]) < 3_100, "the old one is trimmed");
        assert_eq!(len(&ms[8]), 10_000, "the recent one stays whole");
    }

    #[test]
    fn a_message_larger_than_the_room_is_an_overflow_before_any_call() {
        let b = Budget {
            window: 1000,
            output: 200,
            reserve_tokens: RESERVE_TOKENS,
        };
        let e = b.fit(&[], &[], &[user(4000)]).unwrap_err();
        assert_eq!((e.needed, e.room), (1004, 800));
        assert!(e.to_string().contains("room for 800"), "{e}");
    }
}
