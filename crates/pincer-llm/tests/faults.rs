//! Faults real servers will not produce on demand, from a scripted upstream:
//! each becomes the right error kind, in time, without leaking the key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{hello, stream_all, target};
use pincer_llm::{Client, Dialect, ErrorKind, ProviderError, Target};
use pincer_testkit::{FakeUpstream, Step, http_response, sse_head};

const KEY: &str = "sk-test-secret-key-123456789";

fn fast(mut t: Target) -> Target {
    t.timeouts.first_event = Duration::from_secs(1);
    t.timeouts.idle = Duration::from_millis(500);
    t
}

async fn outcome(dialect: Dialect, script: Vec<Step>) -> (ProviderError, Duration, FakeUpstream) {
    let up = FakeUpstream::start(vec![script]);
    let t = fast(target(dialect, &up.base_url(), Some(KEY)));
    let start = Instant::now();
    let err = stream_all(&t, &hello()).await.unwrap_err();
    assert!(!err.message.contains(KEY), "key leaked: {err}");
    (err, start.elapsed(), up)
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<Step> {
    vec![Step::Send(http_response(status, headers, body))]
}

#[tokio::test]
async fn http_errors_by_kind_in_every_dialect() {
    let cases: Vec<(Vec<Step>, ErrorKind)> = vec![
        (
            reply(
                401,
                &[],
                &format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#),
            ),
            ErrorKind::Auth,
        ),
        (
            reply(500, &[], r#"{"error":{"message":"boom"}}"#),
            ErrorKind::Server,
        ),
        (
            reply(503, &[], r#"{"error":{"message":"Service Unavailable"}}"#),
            ErrorKind::Overloaded,
        ),
        (
            reply(
                529,
                &[],
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            ErrorKind::Overloaded,
        ),
        (
            reply(
                503,
                &[],
                r#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#,
            ),
            ErrorKind::ModelLoading,
        ),
        (
            reply(
                400,
                &[],
                r#"{"error":"Trying to keep the first 10136 tokens when context the overflows. However, the model is loaded with context length of only 7866 tokens, which is not enough."}"#,
            ),
            ErrorKind::ContextOverflow,
        ),
        (
            reply(
                400,
                &[],
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
            ),
            ErrorKind::ContextOverflow,
        ),
        (
            reply(
                404,
                &[],
                r#"{"error":"model 'qwen3:8b' not found, try pulling it first"}"#,
            ),
            ErrorKind::ModelNotFound,
        ),
        (
            reply(
                400,
                &[],
                r#"{"error":{"message":"Invalid value for 'temperature'"}}"#,
            ),
            ErrorKind::BadRequest,
        ),
    ];
    for dialect in Dialect::SSE {
        for (script, kind) in &cases {
            let (err, _, _) = outcome(dialect, script.clone()).await;
            assert_eq!(err.kind, *kind, "{}: {err}", dialect.as_str());
        }
    }
}

#[tokio::test]
async fn rate_limit_keeps_retry_after() {
    for dialect in Dialect::SSE {
        let (err, _, _) = outcome(
            dialect,
            reply(
                429,
                &[("retry-after", "7")],
                r#"{"error":{"message":"Rate limit reached"}}"#,
            ),
        )
        .await;
        assert_eq!(err.kind, ErrorKind::RateLimit);
        assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    }
}

/// A server that says nothing fails at the first-event limit, not later.
/// Tokio's clock is paused (it jumps to the next timer while nothing else
/// can happen), so the test checks the limit itself, not how fast the machine is.
#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out_at_the_first_event_limit() {
    for dialect in Dialect::SSE {
        for script in [
            // Nothing at all after the request.
            vec![Step::Sleep(Duration::from_secs(5))],
            // Headers, then nothing.
            vec![Step::Send(sse_head()), Step::Sleep(Duration::from_secs(5))],
        ] {
            let up = FakeUpstream::start(vec![script]);
            let t = fast(target(dialect, &up.base_url(), Some(KEY)));
            let start = tokio::time::Instant::now();
            let err = stream_all(&t, &hello()).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
            assert!(!err.message.contains(KEY), "key leaked: {err}");
            assert!(
                start.elapsed() <= t.timeouts.first_event + Duration::from_millis(50),
                "{dialect:?}: {:?}",
                start.elapsed()
            );
        }
    }
}

#[tokio::test]
async fn a_stall_mid_stream_ends_in_a_timeout() {
    // One event, then silence longer than the idle limit.
    let first = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    let up = FakeUpstream::start(vec![vec![
        Step::Send(sse_head()),
        Step::Send(first.as_bytes().to_vec()),
        Step::Sleep(Duration::from_secs(5)),
    ]]);
    let t = fast(target(Dialect::OpenAiCompletions, &up.base_url(), None));
    let client = Client::new().unwrap();
    let mut s = client.stream(&t, &hello()).await.unwrap();
    let start = Instant::now();
    assert!(matches!(
        s.next().await,
        Some(Ok(pincer_llm::Event::Text { .. }))
    ));
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("stalled"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_and_truncated_streams_are_protocol_errors() {
    for dialect in Dialect::SSE {
        let (err, _, _) = outcome(
            dialect,
            vec![
                Step::Send(sse_head()),
                Step::Send(b"data: {oops\n\n".to_vec()),
            ],
        )
        .await;
        assert_eq!(err.kind, ErrorKind::Protocol, "{err}");

        let sample: &[u8] = match dialect {
            Dialect::OpenAiCompletions => include_bytes!("data/completions.sse"),
            Dialect::OpenAiResponses => include_bytes!("data/responses.sse"),
            Dialect::AnthropicMessages | Dialect::Ollama => include_bytes!("data/messages.sse"),
        };
        let (err, _, _) = outcome(
            dialect,
            vec![
                Step::Send(sse_head()),
                Step::Send(sample[..sample.len() / 2].to_vec()),
            ],
        )
        .await;
        assert_eq!(err.kind, ErrorKind::Protocol, "{}: {err}", dialect.as_str());
    }
}

#[tokio::test]
async fn each_dialect_sends_its_own_auth_headers_and_path() {
    for dialect in Dialect::SSE {
        let (_, _, up) = outcome(dialect, reply(500, &[], "{}")).await;
        let sent = &up.requests()[0];
        let path = sent.head.split_whitespace().nth(1).unwrap().to_string();
        match dialect {
            Dialect::AnthropicMessages => {
                assert_eq!(path, "/v1/messages");
                assert_eq!(sent.header("x-api-key").as_deref(), Some(KEY));
                assert_eq!(
                    sent.header("anthropic-version").as_deref(),
                    Some("2023-06-01")
                );
                assert_eq!(sent.header("authorization"), None);
            }
            _ => {
                let want = if dialect == Dialect::OpenAiResponses {
                    "/v1/responses"
                } else {
                    "/v1/chat/completions"
                };
                assert_eq!(path, want);
                assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}")));
            }
        }
        let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "smollm2");
    }
}

/// Reads one request head and body from a raw connection.
fn read_request(r: &mut std::io::BufReader<std::net::TcpStream>) -> bool {
    use std::io::{BufRead, Read};
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).is_ok()
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_server_is_retried_once() {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Like cpp-httplib at its keep-alive limit: the first connection answers
    // one request and keeps alive, then reads the next request and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let conn = conn.unwrap();
            let count = count.clone();
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(conn);
                while read_request(&mut r) {
                    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    count.fetch_add(1, Ordering::SeqCst);
                    r.get_mut().write_all(reply.as_bytes()).unwrap();
                    if n == 0 && read_request(&mut r) {
                        return; // closes without a byte of response
                    }
                }
            });
        }
    });
    let t = fast(target(
        Dialect::OpenAiCompletions,
        &format!("http://127.0.0.1:{port}/v1"),
        None,
    ));
    let client = Client::new().unwrap();
    for turn in 0..3 {
        let reply = client.complete(&t, &hello()).await;
        assert_eq!(reply.unwrap().text, "Hi", "turn {turn}");
    }
    assert_eq!(served.load(Ordering::SeqCst), 3);
}

/// Resident memory of this process, from /proc (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test]
async fn a_hostile_tool_call_index_is_a_protocol_error_and_allocates_nothing() {
    let mut body = sse_head();
    body.extend_from_slice(
        br#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":4000000000,"id":"c1","function":{"name":"x","arguments":"{}"}}]}}]}

data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

"#,
    );
    let before = rss_bytes();
    let up = FakeUpstream::start(vec![vec![Step::Send(body)]]);
    let t = fast(target(Dialect::OpenAiCompletions, &up.base_url(), None));
    // One call with a huge number is still one call, numbered 0.
    let events = stream_all(&t, &hello()).await.unwrap();
    let reply = pincer_llm::Reply::from_events(&events);
    assert_eq!(reply.tool_calls.len(), 1, "{reply:?}");
    assert_eq!(reply.tool_calls[0].name, "x");
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
}

#[tokio::test]
async fn more_tool_calls_than_the_limit_is_a_protocol_error_in_every_dialect() {
    let n = pincer_llm::MAX_TOOL_CALLS + 1;
    let mut scripts = Vec::new();
    let mut completions = sse_head();
    let mut responses = sse_head();
    let mut anthropic = sse_head();
    for i in 0..n {
        let big = 4_000_000_000u64 - i as u64 * 1000;
        completions.extend_from_slice(
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{big},\"id\":\"c{i}\",\"function\":{{\"name\":\"x\",\"arguments\":\"\"}}}}]}}}}]}}\n\n"
            )
            .as_bytes(),
        );
        responses.extend_from_slice(
            format!(
                "event: response.output_item.added\ndata: {{\"type\":\"response.output_item.added\",\"output_index\":{big},\"item\":{{\"type\":\"function_call\",\"call_id\":\"c{i}\",\"name\":\"x\"}}}}\n\n"
            )
            .as_bytes(),
        );
        anthropic.extend_from_slice(
            format!(
                "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{big},\"content_block\":{{\"type\":\"tool_use\",\"id\":\"c{i}\",\"name\":\"x\",\"input\":{{}}}}}}\n\n"
            )
            .as_bytes(),
        );
    }
    scripts.push((Dialect::OpenAiCompletions, completions));
    scripts.push((Dialect::OpenAiResponses, responses));
    scripts.push((Dialect::AnthropicMessages, anthropic));
    for (dialect, body) in scripts {
        let (err, _, _) = outcome(dialect, vec![Step::Send(body)]).await;
        assert_eq!(err.kind, ErrorKind::Protocol, "{dialect:?}: {err}");
        assert!(err.message.contains("tool calls"), "{dialect:?}: {err}");
    }
}

#[tokio::test]
async fn a_server_that_took_the_request_and_closed_later_is_not_asked_twice() {
    // Reads the request, stays silent, then closes without a byte: it saw
    // the request, so a resend would run the prompt a second time.
    let up = FakeUpstream::start(vec![vec![Step::Sleep(Duration::from_millis(1500))]]);
    let mut t = target(Dialect::OpenAiCompletions, &up.base_url(), None);
    t.timeouts.first_event = Duration::from_secs(10);
    let err = stream_all(&t, &hello()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Reset, "{err}");
    assert_eq!(up.requests().len(), 1, "asked once");
}
