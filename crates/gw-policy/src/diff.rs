//! A semantic diff of two policies, in plain words for reviewers: who gains
//! or loses access to what, which guards were loosened or tightened, which
//! masks were removed.
//!
//! It compares what the policies *mean*, not their text: moving a grant to
//! another file, or renaming one that grants the same access, is no change.

use crate::engine::human_duration;
use crate::model::{Action, Grant, Guard, Mask, Policy, Resource, Subjects, Unparsed};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which way a change moves the security posture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// More access, fewer guards or masks: the reviewer's attention goes here.
    Loosened,
    Tightened,
    /// Neither: a new resource, a changed address, a reworded message.
    Neutral,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Loosened => "loosened",
            Direction::Tightened => "tightened",
            Direction::Neutral => "changed",
        }
    }
}

/// The area of the policy a change is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    Access,
    Guards,
    Masks,
    Resources,
    Settings,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Access => "access",
            Area::Guards => "guards",
            Area::Masks => "masks",
            Area::Resources => "resources",
            Area::Settings => "settings",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub area: Area,
    pub direction: Direction,
    pub text: String,
}

/// What `old → new` changes, grouped by area, loosening first.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let mut out = Vec::new();
    access(old, new, &mut out);
    accounts(old, new, &mut out);
    guards(old, new, &mut out);
    masks(old, new, &mut out);
    resources(old, new, &mut out);
    settings(old, new, &mut out);
    out.sort_by_key(|c| (c.area, c.direction));
    out
}

fn tightened_if(cond: bool) -> Direction {
    if cond {
        Direction::Tightened
    } else {
        Direction::Loosened
    }
}

fn loosened_if(cond: bool) -> Direction {
    if cond {
        Direction::Loosened
    } else {
        Direction::Tightened
    }
}

fn push(out: &mut Vec<Change>, area: Area, direction: Direction, text: String) {
    out.push(Change {
        area,
        direction,
        text,
    });
}

/// Service accounts and break-glass principals: a new one, new groups or a
/// new secret is a way in; a removed one, a way out.
fn accounts(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    let find = |p: &Policy, name: &str| p.accounts.iter().find(|a| a.name == name).cloned();
    for a in &new.accounts {
        let what = format!("{} \"{}\"", a.kind.name(), a.name);
        match find(old, &a.name) {
            None => push(
                out,
                Area::Access,
                Direction::Loosened,
                format!("{what} added (groups: {})", a.groups.join(", ")),
            ),
            Some(o) => {
                let added: Vec<&String> =
                    a.groups.iter().filter(|g| !o.groups.contains(g)).collect();
                let removed: Vec<&String> =
                    o.groups.iter().filter(|g| !a.groups.contains(g)).collect();
                if !added.is_empty() {
                    push(
                        out,
                        Area::Access,
                        Direction::Loosened,
                        format!("{what} gains groups {added:?}"),
                    );
                }
                if !removed.is_empty() {
                    push(
                        out,
                        Area::Access,
                        Direction::Tightened,
                        format!("{what} loses groups {removed:?}"),
                    );
                }
                if o.secret_sha256 != a.secret_sha256 {
                    push(
                        out,
                        Area::Access,
                        Direction::Neutral,
                        format!("{what} has a new secret (the old one stops working)"),
                    );
                }
            }
        }
    }
    for o in &old.accounts {
        if find(new, &o.name).is_none() {
            push(
                out,
                Area::Access,
                Direction::Tightened,
                format!("{} \"{}\" removed", o.kind.name(), o.name),
            );
        }
    }
}

/// What one subject may do on one resource, merged over all grants.
#[derive(Clone, Debug, PartialEq)]
struct Access {
    /// Without approval, if any grant gives it so.
    direct: bool,
    max_session: Duration,
    extras: Vec<crate::model::Extra>,
    grants: Vec<String>,
}

fn access_map(p: &Policy) -> BTreeMap<(String, String), Access> {
    let mut map: BTreeMap<(String, String), Access> = BTreeMap::new();
    for g in &p.grants {
        for subject in subjects(&g.subjects) {
            for r in p.resources.iter().filter(|r| g.resources.matches(r)) {
                let a = map
                    .entry((subject.clone(), r.name.clone()))
                    .or_insert(Access {
                        direct: false,
                        max_session: Duration::ZERO,
                        extras: Vec::new(),
                        grants: Vec::new(),
                    });
                merge(a, g, p.settings.max_session);
            }
        }
    }
    map
}

fn merge(a: &mut Access, g: &Grant, default: Duration) {
    a.direct |= g.approval.is_none();
    a.max_session = a.max_session.max(g.max_session.unwrap_or(default));
    a.extras.extend(g.extras.iter().copied());
    a.extras.sort();
    a.extras.dedup();
    a.grants.push(g.name.clone());
}

fn subjects(s: &Subjects) -> Vec<String> {
    s.groups
        .iter()
        .map(|g| format!("group \"{g}\""))
        .chain(s.principals.iter().map(|p| format!("\"{p}\"")))
        .collect()
}

fn access(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    let (before, after) = (access_map(old), access_map(new));
    for ((who, resource), a) in &after {
        let via = grant_list(&a.grants);
        match before.get(&(who.clone(), resource.clone())) {
            None => {
                let how = if a.direct {
                    String::new()
                } else {
                    " after approval".into()
                };
                push(
                    out,
                    Area::Access,
                    Direction::Loosened,
                    format!("{who} gains access to \"{resource}\"{how} ({via})"),
                );
            }
            Some(b) => compare_access(out, who, resource, b, a),
        }
    }
    for ((who, resource), b) in &before {
        if !after.contains_key(&(who.clone(), resource.clone())) {
            push(
                out,
                Area::Access,
                Direction::Tightened,
                format!(
                    "{who} loses access to \"{resource}\" (was {})",
                    grant_list(&b.grants)
                ),
            );
        }
    }
}

fn compare_access(out: &mut Vec<Change>, who: &str, resource: &str, b: &Access, a: &Access) {
    if b.direct && !a.direct {
        push(
            out,
            Area::Access,
            Direction::Tightened,
            format!("{who} now needs approval to reach \"{resource}\""),
        );
    } else if !b.direct && a.direct {
        push(
            out,
            Area::Access,
            Direction::Loosened,
            format!("{who} no longer needs approval to reach \"{resource}\""),
        );
    }
    if a.max_session != b.max_session {
        let dir = loosened_if(a.max_session > b.max_session);
        push(
            out,
            Area::Access,
            dir,
            format!(
                "{who}: sessions on \"{resource}\" may last {} (was {})",
                human_duration(a.max_session),
                human_duration(b.max_session)
            ),
        );
    }
    let names = |x: &Access| {
        x.extras
            .iter()
            .map(|e| e.name().to_owned())
            .collect::<Vec<_>>()
    };
    compare_sets(
        out,
        Area::Access,
        (&names(b), &names(a)),
        (Direction::Loosened, &|e| {
            format!("{who} may now use {e} on \"{resource}\"")
        }),
        (Direction::Tightened, &|e| {
            format!("{who} may no longer use {e} on \"{resource}\"")
        }),
    );
}

/// Reports what `after` has that `before` lacks (`gained`) and the reverse
/// (`lost`), each with its direction and wording.
type Phrase<'a> = (Direction, &'a dyn Fn(&str) -> String);

fn compare_sets(
    out: &mut Vec<Change>,
    area: Area,
    (before, after): (&[String], &[String]),
    gained: Phrase<'_>,
    lost: Phrase<'_>,
) {
    for item in after.iter().filter(|i| !before.contains(i)) {
        push(out, area, gained.0, gained.1(item));
    }
    for item in before.iter().filter(|i| !after.contains(i)) {
        push(out, area, lost.0, lost.1(item));
    }
}

fn grant_list(names: &[String]) -> String {
    let quoted: Vec<_> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("grant {}", quoted.join(", "))
}

fn guards(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    for g in &new.guards {
        match old.guards.iter().find(|o| o.name == g.name) {
            None => {
                let dir = tightened_if(g.action > Action::Allow);
                push(
                    out,
                    Area::Guards,
                    dir,
                    format!(
                        "new guard \"{}\": {} {}",
                        g.name,
                        g.action.name(),
                        describe_guard(g)
                    ),
                );
            }
            Some(o) => compare_guard(out, o, g),
        }
    }
    for o in old
        .guards
        .iter()
        .filter(|o| !new.guards.iter().any(|g| g.name == o.name))
    {
        let dir = loosened_if(o.action > Action::Allow);
        push(
            out,
            Area::Guards,
            dir,
            format!(
                "guard \"{}\" removed: it would {} {}",
                o.name,
                o.action.name(),
                describe_guard(o)
            ),
        );
    }
}

fn compare_guard(out: &mut Vec<Change>, o: &Guard, g: &Guard) {
    if o.action != g.action {
        let dir = tightened_if(g.action > o.action);
        push(
            out,
            Area::Guards,
            dir,
            format!(
                "guard \"{}\" now says {} (was {})",
                g.name,
                g.action.name(),
                o.action.name()
            ),
        );
    }
    if let (Some(a), Some(b)) = (&o.approval, &g.approval) {
        if b.quorum != a.quorum {
            let dir = tightened_if(b.quorum > a.quorum);
            push(
                out,
                Area::Guards,
                dir,
                format!(
                    "guard \"{}\" needs {} approver(s) (was {})",
                    g.name, b.quorum, a.quorum
                ),
            );
        }
        if b.approvers != a.approvers {
            push(
                out,
                Area::Guards,
                Direction::Neutral,
                format!(
                    "guard \"{}\" is approved by \"{}\" (was \"{}\")",
                    g.name, b.approvers, a.approvers
                ),
            );
        }
    }
    compare_sets(
        out,
        Area::Guards,
        (&subjects(&o.except), &subjects(&g.except)),
        (Direction::Loosened, &|who| {
            format!("guard \"{}\" no longer applies to {who}", g.name)
        }),
        (Direction::Tightened, &|who| {
            format!("guard \"{}\" now applies to {who} again", g.name)
        }),
    );
    if o.matchers != g.matchers
        || o.resources != g.resources
        || o.protocols != g.protocols
        || o.applies_to != g.applies_to
    {
        push(
            out,
            Area::Guards,
            Direction::Neutral,
            format!(
                "guard \"{}\" now matches {} (was {})",
                g.name,
                describe_guard(g),
                describe_guard(o)
            ),
        );
    }
}

/// A one-line description of what a guard matches.
fn describe_guard(g: &Guard) -> String {
    let m = &g.matchers;
    let mut parts = Vec::new();
    let names = |v: Vec<String>| v.join(" ");
    if !m.statements.is_empty() {
        parts.push(format!(
            "statements {}",
            names(
                m.statements
                    .iter()
                    .map(|k| k.name().to_uppercase())
                    .collect()
            )
        ));
    }
    if !m.tables.is_empty() {
        parts.push(format!(
            "on tables {}",
            names(m.tables.iter().map(|t| t.full.to_string()).collect())
        ));
    }
    if let Some(w) = m.has_where {
        parts.push(if w {
            "with WHERE".into()
        } else {
            "without WHERE".into()
        });
    }
    if !m.risks.is_empty() {
        parts.push(format!("with risks {}", m.risks.join(" ")));
    }
    if !m.verbs.is_empty() {
        parts.push(format!("verbs {}", m.verbs.join(" ")));
    }
    if !m.kube_resources.is_empty() {
        parts.push(format!(
            "on {}",
            names(m.kube_resources.iter().map(|g| g.to_string()).collect())
        ));
    }
    if !m.subresources.is_empty() {
        parts.push(format!("subresources {}", m.subresources.join(" ")));
    }
    if !m.namespaces.is_empty() {
        parts.push(format!(
            "in namespaces {}",
            names(m.namespaces.iter().map(|g| g.to_string()).collect())
        ));
    }
    if !m.methods.is_empty() {
        parts.push(m.methods.join(" "));
    }
    if !m.paths.is_empty() {
        parts.push(format!(
            "paths {}",
            names(m.paths.iter().map(|g| g.to_string()).collect())
        ));
    }
    if !m.commands.is_empty() {
        parts.push(format!(
            "commands {}",
            names(m.commands.iter().map(|g| format!("`{g}`")).collect())
        ));
    }
    if parts.is_empty() {
        parts.push("every command".into());
    }
    if !g.protocols.is_empty() {
        parts.push(format!(
            "({})",
            g.protocols
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    parts.join(" ")
}

fn masks(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    for o in &old.masks {
        let Some(m) = new.masks.iter().find(|m| m.name == o.name) else {
            push(
                out,
                Area::Masks,
                Direction::Loosened,
                format!(
                    "mask \"{}\" removed: {} are no longer masked",
                    o.name,
                    mask_items(o).join(", ")
                ),
            );
            continue;
        };
        let (was, now) = (mask_items(o), mask_items(m));
        compare_sets(
            out,
            Area::Masks,
            (&was, &now),
            (Direction::Tightened, &|item| {
                format!("mask \"{}\" now masks {item}", m.name)
            }),
            (Direction::Loosened, &|item| {
                format!("mask \"{}\" no longer masks {item}", m.name)
            }),
        );
        compare_sets(
            out,
            Area::Masks,
            (&subjects(&o.except), &subjects(&m.except)),
            (Direction::Loosened, &|who| {
                format!("mask \"{}\" no longer applies to {who}", m.name)
            }),
            (Direction::Tightened, &|who| {
                format!("mask \"{}\" applies to {who} again", m.name)
            }),
        );
        if o.resources != m.resources {
            push(
                out,
                Area::Masks,
                Direction::Neutral,
                format!("mask \"{}\" applies to different resources", m.name),
            );
        }
    }
    for m in new
        .masks
        .iter()
        .filter(|m| !old.masks.iter().any(|o| o.name == m.name))
    {
        push(
            out,
            Area::Masks,
            Direction::Tightened,
            format!("new mask \"{}\" masks {}", m.name, mask_items(m).join(", ")),
        );
    }
}

fn mask_items(m: &Mask) -> Vec<String> {
    m.detectors
        .iter()
        .map(|d| d.to_string())
        .chain(m.patterns.iter().map(|p| format!("pattern \"{}\"", p.name)))
        .chain(m.columns.iter().map(|c| format!("column {c}")))
        .chain(m.fields.iter().map(|f| format!("field {f}")))
        .collect()
}

fn resources(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    for r in &new.resources {
        match old.resource(&r.name) {
            None => push(
                out,
                Area::Resources,
                Direction::Neutral,
                format!(
                    "new {} resource \"{}\" at {}",
                    r.kind.name(),
                    r.name,
                    r.address
                ),
            ),
            Some(o) => compare_resource(out, o, r),
        }
    }
    for o in old
        .resources
        .iter()
        .filter(|o| new.resource(&o.name).is_none())
    {
        push(
            out,
            Area::Resources,
            Direction::Neutral,
            format!("resource \"{}\" removed", o.name),
        );
    }
}

fn compare_resource(out: &mut Vec<Change>, o: &Resource, r: &Resource) {
    if o.address != r.address {
        push(
            out,
            Area::Resources,
            Direction::Neutral,
            format!(
                "resource \"{}\" moves to {} (was {})",
                r.name, r.address, o.address
            ),
        );
    }
    let tls = |x: &Resource| x.tls.as_ref().map(|t| t.mode);
    if tls(o) != tls(r) {
        let rank = |m: Option<crate::model::TlsMode>| m.map_or(3, |m| m as u8);
        let dir = loosened_if(rank(tls(r)) < rank(tls(o)));
        push(
            out,
            Area::Resources,
            dir,
            format!(
                "resource \"{}\" TLS is now {:?} (was {:?})",
                r.name,
                tls(r),
                tls(o)
            ),
        );
    }
    if o.credential != r.credential {
        push(
            out,
            Area::Resources,
            Direction::Neutral,
            format!(
                "resource \"{}\" uses a different credential reference",
                r.name
            ),
        );
    }
    if o.trust_on_first_use != r.trust_on_first_use || o.host_keys != r.host_keys {
        let dir = if r.trust_on_first_use && !o.trust_on_first_use {
            Direction::Loosened
        } else {
            Direction::Neutral
        };
        push(
            out,
            Area::Resources,
            dir,
            format!("resource \"{}\" host key pinning changed", r.name),
        );
    }
    if o.labels != r.labels {
        push(
            out,
            Area::Resources,
            Direction::Neutral,
            format!(
                "resource \"{}\" labels changed (this can change which rules select it)",
                r.name
            ),
        );
    }
}

fn settings(old: &Policy, new: &Policy, out: &mut Vec<Change>) {
    let (a, b) = (&old.settings, &new.settings);
    if a.command != b.command {
        let dir = tightened_if(b.command > a.command);
        push(
            out,
            Area::Settings,
            dir,
            format!(
                "commands no guard matches are now {} (was {})",
                b.command.name(),
                a.command.name()
            ),
        );
    }
    if a.unparsed != b.unparsed {
        let name = |u: &Unparsed| match u {
            Unparsed::Strictest => "the strictest guard".to_owned(),
            Unparsed::Action(a, _) => a.name().to_owned(),
        };
        let dir = tightened_if(b.unparsed == Unparsed::Strictest);
        push(
            out,
            Area::Settings,
            dir,
            format!(
                "unparsable SQL is now treated as {} (was {})",
                name(&b.unparsed),
                name(&a.unparsed)
            ),
        );
    }
    if a.max_session != b.max_session {
        let dir = loosened_if(b.max_session > a.max_session);
        push(
            out,
            Area::Settings,
            dir,
            format!(
                "default session length is {} (was {})",
                human_duration(b.max_session),
                human_duration(a.max_session)
            ),
        );
    }
    for r in &new.resources {
        let (x, y) = (old.recording_terms(r), new.recording_terms(r));
        if old.resource(&r.name).is_some() && x.on_failure != y.on_failure {
            let dir = loosened_if(y.on_failure < x.on_failure);
            push(
                out,
                Area::Settings,
                dir,
                format!(
                    "when recording \"{}\" fails: {} (was {})",
                    r.name,
                    y.on_failure.name(),
                    x.on_failure.name()
                ),
            );
        }
    }
}
