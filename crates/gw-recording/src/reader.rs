//! Reading recordings: header, then events frame by frame, tolerating a
//! truncated tail (a crashed gateway) but reporting damage elsewhere.
//!
//! The reader follows the framing and decompresses; it does not check the chain
//! or signatures (that is [`crate::verify`]), so it also serves `cat` and
//! `search` on recordings whose authenticity is not in question.

use std::io::Read;
use std::time::Duration;

use crate::event::{Event, EventData, Header, parse_line};
use crate::frame::{FileHeader, FrameError, FrameReader, Record, RecordKind, Seal, Trailer};

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input does not start with a recording file header.
    #[error("not a gateway recording")]
    NotARecording,
    /// The recording was written by a newer format version.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    /// A frame could not be decoded.
    #[error("frame {frame}: {what}")]
    Malformed {
        /// The frame (sequence number) that is damaged.
        frame: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// Reading failed.
    #[error("read failed")]
    Io(#[from] std::io::Error),
}

/// One decompressed data frame.
#[derive(Debug)]
pub struct FrameText<'a> {
    /// The frame's seal.
    pub seal: &'a Seal,
    /// Session time before the frame's first event (the previous frame's end), µs.
    pub base_us: u64,
    /// The asciicast lines of the frame.
    pub text: &'a [u8],
}

/// Streams the frames of one recording.
pub struct Reader<R> {
    frames: FrameReader<R>,
    decompressor: zstd::bulk::Decompressor<'static>,
    file: FileHeader,
    header: Header,
    seal: Seal,
    text: Vec<u8>,
    base_us: u64,
    trailer: Option<Trailer>,
    truncated: bool,
    next_seq: u64,
}

impl<R: Read> Reader<R> {
    /// Reads the file header and frame 0 (the asciicast header line).
    pub fn open(inner: R) -> Result<Self, ReadError> {
        let mut frames = FrameReader::new(inner);
        let file = match frames.next_record() {
            Ok(Some(Record::File(f))) => f,
            Err(FrameError::Io(e)) => return Err(ReadError::Io(e)),
            _ => return Err(ReadError::NotARecording),
        };
        if file.version != crate::frame::FORMAT_VERSION {
            return Err(ReadError::UnsupportedVersion(file.version));
        }
        let mut r = Reader {
            frames,
            decompressor: zstd::bulk::Decompressor::new()?,
            file,
            header: Header::new(0, 0, Default::default()),
            seal: Seal {
                seq: 0,
                compressed_len: 0,
                uncompressed_len: 0,
                events: 0,
                end_us: 0,
                chain: [0; 32],
            },
            text: Vec::new(),
            base_us: 0,
            trailer: None,
            truncated: false,
            next_seq: 0,
        };
        let header_frame = r.next_data()?.ok_or(ReadError::Malformed {
            frame: 0,
            what: "missing header frame",
        })?;
        let line = header_frame
            .text
            .strip_suffix(b"\n")
            .unwrap_or(header_frame.text);
        r.header = Header::parse(line).ok_or(ReadError::Malformed {
            frame: 0,
            what: "bad asciicast header",
        })?;
        Ok(r)
    }

    /// The asciicast header and gateway metadata.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The binary file header.
    pub fn file_header(&self) -> &FileHeader {
        &self.file
    }

    /// The signed trailer, once the reader has reached it.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Whether the input ended inside a record (the recording was cut short).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The next data frame, decompressed; `None` at the end (clean or truncated).
    pub fn next_frame(&mut self) -> Result<Option<FrameText<'_>>, ReadError> {
        self.next_data()
    }

    /// Appends the events of the next data frame to `out`; `false` at the end.
    pub fn next_events(&mut self, out: &mut Vec<Event>) -> Result<bool, ReadError> {
        let Some(frame) = self.next_data()? else {
            return Ok(false);
        };
        let seq = frame.seal.seq;
        let mut us = frame.base_us;
        for line in frame.text.split(|&b| b == b'\n') {
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let (interval, data) = parse_line(line).ok_or(ReadError::Malformed {
                frame: seq,
                what: "bad event line",
            })?;
            us = us.saturating_add(interval);
            out.push(Event {
                time: Duration::from_micros(us),
                data,
            });
        }
        Ok(true)
    }

    fn next_data(&mut self) -> Result<Option<FrameText<'_>>, ReadError> {
        loop {
            let next = self.next_seq;
            let record = match self.frames.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(FrameError::Truncated { .. }) => {
                    self.truncated = true;
                    return Ok(None);
                }
                Err(FrameError::Io(e)) => return Err(ReadError::Io(e)),
                Err(FrameError::Malformed { kind, what, .. }) => {
                    let frame = if kind == RecordKind::Data {
                        next
                    } else {
                        self.seal.seq
                    };
                    return Err(ReadError::Malformed { frame, what });
                }
            };
            match record {
                Record::Data(seal) => {
                    self.base_us = if seal.seq == 0 { 0 } else { self.seal.end_us };
                    decompress(
                        &mut self.decompressor,
                        &self.frames.data,
                        seal.uncompressed_len,
                        &mut self.text,
                    )
                    .map_err(|what| ReadError::Malformed {
                        frame: seal.seq,
                        what,
                    })?;
                    self.next_seq = seal.seq.saturating_add(1);
                    self.seal = seal;
                    return Ok(Some(FrameText {
                        seal: &self.seal,
                        base_us: self.base_us,
                        text: &self.text,
                    }));
                }
                Record::Trailer(t) => self.trailer = Some(t),
                Record::Checkpoint(_) => {}
                Record::File(_) => {
                    return Err(ReadError::Malformed {
                        frame: next,
                        what: "second file header",
                    });
                }
            }
        }
    }
}

/// Decompresses one frame into `out`, refusing anything but exactly `len` bytes.
pub(crate) fn decompress(
    d: &mut zstd::bulk::Decompressor<'static>,
    src: &[u8],
    len: u32,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    out.clear();
    // len is capped by the frame reader (MAX_FRAME_BYTES).
    out.reserve(len as usize);
    match d.decompress_to_buffer(src, out) {
        Ok(n) if n == len as usize => Ok(()),
        Ok(_) => Err("length mismatch"),
        Err(_) => Err("bad zstd frame"),
    }
}

/// A whole recording in memory.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Header and metadata.
    pub header: Header,
    /// All events, with times since start.
    pub events: Vec<Event>,
    /// The signed trailer, if the recording was closed normally.
    pub trailer: Option<Trailer>,
    /// Whether the input ended inside a frame.
    pub truncated: bool,
}

impl Recording {
    /// Reads a whole recording; a truncated tail is accepted (see `truncated`).
    pub fn read<R: Read>(inner: R) -> Result<Self, ReadError> {
        let mut r = Reader::open(inner)?;
        let mut events = Vec::new();
        while r.next_events(&mut events)? {}
        Ok(Recording {
            header: r.header.clone(),
            events,
            trailer: r.trailer.clone(),
            truncated: r.truncated,
        })
    }

    /// Session length: the trailer's end time, or the last event's.
    pub fn duration(&self) -> Duration {
        let last = self.events.last().map_or(Duration::ZERO, |e| e.time);
        self.trailer
            .as_ref()
            .map_or(last, |t| Duration::from_micros(t.end_us).max(last))
    }

    /// Event counts by code `o i r m x`.
    pub fn counts(&self) -> crate::frame::EventCounts {
        let mut counts = [0; 5];
        for e in &self.events {
            if let Some(i) = u8::try_from(e.data.code())
                .ok()
                .and_then(EventData::count_index)
            {
                counts[i] += 1;
            }
        }
        counts
    }
}
