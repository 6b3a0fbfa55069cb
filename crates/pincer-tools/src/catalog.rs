//! The built-in tools: OpenClaw's names, groups and parameter schemas, and
//! the typed arguments each one takes. A call's arguments are checked by
//! parsing them into these types: a wrong call is a tool error naming the
//! field, never a crash.

use serde::Deserialize;
use serde_json::{Value, json};

use pincer_types::Tool;

/// One built-in tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    pub name: &'static str,
    /// OpenClaw's group (`group:<section>`).
    pub section: &'static str,
    /// The profiles whose base allowlist has it.
    pub profiles: &'static [&'static str],
    /// The one-line summary.
    pub summary: &'static str,
    pub description: &'static str,
}

const CODING: &[&str] = &["coding"];
const CODING_MESSAGING: &[&str] = &["coding", "messaging"];
const ALL: &[&str] = &["minimal", "coding", "messaging"];

/// Every tool Pincer has, in the order the model sees them.
pub const BUILTIN: &[ToolDef] = &[
    ToolDef {
        name: "read",
        section: "fs",
        profiles: CODING,
        summary: "Read file contents",
        description: "Read the contents of a file. Output is truncated to 2000 lines or 50KB \
(whichever is hit first). Use offset/limit for large files; continue with offset until complete.",
    },
    ToolDef {
        name: "write",
        section: "fs",
        profiles: CODING,
        summary: "Create or overwrite files",
        description: "Write content to a file. Creates the file if it doesn't exist, overwrites \
if it does. Automatically creates parent directories.",
    },
    ToolDef {
        name: "edit",
        section: "fs",
        profiles: CODING,
        summary: "Make precise edits to files",
        description: "Edit a file using exact text replacement. Every edits[].oldText must match \
a unique, non-overlapping region of the original file.",
    },
    ToolDef {
        name: "exec",
        section: "runtime",
        profiles: CODING,
        summary: "Run shell commands",
        description: "Execute a shell command in the workspace. Long commands continue in the \
background after yieldMs; use the process tool to poll or kill them.",
    },
    ToolDef {
        name: "process",
        section: "runtime",
        profiles: CODING,
        summary: "Manage background exec sessions",
        description: "Manage running exec sessions: list, poll, log, kill, remove.",
    },
    ToolDef {
        name: "web_fetch",
        section: "web",
        profiles: CODING,
        summary: "Fetch and extract readable content from a URL",
        description: "Fetch a URL and extract readable text. Lightweight page access; no \
browser automation.",
    },
    ToolDef {
        name: "session_status",
        section: "sessions",
        profiles: ALL,
        summary: "Show a /status-equivalent status card",
        description: "Show a /status-like card for the current session: model, usage, time.",
    },
    ToolDef {
        name: "sessions_list",
        section: "sessions",
        profiles: CODING_MESSAGING,
        summary: "List other sessions",
        description: "List visible sessions of this agent, most recent first.",
    },
    ToolDef {
        name: "sessions_history",
        section: "sessions",
        profiles: CODING_MESSAGING,
        summary: "Fetch history for another session",
        description: "Fetch the recent messages of a session of this agent.",
    },
];

/// OpenClaw's tool names that Pincer does not have (yet): policy entries
/// naming them are not typos.
pub const KNOWN_ELSEWHERE: &[&str] = &[
    "apply_patch",
    "web_search",
    "browser",
    "canvas",
    "nodes",
    "image",
    "image_generate",
    "message",
    "cron",
    "gateway",
    "sessions_send",
    "sessions_spawn",
    "sessions_yield",
    "subagents",
    "agents_list",
    "memory_search",
    "memory_get",
    "tts",
    "bash",
];

/// Whether the tool's arguments have an `action` (OpenClaw's
/// `/tools/invoke` puts a request's `action` there).
pub fn takes_action(name: &str) -> bool {
    name == "process"
}

pub fn def(name: &str) -> Option<&'static ToolDef> {
    BUILTIN.iter().find(|d| d.name == name)
}

/// The JSON schema of a tool's arguments.
pub fn parameters(name: &str) -> Value {
    match name {
        "read" => json!({"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string", "description": "Path to the file to read (relative or absolute)"},
            "offset": {"type": "number", "description": "Line number to start reading from (1-indexed)"},
            "limit": {"type": "number", "description": "Maximum number of lines to read"}}}),
        "write" => json!({"type": "object", "required": ["path", "content"], "properties": {
            "path": {"type": "string", "description": "Path to the file to write (relative or absolute)"},
            "content": {"type": "string", "description": "Content to write to the file"}}}),
        "edit" => json!({"type": "object", "required": ["path", "edits"], "properties": {
            "path": {"type": "string", "description": "Path to the file to edit (relative or absolute)"},
            "edits": {"type": "array", "description": "One or more targeted replacements, each matched against the original file.",
                "items": {"type": "object", "required": ["oldText", "newText"], "additionalProperties": false, "properties": {
                    "oldText": {"type": "string", "description": "Exact text to replace; unique in the file"},
                    "newText": {"type": "string", "description": "Replacement text"}}}}}}),
        "exec" => json!({"type": "object", "required": ["command"], "properties": {
            "command": {"type": "string", "description": "Shell command to execute"},
            "workdir": {"type": "string", "description": "Working directory (defaults to the workspace)"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "yieldMs": {"type": "number", "description": "Milliseconds to wait before backgrounding (default 10000)"},
            "background": {"type": "boolean", "description": "Run in background immediately"},
            "timeout": {"type": "number", "description": "Timeout in seconds (kills the process on expiry)"}}}),
        "process" => json!({"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": ["list", "poll", "log", "kill", "remove"], "description": "Process action"},
            "sessionId": {"type": "string", "description": "Session id for actions other than list"},
            "offset": {"type": "number", "description": "Log offset (lines)"},
            "limit": {"type": "number", "description": "Log length (lines)"},
            "timeout": {"type": "number", "description": "For poll: wait up to this many milliseconds (max 30000)"}}}),
        "web_fetch" => json!({"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "description": "HTTP(S) URL."},
            "extractMode": {"type": "string", "enum": ["markdown", "text"], "default": "markdown"},
            "maxChars": {"type": "integer", "minimum": 100, "description": "Max chars returned; truncates."}}}),
        "session_status" => json!({"type": "object", "properties": {
            "sessionKey": {"type": "string"}}}),
        "sessions_list" => json!({"type": "object", "properties": {
            "limit": {"type": "number", "minimum": 1},
            "activeMinutes": {"type": "number", "minimum": 1}}}),
        "sessions_history" => json!({"type": "object", "required": ["sessionKey"], "properties": {
            "sessionKey": {"type": "string"},
            "limit": {"type": "number", "minimum": 1},
            "includeTools": {"type": "boolean"}}}),
        _ => json!({"type": "object"}),
    }
}

/// The definitions sent to a model, for the tools in `names`.
pub fn definitions<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Tool> {
    names
        .into_iter()
        .filter_map(def)
        .map(|d| Tool {
            name: d.name.to_string(),
            description: d.description.to_string(),
            parameters: parameters(d.name),
        })
        .collect()
}

// ---- typed arguments ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    #[serde(alias = "file_path")]
    pub path: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub offset: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    #[serde(alias = "file_path")]
    pub path: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    #[serde(alias = "file_path")]
    pub path: String,
    #[serde(default)]
    pub edits: Vec<Replacement>,
    /// The older single-edit form.
    #[serde(default, rename = "oldText", alias = "old_string")]
    pub old_text: Option<String>,
    #[serde(default, rename = "newText", alias = "new_string")]
    pub new_text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    #[serde(rename = "oldText", alias = "old_string")]
    pub old_text: String,
    #[serde(rename = "newText", alias = "new_string")]
    pub new_text: String,
}

impl EditArgs {
    /// Every replacement, whichever form the call used.
    pub fn replacements(&self) -> Result<Vec<Replacement>, String> {
        let mut all = self.edits.clone();
        match (&self.old_text, &self.new_text) {
            (Some(o), Some(n)) => all.push(Replacement {
                old_text: o.clone(),
                new_text: n.clone(),
            }),
            (None, None) => {}
            _ => return Err("oldText and newText must be given together".into()),
        }
        if all.is_empty() {
            return Err("edits must hold at least one {oldText, newText}".into());
        }
        Ok(all)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecArgs {
    #[serde(alias = "cmd")]
    pub command: String,
    #[serde(default, alias = "cwd")]
    pub workdir: Option<String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub yield_ms: Option<u64>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timeout: Option<u64>,
    /// Accepted and ignored: the config decides these.
    #[serde(default)]
    pub pty: Option<bool>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub security: Option<String>,
    #[serde(default)]
    pub ask: Option<String>,
    #[serde(default)]
    pub elevated: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessArgs {
    pub action: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub offset: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timeout: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebFetchArgs {
    pub url: String,
    #[serde(default)]
    pub extract_mode: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_chars: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionArgs {
    #[serde(default)]
    pub session_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub active_minutes: Option<u64>,
    #[serde(default)]
    pub include_tools: Option<bool>,
}

/// A number as small models write one: `5`, `5.0` or `"5"`.
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected a number ≥ 0")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected a number")),
        Some(_) => Err(serde::de::Error::custom("expected a number")),
    }
}

/// The arguments of a call as a JSON object: `{}` for empty text.
pub fn arguments(raw: &str) -> Result<Value, String> {
    if raw.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        // Some servers send the arguments object as a JSON string.
        Ok(Value::String(s)) => arguments(&s),
        Ok(other) => Err(format!(
            "arguments must be a JSON object, got {}",
            kind(&other)
        )),
        Err(e) => Err(format!("arguments are not valid JSON: {e}")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `args` into a tool's argument type; the error names the field.
pub fn typed<T: for<'de> Deserialize<'de>>(tool: &str, args: &Value) -> Result<T, String> {
    serde_json::from_value(args.clone()).map_err(|e| format!("invalid arguments for {tool}: {e}"))
}

/// Whether `args` are valid for the built-in tool `name`.
pub fn check(name: &str, args: &Value) -> Result<(), String> {
    match name {
        "read" => typed::<ReadArgs>(name, args).map(drop),
        "write" => typed::<WriteArgs>(name, args).map(drop),
        "edit" => typed::<EditArgs>(name, args).and_then(|a| a.replacements().map(drop)),
        "exec" => typed::<ExecArgs>(name, args).map(drop),
        "process" => typed::<ProcessArgs>(name, args).map(drop),
        "web_fetch" => typed::<WebFetchArgs>(name, args).map(drop),
        "session_status" | "sessions_list" => typed::<SessionArgs>(name, args).map(drop),
        "sessions_history" => typed::<SessionArgs>(name, args).and_then(|a| {
            a.session_key.map(drop).ok_or_else(|| {
                "invalid arguments for sessions_history: missing field `sessionKey`".into()
            })
        }),
        other => Err(format!("unknown tool {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_a_schema_and_checks_its_arguments() {
        for d in BUILTIN {
            let p = parameters(d.name);
            assert_eq!(p["type"], "object", "{}", d.name);
        }
        assert!(check("read", &json!({"path": "a"})).is_ok());
        assert!(check("read", &json!({"path": "a", "offset": "3"})).is_ok());
        let e = check("read", &json!({"file": "a"})).unwrap_err();
        assert!(e.contains("file"), "{e}");
        assert!(
            check(
                "edit",
                &json!({"path": "a", "oldText": "x", "newText": "y"})
            )
            .is_ok()
        );
        assert!(
            check(
                "edit",
                &json!({"path": "a", "edits": [{"oldText": "x", "newText": "y"}]})
            )
            .is_ok()
        );
        assert!(check("edit", &json!({"path": "a"})).is_err());
        assert!(check("exec", &json!({})).is_err());
        assert!(check("sessions_history", &json!({})).is_err());
    }

    #[test]
    fn arguments_are_an_object() {
        assert_eq!(arguments("").unwrap(), json!({}));
        assert_eq!(arguments(r#""{\"a\":1}""#).unwrap(), json!({"a": 1}));
        assert!(arguments("[1]").unwrap_err().contains("an array"));
        assert!(arguments("{").unwrap_err().contains("not valid JSON"));
    }
}
