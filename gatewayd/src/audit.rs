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
        files: usize,
        tests_passed: usize,
    },
    PolicyRejected {
        reason: &'a str,
    },
    SessionOpened {
        session: &'a str,
        principal: &'a str,
        resource: &'a str,
        protocol: &'a str,
        client: &'a str,
        rule: &'a str,
    },
    SessionDenied {
        principal: &'a str,
        resource: &'a str,
        protocol: &'a str,
        client: &'a str,
        rule: &'a str,
        reason: &'a str,
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
}

pub(crate) struct AuditLog {
    gateway: String,
    out: Mutex<Box<dyn std::io::Write + Send>>,
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
        Ok(AuditLog {
            gateway: gateway.to_owned(),
            out: Mutex::new(Box::new(file)),
        })
    }

    /// Appends one event. A failing audit log is reported on the
    /// diagnostics channel; it does not stop the gateway (the recording is
    /// the authoritative trail of each session).
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
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(text.as_bytes()) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
