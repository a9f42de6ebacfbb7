//! Tests of the SQLite store: persistence, atomicity under concurrency and
//! the rules as seen through the [`Store`] trait.

use std::sync::{Arc, Barrier};
use std::thread;

use super::*;
use crate::rules::tests::{
    PEOPLE, SESSIONS, XorShift, assert_invariants, new_command, new_session, rule, who,
};

const DROP: &str = "DROP TABLE orders";

fn drop_hash(session: &str) -> CommandHash {
    crate::command_hash("postgres", "pg/prod", session, DROP)
}

fn memory() -> SqliteStore {
    SqliteStore::open_in_memory().expect("an in-memory store opens")
}

fn approve(store: &dyn Store, id: &ReviewId, by: &str, now: u64) -> Result<Review, &'static str> {
    store
        .decide(id, &who(by), Verdict::Approve, "looks fine", now)
        .map_err(|e| rule(&e))
}

#[test]
fn a_review_round_trips_through_the_store() {
    let store = memory();
    let created = store.create(new_command(2, Some(60)), 100).expect("create");
    assert_eq!(store.get(&created.id, 100).expect("get"), created);
    approve(&store, &created.id, "bob", 200).expect("bob approves");
    let approved = approve(&store, &created.id, "carol", 210).expect("carol approves");
    assert_eq!(approved.state, State::Approved);
    assert_eq!(approved.approved_at, Some(210));
    assert_eq!(
        store.get(&approved.id, 220).expect("get"),
        approved,
        "what decide returned is what was saved"
    );
    assert_eq!(approved.decisions.len(), 2);
    assert_eq!(approved.decisions[0].by, "bob");
    assert_eq!(approved.decisions[0].reason, "looks fine");
}

#[test]
fn unknown_review_is_reported() {
    let store = memory();
    let id = ReviewId::parse("rv-abcdefghij").expect("valid id");
    assert_eq!(
        store.get(&id, 1).map_err(|e| rule(&e)),
        Err("UnknownReview")
    );
    assert_eq!(
        approve(&store, &id, "bob", 1).map(|r| r.state),
        Err("UnknownReview")
    );
}

#[test]
fn refused_decisions_change_nothing_in_the_store() {
    let store = memory();
    let r = store.create(new_command(1, None), 100).expect("create");
    for (by, want) in [("alice", "SelfApproval"), ("dave", "NotAnApprover")] {
        assert_eq!(approve(&store, &r.id, by, 200).map(|r| r.state), Err(want));
    }
    assert_eq!(store.get(&r.id, 200).expect("get"), r);
}

#[test]
fn a_late_approval_is_refused_and_the_expiry_is_saved() {
    let store = memory();
    let r = store.create(new_command(1, None), 100).expect("create");
    assert_eq!(
        approve(&store, &r.id, "bob", 1_000).map(|r| r.state),
        Err("Expired")
    );
    // Asked again with an earlier clock, the store still says expired: the
    // expiry was saved, not just computed.
    let stored = store.get(&r.id, 500).expect("get");
    assert_eq!((stored.state, stored.decisions.len()), (State::Expired, 0));
    assert_eq!(
        store
            .take_approved("s1", &drop_hash("s1"), 1_001)
            .expect("take"),
        None
    );
}

#[test]
fn expire_due_expires_each_review_once() {
    let store = memory();
    let early = store
        .create(
            NewReview {
                expires_at: 300,
                ..new_command(1, None)
            },
            100,
        )
        .expect("create");
    let late = store.create(new_command(1, None), 100).expect("create");
    assert!(store.expire_due(299).expect("expire").is_empty());
    let due = store.expire_due(300).expect("expire");
    assert_eq!(
        due.iter().map(|r| (&r.id, r.state)).collect::<Vec<_>>(),
        [(&early.id, State::Expired)]
    );
    assert!(
        store.expire_due(301).expect("expire").is_empty(),
        "already expired"
    );
    assert_eq!(store.get(&late.id, 301).expect("get").state, State::Pending);
}

#[test]
fn take_approved_once_and_only_for_that_command_in_that_session() {
    let store = memory();
    let r = store.create(new_command(1, None), 100).expect("create");
    assert_eq!(
        store
            .take_approved("s1", &drop_hash("s1"), 150)
            .expect("take"),
        None,
        "pending"
    );
    approve(&store, &r.id, "bob", 200).expect("bob approves");
    let lookalike = crate::command_hash("postgres", "pg/prod", "s1", "drop table orders");
    assert_eq!(
        store.take_approved("s1", &lookalike, 201).expect("take"),
        None
    );
    assert_eq!(
        store
            .take_approved("s2", &drop_hash("s2"), 201)
            .expect("take"),
        None
    );
    assert_eq!(
        store
            .take_approved("s2", &drop_hash("s1"), 201)
            .expect("take"),
        None
    );
    let taken = store
        .take_approved("s1", &drop_hash("s1"), 202)
        .expect("take")
        .expect("covered");
    assert!(taken.consumed && taken.id == r.id);
    assert_eq!(
        store
            .take_approved("s1", &drop_hash("s1"), 203)
            .expect("take"),
        None,
        "used up"
    );
}

#[test]
fn take_approved_reuses_a_window_until_it_ends() {
    let store = memory();
    let r = store.create(new_command(1, Some(60)), 100).expect("create");
    approve(&store, &r.id, "bob", 200).expect("bob approves");
    for (now, want) in [(200, true), (259, true), (260, false)] {
        let got = store
            .take_approved("s1", &drop_hash("s1"), now)
            .expect("take");
        assert_eq!(got.is_some(), want, "at {now}");
    }
}

#[test]
fn active_window_for_an_approved_session_review() {
    let store = memory();
    let r = store.create(new_session(3_600), 100).expect("create");
    assert_eq!(
        store
            .active_window("alice", "pg/prod", 150)
            .expect("window"),
        None,
        "pending"
    );
    approve(&store, &r.id, "bob", 200).expect("bob approves");
    for (subject, resource, now, want) in [
        ("alice", "pg/prod", 200, true),
        ("alice", "pg/prod", 3_799, true),
        ("alice", "pg/prod", 3_800, false),
        ("bob", "pg/prod", 300, false),
        ("alice", "pg/other", 300, false),
    ] {
        let got = store.active_window(subject, resource, now).expect("window");
        assert_eq!(
            got.map(|r| r.id),
            want.then(|| r.id.clone()),
            "{subject} {resource} {now}"
        );
    }
}

#[test]
fn cancel_through_the_store() {
    let store = memory();
    let r = store.create(new_command(1, None), 100).expect("create");
    assert_eq!(
        store
            .cancel(&r.id, CancelBy::Session("s2"), 150)
            .map_err(|e| rule(&e))
            .map(|r| r.state),
        Err("NotYours")
    );
    let cancelled = store
        .cancel(&r.id, CancelBy::Session("s1"), 150)
        .expect("cancel");
    assert_eq!(cancelled.state, State::Cancelled);
    assert_eq!(
        approve(&store, &r.id, "bob", 160).map(|r| r.state),
        Err("AlreadyDecided")
    );
    assert_eq!(store.get(&r.id, 160).expect("get").state, State::Cancelled);
}

#[track_caller]
fn check_list(store: &SqliteStore, filter: Filter, want: &[&ReviewId]) {
    let got = store.list(&filter, 500).expect("list");
    assert_eq!(
        got.iter().map(|r| &r.id).collect::<Vec<_>>(),
        want,
        "{filter:?}"
    );
}

#[test]
fn list_filters_by_state_resource_and_requester() {
    let store = memory();
    let a = store.create(new_command(1, None), 100).expect("create");
    let b = store
        .create(
            NewReview {
                resource: "pg/other".to_owned(),
                ..new_command(1, None)
            },
            101,
        )
        .expect("create");
    let c = store
        .create(
            NewReview {
                requester: who("bob"),
                ..new_command(1, None)
            },
            102,
        )
        .expect("create");
    let d = store
        .create(
            NewReview {
                expires_at: 400,
                ..new_command(1, None)
            },
            103,
        )
        .expect("create");
    approve(&store, &a.id, "bob", 200).expect("approve");
    let state = |s| Filter {
        state: Some(s),
        ..Filter::default()
    };
    check_list(&store, Filter::default(), &[&a.id, &b.id, &c.id, &d.id]);
    check_list(&store, state(State::Approved), &[&a.id]);
    check_list(&store, state(State::Pending), &[&b.id, &c.id]);
    check_list(&store, state(State::Expired), &[&d.id]);
    check_list(
        &store,
        Filter {
            resource: Some("pg/other".to_owned()),
            ..Filter::default()
        },
        &[&b.id],
    );
    check_list(
        &store,
        Filter {
            requester: Some("bob".to_owned()),
            ..Filter::default()
        },
        &[&c.id],
    );
    check_list(
        &store,
        Filter {
            state: Some(State::Pending),
            requester: Some("alice".to_owned()),
            resource: None,
        },
        &[&b.id],
    );
}

#[test]
fn restart_keeps_a_pending_review_pending_and_approves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reviews.db");
    let store = SqliteStore::open(&path).expect("open");
    let r = store.create(new_command(1, None), 100).expect("create");
    approve(&store, &r.id, "dave", 150).expect_err("an outsider is refused");
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    let again = store.get(&r.id, 200).expect("still there");
    assert_eq!(again, r, "nothing lost, nothing added");
    assert_eq!(again.state, State::Pending);
    assert_eq!(
        store
            .take_approved("s1", &drop_hash("s1"), 200)
            .expect("take"),
        None
    );
    assert!(
        store
            .list(
                &Filter {
                    state: Some(State::Approved),
                    ..Filter::default()
                },
                200
            )
            .expect("list")
            .is_empty()
    );
    // It can still be decided normally after the restart.
    assert_eq!(
        approve(&store, &r.id, "bob", 210).map(|r| r.state),
        Ok(State::Approved)
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reviews.db");
    drop(SqliteStore::open(&path).expect("open"));
    let conn = Connection::open(&path).expect("raw open");
    conn.execute("UPDATE schema_version SET version = 99", [])
        .expect("bump");
    drop(conn);
    let got = SqliteStore::open(&path).map(|_| ());
    assert_eq!(got.map_err(|e| rule(&e)), Err("UnsupportedSchema"));
}

#[test]
fn a_damaged_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reviews.db");
    let store = SqliteStore::open(&path).expect("open");
    let r = store.create(new_command(1, None), 100).expect("create");
    let conn = Connection::open(&path).expect("raw open");
    for damage in [
        "UPDATE reviews SET state = 'maybe'",
        "UPDATE reviews SET state = 'pending', command_hash = x'00'",
        "UPDATE reviews SET command_hash = zeroblob(32), created_at = -1",
    ] {
        conn.execute(damage, []).expect("damage");
        assert_eq!(
            store.get(&r.id, 200).map_err(|e| rule(&e)).map(|r| r.state),
            Err("Corrupt"),
            "{damage}"
        );
    }
}

/// Many reviews needing two approvals; three approvers race on every one of
/// them. Each review must end approved by exactly two people, and exactly
/// one decide call per review may report reaching quorum.
#[track_caller]
fn check_concurrent_quorum(separate_connections: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reviews.db");
    let shared = Arc::new(SqliteStore::open(&path).expect("open"));
    let ids: Vec<ReviewId> = (0..40)
        .map(|_| shared.create(new_command(2, None), 100).expect("create").id)
        .collect();
    let ids = Arc::new(ids);
    let barrier = Arc::new(Barrier::new(3));
    let threads: Vec<_> = ["bob", "carol", "erin"]
        .into_iter()
        .map(|by| {
            let store = match separate_connections {
                true => Arc::new(SqliteStore::open(&path).expect("open")),
                false => Arc::clone(&shared),
            };
            let (ids, barrier) = (Arc::clone(&ids), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                ids.iter()
                    .map(|id| approve(&*store, id, by, 200).map(|r| r.state))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<_>> = threads
        .into_iter()
        .map(|t| t.join().expect("no panic"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let outcomes: Vec<_> = results.iter().map(|r| r[i]).collect();
        let reached = outcomes
            .iter()
            .filter(|o| **o == Ok(State::Approved))
            .count();
        let counted = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| **o == Err("AlreadyDecided"))
            .count();
        assert_eq!((reached, counted, refused), (1, 2, 1), "{id}: {outcomes:?}");
        let r = shared.get(id, 300).expect("get");
        assert_eq!(r.state, State::Approved);
        assert_eq!(r.decisions.len(), 2, "{r:?}");
        assert_invariants(&r);
    }
}

#[test]
fn concurrent_decides_on_one_store_reach_quorum_exactly_once() {
    check_concurrent_quorum(false);
}

#[test]
fn concurrent_decides_through_two_connections_reach_quorum_exactly_once() {
    check_concurrent_quorum(true);
}

#[test]
fn the_same_person_approving_from_two_threads_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("reviews.db")).expect("open"));
    let ids: Vec<ReviewId> = (0..20)
        .map(|_| store.create(new_command(2, None), 100).expect("create").id)
        .collect();
    let ids = Arc::new(ids);
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (store, ids, barrier) =
                (Arc::clone(&store), Arc::clone(&ids), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                ids.iter()
                    .map(|id| approve(&*store, id, "bob", 200).map(|r| r.state))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<_>> = threads
        .into_iter()
        .map(|t| t.join().expect("no panic"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let outcomes = [results[0][i], results[1][i]];
        let once = [Ok(State::Pending), Err("AlreadyApproved")];
        assert!(
            outcomes == once || outcomes == [once[1], once[0]],
            "{id}: {outcomes:?}"
        );
        assert_eq!(store.get(id, 300).expect("get").state, State::Pending);
    }
}

#[test]
fn random_store_sequences_never_panic_and_keep_the_invariants() {
    let store = memory();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..150 {
        let quorum = 1 + u32::try_from(rng.below(3)).unwrap_or(0);
        let session = rng.pick(&["s1", "s2"]);
        let new = NewReview {
            session_id: Some(session.to_owned()),
            ..new_command(quorum, None)
        };
        let mut now = 100;
        let id = store.create(new, now).expect("create").id;
        for _ in 0..10 {
            now += rng.below(150);
            let before = store.get(&id, 0).expect("get").state;
            let actor = who(rng.pick(PEOPLE));
            let _ = match rng.below(5) {
                0 | 1 => store
                    .decide(&id, &actor, Verdict::Approve, "r", now)
                    .map(|_| ()),
                2 => store
                    .decide(&id, &actor, Verdict::Deny, "r", now)
                    .map(|_| ()),
                3 => store
                    .cancel(&id, CancelBy::Session(rng.pick(SESSIONS)), now)
                    .map(|_| ()),
                _ => store.expire_due(now).map(|_| ()),
            };
            let s = rng.pick(SESSIONS);
            store.take_approved(s, &drop_hash(s), now).expect("take");
            // `now = 0` reads without applying any expiry, so this is the stored state.
            let after = store.get(&id, 0).expect("get");
            if before.is_terminal() {
                assert_eq!(after.state, before, "a terminal state changed");
            }
            assert_invariants(&after);
        }
    }
}
