//! End-to-end tests of the `replay` binary on recordings written in a temp dir,
//! with insta snapshots of what people read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gw_recording::{
    Decision, Header, SessionMeta, SigningKey, Verdict, Writer, WriterOptions, render_table,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn key() -> SigningKey {
    SigningKey::from_seed(&[9; 32])
}

/// 2026-11-24T09:00:00Z
const START: u64 = 1_795_510_800_000_000;

fn meta(
    session: &str,
    principal: &str,
    resource: &str,
    protocol: &str,
    offset_s: u64,
) -> SessionMeta {
    SessionMeta {
        session_id: session.into(),
        principal: principal.into(),
        resource: resource.into(),
        protocol: protocol.into(),
        policy_revision: "r7".into(),
        client_addr: "10.1.2.3:40000".into(),
        gateway_id: "gw-a".into(),
        key_id: String::new(),
        start_us: START + offset_s * 1_000_000,
    }
}

/// Three sessions of one incident: alice on SSH, bob on Postgres, carol too.
fn incident(dir: &Path) -> PathBuf {
    let sessions = dir.join("recordings/2026-11-24");
    std::fs::create_dir_all(&sessions).unwrap();
    let opts = WriterOptions::default;

    let h = Header::new(80, 24, meta("s-ssh-1", "alice", "web-01", "ssh", 0));
    let mut w = Writer::new(Vec::new(), &h, &key(), opts()).unwrap();
    w.output(ms(100), b"alice@web-01:~$ ").unwrap();
    w.input(ms(900), b"sudo systemctl restart nginx\r").unwrap();
    w.output(
        ms(950),
        b"sudo systemctl restart nginx\r\n[sudo] password for alice: \r\n",
    )
    .unwrap();
    w.output(
        ms(4000),
        b"\x1b[31mJob for nginx.service failed\x1b[0m\r\nalice@web-01:~$ ",
    )
    .unwrap();
    w.exit(ms(9000), 1).unwrap();
    std::fs::write(
        sessions.join("s-ssh-1.cast.zst"),
        w.finish(ms(9000)).unwrap(),
    )
    .unwrap();

    let h = Header::new(120, 40, meta("s-pg-1", "bob", "pg-prod", "postgres", 30));
    let mut w = Writer::new(Vec::new(), &h, &key(), opts()).unwrap();
    let rows = vec![vec!["42".to_string(), "stuck".to_string()]];
    let table = render_table(&["id", "state"], &rows, 100, 40);
    let allow = Verdict {
        decision: Decision::Allow,
        rule: Some("read-only"),
    };
    w.record_statement(
        ms(1000),
        "SELECT id, state FROM jobs WHERE state = 'stuck'",
        &allow,
        &table,
        Some(1),
        ms(4),
    )
    .unwrap();
    let deny = Verdict {
        decision: Decision::Deny,
        rule: Some("no-truncate"),
    };
    w.record_statement(ms(5000), "TRUNCATE jobs", &deny, "", None, ms(0))
        .unwrap();
    w.marker(
        ms(6000),
        &gw_recording::review_requested("R-1", "UPDATE jobs"),
    )
    .unwrap();
    w.marker(ms(60_000), &gw_recording::review_approved("R-1", "carol"))
        .unwrap();
    let review = Verdict {
        decision: Decision::Review,
        rule: Some("writes"),
    };
    w.record_statement(
        ms(60_001),
        "UPDATE jobs SET state = 'queued' WHERE id = 42",
        &review,
        "UPDATE 1",
        Some(1),
        ms(3),
    )
    .unwrap();
    std::fs::write(
        sessions.join("s-pg-1.cast.zst"),
        w.finish(ms(61_000)).unwrap(),
    )
    .unwrap();

    let h = Header::new(120, 40, meta("s-pg-2", "carol", "pg-prod", "postgres", 45));
    let mut w = Writer::new(Vec::new(), &h, &key(), opts()).unwrap();
    w.record_statement(
        ms(2000),
        "SELECT count(*) FROM jobs",
        &allow,
        &render_table(&["count"], &[vec!["1".into()]], 10, 10),
        Some(1),
        ms(1),
    )
    .unwrap();
    // Never finished: a gateway crash. Flushed frames are signed, so it verifies.
    w.flush().unwrap();
    let partial = w.get_ref().clone();
    std::fs::write(sessions.join("s-pg-2.cast.zst"), partial).unwrap();

    std::fs::write(dir.join("key.pub.pem"), key().public_key().to_pem()).unwrap();
    dir.join("recordings")
}

fn replay(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]")]}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[test]
fn info_verify_search_timeline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    incident(dir);
    let pg1 = "recordings/2026-11-24/s-pg-1.cast.zst";

    let (code, out, _) = replay(&["info", pg1, "--key", "key.pub.pem"], dir);
    assert_eq!(code, 0);
    snap!("info", out);

    let (code, out, _) = replay(&["verify", "recordings", "--key", "key.pub.pem"], dir);
    assert_eq!(code, 0, "{out}");
    snap!("verify_ok", out);
    let (code, _, _) = replay(
        &[
            "verify",
            "recordings",
            "--key",
            "key.pub.pem",
            "--require-trailer",
        ],
        dir,
    );
    assert_eq!(code, 1);

    // Flip one byte in the middle of the Postgres session.
    let path = dir.join(pg1);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let (code, out, _) = replay(&["verify", pg1, "--key", "key.pub.pem"], dir);
    assert_eq!(code, 1);
    snap!("verify_modified", out);
    bytes[mid] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let (code, _, err) = replay(&["verify", pg1], dir);
    assert_eq!(code, 2, "{err}");

    let (_, out, _) = replay(&["search", "recordings", "--text", "jobs"], dir);
    snap!("search_text", out);
    let (_, out, _) = replay(
        &[
            "search",
            "recordings",
            "--verdict",
            "deny",
            "--format",
            "json",
        ],
        dir,
    );
    snap!("search_verdict_json", out);
    let (_, out, _) = replay(
        &[
            "search",
            "recordings",
            "--regex",
            "nginx.*failed",
            "--principal",
            "alice",
        ],
        dir,
    );
    snap!("search_regex", out);
    let (_, out, _) = replay(
        &[
            "search",
            "recordings",
            "--text",
            "jobs",
            "--since",
            "2026-11-24T09:01:00Z",
        ],
        dir,
    );
    assert!(
        out.lines()
            .all(|l| l.contains("s-pg-1") && l.contains("T09:01:30")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3, "{out}");

    let (_, out, _) = replay(&["timeline", "recordings"], dir);
    snap!("timeline_human", out);
    let (_, out, _) = replay(
        &[
            "timeline",
            "recordings",
            "--format",
            "markdown",
            "--resource",
            "pg-prod",
        ],
        dir,
    );
    snap!("timeline_markdown", out);

    let (code, out, _) = replay(&["export", pg1, "--format", "txt"], dir);
    assert_eq!(code, 0);
    assert!(
        out.contains("ERROR:  denied by gateway policy (rule no-truncate)"),
        "{out}"
    );
    let (code, out, _) = replay(&["cat", "recordings/2026-11-24/s-ssh-1.cast.zst"], dir);
    assert_eq!(code, 0);
    assert!(out.contains("Job for nginx.service failed"));
}

/// Output that JSON escapes (quotes, backslashes, newlines, control
/// characters) or that is not ASCII, in a recording of many small frames.
fn escapes(dir: &Path) {
    let h = Header::new(80, 24, meta("s-esc", "dave", "web-02", "ssh", 0));
    let opts = WriterOptions {
        frame_bytes: 200,
        ..WriterOptions::default()
    };
    let mut w = Writer::new(Vec::new(), &h, &key(), opts).unwrap();
    let special: &[&[u8]] = &[
        b"echo \"quoted needle\"\r\n",
        b"dir C:\\Users\\bob\\needle.txt\r\n",
        b"first line\nsecond line\r\n",
        b"tab\there\x1b[1mbold\x1b[0m\r\n",
        "Größe: 3 ☃ naïve\r\n".as_bytes(),
        b"path /etc/needle/conf\r\n",
    ];
    let mut t = 0;
    for s in special {
        for _ in 0..20 {
            t += 10;
            w.output(ms(t), b"filler output without the interesting words\r\n")
                .unwrap();
        }
        t += 10;
        w.output(ms(t), s).unwrap();
    }
    std::fs::write(dir.join("s-esc.cast.zst"), w.finish(ms(t)).unwrap()).unwrap();
}

/// Searches for `query` with `flag` and returns the data of every hit.
#[track_caller]
fn hits(dir: &Path, flag: &str, query: &str) -> Vec<String> {
    let (code, out, err) = replay(
        &["search", "s-esc.cast.zst", flag, query, "--format", "json"],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["data"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The raw-JSON prefilters must never hide an event whose decoded text matches.
#[test]
fn search_finds_text_that_json_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    escapes(dir);
    #[track_caller]
    fn check(dir: &Path, flag: &str, query: &str, want: &str) {
        let got = hits(dir, flag, query);
        assert_eq!(got, [want], "{flag} {query:?}");
    }
    let quoted = "echo \"quoted needle\"\r\n";
    let windows = "dir C:\\Users\\bob\\needle.txt\r\n";
    let lines = "first line\nsecond line\r\n";
    let tab = "tab\there\x1b[1mbold\x1b[0m\r\n";
    let utf8 = "Größe: 3 ☃ naïve\r\n";
    for (query, want) in [
        ("\"quoted needle\"", quoted),
        ("C:\\Users\\bob", windows),
        ("line\nsecond", lines),
        ("\there\x1b[1m", tab),
        ("Größe: 3 ☃", utf8),
        ("naïve", utf8),
        ("/etc/needle", "path /etc/needle/conf\r\n"),
    ] {
        check(dir, "--text", query, want);
        check(dir, "--regex", &regex::escape(query), want);
    }
    // Required literals that span an escaped character: no raw prefilter.
    check(dir, "--regex", r#"echo "quo+ted"#, quoted);
    check(dir, "--regex", r"C:\\Users\\b.b", windows);
    check(dir, "--regex", r"first line\nsec", lines);
    check(dir, "--regex", r"tab\s+here", tab);
    // A raw-safe literal, but the rest of the match crosses escapes.
    check(dir, "--regex", r#"quoted needle"\r\n$"#, quoted);
    check(dir, "--regex", r"^first line\s+second", lines);
    check(dir, "--regex", r"^first line", lines);
    check(dir, "--regex", r"(?s)first line.second", lines);
    check(dir, "--regex", r"\bGr(ö|oe)ße\b", utf8);
    check(dir, "--regex", r"(?i)GRÖSSE|gröẞe|größe", utf8);
    check(dir, "--regex", r"☃ na[ïi]ve", utf8);
    // Every needle hit, across frames; no false positives.
    assert_eq!(hits(dir, "--text", "needle").len(), 3);
    assert_eq!(hits(dir, "--regex", "need+le").len(), 3);
    assert_eq!(hits(dir, "--regex", r"[\\/]needle").len(), 2);
}
