//! The binary records of the container: zstd skippable frames that carry the
//! integrity data, and the framing reader that walks them.
//!
//! Every length in the file is either fixed by the record kind or protected by a
//! self-check before it is trusted, so a flipped byte is reported as a
//! modification of the right frame and never mistaken for a truncation, and no
//! allocation is sized from unchecked input. See `FORMAT.md` for the byte layout.

use std::io::Read;

/// Magic of the file header skippable frame.
pub(crate) const MAGIC_FILE: u32 = 0x184D_2A5A;
/// Magic of the seal that precedes every data frame.
pub(crate) const MAGIC_SEAL: u32 = 0x184D_2A5B;
/// Magic of a signed checkpoint.
pub(crate) const MAGIC_CHECKPOINT: u32 = 0x184D_2A5C;
/// Magic of the signed trailer written at close.
pub(crate) const MAGIC_TRAILER: u32 = 0x184D_2A5D;

/// Identifies the payload of the file header, independent of the zstd magic.
pub(crate) const FILE_MAGIC: &[u8; 8] = b"GWREC\0\0\x01";
/// The only format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

pub(crate) const FILE_LEN: usize = 60;
pub(crate) const SEAL_LEN: usize = 68;
pub(crate) const CHECKPOINT_LEN: usize = 112;
pub(crate) const TRAILER_LEN: usize = 164;

/// Upper bound for one data frame, compressed or not. The writer stays far below
/// it; the reader refuses anything larger so garbage cannot make it allocate.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Domain separation for the signed messages and the chain.
pub(crate) const CHECKPOINT_DOMAIN: &[u8] = b"gw-recording/v1/checkpoint";
pub(crate) const TRAILER_DOMAIN: &[u8] = b"gw-recording/v1/trailer";

/// Eight bytes of BLAKE3 over a record's other fields, so lengths can be trusted.
pub(crate) fn self_check(fields: &[u8]) -> [u8; 8] {
    let h = blake3::hash(fields);
    let mut out = [0; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// The leading record: format version, signing key and the header line's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version, currently always [`FORMAT_VERSION`].
    pub version: u16,
    /// Key id of the key that signs this recording's checkpoints.
    pub key_id: [u8; 8],
    /// BLAKE3 of the asciicast header line (without its newline).
    pub header_hash: [u8; 32],
}

impl FileHeader {
    pub(crate) fn encode(&self) -> [u8; FILE_LEN] {
        let mut p = [0u8; FILE_LEN];
        p[0..8].copy_from_slice(FILE_MAGIC);
        p[8..10].copy_from_slice(&self.version.to_le_bytes());
        // Bytes 10..12 are flags, reserved as zero.
        p[12..20].copy_from_slice(&self.key_id);
        p[20..52].copy_from_slice(&self.header_hash);
        let check = self_check(&p[..52]);
        p[52..60].copy_from_slice(&check);
        p
    }

    fn decode(p: &[u8]) -> Option<Self> {
        if p.len() != FILE_LEN || &p[0..8] != FILE_MAGIC || self_check(&p[..52]) != p[52..60] {
            return None;
        }
        Some(FileHeader {
            version: u16::from_le_bytes([p[8], p[9]]),
            key_id: p[12..20].try_into().ok()?,
            header_hash: p[20..52].try_into().ok()?,
        })
    }

    /// The chain value before frame 0: BLAKE3 of the encoded payload.
    pub(crate) fn chain_seed(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }
}

/// Describes the data frame that follows it and commits to it in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Frame sequence number; frame 0 holds the asciicast header line.
    pub seq: u64,
    /// Length of the zstd frame that follows.
    pub compressed_len: u32,
    /// Length of its decompressed text.
    pub uncompressed_len: u32,
    /// Number of asciicast lines (events) in the frame.
    pub events: u32,
    /// Session time of the frame's last event, in microseconds since start.
    pub end_us: u64,
    /// Chain value after this frame.
    pub chain: [u8; 32],
}

impl Seal {
    /// The fields that enter the chain, in file order.
    pub(crate) fn fields(&self) -> [u8; 28] {
        let mut f = [0u8; 28];
        f[0..8].copy_from_slice(&self.seq.to_le_bytes());
        f[8..12].copy_from_slice(&self.compressed_len.to_le_bytes());
        f[12..16].copy_from_slice(&self.uncompressed_len.to_le_bytes());
        f[16..20].copy_from_slice(&self.events.to_le_bytes());
        f[20..28].copy_from_slice(&self.end_us.to_le_bytes());
        f
    }

    pub(crate) fn encode(&self) -> [u8; SEAL_LEN] {
        let mut p = [0u8; SEAL_LEN];
        p[..28].copy_from_slice(&self.fields());
        p[28..60].copy_from_slice(&self.chain);
        let check = self_check(&p[..60]);
        p[60..68].copy_from_slice(&check);
        p
    }

    fn decode(p: &[u8]) -> Option<Self> {
        if p.len() != SEAL_LEN || self_check(&p[..60]) != p[60..68] {
            return None;
        }
        Some(Seal {
            seq: u64::from_le_bytes(p[0..8].try_into().ok()?),
            compressed_len: u32::from_le_bytes(p[8..12].try_into().ok()?),
            uncompressed_len: u32::from_le_bytes(p[12..16].try_into().ok()?),
            events: u32::from_le_bytes(p[16..20].try_into().ok()?),
            end_us: u64::from_le_bytes(p[20..28].try_into().ok()?),
            chain: p[28..60].try_into().ok()?,
        })
    }
}

/// H_i = BLAKE3(H_{i-1} || seal fields || compressed frame bytes).
pub(crate) fn chain_next(prev: &[u8; 32], fields: &[u8; 28], compressed: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(fields);
    h.update(compressed);
    *h.finalize().as_bytes()
}

/// A signature over the chain head after frame `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last data frame the signature covers.
    pub seq: u64,
    /// Chain value after that frame.
    pub chain: [u8; 32],
    /// Which key signed.
    pub key_id: [u8; 8],
    /// Ed25519 signature over [`Checkpoint::message`].
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The signed message: domain || seq || chain || key id.
    pub(crate) fn message(seq: u64, chain: &[u8; 32], key_id: &[u8; 8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 48);
        m.extend_from_slice(CHECKPOINT_DOMAIN);
        m.extend_from_slice(&seq.to_le_bytes());
        m.extend_from_slice(chain);
        m.extend_from_slice(key_id);
        m
    }

    pub(crate) fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        let mut p = [0u8; CHECKPOINT_LEN];
        p[0..8].copy_from_slice(&self.seq.to_le_bytes());
        p[8..40].copy_from_slice(&self.chain);
        p[40..48].copy_from_slice(&self.key_id);
        p[48..112].copy_from_slice(&self.signature);
        p
    }

    fn decode(p: &[u8]) -> Option<Self> {
        if p.len() != CHECKPOINT_LEN {
            return None;
        }
        Some(Checkpoint {
            seq: u64::from_le_bytes(p[0..8].try_into().ok()?),
            chain: p[8..40].try_into().ok()?,
            key_id: p[40..48].try_into().ok()?,
            signature: p[48..112].try_into().ok()?,
        })
    }
}

/// Event counts per asciicast code, in the order `o i r m x`.
pub type EventCounts = [u64; 5];

/// The signed summary written when a recording is closed normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// The last data frame.
    pub seq: u64,
    /// Chain value after it.
    pub chain: [u8; 32],
    /// Which key signed.
    pub key_id: [u8; 8],
    /// Events written, by code `o i r m x`.
    pub counts: EventCounts,
    /// Session time at close, in microseconds since start.
    pub end_us: u64,
    /// Number of checkpoints written before the trailer.
    pub checkpoints: u32,
    /// Ed25519 signature over the domain and the fields above.
    pub signature: [u8; 64],
}

impl Trailer {
    pub(crate) fn encode_fields(&self) -> [u8; 100] {
        let mut p = [0u8; 100];
        p[0..8].copy_from_slice(&self.seq.to_le_bytes());
        p[8..40].copy_from_slice(&self.chain);
        p[40..48].copy_from_slice(&self.key_id);
        for (i, c) in self.counts.iter().enumerate() {
            p[48 + 8 * i..56 + 8 * i].copy_from_slice(&c.to_le_bytes());
        }
        p[88..96].copy_from_slice(&self.end_us.to_le_bytes());
        p[96..100].copy_from_slice(&self.checkpoints.to_le_bytes());
        p
    }

    pub(crate) fn message(&self) -> Vec<u8> {
        let mut m = TRAILER_DOMAIN.to_vec();
        m.extend_from_slice(&self.encode_fields());
        m
    }

    pub(crate) fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut p = [0u8; TRAILER_LEN];
        p[..100].copy_from_slice(&self.encode_fields());
        p[100..].copy_from_slice(&self.signature);
        p
    }

    pub(crate) fn decode(p: &[u8]) -> Option<Self> {
        if p.len() != TRAILER_LEN {
            return None;
        }
        let u64_at = |o: usize| p[o..o + 8].try_into().ok().map(u64::from_le_bytes);
        let mut counts = [0u64; 5];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = u64_at(48 + 8 * i)?;
        }
        Some(Trailer {
            seq: u64_at(0)?,
            chain: p[8..40].try_into().ok()?,
            key_id: p[40..48].try_into().ok()?,
            counts,
            end_us: u64_at(88)?,
            checkpoints: u32::from_le_bytes(p[96..100].try_into().ok()?),
            signature: p[100..164].try_into().ok()?,
        })
    }
}

/// Writes one skippable frame: magic, LE size, payload.
pub(crate) fn skippable(magic: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&magic.to_le_bytes());
    // Payloads are fixed and small; the cast cannot truncate.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// One record of the container, as the framing reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The file header (always first).
    File(FileHeader),
    /// A seal; the compressed frame bytes are in the reader's buffer.
    Data(Seal),
    /// A signed checkpoint.
    Checkpoint(Checkpoint),
    /// The signed trailer (always last).
    Trailer(Trailer),
}

/// Why the framing could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The input ends inside a record: a crash or a cut copy.
    #[error("truncated at byte {offset}")]
    Truncated {
        /// Where the incomplete record starts.
        offset: u64,
    },
    /// The bytes at `offset` are not a valid record.
    #[error("{what} at byte {offset}")]
    Malformed {
        /// Where the bad record starts.
        offset: u64,
        /// Which record kind the reader believes was damaged.
        kind: RecordKind,
        /// What is wrong, in a few words.
        what: &'static str,
    },
    /// Reading failed.
    #[error("read failed")]
    Io(#[from] std::io::Error),
}

/// The kind of a damaged record, guessed from its magic or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// File header.
    File,
    /// Seal or data frame.
    Data,
    /// Checkpoint.
    Checkpoint,
    /// Trailer.
    Trailer,
}

/// Walks the records of a recording from any reader.
pub struct FrameReader<R> {
    inner: R,
    offset: u64,
    /// The compressed bytes of the last data frame.
    pub data: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    /// Starts reading at the beginning of a recording.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            offset: 0,
            data: Vec::new(),
        }
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `Ok(None)` at a clean end of input.
    pub fn next_record(&mut self) -> Result<Option<Record>, FrameError> {
        let start = self.offset;
        let mut head = [0u8; 8];
        let got = self.fill(&mut head)?;
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let bad = |kind, what| FrameError::Malformed {
            offset: start,
            kind,
            what,
        };
        if start == 0 {
            // A file that does not start like a recording is garbage, not damage:
            // a single flipped byte leaves either the magic or the size intact.
            let expected = [
                &MAGIC_FILE.to_le_bytes()[..],
                &(FILE_LEN as u32).to_le_bytes(),
            ]
            .concat();
            let n = got.min(8);
            let magic_ok = head[..n.min(4)] == expected[..n.min(4)];
            let size_ok = n > 4 && head[4..n] == expected[4..n];
            if got > 0 && !magic_ok && !size_ok {
                return Err(bad(RecordKind::File, "not a recording"));
            }
        }
        match got {
            0 => return Ok(None),
            8 => {}
            _ => return Err(FrameError::Truncated { offset: start }),
        }
        let (kind, len) = match magic {
            MAGIC_FILE => (RecordKind::File, FILE_LEN),
            MAGIC_SEAL => (RecordKind::Data, SEAL_LEN),
            MAGIC_CHECKPOINT => (RecordKind::Checkpoint, CHECKPOINT_LEN),
            MAGIC_TRAILER => (RecordKind::Trailer, TRAILER_LEN),
            _ => return Err(bad(guess_kind(size), "unknown record")),
        };
        if size != len {
            // One flipped byte damages either the magic or the size. If the size
            // is another kind's, the magic was hit and the size tells the kind.
            let by_size = guess_kind(size);
            let sized = matches!(size, FILE_LEN | SEAL_LEN | CHECKPOINT_LEN | TRAILER_LEN);
            return Err(bad(if sized { by_size } else { kind }, "bad record size"));
        }
        let mut payload = [0u8; TRAILER_LEN];
        let payload = &mut payload[..len];
        if self.fill(payload)? != len {
            return Err(FrameError::Truncated { offset: start });
        }
        let record = match kind {
            RecordKind::File => FileHeader::decode(payload).map(Record::File),
            RecordKind::Data => Seal::decode(payload).map(Record::Data),
            RecordKind::Checkpoint => Checkpoint::decode(payload).map(Record::Checkpoint),
            RecordKind::Trailer => Trailer::decode(payload).map(Record::Trailer),
        };
        let record = record.ok_or(bad(kind, "corrupt record"))?;
        if let Record::Data(seal) = &record {
            let n = seal.compressed_len as usize;
            if n > MAX_FRAME_BYTES || seal.uncompressed_len as usize > MAX_FRAME_BYTES {
                return Err(bad(kind, "frame too large"));
            }
            self.data.clear();
            self.data.resize(n, 0);
            let mut data = std::mem::take(&mut self.data);
            let got = self.fill(&mut data);
            self.data = data;
            if got? != n {
                return Err(FrameError::Truncated { offset: start });
            }
        }
        Ok(Some(record))
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A record whose magic is damaged is recognised by its (fixed) size.
fn guess_kind(size: usize) -> RecordKind {
    match size {
        FILE_LEN => RecordKind::File,
        CHECKPOINT_LEN => RecordKind::Checkpoint,
        TRAILER_LEN => RecordKind::Trailer,
        _ => RecordKind::Data,
    }
}
