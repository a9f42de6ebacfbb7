//! Upstream login tests with scripted server messages.

use bytes::BytesMut;

use super::*;
use crate::codec::{encode_backend, error_fields};

fn be(msg: BackendMessage) -> Backend {
    let mut buf = BytesMut::from(&encode_backend(&msg)[..]);
    codec::decode_backend(&mut buf, 1 << 20).unwrap().unwrap()
}

#[test]
fn md5_login_only_when_allowed() {
    let md5 = BackendMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] });
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
