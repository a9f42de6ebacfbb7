//! `replay timeline`: many sessions merged into one chronological incident
//! view: who ran what, where, what the gateway decided, who approved.

use std::io::Write;
use std::path::{Path, PathBuf};

use gw_recording::{EventData, parse_marker, rfc3339};
use serde::Serialize;

use crate::files::{ProgressArg, recordings};
use crate::inspect::load;
use crate::search::{SessionFilter, for_each_parallel};

#[derive(clap::Args)]
pub struct TimelineArgs {
    /// Recordings or directories (searched recursively for `*.cast.zst`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub filter: SessionFilter,
    #[arg(long, value_enum, default_value = "human")]
    pub format: crate::Format,
    #[command(flatten)]
    pub progress: ProgressArg,
}

#[derive(Serialize)]
struct Entry {
    time: String,
    #[serde(skip)]
    time_us: u64,
    session: String,
    principal: String,
    resource: String,
    protocol: String,
    kind: &'static str,
    what: String,
}

pub fn run(args: &TimelineArgs) -> anyhow::Result<()> {
    let files = recordings(&args.paths)?;
    let results = for_each_parallel(&files, args.progress.progress, |p| entries(p, &args.filter));
    let mut all = Vec::new();
    for (path, r) in files.iter().zip(results) {
        match r {
            Ok(e) => all.extend(e),
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "replay: {}: {e:#}", path.display());
            }
        }
    }
    // Stable: equal times keep file order, then event order.
    all.sort_by_key(|e| e.time_us);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        crate::Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?,
        crate::Format::Markdown => {
            writeln!(out, "| time (UTC) | who | where | session | event |")?;
            writeln!(out, "|---|---|---|---|---|")?;
            for e in &all {
                let what = e.what.replace('|', "\\|");
                writeln!(
                    out,
                    "| {} | {} | {} ({}) | `{}` | {} |",
                    e.time, e.principal, e.resource, e.protocol, e.session, what
                )?;
            }
        }
        crate::Format::Human => {
            for e in &all {
                let who = format!("{}@{}", e.principal, e.resource);
                writeln!(out, "{}  {who:<20} {:<10} {}", e.time, e.session, e.what)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn entries(path: &Path, filter: &SessionFilter) -> anyhow::Result<Vec<Entry>> {
    let rec = load(path)?;
    if !filter.session(&rec.header) {
        return Ok(Vec::new());
    }
    let m = &rec.header.meta;
    let start = m.start_us;
    let mut out = Vec::new();
    let mut push = |t: u64, kind: &'static str, what: String| {
        let abs = start + t;
        if filter.time(abs) {
            out.push(Entry {
                time: rfc3339(abs),
                time_us: abs,
                session: m.session_id.clone(),
                principal: m.principal.clone(),
                resource: m.resource.clone(),
                protocol: m.protocol.clone(),
                kind,
                what,
            });
        }
    };
    push(
        0,
        "start",
        format!("session started ({} from {})", m.protocol, m.client_addr),
    );
    // Query protocols describe each statement with a verdict marker; terminal
    // sessions only have keystrokes, assembled here into command lines.
    let has_verdicts = rec
        .events
        .iter()
        .any(|e| matches!(&e.data, EventData::Marker(l) if l.starts_with("verdict:")));
    let mut line = String::new();
    for e in &rec.events {
        let t = e.time.as_micros() as u64;
        match &e.data {
            EventData::Input(s) if !has_verdicts => {
                for c in s.chars() {
                    match c {
                        '\r' | '\n' => {
                            if !line.trim().is_empty() {
                                push(t, "command", format!("typed: {}", line.trim()));
                            }
                            line.clear();
                        }
                        '\x7f' | '\x08' => {
                            line.pop();
                        }
                        c if c >= ' ' => line.push(c),
                        _ => {}
                    }
                }
            }
            EventData::Marker(label) => {
                let (kind, what) = describe_marker(label);
                push(t, kind, what);
            }
            EventData::Exit(code) => push(t, "exit", format!("exited with status {code}")),
            _ => {}
        }
    }
    let end = rec.duration().as_micros() as u64;
    if rec.trailer.is_some() {
        push(end, "end", "session closed".into());
    } else {
        push(
            end,
            "end",
            "recording ends (not closed: gateway crash or cut)".into(),
        );
    }
    Ok(out)
}

fn describe_marker(label: &str) -> (&'static str, String) {
    let Some(m) = parse_marker(label) else {
        return ("marker", format!("marker: {label}"));
    };
    let field = |k: &str| m.get(k).unwrap_or("?").to_string();
    match (m.kind.as_str(), m.action.as_str()) {
        ("verdict", action) => {
            let rule = m
                .get("rule")
                .map(|r| format!(" by rule {r}"))
                .unwrap_or_default();
            (
                "verdict",
                format!("{}{rule}: {}", action.to_uppercase(), field("stmt")),
            )
        }
        ("review", "requested") => (
            "review",
            format!("review {} requested: {}", field("id"), field("reason")),
        ),
        ("review", action) => (
            "review",
            format!("review {} {action} by {}", field("id"), field("by")),
        ),
        _ => ("marker", format!("marker: {label}")),
    }
}
