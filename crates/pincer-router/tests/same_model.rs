//! What stays on one model before failover: the provider's next key when a
//! key is refused, waiting while the server loads the model (and saying so),
//! and one `Retry-After` wait when no other model is left.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_catalog::{Catalog, ModelRef};
use pincer_config::{Env, load_text};
use pincer_gguf::Silent;
use pincer_llm::{ChatRequest, ErrorKind, Event, Message};
use pincer_router::{Next, Notice, Providers, Router};
use pincer_testkit::{FakeUpstream, Step, completions_stream, http_response};

struct Turn {
    model: Result<String, String>,
    text: String,
    attempts: Vec<(String, Option<ErrorKind>)>,
}

/// One turn on `acme/m` (served by `up`), with `vars` as the environment.
async fn turn(up: &FakeUpstream, vars: &[(&str, &str)], router: Option<&Router>) -> Turn {
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{
  acme: {{ baseUrl: "{}", api: "openai-completions", timeoutSeconds: 5,
    models: [{{ id: "m", contextWindow: 4096, maxTokens: 64 }}] }} }} }} }}"#,
        up.base_url()
    );
    let env = Env::from_pairs(vars);
    let loaded = load_text(&text, std::path::Path::new("/nowhere/openclaw.json"), &env);
    let catalog = Catalog::new(&loaded.config.models);
    let spec = catalog.model(&ModelRef::parse("acme/m").unwrap()).unwrap();
    let own;
    let router = match router {
        Some(r) => r,
        None => {
            own = Router::new(Providers::new(env.clone(), Arc::new(Silent)).unwrap(), None);
            &own
        }
    };
    let req = ChatRequest {
        messages: vec![Message::user("Hi")],
        ..ChatRequest::default()
    };
    match router.start(&catalog, &[spec], "main", "t", &req).await {
        Ok(mut a) => {
            let mut text = String::new();
            while let Some(e) = a.next().await {
                if let Event::Text { delta } = e.unwrap() {
                    text.push_str(&delta);
                }
            }
            Turn {
                model: Ok(a.spec.reference.clone()),
                text,
                attempts: a
                    .attempts
                    .iter()
                    .map(|t| (t.model.clone(), t.kind))
                    .collect(),
            }
        }
        Err(e) => Turn {
            model: Err(e.to_string()),
            text: String::new(),
            attempts: e
                .attempts
                .iter()
                .map(|t| (t.model.clone(), t.kind))
                .collect(),
        },
    }
}

fn observed() -> (
    Arc<Mutex<Vec<Notice>>>,
    impl Fn(&Notice) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |n: &Notice| s.lock().unwrap().push(n.clone()))
}

fn with_notices(env: &[(&str, &str)]) -> (Router, Arc<Mutex<Vec<Notice>>>) {
    let (seen, f) = observed();
    let providers = Providers::new(Env::from_pairs(env), Arc::new(Silent)).unwrap();
    (Router::new(providers, None).with_notices(f), seen)
}

#[tokio::test]
async fn a_refused_key_rotates_to_the_next_key_of_the_same_provider() {
    let up = FakeUpstream::start(vec![
        vec![Step::Send(http_response(
            401,
            &[],
            r#"{"error":{"message":"Invalid API key provided: sk-one"}}"#,
        ))],
        completions_stream(&[r#"{"content":"Hello"}"#]),
    ]);
    let env = [("ACME_API_KEYS", "sk-one,sk-two")];
    let (router, seen) = with_notices(&env);
    let t = turn(&up, &env, Some(&router)).await;
    assert_eq!(t.model.unwrap(), "acme/m");
    assert_eq!(t.text, "Hello");
    assert_eq!(
        t.attempts,
        vec![(
            "acme/m (key env:ACME_API_KEYS#1)".to_string(),
            Some(ErrorKind::Auth)
        )]
    );
    let sent: Vec<_> = up
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert_eq!(sent, ["Bearer sk-one", "Bearer sk-two"]);
    assert!(
        matches!(&seen.lock().unwrap()[0], Notice::Attempt(a) if a.next == Next::Key("env:ACME_API_KEYS#2".into()))
    );

    // The refused key is cooling down: the next turn starts with the good one.
    let t = turn(&up, &env, Some(&router)).await;
    assert_eq!(t.text, "Hello");
    assert!(t.attempts.is_empty());
    assert_eq!(
        up.requests()
            .last()
            .unwrap()
            .header("authorization")
            .unwrap(),
        "Bearer sk-two"
    );
}

#[tokio::test]
async fn all_keys_refused_is_one_failure_per_key() {
    let up = FakeUpstream::start(vec![vec![Step::Send(http_response(
        401,
        &[],
        r#"{"error":{"message":"Invalid API key"}}"#,
    ))]]);
    let t = turn(&up, &[("ACME_API_KEYS", "sk-one;sk-two")], None).await;
    let err = t.model.unwrap_err();
    assert!(!err.contains("sk-one") && !err.contains("sk-two"), "{err}");
    assert_eq!(t.attempts.len(), 2, "{:?}", t.attempts);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn a_model_that_is_loading_is_waited_for_not_failed() {
    let loading = vec![Step::Send(http_response(
        503,
        &[],
        r#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#,
    ))];
    let up = FakeUpstream::start(vec![
        loading.clone(),
        loading,
        completions_stream(&[r#"{"content":"Ready"}"#]),
    ]);
    let (router, seen) = with_notices(&[]);
    let t = turn(&up, &[], Some(&router)).await;
    assert_eq!(t.model.unwrap(), "acme/m");
    assert_eq!(t.text, "Ready");
    assert!(
        t.attempts.is_empty(),
        "a load is not a failure: {:?}",
        t.attempts
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Notice::Loading {
            model: "acme/m".into(),
            on: "acme".into()
        }]
    );
}

#[tokio::test]
async fn a_slow_first_token_on_a_cold_model_is_explained() {
    // LM Studio loading on demand: the chat waits, and meanwhile its API
    // says the model is not loaded.
    let mut slow = vec![Step::Sleep(Duration::from_secs(3))];
    slow.extend(completions_stream(&[r#"{"content":"Loaded now"}"#]));
    let list =
        r#"{"object":"list","data":[{"id":"m","object":"model","owned_by":"organization_owner"}]}"#;
    let state =
        r#"{"object":"list","data":[{"id":"m","state":"not-loaded","max_context_length":32768}]}"#;
    let up = FakeUpstream::routed(
        vec![slow],
        vec![
            (
                "/api/v0/models",
                vec![Step::Send(http_response(200, &[], state))],
            ),
            ("/models", vec![Step::Send(http_response(200, &[], list))]),
        ],
    );
    let (router, seen) = with_notices(&[]);
    let t = turn(&up, &[], Some(&router)).await;
    assert_eq!(t.text, "Loaded now");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Notice::Loading {
            model: "acme/m".into(),
            on: "acme (LM Studio)".into()
        }]
    );
}

#[tokio::test]
async fn retry_after_is_waited_for_when_no_other_model_is_left() {
    let up = FakeUpstream::start(vec![
        vec![Step::Send(http_response(
            429,
            &[("retry-after", "1")],
            r#"{"error":{"message":"Rate limit reached"}}"#,
        ))],
        completions_stream(&[r#"{"content":"Thanks for waiting"}"#]),
    ]);
    let (router, seen) = with_notices(&[]);
    let t = turn(&up, &[], Some(&router)).await;
    assert_eq!(t.text, "Thanks for waiting");
    assert_eq!(
        t.attempts,
        vec![("acme/m".to_string(), Some(ErrorKind::RateLimit))]
    );
    assert!(matches!(
        &seen.lock().unwrap()[0],
        Notice::Attempt(a) if a.next == Next::SameModel(Duration::from_secs(1))
    ));

    // A long Retry-After is not waited for: the turn fails and says when to retry.
    let up = FakeUpstream::start(vec![vec![Step::Send(http_response(
        429,
        &[("retry-after", "600")],
        r#"{"error":{"message":"Rate limit reached"}}"#,
    ))]]);
    let t = turn(&up, &[], None).await;
    assert!(t.model.unwrap_err().contains("cooldown ends in"));
    assert_eq!(up.requests().len(), 1);
}
