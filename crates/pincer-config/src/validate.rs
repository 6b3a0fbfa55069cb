//! Walks the value tree into the typed [`Config`], collecting every problem
//! (not just the first) with its JSON path and line:column.

use std::collections::{HashMap, HashSet};

use secrecy::SecretString;

use crate::diag::{Diagnostic, JsonPath, did_you_mean};
use crate::schema::*;
use crate::source::{Location, SourceMap};
use crate::tree::{Member, Node, Value};

/// Top-level sections OpenClaw has that Pincer keeps but does not act on yet.
const ROOT_NOT_USED: &[&str] = &[
    "skills",
    "hooks",
    "cron",
    "plugins",
    "browser",
    "discovery",
    "secrets",
    "logging",
    "ui",
    "wizard",
    "update",
    "diagnostics",
    "commands",
    "talk",
    "audio",
    "media",
    "web",
    "canvasHost",
    "memory",
    "approvals",
    "bindings",
    "broadcast",
    "nodeHost",
    "sandbox",
    "acp",
    "mcp",
    "cli",
    "identity",
    "routing",
    "queue",
    "storage",
];
/// Accepted at the root without comment.
const ROOT_SILENT: &[&str] = &["$schema", "meta"];
const ROOT_USED: &[&str] = &[
    "agents", "models", "env", "gateway", "auth", "session", "messages", "tools", "channels",
];

/// Channel keys OpenClaw has that Pincer keeps but does not act on yet.
const CHANNEL_NOT_USED: &[&str] = &[
    "accounts",
    "chunkMode",
    "blockStreaming",
    "blockStreamingCoalesce",
    "mediaMaxMb",
    "historyLimit",
    "dmHistoryLimit",
    "dms",
    "configWrites",
    "ackReaction",
    "markdown",
    "heartbeat",
    "responsePrefix",
    "name",
    "capabilities",
    "actions",
    "reactionLevel",
    "defaultTo",
];
/// Telegram's and WhatsApp's own keys that Pincer does not act on yet.
const TELEGRAM_NOT_USED: &[&str] = &[
    "streaming",
    "streamMode",
    "draftChunk",
    "replyToMode",
    "linkPreview",
    "customCommands",
    "proxy",
    "network",
    "timeoutSeconds",
    "retry",
    "reactionNotifications",
    "webhookCertPath",
];
const WHATSAPP_NOT_USED: &[&str] = &[
    "selfChatMode",
    "debounceMs",
    "messagePrefix",
    "sendReadReceipts",
];
const GROUP_NOT_USED: &[&str] = &["systemPrompt", "skills", "topics", "tools", "toolsBySender"];

const AGENTS_USED: &[&str] = &["defaults", "list", "entries", "ownership"];
const SETTINGS_USED: &[&str] = &[
    "model",
    "models",
    "modelPolicy",
    "params",
    "timeoutSeconds",
    "workspace",
    "contextTokens",
    "bootstrapMaxChars",
    "bootstrapTotalMaxChars",
    "userTimezone",
    "thinkingDefault",
    "compaction",
    "tools",
];
/// An agent entry's own keys, besides the settings it shares with `defaults`.
const ENTRY_OWN: &[&str] = &["id", "default", "name"];
/// `compaction` keys Pincer acts on, and those it accepts as OpenClaw's.
const COMPACTION_USED: &[&str] = &[
    "enabled",
    "reserveTokensFloor",
    "reserveTokens",
    "keepRecentTokens",
    "model",
    "timeoutSeconds",
];
const COMPACTION_NOT_USED: &[&str] = &[
    "mode",
    "maxHistoryShare",
    "memoryFlush",
    "thinkingLevel",
    "recentTurnsPreserve",
    "identifierPolicy",
    "qualityGuard",
    "midTurnPrecheck",
    "postIndexSync",
    "postCompactionSections",
    "provider",
    "notifyOnStart",
    "notifyUser",
    "maxActiveTranscriptBytes",
    "customInstructions",
];
const SETTINGS_NOT_USED: &[&str] = &[
    "modelSelectionScope",
    "imageModel",
    "pdfModel",
    "voiceModel",
    "mediaModels",
    "utilityModel",
    "decisionModel",
    "reasoningDefault",
    "verboseDefault",
    "fastModeDefault",
    "elevatedDefault",
    "blockStreamingDefault",
    "blockStreamingBreak",
    "blockStreamingChunk",
    "contextPruning",
    "repoRoot",
    "skipBootstrap",
    "timeFormat",
    "heartbeat",
    "maxConcurrent",
    "subagents",
    "sandbox",
    "skills",
    "humanDelay",
    "typingMode",
    "typingIntervalSeconds",
    "mediaMaxMb",
    "envelopeTimezone",
    "envelopeTimestamp",
    "envelopeElapsed",
    "cliBackends",
    "memorySearch",
    "runtime",
    "experimental",
    "agentDir",
    "identity",
    "groupChat",
    "agentRuntime",
];
const MODEL_SELECTION_USED: &[&str] = &["primary", "fallbacks"];
const MODEL_ENTRY_USED: &[&str] = &["alias", "params"];
const MODEL_ENTRY_NOT_USED: &[&str] = &["agentRuntime", "pickerRuntimes", "codeMode", "streaming"];
const MODELS_USED: &[&str] = &["mode", "providers"];
const MODELS_NOT_USED: &[&str] = &["catalogRefresh", "bedrockDiscovery"];
const PROVIDER_USED: &[&str] = &[
    "baseUrl",
    "apiKey",
    "api",
    "headers",
    "models",
    "maxTokens",
    "timeoutSeconds",
    "params",
    "compat",
];
const PROVIDER_NOT_USED: &[&str] = &[
    "auth",
    "region",
    "injectNumCtxForOpenAICompat",
    "agentRuntime",
    "localService",
    "authHeader",
    "request",
];
const MODEL_USED: &[&str] = &[
    "id",
    "name",
    "api",
    "baseUrl",
    "reasoning",
    "input",
    "cost",
    "contextWindow",
    "contextTokens",
    "maxTokens",
    "path",
    "compat",
];
const MODEL_NOT_USED: &[&str] = &[
    "thinkingLevelMap",
    "params",
    "agentRuntime",
    "headers",
    "mediaInput",
    "metadataSource",
];
const COST_USED: &[&str] = &["input", "output", "cacheRead", "cacheWrite"];
const COST_NOT_USED: &[&str] = &["tieredPricing"];
const INPUT_KINDS: &[&str] = &["text", "image", "video", "audio"];

/// `compat` flags Pincer acts on, and OpenClaw's others (kept, not used).
const COMPAT_USED: &[&str] = &[
    "supportsTools",
    "supportsStreamingToolCalls",
    "supportsUsageInStreaming",
    "supportsReasoningEffort",
    "supportsTemperature",
    "supportsDeveloperRole",
    "requiresToolResultName",
    "maxTokensField",
    "toolSchemaProfile",
];
const COMPAT_NOT_USED: &[&str] = &[
    "supportsStore",
    "supportsPromptCacheKey",
    "supportsResponsesContinuation",
    "supportsInstructions",
    "codeMode",
    "supportsStrictMode",
    "supportsJsonSchemaResponseFormat",
    "requiresStringContent",
    "strictMessageKeys",
    "requiresAssistantAfterToolResult",
    "requiresThinkingAsText",
    "requiresReasoningContentOnAssistantMessages",
    "visibleReasoningDetailTypes",
    "supportedReasoningEfforts",
    "reasoningEffortMap",
    "thinkingFormat",
    "unsupportedToolSchemaKeywords",
    "toolCallArgumentsEncoding",
    "requiresOpenAiAnthropicToolPayload",
    "openRouterRouting",
    "vercelGatewayRouting",
    "zaiToolStream",
    "cacheControlFormat",
    "sendSessionAffinityHeaders",
    "sendSessionIdHeader",
    "supportsEagerToolInputStreaming",
    "supportsLongCacheRetention",
];

/// `tools` keys Pincer acts on, and OpenClaw's others.
const TOOLS_USED: &[&str] = &[
    "profile",
    "allow",
    "alsoAllow",
    "deny",
    "byProvider",
    "exec",
    "web",
    "fs",
    "sessions",
    "loopDetection",
];
const TOOLS_NOT_USED: &[&str] = &[
    "media",
    "links",
    "message",
    "agentToAgent",
    "elevated",
    "sandbox",
    "subagents",
    "experimental",
    "codeMode",
    "sessionsSpawn",
];
const TOOL_RULES: &[&str] = &["profile", "allow", "alsoAllow", "deny"];
const EXEC_USED: &[&str] = &[
    "security",
    "ask",
    "host",
    "timeoutSec",
    "backgroundMs",
    "safeBins",
];
const EXEC_NOT_USED: &[&str] = &[
    "node",
    "notifyOnExit",
    "notifyOnExitEmptySuccess",
    "approvalRunningNoticeMs",
    "cleanupMs",
    "pathPrepend",
    "applyPatch",
    "askFallback",
    "safeBinProfiles",
    "safeBinTrustedDirs",
    "strictInlineEval",
];
const WEB_FETCH_USED: &[&str] = &[
    "enabled",
    "maxChars",
    "maxCharsCap",
    "timeoutSeconds",
    "maxRedirects",
    "userAgent",
    "ssrfPolicy",
];
const WEB_FETCH_NOT_USED: &[&str] = &[
    "cacheTtlMinutes",
    "readability",
    "firecrawl",
    "maxResponseBytes",
    "provider",
];
const LOOP_USED: &[&str] = &["criticalThreshold"];
// Pincer's round cap and repeat detector are always on: `enabled` is not read.
const LOOP_NOT_USED: &[&str] = &[
    "enabled",
    "globalCircuitBreakerThreshold",
    "warningThreshold",
    "historySize",
    "detectors",
];
const PROFILES: &[&str] = &["minimal", "coding", "messaging", "full"];

/// A `${VAR}` that was replaced (or could not be), by JSON path.
#[derive(Default)]
pub(crate) struct Substitutions {
    /// path → variable names used in that string.
    pub used: HashMap<String, Vec<String>>,
    /// paths whose string referred to a missing variable (already reported).
    pub missing: HashSet<String>,
}

pub(crate) struct Checker<'a> {
    sources: &'a SourceMap,
    subs: &'a Substitutions,
    env: &'a dyn Fn(&str) -> Option<String>,
    pub diags: Vec<Diagnostic>,
    pub not_used: Vec<String>,
}

/// A value to check: the node and its JSON path.
type Field<'n> = (&'n str, &'n Node, JsonPath);

impl<'a> Checker<'a> {
    pub fn new(
        sources: &'a SourceMap,
        subs: &'a Substitutions,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Checker {
            sources,
            subs,
            env,
            diags: Vec::new(),
            not_used: Vec::new(),
        }
    }

    fn loc(&self, node: &Node) -> Option<Location> {
        Some(self.sources.location(node.pos))
    }

    fn error(&mut self, path: &JsonPath, node: &Node, msg: impl Into<String>) {
        let loc = self.loc(node);
        self.diags.push(Diagnostic::error(path.as_str(), msg, loc));
    }

    fn warn(&mut self, path: &JsonPath, node: &Node, msg: impl Into<String>) {
        let loc = self.loc(node);
        self.diags
            .push(Diagnostic::warning(path.as_str(), msg, loc));
    }

    fn mismatch(&mut self, path: &JsonPath, node: &Node, expected: &str) {
        // A string whose ${VAR} was missing has been reported already.
        if self.subs.missing.contains(path.as_str()) {
            return;
        }
        let msg = format!("expected {expected}, found {}", node.value.describe());
        self.error(path, node, msg);
    }

    /// The members of an object, sorted into known keys; unknown keys are
    /// warned about (with a suggestion), known-but-unused keys are noted.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &JsonPath,
        used: &[&str],
        not_used: &[&str],
    ) -> Vec<Field<'n>> {
        let Some(members) = node.members() else {
            self.mismatch(path, node, "an object");
            return Vec::new();
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for Member {
            key,
            key_pos,
            node: value,
        } in members
        {
            let p = path.key(key);
            let key_node = Node {
                value: Value::Null,
                pos: *key_pos,
            };
            if !seen.insert(key.as_str()) {
                self.warn(&p, &key_node, "key appears twice; the later value wins");
                out.retain(|(k, _, _): &Field<'n>| *k != key.as_str());
            }
            if used.contains(&key.as_str()) {
                out.push((key.as_str(), value, p));
            } else if not_used.contains(&key.as_str()) {
                self.not_used.push(p.to_string());
            } else {
                let msg = match did_you_mean(key, used.iter().chain(not_used).copied()) {
                    Some(s) => format!("unknown key {key:?} (did you mean {s:?}?)"),
                    None => format!("unknown key {key:?}; it is ignored"),
                };
                self.warn(&p, &key_node, msg);
            }
        }
        out
    }

    fn string(&mut self, node: &Node, path: &JsonPath) -> Option<Spanned<String>> {
        match &node.value {
            Value::String(s) => Some(Spanned::new(s.clone(), path.as_str(), self.loc(node))),
            _ => {
                self.mismatch(path, node, "a string");
                None
            }
        }
    }

    fn nonempty_string(&mut self, node: &Node, path: &JsonPath) -> Option<Spanned<String>> {
        let s = self.string(node, path)?;
        if s.value.trim().is_empty() {
            if !self.subs.missing.contains(path.as_str()) {
                self.error(path, node, "expected a non-empty string, found \"\"");
            }
            return None;
        }
        Some(s)
    }

    fn bool(&mut self, node: &Node, path: &JsonPath) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.mismatch(path, node, "true or false");
                None
            }
        }
    }

    fn positive_int(&mut self, node: &Node, path: &JsonPath) -> Option<u64> {
        match node.value {
            Value::Number(n, _) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 1e15 => {
                Some(n as u64)
            }
            _ => {
                self.mismatch(path, node, "a positive integer");
                None
            }
        }
    }

    fn non_negative(&mut self, node: &Node, path: &JsonPath) -> Option<f64> {
        match node.value {
            Value::Number(n, _) if n.is_finite() && n >= 0.0 => Some(n),
            _ => {
                self.mismatch(path, node, "a number ≥ 0");
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, path: &JsonPath) -> Option<Vec<Spanned<String>>> {
        let Value::Array(items) = &node.value else {
            self.mismatch(path, node, "an array of strings");
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.nonempty_string(n, &path.index(i)))
                .collect(),
        )
    }

    fn json(node: &Node) -> serde_json::Value {
        node.to_json(&mut Vec::new(), &|_| false)
    }

    fn object_json(&mut self, node: &Node, path: &JsonPath) -> Option<serde_json::Value> {
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return None;
        }
        Some(Self::json(node))
    }

    fn one_of(&mut self, node: &Node, path: &JsonPath, allowed: &[&str]) -> Option<String> {
        let s = self.string(node, path)?;
        if allowed.contains(&s.value.as_str()) {
            return Some(s.value);
        }
        let list = allowed
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = did_you_mean(&s.value, allowed.iter().copied())
            .map(|d| format!(" (did you mean {d:?}?)"))
            .unwrap_or_default();
        self.error(
            path,
            node,
            format!("expected one of {list}, found {:?}{hint}", s.value),
        );
        None
    }

    // ---- sections ----

    pub fn root(&mut self, node: &Node) -> Config {
        let mut config = Config::default();
        let root = JsonPath::root();
        let Some(members) = node.members() else {
            self.mismatch(&root, node, "an object at the top of the file");
            return config;
        };
        for m in members {
            let p = root.key(&m.key);
            match m.key.as_str() {
                "agents" => config.agents = self.agents(&m.node, &p),
                "models" => config.models = self.models(&m.node, &p),
                "env" => self.env_section(&m.node, &p),
                "gateway" => config.gateway = self.gateway(&m.node, &p),
                "auth" => config.auth = self.auth(&m.node, &p),
                "session" => config.session = self.session(&m.node, &p),
                "messages" => config.messages = self.messages(&m.node, &p),
                "tools" => config.tools = self.tools(&m.node, &p),
                "channels" => config.channels = self.channels(&m.node, &p),
                k if ROOT_SILENT.contains(&k) => {}
                k if ROOT_NOT_USED.contains(&k) => self.not_used.push(p.to_string()),
                k => {
                    let key_node = Node {
                        value: Value::Null,
                        pos: m.key_pos,
                    };
                    let all = ROOT_USED.iter().chain(ROOT_NOT_USED).copied();
                    let msg = match did_you_mean(k, all) {
                        Some(s) => format!("unknown top-level section {k:?} (did you mean {s:?}?)"),
                        None => format!("unknown top-level section {k:?}; it is ignored"),
                    };
                    self.warn(&p, &key_node, msg);
                }
            }
        }
        config.not_used = std::mem::take(&mut self.not_used);
        config
    }

    /// `session.*`: only `maintenance` is Pincer's business yet; OpenClaw's
    /// other keys (`dmScope`, `reset`, `mainKey`…) are listed as not used.
    fn session(&mut self, node: &Node, path: &JsonPath) -> SessionConfig {
        let mut s = SessionConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return s;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "maintenance" => {}
                "dmScope" => {
                    s.dm_scope = self
                        .one_of(value, &p, &DmScope::NAMES)
                        .as_deref()
                        .and_then(DmScope::parse);
                    continue;
                }
                "mainKey" => {
                    s.main_key = self.nonempty_string(value, &p).map(|k| k.value);
                    continue;
                }
                _ => {
                    self.not_used.push(p.to_string());
                    continue;
                }
            }
            if value.members().is_none() {
                self.mismatch(&p, value, "an object");
                continue;
            }
            let m = &mut s.maintenance;
            for (key, value, p) in self.fields_quiet(value, &p) {
                match key {
                    "mode" => {
                        m.enforce = self
                            .one_of(value, &p, &["enforce", "warn"])
                            .map(|v| v == "enforce");
                    }
                    "pruneAfter" => m.prune_after = self.duration(value, &p),
                    "pruneDays" => {
                        m.prune_after = self
                            .positive_int(value, &p)
                            .map(|d| std::time::Duration::from_secs(d.saturating_mul(86_400)));
                    }
                    "maxEntries" => m.max_entries = self.positive_int(value, &p),
                    _ => {}
                }
            }
        }
        s
    }

    /// `messages.*`: only `queue` is Pincer's business yet; OpenClaw's other
    /// keys (`inbound`, `ackReaction`, `responsePrefix`…) are listed as not used.
    fn messages(&mut self, node: &Node, path: &JsonPath) -> MessagesConfig {
        let mut m = MessagesConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return m;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            if key == "queue" {
                m.queue = self.queue(value, &p);
            } else if key == "inbound" {
                m.inbound = self.inbound(value, &p);
            } else {
                self.not_used.push(p.to_string());
            }
        }
        m
    }

    fn queue(&mut self, node: &Node, path: &JsonPath) -> QueueConfig {
        const KEYS: &[&str] = &[
            "mode",
            "byChannel",
            "debounceMs",
            "debounceMsByChannel",
            "cap",
            "drop",
        ];
        let mut q = QueueConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return q;
        }
        for (key, value, p) in self.fields(node, path, KEYS, &[]) {
            match key {
                "mode" => q.mode = self.queue_mode(value, &p),
                "drop" => {
                    q.drop = self
                        .one_of(value, &p, &["old", "new", "summarize"])
                        .as_deref()
                        .and_then(QueueDrop::parse);
                }
                "debounceMs" => q.debounce_ms = self.non_negative(value, &p).map(|n| n as u64),
                "cap" => q.cap = self.positive_int(value, &p),
                "byChannel" | "debounceMsByChannel" => {
                    if value.members().is_none() {
                        self.mismatch(&p, value, "an object");
                        continue;
                    }
                    for (channel, v, pp) in self.fields_quiet(value, &p) {
                        let channel = channel.to_ascii_lowercase();
                        if key == "byChannel" {
                            if let Some(mode) = self.queue_mode(v, &pp) {
                                q.by_channel.insert(channel, mode);
                            }
                        } else if let Some(ms) = self.non_negative(v, &pp) {
                            q.debounce_ms_by_channel.insert(channel, ms as u64);
                        }
                    }
                }
                _ => {}
            }
        }
        q
    }

    fn inbound(&mut self, node: &Node, path: &JsonPath) -> InboundConfig {
        let mut i = InboundConfig::default();
        for (key, value, p) in self.fields(node, path, &["debounceMs", "byChannel"], &[]) {
            if key == "debounceMs" {
                i.debounce_ms = self.non_negative(value, &p).map(|n| n as u64);
                continue;
            }
            if value.members().is_none() {
                self.mismatch(&p, value, "an object");
                continue;
            }
            for (channel, v, pp) in self.fields_quiet(value, &p) {
                if let Some(ms) = self.non_negative(v, &pp) {
                    i.by_channel.insert(channel.to_ascii_lowercase(), ms as u64);
                }
            }
        }
        i
    }

    /// `channels.*`: Telegram and WhatsApp are Pincer's; the other apps
    /// OpenClaw serves are kept and listed as not used.
    fn channels(&mut self, node: &Node, path: &JsonPath) -> ChannelsConfig {
        let mut c = ChannelsConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return c;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "telegram" => c.telegram = Some(self.telegram(value, &p)),
                "whatsapp" => c.whatsapp = Some(self.whatsapp(value, &p)),
                _ => self.not_used.push(p.to_string()),
            }
        }
        c
    }

    /// A channel's fields: the shared ones and its `own`, with the shared
    /// and its own not-used keys.
    fn channel_fields<'n>(
        &mut self,
        node: &'n Node,
        path: &JsonPath,
        own: &[&str],
        own_not_used: &[&str],
    ) -> Vec<Field<'n>> {
        const SHARED: &[&str] = &[
            "enabled",
            "dmPolicy",
            "groupPolicy",
            "allowFrom",
            "groupAllowFrom",
            "textChunkLimit",
            "groups",
        ];
        let used = [SHARED, own].concat();
        let not_used = [CHANNEL_NOT_USED, own_not_used].concat();
        self.fields(node, path, &used, &not_used)
    }

    /// The keys every channel shares; `false` for a key that is not one.
    fn channel_access(
        &mut self,
        a: &mut ChannelAccess,
        key: &str,
        value: &Node,
        p: &JsonPath,
    ) -> bool {
        match key {
            "enabled" => a.enabled = self.bool(value, p),
            "dmPolicy" => {
                a.dm_policy = self
                    .one_of(value, p, &DmPolicy::NAMES)
                    .as_deref()
                    .and_then(DmPolicy::parse);
            }
            "groupPolicy" => {
                a.group_policy = self
                    .one_of(value, p, &GroupPolicy::NAMES)
                    .as_deref()
                    .and_then(GroupPolicy::parse);
            }
            "allowFrom" => a.allow_from = self.id_list(value, p).unwrap_or_default(),
            "groupAllowFrom" => a.group_allow_from = self.id_list(value, p),
            "textChunkLimit" => a.text_chunk_limit = self.positive_int(value, p),
            "groups" => {
                if value.members().is_none() {
                    self.mismatch(p, value, "an object");
                    return true;
                }
                for (id, g, gp) in self.fields_quiet(value, p) {
                    let mut settings = GroupSettings::default();
                    for (k, v, pp) in self.fields(
                        g,
                        &gp,
                        &["enabled", "requireMention", "allowFrom"],
                        GROUP_NOT_USED,
                    ) {
                        match k {
                            "enabled" => settings.enabled = self.bool(v, &pp),
                            "requireMention" => settings.require_mention = self.bool(v, &pp),
                            "allowFrom" => settings.allow_from = self.id_list(v, &pp),
                            _ => {}
                        }
                    }
                    a.groups.insert(id.to_string(), settings);
                }
            }
            _ => return false,
        }
        true
    }

    /// Sender or chat ids: strings or numbers (Telegram's are numbers).
    fn id_list(&mut self, node: &Node, path: &JsonPath) -> Option<Vec<String>> {
        let Value::Array(items) = &node.value else {
            self.mismatch(path, node, "an array of ids");
            return None;
        };
        let mut out = Vec::new();
        for (i, n) in items.iter().enumerate() {
            match &n.value {
                Value::Number(x, _) if x.is_finite() && x.fract() == 0.0 => {
                    out.push(format!("{}", *x as i64));
                }
                Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                _ => self.mismatch(&path.index(i), n, "an id (a string or a number)"),
            }
        }
        Some(out)
    }

    fn telegram(&mut self, node: &Node, path: &JsonPath) -> TelegramConfig {
        const KEYS: &[&str] = &[
            "botToken",
            "tokenFile",
            "apiRoot",
            "webhookUrl",
            "webhookSecret",
            "webhookHost",
            "webhookPort",
            "webhookPath",
            "commands",
        ];
        let mut t = TelegramConfig::default();
        for (key, value, p) in self.channel_fields(node, path, KEYS, TELEGRAM_NOT_USED) {
            if self.channel_access(&mut t.access, key, value, &p) {
                continue;
            }
            match key {
                "botToken" => t.bot_token = self.secret(value, &p),
                "tokenFile" => t.token_file = self.nonempty_string(value, &p),
                "apiRoot" => t.api_root = self.base_url(value, &p),
                "webhookUrl" => t.webhook_url = self.base_url(value, &p),
                "webhookSecret" => t.webhook_secret = self.secret(value, &p),
                "webhookHost" => t.webhook_host = self.nonempty_string(value, &p).map(|s| s.value),
                "webhookPath" => t.webhook_path = self.nonempty_string(value, &p).map(|s| s.value),
                "webhookPort" => {
                    t.webhook_port = self.positive_int(value, &p).and_then(|n| {
                        let port = u16::try_from(n).ok();
                        if port.is_none() {
                            self.error(&p, value, format!("expected a port (1-65535), found {n}"));
                        }
                        port
                    });
                }
                "commands" => {
                    for (k, v, pp) in self.fields(value, &p, &["native"], &["nativeSkills"]) {
                        if k == "native" {
                            // OpenClaw also takes "auto" (on).
                            t.native_commands = match &v.value {
                                Value::String(s) if s == "auto" => Some(true),
                                _ => self.bool(v, &pp),
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }

    fn whatsapp(&mut self, node: &Node, path: &JsonPath) -> WhatsAppConfig {
        let mut w = WhatsAppConfig::default();
        for (key, value, p) in self.channel_fields(node, path, &["authDir"], WHATSAPP_NOT_USED) {
            if self.channel_access(&mut w.access, key, value, &p) {
                continue;
            }
            if key == "authDir" {
                w.auth_dir = self.nonempty_string(value, &p);
            }
        }
        w
    }

    fn queue_mode(&mut self, node: &Node, path: &JsonPath) -> Option<QueueMode> {
        let s = self.string(node, path)?;
        let mode = QueueMode::parse(&s.value);
        if mode.is_none() {
            self.one_of(node, path, &["collect", "followup", "steer", "interrupt"]);
        }
        mode
    }

    /// A duration as OpenClaw writes one: `"30d"`, `"12h"`, `"90m"`.
    fn duration(&mut self, node: &Node, path: &JsonPath) -> Option<std::time::Duration> {
        let s = self.string(node, path)?;
        match humantime::parse_duration(s.value.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                self.error(
                    path,
                    node,
                    format!(
                        "expected a duration such as \"30d\" or \"12h\", found {:?}",
                        s.value
                    ),
                );
                None
            }
        }
    }

    /// `gateway.*`. OpenClaw has many more gateway keys (control UI,
    /// Tailscale, TLS…): they pass silently rather than as unknown.
    fn gateway(&mut self, node: &Node, path: &JsonPath) -> GatewayConfig {
        let mut g = GatewayConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return g;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "port" => {
                    g.port = self
                        .positive_int(value, &p)
                        .filter(|n| {
                            let ok = *n <= 65535;
                            if !ok {
                                self.error(&p, value, format!("port {n} is above 65535"));
                            }
                            ok
                        })
                        .map(|n| Spanned::new(n, p.as_str(), self.loc(value)));
                }
                "bind" => {
                    let allowed = ["loopback", "lan", "tailnet", "auto", "custom"];
                    if let Some(b) = self.one_of(value, &p, &allowed) {
                        g.bind = Some(Spanned::new(b, p.as_str(), self.loc(value)));
                    }
                }
                "customBindHost" => g.custom_bind_host = self.nonempty_string(value, &p),
                "tools" => {
                    for (k, v, pp) in self.fields(value, &p, &["allow", "deny"], &[]) {
                        match k {
                            "allow" => g.tools_allow = self.string_list(v, &pp).unwrap_or_default(),
                            "deny" => g.tools_deny = self.string_list(v, &pp).unwrap_or_default(),
                            _ => {}
                        }
                    }
                }
                "auth" => {
                    for (key, value, p) in self.fields_quiet(value, &p) {
                        match key {
                            "mode" => {
                                let allowed = ["none", "token", "password", "trusted-proxy"];
                                if let Some(m) = self.one_of(value, &p, &allowed) {
                                    g.auth_mode =
                                        Some(Spanned::new(m, p.as_str(), self.loc(value)));
                                }
                            }
                            "token" => g.token = self.secret(value, &p),
                            "password" => g.password = self.secret(value, &p),
                            "rateLimit" => g.rate_limit = self.rate_limit(value, &p),
                            _ => {}
                        }
                    }
                }
                "http" => {
                    let endpoint = |name: &str| -> Option<&Node> {
                        value.get("endpoints")?.get(name)?.get("enabled")
                    };
                    if let Some(n) = endpoint("chatCompletions") {
                        let p = p.key("endpoints").key("chatCompletions").key("enabled");
                        g.chat_completions = self.bool(n, &p);
                    }
                    if let Some(n) = endpoint("responses") {
                        let p = p.key("endpoints").key("responses").key("enabled");
                        g.responses = self.bool(n, &p);
                    }
                }
                _ => {}
            }
        }
        g
    }

    /// `gateway.auth.rateLimit`.
    fn rate_limit(&mut self, node: &Node, path: &JsonPath) -> RateLimitConfig {
        let mut r = RateLimitConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return r;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "maxAttempts" => r.max_attempts = self.positive_int(value, &p),
                "windowMs" => r.window_ms = self.positive_int(value, &p),
                "lockoutMs" => r.lockout_ms = self.positive_int(value, &p),
                "exemptLoopback" => r.exempt_loopback = self.bool(value, &p),
                _ => {}
            }
        }
        r
    }

    /// `auth.profiles` and `auth.order`.
    fn auth(&mut self, node: &Node, path: &JsonPath) -> AuthConfig {
        let mut a = AuthConfig::default();
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return a;
        }
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "profiles" => {
                    let Some(members) = value.members() else {
                        self.mismatch(&p, value, "an object of profiles by id");
                        continue;
                    };
                    for m in members {
                        let pp = p.key(&m.key);
                        let id = Spanned::new(m.key.clone(), pp.as_str(), self.loc(&m.node));
                        let (mut provider, mut mode) = (None, None);
                        for (key, value, p) in self.fields_quiet(&m.node, &pp) {
                            match key {
                                "provider" => provider = self.nonempty_string(value, &p),
                                "mode" | "type" => {
                                    mode = self.one_of(value, &p, &["api_key", "oauth", "token"]);
                                }
                                _ => {}
                            }
                        }
                        // `provider:name` ids name their provider.
                        let provider = provider
                            .map(|p| p.value)
                            .or_else(|| m.key.split_once(':').map(|(p, _)| p.to_string()));
                        match provider {
                            Some(provider) => a.profiles.push(AuthProfile {
                                id,
                                provider: provider.to_ascii_lowercase(),
                                mode,
                            }),
                            None => self.error(
                                &pp,
                                &m.node,
                                "an auth profile needs a `provider` (or an id like \"provider:name\")",
                            ),
                        }
                    }
                }
                "order" => {
                    let Some(members) = value.members() else {
                        self.mismatch(&p, value, "an object of provider ids to profile id lists");
                        continue;
                    };
                    for m in members {
                        if let Some(list) = self.string_list(&m.node, &p.key(&m.key)) {
                            a.order.push((m.key.to_ascii_lowercase(), list));
                        }
                    }
                }
                _ => {}
            }
        }
        a
    }

    fn env_section(&mut self, node: &Node, path: &JsonPath) {
        for (key, value, p) in self.fields(node, path, &["vars"], &["shellEnv"]) {
            if key != "vars" {
                continue;
            }
            match value.members() {
                Some(members) => {
                    for m in members {
                        let _ = self.string(&m.node, &p.key(&m.key));
                    }
                }
                None => self.mismatch(&p, value, "an object of variable names to values"),
            }
        }
    }

    fn agents(&mut self, node: &Node, path: &JsonPath) -> AgentsConfig {
        let mut agents = AgentsConfig::default();
        for (key, value, p) in self.fields(node, path, AGENTS_USED, &[]) {
            match key {
                "defaults" => agents.defaults = self.settings(value, &p, SETTINGS_USED),
                "list" => {
                    let Value::Array(items) = &value.value else {
                        self.mismatch(&p, value, "an array of agents");
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        if let Some(entry) = self.agent_entry(item, &p.index(i), None) {
                            agents.entries.push(entry);
                        }
                    }
                }
                "entries" => {
                    let Some(members) = value.members() else {
                        self.mismatch(&p, value, "an object of agents by id");
                        continue;
                    };
                    for m in members {
                        let id_node = Node {
                            value: Value::String(m.key.clone()),
                            pos: m.key_pos,
                        };
                        if let Some(entry) =
                            self.agent_entry(&m.node, &p.key(&m.key), Some(&id_node))
                        {
                            agents.entries.push(entry);
                        }
                    }
                }
                "ownership" => {
                    let _ = self.one_of(value, &p, &["explicit"]);
                }
                _ => {}
            }
        }
        self.check_agent_ids(&agents.entries);
        agents
    }

    fn check_agent_ids(&mut self, entries: &[AgentEntry]) {
        let mut seen: HashMap<String, &AgentEntry> = HashMap::new();
        for e in entries {
            let key = e.id.value.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                let at = first.id.first_at();
                self.diags.push(Diagnostic::error(
                    e.id.path.as_str(),
                    format!("agent id {:?} is defined twice{at}", e.id.value),
                    e.id.loc.clone(),
                ));
            } else {
                seen.insert(key, e);
            }
        }
        let defaults: Vec<&AgentEntry> = entries.iter().filter(|e| e.default).collect();
        if defaults.len() > 1 {
            let ids = defaults
                .iter()
                .map(|e| e.id.value.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.diags.push(Diagnostic::error(
                defaults[1].id.path.as_str(),
                format!("more than one agent has default: true ({ids}); keep one"),
                defaults[1].id.loc.clone(),
            ));
        }
    }

    fn agent_entry(
        &mut self,
        node: &Node,
        path: &JsonPath,
        id_from_key: Option<&Node>,
    ) -> Option<AgentEntry> {
        let settings = self.settings(node, path, &[ENTRY_OWN, SETTINGS_USED].concat());
        let mut default = false;
        let mut name = None;
        let mut id = id_from_key.map(|n| (n, path.clone()));
        let fields = node
            .members()
            .map(|_| self.fields_quiet(node, path))
            .unwrap_or_default();
        for (key, value, p) in fields {
            match key {
                "default" => default = self.bool(value, &p).unwrap_or(false),
                "name" => name = self.string(value, &p).map(|s| s.value),
                "id" if id_from_key.is_none() => id = Some((value, p)),
                _ => {}
            }
        }
        let Some((id_node, id_path)) = id else {
            if node.members().is_some() {
                self.error(path, node, "missing required key \"id\"");
            }
            return None;
        };
        let id = self.nonempty_string(id_node, &id_path)?;
        let valid = {
            let mut chars = id.value.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && id.value.len() <= 64
        };
        if !valid {
            self.error(
                &id_path,
                id_node,
                format!(
                    "agent id {:?} must be 1-64 letters, digits, '_' or '-', starting with a letter, digit or '_'",
                    id.value
                ),
            );
        }
        Some(AgentEntry {
            id,
            default,
            name,
            settings,
        })
    }

    /// Members of an object already checked for unknown keys by `settings`.
    fn fields_quiet<'n>(&mut self, node: &'n Node, path: &JsonPath) -> Vec<Field<'n>> {
        node.members()
            .unwrap_or_default()
            .iter()
            .map(|m| (m.key.as_str(), &m.node, path.key(&m.key)))
            .collect()
    }

    fn settings(&mut self, node: &Node, path: &JsonPath, used: &[&str]) -> AgentSettings {
        let mut s = AgentSettings::default();
        for (key, value, p) in self.fields(node, path, used, SETTINGS_NOT_USED) {
            match key {
                "model" => s.model = self.model_selection(value, &p),
                "models" => s.models = self.model_entries(value, &p),
                "modelPolicy" => {
                    for (k, v, pp) in self.fields(value, &p, &["allow"], &[]) {
                        if k == "allow" {
                            s.allow = self.string_list(v, &pp);
                        }
                    }
                }
                "params" => s.params = self.object_json(value, &p),
                "timeoutSeconds" => s.timeout_seconds = self.positive_int(value, &p),
                "workspace" => s.runtime.workspace = self.nonempty_string(value, &p),
                "contextTokens" => s.runtime.context_tokens = self.positive_int(value, &p),
                "bootstrapMaxChars" => {
                    s.runtime.bootstrap_max_chars = self.positive_int(value, &p);
                }
                "bootstrapTotalMaxChars" => {
                    s.runtime.bootstrap_total_max_chars = self.positive_int(value, &p);
                }
                "userTimezone" => {
                    s.runtime.user_timezone = self.nonempty_string(value, &p).map(|v| v.value);
                }
                "thinkingDefault" => {
                    s.runtime.thinking_default = self
                        .one_of(
                            value,
                            &p,
                            &[
                                "off", "minimal", "low", "medium", "high", "xhigh", "adaptive",
                            ],
                        )
                        .map(|v| if v == "adaptive" { "medium".into() } else { v });
                }
                "compaction" => s.runtime.compaction = self.compaction(value, &p),
                "tools" => s.tools = self.tools(value, &p),
                _ => {}
            }
        }
        s
    }

    fn compat(&mut self, node: &Node, path: &JsonPath) -> Compat {
        let mut c = Compat::default();
        for (key, value, p) in self.fields(node, path, COMPAT_USED, COMPAT_NOT_USED) {
            match key {
                "supportsTools" => c.supports_tools = self.bool(value, &p),
                "supportsStreamingToolCalls" => {
                    c.supports_streaming_tool_calls = self.bool(value, &p);
                }
                "supportsUsageInStreaming" => c.supports_usage_in_streaming = self.bool(value, &p),
                "supportsReasoningEffort" => c.supports_reasoning_effort = self.bool(value, &p),
                "supportsTemperature" => c.supports_temperature = self.bool(value, &p),
                "supportsDeveloperRole" => c.supports_developer_role = self.bool(value, &p),
                "requiresToolResultName" => c.requires_tool_result_name = self.bool(value, &p),
                "maxTokensField" => {
                    c.max_tokens_field =
                        self.one_of(value, &p, &["max_completion_tokens", "max_tokens"]);
                }
                "toolSchemaProfile" => {
                    c.tool_schema_profile = self.one_of(value, &p, &["llamacpp", "gemini"]);
                }
                _ => {}
            }
        }
        c
    }

    fn tools(&mut self, node: &Node, path: &JsonPath) -> ToolsConfig {
        let mut t = ToolsConfig::default();
        for (key, value, p) in self.fields(node, path, TOOLS_USED, TOOLS_NOT_USED) {
            match key {
                "byProvider" => {
                    if value.members().is_none() {
                        self.mismatch(&p, value, "an object");
                        continue;
                    }
                    for (provider, v, pp) in self.fields_quiet(value, &p) {
                        let rules = self.tool_rules(v, &pp);
                        t.by_provider.push((provider.to_ascii_lowercase(), rules));
                    }
                }
                "exec" => t.exec = self.exec(value, &p),
                "web" => {
                    for (k, v, pp) in self.fields(value, &p, &["fetch"], &["search"]) {
                        if k == "fetch" {
                            t.web_fetch = self.web_fetch(v, &pp);
                        }
                    }
                }
                "sessions" => {
                    for (k, v, pp) in self.fields(value, &p, &["visibility"], &[]) {
                        if k == "visibility" {
                            t.sessions_visibility =
                                self.one_of(v, &pp, &["self", "tree", "agent", "all"]);
                        }
                    }
                }
                "fs" => {
                    for (k, v, pp) in self.fields(value, &p, &["workspaceOnly"], &[]) {
                        if k == "workspaceOnly" {
                            t.fs_workspace_only = self.bool(v, &pp);
                        }
                    }
                }
                "loopDetection" => {
                    let l = &mut t.loop_detection;
                    for (k, v, pp) in self.fields(value, &p, LOOP_USED, LOOP_NOT_USED) {
                        if k == "criticalThreshold" {
                            l.critical_threshold = self.positive_int(v, &pp);
                        }
                    }
                }
                _ => {}
            }
        }
        let rules = self.tool_rules_of(node, path);
        t.profile = rules.profile;
        t.allow = rules.allow;
        t.also_allow = rules.also_allow;
        t.deny = rules.deny;
        t
    }

    fn tool_rules(&mut self, node: &Node, path: &JsonPath) -> ToolRules {
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return ToolRules::default();
        }
        // Unknown keys are reported here; `tool_rules_of` reads the values.
        self.fields(node, path, TOOL_RULES, &[]);
        self.tool_rules_of(node, path)
    }

    /// `profile`, `allow`, `alsoAllow`, `deny` of an object whose other keys
    /// were checked already.
    fn tool_rules_of(&mut self, node: &Node, path: &JsonPath) -> ToolRules {
        let mut r = ToolRules::default();
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "profile" => {
                    r.profile = self
                        .one_of(value, &p, PROFILES)
                        .map(|v| Spanned::new(v, p.as_str(), self.loc(value)));
                }
                "allow" => r.allow = self.string_list(value, &p),
                "alsoAllow" => r.also_allow = self.string_list(value, &p),
                "deny" => r.deny = self.string_list(value, &p),
                _ => {}
            }
        }
        r
    }

    fn exec(&mut self, node: &Node, path: &JsonPath) -> ExecConfig {
        let mut e = ExecConfig::default();
        for (key, value, p) in self.fields(node, path, EXEC_USED, EXEC_NOT_USED) {
            match key {
                "security" => e.security = self.one_of(value, &p, &["deny", "allowlist", "full"]),
                "ask" => e.ask = self.one_of(value, &p, &["off", "on-miss", "always"]),
                "host" => e.host = self.one_of(value, &p, &["sandbox", "gateway", "node", "auto"]),
                "timeoutSec" => e.timeout_sec = self.positive_int(value, &p),
                "backgroundMs" => e.background_ms = self.count(value, &p),
                "safeBins" => e.safe_bins = self.string_list(value, &p),
                _ => {}
            }
        }
        e
    }

    fn web_fetch(&mut self, node: &Node, path: &JsonPath) -> WebFetchConfig {
        let mut w = WebFetchConfig::default();
        for (key, value, p) in self.fields(node, path, WEB_FETCH_USED, WEB_FETCH_NOT_USED) {
            match key {
                "enabled" => w.enabled = self.bool(value, &p),
                "maxChars" => w.max_chars = self.positive_int(value, &p),
                "maxCharsCap" => w.max_chars_cap = self.positive_int(value, &p),
                "timeoutSeconds" => w.timeout_seconds = self.positive_int(value, &p),
                "maxRedirects" => w.max_redirects = self.count(value, &p),
                "userAgent" => w.user_agent = self.nonempty_string(value, &p).map(|s| s.value),
                "ssrfPolicy" => {
                    for (k, v, pp) in self.fields(
                        value,
                        &p,
                        &[
                            "dangerouslyAllowPrivateNetwork",
                            "allowPrivateNetwork",
                            "allowedHostnames",
                            "hostnameAllowlist",
                            "blockedHostnames",
                        ],
                        &["allowRfc2544BenchmarkRange", "allowIpv6UniqueLocalRange"],
                    ) {
                        match k {
                            "dangerouslyAllowPrivateNetwork" | "allowPrivateNetwork" => {
                                w.allow_private_network = self.bool(v, &pp);
                            }
                            "allowedHostnames" => {
                                w.allowed_hostnames = self
                                    .string_list(v, &pp)
                                    .map(|l| l.into_iter().map(|s| s.value).collect());
                            }
                            "hostnameAllowlist" => {
                                w.only_hostnames = self
                                    .string_list(v, &pp)
                                    .map(|l| l.into_iter().map(|s| s.value).collect());
                            }
                            "blockedHostnames" => {
                                w.blocked_hostnames = self
                                    .string_list(v, &pp)
                                    .map(|l| l.into_iter().map(|s| s.value).collect());
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        w
    }

    fn compaction(&mut self, node: &Node, path: &JsonPath) -> CompactionConfig {
        let mut c = CompactionConfig::default();
        for (key, value, p) in self.fields(node, path, COMPACTION_USED, COMPACTION_NOT_USED) {
            match key {
                "enabled" => c.enabled = self.bool(value, &p),
                "reserveTokensFloor" => c.reserve_tokens_floor = self.count(value, &p),
                "reserveTokens" => c.reserve_tokens = self.count(value, &p),
                "keepRecentTokens" => c.keep_recent_tokens = self.positive_int(value, &p),
                "model" => c.model = self.nonempty_string(value, &p),
                "timeoutSeconds" => c.timeout_seconds = self.positive_int(value, &p),
                _ => {}
            }
        }
        c
    }

    /// A whole number ≥ 0.
    fn count(&mut self, node: &Node, path: &JsonPath) -> Option<u64> {
        match node.value {
            Value::Number(n, _) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 1e15 => {
                Some(n as u64)
            }
            _ => {
                self.mismatch(path, node, "a whole number ≥ 0");
                None
            }
        }
    }

    fn model_selection(&mut self, node: &Node, path: &JsonPath) -> Option<ModelSelection> {
        match &node.value {
            Value::String(_) => Some(ModelSelection {
                primary: self.nonempty_string(node, path),
                fallbacks: None,
            }),
            Value::Object(_) => {
                let mut sel = ModelSelection::default();
                for (key, value, p) in self.fields(node, path, MODEL_SELECTION_USED, &[]) {
                    match key {
                        "primary" => sel.primary = self.nonempty_string(value, &p),
                        "fallbacks" => sel.fallbacks = self.string_list(value, &p),
                        _ => {}
                    }
                }
                Some(sel)
            }
            _ => {
                self.mismatch(path, node, "a model ref string or { primary, fallbacks }");
                None
            }
        }
    }

    fn model_entries(&mut self, node: &Node, path: &JsonPath) -> Vec<ModelEntry> {
        let Some(members) = node.members() else {
            self.mismatch(
                path,
                node,
                "an object mapping model refs to { alias, params }",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in members {
            let p = path.key(&m.key);
            let reference = Spanned::new(
                m.key.clone(),
                p.as_str(),
                Some(self.sources.location(m.key_pos)),
            );
            let mut entry = ModelEntry {
                reference,
                alias: None,
                params: None,
            };
            for (key, value, pp) in self.fields(&m.node, &p, MODEL_ENTRY_USED, MODEL_ENTRY_NOT_USED)
            {
                match key {
                    "alias" => entry.alias = self.nonempty_string(value, &pp),
                    "params" => {
                        entry.params = self.object_json(value, &pp);
                        if entry.params.is_some() {
                            self.model_params(value, &pp);
                        }
                    }
                    _ => {}
                }
            }
            out.push(entry);
        }
        out
    }

    /// The per-model params Pincer sends: OpenRouter's `provider` routing,
    /// `temperature`, `extra_body`. Others are OpenClaw's, passed on.
    fn model_params(&mut self, node: &Node, path: &JsonPath) {
        const ROUTING: &[&str] = &[
            "order",
            "only",
            "ignore",
            "quantizations",
            "allow_fallbacks",
            "require_parameters",
            "data_collection",
            "sort",
            "max_price",
        ];
        const ROUTING_OTHER: &[&str] = &[
            "zdr",
            "enforce_distillable_text",
            "preferred_min_throughput",
            "preferred_max_latency",
        ];
        for (key, value, p) in self.fields_quiet(node, path) {
            match key {
                "temperature" => {
                    if let Some(t) = self.non_negative(value, &p)
                        && t > 2.0
                    {
                        self.error(
                            &p,
                            value,
                            format!("expected a temperature from 0 to 2, found {t}"),
                        );
                    }
                }
                "extra_body" | "extraBody" if value.members().is_none() => {
                    self.mismatch(&p, value, "an object of request fields");
                }
                "provider" => {
                    for (k, v, pp) in self.fields(value, &p, ROUTING, ROUTING_OTHER) {
                        match k {
                            "order" | "only" | "ignore" | "quantizations" => {
                                self.string_list(v, &pp);
                            }
                            "allow_fallbacks" | "require_parameters" => {
                                self.bool(v, &pp);
                            }
                            "data_collection" => {
                                self.one_of(v, &pp, &["allow", "deny"]);
                            }
                            "sort" => {
                                self.one_of(v, &pp, &["price", "throughput", "latency"]);
                            }
                            "max_price" => {
                                for (_, price, ppp) in self.fields(
                                    v,
                                    &pp,
                                    &["prompt", "completion", "image", "request"],
                                    &[],
                                ) {
                                    self.non_negative(price, &ppp);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn models(&mut self, node: &Node, path: &JsonPath) -> ModelsConfig {
        let mut models = ModelsConfig::default();
        for (key, value, p) in self.fields(node, path, MODELS_USED, MODELS_NOT_USED) {
            match key {
                "mode" => {
                    models.mode = match self.one_of(value, &p, &["merge", "replace"]).as_deref() {
                        Some("replace") => Mode::Replace,
                        _ => Mode::Merge,
                    }
                }
                "providers" => {
                    let Some(members) = value.members() else {
                        self.mismatch(&p, value, "an object of providers by id");
                        continue;
                    };
                    let mut seen: HashMap<String, String> = HashMap::new();
                    for m in members {
                        let pp = p.key(&m.key);
                        let id = m.key.trim().to_ascii_lowercase();
                        let key_loc = self.sources.location(m.key_pos);
                        if id.is_empty() || id.contains('/') {
                            self.diags.push(Diagnostic::error(
                                pp.as_str(),
                                format!(
                                    "provider id {:?} must be non-empty and contain no '/'",
                                    m.key
                                ),
                                Some(key_loc),
                            ));
                            continue;
                        }
                        if let Some(first) = seen.insert(id.clone(), m.key.clone()) {
                            self.diags.push(Diagnostic::error(
                                pp.as_str(),
                                format!(
                                    "provider {:?} is defined twice (as {first:?} and {:?})",
                                    id, m.key
                                ),
                                Some(key_loc),
                            ));
                            continue;
                        }
                        let spanned_id = Spanned::new(id, pp.as_str(), Some(key_loc));
                        if let Some(provider) = self.provider(&m.node, &pp, spanned_id) {
                            models.providers.push(provider);
                        }
                    }
                }
                _ => {}
            }
        }
        models
    }

    fn api(&mut self, node: &Node, path: &JsonPath) -> Option<Spanned<Api>> {
        let s = self.string(node, path)?;
        match Api::parse(&s.value) {
            Some(api) => {
                if let Api::Unsupported(name) = api {
                    self.warn(
                        path,
                        node,
                        format!(
                            "api {name:?} is valid for OpenClaw but Pincer does not speak it yet; \
                             models of this provider cannot be called (supported: \"openai-completions\", \
                             \"openai-responses\", \"anthropic-messages\", \"ollama\", \"embedded\")"
                        ),
                    );
                }
                Some(Spanned::new(api, path.as_str(), s.loc))
            }
            None => {
                let hint = match s.value.as_str() {
                    "openai-codex-responses" => {
                        " (renamed to \"openai-chatgpt-responses\")".to_string()
                    }
                    other => did_you_mean(other, Api::KNOWN.iter().copied())
                        .map(|d| format!(" (did you mean {d:?}?)"))
                        .unwrap_or_default(),
                };
                let list = Api::KNOWN
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.error(
                    path,
                    node,
                    format!("expected one of {list}, found {:?}{hint}", s.value),
                );
                None
            }
        }
    }

    fn base_url(&mut self, node: &Node, path: &JsonPath) -> Option<Spanned<String>> {
        let s = self.nonempty_string(node, path)?;
        match url::Url::parse(&s.value) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(s)
            }
            _ => {
                if !self.subs.missing.contains(path.as_str()) {
                    self.error(
                        path,
                        node,
                        format!("expected an http:// or https:// URL, found {:?}", s.value),
                    );
                }
                None
            }
        }
    }

    fn secret(&mut self, node: &Node, path: &JsonPath) -> Option<ApiKey> {
        match &node.value {
            Value::String(s) => {
                if self.subs.missing.contains(path.as_str()) {
                    return None;
                }
                let env_var = self
                    .subs
                    .used
                    .get(path.as_str())
                    .and_then(|v| v.first().cloned());
                Some(ApiKey {
                    secret: SecretString::from(s.clone()),
                    env_var,
                    loc: self.loc(node),
                })
            }
            Value::Object(_) => {
                let (mut source, mut id) = (None, None);
                for (key, value, p) in self.fields(node, path, &["source", "provider", "id"], &[]) {
                    match key {
                        "source" => {
                            source = self.one_of(value, &p, &["env", "file", "exec", "store"])
                        }
                        "id" => id = self.nonempty_string(value, &p),
                        _ => {}
                    }
                }
                let (source, id) = (source?, id?);
                if source != "env" {
                    self.warn(
                        path,
                        node,
                        format!("SecretRef source {source:?} is not supported by Pincer yet; only \"env\" is"),
                    );
                    return None;
                }
                match (self.env)(&id.value) {
                    Some(v) => Some(ApiKey {
                        secret: SecretString::from(v),
                        env_var: Some(id.value),
                        loc: self.loc(node),
                    }),
                    None => {
                        self.error(
                            path,
                            node,
                            format!("environment variable {} is not set (SecretRef)", id.value),
                        );
                        None
                    }
                }
            }
            _ => {
                self.mismatch(path, node, "a string or a SecretRef { source, id }");
                None
            }
        }
    }

    fn provider(
        &mut self,
        node: &Node,
        path: &JsonPath,
        id: Spanned<String>,
    ) -> Option<ProviderConfig> {
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return None;
        }
        let mut provider = ProviderConfig::new(id, self.loc(node));
        for (key, value, p) in self.fields(node, path, PROVIDER_USED, PROVIDER_NOT_USED) {
            match key {
                "baseUrl" => provider.base_url = self.base_url(value, &p),
                "apiKey" => provider.api_key = self.secret(value, &p),
                "api" => provider.api = self.api(value, &p),
                "headers" => {
                    let Some(members) = value.members() else {
                        self.mismatch(&p, value, "an object of header names to values");
                        continue;
                    };
                    for m in members {
                        let hp = p.key(&m.key);
                        if let Some(v) = self.secret(&m.node, &hp) {
                            provider.headers.push((m.key.clone(), v.secret));
                        }
                    }
                }
                "maxTokens" => provider.max_tokens = self.positive_int(value, &p),
                "timeoutSeconds" => provider.timeout_seconds = self.positive_int(value, &p),
                "params" => provider.patience = self.patience(value, &p),
                "compat" => provider.compat = self.compat(value, &p),
                "models" => {
                    let Value::Array(items) = &value.value else {
                        self.mismatch(&p, value, "an array of models");
                        continue;
                    };
                    let mut models: Vec<ModelConfig> = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let mp = p.index(i);
                        let Some(model) = self.model(item, &mp) else {
                            continue;
                        };
                        if let Some(first) = models.iter().find(|m| m.id.value == model.id.value) {
                            let at = first.id.first_at();
                            self.diags.push(Diagnostic::error(
                                model.id.path.as_str(),
                                format!(
                                    "model id {:?} is listed twice in this provider{at}",
                                    model.id.value
                                ),
                                model.id.loc.clone(),
                            ));
                            continue;
                        }
                        models.push(model);
                    }
                    provider.models = Some(models);
                }
                _ => {}
            }
        }
        Some(provider)
    }

    /// Pincer's keys in a provider's `params`; its other keys belong to the
    /// provider (LM Studio's `preload`…) and pass without comment.
    fn patience(&mut self, node: &Node, path: &JsonPath) -> Patience {
        let mut patience = Patience::default();
        let Some(members) = node.members() else {
            self.mismatch(path, node, "an object");
            return patience;
        };
        for m in members {
            let p = path.key(&m.key);
            match m.key.as_str() {
                "retry" => patience.retry = self.same_model_retry(&m.node, &p),
                "firstTokenTimeoutSeconds" => {
                    patience.first_token_seconds = match m.node.value {
                        Value::Number(n, _) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => {
                            Some(n as u64)
                        }
                        _ => {
                            self.mismatch(&p, &m.node, "a whole number of seconds (0: no limit)");
                            None
                        }
                    }
                }
                _ => {}
            }
        }
        patience
    }

    fn same_model_retry(&mut self, node: &Node, path: &JsonPath) -> Option<SameModelRetry> {
        match &node.value {
            Value::Bool(true) => return Some(SameModelRetry::DEFAULT),
            Value::Bool(false) => return Some(SameModelRetry::OFF),
            _ if node.members().is_some() => {}
            _ => {
                self.mismatch(path, node, "true, false or { maxWaitSeconds, transient }");
                return None;
            }
        }
        let mut retry = SameModelRetry::DEFAULT;
        for (key, value, p) in self.fields(node, path, &["maxWaitSeconds", "transient"], &[]) {
            match key {
                "maxWaitSeconds" => match value.value {
                    Value::Number(n, _) if n.is_finite() && (0.0..=60.0).contains(&n) => {
                        retry.max_wait_seconds = n;
                    }
                    _ => self.mismatch(&p, value, "a number of seconds from 0 to 60"),
                },
                "transient" => {
                    if let Some(b) = self.bool(value, &p) {
                        retry.transient = b;
                    }
                }
                _ => {}
            }
        }
        Some(retry)
    }

    fn model(&mut self, node: &Node, path: &JsonPath) -> Option<ModelConfig> {
        if node.members().is_none() {
            self.mismatch(path, node, "an object");
            return None;
        }
        let mut model = ModelConfig {
            loc: self.loc(node),
            ..ModelConfig::default()
        };
        let mut id = None;
        for (key, value, p) in self.fields(node, path, MODEL_USED, MODEL_NOT_USED) {
            match key {
                "id" => id = self.nonempty_string(value, &p),
                "name" => model.name = self.nonempty_string(value, &p).map(|s| s.value),
                "api" => model.api = self.api(value, &p),
                "baseUrl" => model.base_url = self.base_url(value, &p),
                "reasoning" => model.reasoning = self.bool(value, &p),
                "input" => {
                    model.input = self.string_list(value, &p).map(|list| {
                        list.into_iter()
                            .filter(|s| {
                                let ok = INPUT_KINDS.contains(&s.value.as_str());
                                if !ok {
                                    let l = INPUT_KINDS
                                        .iter()
                                        .map(|k| format!("{k:?}"))
                                        .collect::<Vec<_>>();
                                    self.diags.push(Diagnostic::error(
                                        s.path.as_str(),
                                        format!(
                                            "expected one of {}, found {:?}",
                                            l.join(", "),
                                            s.value
                                        ),
                                        s.loc.clone(),
                                    ));
                                }
                                ok
                            })
                            .map(|s| s.value)
                            .collect()
                    })
                }
                "cost" => model.cost = self.cost(value, &p),
                "contextWindow" => model.context_window = self.positive_int(value, &p),
                "contextTokens" => model.context_tokens = self.positive_int(value, &p),
                "maxTokens" => model.max_tokens = self.positive_int(value, &p),
                "path" => model.path = self.nonempty_string(value, &p),
                "compat" => model.compat = self.compat(value, &p),
                _ => {}
            }
        }
        let Some(id) = id else {
            if node.get("id").is_none() {
                self.error(
                    path,
                    node,
                    "missing required key \"id\" (the model id as the server knows it)",
                );
            }
            return None;
        };
        if let (Some(max), Some(ctx)) = (model.max_tokens, model.context_window)
            && max > ctx
            && let Some(n) = node.get("maxTokens")
        {
            let msg = format!(
                "{max} is larger than contextWindow ({ctx}); output will be capped at {ctx}"
            );
            self.warn(&path.key("maxTokens"), n, msg);
        }
        if let (Some(ct), Some(ctx)) = (model.context_tokens, model.context_window)
            && ct > ctx
            && let Some(n) = node.get("contextTokens")
        {
            let msg = format!("{ct} is larger than contextWindow ({ctx}); {ctx} is used");
            self.warn(&path.key("contextTokens"), n, msg);
        }
        model.id = id;
        Some(model)
    }

    fn cost(&mut self, node: &Node, path: &JsonPath) -> CostConfig {
        let mut cost = CostConfig::default();
        for (key, value, p) in self.fields(node, path, COST_USED, COST_NOT_USED) {
            let v = self.non_negative(value, &p);
            match key {
                "input" => cost.input = v,
                "output" => cost.output = v,
                "cacheRead" => cost.cache_read = v,
                "cacheWrite" => cost.cache_write = v,
                _ => {}
            }
        }
        cost
    }
}
