//! The embedded review store: one SQLite file in WAL mode (or memory).
//!
//! Every operation is one `BEGIN IMMEDIATE` transaction: it takes SQLite's
//! write lock before reading, so two deciders (threads, or processes sharing
//! the file) can never both read "one approval so far" and both count
//! themselves as the second. The rules themselves live in [`crate::rules`];
//! this file only loads, applies and saves.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{Filter, Store};
use crate::error::ReviewError;
use crate::model::{
    CancelBy, CommandHash, Decision, Kind, NewReview, Principal, Review, ReviewId, State, Verdict,
};
use crate::rules;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_groups TEXT NOT NULL,
    session_id TEXT,
    resource TEXT NOT NULL,
    protocol TEXT NOT NULL,
    command TEXT,
    command_hash BLOB NOT NULL,
    guard_or_grant TEXT NOT NULL,
    approvers TEXT NOT NULL,
    quorum INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    window_secs INTEGER,
    state TEXT NOT NULL,
    approved_at INTEGER,
    consumed INTEGER NOT NULL,
    policy_revision TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_state ON reviews (state, expires_at);
CREATE INDEX IF NOT EXISTS reviews_by_session ON reviews (session_id, command_hash);
CREATE TABLE IF NOT EXISTS decisions (
    review_id TEXT NOT NULL REFERENCES reviews (id),
    seq INTEGER NOT NULL,
    by_subject TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (review_id, seq)
);
";

const COLUMNS: &str = "id, kind, requester, requester_groups, session_id, resource, protocol, \
    command, command_hash, guard_or_grant, approvers, quorum, created_at, expires_at, \
    window_secs, state, approved_at, consumed, policy_revision";

// A writer waits this long for another writer before the call fails; reviews
// are tiny transactions, so hitting it means something is badly stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reviews in SQLite. One connection behind a mutex: callers are
/// `spawn_blocking` tasks, and SQLite serializes writers anyway.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl From<rusqlite::Error> for ReviewError {
    fn from(e: rusqlite::Error) -> Self {
        ReviewError::Storage(Box::new(e))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, ReviewError> {
        let conn = Connection::open(path)?;
        // WAL lets readers (list, get) proceed while a decide is writing.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        SqliteStore::init(conn)
    }

    /// A store that lives only as long as this value; for tests and demos.
    pub fn open_in_memory() -> Result<SqliteStore, ReviewError> {
        SqliteStore::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, ReviewError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let found: Option<i64> =
            tx.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?;
        match found {
            None => {
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(ReviewError::UnsupportedSchema {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
        }
        tx.commit()?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one immediate transaction, committing whatever it saved
    /// even when it returns a refusal (an expiry noticed on the way is real).
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ReviewError>,
    ) -> Result<T, ReviewError> {
        // A panic elsewhere while holding the lock cannot leave a half-done
        // transaction behind (it rolls back on drop), so the connection is
        // still sound.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx);
        tx.commit()?;
        out
    }
}

impl Store for SqliteStore {
    fn create(&self, new: NewReview, now: u64) -> Result<Review, ReviewError> {
        let review = Review::new(ReviewId::generate()?, new, now)?;
        self.write(|tx| {
            insert(tx, &review)?;
            Ok(review)
        })
    }

    fn get(&self, id: &ReviewId, now: u64) -> Result<Review, ReviewError> {
        self.write(|tx| {
            let mut review = load(tx, id)?;
            if rules::expire(&mut review, now) {
                save(tx, &review)?;
            }
            Ok(review)
        })
    }

    fn list(&self, filter: &Filter, now: u64) -> Result<Vec<Review>, ReviewError> {
        self.write(|tx| {
            expire_due(tx, now)?;
            let sql = format!(
                "SELECT {COLUMNS} FROM reviews WHERE (?1 IS NULL OR state = ?1) \
                 AND (?2 IS NULL OR resource = ?2) AND (?3 IS NULL OR requester = ?3) \
                 ORDER BY created_at, id"
            );
            let state = filter.state.map(State::as_str);
            query(tx, &sql, params![state, filter.resource, filter.requester])
        })
    }

    fn decide(
        &self,
        id: &ReviewId,
        actor: &Principal,
        verdict: Verdict,
        reason: &str,
        now: u64,
    ) -> Result<Review, ReviewError> {
        self.write(|tx| {
            let mut review = load(tx, id)?;
            let expired = rules::expire(&mut review, now);
            let outcome = rules::decide(&mut review, actor, verdict, reason, now);
            if expired || outcome.is_ok() {
                save(tx, &review)?;
            }
            outcome.map(|()| review)
        })
    }

    fn cancel(&self, id: &ReviewId, by: CancelBy<'_>, now: u64) -> Result<Review, ReviewError> {
        self.write(|tx| {
            let mut review = load(tx, id)?;
            let expired = rules::expire(&mut review, now);
            let outcome = rules::cancel(&mut review, by, now);
            if expired || outcome.is_ok() {
                save(tx, &review)?;
            }
            outcome.map(|()| review)
        })
    }

    fn expire_due(&self, now: u64) -> Result<Vec<Review>, ReviewError> {
        self.write(|tx| expire_due(tx, now))
    }

    fn take_approved(
        &self,
        session_id: &str,
        hash: &CommandHash,
        now: u64,
    ) -> Result<Option<Review>, ReviewError> {
        self.write(|tx| {
            let sql = format!(
                "SELECT {COLUMNS} FROM reviews WHERE kind = 'command' AND state = 'approved' \
                 AND session_id = ?1 AND command_hash = ?2 ORDER BY approved_at, id"
            );
            for mut review in query(tx, &sql, params![session_id, hash.0.as_slice()])? {
                if rules::take(&mut review, session_id, hash, now) {
                    save(tx, &review)?;
                    return Ok(Some(review));
                }
            }
            Ok(None)
        })
    }

    fn active_window(
        &self,
        subject: &str,
        resource: &str,
        now: u64,
    ) -> Result<Option<Review>, ReviewError> {
        self.write(|tx| {
            let sql = format!(
                "SELECT {COLUMNS} FROM reviews WHERE kind = 'session' AND state = 'approved' \
                 AND requester = ?1 AND resource = ?2 ORDER BY approved_at DESC, id"
            );
            let found = query(tx, &sql, params![subject, resource])?;
            Ok(found
                .into_iter()
                .find(|r| rules::opens_window(r, subject, resource, now)))
        })
    }
}

fn expire_due(tx: &Transaction<'_>, now: u64) -> Result<Vec<Review>, ReviewError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM reviews WHERE state = 'pending' AND expires_at <= ?1 \
         ORDER BY expires_at, id"
    );
    let mut due = query(tx, &sql, [time(now)])?;
    due.retain_mut(|r| rules::expire(r, now));
    for review in &due {
        save(tx, review)?;
    }
    Ok(due)
}

fn insert(tx: &Transaction<'_>, r: &Review) -> Result<(), ReviewError> {
    tx.execute(
        &format!(
            "INSERT INTO reviews ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        ),
        params![
            r.id.as_str(),
            kind_str(r.kind),
            r.requester.subject,
            r.requester.groups.join("\n"),
            r.session_id,
            r.resource,
            r.protocol,
            r.command,
            r.command_hash.0.as_slice(),
            r.guard_or_grant,
            r.approvers,
            r.quorum,
            time(r.created_at),
            time(r.expires_at),
            r.window.map(time),
            r.state.as_str(),
            r.approved_at.map(time),
            r.consumed,
            r.policy_revision,
        ],
    )?;
    insert_decisions(tx, r, 0)
}

/// Saves what rules may change: state, approval time, consumption and new
/// decisions (decisions are append-only, so only the tail is written).
fn save(tx: &Transaction<'_>, r: &Review) -> Result<(), ReviewError> {
    tx.execute(
        "UPDATE reviews SET state = ?2, approved_at = ?3, consumed = ?4 WHERE id = ?1",
        params![
            r.id.as_str(),
            r.state.as_str(),
            r.approved_at.map(time),
            r.consumed
        ],
    )?;
    let stored: i64 = tx.query_row(
        "SELECT COUNT(*) FROM decisions WHERE review_id = ?1",
        [r.id.as_str()],
        |row| row.get(0),
    )?;
    insert_decisions(tx, r, usize::try_from(stored).unwrap_or(usize::MAX))
}

fn insert_decisions(tx: &Transaction<'_>, r: &Review, from: usize) -> Result<(), ReviewError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO decisions (review_id, seq, by_subject, verdict, reason, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, d) in r.decisions.iter().enumerate().skip(from) {
        let verdict = match d.verdict {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        stmt.execute(params![
            r.id.as_str(),
            seq,
            d.by,
            verdict,
            d.reason,
            time(d.at)
        ])?;
    }
    Ok(())
}

fn load(tx: &Transaction<'_>, id: &ReviewId) -> Result<Review, ReviewError> {
    let sql = format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1");
    let raw = tx
        .query_row(&sql, [id.as_str()], RawReview::from_row)
        .optional()?;
    let raw = raw.ok_or_else(|| ReviewError::UnknownReview { id: id.clone() })?;
    raw.into_review(tx)
}

fn query(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Review>, ReviewError> {
    let mut stmt = tx.prepare(sql)?;
    let raws = stmt
        .query_map(params, RawReview::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(|raw| raw.into_review(tx)).collect()
}

/// A row as SQLite holds it, before it is checked into a [`Review`]; the
/// check is separate so a damaged row is an error, never a panic.
struct RawReview {
    id: String,
    kind: String,
    requester: String,
    requester_groups: String,
    session_id: Option<String>,
    resource: String,
    protocol: String,
    command: Option<String>,
    command_hash: Vec<u8>,
    guard_or_grant: String,
    approvers: String,
    quorum: i64,
    created_at: i64,
    expires_at: i64,
    window: Option<i64>,
    state: String,
    approved_at: Option<i64>,
    consumed: bool,
    policy_revision: String,
}

impl RawReview {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawReview> {
        Ok(RawReview {
            id: row.get(0)?,
            kind: row.get(1)?,
            requester: row.get(2)?,
            requester_groups: row.get(3)?,
            session_id: row.get(4)?,
            resource: row.get(5)?,
            protocol: row.get(6)?,
            command: row.get(7)?,
            command_hash: row.get(8)?,
            guard_or_grant: row.get(9)?,
            approvers: row.get(10)?,
            quorum: row.get(11)?,
            created_at: row.get(12)?,
            expires_at: row.get(13)?,
            window: row.get(14)?,
            state: row.get(15)?,
            approved_at: row.get(16)?,
            consumed: row.get(17)?,
            policy_revision: row.get(18)?,
        })
    }

    fn into_review(self, tx: &Transaction<'_>) -> Result<Review, ReviewError> {
        let corrupt = |what| ReviewError::Corrupt {
            id: self.id.clone(),
            what,
        };
        let id = ReviewId::parse(&self.id).map_err(|_| corrupt("bad id"))?;
        let kind = match self.kind.as_str() {
            "command" => Kind::Command,
            "session" => Kind::Session,
            _ => return Err(corrupt("unknown kind")),
        };
        let state = State::parse(&self.state).ok_or_else(|| corrupt("unknown state"))?;
        let hash = <[u8; 32]>::try_from(self.command_hash.as_slice())
            .map_err(|_| corrupt("bad command hash"))?;
        let untime = |t: i64| u64::try_from(t).map_err(|_| corrupt("negative time"));
        let groups = match self.requester_groups.as_str() {
            "" => Vec::new(),
            s => s.split('\n').map(str::to_owned).collect(),
        };
        Ok(Review {
            decisions: load_decisions(tx, &id)?,
            id,
            kind,
            requester: Principal {
                subject: self.requester,
                groups,
            },
            session_id: self.session_id,
            resource: self.resource,
            protocol: self.protocol,
            command: self.command,
            command_hash: CommandHash(hash),
            guard_or_grant: self.guard_or_grant,
            approvers: self.approvers,
            quorum: u32::try_from(self.quorum).map_err(|_| corrupt("bad quorum"))?,
            created_at: untime(self.created_at)?,
            expires_at: untime(self.expires_at)?,
            window: self.window.map(untime).transpose()?,
            state,
            approved_at: self.approved_at.map(untime).transpose()?,
            consumed: self.consumed,
            policy_revision: self.policy_revision,
        })
    }
}

fn load_decisions(tx: &Transaction<'_>, id: &ReviewId) -> Result<Vec<Decision>, ReviewError> {
    let mut stmt = tx.prepare_cached(
        "SELECT by_subject, verdict, reason, at FROM decisions WHERE review_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let corrupt = |what| ReviewError::Corrupt {
        id: id.to_string(),
        what,
    };
    rows.into_iter()
        .map(|(by, verdict, reason, at)| {
            let verdict = match verdict.as_str() {
                "approve" => Verdict::Approve,
                "deny" => Verdict::Deny,
                _ => return Err(corrupt("unknown verdict")),
            };
            let at = u64::try_from(at).map_err(|_| corrupt("negative time"))?;
            Ok(Decision {
                by,
                verdict,
                reason,
                at,
            })
        })
        .collect()
}

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Command => "command",
        Kind::Session => "session",
    }
}

/// Times are validated to fit at creation; `now` from a caller is clamped
/// rather than refused, because a far-future `now` only makes things expire.
fn time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
