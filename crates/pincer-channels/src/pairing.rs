//! Pairing: an unknown sender of a direct message gets a one-time code;
//! the owner approves it with `pincer pairing approve <channel> <code>`,
//! and from then on the sender is answered. Nothing the sender wrote
//! reaches the model before that.
//!
//! OpenClaw's rules: 8 characters from an alphabet without look-alikes,
//! valid for an hour, at most 3 waiting per channel (a fourth sender gets
//! no reply), one reply per request (a sender who writes again is not
//! answered again). The files are OpenClaw's JSON layout (which its
//! `doctor --fix` imports into the SQLite store it uses now), under
//! `<state>/credentials/`: `<channel>-pairing.json` and
//! `<channel>-allowFrom.json`, written whole with mode 0600.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Sender;

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 8;
const TTL_MS: u64 = 60 * 60 * 1000;
pub const MAX_PENDING: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The sender's id.
    pub id: String,
    pub code: String,
    pub created_at: String,
    pub last_seen_at: String,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Requests {
    version: u32,
    requests: Vec<Request>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Allowed {
    version: u32,
    allow_from: Vec<String>,
}

/// A channel's pairing files. Every call reads them afresh, so an
/// approval made by `pincer pairing approve` while the gateway runs counts
/// at once.
pub struct Pairing {
    channel: String,
    dir: PathBuf,
    lock: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "no pending pairing request for {channel} has code {code:?} (codes expire after an hour; `pincer pairing list {channel}` shows them)"
    )]
    UnknownCode { channel: String, code: String },
    #[error("{0}")]
    Io(String),
}

impl Pairing {
    pub fn new(state_dir: &Path, channel: &str) -> Pairing {
        Pairing {
            channel: channel.to_ascii_lowercase(),
            dir: state_dir.join("credentials"),
            lock: Mutex::new(()),
        }
    }

    fn requests_path(&self) -> PathBuf {
        self.dir.join(format!("{}-pairing.json", self.channel))
    }

    fn allowed_path(&self) -> PathBuf {
        self.dir.join(format!("{}-allowFrom.json", self.channel))
    }

    fn read<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, PairingError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| PairingError::Io(format!("{}: not valid: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(PairingError::Io(format!("{}: {e}", path.display()))),
        }
    }

    fn write(&self, path: &Path, value: &impl Serialize) -> Result<(), PairingError> {
        pincer_router::write_whole(path, value).map_err(PairingError::Io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// The senders approved so far.
    pub fn approved(&self) -> Result<Vec<String>, PairingError> {
        Ok(Self::read::<Allowed>(&self.allowed_path())?.allow_from)
    }

    /// Whether one of `ids` was approved (an unreadable file approves no one).
    pub fn is_approved(&self, ids: &[String]) -> bool {
        match self.approved() {
            Ok(list) => crate::access::listed(&list, ids),
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        }
    }

    /// The requests still valid, expired ones dropped.
    fn live(&self, now: u64) -> Result<Vec<Request>, PairingError> {
        let mut r = Self::read::<Requests>(&self.requests_path())?.requests;
        r.retain(|q| millis(&q.created_at).is_some_and(|t| now < t + TTL_MS));
        Ok(r)
    }

    pub fn pending(&self) -> Result<Vec<Request>, PairingError> {
        self.live(pincer_router::now_ms())
    }

    /// A code for `sender` when this is a new request; `None` when one is
    /// already waiting for them (they were told) or too many are waiting.
    pub fn request(&self, sender: &Sender) -> Result<Option<String>, PairingError> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = pincer_router::now_ms();
        let mut live = self.live(now)?;
        let stamp = iso(now);
        if let Some(q) = live.iter_mut().find(|q| q.id == sender.id) {
            q.last_seen_at = stamp;
            self.save_requests(live)?;
            return Ok(None);
        }
        if live.len() >= MAX_PENDING {
            return Ok(None);
        }
        let code = loop {
            let c = new_code();
            if !live.iter().any(|q| q.code == c) {
                break c;
            }
        };
        live.push(Request {
            id: sender.id.clone(),
            code: code.clone(),
            created_at: stamp.clone(),
            last_seen_at: stamp,
            meta: Meta {
                username: sender.username.clone(),
                name: sender.name.clone(),
            },
        });
        self.save_requests(live)?;
        Ok(Some(code))
    }

    fn save_requests(&self, requests: Vec<Request>) -> Result<(), PairingError> {
        self.write(
            &self.requests_path(),
            &Requests {
                version: 1,
                requests,
            },
        )
    }

    /// Approves the request with `code`: its sender is allowed from now on.
    pub fn approve(&self, code: &str) -> Result<Request, PairingError> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = self.live(pincer_router::now_ms())?;
        let Some(i) = live
            .iter()
            .position(|q| q.code.eq_ignore_ascii_case(code.trim()))
        else {
            return Err(PairingError::UnknownCode {
                channel: self.channel.clone(),
                code: code.to_string(),
            });
        };
        let request = live.remove(i);
        let mut allowed = Self::read::<Allowed>(&self.allowed_path())?;
        if !allowed.allow_from.contains(&request.id) {
            allowed.allow_from.push(request.id.clone());
        }
        allowed.version = 1;
        self.write(&self.allowed_path(), &allowed)?;
        self.save_requests(live)?;
        Ok(request)
    }
}

/// What an unknown sender is told.
pub fn reply_text(channel: &str, sender: &Sender, code: &str) -> String {
    let app = match channel {
        "telegram" => "Telegram user id",
        "whatsapp" => "WhatsApp number",
        _ => "id",
    };
    format!(
        "Pincer: access not configured.\n\nYour {app}: {}\nPairing code: {code}\n\nAsk the bot owner to approve with:\npincer pairing approve {channel} {code}",
        sender.id
    )
}

/// What an approved sender is told, when the owner asks for it.
pub const APPROVED_TEXT: &str = "✅ Pincer access approved. Send a message to start chatting.";

fn new_code() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(CODE_LEN)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Milliseconds as an RFC 3339 UTC time (OpenClaw writes ISO strings).
fn iso(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An RFC 3339 time back to milliseconds (`None`: not one).
fn millis(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(id: &str) -> Sender {
        Sender {
            id: id.into(),
            ..Sender::default()
        }
    }

    #[test]
    fn times_round_trip() {
        for ms in [0, 1_700_000_000_123, 1_798_761_599_999] {
            assert_eq!(millis(&iso(ms)), Some(ms), "{}", iso(ms));
        }
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(millis("garbage"), None);
    }

    #[test]
    fn a_code_once_per_sender_three_at_most_and_approval_allows() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::new(dir.path(), "telegram");
        let code = p.request(&sender("1")).unwrap().unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(p.request(&sender("1")).unwrap(), None, "told once");
        assert!(p.request(&sender("2")).unwrap().is_some());
        assert!(p.request(&sender("3")).unwrap().is_some());
        assert_eq!(p.request(&sender("4")).unwrap(), None, "three at most");
        assert!(!p.is_approved(&["1".into()]));
        let r = p.approve(&code.to_lowercase()).unwrap();
        assert_eq!(r.id, "1");
        assert!(p.is_approved(&["1".into()]));
        assert_eq!(p.pending().unwrap().len(), 2);
        assert!(matches!(
            p.approve(&code),
            Err(PairingError::UnknownCode { .. })
        ));
    }

    #[test]
    fn expired_requests_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::new(dir.path(), "telegram");
        let old = iso(pincer_router::now_ms() - TTL_MS - 1);
        let stale = Requests {
            version: 1,
            requests: vec![Request {
                id: "9".into(),
                code: "AAAAAAAA".into(),
                created_at: old.clone(),
                last_seen_at: old,
                meta: Meta::default(),
            }],
        };
        p.save_requests(stale.requests).unwrap();
        assert!(p.pending().unwrap().is_empty());
        assert!(p.approve("AAAAAAAA").is_err());
    }
}
