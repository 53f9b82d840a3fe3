//! The interlock: may this command reach the pen now?
//!
//! [`check`] is a pure function of a requested command and the station's state
//! ([`InterlockState`]); it returns allowed, or a [`Refusal`] that says which rule and
//! why. The link thread calls it for every command, at the moment the command would
//! go on the wire, so no screen, script or bug above the link can get past it.
//!
//! Nothing is clamped: a depth above the zone's limit is refused, never lowered. The
//! one change the interlock makes on its own is the one the clinic asked for: when
//! the operator selects a zone whose limit is below the current depth, the depth is
//! lowered to that limit first, explicitly, and reported ([`ZonePlan`]).
//!
//! After a link loss, a pen fault, a pen reboot, an E-stop, a needle monitor trip or a
//! change of pen, a stop is latched: `RUN` is refused until the operator's own `RESET`
//! is acknowledged by the pen.
//!
//! The interlock decides on the pen's measured state (its telemetry, see
//! [`super::needle`]) and on the depth target the pen acknowledged, never on what the
//! station assumes it sent: `RUN` goes out only while fresh telemetry shows the needle
//! still, at its target and within the zone's limit. The needle monitor judges every
//! sample while the needle runs ([`InterlockState::on_telemetry`]); a trip is the
//! link's cue to send the E-stop byte.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use jiff::civil::Date;

use super::aftercare::{SAME_ZONE_MIN_DAYS, same_zone_allowed};
use super::needle::{
    ARRIVED_WITHIN_UM, MIN_TREATMENT_TELEMETRY_HZ, MonitorInput, MonitorRule, NeedleMonitor,
    NeedleWatch, Pass, REPORT_STEP_UM, TRAVEL_UM_PER_MS, Trip, fresh_within, unseen_after,
};
use super::procedure::{Numbing, Preparation};
use super::zones::{ZoneId, ZoneTable};
use crate::protocol::{
    Calibration, CartridgeId, Command, FaultCode, PenEvent, PenInfo, PenState, Telemetry,
};

/// Depths above this need the operator's explicit caution acknowledgement: they were
/// not evaluated for safety and effectiveness in the `SkinPen` De Novo (DEN160029).
pub const DEEP_CAUTION_UM: i32 = 1500;

/// Telemetry older than this is not late but gone: the link's silence limit
/// (section 7's 500 ms). A start is refused outright, not held.
pub const TELEMETRY_LOST_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// A calibration older than this many days is overdue.
pub const CALIBRATION_VALID_DAYS: i32 = 365;

/// The rule a refusal comes from: a stable id for records and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// No zone is selected.
    NoZone,
    /// The depth is above the active zone's protocol limit (or its ceiling).
    DepthAboveLimit,
    /// The depth is negative, off the pen's step, or beyond the pen's range.
    DepthInvalid,
    /// A depth above 1.5 mm without the operator's caution acknowledgement.
    DeepCaution,
    /// The pen's depth target is above the active zone's limit.
    DepthTargetAboveLimit,
    /// A speed outside the pen's INFO range.
    SpeedOutOfRange,
    /// The pen's INFO is not known yet.
    NoPenInfo,
    /// Screening has not passed (or no session is open).
    Screening,
    /// The zone was treated for this client less than 4 weeks ago.
    ZoneTreatedRecently,
    /// No cartridge is in the pen.
    NoCartridge,
    /// The cartridge has not been checked against the registry yet.
    CartridgeUnchecked,
    /// The cartridge was used in an earlier session.
    CartridgeUsed,
    /// The pen's calibration is unknown, or the station's date is.
    CalibrationUnknown,
    /// The pen was never calibrated, or its calibration is more than 365 days old.
    CalibrationOverdue,
    /// The link is not healthy.
    LinkUnhealthy,
    /// A stop is latched (link loss, fault, reboot, E-stop): operator reset needed.
    Latched,
    /// Not while the needle runs.
    NotWhileRunning,
    /// The session's record cannot be written: treatment never goes on unrecorded.
    RecordingFailed,
    /// Calibration is written only in technician mode.
    TechnicianOnly,
    /// Not in technician mode (bench work and treatment never mix).
    TechnicianMode,
    /// Not while a treatment session is open.
    SessionOpen,
    /// On the bench the needle turns only retracted (depth target 0).
    BenchNeedleExtended,
    /// The depth target the pen holds is not known (after a connection, a new pen, a
    /// reboot), so a start cannot rely on it.
    DepthTargetUnknown,
    /// Telemetry is off: the station cannot see the needle.
    TelemetryOff,
    /// No sample recent enough to decide on.
    TelemetryStale,
    /// No telemetry for longer than the link's silence limit (500 ms): the pen has
    /// stopped sending it.
    TelemetryLost,
    /// Telemetry asked at a rate too slow for treatment (below 500 Hz).
    TelemetryTooSlow,
    /// The depth mechanism is still moving.
    NeedleMoving,
    /// The measured depth is above the zone's limit.
    NeedleAboveLimit,
    /// The needle has stopped, but not at its target.
    NeedleOffTarget,
    /// The session's cleansing is not recorded.
    CleansingNotRecorded,
    /// The numbing is not recorded, its contact time is not reached, or the cream is
    /// still on; "no numbing" with a reason waives it.
    NumbingIncomplete,
    /// A test spot was made and its reaction is not read yet.
    TestSpotPending,
    /// Nobody is signed in, or the station is locked.
    NotSignedIn,
    /// The signed-in account lacks the role (practitioner to treat, technician to
    /// calibrate).
    RoleMissing,
    /// The clinic store cannot be reached to check a new cartridge, and the operator
    /// has not confirmed that it came from a sealed pack.
    SealedPackUnconfirmed,
    /// The clinic's strict mode: nothing starts while the clinic store cannot be
    /// reached.
    ClinicStoreRequired,
}

impl Rule {
    /// The stable id.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoZone => "no_zone",
            Self::DepthAboveLimit => "depth_above_limit",
            Self::DepthInvalid => "depth_invalid",
            Self::DeepCaution => "deep_caution",
            Self::DepthTargetAboveLimit => "depth_target_above_limit",
            Self::SpeedOutOfRange => "speed_out_of_range",
            Self::NoPenInfo => "no_pen_info",
            Self::Screening => "screening",
            Self::ZoneTreatedRecently => "zone_treated_recently",
            Self::NoCartridge => "no_cartridge",
            Self::CartridgeUnchecked => "cartridge_unchecked",
            Self::CartridgeUsed => "cartridge_used",
            Self::CalibrationUnknown => "calibration_unknown",
            Self::CalibrationOverdue => "calibration_overdue",
            Self::LinkUnhealthy => "link_unhealthy",
            Self::Latched => "latched",
            Self::NotWhileRunning => "not_while_running",
            Self::RecordingFailed => "recording_failed",
            Self::TechnicianOnly => "technician_only",
            Self::TechnicianMode => "technician_mode",
            Self::SessionOpen => "session_open",
            Self::BenchNeedleExtended => "bench_needle_extended",
            Self::DepthTargetUnknown => "depth_target_unknown",
            Self::TelemetryOff => "telemetry_off",
            Self::TelemetryStale => "telemetry_stale",
            Self::TelemetryLost => "telemetry_lost",
            Self::TelemetryTooSlow => "telemetry_too_slow",
            Self::NeedleMoving => "needle_moving",
            Self::NeedleAboveLimit => "needle_above_limit",
            Self::NeedleOffTarget => "needle_off_target",
            Self::CleansingNotRecorded => "cleansing_not_recorded",
            Self::NumbingIncomplete => "numbing_incomplete",
            Self::TestSpotPending => "test_spot_pending",
            Self::NotSignedIn => "not_signed_in",
            Self::RoleMissing => "role_missing",
            Self::SealedPackUnconfirmed => "sealed_pack_unconfirmed",
            Self::ClinicStoreRequired => "clinic_store_required",
        }
    }

    /// A refusal by this rule may resolve by itself within moments, without the
    /// operator: the needle is on its way, or the next sample is due. The link may
    /// hold a `RUN` refused for it (bounded) instead of refusing at once.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, Self::NeedleMoving | Self::TelemetryStale)
    }
}

/// A refused command: the rule, and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// Which rule.
    pub rule: Rule,
    /// What was refused and why, in words.
    pub message: String,
}

impl Refusal {
    fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.rule.as_str())
    }
}

/// Why a stop is latched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Latch {
    /// The link was lost.
    LinkLost,
    /// The pen faulted.
    PenFault(FaultCode),
    /// An emergency stop.
    Estop,
    /// The pen rebooted.
    PenRebooted,
    /// The needle monitor stopped the needle.
    Monitor(MonitorRule),
    /// A different pen (another serial) answered after a reconnection.
    PenChanged,
}

impl fmt::Display for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkLost => f.write_str("link loss"),
            Self::PenFault(code) => write!(f, "pen fault {code}"),
            Self::Estop => f.write_str("E-stop"),
            Self::PenRebooted => f.write_str("pen reboot"),
            Self::Monitor(rule) => write!(f, "needle monitor stop ({rule})"),
            Self::PenChanged => f.write_str("change of pen"),
        }
    }
}

/// What is known of the cartridge in the pen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartridgeState {
    /// Its id.
    pub id: CartridgeId,
    /// Its needle count.
    pub needles: u32,
    /// What the registry says of it.
    pub check: CartridgeCheck,
}

/// The registry's verdict on a cartridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartridgeCheck {
    /// Not looked up yet.
    Unchecked,
    /// Never used in an earlier session.
    Fresh,
    /// Used in an earlier session.
    UsedBefore {
        /// That session.
        session_id: String,
    },
    /// The clinic store could not be asked (unreachable): the data folder knows no
    /// use of it, but another room may have used it. It runs only once the operator
    /// confirms it came from a sealed pack.
    Offline {
        /// The operator confirmed a sealed pack (recorded by the station).
        sealed_pack_confirmed: bool,
    },
}

/// The clinic store as the interlock needs it (absent: the station works alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClinicFacts {
    /// The clinic's strict mode: nothing starts without the store.
    pub strict: bool,
    /// The store answered the station's latest request (or its thread's latest
    /// attempt).
    pub reachable: bool,
}

/// The open session's facts, as the station established them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The session's id.
    pub session_id: String,
    /// The client's pseudonym.
    pub client: String,
    /// Screening passed, cautions confirmed.
    pub screening_passed: bool,
    /// Why screening did not pass, when it did not.
    pub screening_reasons: Vec<String>,
    /// The last date each zone was treated for this client.
    pub last_treated: BTreeMap<ZoneId, Date>,
    /// The procedure's steps before needling (cleansing, numbing), as recorded.
    pub preparation: Preparation,
}

/// What the station tells the interlock (besides what it learns from the pen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetyUpdate {
    /// The operator selected a zone.
    SelectZone(ZoneId),
    /// A session opened (screening evaluated), or closed (`None`).
    Session(Option<SessionFacts>),
    /// The registry's verdict on a cartridge.
    CartridgeChecked {
        /// Which cartridge.
        id: CartridgeId,
        /// The verdict.
        check: CartridgeCheck,
    },
    /// The operator acknowledged the deep-depth caution for the active zone.
    AcknowledgeDeepCaution,
    /// The open session's record could not be written (why): no start until a
    /// session with a working record is opened.
    RecordingFailed(String),
    /// Technician mode on (the PIN was verified by the station) or off. On: refused
    /// while a session is open or the needle runs; the zone is cleared. Off: refused
    /// while the needle runs.
    Technician(bool),
    /// The latest day each zone was treated for the open session's client by another
    /// session, as the data folder says now (other stations write to it too): it
    /// replaces what was read when the session opened.
    ZoneHistory(BTreeMap<ZoneId, Date>),
    /// The open session's preparation after a step was recorded (see
    /// [`super::procedure::Checklist::preparation`]).
    Preparation(Preparation),
    /// Who is signed in and unlocked, with the roles the accounts file gives now;
    /// `None` when nobody is, or the station is locked. Refused while the needle
    /// runs when it would take away the role the running needle needs (a lock never
    /// falls while the needle runs).
    Operator(Option<OperatorFacts>),
    /// The clinic's admin changed the zone table (a protocol limit): refused while a
    /// session is open or the needle runs, so a pass never sees its limit move.
    ZoneTable(Box<ZoneTable>),
    /// The clinic store's state (`None`: the station works alone on its folder).
    ClinicStore(Option<ClinicFacts>),
}

/// The signed-in account as the interlock needs it (the station reads the roles
/// from the accounts file when it signs in or unlocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorFacts {
    /// The account's id.
    pub account: String,
    /// It holds the practitioner role: it may treat.
    pub practitioner: bool,
    /// It holds the technician role: it may calibrate.
    pub technician: bool,
}

/// What selecting a zone takes, in order, before anything else goes to the pen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZonePlan {
    /// The zone now active.
    pub zone: ZoneId,
    /// Its protocol limit.
    pub limit_um: i32,
    /// The needle was running: `HALT` first.
    pub halt_first: bool,
    /// The depth target was above the new limit: lowered from, to.
    pub lower_depth: Option<(i32, i32)>,
}

impl fmt::Display for ZonePlan {
    /// For the operator: `zone cheeks active, limit 1.00 mm; needle halted first; ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zone {} active, limit {}",
            self.zone,
            mm(i64::from(self.limit_um))
        )?;
        if self.halt_first {
            f.write_str("; needle halted first")?;
        }
        if let Some((from, to)) = self.lower_depth {
            write!(
                f,
                "; depth lowered from {} to {} before any start",
                mm(i64::from(from)),
                mm(i64::from(to))
            )?;
        }
        Ok(())
    }
}

impl ZonePlan {
    /// The commands that carry the plan out, in order.
    #[must_use]
    pub fn commands(&self) -> Vec<Command> {
        let mut commands = Vec::new();
        if self.halt_first {
            commands.push(Command::Halt);
        }
        if let Some((_, to_um)) = self.lower_depth {
            commands.push(Command::Depth {
                depth_um: i64::from(to_um),
            });
        }
        commands
    }
}

/// Everything the interlock decides on.
// Independent facts, each set by its own event: a state machine would not be clearer.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct InterlockState {
    /// The zone table in force.
    pub zones: ZoneTable,
    /// The active zone: the one the operator selected last. A needle already running
    /// is held to the lower of its limit and its pass's zone's until it stops
    /// ([`Self::pass`], [`Self::running_limit`]).
    pub zone: Option<ZoneId>,
    /// The deep caution was acknowledged for this zone (until the next selection).
    pub deep_caution_acknowledged: bool,
    /// The pen's state from its last telemetry.
    pub pen_state: Option<PenState>,
    /// The pen acknowledged `RUN` and has not stopped since.
    pub run_acknowledged: bool,
    /// The pen's INFO.
    pub info: Option<PenInfo>,
    /// The pen's calibration.
    pub calibration: Option<Calibration>,
    /// The station's date (local), for calibration age and intervals.
    pub today: Option<Date>,
    /// The open session.
    pub session: Option<SessionFacts>,
    /// The cartridge in the pen.
    pub cartridge: Option<CartridgeState>,
    /// The link is up and its handshake done.
    pub link_healthy: bool,
    /// Latched stops, oldest first; cleared only by the operator's acknowledged RESET.
    pub latched: Vec<Latch>,
    /// The depth target the pen holds, as far as the station knows, µm: set by an
    /// acknowledged `DEPTH`, unknown (`None`) after every `HELLO`, reboot or new pen.
    pub depth_target_um: Option<i32>,
    /// Why the open session's record cannot be written, if it cannot.
    pub recording_failed: Option<String>,
    /// Technician (bench) mode: calibration may be written, depths span the pen's
    /// whole range with no zone, and the needle turns only retracted.
    pub technician: bool,
    /// The needle as the pen's telemetry shows it.
    pub needle: NeedleWatch,
    /// The needle monitor's memory (speed allowance, depth moves).
    pub monitor: NeedleMonitor,
    /// The telemetry rate asked of the pen, Hz (0: off): how fresh a sample must be.
    pub telemetry_hz: u32,
    /// The pass under way: from the pen's `ACK` of `RUN` until a sample shows the
    /// needle stopped.
    pub pass: Option<Pass>,
    /// A `RUN` is on the wire, not answered yet.
    pub run_in_flight: bool,
    /// The serial of the pen last connected: another serial is a new pen.
    pub pen_serial: Option<String>,
    /// Who is signed in, unlocked (`None`: nobody, or locked).
    pub operator: Option<OperatorFacts>,
    /// The clinic store, when the station is part of one.
    pub clinic: Option<ClinicFacts>,
}

/// A different pen answered after a reconnection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PenChange {
    /// The serial of the pen before.
    pub from_serial: String,
    /// The serial of the pen now.
    pub to_serial: String,
}

impl InterlockState {
    /// A station with `zones`, nothing known yet.
    #[must_use]
    pub fn new(zones: ZoneTable) -> Self {
        Self {
            zones,
            zone: None,
            deep_caution_acknowledged: false,
            pen_state: None,
            run_acknowledged: false,
            info: None,
            calibration: None,
            today: None,
            session: None,
            cartridge: None,
            link_healthy: false,
            latched: Vec::new(),
            depth_target_um: None,
            recording_failed: None,
            technician: false,
            needle: NeedleWatch::default(),
            monitor: NeedleMonitor::default(),
            telemetry_hz: 0,
            pass: None,
            run_in_flight: false,
            pen_serial: None,
            operator: None,
            clinic: None,
        }
    }

    /// The needle runs, or may: the pen said RUNNING, or acknowledged RUN.
    #[must_use]
    pub fn running(&self) -> bool {
        self.run_acknowledged || self.pen_state == Some(PenState::Running)
    }

    /// The needle runs, or may soon: [`Self::running`], or a `RUN` is on the wire.
    #[must_use]
    pub fn running_or_starting(&self) -> bool {
        self.running() || self.run_in_flight
    }

    /// The active zone's limit, µm.
    #[must_use]
    pub fn active_limit_um(&self) -> Option<i32> {
        self.zone.map(|z| self.zones.limit_um(z))
    }

    /// The depth limit the running needle is held to, µm: the lower of the active
    /// zone's and its pass's zone's (a zone selected while it runs down after a zone
    /// change's `HALT` holds too), or 0 on the bench (retracted). `None`: no zone.
    #[must_use]
    pub fn running_limit_um(&self) -> Option<i32> {
        self.running_limit().map(|(_, limit_um)| limit_um)
    }

    /// [`Self::running_limit_um`] with the zone it comes from (`None` on the bench).
    #[must_use]
    pub fn running_limit(&self) -> Option<(Option<ZoneId>, i32)> {
        if self.technician {
            return Some((None, 0));
        }
        let with_limit = |z: ZoneId| (Some(z), self.zones.limit_um(z));
        let active = self.zone.map(with_limit);
        let pass = self.pass.and_then(|p| p.zone).map(with_limit);
        match (active, pass) {
            (Some(a), Some(p)) => Some(if p.1 < a.1 { p } else { a }),
            (a, p) => a.or(p),
        }
    }

    fn latch(&mut self, latch: Latch) {
        self.run_acknowledged = false;
        if !self.latched.contains(&latch) {
            self.latched.push(latch);
        }
    }

    /// Everything learnt from the pen is forgotten: its clock, its depth target, its
    /// speed target, the needle's motion. After `HELLO`, a reboot, a link loss.
    fn forget_pen_state(&mut self) {
        self.run_acknowledged = false;
        self.run_in_flight = false;
        self.pass = None;
        self.pen_state = None;
        self.depth_target_um = None;
        self.needle.forget();
        self.monitor.forget();
    }

    /// The link finished its handshake with a pen whose INFO and calibration are
    /// these. Returns the change when another pen than before answered: a stop is
    /// latched for it, and the operator must reset before anything runs.
    pub fn on_connected(&mut self, info: PenInfo, calibration: Calibration) -> Option<PenChange> {
        self.link_healthy = true;
        let change = self
            .pen_serial
            .as_ref()
            .filter(|serial| **serial != info.serial)
            .map(|serial| PenChange {
                from_serial: serial.clone(),
                to_serial: info.serial.clone(),
            });
        if change.is_some() {
            self.latch(Latch::PenChanged);
        }
        self.pen_serial = Some(info.serial.clone());
        self.info = Some(info);
        self.calibration = Some(calibration);
        change
    }

    /// The link was lost, or is not up.
    pub fn on_link_lost(&mut self) {
        let was_healthy = self.link_healthy;
        self.link_healthy = false;
        self.forget_pen_state();
        if was_healthy {
            self.latch(Latch::LinkLost);
        }
    }

    /// The operator asked for an E-stop.
    pub fn on_estop_requested(&mut self) {
        self.latch(Latch::Estop);
    }

    /// A telemetry sample, received at `received`. The needle monitor judges it; a
    /// [`Trip`] latches a stop and is the link's cue to send the E-stop byte at once
    /// (reported once: later samples before the pen stops add nothing).
    pub fn on_telemetry(&mut self, t: &Telemetry, received: Instant) -> Option<Trip> {
        self.pen_state = Some(t.state);
        self.needle.on_sample(t, received);
        match t.state {
            PenState::Estop => self.latch(Latch::Estop),
            PenState::Fault if !self.latched.iter().any(|l| matches!(l, Latch::PenFault(_))) => {
                // The EV line names the code; telemetry alone still latches.
                self.latch(Latch::PenFault(FaultCode::Watchdog));
            }
            PenState::Idle => self.run_acknowledged = false,
            PenState::Running | PenState::Fault => {}
        }
        if t.state != PenState::Running {
            // The pass ends when the needle is seen stopped.
            self.pass = None;
        }
        let measured = *self.needle.latest()?;
        let limit = self.running_limit();
        let input = MonitorInput {
            pass: self.pass,
            zone: limit.and_then(|(zone, _)| zone),
            run_in_flight: self.run_in_flight,
            limit_um: limit.map(|(_, limit_um)| limit_um),
            target_um: self.depth_target_um,
            speed_max_rpm: self
                .info
                .as_ref()
                .map_or(i64::from(i32::MAX), |i| i64::from(i.speed_max_rpm)),
        };
        let trip = self
            .monitor
            .judge(&measured, &input)
            .or_else(|| self.slow_reporting_trip(&measured))?;
        if self.latched.iter().any(|l| matches!(l, Latch::Monitor(_))) {
            return None;
        }
        self.latch(Latch::Monitor(trip.rule));
        Some(trip)
    }

    /// While the needle runs, the pen reporting more slowly than asked is a needle the
    /// station sees too seldom: a [`MonitorRule::TelemetryLost`] trip.
    fn slow_reporting_trip(&self, measured: &super::needle::Measured) -> Option<Trip> {
        if measured.state != PenState::Running {
            return None;
        }
        let spacing_ms = self.needle.reporting_too_slow(self.telemetry_hz)?;
        Some(self.telemetry_lost_trip(
            measured,
            format!(
                "the pen reports every {spacing_ms} ms, not at the {} Hz asked, while the \
                 needle runs: the station sees it too seldom",
                self.telemetry_hz
            ),
        ))
    }

    /// A [`MonitorRule::TelemetryLost`] trip at the `measured` sample, saying `message`.
    fn telemetry_lost_trip(&self, measured: &super::needle::Measured, message: String) -> Trip {
        Trip {
            rule: MonitorRule::TelemetryLost,
            zone: self.pass.and_then(|p| p.zone).or(self.zone),
            limit_um: self.running_limit_um(),
            target_um: self.depth_target_um,
            depth_um: measured.depth_um,
            rpm: measured.rpm,
            allowed_rpm: None,
            t_ms: measured.t_ms,
            message,
        }
    }

    /// No telemetry has arrived for a while, at `now`: while the needle runs (or may:
    /// a `RUN` acknowledged or on the wire), the monitor cannot see it once the latest
    /// sample is older than [`unseen_after`] (100 ms at 1000 Hz), and that is a trip of
    /// its own ([`MonitorRule::TelemetryLost`]). Reported once, like every trip.
    pub fn on_telemetry_silence(&mut self, now: Instant) -> Option<Trip> {
        let max_age = unseen_after(self.telemetry_hz)?;
        let may_run = self.running_or_starting() || self.pass.is_some();
        if !may_run || !self.link_healthy {
            return None;
        }
        let age = self.needle.age(now)?;
        if age <= max_age || self.latched.iter().any(|l| matches!(l, Latch::Monitor(_))) {
            return None;
        }
        let measured = self.needle.latest().copied()?;
        let trip = self.telemetry_lost_trip(
            &measured,
            format!(
                "no telemetry for {} ms while the needle runs (last seen {} at {} rpm): the \
                 station cannot see it",
                age.as_millis(),
                mm(i64::from(measured.depth_um)),
                measured.rpm
            ),
        );
        self.latch(Latch::Monitor(trip.rule));
        Some(trip)
    }

    /// A pen event.
    pub fn on_pen_event(&mut self, event: &PenEvent) {
        match *event {
            PenEvent::Estop(_) => self.latch(Latch::Estop),
            PenEvent::Fault(code) => self.latch(Latch::PenFault(code)),
            PenEvent::Boot { .. } => {
                let was_known = self.info.is_some();
                self.info = None;
                self.calibration = None;
                self.cartridge = None;
                self.link_healthy = false;
                self.forget_pen_state();
                if was_known {
                    self.latch(Latch::PenRebooted);
                }
            }
            PenEvent::Cartridge { id, needles } => {
                self.cartridge = Some(CartridgeState {
                    id,
                    needles,
                    check: CartridgeCheck::Unchecked,
                });
            }
            PenEvent::CartridgeRemoved => {
                self.cartridge = None;
                self.run_acknowledged = false;
            }
            PenEvent::HaltButton => self.run_acknowledged = false,
            PenEvent::Button => {}
        }
    }

    /// A command went on the wire (its first send).
    pub fn on_sent(&mut self, command: &Command) {
        if *command == Command::Run {
            self.run_in_flight = true;
        }
    }

    /// The pen answered a command with ACK (`acked`) or NAK, or the link gave up on it
    /// (`acked` false).
    pub fn on_answer(&mut self, command: &Command, acked: bool) {
        if *command == Command::Run {
            self.run_in_flight = false;
        }
        if !acked {
            return;
        }
        match command {
            Command::Depth { depth_um } => {
                self.depth_target_um = i32::try_from(*depth_um).ok();
                self.monitor.on_depth_target(self.needle.latest());
            }
            Command::Speed { rpm } => {
                let unknown_rpm = self
                    .info
                    .as_ref()
                    .map_or(*rpm, |i| i64::from(i.speed_max_rpm));
                self.monitor
                    .on_speed_target(*rpm, self.needle.latest(), unknown_rpm);
            }
            Command::Run => {
                self.run_acknowledged = true;
                let zone = if self.technician { None } else { self.zone };
                self.pass = Some(Pass { zone });
            }
            Command::Halt => self.run_acknowledged = false,
            // HELLO stops the motor, restarts the pen's counter and leaves its depth
            // target wherever an earlier host put it: nothing the station knew of the
            // pen holds any more. The cartridge is announced again after it.
            Command::Hello { .. } => {
                self.forget_pen_state();
                self.cartridge = None;
            }
            // The operator's RESET, acknowledged by a healthy pen: the latches go, and
            // the pen has left FAULT or ESTOP for IDLE (section 4), whatever the last
            // telemetry sample said.
            Command::Reset if self.link_healthy => {
                self.latched.clear();
                self.pen_state = Some(PenState::Idle);
            }
            _ => {}
        }
    }

    /// Applies a station update. Selecting a zone returns the plan the link carries out
    /// before anything else. Updates that would mix bench work and treatment are
    /// refused, with the reason.
    pub fn apply(&mut self, update: SafetyUpdate) -> Result<Option<ZonePlan>, Refusal> {
        match update {
            SafetyUpdate::SelectZone(_) | SafetyUpdate::Session(Some(_)) if self.technician => {
                Err(Refusal::new(
                    Rule::TechnicianMode,
                    "refused: the station is in technician mode; leave it before treating",
                ))
            }
            SafetyUpdate::SelectZone(zone) => self.select_zone(zone).map(Some),
            SafetyUpdate::Session(session) => {
                // A session opens with a fresh record (or none is open).
                self.recording_failed = None;
                self.session = session;
                Ok(None)
            }
            SafetyUpdate::RecordingFailed(why) => {
                self.recording_failed = Some(why);
                Ok(None)
            }
            SafetyUpdate::CartridgeChecked { id, check } => {
                if let Some(c) = &mut self.cartridge
                    && c.id == id
                {
                    c.check = check;
                }
                Ok(None)
            }
            SafetyUpdate::AcknowledgeDeepCaution => {
                self.deep_caution_acknowledged = self.zone.is_some();
                Ok(None)
            }
            SafetyUpdate::Technician(on) => self.set_technician(on).map(|()| None),
            SafetyUpdate::ZoneHistory(last_treated) => {
                if let Some(session) = &mut self.session {
                    session.last_treated = last_treated;
                }
                Ok(None)
            }
            SafetyUpdate::Preparation(preparation) => {
                if let Some(session) = &mut self.session {
                    session.preparation = preparation;
                }
                Ok(None)
            }
            SafetyUpdate::ZoneTable(zones) => {
                if self.running_or_starting() || self.session.is_some() {
                    return Err(Refusal::new(
                        Rule::SessionOpen,
                        "the zone table changes only between sessions, with the needle still",
                    ));
                }
                self.zones = *zones;
                Ok(None)
            }
            SafetyUpdate::Operator(operator) => {
                if self.running_or_starting() {
                    return Err(Refusal::new(
                        Rule::NotWhileRunning,
                        "the station does not lock, and the operator does not change, while \
                         the needle runs: stop it first",
                    ));
                }
                self.operator = operator;
                Ok(None)
            }
            SafetyUpdate::ClinicStore(clinic) => {
                self.clinic = clinic;
                Ok(None)
            }
        }
    }

    fn set_technician(&mut self, on: bool) -> Result<(), Refusal> {
        if on {
            check_operator(self, Role::Technician, "technician mode refused")?;
        }
        if self.running() {
            return Err(Refusal::new(
                Rule::NotWhileRunning,
                "technician mode cannot change while the needle runs: halt it first",
            ));
        }
        if on && self.session.is_some() {
            return Err(Refusal::new(
                Rule::SessionOpen,
                "technician mode refused: a treatment session is open; end it first",
            ));
        }
        self.technician = on;
        // No zone on the bench, and none carried back into treatment: the operator
        // selects one again, which lowers the depth first.
        self.zone = None;
        self.deep_caution_acknowledged = false;
        Ok(())
    }

    /// Selects `zone`. While the needle runs, only a zone whose limit the needle is
    /// within, as measured: the operator is moving the pen there, and a needle running
    /// deeper than the zone allows must never be there, not even while it runs down
    /// after a `HALT`. Stop it first, then select.
    fn select_zone(&mut self, zone: ZoneId) -> Result<ZonePlan, Refusal> {
        let limit_um = self.zones.limit_um(zone);
        let needle_runs = self.running_or_starting() || self.needle.running();
        if needle_runs {
            let too_deep = match self.needle.latest() {
                Some(m) => (m.depth_um > limit_um + REPORT_STEP_UM)
                    .then(|| format!("the needle is running at {}", mm(i64::from(m.depth_um)))),
                None => Some("the needle is running and its depth is not known".to_owned()),
            };
            if let Some(why) = too_deep {
                return Err(Refusal::new(
                    Rule::NeedleAboveLimit,
                    format!(
                        "zone {zone} refused: {why}, deeper than the {zone} limit {}; stop the \
                         needle, and select the zone once it has stopped",
                        mm(i64::from(limit_um))
                    ),
                ));
            }
        }
        let plan = ZonePlan {
            zone,
            limit_um,
            halt_first: self.running(),
            lower_depth: self
                .depth_target_um
                .filter(|&d| d > limit_um)
                .map(|d| (d, limit_um)),
        };
        self.zone = Some(zone);
        self.deep_caution_acknowledged = false;
        Ok(plan)
    }
}

/// Formats µm as mm the way operators read depths: two decimals, or three when the
/// depth is not a whole number of 10 µm (nothing is rounded away: 0.315 mm is never
/// shown as 0.31 mm).
#[must_use]
pub fn mm(depth_um: i64) -> String {
    let sign = if depth_um < 0 { "-" } else { "" };
    let abs = depth_um.unsigned_abs();
    if abs.is_multiple_of(10) {
        format!("{sign}{}.{:02} mm", abs / 1000, (abs % 1000) / 10)
    } else {
        format!("{sign}{}.{:03} mm", abs / 1000, abs % 1000)
    }
}

/// May `command` go to the pen at `now` (the station's monotonic time, against which
/// the telemetry's age is judged)? Pure: the same state, command and time always give
/// the same answer.
pub fn check(state: &InterlockState, command: &Command, now: Instant) -> Result<(), Refusal> {
    match command {
        Command::Depth { depth_um } if state.technician => check_bench_depth(state, *depth_um),
        Command::Depth { depth_um } => check_depth(state, *depth_um),
        Command::Speed { rpm } => check_speed(state, *rpm),
        Command::Run if state.technician => {
            check_operator(state, Role::Technician, "start refused")?;
            check_bench_run(state, now)
        }
        Command::Run => check_run(state, now),
        Command::CalSet(_) if !state.technician => Err(Refusal::new(
            Rule::TechnicianOnly,
            "calibration can be written only in technician mode",
        )),
        Command::CalSet(_) if check_operator(state, Role::Technician, "").is_err() => {
            check_operator(state, Role::Technician, "calibration write refused")
        }
        Command::CalSet(_) if state.running() => Err(Refusal::new(
            Rule::NotWhileRunning,
            "calibration cannot be written while the needle runs",
        )),
        // Stopping, asking and resetting are always allowed: each can only make
        // things safer, or is the operator's explicit reset.
        Command::Halt
        | Command::Hb
        | Command::Info
        | Command::CalGet
        | Command::CalSet(_)
        | Command::SimGauge
        | Command::Reset
        | Command::Hello { .. }
        | Command::Tel { .. } => Ok(()),
    }
}

fn check_depth(state: &InterlockState, depth_um: i64) -> Result<(), Refusal> {
    let Some(zone) = state.zone else {
        return Err(Refusal::new(
            Rule::NoZone,
            format!("depth {} refused: no zone is selected", mm(depth_um)),
        ));
    };
    let entry = state.zones.zone(zone);
    let limit_um = i64::from(entry.limit_um);
    // The compiled ceiling is checked too: a table can never lift a limit past it.
    let ceiling_um = i64::from(zone.compiled_ceiling_um().min(entry.ceiling_um));
    if depth_um > limit_um || depth_um > ceiling_um {
        return Err(Refusal::new(
            Rule::DepthAboveLimit,
            format!(
                "depth {} refused: above the {} limit {} (ceiling {})",
                mm(depth_um),
                zone.as_str(),
                mm(limit_um),
                mm(ceiling_um)
            ),
        ));
    }
    if depth_um < 0 {
        return Err(Refusal::new(
            Rule::DepthInvalid,
            format!("depth {} refused: a depth cannot be negative", mm(depth_um)),
        ));
    }
    if let Some(info) = &state.info {
        check_pen_depth_range(info, depth_um)?;
    }
    // A needle still running in another zone (a zone change halted it, and it runs
    // down) is held to that zone's limit until it stops.
    if let Some((Some(pass_zone), pass_limit_um)) = state.running_limit()
        && pass_zone != zone
        && depth_um > i64::from(pass_limit_um)
    {
        return Err(Refusal::new(
            Rule::DepthAboveLimit,
            format!(
                "depth {} refused: the needle still runs in {pass_zone} (limit {}) until it stops",
                mm(depth_um),
                mm(i64::from(pass_limit_um))
            ),
        ));
    }
    if depth_um > i64::from(DEEP_CAUTION_UM) && !state.deep_caution_acknowledged {
        return Err(Refusal::new(
            Rule::DeepCaution,
            format!(
                "depth {} refused until the deep caution is acknowledged: depths above 1.50 mm \
                 were not evaluated for safety and effectiveness (SkinPen DEN160029)",
                mm(depth_um)
            ),
        ));
    }
    Ok(())
}

/// The pen's own range from its INFO: 0 to `depth_max_um` in steps of `depth_step_um`.
fn check_pen_depth_range(info: &PenInfo, depth_um: i64) -> Result<(), Refusal> {
    let step_um = i64::from(info.depth_step_um.max(1));
    if depth_um < 0 || depth_um % step_um != 0 || depth_um > i64::from(info.depth_max_um) {
        return Err(Refusal::new(
            Rule::DepthInvalid,
            format!(
                "depth {} refused: the pen takes 0 to {} in steps of {}",
                mm(depth_um),
                mm(i64::from(info.depth_max_um)),
                mm(step_um)
            ),
        ));
    }
    Ok(())
}

/// A depth on the bench: the pen's whole range, no zone; never extended while the
/// needle turns.
fn check_bench_depth(state: &InterlockState, depth_um: i64) -> Result<(), Refusal> {
    let Some(info) = &state.info else {
        return Err(Refusal::new(
            Rule::NoPenInfo,
            format!(
                "depth {} refused: the pen's range is not known yet",
                mm(depth_um)
            ),
        ));
    };
    check_pen_depth_range(info, depth_um)?;
    if depth_um > 0 && state.running() {
        return Err(Refusal::new(
            Rule::BenchNeedleExtended,
            format!(
                "depth {} refused: on the bench the needle turns only retracted; halt first",
                mm(depth_um)
            ),
        ));
    }
    Ok(())
}

/// A start on the bench (technician mode): no client, so no screening, zone or
/// cartridge rules; the needle must be retracted, and nothing latched.
fn check_bench_run(state: &InterlockState, now: Instant) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    check_nothing_latched(state)?;
    match state.depth_target_um {
        Some(0) => check_needle(state, 0, None, now),
        Some(target_um) => refuse(
            Rule::BenchNeedleExtended,
            format!(
                "on the bench the needle turns only retracted; the depth target is {}",
                mm(i64::from(target_um))
            ),
        ),
        None => refuse(
            Rule::BenchNeedleExtended,
            "on the bench the needle turns only retracted; set depth 0 first".into(),
        ),
    }
}

fn check_speed(state: &InterlockState, rpm: i64) -> Result<(), Refusal> {
    let Some(info) = &state.info else {
        return Err(Refusal::new(
            Rule::NoPenInfo,
            format!("speed {rpm} rpm refused: the pen's range is not known yet"),
        ));
    };
    let (min, max) = (i64::from(info.speed_min_rpm), i64::from(info.speed_max_rpm));
    if rpm < min || rpm > max {
        return Err(Refusal::new(
            Rule::SpeedOutOfRange,
            format!("speed {rpm} rpm refused: the pen runs {min} to {max} rpm"),
        ));
    }
    Ok(())
}

/// The start rules shared by treatment and the bench: no latched stop, the pen not in
/// FAULT or ESTOP, the link up.
fn check_nothing_latched(state: &InterlockState) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    if !state.latched.is_empty() {
        let causes: Vec<String> = state
            .latched
            .iter()
            .map(|l| match l {
                Latch::Estop => format!("an {l}"),
                _ => format!("a {l}"),
            })
            .collect();
        return refuse(
            Rule::Latched,
            format!(
                "a stop is latched after {}; the operator must reset first",
                causes.join(" and ")
            ),
        );
    }
    if matches!(state.pen_state, Some(PenState::Fault | PenState::Estop)) {
        return refuse(
            Rule::Latched,
            "the pen is in FAULT or ESTOP; the operator must reset first".into(),
        );
    }
    if !state.link_healthy {
        return refuse(Rule::LinkUnhealthy, "the link to the pen is not up".into());
    }
    Ok(())
}

/// The role an action needs of the signed-in account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Practitioner,
    Technician,
}

/// Refuses unless an account is signed in, the station unlocked, and the account
/// holds `role`. `what` begins the refusal's message.
fn check_operator(state: &InterlockState, role: Role, what: &str) -> Result<(), Refusal> {
    let Some(operator) = &state.operator else {
        return Err(Refusal::new(
            Rule::NotSignedIn,
            format!("{what}: nobody is signed in, or the station is locked; sign in first"),
        ));
    };
    let (holds, name) = match role {
        Role::Practitioner => (operator.practitioner, "practitioner"),
        Role::Technician => (operator.technician, "technician"),
    };
    if holds {
        Ok(())
    } else {
        Err(Refusal::new(
            Rule::RoleMissing,
            format!(
                "{what}: {} is not a {name}; only a {name} account may do this",
                operator.account
            ),
        ))
    }
}

/// Cleansing and numbing before the needle (the clinical reference, "The procedure"):
/// cleansing recorded; the numbing cream on for the clinic's minimum contact time and
/// removed, or "no numbing" recorded with a reason.
fn check_preparation(preparation: &Preparation, now: Instant) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    if !preparation.cleansed {
        return refuse(
            Rule::CleansingNotRecorded,
            "cleansing is not recorded; record it first".into(),
        );
    }
    if preparation.test_spot_unread {
        return refuse(
            Rule::TestSpotPending,
            "a test spot was made and its reaction is not read yet: record the reaction \
             (after the clinic's wait), or void the test spot"
                .into(),
        );
    }
    let minutes = |d: std::time::Duration| d.as_secs() / 60;
    let clock = |d: std::time::Duration| format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60);
    match &preparation.numbing {
        Numbing::NotRecorded => refuse(
            Rule::NumbingIncomplete,
            "numbing is not recorded: apply the numbing cream, or record no numbing with a \
             reason"
                .into(),
        ),
        Numbing::Applied {
            applied_at,
            min_contact,
        } => {
            let on = now.saturating_duration_since(*applied_at);
            if on < *min_contact {
                refuse(
                    Rule::NumbingIncomplete,
                    format!(
                        "the numbing cream has been on for {}; the clinic's minimum contact time \
                         is {} min ({} left)",
                        clock(on),
                        minutes(*min_contact),
                        clock(min_contact.saturating_sub(on))
                    ),
                )
            } else {
                refuse(
                    Rule::NumbingIncomplete,
                    format!(
                        "the numbing cream is still on ({}): record its removal before needling",
                        clock(on)
                    ),
                )
            }
        }
        Numbing::Removed {
            contact,
            min_contact,
        } if contact < min_contact => refuse(
            Rule::NumbingIncomplete,
            format!(
                "the numbing cream was removed after {}, under the clinic's minimum contact \
                 time of {} min: apply it again, or record no numbing with a reason",
                clock(*contact),
                minutes(*min_contact)
            ),
        ),
        Numbing::Removed { .. } | Numbing::Waived { .. } => Ok(()),
    }
}

fn check_run(state: &InterlockState, now: Instant) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    check_nothing_latched(state)?;
    check_operator(state, Role::Practitioner, "start refused")?;
    let Some(session) = &state.session else {
        return refuse(
            Rule::Screening,
            "no session is open (screening first)".into(),
        );
    };
    if let Some(why) = &state.recording_failed {
        return refuse(
            Rule::RecordingFailed,
            format!("the session is not being recorded ({why}); end it and open a new one"),
        );
    }
    if !session.screening_passed {
        let why = if session.screening_reasons.is_empty() {
            "screening has not passed".to_owned()
        } else {
            format!(
                "screening has not passed: {}",
                session.screening_reasons.join("; ")
            )
        };
        return refuse(Rule::Screening, why);
    }
    check_preparation(&session.preparation, now)?;
    let Some(zone) = state.zone else {
        return refuse(Rule::NoZone, "no zone is selected".into());
    };
    let Some(today) = state.today else {
        return refuse(
            Rule::CalibrationUnknown,
            "the station's date is not known".into(),
        );
    };
    if let Some(last) = session.last_treated.get(&zone)
        && !same_zone_allowed(*last, today)
    {
        let days = last.until(today).map_or(0, |span| span.get_days());
        let when = if days < 0 {
            format!(
                "on {last}, a date after today ({today}): a station's clock or the history is \
                 wrong"
            )
        } else {
            format!("on {last}, {days} days ago")
        };
        return refuse(
            Rule::ZoneTreatedRecently,
            format!(
                "{} was treated for {} {when}; the minimum is {} days",
                zone.as_str(),
                session.client,
                SAME_ZONE_MIN_DAYS
            ),
        );
    }
    check_run_equipment(state, zone, today)?;
    let Some(target_um) = state.depth_target_um else {
        return refuse(
            Rule::DepthTargetUnknown,
            "the depth the pen holds is not known (a new connection or pen); set the depth first"
                .into(),
        );
    };
    check_needle(state, target_um, Some(zone), now)
}

/// The start rules on the needle as measured: telemetry on and fresh, the mechanism
/// still, at `target_um` (within one step), and within `zone`'s limit (the bench's is
/// the target itself, 0).
fn check_needle(
    state: &InterlockState,
    target_um: i32,
    zone: Option<ZoneId>,
    now: Instant,
) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    let Some(max_age) = fresh_within(state.telemetry_hz) else {
        return refuse(
            Rule::TelemetryOff,
            "telemetry is off, so the station cannot see the needle".into(),
        );
    };
    if zone.is_some() && state.telemetry_hz < MIN_TREATMENT_TELEMETRY_HZ {
        let between_um = TRAVEL_UM_PER_MS * 1000 / state.telemetry_hz.max(1);
        return refuse(
            Rule::TelemetryTooSlow,
            format!(
                "telemetry at {} Hz shows the needle every {} ms, in which it can travel \
                 {between_um} µm; treatment needs at least {MIN_TREATMENT_TELEMETRY_HZ} Hz",
                state.telemetry_hz,
                1000 / state.telemetry_hz.max(1)
            ),
        );
    }
    if let Some(spacing_ms) = state.needle.reporting_too_slow(state.telemetry_hz) {
        return refuse(
            Rule::TelemetryStale,
            format!(
                "the pen reports every {spacing_ms} ms, not at the {} Hz asked: waiting for it \
                 to report as asked",
                state.telemetry_hz
            ),
        );
    }
    let Some(measured) = state.needle.latest() else {
        return refuse(
            Rule::TelemetryStale,
            "no telemetry from the pen yet: the needle's depth is not known".into(),
        );
    };
    let age = now.saturating_duration_since(measured.received);
    if age > TELEMETRY_LOST_AFTER {
        return refuse(
            Rule::TelemetryLost,
            format!(
                "no telemetry from the pen for {} ms: the station cannot see the needle",
                age.as_millis()
            ),
        );
    }
    if age > max_age {
        return refuse(
            Rule::TelemetryStale,
            format!(
                "the latest telemetry is {} ms old (at most {} ms): the needle's depth is not known",
                age.as_millis(),
                max_age.as_millis()
            ),
        );
    }
    let depth_um = measured.depth_um;
    let limit_um = zone.map_or(0, |z| state.zones.limit_um(z));
    let (depth_text, target_text) = (mm(i64::from(depth_um)), mm(i64::from(target_um)));
    // Still, but its target acknowledged so recently that it may not have begun the
    // move: on its way all the same, until its travel time is up.
    let arriving = (depth_um - target_um).abs() > ARRIVED_WITHIN_UM
        && state.monitor.on_its_way(measured, target_um);
    if !state.needle.settled() || arriving {
        return refuse(
            Rule::NeedleMoving,
            format!("the needle is still moving to {target_text} (now {depth_text})"),
        );
    }
    if depth_um > limit_um + REPORT_STEP_UM {
        let place = zone.map_or_else(
            || "on the bench the needle turns only retracted".to_owned(),
            |z| format!("deeper than the {z} limit {}", mm(i64::from(limit_um))),
        );
        return refuse(
            Rule::NeedleAboveLimit,
            format!("the needle is at {depth_text}, {place}"),
        );
    }
    if (depth_um - target_um).abs() > ARRIVED_WITHIN_UM {
        return refuse(
            Rule::NeedleOffTarget,
            format!("the needle stays at {depth_text}, not at its target {target_text}"),
        );
    }
    Ok(())
}

/// The second half of the start rules: cartridge, calibration, depth target.
fn check_run_equipment(state: &InterlockState, zone: ZoneId, today: Date) -> Result<(), Refusal> {
    let refuse = |rule, why: String| Err(Refusal::new(rule, format!("start refused: {why}")));
    let limit_um = state.zones.limit_um(zone);
    if state.clinic.is_some_and(|c| c.strict && !c.reachable) {
        return refuse(
            Rule::ClinicStoreRequired,
            "the clinic store cannot be reached, and the clinic's strict mode starts \
             nothing without it"
                .into(),
        );
    }
    let Some(cartridge) = &state.cartridge else {
        return refuse(Rule::NoCartridge, "no cartridge is in the pen".into());
    };
    match &cartridge.check {
        CartridgeCheck::Unchecked => {
            return refuse(
                Rule::CartridgeUnchecked,
                format!(
                    "cartridge {} is not checked against the registry yet",
                    cartridge.id
                ),
            );
        }
        CartridgeCheck::UsedBefore { session_id } => {
            return refuse(
                Rule::CartridgeUsed,
                format!(
                    "cartridge {} was used in session {session_id}; insert a new one",
                    cartridge.id
                ),
            );
        }
        CartridgeCheck::Offline {
            sealed_pack_confirmed: false,
        } => {
            return refuse(
                Rule::SealedPackUnconfirmed,
                format!(
                    "the clinic store cannot be reached to check cartridge {}: confirm it \
                     came from a sealed pack",
                    cartridge.id
                ),
            );
        }
        CartridgeCheck::Fresh
        | CartridgeCheck::Offline {
            sealed_pack_confirmed: true,
        } => {}
    }
    check_calibration(state.calibration.as_ref(), today).or_else(|r| refuse(r.rule, r.message))?;
    if let Some(target_um) = state.depth_target_um {
        if target_um > limit_um {
            return refuse(
                Rule::DepthTargetAboveLimit,
                format!(
                    "the depth target {} is above the {} limit {}",
                    mm(i64::from(target_um)),
                    zone.as_str(),
                    mm(i64::from(limit_um))
                ),
            );
        }
        if target_um > DEEP_CAUTION_UM && !state.deep_caution_acknowledged {
            return refuse(
                Rule::DeepCaution,
                format!(
                    "the depth target {} needs the deep caution acknowledged",
                    mm(i64::from(target_um))
                ),
            );
        }
    }
    Ok(())
}

/// Is the calibration valid on `today`? Overdue: never calibrated (date 0), a date that
/// is not a date, or more than 365 days ago.
pub fn check_calibration(calibration: Option<&Calibration>, today: Date) -> Result<(), Refusal> {
    let Some(cal) = calibration else {
        return Err(Refusal::new(
            Rule::CalibrationUnknown,
            "the pen's calibration is not known yet",
        ));
    };
    if cal.date == 0 {
        return Err(Refusal::new(
            Rule::CalibrationOverdue,
            "the pen has never been calibrated",
        ));
    }
    let Some(date) = calibration_date(cal.date) else {
        return Err(Refusal::new(
            Rule::CalibrationOverdue,
            format!("the pen's calibration date {} is not a date", cal.date),
        ));
    };
    let age_days = date.until(today).map_or(i32::MAX, |span| span.get_days());
    if age_days > CALIBRATION_VALID_DAYS {
        return Err(Refusal::new(
            Rule::CalibrationOverdue,
            format!("the pen's calibration of {date} is {age_days} days old (over 365)"),
        ));
    }
    Ok(())
}

/// A civil date as the protocol writes it, `YYYYMMDD`.
#[must_use]
pub fn yyyymmdd(date: Date) -> u32 {
    let value =
        i32::from(date.year()) * 10_000 + i32::from(date.month()) * 100 + i32::from(date.day());
    // Years before 1 do not occur on a station's clock; 0 means "never" on the wire.
    u32::try_from(value).unwrap_or(0)
}

/// The calibration date as a civil date (`YYYYMMDD`), if it is one.
#[must_use]
pub fn calibration_date(yyyymmdd: u32) -> Option<Date> {
    let year = i16::try_from(yyyymmdd / 10_000).ok()?;
    let month = i8::try_from(yyyymmdd / 100 % 100).ok()?;
    let day = i8::try_from(yyyymmdd % 100).ok()?;
    Date::new(year, month, day).ok()
}

/// What the owner is told of the interlock's view, whenever it changes.
// A flat view for the owner: one flag per fact the window shows.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetySummary {
    /// The active zone.
    pub zone: Option<ZoneId>,
    /// Its protocol limit, µm.
    pub limit_um: Option<i32>,
    /// The depth target the pen acknowledged, µm.
    pub depth_target_um: Option<i32>,
    /// Latched stops.
    pub latched: Vec<Latch>,
    /// The cartridge.
    pub cartridge: Option<CartridgeState>,
    /// The link is up.
    pub link_healthy: bool,
    /// The deep caution is acknowledged for the active zone.
    pub deep_caution_acknowledged: bool,
    /// The needle runs (or may).
    pub running: bool,
    /// Technician (bench) mode is on.
    pub technician: bool,
}

impl InterlockState {
    /// The owner's view of this state.
    #[must_use]
    pub fn summary(&self) -> SafetySummary {
        SafetySummary {
            zone: self.zone,
            limit_um: self.active_limit_um(),
            depth_target_um: self.depth_target_um,
            latched: self.latched.clone(),
            cartridge: self.cartridge.clone(),
            link_healthy: self.link_healthy,
            deep_caution_acknowledged: self.deep_caution_acknowledged,
            running: self.running(),
            technician: self.technician,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{CalUpdate, EstopSource};

    fn date(y: i16, m: i8, d: i8) -> Date {
        Date::new(y, m, d).expect("valid test date")
    }

    const TODAY: (i16, i8, i8) = (2026, 11, 24);

    fn today() -> Date {
        date(TODAY.0, TODAY.1, TODAY.2)
    }

    fn yyyymmdd(d: Date) -> u32 {
        u32::try_from(
            i32::from(d.year()) * 10_000 + i32::from(d.month()) * 100 + i32::from(d.day()),
        )
        .expect("positive")
    }

    fn days_ago(days: i64) -> Date {
        today()
            .checked_sub(jiff::Span::new().days(days))
            .expect("in range")
    }

    fn info() -> PenInfo {
        PenInfo {
            model: "MNP-1".into(),
            serial: "S1".into(),
            fw: "1".into(),
            proto: 1,
            boot: 1,
            depth_max_um: 2500,
            depth_step_um: 50,
            speed_min_rpm: 3000,
            speed_max_rpm: 9000,
            watchdog_ms: 300,
            tel_max_hz: 1000,
        }
    }

    /// A state in which RUN is allowed: the baseline every case changes one thing of.
    fn ready() -> InterlockState {
        let mut s = InterlockState::new(ZoneTable::builtin());
        s.on_connected(
            info(),
            Calibration {
                date: yyyymmdd(days_ago(10)),
                tech: "T1".into(),
                ..Calibration::identity()
            },
        );
        s.today = Some(today());
        s.session = Some(SessionFacts {
            session_id: "S-1".into(),
            client: "C-1".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: BTreeMap::new(),
            preparation: crate::safety::procedure::Preparation::waived(
                "not a treatment: a test of the needle rules",
            ),
        });
        s.cartridge = Some(CartridgeState {
            id: CartridgeId(0xAB),
            needles: 12,
            check: CartridgeCheck::Fresh,
        });
        s.zone = Some(ZoneId::Cheeks);
        s.telemetry_hz = 1000;
        s.operator = Some(OperatorFacts {
            account: "P-7".into(),
            practitioner: true,
            technician: true,
        });
        s.on_answer(&depth(500), true);
        measured(&mut s, PenState::Idle, 500);
        s
    }

    /// The tests' "now": samples arrive at it and every check is made at it.
    fn now() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    /// `super::check` at the tests' now.
    fn check(state: &InterlockState, command: &Command) -> Result<(), Refusal> {
        super::check(state, command, now())
    }

    /// A telemetry sample at pen time `t_ms`.
    fn sample(t_ms: u32, state: PenState, depth_um: i32) -> Telemetry {
        Telemetry {
            n: t_ms,
            t_ms,
            state,
            rpm: if state == PenState::Running { 6000 } else { 0 },
            depth_um,
            current_ma: 0,
            temp_dc: 250,
        }
    }

    /// The pen reports the needle holding still at `depth_um`: two samples 30 ms apart,
    /// arriving now.
    fn measured(s: &mut InterlockState, state: PenState, depth_um: i32) {
        let t0 = s.needle.latest().map_or(0, |m| m.t_ms + 10);
        for dt in [0, 30] {
            assert_eq!(
                s.on_telemetry(&sample(t0 + dt, state, depth_um), now()),
                None
            );
        }
    }

    #[allow(clippy::needless_pass_by_value)] // cases read best with the command inline
    fn check_case(
        name: &str,
        change: impl FnOnce(&mut InterlockState),
        command: Command,
        expected: Option<Rule>,
    ) {
        let mut state = ready();
        change(&mut state);
        let got = check(&state, &command).map_err(|r| r.rule).err();
        assert_eq!(got, expected, "{name}: {:?}", check(&state, &command));
    }

    fn depth(depth_um: i64) -> Command {
        Command::Depth { depth_um }
    }

    #[test]
    fn depth_rules() {
        check_case("within the cheeks limit", |_| {}, depth(1000), None);
        check_case(
            "above the cheeks limit",
            |_| {},
            depth(1050),
            Some(Rule::DepthAboveLimit),
        );
        check_case("no zone", |s| s.zone = None, depth(100), Some(Rule::NoZone));
        check_case("negative", |_| {}, depth(-50), Some(Rule::DepthInvalid));
        check_case(
            "off the 50 µm step",
            |_| {},
            depth(525),
            Some(Rule::DepthInvalid),
        );
        check_case(
            "periorbital 0.35 mm",
            |s| s.zone = Some(ZoneId::Periorbital),
            depth(350),
            Some(Rule::DepthAboveLimit),
        );
        check_case(
            "periorbital 0.30 mm",
            |s| s.zone = Some(ZoneId::Periorbital),
            depth(300),
            None,
        );
        let deep_body = |s: &mut InterlockState| {
            s.zones = s
                .zones
                .with_limit(ZoneId::Body, 2000)
                .expect("under the ceiling");
            s.zone = Some(ZoneId::Body);
        };
        check_case(
            "1.8 mm on a 2.0 body limit, unacknowledged",
            deep_body,
            depth(1800),
            Some(Rule::DeepCaution),
        );
        check_case(
            "1.8 mm on a 2.0 body limit, acknowledged",
            |s| {
                deep_body(s);
                s.deep_caution_acknowledged = true;
            },
            depth(1800),
            None,
        );
        check_case(
            "1.5 mm needs no caution",
            |s| s.zone = Some(ZoneId::Body),
            depth(1500),
            None,
        );
        check_case(
            "above the body ceiling",
            |s| s.zone = Some(ZoneId::Body),
            depth(2550),
            Some(Rule::DepthAboveLimit),
        );
    }

    #[test]
    fn speed_rules() {
        check_case("in range", |_| {}, Command::Speed { rpm: 6000 }, None);
        check_case(
            "too slow",
            |_| {},
            Command::Speed { rpm: 2999 },
            Some(Rule::SpeedOutOfRange),
        );
        check_case(
            "too fast",
            |_| {},
            Command::Speed { rpm: 9001 },
            Some(Rule::SpeedOutOfRange),
        );
        check_case(
            "range unknown",
            |s| s.info = None,
            Command::Speed { rpm: 6000 },
            Some(Rule::NoPenInfo),
        );
    }

    /// A preparation, and the rule and words it must give (`None`: allowed).
    type PreparationCase = (&'static str, Preparation, Option<(Rule, &'static str)>);

    /// The procedure's start rule: one preparation per row, the rule and the words.
    #[test]
    #[allow(clippy::too_many_lines)] // one table of every case reads best whole
    fn preparation_rules() {
        use crate::safety::procedure::Numbing;
        use std::time::Duration;
        let min20 = Duration::from_mins(20);
        let at = |ago_s: u64| {
            now()
                .checked_sub(Duration::from_secs(ago_s))
                .expect("a test instant")
        };
        let cases: Vec<PreparationCase> = vec![
            (
                "nothing recorded",
                Preparation::default(),
                Some((Rule::CleansingNotRecorded, "cleansing is not recorded")),
            ),
            (
                "cleansed, numbing not recorded",
                Preparation {
                    cleansed: true,
                    test_spot_unread: false,
                    numbing: Numbing::NotRecorded,
                },
                Some((Rule::NumbingIncomplete, "numbing is not recorded")),
            ),
            (
                "cream on for 12 min",
                Preparation {
                    cleansed: true,
                    test_spot_unread: false,
                    numbing: Numbing::Applied {
                        applied_at: at(12 * 60),
                        min_contact: min20,
                    },
                },
                Some((
                    Rule::NumbingIncomplete,
                    "on for 12:00; the clinic's minimum contact time is 20 min (8:00 left)",
                )),
            ),
            (
                "cream on for 25 min, not removed",
                Preparation {
                    cleansed: true,
                    test_spot_unread: false,
                    numbing: Numbing::Applied {
                        applied_at: at(25 * 60),
                        min_contact: min20,
                    },
                },
                Some((
                    Rule::NumbingIncomplete,
                    "still on (25:00): record its removal",
                )),
            ),
            (
                "removed after 19:59",
                Preparation {
                    cleansed: true,
                    test_spot_unread: false,
                    numbing: Numbing::Removed {
                        contact: Duration::from_secs(20 * 60 - 1),
                        min_contact: min20,
                    },
                },
                Some((Rule::NumbingIncomplete, "removed after 19:59, under")),
            ),
            (
                "removed after exactly 20 min",
                Preparation {
                    cleansed: true,
                    test_spot_unread: false,
                    numbing: Numbing::Removed {
                        contact: min20,
                        min_contact: min20,
                    },
                },
                None,
            ),
            (
                "no numbing, with a reason",
                Preparation::waived("client declined"),
                None,
            ),
            (
                "a test spot whose reaction is not read",
                Preparation {
                    test_spot_unread: true,
                    ..Preparation::waived("client declined")
                },
                Some((Rule::TestSpotPending, "reaction is not read yet")),
            ),
            (
                "no numbing, not cleansed",
                Preparation {
                    cleansed: false,
                    ..Preparation::waived("client declined")
                },
                Some((Rule::CleansingNotRecorded, "cleansing")),
            ),
        ];
        for (name, preparation, expected) in cases {
            let mut s = ready();
            if let Some(session) = &mut s.session {
                session.preparation = preparation.clone();
            }
            let got = check(&s, &Command::Run);
            match (expected, got) {
                (None, Ok(())) => {}
                (Some((rule, words)), Err(refusal)) => {
                    assert_eq!(refusal.rule, rule, "{name}");
                    assert!(
                        refusal.message.contains(words),
                        "{name}: {}",
                        refusal.message
                    );
                    assert!(refusal.message.starts_with("start refused: "), "{name}");
                }
                (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
            // The update the station sends replaces what the session had.
            let mut s = ready();
            s.apply(SafetyUpdate::Preparation(preparation))
                .expect("applied");
            assert_eq!(
                check(&s, &Command::Run).is_ok(),
                expected.is_none(),
                "{name}"
            );
        }
        // Bench runs (technician mode) need no preparation: no session is open.
        let mut s = ready();
        s.session = None;
        s.apply(SafetyUpdate::Technician(true)).expect("bench");
        s.on_answer(&depth(0), true);
        measured(&mut s, PenState::Idle, 0);
        assert_eq!(check(&s, &Command::Run), Ok(()));
    }

    /// One state change per start rule, and what it must give.
    type StartCase = (
        &'static str,
        Box<dyn FnOnce(&mut InterlockState)>,
        Option<Rule>,
    );

    #[test]
    #[allow(clippy::too_many_lines)] // one table of every start rule reads best whole
    fn start_rules() {
        let run = || Command::Run;
        let cases: Vec<StartCase> = vec![
            ("all conditions hold", Box::new(|_| {}), None),
            (
                "E-stop latched",
                Box::new(|s| s.latched.push(Latch::Estop)),
                Some(Rule::Latched),
            ),
            (
                "link loss latched",
                Box::new(|s| s.latched.push(Latch::LinkLost)),
                Some(Rule::Latched),
            ),
            (
                "pen in FAULT",
                Box::new(|s| s.pen_state = Some(PenState::Fault)),
                Some(Rule::Latched),
            ),
            (
                "link down",
                Box::new(|s| s.link_healthy = false),
                Some(Rule::LinkUnhealthy),
            ),
            (
                "no session",
                Box::new(|s| s.session = None),
                Some(Rule::Screening),
            ),
            (
                "screening not passed",
                Box::new(|s| {
                    if let Some(x) = &mut s.session {
                        x.screening_passed = false;
                    }
                }),
                Some(Rule::Screening),
            ),
            ("no zone", Box::new(|s| s.zone = None), Some(Rule::NoZone)),
            (
                "zone treated 27 days ago",
                Box::new(|s| {
                    if let Some(x) = &mut s.session {
                        x.last_treated.insert(ZoneId::Cheeks, days_ago(27));
                    }
                }),
                Some(Rule::ZoneTreatedRecently),
            ),
            (
                "zone treated 28 days ago",
                Box::new(|s| {
                    if let Some(x) = &mut s.session {
                        x.last_treated.insert(ZoneId::Cheeks, days_ago(28));
                    }
                }),
                None,
            ),
            (
                "another zone treated yesterday",
                Box::new(|s| {
                    if let Some(x) = &mut s.session {
                        x.last_treated.insert(ZoneId::Forehead, days_ago(1));
                    }
                }),
                None,
            ),
            (
                "no cartridge",
                Box::new(|s| s.cartridge = None),
                Some(Rule::NoCartridge),
            ),
            (
                "cartridge unchecked",
                Box::new(|s| {
                    if let Some(c) = &mut s.cartridge {
                        c.check = CartridgeCheck::Unchecked;
                    }
                }),
                Some(Rule::CartridgeUnchecked),
            ),
            (
                "cartridge used before",
                Box::new(|s| {
                    if let Some(c) = &mut s.cartridge {
                        c.check = CartridgeCheck::UsedBefore {
                            session_id: "old".into(),
                        };
                    }
                }),
                Some(Rule::CartridgeUsed),
            ),
            (
                "never calibrated",
                Box::new(|s| {
                    if let Some(c) = &mut s.calibration {
                        c.date = 0;
                    }
                }),
                Some(Rule::CalibrationOverdue),
            ),
            (
                "calibrated 366 days ago",
                Box::new(|s| {
                    if let Some(c) = &mut s.calibration {
                        c.date = yyyymmdd(days_ago(366));
                    }
                }),
                Some(Rule::CalibrationOverdue),
            ),
            (
                "calibrated 365 days ago",
                Box::new(|s| {
                    if let Some(c) = &mut s.calibration {
                        c.date = yyyymmdd(days_ago(365));
                    }
                }),
                None,
            ),
            (
                "calibration date not a date",
                Box::new(|s| {
                    if let Some(c) = &mut s.calibration {
                        c.date = 20_260_230; // 2026-02-30
                    }
                }),
                Some(Rule::CalibrationOverdue),
            ),
            (
                "calibration unknown",
                Box::new(|s| s.calibration = None),
                Some(Rule::CalibrationUnknown),
            ),
            (
                "station date unknown",
                Box::new(|s| s.today = None),
                Some(Rule::CalibrationUnknown),
            ),
            (
                "depth target above the limit",
                Box::new(|s| s.depth_target_um = Some(1200)),
                Some(Rule::DepthTargetAboveLimit),
            ),
        ];
        for (name, change, expected) in cases {
            check_case(name, change, run(), expected);
        }
    }

    #[test]
    fn a_start_is_decided_on_the_needle_as_measured() {
        let run = || Command::Run;
        let cases: Vec<StartCase> = vec![
            (
                "the depth target unknown (after HELLO)",
                Box::new(|s| {
                    s.on_answer(&Command::Hello { proto: 1 }, true);
                    s.cartridge = ready().cartridge;
                    measured(s, PenState::Idle, 500);
                }),
                Some(Rule::DepthTargetUnknown),
            ),
            (
                "telemetry off",
                Box::new(|s| s.telemetry_hz = 0),
                Some(Rule::TelemetryOff),
            ),
            (
                "telemetry asked at 100 Hz: too slow to treat",
                Box::new(|s| s.telemetry_hz = 100),
                Some(Rule::TelemetryTooSlow),
            ),
            (
                "the pen reporting every 50 ms at 1000 Hz asked",
                Box::new(|s| {
                    let t = s.needle.latest().map_or(0, |m| m.t_ms);
                    let n = t + 1000;
                    for (i, dt) in [(0, 0), (1, 50)] {
                        let mut x = sample(t + 100 + dt, PenState::Idle, 500);
                        x.n = n + i;
                        s.on_telemetry(&x, now());
                    }
                }),
                Some(Rule::TelemetryStale),
            ),
            (
                "no sample since the connection",
                Box::new(|s| s.needle.forget()),
                Some(Rule::TelemetryStale),
            ),
            (
                "the latest sample is stale",
                Box::new(|s| {
                    let old = now().checked_sub(Duration::from_millis(71)).expect("clock");
                    let t = s.needle.latest().map_or(0, |m| m.t_ms + 10);
                    s.needle.forget();
                    s.on_telemetry(&sample(t, PenState::Idle, 500), old);
                    s.on_telemetry(&sample(t + 30, PenState::Idle, 500), old);
                }),
                Some(Rule::TelemetryStale),
            ),
            (
                "the needle still moving",
                Box::new(|s| {
                    let t = s.needle.latest().map_or(0, |m| m.t_ms);
                    s.on_telemetry(&sample(t + 1, PenState::Idle, 520), now());
                }),
                Some(Rule::NeedleMoving),
            ),
            (
                "the needle still, deeper than the cheeks limit",
                Box::new(|s| measured(s, PenState::Idle, 1100)),
                Some(Rule::NeedleAboveLimit),
            ),
            (
                "the needle still, one reporting step above the limit",
                Box::new(|s| {
                    s.on_answer(&depth(1000), true);
                    measured(s, PenState::Idle, 1010);
                }),
                None,
            ),
            (
                "the needle still, away from its target",
                Box::new(|s| measured(s, PenState::Idle, 800)),
                Some(Rule::NeedleOffTarget),
            ),
            (
                "the needle still, within one step of its target",
                Box::new(|s| measured(s, PenState::Idle, 550)),
                None,
            ),
        ];
        for (name, change, expected) in cases {
            check_case(name, change, run(), expected);
        }
    }

    #[test]
    fn a_start_refused_on_the_needle_says_where_it_is_and_waits_while_it_travels() {
        let mut s = ready();
        measured(&mut s, PenState::Idle, 1000);
        s.on_answer(&depth(300), true);
        s.zone = Some(ZoneId::Periorbital);
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        s.on_telemetry(&sample(t + 4, PenState::Idle, 980), now());
        let refusal = check(&s, &Command::Run).expect_err("moving");
        assert_eq!(refusal.rule, Rule::NeedleMoving);
        assert!(refusal.rule.is_transient());
        assert_eq!(
            refusal.message,
            "start refused: the needle is still moving to 0.30 mm (now 0.98 mm)"
        );
        // Acknowledged a moment ago and not moving yet: on its way all the same, within
        // its travel time.
        let mut s = ready();
        measured(&mut s, PenState::Idle, 1000);
        s.on_answer(&depth(300), true);
        s.zone = Some(ZoneId::Periorbital);
        measured(&mut s, PenState::Idle, 1000);
        assert_eq!(
            check(&s, &Command::Run).map_err(|r| r.rule),
            Err(Rule::NeedleMoving)
        );
        // Past its travel time (140 ms) and the grace: it is not coming.
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        s.on_telemetry(&sample(t + 500, PenState::Idle, 1000), now());
        assert_eq!(
            check(&s, &Command::Run).map_err(|r| r.rule),
            Err(Rule::NeedleAboveLimit)
        );
    }

    #[test]
    fn the_monitor_stops_a_needle_deeper_than_its_zone_once_and_latches() {
        let mut s = ready();
        s.zone = Some(ZoneId::Periorbital);
        s.on_answer(&depth(300), true);
        measured(&mut s, PenState::Idle, 300);
        s.on_sent(&Command::Run);
        s.on_answer(&Command::Run, true);
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        assert_eq!(
            s.on_telemetry(&sample(t + 1, PenState::Running, 310), now()),
            None
        );
        let trip = s
            .on_telemetry(&sample(t + 2, PenState::Running, 320), now())
            .expect("too deep");
        assert_eq!(trip.rule, MonitorRule::DepthOverLimit);
        assert_eq!(trip.zone, Some(ZoneId::Periorbital));
        assert_eq!((trip.limit_um, trip.depth_um), (Some(300), 320));
        assert_eq!(s.latched, [Latch::Monitor(MonitorRule::DepthOverLimit)]);
        // Once: the E-stop is on its way.
        assert_eq!(
            s.on_telemetry(&sample(t + 3, PenState::Running, 330), now()),
            None
        );
        assert_eq!(
            check(&s, &Command::Run).map_err(|r| r.rule),
            Err(Rule::Latched)
        );
    }

    #[test]
    fn a_zone_selected_while_the_needle_runs_takes_force_when_it_stops() {
        // Running in the cheeks (limit 1.00 mm) at 0.50 mm.
        let mut s = ready();
        s.on_answer(&Command::Run, true);
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        assert_eq!(
            s.on_telemetry(&sample(t + 1, PenState::Running, 500), now()),
            None
        );
        // The body is selected: the needle is halted first and runs down in the
        // cheeks' pass, held to the cheeks' limit until it stops.
        let plan = s
            .apply(SafetyUpdate::SelectZone(ZoneId::Body))
            .expect("applies")
            .expect("a plan");
        assert!(plan.halt_first);
        assert_eq!(s.running_limit_um(), Some(1000));
        let refusal = check(&s, &depth(1050)).expect_err("the pass's zone holds");
        assert_eq!(refusal.rule, Rule::DepthAboveLimit);
        assert!(
            refusal.message.contains("still runs in cheeks"),
            "{refusal}"
        );
        // Stopped: the pass ends, and the body's limit holds.
        s.on_telemetry(&sample(t + 2, PenState::Idle, 500), now());
        assert_eq!(s.pass, None);
        assert_eq!(check(&s, &depth(1050)), Ok(()));
    }

    #[test]
    fn a_pen_running_that_the_station_did_not_start_is_stopped() {
        let mut s = ready();
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        let trip = s
            .on_telemetry(&sample(t + 1, PenState::Running, 500), now())
            .expect("nobody started it");
        assert_eq!(trip.rule, MonitorRule::UnexpectedRun);
        // A RUN on the wire is the station's own start.
        let mut s = ready();
        s.on_sent(&Command::Run);
        assert_eq!(
            s.on_telemetry(&sample(t + 1, PenState::Running, 500), now()),
            None
        );
    }

    #[test]
    fn hello_forgets_the_pens_depth_and_a_new_pen_latches_a_stop() {
        let mut s = ready();
        s.on_answer(&Command::Hello { proto: 1 }, true);
        assert_eq!(s.depth_target_um, None);
        assert_eq!(s.cartridge, None);
        assert!(s.needle.latest().is_none());
        // The same pen again: no change.
        assert_eq!(s.on_connected(info(), Calibration::identity()), None);
        let other = PenInfo {
            serial: "S2".into(),
            ..info()
        };
        let change = s
            .on_connected(other, Calibration::identity())
            .expect("another serial");
        assert_eq!(
            (change.from_serial.as_str(), change.to_serial.as_str()),
            ("S1", "S2")
        );
        assert_eq!(s.latched, [Latch::PenChanged]);
    }

    #[test]
    fn stopping_asking_and_resetting_are_always_allowed() {
        let worst = |s: &mut InterlockState| {
            s.latched.push(Latch::Estop);
            s.link_healthy = false;
            s.zone = None;
            s.session = None;
        };
        for command in [
            Command::Halt,
            Command::Hb,
            Command::Reset,
            Command::CalGet,
            Command::Info,
        ] {
            check_case(command.verb(), worst, command.clone(), None);
        }
        check_case(
            "calibration write while running",
            |s| {
                s.technician = true;
                s.run_acknowledged = true;
            },
            Command::CalSet(CalUpdate::default()),
            Some(Rule::NotWhileRunning),
        );
    }

    /// The bench: a station in technician mode, no session, pen idle at depth 0.
    fn bench() -> InterlockState {
        let mut s = ready();
        s.session = None;
        s.zone = None;
        s.apply(SafetyUpdate::Technician(true))
            .expect("no session, needle still");
        s.on_answer(&depth(0), true);
        measured(&mut s, PenState::Idle, 0);
        s
    }

    #[test]
    fn calibration_is_written_only_in_technician_mode() {
        let write = Command::CalSet(CalUpdate {
            depth_gain_ppm: Some(0),
            ..CalUpdate::default()
        });
        let refusal = check(&ready(), &write).expect_err("an operator cannot write it");
        assert_eq!(refusal.rule, Rule::TechnicianOnly);
        assert!(refusal.message.contains("technician mode"), "{refusal}");
        assert_eq!(check(&bench(), &write), Ok(()));
        // Reading it and the simulated gauge are harmless for anyone.
        assert_eq!(check(&ready(), &Command::CalGet), Ok(()));
        assert_eq!(check(&ready(), &Command::SimGauge), Ok(()));
    }

    #[test]
    fn technician_mode_never_mixes_with_treatment() {
        // Not while a session is open, nor while the needle runs.
        let mut s = ready();
        let refusal = s
            .apply(SafetyUpdate::Technician(true))
            .expect_err("session open");
        assert_eq!(refusal.rule, Rule::SessionOpen);
        assert!(!s.technician);
        s.session = None;
        s.on_answer(&Command::Run, true);
        let refusal = s
            .apply(SafetyUpdate::Technician(true))
            .expect_err("running");
        assert_eq!(refusal.rule, Rule::NotWhileRunning);
        // On the bench: no zone, and neither a zone nor a session can be taken up.
        let mut s = ready();
        s.zone = Some(ZoneId::Cheeks);
        s.session = None;
        s.apply(SafetyUpdate::Technician(true)).expect("entered");
        assert_eq!(s.zone, None);
        assert!(s.summary().technician);
        let refusal = s
            .apply(SafetyUpdate::SelectZone(ZoneId::Cheeks))
            .expect_err("no zone on the bench");
        assert_eq!(refusal.rule, Rule::TechnicianMode);
        let facts = ready().session;
        let refusal = s
            .apply(SafetyUpdate::Session(facts))
            .expect_err("no session on the bench");
        assert_eq!(refusal.rule, Rule::TechnicianMode);
        // Leaving: not while the needle runs; then zones are back, none selected.
        s.on_answer(&depth(0), true);
        s.on_answer(&Command::Run, true);
        assert_eq!(
            s.apply(SafetyUpdate::Technician(false)).map_err(|r| r.rule),
            Err(Rule::NotWhileRunning)
        );
        s.on_answer(&Command::Halt, true);
        s.apply(SafetyUpdate::Technician(false)).expect("left");
        assert!(!s.technician);
        assert_eq!(s.zone, None);
        assert_eq!(
            check(&s, &Command::CalSet(CalUpdate::default())).map_err(|r| r.rule),
            Err(Rule::TechnicianOnly)
        );
    }

    #[test]
    fn bench_depths_span_the_pen_and_the_needle_turns_only_retracted() {
        let s = bench();
        // 2.5 mm on the bench: no zone, no deep caution (no client).
        assert_eq!(check(&s, &depth(2500)), Ok(()));
        assert_eq!(check(&s, &depth(0)), Ok(()));
        for bad in [-50, 2550, 1234] {
            assert_eq!(
                check(&s, &depth(bad)).map_err(|r| r.rule),
                Err(Rule::DepthInvalid),
                "{bad}"
            );
        }
        // RUN only at depth 0, without screening, zone or cartridge rules.
        assert_eq!(check(&s, &Command::Run), Ok(()));
        let mut extended = bench();
        extended.on_answer(&depth(500), true);
        let refusal = check(&extended, &Command::Run).expect_err("extended needle");
        assert_eq!(refusal.rule, Rule::BenchNeedleExtended);
        assert!(refusal.message.contains("0.50 mm"), "{refusal}");
        let mut unknown = bench();
        unknown.depth_target_um = None;
        assert_eq!(
            check(&unknown, &Command::Run).map_err(|r| r.rule),
            Err(Rule::BenchNeedleExtended)
        );
        // Turning: the needle cannot be extended.
        let mut running = bench();
        running.on_answer(&Command::Run, true);
        assert_eq!(
            check(&running, &depth(250)).map_err(|r| r.rule),
            Err(Rule::BenchNeedleExtended)
        );
        assert_eq!(check(&running, &depth(0)), Ok(()));
        // On the bench, with no client and the needle retracted, a slower telemetry
        // will do.
        let mut slow = bench();
        slow.telemetry_hz = 100;
        assert_eq!(check(&slow, &Command::Run), Ok(()));
        // Latches hold on the bench too.
        let mut latched = bench();
        latched.on_link_lost();
        latched.on_connected(info(), Calibration::identity());
        assert_eq!(
            check(&latched, &Command::Run).map_err(|r| r.rule),
            Err(Rule::Latched)
        );
    }

    #[test]
    fn a_zone_change_while_running_halts_then_lowers_the_depth() {
        // Running in the cheeks toward 1.00 mm, measured at 0.40 mm on the way.
        let mut s = ready();
        s.on_answer(&depth(1000), true);
        s.on_answer(&Command::Run, true);
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        s.on_telemetry(&sample(t + 1, PenState::Running, 400), now());
        // Around the eyes the needle at 0.40 mm does not belong: refused, say why.
        let refusal = s
            .apply(SafetyUpdate::SelectZone(ZoneId::Periorbital))
            .expect_err("deeper than the eyes allow");
        assert_eq!(refusal.rule, Rule::NeedleAboveLimit);
        assert_eq!(
            refusal.message,
            "zone periorbital refused: the needle is running at 0.40 mm, deeper than the \
             periorbital limit 0.30 mm; stop the needle, and select the zone once it has stopped"
        );
        assert_eq!(s.zone, Some(ZoneId::Cheeks));
        // The forehead (0.50 mm) holds the needle as it is: halted, the target lowered.
        let plan = s
            .apply(SafetyUpdate::SelectZone(ZoneId::Forehead))
            .expect("within the forehead's limit")
            .expect("a plan");
        assert!(plan.halt_first);
        assert_eq!(plan.lower_depth, Some((1000, 500)));
        assert_eq!(
            plan.commands(),
            [Command::Halt, Command::Depth { depth_um: 500 }]
        );
        // Until the pen acknowledges the lowered depth, RUN is refused.
        s.on_answer(&Command::Halt, true);
        s.on_telemetry(&sample(t + 2, PenState::Idle, 420), now());
        assert_eq!(
            check(&s, &Command::Run).map_err(|r| r.rule),
            Err(Rule::DepthTargetAboveLimit)
        );
        s.on_answer(&Command::Depth { depth_um: 500 }, true);
        // Acknowledged, but the needle is still on its way: no RUN yet.
        s.on_telemetry(&sample(t + 3, PenState::Idle, 440), now());
        assert_eq!(
            check(&s, &Command::Run).map_err(|r| r.rule),
            Err(Rule::NeedleMoving)
        );
        measured(&mut s, PenState::Idle, 500);
        assert_eq!(check(&s, &Command::Run), Ok(()));
    }

    #[test]
    fn a_zone_change_within_the_limit_changes_nothing_else() {
        let mut s = ready();
        let plan = s
            .apply(SafetyUpdate::SelectZone(ZoneId::ChinJawline))
            .expect("no technician mode")
            .expect("a plan");
        assert!(!plan.halt_first);
        assert_eq!(plan.lower_depth, None);
        assert!(plan.commands().is_empty());
    }

    #[test]
    fn the_deep_caution_acknowledgement_ends_with_the_zone() {
        let mut s = ready();
        s.apply(SafetyUpdate::AcknowledgeDeepCaution)
            .expect("applies");
        assert!(s.deep_caution_acknowledged);
        s.apply(SafetyUpdate::SelectZone(ZoneId::Body))
            .expect("applies");
        assert!(!s.deep_caution_acknowledged);
    }

    #[test]
    fn stops_latch_until_the_operators_reset_is_acknowledged() {
        type Latching = (&'static str, Box<dyn Fn(&mut InterlockState)>);
        let latches: Vec<Latching> = vec![
            (
                "E-stop event",
                Box::new(|s| s.on_pen_event(&PenEvent::Estop(EstopSource::Button))),
            ),
            (
                "E-stop request",
                Box::new(InterlockState::on_estop_requested),
            ),
            (
                "fault",
                Box::new(|s| s.on_pen_event(&PenEvent::Fault(FaultCode::Stall))),
            ),
            (
                "link loss",
                Box::new(|s| {
                    s.on_link_lost();
                    s.on_connected(
                        info(),
                        s.calibration.clone().unwrap_or_else(Calibration::identity),
                    );
                }),
            ),
            (
                "reboot",
                Box::new(|s| {
                    let cal = s.calibration.clone().unwrap_or_else(Calibration::identity);
                    let cart = s.cartridge.clone();
                    s.on_pen_event(&PenEvent::Boot {
                        boot: 2,
                        reason: crate::protocol::BootReason::Brownout,
                    });
                    s.on_connected(info(), cal);
                    s.cartridge = cart;
                }),
            ),
        ];
        for (name, latch) in latches {
            let mut s = ready();
            latch(&mut s);
            assert_eq!(
                check(&s, &Command::Run).map_err(|r| r.rule),
                Err(Rule::Latched),
                "{name}"
            );
            // A NAKed reset changes nothing; nothing clears on its own.
            s.on_answer(&Command::Reset, false);
            assert_eq!(
                check(&s, &Command::Run).map_err(|r| r.rule),
                Err(Rule::Latched),
                "{name}"
            );
            s.on_answer(&Command::Reset, true);
            // After a reconnection the pen's depth is set again and seen.
            s.on_answer(&depth(500), true);
            measured(&mut s, PenState::Idle, 500);
            assert_eq!(check(&s, &Command::Run), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_reset_while_the_link_is_down_clears_nothing() {
        let mut s = ready();
        s.on_link_lost();
        s.on_answer(&Command::Reset, true);
        assert_eq!(s.latched, [Latch::LinkLost]);
    }

    #[test]
    fn depths_print_in_mm() {
        assert_eq!(mm(300), "0.30 mm");
        assert_eq!(mm(1250), "1.25 mm");
        assert_eq!(mm(-50), "-0.05 mm");
        // Nothing rounded away: 315 µm is above a 0.31 mm limit, and says so.
        assert_eq!(mm(315), "0.315 mm");
        assert_eq!(mm(301), "0.301 mm");
        assert_eq!(mm(25), "0.025 mm");
    }

    #[test]
    fn a_treatment_dated_after_today_is_refused_and_said_to_be_a_clock_error() {
        let mut s = ready();
        if let Some(x) = &mut s.session {
            x.last_treated.insert(
                ZoneId::Cheeks,
                today().saturating_add(jiff::Span::new().days(3)),
            );
        }
        let refusal = check(&s, &Command::Run).expect_err("a date after today");
        assert_eq!(refusal.rule, Rule::ZoneTreatedRecently);
        assert!(
            refusal.message.contains("a date after today (2026-11-24)")
                && !refusal.message.contains("days ago"),
            "{refusal}"
        );
    }

    #[test]
    fn the_monitor_stops_a_running_needle_it_can_no_longer_see() {
        let mut s = ready();
        s.telemetry_hz = 1000;
        s.on_answer(&Command::Run, true);
        let t = s.needle.latest().map_or(0, |m| m.t_ms);
        s.on_telemetry(&sample(t + 1, PenState::Running, 500), now());
        // Within the bound: nothing.
        let soon = now() + Duration::from_millis(99);
        assert_eq!(s.on_telemetry_silence(soon), None);
        let later = now() + Duration::from_millis(101);
        let trip = s.on_telemetry_silence(later).expect("unseen too long");
        assert_eq!(trip.rule, MonitorRule::TelemetryLost);
        assert!(
            trip.message.contains("no telemetry for 101 ms"),
            "{}",
            trip.message
        );
        assert_eq!(s.latched, [Latch::Monitor(MonitorRule::TelemetryLost)]);
        assert_eq!(s.on_telemetry_silence(later), None, "once");
        // An idle needle unseen is no trip (the link's silence limit handles it).
        let mut idle = ready();
        idle.telemetry_hz = 1000;
        assert_eq!(
            idle.on_telemetry_silence(now() + Duration::from_secs(1)),
            None
        );
        // A start on telemetry that has stopped is refused outright, not held.
        let refusal = super::check(&idle, &Command::Run, now() + Duration::from_millis(600))
            .expect_err("no telemetry");
        assert_eq!(refusal.rule, Rule::TelemetryLost);
        assert!(!refusal.rule.is_transient());
    }
}
