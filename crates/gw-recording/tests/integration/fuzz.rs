//! Randomized no-panic test over mutated recordings, the same entry point the
//! cargo-fuzz target uses (`fuzz/fuzz_targets/recording_reader.rs`).

use gw_recording::fuzz_read;

use super::support::{small_frames, sql_session};

/// xorshift64*: deterministic, so a failure reproduces from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_recordings_never_panic() {
    let base = sql_session(small_frames());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let mut data = base.clone();
        for _ in 0..=rng.below(4) {
            // Mutations index into the data; stop once it is too short.
            if data.len() < 4 {
                break;
            }
            match rng.below(5) {
                0 => {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
                1 => data.truncate(rng.below(data.len())),
                2 => {
                    // Large length fields must not turn into large allocations.
                    let i = rng.below(data.len().saturating_sub(4));
                    data[i..i + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                }
                3 => {
                    let i = rng.below(data.len());
                    let n = rng.below(64).min(data.len() - i);
                    data.drain(i..i + n);
                }
                _ => {
                    let i = rng.below(data.len());
                    let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                    data.splice(i..i, junk);
                }
            }
        }
        fuzz_read(&data);
    }
    for _ in 0..200 {
        let junk: Vec<u8> = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
        fuzz_read(&junk);
    }
}
