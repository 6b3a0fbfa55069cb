//! The files a config was read from, and turning byte offsets into line:column.

use std::fmt;
use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub(crate) u32);

/// A byte offset inside one of the loaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pos {
    pub(crate) file: FileId,
    pub(crate) offset: u32,
}

/// A place a user can open in an editor: `openclaw.json:23:28`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    /// File name as shown to the user (relative to the main config's folder when inside it).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) display: String,
    pub(crate) text: String,
    line_starts: Vec<u32>,
}

/// Every file read while loading a config (the main file and its `$include`s).
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub(crate) fn add(&mut self, path: PathBuf, display: String, text: String) -> FileId {
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| (i + 1) as u32),
        );
        self.files.push(SourceFile {
            path,
            display,
            text,
            line_starts,
        });
        FileId((self.files.len() - 1) as u32)
    }

    pub(crate) fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// Paths of every file that was read, main file first.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    pub fn location(&self, pos: Pos) -> Location {
        let file = self.file(pos.file);
        let offset = (pos.offset as usize).min(file.text.len());
        let line_idx = match file.line_starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = file.line_starts[line_idx] as usize;
        // Offsets from the parser are always on char boundaries, but clamp to one
        // anyway so a bad offset can never panic.
        let mut end = offset;
        while end > line_start && !file.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = file.text[line_start..end].chars().count() + 1;
        Location {
            file: file.display.clone(),
            line: line_idx as u32 + 1,
            column: column as u32,
        }
    }
}
