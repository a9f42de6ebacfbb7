//! Gateway tokens: what a client presents (as its PostgreSQL password, an SSH
//! keyboard-interactive answer or an HTTP bearer token) to prove who it is.
//!
//! A token is `gwt1.<payload>.<signature>`: the payload is base64url JSON
//! (`sub`, `grp`, `iat`, `exp`, `jti`, `aud`, `kid`), the signature is
//! Ed25519 over `gwt1.<payload>`. The gateway mints them (today with an
//! admin command; after OIDC login in issue #8) and verifies them on every
//! connection.
//!
//! **Invariants:** verification reads no clock (`now` is an argument) and
//! does no I/O (revocation is asked through a callback); a token is never
//! logged: [`Token`]'s `Debug` and `Display` print only its id. Signing keys
//! rotate by adding the new key to the verifier's set before minting with it.
#![forbid(unsafe_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gw_keys::{KeyId, PublicKey, SigningKey, TrustedKeys, key_id_hex};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "gwt1.";
/// The audience every gateway token carries.
pub const AUDIENCE: &str = "gatewayd";
/// Clock skew tolerated between the minting and the verifying machine.
pub const SKEW_SECS: u64 = 60;
/// The longest lifetime a token may have; anything longer is refused at
/// verification, so a leaked signing key cannot mint permanent access.
pub const MAX_LIFETIME_SECS: u64 = 24 * 3600;
/// Longer inputs are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    v: u32,
    sub: String,
    grp: Vec<String>,
    iat: u64,
    exp: u64,
    jti: String,
    aud: String,
    kid: String,
    /// Always `EdDSA`; checked so that a token claiming another algorithm
    /// is refused by name rather than by a confusing signature failure.
    #[serde(default)]
    alg: String,
}

/// The one signature algorithm gateway tokens use.
pub const ALGORITHM: &str = "EdDSA";

/// A verified token: whom it names, and until when.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub principal: gw_policy::Principal,
    pub id: String,
    pub issued_at: u64,
    pub expires_at: u64,
    pub key_id: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} for {})", self.id, self.principal.subject)
    }
}

/// Why a token was refused. Messages are safe to show the client: they
/// never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a gateway token")]
    Malformed,
    #[error("token signed by unknown key {0}")]
    UnknownKey(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token lifetime is longer than allowed")]
    TooLong,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token {0} has been revoked")]
    Revoked(String),
    #[error("token claims algorithm {0:?}; gateway tokens are EdDSA only")]
    WrongAlgorithm(String),
}

/// What to put in a new token.
pub struct Mint<'a> {
    pub principal: &'a gw_policy::Principal,
    pub now: u64,
    pub lifetime_secs: u64,
}

/// Mints a token. Fails only when the system has no randomness for its id.
pub fn mint(key: &SigningKey, m: &Mint<'_>) -> Result<String, gw_keys::KeyError> {
    mint_raw(
        key,
        m.principal,
        m.now,
        m.now.saturating_add(m.lifetime_secs.min(MAX_LIFETIME_SECS)),
        AUDIENCE,
        ALGORITHM,
    )
}

/// Mints a token with every claim chosen by the caller, including ones
/// [`verify`] refuses (another audience, another algorithm, a past expiry):
/// for tests of the refusal paths. Everything else uses [`mint`].
#[doc(hidden)]
pub fn mint_raw(
    key: &SigningKey,
    principal: &gw_policy::Principal,
    issued_at: u64,
    expires_at: u64,
    audience: &str,
    algorithm: &str,
) -> Result<String, gw_keys::KeyError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| gw_keys::KeyError::Random)?;
    let claims = Claims {
        v: 1,
        sub: principal.subject.clone(),
        grp: principal.groups.clone(),
        iat: issued_at,
        exp: expires_at,
        jti: id.iter().map(|b| format!("{b:02x}")).collect(),
        aud: audience.into(),
        kid: key_id_hex(&key.key_id()),
        alg: algorithm.into(),
    };
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signed = format!("{PREFIX}{payload}");
    let signature = B64.encode(key.sign(signed.as_bytes()));
    Ok(format!("{signed}.{signature}"))
}

/// Verifies `token` at `now` against `keys`; `revoked(token)` says whether
/// the token (by id) or its principal (by subject, issued before a cutoff)
/// has been revoked. It is asked only about tokens that are otherwise valid.
pub fn verify(
    token: &str,
    keys: &TrustedKeys,
    now: u64,
    revoked: impl Fn(&Token) -> bool,
) -> Result<Token, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (payload_b64, sig_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = B64.decode(payload_b64).map_err(|_| TokenError::Malformed)?;
    let sig: [u8; 64] = B64
        .decode(sig_b64)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.v != 1 {
        return Err(TokenError::Malformed);
    }
    let kid = parse_key_id(&claims.kid).ok_or(TokenError::Malformed)?;
    let key: &PublicKey = keys
        .get(&kid)
        .ok_or_else(|| TokenError::UnknownKey(claims.kid.clone()))?;
    let signed = &token[..PREFIX.len() + payload_b64.len()];
    if !key.verify(signed.as_bytes(), &sig) {
        return Err(TokenError::BadSignature);
    }
    // Only a correctly signed token's claims are worth explaining.
    if claims.aud != AUDIENCE {
        return Err(TokenError::WrongAudience);
    }
    if claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME_SECS {
        return Err(TokenError::TooLong);
    }
    if claims.iat > now.saturating_add(SKEW_SECS) {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.exp.saturating_add(SKEW_SECS) {
        return Err(TokenError::Expired);
    }
    if claims.alg != ALGORITHM {
        let alg = if claims.alg.is_empty() {
            "none".to_owned()
        } else {
            claims.alg.chars().take(16).collect()
        };
        return Err(TokenError::WrongAlgorithm(alg));
    }
    let token = Token {
        principal: gw_policy::Principal {
            subject: claims.sub,
            groups: claims.grp,
        },
        id: claims.jti,
        issued_at: claims.iat,
        expires_at: claims.exp,
        key_id: claims.kid,
    };
    if revoked(&token) {
        return Err(TokenError::Revoked(token.id));
    }
    Ok(token)
}

/// Whether a password looks like a gateway token at all (to tell "bad
/// token" from "not a token" in messages).
pub fn looks_like_token(s: &str) -> bool {
    s.starts_with(PREFIX)
}

fn parse_key_id(hex: &str) -> Option<KeyId> {
    if hex.len() != 16 {
        return None;
    }
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SigningKey, TrustedKeys, gw_policy::Principal) {
        let key = SigningKey::from_seed(&[7; 32]);
        let mut keys = TrustedKeys::new();
        keys.insert(key.public_key());
        (
            key,
            keys,
            gw_policy::Principal::new("alice@example.com", &["dba", "sre"]),
        )
    }

    fn token(key: &SigningKey, p: &gw_policy::Principal, now: u64, life: u64) -> String {
        mint(
            key,
            &Mint {
                principal: p,
                now,
                lifetime_secs: life,
            },
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let (key, keys, p) = setup();
        let t = verify(&token(&key, &p, 1000, 600), &keys, 1100, |_| false).unwrap();
        assert_eq!(t.principal, p);
        assert_eq!((t.issued_at, t.expires_at), (1000, 1600));
        assert!(
            !format!("{t:?}").contains("gwt1"),
            "Debug must not print the token"
        );
    }

    #[test]
    fn expired_and_future_tokens() {
        let (key, keys, p) = setup();
        let t = token(&key, &p, 1000, 600);
        assert_eq!(
            verify(&t, &keys, 1600 + SKEW_SECS, |_| false),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&t, &keys, 1000 - SKEW_SECS - 1, |_| false),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn forged_tokens() {
        let (key, keys, p) = setup();
        let t = token(&key, &p, 1000, 600);
        // Another key's signature.
        let other = SigningKey::from_seed(&[9; 32]);
        let foreign = token(&other, &p, 1000, 600);
        assert!(matches!(
            verify(&foreign, &keys, 1100, |_| false),
            Err(TokenError::UnknownKey(_))
        ));
        // A payload edited to add a group, with the old signature.
        let (payload, sig) = t[PREFIX.len()..].split_once('.').unwrap();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        claims["grp"] = serde_json::json!(["dba", "sre", "admin"]);
        let edited = format!(
            "{PREFIX}{}.{sig}",
            B64.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(
            verify(&edited, &keys, 1100, |_| false),
            Err(TokenError::BadSignature)
        );
        // Garbage of every shape.
        for bad in [
            "",
            "gwt1.",
            "gwt1.x.y",
            "Bearer abc",
            "gwt1.e30.AAAA",
            &"a".repeat(20_000),
        ] {
            assert_eq!(
                verify(bad, &keys, 1100, |_| false),
                Err(TokenError::Malformed),
                "{bad:.20}"
            );
        }
    }

    #[test]
    fn wrong_audience_and_lifetime() {
        let (key, keys, _) = setup();
        let sign = |claims: &Claims| {
            let payload = B64.encode(serde_json::to_vec(claims).unwrap());
            let signed = format!("{PREFIX}{payload}");
            format!("{signed}.{}", B64.encode(key.sign(signed.as_bytes())))
        };
        let mut c = Claims {
            v: 1,
            sub: "a".into(),
            grp: vec![],
            iat: 1000,
            exp: 1600,
            jti: "00".into(),
            aud: "other-service".into(),
            kid: key_id_hex(&key.key_id()),
            alg: ALGORITHM.into(),
        };
        assert_eq!(
            verify(&sign(&c), &keys, 1100, |_| false),
            Err(TokenError::WrongAudience)
        );
        c.aud = AUDIENCE.into();
        c.exp = 1000 + MAX_LIFETIME_SECS + 1;
        assert_eq!(
            verify(&sign(&c), &keys, 1100, |_| false),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn another_algorithm_is_refused_by_name() {
        let (key, keys, p) = setup();
        for (alg, shown) in [("HS256", "HS256"), ("", "none"), ("none", "none")] {
            let t = mint_raw(&key, &p, 1000, 1600, AUDIENCE, alg).unwrap();
            assert_eq!(
                verify(&t, &keys, 1100, |_| false),
                Err(TokenError::WrongAlgorithm(shown.into()))
            );
        }
    }

    #[test]
    fn revocation_by_id_or_principal() {
        let (key, keys, p) = setup();
        let t = token(&key, &p, 1000, 600);
        let id = verify(&t, &keys, 1100, |_| false).unwrap().id;
        assert_eq!(
            verify(&t, &keys, 1100, |t| t.id == id),
            Err(TokenError::Revoked(id.clone()))
        );
        assert!(
            verify(&t, &keys, 1100, |t| t.principal.subject
                == "alice@example.com")
            .is_err()
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let (old, mut keys, p) = setup();
        let t = token(&old, &p, 1000, 600);
        let new = SigningKey::from_seed(&[8; 32]);
        keys.insert(new.public_key());
        assert!(verify(&t, &keys, 1100, |_| false).is_ok());
        assert!(verify(&token(&new, &p, 1000, 600), &keys, 1100, |_| false).is_ok());
    }
}
