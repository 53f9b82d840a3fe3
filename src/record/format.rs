//! The session record's lines: what `docs/session-format.md` documents and
//! `assets/session.schema.json` validates.
//!
//! A record is JSON Lines. Every line is one object whose `"type"` says what it is,
//! whose `"mono_ms"` (format 2) is the session's time axis: milliseconds since the
//! session opened on the station's monotonic clock, which no wall-clock change (NTP,
//! a manual setting) can bend; and whose `"utc_ms"` is the station's UTC wall-clock
//! time, milliseconds since the Unix epoch, a label for people. A step of the wall
//! clock during the session is recorded as a `clock` line. Lines that come from the
//! pen also carry the pen's own clock, `t_ms` (ms since the pen booted; it wraps and
//! restarts on reboot). Format 1 records (no `mono_ms`) still load: their axis
//! follows the pen's clock across a step of the wall clock.
//!
//! The types here are the file's vocabulary, deliberately plain (strings and
//! integers, wire words for pen states and commands) so that the format does not
//! change when an internal type does. Converting from the station's types happens in
//! `crate::station::record`.

use serde::{Deserialize, Serialize};

/// The `format` field of every header.
pub const FORMAT_NAME: &str = "punctum-session";

/// The format version this station writes, and the newest it reads (1 to 5).
/// Version 2 adds `mono_ms` to every line and the `clock` line; version 3 the `step`
/// line (the procedure around the needling, products and lots) and the summary's
/// `indication`, `lots`, `notes`; version 4 the `access` and `signature` lines;
/// version 5 the `clinic` line.
pub const FORMAT_VERSION: u32 = 5;

/// One line of a session record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line: who, with which pen, under which zone table.
    Header(Box<Header>),
    /// One telemetry sample, as the pen sent it.
    Tel(TelLine),
    /// A command went to the pen (any origin but heartbeats).
    Command(CommandLine),
    /// The pen answered a command, or the link gave up on it.
    Answer(AnswerLine),
    /// The interlock refused a command: it never reached the wire.
    Refusal(RefusalLine),
    /// The pen reported an event (`EV`).
    Event(EventLine),
    /// An alarm was raised, acknowledged, silenced or cleared.
    Alarm(AlarmLine),
    /// The interlock made a zone active.
    Zone(ZoneLine),
    /// The link changed state (connected, lost, reconnecting).
    Link(LinkLine),
    /// A cartridge ran for the first time in this session.
    Cartridge(CartridgeLine),
    /// An operator's note.
    Note(NoteLine),
    /// The needle monitor stopped the needle: the E-stop byte went out.
    Monitor(MonitorLine),
    /// The station's wall clock stepped (format 2): the recorder saw `utc_ms` move
    /// away from `mono_ms` by more than a second.
    Clock(ClockLine),
    /// The last line of a session that ended normally.
    Summary(Box<SummaryLine>),
    /// The alarm sound changed state during the session.
    Sound(SoundLine),
    /// A step of the procedure (format 3): cleansing, numbing, a test spot, a serum,
    /// a cartridge's lot, aftercare, or a correction of an earlier step.
    Step(Box<StepLine>),
    /// Who is at the station changed during the session (format 4): a lock, or a
    /// hand-over to another practitioner.
    Access(AccessLine),
    /// The practitioner's signature (format 4): the last line, after the summary,
    /// with the SHA-256 of every byte before it (see `record::sign`).
    Signature(SignatureLine),
    /// The clinic store as the session saw it (format 5): unreachable, reachable
    /// again, a sealed pack confirmed, the client's history incomplete, a cartridge
    /// claim conflict.
    Clinic(ClinicLine),
}

impl Line {
    /// The line's `type` word.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Line::Header(_) => "header",
            Line::Tel(_) => "tel",
            Line::Command(_) => "command",
            Line::Answer(_) => "answer",
            Line::Refusal(_) => "refusal",
            Line::Event(_) => "event",
            Line::Alarm(_) => "alarm",
            Line::Zone(_) => "zone",
            Line::Link(_) => "link",
            Line::Cartridge(_) => "cartridge",
            Line::Note(_) => "note",
            Line::Monitor(_) => "monitor",
            Line::Clock(_) => "clock",
            Line::Summary(_) => "summary",
            Line::Sound(_) => "sound",
            Line::Step(_) => "step",
            Line::Access(_) => "access",
            Line::Signature(_) => "signature",
            Line::Clinic(_) => "clinic",
        }
    }

    /// The station's UTC time of the line, ms since the Unix epoch.
    #[must_use]
    pub fn utc_ms(&self) -> i64 {
        match self {
            Line::Header(l) => l.utc_ms,
            Line::Tel(l) => l.utc_ms,
            Line::Command(l) => l.utc_ms,
            Line::Answer(l) => l.utc_ms,
            Line::Refusal(l) => l.utc_ms,
            Line::Event(l) => l.utc_ms,
            Line::Alarm(l) => l.utc_ms,
            Line::Zone(l) => l.utc_ms,
            Line::Link(l) => l.utc_ms,
            Line::Cartridge(l) => l.utc_ms,
            Line::Note(l) => l.utc_ms,
            Line::Monitor(l) => l.utc_ms,
            Line::Clock(l) => l.utc_ms,
            Line::Summary(l) => l.utc_ms,
            Line::Sound(l) => l.utc_ms,
            Line::Step(l) => l.utc_ms,
            Line::Access(l) => l.utc_ms,
            Line::Signature(l) => l.utc_ms,
            Line::Clinic(l) => l.utc_ms,
        }
    }

    /// Every `type` word this version knows, in the order the documentation lists them.
    pub const KINDS: [&'static str; 19] = [
        "header",
        "tel",
        "command",
        "answer",
        "refusal",
        "event",
        "alarm",
        "zone",
        "link",
        "cartridge",
        "note",
        "monitor",
        "clock",
        "sound",
        "step",
        "access",
        "clinic",
        "summary",
        "signature",
    ];
}

/// A line as the recorder writes it: the line's fields, then `mono_ms`.
#[derive(Debug, Serialize)]
pub struct Stamped<'a> {
    /// The line.
    #[serde(flatten)]
    pub line: &'a Line,
    /// Session time on the station's monotonic clock, ms since the session opened
    /// (the header is at 0).
    pub mono_ms: i64,
}

/// The alarm sound's state changed while the session was open (the header says what
/// it was when the session opened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoundLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// `working`, `unavailable`, `starting` or `off`.
    pub state: String,
    /// The state in words: `working (alarm_sink)`, `unavailable: why`.
    pub detail: String,
}

/// A step of the procedure, as the operator recorded it (see
/// [`crate::safety::procedure`]). A step is never rewritten: a later `correction` line
/// names it (`corrects`), says why, and voids it or gives the fields that replace its
/// own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLine {
    /// Station UTC time it was recorded, ms.
    pub utc_ms: i64,
    /// 1, 2, ... in the order recorded in the session.
    pub number: u32,
    /// `cleansing`, `numbing_applied`, `numbing_removed`, `no_numbing`, `test_spot`,
    /// `test_spot_reaction`, `serum`, `cartridge_lot`, `aftercare_given`,
    /// `correction`.
    pub step: String,
    /// Who recorded it (the practitioner).
    pub by: String,
    /// When it happened, station UTC ms, when the operator stated a time before the
    /// recording (a numbing cream applied before the session opened). Absent: at
    /// `utc_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_utc_ms: Option<i64>,
    /// Product name (numbing cream, serum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Lot number, as typed or scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// The cartridge's id from the pen (`cartridge_lot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartridge: Option<String>,
    /// The test spot's zone id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The test spot's depth, µm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_um: Option<i32>,
    /// The reaction seen at the test spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// Why: no numbing's reason; a correction's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The step a correction corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<u32>,
    /// A correction saying the step it names did not happen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub void: bool,
    /// The client's lidocaine sensitivity was confirmed again before this numbing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lidocaine_confirmed: bool,
}

impl StepLine {
    /// The step in words, with its number and who recorded it: `step 2 numbing cream
    /// applied: EMLA 5%, lot L-1 (by P-7, at 09:40 UTC)`; a step word this version does not
    /// know is shown as it is.
    #[must_use]
    pub fn describe(&self) -> String {
        let what = self.to_entry(0).map_or_else(
            |_| format!("{} (unknown to this version)", self.step),
            |e| e.describe(),
        );
        let at = self
            .at_utc_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| format!(", at {} UTC", t.strftime("%H:%M")))
            .unwrap_or_default();
        format!("step {} {what} (by {}{at})", self.number, self.by)
    }

    /// The step as the procedure knows it, `mono_ms` being the line's place on the
    /// session's axis. A step word this version does not know, or a zone id it does
    /// not know, is an error that names it.
    pub fn to_entry(&self, mono_ms: i64) -> Result<crate::safety::procedure::StepEntry, String> {
        use crate::safety::procedure::{StepEntry, StepKind};
        let kind = StepKind::parse(&self.step)
            .ok_or_else(|| format!("step {}: unknown step \"{}\"", self.number, self.step))?;
        let zone = match &self.zone {
            Some(z) => Some(
                z.parse()
                    .map_err(|e| format!("step {}: {e}", self.number))?,
            ),
            None => None,
        };
        let earlier_ms = self
            .at_utc_ms
            .map_or(0, |at| self.utc_ms.saturating_sub(at));
        Ok(StepEntry {
            number: self.number,
            kind: Some(kind),
            at_ms: mono_ms.saturating_sub(earlier_ms),
            recorded_ms: mono_ms,
            by: self.by.clone(),
            product: self.product.clone(),
            lot: self.lot.clone(),
            cartridge: self.cartridge.clone(),
            zone,
            depth_um: self.depth_um,
            reaction: self.reaction.clone(),
            reason: self.reason.clone(),
            corrects: self.corrects,
            void: self.void,
            lidocaine_confirmed: self.lidocaine_confirmed,
        })
    }
}

/// A step of the station's wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockLine {
    /// Station UTC time, ms, after the step.
    pub utc_ms: i64,
    /// How far the wall clock moved against the monotonic clock, ms (+86 400 000: a
    /// day forward; −3 600 000: an hour back).
    pub step_ms: i64,
}

impl ClockLine {
    /// The step in words, for the report and the replay's events:
    /// `the station's wall clock stepped 24 h 0 min 0 s forward`.
    #[must_use]
    pub fn describe(&self) -> String {
        describe_clock_step(self.step_ms)
    }
}

/// A wall-clock step of `step_ms` in words (see [`ClockLine::describe`]).
#[must_use]
pub fn describe_clock_step(step_ms: i64) -> String {
    let secs = step_ms.unsigned_abs().saturating_add(500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let direction = if step_ms >= 0 { "forward" } else { "back" };
    format!("the station's wall clock stepped {h} h {m} min {s} s {direction}")
}

/// The header: the first line of every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Station UTC time the session opened, ms since the Unix epoch.
    pub utc_ms: i64,
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`] when written by this station.
    pub version: u32,
    /// The station's version (`CARGO_PKG_VERSION`).
    pub station_version: String,
    /// The session's id (also in the file name).
    pub session_id: String,
    /// The session's opening time, RFC 3339 with the station's UTC offset, for
    /// people reading the file.
    pub opened_at: String,
    /// The practitioner's id, from the screening.
    pub practitioner: String,
    /// The client's pseudonym, from the screening.
    pub client: String,
    /// The screening answers file the session was opened with, as it was read.
    pub screening: serde_json::Value,
    /// The pen's INFO, when the link had it.
    pub pen: Option<PenInfoRecord>,
    /// The pen's calibration, when the link had it.
    pub calibration: Option<CalibrationRecord>,
    /// The zone table in force, in its file format (`assets/zones.json`).
    pub zones: serde_json::Value,
    /// SHA-256 of the zone table's canonical form, lowercase hex.
    pub zones_hash: String,
    /// The pen is the built-in simulator: not a treatment.
    pub simulated: bool,
    /// Whether alarms could be heard when the session opened, as the sound's status
    /// says it ([`crate::sound::SoundStatus`]'s words: `working (sink)`, `unavailable:
    /// why`, `off`, `starting`). Absent in records written before the station had
    /// sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_sound: Option<String>,
}

/// The pen's INFO line, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PenInfoRecord {
    /// Model name.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub fw: String,
    /// Protocol version.
    pub proto: i64,
    /// Boot counter.
    pub boot: u32,
    /// Deepest settable depth, µm.
    pub depth_max_um: i32,
    /// Depth step, µm.
    pub depth_step_um: i32,
    /// Slowest settable speed, rpm.
    pub speed_min_rpm: i32,
    /// Fastest settable speed, rpm.
    pub speed_max_rpm: i32,
    /// Watchdog period, ms.
    pub watchdog_ms: u32,
    /// Highest telemetry rate, Hz.
    pub tel_max_hz: u32,
}

/// The pen's calibration, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    /// Depth offset `o`, µm.
    pub depth_offset_um: i32,
    /// Depth gain `g` × 10⁶.
    pub depth_gain_ppm: i32,
    /// Speed gain `s` × 10⁶.
    pub speed_gain_ppm: i32,
    /// Date as YYYYMMDD; 0 = never calibrated.
    pub date: u32,
    /// Technician id; `-` = none.
    pub tech: String,
}

/// One telemetry sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelLine {
    /// Station UTC time of reception, ms.
    pub utc_ms: i64,
    /// The pen's sample counter since `HELLO`.
    pub n: u32,
    /// Pen time, ms since boot.
    pub t_ms: u32,
    /// Pen state, the wire word: `IDLE`, `RUNNING`, `FAULT`, `ESTOP`.
    pub state: StateWord,
    /// Measured speed, rpm.
    pub rpm: i32,
    /// Actual calibrated depth, µm.
    pub depth_um: i32,
    /// Motor current, mA.
    pub current_ma: i32,
    /// Temperature, 0.1 °C.
    pub temp_dc: i32,
}

/// A pen state as the wire writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StateWord {
    /// Motor off, ready.
    Idle,
    /// Motor running.
    Running,
    /// The pen stopped itself.
    Fault,
    /// Emergency stop.
    Estop,
}

impl StateWord {
    /// The wire word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StateWord::Idle => "IDLE",
            StateWord::Running => "RUNNING",
            StateWord::Fault => "FAULT",
            StateWord::Estop => "ESTOP",
        }
    }
}

impl From<crate::protocol::PenState> for StateWord {
    fn from(state: crate::protocol::PenState) -> Self {
        use crate::protocol::PenState;
        match state {
            PenState::Idle => StateWord::Idle,
            PenState::Running => StateWord::Running,
            PenState::Fault => StateWord::Fault,
            PenState::Estop => StateWord::Estop,
        }
    }
}

/// A command written to the pen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandLine {
    /// Station UTC time it was written, ms.
    pub utc_ms: i64,
    /// Its sequence number.
    pub seq: u32,
    /// The command as the wire writes it, without the sequence number: `DEPTH 800`.
    pub command: String,
    /// Who asked: `operator` (the window or the console) or `link` (the handshake).
    pub origin: String,
    /// The signed-in account, for an operator's command (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// Who is at the station changed (format 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// `hand_over`, `lock (idle)`, `lock (on demand)`.
    pub action: String,
    /// The account: the one taking over, or the one whose station locked.
    pub account: String,
    /// For a hand-over: who was at the station before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The clinic store as the session saw it (format 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// `unreachable`, `reachable`, `sealed_pack_confirmed`, `history_incomplete`,
    /// `claim_conflict`.
    pub event: String,
    /// What happened, in words (a reason, the other session and station).
    pub detail: String,
    /// The account that confirmed (a sealed pack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The cartridge concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartridge: Option<String>,
}

/// The practitioner's signature: the record's last line (format 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureLine {
    /// Station UTC time of the signature, ms.
    pub utc_ms: i64,
    /// The signing account's id.
    pub account: String,
    /// Its name when it signed.
    pub name: String,
    /// What the signature means (21 CFR 11.50): `reviewed and approved`.
    pub meaning: String,
    /// SHA-256 (lower-case hex) of every byte of the file before this line.
    pub sha256: String,
    /// How many bytes that is.
    pub bytes: u64,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerLine {
    /// Station UTC time of the answer, ms.
    pub utc_ms: i64,
    /// The sequence number it went out with (`null`: it never went out).
    pub seq: Option<u32>,
    /// The command, wire text without the sequence number.
    pub command: String,
    /// `ACK`, `NAK <REASON>`, `UNANSWERED` (no answer after the last retry) or
    /// `NOT_SENT` (the link did not send it; `detail` says why).
    pub result: String,
    /// Why, for `NOT_SENT`.
    pub detail: Option<String>,
    /// From the last send to the answer, µs.
    pub rtt_us: Option<u64>,
}

/// A command the interlock refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// The command refused, wire text.
    pub command: String,
    /// The rule's stable id (`depth_above_limit`, ...).
    pub rule: String,
    /// What was refused and why, as the operator read it.
    pub message: String,
    /// The zone active at the time.
    pub zone: Option<String>,
}

/// A pen event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    /// Station UTC time of reception, ms.
    pub utc_ms: i64,
    /// Pen time, ms.
    pub t_ms: u32,
    /// The event as the wire writes it after `EV <t_ms>`: `FAULT STALL`.
    pub event: String,
}

/// An alarm transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// The alarm's id (`link_lost`, ...).
    pub alarm: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// `raised`, `acknowledged`, `silenced` or `cleared`.
    pub action: String,
    /// The alarm's text at that moment.
    pub text: String,
    /// Who acknowledged or silenced it: the signed-in account (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A zone made active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// The zone's id (`cheeks`, ...).
    pub zone: String,
    /// Its protocol limit, µm.
    pub limit_um: i32,
    /// The needle was running and was halted first.
    pub halt_first: bool,
    /// The depth target was above the limit and was lowered from this, µm.
    pub lowered_from_um: Option<i32>,
    /// ... to this, µm.
    pub lowered_to_um: Option<i32>,
}

/// The needle monitor stopped the needle: what it saw, and the E-stop byte's reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// The rule: `depth_over_limit`, `unexpected_run`, `overspeed`, `depth_off_target`.
    pub rule: String,
    /// The zone the needle ran in (`null`: on the bench, or no pass).
    pub zone: Option<String>,
    /// The depth limit in force, µm.
    pub limit_um: Option<i32>,
    /// The depth target the pen had acknowledged, µm.
    pub target_um: Option<i32>,
    /// The measured depth, µm.
    pub depth_um: i32,
    /// The measured speed, rpm.
    pub rpm: i32,
    /// Pen time of the sample, ms.
    pub t_ms: u32,
    /// From the sample's arrival at the port reader to the E-stop byte written, µs.
    pub reaction_us: u64,
    /// What happened, as the operator read it.
    pub message: String,
}

/// A link state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// `connecting`, `connected`, `lost`, `closed`, or `pen_changed` (a different pen
    /// answered: `detail` names both serials).
    pub state: String,
    /// Why (for `lost`), or the last error (for `connecting`).
    pub detail: Option<String>,
}

/// A cartridge's first run in this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartridgeLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// The cartridge id, 16 uppercase hex digits.
    pub id: String,
    /// Its needle count.
    pub needles: u32,
}

/// An operator's note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteLine {
    /// Station UTC time, ms.
    pub utc_ms: i64,
    /// Who wrote it (the practitioner).
    pub author: String,
    /// The note.
    pub text: String,
}

/// The closing summary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SummaryLine {
    /// Station UTC time the line was written, ms: when the session ended, or up to a
    /// second later when the record waited for the pen's answer to the closing `HALT`.
    pub utc_ms: i64,
    /// The session's length, ms (from the header's `utc_ms` to the session's end).
    pub duration_ms: i64,
    /// Per zone selected, in zone order.
    pub zones: Vec<ZoneSummary>,
    /// All needling time, ms.
    pub needling_ms: u64,
    /// All interlock refusals.
    pub refusals: u32,
    /// Link losses and pen faults.
    pub interruptions: u32,
    /// Alarms raised.
    pub alarms_raised: u32,
    /// Telemetry lines written.
    pub samples: u64,
    /// Cartridges that ran, ids.
    pub cartridges: Vec<String>,
    /// Earliest date for the next session, `YYYY-MM-DD`.
    pub next_earliest: String,
    /// Latest date, when the schedule gives one.
    pub next_latest: Option<String>,
    /// The schedule's advice.
    pub next_advice: String,
    /// What ended the session when it was not the operator's `end`: `signal SIGINT`,
    /// `signal SIGTERM`, `signal SIGHUP` (the process was told to stop; the pen was
    /// halted and the record closed first), `window closed`. Absent after `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// The indication the session treated (format 3; also in the header's
    /// screening).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
    /// Products and lots used, as they stand after corrections (format 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<crate::safety::procedure::LotUse>,
    /// The operators' notes, in order (format 3), up to
    /// [`SUMMARY_NOTES_MAX_BYTES`] in all: the rest are counted in `notes_omitted`
    /// and stay in the record's `note` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Notes not repeated here for their size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub notes_omitted: u32,
    /// The course of treatment when the session opened (format 3): `acne scars:
    /// session 2 of 3–6; next from 2027-01-04`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course: Option<String>,
}

/// The most the summary repeats of the notes, bytes: the library finds a summary in
/// the record's last 64 KiB.
pub const SUMMARY_NOTES_MAX_BYTES: usize = 16 << 10;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One zone's figures in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSummary {
    /// The zone's id.
    pub zone: String,
    /// Needle starts.
    pub passes: u32,
    /// Motor time, ms.
    pub needling_ms: u64,
    /// Deepest actual depth while running, µm.
    pub max_depth_um: i32,
    /// Refusals while it was active.
    pub refusals: u32,
}

/// `utc_ms` as `2026-12-01 09:30:00 UTC` (the raw number when out of range).
#[must_use]
pub fn utc_text(utc_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(utc_ms).map_or_else(
        |_| format!("{utc_ms} ms"),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_telemetry_line_should_round_trip_with_its_type_first() {
        let line = Line::Tel(TelLine {
            utc_ms: 1_764_000_000_123,
            n: 7,
            t_ms: 12_345,
            state: StateWord::Running,
            rpm: 6000,
            depth_um: 800,
            current_ma: 310,
            temp_dc: 312,
        });
        let text = serde_json::to_string(&line).expect("encodes");
        assert!(
            text.starts_with(r#"{"type":"tel","utc_ms":1764000000123,"#),
            "{text}"
        );
        assert!(text.contains(r#""state":"RUNNING""#), "{text}");
        let back: Line = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, line);
        assert_eq!(back.kind(), "tel");
        assert_eq!(back.utc_ms(), 1_764_000_000_123);
    }

    #[test]
    fn kinds_should_list_every_variant_once() {
        let mut kinds = Line::KINDS.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), Line::KINDS.len());
    }
}
