//! Validator unit tests; detectors end to end are tested in `masker`.

use super::*;

#[track_caller]
fn check_luhn(digits: &str, expected: bool) {
    let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    assert_eq!(luhn(&d), expected, "{digits}");
}

#[test]
fn luhn_checksums() {
    check_luhn("4111111111111111", true);
    check_luhn("4111111111111112", false);
    check_luhn("79927398713", true);
    check_luhn("0", true);
}

#[track_caller]
fn check(check: Check, hay: &str, expected: Option<&str>) {
    let got = validate(check, hay.as_bytes(), 0, hay.len()).map(|(s, e)| &hay[s..e]);
    assert_eq!(got, expected, "{hay}");
}

#[test]
fn validators_return_the_span_to_mask() {
    check(
        Check::Card,
        "4111 1111 1111 1111 12",
        Some("4111 1111 1111 1111"),
    );
    check(
        Check::Iban,
        "NL91ABNA0417164300 FOR",
        Some("NL91ABNA0417164300"),
    );
    check(Check::Iban, "NL91ABNA0417164300FOR", None);
    check(Check::Ssn, "123-45-6789", Some("123-45-6789"));
    check(Check::Phone, "+123456", None);
    check(Check::Email, "a@b.local", None);
    check(
        Check::AwsSecretBare,
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmn",
        None,
    );
}
