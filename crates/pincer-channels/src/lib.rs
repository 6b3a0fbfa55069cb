//! The chat apps Pincer answers in, and the layer they share.
//!
//! Every channel turns what its service sends into an [`Inbound`] and hands
//! it to the [`layer`], which does the rest the same way for all of them:
//!
//! 1. the [`inbox`] records the message before the service is told it
//!    arrived, so a restart answers it rather than losing it;
//! 2. [`access`] decides: answer, reply with a pairing code ([`pairing`]),
//!    or ignore;
//! 3. messages of one chat wait in that chat's own queue (one chat cannot
//!    starve another) and rapid ones are joined (`messages.inbound`);
//! 4. [`route`] picks the session; the agent runtime answers (commands
//!    included), with the typing indicator on meanwhile;
//! 5. only the final text goes out, never reasoning or `NO_REPLY`, cut by
//!    [`chunk`] at the channel's limit, to the chat it came from.

use serde::{Deserialize, Serialize};

pub mod access;
pub mod chunk;
pub mod inbox;
pub mod layer;
pub mod pairing;
pub mod route;
pub mod status;
pub mod telegram;
pub mod whatsapp;

pub use layer::{Layer, Outbound, SendError};

/// A direct chat or a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    #[default]
    Direct,
    Group,
}

/// Where a message came from, and where its answer goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: String,
    pub kind: ChatKind,
    /// A Telegram forum topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The service's stable id (Telegram's user id, WhatsApp's number).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl Sender {
    /// Every form an allowlist may name this sender by.
    pub fn ids(&self) -> Vec<String> {
        let mut ids = vec![self.id.clone()];
        ids.extend(self.username.clone());
        ids
    }

    /// How the sender is shown to the model and in logs.
    pub fn label(&self) -> String {
        match (&self.name, &self.username) {
            (Some(n), Some(u)) => format!("{n} (@{u})"),
            (Some(n), None) => n.clone(),
            (None, Some(u)) => format!("@{u}"),
            (None, None) => self.id.clone(),
        }
    }
}

/// One message from a chat app, as every channel hands it over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// `telegram`, `whatsapp`.
    pub channel: String,
    pub account: String,
    /// The service's id for this delivery (Telegram's `update_id`,
    /// WhatsApp's message id): what the inbox remembers.
    pub id: String,
    pub chat: Chat,
    pub sender: Sender,
    /// The text, or a media message's caption.
    #[serde(default)]
    pub text: String,
    /// What kind of media came with it (`photo`, `voice`…), which Pincer
    /// does not pass on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// The assistant was addressed (a mention, a reply to it).
    #[serde(default)]
    pub mentioned: bool,
    /// Sent from the linked account itself (WhatsApp).
    #[serde(default)]
    pub from_me: bool,
    /// The user's chat with themselves (WhatsApp's "message yourself").
    #[serde(default)]
    pub self_chat: bool,
}

/// Starts every configured chat app; returns one line per channel saying
/// how it started (for the gateway's start-up banner).
pub fn start(
    rt: &'static pincer_agent::Runtime<'static>,
    config: &pincer_config::Config,
    env: &pincer_config::Env,
    state_dir: &std::path::Path,
) -> Vec<String> {
    let board = std::sync::Arc::new(status::Board::new(state_dir));
    let started = [
        (
            "telegram",
            telegram::start(rt, config, env, state_dir, board.clone()),
        ),
        ("whatsapp", whatsapp::start(rt, config, state_dir, board)),
    ];
    started
        .into_iter()
        .filter_map(|(name, r)| match r? {
            Ok(how) => Some(format!("{name}: starting ({how})")),
            Err(e) => Some(format!("{name}: not started: {e}")),
        })
        .collect()
}
