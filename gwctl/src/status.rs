//! `gwctl status`: who the gateway thinks you are, and the policy it
//! enforces — the revision in force, the latest rejected one and why, and
//! the latest fetch from the policy repository.

use crate::Failure;
use crate::client::Conn;
use crate::review::Output;
use std::fmt::Write as _;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    conn: Conn,
    #[arg(long, value_enum, default_value_t = Output::Human)]
    format: Output,
}

pub(crate) fn status(args: Args) -> Result<(), Failure> {
    crate::client::block_on(async {
        if let Ok(Some(c)) = args.conn.cached() {
            let left = c.expires_at.saturating_sub(crate::client::now());
            eprintln!(
                "logged in to {} as {} (groups: {}); token {} {}",
                args.conn.base(),
                c.subject,
                c.groups.join(", "),
                c.token_id,
                if left == 0 {
                    "EXPIRED: run `gwctl login`".to_owned()
                } else {
                    format!("valid for {left} s")
                }
            );
        }
        let v = args.conn.call("GET", "/v1/status", None).await?;
        match args.format {
            Output::Json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Output::Human => print!("{}", render(&v)),
        }
        Ok(())
    })
}

pub(crate) fn render(v: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let p = &v["policy"];
    let mut out = String::new();
    let _ = writeln!(out, "gateway     {}", s(&v["gateway"]));
    let groups: Vec<String> = v["you"]["groups"]
        .as_array()
        .map(|g| g.iter().map(s).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "you         {} (groups: {})",
        s(&v["you"]["subject"]),
        groups.join(", ")
    );
    let _ = writeln!(out, "policy      {}", s(&p["source"]));
    match p["state"].as_str() {
        Some("active") => {
            let _ = writeln!(
                out,
                "  in force  {} (applied {}; {} files, {} tests passed)",
                s(&p["revision"]),
                s(&p["applied_at"]),
                p["files"],
                p["tests_passed"]
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  in force  NONE: every session is denied ({})",
                s(&p["rejected_because"])
            );
        }
    }
    match p["rejected_revision"].as_object() {
        Some(r) => {
            let _ = writeln!(
                out,
                "  rejected  {} at {}: {}",
                r.get("revision").map(s).unwrap_or_default(),
                r.get("at").map(s).unwrap_or_default(),
                r.get("reason").map(s).unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(out, "  rejected  none");
        }
    }
    if let Some(f) = p["last_fetch"].as_object() {
        let outcome = match f.get("error").and_then(|e| e.as_str()) {
            Some(e) => format!("FAILED: {e}"),
            None => format!("ok, {}", f.get("commit").map(s).unwrap_or_default()),
        };
        let _ = writeln!(
            out,
            "  fetched   {} {outcome}",
            f.get("at").map(s).unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_the_revision_in_force_and_the_rejected_one() {
        let v = serde_json::json!({
            "gateway": "gw-prod-1",
            "you": {"subject": "bob@example.com", "groups": ["dba", "sre"]},
            "policy": {
                "state": "active",
                "source": "git https://git.example.com/policy.git branch main path policy",
                "revision": "0123456789abcdef0123456789abcdef01234567",
                "applied_at": "2026-11-24T10:00:00.000000Z",
                "files": 12, "tests_passed": 31,
                "rejected_revision": {"revision": "89abcdef0123456789abcdef0123456789abcdef", "at": "2026-11-24T11:00:00.000000Z", "reason": "2 error(s) in the policy"},
                "last_fetch": {"at": "2026-11-24T11:00:30.000000Z", "commit": "89abcdef0123456789abcdef0123456789abcdef", "error": null},
            },
        });
        insta::assert_snapshot!(super::render(&v));
        let none = serde_json::json!({
            "gateway": "gw-1", "you": {"subject": "a", "groups": []},
            "policy": {"state": "deny-all", "source": "git /srv/policy branch main", "rejected_because": "no valid policy yet", "rejected_revision": null,
                       "last_fetch": {"at": "2026-11-24T11:00:30.000000Z", "commit": null, "error": "fetching main from /srv/policy failed: not found"}},
        });
        insta::assert_snapshot!(super::render(&none));
    }
}
