//! Discovery runs: the providers whose models come from their servers are
//! asked all at once, each bounded in time, so a slow or dead server holds
//! up nobody. A list is kept for a minute in `<state dir>/pincer/
//! discovery.json` (written whole, via rename); when a server cannot be
//! asked, the last list it gave stays usable and the failure is reported
//! beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pincer_catalog::Catalog;
use pincer_catalog::discovery::Discovery;
use pincer_llm::Target;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::cooldown::now_ms;
use crate::providers::Providers;

/// How long a list is used without asking the server again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// Each request to a server.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// One server's whole discovery (a list, then a look at each model).
const SERVER_LIMIT: Duration = Duration::from_secs(12);

/// A base URL as it may be shown and stored: without credentials or a
/// query, which may hold a token.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => String::from("(not a URL)"),
    }
}

/// Where the lists are kept between commands.
pub fn discovery_path(state_dir: &Path) -> PathBuf {
    state_dir.join("pincer").join("discovery.json")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    version: u32,
    providers: BTreeMap<String, Discovery>,
}

fn load(path: Option<&Path>) -> BTreeMap<String, Discovery> {
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<Saved>(&t).ok())
        .map(|s| s.providers)
        .unwrap_or_default()
}

fn save(path: &Path, providers: BTreeMap<String, Discovery>) -> Result<(), String> {
    crate::cooldown::write_whole(
        path,
        &Saved {
            version: 1,
            providers,
        },
    )
}

impl Providers {
    /// What the servers of `ids` list, asked at once (a list younger than
    /// `DISCOVERY_TTL` in `cache` is used as it is; `fresh` asks anyway).
    /// A server that cannot be asked gives its error, with its last list.
    pub async fn discover(
        &self,
        catalog: &Catalog<'_>,
        ids: &[String],
        agent: &str,
        cache: Option<&Path>,
        fresh: bool,
    ) -> Vec<Discovery> {
        let saved = load(cache);
        let now = now_ms();
        let ttl = u64::try_from(DISCOVERY_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut out: BTreeMap<String, Discovery> = BTreeMap::new();
        let mut asking = JoinSet::new();
        for id in ids {
            let Some(provider) = catalog.provider(id) else {
                continue;
            };
            let base_url = shown_url(provider.base_url.as_deref().unwrap_or_default());
            let last = saved.get(id).filter(|d| d.base_url == base_url).cloned();
            if let Some(d) = &last
                && !fresh
                && d.error.is_none()
                && now.saturating_sub(d.at_ms) < ttl
            {
                out.insert(id.clone(), d.clone());
                continue;
            }
            let Some(spec) = catalog.unlisted(id, "") else {
                continue;
            };
            let key = self.keys(catalog, &spec, agent).into_iter().next();
            let target = match Target::new(&spec, provider, key.map(|k| k.secret)) {
                Ok(t) => t,
                Err(e) => {
                    out.insert(
                        id.clone(),
                        Discovery {
                            provider: id.clone(),
                            base_url,
                            server: None,
                            models: Vec::new(),
                            error: Some(e.message),
                            at_ms: now,
                        },
                    );
                    continue;
                }
            };
            let client = self.http.clone();
            let (id, base_url) = (id.clone(), base_url.clone());
            asking.spawn(async move {
                let found =
                    tokio::time::timeout(SERVER_LIMIT, client.discover(&target, REQUEST_LIMIT))
                        .await;
                let found = match found {
                    Ok(Ok((server, models))) => Ok((server.to_string(), models)),
                    Ok(Err(e)) => Err(format!("{}: {}", e.kind, e.message)),
                    Err(_) => Err(format!(
                        "timeout: no list within {} s",
                        SERVER_LIMIT.as_secs()
                    )),
                };
                (id, base_url, found)
            });
        }
        while let Some(done) = asking.join_next().await {
            let Ok((id, base_url, found)) = done else {
                continue;
            };
            let last = saved.get(&id).filter(|d| d.base_url == base_url);
            let d = match found {
                Ok((server, models)) => Discovery {
                    provider: id.clone(),
                    base_url,
                    server: Some(server),
                    models,
                    error: None,
                    at_ms: now,
                },
                Err(error) => Discovery {
                    provider: id.clone(),
                    base_url,
                    server: last.and_then(|d| d.server.clone()),
                    models: last.map(|d| d.models.clone()).unwrap_or_default(),
                    error: Some(error),
                    at_ms: last.map_or(now, |d| d.at_ms),
                },
            };
            out.insert(id, d);
        }
        if let Some(path) = cache {
            // A failure is kept too (with the last list and its time), so
            // the next command asks again instead of trusting the old list.
            let mut keep = saved;
            keep.extend(out.iter().map(|(id, d)| (id.clone(), d.clone())));
            // A cache that cannot be written only means the next command
            // asks the servers again.
            let _ = save(path, keep);
        }
        ids.iter().filter_map(|id| out.remove(id)).collect()
    }
}
