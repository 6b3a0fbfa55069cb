//! Reasoning written inline in the text (`<think>…</think>`, common with local
//! reasoning models) split from the final text, however the tags are cut
//! across chunks.
//!
//! Rules: a closed block is reasoning; an opening tag that never closes makes
//! everything after it reasoning (so a reply wholly inside one unclosed tag has
//! no final text, which the router treats as a failed candidate rather than
//! leaking the thinking into a chat message). Whitespace right after a block is
//! dropped, so the answer does not start with the newlines models put there.

use crate::event::Event;

const TAGS: [&str; 6] = [
    "think",
    "thinking",
    "thought",
    "reasoning",
    "internal",
    "antthinking",
];

#[derive(Debug, Default)]
pub struct ThinkSplitter {
    in_block: bool,
    /// Text held back because it may be the start of a tag.
    pending: String,
    trim_next_text: bool,
}

enum TagMatch {
    Full(usize),
    Partial,
    None,
}

fn match_tag(rest: &str, closing: bool) -> TagMatch {
    let prefix = if closing { "</" } else { "<" };
    let mut partial = false;
    for tag in TAGS {
        let candidate = format!("{prefix}{tag}>");
        let n = candidate.len().min(rest.len());
        if rest.as_bytes()[..n].eq_ignore_ascii_case(&candidate.as_bytes()[..n]) {
            if rest.len() >= candidate.len() {
                return TagMatch::Full(candidate.len());
            }
            partial = true;
        }
    }
    if partial {
        TagMatch::Partial
    } else {
        TagMatch::None
    }
}

impl ThinkSplitter {
    pub fn new() -> ThinkSplitter {
        ThinkSplitter::default()
    }

    /// Split the next piece of model text into text and reasoning events.
    pub fn push(&mut self, delta: &str, out: &mut Vec<Event>) {
        self.pending.push_str(delta);
        loop {
            let Some(lt) = self.pending.find('<') else {
                let all = std::mem::take(&mut self.pending);
                self.emit(&all, out);
                return;
            };
            match match_tag(&self.pending[lt..], self.in_block) {
                TagMatch::Full(len) => {
                    let before: String = self.pending.drain(..lt + len).take(lt).collect();
                    self.emit(&before, out);
                    self.in_block = !self.in_block;
                    if !self.in_block {
                        self.trim_next_text = true;
                    }
                }
                TagMatch::Partial => {
                    let before: String = self.pending.drain(..lt).collect();
                    self.emit(&before, out);
                    return;
                }
                TagMatch::None => {
                    let before: String = self.pending.drain(..=lt).collect();
                    self.emit(&before, out);
                }
            }
        }
    }

    /// The text ended: what was held back as a possible tag is plain content.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let rest = std::mem::take(&mut self.pending);
        self.emit(&rest, out);
    }

    fn emit(&mut self, s: &str, out: &mut Vec<Event>) {
        if self.in_block {
            if !s.is_empty() {
                push_merged(out, Event::Reasoning { delta: s.into() });
            }
            return;
        }
        let s = if self.trim_next_text {
            s.trim_start()
        } else {
            s
        };
        if s.is_empty() {
            return;
        }
        self.trim_next_text = false;
        push_merged(out, Event::Text { delta: s.into() });
    }
}

/// Appends to the previous event of the same kind, so one chunk gives at most
/// one event per kind.
fn push_merged(out: &mut Vec<Event>, e: Event) {
    match (out.last_mut(), e) {
        (Some(Event::Text { delta: a }), Event::Text { delta: b })
        | (Some(Event::Reasoning { delta: a }), Event::Reasoning { delta: b }) => a.push_str(&b),
        (_, e) => out.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reply;

    fn split(chunks: &[&str]) -> (String, String) {
        let mut s = ThinkSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        let r = Reply::from_events(&out);
        (r.text, r.reasoning)
    }

    #[test]
    fn closed_block_is_reasoning() {
        assert_eq!(
            split(&["<think>plan it</think>\n\nHello!"]),
            ("Hello!".into(), "plan it".into())
        );
    }

    #[test]
    fn tags_cut_anywhere_give_the_same_split() {
        let whole = "Sure. <thinking>a < b, and <b>bold</b></thinking>Answer: 3 < 4";
        let expect = split(&[whole]);
        assert_eq!(expect.0, "Sure. Answer: 3 < 4");
        assert_eq!(expect.1, "a < b, and <b>bold</b>");
        for i in 0..whole.len() {
            for j in i..whole.len() {
                if !whole.is_char_boundary(i) || !whole.is_char_boundary(j) {
                    continue;
                }
                assert_eq!(split(&[&whole[..i], &whole[i..j], &whole[j..]]), expect);
            }
        }
    }

    #[test]
    fn unclosed_block_after_text_is_hidden() {
        assert_eq!(
            split(&["Hi there", " <think>still going"]),
            ("Hi there ".into(), "still going".into())
        );
    }

    #[test]
    fn case_and_other_tags() {
        assert_eq!(split(&["<THINK>x</THINK>y"]), ("y".into(), "x".into()));
        assert_eq!(
            split(&["<p>not a tag</p>"]),
            ("<p>not a tag</p>".into(), "".into())
        );
        assert_eq!(split(&["a <thin"]), ("a <thin".into(), "".into()));
    }
}
