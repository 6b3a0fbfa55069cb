//! The stream decoders on streams in each vendor's documented shape (with
//! reasoning, inline `<think>` tags and a tool call): the same events for any
//! way the bytes are cut, and errors, never panics, on garbage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_llm::{Dialect, ErrorKind, Event, FinishReason, ProviderError, Reply, ToolCall, Usage};
use proptest::prelude::*;

fn sample(dialect: Dialect) -> &'static [u8] {
    match dialect {
        Dialect::OpenAiCompletions => include_bytes!("data/completions.sse"),
        Dialect::OpenAiResponses => include_bytes!("data/responses.sse"),
        Dialect::AnthropicMessages => include_bytes!("data/messages.sse"),
        Dialect::Ollama => include_bytes!("data/ollama.ndjson"),
    }
}

fn decode(dialect: Dialect, chunks: &[&[u8]]) -> Result<Vec<Event>, ProviderError> {
    let mut d = dialect.stream_decoder();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(d.feed(c)?);
    }
    out.extend(d.finish()?);
    Ok(out)
}

/// Events with neighbouring deltas of one kind joined: how text is cut into
/// deltas depends on the chunks, what it says must not.
fn normalized(events: Vec<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for e in events {
        match (out.last_mut(), e) {
            (Some(Event::Text { delta: a }), Event::Text { delta: b })
            | (Some(Event::Reasoning { delta: a }), Event::Reasoning { delta: b }) => {
                a.push_str(&b)
            }
            (_, e) => out.push(e),
        }
    }
    out
}

#[test]
fn each_dialect_keeps_reasoning_text_and_tool_calls_apart() {
    for dialect in Dialect::ALL {
        let events = decode(dialect, &[sample(dialect)]).unwrap();
        let reply = Reply::from_events(&events);
        let name = dialect.as_str();
        assert_eq!(reply.text, "Let me check Paris — très bien.", "{name}");
        assert!(
            reply.reasoning.starts_with("The user wants the weather."),
            "{name}"
        );
        assert_eq!(
            reply.tool_calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }],
            "{name}"
        );
        assert_eq!(reply.finish, Some(FinishReason::ToolCalls), "{name}");
        let expected = Usage {
            input: 20,
            output: 30,
            cache_read: 100,
            cache_write: if dialect == Dialect::AnthropicMessages {
                7
            } else {
                0
            },
            // Anthropic and Ollama do not count reasoning tokens apart.
            reasoning: if matches!(dialect, Dialect::AnthropicMessages | Dialect::Ollama) {
                0
            } else {
                12
            },
        };
        assert_eq!(reply.usage, expected, "{name}");
    }
    // Inline tags are split out too.
    let events = decode(
        Dialect::OpenAiCompletions,
        &[sample(Dialect::OpenAiCompletions)],
    )
    .unwrap();
    assert!(
        Reply::from_events(&events)
            .reasoning
            .ends_with("inline plan")
    );
}

#[test]
fn cut_streams_are_errors_not_answers() {
    for dialect in Dialect::ALL {
        let bytes = sample(dialect);
        // Cut in the middle of the text: no finish reason, no end marker.
        let cut = bytes.len() / 2;
        let err = decode(dialect, &[&bytes[..cut]]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol, "{}: {err}", dialect.as_str());
    }
}

#[test]
fn finish_reason_without_done_marker_is_complete() {
    let text = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let events = decode(Dialect::OpenAiCompletions, &[text.as_bytes()]).unwrap();
    let reply = Reply::from_events(&events);
    assert_eq!(
        (reply.text.as_str(), reply.finish),
        ("Hi", Some(FinishReason::Stop))
    );
}

#[test]
fn errors_inside_a_stream_are_typed() {
    let llama = "data: {\"error\":{\"code\":500,\"message\":\"the request exceeds the available context size, try increasing it\",\"type\":\"exceed_context_size_error\",\"n_prompt_tokens\":9000,\"n_ctx\":8192}}\n\n";
    let err = decode(Dialect::OpenAiCompletions, &[llama.as_bytes()]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextOverflow);

    let anthropic = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let err = decode(Dialect::AnthropicMessages, &[anthropic.as_bytes()]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Overloaded);

    let failed = "data: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Rate limit reached\"}}}\n\n";
    let err = decode(Dialect::OpenAiResponses, &[failed.as_bytes()]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimit);

    let garbage = "data: {not json\n\n";
    for dialect in Dialect::ALL {
        let err = decode(dialect, &[garbage.as_bytes()]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
    }
}

fn split_at_points(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p %= bytes.len() + 1);
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&bytes[last..p]);
        last = p;
    }
    chunks.push(&bytes[last..]);
    chunks
}

fn any_dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::OpenAiCompletions),
        Just(Dialect::OpenAiResponses),
        Just(Dialect::AnthropicMessages),
        Just(Dialect::Ollama)
    ]
}

proptest! {
    #[test]
    fn same_events_for_any_split(dialect in any_dialect(), points in prop::collection::vec(any::<usize>(), 0..40)) {
        let bytes = sample(dialect);
        let whole = normalized(decode(dialect, &[bytes]).unwrap());
        let chunks = split_at_points(bytes, points);
        let split = normalized(decode(dialect, &chunks).unwrap());
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn crlf_line_ends_give_the_same_events(dialect in any_dialect(), points in prop::collection::vec(any::<usize>(), 0..20)) {
        let bytes = sample(dialect);
        let crlf = String::from_utf8(bytes.to_vec()).unwrap().replace('\n', "\r\n").into_bytes();
        let whole = normalized(decode(dialect, &[bytes]).unwrap());
        let split = normalized(decode(dialect, &split_at_points(&crlf, points)).unwrap());
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic(dialect in any_dialect(), bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = decode(dialect, &[&bytes]);
    }

    #[test]
    fn mutated_streams_never_panic_and_never_end_silently(
        dialect in any_dialect(),
        cut in any::<usize>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let mut bytes = sample(dialect).to_vec();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        // Either a typed error, or a reply that says how it finished.
        if let Ok(events) = decode(dialect, &[&bytes]) {
            prop_assert!(matches!(events.last(), Some(Event::Done { .. })), "{:?}", events);
        }
    }
}

#[test]
fn responses_call_sent_whole_without_argument_deltas() {
    let text = "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"c9\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}}\n\n\
                data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\"}}\n\n";
    let reply = Reply::from_events(&decode(Dialect::OpenAiResponses, &[text.as_bytes()]).unwrap());
    assert_eq!(
        reply.tool_calls,
        vec![ToolCall {
            id: "c9".into(),
            name: "lookup".into(),
            arguments: r#"{"q":1}"#.into()
        }]
    );
    assert_eq!(reply.finish, Some(FinishReason::ToolCalls));
}
