//! `gwctl explain`: the verdict for one request, the rule behind it, and why.

use crate::sources;
use crate::{Failure, Format};
use gw_policy::diagnostic::json_str;
use gw_policy::{Command, Decision, KubeRequest, Principal};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Policy files or directories.
    #[arg(long = "policy", required = true)]
    policy: Vec<PathBuf>,
    /// Who asks (email or service name).
    #[arg(long)]
    principal: String,
    /// The principal's groups, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The resource's name.
    #[arg(long)]
    resource: String,
    /// An SQL command (PostgreSQL or MySQL, per the resource).
    #[arg(long, group = "command")]
    sql: Option<String>,
    /// A shell command (SSH exec).
    #[arg(long, group = "command")]
    shell: Option<String>,
    /// An HTTP request: METHOD and PATH.
    #[arg(long, num_args = 2, value_names = ["METHOD", "PATH"], group = "command")]
    http: Option<Vec<String>>,
    /// A Kubernetes request verb (with --kube-resource, --namespace, ...).
    #[arg(long, group = "command")]
    verb: Option<String>,
    #[arg(long, requires = "verb")]
    kube_resource: Option<String>,
    #[arg(long, requires = "verb")]
    namespace: Option<String>,
    #[arg(long, requires = "verb")]
    subresource: Option<String>,
    #[arg(long, requires = "verb")]
    name: Option<String>,
    /// The instant to decide at, in seconds since the Unix epoch (default: now).
    #[arg(long)]
    at: Option<u64>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub(crate) fn explain(args: Args) -> Result<(), Failure> {
    let sources = sources::read(&args.policy)?;
    let policy = sources::load(&sources)?;
    let principal = Principal {
        subject: args.principal.clone(),
        groups: args.groups.clone(),
    };
    let now = args.at.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let session = policy.decide_session(&principal, &args.resource, now);
    let kind = policy
        .resource(&args.resource)
        .map_or(gw_policy::Kind::Postgres, |r| r.kind);
    let command = command(&args, kind);
    let decision = match &command {
        Some(c) if session.decision.verdict != gw_policy::Verdict::Deny => {
            policy.decide_command(&principal, &args.resource, c)
        }
        _ => session.decision.clone(),
    };
    match args.format {
        Format::Json => println!("{}", json(&decision, &session.decision, command.as_ref())),
        _ => print!("{}", human(&decision, &session.decision, command.as_ref())),
    }
    Ok(())
}

fn command(args: &Args, kind: gw_policy::Kind) -> Option<Command> {
    if let Some(sql) = &args.sql {
        return Some(Command::sql(kind, sql));
    }
    if let Some(shell) = &args.shell {
        return Some(Command::Shell {
            command: shell.clone(),
        });
    }
    if let Some(http) = &args.http {
        let (method, path) = (http.first()?.to_uppercase(), http.get(1)?.clone());
        return Some(Command::Http { method, path });
    }
    let verb = args.verb.clone()?;
    Some(Command::Kubernetes(KubeRequest {
        verb,
        resource: args.kube_resource.clone().unwrap_or_default(),
        subresource: args.subresource.clone(),
        namespace: args.namespace.clone(),
        name: args.name.clone(),
    }))
}

fn human(d: &Decision, session: &Decision, command: Option<&Command>) -> String {
    let mut out = format!(
        "verdict: {}\nrule:    {}\nreason:  {}\n",
        d.verdict.name(),
        d.rule,
        d.reason
    );
    if let Some(a) = &d.approval {
        out.push_str(&format!(
            "review:  {} approval(s) from \"{}\", expires after {}\n",
            a.quorum,
            a.approvers,
            gw_policy::human_duration(a.timeout)
        ));
    }
    if command.is_some() {
        out.push_str(&format!(
            "session: {} by {}\n",
            session.verdict.name(),
            session.rule
        ));
    }
    if let Some(Command::Sql(c)) = command {
        out.push_str("sql:\n");
        for line in sql_lines(c) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// A readable account of what the classifier saw.
fn sql_lines(c: &gw_sql::Classification) -> Vec<String> {
    if let Some(u) = &c.unparsed {
        let guessed: Vec<_> = u.guessed.iter().map(|k| k.name()).collect();
        return vec![format!(
            "unparsed: {} (looks like: {})",
            u.reason,
            guessed.join(", ")
        )];
    }
    c.statements
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let effects: Vec<_> = s
                .effects
                .iter()
                .map(|e| {
                    let w = match e.has_where {
                        Some(true) => " with WHERE",
                        Some(false) => " without WHERE",
                        None => "",
                    };
                    format!("{} {}{w}", e.kind.name(), e.tables.join(","))
                })
                .collect();
            let risks: Vec<_> = s.risks.iter().map(|r| r.name()).collect();
            let risks = if risks.is_empty() {
                String::new()
            } else {
                format!("; risks: {}", risks.join(", "))
            };
            format!(
                "{}. {}: {}{risks}",
                i + 1,
                s.kind.name(),
                effects.join("; ")
            )
        })
        .collect()
}

fn json(d: &Decision, session: &Decision, command: Option<&Command>) -> String {
    let approval = d.approval.as_ref().map_or_else(
        || "null".to_owned(),
        |a| {
            format!(
                "{{\"approvers\":{},\"quorum\":{},\"timeout_seconds\":{}}}",
                json_str(&a.approvers),
                a.quorum,
                a.timeout.as_secs()
            )
        },
    );
    let sql = match command {
        Some(Command::Sql(c)) => {
            let lines: Vec<_> = sql_lines(c).iter().map(|l| json_str(l)).collect();
            format!("[{}]", lines.join(","))
        }
        _ => "null".into(),
    };
    format!(
        "{{\"verdict\":{},\"rule\":{},\"rule_kind\":{},\"reason\":{},\"approval\":{approval},\"session\":{{\"verdict\":{},\"rule\":{}}},\"sql\":{sql}}}",
        json_str(d.verdict.name()),
        json_str(d.rule.name()),
        json_str(rule_kind(&d.rule)),
        json_str(&d.reason),
        json_str(session.verdict.name()),
        json_str(session.rule.name()),
    )
}

fn rule_kind(r: &gw_policy::Rule) -> &'static str {
    match r {
        gw_policy::Rule::Grant(_) => "grant",
        gw_policy::Rule::Guard(_) => "guard",
        gw_policy::Rule::Default(_) => "default",
    }
}
