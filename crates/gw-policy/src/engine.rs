//! The decision engine: a pure function of (policy, principal, resource,
//! command, time). It cannot fail: every path ends in a [`Decision`] that
//! names its rule and says why.

use crate::model::{
    Action, CommandFamily, DEFAULT_RECORDING, Guard, Matchers, Policy, RecordingTerms, Resource,
    TableGlob, Unparsed,
};
use crate::request::{
    Command, Decision, KubeRequest, Principal, Rule, SessionDecision, SessionTerms, Verdict,
};
use std::time::Duration;

impl Policy {
    /// The fail-closed policy: every decision is `Deny`, with `reason`.
    pub fn deny_all(reason: impl Into<String>) -> Policy {
        Policy {
            denied: Some(reason.into()),
            ..Policy::default()
        }
    }

    pub fn resource(&self, name: &str) -> Option<&Resource> {
        match self.index.resources.get(name) {
            Some(i) => self.resources.get(*i),
            None if self.index.resources.is_empty() => {
                self.resources.iter().find(|r| r.name == name)
            }
            None => None,
        }
    }

    /// The position of a resource, for the per-resource index.
    fn position(&self, r: &Resource) -> Option<usize> {
        self.index.resources.get(&r.name).copied()
    }

    /// May `principal` open a session on `resource` at `now` (seconds since
    /// the Unix epoch)?
    pub fn decide_session(
        &self,
        principal: &Principal,
        resource: &str,
        now: u64,
    ) -> SessionDecision {
        let resource = match self.lookup(resource) {
            Ok(r) => r,
            Err(decision) => {
                return SessionDecision {
                    decision,
                    terms: None,
                };
            }
        };
        let mut matching = self
            .grants_for(resource)
            .filter(|g| g.subjects.contains(principal))
            .peekable();
        if matching.peek().is_none() {
            let decision = deny(
                Rule::Default("no-grant"),
                format!(
                    "no grant gives {} access to \"{}\"",
                    principal.subject, resource.name
                ),
            );
            return SessionDecision {
                decision,
                terms: None,
            };
        }
        // A grant that needs no approval beats one that does: approval is for
        // people who would otherwise have no access at all.
        let (direct, approval): (Vec<_>, Vec<_>) = matching.partition(|g| g.approval.is_none());
        let (grants, verdict) = if direct.is_empty() {
            (approval, Verdict::Review)
        } else {
            (direct, Verdict::Allow)
        };
        let max_session = grants
            .iter()
            .map(|g| g.max_session.unwrap_or(self.settings.max_session))
            .max()
            .unwrap_or(self.settings.max_session);
        let mut extras: Vec<_> = grants
            .iter()
            .flat_map(|g| g.extras.iter().copied())
            .collect();
        extras.sort();
        extras.dedup();
        let first = grants[0];
        let reason = match verdict {
            Verdict::Review => format!(
                "grant \"{}\" gives access to \"{}\" after approval by {}",
                first.name,
                resource.name,
                first.approval.as_ref().map_or("", |a| a.approvers.as_str())
            ),
            _ => format!(
                "grant \"{}\" gives access to \"{}\" for {}",
                first.name,
                resource.name,
                human_duration(max_session)
            ),
        };
        let decision = Decision {
            verdict,
            rule: Rule::Grant(first.name.clone()),
            reason,
            approval: first.approval.clone(),
        };
        let terms = SessionTerms {
            ends_at: now.saturating_add(max_session.as_secs()),
            max_session,
            extras,
            recording: self.recording_terms(resource),
        };
        SessionDecision {
            decision,
            terms: Some(terms),
        }
    }

    /// What happens to `command` in a session of `principal` on `resource`?
    /// The strictest matching guard wins; ties go to the first in policy
    /// order, so the answer never depends on anything but the policy.
    pub fn decide_command(
        &self,
        principal: &Principal,
        resource: &str,
        command: &Command,
    ) -> Decision {
        let resource = match self.lookup(resource) {
            Ok(r) => r,
            Err(decision) => return decision,
        };
        if let Command::Sql(c) = command
            && let Some(unparsed) = &c.unparsed
        {
            return self.decide_unparsed(principal, resource, &unparsed.reason);
        }
        let best = self
            .applicable_guards(principal, resource)
            .filter(|g| command_matches(&g.matchers, command))
            .fold(None::<&Guard>, |best, g| match best {
                Some(b) if b.action >= g.action => Some(b),
                _ => Some(g),
            });
        match best {
            Some(g) => guard_decision(g, None),
            None => Decision {
                verdict: self.settings.command.into(),
                rule: Rule::Default("default-command"),
                reason: format!(
                    "no guard matches; the default for commands is {}",
                    self.settings.command.name()
                ),
                approval: None,
            },
        }
    }

    fn decide_unparsed(&self, principal: &Principal, resource: &Resource, why: &str) -> Decision {
        match &self.settings.unparsed {
            Unparsed::Action(action, approval) => Decision {
                verdict: (*action).into(),
                rule: Rule::Default("unparsed"),
                reason: format!(
                    "the statement could not be classified ({why}); policy treats that as {}",
                    action.name()
                ),
                approval: approval.clone(),
            },
            Unparsed::Strictest => {
                let strictest = self
                    .applicable_guards(principal, resource)
                    .filter(|g| g.family.is_none_or(|f| f == CommandFamily::Sql))
                    .fold(None::<&Guard>, |best, g| match best {
                        Some(b) if b.action >= g.action => Some(b),
                        _ => Some(g),
                    });
                match strictest {
                    Some(g) => guard_decision(g, Some(why)),
                    None => Decision {
                        verdict: self.settings.command.into(),
                        rule: Rule::Default("unparsed"),
                        reason: format!(
                            "the statement could not be classified ({why}) and no guard could apply"
                        ),
                        approval: None,
                    },
                }
            }
        }
    }

    /// Guards whose protocol, resource and principal filters admit this
    /// session, whatever the command.
    fn applicable_guards<'a>(
        &'a self,
        principal: &'a Principal,
        resource: &'a Resource,
    ) -> impl Iterator<Item = &'a Guard> {
        let family = resource.kind.commands();
        let indexed = self
            .position(resource)
            .and_then(|i| self.index.guards.get(i));
        let candidates: Box<dyn Iterator<Item = &Guard>> = match indexed {
            Some(list) => Box::new(list.iter().filter_map(|j| self.guards.get(*j))),
            None => Box::new(self.guards.iter().filter(move |g| {
                (g.protocols.is_empty() || g.protocols.contains(&resource.kind))
                    && g.resources.matches(resource)
                    && g.family.is_none_or(|f| Some(f) == family)
            })),
        };
        candidates.filter(move |g| {
            (g.applies_to.is_empty() || g.applies_to.contains(principal))
                && !g.except.contains(principal)
        })
    }

    /// Grants whose resource selection includes `resource`.
    fn grants_for<'a>(
        &'a self,
        resource: &'a Resource,
    ) -> Box<dyn Iterator<Item = &'a crate::model::Grant> + 'a> {
        match self
            .position(resource)
            .and_then(|i| self.index.grants.get(i))
        {
            Some(list) => Box::new(list.iter().filter_map(|j| self.grants.get(*j))),
            None => Box::new(
                self.grants
                    .iter()
                    .filter(move |g| g.resources.matches(resource)),
            ),
        }
    }

    #[allow(
        clippy::result_large_err,
        reason = "the error is the answer, built once per denied request"
    )]
    fn lookup(&self, resource: &str) -> Result<&Resource, Decision> {
        if let Some(why) = &self.denied {
            return Err(deny(
                Rule::Default("no-policy"),
                format!("no valid policy is loaded ({why})"),
            ));
        }
        self.resource(resource).ok_or_else(|| {
            deny(
                Rule::Default("unknown-resource"),
                format!("there is no resource named \"{resource}\""),
            )
        })
    }

    /// Recording terms for a resource: the strictest of every block that
    /// selects it.
    pub fn recording_terms(&self, resource: &Resource) -> RecordingTerms {
        let mut blocks = self
            .recordings
            .iter()
            .filter(|r| r.resources.matches(resource))
            .peekable();
        if blocks.peek().is_none() {
            return DEFAULT_RECORDING;
        }
        blocks.fold(
            RecordingTerms {
                on_failure: crate::OnFailure::BestEffort,
                result_rows: u32::MAX,
                result_bytes: u32::MAX,
                input: false,
            },
            |t, r| RecordingTerms {
                on_failure: t.on_failure.max(r.on_failure),
                result_rows: t.result_rows.min(r.result_rows),
                result_bytes: t.result_bytes.min(r.result_bytes),
                input: t.input || r.input,
            },
        )
    }
}

fn deny(rule: Rule, reason: String) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule,
        reason,
        approval: None,
    }
}

fn guard_decision(g: &Guard, unparsed: Option<&str>) -> Decision {
    let what = match g.action {
        Action::Allow => "allows",
        Action::Log => "logs",
        Action::Review => "needs approval for",
        Action::Deny => "denies",
    };
    let mut reason = match &g.message {
        Some(m) => m.clone(),
        None => format!("guard \"{}\" {what} this command", g.name),
    };
    if let Some(why) = unparsed {
        reason = format!(
            "{reason} (the statement could not be classified: {why}; treated as the strictest guard that could apply)"
        );
    }
    Decision {
        verdict: g.action.into(),
        rule: Rule::Guard(g.name.clone()),
        reason,
        approval: g.approval.clone(),
    }
}

/// Does a command satisfy every matcher list the guard sets?
fn command_matches(m: &Matchers, command: &Command) -> bool {
    match command {
        Command::Sql(c) => {
            let effect_rules =
                !m.statements.is_empty() || !m.tables.is_empty() || m.has_where.is_some();
            c.statements.iter().any(|s| {
                let effects = !effect_rules
                    || s.effects.iter().any(|e| {
                        (m.statements.is_empty() || m.statements.contains(&e.kind))
                            && (m.tables.is_empty()
                                || e.tables
                                    .iter()
                                    .any(|t| m.tables.iter().any(|g| g.matches(t))))
                            && m.has_where.is_none_or(|w| e.has_where == Some(w))
                    });
                let risks = m.risks.is_empty()
                    || s.risks
                        .iter()
                        .any(|r| m.risks.iter().any(|x| risk_matches(x, r)));
                effects && risks
            })
        }
        Command::Kubernetes(k) => kube_matches(m, k),
        Command::Http { method, path } => {
            (m.methods.is_empty() || m.methods.iter().any(|x| x.eq_ignore_ascii_case(method)))
                && (m.paths.is_empty() || m.paths.iter().any(|g| g.matches(path)))
        }
        Command::Shell { command } => {
            m.commands.is_empty() || m.commands.iter().any(|g| g.matches(command.trim()))
        }
    }
}

fn risk_matches(wanted: &str, risk: &gw_sql::Risk) -> bool {
    if wanted == "any" {
        return true;
    }
    let name = risk.name();
    name == wanted
        || name
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with(':'))
}

fn kube_matches(m: &Matchers, k: &KubeRequest) -> bool {
    // A namespace object's own name is the namespace it stands for, so
    // `namespaces "prod-*"` also guards `kubectl delete namespace prod-eu`.
    let namespace = match (&k.namespace, k.resource.as_str(), &k.name) {
        (Some(ns), _, _) => Some(ns.as_str()),
        (None, "namespaces", Some(name)) => Some(name.as_str()),
        _ => None,
    };
    let short = k.resource.split('.').next().unwrap_or("");
    (m.verbs.is_empty() || m.verbs.iter().any(|v| v == "*" || *v == k.verb))
        && (m.kube_resources.is_empty()
            || m.kube_resources
                .iter()
                .any(|g| g.matches(&k.resource) || g.matches(short)))
        && (m.namespaces.is_empty()
            || namespace.is_some_and(|ns| m.namespaces.iter().any(|g| g.matches(ns))))
        && (m.subresources.is_empty()
            || k.subresource
                .as_ref()
                .is_some_and(|s| m.subresources.contains(s)))
}

impl TableGlob {
    /// A table name matches with or without its schema on either side:
    /// `users` guards `public.users`, and `public.users` guards a bare
    /// `users` (which the search path may resolve to it).
    pub fn matches(&self, table: &str) -> bool {
        let last = table.rsplit('.').next().unwrap_or(table);
        self.full.matches(table)
            || (!self.qualified && self.full.matches(last))
            || (self.qualified && !table.contains('.') && self.last.matches(table))
    }
}

/// `4h`, `15m`, `1h30m`: the inverse of the policy's duration syntax.
pub fn human_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}
