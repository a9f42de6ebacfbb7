//! Codec tests: round trips for every message, malformed inputs, and a seeded
//! random no-panic run of [`crate::fuzz_codec`].

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::codec::{Authentication as A, BackendMessage as B, FrontendMessage as F};

fn s(v: &str) -> PgStr {
    PgStr::from(v)
}

fn b(v: &'static [u8]) -> Bytes {
    Bytes::from_static(v)
}

fn all_frontend() -> Vec<FrontendMessage> {
    vec![
        F::Query(s("SELECT 1; SELECT 2")),
        F::Parse(Parse {
            name: s("st"),
            query: s("SELECT $1"),
            param_types: vec![23, 0],
        }),
        F::Bind(Bind {
            portal: s("p"),
            statement: s("st"),
            param_formats: vec![Format::Binary],
            params: vec![Some(b(&[0, 0, 0, 1])), None, Some(Bytes::new())],
            result_formats: vec![Format::Text, Format::Binary],
        }),
        F::Describe(Target::Statement(s("st"))),
        F::Describe(Target::Portal(s(""))),
        F::Execute {
            portal: s("p"),
            max_rows: 10,
        },
        F::Close(Target::Portal(s("p"))),
        F::Sync,
        F::Flush,
        F::FunctionCall(FunctionCall {
            oid: 1598,
            arg_formats: vec![],
            args: vec![None],
            result_format: Format::Binary,
        }),
        F::CopyData(b(b"1\tx\n")),
        F::CopyDone,
        F::CopyFail(s("aborted")),
        F::Terminate,
        F::Password(b(b"token\0")),
    ]
}

fn all_backend() -> Vec<BackendMessage> {
    let col = Column {
        name: s("id"),
        table_oid: 16384,
        column_attr: 1,
        type_oid: 23,
        type_size: 4,
        type_modifier: -1,
        format: Format::Binary,
    };
    let copy = CopyResponse {
        format: Format::Binary,
        column_formats: vec![Format::Binary; 2],
    };
    vec![
        B::Authentication(A::Ok),
        B::Authentication(A::CleartextPassword),
        B::Authentication(A::Md5Password { salt: [1, 2, 3, 4] }),
        B::Authentication(A::Sasl(vec![s("SCRAM-SHA-256-PLUS"), s("SCRAM-SHA-256")])),
        B::Authentication(A::SaslContinue(b(b"r=abc,s=c2FsdA==,i=4096"))),
        B::Authentication(A::SaslFinal(b(b"v=xyz"))),
        B::Authentication(A::Other {
            code: 7,
            data: Bytes::new(),
        }),
        B::ParameterStatus {
            name: s("server_version"),
            value: s("15.8"),
        },
        B::BackendKeyData {
            process_id: 7,
            secret_key: b(b"abcd"),
        },
        B::BackendKeyData {
            process_id: 7,
            secret_key: Bytes::from(vec![9u8; 32]),
        },
        B::ReadyForQuery(TransactionStatus::Idle),
        B::ReadyForQuery(TransactionStatus::InTransaction),
        B::ReadyForQuery(TransactionStatus::Failed),
        B::RowDescription(vec![
            col.clone(),
            Column {
                name: s("n"),
                format: Format::Text,
                ..col
            },
        ]),
        B::DataRow(DataRow {
            values: vec![Some(b(b"1")), None, Some(Bytes::new())],
        }),
        B::CommandComplete(s("DELETE 3")),
        B::EmptyQueryResponse,
        B::ErrorResponse(error_fields(
            "ERROR",
            "42601",
            "syntax error",
            Some("d"),
            Some("h"),
        )),
        B::NoticeResponse(error_fields("NOTICE", "00000", "hello", None, None)),
        B::CopyInResponse(CopyResponse {
            format: Format::Text,
            column_formats: vec![Format::Text],
        }),
        B::CopyOutResponse(copy.clone()),
        B::CopyBothResponse(copy),
        B::CopyData(b(b"row\n")),
        B::CopyDone,
        B::ParseComplete,
        B::BindComplete,
        B::CloseComplete,
        B::NoData,
        B::PortalSuspended,
        B::ParameterDescription(vec![23, 25]),
        B::NotificationResponse {
            process_id: 3,
            channel: s("ch"),
            payload: s("hi"),
        },
        B::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec![s("_pq_.x")],
        },
        B::FunctionCallResponse(Some(b(b"\x00\x01"))),
        B::FunctionCallResponse(None),
        B::Unknown(b'?'),
    ]
}

#[test]
fn frontend_round_trips() {
    for msg in all_frontend() {
        let wire = encode_frontend(&msg);
        // Every strict prefix asks for more bytes; the whole decodes exactly.
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                decode_frontend(&mut buf, 1 << 20),
                Ok(None),
                "{msg:?} cut at {cut}"
            );
        }
        let mut buf = BytesMut::from(&wire[..]);
        buf.put_slice(b"Q");
        let got = decode_frontend(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(got.msg, msg);
        assert_eq!(got.raw, wire);
        assert_eq!(&buf[..], b"Q", "exactly one message consumed");
    }
}

#[test]
fn backend_round_trips() {
    for msg in all_backend() {
        let wire = encode_backend(&msg);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                decode_backend(&mut buf, 1 << 20),
                Ok(None),
                "{msg:?} cut at {cut}"
            );
        }
        let mut buf = BytesMut::from(&wire[..]);
        let got = decode_backend(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(got.msg, msg);
        assert_eq!(got.raw, wire);
        assert!(buf.is_empty());
    }
}

#[test]
fn named_encoders_match_typed_ones() {
    let check = |wire: Bytes, msg: BackendMessage| {
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(decode_backend(&mut buf, 1 << 20).unwrap().unwrap().msg, msg);
    };
    check(
        ready_for_query(TransactionStatus::Failed),
        B::ReadyForQuery(TransactionStatus::Failed),
    );
    check(authentication_ok(), B::Authentication(A::Ok));
    check(
        authentication_cleartext_password(),
        B::Authentication(A::CleartextPassword),
    );
    check(
        backend_key_data(5, b"wxyz"),
        B::BackendKeyData {
            process_id: 5,
            secret_key: b(b"wxyz"),
        },
    );
    check(
        parameter_status("TimeZone", b"UTC"),
        B::ParameterStatus {
            name: s("TimeZone"),
            value: s("UTC"),
        },
    );
    check(
        command_complete("SELECT 2"),
        B::CommandComplete(s("SELECT 2")),
    );
    check(
        data_row([Some(&b"ab"[..]), None]),
        B::DataRow(DataRow {
            values: vec![Some(b(b"ab")), None],
        }),
    );
    check(
        error_response("ERROR", "42501", "no", Some("d"), Some("h")),
        B::ErrorResponse(error_fields("ERROR", "42501", "no", Some("d"), Some("h"))),
    );
    check(
        notice_response("WARNING", "01000", "w", None, None),
        B::NoticeResponse(error_fields("WARNING", "01000", "w", None, None)),
    );

    let front = |wire: Bytes| {
        let mut buf = BytesMut::from(&wire[..]);
        decode_frontend(&mut buf, 1 << 20).unwrap().unwrap()
    };
    assert_eq!(front(query("SELECT 1")).msg, F::Query(s("SELECT 1")));
    assert_eq!(front(terminate()).msg, F::Terminate);
    assert_eq!(
        front(password_message(b"secret")).as_password().unwrap(),
        s("secret")
    );
    let init = front(sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=x"))
        .as_sasl_initial()
        .unwrap();
    assert_eq!(init.mechanism, s("SCRAM-SHA-256"));
    assert_eq!(init.data, Some(b(b"n,,n=,r=x")));
    assert_eq!(
        front(sasl_response(b"c=biws")).as_sasl_response().unwrap(),
        b(b"c=biws")
    );
    assert!(front(query("x")).as_password().is_err());
}

#[test]
fn startup_packets() {
    let decode = |wire: &[u8]| decode_startup(&mut BytesMut::from(wire), DEFAULT_MAX_STARTUP_LEN);
    let st = decode(&startup_message(&[("user", "alice"), ("database", "db")]))
        .unwrap()
        .unwrap();
    assert_eq!(st.param("user"), Some(&s("alice")));
    assert_eq!(st.param("database"), Some(&s("db")));
    assert!(matches!(
        st,
        Startup::Startup {
            version: PROTOCOL_3_0,
            ..
        }
    ));
    assert_eq!(decode(&ssl_request()), Ok(Some(Startup::SslRequest)));
    assert_eq!(
        decode(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x30]),
        Ok(Some(Startup::GssEncRequest))
    );
    for key_len in [4usize, 32, 256] {
        let key = vec![7u8; key_len];
        let got = decode(&cancel_request(99, &key)).unwrap().unwrap();
        assert_eq!(
            got,
            Startup::Cancel {
                process_id: 99,
                secret_key: Bytes::from(key)
            }
        );
    }
    assert_eq!(decode(&[0x16, 3, 1]), Ok(Some(Startup::DirectTls)));
    assert_eq!(decode(&[0, 0, 0]), Ok(None));
    assert_eq!(decode(&startup_message(&[])[..6]), Ok(None));
    // Protocol 3.2 is recognized.
    let mut v32 = startup_message(&[("user", "u")]).to_vec();
    v32[4..8].copy_from_slice(&PROTOCOL_3_2.to_be_bytes());
    assert!(matches!(
        decode(&v32),
        Ok(Some(Startup::Startup {
            version: PROTOCOL_3_2,
            ..
        }))
    ));
}

#[track_caller]
fn startup_violation(wire: &[u8]) {
    let got = decode_startup(&mut BytesMut::from(wire), DEFAULT_MAX_STARTUP_LEN);
    assert!(
        matches!(
            got,
            Err(ProtocolViolation {
                side: Side::Client,
                ..
            })
        ),
        "{got:?}"
    );
}

#[test]
fn malformed_startup_packets() {
    startup_violation(&[0, 0, 0, 4, 0, 0, 0, 0]);
    startup_violation(&[0xff, 0xff, 0xff, 0xff]);
    startup_violation(&[0, 1, 0, 0]); // 64 KiB > 10 KiB max, before buffering
    startup_violation(&[0, 0, 0, 8, 0, 2, 0, 0]); // protocol 2.0
    startup_violation(&cancel_request(1, b"abc"));
    startup_violation(&cancel_request(1, &[0; 257]));
    startup_violation(&[0, 0, 0, 12, 4, 0xd2, 0x16, 0x2f, 0, 0, 0, 1]); // cancel with no key
    startup_violation(&[0, 0, 0, 12, 0, 3, 0, 0, b'u', 0, b'x', 0]); // value without terminator
    startup_violation(&[0, 0, 0, 11, 0, 3, 0, 0, b'u', 0, 0]); // name, empty value, no terminator
    startup_violation(&[0, 0, 0, 12, 4, 0xd2, 0x16, 0x2f, 0, 0, 0, 0]); // SSLRequest with extra bytes
}

/// A raw message with this tag and body (length computed).
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[track_caller]
fn frontend_violation(wire: &[u8]) {
    let got = decode_frontend(&mut BytesMut::from(wire), 1024);
    assert!(
        matches!(
            got,
            Err(ProtocolViolation {
                side: Side::Client,
                ..
            })
        ),
        "{got:?}"
    );
}

#[track_caller]
fn backend_violation(wire: &[u8]) {
    let got = decode_backend(&mut BytesMut::from(wire), 1024);
    assert!(
        matches!(
            got,
            Err(ProtocolViolation {
                side: Side::Upstream,
                ..
            })
        ),
        "{got:?}"
    );
}

#[test]
fn malformed_frontend_messages() {
    frontend_violation(&[b'Q', 0, 0, 0, 3]); // length below 4
    frontend_violation(&[b'Q', 0xff, 0xff, 0xff, 0xff]); // negative length
    frontend_violation(&[b'Q', 0, 0, 4, 1]); // beyond max, before buffering
    frontend_violation(&frame(b'z', b"")); // unknown tag
    frontend_violation(&frame(b'Q', b"SELECT 1")); // missing NUL
    frontend_violation(&frame(b'Q', b"SELECT 1\0x")); // trailing bytes
    frontend_violation(&frame(b'P', b"s\0SELECT 1\0\0\x02\0\0\0\x17")); // 2 OIDs, 1 present
    frontend_violation(&frame(b'P', b"s\0SELECT 1")); // query not terminated
    frontend_violation(&frame(b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0")); // value length -2
    frontend_violation(&frame(b'B', b"\0\0\0\0\0\x01\0\0\0\x09ab\0\0")); // value past end
    frontend_violation(&frame(b'B', b"\0\0\xff\xff\0\0\0\0")); // 65535 formats, none present
    frontend_violation(&frame(b'B', b"\0\0\0\x01\0\x02\0\0\0\0")); // format code 2
    frontend_violation(&frame(b'D', b"X\0")); // target not S/P
    frontend_violation(&frame(b'E', b"\0\0\0")); // max_rows truncated
    frontend_violation(&frame(b'F', b"\0\0\0\x01\0\0\0\x01\0\0\0\x05ab\0\0")); // arg past end
    frontend_violation(&frame(b'S', b"x")); // Sync with a body
}

#[test]
fn malformed_backend_messages() {
    backend_violation(&[b'D', 0, 0, 0, 0]);
    backend_violation(&[b'D', 0x7f, 0xff, 0xff, 0xff]);
    backend_violation(&frame(b'D', b"\0\x02\0\0\0\x01a")); // 2 values, 1 present
    backend_violation(&frame(b'D', b"\0\x01\xff\xff\xff\xfb")); // length -5
    backend_violation(&frame(b'T', b"\0\x01id\0\0\0")); // field truncated
    backend_violation(&frame(b'T', b"\xff\xff")); // huge count, empty body
    backend_violation(&frame(b'E', b"SERROR\0CXX")); // unterminated field
    backend_violation(&frame(b'E', b"SERROR\0")); // missing final NUL
    backend_violation(&frame(b'R', b"\0\0\0\x63")); // unknown auth code
    backend_violation(&frame(b'R', b"\0\0\0\x05ab")); // short md5 salt
    backend_violation(&frame(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0")); // mechanism list unterminated
    backend_violation(&frame(b'Z', b"X"));
    backend_violation(&frame(b'Z', b""));
    backend_violation(&frame(b'K', b"\0\0\0\x01ab")); // key too short
    backend_violation(&frame(b'v', b"\0\0\0\0\xff\xff\xff\xff")); // negative count
    backend_violation(&frame(b'v', b"\0\0\0\0\0\0\0\x05")); // count beyond body
    backend_violation(&frame(b'H', b"\x02\0\0")); // copy format 2
    backend_violation(&frame(b'V', b"\xff\xff\xff\xfe")); // function result length -2
    backend_violation(&frame(b'C', b"SELECT")); // tag not terminated
    backend_violation(&frame(b'1', b"x")); // ParseComplete with a body
}

/// xorshift64*: a tiny deterministic generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_and_mutated_streams_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid: Vec<Bytes> = all_frontend()
        .iter()
        .map(encode_frontend)
        .chain(all_backend().iter().map(encode_backend))
        .collect();
    for round in 0..20_000 {
        let mut data = Vec::new();
        if round % 2 == 0 {
            // Pure noise.
            let n = rng.below(200);
            data.extend((0..n).map(|_| rng.next() as u8));
        } else {
            // Valid messages with a few bytes flipped, truncated or duplicated.
            data.push(rng.next() as u8);
            for _ in 0..rng.below(12) {
                data.extend_from_slice(&valid[rng.below(valid.len())]);
            }
            for _ in 0..rng.below(4) {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
            data.truncate(data.len() - rng.below(data.len().min(8) + 1).min(data.len()));
        }
        crate::fuzz_codec(&data);
    }
}

#[test]
fn every_truncated_body_is_rejected_without_panic() {
    for wire in all_frontend().iter().map(encode_frontend) {
        for cut in 5..wire.len() {
            let short = frame(wire[0], &wire[5..cut]);
            let _ = decode_frontend(&mut BytesMut::from(&short[..]), 1 << 20);
        }
    }
    for wire in all_backend().iter().map(encode_backend) {
        for cut in 5..wire.len() {
            let short = frame(wire[0], &wire[5..cut]);
            let _ = decode_backend(&mut BytesMut::from(&short[..]), 1 << 20);
        }
    }
}
