//! Relay scenarios with scripted server responses.
//!
//! Each test plays the client's messages through [`Relay::on_frontend`],
//! checks what goes upstream, then plays what a real PostgreSQL server
//! answers to *those* bytes and checks what the client sees.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{
    Bind, ErrorFields, FunctionCall, encode_backend, encode_frontend, error_fields,
};

const DENY_REASON: &str = "guard \"x\": DELETE needs a WHERE clause";
const DENY_MESSAGE: &str =
    "permission denied by gateway policy: guard \"x\": DELETE needs a WHERE clause";

fn relay() -> Relay {
    Relay::new(RelayConfig {
        session_tag: "s-1 */ evil".into(),
        ..Default::default()
    })
}

fn fe(msg: FrontendMessage) -> Frontend {
    let mut buf = BytesMut::from(&encode_frontend(&msg)[..]);
    crate::codec::decode_frontend(&mut buf, 1 << 20)
        .unwrap()
        .unwrap()
}

fn be(msg: BackendMessage) -> Backend {
    let mut buf = BytesMut::from(&encode_backend(&msg)[..]);
    crate::codec::decode_backend(&mut buf, 1 << 20)
        .unwrap()
        .unwrap()
}

fn decode_upstream(bytes: &Bytes) -> FrontendMessage {
    let mut buf = BytesMut::from(&bytes[..]);
    crate::codec::decode_frontend(&mut buf, 1 << 20)
        .unwrap()
        .unwrap()
        .msg
}

fn decode_client(bytes: &Bytes) -> BackendMessage {
    let mut buf = BytesMut::from(&bytes[..]);
    crate::codec::decode_backend(&mut buf, 1 << 20)
        .unwrap()
        .unwrap()
        .msg
}

/// Sends one client message; `deny` answers any Decide. Returns what went upstream.
#[track_caller]
fn send(r: &mut Relay, msg: FrontendMessage, deny: bool) -> FrontendMessage {
    let bytes = match r.on_frontend(fe(msg)).unwrap() {
        FrontendStep::Forward(b) => {
            assert!(!deny, "expected a decision");
            b
        }
        FrontendStep::Decide(p) => {
            let verdict = if deny {
                Verdict::Deny {
                    reason: DENY_REASON.into(),
                }
            } else {
                Verdict::Allow
            };
            r.resolve(p, verdict).unwrap()
        }
    };
    decode_upstream(&bytes)
}

/// Plays one server message; returns what the client receives (None: nothing).
#[track_caller]
fn recv(r: &mut Relay, msg: BackendMessage) -> Option<BackendMessage> {
    let bytes = match r.on_backend(be(msg)).unwrap() {
        BackendStep::Forward(b) | BackendStep::Rewritten(b) => b,
        BackendStep::Row(row) => row.unchanged(),
        BackendStep::CopyOut(c) => c.unchanged(),
        BackendStep::UpstreamKey { .. } => return None,
    };
    Some(decode_client(&bytes))
}

fn q(sql: &str) -> FrontendMessage {
    FrontendMessage::Query(sql.into())
}

fn parse(name: &str, sql: &str) -> FrontendMessage {
    FrontendMessage::Parse(Parse {
        name: name.into(),
        query: sql.into(),
        param_types: vec![],
    })
}

fn bind(portal: &str, stmt: &str, result_formats: Vec<Format>) -> FrontendMessage {
    FrontendMessage::Bind(Bind {
        portal: portal.into(),
        statement: stmt.into(),
        param_formats: vec![],
        params: vec![],
        result_formats,
    })
}

fn execute(portal: &str) -> FrontendMessage {
    FrontendMessage::Execute {
        portal: portal.into(),
        max_rows: 0,
    }
}

fn server_error(sqlstate: &str, message: &str) -> BackendMessage {
    BackendMessage::ErrorResponse(error_fields("ERROR", sqlstate, message, None, None))
}

fn syntax_error() -> BackendMessage {
    server_error("42601", "syntax error at or near \"GATEWAY\"")
}

fn rfq(s: TransactionStatus) -> BackendMessage {
    BackendMessage::ReadyForQuery(s)
}

fn complete(tag: &str) -> BackendMessage {
    BackendMessage::CommandComplete(tag.into())
}

fn column(name: &str, format: Format) -> Column {
    Column {
        name: name.into(),
        table_oid: 16384,
        column_attr: 1,
        type_oid: 25,
        type_size: -1,
        type_modifier: -1,
        format,
    }
}

fn row(values: &[&str]) -> BackendMessage {
    BackendMessage::DataRow(DataRow {
        values: values
            .iter()
            .map(|v| Some(Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
    })
}

#[track_caller]
fn assert_denied(seen: Option<BackendMessage>) {
    let Some(BackendMessage::ErrorResponse(f)) = seen else {
        panic!("expected error: {seen:?}")
    };
    assert_eq!(f.sqlstate().unwrap().as_bytes(), b"42501");
    assert_eq!(f.severity().unwrap().as_bytes(), b"ERROR");
    assert_eq!(f.message().unwrap().to_str(), Some(DENY_MESSAGE));
}

#[track_caller]
fn assert_poison(upstream: &FrontendMessage) {
    let text = match upstream {
        FrontendMessage::Query(t) => t,
        FrontendMessage::Parse(p) => {
            assert!(p.param_types.is_empty());
            &p.query
        }
        other => panic!("not a poison message: {other:?}"),
    };
    let text = text.to_str().unwrap();
    assert!(text.starts_with("GATEWAY DENIED /* s-1evil #"), "{text}");
    assert_eq!(
        text.matches("*/").count(),
        1,
        "session tag must not close the comment"
    );
}

#[test]
fn simple_deny_outside_transaction() {
    let mut r = relay();
    let FrontendStep::Decide(p) = r.on_frontend(fe(q("DELETE FROM t"))).unwrap() else {
        panic!("a query needs a decision")
    };
    assert_eq!(p.command(), &CommandText::Query("DELETE FROM t".into()));
    let up = r
        .resolve(
            p,
            Verdict::Deny {
                reason: DENY_REASON.into(),
            },
        )
        .unwrap();
    assert_poison(&decode_upstream(&up));
    assert_denied(recv(&mut r, syntax_error()));
    assert_eq!(
        recv(&mut r, rfq(TransactionStatus::Idle)),
        Some(rfq(TransactionStatus::Idle))
    );
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn simple_deny_inside_transaction_block_aborts_it() {
    let mut r = relay();
    assert_eq!(send(&mut r, q("BEGIN"), false), q("BEGIN"));
    recv(&mut r, complete("BEGIN"));
    recv(&mut r, rfq(TransactionStatus::InTransaction));

    assert_poison(&send(&mut r, q("DELETE FROM t"), true));
    assert_denied(recv(&mut r, syntax_error()));
    assert_eq!(
        recv(&mut r, rfq(TransactionStatus::Failed)),
        Some(rfq(TransactionStatus::Failed))
    );
    assert_eq!(r.transaction_status(), TransactionStatus::Failed);

    // The server's own error for the next statement passes through untouched.
    send(&mut r, q("SELECT 1"), false);
    let aborted = server_error("25P02", "current transaction is aborted");
    assert_eq!(recv(&mut r, aborted.clone()), Some(aborted));
    recv(&mut r, rfq(TransactionStatus::Failed));
    send(&mut r, q("ROLLBACK"), false);
    recv(&mut r, complete("ROLLBACK"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.transaction_status(), TransactionStatus::Idle);
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn pipeline_with_second_parse_denied() {
    let mut r = relay();
    // Client: P1 B1 D1 E1, P2 (denied) B2 E2, P3 B3 E3, Sync.
    send(&mut r, parse("", "SELECT a FROM t"), false);
    send(&mut r, bind("", "", vec![]), false);
    send(
        &mut r,
        FrontendMessage::Describe(Target::Portal("".into())),
        false,
    );
    send(&mut r, execute(""), false);
    assert_poison(&send(&mut r, parse("", "DELETE FROM t"), true));
    send(&mut r, bind("", "", vec![]), false);
    send(&mut r, execute(""), false);
    send(&mut r, parse("", "SELECT 3"), false);
    send(&mut r, bind("", "", vec![]), false);
    send(&mut r, execute(""), false);
    send(&mut r, FrontendMessage::Sync, false);

    // Server: responses for #1, the poison's error, nothing for the rest, RFQ at Sync.
    let seen: Vec<_> = [
        BackendMessage::ParseComplete,
        BackendMessage::BindComplete,
        BackendMessage::RowDescription(vec![column("a", Format::Text)]),
        row(&["x"]),
        complete("SELECT 1"),
        syntax_error(),
        rfq(TransactionStatus::Idle),
    ]
    .into_iter()
    .map(|m| recv(&mut r, m))
    .collect();
    assert_eq!(seen[0], Some(BackendMessage::ParseComplete));
    assert_eq!(seen[3], Some(row(&["x"])));
    assert_eq!(seen[4], Some(complete("SELECT 1")));
    assert_denied(seen[5].clone());
    assert_eq!(seen[6], Some(rfq(TransactionStatus::Idle)));
    assert_eq!(r.in_flight(), 0);
    // The server dropped the unnamed statement before failing to parse the poison.
    assert_eq!(r.statement_sql(b""), None);
}

#[test]
fn pipeline_rows_carry_portal_columns() {
    let mut r = relay();
    send(&mut r, parse("s1", "SELECT a, b FROM t"), false);
    send(
        &mut r,
        FrontendMessage::Describe(Target::Statement("s1".into())),
        false,
    );
    send(
        &mut r,
        bind("", "s1", vec![Format::Text, Format::Binary]),
        false,
    );
    send(&mut r, execute(""), false);
    send(&mut r, FrontendMessage::Sync, false);
    recv(&mut r, BackendMessage::ParseComplete);
    recv(&mut r, BackendMessage::ParameterDescription(vec![]));
    let described = vec![column("a", Format::Text), column("b", Format::Text)];
    recv(&mut r, BackendMessage::RowDescription(described));
    recv(&mut r, BackendMessage::BindComplete);
    let BackendStep::Row(step) = r.on_backend(be(row(&["1", "2"]))).unwrap() else {
        panic!("expected a row")
    };
    let cols = step
        .columns
        .clone()
        .expect("columns from Describe S plus Bind formats");
    assert_eq!(cols[0].format, Format::Text);
    assert_eq!(cols[1].format, Format::Binary);
    assert!(step.has_binary());
    let _ = step.unchanged();
    recv(&mut r, complete("SELECT 1"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.statement_sql(b"s1"), Some("SELECT a, b FROM t"));
    assert_eq!(
        r.portal_statement(b""),
        None,
        "portals end with the transaction"
    );
}

#[test]
fn earlier_error_means_denied_parse_never_ran() {
    let mut r = relay();
    send(&mut r, parse("a", "SELECT * FROM missing"), false);
    assert_poison(&send(&mut r, parse("b", "DELETE FROM t"), true));
    send(&mut r, FrontendMessage::Sync, false);
    let missing = server_error("42P01", "relation \"missing\" does not exist");
    assert_eq!(recv(&mut r, missing.clone()), Some(missing));
    assert_eq!(
        recv(&mut r, rfq(TransactionStatus::Idle)),
        Some(rfq(TransactionStatus::Idle))
    );
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn messages_after_an_error_before_sync_are_skipped() {
    let mut r = relay();
    send(&mut r, parse("", "SELECT 1/0"), false);
    send(&mut r, bind("", "", vec![]), false);
    send(&mut r, execute(""), false);
    send(&mut r, FrontendMessage::Flush, false);
    recv(&mut r, BackendMessage::ParseComplete);
    recv(&mut r, BackendMessage::BindComplete);
    let div = server_error("22012", "division by zero");
    assert_eq!(recv(&mut r, div.clone()), Some(div));
    // Sent after the error was seen: the server discards it, so does the relay.
    send(&mut r, parse("", "DELETE FROM t"), true);
    send(&mut r, q("SELECT 2"), false);
    send(&mut r, FrontendMessage::Sync, false);
    assert_eq!(r.in_flight(), 1);
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn denied_function_call_becomes_poison_query() {
    let mut r = relay();
    let call = FrontendMessage::FunctionCall(FunctionCall {
        oid: 2096,
        arg_formats: vec![Format::Binary],
        args: vec![Some(Bytes::from_static(&[0, 0, 0, 7]))],
        result_format: Format::Binary,
    });
    let FrontendStep::Decide(p) = r.on_frontend(fe(call)).unwrap() else {
        panic!()
    };
    assert_eq!(p.command(), &CommandText::FunctionCall { oid: 2096 });
    let up = r
        .resolve(
            p,
            Verdict::Deny {
                reason: DENY_REASON.into(),
            },
        )
        .unwrap();
    assert_poison(&decode_upstream(&up));
    assert_denied(recv(&mut r, syntax_error()));
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn only_the_denials_error_is_rewritten() {
    let mut r = relay();
    send(&mut r, q("SELECT 1"), false);
    let other = server_error("42601", "syntax error");
    assert_eq!(recv(&mut r, other.clone()), Some(other));
    recv(&mut r, rfq(TransactionStatus::Idle));
    // A FATAL error for a denied query is not disguised: the session is ending.
    send(&mut r, q("DELETE FROM t"), true);
    let fatal = BackendMessage::ErrorResponse(error_fields("FATAL", "57P01", "bye", None, None));
    assert_eq!(recv(&mut r, fatal.clone()), Some(fatal));
}

#[test]
fn masking_reencodes_rows() {
    let mut r = relay();
    send(&mut r, q("SELECT name, iban FROM c"), false);
    recv(
        &mut r,
        BackendMessage::RowDescription(vec![
            column("name", Format::Text),
            column("iban", Format::Text),
        ]),
    );
    let BackendStep::Row(step) = r
        .on_backend(be(row(&["ann", "DE89370400440532013000"])))
        .unwrap()
    else {
        panic!("expected a row")
    };
    assert_eq!(
        step.columns.as_ref().unwrap()[1].name.to_str(),
        Some("iban")
    );
    assert!(!step.has_binary());
    let masked = step.replace([Some(&b"ann"[..]), None]);
    let BackendMessage::DataRow(d) = decode_client(&masked) else {
        panic!()
    };
    assert_eq!(d.iter().collect::<Vec<_>>(), vec![Some(&b"ann"[..]), None]);
    recv(&mut r, complete("SELECT 1"));
    recv(&mut r, rfq(TransactionStatus::Idle));
}

#[test]
fn copy_out_data_is_offered_for_masking() {
    let mut r = relay();
    send(&mut r, q("COPY c TO STDOUT"), false);
    let text = CopyResponse {
        format: Format::Text,
        column_formats: vec![Format::Text],
    };
    recv(&mut r, BackendMessage::CopyOutResponse(text.clone()));
    let BackendStep::CopyOut(c) = r
        .on_backend(be(BackendMessage::CopyData(Bytes::from_static(
            b"secret\n",
        ))))
        .unwrap()
    else {
        panic!("expected copy data")
    };
    assert_eq!(c.format, text);
    assert_eq!(
        decode_client(&c.replace(b"***\n")),
        BackendMessage::CopyData(Bytes::from_static(b"***\n"))
    );
    recv(&mut r, BackendMessage::CopyDone);
    recv(&mut r, complete("COPY 1"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    // CopyData outside COPY OUT is the server's fault.
    let err = r
        .on_backend(be(BackendMessage::CopyData(Bytes::new())))
        .unwrap_err();
    assert_eq!(err.side, Side::Upstream);
}

#[test]
fn backend_key_is_captured_not_forwarded() {
    let mut r = relay();
    let key = BackendMessage::BackendKeyData {
        process_id: 42,
        secret_key: Bytes::from_static(b"abcd"),
    };
    assert_eq!(recv(&mut r, key), None);
    assert_eq!(r.upstream_key(), Some((42, &Bytes::from_static(b"abcd"))));
}

#[test]
fn close_forgets_statements() {
    let mut r = relay();
    send(&mut r, parse("s", "SELECT 1"), false);
    send(
        &mut r,
        FrontendMessage::Close(Target::Statement("s".into())),
        false,
    );
    send(&mut r, FrontendMessage::Sync, false);
    recv(&mut r, BackendMessage::ParseComplete);
    assert_eq!(r.statement_sql(b"s"), Some("SELECT 1"));
    recv(&mut r, BackendMessage::CloseComplete);
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.statement_sql(b"s"), None);
}

#[test]
fn misuse_and_violations_name_the_side() {
    let mut r = relay();
    let FrontendStep::Decide(_pending) = r.on_frontend(fe(q("SELECT 1"))).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.on_frontend(fe(FrontendMessage::Sync)).unwrap_err().side,
        Side::Gateway
    );

    let mut r = relay();
    assert_eq!(
        r.on_backend(be(BackendMessage::ParseComplete))
            .unwrap_err()
            .side,
        Side::Upstream
    );
    assert_eq!(
        r.on_backend(be(rfq(TransactionStatus::Idle)))
            .unwrap_err()
            .side,
        Side::Upstream
    );
    assert_eq!(
        r.on_backend(be(row(&["x"]))).unwrap_err().side,
        Side::Upstream
    );
    let pw = FrontendMessage::Password(Bytes::from_static(b"pw\0"));
    assert_eq!(r.on_frontend(fe(pw)).unwrap_err().side, Side::Client);
    let bad = FrontendMessage::Query(PgStr(Bytes::from_static(&[0xff, 0xfe])));
    assert_eq!(r.on_frontend(fe(bad)).unwrap_err().side, Side::Client);
}

#[test]
fn pipelining_depth_is_bounded() {
    let mut r = Relay::new(RelayConfig {
        max_in_flight: 3,
        ..Default::default()
    });
    for _ in 0..3 {
        send(&mut r, FrontendMessage::Sync, false);
    }
    assert_eq!(
        r.on_frontend(fe(FrontendMessage::Sync)).unwrap_err().side,
        Side::Client
    );
}

#[test]
fn session_end_is_fatal_admin_shutdown() {
    let BackendMessage::ErrorResponse(f) =
        decode_client(&session_end_error("session time limit reached"))
    else {
        panic!()
    };
    assert!(f.is_fatal());
    assert_eq!(f.sqlstate().unwrap().as_bytes(), b"57P01");
    let _: ErrorFields = f;
}

/// Valid messages in random order (a hostile client and a broken server):
/// the relay may refuse them, but must never panic or grow without bound.
#[test]
fn random_valid_message_orders_never_panic() {
    let fronts = [
        q("SELECT 1"),
        parse("", "SELECT 1"),
        parse("s", "SELECT 2"),
        bind("", "", vec![]),
        bind("p", "s", vec![Format::Binary]),
        FrontendMessage::Describe(Target::Statement("s".into())),
        FrontendMessage::Describe(Target::Portal("".into())),
        execute(""),
        execute("p"),
        FrontendMessage::Close(Target::Statement("s".into())),
        FrontendMessage::Close(Target::Portal("p".into())),
        FrontendMessage::Sync,
        FrontendMessage::Flush,
        FrontendMessage::CopyData(Bytes::from_static(b"x")),
        FrontendMessage::CopyDone,
    ];
    let copy = CopyResponse {
        format: Format::Text,
        column_formats: vec![Format::Text],
    };
    let backs = [
        BackendMessage::ParseComplete,
        BackendMessage::BindComplete,
        BackendMessage::CloseComplete,
        BackendMessage::NoData,
        BackendMessage::PortalSuspended,
        BackendMessage::EmptyQueryResponse,
        BackendMessage::ParameterDescription(vec![23]),
        BackendMessage::RowDescription(vec![column("a", Format::Text)]),
        row(&["v"]),
        row(&["v", "w"]),
        complete("SELECT 1"),
        syntax_error(),
        rfq(TransactionStatus::Idle),
        rfq(TransactionStatus::InTransaction),
        BackendMessage::CopyOutResponse(copy.clone()),
        BackendMessage::CopyInResponse(copy),
        BackendMessage::CopyData(Bytes::from_static(b"r\n")),
        BackendMessage::CopyDone,
        BackendMessage::NoticeResponse(error_fields("NOTICE", "00000", "n", None, None)),
    ];
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let config = RelayConfig {
        max_in_flight: 32,
        max_statements: 4,
        ..Default::default()
    };
    let mut r = Relay::new(config.clone());
    for _ in 0..50_000 {
        let ok = if next(2) == 0 {
            match r.on_frontend(fe(fronts[next(fronts.len())].clone())) {
                Ok(FrontendStep::Decide(p)) => {
                    let v = if next(2) == 0 {
                        Verdict::Allow
                    } else {
                        Verdict::Deny { reason: "r".into() }
                    };
                    r.resolve(p, v).is_ok()
                }
                Ok(FrontendStep::Forward(_)) => true,
                Err(_) => false,
            }
        } else {
            r.on_backend(be(backs[next(backs.len())].clone())).is_ok()
        };
        assert!(r.in_flight() <= config.max_in_flight);
        if !ok {
            r = Relay::new(config.clone());
        }
    }
}

#[test]
fn extended_copy_in_as_libpq_sends_it() {
    // libpq: Parse/Bind/Execute of COPY FROM STDIN, Sync at once, then the
    // data, CopyDone and a second Sync. The server ignores the first Sync.
    let mut r = relay();
    send(&mut r, parse("", "COPY t FROM STDIN"), false);
    send(&mut r, bind("", "", vec![]), false);
    send(&mut r, execute(""), false);
    send(&mut r, FrontendMessage::Sync, false);
    recv(&mut r, BackendMessage::ParseComplete);
    recv(&mut r, BackendMessage::BindComplete);
    let text = CopyResponse {
        format: Format::Text,
        column_formats: vec![Format::Text],
    };
    recv(&mut r, BackendMessage::CopyInResponse(text));
    assert_eq!(r.in_flight(), 1, "the Sync read during COPY gets no answer");
    send(
        &mut r,
        FrontendMessage::CopyData(Bytes::from_static(b"1\n")),
        false,
    );
    send(&mut r, FrontendMessage::Sync, false); // also ignored by the server
    send(&mut r, FrontendMessage::CopyDone, false);
    send(&mut r, FrontendMessage::Sync, false);
    recv(&mut r, complete("COPY 1"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn simple_copy_in_with_data_sent_ahead() {
    let mut r = relay();
    send(&mut r, q("COPY t FROM STDIN"), false);
    send(
        &mut r,
        FrontendMessage::CopyData(Bytes::from_static(b"1\n")),
        false,
    );
    send(&mut r, FrontendMessage::CopyDone, false);
    send(&mut r, q("SELECT 1"), false);
    let text = CopyResponse {
        format: Format::Text,
        column_formats: vec![Format::Text],
    };
    recv(&mut r, BackendMessage::CopyInResponse(text.clone()));
    recv(&mut r, complete("COPY 1"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    recv(
        &mut r,
        BackendMessage::RowDescription(vec![column("?column?", Format::Text)]),
    );
    recv(&mut r, complete("SELECT 0"));
    recv(&mut r, rfq(TransactionStatus::Idle));
    assert_eq!(r.in_flight(), 0);

    // A query sent in the middle of COPY FROM STDIN is refused.
    send(&mut r, q("COPY t FROM STDIN"), false);
    recv(&mut r, BackendMessage::CopyInResponse(text));
    let err = r.on_frontend(fe(q("SELECT 1"))).unwrap_err();
    assert_eq!(err.side, Side::Client);
}
