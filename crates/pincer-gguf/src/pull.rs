//! What `pincer models pull` accepts: a Hugging Face file
//! (`owner/repo/file.gguf`, optionally `@revision`) or any http(s) URL.

use std::path::PathBuf;

use pincer_config::Env;
use url::Url;

use crate::error::GgufError;

const HF_DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// `$HF_ENDPOINT` (Hugging Face's own variable for mirrors), else huggingface.co.
pub fn hf_endpoint(env: &Env) -> String {
    env.var("HF_ENDPOINT")
        .unwrap_or_else(|| HF_DEFAULT_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    pub url: Url,
    /// Where it goes, relative to the models dir.
    pub relative: PathBuf,
    /// Send `$HF_TOKEN` (only to the Hugging Face endpoint).
    pub hugging_face: bool,
}

impl PullSource {
    pub fn parse(input: &str, env: &Env) -> Result<PullSource, GgufError> {
        let input = input.trim();
        if input.starts_with("http://") || input.starts_with("https://") {
            let url = Url::parse(input)
                .map_err(|e| GgufError::BadSource(format!("{input}: not a valid URL: {e}")))?;
            let name = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    GgufError::BadSource(format!("{input}: the URL does not end in a file name"))
                })?;
            let name = name.to_string();
            return Ok(PullSource {
                url,
                relative: PathBuf::from(name),
                hugging_face: false,
            });
        }
        let (path, revision) = match input.split_once('@') {
            Some((p, r)) if !r.is_empty() => (p, r),
            _ => (input, "main"),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let valid = parts.len() >= 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && *p != "." && *p != "..");
        if !valid {
            return Err(GgufError::BadSource(format!(
                "{input}: expected owner/repo/file.gguf (a Hugging Face file) or an http(s) URL"
            )));
        }
        let (repo, file) = (parts[..2].join("/"), parts[2..].join("/"));
        let url = format!("{}/{repo}/resolve/{revision}/{file}", hf_endpoint(env));
        let url = Url::parse(&url)
            .map_err(|e| GgufError::BadSource(format!("{url}: not a valid URL: {e}")))?;
        Ok(PullSource {
            url,
            relative: PathBuf::from(repo).join(file),
            hugging_face: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugging_face_file() {
        let env = Env::from_pairs(&[]);
        let s = PullSource::parse("QuantFactory/SmolLM2-GGUF/a.Q4_1.gguf", &env).unwrap();
        assert_eq!(
            s.url.as_str(),
            "https://huggingface.co/QuantFactory/SmolLM2-GGUF/resolve/main/a.Q4_1.gguf"
        );
        assert_eq!(
            s.relative,
            PathBuf::from("QuantFactory/SmolLM2-GGUF/a.Q4_1.gguf")
        );
        assert!(s.hugging_face);
    }

    #[test]
    fn revision_and_mirror() {
        let env = Env::from_pairs(&[("HF_ENDPOINT", "http://127.0.0.1:9/")]);
        let s = PullSource::parse("o/r/sub/f.gguf@v2", &env).unwrap();
        assert_eq!(
            s.url.as_str(),
            "http://127.0.0.1:9/o/r/resolve/v2/sub/f.gguf"
        );
        assert_eq!(s.relative, PathBuf::from("o/r/sub/f.gguf"));
    }

    #[test]
    fn plain_url() {
        let env = Env::from_pairs(&[]);
        let s = PullSource::parse("http://127.0.0.1:8000/models/x.gguf", &env).unwrap();
        assert_eq!(s.relative, PathBuf::from("x.gguf"));
        assert!(!s.hugging_face);
    }

    #[test]
    fn bad_inputs_say_what_is_expected() {
        let env = Env::from_pairs(&[]);
        for bad in ["x.gguf", "o/r", "o/../f.gguf", "https://h/", "o//f.gguf"] {
            let e = PullSource::parse(bad, &env).unwrap_err().to_string();
            assert!(
                e.contains(bad.trim_end_matches('/')) || e.contains("URL"),
                "{bad}: {e}"
            );
        }
    }
}
