//! Reviews: a second person's approval, asked for and recorded before a
//! command runs (or before a session opens at all).
//!
//! A [`Review`] is created pending when a guard or grant in the policy says a
//! command (or a session) needs approval. Members of the approver group then
//! approve or deny it; a quorum of distinct approvers approves it, any single
//! eligible deny denies it, and a review nobody finished in time expires. An
//! approved command review is then taken exactly once by the session that
//! asked for it (or, when the guard grants a window, reused by that session
//! for the same command until the window ends).
//!
//! **Invariants:** the rules in [`rules`] are pure functions of (review,
//! actor, now): this crate never reads a clock, `now` is seconds since the
//! Unix epoch passed in by the caller. A terminal state (approved, denied,
//! expired, cancelled) never changes. Nothing is approved unless a quorum of
//! distinct eligible approvers, none of them the requester, said so. The
//! [`Store`] trait is synchronous and backend-neutral; [`SqliteStore`] is the
//! embedded default and a PostgreSQL backend will implement the same trait.
#![forbid(unsafe_code)]

mod error;
mod model;
pub mod rules;
mod store;

pub use error::ReviewError;
pub use model::{
    CancelBy, CommandHash, Decision, Kind, NewReview, Principal, Review, ReviewId, State, Verdict,
    command_hash,
};
pub use store::{Filter, SqliteStore, Store};

/// The fuzz entry point: arbitrary bytes as a review id and as a review in
/// JSON (what `gwctl` reads from a gateway), and every rule applied to
/// whatever parses. Nothing may panic.
///
/// Used by `fuzz/fuzz_targets/review_decode.rs` and by a seeded test.
pub fn fuzz_decode(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ReviewId::parse(&text);
    let Ok(mut review) = serde_json::from_slice::<Review>(data) else {
        return;
    };
    let actor = Principal {
        subject: "fuzz".into(),
        groups: vec![review.approvers.clone()],
    };
    let now = review.expires_at.wrapping_sub(1);
    let session = review.session_id.clone().unwrap_or_default();
    let hash = review.command_hash;
    let _ = rules::opens_window(&review, &actor.subject, &review.resource.clone(), now);
    let _ = rules::take(&mut review.clone(), &session, &hash, now);
    let _ = rules::decide(&mut review.clone(), &actor, Verdict::Approve, "", now);
    let _ = rules::cancel(&mut review.clone(), CancelBy::Session(&session), now);
    let _ = rules::expire(&mut review, u64::MAX);
}
