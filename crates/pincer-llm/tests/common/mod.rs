//! Shared by the integration tests: a target for a server on 127.0.0.1, and
//! running a streamed request to its end.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use pincer_llm::{
    ChatRequest, Client, Dialect, Event, FinishReason, Message, ProviderError, Reply, Target,
    Timeouts,
};
use secrecy::SecretString;

pub fn target(dialect: Dialect, base_url: &str, key: Option<&str>) -> Target {
    Target {
        reference: "test/smollm2".into(),
        dialect,
        base_url: base_url.into(),
        model_id: "smollm2".into(),
        api_key: key.map(SecretString::from),
        headers: Vec::new(),
        context_window: 2048,
        max_tokens: 48,
        reasoning: false,
        local: true,
        timeouts: Timeouts::for_provider(true, Some(60)),
        compat: Default::default(),
        params: None,
    }
}

pub fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system("You are a helpful assistant. Answer briefly."),
            Message::user("Say hello to Ada."),
        ],
        max_tokens: Some(24),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

/// Every event of a streamed reply, or the error that ended it.
pub async fn stream_all(t: &Target, req: &ChatRequest) -> Result<Vec<Event>, ProviderError> {
    let client = Client::new()?;
    let mut s = client.stream(t, req).await?;
    let mut events = Vec::new();
    while let Some(e) = s.next().await {
        events.push(e?);
    }
    Ok(events)
}

/// What a user checks of any reply: some text, no thinking in it, a reason
/// to stop, and token counts within the cap.
pub fn assert_answer(reply: &Reply, cap: u64) {
    assert!(!reply.text.trim().is_empty(), "empty answer: {reply:?}");
    assert!(
        !reply.text.contains("<think>"),
        "reasoning leaked: {:?}",
        reply.text
    );
    assert!(
        matches!(
            reply.finish,
            Some(FinishReason::Stop | FinishReason::Length)
        ),
        "{reply:?}"
    );
    assert!(reply.usage.input + reply.usage.cache_read > 0, "{reply:?}");
    assert!(
        reply.usage.output > 0 && reply.usage.output <= cap,
        "{reply:?}"
    );
}

/// A streamed reply ends with exactly one `Done`, last.
pub fn assert_well_formed(events: &[Event]) {
    let dones = events
        .iter()
        .filter(|e| matches!(e, Event::Done { .. }))
        .count();
    assert_eq!(dones, 1, "{events:?}");
    assert!(matches!(events.last(), Some(Event::Done { .. })));
    let text_events = events
        .iter()
        .filter(|e| matches!(e, Event::Text { .. }))
        .count();
    assert!(text_events > 1, "not streamed token by token: {events:?}");
}
