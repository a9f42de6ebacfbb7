//! Messages from the client (frontend) after startup.

use bytes::{Buf, Bytes, BytesMut};

use super::reader::Reader;
use super::{Format, PgStr, split_frame};
use crate::{ProtocolViolation, Side};

/// One frontend message: the raw bytes and a typed view of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// The whole message, tag and length included; forward this unchanged.
    pub raw: Bytes,
    /// The typed view.
    pub msg: FrontendMessage,
}

/// What a Describe or Close refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement(PgStr),
    /// `P`: a portal.
    Portal(PgStr),
}

/// Parse: create a prepared statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    /// Statement name; empty is the unnamed statement.
    pub name: PgStr,
    /// The SQL text.
    pub query: PgStr,
    /// Parameter type OIDs the client fixed (0 = unspecified).
    pub param_types: Vec<u32>,
}

/// Bind: create a portal from a statement and parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Portal name; empty is the unnamed portal.
    pub portal: PgStr,
    /// Source statement name.
    pub statement: PgStr,
    /// Parameter format codes (0, 1 or one per parameter).
    pub param_formats: Vec<Format>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<Bytes>>,
    /// Result column format codes (0 = all text, 1 = all the same, or one per column).
    pub result_formats: Vec<Format>,
}

/// FunctionCall: the legacy fast-path call of a function by OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// Function OID.
    pub oid: u32,
    /// Argument format codes.
    pub arg_formats: Vec<Format>,
    /// Argument values.
    pub args: Vec<Option<Bytes>>,
    /// Result format.
    pub result_format: Format,
}

/// The typed view of a frontend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// `Q`: simple query (may contain several statements).
    Query(PgStr),
    /// `P`
    Parse(Parse),
    /// `B`
    Bind(Bind),
    /// `D`
    Describe(Target),
    /// `E`
    Execute {
        /// Portal name.
        portal: PgStr,
        /// Row limit; 0 = no limit.
        max_rows: i32,
    },
    /// `C`
    Close(Target),
    /// `S`
    Sync,
    /// `H`
    Flush,
    /// `F`
    FunctionCall(FunctionCall),
    /// `d`
    CopyData(Bytes),
    /// `c`
    CopyDone,
    /// `f`: abort COPY FROM STDIN with this message.
    CopyFail(PgStr),
    /// `X`
    Terminate,
    /// `p`: PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse.
    /// Which one depends on the authentication exchange; use the `Frontend::as_*` helpers.
    Password(Bytes),
}

/// SASLInitialResponse: the chosen mechanism and the client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslInitialResponse {
    /// e.g. `SCRAM-SHA-256`.
    pub mechanism: PgStr,
    /// Client-first message; `None` if the length was -1.
    pub data: Option<Bytes>,
}

impl Frontend {
    /// The body of a `p` message read as a cleartext or MD5 PasswordMessage.
    pub fn as_password(&self) -> Result<PgStr, ProtocolViolation> {
        let mut r = Reader::new(self.password_body()?, Side::Client);
        let s = r.cstr()?;
        r.finish()?;
        Ok(s)
    }

    /// The body of a `p` message read as SASLInitialResponse.
    pub fn as_sasl_initial(&self) -> Result<SaslInitialResponse, ProtocolViolation> {
        let mut r = Reader::new(self.password_body()?, Side::Client);
        let mechanism = r.cstr()?;
        let data = r.nullable()?;
        r.finish()?;
        Ok(SaslInitialResponse { mechanism, data })
    }

    /// The body of a `p` message read as SASLResponse (opaque data).
    pub fn as_sasl_response(&self) -> Result<Bytes, ProtocolViolation> {
        self.password_body()
    }

    fn password_body(&self) -> Result<Bytes, ProtocolViolation> {
        match &self.msg {
            FrontendMessage::Password(b) => Ok(b.clone()),
            _ => Err(ProtocolViolation::new(
                Side::Client,
                "expected a password message",
            )),
        }
    }
}

/// Decodes one frontend message; unknown tags are violations.
pub fn decode_frontend(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<Frontend>, ProtocolViolation> {
    let Some(raw) = split_frame(buf, max_len, Side::Client)? else {
        return Ok(None);
    };
    let tag = raw[0];
    let mut body = raw.clone();
    body.advance(5);
    let mut r = Reader::new(body, Side::Client);
    let msg = decode_body(tag, &mut r)?;
    r.finish()?;
    Ok(Some(Frontend { raw, msg }))
}

fn decode_body(tag: u8, r: &mut Reader) -> Result<FrontendMessage, ProtocolViolation> {
    Ok(match tag {
        b'Q' => FrontendMessage::Query(r.cstr()?),
        b'P' => FrontendMessage::Parse(parse(r)?),
        b'B' => FrontendMessage::Bind(bind(r)?),
        b'D' => FrontendMessage::Describe(target(r)?),
        b'E' => FrontendMessage::Execute {
            portal: r.cstr()?,
            max_rows: r.i32()?,
        },
        b'C' => FrontendMessage::Close(target(r)?),
        b'S' => FrontendMessage::Sync,
        b'H' => FrontendMessage::Flush,
        b'F' => FrontendMessage::FunctionCall(function_call(r)?),
        b'd' => FrontendMessage::CopyData(r.rest()),
        b'c' => FrontendMessage::CopyDone,
        b'f' => FrontendMessage::CopyFail(r.cstr()?),
        b'X' => FrontendMessage::Terminate,
        b'p' => FrontendMessage::Password(r.rest()),
        _ => return Err(r.violation("unknown frontend message tag")),
    })
}

fn parse(r: &mut Reader) -> Result<Parse, ProtocolViolation> {
    let name = r.cstr()?;
    let query = r.cstr()?;
    let n = r.count_of(4)?;
    let mut param_types = Vec::with_capacity(n);
    for _ in 0..n {
        param_types.push(r.u32()?);
    }
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

fn bind(r: &mut Reader) -> Result<Bind, ProtocolViolation> {
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let param_formats = r.formats()?;
    let params = values(r)?;
    let result_formats = r.formats()?;
    Ok(Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

fn function_call(r: &mut Reader) -> Result<FunctionCall, ProtocolViolation> {
    let oid = r.u32()?;
    let arg_formats = r.formats()?;
    let args = values(r)?;
    let result_format = Format::from_code(r.i16()?, Side::Client)?;
    Ok(FunctionCall {
        oid,
        arg_formats,
        args,
        result_format,
    })
}

/// A count followed by that many nullable values.
pub(crate) fn values(r: &mut Reader) -> Result<Vec<Option<Bytes>>, ProtocolViolation> {
    let n = r.count_of(4)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.nullable()?);
    }
    Ok(v)
}

fn target(r: &mut Reader) -> Result<Target, ProtocolViolation> {
    match r.u8()? {
        b'S' => Ok(Target::Statement(r.cstr()?)),
        b'P' => Ok(Target::Portal(r.cstr()?)),
        _ => Err(r.violation("describe or close target not S or P")),
    }
}
