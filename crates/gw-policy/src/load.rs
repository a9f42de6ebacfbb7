//! From KDL sources to a [`Policy`], reporting every problem at once.
//!
//! Loading is two passes: each file is read block by block (shape, values,
//! patterns), then the whole policy is checked across files (duplicate
//! names, references, rules that can never match). Any error means the
//! policy is not applied: [`load`] returns only diagnostics.

mod blocks;
mod read;

pub use blocks::{HTTP_METHODS, KUBE_VERBS, RISKS};
pub use read::parse_duration;

use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::model::*;
use crate::request::Command;
use crate::source::Source;
use read::Cx;

/// The largest policy file accepted: far beyond any real one, small enough
/// that a mistaken path (a log, a binary) fails fast.
pub const MAX_FILE_BYTES: usize = 4 << 20;

const TOP_LEVEL: [&str; 9] = [
    "defaults",
    "resource",
    "grant",
    "guard",
    "mask",
    "recording",
    "service-account",
    "break-glass",
    "test",
];

/// Loads a policy. `Err` holds every diagnostic when any is an error.
pub fn load(sources: &[Source]) -> Result<Policy, Vec<Diagnostic>> {
    let (policy, diagnostics) = check(sources);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Err(diagnostics)
    } else {
        Ok(policy)
    }
}

/// Reads as much of the policy as can be read, with every diagnostic. The
/// policy is only meaningful when there are no errors.
pub fn check(sources: &[Source]) -> (Policy, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut policy = Policy::default();
    let mut tests = Vec::new();
    let mut defaults_seen: Option<(usize, Span)> = None;
    let parsed = parse_all(sources);
    for (file, (src, parsed)) in sources.iter().zip(parsed).enumerate() {
        let mut cx = Cx {
            file,
            diags: &mut diags,
        };
        let Some(parsed) = parsed else {
            cx.error(
                "file-too-large",
                Span::default(),
                format!("policy files are at most {} MiB", MAX_FILE_BYTES >> 20),
            );
            continue;
        };
        let doc = match parsed {
            Ok(doc) => doc,
            Err(e) => {
                syntax_errors(&mut cx, &src.text, &e);
                continue;
            }
        };
        scan_secrets(&mut cx, &doc);
        for node in doc.nodes() {
            match read::name(node) {
                "defaults" => {
                    if let Some((f, _)) = defaults_seen {
                        let first = sources.get(f).map_or("", |s| s.path.as_str());
                        cx.error_help(
                            "duplicate-name",
                            read::span_of(node),
                            "`defaults` is given twice",
                            format!("the first is in {first}"),
                        );
                    }
                    defaults_seen = Some((file, read::span_of(node)));
                    blocks::defaults(&mut cx, node, &mut policy.settings);
                }
                "resource" => policy.resources.extend(blocks::resource(&mut cx, node)),
                "grant" => policy.grants.extend(blocks::grant(&mut cx, node)),
                "guard" => policy.guards.extend(blocks::guard(&mut cx, node)),
                "mask" => policy.masks.extend(blocks::mask(&mut cx, node)),
                "recording" => policy.recordings.push(blocks::recording(&mut cx, node)),
                "test" => tests.extend(blocks::test(&mut cx, node)),
                "service-account" => policy.accounts.extend(blocks::account(
                    &mut cx,
                    node,
                    crate::model::AccountKind::Service,
                )),
                "break-glass" => policy.accounts.extend(blocks::account(
                    &mut cx,
                    node,
                    crate::model::AccountKind::BreakGlass,
                )),
                _ => read::unknown_node(&mut cx, node, &TOP_LEVEL, "a policy file"),
            }
        }
    }
    policy.build_index();
    cross_check(&policy, sources, &mut diags);
    policy.tests = resolve_tests(&policy, tests, &mut diags);
    diags.sort_by_key(|d| (d.file, d.offset));
    (policy, diags)
}

/// Parses every file, spread over the machine's cores: parsing dominates
/// the cost of linting a large repository, and files are independent.
/// `None` marks a file over [`MAX_FILE_BYTES`].
fn parse_all(sources: &[Source]) -> Vec<Option<Result<kdl::KdlDocument, kdl::KdlError>>> {
    let parse =
        |s: &Source| (s.text.len() <= MAX_FILE_BYTES).then(|| kdl::KdlDocument::parse_v2(&s.text));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads == 1 || sources.len() < 16 {
        return sources.iter().map(parse).collect();
    }
    let chunk = sources.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        // A panic inside the KDL parser is a bug in that crate; re-raise it
        // rather than lose a file's diagnostics silently.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn syntax_errors(cx: &mut Cx<'_>, text: &str, e: &kdl::KdlError) {
    if e.diagnostics.is_empty() {
        cx.error("syntax", Span::default(), "this file is not valid KDL");
    }
    for d in &e.diagnostics {
        let message = d
            .message
            .clone()
            .unwrap_or_else(|| "invalid KDL".to_owned());
        // The parser sometimes spans everything from the start of the
        // enclosing node to the error; the error is where that span ends.
        let mut span = Span::from(d.span);
        let end = (span.offset + span.len).min(text.len());
        if text
            .get(span.offset..end)
            .is_some_and(|s| s.trim_end().contains('\n'))
        {
            let trimmed = text[..end].trim_end().len();
            span = Span {
                offset: trimmed.saturating_sub(1),
                len: 1,
            };
        }
        let mut diag = Diagnostic::error("syntax", cx.file, span, message);
        diag.help = d.help.clone();
        cx.diags.push(diag);
    }
}

/// Flags values that look like secrets anywhere in a file, not only in
/// `credential`: a pasted key in a description is a leak all the same.
fn scan_secrets(cx: &mut Cx<'_>, doc: &kdl::KdlDocument) {
    for node in doc.nodes() {
        for entry in node.entries() {
            if let kdl::KdlValue::String(s) = entry.value()
                && let Some(kind) = crate::secrets::looks_like_secret(s)
            {
                cx.error_help(
                    "literal-secret",
                    entry.span(),
                    format!("this looks like a literal secret ({kind})"),
                    "keep secrets out of policy files: reference them as `env:NAME` or `file:/path`, and rotate this one",
                );
            }
        }
        if let Some(children) = node.children() {
            scan_secrets(cx, children);
        }
    }
}

/// Checks that need the whole policy: names, references, reachability.
fn cross_check(p: &Policy, sources: &[Source], diags: &mut Vec<Diagnostic>) {
    let at = |o: &Origin| {
        let src = sources.get(o.file);
        let (line, col) = src.map_or((1, 1), |s| s.line_col(o.span.offset));
        format!("{}:{line}:{col}", src.map_or("", |s| s.path.as_str()))
    };
    let mut dup = |what: &str, items: Vec<(&str, &Origin)>| {
        for (i, (name, origin)) in items.iter().enumerate() {
            if let Some((_, first)) = items[..i].iter().find(|(n, _)| n == name) {
                diags.push(
                    Diagnostic::error(
                        "duplicate-name",
                        origin.file,
                        origin.span,
                        format!("{what} \"{name}\" is defined twice"),
                    )
                    .with_help(format!("the first is at {}", at(first))),
                );
            }
        }
    };
    dup(
        "account",
        p.accounts
            .iter()
            .map(|a| (a.name.as_str(), &a.origin))
            .collect(),
    );
    dup(
        "resource",
        p.resources
            .iter()
            .map(|r| (r.name.as_str(), &r.origin))
            .collect(),
    );
    dup(
        "grant",
        p.grants
            .iter()
            .map(|g| (g.name.as_str(), &g.origin))
            .collect(),
    );
    dup(
        "guard",
        p.guards
            .iter()
            .map(|g| (g.name.as_str(), &g.origin))
            .collect(),
    );
    dup(
        "mask",
        p.masks
            .iter()
            .map(|m| (m.name.as_str(), &m.origin))
            .collect(),
    );
    dup(
        "recording",
        p.recordings
            .iter()
            .map(|r| (r.name.as_str(), &r.origin))
            .collect(),
    );

    let mut error = |o: &Origin, code: &'static str, msg: String, help: String| {
        diags.push(Diagnostic::error(code, o.file, o.span, msg).with_help(help));
    };
    let selects = |sel: &Selection| p.resources.iter().filter(|r| sel.matches(r)).count();
    for g in &p.grants {
        for s in &g.resources.0 {
            for n in s.names.iter().filter(|n| !n.as_str().contains(['*', '?'])) {
                if p.resource(n.as_str()).is_none() {
                    error(
                        &g.origin,
                        "bad-reference",
                        format!(
                            "grant \"{}\" names resource \"{n}\", which does not exist",
                            g.name
                        ),
                        known_resources(p),
                    );
                }
            }
        }
        if !g.resources.0.is_empty() && selects(&g.resources) == 0 {
            error(
                &g.origin,
                "never-matches",
                format!("grant \"{}\" selects no resource", g.name),
                known_resources(p),
            );
        }
    }
    for g in &p.guards {
        check_guard(p, g, &mut error);
    }
    for m in &p.masks {
        if !m.resources.0.is_empty() && selects(&m.resources) == 0 {
            error(
                &m.origin,
                "never-matches",
                format!("mask \"{}\" selects no resource", m.name),
                known_resources(p),
            );
        }
    }
    for r in &p.recordings {
        if !r.resources.0.is_empty() && selects(&r.resources) == 0 {
            error(
                &r.origin,
                "never-matches",
                format!("recording \"{}\" selects no resource", r.name),
                known_resources(p),
            );
        }
    }
}

fn check_guard(
    p: &Policy,
    g: &crate::Guard,
    error: &mut impl FnMut(&Origin, &'static str, String, String),
) {
    let families = g.matchers.families();
    if families.len() > 1 {
        let names: Vec<_> = families.iter().map(|f| f.name()).collect();
        error(
            &g.origin,
            "never-matches",
            format!(
                "guard \"{}\" mixes {} matchers; no command is both",
                g.name,
                names.join(" and ")
            ),
            "split it into one guard per protocol".into(),
        );
        return;
    }
    let fits = |k: Kind| families.first().is_none_or(|f| k.commands() == Some(*f));
    if !g.protocols.is_empty() && !g.protocols.iter().any(|k| fits(*k)) {
        error(
            &g.origin,
            "never-matches",
            format!(
                "guard \"{}\" matches {} commands but only applies to {}",
                g.name,
                families[0].name(),
                kinds(&g.protocols)
            ),
            "fix `protocols` or the matchers".into(),
        );
        return;
    }
    let reachable = p
        .resources
        .iter()
        .filter(|r| {
            g.resources.matches(r)
                && (g.protocols.is_empty() || g.protocols.contains(&r.kind))
                && fits(r.kind)
        })
        .count();
    if reachable == 0
        && !(g.resources.0.is_empty() && g.protocols.is_empty() && p.resources.is_empty())
    {
        error(
            &g.origin,
            "never-matches",
            format!("guard \"{}\" applies to no resource", g.name),
            known_resources(p),
        );
    }
    if g.matchers.has_where.is_some()
        && !g.matchers.statements.is_empty()
        && !g
            .matchers
            .statements
            .iter()
            .any(|k| matches!(k, gw_sql::Kind::Delete | gw_sql::Kind::Update))
    {
        error(
            &g.origin,
            "never-matches",
            format!(
                "guard \"{}\" tests `where`, which only DELETE and UPDATE have",
                g.name
            ),
            "add \"delete\" or \"update\" to `statements`, or drop `where`".into(),
        );
    }
}

fn kinds(ks: &[Kind]) -> String {
    ks.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

fn known_resources(p: &Policy) -> String {
    let mut names: Vec<_> = p.resources.iter().map(|r| r.name.as_str()).collect();
    names.truncate(8);
    if names.is_empty() {
        "the policy defines no resources".into()
    } else {
        format!("resources: {}", names.join(", "))
    }
}

fn resolve_tests(
    p: &Policy,
    raw: Vec<blocks::RawTest>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<TestCase> {
    let mut out: Vec<TestCase> = Vec::new();
    for mut t in raw {
        let file = t.case.origin.file;
        if out.iter().any(|o| o.name == t.case.name) {
            diags.push(Diagnostic::error(
                "duplicate-name",
                file,
                t.case.origin.span,
                format!("test \"{}\" is defined twice", t.case.name),
            ));
        }
        let Some(resource) = p.resource(&t.case.resource) else {
            if !t.case.resource.is_empty() {
                diags.push(
                    Diagnostic::error(
                        "bad-reference",
                        file,
                        t.resource_span,
                        format!("resource \"{}\" does not exist", t.case.resource),
                    )
                    .with_help(known_resources(p)),
                );
            }
            continue;
        };
        if let Some(rule) = &t.case.expect_rule {
            let known = p.grants.iter().any(|g| &g.name == rule)
                || p.guards.iter().any(|g| &g.name == rule)
                || crate::DEFAULT_RULES.contains(&rule.as_str());
            if !known {
                diags.push(Diagnostic::error(
                    "bad-reference",
                    file,
                    t.rule_span,
                    format!("no grant or guard is named \"{rule}\""),
                ));
            }
        }
        let family = resource.kind.commands();
        let (command, wanted) = match (t.sql.take(), t.kube.take(), t.http.take(), t.shell.take()) {
            (Some(sql), ..) => (
                Some(Command::sql(resource.kind, &sql)),
                Some(CommandFamily::Sql),
            ),
            (_, Some(k), ..) => (
                Some(Command::Kubernetes(k)),
                Some(CommandFamily::Kubernetes),
            ),
            (_, _, Some((method, path)), _) => (
                Some(Command::Http { method, path }),
                Some(CommandFamily::Http),
            ),
            (_, _, _, Some(command)) => {
                (Some(Command::Shell { command }), Some(CommandFamily::Shell))
            }
            _ => (None, None),
        };
        if let Some(w) = wanted
            && family != Some(w)
        {
            diags.push(Diagnostic::error(
                "wrong-type",
                file,
                t.case.origin.span,
                format!(
                    "test \"{}\" sends a {} command to {} resource \"{}\"",
                    t.case.name,
                    w.name(),
                    resource.kind.name(),
                    resource.name
                ),
            ));
            continue;
        }
        t.case.command = command;
        out.push(t.case);
    }
    out
}
