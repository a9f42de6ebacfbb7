//! `replay search`: find events across many recordings, fast.
//!
//! The speed comes from doing as little as possible per byte: sessions are
//! filtered on header metadata (frame 0 only) before anything else is
//! decompressed; frames outside the time window are skipped using the seal's
//! end time; and a frame is only split into lines when a prefilter on its raw
//! JSON text (the `--text` needle, or what every `--regex` match must contain)
//! says it may hold a match; see [`raw`] for why that never misses. Files are
//! searched in parallel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use gw_recording::{
    EventData, Header, Reader, line_interval_us, parse_line, parse_marker, parse_rfc3339, rfc3339,
};
use memchr::memmem;

use crate::files::{Progress, ProgressArg, recordings};
use raw::RawPrefilter;

mod raw;
use crate::inspect::{open, printable};

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Recordings or directories (searched recursively for `*.cast.zst`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub filter: SessionFilter,
    /// Events whose text contains this string.
    #[arg(long, conflicts_with = "regex")]
    pub text: Option<String>,
    /// Events whose text matches this regular expression.
    #[arg(long)]
    pub regex: Option<String>,
    /// Only verdict markers with this decision (allow, deny, review, mask).
    #[arg(long)]
    pub verdict: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: crate::Format,
    #[command(flatten)]
    pub progress: ProgressArg,
}

/// Session-level filters, shared with `timeline`.
#[derive(clap::Args, Default, Clone)]
pub struct SessionFilter {
    #[arg(long)]
    pub principal: Option<String>,
    #[arg(long)]
    pub resource: Option<String>,
    #[arg(long)]
    pub protocol: Option<String>,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<u64>,
    /// Only events before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<u64>,
}

fn parse_time(s: &str) -> Result<u64, String> {
    parse_rfc3339(s).ok_or_else(|| format!("not an RFC 3339 time: {s}"))
}

impl SessionFilter {
    pub fn session(&self, h: &Header) -> bool {
        let m = &h.meta;
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
        eq(&self.principal, &m.principal)
            && eq(&self.resource, &m.resource)
            && eq(&self.protocol, &m.protocol)
            && self.until.is_none_or(|u| m.start_us < u)
    }

    /// Whether absolute times `[from, to]` overlap the window.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.since.is_none_or(|s| to >= s) && self.until.is_none_or(|u| from < u)
    }

    pub fn time(&self, t: u64) -> bool {
        self.overlaps(t, t)
    }
}

enum Matcher {
    All,
    Text(String),
    Regex(regex::Regex),
}

pub struct Hit {
    pub time_us: u64,
    pub data: EventData,
}

struct Query {
    filter: SessionFilter,
    matcher: Matcher,
    /// A sound test on raw JSON for `matcher`; see [`raw`].
    prefilter: Option<RawPrefilter>,
    verdict: Option<String>,
}

/// How much of a frame must be decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameScan {
    /// Nothing in the frame can match.
    Skip,
    /// Only the lines that pass the prefilter.
    Prefiltered,
    /// Every line.
    All,
}

impl Query {
    fn event(&self, data: &EventData) -> bool {
        if let Some(v) = &self.verdict {
            let EventData::Marker(label) = data else {
                return false;
            };
            if !parse_marker(label).is_some_and(|m| m.kind == "verdict" && &m.action == v) {
                return false;
            }
        }
        match &self.matcher {
            Matcher::All => true,
            Matcher::Text(needle) => data.text().contains(needle.as_str()),
            Matcher::Regex(re) => re.is_match(&data.text()),
        }
    }

    /// Which lines of a frame's raw text have to be decoded.
    fn scan(&self, text: &[u8]) -> FrameScan {
        if let Some(v) = &self.verdict
            && memmem::find(text, format!("\"m\", \"verdict:{v}").as_bytes()).is_none()
        {
            return FrameScan::Skip;
        }
        let Some(p) = &self.prefilter else {
            return FrameScan::All;
        };
        if p.may_match(text) {
            FrameScan::Prefiltered
        } else if raw::escapes_canonical(text) {
            FrameScan::Skip
        } else {
            // Escapes the prefilter's reasoning does not cover: decode all.
            FrameScan::All
        }
    }

    fn line_may_match(&self, scan: FrameScan, line: &[u8]) -> bool {
        match (scan, &self.prefilter) {
            (FrameScan::Prefiltered, Some(p)) => p.may_match(line),
            _ => true,
        }
    }
}

/// Searches one recording; `None` if the session is filtered out.
fn search_file(path: &Path, q: &Query) -> anyhow::Result<Option<(Header, Vec<Hit>)>> {
    let mut r = Reader::open(open(path)?).with_context(|| format!("reading {}", path.display()))?;
    if !q.filter.session(r.header()) {
        return Ok(None);
    }
    let start = r.header().meta.start_us;
    let mut hits = Vec::new();
    while let Some(frame) = r
        .next_frame()
        .with_context(|| format!("reading {}", path.display()))?
    {
        if !q
            .filter
            .overlaps(start + frame.base_us, start + frame.seal.end_us)
        {
            continue;
        }
        let scan = q.scan(frame.text);
        if scan == FrameScan::Skip {
            continue;
        }
        let mut us = frame.base_us;
        for line in frame.text.split(|&b| b == b'\n') {
            let Some(interval) = line_interval_us(line) else {
                continue;
            };
            us += interval;
            if !q.line_may_match(scan, line) || !q.filter.time(start + us) {
                continue;
            }
            if let Some((_, data)) = parse_line(line)
                && q.event(&data)
            {
                hits.push(Hit {
                    time_us: start + us,
                    data,
                });
            }
        }
    }
    let header = r.header().clone();
    Ok(Some((header, hits)))
}

pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    let (matcher, prefilter) = match (&args.text, &args.regex) {
        (Some(t), _) => (Matcher::Text(t.clone()), RawPrefilter::for_text(t)),
        (None, Some(re)) => (
            Matcher::Regex(regex::Regex::new(re).context("invalid --regex")?),
            RawPrefilter::for_regex(re),
        ),
        (None, None) => (Matcher::All, None),
    };
    let q = Query {
        filter: args.filter.clone(),
        matcher,
        prefilter,
        verdict: args.verdict.clone(),
    };
    let files = recordings(&args.paths)?;
    let results = for_each_parallel(&files, args.progress.progress, |p| search_file(p, &q));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for (path, res) in files.iter().zip(results) {
        match res {
            Ok(Some((h, hits))) => {
                for hit in hits {
                    print_hit(&mut out, &h, &hit, args.format)?;
                }
            }
            Ok(None) => {}
            Err(e) => {
                failed = true;
                let _ = writeln!(std::io::stderr(), "replay: {}: {e:#}", path.display());
            }
        }
    }
    out.flush()?;
    if failed {
        anyhow::bail!("some recordings could not be read");
    }
    Ok(())
}

fn print_hit(
    out: &mut impl Write,
    h: &Header,
    hit: &Hit,
    format: crate::Format,
) -> std::io::Result<()> {
    let m = &h.meta;
    if format == crate::Format::Json {
        let v = serde_json::json!({
            "session": m.session_id, "principal": m.principal, "resource": m.resource,
            "protocol": m.protocol, "time": rfc3339(hit.time_us),
            "code": hit.data.code().to_string(), "data": hit.data.text(),
        });
        writeln!(out, "{v}")
    } else {
        writeln!(
            out,
            "{}  {}  {}@{}  {}  {}",
            m.session_id,
            rfc3339(hit.time_us),
            m.principal,
            m.resource,
            hit.data.code(),
            printable(&hit.data, 200)
        )
    }
}

/// Runs `f` over `files` on all cores; results come back in input order.
pub fn for_each_parallel<T: Send>(
    files: &[PathBuf],
    progress: bool,
    f: impl Fn(&Path) -> anyhow::Result<T> + Sync,
) -> Vec<anyhow::Result<T>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<anyhow::Result<T>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    let progress = Mutex::new(Progress::new(files.len(), progress));
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(files.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let r = f(path);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                    if let Ok(mut p) = progress.lock() {
                        p.tick();
                    }
                }
            });
        }
    });
    if let Ok(p) = progress.lock() {
        p.finish();
    }
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(anyhow::anyhow!("worker failed")))
        })
        .collect()
}
