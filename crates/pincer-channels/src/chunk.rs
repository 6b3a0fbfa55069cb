//! Cutting an answer into messages a chat app accepts: each at most the
//! channel's limit (counted in UTF-16 units, as Telegram counts), split at
//! a paragraph, else a line, else a sentence, else a space; a code fence
//! cut in two is closed at the end of one message and opened again, with
//! its language, at the start of the next.

/// Both Telegram's and WhatsApp's default `textChunkLimit`.
pub const DEFAULT_LIMIT: usize = 4000;

/// Room kept for the fence that closes a cut code block.
const FENCE_CLOSE: &str = "\n```";

fn len16(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The longest prefix of `s` (on a char boundary) within `budget` units.
fn prefix_within(s: &str, budget: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > budget {
            return i;
        }
    }
    s.len()
}

/// Where to cut `window` (a prefix of what is left): the last paragraph
/// break, line break, sentence end or space that keeps the piece from
/// being tiny; the whole window when there is none. Returns the end of the
/// piece and where the next one starts.
fn cut(window: &str, in_code: bool) -> (usize, usize) {
    let floor = window.len() / 3;
    let found = |at: Option<usize>, skip: usize| at.filter(|&i| i > floor).map(|i| (i, i + skip));
    let paragraph = if in_code {
        None
    } else {
        found(window.rfind("\n\n"), 2)
    };
    let sentence = || {
        [". ", "! ", "? ", "。", "！", "？"]
            .iter()
            .filter_map(|p| window.rfind(p).map(|i| i + p.len()))
            .max()
            .and_then(|i| found(Some(i), 0))
    };
    paragraph
        .or_else(|| found(window.rfind('\n'), 1))
        .or_else(|| if in_code { None } else { sentence() })
        .or_else(|| found(window.rfind([' ', '\t']), 1))
        .unwrap_or((window.len(), window.len()))
}

/// The fence line that is still open at the end of `text`, if one is,
/// given the one open at its start.
fn open_fence(text: &str, mut open: Option<String>) -> Option<String> {
    for line in text.lines() {
        let t = line.trim_start();
        let marker = if t.starts_with("```") {
            "```"
        } else if t.starts_with("~~~") {
            "~~~"
        } else {
            continue;
        };
        open = match open {
            Some(o) if o.starts_with(marker) && t.trim_end() == marker => None,
            Some(o) => Some(o),
            None => Some(t.trim_end().to_string()),
        };
    }
    open
}

/// `text` as messages of at most `limit` units, in order.
pub fn chunks(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(64);
    let mut out = Vec::new();
    let mut rest = text.trim();
    let mut fence: Option<String> = None;
    while !rest.is_empty() {
        // A fence line too long to repeat is reopened bare.
        let prefix = match &fence {
            Some(f) if len16(f) <= limit / 8 => format!("{f}\n"),
            Some(f) if f.starts_with("~~~") => "~~~\n".to_string(),
            Some(_) => "```\n".to_string(),
            None => String::new(),
        };
        if len16(&prefix) + len16(rest) <= limit {
            out.push(format!("{prefix}{rest}"));
            break;
        }
        let budget = limit - len16(&prefix) - len16(FENCE_CLOSE);
        let window = &rest[..prefix_within(rest, budget)];
        let (end, next) = cut(window, fence.is_some());
        let (end, next) = if end == 0 {
            // Nothing fits but one character (a limit this small is refused
            // above, so this is a safety net): take it.
            let n = rest.chars().next().map_or(1, char::len_utf8);
            (n, n)
        } else {
            (end, next)
        };
        let piece = rest[..end].trim_end();
        let still_open = open_fence(piece, fence.clone());
        let mut chunk = format!("{prefix}{piece}");
        if let Some(f) = &still_open {
            let marker = if f.starts_with("~~~") { "~~~" } else { "```" };
            chunk.push('\n');
            chunk.push_str(marker);
        }
        if !piece.is_empty() {
            out.push(chunk);
        }
        fence = still_open;
        rest = &rest[next..];
        if fence.is_none() {
            rest = rest.trim_start();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn squash(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn a_short_answer_is_one_message() {
        assert_eq!(chunks("  hello\n", 4000), vec!["hello"]);
        assert!(chunks("   ", 4000).is_empty());
    }

    #[test]
    fn splits_at_paragraphs_then_lines_then_sentences() {
        let para = "a".repeat(60);
        let text = format!("{para}\n\n{para}\n\n{para}");
        assert_eq!(
            chunks(&text, 130),
            vec![format!("{para}\n\n{para}"), para.clone()]
        );
        let text = format!("{para}\n{para}\n{para}");
        assert_eq!(
            chunks(&text, 130),
            vec![format!("{para}\n{para}"), para.clone()]
        );
        let s = "This is a sentence. ".repeat(5);
        let c = chunks(&s, 70);
        assert!(c.iter().all(|c| c.ends_with('.')), "{c:?}");
    }

    #[test]
    fn a_code_block_cut_in_two_is_closed_and_reopened() {
        let code: String = (0..40).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n\n```rust\n{code}```\n\nDone.");
        let c = chunks(&text, 200);
        assert!(c.len() > 2, "{c:?}");
        for (i, m) in c.iter().enumerate() {
            assert!(len16(m) <= 200);
            let fences = m.lines().filter(|l| l.starts_with("```")).count();
            assert_eq!(fences % 2, 0, "message {i} leaves a fence open: {m}");
            if i > 0 && i + 1 < c.len() {
                assert!(m.starts_with("```rust\n"), "{m}");
            }
        }
        let joined = c.join("\n");
        assert_eq!(
            squash(&joined.replace("```rust", "").replace("```", "")),
            squash(&text.replace("```rust", "").replace("```", ""))
        );
    }

    #[test]
    fn fifty_thousand_characters_arrive_in_order() {
        let text: String = (0..5000).map(|i| format!("{i:05} line.\n")).collect();
        let c = chunks(&text, DEFAULT_LIMIT);
        assert!(c.len() >= 14, "{}", c.len());
        assert_eq!(squash(&c.concat()), squash(&text));
    }

    #[test]
    fn counts_utf16_units_as_telegram_does() {
        let text = "😀".repeat(3000);
        let c = chunks(&text, DEFAULT_LIMIT);
        assert!(c.iter().all(|m| len16(m) <= DEFAULT_LIMIT));
        assert_eq!(c.concat(), text);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn never_over_the_limit_and_nothing_lost(
            text in "[a-z .!?\n😀é]{0,3000}",
            limit in 64usize..800,
        ) {
            let c = chunks(&text, limit);
            for m in &c {
                prop_assert!(len16(m) <= limit, "{} > {limit}", len16(m));
                prop_assert!(!m.trim().is_empty());
            }
            prop_assert_eq!(squash(&c.concat()), squash(&text));
        }
    }
}
