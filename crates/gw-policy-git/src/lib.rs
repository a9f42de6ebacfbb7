//! Policy from Git: the files of one commit, never a working copy.
//!
//! [`read_tree`] reads every `*.kdl` blob under a directory of a commit's
//! tree (what `gwctl diff REV:DIR` and the gateway both use). [`Cache`] is the
//! gateway's bare repository that a remote is fetched into.
//!
//! Fetching runs the `git` program rather than libgit2's transports: libgit2
//! speaks HTTPS only through OpenSSL and SSH only through libssh2, C code the
//! appliance would rather not link; the `git` subprocess uses the host's
//! credential helpers and SSH configuration, can be sandboxed on its own, and
//! is killed at a deadline. Reading trees and commits is git2's job, in
//! process. Commit signatures (SSH, `gpg.format=ssh`) are checked with
//! `git verify-commit` against an allowed-signers file.
//!
//! **Invariants:** policy text only ever comes from blobs of the exact commit
//! named; a fetch never touches anything but the cache's own ref for the
//! branch; no function here panics on repository contents.
#![forbid(unsafe_code)]

use gw_policy::Source;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why reading or fetching policy from Git failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("no `{dir}` directory in commit {commit}")]
    NoDirectory { dir: String, commit: String },
    #[error("{path} in commit {commit} is not UTF-8 text")]
    NotText { path: String, commit: String },
    #[error("no .kdl files under `{dir}` in commit {commit}")]
    Empty { dir: String, commit: String },
    #[error("fetching {branch} from {remote} failed: {why}")]
    Fetch {
        remote: String,
        branch: String,
        why: String,
    },
    #[error("commit {commit} is not signed by an allowed key: {why}")]
    Signature { commit: String, why: String },
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
}

/// Every `*.kdl` blob under `dir` ("" for the root) of `commit`'s tree,
/// sorted by path, named `{label}{dir/}{path}`. Dot-directories are skipped.
pub fn read_tree(
    repo: &git2::Repository,
    commit: &git2::Commit<'_>,
    dir: &str,
    label: &str,
) -> Result<Vec<Source>, Error> {
    let id = short(commit.id());
    let dir = dir.trim_matches('/');
    let mut tree = commit.tree()?;
    if !dir.is_empty() {
        let entry = tree
            .get_path(Path::new(dir))
            .map_err(|_| Error::NoDirectory {
                dir: dir.to_owned(),
                commit: id.clone(),
            })?;
        tree = entry
            .to_object(repo)?
            .peel_to_tree()
            .map_err(|_| Error::NoDirectory {
                dir: dir.to_owned(),
                commit: id.clone(),
            })?;
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out = Vec::new();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or("");
        if name.starts_with('.') {
            return git2::TreeWalkResult::Skip;
        }
        if !name.ends_with(".kdl") || entry.kind() != Some(git2::ObjectType::Blob) {
            return git2::TreeWalkResult::Ok;
        }
        let path = format!("{prefix}{parent}{name}");
        let blob = entry.to_object(repo).and_then(|o| o.peel_to_blob());
        match blob.map(|b| String::from_utf8(b.content().to_vec())) {
            Ok(Ok(text)) => out.push(Source::new(format!("{label}{path}"), text)),
            _ => {
                failure = Some(Error::NotText {
                    path,
                    commit: id.clone(),
                });
                return git2::TreeWalkResult::Abort;
            }
        }
        git2::TreeWalkResult::Ok
    })
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    if let Some(f) = failure {
        return Err(f);
    }
    if out.is_empty() {
        return Err(Error::Empty {
            dir: if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            },
            commit: id,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The first 12 hex digits of a commit id, for messages.
pub fn short(id: git2::Oid) -> String {
    id.to_string().chars().take(12).collect()
}

/// A bare repository the gateway fetches its policy remote into.
pub struct Cache {
    dir: PathBuf,
}

/// A fetched commit: its id and the policy files under the configured
/// directory.
#[derive(Debug)]
pub struct Revision {
    pub commit: String,
    pub sources: Vec<Source>,
}

impl Cache {
    /// Opens (creating if needed) the bare repository at `dir`.
    pub fn open(dir: &Path) -> Result<Cache, Error> {
        if git2::Repository::open_bare(dir).is_err() {
            std::fs::create_dir_all(dir).map_err(Error::Spawn)?;
            git2::Repository::init_bare(dir)?;
        }
        Ok(Cache {
            dir: dir.to_owned(),
        })
    }

    fn git(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir")
            .arg(&self.dir)
            // Never ask a person for anything: the gateway has no terminal.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("SSH_ASKPASS", "/bin/false")
            .env("GCM_INTERACTIVE", "never")
            .stdin(Stdio::null());
        c
    }

    fn local_ref(branch: &str) -> String {
        format!("refs/gateway/{branch}")
    }

    /// Fetches `branch` of `remote` (a URL or a local path) into the cache,
    /// within `timeout`, and returns the commit it points at.
    pub fn fetch(&self, remote: &str, branch: &str, timeout: Duration) -> Result<String, Error> {
        let fail = |why: String| Error::Fetch {
            remote: remote.to_owned(),
            branch: branch.to_owned(),
            why,
        };
        if branch.starts_with('-') || remote.starts_with('-') {
            return Err(fail("a remote or branch may not start with '-'".into()));
        }
        let refspec = format!("+refs/heads/{branch}:{}", Cache::local_ref(branch));
        let mut cmd = self.git();
        cmd.args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
        ])
        .arg(remote)
        .arg(&refspec);
        run(cmd, timeout).map_err(fail)?;
        self.head(branch)
    }

    /// The commit the cache last fetched for `branch`.
    pub fn head(&self, branch: &str) -> Result<String, Error> {
        let repo = git2::Repository::open_bare(&self.dir)?;
        let id = repo.refname_to_id(&Cache::local_ref(branch))?;
        Ok(id.to_string())
    }

    /// The policy files of `commit` under `dir`.
    pub fn read(&self, commit: &str, dir: &str) -> Result<Revision, Error> {
        let repo = git2::Repository::open_bare(&self.dir)?;
        let c = repo.find_commit(git2::Oid::from_str(commit)?)?;
        let sources = read_tree(&repo, &c, dir, "")?;
        Ok(Revision {
            commit: c.id().to_string(),
            sources,
        })
    }

    /// Checks that `commit` carries a valid SSH signature by a key in the
    /// allowed-signers file (OpenSSH's format, as `git` reads it).
    pub fn verify_signature(&self, commit: &str, allowed_signers: &Path) -> Result<(), Error> {
        let fail = |why: String| Error::Signature {
            commit: commit.chars().take(12).collect(),
            why,
        };
        git2::Oid::from_str(commit).map_err(|_| fail("not a commit id".into()))?;
        let mut cmd = self.git();
        cmd.arg("-c")
            .arg("gpg.format=ssh")
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                allowed_signers.display()
            ))
            .args(["verify-commit", "--", commit]);
        run(cmd, Duration::from_secs(30)).map_err(fail)
    }
}

/// Runs a command to completion within `timeout`; `Err` has its stderr.
fn run(mut cmd: Command, timeout: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = s.by_ref().take(16 << 10).read_to_string(&mut text);
        }
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let text = stderr.trim();
        Err(if text.is_empty() {
            format!("git exited with {status}")
        } else {
            text.lines().take(5).collect::<Vec<_>>().join("; ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(ok.status.success(), "{ok:?}");
    }

    #[allow(clippy::print_stderr)]
    fn has_git() -> bool {
        let present = Command::new("git").arg("--version").output().is_ok();
        if !present {
            assert!(
                std::env::var("CI").is_err(),
                "git is required under CI=true"
            );
            eprintln!("SKIPPED: git is not installed");
        }
        present
    }

    #[test]
    fn fetches_a_branch_and_reads_only_its_policy_files() {
        if !has_git() {
            return;
        }
        let remote = tempfile::tempdir().unwrap();
        let r = remote.path();
        git(r, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(r.join("policy/teams")).unwrap();
        std::fs::create_dir_all(r.join("policy/.hidden")).unwrap();
        std::fs::write(r.join("policy/a.kdl"), "// a\n").unwrap();
        std::fs::write(r.join("policy/teams/b.kdl"), "// b\n").unwrap();
        std::fs::write(r.join("policy/.hidden/c.kdl"), "// hidden\n").unwrap();
        std::fs::write(r.join("policy/README.md"), "not policy\n").unwrap();
        std::fs::write(r.join("outside.kdl"), "// outside\n").unwrap();
        git(r, &["add", "-A"]);
        git(r, &["commit", "-q", "-m", "one"]);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&cache_dir.path().join("cache")).unwrap();
        let commit = cache
            .fetch(r.to_str().unwrap(), "main", Duration::from_secs(30))
            .unwrap();
        let rev = cache.read(&commit, "policy").unwrap();
        let paths: Vec<&str> = rev.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["policy/a.kdl", "policy/teams/b.kdl"]);
        // A working-copy change that is not committed is invisible.
        std::fs::write(r.join("policy/a.kdl"), "// edited\n").unwrap();
        let again = cache
            .fetch(r.to_str().unwrap(), "main", Duration::from_secs(30))
            .unwrap();
        assert_eq!(again, commit);
        assert_eq!(
            cache.read(&again, "policy").unwrap().sources[0].text,
            "// a\n"
        );
        // Errors name what is missing.
        assert!(matches!(
            cache.read(&commit, "nope"),
            Err(Error::NoDirectory { .. })
        ));
        let e = cache
            .fetch(
                r.to_str().unwrap(),
                "no-such-branch",
                Duration::from_secs(30),
            )
            .unwrap_err();
        assert!(e.to_string().contains("no-such-branch"), "{e}");
        let e = cache
            .fetch("/nonexistent/repo", "main", Duration::from_secs(30))
            .unwrap_err();
        assert!(matches!(e, Error::Fetch { .. }), "{e}");
        // Option injection is refused before git runs.
        assert!(
            cache
                .fetch("--upload-pack=touch /tmp/x", "main", Duration::from_secs(5))
                .is_err()
        );
    }
}
