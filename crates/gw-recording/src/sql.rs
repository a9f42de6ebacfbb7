//! The structured layer for query protocols: statements become input events,
//! verdicts and reviews become markers with a small searchable label grammar,
//! and results become a bounded psql-style table, so a plain asciicast player
//! shows a readable transcript.
//!
//! Marker labels are `kind:action key=value ...`; a value is bare when it has
//! no whitespace, quote, backslash or `=`, otherwise a JSON string. Example:
//! `verdict:deny rule=no-drop stmt="DROP TABLE users"`.

use std::io::Write;
use std::time::Duration;

use crate::writer::{WriteError, Writer};

/// What the gateway decided about a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Executed.
    Allow,
    /// Refused.
    Deny,
    /// Held until a reviewer decides.
    Review,
    /// Executed with masked results.
    Mask,
}

impl Decision {
    /// The label word: `allow`, `deny`, `review`, `mask`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Review => "review",
            Decision::Mask => "mask",
        }
    }
}

/// A decision and the policy rule that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// The decision.
    pub decision: Decision,
    /// Name of the deciding rule, if any.
    pub rule: Option<&'a str>,
}

/// Statement text kept in a marker label; the full text is in the `i` event.
const MARKER_STMT_CHARS: usize = 200;

impl<W: Write> Writer<W> {
    /// Records one statement of a query protocol at session time `t`: the
    /// prompt and statement as output (what a player shows), the statement as
    /// input, the verdict as a marker, and at `t + duration` the rendered
    /// result (see [`render_table`]) or the refusal.
    pub fn record_statement(
        &mut self,
        t: Duration,
        statement: &str,
        verdict: &Verdict<'_>,
        result_rendering: &str,
        rows: Option<u64>,
        duration: Duration,
    ) -> Result<(), WriteError> {
        let echo = format!("=> {}\r\n", crlf(statement.trim_end()));
        self.output(t, echo.as_bytes())?;
        self.input(t, statement.as_bytes())?;
        let mut fields = Vec::new();
        if let Some(rule) = verdict.rule {
            fields.push(("rule", rule.to_string()));
        }
        if let Some(rows) = rows {
            fields.push(("rows", rows.to_string()));
        }
        fields.push(("ms", format!("{:.3}", duration.as_secs_f64() * 1000.0)));
        let stmt: String = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        fields.push(("stmt", stmt.chars().take(MARKER_STMT_CHARS).collect()));
        self.marker(t, &label("verdict", verdict.decision.as_str(), &fields))?;
        let mut out = crlf(result_rendering);
        if verdict.decision == Decision::Deny && out.is_empty() {
            let rule = verdict
                .rule
                .map(|r| format!(" (rule {r})"))
                .unwrap_or_default();
            out = format!("ERROR:  denied by gateway policy{rule}\r\n");
        }
        if !out.ends_with('\n') {
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        self.output(t + duration, out.as_bytes())
    }
}

/// Label for a review request: `review:requested id=.. reason=..`.
pub fn review_requested(id: &str, reason: &str) -> String {
    label(
        "review",
        "requested",
        &[("id", id.into()), ("reason", reason.into())],
    )
}

/// Label for an approval: `review:approved id=.. by=..`.
pub fn review_approved(id: &str, by: &str) -> String {
    label(
        "review",
        "approved",
        &[("id", id.into()), ("by", by.into())],
    )
}

/// Label for a rejection: `review:denied id=.. by=..`.
pub fn review_denied(id: &str, by: &str) -> String {
    label("review", "denied", &[("id", id.into()), ("by", by.into())])
}

/// Label for a review that ended without a decision:
/// `review:expired id=..` or `review:cancelled id=..`.
pub fn review_ended(id: &str, state: &str) -> String {
    label("review", state, &[("id", id.into())])
}

fn label(kind: &str, action: &str, fields: &[(&str, String)]) -> String {
    let mut s = format!("{kind}:{action}");
    for (k, v) in fields {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        if !v.is_empty()
            && !v
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\\' | '='))
        {
            s.push_str(v);
        } else {
            s.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
    }
    s
}

/// A parsed marker label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerLabel {
    /// `verdict`, `review`, ...
    pub kind: String,
    /// `deny`, `approved`, ...
    pub action: String,
    /// `key=value` pairs in order.
    pub fields: Vec<(String, String)>,
}

impl MarkerLabel {
    /// The value of field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a label written by this module; `None` for free-form markers.
pub fn parse_marker(label: &str) -> Option<MarkerLabel> {
    let (head, mut rest) = label.split_once(' ').unwrap_or((label, ""));
    let (kind, action) = head.split_once(':')?;
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        if after.starts_with('"') {
            let mut de = serde_json::Deserializer::from_str(after).into_iter::<String>();
            let value = de.next()?.ok()?;
            rest = &after[de.byte_offset()..];
            fields.push((key.to_string(), value));
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            fields.push((key.to_string(), after[..end].to_string()));
            rest = &after[end..];
        }
    }
    Some(MarkerLabel {
        kind: kind.into(),
        action: action.into(),
        fields,
    })
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Renders rows like psql's aligned format, bounded for recording: at most
/// `max_rows` rows and `max_width` characters per cell, with a note when rows
/// were left out and the usual `(N rows)` footer counting all rows.
pub fn render_table(
    columns: &[&str],
    rows: &[Vec<String>],
    max_rows: usize,
    max_width: usize,
) -> String {
    let max_width = max_width.max(2);
    let shown = &rows[..rows.len().min(max_rows)];
    let cell = |s: &str| -> String {
        let flat = s.replace('\n', "\\n").replace('\r', "\\r");
        if flat.chars().count() > max_width {
            let mut cut: String = flat.chars().take(max_width - 1).collect();
            cut.push('…');
            cut
        } else {
            flat
        }
    };
    let header: Vec<String> = columns.iter().map(|c| cell(c)).collect();
    let body: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            (0..columns.len())
                .map(|i| cell(r.get(i).map_or("", String::as_str)))
                .collect()
        })
        .collect();
    let len = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            body.iter()
                .map(|r| len(&r[i]))
                .chain([len(&header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            !body.is_empty()
                && body
                    .iter()
                    .all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok())
        })
        .collect();
    let mut out = String::new();
    let last = columns.len().saturating_sub(1);
    let line = |out: &mut String, cells: &[String], align: &dyn Fn(usize) -> char| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { " | " });
            let pad = widths[i] - len(c);
            match align(i) {
                'r' => s.push_str(&format!("{}{c}", " ".repeat(pad))),
                'c' => s.push_str(&format!(
                    "{}{c}{}",
                    " ".repeat(pad / 2),
                    " ".repeat(pad - pad / 2)
                )),
                _ if i == last => s.push_str(c),
                _ => s.push_str(&format!("{c}{}", " ".repeat(pad))),
            }
        }
        out.push_str(s.trim_end_matches(' '));
        out.push('\n');
    };
    line(&mut out, &header, &|_| 'c');
    let sep: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&sep.join("+"));
    out.push('\n');
    for r in &body {
        line(&mut out, r, &|i| if numeric[i] { 'r' } else { 'l' });
    }
    if rows.len() > shown.len() {
        out.push_str(&format!(
            "… {} more rows not recorded (limit {max_rows})\n",
            rows.len() - shown.len()
        ));
    }
    let n = rows.len();
    out.push_str(&format!("({n} {})\n", if n == 1 { "row" } else { "rows" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_psql() {
        let rows = vec![
            vec![
                "1".to_string(),
                "alice".to_string(),
                "alice@example.com".to_string(),
            ],
            vec![
                "22".to_string(),
                "bob".to_string(),
                "a very long address that will be cut".to_string(),
            ],
            vec!["3".to_string(), "carol".to_string(), String::new()],
        ];
        let got = render_table(&["id", "name", "email"], &rows, 2, 20);
        let want = " id | name  |        email
----+-------+----------------------
  1 | alice | alice@example.com
 22 | bob   | a very long address…
… 1 more rows not recorded (limit 2)
(3 rows)
";
        assert_eq!(got, want);
    }

    #[test]
    fn labels_round_trip() {
        let l = label(
            "verdict",
            "deny",
            &[
                ("rule", "no-drop".into()),
                ("stmt", "DROP TABLE \"x\"".into()),
            ],
        );
        assert_eq!(l, r#"verdict:deny rule=no-drop stmt="DROP TABLE \"x\"""#);
        let m = parse_marker(&l).unwrap();
        assert_eq!((m.kind.as_str(), m.action.as_str()), ("verdict", "deny"));
        assert_eq!(m.get("stmt"), Some("DROP TABLE \"x\""));
        assert_eq!(
            parse_marker(&review_approved("R1", "bob"))
                .unwrap()
                .get("by"),
            Some("bob")
        );
        assert_eq!(parse_marker("free text"), None);
    }
}
