//! Asking a server which models it has (model discovery): Ollama's
//! `/api/tags` then `/api/show` per model (context, capabilities); for
//! OpenAI-style servers `/v1/models`, with what each server adds: llama.cpp's
//! `meta` and `/props`, vLLM's `max_model_len`, LM Studio's `/api/v0/models`
//! (context, loaded state, tool use, type). Every request is bounded in time
//! and size; a server that answers nothing useful is an error, never a hang.

use std::time::Duration;

use pincer_catalog::discovery::{DiscoveredModel, MAX_DISCOVERED, OLLAMA_LOCAL_CONTEXT};
use tokio::task::JoinSet;

use crate::client::Client;
use crate::dialect::{Dialect, ollama_root};
use crate::probe::ServerKind;
use crate::server_api::{LlamaCppProps, LmStudioModels, ModelList, OllamaShow, OllamaTags};
use crate::target::Target;
use pincer_types::ProviderError;

/// At most this many `/api/show` requests run at once.
const SHOW_CONCURRENCY: usize = 8;
/// All of a server's `/api/show` requests together (the router gives a
/// whole server 12 s).
const SHOWS_LIMIT: Duration = Duration::from_secs(6);

impl Client {
    /// The models `t`'s server lists (`t.model_id` is not used), each
    /// request bounded by `limit`.
    pub async fn discover(
        &self,
        t: &Target,
        limit: Duration,
    ) -> Result<(ServerKind, Vec<DiscoveredModel>), ProviderError> {
        if t.dialect == Dialect::Ollama {
            return Ok((ServerKind::Ollama, self.discover_ollama(t, limit).await?));
        }
        let base = t.base_url.trim_end_matches('/');
        let url = format!("{base}/models");
        let list: ModelList = self.fetch(t, &url, limit).await?;
        let owner = list.data.iter().find_map(|m| m.owned_by.as_deref());
        let kind = match owner {
            Some("llamacpp") => ServerKind::LlamaCpp,
            Some("vllm") => ServerKind::Vllm,
            _ => ServerKind::OpenAiCompatible,
        };
        let mut models: Vec<DiscoveredModel> = list
            .data
            .iter()
            .take(MAX_DISCOVERED)
            .filter(|m| !m.id.is_empty())
            .map(|m| DiscoveredModel {
                id: m.id.clone(),
                context_window: m
                    .max_model_len
                    .or_else(|| m.meta.as_ref().and_then(|x| x.n_ctx_train)),
                context_tokens: m.meta.as_ref().and_then(|x| x.n_ctx),
                loaded: m.status.as_ref().map(|s| s.value == "loaded"),
                ..DiscoveredModel::default()
            })
            .collect();
        let root = ollama_root(&t.base_url);
        match kind {
            // What each request really gets (the slots' share of `-c`).
            ServerKind::LlamaCpp => {
                if let Ok(props) = self
                    .fetch::<LlamaCppProps>(t, &format!("{root}/props"), limit)
                    .await
                    && let Some(n) = props.default_generation_settings.and_then(|s| s.n_ctx)
                {
                    for m in &mut models {
                        m.context_tokens = Some(n);
                    }
                }
            }
            ServerKind::OpenAiCompatible => {
                // LM Studio says more on its own API; other servers 404.
                if let Ok(lm) = self
                    .fetch::<LmStudioModels>(t, &format!("{root}/api/v0/models"), limit)
                    .await
                {
                    models = lm_studio(models, &lm);
                    return Ok((ServerKind::LmStudio, models));
                }
            }
            _ => {}
        }
        Ok((kind, models))
    }

    async fn discover_ollama(
        &self,
        t: &Target,
        limit: Duration,
    ) -> Result<Vec<DiscoveredModel>, ProviderError> {
        let root = ollama_root(&t.base_url).to_string();
        let tags: OllamaTags = self.fetch(t, &format!("{root}/api/tags"), limit).await?;
        let names: Vec<String> = tags
            .models
            .into_iter()
            .map(|m| m.name)
            .filter(|n| !n.is_empty())
            .take(MAX_DISCOVERED)
            .collect();
        // `/api/show` for each, a few at a time, in the list's order, for as
        // long as the server's share of the discovery allows.
        let deadline = tokio::time::Instant::now() + SHOWS_LIMIT;
        let mut shows: Vec<Option<OllamaShow>> = (0..names.len()).map(|_| None).collect();
        let mut running = JoinSet::new();
        let mut next = 0;
        loop {
            while running.len() < SHOW_CONCURRENCY && next < names.len() {
                let (client, t, url) = (self.clone(), t.clone(), format!("{root}/api/show"));
                let body = serde_json::json!({ "model": names[next] });
                let i = next;
                running.spawn(async move {
                    let show = client
                        .fetch_post::<OllamaShow>(&t, &url, &body, limit)
                        .await;
                    (i, show.ok())
                });
                next += 1;
            }
            // Past the deadline the list goes out with what is known: a
            // model without its details keeps the defaults.
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(Some(Ok((i, show)))) => shows[i] = show,
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    running.abort_all();
                    break;
                }
            }
        }
        Ok(names
            .into_iter()
            .zip(shows)
            .filter_map(|(id, show)| {
                let caps = show.as_ref().and_then(|s| s.capabilities.clone());
                let has = |c: &str| caps.as_ref().map(|cs| cs.iter().any(|x| x == c));
                // Embedding models cannot chat.
                if has("completion") == Some(false) {
                    return None;
                }
                let window = show.as_ref().and_then(OllamaShow::max_context);
                Some(DiscoveredModel {
                    id,
                    context_window: window,
                    context_tokens: Some(
                        window.map_or(OLLAMA_LOCAL_CONTEXT, |w| w.min(OLLAMA_LOCAL_CONTEXT)),
                    ),
                    reasoning: has("thinking"),
                    tools: has("tools"),
                    vision: has("vision") == Some(true),
                    loaded: None,
                })
            })
            .collect())
    }
}

/// LM Studio's own list: its context, loaded state, tool use and vision,
/// without its embedding models.
fn lm_studio(listed: Vec<DiscoveredModel>, lm: &LmStudioModels) -> Vec<DiscoveredModel> {
    listed
        .into_iter()
        .filter_map(|mut m| {
            let Some(row) = lm.data.iter().find(|r| r.id == m.id) else {
                return Some(m);
            };
            if row.kind.as_deref() == Some("embeddings") {
                return None;
            }
            m.context_window = row.max_context_length.or(m.context_window);
            m.context_tokens = row.loaded_context_length.or(m.context_tokens);
            m.loaded = row.state.as_deref().map(|s| s == "loaded");
            m.vision = row.kind.as_deref() == Some("vlm");
            if let Some(caps) = &row.capabilities {
                m.tools = Some(caps.iter().any(|c| c == "tool_use"));
            }
            Some(m)
        })
        .collect()
}
