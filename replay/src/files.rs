//! Finding recordings under paths, loading trusted keys, and progress on stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use gw_recording::{PublicKey, TrustedKeys};

/// `--key` and `--key-dir`.
#[derive(clap::Args, Default)]
pub struct KeyArgs {
    /// Trusted public key (PEM); repeatable.
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    /// Directory of trusted public keys (`*.pem`).
    #[arg(long)]
    pub key_dir: Option<PathBuf>,
}

impl KeyArgs {
    /// The trusted set, `None` if no key was given.
    pub fn load(&self) -> anyhow::Result<Option<TrustedKeys>> {
        let mut paths = self.keys.clone();
        if let Some(dir) = &self.key_dir {
            for entry in
                std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?
            {
                let p = entry?.path();
                if p.extension().is_some_and(|e| e == "pem") {
                    paths.push(p);
                }
            }
        }
        if paths.is_empty() {
            return Ok(None);
        }
        let mut set = TrustedKeys::new();
        for p in paths {
            set.insert(PublicKey::load(&p)?);
        }
        Ok(Some(set))
    }
}

/// `--progress`.
#[derive(clap::Args)]
pub struct ProgressArg {
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// All recordings under `paths`: files as given, directories searched
/// recursively for `*.cast.zst`, sorted for stable output.
pub fn recordings(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".cast.zst"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// A `done/total` counter on stderr, only for many files on a terminal or when asked.
pub struct Progress {
    total: usize,
    done: usize,
    enabled: bool,
}

impl Progress {
    pub fn new(total: usize, forced: bool) -> Self {
        Progress {
            total,
            done: 0,
            enabled: forced || (total > 1 && std::io::stderr().is_terminal()),
        }
    }

    pub fn tick(&mut self) {
        self.done += 1;
        if self.enabled {
            let _ = write!(
                std::io::stderr(),
                "\r{}/{} recordings",
                self.done,
                self.total
            );
        }
    }

    pub fn finish(&self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr());
        }
    }
}
