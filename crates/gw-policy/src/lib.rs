//! The gateway's policy: the KDL language, its validation, and its engine.
//!
//! - [`load`] turns [`Source`]s into a [`Policy`], or into every
//!   [`Diagnostic`] at once (file, span, code, message, help).
//! - [`Policy::decide_session`] and [`Policy::decide_command`] are pure and
//!   synchronous: no I/O, no clock (time is an argument), no failure. Every
//!   answer is a [`Decision`] naming its [`Rule`] and a human reason.
//! - [`Policy::deny_all`] is the fail-closed policy used when no valid one
//!   is loaded.
//! - [`run_tests`] runs a policy's `test` blocks; [`diff`] explains what a
//!   change grants or revokes; [`format`] prints canonical KDL.
//!
//! **Architecture invariant:** this crate does no I/O except in
//! [`source::read_paths`], which tools call to turn paths into sources.
#![forbid(unsafe_code)]

pub mod diagnostic;
pub mod diff;
mod engine;
mod fmt;
pub mod glob;
mod load;
pub mod model;
mod request;
mod secrets;
pub mod source;
mod testing;

pub use diagnostic::{Diagnostic, Severity, Span};
pub use diff::{Area, Change, Direction, diff};
pub use engine::human_duration;
pub use fmt::{FormatError, format};
pub use load::{HTTP_METHODS, KUBE_VERBS, MAX_FILE_BYTES, RISKS, check, load, parse_duration};
pub use model::{Action, Guard, Kind, OnFailure, Policy, Resource};
pub use request::{
    Command, Decision, KubeRequest, Principal, Rule, SessionDecision, SessionTerms, Verdict,
};
pub use secrets::looks_like_secret;
pub use source::Source;
pub use testing::{TestOutcome, run_tests};

/// Names of the built-in default rules a test may expect.
pub const DEFAULT_RULES: [&str; 5] = [
    "no-policy",
    "unknown-resource",
    "no-grant",
    "default-command",
    "unparsed",
];

/// Loads arbitrary bytes as a one-file policy and, if it loads, runs its
/// tests and a few decisions. For fuzzing: it must never panic.
pub fn fuzz_load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sources = [Source::new("fuzz.kdl", text)];
    let (policy, diags) = check(&sources);
    let _ = diagnostic::render_human(&sources, &diags);
    let _ = format(&sources[0].text);
    let p = Principal::new("fuzz@example.com", &["sre"]);
    for r in &policy.resources {
        let _ = policy.decide_session(&p, &r.name, 0);
        let _ = policy.decide_command(&p, &r.name, &Command::sql(r.kind, "DELETE FROM t"));
    }
    let _ = run_tests(&policy);
}
