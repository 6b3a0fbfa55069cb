//! What each channel is doing, for `pincer channels status`: written by
//! the gateway to `<state>/pincer/channels/status.json` as it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A channel's connection, as last known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    Starting,
    Connected,
    /// Waiting for a QR code to be scanned (WhatsApp).
    Linking,
    /// Trying again after an error.
    Reconnecting,
    /// The service refused the credentials (a revoked token, a logged-out
    /// device): nothing more happens until the user acts.
    LoggedOut,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub link: Link,
    /// The account's name on the service (`@my_bot`, a phone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub since_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outbound_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_ms: Option<u64>,
    /// The gateway process that wrote it.
    pub pid: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusFile {
    pub channels: BTreeMap<String, ChannelStatus>,
}

impl StatusFile {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir
            .join("pincer")
            .join("channels")
            .join("status.json")
    }

    /// The file as the gateway last wrote it (empty when there is none).
    pub fn read(state_dir: &Path) -> Result<StatusFile, String> {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StatusFile::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// The gateway's side: one board shared by its channels.
pub struct Board {
    path: PathBuf,
    file: Mutex<StatusFile>,
}

impl Board {
    pub fn new(state_dir: &Path) -> Board {
        Board {
            path: StatusFile::path(state_dir),
            file: Mutex::new(StatusFile::default()),
        }
    }

    fn change(&self, channel: &str, f: impl FnOnce(&mut ChannelStatus, u64)) {
        let now = pincer_router::now_ms();
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let entry = file
            .channels
            .entry(channel.to_string())
            .or_insert_with(|| ChannelStatus {
                link: Link::Starting,
                identity: None,
                detail: None,
                since_ms: now,
                last_inbound_ms: None,
                last_outbound_ms: None,
                last_error: None,
                last_error_ms: None,
                pid: std::process::id(),
            });
        f(entry, now);
        if let Err(e) = pincer_router::write_whole(&self.path, &*file) {
            tracing::warn!("channel status: {e}");
        }
    }

    pub fn link(&self, channel: &str, link: Link, detail: Option<String>) {
        self.change(channel, |s, now| {
            if s.link != link {
                s.since_ms = now;
            }
            s.link = link;
            s.detail = detail;
        });
    }

    pub fn identity(&self, channel: &str, identity: String) {
        self.change(channel, |s, _| s.identity = Some(identity));
    }

    pub fn inbound(&self, channel: &str) {
        self.change(channel, |s, now| s.last_inbound_ms = Some(now));
    }

    pub fn outbound(&self, channel: &str) {
        self.change(channel, |s, now| s.last_outbound_ms = Some(now));
    }

    pub fn error(&self, channel: &str, error: &str) {
        self.change(channel, |s, now| {
            s.last_error = Some(error.to_string());
            s.last_error_ms = Some(now);
        });
    }
}
