//! Property-style robustness test: classification must never panic, whatever
//! the bytes. Inputs are pseudo-random byte strings and mutated corpus
//! entries from a fixed-seed xorshift generator, so failures reproduce.

use gw_sql::{Dialect, classify, fuzz_classify};

/// xorshift64*: tiny, deterministic, good enough to scatter mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Fragments that matter to the lexers and parsers: quotes, comment
/// openers, statement separators, keywords.
const FRAGMENTS: &[&[u8]] = &[
    b"'",
    b"\"",
    b"`",
    b"$$",
    b"$a$",
    b"/*",
    b"*/",
    b"/*!",
    b"/*M!",
    b"--",
    b"#",
    b";",
    b"(",
    b")",
    b"\\",
    b"E'",
    b"\n",
    b" SELECT ",
    b" DROP TABLE t",
    b" WITH d AS (DELETE FROM t RETURNING *) ",
    b" EXPLAIN ANALYZE ",
    b" COPY t FROM STDIN;\n",
    b"pg_sleep(",
    b" INTO OUTFILE '/x' ",
    b" DO ",
    b" PREPARE s FROM '",
    b"\xff",
    b"\xc3\xa9",
    b"\0",
];

/// Bytes the random strings are mostly drawn from.
const ALPHABET: &[u8] = b" ;'\"`$-/*#()!abcdeSELECTFROMDROPWHERE0123456789,.=\n";

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for text in [
        include_str!("corpus/postgres.sql"),
        include_str!("corpus/mysql.sql"),
    ] {
        out.extend(text.split("\n-- ---\n").map(str::to_owned));
    }
    out
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                bytes.splice(at..at, f.iter().copied());
            }
            1 if at < bytes.len() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => {
                let end = (at + rng.below(16)).min(bytes.len());
                let copy: Vec<u8> = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5000 {
        let len = rng.below(120);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                // Bias towards printable ASCII so the parser gets past the
                // first token often.
                if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    ALPHABET[rng.below(ALPHABET.len())]
                }
            })
            .collect();
        fuzz_classify(&bytes);
    }
}

#[test]
fn mutated_corpus_never_panics() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let corpus = corpus();
    for _ in 0..8000 {
        let base = &corpus[rng.below(corpus.len())];
        let mutated = mutate(&mut rng, base.as_bytes());
        fuzz_classify(&mutated);
    }
}

#[test]
fn unparsed_never_holds_statements() {
    let mut rng = Rng(42);
    let corpus = corpus();
    for _ in 0..1000 {
        let base = &corpus[rng.below(corpus.len())];
        let mutated = String::from_utf8_lossy(&mutate(&mut rng, base.as_bytes())).into_owned();
        for dialect in [Dialect::Postgres, Dialect::MySql] {
            let c = classify(dialect, &mutated);
            if c.unparsed.is_some() {
                assert!(c.statements.is_empty(), "{mutated:?}");
            }
        }
    }
}
