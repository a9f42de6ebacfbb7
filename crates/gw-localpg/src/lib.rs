//! A throwaway PostgreSQL cluster in a temporary directory: `initdb`, a
//! config with SCRAM-SHA-256 (and TLS when given a certificate), `pg_ctl
//! start` on a free loopback port, and `pg_ctl stop` on drop.
//!
//! Used by `gatewayd`'s demo mode and by the end-to-end tests. PostgreSQL
//! refuses to run as root, so when we are root the server runs as the
//! `postgres` user (which then owns the directory).
#![forbid(unsafe_code)]

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and removed when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub superuser: String,
    pub password: String,
    bin: PathBuf,
    as_postgres: bool,
}

/// Where the server binaries are, if anywhere: `$PG_BIN`, then the newest
/// `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// TLS files for the server, PEM.
pub struct Tls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl Cluster {
    /// Creates and starts a cluster in a fresh directory under the system's
    /// temporary directory (world-traversable, which the `postgres` user
    /// needs when we are root; a private test directory would not be).
    pub fn start(tls: Option<Tls<'_>>) -> io::Result<Cluster> {
        let parent = std::env::temp_dir();
        let bin = find_binaries().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL server binaries not found (set PG_BIN)",
            )
        })?;
        let as_postgres = is_root();
        let dir = parent.join(format!("pg-{}", random_hex(4)));
        std::fs::create_dir_all(&dir)?;
        let password = random_hex(16);
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        if as_postgres {
            chown_postgres(&dir)?;
        }
        let data = dir.join("data");
        let mut c = Cluster {
            dir: dir.clone(),
            port: 0,
            superuser: "postgres".into(),
            password,
            bin,
            as_postgres,
        };
        c.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                path_str(&pwfile)?,
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        )?;
        std::fs::remove_file(&pwfile)?;
        c.port = free_port()?;
        let mut conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
            c.port,
            dir.display()
        );
        if let Some(tls) = tls {
            write_owned(&data.join("server.crt"), tls.cert_pem, as_postgres)?;
            write_owned(&data.join("server.key"), tls.key_pem, as_postgres)?;
            set_mode(&data.join("server.key"), 0o600)?;
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let conf_path = data.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        let log = dir.join("server.log");
        c.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )?;
        Ok(c)
    }

    /// Runs SQL as the superuser through `psql` on the Unix socket.
    pub fn psql(&self, database: &str, sql: &str) -> io::Result<String> {
        let psql = self.bin.join("psql");
        let psql = if psql.exists() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()?;
        check(out, "psql").map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// The address to reach the server over TCP.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) -> io::Result<Output> {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(&self.dir)
                .output()?
        } else {
            Command::new(&exe)
                .args(args)
                .current_dir(&self.dir)
                .output()?
        };
        check(out, tool)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if let Some(d) = data.to_str() {
            let _ = self.run("pg_ctl", &["-D", d, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn check(out: Output, tool: &str) -> io::Result<Output> {
    if out.status.success() {
        return Ok(out);
    }
    Err(io::Error::other(format!(
        "{tool} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

fn path_str(p: &Path) -> io::Result<&str> {
    p.to_str().ok_or_else(|| io::Error::other("non-UTF-8 path"))
}

/// A port that was free a moment ago (bind to 0, read, release).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn chown_postgres(dir: &Path) -> io::Result<()> {
    let out = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .output()?;
    check(out, "chown").map(|_| ())
}

fn write_owned(path: &Path, contents: &str, as_postgres: bool) -> io::Result<()> {
    std::fs::write(path, contents)?;
    if as_postgres {
        chown_postgres(path)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
