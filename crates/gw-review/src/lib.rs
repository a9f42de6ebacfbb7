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
