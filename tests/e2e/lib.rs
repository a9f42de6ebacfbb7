//! The end-to-end harness: builders that read like the scenario.
//!
//! ```text
//! let pg = backend::postgres();                    // initdb, SCRAM, TLS, sample data
//! let gw = Gateway::new().policy(POLICY).upstream(&pg).start();
//! let out = gw.psql("orders", &token, "select ...");
//! ```
//!
//! Everything is real: PostgreSQL from the machine's binaries, the
//! `gatewayd` and `replay` binaries built from this workspace, `psql` and
//! `pgbench`. Ports are picked at run time. A missing peer binary fails the
//! test under `CI=true` and skips it loudly otherwise.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether the machine has what a test needs; `false` means skip (outside
/// CI only: under `CI=true` a missing tool is a failure).
pub fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing test peers: {}", missing.join(", "));
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (required under CI=true)"
    );
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    false
}

/// Like [`require`], for a Python module (`pip` names the package to install).
pub fn require_python(module: &str, pip: &str) -> bool {
    if !require(&["python3"]) {
        return false;
    }
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python {module} is required under CI=true (pip install '{pip}')"
        );
        eprintln!("\n*** SKIPPED: python {module} not installed ***\n");
    }
    have
}

fn have(tool: &str) -> bool {
    match tool {
        "postgres" => gw_localpg::find_binaries().is_some(),
        t if t.starts_with('/') => Path::new(t).exists(),
        t => Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success()),
    }
}

/// The workspace's binaries, built once per test run.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // The test executable lives in <target>/debug/deps.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Benchmarks run from target/release: measure release binaries,
        // built with the bench profile that `cargo bench` used for the
        // shared crates (with `--release` instead, each run would rebuild
        // them, since the two profiles' fingerprints differ).
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        // What cargo set for this test or bench (CARGO_MANIFEST_DIR, ...)
        // is not for this build: ring's build script reruns when
        // CARGO_MANIFEST_DIR changes, and everything above it with it.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("CARGO_") && name != "CARGO_HOME" {
                build.env_remove(name);
            }
        }
        let status = build
            .args([
                "build", "-q", "-p", "gatewayd", "-p", "replay", "-p", "gwctl",
            ])
            .args(if release {
                &["--profile", "bench"][..]
            } else {
                &[]
            })
            .env("CARGO_TARGET_DIR", dir.parent().expect("target root"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
        dir
    });
    dir.join(name)
}

/// A self-signed certificate for 127.0.0.1/localhost, PEM.
pub fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

pub mod backend {
    /// A real PostgreSQL with TLS and SCRAM, a login role `app` (the
    /// credential the gateway injects) and a database `orders` with
    /// PII-like sample data.
    pub struct Postgres {
        pub cluster: gw_localpg::Cluster,
        pub app_password: String,
        pub ca_pem: String,
    }

    pub fn postgres() -> Postgres {
        let (cert, key) = super::certificate();
        let cluster = gw_localpg::Cluster::start(Some(gw_localpg::Tls {
            cert_pem: &cert,
            key_pem: &key,
        }))
        .expect("start postgres");
        let app_password = "app-secret-1f2e3d".to_owned();
        cluster
            .psql(
                "postgres",
                &format!("CREATE ROLE app LOGIN PASSWORD '{app_password}'"),
            )
            .unwrap();
        cluster
            .psql("postgres", "CREATE DATABASE orders OWNER app")
            .unwrap();
        cluster
            .psql(
                "orders",
                "SET ROLE app;
                 CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text, note text);
                 INSERT INTO customers VALUES
                   (1, 'Ada', 'ada@example.com', '4111 1111 1111 1111', 'vip'),
                   (2, 'Grace', 'grace@example.com', '5500-0000-0000-0004', 'key AKIAIOSFODNN7EXAMPLE leaked');
                 CREATE UNIQUE INDEX customers_email ON customers (email);
                 CREATE TABLE audit_trail (id serial PRIMARY KEY, what text);
                 INSERT INTO audit_trail (what) SELECT 'event ' || g FROM generate_series(1, 100) g;",
            )
            .unwrap();
        Postgres {
            cluster,
            app_password,
            ca_pem: cert,
        }
    }
}

/// A running `gatewayd` with its own state, policy and ports.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub pg_port: u16,
    pub admin_port: u16,
    pub api_port: u16,
    child: Child,
    env: Vec<(String, String)>,
}

pub struct GatewayBuilder {
    policy: String,
    env: Vec<(String, String)>,
    config: String,
    source: Option<String>,
    api_port: Option<u16>,
}

impl Gateway {
    pub fn builder(policy: &str) -> GatewayBuilder {
        GatewayBuilder {
            policy: policy.to_owned(),
            env: Vec::new(),
            config: String::new(),
            source: None,
            api_port: None,
        }
    }
}

impl GatewayBuilder {
    /// Substitutes `{pg}` (address), `{ca}` (CA file) in the policy and
    /// puts the app password in the gateway's environment.
    pub fn upstream(mut self, pg: &backend::Postgres, dir_hint: &Path) -> GatewayBuilder {
        let ca = dir_hint.join("upstream-ca.pem");
        std::fs::write(&ca, &pg.ca_pem).unwrap();
        self.policy = self
            .policy
            .replace("{pg}", &pg.cluster.addr())
            .replace("{ca}", &ca.display().to_string());
        self.env
            .push(("ORDERS_DB_PASSWORD".into(), pg.app_password.clone()));
        self
    }

    /// An environment variable for the gateway process.
    pub fn env(mut self, key: &str, value: &str) -> GatewayBuilder {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The `policy ...` line of the bootstrap configuration (default: the
    /// directory the builder writes the policy into).
    pub fn policy_source(mut self, kdl: &str) -> GatewayBuilder {
        self.source = Some(kdl.to_owned());
        self
    }

    /// The API port, when the test must know it before the gateway starts
    /// (to register the login callback with an identity provider).
    pub fn api_port(mut self, port: u16) -> GatewayBuilder {
        self.api_port = Some(port);
        self
    }

    /// More bootstrap configuration (KDL), appended to the generated file.
    pub fn config(mut self, kdl: &str) -> GatewayBuilder {
        self.config.push_str(kdl);
        self.config.push('\n');
        self
    }

    pub fn start(self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        self.start_in(dir)
    }

    pub fn start_in(self, dir: tempfile::TempDir) -> Gateway {
        std::fs::create_dir_all(dir.path().join("policy")).unwrap();
        std::fs::write(dir.path().join("policy/policy.kdl"), &self.policy).unwrap();
        let pg_port = gw_localpg::free_port().unwrap();
        let admin_port = gw_localpg::free_port().unwrap();
        let api_port = self
            .api_port
            .unwrap_or_else(|| gw_localpg::free_port().unwrap());
        let source = self.source.clone().unwrap_or_else(|| {
            format!(
                "policy directory=\"{}\"",
                dir.path().join("policy").display()
            )
        });
        let config = format!(
            "gateway-id \"gw-test\"\nlisten postgres=\"127.0.0.1:{pg_port}\" admin=\"127.0.0.1:{admin_port}\" api=\"127.0.0.1:{api_port}\"\n{source}\nstate \"{}\"\ndemo #false\n{}",
            dir.path().join("state").display(),
            self.config,
        );
        std::fs::write(dir.path().join("gatewayd.kdl"), config).unwrap();
        let child = spawn(dir.path(), &self.env);
        let gw = Gateway {
            dir,
            pg_port,
            admin_port,
            api_port,
            child,
            env: self.env,
        };
        gw.wait_ready();
        gw
    }
}

/// Starts `gatewayd` on the configuration in `dir`, logging (appending) to
/// `dir/gatewayd.log`.
fn spawn(dir: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gatewayd.log"))
        .unwrap();
    let mut cmd = Command::new(bin("gatewayd"));
    cmd.args([
        "--config",
        dir.join("gatewayd.kdl").to_str().unwrap(),
        "--log-format",
        "json",
    ])
    .stdout(Stdio::null())
    .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start gatewayd")
}

impl Gateway {
    /// Stops the gateway (SIGTERM) and starts it again on the same state,
    /// configuration and ports.
    pub fn restart(&mut self) {
        self.terminate().expect("gatewayd stops within 30 s");
        self.child = spawn(self.dir.path(), &self.env);
        self.wait_ready();
    }

    /// Runs `gwctl` against this gateway's API, trusting its development
    /// certificate, with `token`.
    pub fn gwctl(&self, token: &str, args: &[&str]) -> Output {
        Command::new(bin("gwctl"))
            .args(args)
            .env(
                "GWCTL_GATEWAY",
                format!("https://127.0.0.1:{}", self.api_port),
            )
            .env("GWCTL_CA", self.state().join("tls/dev-cert.pem"))
            .env("GWCTL_TOKEN", token)
            .output()
            .unwrap()
    }
}

impl Gateway {
    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let up = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(self.pg_port) && up(self.api_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gatewayd did not start:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gatewayd.log")).unwrap_or_default()
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Mints a token with the gateway's own key.
    pub fn token(&self, principal: &str, groups: &[&str]) -> String {
        let out = Command::new(bin("gatewayd"))
            .args([
                "--config",
                self.dir.path().join("gatewayd.kdl").to_str().unwrap(),
                "token",
                "--principal",
                principal,
            ])
            .args(["--groups", &groups.join(",")])
            .args(["--ttl", "1h"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn conninfo(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={database} user=whoever sslmode=require connect_timeout=10",
            self.pg_port
        )
    }

    /// Runs psql with `args` (script via -c/-f) and the token as password.
    pub fn psql(&self, database: &str, token: &str, args: &[&str]) -> Output {
        Command::new("psql")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=0",
                "--no-psqlrc",
                "-d",
                &self.conninfo(database),
            ])
            .args(args)
            .env("PGPASSWORD", token)
            .env("PGAPPNAME", "e2e")
            .output()
            .unwrap()
    }

    /// Runs psql with `args`, feeding `stdin` to it (a script for `-f -`, or
    /// the data of `\copy ... from stdin`).
    pub fn psql_stdin(&self, database: &str, token: &str, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("psql")
            .args(["-X", "--no-psqlrc", "-d", &self.conninfo(database)])
            .args(args)
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn audit(&self) -> Vec<serde_json::Value> {
        // The audit writer flushes at least every 200 ms.
        std::thread::sleep(Duration::from_millis(500));
        let text = std::fs::read_to_string(self.state().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The recordings the gateway wrote, oldest first.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.state().join("recordings"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Waits for a recording's trailer (the session closed and was signed).
    pub fn wait_recordings(&self, n: usize) -> Vec<PathBuf> {
        let start = Instant::now();
        loop {
            let recs = self.recordings();
            let signed = recs
                .iter()
                .filter(|r| {
                    replay(&[
                        "verify",
                        "--require-trailer",
                        "--key",
                        self.recording_key().to_str().unwrap(),
                        r.to_str().unwrap(),
                    ])
                    .status
                    .success()
                })
                .count();
            if signed >= n || start.elapsed() > Duration::from_secs(15) {
                return recs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn recording_key(&self) -> PathBuf {
        self.state().join("keys/recording.pub.pem")
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// GET on the admin endpoint; the response body.
    pub fn admin_get(&self, path: &str) -> String {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after
/// `secs` seconds with `what`.
pub fn wait_for<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the benchmarks share: medians and the gateway's process figures.
pub mod bench {
    use std::process::Command;

    pub fn median(xs: &[f64]) -> f64 {
        let mut v = xs.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    /// The gatewayd process listening on `port`.
    pub fn gateway_pid(port: u16) -> Option<u32> {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "ss -Htlpn 'sport = :{port}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2"
                ),
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// CPU seconds a process used itself (all threads) and those of its
    /// children that it has waited for: utime+stime and cutime+cstime from
    /// `/proc/PID/stat` (PERF.md: far less noisy than wall time).
    pub fn cpu_secs(pid: u32) -> (f64, f64) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let tick = clock_ticks();
        let at = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
        // utime, stime, cutime, cstime are fields 14-17 (here 11-14).
        (at(11) + at(12), at(13) + at(14))
    }

    fn clock_ticks() -> f64 {
        static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
        *TICKS.get_or_init(|| {
            Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .ok()
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
                .unwrap_or(100.0)
        })
    }

    /// A process's resident memory, in KiB.
    pub fn rss_kib(pid: u32) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// A private OpenSSH `sshd` for the SSH tests and benchmark.
pub mod sshd {
    use crate::text;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A private `sshd` on a free port, with its own host key and an
    /// authorized key for the gateway.
    pub struct Sshd {
        pub dir: tempfile::TempDir,
        pub port: u16,
        child: Child,
        /// The host's public key, OpenSSH format.
        pub host_pub: String,
    }

    impl Drop for Sshd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn keygen(path: &Path) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }

    impl Sshd {
        pub fn start() -> Sshd {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            keygen(&d.join("host_key"));
            keygen(&d.join("gateway_key"));
            std::fs::copy(d.join("gateway_key.pub"), d.join("authorized_keys")).unwrap();
            let port = gw_localpg::free_port().unwrap();
            std::fs::create_dir_all("/run/sshd").unwrap();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nAllowTcpForwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\nLogLevel ERROR\n",
                hk = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sshd");
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "sshd did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let host_pub = std::fs::read_to_string(d.join("host_key.pub"))
                .unwrap()
                .trim()
                .to_owned();
            Sshd {
                dir,
                port,
                child,
                host_pub,
            }
        }

        /// The listening `sshd`'s pid: the sessions it forks are its
        /// children, so their CPU time shows in its cutime once reaped.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// The private key `sshd` accepts (for root).
        pub fn key(&self) -> PathBuf {
            self.dir.path().join("gateway_key")
        }
    }
}

pub fn replay(args: &[&str]) -> Output {
    Command::new(bin("replay")).args(args).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
