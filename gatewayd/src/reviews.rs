//! Reviews inside the gateway: the store, waking the sessions that wait on
//! a review, and telling the audit log and the webhooks about every event.
//!
//! Every change to a review goes through this module, so each one is audited
//! exactly once: `request`, `decide`, `cancel` and `sweep` (expiry). The
//! store calls are synchronous and run on the blocking pool; a held session
//! waits on a [`Notify`] that `decide`/`cancel`/`sweep` wake, and also
//! re-reads the store once a second, so a decision made by another gateway
//! sharing the store is seen too.
//!
//! Fail closed: when the store cannot be reached, nothing is approved: a
//! command that needs review is refused, and so is a session that needs an
//! access window.

use crate::audit::AuditEvent;
use crate::state::Gateway;
use crate::webhooks::Notification;
use gw_review::{
    CancelBy, CommandHash, Filter, NewReview, Principal, Review, ReviewError, ReviewId, State,
    Store, Verdict,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub(crate) struct Reviews {
    store: Arc<dyn Store>,
    waiters: Mutex<HashMap<ReviewId, Arc<Notify>>>,
    pub(crate) hooks: crate::webhooks::Hooks,
}

impl Reviews {
    pub(crate) fn open(
        path: &std::path::Path,
        hooks: crate::webhooks::Hooks,
    ) -> anyhow::Result<Reviews> {
        let store = gw_review::SqliteStore::open(path)
            .map_err(|e| anyhow::anyhow!("opening the review store {}: {e}", path.display()))?;
        Ok(Reviews {
            store: Arc::new(store),
            waiters: Mutex::new(HashMap::new()),
            hooks,
        })
    }

    /// Runs one store call on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, ReviewError> + Send + 'static,
    ) -> Result<T, ReviewError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .unwrap_or_else(|e| Err(ReviewError::Storage(Box::new(e))))
    }

    /// What a held session waits on; woken on every change to `id`.
    pub(crate) fn waiter(&self, id: &ReviewId) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(id.clone()).or_default())
    }

    /// Forgets the waiter of a review whose session stopped waiting.
    pub(crate) fn forget(&self, id: &ReviewId) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    fn wake(&self, id: &ReviewId) {
        let w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.get(id) {
            n.notify_waiters();
            n.notify_one();
        }
    }

    pub(crate) async fn get(&self, id: &ReviewId, now: u64) -> Result<Review, ReviewError> {
        let id = id.clone();
        self.call(move |s| s.get(&id, now)).await
    }

    pub(crate) async fn list(&self, filter: Filter, now: u64) -> Result<Vec<Review>, ReviewError> {
        self.call(move |s| s.list(&filter, now)).await
    }

    pub(crate) async fn take_approved(
        &self,
        session: &str,
        hash: CommandHash,
        now: u64,
    ) -> Result<Option<Review>, ReviewError> {
        let session = session.to_owned();
        self.call(move |s| s.take_approved(&session, &hash, now))
            .await
    }

    pub(crate) async fn active_window(
        &self,
        subject: &str,
        resource: &str,
        now: u64,
    ) -> Result<Option<Review>, ReviewError> {
        let (subject, resource) = (subject.to_owned(), resource.to_owned());
        self.call(move |s| s.active_window(&subject, &resource, now))
            .await
    }
}

/// A review request for `who` on `resource`, asked for by `rule` as its
/// `approval` says. Command reviews add their session and command text;
/// session reviews (access windows) always carry a window.
pub(crate) fn ask(
    kind: gw_review::Kind,
    who: &gw_policy::Principal,
    resource: &gw_policy::Resource,
    rule: &str,
    approval: &gw_policy::model::Approval,
    revision: &str,
    now: u64,
) -> NewReview {
    NewReview {
        kind,
        requester: Principal {
            subject: who.subject.clone(),
            groups: who.groups.clone(),
        },
        session_id: None,
        resource: resource.name.clone(),
        protocol: resource.kind.name().into(),
        command: None,
        guard_or_grant: rule.to_owned(),
        approvers: approval.approvers.clone(),
        quorum: approval.quorum.max(1),
        expires_at: now + approval.timeout.as_secs().max(1),
        window: approval.window.map(|w| w.as_secs().max(1)),
        policy_revision: revision.to_owned(),
    }
}

/// Creates a pending review, audits it and notifies the webhooks.
pub(crate) async fn request(gw: &Gateway, new: NewReview) -> Result<Review, ReviewError> {
    let now = crate::audit::unix_now();
    let review = gw.reviews.call(move |s| s.create(new, now)).await?;
    crate::metrics::Metrics::inc(&gw.metrics.reviews_requested);
    let requester = review.requester.subject.clone();
    publish(gw, "requested", &requester, "", &review);
    Ok(review)
}

/// An approver's verdict, from the API.
pub(crate) async fn decide(
    gw: &Gateway,
    id: &ReviewId,
    actor: &Principal,
    verdict: Verdict,
    reason: &str,
) -> Result<Review, ReviewError> {
    let now = sweep(gw).await?;
    let (rid, who, why) = (id.clone(), actor.clone(), reason.to_owned());
    let review = gw
        .reviews
        .call(move |s| s.decide(&rid, &who, verdict, &why, now))
        .await?;
    let action = match (verdict, review.state) {
        (Verdict::Deny, _) => "denied",
        (Verdict::Approve, State::Approved) => "approved",
        // One approval of several needed.
        _ => "approval",
    };
    publish(gw, action, &actor.subject, reason, &review);
    gw.reviews.wake(id);
    Ok(review)
}

/// Cancels a pending review for its session (the client cancelled or went
/// away) or its requester.
pub(crate) async fn cancel(
    gw: &Gateway,
    id: &ReviewId,
    by: Cancel,
    reason: &str,
) -> Result<Review, ReviewError> {
    let now = sweep(gw).await?;
    let rid = id.clone();
    let who = by.clone();
    let review = gw
        .reviews
        .call(move |s| {
            let by = match &who {
                Cancel::Session(s) => CancelBy::Session(s),
                Cancel::Requester(r) => CancelBy::Requester(r),
            };
            s.cancel(&rid, by, now)
        })
        .await?;
    let actor = match &by {
        Cancel::Session(_) => review.requester.subject.clone(),
        Cancel::Requester(r) => r.clone(),
    };
    publish(gw, "cancelled", &actor, reason, &review);
    gw.reviews.wake(id);
    Ok(review)
}

/// An owned [`CancelBy`], to cross into the blocking pool.
#[derive(Clone)]
pub(crate) enum Cancel {
    Session(String),
    Requester(String),
}

/// Expires every pending review that is due, auditing each, and returns
/// the `now` it used: read the store with that same `now` and no review can
/// expire unaudited in between.
pub(crate) async fn sweep(gw: &Gateway) -> Result<u64, ReviewError> {
    let now = crate::audit::unix_now();
    let expired = gw.reviews.call(move |s| s.expire_due(now)).await?;
    for review in &expired {
        publish(
            gw,
            "expired",
            "gateway",
            "nobody decided before it expired",
            review,
        );
        gw.reviews.wake(&review.id);
    }
    Ok(now)
}

/// Expires due reviews every two seconds, for reviews nobody waits on
/// (access windows) and for the webhooks.
pub(crate) async fn sweeper(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&gw).await {
            tracing::error!(error = %e, "expiring reviews failed");
        }
    }
}

/// Audits a review event and hands it to the webhooks (never waiting).
fn publish(gw: &Gateway, action: &'static str, by: &str, reason: &str, r: &Review) {
    gw.audit.record(&AuditEvent::Review {
        action,
        review: r.id.as_str(),
        kind: match r.kind {
            gw_review::Kind::Command => "command",
            gw_review::Kind::Session => "session",
        },
        by,
        requester: &r.requester.subject,
        resource: &r.resource,
        session: r.session_id.as_deref(),
        command: r.command.as_deref(),
        approvers: &r.approvers,
        quorum: r.quorum,
        state: r.state.as_str(),
        reason,
        policy_revision: &r.policy_revision,
    });
    tracing::info!(review = %r.id, action, by, state = %r.state, "review");
    gw.reviews.hooks.send(Notification {
        event: action,
        by: by.to_owned(),
        reason: reason.to_owned(),
        review: r.clone(),
    });
}

/// How a review's outcome reads to the person who asked.
pub(crate) fn outcome_text(r: &Review) -> String {
    let last = r.decisions.last();
    let said = |d: &gw_review::Decision| {
        if d.reason.is_empty() {
            d.by.clone()
        } else {
            format!("{} (\"{}\")", d.by, d.reason)
        }
    };
    match r.state {
        State::Approved => format!(
            "review {} was approved by {}",
            r.id,
            r.decisions
                .iter()
                .filter(|d| d.verdict == Verdict::Approve)
                .map(said)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        State::Denied => format!(
            "review {} was denied by {}",
            r.id,
            last.map_or_else(String::new, said)
        ),
        State::Expired => format!(
            "review {} expired: no decision from \"{}\" in time",
            r.id, r.approvers
        ),
        State::Cancelled => format!("review {} was cancelled", r.id),
        State::Pending => format!("review {} is pending", r.id),
    }
}

/// The approver's one-liner, for notices and notifications.
pub(crate) fn approve_hint(id: &ReviewId) -> String {
    format!(
        "gwctl review approve {id} --reason \"...\"  (or: gwctl review deny {id} --reason \"...\")"
    )
}
