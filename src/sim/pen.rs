//! The pure pen model: every rule of the protocol, seen from the pen.
//!
//! **Invariant:** no I/O, no clock, no threads. Time comes in as `now_ms`, monotonic
//! milliseconds since the simulation started; the wire's `t_ms` is the time since the
//! pen's last (re)boot, as `u32`, wrapping. Bytes from the host come in through
//! [`PenModel::on_bytes`]; everything the pen says is appended, already framed, to an
//! `out` buffer; what happened is recorded as [`JournalEntry`]s for the runner to drain.
//!
//! The physics is stepped one millisecond at a time, so ramps, depth travel, fault
//! timers and the telemetry schedule come out the same however the caller slices time:
//! a runner that was descheduled for 30 ms catches up with exactly the samples and
//! events it would have produced, each stamped with its own `t_ms`.

use std::fmt;
use std::str::FromStr;

use super::{SimAction, XorShift64};
use crate::protocol::{
    BootReason, CalUpdate, Calibration, CartridgeId, Command, CommandError, Decoded, DiscardCounts,
    DiscardReason, EstopSource, FaultCode, FrameDecoder, NakReason, PROTOCOL_VERSION, PenEvent,
    PenInfo, PenMessage, PenState, Seq, Telemetry, parse_command,
};

/// Deepest settable depth, µm (section 9).
pub const DEPTH_MAX_UM: i64 = 2500;
/// Depth step, µm (section 9).
pub const DEPTH_STEP_UM: i64 = 50;
/// Slowest settable speed, rpm (section 9).
pub const SPEED_MIN_RPM: i64 = 3000;
/// Fastest settable speed, rpm (section 9).
pub const SPEED_MAX_RPM: i64 = 9000;
/// The watchdog period, ms (section 6).
pub const WATCHDOG_MS: u64 = 300;
/// Lowest non-zero telemetry rate, Hz (section 4).
pub const TEL_MIN_HZ: i64 = 10;
/// Highest telemetry rate, Hz (section 9).
pub const TEL_MAX_HZ: i64 = 1000;
/// A frame identical to the last answered one, this soon after the answer, is a
/// duplicate (section 4).
pub const DUPLICATE_WINDOW_MS: u64 = 1000;
/// Depth travel: 5 mm/s (section 9).
pub const DEPTH_TRAVEL_UM_PER_MS: f64 = 5.0;
/// Speed ramp up (and between speeds): 20 000 rpm/s, the most section 9 allows.
pub const RAMP_RPM_PER_MS: f64 = 20.0;
/// Speed ramp down on `HALT`: from 9000 rpm to 0 in 225 ms, inside the 300 ms allowed.
pub const HALT_RPM_PER_MS: f64 = 40.0;
/// Measured speed below half the target for this long is a stall (section 9).
pub const STALL_MS: u64 = 200;
/// A depth move not finished within this long is a DEPTH fault (section 5).
pub const DEPTH_TIMEOUT_MS: u64 = 1000;
/// Current above this is OVERCURRENT, mA (section 9).
pub const OVERCURRENT_MA: f64 = 600.0;
/// Temperature above this is OVERTEMP, 0.1 °C (section 9).
pub const OVERTEMP_DC: f64 = 450.0;
/// An injected overspeed takes the rotor to this multiple of its goal.
pub const OVERSPEED_FACTOR: f64 = 1.5;
/// The speed target after boot, rpm.
pub const DEFAULT_SPEED_RPM: i64 = 6000;
/// The firmware version the simulated pen reports.
pub const SIM_FW: &str = "1.0.0-sim";

const MODEL_NAME: &str = "MNP-1";
const AMBIENT_DC: f64 = 250.0;
const RUNNING_TEMP_DC: f64 = 320.0;
/// Time constants of the slow thermal model: warm up over minutes, cool slower.
const HEAT_TAU_MS: f64 = 60_000.0;
const COOL_TAU_MS: f64 = 120_000.0;
/// Injected overheating: 0.05 °C per ms, so OVERTEMP comes within about half a second.
const OVERHEAT_DC_PER_MS: f64 = 0.5;
/// Injected load: the rotor loses this much speed per ms until it stops.
const STALL_DECEL_RPM_PER_MS: f64 = 100.0;
const RUNNING_BASE_MA: f64 = 80.0;
const MA_PER_RPM: f64 = 0.03;
/// A loaded rotor draws more current, but not enough to trip OVERCURRENT first.
const STALL_EXTRA_MA: f64 = 150.0;
/// Injected short: the current jumps to this.
const SHORT_MA: f64 = 750.0;

/// The pen's hidden true errors (section 8), which calibration estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiddenErrors {
    /// True depth gain error `g_true` × 10⁶.
    pub depth_gain_ppm: i32,
    /// True depth offset error `o_true`, µm.
    pub depth_offset_um: i32,
    /// True speed sensor gain error `s_true` × 10⁶.
    pub speed_gain_ppm: i32,
}

impl Default for HiddenErrors {
    /// A pen fresh from the factory, with errors worth calibrating away: +2 % depth
    /// gain, +30 µm offset, +1 % speed sensor gain.
    fn default() -> Self {
        Self {
            depth_gain_ppm: 20_000,
            depth_offset_um: 30,
            speed_gain_ppm: 10_000,
        }
    }
}

/// A needle cartridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cartridge {
    /// Its unique id.
    pub id: CartridgeId,
    /// Its needle count.
    pub needles: u32,
}

impl Default for Cartridge {
    fn default() -> Self {
        Self {
            id: CartridgeId(0x0123_4567_89AB_CDEF),
            needles: 12,
        }
    }
}

impl FromStr for Cartridge {
    type Err = String;

    /// Parses `ID:NEEDLES` or `ID/NEEDLES`, e.g. `0123456789ABCDEF:12`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((id, needles)) = text.split_once([':', '/']) else {
            return Err(format!(
                "cartridge {text:?} is not ID:NEEDLES, e.g. 0123456789ABCDEF:12"
            ));
        };
        let id = id.parse()?;
        let needles = needles
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("needle count {needles:?} is not a positive integer"))?;
        Ok(Self { id, needles })
    }
}

/// A physical condition the simulation can inject; the pen's own detection turns it
/// into a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhysicalFault {
    /// A load stops the rotor: FAULT STALL after 200 ms below half speed.
    Stall,
    /// A short: the current jumps above 600 mA while the motor is powered.
    Overcurrent,
    /// The motor heats fast while powered: FAULT OVERTEMP past 45.0 °C.
    Overtemp,
    /// The depth mechanism stops moving: FAULT DEPTH 1 s into a move.
    DepthJam,
    /// The depth mechanism slips deeper at its full travel speed (5 mm/s), whatever
    /// its target, down to the pen's maximum. The pen does not notice: its telemetry
    /// shows the depth, and only the host can stop the needle.
    DepthCreep,
    /// The motor starts by itself (a firmware fault): RUNNING, ramping to the speed
    /// target, with no `RUN` from the host.
    Runaway,
    /// The speed regulator fails: the rotor speeds up past the target, at the ramp
    /// rate, to 1.5 times it. The pen does not notice.
    Overspeed,
}

impl PhysicalFault {
    /// The action word for it.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Stall => "stall",
            Self::Overcurrent => "overcurrent",
            Self::Overtemp => "overtemp",
            Self::DepthJam => "depth-jam",
            Self::DepthCreep => "depth-creep",
            Self::Runaway => "runaway",
            Self::Overspeed => "overspeed",
        }
    }
}

impl fmt::Display for PhysicalFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// What a pen is built with; it survives reboots.
#[derive(Debug, Clone, PartialEq)]
pub struct PenConfig {
    /// Serial number in INFO: 1..=32 of `A-Z a-z 0-9 _ - .`.
    pub serial: String,
    /// Boot counter at the first start; each simulated reboot adds one.
    pub boot_count: u32,
    /// The hidden true errors that calibration estimates.
    pub hidden: HiddenErrors,
    /// The cartridge in the pen at start.
    pub cartridge: Option<Cartridge>,
    /// Telemetry is not sent on a schedule but in bursts, as fast as the runner can
    /// write ([`PenModel::telemetry_burst`]); for throughput benchmarks.
    pub unthrottled_telemetry: bool,
    /// Seed of the deterministic noise (and of the runner's corruption).
    pub seed: u64,
    /// Every telemetry sample sent is also journaled ([`Journaled::Sample`]): the
    /// pen-side truth of where the needle was, for tests. Off by default: at 1000 Hz
    /// it is a million journal entries in 17 minutes.
    pub journal_telemetry: bool,
}

impl Default for PenConfig {
    fn default() -> Self {
        Self {
            serial: "SIM00001".to_owned(),
            boot_count: 1,
            hidden: HiddenErrors::default(),
            cartridge: Some(Cartridge::default()),
            unthrottled_telemetry: false,
            seed: 1,
            journal_telemetry: false,
        }
    }
}

impl PenConfig {
    /// Checks what INFO will carry, so every line the pen sends can be framed.
    pub fn check(&self) -> Result<(), String> {
        let serial_ok = (1..=32).contains(&self.serial.len())
            && self
                .serial
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if serial_ok {
            Ok(())
        } else {
            Err(format!(
                "serial {:?} is not 1..32 of A-Z a-z 0-9 _ - .",
                self.serial
            ))
        }
    }
}

/// How the pen answered a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `ACK <seq>`.
    Ack,
    /// `NAK <seq> <reason>`.
    Nak(NakReason),
}

/// One thing that happened in the pen, with the pen time and boot it happened in.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Pen time (ms since this boot, wrapping), as on the wire.
    pub t_ms: u32,
    /// The boot counter at the time.
    pub boot: u32,
    /// What happened.
    pub what: Journaled,
}

/// What the journal records: the pen-side truth tests check the host against.
#[derive(Debug, Clone, PartialEq)]
pub enum Journaled {
    /// A command frame (CRC ok) with a usable sequence number, and its answer.
    Command {
        /// Its sequence number.
        seq: Seq,
        /// The frame body, as received.
        body: String,
        /// The parsed command; `None` when it was answered `UNKNOWN` or `ARGS`.
        command: Option<Command>,
        /// How it was answered.
        answer: Answer,
        /// A duplicate of the last answered frame: the answer was resent and the
        /// command not executed again.
        duplicate: bool,
    },
    /// A frame whose CRC matched but whose sequence number could not be parsed: there
    /// is nothing to address an answer to, so none was sent.
    Unaddressed {
        /// The frame body.
        body: String,
    },
    /// An input line the decoder discarded.
    Discarded(DiscardReason),
    /// The E-stop byte 0x18 arrived.
    EstopByte,
    /// The pen sent an `EV` line (faults included).
    Event(PenEvent),
    /// The pen sent this telemetry sample (only with
    /// [`PenConfig::journal_telemetry`]).
    Sample(Telemetry),
    /// An action was applied to the simulation.
    Action(SimAction),
    /// `CAL SET` changed the calibration (the runner persists it).
    CalibrationChanged(Calibration),
    /// Persisting the calibration failed; it is in effect but will not survive a restart.
    CalPersistFailed {
        /// Why.
        error: String,
    },
    /// The pen's port appeared (at start, and after a simulated unplug).
    LinkUp {
        /// The pty slave path a host opens (the symlink, if any, points here).
        path: std::path::PathBuf,
    },
    /// The pen's port disappeared (simulated unplug).
    LinkDown,
    /// The pen stopped reading and writing its port.
    SilenceStarted,
    /// The pen reads and writes its port again.
    SilenceEnded,
}

/// Counters kept by the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelCounters {
    /// Telemetry samples produced since start (all boots).
    pub telemetry_samples: u64,
    /// Valid frames (CRC ok) received.
    pub frames_ok: u64,
    /// Discarded input lines by reason; frames with no usable sequence number are
    /// counted as `bad_fields`.
    pub input_discards: DiscardCounts,
    /// E-stop bytes received.
    pub estop_bytes: u64,
    /// Commands answered as duplicates.
    pub duplicates: u64,
}

/// One decoded input item, owned, so the decoder's borrow ends before acting on it.
#[derive(Debug)]
enum Inbound {
    Frame(String),
    EStop,
    Discarded(DiscardReason),
}

/// The last command answered, for the duplicate rule.
#[derive(Debug)]
struct LastAnswer {
    body: String,
    seq: Seq,
    answer: Answer,
    answered_at_ms: u64,
    /// The exact bytes sent in answer (ACK/NAK and its data lines), to resend.
    reply: Vec<u8>,
}

/// Physical conditions currently injected.
#[derive(Debug, Clone, Copy, Default)]
// Independent faults that can be injected together, so neither a state machine nor
// two-variant enums fit: each bool is one switch.
#[allow(clippy::struct_excessive_bools)]
struct Injected {
    stall: bool,
    overcurrent: bool,
    overtemp: bool,
    depth_jam: bool,
    depth_creep: bool,
    overspeed: bool,
}

/// The telemetry schedule.
#[derive(Debug, Clone, Copy, Default)]
struct TelSchedule {
    hz: u32,
    /// When the current rate was set.
    start_ms: u64,
    /// Samples sent since `start_ms`.
    sent: u64,
    /// The next sample's `n`.
    n: u32,
}

/// The simulated pen: state machine, motor, depth mechanism, sensors and telemetry.
#[derive(Debug)]
pub struct PenModel {
    config: PenConfig,
    calibration: Calibration,
    cartridge: Option<Cartridge>,
    injected: Injected,
    boot: u32,
    boot_at_ms: u64,
    /// The last millisecond the physics was stepped to.
    stepped_to_ms: u64,
    decoder: FrameDecoder,
    inbox: Vec<Inbound>,
    session: bool,
    state: PenState,
    /// Speed target, rpm (measured scale).
    speed_target_rpm: i64,
    /// The ramped speed setpoint the regulator holds the measured speed to.
    setpoint_rpm: f64,
    /// The rotor's true speed.
    true_rpm: f64,
    /// RUNNING, ramping down after HALT; IDLE when the setpoint reaches 0.
    halting: bool,
    below_half_since_ms: Option<u64>,
    depth_target_um: i64,
    raw_target_um: f64,
    raw_pos_um: f64,
    /// When the current depth move started; `None` when none is pending.
    move_started_ms: Option<u64>,
    temp_dc: f64,
    tel: TelSchedule,
    last_valid_frame_ms: u64,
    last_answer: Option<LastAnswer>,
    journal: Vec<JournalEntry>,
    counters: ModelCounters,
    rng: XorShift64,
    scratch: String,
}

impl PenModel {
    /// Powers the pen on at `now_ms` and appends `EV <t_ms> BOOT <boot> POWER` to `out`.
    ///
    /// `calibration` is what the pen's memory holds (identity for a new pen).
    #[must_use]
    pub fn new(
        config: PenConfig,
        calibration: Calibration,
        now_ms: u64,
        out: &mut Vec<u8>,
    ) -> Self {
        let mut pen = Self {
            cartridge: config.cartridge,
            boot: config.boot_count,
            rng: XorShift64::new(config.seed),
            config,
            calibration,
            injected: Injected::default(),
            boot_at_ms: now_ms,
            stepped_to_ms: now_ms,
            decoder: FrameDecoder::watching_estop(),
            inbox: Vec::new(),
            session: false,
            state: PenState::Idle,
            speed_target_rpm: DEFAULT_SPEED_RPM,
            setpoint_rpm: 0.0,
            true_rpm: 0.0,
            halting: false,
            below_half_since_ms: None,
            depth_target_um: 0,
            raw_target_um: 0.0,
            raw_pos_um: 0.0,
            move_started_ms: None,
            temp_dc: AMBIENT_DC,
            tel: TelSchedule::default(),
            last_valid_frame_ms: now_ms,
            last_answer: None,
            journal: Vec::new(),
            counters: ModelCounters::default(),
            scratch: String::new(),
        };
        pen.boot_up(now_ms, BootReason::Power, out);
        pen
    }

    /// Resets everything volatile, as a (re)started pen's firmware would, and announces it.
    fn boot_up(&mut self, now_ms: u64, reason: BootReason, out: &mut Vec<u8>) {
        self.boot_at_ms = now_ms;
        self.stepped_to_ms = now_ms;
        self.decoder.reset_partial();
        self.session = false;
        self.state = PenState::Idle;
        self.speed_target_rpm = DEFAULT_SPEED_RPM;
        self.stop_motor_now();
        self.depth_target_um = 0;
        // The mechanism homes during boot: it starts at the calibrated zero.
        self.raw_target_um = self.raw_for(0);
        self.raw_pos_um = self.raw_target_um;
        self.move_started_ms = None;
        self.tel = TelSchedule::default();
        self.last_valid_frame_ms = now_ms;
        self.last_answer = None;
        let boot = self.boot;
        self.emit_event(now_ms, PenEvent::Boot { boot, reason }, out);
    }

    /// The pen's state.
    #[must_use]
    pub fn state(&self) -> PenState {
        self.state
    }

    /// The boot counter.
    #[must_use]
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The telemetry rate, Hz (0 = off).
    #[must_use]
    pub fn tel_hz(&self) -> u32 {
        self.tel.hz
    }

    /// True once a host has said `HELLO` in this boot.
    #[must_use]
    pub fn in_session(&self) -> bool {
        self.session
    }

    /// True while the depth mechanism is moving toward its target.
    #[must_use]
    pub fn depth_moving(&self) -> bool {
        self.move_started_ms.is_some()
    }

    /// The calibration in effect.
    #[must_use]
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The cartridge in the pen.
    #[must_use]
    pub fn cartridge(&self) -> Option<Cartridge> {
        self.cartridge
    }

    /// Counters since start.
    #[must_use]
    pub fn counters(&self) -> ModelCounters {
        ModelCounters {
            frames_ok: self.decoder.frames_ok(),
            input_discards: *self.decoder.discards(),
            ..self.counters
        }
    }

    /// Pen time at `now_ms`: ms since the last boot, wrapping at 2³².
    #[must_use]
    // Truncating to the low 32 bits is the protocol's wrap-around, not a loss.
    #[allow(clippy::cast_possible_truncation)]
    pub fn t_ms(&self, now_ms: u64) -> u32 {
        now_ms.wrapping_sub(self.boot_at_ms) as u32
    }

    /// Hands out what was journaled since the last call.
    pub fn drain_journal(&mut self) -> std::vec::Drain<'_, JournalEntry> {
        self.journal.drain(..)
    }

    /// Records something that happened outside the model (the runner's link events).
    pub fn journal_note(&mut self, now_ms: u64, what: Journaled) {
        self.journal(now_ms, what);
    }

    /// Forgets any partial input line (the port went away).
    pub fn reset_input(&mut self) {
        self.decoder.reset_partial();
    }

    /// Feeds bytes from the host, received at `now_ms`: steps the physics to `now_ms`,
    /// then acts on every frame and E-stop byte in wire order, appending the answers.
    pub fn on_bytes(&mut self, now_ms: u64, bytes: &[u8], out: &mut Vec<u8>) {
        self.advance(now_ms, out);
        let inbox = &mut self.inbox;
        self.decoder.feed(bytes, |decoded| {
            inbox.push(match decoded {
                Decoded::Frame(body) => Inbound::Frame(body.to_owned()),
                Decoded::EStop => Inbound::EStop,
                Decoded::Discarded(reason) => Inbound::Discarded(reason),
            });
        });
        let mut items = std::mem::take(&mut self.inbox);
        for item in items.drain(..) {
            match item {
                Inbound::Frame(body) => self.on_frame(now_ms, &body, out),
                Inbound::EStop => {
                    self.counters.estop_bytes += 1;
                    self.journal(now_ms, Journaled::EstopByte);
                    // The decoder has already dropped the partial line around the byte.
                    self.estop(now_ms, EstopSource::Host, out);
                }
                Inbound::Discarded(reason) => self.journal(now_ms, Journaled::Discarded(reason)),
            }
        }
        self.inbox = items;
    }

    /// Steps the physics to `now_ms`, then checks the watchdog.
    ///
    /// The watchdog is checked here, after the caller has fed every byte it read, and
    /// not inside the per-millisecond steps: a frame that waited in the port's buffer
    /// while the runner was descheduled counts as having arrived in time.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        self.advance(now_ms, out);
        if self.state == PenState::Running
            && now_ms.saturating_sub(self.last_valid_frame_ms) >= WATCHDOG_MS
        {
            self.fault(now_ms, FaultCode::Watchdog, out);
        }
    }

    /// Applies an action at `now_ms`. Link-level actions (corruption, silence,
    /// unplugging) are the runner's; here they are only journaled, and
    /// [`SimAction::ClearFaults`] ends the injected physical conditions.
    pub fn act(&mut self, now_ms: u64, action: &SimAction, out: &mut Vec<u8>) {
        self.advance(now_ms, out);
        self.journal(now_ms, Journaled::Action(action.clone()));
        match action {
            SimAction::InjectFault(fault) => match fault {
                PhysicalFault::Stall => self.injected.stall = true,
                PhysicalFault::Overcurrent => self.injected.overcurrent = true,
                PhysicalFault::Overtemp => self.injected.overtemp = true,
                PhysicalFault::DepthJam => self.injected.depth_jam = true,
                PhysicalFault::DepthCreep => self.injected.depth_creep = true,
                PhysicalFault::Overspeed => self.injected.overspeed = true,
                PhysicalFault::Runaway => {
                    // A stopped pen (FAULT, ESTOP) stays stopped: only IDLE runs away.
                    if self.state == PenState::Idle {
                        self.state = PenState::Running;
                        self.halting = false;
                    }
                }
            },
            SimAction::ClearFaults => self.injected = Injected::default(),
            SimAction::Reboot(reason) => {
                self.boot = self.boot.wrapping_add(1);
                self.boot_up(now_ms, *reason, out);
            }
            SimAction::PressStartButton => match self.state {
                PenState::Idle => self.emit_event(now_ms, PenEvent::Button, out),
                PenState::Running => {
                    self.halting = true;
                    self.emit_event(now_ms, PenEvent::HaltButton, out);
                }
                // A stopped pen's start button does nothing until RESET.
                PenState::Fault | PenState::Estop => {}
            },
            SimAction::PressStopButton => {
                // Same effect as the host's byte, including the partial line.
                self.decoder.reset_partial();
                self.estop(now_ms, EstopSource::Button, out);
            }
            SimAction::TelemetryRate(hz) => {
                self.tel = TelSchedule {
                    hz: *hz,
                    start_ms: now_ms,
                    sent: 0,
                    n: self.tel.n,
                };
            }
            SimAction::RemoveCartridge => {
                if self.cartridge.take().is_some() {
                    if self.state == PenState::Running {
                        self.halting = true;
                    }
                    self.emit_event(now_ms, PenEvent::CartridgeRemoved, out);
                }
            }
            SimAction::InsertCartridge(cartridge) => {
                self.cartridge = Some(*cartridge);
                let (id, needles) = (cartridge.id, cartridge.needles);
                self.emit_event(now_ms, PenEvent::Cartridge { id, needles }, out);
            }
            SimAction::Corrupt(_)
            | SimAction::LoseNext(_)
            | SimAction::GoSilent { .. }
            | SimAction::Disappear { .. }
            | SimAction::Reappear => {}
        }
    }

    /// In unthrottled mode, sends up to `max_samples` telemetry samples at once, all
    /// stamped `now_ms`, if telemetry is on. Returns how many were sent.
    pub fn telemetry_burst(&mut self, now_ms: u64, max_samples: usize, out: &mut Vec<u8>) -> usize {
        self.advance(now_ms, out);
        if self.tel.hz == 0 {
            return 0;
        }
        for _ in 0..max_samples {
            self.emit_telemetry(now_ms, out);
        }
        max_samples
    }

    /// The true needle protrusion, µm, that a depth gauge would read.
    #[must_use]
    pub fn true_depth_um(&self) -> i32 {
        let h = self.config.hidden;
        let p = (1.0 + ppm(h.depth_gain_ppm)) * self.raw_pos_um + f64::from(h.depth_offset_um);
        round_i32(p)
    }

    /// The depth the pen reports, µm: its actual position seen through its calibration.
    #[must_use]
    pub fn reported_depth_um(&self) -> i32 {
        let c = &self.calibration;
        let d = (1.0 + ppm(c.depth_gain_ppm)) * self.raw_pos_um + f64::from(c.depth_offset_um);
        round_i32(d)
    }

    /// The measured (corrected) speed, rpm.
    #[must_use]
    pub fn measured_rpm(&self) -> f64 {
        let sensor = self.true_rpm / (1.0 + ppm(self.config.hidden.speed_gain_ppm));
        sensor * (1.0 + ppm(self.calibration.speed_gain_ppm))
    }

    /// The rotor's true speed, rpm.
    #[must_use]
    pub fn true_rpm(&self) -> f64 {
        self.true_rpm
    }

    // ---- commands ----

    fn on_frame(&mut self, now_ms: u64, body: &str, out: &mut Vec<u8>) {
        // Section 6: any valid frame feeds the watchdog, answered or not.
        self.last_valid_frame_ms = now_ms;
        if let Some(last) = &self.last_answer
            && last.body == body
            && now_ms.saturating_sub(last.answered_at_ms) <= DUPLICATE_WINDOW_MS
        {
            out.extend_from_slice(&last.reply);
            let (seq, answer) = (last.seq, last.answer);
            self.counters.duplicates += 1;
            let command = parse_command(body).ok().map(|(_, c)| c);
            let body = body.to_owned();
            self.journal(
                now_ms,
                Journaled::Command {
                    seq,
                    body,
                    command,
                    answer,
                    duplicate: true,
                },
            );
            return;
        }
        let (seq, parsed) = match parse_command(body) {
            Ok((seq, command)) => (seq, Ok(command)),
            Err(CommandError::BadSeq) => {
                self.decoder.count_discard(DiscardReason::BadFields);
                let body = body.to_owned();
                self.journal(now_ms, Journaled::Unaddressed { body });
                return;
            }
            Err(CommandError::UnknownVerb(seq)) => (seq, Err(NakReason::Unknown)),
            Err(CommandError::BadArgs(seq)) => (seq, Err(NakReason::Args)),
        };
        let reply_start = out.len();
        let answer = match &parsed {
            Ok(command) => self.execute(now_ms, seq, command, out),
            Err(reason) => {
                // Before HELLO every verb but HELLO gets NAK HELLO, even a malformed one.
                let is_hello = body.split(' ').nth(1) == Some("HELLO");
                let reason = if self.session || is_hello {
                    *reason
                } else {
                    NakReason::Hello
                };
                self.send(&PenMessage::Nak(seq, reason), out);
                Answer::Nak(reason)
            }
        };
        // The answer is the ACK or NAK line alone (section 4): a duplicate gets it
        // again, not what the command then sent (HELLO's INFO, CAL GET's CAL).
        let reply = out[reply_start..]
            .split_inclusive(|&b| b == b'\n')
            .next()
            .unwrap_or_default()
            .to_vec();
        self.last_answer = Some(LastAnswer {
            body: body.to_owned(),
            seq,
            answer,
            answered_at_ms: now_ms,
            reply,
        });
        self.journal(
            now_ms,
            Journaled::Command {
                seq,
                body: body.to_owned(),
                command: parsed.ok(),
                answer,
                duplicate: false,
            },
        );
    }

    /// Checks, answers and carries out one command.
    fn execute(&mut self, now_ms: u64, seq: Seq, command: &Command, out: &mut Vec<u8>) -> Answer {
        if let Err(reason) = self.check(command) {
            self.send(&PenMessage::Nak(seq, reason), out);
            return Answer::Nak(reason);
        }
        self.send(&PenMessage::Ack(seq), out);
        match command {
            Command::Hello { .. } => {
                self.session = true;
                if self.state == PenState::Running {
                    self.stop_motor_now();
                    self.state = PenState::Idle;
                }
                self.tel = TelSchedule::default();
                self.send(&PenMessage::Info(self.info()), out);
                if let Some(Cartridge { id, needles }) = self.cartridge {
                    self.emit_event(now_ms, PenEvent::Cartridge { id, needles }, out);
                }
            }
            Command::Info => self.send(&PenMessage::Info(self.info()), out),
            Command::Depth { depth_um } => {
                self.depth_target_um = *depth_um;
                self.place_depth(now_ms);
            }
            Command::Speed { rpm } => self.speed_target_rpm = *rpm,
            Command::Run => {
                // From IDLE it starts; while ramping down after HALT it ramps back up;
                // while running it changes nothing.
                self.state = PenState::Running;
                self.halting = false;
            }
            Command::Halt => {
                if self.state == PenState::Running {
                    self.halting = true;
                }
            }
            Command::Hb => {}
            Command::Tel { hz } => {
                self.tel = TelSchedule {
                    hz: u32::try_from(*hz).unwrap_or(0),
                    start_ms: now_ms,
                    sent: 0,
                    n: self.tel.n,
                };
                // The first sample goes out at once, right after the ACK.
                self.emit_due_telemetry(now_ms, out);
            }
            Command::Reset => {
                if matches!(self.state, PenState::Fault | PenState::Estop) {
                    self.state = PenState::Idle;
                    // A move left pending gets a fresh second from now.
                    if self.move_started_ms.is_some() {
                        self.move_started_ms = Some(now_ms);
                    }
                }
            }
            Command::CalGet => self.send(&PenMessage::Cal(self.calibration.clone()), out),
            Command::CalSet(update) => {
                // `check` has validated the merged calibration.
                self.calibration = merged(&self.calibration, update);
                self.place_depth(now_ms);
                let cal = self.calibration.clone();
                self.journal(now_ms, Journaled::CalibrationChanged(cal));
            }
            Command::SimGauge => {
                let true_um = self.true_depth_um();
                self.send(&PenMessage::Gauge { true_um }, out);
            }
        }
        Answer::Ack
    }

    /// The state and range rules of section 4. State is checked before range: a verb
    /// that is not allowed now is refused as such whatever its argument.
    fn check(&self, command: &Command) -> Result<(), NakReason> {
        let moving_allowed = matches!(self.state, PenState::Idle | PenState::Running);
        match command {
            Command::Hello { proto } => {
                if *proto == PROTOCOL_VERSION {
                    Ok(())
                } else {
                    Err(NakReason::Proto)
                }
            }
            _ if !self.session => Err(NakReason::Hello),
            Command::Info | Command::Halt | Command::Hb | Command::CalGet | Command::SimGauge => {
                Ok(())
            }
            Command::Depth { depth_um } => {
                if !moving_allowed {
                    Err(NakReason::State)
                } else if (0..=DEPTH_MAX_UM).contains(depth_um) && depth_um % DEPTH_STEP_UM == 0 {
                    Ok(())
                } else {
                    Err(NakReason::Range)
                }
            }
            Command::Speed { rpm } => {
                if !moving_allowed {
                    Err(NakReason::State)
                } else if (SPEED_MIN_RPM..=SPEED_MAX_RPM).contains(rpm) {
                    Ok(())
                } else {
                    Err(NakReason::Range)
                }
            }
            Command::Run => {
                if !moving_allowed {
                    Err(NakReason::State)
                } else if self.cartridge.is_none() {
                    Err(NakReason::Cartridge)
                } else {
                    Ok(())
                }
            }
            Command::Tel { hz } => {
                if *hz == 0 || (TEL_MIN_HZ..=TEL_MAX_HZ).contains(hz) {
                    Ok(())
                } else {
                    Err(NakReason::Range)
                }
            }
            Command::Reset => {
                if self.state == PenState::Running {
                    Err(NakReason::State)
                } else {
                    Ok(())
                }
            }
            Command::CalSet(update) => {
                if self.state != PenState::Idle {
                    return Err(NakReason::State);
                }
                // The parser already answers ARGS for an empty, unknown or repeated key.
                if update.is_empty() {
                    return Err(NakReason::Args);
                }
                check_calibration(&merged(&self.calibration, update)).map_err(|_| NakReason::Range)
            }
        }
    }

    // The limits are small positive constants (at most 9000), far inside the wire's
    // i32 and u32 fields, so these casts cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    fn info(&self) -> PenInfo {
        PenInfo {
            model: MODEL_NAME.to_owned(),
            serial: self.config.serial.clone(),
            fw: SIM_FW.to_owned(),
            proto: PROTOCOL_VERSION,
            boot: self.boot,
            depth_max_um: DEPTH_MAX_UM as i32,
            depth_step_um: DEPTH_STEP_UM as i32,
            speed_min_rpm: SPEED_MIN_RPM as i32,
            speed_max_rpm: SPEED_MAX_RPM as i32,
            watchdog_ms: WATCHDOG_MS as u32,
            tel_max_hz: TEL_MAX_HZ as u32,
        }
    }

    // ---- stops ----

    fn stop_motor_now(&mut self) {
        self.setpoint_rpm = 0.0;
        self.true_rpm = 0.0;
        self.halting = false;
        self.below_half_since_ms = None;
    }

    fn estop(&mut self, now_ms: u64, source: EstopSource, out: &mut Vec<u8>) {
        self.stop_motor_now();
        self.state = PenState::Estop;
        // Every E-stop is answered, even in ESTOP: the host resends the byte every
        // 20 ms until it sees ESTOP, and each answer can end that sooner.
        self.emit_event(now_ms, PenEvent::Estop(source), out);
    }

    fn fault(&mut self, now_ms: u64, code: FaultCode, out: &mut Vec<u8>) {
        self.stop_motor_now();
        self.state = PenState::Fault;
        self.emit_event(now_ms, PenEvent::Fault(code), out);
    }

    // ---- physics ----

    /// The raw mechanism position that gives calibrated depth `depth_um`.
    // Depth targets are validated to 0..=DEPTH_MAX_UM, far below 2^53, so the cast to
    // f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    fn raw_for(&self, depth_um: i64) -> f64 {
        let c = &self.calibration;
        (depth_um as f64 - f64::from(c.depth_offset_um)) / (1.0 + ppm(c.depth_gain_ppm))
    }

    /// Re-aims the mechanism at the depth target through the current calibration.
    // Exact equality is intended: `approach` lands exactly on the target, and any
    // difference at all is a move to make.
    #[allow(clippy::float_cmp)]
    fn place_depth(&mut self, now_ms: u64) {
        self.raw_target_um = self.raw_for(self.depth_target_um);
        self.move_started_ms = (self.raw_pos_um != self.raw_target_um).then_some(now_ms);
    }

    /// Steps the physics one millisecond at a time up to `now_ms`.
    fn advance(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        while self.stepped_to_ms < now_ms {
            self.stepped_to_ms += 1;
            self.step(self.stepped_to_ms, out);
        }
    }

    fn step(&mut self, t: u64, out: &mut Vec<u8>) {
        self.step_motor(t, out);
        self.step_depth(t, out);
        self.emit_due_telemetry(t, out);
    }

    /// Sends the scheduled samples due by `t`: `floor(elapsed * hz / 1000) + 1` since
    /// the rate was set, so a late caller catches up and `n` never skips.
    fn emit_due_telemetry(&mut self, t: u64, out: &mut Vec<u8>) {
        if self.tel.hz == 0 || self.config.unthrottled_telemetry {
            return;
        }
        let elapsed_ms = t - self.tel.start_ms;
        let due = elapsed_ms * u64::from(self.tel.hz) / 1000 + 1;
        while self.tel.sent < due {
            self.emit_telemetry(t, out);
        }
    }

    fn step_motor(&mut self, t: u64, out: &mut Vec<u8>) {
        if self.state != PenState::Running {
            self.temp_dc += (AMBIENT_DC - self.temp_dc) / COOL_TAU_MS;
            return;
        }
        // Speed targets are validated to SPEED_MIN_RPM..=SPEED_MAX_RPM, far below 2^53,
        // so the cast to f64 is exact.
        #[allow(clippy::cast_precision_loss)]
        let (goal, rate) = if self.halting {
            (0.0, HALT_RPM_PER_MS)
        } else {
            (self.speed_target_rpm as f64, RAMP_RPM_PER_MS)
        };
        self.setpoint_rpm = approach(self.setpoint_rpm, goal, rate);
        // The regulator holds the measured speed at the setpoint; the rotor's true speed
        // is whatever makes the (miscalibrated) sensor read that.
        let true_goal = self.setpoint_rpm * (1.0 + ppm(self.config.hidden.speed_gain_ppm))
            / (1.0 + ppm(self.calibration.speed_gain_ppm));
        self.true_rpm = if self.injected.stall {
            (self.true_rpm - STALL_DECEL_RPM_PER_MS).max(0.0)
        } else if self.injected.overspeed && !self.halting {
            // The regulator has lost hold: the rotor climbs past its goal.
            approach(self.true_rpm, true_goal * OVERSPEED_FACTOR, RAMP_RPM_PER_MS)
        } else {
            true_goal
        };
        if self.halting && self.setpoint_rpm <= 0.0 {
            self.stop_motor_now();
            self.state = PenState::Idle;
            return;
        }
        let measured = self.measured_rpm();
        if !self.halting && measured < self.setpoint_rpm / 2.0 {
            let since = *self.below_half_since_ms.get_or_insert(t);
            if t - since >= STALL_MS {
                return self.fault(t, FaultCode::Stall, out);
            }
        } else {
            self.below_half_since_ms = None;
        }
        if self.current_ma() > OVERCURRENT_MA {
            return self.fault(t, FaultCode::Overcurrent, out);
        }
        self.temp_dc += (RUNNING_TEMP_DC - self.temp_dc) / HEAT_TAU_MS;
        if self.injected.overtemp {
            self.temp_dc += OVERHEAT_DC_PER_MS;
        }
        if self.temp_dc > OVERTEMP_DC {
            self.fault(t, FaultCode::Overtemp, out);
        }
    }

    /// The motor current, mA, without noise.
    fn current_ma(&self) -> f64 {
        if self.state != PenState::Running {
            return 0.0;
        }
        if self.injected.overcurrent {
            return SHORT_MA;
        }
        let load = if self.injected.stall {
            STALL_EXTRA_MA
        } else {
            0.0
        };
        RUNNING_BASE_MA + MA_PER_RPM * self.measured_rpm() + load
    }

    // Exact equality is intended: `approach` assigns the target itself on arrival.
    #[allow(clippy::float_cmp)]
    fn step_depth(&mut self, t: u64, out: &mut Vec<u8>) {
        if self.injected.depth_creep {
            // The mechanism slips deeper whatever its target; the pen's own move
            // logic does not see it (no DEPTH fault), only its telemetry does.
            let deepest = self.raw_for(DEPTH_MAX_UM);
            self.raw_pos_um = approach(self.raw_pos_um, deepest, DEPTH_TRAVEL_UM_PER_MS);
            return;
        }
        let Some(started_ms) = self.move_started_ms else {
            return;
        };
        if !self.injected.depth_jam {
            self.raw_pos_um = approach(self.raw_pos_um, self.raw_target_um, DEPTH_TRAVEL_UM_PER_MS);
            if self.raw_pos_um == self.raw_target_um {
                self.move_started_ms = None;
                return;
            }
        }
        if matches!(self.state, PenState::Idle | PenState::Running)
            && t - started_ms >= DEPTH_TIMEOUT_MS
        {
            // The move is abandoned where the mechanism stuck.
            self.raw_target_um = self.raw_pos_um;
            self.move_started_ms = None;
            self.fault(t, FaultCode::Depth, out);
        }
    }

    // ---- output ----

    fn emit_telemetry(&mut self, t: u64, out: &mut Vec<u8>) {
        let running = self.state == PenState::Running;
        // A little deterministic noise on the current, as a real ADC shows.
        // below(5) is 0..=4, which an f64 holds exactly.
        #[allow(clippy::cast_precision_loss)]
        let noise_ma = if running {
            self.rng.below(5) as f64 - 2.0
        } else {
            0.0
        };
        let sample = Telemetry {
            n: self.tel.n,
            t_ms: self.t_ms(t),
            state: self.state,
            rpm: round_i32(self.measured_rpm()),
            depth_um: self.reported_depth_um(),
            current_ma: round_i32(self.current_ma() + noise_ma).max(0),
            temp_dc: round_i32(self.temp_dc),
        };
        self.send(&PenMessage::Telemetry(sample), out);
        if self.config.journal_telemetry {
            self.journal(t, Journaled::Sample(sample));
        }
        self.tel.n = self.tel.n.wrapping_add(1);
        self.tel.sent += 1;
        self.counters.telemetry_samples += 1;
    }

    fn emit_event(&mut self, now_ms: u64, event: PenEvent, out: &mut Vec<u8>) {
        let t_ms = self.t_ms(now_ms);
        self.send(&PenMessage::Event { t_ms, event }, out);
        self.journal(now_ms, Journaled::Event(event));
    }

    fn send(&mut self, message: &PenMessage, out: &mut Vec<u8>) {
        // Every body the pen builds is valid: the serial was checked at start and the
        // rest are fixed words and numbers.
        let framed = message.encode_into(&mut self.scratch, out);
        debug_assert!(framed.is_ok(), "unframeable pen line {message:?}");
    }

    fn journal(&mut self, now_ms: u64, what: Journaled) {
        let entry = JournalEntry {
            t_ms: self.t_ms(now_ms),
            boot: self.boot,
            what,
        };
        self.journal.push(entry);
    }
}

fn ppm(value: i32) -> f64 {
    f64::from(value) / 1e6
}

/// A physical quantity (µm, rpm, mA, 0.1 °C) rounded to the nearest whole unit.
// `as` saturates at the i32 bounds (and maps NaN to 0) rather than wrapping, and the
// quantities here are at most a few thousand units, far inside i32.
#[allow(clippy::cast_possible_truncation)]
fn round_i32(value: f64) -> i32 {
    value.round() as i32
}

/// Moves `from` toward `to` by at most `step`.
fn approach(from: f64, to: f64, step: f64) -> f64 {
    if (to - from).abs() <= step {
        to
    } else if to > from {
        from + step
    } else {
        from - step
    }
}

fn merged(calibration: &Calibration, update: &CalUpdate) -> Calibration {
    Calibration {
        depth_offset_um: update
            .depth_offset_um
            .unwrap_or(calibration.depth_offset_um),
        depth_gain_ppm: update.depth_gain_ppm.unwrap_or(calibration.depth_gain_ppm),
        speed_gain_ppm: update.speed_gain_ppm.unwrap_or(calibration.speed_gain_ppm),
        date: update.date.unwrap_or(calibration.date),
        tech: update
            .tech
            .clone()
            .unwrap_or_else(|| calibration.tech.clone()),
    }
}

/// Checks a calibration against the ranges of section 8; says which value is wrong.
pub fn check_calibration(cal: &Calibration) -> Result<(), String> {
    if !(-200..=200).contains(&cal.depth_offset_um) {
        return Err(format!(
            "depth_offset_um {} is outside -200..200",
            cal.depth_offset_um
        ));
    }
    if !(-50_000..=50_000).contains(&cal.depth_gain_ppm) {
        return Err(format!(
            "depth_gain_ppm {} is outside -50000..50000",
            cal.depth_gain_ppm
        ));
    }
    if !(-50_000..=50_000).contains(&cal.speed_gain_ppm) {
        return Err(format!(
            "speed_gain_ppm {} is outside -50000..50000",
            cal.speed_gain_ppm
        ));
    }
    if !valid_date(cal.date) {
        return Err(format!("date {} is not a valid YYYYMMDD or 0", cal.date));
    }
    let tech_ok = (1..=16).contains(&cal.tech.len())
        && cal
            .tech
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !tech_ok {
        return Err(format!(
            "tech {:?} is not 1..16 of A-Z a-z 0-9 _ -",
            cal.tech
        ));
    }
    Ok(())
}

/// A real calendar date written YYYYMMDD (years 1000..=9999), or 0 for "never".
fn valid_date(date: u32) -> bool {
    if date == 0 {
        return true;
    }
    let (year, month, day) = (date / 10_000, date / 100 % 100, date % 100);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1000..=9999).contains(&year) && (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_frame;

    /// A pen on the bench: a model, a clock, and a host-side decoder for its output.
    struct Bench {
        pen: PenModel,
        now_ms: u64,
        out: Vec<u8>,
        host: FrameDecoder,
        next_seq: u16,
    }

    /// A pen with no hidden errors, so depths and speeds can be checked exactly.
    fn ideal() -> PenConfig {
        PenConfig {
            hidden: HiddenErrors {
                depth_gain_ppm: 0,
                depth_offset_um: 0,
                speed_gain_ppm: 0,
            },
            ..PenConfig::default()
        }
    }

    impl Bench {
        fn new(config: PenConfig) -> Self {
            let mut out = Vec::new();
            let pen = PenModel::new(config, Calibration::identity(), 0, &mut out);
            Self {
                pen,
                now_ms: 0,
                out,
                host: FrameDecoder::new(),
                next_seq: 1,
            }
        }

        /// A pen after `HELLO`, its output read.
        fn greeted(config: PenConfig) -> Self {
            let mut bench = Self::new(config);
            bench.cmd("HELLO 1");
            bench
        }

        /// Everything the pen said since the last call.
        fn said(&mut self) -> Vec<PenMessage> {
            let mut messages = Vec::new();
            let out = std::mem::take(&mut self.out);
            self.host.feed(&out, |d| match d {
                Decoded::Frame(body) => {
                    messages.push(PenMessage::parse(body).expect("the pen speaks the protocol"));
                }
                other => panic!("the pen sent a bad line: {other:?}"),
            });
            messages
        }

        fn bytes(&mut self, bytes: &[u8]) -> Vec<PenMessage> {
            self.pen.on_bytes(self.now_ms, bytes, &mut self.out);
            self.said()
        }

        /// Sends `body` as one frame now.
        fn frame(&mut self, body: &str) -> Vec<PenMessage> {
            let mut framed = Vec::new();
            encode_frame(body, &mut framed).expect("valid body");
            self.bytes(&framed)
        }

        /// Sends a command with the next sequence number; returns everything said.
        fn cmd(&mut self, command: &str) -> Vec<PenMessage> {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.frame(&format!("{seq} {command}"))
        }

        /// Sends a command and returns its answer (the first line that is one).
        fn answer(&mut self, command: &str) -> PenMessage {
            let said = self.cmd(command);
            said.into_iter()
                .find(|m| matches!(m, PenMessage::Ack(_) | PenMessage::Nak(..)))
                .expect("every command is answered")
        }

        fn nak(&mut self, command: &str) -> Option<NakReason> {
            match self.answer(command) {
                PenMessage::Nak(_, reason) => Some(reason),
                _ => None,
            }
        }

        /// Lets `ms` pass, ticking every millisecond as the runner does when busy.
        fn wait(&mut self, ms: u64) -> Vec<PenMessage> {
            for _ in 0..ms {
                self.now_ms += 1;
                self.pen.tick(self.now_ms, &mut self.out);
            }
            self.said()
        }

        fn act(&mut self, action: &SimAction) -> Vec<PenMessage> {
            self.pen.act(self.now_ms, action, &mut self.out);
            self.said()
        }

        /// Feeds the watchdog with `HB` every 100 ms while `ms` pass.
        fn wait_fed(&mut self, ms: u64) -> Vec<PenMessage> {
            let mut said = Vec::new();
            let mut left = ms;
            while left > 0 {
                let step = left.min(100);
                said.extend(self.wait(step));
                said.extend(self.cmd("HB"));
                left -= step;
            }
            said
        }
    }

    fn events(messages: &[PenMessage]) -> Vec<(u32, PenEvent)> {
        messages
            .iter()
            .filter_map(|m| match m {
                PenMessage::Event { t_ms, event } => Some((*t_ms, *event)),
                _ => None,
            })
            .collect()
    }

    fn samples(messages: &[PenMessage]) -> Vec<Telemetry> {
        messages
            .iter()
            .filter_map(|m| match m {
                PenMessage::Telemetry(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    fn seq(value: u16) -> Seq {
        Seq::new(value).expect("nonzero")
    }

    #[test]
    fn boot_is_announced_and_every_verb_but_hello_needs_a_session() {
        let mut bench = Bench::new(PenConfig::default());
        assert_eq!(
            bench.said(),
            vec![PenMessage::Event {
                t_ms: 0,
                event: PenEvent::Boot {
                    boot: 1,
                    reason: BootReason::Power
                }
            }]
        );
        for command in [
            "INFO",
            "HB",
            "FLY",
            "DEPTH x",
            "SIM GAUGE",
            "CAL GET",
            "TEL 5",
        ] {
            assert_eq!(bench.nak(command), Some(NakReason::Hello), "{command}");
        }
        assert_eq!(bench.nak("HELLO 2"), Some(NakReason::Proto));
        assert_eq!(bench.nak("HELLO"), Some(NakReason::Args));
        assert_eq!(bench.nak("INFO"), Some(NakReason::Hello));
        let said = bench.cmd("HELLO 1");
        let mut body = String::new();
        said[1].write_body(&mut body);
        assert_eq!(said[0], PenMessage::Ack(seq(11)));
        assert_eq!(
            body,
            "INFO model=MNP-1 serial=SIM00001 fw=1.0.0-sim proto=1 boot=1 depth_max_um=2500 \
             depth_step_um=50 speed_min_rpm=3000 speed_max_rpm=9000 watchdog_ms=300 tel_max_hz=1000"
        );
        assert_eq!(
            events(&said[2..]),
            vec![(
                0,
                PenEvent::Cartridge {
                    id: CartridgeId(0x0123_4567_89AB_CDEF),
                    needles: 12
                }
            )]
        );
        assert_eq!(said.len(), 3);
    }

    #[test]
    fn hello_without_a_cartridge_sends_no_cart_event() {
        let mut bench = Bench::new(PenConfig {
            cartridge: None,
            ..PenConfig::default()
        });
        bench.said();
        let said = bench.cmd("HELLO 1");
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(matches!(said[1], PenMessage::Info(_)));
    }

    #[test]
    fn every_nak_reason_follows_the_table() {
        // (setup commands, physical setup, command, expected NAK or None for ACK)
        type Setup = fn(&mut Bench);
        let running: Setup = |b| {
            b.cmd("RUN");
        };
        let estop: Setup = |b| {
            b.bytes(&[crate::protocol::ESTOP_BYTE]);
        };
        let fault: Setup = |b| {
            b.cmd("RUN");
            b.wait(WATCHDOG_MS);
        };
        let no_cart: Setup = |b| {
            b.act(&SimAction::RemoveCartridge);
        };
        let idle: Setup = |_| {};
        let cases: &[(Setup, &str, Option<NakReason>)] = &[
            (idle, "FLY", Some(NakReason::Unknown)),
            (idle, "SIM DANCE", Some(NakReason::Args)),
            (idle, "DEPTH", Some(NakReason::Args)),
            (idle, "DEPTH 1.5", Some(NakReason::Args)),
            (idle, "HB 1", Some(NakReason::Args)),
            (idle, "CAL SET color=red", Some(NakReason::Args)),
            (idle, "CAL SET", Some(NakReason::Args)),
            (idle, "HELLO 0", Some(NakReason::Proto)),
            (idle, "DEPTH 0", None),
            (idle, "DEPTH 2500", None),
            (idle, "DEPTH 2550", Some(NakReason::Range)),
            (idle, "DEPTH 75", Some(NakReason::Range)),
            (idle, "DEPTH -50", Some(NakReason::Range)),
            (idle, "SPEED 3000", None),
            (idle, "SPEED 9000", None),
            (idle, "SPEED 2999", Some(NakReason::Range)),
            (idle, "SPEED 9001", Some(NakReason::Range)),
            (idle, "TEL 0", None),
            (idle, "TEL 10", None),
            (idle, "TEL 1000", None),
            (idle, "TEL 9", Some(NakReason::Range)),
            (idle, "TEL 1001", Some(NakReason::Range)),
            (
                idle,
                "CAL SET depth_offset_um=200 depth_gain_ppm=-50000",
                None,
            ),
            (idle, "CAL SET depth_offset_um=201", Some(NakReason::Range)),
            (idle, "CAL SET depth_gain_ppm=50001", Some(NakReason::Range)),
            (
                idle,
                "CAL SET speed_gain_ppm=-50001",
                Some(NakReason::Range),
            ),
            (idle, "CAL SET date=20240229", None),
            (idle, "CAL SET date=0", None),
            (idle, "CAL SET date=20230229", Some(NakReason::Range)),
            (idle, "CAL SET date=20231301", Some(NakReason::Range)),
            (idle, "CAL SET date=2023", Some(NakReason::Range)),
            (idle, "CAL SET tech=Ana-B_01", None),
            (idle, "CAL SET tech=a.b", Some(NakReason::Range)),
            (
                idle,
                "CAL SET tech=ABCDEFGHIJKLMNOPQ",
                Some(NakReason::Range),
            ),
            (idle, "RESET", None),
            (idle, "RUN", None),
            (idle, "HALT", None),
            (no_cart, "RUN", Some(NakReason::Cartridge)),
            (running, "RUN", None),
            (running, "RESET", Some(NakReason::State)),
            (running, "DEPTH 500", None),
            (running, "SPEED 4000", None),
            (running, "CAL SET tech=x", Some(NakReason::State)),
            (estop, "RUN", Some(NakReason::State)),
            (estop, "DEPTH 500", Some(NakReason::State)),
            (estop, "DEPTH 75", Some(NakReason::State)),
            (estop, "SPEED 4000", Some(NakReason::State)),
            (estop, "CAL SET tech=x", Some(NakReason::State)),
            (estop, "HALT", None),
            (estop, "RESET", None),
            (fault, "RUN", Some(NakReason::State)),
            (fault, "SPEED 4000", Some(NakReason::State)),
            (fault, "INFO", None),
            (fault, "RESET", None),
            (no_cart, "SIM GAUGE", None),
        ];
        for (setup, command, expected) in cases {
            let mut bench = Bench::greeted(PenConfig::default());
            setup(&mut bench);
            bench.said();
            assert_eq!(bench.nak(command), *expected, "{command}");
        }
    }

    #[test]
    fn a_nak_changes_nothing() {
        let mut bench = Bench::greeted(PenConfig::default());
        bench.cmd("CAL SET depth_offset_um=10 tech=ann");
        assert_eq!(
            bench.nak("CAL SET depth_offset_um=20 tech=no!"),
            Some(NakReason::Range)
        );
        assert_eq!(bench.pen.calibration().depth_offset_um, 10);
        assert_eq!(bench.pen.calibration().tech, "ann");
    }

    #[test]
    fn a_frame_without_a_usable_seq_gets_no_answer_but_is_counted() {
        let mut bench = Bench::greeted(PenConfig::default());
        for body in ["0 HB", "HB", "70000 HB", "-1 RUN"] {
            assert_eq!(bench.frame(body), vec![], "{body}");
        }
        assert_eq!(bench.pen.counters().input_discards.bad_fields, 4);
        let unaddressed = bench
            .pen
            .drain_journal()
            .filter(|e| matches!(e.what, Journaled::Unaddressed { .. }))
            .count();
        assert_eq!(unaddressed, 4);
    }

    #[test]
    fn bad_lines_are_discarded_counted_and_not_answered() {
        let mut bench = Bench::greeted(PenConfig::default());
        assert_eq!(bench.bytes(b"5 HB*0000\n5 HB\n"), vec![]);
        let discards = bench.pen.counters().input_discards;
        assert_eq!((discards.crc_mismatch, discards.no_star), (1, 1));
    }

    #[test]
    fn a_duplicate_within_1000_ms_gets_the_same_answer_and_is_not_executed() {
        let mut bench = Bench::greeted(ideal());
        assert_eq!(bench.frame("7 DEPTH 500"), vec![PenMessage::Ack(seq(7))]);
        // An E-stop is not a frame, so DEPTH stays the last command answered.
        bench.bytes(&[crate::protocol::ESTOP_BYTE]);
        bench.wait(1000);
        // Executed again, DEPTH would be refused in ESTOP.
        assert_eq!(bench.frame("7 DEPTH 500"), vec![PenMessage::Ack(seq(7))]);
        let journal: Vec<_> = bench.pen.drain_journal().collect();
        assert!(journal.iter().any(|e| matches!(
            &e.what,
            Journaled::Command { duplicate: true, answer: Answer::Ack, body, .. } if body == "7 DEPTH 500"
        )));
        // 1001 ms after the answer it is a new command.
        bench.wait(1);
        assert_eq!(
            bench.frame("7 DEPTH 500"),
            vec![PenMessage::Nak(seq(7), NakReason::State)]
        );
    }

    #[test]
    fn a_duplicate_hello_is_answered_with_its_ack_alone_and_not_executed_again() {
        let mut bench = Bench::new(ideal());
        bench.said();
        let first = bench.frame("1 HELLO 1");
        // ACK, INFO, and the cartridge's EV.
        assert_eq!(first.len(), 3);
        bench.wait(10);
        // Section 4: the answer (the ACK) again, not INFO again.
        assert_eq!(bench.frame("1 HELLO 1"), first[..1].to_vec());
        // A different frame in between ends the duplicate.
        bench.frame("2 TEL 100");
        bench.wait(100);
        bench.frame("1 HELLO 1");
        assert_eq!(bench.pen.tel_hz(), 0, "a new HELLO is executed");
    }

    #[test]
    // Exact 0.0 is intended: a stop sets the speed to 0.0 at once, with no ramp.
    #[allow(clippy::float_cmp)]
    fn the_watchdog_fires_at_300_ms_and_not_at_299() {
        let mut bench = Bench::greeted(PenConfig::default());
        bench.wait(1000);
        bench.cmd("RUN");
        let run_t_ms = bench.pen.t_ms(bench.now_ms);
        assert!(events(&bench.wait(299)).is_empty());
        assert_eq!(bench.pen.state(), PenState::Running);
        let said = bench.wait(1);
        assert_eq!(
            events(&said),
            vec![(run_t_ms + 300, PenEvent::Fault(FaultCode::Watchdog))]
        );
        assert_eq!(bench.pen.state(), PenState::Fault);
        assert_eq!(bench.pen.true_rpm(), 0.0, "no ramp");
    }

    #[test]
    fn any_valid_frame_feeds_the_watchdog_even_unanswered_ones() {
        let mut bench = Bench::greeted(PenConfig::default());
        bench.cmd("RUN");
        bench.wait(250);
        bench.frame("0 HB"); // no usable seq: not answered, but a valid frame
        assert!(events(&bench.wait(299)).is_empty());
        assert_eq!(events(&bench.wait(1)).len(), 1);
        // A bad CRC does not feed it.
        let mut bench = Bench::greeted(PenConfig::default());
        bench.cmd("RUN");
        bench.wait(250);
        bench.bytes(b"3 HB*0000\n");
        assert_eq!(events(&bench.wait(50)).len(), 1);
    }

    #[test]
    fn the_watchdog_sleeps_when_not_running() {
        let mut bench = Bench::greeted(PenConfig::default());
        assert!(events(&bench.wait(5000)).is_empty());
        assert_eq!(bench.pen.state(), PenState::Idle);
    }

    #[test]
    // Exact 0.0 is intended: a stop sets the speed to 0.0 at once, with no ramp.
    #[allow(clippy::float_cmp)]
    fn the_estop_byte_mid_line_stops_at_once_and_only_reset_leaves() {
        let mut bench = Bench::greeted(PenConfig::default());
        bench.cmd("RUN");
        bench.wait_fed(200);
        assert!(bench.pen.measured_rpm() > 1000.0);
        let said = bench.bytes(b"3 DEP\x18TH 500*B2DD\n");
        assert_eq!(
            events(&said),
            vec![(
                bench.pen.t_ms(bench.now_ms),
                PenEvent::Estop(EstopSource::Host)
            )]
        );
        assert_eq!(said.len(), 1, "the rest of the broken line is discarded");
        assert_eq!(bench.pen.state(), PenState::Estop);
        assert_eq!(bench.pen.true_rpm(), 0.0);
        // Every byte is answered, even in ESTOP.
        let said = bench.bytes(&[crate::protocol::ESTOP_BYTE, crate::protocol::ESTOP_BYTE]);
        assert_eq!(events(&said).len(), 2);
        assert_eq!(bench.nak("HALT"), None);
        assert_eq!(bench.nak("HELLO 1"), None);
        assert_eq!(
            bench.pen.state(),
            PenState::Estop,
            "HELLO does not leave ESTOP"
        );
        assert_eq!(bench.nak("RESET"), None);
        assert_eq!(bench.pen.state(), PenState::Idle);
    }

    #[test]
    fn the_estop_byte_acts_in_wire_order_with_commands_in_the_same_read() {
        let mut bench = Bench::greeted(PenConfig::default());
        let mut bytes = Vec::new();
        encode_frame("2 RUN", &mut bytes).expect("valid");
        bytes.push(crate::protocol::ESTOP_BYTE);
        encode_frame("3 RESET", &mut bytes).expect("valid");
        let said = bench.bytes(&bytes);
        assert_eq!(said[0], PenMessage::Ack(seq(2)));
        assert!(matches!(
            said[1],
            PenMessage::Event {
                event: PenEvent::Estop(EstopSource::Host),
                ..
            }
        ));
        assert_eq!(said[2], PenMessage::Ack(seq(3)));
        assert_eq!(bench.pen.state(), PenState::Idle);
    }

    #[test]
    fn the_stop_button_is_an_estop_too() {
        let mut bench = Bench::greeted(PenConfig::default());
        bench.cmd("RUN");
        bench.wait(50);
        let said = bench.act(&SimAction::PressStopButton);
        assert_eq!(events(&said)[0].1, PenEvent::Estop(EstopSource::Button));
        assert_eq!(bench.pen.state(), PenState::Estop);
    }

    #[test]
    fn the_speed_ramps_at_most_20000_rpm_per_s_and_halts_within_300_ms() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("SPEED 9000");
        bench.cmd("TEL 1000");
        bench.cmd("RUN");
        let run_t_ms = bench.pen.t_ms(bench.now_ms);
        let mut said = bench.wait_fed(600);
        let up = samples(&said);
        for pair in up.windows(2) {
            let dt_ms = i64::from(pair[1].t_ms - pair[0].t_ms);
            assert!(
                i64::from(pair[1].rpm - pair[0].rpm) <= 20 * dt_ms,
                "{pair:?}"
            );
        }
        let at_speed = up.iter().find(|t| t.rpm == 9000).expect("reaches 9000");
        assert_eq!(at_speed.t_ms - run_t_ms, 450);
        // A running motor draws about 80 mA + 0.03 mA/rpm.
        let last = up.last().expect("samples");
        assert!((last.current_ma - 350).abs() <= 3, "{last:?}");

        bench.cmd("HALT");
        let halt_t_ms = bench.pen.t_ms(bench.now_ms);
        said.clear();
        said.extend(bench.wait_fed(400));
        let down = samples(&said);
        let stopped = down.iter().find(|t| t.rpm == 0).expect("stops");
        assert!(stopped.t_ms - halt_t_ms <= 300);
        assert_eq!(stopped.state, PenState::Idle);
        assert!(
            down.iter()
                .filter(|t| t.rpm > 0)
                .all(|t| t.state == PenState::Running)
        );
        assert!(
            down.iter()
                .all(|t| t.t_ms < stopped.t_ms || t.state == PenState::Idle)
        );
    }

    #[test]
    fn run_while_halting_ramps_back_up() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("RUN");
        bench.wait_fed(400);
        bench.cmd("HALT");
        bench.wait(50);
        assert_eq!(bench.nak("RUN"), None);
        bench.wait_fed(400);
        assert!((bench.pen.measured_rpm() - 6000.0).abs() < 1e-6);
        assert_eq!(bench.pen.state(), PenState::Running);
    }

    #[test]
    // Exact 0.0 is intended: a stop sets the speed to 0.0 at once, with no ramp.
    #[allow(clippy::float_cmp)]
    fn hello_stops_a_running_motor_without_ramp_and_resets_telemetry() {
        let mut bench = Bench::greeted(ideal());
        let mut said = bench.cmd("TEL 100");
        bench.cmd("RUN");
        said.extend(bench.wait_fed(500));
        let before = samples(&said);
        assert_eq!(before[0].n, 0);
        assert!(before.windows(2).all(|p| p[1].n == p[0].n + 1));
        bench.cmd("HELLO 1");
        assert_eq!(bench.pen.state(), PenState::Idle);
        assert_eq!(bench.pen.true_rpm(), 0.0);
        assert!(samples(&bench.wait(200)).is_empty(), "telemetry is off");
        let mut said = bench.cmd("TEL 100");
        said.extend(bench.wait(100));
        let after = samples(&said);
        assert_eq!(after.first().map(|t| t.n), Some(0));
        assert_eq!(after.len(), 11);
    }

    #[test]
    fn telemetry_catches_up_after_a_late_tick_without_skipping_n() {
        let mut bench = Bench::greeted(ideal());
        let mut said = bench.cmd("TEL 300");
        let t0 = bench.pen.t_ms(bench.now_ms);
        bench.now_ms += 1000;
        bench.pen.tick(bench.now_ms, &mut bench.out);
        said.extend(bench.said());
        let got = samples(&said);
        assert_eq!(got.len(), 301);
        for (i, t) in got.iter().enumerate() {
            assert_eq!(t.n as usize, i);
            // Sample k is due at ceil(k * 1000 / 300) ms after TEL.
            assert_eq!(u64::from(t.t_ms - t0), (i as u64 * 1000).div_ceil(300));
        }
    }

    #[test]
    fn unthrottled_telemetry_comes_in_bursts_with_consecutive_n() {
        let mut bench = Bench::greeted(PenConfig {
            unthrottled_telemetry: true,
            ..ideal()
        });
        bench.cmd("TEL 1000");
        assert!(
            samples(&bench.wait(100)).is_empty(),
            "nothing on a schedule"
        );
        let sent = bench.pen.telemetry_burst(bench.now_ms, 64, &mut bench.out);
        bench.pen.telemetry_burst(bench.now_ms, 64, &mut bench.out);
        let got = samples(&bench.said());
        assert_eq!((sent, got.len()), (64, 128));
        assert!(got.iter().enumerate().all(|(i, t)| t.n as usize == i));
        bench.cmd("TEL 0");
        assert_eq!(
            bench.pen.telemetry_burst(bench.now_ms, 64, &mut bench.out),
            0
        );
    }

    #[test]
    fn the_depth_mechanism_travels_at_5_mm_per_s() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("TEL 1000");
        bench.cmd("DEPTH 2500");
        let t0 = bench.pen.t_ms(bench.now_ms);
        let got = samples(&bench.wait(600));
        let depth_at = |ms: u32| {
            got.iter()
                .find(|t| t.t_ms == t0 + ms)
                .map(|t| t.depth_um)
                .expect("a sample every ms")
        };
        assert_eq!(depth_at(100), 500);
        assert_eq!(depth_at(250), 1250);
        assert_eq!(depth_at(499), 2495);
        assert_eq!(depth_at(500), 2500);
        assert!(!bench.pen.depth_moving());
        bench.cmd("DEPTH 2000");
        bench.wait(50);
        assert_eq!(bench.pen.reported_depth_um(), 2250);
    }

    #[test]
    fn calibration_math_follows_section_8() {
        let hidden = HiddenErrors {
            depth_gain_ppm: 20_000,
            depth_offset_um: 30,
            speed_gain_ppm: 10_000,
        };
        let mut bench = Bench::greeted(PenConfig {
            hidden,
            ..PenConfig::default()
        });
        // Uncalibrated: the pen reports what it aims at, the gauge shows the truth.
        bench.cmd("DEPTH 1000");
        bench.wait(400);
        assert_eq!(bench.pen.reported_depth_um(), 1000);
        let said = bench.cmd("SIM GAUGE");
        assert_eq!(said[1], PenMessage::Gauge { true_um: 1050 });
        // With the true errors stored, the truth is the target.
        bench.cmd("CAL SET depth_gain_ppm=20000 depth_offset_um=30 date=20250601 tech=t1");
        bench.wait(400);
        assert_eq!(bench.pen.reported_depth_um(), 1000);
        assert_eq!(bench.pen.true_depth_um(), 1000);
        let said = bench.cmd("CAL GET");
        assert_eq!(
            said[1],
            PenMessage::Cal(Calibration {
                depth_offset_um: 30,
                depth_gain_ppm: 20_000,
                speed_gain_ppm: 0,
                // YYYY_MM_DD: grouped by date field, which reads better than by thousands.
                #[allow(clippy::inconsistent_digit_grouping)]
                date: 2025_06_01,
                tech: "t1".to_owned()
            })
        );
        // Speed: the regulator holds the measured speed at the target; the rotor's
        // true speed is off by the sensor's error until speed_gain_ppm corrects it.
        bench.cmd("RUN");
        bench.wait_fed(500);
        assert!((bench.pen.measured_rpm() - 6000.0).abs() < 1e-6);
        assert!((bench.pen.true_rpm() - 6060.0).abs() < 1e-6);
        bench.cmd("HALT");
        bench.wait_fed(400);
        bench.cmd("CAL SET speed_gain_ppm=10000");
        bench.cmd("RUN");
        bench.wait_fed(500);
        assert!((bench.pen.true_rpm() - 6000.0).abs() < 1e-6);
    }

    #[test]
    fn a_stall_faults_after_200_ms_below_half_speed() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("RUN");
        bench.wait_fed(400);
        bench.act(&SimAction::InjectFault(PhysicalFault::Stall));
        let inject_t_ms = bench.pen.t_ms(bench.now_ms);
        let said = bench.wait_fed(500);
        let faults = events(&said);
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].1, PenEvent::Fault(FaultCode::Stall));
        // 6000 rpm falls below 3000 after 31 ms at 100 rpm/ms, then 200 ms.
        assert_eq!(faults[0].0 - inject_t_ms, 31 + 200);
        assert_eq!(bench.pen.state(), PenState::Fault);
        assert_eq!(bench.nak("RESET"), None);
        assert_eq!(bench.pen.state(), PenState::Idle);
    }

    #[test]
    fn physical_faults_fire_only_while_running() {
        for fault in [
            PhysicalFault::Stall,
            PhysicalFault::Overcurrent,
            PhysicalFault::Overtemp,
        ] {
            let mut bench = Bench::greeted(ideal());
            bench.act(&SimAction::InjectFault(fault));
            assert!(events(&bench.wait(2000)).is_empty(), "{fault}");
            bench.act(&SimAction::ClearFaults);
            bench.cmd("RUN");
            assert!(events(&bench.wait_fed(1000)).is_empty(), "{fault} cleared");
        }
    }

    #[test]
    fn overcurrent_and_overtemp_fault_while_running() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("RUN");
        bench.wait_fed(100);
        bench.act(&SimAction::InjectFault(PhysicalFault::Overcurrent));
        let t_ms = bench.pen.t_ms(bench.now_ms);
        assert_eq!(
            events(&bench.wait(5)),
            vec![(t_ms + 1, PenEvent::Fault(FaultCode::Overcurrent))]
        );

        let mut bench = Bench::greeted(ideal());
        bench.cmd("TEL 100");
        bench.cmd("RUN");
        bench.wait_fed(100);
        bench.act(&SimAction::InjectFault(PhysicalFault::Overtemp));
        let said = bench.wait_fed(1000);
        assert_eq!(
            events(&said).iter().map(|e| e.1).collect::<Vec<_>>(),
            vec![PenEvent::Fault(FaultCode::Overtemp)]
        );
        let hottest = samples(&said).iter().map(|t| t.temp_dc).max();
        assert!(hottest.is_some_and(|t| t > 400 && t <= 451), "{hottest:?}");
    }

    #[test]
    fn a_jammed_depth_mechanism_faults_1_s_into_the_move_even_in_idle() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("DEPTH 500");
        bench.wait(20);
        bench.act(&SimAction::InjectFault(PhysicalFault::DepthJam));
        let said = bench.wait(2000);
        assert_eq!(
            events(&said),
            vec![(1000, PenEvent::Fault(FaultCode::Depth))]
        );
        assert_eq!(bench.pen.reported_depth_um(), 100, "stuck where it jammed");
        bench.act(&SimAction::ClearFaults);
        bench.cmd("RESET");
        assert!(
            events(&bench.wait(2000)).is_empty(),
            "the move was abandoned"
        );
    }

    #[test]
    fn the_start_button_and_the_cartridge_report_and_halt() {
        let mut bench = Bench::greeted(ideal());
        let said = bench.act(&SimAction::PressStartButton);
        assert_eq!(events(&said)[0].1, PenEvent::Button);
        bench.cmd("RUN");
        bench.wait_fed(300);
        let said = bench.act(&SimAction::PressStartButton);
        assert_eq!(events(&said)[0].1, PenEvent::HaltButton);
        bench.wait_fed(300);
        assert_eq!(bench.pen.state(), PenState::Idle);

        bench.cmd("RUN");
        bench.wait_fed(300);
        let said = bench.act(&SimAction::RemoveCartridge);
        assert_eq!(events(&said)[0].1, PenEvent::CartridgeRemoved);
        assert_eq!(bench.pen.state(), PenState::Running, "a ramped halt");
        bench.wait_fed(300);
        assert_eq!(bench.pen.state(), PenState::Idle);
        assert_eq!(bench.nak("RUN"), Some(NakReason::Cartridge));
        let cartridge: Cartridge = "00000000000000AA/3".parse().expect("valid");
        let said = bench.act(&SimAction::InsertCartridge(cartridge));
        assert_eq!(
            events(&said)[0].1,
            PenEvent::Cartridge {
                id: CartridgeId(0xAA),
                needles: 3
            }
        );
        assert_eq!(bench.nak("RUN"), None);
    }

    #[test]
    // Exact 0.0 is intended: a stop sets the speed to 0.0 at once, with no ramp.
    #[allow(clippy::float_cmp)]
    fn a_reboot_loses_the_session_but_keeps_the_calibration() {
        let mut bench = Bench::greeted(ideal());
        bench.cmd("CAL SET depth_offset_um=-5");
        bench.cmd("TEL 100");
        bench.cmd("RUN");
        bench.wait_fed(500);
        let said = bench.act(&SimAction::Reboot(BootReason::Brownout));
        assert_eq!(
            events(&said),
            vec![(
                0,
                PenEvent::Boot {
                    boot: 2,
                    reason: BootReason::Brownout
                }
            )]
        );
        assert_eq!(bench.pen.state(), PenState::Idle);
        assert_eq!(bench.pen.true_rpm(), 0.0);
        assert!(samples(&bench.wait(100)).is_empty());
        assert_eq!(bench.nak("INFO"), Some(NakReason::Hello));
        assert_eq!(
            bench.pen.t_ms(bench.now_ms),
            100,
            "pen time restarts at boot"
        );
        assert_eq!(bench.pen.calibration().depth_offset_um, -5);
        let said = bench.cmd("HELLO 1");
        let PenMessage::Info(info) = &said[1] else {
            panic!("INFO after HELLO");
        };
        assert_eq!(info.boot, 2);
    }

    #[test]
    // YYYY_MM_DD: grouped by date field, which reads better than by thousands.
    #[allow(clippy::inconsistent_digit_grouping)]
    fn cartridge_and_date_parsing() {
        assert!("0123456789ABCDEF:12".parse::<Cartridge>().is_ok());
        assert!("0123456789abcdef:12".parse::<Cartridge>().is_err());
        assert!("0123456789ABCDEF:0".parse::<Cartridge>().is_err());
        assert!(valid_date(2000_02_29));
        assert!(!valid_date(1900_02_29));
        assert!(!valid_date(2024_04_31));
        assert!(!valid_date(999_12_31));
    }
}
