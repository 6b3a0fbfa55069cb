//! `read`, `write` and `edit`, confined to the agent's workspace: a path is
//! resolved (after symlinks, for the part that exists) and must stay under
//! the workspace, unless `tools.fs.workspaceOnly` is `false`. Reads are
//! bounded whatever the file's size; writes are atomic (a temporary file
//! renamed over the old one), so a failure never leaves half a file.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

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
        let meta = std::fs::metadata(&p).map_err(|e| io_error(&shown, &e))?;
        if meta.is_dir() {
            return Err(format!("{shown} is a directory"));
        }
        if !meta.is_file() {
            // A FIFO or a device would block or never end.
            return Err(format!("{shown} is not a regular file"));
        }
        let file = std::fs::File::open(&p).map_err(|e| io_error(&shown, &e))?;
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
        if p.is_dir() {
            return Err(format!("{shown} is a directory"));
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(&shown, &e))?;
        }
        atomic_write(&p, content.as_bytes()).map_err(|e| io_error(&shown, &e))?;
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
        let meta = std::fs::metadata(&p).map_err(|_| format!("File not found: {shown}"))?;
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
        std::fs::File::open(&p)
            .and_then(|f| f.take(MAX_EDIT_BYTES + 1).read_to_end(&mut bytes))
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
        atomic_write(&p, text.as_bytes()).map_err(|e| io_error(&shown, &e))?;
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

fn atomic_write(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = atomic_write_file::AtomicWriteFile::open(p)?;
    f.write_all(bytes)?;
    f.commit()
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
