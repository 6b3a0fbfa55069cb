//! `read`, `write` and `edit`, confined to the agent's workspace: a path is
//! resolved (after symlinks, for the part that exists) and must stay under
//! the workspace, unless `tools.fs.workspaceOnly` is `false`. Reads are
//! bounded whatever the file's size; writes are atomic (a temporary file
//! renamed over the old one), so a failure never leaves half a file.
//!
//! Confined, every open goes through a handle on the workspace folder
//! (`cap-std`: `openat2` with `RESOLVE_BENEATH` where the kernel has it),
//! so a folder swapped for a symlink after the check, say by a background
//! command, still cannot lead a read or a write outside.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

/// OpenClaw's read limits.
pub const MAX_LINES: usize = 2000;
pub const MAX_BYTES: usize = 50 * 1024;
/// A line longer than this is cut (a minified file, a binary blob).
const MAX_LINE_BYTES: usize = 4 * 1024;
/// How far into a file one `read` looks: paging by line number past this
/// would mean scanning gigabytes for every call.
const MAX_SCAN_BYTES: u64 = 64 << 20;
/// The largest file `edit` loads.
const MAX_EDIT_BYTES: u64 = 16 << 20;
/// The largest content `write` takes.
pub const MAX_WRITE_BYTES: usize = 16 << 20;

/// The files an agent may touch.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
    confined: bool,
}

impl Files {
    /// `root` is created when missing.
    pub fn new(root: &Path, confined: bool) -> Files {
        let _ = std::fs::create_dir_all(root);
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        Files { root, confined }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` (relative to the workspace, or absolute) as a real path that
    /// is allowed.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let raw = path.trim();
        if raw.is_empty() {
            return Err("path is empty".into());
        }
        if raw.contains('\0') {
            return Err("path contains a NUL byte".into());
        }
        let expanded = match (raw.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(raw),
        };
        let joined = if expanded.is_absolute() {
            expanded
        } else {
            self.root.join(expanded)
        };
        let real = real_path(&joined);
        if self.confined && !real.starts_with(&self.root) {
            return Err(format!(
                "path {raw:?} is outside the workspace ({}); file tools are confined to it (tools.fs.workspaceOnly)",
                self.root.display()
            ));
        }
        Ok(real)
    }

    /// Where `real` (from [`Files::resolve`]) is opened.
    fn at(&self, real: &Path) -> std::io::Result<At> {
        if !self.confined {
            return Ok(At::Anywhere(real.to_path_buf()));
        }
        let rel = real
            .strip_prefix(&self.root)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::PermissionDenied))?;
        let dir = Dir::open_ambient_dir(&self.root, cap_std::ambient_authority())?;
        Ok(At::Inside(dir, rel.to_path_buf()))
    }

    /// The path as the model should see it: relative to the workspace when inside.
    pub fn shown(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    }

    pub fn read(
        &self,
        path: &str,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<String, String> {
        let p = self.resolve(path)?;
        let shown = self.shown(&p);
        let at = self.at(&p).map_err(|e| io_error(&shown, &e))?;
        let (file, meta) = at.open_regular().map_err(|e| io_error(&shown, &e))?;
        if meta.is_dir() {
            return Err(format!("{shown} is a directory"));
        }
        if !meta.is_file() {
            // A FIFO or a device would block or never end.
            return Err(format!("{shown} is not a regular file"));
        }
        let mut r = BufReader::new(file.take(MAX_SCAN_BYTES));
        let mut scanned = 0u64;
        // A NUL in the first block: binary, not shown.
        let head = r.fill_buf().map_err(|e| io_error(&shown, &e))?;
        if head.iter().take(8192).any(|b| *b == 0) {
            return Err(format!(
                "{shown} is a binary file ({} bytes); read shows text files only",
                meta.len()
            ));
        }
        let start = offset.unwrap_or(1).max(1) as usize;
        let limit = limit.map(|l| l.max(1) as usize);
        let mut out = String::new();
        let mut line_no = 0usize;
        let mut shown_lines = 0usize;
        let mut cut = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = read_line(&mut r, &mut line).map_err(|e| io_error(&shown, &e))?;
            if n == 0 {
                break;
            }
            scanned += n as u64;
            line_no += 1;
            if line_no < start {
                continue;
            }
            if limit.is_some_and(|l| shown_lines >= l) || shown_lines >= MAX_LINES {
                cut = Some(line_no);
                break;
            }
            let mut text = String::from_utf8_lossy(&line).into_owned();
            if n > MAX_LINE_BYTES {
                text.push_str(&format!(" … [line cut: {n} bytes]"));
            }
            if out.len() + text.len() + 1 > MAX_BYTES && shown_lines > 0 {
                cut = Some(line_no);
                break;
            }
            out.push_str(&text);
            out.push('\n');
            shown_lines += 1;
        }
        let stopped = scanned >= MAX_SCAN_BYTES;
        if stopped && line_no < start {
            return Err(format!(
                "Offset {start} is past the first {} MiB of {shown} ({line_no} lines there); read pages by line only that far: use exec (tail, sed -n) beyond it",
                MAX_SCAN_BYTES >> 20
            ));
        }
        if line_no < start && !(line_no == 0 && start == 1) {
            return Err(format!(
                "Offset {start} is beyond end of file ({line_no} lines total)"
            ));
        }
        if stopped && cut.is_none() {
            out.push_str(&format!(
                "\n[Stopped reading at {} MiB of {shown} ({} bytes): read pages by line only that far.]",
                MAX_SCAN_BYTES >> 20,
                meta.len()
            ));
        }
        if let Some(next) = cut {
            let end = next - 1;
            out.push_str(&format!(
                "\n[Showing lines {start}-{end}. Use offset={next} to continue.]"
            ));
        }
        Ok(out)
    }

    pub fn write(&self, path: &str, content: &str) -> Result<String, String> {
        if content.len() > MAX_WRITE_BYTES {
            return Err(format!(
                "content is {} bytes; write takes at most {MAX_WRITE_BYTES}",
                content.len()
            ));
        }
        let p = self.resolve(path)?;
        let shown = self.shown(&p);
        let at = self.at(&p).map_err(|e| io_error(&shown, &e))?;
        if at.is_dir() {
            return Err(format!("{shown} is a directory"));
        }
        at.write_whole(content.as_bytes())
            .map_err(|e| io_error(&shown, &e))?;
        Ok(format!(
            "Successfully wrote {} bytes to {shown}",
            content.len()
        ))
    }

    pub fn edit(
        &self,
        path: &str,
        edits: &[crate::catalog::Replacement],
    ) -> Result<String, String> {
        let p = self.resolve(path)?;
        let shown = self.shown(&p);
        let at = self.at(&p).map_err(|e| io_error(&shown, &e))?;
        let (file, meta) = at.open_regular().map_err(|e| io_error(&shown, &e))?;
        if !meta.is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        if meta.len() > MAX_EDIT_BYTES {
            return Err(format!(
                "{shown} is {} bytes; edit works on files up to {MAX_EDIT_BYTES}",
                meta.len()
            ));
        }
        let mut bytes = Vec::new();
        file.take(MAX_EDIT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(&shown, &e))?;
        let original = String::from_utf8(bytes)
            .map_err(|_| format!("{shown} is not UTF-8 text; edit changes text files only"))?;
        // Every edit is matched against the original, then applied from the end.
        let mut spans = Vec::new();
        for e in edits {
            if e.old_text.is_empty() {
                return Err("oldText is empty".into());
            }
            let found: Vec<usize> = original
                .match_indices(&e.old_text)
                .map(|(i, _)| i)
                .take(2)
                .collect();
            match found.as_slice() {
                [] => {
                    return Err(format!(
                        "Could not find the exact text in {shown}. The old text must match exactly including all whitespace and newlines."
                    ));
                }
                [at] => spans.push((*at, *at + e.old_text.len(), e.new_text.as_str())),
                _ => {
                    let n = original.matches(&e.old_text).count();
                    return Err(format!(
                        "Found {n} occurrences of the text in {shown}. The text must be unique. Please provide more context to make it unique."
                    ));
                }
            }
        }
        spans.sort_by_key(|s| s.0);
        if spans.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err("two edits overlap; merge them into one".into());
        }
        let mut text = original.clone();
        for (start, end, new) in spans.iter().rev() {
            text.replace_range(*start..*end, new);
        }
        if text == original {
            return Err(format!(
                "No changes made to {shown}. The replacement produced identical content."
            ));
        }
        at.write_whole(text.as_bytes())
            .map_err(|e| io_error(&shown, &e))?;
        Ok(format!("Successfully replaced text in {shown}."))
    }
}

/// One line (with its end) into `buf`, keeping at most `MAX_LINE_BYTES` of
/// it; returns the line's full length.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        let body = if done { take - 1 } else { take };
        buf.extend_from_slice(&chunk[..body.min(room)]);
        total += take;
        r.consume(take);
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(total);
        }
    }
}

/// A resolved path, and how it is reached.
enum At {
    /// Relative to a handle on the workspace: nothing can lead out.
    Inside(Dir, PathBuf),
    /// `tools.fs.workspaceOnly: false`: the path as it is.
    Anywhere(PathBuf),
}

impl At {
    /// The file opened for reading (without blocking on a FIFO), and what
    /// the open file is.
    fn open_regular(&self) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
        let nonblocking = nix::fcntl::OFlag::O_NONBLOCK.bits();
        let file = match self {
            At::Inside(dir, rel) => {
                let rel = if rel.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    rel
                };
                dir.open_with(rel, OpenOptions::new().read(true).custom_flags(nonblocking))?
                    .into_std()
            }
            At::Anywhere(p) => {
                use std::os::unix::fs::OpenOptionsExt as _;
                // A device is not opened at all (opening some has effects).
                let meta = std::fs::metadata(p)?;
                if !meta.is_file() && !meta.is_dir() {
                    return Err(std::io::Error::other("not a regular file"));
                }
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nonblocking)
                    .open(p)?
            }
        };
        let meta = file.metadata()?;
        Ok((file, meta))
    }

    fn is_dir(&self) -> bool {
        match self {
            At::Inside(dir, rel) => rel.as_os_str().is_empty() || dir.is_dir(rel),
            At::Anywhere(p) => p.is_dir(),
        }
    }

    /// Writes `bytes` as the whole file: a temporary file beside it, renamed
    /// over it, so a failure never leaves half a file. Missing folders are
    /// made.
    fn write_whole(&self, bytes: &[u8]) -> std::io::Result<()> {
        let (dir, rel) = match self {
            At::Anywhere(p) => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = atomic_write_file::AtomicWriteFile::open(p)?;
                f.write_all(bytes)?;
                return f.commit();
            }
            At::Inside(dir, rel) => (dir, rel),
        };
        let name = rel
            .file_name()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                dir.create_dir_all(p)?;
                dir.open_dir(p)?
            }
            _ => dir.try_clone()?,
        };
        // Short, whatever the name's length (names may be 255 bytes).
        let tmp = format!(
            ".pincer-{}.tmp",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let written = (|| {
            let mut f = parent.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
            // An existing file keeps its permissions.
            if let Ok(old) = parent.metadata(name) {
                f.set_permissions(old.permissions())?;
            }
            f.write_all(bytes)?;
            f.sync_all()?;
            parent.rename(&tmp, &parent, name)
        })();
        if written.is_err() {
            let _ = parent.remove_file(&tmp);
        }
        written
    }
}

fn io_error(shown: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("File not found: {shown}"),
        std::io::ErrorKind::PermissionDenied => format!("Permission denied: {shown}"),
        _ => format!("{shown}: {e}"),
    }
}

/// The real path of `p`: `.` and `..` folded first (so the path used is
/// the one checked), then symlinks resolved for the part that exists.
fn real_path(p: &Path) -> PathBuf {
    let p = lexical(p);
    let mut existing = p.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for name in rest.iter().rev() {
                out.push(name);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p,
        }
    }
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window between the check and the open, made wide: a folder
    /// checked inside the workspace is swapped for a link to outside
    /// before the file tool opens its file.
    #[test]
    fn a_folder_swapped_for_a_link_after_the_check_leads_nowhere() {
        let base = tempfile::tempdir().unwrap();
        let ws = base.path().join("ws");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(ws.join("sub/notes.txt"), "inside").unwrap();
        std::fs::write(outside.join("notes.txt"), "SECRET").unwrap();
        let files = Files::new(&ws, true);
        let write_to = files.resolve("sub/new.txt").unwrap();
        let read_from = files.resolve("sub/notes.txt").unwrap();
        // The swap.
        std::fs::remove_dir_all(ws.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("sub")).unwrap();
        let at = files.at(&write_to).unwrap();
        assert!(at.write_whole(b"pwned").is_err());
        assert!(!outside.join("new.txt").exists());
        let at = files.at(&read_from).unwrap();
        assert!(at.open_regular().is_err());
        // Unconfined, the same steps do reach outside (what confinement is for).
        let free = Files::new(&ws, false);
        let at = free.at(&free.resolve("sub/new.txt").unwrap()).unwrap();
        at.write_whole(b"allowed").unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.join("new.txt")).unwrap(),
            "allowed"
        );
    }

    #[test]
    fn a_whole_write_keeps_the_old_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let files = Files::new(base.path(), true);
        let p = base.path().join("run.sh");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o750)).unwrap();
        files.write("run.sh", "new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    /// What users do every day still works through the workspace handle.
    #[test]
    fn everyday_paths_work_inside_the_workspace() {
        let base = tempfile::tempdir().unwrap();
        // The workspace itself under a link, as ~/.openclaw/workspace may be.
        let real = base.path().join("real-ws");
        std::fs::create_dir_all(real.join("docs")).unwrap();
        let ws = base.path().join("ws-link");
        std::os::unix::fs::symlink(&real, &ws).unwrap();
        // A folder inside linked to another inside.
        std::os::unix::fs::symlink(real.join("docs"), real.join("d")).unwrap();
        let files = Files::new(&ws, true);
        files.write("top.txt", "root").unwrap();
        files.write("new/deeper/file.txt", "made").unwrap();
        files.write("d/via-link.txt", "linked").unwrap();
        let abs = real.join("top.txt");
        assert!(
            files
                .read(&abs.to_string_lossy(), None, None)
                .unwrap()
                .contains("root")
        );
        assert!(
            files
                .read("new/deeper/file.txt", None, None)
                .unwrap()
                .contains("made")
        );
        assert_eq!(
            std::fs::read_to_string(real.join("docs/via-link.txt")).unwrap(),
            "linked"
        );
        let edit = crate::catalog::Replacement {
            old_text: "made".into(),
            new_text: "edited".into(),
        };
        files.edit("new/deeper/file.txt", &[edit]).unwrap();
        assert!(
            files
                .read("new/deeper/file.txt", None, None)
                .unwrap()
                .contains("edited")
        );
        assert!(
            files
                .read(".", None, None)
                .unwrap_err()
                .contains("is a directory")
        );
        let long = format!("{}.txt", "n".repeat(240));
        files.write(&long, "long name").unwrap();
        assert!(
            files
                .edit("missing.txt", &[])
                .unwrap_err()
                .contains("File not found")
        );
    }
}
