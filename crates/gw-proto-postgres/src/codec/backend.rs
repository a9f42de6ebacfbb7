//! Messages from the server (backend).

use bytes::{Buf, Bytes, BytesMut};

use super::frontend::values;
use super::reader::Reader;
use super::{Format, PgStr, TransactionStatus, split_frame};
use crate::{ProtocolViolation, Side};

/// One backend message: the raw bytes and a typed view of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The whole message, tag and length included; forward this unchanged.
    pub raw: Bytes,
    /// The typed view.
    pub msg: BackendMessage,
}

/// An authentication request or result (`R`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// 0: login succeeded.
    Ok,
    /// 3: send the password in clear.
    CleartextPassword,
    /// 5: send the MD5 hash salted with these bytes.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// 10: SASL with these mechanisms, in server preference order.
    Sasl(Vec<PgStr>),
    /// 11: server-first (or later) SASL data.
    SaslContinue(Bytes),
    /// 12: server-final SASL data.
    SaslFinal(Bytes),
    /// Kerberos (2), GSS (7, 8), SSPI (9): recognized, not implemented.
    Other {
        /// The method code.
        code: i32,
        /// Any data after the code.
        data: Bytes,
    },
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Column label.
    pub name: PgStr,
    /// Source table OID, 0 if not a table column.
    pub table_oid: u32,
    /// Attribute number in that table, 0 if not a table column.
    pub column_attr: i16,
    /// Type OID.
    pub type_oid: u32,
    /// `pg_type.typlen` (negative for variable width).
    pub type_size: i16,
    /// Type modifier (`atttypmod`).
    pub type_modifier: i32,
    /// Result format. In the answer to Describe of a *statement* this is
    /// always text because the real format is only known at Bind.
    pub format: Format,
}

/// A DataRow: one value per column, `None` for NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// The values, as slices of the raw message.
    pub values: Vec<Option<Bytes>>,
}

impl DataRow {
    /// The values as byte slices.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.values.iter().map(|v| v.as_deref())
    }
    /// One value; `None` for NULL or out of range.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        self.values.get(i).and_then(|v| v.as_deref())
    }
}

/// ErrorResponse or NoticeResponse fields: `(code, value)` in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields(pub Vec<(u8, PgStr)>);

impl ErrorFields {
    /// The first field with this code (`b'C'` SQLSTATE, `b'M'` message, `b'D'` detail...).
    pub fn get(&self, code: u8) -> Option<&PgStr> {
        self.0.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }
    /// Non-localized severity (`V`, since 9.6), falling back to `S`.
    pub fn severity(&self) -> Option<&PgStr> {
        self.get(b'V').or_else(|| self.get(b'S'))
    }
    /// The SQLSTATE code.
    pub fn sqlstate(&self) -> Option<&PgStr> {
        self.get(b'C')
    }
    /// The primary message.
    pub fn message(&self) -> Option<&PgStr> {
        self.get(b'M')
    }
    /// True for FATAL and PANIC: the server closes the connection after it.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.severity().map(|s| s.as_bytes()),
            Some(b"FATAL" | b"PANIC")
        )
    }
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// Overall format: text (rows are text lines) or binary.
    pub format: Format,
    /// Per-column formats (all text when `format` is text).
    pub column_formats: Vec<Format>,
}

/// The typed view of a backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// `R`
    Authentication(Authentication),
    /// `S`
    ParameterStatus {
        /// Parameter name.
        name: PgStr,
        /// Current value.
        value: PgStr,
    },
    /// `K`
    BackendKeyData {
        /// Backend process ID.
        process_id: i32,
        /// Secret key (4 bytes in 3.0, up to 256 in 3.2).
        secret_key: Bytes,
    },
    /// `Z`
    ReadyForQuery(TransactionStatus),
    /// `T`
    RowDescription(Vec<Column>),
    /// `D`
    DataRow(DataRow),
    /// `C`: the command tag, e.g. `DELETE 3`.
    CommandComplete(PgStr),
    /// `I`
    EmptyQueryResponse,
    /// `E`
    ErrorResponse(ErrorFields),
    /// `N`
    NoticeResponse(ErrorFields),
    /// `G`
    CopyInResponse(CopyResponse),
    /// `H`
    CopyOutResponse(CopyResponse),
    /// `W`
    CopyBothResponse(CopyResponse),
    /// `d`
    CopyData(Bytes),
    /// `c`
    CopyDone,
    /// `1`
    ParseComplete,
    /// `2`
    BindComplete,
    /// `3`
    CloseComplete,
    /// `n`
    NoData,
    /// `s`
    PortalSuspended,
    /// `t`: parameter type OIDs.
    ParameterDescription(Vec<u32>),
    /// `A`
    NotificationResponse {
        /// Notifying backend's process ID.
        process_id: i32,
        /// Channel name.
        channel: PgStr,
        /// Payload.
        payload: PgStr,
    },
    /// `v`
    NegotiateProtocolVersion {
        /// Newest minor version the server supports.
        newest_minor: i32,
        /// Protocol options it did not recognize.
        unrecognized: Vec<PgStr>,
    },
    /// `V`: result of a FunctionCall.
    FunctionCallResponse(Option<Bytes>),
    /// A tag this codec does not know; framing is still sound, so it can be forwarded.
    Unknown(u8),
}

/// Decodes one backend message. Unknown tags decode as [`BackendMessage::Unknown`].
pub fn decode_backend(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<Backend>, ProtocolViolation> {
    let Some(raw) = split_frame(buf, max_len, Side::Upstream)? else {
        return Ok(None);
    };
    let tag = raw[0];
    let mut body = raw.clone();
    body.advance(5);
    let mut r = Reader::new(body, Side::Upstream);
    let msg = decode_body(tag, &mut r)?;
    r.finish()?;
    Ok(Some(Backend { raw, msg }))
}

fn decode_body(tag: u8, r: &mut Reader) -> Result<BackendMessage, ProtocolViolation> {
    use BackendMessage as M;
    Ok(match tag {
        b'R' => M::Authentication(authentication(r)?),
        b'S' => M::ParameterStatus {
            name: r.cstr()?,
            value: r.cstr()?,
        },
        b'K' => backend_key(r)?,
        b'Z' => M::ReadyForQuery(match r.u8()? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => return Err(r.violation("unknown transaction status")),
        }),
        b'T' => M::RowDescription(row_description(r)?),
        b'D' => M::DataRow(DataRow { values: values(r)? }),
        b'C' => M::CommandComplete(r.cstr()?),
        b'I' => M::EmptyQueryResponse,
        b'E' => M::ErrorResponse(error_fields(r)?),
        b'N' => M::NoticeResponse(error_fields(r)?),
        b'G' => M::CopyInResponse(copy_response(r)?),
        b'H' => M::CopyOutResponse(copy_response(r)?),
        b'W' => M::CopyBothResponse(copy_response(r)?),
        b'd' => M::CopyData(r.rest()),
        b'c' => M::CopyDone,
        b'1' => M::ParseComplete,
        b'2' => M::BindComplete,
        b'3' => M::CloseComplete,
        b'n' => M::NoData,
        b's' => M::PortalSuspended,
        b't' => {
            let n = r.count_of(4)?;
            M::ParameterDescription((0..n).map(|_| r.u32()).collect::<Result<_, _>>()?)
        }
        b'A' => M::NotificationResponse {
            process_id: r.i32()?,
            channel: r.cstr()?,
            payload: r.cstr()?,
        },
        b'v' => negotiate(r)?,
        b'V' => M::FunctionCallResponse(r.nullable()?),
        other => {
            r.rest();
            M::Unknown(other)
        }
    })
}

fn authentication(r: &mut Reader) -> Result<Authentication, ProtocolViolation> {
    Ok(match r.i32()? {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let s = r.bytes(4)?;
            Authentication::Md5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.0.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl(mechanisms)
        }
        11 => Authentication::SaslContinue(r.rest()),
        12 => Authentication::SaslFinal(r.rest()),
        code @ (2 | 7 | 8 | 9) => Authentication::Other {
            code,
            data: r.rest(),
        },
        _ => return Err(r.violation("unknown authentication request")),
    })
}

fn backend_key(r: &mut Reader) -> Result<BackendMessage, ProtocolViolation> {
    let process_id = r.i32()?;
    let secret_key = r.rest();
    if !(4..=256).contains(&secret_key.len()) {
        return Err(r.violation("cancel key length out of range"));
    }
    Ok(BackendMessage::BackendKeyData {
        process_id,
        secret_key,
    })
}

fn row_description(r: &mut Reader) -> Result<Vec<Column>, ProtocolViolation> {
    // Each field needs at least a NUL plus 18 bytes of fixed fields.
    let n = r.count_of(19)?;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        cols.push(Column {
            name: r.cstr()?,
            table_oid: r.u32()?,
            column_attr: r.i16()?,
            type_oid: r.u32()?,
            type_size: r.i16()?,
            type_modifier: r.i32()?,
            format: Format::from_code(r.i16()?, Side::Upstream)?,
        });
    }
    Ok(cols)
}

fn error_fields(r: &mut Reader) -> Result<ErrorFields, ProtocolViolation> {
    let mut fields = Vec::new();
    loop {
        let code = r.u8()?;
        if code == 0 {
            return Ok(ErrorFields(fields));
        }
        fields.push((code, r.cstr()?));
    }
}

fn copy_response(r: &mut Reader) -> Result<CopyResponse, ProtocolViolation> {
    let format = match r.u8()? {
        0 => Format::Text,
        1 => Format::Binary,
        _ => return Err(r.violation("copy format not 0 or 1")),
    };
    let column_formats = r.formats()?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

fn negotiate(r: &mut Reader) -> Result<BackendMessage, ProtocolViolation> {
    let newest_minor = r.i32()?;
    let n = r.i32()?;
    if n < 0 || n as usize > r.remaining() {
        return Err(r.violation("count exceeds message body"));
    }
    let unrecognized = (0..n).map(|_| r.cstr()).collect::<Result<_, _>>()?;
    Ok(BackendMessage::NegotiateProtocolVersion {
        newest_minor,
        unrecognized,
    })
}
