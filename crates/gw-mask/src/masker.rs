//! [`Masker`]: a policy's masks compiled for one session, and masking of
//! single result values.

use crate::MaskError;
use crate::detect::{BUILTINS, Detector, Extent};
use crate::engine::{Engine, Hit, PatternInfo, ScanState, Source, Until};
use crate::stream::StreamMasker;
use gw_policy::glob::Glob;
use gw_policy::model::{Mask, MaskStyle};
use gw_policy::{Policy, Principal, Resource};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(test)]
mod tests;

/// Values longer than this are refused rather than scanned: scanning is
/// linear, but one cell should not stall a session for seconds.
pub const DEFAULT_VALUE_LIMIT: usize = 16 * 1024 * 1024;

/// The masks that apply to one session, compiled once.
///
/// Cheap to clone: clones share the compiled patterns and the counters, so
/// a session's stream maskers and value masking report together.
#[derive(Clone)]
pub struct Masker {
    shared: Arc<Shared>,
    hash_key: Option<[u8; 32]>,
    value_limit: usize,
}

struct Shared {
    /// `Ok(None)`: no detectors or patterns apply. `Err`: the patterns did
    /// not compile, so every value fails (closed).
    engine: Result<Option<Engine>, String>,
    rules: Vec<Rule>,
    columns: Vec<ColumnRule>,
    /// How many masks each rule applied, since the last report.
    counts: Vec<AtomicU64>,
    block_binary: bool,
}

/// How one kind of match is replaced and reported.
struct Rule {
    label: String,
    style: MaskStyle,
    norm: Norm,
}

/// What a hash is computed over, so that `4111-1111-...` and
/// `4111 1111 ...` stay joinable.
#[derive(Clone, Copy)]
enum Norm {
    Raw,
    /// ASCII letters and digits only, upper-cased.
    Alnum,
    Lower,
}

struct ColumnRule {
    /// For `table.column` rules: the table glob, and its last segment for
    /// schema-insensitive matching.
    table: Option<(Glob, Glob)>,
    column: Glob,
    rule: usize,
}

/// A result column, as the data path knows it. `table` is `None` when the
/// protocol does not say (computed columns, or an unresolved table OID).
#[derive(Clone, Copy, Debug)]
pub struct ColumnRef<'a> {
    pub table: Option<&'a str>,
    pub column: &'a str,
}

impl<'a> ColumnRef<'a> {
    pub fn new(table: Option<&'a str>, column: &'a str) -> ColumnRef<'a> {
        ColumnRef { table, column }
    }
}

/// What was masked since the last report: labels (detector names, pattern
/// and mask names) with counts, never the values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaskReport {
    pub counts: Vec<(String, u64)>,
}

impl MaskReport {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for MaskReport {
    /// `masked 3 values (credit-card), 1 value (email)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("masked")?;
        for (i, (label, n)) in self.counts.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let noun = if *n == 1 { "value" } else { "values" };
            write!(f, "{sep}{n} {noun} ({label})")?;
        }
        if self.counts.is_empty() {
            f.write_str(" nothing")?;
        }
        Ok(())
    }
}

impl Masker {
    /// Compiles the masks of `policy` whose resources select `resource` and
    /// whose `except` does not name `principal`.
    ///
    /// Compilation happens here, once per session (a few milliseconds for
    /// all detectors), not per value; nothing is cached across sessions, so
    /// a policy reload can never leave a session with stale masks. If the
    /// patterns fail to compile, the masker fails every value and stream
    /// (closed) with [`MaskError::Unavailable`].
    pub fn for_session(policy: &Policy, resource: &Resource, principal: &Principal) -> Masker {
        let masks: Vec<&Mask> = policy
            .masks
            .iter()
            .filter(|m| m.resources.matches(resource) && !m.except.contains(principal))
            .collect();
        Masker::from_masks(&masks)
    }

    /// Compiles exactly these masks (no resource or principal filtering).
    pub fn from_masks(masks: &[&Mask]) -> Masker {
        let mut rules = Vec::new();
        let mut sources = Vec::new();
        // One rule per detector, with the strictest style any mask asks for.
        for d in Detector::ALL {
            let styles = masks
                .iter()
                .filter(|m| m.detectors.iter().any(|n| n == d.name()))
                .map(|m| m.style);
            let Some(style) = styles.max_by_key(|s| strictness(*s)) else {
                continue;
            };
            let rule = rules.len();
            rules.push(Rule {
                label: d.name().to_owned(),
                // A partial or hashed private key is meaningless; keys are
                // always replaced whole.
                style: if d == Detector::PrivateKey {
                    MaskStyle::Full
                } else {
                    style
                },
                norm: norm_for(d),
            });
            for b in BUILTINS.iter().filter(|b| b.detector == d) {
                let info = PatternInfo {
                    rule,
                    check: b.check,
                    extent: b.extent,
                };
                sources.push((Source::Builtin(b.regex), info));
            }
        }
        for m in masks {
            for p in &m.patterns {
                let label = if p.name.is_empty() { &m.name } else { &p.name };
                let info = PatternInfo {
                    rule: rules.len(),
                    check: crate::detect::Check::None,
                    extent: Extent::Match,
                };
                rules.push(Rule {
                    label: label.clone(),
                    style: m.style,
                    norm: Norm::Raw,
                });
                sources.push((Source::Custom(p.regex.as_str()), info));
            }
        }
        let mut columns = Vec::new();
        for m in masks.iter().filter(|m| !m.columns.is_empty()) {
            let rule = rules.len();
            rules.push(Rule {
                label: m.name.clone(),
                style: m.style,
                norm: Norm::Raw,
            });
            columns.extend(m.columns.iter().map(|g| column_rule(g, rule)));
        }
        // Binary values cannot be scanned, so they are blocked if any mask
        // that applies says so (the default).
        let block_binary = masks.iter().any(|m| m.block_binary);
        let engine = if sources.is_empty() {
            Ok(None)
        } else {
            Engine::new(&sources).map(Some)
        };
        Masker {
            shared: Arc::new(Shared {
                engine,
                counts: rules.iter().map(|_| AtomicU64::new(0)).collect(),
                rules,
                columns,
                block_binary,
            }),
            hash_key: None,
            value_limit: DEFAULT_VALUE_LIMIT,
        }
    }

    /// Sets the per-gateway key for `hash` style. Without a key, `hash`
    /// masks render as `full`: an unkeyed hash of a card number or SSN can
    /// be reversed by enumerating the (small) value space.
    pub fn with_hash_key(mut self, key: [u8; 32]) -> Masker {
        self.hash_key = Some(key);
        self
    }

    /// Sets the largest value [`Masker::mask_value`] scans.
    pub fn with_value_limit(mut self, limit: usize) -> Masker {
        self.value_limit = limit;
        self
    }

    /// True when no mask applies: the data path may skip masking entirely.
    pub fn is_noop(&self) -> bool {
        self.shared.rules.is_empty()
    }

    /// True when binary-format values must be blocked (they cannot be
    /// scanned). The data path asks for text format or drops the value.
    pub fn blocks_binary(&self) -> bool {
        self.shared.block_binary
    }

    /// The longest stretch of text a [`StreamMasker`] holds back (outside
    /// private key blocks and long tokens), in bytes.
    pub fn window(&self) -> usize {
        match &self.shared.engine {
            Ok(Some(e)) => e.window(),
            _ => 0,
        }
    }

    /// Masks one result value. If `column` matches a `columns` rule the
    /// whole value is replaced; otherwise the detectors and patterns scan
    /// it. Returns the input unchanged (borrowed) when nothing matched.
    ///
    /// A `table.column` rule also matches when the table is unknown and the
    /// column matches: the data path cannot always name the table, and an
    /// unmasked value is the worse mistake.
    pub fn mask_value<'v>(
        &self,
        column: Option<ColumnRef<'_>>,
        value: &'v [u8],
    ) -> Result<Cow<'v, [u8]>, MaskError> {
        let engine = self.engine()?;
        if value.len() > self.value_limit {
            return Err(MaskError::ValueTooLarge {
                len: value.len(),
                limit: self.value_limit,
            });
        }
        // An empty value has nothing to hide, and a marker would only add
        // noise (and reveal as much: that it was empty).
        if value.is_empty() {
            return Ok(Cow::Borrowed(value));
        }
        if let Some(rule) = column.and_then(|c| self.column_rule(c)) {
            let mut out = Vec::new();
            self.render(rule, value, &mut out);
            return Ok(Cow::Owned(out));
        }
        let Some(engine) = engine else {
            return Ok(Cow::Borrowed(value));
        };
        if memchr::memchr(0x1b, value).is_some() {
            // Escape sequences need the stream masker's bookkeeping.
            let mut s = self.stream();
            let mut out = Vec::with_capacity(value.len());
            s.push(value, &mut out)?;
            s.finish(&mut out)?;
            return Ok(Cow::Owned(out));
        }
        let mut hits = Vec::new();
        engine.scan(value, 0, &mut ScanState::new(), Until::End, &mut |h| {
            hits.push(h)
        })?;
        if hits.is_empty() {
            return Ok(Cow::Borrowed(value));
        }
        let mut out = Vec::with_capacity(value.len() + 16);
        let mut at = 0;
        for Hit { start, end, rule } in hits {
            out.extend_from_slice(&value[at..start]);
            self.render(rule, &value[start..end], &mut out);
            at = end;
        }
        out.extend_from_slice(&value[at..]);
        Ok(Cow::Owned(out))
    }

    /// A masker for one byte stream (terminal output, COPY data, notices).
    pub fn stream(&self) -> StreamMasker {
        StreamMasker::new(self.clone())
    }

    /// Returns what was masked since the last call, and resets the counts.
    pub fn take_report(&self) -> MaskReport {
        let counts = self
            .shared
            .rules
            .iter()
            .zip(&self.shared.counts)
            .filter_map(|(r, c)| {
                let n = c.swap(0, Ordering::Relaxed);
                (n > 0).then(|| (r.label.clone(), n))
            })
            .collect::<Vec<_>>();
        // Several rules can share a label (two patterns with one name).
        let mut merged: Vec<(String, u64)> = Vec::with_capacity(counts.len());
        for (label, n) in counts {
            match merged.iter_mut().find(|(l, _)| *l == label) {
                Some((_, m)) => *m += n,
                None => merged.push((label, n)),
            }
        }
        MaskReport { counts: merged }
    }

    pub(crate) fn engine(&self) -> Result<Option<&Engine>, MaskError> {
        match &self.shared.engine {
            Ok(e) => Ok(e.as_ref()),
            Err(why) => Err(MaskError::Unavailable(why.clone())),
        }
    }

    fn column_rule(&self, c: ColumnRef<'_>) -> Option<usize> {
        let columns = &self.shared.columns;
        if columns.is_empty() {
            return None;
        }
        let column = lower(c.column);
        let table = c.table.map(lower);
        let last = table.as_deref().map(last_segment);
        columns
            .iter()
            .find(|r| {
                r.column.matches(&column)
                    && match (&r.table, &table, last) {
                        (None, _, _) | (Some(_), None, _) => true,
                        (Some((full, tail)), Some(t), Some(l)) => {
                            full.matches(t) || tail.matches(l)
                        }
                        (Some(_), Some(_), None) => false,
                    }
            })
            .map(|r| r.rule)
    }

    /// Writes the replacement for `bytes` under `rule`, and counts it.
    pub(crate) fn render(&self, rule: usize, bytes: &[u8], out: &mut Vec<u8>) {
        let r = &self.shared.rules[rule];
        self.shared.counts[rule].fetch_add(1, Ordering::Relaxed);
        match (r.style, &self.hash_key) {
            (MaskStyle::Partial, _) => partial(bytes, out),
            (MaskStyle::Hash, Some(key)) => {
                let hash = blake3::keyed_hash(key, &normalize(r.norm, bytes));
                let hex = hash.to_hex();
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(r.label.as_bytes());
                out.push(b'#');
                out.extend_from_slice(&hex.as_bytes()[..10]);
                out.push(b']');
            }
            (MaskStyle::Full | MaskStyle::Hash, _) => {
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(r.label.as_bytes());
                out.push(b']');
            }
        }
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.shared.rules.iter().map(|r| r.label.as_str()).collect();
        f.debug_struct("Masker")
            .field("rules", &labels)
            .field("hash_key", &self.hash_key.map(|_| "***"))
            .finish()
    }
}

/// Full reveals nothing, hash reveals equality, partial reveals four
/// characters: when masks disagree, the one revealing least wins.
fn strictness(s: MaskStyle) -> u8 {
    match s {
        MaskStyle::Partial => 0,
        MaskStyle::Hash => 1,
        MaskStyle::Full => 2,
    }
}

fn norm_for(d: Detector) -> Norm {
    match d {
        Detector::CreditCard | Detector::UsSsn | Detector::Phone | Detector::Iban => Norm::Alnum,
        Detector::Email => Norm::Lower,
        _ => Norm::Raw,
    }
}

fn normalize(norm: Norm, bytes: &[u8]) -> Cow<'_, [u8]> {
    match norm {
        Norm::Raw => Cow::Borrowed(bytes),
        Norm::Alnum => bytes
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_uppercase)
            .collect(),
        Norm::Lower => Cow::Owned(bytes.to_ascii_lowercase()),
    }
}

/// `************1111`: one star per character, the last four kept. Values
/// under eight characters are all stars, since four would be most of them.
fn partial(bytes: &[u8], out: &mut Vec<u8>) {
    let is_char_start = |b: &u8| b & 0xC0 != 0x80;
    let chars = bytes.iter().filter(|b| is_char_start(b)).count();
    if chars < 8 {
        out.resize(out.len() + chars, b'*');
        return;
    }
    let mut seen = 0;
    let keep_from = bytes
        .iter()
        .rposition(|b| {
            seen += usize::from(is_char_start(b));
            seen == 4
        })
        .unwrap_or(0);
    out.resize(out.len() + chars - 4, b'*');
    out.extend_from_slice(&bytes[keep_from..]);
}

fn column_rule(glob: &Glob, rule: usize) -> ColumnRule {
    let text = glob.as_str();
    match text.rsplit_once('.') {
        Some((table, column)) => ColumnRule {
            table: Some((Glob::new(table), Glob::new(last_segment(table)))),
            column: Glob::new(column),
            rule,
        },
        None => ColumnRule {
            table: None,
            column: Glob::new(text),
            rule,
        },
    }
}

fn last_segment(s: &str) -> &str {
    s.rsplit('.').next().unwrap_or(s)
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}
