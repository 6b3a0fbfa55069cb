//! WhatsApp at the library's seam: events built the way `whatsapp-rust`
//! reports them (the shapes of its 0.7 event and protobuf types: a direct
//! text, a group text with and without a mention, media with and without a
//! caption, the user's own number, a status broadcast, a sender known by
//! LID), mapped by `classify` and `inbound`, and carried by the channel
//! layer to the agent and back to the chat they came from. WhatsApp's
//! servers cannot be reached from here: the QR code is checked as rendered
//! from the pairing event the library emits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_agent::Runtime;
use pincer_channels::access::{Verdict, decide};
use pincer_channels::inbox::Inbox;
use pincer_channels::layer::{Layer, Outbound, SendError, Settings};
use pincer_channels::pairing::Pairing;
use pincer_channels::status::Board;
use pincer_channels::whatsapp::{WaEvent, classify, inbound, render_qr};
use pincer_channels::{Chat, ChatKind};
use pincer_config::{ChannelAccess, Env, Loaded, load_text};
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, completions_stream};
use whatsapp_rust::prelude::*;
use whatsapp_rust::types::events::{Connected, LoggedOut, MessageBatch, PairingQrCode};
use whatsapp_rust::types::message::MessageSource;
use whatsapp_rust::wacore::types::events::ConnectFailureReason;

const OWN: &str = "15550001111";

fn info(chat: &str, sender: &str, from_me: bool, id: &str) -> MessageInfo {
    let chat: Jid = chat.parse().unwrap();
    let group = chat.to_string().ends_with("@g.us");
    MessageInfo {
        source: MessageSource {
            chat,
            sender: sender.parse().unwrap(),
            is_from_me: from_me,
            is_group: group,
            ..Default::default()
        },
        id: id.into(),
        push_name: "Alice".into(),
        timestamp: whatsapp_rust::chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        ..Default::default()
    }
}

fn batch(items: Vec<(wa::Message, MessageInfo)>) -> Event {
    let messages: Vec<InboundMessage> = items
        .into_iter()
        .map(|(m, i)| {
            InboundMessage::builder()
                .message(Arc::new(m))
                .info(Arc::new(i))
                .build()
        })
        .collect();
    Event::Messages(
        MessageBatch::builder()
            .messages(Arc::from(messages))
            .origin(BatchOrigin::Live)
            .build(),
    )
}

fn image(caption: Option<&str>) -> wa::Message {
    wa::Message {
        image_message: MessageField::some(wa::message::ImageMessage {
            caption: caption.map(str::to_string),
            mimetype: Some("image/jpeg".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn messages(event: &Event) -> Vec<pincer_channels::Inbound> {
    classify(event)
        .into_iter()
        .filter_map(|e| match e {
            WaEvent::Message(m) => inbound(&m, Some(OWN)),
            _ => None,
        })
        .collect()
}

#[test]
fn recorded_events_become_the_messages_the_layer_takes() {
    let dm = "15551234567@s.whatsapp.net";
    let group = "120363000000000001@g.us";
    let event = batch(vec![
        (
            wa::Message::text("hello"),
            info(dm, "15551234567:3@s.whatsapp.net", false, "A1"),
        ),
        (
            wa::Message::text(format!("@{OWN} what is on today?")),
            info(group, "15552223333@s.whatsapp.net", false, "A2"),
        ),
        (
            wa::Message::text("lunch?"),
            info(group, "15552223333@s.whatsapp.net", false, "A3"),
        ),
        (image(Some("look at this")), info(dm, dm, false, "A4")),
        (image(None), info(dm, dm, false, "A5")),
        (
            wa::Message::text("note to self"),
            info(
                &format!("{OWN}@s.whatsapp.net"),
                &format!("{OWN}@s.whatsapp.net"),
                true,
                "A6",
            ),
        ),
        (
            wa::Message::text("sent from my phone"),
            info(dm, &format!("{OWN}@s.whatsapp.net"), true, "A7"),
        ),
        (
            wa::Message::text("my status"),
            info("status@broadcast", dm, false, "A8"),
        ),
    ]);
    let got = messages(&event);
    assert_eq!(got.len(), 7, "the status broadcast is left out: {got:#?}");

    let a1 = &got[0];
    assert_eq!(
        (a1.id.as_str(), a1.text.as_str()),
        ("15551234567@s.whatsapp.net/A1", "hello"),
        "ids are unique per chat and sender only"
    );
    assert_eq!(
        a1.chat,
        Chat {
            id: dm.into(),
            kind: ChatKind::Direct,
            thread: None
        }
    );
    assert_eq!(a1.sender.id, "+15551234567", "the device suffix is dropped");
    assert_eq!(a1.sender.name.as_deref(), Some("Alice"));

    assert_eq!(got[1].chat.kind, ChatKind::Group);
    assert!(got[1].mentioned);
    assert!(!got[2].mentioned);

    assert_eq!(
        (got[3].text.as_str(), got[3].media.as_deref()),
        ("look at this", Some("image"))
    );
    assert_eq!(
        (got[4].text.as_str(), got[4].media.as_deref()),
        ("", Some("image"))
    );

    assert!(
        got[5].from_me && got[5].self_chat,
        "the user's chat with themselves"
    );
    assert!(got[6].from_me && !got[6].self_chat);

    // What access control makes of them, for an owner who allows only
    // themselves and one friend in direct messages, and one group.
    let access = ChannelAccess {
        allow_from: vec!["+15551234567".into()],
        groups: [(group.to_string(), Default::default())].into(),
        group_allow_from: Some(vec!["*".into()]),
        ..ChannelAccess::default()
    };
    let verdicts: Vec<Verdict> = got.iter().map(|m| decide(&access, m, &|_| false)).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Answer,
            Verdict::Answer,
            Verdict::Ignore("the assistant was not mentioned"),
            Verdict::Answer,
            Verdict::Answer,
            Verdict::Answer,
            Verdict::Ignore("sent by this account"),
        ]
    );
}

#[test]
fn a_sender_known_by_lid_is_named_by_number() {
    let mut i = info(
        "15557778888@s.whatsapp.net",
        "98765432109876@lid",
        false,
        "L1",
    );
    i.source.sender_alt = Some("15557778888@s.whatsapp.net".parse().unwrap());
    let got = messages(&batch(vec![(wa::Message::text("hi"), i)]));
    assert_eq!(got[0].sender.id, "+15557778888");
}

#[test]
fn pairing_shows_a_qr_code_and_a_logout_is_reported() {
    let code = "2@Xk3bQ9vW7ZpR1tY5uI8oP0aS2dF4gH6jK8lZ0xC,p7QvOq0rS1tU2vW3xY4zA5bC6dE7fG8hI9jK0lM1nO=,Vb0Nm9Lk8Jh7Gf6Ds5Ap4Oi3Uy2Tr1Ew0Qz9Xc8Vb=,Zz3Kc8mXqP1wE5rT7yU9iO0pA2sD4fG6hJ8kL0zX=";
    let event = Event::PairingQrCode(
        PairingQrCode::builder()
            .code(code.into())
            .timeout(Duration::from_secs(60))
            .build(),
    );
    let events = classify(&event);
    let [WaEvent::Qr { code: got, timeout }] = events.as_slice() else {
        panic!("no QR event");
    };
    assert_eq!((got.as_str(), timeout.as_secs()), (code, 60));
    let qr = render_qr(got).unwrap();
    let lines: Vec<&str> = qr.lines().collect();
    let width = lines[0].chars().count();
    // A square of half-blocks: two modules per line, quiet zone included.
    assert!(width >= 25 + 8, "{width}");
    assert!(lines.iter().all(|l| l.chars().count() == width));
    assert_eq!(lines.len(), width.div_ceil(2));
    assert!(
        qr.chars()
            .all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n'))
    );

    assert_eq!(
        classify(&Event::Connected(Connected::builder().build())),
        [WaEvent::Connected]
    );
    let out = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(false)
            .reason(ConnectFailureReason::LoggedOut)
            .build(),
    );
    assert!(matches!(
        classify(&out).as_slice(),
        [WaEvent::LoggedOut { .. }]
    ));
}

/// Records what the layer sends, as the WhatsApp client would.
#[derive(Default, Clone)]
struct Recorder(Arc<Sends>);

#[derive(Default)]
struct Sends {
    sent: Mutex<Vec<(String, String)>>,
    typing: Mutex<Vec<String>>,
}

impl std::ops::Deref for Recorder {
    type Target = Sends;
    fn deref(&self) -> &Sends {
        &self.0
    }
}

impl Outbound for Recorder {
    async fn send(&self, chat: &Chat, text: &str) -> Result<(), SendError> {
        self.sent
            .lock()
            .unwrap()
            .push((chat.id.clone(), text.to_string()));
        Ok(())
    }

    async fn typing(&self, chat: &Chat) {
        self.typing.lock().unwrap().push(chat.id.clone());
    }
}

fn runtime(url: &str, state: &Path) -> &'static Runtime<'static> {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ acme: {{ baseUrl: "{url}", api: "openai-completions",
      models: [{{ id: "a", contextWindow: 16384, maxTokens: 256 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "acme/a" }} }} }} }}"#
    );
    let loaded: &'static Loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/nowhere/openclaw.json"),
        &Env::from_pairs(&[]),
    )));
    let providers = Providers::new(Env::from_pairs(&[]), Arc::new(pincer_gguf::Silent)).unwrap();
    let rt = Runtime::new(
        &loaded.config,
        Router::new(providers, None),
        state,
        pincer_sessions::Maintenance::default(),
    )
    .unwrap();
    Box::leak(Box::new(rt))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_goes_to_the_agent_and_the_answer_back_to_its_chat() {
    let up = FakeUpstream::start(vec![completions_stream(&[
        r#"{"reasoning_content":"SECRET reasoning"}"#,
        r#"{"content":"It is sunny."}"#,
    ])]);
    let state = tempfile::tempdir().unwrap();
    let rt = runtime(&up.base_url(), state.path());
    let access = ChannelAccess {
        allow_from: vec!["+15551234567".into()],
        ..ChannelAccess::default()
    };
    let loaded = load_text(
        "{}",
        Path::new("/nowhere/openclaw.json"),
        &Env::from_pairs(&[]),
    );
    let settings = Settings::resolve(&loaded.config, "whatsapp", &access, "main");
    let out = Recorder::default();
    let inbox = Inbox::open(&Inbox::path(state.path(), "whatsapp", "default")).unwrap();
    let layer = Layer::new(
        rt,
        out.clone(),
        settings,
        inbox,
        Pairing::new(state.path(), "whatsapp"),
        Arc::new(Board::new(state.path())),
    );
    let dm = "15551234567@s.whatsapp.net";
    let event = batch(vec![
        (wa::Message::text("Weather?"), info(dm, dm, false, "W1")),
        // A stranger: pairing, nothing to the model.
        (
            wa::Message::text("hi"),
            info(
                "15559990000@s.whatsapp.net",
                "15559990000@s.whatsapp.net",
                false,
                "W2",
            ),
        ),
    ]);
    layer.accept(messages(&event), None).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.sent.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sent = out.sent.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], (dm.to_string(), "It is sunny.".to_string()));
    assert_eq!(sent[1].0, "15559990000@s.whatsapp.net");
    assert!(
        sent[1].1.contains("Your WhatsApp number: +15559990000"),
        "{}",
        sent[1].1
    );
    assert!(out.typing.lock().unwrap().contains(&dm.to_string()));
    assert_eq!(
        up.requests().len(),
        1,
        "only the allowed sender reached the model"
    );
}
