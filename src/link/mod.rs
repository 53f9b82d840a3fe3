//! The link to the pen: the only code that touches a serial port.
//!
//! [`Link::spawn`] opens the port on a background thread and speaks the host side of
//! the protocol: the `HELLO` handshake, sequence numbers and retries, heartbeats,
//! the E-stop byte, link-loss detection and reconnection. The rest of the program
//! talks to it only through bounded crossbeam channels: [`LinkCommand`]s in,
//! [`LinkEvent`]s and [`Telemetry`] out.
//!
//! **Invariant:** only this module opens or writes a port.
//! **Invariant:** after a link loss, a pen reboot or an E-stop, the link never sends a
//! command its owner asked for before that moment; queued commands fail instead.
//! **Invariant:** when the owner stops proving it is alive for
//! [`LinkConfig::owner_timeout`] while the needle runs or may (measured running, `RUN`
//! acknowledged, on the wire or held), no frame at all goes to the pen, so the pen's
//! watchdog stops a needle that a frozen interface can no longer stop. With the
//! needle idle the owner may be slower (an idle window draws a few frames a second):
//! the watchdog acts only on a running motor.

mod control;
pub mod discovery;
mod reader;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::protocol::{Calibration, Command, NakReason, PenEvent, PenInfo, Seq, Telemetry};
use crate::safety::interlock::{PenChange, Refusal, SafetySummary, SafetyUpdate, ZonePlan};
use crate::safety::needle::Trip;
use crate::safety::zones::ZoneTable;
pub use control::START_HOLD_MAX;
pub use stats::{DEADLINE_SLACK, LinkStats};

/// Timings and capacities of a link. The defaults follow the protocol document.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The serial port (or pseudo-terminal, or a symlink to one) to open.
    pub port_path: PathBuf,
    /// The zone table the interlock enforces.
    pub zones: ZoneTable,
    /// Telemetry rate asked for after the handshake, Hz (0 = off, or 10..=1000).
    pub telemetry_hz: u32,
    /// How often a heartbeat goes out; the protocol asks for at least every 100 ms.
    pub heartbeat_interval: Duration,
    /// How long to wait for an answer before resending (100 ms).
    pub retry_timeout: Duration,
    /// Resends before the link counts as lost (3).
    pub max_retries: u32,
    /// Silence, with telemetry on, after which the link counts as lost (500 ms).
    pub silence_timeout: Duration,
    /// E-stop byte resend period until the pen confirms (20 ms).
    pub estop_resend: Duration,
    /// The owner must prove it is alive at least this often (250 ms).
    pub owner_timeout: Duration,
    /// The whole handshake must finish within this.
    pub handshake_timeout: Duration,
    /// First reconnection delay; it doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnection delay.
    pub reconnect_max: Duration,
    /// Telemetry samples the owner's channel holds before new ones are dropped.
    pub telemetry_capacity: usize,
    /// Events the owner's channel holds.
    pub event_capacity: usize,
    /// How often statistics are sent.
    pub stats_interval: Duration,
    /// Called after every event but statistics reaches the owner's channel: the
    /// window draws only when something changes, and is woken by this rather than
    /// polling the link (`None`: the owner polls, as the console does).
    pub waker: Option<Waker>,
}

/// Wakes the link's owner when an event waits for it (the window: `egui`'s
/// `request_repaint`). Called on the link thread: it must be quick and never block.
#[derive(Clone)]
pub struct Waker(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

impl LinkConfig {
    /// The protocol's timings, for a port at `port_path`, telemetry at 100 Hz.
    #[must_use]
    pub fn new(port_path: impl Into<PathBuf>) -> Self {
        Self {
            port_path: port_path.into(),
            zones: ZoneTable::builtin(),
            telemetry_hz: 100,
            // Below 100 ms so that scheduling jitter never stretches a gap past it.
            heartbeat_interval: Duration::from_millis(80),
            retry_timeout: Duration::from_millis(100),
            max_retries: 3,
            silence_timeout: Duration::from_millis(500),
            estop_resend: Duration::from_millis(20),
            owner_timeout: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            // 16 s of telemetry at 1000 Hz: room for a slow frame, bounded memory.
            telemetry_capacity: 16_384,
            event_capacity: 1024,
            stats_interval: Duration::from_millis(250),
            waker: None,
        }
    }
}

/// Why a serial port could not be opened, in the words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortProblem {
    /// The user may not open it (not in the `dialout` group, no `uaccess` rule).
    PermissionDenied,
    /// No such port: the pen is unplugged, or the path is mistyped.
    NotFound,
    /// Another program holds it open (a serial monitor, another station).
    Busy,
    /// The path opens but is no serial port (a directory, a file, `/dev/null`).
    NotASerialPort,
}

impl PortProblem {
    /// Classifies an open error; `None` for anything else (a port that fails to
    /// configure, an I/O error): those are retried as a link that is not up yet.
    #[must_use]
    pub fn of(error: &serialport::Error) -> Option<Self> {
        use serialport::ErrorKind as K;
        // serialport reports a port held by another program (EBUSY from its
        // TIOCEXCL, or its exclusive `flock` refused: "Unable to acquire exclusive
        // lock") as `NoDevice`: told apart from a missing port by the description.
        let text = error.to_string();
        if text.contains("busy") || text.contains("lock") {
            return Some(Self::Busy);
        }
        // EISDIR, and ENOTTY from the terminal settings of something that is no
        // terminal ("Not a typewriter", "Inappropriate ioctl for device").
        if text.contains("Is a directory") || text.contains("typewriter") || text.contains("ioctl")
        {
            return Some(Self::NotASerialPort);
        }
        match error.kind() {
            K::NoDevice | K::Io(std::io::ErrorKind::NotFound) => Some(Self::NotFound),
            K::Io(std::io::ErrorKind::PermissionDenied) => Some(Self::PermissionDenied),
            K::Io(std::io::ErrorKind::ResourceBusy) => Some(Self::Busy),
            _ => None,
        }
    }

    /// What to tell the operator about `path`.
    #[must_use]
    pub fn message(&self, path: &str) -> String {
        match self {
            Self::PermissionDenied => format!(
                "permission denied on {path}: add your user to the dialout group \
                 (`sudo usermod -aG dialout $USER`, then log in again), or install the \
                 pen's udev rule (README, \"Serial port access\")"
            ),
            Self::NotFound => format!(
                "{path} does not exist: is the pen plugged in and switched on? \
                 `punctum ports` lists the serial ports"
            ),
            Self::Busy => format!(
                "{path} is held by another program (a serial monitor, another Punctum): \
                 close it, then connect again"
            ),
            Self::NotASerialPort => format!(
                "{path} is not a serial port: give the pen's port, e.g. /dev/ttyACM0 \
                 (`punctum ports` lists them)"
            ),
        }
    }
}

/// Identifies one command an owner asked for; its [`Answer`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the owner asks the link to do.
#[derive(Debug, Clone)]
pub enum LinkCommand {
    /// Send a command to the pen; the answer comes back as [`LinkEvent::Answer`].
    Send {
        /// The owner's id for it.
        id: RequestId,
        /// The command.
        command: Command,
    },
    /// Tell the interlock something only the station knows (a zone selection, the
    /// screening result, the registry's verdict); the result comes back as
    /// [`LinkEvent::SafetyApplied`].
    Safety {
        /// The owner's id for it.
        id: RequestId,
        /// The update.
        update: SafetyUpdate,
    },
    /// Ask the interlock whether `command` would go to the pen now, without sending
    /// it; the verdict comes back as [`LinkEvent::Prechecked`].
    Precheck {
        /// The owner's id for it.
        id: RequestId,
        /// The command.
        command: Command,
    },
    /// Send the E-stop byte now, and again every 20 ms until the pen confirms.
    EStop,
    /// Halt the pen if connected, then close the port and end the thread.
    Shutdown,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The pen acknowledged it.
    Ack,
    /// The pen refused it.
    Nak(NakReason),
    /// The interlock refused it: it never reached the wire.
    Refused(Refusal),
    /// No answer after the last retry; the link is being declared lost.
    Unanswered,
    /// It never reached the wire, and why (link down, cancelled by an E-stop...).
    NotSent(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ack => f.write_str("acknowledged"),
            Outcome::Nak(reason) => write!(f, "refused by the pen: NAK {reason}"),
            Outcome::Refused(refusal) => write!(f, "refused: {refusal}"),
            Outcome::Unanswered => f.write_str("unanswered: the link is being declared lost"),
            Outcome::NotSent(why) => write!(f, "not sent: {why}"),
        }
    }
}

/// The end of a command the owner asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The owner's id.
    pub id: RequestId,
    /// The command.
    pub command: Command,
    /// The sequence number it went out with, if it went out.
    pub seq: Option<Seq>,
    /// How it ended.
    pub outcome: Outcome,
    /// From the last send to the answer.
    pub round_trip: Option<Duration>,
}

/// Why the link was declared lost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LossReason {
    /// The port reported an error or went away.
    PortError(String),
    /// No line for 500 ms while telemetry was on.
    Silence,
    /// Lines came, but no telemetry sample for 500 ms while telemetry was on.
    TelemetryStopped,
    /// A command went unanswered after its third retry.
    Unanswered(String),
    /// The pen does not speak protocol 1, or its INFO was unusable.
    Incompatible(String),
    /// The handshake did not finish in time.
    HandshakeTimeout,
}

impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PortError(e) => write!(f, "port error: {e}"),
            Self::Silence => write!(f, "no line from the pen for 500 ms"),
            Self::TelemetryStopped => write!(
                f,
                "no telemetry from the pen for 500 ms (it answers, but no longer reports)"
            ),
            Self::Unanswered(verb) => write!(f, "{verb} unanswered after 3 retries"),
            Self::Incompatible(why) => write!(f, "incompatible pen: {why}"),
            Self::HandshakeTimeout => write!(f, "handshake did not finish in time"),
        }
    }
}

/// The link's state, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Trying to open the port; `last_error` is why the previous try failed.
    Connecting {
        /// Tries so far since the link was last up.
        attempt: u32,
        /// Why the last try failed.
        last_error: Option<String>,
        /// The port itself could not be opened, and why; the operator must act
        /// (retrying alone will not help with a permission, rarely with the others).
        port_problem: Option<PortProblem>,
    },
    /// Port open; `HELLO`, `CAL GET` and `TEL` under way.
    Handshaking,
    /// Ready for commands.
    Connected {
        /// The pen's INFO.
        info: PenInfo,
        /// The pen's calibration.
        calibration: Calibration,
    },
    /// The link was lost. The motor is assumed stopped (the pen's watchdog sees to it);
    /// reconnection follows, and a pen found in FAULT needs an operator's reset.
    Lost(LossReason),
    /// The link thread has ended.
    Closed,
}

/// What the link tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// The link changed state.
    State(LinkState),
    /// A command the owner asked for has ended.
    Answer(Answer),
    /// The pen reported an event (`EV` line).
    Pen {
        /// Pen time.
        t_ms: u32,
        /// What happened.
        event: PenEvent,
    },
    /// The pen sent INFO.
    Info(PenInfo),
    /// The pen sent its calibration.
    Calibration(Calibration),
    /// The simulated pen's gauge reading (`SIM GAUGE`), µm.
    Gauge {
        /// True protrusion, µm.
        true_um: i32,
    },
    /// The pen confirmed the E-stop (telemetry shows ESTOP, or `EV ... ESTOP`).
    EstopConfirmed,
    /// The owner stopped proving it is alive: no frame goes to the pen now.
    OwnerStalled,
    /// The owner is alive again; heartbeats resume.
    OwnerResumed,
    /// Counters.
    Stats(LinkStats),
    /// The result of a [`LinkCommand::Safety`]: for a zone selection, the plan the link
    /// now carries out (HALT, then the depth lowered to the new limit) before anything
    /// else.
    SafetyApplied {
        /// The owner's id.
        id: RequestId,
        /// Applied (with the zone plan, if it was a zone selection), or refused.
        result: Result<Option<ZonePlan>, Refusal>,
    },
    /// The interlock's view changed (zone, latched stops, cartridge, depth target).
    Safety(SafetySummary),
    /// A frame went to the pen, or one not asked by the owner was answered: what a
    /// session record needs to hold every command (heartbeats excepted).
    Wire(WireEvent),
    /// The needle monitor saw a sample it must not allow and the link has sent the
    /// E-stop byte (it resends it until the pen confirms). A stop is latched.
    NeedleStopped {
        /// What the monitor saw.
        trip: Trip,
        /// From the sample's arrival at the port reader to the E-stop byte written.
        reaction: Duration,
    },
    /// The owner's `RUN` is held until the needle is where the start rules need it
    /// (at most [`START_HOLD_MAX`]): it goes then, or ends refused. Stop, E-stop, a
    /// new depth or a zone change cancels it.
    StartHeld {
        /// The owner's id of the `RUN`.
        id: RequestId,
        /// The depth target it waits for, µm.
        target_um: Option<i32>,
        /// The needle's measured depth now, µm.
        depth_um: Option<i32>,
        /// Why it cannot go yet.
        refusal: Refusal,
    },
    /// A different pen (another serial) answered after a reconnection: a stop is
    /// latched, and the pen's calibration, cartridge and depth are judged afresh.
    PenChanged(PenChange),
    /// The interlock's verdict on a [`LinkCommand::Precheck`]: nothing was sent.
    Prechecked {
        /// The owner's id.
        id: RequestId,
        /// Would go, or the refusal.
        result: Result<(), Refusal>,
    },
}

/// Who asked for a command on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireOrigin {
    /// The owner (an operator, through the window or the console).
    Owner,
    /// The interlock carrying out a zone plan (`HALT`, the depth lowered).
    Interlock,
    /// The link's handshake (`HELLO`, `CAL GET`, `TEL`).
    Handshake,
    /// The link's orderly shutdown (`HALT`).
    Shutdown,
}

impl WireOrigin {
    /// The word a record uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WireOrigin::Owner => "operator",
            WireOrigin::Interlock => "interlock",
            WireOrigin::Handshake => "handshake",
            WireOrigin::Shutdown => "shutdown",
        }
    }
}

/// A command frame on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireEvent {
    /// Written for the first time (retries are counted in the statistics).
    Sent {
        /// Its sequence number.
        seq: Seq,
        /// The command.
        command: Command,
        /// Who asked.
        origin: WireOrigin,
    },
    /// Answered, for a command the owner did not ask for (the owner's own end as
    /// [`LinkEvent::Answer`]).
    Answered {
        /// Its sequence number.
        seq: Seq,
        /// The command.
        command: Command,
        /// Who asked.
        origin: WireOrigin,
        /// How it ended.
        outcome: Outcome,
        /// From the last send to the answer.
        round_trip: Duration,
    },
}

/// Why the link would not take a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The command queue is full: the owner is sending faster than the pen answers.
    #[error("the link's command queue is full")]
    Busy,
    /// The link thread has ended.
    #[error("the link thread has ended")]
    Closed,
}

/// The owner's handle on a running link. Dropping it shuts the link down.
pub struct Link {
    commands: Sender<LinkCommand>,
    events: Receiver<LinkEvent>,
    telemetry: Receiver<Telemetry>,
    liveness: Arc<AtomicU64>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts the link thread. It opens the port itself, and keeps trying.
    pub fn spawn(config: LinkConfig) -> std::io::Result<Self> {
        let (commands, command_rx) = crossbeam_channel::bounded(256);
        let (event_tx, events) = crossbeam_channel::bounded(config.event_capacity);
        let (telemetry_tx, telemetry) = crossbeam_channel::bounded(config.telemetry_capacity);
        let liveness = Arc::new(AtomicU64::new(0));
        let control = control::Control::new(
            config,
            command_rx,
            event_tx,
            telemetry_tx,
            Arc::clone(&liveness),
        );
        let thread = std::thread::Builder::new()
            .name("punctum-link".into())
            .spawn(move || control.run())?;
        Ok(Self {
            commands,
            events,
            telemetry,
            liveness,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
        })
    }

    /// Asks the link to send `command`; its end comes back as [`LinkEvent::Answer`].
    pub fn send(&self, command: Command) -> Result<RequestId, LinkError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.feed_liveness();
        match self.commands.try_send(LinkCommand::Send { id, command }) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => Err(LinkError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(LinkError::Closed),
        }
    }

    /// Tells the interlock `update`; the result comes back as
    /// [`LinkEvent::SafetyApplied`].
    pub fn update_safety(&self, update: SafetyUpdate) -> Result<RequestId, LinkError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.feed_liveness();
        match self.commands.try_send(LinkCommand::Safety { id, update }) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => Err(LinkError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(LinkError::Closed),
        }
    }

    /// Asks the interlock whether `command` would go to the pen now, sending nothing;
    /// the verdict comes back as [`LinkEvent::Prechecked`].
    pub fn precheck(&self, command: Command) -> Result<RequestId, LinkError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.feed_liveness();
        match self
            .commands
            .try_send(LinkCommand::Precheck { id, command })
        {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => Err(LinkError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(LinkError::Closed),
        }
    }

    /// Emergency stop: the E-stop byte goes out at once, then every 20 ms until the
    /// pen confirms. Queued commands are cancelled.
    pub fn estop(&self) -> Result<(), LinkError> {
        self.feed_liveness();
        // A blocking send: an E-stop must not be lost to a full queue. The link thread
        // drains this channel first, so the wait is short.
        self.commands
            .send(LinkCommand::EStop)
            .map_err(|_| LinkError::Closed)
    }

    /// Proves the owner is alive. Call it every frame (the receive helpers call it).
    pub fn feed_liveness(&self) {
        self.liveness.fetch_add(1, Ordering::Relaxed);
    }

    /// The events channel, for `select!`. Reading it directly does not feed liveness.
    #[must_use]
    pub fn events(&self) -> &Receiver<LinkEvent> {
        &self.events
    }

    /// The telemetry channel, for `select!`.
    #[must_use]
    pub fn telemetry(&self) -> &Receiver<Telemetry> {
        &self.telemetry
    }

    /// Waits up to `timeout` for an event, feeding liveness while it waits.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Option<LinkEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            self.feed_liveness();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            match self.events.recv_timeout(slice) {
                Ok(event) => return Some(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits up to `timeout` for an event that `pred` accepts, feeding liveness and
    /// passing every event it skips to `skipped`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&LinkEvent) -> bool,
        mut skipped: impl FnMut(LinkEvent),
    ) -> Option<LinkEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.recv_event_timeout(left)?;
            if pred(&event) {
                return Some(event);
            }
            skipped(event);
        }
    }

    /// Halts the pen if connected, closes the port and joins the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(LinkCommand::Shutdown);
        if let Some(thread) = self.thread.take() {
            // The thread ends within its HALT deadline; a panic there was already
            // reported by the panic hook, and there is nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}
