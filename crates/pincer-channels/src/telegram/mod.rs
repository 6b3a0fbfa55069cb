//! Telegram, through the Bot API: long polling by default, a webhook when
//! `webhookUrl` and `webhookSecret` are set. Plain HTTP with typed bodies
//! ([`api`]); the Bot API root is `channels.telegram.apiRoot`.

pub mod api;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pincer_agent::Runtime;
use pincer_config::{Config, Env, TelegramConfig};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::layer::{Layer, Outbound, SendError};
use crate::status::{Board, Link};
use crate::{Chat, ChatKind, Inbound, Sender};
use api::{Api, ApiError, BotCommand, SendChatAction, SendMessage, SetWebhook, User};

pub const CHANNEL: &str = "telegram";
/// The header Telegram sends a webhook's secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
const WEBHOOK_BODY_LIMIT: usize = 1 << 20;

/// Where the token comes from, checked in OpenClaw's order.
pub fn token(cfg: &TelegramConfig, env: &Env) -> Result<SecretString, String> {
    if let Some(k) = &cfg.bot_token {
        return Ok(k.secret.clone());
    }
    if let Some(f) = &cfg.token_file {
        let path = Path::new(&f.value);
        return match std::fs::read_to_string(path) {
            Ok(t) if !t.trim().is_empty() => Ok(SecretString::from(t.trim().to_string())),
            Ok(_) => Err(format!(
                "channels.telegram.tokenFile {}: the file is empty",
                path.display()
            )),
            Err(e) => Err(format!(
                "channels.telegram.tokenFile {}: {e}",
                path.display()
            )),
        };
    }
    match env.var("TELEGRAM_BOT_TOKEN") {
        Some(t) if !t.trim().is_empty() => Ok(SecretString::from(t.trim().to_string())),
        _ => Err(
            "no bot token: set channels.telegram.botToken, tokenFile or TELEGRAM_BOT_TOKEN".into(),
        ),
    }
}

/// The bot, as the layer sends through it.
pub struct Telegram {
    api: Api,
    me: OnceLock<User>,
}

impl Telegram {
    pub fn api(&self) -> &Api {
        &self.api
    }
}

/// A topic's thread id as `sendMessage` takes it: the General topic (1)
/// is sent without one.
fn thread_id(chat: &Chat) -> Option<i64> {
    chat.thread
        .as_deref()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t != 1)
}

impl Outbound for Telegram {
    async fn send(&self, chat: &Chat, text: &str) -> Result<(), SendError> {
        let m = SendMessage {
            chat_id: &chat.id,
            text,
            message_thread_id: thread_id(chat),
        };
        match self.api.send_message(&m).await {
            Ok(_) => Ok(()),
            Err(ApiError::Refused {
                retry_after: Some(s),
                ..
            }) => Err(SendError::RetryAfter(Duration::from_secs(s.max(1)))),
            Err(e @ ApiError::Refused { code, .. }) if code == 429 || code >= 500 => {
                Err(SendError::Transient(e.to_string()))
            }
            Err(e @ ApiError::Refused { .. }) => Err(SendError::Refused(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }

    async fn typing(&self, chat: &Chat) {
        let a = SendChatAction {
            chat_id: &chat.id,
            action: "typing",
            message_thread_id: chat.thread.as_deref().and_then(|t| t.parse().ok()),
        };
        if let Err(e) = self.api.send_chat_action(&a).await {
            tracing::debug!("telegram: typing: {e}");
        }
    }
}

/// `@name` in `text` on its own (no word character either side).
fn names(text: &str, username: &str) -> bool {
    let needle = format!("@{}", username.to_ascii_lowercase());
    let hay = text.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    hay.match_indices(&needle).any(|(i, _)| {
        !word(hay[..i].chars().next_back()) && !word(hay[i + needle.len()..].chars().next())
    })
}

/// `/cmd@name rest` → ((`/cmd`, `name`), ` rest`).
fn command_suffix(text: &str) -> Option<((&str, &str), &str)> {
    let t = text.trim_start();
    if !t.starts_with('/') {
        return None;
    }
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    let (cmd, name) = t[..end].split_once('@')?;
    Some(((cmd, name), &t[end..]))
}

/// An update as the layer takes it; `None` for what Pincer does not answer
/// (channel posts, other bots, updates that are not messages).
pub fn inbound(update: &api::Update, me: &User) -> Option<Inbound> {
    let msg = update.message.as_ref()?;
    let from = msg.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let kind = match msg.chat.kind.as_str() {
        "private" => ChatKind::Direct,
        "group" | "supergroup" => ChatKind::Group,
        _ => return None,
    };
    let thread = (kind == ChatKind::Group && msg.chat.is_forum == Some(true))
        .then(|| msg.message_thread_id.unwrap_or(1).to_string());
    let mut text = msg
        .text
        .clone()
        .or_else(|| msg.caption.clone())
        .unwrap_or_default();
    let username = me.username.as_deref().unwrap_or_default();
    // `/cmd@bot`: a command addressed to one bot (the group menu sends it).
    let mut addressed = false;
    if let Some(((cmd, name), rest)) = command_suffix(&text) {
        if !name.eq_ignore_ascii_case(username) {
            return None;
        }
        text = format!("{cmd}{rest}");
        addressed = true;
    }
    let entities = if msg.text.is_some() {
        &msg.entities
    } else {
        &msg.caption_entities
    };
    let mentioned = addressed
        || (!username.is_empty() && names(&text, username))
        || entities
            .iter()
            .any(|e| e.kind == "text_mention" && e.user.as_ref().is_some_and(|u| u.id == me.id))
        || msg
            .reply_to_message
            .as_ref()
            .and_then(|r| r.from.as_ref())
            .is_some_and(|u| u.id == me.id);
    let name = [Some(from.first_name.clone()), from.last_name.clone()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Inbound {
        channel: CHANNEL.into(),
        account: "default".into(),
        id: update.update_id.to_string(),
        chat: Chat {
            id: msg.chat.id.to_string(),
            kind,
            thread,
        },
        sender: Sender {
            id: from.id.to_string(),
            name: (!name.is_empty()).then_some(name),
            username: from.username.clone(),
        },
        text,
        media: msg.media().map(str::to_string),
        mentioned,
        from_me: false,
        self_chat: false,
    })
}

/// Starts Telegram for `config`, when it is configured and enabled: a task
/// polls (or serves the webhook) until the process ends. Returns how.
pub fn start(
    rt: &'static Runtime<'static>,
    config: &Config,
    env: &Env,
    state_dir: &Path,
    board: Arc<Board>,
) -> Option<Result<String, String>> {
    let cfg = config.channels.telegram.as_ref()?;
    if cfg.access.enabled == Some(false) {
        return None;
    }
    let token = match token(cfg, env) {
        Ok(t) => t,
        Err(e) => {
            board.link(CHANNEL, Link::Stopped, Some(e.clone()));
            return Some(Err(e));
        }
    };
    let bot = Telegram {
        api: Api::new(cfg.api_root.as_ref().map(|r| r.value.as_str()), token),
        me: OnceLock::new(),
    };
    let layer = match Layer::open(rt, bot, config, CHANNEL, &cfg.access, state_dir, board) {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let webhook = Webhook::resolve(cfg);
    let native = cfg.native_commands != Some(false);
    let mode = match &webhook {
        Some(w) => format!("webhook on {}{}", w.addr, w.path),
        None => "long polling".to_string(),
    };
    tokio::spawn(async move {
        if let Some(me) = connect(&layer).await {
            layer.board().identity(
                CHANNEL,
                format!("@{}", me.username.as_deref().unwrap_or(&me.first_name)),
            );
            if native {
                menu(&layer).await;
            }
            layer.resume();
            match webhook {
                Some(w) => serve_webhook(layer, w).await,
                None => poll(layer).await,
            }
        }
    });
    Some(Ok(mode))
}

/// `getMe`, tried until it answers; `None` when the token is refused.
async fn connect(layer: &Arc<Layer<Telegram>>) -> Option<User> {
    let board = layer.board();
    board.link(CHANNEL, Link::Starting, None);
    let mut backoff = Backoff::default();
    loop {
        match layer.out().api.get_me().await {
            Ok(me) => {
                let _ = layer.out().me.set(me.clone());
                return Some(me);
            }
            Err(e) if e.is_unauthorized() => {
                let note =
                    format!("Telegram refused the bot token ({e}); set a valid token and restart");
                tracing::error!("telegram: {note}");
                board.link(CHANNEL, Link::LoggedOut, Some(note));
                return None;
            }
            Err(e) => {
                tracing::warn!("telegram: {e}");
                board.error(CHANNEL, &e.to_string());
                board.link(CHANNEL, Link::Reconnecting, Some(e.to_string()));
                backoff.wait().await;
            }
        }
    }
}

/// Registers the command menu (failures are logged: the bot works without).
async fn menu(layer: &Arc<Layer<Telegram>>) {
    let commands: Vec<BotCommand> = pincer_agent::command::MENU
        .iter()
        .map(|(c, d)| BotCommand {
            command: (*c).to_string(),
            description: (*d).to_string(),
        })
        .collect();
    if let Err(e) = layer.out().api.set_my_commands(&commands).await {
        tracing::warn!("telegram: the command menu was not set: {e}");
    }
}

/// Doubling waits, 1 s to 30 s, with a little jitter.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    async fn wait(&mut self) {
        self.0 = (self.0 + 1).min(6);
        let base = (1u64 << (self.0 - 1)).min(30) * 1000;
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 1024;
        tokio::time::sleep(Duration::from_millis(base + jitter)).await;
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// Long polling: each batch is in the inbox before the next `getUpdates`
/// confirms it to Telegram.
async fn poll(layer: Arc<Layer<Telegram>>) {
    let board = layer.board();
    if let Err(e) = layer.out().api.delete_webhook().await {
        tracing::warn!("telegram: deleteWebhook: {e}");
    }
    let Some(me) = layer.out().me.get().cloned() else {
        return;
    };
    if let Err(e) = layer.inbox().set_owner(&me.id.to_string()) {
        tracing::error!("telegram: {e}");
    }
    let mut offset = layer.inbox().offset();
    let mut timeout = 0;
    let mut backoff = Backoff::default();
    let mut connected = false;
    loop {
        match layer.out().api.get_updates(offset, timeout).await {
            Ok(batch) => {
                if !connected {
                    board.link(CHANNEL, Link::Connected, Some("long polling".into()));
                    connected = true;
                }
                backoff.reset();
                timeout = api::POLL_SECONDS;
                let msgs: Vec<Inbound> = batch
                    .updates
                    .iter()
                    .filter_map(|u| inbound(u, &me))
                    .collect();
                if msgs.is_empty() && batch.next_offset == offset {
                    continue;
                }
                match layer.accept(msgs, batch.next_offset) {
                    Ok(()) => offset = batch.next_offset,
                    Err(e) => {
                        // Not confirmed: Telegram sends them again.
                        tracing::error!("telegram: cannot record updates: {e}");
                        board.error(CHANNEL, &e);
                        backoff.wait().await;
                    }
                }
            }
            Err(e) if e.is_unauthorized() => {
                let note = format!("Telegram refused the bot token ({e})");
                board.link(CHANNEL, Link::LoggedOut, Some(note));
                return;
            }
            Err(e) => {
                let note = if e.code() == Some(409) {
                    format!("{e} (another program polls this bot, or a webhook is set)")
                } else {
                    e.to_string()
                };
                tracing::warn!("telegram: {note}");
                board.error(CHANNEL, &note);
                board.link(CHANNEL, Link::Reconnecting, Some(note));
                connected = false;
                backoff.wait().await;
            }
        }
    }
}

/// Webhook mode's settings.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: SecretString,
    pub addr: String,
    pub path: String,
}

impl Webhook {
    pub fn resolve(cfg: &TelegramConfig) -> Option<Webhook> {
        let url = cfg.webhook_url.as_ref()?;
        let secret = cfg.webhook_secret.as_ref()?;
        let host = cfg.webhook_host.as_deref().unwrap_or("127.0.0.1");
        let port = cfg.webhook_port.unwrap_or(8787);
        let path = cfg.webhook_path.as_deref().unwrap_or("/telegram-webhook");
        Some(Webhook {
            url: url.value.clone(),
            secret: secret.secret.clone(),
            addr: if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
        })
    }

    /// Whether a secret is one Telegram accepts (1-256 of `A-Za-z0-9_-`).
    pub fn secret_is_valid(secret: &str) -> bool {
        (1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}

struct Hook {
    layer: Arc<Layer<Telegram>>,
    secret: SecretString,
}

/// The webhook listener: the secret header is checked, the update is
/// recorded in the inbox, and only then is Telegram answered 200.
async fn serve_webhook(layer: Arc<Layer<Telegram>>, w: Webhook) {
    let board = layer.board();
    let listener = match tokio::net::TcpListener::bind(&w.addr).await {
        Ok(l) => l,
        Err(e) => {
            let note = format!("cannot listen for the webhook on {}: {e}", w.addr);
            tracing::error!("telegram: {note}");
            board.link(CHANNEL, Link::Stopped, Some(note));
            return;
        }
    };
    let set = SetWebhook {
        url: &w.url,
        secret_token: w.secret.expose_secret(),
        allowed_updates: &["message"],
    };
    match layer.out().api.set_webhook(&set).await {
        Ok(_) => board.link(
            CHANNEL,
            Link::Connected,
            Some(format!("webhook on {}{}", w.addr, w.path)),
        ),
        Err(e) => {
            let note = format!(
                "setWebhook failed ({e}); listening on {}{} anyway",
                w.addr, w.path
            );
            tracing::warn!("telegram: {note}");
            board.error(CHANNEL, &note);
            board.link(CHANNEL, Link::Reconnecting, Some(note));
        }
    }
    tracing::info!("telegram: webhook listening on {}{}", w.addr, w.path);
    let app = axum::Router::new()
        .route(&w.path, axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
        .with_state(Arc::new(Hook {
            layer,
            secret: w.secret,
        }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("telegram: webhook listener: {e}");
    }
}

async fn receive(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(hook.secret.expose_secret().as_bytes())) {
        return StatusCode::UNAUTHORIZED;
    }
    let update: api::Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("telegram: webhook body refused: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    let Some(me) = hook.layer.out().me.get() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let msgs: Vec<Inbound> = inbound(&update, me).into_iter().collect();
    match hook.layer.accept(msgs, None) {
        Ok(()) => StatusCode::OK,
        Err(e) => {
            tracing::error!("telegram: cannot record update: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_the_name_on_its_own() {
        assert!(names("hey @Pincer_Bot, hi", "pincer_bot"));
        assert!(names("@pincer_bot", "pincer_bot"));
        assert!(!names("hey @pincer_bot2", "pincer_bot"));
        assert!(!names("mail x@pincer_bot", "pincer_bot"));
    }

    #[test]
    fn commands_addressed_to_a_bot() {
        assert_eq!(
            command_suffix("/new@my_bot"),
            Some((("/new", "my_bot"), ""))
        );
        assert_eq!(
            command_suffix("/think@my_bot high"),
            Some((("/think", "my_bot"), " high"))
        );
        assert_eq!(command_suffix("/new"), None);
        assert_eq!(command_suffix("mail me@x.org"), None);
    }

    #[test]
    fn secrets_telegram_accepts() {
        assert!(Webhook::secret_is_valid("abc-DEF_123"));
        assert!(!Webhook::secret_is_valid(""));
        assert!(!Webhook::secret_is_valid("has space"));
        assert!(!Webhook::secret_is_valid(&"a".repeat(257)));
    }
}
