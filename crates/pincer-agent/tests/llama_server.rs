//! The agent runtime against a real llama.cpp server started with a smaller
//! context than the config says: the runtime works in the server's real
//! window (and compacts to stay in it), and when the server shrinks under
//! it, the overflow the server reports is compacted away and the turn is
//! asked again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use pincer_agent::{AgentEvent, Delivered, Delivery, Runtime};
use pincer_config::{Env, Loaded, load_text};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_sessions::Body;
use pincer_testkit::{LlamaServer, free_port};
use pincer_types::{ChatRequest, Message};

fn loaded(port: u16) -> &'static Loaded {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ llama: {{
      baseUrl: "http://127.0.0.1:{port}/v1", api: "openai-completions",
      models: [{{ id: "smollm2", contextWindow: 8192, maxTokens: 48 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "llama/smollm2" }} }} }} }}"#
    );
    Box::leak(Box::new(load_text(
        &text,
        Path::new("/nowhere/openclaw.json"),
        &Env::from_pairs(&[]),
    )))
}

async fn say(rt: &Runtime<'_>, text: &str) -> Delivered {
    say_noting(rt, text).await.0
}

/// The delivery and the notes it gave.
async fn say_noting(rt: &Runtime<'_>, text: &str) -> (Delivered, Vec<String>) {
    let d = Delivery {
        agent: "main".into(),
        session_key: "agent:main:test".into(),
        input: vec![Message::user(text)],
        request: ChatRequest {
            temperature: Some(0.0),
            ..ChatRequest::default()
        },
        agent_prompt: true,
        ..Delivery::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = async move {
        let mut notes = Vec::new();
        while let Some(e) = rx.recv().await {
            if let AgentEvent::Note(n) = e {
                notes.push(n);
            }
        }
        notes
    };
    let (done, notes) = tokio::join!(rt.deliver(d, tx), drain);
    (done.unwrap_or_else(|e| panic!("{text:?}: {e}")), notes)
}

/// About 150 tokens.
fn note(n: usize) -> String {
    let line = format!(
        "The parcel for house {n} goes to the blue door on street {}, and the courier \
         must ring twice before leaving it with the neighbour.",
        n * 7
    );
    format!("Note {n}: {line} {line} {line} Reply briefly.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn the_servers_real_context_is_the_window_and_an_overflow_is_compacted_away() {
    let port = free_port();
    let server = LlamaServer::start_on(port, 2048);
    let loaded = loaded(port);
    let state = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[]);
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    let rt = Runtime::new(
        &loaded.config,
        router,
        state.path(),
        pincer_sessions::Maintenance::default(),
    )
    .unwrap();

    // The config says 8192; the server runs 2048, and that is the window.
    say(&rt, &note(1)).await;
    let status = say(&rt, "/status").await.final_text.unwrap();
    assert!(status.contains("/2.0k ("), "{status}");

    // Turns until the conversation passes 2048 less the reserve (512):
    // compacted before the turn, in the server's window, not the config's.
    let mut compacted = 0;
    for n in 2..=12 {
        compacted += say(&rt, &note(n)).await.compactions;
    }
    assert!(compacted >= 1, "no compaction in the server's 2k window");

    // The server comes back with 768 tokens while the runtime still trusts
    // its last probe: the prompt overflows, is compacted, and goes again.
    server.stop();
    let small = LlamaServer::start_on(port, 768);
    let (done, notes) = say_noting(&rt, &note(13)).await;
    assert!(done.final_text.is_some());
    assert!(
        notes
            .iter()
            .any(|n| n.contains("was too long for llama/smollm2: compacted")),
        "{notes:?}"
    );
    // From then on the runtime works in the 768 the server reported.
    say(&rt, &note(14)).await;
    let store = &rt.stores()["main"];
    let entry = store.get("agent:main:test").unwrap();
    let tree = store.tree(&entry.session_id).unwrap();
    let compactions = tree
        .entries
        .iter()
        .filter(|e| matches!(e.body, Body::Compaction { .. }))
        .count();
    assert!(compactions > compacted, "the overflow was compacted");
    let failed = tree.entries.iter().filter(|e| e.error.is_some()).count();
    assert_eq!(failed, 0, "every turn was answered");
    small.stop();
}
