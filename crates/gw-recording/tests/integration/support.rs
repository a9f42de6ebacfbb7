//! Builds small, deterministic recordings shared by the tests.

use std::time::Duration;

use gw_recording::{
    Decision, Header, SessionMeta, SigningKey, Verdict, Writer, WriterOptions, render_table,
};

/// The fixed test key; its public half is in `test_data/v1/key.pub.pem`.
pub fn key() -> SigningKey {
    SigningKey::from_seed(&[42; 32])
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Small frames and frequent checkpoints, so a few events span many frames.
pub fn small_frames() -> WriterOptions {
    WriterOptions {
        frame_bytes: 200,
        checkpoint_frames: 2,
        ..WriterOptions::default()
    }
}

pub fn meta(
    session: &str,
    principal: &str,
    resource: &str,
    protocol: &str,
    start_us: u64,
) -> SessionMeta {
    SessionMeta {
        session_id: session.into(),
        principal: principal.into(),
        resource: resource.into(),
        protocol: protocol.into(),
        policy_revision: "r42".into(),
        client_addr: "10.0.0.7:51234".into(),
        gateway_id: "gw-1".into(),
        key_id: String::new(),
        start_us,
    }
}

/// 2026-11-24T09:00:00Z
pub const START: u64 = 1_795_510_800_000_000;

/// A short SSH-like terminal session with colours, a resize, a marker and exit.
pub fn ssh_session(opts: WriterOptions) -> Vec<u8> {
    let mut header = Header::new(80, 24, meta("ssh-0001", "alice", "web-01", "ssh", START));
    header.term_type = Some("xterm-256color".into());
    let mut w = Writer::new(Vec::new(), &header, &key(), opts).unwrap();
    w.output(ms(10), b"\x1b[1;32malice@web-01\x1b[0m:~$ ")
        .unwrap();
    for (i, c) in "ls -la".chars().enumerate() {
        w.input(ms(500 + 100 * i as u64), c.to_string().as_bytes())
            .unwrap();
        w.output(ms(501 + 100 * i as u64), c.to_string().as_bytes())
            .unwrap();
    }
    w.input(ms(1200), b"\r").unwrap();
    w.output(
        ms(1210),
        b"\r\ntotal 8\r\n-rw-r--r-- 1 alice alice  220 notes.txt\r\n\x1b[01;34mlogs\x1b[0m\r\n",
    )
    .unwrap();
    w.output(ms(1220), b"alice@web-01:~$ ").unwrap();
    w.resize(ms(2000), 100, 30).unwrap();
    w.marker(ms(2100), "note:checked logs").unwrap();
    w.input(ms(3000), b"exit\r").unwrap();
    w.output(ms(3010), b"exit\r\nlogout\r\n").unwrap();
    w.exit(ms(3020), 0).unwrap();
    w.finish(ms(3030)).unwrap()
}

/// A short SQL session: two allowed queries, one denied, one reviewed.
pub fn sql_session(opts: WriterOptions) -> Vec<u8> {
    let header = Header::new(
        120,
        40,
        meta("pg-0001", "bob", "pg-prod", "postgres", START + 60_000_000),
    );
    let mut w = Writer::new(Vec::new(), &header, &key(), opts).unwrap();
    let allow = Verdict {
        decision: Decision::Allow,
        rule: Some("read-only"),
    };
    let rows = vec![
        vec!["1".to_string(), "alice".to_string()],
        vec!["2".to_string(), "bob".to_string()],
    ];
    let table = render_table(&["id", "name"], &rows, 100, 40);
    w.record_statement(
        ms(1000),
        "SELECT id, name FROM users",
        &allow,
        &table,
        Some(2),
        ms(3),
    )
    .unwrap();
    let deny = Verdict {
        decision: Decision::Deny,
        rule: Some("no-drop"),
    };
    w.record_statement(ms(5000), "DROP TABLE users", &deny, "", None, ms(0))
        .unwrap();
    let review = Verdict {
        decision: Decision::Review,
        rule: Some("writes-need-review"),
    };
    w.marker(
        ms(9000),
        &gw_recording::review_requested("R-7", "UPDATE on pg-prod"),
    )
    .unwrap();
    w.marker(ms(20000), &gw_recording::review_approved("R-7", "carol"))
        .unwrap();
    w.record_statement(
        ms(20001),
        "UPDATE users SET name = 'Bob' WHERE id = 2",
        &review,
        "UPDATE 1",
        Some(1),
        ms(2),
    )
    .unwrap();
    w.finish(ms(25000)).unwrap()
}
