//! Model discovery as a user meets it: `pincer models list --local` with
//! what each local server has (and which are down), and `pincer chat` on a
//! model nobody wrote into the config. Against the test kit's Ollama
//! replay, and against the real llama-server and LiteLLM proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json, pincer, write_config};
use pincer_testkit::{LiteLlm, LlamaServer, OllamaModel, OllamaReplay, free_port};
use serde_json::Value;

fn row<'a>(list: &'a Value, reference: &str) -> &'a Value {
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ref"] == reference)
        .unwrap_or_else(|| panic!("no {reference} in {list}"))
}

#[test]
fn models_list_local_shows_what_each_server_has_and_who_is_down() {
    let ollama = OllamaReplay::start(vec![
        OllamaModel::new("qwen3:8b", 40960, &["completion", "tools", "thinking"]),
        OllamaModel::new("gemma3:1b", 32768, &["completion"]),
    ]);
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(
        home.path(),
        &format!(
            r#"{{ models: {{ mode: "merge", providers: {{
  ollama: {{ baseUrl: "{}", api: "ollama" }},
  lab: {{ baseUrl: "http://127.0.0.1:{}/v1" }},
}} }} }}"#,
            ollama.base_url(),
            free_port()
        ),
    );
    let out = pincer(
        home.path(),
        &["--config", &cfg, "models", "list", "--local", "--json"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json(&out);
    let qwen = row(&list, "ollama/qwen3:8b");
    assert_eq!(qwen["discovered"], true);
    assert_eq!(qwen["contextWindow"], 40960);
    assert_eq!(qwen["api"], "ollama");
    assert_eq!(row(&list, "ollama/gemma3:1b")["discovered"], true);
    assert_eq!(
        row(&list, "embedded/smollm2-135m-instruct")["discovered"],
        false
    );
    let servers = list["servers"].as_array().unwrap();
    let server = |p: &str| servers.iter().find(|s| s["provider"] == p).unwrap();
    assert_eq!(server("ollama")["up"], true);
    assert_eq!(server("ollama")["models"], 2);
    assert_eq!(server("lab")["up"], false);
    assert!(
        server("lab")["error"]
            .as_str()
            .unwrap()
            .starts_with("connection")
    );

    // The table says the same, and the down server on its own line.
    let out = pincer(
        home.path(),
        &["--config", &cfg, "models", "list", "--local"],
        &[],
    );
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("local (discovered)"), "{table}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("lab: down at"), "{said}");
    assert!(said.contains("ollama: Ollama at"), "{said}");
}

#[test]
fn chat_runs_on_a_model_only_the_server_lists() {
    // Ollama says it takes no tools: the turn offers none.
    let ollama = OllamaReplay::start(vec![OllamaModel::new("qwen3:8b", 40960, &["completion"])]);
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(
        home.path(),
        &format!(
            r#"{{ agents: {{ defaults: {{ model: {{ primary: "ollama/qwen3:8b" }} }} }},
  models: {{ providers: {{ ollama: {{ baseUrl: "{}", api: "ollama" }} }} }} }}"#,
            ollama.base_url()
        ),
    );
    let out = pincer(
        home.path(),
        &["--config", &cfg, "chat", "-m", "Hi", "--json"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["model"], "ollama/qwen3:8b");
    assert!(v["text"].as_str().unwrap().starts_with("Hello from"));
    // The discovered model's budget: its trained 40k capped at 32k.
    assert_eq!(ollama.chats()[0]["options"]["num_ctx"], 32768);
    assert!(ollama.chats()[0].get("tools").is_none());

    // With Ollama gone, the list kept from the last run still resolves the
    // model; the turn fails as a connection failure, told plainly.
    ollama.go_down();
    let out = pincer(home.path(), &["--config", &cfg, "chat", "-m", "Hi"], &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ollama/qwen3:8b"), "{said}");
    assert!(!said.contains("does not exist"), "{said}");
}

#[test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
fn real_llama_server_and_litellm_list_their_models() {
    let server = LlamaServer::start_with_ctx(3072);
    let proxy = LiteLlm::start(&server.base_url());
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(
        home.path(),
        &format!(
            r#"{{ models: {{ providers: {{
  llamacpp: {{ baseUrl: "{}" }},
  proxy: {{ baseUrl: "{}", apiKey: "{}" }},
}} }} }}"#,
            server.base_url(),
            proxy.base_url(),
            proxy.key
        ),
    );
    let out = pincer(
        home.path(),
        &["--config", &cfg, "models", "list", "--local", "--json"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json(&out);
    let smol = row(&list, "llamacpp/smollm2");
    assert_eq!(smol["discovered"], true);
    // SmolLM2 was trained for 8192 tokens; the server runs it with 3072.
    assert_eq!(smol["contextWindow"], 8192);
    assert_eq!(row(&list, "proxy/smollm2")["discovered"], true);
    let servers = list["servers"].as_array().unwrap();
    let kind = |p: &str| {
        servers.iter().find(|s| s["provider"] == p).unwrap()["server"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(kind("llamacpp"), "llama.cpp");
    assert_eq!(kind("proxy"), "an OpenAI-compatible server");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&proxy.key),
        "the key stays secret"
    );

    // The budget is what the server runs with, and a chat uses it.
    let out = pincer(
        home.path(),
        &[
            "--config",
            &cfg,
            "models",
            "resolve",
            "llamacpp/smollm2",
            "--json",
        ],
        &[],
    );
    let v = json(&out);
    assert_eq!(v["model"]["contextTokens"], 3072);
    let out = pincer(
        home.path(),
        &[
            "--config",
            &cfg,
            "chat",
            "-M",
            "proxy/smollm2",
            "-m",
            "Hi",
            "--max-tokens",
            "8",
            "--json",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["model"], "proxy/smollm2");
}
