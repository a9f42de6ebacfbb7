//! SCRAM client tests: the RFC 7677 vector and every rejection path.

use super::*;

// RFC 7677, section 3.
const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

#[test]
fn rfc7677_vector() {
    let mut c = ScramClient::with_nonce("user", "pencil", NONCE);
    assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let fin = c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(std::str::from_utf8(&fin).unwrap(), CLIENT_FINAL);
    c.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
    assert!(c.is_done());
}

#[test]
fn wrong_server_signature_fails() {
    let mut c = ScramClient::with_nonce("user", "pencil", NONCE);
    c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
    let bad = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_eq!(
        c.verify_server_final(bad.as_bytes()),
        Err(AuthError::ServerSignature)
    );
    assert!(!c.is_done());
}

#[track_caller]
fn check_first(server_first: &str, expect: AuthError) {
    let mut c = ScramClient::with_nonce("user", "pencil", NONCE);
    assert_eq!(c.handle_server_first(server_first.as_bytes()), Err(expect));
}

#[test]
fn server_first_rejections() {
    let m = AuthError::Malformed("server-first");
    check_first(
        "r=XXXX%abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        AuthError::NonceMismatch,
    );
    check_first(
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        AuthError::NonceMismatch,
    );
    check_first(
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
        AuthError::Iterations(4095),
    );
    check_first(
        "r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=4000000000",
        AuthError::Iterations(4_000_000_000),
    );
    check_first("r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096", m.clone());
    check_first("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=-1", m.clone());
    check_first("m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=4096", m.clone());
    check_first("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA", m.clone());
    check_first("", m.clone());
    let mut c = ScramClient::with_nonce("user", "pencil", NONCE);
    assert_eq!(c.handle_server_first(&[0xff, 0xfe]), Err(m));
}

#[test]
fn server_error_and_order() {
    let mut c = ScramClient::with_nonce("user", "pencil", NONCE);
    assert!(c.verify_server_final(SERVER_FINAL.as_bytes()).is_err());
    c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
    assert!(c.handle_server_first(SERVER_FIRST.as_bytes()).is_err());
    assert_eq!(
        c.verify_server_final(b"e=invalid-proof"),
        Err(AuthError::ServerError("invalid-proof".into()))
    );
}

#[test]
fn random_nonce_is_base64_of_18_bytes() {
    let c = ScramClient::new("pw").unwrap();
    let first = String::from_utf8(c.client_first()).unwrap();
    let nonce = first.strip_prefix("n,,n=,r=").unwrap();
    assert_eq!(B64.decode(nonce).unwrap().len(), 18);
}

#[test]
fn md5_matches_postgres() {
    // Python: "md5" + md5(md5(b"secretpostgres").hexdigest() + salt).hexdigest()
    let got = md5_password("postgres", "secret", [1, 2, 3, 4]);
    assert_eq!(got, "md5bb41a296aab6baccb36ff243a562abff");
}
