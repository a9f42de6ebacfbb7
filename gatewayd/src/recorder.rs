//! The per-session recorder: a thread that owns the session's recording
//! file and the synchronous `gw_recording::Writer`, fed through a bounded
//! channel. The data path never does file I/O or compression itself; it
//! only sends events. The thread flushes at least once a second, so a killed
//! gateway loses at most the last second of a session.

use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// One thing to record, timed relative to the session start.
pub(crate) enum RecEvent {
    Statement {
        t: Duration,
        text: String,
        decision: gw_recording::Decision,
        rule: Option<String>,
        result: QueryResult,
        duration: Duration,
    },
    Marker {
        t: Duration,
        label: String,
    },
}

/// What a statement returned, as the session saw it (already masked).
pub(crate) struct QueryResult {
    /// Whether the result table is part of the transcript (not for denials).
    pub(crate) shown: bool,
    pub(crate) columns: Vec<String>,
    /// The first `max_rows` rows.
    pub(crate) rows: Vec<Vec<String>>,
    pub(crate) row_count: u64,
    pub(crate) max_rows: usize,
    /// The command tag or error, when there is one.
    pub(crate) outcome: Option<String>,
}

impl QueryResult {
    /// A psql-style rendering, bounded by `max_rows`.
    fn render(&self) -> String {
        let mut out = String::new();
        if self.shown && !self.columns.is_empty() {
            let cols: Vec<&str> = self.columns.iter().map(String::as_str).collect();
            out = gw_recording::render_table(&cols, &self.rows, self.max_rows, 60);
            if self.row_count as usize > self.rows.len() {
                out.push_str(&format!(
                    "({} rows in all; {} recorded)\n",
                    self.row_count,
                    self.rows.len()
                ));
            }
        } else if let Some(o) = &self.outcome {
            out.clone_from(o);
        }
        if self.columns.is_empty()
            && let Some(o) = &self.outcome
            && !out.contains(o.as_str())
        {
            out.push_str(o);
        }
        out
    }

    fn rows(&self) -> Option<u64> {
        (self.row_count > 0 || !self.columns.is_empty()).then_some(self.row_count)
    }
}

/// The sending half, held by the session.
pub(crate) struct Recorder {
    tx: Option<SyncSender<RecEvent>>,
    start: Instant,
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const QUEUE: usize = 4096;

impl Recorder {
    /// Creates the recording file and starts its thread. Fails when the file
    /// cannot be created: the caller applies the policy's `on-failure`.
    pub(crate) fn start(
        dir: &Path,
        header: &gw_recording::Header,
        key: &gw_recording::SigningKey,
    ) -> anyhow::Result<Recorder> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.cast.zst", header.meta.session_id));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let out = std::io::BufWriter::with_capacity(8 << 10, file);
        let writer =
            gw_recording::Writer::new(out, header, key, gw_recording::WriterOptions::default())
                .with_context(|| format!("starting {}", path.display()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let thread = {
            let failed = Arc::clone(&failed);
            let path = path.clone();
            std::thread::Builder::new()
                .name("recorder".into())
                // It only writes and compresses: a small stack keeps idle
                // sessions cheap.
                .stack_size(256 << 10)
                .spawn(move || {
                    if let Err(e) = run(writer, rx, start) {
                        failed.store(true, Ordering::SeqCst);
                        tracing::error!(recording = %path.display(), error = %e, "recording failed");
                    }
                })
                .context("starting the recorder thread")?
        };
        Ok(Recorder {
            tx: Some(tx),
            start,
            failed,
            thread: Some(thread),
        })
    }

    /// Time since the session started, for event stamps.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether the recording has failed (the file could not be written).
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Queues an event. When the queue is full the session waits for the
    /// recorder (back-pressure) rather than lose an event.
    pub(crate) async fn send(&self, ev: RecEvent) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(ev)) => {
                let tx = tx.clone();
                let _ = tokio::task::spawn_blocking(move || tx.send(ev).is_ok()).await;
            }
            Err(TrySendError::Disconnected(_)) => self.failed.store(true, Ordering::SeqCst),
        }
    }

    /// Closes the recording: signs the trailer and waits for the file.
    pub(crate) async fn finish(mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the sender ends the thread, which still signs the trailer.
        self.tx = None;
    }
}

fn run(
    mut w: gw_recording::Writer<std::io::BufWriter<std::fs::File>>,
    rx: Receiver<RecEvent>,
    start: Instant,
) -> anyhow::Result<()> {
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => write(&mut w, ev)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if w.flush_due(start.elapsed()) {
            w.flush()?;
        }
    }
    let mut out = w.finish(start.elapsed())?;
    std::io::Write::flush(&mut out)?;
    out.get_ref().sync_data()?;
    Ok(())
}

fn write(
    w: &mut gw_recording::Writer<std::io::BufWriter<std::fs::File>>,
    ev: RecEvent,
) -> anyhow::Result<()> {
    match ev {
        RecEvent::Statement {
            t,
            text,
            decision,
            rule,
            result,
            duration,
        } => {
            let verdict = gw_recording::Verdict {
                decision,
                rule: rule.as_deref(),
            };
            w.record_statement(
                t,
                &text,
                &verdict,
                &result.render(),
                result.rows(),
                duration,
            )?;
        }
        RecEvent::Marker { t, label } => w.marker(t, &label)?,
    }
    Ok(())
}

/// A session id that sorts by time: `20261124T143012Z-1a2b3c4d`.
pub(crate) fn session_id() -> String {
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    let ts = gw_recording::rfc3339(crate::audit::now_us());
    let compact: String = ts
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    format!(
        "{compact}Z-{}",
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
