//! Who runs next when several sessions share one model: each session has its
//! own line, and the lines take turns. A session that sends ten requests does
//! not make another session's one request wait behind all ten.

use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
pub struct FairQueue<T> {
    lines: HashMap<String, VecDeque<T>>,
    /// Sessions with waiting work, in the order they get their next turn.
    turns: VecDeque<String>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            lines: HashMap::new(),
            turns: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    pub fn push(&mut self, session: &str, item: T) {
        let line = self.lines.entry(session.to_string()).or_default();
        if line.is_empty() {
            self.turns.push_back(session.to_string());
        }
        line.push_back(item);
    }

    /// The next item: the oldest of the session whose turn it is.
    pub fn pop(&mut self) -> Option<T> {
        let session = self.turns.pop_front()?;
        let line = self.lines.get_mut(&session)?;
        let item = line.pop_front();
        if line.is_empty() {
            self.lines.remove(&session);
        } else {
            self.turns.push_back(session);
        }
        item
    }

    pub fn len(&self) -> usize {
        self.lines.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// Drops items nobody waits for any more (their client went away).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for line in self.lines.values_mut() {
            line.retain(&mut keep);
        }
        self.lines.retain(|_, line| !line.is_empty());
        let lines = &self.lines;
        self.turns.retain(|s| lines.contains_key(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_take_turns() {
        let mut q = FairQueue::default();
        for i in 0..3 {
            q.push("busy", format!("busy{i}"));
        }
        q.push("quiet", "quiet0".to_string());
        q.push("other", "other0".to_string());
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["busy0", "quiet0", "other0", "busy1", "busy2"]);
        assert!(q.is_empty());
    }

    #[test]
    fn within_a_session_order_is_kept() {
        let mut q = FairQueue::default();
        q.push("a", 1);
        q.push("a", 2);
        assert_eq!(q.pop(), Some(1));
        q.push("b", 10);
        q.push("a", 3);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(10));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn retain_drops_abandoned_items_and_their_turns() {
        let mut q = FairQueue::default();
        q.push("a", 1);
        q.push("b", 2);
        q.push("a", 3);
        q.retain(|x| *x != 1 && *x != 2);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(), Some(3));
        assert!(q.is_empty());
    }
}
