//! The one error type of this crate: a variant per rule, with messages an
//! approver (or the operator reading the log) can act on.

use crate::model::{ReviewId, State};

/// Why a review operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// The actor is not a member of the review's approver group.
    #[error("{subject} is not in the approver group {group}; ask a member of {group} to decide")]
    NotAnApprover { subject: String, group: String },
    /// The actor asked for this review; nobody decides their own request.
    #[error(
        "{subject} requested review {id} and cannot decide it; ask another member of the approver group"
    )]
    SelfApproval { id: ReviewId, subject: String },
    /// The review is no longer pending.
    #[error("review {id} is already {state}; only pending reviews can be decided or cancelled")]
    AlreadyDecided { id: ReviewId, state: State },
    /// The review was not decided before it expired.
    #[error(
        "review {id} expired at {expires_at} (unix seconds) and can no longer be approved; the requester must run the command again"
    )]
    Expired { id: ReviewId, expires_at: u64 },
    /// The same approver approved twice; quorum counts people, not clicks.
    #[error("{subject} already approved review {id}; it needs {missing} more approver(s)")]
    AlreadyApproved {
        id: ReviewId,
        subject: String,
        missing: u32,
    },
    /// No review has this id.
    #[error("no review {id}; check the id with `gwctl review list`")]
    UnknownReview { id: ReviewId },
    /// Only the requester or the requesting session may cancel a review.
    #[error("review {id} belongs to another requester and session; only they can cancel it")]
    NotYours { id: ReviewId },
    /// The text is not a review id.
    #[error("{input:?} is not a review id (expected rv- followed by 10 letters and digits)")]
    InvalidId { input: String },
    /// A review was asked for with inconsistent fields (a caller bug or a bad policy).
    #[error("invalid review request: {reason}")]
    InvalidRequest { reason: &'static str },
    /// The operating system could not supply randomness for a review id.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The store holds a row this version cannot read.
    #[error("review store holds an unreadable review {id}: {what}")]
    Corrupt { id: String, what: &'static str },
    /// The store was written by a newer gateway.
    #[error(
        "review store schema version {found} is newer than this gateway supports ({supported}); upgrade the gateway"
    )]
    UnsupportedSchema { found: i64, supported: i64 },
    /// The backend failed (disk, lock timeout, connection).
    #[error("review store: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}
