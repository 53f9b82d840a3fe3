//! Opening a recorded session: reading the file on a background thread, with progress
//! and cancel, so the window keeps drawing (and keeps feeding a live link) while a
//! large file loads.
//!
//! [`open_file`] is the one place the station reads a record for replay.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::Replay;
use crate::record::recording::Recording;

/// Reads the record at `path`, calling `progress(bytes_read, file_size)` as it goes;
/// `progress` returning false cancels (an error is returned).
///
/// The one call site of the record loader for replay.
pub fn open_file(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> anyhow::Result<Recording> {
    Ok(crate::record::load::load_with_progress(path, progress)?)
}

/// How a background open ended.
#[derive(Debug)]
pub enum LoadOutcome {
    /// The replay, ready.
    Opened(Box<Replay>),
    /// The file could not be opened; the reason, for the operator.
    Failed(String),
    /// Cancelled by the operator.
    Cancelled,
}

/// What the background open is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the file (see [`Loading::progress`]).
    Reading,
    /// Building the replay's series and index.
    Indexing,
}

/// `Shared::phase` while indexing (0, the default, is reading).
const PHASE_INDEXING: u8 = 1;

/// State shared with the loading thread.
#[derive(Debug, Default)]
struct Shared {
    bytes_read: AtomicU64,
    file_size: AtomicU64,
    phase: AtomicU8,
    cancel: AtomicBool,
}

/// A record being opened on the thread `punctum-replay-load`.
#[derive(Debug)]
pub struct Loading {
    path: PathBuf,
    shared: Arc<Shared>,
    outcome: Receiver<LoadOutcome>,
    thread: Option<JoinHandle<()>>,
}

impl Loading {
    /// Starts reading `path` in the background.
    pub fn start(path: PathBuf) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("punctum-replay-load".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let path = path.clone();
                move || {
                    let outcome = load(&path, &shared);
                    // The receiver is gone only when the window dropped the handle,
                    // which waits for this thread: nothing to tell anyone.
                    let _ = tx.send(outcome);
                }
            })?;
        Ok(Self {
            path,
            shared,
            outcome: rx,
            thread: Some(thread),
        })
    }

    /// The file being opened.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read so far and the file's size.
    #[must_use]
    pub fn progress(&self) -> (u64, u64) {
        (
            self.shared.bytes_read.load(Ordering::Relaxed),
            self.shared.file_size.load(Ordering::Relaxed),
        )
    }

    /// The share of the file read, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        let (read, size) = self.progress();
        if size == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)] // a bar's fraction
        let fraction = (read as f64 / size as f64) as f32;
        fraction.clamp(0.0, 1.0)
    }

    /// Reading, or indexing.
    #[must_use]
    pub fn phase(&self) -> Phase {
        if self.shared.phase.load(Ordering::Relaxed) == PHASE_INDEXING {
            Phase::Indexing
        } else {
            Phase::Reading
        }
    }

    /// Asks the thread to stop; it ends with [`LoadOutcome::Cancelled`].
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether a cancel was asked for.
    #[must_use]
    pub fn cancelling(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }

    /// The outcome, once the thread has ended; never waits.
    pub fn poll(&mut self) -> Option<LoadOutcome> {
        match self.outcome.try_recv() {
            Ok(outcome) => {
                self.join();
                Some(self.unless_cancelled(outcome))
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.join();
                Some(LoadOutcome::Failed(format!(
                    "{}: the loading thread ended without an answer",
                    self.path.display()
                )))
            }
        }
    }

    /// Waits up to `timeout` for the outcome (for tests and the command line).
    pub fn wait(&mut self, timeout: Duration) -> Option<LoadOutcome> {
        let deadline = Instant::now() + timeout;
        match self
            .outcome
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(outcome) => {
                self.join();
                Some(self.unless_cancelled(outcome))
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => self.poll(),
        }
    }

    /// A record that finished loading just as the cancel came is dropped unopened
    /// all the same: once cancelled, the outcome is [`LoadOutcome::Cancelled`].
    fn unless_cancelled(&self, outcome: LoadOutcome) -> LoadOutcome {
        if self.cancelling() && matches!(outcome, LoadOutcome::Opened(_)) {
            LoadOutcome::Cancelled
        } else {
            outcome
        }
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Loading {
    /// Cancels and waits for the thread: it stops at its next progress report.
    fn drop(&mut self) {
        self.cancel();
        self.join();
    }
}

fn load(path: &Path, shared: &Shared) -> LoadOutcome {
    let mut progress = |read: u64, size: u64| {
        shared.bytes_read.store(read, Ordering::Relaxed);
        shared.file_size.store(size, Ordering::Relaxed);
        !shared.cancel.load(Ordering::Relaxed)
    };
    let result = open_file(path, &mut progress);
    if shared.cancel.load(Ordering::Relaxed) {
        return LoadOutcome::Cancelled;
    }
    match result {
        Ok(recording) => {
            shared.phase.store(PHASE_INDEXING, Ordering::Relaxed);
            let session_id = recording.header.session_id.clone();
            let mut replay = Replay::new(recording);
            // Added after the session, in its client's file beside the record; a file
            // that cannot be read costs only them, and says so.
            match crate::store::amendments::beside_record(path, &session_id) {
                Ok(found) => replay.set_amendments(found),
                Err(e) => replay.add_note(format!("the amendments cannot be read: {e}")),
            }
            if shared.cancel.load(Ordering::Relaxed) {
                LoadOutcome::Cancelled
            } else {
                LoadOutcome::Opened(Box::new(replay))
            }
        }
        Err(e) => LoadOutcome::Failed(format!("{}: {e:#}", path.display())),
    }
}
