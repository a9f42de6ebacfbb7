//! Snapshots of realistic output masked end to end: a psql session seen as
//! terminal output, a shell transcript with colours, and a result set
//! masked cell by cell with column rules.

use gw_mask::{ColumnRef, Masker};
use gw_policy::{Principal, Source};

const POLICY: &str = r#"
resource "billing" kind="postgres" {
    address "billing-db:5432"
    labels env="prod"
}

mask "company-pii" {
    resources env="prod"
    detect "credit-card" "email" "us-ssn" "phone" "iban"
    style "partial"
}

mask "credentials" {
    detect "aws-access-key" "aws-secret-key" "jwt" "private-key" "api-token"
    style "full"
}

mask "customer-ids" {
    resources env="prod"
    columns "customers.tax_id" "*.password_hash"
    style "hash"
}
"#;

fn masker() -> Masker {
    let policy = gw_policy::load(&[Source::new("policy.kdl", POLICY)]).unwrap();
    let principal = Principal::new("ann@example.com", &["sre"]);
    Masker::for_session(&policy, &policy.resources[0], &principal).with_hash_key([42; 32])
}

/// Masks `text` as a stream in small chunks, as terminal output arrives.
fn stream(masker: &Masker, text: &str) -> String {
    let mut s = masker.stream();
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(13) {
        s.push(chunk, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    // Escapes are shown as `␛` so the snapshot stays readable.
    String::from_utf8(out).unwrap().replace('\x1b', "␛")
}

#[test]
fn psql_session() {
    let text = "\
billing=> SELECT id, name, email, phone, card, note FROM customers LIMIT 4;
 id |    name     |          email           |      phone      |        card         |               note
----+-------------+--------------------------+-----------------+---------------------+-----------------------------------
  1 | Ann Lee     | ann.lee@example.com      | +1 415-555-2671 | 4111 1111 1111 1111 | prefers email
  2 | Bo Chen     | bo@chen.example.org      | (212) 555-0147  | 5500-0000-0000-0004 | SSN on file: 123-45-6789
  3 | Cy Diaz     | cy.diaz@example.co.uk    | +44 20 7946 0958| 378282246310005     | refund to DE89 3704 0044 0532 0130 00
  4 | Di Evans    |                          |                 | 4111111111111112    | order 1700000000000, ip 10.0.0.12
(4 rows)

billing=> SELECT key, value FROM settings WHERE key LIKE '%token%';
      key       |                                value
----------------+----------------------------------------------------------------------
 github_token   | ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789
 slack_webhook  | xoxb-2048-4096-aBcDeFgHiJkLmNoPqRsT
 aws_key_id     | AKIAIOSFODNN7EXAMPLE
 aws_secret     | aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
(4 rows)

billing=> \\q
";
    let m = masker();
    insta::assert_snapshot!(stream(&m, text));
    insta::assert_snapshot!("psql_session_report", m.take_report().to_string());
}

#[test]
fn terminal_transcript() {
    let text = "\
\x1b[1;32mann@bastion\x1b[0m:\x1b[1;34m~\x1b[0m$ kubectl get secret api -o jsonpath='{.data.token}' | base64 -d
eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmRlZmF1bHQ6YXBpIn0.c2lnbmF0dXJlLWJ5dGVz
\x1b[1;32mann@bastion\x1b[0m:\x1b[1;34m~\x1b[0m$ grep -i card /var/log/app.log | tail -2
2024-01-15T10:00:01Z \x1b[33mWARN\x1b[0m charge failed card=\x1b[31m4111\x1b[0m-1111-1111-1111 user=ann@example.com
2024-01-15T10:00:02Z \x1b[32mINFO\x1b[0m charge ok card=************1111 amount=12.50
\x1b[1;32mann@bastion\x1b[0m:\x1b[1;34m~\x1b[0m$ cat ~/.ssh/id_ed25519
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDn0ZkK7UDhbqJ3VL0hCqDhmTnfmdJXm4wMcRwKuBlYBwAAAJi8W0aTvFtG
-----END OPENSSH PRIVATE KEY-----
\x1b[1;32mann@bastion\x1b[0m:\x1b[1;34m~\x1b[0m$ env | grep -i key
STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc
GOOGLE_API_KEY=AIzaSyA-1234567890abcdefghijklmnopqrstu
\x1b[1;32mann@bastion\x1b[0m:\x1b[1;34m~\x1b[0m$ git log --oneline -1
da3f411e5c0b9a8d7e6f5a4b3c2d1e0f9a8b7c6d fix: retry on 503 (see #4111)
";
    let m = masker();
    insta::assert_snapshot!(stream(&m, text));
    insta::assert_snapshot!("terminal_transcript_report", m.take_report().to_string());
}

#[test]
fn result_set_cells() {
    let columns = [
        (Some("customers"), "id"),
        (Some("customers"), "tax_id"),
        (Some("customers"), "notes"),
        (None, "password_hash"),
        (None, "count"),
    ];
    let rows = [
        [
            "1",
            "DE123456789",
            "call +1 415-555-2671",
            "$2b$12$abcdefghijklmnopqrstuv",
            "3",
        ],
        [
            "2",
            "DE987654321",
            "card 4111111111111111",
            "$2b$12$abcdefghijklmnopqrstuv",
            "7",
        ],
        ["3", "", "no PII here", "", "0"],
    ];
    let m = masker();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .zip(row)
            .map(|(&(table, column), value)| {
                let masked = m
                    .mask_value(Some(ColumnRef::new(table, column)), value.as_bytes())
                    .unwrap();
                String::from_utf8(masked.into_owned()).unwrap()
            })
            .collect();
        out.push_str(&cells.join(" | "));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
    insta::assert_snapshot!("result_set_cells_report", m.take_report().to_string());
}
