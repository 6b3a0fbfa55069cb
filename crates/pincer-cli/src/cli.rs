//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Pincer: a local-first AI gateway that reads OpenClaw's config.
#[derive(Debug, Parser)]
#[command(name = "pincer", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: $OPENCLAW_CONFIG_PATH, else $OPENCLAW_STATE_DIR/openclaw.json, else ~/.openclaw/openclaw.json)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, inspect and resolve models
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Check and print the config
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Chat with a model: one message (--message, or stdin when piped) or an interactive session
    Chat(ChatArgs),
    /// Serve the agents over OpenAI's HTTP API (/v1/chat/completions, /v1/responses, /v1/models), with sessions, auth, /healthz, /readyz and /metrics
    Gateway(GatewayArgs),
    /// Sessions the gateway recorded: list them, show one, usage by model
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Check the config, every model's server, keys and the fallback chain; print each problem with its fix (exit 1 on any error)
    Doctor(DoctorArgs),
    /// The agent's tools: which it may use and which rule decided
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Chat-app senders waiting for approval: list them, approve one by its code
    #[command(subcommand)]
    Pairing(PairingCommand),
    /// The chat apps (Telegram, WhatsApp): their state, linking and unlinking
    #[command(subcommand)]
    Channels(ChannelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// Pairing requests still valid (codes expire after an hour)
    List(PairingListArgs),
    /// Approve the sender who was given CODE: they are answered from now on
    Approve(PairingApproveArgs),
}

#[derive(Debug, Args)]
pub struct PairingListArgs {
    /// telegram or whatsapp (default: both)
    pub channel: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PairingApproveArgs {
    /// telegram or whatsapp
    pub channel: String,
    /// The code the sender was given
    pub code: String,
    /// Tell the sender they were approved (Telegram)
    #[arg(long)]
    pub notify: bool,
}

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Each configured channel: connected or not, last message, last error
    Status(ChannelsStatusArgs),
    /// Link WhatsApp: prints a QR code to scan with the phone (Settings → Linked devices)
    Login(ChannelsLoginArgs),
    /// Unlink WhatsApp: tells WhatsApp when it can, and deletes the credentials
    Logout(ChannelsLogoutArgs),
}

#[derive(Debug, Args)]
pub struct ChannelsLoginArgs {
    /// whatsapp (Telegram needs a bot token, not a login)
    pub channel: String,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ChannelsLogoutArgs {
    /// whatsapp
    pub channel: String,
}

#[derive(Debug, Args)]
pub struct ChannelsStatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Every tool, allowed or denied, with the rule that decided; the exec policy and sandbox
    List(ToolsArgs),
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// This agent's tools instead of the default agent's
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Port (default: $OPENCLAW_GATEWAY_PORT, else gateway.port, else 18789)
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// loopback (127.0.0.1 and ::1), lan (0.0.0.0) or an IP address (default: gateway.bind, else loopback)
    #[arg(long, value_name = "loopback|lan|ADDR")]
    pub bind: Option<String>,
    /// Keep this provider's models loaded: a one-token request every SECONDS (default 240) when idle; repeatable
    #[arg(long, value_name = "PROVIDER[=SECONDS]", value_parser = pincer_gateway::KeepWarm::parse)]
    pub keep_warm: Vec<pincer_gateway::KeepWarm>,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions by last use: key, turns, tokens, cost
    List(SessionsArgs),
    /// One session's transcript (by key or id)
    Show(ShowArgs),
    /// Turns, tokens and cost by model across the agent's sessions
    Usage(SessionsArgs),
    /// Move a legacy sessions.json store (and its transcripts) into the agent's SQLite database, as `openclaw doctor --fix` does
    Import(SessionsArgs),
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// This agent's sessions instead of the default agent's
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Session key (e.g. agent:main:openai-user:ada) or session id
    #[arg(value_name = "KEY|ID")]
    pub session: String,
    /// This agent's sessions instead of the default agent's
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON (the index entry and every transcript event)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check this agent's chain instead of the default agent's
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON (findings and per-model status)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Ask each model's server: reachable, listed, loaded or cold, its real context limit
    #[arg(long)]
    pub probe: bool,
    /// Roles (primary, fallbacks) of this agent instead of the default one
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Model ref (provider/model) or alias (default: the agent's primary, then its fallbacks)
    #[arg(long, short = 'M', value_name = "REF|ALIAS")]
    pub model: Option<String>,
    /// The agent whose models and aliases to use (default: the default agent)
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Send this one message and exit
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
    /// System prompt
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Keep the conversation in the agent's sessions under this name and
    /// continue it next time (`agent:<id>:cli:<NAME>`)
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Start the --session over (a new session id; the old transcript stays)
    #[arg(long, requires = "session")]
    pub new: bool,
    /// Read stdin line by line, one message (or command) per line: a
    /// scripted conversation in one run (exit 1 if any turn failed)
    #[arg(long, conflicts_with = "message")]
    pub lines: bool,
    /// Output cap in tokens (never above the model's maxTokens)
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// Show the model's reasoning (dimmed, on stderr)
    #[arg(long)]
    pub show_reasoning: bool,
    /// Print the final result as JSON instead of streaming text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Table of models: built-in catalog and config, with roles, limits, costs and keys
    List(ListArgs),
    /// Show everything known about one model and where each value came from
    Resolve(ResolveArgs),
    /// Health of each configured model: keys, cooldowns and, with --probe, what its server says
    Status(StatusArgs),
    /// Download a GGUF into Pincer's models dir, with progress, resume and SHA-256 check
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// A Hugging Face file (owner/repo/file.gguf, optionally @revision) or an http(s) URL
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Expected SHA-256 (default: the one Hugging Face advertises, when it does)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Download again even when the file is already there
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this provider's models
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
    /// Only models the config names (provider rows, primary, fallbacks, aliases, allowlist)
    #[arg(long)]
    pub configured: bool,
    /// Only local models (local servers and the embedded engine), with every
    /// local server asked for the models it has
    #[arg(long)]
    pub local: bool,
    /// Ask the servers for their models again (not the list kept for a minute)
    #[arg(long)]
    pub refresh: bool,
    /// Roles (primary, fallbacks) of this agent instead of the default one
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// A model ref (provider/model), an alias, or a bare model id
    #[arg(value_name = "REF|ALIAS")]
    pub model: String,
    /// Use this agent's aliases
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Report every problem in the config; exit 1 when there is an error
    Validate(ValidateArgs),
    /// Print the effective config (after $include and ${VAR}) with secrets as ***
    Show,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file to check (default: the config Pincer would use)
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
