//! The appliance files in `images/` stay valid.

use gw_e2e::{bin, require};
use std::process::Command;

/// `systemd-analyze verify` accepts the unit (with the binary path pointed
/// at the one this workspace built, since it checks that it exists).
#[test]
fn the_systemd_unit_verifies() {
    if !require(&["systemd-analyze"]) {
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../images/gatewayd.service"
    ))
    .unwrap();
    let gatewayd = bin("gatewayd");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatewayd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/gatewayd", gatewayd.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("gatewayd.service"),
        "systemd-analyze verify:\n{text}"
    );
}
