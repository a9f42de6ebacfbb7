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
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::{encode_backend, error_fields};

    fn be(msg: BackendMessage) -> Backend {
        let mut buf = BytesMut::from(&encode_backend(&msg)[..]);
        codec::decode_backend(&mut buf, 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn md5_login_only_when_allowed() {
        let md5 =
            BackendMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] });
        let (mut strict, _) = UpstreamLogin::new("postgres", "db", "secret", &[]);
        assert_eq!(
            strict.on_message(be(md5.clone())).unwrap_err(),
            AuthError::Unsupported("md5")
        );

        let (login, startup) =
            UpstreamLogin::new("postgres", "db", "secret", &[("application_name", "gw")]);
        let mut login = login.allow_weak_methods(true);
        let st = codec::decode_startup(&mut BytesMut::from(&startup[..]), 1024)
            .unwrap()
            .unwrap();
        assert_eq!(st.param("application_name"), Some(&PgStr::from("gw")));
        let LoginStep::Send(pw) = login.on_message(be(md5)).unwrap() else {
            panic!()
        };
        assert!(pw.ends_with(b"md5bb41a296aab6baccb36ff243a562abff\0"));
        // ReadyForQuery before AuthenticationOk is not a finished login.
        let rfq = BackendMessage::ReadyForQuery(TransactionStatus::Idle);
        assert!(login.on_message(be(rfq.clone())).is_err());
        login
            .on_message(be(BackendMessage::Authentication(Authentication::Ok)))
            .unwrap();
        let key = BackendMessage::BackendKeyData {
            process_id: 1,
            secret_key: Bytes::from_static(b"kkkk"),
        };
        login.on_message(be(key)).unwrap();
        let LoginStep::Done(ready) = login.on_message(be(rfq)).unwrap() else {
            panic!()
        };
        assert_eq!(ready.backend_key, Some((1, Bytes::from_static(b"kkkk"))));
    }

    #[test]
    fn ok_without_sasl_final_is_refused() {
        let (mut login, _) = UpstreamLogin::new("u", "d", "p", &[]);
        let sasl = Authentication::Sasl(vec![PgStr::from(SCRAM_SHA_256)]);
        assert!(matches!(
            login.on_message(be(BackendMessage::Authentication(sasl))),
            Ok(LoginStep::Send(_))
        ));
        let ok = BackendMessage::Authentication(Authentication::Ok);
        assert_eq!(
            login.on_message(be(ok)).unwrap_err(),
            AuthError::ServerSignature
        );
    }

    #[test]
    fn server_error_is_refused_login() {
        let (mut login, _) = UpstreamLogin::new("u", "d", "p", &[]);
        let err = BackendMessage::ErrorResponse(error_fields(
            "FATAL",
            "28P01",
            "password authentication failed",
            None,
            None,
        ));
        let got = login.on_message(be(err)).unwrap_err();
        assert_eq!(
            got,
            AuthError::Refused {
                sqlstate: "28P01".into(),
                message: "password authentication failed".into()
            }
        );
    }
}
