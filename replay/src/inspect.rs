//! Single-recording commands: `cat`, `info`, `verify`, `export`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use gw_recording::{EventData, Recording, Verification, rfc3339, strip_ansi};
use serde_json::json;

use crate::files::{KeyArgs, Progress, recordings};
use crate::{ExportFormat, Format};

pub fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::with_capacity(256 << 10, f))
}

pub fn load(path: &Path) -> anyhow::Result<Recording> {
    Recording::read(open(path)?).with_context(|| format!("reading {}", path.display()))
}

pub fn cat(path: &Path) -> anyhow::Result<()> {
    let rec = load(path)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for e in &rec.events {
        if let EventData::Output(s) = &e.data {
            out.write_all(s.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn info(path: &Path, keys: &KeyArgs, format: Format) -> anyhow::Result<()> {
    let rec = load(path)?;
    let keys = keys.load()?;
    let verification = match &keys {
        Some(k) => gw_recording::verify(open(path)?, k),
        None => gw_recording::check_chain(open(path)?),
    };
    let m = &rec.header.meta;
    let c = rec.counts();
    let integrity = match (&verification, keys.is_some()) {
        (v, true) => v.to_string(),
        (v @ Verification::Verified { .. }, false) => {
            format!("{v} (chain only: no --key given, signatures not checked)")
        }
        (v, false) => format!("{v} (signatures not checked: no --key given)"),
    };
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let v = json!({
            "file": path.display().to_string(),
            "meta": m,
            "start": rfc3339(m.start_us),
            "duration_s": rec.duration().as_secs_f64(),
            "term": { "cols": rec.header.cols, "rows": rec.header.rows },
            "events": { "o": c[0], "i": c[1], "r": c[2], "m": c[3], "x": c[4] },
            "closed": rec.trailer.is_some(),
            "truncated": rec.truncated,
            "verified": verification.is_verified(),
            "signatures_checked": keys.is_some(),
            "integrity": integrity,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let rows = [
        ("file", path.display().to_string()),
        ("session", m.session_id.clone()),
        ("principal", m.principal.clone()),
        ("resource", m.resource.clone()),
        ("protocol", m.protocol.clone()),
        ("client", m.client_addr.clone()),
        ("gateway", m.gateway_id.clone()),
        ("policy revision", m.policy_revision.clone()),
        ("key id", m.key_id.clone()),
        ("start", rfc3339(m.start_us)),
        ("duration", format!("{:.3}s", rec.duration().as_secs_f64())),
        (
            "terminal",
            format!("{}x{}", rec.header.cols, rec.header.rows),
        ),
        (
            "events",
            format!("o={} i={} r={} m={} x={}", c[0], c[1], c[2], c[3], c[4]),
        ),
        (
            "closed",
            if rec.trailer.is_some() {
                "yes (signed trailer)".into()
            } else {
                "no".to_string()
            },
        ),
        ("integrity", integrity),
    ];
    for (k, v) in rows {
        writeln!(out, "{:<16} {v}", format!("{k}:"))?;
    }
    Ok(())
}

/// Returns whether every recording verified.
pub fn verify(
    paths: &[PathBuf],
    keys: &KeyArgs,
    require_trailer: bool,
    progress: bool,
) -> anyhow::Result<bool> {
    let keys = keys
        .load()?
        .context("verify needs at least one --key or --key-dir")?;
    let files = recordings(paths)?;
    let mut progress = Progress::new(files.len(), progress);
    let mut all_ok = true;
    let mut out = std::io::stdout().lock();
    for f in &files {
        let v = gw_recording::verify(open(f)?, &keys);
        let ok = match v {
            Verification::Verified { signed_trailer, .. } => signed_trailer || !require_trailer,
            Verification::Failed { .. } => false,
        };
        all_ok &= ok;
        writeln!(out, "{}: {v}", f.display())?;
        progress.tick();
    }
    progress.finish();
    Ok(all_ok)
}

pub fn export(path: &Path, format: ExportFormat, output: &Path) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = if output == Path::new("-") {
        Box::new(BufWriter::new(std::io::stdout().lock()))
    } else {
        let f = File::create(output).with_context(|| format!("creating {}", output.display()))?;
        Box::new(BufWriter::new(f))
    };
    match format {
        ExportFormat::V3 => gw_recording::export_v3(open(path)?, &mut out)?,
        ExportFormat::V2 => gw_recording::export_v2(&load(path)?, &mut out)?,
        ExportFormat::Txt => gw_recording::export_txt(&load(path)?, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// Data of an event as one printable line: escapes shown, long text cut.
pub fn printable(data: &EventData, max: usize) -> String {
    let text = match data {
        EventData::Output(s) | EventData::Input(s) => strip_ansi(s),
        other => other.text().into_owned(),
    };
    // Only control characters are escaped: the line must stay one line.
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > max {
        let mut cut: String = escaped.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        escaped
    }
}
