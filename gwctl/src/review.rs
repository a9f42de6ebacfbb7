//! `gwctl review`: list, show, approve, deny and cancel reviews through the
//! gateway's HTTPS API, authenticated with a gateway token.
//!
//! Exit codes: 0 done; 1 the gateway refused (not an approver, own request,
//! already decided, expired, unknown id); 2 usage, token or connection
//! problems.

use crate::Failure;
use crate::client::Conn;
use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use gw_review::{Kind, Review, State, Verdict};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    conn: Conn,
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    format: Output,
    #[command(subcommand)]
    command: Action,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Action {
    /// Lists the reviews you asked for or may decide (pending by default).
    List {
        /// pending, approved, denied, expired, cancelled, or all.
        #[arg(long, default_value = "pending")]
        state: String,
        #[arg(long)]
        resource: Option<String>,
    },
    /// Shows one review: the exact command, who asked, every decision.
    Show { id: String },
    /// Approves a review (you must be in its approver group, and not its requester).
    Approve {
        id: String,
        /// Why: kept with the decision in the audit log.
        #[arg(long, required = true)]
        reason: String,
    },
    /// Denies a review; the held command fails at once.
    Deny {
        id: String,
        #[arg(long, required = true)]
        reason: String,
    },
    /// Withdraws your own pending review.
    Cancel {
        id: String,
        #[arg(long, required = true)]
        reason: String,
    },
}

pub(crate) fn review(args: Args) -> Result<(), Failure> {
    crate::client::block_on(run(args))
}

async fn run(args: Args) -> Result<(), Failure> {
    let (method, path, body) = match &args.command {
        Action::List { state, resource } => {
            let mut q = format!("state={}", encode(state));
            if let Some(r) = resource {
                let _ = write!(q, "&resource={}", encode(r));
            }
            ("GET", format!("/v1/reviews?{q}"), None)
        }
        Action::Show { id } => ("GET", format!("/v1/reviews/{}", encode(id)), None),
        Action::Approve { id, reason } => post(id, "approve", reason),
        Action::Deny { id, reason } => post(id, "deny", reason),
        Action::Cancel { id, reason } => post(id, "cancel", reason),
    };
    let value = args.conn.call(method, &path, body).await?;
    if args.format == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    let now = value["now"].as_u64().unwrap_or(0);
    let text = match &args.command {
        Action::List { .. } => {
            let reviews: Vec<Review> = serde_json::from_value(value["reviews"].clone())
                .context("the gateway's review list is not in the expected shape")?;
            render_list(&reviews, now)
        }
        command => {
            let review: Review = serde_json::from_value(value["review"].clone())
                .context("the gateway's review is not in the expected shape")?;
            match command {
                Action::Show { .. } => render_show(&review, now),
                Action::Cancel { .. } => format!("withdrew review {}\n", review.id),
                _ => render_decided(&review),
            }
        }
    };
    print!("{text}");
    Ok(())
}

fn post(id: &str, action: &str, reason: &str) -> (&'static str, String, Option<Vec<u8>>) {
    let body = serde_json::to_vec(&serde_json::json!({ "reason": reason })).unwrap_or_default();
    (
        "POST",
        format!("/v1/reviews/{}/{action}", encode(id)),
        Some(body),
    )
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn approvals(r: &Review) -> usize {
    gw_review::rules::approving_subjects(r).len()
}

/// "in 14m", "3m ago".
fn relative(at: u64, now: u64) -> String {
    if at >= now {
        format!(
            "in {}",
            gw_policy::human_duration(Duration::from_secs(at - now))
        )
    } else {
        format!(
            "{} ago",
            gw_policy::human_duration(Duration::from_secs(now - at))
        )
    }
}

fn what(r: &Review) -> String {
    match (&r.kind, &r.command) {
        (Kind::Command, Some(c)) => c.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => format!(
            "(access window, {})",
            gw_policy::human_duration(Duration::from_secs(r.window.unwrap_or(0)))
        ),
    }
}

pub(crate) fn render_list(reviews: &[Review], now: u64) -> String {
    if reviews.is_empty() {
        return "no reviews\n".into();
    }
    let rows: Vec<[String; 7]> = reviews
        .iter()
        .map(|r| {
            let mut command = what(r);
            if command.chars().count() > 48 {
                command = command.chars().take(47).collect::<String>() + "…";
            }
            [
                r.id.to_string(),
                r.state.to_string(),
                r.requester.subject.clone(),
                r.resource.clone(),
                format!("{}/{} {}", approvals(r), r.quorum, r.approvers),
                match r.state {
                    State::Pending => relative(r.expires_at, now),
                    _ => "-".into(),
                },
                command,
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATE",
        "REQUESTER",
        "RESOURCE",
        "APPROVALS",
        "EXPIRES",
        "COMMAND",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

pub(crate) fn render_show(r: &Review, now: u64) -> String {
    let time = |t: u64| gw_recording::rfc3339(t.saturating_mul(1_000_000));
    let mut out = String::new();
    let kind = match r.kind {
        Kind::Command => "command",
        Kind::Session => "access window",
    };
    let _ = writeln!(out, "review {} ({kind}): {}", r.id, r.state);
    let _ = writeln!(
        out,
        "  requester   {} (groups: {})",
        r.requester.subject,
        r.requester.groups.join(", ")
    );
    let _ = writeln!(out, "  resource    {} ({})", r.resource, r.protocol);
    if let Some(s) = &r.session_id {
        let _ = writeln!(out, "  session     {s}");
    }
    if let Some(c) = &r.command {
        let _ = writeln!(out, "  command     {}", c.replace('\n', "\n              "));
        let _ = writeln!(out, "  hash        {}", r.command_hash);
    }
    let _ = writeln!(out, "  rule        {}", r.guard_or_grant);
    let _ = writeln!(
        out,
        "  approvers   {} of \"{}\" ({} so far)",
        r.quorum,
        r.approvers,
        approvals(r)
    );
    let _ = writeln!(out, "  created     {}", time(r.created_at));
    let _ = writeln!(
        out,
        "  expires     {} ({})",
        time(r.expires_at),
        relative(r.expires_at, now)
    );
    if let Some(w) = r.window {
        let span = gw_policy::human_duration(Duration::from_secs(w));
        match r.approved_at {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "  window      {span} from approval, until {}",
                    time(at + w)
                );
            }
            None => {
                let _ = writeln!(out, "  window      {span} from approval");
            }
        }
    }
    let _ = writeln!(out, "  policy      {}", r.policy_revision);
    if r.decisions.is_empty() {
        let _ = writeln!(out, "  decisions   none yet");
    }
    for (i, d) in r.decisions.iter().enumerate() {
        let verdict = match d.verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        };
        let label = if i == 0 { "decisions" } else { "" };
        let _ = writeln!(
            out,
            "  {label:<10}  {} {verdict} at {}: {:?}",
            d.by,
            time(d.at),
            d.reason
        );
    }
    if r.state == State::Pending {
        let _ = writeln!(
            out,
            "\nDecide with: gwctl review approve {0} --reason \"...\"  or  gwctl review deny {0} --reason \"...\"",
            r.id
        );
    }
    out
}

pub(crate) fn render_decided(r: &Review) -> String {
    let by = r.decisions.last().map_or("", |d| d.by.as_str());
    match r.state {
        State::Approved => {
            let effect = match r.kind {
                Kind::Command => "the held command runs now",
                Kind::Session => "the access window is open",
            };
            format!("approved {}: {effect}\n", r.id)
        }
        State::Denied => format!("denied {}: the requester is told at once\n", r.id),
        State::Pending => {
            let missing = (r.quorum as usize).saturating_sub(approvals(r));
            format!(
                "recorded {by}'s approval of {}; {missing} more approval(s) from \"{}\" needed\n",
                r.id, r.approvers
            )
        }
        other => format!("review {} is {other}\n", r.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Review {
        let json = serde_json::json!({
            "id": "rv-abcdefghij",
            "kind": "command",
            "requester": {"subject": "alice@example.com", "groups": ["sre"]},
            "session_id": "s-20261124-0001",
            "resource": "orders",
            "protocol": "postgres",
            "command": "DROP TABLE audit_trail",
            "command_hash": "00".repeat(32),
            "guard_or_grant": "guard \"ddl-needs-review\"",
            "approvers": "dba",
            "quorum": 2,
            "created_at": 1_795_000_000u64,
            "expires_at": 1_795_000_900u64,
            "window": null,
            "state": "pending",
            "decisions": [{"by": "bob@example.com", "verdict": "approve", "reason": "planned cleanup, INC-42", "at": 1_795_000_060u64}],
            "approved_at": null,
            "consumed": false,
            "policy_revision": "content-0123456789ab",
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn list_shows_progress_and_expiry() {
        let r = sample();
        let mut window = r.clone();
        window.id = gw_review::ReviewId::parse("rv-bcdefghijk").unwrap();
        window.kind = Kind::Session;
        window.command = None;
        window.session_id = None;
        window.window = Some(3600);
        window.quorum = 1;
        window.decisions.clear();
        insta::assert_snapshot!(render_list(&[r, window], 1_795_000_120));
    }

    #[test]
    fn show_has_everything_an_approver_needs() {
        insta::assert_snapshot!(render_show(&sample(), 1_795_000_120));
    }

    #[test]
    fn decisions_say_what_happens_next() {
        let mut r = sample();
        let partial = render_decided(&r);
        r.state = State::Approved;
        let approved = render_decided(&r);
        r.state = State::Denied;
        let denied = render_decided(&r);
        insta::assert_snapshot!(format!("{partial}{approved}{denied}"));
    }

    #[test]
    fn ids_are_percent_encoded_in_paths() {
        assert_eq!(encode("rv-abc/../x"), "rv-abc%2F..%2Fx");
    }
}
