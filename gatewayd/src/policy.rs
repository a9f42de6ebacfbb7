//! Where the policy comes from, and how a new revision replaces the one in
//! force.
//!
//! Sources: a directory (read at start, optionally watched with `notify` for
//! development) or a branch of a Git remote, fetched every `poll` interval
//! and at once when the refresh webhook fires. A candidate revision is
//! validated with exactly what `gwctl lint` and `gwctl test` run
//! ([`crate::state::validate`]); only a valid one is installed, by replacing
//! the whole `Arc<Loaded>` in a watch channel, so a reader sees one revision
//! or the next, never a mix, and live sessions learn about it.
//!
//! An invalid, test-failing or (in signed mode) unsigned revision is
//! rejected: the revision in force stays, and the rejection goes to the log,
//! the audit log, a metric and the status endpoints. The last good Git
//! revision is kept on disk, so a restart while the remote is unreachable
//! still enforces it; with no valid revision at all everything is denied.

use crate::audit::AuditEvent;
use crate::config::{GitSource, PolicySource};
use crate::state::{Gateway, Loaded};
use gw_policy::Source;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `/status` and `gwctl status` report about the policy.
#[derive(Default)]
pub(crate) struct Status {
    /// When the revision in force was installed (seconds since the epoch).
    pub(crate) applied_at: Option<u64>,
    /// The latest candidate that was not applied, and why.
    pub(crate) rejected: Option<Rejected>,
    /// The latest fetch from a Git remote.
    pub(crate) fetch: Option<Fetch>,
}

#[derive(Clone)]
pub(crate) struct Rejected {
    pub(crate) revision: String,
    pub(crate) reason: String,
    pub(crate) at: u64,
}

#[derive(Clone)]
pub(crate) struct Fetch {
    pub(crate) at: u64,
    pub(crate) commit: Option<String>,
    pub(crate) error: Option<String>,
}

const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The policy to start with.
pub(crate) fn initial(config: &crate::config::Config) -> Loaded {
    match &config.policy {
        PolicySource::Directory { path, .. } => {
            crate::state::load_policy(std::slice::from_ref(path))
        }
        PolicySource::Git(_) => match read_last_good(&config.state) {
            Some((revision, sources)) => {
                let files = sources.len();
                crate::state::validate(&sources, revision.clone())
                    .unwrap_or_else(|why| crate::state::rejected(files, why.summary, revision))
            }
            None => crate::state::rejected(
                0,
                format!(
                    "no valid policy yet: waiting for the first good revision from {}",
                    config.policy.describe()
                ),
                String::new(),
            ),
        },
    }
}

/// Follows the configured source until the gateway stops.
pub(crate) async fn follow(gw: Arc<Gateway>) {
    match gw.config.policy.clone() {
        PolicySource::Directory { watch: false, .. } => {}
        PolicySource::Directory { path, watch: true } => watch_directory(gw, path).await,
        PolicySource::Git(g) => follow_git(gw, g).await,
    }
}

/// What one look at the source found.
enum Outcome {
    /// Nothing new (the revision in force, or one already rejected).
    Unchanged,
    Valid(Box<Loaded>, Vec<Source>),
    Invalid {
        revision: String,
        summary: String,
        report: String,
    },
    /// The source could not be read; the revision in force stays.
    Unreachable(String),
}

async fn follow_git(gw: Arc<Gateway>, g: GitSource) {
    let mut shutdown = gw.shutdown.subscribe();
    let cache_dir = gw.config.state.join("policy/git");
    loop {
        let active = gw.policy().revision.clone();
        let rejected = gw
            .policy_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rejected
            .as_ref()
            .map(|r| r.revision.clone());
        let (dir, source) = (cache_dir.clone(), g.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            check_git(&dir, &source, &active, rejected.as_deref())
        })
        .await
        .unwrap_or_else(|e| (None, Outcome::Unreachable(e.to_string())));
        let (commit, outcome) = outcome;
        let now = crate::audit::unix_now();
        {
            let mut status = gw.policy_status.lock().unwrap_or_else(|e| e.into_inner());
            status.fetch = Some(Fetch {
                at: now,
                commit: commit.clone(),
                error: match &outcome {
                    Outcome::Unreachable(e) => Some(e.clone()),
                    _ => None,
                },
            });
        }
        settle(&gw, outcome).await;
        tokio::select! {
            () = tokio::time::sleep(g.poll) => {}
            () = gw.policy_refresh.notified() => {
                tracing::info!("policy refresh requested by webhook");
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Fetches, checks the signature if required, reads and validates.
/// Returns the fetched commit (if the fetch worked) and the outcome.
fn check_git(
    cache_dir: &Path,
    g: &GitSource,
    active: &str,
    rejected: Option<&str>,
) -> (Option<String>, Outcome) {
    let cache = match gw_policy_git::Cache::open(cache_dir) {
        Ok(c) => c,
        Err(e) => return (None, Outcome::Unreachable(e.to_string())),
    };
    let commit = match cache.fetch(&g.remote, &g.branch, FETCH_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return (None, Outcome::Unreachable(e.to_string())),
    };
    if commit == active || Some(commit.as_str()) == rejected {
        return (Some(commit), Outcome::Unchanged);
    }
    let invalid = |summary: String| Outcome::Invalid {
        revision: commit.clone(),
        report: summary.clone(),
        summary,
    };
    if let Some(signers) = &g.allowed_signers
        && let Err(e) = cache.verify_signature(&commit, signers)
    {
        return (Some(commit.clone()), invalid(e.to_string()));
    }
    let revision = match cache.read(&commit, &g.path) {
        Ok(r) => r,
        Err(e) => return (Some(commit.clone()), invalid(e.to_string())),
    };
    let outcome = match crate::state::validate(&revision.sources, commit.clone()) {
        Ok(loaded) => Outcome::Valid(Box::new(loaded), revision.sources),
        Err(why) => Outcome::Invalid {
            revision: commit.clone(),
            summary: why.summary,
            report: why.report,
        },
    };
    (Some(commit), outcome)
}

/// Installs a valid revision or records a rejected one.
async fn settle(gw: &Arc<Gateway>, outcome: Outcome) {
    let source = gw.config.policy.describe();
    match outcome {
        Outcome::Unchanged => {}
        Outcome::Unreachable(why) => {
            crate::metrics::Metrics::inc(&gw.metrics.policy_fetch_failures);
            tracing::warn!(source = %source, error = %why, revision = %gw.policy().revision, "cannot read the policy source; the revision in force stays");
        }
        Outcome::Invalid {
            revision,
            summary,
            report,
        } => {
            crate::metrics::Metrics::inc(&gw.metrics.policy_rejections);
            tracing::error!(source = %source, revision = %revision, reason = %summary, report = %report, "policy revision REJECTED; the revision in force stays");
            gw.audit.record(&AuditEvent::PolicyRejected {
                revision: &revision,
                source: &source,
                reason: &summary,
            });
            gw.policy_status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .rejected = Some(Rejected {
                revision,
                reason: summary,
                at: crate::audit::unix_now(),
            });
        }
        Outcome::Valid(loaded, sources) => {
            let revision = loaded.revision.clone();
            if matches!(gw.config.policy, PolicySource::Git(_)) {
                let (state, rev) = (gw.config.state.clone(), revision.clone());
                let saved =
                    tokio::task::spawn_blocking(move || write_last_good(&state, &rev, &sources))
                        .await;
                if let Ok(Err(e)) | Err(e) = saved.map_err(anyhow::Error::from) {
                    tracing::error!(error = %format!("{e:#}"), "cannot cache the policy revision; a restart without the remote would not have it");
                }
            }
            gw.audit.record(&AuditEvent::PolicyLoaded {
                revision: &revision,
                source: &source,
                files: loaded.files,
                tests_passed: loaded.tests_passed,
            });
            crate::metrics::Metrics::inc(&gw.metrics.policy_applied);
            tracing::info!(source = %source, revision = %revision, files = loaded.files, tests_passed = loaded.tests_passed, "policy revision applied");
            {
                let mut status = gw.policy_status.lock().unwrap_or_else(|e| e.into_inner());
                status.applied_at = Some(crate::audit::unix_now());
                status.rejected = None;
            }
            gw.policy.send_replace(Arc::new(*loaded));
        }
    }
}

/// Re-reads a directory whenever something under it changes (debounced).
async fn watch_directory(gw: Arc<Gateway>, path: PathBuf) {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if e.is_ok() {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the policy directory; changes need a restart");
            return;
        }
    };
    if let Err(e) = watcher.watch(&path, notify::RecursiveMode::Recursive) {
        tracing::error!(error = %e, path = %path.display(), "cannot watch the policy directory; changes need a restart");
        return;
    }
    let mut shutdown = gw.shutdown.subscribe();
    loop {
        tokio::select! {
            got = rx.recv() => if got.is_none() { return },
            _ = shutdown.changed() => return,
        }
        // Editors write in bursts: wait for quiet, then read once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while rx.try_recv().is_ok() {}
        let (dir, active) = (path.clone(), gw.policy().revision.clone());
        let outcome = tokio::task::spawn_blocking(move || check_directory(&dir, &active))
            .await
            .unwrap_or_else(|e| Outcome::Unreachable(e.to_string()));
        settle(&gw, outcome).await;
    }
}

fn check_directory(dir: &Path, active: &str) -> Outcome {
    let sources = match gw_policy::source::read_paths(&[dir.to_owned()]) {
        Ok(s) if s.is_empty() => return Outcome::Unreachable("no .kdl files found".into()),
        Ok(s) => s,
        Err(e) => return Outcome::Unreachable(e.to_string()),
    };
    let revision = crate::state::content_revision(&sources);
    if revision == active {
        return Outcome::Unchanged;
    }
    match crate::state::validate(&sources, revision.clone()) {
        Ok(l) => Outcome::Valid(Box::new(l), sources),
        Err(why) => Outcome::Invalid {
            revision,
            summary: why.summary,
            report: why.report,
        },
    }
}

fn last_good_path(state: &Path) -> PathBuf {
    state.join("policy/last-good.json")
}

fn write_last_good(state: &Path, revision: &str, sources: &[Source]) -> anyhow::Result<()> {
    let files: Vec<serde_json::Value> = sources
        .iter()
        .map(|s| serde_json::json!({"path": s.path, "text": s.text}))
        .collect();
    let doc = serde_json::json!({"revision": revision, "files": files});
    crate::files::write_private(&last_good_path(state), &serde_json::to_vec(&doc)?)
}

/// The cached last good revision, if there is a readable one.
fn read_last_good(state: &Path) -> Option<(String, Vec<Source>)> {
    let path = last_good_path(state);
    let bytes = std::fs::read(&path).ok()?;
    let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "the cached policy revision is unreadable; ignoring it");
            return None;
        }
    };
    let revision = doc["revision"].as_str()?.to_owned();
    let sources = doc["files"]
        .as_array()?
        .iter()
        .map(|f| Some(Source::new(f["path"].as_str()?, f["text"].as_str()?)))
        .collect::<Option<Vec<_>>>()?;
    tracing::info!(revision = %revision, "starting with the cached last good policy revision");
    Some((revision, sources))
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=HEX` over the raw body.
pub(crate) fn webhook_signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    use hmac::Mac as _;
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&tag).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_checked_over_the_raw_body() {
        // python3 -c 'import hmac;print(hmac.new(b"key", b"{}", "sha256").hexdigest())'
        let good = "sha256=a777724d943eb48dc69bca8a4a6d57a04db3f9ec7e1de4e581e860265bdf3032";
        assert!(webhook_signature_ok(b"key", b"{}", good));
        assert!(!webhook_signature_ok(b"key", b"{} ", good));
        assert!(!webhook_signature_ok(b"other", b"{}", good));
        assert!(!webhook_signature_ok(
            b"key",
            b"{}",
            &good[..good.len() - 2]
        ));
        assert!(!webhook_signature_ok(b"key", b"{}", "sha1=00"));
        assert!(!webhook_signature_ok(b"key", b"{}", "sha256=zz"));
    }
}
