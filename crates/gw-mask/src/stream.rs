//! [`StreamMasker`]: masking of byte streams that arrive in arbitrary
//! chunks (terminal output, COPY data, notices).
//!
//! Correctness across chunk boundaries comes from holding back a window:
//! every pattern has a maximum length, so a byte further than that from the
//! end of what has arrived can no longer be the start of a match, and is
//! emitted. The output for any chunking equals the output for the whole
//! text at once (a property the tests check at every split point).
//!
//! Terminal output interleaves text with CSI escape sequences
//! (`ESC [ ... m` colours, cursor moves), which can sit between the digit
//! groups of a card number. The masker strips CSI sequences into a side
//! list, scans the remaining text, and re-emits each sequence where it was;
//! one that fell inside a masked span is emitted right after the
//! replacement, so colours stay balanced. Other escapes (OSC titles,
//! two-byte `ESC x`) are scanned as ordinary bytes.
//!
//! Output is never cut inside an escape sequence or a UTF-8 character, so
//! each piece the caller records is valid on its own.

use crate::MaskError;
use crate::engine::{Hit, PrefixCache, ScanState, Until};
use crate::masker::Masker;
use std::collections::VecDeque;

#[cfg(test)]
mod tests;

/// Bytes of already-emitted text kept for look-behind (`\b`, and the
/// validators' "is this digit run part of a decimal" check).
const CONTEXT: usize = 8;

/// Longest CSI sequence recognized; longer ones are treated as text.
const ESC_MAX: usize = 64;

/// Escape bytes allowed between two text bytes; past this, escapes count as
/// text, which bounds what a stream of pure escapes can make us hold.
const ESC_RUN_MAX: usize = 4096;

/// A CSI sequence removed from the text, to be re-emitted before the text
/// byte at absolute offset `at`.
struct Esc {
    at: usize,
    len: u8,
    bytes: [u8; ESC_MAX],
}

/// Masks one byte stream. Feed it with [`push`](StreamMasker::push) and end
/// it with [`finish`](StreamMasker::finish).
///
/// After an error the stream is poisoned: every later call fails, so a
/// caller that ignores one error still cannot leak the rest.
pub struct StreamMasker {
    masker: Masker,
    /// Text not yet emitted, plus up to `CONTEXT` bytes before it.
    text: Vec<u8>,
    /// Absolute offset of `text[0]`.
    base: usize,
    /// Absolute offset of the first text byte not yet emitted.
    emitted: usize,
    state: ScanState,
    escs: VecDeque<Esc>,
    /// An escape sequence cut by the end of the last chunk.
    partial: Vec<u8>,
    /// Escape bytes since the last text byte (see `ESC_RUN_MAX`).
    esc_run: usize,
    hits: Vec<Hit>,
    /// Lazy DFA cache for flushes, made on first use.
    prefix_cache: Option<PrefixCache>,
    poisoned: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    More,
    Flush,
    End,
}

impl StreamMasker {
    pub(crate) fn new(masker: Masker) -> StreamMasker {
        StreamMasker {
            masker,
            text: Vec::new(),
            base: 0,
            emitted: 0,
            state: ScanState::new(),
            escs: VecDeque::new(),
            partial: Vec::new(),
            esc_run: 0,
            hits: Vec::new(),
            prefix_cache: None,
            poisoned: false,
        }
    }

    /// Takes the next chunk and appends to `out` every byte that can no
    /// longer be part of a match. On error nothing more is emitted.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), MaskError> {
        if self.poisoned {
            return Err(MaskError::Poisoned);
        }
        self.split_escapes(chunk);
        self.advance(Phase::More, out)
    }

    /// Emits what is held back as far as no secret could still be cut in
    /// half: text up to the first place where a match could start and
    /// continue into bytes not yet seen. Call it when the stream goes idle
    /// (an interactive shell waits at a prompt), so the user sees output
    /// without waiting for a window's worth of more text.
    ///
    /// A candidate that is complete when flushed is decided as it stands,
    /// so flushing can mask a little more than masking the whole text
    /// would (a card number later followed by `.5` is a decimal, but it was
    /// masked already). It never masks less. An open private key block or
    /// token stays open.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), MaskError> {
        if self.poisoned {
            return Err(MaskError::Poisoned);
        }
        self.advance(Phase::Flush, out)
    }

    /// Ends the stream: masks and emits everything held back. The masker
    /// can then be reused for a new stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), MaskError> {
        if self.poisoned {
            return Err(MaskError::Poisoned);
        }
        // An escape sequence cut off by the end is just text.
        let partial = std::mem::take(&mut self.partial);
        for b in partial {
            self.push_text(b);
        }
        self.advance(Phase::End, out)?;
        self.emit_escapes(usize::MAX, out);
        *self = StreamMasker::new(self.masker.clone());
        Ok(())
    }

    /// How many bytes are held back, waiting for more input.
    pub fn pending(&self) -> usize {
        self.base + self.text.len() - self.emitted + self.partial.len()
    }

    fn advance(&mut self, phase: Phase, out: &mut Vec<u8>) -> Result<(), MaskError> {
        let engine = match self.masker.engine() {
            Ok(e) => e,
            Err(e) => return Err(self.poison(e)),
        };
        let decided = match engine {
            None => self.base + self.text.len(),
            Some(engine) => {
                let until = match phase {
                    Phase::More => Until::More,
                    Phase::End => Until::End,
                    Phase::Flush => {
                        let cache = self
                            .prefix_cache
                            .get_or_insert_with(|| engine.prefix_cache());
                        let from = self.state.pos;
                        Until::Flush(engine.viable_from(cache, &self.text, self.base, from))
                    }
                };
                let hits = &mut self.hits;
                let scanned =
                    engine.scan(&self.text, self.base, &mut self.state, until, &mut |h| {
                        hits.push(h)
                    });
                match scanned {
                    Ok(d) => d,
                    Err(e) => return Err(self.poison(e)),
                }
            }
        };
        for hit in std::mem::take(&mut self.hits) {
            self.emit_text(hit.start, out);
            self.emit_escapes(hit.start + 1, out);
            let (s, e) = (hit.start - self.base, hit.end - self.base);
            self.masker.render(hit.rule, &self.text[s..e], out);
            self.emit_escapes(hit.end, out);
            self.emitted = hit.end;
        }
        let mut upto = decided.max(self.emitted);
        if phase != Phase::End {
            let min = self.emitted - self.base;
            upto = self.base + char_boundary(&self.text, upto - self.base, min);
        }
        self.emit_text(upto, out);
        self.compact();
        Ok(())
    }

    fn poison(&mut self, e: MaskError) -> MaskError {
        self.poisoned = true;
        self.text.clear();
        self.escs.clear();
        e
    }

    /// Emits text from `emitted` up to `to`, with the escapes before each
    /// byte; escapes right at `to` wait.
    fn emit_text(&mut self, to: usize, out: &mut Vec<u8>) {
        while self.emitted < to {
            let next_esc = self.escs.front().map_or(usize::MAX, |e| e.at);
            if next_esc <= self.emitted {
                self.emit_escapes(self.emitted + 1, out);
                continue;
            }
            let stop = to.min(next_esc);
            let (a, b) = (self.emitted - self.base, stop - self.base);
            out.extend_from_slice(&self.text[a..b]);
            self.emitted = stop;
        }
    }

    /// Emits the held escapes placed before offset `before`.
    fn emit_escapes(&mut self, before: usize, out: &mut Vec<u8>) {
        while let Some(e) = self.escs.front().filter(|e| e.at < before) {
            out.extend_from_slice(&e.bytes[..usize::from(e.len)]);
            self.escs.pop_front();
        }
    }

    /// Drops emitted text, keeping `CONTEXT` bytes for look-behind.
    fn compact(&mut self) {
        let keep_from = self.emitted.saturating_sub(CONTEXT).max(self.base);
        let drop = keep_from - self.base;
        if drop > 0 {
            self.text.drain(..drop);
            self.base = keep_from;
        }
    }

    fn split_escapes(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.partial.is_empty() {
                // Fast path: copy text up to the next ESC in one go.
                let n = memchr::memchr(0x1b, rest).unwrap_or(rest.len());
                if n > 0 {
                    self.text.extend_from_slice(&rest[..n]);
                    self.esc_run = 0;
                    rest = &rest[n..];
                    continue;
                }
            }
            self.feed(rest[0]);
            rest = &rest[1..];
        }
    }

    /// One byte of the escape recognizer: `ESC [`, parameter and
    /// intermediate bytes, then a final byte.
    fn feed(&mut self, b: u8) {
        if self.partial.is_empty() {
            if b == 0x1b && self.esc_run < ESC_RUN_MAX {
                self.partial.push(b);
            } else {
                self.push_text(b);
            }
            return;
        }
        let ok = match (self.partial.len(), b) {
            (1, b'[') => true,
            (1, _) => false,
            (n, 0x20..=0x3F) => n < ESC_MAX - 1,
            (_, 0x40..=0x7E) => {
                self.partial.push(b);
                self.commit_escape();
                return;
            }
            _ => false,
        };
        if ok {
            self.partial.push(b);
        } else {
            // Not a CSI sequence after all: its bytes are text, and `b`
            // starts afresh (it may be another ESC).
            let partial = std::mem::take(&mut self.partial);
            for p in partial {
                self.push_text(p);
            }
            self.feed(b);
        }
    }

    fn commit_escape(&mut self) {
        let mut bytes = [0; ESC_MAX];
        let len = self.partial.len();
        bytes[..len].copy_from_slice(&self.partial);
        self.escs.push_back(Esc {
            at: self.base + self.text.len(),
            len: len as u8,
            bytes,
        });
        self.esc_run += len;
        self.partial.clear();
    }

    fn push_text(&mut self, b: u8) {
        self.text.push(b);
        self.esc_run = 0;
    }
}

/// Moves a cut at `upto` back (not below `min`) so that it does not fall
/// inside a UTF-8 character whose bytes may still be arriving. Invalid
/// UTF-8 is cut anywhere: there is no character to keep whole.
fn char_boundary(text: &[u8], upto: usize, min: usize) -> usize {
    for back in 1..=3 {
        if upto < min + back {
            break;
        }
        let i = upto - back;
        let need = match text[i] {
            0x80..=0xBF => continue,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back { i } else { upto };
    }
    upto
}
