//! A bounds-checked cursor over one message body.
//!
//! Every read checks the remaining length and returns [`ProtocolViolation`]
//! on the side the bytes came from; nothing here can panic on peer input.

use bytes::Bytes;

use super::{Format, PgStr};
use crate::{ProtocolViolation, Side};

pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    side: Side,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, side: Side) -> Self {
        Reader { buf, pos: 0, side }
    }

    pub(crate) fn violation(&self, reason: &'static str) -> ProtocolViolation {
        ProtocolViolation::new(self.side, reason)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolViolation> {
        if self.remaining() < n {
            return Err(self.violation("field runs past end of message"));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolViolation> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, ProtocolViolation> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A count field: the server reads these as unsigned 16-bit.
    pub(crate) fn count(&mut self) -> Result<usize, ProtocolViolation> {
        Ok(self.i16()? as u16 as usize)
    }

    /// A count whose items need at least `min_item` bytes each; checked before
    /// anything is allocated for them.
    pub(crate) fn count_of(&mut self, min_item: usize) -> Result<usize, ProtocolViolation> {
        let n = self.count()?;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(self.violation("count exceeds message body"));
        }
        Ok(n)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ProtocolViolation> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolViolation> {
        Ok(self.i32()? as u32)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, ProtocolViolation> {
        if self.remaining() < n {
            return Err(self.violation("field runs past end of message"));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// A NUL-terminated string; the NUL must lie within the message.
    pub(crate) fn cstr(&mut self) -> Result<PgStr, ProtocolViolation> {
        let rest = &self.buf[self.pos..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(self.violation("string not NUL-terminated"));
        };
        let s = self.buf.slice(self.pos..self.pos + nul);
        self.pos += nul + 1;
        Ok(PgStr(s))
    }

    /// An `i32` length followed by that many bytes; `-1` is NULL.
    pub(crate) fn nullable(&mut self) -> Result<Option<Bytes>, ProtocolViolation> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(self.violation("negative value length")),
            n => self.bytes(n as usize).map(Some),
        }
    }

    pub(crate) fn formats(&mut self) -> Result<Vec<Format>, ProtocolViolation> {
        let n = self.count_of(2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Format::from_code(self.i16()?, self.side)?);
        }
        Ok(v)
    }

    pub(crate) fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    /// The message must be fully consumed: trailing bytes mean a framing disagreement.
    pub(crate) fn finish(&self) -> Result<(), ProtocolViolation> {
        if self.remaining() != 0 {
            return Err(self.violation("trailing bytes after message"));
        }
        Ok(())
    }
}
