//! SCRAM-SHA-256 client (RFC 5802, RFC 7677) and the MD5 password hash.
//!
//! The gateway uses this to log in to the upstream server with an injected
//! credential. Channel binding is not used (gs2 header `n,,`): the gateway's
//! upstream TLS is verified separately. Like libpq, the user name sent inside
//! SCRAM is empty, because PostgreSQL takes it from the startup packet.
//!
//! Limits: the password is used as UTF-8 bytes without SASLprep, which is the
//! identity for ASCII passwords; a non-ASCII password that SASLprep would
//! change fails to verify (the server reports a password error).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::AuthError;

/// Iteration counts the client accepts: PostgreSQL's default is 4096, and a
/// hostile server could otherwise make the gateway burn CPU.
pub const ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=1_000_000;

/// The SASL mechanism name.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

type HmacSha256 = Hmac<Sha256>;

/// One SCRAM-SHA-256 exchange, driven one server message at a time.
pub struct ScramClient {
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    state: State,
}

enum State {
    Initial,
    AwaitFinal { server_signature: [u8; 32] },
    Done,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client with a fresh random nonce (18 bytes, as libpq).
    pub fn new(password: &str) -> Result<Self, AuthError> {
        let mut raw = [0u8; 18];
        getrandom::fill(&mut raw).map_err(|_| AuthError::Random)?;
        Ok(Self::with_nonce("", password, &B64.encode(raw)))
    }

    /// A client with a fixed user name and nonce; for test vectors.
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            password: password.as_bytes().to_vec(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            state: State::Initial,
        }
    }

    /// The client-first message, to send in SASLInitialResponse.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Checks server-first and returns client-final, to send in SASLResponse.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::Initial) {
            return Err(AuthError::Malformed("scram message order"));
        }
        let server_first =
            std::str::from_utf8(msg).map_err(|_| AuthError::Malformed("server-first"))?;
        let (nonce, salt, iterations) = parse_server_first(server_first)?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(AuthError::NonceMismatch);
        }
        if !ITERATIONS.contains(&iterations) {
            return Err(AuthError::Iterations(iterations));
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let salted = hi(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.state = State::AwaitFinal {
            server_signature: hmac(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks server-final: the server proves it knew the password too.
    pub fn verify_server_final(&mut self, msg: &[u8]) -> Result<(), AuthError> {
        let State::AwaitFinal { server_signature } = self.state else {
            return Err(AuthError::Malformed("scram message order"));
        };
        let text = std::str::from_utf8(msg).map_err(|_| AuthError::Malformed("server-final"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(AuthError::ServerError(e.chars().take(100).collect()));
        }
        let v = text
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or(AuthError::Malformed("server-final"))?;
        let got = B64
            .decode(v)
            .map_err(|_| AuthError::Malformed("server-final"))?;
        if !constant_time_eq(&got, &server_signature) {
            return Err(AuthError::ServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }

    /// True once the server's signature has been verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

fn parse_server_first(msg: &str) -> Result<(&str, Vec<u8>, u32), AuthError> {
    let bad = AuthError::Malformed("server-first");
    let mut parts = msg.split(',');
    let mut next = |prefix: &str| parts.next().and_then(|p| p.strip_prefix(prefix));
    // RFC 5802: a mandatory extension (`m=`) we do not understand must fail.
    let nonce = next("r=").ok_or(bad.clone())?;
    let salt = next("s=").ok_or(bad.clone())?;
    let iterations = next("i=").ok_or(bad.clone())?;
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(bad);
    }
    let salt = B64.decode(salt).map_err(|_| bad.clone())?;
    let iterations = iterations.parse::<u32>().map_err(|_| bad)?;
    Ok((nonce, salt, iterations))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi()` of RFC 5802: PBKDF2-HMAC-SHA-256 with one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed = HmacSha256::new_from_slice(password).expect("hmac accepts any key length");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The PasswordMessage text for MD5 authentication:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let inner = hex(&Md5::digest(
        [password.as_bytes(), user.as_bytes()].concat(),
    ));
    let outer = hex(&Md5::digest([inner.as_bytes(), &salt].concat()));
    format!("md5{outer}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
