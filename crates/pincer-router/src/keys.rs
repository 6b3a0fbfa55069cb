//! Which credentials a provider has, in the order to use them. A provider
//! with several keys rotates to the next one when a key is refused, rate
//! limited or out of credit, before the turn moves to another model.
//!
//! Sources, first preferred (OpenClaw's order): the auth profiles in
//! `auth.order[provider]`, else those in `auth.profiles`, else every stored
//! profile of the provider (secrets from the agent's `auth-profiles.json`);
//! then the config's `apiKey`; then the environment:
//! `OPENCLAW_LIVE_<P>_KEY` alone when set, else `<P>_API_KEYS` (a comma or
//! semicolon list), `<P>_API_KEY`, `<P>_API_KEY_*` and the provider's
//! well-known variables.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pincer_catalog::{ModelSpec, Provider};
use pincer_config::{AuthConfig, Env};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Whether a model has a key to call with: the one key policy, shared by
/// the router (which keys it tries), `pincer models list`, `models status`
/// and `pincer doctor` (what they report), so what a listing says is missing
/// is exactly what a turn would fail to use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum KeyStatus {
    /// These keys, by name (never the secret), first preferred.
    Present { names: Vec<String> },
    /// None found; any of these variables would do.
    Missing { env: Vec<String> },
    /// A local server or the embedded engine: no key needed.
    NotNeeded,
}

impl KeyStatus {
    /// From the keys found for a model of `provider`.
    pub fn of(keys: &[Credential], spec: &ModelSpec, provider: Option<&Provider>) -> KeyStatus {
        if !keys.is_empty() {
            KeyStatus::Present {
                names: keys.iter().map(|k| k.id.clone()).collect(),
            }
        } else if spec.local || spec.is_embedded() {
            KeyStatus::NotNeeded
        } else {
            let mut env: Vec<String> = provider.map(|p| p.env_keys.clone()).unwrap_or_default();
            let own = format!("{}_API_KEY", env_prefix(&spec.provider));
            if !env.contains(&own) {
                env.push(own);
            }
            KeyStatus::Missing { env }
        }
    }
}

/// One key and a name for it that is safe to show and to key cooldowns by.
#[derive(Debug, Clone)]
pub struct Credential {
    /// `openai:work`, `inline-api-key:openai`, `env:OPENAI_API_KEYS#2`, …
    pub id: String,
    pub secret: SecretString,
}

/// The stored profiles of one agent (`auth-profiles.json`) plus the
/// config's profile metadata.
#[derive(Debug, Default)]
pub struct Credentials {
    stored: Vec<(String, StoredProfile)>,
    auth: Vec<(String, String)>,
    order: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Deserialize)]
struct StoreFile {
    #[serde(default)]
    profiles: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct StoredProfile {
    provider: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access: Option<String>,
}

/// Where OpenClaw keeps an agent's profiles (the JSON layout).
pub fn store_path(state_dir: &Path, agent: &str) -> PathBuf {
    state_dir
        .join("agents")
        .join(agent)
        .join("agent")
        .join("auth-profiles.json")
}

impl Credentials {
    /// Reads the agent's profile store when there is one. A store that cannot
    /// be read gives no profiles, and the message says why.
    pub fn load(auth: &AuthConfig, env: &Env, agent: &str) -> (Credentials, Option<String>) {
        let mut c = Credentials {
            stored: Vec::new(),
            auth: auth
                .profiles
                .iter()
                .map(|p| (p.id.value.clone(), p.provider.clone()))
                .collect(),
            order: auth
                .order
                .iter()
                .map(|(p, ids)| (p.clone(), ids.iter().map(|i| i.value.clone()).collect()))
                .collect(),
        };
        let Some(path) = env.state_dir().map(|d| store_path(&d, agent)) else {
            return (c, None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (c, None),
            Err(e) => return (c, Some(format!("cannot read {}: {e}", path.display()))),
        };
        match serde_json::from_str::<StoreFile>(&text) {
            Ok(file) => {
                // Profiles of other kinds or shapes are skipped, not fatal.
                c.stored = file
                    .profiles
                    .into_iter()
                    .filter_map(|(id, v)| Some((id, serde_json::from_value(v).ok()?)))
                    .collect();
                (c, None)
            }
            Err(e) => (
                c,
                Some(format!("{} is not valid JSON: {e}", path.display())),
            ),
        }
    }

    /// The config's profile metadata without any agent's stored secrets.
    pub fn config_only(&self) -> Credentials {
        Credentials {
            stored: Vec::new(),
            auth: self.auth.clone(),
            order: self.order.clone(),
        }
    }

    /// Every key `provider` has, first preferred, without duplicates.
    pub fn for_provider(&self, provider: &Provider, env: &Env) -> Vec<Credential> {
        let mut out = Vec::new();
        for id in self.profile_ids(&provider.id) {
            if let Some(secret) = self.stored_secret(&id, env) {
                out.push(Credential { id, secret });
            }
        }
        if let Some(k) = &provider.api_key {
            out.push(Credential {
                id: format!("inline-api-key:{}", provider.id),
                secret: k.secret.clone(),
            });
        }
        out.extend(env_keys(provider, env));
        let mut seen = HashSet::new();
        out.retain(|c| seen.insert(c.secret.expose_secret().to_string()));
        out
    }

    fn profile_ids(&self, provider: &str) -> Vec<String> {
        if let Some((_, ids)) = self.order.iter().find(|(p, _)| p == provider) {
            return ids.clone();
        }
        let configured: Vec<String> = self
            .auth
            .iter()
            .filter(|(_, p)| p == provider)
            .map(|(id, _)| id.clone())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        self.stored
            .iter()
            .filter(|(_, p)| p.provider.eq_ignore_ascii_case(provider))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn stored_secret(&self, id: &str, env: &Env) -> Option<SecretString> {
        let (_, p) = self.stored.iter().find(|(i, _)| i == id)?;
        let raw = p.key.as_ref().or(p.token.as_ref()).or(p.access.as_ref())?;
        // A stored key may be a `${VAR}` reference.
        let value = match raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            Some(var) => env.var(var)?,
            None => raw.clone(),
        };
        (!value.trim().is_empty()).then(|| SecretString::from(value))
    }
}

/// `OPENAI`, `LM_STUDIO`, … from a provider id.
fn env_prefix(provider: &str) -> String {
    provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn env_keys(provider: &Provider, env: &Env) -> Vec<Credential> {
    let p = env_prefix(&provider.id);
    let one = |name: String| {
        let v = env.var(&name)?;
        Some(Credential {
            id: format!("env:{name}"),
            secret: SecretString::from(v),
        })
    };
    if let Some(live) = one(format!("OPENCLAW_LIVE_{p}_KEY")) {
        return vec![live];
    }
    let mut out = Vec::new();
    let list = format!("{p}_API_KEYS");
    if let Some(v) = env.var(&list) {
        for (i, k) in v
            .split([',', ';'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
        {
            out.push(Credential {
                id: format!("env:{list}#{}", i + 1),
                secret: SecretString::from(k.to_string()),
            });
        }
    }
    out.extend(one(format!("{p}_API_KEY")));
    for name in env.names_with_prefix(&format!("{p}_API_KEY_")) {
        out.extend(one(name));
    }
    for name in &provider.env_keys {
        out.extend(one(name.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_catalog::Catalog;
    use pincer_config::ModelsConfig;

    fn ids(c: &[Credential]) -> Vec<&str> {
        c.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn environment_keys_in_openclaw_order_without_duplicates() {
        let env = Env::from_pairs(&[
            ("OPENAI_API_KEYS", "sk-a, sk-b;sk-c"),
            ("OPENAI_API_KEY", "sk-b"),
            ("OPENAI_API_KEY_2", "sk-d"),
        ]);
        let models = ModelsConfig::default();
        let catalog = Catalog::new(&models);
        let openai = catalog.provider("openai").unwrap();
        let keys = Credentials::default().for_provider(openai, &env);
        assert_eq!(
            ids(&keys),
            [
                "env:OPENAI_API_KEYS#1",
                "env:OPENAI_API_KEYS#2",
                "env:OPENAI_API_KEYS#3",
                "env:OPENAI_API_KEY_2"
            ]
        );
        let live = Env::from_pairs(&[
            ("OPENCLAW_LIVE_OPENAI_KEY", "sk-z"),
            ("OPENAI_API_KEY", "x"),
        ]);
        let keys = Credentials::default().for_provider(openai, &live);
        assert_eq!(ids(&keys), ["env:OPENCLAW_LIVE_OPENAI_KEY"]);
    }

    /// `models list` and `doctor` report keys by the rule calls use: a key
    /// list in `<P>_API_KEYS` is present (the catalog's own look at the
    /// provider's variables used to call it missing), a local server needs
    /// none, and a missing key names the variables that would do.
    #[test]
    fn key_status_is_what_a_call_would_use() {
        let models = ModelsConfig::default();
        let catalog = Catalog::new(&models);
        let spec = |r: &str| {
            catalog
                .model(&pincer_catalog::ModelRef::parse(r).unwrap())
                .unwrap()
        };
        let providers = |pairs: &[(&str, &str)]| {
            crate::Providers::new(
                Env::from_pairs(pairs),
                std::sync::Arc::new(pincer_gguf::Silent),
            )
            .unwrap()
        };
        let openai = spec("openai/gpt-4o");
        let p = providers(&[("OPENAI_API_KEYS", "sk-a,sk-b")]);
        assert_eq!(
            p.key_status(&catalog, &openai, "main"),
            KeyStatus::Present {
                names: vec![
                    "env:OPENAI_API_KEYS#1".into(),
                    "env:OPENAI_API_KEYS#2".into()
                ]
            }
        );
        let none = providers(&[]);
        match none.key_status(&catalog, &openai, "main") {
            KeyStatus::Missing { env } => assert!(env.contains(&"OPENAI_API_KEY".to_string())),
            other => panic!("{other:?}"),
        }
        let embedded = spec(pincer_catalog::DEFAULT_MODEL);
        assert_eq!(
            none.key_status(&catalog, &embedded, "main"),
            KeyStatus::NotNeeded
        );
    }

    #[test]
    fn stored_profiles_follow_auth_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_path(dir.path(), "main");
        std::fs::create_dir_all(store.parent().unwrap()).unwrap();
        std::fs::write(
            &store,
            r#"{"version":1,"profiles":{
                "openai:home":{"type":"api_key","provider":"openai","key":"sk-home"},
                "openai:work":{"type":"api_key","provider":"openai","key":"${WORK_KEY}"},
                "anthropic:default":{"type":"api_key","provider":"anthropic","key":"sk-ant"}}}"#,
        )
        .unwrap();
        let state = dir.path().display().to_string();
        let env = Env::from_pairs(&[("OPENCLAW_STATE_DIR", &state), ("WORK_KEY", "sk-work")]);
        let mut auth = AuthConfig::default();
        auth.order.push((
            "openai".into(),
            vec![
                pincer_config::Spanned::new("openai:work".to_string(), "", None),
                pincer_config::Spanned::new("openai:home".to_string(), "", None),
            ],
        ));
        let (creds, problem) = Credentials::load(&auth, &env, "main");
        assert!(problem.is_none());
        let models = ModelsConfig::default();
        let catalog = Catalog::new(&models);
        let keys = creds.for_provider(catalog.provider("openai").unwrap(), &env);
        assert_eq!(ids(&keys), ["openai:work", "openai:home"]);
        assert_eq!(keys[0].secret.expose_secret(), "sk-work");

        std::fs::write(&store, "{ not json").unwrap();
        let (_, problem) = Credentials::load(&auth, &env, "main");
        assert!(
            problem
                .unwrap()
                .contains("auth-profiles.json is not valid JSON")
        );
    }
}
