//! Gateway tokens in the daemon: verifying what clients present (with
//! revocation), issuing tokens after a login, and the revocation store.
//!
//! Revocations live in SQLite (`STATE/identity.sqlite`) and in memory: every
//! login of every session checks them, so the check is a hash lookup, and
//! every revocation is written through before it is acknowledged. A token
//! is revoked by id, or a principal's tokens issued up to an instant are.

use crate::audit::AuditEvent;
use crate::state::Gateway;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

pub(crate) struct Revocations {
    conn: Mutex<Connection>,
    /// Token id → its expiry (kept until then).
    ids: RwLock<HashMap<String, u64>>,
    /// Subject → tokens issued at or before this instant are revoked.
    principals: RwLock<HashMap<String, u64>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS revoked_tokens (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL, revoked_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_principals (
    subject TEXT PRIMARY KEY, before INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL, revoked_by TEXT NOT NULL);
";

impl Revocations {
    pub(crate) fn open(path: &Path) -> anyhow::Result<Revocations> {
        use anyhow::Context as _;
        let conn = Connection::open(path)
            .with_context(|| format!("opening the identity store {}", path.display()))?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let now = crate::audit::unix_now() as i64;
        conn.execute(
            "DELETE FROM revoked_tokens WHERE expires_at < ?1",
            params![now - 3600],
        )?;
        let ids = {
            let mut stmt = conn.prepare("SELECT id, expires_at FROM revoked_tokens")?;
            stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?
        };
        let principals = {
            let mut stmt = conn.prepare("SELECT subject, before FROM revoked_principals")?;
            stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?
        };
        Ok(Revocations {
            conn: Mutex::new(conn),
            ids: RwLock::new(ids),
            principals: RwLock::new(principals),
        })
    }

    pub(crate) fn is_revoked(&self, t: &gw_identity::Token) -> bool {
        let by_id = self
            .ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&t.id);
        by_id
            || self
                .principals
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&t.principal.subject)
                .is_some_and(|before| t.issued_at <= *before)
    }

    /// Revokes one token; written to disk before this returns.
    pub(crate) fn revoke_token(
        &self,
        id: &str,
        subject: &str,
        expires_at: u64,
        by: &str,
    ) -> anyhow::Result<()> {
        let now = crate::audit::unix_now();
        self.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute(
                "INSERT OR REPLACE INTO revoked_tokens VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, subject, expires_at as i64, now as i64, by],
            )?;
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), expires_at);
        Ok(())
    }

    /// Revokes every token of `subject` issued up to now.
    pub(crate) fn revoke_principal(&self, subject: &str, by: &str) -> anyhow::Result<()> {
        let now = crate::audit::unix_now();
        self.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute(
                "INSERT OR REPLACE INTO revoked_principals VALUES (?1, ?2, ?3, ?4)",
                params![subject, now as i64, now as i64, by],
            )?;
        self.principals
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(subject.to_owned(), now);
        Ok(())
    }
}

/// Verifies a token a client presented. `Err` is a message for the client.
pub(crate) fn verify(gw: &Gateway, presented: &str) -> Result<gw_identity::Token, String> {
    let presented = presented.trim();
    let now = crate::audit::unix_now();
    gw_identity::verify(presented, &gw.token_keys, now, |t| {
        gw.revocations.is_revoked(t)
    })
    .map_err(|e| {
        if gw_identity::looks_like_token(presented) {
            e.to_string()
        } else if looks_like_jwt(presented) {
            "this is a JWT (an identity provider's token?), not a gateway token: log in with `gwctl login` and use `gwctl token`".into()
        } else {
            "the password is not a gateway token".into()
        }
    })
}

fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// Issues a gateway token after a login; audited with how the person
/// logged in.
pub(crate) fn issue(
    gw: &Gateway,
    principal: &gw_policy::Principal,
    method: &str,
) -> anyhow::Result<(String, gw_identity::Token)> {
    let now = crate::audit::unix_now();
    let token = gw_identity::mint(
        &gw.token_key,
        &gw_identity::Mint {
            principal,
            now,
            lifetime_secs: gw.config.token_ttl.as_secs(),
        },
    )?;
    let verified = gw_identity::verify(&token, &gw.token_keys, now, |_| false)
        .map_err(|e| anyhow::anyhow!("a freshly minted token does not verify: {e}"))?;
    gw.audit.record(&AuditEvent::TokenIssued {
        principal: &principal.subject,
        groups: &principal.groups,
        token_id: &verified.id,
        expires_at: verified.expires_at,
        method,
    });
    Ok((token, verified))
}

/// Applies the configured group mapping: mapped names are renamed, others
/// pass unchanged; duplicates are dropped, order kept.
pub(crate) fn map_groups(map: &[(String, String)], groups: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        let name = map
            .iter()
            .find(|(from, _)| from == g)
            .map_or(g, |(_, to)| to);
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_mapped_and_deduplicated() {
        let map = vec![
            ("idp-dba".to_owned(), "dba".to_owned()),
            ("DBAs".to_owned(), "dba".to_owned()),
        ];
        let got = map_groups(&map, &["idp-dba".into(), "sre".into(), "DBAs".into()]);
        assert_eq!(got, ["dba", "sre"]);
    }

    #[test]
    fn revocations_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.sqlite");
        let r = Revocations::open(&path).unwrap();
        let t = |id: &str, sub: &str, iat: u64| gw_identity::Token {
            principal: gw_policy::Principal::new(sub, &[]),
            id: id.into(),
            issued_at: iat,
            expires_at: u64::MAX / 4,
            key_id: String::new(),
        };
        r.revoke_token("t1", "a", u64::MAX / 4, "admin").unwrap();
        r.revoke_principal("b", "admin").unwrap();
        let r = Revocations::open(&path).unwrap();
        assert!(r.is_revoked(&t("t1", "a", 1)));
        assert!(!r.is_revoked(&t("t2", "a", 1)));
        assert!(r.is_revoked(&t("t3", "b", 1)));
        // Tokens issued after the principal's revocation are fine.
        assert!(!r.is_revoked(&t("t4", "b", u64::MAX / 8)));
    }
}
