//! The audit log: one JSON object per line, appended, for every decision and
//! every session's start and end. It is a separate sink from diagnostics
//! (`tracing`): it is what a security auditor reads, so its events are a
//! closed set and it never carries secrets or result values.

use serde::Serialize;
use std::io::Write as _;
use std::sync::Mutex;

/// Everything the audit log records. Closed on purpose: a new kind of event
/// is a reviewed change to this enum.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub(crate) enum AuditEvent<'a> {
    PolicyLoaded {
        revision: &'a str,
        source: &'a str,
        files: usize,
        tests_passed: usize,
    },
    /// A candidate revision that was not applied (the one in force stays),
    /// or, at start, the reason everything is denied.
    PolicyRejected {
        revision: &'a str,
        source: &'a str,
        reason: &'a str,
    },
    /// A live session's grant was revoked by a new revision.
    AccessRevoked {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        revision: &'a str,
        grace_secs: u64,
    },
    SessionOpened {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        protocol: &'a str,
        client: &'a str,
        rule: &'a str,
        revision: &'a str,
    },
    SessionDenied {
        principal: &'a str,
        resource: &'a str,
        protocol: &'a str,
        client: &'a str,
        rule: &'a str,
        reason: &'a str,
        revision: &'a str,
    },
    AuthenticationFailed {
        protocol: &'a str,
        client: &'a str,
        reason: &'a str,
    },
    Command {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        verdict: &'a str,
        rule: &'a str,
        reason: &'a str,
        command: &'a str,
        revision: &'a str,
    },
    SessionClosed {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        reason: &'a str,
    },
    ProtocolViolation {
        session: &'a str,
        side: &'a str,
        reason: &'a str,
    },
    TokenMinted {
        principal: &'a str,
        token_id: &'a str,
        expires_at: u64,
    },
    /// A token issued after a login (`oidc-device`, `oidc-code`,
    /// `service-account`, `break-glass`).
    TokenIssued {
        principal: &'a str,
        groups: &'a [String],
        token_id: &'a str,
        expires_at: u64,
        method: &'a str,
    },
    TokenKeyRotated {
        old_key: &'a str,
        new_key: &'a str,
    },
    /// An SSH port forward (`ssh -L`) asked for, and what policy said.
    PortForward {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        target: &'a str,
        allowed: bool,
        reason: &'a str,
    },
    /// The target used the client's forwarded SSH agent (allowed by grant).
    AgentForwardUsed {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
    },
    /// A line typed into an interactive SSH shell: extracted best effort,
    /// an audit aid and not a security boundary.
    ShellInput {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        line: &'a str,
    },
    /// A file operation read from an scp or sftp stream.
    FileTransfer {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        operation: &'a str,
    },
    /// A break-glass principal logged in. Loud on purpose.
    BreakGlassUsed {
        account: &'a str,
        client: &'a str,
        token_id: &'a str,
    },
    /// A session opened with a break-glass token.
    BreakGlassSession {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
    },
    /// An SSH user certificate signed for a token's holder.
    SshCertificateIssued {
        principal: &'a str,
        token_id: &'a str,
        expires_at: u64,
    },
    LoginFailed {
        method: &'a str,
        reason: &'a str,
    },
    /// Tokens revoked: one by id, or all of a principal's issued so far.
    TokensRevoked {
        by: &'a str,
        token_id: Option<&'a str>,
        principal: Option<&'a str>,
    },
    /// Every change to a review: `requested`, `approval` (one of several
    /// needed), `approved`, `denied`, `expired`, `cancelled`.
    Review {
        action: &'a str,
        review: &'a str,
        kind: &'a str,
        /// Who acted: the approver, the requester, or `gateway` (expiry).
        by: &'a str,
        requester: &'a str,
        resource: &'a str,
        session: Option<&'a str>,
        command: Option<&'a str>,
        approvers: &'a str,
        quorum: u32,
        state: &'a str,
        reason: &'a str,
        policy_revision: &'a str,
    },
    /// A request to the review API that was refused.
    ApiRefused {
        client: &'a str,
        principal: Option<&'a str>,
        path: &'a str,
        reason: &'a str,
    },
}

/// The audit log's front: serializes events on the caller's thread and
/// hands lines to a writer thread, so a decision never waits for a disk.
/// The writer flushes every 100 ms and on exit.
pub(crate) struct AuditLog {
    gateway: String,
    tx: Mutex<Option<std::sync::mpsc::Sender<String>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AuditLog {
    pub(crate) fn open(path: &std::path::Path, gateway: &str) -> anyhow::Result<AuditLog> {
        use anyhow::Context as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the audit log {}", path.display()))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_lines(file, rx))?;
        Ok(AuditLog {
            gateway: gateway.to_owned(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends one event.
    pub(crate) fn record(&self, event: &AuditEvent<'_>) {
        #[derive(Serialize)]
        struct Line<'a, 'e> {
            ts: String,
            gateway: &'a str,
            #[serde(flatten)]
            event: &'a AuditEvent<'e>,
        }
        let line = Line {
            ts: gw_recording::rfc3339(now_us()),
            gateway: &self.gateway,
            event,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.as_ref().is_none_or(|tx| tx.send(text).is_err()) {
            tracing::error!("the audit log writer has stopped; an audit event was lost");
        }
    }

    /// Flushes everything recorded so far and stops the writer.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// Drains the queue every 100 ms rather than waking per event: a wake-up
/// per command costs more CPU than the command's whole decision.
fn write_lines(file: std::fs::File, rx: std::sync::mpsc::Receiver<String>) {
    use std::sync::mpsc::TryRecvError;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, file);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut stop = false;
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    wrote = true;
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        tracing::error!(error = %e, "cannot write the audit log");
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
        if wrote && let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot write the audit log");
        }
        if stop {
            return;
        }
    }
}

/// Seconds since the Unix epoch: the `now` every policy and token decision takes.
pub(crate) fn unix_now() -> u64 {
    now_us() / 1_000_000
}

/// Microseconds since the Unix epoch. The gateway's one clock.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
