//! `replay play`: real-time playback with pause, step and marker jumps.
//!
//! Raw keyboard input uses `stty` rather than termios calls because the
//! workspace forbids `unsafe`; the previous settings are restored on exit,
//! including on errors (a guard's `Drop`).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gw_recording::EventData;

use crate::inspect::load;

struct RawMode {
    saved: String,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let out = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let saved = String::from_utf8(out.stdout).ok()?.trim().to_string();
        let ok = Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(Stdio::inherit())
            .status()
            .ok()?
            .success();
        ok.then_some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .status();
    }
}

pub fn run(path: &Path, speed: f64, idle_limit: Option<f64>) -> anyhow::Result<()> {
    anyhow::ensure!(speed > 0.0 && speed.is_finite(), "--speed must be positive");
    let rec = load(path)?;
    let interactive = std::io::stdin().is_terminal();
    let _raw = if interactive { RawMode::enter() } else { None };
    let (tx, keys) = mpsc::channel::<u8>();
    if _raw.is_some() {
        // Detached: the thread blocks on stdin until a key or process exit.
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            while std::io::stdin().read(&mut b).is_ok_and(|n| n == 1) {
                if tx.send(b[0]).is_err() {
                    break;
                }
            }
        });
    }
    let mut out = std::io::stdout().lock();
    let mut prev = Duration::ZERO;
    let mut paused = false;
    let mut skip_to_marker = false;
    for e in &rec.events {
        let mut wait = e.time.saturating_sub(prev).div_f64(speed);
        if let Some(limit) = idle_limit {
            wait = wait.min(Duration::from_secs_f64(limit.max(0.0)));
        }
        prev = e.time;
        if skip_to_marker {
            wait = Duration::ZERO;
        }
        // Wait out the interval while reacting to keys.
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = if paused {
                Duration::from_secs(3600)
            } else {
                deadline.saturating_duration_since(std::time::Instant::now())
            };
            if left.is_zero() {
                break;
            }
            match keys.recv_timeout(left) {
                Ok(b'q' | 3) => return Ok(()),
                Ok(b' ') => paused = !paused,
                Ok(b'.') if paused => break,
                Ok(b']') => {
                    skip_to_marker = true;
                    paused = false;
                    break;
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) if paused => paused = false,
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(left),
            }
        }
        match &e.data {
            EventData::Output(s) => {
                out.write_all(s.as_bytes())?;
                out.flush()?;
            }
            EventData::Marker(_) if skip_to_marker => {
                skip_to_marker = false;
                paused = true;
            }
            _ => {}
        }
    }
    Ok(())
}
