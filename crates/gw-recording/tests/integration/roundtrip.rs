//! Writer output read back, through this crate and through the `zstd` binary.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use gw_recording::{EventData, Recording, TrustedKeys, Verification, WriterOptions, verify};

use super::support::{key, ms, small_frames, sql_session, ssh_session};

fn trusted() -> TrustedKeys {
    [key().public_key()].into_iter().collect()
}

#[test]
fn ssh_round_trip() {
    let bytes = ssh_session(WriterOptions::default());
    let rec = Recording::read(&bytes[..]).unwrap();
    assert_eq!(rec.header.meta.principal, "alice");
    assert_eq!(
        rec.header.meta.key_id,
        gw_recording::key_id_hex(&key().key_id())
    );
    assert_eq!(rec.counts(), [10, 8, 1, 1, 1]);
    assert_eq!(rec.events[0].time, ms(10));
    assert_eq!(rec.events.last().unwrap().data, EventData::Exit(0));
    assert_eq!(rec.duration(), ms(3030));
    assert!(!rec.truncated);
    assert_eq!(
        verify(&bytes[..], &trusted()),
        Verification::Verified {
            frames: 4,
            last_checkpoint: Some(3),
            signed_trailer: true
        }
    );
}

#[test]
fn small_frames_verify() {
    for bytes in [ssh_session(small_frames()), sql_session(small_frames())] {
        let v = verify(&bytes[..], &trusted());
        assert!(
            matches!(
                v,
                Verification::Verified {
                    signed_trailer: true,
                    ..
                }
            ),
            "{v}"
        );
        let a = Recording::read(&bytes[..]).unwrap();
        assert!(a.events.len() > 5);
    }
}

#[test]
fn flush_due_is_time_driven() {
    let header = gw_recording::Header::new(80, 24, super::support::meta("s", "p", "r", "ssh", 0));
    let mut w =
        gw_recording::Writer::new(Vec::new(), &header, &key(), WriterOptions::default()).unwrap();
    assert!(!w.flush_due(ms(5000)));
    w.output(ms(100), b"x").unwrap();
    assert!(!w.flush_due(ms(1099)));
    assert!(w.flush_due(ms(1100)));
    w.flush().unwrap();
    assert!(!w.flush_due(ms(9000)));
    // An event more than a second after the first pending one cuts a frame by itself.
    w.output(ms(9000), b"a").unwrap();
    w.output(ms(10_000), b"b").unwrap();
    assert!(!w.flush_due(ms(10_500)));
}

#[test]
fn unknown_key_and_wrong_key() {
    let bytes = ssh_session(WriterOptions::default());
    let v = verify(&bytes[..], &TrustedKeys::new());
    assert!(
        matches!(
            v,
            Verification::Failed {
                failure: gw_recording::Failure::UnknownKey { frame: 0, .. },
                ..
            }
        ),
        "{v}"
    );
    assert!(gw_recording::check_chain(&bytes[..]).is_verified());
}

#[test]
fn garbage_is_a_clear_error() {
    for junk in [
        &b""[..],
        b"hello",
        b"\x28\xb5\x2f\xfd garbage that is long enough to read",
        &[0u8; 100],
    ] {
        let err = Recording::read(junk).unwrap_err();
        assert_eq!(err.to_string(), "not a gateway recording");
        let v = verify(junk, &trusted());
        assert_eq!(
            v,
            Verification::Failed {
                failure: gw_recording::Failure::NotARecording,
                last_checkpoint: None
            }
        );
    }
}

/// `zstd -dc` must yield exactly the asciicast v3 text: header line, then events.
#[test]
fn zstd_dc_yields_plain_asciicast() {
    let Some(zstd) = require_tool("zstd") else {
        return;
    };
    let bytes = sql_session(small_frames());
    let mut child = Command::new(zstd)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut exported = Vec::new();
    gw_recording::export_v3(&bytes[..], &mut exported).unwrap();
    assert_eq!(text.as_bytes(), exported);
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 3);
    assert_eq!(header["term"]["cols"], 120);
    assert_eq!(header["gateway"]["principal"], "bob");
    let mut total = Duration::ZERO;
    for line in lines {
        let (t, code, _data): (f64, String, String) = serde_json::from_str(line).unwrap();
        assert!(["o", "i", "m", "r", "x"].contains(&code.as_str()));
        total += Duration::from_secs_f64(t);
    }
    assert!((total.as_secs_f64() - 20.003).abs() < 0.001, "{total:?}");
}

/// Finds a tool on PATH or in ~/.cargo/bin. Missing: fails under CI=true,
/// otherwise skips loudly.
pub fn require_tool(name: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo/bin"));
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = dirs
        .into_iter()
        .chain(home)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} not found and CI=true"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: {name} not found");
        }
    }
    found
}
