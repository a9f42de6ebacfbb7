//! What every session shares: the policy in force, keys, the audit log, and
//! the map from the cancel keys the gateway hands out to upstream ones.

use crate::audit::AuditLog;
use crate::config::Config;
use gw_policy::{Policy, Source};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The policy in force, and why it is what it is.
pub(crate) struct Loaded {
    pub(crate) policy: Policy,
    pub(crate) files: usize,
    /// Set when the policy on disk was rejected and everything is denied.
    pub(crate) rejected: Option<String>,
    pub(crate) tests_passed: usize,
    /// The revision in force (see `content_revision`).
    pub(crate) revision: String,
}

/// Loads the policy at `paths`, failing closed.
pub(crate) fn load_policy(paths: &[PathBuf]) -> Loaded {
    let sources: Vec<Source> = match gw_policy::source::read_paths(paths) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return rejected(0, "no .kdl files found".into(), String::new()),
        Err(e) => return rejected(0, e.to_string(), String::new()),
    };
    let revision = content_revision(&sources);
    let files = sources.len();
    validate(&sources, revision.clone())
        .unwrap_or_else(|why| rejected(files, why.summary, revision))
}

/// Why a candidate policy was not applied: a one-line summary, and the full
/// report (every diagnostic or failed test) for the log.
pub(crate) struct Invalid {
    pub(crate) summary: String,
    pub(crate) report: String,
}

/// Validates a candidate policy exactly as `gwctl lint` and `gwctl test` do
/// (`gw_policy::load`, then `gw_policy::run_tests`).
pub(crate) fn validate(sources: &[Source], revision: String) -> Result<Loaded, Invalid> {
    let policy = gw_policy::load(sources).map_err(|diags| Invalid {
        summary: format!("{} error(s) in the policy", diags.len()),
        report: gw_policy::diagnostic::render_human(sources, &diags),
    })?;
    let outcomes = gw_policy::run_tests(&policy);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.case.name.clone())
        .collect();
    if !failed.is_empty() {
        return Err(Invalid {
            summary: format!(
                "{} policy test(s) failed: {}",
                failed.len(),
                failed.join(", ")
            ),
            report: format!("failed tests: {failed:?}"),
        });
    }
    let tests_passed = outcomes.len();
    Ok(Loaded {
        files: sources.len(),
        rejected: None,
        tests_passed,
        revision,
        policy,
    })
}

/// Whether `principal` may still use `resource` under a new revision (a
/// session that came through an approved access window keeps it; the
/// window's own end still applies). `Err` says why not.
pub(crate) fn still_allowed(
    loaded: &Loaded,
    principal: &gw_policy::Principal,
    resource: &str,
    via_window: bool,
) -> Result<(), String> {
    let now = crate::audit::unix_now();
    let d = loaded.policy.decide_session(principal, resource, now);
    match d.decision.verdict {
        gw_policy::Verdict::Allow | gw_policy::Verdict::Log => Ok(()),
        gw_policy::Verdict::Review if via_window => Ok(()),
        _ => Err(d.decision.reason),
    }
}

/// Fail closed: a policy that does not validate is never applied.
pub(crate) fn rejected(files: usize, why: String, revision: String) -> Loaded {
    Loaded {
        policy: Policy::deny_all(why.clone()),
        files,
        rejected: Some(why),
        tests_passed: 0,
        revision,
    }
}

/// The revision of a policy read from a directory: a content hash of its
/// files (a Git source's revision is the commit id).
pub(crate) fn content_revision(sources: &[Source]) -> String {
    let mut h = blake3::Hasher::new();
    for s in sources {
        h.update(s.path.as_bytes())
            .update(&[0])
            .update(s.text.as_bytes())
            .update(&[0]);
    }
    format!("content-{}", &h.finalize().to_hex()[..12])
}

/// An upstream's address and credential, replacing the policy's for one
/// resource: how the demo database is wired in without touching the policy.
#[derive(Clone)]
pub(crate) struct Override {
    pub(crate) address: String,
    pub(crate) user: String,
    pub(crate) password: String,
}

pub(crate) struct Gateway {
    pub(crate) config: Config,
    /// The policy in force. Replaced whole (readers never see a mix of
    /// revisions); sessions subscribe to learn about new revisions.
    pub(crate) policy: tokio::sync::watch::Sender<Arc<Loaded>>,
    pub(crate) policy_status: Mutex<crate::policy::Status>,
    /// Wakes the Git follower at once (the refresh webhook).
    pub(crate) policy_refresh: tokio::sync::Notify,
    pub(crate) audit: AuditLog,
    pub(crate) token_keys: gw_keys::TrustedKeys,
    /// Signs the tokens this gateway issues after a login.
    pub(crate) token_key: gw_keys::SigningKey,
    pub(crate) revocations: crate::identity::Revocations,
    /// The OpenID provider, when one is configured.
    pub(crate) oidc: Option<crate::oidc::Oidc>,
    /// The CA for users' SSH certificates, read (or made) on first use.
    pub(crate) ssh_user_ca: std::sync::OnceLock<russh::keys::PrivateKey>,
    pub(crate) recording_key: gw_keys::SigningKey,
    pub(crate) overrides: Mutex<HashMap<String, Override>>,
    /// Gateway-issued cancel key → (upstream address, upstream pid, key).
    pub(crate) cancel_keys: Mutex<HashMap<(i32, Vec<u8>), CancelTarget>>,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) recorders: crate::recorder::Recorders,
    /// Compiled maskers by (revision, resource, principal, groups): compiling
    /// the detectors is the costliest part of opening a session, and every
    /// session of one principal on one resource under one policy masks alike.
    pub(crate) maskers: Mutex<HashMap<MaskerKey, gw_mask::Masker>>,
    /// Flips to `true` when the gateway is asked to stop; sessions end
    /// themselves cleanly (and finish their recordings) when they see it.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) reviews: crate::reviews::Reviews,
}

#[derive(Clone)]
pub(crate) struct CancelTarget {
    pub(crate) address: String,
    pub(crate) process_id: i32,
    pub(crate) secret_key: Vec<u8>,
    /// While the session holds a statement for review, a cancel request
    /// withdraws the review instead of reaching the server (which is idle).
    pub(crate) held: Arc<Held>,
}

/// A session's "statement held for review" flag and its cancel signal.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) holding: std::sync::atomic::AtomicBool,
    /// Set by a cancel request that arrived while holding; the notify may
    /// carry a stale permit, the flag never does.
    pub(crate) cancel_requested: std::sync::atomic::AtomicBool,
    pub(crate) cancel: tokio::sync::Notify,
}

pub(crate) type MaskerKey = (String, String, String, Vec<String>);

/// Enough for every principal of a busy gateway; past it the cache starts over.
const MASKER_CACHE: usize = 4096;

impl Gateway {
    pub(crate) fn policy(&self) -> Arc<Loaded> {
        Arc::clone(&self.policy.borrow())
    }

    /// The masker for a session: compiled once per key, then shared.
    pub(crate) fn masker(
        &self,
        loaded: &Loaded,
        resource: &gw_policy::Resource,
        principal: &gw_policy::Principal,
    ) -> gw_mask::Masker {
        let key = (
            loaded.revision.clone(),
            resource.name.clone(),
            principal.subject.clone(),
            principal.groups.clone(),
        );
        let mut cache = self.maskers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(&key) {
            return m.clone();
        }
        if cache.len() >= MASKER_CACHE {
            cache.clear();
        }
        let m = gw_mask::Masker::for_session(&loaded.policy, resource, principal);
        cache.insert(key, m.clone());
        m
    }
}

/// Loads or creates the gateway's keys under the state directory.
pub(crate) fn keys(
    config: &crate::config::Config,
) -> anyhow::Result<(
    gw_keys::SigningKey,
    gw_keys::TrustedKeys,
    gw_keys::SigningKey,
)> {
    let state = config.state.as_path();
    let dir = state.join("keys");
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let token_key = gw_keys::SigningKey::load_or_generate(
        &config
            .token_key
            .clone()
            .unwrap_or_else(|| state.join("keys/token.key")),
    )?;
    let recording_key = gw_keys::SigningKey::load_or_generate(
        &config
            .recording_key
            .clone()
            .unwrap_or_else(|| state.join("keys/recording.key")),
    )?;
    let mut trusted = gw_keys::TrustedKeys::new();
    trusted.insert(token_key.public_key());
    // Rotation: public keys of earlier token keys stay trusted until their
    // tokens expire; drop them into keys/token-trusted/.
    if let Ok(dir) = std::fs::read_dir(state.join("keys/token-trusted")) {
        for entry in dir.flatten() {
            match gw_keys::PublicKey::load(&entry.path()) {
                Ok(k) => trusted.insert(k),
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable trusted token key"),
            }
        }
    }
    let _ = std::fs::write(
        state.join("keys/recording.pub.pem"),
        recording_key.public_key().to_pem(),
    );
    Ok((token_key, trusted, recording_key))
}
