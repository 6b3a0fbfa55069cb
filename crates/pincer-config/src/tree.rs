//! A JSON value tree in which every node remembers where it was written.
//!
//! jsonc-parser gives an AST with byte ranges; this is the owned form that
//! `$include` merging and `${VAR}` substitution work on before validation.

use crate::source::{FileId, Pos};

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number and the text it was written as (`0x10`, `1e3`, `.5`).
    Number(f64, String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
}

impl Value {
    /// What a user would call this kind of value, for "expected X, found Y".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(..) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// The value as the user wrote it, shortened, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(_, raw) => raw.clone(),
            Value::String(s) => {
                let short: String = s.chars().take(40).collect();
                let ell = if short.len() < s.len() { "…" } else { "" };
                format!("{:?}", format!("{short}{ell}"))
            }
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
        }
    }
}

impl Node {
    pub fn members(&self) -> Option<&[Member]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.members()?
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| &m.node)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Plain JSON, for `config show`. `redact` decides per key path whether a
    /// string is replaced by `***`.
    pub fn to_json(
        &self,
        path: &mut Vec<String>,
        redact: &dyn Fn(&[String]) -> bool,
    ) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n, _) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => {
                if redact(path) {
                    serde_json::Value::String("***".into())
                } else {
                    serde_json::Value::String(s.clone())
                }
            }
            Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        path.push(i.to_string());
                        let v = n.to_json(path, redact);
                        path.pop();
                        v
                    })
                    .collect(),
            ),
            Value::Object(members) => {
                let mut map = serde_json::Map::new();
                for m in members {
                    path.push(m.key.clone());
                    map.insert(m.key.clone(), m.node.to_json(path, redact));
                    path.pop();
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

/// Parse a JSON5 number literal as jsonc-parser hands it over.
pub(crate) fn parse_number(raw: &str) -> Option<f64> {
    let (neg, body) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    let n = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()? as f64
    } else {
        match body {
            "Infinity" => f64::INFINITY,
            "NaN" => f64::NAN,
            _ => body.parse::<f64>().ok()?,
        }
    };
    Some(if neg { -n } else { n })
}

pub(crate) fn from_ast(value: jsonc_parser::ast::Value<'_>, file: FileId) -> Node {
    use jsonc_parser::ast::{ObjectPropName, Value as A};
    let at = |offset: usize| Pos {
        file,
        offset: offset as u32,
    };
    match value {
        A::NullKeyword(n) => Node {
            value: Value::Null,
            pos: at(n.range.start),
        },
        A::BooleanLit(b) => Node {
            value: Value::Bool(b.value),
            pos: at(b.range.start),
        },
        A::NumberLit(n) => Node {
            value: Value::Number(
                parse_number(n.value).unwrap_or(f64::NAN),
                n.value.to_string(),
            ),
            pos: at(n.range.start),
        },
        A::StringLit(s) => Node {
            value: Value::String(s.value.into_owned()),
            pos: at(s.range.start),
        },
        A::Array(a) => Node {
            pos: at(a.range.start),
            value: Value::Array(a.elements.into_iter().map(|e| from_ast(e, file)).collect()),
        },
        A::Object(o) => Node {
            pos: at(o.range.start),
            value: Value::Object(
                o.properties
                    .into_iter()
                    .map(|p| {
                        let (key, key_start) = match p.name {
                            ObjectPropName::String(s) => (s.value.into_owned(), s.range.start),
                            ObjectPropName::Word(w) => (w.value.to_string(), w.range.start),
                        };
                        Member {
                            key,
                            key_pos: at(key_start),
                            node: from_ast(p.value, file),
                        }
                    })
                    .collect(),
            ),
        },
    }
}
