//! Identity: a real OpenID provider (npm `oidc-provider`, started by the
//! test), `gwctl login` through the device flow and through the browser
//! code flow with PKCE, to a working `psql` session through the gateway.
//! See: issue #8.

use gw_e2e::{Gateway, backend, require, text, wait_for};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const POLICY: &str = r#"
resource "orders" kind="postgres" {
    address "{pg}"
    database "orders"
    credential user="app" password="env:ORDERS_DB_PASSWORD"
    tls mode="verify-full" ca="file:{ca}"
}

grant "dbas" {
    groups "dba"
    resources "orders"
}
"#;

const CLIENT_SECRET: &str = "gateway-client-secret-0123456789";

/// The OpenID provider: `node tests/e2e/oidc/provider.mjs`.
struct Idp {
    child: Child,
    port: u16,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/oidc")
}

/// The provider's npm package, installed on demand outside CI (CI installs
/// it in `.ci/run`).
fn provider_installed() -> bool {
    if !require(&["node", "npm", "python3"]) {
        return false;
    }
    let module = oidc_dir().join("node_modules/oidc-provider");
    if !module.exists() {
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(oidc_dir())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").is_err(),
                "CI=true: npm install of oidc-provider failed in {}",
                oidc_dir().display()
            );
            eprintln!("SKIPPED: oidc-provider is not installed and npm install failed");
            return false;
        }
    }
    true
}

impl Idp {
    fn start(port: u16, redirect: &str, conform: bool) -> Idp {
        let mut cmd = Command::new("node");
        cmd.arg(oidc_dir().join("provider.mjs"))
            .arg(port.to_string())
            .arg(redirect)
            .current_dir(oidc_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if conform {
            cmd.arg("--conform");
        }
        let mut child = cmd.spawn().expect("node");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the provider did not start");
        // Keep reading: a closed pipe would kill the provider at its next log line.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Idp { child, port }
    }
}

struct Env {
    _pg: backend::Postgres,
    gw: Gateway,
    idp: Option<Idp>,
    idp_port: u16,
    config_dir: tempfile::TempDir,
}

fn env(conform: bool) -> Option<Env> {
    env_opts(conform, false)
}

/// `renewing`: short tokens (5 minutes, under gwctl's renewal threshold)
/// and the `offline_access` scope, so the provider issues refresh tokens.
fn env_opts(conform: bool, renewing: bool) -> Option<Env> {
    if !require(&["postgres", "psql"]) || !provider_installed() {
        return None;
    }
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let idp_port = gw_localpg::free_port().unwrap();
    let api_port = gw_localpg::free_port().unwrap();
    let (scopes, ttl) = if renewing {
        (
            " scopes=\"openid profile email groups offline_access\"",
            "token-ttl \"5m\"\n",
        )
    } else {
        ("", "")
    };
    let identity = format!(
        "{ttl}identity {{\n    oidc issuer=\"http://127.0.0.1:{idp_port}\" client-id=\"gateway\" client-secret=\"env:OIDC_CLIENT_SECRET\" redirect-url=\"https://127.0.0.1:{api_port}/v1/login/callback\"{scopes}\n    map-group \"idp-dba\" to=\"dba\"\n}}\n"
    );
    let gw = Gateway::builder(POLICY)
        .upstream(&pg, dir.path())
        .api_port(api_port)
        .config(&identity)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .start_in(dir);
    let redirect = format!("https://127.0.0.1:{}/v1/login/callback", gw.api_port);
    let idp = Idp::start(idp_port, &redirect, conform);
    assert_eq!(idp.port, idp_port);
    Some(Env {
        _pg: pg,
        gw,
        idp: Some(idp),
        idp_port,
        config_dir: tempfile::tempdir().unwrap(),
    })
}

impl Env {
    fn gwctl(&self) -> Command {
        let mut c = Command::new(gw_e2e::bin("gwctl"));
        c.env(
            "GWCTL_GATEWAY",
            format!("https://127.0.0.1:{}", self.gw.api_port),
        )
        .env("GWCTL_CA", self.gw.state().join("tls/dev-cert.pem"))
        .env("GWCTL_CONFIG_DIR", self.config_dir.path())
        .env_remove("GWCTL_TOKEN");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.gwctl().args(args).output().unwrap()
    }

    /// `gwctl login [--browser]`, with the scripted browser logging in as
    /// `user`; returns gwctl's output.
    fn login(&self, user: &str, browser: bool) -> Output {
        let mut cmd = self.gwctl();
        cmd.arg("login");
        if browser {
            cmd.args(["--browser", "--no-open"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let url = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("gwctl login printed no URL: {seen:?}"));
            seen.push(line.clone());
            if let Some(u) = line.strip_prefix("To log in, open ") {
                break u.trim().to_owned();
            }
        };
        let mode = if browser { "code" } else { "device" };
        let browsed = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/oidc_browser.py"))
            .args([mode, &url, user])
            .output()
            .unwrap();
        assert!(browsed.status.success(), "{}", text(&browsed));
        let out = child.wait_with_output().unwrap();
        let rest: Vec<String> = rx.try_iter().collect();
        seen.extend(rest);
        Output {
            status: out.status,
            stdout: out.stdout,
            stderr: seen.join("\n").into_bytes(),
        }
    }

    fn token(&self) -> String {
        let out = self.run(&["token"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

#[test]
fn device_flow_to_a_working_psql_session_with_groups_from_the_id_token() {
    let Some(e) = env(false) else { return };
    let login = e.login("alice", false);
    assert!(login.status.success(), "{}", text(&login));
    assert!(
        text(&login).contains("as alice@example.com (groups: dba, oncall)"),
        "the provider's idp-dba is mapped to dba: {}",
        text(&login)
    );
    // The token cache is private to the user.
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(e.config_dir.path().join("tokens.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = e.token();
    let out =
        e.gw.psql("orders", &token, &["-At", "-c", "select current_user"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app");
    let status = text(&e.run(&["status"]));
    assert!(status.contains("you         alice@example.com"), "{status}");
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| a["event"] == "token-issued"
        && a["method"] == "oidc-device"
        && a["principal"] == "alice@example.com"));
    // `gwctl connect` prints the one-liner, and runs it.
    let print = text(&e.run(&["connect", "orders", "--print"]));
    assert!(print.contains("psql \"host=127.0.0.1"), "{print}");
    assert!(print.contains("dbname=orders"), "{print}");
    let connected = e
        .gwctl()
        .args([
            "connect",
            "orders",
            "--",
            "-At",
            "-c",
            "select 'via connect'",
        ])
        .output()
        .unwrap();
    assert!(
        text(&connected).contains("via connect"),
        "{}",
        text(&connected)
    );
}

#[test]
fn code_flow_with_pkce_through_the_loopback_redirect() {
    let Some(e) = env(false) else { return };
    let login = e.login("alice", true);
    assert!(login.status.success(), "{}", text(&login));
    let token = e.token();
    let out = e.gw.psql("orders", &token, &["-At", "-c", "select 'in'"]);
    assert!(text(&out).contains("in"), "{}", text(&out));
    assert!(
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "token-issued" && a["method"] == "oidc-code")
    );
    // A handoff cannot be redeemed without the CLI's secret.
    let forged = Command::new("python3")
        .args([
            "-c",
            "import json,ssl,sys,urllib.request,urllib.error\nctx=ssl._create_unverified_context()\nr=urllib.request.Request(sys.argv[1],data=json.dumps({'handoff':'00','secret':'x'}).encode(),method='POST')\ntry: print(urllib.request.urlopen(r,context=ctx).status)\nexcept urllib.error.HTTPError as e: print(e.code)",
            &format!("https://127.0.0.1:{}/v1/login/handoff", e.gw.api_port),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&forged.stdout).trim(), "404");
}

#[test]
fn groups_come_from_userinfo_when_the_id_token_has_none() {
    let Some(e) = env(true) else { return };
    let login = e.login("alice", false);
    assert!(
        text(&login).contains("(groups: dba, oncall)"),
        "{}",
        text(&login)
    );
    let out = e.gw.psql("orders", &e.token(), &["-At", "-c", "select 1"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_user_without_the_group_is_refused() {
    let Some(e) = env(false) else { return };
    let login = e.login("dave", false);
    assert!(
        text(&login).contains("(groups: developers)"),
        "{}",
        text(&login)
    );
    let out = e.gw.psql("orders", &e.token(), &["-c", "select 1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no grant gives dave@example.com access"),
        "{}",
        text(&out)
    );
}

/// Mints a token with the gateway's key and unusual claims.
fn odd_token(gw: &Gateway, args: &[&str]) -> String {
    let out = Command::new(gw_e2e::bin("gatewayd"))
        .args([
            "--config",
            gw.dir.path().join("gatewayd.kdl").to_str().unwrap(),
            "token",
            "--principal",
            "mallory@example.com",
            "--groups",
            "dba",
            "--ttl",
            "1h",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn bad_tokens_are_refused_with_a_clear_message() {
    let Some(mut e) = env(false) else { return };
    let refused = |gw: &Gateway, token: &str, expect: &str| {
        let out = gw.psql("orders", token, &["-c", "select 1"]);
        assert!(!out.status.success(), "{expect}: {}", text(&out));
        assert!(text(&out).contains(expect), "{expect}: {}", text(&out));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = odd_token(&e.gw, &["--issued-at", &(now - 7300).to_string()]);
    refused(&e.gw, &expired, "token expired");
    // One character of the signature changed (in its middle: the last
    // base64 character carries padding bits).
    let good = odd_token(&e.gw, &[]);
    let mut forged: Vec<char> = good.chars().collect();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    refused(&e.gw, &forged, "signature is invalid");
    refused(
        &e.gw,
        &odd_token(&e.gw, &["--audience", "another-service"]),
        "token is for another audience",
    );
    refused(
        &e.gw,
        &odd_token(&e.gw, &["--algorithm", "HS256"]),
        "claims algorithm \"HS256\"",
    );
    refused(
        &e.gw,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.",
        "this is a JWT",
    );
    refused(&e.gw, "hunter2", "the password is not a gateway token");
    // Revoked: log in, log out, and the old token is refused on its next
    // connection.
    let login = e.login("alice", false);
    assert!(login.status.success(), "{}", text(&login));
    let token = e.token();
    let ok = e.gw.psql("orders", &token, &["-c", "select 1"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let logout = e.run(&["logout"]);
    assert!(logout.status.success(), "{}", text(&logout));
    refused(&e.gw, &token, "has been revoked");
    // Revocation survives a restart.
    e.gw.restart();
    refused(&e.gw, &token, "has been revoked");
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| a["event"] == "tokens-revoked"));
    assert!(
        audit
            .iter()
            .filter(|a| a["event"] == "authentication-failed")
            .count()
            >= 7
    );
}

#[test]
fn an_unreachable_provider_does_not_break_issued_tokens() {
    let Some(mut e) = env(false) else { return };
    let login = e.login("alice", false);
    assert!(login.status.success(), "{}", text(&login));
    let token = e.token();
    drop(e.idp.take());
    let out =
        e.gw.psql("orders", &token, &["-At", "-c", "select 'still works'"]);
    assert!(text(&out).contains("still works"), "{}", text(&out));
    let again = e.run(&["login"]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains(&format!(
            "the identity provider at http://127.0.0.1:{} is unreachable",
            e.idp_port
        )),
        "{}",
        text(&again)
    );
}

#[test]
fn rotating_the_token_key_keeps_issued_tokens_valid() {
    let Some(mut e) = env(false) else { return };
    let old = e.gw.token("olga@example.com", &["dba"]);
    let rotated = Command::new(gw_e2e::bin("gatewayd"))
        .args([
            "--config",
            e.gw.dir.path().join("gatewayd.kdl").to_str().unwrap(),
            "rotate-token-key",
        ])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", text(&rotated));
    e.gw.restart();
    let new = e.gw.token("olga@example.com", &["dba"]);
    assert_ne!(
        kid(&old),
        kid(&new),
        "the new token is signed by the new key"
    );
    for t in [&old, &new] {
        let out = e.gw.psql("orders", t, &["-At", "-c", "select 1"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    wait_for(5, "the rotation in the audit log", || {
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "token-key-rotated")
            .then_some(())
    });
}

/// The key id a token names.
fn kid(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,json,sys;p=sys.argv[1];print(json.loads(base64.urlsafe_b64decode(p+'='*(-len(p)%4)))['kid'])",
            payload,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn service_accounts_and_break_glass_log_in_with_secrets_from_policy() {
    if !require(&["postgres", "psql"]) {
        return;
    }
    let new_secret = |args: &[&str]| {
        let out = Command::new(gw_e2e::bin("gwctl"))
            .args(["secret", "new"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let block: String = stderr
            .lines()
            .skip_while(|l| !l.ends_with('{'))
            .take(4)
            .collect::<Vec<_>>()
            .join("\n");
        (secret, block)
    };
    let (ci_secret, ci_block) = new_secret(&["--name", "ci"]);
    let (bg_secret, bg_block) = new_secret(&["--name", "emergency", "--break-glass"]);
    assert!(
        ci_block.starts_with("service-account \"ci\" {"),
        "{ci_block}"
    );
    assert!(
        !ci_block.contains(&ci_secret),
        "only the hash goes into policy"
    );
    let policy = format!(
        "{POLICY}\n{}\n{}\n",
        ci_block.replace("GROUP", "dba"),
        bg_block.replace("GROUP", "dba")
    );
    let pg = backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::builder(&policy)
        .upstream(&pg, dir.path())
        .start_in(dir);
    let config = tempfile::tempdir().unwrap();
    let login = |args: &[&str], secret: &str| {
        Command::new(gw_e2e::bin("gwctl"))
            .arg("login")
            .args(args)
            .env(
                "GWCTL_GATEWAY",
                format!("https://127.0.0.1:{}", gw.api_port),
            )
            .env("GWCTL_CA", gw.state().join("tls/dev-cert.pem"))
            .env("GWCTL_CONFIG_DIR", config.path())
            .env("GWCTL_SECRET", secret)
            .output()
            .unwrap()
    };
    let wrong = login(&["--service-account", "ci"], "gws_wrong");
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("unknown account or wrong secret"));
    let ok = login(&["--service-account", "ci"], &ci_secret);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("as service-account:ci (groups: dba)"),
        "{}",
        text(&ok)
    );
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("tokens.json")).unwrap()).unwrap();
    let token = cache.as_object().unwrap().values().next().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = gw.psql("orders", &token, &["-At", "-c", "select 'automation'"]);
    assert!(text(&out).contains("automation"), "{}", text(&out));

    let bg = login(&["--break-glass", "emergency"], &bg_secret);
    assert!(bg.status.success(), "{}", text(&bg));
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("tokens.json")).unwrap()).unwrap();
    let token = cache.as_object().unwrap().values().next().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = gw.psql("orders", &token, &["-At", "-c", "select 'glass broken'"]);
    assert!(text(&out).contains("glass broken"), "{}", text(&out));
    let audit = gw.audit();
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "break-glass-used" && a["account"] == "emergency")
    );
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "break-glass-session"
                && a["principal"] == "break-glass:emergency")
    );
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "token-issued" && a["method"] == "service-account")
    );
    assert!(gw.log().contains("BREAK-GLASS login"));
    assert!(
        gw.admin_get("/metrics")
            .contains("gatewayd_break_glass_logins_total 1")
    );
    let recs = gw.wait_recordings(2);
    let marked = recs.iter().any(|r| {
        let export = text(&gw_e2e::replay(&[
            "export",
            "--format",
            "v3",
            r.to_str().unwrap(),
        ]));
        export.contains("break-glass:session principal=break-glass:emergency")
    });
    assert!(marked, "the break-glass session's recording is marked");
}

#[test]
fn a_token_about_to_expire_is_renewed_through_the_provider() {
    let Some(e) = env_opts(false, true) else {
        return;
    };
    let login = e.login("alice", false);
    assert!(login.status.success(), "{}", text(&login));
    let cache = || -> serde_json::Value {
        let c: serde_json::Value = serde_json::from_slice(
            &std::fs::read(e.config_dir.path().join("tokens.json")).unwrap(),
        )
        .unwrap();
        c.as_object().unwrap().values().next().unwrap().clone()
    };
    let before = cache();
    // Five-minute tokens are inside gwctl's ten-minute renewal window.
    let renewed = e.token();
    let after = cache();
    assert_ne!(before["token_id"], after["token_id"], "renewed");
    assert_eq!(after["token"], renewed.as_str());
    assert_eq!(after["groups"], serde_json::json!(["dba", "oncall"]));
    let out =
        e.gw.psql("orders", &renewed, &["-At", "-c", "select 'renewed'"]);
    assert!(text(&out).contains("renewed"), "{}", text(&out));
    assert!(
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "token-issued" && a["method"] == "oidc-refresh")
    );
}
