//! The relay state machine: one client session between the gateway's client
//! side and the upstream server, after both logins are done.
//!
//! # Calling protocol
//!
//! The tokio side owns two sockets and two `BytesMut` buffers and loops:
//!
//! 1. Client bytes: [`Relay::decode_frontend`], then [`Relay::on_frontend`].
//!    - [`FrontendStep::Forward`]: write the bytes upstream.
//!    - [`FrontendStep::Decide`]: ask policy about [`Pending::command`], then
//!      call [`Relay::resolve`] with the [`Verdict`] and write the returned
//!      bytes upstream. No other frontend message may be fed in between
//!      (the relay reports a [`Side::Gateway`] violation if one is).
//! 2. Server bytes: [`Relay::decode_backend`], then [`Relay::on_backend`].
//!    - [`BackendStep::Forward`] / [`BackendStep::Rewritten`]: write to the client.
//!    - [`BackendStep::Row`] / [`BackendStep::CopyOut`]: apply masking, write
//!      the result of `unchanged()` or `replace(..)` to the client.
//!    - [`BackendStep::UpstreamKey`]: write nothing; remember the key for
//!      cancel forwarding (the client has the gateway's own key).
//! 3. Any `Err(ProtocolViolation)`: end the session; the error names the side.
//!
//! # Denial without desynchronizing client and server
//!
//! The gateway never invents transaction state. A denied message is replaced
//! upstream by one that fails *at parse time* on the real server
//! ([`POISON_PREFIX`]), so the server itself enters the state the client
//! will believe it is in: an aborted transaction block (`E`), a pipeline that
//! skips to Sync, a rolled-back implicit transaction. The relay remembers
//! that the next ErrorResponse for that message is the denial's, and rewrites
//! it on the way back into SQLSTATE 42501 with the gateway's reason.
//!
//! A simple Query holding several statements is judged and denied as a
//! whole: its statements run in one implicit transaction (unless they contain
//! transaction control), so running only the allowed ones would change what
//! the client's text means, and the server gives no way to skip one of them.
//!
//! Policy is asked at Query, Parse and FunctionCall. Bind and Execute are not
//! judged again: a protocol-level statement was judged at its Parse, and a
//! statement created with SQL `PREPARE` was judged as part of that Query's
//! text (the classifier sees its body), so Bind to a name the relay never saw
//! parsed is forwarded; its rows then carry no column descriptions.
//! SQL text must be UTF-8 (the gateway should pin `client_encoding`); other
//! text is a client protocol violation rather than something to guess about.
//!
//! Responses are matched to requests by position: every message sent
//! upstream that produces responses is queued as an expectation, and every
//! response is checked against the head of that queue. After an error in
//! extended-query mode the server discards everything up to Sync, and so does
//! the queue.

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::codec::{
    self, Backend, BackendMessage, Column, CopyResponse, DataRow, Format, Frontend,
    FrontendMessage, Parse, PgStr, Target, TransactionStatus,
};
use crate::{ProtocolViolation, Side};

/// Every denied message is replaced by SQL starting with this; it cannot parse.
pub const POISON_PREFIX: &str = "GATEWAY DENIED";

/// SQLSTATE `insufficient_privilege`, used for every denial.
pub const SQLSTATE_DENIED: &str = "42501";

/// Limits of one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Largest frontend message accepted (a Query, a Bind with its values).
    pub max_frontend_len: usize,
    /// Largest backend message accepted (a DataRow).
    pub max_backend_len: usize,
    /// Most prepared statements tracked before the session is ended.
    pub max_statements: usize,
    /// Most messages awaiting responses (pipelining depth).
    pub max_in_flight: usize,
    /// Put into the poison SQL comment so server logs can be matched to the
    /// gateway's audit (e.g. the session id). Only `[A-Za-z0-9_-]` is kept.
    pub session_tag: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_frontend_len: 16 << 20,
            max_backend_len: 64 << 20,
            max_statements: 10_000,
            max_in_flight: 100_000,
            session_tag: String::new(),
        }
    }
}

/// What the gateway must ask policy about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandText {
    /// A simple Query's text (may hold several statements; judge them all).
    Query(String),
    /// A Parse: the statement name and its SQL.
    Parse {
        /// Statement name ("" is the unnamed statement).
        statement: String,
        /// The SQL text.
        query: String,
    },
    /// A fast-path FunctionCall; only the function OID is known.
    FunctionCall {
        /// The function's OID.
        oid: u32,
    },
}

/// Policy's answer for a [`Pending`] command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the client's message unchanged.
    Allow,
    /// Deny; the client sees `permission denied by gateway policy: {reason}`.
    Deny {
        /// Why, e.g. `guard "x": DELETE needs a WHERE clause`.
        reason: String,
    },
}

/// A frontend message waiting for a verdict.
#[derive(Debug)]
#[must_use = "resolve it with Relay::resolve"]
pub struct Pending {
    command: CommandText,
    msg: Frontend,
}

impl Pending {
    /// The text policy judges.
    pub fn command(&self) -> &CommandText {
        &self.command
    }
    /// The client's original message (for recording).
    pub fn message(&self) -> &Frontend {
        &self.msg
    }
}

/// What to do with one frontend message.
#[derive(Debug)]
pub enum FrontendStep {
    /// Write these bytes upstream unchanged.
    Forward(Bytes),
    /// Ask policy, then call [`Relay::resolve`].
    Decide(Pending),
}

/// A DataRow the caller may mask before it reaches the client.
#[derive(Debug)]
#[must_use = "send unchanged() or replace(..) to the client"]
pub struct RowStep {
    /// The result columns, or `None` if the relay could not learn them (an
    /// Execute of a portal never described, e.g. an SQL-level cursor).
    /// Treat `None` as "every column unknown".
    pub columns: Option<Arc<[Column]>>,
    /// The values.
    pub row: DataRow,
    raw: Bytes,
}

impl RowStep {
    /// True if any column is in binary format (masking text patterns cannot apply).
    pub fn has_binary(&self) -> bool {
        self.columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.format == Format::Binary))
    }
    /// The original message, zero-copy.
    pub fn unchanged(self) -> Bytes {
        self.raw
    }
    /// A DataRow with these values instead (same count as `row.values`);
    /// lengths are recomputed.
    pub fn replace<'a>(self, values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Bytes {
        codec::data_row(values)
    }
}

/// A CopyData of COPY TO STDOUT (or CopyBoth) the caller may mask.
#[derive(Debug)]
#[must_use = "send unchanged() or replace(..) to the client"]
pub struct CopyStep {
    /// Formats from CopyOutResponse: text rows are one line per CopyData.
    pub format: CopyResponse,
    /// The payload.
    pub data: Bytes,
    raw: Bytes,
}

impl CopyStep {
    /// The original message, zero-copy.
    pub fn unchanged(self) -> Bytes {
        self.raw
    }
    /// A CopyData with this payload instead.
    pub fn replace(self, data: &[u8]) -> Bytes {
        codec::copy_data(data)
    }
}

/// What to do with one backend message.
#[derive(Debug)]
pub enum BackendStep {
    /// Write these bytes to the client unchanged.
    Forward(Bytes),
    /// Write these bytes to the client instead of the server's (a denial error).
    Rewritten(Bytes),
    /// A DataRow: mask, then write.
    Row(RowStep),
    /// COPY OUT data: mask, then write.
    CopyOut(CopyStep),
    /// BackendKeyData: write nothing; keep it to forward cancels.
    UpstreamKey {
        /// Upstream process ID.
        process_id: i32,
        /// Upstream secret key.
        secret_key: Bytes,
    },
}

/// A response the server still owes, in the order requests were sent.
#[derive(Debug)]
enum Expect {
    /// Simple Query or FunctionCall: everything up to ReadyForQuery.
    Query {
        denial: Option<String>,
    },
    Parse {
        name: Bytes,
        query: Arc<str>,
        denial: Option<String>,
    },
    Bind {
        portal: Bytes,
        statement: Bytes,
        result_formats: Vec<Format>,
    },
    Describe(Target),
    Execute {
        portal: Bytes,
    },
    Close(Target),
    Sync,
    /// No response: where the client's CopyDone or CopyFail sits in the
    /// stream, for a COPY FROM STDIN whose CopyInResponse has not arrived yet.
    CopyEnd,
}

#[derive(Debug)]
struct Statement {
    /// Kept for recording and for the audit trail of Execute.
    query: Arc<str>,
    /// From Describe of the statement; formats are not yet known.
    columns: Option<Arc<[Column]>>,
}

#[derive(Debug)]
struct Portal {
    statement: Bytes,
    columns: Option<Arc<[Column]>>,
}

/// The relay state machine; see the module docs for the calling protocol.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    in_flight: VecDeque<Expect>,
    /// The server is discarding messages until Sync after an extended-query error.
    skipping: bool,
    awaiting_verdict: bool,
    statements: HashMap<Bytes, Statement>,
    portals: HashMap<Bytes, Portal>,
    /// Columns of the result set a simple Query is currently returning.
    query_columns: Option<Arc<[Column]>>,
    copy_out: Option<CopyResponse>,
    /// The server is in COPY FROM STDIN and the client has not ended it yet.
    copy_in_open: bool,
    status: TransactionStatus,
    upstream_key: Option<(i32, Bytes)>,
    denials: u64,
}

impl Relay {
    /// A relay for a session whose both sides are idle (after the server's
    /// first ReadyForQuery).
    pub fn new(mut config: RelayConfig) -> Self {
        config
            .session_tag
            .retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        Relay {
            config,
            in_flight: VecDeque::new(),
            skipping: false,
            awaiting_verdict: false,
            statements: HashMap::new(),
            portals: HashMap::new(),
            query_columns: None,
            copy_out: None,
            copy_in_open: false,
            status: TransactionStatus::Idle,
            upstream_key: None,
            denials: 0,
        }
    }

    /// Decodes one client message with this relay's length limit.
    pub fn decode_frontend(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<Frontend>, ProtocolViolation> {
        codec::decode_frontend(buf, self.config.max_frontend_len)
    }

    /// Decodes one server message with this relay's length limit.
    pub fn decode_backend(&self, buf: &mut BytesMut) -> Result<Option<Backend>, ProtocolViolation> {
        codec::decode_backend(buf, self.config.max_backend_len)
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.status
    }

    /// The upstream cancel key, once the server sent one.
    pub fn upstream_key(&self) -> Option<(i32, &Bytes)> {
        self.upstream_key.as_ref().map(|(p, k)| (*p, k))
    }

    /// The SQL of a prepared statement the relay saw parsed.
    pub fn statement_sql(&self, name: &[u8]) -> Option<&str> {
        self.statements.get(name).map(|s| &*s.query)
    }

    /// The statement a portal was bound from.
    pub fn portal_statement(&self, portal: &[u8]) -> Option<&[u8]> {
        self.portals.get(portal).map(|p| &p.statement[..])
    }

    /// How many responses are outstanding (0 when the session is quiet).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Handles one client message.
    pub fn on_frontend(&mut self, msg: Frontend) -> Result<FrontendStep, ProtocolViolation> {
        if self.awaiting_verdict {
            return Err(ProtocolViolation::new(
                Side::Gateway,
                "message fed while a verdict is pending",
            ));
        }
        if self.copy_in_open {
            self.expect_in_copy_in(&msg.msg)?;
            return Ok(FrontendStep::Forward(msg.raw));
        }
        let command = match &msg.msg {
            FrontendMessage::Query(q) => CommandText::Query(utf8(q)?),
            FrontendMessage::Parse(p) => CommandText::Parse {
                statement: utf8(&p.name)?,
                query: utf8(&p.query)?,
            },
            FrontendMessage::FunctionCall(f) => CommandText::FunctionCall { oid: f.oid },
            other => {
                let expect = self.expect_for(other)?;
                if let Some(e) = expect {
                    self.push(e)?;
                }
                return Ok(FrontendStep::Forward(msg.raw));
            }
        };
        self.awaiting_verdict = true;
        Ok(FrontendStep::Decide(Pending { command, msg }))
    }

    /// Applies policy's verdict; returns the bytes to write upstream.
    pub fn resolve(
        &mut self,
        pending: Pending,
        verdict: Verdict,
    ) -> Result<Bytes, ProtocolViolation> {
        self.awaiting_verdict = false;
        let denial = match verdict {
            Verdict::Allow => None,
            Verdict::Deny { reason } => Some(reason),
        };
        let out = match (&denial, &pending.msg.msg) {
            (None, _) => pending.msg.raw.clone(),
            (Some(_), FrontendMessage::Parse(p)) => self.poison_parse(p),
            (Some(_), _) => codec::query(&self.poison_sql()),
        };
        let expect = match (pending.command, &pending.msg.msg) {
            (CommandText::Parse { query, .. }, FrontendMessage::Parse(p)) => Expect::Parse {
                name: p.name.0.clone(),
                query: query.into(),
                denial,
            },
            _ => Expect::Query { denial },
        };
        self.push(expect)?;
        Ok(out)
    }

    fn poison_sql(&mut self) -> String {
        self.denials += 1;
        format!(
            "{POISON_PREFIX} /* {} #{} */",
            self.config.session_tag, self.denials
        )
    }

    fn poison_parse(&mut self, p: &Parse) -> Bytes {
        let poison = Parse {
            name: p.name.clone(),
            query: PgStr::from(self.poison_sql().as_str()),
            param_types: Vec::new(),
        };
        codec::encode_frontend(&FrontendMessage::Parse(poison))
    }

    /// The expectation a forwarded (not judged) message creates, if any.
    fn expect_for(&mut self, msg: &FrontendMessage) -> Result<Option<Expect>, ProtocolViolation> {
        use FrontendMessage as F;
        if self.copy_in_open {
            return self.expect_in_copy_in(msg);
        }
        Ok(match msg {
            F::Bind(b) => Some(Expect::Bind {
                portal: b.portal.0.clone(),
                statement: b.statement.0.clone(),
                result_formats: b.result_formats.clone(),
            }),
            F::Describe(t) => Some(Expect::Describe(t.clone())),
            F::Execute { portal, .. } => Some(Expect::Execute {
                portal: portal.0.clone(),
            }),
            F::Close(t) => Some(Expect::Close(t.clone())),
            F::Sync => Some(Expect::Sync),
            F::CopyDone | F::CopyFail(_) if !self.in_flight.is_empty() => Some(Expect::CopyEnd),
            F::Flush | F::CopyData(_) | F::CopyDone | F::CopyFail(_) | F::Terminate => None,
            F::Password(_) => {
                return Err(ProtocolViolation::new(
                    Side::Client,
                    "password message after login",
                ));
            }
            F::Query(_) | F::Parse(_) | F::FunctionCall(_) => None,
        })
    }

    /// During COPY FROM STDIN the server reads only copy messages; it ignores
    /// Flush and Sync (libpq sends a Sync right after an extended-protocol
    /// COPY) and fails the COPY on anything else, so that is refused here.
    fn expect_in_copy_in(
        &mut self,
        msg: &FrontendMessage,
    ) -> Result<Option<Expect>, ProtocolViolation> {
        use FrontendMessage as F;
        match msg {
            F::CopyDone | F::CopyFail(_) => self.copy_in_open = false,
            F::CopyData(_) | F::Flush | F::Sync | F::Terminate => {}
            _ => {
                return Err(ProtocolViolation::new(
                    Side::Client,
                    "message other than copy data during COPY FROM STDIN",
                ));
            }
        }
        Ok(None)
    }

    /// Queues an expectation, unless the server will discard the message.
    fn push(&mut self, e: Expect) -> Result<(), ProtocolViolation> {
        if matches!(e, Expect::Sync) {
            self.skipping = false;
        } else if self.skipping {
            return Ok(());
        }
        if self.in_flight.len() >= self.config.max_in_flight {
            return Err(ProtocolViolation::new(
                Side::Client,
                "too many messages in flight",
            ));
        }
        self.in_flight.push_back(e);
        Ok(())
    }

    /// Handles one server message.
    pub fn on_backend(&mut self, msg: Backend) -> Result<BackendStep, ProtocolViolation> {
        use BackendMessage as B;
        let Backend { raw, msg } = msg;
        match msg {
            B::ParseComplete => self.parse_complete()?,
            B::BindComplete => self.bind_complete()?,
            B::ParameterDescription(_) => self.parameter_description()?,
            B::RowDescription(cols) => self.row_description(Some(cols.into()))?,
            B::NoData => self.row_description(None)?,
            B::DataRow(row) => return Ok(BackendStep::Row(self.data_row(row, raw)?)),
            B::CommandComplete(_) | B::EmptyQueryResponse | B::PortalSuspended => {
                self.command_done(matches!(msg, B::PortalSuspended))?
            }
            B::CloseComplete => self.close_complete()?,
            B::ErrorResponse(fields) => return Ok(self.error(&fields, raw)),
            B::ReadyForQuery(status) => self.ready_for_query(status)?,
            B::FunctionCallResponse(_) => self.in_command()?,
            B::CopyInResponse(_) => self.copy_in_response()?,
            B::CopyOutResponse(c) | B::CopyBothResponse(c) => {
                self.in_command()?;
                self.copy_out = Some(c);
            }
            B::CopyData(data) => return self.copy_data(data, raw),
            B::CopyDone => self.copy_out = None,
            B::BackendKeyData {
                process_id,
                secret_key,
            } => {
                self.upstream_key = Some((process_id, secret_key.clone()));
                return Ok(BackendStep::UpstreamKey {
                    process_id,
                    secret_key,
                });
            }
            B::ParameterStatus { .. } | B::NoticeResponse(_) | B::NotificationResponse { .. } => {}
            B::Unknown(_) => {}
            B::Authentication(_) | B::NegotiateProtocolVersion { .. } => {
                return Err(upstream("authentication message after login"));
            }
        }
        Ok(BackendStep::Forward(raw))
    }

    /// Pops the head; CopyEnd markers never stay at the head.
    fn pop(&mut self) -> Option<Expect> {
        let head = self.in_flight.pop_front();
        while matches!(self.in_flight.front(), Some(Expect::CopyEnd)) {
            self.in_flight.pop_front();
        }
        head
    }

    /// CopyInResponse: messages the client already sent after the COPY are
    /// read by the server as part of the copy. Syncs among them are ignored
    /// there, so they will get no ReadyForQuery.
    fn copy_in_response(&mut self) -> Result<(), ProtocolViolation> {
        self.in_command()?;
        let mut ended = false;
        let mut i = 1;
        while i < self.in_flight.len() && !ended {
            match self.in_flight[i] {
                Expect::CopyEnd => ended = true,
                Expect::Sync => {
                    self.in_flight.remove(i);
                    continue;
                }
                _ => {
                    return Err(ProtocolViolation::new(
                        Side::Client,
                        "message other than copy data during COPY FROM STDIN",
                    ));
                }
            }
            i += 1;
        }
        self.copy_in_open = !ended;
        Ok(())
    }

    fn parse_complete(&mut self) -> Result<(), ProtocolViolation> {
        let Some(Expect::Parse { name, query, .. }) = self.pop() else {
            return Err(upstream("unexpected ParseComplete"));
        };
        if !self.statements.contains_key(&name)
            && self.statements.len() >= self.config.max_statements
        {
            return Err(ProtocolViolation::new(
                Side::Client,
                "too many prepared statements",
            ));
        }
        self.statements.insert(
            name,
            Statement {
                query,
                columns: None,
            },
        );
        Ok(())
    }

    fn bind_complete(&mut self) -> Result<(), ProtocolViolation> {
        let Some(Expect::Bind {
            portal,
            statement,
            result_formats,
        }) = self.pop()
        else {
            return Err(upstream("unexpected BindComplete"));
        };
        let columns = self
            .statements
            .get(&statement)
            .and_then(|s| s.columns.as_ref())
            .map(|cols| with_formats(cols, &result_formats));
        if !self.portals.contains_key(&portal) && self.portals.len() >= self.config.max_statements {
            return Err(ProtocolViolation::new(Side::Client, "too many portals"));
        }
        self.portals.insert(portal, Portal { statement, columns });
        Ok(())
    }

    fn parameter_description(&mut self) -> Result<(), ProtocolViolation> {
        match self.in_flight.front() {
            Some(Expect::Describe(Target::Statement(_))) => Ok(()),
            _ => Err(upstream("unexpected ParameterDescription")),
        }
    }

    /// RowDescription (`Some`) or NoData (`None`).
    fn row_description(&mut self, cols: Option<Arc<[Column]>>) -> Result<(), ProtocolViolation> {
        match self.in_flight.front() {
            Some(Expect::Query { .. }) if cols.is_some() => {
                self.query_columns = cols;
                return Ok(());
            }
            Some(Expect::Describe(_)) => {}
            _ => return Err(upstream("unexpected RowDescription or NoData")),
        }
        let cols = cols.unwrap_or_else(|| Arc::from(Vec::new()));
        match self.pop() {
            Some(Expect::Describe(Target::Statement(name))) => {
                if let Some(s) = self.statements.get_mut(&name.0) {
                    s.columns = Some(cols);
                }
            }
            Some(Expect::Describe(Target::Portal(name))) => {
                if let Some(p) = self.portals.get_mut(&name.0) {
                    p.columns = Some(cols);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn data_row(&mut self, row: DataRow, raw: Bytes) -> Result<RowStep, ProtocolViolation> {
        let columns = match self.in_flight.front() {
            Some(Expect::Query { .. }) => self.query_columns.clone(),
            Some(Expect::Execute { portal }) => {
                self.portals.get(portal).and_then(|p| p.columns.clone())
            }
            _ => return Err(upstream("unexpected DataRow")),
        };
        // A row that does not match its description would be masked by the
        // wrong column rules; refuse it rather than guess.
        let columns = columns.filter(|c| c.len() == row.values.len());
        Ok(RowStep { columns, row, raw })
    }

    /// CommandComplete, EmptyQueryResponse or PortalSuspended.
    fn command_done(&mut self, suspended: bool) -> Result<(), ProtocolViolation> {
        self.copy_out = None;
        self.copy_in_open = false;
        match self.in_flight.front() {
            Some(Expect::Execute { .. }) => {
                self.pop();
            }
            Some(Expect::Query { .. }) if !suspended => self.query_columns = None,
            _ => return Err(upstream("unexpected command completion")),
        }
        Ok(())
    }

    fn close_complete(&mut self) -> Result<(), ProtocolViolation> {
        match self.pop() {
            Some(Expect::Close(Target::Statement(n))) => {
                self.statements.remove(&n.0);
            }
            Some(Expect::Close(Target::Portal(n))) => {
                self.portals.remove(&n.0);
            }
            _ => return Err(upstream("unexpected CloseComplete")),
        }
        Ok(())
    }

    /// Responses only valid while a Query, FunctionCall or Execute runs.
    fn in_command(&mut self) -> Result<(), ProtocolViolation> {
        match self.in_flight.front() {
            Some(Expect::Query { .. } | Expect::Execute { .. }) => Ok(()),
            _ => Err(upstream("unexpected copy or function response")),
        }
    }

    fn copy_data(&mut self, data: Bytes, raw: Bytes) -> Result<BackendStep, ProtocolViolation> {
        match &self.copy_out {
            Some(format) => Ok(BackendStep::CopyOut(CopyStep {
                format: format.clone(),
                data,
                raw,
            })),
            None => Err(upstream("CopyData outside COPY OUT")),
        }
    }

    fn ready_for_query(&mut self, status: TransactionStatus) -> Result<(), ProtocolViolation> {
        match self.pop() {
            Some(Expect::Query { .. } | Expect::Sync) => {}
            _ => return Err(upstream("unexpected ReadyForQuery")),
        }
        self.status = status;
        self.query_columns = None;
        self.copy_out = None;
        if status == TransactionStatus::Idle {
            // Portals live until the end of their transaction.
            self.portals.clear();
        }
        Ok(())
    }

    /// An ErrorResponse: rewrite it if it answers a denied message, and
    /// follow the server in skipping to Sync after an extended-query error.
    fn error(&mut self, fields: &codec::ErrorFields, raw: Bytes) -> BackendStep {
        self.copy_out = None;
        self.copy_in_open = false;
        if fields.is_fatal() {
            return BackendStep::Forward(raw);
        }
        let denial = match self.in_flight.front_mut() {
            None | Some(Expect::Sync) => None,
            Some(Expect::Query { denial }) => {
                self.query_columns = None;
                denial.take()
            }
            Some(_) => self.extended_error(),
        };
        match denial {
            Some(reason) => BackendStep::Rewritten(denial_error(&reason)),
            None => BackendStep::Forward(raw),
        }
    }

    fn extended_error(&mut self) -> Option<String> {
        let denial = match self.pop() {
            Some(Expect::Parse { name, denial, .. }) => {
                // The server dropped the unnamed statement before parsing.
                if name.is_empty() {
                    self.statements.remove(&name);
                }
                denial
            }
            Some(Expect::Bind { portal, .. }) => {
                self.portals.remove(&portal);
                None
            }
            _ => None,
        };
        while self
            .in_flight
            .front()
            .is_some_and(|e| !matches!(e, Expect::Sync))
        {
            self.pop();
        }
        self.skipping = self.in_flight.is_empty();
        denial
    }
}

/// The ErrorResponse a client sees for a denied message.
pub fn denial_error(reason: &str) -> Bytes {
    codec::error_response(
        "ERROR",
        SQLSTATE_DENIED,
        &format!("permission denied by gateway policy: {reason}"),
        None,
        None,
    )
}

/// A FATAL `57P01 admin_shutdown` error, sent before closing a session that
/// hit a limit (duration, idle time, revoked access).
pub fn session_end_error(message: &str) -> Bytes {
    codec::error_response("FATAL", "57P01", message, None, None)
}

fn with_formats(cols: &[Column], formats: &[Format]) -> Arc<[Column]> {
    cols.iter()
        .enumerate()
        .map(|(i, c)| {
            let format = match formats {
                [] => Format::Text,
                [f] => *f,
                many => many.get(i).copied().unwrap_or(Format::Text),
            };
            Column {
                format,
                ..c.clone()
            }
        })
        .collect()
}

fn utf8(s: &PgStr) -> Result<String, ProtocolViolation> {
    s.to_str().map(str::to_owned).ok_or(ProtocolViolation::new(
        Side::Client,
        "sql text is not valid utf-8",
    ))
}

fn upstream(reason: &'static str) -> ProtocolViolation {
    ProtocolViolation::new(Side::Upstream, reason)
}

/// Drives a relay with arbitrary client and server byte streams (fuzzing).
pub(crate) fn fuzz_relay(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len()) / 255;
    let (client, server) = rest.split_at(at.min(rest.len()));
    let mut relay = Relay::new(RelayConfig {
        max_in_flight: 64,
        max_statements: 8,
        ..Default::default()
    });
    let (mut cbuf, mut sbuf) = (BytesMut::from(client), BytesMut::from(server));
    let (mut c_ok, mut s_ok, mut deny) = (true, true, false);
    while c_ok || s_ok {
        c_ok = c_ok && fuzz_client_step(&mut relay, &mut cbuf, &mut deny);
        s_ok = s_ok && fuzz_server_step(&mut relay, &mut sbuf);
    }
}

fn fuzz_client_step(relay: &mut Relay, buf: &mut BytesMut, deny: &mut bool) -> bool {
    let Ok(Some(msg)) = relay.decode_frontend(buf) else {
        return false;
    };
    match relay.on_frontend(msg) {
        Ok(FrontendStep::Decide(p)) => {
            *deny = !*deny;
            let verdict = if *deny {
                Verdict::Deny {
                    reason: "fuzz".into(),
                }
            } else {
                Verdict::Allow
            };
            relay.resolve(p, verdict).is_ok()
        }
        Ok(FrontendStep::Forward(_)) => true,
        Err(_) => false,
    }
}

fn fuzz_server_step(relay: &mut Relay, buf: &mut BytesMut) -> bool {
    let Ok(Some(msg)) = relay.decode_backend(buf) else {
        return false;
    };
    match relay.on_backend(msg) {
        Ok(BackendStep::Row(r)) => {
            let vals: Vec<Option<Vec<u8>>> = r.row.iter().map(|v| v.map(<[u8]>::to_vec)).collect();
            let _ = r.replace(vals.iter().map(|v| v.as_deref()));
            true
        }
        Ok(_) => true,
        Err(_) => false,
    }
}
