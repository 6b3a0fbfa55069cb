//! One way to call any model of the catalog: an HTTP server in one of the
//! three dialects, or a GGUF on the embedded engine. Both give the same
//! `Event` stream and the same `ProviderError`s, so the caller (chat, the
//! gateway, failover) never needs to know which one answered.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use pincer_catalog::{Catalog, ModelSpec};
use pincer_config::Env;
use pincer_engine::{EngineOptions, Generation, KvCache, LoadedModel};
use pincer_gguf::{Progress, SMOLLM2, ensure_default, resolve_model_path};
use pincer_llm::{
    ChatRequest, Client, ErrorKind, Event, EventStream, ProviderError, ServerReport, Target,
};
use tokio::sync::Mutex;

use crate::keys::{Credential, Credentials, KeyStatus};

/// Where an embedded model's GGUF is, resolved once for the engine,
/// `models status` and `doctor` alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Gguf {
    /// The configured `path`, resolved (`~/`, or inside the models dir).
    File(PathBuf),
    /// The built-in default model, fetched on first use; here once fetched.
    Default(Option<PathBuf>),
    /// A configured `path` that cannot be resolved (no HOME or data dir).
    Unresolvable(String),
    /// An embedded model without a `path`.
    NoPath,
}

impl Gguf {
    /// The file, when it is known where it is (or would be).
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            Gguf::File(p) | Gguf::Default(Some(p)) => Some(p),
            _ => None,
        }
    }
}

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
    pub(crate) http: Client,
    loaded: Mutex<HashMap<PathBuf, LoadedModel>>,
    progress: Arc<dyn Progress>,
    /// Each agent's auth profiles (its own `auth-profiles.json`).
    credentials: BTreeMap<String, Credentials>,
    /// For an agent without a store of its own: the config's profiles only.
    shared: Credentials,
}

impl Providers {
    /// `progress` reports the one-time fetch of the default model.
    pub fn new(env: Env, progress: Arc<dyn Progress>) -> Result<Providers, ProviderError> {
        Ok(Providers {
            env,
            http: Client::new()?,
            loaded: Mutex::new(HashMap::new()),
            progress,
            credentials: BTreeMap::new(),
            shared: Credentials::default(),
        })
    }

    /// The auth profiles of `agent` (the config's and the agent's own store),
    /// tried before the keys from the config and the environment. The first
    /// agent given also stands in for agents that have none.
    pub fn with_credentials(mut self, agent: &str, credentials: Credentials) -> Providers {
        if self.credentials.is_empty() {
            self.shared = credentials.config_only();
        }
        self.credentials.insert(agent.to_string(), credentials);
        self
    }

    /// Every key `agent` has for `spec`'s provider, first preferred (none for
    /// the embedded engine and for servers that need none).
    pub fn keys(&self, catalog: &Catalog<'_>, spec: &ModelSpec, agent: &str) -> Vec<Credential> {
        if spec.is_embedded() {
            return Vec::new();
        }
        let Some(p) = catalog.provider(&spec.provider) else {
            return Vec::new();
        };
        self.credentials
            .get(agent)
            .unwrap_or(&self.shared)
            .for_provider(p, &self.env)
    }

    /// Whether `agent` has a key for `spec`, by the same rule the calls use.
    pub fn key_status(&self, catalog: &Catalog<'_>, spec: &ModelSpec, agent: &str) -> KeyStatus {
        let keys = self.keys(catalog, spec, agent);
        KeyStatus::of(&keys, spec, catalog.provider(&spec.provider))
    }

    /// What `spec`'s server says about the model (HTTP providers only).
    pub async fn probe(
        &self,
        catalog: &Catalog<'_>,
        spec: &ModelSpec,
        agent: &str,
        limit: std::time::Duration,
    ) -> Option<ServerReport> {
        if spec.is_embedded() {
            return None;
        }
        let provider = catalog.provider(&spec.provider)?;
        let key = self.keys(catalog, spec, agent).into_iter().next();
        let target = Target::new(spec, provider, key.map(|k| k.secret)).ok()?;
        Some(self.http.probe(&target, limit).await)
    }

    /// Where `spec`'s GGUF is (embedded models only).
    pub fn gguf(&self, spec: &ModelSpec) -> Gguf {
        match &spec.path {
            Some(p) => resolve_model_path(p, &self.env)
                .map_or_else(|| Gguf::Unresolvable(p.clone()), Gguf::File),
            None if spec.is_default_model() => Gguf::Default(SMOLLM2.path(&self.env)),
            None => Gguf::NoPath,
        }
    }

    /// Whether `spec`'s GGUF is on disk (nothing to download first).
    pub fn embedded_present(&self, spec: &ModelSpec) -> bool {
        self.gguf(spec).path().is_some_and(|p| p.is_file())
    }

    /// Whether `spec` runs on the embedded engine and is in memory now.
    pub async fn embedded_loaded(&self, spec: &ModelSpec) -> bool {
        let gguf = self.gguf(spec);
        let Some(path) = gguf.path() else {
            return false;
        };
        self.loaded
            .lock()
            .await
            .get(path)
            .is_some_and(LoadedModel::is_usable)
    }

    /// Starts an answer from `spec`, calling with `key` (HTTP providers).
    /// `session` decides whose turn it is when several sessions share one
    /// embedded model.
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
        if spec.is_embedded() {
            let model = self.embedded(spec).await?;
            let mut req = req.clone();
            req.max_tokens = Some(req.output_cap(spec.max_tokens));
            return Ok(AnswerStream::Embedded(model.generate(session, req)));
        }
        let target = Target::new(spec, provider, key.map(|k| k.secret.clone()))?;
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
            context_window: u32::try_from(spec.budget()).unwrap_or(u32::MAX),
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
        match self.gguf(spec) {
            Gguf::File(p) => Ok(p),
            Gguf::Default(_) => ensure_default(&SMOLLM2, &self.env, self.progress.as_ref())
                .await
                .map_err(|e| ProviderError::new(ErrorKind::ModelNotFound, e.to_string())),
            Gguf::Unresolvable(p) => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "{}: cannot resolve path {p:?} (no HOME or data dir)",
                    spec.reference
                ),
            )),
            Gguf::NoPath => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "{} runs on the embedded engine but has no `path` to a GGUF file \
                     (set it in models.providers.{}.models, or `pincer models pull` one)",
                    spec.reference, spec.provider
                ),
            )),
        }
    }
}
