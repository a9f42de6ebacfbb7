//! Wire codec: framing, startup packets, typed views of regular messages, encoders.
//!
//! Every decoder takes a `&mut BytesMut` that the caller fills from the socket.
//! It returns `Ok(None)` when more bytes are needed, consumes exactly one
//! message when it returns `Ok(Some(_))`, and returns [`ProtocolViolation`]
//! (never panics) when the bytes cannot be a valid message. The announced
//! length is checked against the caller's maximum *before* anything is
//! buffered or allocated for the body.
//!
//! Decoded messages keep their raw bytes (`raw`, tag and length included) so a
//! message that needs no change is forwarded without copying, next to a typed
//! view whose byte fields are cheap [`Bytes`] slices of that same buffer.

mod backend;
mod encode;
mod frontend;
mod reader;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

pub use backend::{
    Authentication, Backend, BackendMessage, Column, CopyResponse, DataRow, ErrorFields,
    decode_backend,
};
pub use encode::*;
pub use frontend::{
    Bind, Frontend, FrontendMessage, FunctionCall, Parse, SaslInitialResponse, Target,
    decode_frontend,
};

use crate::{ProtocolViolation, Side};
use reader::Reader;

/// Protocol 3.0, the version every server since 7.4 speaks.
pub const PROTOCOL_3_0: i32 = 196608;
/// Protocol 3.2 (PostgreSQL 18): longer cancel keys.
pub const PROTOCOL_3_2: i32 = 196610;
const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;
/// First byte of a TLS handshake record: a client using direct TLS (PG 17 `sslnegotiation=direct`).
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// The one-byte answer to SSLRequest when the gateway will do TLS next.
pub const SSL_ACCEPT: u8 = b'S';
/// The one-byte answer to SSLRequest or GSSENCRequest when it will not.
pub const SSL_REFUSE: u8 = b'N';

/// A reasonable default limit for a startup packet.
pub const DEFAULT_MAX_STARTUP_LEN: usize = 10 * 1024;

/// A string field: bytes up to (not including) the NUL terminator.
///
/// PostgreSQL strings are in the connection's `client_encoding`, so this is
/// not guaranteed to be UTF-8; [`PgStr::to_str`] checks.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PgStr(pub Bytes);

impl PgStr {
    /// The raw bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The text, if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// A lossy string for logs and errors.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl From<&str> for PgStr {
    fn from(s: &str) -> Self {
        PgStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for PgStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*String::from_utf8_lossy(&self.0), f)
    }
}

/// The first packet of a connection (no tag byte, just length and code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// The client asks whether TLS is available; answer one byte, [`SSL_ACCEPT`]
    /// or [`SSL_REFUSE`]. Before starting TLS the caller must check that the
    /// buffer holds no further bytes: plaintext sent ahead of the handshake
    /// would otherwise be taken as if it came over TLS (CVE-2021-23222).
    SslRequest,
    /// The client asks for GSSAPI encryption; the gateway answers `b'N'`.
    GssEncRequest,
    /// A cancel request on a fresh connection: the key the client was given.
    Cancel {
        /// Process ID from BackendKeyData.
        process_id: i32,
        /// Secret key from BackendKeyData (4 bytes before protocol 3.2, up to 256 after).
        secret_key: Bytes,
    },
    /// The real startup: protocol version and parameters (`user`, `database`, ...).
    Startup {
        /// [`PROTOCOL_3_0`] or [`PROTOCOL_3_2`]; other 3.x minors are kept so the
        /// caller can answer with NegotiateProtocolVersion.
        version: i32,
        /// Parameters in the order sent.
        params: Vec<(PgStr, PgStr)>,
    },
    /// The first byte is a TLS ClientHello: direct TLS. Nothing was consumed.
    DirectTls,
}

impl Startup {
    /// The value of one startup parameter.
    pub fn param(&self, name: &str) -> Option<&PgStr> {
        match self {
            Startup::Startup { params, .. } => params
                .iter()
                .find(|(k, _)| k.as_bytes() == name.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Decodes the first packet of a connection (call again after TLS for the real startup).
pub fn decode_startup(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<Startup>, ProtocolViolation> {
    let side = Side::Client;
    if buf.first() == Some(&TLS_HANDSHAKE_BYTE) {
        return Ok(Some(Startup::DirectTls));
    }
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 8 {
        return Err(ProtocolViolation::new(side, "startup length below 8"));
    }
    let len = len as usize;
    if len > max_len {
        return Err(ProtocolViolation::new(side, "startup packet too long"));
    }
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut packet = buf.split_to(len).freeze();
    packet.advance(4);
    let mut r = Reader::new(packet, side);
    let code = r.i32()?;
    let msg = match code {
        SSL_REQUEST => Startup::SslRequest,
        GSSENC_REQUEST => Startup::GssEncRequest,
        CANCEL_REQUEST => {
            let process_id = r.i32()?;
            let secret_key = r.rest();
            if !(4..=256).contains(&secret_key.len()) {
                return Err(ProtocolViolation::new(
                    side,
                    "cancel key length out of range",
                ));
            }
            return Ok(Some(Startup::Cancel {
                process_id,
                secret_key,
            }));
        }
        v if v >> 16 == 3 => Startup::Startup {
            version: v,
            params: startup_params(&mut r)?,
        },
        _ => return Err(ProtocolViolation::new(side, "unsupported protocol version")),
    };
    r.finish()?;
    Ok(Some(msg))
}

fn startup_params(r: &mut Reader) -> Result<Vec<(PgStr, PgStr)>, ProtocolViolation> {
    let mut params = Vec::new();
    loop {
        let name = r.cstr()?;
        if name.0.is_empty() {
            return Ok(params);
        }
        let value = r.cstr()?;
        params.push((name, value));
    }
}

/// Splits one tagged message (`tag`, `i32` length, body) off `buf`.
///
/// Returns the whole raw message; the length is validated before buffering.
fn split_frame(
    buf: &mut BytesMut,
    max_len: usize,
    side: Side,
) -> Result<Option<Bytes>, ProtocolViolation> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(ProtocolViolation::new(side, "message length below 4"));
    }
    let len = len as usize;
    if len > max_len {
        return Err(ProtocolViolation::new(side, "message too long"));
    }
    let total = len + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(buf.split_to(total).freeze()))
}

/// Data format of a parameter or result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Text representation (format code 0).
    Text,
    /// Binary representation (format code 1).
    Binary,
}

impl Format {
    pub(crate) fn from_code(code: i16, side: Side) -> Result<Self, ProtocolViolation> {
        match code {
            0 => Ok(Format::Text),
            1 => Ok(Format::Binary),
            _ => Err(ProtocolViolation::new(side, "format code not 0 or 1")),
        }
    }
    /// The wire code.
    pub fn code(self) -> i16 {
        match self {
            Format::Text => 0,
            Format::Binary => 1,
        }
    }
}

/// Transaction status from ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; queries are rejected until it ends.
    Failed,
}

impl TransactionStatus {
    /// The status byte.
    pub fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}
