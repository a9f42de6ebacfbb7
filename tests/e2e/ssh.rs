//! `ssh`, `scp` and `sftp` → gatewayd → a real OpenSSH `sshd` started by
//! the test, all real. See: issue #6.

use gw_e2e::sshd::Sshd;
use gw_e2e::{Gateway, replay, require, require_python, text};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn policy(sshd: &Sshd, host_key: &str) -> String {
    format!(
        r#"
resource "web" kind="ssh" {{
    address "127.0.0.1:{port}"
    credential user="root" key="file:{key}"
    host-key "{host_key}"
}}

resource "web-wrong-pin" kind="ssh" {{
    address "127.0.0.1:{port}"
    credential user="root" key="file:{key}"
    host-key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmBzQ4bq6o1yqYV1W4cZBhOSdnkmJ0uPdPzTlrLMJJ3 other"
}}

grant "oncall" {{
    groups "oncall"
    resources "web" "web-wrong-pin"
    allow "port-forward" "remote-forward" "agent-forward"
}}

grant "readers" {{
    groups "readers"
    resources "web"
}}

guard "no-rm-rf" {{
    protocols "ssh"
    commands "rm -rf *" "*shutdown*"
    action "deny"
    message "destructive commands are not allowed through the gateway"
}}

guard "no-sftp-deletes" {{
    protocols "ssh"
    commands "sftp remove *"
    action "deny"
    message "deletes over sftp need a ticket"
}}

guard "touch-needs-review" {{
    protocols "ssh"
    commands "touch *"
    action "review" approvers="dba" quorum=1 timeout="2m"
}}

mask "secrets" {{
    detect "credit-card" "aws-access-key"
    style "full"
}}
"#,
        port = sshd.port,
        key = sshd.key().display(),
    )
}

struct Env {
    sshd: Sshd,
    gw: Gateway,
    ssh_port: u16,
    oncall: String,
    askpass: tempfile::TempDir,
}

fn env() -> Option<Env> {
    env_watched(false)
}

/// `watched`: the policy directory is watched, and revoked grants end
/// sessions after one second.
fn env_watched(watched: bool) -> Option<Env> {
    env_configured(watched, "")
}

/// `extra`: more lines for the bootstrap configuration.
fn env_configured(watched: bool, extra: &str) -> Option<Env> {
    if !require(&["ssh", "scp", "sftp", "ssh-keygen", "/usr/sbin/sshd", "tmux"]) {
        return None;
    }
    let sshd = Sshd::start();
    let ssh_port = gw_localpg::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Gateway::builder(&policy(&sshd, &sshd.host_pub))
        .config(&format!("listen ssh=\"127.0.0.1:{ssh_port}\"\n{extra}"));
    if watched {
        b = b.policy_source(&format!(
            "policy directory=\"{}\" watch=#true revoke-grace=\"1s\"",
            dir.path().join("policy").display()
        ));
    }
    let gw = b.start_in(dir);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", ssh_port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "ssh listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    let askpass = tempfile::tempdir().unwrap();
    let script = askpass.path().join("askpass.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$GW_TOKEN\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    Some(Env {
        oncall: gw.token("olga@example.com", &["oncall"]),
        sshd,
        gw,
        ssh_port,
        askpass,
    })
}

impl Env {
    /// A client command (`ssh`, `scp`, `sftp`) that logs in with `token`.
    fn client(&self, program: &str, token: &str) -> Command {
        self.client_logging(program, token, "ERROR")
    }

    /// The same, with the client's own messages down to `level` (the
    /// first value ssh is given for an option is the one it keeps).
    fn client_logging(&self, program: &str, token: &str, level: &str) -> Command {
        let mut c = Command::new(program);
        let port_flag = if program == "ssh" { "-p" } else { "-P" };
        c.args([port_flag, &self.ssh_port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                &format!("LogLevel={level}"),
                // `sftp -b` turns batch mode on, which would forbid asking
                // for the token; ssh takes the first value given.
                "-o",
                "BatchMode=no",
            ])
            .env("SSH_ASKPASS", self.askpass.path().join("askpass.sh"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .env("GW_TOKEN", token)
            .stdin(Stdio::null());
        c
    }

    /// A fresh session still runs a command.
    fn still_serving(&self) {
        let ok = self.ssh(&self.oncall, "web", &["echo still fine"]);
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout),
            "still fine\n",
            "{}",
            text(&ok)
        );
    }

    fn ssh(&self, token: &str, resource: &str, args: &[&str]) -> Output {
        self.client("ssh", token)
            .args(["-l", resource, "127.0.0.1"])
            .args(args)
            .output()
            .unwrap()
    }
}

#[test]
fn exec_passes_output_and_exit_status_and_masks_secrets() {
    let Some(e) = env() else { return };
    let out = e.ssh(
        &e.oncall,
        "web",
        &["echo hello from $(hostname -s >/dev/null; echo target); echo card 4111111111111111 >&2; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from target\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("card [REDACTED:credit-card]"), "{stderr}");
    assert!(!stderr.contains("4111111111111111"), "{stderr}");
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| {
        a["event"] == "command"
            && a["verdict"] == "allow"
            && a["command"]
                .as_str()
                .unwrap_or("")
                .starts_with("echo hello")
    }));
    // Nothing secret in the audit log or the gateway's log.
    let key = std::fs::read_to_string(e.sshd.key()).unwrap();
    let secret_line = key.lines().nth(1).unwrap();
    assert!(!e.gw.log().contains(secret_line));
}

#[test]
fn clients_get_aes_gcm_unless_the_configuration_offers_more() {
    let Some(e) = env() else { return };
    let cipher = |e: &Env, c: &str| {
        // "Unable to negotiate ... no matching cipher" is an INFO message.
        e.client_logging("ssh", &e.oncall, "INFO")
            .args(["-c", c, "-l", "web", "127.0.0.1", "echo ok"])
            .output()
            .unwrap()
    };
    // With AES instructions only AES-GCM is offered, and a client insisting
    // on chacha20 is told so by ssh itself.
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = flags.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let aes = ["aes", "pclmulqdq"]
        .iter()
        .all(|f| flags.split_whitespace().any(|w| w == *f));
    let out = cipher(&e, "chacha20-poly1305@openssh.com");
    if aes {
        assert_eq!(out.status.code(), Some(255), "{}", text(&out));
        assert!(text(&out).contains("no matching cipher"), "{}", text(&out));
    } else {
        eprintln!("NOTE: no AES instructions here; chacha20-poly1305 is offered");
        says_ok(&out);
    }
    for c in ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] {
        let out = cipher(&e, c);
        says_ok(&out);
    }
    // Plain `ssh`, with OpenSSH's own preference, logs in too.
    let out = e.ssh(&e.oncall, "web", &["echo ok"]);
    says_ok(&out);
    drop(e);

    let Some(e) = env_configured(
        false,
        "ssh-ciphers \"chacha20-poly1305@openssh.com\" \"aes128-ctr\"",
    ) else {
        return;
    };
    let out = cipher(&e, "chacha20-poly1305@openssh.com");
    says_ok(&out);
    let out = cipher(&e, "aes128-ctr");
    says_ok(&out);
    let out = cipher(&e, "aes128-gcm@openssh.com");
    assert!(text(&out).contains("no matching cipher"), "{}", text(&out));
}

/// The command ran and printed `ok`.
fn says_ok(out: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        text(out)
    );
}

#[test]
fn a_denied_exec_never_starts_and_says_why() {
    let Some(e) = env() else { return };
    let marker = e.sshd.dir.path().join("must-survive");
    std::fs::write(&marker, "x").unwrap();
    let out = e.ssh(&e.oncall, "web", &[&format!("rm -rf {}", marker.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("destructive commands are not allowed through the gateway"),
        "{}",
        text(&out)
    );
    assert!(marker.exists(), "the command never reached the target");
}

#[test]
fn refusals_bad_tokens_grants_and_host_keys() {
    let Some(e) = env() else { return };
    // A bad token fails authentication (ssh exits 255).
    let out = e.ssh("not-a-token", "web", &["true"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    // No grant: told why, exit 1.
    let nobody = e.gw.token("nobody@example.com", &["visitors"]);
    let out = e.ssh(&nobody, "web", &["true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no grant gives nobody@example.com access"),
        "{}",
        text(&out)
    );
    // A target whose host key does not match its pin is never logged into.
    let out = e.ssh(&e.oncall, "web-wrong-pin", &["true"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach \"web-wrong-pin\""),
        "{}",
        text(&out)
    );
    assert!(
        e.gw.log().contains("matches no pinned key"),
        "{}",
        e.gw.log()
    );
    let audit = e.gw.audit();
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "authentication-failed" && a["protocol"] == "ssh")
    );
}

#[test]
fn a_pty_session_is_recorded_and_accepted_by_asciinema() {
    let Some(e) = env() else { return };
    let session = format!("gw-ssh-{}", e.ssh_port);
    let mut cmd = e.client("ssh", &e.oncall);
    cmd.args(["-tt", "-l", "web", "127.0.0.1"]);
    let line: Vec<String> = std::iter::once(cmd.get_program().to_string_lossy().into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .map(|a| format!("'{a}'"))
        .collect();
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            Some(format!(
                "{}='{}'",
                k.to_string_lossy(),
                v?.to_string_lossy()
            ))
        })
        .collect();
    let shell = format!("env {} {}", envs.join(" "), line.join(" "));
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .output()
            .unwrap()
    };
    let started = tmux(&["new-session", "-d", "-x", "100", "-y", "30", &shell]);
    assert!(started.status.success(), "{}", text(&started));
    let pane = || text(&tmux(&["capture-pane", "-p"]));
    let wait_pane = |needle: &str| {
        let start = Instant::now();
        loop {
            let p = pane();
            if p.contains(needle) {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{needle} not in:\n{p}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    tmux(&["send-keys", "echo the answer is $((6*7))", "Enter"]);
    wait_pane("the answer is 42");
    tmux(&["resize-window", "-x", "120", "-y", "40"]);
    tmux(&["send-keys", "stty size", "Enter"]);
    wait_pane("40 120");
    tmux(&["send-keys", "exit", "Enter"]);
    let start = Instant::now();
    while tmux(&["has-session"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssh did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let recs = e.gw.wait_recordings(1);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = recs[0].to_str().unwrap();
    let verified = replay(&[
        "verify",
        "--require-trailer",
        "--key",
        e.gw.recording_key().to_str().unwrap(),
        rec,
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    let cat = text(&replay(&["cat", rec]));
    assert!(cat.contains("the answer is 42"), "{cat}");
    let export = text(&replay(&["export", "--format", "v3", rec]));
    assert!(
        export.contains("\"r\", \"120x40\"") || export.contains("\"r\",\"120x40\""),
        "{export}"
    );
    assert!(export.contains("shell:input line="), "{export}");
    // The real asciinema reads it.
    if require(&["asciinema", "zstd"]) {
        let converted = Command::new("sh")
            .args([
                "-c",
                &format!("zstd -dc '{rec}' | asciinema convert -f txt - -"),
            ])
            .output()
            .unwrap();
        assert!(converted.status.success(), "{}", text(&converted));
        assert!(text(&converted).contains("the answer is 42"));
    }
    assert!(
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "shell-input" && a["line"] == "echo the answer is $((6*7))")
    );
}

/// A TCP service that greets every connection with `msg`; its port.
fn greeter(msg: &'static [u8]) -> u16 {
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write as _;
        for s in service.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(msg);
        }
    });
    port
}

impl Env {
    /// Runs `ssh -N -L|-R 127.0.0.1:PORT:127.0.0.1:service` with `token`
    /// and returns what a connection to PORT reads ("" if the forward
    /// never came up).
    fn forward(&self, token: &str, flag: &str, service: u16) -> String {
        use std::io::Read as _;
        let port = gw_localpg::free_port().unwrap();
        let mut child = self
            .client("ssh", token)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", flag])
            .arg(format!("127.0.0.1:{port}:127.0.0.1:{service}"))
            .args(["-l", "web", "127.0.0.1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let got = loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                break buf;
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || start.elapsed() > Duration::from_secs(10) {
                break String::new();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        got
    }
}

#[test]
fn port_forwards_follow_the_grant() {
    let Some(e) = env() else { return };
    // A TCP service on the target side.
    let service = greeter(b"hello through the forward\n");
    assert_eq!(
        e.forward(&e.oncall, "-L", service),
        "hello through the forward\n"
    );
    let reader = e.gw.token("rita@example.com", &["readers"]);
    assert_eq!(
        e.forward(&reader, "-L", service),
        "",
        "no grant allows readers to forward"
    );
    let audit = e.gw.audit();
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "port-forward" && a["allowed"] == true)
    );
    assert!(
        audit
            .iter()
            .any(|a| a["event"] == "port-forward" && a["allowed"] == false)
    );
}

#[test]
fn scp_both_modes_and_sftp_batch() {
    let Some(e) = env() else { return };
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("upload.txt");
    std::fs::write(&src, "payload 123\n").unwrap();
    let remote_dir = e.sshd.dir.path().join("remote");
    std::fs::create_dir_all(&remote_dir).unwrap();
    for (mode, name) in [(None, "sftp-mode.txt"), (Some("-O"), "legacy.txt")] {
        let mut c = e.client("scp", &e.oncall);
        if let Some(m) = mode {
            c.arg(m);
        }
        let out = c
            .arg(&src)
            .arg(format!("web@127.0.0.1:{}", remote_dir.join(name).display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "scp {mode:?}: {}", text(&out));
        assert_eq!(
            std::fs::read_to_string(remote_dir.join(name)).unwrap(),
            "payload 123\n"
        );
        let back = local.path().join(format!("back-{name}"));
        let mut c = e.client("scp", &e.oncall);
        if let Some(m) = mode {
            c.arg(m);
        }
        let out = c
            .arg(format!("web@127.0.0.1:{}", remote_dir.join(name).display()))
            .arg(&back)
            .output()
            .unwrap();
        assert!(out.status.success(), "scp back {mode:?}: {}", text(&out));
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload 123\n");
    }
    let batch = local.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nls {}\n-rm {}\n",
            src.display(),
            remote_dir.join("via-sftp.txt").display(),
            remote_dir.display(),
            remote_dir.join("via-sftp.txt").display()
        ),
    )
    .unwrap();
    let out = e
        .client("sftp", &e.oncall)
        .arg("-b")
        .arg(&batch)
        .arg("web@127.0.0.1")
        .output()
        .unwrap();
    assert!(out.status.success(), "sftp: {}", text(&out));
    // The guard refused the delete: answered "permission denied" by the
    // gateway, never sent to the target.
    assert!(remote_dir.join("via-sftp.txt").exists());
    assert!(
        text(&out).to_lowercase().contains("permission denied"),
        "{}",
        text(&out)
    );
    // Every transfer is in the audit log with its name and size.
    let ops: Vec<String> =
        e.gw.audit()
            .iter()
            .filter(|a| a["event"] == "file-transfer")
            .map(|a| a["operation"].as_str().unwrap_or("").to_owned())
            .collect();
    let at = |name: &str| remote_dir.join(name).display().to_string();
    for expected in [
        format!("upload path=\"{}\" bytes=12", at("sftp-mode.txt")),
        format!("download path=\"{}\" bytes=12", at("sftp-mode.txt")),
        format!("upload path=\"{}\" bytes=12", at("legacy.txt")),
        format!("download path=\"{}\" bytes=12", at("legacy.txt")),
        format!("upload path=\"{}\" bytes=12", at("via-sftp.txt")),
        format!(
            "denied request=\"sftp remove {}\" reason=\"guard \\\"no-sftp-deletes\\\": deletes over sftp need a ticket\"",
            at("via-sftp.txt")
        ),
    ] {
        assert!(ops.contains(&expected), "{expected} not in {ops:#?}");
    }
    // The recordings show the operations, not the files' bytes.
    let recs = e.gw.wait_recordings(5);
    let all: String = recs
        .iter()
        .map(|r| text(&replay(&["cat", r.to_str().unwrap()])))
        .collect();
    assert!(all.contains("[file] upload path="), "{all}");
    assert!(!all.contains("payload 123"), "{all}");
}

/// Bulk sftp and scp downloads with many requests in flight: every byte
/// arrives and nothing stalls. (A bridge that waited on one direction's
/// send without reading the other could deadlock with russh, whose session
/// stops reading the network while the bridge's queue is full.)
#[test]
fn bulk_downloads_with_many_requests_in_flight_never_stall() {
    let Some(e) = env() else { return };
    let file = e.sshd.dir.path().join("big.bin");
    let size: u64 = 96 << 20;
    std::fs::File::create(&file).unwrap().set_len(size).unwrap();
    let local = tempfile::tempdir().unwrap();
    for requests in ["64", "512"] {
        let dest = local.path().join(format!("got-{requests}"));
        let batch = local.path().join("batch");
        std::fs::write(
            &batch,
            format!("get {} {}\n", file.display(), dest.display()),
        )
        .unwrap();
        let mut c = e.client("sftp", &e.oncall);
        c.args(["-R", requests, "-B", "32768", "-b"])
            .arg(&batch)
            .arg("web@127.0.0.1");
        let out = run_with_timeout(c, Duration::from_secs(60));
        assert!(out.status.success(), "sftp -R {requests}: {}", text(&out));
        assert_eq!(
            std::fs::metadata(&dest).unwrap().len(),
            size,
            "sftp -R {requests}"
        );
    }
    let dest = local.path().join("got-scp");
    let mut c = e.client("scp", &e.oncall);
    c.arg(format!("web@127.0.0.1:{}", file.display()))
        .arg(&dest);
    let out = run_with_timeout(c, Duration::from_secs(60));
    assert!(out.status.success(), "scp: {}", text(&out));
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), size, "scp");
}

/// Runs `cmd`, killing it (and failing) if it takes longer than `limit`.
/// Output goes to files: a pipe would be held open by the `ssh` that
/// `sftp` and `scp` start, past their own death.
fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let args: Vec<_> = cmd.get_args().collect();
            panic!(
                "{:?} {args:?} stalled for {limit:?}: {}",
                cmd.get_program(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}

#[test]
fn a_gateway_certificate_needs_no_prompt_and_dies_with_its_token() {
    let Some(e) = env() else { return };
    let config = tempfile::tempdir().unwrap();
    let gwctl = |args: &[&str]| {
        Command::new(gw_e2e::bin("gwctl"))
            .args(args)
            .env(
                "GWCTL_GATEWAY",
                format!("https://127.0.0.1:{}", e.gw.api_port),
            )
            .env("GWCTL_CA", e.gw.state().join("tls/dev-cert.pem"))
            .env("GWCTL_CONFIG_DIR", config.path())
            .env("GWCTL_TOKEN", &e.oncall)
            .output()
            .unwrap()
    };
    let cert = gwctl(&["ssh-cert"]);
    assert!(cert.status.success(), "{}", text(&cert));
    let key = config.path().join("id_ed25519");
    assert!(key.with_file_name("id_ed25519-cert.pub").exists());
    let with_cert = || {
        Command::new("ssh")
            .args(["-i", key.to_str().unwrap()])
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-p",
                &e.ssh_port.to_string(),
                "-l",
                "web",
                "127.0.0.1",
                "echo via certificate",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = with_cert();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via certificate\n");
    let print = text(&gwctl(&["connect", "web", "--print"]));
    assert!(
        print.contains("ssh -i") && print.contains("-l web"),
        "{print}"
    );
    // Revoking the token revokes the certificate issued with it.
    let revoke = Command::new("python3")
        .args([
            "-c",
            "import ssl,sys,urllib.request\nctx=ssl._create_unverified_context()\nr=urllib.request.Request(sys.argv[1],data=b'{}',method='POST',headers={'Authorization':'Bearer '+sys.argv[2]})\nprint(urllib.request.urlopen(r,context=ctx).status)",
            &format!("https://127.0.0.1:{}/v1/logout", e.gw.api_port),
            &e.oncall,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&revoke.stdout).trim(),
        "200",
        "{}",
        text(&revoke)
    );
    let out = with_cert();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "ssh-certificate-issued")
    );
}

#[test]
fn an_exec_that_needs_review_is_held_until_approved() {
    use std::io::BufRead as _;
    let Some(e) = env() else { return };
    let marker = e.sshd.dir.path().join("approved-marker");
    let mut child = e
        .client("ssh", &e.oncall)
        .args([
            "-l",
            "web",
            "127.0.0.1",
            &format!("touch {}", marker.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let id = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no hold notice");
        if let Some(i) = line.find("held for review rv-") {
            break line[i + 16..i + 29].to_owned();
        }
    };
    assert!(!marker.exists(), "nothing runs before approval");
    let bob = e.gw.token("bob@example.com", &["dba"]);
    let approve = e.gw.gwctl(
        &bob,
        &["review", "approve", &id, "--reason", "expected restart"],
    );
    assert!(approve.status.success(), "{}", text(&approve));
    let status = child.wait().unwrap();
    assert!(status.success(), "ssh exited with {status}");
    assert!(marker.exists(), "the command ran after approval");
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| a["event"] == "review"
        && a["action"] == "approved"
        && a["review"] == id.as_str()));
    let recs = e.gw.wait_recordings(1);
    let export = text(&replay(&[
        "export",
        "--format",
        "v3",
        recs[0].to_str().unwrap(),
    ]));
    assert!(
        export.contains(&format!("review:approved id={id}")),
        "{export}"
    );
}

#[test]
fn revoking_the_grant_ends_a_live_ssh_session() {
    let Some(e) = env_watched(true) else { return };
    let start = Instant::now();
    let child = e
        .client("ssh", &e.oncall)
        .args(["-l", "web", "127.0.0.1", "echo started; sleep 60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    gw_e2e::wait_for(20, "the ssh session to open", || {
        e.gw.audit()
            .iter()
            .any(|a| a["event"] == "session-opened" && a["protocol"] == "ssh")
            .then_some(())
    });
    let file = e.gw.dir.path().join("policy/policy.kdl");
    let text_now = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text_now.replace("groups \"oncall\"", "groups \"former-oncall\""),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "ended long before `sleep 60`"
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        text(&out).contains("access revoked by a policy change"),
        "{}",
        text(&out)
    );
    assert!(e.gw.audit().iter().any(|a| a["event"] == "access-revoked"));
}

#[test]
fn garbage_and_login_floods_end_only_their_own_connection() {
    use std::io::{Read as _, Write as _};
    let Some(e) = env() else { return };
    // Garbage after the version exchange: the gateway ends that connection.
    for junk in [
        vec![0xffu8; 4096],
        // A binary packet claiming 2 GiB.
        vec![0x7f, 0xff, 0xff, 0xff, 0x05, 0x14, 0, 0],
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", e.ssh_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut banner = [0u8; 64];
        let _ = s.read(&mut banner);
        s.write_all(b"SSH-2.0-fuzz\r\n").unwrap();
        let _ = s.write_all(&junk);
        let mut rest = Vec::new();
        // Closed (EOF or reset) rather than left hanging until the timeout.
        if let Err(err) = s.read_to_end(&mut rest) {
            assert!(
                !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the connection was left hanging: {err}"
            );
        }
    }
    // Three wrong tokens on one connection: each rejection costs time.
    let start = Instant::now();
    let out = e
        .client("ssh", "gwt1.not.valid")
        .args([
            "-o",
            "NumberOfPasswordPrompts=3",
            "-l",
            "web",
            "127.0.0.1",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "rejections are slowed down"
    );
    // Everyone else is fine.
    e.still_serving();
}

#[test]
fn absurd_window_packet_and_pty_sizes_end_cleanly_or_just_work() {
    if !require_python("paramiko", "paramiko") {
        return;
    }
    let Some(e) = env() else { return };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/absurd_ssh.py");
    let out = Command::new("python3")
        .args([script, &e.ssh_port.to_string(), "web", &e.oncall])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let line = |case: &str| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(&format!("{case} ")))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    // The largest window and packet sizes, and window adjustments past
    // 2^32-1, change nothing: 4 MiB arrive whole.
    assert_eq!(line("huge-window"), "huge-window ok", "{report}");
    assert_eq!(line("tiny-packets"), "tiny-packets ok", "{report}");
    // A pty of 2^32-1 columns and rows works; the recording clamps it.
    assert_eq!(line("huge-pty"), "huge-pty ok", "{report}");
    // A maximum packet size of 0 ends that connection; the next one works.
    assert!(
        line("zero-packet").starts_with("zero-packet ok ended"),
        "{report}"
    );
    // The gateway is still up for everyone else.
    e.still_serving();
    assert!(!e.gw.log().contains("panicked"), "{}", e.gw.log());
}

#[test]
fn remote_forwards_and_agent_forwarding_follow_the_grant() {
    let Some(e) = env() else { return };
    if !require(&["ssh-agent", "ssh-add"]) {
        return;
    }
    // A service on the client's side, reached from the target through -R.
    let service = greeter(b"hello from the client side\n");
    assert_eq!(
        e.forward(&e.oncall, "-R", service),
        "hello from the client side\n"
    );
    let reader = e.gw.token("rita@example.com", &["readers"]);
    assert_eq!(
        e.forward(&reader, "-R", service),
        "",
        "no grant allows readers to forward remotely"
    );

    // Agent forwarding: the target can list the client's agent keys.
    let agent_dir = tempfile::tempdir().unwrap();
    let sock = agent_dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < Duration::from_secs(5), "ssh-agent");
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = Command::new("ssh-add")
        .arg(e.sshd.key())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let list = |token: &str| {
        e.client("ssh", token)
            .args(["-A", "-l", "web", "127.0.0.1", "ssh-add -l"])
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap()
    };
    let allowed = list(&e.oncall);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert!(text(&allowed).contains("ED25519"), "{}", text(&allowed));
    let refused = list(&reader);
    assert!(!refused.status.success(), "{}", text(&refused));
    let _ = agent.kill();
    let _ = agent.wait();
    let audit = e.gw.audit();
    assert!(audit.iter().any(|a| a["event"] == "agent-forward-used"));
    assert!(audit.iter().any(|a| a["event"] == "port-forward"
        && a["allowed"] == false
        && a["target"].as_str().unwrap_or("").starts_with("remote ")));
}
