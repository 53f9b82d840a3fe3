//! The simulated pen's thread: it owns the pty master, feeds the model the bytes a
//! host writes, ticks it, and writes what it says. The link's misbehaviour (corrupted
//! lines, silence, unplugging) lives here, since the model knows nothing of ports.
//!
//! **Invariant:** the loop never blocks for long. Reads wait at most 20 ms (1 ms while
//! the motor runs, telemetry is fast or the mechanism moves, so the 300 ms watchdog
//! and 1000 Hz telemetry stay accurate); the master is non-blocking and writes wait at
//! most 1 ms, so a host that stops reading costs dropped output (counted), as a real
//! pen's full USB buffer would, never a stalled pen.
//!
//! The slave end of the pty stays open inside the sim while the port "exists", so the
//! master never sees a hang-up when a host closes and reopens the port.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use serialport::{SerialPort as _, TTYPort};

use super::pen::{JournalEntry, Journaled, ModelCounters, PenModel};
use super::{SimAction, SimConfig, SimError, XorShift64, cal_file};
use crate::protocol::{Calibration, PenState};

/// The journal keeps at most this many entries; older ones are dropped (and counted).
pub const JOURNAL_CAP: usize = 1_000_000;
/// Output waiting for a host that does not read is capped at this many bytes; lines
/// beyond it are dropped.
const PENDING_CAP_BYTES: usize = 16 * 1024;
/// Unthrottled telemetry is produced in batches of this many samples per write.
const BURST_SAMPLES: usize = 64;
const READ_BUF_BYTES: usize = 4096;
const IDLE_WAIT: Duration = Duration::from_millis(20);
const SLOW_TEL_WAIT: Duration = Duration::from_millis(5);
const BUSY_WAIT: Duration = Duration::from_millis(1);
const WRITE_WAIT: Duration = Duration::from_millis(1);
/// After a failed attempt to come back on a new pty, try again this much later.
const REPLUG_RETRY: Duration = Duration::from_secs(1);

/// serialport notes that `TTYPort::pair()` is not thread-safe on every platform.
static PTY_LOCK: Mutex<()> = Mutex::new(());

/// Creates a pseudo-terminal pair `(master, slave)` under a process-wide lock. Anything
/// in the process that makes pty pairs should come through here.
pub fn pty_pair() -> Result<(TTYPort, TTYPort), SimError> {
    let _guard = PTY_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(TTYPort::pair()?)
}

/// Statistics of a running simulated pen.
#[derive(Debug, Clone, PartialEq)]
pub struct SimStats {
    /// The pen's state.
    pub state: PenState,
    /// The boot counter.
    pub boot: u32,
    /// The telemetry rate, Hz (0 = off).
    pub tel_hz: u32,
    /// Counters of the pen model (telemetry samples produced, frames, discards...).
    pub model: ModelCounters,
    /// Telemetry lines produced but not written (silence, unplugged, host not reading).
    pub telemetry_dropped: u64,
    /// All lines produced but not written.
    pub lines_dropped: u64,
    /// Lines written with a bit flipped on purpose.
    pub lines_corrupted: u64,
    /// Bytes handed to the pty.
    pub bytes_written: u64,
    /// Journal entries dropped because the journal was full.
    pub journal_dropped: u64,
    /// The rotor's true speed, rpm: what a tachometer on the bench reads.
    pub true_rpm: f64,
    /// The needle's true protrusion, µm: what a depth gauge on the bench reads.
    pub true_depth_um: i32,
    /// The depth the pen reports (its position through its calibration), µm.
    pub reported_depth_um: i32,
    /// The depth mechanism is moving.
    pub depth_moving: bool,
}

impl Default for SimStats {
    fn default() -> Self {
        Self {
            state: PenState::Idle,
            boot: 0,
            tel_hz: 0,
            model: ModelCounters::default(),
            telemetry_dropped: 0,
            lines_dropped: 0,
            lines_corrupted: 0,
            bytes_written: 0,
            journal_dropped: 0,
            true_rpm: 0.0,
            true_depth_um: 0,
            reported_depth_um: 0,
            depth_moving: false,
        }
    }
}

/// What the handle tells the thread.
enum Control {
    Act(SimAction),
    Shutdown,
}

/// What the thread shares with the handle.
struct Shared {
    state: Mutex<SharedState>,
    changed: Condvar,
}

struct SharedState {
    entries: VecDeque<JournalEntry>,
    /// The absolute index of `entries[0]`: how many entries were dropped before it.
    first_index: u64,
    stats: SimStats,
    slave_path: PathBuf,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        // A panic elsewhere cannot leave the journal half-written: pushes are single
        // operations, so the data is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulated pen on a pseudo-terminal: the handle tests and `punctum sim`
/// hold. Dropping it stops the thread, joins it and removes the symlink it made.
pub struct SimPen {
    control: Sender<Control>,
    shared: Arc<Shared>,
    link_path: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimPen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPen")
            .field("port_path", &self.port_path())
            .finish_non_exhaustive()
    }
}

impl SimPen {
    /// Starts a pen on a new pty pair (and the symlink, if configured) and sends its
    /// `EV ... BOOT ... POWER` line.
    pub fn spawn(config: SimConfig) -> Result<Self, SimError> {
        config.pen.check().map_err(SimError::BadConfig)?;
        if !(0.0..=1.0).contains(&config.corrupt_fraction) {
            return Err(SimError::BadConfig(format!(
                "corrupt fraction {} is not between 0 and 1",
                config.corrupt_fraction
            )));
        }
        // A calibration file that exists wins; otherwise the pen starts with the
        // calibration it came with (identity and never dated, unless configured).
        let calibration = match &config.cal_file {
            Some(path) if path.exists() => cal_file::load(path)?,
            _ => config
                .initial_calibration
                .clone()
                .unwrap_or_else(Calibration::identity),
        };
        let port = Port::open()?;
        if let Some(link) = &config.link_path {
            point_link(link, &port.slave_path)?;
        }
        let slave_path = port.slave_path.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(SharedState {
                entries: VecDeque::new(),
                first_index: 0,
                stats: SimStats::default(),
                slave_path: slave_path.clone(),
                stopped: false,
            }),
            changed: Condvar::new(),
        });
        let (control_tx, control_rx) = crossbeam_channel::bounded(64);
        let mut out = Vec::new();
        let mut model = PenModel::new(config.pen.clone(), calibration, 0, &mut out);
        model.journal_note(0, Journaled::LinkUp { path: slave_path });
        let mut schedule = config.schedule;
        schedule.sort_by_key(|(at, _)| *at);
        let mut runner = Runner {
            rng: XorShift64::new(config.pen.seed ^ 0x5EED_C0DE),
            unthrottled: config.pen.unthrottled_telemetry,
            model,
            port: Some(port),
            link_path: config.link_path.clone(),
            cal_file: config.cal_file,
            shared: Arc::clone(&shared),
            control: control_rx,
            schedule,
            next_scheduled: 0,
            started: Instant::now(),
            out,
            pending: Vec::new(),
            corrupt_fraction: config.corrupt_fraction,
            lose_next: None,
            silence: None,
            absence: None,
            write_progress: false,
            counters: LinkCounters::default(),
            notes: Vec::new(),
        };
        runner.route_output();
        runner.publish();
        let thread = std::thread::Builder::new()
            .name("sim-pen".to_owned())
            .spawn(move || runner.run())
            .map_err(|e| {
                if let Some(link) = &config.link_path {
                    remove_link_if_ours(link, None);
                }
                SimError::Thread(e)
            })?;
        Ok(Self {
            control: control_tx,
            shared,
            link_path: config.link_path,
            thread: Some(thread),
        })
    }

    /// The path a host should open: the symlink if one is configured, else the current
    /// pty slave (`/dev/pts/N`), which changes after a simulated unplug.
    #[must_use]
    pub fn port_path(&self) -> PathBuf {
        self.link_path.clone().unwrap_or_else(|| self.slave_path())
    }

    /// The current pty slave path (`/dev/pts/N`).
    #[must_use]
    pub fn slave_path(&self) -> PathBuf {
        self.shared.lock().slave_path.clone()
    }

    /// Sends an action to the running pen. It is applied within about 20 ms.
    pub fn act(&self, action: SimAction) -> Result<(), SimError> {
        self.control
            .send_timeout(Control::Act(action), Duration::from_secs(5))
            .map_err(|_| SimError::Stopped)
    }

    /// A snapshot of the journal.
    #[must_use]
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.lock().entries.iter().cloned().collect()
    }

    /// The journal's end: entries journaled from now on have this index or higher.
    #[must_use]
    pub fn journal_mark(&self) -> u64 {
        let state = self.shared.lock();
        state.first_index + state.entries.len() as u64
    }

    /// The entries from index `mark` on (those still kept), and the new mark.
    #[must_use]
    pub fn journal_since(&self, mark: u64) -> (Vec<JournalEntry>, u64) {
        let state = self.shared.lock();
        let end = state.first_index + state.entries.len() as u64;
        // An index past usize::MAX is past the end too: the `min` below clamps it.
        let skip = usize::try_from(mark.saturating_sub(state.first_index)).unwrap_or(usize::MAX);
        let entries = state
            .entries
            .range(skip.min(state.entries.len())..)
            .cloned()
            .collect();
        (entries, end)
    }

    /// Waits up to `timeout` for a journal entry matching `pred`, looking at the whole
    /// journal (past entries included). `None` on timeout or when the pen has stopped.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&JournalEntry) -> bool,
    ) -> Option<JournalEntry> {
        self.wait_for_since(0, timeout, pred)
    }

    /// Like [`Self::wait_for`], looking only at entries from index `mark` on (see
    /// [`Self::journal_mark`]).
    pub fn wait_for_since(
        &self,
        mark: u64,
        timeout: Duration,
        pred: impl Fn(&JournalEntry) -> bool,
    ) -> Option<JournalEntry> {
        let deadline = Instant::now() + timeout;
        let mut next = mark;
        let mut state = self.shared.lock();
        loop {
            // An index past usize::MAX is past the end too: the `min` below clamps it.
            let skip =
                usize::try_from(next.saturating_sub(state.first_index)).unwrap_or(usize::MAX);
            if let Some(found) = state
                .entries
                .range(skip.min(state.entries.len())..)
                .find(|e| pred(e))
            {
                return Some(found.clone());
            }
            next = state.first_index + state.entries.len() as u64;
            if state.stopped {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The pen's statistics, as of the thread's last loop (at most about 20 ms old).
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Stops the thread, joins it and removes the symlink.
    pub fn shutdown(mut self) -> Result<(), SimError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), SimError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // If the channel is full or closed the thread is gone or will see the closed
        // channel once this handle drops; join either way.
        let _ = self
            .control
            .send_timeout(Control::Shutdown, Duration::from_secs(1));
        thread.join().map_err(|_| SimError::Panicked)
    }
}

impl Drop for SimPen {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!("simulated pen: {e}");
        }
    }
}

/// A pty pair as the pen holds it.
struct Port {
    master: TTYPort,
    /// Kept open so the master sees no hang-up while hosts close and reopen.
    _slave: TTYPort,
    slave_path: PathBuf,
}

impl Port {
    fn open() -> Result<Self, SimError> {
        let (master, slave) = pty_pair()?;
        // The master must never block the loop: a host that stops reading fills the
        // pty, and serialport's write would then wait until it reads again.
        let fd = master.as_raw_fd();
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| SimError::NonBlocking(e.into()))?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|e| SimError::NonBlocking(e.into()))?;
        let Some(name) = slave.name() else {
            return Err(SimError::Pty(serialport::Error::new(
                serialport::ErrorKind::Unknown,
                "the pty slave has no path",
            )));
        };
        Ok(Self {
            master,
            _slave: slave,
            slave_path: PathBuf::from(name),
        })
    }
}

/// Points the symlink `link` at `target`, replacing an existing symlink atomically.
fn point_link(link: &Path, target: &Path) -> Result<(), SimError> {
    // Numbers the temporary names (see below), across all pens in the process.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let link_err = |source| SimError::Link {
        path: link.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(link) {
        Ok(meta) if !meta.file_type().is_symlink() => {
            return Err(SimError::LinkOccupied {
                path: link.to_owned(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(link_err(e)),
    }
    // A unique temporary name beside the link, then a rename over it: a host opening
    // the link never finds it missing or half-made.
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(link_err)?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        link_err(e)
    })
}

/// Removes `link` if it is a symlink pointing at `target` (any symlink when `None`):
/// another pen may have taken the path over since.
fn remove_link_if_ours(link: &Path, target: Option<&Path>) {
    let Ok(points_at) = std::fs::read_link(link) else {
        return;
    };
    if target.is_none_or(|t| t == points_at)
        && let Err(e) = std::fs::remove_file(link)
    {
        tracing::warn!("simulated pen: cannot remove {}: {e}", link.display());
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct LinkCounters {
    telemetry_dropped: u64,
    lines_dropped: u64,
    lines_corrupted: u64,
    bytes_written: u64,
}

/// The thread's state.
struct Runner {
    model: PenModel,
    /// `None` while unplugged.
    port: Option<Port>,
    link_path: Option<PathBuf>,
    cal_file: Option<PathBuf>,
    shared: Arc<Shared>,
    control: Receiver<Control>,
    schedule: Vec<(Duration, SimAction)>,
    next_scheduled: usize,
    started: Instant,
    /// The model's output, not yet routed.
    out: Vec<u8>,
    /// Routed output not yet accepted by the pty.
    pending: Vec<u8>,
    corrupt_fraction: f64,
    /// The next output line beginning with this word (and a space) is lost.
    lose_next: Option<String>,
    rng: XorShift64,
    /// `Some` while silent.
    silence: Option<Ends>,
    /// `Some` while unplugged; [`Ends::WhenCleared`] means until told to reappear.
    absence: Option<Ends>,
    /// The last flush wrote something: the host is reading.
    write_progress: bool,
    counters: LinkCounters,
    notes: Vec<JournalEntry>,
    unthrottled: bool,
}

/// When a timed condition of the link (silence, unplugging) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// At this instant.
    At(Instant),
    /// When an action clears it.
    WhenCleared,
}

impl Ends {
    /// After `duration` from now; `None` means when cleared.
    fn after(duration: Option<Duration>) -> Self {
        duration.map_or(Self::WhenCleared, |d| Self::At(Instant::now() + d))
    }
}

impl Runner {
    fn run(mut self) {
        let mut buf = vec![0u8; READ_BUF_BYTES];
        loop {
            loop {
                match self.control.try_recv() {
                    Ok(Control::Act(action)) => self.apply(&action),
                    Ok(Control::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return self.finish();
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.run_schedule();
            self.end_timed_conditions();

            let wait = self.wait_time();
            match (&mut self.port, self.silence) {
                (Some(port), None) => {
                    // Setting the timeout only stores it; it cannot fail.
                    let _ = port.master.set_timeout(wait);
                    match port.master.read(&mut buf) {
                        Ok(n) if n > 0 => {
                            let now_ms = self.now_ms();
                            self.model.on_bytes(now_ms, &buf[..n], &mut self.out);
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            // Not expected while the slave is held open; do not spin.
                            tracing::warn!("simulated pen: read from pty failed: {e}");
                            if self.wait_for_control(IDLE_WAIT) {
                                return self.finish();
                            }
                        }
                    }
                }
                // Silent or unplugged: the pen lives on, the port is left alone.
                _ => {
                    if self.wait_for_control(wait) {
                        return self.finish();
                    }
                }
            }

            let now_ms = self.now_ms();
            self.model.tick(now_ms, &mut self.out);
            if self.unthrottled && self.pending.is_empty() && self.can_send() {
                self.model
                    .telemetry_burst(now_ms, BURST_SAMPLES, &mut self.out);
            }
            self.route_output();
            self.flush();
            self.publish();
        }
    }

    /// Waits up to `wait` for one control message and handles it; true on shutdown.
    fn wait_for_control(&mut self, wait: Duration) -> bool {
        match self.control.recv_timeout(wait) {
            Ok(Control::Act(action)) => {
                self.apply(&action);
                false
            }
            Ok(Control::Shutdown) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn can_send(&self) -> bool {
        self.port.is_some() && self.silence.is_none()
    }

    /// How long the next read may wait.
    fn wait_time(&self) -> Duration {
        let tel_hz = self.model.tel_hz();
        let streaming = self.unthrottled && tel_hz > 0;
        if self.write_progress && (streaming || !self.pending.is_empty()) {
            // The host is reading and there is more to send: do not wait.
            Duration::ZERO
        } else if self.model.state() == PenState::Running
            || tel_hz >= 500
            || streaming
            || self.model.depth_moving()
            || !self.pending.is_empty()
        {
            BUSY_WAIT
        } else if tel_hz > 0 {
            SLOW_TEL_WAIT
        } else {
            IDLE_WAIT
        }
    }

    fn run_schedule(&mut self) {
        let elapsed = self.started.elapsed();
        while let Some((at, action)) = self.schedule.get(self.next_scheduled)
            && *at <= elapsed
        {
            // A copy, since applying it borrows `self` mutably.
            let action = action.clone();
            self.next_scheduled += 1;
            self.apply(&action);
        }
    }

    fn end_timed_conditions(&mut self) {
        let now = Instant::now();
        if let Some(Ends::At(until)) = self.silence
            && now >= until
        {
            self.end_silence();
        }
        if let Some(Ends::At(until)) = self.absence
            && now >= until
        {
            self.replug();
        }
    }

    fn apply(&mut self, action: &SimAction) {
        let now_ms = self.now_ms();
        self.model.act(now_ms, action, &mut self.out);
        match action {
            SimAction::Corrupt(fraction) => self.corrupt_fraction = fraction.clamp(0.0, 1.0),
            SimAction::LoseNext(word) => self.lose_next = Some(format!("{word} ")),
            SimAction::GoSilent { duration } => {
                if self.silence.is_none() {
                    self.model.journal_note(now_ms, Journaled::SilenceStarted);
                    self.drop_pending();
                }
                self.silence = Some(Ends::after(*duration));
            }
            SimAction::Disappear { duration } => {
                self.unplug();
                self.absence = Some(Ends::after(*duration));
            }
            SimAction::Reappear => {
                if self.absence.is_some() {
                    self.replug();
                }
            }
            SimAction::ClearFaults => {
                self.corrupt_fraction = 0.0;
                if self.silence.is_some() {
                    self.end_silence();
                }
                if self.absence.is_some() {
                    self.replug();
                }
            }
            SimAction::InjectFault(_)
            | SimAction::Reboot(_)
            | SimAction::PressStartButton
            | SimAction::PressStopButton
            | SimAction::RemoveCartridge
            | SimAction::TelemetryRate(_)
            | SimAction::InsertCartridge(_) => {}
        }
    }

    fn end_silence(&mut self) {
        self.silence = None;
        let now_ms = self.now_ms();
        self.model.journal_note(now_ms, Journaled::SilenceEnded);
    }

    fn drop_pending(&mut self) {
        for line in self.pending.split_inclusive(|&b| b == b'\n') {
            self.counters.lines_dropped += 1;
            if line.starts_with(b"T ") {
                self.counters.telemetry_dropped += 1;
            }
        }
        self.pending.clear();
    }

    /// Closes both ends of the pty, as unplugging the pen's USB would.
    fn unplug(&mut self) {
        let Some(port) = self.port.take() else {
            return;
        };
        self.drop_pending();
        self.model.reset_input();
        if let Some(link) = &self.link_path {
            // The device node is gone while unplugged; a stale link could even reach
            // another pen's pty once the kernel reuses the number.
            remove_link_if_ours(link, Some(&port.slave_path));
        }
        drop(port);
        let now_ms = self.now_ms();
        self.model.journal_note(now_ms, Journaled::LinkDown);
    }

    /// Comes back on a new pty pair and re-points the symlink.
    fn replug(&mut self) {
        if self.port.is_some() {
            self.absence = None;
            return;
        }
        let port = match Port::open() {
            Ok(port) => port,
            Err(e) => {
                tracing::warn!("simulated pen: cannot come back on a new pty: {e}");
                self.absence = Some(Ends::At(Instant::now() + REPLUG_RETRY));
                return;
            }
        };
        if let Some(link) = &self.link_path
            && let Err(e) = point_link(link, &port.slave_path)
        {
            tracing::warn!("simulated pen: {e}");
        }
        let path = port.slave_path.clone();
        self.shared.lock().slave_path.clone_from(&path);
        self.port = Some(port);
        self.absence = None;
        self.write_progress = false;
        let now_ms = self.now_ms();
        self.model.journal_note(now_ms, Journaled::LinkUp { path });
    }

    /// Moves the model's output to the write buffer, corrupting some lines on purpose
    /// and dropping what cannot be sent.
    fn route_output(&mut self) {
        let can_send = self.can_send();
        let out = std::mem::take(&mut self.out);
        for line in out.split_inclusive(|&b| b == b'\n') {
            if let Some(word) = &self.lose_next
                && line.starts_with(word.as_bytes())
            {
                self.lose_next = None;
                self.counters.lines_dropped += 1;
                continue;
            }
            if !can_send || self.pending.len() + line.len() > PENDING_CAP_BYTES {
                self.counters.lines_dropped += 1;
                if line.starts_with(b"T ") {
                    self.counters.telemetry_dropped += 1;
                }
                continue;
            }
            let start = self.pending.len();
            self.pending.extend_from_slice(line);
            if self.corrupt_fraction > 0.0 && self.rng.next_f64() < self.corrupt_fraction {
                let end = self.pending.len();
                flip_a_bit(&mut self.pending[start..end], &mut self.rng);
                self.counters.lines_corrupted += 1;
            }
        }
        self.out = out;
        self.out.clear();
    }

    /// Writes what the pty accepts now, waiting at most a few milliseconds.
    fn flush(&mut self) {
        self.write_progress = false;
        let Some(port) = &mut self.port else {
            return;
        };
        let _ = port.master.set_timeout(WRITE_WAIT);
        for _ in 0..4 {
            if self.pending.is_empty() {
                break;
            }
            match port.master.write(&self.pending) {
                Ok(n) if n > 0 => {
                    self.pending.drain(..n);
                    self.counters.bytes_written += n as u64;
                    self.write_progress = true;
                }
                // Full (the host is not reading) or a hiccup: try again next loop.
                Ok(_) | Err(_) => break,
            }
        }
    }

    /// Persists calibration changes, then hands new journal entries and fresh
    /// statistics to the handle.
    fn publish(&mut self) {
        self.notes.extend(self.model.drain_journal());
        let mut failures = Vec::new();
        for entry in &self.notes {
            if let (Journaled::CalibrationChanged(cal), Some(path)) = (&entry.what, &self.cal_file)
                && let Err(e) = cal_file::store(path, cal)
            {
                tracing::warn!("simulated pen: {e}");
                failures.push(JournalEntry {
                    what: Journaled::CalPersistFailed {
                        error: e.to_string(),
                    },
                    ..entry.clone()
                });
            }
        }
        self.notes.extend(failures);
        let mut state = self.shared.lock();
        let had_news = !self.notes.is_empty();
        for entry in self.notes.drain(..) {
            if state.entries.len() >= JOURNAL_CAP {
                state.entries.pop_front();
                state.first_index += 1;
            }
            state.entries.push_back(entry);
        }
        let counters = self.counters;
        state.stats = SimStats {
            state: self.model.state(),
            boot: self.model.boot(),
            tel_hz: self.model.tel_hz(),
            model: self.model.counters(),
            telemetry_dropped: counters.telemetry_dropped,
            lines_dropped: counters.lines_dropped,
            lines_corrupted: counters.lines_corrupted,
            bytes_written: counters.bytes_written,
            journal_dropped: state.first_index,
            true_rpm: self.model.true_rpm(),
            true_depth_um: self.model.true_depth_um(),
            reported_depth_um: self.model.reported_depth_um(),
            depth_moving: self.model.depth_moving(),
        };
        drop(state);
        if had_news {
            self.shared.changed.notify_all();
        }
    }

    fn finish(mut self) {
        self.publish();
        if let (Some(link), Some(port)) = (&self.link_path, &self.port) {
            remove_link_if_ours(link, Some(&port.slave_path));
        }
        self.port = None;
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

/// Flips one bit of a framed line (not its `\n`), never making a `\r` or `\n`: those
/// would change the line's framing rather than its content, and a `\r` dropped by the
/// receiver could, once in 65536, leave a line whose CRC still matches.
fn flip_a_bit(line: &mut [u8], rng: &mut XorShift64) {
    let len = line.len().saturating_sub(1);
    if len == 0 {
        return;
    }
    loop {
        let at = rng.below(len);
        let flipped = line[at] ^ (1 << rng.below(7));
        if flipped != b'\n' && flipped != b'\r' {
            line[at] = flipped;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        BootReason, Command, Decoded, EstopSource, FaultCode, FrameDecoder, PenEvent, PenMessage,
        Seq, encode_frame,
    };
    use crate::sim::Answer;

    const DEADLINE: Duration = Duration::from_secs(20);

    /// The host's end for tests: a real serial port opened by path.
    struct Host {
        port: TTYPort,
        decoder: FrameDecoder,
        lines: VecDeque<PenMessage>,
    }

    impl Host {
        fn open(path: &Path) -> Self {
            let port = serialport::new(path.to_string_lossy(), 115_200)
                .timeout(Duration::from_millis(50))
                .open_native()
                .expect("open the sim's port");
            Self {
                port,
                decoder: FrameDecoder::new(),
                lines: VecDeque::new(),
            }
        }

        fn send(&mut self, body: &str) {
            let mut framed = Vec::new();
            encode_frame(body, &mut framed).expect("valid body");
            self.port.write_all(&framed).expect("write");
        }

        /// Reads until a line matching `pred` arrives; panics at the deadline.
        fn expect(&mut self, what: &str, pred: impl Fn(&PenMessage) -> bool) -> PenMessage {
            let deadline = Instant::now() + DEADLINE;
            loop {
                while let Some(line) = self.lines.pop_front() {
                    if pred(&line) {
                        return line;
                    }
                }
                assert!(Instant::now() < deadline, "no {what} before the deadline");
                let mut buf = [0u8; 1024];
                match self.port.read(&mut buf) {
                    Ok(n) => {
                        let lines = &mut self.lines;
                        self.decoder.feed(&buf[..n], |d| {
                            if let Decoded::Frame(body) = d
                                && let Ok(m) = PenMessage::parse(body)
                            {
                                lines.push_back(m);
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => panic!("read failed: {e}"),
                }
            }
        }

        fn hello(&mut self, seq: u16) {
            self.send(&format!("{seq} HELLO 1"));
            let ack = Seq::new(seq).expect("nonzero");
            self.expect("ACK", |m| *m == PenMessage::Ack(ack));
            self.expect("INFO", |m| matches!(m, PenMessage::Info(_)));
        }
    }

    fn event(e: &JournalEntry, wanted: PenEvent) -> bool {
        e.what == Journaled::Event(wanted)
    }

    #[test]
    fn hello_over_a_real_pty_gets_ack_info_and_cartridge() {
        let pen = SimPen::spawn(SimConfig::default()).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.port.write_all(b"1 HELLO 1*B18E\n").expect("write");
        let boot = host.expect("BOOT", |m| matches!(m, PenMessage::Event { .. }));
        assert!(matches!(
            boot,
            PenMessage::Event {
                event: PenEvent::Boot {
                    boot: 1,
                    reason: BootReason::Power
                },
                ..
            }
        ));
        host.expect("ACK 1", |m| *m == PenMessage::Ack(Seq::FIRST));
        let PenMessage::Info(info) = host.expect("INFO", |_| true) else {
            panic!("INFO must follow the ACK");
        };
        assert_eq!(
            (info.model.as_str(), info.proto, info.boot),
            ("MNP-1", 1, 1)
        );
        assert_eq!(info.serial, "SIM00001");
        let cart = host.expect("CART", |_| true);
        assert!(
            matches!(
                cart,
                PenMessage::Event {
                    event: PenEvent::Cartridge { needles: 12, .. },
                    ..
                }
            ),
            "{cart:?}"
        );
        let hello = pen
            .wait_for(DEADLINE, |e| matches!(e.what, Journaled::Command { .. }))
            .expect("journaled");
        assert!(matches!(
            hello.what,
            Journaled::Command {
                command: Some(Command::Hello { proto: 1 }),
                answer: Answer::Ack,
                duplicate: false,
                ..
            }
        ));
        pen.shutdown().expect("clean shutdown");
    }

    #[test]
    fn the_port_can_be_closed_and_reopened_by_the_host() {
        let pen = SimPen::spawn(SimConfig::default()).expect("spawn");
        let path = pen.port_path();
        Host::open(&path).hello(1);
        let mut again = Host::open(&path);
        again.hello(2);
    }

    #[test]
    fn the_estop_byte_mid_line_stops_a_running_pen() {
        let pen = SimPen::spawn(SimConfig::default()).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 RUN");
        host.expect("ACK 2", |m| *m == PenMessage::Ack(Seq::new(2).expect("2")));
        host.port.write_all(b"3 H\x18B*").expect("write");
        host.expect("ESTOP", |m| {
            matches!(
                m,
                PenMessage::Event {
                    event: PenEvent::Estop(EstopSource::Host),
                    ..
                }
            )
        });
        assert!(
            pen.wait_for(DEADLINE, |e| e.what == Journaled::EstopByte)
                .is_some()
        );
        // Whatever was left of the broken line never becomes a command.
        assert!(
            !pen.journal()
                .iter()
                .any(|e| matches!(&e.what, Journaled::Command { seq, .. } if seq.get() == 3))
        );
    }

    #[test]
    fn the_watchdog_fires_when_the_host_goes_quiet() {
        let pen = SimPen::spawn(SimConfig::default()).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 RUN");
        let fault = pen
            .wait_for(DEADLINE, |e| event(e, PenEvent::Fault(FaultCode::Watchdog)))
            .expect("watchdog fault");
        let run = pen
            .wait_for(DEADLINE, |e| {
                matches!(
                    e.what,
                    Journaled::Command {
                        command: Some(Command::Run),
                        ..
                    }
                )
            })
            .expect("RUN journaled");
        // Pen-side time: never before 300 ms after the last valid frame.
        assert!(
            fault.t_ms - run.t_ms >= 300,
            "{} vs {}",
            fault.t_ms,
            run.t_ms
        );
        host.expect("FAULT WATCHDOG", |m| {
            matches!(
                m,
                PenMessage::Event {
                    event: PenEvent::Fault(FaultCode::Watchdog),
                    ..
                }
            )
        });
    }

    #[test]
    fn after_disappearing_the_pen_comes_back_through_the_symlink() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("pen");
        let config = SimConfig {
            link_path: Some(link.clone()),
            ..SimConfig::default()
        };
        let pen = SimPen::spawn(config).expect("spawn");
        assert_eq!(pen.port_path(), link);
        let first = pen.slave_path();
        assert_eq!(std::fs::read_link(&link).expect("link"), first);
        Host::open(&link).hello(1);

        let mark = pen.journal_mark();
        pen.act(SimAction::Disappear {
            duration: Some(Duration::from_millis(300)),
        })
        .expect("act");
        pen.wait_for_since(mark, DEADLINE, |e| e.what == Journaled::LinkDown)
            .expect("gone");
        let up = pen
            .wait_for_since(mark, DEADLINE, |e| {
                matches!(e.what, Journaled::LinkUp { .. })
            })
            .expect("back");
        let Journaled::LinkUp { path } = up.what else {
            unreachable!("matched above");
        };
        assert_eq!(std::fs::read_link(&link).expect("link"), path);
        let mut host = Host::open(&link);
        host.hello(2);
        drop(pen);
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "the link is removed at shutdown"
        );
    }

    #[test]
    fn a_host_that_stops_reading_costs_dropped_lines_not_a_stuck_pen() {
        let pen = SimPen::spawn(SimConfig::default()).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 TEL 1000");
        // The host reads nothing more; the pty fills (about 70 kB, two seconds of
        // 1000 Hz telemetry) and then the pen must drop lines.
        let deadline = Instant::now() + 3 * DEADLINE;
        while pen.stats().telemetry_dropped == 0 {
            assert!(Instant::now() < deadline, "no line was ever dropped");
            let _ = pen.wait_for_since(pen.journal_mark(), Duration::from_millis(50), |_| true);
        }
        // The pen still acts at once.
        let mark = pen.journal_mark();
        pen.act(SimAction::PressStopButton).expect("act");
        pen.wait_for_since(mark, DEADLINE, |e| {
            event(e, PenEvent::Estop(EstopSource::Button))
        })
        .expect("the pen still runs");
        pen.shutdown().expect("shutdown does not hang");
    }

    #[test]
    fn unthrottled_telemetry_streams_without_loss_to_a_reading_host() {
        let config = SimConfig {
            pen: crate::sim::PenConfig {
                unthrottled_telemetry: true,
                ..crate::sim::PenConfig::default()
            },
            ..SimConfig::default()
        };
        let pen = SimPen::spawn(config).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 TEL 1000");
        let mut next_n = 0u32;
        while next_n < 20_000 {
            let PenMessage::Telemetry(t) =
                host.expect("telemetry", |m| matches!(m, PenMessage::Telemetry(_)))
            else {
                unreachable!("matched above");
            };
            assert_eq!(t.n, next_n, "no sample is lost");
            next_n += 1;
        }
        assert_eq!(host.decoder.discards().total(), 0);
        assert_eq!(pen.stats().telemetry_dropped, 0);
    }

    #[test]
    // YYYY_MM_DD: grouped by date field, which reads better than by thousands.
    #[allow(clippy::inconsistent_digit_grouping)]
    fn a_reboot_is_announced_and_the_calibration_survives_it_and_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cal_path = dir.path().join("cal.json");
        let config = SimConfig {
            cal_file: Some(cal_path.clone()),
            ..SimConfig::default()
        };
        let pen = SimPen::spawn(config.clone()).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 CAL SET depth_offset_um=-20 date=20250101 tech=kim");
        host.expect("ACK 2", |m| *m == PenMessage::Ack(Seq::new(2).expect("2")));
        pen.wait_for(DEADLINE, |e| {
            matches!(e.what, Journaled::CalibrationChanged(_))
        })
        .expect("changed");
        pen.act(SimAction::Reboot(BootReason::Brownout))
            .expect("act");
        host.expect("BOOT 2", |m| {
            matches!(
                m,
                PenMessage::Event {
                    event: PenEvent::Boot {
                        boot: 2,
                        reason: BootReason::Brownout
                    },
                    ..
                }
            )
        });
        host.hello(3);
        host.send("4 CAL GET");
        let PenMessage::Cal(cal) = host.expect("CAL", |m| matches!(m, PenMessage::Cal(_))) else {
            unreachable!("matched above");
        };
        assert_eq!(
            (cal.depth_offset_um, cal.date, cal.tech.as_str()),
            (-20, 2025_01_01, "kim")
        );
        pen.shutdown().expect("shutdown");

        assert_eq!(cal_file::load(&cal_path).expect("load"), cal);
        let pen = SimPen::spawn(config).expect("restart");
        let mut host = Host::open(&pen.port_path());
        host.hello(1);
        host.send("2 CAL GET");
        let again = host.expect("CAL", |m| matches!(m, PenMessage::Cal(_)));
        assert_eq!(again, PenMessage::Cal(cal));
    }

    #[test]
    fn a_corrupt_calibration_file_fails_the_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cal_path = dir.path().join("cal.json");
        std::fs::write(&cal_path, "garbage").expect("write");
        let config = SimConfig {
            cal_file: Some(cal_path),
            ..SimConfig::default()
        };
        assert!(matches!(
            SimPen::spawn(config),
            Err(SimError::CalFile(cal_file::CalFileError::Parse { .. }))
        ));
    }

    #[test]
    fn corrupted_lines_are_discarded_by_the_host_and_counted() {
        let config = SimConfig {
            corrupt_fraction: 0.5,
            ..SimConfig::default()
        };
        let pen = SimPen::spawn(config).expect("spawn");
        let mut host = Host::open(&pen.port_path());
        host.send("1 HELLO 1");
        host.send("2 TEL 1000");
        let deadline = Instant::now() + DEADLINE;
        while host.decoder.discards().total() < 20 {
            assert!(Instant::now() < deadline, "too few corrupted lines seen");
            let mut buf = [0u8; 1024];
            if let Ok(n) = host.port.read(&mut buf) {
                host.decoder.feed(&buf[..n], |_| {});
            }
        }
        // The pen publishes its counters just after writing: wait for them.
        while pen.stats().lines_corrupted < 20 {
            assert!(
                Instant::now() < deadline,
                "the pen did not count its corruption"
            );
            let _ = pen.wait_for_since(pen.journal_mark(), Duration::from_millis(10), |_| true);
        }
    }

    #[test]
    fn flipping_a_bit_never_touches_the_line_end() {
        let mut rng = XorShift64::new(3);
        for _ in 0..10_000 {
            let mut line = b"ACK 1*92BD\n".to_vec();
            flip_a_bit(&mut line, &mut rng);
            assert_eq!(line.last(), Some(&b'\n'));
            assert!(!line[..line.len() - 1].contains(&b'\n'));
            assert!(!line.contains(&b'\r'));
            assert_ne!(line, b"ACK 1*92BD\n");
        }
    }
}
