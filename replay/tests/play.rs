//! `replay play` on a real terminal: the player runs inside a detached tmux
//! session (a real pty), keys are sent with `tmux send-keys` and the screen is
//! read back with `tmux capture-pane`.
//!
//! tmux is a test peer like zstd: CI installs it. Elsewhere a missing tmux
//! skips the pty tests loudly instead of failing them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gw_recording::{Header, SessionMeta, SigningKey, Writer, WriterOptions};

const REPLAY: &str = env!("CARGO_BIN_EXE_replay");

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/gw-recording/test_data/v1/ssh.cast.zst")
}

/// A session with long gaps, so that keys can be sent between events:
/// `first` at 0.1 s, `second` at 3 s, a marker at 60 s, `after-marker` at
/// 60.5 s and `the-end` at 120 s.
fn slow_recording(dir: &Path) -> PathBuf {
    let meta = SessionMeta {
        session_id: "slow".into(),
        principal: "alice".into(),
        resource: "web-01".into(),
        protocol: "ssh".into(),
        start_us: 1_795_510_800_000_000,
        ..SessionMeta::default()
    };
    let key = SigningKey::from_seed(&[3; 32]);
    let mut w = Writer::new(
        Vec::new(),
        &Header::new(80, 24, meta),
        &key,
        WriterOptions::default(),
    )
    .unwrap();
    let s = Duration::from_millis;
    w.output(s(100), b"first\r\n").unwrap();
    w.output(s(3000), b"second\r\n").unwrap();
    w.marker(s(60_000), "note:here").unwrap();
    w.output(s(60_500), b"after-marker\r\n").unwrap();
    w.output(s(120_000), b"the-end\r\n").unwrap();
    let path = dir.join("slow.cast.zst");
    std::fs::write(&path, w.finish(s(120_000)).unwrap()).unwrap();
    path
}

/// A tmux server of our own (its own socket) running one shell command in an
/// 80x24 pane; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` (after a loud message) if tmux is not installed, unless in CI.
    /// The skip must be visible in the test output, hence the `eprintln!`.
    #[allow(clippy::print_stderr)]
    fn start(command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is required in CI (apt-get install tmux)"
            );
            eprintln!(
                "\n*** SKIPPED: tmux is not installed; `replay play` pty tests did not run ***\n"
            );
            return None;
        }
        let socket = format!("replay-play-{}-{}", std::process::id(), unique());
        let t = Tmux { socket };
        t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "play",
            "-x",
            "80",
            "-y",
            "24",
            command,
        ]);
        Some(t)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "play"])
    }

    /// Types `keys` literally.
    fn send(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "play", "-l", keys]);
    }

    /// Waits up to 10 s for `text` on the screen; returns the screen.
    #[track_caller]
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .output();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The shell command run in the pane: saves the terminal settings, plays,
/// prints the exit status and the settings again, then stays open.
fn play_command(dir: &Path, file: &Path, args: &str) -> String {
    let d = dir.display();
    format!(
        "stty -g > {d}/before; {REPLAY} play {} {args}; echo \"exit=$?\"; \
         stty -g > {d}/after; echo settings-saved; sleep 600",
        file.display()
    )
}

#[track_caller]
fn assert_terminal_restored(dir: &Path) {
    let before = std::fs::read_to_string(dir.join("before")).unwrap();
    let after = std::fs::read_to_string(dir.join("after")).unwrap();
    assert_eq!(before, after, "terminal settings not restored");
}

#[test]
fn plays_golden_recording_on_a_pty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cmd = play_command(dir, &golden(), "--speed 10 --idle-limit 0.05");
    let Some(t) = Tmux::start(&cmd) else { return };
    let screen = t.wait_for("settings-saved");
    for text in [
        "alice@web-01:~$ ls -la",
        "total 8",
        "notes.txt",
        "logs",
        "logout",
        "exit=0",
    ] {
        assert!(screen.contains(text), "no {text:?} in:\n{screen}");
    }
    assert_terminal_restored(dir);
}

#[test]
fn pause_step_marker_jump_and_quit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = slow_recording(dir);
    let Some(t) = Tmux::start(&play_command(dir, &file, "")) else {
        return;
    };
    t.wait_for("first");
    // Paused well before `second` (due at 3 s): it must not appear.
    t.send(" ");
    std::thread::sleep(Duration::from_secs(5));
    let screen = t.screen();
    assert!(
        !screen.contains("second"),
        "output advanced while paused:\n{screen}"
    );
    // Resuming plays the rest of the 3 s interval.
    t.send(" ");
    t.wait_for("second");
    // `]` skips the 57 s to the marker and pauses there.
    t.send("]");
    std::thread::sleep(Duration::from_secs(2));
    let screen = t.screen();
    assert!(
        !screen.contains("after-marker"),
        "not paused at marker:\n{screen}"
    );
    // `.` steps to the next event while paused.
    t.send(".");
    t.wait_for("after-marker");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.screen().contains("the-end"));
    t.send("q");
    let screen = t.wait_for("settings-saved");
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(!screen.contains("the-end"), "{screen}");
    assert_terminal_restored(dir);
}

#[test]
fn quit_while_paused_restores_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = slow_recording(dir);
    let Some(t) = Tmux::start(&play_command(dir, &file, "")) else {
        return;
    };
    t.wait_for("first");
    t.send(" ");
    t.send("q");
    let screen = t.wait_for("settings-saved");
    assert!(screen.contains("exit=0"), "{screen}");
    assert_terminal_restored(dir);
}

#[test]
fn plays_to_a_pipe() {
    let out = Command::new(REPLAY)
        .args(["play", "--speed", "10", "--idle-limit", "0.05"])
        .arg(golden())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("total 8\r\n"), "{stdout}");
    assert!(stdout.ends_with("exit\r\nlogout\r\n"), "{stdout}");
}
