//! The Bot API's wire format (the parts Pincer speaks) and a small client.
//! Every call is `POST <apiRoot>/bot<token>/<method>` with a JSON body; the
//! reply is `{ok, result}` or `{ok: false, error_code, description,
//! parameters}`. Errors never carry the URL, which holds the token.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

/// Telegram's own Bot API root.
pub const DEFAULT_ROOT: &str = "https://api.telegram.org";
/// How long `getUpdates` holds a poll open, in seconds.
pub const POLL_SECONDS: u64 = 30;
/// Replies larger than this are refused.
const MAX_REPLY: usize = 16 << 20;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_forum: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MessageEntity {
    #[serde(rename = "type")]
    pub kind: String,
    /// In UTF-16 code units, as is `length`.
    pub offset: usize,
    pub length: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

/// A message, with the fields Pincer reads; media fields are only noticed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    #[serde(default)]
    pub date: i64,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub entities: Vec<MessageEntity>,
    #[serde(default)]
    pub caption_entities: Vec<MessageEntity>,
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
    #[serde(default)]
    pub is_topic_message: Option<bool>,
    #[serde(default)]
    pub photo: Option<IgnoredAny>,
    #[serde(default)]
    pub voice: Option<IgnoredAny>,
    #[serde(default)]
    pub audio: Option<IgnoredAny>,
    #[serde(default)]
    pub video: Option<IgnoredAny>,
    #[serde(default)]
    pub video_note: Option<IgnoredAny>,
    #[serde(default)]
    pub document: Option<IgnoredAny>,
    #[serde(default)]
    pub sticker: Option<IgnoredAny>,
    #[serde(default)]
    pub animation: Option<IgnoredAny>,
    #[serde(default)]
    pub location: Option<IgnoredAny>,
    #[serde(default)]
    pub contact: Option<IgnoredAny>,
    #[serde(default)]
    pub poll: Option<IgnoredAny>,
}

impl Message {
    /// The kind of media the message carries, if any.
    pub fn media(&self) -> Option<&'static str> {
        [
            (self.photo.is_some(), "photo"),
            (self.voice.is_some(), "voice message"),
            (self.audio.is_some(), "audio file"),
            (self.video.is_some(), "video"),
            (self.video_note.is_some(), "video message"),
            (self.animation.is_some(), "animation"),
            (self.document.is_some(), "file"),
            (self.sticker.is_some(), "sticker"),
            (self.location.is_some(), "location"),
            (self.contact.is_some(), "contact"),
            (self.poll.is_some(), "poll"),
        ]
        .into_iter()
        .find_map(|(has, kind)| has.then_some(kind))
    }
}

/// One update; Pincer asks for `message` only, and skips the others.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
}

#[derive(Debug, Deserialize)]
struct UpdateId {
    update_id: i64,
}

/// What one `getUpdates` brought.
#[derive(Debug, Default)]
pub struct Batch {
    pub updates: Vec<Update>,
    /// The offset for the next call (confirms every update of this batch).
    pub next_offset: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct GetUpdates<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    pub limit: u32,
    pub timeout: u64,
    pub allowed_updates: &'a [&'a str],
}

#[derive(Debug, Serialize)]
pub struct SendMessage<'a> {
    pub chat_id: &'a str,
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SendChatAction<'a> {
    pub chat_id: &'a str,
    pub action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BotCommand {
    pub command: String,
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct SetMyCommands<'a> {
    pub commands: &'a [BotCommand],
}

#[derive(Debug, Serialize)]
pub struct SetWebhook<'a> {
    pub url: &'a str,
    pub secret_token: &'a str,
    pub allowed_updates: &'a [&'a str],
}

#[derive(Debug, Serialize)]
pub struct DeleteWebhook {
    pub drop_pending_updates: bool,
}

#[derive(Debug, Serialize)]
struct NoParams {}

#[derive(Debug, Deserialize)]
struct Reply<T> {
    ok: bool,
    #[serde(default = "none")]
    result: Option<T>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ReplyParameters>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Debug, Deserialize)]
struct ReplyParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// What a Bot API call can end in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The API answered `ok: false`.
    #[error("Telegram answered {code}: {description}")]
    Refused {
        code: u16,
        description: String,
        retry_after: Option<u64>,
    },
    #[error("cannot reach the Bot API: {0}")]
    Network(String),
    #[error("the Bot API sent a reply Pincer cannot read: {0}")]
    BadReply(String),
}

impl ApiError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The token itself is refused: nothing works until the user acts.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.code(), Some(401 | 404))
    }
}

/// A client for one bot.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    root: String,
    token: SecretString,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(root: Option<&str>, token: SecretString) -> Api {
        Api {
            http: reqwest::Client::new(),
            root: root
                .unwrap_or(DEFAULT_ROOT)
                .trim_end_matches('/')
                .to_string(),
            token,
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, ApiError> {
        let url = format!("{}/bot{}/{method}", self.root, self.token.expose_secret());
        let net = |e: reqwest::Error| ApiError::Network(e.without_url().to_string());
        let mut resp = self
            .http
            .post(url)
            .json(params)
            .timeout(timeout)
            .send()
            .await
            .map_err(net)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(net)? {
            if body.len() + chunk.len() > MAX_REPLY {
                return Err(ApiError::BadReply(format!(
                    "{method}: reply over {MAX_REPLY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let reply: Reply<R> = serde_json::from_slice(&body).map_err(|e| {
            if status.is_success() {
                ApiError::BadReply(format!("{method}: {e}"))
            } else {
                ApiError::Refused {
                    code: status.as_u16(),
                    description: status.canonical_reason().unwrap_or("error").to_string(),
                    retry_after: None,
                }
            }
        })?;
        match (reply.ok, reply.result) {
            (true, Some(r)) => Ok(r),
            (true, None) => Err(ApiError::BadReply(format!("{method}: ok without a result"))),
            (false, _) => Err(ApiError::Refused {
                code: reply.error_code.unwrap_or(status.as_u16()),
                description: reply.description.unwrap_or_default(),
                retry_after: reply.parameters.and_then(|p| p.retry_after),
            }),
        }
    }

    const SHORT: Duration = Duration::from_secs(30);

    pub async fn get_me(&self) -> Result<User, ApiError> {
        self.call("getMe", &NoParams {}, Self::SHORT).await
    }

    /// The next updates, and the offset that confirms all of them (an
    /// update Pincer cannot read is skipped, and confirmed too).
    pub async fn get_updates(&self, offset: Option<i64>, timeout: u64) -> Result<Batch, ApiError> {
        let params = GetUpdates {
            offset,
            limit: 100,
            timeout,
            allowed_updates: &["message"],
        };
        // Updates Pincer cannot read are skipped one by one, not the batch.
        let raw: Vec<serde_json::Value> = self
            .call("getUpdates", &params, Duration::from_secs(timeout + 15))
            .await?;
        let mut batch = Batch {
            updates: Vec::new(),
            next_offset: offset,
        };
        for v in raw {
            let id = UpdateId::deserialize(&v).map(|u| u.update_id).ok();
            if let Some(id) = id {
                batch.next_offset = Some(batch.next_offset.map_or(id + 1, |o| o.max(id + 1)));
            }
            match Update::deserialize(v) {
                Ok(u) => batch.updates.push(u),
                Err(e) => {
                    tracing::warn!("telegram: update {id:?} skipped, Pincer cannot read it: {e}")
                }
            }
        }
        Ok(batch)
    }

    pub async fn send_message(&self, m: &SendMessage<'_>) -> Result<IgnoredAny, ApiError> {
        self.call("sendMessage", m, Self::SHORT).await
    }

    pub async fn send_chat_action(&self, a: &SendChatAction<'_>) -> Result<bool, ApiError> {
        self.call("sendChatAction", a, Self::SHORT).await
    }

    pub async fn set_my_commands(&self, commands: &[BotCommand]) -> Result<bool, ApiError> {
        self.call("setMyCommands", &SetMyCommands { commands }, Self::SHORT)
            .await
    }

    pub async fn set_webhook(&self, w: &SetWebhook<'_>) -> Result<bool, ApiError> {
        self.call("setWebhook", w, Self::SHORT).await
    }

    pub async fn delete_webhook(&self) -> Result<bool, ApiError> {
        self.call(
            "deleteWebhook",
            &DeleteWebhook {
                drop_pending_updates: false,
            },
            Self::SHORT,
        )
        .await
    }
}
