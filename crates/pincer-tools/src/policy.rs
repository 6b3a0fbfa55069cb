//! Which tools an agent may use, and why: OpenClaw's `tools.profile`,
//! `allow` / `alsoAllow` / `deny` with groups and `*` patterns, per agent and
//! `byProvider`, every layer able only to narrow, deny always winning.
//!
//! Pincer's default, when no profile is set anywhere, is narrower than
//! OpenClaw's (which allows everything): the files and commands of the
//! workspace and the agent's own sessions, without `web_fetch`, the main
//! door for prompt injection. `tools.profile: "coding"` or
//! `alsoAllow: ["web_fetch"]` opens it.

use pincer_config::{Spanned, ToolRules, ToolsConfig};

use crate::catalog::{BUILTIN, KNOWN_ELSEWHERE};

/// Below this window (tokens) the runtime offers tools only when the
/// config chose them (`profile`, `allow` or `alsoAllow`): their
/// definitions alone take about a thousand tokens.
pub const TOOLS_MIN_WINDOW: u64 = 16_384;

/// Whether tools are offered to a model with this window: always from
/// [`TOOLS_MIN_WINDOW`] up, below it only when the config chose them.
pub fn offered_on(window: u64, global: &ToolsConfig, agent: &ToolsConfig) -> bool {
    let chosen =
        |t: &ToolsConfig| t.profile.is_some() || t.allow.is_some() || t.also_allow.is_some();
    window >= TOOLS_MIN_WINDOW || chosen(global) || chosen(agent)
}

/// `tools.sessions.visibility`: which of the agent's sessions the session
/// tools reach from the calling one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// `self`: only the calling session.
    Own,
    /// `tree` (Pincer's default): the calling session; from the agent's
    /// main session, every session of the agent. Pincer spawns no
    /// sub-sessions, so that is the whole tree.
    Tree,
    /// `agent` and `all`: every session of the agent (the tools never
    /// reach another agent's store).
    Agent,
}

impl Visibility {
    /// OpenClaw's default is `all`; Pincer's is `tree`, so a group chat or
    /// another person's direct session cannot read the owner's sessions.
    pub fn from_config(value: Option<&str>) -> Visibility {
        match value {
            Some("self") => Visibility::Own,
            Some("agent" | "all") => Visibility::Agent,
            _ => Visibility::Tree,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Own => "self",
            Visibility::Tree => "tree",
            Visibility::Agent => "agent",
        }
    }

    /// Whether `caller` may see `target` (`main`: the agent's main session).
    pub fn allows(self, caller: &str, target: &str, main: &str) -> bool {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        match self {
            Visibility::Own => same(caller, target),
            Visibility::Tree => same(caller, target) || same(caller, main),
            Visibility::Agent => true,
        }
    }
}

/// Pincer's default tools, when no profile is configured.
pub const DEFAULT_TOOLS: &[&str] = &[
    "read",
    "write",
    "edit",
    "exec",
    "process",
    "session_status",
    "sessions_list",
    "sessions_history",
];

/// Tools `POST /tools/invoke` never runs for an HTTP caller (OpenClaw's
/// list, plus Pincer's own tools that change the workspace or drive
/// commands); `gateway.tools.allow` takes names off it, `gateway.tools.deny`
/// adds them.
pub const HTTP_DENY: &[&str] = &[
    "exec",
    "spawn",
    "shell",
    "fs_write",
    "fs_delete",
    "fs_move",
    "apply_patch",
    "sessions_spawn",
    "sessions_send",
    "cron",
    "gateway",
    "nodes",
    "whatsapp_login",
    "process",
    "write",
    "edit",
];

/// The HTTP deny list after `gateway.tools.allow` and `deny`.
pub fn http_deny(allow: &[Spanned<String>], deny: &[Spanned<String>]) -> Vec<String> {
    let norm = |s: &Spanned<String>| s.value.trim().to_ascii_lowercase();
    let allow: Vec<String> = allow.iter().map(norm).collect();
    let mut out: Vec<String> = HTTP_DENY
        .iter()
        .filter(|n| !allow.iter().any(|a| a == *n))
        .map(|n| n.to_string())
        .collect();
    out.extend(deny.iter().map(norm));
    out
}

/// One tool's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub tool: &'static str,
    pub allowed: bool,
    /// The rule that decided, as the config says it.
    pub why: String,
}

/// An agent's tools for one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rows: Vec<Row>,
    /// Entries that name no tool (typos), or lists that were ignored.
    pub warnings: Vec<String>,
}

impl Policy {
    pub fn allowed(&self) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|r| r.allowed)
            .map(|r| r.tool)
            .collect()
    }

    pub fn allows(&self, name: &str) -> bool {
        self.rows.iter().any(|r| r.allowed && r.tool == name)
    }
}

/// The policy for `agent`'s tools (its own `tools`, over the top-level
/// ones) when talking to `model_ref` (`provider/model`).
pub fn resolve(global: &ToolsConfig, agent: Option<&ToolsConfig>, model_ref: &str) -> Policy {
    let mut warnings = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let (provider, _) = model_ref.split_once('/').unwrap_or((model_ref, ""));

    // The base: the agent's profile, else the top-level one, else Pincer's default.
    let profile = agent
        .and_then(|a| a.profile.as_ref())
        .map(|p| (p, "agent tools.profile"))
        .or_else(|| global.profile.as_ref().map(|p| (p, "tools.profile")));
    for def in BUILTIN {
        let (allowed, why) = match profile {
            Some((p, label)) if p.value == "full" => (true, format!("{label} \"full\"")),
            Some((p, label)) => {
                let inside = def.profiles.contains(&p.value.as_str());
                let not = if inside { "" } else { "not in " };
                (inside, format!("{not}{label} {:?}", p.value))
            }
            None => {
                let inside = DEFAULT_TOOLS.contains(&def.name);
                let not = if inside { "" } else { "not in " };
                (inside, format!("{not}Pincer's default policy"))
            }
        };
        rows.push(Row {
            tool: def.name,
            allowed,
            why,
        });
    }
    // alsoAllow adds to the base.
    for (list, label) in [
        (global.also_allow.as_ref(), "tools.alsoAllow"),
        (
            agent.and_then(|a| a.also_allow.as_ref()),
            "agent tools.alsoAllow",
        ),
    ] {
        if let Some(list) = list {
            for row in rows.iter_mut().filter(|r| !r.allowed) {
                if let Some(entry) = matching(list, row.tool) {
                    row.allowed = true;
                    row.why = format!("{label} ({entry})");
                }
            }
            warn_unknown(list, label, &mut warnings);
        }
    }
    // Then each layer narrows.
    let global_rules = rules_of(global);
    let agent_rules = agent.map(rules_of);
    let layers = [
        (by_provider(global, provider, model_ref), "tools.byProvider"),
        (Some(&global_rules), "tools"),
        (
            agent.and_then(|a| by_provider(a, provider, model_ref)),
            "agent tools.byProvider",
        ),
        (agent_rules.as_ref(), "agent tools"),
    ];
    for (rules, label) in layers {
        if let Some(rules) = rules {
            narrow(&mut rows, rules, label, &mut warnings);
        }
    }
    Policy { rows, warnings }
}

fn rules_of(t: &ToolsConfig) -> ToolRules {
    ToolRules {
        profile: None,
        allow: t.allow.clone(),
        also_allow: None,
        deny: t.deny.clone(),
    }
}

/// The `byProvider` entry for this model: `provider/model` before `provider`.
fn by_provider<'t>(t: &'t ToolsConfig, provider: &str, model_ref: &str) -> Option<&'t ToolRules> {
    let model_ref = model_ref.to_ascii_lowercase();
    t.by_provider
        .iter()
        .find(|(k, _)| *k == model_ref)
        .or_else(|| t.by_provider.iter().find(|(k, _)| k == provider))
        .map(|(_, r)| r)
}

fn narrow(rows: &mut [Row], rules: &ToolRules, label: &str, warnings: &mut Vec<String>) {
    if let Some(p) = &rules.profile
        && p.value != "full"
    {
        for row in rows.iter_mut().filter(|r| r.allowed) {
            let in_profile = BUILTIN
                .iter()
                .any(|d| d.name == row.tool && d.profiles.contains(&p.value.as_str()));
            if !in_profile {
                row.allowed = false;
                row.why = format!("not in {label} profile {:?}", p.value);
            }
        }
    }
    if let Some(allow) = &rules.allow {
        // Only a list of nothing but unknown (plugin) names is ignored, as
        // OpenClaw does; OpenClaw's own tools that Pincer lacks still narrow.
        let known = allow
            .iter()
            .any(|e| names_a_tool(&e.value) || known_elsewhere(&e.value));
        if known || allow.is_empty() {
            for row in rows.iter_mut().filter(|r| r.allowed) {
                if matching(allow, row.tool).is_none() {
                    row.allowed = false;
                    row.why = format!("not in {label}.allow");
                }
            }
        } else {
            warnings.push(format!(
                "{label}.allow names no tool Pincer has; it is ignored"
            ));
        }
        warn_unknown(allow, &format!("{label}.allow"), warnings);
    }
    if let Some(deny) = &rules.deny {
        for row in rows.iter_mut() {
            if let Some(entry) = matching(deny, row.tool) {
                row.allowed = false;
                row.why = format!("denied by {label}.deny ({entry})");
            }
        }
        warn_unknown(deny, &format!("{label}.deny"), warnings);
    }
}

/// The first entry of `list` that covers `tool`.
fn matching<'l>(list: &'l [Spanned<String>], tool: &str) -> Option<&'l str> {
    list.iter()
        .find(|e| covers(&e.value, tool))
        .map(|e| e.value.as_str())
}

/// Whether a policy entry (name, alias, group or `*` pattern) covers `tool`.
pub fn covers(entry: &str, tool: &str) -> bool {
    let e = entry.trim().to_ascii_lowercase();
    let e = match e.as_str() {
        "bash" => "exec".to_string(),
        "apply-patch" => "apply_patch".to_string(),
        _ => e,
    };
    if let Some(group) = e.strip_prefix("group:") {
        return group == "openclaw" || BUILTIN.iter().any(|d| d.name == tool && d.section == group);
    }
    glob(&e, tool)
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn names_a_tool(entry: &str) -> bool {
    BUILTIN.iter().any(|d| covers(entry, d.name))
}

/// An OpenClaw tool or group Pincer does not have (not a plugin's).
fn known_elsewhere(entry: &str) -> bool {
    let v = entry.trim().to_ascii_lowercase();
    KNOWN_ELSEWHERE.contains(&v.as_str())
        || v.strip_prefix("group:").is_some_and(|g| {
            [
                "fs",
                "runtime",
                "web",
                "sessions",
                "memory",
                "ui",
                "messaging",
                "automation",
                "nodes",
                "agents",
                "media",
                "openclaw",
            ]
            .contains(&g)
        })
}

fn warn_unknown(list: &[Spanned<String>], label: &str, warnings: &mut Vec<String>) {
    for e in list {
        if !names_a_tool(&e.value) && !known_elsewhere(&e.value) {
            let at = e
                .loc
                .as_ref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            warnings.push(format!("{label}: {:?} names no tool{at}", e.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Option<Vec<Spanned<String>>> {
        Some(
            items
                .iter()
                .map(|s| Spanned::new(s.to_string(), "", None))
                .collect(),
        )
    }

    fn profile(p: &str) -> Option<Spanned<String>> {
        Some(Spanned::new(p.to_string(), "", None))
    }

    #[test]
    fn policy_table() {
        let none = ToolsConfig::default();
        let coding = ToolsConfig {
            profile: profile("coding"),
            ..ToolsConfig::default()
        };
        let deny_runtime = ToolsConfig {
            deny: list(&["group:runtime"]),
            ..ToolsConfig::default()
        };
        let full_deny_exec = ToolsConfig {
            profile: profile("full"),
            deny: list(&["EXEC"]),
            ..ToolsConfig::default()
        };
        let minimal_also = ToolsConfig {
            profile: profile("minimal"),
            also_allow: list(&["read", "web_*"]),
            ..ToolsConfig::default()
        };
        let allow_exec_deny_bash = ToolsConfig {
            allow: list(&["exec", "read"]),
            deny: list(&["bash"]),
            ..ToolsConfig::default()
        };
        let by_provider = ToolsConfig {
            profile: profile("full"),
            by_provider: vec![
                (
                    "ollama".into(),
                    ToolRules {
                        profile: profile("minimal"),
                        allow: None,
                        also_allow: None,
                        deny: None,
                    },
                ),
                (
                    "ollama/big".into(),
                    ToolRules {
                        allow: list(&["group:fs"]),
                        ..ToolRules::default()
                    },
                ),
            ],
            ..ToolsConfig::default()
        };
        let only_plugins = ToolsConfig {
            allow: list(&["my_plugin_tool"]),
            ..ToolsConfig::default()
        };
        let messaging = ToolsConfig {
            profile: profile("messaging"),
            ..ToolsConfig::default()
        };
        let only_openclaws = ToolsConfig {
            allow: list(&["web_search", "group:messaging"]),
            ..ToolsConfig::default()
        };
        let defaults_deny_exec = ToolsConfig {
            deny: list(&["exec"]),
            ..ToolsConfig::default()
        };
        let agent_deny_web = ToolsConfig {
            deny: list(&["web_fetch"]),
            ..ToolsConfig::default()
        }
        .over(&defaults_deny_exec);
        // (global, agent, model, allowed)
        let cases: Vec<(&ToolsConfig, Option<&ToolsConfig>, &str, Vec<&str>)> = vec![
            (&none, None, "p/m", DEFAULT_TOOLS.to_vec()),
            (
                &coding,
                None,
                "p/m",
                BUILTIN.iter().map(|d| d.name).collect(),
            ),
            (
                &none,
                Some(&deny_runtime),
                "p/m",
                vec![
                    "read",
                    "write",
                    "edit",
                    "session_status",
                    "sessions_list",
                    "sessions_history",
                ],
            ),
            (
                &full_deny_exec,
                None,
                "p/m",
                BUILTIN
                    .iter()
                    .map(|d| d.name)
                    .filter(|n| *n != "exec")
                    .collect(),
            ),
            (
                &minimal_also,
                None,
                "p/m",
                vec!["read", "web_fetch", "session_status"],
            ),
            (&allow_exec_deny_bash, None, "p/m", vec!["read"]),
            (&by_provider, None, "ollama/small", vec!["session_status"]),
            (
                &by_provider,
                None,
                "ollama/big",
                vec!["read", "write", "edit"],
            ),
            (
                &by_provider,
                None,
                "openai/gpt",
                BUILTIN.iter().map(|d| d.name).collect(),
            ),
            // An allowlist of plugin tools only is ignored, as OpenClaw does.
            (&only_plugins, None, "p/m", DEFAULT_TOOLS.to_vec()),
            // OpenClaw's own tools that Pincer lacks still narrow: nothing.
            (&only_openclaws, None, "p/m", vec![]),
            // An agent's deny adds to agents.defaults' (deny wins).
            (
                &coding,
                Some(&agent_deny_web),
                "p/m",
                BUILTIN
                    .iter()
                    .map(|d| d.name)
                    .filter(|n| !["exec", "web_fetch"].contains(n))
                    .collect(),
            ),
            // An agent's profile replaces the top-level one; its rules narrow.
            (
                &coding,
                Some(&messaging),
                "p/m",
                vec!["session_status", "sessions_list", "sessions_history"],
            ),
        ];
        for (i, (global, agent, model, want)) in cases.into_iter().enumerate() {
            let got = resolve(global, agent, model);
            let mut want = want;
            let order = |n: &&str| BUILTIN.iter().position(|d| d.name == *n);
            want.sort_by_key(order);
            assert_eq!(got.allowed(), want, "case {i}: {:#?}", got.rows);
        }
    }

    #[test]
    fn session_visibility_table() {
        let main = "agent:main:main";
        let group = "agent:main:telegram:group:-100";
        let other = "agent:main:direct:42";
        // (visibility, caller, target, visible)
        let cases = [
            (None, main, main, true),
            (None, main, group, true),
            (None, group, group, true),
            (None, group, main, false),
            (None, group, other, false),
            (Some("tree"), other, main, false),
            (Some("self"), main, group, false),
            (Some("self"), group, "AGENT:MAIN:TELEGRAM:GROUP:-100", true),
            (Some("agent"), group, main, true),
            (Some("all"), other, group, true),
        ];
        for (i, (v, caller, target, want)) in cases.into_iter().enumerate() {
            let got = Visibility::from_config(v).allows(caller, target, main);
            assert_eq!(got, want, "case {i}: {v:?} {caller} -> {target}");
        }
    }

    #[test]
    fn every_verdict_says_why() {
        let t = ToolsConfig {
            profile: profile("coding"),
            deny: list(&["group:web"]),
            ..ToolsConfig::default()
        };
        let p = resolve(&t, None, "p/m");
        let web = p.rows.iter().find(|r| r.tool == "web_fetch").unwrap();
        assert!(!web.allowed);
        assert_eq!(web.why, "denied by tools.deny (group:web)");
        let read = p.rows.iter().find(|r| r.tool == "read").unwrap();
        assert_eq!(read.why, "tools.profile \"coding\"");
    }

    #[test]
    fn typos_are_warned_about() {
        let t = ToolsConfig {
            deny: list(&["exce", "browser"]),
            ..ToolsConfig::default()
        };
        let p = resolve(&t, None, "p/m");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("\"exce\""));
    }

    #[test]
    fn http_deny_list() {
        let d = http_deny(&list(&["Write"]).unwrap(), &list(&["read"]).unwrap());
        assert!(d.contains(&"exec".to_string()));
        assert!(!d.contains(&"write".to_string()));
        assert!(d.contains(&"read".to_string()));
    }

    #[test]
    fn globs() {
        assert!(covers("*", "read"));
        assert!(covers("sessions_*", "sessions_list"));
        assert!(!covers("sessions_*", "session_status"));
        assert!(covers("Group:FS", "edit"));
        assert!(covers("*_fetch", "web_fetch"));
    }
}
