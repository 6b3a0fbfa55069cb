//! The local-model troubleshooting list, run on its own: each problem found
//! becomes a `Finding` that says what is wrong, where, and how to fix it.

use pincer_catalog::AgentModels;
use pincer_config::{Config, Env};
use pincer_llm::{ErrorKind, LoadState, ServerKind, ServerReport};
use serde::Serialize;

use crate::status::ModelStatus;
use pincer_router::KeyStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable id for scripts: `server.unreachable`, `context.too_large`, …
    pub check: &'static str,
    /// The model, provider or config key concerned.
    pub subject: String,
    pub message: String,
    pub fix: String,
}

impl Finding {
    fn new(
        severity: Severity,
        check: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            check,
            subject: subject.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Everything wrong with one model, from its status.
pub fn model_findings(s: &ModelStatus) -> Vec<Finding> {
    let mut out = Vec::new();
    let r = &s.reference;
    // Ollama's OpenAI endpoint: no context size, streamed tool calls lost.
    let ollama_port = s
        .base_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.port())
        == Some(11434);
    if s.api == "openai-completions" && (ollama_port || s.provider == "ollama") {
        out.push(Finding::new(
            Severity::Warning,
            "ollama.openai_endpoint",
            r,
            "this is Ollama's OpenAI-compatible endpoint: it ignores the context size (Ollama's small default cuts long chats) and loses streamed tool calls",
            format!(
                "set models.providers.{}.api to \"ollama\" (Ollama's own API; the /v1 on baseUrl may stay)",
                s.provider
            ),
        ));
    }
    if let KeyStatus::Missing { env } = &s.keys {
        let how = match env.as_slice() {
            [] => format!("set models.providers.{}.apiKey", s.provider),
            vars => format!(
                "export {}=… (or set models.providers.{}.apiKey)",
                vars[0], s.provider
            ),
        };
        out.push(Finding::new(
            Severity::Error,
            "key.missing",
            r,
            format!("no API key for {}", s.provider),
            how,
        ));
    }
    if s.max_tokens >= s.context_window {
        out.push(Finding::new(
            Severity::Error,
            "max_tokens.too_large",
            r,
            format!(
                "maxTokens {} leaves no room for the prompt in a context of {}",
                s.max_tokens, s.context_window
            ),
            "set maxTokens well below contextWindow (a quarter of it is common)",
        ));
    }
    for c in &s.cooldowns {
        let what = match c.scope {
            "provider" => format!("its server ({})", c.name),
            "key" => format!("its key {}", c.name),
            _ => "the model".to_string(),
        };
        out.push(Finding::new(
            Severity::Warning,
            "cooldown.active",
            r,
            format!(
                "{what} is cooling down for {} s after {}; the fallbacks answer meanwhile",
                c.seconds_left, c.reason
            ),
            "nothing to do if the cause is gone: the next turn after the cooldown tries it again",
        ));
    }
    if let Some(f) = &s.file
        && !f.present
    {
        if f.fetched_on_first_use {
            out.push(Finding::new(
                Severity::Info,
                "embedded.not_fetched",
                r,
                "the default model is not downloaded yet; the first chat fetches it (about 100 MB)",
                "run `pincer chat -m hi` once while online",
            ));
        } else {
            let path = f.path.clone().unwrap_or_default();
            out.push(Finding::new(
                Severity::Error,
                "embedded.missing_file",
                r,
                format!("the GGUF file {path} does not exist"),
                "fix `path`, or download it with `pincer models pull <owner/repo/file.gguf>`",
            ));
        }
    }
    if let Some(server) = &s.server {
        out.extend(server_findings(s, server));
    }
    out
}

fn server_findings(s: &ModelStatus, server: &ServerReport) -> Vec<Finding> {
    let r = &s.reference;
    let base = s.base_url.clone().unwrap_or_default();
    let curl = format!("curl -s {}/models", base.trim_end_matches('/'));
    let mut out = Vec::new();
    if let Some(e) = &server.error {
        let (check, message, fix) = match e.kind {
            ErrorKind::Auth => (
                "key.refused",
                format!("{} refused the key: {}", s.provider, e.message),
                format!(
                    "check the key for {} (`pincer models status` names where it comes from)",
                    s.provider
                ),
            ),
            ErrorKind::Timeout => (
                "server.timeout",
                format!("{base} did not answer in time: {}", e.message),
                format!("check that the server is not stuck, then try: {curl}"),
            ),
            _ if s.api == "ollama" => (
                "server.unreachable",
                format!("cannot reach Ollama at {base}: {}", e.message),
                format!(
                    "start it with `ollama serve` (or correct models.providers.{}.baseUrl, e.g. http://127.0.0.1:11434), then try: curl -s {}/api/tags",
                    s.provider,
                    base.trim_end_matches('/').trim_end_matches("/v1")
                ),
            ),
            _ => (
                "server.unreachable",
                format!("cannot reach {base}: {}", e.message),
                format!(
                    "start the server (or correct models.providers.{}.baseUrl, which must end in /v1), then try: {curl}",
                    s.provider
                ),
            ),
        };
        out.push(Finding::new(Severity::Error, check, r, message, fix));
        return out;
    }
    if server.listed == Some(false) {
        let id = r.split_once('/').map_or(r.as_str(), |(_, m)| m);
        let listed = server.models.iter().take(8).cloned().collect::<Vec<_>>();
        let hint = pincer_config::did_you_mean(id, server.models.iter().map(String::as_str))
            .map(|m| format!("use the id {m:?}"))
            .unwrap_or_else(|| format!("use one of: {}", listed.join(", ")));
        out.push(Finding::new(
            Severity::Error,
            "model.not_listed",
            r,
            format!("the server at {base} does not list a model {id:?}"),
            format!("the id must match exactly: {hint}; or load the model on the server"),
        ));
    }
    match server.state {
        Some(LoadState::Cold) => out.push(Finding::new(
            Severity::Warning,
            "model.cold",
            r,
            "the model is not loaded; the first request waits while it loads",
            load_hint(server.server, r),
        )),
        Some(LoadState::Loading) => out.push(Finding::new(
            Severity::Info,
            "model.loading",
            r,
            "the server is loading the model right now",
            "wait for the load to finish; Pincer waits for it too (up to the provider's timeoutSeconds)",
        )),
        _ => {}
    }
    if let Some(most) = server.max_context
        && s.context_window > most
    {
        out.push(Finding::new(
            Severity::Warning,
            "context.over_trained",
            r,
            format!(
                "contextWindow is {} but the model takes at most {most} tokens (its training, or its Modelfile): past that its answers degrade",
                s.context_window
            ),
            format!("set contextWindow (or contextTokens) to at most {most}"),
        ));
    }
    if let Some(caps) = &server.capabilities {
        let has = |c: &str| caps.iter().any(|x| x == c);
        if !has("completion") {
            out.push(Finding::new(
                Severity::Error,
                "model.not_chat",
                r,
                format!(
                    "the server says the model cannot chat (it can: {})",
                    caps.join(", ")
                ),
                "pick a chat model; embedding models cannot answer",
            ));
        } else if !has("tools") && s.tool_call != Some(false) {
            out.push(Finding::new(
                Severity::Info,
                "model.no_tools",
                r,
                "the server says the model cannot call tools: the agent works without them on it",
                format!(
                    "set compat.supportsTools: false on {r} to skip the refused first try, or pick a model with tools"
                ),
            ));
        }
    }
    if let Some(limit) = server.context_limit {
        if s.context_window > limit {
            out.push(Finding::new(
                Severity::Error,
                "context.too_large",
                r,
                format!(
                    "contextWindow is {} but the server runs the model with {limit} tokens: long chats will fail with context errors",
                    s.context_window
                ),
                format!(
                    "set contextWindow to {limit}, or give the server a larger context ({})",
                    context_hint(server.server)
                ),
            ));
        }
        if s.max_tokens >= limit {
            out.push(Finding::new(
                Severity::Error,
                "max_tokens.too_large",
                r,
                format!(
                    "maxTokens {} does not fit the {limit}-token context the server runs",
                    s.max_tokens
                ),
                format!("set maxTokens well below {limit}"),
            ));
        }
    }
    out
}

fn load_hint(kind: Option<ServerKind>, reference: &str) -> String {
    let id = reference.split_once('/').map_or(reference, |(_, m)| m);
    match kind {
        Some(ServerKind::LmStudio) => format!("load it ahead with `lms load {id}`, or keep LM Studio's JIT loading and expect a wait"),
        Some(ServerKind::Ollama) => format!("warm it with `ollama run {id} \"\"`, and keep it loaded with OLLAMA_KEEP_ALIVE"),
        Some(ServerKind::LlamaCpp) => "llama-server woke from sleep mode on the next request; raise --sleep-idle-seconds to keep it loaded".into(),
        _ => "load the model on the server ahead of time".into(),
    }
}

fn context_hint(kind: Option<ServerKind>) -> &'static str {
    match kind {
        Some(ServerKind::LlamaCpp) => "llama-server -c N; with --parallel P each request gets N/P",
        Some(ServerKind::LmStudio) => {
            "the context length in LM Studio's load settings, or `lms load --context-length N`"
        }
        Some(ServerKind::Ollama) => "num_ctx in the Modelfile or OLLAMA_CONTEXT_LENGTH",
        Some(ServerKind::Vllm) => "vllm serve --max-model-len N",
        _ => "see the server's context-length setting",
    }
}

/// Servers whose model lists could not be read (model discovery).
pub fn discovery_findings(found: &[pincer_catalog::discovery::Discovery]) -> Vec<Finding> {
    found
        .iter()
        .filter_map(|d| {
            let e = d.error.as_ref()?;
            let kept = if d.models.is_empty() {
                "its models are unknown until it answers".to_string()
            } else {
                format!("the {} model(s) it listed before are used", d.models.len())
            };
            Some(Finding::new(
                Severity::Warning,
                "discovery.failed",
                d.provider.clone(),
                format!(
                    "cannot list the models of {} at {}: {e}; {kept}",
                    d.provider, d.base_url
                ),
                format!(
                    "start the server, or give models.providers.{}.models in the config",
                    d.provider
                ),
            ))
        })
        .collect()
}

/// Problems with an agent's chain as a whole.
pub fn chain_findings(agent: &AgentModels, chain: &[&ModelStatus], replace: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let subject = format!("agent {}", agent.id);
    if !chain.is_empty() && chain.iter().all(|s| s.local) {
        let why = if replace {
            "models.mode is \"replace\" and no fallback is a hosted model"
        } else if agent.fallbacks.is_empty() {
            "there are no fallbacks"
        } else {
            "every fallback is local too"
        };
        out.push(Finding::new(
            Severity::Warning,
            "fallback.no_hosted",
            subject.clone(),
            format!("no hosted fallback: {why}, so when the local server is down nothing answers"),
            "add a hosted model to agents.defaults.model.fallbacks (e.g. \"anthropic/claude-sonnet-4-5\") and its key",
        ));
    }
    if let Some(primary) = chain.first()
        && primary.local
        && let Some(why) = weak_model(
            &primary.reference,
            primary.file.as_ref().and_then(|f| f.path.as_deref()),
        )
    {
        out.push(Finding::new(
            Severity::Warning,
            "model.weak_primary",
            primary.reference.clone(),
            format!("the primary is {why}: such models follow instructions injected in messages, web pages or files much more easily"),
            "use a larger, less quantized model as primary for agents that read untrusted content or use tools; keep tools narrow",
        ));
    }
    out
}

/// "very small (135M parameters)" or "heavily quantized (Q2_K)", from the
/// names a model goes by.
fn weak_model(reference: &str, path: Option<&str>) -> Option<String> {
    let names = format!("{reference} {}", path.unwrap_or_default()).to_ascii_lowercase();
    if let Some(b) = parameters_in_billions(&names)
        && b < 7.0
    {
        let shown = if b < 1.0 {
            format!("{}M", (b * 1000.0).round())
        } else {
            format!("{b}B")
        };
        return Some(format!("very small ({shown} parameters)"));
    }
    ["iq1", "iq2", "iq3", "q2_", "q3_", "q2k", "q3k"]
        .iter()
        .find(|q| names.contains(*q))
        .map(|q| format!("heavily quantized ({}…)", q.to_ascii_uppercase()))
}

/// `135m` → 0.135, `7b` → 7, `1.5b` → 1.5: the first size token in the names.
fn parameters_in_billions(names: &str) -> Option<f64> {
    names
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter_map(|token| {
            let (num, scale) = if let Some(n) = token.strip_suffix('b') {
                (n, 1.0)
            } else {
                (token.strip_suffix('m')?, 0.001)
            };
            let n: f64 = num.parse().ok()?;
            (n > 0.0).then_some(n * scale)
        })
        .next()
}

/// The gateway's auth must be unambiguous, and a gateway that listens
/// beyond loopback must ask for a token or password.
pub fn gateway_findings(config: &Config, env: &Env) -> Vec<Finding> {
    let g = &config.gateway;
    let mode = g.auth_mode.as_ref().map(|m| m.value.as_str());
    let has_token = g.token.is_some() || env.var("OPENCLAW_GATEWAY_TOKEN").is_some();
    let has_password = g.password.is_some() || env.var("OPENCLAW_GATEWAY_PASSWORD").is_some();
    let mut findings = Vec::new();
    if mode.is_none() && has_token && has_password {
        findings.push(Finding::new(
            Severity::Error,
            "gateway.auth_ambiguous",
            "gateway.auth.mode",
            "both a gateway token and a gateway password are set and gateway.auth.mode does not say which callers must send: the gateway will not start",
            "set gateway.auth.mode to \"token\" or \"password\", or remove the one you do not use",
        ));
    }
    let bind = g.bind.as_ref().map_or("loopback", |b| b.value.as_str());
    if bind == "loopback" {
        return findings;
    }
    let open =
        mode == Some("none") || (mode != Some("trusted-proxy") && !has_token && !has_password);
    if !open {
        return findings;
    }
    let at = g
        .bind
        .as_ref()
        .and_then(|b| b.loc.as_ref())
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    findings.push(Finding::new(
        Severity::Error,
        "gateway.bind_no_auth",
        "gateway.bind",
        format!(
            "the gateway binds to {bind:?}{at} without auth: anyone on the network can use your models and sessions"
        ),
        "set gateway.auth.mode to \"token\" with gateway.auth.token (or OPENCLAW_GATEWAY_TOKEN), or bind to \"loopback\"",
    ));
    findings
}

/// The chat apps: a token that is missing, a webhook Telegram cannot use,
/// who may write to the agent, and what the gateway last saw (a refused
/// token, a logged-out WhatsApp).
pub fn channel_findings(config: &Config, env: &Env) -> Vec<Finding> {
    use pincer_channels::status::{Link, StatusFile};
    use pincer_channels::telegram::{self, Webhook};
    use pincer_config::{DmPolicy, DmScope};
    let mut out = Vec::new();
    let status = env
        .state_dir()
        .and_then(|dir| StatusFile::read(&dir).ok())
        .unwrap_or_default();
    let mut access = Vec::new();
    if let Some(t) = config
        .channels
        .telegram
        .as_ref()
        .filter(|t| t.access.enabled != Some(false))
    {
        access.push(("telegram", &t.access));
        if let Err(e) = telegram::token(t, env) {
            out.push(Finding::new(
                Severity::Error,
                "channel.token_missing",
                "channels.telegram.botToken",
                format!("Telegram is configured but has {e}"),
                "create a bot with @BotFather and put its token in channels.telegram.botToken (or tokenFile, or TELEGRAM_BOT_TOKEN)",
            ));
        }
        if let Some(url) = &t.webhook_url {
            match &t.webhook_secret {
                None => out.push(Finding::new(
                    Severity::Error,
                    "channel.webhook_secret",
                    "channels.telegram.webhookSecret",
                    "webhookUrl is set without webhookSecret: anyone could post updates, so Pincer long-polls instead",
                    "set channels.telegram.webhookSecret (1-256 of A-Z a-z 0-9 _ -)",
                )),
                Some(k) if !Webhook::secret_is_valid(secrecy::ExposeSecret::expose_secret(&k.secret)) => {
                    out.push(Finding::new(
                        Severity::Error,
                        "channel.webhook_secret",
                        "channels.telegram.webhookSecret",
                        "Telegram refuses this webhookSecret: it takes 1-256 characters of A-Z a-z 0-9 _ -",
                        "choose a secret of letters, digits, _ and -",
                    ));
                }
                Some(_) => {}
            }
            if !url.value.starts_with("https://") {
                out.push(Finding::new(
                    Severity::Error,
                    "channel.webhook_unreachable",
                    "channels.telegram.webhookUrl",
                    format!("Telegram delivers webhooks to https URLs only, not {}", url.value),
                    "put the webhook listener behind HTTPS (a reverse proxy or tunnel) and give that https URL",
                ));
            }
        }
    }
    if let Some(w) = config
        .channels
        .whatsapp
        .as_ref()
        .filter(|w| w.access.enabled != Some(false))
    {
        access.push(("whatsapp", &w.access));
        let dir = env
            .state_dir()
            .map(|d| pincer_channels::whatsapp::auth_dir(&d, Some(w)));
        if dir.is_some_and(|d| !pincer_channels::whatsapp::is_linked(&d)) {
            out.push(Finding::new(
                Severity::Warning,
                "channel.whatsapp_unlinked",
                "channels.whatsapp",
                "WhatsApp is configured but no phone is linked: the gateway will not answer in it",
                "run `pincer channels login whatsapp` and scan the QR code with WhatsApp (Settings → Linked devices)",
            ));
        }
    }
    let mut shared_told = false;
    for (name, a) in &access {
        let policy = a.dm_policy.unwrap_or(DmPolicy::Pairing);
        if policy == DmPolicy::Open {
            out.push(Finding::new(
                Severity::Warning,
                "channel.dm_open",
                format!("channels.{name}.dmPolicy"),
                "dmPolicy is \"open\": anyone who finds the account can use your models and the agent's tools",
                "use \"pairing\" (the default) or \"allowlist\" with allowFrom",
            ));
        }
        let others = match policy {
            DmPolicy::Disabled => false,
            DmPolicy::Allowlist => {
                a.allow_from.len() > 1 || a.allow_from.iter().any(|x| x.trim() == "*")
            }
            DmPolicy::Pairing | DmPolicy::Open => true,
        };
        if others
            && config.session.dm_scope.unwrap_or(DmScope::Main) == DmScope::Main
            && !shared_told
        {
            shared_told = true;
            out.push(Finding::new(
                Severity::Warning,
                "channel.shared_session",
                "session.dmScope",
                format!(
                    "session.dmScope is \"main\" (OpenClaw's default): everyone who may write to the assistant on {name} shares one conversation with you, and can ask it what the others said"
                ),
                "set session.dmScope to \"per-channel-peer\" to give each sender a session of their own",
            ));
        }
        if policy == DmPolicy::Allowlist && a.allow_from.is_empty() {
            out.push(Finding::new(
                Severity::Warning,
                "channel.allowlist_empty",
                format!("channels.{name}.allowFrom"),
                "dmPolicy is \"allowlist\" but allowFrom is empty: only senders approved by pairing are answered",
                "add your own id to allowFrom",
            ));
        }
        let Some(s) = status.channels.get(*name) else {
            continue;
        };
        if s.link == Link::LoggedOut {
            out.push(Finding::new(
                Severity::Error,
                "channel.logged_out",
                format!("channels.{name}"),
                s.detail
                    .clone()
                    .unwrap_or_else(|| format!("{name} is logged out")),
                if *name == "whatsapp" {
                    "link it again: pincer channels login whatsapp"
                } else {
                    "set a valid bot token (from @BotFather) and restart the gateway"
                },
            ));
        } else if let Some(e) = s.last_error.as_ref().filter(|e| e.contains("setWebhook")) {
            out.push(Finding::new(
                Severity::Warning,
                "channel.webhook_unreachable",
                "channels.telegram.webhookUrl",
                e.clone(),
                "check that webhookUrl is a public https address that reaches the webhook listener",
            ));
        }
    }
    out
}

/// The tools: a command tool with no sandbox, one that runs anything
/// unasked, names in the policy that are no tool.
pub fn tool_findings(config: &Config) -> Vec<Finding> {
    tool_findings_with(config, pincer_tools::exec::sandbox())
}

/// [`tool_findings`] on a machine whose sandbox is `sandbox`.
fn tool_findings_with(
    config: &Config,
    sandbox: Result<std::path::PathBuf, String>,
) -> Vec<Finding> {
    use pincer_tools::exec::{Ask, ExecSettings, Security};
    let mut out = Vec::new();
    let agents: Vec<String> = pincer_catalog::agents(config)
        .into_iter()
        .map(|a| a.id)
        .collect();
    let mut warned: Vec<String> = Vec::new();
    for agent in agents {
        let own = pincer_tools::agent_layer(config, &agent);
        let policy = pincer_tools::policy::resolve(&config.tools, Some(&own), "");
        for w in &policy.warnings {
            // The top level's names are told once, not per agent.
            if warned.contains(w) {
                continue;
            }
            warned.push(w.clone());
            out.push(Finding::new(
                Severity::Warning,
                "tools.unknown_name",
                format!("agent {agent}"),
                w.clone(),
                "use a tool name from `pincer tools list`, or a group such as group:fs",
            ));
        }
        if !policy.allows("exec") {
            continue;
        }
        let exec = ExecSettings::from_config(&own.over(&config.tools).exec);
        if exec.security == Security::Deny {
            continue;
        }
        let sandbox = &sandbox;
        if exec.sandbox
            && let Err(why) = &sandbox
        {
            out.push(Finding::new(
                Severity::Warning,
                "tools.sandbox_missing",
                format!("agent {agent}"),
                format!("exec may run commands, but not in a sandbox: {why}"),
                "install bubblewrap (Debian: apt-get install bubblewrap), or set tools.exec.host to \"gateway\" to run commands on the host on purpose",
            ));
        }
        let sandboxed = exec.sandbox && sandbox.is_ok();
        if exec.security == Security::Full && exec.ask == Ask::Off && !sandboxed {
            out.push(Finding::new(
                Severity::Warning,
                "tools.exec_unguarded",
                format!("agent {agent}"),
                "exec runs any command the model asks for, unsandboxed and without asking: text the model reads (a web page, a file) can run commands on this machine",
                "set tools.exec.security to \"allowlist\" (Pincer's default) or tools.exec.ask to \"on-miss\"",
            ));
        }
    }
    if config.tools.web_fetch.allow_private_network == Some(true) {
        out.push(Finding::new(
            Severity::Warning,
            "tools.web_private",
            "tools.web.fetch.ssrfPolicy.dangerouslyAllowPrivateNetwork",
            "web_fetch may reach loopback and private addresses: a page can send the model to your router or other local services",
            "remove it; name the one local host the agent must read in ssrfPolicy.allowedHostnames instead",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tool findings for `text` on a machine with (or without) bubblewrap.
    fn tool_checks_on(text: &str, bwrap: bool) -> Vec<&'static str> {
        let loaded = pincer_config::load_text(
            text,
            std::path::Path::new("openclaw.json"),
            &Env::from_pairs(&[]),
        );
        let sandbox = if bwrap {
            Ok(std::path::PathBuf::from("/usr/bin/bwrap"))
        } else {
            Err("bubblewrap is not installed (Debian: apt-get install bubblewrap)".to_string())
        };
        tool_findings_with(&loaded.config, sandbox)
            .iter()
            .map(|f| f.check)
            .collect()
    }

    fn tool_checks(text: &str) -> Vec<&'static str> {
        tool_checks_on(text, true)
    }

    #[test]
    fn a_missing_sandbox_is_a_finding_where_commands_would_run() {
        // (config, findings without bubblewrap)
        for (text, want) in [
            ("{}", vec!["tools.sandbox_missing"]),
            ("{ tools: { deny: ['exec'] } }", vec![]),
            ("{ tools: { exec: { security: 'deny' } } }", vec![]),
            ("{ tools: { exec: { host: 'gateway' } } }", vec![]),
            (
                "{ tools: { exec: { security: 'full', ask: 'off' } } }",
                vec!["tools.sandbox_missing", "tools.exec_unguarded"],
            ),
        ] {
            assert_eq!(tool_checks_on(text, false), want, "{text}");
        }
    }

    #[test]
    fn channel_checks_table() {
        for (text, want) in [
            ("{}", vec![]),
            (
                "{ channels: { telegram: { } } }",
                vec!["channel.token_missing", "channel.shared_session"],
            ),
            ("{ channels: { telegram: { enabled: false } } }", vec![]),
            (
                "{ channels: { telegram: { botToken: '1:a' } } }",
                vec!["channel.shared_session"],
            ),
            (
                "{ channels: { telegram: { botToken: '1:a' } }, session: { dmScope: 'per-channel-peer' } }",
                vec![],
            ),
            (
                "{ channels: { telegram: { botToken: '1:a', dmPolicy: 'allowlist', allowFrom: [1] } } }",
                vec![],
            ),
            (
                "{ channels: { telegram: { botToken: '1:a', webhookUrl: 'http://x.org/hook' } }, session: { dmScope: 'per-peer' } }",
                vec!["channel.webhook_secret", "channel.webhook_unreachable"],
            ),
            (
                "{ channels: { telegram: { botToken: '1:a', webhookUrl: 'https://x.org/h', webhookSecret: 'no spaces!' } }, session: { dmScope: 'per-peer' } }",
                vec!["channel.webhook_secret"],
            ),
            (
                "{ channels: { telegram: { botToken: '1:a', dmPolicy: 'open', allowFrom: ['*'] }, whatsapp: { dmPolicy: 'open' } } }",
                vec![
                    "channel.whatsapp_unlinked",
                    "channel.dm_open",
                    "channel.shared_session",
                    "channel.dm_open",
                ],
            ),
            (
                "{ channels: { whatsapp: { dmPolicy: 'allowlist' } } }",
                vec!["channel.whatsapp_unlinked", "channel.allowlist_empty"],
            ),
        ] {
            let env = Env::from_pairs(&[("OPENCLAW_STATE_DIR", "/nonexistent")]);
            let loaded =
                pincer_config::load_text(text, std::path::Path::new("openclaw.json"), &env);
            let ids: Vec<&str> = channel_findings(&loaded.config, &env)
                .iter()
                .map(|f| f.check)
                .collect();
            assert_eq!(ids, want, "{text}");
        }
    }

    #[test]
    fn tool_checks_table() {
        for (text, want) in [
            ("{}", vec![]),
            ("{ tools: { deny: ['exce'] } }", vec!["tools.unknown_name"]),
            (
                "{ tools: { exec: { security: 'full', ask: 'off', host: 'gateway' } } }",
                vec!["tools.exec_unguarded"],
            ),
            (
                "{ tools: { exec: { security: 'full', ask: 'off', host: 'gateway' }, deny: ['exec'] } }",
                vec![],
            ),
            (
                "{ tools: { web: { fetch: { ssrfPolicy: { allowPrivateNetwork: true } } } } }",
                vec!["tools.web_private"],
            ),
        ] {
            assert_eq!(tool_checks(text), want, "{text}");
        }
    }

    fn gateway_checks(text: &str, env: &[(&str, &str)]) -> Vec<&'static str> {
        let env = Env::from_pairs(env);
        let loaded = pincer_config::load_text(text, std::path::Path::new("/x/openclaw.json"), &env);
        gateway_findings(&loaded.config, &env)
            .iter()
            .map(|f| f.check)
            .collect()
    }

    #[test]
    fn gateway_auth_must_be_unambiguous_and_present_beyond_loopback() {
        let password = [("OPENCLAW_GATEWAY_PASSWORD", "pw-0123456789")];
        let token = r#"{ gateway: { auth: { token: "t-0123456789" } } }"#;
        assert_eq!(gateway_checks(token, &[]), Vec::<&str>::new());
        assert_eq!(gateway_checks(token, &password), ["gateway.auth_ambiguous"]);
        let chosen = r#"{ gateway: { auth: { mode: "token", token: "t-0123456789" } } }"#;
        assert_eq!(gateway_checks(chosen, &password), Vec::<&str>::new());
        let lan = r#"{ gateway: { bind: "lan" } }"#;
        assert_eq!(gateway_checks(lan, &[]), ["gateway.bind_no_auth"]);
        assert_eq!(gateway_checks(lan, &password), Vec::<&str>::new());
    }

    #[test]
    fn sizes_and_quantization_from_names() {
        assert_eq!(
            parameters_in_billions("embedded/smollm2-135m-instruct"),
            Some(0.135)
        );
        assert_eq!(parameters_in_billions("ollama/qwen2.5:1.5b"), Some(1.5));
        assert_eq!(parameters_in_billions("lmstudio/llama-3.1-70b"), Some(70.0));
        assert_eq!(parameters_in_billions("lmstudio/minimax-m2.1-gs32"), None);
        assert!(
            weak_model("embedded/smollm2-135m-instruct", None)
                .unwrap()
                .contains("135M")
        );
        assert!(
            weak_model("lmstudio/llama-70b", Some("/m/llama-70b.IQ2_XS.gguf"))
                .unwrap()
                .contains("IQ2")
        );
        assert_eq!(
            weak_model("lmstudio/qwen3-32b", Some("/m/qwen3-32b-Q5_K_M.gguf")),
            None
        );
    }
}
