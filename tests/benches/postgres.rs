//! The PostgreSQL data path, measured against its neighbours in one run:
//! direct to PostgreSQL, through a plain TCP relay, through PgBouncer
//! (session mode, when installed) and through gatewayd with guards, masking
//! and recording on. Runs are interleaved (direct, relay, bouncer, gateway,
//! direct, ...) and medians reported, because these machines are noisy.
//!
//! `cargo bench -p gw-e2e --bench postgres` (set `BENCH_ROUNDS`, default 3).
//! It asserts nothing; numbers go into BENCHMARKS.md.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use gw_e2e::bench::{gateway_pid, median, rss_kib};
use gw_e2e::{Gateway, backend, require};
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
// Benchmark policy: the guards, masks and recording of a realistic setup.
resource "orders" kind="postgres" {
    address "{pg}"
    database "orders"
    credential user="app" password="env:ORDERS_DB_PASSWORD"
    tls mode="verify-full" ca="file:{ca}"
    labels env="prod"
}

grant "bench" {
    groups "bench"
    resources "orders"
}

guard "delete-without-where" {
    statements "delete" "update"
    where #false
    action "deny"
}

guard "no-ddl" {
    statements "drop" "truncate" "alter"
    action "deny"
}

guard "no-dynamic" {
    risks "dynamic-sql" "shell-command" "server-file"
    action "deny"
}

mask "pii" {
    detect "credit-card" "email" "us-ssn" "phone" "iban" "aws-access-key" "jwt"
    style "partial"
}
"#;

fn main() {
    if !require(&["postgres", "psql", "pgbench"]) {
        return;
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let pg = backend::postgres();
    let direct_port = pg.cluster.port;
    let conn =
        |port: u16| format!("host=127.0.0.1 port={port} dbname=orders user=app sslmode=require");
    let pgbench = |port: u16, password: &str, args: &[&str]| -> String {
        let out = Command::new("pgbench")
            .args(args)
            .arg(conn(port))
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "pgbench {args:?} on {port}: {text}");
        text
    };
    pgbench(direct_port, &pg.app_password, &["-i", "-q", "-s", "10"]);
    pg.cluster.psql("orders", "SET ROLE app; CREATE TABLE people AS SELECT g AS id, 'Person ' || g AS name, 'person' || g || '@example.com' AS email, '4111 1111 1111 1111' AS card, '123-45-' || lpad((g % 10000)::text, 4, '0') AS ssn, 'plan ' || (g % 7) AS plan FROM generate_series(1, 100000) g").unwrap();

    let relay = Relay::start(direct_port);
    let bouncer = Bouncer::start(&pg);
    let dir = tempfile::tempdir().unwrap();
    let mut builder = Gateway::builder(POLICY).upstream(&pg, dir.path());
    if let Ok(w) = std::env::var("GATEWAYD_WORKER_THREADS") {
        builder = builder.env("GATEWAYD_WORKER_THREADS", &w);
        eprintln!("gateway runtime: {w} worker thread(s)");
    }
    let gw = builder.start_in(dir);
    let token = gw.token("bench@example.com", &["bench"]);
    let gw_pid = gateway_pid(gw.pg_port);

    let mut paths: Vec<(&str, u16, String)> = vec![
        ("direct", direct_port, pg.app_password.clone()),
        ("relay", relay.port, pg.app_password.clone()),
    ];
    if let Some(b) = &bouncer {
        paths.push(("pgbouncer", b.port, pg.app_password.clone()));
    }
    paths.push(("gateway", gw.pg_port, token.clone()));

    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut tps16: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut setup: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut cpu_per_query = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (i, (_, port, pw)) in paths.iter().enumerate() {
            lat[i].push(
                field(
                    &pgbench(
                        *port,
                        pw,
                        &["-S", "-n", "-c", "1", "-T", "5", "-M", "simple"],
                    ),
                    "latency average = ",
                ) * 1000.0,
            );
            let before = gw_pid.map(cpu_ticks);
            let out = pgbench(
                *port,
                pw,
                &["-S", "-n", "-c", "16", "-j", "2", "-T", "5", "-M", "simple"],
            );
            tps16[i].push(field(&out, "tps = "));
            if paths[i].0 == "gateway"
                && let (Some(pid), Some(before)) = (gw_pid, before)
            {
                let ticks = cpu_ticks(pid) - before;
                let txs = field(&out, "number of transactions actually processed: ");
                cpu_per_query.push(ticks as f64 * 10_000.0 / txs); // 100 ticks/s → µs
            }
            setup[i].push(field(
                &pgbench(
                    *port,
                    pw,
                    &["-S", "-n", "-c", "4", "-j", "2", "-T", "5", "-C"],
                ),
                "tps = ",
            ));
        }
    }
    let direct = 0;
    let relay_i = 1;
    let gw_i = paths.len() - 1;
    println!(
        "\nPostgreSQL 15, pgbench scale 10, TLS on every client connection; medians of {rounds} interleaved rounds\n"
    );
    println!("| path | -S c1 latency µs | -S c16 TPS | -C c4 TPS (setup) |");
    println!("|---|---|---|---|");
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            median(&lat[i]),
            median(&tps16[i]),
            median(&setup[i])
        );
    }
    let added = |i: usize| median(&lat[i]) - median(&lat[direct]);
    println!(
        "\n- c1 added latency: relay {:+.0} µs, gateway {:+.0} µs (goal: gateway ≤ relay + 20 µs)",
        added(relay_i),
        added(gw_i)
    );
    println!(
        "- c16 TPS: gateway / relay = {:.2} (goal ≥ 0.9); gateway / direct = {:.2}",
        median(&tps16[gw_i]) / median(&tps16[relay_i]),
        median(&tps16[gw_i]) / median(&tps16[direct])
    );
    if bouncer.is_some() {
        println!(
            "- c16 TPS: gateway / pgbouncer = {:.2} (goal ≥ 1.0)",
            median(&tps16[gw_i]) / median(&tps16[2])
        );
    }
    println!(
        "- session setup (-C): gateway / direct = {:.2} (goal ≥ 0.7)",
        median(&setup[gw_i]) / median(&setup[direct])
    );
    if !cpu_per_query.is_empty() {
        println!(
            "- gateway CPU per query at c16: {:.1} µs (goal ≤ 40 µs)",
            median(&cpu_per_query)
        );
    }
    if let Some(pid) = gw_pid {
        println!(
            "- memory per idle session: {:.0} KiB (goal ≤ 256 KiB)",
            idle_memory(&gw, &token, pid, 100)
        );
    }
    let (masked, unmasked) = masking_cost(&gw, &token, &pg, rounds);
    println!(
        "- 100k PII-like rows through the gateway: {masked:.0} ms masked vs {unmasked:.0} ms with masking off for that query's columns → {:.2}× (goal ≤ 1.3×)",
        masked / unmasked
    );
}

fn field(out: &str, prefix: &str) -> f64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` in pgbench output:\n{out}"))
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15; after the name, indexes 11 and 12 (state is not numeric).
    f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
}

/// Opens `n` sessions that sit idle (psql waiting in a shell escape) and
/// measures the gateway's RSS growth per session.
fn idle_memory(gw: &Gateway, token: &str, pid: u32, n: usize) -> f64 {
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(pid);
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-d",
                    &gw.conninfo("orders"),
                    "-c",
                    "select 1",
                    "-c",
                    "\\! sleep 8",
                ])
                .env("PGPASSWORD", token)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    let during = rss_kib(pid);
    for mut c in children {
        let _ = c.wait();
    }
    (during - before) / n as f64
}

/// Times a 100k-row PII-like result through the gateway with the session's
/// masks on, and the same number of rows of non-PII text.
fn masking_cost(gw: &Gateway, token: &str, _pg: &backend::Postgres, rounds: usize) -> (f64, f64) {
    let time = |sql: &str| {
        let start = Instant::now();
        let out = Command::new("psql")
            .args(["-X", "-q", "-At", "-d", &gw.conninfo("orders"), "-c", sql])
            .env("PGPASSWORD", token)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success());
        start.elapsed().as_secs_f64() * 1000.0
    };
    let pii = "select id, name, email, card, ssn, plan from people";
    // Same shape and sizes, no detector matches: what the path costs without masking work.
    let plain = "select id, name, replace(email, '@', ' at '), replace(card, ' ', 'x'), replace(ssn, '-', 'x'), plan from people";
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(time(pii));
        b.push(time(plain));
    }
    (median(&a), median(&b))
}

/// A plain TCP relay: two threads per connection copying bytes, TLS passes
/// through untouched. The baseline "one extra hop" costs.
struct Relay {
    port: u16,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay { port }
    }
}

/// PgBouncer 1.18 in session mode with client TLS, when installed.
struct Bouncer {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(pg: &backend::Postgres) -> Option<Bouncer> {
        let exe = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = gw_e2e::certificate();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        let port = gw_localpg::free_port().unwrap();
        std::fs::write(
            dir.path().join("users.txt"),
            format!("\"app\" \"{}\"\n", pg.app_password),
        )
        .unwrap();
        let ini = format!(
            "[databases]\norders = host=127.0.0.1 port={} dbname=orders\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = scram-sha-256\nauth_file = {d}/users.txt\npool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 50\nclient_tls_sslmode = require\nclient_tls_cert_file = {d}/c.pem\nclient_tls_key_file = {d}/k.pem\nserver_tls_sslmode = require\nlogfile = {d}/pgb.log\npidfile = {d}/pgb.pid\nunix_socket_dir =\n",
            pg.cluster.port,
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("pgb.ini"), ini).unwrap();
        // PgBouncer refuses to run as root; run it as the postgres user.
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let _ = Command::new("chmod").args(["755"]).arg(dir.path()).status();
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", exe])
            .arg(dir.path().join("pgb.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                let mut log = String::new();
                let _ = std::fs::File::open(dir.path().join("pgb.log"))
                    .and_then(|mut f| f.read_to_string(&mut log));
                eprintln!("pgbouncer did not start: {log}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Bouncer {
            port,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
