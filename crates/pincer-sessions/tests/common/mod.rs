//! What the store tests share.

use pincer_sessions::{SessionStore, TurnRecord};
use pincer_types::{Message, Reply, Usage};

/// Records one turn on `key`: `text` answered with `re: <text>`, 7 tokens
/// in and 2 out.
pub fn say(store: &SessionStore, key: &str, text: &str) {
    let reply = Reply {
        text: format!("re: {text}"),
        usage: Usage {
            input: 7,
            output: 2,
            ..Usage::default()
        },
        ..Reply::default()
    };
    let turn = TurnRecord {
        input: &[Message::user(text)],
        model: "local/smollm2",
        api: "openai-completions",
        reply: &reply,
        cost_usd: 0.0,
        attempts: &[],
        error: None,
        continues: false,
    };
    if let Err(e) = store.record(key, &turn) {
        panic!("recording a turn on {key}: {e}");
    }
}
