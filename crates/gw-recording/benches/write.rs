//! Writer throughput (MB/s of raw event bytes) and compression ratio on a
//! synthetic terminal session and a synthetic SQL session. No criterion: run
//! with `cargo bench -p gw-recording --bench write`.
#![allow(clippy::print_stdout)]

#[path = "support/synth.rs"]
mod synth;

use std::time::{Duration, Instant};

use gw_recording::{
    Decision, Header, SessionMeta, SigningKey, Verdict, Writer, WriterOptions, render_table,
};
use synth::{Rng, sql_statement, terminal_chunk};

const RAW_TARGET: usize = 128 << 20;

fn header(protocol: &str) -> Header {
    Header::new(
        120,
        40,
        SessionMeta {
            session_id: "bench".into(),
            protocol: protocol.into(),
            ..SessionMeta::default()
        },
    )
}

fn report(name: &str, raw: usize, out: usize, took: Duration) {
    let mb = raw as f64 / 1e6;
    println!(
        "{name:<9} raw {mb:>7.1} MB  written {:>6.1} MB ({:>4.1} % of raw)  {:>6.1} MB/s",
        out as f64 / 1e6,
        100.0 * out as f64 / raw as f64,
        mb / took.as_secs_f64()
    );
}

fn terminal(key: &SigningKey) {
    let mut rng = Rng(1);
    let chunks: Vec<Vec<u8>> = (0..2000).map(|_| terminal_chunk(&mut rng)).collect();
    let mut w = Writer::new(
        Vec::with_capacity(RAW_TARGET / 4),
        &header("ssh"),
        key,
        WriterOptions::default(),
    )
    .unwrap();
    let (mut raw, mut t) = (0usize, Duration::ZERO);
    let start = Instant::now();
    let mut i = 0;
    while raw < RAW_TARGET {
        let c = &chunks[i % chunks.len()];
        t += Duration::from_micros(1500);
        w.output(t, c).unwrap();
        if i % 10 == 0 {
            w.input(t, b"j").unwrap();
            raw += 1;
        }
        raw += c.len();
        i += 1;
    }
    let out = w.finish(t).unwrap();
    report("terminal", raw, out.len(), start.elapsed());
}

fn sql(key: &SigningKey) {
    let mut rng = Rng(2);
    let stmts: Vec<(String, String, usize)> = (0..500)
        .map(|_| {
            let (s, rows) = sql_statement(&mut rng);
            let cols = ["id", "name", "email", "created_at", "status"];
            (s, render_table(&cols, &rows, 100, 64), rows.len())
        })
        .collect();
    let allow = Verdict {
        decision: Decision::Allow,
        rule: Some("read-only"),
    };
    let mut w = Writer::new(
        Vec::with_capacity(RAW_TARGET / 4),
        &header("postgres"),
        key,
        WriterOptions::default(),
    )
    .unwrap();
    let (mut raw, mut t) = (0usize, Duration::ZERO);
    let start = Instant::now();
    let mut i = 0;
    while raw < RAW_TARGET {
        let (s, table, n) = &stmts[i % stmts.len()];
        t += Duration::from_millis(3);
        w.record_statement(
            t,
            s,
            &allow,
            table,
            Some(*n as u64),
            Duration::from_micros(800),
        )
        .unwrap();
        raw += 2 * s.len() + table.len();
        i += 1;
    }
    let out = w.finish(t).unwrap();
    report("sql", raw, out.len(), start.elapsed());
}

/// Bulk output in 32 KiB chunks (what an SSH channel delivers), as from
/// `head -c 1G /dev/zero` (each NUL becomes the six-byte JSON escape
/// `\u0000`) or from `cat` of a text file.
fn bulk(key: &SigningKey, name: &str, chunk: &[u8]) {
    let mut w = Writer::new(
        std::io::sink(),
        &header("ssh"),
        key,
        WriterOptions::default(),
    )
    .unwrap();
    let (mut raw, mut t) = (0usize, Duration::ZERO);
    let start = Instant::now();
    while raw < 4 * RAW_TARGET {
        t += Duration::from_micros(100);
        w.output(t, chunk).unwrap();
        raw += chunk.len();
    }
    w.finish(t).unwrap();
    let took = start.elapsed();
    println!(
        "{name:<9} raw {:>7.1} MB  {:>6.1} MB/s ({:.2} s of CPU per GiB)",
        raw as f64 / 1e6,
        raw as f64 / 1e6 / took.as_secs_f64(),
        took.as_secs_f64() * (1u64 << 30) as f64 / raw as f64
    );
}

fn main() {
    let key = SigningKey::from_seed(&[1; 32]);
    terminal(&key);
    sql(&key);
    bulk(&key, "zeros", &[0u8; 32 << 10]);
    let line = b"the quick brown fox jumps over the lazy dog\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(32 << 10).collect();
    bulk(&key, "text", &text);
}
