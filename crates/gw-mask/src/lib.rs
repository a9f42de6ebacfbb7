//! Masking of secrets and PII in what flows back to the client, before any
//! byte reaches a screen or a recording.
//!
//! - [`Masker::for_session`] compiles the policy's masks that apply to one
//!   resource and principal: built-in [`Detector`]s, custom patterns and
//!   column rules, all detectors and patterns in one multi-pattern regex.
//! - [`Masker::mask_value`] masks one result cell: a matching column rule
//!   replaces the whole value, otherwise the detectors scan it.
//! - [`StreamMasker`] (from [`Masker::stream`]) masks byte streams that
//!   arrive in chunks, with the same result as masking the whole text.
//! - [`Masker::take_report`] says what was masked, by label and count, so
//!   the data path can record `masked 3 values (credit-card)` without the
//!   values.
//!
//! # Replacements
//!
//! - `full`: `[REDACTED:credit-card]`, the label being the detector name,
//!   or the pattern or mask name for custom patterns and column rules.
//!   Greppable in recordings, stable, and obviously not data.
//! - `partial`: `************1111`, one star per character and the last
//!   four kept; values under eight characters become all stars.
//! - `hash`: `[REDACTED:email#3fa9c0e1b2]`, the first 10 hex digits of
//!   BLAKE3 keyed with the gateway's key ([`Masker::with_hash_key`]), over
//!   a normalized value (digits and letters only for cards, SSNs, phones and
//!   IBANs; lower case for emails), so equal values stay joinable but cannot
//!   be brute-forced offline without the key. Without a key it renders as
//!   `full`.
//!
//! Private keys are always `full`. When several masks enable one detector,
//! the strictest style wins (full, then hash, then partial).
//!
//! # Failure contract
//!
//! Masking never panics on input. When it cannot vouch for its output it
//! returns a [`MaskError`] instead of passing bytes through, and the caller
//! must fail closed: drop the value (and say so), or end the stream's
//! session. Errors are a value over the limit, a private key block that
//! does not end within [`BLOCK_CAP`] bytes, patterns that did not compile,
//! and any use of a stream after one of those.
//!
//! # Streams
//!
//! A [`StreamMasker`] holds back at most [`Masker::window`] bytes (about
//! 1 KiB with the built-in detectors; the longest possible match plus a
//! little look-ahead), plus open private key blocks and tokens. Its output
//! for any chunking equals [`Masker::mask_value`] on the whole text. For
//! interactive streams, call [`StreamMasker::flush`] when the stream goes
//! idle: it emits everything that can no longer start a secret, so a
//! prompt shows at once; flushing can only mask more than whole-text
//! masking, never less.
//!
//! # Limits
//!
//! - Detection is pattern matching: it catches secrets in the shapes listed
//!   under [`Detector`], not secrets in general.
//! - Values split by anything other than chunk boundaries and CSI escape
//!   sequences are not reassembled: a card number across two table
//!   columns, redrawn by cursor addressing, or interrupted by a two-byte
//!   escape or backspaces.
//! - Custom patterns with unbounded repetition (`\w+`) are capped at 256
//!   extra repeats, so a longer match is masked only up to the cap. A
//!   Unicode word boundary (`\b` in a custom pattern) makes the regex
//!   engine fall back to a slower path on non-ASCII input.
//! - The `fields` rules of a mask (JSON paths in HTTP and Kubernetes
//!   bodies) are not implemented here; binary values are the data path's
//!   to block ([`Masker::blocks_binary`]).
//! - Compiled patterns are not cached across sessions; compiling all
//!   detectors takes about a millisecond.
#![forbid(unsafe_code)]

mod detect;
mod engine;
mod masker;
mod stream;

pub use detect::Detector;
pub use engine::{BLOCK_CAP, TAIL_CAP};
pub use masker::{ColumnRef, DEFAULT_VALUE_LIMIT, MaskReport, Masker};
pub use stream::StreamMasker;

/// Why masking could not vouch for its output. The caller fails closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A value is larger than the masker scans.
    #[error("value of {len} bytes is over the {limit}-byte masking limit")]
    ValueTooLarge { len: usize, limit: usize },
    /// A `BEGIN ... PRIVATE KEY` line was not followed by its `END` line
    /// in time; the block was suppressed up to here.
    #[error("private key block not closed within {limit} bytes")]
    KeyBlockTooLong { limit: usize },
    /// The session's patterns did not compile, so nothing can be masked.
    #[error("masking unavailable: {0}")]
    Unavailable(String),
    /// The stream failed earlier and stays closed.
    #[error("stream masking already failed")]
    Poisoned,
}

/// Masks arbitrary bytes as a value and as a randomly chunked stream, and
/// checks that chunking does not change the result. For fuzzing: it must
/// never panic except to report that invariant broken.
pub fn fuzz_mask(data: &[u8]) {
    let masker = fuzz_masker();
    let whole = mask_whole(masker, data);
    let seed = data.iter().fold(0x9E37_79B9_7F4A_7C15_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let chunked = mask_chunked(masker, data, seed | 1, 64);
    assert_eq!(whole, chunked, "chunking changed the masked stream");
    if let (Ok(v), Ok(w)) = (masker.mask_value(None, data), &whole) {
        assert_eq!(&v[..], &w[..], "value and stream masking disagree");
    }
    let _ = masker.mask_value(Some(ColumnRef::new(None, "ssn")), data);
    let _ = masker.take_report();
}

/// Every detector (hash style for cards, partial for phones) and a custom
/// pattern, as the fuzzer and the tests' random chunkings use.
#[doc(hidden)]
pub fn fuzz_masker() -> &'static Masker {
    use gw_policy::model::{Mask, MaskStyle, Pattern};
    static MASKER: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    MASKER.get_or_init(|| {
        let mask = |name: &str, detectors: &[&str], style| Mask {
            name: name.to_owned(),
            resources: Default::default(),
            except: Default::default(),
            detectors: detectors.iter().map(|d| (*d).to_owned()).collect(),
            patterns: Vec::new(),
            columns: vec![gw_policy::glob::Glob::new("ssn")],
            fields: Vec::new(),
            style,
            block_binary: true,
            origin: Default::default(),
        };
        let others = gw_policy::model::DETECTORS
            .into_iter()
            .filter(|d| !matches!(*d, "credit-card" | "phone"))
            .collect::<Vec<_>>();
        let mut full = mask("secrets", &others, MaskStyle::Full);
        // A custom pattern: an internal ticket secret format.
        if let Ok(regex) = regex::Regex::new(r"TKT-[0-9]{4}-[a-z]+") {
            full.patterns.push(Pattern {
                name: "ticket".to_owned(),
                regex,
            });
        }
        let cards = mask("cards", &["credit-card"], MaskStyle::Hash);
        let phones = mask("phones", &["phone"], MaskStyle::Partial);
        Masker::from_masks(&[&full, &cards, &phones]).with_hash_key([7; 32])
    })
}

/// Masks `data` as one stream chunk.
#[doc(hidden)]
pub fn mask_whole(masker: &Masker, data: &[u8]) -> Result<Vec<u8>, MaskError> {
    let mut s = masker.stream();
    let mut out = Vec::new();
    s.push(data, &mut out)?;
    s.finish(&mut out)?;
    Ok(out)
}

/// Masks `data` cut into chunks of 0..`max` bytes chosen by an xorshift
/// generator seeded with `seed` (non-zero).
#[doc(hidden)]
pub fn mask_chunked(
    masker: &Masker,
    data: &[u8],
    mut seed: u64,
    max: usize,
) -> Result<Vec<u8>, MaskError> {
    let mut s = masker.stream();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed as usize % max.max(1)).min(rest.len());
        s.push(&rest[..n], &mut out)?;
        rest = &rest[n..];
    }
    s.finish(&mut out)?;
    Ok(out)
}
