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
use pincer_llm::{
    ChatRequest, Client, ErrorKind, Event, EventStream, ProviderError, ServerReport, Target,
    Timeouts,
};
use pincer_models::{Progress, SMOLLM2, ensure_default, resolve_model_path};
use tokio::sync::Mutex;

use crate::keys::{Credential, Credentials};

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
    credentials: Credentials,
}

impl Providers {
    /// `progress` reports the one-time fetch of the default model.
    pub fn new(env: Env, progress: Arc<dyn Progress>) -> Result<Providers, ProviderError> {
        Ok(Providers {
            env,
            http: Client::new()?,
            loaded: Mutex::new(HashMap::new()),
            progress,
            credentials: Credentials::default(),
        })
    }

    /// Adds the auth profiles (config and the agent's store) to the keys
    /// from the config and the environment.
    pub fn with_credentials(mut self, credentials: Credentials) -> Providers {
        self.credentials = credentials;
        self
    }

    /// Every key `spec`'s provider has, first preferred (none for the
    /// embedded engine and for servers that need none).
    pub fn keys(&self, catalog: &Catalog<'_>, spec: &ModelSpec) -> Vec<Credential> {
        match catalog.provider(&spec.provider) {
            Some(p) if !is_embedded(spec, p) => self.credentials.for_provider(p, &self.env),
            _ => Vec::new(),
        }
    }

    /// How long `spec` may take to start answering, connection and idle limits.
    pub fn timeouts(&self, catalog: &Catalog<'_>, spec: &ModelSpec) -> Timeouts {
        let seconds = catalog
            .provider(&spec.provider)
            .and_then(|p| p.timeout_seconds);
        Timeouts::for_provider(spec.local, seconds)
    }

    /// What `spec`'s server says about the model (HTTP providers only).
    pub async fn probe(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        limit: std::time::Duration,
    ) -> Option<ServerReport> {
        let provider = catalog.provider(&spec.provider)?;
        if is_embedded(spec, provider) {
            return None;
        }
        let mut target = Target::new(spec, provider, &self.env).ok()?;
        if let Some(k) = self.keys(catalog, spec).into_iter().next() {
            target.api_key = Some(k.secret);
        }
        Some(self.http.probe(&target, limit).await)
    }

    /// Whether `spec`'s GGUF is on disk (nothing to download first).
    pub fn embedded_present(&self, spec: &ModelSpec) -> bool {
        self.model_path_if_present(spec).is_ok_and(|p| p.is_file())
    }

    /// Whether `spec` runs on the embedded engine and is in memory now.
    pub async fn embedded_loaded(&self, spec: &ModelSpec) -> bool {
        let Ok(path) = self.model_path_if_present(spec) else {
            return false;
        };
        self.loaded
            .lock()
            .await
            .get(&path)
            .is_some_and(LoadedModel::is_usable)
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
        let key = self.keys(catalog, spec).into_iter().next();
        self.stream_with_key(catalog, spec, session, req, key.as_ref())
            .await
    }

    /// Like `stream`, with this key instead of the provider's first.
    pub async fn stream_with_key(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        session: &str,
        req: &ChatRequest,
        key: Option<&Credential>,
    ) -> Result<AnswerStream, ProviderError> {
        let provider = catalog.provider(&spec.provider).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::BadRequest,
                format!("unknown provider {}", spec.provider),
            )
        })?;
        if is_embedded(spec, provider) {
            let model = self.embedded(spec).await?;
            let mut req = req.clone();
            req.max_tokens = Some(
                req.max_tokens
                    .map_or(spec.max_tokens, |m| m.min(spec.max_tokens)),
            );
            return Ok(AnswerStream::Embedded(model.generate(session, req)));
        }
        let mut target = Target::new(spec, provider, &self.env)?;
        if let Some(k) = key {
            target.api_key = Some(k.secret.clone());
        }
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

    /// The GGUF path of `spec` without fetching anything.
    fn model_path_if_present(&self, spec: &ModelSpec) -> Result<PathBuf, ()> {
        match &spec.path {
            Some(p) => resolve_model_path(p, &self.env).ok_or(()),
            None if spec.reference == DEFAULT_MODEL => SMOLLM2.path(&self.env).ok_or(()),
            None => Err(()),
        }
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

fn is_embedded(spec: &ModelSpec, provider: &pincer_catalog::Provider) -> bool {
    spec.api.or(provider.api) == Some(Api::Embedded)
}
