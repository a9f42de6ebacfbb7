//! asciicast v3 header and events: the plain-text layer of a recording.
//!
//! The text is exactly what `zstd -dc` prints, so it must stay a valid asciicast
//! v3 file that asciinema 3.x accepts. Gateway metadata lives under an extra
//! `gateway` header key; asciinema ignores keys it does not know.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::rfc3339;

/// Who did what, where: the gateway's description of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Unique session id.
    pub session_id: String,
    /// Authenticated principal (user or service account).
    pub principal: String,
    /// Target resource name as declared in policy.
    pub resource: String,
    /// Protocol: `ssh`, `postgres`, `mysql`, `kubernetes`, ...
    pub protocol: String,
    /// Policy revision in force when the session started.
    #[serde(default)]
    pub policy_revision: String,
    /// Client address as seen by the gateway.
    #[serde(default)]
    pub client_addr: String,
    /// Which gateway instance recorded the session.
    #[serde(default)]
    pub gateway_id: String,
    /// Key id of the signing key (16 hex digits).
    #[serde(default)]
    pub key_id: String,
    /// Session start, microseconds since the Unix epoch.
    pub start_us: u64,
}

/// The asciicast header plus gateway metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Initial terminal width.
    pub cols: u16,
    /// Initial terminal height.
    pub rows: u16,
    /// Terminal type, e.g. `xterm-256color`.
    pub term_type: Option<String>,
    /// Command or statement source, if known.
    pub command: Option<String>,
    /// Gateway metadata.
    pub meta: SessionMeta,
}

#[derive(Serialize, Deserialize)]
struct WireTerm {
    cols: u16,
    rows: u16,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    term_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireHeader {
    version: u8,
    term: WireTerm,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    command: Option<String>,
    gateway: WireGateway,
}

#[derive(Serialize, Deserialize)]
struct WireGateway {
    #[serde(flatten)]
    meta: SessionMeta,
    /// Redundant with `start_us`, for people reading the plain text.
    #[serde(default)]
    start: String,
}

impl Header {
    /// A header for a terminal of the given size.
    pub fn new(cols: u16, rows: u16, meta: SessionMeta) -> Self {
        Header {
            cols,
            rows,
            term_type: None,
            command: None,
            meta,
        }
    }

    /// The asciicast v3 header line, without newline.
    pub fn to_line(&self) -> String {
        let m = &self.meta;
        let wire = WireHeader {
            version: 3,
            term: WireTerm {
                cols: self.cols,
                rows: self.rows,
                term_type: self.term_type.clone(),
            },
            timestamp: m.start_us / 1_000_000,
            title: Some(format!(
                "{}@{} ({}) {}",
                m.principal, m.resource, m.protocol, m.session_id
            )),
            command: self.command.clone(),
            gateway: WireGateway {
                meta: m.clone(),
                start: rfc3339(m.start_us),
            },
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses a header line written by [`Header::to_line`].
    pub fn parse(line: &[u8]) -> Option<Self> {
        let wire: WireHeader = serde_json::from_slice(line).ok()?;
        if wire.version != 3 {
            return None;
        }
        Some(Header {
            cols: wire.term.cols,
            rows: wire.term.rows,
            term_type: wire.term.term_type,
            command: wire.command,
            meta: wire.gateway.meta,
        })
    }
}

/// One asciicast event with its time since session start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the start of the session.
    pub time: Duration,
    /// What happened.
    pub data: EventData,
}

/// The event payload, by asciicast code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// `o`: terminal output or a rendered query result.
    Output(String),
    /// `i`: keyboard input or a statement.
    Input(String),
    /// `r`: terminal resize.
    Resize {
        /// New width.
        cols: u16,
        /// New height.
        rows: u16,
    },
    /// `m`: a marker; the gateway uses labels like `verdict:deny rule=...`.
    Marker(String),
    /// `x`: exit status of the session's process.
    Exit(i32),
    /// Any other code, kept for forward compatibility.
    Other(char, String),
}

impl EventData {
    /// The asciicast code.
    pub fn code(&self) -> char {
        match self {
            EventData::Output(_) => 'o',
            EventData::Input(_) => 'i',
            EventData::Resize { .. } => 'r',
            EventData::Marker(_) => 'm',
            EventData::Exit(_) => 'x',
            EventData::Other(c, _) => *c,
        }
    }

    /// The data string as it appears in the file.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            EventData::Output(s) | EventData::Input(s) | EventData::Marker(s) => s.into(),
            EventData::Other(_, s) => s.into(),
            EventData::Resize { cols, rows } => format!("{cols}x{rows}").into(),
            EventData::Exit(c) => c.to_string().into(),
        }
    }

    /// Index into [`crate::EventCounts`], `None` for unknown codes.
    pub(crate) fn count_index(code: u8) -> Option<usize> {
        b"oirmx".iter().position(|&c| c == code)
    }
}

/// Appends `[interval, "code", data]\n` in asciinema's own layout.
pub(crate) fn write_line(out: &mut Vec<u8>, interval_us: u64, code: u8, data: &str) {
    write_interval(out, interval_us);
    out.extend_from_slice(b", \"");
    out.push(code);
    out.extend_from_slice(b"\", ");
    write_json_str(out, data);
    out.extend_from_slice(b"]\n");
}

fn write_interval(out: &mut Vec<u8>, us: u64) {
    out.push(b'[');
    write_u64(out, us / 1_000_000);
    out.push(b'.');
    let frac = us % 1_000_000;
    let mut div = 100_000;
    while div > 0 {
        out.push(b'0' + ((frac / div) % 10) as u8);
        div /= 10;
    }
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// JSON string escaping; only `"`, `\` and control characters need it.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 1);
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        i += clean_prefix(&bytes[i..]);
        if i == bytes.len() {
            break;
        }
        out.extend_from_slice(&bytes[start..i]);
        // A run of one escaped byte (a stream of NULs, say) is written as
        // doubling copies rather than byte by byte: terminals rarely send
        // such runs, binary exec output often does.
        let b = bytes[i];
        let run = run_len(&bytes[i..], b);
        let mut one = [0u8; 6];
        repeat_into(out, escape(b, &mut one), run);
        i += run;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Bytes looked at together: a fixed-size loop without an early exit,
/// which the compiler turns into vector code.
const SCAN: usize = 32;

/// How many leading bytes of `b` need no escape.
fn clean_prefix(b: &[u8]) -> usize {
    let mut n = 0;
    for chunk in b.chunks_exact(SCAN) {
        if chunk.iter().fold(false, |any, &c| any | needs_escape(c)) {
            break;
        }
        n += SCAN;
    }
    n + b[n..]
        .iter()
        .position(|&c| needs_escape(c))
        .unwrap_or(b.len() - n)
}

/// How many leading bytes of `b` equal `x`.
fn run_len(b: &[u8], x: u8) -> usize {
    let mut n = 0;
    for chunk in b.chunks_exact(SCAN) {
        if !chunk.iter().fold(true, |all, &c| all & (c == x)) {
            break;
        }
        n += SCAN;
    }
    n + b[n..].iter().position(|&c| c != x).unwrap_or(b.len() - n)
}

/// Appends `n` copies of `piece`, doubling what is already written.
fn repeat_into(out: &mut Vec<u8>, piece: &[u8], n: usize) {
    let total = piece.len() * n;
    if total == 0 {
        return;
    }
    out.reserve(total);
    let begin = out.len();
    out.extend_from_slice(piece);
    while out.len() - begin < total {
        let have = out.len() - begin;
        out.extend_from_within(begin..begin + have.min(total - have));
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The JSON escape of `b` (one that [`needs_escape`]).
fn escape(b: u8, buf: &mut [u8; 6]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        _ => {
            *buf = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ];
            buf
        }
    }
}

/// Parses the interval at the start of an event line without a JSON parser:
/// search has to know every event's time but parses only matching lines.
pub fn line_interval_us(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"[")?;
    let end = rest.iter().position(|&b| b == b',')?;
    parse_decimal_us(rest[..end].trim_ascii())
}

fn parse_decimal_us(s: &[u8]) -> Option<u64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut secs: u64 = 0;
    for &d in int {
        secs = secs.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let mut us: u64 = 0;
    for i in 0..6 {
        us = us * 10 + frac.get(i).map_or(0, |d| u64::from(d - b'0'));
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

/// Parses one event line into (interval in µs, event data).
pub fn parse_line(line: &[u8]) -> Option<(u64, EventData)> {
    let interval = line_interval_us(line)?;
    let (_, code, data): (serde::de::IgnoredAny, String, String) =
        serde_json::from_slice(line).ok()?;
    let mut chars = code.chars();
    let c = chars.next()?;
    let data = match (c, chars.next()) {
        ('o', None) => EventData::Output(data),
        ('i', None) => EventData::Input(data),
        ('m', None) => EventData::Marker(data),
        ('r', None) => {
            let (c, r) = data.split_once('x')?;
            EventData::Resize {
                cols: c.parse().ok()?,
                rows: r.parse().ok()?,
            }
        }
        ('x', None) => EventData::Exit(data.parse().ok()?),
        (c, _) => EventData::Other(c, data),
    };
    Some((interval, data))
}

#[cfg(test)]
mod escape_tests {
    /// The escaping, one byte at a time, as the format specifies it.
    fn reference(s: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s.as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                b => out.push(b),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn runs_of_escaped_bytes_encode_exactly_like_single_ones() {
        let mut cases = vec![
            String::new(),
            "plain text".to_owned(),
            "\0".repeat(1000),
            format!("a{}b{}c", "\0".repeat(33), "\"".repeat(64)),
            "\r\n\t\\\u{1b}[31mred\u{1b}[0m é ☃".to_owned(),
            // Around the 32-byte scan blocks.
            format!(
                "{}\n{}y{}",
                "x".repeat(95),
                "\0".repeat(65),
                "\u{7}".repeat(31)
            ),
            format!("{}\"{}", "é".repeat(40), "\t".repeat(32)),
        ];
        let mut state = 7u64;
        for _ in 0..200 {
            let s: String = (0..(state % 200))
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    char::from((state >> 59) as u8 + if state & 1 == 0 { 0 } else { 0x5c })
                })
                .collect();
            cases.push(s);
        }
        for s in cases {
            let mut out = Vec::new();
            super::write_json_str(&mut out, &s);
            assert_eq!(out, reference(&s), "{s:?}");
        }
    }
}
