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

/// Per-case timings in ns per call.
struct Timing {
    /// Fastest of the samples: the least disturbed by other processes.
    best: f64,
    /// Median of the samples.
    median: f64,
    /// Thread CPU time over all samples, when available.
    cpu: Option<f64>,
}

/// How many timed samples each case gets, and how long each runs.
const SAMPLES: usize = 5;
const SAMPLE_TIME: Duration = Duration::from_millis(200);

fn time_case(dialect: Dialect, sql: &str) -> Timing {
    // Warm-up: caches, allocator, branch predictors.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        black_box(classify(dialect, black_box(sql)));
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut total_iterations: u64 = 0;
    let cpu_start = thread_cpu_ns();
    for _ in 0..SAMPLES {
        let mut iterations: u64 = 0;
        let start = Instant::now();
        while start.elapsed() < SAMPLE_TIME {
            for _ in 0..50 {
                black_box(classify(dialect, black_box(sql)));
            }
            iterations += 50;
        }
        samples.push(start.elapsed().as_nanos() as f64 / iterations as f64);
        total_iterations += iterations;
    }
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / total_iterations as f64),
        _ => None,
    };
    samples.sort_by(f64::total_cmp);
    Timing {
        best: samples.first().copied().unwrap_or(f64::NAN),
        median: samples.get(SAMPLES / 2).copied().unwrap_or(f64::NAN),
        cpu,
    }
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
    println!(
        "gw-sql classify benchmark: ns per call, {SAMPLES} samples of {} ms after warm-up",
        SAMPLE_TIME.as_millis()
    );
    println!(
        "{:>14}  {:>8}  {:>8}  {:>8}",
        "case", "best", "median", "cpu"
    );
    for (name, dialect, sql) in CASES {
        let t = time_case(*dialect, sql);
        let cpu = t
            .cpu
            .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.0}"));
        let goal = if *name == "typical" {
            let verdict = if t.best <= GOAL_TYPICAL_NS {
                "met"
            } else {
                "missed"
            };
            format!("  goal <= {GOAL_TYPICAL_NS:.0} ns (best): {verdict}")
        } else {
            String::new()
        };
        println!(
            "{name:>14}  {:>8.0}  {:>8.0}  {cpu:>8}{goal}",
            t.best, t.median
        );
    }
}
