//! One model on one server, with everything needed to call it: the catalog's
//! `ModelSpec` and `Provider` joined with the key from the environment.

use std::time::Duration;

use pincer_catalog::{ModelSpec, Provider};
use pincer_config::Api;
use secrecy::{ExposeSecret, SecretString};

use crate::dialect::Dialect;
use pincer_types::{ErrorKind, ProviderError};

/// How long to wait, at each stage of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// From sending the request to the first event: generous for local
    /// servers, which may be loading the model on demand.
    pub first_event: Duration,
    /// Silence allowed before the first token when the server says it is
    /// not loading the model and another model could answer instead: 10 s
    /// for local servers, none for hosted ones (they queue and reason before
    /// they speak), the provider's `params.firstTokenTimeoutSeconds` when set.
    pub first_token: Option<Duration>,
    /// Longest silence between two chunks once the reply has started.
    pub idle: Duration,
}

/// The default first-token limit for a local server that is not loading.
const LOCAL_FIRST_TOKEN: u64 = 10;

impl Timeouts {
    /// A model's limits: from where it runs and its provider's settings.
    pub fn for_model(spec: &ModelSpec) -> Timeouts {
        let mut t = Timeouts::for_provider(spec.local, spec.timeout_seconds);
        let first_token = match spec.first_token_seconds {
            Some(0) => None,
            Some(s) => Some(s),
            None if spec.local && !spec.is_embedded() => Some(LOCAL_FIRST_TOKEN),
            None => None,
        };
        t.first_token = first_token
            .map(Duration::from_secs)
            .filter(|d| *d < t.first_event);
        t
    }

    /// `timeout_seconds` (the provider's `timeoutSeconds`) bounds the wait
    /// for the first event, and the silence mid-stream when it is shorter.
    pub fn for_provider(local: bool, timeout_seconds: Option<u64>) -> Timeouts {
        let first = timeout_seconds.unwrap_or(if local { 300 } else { 120 });
        let idle = if local { 120 } else { 60 };
        Timeouts {
            connect: Duration::from_secs(10),
            first_event: Duration::from_secs(first),
            first_token: None,
            idle: Duration::from_secs(timeout_seconds.map_or(idle, |t| t.min(idle))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    /// `provider/model`, for messages.
    pub reference: String,
    pub dialect: Dialect,
    pub base_url: String,
    /// The model id the server knows.
    pub model_id: String,
    pub api_key: Option<SecretString>,
    pub headers: Vec<(String, SecretString)>,
    /// Budget for prompt + output: `contextTokens` when set, else `contextWindow`.
    pub context_window: u64,
    pub max_tokens: u64,
    pub reasoning: bool,
    pub local: bool,
    pub timeouts: Timeouts,
    /// What the server takes (the model's `compat`).
    pub compat: pincer_config::Compat,
    /// The agent's `params` for the model (sent with each request).
    pub params: Option<serde_json::Value>,
}

impl Target {
    /// An HTTP target for a model of the catalog, calling with `key`. The
    /// embedded engine and the dialects Pincer does not speak are refused here.
    pub fn new(
        spec: &ModelSpec,
        provider: &Provider,
        key: Option<SecretString>,
    ) -> Result<Target, ProviderError> {
        let bad = |m: String| ProviderError::new(ErrorKind::BadRequest, m);
        let dialect = match spec.api {
            Api::OpenAiCompletions => Dialect::OpenAiCompletions,
            Api::OpenAiResponses => Dialect::OpenAiResponses,
            Api::AnthropicMessages => Dialect::AnthropicMessages,
            Api::Ollama => Dialect::Ollama,
            Api::Embedded => {
                return Err(bad(format!(
                    "{} runs on the embedded engine, not over HTTP",
                    spec.reference
                )));
            }
            Api::Unsupported(api) => {
                return Err(bad(format!(
                    "{}: api {api:?} is not supported by Pincer yet",
                    spec.reference
                )));
            }
        };
        let Some(base_url) = spec.base_url.clone() else {
            return Err(bad(format!(
                "{}: no baseUrl (set models.providers.{}.baseUrl)",
                spec.reference, provider.id
            )));
        };
        Ok(Target {
            reference: spec.reference.clone(),
            dialect,
            base_url,
            model_id: spec.id.clone(),
            api_key: key,
            headers: provider.headers.clone(),
            context_window: spec.budget(),
            max_tokens: spec.max_tokens,
            reasoning: spec.reasoning,
            local: spec.local,
            timeouts: Timeouts::for_model(spec),
            compat: spec.compat.clone(),
            params: spec.params.clone(),
        })
    }

    /// The credentials this target sends, to scrub from anything shown.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        self.api_key
            .iter()
            .chain(self.headers.iter().map(|(_, v)| v))
            .map(|s| s.expose_secret())
            .collect()
    }
}
