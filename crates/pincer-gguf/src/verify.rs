//! Is this file what we think it is: the GGUF magic and a SHA-256.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::GgufError;

/// Lowercase hex SHA-256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String, GgufError> {
    let mut file = std::fs::File::open(path).map_err(|e| GgufError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| GgufError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when the file starts with GGUF's magic bytes.
pub fn is_gguf(path: &Path) -> Result<bool, GgufError> {
    let mut file = std::fs::File::open(path).map_err(|e| GgufError::io(path, e))?;
    let mut magic = [0u8; 4];
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"GGUF"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(GgufError::io(path, e)),
    }
}

/// Checks a downloaded file, and removes it when it is wrong so the next
/// attempt starts clean.
pub(crate) fn check(path: &Path, expected: Option<&str>) -> Result<String, GgufError> {
    if !is_gguf(path)? {
        let _ = std::fs::remove_file(path);
        return Err(GgufError::NotGguf(path.to_path_buf()));
    }
    let actual = sha256_file(path)?;
    if let Some(want) = expected
        && !want.eq_ignore_ascii_case(&actual)
    {
        let _ = std::fs::remove_file(path);
        return Err(GgufError::Checksum {
            path: path.to_path_buf(),
            expected: want.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(actual)
}
