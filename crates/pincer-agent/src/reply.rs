//! What the user receives of an answer: its final text only. One function
//! for every surface (the OpenAI endpoints, `pincer chat`, and later the
//! web chat and the chat apps), so none of them shows reasoning, the
//! `<think>`/`<final>` wrapping a model was told to use, OpenClaw's reply
//! tags, or the silent-reply token.

/// The whole reply a model gives when it has nothing to say.
pub const SILENT_REPLY: &str = "NO_REPLY";

/// Reply tags a model may put in its text for a channel to act on.
const REPLY_TAGS: [&str; 3] = ["[[reply_to_current]]", "[[reply_to:", "[[audio_as_voice]]"];

/// The final text of `text`, or `None` when there is nothing to deliver
/// (empty, or only `NO_REPLY`).
pub fn final_text(text: &str) -> Option<String> {
    let mut out = strip_thinking(text);
    if let Some(inner) = between(&out, "<final>", "</final>") {
        out = inner;
    }
    let mut out = strip_reply_tags(&out);
    out = out.trim().to_string();
    if out.is_empty() || is_silent(&out) {
        return None;
    }
    Some(out)
}

/// Whether `text` is the silent-reply token (alone, perhaps with
/// punctuation a small model adds).
pub fn is_silent(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['.', '!']);
    t == SILENT_REPLY
}

/// Whether streamed text so far may still turn out to be `NO_REPLY`: a
/// surface that streams holds it back until it cannot.
pub fn may_be_silent(so_far: &str) -> bool {
    let t = so_far.trim_start();
    !t.is_empty() && SILENT_REPLY.starts_with(t.trim_end())
}

/// Removes `<think>…</think>` (and `<thinking>`) blocks; an unclosed block
/// runs to the end (the answer was cut while reasoning).
fn strip_thinking(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let open = ["<think>", "<thinking>"]
            .iter()
            .filter_map(|tag| rest.find(tag).map(|i| (i, *tag)))
            .min();
        let Some((at, tag)) = open else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        let close = if tag == "<think>" {
            "</think>"
        } else {
            "</thinking>"
        };
        match rest[at..].find(close) {
            Some(end) => rest = &rest[at + end + close.len()..],
            None => break,
        }
    }
    // A closing tag without its opening one: the reasoning came before it.
    for close in ["</think>", "</thinking>"] {
        if let Some(i) = out.find(close) {
            out = out[i + close.len()..].to_string();
        }
    }
    out
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close).map_or(text.len(), |e| start + e);
    Some(text[start..end].to_string())
}

fn strip_reply_tags(text: &str) -> String {
    let mut out = text.to_string();
    for tag in REPLY_TAGS {
        while let Some(i) = out.find(tag) {
            let end = if tag.ends_with(':') {
                out[i..].find("]]").map_or(out.len(), |e| i + e + 2)
            } else {
                i + tag.len()
            };
            out.replace_range(i..end, "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_final_text_reaches_the_user() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Paris.", Some("Paris.")),
            ("  Paris.\n", Some("Paris.")),
            ("<think>The user asks…</think>Paris.", Some("Paris.")),
            ("<think>a</think>One <think>b</think>two", Some("One two")),
            ("<thinking>x</thinking>\nHi", Some("Hi")),
            ("<think>cut off while reasoning", None),
            ("reasoning leaked</think>Answer", Some("Answer")),
            (
                "<think>plan</think><final>Only this.</final>",
                Some("Only this."),
            ),
            ("<final>Unclosed final", Some("Unclosed final")),
            ("[[reply_to_current]] Sure.", Some("Sure.")),
            ("[[reply_to:abc123]]Yes [[audio_as_voice]]", Some("Yes")),
            ("NO_REPLY", None),
            (" NO_REPLY. ", None),
            ("<think>nothing to add</think>NO_REPLY", None),
            (
                "NO_REPLY is a token I know",
                Some("NO_REPLY is a token I know"),
            ),
            ("", None),
            ("   ", None),
        ];
        for (text, want) in cases {
            assert_eq!(final_text(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn a_stream_is_held_back_while_it_may_be_silent() {
        assert!(may_be_silent("NO_"));
        assert!(may_be_silent(" NO_REPLY"));
        assert!(!may_be_silent("NO_REPLY is"));
        assert!(!may_be_silent("Hello"));
        assert!(!may_be_silent(""));
    }
}
