//! Reviews in the PostgreSQL data path: a real `psql` session's statement is
//! held until another person approves it with `gwctl review`, then runs on
//! the same connection. See: issue #5.

use gw_e2e::{Gateway, backend, replay, require, text};
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const POLICY: &str = r#"
resource "orders" kind="postgres" {
    address "{pg}"
    database "orders"
    credential user="app" password="env:ORDERS_DB_PASSWORD"
    tls mode="verify-full" ca="file:{ca}"
}

grant "oncall" {
    groups "oncall"
    resources "orders"
    max-session "1h"
}

grant "contractors-after-approval" {
    groups "contractors"
    resources "orders"
    max-session "1h"
    approval approvers="dba" quorum=1 timeout="10m" window="30m"
}

guard "drop-needs-a-dba" {
    statements "drop"
    action "review" approvers="dba" quorum=1 timeout="10m"
}

guard "truncate-needs-two-dbas" {
    statements "truncate"
    action "review" approvers="dba" quorum=2 timeout="10m"
}

guard "delete-needs-a-dba" {
    statements "delete"
    action "review" approvers="dba" quorum=1 timeout="10m"
}

guard "alter-expires-fast" {
    statements "alter"
    action "review" approvers="dba" quorum=1 timeout="3s"
}
"#;

struct Env {
    _pg: backend::Postgres,
    gw: Gateway,
    /// The requester: on call, and also a DBA (who still cannot approve
    /// their own request).
    alice: String,
    bob: String,
    carol: String,
    /// On call, not a DBA.
    dave: String,
}

fn env_with(config: &str, envs: &[(&str, &str)]) -> Option<Env> {
    if !require(&["postgres", "psql"]) {
        return None;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Gateway::builder(POLICY)
        .upstream(&pg, dir.path())
        .config(config);
    for (k, v) in envs {
        b = b.env(k, v);
    }
    let gw = b.start_in(dir);
    Some(Env {
        alice: gw.token("alice@example.com", &["oncall", "dba"]),
        bob: gw.token("bob@example.com", &["dba"]),
        carol: gw.token("carol@example.com", &["dba"]),
        dave: gw.token("dave@example.com", &["oncall"]),
        _pg: pg,
        gw,
    })
}

fn env() -> Option<Env> {
    env_with("", &[])
}

/// A `psql` reading a script from stdin, with its stderr streamed so a test
/// can see a notice while the statement is still held.
struct Session {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Session {
    fn start(gw: &Gateway, token: &str, script: &str) -> Session {
        let mut child = Command::new("psql")
            .args(["-X", "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=0"])
            .args(["-d", &gw.conninfo("orders"), "-f", "-"])
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Session {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn wait_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!("psql never printed {needle:?}; it printed: {:?}", self.seen);
    }

    /// The review id from the hold notice.
    fn held_review(&mut self) -> String {
        let line = self.wait_stderr("held for review rv-");
        let start = line.find("rv-").unwrap();
        line[start..start + 13].to_owned()
    }

    fn finish(mut self) -> (String, String) {
        let out = self.child.wait_with_output().unwrap();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            self.seen.join("\n"),
        )
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

fn review_json(e: &Env, token: &str, id: &str) -> serde_json::Value {
    let out =
        e.gw.gwctl(token, &["review", "show", id, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["review"].clone()
}

fn wait_state(e: &Env, id: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = review_json(e, &e.bob, id);
        if r["state"] == state || Instant::now() > deadline {
            assert_eq!(r["state"], state, "{r}");
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn table_exists(e: &Env, table: &str) -> bool {
    let out = e.gw.psql(
        "orders",
        &e.dave,
        &[
            "-At",
            "-c",
            &format!("select to_regclass('{table}') is not null"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim() == "t"
}

#[test]
fn a_held_drop_runs_on_the_same_connection_after_gwctl_approve() {
    let Some(e) = env() else { return };
    let mut s = Session::start(
        &e.gw,
        &e.alice,
        "select 'before', pg_backend_pid();\n\
         drop table audit_trail;\n\
         select 'after', pg_backend_pid(), to_regclass('audit_trail') is null;\n",
    );
    let id = s.held_review();
    let notice = s.wait_stderr(&id);
    assert!(notice.contains("NOTICE"), "{notice}");
    assert!(notice.contains("1 member(s) of \"dba\""), "{notice}");
    // The approver sees exactly what they approve.
    let list = text(&e.gw.gwctl(&e.bob, &["review", "list"]));
    assert!(
        list.contains(&id) && list.contains("drop table audit_trail"),
        "{list}"
    );
    let shown = text(&e.gw.gwctl(&e.bob, &["review", "show", &id]));
    assert!(shown.contains("alice@example.com"), "{shown}");
    assert!(shown.contains("drop-needs-a-dba"), "{shown}");
    // A held session blocks nobody else.
    let t = Instant::now();
    let other =
        e.gw.psql("orders", &e.dave, &["-At", "-c", "select 41 + 1"]);
    assert!(text(&other).contains("42"), "{}", text(&other));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        table_exists(&e, "audit_trail"),
        "nothing ran before approval"
    );

    let approve = e.gw.gwctl(
        &e.bob,
        &[
            "review",
            "approve",
            &id,
            "--reason",
            "planned cleanup INC-7",
        ],
    );
    assert!(approve.status.success(), "{}", text(&approve));
    assert!(text(&approve).contains("runs now"), "{}", text(&approve));

    let (stdout, stderr) = s.finish();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}\n{stderr}");
    let before_pid = lines[0].split('|').nth(1).unwrap();
    assert_eq!(lines[1], "DROP TABLE", "{stdout}");
    assert_eq!(
        lines[2],
        format!("after|{before_pid}|t"),
        "same connection, table dropped"
    );
    assert!(!table_exists(&e, "audit_trail"));

    // The audit log has the request and the approval, with who and why.
    let audit = e.gw.audit();
    let review_events: Vec<&serde_json::Value> =
        audit.iter().filter(|a| a["event"] == "review").collect();
    let requested = review_events
        .iter()
        .find(|a| a["action"] == "requested")
        .expect("requested");
    assert_eq!(requested["review"], id.as_str());
    assert_eq!(requested["command"], "drop table audit_trail;");
    let approved = review_events
        .iter()
        .find(|a| a["action"] == "approved")
        .expect("approved");
    assert_eq!(approved["by"], "bob@example.com");
    assert_eq!(approved["reason"], "planned cleanup INC-7");

    // The recording shows request, approval and result, in that order.
    let recs = e.gw.wait_recordings(3);
    let rec = recs
        .iter()
        .find(|r| text(&replay(&["cat", r.to_str().unwrap()])).contains("drop table"))
        .expect("the session's recording");
    let export = text(&replay(&[
        "export",
        "--format",
        "v3",
        rec.to_str().unwrap(),
    ]));
    let at = |needle: &str| {
        export
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {export}"))
    };
    let (req, appr, result) = (
        at(&format!("review:requested id={id}")),
        at(&format!("review:approved id={id} by=bob@example.com")),
        at("DROP TABLE"),
    );
    assert!(req < appr && appr < result, "{export}");
}

#[test]
fn self_approval_outsiders_quorum_and_denial() {
    let Some(e) = env() else { return };
    let mut s = Session::start(
        &e.gw,
        &e.alice,
        "truncate audit_trail;\ndelete from audit_trail where id = 1;\nselect 'still here';\n",
    );
    let id = s.held_review();
    // Alice is a DBA, but it is her own request.
    let own =
        e.gw.gwctl(&e.alice, &["review", "approve", &id, "--reason", "me"]);
    assert_eq!(own.status.code(), Some(1), "{}", text(&own));
    assert!(text(&own).contains("cannot decide it"), "{}", text(&own));
    // Dave is not a DBA.
    let outsider =
        e.gw.gwctl(&e.dave, &["review", "approve", &id, "--reason", "x"]);
    assert_eq!(outsider.status.code(), Some(1), "{}", text(&outsider));
    assert!(
        text(&outsider).contains("not in the approver group dba"),
        "{}",
        text(&outsider)
    );
    // A reason is required.
    let bare = e.gw.gwctl(&e.bob, &["review", "approve", &id]);
    assert_eq!(bare.status.code(), Some(2), "{}", text(&bare));
    // Quorum of two: bob, bob again (refused), then carol.
    let first =
        e.gw.gwctl(&e.bob, &["review", "approve", &id, "--reason", "ok"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("1 more approval(s)"),
        "{}",
        text(&first)
    );
    let again =
        e.gw.gwctl(&e.bob, &["review", "approve", &id, "--reason", "ok!"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(table_exists(&e, "audit_trail"));
    let r = review_json(&e, &e.bob, &id);
    assert_eq!(r["state"], "pending", "one approval is not a quorum: {r}");
    let second =
        e.gw.gwctl(&e.carol, &["review", "approve", &id, "--reason", "ok"]);
    assert!(second.status.success(), "{}", text(&second));

    // The DELETE is held next; carol denies it.
    let next = loop {
        let line = s.wait_stderr("held for review rv-");
        if !line.contains(&id) {
            break line;
        }
        s.seen.retain(|l| !l.contains(&id));
    };
    let start = next.find("rv-").unwrap();
    let delete_id = next[start..start + 13].to_owned();
    let deny = e.gw.gwctl(
        &e.carol,
        &[
            "review",
            "deny",
            &delete_id,
            "--reason",
            "use the archive job",
        ],
    );
    assert!(deny.status.success(), "{}", text(&deny));
    let (stdout, stderr) = s.finish();
    assert!(stdout.contains("TRUNCATE TABLE"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "review {delete_id} was denied by carol@example.com"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("use the archive job"), "{stderr}");
    assert!(
        stdout.contains("still here"),
        "the session goes on: {stdout}"
    );
    let r = review_json(&e, &e.bob, &delete_id);
    assert_eq!(r["state"], "denied");
}

#[test]
fn expiry_client_cancel_and_disconnect_each_end_the_review() {
    let Some(e) = env() else { return };
    // Expiry (the guard waits 3 s).
    let mut s = Session::start(
        &e.gw,
        &e.alice,
        "alter table audit_trail add column note text;\nselect 'after';\n",
    );
    let id = s.held_review();
    let (stdout, stderr) = s.finish();
    assert!(stderr.contains(&format!("review {id} expired")), "{stderr}");
    assert!(stdout.contains("after"), "{stdout}");
    let late =
        e.gw.gwctl(&e.bob, &["review", "approve", &id, "--reason", "late"]);
    assert_eq!(late.status.code(), Some(1), "{}", text(&late));
    assert!(text(&late).contains("expired"), "{}", text(&late));

    // Ctrl-C while held: psql sends a cancel request, the review is withdrawn.
    let mut s = Session::start(&e.gw, &e.alice, "drop table audit_trail;\n");
    let id = s.held_review();
    s.signal("-INT");
    let (_, stderr) = s.finish();
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    wait_state(&e, &id, "cancelled");
    let after =
        e.gw.gwctl(&e.bob, &["review", "approve", &id, "--reason", "x"]);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after));

    // The client vanishing withdraws it too.
    let mut s = Session::start(&e.gw, &e.alice, "drop table audit_trail;\n");
    let id = s.held_review();
    s.signal("-KILL");
    let _ = s.finish();
    wait_state(&e, &id, "cancelled");
    assert!(table_exists(&e, "audit_trail"));
}

#[test]
fn a_restart_loses_no_review_and_approves_nothing_by_accident() {
    let Some(mut e) = env() else { return };
    let contractor = e.gw.token("cat@example.com", &["contractors"]);
    // An access window is requested at login...
    let refused = e.gw.psql("orders", &contractor, &["-c", "select 1"]);
    let msg = text(&refused);
    assert!(!refused.status.success());
    assert!(msg.contains("needs an access window approved"), "{msg}");
    let start = msg.find("rv-").unwrap();
    let window_id = msg[start..start + 13].to_owned();
    // ... and a statement is held when the gateway stops.
    let mut s = Session::start(&e.gw, &e.alice, "drop table audit_trail;\n");
    let held_id = s.held_review();

    e.gw.restart();

    let (_, stderr) = s.finish();
    assert!(stderr.contains("shutting down"), "{stderr}");
    // The held statement's review was withdrawn with its session: it can
    // never be approved into running anything.
    let held = review_json(&e, &e.bob, &held_id);
    assert_eq!(held["state"], "cancelled", "{held}");
    assert_eq!(held["command"], "drop table audit_trail;");
    let approve =
        e.gw.gwctl(&e.bob, &["review", "approve", &held_id, "--reason", "x"]);
    assert_eq!(approve.status.code(), Some(1), "{}", text(&approve));
    assert!(table_exists(&e, "audit_trail"));
    // The access window is still pending after the restart, and works once approved.
    let pending = text(&e.gw.gwctl(&e.bob, &["review", "list"]));
    assert!(pending.contains(&window_id), "{pending}");
    let again = e.gw.psql("orders", &contractor, &["-c", "select 1"]);
    assert!(
        text(&again).contains(&window_id),
        "the same review is reused, not a new one: {}",
        text(&again)
    );
    let ok = e.gw.gwctl(
        &e.bob,
        &["review", "approve", &window_id, "--reason", "vendor fix"],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let inside =
        e.gw.psql("orders", &contractor, &["-At", "-c", "select 'in'"]);
    assert!(text(&inside).contains("in"), "{}", text(&inside));
    assert!(inside.status.success(), "{}", text(&inside));
}

/// A webhook receiver: accepts connections, records each request's headers
/// and body, answers 200.
fn receiver() -> (u16, mpsc::Receiver<(String, String)>) {
    use std::io::Read as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send((head.to_lowercase(), body));
        }
    });
    (port, rx)
}

#[test]
fn webhooks_are_signed_and_a_dead_receiver_blocks_nothing() {
    let (port, hooks) = receiver();
    let dead = gw_localpg::free_port().unwrap();
    let config = format!(
        "reviews {{\n webhook \"http://127.0.0.1:{port}/hook\" secret=\"env:HOOK_SECRET\"\n webhook \"http://127.0.0.1:{dead}/slack\" format=\"slack\"\n}}\n"
    );
    let Some(e) = env_with(&config, &[("HOOK_SECRET", "s3cret-hook-key")]) else {
        return;
    };
    let mut s = Session::start(&e.gw, &e.alice, "drop table audit_trail;\n");
    let id = s.held_review();
    let t = Instant::now();
    let approve =
        e.gw.gwctl(&e.bob, &["review", "approve", &id, "--reason", "ok"]);
    assert!(approve.status.success(), "{}", text(&approve));
    let (stdout, stderr) = s.finish();
    assert!(stdout.contains("DROP TABLE"), "{stdout}{stderr}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the dead receiver's retries must not delay the statement"
    );
    let mut events = Vec::new();
    while events.len() < 2 {
        let (head, body) = hooks
            .recv_timeout(Duration::from_secs(15))
            .expect("a notification");
        let ts = header(&head, "x-gateway-timestamp");
        let expected = hmac_hex(b"s3cret-hook-key", format!("{ts}.{body}").as_bytes());
        assert_eq!(
            header(&head, "x-gateway-signature"),
            format!("sha256={expected}")
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["review"]["id"], id.as_str());
        events.push(v["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(events, ["review.requested", "review.approved"]);
    // The dead receiver is retried, in the log, off the data path.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !e.gw.log().contains("webhook delivery failed; retrying") {
        assert!(Instant::now() < deadline, "{}", e.gw.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !e.gw.log().contains("/slack"),
        "webhook URLs (secrets, for Slack) stay out of logs"
    );
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

/// HMAC-SHA256 (RFC 2104), written out so the test does not share code with
/// the gateway it checks.
fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,sys;k=sys.argv[1].encode();m=sys.stdin.buffer.read();print(hmac.new(k,m,'sha256').hexdigest())",
            std::str::from_utf8(key).unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(msg)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
