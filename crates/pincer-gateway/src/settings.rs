//! Where the gateway listens and who may call it: `--port`/`--bind` over
//! `OPENCLAW_GATEWAY_PORT` over `gateway.*`, and the auth mode with its secret.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pincer_config::{Config, Env};
use secrecy::SecretString;

/// OpenClaw's default port.
pub const DEFAULT_PORT: u16 = 18789;

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// A bearer token or password (both are sent as `Authorization: Bearer`).
    Secret(SecretString),
    /// A reverse proxy authenticates; Pincer trusts what reaches it.
    TrustedProxy,
}

/// How many failed attempts one address gets before it is locked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub max_attempts: u32,
    pub window: Duration,
    pub lockout: Duration,
    /// Loopback callers are never locked out (OpenClaw's default).
    pub exempt_loopback: bool,
}

impl Default for RateLimit {
    /// OpenClaw's defaults: 10 failures a minute lock an address out for 5 minutes.
    fn default() -> Self {
        RateLimit {
            max_attempts: 10,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
            exempt_loopback: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    /// `loopback` listens on ::1 too, as OpenClaw does, where the host has IPv6.
    pub ipv6_loopback: bool,
    pub auth: Auth,
    pub rate_limit: RateLimit,
    pub chat_completions: bool,
    pub responses: bool,
    /// How long a stream may be silent before a keep-alive comment is sent,
    /// so a proxy with a read timeout does not cut a slow model's answer.
    pub keep_alive: Duration,
    /// Tools `POST /tools/invoke` refuses (lowercased).
    pub http_tool_deny: Vec<String>,
}

/// Keep-alive comments every 15 s: well inside the 60 s read timeout of
/// nginx and most proxies.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("--bind {0:?} is not loopback, lan or an IP address")]
    BadBind(String),
    #[error("gateway.customBindHost {0:?} is not an IP address")]
    BadHost(String),
    #[error("OPENCLAW_GATEWAY_PORT {0:?} is not a port number")]
    BadPort(String),
    #[error(
        "refusing to listen on {0} without auth: anyone on the network could use your models. \
         Set gateway.auth.token (or OPENCLAW_GATEWAY_TOKEN) to a long random string, or use --bind loopback"
    )]
    OpenBind(SocketAddr),
    #[error(
        "gateway.auth.mode is {0:?} but no {0} is set (gateway.auth.{0} or OPENCLAW_GATEWAY_{1})"
    )]
    MissingSecret(&'static str, &'static str),
    #[error(
        "both a gateway token and a gateway password are set: set gateway.auth.mode to \"token\" \
         or \"password\" to say which one callers must send"
    )]
    AmbiguousSecret,
}

impl Settings {
    pub fn resolve(
        config: &Config,
        env: &Env,
        port: Option<u16>,
        bind: Option<&str>,
    ) -> Result<Settings, SettingsError> {
        let g = &config.gateway;
        let port = match port {
            Some(p) => p,
            None => match env.var("OPENCLAW_GATEWAY_PORT") {
                Some(v) => v.parse().map_err(|_| SettingsError::BadPort(v))?,
                None => g
                    .port
                    .as_ref()
                    .and_then(|p| u16::try_from(p.value).ok())
                    .unwrap_or(DEFAULT_PORT),
            },
        };
        let bind = bind.or(g.bind.as_ref().map(|b| b.value.as_str()));
        let ip = match bind {
            None | Some("loopback" | "auto" | "tailnet") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some("lan") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some("custom") => {
                let host = g.custom_bind_host.as_ref().map_or("", |h| h.value.as_str());
                host.parse()
                    .map_err(|_| SettingsError::BadHost(host.to_string()))?
            }
            Some(other) => other
                .parse()
                .map_err(|_| SettingsError::BadBind(other.to_string()))?,
        };
        let addr = SocketAddr::new(ip, port);
        let auth = auth(config, env)?;
        if !ip.is_loopback() && matches!(auth, Auth::None) {
            return Err(SettingsError::OpenBind(addr));
        }
        Ok(Settings {
            addr,
            ipv6_loopback: matches!(bind, None | Some("loopback")),
            auth,
            rate_limit: rate_limit(&g.rate_limit),
            // On unless the config turns them off (OpenClaw has them off by
            // default; serving them is what `pincer gateway` is for).
            chat_completions: g.chat_completions.unwrap_or(true),
            responses: g.responses.unwrap_or(true),
            keep_alive: KEEP_ALIVE,
            http_tool_deny: pincer_tools::policy::http_deny(&g.tools_allow, &g.tools_deny),
        })
    }
}

fn auth(config: &Config, env: &Env) -> Result<Auth, SettingsError> {
    let g = &config.gateway;
    let token = g
        .token
        .as_ref()
        .map(|k| k.secret.clone())
        .or_else(|| env.var("OPENCLAW_GATEWAY_TOKEN").map(SecretString::from));
    let password = g
        .password
        .as_ref()
        .map(|k| k.secret.clone())
        .or_else(|| env.var("OPENCLAW_GATEWAY_PASSWORD").map(SecretString::from));
    Ok(match g.auth_mode.as_ref().map(|m| m.value.as_str()) {
        Some("none") => Auth::None,
        Some("trusted-proxy") => Auth::TrustedProxy,
        Some("password") => {
            Auth::Secret(password.ok_or(SettingsError::MissingSecret("password", "PASSWORD"))?)
        }
        Some(_) => Auth::Secret(token.ok_or(SettingsError::MissingSecret("token", "TOKEN"))?),
        None => match (token, password) {
            (Some(_), Some(_)) => return Err(SettingsError::AmbiguousSecret),
            (Some(s), None) | (None, Some(s)) => Auth::Secret(s),
            (None, None) => Auth::None,
        },
    })
}

fn rate_limit(c: &pincer_config::RateLimitConfig) -> RateLimit {
    let d = RateLimit::default();
    RateLimit {
        max_attempts: c
            .max_attempts
            .map_or(d.max_attempts, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        window: c.window_ms.map_or(d.window, Duration::from_millis),
        lockout: c.lockout_ms.map_or(d.lockout, Duration::from_millis),
        exempt_loopback: c.exempt_loopback.unwrap_or(d.exempt_loopback),
    }
}
