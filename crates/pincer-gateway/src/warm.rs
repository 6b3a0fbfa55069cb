//! Keep-warm pings: servers that unload an idle model (LM Studio's TTL,
//! Ollama's `keep_alive`) make the next turn wait for a cold load. For the
//! providers named with `--keep-warm`, every model the agents use gets a
//! one-token request each interval, unless a real turn used it meanwhile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pincer_catalog::{ModelSpec, candidate_chain};
use pincer_llm::{ChatRequest, Message};

use crate::Gateway;

/// Which provider to keep warm, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepWarm {
    pub provider: String,
    pub every: Duration,
}

/// Below LM Studio's and Ollama's default idle unload (5 minutes).
pub const DEFAULT_EVERY: Duration = Duration::from_secs(240);

impl KeepWarm {
    /// `PROVIDER` or `PROVIDER=SECONDS`.
    pub fn parse(s: &str) -> Result<KeepWarm, String> {
        let (provider, every) = match s.split_once('=') {
            Some((p, secs)) => {
                let n: u64 = secs.parse().ok().filter(|n| *n >= 10).ok_or_else(|| {
                    format!("--keep-warm {s:?}: seconds must be a number, at least 10")
                })?;
                (p, Duration::from_secs(n))
            }
            None => (s, DEFAULT_EVERY),
        };
        if provider.is_empty() {
            return Err(format!("--keep-warm {s:?}: name a provider"));
        }
        Ok(KeepWarm {
            provider: provider.to_ascii_lowercase(),
            every,
        })
    }
}

/// When each model last answered a real turn.
#[derive(Default)]
pub struct LastUsed(Mutex<HashMap<String, Instant>>);

impl LastUsed {
    pub fn touch(&self, model: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(model.to_string(), Instant::now());
        }
    }

    fn idle_for(&self, model: &str) -> Option<Duration> {
        let m = self.0.lock().ok()?;
        m.get(model).map(Instant::elapsed)
    }
}

impl Gateway {
    /// The models of `provider` any agent may run.
    fn models_of(&self, provider: &str) -> Vec<ModelSpec> {
        let mut out: Vec<ModelSpec> = Vec::new();
        for agent in self.rt.agents() {
            for spec in candidate_chain(self.catalog(), agent).0 {
                if spec.provider == provider && !out.iter().any(|s| s.reference == spec.reference) {
                    out.push(spec);
                }
            }
        }
        out
    }

    /// Runs the pings for one provider until the process ends.
    pub async fn keep_warm(&'static self, warm: KeepWarm) {
        let mut tick = tokio::time::interval(warm.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for spec in self.models_of(&warm.provider) {
                if self
                    .last_used
                    .idle_for(&spec.reference)
                    .is_some_and(|d| d < warm.every)
                {
                    continue;
                }
                match self.ping(&spec).await {
                    Ok(()) => tracing::debug!("kept {} warm", spec.reference),
                    Err(e) => tracing::warn!("keep-warm ping to {} failed: {e}", spec.reference),
                }
            }
        }
    }

    /// One output token; the answer is thrown away. Not routed: a failed
    /// ping says nothing about the user's turns, so it starts no cooldown.
    async fn ping(&self, spec: &ModelSpec) -> Result<(), pincer_llm::ProviderError> {
        let req = ChatRequest {
            messages: vec![Message::user("ping")],
            max_tokens: Some(1),
            ..ChatRequest::default()
        };
        let providers = self.rt.router().providers();
        let key = providers
            .keys(self.catalog(), spec, &self.default_agent().id)
            .into_iter()
            .next();
        let mut stream = providers
            .stream_with_key(self.catalog(), spec, "keep-warm", &req, key.as_ref())
            .await?;
        while let Some(event) = stream.next().await {
            event?;
        }
        Ok(())
    }

    /// The `--keep-warm` providers that the config does not define.
    pub fn unknown_providers<'k>(&self, warm: &'k [KeepWarm]) -> Vec<&'k str> {
        warm.iter()
            .filter(|w| self.catalog().provider(&w.provider).is_none())
            .map(|w| w.provider.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_and_interval() {
        assert_eq!(
            KeepWarm::parse("LMStudio").unwrap(),
            KeepWarm {
                provider: "lmstudio".into(),
                every: DEFAULT_EVERY
            }
        );
        assert_eq!(
            KeepWarm::parse("ollama=60").unwrap().every,
            Duration::from_secs(60)
        );
        assert!(KeepWarm::parse("ollama=2").is_err());
        assert!(KeepWarm::parse("=60").is_err());
    }
}
