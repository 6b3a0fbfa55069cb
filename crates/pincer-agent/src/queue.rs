//! What happens to a message that arrives while its session is answering
//! another: the session's queue (OpenClaw's `messages.queue`). No I/O; the
//! runtime holds one [`Pending`] per busy session.
//!
//! - `collect` (OpenClaw's default): everything that waited runs as one
//!   turn, each message under a `Queued #N` heading;
//! - `followup`: each runs as its own turn, in order;
//! - `interrupt`: the running turn is aborted and the new message runs;
//! - `steer` needs a turn with a next model call to steer into (the tool
//!   loop); until then it waits like `followup`.
//!
//! A caller that waits for its own answer (an HTTP request, `pincer chat`)
//! always gets `followup`: one request, one answer.

use std::collections::VecDeque;
use std::time::Duration;

use pincer_config::{QueueConfig, QueueDrop, QueueMode};

/// OpenClaw's defaults (`src/auto-reply/reply/queue/state.ts`).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);
pub const DEFAULT_CAP: usize = 20;

/// The heading of a collected turn, as OpenClaw writes it.
pub const COLLECT_TITLE: &str = "[Queued messages while agent was busy]";

/// A session's queue settings, resolved once per message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSettings {
    pub mode: QueueMode,
    pub debounce: Duration,
    pub cap: usize,
    pub drop: QueueDrop,
}

impl QueueSettings {
    /// For a message from `channel` (`None`: a caller waiting for its own
    /// answer): the channel's mode, else the configured one, else `collect`.
    pub fn resolve(config: &QueueConfig, channel: Option<&str>) -> QueueSettings {
        let channel = channel.map(str::to_ascii_lowercase);
        let mode = match &channel {
            None => QueueMode::Followup,
            Some(c) => config
                .by_channel
                .get(c)
                .copied()
                .or(config.mode)
                .unwrap_or(QueueMode::Collect),
        };
        let debounce = channel
            .as_ref()
            .and_then(|c| config.debounce_ms_by_channel.get(c))
            .copied()
            .or(config.debounce_ms)
            .map_or(DEFAULT_DEBOUNCE, Duration::from_millis);
        QueueSettings {
            mode,
            debounce,
            cap: config
                .cap
                .and_then(|c| usize::try_from(c).ok())
                .unwrap_or(DEFAULT_CAP)
                .max(1),
            drop: config.drop.unwrap_or(QueueDrop::Summarize),
        }
    }
}

/// One waiting message: its ticket and text.
#[derive(Debug, Clone, PartialEq)]
struct Waiting {
    ticket: u64,
    text: String,
}

/// The messages waiting for one busy session.
#[derive(Debug, Default)]
pub struct Pending {
    waiting: VecDeque<Waiting>,
    next: u64,
    dropped: usize,
    summary: Vec<String>,
    /// Tickets dropped from a full queue, until their owner asks.
    gone: VecDeque<u64>,
}

/// What became of a message offered to a full or open queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Waiting, with this ticket.
    Queued(u64),
    /// The queue was full and `drop: "new"` refuses newcomers.
    Refused,
}

/// What a delivery holding the session finds when it drains the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The tickets answered by this batch.
    pub tickets: Vec<u64>,
    /// The one user message that stands for all of them.
    pub prompt: String,
}

impl Pending {
    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.dropped == 0 && self.gone.is_empty()
    }

    /// Queues `text`, first making room as `settings.drop` says.
    pub fn push(&mut self, text: &str, settings: &QueueSettings) -> Admit {
        if self.waiting.len() >= settings.cap {
            if settings.drop == QueueDrop::New {
                return Admit::Refused;
            }
            while self.waiting.len() >= settings.cap {
                let Some(gone) = self.waiting.pop_front() else {
                    break;
                };
                self.gone.push_back(gone.ticket);
                if self.gone.len() > settings.cap {
                    self.gone.pop_front();
                }
                if settings.drop == QueueDrop::Summarize {
                    self.dropped += 1;
                    self.summary.push(summary_line(&gone.text));
                    // The summary is bounded like the queue itself.
                    if self.summary.len() > settings.cap {
                        self.summary.remove(0);
                    }
                }
            }
        }
        self.next += 1;
        self.waiting.push_back(Waiting {
            ticket: self.next,
            text: text.to_string(),
        });
        Admit::Queued(self.next)
    }

    /// Whether `ticket` is still waiting (not yet answered, not dropped).
    pub fn holds(&self, ticket: u64) -> bool {
        self.waiting.iter().any(|w| w.ticket == ticket)
    }

    /// Whether `ticket` was dropped from a full queue (told once).
    pub fn was_dropped(&mut self, ticket: u64) -> bool {
        let at = self.gone.iter().position(|t| *t == ticket);
        at.and_then(|i| self.gone.remove(i)).is_some()
    }

    /// Forgets `ticket`: its owner stopped waiting.
    pub fn forget(&mut self, ticket: u64) {
        self.waiting.retain(|w| w.ticket != ticket);
        self.gone.retain(|t| *t != ticket);
    }

    /// Takes what one turn answers: in `collect` everything waiting (with
    /// the summary of what was dropped), else the oldest message alone.
    pub fn drain(&mut self, mode: QueueMode) -> Option<Batch> {
        if mode != QueueMode::Collect {
            let w = self.waiting.pop_front()?;
            return Some(Batch {
                tickets: vec![w.ticket],
                prompt: w.text,
            });
        }
        if self.waiting.is_empty() {
            return None;
        }
        let mut blocks = vec![COLLECT_TITLE.to_string()];
        if self.dropped > 0 {
            let n = self.dropped;
            let mut s = format!(
                "[Queue overflow] Dropped {n} message{} due to cap.",
                if n == 1 { "" } else { "s" }
            );
            if !self.summary.is_empty() {
                s.push_str("\nSummary:");
                for line in &self.summary {
                    s.push_str("\n- ");
                    s.push_str(line);
                }
            }
            blocks.push(s);
            self.dropped = 0;
            self.summary.clear();
        }
        let mut tickets = Vec::new();
        for (i, w) in self.waiting.drain(..).enumerate() {
            tickets.push(w.ticket);
            blocks.push(format!("---\nQueued #{}\n{}", i + 1, w.text));
        }
        Some(Batch {
            tickets,
            prompt: blocks.join("\n\n"),
        })
    }
}

/// A dropped message in one line of at most 160 characters.
fn summary_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 160 {
        return flat;
    }
    let cut: String = flat.chars().take(159).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: QueueMode, cap: usize, drop: QueueDrop) -> QueueSettings {
        QueueSettings {
            mode,
            debounce: Duration::ZERO,
            cap,
            drop,
        }
    }

    #[test]
    fn settings_resolve_by_channel_then_config_then_default() {
        let mut c = QueueConfig::default();
        let cases: Vec<(Option<&str>, QueueMode)> = vec![
            (None, QueueMode::Followup),
            (Some("telegram"), QueueMode::Collect),
        ];
        for (channel, want) in cases {
            assert_eq!(
                QueueSettings::resolve(&c, channel).mode,
                want,
                "{channel:?}"
            );
        }
        let d = QueueSettings::resolve(&c, Some("telegram"));
        assert_eq!(
            (d.debounce, d.cap, d.drop),
            (DEFAULT_DEBOUNCE, 20, QueueDrop::Summarize)
        );

        c.mode = Some(QueueMode::Interrupt);
        c.by_channel.insert("webchat".into(), QueueMode::Followup);
        c.debounce_ms = Some(0);
        c.debounce_ms_by_channel.insert("telegram".into(), 2000);
        c.cap = Some(0);
        let cases = [
            (Some("WebChat"), QueueMode::Followup, Duration::ZERO),
            (
                Some("telegram"),
                QueueMode::Interrupt,
                Duration::from_secs(2),
            ),
            (None, QueueMode::Followup, Duration::ZERO),
        ];
        for (channel, mode, debounce) in cases {
            let s = QueueSettings::resolve(&c, channel);
            assert_eq!(
                (s.mode, s.debounce, s.cap),
                (mode, debounce, 1),
                "{channel:?}"
            );
        }
    }

    #[test]
    fn collect_runs_everything_waiting_as_one_message() {
        let s = settings(QueueMode::Collect, 20, QueueDrop::Summarize);
        let mut p = Pending::default();
        assert_eq!(p.push("first", &s), Admit::Queued(1));
        assert_eq!(p.push("second\nline", &s), Admit::Queued(2));
        let b = p.drain(QueueMode::Collect).unwrap();
        assert_eq!(b.tickets, [1, 2]);
        assert_eq!(
            b.prompt,
            "[Queued messages while agent was busy]\n\n---\nQueued #1\nfirst\n\n---\nQueued #2\nsecond\nline"
        );
        assert!(p.is_empty() && !p.holds(1));
        assert_eq!(p.drain(QueueMode::Collect), None);

        // A caller that stops waiting takes its message with it.
        let t = p.push("never mind", &s);
        p.push("still here", &s);
        if let Admit::Queued(t) = t {
            p.forget(t);
        }
        assert_eq!(p.drain(QueueMode::Collect).unwrap().tickets, [4]);
    }

    #[test]
    fn followup_runs_one_at_a_time_in_order() {
        let s = settings(QueueMode::Followup, 20, QueueDrop::Summarize);
        let mut p = Pending::default();
        p.push("a", &s);
        p.push("b", &s);
        assert_eq!(p.drain(QueueMode::Followup).unwrap().prompt, "a");
        assert!(p.holds(2));
        assert_eq!(p.drain(QueueMode::Followup).unwrap().tickets, [2]);
        assert_eq!(p.drain(QueueMode::Followup), None);
    }

    #[test]
    fn a_full_queue_drops_as_its_policy_says() {
        // (policy, what waits after a third message into a cap of 2, prompt has a summary)
        let cases = [
            (QueueDrop::Old, vec![2, 3], false, Admit::Queued(3)),
            (QueueDrop::Summarize, vec![2, 3], true, Admit::Queued(3)),
            (QueueDrop::New, vec![1, 2], false, Admit::Refused),
        ];
        for (drop, waiting, summarised, third) in cases {
            let s = settings(QueueMode::Collect, 2, drop);
            let mut p = Pending::default();
            p.push("one  long\tmessage", &s);
            p.push("two", &s);
            assert_eq!(p.push("three", &s), third, "{drop:?}");
            assert_eq!(p.was_dropped(1), drop != QueueDrop::New, "{drop:?}");
            assert!(!p.was_dropped(1), "told once");
            let b = p.drain(QueueMode::Collect).unwrap();
            assert_eq!(b.tickets, waiting, "{drop:?}");
            assert_eq!(
                b.prompt.contains(
                    "[Queue overflow] Dropped 1 message due to cap.\nSummary:\n- one long message"
                ),
                summarised,
                "{drop:?}: {}",
                b.prompt
            );
        }
    }

    #[test]
    fn summary_lines_are_short_and_bounded() {
        let s = settings(QueueMode::Collect, 1, QueueDrop::Summarize);
        let mut p = Pending::default();
        for i in 0..5 {
            p.push(&format!("{i} {}", "x".repeat(300)), &s);
        }
        let b = p.drain(QueueMode::Collect).unwrap();
        assert!(b.prompt.contains("Dropped 4 messages"), "{}", b.prompt);
        let lines: Vec<&str> = b.prompt.lines().filter(|l| l.starts_with("- ")).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("- 3 ") && lines[0].chars().count() == 162);
    }
}
