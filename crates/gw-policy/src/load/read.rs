//! Small readers over KDL nodes that check shape as they read: which
//! arguments, properties and children a node may have. Each problem becomes
//! a diagnostic with the exact span; reading goes on, so one run reports
//! every error.

use crate::diagnostic::{Diagnostic, Span};
use crate::glob::Glob;
use crate::model::{Approval, Selector};
use kdl::{KdlEntry, KdlNode, KdlValue};
use std::time::Duration;

/// The diagnostics of one file, while it is read.
pub(crate) struct Cx<'d> {
    pub(crate) file: usize,
    pub(crate) diags: &'d mut Vec<Diagnostic>,
}

impl Cx<'_> {
    pub(crate) fn error(
        &mut self,
        code: &'static str,
        span: impl Into<Span>,
        message: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(code, self.file, span.into(), message));
    }

    pub(crate) fn error_help(
        &mut self,
        code: &'static str,
        span: impl Into<Span>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(code, self.file, span.into(), message).with_help(help));
    }
}

pub(crate) fn name(node: &KdlNode) -> &str {
    node.name().value()
}

pub(crate) fn span_of(node: &KdlNode) -> Span {
    node.name().span().into()
}

pub(crate) fn args(node: &KdlNode) -> impl Iterator<Item = &KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_none())
}

pub(crate) fn props(node: &KdlNode) -> impl Iterator<Item = (&str, &KdlEntry)> {
    node.entries()
        .iter()
        .filter_map(|e| e.name().map(|n| (n.value(), e)))
}

pub(crate) fn children(node: &KdlNode) -> &[KdlNode] {
    node.children().map_or(&[], |d| d.nodes())
}

/// Reports properties not in `allowed`, and any given twice.
pub(crate) fn check_props(cx: &mut Cx<'_>, node: &KdlNode, allowed: &[&str]) {
    let mut seen: Vec<&str> = Vec::new();
    for (key, entry) in props(node) {
        if !allowed.contains(&key) {
            let help = if allowed.is_empty() {
                format!("`{}` takes no properties", name(node))
            } else {
                format!("`{}` takes {}", name(node), list(allowed))
            };
            cx.error_help(
                "unknown-property",
                entry.span(),
                format!("unknown property `{key}`"),
                help,
            );
        } else if seen.contains(&key) {
            cx.error(
                "duplicate-property",
                entry.span(),
                format!("property `{key}` is given twice"),
            );
        }
        seen.push(key);
    }
}

pub(crate) fn check_no_args(cx: &mut Cx<'_>, node: &KdlNode) {
    for a in args(node) {
        cx.error(
            "unexpected-argument",
            a.span(),
            format!("`{}` takes no arguments", name(node)),
        );
    }
}

pub(crate) fn check_no_children(cx: &mut Cx<'_>, node: &KdlNode) {
    if let Some(doc) = node.children() {
        cx.error(
            "unexpected-children",
            doc.span(),
            format!("`{}` has no child nodes", name(node)),
        );
    }
}

/// Reports a child node that is not known here, suggesting the nearest name.
pub(crate) fn unknown_node(cx: &mut Cx<'_>, node: &KdlNode, known: &[&str], parent: &str) {
    let n = name(node);
    let mut help = format!("{parent} takes {}", list(known));
    if let Some(best) = nearest(n, known) {
        help = format!("did you mean `{best}`? {help}");
    }
    cx.error_help(
        "unknown-node",
        span_of(node),
        format!("unknown node `{n}` in {parent}"),
        help,
    );
}

fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

pub(crate) fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn as_str<'a>(cx: &mut Cx<'_>, entry: &'a KdlEntry, what: &str) -> Option<&'a str> {
    match entry.value() {
        KdlValue::String(s) => Some(s),
        other => {
            cx.error(
                "wrong-type",
                entry.span(),
                format!("{what} must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

fn type_name(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) | KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

/// The node's string arguments, each with its span.
pub(crate) fn string_args(cx: &mut Cx<'_>, node: &KdlNode) -> Vec<(String, Span)> {
    let what = format!("an argument of `{}`", name(node));
    let out: Vec<_> = args(node)
        .filter_map(|e| as_str(cx, e, &what).map(|s| (s.to_owned(), Span::from(e.span()))))
        .collect();
    if out.is_empty() && args(node).next().is_none() {
        cx.error(
            "missing-argument",
            span_of(node),
            format!("`{}` needs at least one value", name(node)),
        );
    }
    out
}

/// Exactly one string argument (and nothing else checked).
pub(crate) fn one_arg(cx: &mut Cx<'_>, node: &KdlNode) -> Option<(String, Span)> {
    let mut it = args(node);
    let Some(first) = it.next() else {
        cx.error(
            "missing-argument",
            span_of(node),
            format!("`{}` needs a value", name(node)),
        );
        return None;
    };
    for extra in it {
        cx.error(
            "unexpected-argument",
            extra.span(),
            format!("`{}` takes one value", name(node)),
        );
    }
    let what = format!("the value of `{}`", name(node));
    as_str(cx, first, &what).map(|s| (s.to_owned(), first.span().into()))
}

/// A leaf node `name "value"`: one string, no properties, no children.
pub(crate) fn leaf(cx: &mut Cx<'_>, node: &KdlNode) -> Option<(String, Span)> {
    check_props(cx, node, &[]);
    check_no_children(cx, node);
    one_arg(cx, node)
}

/// A leaf list `name "a" "b"`.
pub(crate) fn leaf_list(cx: &mut Cx<'_>, node: &KdlNode) -> Vec<(String, Span)> {
    check_props(cx, node, &[]);
    check_no_children(cx, node);
    string_args(cx, node)
}

/// A leaf of one value picked from `choices`.
pub(crate) fn leaf_choice(
    cx: &mut Cx<'_>,
    node: &KdlNode,
    choices: &[&str],
) -> Option<(String, Span)> {
    let (v, span) = leaf(cx, node)?;
    if choices.contains(&v.as_str()) {
        Some((v, span))
    } else {
        cx.error_help(
            "unknown-value",
            span,
            format!("unknown value `{v}` for `{}`", name(node)),
            format!("expected {}", list(choices)),
        );
        None
    }
}

/// A leaf `name #true`.
pub(crate) fn leaf_bool(cx: &mut Cx<'_>, node: &KdlNode) -> Option<bool> {
    check_props(cx, node, &[]);
    check_no_children(cx, node);
    let mut it = args(node);
    let Some(first) = it.next() else {
        cx.error(
            "missing-argument",
            span_of(node),
            format!("`{}` needs #true or #false", name(node)),
        );
        return None;
    };
    for extra in it {
        cx.error(
            "unexpected-argument",
            extra.span(),
            format!("`{}` takes one value", name(node)),
        );
    }
    match first.value() {
        KdlValue::Bool(b) => Some(*b),
        other => {
            cx.error(
                "wrong-type",
                first.span(),
                format!(
                    "`{}` must be #true or #false, not {}",
                    name(node),
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// A leaf positive integer.
pub(crate) fn leaf_u32(cx: &mut Cx<'_>, node: &KdlNode) -> Option<u32> {
    check_props(cx, node, &[]);
    check_no_children(cx, node);
    let first = args(node).next();
    match first.map(|e| (e, e.value())) {
        Some((e, KdlValue::Integer(i))) => match u32::try_from(*i) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                cx.error(
                    "out-of-range",
                    e.span(),
                    format!("`{}` must be a positive whole number", name(node)),
                );
                None
            }
        },
        Some((e, _)) => {
            cx.error(
                "wrong-type",
                e.span(),
                format!("`{}` must be a number", name(node)),
            );
            None
        }
        None => {
            cx.error(
                "missing-argument",
                span_of(node),
                format!("`{}` needs a number", name(node)),
            );
            None
        }
    }
}

pub(crate) fn prop<'a>(node: &'a KdlNode, key: &str) -> Option<&'a KdlEntry> {
    props(node).find(|(k, _)| *k == key).map(|(_, e)| e)
}

pub(crate) fn prop_str(cx: &mut Cx<'_>, node: &KdlNode, key: &str) -> Option<(String, Span)> {
    let e = prop(node, key)?;
    let what = format!("`{key}`");
    as_str(cx, e, &what).map(|s| (s.to_owned(), e.span().into()))
}

pub(crate) fn leaf_duration(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Duration> {
    let (v, span) = leaf(cx, node)?;
    duration(cx, &v, span)
}

pub(crate) fn duration(cx: &mut Cx<'_>, text: &str, span: Span) -> Option<Duration> {
    let parsed = parse_duration(text);
    if parsed.is_none() {
        cx.error_help(
            "invalid-duration",
            span,
            format!("`{text}` is not a duration"),
            "write a number and a unit: `30s`, `15m`, `4h`, `1d`, or combined like `1h30m`",
        );
    }
    parsed
}

/// `30s`, `15m`, `4h`, `1d`, `1h30m`. Zero and overflow are rejected.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    (digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// `resources "a" "b*" env="prod"`: names as arguments, labels as properties.
pub(crate) fn selector(cx: &mut Cx<'_>, node: &KdlNode) -> Selector {
    check_no_children(cx, node);
    let what = format!("a resource name in `{}`", name(node));
    let names = args(node)
        .filter_map(|e| as_str(cx, e, &what))
        .map(Glob::new)
        .collect();
    let mut labels = Vec::new();
    for (key, entry) in props(node) {
        if let Some(v) = as_str(cx, entry, "a label value") {
            labels.push((key.to_owned(), Glob::new(v)));
        }
    }
    if node.entries().is_empty() {
        cx.error_help(
            "missing-argument",
            span_of(node),
            format!("`{}` selects nothing", name(node)),
            "give resource names (`resources \"orders-db\"`) or labels (`resources env=\"prod\"`)",
        );
    }
    Selector { names, labels }
}

/// `approvers="dba" quorum=2 timeout="15m" window="1h"` on `node`.
pub(crate) fn approval(
    cx: &mut Cx<'_>,
    node: &KdlNode,
    default_timeout: Duration,
) -> Option<Approval> {
    let approvers = prop_str(cx, node, "approvers");
    let quorum = match prop(node, "quorum") {
        None => 1,
        Some(e) => match e
            .value()
            .as_integer()
            .and_then(|i| u32::try_from(i).ok())
            .filter(|q| *q > 0)
        {
            Some(q) => q,
            None => {
                cx.error(
                    "out-of-range",
                    e.span(),
                    "`quorum` must be a positive whole number",
                );
                1
            }
        },
    };
    let timeout = match prop_str(cx, node, "timeout") {
        Some((t, span)) => duration(cx, &t, span).unwrap_or(default_timeout),
        None => default_timeout,
    };
    let window = prop_str(cx, node, "window").and_then(|(t, span)| duration(cx, &t, span));
    match approvers {
        Some((approvers, _)) => Some(Approval {
            approvers,
            quorum,
            timeout,
            window,
        }),
        None => {
            cx.error_help(
                "missing-approvers",
                span_of(node),
                "an approval needs to say who approves",
                "add `approvers=\"GROUP\"`",
            );
            None
        }
    }
}
