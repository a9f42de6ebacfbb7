//! One reader per top-level block: `defaults`, `resource`, `grant`, `guard`,
//! `mask`, `recording` and `test`. Each returns its model value (or `None`
//! when the block is too broken to use) and reports problems as it goes.

use super::read::*;
use crate::diagnostic::Span;
use crate::glob::Glob;
use crate::model::*;
use crate::request::{KubeRequest, Principal};
use kdl::KdlNode;
use std::time::Duration;

const DEFAULT_REVIEW_TIMEOUT: Duration = Duration::from_secs(15 * 60);

fn origin(cx: &Cx<'_>, node: &KdlNode) -> Origin {
    Origin {
        file: cx.file,
        span: span_of(node),
    }
}

/// `NAME "x" ...`: the block's name.
fn block_name(cx: &mut Cx<'_>, node: &KdlNode) -> Option<String> {
    let mut it = args(node);
    let Some(first) = it.next() else {
        cx.error_help(
            "missing-name",
            span_of(node),
            format!("`{}` needs a name", name(node)),
            format!("write `{} \"NAME\" {{ ... }}`", name(node)),
        );
        return None;
    };
    for extra in it {
        cx.error(
            "unexpected-argument",
            extra.span(),
            format!("`{}` takes one name", name(node)),
        );
    }
    let what = format!("the name of a `{}`", name(node));
    let n = as_str(cx, first, &what)?;
    if n.is_empty() {
        cx.error("missing-name", first.span(), "a name cannot be empty");
        return None;
    }
    Some(n.to_owned())
}

pub(crate) fn defaults(cx: &mut Cx<'_>, node: &KdlNode, settings: &mut Settings) {
    check_no_args(cx, node);
    check_props(cx, node, &[]);
    const KNOWN: [&str; 3] = ["command", "unparsed", "max-session"];
    for child in children(node) {
        match name(child) {
            "command" => {
                if let Some((v, _)) = leaf_choice(cx, child, &["allow", "log", "deny"]) {
                    settings.command = Action::from_name(&v).unwrap_or(Action::Deny);
                }
            }
            "unparsed" => {
                check_props(cx, child, &["approvers", "quorum", "timeout", "window"]);
                check_no_children(cx, child);
                let Some((v, span)) = one_arg(cx, child) else {
                    continue;
                };
                settings.unparsed = match v.as_str() {
                    "strictest" => Unparsed::Strictest,
                    "review" => Unparsed::Action(
                        Action::Review,
                        approval(cx, child, DEFAULT_REVIEW_TIMEOUT),
                    ),
                    other => match Action::from_name(other) {
                        Some(a) => Unparsed::Action(a, None),
                        None => {
                            cx.error_help(
                                "unknown-value",
                                span,
                                format!("unknown value `{v}` for `unparsed`"),
                                "expected `strictest`, `deny`, `review`, `log` or `allow`",
                            );
                            continue;
                        }
                    },
                };
            }
            "max-session" => {
                if let Some(d) = leaf_duration(cx, child) {
                    settings.max_session = d;
                }
            }
            _ => unknown_node(cx, child, &KNOWN, "`defaults`"),
        }
    }
}

pub(crate) fn resource(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Resource> {
    let name = block_name(cx, node);
    check_props(cx, node, &["kind"]);
    let kind = match prop_str(cx, node, "kind") {
        Some((k, span)) => match Kind::from_name(&k) {
            Some(k) => Some(k),
            None => {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                cx.error_help(
                    "unknown-value",
                    span,
                    format!("unknown resource kind `{k}`"),
                    format!("expected {}", list(&names)),
                );
                None
            }
        },
        None => {
            cx.error_help(
                "missing-property",
                span_of(node),
                "a resource needs a kind",
                "add `kind=\"postgres\"` (or mysql, ssh, kubernetes, http, tcp)",
            );
            None
        }
    };
    let mut r = Resource {
        name: name.clone().unwrap_or_default(),
        kind: kind.unwrap_or(Kind::Tcp),
        address: String::new(),
        database: None,
        credential: None,
        tls: None,
        labels: Vec::new(),
        agent: None,
        host_keys: Vec::new(),
        trust_on_first_use: false,
        origin: origin(cx, node),
    };
    const KNOWN: [&str; 9] = [
        "address",
        "database",
        "credential",
        "tls",
        "labels",
        "agent",
        "host-key",
        "trust-on-first-use",
        "description",
    ];
    for child in children(node) {
        match super::read::name(child) {
            "address" => r.address = leaf(cx, child).map(|(v, _)| v).unwrap_or_default(),
            "database" => r.database = leaf(cx, child).map(|(v, _)| v),
            "description" => {
                leaf(cx, child);
            }
            "agent" => r.agent = leaf(cx, child).map(|(v, _)| v),
            "host-key" => r.host_keys.extend(leaf(cx, child).map(|(v, _)| v)),
            "trust-on-first-use" => r.trust_on_first_use = leaf_bool(cx, child).unwrap_or(false),
            "credential" => r.credential = Some(credential(cx, child)),
            "tls" => r.tls = tls(cx, child),
            "labels" => {
                check_no_args(cx, child);
                check_no_children(cx, child);
                for (key, entry) in props(child) {
                    if let Some(v) = as_str(cx, entry, "a label value") {
                        r.labels.push((key.to_owned(), v.to_owned()));
                    }
                }
            }
            _ => unknown_node(cx, child, &KNOWN, "a `resource`"),
        }
    }
    if r.address.is_empty() && kind.is_some() {
        cx.error_help(
            "missing-node",
            span_of(node),
            format!("resource \"{}\" has no address", r.name),
            "add `address \"HOST:PORT\"`",
        );
    }
    Some(r).filter(|_| name.is_some() && kind.is_some())
}

fn credential(cx: &mut Cx<'_>, node: &KdlNode) -> Credential {
    check_no_args(cx, node);
    check_no_children(cx, node);
    check_props(cx, node, &["user", "password", "key", "token"]);
    let secret = |cx: &mut Cx<'_>, key: &str| {
        let (v, span) = prop_str(cx, node, key)?;
        let parsed = SecretRef::parse(&v);
        // A value that looks like a known secret was already reported by the
        // file-wide scan; one report per leak is enough.
        if parsed.is_none() && crate::looks_like_secret(&v).is_none() {
            cx.error_help(
                "literal-secret",
                span,
                format!("`{key}` must name where the secret is kept, not hold it"),
                "write `env:NAME` or `file:/absolute/path`; secrets never live in policy files",
            );
        }
        parsed
    };
    Credential {
        user: prop_str(cx, node, "user").map(|(v, _)| v),
        password: secret(cx, "password"),
        key: secret(cx, "key"),
        token: secret(cx, "token"),
    }
}

fn tls(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Tls> {
    check_no_args(cx, node);
    check_no_children(cx, node);
    check_props(cx, node, &["mode", "ca", "server-name"]);
    let mode = match prop_str(cx, node, "mode") {
        Some((m, span)) => TlsMode::from_name(&m).or_else(|| {
            cx.error_help(
                "unknown-value",
                span,
                format!("unknown TLS mode `{m}`"),
                format!("expected {}", list(&TlsMode::NAMES)),
            );
            None
        })?,
        None => TlsMode::VerifyFull,
    };
    let ca = prop_str(cx, node, "ca").and_then(|(v, span)| {
        SecretRef::parse(&v).or_else(|| {
            cx.error(
                "invalid-reference",
                span,
                "`ca` must be `file:/absolute/path` or `env:NAME`",
            );
            None
        })
    });
    Some(Tls {
        mode,
        ca,
        server_name: prop_str(cx, node, "server-name").map(|(v, _)| v),
    })
}

pub(crate) fn grant(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Grant> {
    let name = block_name(cx, node);
    check_props(cx, node, &[]);
    let mut g = Grant {
        name: name.clone().unwrap_or_default(),
        subjects: Subjects::default(),
        resources: Selection::default(),
        max_session: None,
        approval: None,
        extras: Vec::new(),
        origin: origin(cx, node),
    };
    let mut has_resources = false;
    const KNOWN: [&str; 7] = [
        "groups",
        "principals",
        "resources",
        "max-session",
        "approval",
        "allow",
        "description",
    ];
    for child in children(node) {
        match super::read::name(child) {
            "groups" => g
                .subjects
                .groups
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "principals" => g
                .subjects
                .principals
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "resources" => {
                has_resources = true;
                g.resources.0.push(selector(cx, child));
            }
            "max-session" => g.max_session = leaf_duration(cx, child),
            "description" => {
                leaf(cx, child);
            }
            "approval" => {
                check_no_args(cx, child);
                check_no_children(cx, child);
                check_props(cx, child, &["approvers", "quorum", "timeout", "window"]);
                g.approval = approval(cx, child, DEFAULT_REVIEW_TIMEOUT);
                if let Some(a) = &mut g.approval
                    && a.window.is_none()
                {
                    // An access window without an end would be a standing grant.
                    a.window = Some(g.max_session.unwrap_or(Duration::from_secs(3600)));
                }
            }
            "allow" => {
                for (v, span) in leaf_list(cx, child) {
                    match Extra::from_name(&v) {
                        Some(e) => g.extras.push(e),
                        None => {
                            let names: Vec<_> = Extra::ALL.iter().map(|e| e.name()).collect();
                            cx.error_help(
                                "unknown-value",
                                span,
                                format!("unknown extra `{v}`"),
                                format!("expected {}", list(&names)),
                            );
                        }
                    }
                }
            }
            _ => unknown_node(cx, child, &KNOWN, "a `grant`"),
        }
    }
    if g.subjects.is_empty() {
        cx.error_help(
            "never-matches",
            span_of(node),
            format!("grant \"{}\" names nobody", g.name),
            "add `groups \"GROUP\"` or `principals \"EMAIL\"`",
        );
    }
    if !has_resources {
        cx.error_help(
            "missing-node",
            span_of(node),
            format!("grant \"{}\" names no resources", g.name),
            "add `resources \"NAME\"` or `resources LABEL=\"VALUE\"`; a grant never covers everything by omission",
        );
    }
    Some(g).filter(|_| name.is_some())
}

/// `service-account "NAME" { groups ..; secret-hash "sha256:HEX" }` and
/// `break-glass "NAME" { .. }`.
pub(crate) fn account(
    cx: &mut Cx<'_>,
    node: &KdlNode,
    kind: crate::model::AccountKind,
) -> Option<crate::model::Account> {
    let name = block_name(cx, node);
    check_props(cx, node, &[]);
    let mut groups = Vec::new();
    let mut hash = None;
    const KNOWN: [&str; 3] = ["groups", "secret-hash", "description"];
    for child in children(node) {
        match super::read::name(child) {
            "groups" => groups.extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "secret-hash" => {
                if let Some((v, span)) = leaf(cx, child) {
                    hash = parse_secret_hash(&v);
                    if hash.is_none() {
                        cx.error_help(
                            "invalid-value",
                            span,
                            "a secret hash is `sha256:` and 64 hex digits",
                            "create a secret and its hash with `gwctl secret new`",
                        );
                    }
                }
            }
            "description" => {
                leaf(cx, child);
            }
            _ => unknown_node(cx, child, &KNOWN, &format!("a `{}`", kind.name())),
        }
    }
    let Some(secret_sha256) = hash else {
        if !children(node)
            .iter()
            .any(|c| super::read::name(c) == "secret-hash")
        {
            cx.error_help(
                "missing-node",
                span_of(node),
                format!(
                    "{} \"{}\" has no `secret-hash`",
                    kind.name(),
                    name.clone().unwrap_or_default()
                ),
                "create a secret and its hash with `gwctl secret new`",
            );
        }
        return None;
    };
    if let Some(n) = &name
        && (n.is_empty() || n.contains(':') || n.contains(char::is_whitespace))
    {
        cx.error_help(
            "invalid-value",
            span_of(node),
            format!("`{n}` is not a usable account name"),
            "use letters, digits, `-`, `_` and `.`",
        );
        return None;
    }
    Some(crate::model::Account {
        name: name?,
        kind,
        groups,
        secret_sha256,
        origin: origin(cx, node),
    })
}

fn parse_secret_hash(v: &str) -> Option<[u8; 32]> {
    let hex = v.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn guard(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Guard> {
    let name = block_name(cx, node);
    check_props(cx, node, &[]);
    let mut g = Guard {
        name: name.clone().unwrap_or_default(),
        protocols: Vec::new(),
        resources: Selection::default(),
        applies_to: Subjects::default(),
        except: Subjects::default(),
        matchers: Matchers::default(),
        family: None,
        action: Action::Deny,
        approval: None,
        message: None,
        origin: origin(cx, node),
    };
    let mut action_span = None;
    const KNOWN: [&str; 22] = [
        "protocols",
        "resources",
        "groups",
        "principals",
        "except-groups",
        "except-principals",
        "statements",
        "tables",
        "where",
        "risks",
        "verbs",
        "kube-resources",
        "namespaces",
        "subresources",
        "methods",
        "paths",
        "commands",
        "action",
        "message",
        "description",
        "ssh-commands",
        "sql",
    ];
    let m = &mut g.matchers;
    for child in children(node) {
        match super::read::name(child) {
            "protocols" => {
                for (v, span) in leaf_list(cx, child) {
                    match Kind::from_name(&v) {
                        Some(k) => g.protocols.push(k),
                        None => {
                            let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                            cx.error_help(
                                "unknown-value",
                                span,
                                format!("unknown protocol `{v}`"),
                                format!("expected {}", list(&names)),
                            );
                        }
                    }
                }
            }
            "resources" => g.resources.0.push(selector(cx, child)),
            "groups" => g
                .applies_to
                .groups
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "principals" => g
                .applies_to
                .principals
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "except-groups" => g
                .except
                .groups
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "except-principals" => g
                .except
                .principals
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "statements" => {
                for (v, span) in leaf_list(cx, child) {
                    match gw_sql::Kind::from_name(&v.to_lowercase()) {
                        Some(k) => m.statements.push(k),
                        None => {
                            let names: Vec<_> =
                                gw_sql::Kind::ALL.iter().map(|k| k.name()).collect();
                            cx.error_help(
                                "unknown-value",
                                span,
                                format!("unknown statement kind `{v}`"),
                                format!("expected {}", list(&names)),
                            );
                        }
                    }
                }
            }
            "tables" => m
                .tables
                .extend(leaf_list(cx, child).iter().map(|(v, _)| TableGlob::new(v))),
            "where" => m.has_where = leaf_bool(cx, child),
            "risks" => {
                for (v, span) in leaf_list(cx, child) {
                    if RISKS.contains(&v.as_str()) {
                        m.risks.push(v);
                    } else {
                        cx.error_help(
                            "unknown-value",
                            span,
                            format!("unknown SQL risk `{v}`"),
                            format!("expected {}", list(&RISKS)),
                        );
                    }
                }
            }
            "verbs" => {
                for (v, span) in leaf_list(cx, child) {
                    if KUBE_VERBS.contains(&v.as_str()) {
                        m.verbs.push(v);
                    } else {
                        cx.error_help(
                            "unknown-value",
                            span,
                            format!("unknown Kubernetes verb `{v}`"),
                            format!("expected {}", list(&KUBE_VERBS)),
                        );
                    }
                }
            }
            "kube-resources" => m.kube_resources.extend(
                leaf_list(cx, child)
                    .iter()
                    .map(|(v, _)| Glob::new(&v.to_lowercase())),
            ),
            "namespaces" => m
                .namespaces
                .extend(leaf_list(cx, child).iter().map(|(v, _)| Glob::new(v))),
            "subresources" => m
                .subresources
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "methods" => {
                for (v, span) in leaf_list(cx, child) {
                    let upper = v.to_uppercase();
                    if HTTP_METHODS.contains(&upper.as_str()) {
                        m.methods.push(upper);
                    } else {
                        cx.error_help(
                            "unknown-value",
                            span,
                            format!("unknown HTTP method `{v}`"),
                            format!("expected {}", list(&HTTP_METHODS)),
                        );
                    }
                }
            }
            "paths" => {
                for (v, span) in leaf_list(cx, child) {
                    if !v.starts_with('/') {
                        cx.error(
                            "invalid-pattern",
                            span,
                            format!("path `{v}` must start with `/`"),
                        );
                    }
                    m.paths.push(Glob::new(&v));
                }
            }
            "commands" => m
                .commands
                .extend(leaf_list(cx, child).iter().map(|(v, _)| Glob::new(v))),
            "action" => {
                action_span = Some(span_of(child));
                check_no_children(cx, child);
                check_props(cx, child, &["approvers", "quorum", "timeout", "window"]);
                let Some((v, span)) = one_arg(cx, child) else {
                    continue;
                };
                match Action::from_name(&v) {
                    Some(Action::Review) => {
                        g.action = Action::Review;
                        g.approval = approval(cx, child, DEFAULT_REVIEW_TIMEOUT);
                    }
                    Some(a) => {
                        g.action = a;
                        if let Some((key, entry)) = props(child).next() {
                            cx.error(
                                "unexpected-property",
                                entry.span(),
                                format!("`{key}` only applies to `action \"review\"`"),
                            );
                        }
                    }
                    None => cx.error_help(
                        "unknown-value",
                        span,
                        format!("unknown action `{v}`"),
                        format!("expected {}", list(&Action::NAMES)),
                    ),
                }
            }
            "message" => g.message = leaf(cx, child).map(|(v, _)| v),
            "description" => {
                leaf(cx, child);
            }
            _ => unknown_node(cx, child, &KNOWN[..20], "a `guard`"),
        }
    }
    g.family = g.matchers.families().first().copied();
    if action_span.is_none() {
        cx.error_help(
            "missing-node",
            span_of(node),
            format!("guard \"{}\" has no action", g.name),
            "add `action \"deny\"` (or allow, log, review)",
        );
        return None;
    }
    Some(g).filter(|_| name.is_some())
}

/// Risk names a guard may match (see `gw_sql::Risk::name`), and `any`.
pub const RISKS: [&str; 8] = [
    "any",
    "dynamic-sql",
    "side-effect-function",
    "shell-command",
    "server-file",
    "explain-analyze",
    "versioned-comment",
    "role-change",
];

pub const KUBE_VERBS: [&str; 11] = [
    "*",
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "connect",
];

pub const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

pub(crate) fn mask(cx: &mut Cx<'_>, node: &KdlNode) -> Option<Mask> {
    let name = block_name(cx, node);
    check_props(cx, node, &[]);
    let mut k = Mask {
        name: name.clone().unwrap_or_default(),
        resources: Selection::default(),
        except: Subjects::default(),
        detectors: Vec::new(),
        patterns: Vec::new(),
        columns: Vec::new(),
        fields: Vec::new(),
        style: MaskStyle::Full,
        block_binary: true,
        origin: origin(cx, node),
    };
    const KNOWN: [&str; 9] = [
        "resources",
        "except-groups",
        "detect",
        "pattern",
        "columns",
        "fields",
        "style",
        "binary",
        "description",
    ];
    for child in children(node) {
        match super::read::name(child) {
            "resources" => k.resources.0.push(selector(cx, child)),
            "except-groups" => k
                .except
                .groups
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "detect" => {
                for (v, span) in leaf_list(cx, child) {
                    if DETECTORS.contains(&v.as_str()) {
                        k.detectors.push(v);
                    } else {
                        cx.error_help(
                            "unknown-value",
                            span,
                            format!("unknown detector `{v}`"),
                            format!("expected {}", list(&DETECTORS)),
                        );
                    }
                }
            }
            "pattern" => {
                check_no_children(cx, child);
                check_props(cx, child, &["regex"]);
                let pname = one_arg(cx, child);
                match prop_str(cx, child, "regex") {
                    Some((re, span)) => {
                        match regex::RegexBuilder::new(&re).size_limit(1 << 20).build() {
                            Ok(regex) if regex.is_match("") => {
                                cx.error("invalid-pattern", span, format!("pattern `{re}` matches the empty string, so it would mask everywhere"));
                            }
                            Ok(regex) => k.patterns.push(Pattern {
                                name: pname.map(|(n, _)| n).unwrap_or_default(),
                                regex,
                            }),
                            Err(e) => {
                                let first =
                                    e.to_string().lines().last().unwrap_or("").trim().to_owned();
                                cx.error(
                                    "invalid-pattern",
                                    span,
                                    format!("invalid regular expression: {first}"),
                                );
                            }
                        }
                    }
                    None => cx.error_help(
                        "missing-property",
                        span_of(child),
                        "a pattern needs a regex",
                        "write `pattern \"NAME\" regex=\"...\"`",
                    ),
                }
            }
            "columns" => k.columns.extend(
                leaf_list(cx, child)
                    .iter()
                    .map(|(v, _)| Glob::new(&v.to_lowercase())),
            ),
            "fields" => k
                .fields
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "style" => {
                if let Some((v, _)) = leaf_choice(cx, child, &MaskStyle::NAMES) {
                    k.style = MaskStyle::from_name(&v).unwrap_or(MaskStyle::Full);
                }
            }
            "binary" => {
                if let Some((v, _)) = leaf_choice(cx, child, &["block", "pass"]) {
                    k.block_binary = v == "block";
                }
            }
            "description" => {
                leaf(cx, child);
            }
            _ => unknown_node(cx, child, &KNOWN, "a `mask`"),
        }
    }
    if k.detectors.is_empty()
        && k.patterns.is_empty()
        && k.columns.is_empty()
        && k.fields.is_empty()
    {
        cx.error_help(
            "never-matches",
            span_of(node),
            format!("mask \"{}\" masks nothing", k.name),
            "add `detect`, `pattern`, `columns` or `fields`",
        );
    }
    Some(k).filter(|_| name.is_some())
}

pub(crate) fn recording(cx: &mut Cx<'_>, node: &KdlNode) -> Recording {
    check_props(cx, node, &[]);
    let name = match args(node).next() {
        Some(_) => one_arg(cx, node).map(|(v, _)| v).unwrap_or_default(),
        None => "default".to_owned(),
    };
    let d = DEFAULT_RECORDING;
    let mut r = Recording {
        name,
        resources: Selection::default(),
        on_failure: d.on_failure,
        result_rows: d.result_rows,
        result_bytes: d.result_bytes,
        input: d.input,
        origin: origin(cx, node),
    };
    const KNOWN: [&str; 5] = [
        "resources",
        "on-failure",
        "result-rows",
        "result-bytes",
        "input",
    ];
    for child in children(node) {
        match super::read::name(child) {
            "resources" => r.resources.0.push(selector(cx, child)),
            "on-failure" => {
                if let Some((v, _)) = leaf_choice(cx, child, &OnFailure::NAMES) {
                    r.on_failure = OnFailure::from_name(&v).unwrap_or(OnFailure::Terminate);
                }
            }
            "result-rows" => r.result_rows = leaf_u32(cx, child).unwrap_or(d.result_rows),
            "result-bytes" => r.result_bytes = leaf_u32(cx, child).unwrap_or(d.result_bytes),
            "input" => r.input = leaf_bool(cx, child).unwrap_or(true),
            _ => unknown_node(cx, child, &KNOWN, "`recording`"),
        }
    }
    r
}

/// A test as written; its command is built once resources are known,
/// because the resource's kind decides how to read it.
pub(crate) struct RawTest {
    pub(crate) case: TestCase,
    pub(crate) resource_span: Span,
    pub(crate) rule_span: Span,
    pub(crate) sql: Option<String>,
    pub(crate) kube: Option<KubeRequest>,
    pub(crate) http: Option<(String, String)>,
    pub(crate) shell: Option<String>,
}

pub(crate) fn test(cx: &mut Cx<'_>, node: &KdlNode) -> Option<RawTest> {
    let name = block_name(cx, node);
    check_props(cx, node, &[]);
    let mut t = RawTest {
        case: TestCase {
            name: name.clone().unwrap_or_default(),
            principal: Principal::default(),
            resource: String::new(),
            command: None,
            expect: Action::Deny,
            expect_rule: None,
            origin: origin(cx, node),
        },
        resource_span: span_of(node),
        rule_span: span_of(node),
        sql: None,
        kube: None,
        http: None,
        shell: None,
    };
    let (mut has_principal, mut has_request, mut has_expect) = (false, false, false);
    const KNOWN: [&str; 5] = ["principal", "groups", "request", "expect", "description"];
    for child in children(node) {
        match super::read::name(child) {
            "principal" => {
                has_principal = true;
                t.case.principal.subject = leaf(cx, child).map(|(v, _)| v).unwrap_or_default();
            }
            "groups" => t
                .case
                .principal
                .groups
                .extend(leaf_list(cx, child).into_iter().map(|(v, _)| v)),
            "request" => {
                has_request = true;
                request(cx, child, &mut t);
            }
            "expect" => {
                has_expect = true;
                check_no_children(cx, child);
                check_props(cx, child, &["rule"]);
                if let Some((v, span)) = one_arg(cx, child) {
                    match Action::from_name(&v) {
                        Some(a) => t.case.expect = a,
                        None => cx.error_help(
                            "unknown-value",
                            span,
                            format!("unknown verdict `{v}`"),
                            format!("expected {}", list(&Action::NAMES)),
                        ),
                    }
                }
                if let Some((rule, span)) = prop_str(cx, child, "rule") {
                    t.case.expect_rule = Some(rule);
                    t.rule_span = span;
                }
            }
            "description" => {
                leaf(cx, child);
            }
            _ => unknown_node(cx, child, &KNOWN, "a `test`"),
        }
    }
    for (present, what) in [
        (has_principal, "principal"),
        (has_request, "request"),
        (has_expect, "expect"),
    ] {
        if !present {
            cx.error(
                "missing-node",
                span_of(node),
                format!("test \"{}\" has no `{what}`", t.case.name),
            );
        }
    }
    Some(t).filter(|_| name.is_some() && has_principal && has_request && has_expect)
}

const REQUEST_PROPS: [&str; 10] = [
    "resource",
    "sql",
    "verb",
    "kube-resource",
    "namespace",
    "subresource",
    "name",
    "method",
    "path",
    "command",
];

fn request(cx: &mut Cx<'_>, node: &KdlNode, t: &mut RawTest) {
    check_no_args(cx, node);
    check_no_children(cx, node);
    check_props(cx, node, &REQUEST_PROPS);
    match prop_str(cx, node, "resource") {
        Some((r, span)) => {
            t.case.resource = r;
            t.resource_span = span;
        }
        None => cx.error_help(
            "missing-property",
            span_of(node),
            "a request needs a resource",
            "add `resource=\"NAME\"`",
        ),
    }
    let get = |cx: &mut Cx<'_>, key: &str| prop_str(cx, node, key).map(|(v, _)| v);
    t.sql = get(cx, "sql");
    if let Some(verb) = get(cx, "verb") {
        t.kube = Some(KubeRequest {
            verb,
            resource: get(cx, "kube-resource").unwrap_or_default(),
            subresource: get(cx, "subresource"),
            namespace: get(cx, "namespace"),
            name: get(cx, "name"),
        });
    }
    if let Some(method) = get(cx, "method") {
        t.http = Some((
            method.to_uppercase(),
            get(cx, "path").unwrap_or_else(|| "/".into()),
        ));
    }
    t.shell = get(cx, "command");
    let commands = [
        t.sql.is_some(),
        t.kube.is_some(),
        t.http.is_some(),
        t.shell.is_some(),
    ];
    if commands.iter().filter(|c| **c).count() > 1 {
        cx.error(
            "conflicting-properties",
            span_of(node),
            "a request has one command: `sql`, `verb`, `method` or `command`",
        );
    }
}
