//! Errors of the protocol core, each naming the side that caused it.

use std::fmt;

/// Which party broke the protocol, so the audit log can say who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (`psql`, a driver) sent something malformed or out of order.
    Client,
    /// The real PostgreSQL server sent something malformed or unexpected.
    Upstream,
    /// The gateway itself misused the state machine (a bug, never peer input).
    Gateway,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Gateway => "gateway",
        })
    }
}

/// Bytes from a peer that do not follow the PostgreSQL protocol.
///
/// Decoders and the relay return this instead of panicking; the session should
/// then be closed, since the byte stream can no longer be trusted to be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{side} protocol violation: {reason}")]
pub struct ProtocolViolation {
    /// Who sent the offending bytes.
    pub side: Side,
    /// A short, fixed description (never contains peer data or secrets).
    pub reason: &'static str,
}

impl ProtocolViolation {
    pub(crate) fn new(side: Side, reason: &'static str) -> Self {
        ProtocolViolation { side, reason }
    }
}

/// Why logging in to the upstream server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The server's SCRAM or authentication messages were malformed.
    #[error("malformed {0} from server")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours (a replay or a broken server).
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    /// The iteration count is outside the accepted range (CPU exhaustion guard).
    #[error("scram iteration count {0} out of range")]
    Iterations(u32),
    /// The server could not prove it knows the password.
    #[error("server signature does not verify")]
    ServerSignature,
    /// The server reported a SCRAM error (`e=...`).
    #[error("server rejected scram exchange: {0}")]
    ServerError(String),
    /// The server asked for a method this client does not implement.
    #[error("unsupported authentication method {0}")]
    Unsupported(&'static str),
    /// The server sent an ErrorResponse during login (bad password, no such database...).
    #[error("upstream refused login: {sqlstate}: {message}")]
    Refused {
        /// SQLSTATE from the error.
        sqlstate: String,
        /// The server's message.
        message: String,
    },
    /// The framing itself was broken.
    #[error(transparent)]
    Violation(#[from] ProtocolViolation),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}
