//! Every byte flipped, every truncation point: detected, located, no panic.

use gw_recording::{Failure, FrameReader, Record, Recording, TrustedKeys, Verification, verify};

use super::support::{key, small_frames, sql_session, ssh_session};

/// One record of the file: byte range and the frame a verifier must blame.
struct Span {
    start: usize,
    end: usize,
    frame: u64,
    kind: &'static str,
}

fn layout(bytes: &[u8]) -> Vec<Span> {
    let mut r = FrameReader::new(bytes);
    let mut spans = Vec::new();
    let mut last = 0;
    loop {
        let start = r.offset() as usize;
        let Some(record) = r.next_record().unwrap() else {
            break;
        };
        let (frame, kind) = match record {
            Record::File(_) => (0, "file"),
            Record::Data(seal) => {
                last = seal.seq;
                (seal.seq, "data")
            }
            Record::Checkpoint(_) => (last, "checkpoint"),
            Record::Trailer(_) => (last, "trailer"),
        };
        spans.push(Span {
            start,
            end: r.offset() as usize,
            frame,
            kind,
        });
    }
    spans
}

fn failed_frame(v: &Verification) -> Option<u64> {
    match v {
        Verification::Failed { failure, .. } => match failure {
            Failure::Modified { frame, .. }
            | Failure::BadSignature { frame }
            | Failure::UnknownKey { frame, .. } => Some(*frame),
            _ => None,
        },
        Verification::Verified { .. } => None,
    }
}

#[test]
fn every_flipped_byte_is_detected_and_located() {
    let keys: TrustedKeys = [key().public_key()].into_iter().collect();
    for bytes in [ssh_session(small_frames()), sql_session(small_frames())] {
        let spans = layout(&bytes);
        assert!(spans.len() > 10, "want many frames, got {}", spans.len());
        for span in &spans {
            for pos in span.start..span.end {
                // One bit per byte, a different one at each position.
                {
                    let bit = 1u8 << (pos % 8);
                    let mut bad = bytes.clone();
                    bad[pos] ^= bit;
                    let v = verify(&bad[..], &keys);
                    assert_eq!(
                        failed_frame(&v),
                        Some(span.frame),
                        "flip {bit:#x} at byte {pos} ({} record of frame {}): {v}",
                        span.kind,
                        span.frame
                    );
                    // Reading damaged input may fail, but must not panic.
                    let _ = Recording::read(&bad[..]);
                }
            }
        }
    }
}

#[test]
fn every_truncation_reads_a_prefix_and_verifies_to_last_checkpoint() {
    let keys: TrustedKeys = [key().public_key()].into_iter().collect();
    let bytes = ssh_session(small_frames());
    let full = Recording::read(&bytes[..]).unwrap();
    let spans = layout(&bytes);
    for cut in 0..bytes.len() {
        let part = &bytes[..cut];
        let done: Vec<&Span> = spans.iter().filter(|s| s.end <= cut).collect();
        let last_frame = done
            .iter()
            .filter(|s| s.kind == "data")
            .map(|s| s.frame)
            .next_back();
        let last_cp = done
            .iter()
            .filter(|s| s.kind == "checkpoint")
            .map(|s| s.frame)
            .next_back();
        let at_boundary = done.last().is_some_and(|s| s.end == cut);
        let v = verify(part, &keys);
        let ends_signed = done.last().is_some_and(|s| s.kind == "checkpoint") && at_boundary;
        if cut == 0 {
            assert_eq!(
                v,
                Verification::Failed {
                    failure: Failure::NotARecording,
                    last_checkpoint: None
                }
            );
        } else if ends_signed {
            assert_eq!(
                v,
                Verification::Verified {
                    frames: last_frame.unwrap() + 1,
                    last_checkpoint: last_cp,
                    signed_trailer: false
                },
                "cut {cut}"
            );
        } else {
            let want = Failure::Truncated {
                after_frame: last_frame,
            };
            assert_eq!(
                v,
                Verification::Failed {
                    failure: want,
                    last_checkpoint: last_cp
                },
                "cut {cut}"
            );
        }
        match Recording::read(part) {
            Ok(rec) => {
                assert!(full.events.starts_with(&rec.events), "cut {cut}");
                assert_eq!(rec.truncated, !at_boundary, "cut {cut}");
            }
            // Only a cut inside the file header or frame 0 loses the header.
            Err(e) => assert!(last_frame.is_none(), "cut {cut}: {e}"),
        }
    }
}
