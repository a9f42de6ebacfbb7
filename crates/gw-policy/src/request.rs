//! What the engine is asked, and what it answers.

use crate::model::{Action, Approval, Extra, RecordingTerms};
use std::time::Duration;

/// An authenticated person or service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principal {
    /// The stable identity: an email for people, a name for services.
    pub subject: String,
    pub groups: Vec<String>,
}

impl Principal {
    pub fn new(subject: impl Into<String>, groups: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
}

/// A command inside a session, already classified by its adapter.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Sql(gw_sql::Classification),
    Kubernetes(KubeRequest),
    Http { method: String, path: String },
    Shell { command: String },
}

impl Command {
    /// Classifies SQL text in the dialect of `kind` (PostgreSQL for anything
    /// that is not MySQL).
    pub fn sql(kind: crate::Kind, text: &str) -> Command {
        let dialect = if kind == crate::Kind::Mysql {
            gw_sql::Dialect::MySql
        } else {
            gw_sql::Dialect::Postgres
        };
        Command::Sql(gw_sql::classify(dialect, text))
    }
}

/// A Kubernetes API request, as read from its path and HTTP verb.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeRequest {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...
    pub verb: String,
    /// Plural resource, with its group for non-core ones: `pods`, `deployments.apps`.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Allow,
    /// Allowed, and flagged for the audit log.
    Log,
    /// Held until approved.
    Review,
    Deny,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        Action::from(self).name()
    }
}

impl From<Action> for Verdict {
    fn from(a: Action) -> Verdict {
        match a {
            Action::Allow => Verdict::Allow,
            Action::Log => Verdict::Log,
            Action::Review => Verdict::Review,
            Action::Deny => Verdict::Deny,
        }
    }
}

impl From<Verdict> for Action {
    fn from(v: Verdict) -> Action {
        match v {
            Verdict::Allow => Action::Allow,
            Verdict::Log => Action::Log,
            Verdict::Review => Action::Review,
            Verdict::Deny => Action::Deny,
        }
    }
}

/// Which rule produced a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    Grant(String),
    Guard(String),
    /// No rule matched; the named default applied (`no-policy`,
    /// `unknown-resource`, `no-grant`, `default-command`, `unparsed`).
    Default(&'static str),
}

impl Rule {
    /// The bare name: the grant's or guard's name, or the default's.
    pub fn name(&self) -> &str {
        match self {
            Rule::Grant(n) | Rule::Guard(n) => n,
            Rule::Default(n) => n,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Grant(n) => write!(f, "grant \"{n}\""),
            Rule::Guard(n) => write!(f, "guard \"{n}\""),
            Rule::Default(n) => write!(f, "default ({n})"),
        }
    }
}

/// A verdict, the rule behind it, and why, in words for the user.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub rule: Rule,
    pub reason: String,
    /// For `Review`: who must approve, how many, how long it waits.
    pub approval: Option<Approval>,
}

/// What an allowed session may do, from the grant that allowed it.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionTerms {
    /// The session must end at this instant (seconds since the Unix epoch).
    pub ends_at: u64,
    pub max_session: Duration,
    pub extras: Vec<Extra>,
    pub recording: RecordingTerms,
}

/// The answer to "may this principal open a session on this resource now?".
#[derive(Clone, Debug, PartialEq)]
pub struct SessionDecision {
    pub decision: Decision,
    /// Present when the verdict is not `Deny`.
    pub terms: Option<SessionTerms>,
}
