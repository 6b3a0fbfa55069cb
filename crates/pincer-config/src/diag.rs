//! Problems found in a config: what, where in the JSON, where in the file.

use std::fmt;

use serde::Serialize;

use crate::source::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, printed on one line:
/// `models.providers.lmstudio.models[0].contextWindow: expected a positive integer, found "big" (openclaw.json:23:28)`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// JSON path of the offending value (`agents.defaults.model.primary`); empty for the whole file.
    pub path: String,
    pub message: String,
    pub location: Option<Location>,
}

impl Diagnostic {
    pub fn error(
        path: impl Into<String>,
        message: impl Into<String>,
        location: Option<Location>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            location,
        }
    }

    pub fn warning(
        path: impl Into<String>,
        message: impl Into<String>,
        location: Option<Location>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            location,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write_one_line(f, &self.path)?;
            f.write_str(": ")?;
        }
        write_one_line(f, &self.message)?;
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        Ok(())
    }
}

/// Writes `text` with control characters escaped (`\n`, `\u{2028}`…), so a
/// name taken from a hostile config cannot break a diagnostic across lines.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// Order diagnostics as they appear in the files (those without a place first).
pub fn sort_by_location(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column))
        };
        key(a).cmp(&key(b))
    });
}

/// A JSON path as users read it: `models.providers.lmstudio.models[0]`,
/// with keys that are not plain words quoted: `agents.defaults.models["anthropic/claude-opus-4-5"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    pub fn root() -> Self {
        JsonPath(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        if plain {
            if self.0.is_empty() {
                JsonPath(key.to_string())
            } else {
                JsonPath(format!("{}.{key}", self.0))
            }
        } else {
            JsonPath(format!("{}[{key:?}]", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        JsonPath(format!("{}[{i}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(_, score)| *score >= 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_words() {
        let p = JsonPath::root()
            .key("agents")
            .key("defaults")
            .key("models")
            .key("anthropic/claude-opus-4-5");
        assert_eq!(
            p.as_str(),
            r#"agents.defaults.models["anthropic/claude-opus-4-5"]"#
        );
        let p = JsonPath::root()
            .key("models")
            .key("providers")
            .key("llama-cpp")
            .key("models")
            .index(2);
        assert_eq!(p.as_str(), "models.providers.llama-cpp.models[2]");
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            did_you_mean("contextWindows", ["contextWindow", "maxTokens"]),
            Some("contextWindow")
        );
        assert_eq!(
            did_you_mean("basurl", ["baseUrl", "apiKey"]),
            Some("baseUrl")
        );
        assert_eq!(did_you_mean("zzz", ["baseUrl", "apiKey"]), None);
    }

    #[test]
    fn a_diagnostic_stays_on_one_line_whatever_the_config_names() {
        let d = Diagnostic::error(
            "models.providers.x.apiKey",
            "environment variable \nK\u{2028} is not set (SecretRef)",
            None,
        );
        let shown = d.to_string();
        assert!(
            !shown.contains('\n') && !shown.contains('\u{2028}'),
            "{shown}"
        );
        assert!(shown.contains(r"variable \nK\u{2028} is"), "{shown}");
    }
}
