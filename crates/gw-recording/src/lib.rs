//! The gateway's session recording format: asciicast v3 text, cut into
//! independent zstd frames, hash-chained with BLAKE3 and signed with Ed25519.
//!
//! `zstd -dc session.cast.zst` prints a plain asciicast v3 file, because all
//! integrity data lives in zstd skippable frames. `FORMAT.md` next to this crate
//! describes the bytes for third-party verifiers.
//!
//! The crate is synchronous and never reads the clock: writers take session
//! times as arguments and work on any [`std::io::Write`], readers on any
//! [`std::io::Read`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod event;
mod export;
mod frame;
mod reader;
mod sql;
mod time;
mod verify;
mod writer;

pub use event::{Event, EventData, Header, SessionMeta, line_interval_us, parse_line};
pub use export::{export_txt, export_v2, export_v3, strip_ansi};
pub use frame::{
    Checkpoint, EventCounts, FORMAT_VERSION, FileHeader, FrameError, FrameReader, MAX_FRAME_BYTES,
    Record, RecordKind, Seal, Trailer,
};
pub use gw_keys::{KeyError, KeyId, PublicKey, SigningKey, TrustedKeys, key_id_hex};
pub use reader::{FrameText, ReadError, Reader, Recording};
pub use sql::{
    Decision, MarkerLabel, Verdict, parse_marker, render_table, review_approved, review_denied,
    review_ended, review_requested,
};
pub use time::{parse_rfc3339, rfc3339};
pub use verify::{Failure, Verification, check_chain, verify};
pub use writer::{WriteError, Writer, WriterOptions};

/// Fixed key for [`fuzz_read`], so fuzzed inputs can also reach signature checks.
const FUZZ_SEED: [u8; 32] = [7; 32];

/// Reads, exports and verifies arbitrary bytes; used by the fuzz target and the
/// randomized no-panic test. Must never panic or allocate without bound.
pub fn fuzz_read(data: &[u8]) {
    if let Ok(rec) = Recording::read(data) {
        let _ = rec.duration();
        let _ = export_txt(&rec, &mut std::io::sink());
        let _ = export_v2(&rec, &mut std::io::sink());
    }
    if let Ok(mut r) = Reader::open(data) {
        while let Ok(Some(frame)) = r.next_frame() {
            for line in frame.text.split(|&b| b == b'\n') {
                let _ = line_interval_us(line);
            }
        }
    }
    let keys: TrustedKeys = [SigningKey::from_seed(&FUZZ_SEED).public_key()]
        .into_iter()
        .collect();
    let _ = verify(data, &keys).to_string();
    let _ = check_chain(data);
}
