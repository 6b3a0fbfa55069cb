//! Asking a model server about itself without running the model: is it up,
//! does it list the model, is the model loaded or cold, and what context it
//! really runs with. Each server tells this its own way (llama.cpp's `/props`
//! and `/health`, LM Studio's `/api/v0/models`, Ollama's `/api/ps`, vLLM's
//! `max_model_len`); the answer is one `ServerReport`.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::classify::classify_http;
use crate::client::{Client, headers};
use crate::dialect::Dialect;
use crate::server_api::{
    LlamaCppProps, LmStudioModels, ModelList, OllamaPs, OllamaShow, OllamaTags, same_ollama_model,
};
use crate::target::Target;
use pincer_types::{ErrorKind, ProviderError};

/// A probe's reply larger than this is refused (a model list of a few
/// hundred models is well under it).
pub(crate) const MAX_PROBE_BODY: usize = 4 * 1024 * 1024;

/// Which server software answered, as far as it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    #[serde(rename = "lmstudio")]
    LmStudio,
    Ollama,
    Vllm,
    /// Answers `/v1/models` and nothing more specific.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerKind::LlamaCpp => "llama.cpp",
            ServerKind::LmStudio => "LM Studio",
            ServerKind::Ollama => "Ollama",
            ServerKind::Vllm => "vLLM",
            ServerKind::OpenAiCompatible => "an OpenAI-compatible server",
        })
    }
}

/// Whether the model is in memory, on its way there, or on disk only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadState {
    Loaded,
    Loading,
    /// Not loaded: the first request will wait for a load.
    Cold,
}

/// What a server said about one model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerReport {
    /// Why the server could not be asked (unreachable, key refused…).
    #[serde(serialize_with = "error_text")]
    pub error: Option<ProviderError>,
    pub server: Option<ServerKind>,
    /// Whether `/v1/models` lists the model; `None` when there is no list.
    pub listed: Option<bool>,
    /// The ids the server lists (to suggest the right one).
    pub models: Vec<String>,
    pub state: Option<LoadState>,
    /// The context the server runs the model with (tokens per request).
    pub context_limit: Option<u64>,
    /// A slot is working on a request (llama.cpp's `/slots`): a slow first
    /// token is a long prompt being read, not a stuck server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<bool>,
    /// The most context the model takes (Ollama's `/api/show`: trained, or
    /// a Modelfile `num_ctx` above it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_context: Option<u64>,
    /// What the server says the model can do (Ollama: `tools`, `thinking`,
    /// `vision`…), when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// The time `/v1/models` took to answer.
    #[serde(rename = "latencyMs", serialize_with = "millis")]
    pub latency: Duration,
}

fn error_text<S: serde::Serializer>(e: &Option<ProviderError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&format!("{}: {}", e.kind, e.message)),
        None => s.serialize_none(),
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ServerReport {
    fn new() -> ServerReport {
        ServerReport {
            error: None,
            server: None,
            listed: None,
            models: Vec::new(),
            state: None,
            context_limit: None,
            busy: None,
            max_context: None,
            capabilities: None,
            latency: Duration::ZERO,
        }
    }
}

impl Client {
    /// Asks `t`'s server about `t`'s model; every request is bounded by `limit`.
    pub async fn probe(&self, t: &Target, limit: Duration) -> ServerReport {
        let mut report = ServerReport::new();
        if t.dialect == Dialect::Ollama {
            self.ollama_native(t, limit, &mut report).await;
            return report;
        }
        let started = Instant::now();
        let list = self
            .fetch::<ModelList>(t, &format!("{}/models", base(t)), limit)
            .await;
        report.latency = started.elapsed();
        match list {
            Ok(list) => read_model_list(&list, &t.model_id, &mut report),
            // llama.cpp answers 503 "Loading model" until the weights are in.
            Err(e) if e.kind == ErrorKind::ModelLoading => {
                report.state = Some(LoadState::Loading);
                report.server = Some(ServerKind::LlamaCpp);
                return report;
            }
            // A server without a list can still answer chats.
            Err(e) if e.status == Some(404) => {}
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        }
        if !t.local {
            return report;
        }
        match report.server {
            Some(ServerKind::LlamaCpp) => self.llama_cpp(t, limit, &mut report).await,
            Some(ServerKind::Vllm) => {
                // vLLM loads its one model at start: if it answers, it is loaded.
                if report.listed == Some(true) {
                    report.state = Some(LoadState::Loaded);
                }
            }
            _ => {
                if !self.lm_studio(t, limit, &mut report).await {
                    self.ollama(t, limit, &mut report).await;
                }
            }
        }
        report
    }

    async fn get_json(
        &self,
        t: &Target,
        url: &str,
        limit: Duration,
    ) -> Result<Value, ProviderError> {
        self.send_json(t, self.http.get(url), url, limit).await
    }

    /// Sends a probe (with the target's key and headers), bounded in time
    /// and size, and reads its JSON.
    pub(crate) async fn send_json(
        &self,
        t: &Target,
        request: reqwest::RequestBuilder,
        url: &str,
        limit: Duration,
    ) -> Result<Value, ProviderError> {
        let secrets = t.secrets();
        let request = request.headers(headers(t)?).timeout(limit);
        let response = request.send().await.map_err(|e| {
            let mut err = crate::client::transport_error(&e, &secrets);
            if e.is_timeout() {
                err.kind = ErrorKind::Timeout;
                err.message = format!("{url} did not answer within {} s", limit.as_secs());
            }
            err
        })?;
        let status = response.status().as_u16();
        let text = crate::client::read_body(response, MAX_PROBE_BODY, None)
            .await
            .map_err(|e| ProviderError::new(e.kind, format!("{url}: {}", e.message)))?;
        if !(200..300).contains(&status) {
            return Err(classify_http(status, &text, None, &secrets));
        }
        serde_json::from_str(&text)
            .map_err(|e| ProviderError::new(ErrorKind::Protocol, format!("{url} is not JSON: {e}")))
    }

    /// A probe's JSON reply, read into `T`.
    pub(crate) async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        t: &Target,
        url: &str,
        limit: Duration,
    ) -> Result<T, ProviderError> {
        let v = self.send_json(t, self.http.get(url), url, limit).await?;
        typed(v, url)
    }

    pub(crate) async fn fetch_post<T: serde::de::DeserializeOwned>(
        &self,
        t: &Target,
        url: &str,
        body: &serde_json::Value,
        limit: Duration,
    ) -> Result<T, ProviderError> {
        let v = self
            .send_json(t, self.http.post(url).json(body), url, limit)
            .await?;
        typed(v, url)
    }

    /// `/props` has the per-request context and whether the server put the
    /// model to sleep; `/health` says whether it is still loading.
    async fn llama_cpp(&self, t: &Target, limit: Duration, report: &mut ServerReport) {
        if let Ok(props) = self
            .fetch::<LlamaCppProps>(t, &format!("{}/props", root(t)), limit)
            .await
        {
            if let Some(n) = props.default_generation_settings.and_then(|s| s.n_ctx) {
                report.context_limit = Some(n);
            }
            if props.is_sleeping == Some(true) {
                report.state = Some(LoadState::Cold);
                return;
            }
        }
        if report.state.is_none() {
            report.state = match self
                .get_json(t, &format!("{}/health", root(t)), limit)
                .await
            {
                Ok(_) => Some(LoadState::Loaded),
                Err(e) if e.kind == ErrorKind::ModelLoading => Some(LoadState::Loading),
                Err(_) => None,
            };
        }
        // Off with `--no-slots`: then nobody knows.
        if report.state == Some(LoadState::Loaded)
            && let Ok(slots) = self
                .fetch::<Vec<Slot>>(t, &format!("{}/slots", root(t)), limit)
                .await
        {
            report.busy = Some(slots.iter().any(|s| s.is_processing));
        }
    }

    /// LM Studio's own API lists every downloaded model with its state.
    async fn lm_studio(&self, t: &Target, limit: Duration, report: &mut ServerReport) -> bool {
        let Ok(lm) = self
            .fetch::<LmStudioModels>(t, &format!("{}/api/v0/models", root(t)), limit)
            .await
        else {
            return false;
        };
        report.server = Some(ServerKind::LmStudio);
        let Some(m) = lm.data.iter().find(|m| m.id == t.model_id) else {
            return true;
        };
        report.listed = Some(true);
        report.state = Some(match m.state.as_deref() {
            Some("loaded") => LoadState::Loaded,
            Some("loading") => LoadState::Loading,
            _ => LoadState::Cold,
        });
        // Loaded: the context it was loaded with. Cold: the model's maximum;
        // the load may choose less.
        report.context_limit = m
            .loaded_context_length
            .or(m.max_context_length)
            .or(report.context_limit);
        true
    }

    /// Ollama's `/api/ps` lists the models in memory.
    async fn ollama(&self, t: &Target, limit: Duration, report: &mut ServerReport) {
        let Ok(ps) = self
            .fetch::<OllamaPs>(t, &format!("{}/api/ps", root(t)), limit)
            .await
        else {
            return;
        };
        report.server = Some(ServerKind::Ollama);
        report.state = Some(match ps.models.iter().find(|m| m.is(&t.model_id)) {
            Some(m) => {
                if let Some(n) = m.context_length {
                    report.context_limit = Some(n);
                }
                LoadState::Loaded
            }
            None => LoadState::Cold,
        });
    }

    /// A model spoken to over Ollama's own API: `/api/tags` lists what is
    /// pulled, `/api/ps` what is in memory, `/api/show` the model's trained
    /// context and capabilities. Pincer sets the context per request
    /// (`num_ctx`), so what a loaded model runs with now is not a limit.
    async fn ollama_native(&self, t: &Target, limit: Duration, report: &mut ServerReport) {
        let root = crate::dialect::ollama_root(&t.base_url);
        let started = Instant::now();
        let tags = self
            .fetch::<OllamaTags>(t, &format!("{root}/api/tags"), limit)
            .await;
        report.latency = started.elapsed();
        let tags = match tags {
            Ok(tags) => tags,
            Err(e) => {
                report.error = Some(e);
                return;
            }
        };
        report.server = Some(ServerKind::Ollama);
        report.models = tags.models.iter().map(|m| m.name.clone()).collect();
        let listed = tags
            .models
            .iter()
            .any(|m| same_ollama_model(&m.name, &t.model_id));
        report.listed = Some(listed);
        if !listed {
            return;
        }
        if let Ok(ps) = self
            .fetch::<OllamaPs>(t, &format!("{root}/api/ps"), limit)
            .await
        {
            let loaded = ps.models.iter().any(|m| m.is(&t.model_id));
            report.state = Some(if loaded {
                LoadState::Loaded
            } else {
                LoadState::Cold
            });
            // Ollama tells nothing of the requests it is working on; a
            // loaded model that has not spoken yet is reading the prompt
            // (Ollama queues the rest).
            report.busy = loaded.then_some(true);
        }
        let show = self
            .fetch_post::<OllamaShow>(
                t,
                &format!("{root}/api/show"),
                &serde_json::json!({ "model": t.model_id }),
                limit,
            )
            .await;
        if let Ok(show) = show {
            report.max_context = show.max_context();
            report.capabilities = show.capabilities;
        }
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    url: &str,
) -> Result<T, ProviderError> {
    serde_json::from_value(v).map_err(|e| {
        ProviderError::new(
            ErrorKind::Protocol,
            format!("{url}: unexpected reply ({e})"),
        )
    })
}

/// One of llama.cpp's `/slots`.
#[derive(serde::Deserialize)]
struct Slot {
    #[serde(default)]
    is_processing: bool,
}

/// `/v1/models`: which ids are there, which server it is, and what some
/// servers add (llama.cpp's `meta.n_ctx`, vLLM's `max_model_len`, the
/// `status` of llama.cpp's multi-model router).
fn read_model_list(list: &ModelList, model_id: &str, report: &mut ServerReport) {
    report.models = list.data.iter().map(|m| m.id.clone()).collect();
    report.server = Some(match list.data.iter().find_map(|m| m.owned_by.as_deref()) {
        Some("llamacpp") => ServerKind::LlamaCpp,
        Some("vllm") => ServerKind::Vllm,
        _ => ServerKind::OpenAiCompatible,
    });
    let entry = list.data.iter().find(|m| {
        same_ollama_model(&m.id, model_id) || m.aliases.iter().flatten().any(|a| a == model_id)
    });
    report.listed = Some(entry.is_some());
    let Some(m) = entry else { return };
    report.context_limit = m
        .max_model_len
        .or_else(|| m.meta.as_ref().and_then(|x| x.n_ctx));
    report.state = match m.status.as_ref().map(|s| s.value.as_str()) {
        Some("loaded") => Some(LoadState::Loaded),
        Some("loading") => Some(LoadState::Loading),
        Some("unloaded") => Some(LoadState::Cold),
        _ => None,
    };
}

fn base(t: &Target) -> &str {
    t.base_url.trim_end_matches('/')
}

/// The server's root: the base URL without its `/v1`.
fn root(t: &Target) -> &str {
    crate::dialect::ollama_root(&t.base_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(v: serde_json::Value) -> ModelList {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn vllm_and_llama_cpp_lists() {
        let mut r = ServerReport::new();
        let vllm =
            list(json!({"data":[{"id":"Qwen/Qwen3-8B","owned_by":"vllm","max_model_len":32768}]}));
        read_model_list(&vllm, "Qwen/Qwen3-8B", &mut r);
        assert_eq!(r.server, Some(ServerKind::Vllm));
        assert_eq!((r.listed, r.context_limit), (Some(true), Some(32768)));

        let mut r = ServerReport::new();
        let router =
            list(json!({"data":[{"id":"a","owned_by":"llamacpp","status":{"value":"unloaded"}}]}));
        read_model_list(&router, "a", &mut r);
        assert_eq!(r.state, Some(LoadState::Cold));
        read_model_list(&router, "b", &mut r);
        assert_eq!(r.listed, Some(false));
        assert_eq!(r.models, vec!["a"]);
    }
}
