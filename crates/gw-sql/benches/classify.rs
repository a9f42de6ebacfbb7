//! Classification latency benchmark, without an external bench crate.
//!
//! Each case is warmed up, then run in batches for about a second; the
//! reported figure is the mean time per `classify` call. Run with
//! `cargo bench -p gw-sql`.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use gw_sql::{Dialect, classify};

/// The latency goal for a typical statement, from the design notes.
const GOAL_TYPICAL_NS: f64 = 20_000.0;

const CASES: &[(&str, Dialect, &str)] = &[
    (
        "typical",
        Dialect::Postgres,
        "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.created_at > now() - interval '1 day' AND c.email = $1 ORDER BY o.id LIMIT 50",
    ),
    ("short", Dialect::Postgres, "SELECT 1"),
    (
        "multi",
        Dialect::Postgres,
        "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; \
         UPDATE accounts SET balance = balance + 10 WHERE id = 2; COMMIT",
    ),
    (
        "cte-dml",
        Dialect::Postgres,
        "WITH moved AS (DELETE FROM queue WHERE done AND finished_at < now() - interval '7 days' \
         RETURNING *) INSERT INTO queue_archive SELECT * FROM moved",
    ),
    (
        "mysql-typical",
        Dialect::MySql,
        "SELECT o.id, o.total FROM `orders` o JOIN customers c ON c.id = o.customer_id \
         WHERE o.created_at > NOW() - INTERVAL 1 DAY AND c.email = ? ORDER BY o.id LIMIT 50",
    ),
];

/// This thread's CPU time (user + system) in nanoseconds, from
/// `/proc/thread-self/stat` (clock ticks of 10 ms; over a one-second run
/// that is 1% resolution). `None` off Linux. Reported next to wall time
/// because the build machines are shared and wall time includes waiting for
/// a core.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

/// Returns (wall ns/op, CPU ns/op).
fn time_case(dialect: Dialect, sql: &str) -> (f64, Option<f64>) {
    // Warm-up: caches, allocator, branch predictors.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        black_box(classify(dialect, black_box(sql)));
    }
    let mut iterations: u64 = 0;
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            black_box(classify(dialect, black_box(sql)));
        }
        iterations += 100;
    }
    let wall = start.elapsed().as_nanos() as f64 / iterations as f64;
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / iterations as f64),
        _ => None,
    };
    (wall, cpu)
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep
    // that quick by doing one pass without timing.
    if !std::env::args().any(|a| a == "--bench") {
        for (_, dialect, sql) in CASES {
            black_box(classify(*dialect, sql));
        }
        return;
    }
    println!("gw-sql classify benchmark (mean per call; wall time and thread CPU time)");
    for (name, dialect, sql) in CASES {
        let (ns, cpu) = time_case(*dialect, sql);
        let verdict = |v: f64| {
            if v <= GOAL_TYPICAL_NS {
                "met"
            } else {
                "missed"
            }
        };
        let goal = if *name == "typical" {
            format!(
                "  (goal <= {GOAL_TYPICAL_NS:.0} ns: wall {}, cpu {})",
                verdict(ns),
                cpu.map_or("n/a", verdict)
            )
        } else {
            String::new()
        };
        let cpu = cpu.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.0} ns"));
        println!("{name:>14}: {ns:>8.0} ns/op wall, {cpu:>9} cpu{goal}");
    }
}
