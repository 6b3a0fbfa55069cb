//! Decoding a 10,000-event stream per dialect: events per second, and so the
//! CPU Pincer spends per streamed token (one text delta ≈ one token).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pincer_llm::{Dialect, Reply};

const EVENTS: usize = 10_000;

/// A stream in the dialect's real shape: its start, EVENTS text deltas of
/// one token each, and its end.
fn stream(dialect: Dialect) -> Vec<u8> {
    let mut s = String::new();
    let word = |i: usize| {
        [
            "Hello", " there", ",", " friend", " —", " très", " bien", ".",
        ][i % 8]
    };
    match dialect {
        Dialect::OpenAiCompletions => {
            for i in 0..EVENTS {
                s.push_str(&format!(
                    "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                    word(i)
                ));
            }
            s.push_str(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            );
            s.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":10000}}\n\ndata: [DONE]\n\n");
        }
        Dialect::OpenAiResponses => {
            for i in 0..EVENTS {
                s.push_str(&format!(
                    "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"{}\"}}\n\n",
                    word(i)
                ));
            }
            s.push_str("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":10,\"output_tokens\":10000}}}\n\n");
        }
        Dialect::AnthropicMessages => {
            s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
            s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for i in 0..EVENTS {
                s.push_str(&format!(
                    "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
                    word(i)
                ));
            }
            s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":10000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        Dialect::Ollama => {
            for i in 0..EVENTS {
                s.push_str(&format!(
                    "{{\"model\":\"m\",\"created_at\":\"2026-09-30T10:12:31.184789Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\"done\":false}}\n",
                    word(i)
                ));
            }
            s.push_str("{\"model\":\"m\",\"created_at\":\"2026-09-30T10:12:31.184789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"prompt_eval_count\":10,\"eval_count\":10000}\n");
        }
    }
    s.into_bytes()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_10k_events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for dialect in Dialect::ALL {
        let bytes = stream(dialect);
        group.bench_function(dialect.as_str(), |b| {
            b.iter(|| {
                let mut d = dialect.stream_decoder();
                let mut reply = Reply::default();
                // Network-sized chunks, as a server's bytes arrive.
                for chunk in bytes.chunks(1400) {
                    for e in d.feed(chunk).unwrap_or_default() {
                        reply.apply(&e);
                    }
                }
                for e in d.finish().unwrap_or_default() {
                    reply.apply(&e);
                }
                assert!(reply.finish.is_some() && reply.text.len() > EVENTS);
                reply
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
