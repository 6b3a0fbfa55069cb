//! Reads OpenClaw's `openclaw.json` as it is: JSON5, `$include`, `${VAR}`,
//! and validation that reports every problem with its JSON path and the
//! file's line:column.
//!
//! ```text
//! file ─► parse (jsonc-parser, JSON5) ─► $include ─► ${VAR} ─► validate ─► Config + diagnostics
//! ```

mod diag;
mod load;
mod schema;
mod source;
mod tree;
mod validate;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, JsonPath, Severity, did_you_mean, sort_by_location};
pub use load::{Env, PathSource, find_config};
pub use schema::*;
pub use source::{Location, SourceMap};

use load::{Includer, VarUse};
use tree::Node;
use validate::{Checker, Substitutions};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} not found (named by {via})", path.display())]
    NotFound { path: PathBuf, via: &'static str },
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A loaded config: the typed view, every diagnostic, and the files read.
#[derive(Debug)]
pub struct Loaded {
    /// The main file, or None when there is none and built-in defaults apply.
    pub path: Option<PathBuf>,
    pub config: Config,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
    tree: Option<Node>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// The effective config (after `$include` and `${VAR}`) as JSON, with every
    /// secret-looking value replaced by `***`.
    pub fn to_redacted_json(&self) -> serde_json::Value {
        match &self.tree {
            Some(t) => t.to_json(&mut Vec::new(), &is_secret_path),
            None => serde_json::json!({}),
        }
    }
}

/// Keys whose values are credentials, wherever they sit; header values and
/// `env.vars` values are treated as secrets too.
fn is_secret_path(path: &[String]) -> bool {
    let Some(last) = path.last() else {
        return false;
    };
    let key = last.to_ascii_lowercase();
    // By suffix, so `botToken` and `apiKey` hide but `maxTokens` and `tokenMode` do not.
    let secret_word = [
        "key",
        "token",
        "password",
        "secret",
        "authorization",
        "cookie",
        "passphrase",
    ]
    .iter()
    .any(|w| key.ends_with(w))
        && !key.ends_with("sessionkey")
        && !key.ends_with("mainkey");
    let in_map = |name: &str| path.len() >= 2 && path[path.len() - 2] == name;
    secret_word || in_map("headers") || (in_map("vars") && path.first().is_some_and(|p| p == "env"))
}

/// Find and load the config: `--config PATH`, `$OPENCLAW_CONFIG_PATH`,
/// `$OPENCLAW_STATE_DIR/openclaw.json`, `~/.openclaw/openclaw.json`.
/// No file at all is valid and gives the built-in defaults.
pub fn load(flag: Option<&Path>, env: &Env) -> Result<Loaded, ConfigError> {
    let Some((path, via)) = find_config(flag, env) else {
        return Ok(defaults());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(load_text(&text, &path, env)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match via {
            PathSource::Flag => Err(ConfigError::NotFound {
                path,
                via: "--config",
            }),
            PathSource::ConfigPathEnv => Err(ConfigError::NotFound {
                path,
                via: "$OPENCLAW_CONFIG_PATH",
            }),
            PathSource::StateDir | PathSource::Home => Ok(defaults()),
        },
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

fn defaults() -> Loaded {
    Loaded {
        path: None,
        config: Config::default(),
        diagnostics: Vec::new(),
        sources: SourceMap::default(),
        tree: None,
    }
}

/// Load a config from text as if it were the file at `path` (includes resolve
/// from its folder). Never fails: problems are diagnostics.
pub fn load_text(text: &str, path: &Path, env: &Env) -> Loaded {
    let mut sources = SourceMap::default();
    let main_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let display = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let main = sources.add(path.to_path_buf(), display, text.to_string());
    let mut diagnostics = Vec::new();

    let tree = match load::parse_file(&sources, main) {
        Ok(tree) => tree,
        Err(d) => {
            return Loaded {
                path: Some(path.to_path_buf()),
                config: Config::default(),
                diagnostics: vec![d],
                sources,
                tree: None,
            };
        }
    };

    let canonical_dir = main_dir.canonicalize().unwrap_or_else(|_| main_dir.clone());
    let mut roots = vec![canonical_dir.clone()];
    if let Some(extra) = env.var("OPENCLAW_INCLUDE_ROOTS") {
        roots.extend(std::env::split_paths(&extra).filter_map(|p| p.canonicalize().ok()));
    }
    let mut tree = Includer {
        sources: &mut sources,
        diags: &mut diagnostics,
        roots,
        main_dir: canonical_dir,
    }
    .resolve(tree, &main_dir, &mut Vec::new(), &JsonPath::root());

    let subs = substitute(&mut tree, env, &sources, &mut diagnostics);
    let lookup = |name: &str| env.var(name);
    let mut checker = Checker::new(&sources, &subs, &lookup);
    let config = checker.root(&tree);
    diagnostics.append(&mut checker.diags);
    diag::sort_by_location(&mut diagnostics);
    Loaded {
        path: Some(path.to_path_buf()),
        config,
        diagnostics,
        sources,
        tree: Some(tree),
    }
}

/// Sections whose missing `${VAR}`s are errors: the ones Pincer acts on.
fn section_is_used(path: &str) -> bool {
    ["agents", "models", "env"].iter().any(|s| {
        path == *s || path.starts_with(&format!("{s}.")) || path.starts_with(&format!("{s}["))
    })
}

fn substitute(
    tree: &mut Node,
    env: &Env,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Substitutions {
    // `env.vars` in the config fills in what the process environment lacks.
    let vars: Vec<(String, String)> = tree
        .get("env")
        .and_then(|e| e.get("vars"))
        .and_then(Node::members)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.node.as_str().map(|v| (m.key.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let lookup = |name: &str| {
        env.var(name).or_else(|| {
            vars.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        })
    };
    let mut uses: Vec<VarUse> = Vec::new();
    load::substitute_env(tree, &JsonPath::root(), &lookup, &mut uses);
    let mut subs = Substitutions::default();
    for u in uses {
        let path = u.path.to_string();
        subs.used
            .entry(path.clone())
            .or_default()
            .push(u.name.clone());
        if u.found {
            continue;
        }
        let loc = Some(sources.location(u.pos));
        let d = if section_is_used(&path) {
            Diagnostic::error(
                path.as_str(),
                format!(
                    "environment variable {} is not set (referenced as ${{{}}})",
                    u.name, u.name
                ),
                loc,
            )
        } else {
            Diagnostic::warning(
                path.as_str(),
                format!(
                    "environment variable {} is not set (referenced as ${{{}}}; this section is not used by Pincer)",
                    u.name, u.name
                ),
                loc,
            )
        };
        diags.push(d);
        subs.missing.insert(path);
    }
    subs
}

#[cfg(test)]
mod tests {
    use super::is_secret_path;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secret_paths() {
        for secret in [
            &["models", "providers", "x", "apiKey"][..],
            &["gateway", "auth", "token"],
            &["channels", "telegram", "botToken"],
            &["models", "providers", "x", "headers", "X-Custom"],
            &["env", "vars", "ANYTHING"],
        ] {
            assert!(is_secret_path(&p(secret)), "{secret:?}");
        }
        for plain in [
            &["models", "providers", "x", "models", "0", "maxTokens"][..],
            &["models", "providers", "x", "baseUrl"],
            &["agents", "defaults", "mediaInput", "tokenMode"],
            &["session", "mainKey"],
        ] {
            assert!(!is_secret_path(&p(plain)), "{plain:?}");
        }
    }
}
