//! Prefilters that look at a frame's raw JSON text instead of decoding it.
//!
//! Decoding every event line costs far more than scanning the bytes, so search
//! first asks "can this frame (or line) contain a match at all?" on the raw text
//! and decodes only when the answer is yes. A prefilter may say yes too often,
//! but it must never say no to a frame that holds a match.
//!
//! **Why the raw text is enough.** The writer escapes a data string byte by byte
//! and only escapes `"`, `\` and control characters (below U+0020); every other
//! byte, including all of UTF-8 above ASCII, is copied unchanged. So a run of
//! decoded text that contains none of those characters appears verbatim, as one
//! contiguous run, in the raw line. A prefilter is therefore only built from
//! pieces that cannot contain an escaped character ([`raw_safe`]):
//!
//! - `--text`: the needle itself.
//! - `--regex`, when nothing the pattern can match is ever escaped and it has no
//!   assertions (`^`, `$`, `\b`, ...) whose truth depends on the surrounding
//!   characters: the regex itself, run on the raw bytes. Any decoded match is a
//!   raw substring, and the same regex matches that substring.
//! - `--regex` otherwise: the literals one of which every match must start (or
//!   end) with, from `regex_syntax`'s literal extractor, if all are raw-safe.
//!
//! Otherwise there is no prefilter and every line is decoded.
//!
//! **Files from other JSON writers.** JSON also allows `\/` and `\uXXXX` for
//! characters that need no escaping; a decoded `/` or `A` could then be missing
//! from the raw text. The gateway never writes those, but a frame that contains
//! one is decoded line by line rather than trusted to the prefilter
//! ([`escapes_canonical`]).

use memchr::memmem;
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Class, Hir, HirKind};

/// A test on raw JSON bytes that is true for every frame or line holding a match.
pub(super) enum RawPrefilter {
    /// The text needle or the single required literal.
    Literal(Box<memmem::Finder<'static>>),
    /// Several literals, or the whole regex; matched on raw bytes.
    Regex(regex::bytes::Regex),
}

impl RawPrefilter {
    /// For `--text`: the needle, if the raw text can be searched for it.
    pub(super) fn for_text(needle: &str) -> Option<RawPrefilter> {
        raw_safe(needle.as_bytes()).then(|| {
            RawPrefilter::Literal(Box::new(
                memmem::Finder::new(needle.as_bytes()).into_owned(),
            ))
        })
    }

    /// For `--regex`: the best sound prefilter for `pattern`, if there is one.
    pub(super) fn for_regex(pattern: &str) -> Option<RawPrefilter> {
        // The same syntax options as `regex::Regex::new`.
        let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
        if hir_raw_safe(&hir) {
            return regex::bytes::Regex::new(pattern)
                .ok()
                .map(RawPrefilter::Regex);
        }
        let literals = required_literals(&hir)?;
        if let [one] = literals.as_slice() {
            return Some(RawPrefilter::Literal(Box::new(
                memmem::Finder::new(one).into_owned(),
            )));
        }
        let alternation: Vec<String> = literals.iter().map(|l| byte_pattern(l)).collect();
        regex::bytes::Regex::new(&alternation.join("|"))
            .ok()
            .map(RawPrefilter::Regex)
    }

    /// Whether `raw` (a frame or one line) may hold a match.
    pub(super) fn may_match(&self, raw: &[u8]) -> bool {
        match self {
            RawPrefilter::Literal(f) => f.find(raw).is_some(),
            RawPrefilter::Regex(re) => re.is_match(raw),
        }
    }
}

/// Whether `bytes` contain nothing that JSON escapes: no `"`, `\` or control
/// character. Empty text is not safe: it would say nothing about the frame.
pub(super) fn raw_safe(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| !json_escaped(b))
}

fn json_escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether every match of `hir` is made only of raw-safe characters and the
/// pattern has no assertions, so it can be run unchanged on raw JSON.
fn hir_raw_safe(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty => true,
        HirKind::Literal(lit) => lit.0.iter().all(|&b| !json_escaped(b)),
        HirKind::Class(Class::Unicode(c)) => c
            .iter()
            .all(|r| !ranges_overlap_escaped(u32::from(r.start()), u32::from(r.end()))),
        HirKind::Class(Class::Bytes(c)) => c
            .iter()
            .all(|r| !ranges_overlap_escaped(u32::from(r.start()), u32::from(r.end()))),
        // `^`, `$` and word boundaries look at neighbours, which differ
        // between the decoded text (string start, `\n`) and the raw JSON.
        HirKind::Look(_) => false,
        HirKind::Repetition(r) => hir_raw_safe(&r.sub),
        HirKind::Capture(c) => hir_raw_safe(&c.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().all(hir_raw_safe),
    }
}

fn ranges_overlap_escaped(start: u32, end: u32) -> bool {
    let hit = |c: u8| (start..=end).contains(&u32::from(c));
    start < 0x20 || hit(b'"') || hit(b'\\')
}

/// Literals such that every match starts (or ends) with one of them, if all
/// are raw-safe. Prefers the longer shortest literal of prefixes and suffixes.
fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let usable = |kind| {
        let seq = Extractor::new().kind(kind).extract(hir);
        let lits = usable_literals(&seq)?;
        let shortest = lits.iter().map(Vec::len).min()?;
        Some((shortest, lits))
    };
    match (usable(ExtractKind::Prefix), usable(ExtractKind::Suffix)) {
        (Some(p), Some(s)) => Some(if s.0 > p.0 { s.1 } else { p.1 }),
        (p, s) => p.or(s).map(|(_, lits)| lits),
    }
}

/// The literals of a finite, non-empty sequence whose literals are all raw-safe.
/// An empty literal (or an infinite sequence) means "a match can start with
/// anything", which prefilters nothing.
fn usable_literals(seq: &Seq) -> Option<Vec<Vec<u8>>> {
    let lits = seq.literals()?;
    if lits.is_empty() || !lits.iter().all(|l| raw_safe(l.as_bytes())) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// A bytes-regex pattern matching exactly `lit` (which may end inside a UTF-8
/// character when the extractor truncated it).
fn byte_pattern(lit: &[u8]) -> String {
    let mut p = String::from("(?-u:");
    for b in lit {
        p.push_str(&format!("\\x{b:02x}"));
    }
    p.push(')');
    p
}

/// Whether every escape in `raw` decodes to a character the prefilters never
/// look for (`"`, `\` or a control character), as the gateway's writer produces.
/// `\/` and `\uXXXX` for U+0020 and above are valid JSON from other writers.
///
/// Only `\u` and `\/` are looked at: the other escapes JSON allows (`\"`,
/// `\\`, `\b`, `\f`, `\n`, `\r`, `\t`) all decode to such characters, and
/// visiting every backslash made `--text` searches about 40 % slower. An
/// escaped backslash followed by `u` or `/` is reported as non-canonical too,
/// which only costs a decoded frame.
pub(super) fn escapes_canonical(raw: &[u8]) -> bool {
    let control = |h: &[u8]| matches!(h, [b'0', b'0', b'0' | b'1', d] if d.is_ascii_hexdigit());
    memmem::find(raw, b"\\/").is_none()
        && memmem::find_iter(raw, b"\\u").all(|at| raw.get(at + 2..at + 6).is_some_and(control))
}

#[cfg(test)]
mod tests;
