//! Streamed tool calls as servers really send them: arguments split across
//! chunks, no `index`, odd numbers, the id or name in every chunk, the
//! whole arguments sent again, `stop` or no finish reason after calls.
//! Each must reach the agent as the calls the model made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_llm::{Dialect, Event, FinishReason, Reply, ToolCall};

fn decode(lines: &[&str]) -> (Reply, Vec<Event>) {
    let mut body = String::new();
    for l in lines {
        body.push_str(&format!("data: {l}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    let mut d = Dialect::OpenAiCompletions.stream_decoder();
    let mut events = d.feed(body.as_bytes()).unwrap();
    events.extend(d.finish().unwrap());
    (Reply::from_events(&events), events)
}

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    }
}

fn chunk(calls: &str, finish: Option<&str>) -> String {
    let finish = finish.map_or("null".to_string(), |f| format!("\"{f}\""));
    format!(
        r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":{calls}}},"finish_reason":{finish}}}]}}"#
    )
}

#[test]
fn tool_call_stream_table() {
    let read = call("a", "read", r#"{"path":"x"}"#);
    let write = call("b", "write", r#"{"path":"y","content":"z"}"#);
    let cases: Vec<(&str, Vec<String>, Vec<ToolCall>)> = vec![
        (
            "arguments split across chunks, finish tool_calls",
            vec![
                chunk(
                    r#"[{"index":0,"id":"a","type":"function","function":{"name":"read","arguments":"{\"pa"}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":0,"function":{"arguments":"th\":\"x\"}"}}]"#,
                    Some("tool_calls"),
                ),
            ],
            vec![read.clone()],
        ),
        (
            "no index: a new id starts a new call",
            vec![
                chunk(
                    r#"[{"id":"a","function":{"name":"read","arguments":"{\"path\":"}}]"#,
                    None,
                ),
                chunk(r#"[{"function":{"arguments":"\"x\"}"}}]"#, None),
                chunk(
                    r#"[{"id":"b","function":{"name":"write","arguments":"{\"path\":\"y\",\"content\":\"z\"}"}}]"#,
                    Some("stop"),
                ),
            ],
            vec![read.clone(), write.clone()],
        ),
        (
            "numbered from 1 with a gap",
            vec![
                chunk(
                    r#"[{"index":1,"id":"a","function":{"name":"read","arguments":""}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":3,"id":"b","function":{"name":"write","arguments":"{\"path\":\"y\",\"content\":\"z\"}"}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":1,"function":{"arguments":"{\"path\":\"x\"}"}}]"#,
                    Some("tool_calls"),
                ),
            ],
            vec![read.clone(), write.clone()],
        ),
        (
            "id and name in every chunk",
            vec![
                chunk(
                    r#"[{"index":0,"id":"a","function":{"name":"read","arguments":"{\"path\""}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":0,"id":"a","function":{"name":"read","arguments":":\"x\"}"}}]"#,
                    None,
                ),
            ],
            vec![read.clone()],
        ),
        (
            "the whole arguments sent again at the end",
            vec![
                chunk(
                    r#"[{"index":0,"id":"a","function":{"name":"read","arguments":"{\"path\":\"x\"}"}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":0,"function":{"arguments":"{\"path\":\"x\"}"}}]"#,
                    Some("tool_calls"),
                ),
            ],
            vec![read.clone()],
        ),
        (
            "every call numbered 0 (Ollama), each whole",
            vec![
                chunk(
                    r#"[{"index":0,"id":"a","function":{"name":"read","arguments":"{\"path\":\"x\"}"}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":0,"id":"b","function":{"name":"write","arguments":"{\"path\":\"y\",\"content\":\"z\"}"}}]"#,
                    Some("stop"),
                ),
            ],
            vec![read.clone(), write.clone()],
        ),
        (
            "every call numbered 0, no ids, the same tool twice",
            vec![
                chunk(
                    r#"[{"index":0,"function":{"name":"read","arguments":"{\"path\":\"x\"}"}}]"#,
                    None,
                ),
                chunk(
                    r#"[{"index":0,"function":{"name":"write","arguments":"{\"path\":\"y\",\"content\":\"z\"}"}}]"#,
                    None,
                ),
            ],
            vec![
                call("", "read", r#"{"path":"x"}"#),
                call("", "write", r#"{"path":"y","content":"z"}"#),
            ],
        ),
        (
            "unnumbered: two calls in a chunk, then a third, then its rest",
            vec![
                chunk(
                    r#"[{"id":"a","function":{"name":"read","arguments":"{\"path\":\"x\"}"}},{"id":"b","function":{"name":"write","arguments":"{\"path\":\"y\","}}]"#,
                    None,
                ),
                chunk(r#"[{"function":{"arguments":"\"content\":\"z\"}"}}]"#, None),
                chunk(
                    r#"[{"id":"c","function":{"name":"read","arguments":"{\"path\":\"x\"}"}}]"#,
                    None,
                ),
            ],
            vec![
                read.clone(),
                write.clone(),
                call("c", "read", r#"{"path":"x"}"#),
            ],
        ),
        (
            "arguments as an object, two calls in one chunk",
            vec![chunk(
                r#"[{"index":0,"id":"a","function":{"name":"read","arguments":{"path":"x"}}},{"index":1,"id":"b","function":{"name":"write","arguments":{"content":"z","path":"y"}}}]"#,
                None,
            )],
            vec![
                read.clone(),
                call("b", "write", r#"{"content":"z","path":"y"}"#),
            ],
        ),
    ];
    for (what, lines, want) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (reply, events) = decode(&lines);
        assert_eq!(reply.tool_calls, want, "{what}");
        // Calls end as calls, whatever the server said (or did not).
        assert_eq!(reply.finish, Some(FinishReason::ToolCalls), "{what}");
        // A name is told once per call, so a client that joins the pieces
        // gets it right.
        let names = events
            .iter()
            .filter(|e| matches!(e, Event::ToolCall { name: Some(_), .. }))
            .count();
        assert_eq!(names, want.len(), "{what}");
    }
}

#[test]
fn empty_call_objects_do_not_make_a_text_reply_a_call() {
    let (reply, _) = decode(&[
        r#"{"choices":[{"index":0,"delta":{"content":"hi","tool_calls":[{}]},"finish_reason":"stop"}]}"#,
    ]);
    assert_eq!(reply.finish, Some(FinishReason::Stop));
    assert!(reply.tool_calls.is_empty());
}

#[test]
fn a_reply_without_calls_still_stops() {
    let (reply, _) =
        decode(&[r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#]);
    assert_eq!(reply.finish, Some(FinishReason::Stop));
}
