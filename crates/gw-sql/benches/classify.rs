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

fn time_case(dialect: Dialect, sql: &str) -> f64 {
    // Warm-up: caches, allocator, branch predictors.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        black_box(classify(dialect, black_box(sql)));
    }
    let mut iterations: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            black_box(classify(dialect, black_box(sql)));
        }
        iterations += 100;
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
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
    println!("gw-sql classify benchmark (mean ns per call)");
    for (name, dialect, sql) in CASES {
        let ns = time_case(*dialect, sql);
        let goal = if *name == "typical" {
            format!(
                "  (goal <= {:.0} ns: {})",
                GOAL_TYPICAL_NS,
                if ns <= GOAL_TYPICAL_NS {
                    "met"
                } else {
                    "MISSED"
                }
            )
        } else {
            String::new()
        };
        println!("{name:>14}: {ns:>10.0} ns/op{goal}");
    }
}
