//! `pincer gateway`: serves the agents over OpenAI's HTTP API until Ctrl-C
//! or SIGTERM, then lets the answers in flight finish.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pincer_config::{Env, Loaded};
use pincer_gateway::{Auth, Gateway, Settings};
use pincer_router::{Router, state_path};

use super::progress::Bar;
use crate::cli::GatewayArgs;

/// How long a shutdown waits for answers in flight before it stops anyway.
const DRAIN: Duration = Duration::from_secs(30);

pub fn run(loaded: Loaded, env: &Env, args: &GatewayArgs) -> Result<ExitCode> {
    init_logging();
    let settings = Settings::resolve(&loaded.config, env, args.port, args.bind.as_deref())?;
    let state_dir = env
        .state_dir()
        .context("no state dir: set OPENCLAW_STATE_DIR or HOME")?;
    // Every agent calls with its own keys (its own auth-profiles.json).
    let agents = pincer_catalog::agents(&loaded.config);
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    let providers = super::providers(&loaded, env, &ids, Arc::new(Bar::new()))?;
    let router = Router::new(providers, Some(state_path(&state_dir)))
        .with_notices(|n| tracing::info!("{n}"));
    // The config and catalog serve until the process ends.
    let loaded: &'static Loaded = Box::leak(Box::new(loaded));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let gw = Gateway::new(loaded, settings, router, &state_dir)?;
        let unknown = gw.unknown_providers(&args.keep_warm);
        if !unknown.is_empty() {
            anyhow::bail!(
                "--keep-warm: no provider {} in the config",
                unknown.join(", ")
            );
        }
        let listeners = pincer_gateway::listen(&gw.settings)
            .await
            .with_context(|| format!("cannot listen on {}", gw.settings.addr))?;
        let auth = match &gw.settings.auth {
            Auth::None => "none (loopback only)",
            Auth::Secret(_) => "bearer token",
            Auth::TrustedProxy => "trusted proxy",
        };
        let urls: Vec<String> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| format!("http://{a}"))
            .collect();
        eprintln!(
            "pincer gateway listening on {} (auth: {auth}; sessions in {})",
            urls.join(" and "),
            state_dir.display()
        );
        if let Some(first) = urls.first() {
            // The web chat asks for the token itself: it is never printed.
            eprintln!(
                "web chat: {first}/   OpenClaw's clients: OPENCLAW_GATEWAY_URL={}",
                first.replacen("http://", "ws://", 1)
            );
        }
        tokio::spawn(gw.preload());
        for line in pincer_channels::start(gw.runtime(), &loaded.config, env, &state_dir) {
            eprintln!("{line}");
        }
        for warm in &args.keep_warm {
            tokio::spawn(gw.keep_warm(warm.clone()));
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(pincer_gateway::serve(gw, listeners, async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        shutdown_signal().await;
        eprintln!(
            "pincer gateway: stopping; finishing the answers in flight (at most {} s)",
            DRAIN.as_secs()
        );
        let _ = stop_tx.send(true);
        match tokio::time::timeout(DRAIN, server).await {
            Ok(Ok(result)) => result.context("the server failed")?,
            Ok(Err(e)) => return Err(anyhow::anyhow!("the server task failed: {e}")),
            Err(_) => eprintln!(
                "pincer gateway: answers still running after {} s were cut",
                DRAIN.as_secs()
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PINCER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
