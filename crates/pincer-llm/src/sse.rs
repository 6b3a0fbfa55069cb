//! Server-sent events, decoded incrementally from bytes cut anywhere.
//!
//! Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR (a CR
//! at the end of one chunk and an LF at the start of the next are one line
//! end), `:` starts a comment, one space after the field's colon is dropped,
//! `data` lines join with LF and a blank line dispatches the event.
//!
//! The same reader splits newline-delimited JSON (Ollama's streams): there
//! each non-empty line is one event's `data`.

use pincer_types::{ErrorKind, ProviderError};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; None means the default type, "message".
    pub event: Option<String>,
    pub data: String,
}

/// A single line or event larger than this is not a stream we can trust.
const MAX_PENDING: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Newline-delimited JSON: every non-empty line is an event.
    ndjson: bool,
}

impl SseDecoder {
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// A reader of newline-delimited JSON (one event per non-empty line).
    pub fn ndjson() -> SseDecoder {
        SseDecoder {
            ndjson: true,
            ..SseDecoder::default()
        }
    }

    /// Feed the next bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out)?,
                b'\r' => {
                    self.skip_lf = true;
                    self.end_line(&mut out)?;
                }
                _ => {
                    if self.line.len() + self.data.len() >= MAX_PENDING {
                        return Err(ProviderError::new(
                            ErrorKind::Protocol,
                            "event stream line or event larger than 16 MiB",
                        ));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    /// The stream ended: an event still being built is dispatched, as servers
    /// that omit the last blank line expect.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out)?;
        }
        self.dispatch(&mut out);
        Ok(out.pop())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = String::from_utf8(line).map_err(|_| {
            ProviderError::new(ErrorKind::Protocol, "event stream is not valid UTF-8")
        })?;
        if self.ndjson {
            if !line.trim().is_empty() {
                out.push(SseEvent {
                    event: None,
                    data: line,
                });
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            // `id` and `retry` matter for reconnecting, which a model reply never does.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event: event.filter(|e| !e.is_empty()),
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.feed(c).unwrap());
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn fields_comments_and_line_ends() {
        let ev = all(&[
            b": keep-alive\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\ndata: x\r",
            b"\n\n",
        ]);
        assert_eq!(
            ev,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: None,
                    data: "x".into()
                }
            ]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(all(&[b"event: ping\n\n"]).is_empty());
    }

    #[test]
    fn last_event_without_blank_line_still_counts() {
        assert_eq!(all(&[b"data: [DONE]"])[0].data, "[DONE]");
    }

    #[test]
    fn utf8_cut_inside_a_character() {
        let bytes = "data: héllo\n\n".as_bytes();
        let (a, b) = bytes.split_at(8);
        assert_eq!(all(&[a, b])[0].data, "héllo");
    }

    #[test]
    fn ndjson_lines_are_events_wherever_the_bytes_are_cut() {
        let mut d = SseDecoder::ndjson();
        let mut out = d.feed(b"{\"a\":1}\n\n{\"b\":").unwrap();
        out.extend(d.feed(b"2}\r\n{\"c\":3}").unwrap());
        out.extend(d.finish().unwrap());
        let data: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn invalid_utf8_is_a_protocol_error() {
        let mut d = SseDecoder::new();
        let err = d.feed(b"data: \xff\xfe\n\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
    }
}
