//! Prometheus metrics, as plain counters rendered in the text exposition
//! format on `/metrics`. A handful of atomics need no registry crate.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) sessions_opened: AtomicU64,
    pub(crate) sessions_denied: AtomicU64,
    pub(crate) sessions_active: AtomicI64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) protocol_violations: AtomicU64,
    pub(crate) commands_allowed: AtomicU64,
    pub(crate) commands_logged: AtomicU64,
    pub(crate) commands_denied: AtomicU64,
    pub(crate) masked_values: AtomicU64,
    pub(crate) recording_failures: AtomicU64,
    pub(crate) commands_review: AtomicU64,
    pub(crate) reviews_requested: AtomicU64,
    pub(crate) webhook_deliveries: AtomicU64,
    pub(crate) webhook_failures: AtomicU64,
    pub(crate) policy_applied: AtomicU64,
    pub(crate) policy_rejections: AtomicU64,
    pub(crate) policy_fetch_failures: AtomicU64,
    pub(crate) sessions_revoked: AtomicU64,
    pub(crate) break_glass: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn command(&self, v: gw_policy::Verdict) {
        Metrics::inc(match v {
            gw_policy::Verdict::Allow => &self.commands_allowed,
            gw_policy::Verdict::Log => &self.commands_logged,
            gw_policy::Verdict::Review => &self.commands_review,
            gw_policy::Verdict::Deny => &self.commands_denied,
        });
    }

    /// The text exposition format; `policy_active` is 1 when a valid policy is in force.
    /// `webhooks_dropped` comes from the webhook queue, which counts it.
    pub(crate) fn render(&self, policy_active: bool, webhooks_dropped: u64) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            "gatewayd_sessions_opened_total",
            "Sessions opened.",
            &[("{protocol=\"postgres\"}", g(&self.sessions_opened))],
        );
        counter(
            "gatewayd_sessions_denied_total",
            "Sessions refused by policy.",
            &[("{protocol=\"postgres\"}", g(&self.sessions_denied))],
        );
        counter(
            "gatewayd_authentication_failures_total",
            "Logins with a missing, bad or expired token.",
            &[("", g(&self.auth_failures))],
        );
        counter(
            "gatewayd_protocol_violations_total",
            "Sessions ended by a malformed message.",
            &[("", g(&self.protocol_violations))],
        );
        counter(
            "gatewayd_commands_total",
            "Commands judged by policy, by verdict.",
            &[
                ("{verdict=\"allow\"}", g(&self.commands_allowed)),
                ("{verdict=\"log\"}", g(&self.commands_logged)),
                ("{verdict=\"review\"}", g(&self.commands_review)),
                ("{verdict=\"deny\"}", g(&self.commands_denied)),
            ],
        );
        counter(
            "gatewayd_policy_revisions_total",
            "Candidate policy revisions by outcome: applied, or rejected (invalid, failing tests, unsigned).",
            &[
                ("{outcome=\"applied\"}", g(&self.policy_applied)),
                ("{outcome=\"rejected\"}", g(&self.policy_rejections)),
            ],
        );
        counter(
            "gatewayd_policy_fetch_failures_total",
            "Times the policy source could not be read (the revision in force stayed).",
            &[("", g(&self.policy_fetch_failures))],
        );
        counter(
            "gatewayd_sessions_revoked_total",
            "Live sessions ended because a new policy revision revoked their grant.",
            &[("", g(&self.sessions_revoked))],
        );
        counter(
            "gatewayd_break_glass_logins_total",
            "Logins of break-glass principals.",
            &[("", g(&self.break_glass))],
        );
        counter(
            "gatewayd_reviews_requested_total",
            "Reviews (approval requests) created.",
            &[("", g(&self.reviews_requested))],
        );
        counter(
            "gatewayd_webhook_deliveries_total",
            "Review notifications by outcome: delivered, failed after every retry, dropped because the queue was full.",
            &[
                ("{outcome=\"delivered\"}", g(&self.webhook_deliveries)),
                ("{outcome=\"failed\"}", g(&self.webhook_failures)),
                ("{outcome=\"dropped\"}", webhooks_dropped),
            ],
        );
        counter(
            "gatewayd_masked_values_total",
            "Values masked before reaching a client.",
            &[("", g(&self.masked_values))],
        );
        counter(
            "gatewayd_recording_failures_total",
            "Sessions whose recording failed.",
            &[("", g(&self.recording_failures))],
        );
        let _ = writeln!(
            out,
            "# HELP gatewayd_sessions_active Sessions open now.\n# TYPE gatewayd_sessions_active gauge\ngatewayd_sessions_active {}",
            self.sessions_active.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP gatewayd_policy_active 1 when a valid policy is in force, 0 when everything is denied.\n# TYPE gatewayd_policy_active gauge\ngatewayd_policy_active {}",
            u8::from(policy_active)
        );
        out
    }
}
