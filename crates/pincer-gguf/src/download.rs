//! One file over HTTP into the models dir: written to `<dest>.part`, resumed
//! with a `Range` request after a cut (in this run or a later one), checked
//! (GGUF magic, SHA-256) and only then renamed into place. A file under its
//! final name is therefore always complete and verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, RANGE};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::GgufError;
use crate::files::{lock_beside, part_path};
use crate::progress::Progress;
use crate::verify;

#[derive(Debug, Clone)]
pub struct Download {
    pub url: Url,
    pub dest: PathBuf,
    /// Expected SHA-256; when `None`, the server's (Hugging Face's
    /// `X-Linked-Etag`) is used if it gives one.
    pub sha256: Option<String>,
    /// Sent as a bearer token (a Hugging Face token for gated repos).
    pub token: Option<String>,
    /// Tries in this run, each resuming where the last stopped.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// True when the SHA-256 was checked against a known value.
    pub verified: bool,
    /// Bytes already there from an earlier, interrupted download.
    pub resumed_from: u64,
}

pub async fn download(
    http: &reqwest::Client,
    d: &Download,
    progress: &dyn Progress,
) -> Result<Downloaded, GgufError> {
    if let Some(dir) = d.dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| GgufError::io(dir, e))?;
    }
    // One writer per file: a second `pull` of the same file waits.
    let _lock = lock_beside(&d.dest, "download").await?;
    let part = part_path(&d.dest);
    let resumed_from = file_len(&part).await;
    let mut expected = d.sha256.clone();
    if expected.is_none() {
        expected = advertised_sha256(d).await;
    }
    let mut last_error = None;
    for attempt in 1..=d.attempts.max(1) {
        if attempt > 1 {
            let wait = Duration::from_millis(500 * 2u64.pow(attempt.min(6) - 2));
            if let Some(e) = &last_error {
                progress.note(&format!("{e}; retrying in {} ms", wait.as_millis()));
            }
            tokio::time::sleep(wait).await;
        }
        match fetch_into(http, d, &part, progress).await {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(Fetch::Fatal(e)) => return Err(e),
            Err(Fetch::Retry(e)) => last_error = Some(e),
        }
    }
    progress.end();
    if let Some(e) = last_error {
        return Err(e);
    }
    let (check_path, want) = (part.clone(), expected.clone());
    let sha256 = tokio::task::spawn_blocking(move || verify::check(&check_path, want.as_deref()))
        .await
        .map_err(|e| GgufError::BadSource(format!("checksum task failed: {e}")))??;
    let bytes = file_len(&part).await;
    tokio::fs::rename(&part, &d.dest)
        .await
        .map_err(|e| GgufError::io(&d.dest, e))?;
    Ok(Downloaded {
        path: d.dest.clone(),
        bytes,
        sha256,
        verified: expected.is_some(),
        resumed_from,
    })
}

enum Fetch {
    /// Worth another try: the connection dropped, the server hiccuped.
    Retry(GgufError),
    Fatal(GgufError),
}

/// One GET, appending to the part file from where it ends.
async fn fetch_into(
    http: &reqwest::Client,
    d: &Download,
    part: &Path,
    progress: &dyn Progress,
) -> Result<(), Fetch> {
    let have = file_len(part).await;
    let mut req = http.get(d.url.clone());
    if have > 0 {
        req = req.header(RANGE, format!("bytes={have}-"));
    }
    if let Some(t) = &d.token {
        req = req.bearer_auth(t);
    }
    let url = d.url.to_string();
    let mut resp = req.send().await.map_err(|e| {
        Fetch::Retry(GgufError::Network {
            url: url.clone(),
            message: e.to_string(),
        })
    })?;
    let status = resp.status();
    let append = match status {
        StatusCode::PARTIAL_CONTENT => {
            let start = range_start(resp.headers());
            if start != Some(have) {
                // Not the range we asked for: start over rather than guess.
                truncate(part).await.map_err(Fetch::Fatal)?;
                return Err(Fetch::Retry(GgufError::Network {
                    url,
                    message: "the server resumed at the wrong offset".into(),
                }));
            }
            true
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            // The part file already holds the whole file (or more): let the
            // checksum decide.
            return Ok(());
        }
        s if s.is_success() => false,
        s => {
            let message = resp.text().await.unwrap_or_default();
            let message: String = message.trim().chars().take(200).collect();
            let err = GgufError::Http {
                url,
                status: s.as_u16(),
                message,
            };
            return Err(
                if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
                    Fetch::Retry(err)
                } else {
                    Fetch::Fatal(err)
                },
            );
        }
    };
    let offset = if append { have } else { 0 };
    let total = resp.content_length().map(|n| n + offset);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .await
        .map_err(|e| Fetch::Fatal(GgufError::io(part, e)))?;
    let label = d.dest.file_name().unwrap_or_default().to_string_lossy();
    progress.begin(&label, total);
    let mut done = offset;
    progress.set(done);
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            Fetch::Retry(GgufError::Network {
                url: url.clone(),
                message: format!("download cut at {done} bytes: {e}"),
            })
        });
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                let _ = file.flush().await;
                return Err(e);
            }
        };
        file.write_all(&chunk)
            .await
            .map_err(|e| Fetch::Fatal(GgufError::io(part, e)))?;
        done += chunk.len() as u64;
        progress.set(done);
    }
    file.flush()
        .await
        .map_err(|e| Fetch::Fatal(GgufError::io(part, e)))?;
    file.sync_all()
        .await
        .map_err(|e| Fetch::Fatal(GgufError::io(part, e)))?;
    if let Some(t) = total
        && done < t
    {
        return Err(Fetch::Retry(GgufError::Network {
            url,
            message: format!("download cut at {done} of {t} bytes"),
        }));
    }
    Ok(())
}

/// The SHA-256 a server advertises for a file without sending it: Hugging
/// Face answers a HEAD on `resolve/` with `X-Linked-Etag` before redirecting
/// to its CDN, so redirects are not followed here.
async fn advertised_sha256(d: &Download) -> Option<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .ok()?;
    let mut req = client.head(d.url.clone());
    if let Some(t) = &d.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    sha256_header(resp.headers())
}

fn sha256_header(h: &HeaderMap) -> Option<String> {
    ["x-linked-etag", ETAG.as_str()]
        .into_iter()
        .filter_map(|name| h.get(name)?.to_str().ok())
        .map(|v| {
            v.trim_start_matches("W/")
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .find(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn range_start(h: &HeaderMap) -> Option<u64> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

async fn file_len(path: &Path) -> u64 {
    tokio::fs::metadata(path).await.map_or(0, |m| m.len())
}

async fn truncate(path: &Path) -> Result<(), GgufError> {
    tokio::fs::File::create(path)
        .await
        .map(|_| ())
        .map_err(|e| GgufError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn sha_from_headers() {
        let sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"abc\""));
        assert_eq!(sha256_header(&h), None);
        h.insert(
            "x-linked-etag",
            HeaderValue::from_str(&format!("\"{sha}\"")).unwrap(),
        );
        assert_eq!(sha256_header(&h).as_deref(), Some(sha));
    }

    #[test]
    fn content_range_start() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(range_start(&h), Some(100));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes */200"));
        assert_eq!(range_start(&h), None);
    }

    #[test]
    fn part_file_sits_beside_the_destination() {
        assert_eq!(
            part_path(Path::new("/m/a/x.gguf")),
            PathBuf::from("/m/a/x.gguf.part")
        );
    }
}
