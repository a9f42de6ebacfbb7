//! The review rules, as pure functions of (review, actor, now).
//!
//! Each function mutates only the review it is given and reads no clock, so
//! the store can run it inside one transaction and tests can run it with any
//! time they like. A store applies [`expire`] before every other rule, so a
//! review past its expiry is treated (and saved) as expired, never as pending.

use std::collections::BTreeSet;

use crate::error::ReviewError;
use crate::model::{CancelBy, CommandHash, Decision, Kind, Principal, Review, State, Verdict};

/// Marks a pending review past `expires_at` as expired. Returns whether it
/// changed, so the caller knows to save it.
pub fn expire(review: &mut Review, now: u64) -> bool {
    let due = review.state == State::Pending && now >= review.expires_at;
    if due {
        review.state = State::Expired;
    }
    due
}

/// Records `actor`'s verdict. Approves the review once `quorum` distinct
/// eligible approvers approved; denies it on any eligible deny.
pub fn decide(
    review: &mut Review,
    actor: &Principal,
    verdict: Verdict,
    reason: &str,
    now: u64,
) -> Result<(), ReviewError> {
    expire(review, now);
    ensure_pending(review)?;
    if actor.subject == review.requester.subject {
        return Err(ReviewError::SelfApproval {
            id: review.id.clone(),
            subject: actor.subject.clone(),
        });
    }
    if !actor.groups.contains(&review.approvers) {
        return Err(ReviewError::NotAnApprover {
            subject: actor.subject.clone(),
            group: review.approvers.clone(),
        });
    }
    let approvers = approving_subjects(review);
    let (already, have) = (approvers.contains(actor.subject.as_str()), approvers.len());
    if verdict == Verdict::Approve && already {
        return Err(ReviewError::AlreadyApproved {
            id: review.id.clone(),
            subject: actor.subject.clone(),
            missing: missing(review.quorum, have),
        });
    }
    review.decisions.push(Decision {
        by: actor.subject.clone(),
        verdict,
        reason: reason.to_owned(),
        at: now,
    });
    match verdict {
        Verdict::Deny => review.state = State::Denied,
        Verdict::Approve if missing(review.quorum, have + 1) == 0 => {
            review.state = State::Approved;
            review.approved_at = Some(now);
        }
        Verdict::Approve => {}
    }
    Ok(())
}

/// Cancels a pending review on behalf of its session or its requester.
pub fn cancel(review: &mut Review, by: CancelBy<'_>, now: u64) -> Result<(), ReviewError> {
    let allowed = match by {
        CancelBy::Session(s) => review.session_id.as_deref() == Some(s),
        CancelBy::Requester(subject) => review.requester.subject == subject,
    };
    if !allowed {
        return Err(ReviewError::NotYours {
            id: review.id.clone(),
        });
    }
    expire(review, now);
    ensure_pending(review)?;
    review.state = State::Cancelled;
    Ok(())
}

/// Uses an approved command review for `session_id` and `hash`, if it covers
/// them: once (then it is consumed), or, with a window, any number of times
/// until `approved_at + window`. Returns whether it was used.
pub fn take(review: &mut Review, session_id: &str, hash: &CommandHash, now: u64) -> bool {
    let covers = review.kind == Kind::Command
        && review.state == State::Approved
        && review.session_id.as_deref() == Some(session_id)
        && review.command_hash == *hash;
    let usable = match review.window {
        None => !review.consumed,
        Some(_) => window_open(review, now),
    };
    if covers && usable {
        review.consumed = true;
    }
    covers && usable
}

/// Whether an approved session review opens an access window for `subject`
/// on `resource` at `now`.
pub fn opens_window(review: &Review, subject: &str, resource: &str, now: u64) -> bool {
    review.kind == Kind::Session
        && review.state == State::Approved
        && review.requester.subject == subject
        && review.resource == resource
        && window_open(review, now)
}

/// The distinct subjects that approved, which is what quorum counts.
pub fn approving_subjects(review: &Review) -> BTreeSet<&str> {
    review
        .decisions
        .iter()
        .filter(|d| d.verdict == Verdict::Approve)
        .map(|d| d.by.as_str())
        .collect()
}

fn window_open(review: &Review, now: u64) -> bool {
    match (review.approved_at, review.window) {
        (Some(at), Some(w)) => now < at.saturating_add(w),
        _ => false,
    }
}

fn missing(quorum: u32, have: usize) -> u32 {
    let have = u32::try_from(have).unwrap_or(u32::MAX);
    quorum.saturating_sub(have)
}

fn ensure_pending(review: &Review) -> Result<(), ReviewError> {
    match review.state {
        State::Pending => Ok(()),
        State::Expired => Err(ReviewError::Expired {
            id: review.id.clone(),
            expires_at: review.expires_at,
        }),
        state => Err(ReviewError::AlreadyDecided {
            id: review.id.clone(),
            state,
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests;
