//! Talks to a real PostgreSQL 15 over plain TCP with this crate's codec,
//! SCRAM login and relay: a simple query, an extended-protocol query, and
//! denials (simple and poison Parse) inside a transaction block and in a
//! pipeline, asserting what the server's ReadyForQuery says.
//!
//! Needs `/usr/lib/postgresql/15/bin`. Without it the test is skipped loudly,
//! unless `CI=true`, when it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gw_proto_postgres::codec::{
    self, BackendMessage, Bind, FrontendMessage, Parse, PgStr, Target, TransactionStatus,
};
use gw_proto_postgres::login::{LoginStep, UpstreamLogin};
use gw_proto_postgres::{BackendStep, Frontend, FrontendStep, Relay, RelayConfig, Verdict};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "gw-test-pw";

/// A throwaway cluster, stopped and removed on drop.
struct Server {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Server {
    fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("gw-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if as_postgres {
            run("chown", &["-R", "postgres", dir.to_str().unwrap()], false);
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server {
            dir,
            port,
            as_postgres,
        };
        let data = server.dir.join("data");
        let pwfile = format!("--pwfile={}", server.dir.join("pw").display());
        server.pg(
            "initdb",
            &["-D", path(&data), "-U", "postgres", "--auth-local=trust"],
            &["--auth-host=scram-sha-256", &pwfile, "-E", "UTF8"],
        );
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             password_encryption = 'scram-sha-256'\nfsync = off\n",
            server.port,
            server.dir.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        f.write_all(conf.as_bytes()).unwrap();
        let log = server.dir.join("server.log");
        server.pg(
            "pg_ctl",
            &["-D", path(&data), "-l", path(&log)],
            &["-w", "start"],
        );
        server
    }

    fn pg(&self, tool: &str, args: &[&str], more: &[&str]) {
        let exe = format!("{BIN}/{tool}");
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(more);
        if self.as_postgres {
            let mut cmd = vec!["-u", "postgres", "--", exe.as_str()];
            cmd.extend(all);
            run("runuser", &cmd, true);
        } else {
            run(&exe, &all, true);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.pg("pg_ctl", &["-D", path(&data)], &["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(exe: &str, args: &[&str], quiet: bool) {
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{exe} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = quiet;
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// The gateway's view: a relay in front of one upstream connection.
struct Session {
    stream: TcpStream,
    buf: BytesMut,
    relay: Relay,
    /// Column names the relay offered with each DataRow, for masking.
    row_columns: Vec<Option<Vec<String>>>,
    /// CopyData payloads the relay offered for masking.
    copy_chunks: Vec<Bytes>,
}

impl Session {
    fn connect(port: u16) -> Session {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (mut login, startup) = UpstreamLogin::new("postgres", "postgres", PASSWORD, &[]);
        stream.write_all(&startup).unwrap();
        let mut buf = BytesMut::new();
        let ready = loop {
            let msg = read_backend(&mut stream, &mut buf);
            match login.on_message(msg).unwrap() {
                LoginStep::Send(b) => stream.write_all(&b).unwrap(),
                LoginStep::Wait => {}
                LoginStep::Done(ready) => break ready,
            }
        };
        assert_eq!(ready.status, TransactionStatus::Idle);
        assert!(ready.backend_key.is_some());
        let version = ready
            .parameters
            .iter()
            .find(|(k, _)| k.as_bytes() == b"server_version");
        assert!(version.is_some_and(|(_, v)| v.as_bytes().starts_with(b"15")));
        Session {
            stream,
            buf,
            relay: Relay::new(RelayConfig::default()),
            row_columns: Vec::new(),
            copy_chunks: Vec::new(),
        }
    }

    /// Sends client messages through the relay; `deny` is used for every decision.
    fn send(&mut self, msgs: &[FrontendMessage], deny: bool) {
        for m in msgs {
            let wire = codec::encode_frontend(m);
            let frontend = codec::decode_frontend(&mut BytesMut::from(&wire[..]), 1 << 20)
                .unwrap()
                .unwrap();
            let out = self.step(frontend, deny);
            self.stream.write_all(&out).unwrap();
        }
    }

    fn step(&mut self, msg: Frontend, deny: bool) -> Bytes {
        match self.relay.on_frontend(msg).unwrap() {
            FrontendStep::Forward(b) => b,
            FrontendStep::Decide(p) => {
                let verdict = if deny {
                    Verdict::Deny {
                        reason: "guard \"x\": test".into(),
                    }
                } else {
                    Verdict::Allow
                };
                self.relay.resolve(p, verdict).unwrap()
            }
        }
    }

    /// What the client would receive, up to and including ReadyForQuery.
    fn until_ready(&mut self) -> Vec<BackendMessage> {
        let mut seen = Vec::new();
        loop {
            let msg = read_backend(&mut self.stream, &mut self.buf);
            let bytes = match self.relay.on_backend(msg).unwrap() {
                BackendStep::Forward(b) | BackendStep::Rewritten(b) => b,
                BackendStep::Row(r) => {
                    let names = r.columns.as_ref().map(|c| {
                        c.iter()
                            .map(|c| c.name.to_string_lossy())
                            .collect::<Vec<_>>()
                    });
                    self.row_columns.push(names);
                    r.unchanged()
                }
                BackendStep::CopyOut(c) => {
                    self.copy_chunks.push(c.data.clone());
                    c.unchanged()
                }
                BackendStep::UpstreamKey { .. } => continue,
            };
            let m = codec::decode_backend(&mut BytesMut::from(&bytes[..]), 1 << 20)
                .unwrap()
                .unwrap()
                .msg;
            let done = matches!(m, BackendMessage::ReadyForQuery(_));
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

fn read_backend(stream: &mut TcpStream, buf: &mut BytesMut) -> gw_proto_postgres::Backend {
    loop {
        if let Some(m) = codec::decode_backend(buf, 1 << 26).unwrap() {
            return m;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn q(sql: &str) -> FrontendMessage {
    FrontendMessage::Query(sql.into())
}

fn parse(sql: &str, types: Vec<u32>) -> FrontendMessage {
    FrontendMessage::Parse(Parse {
        name: "".into(),
        query: sql.into(),
        param_types: types,
    })
}

fn bind(params: Vec<Option<Bytes>>) -> FrontendMessage {
    FrontendMessage::Bind(Bind {
        portal: "".into(),
        statement: "".into(),
        param_formats: vec![],
        params,
        result_formats: vec![],
    })
}

fn execute() -> FrontendMessage {
    FrontendMessage::Execute {
        portal: "".into(),
        max_rows: 0,
    }
}

fn tags(seen: &[BackendMessage]) -> String {
    seen.iter()
        .map(|m| {
            let raw = codec::encode_backend(m);
            raw[0] as char
        })
        .collect()
}

#[track_caller]
fn assert_denied(m: &BackendMessage) {
    let BackendMessage::ErrorResponse(f) = m else {
        panic!("expected an error, got {m:?}")
    };
    assert_eq!(f.sqlstate(), Some(&PgStr::from("42501")));
    assert_eq!(
        f.message().and_then(PgStr::to_str),
        Some("permission denied by gateway policy: guard \"x\": test")
    );
}

#[test]
#[allow(clippy::print_stderr)]
fn real_postgres_15() {
    if !Path::new(BIN).join("initdb").exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL 15 binaries missing at {BIN} and CI=true");
        }
        eprintln!("SKIPPED real_postgres_15: no PostgreSQL 15 binaries at {BIN}");
        return;
    }
    let server = Server::start();
    let mut s = Session::connect(server.port);

    // Simple query.
    s.send(&[q("SELECT 1 AS one")], false);
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "TDCZ");
    let BackendMessage::DataRow(row) = &seen[1] else {
        panic!()
    };
    assert_eq!(row.value(0), Some(&b"1"[..]));
    assert_eq!(s.row_columns.pop(), Some(Some(vec!["one".to_owned()])));

    // Extended protocol with a typed parameter.
    s.send(
        &[
            parse("SELECT $1::int + 1 AS answer", vec![23]),
            bind(vec![Some(Bytes::from_static(b"41"))]),
            FrontendMessage::Describe(Target::Portal("".into())),
            execute(),
            FrontendMessage::Sync,
        ],
        false,
    );
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "12TDCZ");
    let BackendMessage::DataRow(row) = &seen[3] else {
        panic!()
    };
    assert_eq!(row.value(0), Some(&b"42"[..]));
    assert_eq!(s.row_columns.pop(), Some(Some(vec!["answer".to_owned()])));

    // Setup for the denials.
    s.send(
        &[q("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")],
        false,
    );
    assert_eq!(tags(&s.until_ready()), "CCZ");

    // Poison Parse inside a transaction block: the server aborts the block.
    s.send(&[q("BEGIN")], false);
    assert_eq!(
        s.until_ready().last(),
        Some(&BackendMessage::ReadyForQuery(
            TransactionStatus::InTransaction
        ))
    );
    s.send(&[parse("DELETE FROM t", vec![])], true);
    s.send(&[bind(vec![]), execute(), FrontendMessage::Sync], false);
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "EZ");
    assert_denied(&seen[0]);
    assert_eq!(
        seen[1],
        BackendMessage::ReadyForQuery(TransactionStatus::Failed)
    );
    assert_eq!(s.relay.transaction_status(), TransactionStatus::Failed);
    s.send(&[q("ROLLBACK")], false);
    assert_eq!(
        s.until_ready().last(),
        Some(&BackendMessage::ReadyForQuery(TransactionStatus::Idle))
    );

    // Simple-query denial inside a transaction block.
    s.send(&[q("BEGIN")], false);
    s.until_ready();
    s.send(&[q("DELETE FROM t")], true);
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "EZ");
    assert_denied(&seen[0]);
    assert_eq!(
        seen[1],
        BackendMessage::ReadyForQuery(TransactionStatus::Failed)
    );
    s.send(&[q("ROLLBACK")], false);
    s.until_ready();

    // Pipeline: three Parse/Bind/Execute, the second denied.
    s.send(
        &[
            parse("SELECT count(*) FROM t", vec![]),
            bind(vec![]),
            execute(),
        ],
        false,
    );
    s.send(&[parse("DELETE FROM t", vec![])], true);
    s.send(&[bind(vec![]), execute()], false);
    s.send(
        &[
            parse("SELECT 3", vec![]),
            bind(vec![]),
            execute(),
            FrontendMessage::Sync,
        ],
        false,
    );
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "12DCEZ");
    assert_denied(&seen[4]);
    assert_eq!(
        seen[5],
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );
    // No Describe in this pipeline: the relay admits it does not know the columns.
    assert_eq!(s.row_columns.pop(), Some(None));

    // COPY OUT data is offered for masking, row by row.
    s.send(&[q("COPY (SELECT id FROM t ORDER BY id) TO STDOUT")], false);
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "HddcCZ");
    assert_eq!(s.copy_chunks, [&b"1\n"[..], &b"2\n"[..]]);

    // COPY FROM STDIN over the extended protocol, with libpq's early Sync.
    s.send(
        &[parse("COPY t FROM STDIN", vec![]), bind(vec![]), execute()],
        false,
    );
    s.send(&[FrontendMessage::Sync], false);
    s.send(
        &[FrontendMessage::CopyData(Bytes::from_static(b"3\n"))],
        false,
    );
    s.send(&[FrontendMessage::CopyDone, FrontendMessage::Sync], false);
    let seen = s.until_ready();
    assert_eq!(tags(&seen), "12GCZ");
    assert_eq!(s.relay.in_flight(), 0);
    s.send(&[q("DELETE FROM t WHERE id = 3")], false);
    assert_eq!(tags(&s.until_ready()), "CZ");

    // Nothing was deleted, and the session is still in step.
    s.send(&[q("SELECT count(*) FROM t")], false);
    let seen = s.until_ready();
    let BackendMessage::DataRow(row) = &seen[1] else {
        panic!()
    };
    assert_eq!(row.value(0), Some(&b"2"[..]));
    assert_eq!(s.relay.in_flight(), 0);
    s.stream.write_all(&codec::terminate()).unwrap();
    drop(server);
}
