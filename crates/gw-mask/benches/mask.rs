//! Benchmarks for masking: (a) a 100k-row PII-like result set through
//! `mask_value`, against copying the same cells unmasked, and (b) stream
//! masking of terminal-like output. Run with `cargo bench -p gw-mask`.
//! Prints the best and median of several runs; it asserts nothing (these
//! machines are too noisy for timed tests).
#![allow(clippy::print_stdout)]

use gw_mask::{ColumnRef, Masker};
use gw_policy::{Principal, Source};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROWS: usize = 100_000;
const RUNS: usize = 7;

const POLICY: &str = r#"
resource "db" kind="postgres" {
    address "db:5432"
}
mask "pii" {
    detect "credit-card" "email" "us-ssn" "phone" "iban"
    style "partial"
}
mask "credentials" {
    detect "aws-access-key" "aws-secret-key" "jwt" "private-key" "api-token"
}
mask "columns" {
    columns "customers.tax_id"
    style "hash"
}
"#;

fn masker(policy: &str) -> Masker {
    let policy = gw_policy::load(&[Source::new("bench.kdl", policy)]).unwrap();
    let p = Principal::new("ann@example.com", &["sre"]);
    Masker::for_session(&policy, &policy.resources[0], &p).with_hash_key([9; 32])
}

/// Six text cells per row, shaped like a customers table: a name, an email,
/// a phone, a card (every fourth row), a free-text note (an SSN every
/// tenth), and a timestamp.
fn rows() -> Vec<[String; 6]> {
    (0..ROWS)
        .map(|i| {
            let card = if i % 4 == 0 {
                "4111 1111 1111 1111".to_owned()
            } else {
                format!("order-{i:08}")
            };
            let note = if i % 10 == 0 {
                format!(
                    "customer {i} called about SSN 123-45-{:04}",
                    1000 + i % 9000
                )
            } else {
                format!("customer {i} asked about invoice {} and delivery", i * 7)
            };
            [
                format!("Customer Number {i}"),
                format!("user{i}@example.com"),
                format!("+1 415-555-{:04}", i % 10_000),
                card,
                note,
                format!("2024-01-{:02} 10:{:02}:00+00", 1 + i % 28, i % 60),
            ]
        })
        .collect()
}

const COLUMNS: [&str; 6] = ["name", "email", "phone", "card", "note", "created_at"];

/// Times `f` several times; returns (best, median).
fn time(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    (samples[0], samples[RUNS / 2])
}

fn result_set() {
    let rows = rows();
    let bytes: usize = rows.iter().flatten().map(String::len).sum();
    let mb = bytes as f64 / 1e6;
    let m = masker(POLICY);
    let noop = masker(r#"resource "db" kind="postgres" { address "db:5432"; }"#);
    let mut out = Vec::with_capacity(bytes * 2);
    let encode = |m: Option<&Masker>, out: &mut Vec<u8>| {
        out.clear();
        for row in &rows {
            for (col, cell) in COLUMNS.iter().zip(row) {
                match m {
                    None => out.extend_from_slice(cell.as_bytes()),
                    Some(m) => {
                        let c = ColumnRef::new(Some("customers"), col);
                        let v = m.mask_value(Some(c), cell.as_bytes()).unwrap();
                        out.extend_from_slice(&v);
                    }
                }
            }
        }
        black_box(&out);
    };
    let copy = time(|| encode(None, &mut out));
    let nothing = time(|| encode(Some(&noop), &mut out));
    let masked = time(|| encode(Some(&m), &mut out));
    let per_row = |d: Duration| d.as_nanos() as f64 / ROWS as f64;
    println!("result set: {ROWS} rows x 6 cells, {mb:.1} MB");
    for (name, (best, median)) in [
        ("copy only", copy),
        ("no masks apply", nothing),
        ("all detectors", masked),
    ] {
        println!(
            "  {name:<15} best {:>7.1} ms ({:>7.0} ns/row), median {:>7.1} ms",
            best.as_secs_f64() * 1e3,
            per_row(best),
            median.as_secs_f64() * 1e3,
        );
    }
    let cost = masked.0.saturating_sub(copy.0);
    println!(
        "  masking cost: {:.0} ns/row, {:.1} ms/MB, {:.0} MB/s; {:.1}x the copy",
        per_row(cost),
        cost.as_secs_f64() * 1e3 / mb,
        mb / masked.0.as_secs_f64(),
        masked.0.as_secs_f64() / copy.0.as_secs_f64(),
    );
    m.take_report();
    encode(Some(&m), &mut out);
    println!("  one run: {}", m.take_report());
    // Where the time goes: each column alone.
    for (i, col) in COLUMNS.iter().enumerate() {
        let (best, _) = time(|| {
            for row in &rows {
                let c = ColumnRef::new(Some("customers"), col);
                black_box(m.mask_value(Some(c), row[i].as_bytes()).unwrap());
            }
        });
        println!("    {col:<10} {:>5.0} ns/cell", per_row(best));
    }
}

/// Terminal-like output: coloured `ls -l` lines, log lines, a secret now
/// and then.
fn terminal_text() -> Vec<u8> {
    let mut t = String::new();
    let mut i = 0;
    while t.len() < 16 << 20 {
        i += 1;
        t.push_str(&format!(
            "-rw-r--r--  1 ann staff  {:>6} Jan 15 10:{:02} \x1b[1;34mfile-{i}.log\x1b[0m\r\n",
            i * 37 % 100_000,
            i % 60
        ));
        t.push_str(&format!(
            "2024-01-15T10:00:{:02}Z \x1b[32mINFO\x1b[0m request id={i} path=/api/v1/items/{} took {}ms\r\n",
            i % 60,
            i * 13,
            i % 250
        ));
        if i % 50 == 0 {
            t.push_str("charge card=4111 1111 1111 1111 user=bob@example.com\r\n");
        }
    }
    t.into_bytes()
}

fn streaming() {
    let text = terminal_text();
    let mb = text.len() as f64 / 1e6;
    let m = masker(POLICY);
    let mut out = Vec::with_capacity(text.len() + 1024);
    for chunk_size in [512, 4096, 65536] {
        let (best, median) = time(|| {
            out.clear();
            let mut s = m.stream();
            for chunk in text.chunks(chunk_size) {
                s.push(chunk, &mut out).unwrap();
            }
            s.finish(&mut out).unwrap();
            black_box(&out);
        });
        println!(
            "stream: {mb:.1} MB terminal text in {chunk_size}-byte chunks: best {:.0} MB/s, median {:.0} MB/s",
            mb / best.as_secs_f64(),
            mb / median.as_secs_f64()
        );
    }
    println!("  window held back: {} bytes", m.window());
}

fn compile() {
    let policy = gw_policy::load(&[Source::new("bench.kdl", POLICY)]).unwrap();
    let p = Principal::new("ann@example.com", &["sre"]);
    let (best, median) = time(|| {
        black_box(Masker::for_session(&policy, &policy.resources[0], &p));
    });
    println!(
        "compile (all detectors, once per session): best {:.2} ms, median {:.2} ms",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo test --benches` runs this too; keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        compile();
        result_set();
        streaming();
    }
}
