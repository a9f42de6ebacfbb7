//! The review store: where reviews live between the session that asks and
//! the approver who answers, and across gateway restarts.
//!
//! The trait is synchronous on purpose: the daemon calls it from
//! `spawn_blocking`, and a backend never has to care about an async runtime.
//! It is also backend-neutral (no SQL types appear in it), so a PostgreSQL
//! backend for multi-replica deployments can implement it later.

use crate::error::ReviewError;
use crate::model::{CancelBy, CommandHash, NewReview, Principal, Review, ReviewId, State, Verdict};

mod sqlite;

pub use sqlite::SqliteStore;

/// Which reviews [`Store::list`] returns; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<State>,
    pub resource: Option<String>,
    /// The requester's subject.
    pub requester: Option<String>,
}

/// Persistent reviews. Every method that takes `now` applies expiry first,
/// so a review past `expires_at` is never reported or treated as pending.
/// Every mutating method is atomic: it either applies all of a rule's
/// effects or none.
pub trait Store: Send + Sync {
    /// Stores a new pending review and returns it with its fresh id.
    fn create(&self, new: NewReview, now: u64) -> Result<Review, ReviewError>;

    /// One review, as it stands at `now`.
    fn get(&self, id: &ReviewId, now: u64) -> Result<Review, ReviewError>;

    /// Matching reviews as they stand at `now`, oldest first.
    fn list(&self, filter: &Filter, now: u64) -> Result<Vec<Review>, ReviewError>;

    /// Records an approver's verdict (see [`crate::rules::decide`]) and
    /// returns the review afterwards. A refused decision changes nothing,
    /// except that an expired review is saved as expired.
    fn decide(
        &self,
        id: &ReviewId,
        actor: &Principal,
        verdict: Verdict,
        reason: &str,
        now: u64,
    ) -> Result<Review, ReviewError>;

    /// Cancels a pending review for its session or requester.
    fn cancel(&self, id: &ReviewId, by: CancelBy<'_>, now: u64) -> Result<Review, ReviewError>;

    /// Expires every pending review past its expiry and returns them, so the
    /// caller can fail their held commands and notify.
    fn expire_due(&self, now: u64) -> Result<Vec<Review>, ReviewError>;

    /// The approved review covering this command in this session, used up
    /// by this call unless it grants a window; `None` if nothing covers it.
    fn take_approved(
        &self,
        session_id: &str,
        hash: &CommandHash,
        now: u64,
    ) -> Result<Option<Review>, ReviewError>;

    /// The approved session review whose access window is open for
    /// `subject` on `resource` at `now`, if any.
    fn active_window(
        &self,
        subject: &str,
        resource: &str,
        now: u64,
    ) -> Result<Option<Review>, ReviewError>;
}
