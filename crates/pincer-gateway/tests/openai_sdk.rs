//! The official `openai` Python SDK against the gateway on a real port, with
//! llama.cpp's server as the agent's model: chat completions and responses,
//! streamed and whole, a tool call round trip each way, and the errors the
//! SDK must raise. Tool calls come from a scripted upstream (SmolLM2-135M
//! does not call tools reliably); what is checked there is the gateway's
//! translation both ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use pincer_config::{Env, load_text};
use pincer_gateway::{Gateway, Settings, serve};
use pincer_gguf::Silent;
use pincer_router::{Providers, Router};
use pincer_testkit::{
    FakeUpstream, LlamaServer, Step, completions_stream, openai_python, sse_head,
};
use serde_json::Value;

const TOKEN: &str = "sdk-test-token-5f2a9c";

/// An upstream that first asks for `get_weather(city: Paris)`, then answers.
fn weather_upstream() -> FakeUpstream {
    let mut call = sse_head();
    for chunk in [
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    ] {
        call.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    call.extend_from_slice(b"data: [DONE]\n\n");
    FakeUpstream::start(vec![
        vec![Step::Send(call)],
        completions_stream(&[r#"{"content":"It is sunny in Paris."}"#]),
    ])
}

/// The conversation the upstream got on its second call carries the call and its result.
fn assert_tool_result_reached(up: &FakeUpstream) {
    let requests = up.requests();
    assert_eq!(requests.len(), 2);
    let body: Value = serde_json::from_str(&requests[1].body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"][0]["id"], "call_w1");
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], "call_w1");
    assert!(
        tool["content"].as_str().unwrap().contains("sunny"),
        "{tool}"
    );
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn the_official_openai_sdk_works_against_the_gateway() {
    let llama = LlamaServer::start();
    let chat_tools = weather_upstream();
    let responses_tools = weather_upstream();
    let text = format!(
        r#"{{
  models: {{ mode: "replace", providers: {{
    llama: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "smollm2", contextWindow: 2048, maxTokens: 256 }}] }},
    scripted: {{ baseUrl: "{}", api: "openai-completions", models: [{{ id: "weather" }}] }},
    scripted2: {{ baseUrl: "{}", api: "openai-completions", models: [{{ id: "weather" }}] }},
  }} }},
  agents: {{ defaults: {{ model: {{ primary: "llama/smollm2" }} }} }},
  gateway: {{ auth: {{ mode: "token", token: "{TOKEN}" }} }},
}}"#,
        llama.base_url(),
        chat_tools.base_url(),
        responses_tools.base_url()
    );
    let env = Env::from_pairs(&[]);
    let loaded = Box::leak(Box::new(load_text(
        &text,
        Path::new("/nowhere/openclaw.json"),
        &env,
    )));
    let state = tempfile::tempdir().unwrap();
    let settings = Settings::resolve(&loaded.config, &env, Some(0), None).unwrap();
    let router = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
    let gw = Gateway::new(loaded, settings, router, state.path()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(gw, vec![listener], std::future::pending())
                .await
                .unwrap();
        });
    });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_client.py");
    let out = Command::new(openai_python())
        .arg(script)
        .env("PINCER_URL", format!("http://127.0.0.1:{port}/v1"))
        .env("PINCER_TOKEN", TOKEN)
        .env("TOOL_MODEL", "scripted/weather")
        .env("TOOL_MODEL_RESPONSES", "scripted2/weather")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    let failed: Vec<_> = seen
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("_failed"))
        .collect();
    assert!(failed.is_empty(), "steps failed: {failed:?}");

    let chat = &seen["chat"];
    assert!(!chat["text"].as_str().unwrap().trim().is_empty(), "{chat}");
    assert!(chat["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(chat["header_model"], "llama/smollm2");
    assert_eq!(chat["metadata_model"], "llama/smollm2");

    let stream = &seen["chat_stream"];
    assert!(
        !stream["text"].as_str().unwrap().trim().is_empty(),
        "{stream}"
    );
    assert!(["stop", "length"].contains(&stream["finish"].as_str().unwrap()));
    assert!(
        stream["completion_tokens"].as_u64().unwrap() > 0,
        "{stream}"
    );

    let r = &seen["responses"];
    assert!(!r["text"].as_str().unwrap().trim().is_empty(), "{r}");
    assert!(["completed", "incomplete"].contains(&r["status"].as_str().unwrap()));
    assert_eq!(r["types"], serde_json::json!(["message"]));

    let rs = &seen["responses_stream"];
    assert_eq!(rs["first"], "response.created");
    assert!(["response.completed", "response.incomplete"].contains(&rs["last"].as_str().unwrap()));
    assert!(rs["deltas"].as_u64().unwrap() > 0);
    assert_eq!(rs["text"], rs["final_text"]);

    let t = &seen["chat_tools"];
    assert_eq!(t["finish"], "tool_calls");
    assert_eq!(t["name"], "get_weather");
    assert_eq!(t["args"]["city"], "Paris");
    assert_eq!(t["answer"], "It is sunny in Paris.");
    assert_tool_result_reached(&chat_tools);

    let t = &seen["responses_tools"];
    assert_eq!(t["name"], "get_weather");
    assert_eq!(t["call_id"], "call_w1");
    assert_eq!(t["answer"], "It is sunny in Paris.");
    assert_tool_result_reached(&responses_tools);

    // A stable `user`: the second message came with the first turn as
    // history (kept by the gateway), and the commands were answered.
    let c = &seen["conversation"];
    let status = c["status"].as_str().unwrap();
    assert!(status.contains("🧠 Model: llama/smollm2"), "{status}");
    assert!(
        status.contains("📚 Context ") && status.contains("/2.0k"),
        "{status}"
    );
    assert!(
        status.contains("agent:main:openai-user:sdk-conversation"),
        "{status}"
    );
    let context = c["context"].as_str().unwrap();
    assert!(context.contains("History: 4 messages"), "{context}");
    let store = &gw.sessions()["main"];
    let entry = store
        .get("agent:main:openai-user:sdk-conversation")
        .unwrap();
    let tree = store.tree(&entry.session_id).unwrap();
    let user_texts: Vec<String> = tree
        .context()
        .iter()
        .filter_map(|m| match m {
            pincer_llm::Message::User { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        user_texts,
        [
            "My favourite colour is teal. Reply with OK.",
            "What is my favourite colour?"
        ],
        "commands are not turns"
    );

    assert_eq!(seen["wrong_token"], "AuthenticationError");
    assert_eq!(seen["unknown_model"]["error"], "NotFoundError");
    assert!(
        seen["unknown_model"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody/nothing")
    );
    assert_eq!(seen["unknown_model_get"], "NotFoundError");
    let models = seen["models"].as_array().unwrap();
    assert!(models.iter().any(|m| m == "openclaw/main"), "{models:?}");
}
