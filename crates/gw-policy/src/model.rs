//! The policy model: plain data, built by the loader, read by the engine.
//!
//! These types are deliberately not `Serialize`: output formats belong to the
//! tools (`gwctl` defines its own), so the model can change without breaking
//! anyone's JSON.

use crate::diagnostic::Span;
use crate::glob::Glob;
use std::time::Duration;

/// A whole, validated policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub settings: Settings,
    pub resources: Vec<Resource>,
    pub grants: Vec<Grant>,
    pub guards: Vec<Guard>,
    pub masks: Vec<Mask>,
    pub recordings: Vec<Recording>,
    /// Service accounts and break-glass principals (only secret hashes).
    pub accounts: Vec<Account>,
    pub tests: Vec<TestCase>,
    /// Set only by [`Policy::deny_all`]: why nothing is allowed.
    pub denied: Option<String>,
    /// Lookups derived from the rules above, built once at load.
    pub(crate) index: Index,
}

/// Per-resource lists of the grants and guards that can apply to it, so a
/// decision looks at a handful of rules however large the policy is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    pub(crate) resources: std::collections::HashMap<String, usize>,
    pub(crate) grants: Vec<Vec<usize>>,
    pub(crate) guards: Vec<Vec<usize>>,
}

impl Policy {
    /// Rebuilds the index; the loader calls it, and so must anyone who
    /// changes the rules of a loaded policy.
    pub fn build_index(&mut self) {
        let mut index = Index::default();
        for (i, r) in self.resources.iter().enumerate() {
            index.resources.entry(r.name.clone()).or_insert(i);
            let family = r.kind.commands();
            index.grants.push(
                self.grants
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| g.resources.matches(r))
                    .map(|(j, _)| j)
                    .collect(),
            );
            index.guards.push(
                self.guards
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| {
                        (g.protocols.is_empty() || g.protocols.contains(&r.kind))
                            && g.resources.matches(r)
                            && g.family.is_none_or(|f| Some(f) == family)
                    })
                    .map(|(j, _)| j)
                    .collect(),
            );
        }
        self.index = index;
    }
}

/// Where a rule was written, for explanations and diffs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// What happens to a command no guard matches.
    pub command: Action,
    /// What happens to SQL the classifier cannot parse.
    pub unparsed: Unparsed,
    /// Session length when no grant says otherwise.
    pub max_session: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            command: Action::Allow,
            unparsed: Unparsed::Strictest,
            max_session: Duration::from_secs(8 * 3600),
        }
    }
}

/// The policy's answer to text it cannot classify.
#[derive(Clone, Debug, PartialEq)]
pub enum Unparsed {
    /// Treat it as the strictest guard that could apply to this session.
    Strictest,
    /// Treat it with this action (and, for `review`, this approval).
    Action(Action, Option<Approval>),
}

/// Protocol families. A resource has exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Postgres,
    Mysql,
    Ssh,
    Kubernetes,
    Http,
    Tcp,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Postgres,
        Kind::Mysql,
        Kind::Ssh,
        Kind::Kubernetes,
        Kind::Http,
        Kind::Tcp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
            Kind::Ssh => "ssh",
            Kind::Kubernetes => "kubernetes",
            Kind::Http => "http",
            Kind::Tcp => "tcp",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Which family of command matchers makes sense for this protocol.
    pub fn commands(self) -> Option<CommandFamily> {
        match self {
            Kind::Postgres | Kind::Mysql => Some(CommandFamily::Sql),
            Kind::Ssh => Some(CommandFamily::Shell),
            Kind::Kubernetes => Some(CommandFamily::Kubernetes),
            Kind::Http => Some(CommandFamily::Http),
            Kind::Tcp => None,
        }
    }
}

/// The kinds of commands a guard can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandFamily {
    Sql,
    Shell,
    Kubernetes,
    Http,
}

impl CommandFamily {
    pub fn name(self) -> &'static str {
        match self {
            CommandFamily::Sql => "SQL",
            CommandFamily::Shell => "SSH",
            CommandFamily::Kubernetes => "Kubernetes",
            CommandFamily::Http => "HTTP",
        }
    }
}

/// A reference to a secret held outside the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> Option<SecretRef> {
        if let Some(name) = s.strip_prefix("env:") {
            let ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return ok.then(|| SecretRef::Env(name.to_owned()));
        }
        let path = s.strip_prefix("file:")?;
        path.starts_with('/')
            .then(|| SecretRef::File(path.to_owned()))
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{p}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub user: Option<String>,
    pub password: Option<SecretRef>,
    pub key: Option<SecretRef>,
    pub token: Option<SecretRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl TlsMode {
    pub const NAMES: [&'static str; 4] = ["disable", "prefer", "require", "verify-full"];

    pub fn from_name(s: &str) -> Option<TlsMode> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    pub ca: Option<SecretRef>,
    pub server_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub name: String,
    pub kind: Kind,
    pub address: String,
    pub database: Option<String>,
    pub credential: Option<Credential>,
    pub tls: Option<Tls>,
    pub labels: Vec<(String, String)>,
    pub agent: Option<String>,
    /// SSH: pinned host keys (OpenSSH public key lines).
    pub host_keys: Vec<String>,
    /// SSH: accept an unknown host key once and pin it.
    pub trust_on_first_use: bool,
    pub origin: Origin,
}

impl Resource {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Picks resources: by name (globs) and/or by labels. Every given part must
/// match; an empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    pub names: Vec<Glob>,
    pub labels: Vec<(String, Glob)>,
}

impl Selector {
    pub fn matches(&self, r: &Resource) -> bool {
        (self.names.is_empty() || self.names.iter().any(|g| g.matches(&r.name)))
            && self
                .labels
                .iter()
                .all(|(k, g)| r.label(k).is_some_and(|v| g.matches(v)))
    }
}

/// Resources picked by any of several selectors; none means all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection(pub Vec<Selector>);

impl Selection {
    pub fn matches(&self, r: &Resource) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.matches(r))
    }
}

/// Who a rule is about: by group or by principal subject/email.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subjects {
    pub groups: Vec<String>,
    pub principals: Vec<String>,
}

impl Subjects {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.principals.is_empty()
    }

    pub fn contains(&self, p: &crate::Principal) -> bool {
        self.principals.contains(&p.subject)
            || p.groups.iter().any(|g| self.groups.iter().any(|x| x == g))
    }
}

/// An approval needed before something happens.
#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    pub approvers: String,
    pub quorum: u32,
    /// How long the request waits before it expires (and is denied).
    pub timeout: Duration,
    /// For access windows and time-boxed command approvals: how long an
    /// approval stays valid once given. `None` means exactly one use.
    pub window: Option<Duration>,
}

/// A principal that logs in with a secret instead of the identity
/// provider: a service account (automation) or a break-glass principal
/// (for when the provider is down; every use is loudly audited).
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub kind: AccountKind,
    pub groups: Vec<String>,
    /// SHA-256 of the secret (secrets are random and 256 bits strong, so a
    /// fast hash is enough; the policy never holds the secret).
    pub secret_sha256: [u8; 32],
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    Service,
    BreakGlass,
}

impl AccountKind {
    /// The block name, and the prefix of the principal's subject.
    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Service => "service-account",
            AccountKind::BreakGlass => "break-glass",
        }
    }
}

impl Account {
    /// The subject the account's tokens carry: `service-account:NAME` or
    /// `break-glass:NAME`, so grants and audit entries can never confuse it
    /// with a person.
    pub fn subject(&self) -> String {
        format!("{}:{}", self.kind.name(), self.name)
    }
}

#[derive(Clone, Debug)]
pub struct Grant {
    pub name: String,
    pub subjects: Subjects,
    pub resources: Selection,
    pub max_session: Option<Duration>,
    pub approval: Option<Approval>,
    pub extras: Vec<Extra>,
    pub origin: Origin,
}

/// Session capabilities that bypass command recording, so they are off unless
/// granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Extra {
    PortForward,
    RemoteForward,
    AgentForward,
    X11Forward,
}

impl Extra {
    pub const ALL: [Extra; 4] = [
        Extra::PortForward,
        Extra::RemoteForward,
        Extra::AgentForward,
        Extra::X11Forward,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Extra::PortForward => "port-forward",
            Extra::RemoteForward => "remote-forward",
            Extra::AgentForward => "agent-forward",
            Extra::X11Forward => "x11-forward",
        }
    }

    pub fn from_name(s: &str) -> Option<Extra> {
        Extra::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// What to do with a command, strictest last: the order is what "strictest
/// guard wins" compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Log,
    Review,
    Deny,
}

impl Action {
    pub const NAMES: [&'static str; 4] = ["allow", "log", "review", "deny"];

    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Log => "log",
            Action::Review => "review",
            Action::Deny => "deny",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Some(match s {
            "allow" => Action::Allow,
            "log" => Action::Log,
            "review" => Action::Review,
            "deny" => Action::Deny,
            _ => return None,
        })
    }
}

/// What a guard matches inside a session. Within one list any item may
/// match; across lists all must.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matchers {
    pub statements: Vec<gw_sql::Kind>,
    pub tables: Vec<TableGlob>,
    /// `Some(false)`: only `DELETE`/`UPDATE` without `WHERE`.
    pub has_where: Option<bool>,
    /// SQL risks by name (`dynamic-sql`, `shell-command`...), or `any`.
    pub risks: Vec<String>,
    pub verbs: Vec<String>,
    pub kube_resources: Vec<Glob>,
    pub namespaces: Vec<Glob>,
    pub subresources: Vec<String>,
    pub methods: Vec<String>,
    pub paths: Vec<Glob>,
    pub commands: Vec<Glob>,
}

/// A table pattern, compiled for schema-insensitive matching.
#[derive(Clone, Debug, PartialEq)]
pub struct TableGlob {
    pub full: Glob,
    /// The part after the last `.`.
    pub last: Glob,
    pub qualified: bool,
}

impl TableGlob {
    pub fn new(text: &str) -> TableGlob {
        let text = text.to_lowercase();
        let last = text.rsplit('.').next().unwrap_or(&text).to_owned();
        TableGlob {
            full: Glob::new(&text),
            last: Glob::new(&last),
            qualified: text.contains('.'),
        }
    }
}

impl Matchers {
    /// The command families these matchers speak about.
    pub fn families(&self) -> Vec<CommandFamily> {
        let mut out = Vec::new();
        if !self.statements.is_empty()
            || !self.tables.is_empty()
            || self.has_where.is_some()
            || !self.risks.is_empty()
        {
            out.push(CommandFamily::Sql);
        }
        if !self.verbs.is_empty()
            || !self.kube_resources.is_empty()
            || !self.namespaces.is_empty()
            || !self.subresources.is_empty()
        {
            out.push(CommandFamily::Kubernetes);
        }
        if !self.methods.is_empty() || !self.paths.is_empty() {
            out.push(CommandFamily::Http);
        }
        if !self.commands.is_empty() {
            out.push(CommandFamily::Shell);
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct Guard {
    pub name: String,
    pub protocols: Vec<Kind>,
    pub resources: Selection,
    /// Only these principals are guarded (empty: everyone).
    pub applies_to: Subjects,
    /// These principals are exempt.
    pub except: Subjects,
    pub matchers: Matchers,
    /// The one command family the matchers speak about (`None`: any
    /// command). The loader rejects guards that mix families.
    pub family: Option<CommandFamily>,
    pub action: Action,
    pub approval: Option<Approval>,
    pub message: Option<String>,
    pub origin: Origin,
}

/// Built-in detectors, by the names policy files use.
pub const DETECTORS: [&str; 10] = [
    "credit-card",
    "email",
    "us-ssn",
    "phone",
    "iban",
    "aws-access-key",
    "aws-secret-key",
    "jwt",
    "private-key",
    "api-token",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskStyle {
    /// Replace the whole value.
    Full,
    /// Keep the last four characters (`****1111`).
    Partial,
    /// A short stable hash, so equal values stay joinable.
    Hash,
}

impl MaskStyle {
    pub const NAMES: [&'static str; 3] = ["full", "partial", "hash"];

    pub fn from_name(s: &str) -> Option<MaskStyle> {
        Some(match s {
            "full" => MaskStyle::Full,
            "partial" => MaskStyle::Partial,
            "hash" => MaskStyle::Hash,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Pattern {
    pub name: String,
    pub regex: regex::Regex,
}

#[derive(Clone, Debug)]
pub struct Mask {
    pub name: String,
    pub resources: Selection,
    pub except: Subjects,
    pub detectors: Vec<String>,
    pub patterns: Vec<Pattern>,
    /// `table.column` or `column`, lowercase.
    pub columns: Vec<Glob>,
    /// Dotted JSON field paths for HTTP and Kubernetes bodies.
    pub fields: Vec<String>,
    pub style: MaskStyle,
    /// Binary-format values cannot be scanned: block them (fail closed) or
    /// pass them through.
    pub block_binary: bool,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnFailure {
    /// Go on unrecorded, loudly.
    BestEffort,
    /// Keep the session but refuse further commands.
    Refuse,
    /// End the session (and never start one unrecorded).
    Terminate,
}

impl OnFailure {
    pub const NAMES: [&'static str; 3] = ["terminate", "refuse", "best-effort"];

    pub fn name(self) -> &'static str {
        match self {
            OnFailure::BestEffort => "best-effort",
            OnFailure::Refuse => "refuse",
            OnFailure::Terminate => "terminate",
        }
    }

    pub fn from_name(s: &str) -> Option<OnFailure> {
        Some(match s {
            "terminate" => OnFailure::Terminate,
            "refuse" => OnFailure::Refuse,
            "best-effort" => OnFailure::BestEffort,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Recording {
    pub name: String,
    pub resources: Selection,
    pub on_failure: OnFailure,
    /// Query protocols: rows and bytes of each result kept in the recording.
    pub result_rows: u32,
    pub result_bytes: u32,
    /// Terminal protocols: record what the user types.
    pub input: bool,
    pub origin: Origin,
}

/// The recording settings that apply to a resource when no block does.
pub const DEFAULT_RECORDING: RecordingTerms = RecordingTerms {
    on_failure: OnFailure::Terminate,
    result_rows: 100,
    result_bytes: 64 * 1024,
    input: true,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingTerms {
    pub on_failure: OnFailure,
    pub result_rows: u32,
    pub result_bytes: u32,
    pub input: bool,
}

/// A `test` block: a request and the verdict it must get.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    pub principal: crate::Principal,
    pub resource: String,
    pub command: Option<crate::Command>,
    pub expect: Action,
    pub expect_rule: Option<String>,
    pub origin: Origin,
}
