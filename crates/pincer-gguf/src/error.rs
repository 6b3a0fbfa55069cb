use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("no data directory: set PINCER_DATA_DIR or HOME")]
    NoDataDir,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{url}: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{}: SHA-256 is {actual}, expected {expected}; the file was removed", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{} is not a GGUF file (no GGUF magic); it was removed", .0.display())]
    NotGguf(PathBuf),
    #[error("{0}")]
    BadSource(String),
    #[error("package {package}: {message}")]
    Package { package: String, message: String },
    #[error("could not fetch {model}:\n  {}", attempts.join("\n  "))]
    AllSourcesFailed {
        model: String,
        attempts: Vec<String>,
    },
}

impl GgufError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> GgufError {
        GgufError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
