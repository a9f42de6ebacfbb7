//! Value masking: every detector with positives and near misses, the
//! styles, column rules, mask selection and reports. Policies are written in
//! KDL so the tests exercise what operators write.

use super::*;
use gw_policy::Source;

const RESOURCES: &str = r#"
resource "db" kind="postgres" {
    address "db:5432"
    labels env="prod"
}
resource "dev" kind="postgres" {
    address "dev:5432"
    labels env="dev"
}
"#;

const ALL: &str = r#"
mask "all" {
    detect "credit-card" "email" "us-ssn" "phone" "iban" "aws-access-key" "aws-secret-key" "jwt" "private-key" "api-token"
    pattern "ticket" regex="TKT-[0-9]{4}-[a-z]+"
}
"#;

fn masker_for(masks: &str, resource: &str, principal: &Principal) -> Masker {
    let text = format!("{RESOURCES}{masks}");
    let policy = gw_policy::load(&[Source::new("t.kdl", text)])
        .unwrap_or_else(|d| panic!("policy does not load: {d:?}"));
    let r = policy
        .resources
        .iter()
        .find(|r| r.name == resource)
        .unwrap();
    Masker::for_session(&policy, r, principal)
}

fn masker(masks: &str) -> Masker {
    masker_for(masks, "db", &Principal::new("ann@example.com", &["sre"]))
}

fn mask(m: &Masker, column: Option<ColumnRef<'_>>, input: &str) -> String {
    let out = m.mask_value(column, input.as_bytes()).unwrap();
    String::from_utf8(out.into_owned()).unwrap()
}

#[track_caller]
fn check(input: &str, expected: &str) {
    thread_local!(static ALL_MASKER: Masker = masker(ALL));
    let got = ALL_MASKER.with(|m| mask(m, None, input));
    assert_eq!(got, expected, "input: {input:?}");
}

#[track_caller]
fn unchanged(input: &str) {
    check(input, input);
}

#[test]
fn detector_order_matches_policy_names() {
    for (d, name) in Detector::ALL.iter().zip(gw_policy::model::DETECTORS) {
        assert_eq!(d.name(), name);
        assert_eq!(Detector::from_name(name), Some(*d));
    }
}

#[test]
fn credit_cards() {
    check(
        "card 4111 1111 1111 1111 ok",
        "card [REDACTED:credit-card] ok",
    );
    check("4111111111111111", "[REDACTED:credit-card]");
    check("4111-1111-1111-1111,", "[REDACTED:credit-card],");
    check("mc 5500 0000 0000 0004", "mc [REDACTED:credit-card]");
    check("amex 378282246310005.", "amex [REDACTED:credit-card].");
    check("6011111111111117", "[REDACTED:credit-card]");
    check("|4012888888881881|", "|[REDACTED:credit-card]|");
    // A trailing digit group after a valid card is not swallowed.
    check("4111 1111 1111 1111 12", "[REDACTED:credit-card] 12");
}

#[test]
fn credit_card_near_misses() {
    unchanged("4111111111111112"); // Luhn fails
    unchanged("1234567890123452"); // Luhn passes, no issuer starts with 1
    unchanged("epoch 1700000000000 ms"); // a timestamp
    unchanged("0.4111111111111111"); // a decimal
    unchanged("4111111111111111.5");
    unchanged("x4111111111111111"); // part of a word
    unchanged("41111111111111111111111"); // too long
}

#[test]
fn emails() {
    check(
        "to bob.smith+x@example.co.uk now",
        "to [REDACTED:email] now",
    );
    check("<ALICE@Example.COM>", "<[REDACTED:email]>");
    check("mailto:a_b@sub.example.io;", "mailto:[REDACTED:email];");
}

#[test]
fn email_near_misses() {
    unchanged("logo@2x.png");
    unchanged("ec2-user@ip-10-0-0-1.ec2.internal:~$ ");
    unchanged("root@web-01:~# ");
    unchanged("a @ b.com");
    unchanged("pkg@1.2.3");
    unchanged("HEAD@{1}");
}

#[test]
fn us_ssns() {
    check("ssn 123-45-6789 x", "ssn [REDACTED:us-ssn] x");
    check("078-05-1120", "[REDACTED:us-ssn]");
}

#[test]
fn us_ssn_near_misses() {
    unchanged("000-12-3456");
    unchanged("666-12-3456");
    unchanged("912-34-5678");
    unchanged("123-00-4567");
    unchanged("123-45-0000");
    unchanged("123456789");
    unchanged("1-123-45-6789-2");
}

#[test]
fn phones() {
    check("call +14155552671 now", "call [REDACTED:phone] now");
    check("+44 20 7946 0958", "[REDACTED:phone]");
    check("+1 (415) 555-2671", "[REDACTED:phone]");
    check("(415) 555-2671", "[REDACTED:phone]");
    check("415-555-2671", "[REDACTED:phone]");
    check("415.555.2671", "[REDACTED:phone]");
    check("1-800-555-0199", "[REDACTED:phone]");
    check("+33 1 23 45 67 89", "[REDACTED:phone]");
}

#[test]
fn phone_near_misses() {
    unchanged("4155552671"); // a bare integer
    unchanged("2024-01-15");
    unchanged("2024-01-15T10:00:00+0100");
    unchanged("12:30:45");
    unchanged("192.168.100.200");
    unchanged("10.0.0.1:5432");
    unchanged("550e8400-e29b-41d4-a716-446655440000");
    unchanged("x+12345678901");
    unchanged("+123"); // too short
    unchanged("v1.415.555.2671.3"); // a longer dotted number
    unchanged("115-555-2671"); // area codes do not start with 1
}

#[test]
fn ibans() {
    check("DE89 3704 0044 0532 0130 00", "[REDACTED:iban]");
    check("iban GB82WEST12345698765432.", "iban [REDACTED:iban].");
    check("NL91ABNA0417164300 FOR", "[REDACTED:iban] FOR");
}

#[test]
fn iban_near_misses() {
    unchanged("DE89 3704 0044 0532 0130 01"); // checksum
    unchanged("GB82WEST12345698765433");
    unchanged("XX89370400440532013000"); // unknown country
    unchanged("DE8937040044053201300099"); // too long for DE
}

#[test]
fn aws_keys() {
    check("id=AKIAIOSFODNN7EXAMPLE", "id=[REDACTED:aws-access-key]");
    check("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws-access-key]");
    check(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [REDACTED:aws-secret-key]",
    );
    check(
        r#""SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","#,
        r#""SecretAccessKey": "[REDACTED:aws-secret-key]","#,
    );
    check(
        "AWS_SECRET_ACCESS_KEY=abcdefghijklmnopqrstuvwxyzabcdefghijklmn",
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]",
    );
    // Standalone: mixed case and digits, like random base64.
    check(
        "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end",
        "key [REDACTED:aws-secret-key] end",
    );
}

#[test]
fn aws_near_misses() {
    unchanged("AKIAIOSFODNN7EXAMPL");
    unchanged("AKIAIOSFODNN7EXAMPLEX");
    unchanged("commit da3f411e5c0b9a8d7e6f5a4b3c2d1e0f9a8b7c6d");
    unchanged("/usr/local/lib/Python3/site-packages/abcde");
    unchanged("ThisIsAVeryLongCamelCaseIdentifierNameAB");
    // A hint but 41 characters: not a secret key's shape.
    unchanged("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX/");
}

#[test]
fn jwts() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    check(&format!("Bearer {jwt}\n"), "Bearer [REDACTED:jwt]\n");
    check(&format!("\"{jwt}\""), "\"[REDACTED:jwt]\"");
    unchanged("eyJhbGciOiJIUzI1NiJ9");
    unchanged("eyJhbGciOiJIUzI1NiJ9.notjson");
}

#[test]
fn private_keys() {
    check(
        "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nxyz==\n-----END RSA PRIVATE KEY-----\nb",
        "a\n[REDACTED:private-key]\nb",
    );
    check(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "[REDACTED:private-key]",
    );
    check(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----.",
        "[REDACTED:private-key].",
    );
    // No END: everything after BEGIN is masked.
    check(
        "x -----BEGIN PRIVATE KEY-----\nMIIEvQ",
        "x [REDACTED:private-key]",
    );
    unchanged("-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----");
    unchanged("-----BEGIN CERTIFICATE-----");
}

#[test]
fn api_tokens() {
    check(
        "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 x",
        "token [REDACTED:api-token] x",
    );
    check(
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
        "[REDACTED:api-token]",
    );
    check("xoxb-1234567890-abcdefghij-XYZ", "[REDACTED:api-token]");
    check("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:api-token]");
    check("glpat-abcdefghij0123456789", "[REDACTED:api-token]");
    check(
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "[REDACTED:api-token]",
    );
    check(
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "[REDACTED:api-token]",
    );
    unchanged("ghp_short");
    unchanged("sk_live_");
    unchanged("my_ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
}

#[test]
fn custom_patterns() {
    check("see TKT-2024-abc.", "see [REDACTED:ticket].");
    unchanged("TKT-24-abc");
}

#[test]
fn ordinary_text_is_untouched() {
    unchanged("");
    unchanged("12345");
    unchanged("2024-01-15 10:00:00.123456+00");
    unchanged("192.168.1.10");
    unchanged("550e8400-e29b-41d4-a716-446655440000");
    unchanged(" id | name  | total\n----+-------+------\n  1 | Alice | 12.50");
    unchanged("héllo wörld ✓");
}

#[test]
fn non_utf8_values_are_scanned_as_bytes() {
    let m = masker(ALL);
    let out = m
        .mask_value(None, b"\xff\xfe 4111111111111111 \xc3")
        .unwrap();
    assert_eq!(&out[..], b"\xff\xfe [REDACTED:credit-card] \xc3");
}

#[test]
fn unmatched_values_are_borrowed() {
    let m = masker(ALL);
    assert!(matches!(
        m.mask_value(None, b"plain").unwrap(),
        Cow::Borrowed(_)
    ));
}

#[test]
fn partial_style() {
    let m = masker(r#"mask "p" { detect "credit-card" "us-ssn"; style "partial"; }"#);
    assert_eq!(mask(&m, None, "4111111111111111"), "************1111");
    assert_eq!(mask(&m, None, "4111 1111 1111 1111"), "***************1111");
    assert_eq!(mask(&m, None, "ssn 123-45-6789"), "ssn *******6789");
}

#[test]
fn partial_style_of_short_values_hides_everything() {
    let m = masker(r#"mask "p" { columns "pin"; style "partial"; }"#);
    let col = Some(ColumnRef::new(None, "pin"));
    assert_eq!(mask(&m, col, "1234567"), "*******");
    assert_eq!(mask(&m, col, "ünïcödé!"), "****ödé!");
}

#[test]
fn hash_style() {
    let m = masker(r#"mask "h" { detect "credit-card" "email"; style "hash"; }"#)
        .with_hash_key([1; 32]);
    let a = mask(&m, None, "4111-1111-1111-1111");
    let b = mask(&m, None, "4111 1111 1111 1111");
    assert!(
        a.starts_with("[REDACTED:credit-card#") && a.len() == 33,
        "{a}"
    );
    assert_eq!(a, b, "separators do not change the hash");
    assert_ne!(a, mask(&m, None, "5500 0000 0000 0004"));
    assert_eq!(
        mask(&m, None, "Bob@Example.com"),
        mask(&m, None, "bob@example.com")
    );
    let other_key = m.clone().with_hash_key([2; 32]);
    assert_ne!(a, mask(&other_key, None, "4111-1111-1111-1111"));
}

#[test]
fn hash_style_without_a_key_is_full() {
    let m = masker(r#"mask "h" { detect "credit-card"; style "hash"; }"#);
    assert_eq!(mask(&m, None, "4111111111111111"), "[REDACTED:credit-card]");
}

#[test]
fn strictest_style_wins() {
    let m = masker(
        r#"
mask "a" { detect "credit-card"; style "partial"; }
mask "b" { detect "credit-card"; style "full"; }
"#,
    );
    assert_eq!(mask(&m, None, "4111111111111111"), "[REDACTED:credit-card]");
}

#[test]
fn private_keys_are_always_full() {
    let m = masker(r#"mask "k" { detect "private-key"; style "partial"; }"#);
    assert_eq!(
        mask(
            &m,
            None,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"
        ),
        "[REDACTED:private-key]"
    );
}

const COLUMNS: &str = r#"
mask "pii" {
    columns "customers.phone" "ssn" "*.*secret*" "billing.cards.number"
}
"#;

#[track_caller]
fn check_column(table: Option<&str>, column: &str, masked: bool) {
    thread_local!(static M: Masker = masker(COLUMNS));
    let got = M.with(|m| mask(m, Some(ColumnRef::new(table, column)), "hello"));
    let want = if masked { "[REDACTED:pii]" } else { "hello" };
    assert_eq!(got, want, "{table:?}.{column}");
}

#[test]
fn column_rules() {
    check_column(Some("customers"), "phone", true);
    check_column(Some("public.customers"), "PHONE", true);
    check_column(Some("Customers"), "phone", true);
    check_column(Some("orders"), "phone", false);
    check_column(Some("customers"), "name", false);
    check_column(Some("anything"), "ssn", true);
    check_column(None, "ssn", true);
    check_column(Some("users"), "api_secret_hash", true);
    check_column(Some("cards"), "number", true);
    check_column(Some("billing.cards"), "number", true);
    check_column(Some("other.cards"), "number", true); // schema-insensitive
    check_column(Some("users"), "number", false);
}

#[test]
fn table_column_rules_match_when_the_table_is_unknown() {
    // Fail closed: the data path could not name the table.
    check_column(None, "phone", true);
    check_column(None, "name", false);
}

#[test]
fn columns_without_a_rule_are_scanned() {
    let m = masker(&format!("{ALL}{COLUMNS}"));
    let col = Some(ColumnRef::new(Some("orders"), "note"));
    assert_eq!(
        mask(&m, col, "paid 4111111111111111"),
        "paid [REDACTED:credit-card]"
    );
}

#[test]
fn masks_select_resources_and_skip_excepted_principals() {
    let masks = r#"
mask "prod-only" {
    resources env="prod"
    except-groups "dba"
    detect "email"
}
"#;
    let sre = Principal::new("ann@example.com", &["sre"]);
    let dba = Principal::new("bob@example.com", &["dba"]);
    let m = masker_for(masks, "db", &sre);
    assert_eq!(mask(&m, None, "x@example.com"), "[REDACTED:email]");
    let m = masker_for(masks, "db", &dba);
    assert!(m.is_noop());
    assert_eq!(mask(&m, None, "x@example.com"), "x@example.com");
    let m = masker_for(masks, "dev", &sre);
    assert!(m.is_noop());
}

#[test]
fn reports_count_by_label() {
    let m = masker(&format!("{ALL}{COLUMNS}"));
    for v in [
        "4111111111111111",
        "a@b.com 4111111111111111",
        "x 5500000000000004",
    ] {
        m.mask_value(None, v.as_bytes()).unwrap();
    }
    m.mask_value(Some(ColumnRef::new(None, "ssn")), b"1")
        .unwrap();
    let report = m.take_report();
    assert_eq!(
        report.to_string(),
        "masked 3 values (credit-card), 1 value (email), 1 value (pii)"
    );
    assert_eq!(report.total(), 5);
    assert!(m.take_report().is_empty(), "taking the report resets it");
}

#[test]
fn errors_fail_closed() {
    let m = masker(ALL).with_value_limit(10);
    assert_eq!(
        m.mask_value(None, b"01234567890"),
        Err(MaskError::ValueTooLarge { len: 11, limit: 10 })
    );
    let m = masker(ALL);
    let mut key = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
    key.resize(crate::BLOCK_CAP + 100, b'A');
    assert_eq!(
        m.mask_value(None, &key),
        Err(MaskError::KeyBlockTooLong {
            limit: crate::BLOCK_CAP
        })
    );
    assert_eq!(
        MaskError::KeyBlockTooLong { limit: 10 }.to_string(),
        "private key block not closed within 10 bytes"
    );
}

#[test]
fn binary_blocking_follows_the_masks() {
    assert!(masker(ALL).blocks_binary());
    let m = masker(r#"mask "p" { detect "email"; binary "pass"; }"#);
    assert!(!m.blocks_binary());
}

#[test]
fn maskers_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Masker>();
    send::<StreamMasker>();
}
