//! Files beside a destination that the fetch and download steps share:
//! the `.part` file a download grows, and the locks that keep two processes
//! from writing the same file.

use std::path::{Path, PathBuf};

use crate::error::GgufError;

/// Where a download of `dest` grows until it is verified.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// An exclusive lock on `<dest>.<what>.lock`, held until the returned file is
/// dropped. Waiting for it happens off the async threads. Locks are per
/// purpose (`fetch` around choosing a source, `download` around writing the
/// part file), since one holder may take both.
pub(crate) async fn lock_beside(dest: &Path, what: &str) -> Result<std::fs::File, GgufError> {
    let dest = dest.to_path_buf();
    let what = what.to_string();
    tokio::task::spawn_blocking(move || lock_file(&dest, &what))
        .await
        .map_err(|e| GgufError::BadSource(format!("lock task failed: {e}")))?
}

fn lock_file(dest: &Path, what: &str) -> Result<std::fs::File, GgufError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| GgufError::io(dir, e))?;
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}.lock"));
    let path = dest.with_file_name(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| GgufError::io(&path, e))?;
    file.lock().map_err(|e| GgufError::io(&path, e))?;
    Ok(file)
}
