//! A local Bot API server for the Telegram tests, speaking the shapes of
//! Telegram's Bot API reference: `POST /bot<token>/<method>` with JSON,
//! answered `{ok: true, result}` or `{ok: false, error_code, description,
//! parameters}` with Telegram's own error texts. `getUpdates` long-polls
//! (`offset` confirms, `timeout` holds the poll open, a newer poll ends an
//! older one with 409), `sendMessage` refuses more than 4096 UTF-16 units,
//! `setWebhook` checks the secret's characters. Telegram's servers cannot
//! be reached from here; Telegram's own `telegram-bot-api` server needs
//! real credentials, so this is what the channel is tested against.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake::{Recorded, Step, http_response, serve};

pub const BOT_ID: i64 = 7_000_000_001;
pub const BOT_USERNAME: &str = "pincer_test_bot";

/// A message the bot sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub chat_id: String,
    pub text: String,
    pub thread: Option<i64>,
}

#[derive(Default)]
struct Book {
    /// Updates not yet confirmed by an offset past them.
    updates: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    /// The newest poll's number: an older poll still waiting ends with 409.
    poll: u64,
    sent: Vec<Sent>,
    actions: Vec<(String, String)>,
    commands: Option<Value>,
    webhook: Option<(String, String)>,
    /// `sendMessage` calls to refuse with 429 before accepting again.
    rate_limited: u32,
}

struct Shared {
    token: String,
    book: Mutex<Book>,
    changed: Condvar,
    requests: Mutex<Vec<Recorded>>,
}

pub struct BotApi {
    pub port: u16,
    shared: Arc<Shared>,
}

fn ok(result: Value) -> Vec<Step> {
    vec![Step::Send(http_response(
        200,
        &[],
        &json!({"ok": true, "result": result}).to_string(),
    ))]
}

fn refused(code: u16, description: &str, parameters: Option<Value>) -> Vec<Step> {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    vec![Step::Send(http_response(code, &[], &body.to_string()))]
}

impl BotApi {
    pub fn start(token: &str) -> BotApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            token: token.to_string(),
            book: Mutex::new(Book {
                next_update_id: 500_000_001,
                next_message_id: 1,
                ..Book::default()
            }),
            changed: Condvar::new(),
            requests: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    serve(conn, &s.requests, |method, path, body| {
                        Some(s.answer(method, path, body))
                    });
                });
            }
        });
        BotApi { port, shared }
    }

    /// What `channels.telegram.apiRoot` is set to.
    pub fn api_root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.shared.book.lock().unwrap()
    }

    /// Queues an update holding `message` (its `message_id` and `date` are
    /// filled in); returns its `update_id`.
    pub fn push_message(&self, mut message: Value) -> i64 {
        let mut b = self.book();
        let id = b.next_update_id;
        b.next_update_id += 1;
        message["message_id"] = json!(b.next_message_id);
        b.next_message_id += 1;
        message["date"] = json!(1_790_000_000 + id % 1000);
        b.updates.push(json!({"update_id": id, "message": message}));
        drop(b);
        self.shared.changed.notify_all();
        id
    }

    /// Every message the bot sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.book().sent.clone()
    }

    /// Waits until `n` messages were sent to `chat_id` (or `within` ends);
    /// returns those sent to it.
    pub fn wait_sent(&self, chat_id: &str, n: usize, within: Duration) -> Vec<Sent> {
        let deadline = Instant::now() + within;
        let mut b = self.book();
        loop {
            let to: Vec<Sent> = b
                .sent
                .iter()
                .filter(|s| s.chat_id == chat_id)
                .cloned()
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if to.len() >= n || left.is_zero() {
                return to;
            }
            b = self.shared.changed.wait_timeout(b, left).unwrap().0;
        }
    }

    /// `sendChatAction` calls as (chat id, action).
    pub fn actions(&self) -> Vec<(String, String)> {
        self.book().actions.clone()
    }

    /// The last `setMyCommands` body.
    pub fn commands(&self) -> Option<Value> {
        self.book().commands.clone()
    }

    /// The webhook set: (url, secret token).
    pub fn webhook(&self) -> Option<(String, String)> {
        self.book().webhook.clone()
    }

    /// Updates not yet confirmed by an offset.
    pub fn unconfirmed(&self) -> usize {
        self.book().updates.len()
    }

    /// The next `n` `sendMessage` calls get 429 with `retry_after: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        self.book().rate_limited = n;
    }

    /// Every request made, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

impl Shared {
    fn answer(&self, _method: &str, path: &str, body: &str) -> Vec<Step> {
        let Some((token, method)) = path
            .strip_prefix("/bot")
            .and_then(|rest| rest.split_once('/'))
        else {
            return refused(404, "Not Found", None);
        };
        if token != self.token {
            return refused(401, "Unauthorized", None);
        }
        let p: Value = if body.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str(body) {
                Ok(v) => v,
                Err(_) => return refused(400, "Bad Request: can't parse JSON", None),
            }
        };
        match method {
            "getMe" => ok(
                json!({"id": BOT_ID, "is_bot": true, "first_name": "Pincer Test",
                "username": BOT_USERNAME, "can_join_groups": true,
                "can_read_all_group_messages": false, "supports_inline_queries": false}),
            ),
            "getUpdates" => self.get_updates(&p),
            "sendMessage" => self.send_message(&p),
            "sendChatAction" => {
                let chat = id_text(&p["chat_id"]);
                let action = p["action"].as_str().unwrap_or_default().to_string();
                self.book.lock().unwrap().actions.push((chat, action));
                ok(json!(true))
            }
            "setMyCommands" => {
                let valid = p["commands"].as_array().is_some_and(|cs| {
                    cs.len() <= 100
                        && cs.iter().all(|c| {
                            let name = c["command"].as_str().unwrap_or_default();
                            let desc = c["description"].as_str().unwrap_or_default();
                            (1..=32).contains(&name.len())
                                && name.bytes().all(|b| {
                                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
                                })
                                && (1..=256).contains(&utf16_len(desc))
                        })
                });
                if !valid {
                    return refused(400, "Bad Request: BOT_COMMAND_INVALID", None);
                }
                self.book.lock().unwrap().commands = Some(p);
                ok(json!(true))
            }
            "setWebhook" => {
                let url = p["url"].as_str().unwrap_or_default().to_string();
                let secret = p["secret_token"].as_str().unwrap_or_default().to_string();
                if !secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    || secret.len() > 256
                {
                    return refused(
                        400,
                        "Bad Request: secret token contains unallowed characters",
                        None,
                    );
                }
                self.book.lock().unwrap().webhook = Some((url, secret));
                ok(json!(true))
            }
            "deleteWebhook" => {
                self.book.lock().unwrap().webhook = None;
                ok(json!(true))
            }
            _ => refused(404, "Not Found", None),
        }
    }

    fn get_updates(&self, p: &Value) -> Vec<Step> {
        let offset = p["offset"].as_i64();
        let timeout = Duration::from_secs(p["timeout"].as_u64().unwrap_or(0).min(50));
        let limit = p["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
        let deadline = Instant::now() + timeout;
        let mut b = self.book.lock().unwrap();
        if b.webhook.is_some() {
            return refused(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                None,
            );
        }
        if let Some(o) = offset {
            b.updates
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= o);
        }
        b.poll += 1;
        let me = b.poll;
        self.changed.notify_all();
        loop {
            if b.poll != me {
                return refused(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    None,
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !b.updates.is_empty() || left.is_zero() {
                let batch: Vec<Value> = b.updates.iter().take(limit).cloned().collect();
                return ok(Value::Array(batch));
            }
            b = self.changed.wait_timeout(b, left).unwrap().0;
        }
    }

    fn send_message(&self, p: &Value) -> Vec<Step> {
        let text = p["text"].as_str().unwrap_or_default().to_string();
        if text.trim().is_empty() {
            return refused(400, "Bad Request: message text is empty", None);
        }
        if utf16_len(&text) > 4096 {
            return refused(400, "Bad Request: message is too long", None);
        }
        let mut b = self.book.lock().unwrap();
        if b.rate_limited > 0 {
            b.rate_limited -= 1;
            return refused(
                429,
                "Too Many Requests: retry after 1",
                Some(json!({"retry_after": 1})),
            );
        }
        let chat_id = id_text(&p["chat_id"]);
        let message_id = b.next_message_id;
        b.next_message_id += 1;
        b.sent.push(Sent {
            chat_id: chat_id.clone(),
            text: text.clone(),
            thread: p["message_thread_id"].as_i64(),
        });
        drop(b);
        self.changed.notify_all();
        let chat = chat_id.parse::<i64>().unwrap_or_default();
        let kind = if chat < 0 { "supergroup" } else { "private" };
        ok(json!({"message_id": message_id, "date": 1_790_000_500,
            "from": {"id": BOT_ID, "is_bot": true, "first_name": "Pincer Test", "username": BOT_USERNAME},
            "chat": {"id": chat, "type": kind}, "text": text}))
    }
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A user, as `from` holds one.
pub fn user(id: i64, first_name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": first_name, "language_code": "en"})
}

/// A direct message from `from` (a [`user`]).
pub fn direct_text(from: &Value, text: &str) -> Value {
    json!({"from": from, "chat": {"id": from["id"], "first_name": from["first_name"], "type": "private"},
        "text": text})
}

/// A message in the supergroup `chat_id`; `@name` mentions get their
/// `mention` entities, as Telegram adds them.
pub fn group_text(chat_id: i64, from: &Value, text: &str) -> Value {
    let mut entities = Vec::new();
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if c == '@' {
            let len = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .count();
            if len > 0 {
                entities.push(json!({"type": "mention", "offset": units, "length": len + 1}));
            }
        }
        units += c.len_utf16();
    }
    let mut m = json!({"from": from, "chat": {"id": chat_id, "title": "Test group", "type": "supergroup"},
        "text": text});
    if !entities.is_empty() {
        m["entities"] = Value::Array(entities);
    }
    m
}

/// A photo without a caption, in a direct chat.
pub fn direct_photo(from: &Value) -> Value {
    json!({"from": from, "chat": {"id": from["id"], "first_name": from["first_name"], "type": "private"},
        "photo": [{"file_id": "AgACAgQAAxkBAAIB", "file_unique_id": "AQAD", "file_size": 1200, "width": 90, "height": 67}]})
}

/// Delivers `update` to a webhook as Telegram does (a POST with the secret
/// header); returns the HTTP status.
pub fn post_webhook(addr: &str, path: &str, secret: Option<&str>, update: &Value) -> u16 {
    let body = update.to_string();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(s) = secret {
        req.push_str(&format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    if conn.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An update as a webhook receives it.
pub fn update(update_id: i64, mut message: Value) -> Value {
    message["message_id"] = json!(update_id % 1_000_000);
    message["date"] = json!(1_790_000_000);
    json!({"update_id": update_id, "message": message})
}
