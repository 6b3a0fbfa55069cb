//! The parts of openclaw.json that Pincer acts on, as typed values.
//!
//! Values a user wrote keep their [`Location`] so that later checks (model
//! references, aliases) can point at them.

use std::fmt;

use secrecy::SecretString;
use serde::Serialize;

use crate::source::Location;

/// A value and where it was written (None for built-in defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spanned<T> {
    pub value: T,
    #[serde(skip)]
    pub loc: Option<Location>,
    /// JSON path, for messages about this value.
    #[serde(skip)]
    pub path: String,
}

impl<T> Spanned<T> {
    pub fn new(value: T, path: impl Into<String>, loc: Option<Location>) -> Self {
        Spanned {
            value,
            loc,
            path: path.into(),
        }
    }
}

impl<T> Spanned<T> {
    /// ` (first at file:line:col)`, for "defined twice" messages.
    pub fn first_at(&self) -> String {
        self.loc
            .as_ref()
            .map(|l| format!(" (first at {l})"))
            .unwrap_or_default()
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// Everything Pincer reads from the config.
#[derive(Debug, Default)]
pub struct Config {
    pub agents: AgentsConfig,
    pub models: ModelsConfig,
    pub gateway: GatewayConfig,
    pub auth: AuthConfig,
    pub session: SessionConfig,
    pub messages: MessagesConfig,
    pub tools: ToolsConfig,
    pub channels: ChannelsConfig,
    /// Top-level sections (and some nested keys) that OpenClaw knows but
    /// Pincer does not act on yet, by JSON path. Kept, never fatal.
    pub not_used: Vec<String>,
}

#[derive(Debug, Default)]
pub struct AgentsConfig {
    pub defaults: AgentSettings,
    /// From `agents.entries{}` (current) and `agents.list[]` (legacy), in file order.
    pub entries: Vec<AgentEntry>,
}

/// Model selection settings, shared by `agents.defaults` and each agent.
#[derive(Debug, Default, Clone)]
pub struct AgentSettings {
    pub model: Option<ModelSelection>,
    /// `models` map: model ref → alias and params. Non-empty = legacy allowlist.
    pub models: Vec<ModelEntry>,
    /// `modelPolicy.allow`: explicit allowlist (refs, aliases, `provider/*`).
    pub allow: Option<Vec<Spanned<String>>>,
    pub params: Option<serde_json::Value>,
    pub timeout_seconds: Option<u64>,
    /// The agent runtime's settings (OpenClaw's keys).
    pub runtime: RuntimeSettings,
    /// The agent's own `tools` (narrows the top-level `tools`).
    pub tools: ToolsConfig,
}

/// What shapes an agent's turns: its workspace, prompt and context.
#[derive(Debug, Default, Clone)]
pub struct RuntimeSettings {
    /// `workspace`: where the bootstrap files (`AGENTS.md`…) are.
    pub workspace: Option<Spanned<String>>,
    /// `contextTokens`: a cap on every model's window.
    pub context_tokens: Option<u64>,
    /// `bootstrapMaxChars` / `bootstrapTotalMaxChars`.
    pub bootstrap_max_chars: Option<u64>,
    pub bootstrap_total_max_chars: Option<u64>,
    /// `userTimezone` (IANA name) for the prompt's runtime line.
    pub user_timezone: Option<String>,
    /// `thinkingDefault`.
    pub thinking_default: Option<String>,
    pub compaction: CompactionConfig,
}

/// `compaction`: when and how old history is summarised.
#[derive(Debug, Default, Clone)]
pub struct CompactionConfig {
    /// `enabled` (default on).
    pub enabled: Option<bool>,
    /// `reserveTokensFloor` (0 turns the floor off) and pi's `reserveTokens`.
    pub reserve_tokens_floor: Option<u64>,
    pub reserve_tokens: Option<u64>,
    /// `keepRecentTokens`: the tail kept word for word.
    pub keep_recent_tokens: Option<u64>,
    /// `model`: who writes the summary (a ref or an alias).
    pub model: Option<Spanned<String>>,
    /// `timeoutSeconds` for the summary call.
    pub timeout_seconds: Option<u64>,
}

/// `model: "p/m"` or `model: { primary, fallbacks }`.
#[derive(Debug, Clone, Default)]
pub struct ModelSelection {
    pub primary: Option<Spanned<String>>,
    /// None when the key was absent; `Some([])` makes an agent explicitly strict.
    pub fallbacks: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// The map key: `provider/model` or `provider/*`.
    pub reference: Spanned<String>,
    pub alias: Option<Spanned<String>>,
    pub params: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub id: Spanned<String>,
    pub default: bool,
    pub name: Option<String>,
    pub settings: AgentSettings,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Built-in catalog plus the config; config wins field by field.
    #[default]
    Merge,
    /// Only what the config lists.
    Replace,
}

#[derive(Debug, Default)]
pub struct ModelsConfig {
    pub mode: Mode,
    pub providers: Vec<ProviderConfig>,
}

/// The API dialect a provider speaks (OpenClaw's `api` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Api {
    #[serde(rename = "openai-completions")]
    OpenAiCompletions,
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    #[serde(rename = "anthropic-messages")]
    AnthropicMessages,
    /// Ollama's own `/api/chat`.
    #[serde(rename = "ollama")]
    Ollama,
    /// Pincer's in-process GGUF engine.
    #[serde(rename = "embedded")]
    Embedded,
    /// A value OpenClaw accepts that Pincer cannot speak yet.
    #[serde(untagged)]
    Unsupported(&'static str),
}

impl Api {
    /// Every value OpenClaw 2026.9 accepts, plus Pincer's `embedded`.
    pub const KNOWN: &'static [&'static str] = &[
        "openai-completions",
        "openai-responses",
        "anthropic-messages",
        "embedded",
        "openai-chatgpt-responses",
        "google-generative-ai",
        "google-vertex",
        "github-copilot",
        "bedrock-converse-stream",
        "ollama",
        "pi-messages",
        "azure-openai-responses",
    ];

    pub fn parse(s: &str) -> Option<Api> {
        Some(match s {
            "openai-completions" => Api::OpenAiCompletions,
            "openai-responses" => Api::OpenAiResponses,
            "anthropic-messages" => Api::AnthropicMessages,
            "ollama" => Api::Ollama,
            "embedded" => Api::Embedded,
            other => Api::Unsupported(Self::KNOWN.iter().find(|k| **k == other)?),
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Api::OpenAiCompletions => "openai-completions",
            Api::OpenAiResponses => "openai-responses",
            Api::AnthropicMessages => "anthropic-messages",
            Api::Ollama => "ollama",
            Api::Embedded => "embedded",
            Api::Unsupported(s) => s,
        }
    }

    pub fn is_supported(&self) -> bool {
        !matches!(self, Api::Unsupported(_))
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key from the config. The secret never prints: `Debug` shows `***`.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub secret: SecretString,
    /// The environment variable it came from, when written as `${VAR}` or a SecretRef.
    pub env_var: Option<String>,
    pub loc: Option<Location>,
}

/// How long Pincer stays with one of a provider's models before failing
/// over. Read from the provider's `params` record, which OpenClaw passes on
/// unchecked, so a config that sets them still loads in OpenClaw.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Patience {
    /// `params.retry`: `false` turns the same-model retry off; an object sets
    /// `maxWaitSeconds` (the longest `Retry-After` honoured) and `transient`
    /// (one retry of a single 5xx or reset).
    pub retry: Option<SameModelRetry>,
    /// `params.firstTokenTimeoutSeconds`: silence allowed before the first
    /// token from a server that is not loading the model (0: no limit).
    pub first_token_seconds: Option<u64>,
}

/// A short retry on the same model, before the first token, instead of
/// failing over at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SameModelRetry {
    /// The longest `Retry-After` waited for (0: none).
    pub max_wait_seconds: f64,
    /// Ask once more after a single 5xx or reset.
    pub transient: bool,
}

impl SameModelRetry {
    pub const DEFAULT: SameModelRetry = SameModelRetry {
        max_wait_seconds: 2.0,
        transient: true,
    };
    pub const OFF: SameModelRetry = SameModelRetry {
        max_wait_seconds: 0.0,
        transient: false,
    };
}

impl Default for SameModelRetry {
    fn default() -> Self {
        SameModelRetry::DEFAULT
    }
}

#[derive(Debug)]
pub struct ProviderConfig {
    /// Lowercased provider id.
    pub id: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    pub api_key: Option<ApiKey>,
    pub api: Option<Spanned<Api>>,
    pub headers: Vec<(String, SecretString)>,
    pub max_tokens: Option<u64>,
    pub timeout_seconds: Option<u64>,
    /// Pincer's own settings, from the provider's `params` record.
    pub patience: Patience,
    /// `compat`, for every model of the provider.
    pub compat: Compat,
    /// None when the key is absent (a catalog provider used as an overlay).
    pub models: Option<Vec<ModelConfig>>,
    pub loc: Option<Location>,
}

impl ProviderConfig {
    /// A provider with nothing set but its id (and where it was written).
    pub fn new(id: Spanned<String>, loc: Option<Location>) -> ProviderConfig {
        ProviderConfig {
            id,
            base_url: None,
            api_key: None,
            api: None,
            headers: Vec::new(),
            max_tokens: None,
            timeout_seconds: None,
            patience: Patience::default(),
            compat: Compat::default(),
            models: None,
            loc,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub api: Option<Spanned<Api>>,
    pub base_url: Option<Spanned<String>>,
    pub reasoning: Option<bool>,
    pub input: Option<Vec<String>>,
    pub cost: CostConfig,
    pub context_window: Option<u64>,
    pub context_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    /// Path of a GGUF file, for `api: "embedded"` providers.
    pub path: Option<Spanned<String>>,
    /// `compat`: what this model's server takes (over the provider's).
    pub compat: Compat,
    pub loc: Option<Location>,
    /// Listed by the server (model discovery), not written in the config.
    pub discovered: bool,
}

/// `compat` (on a provider or a model): how an OpenAI-style server differs
/// from OpenAI. `None`: Pincer's default for the route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compat {
    /// `false`: no tools are sent (the turn runs without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_tools: Option<bool>,
    /// `false`: a request with tools is not streamed (servers that drop
    /// streamed tool calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_streaming_tool_calls: Option<bool>,
    /// `false`: no `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_usage_in_streaming: Option<bool>,
    /// `false`: no `reasoning_effort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_reasoning_effort: Option<bool>,
    /// `false`: no `temperature`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_temperature: Option<bool>,
    /// `true`: system text goes as the `developer` role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_developer_role: Option<bool>,
    /// `true`: tool results carry the tool's `name` (Mistral).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_tool_result_name: Option<bool>,
    /// `max_tokens` or `max_completion_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_field: Option<String>,
    /// `llamacpp`: tool schemas lose `pattern` and long `maxLength`s, which
    /// llama.cpp's grammar cannot take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_schema_profile: Option<String>,
}

impl Compat {
    /// These flags over `base` (a model's over its provider's).
    pub fn over(&self, base: &Compat) -> Compat {
        Compat {
            supports_tools: self.supports_tools.or(base.supports_tools),
            supports_streaming_tool_calls: self
                .supports_streaming_tool_calls
                .or(base.supports_streaming_tool_calls),
            supports_usage_in_streaming: self
                .supports_usage_in_streaming
                .or(base.supports_usage_in_streaming),
            supports_reasoning_effort: self
                .supports_reasoning_effort
                .or(base.supports_reasoning_effort),
            supports_temperature: self.supports_temperature.or(base.supports_temperature),
            supports_developer_role: self
                .supports_developer_role
                .or(base.supports_developer_role),
            requires_tool_result_name: self
                .requires_tool_result_name
                .or(base.requires_tool_result_name),
            max_tokens_field: self
                .max_tokens_field
                .clone()
                .or_else(|| base.max_tokens_field.clone()),
            tool_schema_profile: self
                .tool_schema_profile
                .clone()
                .or_else(|| base.tool_schema_profile.clone()),
        }
    }
}

impl Default for Spanned<String> {
    fn default() -> Self {
        Spanned::new(String::new(), "", None)
    }
}

/// USD per million tokens; each field may be given alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostConfig {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

/// `session.*` (Pincer reads `maintenance`, `dmScope` and `mainKey`).
#[derive(Debug, Default, Clone)]
pub struct SessionConfig {
    pub maintenance: MaintenanceConfig,
    /// `dmScope`: how direct messages from chat apps map to sessions.
    pub dm_scope: Option<DmScope>,
    /// `mainKey`: the main session's name (default `main`).
    pub main_key: Option<String>,
}

impl SessionConfig {
    /// The main session's name (`mainKey`, default `main`).
    pub fn main_name(&self) -> &str {
        self.main_key.as_deref().unwrap_or("main")
    }

    /// `agent`'s main session key: `agent:<id>:<mainKey>`, lowercased as
    /// OpenClaw's keys are. The one place it is made.
    pub fn main_session(&self, agent: &str) -> String {
        format!("agent:{agent}:{}", self.main_name()).to_ascii_lowercase()
    }
}

/// `session.dmScope`, OpenClaw's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmScope {
    /// Every direct message shares the agent's main session.
    Main,
    /// One session per sender, whatever the app.
    PerPeer,
    /// One session per sender and app.
    PerChannelPeer,
    /// One session per sender, app and account.
    PerAccountChannelPeer,
}

impl DmScope {
    pub const NAMES: [&str; 4] = [
        "main",
        "per-peer",
        "per-channel-peer",
        "per-account-channel-peer",
    ];

    pub fn parse(s: &str) -> Option<DmScope> {
        Some(match s {
            "main" => DmScope::Main,
            "per-peer" => DmScope::PerPeer,
            "per-channel-peer" => DmScope::PerChannelPeer,
            "per-account-channel-peer" => DmScope::PerAccountChannelPeer,
            _ => return None,
        })
    }
}

/// `messages.*` (Pincer reads `queue` and `inbound`).
#[derive(Debug, Default, Clone)]
pub struct MessagesConfig {
    pub queue: QueueConfig,
    pub inbound: InboundConfig,
}

/// `messages.inbound`: rapid messages from one sender are answered as one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InboundConfig {
    /// `debounceMs`: how long a chat must be quiet before its messages run.
    pub debounce_ms: Option<u64>,
    /// `byChannel`: the same, per channel.
    pub by_channel: std::collections::BTreeMap<String, u64>,
}

/// `channels.*`: the chat apps Pincer answers in.
#[derive(Debug, Default, Clone)]
pub struct ChannelsConfig {
    pub telegram: Option<TelegramConfig>,
    pub whatsapp: Option<WhatsAppConfig>,
}

/// Who may talk to the assistant through a chat app, and how its answers
/// are cut: the keys every channel shares.
#[derive(Debug, Default, Clone)]
pub struct ChannelAccess {
    /// `enabled` (default true once the channel is configured).
    pub enabled: Option<bool>,
    pub dm_policy: Option<DmPolicy>,
    /// `allowFrom`: senders allowed without pairing (`"*"`: anyone).
    pub allow_from: Vec<String>,
    pub group_policy: Option<GroupPolicy>,
    /// `groupAllowFrom`: senders allowed in groups (default: `allowFrom`).
    pub group_allow_from: Option<Vec<String>>,
    /// `groups`: settings per group id, `"*"` for every group.
    pub groups: std::collections::BTreeMap<String, GroupSettings>,
    /// `textChunkLimit`: the longest message sent (default 4000).
    pub text_chunk_limit: Option<u64>,
}

/// One entry of a channel's `groups`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GroupSettings {
    pub enabled: Option<bool>,
    /// `requireMention` (default true): answer only when addressed.
    pub require_mention: Option<bool>,
    pub allow_from: Option<Vec<String>>,
}

/// `dmPolicy`: what happens to a direct message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmPolicy {
    /// Unknown senders get a code the owner approves (the default).
    Pairing,
    /// Only `allowFrom` (and approved senders).
    Allowlist,
    /// Anyone.
    Open,
    /// No direct messages.
    Disabled,
}

impl DmPolicy {
    pub const NAMES: [&str; 4] = ["pairing", "allowlist", "open", "disabled"];

    pub fn parse(s: &str) -> Option<DmPolicy> {
        Some(match s {
            "pairing" => DmPolicy::Pairing,
            "allowlist" => DmPolicy::Allowlist,
            "open" => DmPolicy::Open,
            "disabled" => DmPolicy::Disabled,
            _ => return None,
        })
    }
}

/// `groupPolicy`: which group messages are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Listed groups and senders only (the default).
    Allowlist,
    Open,
    Disabled,
}

impl GroupPolicy {
    pub const NAMES: [&str; 3] = ["allowlist", "open", "disabled"];

    pub fn parse(s: &str) -> Option<GroupPolicy> {
        Some(match s {
            "allowlist" => GroupPolicy::Allowlist,
            "open" => GroupPolicy::Open,
            "disabled" => GroupPolicy::Disabled,
            _ => return None,
        })
    }
}

/// `channels.telegram`.
#[derive(Debug, Default, Clone)]
pub struct TelegramConfig {
    pub access: ChannelAccess,
    pub bot_token: Option<ApiKey>,
    /// `tokenFile`: a file holding the token.
    pub token_file: Option<Spanned<String>>,
    /// `apiRoot`: the Bot API's root (default Telegram's own).
    pub api_root: Option<Spanned<String>>,
    /// `webhookUrl` + `webhookSecret`: webhook mode instead of polling.
    pub webhook_url: Option<Spanned<String>>,
    pub webhook_secret: Option<ApiKey>,
    /// Where the webhook listener binds (`webhookHost`, `webhookPort`,
    /// `webhookPath`; default `127.0.0.1:8787/telegram-webhook`).
    pub webhook_host: Option<String>,
    pub webhook_port: Option<u16>,
    pub webhook_path: Option<String>,
    /// `commands.native`: register the command menu (default true).
    pub native_commands: Option<bool>,
}

/// `channels.whatsapp`.
#[derive(Debug, Default, Clone)]
pub struct WhatsAppConfig {
    pub access: ChannelAccess,
    /// `authDir`: where the linked device's credentials are kept.
    pub auth_dir: Option<Spanned<String>>,
}

/// What happens to a message that arrives while its session is answering
/// another (`messages.queue`; `None`: OpenClaw's default).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueueConfig {
    pub mode: Option<QueueMode>,
    /// `byChannel`: a mode per channel (`telegram`, `webchat`…).
    pub by_channel: std::collections::BTreeMap<String, QueueMode>,
    /// `debounceMs`: how long the queue must be quiet before it is run.
    pub debounce_ms: Option<u64>,
    /// `debounceMsByChannel`.
    pub debounce_ms_by_channel: std::collections::BTreeMap<String, u64>,
    /// `cap`: the most messages waiting.
    pub cap: Option<u64>,
    pub drop: Option<QueueDrop>,
}

/// `messages.queue.mode`, with OpenClaw's spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// Everything queued runs as one turn (`[Queued messages while agent was busy]`).
    Collect,
    /// Each queued message runs as its own turn, in order.
    Followup,
    /// Into the running turn before its next model call.
    Steer,
    /// The running turn is aborted and the newest message runs.
    Interrupt,
}

impl QueueMode {
    /// OpenClaw's names and aliases (`coalesce`, `follow-ups`, `abort`…).
    pub fn parse(raw: &str) -> Option<QueueMode> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "collect" | "coalesce" => Some(QueueMode::Collect),
            "followup" | "followups" | "follow-ups" => Some(QueueMode::Followup),
            "steer" | "steering" => Some(QueueMode::Steer),
            "interrupt" | "interrupts" | "abort" => Some(QueueMode::Interrupt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueueMode::Collect => "collect",
            QueueMode::Followup => "followup",
            QueueMode::Steer => "steer",
            QueueMode::Interrupt => "interrupt",
        }
    }
}

/// `messages.queue.drop`: what a full queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDrop {
    /// The oldest waiting message goes.
    Old,
    /// The new message is refused.
    New,
    /// The oldest goes, and a line about it is kept for the next turn.
    Summarize,
}

impl QueueDrop {
    pub fn parse(raw: &str) -> Option<QueueDrop> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "old" | "oldest" => Some(QueueDrop::Old),
            "new" | "newest" => Some(QueueDrop::New),
            "summarize" | "summary" => Some(QueueDrop::Summarize),
            _ => None,
        }
    }
}

/// `session.maintenance`: how the session index is kept from growing
/// without bound. `None`: OpenClaw's default.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MaintenanceConfig {
    /// `"enforce"` (prune) or `"warn"` (only report); OpenClaw: enforce.
    pub enforce: Option<bool>,
    /// `pruneAfter` (`"30d"`, `"12h"`…; legacy `pruneDays`).
    pub prune_after: Option<std::time::Duration>,
    /// `maxEntries`.
    pub max_entries: Option<u64>,
}

/// `gateway.*`: where the gateway listens and how callers authenticate.
#[derive(Debug, Default)]
pub struct GatewayConfig {
    pub port: Option<Spanned<u64>>,
    /// `loopback` (default), `lan`, `tailnet`, `auto` or `custom`.
    pub bind: Option<Spanned<String>>,
    pub custom_bind_host: Option<Spanned<String>>,
    /// `none`, `token`, `password` or `trusted-proxy`.
    pub auth_mode: Option<Spanned<String>>,
    pub token: Option<ApiKey>,
    pub password: Option<ApiKey>,
    /// `gateway.auth.rateLimit`; unset fields keep OpenClaw's defaults.
    pub rate_limit: RateLimitConfig,
    pub chat_completions: Option<bool>,
    pub responses: Option<bool>,
    /// `gateway.tools.allow` / `deny`: tools taken off, or added to, the
    /// list `POST /tools/invoke` never runs.
    pub tools_allow: Vec<Spanned<String>>,
    pub tools_deny: Vec<Spanned<String>>,
}

/// `gateway.auth.rateLimit`: how many failed attempts an address gets.
#[derive(Debug, Default, Clone)]
pub struct RateLimitConfig {
    pub max_attempts: Option<u64>,
    pub window_ms: Option<u64>,
    pub lockout_ms: Option<u64>,
    pub exempt_loopback: Option<bool>,
}

/// `auth.*`: which credential profiles exist per provider and in what order
/// to use them. Metadata only: the secrets live elsewhere.
#[derive(Debug, Default)]
pub struct AuthConfig {
    pub profiles: Vec<AuthProfile>,
    /// `auth.order[provider]`: profile ids, first preferred.
    pub order: Vec<(String, Vec<Spanned<String>>)>,
}

#[derive(Debug, Clone)]
pub struct AuthProfile {
    /// `provider:default`, `provider:<email>`, …
    pub id: Spanned<String>,
    pub provider: String,
    /// `api_key`, `oauth` or `token`.
    pub mode: Option<String>,
}

/// `tools.*` (and an agent's `tools`): which tools an agent may use and how
/// they run. `None` everywhere: Pincer's defaults (see `pincer-tools`).
#[derive(Debug, Default, Clone)]
pub struct ToolsConfig {
    /// `profile`: `minimal`, `coding`, `messaging` or `full`.
    pub profile: Option<Spanned<String>>,
    /// `allow`, `alsoAllow`, `deny`: tool names, groups (`group:fs`) and `*` patterns.
    pub allow: Option<Vec<Spanned<String>>>,
    pub also_allow: Option<Vec<Spanned<String>>>,
    pub deny: Option<Vec<Spanned<String>>>,
    /// `byProvider["provider" | "provider/model"]`: narrows further.
    pub by_provider: Vec<(String, ToolRules)>,
    pub exec: ExecConfig,
    pub web_fetch: WebFetchConfig,
    /// `fs.workspaceOnly` (default true): file tools stay in the workspace.
    pub fs_workspace_only: Option<bool>,
    /// `loopDetection`.
    pub loop_detection: LoopDetectionConfig,
    /// `sessions.visibility`: `self`, `tree`, `agent` or `all`.
    pub sessions_visibility: Option<String>,
}

impl ToolsConfig {
    /// These settings over `base` (an agent's over `agents.defaults`', or
    /// over the top level's): each field set here wins, the rest is `base`'s.
    pub fn over(&self, base: &ToolsConfig) -> ToolsConfig {
        let mut by_provider = self.by_provider.clone();
        for (k, r) in &base.by_provider {
            if !by_provider.iter().any(|(mine, _)| mine == k) {
                by_provider.push((k.clone(), r.clone()));
            }
        }
        ToolsConfig {
            profile: self.profile.clone().or_else(|| base.profile.clone()),
            allow: self.allow.clone().or_else(|| base.allow.clone()),
            also_allow: self.also_allow.clone().or_else(|| base.also_allow.clone()),
            // Deny wins: the agent's own list adds to the defaults', never
            // takes one of their denials back.
            deny: match (&self.deny, &base.deny) {
                (Some(mine), Some(theirs)) => Some(theirs.iter().chain(mine).cloned().collect()),
                (mine, theirs) => mine.clone().or_else(|| theirs.clone()),
            },
            by_provider,
            exec: ExecConfig {
                security: self
                    .exec
                    .security
                    .clone()
                    .or_else(|| base.exec.security.clone()),
                ask: self.exec.ask.clone().or_else(|| base.exec.ask.clone()),
                host: self.exec.host.clone().or_else(|| base.exec.host.clone()),
                timeout_sec: self.exec.timeout_sec.or(base.exec.timeout_sec),
                background_ms: self.exec.background_ms.or(base.exec.background_ms),
                safe_bins: self
                    .exec
                    .safe_bins
                    .clone()
                    .or_else(|| base.exec.safe_bins.clone()),
            },
            web_fetch: WebFetchConfig {
                enabled: self.web_fetch.enabled.or(base.web_fetch.enabled),
                max_chars: self.web_fetch.max_chars.or(base.web_fetch.max_chars),
                max_chars_cap: self
                    .web_fetch
                    .max_chars_cap
                    .or(base.web_fetch.max_chars_cap),
                timeout_seconds: self
                    .web_fetch
                    .timeout_seconds
                    .or(base.web_fetch.timeout_seconds),
                max_redirects: self
                    .web_fetch
                    .max_redirects
                    .or(base.web_fetch.max_redirects),
                user_agent: self
                    .web_fetch
                    .user_agent
                    .clone()
                    .or_else(|| base.web_fetch.user_agent.clone()),
                allow_private_network: self
                    .web_fetch
                    .allow_private_network
                    .or(base.web_fetch.allow_private_network),
                allowed_hostnames: self
                    .web_fetch
                    .allowed_hostnames
                    .clone()
                    .or_else(|| base.web_fetch.allowed_hostnames.clone()),
                only_hostnames: self
                    .web_fetch
                    .only_hostnames
                    .clone()
                    .or_else(|| base.web_fetch.only_hostnames.clone()),
                // Blocked anywhere is blocked.
                blocked_hostnames: match (
                    &self.web_fetch.blocked_hostnames,
                    &base.web_fetch.blocked_hostnames,
                ) {
                    (Some(a), Some(b)) => Some(b.iter().chain(a).cloned().collect()),
                    (a, b) => a.clone().or_else(|| b.clone()),
                },
            },
            fs_workspace_only: self.fs_workspace_only.or(base.fs_workspace_only),
            loop_detection: LoopDetectionConfig {
                critical_threshold: self
                    .loop_detection
                    .critical_threshold
                    .or(base.loop_detection.critical_threshold),
            },
            sessions_visibility: self
                .sessions_visibility
                .clone()
                .or_else(|| base.sessions_visibility.clone()),
        }
    }
}

/// A `byProvider` entry: profile, allow and deny, as at the top.
#[derive(Debug, Default, Clone)]
pub struct ToolRules {
    pub profile: Option<Spanned<String>>,
    pub allow: Option<Vec<Spanned<String>>>,
    pub also_allow: Option<Vec<Spanned<String>>>,
    pub deny: Option<Vec<Spanned<String>>>,
}

/// `tools.exec`: when a command may run.
#[derive(Debug, Default, Clone)]
pub struct ExecConfig {
    /// `security`: `deny`, `allowlist` or `full`.
    pub security: Option<String>,
    /// `ask`: `off`, `on-miss` or `always`.
    pub ask: Option<String>,
    /// `host`: `sandbox` (Pincer: bubblewrap where present) or `gateway` (no sandbox).
    pub host: Option<String>,
    /// `timeoutSec`: a command's time limit.
    pub timeout_sec: Option<u64>,
    /// `backgroundMs`: how long a command runs before it is left in the background.
    pub background_ms: Option<u64>,
    /// `safeBins`: commands that run without approval in `allowlist` mode.
    pub safe_bins: Option<Vec<Spanned<String>>>,
}

/// `tools.web.fetch`.
#[derive(Debug, Default, Clone)]
pub struct WebFetchConfig {
    pub enabled: Option<bool>,
    pub max_chars: Option<u64>,
    pub max_chars_cap: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub max_redirects: Option<u64>,
    pub user_agent: Option<String>,
    /// `ssrfPolicy.dangerouslyAllowPrivateNetwork` (or its older name
    /// `allowPrivateNetwork`): fetching loopback, private and link-local
    /// addresses.
    pub allow_private_network: Option<bool>,
    /// `ssrfPolicy.allowedHostnames`: hosts (`*.example.com`: its
    /// subdomains) that may be private.
    pub allowed_hostnames: Option<Vec<String>>,
    /// `ssrfPolicy.hostnameAllowlist`: when set, the only hosts fetched.
    pub only_hostnames: Option<Vec<String>>,
    /// `ssrfPolicy.blockedHostnames`: hosts never fetched.
    pub blocked_hostnames: Option<Vec<String>>,
}

/// `tools.loopDetection` (OpenClaw's), plus the per-turn cap.
#[derive(Debug, Default, Clone)]
pub struct LoopDetectionConfig {
    /// `criticalThreshold`: the same call this many times ends the loop.
    pub critical_threshold: Option<u64>,
}
