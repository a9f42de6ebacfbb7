//! Writes a directory of synthetic recordings for benchmarking `replay search`:
//! `cargo run --release -p gw-recording --example gen_corpus -- DIR MB`.
//! About 1 in 20 000 output chunks contains the word `needle`.
#![allow(clippy::print_stdout)]

#[path = "../benches/support/synth.rs"]
#[allow(dead_code)] // the SQL generator is for the write benchmark only
mod synth;

use std::io::BufWriter;
use std::time::Duration;

use gw_recording::{Header, SessionMeta, SigningKey, Writer, WriterOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(mb)) = (
        args.get(1),
        args.get(2).and_then(|m| m.parse::<usize>().ok()),
    ) else {
        println!("usage: gen_corpus DIR MB");
        std::process::exit(2);
    };
    std::fs::create_dir_all(dir).unwrap();
    let key = SigningKey::from_seed(&[1; 32]);
    let mut rng = synth::Rng(7);
    let chunks: Vec<Vec<u8>> = (0..5000).map(|_| synth::terminal_chunk(&mut rng)).collect();
    let per_file = 50 << 20;
    let (mut total, mut n, mut chunk_no) = (0usize, 0, 0usize);
    while total < mb << 20 {
        let meta = SessionMeta {
            session_id: format!("bench-{n:04}"),
            principal: ["alice", "bob", "carol"][n % 3].into(),
            resource: format!("web-{:02}", n % 7),
            protocol: "ssh".into(),
            start_us: 1_795_510_800_000_000 + n as u64 * 3_600_000_000,
            ..SessionMeta::default()
        };
        let f = std::fs::File::create(format!("{dir}/s{n:04}.cast.zst")).unwrap();
        let mut w = Writer::new(
            BufWriter::new(f),
            &Header::new(120, 40, meta),
            &key,
            WriterOptions::default(),
        )
        .unwrap();
        let (mut raw, mut t) = (0usize, Duration::ZERO);
        while raw < per_file {
            let c = &chunks[(chunk_no * 7919) % chunks.len()];
            chunk_no += 1;
            t += Duration::from_millis(5);
            if chunk_no % 20_000 == 0 {
                w.output(t, b"found the needle here\r\n").unwrap();
            }
            w.output(t, c).unwrap();
            raw += c.len();
        }
        w.finish(t).unwrap();
        total += raw;
        n += 1;
    }
    println!("{n} files, {:.0} MB raw output", total as f64 / 1e6);
}
