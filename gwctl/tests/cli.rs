//! `gwctl` as a user runs it: exit codes and output, snapshot-tested.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs gwctl from the repository root and renders exit code, stdout and
/// stderr as one snapshot-friendly text, with temp paths filtered.
fn gwctl(args: &[&str], tmp: Option<&Path>) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gwctl"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    let mut text = format!(
        "exit: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(tmp) = tmp {
        text = text.replace(&tmp.display().to_string(), "[TMP]");
    }
    (out.status.code().unwrap_or(-1), text)
}

const ERRORS: &str = "crates/gw-policy/test_data/err/many-errors.kdl";

#[test]
fn lint_clean_examples() {
    for dir in ["policy-examples/quickstart", "policy-examples/multi-team"] {
        let (code, out) = gwctl(&["lint", dir], None);
        assert_eq!(code, 0, "{out}");
    }
}

#[test]
fn lint_reports_every_error_as_json() {
    let (code, out) = gwctl(&["lint", "--format", "json", ERRORS], None);
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn lint_reports_github_annotations() {
    let (code, out) = gwctl(&["lint", "--format", "github", ERRORS], None);
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn lint_garbage_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("garbage.kdl");
    std::fs::write(&file, [0xff, 0xfe, 0x00, 0x7b, 0x22, 0x0a, 0x80]).unwrap();
    let (code, out) = gwctl(&["lint", file.to_str().unwrap()], Some(tmp.path()));
    assert_eq!(code, 2, "{out}");
    insta::assert_snapshot!(out);
    std::fs::write(&file, "grant {{{ \"\n\u{0}").unwrap();
    let (code, out) = gwctl(&["lint", file.to_str().unwrap()], Some(tmp.path()));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[syntax]"), "{out}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let (code, out) = gwctl(&["lint", "no/such/dir"], None);
    assert_eq!(code, 2);
    insta::assert_snapshot!(out);
    let (code, _) = gwctl(&["lint"], None);
    assert_eq!(code, 2);
}

#[test]
fn test_runner_output() {
    let (code, out) = gwctl(&["test", "policy-examples/quickstart"], None);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out);
}

#[test]
fn failing_policy_test_exits_1_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text =
        std::fs::read_to_string(repo_root().join("policy-examples/quickstart/policy.kdl")).unwrap();
    text.push_str("\ntest \"wrong expectation\" {\n    principal \"sam@example.com\"\n    groups \"sre\"\n    request resource=\"demo\" sql=\"TRUNCATE customers\"\n    expect \"allow\"\n}\n");
    std::fs::write(tmp.path().join("policy.kdl"), text).unwrap();
    let (code, out) = gwctl(&["test", tmp.path().to_str().unwrap()], Some(tmp.path()));
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn fmt_check_flags_unformatted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.kdl");
    std::fs::write(
        &file,
        "// x\nresource   \"a\" kind=\"tcp\"{\naddress \"h:1\"}\n",
    )
    .unwrap();
    let (code, out) = gwctl(
        &["fmt", "--check", tmp.path().to_str().unwrap()],
        Some(tmp.path()),
    );
    assert_eq!(code, 1, "{out}");
    let (code, _) = gwctl(&["fmt", tmp.path().to_str().unwrap()], Some(tmp.path()));
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "// x\nresource \"a\" kind=\"tcp\" {\n    address \"h:1\"\n}\n"
    );
    let (code, _) = gwctl(
        &["fmt", "--check", tmp.path().to_str().unwrap()],
        Some(tmp.path()),
    );
    assert_eq!(code, 0);
}

#[test]
fn explain_human_and_json() {
    let base = [
        "explain",
        "--policy",
        "policy-examples/multi-team",
        "--principal",
        "olga@example.com",
        "--groups",
        "payments-oncall",
    ];
    let sql = [
        "--resource",
        "orders-db",
        "--sql",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    ];
    let (code, out) = gwctl(&[&base[..], &sql[..]].concat(), None);
    assert_eq!(code, 0);
    insta::assert_snapshot!("explain_human", out);
    let (_, out) = gwctl(
        &[&base[..], &sql[..], &["--format", "json"][..]].concat(),
        None,
    );
    insta::assert_snapshot!("explain_json", out);
    let kube = [
        "--resource",
        "prod-cluster",
        "--verb",
        "delete",
        "--kube-resource",
        "namespaces",
        "--name",
        "checkout",
    ];
    let (_, out) = gwctl(&[&base[..], &kube[..]].concat(), None);
    insta::assert_snapshot!("explain_no_grant", out);
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A pull request that loosens and tightens: the diff names each in words.
#[test]
fn diff_between_git_revisions() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let example = repo_root().join("policy-examples/multi-team");
    copy_dir(&example, &repo.join("policy"));
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "v1"]);
    let edit = |file: &str, from: &str, to: &str| {
        let path = repo.join("policy").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} lacks {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit(
        "teams/payments.kdl",
        "groups \"payments-oncall\" \"sre\"",
        "groups \"payments-oncall\" \"sre\" \"support\"",
    );
    edit("teams/payments.kdl", "quorum=2", "quorum=1");
    edit(
        "teams/sre.kdl",
        "allow \"port-forward\" \"agent-forward\"",
        "allow \"port-forward\"",
    );
    edit(
        "shared/defaults.kdl",
        "detect \"credit-card\" \"email\" \"us-ssn\" \"phone\" \"iban\"",
        "detect \"credit-card\" \"email\"",
    );
    edit(
        "teams/platform.kdl",
        "action \"log\"",
        "action \"review\" approvers=\"platform\"",
    );
    git(repo, &["commit", "-qam", "v2"]);
    let repo_s = repo.to_str().unwrap();
    let (code, out) = gwctl(
        &["diff", "--repo", repo_s, "HEAD~1:policy", "HEAD:policy"],
        Some(repo),
    );
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!("diff_human", out);
    let (_, out) = gwctl(
        &[
            "diff",
            "--repo",
            repo_s,
            "--format",
            "markdown",
            "main~1:policy",
            "main:policy",
        ],
        Some(repo),
    );
    insta::assert_snapshot!("diff_markdown", out);
    let (code, out) = gwctl(
        &["diff", "--repo", repo_s, "nonexistent-rev", "HEAD"],
        Some(repo),
    );
    assert_eq!(code, 2, "{out}");
}

#[test]
fn diff_of_identical_directories_is_empty() {
    let (code, out) = gwctl(
        &[
            "diff",
            "policy-examples/quickstart",
            "policy-examples/quickstart",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("no change in what the policy grants or guards"),
        "{out}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
