//! Model discovery against servers that say what they have: the test kit's
//! Ollama replay, LM Studio's and vLLM's documented `/v1/models` and
//! `/api/v0/models` replies, and servers that are down, slow, huge or
//! malformed (each reported, none holding up the others). The real
//! llama-server and LiteLLM are in `real_discovery.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use pincer_catalog::discovery::{Discovery, apply, providers_to_discover};
use pincer_catalog::{Catalog, ModelRef, Origin};
use pincer_config::{Env, Loaded, load_text};
use pincer_gguf::Silent;
use pincer_router::Providers;
use pincer_testkit::{FakeUpstream, OllamaModel, OllamaReplay, Step, free_port, http_response};

fn load(text: &str, dir: &std::path::Path) -> Loaded {
    let env = Env::from_pairs(&[("HOME", dir.to_str().unwrap())]);
    let loaded = load_text(text, &dir.join("openclaw.json"), &env);
    assert!(
        loaded.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        loaded.diagnostics
    );
    loaded
}

async fn discover(loaded: &Loaded, every: bool, cache: Option<&std::path::Path>) -> Vec<Discovery> {
    let catalog = Catalog::new(&loaded.config.models);
    let ids = providers_to_discover(&loaded.config, &catalog, every);
    let providers = Providers::new(Env::from_pairs(&[]), Arc::new(Silent)).unwrap();
    providers
        .discover(&catalog, &ids, "main", cache, false)
        .await
}

fn json(status: u16, body: &str) -> Vec<Step> {
    vec![Step::Send(http_response(status, &[], body))]
}

const LM_STUDIO_V1: &str = r#"{"object":"list","data":[
 {"id":"qwen2-vl-7b-instruct","object":"model","owned_by":"organization_owner"},
 {"id":"meta-llama-3.1-8b-instruct","object":"model","owned_by":"organization_owner"},
 {"id":"text-embedding-nomic-embed-text-v1.5","object":"model","owned_by":"organization_owner"}]}"#;
const LM_STUDIO_V0: &str = r#"{"object":"list","data":[
 {"id":"qwen2-vl-7b-instruct","object":"model","type":"vlm","publisher":"mlx-community","arch":"qwen2_vl","compatibility_type":"mlx","quantization":"4bit","state":"not-loaded","max_context_length":32768},
 {"id":"meta-llama-3.1-8b-instruct","object":"model","type":"llm","publisher":"lmstudio-community","arch":"llama","compatibility_type":"gguf","quantization":"Q4_K_M","state":"loaded","max_context_length":131072,"loaded_context_length":4096,"capabilities":["tool_use"]},
 {"id":"text-embedding-nomic-embed-text-v1.5","object":"model","type":"embeddings","publisher":"nomic-ai","arch":"nomic-bert","compatibility_type":"gguf","quantization":"Q4_0","state":"not-loaded","max_context_length":2048}]}"#;
const VLLM: &str = r#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model","created":1735142223,"owned_by":"vllm","root":"Qwen/Qwen2.5-7B-Instruct","parent":null,"max_model_len":32768,"permission":[]}]}"#;

#[tokio::test]
async fn each_server_lists_its_models_with_what_it_knows() {
    let ollama = OllamaReplay::start(vec![
        OllamaModel::new("qwen3:8b", 40960, &["completion", "tools", "thinking"]),
        OllamaModel::new("llava:7b", 4096, &["completion", "vision"]),
        OllamaModel::new("nomic-embed-text:latest", 2048, &["embedding"]),
    ]);
    let lm = FakeUpstream::routed(
        vec![],
        vec![
            ("/api/v0/models", json(200, LM_STUDIO_V0)),
            ("/v1/models", json(200, LM_STUDIO_V1)),
        ],
    );
    let vllm = FakeUpstream::routed(vec![], vec![("/v1/models", json(200, VLLM))]);
    let dir = tempfile::tempdir().unwrap();
    let mut loaded = load(
        &format!(
            r#"{{ models: {{ mode: "merge", providers: {{
  ollama: {{ baseUrl: "{}", api: "ollama" }},
  studio: {{ baseUrl: "{}", api: "openai-completions" }},
  gpu: {{ baseUrl: "{}" }},
  down: {{ baseUrl: "http://127.0.0.1:{}/v1" }},
  fixed: {{ baseUrl: "{}", models: [{{ id: "own", contextWindow: 1000 }}] }},
}} }} }}"#,
            ollama.base_url(),
            lm.base_url(),
            vllm.base_url(),
            free_port(),
            vllm.base_url()
        ),
        dir.path(),
    );
    let found = discover(&loaded, false, None).await;
    let by = |p: &str| found.iter().find(|d| d.provider == p).unwrap();
    // A provider with models of its own is not asked.
    assert!(found.iter().all(|d| d.provider != "fixed"), "{found:?}");

    let o = by("ollama");
    assert_eq!(o.server.as_deref(), Some("Ollama"));
    let ids: Vec<&str> = o.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["qwen3:8b", "llava:7b"], "no embedding model");
    assert_eq!(o.models[0].context_window, Some(40960));
    assert_eq!(
        o.models[0].context_tokens,
        Some(32768),
        "capped as OpenClaw"
    );
    assert_eq!(o.models[0].reasoning, Some(true));
    assert_eq!(o.models[0].tools, Some(true));
    assert_eq!(o.models[1].tools, Some(false));
    assert!(o.models[1].vision);

    let s = by("studio");
    assert_eq!(s.server.as_deref(), Some("LM Studio"));
    let ids: Vec<&str> = s.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["qwen2-vl-7b-instruct", "meta-llama-3.1-8b-instruct"]);
    assert_eq!(s.models[1].context_window, Some(131072));
    assert_eq!(s.models[1].context_tokens, Some(4096));
    assert_eq!(s.models[1].loaded, Some(true));
    assert_eq!(s.models[1].tools, Some(true));
    assert!(s.models[0].vision);

    let g = by("gpu");
    assert_eq!(g.server.as_deref(), Some("vLLM"));
    assert_eq!(g.models[0].id, "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(g.models[0].context_window, Some(32768));

    let d = by("down");
    assert!(d.models.is_empty());
    assert!(
        d.error.as_deref().unwrap().starts_with("connection"),
        "{d:?}"
    );

    // The lists join the catalog as discovered rows.
    apply(&mut loaded.config.models, &found);
    let catalog = Catalog::new(&loaded.config.models);
    let spec = catalog
        .model(&ModelRef::parse("ollama/qwen3:8b").unwrap())
        .unwrap();
    assert_eq!(spec.context_window, 40960);
    assert_eq!(spec.budget(), 32768);
    assert!(spec.reasoning);
    assert_eq!(spec.origins.get("contextWindow"), Some(&Origin::Discovered));
    let llava = catalog
        .model(&ModelRef::parse("ollama/llava:7b").unwrap())
        .unwrap();
    assert_eq!(llava.compat.supports_tools, Some(false));
    assert_eq!(llava.input, ["text", "image"]);
    let qwen = catalog
        .model(&ModelRef::parse("gpu/Qwen/Qwen2.5-7B-Instruct").unwrap())
        .unwrap();
    assert_eq!(qwen.context_window, 32768);
    assert!(!catalog.is_exhaustive("down"), "its models may come later");
}

#[tokio::test]
async fn a_list_is_kept_for_a_minute_and_the_last_one_outlives_an_outage() {
    let ollama = OllamaReplay::start(vec![OllamaModel::new("qwen3:8b", 40960, &["completion"])]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("discovery.json");
    let loaded = load(
        &format!(
            r#"{{ models: {{ providers: {{ ollama: {{ baseUrl: "{}", api: "ollama" }} }} }} }}"#,
            ollama.base_url()
        ),
        dir.path(),
    );
    let first = discover(&loaded, false, Some(&cache)).await;
    assert_eq!(first[0].models.len(), 1);
    let asked = ollama.requests().len();
    let again = discover(&loaded, false, Some(&cache)).await;
    assert_eq!(again, first, "from the list kept");
    assert_eq!(
        ollama.requests().len(),
        asked,
        "the server was not asked again"
    );

    // The server goes away: the last list stays, with the failure beside it.
    ollama.go_down();
    let catalog = Catalog::new(&loaded.config.models);
    let providers = Providers::new(Env::from_pairs(&[]), Arc::new(Silent)).unwrap();
    let ids = vec!["ollama".to_string()];
    let down = providers
        .discover(&catalog, &ids, "main", Some(&cache), true)
        .await;
    assert_eq!(down[0].models, first[0].models, "{down:?}");
    assert!(down[0].error.is_some(), "{down:?}");
    // And is still there for the next command, which asks again (the
    // failure was kept, not the old success).
    let next = discover(&loaded, false, Some(&cache)).await;
    assert_eq!(next[0].models, first[0].models);
    assert!(next[0].error.is_some(), "{next:?}");
}

#[tokio::test]
async fn bad_servers_are_reported_and_hold_up_nobody() {
    let slow = FakeUpstream::routed(
        vec![],
        vec![("/models", vec![Step::Sleep(Duration::from_secs(30))])],
    );
    let malformed = FakeUpstream::routed(vec![], vec![("/models", json(200, "{\"data\": [1, 2"))]);
    let huge_body = format!(
        r#"{{"data":[{}]}}"#,
        (0..120_000)
            .map(|i| format!(r#"{{"id":"model-{i}-{}"}}"#, "x".repeat(40)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let huge = FakeUpstream::routed(vec![], vec![("/models", json(200, &huge_body))]);
    let many = FakeUpstream::routed(
        vec![],
        vec![(
            "/models",
            json(
                200,
                &format!(
                    r#"{{"data":[{}]}}"#,
                    (0..1000)
                        .map(|i| format!(r#"{{"id":"m{i}"}}"#))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        )],
    );
    let good = FakeUpstream::routed(vec![], vec![("/models", json(200, VLLM))]);
    // A token in the URL is never shown or kept.
    let with_token = good
        .base_url()
        .replace("http://", "http://user:sekrit-token@")
        + "?key=sekrit-query";
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(
        &format!(
            r#"{{ models: {{ providers: {{
  slow: {{ baseUrl: "{}" }}, malformed: {{ baseUrl: "{}" }}, huge: {{ baseUrl: "{}" }},
  many: {{ baseUrl: "{}" }}, good: {{ baseUrl: "{}" }} }} }} }}"#,
            slow.base_url(),
            malformed.base_url(),
            huge.base_url(),
            many.base_url(),
            with_token
        ),
        dir.path(),
    );
    let cache = dir.path().join("discovery.json");
    let found = discover(&loaded, false, Some(&cache)).await;
    let kept = std::fs::read_to_string(&cache).unwrap();
    assert!(!kept.contains("sekrit") && !format!("{found:?}").contains("sekrit"));
    let by = |p: &str| found.iter().find(|d| d.provider == p).unwrap();
    assert!(
        by("slow").error.as_deref().unwrap().contains("timeout"),
        "{:?}",
        by("slow")
    );
    assert!(
        by("malformed")
            .error
            .as_deref()
            .unwrap()
            .contains("not JSON"),
        "{:?}",
        by("malformed")
    );
    assert!(
        by("huge").error.as_deref().unwrap().contains("larger than"),
        "{:?}",
        by("huge").error
    );
    assert_eq!(by("many").models.len(), 200, "at most 200 per server");
    assert_eq!(by("good").models.len(), 1);
    assert!(by("good").error.is_none());
}
