//! The recorder: writes one session's record on its own thread.
//!
//! The station hands it [`Line`]s through a bounded channel and never waits on the
//! disk. The thread writes each line as it comes, hands what it wrote to the
//! operating system at least every [`HANDOVER_INTERVAL`] (a crash of this process
//! loses at most that much: the kernel still writes what it holds) and starts
//! `fdatasync` at most [`SYNC_INTERVAL`] after a line came (what a power cut may
//! lose, with the sync's own time). The header
//! is written and synced before [`Recorder::create`] returns: a session whose record
//! cannot even be started never opens.
//!
//! A write error (disk full, permission, a vanished folder) stops the thread; the
//! station sees it through [`Recorder::failure`] and stops the needle.

use std::fs;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender, TrySendError};

use super::format::{ClockLine, Header, Line, Stamped};

/// The longest a line waits in the recorder's own buffer before it is handed to the
/// operating system (`write`). With the time a sample waits for the station to take
/// it in (10 ms in the console, a frame of 33 ms in the window during a session),
/// what a crash of the process can lose: at most 25 ms and 48 ms, within the 50 ms
/// aimed at.
pub const HANDOVER_INTERVAL: Duration = Duration::from_millis(15);

/// The longest a line waits, from when it came, before `fdatasync` starts: 200 ms,
/// leaving 50 ms for the sync itself, so a power cut loses at most 250 ms
/// (`cargo bench --bench crash_loss` measures it on the disk at hand).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);

/// A wall clock that moves against the monotonic clock by more than this between two
/// lines has stepped (NTP, a manual change): a `clock` line records it.
pub const CLOCK_STEP_MS: i64 = 1000;

/// How long lines waited in the recorder, for the README's crash and power-cut
/// figures (`cargo bench --bench crash_loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// The longest a line waited in the process before `write` handed it to the
    /// operating system, ms: what a crash of the process can lose.
    pub max_unhanded_ms: u64,
    /// The longest a line waited before `fdatasync` returned, ms: what a power cut
    /// can lose.
    pub max_unsynced_ms: u64,
    /// Syncs done.
    pub syncs: u64,
}

/// What the station sends the writing thread.
enum ToWriter {
    /// A line to append, and its session time on the monotonic clock, ms.
    Line(Line, i64),
    /// Reply once every line before it is handed to the operating system.
    Confirm(Sender<()>),
}

/// Lines the channel to the recorder holds: 65 s of telemetry at 1000 Hz. A disk so
/// slow that this fills is a recording failure, not a reason to block the station.
pub const CHANNEL_CAPACITY: usize = 1 << 16;

/// The folder of the data folder that holds the records.
pub const SESSIONS_DIR: &str = "sessions";

/// Why a record could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record file could not be created.
    #[error("cannot create the session record {path}: {why}")]
    Create {
        /// The file.
        path: String,
        /// What the system said.
        why: String,
    },
    /// A write or sync failed; lines from then on are lost.
    #[error("cannot write the session record {path}: {why}")]
    Write {
        /// The file.
        path: String,
        /// What the system said.
        why: String,
    },
    /// A line longer than every reader takes ([`super::lines::MAX_LINE_BYTES`]):
    /// refused at entry, so nothing the station accepts is unreadable.
    #[error(
        "{what} refused: it would make a record line of {bytes} bytes; a line holds at most {limit} bytes (1 MiB)",
        limit = super::lines::MAX_LINE_BYTES
    )]
    TooLong {
        /// What was refused ("the note").
        what: &'static str,
        /// The line's length once encoded, bytes (newline excluded).
        bytes: usize,
    },
    /// The recorder fell more than [`CHANNEL_CAPACITY`] lines behind.
    #[error("the session record {path} fell behind: the disk is too slow")]
    Behind {
        /// The file.
        path: String,
    },
}

/// Refuses `line` if, encoded, it is longer than a reader takes
/// ([`super::lines::MAX_LINE_BYTES`]). Lines the station builds from operators' text
/// (notes) pass here before they are accepted; `what` names the thing refused.
pub fn check_line_fits(line: &Line, what: &'static str) -> Result<(), RecordError> {
    /// Counts bytes, keeps none.
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // As written: with its `mono_ms`, counted at its longest.
    let stamped = Stamped {
        line,
        mono_ms: i64::MAX,
    };
    // Encoding a line to a counter cannot fail; were it to, the writer would too.
    let _ = serde_json::to_writer(&mut count, &stamped);
    if count.0 > super::lines::MAX_LINE_BYTES {
        Err(RecordError::TooLong {
            what,
            bytes: count.0,
        })
    } else {
        Ok(())
    }
}

/// One session's record being written.
pub struct Recorder {
    path: PathBuf,
    tx: Option<Sender<ToWriter>>,
    failure: Arc<Mutex<Option<RecordError>>>,
    sync_stats: Arc<Mutex<SyncStats>>,
    thread: Option<JoinHandle<()>>,
    lines: u64,
    opened_utc_ms: i64,
    /// When the header was written: `mono_ms` 0.
    opened: Instant,
}

impl Recorder {
    /// Creates the record in `sessions_dir` (created owner-only if missing), named
    /// `<date>_<time>_<client>.jsonl` from the header, mode 0600, writes the header
    /// and syncs it, and starts the writing thread.
    pub fn create(sessions_dir: &Path, header: &Header) -> Result<Recorder, RecordError> {
        let create_error = |path: &Path, e: &dyn std::fmt::Display| RecordError::Create {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        crate::store::DataDir::open(sessions_dir).map_err(|e| create_error(sessions_dir, &e))?;
        let (path, file) = create_unique(sessions_dir, &file_stem(header))
            .map_err(|e| create_error(sessions_dir, &e))?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        let header_line = Line::Header(Box::new(header.clone()));
        let opened = Instant::now();
        write_line(&mut out, &header_line, 0)
            .and_then(|()| flush_and_sync(&mut out))
            .map_err(|e| create_error(&path, &e))?;
        // The new name must survive a power cut too; the header itself is synced
        // already, so a folder that cannot be synced is no reason to refuse.
        let _ = crate::store::sync_parent(&path);
        let (tx, rx) = crossbeam_channel::bounded::<ToWriter>(CHANNEL_CAPACITY);
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = Arc::clone(&failure);
        let thread_path = path.clone();
        let header_utc_ms = header.utc_ms;
        let sync_stats = Arc::new(Mutex::new(SyncStats::default()));
        let thread_stats = Arc::clone(&sync_stats);
        let thread = std::thread::Builder::new()
            .name("punctum-recorder".into())
            .spawn(move || {
                let result = write_loop(&rx, &mut out, header_utc_ms, &thread_stats);
                if let Err(e) = result {
                    tracing::error!(path = %thread_path.display(), "recording failed: {e}");
                    if let Ok(mut slot) = thread_failure.lock() {
                        *slot = Some(RecordError::Write {
                            path: thread_path.display().to_string(),
                            why: e.to_string(),
                        });
                    }
                }
            })
            .map_err(|e| create_error(&path, &e))?;
        Ok(Recorder {
            path,
            tx: Some(tx),
            failure,
            sync_stats,
            thread: Some(thread),
            lines: 1,
            opened_utc_ms: header.utc_ms,
            opened,
        })
    }

    /// The record's file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's `utc_ms`: when the session opened.
    #[must_use]
    pub fn opened_utc_ms(&self) -> i64 {
        self.opened_utc_ms
    }

    /// When the header was written: the zero of the session's axis (`mono_ms`).
    #[must_use]
    pub fn opened(&self) -> std::time::Instant {
        self.opened
    }

    /// Session time now on the station's monotonic clock, ms since the header was
    /// written: what `mono_ms` a line handed over now gets.
    #[must_use]
    pub fn mono_ms(&self) -> i64 {
        i64::try_from(self.opened.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Lines handed over so far, the header included.
    #[must_use]
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Hands a line to the writer without waiting.
    pub fn record(&mut self, line: Line) -> Result<(), RecordError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mono_ms = self.mono_ms();
        let Some(tx) = &self.tx else {
            return Err(self.write_error("the record is closed"));
        };
        match tx.try_send(ToWriter::Line(line, mono_ms)) {
            Ok(()) => {
                self.lines += 1;
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(RecordError::Behind {
                path: self.path.display().to_string(),
            }),
            // The thread ended: it failed, and says why.
            Err(TrySendError::Disconnected(_)) => Err(self
                .failure()
                .unwrap_or_else(|| self.write_error("the recorder thread ended"))),
        }
    }

    /// Waits, at most `timeout`, until every line handed over so far has been written
    /// to the operating system: an operator's note is answered only once it is safe
    /// from a crash, and a full disk is reported to whoever typed it.
    pub fn confirm(&mut self, timeout: Duration) -> Result<(), RecordError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let Some(tx) = &self.tx else {
            return Err(self.write_error("the record is closed"));
        };
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        let failed = || {
            self.failure()
                .unwrap_or_else(|| self.write_error("the recorder thread ended"))
        };
        match tx.try_send(ToWriter::Confirm(reply_tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(RecordError::Behind {
                    path: self.path.display().to_string(),
                });
            }
            Err(TrySendError::Disconnected(_)) => return Err(failed()),
        }
        match reply_rx.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            // The thread dropped the reply: it failed before reaching the request.
            Err(RecvTimeoutError::Disconnected) => Err(failed()),
            Err(RecvTimeoutError::Timeout) => Err(RecordError::Behind {
                path: self.path.display().to_string(),
            }),
        }
    }

    /// How long lines have waited so far before `write` and before `fdatasync`.
    #[must_use]
    pub fn sync_stats(&self) -> SyncStats {
        self.sync_stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// The writer's failure, if it failed.
    #[must_use]
    pub fn failure(&self) -> Option<RecordError> {
        self.failure.lock().ok().and_then(|slot| slot.clone())
    }

    /// Writes `last` (the summary), closes the record, and waits until everything is
    /// on disk.
    pub fn finish(mut self, last: Line) -> Result<PathBuf, RecordError> {
        let sent = self.record(last);
        self.close();
        sent?;
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(self.path.clone()),
        }
    }

    /// Closes the channel and waits for the thread to flush and end.
    fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            let e = self.write_error("the recorder thread panicked");
            if let Ok(mut slot) = self.failure.lock() {
                slot.get_or_insert(e);
            }
        }
    }

    fn write_error(&self, why: &str) -> RecordError {
        RecordError::Write {
            path: self.path.display().to_string(),
            why: why.to_owned(),
        }
    }
}

impl Drop for Recorder {
    /// A record dropped without [`Recorder::finish`] is flushed as it stands: it
    /// reads back as interrupted, with everything handed over.
    fn drop(&mut self) {
        self.close();
    }
}

/// `2026-11-24_101500_client-7`: sortable by name, and the client is in it.
fn file_stem(header: &Header) -> String {
    let when = jiff::Timestamp::from_millisecond(header.utc_ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()))
        .map_or_else(
            |_| "0000-00-00_000000".to_owned(),
            |z| z.strftime("%Y-%m-%d_%H%M%S").to_string(),
        );
    // Pseudonyms are `A-Z a-z 0-9 _ -` already (screening checks); keep only those
    // anyway, so no name can leave the folder.
    let client: String = header
        .client
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect();
    format!("{when}_{client}")
}

/// Creates `<stem>.jsonl`, or `<stem>-2.jsonl`... if taken: never overwrites a record.
fn create_unique(dir: &Path, stem: &str) -> io::Result<(PathBuf, fs::File)> {
    let mut options = crate::store::create_options();
    options.write(true).create_new(true);
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.jsonl")
        } else {
            format!("{stem}-{n}.jsonl")
        };
        let path = dir.join(name);
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("999 records named {stem} already exist"),
    ))
}

fn write_line(out: &mut BufWriter<fs::File>, line: &Line, mono_ms: i64) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Stamped { line, mono_ms }).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Watches the wall clock against the monotonic one, line by line.
struct ClockWatch {
    header_utc_ms: i64,
    /// `utc_ms − header utc − mono_ms` at the last line: constant while neither
    /// clock steps.
    skew_ms: i64,
}

impl ClockWatch {
    /// A `clock` line to write before `line` if the wall clock stepped since the last.
    fn step_before(&mut self, line: &Line, mono_ms: i64) -> Option<Line> {
        let skew_ms = line.utc_ms() - self.header_utc_ms - mono_ms;
        let step_ms = skew_ms - self.skew_ms;
        self.skew_ms = skew_ms;
        (step_ms.abs() > CLOCK_STEP_MS).then(|| {
            Line::Clock(ClockLine {
                utc_ms: line.utc_ms(),
                step_ms,
            })
        })
    }
}

fn flush_and_sync(out: &mut BufWriter<fs::File>) -> io::Result<()> {
    out.flush()?;
    out.get_ref().sync_data()
}

/// Writes lines until the station closes the channel: a line goes to the operating
/// system within [`HANDOVER_INTERVAL`] of coming, and its `fdatasync` starts within
/// [`SYNC_INTERVAL`] of coming.
fn write_loop(
    rx: &crossbeam_channel::Receiver<ToWriter>,
    out: &mut BufWriter<fs::File>,
    header_utc_ms: i64,
    stats: &Mutex<SyncStats>,
) -> io::Result<()> {
    let mut clock = ClockWatch {
        header_utc_ms,
        skew_ms: 0,
    };
    // When the oldest line not yet handed over / not yet synced must go, if any.
    let mut handover_at: Option<Instant> = None;
    let mut sync_at: Option<Instant> = None;
    // When the oldest line not yet handed over / not yet synced arrived.
    let mut unhanded_since: Option<Instant> = None;
    let mut unsynced_since: Option<Instant> = None;
    let ms = |since: Instant| u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
    let handed_over = |unhanded: &mut Option<Instant>, unsynced: &mut Option<Instant>| {
        if let Some(since) = unhanded.take() {
            if let Ok(mut s) = stats.lock() {
                s.max_unhanded_ms = s.max_unhanded_ms.max(ms(since));
            }
            unsynced.get_or_insert(since);
        }
    };
    loop {
        let deadline = match (handover_at, sync_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match deadline {
            Some(deadline) => rx.recv_deadline(deadline),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(ToWriter::Line(line, mono_ms)) => {
                if let Some(step) = clock.step_before(&line, mono_ms) {
                    write_line(out, &step, mono_ms)?;
                }
                write_line(out, &line, mono_ms)?;
                let came = Instant::now();
                unhanded_since.get_or_insert(came);
                handover_at.get_or_insert(came + HANDOVER_INTERVAL);
                sync_at.get_or_insert(came + SYNC_INTERVAL);
            }
            Ok(ToWriter::Confirm(reply)) => {
                if handover_at.take().is_some() {
                    out.flush()?;
                    handed_over(&mut unhanded_since, &mut unsynced_since);
                }
                // The asker may have given up waiting: nothing to do then.
                let _ = reply.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return flush_and_sync(out),
        }
        let now = Instant::now();
        let sync_due = sync_at.is_some_and(|at| now >= at);
        if handover_at.is_some_and(|at| now >= at) || (sync_due && handover_at.is_some()) {
            handover_at = None;
            out.flush()?;
            handed_over(&mut unhanded_since, &mut unsynced_since);
        }
        if sync_due {
            sync_at = None;
            out.get_ref().sync_data()?;
            if let (Some(since), Ok(mut s)) = (unsynced_since.take(), stats.lock()) {
                s.max_unsynced_ms = s.max_unsynced_ms.max(ms(since));
                s.syncs += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{NoteLine, StateWord, TelLine};

    fn header(client: &str) -> Header {
        Header {
            utc_ms: jiff::Timestamp::now().as_millisecond(),
            format: crate::record::FORMAT_NAME.to_owned(),
            version: crate::record::FORMAT_VERSION,
            station_version: "test".to_owned(),
            session_id: format!("S-{client}"),
            opened_at: "2026-11-24T10:00:00Z".to_owned(),
            practitioner: "P-7".to_owned(),
            client: client.to_owned(),
            screening: serde_json::json!({}),
            pen: None,
            calibration: None,
            zones: serde_json::json!({}),
            zones_hash: "0".repeat(64),
            simulated: true,
            alarm_sound: None,
        }
    }

    fn tel(n: u32) -> Line {
        Line::Tel(TelLine {
            // The wall clock now, as the station stamps it (a time far from the
            // header's would be a clock step, and add a `clock` line).
            utc_ms: jiff::Timestamp::now().as_millisecond(),
            n,
            t_ms: n,
            state: StateWord::Running,
            rpm: 6000,
            depth_um: 500,
            current_ma: 300,
            temp_dc: 300,
        })
    }

    fn lines_of(path: &Path) -> Vec<Line> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record line"))
            .collect()
    }

    #[test]
    fn the_header_is_on_disk_when_create_returns_and_the_file_is_private() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("sessions");
        let recorder = Recorder::create(&dir, &header("C-1")).expect("created");
        let lines = lines_of(recorder.path());
        assert!(matches!(lines.as_slice(), [Line::Header(h)] if h.client == "C-1"));
        let name = recorder.path().file_name().expect("name").to_string_lossy();
        assert!(name.ends_with("_C-1.jsonl"), "{name}");
        assert_eq!(crate::store::test_support::mode_of(recorder.path()), 0o600);
        assert_eq!(crate::store::test_support::mode_of(&dir), 0o700);
    }

    #[test]
    fn lines_reach_the_disk_without_finishing_and_a_dropped_record_keeps_them() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut recorder = Recorder::create(tmp.path(), &header("C-2")).expect("created");
        for n in 0..100 {
            recorder.record(tel(n)).expect("recorded");
        }
        // Handed over within HANDOVER_INTERVAL while the record stays open; the
        // deadline only bounds a failure.
        let path = recorder.path().to_path_buf();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lines_of(&path).len() < 101 {
            assert!(Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(recorder);
        let lines = lines_of(&path);
        assert_eq!(lines.len(), 101);
        assert!(!lines.iter().any(|l| matches!(l, Line::Summary(_))));
    }

    #[test]
    fn finish_writes_the_last_line_and_a_second_record_never_overwrites_the_first() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let h = header("C-3");
        let first = Recorder::create(tmp.path(), &h).expect("created");
        let mut second = Recorder::create(tmp.path(), &h).expect("created");
        assert_ne!(first.path(), second.path());
        assert!(second.path().to_string_lossy().ends_with("_C-3-2.jsonl"));
        second.record(tel(1)).expect("recorded");
        let note = Line::Note(NoteLine {
            utc_ms: jiff::Timestamp::now().as_millisecond(),
            author: "P-7".into(),
            text: "last".into(),
        });
        let path = second.finish(note.clone()).expect("finished");
        let lines = lines_of(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.last(), Some(&note));
        assert_eq!(lines_of(first.path()).len(), 1);
    }

    #[test]
    fn an_unwritable_folder_refuses_the_record_naming_it() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("sessions");
        std::fs::create_dir(&dir).expect("fs");
        let _guard = crate::store::test_support::Unwritable::new(&dir);
        let err = Recorder::create(&dir, &header("C-4"))
            .err()
            .expect("refused");
        assert!(matches!(err, RecordError::Create { .. }), "{err}");
        assert!(err.to_string().contains("sessions"), "{err}");
    }
}
