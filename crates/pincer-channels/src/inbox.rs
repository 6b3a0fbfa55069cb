//! A channel's inbox on disk: every message is written here before the
//! service is told it arrived (Telegram's next `getUpdates` offset, a
//! webhook's 200), and what became of it after. On a restart the messages
//! still pending are answered: a reply not yet written is asked for again,
//! a reply written but cut off is sent on from the first chunk not sent.
//! A message is answered once, or recorded as failed; never dropped.
//!
//! `<state>/pincer/channels/<channel>/<account>/inbox.json`, rewritten whole
//! on each change (a crash leaves the old file or the new one).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Inbound;

/// Finished messages remembered (so a redelivered one is not answered twice).
const KEEP_FINISHED: usize = 512;
/// Messages waiting at once; past it new ones are recorded as failed.
pub const MAX_PENDING: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    /// Answered, ignored by policy, or joined into another message's turn.
    Done,
    Failed,
}

/// One message and its fate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub msg: Inbound,
    pub state: State,
    /// The answer's chunks, once the agent has answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Vec<String>>,
    /// Chunks of `reply` already sent.
    #[serde(default)]
    pub sent: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    /// The service's resume point (Telegram's next `getUpdates` offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    /// Whose resume point it is (the bot's id): another bot's offset would
    /// make Telegram drop this one's updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    entries: Vec<Entry>,
}

pub struct Inbox {
    path: PathBuf,
    file: Mutex<File>,
}

impl Inbox {
    /// Opens the inbox at `path`. A damaged file is set aside (renamed
    /// `.damaged`) and reported, never silently replaced.
    pub fn open(path: &Path) -> Result<Inbox, String> {
        let file = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    let aside = path.with_extension("json.damaged");
                    std::fs::rename(path, &aside)
                        .map_err(|err| format!("{}: {err}", path.display()))?;
                    tracing::error!(
                        "{}: damaged ({e}); set aside as {} and started empty",
                        path.display(),
                        aside.display()
                    );
                    File::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Inbox {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Where a channel account's inbox lives.
    pub fn path(state_dir: &Path, channel: &str, account: &str) -> PathBuf {
        state_dir
            .join("pincer")
            .join("channels")
            .join(channel)
            .join(account)
            .join("inbox.json")
    }

    /// Changes the inbox: on disk first, then in memory, so a failed write
    /// changes nothing (the service sends the messages again).
    fn with<T>(&self, f: impl FnOnce(&mut File) -> T) -> Result<T, String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = file.clone();
        let out = f(&mut next);
        next.version = 1;
        pincer_router::write_whole(&self.path, &next)?;
        *file = next;
        Ok(out)
    }

    /// The saved resume point.
    pub fn offset(&self) -> Option<i64> {
        self.file.lock().ok().and_then(|f| f.offset)
    }

    /// The resume point is `owner`'s from now on: one saved for another
    /// owner (the config now names another bot) is forgotten.
    pub fn set_owner(&self, owner: &str) -> Result<(), String> {
        let same = self
            .file
            .lock()
            .map(|f| f.owner.as_deref() == Some(owner))
            .unwrap_or(false);
        if same {
            return Ok(());
        }
        self.with(|f| {
            if f.owner.is_some() || f.offset.is_some() {
                tracing::info!("the saved update offset belonged to another bot; starting afresh");
            }
            f.owner = Some(owner.to_string());
            f.offset = None;
        })
    }

    /// Records `msgs` (those not seen before) and the new resume point, on
    /// disk, before the caller acknowledges them. Returns the new ones the
    /// caller should handle (past [`MAX_PENDING`] they are recorded failed).
    pub fn accept(&self, msgs: Vec<Inbound>, offset: Option<i64>) -> Result<Vec<Inbound>, String> {
        let now = pincer_router::now_ms();
        self.with(|f| {
            if offset.is_some() {
                f.offset = offset;
            }
            let mut fresh = Vec::new();
            for m in msgs {
                if f.entries
                    .iter()
                    .any(|e| e.msg.id == m.id && e.msg.chat == m.chat)
                {
                    continue;
                }
                let pending = f
                    .entries
                    .iter()
                    .filter(|e| e.state == State::Pending)
                    .count();
                let (state, note) = if pending >= MAX_PENDING {
                    tracing::error!(
                        "{} inbox full: message {} recorded as failed",
                        m.channel,
                        m.id
                    );
                    (State::Failed, Some("the inbox was full".to_string()))
                } else {
                    fresh.push(m.clone());
                    (State::Pending, None)
                };
                f.entries.push(Entry {
                    msg: m,
                    state,
                    reply: None,
                    sent: 0,
                    note,
                    at_ms: now,
                });
            }
            prune(f);
            fresh
        })
    }

    /// The messages still pending, oldest first (to answer after a restart).
    pub fn pending(&self) -> Vec<Entry> {
        self.file
            .lock()
            .map(|f| {
                f.entries
                    .iter()
                    .filter(|e| e.state == State::Pending)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The entry for `m`, as it stands.
    pub fn get(&self, m: &Inbound) -> Option<Entry> {
        let f = self.file.lock().ok()?;
        f.entries.iter().rev().find(|e| same(&e.msg, m)).cloned()
    }

    fn update(&self, m: &Inbound, f: impl FnOnce(&mut Entry)) -> Result<(), String> {
        self.with(|file| {
            if let Some(e) = file.entries.iter_mut().rev().find(|e| same(&e.msg, m)) {
                f(e);
            }
            prune(file);
        })
    }

    /// `joined` is answered with `leader`, whose text now holds both: one
    /// write, so a crash keeps either both messages or the joined one.
    pub fn join(&self, leader: &Inbound, joined: &Inbound) -> Result<(), String> {
        self.with(|file| {
            for e in file.entries.iter_mut().rev() {
                if same(&e.msg, leader) {
                    e.msg.text = leader.text.clone();
                } else if same(&e.msg, joined) {
                    e.state = State::Done;
                    e.note = Some(format!("answered with message {}", leader.id));
                }
            }
        })
    }

    /// The answer, before its first chunk is sent.
    pub fn set_reply(&self, m: &Inbound, chunks: Vec<String>) -> Result<(), String> {
        self.update(m, |e| {
            e.reply = Some(chunks);
            e.sent = 0;
        })
    }

    /// `n` chunks of the answer are out.
    pub fn set_sent(&self, m: &Inbound, n: usize) -> Result<(), String> {
        self.update(m, |e| e.sent = n)
    }

    pub fn finish(&self, m: &Inbound, state: State, note: Option<String>) -> Result<(), String> {
        self.update(m, |e| {
            e.state = state;
            e.note = note;
        })
    }
}

/// The same message: its id is only unique within its chat.
fn same(a: &Inbound, b: &Inbound) -> bool {
    a.id == b.id && a.chat == b.chat
}

/// Drops the oldest finished entries past [`KEEP_FINISHED`].
fn prune(f: &mut File) {
    let finished = f
        .entries
        .iter()
        .filter(|e| e.state != State::Pending)
        .count();
    let mut excess = finished.saturating_sub(KEEP_FINISHED);
    f.entries.retain(|e| {
        if excess > 0 && e.state != State::Pending {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Inbound {
        Inbound {
            channel: "telegram".into(),
            id: id.into(),
            text: format!("message {id}"),
            ..Inbound::default()
        }
    }

    #[test]
    fn what_was_accepted_survives_a_restart_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.json");
        let inbox = Inbox::open(&path).unwrap();
        let fresh = inbox.accept(vec![msg("1"), msg("2")], Some(3)).unwrap();
        assert_eq!(fresh.len(), 2);
        inbox
            .set_reply(&msg("1"), vec!["a".into(), "b".into()])
            .unwrap();
        inbox.set_sent(&msg("1"), 1).unwrap();
        inbox.finish(&msg("2"), State::Done, None).unwrap();
        drop(inbox);

        let inbox = Inbox::open(&path).unwrap();
        assert_eq!(inbox.offset(), Some(3));
        let pending = inbox.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sent, 1);
        assert_eq!(
            pending[0].reply.as_deref(),
            Some(&["a".to_string(), "b".into()][..])
        );
        // Delivered again by the service: not taken twice.
        assert!(
            inbox
                .accept(vec![msg("1"), msg("2")], None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_same_id_in_two_chats_is_two_messages() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.json")).unwrap();
        let a = msg("X");
        let mut b = msg("X");
        b.chat.id = "other".into();
        assert_eq!(
            inbox
                .accept(vec![a.clone(), b.clone()], None)
                .unwrap()
                .len(),
            2
        );
        inbox.set_reply(&b, vec!["for b".into()]).unwrap();
        assert_eq!(inbox.get(&a).unwrap().reply, None);
        assert_eq!(inbox.get(&b).unwrap().reply.unwrap(), ["for b"]);
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("inbox.json");
        let inbox = Inbox::open(&path).unwrap();
        // A file where the directory should be: every write fails.
        std::fs::write(dir.path().join("sub"), "x").unwrap();
        assert!(inbox.accept(vec![msg("1")], Some(2)).is_err());
        assert!(inbox.pending().is_empty());
        assert_eq!(inbox.offset(), None);
        std::fs::remove_file(dir.path().join("sub")).unwrap();
        assert_eq!(
            inbox.accept(vec![msg("1")], Some(2)).unwrap().len(),
            1,
            "taken when sent again"
        );
    }

    #[test]
    fn another_bots_offset_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.json");
        let inbox = Inbox::open(&path).unwrap();
        inbox.set_owner("1").unwrap();
        inbox.accept(vec![], Some(900)).unwrap();
        inbox.set_owner("1").unwrap();
        assert_eq!(inbox.offset(), Some(900));
        drop(inbox);
        let inbox = Inbox::open(&path).unwrap();
        inbox.set_owner("2").unwrap();
        assert_eq!(inbox.offset(), None);
    }

    #[test]
    fn a_damaged_inbox_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.json");
        std::fs::write(&path, "{ not json").unwrap();
        let inbox = Inbox::open(&path).unwrap();
        assert!(inbox.pending().is_empty());
        assert!(dir.path().join("inbox.json.damaged").exists());
    }

    #[test]
    fn finished_entries_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.json")).unwrap();
        let msgs: Vec<Inbound> = (0..KEEP_FINISHED + 50)
            .map(|i| msg(&i.to_string()))
            .collect();
        inbox.accept(msgs, None).unwrap();
        for i in 0..KEEP_FINISHED + 50 {
            inbox
                .finish(&msg(&i.to_string()), State::Done, None)
                .unwrap();
        }
        let f = inbox.file.lock().unwrap();
        assert_eq!(f.entries.len(), KEEP_FINISHED);
    }
}
