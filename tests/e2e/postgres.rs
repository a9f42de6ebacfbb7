//! `psql` and `pgbench` → gatewayd → PostgreSQL 15 (TLS, SCRAM), all real.
//! See: issue #4.

use gw_e2e::{Gateway, backend, replay, require, require_python, text};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
// The policy every PostgreSQL end-to-end test runs under.
resource "orders" kind="postgres" {
    address "{pg}"
    database "orders"
    credential user="app" password="env:ORDERS_DB_PASSWORD"
    tls mode="verify-full" ca="file:{ca}"
    labels env="prod"
}

grant "oncall" {
    groups "oncall"
    resources "orders"
    max-session "1h"
}

grant "short" {
    groups "short"
    resources "orders"
    max-session "3s"
}

guard "delete-without-where" {
    statements "delete" "update"
    where #false
    action "deny"
    message "DELETE and UPDATE need a WHERE clause"
}

guard "no-drop" {
    statements "drop"
    action "deny"
}

mask "pii" {
    detect "credit-card" "email" "aws-access-key"
    style "full"
}

test "oncall may connect" {
    principal "olga@example.com"
    groups "oncall"
    request resource="orders"
    expect "allow"
}
"#;

struct Env {
    _pg: backend::Postgres,
    gw: Gateway,
    token: String,
}

/// PostgreSQL with sample data and a gateway in front of it, or `None`
/// (skip, outside CI) when the machine lacks the peers.
fn env() -> Option<Env> {
    if !require(&["postgres", "psql", "pgbench"]) {
        return None;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::builder(POLICY)
        .upstream(&pg, dir.path())
        .start_in(dir);
    let token = gw.token("olga@example.com", &["oncall"]);
    Some(Env { _pg: pg, gw, token })
}

#[test]
fn credentials_are_injected_results_masked_and_recorded() {
    let Some(e) = env() else { return };
    let out = e.gw.psql(
        "orders",
        &e.token,
        &[
            "-c",
            "select current_user, id, name, email, card, note from customers order by id",
        ],
    );
    let out = text(&out);
    // The gateway logged in as the resource's role, with its password.
    assert!(out.contains(" app "), "{out}");
    assert!(
        out.contains("[REDACTED:credit-card]")
            && out.contains("[REDACTED:email]")
            && out.contains("[REDACTED:aws-access-key]"),
        "{out}"
    );
    for secret in [
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "ada@example.com",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(!out.contains(secret), "{secret} reached the client:\n{out}");
    }
    let recs = e.gw.wait_recordings(1);
    assert_eq!(recs.len(), 1, "one session, one recording");
    let rec = recs[0].to_str().unwrap();
    let key = e.gw.recording_key();
    let verified = replay(&[
        "verify",
        "--require-trailer",
        "--key",
        key.to_str().unwrap(),
        rec,
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    let cat = text(&replay(&["cat", rec]));
    assert!(cat.contains("select current_user, id, name"), "{cat}");
    assert!(cat.contains("[REDACTED:credit-card]"), "{cat}");
    for secret in [
        "4111 1111 1111 1111",
        "ada@example.com",
        "AKIAIOSFODNN7EXAMPLE",
        "app-secret",
    ] {
        assert!(!cat.contains(secret), "{secret} reached the recording");
    }
    let info = text(&replay(&["info", "--format", "json", rec]));
    assert!(
        info.contains("olga@example.com") && info.contains("\"orders\""),
        "{info}"
    );
    // The gateway's logs and audit never carry the target password or the token.
    let log = e.gw.log() + &std::fs::read_to_string(e.gw.state().join("audit.jsonl")).unwrap();
    assert!(
        !log.contains("app-secret") && !log.contains(&e.token),
        "a secret reached the logs"
    );
}

#[test]
fn denials_keep_client_and_server_in_step() {
    let Some(e) = env() else { return };
    let script = "\\set VERBOSITY verbose
select 1 as before;
delete from customers;
begin;
delete from customers;
select 1 as in_failed_tx;
rollback;
select count(*) as still_two from customers;
select 1 \\; delete from audit_trail;
select count(*) as audit_rows from audit_trail;
drop table customers;
delete from customers where id = 2;
select count(*) as one_left from customers;
";
    let out = text(
        &e.gw
            .psql_stdin("orders", &e.token, &["-f", "-"], script.as_bytes()),
    );
    let denials = out
        .matches("ERROR:  42501: permission denied by gateway policy")
        .count();
    assert_eq!(
        denials, 4,
        "outside, inside a transaction, multi-statement, DROP:\n{out}"
    );
    assert!(
        out.contains("DELETE and UPDATE need a WHERE clause"),
        "{out}"
    );
    // The real server is in the aborted state the client believes in.
    assert!(
        out.contains("25P02") && out.contains("current transaction is aborted"),
        "{out}"
    );
    assert!(out.contains("ROLLBACK"), "{out}");
    let counts: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    // still_two = 2, audit_rows = 100 (the whole multi-statement query was refused), one_left = 1.
    assert_eq!(counts, ["1", "2", "100", "1"], "{out}");
    let audit = e.gw.audit();
    let denied = audit
        .iter()
        .filter(|a| a["event"] == "command" && a["verdict"] == "deny")
        .count();
    assert_eq!(denied, 4, "every denial is audited");
}

#[test]
fn copy_out_is_masked_and_copy_in_works() {
    let Some(e) = env() else { return };
    let out = text(&e.gw.psql(
        "orders",
        &e.token,
        &[
            "-c",
            "\\copy (select id, email, card from customers order by id) to stdout",
        ],
    ));
    assert!(
        out.contains("[REDACTED:email]") && out.contains("[REDACTED:credit-card]"),
        "{out}"
    );
    assert!(
        !out.contains("4111") && !out.contains("grace@example.com"),
        "{out}"
    );
    let copied = text(&e.gw.psql_stdin(
        "orders",
        &e.token,
        &["-c", "\\copy audit_trail (what) from stdin"],
        b"copied one\ncopied two\n\\.\n",
    ));
    assert!(copied.contains("COPY 2"), "{copied}");
    let n = text(&e.gw.psql(
        "orders",
        &e.token,
        &[
            "-At",
            "-c",
            "select count(*) from audit_trail where what like 'copied%'",
        ],
    ));
    assert_eq!(n.trim(), "2");
}

#[test]
fn pgbench_simple_extended_and_prepared() {
    let Some(e) = env() else { return };
    let conn = e.gw.conninfo("orders");
    // Initialization through the gateway: CREATE TABLE, COPY FROM STDIN, VACUUM, primary keys.
    let init = Command::new("pgbench")
        .args(["-i", "-I", "tgvp", "-s", "1", &conn])
        .env("PGPASSWORD", &e.token)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    for mode in ["simple", "extended", "prepared"] {
        let run = Command::new("pgbench")
            .args(["-S", "-n", "-c", "4", "-t", "50", "-M", mode, &conn])
            .env("PGPASSWORD", &e.token)
            .output()
            .unwrap();
        let out = text(&run);
        assert!(run.status.success(), "{mode}: {out}");
        assert!(
            out.contains("number of transactions actually processed: 200/200"),
            "{mode}: {out}"
        );
    }
    // The TPC-B-like default script writes with WHERE clauses: allowed.
    let run = Command::new("pgbench")
        .args(["-n", "-c", "2", "-t", "20", "-M", "extended", &conn])
        .env("PGPASSWORD", &e.token)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
}

#[test]
fn cancel_with_sigint_reaches_the_server() {
    let Some(e) = env() else { return };
    let start = Instant::now();
    let child = Command::new("psql")
        .args([
            "-X",
            "--no-psqlrc",
            "-d",
            &e.gw.conninfo("orders"),
            "-c",
            "select pg_sleep(30)",
        ])
        .env("PGPASSWORD", &e.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = text(&child.wait_with_output().unwrap());
    assert!(
        out.contains("canceling statement due to user request"),
        "{out}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the cancel did not take effect"
    );
}

#[test]
fn the_grant_limits_session_length() {
    let Some(e) = env() else { return };
    let token = e.gw.token("sid@example.com", &["short"]);
    let start = Instant::now();
    let out = text(&e.gw.psql("orders", &token, &["-c", "select pg_sleep(10)"]));
    assert!(
        out.contains("session ended by the gateway: the grant allows sessions of at most 3s"),
        "{out}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the session outlived its grant"
    );
}

#[test]
fn refusals_are_clear_and_audited() {
    let Some(e) = env() else { return };
    let out = text(&e.gw.psql("orders", "not-a-token", &["-c", "select 1"]));
    assert!(
        out.contains("gateway authentication failed: the password is not a gateway token"),
        "{out}"
    );
    let forged = format!("{}x", &e.token[..e.token.len() - 1]);
    let out = text(&e.gw.psql("orders", &forged, &["-c", "select 1"]));
    assert!(out.contains("gateway authentication failed"), "{out}");
    let stranger = e.gw.token("sue@example.com", &["support"]);
    let out = text(&e.gw.psql("orders", &stranger, &["-c", "select 1"]));
    assert!(
        out.contains(
            "access denied by gateway policy: no grant gives sue@example.com access to \"orders\""
        ),
        "{out}"
    );
    let out = text(&e.gw.psql("nonexistent", &e.token, &["-c", "select 1"]));
    assert!(
        out.contains("there is no resource named \"nonexistent\""),
        "{out}"
    );
    let plain = Command::new("psql")
        .args([
            "-X",
            "-d",
            &e.gw
                .conninfo("orders")
                .replace("sslmode=require", "sslmode=disable"),
            "-c",
            "select 1",
        ])
        .env("PGPASSWORD", &e.token)
        .output()
        .unwrap();
    assert!(
        text(&plain).contains("the gateway requires TLS"),
        "{}",
        text(&plain)
    );
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| a["event"] == "authentication-failed"));
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "session-denied" && a["principal"] == "sue@example.com")
    );
}

#[test]
fn a_malformed_message_ends_only_that_session() {
    let Some(e) = env() else { return };
    if !require(&["python3"]) {
        return;
    }
    // A long-running healthy session, started first.
    let healthy = Command::new("psql")
        .args([
            "-X",
            "--no-psqlrc",
            "-At",
            "-d",
            &e.gw.conninfo("orders"),
            "-c",
            "select pg_sleep(2)",
            "-c",
            "select 'still fine'",
        ])
        .env("PGPASSWORD", &e.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/malformed_pg.py");
    let bad = Command::new("python3")
        .args([script, &e.gw.pg_port.to_string(), &e.token])
        .output()
        .unwrap();
    let out = text(&bad);
    assert!(bad.status.success(), "{out}");
    // The answer is an ErrorResponse ('E' = 45) with SQLSTATE 08P01, then the socket closes.
    let first = out.lines().next().unwrap_or("");
    assert!(
        first.starts_with("45"),
        "expected an ErrorResponse, got {first}"
    );
    assert!(
        first.contains(&hex("08P01")),
        "expected SQLSTATE 08P01: {first}"
    );
    assert!(out.contains("closed"));
    let healthy = text(&healthy.wait_with_output().unwrap());
    assert!(
        healthy.contains("still fine"),
        "the other session was disturbed: {healthy}"
    );
    let audit = e.gw.audit();
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "protocol-violation" && a["side"] == "client"),
        "{audit:?}"
    );
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn errors_that_echo_values_are_masked() {
    let Some(e) = env() else { return };
    let out = text(&e.gw.psql(
        "orders",
        &e.token,
        &[
            "-c",
            "insert into customers values (3, 'Ada again', 'ada@example.com', '', '')",
        ],
    ));
    assert!(
        out.contains("duplicate key value violates unique constraint"),
        "{out}"
    );
    assert!(
        out.contains("[REDACTED:email]") && !out.contains("ada@example.com"),
        "{out}"
    );
}

#[test]
fn metrics_count_sessions_and_verdicts() {
    let Some(e) = env() else { return };
    e.gw.psql(
        "orders",
        &e.token,
        &["-c", "select 1", "-c", "delete from customers"],
    );
    e.gw.psql("orders", "not-a-token", &["-c", "select 1"]);
    let m = e.gw.admin_get("/metrics");
    for line in [
        "gatewayd_sessions_opened_total{protocol=\"postgres\"} 1",
        "gatewayd_commands_total{verdict=\"deny\"} 1",
        "gatewayd_authentication_failures_total 1",
        "gatewayd_policy_active 1",
    ] {
        assert!(m.lines().any(|l| l == line), "missing `{line}` in:\n{m}");
    }
    assert!(e.gw.admin_get("/readyz").contains("\"ready\":true"));
}

#[test]
fn graceful_shutdown_ends_sessions_and_signs_their_recordings() {
    let Some(mut e) = env() else { return };
    let child = Command::new("psql")
        .args([
            "-X",
            "--no-psqlrc",
            "-d",
            &e.gw.conninfo("orders"),
            "-c",
            "select 1 as first",
            "-c",
            "select pg_sleep(30)",
        ])
        .env("PGPASSWORD", &e.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = e.gw.terminate().expect("gatewayd exits after SIGTERM");
    assert!(status.success(), "gatewayd exit status {status}");
    let out = text(&child.wait_with_output().unwrap());
    assert!(out.contains("the gateway is shutting down"), "{out}");
    let recs = e.gw.recordings();
    assert_eq!(recs.len(), 1);
    let key = e.gw.recording_key();
    let verified = replay(&[
        "verify",
        "--require-trailer",
        "--key",
        key.to_str().unwrap(),
        recs[0].to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "the recording was not finished: {}",
        text(&verified)
    );
    assert!(text(&replay(&["cat", recs[0].to_str().unwrap()])).contains("select 1 as first"));
}

/// psycopg 3: extended protocol, prepared statements, binary results, and a
/// pipeline whose middle statement is denied. See: issue #4.
#[test]
fn a_real_driver_with_prepared_statements_binary_results_and_pipelines() {
    let Some(e) = env() else { return };
    if !require_python("psycopg", "psycopg[binary]") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/driver_pg.py");
    let out = Command::new("python3")
        .args([script, &e.gw.conninfo("orders")])
        .env("PGPASSWORD", &e.token)
        .output()
        .unwrap();
    let out = text(&out);
    for line in [
        "prepared 1 Ada",
        "prepared 2 Grace",
        "binary 1 None",
        "text [REDACTED:email]",
        "pipeline-first first",
        "pipeline-error [('error', '42501', 'InsufficientPrivilege')]",
        "after-pipeline 2",
        "tx-denied 42501",
        "tx-status INERROR",
        "tx-aborted 25P02",
        "tx-after-rollback 2",
        "direct-tls 1 True",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
}
