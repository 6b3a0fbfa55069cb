//! One way to call any model of the catalog: an HTTP server in one of the
//! three dialects, or a GGUF on the embedded engine. Both give the same
//! `Event` stream and the same `ProviderError`s, so the caller (chat, the
//! gateway, failover) never needs to know which one answered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pincer_catalog::{Catalog, DEFAULT_MODEL, ModelSpec};
use pincer_config::{Api, Env};
use pincer_engine::{EngineOptions, Generation, KvCache, LoadedModel};
use pincer_llm::{ChatRequest, Client, ErrorKind, Event, EventStream, ProviderError, Target};
use pincer_models::{Progress, SMOLLM2, ensure_default, resolve_model_path};
use tokio::sync::Mutex;

/// A streamed answer from whichever kind of provider.
pub enum AnswerStream {
    Http(Box<EventStream>),
    Embedded(Generation),
}

impl AnswerStream {
    /// The next event; `None` after `Done` or after an error.
    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        match self {
            AnswerStream::Http(s) => s.next().await,
            AnswerStream::Embedded(g) => g.next().await,
        }
    }
}

/// Everything needed to call models: the HTTP client (kept-alive
/// connections) and the embedded models loaded so far (kept warm).
pub struct Providers {
    env: Env,
    http: Client,
    loaded: Mutex<HashMap<PathBuf, LoadedModel>>,
    progress: Arc<dyn Progress>,
}

impl Providers {
    /// `progress` reports the one-time fetch of the default model.
    pub fn new(env: Env, progress: Arc<dyn Progress>) -> Result<Providers, ProviderError> {
        Ok(Providers {
            env,
            http: Client::new()?,
            loaded: Mutex::new(HashMap::new()),
            progress,
        })
    }

    /// Starts an answer from `spec`. `session` decides whose turn it is when
    /// several sessions share one embedded model.
    pub async fn stream(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        session: &str,
        req: &ChatRequest,
    ) -> Result<AnswerStream, ProviderError> {
        let provider = catalog.provider(&spec.provider).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::BadRequest,
                format!("unknown provider {}", spec.provider),
            )
        })?;
        if spec.api.or(provider.api) == Some(Api::Embedded) {
            let model = self.embedded(spec).await?;
            let mut req = req.clone();
            req.max_tokens = Some(
                req.max_tokens
                    .map_or(spec.max_tokens, |m| m.min(spec.max_tokens)),
            );
            return Ok(AnswerStream::Embedded(model.generate(session, req)));
        }
        let target = Target::new(spec, provider, &self.env)?;
        self.http
            .stream(&target, req)
            .await
            .map(|s| AnswerStream::Http(Box::new(s)))
    }

    /// The embedded model for `spec`, loaded on first use and kept warm.
    pub async fn embedded(&self, spec: &ModelSpec) -> Result<LoadedModel, ProviderError> {
        let path = self.model_path(spec).await?;
        // Held across the load so two first requests load the model once.
        let mut loaded = self.loaded.lock().await;
        if let Some(m) = loaded.get(&path).filter(|m| m.is_usable()) {
            return Ok(m.clone());
        }
        let options = EngineOptions {
            threads: self
                .env
                .var("PINCER_THREADS")
                .and_then(|t| t.parse().ok())
                .filter(|t| *t > 0),
            context_window: u32::try_from(spec.context_tokens.unwrap_or(spec.context_window))
                .unwrap_or(u32::MAX),
            max_tokens: u32::try_from(spec.max_tokens).unwrap_or(u32::MAX),
            kv_cache: self
                .env
                .var("PINCER_KV_CACHE")
                .and_then(|v| KvCache::parse(&v))
                .unwrap_or_default(),
        };
        let model = LoadedModel::load(&path, &spec.reference, options).await?;
        loaded.insert(path, model.clone());
        Ok(model)
    }

    async fn model_path(&self, spec: &ModelSpec) -> Result<PathBuf, ProviderError> {
        if let Some(p) = &spec.path {
            return resolve_model_path(p, &self.env).ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "{}: cannot resolve path {p:?} (no HOME or data dir)",
                        spec.reference
                    ),
                )
            });
        }
        if spec.reference == DEFAULT_MODEL {
            return ensure_default(&SMOLLM2, &self.env, self.progress.as_ref())
                .await
                .map_err(|e| ProviderError::new(ErrorKind::ModelNotFound, e.to_string()));
        }
        Err(ProviderError::new(
            ErrorKind::BadRequest,
            format!(
                "{} runs on the embedded engine but has no `path` to a GGUF file \
                 (set it in models.providers.{}.models, or `pincer models pull` one)",
                spec.reference, spec.provider
            ),
        ))
    }
}
