//! The compiled pattern set and the scanner both maskers share.
//!
//! All detectors and custom patterns go into one `regex_automata` meta regex
//! (`build_many_from_hir`), so a value or chunk is scanned once, not once per
//! pattern. The scanner is written for streams: given a buffer that may not
//! be the whole text, it reports the masks it is sure of and how far the
//! buffer is decided. Masking a whole value is the same call with
//! `at_end = true`, which is why streaming and whole-value masking agree.

use crate::MaskError;
use crate::detect::{self, Check, Extent};
pub(crate) use regex_automata::hybrid::dfa::Cache as PrefixCache;
use regex_automata::hybrid::dfa::DFA;
use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID};
use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};

/// A tail (token, JWT) is masked in pieces of at most this many bytes, so a
/// stream never holds more than this for one; a longer run is still masked
/// whole, as consecutive markers.
pub const TAIL_CAP: usize = 16 * 1024;

/// A private key block must end within this many bytes of its `BEGIN`
/// line; otherwise masking fails (closed) instead of holding the stream.
pub const BLOCK_CAP: usize = 64 * 1024;

/// Longest `-----END ... PRIVATE KEY-----` line the end regex can match.
const KEY_END_MAX: usize = 80;

/// Unbounded repetitions in custom patterns (`\w+`) are capped at this many
/// extra repeats, so every pattern has a maximum length the stream masker
/// can hold back.
const CUSTOM_REPEAT_CAP: u32 = 256;

/// Bytes a validator may look at after a candidate (see
/// `detect::validate`), on top of the longest match.
const LOOKAHEAD: usize = 4;

/// One pattern in the set, by `PatternID`.
#[derive(Clone, Copy)]
pub(crate) struct PatternInfo {
    /// Index of the rule (label and style) its matches are masked with.
    pub(crate) rule: usize,
    pub(crate) check: Check,
    pub(crate) extent: Extent,
}

/// What to compile: a built-in detector's regex or a policy pattern.
pub(crate) enum Source<'a> {
    Builtin(&'static str),
    Custom(&'a str),
}

pub(crate) struct Engine {
    re: Regex,
    /// The same patterns as an anchored lazy DFA, walked byte by byte to
    /// tell whether a position could still start a match (for flushes).
    prefix: DFA,
    key_end: Regex,
    infos: Vec<PatternInfo>,
    /// The longest possible match plus validator look-ahead: a candidate
    /// starting this far from the end of the buffer is final.
    window: usize,
}

/// A decided mask: bytes `start..end` (absolute stream offsets) are
/// replaced according to `rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) rule: usize,
}

/// How much of the buffer the scanner may decide.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    /// More text follows: candidates within a window of the end wait.
    More,
    /// More text may follow, but the caller wants output now: candidates
    /// before this absolute offset are decided as they stand (no match can
    /// start later than it and still reach back), open regions stay open.
    Flush(usize),
    /// The buffer ends the text.
    End,
}

/// Where the scanner is, carried between chunks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanState {
    /// Absolute offset of the first byte not yet searched.
    pub(crate) pos: usize,
    mode: Mode,
}

impl ScanState {
    pub(crate) fn new() -> ScanState {
        ScanState {
            pos: 0,
            mode: Mode::Normal,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Normal,
    /// Masking a token from `start` while bytes stay in its alphabet.
    Tail {
        rule: usize,
        start: usize,
        alphabet: fn(u8) -> bool,
    },
    /// Inside a private key block since `start`, looking for its end.
    Block {
        rule: usize,
        start: usize,
    },
}

enum Next {
    /// A validated candidate: mask `start..end` (relative) with pattern `pid`.
    Hit(usize, usize, usize),
    /// No hit is certain yet; bytes before this (relative) are plain.
    Plain(usize),
}

impl Engine {
    pub(crate) fn new(sources: &[(Source<'_>, PatternInfo)]) -> Result<Engine, String> {
        let hirs = sources
            .iter()
            .map(|(s, _)| parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let longest = hirs
            .iter()
            .map(|h| h.properties().maximum_len())
            .try_fold(0, |acc, m| m.map(|m| acc.max(m)))
            .ok_or("a pattern has no maximum length")?;
        let config = meta::Config::new().which_captures(WhichCaptures::Implicit);
        let re = meta::Builder::new()
            .configure(config)
            .build_many_from_hir(&hirs)
            .map_err(|e| e.to_string())?;
        let key_end = Regex::new(detect::KEY_END).map_err(|e| e.to_string())?;
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many_from_hir(&hirs)
            .map_err(|e| e.to_string())?;
        let prefix = DFA::builder()
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        let infos = sources.iter().map(|(_, i)| *i).collect();
        Ok(Engine {
            re,
            prefix,
            key_end,
            infos,
            window: longest + LOOKAHEAD,
        })
    }

    /// How many bytes a stream holds back at most (besides open blocks).
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Scans `hay` (whose first byte is at absolute offset `base`) from
    /// `st.pos`, reporting each certain mask to `sink` in order. Returns the
    /// absolute offset before which every byte is decided: either plain or
    /// inside a reported mask. With `at_end`, `hay` ends the text and
    /// everything is decided.
    ///
    /// `hay` must hold a few bytes of context before `st.pos` (validators
    /// look back two bytes) unless the text starts there.
    pub(crate) fn scan(
        &self,
        hay: &[u8],
        base: usize,
        st: &mut ScanState,
        until: Until,
        sink: &mut impl FnMut(Hit),
    ) -> Result<usize, MaskError> {
        let len = hay.len();
        let at_end = matches!(until, Until::End);
        let certain = match until {
            Until::End => len,
            Until::More => len.saturating_sub(self.window),
            Until::Flush(v) => v.saturating_sub(base).min(len),
        };
        loop {
            let pos = st.pos - base;
            match st.mode {
                Mode::Normal => match self.next(hay, pos, certain, at_end) {
                    Next::Plain(upto) => {
                        st.pos = base + upto;
                        return Ok(st.pos);
                    }
                    Next::Hit(s, e, pid) => {
                        let info = &self.infos[pid];
                        let (rule, start) = (info.rule, base + s);
                        st.pos = base + e;
                        match info.extent {
                            Extent::Match => sink(Hit {
                                start,
                                end: base + e,
                                rule,
                            }),
                            Extent::Tail(alphabet) => {
                                st.mode = Mode::Tail {
                                    rule,
                                    start,
                                    alphabet,
                                }
                            }
                            Extent::Block => st.mode = Mode::Block { rule, start },
                        }
                    }
                },
                Mode::Tail {
                    rule,
                    start,
                    alphabet,
                } => {
                    let limit = (start - base + TAIL_CAP).min(len);
                    let run = hay[pos..limit].iter().take_while(|&&b| alphabet(b)).count();
                    let end = pos + run;
                    if end == len && !at_end {
                        st.pos = base + end;
                        return Ok(start);
                    }
                    sink(Hit {
                        start,
                        end: base + end,
                        rule,
                    });
                    st.pos = base + end;
                    let capped = end - (start - base) == TAIL_CAP;
                    st.mode = if capped && end < len && alphabet(hay[end]) {
                        Mode::Tail {
                            rule,
                            start: base + end,
                            alphabet,
                        }
                    } else {
                        Mode::Normal
                    };
                }
                Mode::Block { rule, start } => {
                    let limit = (start - base + BLOCK_CAP).min(len);
                    let input = Input::new(hay).span(pos..limit);
                    let end = match self.key_end.find(input) {
                        Some(m) => m.end(),
                        None if limit < len => {
                            return Err(MaskError::KeyBlockTooLong { limit: BLOCK_CAP });
                        }
                        None if at_end => len,
                        None => {
                            st.pos = base + pos.max(len.saturating_sub(KEY_END_MAX));
                            return Ok(start);
                        }
                    };
                    sink(Hit {
                        start,
                        end: base + end,
                        rule,
                    });
                    st.pos = base + end;
                    st.mode = Mode::Normal;
                }
            }
        }
    }

    /// Finds the next validated candidate at or after `from`, or says how
    /// far the buffer is certainly plain.
    ///
    /// Without the whole text, only candidates starting before `certain`
    /// are decided: later ones could still grow or change with more bytes.
    fn next(&self, hay: &[u8], from: usize, certain: usize, at_end: bool) -> Next {
        let len = hay.len();
        let mut at = from;
        while at < len {
            let Some(m) = self.re.find(Input::new(hay).span(at..len)) else {
                break;
            };
            let s = m.start();
            if s >= certain && !at_end {
                return Next::Plain(from.max(s.min(certain)));
            }
            if let Some(hit) = self.accept(hay, s, m.end(), m.pattern()) {
                return hit;
            }
            // The first pattern to match here was rejected; a later one may
            // still match at the same start (a Luhn-invalid digit run can be
            // a phone number).
            for q in m.pattern().as_usize() + 1..self.infos.len() {
                let pid = PatternID::new_unchecked(q);
                let input = Input::new(hay)
                    .span(s..len)
                    .anchored(Anchored::Pattern(pid));
                if let Some(m) = self.re.find(input)
                    && let Some(hit) = self.accept(hay, s, m.end(), pid)
                {
                    return hit;
                }
            }
            at = s + 1;
        }
        Next::Plain(if at_end { len } else { from.max(certain) })
    }

    pub(crate) fn prefix_cache(&self) -> PrefixCache {
        self.prefix.create_cache()
    }

    /// The first absolute offset at or after `from` where a match could
    /// still start, given `hay` and whatever bytes come next: an anchored
    /// walk from there is alive at the end of `hay`. A walk that dies after
    /// a complete match does not count; the scanner finds that match.
    pub(crate) fn viable_from(
        &self,
        cache: &mut PrefixCache,
        hay: &[u8],
        base: usize,
        from: usize,
    ) -> usize {
        let start = from
            .saturating_sub(base)
            .max(hay.len().saturating_sub(self.window));
        (start..hay.len())
            .find(|&p| self.alive_at_end(cache, hay, p))
            .map_or(base + hay.len(), |p| base + p)
    }

    fn alive_at_end(&self, cache: &mut PrefixCache, hay: &[u8], p: usize) -> bool {
        let input = Input::new(hay).span(p..hay.len()).anchored(Anchored::Yes);
        // When the lazy DFA cannot answer (cache thrash, a Unicode word
        // boundary on non-ASCII input) assume the worst: hold the bytes.
        let Ok(mut sid) = self.prefix.start_state_forward(cache, &input) else {
            return true;
        };
        for &b in &hay[p..] {
            match self.prefix.next_state(cache, sid, b) {
                Ok(next) if next.is_dead() => return false,
                Ok(next) if next.is_quit() => return true,
                Ok(next) => sid = next,
                Err(_) => return true,
            }
        }
        !sid.is_dead()
    }

    fn accept(&self, hay: &[u8], s: usize, e: usize, pid: PatternID) -> Option<Next> {
        if s == e {
            // A custom pattern that can match empty in context (`\b`):
            // nothing to mask.
            return None;
        }
        let pid = pid.as_usize();
        let (vs, ve) = detect::validate(self.infos[pid].check, hay, s, e)?;
        Some(Next::Hit(vs, ve, pid))
    }
}

fn parse(source: &Source<'_>) -> Result<Hir, String> {
    match source {
        // Built-ins are ASCII: byte semantics keep `\b{start-half}` inside
        // the DFAs, which give up on Unicode word boundaries.
        Source::Builtin(re) => {
            syntax::parse_with(re, &syntax::Config::new().unicode(false).utf8(false))
                .map_err(|e| e.to_string())
        }
        Source::Custom(re) => {
            let hir = syntax::parse(re).map_err(|e| e.to_string())?;
            Ok(cap_repetitions(&hir))
        }
    }
}

/// Rewrites unbounded (or very wide) repetitions to at most
/// `CUSTOM_REPEAT_CAP` extra repeats.
fn cap_repetitions(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Repetition(rep) => {
            let cap = rep.min.saturating_add(CUSTOM_REPEAT_CAP);
            Hir::repetition(Repetition {
                min: rep.min,
                max: Some(rep.max.map_or(cap, |m| m.min(cap))),
                greedy: rep.greedy,
                sub: Box::new(cap_repetitions(&rep.sub)),
            })
        }
        HirKind::Capture(c) => Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(cap_repetitions(&c.sub)),
        }),
        HirKind::Concat(xs) => Hir::concat(xs.iter().map(cap_repetitions).collect()),
        HirKind::Alternation(xs) => Hir::alternation(xs.iter().map(cap_repetitions).collect()),
        _ => hir.clone(),
    }
}
