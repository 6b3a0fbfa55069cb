//! What a surface receives from the runtime, against a scripted upstream:
//! the silent-reply token never reaches it, text that only began like the
//! token arrives whole and in order, and messages sent while the session is
//! busy are queued as `messages.queue` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use pincer_agent::{AgentError, AgentEvent, Delivered, Delivery, Queued, Runtime};
use pincer_testkit::{FakeUpstream, Step, completions_stream};
use pincer_types::{Event, Message};

/// A runtime on `up` with `extra` config at the root (`messages: {…}`).
fn runtime(up: &FakeUpstream, extra: &str) -> (Runtime<'static>, tempfile::TempDir) {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "m", contextWindow: 8192, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }} }} }}, {extra} }}"#,
        up.base_url()
    );
    let state = tempfile::tempdir().unwrap();
    let rt = common::runtime(&text, state.path());
    (rt, state)
}

fn message(text: &str, channel: Option<&str>) -> Delivery {
    Delivery {
        agent: "main".into(),
        session_key: "agent:main:t".into(),
        input: vec![Message::user(text)],
        agent_prompt: true,
        channel: channel.map(String::from),
        ..Delivery::default()
    }
}

/// The text deltas a surface is sent, and the final text.
async fn streamed(deltas: &[&str]) -> (Vec<String>, Option<String>) {
    let up = FakeUpstream::start(vec![completions_stream(deltas)]);
    let (rt, _state) = runtime(&up, "");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let collect = async move {
        let mut texts = Vec::new();
        while let Some(e) = rx.recv().await {
            if let AgentEvent::Llm(Event::Text { delta }) = e {
                texts.push(delta);
            }
        }
        texts
    };
    let (done, texts) = tokio::join!(rt.deliver(message("hi", None), tx), collect);
    (texts, done.unwrap().final_text)
}

/// Delivers `first`, then (while it is being answered: the upstream takes
/// a second over it) `later` one after another, each 50 ms apart, all from
/// `channel`. Returns each result and the user text of every model call.
async fn while_busy(
    extra: &str,
    channel: Option<&str>,
    first: &str,
    later: &[&str],
) -> (Vec<Result<Delivered, AgentError>>, Vec<String>) {
    let mut slow = vec![Step::Sleep(Duration::from_millis(1000))];
    slow.extend(completions_stream(&[r#"{"content":"first answer"}"#]));
    let up = FakeUpstream::start(vec![
        slow,
        completions_stream(&[r#"{"content":"later answer"}"#]),
    ]);
    let (rt, _state) = runtime(&up, extra);
    let rt = &rt;
    let one = |text: String, wait: u64| async move {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let drain = async move { while rx.recv().await.is_some() {} };
        tokio::join!(rt.deliver(message(&text, channel), tx), drain).0
    };
    let mut all = vec![one(first.to_string(), 0)];
    for (i, t) in later.iter().enumerate() {
        all.push(one(t.to_string(), 200 + 50 * i as u64));
    }
    let results = futures_util::future::join_all(all).await;
    let asked = up
        .requests()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let users: Vec<&serde_json::Value> = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "user")
                .collect();
            users.last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (results, asked)
}

#[tokio::test]
async fn messages_sent_while_a_chat_is_busy_are_collected_into_one_turn() {
    let (results, asked) = while_busy(
        "messages: { queue: { debounceMs: 100 } }",
        Some("telegram"),
        "one",
        &["two", "three"],
    )
    .await;
    assert_eq!(
        asked,
        [
            "one",
            "[Queued messages while agent was busy]\n\n---\nQueued #1\ntwo\n\n---\nQueued #2\nthree"
        ]
    );
    let r: Vec<&Delivered> = results.iter().map(|r| r.as_ref().unwrap()).collect();
    assert_eq!(r[0].final_text.as_deref(), Some("first answer"));
    assert_eq!(
        (r[1].final_text.as_deref(), r[1].queued),
        (Some("later answer"), None)
    );
    // The third is answered by the second's turn: nothing to send for it.
    assert_eq!(
        (r[2].final_text.as_deref(), r[2].queued),
        (None, Some(Queued::Collected))
    );
}

#[tokio::test]
async fn a_caller_waiting_for_its_answer_gets_its_own_turn() {
    // No channel (an HTTP request): each message is its own turn, in order.
    let (results, asked) = while_busy("", None, "one", &["two", "three"]).await;
    assert_eq!(asked, ["one", "two", "three"]);
    assert!(results.iter().all(|r| r.as_ref().unwrap().queued.is_none()));
}

#[tokio::test]
async fn interrupt_aborts_the_running_turn_for_the_new_message() {
    let (results, asked) = while_busy(
        r#"messages: { queue: { mode: "collect", byChannel: { telegram: "interrupt" } } }"#,
        Some("telegram"),
        "one",
        &["never mind, two"],
    )
    .await;
    assert!(
        matches!(results[0], Err(AgentError::Aborted)),
        "{:?}",
        results[0]
    );
    assert_eq!(
        results[1].as_ref().unwrap().final_text.as_deref(),
        Some("later answer")
    );
    assert_eq!(asked, ["one", "never mind, two"]);
}

#[tokio::test]
async fn a_full_queue_drops_as_configured() {
    let (results, asked) = while_busy(
        r#"messages: { queue: { cap: 1, drop: "new", debounceMs: 0 } }"#,
        Some("telegram"),
        "one",
        &["two", "three"],
    )
    .await;
    assert_eq!(
        asked[1],
        "[Queued messages while agent was busy]\n\n---\nQueued #1\ntwo"
    );
    assert_eq!(results[2].as_ref().unwrap().queued, Some(Queued::Dropped));
}

#[tokio::test]
async fn the_silent_token_is_never_streamed_and_lookalikes_arrive_in_order() {
    let (texts, final_text) = streamed(&[r#"{"content":"NO_"}"#, r#"{"content":"REPLY"}"#]).await;
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(final_text, None);

    let (texts, final_text) = streamed(&[
        r#"{"content":"NO"}"#,
        r#"{"content":" problem"}"#,
        r#"{"content":", done."}"#,
    ])
    .await;
    assert_eq!(texts.concat(), "NO problem, done.");
    assert_eq!(final_text.as_deref(), Some("NO problem, done."));

    // Text that stops while it still looks like the token is sent at the end.
    let (texts, _) = streamed(&[r#"{"content":"NO"}"#]).await;
    assert_eq!(texts, ["NO"]);
}
