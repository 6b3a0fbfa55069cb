//! What a streaming surface receives from the runtime, against a scripted
//! upstream: the silent-reply token never reaches it, and text that only
//! began like the token arrives whole and in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use pincer_agent::{AgentEvent, Delivery, Runtime};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, completions_stream};
use pincer_types::{Event, Message};

/// The text deltas a surface is sent, and the final text.
async fn streamed(deltas: &[&str]) -> (Vec<String>, Option<String>) {
    let up = FakeUpstream::start(vec![completions_stream(deltas)]);
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "m", contextWindow: 8192, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }} }} }} }}"#,
        up.base_url()
    );
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/x/openclaw.json"),
        &env,
    )));
    let state = tempfile::tempdir().unwrap();
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    let rt = Runtime::new(&loaded.config, router, state.path(), Default::default()).unwrap();
    let d = Delivery {
        agent: "main".into(),
        session_key: "agent:main:t".into(),
        input: vec![Message::user("hi")],
        agent_prompt: true,
        ..Delivery::default()
    };
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
    let (done, texts) = tokio::join!(rt.deliver(d, tx), collect);
    (texts, done.unwrap().final_text)
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
