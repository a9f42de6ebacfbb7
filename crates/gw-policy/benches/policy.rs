//! Benchmarks for the policy: linting a large repository, and one decision.
//! Run with `cargo bench -p gw-policy`. Prints the median of several runs;
//! it asserts nothing (these machines are too noisy for timed tests).
#![allow(clippy::print_stdout)]

use gw_policy::{Command, Principal, Source};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One team's file: a resource, three grants, three guards, two masks and
/// one test — ten rules.
fn team_file(i: usize) -> Source {
    let text = format!(
        r#"// Team {i}.
resource "db-{i}" kind="postgres" {{
    address "db-{i}.internal:5432"
    credential user="gw" password="env:DB_{i}_PASSWORD"
    labels env="prod" team="team-{i}"
}}

grant "oncall-{i}" {{
    groups "team-{i}-oncall" "sre"
    resources team="team-{i}"
    max-session "4h"
}}

grant "dev-{i}" {{
    groups "team-{i}-dev"
    resources "db-{i}"
    approval approvers="team-{i}-leads" window="1h"
}}

grant "audit-{i}" {{
    principals "auditor-{i}@example.com"
    resources team="team-{i}"
}}

guard "ddl-{i}" {{
    resources team="team-{i}"
    statements "drop" "truncate" "alter"
    action "review" approvers="dba" timeout="15m"
}}

guard "unbounded-{i}" {{
    resources team="team-{i}"
    statements "delete" "update"
    where #false
    action "deny"
}}

guard "money-{i}" {{
    resources team="team-{i}"
    statements "insert" "update" "delete"
    tables "payments_{i}" "public.refunds_{i}"
    action "review" approvers="leads-{i}" quorum=2
}}

mask "pii-{i}" {{
    resources team="team-{i}"
    detect "credit-card" "email"
}}

mask "cols-{i}" {{
    resources "db-{i}"
    columns "users.ssn" "cards.pan"
    pattern "acct" regex="ACCT-[0-9]{{10}}"
}}

test "oncall reads {i}" {{
    principal "o@example.com"
    groups "team-{i}-oncall"
    request resource="db-{i}" sql="SELECT 1"
    expect "allow"
}}
"#
    );
    Source::new(format!("teams/team-{i}.kdl"), text)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs `f` `iters` times per sample, five samples; the median per call.
fn per_call(iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iters {
                    f();
                }
                t.elapsed() / iters
            })
            .collect(),
    )
}

fn main() {
    let sources: Vec<Source> = (0..1000).map(team_file).collect();
    let lint = per_call(1, || {
        let (_, diags) = gw_policy::check(black_box(&sources));
        assert!(
            diags.is_empty(),
            "{}",
            gw_policy::diagnostic::render_human(&sources, &diags)
        );
    });
    println!(
        "  of which KDL parsing:            {:>10.1} ms",
        parse_only(&sources).as_secs_f64() * 1e3
    );
    println!(
        "lint 1,000 files / 10,000 rules: {:>10.1} ms   (goal <= 1000 ms)",
        lint.as_secs_f64() * 1e3
    );

    let policy = gw_policy::load(&sources).unwrap();
    let who = Principal::new("o@example.com", &["team-500-oncall", "developers"]);
    let select = Command::sql(
        gw_policy::Kind::Postgres,
        "SELECT id FROM orders WHERE id = $1",
    );
    let delete = Command::sql(
        gw_policy::Kind::Postgres,
        "DELETE FROM payments_500 WHERE id = 1",
    );
    let session = per_call(20_000, || {
        black_box(policy.decide_session(black_box(&who), "db-500", 0));
    });
    let cmd_big = per_call(20_000, || {
        black_box(policy.decide_command(black_box(&who), "db-500", black_box(&delete)));
    });

    let examples = gw_policy::source::read_paths(&[concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policy-examples/multi-team"
    )
    .into()])
    .unwrap();
    let small = gw_policy::load(&examples).unwrap();
    let oncall = Principal::new("olga@example.com", &["payments-oncall"]);
    let update = Command::sql(
        gw_policy::Kind::Postgres,
        "UPDATE public.refunds SET s = 1 WHERE id = 2",
    );
    let cmd_small = per_call(200_000, || {
        black_box(small.decide_command(black_box(&oncall), "orders-db", black_box(&update)));
    });
    let sel_small = per_call(200_000, || {
        black_box(small.decide_command(black_box(&oncall), "orders-db", black_box(&select)));
    });
    let session_small = per_call(200_000, || {
        black_box(small.decide_session(black_box(&oncall), "orders-db", 0));
    });
    println!(
        "decide_command, multi-team example (UPDATE):   {:>8.0} ns   (goal <= 1000 ns)",
        cmd_small.as_nanos()
    );
    println!(
        "decide_command, multi-team example (SELECT):   {:>8.0} ns",
        sel_small.as_nanos()
    );
    println!(
        "decide_session, multi-team example:            {:>8.0} ns",
        session_small.as_nanos()
    );
    println!(
        "decide_command, 10,000-rule policy (DELETE):   {:>8.0} ns",
        cmd_big.as_nanos()
    );
    println!(
        "decide_session, 10,000-rule policy:            {:>8.0} ns",
        session.as_nanos()
    );
}

#[allow(dead_code)]
fn parse_only(sources: &[Source]) -> Duration {
    let t = Instant::now();
    for s in sources {
        black_box(kdl::KdlDocument::parse_v2(&s.text).unwrap());
    }
    t.elapsed()
}
