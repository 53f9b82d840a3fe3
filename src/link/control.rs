//! The link's control thread: the host side of the protocol.
//!
//! One thread owns the port's write half and every timer: the handshake, sequence
//! numbers, retries, heartbeats, the E-stop byte, link-loss detection and
//! reconnection. It waits with `select!` on the owner's commands and the reader's
//! lines, so an E-stop goes out the moment it is asked for.
//!
//! Operator commands go out one at a time (stop-and-wait): a retry can then never
//! overtake a later command, so `DEPTH 500` then `DEPTH 300` cannot end at 500.
//! Heartbeats go out on their own timer beside them; their order does not matter.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, select};
use serialport::{SerialPort as _, TTYPort};

use super::reader::{self, FromReader, ReaderMsg};
use super::stats::{DeadlineWatch, LinkStats, RttWindow};
use super::{
    Answer, LinkCommand, LinkConfig, LinkEvent, LinkState, LossReason, Outcome, PortProblem,
    RequestId, WireEvent, WireOrigin,
};
use crate::protocol::counter::{CounterStep, counter_step};
use crate::protocol::{
    Calibration, Command, ESTOP_BYTE, PROTOCOL_VERSION, PenEvent, PenInfo, PenMessage, PenState,
    Seq, Telemetry,
};
use crate::safety::interlock::{self, InterlockState, Refusal, Rule, SafetySummary, SafetyUpdate};
use crate::safety::needle::Trip;

/// The loop wakes at least this often to run its timers.
const TICK: Duration = Duration::from_millis(5);
/// How long an orderly shutdown waits for the pen to acknowledge `HALT`.
const SHUTDOWN_HALT_WAIT: Duration = Duration::from_millis(500);
/// How long a `RUN` may be held while the needle moves into place (or the next
/// sample is due) before it is refused: the pen's whole depth range at 5 mm/s
/// (500 ms), the interlock's settle time, and room to spare. The pen itself faults
/// a move that takes over 1 s.
pub const START_HOLD_MAX: Duration = Duration::from_millis(1500);

/// Who asked for a command in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Owner(RequestId),
    /// Carrying out a zone plan (HALT, then lowering the depth).
    Interlock,
    Handshake,
    Heartbeat,
    Shutdown,
}

impl Origin {
    /// How a record names it; `None` for heartbeats, which are not recorded.
    fn wire(&self) -> Option<WireOrigin> {
        match self {
            Origin::Owner(_) => Some(WireOrigin::Owner),
            Origin::Interlock => Some(WireOrigin::Interlock),
            Origin::Handshake => Some(WireOrigin::Handshake),
            Origin::Shutdown => Some(WireOrigin::Shutdown),
            Origin::Heartbeat => None,
        }
    }
}

#[derive(Debug)]
struct InFlight {
    seq: Seq,
    command: Command,
    origin: Origin,
    frame: Vec<u8>,
    last_sent: Instant,
    retries: u32,
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `HELLO` sent.
    Hello,
    /// `DEPTH 0` sent: the pen keeps its depth target across `HELLO`, so the station
    /// retracts the needle before anything else, and knows the target from then on.
    Retract,
    /// `CAL GET` sent; waiting for its ACK, INFO and CAL.
    Cal { acked: bool },
    /// `TEL` sent.
    Tel,
    /// Ready for the owner's commands.
    Ready,
}

/// One open port.
struct Connection {
    port: TTYPort,
    stop_reader: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    step: Step,
    handshake_deadline: Instant,
    last_rx: Instant,
    telemetry_on: bool,
    inflight: Vec<InFlight>,
    queue: VecDeque<(Origin, Command)>,
    next_heartbeat: Instant,
    /// When telemetry was last asked for (`TEL` acknowledged): the silence of the
    /// telemetry is counted from here until the first sample.
    last_telemetry_asked: Instant,
    info: Option<PenInfo>,
    calibration: Option<Calibration>,
}

impl Connection {
    fn ready(&self) -> bool {
        self.step == Step::Ready
    }

    /// An operator or handshake command is in flight (heartbeats do not count).
    fn busy(&self) -> bool {
        self.inflight.iter().any(|f| f.origin != Origin::Heartbeat)
    }
}

pub(crate) struct Control {
    config: LinkConfig,
    commands: Receiver<LinkCommand>,
    events: Sender<LinkEvent>,
    telemetry: Sender<Telemetry>,
    liveness: Arc<AtomicU64>,
    reader_tx: Sender<FromReader>,
    reader_rx: Receiver<FromReader>,
    conn: Option<Connection>,
    generation: u64,
    next_seq: Seq,
    stats: LinkStats,
    rtt: RttWindow,
    deadlines: DeadlineWatch,
    /// The link was up (handshake done) since it was last declared lost.
    was_up: bool,
    attempt: u32,
    next_attempt: Instant,
    backoff: Duration,
    last_liveness: u64,
    liveness_seen: Instant,
    owner_stalled: bool,
    estop_pending: bool,
    next_estop: Instant,
    expected_n: Option<u32>,
    /// The pen clock of the last sample, ms: tells lost samples from a reset counter.
    last_t_ms: Option<u32>,
    next_stats: Instant,
    rate_samples: u64,
    rate_since: Instant,
    shutdown_by: Option<Instant>,
    scratch: String,
    /// The interlock's state: every command is checked against it before the wire.
    interlock: InterlockState,
    /// The last summary sent to the owner.
    last_summary: Option<SafetySummary>,
    /// The owner's `RUN` at the head of the queue, held until the needle is in place.
    held_start: Option<HeldStart>,
    /// Not before then is telemetry asked for again (see `reask_telemetry_if_slow`).
    next_tel_reask: Instant,
}

/// A `RUN` held at the head of the queue: refused so far only for a reason that
/// resolves by itself (the needle on its way, the next sample due).
#[derive(Debug, Clone)]
struct HeldStart {
    id: RequestId,
    since: Instant,
}

impl Control {
    pub(crate) fn new(
        config: LinkConfig,
        commands: Receiver<LinkCommand>,
        events: Sender<LinkEvent>,
        telemetry: Sender<Telemetry>,
        liveness: Arc<AtomicU64>,
    ) -> Self {
        let now = Instant::now();
        let (reader_tx, reader_rx) = crossbeam_channel::bounded(8192);
        let backoff = config.reconnect_min;
        let mut interlock = InterlockState::new(config.zones.clone());
        interlock.telemetry_hz = config.telemetry_hz;
        Self {
            config,
            commands,
            events,
            telemetry,
            liveness,
            reader_tx,
            reader_rx,
            conn: None,
            generation: 0,
            next_seq: Seq::FIRST,
            stats: LinkStats::default(),
            rtt: RttWindow::default(),
            deadlines: DeadlineWatch::default(),
            was_up: false,
            attempt: 0,
            next_attempt: now,
            backoff,
            last_liveness: 0,
            liveness_seen: now,
            owner_stalled: false,
            estop_pending: false,
            next_estop: now,
            expected_n: None,
            last_t_ms: None,
            next_stats: now,
            rate_samples: 0,
            rate_since: now,
            shutdown_by: None,
            scratch: String::new(),
            interlock,
            last_summary: None,
            held_start: None,
            next_tel_reask: now,
        }
    }

    /// The thread's body: runs until the owner shuts the link down or drops it.
    pub(crate) fn run(mut self) {
        loop {
            let now = Instant::now();
            self.check_owner(now);
            if !self.on_timers(now) {
                break;
            }
            self.publish_summary();
            // Owner commands first, so an E-stop never waits behind a telemetry flood.
            while let Ok(command) = self.commands.try_recv() {
                self.on_command(command);
            }
            let commands = self.commands.clone();
            let reader_rx = self.reader_rx.clone();
            select! {
                recv(commands) -> msg => match msg {
                    Ok(command) => self.on_command(command),
                    Err(_) => self.begin_shutdown(),
                },
                recv(reader_rx) -> msg => {
                    if let Ok(msg) = msg {
                        self.on_reader(msg);
                        // Drain a batch before looking at timers again.
                        for _ in 0..512 {
                            let Ok(msg) = reader_rx.try_recv() else { break };
                            self.on_reader(msg);
                        }
                    }
                },
                default(TICK) => {},
            }
        }
        self.close_connection();
        let stats = self.snapshot_stats();
        self.emit(LinkEvent::Stats(stats));
        self.emit(LinkEvent::State(LinkState::Closed));
    }

    // ----- the owner -----

    fn check_owner(&mut self, now: Instant) {
        let current = self.liveness.load(Ordering::Relaxed);
        if current != self.last_liveness {
            self.last_liveness = current;
            self.liveness_seen = now;
            if self.owner_stalled {
                self.owner_stalled = false;
                // Frames were held back on purpose; do not count that as the pen's
                // silence.
                if let Some(conn) = &mut self.conn {
                    for f in &mut conn.inflight {
                        f.last_sent = now;
                    }
                    conn.next_heartbeat = now;
                }
                self.emit(LinkEvent::OwnerResumed);
            }
        } else if !self.owner_stalled
            && self.shutdown_by.is_none()
            && self.needle_may_run()
            && now.duration_since(self.liveness_seen) >= self.config.owner_timeout
        {
            self.owner_stalled = true;
            tracing::warn!("owner stalled: no frame goes to the pen until it is alive again");
            self.emit(LinkEvent::OwnerStalled);
        }
    }

    /// Whether a frozen owner could leave a needle running: the pen measured running,
    /// `RUN` acknowledged or on the wire, or a start held. Only then does a silent
    /// owner stop the frames: the pen's watchdog acts only while it runs (protocol
    /// §6), and an idle window may draw a few frames a second without the pen
    /// noticing. A needle that starts by itself is the needle monitor's, whatever the
    /// owner does; one that runs with an owner silent for longer than the timeout
    /// stops the frames at once.
    fn needle_may_run(&self) -> bool {
        self.interlock.running_or_starting() || self.held_start.is_some()
    }

    fn on_command(&mut self, command: LinkCommand) {
        match command {
            LinkCommand::Send { id, command } => {
                let refusal = if self.shutdown_by.is_some() {
                    Some("the link is shutting down")
                } else if self.estop_pending {
                    Some("an E-stop is being confirmed")
                } else if !self.conn.as_ref().is_some_and(Connection::ready) {
                    Some("the link is not connected")
                } else {
                    None
                };
                if let Some(why) = refusal {
                    self.answer(id, command, None, Outcome::NotSent(why.into()), None);
                    return;
                }
                if matches!(
                    command,
                    Command::Halt | Command::Depth { .. } | Command::Reset | Command::Run
                ) {
                    // Stop, a new depth or another start: the held start is not what
                    // the operator wants any more.
                    self.cancel_held_start(&format!("cancelled by {}", command.verb()));
                }
                if let Some(conn) = &mut self.conn {
                    conn.queue.push_back((Origin::Owner(id), command));
                }
                self.pump(Instant::now());
            }
            LinkCommand::Safety { id, update } => self.on_safety(id, update),
            LinkCommand::Precheck { id, command } => {
                let result = self.check_now(&command);
                self.emit(LinkEvent::Prechecked { id, result });
            }
            LinkCommand::EStop => self.estop(),
            LinkCommand::Shutdown => self.begin_shutdown(),
        }
    }

    fn on_safety(&mut self, id: RequestId, update: SafetyUpdate) {
        if matches!(
            update,
            SafetyUpdate::SelectZone(_)
                | SafetyUpdate::Technician(_)
                | SafetyUpdate::Session(_)
                | SafetyUpdate::Operator(_)
        ) {
            self.cancel_held_start("cancelled by a change of zone, mode or session");
        }
        let connected = self.conn.as_ref().is_some_and(Connection::ready);
        if matches!(update, SafetyUpdate::SelectZone(_)) && !connected {
            // The depth could not be lowered first; the operator selects again once
            // the pen is back.
            let refusal = Refusal {
                rule: Rule::LinkUnhealthy,
                message: "zone change refused: the link to the pen is not up".into(),
            };
            self.emit(LinkEvent::SafetyApplied {
                id,
                result: Err(refusal),
            });
            return;
        }
        let result = self.interlock.apply(update);
        if let (Ok(Some(plan)), Some(conn)) = (&result, &mut self.conn) {
            // Before anything queued after it: stop-and-wait keeps the order.
            for command in plan.commands() {
                conn.queue.push_back((Origin::Interlock, command));
            }
        }
        self.emit(LinkEvent::SafetyApplied { id, result });
        self.publish_summary();
        self.pump(Instant::now());
    }

    fn publish_summary(&mut self) {
        let summary = self.interlock.summary();
        if self.last_summary.as_ref() != Some(&summary) {
            self.last_summary = Some(summary.clone());
            self.emit(LinkEvent::Safety(summary));
        }
    }

    fn estop(&mut self) {
        let now = Instant::now();
        self.interlock.on_estop_requested();
        self.estop_pending = true;
        self.cancel_queue("cancelled by an E-stop");
        self.write_estop_byte(now);
    }

    /// The needle monitor tripped on a sample that arrived at `received`: the E-stop
    /// byte goes out now, before anything else, and the owner is told.
    fn monitor_trip(&mut self, trip: Trip, received: Instant) {
        tracing::warn!(rule = %trip.rule, "needle monitor: {}", trip.message);
        self.estop();
        let reaction = received.elapsed();
        self.stats.monitor_trips += 1;
        self.emit(LinkEvent::NeedleStopped { trip, reaction });
    }

    /// Ends a held start, if there is one, as not sent.
    fn cancel_held_start(&mut self, why: &str) {
        let Some(held) = self.held_start.take() else {
            return;
        };
        let Some(conn) = &mut self.conn else { return };
        if let Some(i) = conn
            .queue
            .iter()
            .position(|(origin, _)| *origin == Origin::Owner(held.id))
            && let Some((_, command)) = conn.queue.remove(i)
        {
            self.answer(held.id, command, None, Outcome::NotSent(why.into()), None);
        }
    }

    fn write_estop_byte(&mut self, now: Instant) {
        self.next_estop = now + self.config.estop_resend;
        let Some(conn) = &mut self.conn else { return };
        match conn.port.write_all(&[ESTOP_BYTE]) {
            Ok(()) => self.stats.estop_bytes_sent += 1,
            Err(e) => self.lose(LossReason::PortError(e.to_string())),
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_by.is_some() {
            return;
        }
        let now = Instant::now();
        self.shutdown_by = Some(now + SHUTDOWN_HALT_WAIT);
        self.cancel_queue("the link is shutting down");
        if self.conn.as_ref().is_some_and(Connection::ready) {
            self.send_frame(Command::Halt, Origin::Shutdown, now);
        } else {
            self.shutdown_by = Some(now);
        }
    }

    // ----- timers -----

    /// Runs every timer; false when the thread should end.
    fn on_timers(&mut self, now: Instant) -> bool {
        if let Some(by) = self.shutdown_by {
            let halted = !self
                .conn
                .as_ref()
                .is_some_and(|c| c.inflight.iter().any(|f| f.origin == Origin::Shutdown));
            if now >= by || halted {
                return false;
            }
        }
        if now >= self.next_stats {
            self.next_stats = now + self.config.stats_interval;
            let stats = self.snapshot_stats();
            self.emit(LinkEvent::Stats(stats));
        }
        if self.conn.is_none() {
            if self.shutdown_by.is_none() && now >= self.next_attempt {
                self.try_open(now);
            }
            return true;
        }
        if self.estop_pending && now >= self.next_estop {
            self.deadlines.record(now.duration_since(self.next_estop));
            self.write_estop_byte(now);
        }
        if self.owner_stalled {
            // Nothing goes out, so nothing can time out; the pen's watchdog will act.
            return true;
        }
        let Some(conn) = &mut self.conn else {
            return true;
        };
        if conn.step != Step::Ready && now >= conn.handshake_deadline {
            self.lose(LossReason::HandshakeTimeout);
            return true;
        }
        if conn.telemetry_on && now.duration_since(conn.last_rx) >= self.config.silence_timeout {
            self.lose(LossReason::Silence);
            return true;
        }
        if self.telemetry_silent(now) {
            return true;
        }
        let Some(conn) = &mut self.conn else {
            return true;
        };
        // Retries: resend the identical frame; after the last one, the link is lost.
        let mut unanswered = None;
        let mut resend = Vec::new();
        for (i, f) in conn.inflight.iter_mut().enumerate() {
            let waited = now.duration_since(f.last_sent);
            if waited >= self.config.retry_timeout {
                self.deadlines
                    .record(waited.saturating_sub(self.config.retry_timeout));
                if f.retries >= self.config.max_retries {
                    unanswered = Some(i);
                    break;
                }
                f.retries += 1;
                f.last_sent = now;
                resend.push(i);
            }
        }
        if let Some(i) = unanswered {
            let f = conn.inflight.remove(i);
            let verb = f.command.verb().to_owned();
            if let Origin::Owner(id) = f.origin {
                self.answer(id, f.command, Some(f.seq), Outcome::Unanswered, None);
            }
            self.lose(LossReason::Unanswered(verb));
            return true;
        }
        for i in resend {
            self.stats.retries += 1;
            let result = conn.port.write_all(&conn.inflight[i].frame);
            if let Err(e) = result {
                self.lose(LossReason::PortError(e.to_string()));
                return true;
            }
        }
        if conn.step != Step::Hello && now >= conn.next_heartbeat {
            let late = now.duration_since(conn.next_heartbeat);
            conn.next_heartbeat = now + self.config.heartbeat_interval;
            self.deadlines.record(late);
            self.send_frame(Command::Hb, Origin::Heartbeat, now);
        }
        self.pump(now);
        true
    }

    /// Lines still come (answers to heartbeats) but no telemetry: the pen has stopped
    /// sending it (a second host's `TEL 0` or `HELLO`, a firmware fault), and the
    /// station cannot see the needle. While it may run, the monitor stops it as soon as
    /// the latest sample is too old; after the silence limit the link is treated as
    /// lost, and the next connection asks for telemetry again. True when the link was
    /// lost or the needle stopped.
    fn telemetry_silent(&mut self, now: Instant) -> bool {
        let Some(conn) = &self.conn else { return false };
        if !conn.telemetry_on {
            return false;
        }
        let asked = conn.last_telemetry_asked;
        if let Some(trip) = self.interlock.on_telemetry_silence(now) {
            let since = self.interlock.needle.latest().map_or(now, |m| m.received);
            self.monitor_trip(trip, since);
            return true;
        }
        let last_sample = self
            .interlock
            .needle
            .latest()
            .map_or(asked, |m| m.received.max(asked));
        if now.duration_since(last_sample) >= self.config.silence_timeout {
            self.lose(LossReason::TelemetryStopped);
            return true;
        }
        false
    }

    // ----- sending -----

    /// Sends the next queued owner command when nothing else is in flight.
    fn pump(&mut self, now: Instant) {
        if self.owner_stalled {
            return;
        }
        loop {
            let Some(conn) = &mut self.conn else { return };
            if !conn.ready() || conn.busy() {
                return;
            }
            let Some((origin, command)) = conn.queue.pop_front() else {
                return;
            };
            // The interlock decides at the last moment, on the state as it is now.
            match self.check_now(&command) {
                Ok(()) => {
                    self.held_start = None;
                    self.send_frame(command, origin, now);
                    return;
                }
                Err(refusal) => {
                    if let Origin::Owner(id) = origin
                        && command == Command::Run
                        && refusal.rule.is_transient()
                        && self.hold_start(id, &refusal, now)
                    {
                        if let Some(conn) = &mut self.conn {
                            conn.queue.push_front((origin, command));
                        }
                        return;
                    }
                    self.held_start = None;
                    tracing::info!(%refusal, "interlock refused {}", command.verb());
                    if let Origin::Owner(id) = origin {
                        self.answer(id, command, None, Outcome::Refused(refusal), None);
                    }
                }
            }
        }
    }

    /// Asks the interlock about `command` on the state as it is now: today's date (for
    /// the calibration's expiry) and this instant (for the needle's freshness).
    fn check_now(&mut self, command: &Command) -> Result<(), Refusal> {
        self.interlock.today = Some(jiff::Zoned::now().date());
        interlock::check(&self.interlock, command, Instant::now())
    }

    /// Holds the owner's `RUN` `id`, refused for a transient reason, at the head of the
    /// queue; true while it may still wait (at most [`START_HOLD_MAX`]). The owner is
    /// told once when the hold begins. `RUN` is never sent first: it goes only when
    /// the interlock allows it.
    fn hold_start(&mut self, id: RequestId, refusal: &Refusal, now: Instant) -> bool {
        match &mut self.held_start {
            Some(held) if held.id == id => now.duration_since(held.since) < START_HOLD_MAX,
            _ => {
                self.held_start = Some(HeldStart { id, since: now });
                let target_um = self.interlock.depth_target_um;
                let depth_um = self.interlock.needle.latest().map(|m| m.depth_um);
                self.emit(LinkEvent::StartHeld {
                    id,
                    target_um,
                    depth_um,
                    refusal: refusal.clone(),
                });
                true
            }
        }
    }

    fn send_frame(&mut self, command: Command, origin: Origin, now: Instant) {
        let seq = self.next_seq;
        self.next_seq = seq.next();
        command.write_body(seq, &mut self.scratch);
        let mut frame = Vec::with_capacity(self.scratch.len() + 6);
        if let Err(e) = crate::protocol::encode_frame(&self.scratch, &mut frame) {
            // Only a command with an unframeable argument (a CAL SET tech id with a
            // space, say) gets here: refuse it rather than send something else.
            if let Origin::Owner(id) = origin {
                self.answer(id, command, None, Outcome::NotSent(e.to_string()), None);
            }
            return;
        }
        let Some(conn) = &mut self.conn else { return };
        if let Err(e) = conn.port.write_all(&frame) {
            if let Origin::Owner(id) = origin {
                self.answer(id, command, None, Outcome::NotSent(e.to_string()), None);
            }
            self.lose(LossReason::PortError(e.to_string()));
            return;
        }
        self.stats.commands_sent += 1;
        self.interlock.on_sent(&command);
        if let Some(origin) = origin.wire() {
            let sent = WireEvent::Sent {
                seq,
                command: command.clone(),
                origin,
            };
            // Not `self.emit`: `conn` still borrows `self`.
            if let Err(TrySendError::Full(_)) = self.events.try_send(LinkEvent::Wire(sent)) {
                self.stats.events_dropped += 1;
            }
        }
        conn.inflight.push(InFlight {
            seq,
            command,
            origin,
            frame,
            last_sent: now,
            retries: 0,
        });
    }

    // ----- receiving -----

    fn on_reader(&mut self, msg: FromReader) {
        if msg.generation != self.generation {
            return;
        }
        let Some(conn) = &mut self.conn else { return };
        conn.last_rx = msg.at;
        match msg.what {
            ReaderMsg::Discarded(reason) => self.stats.discarded.count(reason),
            ReaderMsg::PortError(e) => self.lose(LossReason::PortError(e)),
            ReaderMsg::Message(message) => {
                self.stats.frames_ok += 1;
                self.on_message(message, msg.at);
            }
        }
    }

    fn on_message(&mut self, message: PenMessage, at: Instant) {
        match message {
            PenMessage::Telemetry(t) => self.on_telemetry(t, at),
            PenMessage::Ack(seq) => self.on_answer(seq, Outcome::Ack, at),
            PenMessage::Nak(seq, reason) => {
                self.stats.naks += 1;
                self.on_answer(seq, Outcome::Nak(reason), at);
            }
            PenMessage::Info(info) => {
                if let Some(conn) = &mut self.conn {
                    conn.info = Some(info.clone());
                }
                self.interlock.info = Some(info.clone());
                self.emit(LinkEvent::Info(info));
                self.advance_handshake(at);
            }
            PenMessage::Cal(cal) => {
                if let Some(conn) = &mut self.conn {
                    conn.calibration = Some(cal.clone());
                }
                self.interlock.calibration = Some(cal.clone());
                self.emit(LinkEvent::Calibration(cal));
                self.advance_handshake(at);
            }
            PenMessage::Event { t_ms, event } => self.on_pen_event(t_ms, event, at),
            PenMessage::Gauge { true_um } => self.emit(LinkEvent::Gauge { true_um }),
        }
    }

    fn on_telemetry(&mut self, t: Telemetry, received: Instant) {
        self.stats.telemetry_samples += 1;
        if let Some(expected) = self.expected_n
            && t.n != expected
        {
            // After HELLO the first sample has no predecessor: n from 0 is lost.
            let step = self.last_t_ms.map_or(CounterStep::Lost(t.n), |prev_t_ms| {
                counter_step(expected.wrapping_sub(1), prev_t_ms, t.n, t.t_ms)
            });
            match step {
                CounterStep::Next => {}
                CounterStep::Lost(missing) => {
                    self.stats.telemetry_gaps += 1;
                    self.stats.samples_lost += u64::from(missing);
                }
                CounterStep::Reset => self.stats.counter_resets += 1,
            }
        }
        self.expected_n = Some(t.n.wrapping_add(1));
        self.last_t_ms = Some(t.t_ms);
        if let Some(trip) = self.interlock.on_telemetry(&t, received) {
            self.monitor_trip(trip, received);
        }
        if t.state == PenState::Estop {
            self.confirm_estop();
        }
        match self.telemetry.try_send(t) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.telemetry_dropped += 1,
            Err(TrySendError::Disconnected(_)) => self.begin_shutdown(),
        }
        self.reask_telemetry_if_slow(received);
        if self.held_start.is_some() {
            // A held start goes the moment a sample shows the needle in place.
            self.pump(received);
        }
    }

    /// The pen reports more slowly than asked (another program's `TEL`, a firmware
    /// fault): ask again, at most every 500 ms, before anything else queued. While the
    /// needle runs the monitor has already stopped it for this.
    fn reask_telemetry_if_slow(&mut self, now: Instant) {
        let hz = self.config.telemetry_hz;
        if self.interlock.needle.reporting_too_slow(hz).is_none() || now < self.next_tel_reask {
            return;
        }
        let Some(conn) = &mut self.conn else { return };
        if !conn.ready()
            || conn
                .queue
                .iter()
                .any(|(_, c)| matches!(c, Command::Tel { .. }))
        {
            return;
        }
        self.next_tel_reask = now + self.config.silence_timeout;
        tracing::warn!("the pen reports more slowly than the {hz} Hz asked: asking again");
        conn.queue
            .push_front((Origin::Interlock, Command::Tel { hz: i64::from(hz) }));
        self.pump(now);
    }

    fn confirm_estop(&mut self) {
        if self.estop_pending {
            self.estop_pending = false;
            self.emit(LinkEvent::EstopConfirmed);
        }
    }

    fn on_answer(&mut self, seq: Seq, outcome: Outcome, at: Instant) {
        let Some(conn) = &mut self.conn else { return };
        let Some(i) = conn.inflight.iter().position(|f| f.seq == seq) else {
            // A late answer to a frame already answered (a duplicate after a retry).
            self.stats.stray_answers += 1;
            return;
        };
        let f = conn.inflight.remove(i);
        let round_trip = at.saturating_duration_since(f.last_sent);
        self.rtt.record(round_trip);
        self.interlock
            .on_answer(&f.command, outcome == Outcome::Ack);
        if f.command == Command::Reset
            && outcome == Outcome::Ack
            && self.interlock.depth_target_um.is_none()
            && let Some(conn) = &mut self.conn
        {
            // The retraction at connection was refused (the pen was in FAULT or
            // ESTOP): the pen is IDLE now, so retract before anything else.
            conn.queue
                .push_front((Origin::Interlock, Command::Depth { depth_um: 0 }));
        }
        // The owner's own commands end as `LinkEvent::Answer`; the others are told
        // here, so a record holds every command's end.
        if let (Some(origin), false) = (f.origin.wire(), matches!(f.origin, Origin::Owner(_))) {
            self.emit(LinkEvent::Wire(WireEvent::Answered {
                seq,
                command: f.command.clone(),
                origin,
                outcome: outcome.clone(),
                round_trip,
            }));
        }
        match f.origin {
            Origin::Owner(id) => {
                self.answer(id, f.command, Some(seq), outcome, Some(round_trip));
                self.pump(at);
            }
            Origin::Handshake => self.on_handshake_answer(&f.command, &outcome, at),
            Origin::Interlock => self.pump(at),
            Origin::Heartbeat | Origin::Shutdown => {}
        }
    }

    fn on_handshake_answer(&mut self, command: &Command, outcome: &Outcome, at: Instant) {
        let retract_refused = matches!(command, Command::Depth { .. })
            && *outcome == Outcome::Nak(crate::protocol::NakReason::State);
        if let Outcome::Nak(reason) = outcome
            && !retract_refused
        {
            self.lose(LossReason::Incompatible(format!(
                "the pen refused {}: {reason}",
                command.verb()
            )));
            return;
        }
        let Some(conn) = &mut self.conn else { return };
        match (command, conn.step) {
            (Command::Hello { .. }, Step::Hello) => {
                // The pen restarts its counter at 0 after HELLO.
                self.expected_n = Some(0);
                self.last_t_ms = None;
                conn.step = Step::Retract;
                conn.next_heartbeat = at;
                self.send_frame(Command::Depth { depth_um: 0 }, Origin::Handshake, at);
            }
            (Command::Depth { .. }, Step::Retract) => {
                // Refused in FAULT or ESTOP: the target stays unknown, and the pen is
                // retracted after the operator's reset instead.
                conn.step = Step::Cal { acked: false };
                self.send_frame(Command::CalGet, Origin::Handshake, at);
            }
            (Command::CalGet, Step::Cal { .. }) => {
                conn.step = Step::Cal { acked: true };
                // HELLO's INFO comes before this ACK on the line: missing now, it
                // was lost (a glitch, or a pen that answered a duplicate HELLO with
                // its ACK alone). Ask for it again rather than time out.
                if conn.info.is_none() {
                    self.send_frame(Command::Info, Origin::Handshake, at);
                    return;
                }
                self.advance_handshake(at);
            }
            (Command::Info, Step::Cal { acked: true }) => {
                // The CAL line came before this ACK: missing, ask for it again.
                if conn.calibration.is_none() {
                    self.send_frame(Command::CalGet, Origin::Handshake, at);
                    return;
                }
                self.advance_handshake(at);
            }
            (Command::Tel { hz }, Step::Tel) => {
                conn.telemetry_on = *hz > 0;
                conn.last_rx = at;
                conn.last_telemetry_asked = at;
                conn.step = Step::Ready;
                let (Some(info), Some(calibration)) = (conn.info.clone(), conn.calibration.clone())
                else {
                    return;
                };
                self.was_up = true;
                self.attempt = 0;
                self.backoff = self.config.reconnect_min;
                self.stats.connects += 1;
                let change = self
                    .interlock
                    .on_connected(info.clone(), calibration.clone());
                tracing::info!(serial = %info.serial, "link up");
                self.emit(LinkEvent::State(LinkState::Connected { info, calibration }));
                if let Some(change) = change {
                    tracing::warn!(
                        from = %change.from_serial,
                        to = %change.to_serial,
                        "a different pen answered: stopped until the operator resets"
                    );
                    self.emit(LinkEvent::PenChanged(change));
                }
            }
            _ => {}
        }
    }

    /// After `CAL GET` is acknowledged and both INFO and CAL are in, check the pen and
    /// ask for telemetry.
    fn advance_handshake(&mut self, at: Instant) {
        let Some(conn) = &mut self.conn else { return };
        if conn.step != (Step::Cal { acked: true }) {
            return;
        }
        let (Some(info), Some(_)) = (&conn.info, &conn.calibration) else {
            return;
        };
        if info.proto != PROTOCOL_VERSION {
            let why = format!("INFO says protocol {}, the station speaks 1", info.proto);
            self.lose(LossReason::Incompatible(why));
            return;
        }
        if self.config.telemetry_hz > info.tel_max_hz {
            let why = format!(
                "telemetry at {} Hz asked, the pen allows {} Hz",
                self.config.telemetry_hz, info.tel_max_hz
            );
            self.lose(LossReason::Incompatible(why));
            return;
        }
        conn.step = Step::Tel;
        let hz = i64::from(self.config.telemetry_hz);
        self.send_frame(Command::Tel { hz }, Origin::Handshake, at);
    }

    fn on_pen_event(&mut self, t_ms: u32, event: PenEvent, at: Instant) {
        self.interlock.on_pen_event(&event);
        self.emit(LinkEvent::Pen { t_ms, event });
        match event {
            PenEvent::Estop(_) => self.confirm_estop(),
            PenEvent::Boot { .. } => {
                // A pen that boots while our HELLO is still unanswered (a host that
                // opened the port as the pen started) either answers that HELLO or
                // lost it, and the retry covers that: no second HELLO.
                if self.conn.as_ref().is_none_or(|c| c.step == Step::Hello) {
                    return;
                }
                // Everything the host had set is gone: fail what was asked before the
                // reboot, and start the handshake again.
                tracing::warn!("pen rebooted: saying HELLO again");
                self.fail_owner_commands("the pen rebooted");
                if let Some(conn) = &mut self.conn {
                    conn.inflight.clear();
                    conn.telemetry_on = false;
                    conn.step = Step::Hello;
                    conn.handshake_deadline = at + self.config.handshake_timeout;
                }
                self.emit(LinkEvent::State(LinkState::Handshaking));
                self.send_hello(at);
            }
            _ => {}
        }
    }

    // ----- connection lifecycle -----

    fn try_open(&mut self, now: Instant) {
        let path = self.config.port_path.to_string_lossy().into_owned();
        let opened = serialport::new(&path, 115_200)
            .timeout(Duration::from_millis(100))
            .open_native()
            .and_then(|port| {
                // Anything left in the buffers belongs to an earlier session.
                port.clear(serialport::ClearBuffer::All)?;
                let reader_port = port.try_clone_native()?;
                Ok((port, reader_port))
            });
        let (port, reader_port) = match opened {
            Ok(ports) => ports,
            Err(e) => {
                self.attempt += 1;
                self.next_attempt = now + self.backoff;
                self.backoff = (self.backoff * 2).min(self.config.reconnect_max);
                let port_problem = PortProblem::of(&e);
                let last_error = Some(
                    port_problem
                        .as_ref()
                        .map_or_else(|| format!("{path}: {e}"), |problem| problem.message(&path)),
                );
                self.emit(LinkEvent::State(LinkState::Connecting {
                    attempt: self.attempt,
                    last_error,
                    port_problem,
                }));
                return;
            }
        };
        self.generation += 1;
        let stop_reader = Arc::new(AtomicBool::new(false));
        let reader = match reader::spawn(
            reader_port,
            self.generation,
            Arc::clone(&stop_reader),
            self.reader_tx.clone(),
        ) {
            Ok(handle) => handle,
            Err(e) => {
                self.attempt += 1;
                self.next_attempt = now + self.backoff;
                self.emit(LinkEvent::State(LinkState::Connecting {
                    attempt: self.attempt,
                    last_error: Some(format!("cannot start the reader thread: {e}")),
                    port_problem: None,
                }));
                return;
            }
        };
        self.conn = Some(Connection {
            port,
            stop_reader,
            reader: Some(reader),
            step: Step::Hello,
            handshake_deadline: now + self.config.handshake_timeout,
            last_rx: now,
            telemetry_on: false,
            inflight: Vec::new(),
            queue: VecDeque::new(),
            next_heartbeat: now,
            last_telemetry_asked: now,
            info: None,
            calibration: None,
        });
        self.emit(LinkEvent::State(LinkState::Handshaking));
        if self.estop_pending {
            // The operator's E-stop still stands: the pen hears it before anything else.
            self.write_estop_byte(now);
        }
        self.send_hello(now);
    }

    fn send_hello(&mut self, now: Instant) {
        self.send_frame(
            Command::Hello {
                proto: PROTOCOL_VERSION,
            },
            Origin::Handshake,
            now,
        );
    }

    /// Declares the link lost: closes the port, fails every pending command, and
    /// schedules a reconnection.
    fn lose(&mut self, reason: LossReason) {
        let now = Instant::now();
        tracing::warn!(%reason, "link lost");
        self.stats.link_losses += 1;
        // Samples the pen numbered while the link was down were never meant for this
        // station: the count starts afresh, not as a gap.
        self.expected_n = None;
        self.last_t_ms = None;
        self.interlock.on_link_lost();
        self.fail_owner_commands("the link was lost");
        self.close_connection();
        self.attempt += 1;
        self.next_attempt = now + self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.reconnect_max);
        if self.was_up {
            self.was_up = false;
            self.emit(LinkEvent::State(LinkState::Lost(reason)));
        } else {
            self.emit(LinkEvent::State(LinkState::Connecting {
                attempt: self.attempt,
                last_error: Some(reason.to_string()),
                port_problem: None,
            }));
        }
    }

    fn close_connection(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        conn.stop_reader.store(true, Ordering::Relaxed);
        // Invalidate anything the old reader still sends.
        self.generation += 1;
        drop(conn.port);
        if let Some(reader) = conn.reader.take() {
            // The reader notices `stop` within its 50 ms read timeout.
            let _ = reader.join();
        }
    }

    fn cancel_queue(&mut self, why: &str) {
        // A held start is in the queue: it ends with the rest.
        self.held_start = None;
        let Some(conn) = &mut self.conn else { return };
        let queued: Vec<_> = conn.queue.drain(..).collect();
        for (origin, command) in queued {
            if let Origin::Owner(id) = origin {
                self.answer(id, command, None, Outcome::NotSent(why.into()), None);
            }
        }
    }

    fn fail_owner_commands(&mut self, why: &str) {
        self.cancel_queue(why);
        let Some(conn) = &mut self.conn else { return };
        let inflight: Vec<_> = conn.inflight.drain(..).collect();
        for f in inflight {
            if let Origin::Owner(id) = f.origin {
                self.answer(
                    id,
                    f.command,
                    Some(f.seq),
                    Outcome::NotSent(why.into()),
                    None,
                );
            }
        }
    }

    // ----- to the owner -----

    fn answer(
        &mut self,
        id: RequestId,
        command: Command,
        seq: Option<Seq>,
        outcome: Outcome,
        round_trip: Option<Duration>,
    ) {
        self.emit(LinkEvent::Answer(Answer {
            id,
            command,
            seq,
            outcome,
            round_trip,
        }));
    }

    fn emit(&mut self, event: LinkEvent) {
        // Statistics come every 250 ms and change nothing the owner must act on.
        let wake = !matches!(event, LinkEvent::Stats(_));
        if let Err(TrySendError::Full(_)) = self.events.try_send(event) {
            // The owner is not draining its events; it will soon be counted as
            // stalled, and the pen's watchdog takes over.
            self.stats.events_dropped += 1;
        }
        if wake && let Some(waker) = &self.config.waker {
            (waker.0)();
        }
    }

    fn snapshot_stats(&mut self) -> LinkStats {
        let now = Instant::now();
        let elapsed = now.duration_since(self.rate_since).as_secs_f64();
        if elapsed >= 1.0 {
            let samples = self.stats.telemetry_samples - self.rate_samples;
            #[allow(clippy::cast_precision_loss)] // sample counts stay far below 2^52
            let rate = samples as f64 / elapsed;
            self.stats.telemetry_rate_hz = rate;
            self.rate_samples = self.stats.telemetry_samples;
            self.rate_since = now;
        }
        self.rtt.fill(&mut self.stats);
        self.deadlines.fill(&mut self.stats);
        self.stats.clone()
    }
}
