//! Primary and fallback on one provider (one LM Studio or Ollama serving two
//! models, or OpenRouter serving many): a model that breaks mid-answer cools
//! down that model, not its server, so its sibling continues the answer; a
//! server that is down cools down the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use pincer_catalog::{Catalog, ModelRef, ModelSpec};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, Event, Message};
use pincer_router::{Providers, Router};
use pincer_testkit::{FakeUpstream, Step, free_port, sse_head};

fn completions(deltas: &[&str], finish: bool) -> Vec<u8> {
    let mut b = sse_head();
    for d in deltas {
        b.extend_from_slice(
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{d:?}}}}}]}}\n\n")
                .as_bytes(),
        );
    }
    if finish {
        b.extend_from_slice(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        );
    }
    b
}

fn anthropic(deltas: &[&str], finish: bool) -> Vec<u8> {
    let mut b = sse_head();
    let mut ev = |name: &str, data: String| {
        b.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes());
    };
    ev(
        "message_start",
        r#"{"type":"message_start","message":{"id":"m1","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":0}}}"#.into(),
    );
    ev(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            .into(),
    );
    for d in deltas {
        ev(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{d:?}}}}}"#
            ),
        );
    }
    if finish {
        ev(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#.into(),
        );
        ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#.into(),
        );
        ev("message_stop", r#"{"type":"message_stop"}"#.into());
    }
    b
}

fn catalog_text(api: &str, url: &str) -> String {
    format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  box: {{ baseUrl: "{url}", api: "{api}", timeoutSeconds: 2,
    models: [{{ id: "a", contextWindow: 4096, maxTokens: 64 }}, {{ id: "b", contextWindow: 4096, maxTokens: 64 }}] }},
}} }} }}"#
    )
}

async fn answer(api: &str, url: &str) -> (String, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[("HOME", dir.path().to_str().unwrap())]);
    let loaded = load_text(&catalog_text(api, url), &dir.path().join("c.json"), &env);
    let catalog = Catalog::new(&loaded.config.models);
    let candidates: Vec<ModelSpec> = ["box/a", "box/b"]
        .iter()
        .map(|r| catalog.model(&ModelRef::parse(r).unwrap()).unwrap())
        .collect();
    let router = Router::new(Providers::new(env, Arc::new(Silent)).unwrap(), None);
    let req = ChatRequest {
        messages: vec![Message::user("Tell a story")],
        ..ChatRequest::default()
    };
    let mut a = match router.start(&catalog, &candidates, "main", "t", &req).await {
        Ok(a) => a,
        Err(e) => return (String::new(), String::new(), vec![e.to_string()]),
    };
    let mut text = String::new();
    let mut error = Vec::new();
    while let Some(e) = a.next().await {
        match e {
            Ok(Event::Text { delta }) => text.push_str(&delta),
            Ok(_) => {}
            Err(e) => error.push(e.to_string()),
        }
    }
    (a.spec.reference.clone(), text, error)
}

#[tokio::test]
async fn a_model_cut_mid_answer_is_continued_by_its_sibling_on_the_same_server() {
    for api in ["openai-completions", "anthropic-messages"] {
        let (cut, rest): (Vec<u8>, Vec<u8>) = if api == "anthropic-messages" {
            (
                anthropic(&["Once", " upon"], false),
                anthropic(&[" a time."], true),
            )
        } else {
            (
                completions(&["Once", " upon"], false),
                completions(&[" a time."], true),
            )
        };
        // Cut, a stall, and a malformed chunk (in the same read as the
        // text before it): each breaks model a mid-answer.
        for broken in [
            vec![Step::Send(cut.clone())],
            vec![
                Step::Send(cut.clone()),
                Step::Sleep(std::time::Duration::from_secs(4)),
            ],
            vec![Step::Send(
                [cut.clone(), b"data: {not json\n\n".to_vec()].concat(),
            )],
        ] {
            let up = FakeUpstream::start(vec![broken, vec![Step::Send(rest.clone())]]);
            let (model, text, errors) = answer(api, &up.base_url()).await;
            assert!(errors.is_empty(), "{api}: {errors:?}");
            assert_eq!(model, "box/b", "{api}");
            assert_eq!(text, "Once upon a time.", "{api}");
        }
    }
}

#[tokio::test]
async fn a_server_that_is_down_skips_every_model_on_it() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let (_, _, errors) = answer("openai-completions", &url).await;
    let all = errors.join("\n");
    assert!(all.contains("box/a") && all.contains("connection"), "{all}");
    assert!(
        all.contains("box/b: skipped, box is down (connection)"),
        "{all}"
    );
}
