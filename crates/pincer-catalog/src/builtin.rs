//! The built-in catalog: `catalog/models.json`, generated from models.dev by
//! `catalog/generate.py`, compiled into the binary and parsed once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const DATA: &str = include_str!("../../../catalog/models.json");

#[derive(Debug, Deserialize)]
pub struct BuiltinData<'a> {
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(borrow, rename = "generatedAt")]
    pub generated_at: Cow<'a, str>,
    #[serde(borrow)]
    pub providers: Vec<BuiltinProvider<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct BuiltinProvider<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub env: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub doc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub api: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "baseUrl")]
    pub base_url: Option<Cow<'a, str>>,
    #[serde(default)]
    pub local: bool,
    #[serde(borrow)]
    pub models: Vec<BuiltinModel<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct BuiltinModel<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub ctx: u64,
    pub out: u64,
    /// input, output, cache read, cache write: USD per million tokens.
    pub cost: [f64; 4],
    /// Prices above a context size: [min_context, input, output, cache read, cache write].
    #[serde(default)]
    pub tiers: Vec<[f64; 5]>,
    #[serde(borrow, rename = "in")]
    pub input: Vec<Cow<'a, str>>,
    #[serde(borrow, rename = "out_mod")]
    pub output: Vec<Cow<'a, str>>,
    /// `r` reasoning, `t` tool calls.
    #[serde(borrow)]
    pub flags: Cow<'a, str>,
    #[serde(default)]
    pub open: bool,
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub api: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "baseUrl")]
    pub base_url: Option<Cow<'a, str>>,
}

impl BuiltinModel<'_> {
    pub fn reasoning(&self) -> bool {
        self.flags.contains('r')
    }
    pub fn tool_call(&self) -> bool {
        self.flags.contains('t')
    }
}

pub struct Builtin {
    pub data: BuiltinData<'static>,
    index: HashMap<String, usize>,
}

impl Builtin {
    pub fn provider(&self, id: &str) -> Option<&BuiltinProvider<'static>> {
        self.index.get(id).map(|&i| &self.data.providers[i])
    }
}

impl BuiltinProvider<'_> {
    pub fn model(&self, id: &str) -> Option<&BuiltinModel<'_>> {
        self.models.iter().find(|m| m.id == id)
    }
}

/// Parse the compiled-in catalog afresh (benchmarks measure the cold start
/// with this); returns the number of models.
pub fn parse_uncached() -> Result<usize, serde_json::Error> {
    let data: BuiltinData<'_> = serde_json::from_str(DATA)?;
    Ok(data.providers.iter().map(|p| p.models.len()).sum())
}

/// The catalog compiled into this binary. Parsed on first use.
pub fn builtin() -> &'static Builtin {
    static CELL: OnceLock<Builtin> = OnceLock::new();
    CELL.get_or_init(|| {
        // The data is generated and checked by this crate's tests; an empty
        // catalog (never expected) still leaves Pincer usable with config-only models.
        let data: BuiltinData<'static> = serde_json::from_str(DATA).unwrap_or(BuiltinData {
            source: Cow::Borrowed("(unreadable built-in catalog)"),
            generated_at: Cow::Borrowed(""),
            providers: Vec::new(),
        });
        let index = data
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.to_string(), i))
            .collect();
        Builtin { data, index }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_catalog_parses_and_holds_models_dev() {
        let data: BuiltinData<'_> = serde_json::from_str(DATA).expect("catalog/models.json parses");
        assert!(
            data.providers.len() > 150,
            "{} providers",
            data.providers.len()
        );
        let models: usize = data.providers.iter().map(|p| p.models.len()).sum();
        assert!(models > 5000, "{models} models");
        let b = builtin();
        let anthropic = b.provider("anthropic").expect("anthropic");
        assert_eq!(anthropic.api.as_deref(), Some("anthropic-messages"));
        assert_eq!(anthropic.env, vec!["ANTHROPIC_API_KEY"]);
        let opus = anthropic.model("claude-opus-4-5").expect("opus 4.5");
        assert_eq!(opus.ctx, 200_000);
        assert_eq!(opus.cost[0], 5.0);
        assert!(
            b.provider("openrouter")
                .unwrap()
                .env
                .iter()
                .any(|e| e == "OPENROUTER_API_KEY")
        );
        assert!(b.provider("lmstudio").unwrap().local);
    }
}
