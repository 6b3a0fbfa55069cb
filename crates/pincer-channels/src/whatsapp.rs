//! WhatsApp, as OpenClaw runs it: WhatsApp Web multi-device, the gateway
//! being a linked device of the user's phone. The protocol is the
//! `whatsapp-rust` crate's (Noise handshake, Signal sessions, reconnect
//! with backoff); this module maps its events to the layer's vocabulary
//! ([`classify`], [`inbound`]: the seam the tests drive with recorded
//! events) and sends through its client.
//!
//! Linking is `pincer channels login whatsapp` (a QR code in the terminal);
//! the gateway only runs an account that is linked. Credentials are a
//! SQLite database under `<state>/credentials/whatsapp/default/` (or
//! `channels.whatsapp.authDir`): not Baileys' `creds.json`, so an OpenClaw
//! link does not carry over and the phone must be linked again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pincer_agent::Runtime;
use pincer_config::{Config, WhatsAppConfig};
use whatsapp_rust::prelude::*;

use crate::layer::{Layer, Outbound, SendError};
use crate::status::{Board, Link};
use crate::{Chat, ChatKind, Inbound, Sender};

pub const CHANNEL: &str = "whatsapp";
/// The database that holds the linked device's keys.
const DB_FILE: &str = "pincer-whatsapp.db";
/// Ids of messages Pincer sent, remembered to skip their echo.
const SENT_REMEMBERED: usize = 256;

/// A library event, in the terms Pincer acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum WaEvent {
    /// A QR code to show, valid for `timeout`.
    Qr {
        code: String,
        timeout: Duration,
    },
    /// The phone scanned it: linked as `id`.
    Paired {
        id: String,
    },
    Connected,
    Disconnected {
        reason: String,
    },
    /// The phone removed this device (or never will accept it): re-link.
    LoggedOut {
        reason: String,
    },
    /// Another client took over this device's connection.
    Replaced,
    Message(WaMessage),
}

/// One incoming message, as the library reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaMessage {
    pub id: String,
    /// The chat's JID (`<number>@s.whatsapp.net`, `<id>@g.us`).
    pub chat: String,
    /// The chat JID's user part.
    pub chat_user: String,
    /// The sender's JID, and their phone number when known.
    pub sender: String,
    pub sender_number: Option<String>,
    pub from_me: bool,
    pub group: bool,
    pub push_name: String,
    pub text: Option<String>,
    pub media: Option<&'static str>,
}

fn media_kind(m: &wa::Message) -> Option<&'static str> {
    let b = m.get_base_message();
    [
        (b.image_message.is_set(), "image"),
        (b.video_message.is_set(), "video"),
        (b.audio_message.is_set(), "voice message"),
        (b.document_message.is_set(), "file"),
        (b.sticker_message.is_set(), "sticker"),
    ]
    .into_iter()
    .find_map(|(has, kind)| has.then_some(kind))
}

fn number(jid: &Jid) -> Option<String> {
    jid.is_pn().then(|| jid.user.to_string())
}

/// The seam: what a library event means to Pincer.
pub fn classify(event: &Event) -> Vec<WaEvent> {
    match event {
        Event::PairingQrCode(q) => vec![WaEvent::Qr {
            code: q.code.clone(),
            timeout: q.timeout,
        }],
        Event::PairSuccess(p) => vec![WaEvent::Paired {
            id: p.id.to_non_ad_string(),
        }],
        Event::Connected(_) => vec![WaEvent::Connected],
        Event::Disconnected(d) => vec![WaEvent::Disconnected {
            reason: d.reason.to_string(),
        }],
        Event::LoggedOut(l) => vec![WaEvent::LoggedOut {
            reason: format!("{:?}", l.reason),
        }],
        Event::StreamReplaced(_) => vec![WaEvent::Replaced],
        Event::Messages(_) => event
            .messages()
            .map(|m| WaEvent::Message(message(m)))
            .collect(),
        _ => Vec::new(),
    }
}

/// One message of a batch, in Pincer's terms.
pub fn message(m: &InboundMessage) -> WaMessage {
    let info = &m.info;
    let source = &info.source;
    WaMessage {
        id: info.id.clone(),
        chat: source.chat.to_non_ad_string(),
        chat_user: source.chat.user.to_string(),
        sender: source.sender.to_non_ad_string(),
        sender_number: number(&source.sender)
            .or_else(|| source.sender_alt.as_ref().and_then(number)),
        from_me: source.is_from_me,
        group: source.is_group,
        push_name: info.push_name.clone(),
        text: m
            .message
            .text_content()
            .or_else(|| m.message.get_caption())
            .map(str::to_string),
        media: media_kind(&m.message),
    }
}

/// `@<number>` in `text`, not the start of a longer number.
fn mentions(text: &str, number: &str) -> bool {
    let needle = format!("@{number}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// A message as the layer takes it; `None` for status updates and
/// broadcasts. `own` is the linked account's number.
pub fn inbound(m: &WaMessage, own: Option<&str>) -> Option<Inbound> {
    if m.chat.ends_with("@broadcast") || m.chat.ends_with("@newsletter") {
        return None;
    }
    let text = m.text.clone().unwrap_or_default();
    let self_chat = !m.group && own.is_some_and(|o| o == m.chat_user);
    let mentioned = m.group && own.is_some_and(|o| mentions(&text, o));
    Some(Inbound {
        channel: CHANNEL.into(),
        account: "default".into(),
        // WhatsApp's ids are unique per chat and sender only.
        id: format!("{}/{}", m.sender, m.id),
        chat: Chat {
            id: m.chat.clone(),
            kind: if m.group {
                ChatKind::Group
            } else {
                ChatKind::Direct
            },
            thread: None,
        },
        sender: Sender {
            id: m
                .sender_number
                .as_ref()
                .map_or_else(|| m.sender.clone(), |n| format!("+{n}")),
            name: (!m.push_name.is_empty()).then(|| m.push_name.clone()),
            username: None,
        },
        text,
        media: m.media.map(str::to_string),
        mentioned,
        from_me: m.from_me,
        self_chat,
    })
}

/// A QR code as text a terminal shows (two rows per line, light on dark).
pub fn render_qr(code: &str) -> Result<String, String> {
    use qrcode::render::unicode::Dense1x2;
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| format!("QR code: {e}"))?;
    Ok(qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Where the account's credentials live.
pub fn auth_dir(state_dir: &Path, cfg: Option<&WhatsAppConfig>) -> PathBuf {
    match cfg.and_then(|c| c.auth_dir.as_ref()) {
        Some(d) => PathBuf::from(&d.value),
        None => state_dir.join("credentials").join(CHANNEL).join("default"),
    }
}

fn db_path(auth_dir: &Path) -> PathBuf {
    auth_dir.join(DB_FILE)
}

/// Whether a device was linked (its keys are on disk).
pub fn is_linked(auth_dir: &Path) -> bool {
    db_path(auth_dir).is_file()
}

async fn store(auth_dir: &Path) -> Result<SqliteStore, String> {
    std::fs::create_dir_all(auth_dir).map_err(|e| format!("{}: {e}", auth_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(auth_dir, std::fs::Permissions::from_mode(0o700));
    }
    let db = db_path(auth_dir);
    SqliteStore::new(&db.to_string_lossy())
        .await
        .map_err(|e| format!("{}: {e}", db.display()))
}

/// The linked account, as the layer sends through it.
pub struct WhatsApp {
    client: OnceLock<Arc<Client>>,
    sent: Mutex<VecDeque<String>>,
    resumed: std::sync::atomic::AtomicBool,
}

impl WhatsApp {
    fn client(&self) -> Result<&Arc<Client>, SendError> {
        self.client
            .get()
            .ok_or_else(|| SendError::Transient("WhatsApp is not connected yet".into()))
    }

    /// Whether `id` is a message Pincer sent (its echo is skipped).
    fn is_echo(&self, id: &str) -> bool {
        self.sent
            .lock()
            .map(|s| s.iter().any(|x| x == id))
            .unwrap_or(false)
    }

    fn own_number(&self) -> Option<String> {
        self.client.get()?.pn().map(|j| j.user.to_string())
    }
}

impl Outbound for WhatsApp {
    async fn send(&self, chat: &Chat, text: &str) -> Result<(), SendError> {
        let client = self.client()?;
        let jid: Jid = chat.id.parse().map_err(|e| {
            SendError::Refused(format!("not a WhatsApp chat id {:?}: {e}", chat.id))
        })?;
        if !client.is_connected() {
            return Err(SendError::Transient("WhatsApp is not connected".into()));
        }
        let sent = client
            .send_message(jid, wa::Message::text(text))
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        if let Ok(mut s) = self.sent.lock() {
            s.push_back(sent.message_id);
            while s.len() > SENT_REMEMBERED {
                s.pop_front();
            }
        }
        Ok(())
    }

    async fn typing(&self, chat: &Chat) {
        let (Ok(client), Ok(jid)) = (self.client(), chat.id.parse::<Jid>()) else {
            return;
        };
        if let Err(e) = client.chatstate().send_composing(&jid).await {
            tracing::debug!("whatsapp: typing: {e}");
        }
    }
}

/// What the gateway does with one event of the linked account.
fn on_event(layer: &Arc<Layer<WhatsApp>>, event: WaEvent) {
    let board = layer.board();
    match event {
        WaEvent::Connected => {
            board.link(CHANNEL, Link::Connected, None);
            if let Some(n) = layer.out().own_number() {
                board.identity(CHANNEL, format!("+{n}"));
            }
            // What the last run left pending is sent once there is a link.
            if !layer
                .out()
                .resumed
                .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                layer.resume();
            }
        }
        WaEvent::Disconnected { reason } => {
            board.link(CHANNEL, Link::Reconnecting, Some(reason));
        }
        WaEvent::LoggedOut { reason } => {
            let note = format!(
                "the phone logged this device out ({reason}); link it again with `pincer channels login whatsapp`"
            );
            tracing::error!("whatsapp: {note}");
            board.link(CHANNEL, Link::LoggedOut, Some(note));
        }
        WaEvent::Replaced => {
            let note =
                "another client took over this linked device; restart the gateway to take it back"
                    .to_string();
            tracing::error!("whatsapp: {note}");
            board.link(CHANNEL, Link::Stopped, Some(note));
        }
        WaEvent::Qr { .. } | WaEvent::Paired { .. } => {
            board.link(
                CHANNEL,
                Link::Linking,
                Some("not linked: run `pincer channels login whatsapp`".into()),
            );
        }
        // Recorded by the durability hook, before the library acknowledged it.
        WaEvent::Message(_) => {}
    }
}

/// The messages of a batch as the layer takes them (echoes of Pincer's
/// own replies left out).
fn accepted(layer: &Layer<WhatsApp>, batch: &[InboundMessage]) -> Vec<Inbound> {
    let own = layer.out().own_number();
    batch
        .iter()
        .map(message)
        .filter(|m| !(m.from_me && layer.out().is_echo(&m.id)))
        .filter_map(|m| inbound(&m, own.as_deref()))
        .collect()
}

/// Records a batch in the inbox before the library acknowledges it to
/// WhatsApp; a failure leaves it unacknowledged, and WhatsApp sends it again.
struct Durable(Arc<Layer<WhatsApp>>);

#[async_trait::async_trait]
impl whatsapp_rust::InboundDurabilityHook for Durable {
    async fn on_messages(
        &self,
        _client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> anyhow::Result<()> {
        let msgs = accepted(&self.0, batch);
        self.0.accept(msgs, None).map_err(|e| {
            tracing::error!("whatsapp: cannot record messages: {e}");
            self.0.board().error(CHANNEL, &e);
            anyhow::Error::msg(e)
        })
    }
}

/// Starts WhatsApp when it is configured, enabled and linked.
pub fn start(
    rt: &'static Runtime<'static>,
    config: &Config,
    state_dir: &Path,
    board: Arc<Board>,
) -> Option<Result<String, String>> {
    let cfg = config.channels.whatsapp.as_ref()?;
    if cfg.access.enabled == Some(false) {
        return None;
    }
    let dir = auth_dir(state_dir, Some(cfg));
    if !is_linked(&dir) {
        let note =
            "not linked: run `pincer channels login whatsapp` and scan the QR code".to_string();
        board.link(CHANNEL, Link::Stopped, Some(note.clone()));
        return Some(Err(note));
    }
    let out = WhatsApp {
        client: OnceLock::new(),
        sent: Mutex::new(VecDeque::new()),
        resumed: std::sync::atomic::AtomicBool::new(false),
    };
    let layer = match Layer::open(rt, out, config, CHANNEL, &cfg.access, state_dir, board) {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    tokio::spawn(async move {
        let board = layer.board();
        board.link(CHANNEL, Link::Starting, None);
        let store = match store(&dir).await {
            Ok(s) => s,
            Err(e) => {
                board.link(CHANNEL, Link::Stopped, Some(e));
                return;
            }
        };
        let handler = layer.clone();
        let bot = Bot::builder()
            .with_backend(store)
            .skip_history_sync()
            .with_inbound_durability_hook(Durable(layer.clone()))
            .with_event_delivery(EventDelivery::Ordered { capacity: 1024 })
            .on_event(move |event: Arc<Event>, _client: Arc<Client>| {
                let layer = handler.clone();
                async move {
                    for e in classify(&event) {
                        on_event(&layer, e);
                    }
                }
            })
            .build()
            .await;
        let bot = match bot {
            Ok(b) => b,
            Err(e) => {
                board.link(
                    CHANNEL,
                    Link::Stopped,
                    Some(format!("cannot start WhatsApp: {e}")),
                );
                return;
            }
        };
        let _ = layer.out().client.set(bot.client());
        // The library reconnects by itself, with backoff, until logged out.
        bot.run().await;
    });
    Some(Ok("linked device".to_string()))
}

/// Links this machine as a device of the user's phone: prints each QR
/// code through `show`, returns the linked number once the phone scanned
/// one, or why it did not happen within `within`.
pub async fn login(
    auth_dir: &Path,
    within: Duration,
    show: impl Fn(String) + Send + Sync + 'static,
) -> Result<String, String> {
    if is_linked(auth_dir) {
        return Err(format!(
            "already linked ({}); run `pincer channels logout whatsapp` first to link another phone",
            db_path(auth_dir).display()
        ));
    }
    let store = store(auth_dir).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, String>>(4);
    let show = Arc::new(show);
    let bot = Bot::builder()
        .with_backend(store)
        .skip_history_sync()
        .with_event_delivery(EventDelivery::Ordered { capacity: 64 })
        .on_event(move |event: Arc<Event>, client: Arc<Client>| {
            let (tx, show) = (tx.clone(), show.clone());
            async move {
                for e in classify(&event) {
                    match e {
                        WaEvent::Qr { code, timeout } => match render_qr(&code) {
                            Ok(qr) => show(format!(
                                "Scan this with WhatsApp on your phone (Settings → Linked devices → Link a device); it changes every {} s:\n{qr}",
                                timeout.as_secs()
                            )),
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                            }
                        },
                        WaEvent::Connected => {
                            let n = client.pn().map(|j| format!("+{}", j.user)).unwrap_or_default();
                            let _ = tx.send(Ok(n)).await;
                        }
                        WaEvent::LoggedOut { reason } => {
                            let _ = tx.send(Err(format!("WhatsApp refused the link ({reason})"))).await;
                        }
                        _ => {}
                    }
                }
            }
        })
        .build()
        .await
        .map_err(|e| format!("cannot start WhatsApp: {e}"))?;
    let client = bot.client();
    let handle = bot.spawn();
    let result = match tokio::time::timeout(within, rx.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => Err("the WhatsApp client stopped".into()),
        Err(_) => Err(format!(
            "not linked within {} s (is web.whatsapp.com reachable from here, and was the code scanned?)",
            within.as_secs()
        )),
    };
    client.disconnect().await;
    handle.shutdown().await;
    if result.is_err() {
        // A half-made link is no link: the next login starts clean.
        forget(auth_dir);
    }
    result
}

/// Unlinks the device: tells WhatsApp when it can be reached, and deletes
/// the credentials either way.
pub async fn logout(auth_dir: &Path) -> Result<bool, String> {
    if !is_linked(auth_dir) {
        return Ok(false);
    }
    let store = store(auth_dir).await?;
    if let Ok(bot) = Bot::builder()
        .with_backend(store)
        .skip_history_sync()
        .build()
        .await
    {
        let client = bot.client();
        let handle = bot.spawn();
        if client
            .wait_for_connected(Duration::from_secs(10))
            .await
            .is_ok()
        {
            client.logout().await;
        } else {
            client.disconnect().await;
        }
        handle.shutdown().await;
    }
    forget(auth_dir);
    Ok(true)
}

fn forget(auth_dir: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db_path(auth_dir).into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
