//! Synthetic but realistic session content for benchmarks: `ls`/`top`-like
//! terminal output with colour escapes, and SQL statements with rendered tables.

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "nginx",
    "postgres",
    "java",
    "python3",
    "sshd",
    "systemd",
    "kworker/0:1",
    "containerd",
    "etcd",
    "node",
    "redis-server",
    "bash",
    "vim",
    "journalctl",
    "kubelet",
    "dockerd",
    "grafana",
    "prometheus",
];
const FILES: &[&str] = &[
    "access.log",
    "error.log",
    "app.conf",
    "Makefile",
    "README.md",
    "deploy.yaml",
    "backup.tar.gz",
    "id_rsa.pub",
    "notes.txt",
    "main.rs",
    "Cargo.toml",
    "requirements.txt",
    "schema.sql",
];

/// One chunk of terminal output, as an SSH server would send it.
pub fn terminal_chunk(rng: &mut Rng) -> Vec<u8> {
    let mut s = String::new();
    match rng.below(3) {
        0 => {
            s.push_str("\x1b[H\x1b[2Jtop - 14:05:01 up 12 days,  3:04,  2 users,  load average: 0.42, 0.37, 0.30\r\n");
            s.push_str("\x1b[7m    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND   \x1b[m\r\n");
            for _ in 0..20 {
                let w = WORDS[rng.below(WORDS.len() as u64) as usize];
                s.push_str(&format!(
                    "\x1b[1m{:>7} {:<9} {:>3} {:>3} {:>7} {:>6} {:>6} S {:>5.1} {:>5.1} {:>3}:{:02}.{:02} {w}\x1b[m\r\n",
                    rng.below(90000),
                    ["root", "alice", "postgres", "www-data"][rng.below(4) as usize],
                    20,
                    0,
                    rng.below(4_000_000),
                    rng.below(900_000),
                    rng.below(90_000),
                    rng.below(1000) as f64 / 10.0,
                    rng.below(300) as f64 / 10.0,
                    rng.below(300),
                    rng.below(60),
                    rng.below(100)
                ));
            }
        }
        1 => {
            s.push_str("total 1234\r\n");
            for _ in 0..(5 + rng.below(30)) {
                let f = FILES[rng.below(FILES.len() as u64) as usize];
                let dir = rng.below(4) == 0;
                s.push_str(&format!(
                    "{}rw-r--r-- 1 alice staff {:>8} Nov {:>2} {:02}:{:02} {}{f}\x1b[0m\r\n",
                    if dir { "d" } else { "-" },
                    rng.below(10_000_000),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    if dir { "\x1b[01;34m" } else { "\x1b[00m" }
                ));
            }
        }
        _ => {
            for _ in 0..(3 + rng.below(20)) {
                s.push_str(&format!(
                    "2026-11-24T14:{:02}:{:02}.{:03}Z {} [{}] request_id={:016x} path=/api/v1/{} status={} duration_ms={}\r\n",
                    rng.below(60),
                    rng.below(60),
                    rng.below(1000),
                    ["\x1b[32mINFO\x1b[0m", "\x1b[33mWARN\x1b[0m", "\x1b[31mERROR\x1b[0m"][rng.below(3) as usize],
                    WORDS[rng.below(WORDS.len() as u64) as usize],
                    rng.next_u64(),
                    FILES[rng.below(FILES.len() as u64) as usize],
                    [200, 200, 200, 404, 500][rng.below(5) as usize],
                    rng.below(2000)
                ));
            }
        }
    }
    s.push_str("alice@web-01:~$ ");
    s.into_bytes()
}

/// One SQL statement and its result table.
pub fn sql_statement(rng: &mut Rng) -> (String, Vec<Vec<String>>) {
    let table = ["users", "orders", "payments", "sessions", "audit_log"][rng.below(5) as usize];
    let stmt = format!(
        "SELECT id, name, email, created_at, status FROM {table} WHERE id > {} LIMIT 50",
        rng.below(100000)
    );
    let rows = (0..rng.below(50))
        .map(|_| {
            let id = rng.below(1_000_000);
            vec![
                id.to_string(),
                format!("user{id}"),
                format!("user{id}@example.com"),
                format!(
                    "2026-{:02}-{:02} {:02}:{:02}:00+00",
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60)
                ),
                ["active", "disabled", "pending"][rng.below(3) as usize].to_string(),
            ]
        })
        .collect();
    (stmt, rows)
}
