//! GitOps: the gateway follows a real Git repository (driven with the `git`
//! CLI) and applies a revision only when it validates and its policy tests
//! pass. See: issue #7.

use gw_e2e::{Gateway, backend, require, text, wait_for};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// v1: on-call and contractors may connect; DELETE is denied.
const V1: &str = r#"
resource "orders" kind="postgres" {
    address "{pg}"
    database "orders"
    credential user="app" password="env:ORDERS_DB_PASSWORD"
    tls mode="verify-full" ca="file:{ca}"
}

grant "oncall" {
    groups "oncall"
    resources "orders"
}

grant "contractors" {
    groups "contractors"
    resources "orders"
}

guard "no-delete" {
    statements "delete"
    action "deny"
    message "no deletes this week"
}

test "on-call may connect" {
    principal "olga@example.com"
    groups "oncall"
    request resource="orders"
    expect "allow"
}
"#;

/// A policy repository on disk, changed with the real `git`.
struct Repo {
    dir: tempfile::TempDir,
    /// Values substituted into every policy written.
    subst: Vec<(String, String)>,
}

impl Repo {
    fn new(subst: Vec<(String, String)>) -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            subst,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args([
                "-c",
                "user.name=Policy Bot",
                "-c",
                "user.email=bot@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn write(&self, policy: &str) {
        let mut policy = policy.to_owned();
        for (k, v) in &self.subst {
            policy = policy.replace(k, v);
        }
        std::fs::create_dir_all(self.path().join("policy")).unwrap();
        std::fs::write(self.path().join("policy/policy.kdl"), policy).unwrap();
        std::fs::write(self.path().join("README.md"), "policy repo\n").unwrap();
    }

    /// Commits `policy` on a branch and merges it into main, as a merged
    /// pull request would; returns main's new commit.
    fn merge(&self, branch: &str, policy: &str, extra: &[&str]) -> String {
        self.git(&["checkout", "-q", "-b", branch]);
        self.write(policy);
        self.git(&["add", "-A"]);
        let mut commit = vec!["commit", "-q", "-m", branch];
        commit.extend_from_slice(extra);
        self.git(&commit);
        self.git(&["checkout", "-q", "main"]);
        self.git(&[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            &format!("Merge {branch}"),
            branch,
        ]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commits straight to main (for the first commit and signed commits).
    fn commit(&self, policy: &str, extra: &[&str]) -> String {
        self.write(policy);
        self.git(&["add", "-A"]);
        let mut commit = vec!["commit", "-q", "-m", "change"];
        commit.extend_from_slice(extra);
        self.git(&commit);
        self.git(&["rev-parse", "HEAD"])
    }
}

struct Env {
    _pg: backend::Postgres,
    repo: Repo,
    gw: Gateway,
    oncall: String,
}

fn status(gw: &Gateway) -> serde_json::Value {
    serde_json::from_str(&gw.admin_get("/status")).unwrap()
}

fn wait_revision(gw: &Gateway, commit: &str) {
    wait_for(15, &format!("revision {commit} in force"), || {
        (status(gw)["policy"]["revision"] == commit).then_some(())
    });
}

fn wait_rejected(gw: &Gateway, commit: &str) -> serde_json::Value {
    wait_for(15, &format!("revision {commit} rejected"), || {
        let s = status(gw);
        (s["policy"]["rejected_revision"]["revision"] == commit).then_some(s)
    })
}

fn setup(source_extra: &str, envs: &[(&str, &str)], first: Option<&[&str]>) -> Option<Env> {
    if !require(&["postgres", "psql", "git"]) {
        return None;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca, &pg.ca_pem).unwrap();
    let repo = Repo::new(vec![
        ("{pg}".into(), pg.cluster.addr()),
        ("{ca}".into(), ca.display().to_string()),
    ]);
    let first_commit = repo.commit(V1, first.unwrap_or(&[]));
    let mut b = Gateway::builder("// unused: the policy comes from Git\n")
        .upstream(&pg, dir.path())
        .policy_source(&format!(
            "policy git=\"{}\" branch=\"main\" path=\"policy\" {source_extra}",
            repo.path().display()
        ));
    for (k, v) in envs {
        b = b.env(k, v);
    }
    let gw = b.start_in(dir);
    wait_revision(&gw, &first_commit);
    Some(Env {
        oncall: gw.token("olga@example.com", &["oncall"]),
        _pg: pg,
        repo,
        gw,
    })
}

fn delete_outcome(e: &Env) -> String {
    text(&e.gw.psql(
        "orders",
        &e.oncall,
        &["-c", "delete from audit_trail where id = -1"],
    ))
}

#[test]
fn merged_changes_apply_within_the_poll_interval_and_bad_ones_are_rejected() {
    let Some(e) = setup("poll=\"1s\"", &[], None) else {
        return;
    };
    assert!(
        delete_outcome(&e).contains("no deletes this week"),
        "{}",
        delete_outcome(&e)
    );

    // A merged pull request that drops the guard takes effect.
    let v2 = V1
        .replace("guard \"no-delete\"", "guard \"no-truncate\"")
        .replace("statements \"delete\"", "statements \"truncate\"");
    let start = Instant::now();
    let c2 = e.repo.merge("allow-deletes", &v2, &[]);
    wait_revision(&e.gw, &c2);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        delete_outcome(&e).contains("DELETE 0"),
        "{}",
        delete_outcome(&e)
    );

    // A broken commit is rejected and reported; the old policy keeps working.
    let c3 = e
        .repo
        .merge("typo", &format!("{v2}\ngrant \"oops\" {{\n"), &[]);
    let s = wait_rejected(&e.gw, &c3);
    assert_eq!(s["policy"]["revision"], c2.as_str(), "{s}");
    let reason = s["policy"]["rejected_revision"]["reason"].as_str().unwrap();
    assert!(reason.contains("error(s) in the policy"), "{reason}");
    assert!(delete_outcome(&e).contains("DELETE 0"));
    let audit = e.gw.audit();
    let rejected = audit
        .iter()
        .find(|a| a["event"] == "policy-rejected" && a["revision"] == c3.as_str())
        .expect("the rejection is audited");
    assert!(rejected["reason"].as_str().unwrap().contains("error"));
    let metrics = e.gw.admin_get("/metrics");
    assert!(
        metrics.contains("gatewayd_policy_revisions_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(e.gw.log().contains("policy revision REJECTED"));
    let bob = e.gw.token("bob@example.com", &["oncall"]);
    let st = text(&e.gw.gwctl(&bob, &["status"]));
    assert!(st.contains(&format!("in force  {c2}")), "{st}");
    assert!(st.contains(&format!("rejected  {c3}")), "{st}");

    // A commit whose policy tests fail is rejected too.
    let failing = v2.replace("expect \"allow\"", "expect \"deny\"");
    let c4 = e.repo.merge("wrong-test", &failing, &[]);
    let s = wait_rejected(&e.gw, &c4);
    let reason = s["policy"]["rejected_revision"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("policy test(s) failed: on-call may connect"),
        "{reason}"
    );
    assert_eq!(s["policy"]["revision"], c2.as_str());

    // Every audit entry carries the revision it was decided under.
    let commands: Vec<_> =
        e.gw.audit()
            .into_iter()
            .filter(|a| a["event"] == "command")
            .collect();
    assert!(commands.iter().any(|a| a["revision"] == c2.as_str()));
    assert!(commands.iter().all(|a| a["revision"].is_string()));
}

/// POSTs to the gateway's API without verifying its development
/// certificate (python's urllib; the test only needs the status).
fn post_refresh(gw: &Gateway, body: &str, signature: &str) -> u16 {
    let script = r#"
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
    headers={"X-Hub-Signature-256": sys.argv[3], "Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, context=ctx).status)
except urllib.error.HTTPError as e:
    print(e.code)
"#;
    let url = format!("https://127.0.0.1:{}/v1/policy/refresh", gw.api_port);
    let out = Command::new("python3")
        .args(["-c", script, &url, body, signature])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", text(&out)))
}

fn hmac_hex(key: &str, msg: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,sys;print(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),'sha256').hexdigest())",
            key,
            msg,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_webhook_triggers_an_immediate_fetch() {
    if !require(&["python3"]) {
        return;
    }
    let Some(e) = setup(
        "poll=\"1h\" webhook-secret=\"env:POLICY_HOOK\"",
        &[("POLICY_HOOK", "hook-key-42")],
        None,
    ) else {
        return;
    };
    let v2 = V1.replace("no deletes this week", "still no deletes");
    let c2 = e.repo.merge("wording", &v2, &[]);
    let body = r#"{"ref":"refs/heads/main"}"#;
    assert_eq!(post_refresh(&e.gw, body, "sha256=00"), 401);
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(
        status(&e.gw)["policy"]["revision"],
        c2.as_str(),
        "a bad signature triggers nothing"
    );
    let sig = format!("sha256={}", hmac_hex("hook-key-42", body));
    let start = Instant::now();
    assert_eq!(post_refresh(&e.gw, body, &sig), 202);
    wait_revision(&e.gw, &c2);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(delete_outcome(&e).contains("still no deletes"));
}

#[test]
fn revoking_a_grant_ends_a_live_psql_session() {
    let Some(e) = setup("poll=\"1s\" revoke-grace=\"1s\"", &[], None) else {
        return;
    };
    let contractor = e.gw.token("cat@example.com", &["contractors"]);
    let mut psql = Command::new("psql")
        .args(["-X", "--no-psqlrc", "-At", "-d", &e.gw.conninfo("orders")])
        .env("PGPASSWORD", &contractor)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = psql.stdin.take().unwrap();
    stdin.write_all(b"select 'connected';\n").unwrap();
    let mut stdout = psql.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"connected\n");

    let revoked = V1.replace(
        "grant \"contractors\" {\n    groups \"contractors\"",
        "grant \"contractors\" {\n    groups \"former-contractors\"",
    );
    let c2 = e.repo.merge("offboard-contractors", &revoked, &[]);
    wait_revision(&e.gw, &c2);
    // Past the grace period, the session is gone; psql learns it at its
    // next statement.
    wait_for(10, "the revocation", || {
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "session-closed" && a["principal"] == "cat@example.com")
            .then_some(())
    });
    let _ = stdin.write_all(b"select 'still here';\n");
    drop(stdin);
    let out = psql.wait_with_output().unwrap();
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!rest.contains("still here"), "{rest}");
    assert!(stderr.contains("revoked by a policy change"), "{stderr}");
    let audit = e.gw.audit();
    let ev = audit
        .iter()
        .find(|a| a["event"] == "access-revoked")
        .expect("access-revoked audited");
    assert_eq!(ev["revision"], c2.as_str());
    // A new connection is refused; the on-call session is unaffected.
    let again = e.gw.psql("orders", &contractor, &["-c", "select 1"]);
    assert!(text(&again).contains("no grant"), "{}", text(&again));
    assert!(delete_outcome(&e).contains("no deletes this week"));
}

#[test]
fn a_restart_with_the_remote_gone_keeps_enforcing_the_cached_revision() {
    let Some(mut e) = setup("poll=\"1s\"", &[], None) else {
        return;
    };
    let commit = e.repo.git(&["rev-parse", "HEAD"]);
    let gone: PathBuf = e.repo.path().with_extension("moved");
    std::fs::rename(e.repo.path(), &gone).unwrap();
    e.gw.restart();
    let s = status(&e.gw);
    assert_eq!(s["policy"]["state"], "active", "{s}");
    assert_eq!(s["policy"]["revision"], commit.as_str(), "{s}");
    wait_for(10, "a failed fetch in the status", || {
        let s = status(&e.gw);
        s["policy"]["last_fetch"]["error"].is_string().then_some(())
    });
    assert!(delete_outcome(&e).contains("no deletes this week"));
    let ok =
        e.gw.psql("orders", &e.oncall, &["-At", "-c", "select 'works'"]);
    assert!(text(&ok).contains("works"), "{}", text(&ok));
    std::fs::rename(&gone, e.repo.path()).unwrap();
}

#[test]
fn signed_mode_accepts_signed_commits_and_rejects_unsigned_ones() {
    if !require(&["ssh-keygen", "git"]) {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("signer");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "bot@example.com",
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("bot@example.com {public}")).unwrap();
    let key_arg = format!("user.signingkey={}", key.display());
    let Some(e) = setup_signed(&signers, &key_arg) else {
        return;
    };
    let unsigned = V1.replace("no deletes this week", "unsigned change");
    let c2 = e.repo.commit(&unsigned, &[]);
    let s = wait_rejected(&e.gw, &c2);
    let reason = s["policy"]["rejected_revision"]["reason"].as_str().unwrap();
    assert!(reason.contains("not signed by an allowed key"), "{reason}");
    assert!(delete_outcome(&e).contains("no deletes this week"));
    let signed = V1.replace("no deletes this week", "signed change");
    let c3 = commit_signed(&e.repo, &signed, &key_arg);
    wait_revision(&e.gw, &c3);
    assert!(delete_outcome(&e).contains("signed change"));
}

/// Commits `policy` to main with an SSH signature by `key_arg`'s key.
fn commit_signed(repo: &Repo, policy: &str, key_arg: &str) -> String {
    repo.write(policy);
    repo.git(&["add", "-A"]);
    repo.git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        key_arg,
        "commit",
        "-q",
        "-S",
        "-m",
        "signed change",
    ]);
    repo.git(&["rev-parse", "HEAD"])
}

fn setup_signed(signers: &Path, key_arg: &str) -> Option<Env> {
    if !require(&["postgres", "psql", "git"]) {
        return None;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca, &pg.ca_pem).unwrap();
    let repo = Repo::new(vec![
        ("{pg}".into(), pg.cluster.addr()),
        ("{ca}".into(), ca.display().to_string()),
    ]);
    let first = commit_signed(&repo, V1, key_arg);
    let gw = Gateway::builder("// unused\n")
        .upstream(&pg, dir.path())
        .policy_source(&format!(
            "policy git=\"{}\" branch=\"main\" path=\"policy\" poll=\"1s\" allowed-signers=\"{}\"",
            repo.path().display(),
            signers.display()
        ))
        .start_in(dir);
    wait_revision(&gw, &first);
    Some(Env {
        oncall: gw.token("olga@example.com", &["oncall"]),
        _pg: pg,
        repo,
        gw,
    })
}

#[test]
fn a_watched_directory_applies_valid_edits_and_rejects_broken_ones() {
    if !require(&["postgres", "psql"]) {
        return;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policy");
    let gw = Gateway::builder(V1)
        .upstream(&pg, dir.path())
        .policy_source(&format!(
            "policy directory=\"{}\" watch=#true",
            policy_dir.display()
        ))
        .start_in(dir);
    let oncall = gw.token("olga@example.com", &["oncall"]);
    let delete = || {
        text(&gw.psql(
            "orders",
            &oncall,
            &["-c", "delete from audit_trail where id = -1"],
        ))
    };
    assert!(delete().contains("no deletes this week"), "{}", delete());
    let file = policy_dir.join("policy.kdl");
    let current = std::fs::read_to_string(&file).unwrap();
    let before = status(&gw)["policy"]["revision"].clone();
    std::fs::write(
        &file,
        current.replace("no deletes this week", "edited live"),
    )
    .unwrap();
    wait_for(10, "the edit to apply", || {
        (status(&gw)["policy"]["revision"] != before).then_some(())
    });
    assert!(delete().contains("edited live"), "{}", delete());
    std::fs::write(&file, "grant \"broken\" {\n").unwrap();
    wait_for(10, "the broken edit to be rejected", || {
        status(&gw)["policy"]["rejected_revision"]["reason"]
            .is_string()
            .then_some(())
    });
    assert!(delete().contains("edited live"), "{}", delete());
}
