//! Export to plain formats: asciicast v3 (exactly the decompressed text),
//! asciicast v2 (absolute times, for older players) and a text transcript.

use std::io::{Read, Write};

use serde_json::json;

use crate::event::EventData;
use crate::reader::{ReadError, Reader, Recording};

/// Copies the plain asciicast v3 text, frame by frame: the same bytes `zstd -dc` prints.
pub fn export_v3<R: Read, W: Write>(inner: R, out: &mut W) -> Result<(), ReadError> {
    let mut r = Reader::open(inner)?;
    out.write_all(r.header().to_line().as_bytes())?;
    out.write_all(b"\n")?;
    while let Some(frame) = r.next_frame()? {
        out.write_all(frame.text)?;
    }
    Ok(())
}

/// Writes asciicast v2. Exit events have no v2 code and are left out.
pub fn export_v2<W: Write>(rec: &Recording, out: &mut W) -> std::io::Result<()> {
    let h = &rec.header;
    let m = &h.meta;
    let mut env = serde_json::Map::new();
    if let Some(t) = &h.term_type {
        env.insert("TERM".into(), t.clone().into());
    }
    let header = json!({
        "version": 2,
        "width": h.cols,
        "height": h.rows,
        "timestamp": m.start_us / 1_000_000,
        "duration": rec.duration().as_secs_f64(),
        "title": format!("{}@{} ({}) {}", m.principal, m.resource, m.protocol, m.session_id),
        "env": env,
        "gateway": m,
    });
    writeln!(out, "{header}")?;
    for e in &rec.events {
        let code = e.data.code();
        if matches!(e.data, EventData::Exit(_)) {
            continue;
        }
        let t = e.time.as_micros();
        let line = json!([serde_json::Value::Null, code.to_string(), e.data.text()]).to_string();
        // The time is written by hand to keep asciinema's fixed 6-digit precision.
        let rest = line.strip_prefix("[null").unwrap_or(&line);
        writeln!(out, "[{}.{:06}{rest}", t / 1_000_000, t % 1_000_000)?;
    }
    Ok(())
}

/// Writes a readable transcript: output with terminal escapes removed,
/// markers as their own lines, and the exit status.
pub fn export_txt<W: Write>(rec: &Recording, out: &mut W) -> std::io::Result<()> {
    let mut text = String::new();
    for e in &rec.events {
        match &e.data {
            EventData::Output(s) => text.push_str(&strip_ansi(s)),
            EventData::Marker(m) => {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("--- {m} ---\n"));
            }
            EventData::Exit(c) => text.push_str(&format!("--- exit {c} ---\n")),
            _ => {}
        }
    }
    out.write_all(text.as_bytes())
}

/// Removes ANSI escape sequences and carriage returns; keeps text and newlines.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            '\r' | '\x07' | '\x08' | '\x7f' => {}
            c => out.push(c),
        }
    }
    out
}
