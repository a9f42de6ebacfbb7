//! Session recordings. Each session's recorder owns its file and the
//! synchronous `gw_recording::Writer`; the data path only appends events to
//! the session's queue, which never wakes another thread. One shared
//! recorder thread drains every queue every 100 ms, renders results,
//! compresses and writes, and cuts a frame at least once a second, so a
//! killed gateway loses at most the last second of a session. A session
//! whose queue grows past a bound writes it out itself (back-pressure,
//! never loss).

use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

type FileWriter = gw_recording::Writer<std::io::BufWriter<std::fs::File>>;

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
    /// Terminal output (already masked), shared with the data path.
    Output {
        t: Duration,
        data: bytes::Bytes,
    },
    /// Terminal input, when the policy records input.
    Input {
        t: Duration,
        data: Vec<u8>,
    },
    Resize {
        t: Duration,
        cols: u16,
        rows: u16,
    },
    Exit {
        t: Duration,
        status: i32,
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

/// Past this many queued events the session writes them itself.
const HIGH_WATER: usize = 4096;
const TICK: Duration = Duration::from_millis(100);

/// One session's recording: its queue, and its writer until finished.
struct State {
    queue: Mutex<Vec<RecEvent>>,
    writer: Mutex<Option<FileWriter>>,
    failed: AtomicBool,
    start: Instant,
    path: String,
}

impl State {
    /// Writes out what is queued; flushes a frame when one is due.
    fn drain(&self) {
        let events = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = guard.as_mut() else { return };
        let result = events
            .into_iter()
            .try_for_each(|ev| write(w, ev))
            .and_then(|()| {
                if w.flush_due(self.start.elapsed()) {
                    w.flush()?;
                }
                Ok(())
            });
        if let Err(e) = result {
            self.fail(&e);
            *guard = None;
        }
    }

    /// Drains, then signs the trailer and syncs the file.
    fn finish(&self) {
        self.drain();
        let Some(w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let result = w
            .finish(self.start.elapsed())
            .map_err(anyhow::Error::from)
            .and_then(|mut out| {
                std::io::Write::flush(&mut out)?;
                out.get_ref().sync_data()?;
                Ok(())
            });
        if let Err(e) = result {
            self.fail(&e);
        }
    }

    fn fail(&self, e: &anyhow::Error) {
        self.failed.store(true, Ordering::SeqCst);
        tracing::error!(recording = %self.path, error = %format!("{e:#}"), "recording failed");
    }
}

/// The shared recorder thread and the sessions it serves.
pub(crate) struct Recorders {
    sessions: Arc<Mutex<Vec<Weak<State>>>>,
}

impl Recorders {
    pub(crate) fn start() -> anyhow::Result<Recorders> {
        let sessions: Arc<Mutex<Vec<Weak<State>>>> = Arc::default();
        let shared = Arc::clone(&sessions);
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    let live: Vec<Arc<State>> = {
                        let mut list = shared.lock().unwrap_or_else(|e| e.into_inner());
                        list.retain(|w| w.strong_count() > 0);
                        list.iter().filter_map(Weak::upgrade).collect()
                    };
                    for s in live {
                        s.drain();
                    }
                }
            })
            .context("starting the recorder thread")?;
        Ok(Recorders { sessions })
    }

    /// Creates a session's recording file. Fails when the file cannot be
    /// created: the caller applies the policy's `on-failure`.
    pub(crate) fn open(
        &self,
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
        let state = Arc::new(State {
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(Some(writer)),
            failed: AtomicBool::new(false),
            start: Instant::now(),
            path: path.display().to_string(),
        });
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&state));
        Ok(Recorder { state: Some(state) })
    }
}

/// A session's handle on its recording.
pub(crate) struct Recorder {
    state: Option<Arc<State>>,
}

impl Recorder {
    /// Time since the session started, for event stamps.
    pub(crate) fn elapsed(&self) -> Duration {
        self.state
            .as_ref()
            .map_or(Duration::ZERO, |s| s.start.elapsed())
    }

    /// Whether the recording has failed (the file could not be written).
    pub(crate) fn failed(&self) -> bool {
        self.state
            .as_ref()
            .is_none_or(|s| s.failed.load(Ordering::SeqCst))
    }

    /// Queues an event; past the high-water mark, writes the queue out on a
    /// blocking thread before returning.
    pub(crate) async fn send(&self, ev: RecEvent) {
        let Some(state) = &self.state else { return };
        let len = {
            let mut q = state.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push(ev);
            q.len()
        };
        if len >= HIGH_WATER {
            let state = Arc::clone(state);
            let _ = tokio::task::spawn_blocking(move || state.drain()).await;
        }
    }

    /// Closes the recording: writes what is queued, signs the trailer.
    pub(crate) async fn finish(mut self) {
        if let Some(state) = self.state.take() {
            let _ = tokio::task::spawn_blocking(move || state.finish()).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A session dropped without `finish` (a panic, a cancelled task)
        // still gets its trailer.
        if let Some(state) = self.state.take() {
            std::thread::spawn(move || state.finish());
        }
    }
}

fn write(w: &mut FileWriter, ev: RecEvent) -> anyhow::Result<()> {
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
        RecEvent::Output { t, data } => w.output(t, &data)?,
        RecEvent::Input { t, data } => w.input(t, &data)?,
        RecEvent::Resize { t, cols, rows } => w.resize(t, cols, rows)?,
        RecEvent::Exit { t, status } => w.exit(t, status)?,
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
