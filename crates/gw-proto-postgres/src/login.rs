//! Upstream login: the gateway logs in to the real server with an injected
//! credential, one server message at a time.
//!
//! ```text
//! let (mut login, startup) = UpstreamLogin::new("app", "db", password, &[]);
//! write(startup)
//! loop { match login.on_message(decode_backend(..))? {
//!     LoginStep::Send(bytes) => write(bytes),
//!     LoginStep::Wait => {}
//!     LoginStep::Done(ready) => break ready,   // server is idle: start the Relay
//! } }
//! ```
//!
//! SCRAM-SHA-256 is preferred; MD5 and cleartext are refused unless allowed
//! with [`UpstreamLogin::allow_weak_methods`], since a server that asks for
//! them can learn (or replay) the credential. TLS to the server is the
//! caller's job and should be on whenever the network is not trusted.

use std::fmt;

use bytes::Bytes;

use crate::codec::{self, Authentication, Backend, BackendMessage, PgStr, TransactionStatus};
use crate::scram::{SCRAM_SHA_256, ScramClient, md5_password};
use crate::{AuthError, ProtocolViolation, Side};

/// What the caller does next.
#[derive(Debug)]
pub enum LoginStep {
    /// Write these bytes to the server.
    Send(Bytes),
    /// Nothing to send; read the next message.
    Wait,
    /// Login finished and the server is ready for queries.
    Done(Ready),
}

/// What the server told us during login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// ParameterStatus values (server_version, client_encoding, ...), in order.
    pub parameters: Vec<(PgStr, PgStr)>,
    /// The server's cancel key, if it sent one.
    pub backend_key: Option<(i32, Bytes)>,
    /// Status of the first ReadyForQuery (always idle in practice).
    pub status: TransactionStatus,
}

/// The login exchange with the upstream server.
pub struct UpstreamLogin {
    user: String,
    password: String,
    allow_weak: bool,
    scram: Option<ScramClient>,
    authenticated: bool,
    ready: Ready,
}

impl fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("user", &self.user)
            .field("password", &"***")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl UpstreamLogin {
    /// Starts a login; returns the StartupMessage to send first.
    /// `extra` are further startup parameters (`application_name`, ...).
    pub fn new(
        user: &str,
        database: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> (Self, Bytes) {
        let mut params = vec![("user", user), ("database", database)];
        params.extend_from_slice(extra);
        let login = UpstreamLogin {
            user: user.to_owned(),
            password: password.to_owned(),
            allow_weak: false,
            scram: None,
            authenticated: false,
            ready: Ready {
                parameters: Vec::new(),
                backend_key: None,
                status: TransactionStatus::Idle,
            },
        };
        (login, codec::startup_message(&params))
    }

    /// Also answer MD5 and cleartext password requests.
    pub fn allow_weak_methods(mut self, allow: bool) -> Self {
        self.allow_weak = allow;
        self
    }

    /// Handles one server message.
    pub fn on_message(&mut self, msg: Backend) -> Result<LoginStep, AuthError> {
        match msg.msg {
            BackendMessage::Authentication(a) => self.authentication(a),
            BackendMessage::ParameterStatus { name, value } => {
                self.ready.parameters.push((name, value));
                Ok(LoginStep::Wait)
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                self.ready.backend_key = Some((process_id, secret_key));
                Ok(LoginStep::Wait)
            }
            BackendMessage::ReadyForQuery(status) if self.authenticated => {
                self.ready.status = status;
                Ok(LoginStep::Done(self.ready.clone()))
            }
            BackendMessage::ErrorResponse(f) => Err(AuthError::Refused {
                sqlstate: f.sqlstate().map(PgStr::to_string_lossy).unwrap_or_default(),
                message: f.message().map(PgStr::to_string_lossy).unwrap_or_default(),
            }),
            // We ask for 3.0, so the server can only report unknown options; none are sent.
            BackendMessage::NoticeResponse(_) | BackendMessage::NegotiateProtocolVersion { .. } => {
                Ok(LoginStep::Wait)
            }
            _ => Err(
                ProtocolViolation::new(Side::Upstream, "unexpected message during login").into(),
            ),
        }
    }

    fn authentication(&mut self, a: Authentication) -> Result<LoginStep, AuthError> {
        match a {
            Authentication::Ok => {
                if self.scram.as_ref().is_some_and(|s| !s.is_done()) {
                    // A server that skips SASLFinal has not proven it knows the password.
                    return Err(AuthError::ServerSignature);
                }
                self.authenticated = true;
                Ok(LoginStep::Wait)
            }
            Authentication::Sasl(mechs) => {
                if !mechs
                    .iter()
                    .any(|m| m.as_bytes() == SCRAM_SHA_256.as_bytes())
                {
                    return Err(AuthError::Unsupported("sasl without SCRAM-SHA-256"));
                }
                let scram = ScramClient::new(&self.password)?;
                let first = scram.client_first();
                self.scram = Some(scram);
                Ok(LoginStep::Send(codec::sasl_initial_response(
                    SCRAM_SHA_256,
                    &first,
                )))
            }
            Authentication::SaslContinue(data) => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::Malformed("sasl order"))?;
                Ok(LoginStep::Send(codec::sasl_response(
                    &scram.handle_server_first(&data)?,
                )))
            }
            Authentication::SaslFinal(data) => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::Malformed("sasl order"))?;
                scram.verify_server_final(&data)?;
                Ok(LoginStep::Wait)
            }
            Authentication::Md5Password { salt } if self.allow_weak => {
                let hashed = md5_password(&self.user, &self.password, salt);
                Ok(LoginStep::Send(codec::password_message(hashed.as_bytes())))
            }
            Authentication::CleartextPassword if self.allow_weak => Ok(LoginStep::Send(
                codec::password_message(self.password.as_bytes()),
            )),
            Authentication::Md5Password { .. } => Err(AuthError::Unsupported("md5")),
            Authentication::CleartextPassword => Err(AuthError::Unsupported("cleartext password")),
            Authentication::Other { .. } => Err(AuthError::Unsupported("kerberos, gss or sspi")),
        }
    }
}

#[cfg(test)]
mod tests;
