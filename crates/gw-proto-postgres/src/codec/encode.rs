//! Encoders: the messages the gateway writes itself, plus generic encoders of
//! every typed message (used for re-encoding and round-trip tests).
//!
//! Lengths are always computed here, never copied from an input.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    Authentication, BackendMessage, Bind, CopyResponse, ErrorFields, Format, FrontendMessage,
    PROTOCOL_3_0, PgStr, Target, TransactionStatus,
};

/// Builds one message, back-patching its length on `finish`.
struct Msg {
    buf: BytesMut,
    /// Where the length field starts: 1 after a tag byte, 0 for startup packets.
    len_at: usize,
}

impl Msg {
    fn new(tag: u8) -> Self {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u8(tag);
        buf.put_i32(0);
        Msg { buf, len_at: 1 }
    }
    /// A startup-style packet: no tag byte.
    fn untagged() -> Self {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        Msg { buf, len_at: 0 }
    }
    fn cstr(&mut self, s: &[u8]) -> &mut Self {
        self.buf.put_slice(s);
        self.buf.put_u8(0);
        self
    }
    fn nullable(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.buf.put_i32(-1),
            Some(v) => {
                self.buf.put_i32(len_i32(v.len()));
                self.buf.put_slice(v);
            }
        }
        self
    }
    fn formats(&mut self, f: &[Format]) -> &mut Self {
        self.buf.put_i16(f.len() as i16);
        for f in f {
            self.buf.put_i16(f.code());
        }
        self
    }
    fn finish(self) -> Bytes {
        let (mut buf, at) = (self.buf, self.len_at);
        let len = len_i32(buf.len() - at).to_be_bytes();
        buf[at..at + 4].copy_from_slice(&len);
        buf.freeze()
    }
}

/// Lengths above `i32::MAX` cannot be framed; callers bound sizes far below that.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// ErrorResponse with severity (both `S` and `V`), SQLSTATE, message, and optional detail and hint.
pub fn error_response(
    severity: &str,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> Bytes {
    encode_backend(&BackendMessage::ErrorResponse(error_fields(
        severity, sqlstate, message, detail, hint,
    )))
}

/// NoticeResponse; same fields as [`error_response`].
pub fn notice_response(
    severity: &str,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> Bytes {
    encode_backend(&BackendMessage::NoticeResponse(error_fields(
        severity, sqlstate, message, detail, hint,
    )))
}

/// The fields of an error or notice, in the order PostgreSQL sends them.
pub fn error_fields(
    severity: &str,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> ErrorFields {
    let mut f = vec![
        (b'S', PgStr::from(severity)),
        (b'V', PgStr::from(severity)),
        (b'C', PgStr::from(sqlstate)),
        (b'M', PgStr::from(message)),
    ];
    if let Some(d) = detail {
        f.push((b'D', PgStr::from(d)));
    }
    if let Some(h) = hint {
        f.push((b'H', PgStr::from(h)));
    }
    ErrorFields(f)
}

/// ReadyForQuery.
pub fn ready_for_query(status: TransactionStatus) -> Bytes {
    encode_backend(&BackendMessage::ReadyForQuery(status))
}

/// AuthenticationOk.
pub fn authentication_ok() -> Bytes {
    encode_backend(&BackendMessage::Authentication(Authentication::Ok))
}

/// AuthenticationCleartextPassword: how the gateway asks `psql` for its token.
pub fn authentication_cleartext_password() -> Bytes {
    encode_backend(&BackendMessage::Authentication(
        Authentication::CleartextPassword,
    ))
}

/// BackendKeyData (the gateway's own key, never the upstream one).
pub fn backend_key_data(process_id: i32, secret_key: &[u8]) -> Bytes {
    let mut m = Msg::new(b'K');
    m.buf.put_i32(process_id);
    m.buf.put_slice(secret_key);
    m.finish()
}

/// ParameterStatus.
pub fn parameter_status(name: &str, value: &[u8]) -> Bytes {
    let mut m = Msg::new(b'S');
    m.cstr(name.as_bytes()).cstr(value);
    m.finish()
}

/// DataRow from values; used to re-encode masked rows with recomputed lengths.
pub fn data_row<'a>(values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Bytes {
    let mut m = Msg::new(b'D');
    m.buf.put_i16(0);
    let mut n: u16 = 0;
    for v in values {
        m.nullable(v);
        n = n.wrapping_add(1);
    }
    m.buf[5..7].copy_from_slice(&n.to_be_bytes());
    m.finish()
}

/// CommandComplete with a tag such as `SELECT 3`.
pub fn command_complete(tag: &str) -> Bytes {
    let mut m = Msg::new(b'C');
    m.cstr(tag.as_bytes());
    m.finish()
}

/// CopyData (either direction).
pub fn copy_data(data: &[u8]) -> Bytes {
    let mut m = Msg::new(b'd');
    m.buf.put_slice(data);
    m.finish()
}

/// StartupMessage for protocol 3.0 (`user`, `database`, ...).
pub fn startup_message(params: &[(&str, &str)]) -> Bytes {
    let mut m = Msg::untagged();
    m.buf.put_i32(PROTOCOL_3_0);
    for (k, v) in params {
        m.cstr(k.as_bytes()).cstr(v.as_bytes());
    }
    m.buf.put_u8(0);
    m.finish()
}

/// SSLRequest (to ask the upstream server for TLS).
pub fn ssl_request() -> Bytes {
    let mut m = Msg::untagged();
    m.buf.put_i32(80877103);
    m.finish()
}

/// CancelRequest, sent on a new connection to the upstream server.
pub fn cancel_request(process_id: i32, secret_key: &[u8]) -> Bytes {
    let mut m = Msg::untagged();
    m.buf.put_i32(80877102);
    m.buf.put_i32(process_id);
    m.buf.put_slice(secret_key);
    m.finish()
}

/// PasswordMessage (cleartext password or the `md5...` string).
pub fn password_message(password: &[u8]) -> Bytes {
    let mut m = Msg::new(b'p');
    m.cstr(password);
    m.finish()
}

/// SASLInitialResponse.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Bytes {
    let mut m = Msg::new(b'p');
    m.cstr(mechanism.as_bytes()).nullable(Some(data));
    m.finish()
}

/// SASLResponse.
pub fn sasl_response(data: &[u8]) -> Bytes {
    let mut m = Msg::new(b'p');
    m.buf.put_slice(data);
    m.finish()
}

/// Query.
pub fn query(sql: &str) -> Bytes {
    encode_frontend(&FrontendMessage::Query(PgStr::from(sql)))
}

/// Terminate.
pub fn terminate() -> Bytes {
    encode_frontend(&FrontendMessage::Terminate)
}

/// Encodes any frontend message.
pub fn encode_frontend(msg: &FrontendMessage) -> Bytes {
    use FrontendMessage as F;
    let tag = match msg {
        F::Query(_) => b'Q',
        F::Parse(_) => b'P',
        F::Bind(_) => b'B',
        F::Describe(_) => b'D',
        F::Execute { .. } => b'E',
        F::Close(_) => b'C',
        F::Sync => b'S',
        F::Flush => b'H',
        F::FunctionCall(_) => b'F',
        F::CopyData(_) => b'd',
        F::CopyDone => b'c',
        F::CopyFail(_) => b'f',
        F::Terminate => b'X',
        F::Password(_) => b'p',
    };
    let mut msg_buf = Msg::new(tag);
    let m = &mut msg_buf;
    match msg {
        F::Query(q) | F::CopyFail(q) => {
            m.cstr(q.as_bytes());
        }
        F::Parse(p) => {
            m.cstr(p.name.as_bytes()).cstr(p.query.as_bytes());
            m.buf.put_i16(p.param_types.len() as i16);
            for t in &p.param_types {
                m.buf.put_u32(*t);
            }
        }
        F::Bind(b) => put_bind(m, b),
        F::Describe(t) | F::Close(t) => put_target(m, t),
        F::Execute { portal, max_rows } => {
            m.cstr(portal.as_bytes());
            m.buf.put_i32(*max_rows);
        }
        F::FunctionCall(f) => {
            m.buf.put_u32(f.oid);
            m.formats(&f.arg_formats);
            m.buf.put_i16(f.args.len() as i16);
            for a in &f.args {
                m.nullable(a.as_deref());
            }
            m.buf.put_i16(f.result_format.code());
        }
        F::CopyData(d) | F::Password(d) => m.buf.put_slice(d),
        F::Sync | F::Flush | F::CopyDone | F::Terminate => {}
    }
    msg_buf.finish()
}

fn put_bind(m: &mut Msg, b: &Bind) {
    m.cstr(b.portal.as_bytes()).cstr(b.statement.as_bytes());
    m.formats(&b.param_formats);
    m.buf.put_i16(b.params.len() as i16);
    for p in &b.params {
        m.nullable(p.as_deref());
    }
    m.formats(&b.result_formats);
}

fn put_target(m: &mut Msg, t: &Target) {
    let (kind, name) = match t {
        Target::Statement(n) => (b'S', n),
        Target::Portal(n) => (b'P', n),
    };
    m.buf.put_u8(kind);
    m.cstr(name.as_bytes());
}

/// Encodes any backend message. [`BackendMessage::Unknown`] encodes as an empty body.
pub fn encode_backend(msg: &BackendMessage) -> Bytes {
    use BackendMessage as B;
    let mut m = Msg::new(backend_tag(msg));
    match msg {
        B::Authentication(a) => put_auth(&mut m, a),
        B::ParameterStatus { name, value } => {
            m.cstr(name.as_bytes()).cstr(value.as_bytes());
        }
        B::BackendKeyData {
            process_id,
            secret_key,
        } => {
            m.buf.put_i32(*process_id);
            m.buf.put_slice(secret_key);
        }
        B::ReadyForQuery(s) => m.buf.put_u8(s.byte()),
        B::RowDescription(cols) => {
            m.buf.put_i16(cols.len() as i16);
            for c in cols {
                m.cstr(c.name.as_bytes());
                m.buf.put_u32(c.table_oid);
                m.buf.put_i16(c.column_attr);
                m.buf.put_u32(c.type_oid);
                m.buf.put_i16(c.type_size);
                m.buf.put_i32(c.type_modifier);
                m.buf.put_i16(c.format.code());
            }
        }
        B::DataRow(row) => return data_row(row.iter()),
        B::CommandComplete(t) => {
            m.cstr(t.as_bytes());
        }
        B::ErrorResponse(f) | B::NoticeResponse(f) => {
            for (code, v) in &f.0 {
                m.buf.put_u8(*code);
                m.cstr(v.as_bytes());
            }
            m.buf.put_u8(0);
        }
        B::CopyInResponse(c) | B::CopyOutResponse(c) | B::CopyBothResponse(c) => {
            put_copy(&mut m, c)
        }
        B::CopyData(d) => m.buf.put_slice(d),
        B::ParameterDescription(oids) => {
            m.buf.put_i16(oids.len() as i16);
            for o in oids {
                m.buf.put_u32(*o);
            }
        }
        B::NotificationResponse {
            process_id,
            channel,
            payload,
        } => {
            m.buf.put_i32(*process_id);
            m.cstr(channel.as_bytes()).cstr(payload.as_bytes());
        }
        B::NegotiateProtocolVersion {
            newest_minor,
            unrecognized,
        } => {
            m.buf.put_i32(*newest_minor);
            m.buf.put_i32(len_i32(unrecognized.len()));
            for u in unrecognized {
                m.cstr(u.as_bytes());
            }
        }
        B::FunctionCallResponse(v) => {
            m.nullable(v.as_deref());
        }
        B::EmptyQueryResponse
        | B::CopyDone
        | B::ParseComplete
        | B::BindComplete
        | B::CloseComplete
        | B::NoData
        | B::PortalSuspended
        | B::Unknown(_) => {}
    }
    m.finish()
}

fn backend_tag(msg: &BackendMessage) -> u8 {
    use BackendMessage as B;
    match msg {
        B::Authentication(_) => b'R',
        B::ParameterStatus { .. } => b'S',
        B::BackendKeyData { .. } => b'K',
        B::ReadyForQuery(_) => b'Z',
        B::RowDescription(_) => b'T',
        B::DataRow(_) => b'D',
        B::CommandComplete(_) => b'C',
        B::EmptyQueryResponse => b'I',
        B::ErrorResponse(_) => b'E',
        B::NoticeResponse(_) => b'N',
        B::CopyInResponse(_) => b'G',
        B::CopyOutResponse(_) => b'H',
        B::CopyBothResponse(_) => b'W',
        B::CopyData(_) => b'd',
        B::CopyDone => b'c',
        B::ParseComplete => b'1',
        B::BindComplete => b'2',
        B::CloseComplete => b'3',
        B::NoData => b'n',
        B::PortalSuspended => b's',
        B::ParameterDescription(_) => b't',
        B::NotificationResponse { .. } => b'A',
        B::NegotiateProtocolVersion { .. } => b'v',
        B::FunctionCallResponse(_) => b'V',
        B::Unknown(t) => *t,
    }
}

fn put_auth(m: &mut Msg, a: &Authentication) {
    match a {
        Authentication::Ok => m.buf.put_i32(0),
        Authentication::CleartextPassword => m.buf.put_i32(3),
        Authentication::Md5Password { salt } => {
            m.buf.put_i32(5);
            m.buf.put_slice(salt);
        }
        Authentication::Sasl(mechs) => {
            m.buf.put_i32(10);
            for mech in mechs {
                m.cstr(mech.as_bytes());
            }
            m.buf.put_u8(0);
        }
        Authentication::SaslContinue(d) => {
            m.buf.put_i32(11);
            m.buf.put_slice(d);
        }
        Authentication::SaslFinal(d) => {
            m.buf.put_i32(12);
            m.buf.put_slice(d);
        }
        Authentication::Other { code, data } => {
            m.buf.put_i32(*code);
            m.buf.put_slice(data);
        }
    }
}

fn put_copy(m: &mut Msg, c: &CopyResponse) {
    m.buf.put_u8(c.format.code() as u8);
    m.formats(&c.column_formats);
}
