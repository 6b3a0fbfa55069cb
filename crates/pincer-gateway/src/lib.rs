//! `pincer gateway`: OpenAI's HTTP API in front of the user's agents.
//!
//! Every request is an agent turn: `plan` picks the agent, its candidate
//! models and the session from the request; `turn` hands it to the agent
//! runtime (`pincer_agent`: history, commands, compaction, one turn at a
//! time per session, the transcript) and counts it; `surface` is the one handler path
//! of both OpenAI surfaces, `chat` and `responses` their typed wire formats
//! (`wire` what they share), streamed or whole; `models`, `health` and
//! `metrics` answer the rest. Auth guards everything but the health checks.

mod auth;
mod chat;
mod error;
mod health;
mod metrics;
mod models;
mod plan;
mod responses;
mod settings;
mod surface;
mod tools;
mod turn;
mod warm;
mod webchat;
mod wire;
mod ws;

use std::path::Path;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use pincer_agent::Runtime;
use pincer_catalog::{AgentModels, Catalog, agents, candidate_chain};
use pincer_config::Loaded;
use pincer_router::Router;

pub use error::ApiError;
pub use settings::{Auth, DEFAULT_PORT, RateLimit, Settings, SettingsError};
pub use warm::KeepWarm;

/// Requests larger than this are refused (OpenClaw's limit).
pub const MAX_BODY: usize = 20 * 1024 * 1024;

/// Everything the routes share. Lives as long as the process.
pub struct Gateway {
    pub settings: Settings,
    /// The config it serves (`config.get` shows it, secrets redacted).
    loaded: &'static Loaded,
    /// The agents, their models and sessions: every turn goes through it.
    rt: Runtime<'static>,
    failures: auth::Failures,
    metrics: metrics::Metrics,
    last_used: warm::LastUsed,
    readiness: health::Readiness,
    started: Instant,
    /// Runs started over OpenClaw's WebSocket protocol, and their events.
    ws: ws::Runs,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the config defines no agent")]
    NoAgent,
    #[error(transparent)]
    Runtime(#[from] pincer_agent::AgentError),
}

impl Gateway {
    /// Builds the shared state once; it is leaked on purpose, as it serves
    /// until the process ends and every request borrows from it.
    pub fn new(
        loaded: &'static Loaded,
        settings: Settings,
        router: Router,
        state_dir: &Path,
    ) -> Result<&'static Gateway, GatewayError> {
        if agents(&loaded.config).is_empty() {
            return Err(GatewayError::NoAgent);
        }
        let rt = Runtime::new(
            &loaded.config,
            router,
            state_dir,
            maintenance(&loaded.config),
        )?;
        Ok(Box::leak(Box::new(Gateway {
            settings,
            loaded,
            rt,
            failures: auth::Failures::default(),
            metrics: metrics::Metrics::default(),
            last_used: warm::LastUsed::default(),
            readiness: health::Readiness::default(),
            started: Instant::now(),
            ws: ws::Runs::default(),
        })))
    }

    /// Loads the default agent's primary when it runs on the embedded
    /// engine, so the first request does not wait for it (and `/readyz`
    /// turns ready once it is in memory).
    pub async fn preload(&'static self) {
        let (chain, _) = candidate_chain(self.rt.catalog(), self.rt.default_agent());
        let Some(spec) = chain.first() else { return };
        if !spec.is_embedded() {
            return;
        }
        match self.rt.router().providers().embedded(spec).await {
            Ok(_) => tracing::info!("{} is loaded", spec.reference),
            Err(e) => tracing::warn!("cannot preload {}: {e}", spec.reference),
        }
    }

    /// The agent runtime behind every turn.
    pub fn runtime(&self) -> &Runtime<'static> {
        &self.rt
    }

    /// Session stores by agent, for `pincer sessions`.
    pub fn sessions(&self) -> &std::collections::HashMap<String, pincer_sessions::SessionStore> {
        self.rt.stores()
    }

    fn catalog(&self) -> &Catalog<'static> {
        self.rt.catalog()
    }

    fn default_agent(&self) -> &AgentModels {
        self.rt.default_agent()
    }
}

/// The routes, with auth on all but `/healthz` and `/readyz`.
pub fn app(gw: &'static Gateway) -> axum::Router {
    let guarded = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(surface::serve::<chat::ChatBody>),
        )
        .route(
            "/v1/responses",
            post(surface::serve::<responses::ResponsesBody>),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::one))
        .route("/metrics", get(metrics::render))
        .route(
            "/tools/invoke",
            post(tools::invoke).layer(DefaultBodyLimit::max(tools::MAX_BODY)),
        )
        .layer(axum::middleware::from_fn_with_state(gw, auth::require));
    axum::Router::new()
        // OpenClaw's WebSocket protocol (its `connect` carries the auth),
        // and the web chat, which asks for the token itself.
        .route("/", get(ws::root))
        .route("/webchat/{file}", get(webchat::asset))
        .route("/healthz", get(health::live))
        .route("/health", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/ready", get(health::ready))
        .merge(guarded)
        .layer(axum::middleware::from_fn_with_state(gw, metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gw)
}

/// How often the session indexes' running totals are written.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Gateway {
    /// Writes every session index whose totals changed.
    pub async fn flush_sessions(&'static self) {
        let flushed = tokio::task::spawn_blocking(move || self.rt.flush()).await;
        if let Err(e) = flushed {
            tracing::error!("writing the session indexes failed: {e}");
        }
    }
}

/// Binds the listeners the settings ask for: the address itself and, for a
/// loopback gateway, ::1 on the same port. A host without IPv6 just skips it.
pub async fn listen(settings: &Settings) -> std::io::Result<Vec<tokio::net::TcpListener>> {
    let first = tokio::net::TcpListener::bind(settings.addr).await?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    if settings.ipv6_loopback {
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        match tokio::net::TcpListener::bind(v6).await {
            Ok(l) => listeners.push(l),
            Err(e) => tracing::warn!("not listening on {v6}: {e}"),
        }
    }
    Ok(listeners)
}

/// Serves on every listener until `shutdown` resolves, then lets the turns
/// in flight finish and writes the session indexes.
pub async fn serve(
    gw: &'static Gateway,
    listeners: Vec<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut stop = stop_rx.clone();
            tokio::spawn(serve_one(gw, listener, async move {
                let _ = stop.wait_for(|s| *s).await;
            }))
        })
        .collect();
    let flusher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tick.tick().await;
            gw.flush_sessions().await;
        }
    });
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut served = Ok(());
    for server in servers {
        let result = server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if served.is_ok() {
            served = result;
        }
    }
    flusher.abort();
    gw.flush_sessions().await;
    served
}

async fn serve_one(
    gw: &'static Gateway,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Stream chunks are small: without TCP_NODELAY, Nagle's algorithm holds
    // each one back until the client's delayed ACK (tens of milliseconds).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(
        listener,
        app(gw).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// `session.maintenance` over OpenClaw's defaults: how every writer of the
/// session stores (the gateway, `pincer chat --session`) prunes.
pub fn maintenance(config: &pincer_config::Config) -> pincer_sessions::Maintenance {
    let c = &config.session.maintenance;
    let d = pincer_sessions::Maintenance::default();
    pincer_sessions::Maintenance {
        enforce: c.enforce.unwrap_or(d.enforce),
        prune_after: c.prune_after.unwrap_or(d.prune_after),
        max_entries: c
            .max_entries
            .map_or(d.max_entries, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    }
}
