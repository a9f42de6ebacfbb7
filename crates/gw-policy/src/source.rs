//! Policy sources: the text of each file, and how positions map to lines.
//!
//! Reading files is the only I/O in this crate, and it lives here, apart from
//! the loader and the engine, so that `gatewayd` can feed sources read from a
//! Git tree and tests can feed literals.

use std::path::{Path, PathBuf};

/// One policy file: where it came from (for diagnostics) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of the 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line.saturating_sub(1)).unwrap_or("")
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A file or directory that could not be read.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for ReadError {}

/// Reads every `*.kdl` file under `paths` (files are taken as given,
/// directories recursively), in a stable order: sorted by path, so that a
/// policy means the same thing on every machine.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Source>, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, true, &mut files)?;
    }
    files.sort();
    files.dedup();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|error| ReadError {
                path: path.clone(),
                error,
            })?;
            Ok(Source::new(path.display().to_string(), text))
        })
        .collect()
}

fn collect(path: &Path, explicit: bool, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let meta = std::fs::metadata(path).map_err(|error| ReadError {
        path: path.to_owned(),
        error,
    })?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|error| ReadError {
            path: path.to_owned(),
            error,
        })?;
        for entry in entries {
            let entry = entry.map_err(|error| ReadError {
                path: path.to_owned(),
                error,
            })?;
            let child = entry.path();
            // Hidden entries (.git, editor swap files) are never policy.
            if child
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            collect(&child, false, out)?;
        }
    } else if explicit || path.extension().is_some_and(|e| e == "kdl") {
        out.push(path.to_owned());
    }
    Ok(())
}
