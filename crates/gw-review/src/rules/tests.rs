//! Tests of the pure rules: each table row is one scenario, read top to
//! bottom as the steps people take.

use super::*;
use crate::model::{NewReview, ReviewId, command_hash};

const DROP: &str = "DROP TABLE orders";
const CREATED: u64 = 100;
const EXPIRES: u64 = 1_000;

pub(crate) fn who(subject: &str) -> Principal {
    let groups: &[&str] = match subject {
        "alice" => &["dev", "dba"], // the requester, who is also a dba
        "bob" | "carol" => &["dba"],
        "erin" => &["ops", "dba"],
        _ => &["dev"], // dave and anyone else: not an approver
    };
    Principal {
        subject: subject.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub(crate) fn new_command(quorum: u32, window: Option<u64>) -> NewReview {
    NewReview {
        kind: Kind::Command,
        requester: who("alice"),
        session_id: Some("s1".to_owned()),
        resource: "pg/prod".to_owned(),
        protocol: "postgres".to_owned(),
        command: Some(DROP.to_owned()),
        guard_or_grant: "destructive-ddl".to_owned(),
        approvers: "dba".to_owned(),
        quorum,
        expires_at: EXPIRES,
        window,
        policy_revision: "r1".to_owned(),
    }
}

pub(crate) fn new_session(window: u64) -> NewReview {
    NewReview {
        kind: Kind::Session,
        session_id: None,
        command: None,
        guard_or_grant: "prod-access".to_owned(),
        window: Some(window),
        ..new_command(1, None)
    }
}

fn review(new: NewReview) -> Review {
    let id = ReviewId::parse("rv-abcdefghij").expect("a valid literal id");
    Review::new(id, new, CREATED).expect("a valid request")
}

/// The variant name, so tables can say which rule refused.
pub(crate) fn rule(e: &ReviewError) -> &'static str {
    match e {
        ReviewError::NotAnApprover { .. } => "NotAnApprover",
        ReviewError::SelfApproval { .. } => "SelfApproval",
        ReviewError::AlreadyDecided { .. } => "AlreadyDecided",
        ReviewError::Expired { .. } => "Expired",
        ReviewError::AlreadyApproved { .. } => "AlreadyApproved",
        ReviewError::UnknownReview { .. } => "UnknownReview",
        ReviewError::NotYours { .. } => "NotYours",
        ReviewError::InvalidId { .. } => "InvalidId",
        ReviewError::InvalidRequest { .. } => "InvalidRequest",
        ReviewError::Random => "Random",
        ReviewError::Corrupt { .. } => "Corrupt",
        ReviewError::UnsupportedSchema { .. } => "UnsupportedSchema",
        ReviewError::Storage(_) => "Storage",
    }
}

type Step = (&'static str, Verdict, u64, Result<State, &'static str>);

use Verdict::{Approve as A, Deny as D};

#[track_caller]
fn check(quorum: u32, steps: &[Step], last: State) {
    let mut r = review(new_command(quorum, None));
    for (i, &(by, verdict, now, ref want)) in steps.iter().enumerate() {
        let got = decide(&mut r, &who(by), verdict, "because", now).map(|()| r.state);
        assert_eq!(
            got.as_ref().map_err(rule),
            want.as_ref().map_err(|e| *e),
            "step {i}: {by} {verdict:?} at {now}"
        );
    }
    assert_eq!(r.state, last);
    assert_invariants(&r);
}

#[test]
fn one_approver_meets_quorum_of_one() {
    check(1, &[("bob", A, 200, Ok(State::Approved))], State::Approved);
}

#[test]
fn self_approval_is_refused_even_for_a_member_of_the_group() {
    check(
        1,
        &[
            ("alice", A, 200, Err("SelfApproval")),
            ("alice", D, 201, Err("SelfApproval")),
        ],
        State::Pending,
    );
}

#[test]
fn approver_outside_the_group_is_refused() {
    check(1, &[("dave", A, 200, Err("NotAnApprover"))], State::Pending);
}

#[test]
fn deny_from_outside_the_group_does_not_deny() {
    check(
        1,
        &[
            ("dave", D, 200, Err("NotAnApprover")),
            ("bob", A, 201, Ok(State::Approved)),
        ],
        State::Approved,
    );
}

#[test]
fn quorum_of_two_needs_two_distinct_people() {
    check(
        2,
        &[
            ("bob", A, 200, Ok(State::Pending)),
            ("bob", A, 201, Err("AlreadyApproved")),
            ("carol", A, 202, Ok(State::Approved)),
        ],
        State::Approved,
    );
}

#[test]
fn same_person_twice_is_not_a_quorum() {
    check(
        2,
        &[
            ("bob", A, 200, Ok(State::Pending)),
            ("bob", A, 201, Err("AlreadyApproved")),
        ],
        State::Pending,
    );
}

#[test]
fn any_single_deny_wins_over_approvals() {
    check(
        3,
        &[
            ("bob", A, 200, Ok(State::Pending)),
            ("carol", A, 201, Ok(State::Pending)),
            ("erin", D, 202, Ok(State::Denied)),
            ("erin", A, 203, Err("AlreadyDecided")),
        ],
        State::Denied,
    );
}

#[test]
fn an_approver_may_change_their_mind_to_deny() {
    check(
        2,
        &[
            ("bob", A, 200, Ok(State::Pending)),
            ("bob", D, 201, Ok(State::Denied)),
        ],
        State::Denied,
    );
}

#[test]
fn decisions_on_an_approved_review_are_refused() {
    check(
        1,
        &[
            ("bob", A, 200, Ok(State::Approved)),
            ("carol", D, 201, Err("AlreadyDecided")),
        ],
        State::Approved,
    );
}

#[test]
fn late_approval_is_refused_and_the_review_shows_expired() {
    check(1, &[("bob", A, EXPIRES, Err("Expired"))], State::Expired);
    check(
        2,
        &[
            ("bob", A, 999, Ok(State::Pending)),
            ("carol", A, 5_000, Err("Expired")),
        ],
        State::Expired,
    );
}

#[test]
fn expiry_is_exactly_at_expires_at() {
    let mut r = review(new_command(1, None));
    assert!(!expire(&mut r, EXPIRES - 1));
    assert!(expire(&mut r, EXPIRES));
    assert!(
        !expire(&mut r, EXPIRES + 1),
        "expiring twice reports no change"
    );
    assert_eq!(r.state, State::Expired);
}

#[test]
fn expiry_never_touches_a_decided_review() {
    let mut r = review(new_command(1, None));
    decide(&mut r, &who("bob"), A, "ok", 200).expect("bob may approve");
    assert!(!expire(&mut r, u64::MAX));
    assert_eq!(r.state, State::Approved);
}

#[test]
fn error_messages_say_what_to_do() {
    let mut r = review(new_command(2, None));
    let msg = |r: &mut Review, by, now| {
        decide(r, &who(by), A, "", now).map_or_else(|e| e.to_string(), |()| String::new())
    };
    assert_eq!(
        msg(&mut r, "dave", 200),
        "dave is not in the approver group dba; ask a member of dba to decide"
    );
    assert_eq!(
        msg(&mut r, "alice", 200),
        "alice requested review rv-abcdefghij and cannot decide it; ask another member of the approver group"
    );
    assert_eq!(msg(&mut r, "bob", 200), "");
    assert_eq!(
        msg(&mut r, "bob", 201),
        "bob already approved review rv-abcdefghij; it needs 1 more approver(s)"
    );
    assert_eq!(
        msg(&mut r, "carol", 2000),
        "review rv-abcdefghij expired at 1000 (unix seconds) and can no longer be approved; the requester must run the command again"
    );
}

/// (session, command, now, taken?) in order, on a review bob approved at 200.
#[track_caller]
fn check_take(window: Option<u64>, steps: &[(&str, &str, u64, bool)]) {
    let mut r = review(new_command(1, window));
    decide(&mut r, &who("bob"), A, "ok", 200).expect("bob may approve");
    for (i, &(session, command, now, want)) in steps.iter().enumerate() {
        let hash = command_hash("postgres", "pg/prod", session, command);
        assert_eq!(
            take(&mut r, session, &hash, now),
            want,
            "step {i}: {session} {command:?} at {now}"
        );
    }
}

#[test]
fn an_approval_is_used_once() {
    check_take(
        None,
        &[
            ("s1", DROP, 201, true),
            ("s1", DROP, 202, false),
            ("s1", DROP, 203, false),
        ],
    );
}

#[test]
fn a_lookalike_command_is_not_covered() {
    check_take(
        None,
        &[
            ("s1", "DROP TABLE orders ", 201, false),
            ("s1", "drop table orders", 201, false),
            ("s1", "DROP TABLE orders; DROP TABLE users", 201, false),
            ("s1", DROP, 202, true),
        ],
    );
}

#[test]
fn another_session_is_not_covered() {
    check_take(None, &[("s2", DROP, 201, false), ("s1", DROP, 202, true)]);
    // Even with the original session's hash, another session does not match.
    let mut r = review(new_command(1, None));
    decide(&mut r, &who("bob"), A, "ok", 200).expect("bob may approve");
    let hash = r.command_hash;
    assert!(!take(&mut r, "s2", &hash, 201));
    assert!(take(&mut r, "s1", &hash, 201));
}

#[test]
fn a_window_reuses_the_approval_until_it_ends() {
    check_take(
        Some(60),
        &[
            ("s1", DROP, 201, true),
            ("s1", DROP, 259, true),
            ("s2", DROP, 230, false),
            ("s1", "DROP TABLE users", 230, false),
            ("s1", DROP, 260, false),
        ],
    );
}

#[test]
fn nothing_but_an_approved_review_can_be_taken() {
    for state in [
        State::Pending,
        State::Denied,
        State::Expired,
        State::Cancelled,
    ] {
        let mut r = review(new_command(1, None));
        r.state = state;
        let hash = r.command_hash;
        assert!(!take(&mut r, "s1", &hash, 200), "{state}");
        assert!(!r.consumed);
    }
}

/// (subject, resource, now, open?) on a session review bob approved at 200
/// with a one-hour window.
#[track_caller]
fn check_window(steps: &[(&str, &str, u64, bool)]) {
    let mut r = review(new_session(3_600));
    assert!(
        !opens_window(&r, "alice", "pg/prod", 150),
        "a pending review opens nothing"
    );
    decide(&mut r, &who("bob"), A, "ok", 200).expect("bob may approve");
    for (i, &(subject, resource, now, want)) in steps.iter().enumerate() {
        assert_eq!(
            opens_window(&r, subject, resource, now),
            want,
            "step {i}: {subject} {resource} at {now}"
        );
    }
}

#[test]
fn an_approved_session_review_opens_a_window() {
    check_window(&[
        ("alice", "pg/prod", 200, true),
        ("alice", "pg/prod", 3_799, true),
        ("alice", "pg/prod", 3_800, false),
        ("bob", "pg/prod", 300, false),
        ("alice", "pg/staging", 300, false),
    ]);
}

#[track_caller]
fn check_cancel(setup: &[(&str, Verdict)], by: CancelBy<'_>, now: u64, want: Result<State, &str>) {
    let mut r = review(new_command(1, None));
    for &(who_, v) in setup {
        decide(&mut r, &who(who_), v, "", 200).expect("setup decision");
    }
    let before = r.state;
    let got = cancel(&mut r, by, now).map(|()| r.state);
    assert_eq!(got.as_ref().map_err(rule), want.as_ref().map_err(|e| *e));
    if got.is_err() && now < EXPIRES {
        assert_eq!(r.state, before, "a refused cancel changes nothing");
    }
}

#[test]
fn cancel_by_session_or_requester_only_while_pending() {
    use CancelBy::{Requester, Session};
    check_cancel(&[], Session("s1"), 300, Ok(State::Cancelled));
    check_cancel(&[], Requester("alice"), 300, Ok(State::Cancelled));
    check_cancel(&[], Session("s2"), 300, Err("NotYours"));
    check_cancel(&[], Requester("bob"), 300, Err("NotYours"));
    check_cancel(&[], Session("s1"), EXPIRES, Err("Expired"));
    check_cancel(&[("bob", A)], Session("s1"), 300, Err("AlreadyDecided"));
    check_cancel(
        &[("bob", D)],
        Requester("alice"),
        300,
        Err("AlreadyDecided"),
    );
}

#[track_caller]
fn check_invalid(edit: impl FnOnce(&mut NewReview)) {
    let mut new = new_command(1, None);
    edit(&mut new);
    let id = ReviewId::parse("rv-abcdefghij").expect("a valid literal id");
    let got = Review::new(id, new, CREATED).map(|_| ());
    assert_eq!(got.map_err(|e| rule(&e)), Err("InvalidRequest"));
}

#[test]
fn inconsistent_requests_are_refused() {
    check_invalid(|n| n.session_id = None);
    check_invalid(|n| n.command = None);
    check_invalid(|n| n.quorum = 0);
    check_invalid(|n| n.approvers.clear());
    check_invalid(|n| n.requester.subject.clear());
    check_invalid(|n| n.requester.groups.push("a\nb".to_owned()));
    check_invalid(|n| n.expires_at = CREATED);
    check_invalid(|n| n.expires_at = u64::MAX);
    check_invalid(|n| n.window = Some(0));
    check_invalid(|n| {
        *n = NewReview {
            window: None,
            ..new_session(1)
        }
    });
    check_invalid(|n| {
        *n = NewReview {
            command: Some("x".to_owned()),
            ..new_session(1)
        }
    });
}

#[track_caller]
fn check_id(input: &str, want: Option<&str>) {
    assert_eq!(
        ReviewId::parse(input).ok().as_ref().map(ReviewId::as_str),
        want,
        "{input:?}"
    );
}

#[test]
fn review_ids_parse_what_people_type() {
    check_id("rv-abcdefghij", Some("rv-abcdefghij"));
    check_id("  RV-ABCDEFGHIJ\n", Some("rv-abcdefghij"));
    check_id("rv-23456789ab", Some("rv-23456789ab"));
    check_id("rv-abcdefghi", None); // too short
    check_id("rv-abcdefghijk", None); // too long
    check_id("rv-abcdefgh0j", None); // 0 is not in the alphabet (looks like o)
    check_id("rv-abcdefghil", None); // neither is l (looks like 1)
    check_id("xx-abcdefghij", None);
    check_id("rv-abcdéfghij", None);
    check_id("", None);
}

#[test]
fn generated_ids_parse_and_differ() {
    let ids: BTreeSet<String> = (0..1_000)
        .map(|_| {
            let id = ReviewId::generate().expect("the OS has randomness");
            assert_eq!(ReviewId::parse(id.as_str()).ok(), Some(id.clone()));
            id.to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1_000);
}

#[test]
fn command_hash_binds_every_field_and_their_boundaries() {
    let base = command_hash("postgres", "pg/prod", "s1", DROP);
    assert_eq!(base, command_hash("postgres", "pg/prod", "s1", DROP));
    for other in [
        command_hash("mysql", "pg/prod", "s1", DROP),
        command_hash("postgres", "pg/prod2", "s1", DROP),
        command_hash("postgres", "pg/prod", "s2", DROP),
        command_hash("postgres", "pg/prod", "s1", "DROP TABLE orders;"),
        command_hash("postgres", "pg/pro", "ds1", DROP),
    ] {
        assert_ne!(base, other);
    }
    assert_eq!(base.to_string().len(), 64);
}

/// Checks what must hold for every review, whatever happened to it.
#[track_caller]
pub(crate) fn assert_invariants(r: &Review) {
    let approvers = approving_subjects(r);
    for d in &r.decisions {
        assert_ne!(d.by, r.requester.subject, "the requester decided: {r:?}");
        assert!(
            who(&d.by).groups.contains(&r.approvers),
            "an outsider decided: {r:?}"
        );
    }
    let distinct_quorum = u32::try_from(approvers.len()).unwrap_or(u32::MAX) >= r.quorum;
    match r.state {
        State::Approved => assert!(
            distinct_quorum && r.approved_at.is_some(),
            "approved without quorum: {r:?}"
        ),
        _ => assert!(
            r.approved_at.is_none(),
            "approval time without approval: {r:?}"
        ),
    }
    let denied = r.decisions.iter().any(|d| d.verdict == Verdict::Deny);
    assert_eq!(
        r.state == State::Denied,
        denied,
        "deny and state disagree: {r:?}"
    );
    assert!(
        !r.consumed || r.state == State::Approved,
        "consumed but not approved: {r:?}"
    );
}

/// A tiny xorshift PRNG, so the randomized tests are reproducible from a seed.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

pub(crate) const PEOPLE: &[&str] = &["alice", "bob", "carol", "dave", "erin", ""];
pub(crate) const SESSIONS: &[&str] = &["s1", "s2", ""];

#[test]
fn random_sequences_never_panic_and_keep_the_invariants() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let quorum = 1 + u32::try_from(rng.below(3)).unwrap_or(0);
        let window = [None, Some(30)][usize::from(rng.below(2) == 1)];
        let mut r = review(new_command(quorum, window));
        let mut now = CREATED;
        for _ in 0..12 {
            now += rng.below(200);
            let before = r.state;
            let snapshot = r.clone();
            let refused = match rng.below(5) {
                0 | 1 => decide(&mut r, &who(rng.pick(PEOPLE)), A, "r", now).is_err(),
                2 => decide(&mut r, &who(rng.pick(PEOPLE)), D, "r", now).is_err(),
                3 => cancel(&mut r, CancelBy::Session(rng.pick(SESSIONS)), now).is_err(),
                _ => {
                    let session = rng.pick(SESSIONS);
                    let hash = command_hash("postgres", "pg/prod", session, DROP);
                    !take(&mut r, session, &hash, now)
                }
            };
            if before.is_terminal() {
                assert_eq!(r.state, before, "a terminal state changed");
            }
            if refused && r.state == before {
                assert_eq!(r, snapshot, "a refused step changed the review");
            }
            assert_invariants(&r);
        }
    }
}

#[test]
fn a_review_survives_json_unchanged() {
    let mut r = review(new_command(2, Some(600)));
    decide(&mut r, &who("bob"), A, "looks right", 200).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"id\":\"rv-abcdefghij\""), "{json}");
    assert!(json.contains("\"state\":\"pending\""), "{json}");
    assert!(json.contains("\"verdict\":\"approve\""), "{json}");
    let back: Review = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // A malformed id or hash is refused, not carried along.
    let bad = json.replace("rv-abcdefghij", "rv-0");
    assert!(serde_json::from_str::<Review>(&bad).is_err());
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    let base = serde_json::to_vec(&review(new_command(2, Some(u64::MAX / 2)))).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut data = base.clone();
        for _ in 0..(next() % 6) {
            let i = (next() as usize) % data.len();
            data[i] = next() as u8;
        }
        crate::fuzz_decode(&data);
    }
    for huge in ["18446744073709551615", "0"] {
        let json = String::from_utf8(base.clone()).unwrap();
        let json = json.replace("\"expires_at\":1000", &format!("\"expires_at\":{huge}"));
        crate::fuzz_decode(json.as_bytes());
    }
}
