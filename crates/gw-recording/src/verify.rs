//! Verification: follows the hash chain frame by frame, checks every seal,
//! checkpoint and the trailer, and says precisely where a recording breaks.

use std::fmt;
use std::io::Read;

use crate::event::{EventData, Header, line_interval_us};
use crate::frame::{
    Checkpoint, EventCounts, FileHeader, FrameError, FrameReader, Record, RecordKind, Seal,
    Trailer, chain_next,
};
use crate::reader::decompress;
use gw_keys::{TrustedKeys, key_id_hex};

/// The result of verifying one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every frame, the chain and every signature checked.
    Verified {
        /// Number of data frames (including frame 0, the header).
        frames: u64,
        /// The last frame covered by a signed checkpoint.
        last_checkpoint: Option<u64>,
        /// Whether the recording ends with a signed trailer. Without one it was
        /// not closed (gateway crash), but every frame present is signed.
        signed_trailer: bool,
    },
    /// Something does not check; `last_checkpoint` is the last frame whose
    /// content is still vouched for by a valid signature.
    Failed {
        /// What broke, and where.
        failure: Failure,
        /// The last frame covered by a valid checkpoint before the failure.
        last_checkpoint: Option<u64>,
    },
}

impl Verification {
    /// Whether verification succeeded.
    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }
}

/// A precise verification failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The input is not a recording at all.
    NotARecording,
    /// Written by a format version this verifier does not know.
    UnsupportedVersion(u16),
    /// The input ends early: after frame `after_frame` (`None`: inside the
    /// file header), with the later frames missing or unsigned.
    Truncated {
        /// The last complete frame.
        after_frame: Option<u64>,
    },
    /// Frame `frame` (its data, seal, or the checkpoint/trailer after it) was altered.
    Modified {
        /// The damaged frame.
        frame: u64,
        /// Which check failed.
        what: &'static str,
    },
    /// A checkpoint or trailer after `frame` is signed by a key not in the trusted set.
    UnknownKey {
        /// The frame the signature covers.
        frame: u64,
        /// The key id, 16 hex digits.
        key_id: String,
    },
    /// A checkpoint or trailer after `frame` has an invalid signature.
    BadSignature {
        /// The frame the signature covers.
        frame: u64,
    },
    /// Reading failed.
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotARecording => write!(f, "not a gateway recording"),
            Failure::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Failure::Truncated { after_frame: None } => {
                write!(f, "truncated inside the file header")
            }
            Failure::Truncated {
                after_frame: Some(n),
            } => write!(f, "truncated after frame {n}"),
            Failure::Modified { frame, what } => write!(f, "modified at frame {frame} ({what})"),
            Failure::UnknownKey { frame, key_id } => {
                write!(f, "unknown key id {key_id} (signature after frame {frame})")
            }
            Failure::BadSignature { frame } => {
                write!(f, "bad signature (checkpoint after frame {frame})")
            }
            Failure::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cp = |c: &Option<u64>| c.map_or("none".to_string(), |c| format!("frame {c}"));
        match self {
            Verification::Verified {
                frames,
                last_checkpoint,
                signed_trailer,
            } => {
                write!(
                    f,
                    "verified: {frames} frames, last checkpoint {}",
                    cp(last_checkpoint)
                )?;
                if !*signed_trailer {
                    write!(f, ", no trailer (recording not closed)")?;
                }
                Ok(())
            }
            Verification::Failed {
                failure,
                last_checkpoint,
            } => {
                write!(
                    f,
                    "FAILED: {failure}; verifiable up to checkpoint {}",
                    cp(last_checkpoint)
                )
            }
        }
    }
}

/// Verifies a recording against a set of trusted keys.
pub fn verify<R: Read>(inner: R, keys: &TrustedKeys) -> Verification {
    Verifier::new(Some(keys)).run(inner)
}

/// Checks framing, chain and contents but not signatures (no keys at hand).
pub fn check_chain<R: Read>(inner: R) -> Verification {
    Verifier::new(None).run(inner)
}

struct Verifier<'k> {
    keys: Option<&'k TrustedKeys>,
    file: Option<FileHeader>,
    chain: [u8; 32],
    /// The last complete, chain-valid frame.
    last: Option<u64>,
    last_checkpoint: Option<u64>,
    checkpoints: u32,
    counts: EventCounts,
    end_us: u64,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    text: Vec<u8>,
}

impl<'k> Verifier<'k> {
    fn new(keys: Option<&'k TrustedKeys>) -> Self {
        Verifier {
            keys,
            file: None,
            chain: [0; 32],
            last: None,
            last_checkpoint: None,
            checkpoints: 0,
            counts: [0; 5],
            end_us: 0,
            decompressor: zstd::bulk::Decompressor::new().ok(),
            text: Vec::new(),
        }
    }

    fn run<R: Read>(mut self, inner: R) -> Verification {
        match self.walk(inner) {
            Ok(signed_trailer) => {
                let frames = self.last.map_or(0, |l| l + 1);
                if signed_trailer || (self.last.is_some() && self.last_checkpoint == self.last) {
                    Verification::Verified {
                        frames,
                        last_checkpoint: self.last_checkpoint,
                        signed_trailer,
                    }
                } else {
                    let failure = Failure::Truncated {
                        after_frame: self.last,
                    };
                    Verification::Failed {
                        failure,
                        last_checkpoint: self.last_checkpoint,
                    }
                }
            }
            Err(failure) => Verification::Failed {
                failure,
                last_checkpoint: self.last_checkpoint,
            },
        }
    }

    /// Walks all records; `Ok(true)` if a valid trailer ended the file.
    fn walk<R: Read>(&mut self, inner: R) -> Result<bool, Failure> {
        let mut frames = FrameReader::new(inner);
        loop {
            let record = match frames.next_record() {
                Ok(Some(r)) => r,
                Ok(None) if self.file.is_none() => return Err(Failure::NotARecording),
                Ok(None) => return Ok(false),
                Err(e) => return Err(self.frame_error(e)),
            };
            match record {
                Record::File(f) => self.file_header(f)?,
                Record::Data(seal) => self.data(&seal, &frames.data)?,
                Record::Checkpoint(cp) => self.checkpoint(&cp)?,
                Record::Trailer(t) => {
                    self.trailer(&t)?;
                    return match frames.next_record() {
                        Ok(None) => Ok(true),
                        Err(FrameError::Io(e)) => Err(Failure::Io(e.to_string())),
                        _ => Err(Failure::Modified {
                            frame: self.last.unwrap_or(0),
                            what: "data after trailer",
                        }),
                    };
                }
            }
        }
    }

    fn frame_error(&self, e: FrameError) -> Failure {
        match e {
            FrameError::Truncated { .. } => Failure::Truncated {
                after_frame: self.last,
            },
            FrameError::Io(e) => Failure::Io(e.to_string()),
            FrameError::Malformed {
                what: "not a recording",
                ..
            } => Failure::NotARecording,
            FrameError::Malformed { kind, what, .. } => {
                let frame = match kind {
                    _ if self.file.is_none() => 0,
                    RecordKind::Data => self.last.map_or(0, |l| l + 1),
                    _ => self.last.unwrap_or(0),
                };
                Failure::Modified { frame, what }
            }
        }
    }

    fn file_header(&mut self, f: FileHeader) -> Result<(), Failure> {
        if self.file.is_some() {
            return Err(Failure::Modified {
                frame: self.last.map_or(0, |l| l + 1),
                what: "second file header",
            });
        }
        if f.version != crate::frame::FORMAT_VERSION {
            return Err(Failure::UnsupportedVersion(f.version));
        }
        self.chain = f.chain_seed();
        self.file = Some(f);
        Ok(())
    }

    fn data(&mut self, seal: &Seal, compressed: &[u8]) -> Result<(), Failure> {
        let expected = self.last.map_or(0, |l| l + 1);
        let modified = |what| Failure::Modified {
            frame: expected,
            what,
        };
        let Some(file) = &self.file else {
            return Err(Failure::NotARecording);
        };
        if seal.seq != expected {
            return Err(modified("sequence number"));
        }
        if chain_next(&self.chain, &seal.fields(), compressed) != seal.chain {
            return Err(modified("hash chain"));
        }
        let d = self
            .decompressor
            .as_mut()
            .ok_or(Failure::Io("no zstd context".into()))?;
        decompress(d, compressed, seal.uncompressed_len, &mut self.text).map_err(modified)?;
        if expected == 0 {
            let line = self
                .text
                .strip_suffix(b"\n")
                .ok_or(modified("header frame"))?;
            if blake3::hash(line).as_bytes() != &file.header_hash || Header::parse(line).is_none() {
                return Err(modified("header line"));
            }
        } else {
            self.events(seal).map_err(modified)?;
        }
        self.chain = seal.chain;
        self.last = Some(expected);
        Ok(())
    }

    /// Counts and times the events of a frame and checks them against the seal.
    fn events(&mut self, seal: &Seal) -> Result<(), &'static str> {
        let mut n = 0u32;
        let mut us = self.end_us;
        for line in self.text.split(|&b| b == b'\n') {
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let (interval, data) = crate::event::parse_line(line).ok_or("bad event line")?;
            debug_assert_eq!(line_interval_us(line), Some(interval));
            us = us.saturating_add(interval);
            n += 1;
            if let Some(i) = u8::try_from(data.code())
                .ok()
                .and_then(EventData::count_index)
            {
                self.counts[i] += 1;
            }
        }
        if n != seal.events {
            return Err("event count");
        }
        if us != seal.end_us {
            return Err("event times");
        }
        self.end_us = us;
        Ok(())
    }

    fn check_signature(
        &self,
        frame: u64,
        key_id: &[u8; 8],
        message: &[u8],
        sig: &[u8; 64],
    ) -> Result<(), Failure> {
        let Some(keys) = self.keys else { return Ok(()) };
        let key = keys.get(key_id).ok_or_else(|| Failure::UnknownKey {
            frame,
            key_id: key_id_hex(key_id),
        })?;
        if key.verify(message, sig) {
            Ok(())
        } else {
            Err(Failure::BadSignature { frame })
        }
    }

    fn checkpoint(&mut self, cp: &Checkpoint) -> Result<(), Failure> {
        let frame = self.last.ok_or(Failure::Modified {
            frame: 0,
            what: "checkpoint before frame 0",
        })?;
        if cp.seq != frame || cp.chain != self.chain {
            return Err(Failure::Modified {
                frame,
                what: "checkpoint does not match chain",
            });
        }
        let message = Checkpoint::message(cp.seq, &cp.chain, &cp.key_id);
        self.check_signature(frame, &cp.key_id, &message, &cp.signature)?;
        self.last_checkpoint = Some(frame);
        self.checkpoints += 1;
        Ok(())
    }

    fn trailer(&mut self, t: &Trailer) -> Result<(), Failure> {
        let frame = self.last.ok_or(Failure::Modified {
            frame: 0,
            what: "trailer before frame 0",
        })?;
        let modified = |what| Failure::Modified { frame, what };
        if t.seq != frame || t.chain != self.chain {
            return Err(modified("trailer does not match chain"));
        }
        if t.counts != self.counts || t.checkpoints != self.checkpoints || t.end_us < self.end_us {
            return Err(modified("trailer summary"));
        }
        self.check_signature(frame, &t.key_id, &t.message(), &t.signature)
    }
}
