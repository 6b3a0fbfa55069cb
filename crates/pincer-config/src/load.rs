//! Finding, reading and pre-processing openclaw.json: JSON5 parsing,
//! `$include` merging and `${VAR}` substitution.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jsonc_parser::{CollectOptions, ParseOptions};

use crate::diag::{Diagnostic, JsonPath};
use crate::source::{FileId, Pos, SourceMap};
use crate::tree::{self, Member, Node, Value};

/// Where environment variables come from: the process, or a fixed map (tests).
#[derive(Debug, Clone, Default)]
pub enum Env {
    #[default]
    Process,
    Map(HashMap<String, String>),
}

impl Env {
    /// A fixed environment (tests, embedding): `[("HOME", "/home/u")]`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn var(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(m) => m.get(name).cloned(),
        }
        .filter(|v| !v.is_empty())
    }

    /// Names of the set variables that start with `prefix`, sorted.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Env::Process => std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .collect(),
            Env::Map(m) => m.keys().cloned().collect(),
        };
        names.retain(|n| n.starts_with(prefix) && self.var(n).is_some());
        names.sort();
        names
    }

    /// `$HOME`, or `$OPENCLAW_HOME` which replaces it for every OpenClaw path.
    pub fn home(&self) -> Option<PathBuf> {
        self.var("OPENCLAW_HOME")
            .or_else(|| self.var("HOME"))
            .map(PathBuf::from)
    }

    /// OpenClaw's state directory: `$OPENCLAW_STATE_DIR`, else `~/.openclaw`
    /// (`~/.openclaw-<profile>` with `$OPENCLAW_PROFILE`).
    pub fn state_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = self.var("OPENCLAW_STATE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let home = self.home()?;
        Some(match self.var("OPENCLAW_PROFILE") {
            Some(profile) => home.join(format!(".openclaw-{profile}")),
            None => home.join(".openclaw"),
        })
    }
}

/// How the config file was chosen, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSource {
    Flag,
    ConfigPathEnv,
    StateDir,
    Home,
}

/// `--config PATH`, else `$OPENCLAW_CONFIG_PATH`, else `$OPENCLAW_STATE_DIR/openclaw.json`,
/// else `~/.openclaw/openclaw.json`.
pub fn find_config(flag: Option<&Path>, env: &Env) -> Option<(PathBuf, PathSource)> {
    if let Some(p) = flag {
        return Some((p.to_path_buf(), PathSource::Flag));
    }
    if let Some(p) = env.var("OPENCLAW_CONFIG_PATH") {
        return Some((PathBuf::from(p), PathSource::ConfigPathEnv));
    }
    if env.var("OPENCLAW_STATE_DIR").is_some() {
        return Some((env.state_dir()?.join("openclaw.json"), PathSource::StateDir));
    }
    Some((env.state_dir()?.join("openclaw.json"), PathSource::Home))
}

const MAX_INCLUDE_DEPTH: usize = 10;

fn parse_options() -> ParseOptions {
    ParseOptions {
        // JSON5 requires commas; accepting their absence would hide typos.
        allow_missing_commas: false,
        ..ParseOptions::default()
    }
}

/// Parse one file's text into a tree, or a syntax diagnostic with line:column.
pub(crate) fn parse_file(sources: &SourceMap, file: FileId) -> Result<Node, Diagnostic> {
    let text = &sources.file(file).text;
    let parsed = jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &parse_options())
        .map_err(|e| {
            let loc = sources.location(Pos {
                file,
                offset: e.range().start as u32,
            });
            Diagnostic::error("", format!("invalid JSON5: {}", e.kind()), Some(loc))
        })?;
    match parsed.value {
        Some(v) => Ok(tree::from_ast(v, file)),
        None => Ok(Node {
            value: Value::Object(Vec::new()),
            pos: Pos { file, offset: 0 },
        }),
    }
}

pub(crate) struct Includer<'a> {
    pub sources: &'a mut SourceMap,
    pub diags: &'a mut Vec<Diagnostic>,
    pub roots: Vec<PathBuf>,
    pub main_dir: PathBuf,
}

impl Includer<'_> {
    /// Replace every `$include` in `node` by the content of the named files.
    pub fn resolve(
        &mut self,
        node: Node,
        dir: &Path,
        stack: &mut Vec<PathBuf>,
        path: &JsonPath,
    ) -> Node {
        match node.value {
            Value::Array(items) => Node {
                pos: node.pos,
                value: Value::Array(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, n)| self.resolve(n, dir, stack, &path.index(i)))
                        .collect(),
                ),
            },
            Value::Object(members) => self.resolve_object(members, node.pos, dir, stack, path),
            other => Node {
                value: other,
                pos: node.pos,
            },
        }
    }

    fn resolve_object(
        &mut self,
        members: Vec<Member>,
        pos: Pos,
        dir: &Path,
        stack: &mut Vec<PathBuf>,
        path: &JsonPath,
    ) -> Node {
        let mut include = None;
        let mut rest = Vec::with_capacity(members.len());
        for m in members {
            if m.key == "$include" {
                include = Some(m.node);
            } else {
                let p = path.key(&m.key);
                rest.push(Member {
                    node: self.resolve(m.node, dir, stack, &p),
                    ..m
                });
            }
        }
        let own = Node {
            value: Value::Object(rest),
            pos,
        };
        let Some(include) = include else { return own };
        let inc_path = path.key("$include");
        let files: Vec<(String, Pos)> = match &include.value {
            Value::String(s) => vec![(s.clone(), include.pos)],
            Value::Array(items) => items
                .iter()
                .filter_map(|n| match &n.value {
                    Value::String(s) => Some((s.clone(), n.pos)),
                    other => {
                        self.diags.push(Diagnostic::error(
                            inc_path.as_str(),
                            format!("expected a file path, found {}", other.describe()),
                            Some(self.sources.location(n.pos)),
                        ));
                        None
                    }
                })
                .collect(),
            other => {
                self.diags.push(Diagnostic::error(
                    inc_path.as_str(),
                    format!(
                        "expected a file path or an array of paths, found {}",
                        other.describe()
                    ),
                    Some(self.sources.location(include.pos)),
                ));
                return own;
            }
        };
        let mut merged: Option<Node> = None;
        for (file, at) in files {
            if let Some(node) = self.load_include(&file, at, dir, stack, &inc_path) {
                merged = Some(match merged {
                    None => node,
                    Some(base) => deep_merge(base, node),
                });
            }
        }
        let Some(merged) = merged else { return own };
        let has_siblings = own.members().is_some_and(|m| !m.is_empty());
        if !has_siblings {
            return merged;
        }
        if merged.members().is_none() {
            self.diags.push(Diagnostic::error(
                inc_path.as_str(),
                format!(
                    "an included file must hold an object when other keys sit beside $include, found {}",
                    merged.value.kind()
                ),
                Some(self.sources.location(include.pos)),
            ));
            return own;
        }
        deep_merge(merged, own)
    }

    fn load_include(
        &mut self,
        file: &str,
        at: Pos,
        dir: &Path,
        stack: &mut Vec<PathBuf>,
        path: &JsonPath,
    ) -> Option<Node> {
        let loc = self.sources.location(at);
        let fail = |msg: String| Diagnostic::error(path.as_str(), msg, Some(loc.clone()));
        if file.is_empty() || file.contains('\0') || file.len() >= 4096 {
            self.diags
                .push(fail(format!("invalid include path {file:?}")));
            return None;
        }
        if stack.len() > MAX_INCLUDE_DEPTH {
            self.diags.push(fail(format!(
                "includes nest deeper than {MAX_INCLUDE_DEPTH} levels at {file:?}"
            )));
            return None;
        }
        let full = dir.join(file);
        let canonical = match full.canonicalize() {
            Ok(c) => c,
            Err(e) => {
                self.diags.push(fail(format!(
                    "cannot read included file {}: {e}",
                    full.display()
                )));
                return None;
            }
        };
        if !self.roots.iter().any(|r| canonical.starts_with(r)) {
            self.diags.push(fail(format!(
                "included file {} is outside the config's folder; add its folder to OPENCLAW_INCLUDE_ROOTS to allow it",
                full.display()
            )));
            return None;
        }
        if stack.contains(&canonical) {
            self.diags.push(fail(format!(
                "include cycle: {} includes itself",
                canonical.display()
            )));
            return None;
        }
        let text = match std::fs::read_to_string(&canonical) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(fail(format!(
                    "cannot read included file {}: {e}",
                    full.display()
                )));
                return None;
            }
        };
        let display = canonical
            .strip_prefix(&self.main_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| canonical.display().to_string());
        let id = self.sources.add(canonical.clone(), display, text);
        let node = match parse_file(self.sources, id) {
            Ok(n) => n,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let sub_dir = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        stack.push(canonical);
        let node = self.resolve(node, &sub_dir, stack, path);
        stack.pop();
        Some(node)
    }
}

/// Objects merge key by key (recursively); anything else: `over` replaces `base`.
pub(crate) fn deep_merge(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Object(mut base_members), Value::Object(over_members)) => {
            for m in over_members {
                match base_members.iter().position(|b| b.key == m.key) {
                    Some(i) => {
                        let old = base_members.remove(i);
                        base_members.insert(
                            i,
                            Member {
                                node: deep_merge(old.node, m.node),
                                ..m
                            },
                        );
                    }
                    None => base_members.push(m),
                }
            }
            Node {
                value: Value::Object(base_members),
                pos: over.pos,
            }
        }
        (_, over_value) => Node {
            value: over_value,
            pos: over.pos,
        },
    }
}

/// A `${VAR}` found in a string value, with where it was written.
pub(crate) struct VarUse {
    pub name: String,
    pub found: bool,
    pub path: JsonPath,
    pub pos: Pos,
}

/// Replace `${VAR}` in every string value; `$${VAR}` stays as the literal `${VAR}`.
pub(crate) fn substitute_env(
    node: &mut Node,
    path: &JsonPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    uses: &mut Vec<VarUse>,
) {
    match &mut node.value {
        Value::String(s) if s.contains("${") => {
            let mut names = Vec::new();
            *s = expand(s, lookup, &mut names);
            uses.extend(names.into_iter().map(|(name, found)| VarUse {
                name,
                found,
                path: path.clone(),
                pos: node.pos,
            }));
        }
        Value::Array(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                substitute_env(n, &path.index(i), lookup, uses);
            }
        }
        Value::Object(members) => {
            for m in members {
                let p = path.key(&m.key);
                substitute_env(&mut m.node, &p, lookup, uses);
            }
        }
        _ => {}
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Expand one string. Names not in OpenClaw's `[A-Z_][A-Z0-9_]*` form are left as written.
/// `names` receives each variable referred to and whether it had a value.
pub(crate) fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    names: &mut Vec<(String, bool)>,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${")
            && let Some(end) = after.find('}').filter(|&e| is_var_name(&after[..e]))
        {
            out.push_str("${");
            out.push_str(&after[..=end]);
            rest = &after[end + 1..];
            continue;
        }
        if let Some(after) = tail.strip_prefix("${")
            && let Some(end) = after.find('}').filter(|&e| is_var_name(&after[..e]))
        {
            let name = &after[..end];
            let value = lookup(name);
            names.push((name.to_string(), value.is_some()));
            out.push_str(value.as_deref().unwrap_or(""));
            rest = &after[end + 1..];
            continue;
        }
        out.push('$');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn expands_inline_and_escaped_vars() {
        let e = env(&[("BASE", "http://127.0.0.1:8000"), ("KEY", "sk-1")]);
        let mut names = Vec::new();
        assert_eq!(
            expand("${BASE}/v1", &e, &mut names),
            "http://127.0.0.1:8000/v1"
        );
        assert_eq!(expand("$${KEY}", &e, &mut names), "${KEY}");
        assert_eq!(
            expand("a $KEY ${lower} $", &e, &mut names),
            "a $KEY ${lower} $"
        );
        assert_eq!(expand("${KEY}${KEY}", &e, &mut names), "sk-1sk-1");
        assert!(names.iter().all(|(_, found)| *found));
        names.clear();
        assert_eq!(expand("x${NOPE}y", &e, &mut names), "xy");
        assert_eq!(names, vec![("NOPE".to_string(), false)]);
    }

    #[test]
    fn config_path_follows_openclaw_order() {
        let e = Env::Map(HashMap::from([
            ("HOME".to_string(), "/home/u".to_string()),
            ("OPENCLAW_STATE_DIR".to_string(), "/srv/oc".to_string()),
        ]));
        assert_eq!(
            find_config(None, &e).unwrap().0,
            PathBuf::from("/srv/oc/openclaw.json")
        );
        let e = Env::Map(HashMap::from([("HOME".to_string(), "/home/u".to_string())]));
        assert_eq!(
            find_config(None, &e).unwrap().0,
            PathBuf::from("/home/u/.openclaw/openclaw.json")
        );
        let e = Env::Map(HashMap::from([
            ("HOME".to_string(), "/home/u".to_string()),
            (
                "OPENCLAW_CONFIG_PATH".to_string(),
                "/etc/oc.json".to_string(),
            ),
        ]));
        assert_eq!(
            find_config(None, &e).unwrap().0,
            PathBuf::from("/etc/oc.json")
        );
        assert_eq!(
            find_config(Some(Path::new("x.json")), &e).unwrap().0,
            PathBuf::from("x.json")
        );
    }
}
