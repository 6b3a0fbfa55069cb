//! Tool calls a local model printed as text instead of making natively.
//!
//! A reply is promoted only when it is nothing but tool-call blocks, each
//! naming a tool this turn offered, with arguments that tool accepts;
//! anything else stays text. Recognised: OpenClaw's two formats (a
//! `[name]` line, a JSON object, then `[END_TOOL_REQUEST]` or `[/name]`;
//! Harmony's `commentary to=name code {…}`), plus the two small models
//! print most (`<tool_call>{"name":…,"arguments":{…}}</tool_call>`, and
//! that JSON object alone, optionally in a ```json fence).

use serde_json::{Map, Value};

/// The most text looked at (OpenClaw's cap).
const MAX_PAYLOAD: usize = 256_000;

/// The calls in `text` as (name, arguments JSON), when it is only calls to
/// tools that `accepts` (name, arguments) takes.
pub fn promote(
    text: &str,
    accepts: &dyn Fn(&str, &Value) -> bool,
) -> Option<Vec<(String, String)>> {
    if text.len() > MAX_PAYLOAD {
        return None;
    }
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut calls = Vec::new();
    while !rest.is_empty() {
        let (name, args, after) = block(rest)?;
        if !accepts(&name, &Value::Object(args.clone())) {
            return None;
        }
        calls.push((name, Value::Object(args).to_string()));
        rest = after.trim_start();
    }
    Some(calls)
}

/// One block at the start of `s`: name, arguments, what follows.
fn block(s: &str) -> Option<(String, Map<String, Value>, &str)> {
    if let Some(r) = s.strip_prefix("<tool_call>") {
        let (obj, after) = object(r.trim_start())?;
        let after = after.trim_start().strip_prefix("</tool_call>")?;
        let (name, args) = named(obj)?;
        return Some((name, args, after));
    }
    if let Some(r) = s.strip_prefix("```") {
        let r = r.strip_prefix("json").unwrap_or(r).trim_start();
        let (obj, after) = object(r)?;
        let after = after.trim_start().strip_prefix("```")?;
        let (name, args) = named(obj)?;
        return Some((name, args, after));
    }
    if s.starts_with('{') {
        let (obj, after) = object(s)?;
        let (name, args) = named(obj)?;
        return Some((name, args, after));
    }
    if let Some(r) = s.strip_prefix('[') {
        let end = r.find(']')?;
        let name = &r[..end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        let r = &r[end + 1..];
        let r = r.trim_start_matches([' ', '\t']);
        let r = r.strip_prefix("\r\n").or_else(|| r.strip_prefix('\n'))?;
        let (obj, after) = object(r.trim_start())?;
        let after = after.trim_start();
        let close = format!("[/{name}]");
        let after = after
            .strip_prefix("[END_TOOL_REQUEST]")
            .or_else(|| after.strip_prefix(close.as_str()))?;
        return Some((name.to_string(), obj, after));
    }
    // Harmony: [<|channel|>]commentary to=NAME code[<|message|>]{…}[<|end|>|<|return|>|<|message|>]
    let r = s.strip_prefix("<|channel|>").unwrap_or(s);
    let r = ["commentary", "analysis", "final"]
        .iter()
        .find_map(|c| r.strip_prefix(c))?;
    let r = r.trim_start().strip_prefix("to=")?;
    let end = r.find(|c: char| c.is_whitespace() || c == '<')?;
    let name = r[..end].strip_prefix("functions.").unwrap_or(&r[..end]);
    let r = r[end..].trim_start();
    let r = r.strip_prefix("code").unwrap_or(r).trim_start();
    let r = r.strip_prefix("<|message|>").unwrap_or(r).trim_start();
    let (obj, after) = object(r)?;
    let after = after.trim_start();
    let after = ["<|end|>", "<|return|>", "<|message|>", "<|call|>"]
        .iter()
        .find_map(|t| after.strip_prefix(t))
        .unwrap_or(after);
    Some((name.to_string(), obj, after))
}

/// Whether `text` (a reply so far) may still turn out to be a printed
/// call: it begins like one of the forms `promote` reads.
pub fn may_be_call(text: &str) -> bool {
    let t = text.trim_start();
    if t.is_empty() {
        return false;
    }
    // A fence is a call only when a JSON object opens it; a `[` only as a
    // `[name]` line: code and links are released as soon as they show.
    if let Some(r) = t.strip_prefix("```") {
        if "json".starts_with(r) {
            return true;
        }
        let r = r.strip_prefix("json").unwrap_or(r).trim_start();
        return r.is_empty() || r.starts_with('{');
    }
    if let Some(r) = t.strip_prefix('[') {
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let Some(end) = r.find(']') else {
            return r.chars().all(name_char);
        };
        if end == 0 || !r[..end].chars().all(name_char) {
            return false;
        }
        let after = r[end + 1..].trim_start_matches([' ', '\t', '\r']);
        let Some(body) = after.strip_prefix('\n') else {
            return after.is_empty();
        };
        let body = body.trim_start();
        return body.is_empty() || body.starts_with('{');
    }
    [
        "{",
        "```",
        "<tool_call>",
        "<|channel|>",
        "commentary",
        "analysis",
    ]
    .iter()
    .any(|opener| t.starts_with(opener) || opener.starts_with(t))
}

/// A JSON object at the start of `s`, and the text after it.
fn object(s: &str) -> Option<(Map<String, Value>, &str)> {
    let mut it = serde_json::Deserializer::from_str(s).into_iter::<Value>();
    match it.next()? {
        Ok(Value::Object(m)) => Some((m, &s[it.byte_offset()..])),
        _ => None,
    }
}

/// `{"name": …, "arguments" | "parameters" | "args": {…}}`.
fn named(mut obj: Map<String, Value>) -> Option<(String, Map<String, Value>)> {
    let name = match obj.remove("name")? {
        Value::String(s) => s,
        _ => return None,
    };
    let args = ["arguments", "parameters", "args"]
        .iter()
        .find_map(|k| obj.remove(*k));
    let args = match args {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Value::Object(m)) => m,
            _ => return None,
        },
        Some(_) => return None,
    };
    // Anything else in the object means it is not (only) a call.
    obj.is_empty().then_some((name, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(name: &str, args: &Value) -> bool {
        name == "read" && args.get("path").is_some_and(Value::is_string)
    }

    #[test]
    fn what_may_be_a_call() {
        for (text, maybe) in [
            ("", false),
            ("  {\"na", true),
            ("<tool", true),
            ("<tool_call>{", true),
            ("comm", true),
            ("[read]", true),
            ("[read]\n{\"pa", true),
            ("[see the docs](http", false),
            ("[read] more", false),
            ("[read]\nHello", false),
            ("```", true),
            ("```js", true),
            ("```json\n{", true),
            ("```python\nprint", false),
            ("```\nls -la", false),
            ("Hello", false),
            ("<p>", false),
        ] {
            assert_eq!(may_be_call(text), maybe, "{text:?}");
        }
    }

    #[test]
    fn promotion_table() {
        let read = Some(vec![(
            "read".to_string(),
            r#"{"path":"a.txt"}"#.to_string(),
        )]);
        type Calls = Option<Vec<(String, String)>>;
        let cases: Vec<(&str, Calls)> = vec![
            (
                r#"{"name": "read", "arguments": {"path": "a.txt"}}"#,
                read.clone(),
            ),
            (
                r#"  {"name":"read","parameters":{"path":"a.txt"}}  "#,
                read.clone(),
            ),
            (
                "```json\n{\"name\":\"read\",\"arguments\":{\"path\":\"a.txt\"}}\n```",
                read.clone(),
            ),
            (
                "<tool_call>\n{\"name\":\"read\",\"arguments\":{\"path\":\"a.txt\"}}\n</tool_call>",
                read.clone(),
            ),
            (
                "[read]\n{\"path\":\"a.txt\"}\n[END_TOOL_REQUEST]",
                read.clone(),
            ),
            ("[read]\n{\"path\":\"a.txt\"}\n[/read]", read.clone()),
            (
                "<|channel|>commentary to=read code<|message|>{\"path\":\"a.txt\"}<|call|>",
                read.clone(),
            ),
            (
                r#"{"name":"read","arguments":"{\"path\":\"a.txt\"}"}"#,
                read.clone(),
            ),
            // Two calls in a row.
            (
                "<tool_call>{\"name\":\"read\",\"arguments\":{\"path\":\"a.txt\"}}</tool_call>\n<tool_call>{\"name\":\"read\",\"arguments\":{\"path\":\"b\"}}</tool_call>",
                Some(vec![
                    ("read".into(), r#"{"path":"a.txt"}"#.into()),
                    ("read".into(), r#"{"path":"b"}"#.into()),
                ]),
            ),
            // Not offered, bad arguments, prose around it, other JSON: text.
            (
                r#"{"name": "exec", "arguments": {"command": "rm -rf /"}}"#,
                None,
            ),
            (r#"{"name": "read", "arguments": {"file": "a"}}"#, None),
            (
                r#"Sure! {"name": "read", "arguments": {"path": "a.txt"}}"#,
                None,
            ),
            (
                r#"{"name": "read", "arguments": {"path": "a.txt"}} done"#,
                None,
            ),
            (r#"{"name": "Alice", "age": 3}"#, None),
            (r#"{"answer": 42}"#, None),
            ("[read]{\"path\":\"a.txt\"}[/read]", None),
            ("", None),
            ("Hello there.", None),
        ];
        for (text, want) in cases {
            assert_eq!(promote(text, &offered), want, "{text}");
        }
    }
}
