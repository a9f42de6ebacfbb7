//! The review model: plain data, plus the id and command-hash constructors.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ReviewError;

/// What a review approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One command in one session (optionally reusable for a window).
    Command,
    /// An access window: permission to open sessions to a resource for a while.
    Session,
}

/// Where a review is in its life. Everything but `Pending` is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

/// Who someone is, as the gateway token says: a subject and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub subject: String,
    pub groups: Vec<String>,
}

/// One approver's decision, kept forever with the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    pub verdict: Verdict,
    pub reason: String,
    pub at: u64,
}

/// Who is cancelling: the session that asked (its client cancelled or
/// disconnected) or the requester in person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelBy<'a> {
    Session(&'a str),
    Requester(&'a str),
}

/// A review id: `rv-` and 10 characters from an alphabet without the
/// lookalikes 0/o and 1/l, so it can be read aloud and typed. 50 random bits
/// make it unguessable within a review's short life.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ReviewId(String);

const ID_PREFIX: &str = "rv-";
const ID_LEN: usize = 10;
const ID_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

impl ReviewId {
    /// A fresh random id.
    pub fn generate() -> Result<ReviewId, ReviewError> {
        let mut bytes = [0u8; ID_LEN];
        getrandom::fill(&mut bytes).map_err(|_| ReviewError::Random)?;
        // The alphabet has exactly 32 symbols, so masking keeps the draw uniform.
        let tail: String = bytes
            .iter()
            .map(|b| char::from(ID_ALPHABET[usize::from(b & 31)]))
            .collect();
        Ok(ReviewId(format!("{ID_PREFIX}{tail}")))
    }

    /// Parses what a person typed; case and surrounding spaces do not matter.
    pub fn parse(input: &str) -> Result<ReviewId, ReviewError> {
        let lower = input.trim().to_ascii_lowercase();
        let ok = lower.strip_prefix(ID_PREFIX).is_some_and(|tail| {
            tail.len() == ID_LEN && tail.bytes().all(|b| ID_ALPHABET.contains(&b))
        });
        if ok {
            Ok(ReviewId(lower))
        } else {
            Err(ReviewError::InvalidId {
                input: input.chars().take(64).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<ReviewId> for String {
    fn from(id: ReviewId) -> String {
        id.0
    }
}

impl TryFrom<String> for ReviewId {
    type Error = ReviewError;
    fn try_from(s: String) -> Result<ReviewId, ReviewError> {
        ReviewId::parse(&s)
    }
}

impl fmt::Display for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// BLAKE3 of exactly what an approval covers; see [`command_hash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CommandHash(pub [u8; 32]);

impl From<CommandHash> for String {
    fn from(h: CommandHash) -> String {
        h.to_string()
    }
}

impl TryFrom<String> for CommandHash {
    type Error = &'static str;
    fn try_from(s: String) -> Result<CommandHash, &'static str> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err("a command hash is 64 hex digits");
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| "not hex")?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| "not hex")?;
        }
        Ok(CommandHash(out))
    }
}

impl fmt::Display for CommandHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The hash an approval is bound to: protocol, resource, session and the
/// exact command text. Each field is length-prefixed, so no two different
/// field splits hash alike (`("ab", "c")` vs `("a", "bc")`), and the key is
/// domain-separated so this hash is never confused with another BLAKE3 use.
pub fn command_hash(
    protocol: &str,
    resource: &str,
    session_id: &str,
    command: &str,
) -> CommandHash {
    let mut h = blake3::Hasher::new_derive_key("gw-review 2026 command hash v1");
    for field in [protocol, resource, session_id, command] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    CommandHash(*h.finalize().as_bytes())
}

/// What a caller supplies to ask for a review; the store adds the id, the
/// hash, the creation time and the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub kind: Kind,
    pub requester: Principal,
    /// The requesting session; required for `Command`, absent for `Session`.
    pub session_id: Option<String>,
    pub resource: String,
    pub protocol: String,
    /// The exact command text; required for `Command`, absent for `Session`.
    pub command: Option<String>,
    /// The name of the guard (or grant) that asked for this review.
    pub guard_or_grant: String,
    /// The group whose members may decide.
    pub approvers: String,
    /// How many distinct approvers must approve (at least 1).
    pub quorum: u32,
    /// Seconds since the epoch after which an undecided review is expired.
    pub expires_at: u64,
    /// For `Command`: reuse the approval for the same command in the same
    /// session for this many seconds. For `Session`: how long the access
    /// window stays open (required).
    pub window: Option<u64>,
    pub policy_revision: String,
}

/// An approval request and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub kind: Kind,
    pub requester: Principal,
    pub session_id: Option<String>,
    pub resource: String,
    pub protocol: String,
    pub command: Option<String>,
    pub command_hash: CommandHash,
    pub guard_or_grant: String,
    pub approvers: String,
    pub quorum: u32,
    pub created_at: u64,
    pub expires_at: u64,
    pub window: Option<u64>,
    pub state: State,
    pub decisions: Vec<Decision>,
    pub approved_at: Option<u64>,
    pub consumed: bool,
    pub policy_revision: String,
}

// Times go into SQLite (and later PostgreSQL) as signed 64-bit integers.
const MAX_TIME: u64 = i64::MAX as u64;

impl Review {
    /// A pending review, after checking that the request is consistent.
    pub fn new(id: ReviewId, req: NewReview, now: u64) -> Result<Review, ReviewError> {
        validate(&req, now)?;
        let hash = command_hash(
            &req.protocol,
            &req.resource,
            req.session_id.as_deref().unwrap_or(""),
            req.command.as_deref().unwrap_or(""),
        );
        Ok(Review {
            id,
            kind: req.kind,
            requester: req.requester,
            session_id: req.session_id,
            resource: req.resource,
            protocol: req.protocol,
            command: req.command,
            command_hash: hash,
            guard_or_grant: req.guard_or_grant,
            approvers: req.approvers,
            quorum: req.quorum,
            created_at: now,
            expires_at: req.expires_at,
            window: req.window,
            state: State::Pending,
            decisions: Vec::new(),
            approved_at: None,
            consumed: false,
            policy_revision: req.policy_revision,
        })
    }
}

fn validate(req: &NewReview, now: u64) -> Result<(), ReviewError> {
    let fail = |reason| Err(ReviewError::InvalidRequest { reason });
    match req.kind {
        Kind::Command if req.session_id.is_none() => {
            return fail("a command review needs a session");
        }
        Kind::Command if req.command.is_none() => {
            return fail("a command review needs the command");
        }
        Kind::Session if req.command.is_some() || req.session_id.is_some() => {
            return fail("a session review has no command and no session yet");
        }
        Kind::Session if req.window.is_none() => return fail("a session review needs a window"),
        _ => {}
    }
    if req.requester.subject.is_empty() {
        return fail("the requester has no subject");
    }
    if req
        .requester
        .groups
        .iter()
        .any(|g| g.is_empty() || g.contains('\n'))
    {
        // Groups are stored newline-separated.
        return fail("a requester group is empty or contains a newline");
    }
    if req.approvers.is_empty() {
        return fail("no approver group");
    }
    if req.quorum == 0 {
        return fail("quorum must be at least 1");
    }
    if req.expires_at <= now {
        return fail("the review would expire before it is created");
    }
    if req.expires_at > MAX_TIME || req.window.is_some_and(|w| w == 0 || w > MAX_TIME) {
        return fail("expiry or window out of range");
    }
    Ok(())
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Pending,
            State::Approved,
            State::Denied,
            State::Expired,
            State::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the state can never change again.
    pub fn is_terminal(self) -> bool {
        self != State::Pending
    }
}
