//! Golden recordings under `test_data/v1/`: the format compatibility promise.
//! These files are read forever; never regenerate them for an existing version.
//! `GW_RECORDING_BLESS=1` writes them only if they do not exist yet.

use std::path::{Path, PathBuf};

use gw_recording::{PublicKey, Recording, TrustedKeys, Verification, WriterOptions, verify};

use super::support::{key, sql_session, ssh_session};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/v1")
}

fn bless_if_missing() {
    if std::env::var("GW_RECORDING_BLESS").as_deref() != Ok("1") {
        return;
    }
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let files: [(&str, Vec<u8>); 3] = [
        ("key.pub.pem", key().public_key().to_pem().into_bytes()),
        (
            "ssh.cast.zst",
            ssh_session(WriterOptions {
                frame_bytes: 256,
                ..WriterOptions::default()
            }),
        ),
        ("sql.cast.zst", sql_session(WriterOptions::default())),
    ];
    for (name, bytes) in files {
        let path = d.join(name);
        if !path.exists() {
            std::fs::write(&path, &bytes).unwrap();
            let mut text = Vec::new();
            if name.ends_with(".zst") {
                gw_recording::export_v3(&bytes[..], &mut text).unwrap();
                std::fs::write(d.join(name.trim_end_matches(".zst")), text).unwrap();
            }
        }
    }
}

#[test]
fn golden_v1_files_read_and_verify() {
    bless_if_missing();
    let pem = std::fs::read_to_string(dir().join("key.pub.pem")).unwrap();
    let keys: TrustedKeys = [PublicKey::from_pem(&pem).unwrap()].into_iter().collect();
    for name in ["ssh.cast.zst", "sql.cast.zst"] {
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let v = verify(&bytes[..], &keys);
        assert!(
            matches!(
                v,
                Verification::Verified {
                    signed_trailer: true,
                    ..
                }
            ),
            "{name}: {v}"
        );
        let mut text = Vec::new();
        gw_recording::export_v3(&bytes[..], &mut text).unwrap();
        let want = std::fs::read(dir().join(name.trim_end_matches(".zst"))).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            String::from_utf8(want).unwrap(),
            "{name}"
        );
        let rec = Recording::read(&bytes[..]).unwrap();
        assert!(rec.trailer.is_some());
    }
}
