//! Turning token pieces into text a client can be sent: whole UTF-8
//! characters only, and nothing that may turn out to be a stop string.

/// Bytes from token pieces in, complete UTF-8 out. A character split over two
/// tokens (common for emoji and CJK) is held until its last byte arrives.
#[derive(Debug, Default)]
pub struct Utf8Joiner {
    pending: Vec<u8>,
}

impl Utf8Joiner {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe by construction: `valid_up_to` bytes are UTF-8.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be UTF-8: replace, go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left when generation ends (an unfinished character is replaced).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Finds the client's stop strings in the generated text. Text that could
/// still become a stop string is held back, so a stop string never reaches
/// the client, even in part.
#[derive(Debug, Default)]
pub struct StopScanner {
    stops: Vec<String>,
    held: String,
}

/// What a piece of text did to the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Safe to send now.
    pub text: String,
    /// A stop string was found: the answer ends here.
    pub stopped: bool,
}

impl StopScanner {
    pub fn new(stops: &[String]) -> StopScanner {
        StopScanner {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, piece: &str) -> Scanned {
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s)).min() {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Scanned {
                text,
                stopped: true,
            };
        }
        let keep = self.partial_stop_len();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Scanned {
            text,
            stopped: false,
        }
    }

    /// Held text, released when generation ends without a stop string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest end of the held text that begins some stop string.
    fn partial_stop_len(&self) -> usize {
        let held = self.held.as_str();
        (1..=held.len())
            .rev()
            .filter(|&n| held.is_char_boundary(held.len() - n))
            .find(|&n| {
                let tail = &held[held.len() - n..];
                self.stops
                    .iter()
                    .any(|s| s.len() > n && s.starts_with(tail))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_pieces_is_joined() {
        let bytes = "a😀b".as_bytes();
        let mut j = Utf8Joiner::default();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&j.push(&[*b]));
        }
        out.push_str(&j.finish());
        assert_eq!(out, "a😀b");
    }

    #[test]
    fn invalid_bytes_become_replacement_chars() {
        let mut j = Utf8Joiner::default();
        assert_eq!(j.push(&[b'x', 0xff, b'y']), "x\u{fffd}y");
        assert_eq!(j.push(&[0xf0, 0x9f]), "");
        assert_eq!(j.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_string_split_over_pieces_is_never_sent() {
        let mut s = StopScanner::new(&["\nUser:".to_string()]);
        let mut sent = String::new();
        let mut stopped = false;
        for piece in ["Hello", " there\n", "Us", "er: next"] {
            let r = s.push(piece);
            sent.push_str(&r.text);
            if r.stopped {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert_eq!(sent, "Hello there");
    }

    #[test]
    fn held_text_is_released_when_no_stop_follows() {
        let mut s = StopScanner::new(&["END".to_string()]);
        assert_eq!(s.push("the EN").text, "the ");
        assert_eq!(s.push("ding").text, "ENding");
        assert_eq!(s.push(" E").text, " ");
        assert_eq!(s.finish(), "E");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let mut s = StopScanner::new(&["bb".to_string(), "a".to_string()]);
        let r = s.push("xbbya");
        assert_eq!(
            r,
            Scanned {
                text: "x".into(),
                stopped: true
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn any_split_gives_the_same_text(text in "[a-cé😀 ]{0,40}", cuts in proptest::collection::vec(0usize..60, 0..8)) {
            let stops = vec!["cab".to_string(), "😀é".to_string()];
            let whole = {
                let mut s = StopScanner::new(&stops);
                let r = s.push(&text);
                if r.stopped { r.text } else { r.text + &s.finish() }
            };
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < bytes.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut j = Utf8Joiner::default();
            let mut s = StopScanner::new(&stops);
            let mut out = String::new();
            let mut start = 0;
            let mut stopped = false;
            for end in cuts.into_iter().chain([bytes.len()]) {
                let r = s.push(&j.push(&bytes[start..end]));
                out.push_str(&r.text);
                start = end;
                if r.stopped { stopped = true; break; }
            }
            if !stopped {
                out.push_str(&s.push(&j.finish()).text);
                out.push_str(&s.finish());
            }
            proptest::prop_assert_eq!(out, whole);
        }
    }
}
