//! Sans-I/O PostgreSQL protocol core for the gateway.
//!
//! This crate never touches a socket or a runtime; `gatewayd` drives it from
//! its tokio relay. It has four parts:
//!
//! - [`codec`]: framing and typed views of every message in both directions,
//!   plus the encoders the gateway needs. Lengths are validated against a
//!   caller-chosen maximum before anything is buffered.
//! - [`scram`]: the SCRAM-SHA-256 client and MD5 hash used to log in upstream.
//! - [`login`]: the upstream login exchange as a small state machine.
//! - [`relay`]: the session state machine between client and server: what to
//!   forward, what to ask policy about, how a denial is carried out without
//!   desynchronizing the two sides, and where results can be masked.
//!
//! **Invariant:** bytes from a peer never panic; they yield
//! [`ProtocolViolation`] naming the side that sent them.
//!
//! **Deliberately absent:** I/O, TLS, policy decisions, SQL parsing, clocks.

#![forbid(unsafe_code)]

pub mod codec;
mod error;
pub mod login;
pub mod relay;
pub mod scram;

pub use codec::{Backend, BackendMessage, Frontend, FrontendMessage, PgStr, Startup};
pub use error::{AuthError, ProtocolViolation, Side};
pub use relay::{BackendStep, CommandText, FrontendStep, Relay, RelayConfig, Verdict};

/// Fuzz entry point: feeds arbitrary bytes to every decoder and to a relay.
///
/// Used by `fuzz/fuzz_targets/pg_codec.rs` and by the seeded no-panic test.
/// The first byte picks how the rest is split between the client and server
/// streams, so the relay sees interleavings too.
pub fn fuzz_codec(data: &[u8]) {
    use bytes::BytesMut;

    let _ = codec::decode_startup(&mut BytesMut::from(data), codec::DEFAULT_MAX_STARTUP_LEN);
    drain(data, |b| {
        codec::decode_frontend(b, 1 << 16).map(|m| m.is_some())
    });
    drain(data, |b| {
        codec::decode_backend(b, 1 << 16).map(|m| m.is_some())
    });
    relay::fuzz_relay(data);

    fn drain(
        data: &[u8],
        mut decode: impl FnMut(&mut BytesMut) -> Result<bool, ProtocolViolation>,
    ) {
        let mut buf = BytesMut::from(data);
        while let Ok(true) = decode(&mut buf) {}
    }
}
