//! Diagnostics: what is wrong with a policy, where, and how to say it to a
//! person (caret under the span), to a program (JSON) and to GitHub Actions
//! (`::error` workflow commands).

use crate::source::Source;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem in one file. `code` is a stable kebab-case identifier that
/// tools may match on; `message` is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// Index into the sources the policy was loaded from.
    pub file: usize,
    /// Byte offset and length of the offending text.
    pub offset: usize,
    pub len: usize,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        file: usize,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            file,
            offset: span.offset,
            len: span.len,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// A byte range in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl From<miette::SourceSpan> for Span {
    fn from(s: miette::SourceSpan) -> Span {
        Span {
            offset: s.offset(),
            len: s.len(),
        }
    }
}

/// A diagnostic resolved against its source: everything a renderer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<'a> {
    pub diagnostic: &'a Diagnostic,
    pub path: &'a str,
    pub line: usize,
    pub column: usize,
    pub source_line: &'a str,
}

pub fn locate<'a>(sources: &'a [Source], d: &'a Diagnostic) -> Located<'a> {
    match sources.get(d.file) {
        Some(src) => {
            let (line, column) = src.line_col(d.offset);
            Located {
                diagnostic: d,
                path: &src.path,
                line,
                column,
                source_line: src.line_text(line),
            }
        }
        None => Located {
            diagnostic: d,
            path: "<unknown>",
            line: 1,
            column: 1,
            source_line: "",
        },
    }
}

/// Renders like rustc: header, `--> file:line:col`, the line, and a caret.
pub fn render_human(sources: &[Source], diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let l = locate(sources, d);
        let gutter = l.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{}[{}]: {}", d.severity.name(), d.code, d.message);
        let _ = writeln!(out, "{pad}--> {}:{}:{}", l.path, l.line, l.column);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {}", l.line, l.source_line.replace('\t', " "));
        let width = caret_width(l.source_line, l.column, d.len);
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(l.column - 1),
            "^".repeat(width)
        );
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out.push('\n');
    }
    out
}

/// The caret covers the span, but never past the end of its line.
fn caret_width(line: &str, column: usize, len: usize) -> usize {
    let rest = line.chars().count().saturating_sub(column - 1);
    len.clamp(1, rest.max(1))
}

/// One JSON object per diagnostic, in an array.
pub fn render_json(sources: &[Source], diagnostics: &[Diagnostic]) -> String {
    let items: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let l = locate(sources, d);
            format!(
                "{{\"severity\":{},\"code\":{},\"message\":{},\"file\":{},\"line\":{},\"column\":{},\"offset\":{},\"length\":{},\"help\":{}}}",
                json_str(d.severity.name()),
                json_str(d.code),
                json_str(&d.message),
                json_str(l.path),
                l.line,
                l.column,
                d.offset,
                d.len,
                d.help.as_deref().map_or_else(|| "null".to_owned(), json_str),
            )
        })
        .collect();
    format!("[{}]\n", items.join(",\n "))
}

/// GitHub Actions workflow commands: `::error file=..,line=..,col=..::msg`.
pub fn render_github(sources: &[Source], diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let l = locate(sources, d);
        let mut msg = format!("[{}] {}", d.code, d.message);
        if let Some(help) = &d.help {
            msg.push_str(&format!(" (help: {help})"));
        }
        let _ = writeln!(
            out,
            "::{} file={},line={},col={},title={}::{}",
            d.severity.name(),
            gh_property(l.path),
            l.line,
            l.column,
            gh_property(d.code),
            gh_data(&msg)
        );
    }
    out
}

// Workflow commands need %, CR and LF escaped in data, and also ':' and ','
// in property values.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A JSON string literal. Hand-written so that this crate needs no serde.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
