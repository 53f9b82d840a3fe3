//! Alarms after IEC 60601-1-8: three priorities, a stated delay per alarm, latching
//! alarms that outlive their condition until the operator acknowledges them, a
//! time-limited audio silence, and a log of every transition.
//!
//! The callers report *conditions* (`condition_present` / `condition_ended`); the
//! manager turns them into *alarms*. Time is the caller's `now_ms` (a monotonic clock
//! in ms); the manager never reads a clock.
//!
//! Rules (also in `docs/alarms.md`):
//! - An alarm is raised once its condition has lasted [`AlarmId::delay_ms`]. With a
//!   delay of 0 it is raised at once by `condition_present`, so an event (a condition
//!   that starts and ends at the same instant) is never lost between two ticks.
//! - A non-latching alarm clears itself when its condition ends. A latching alarm
//!   stays active until the operator has seen it: acknowledging it after the condition
//!   ended clears it, and a latching alarm already acknowledged clears when its
//!   condition ends.
//! - Acknowledging marks an alarm seen. It quiets a medium or low alarm for as long as
//!   its condition lasts; a high alarm keeps sounding until its condition ends, and
//!   only a silence (at most [`MAX_SILENCE_HIGH_MS`]) pauses it.
//! - Nothing can clear an alarm while its condition lasts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The longest audio silence for a high-priority alarm, ms (2 min).
pub const MAX_SILENCE_HIGH_MS: u64 = 120_000;

/// The longest audio silence for a medium or low alarm, ms (10 min).
pub const MAX_SILENCE_OTHER_MS: u64 = 600_000;

/// An alarm's priority. Ordered: `High` is the greatest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Awareness.
    Low,
    /// Prompt response: reversible injury.
    Medium,
    /// Immediate response: risk of serious injury.
    High,
}

impl Priority {
    /// The id used in records: `low`, `medium`, `high`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The visual signal IEC 60601-1-8 asks for.
    #[must_use]
    pub fn light(self) -> &'static str {
        match self {
            Self::High => "red, flashing 1.4–2.8 Hz",
            Self::Medium => "yellow, flashing 0.4–0.8 Hz",
            Self::Low => "cyan or yellow, steady",
        }
    }

    /// The auditory signal IEC 60601-1-8 asks for.
    #[must_use]
    pub fn sound(self) -> &'static str {
        match self {
            Self::High => "10-pulse burst (3+2, 3+2), repeated",
            Self::Medium => "3 pulses",
            Self::Low => "1–2 pulses, or none",
        }
    }

    /// The longest silence [`AlarmManager::silence`] grants, ms.
    #[must_use]
    pub fn max_silence_ms(self) -> u64 {
        match self {
            Self::High => MAX_SILENCE_HIGH_MS,
            Self::Medium | Self::Low => MAX_SILENCE_OTHER_MS,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every alarm the station raises.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlarmId {
    // Declared in the order of `ALL`: among alarms of one priority raised in the same
    // millisecond the first declared shows first, so a needle monitor stop shows
    // before the E-stop it caused.
    /// The needle monitor saw the needle run deeper than its zone allows, and
    /// stopped it.
    DepthOverLimit,
    /// The needle monitor saw the pen run when the station had not started it, and
    /// stopped it.
    UnexpectedRun,
    /// The needle ran and the pen's telemetry stopped: the station could not see it,
    /// and stopped it.
    TelemetryLost,
    /// The link to the pen is lost.
    LinkLost,
    /// The pen reports a fault.
    PenFault,
    /// Emergency stop.
    Estop,
    /// The session recording could not be written.
    RecordingFailed,
    /// A cartridge ran in two sessions of the clinic: one claimed it while its
    /// station could not reach the clinic store.
    CartridgeClaimConflict,
    /// The needle monitor saw the needle turn far faster than allowed, and stopped it.
    Overspeed,
    /// The needle monitor saw the running needle stay away from its depth target, and
    /// stopped it.
    DepthOffTarget,
    /// A different pen answered after a reconnection.
    PenChanged,
    /// No alarm can sound: no sound server, no device, or the stream failed. Every
    /// visual alarm goes on.
    AlarmSoundUnavailable,
    /// The clinic store cannot be reached: records queue at the station.
    ClinicStoreUnreachable,
    /// The interlock refused a depth.
    DepthRefused,
    /// The depth is above 1.5 mm (not evaluated in De Novo DEN160029).
    DeepCaution,
    /// The interlock refused to start the motor.
    StartRefused,
    /// Telemetry samples are missing.
    TelemetryGaps,
    /// The pen's calibration is due.
    CalibrationDue,
}

impl AlarmId {
    /// Every alarm, high priority first.
    pub const ALL: [Self; 18] = [
        Self::DepthOverLimit,
        Self::UnexpectedRun,
        Self::TelemetryLost,
        Self::LinkLost,
        Self::PenFault,
        Self::Estop,
        Self::RecordingFailed,
        Self::CartridgeClaimConflict,
        Self::Overspeed,
        Self::DepthOffTarget,
        Self::PenChanged,
        Self::AlarmSoundUnavailable,
        Self::ClinicStoreUnreachable,
        Self::DepthRefused,
        Self::DeepCaution,
        Self::StartRefused,
        Self::TelemetryGaps,
        Self::CalibrationDue,
    ];

    /// The id used in records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkLost => "link_lost",
            Self::PenFault => "pen_fault",
            Self::Estop => "estop",
            Self::RecordingFailed => "recording_failed",
            Self::DepthRefused => "depth_refused",
            Self::DeepCaution => "deep_caution",
            Self::StartRefused => "start_refused",
            Self::TelemetryGaps => "telemetry_gaps",
            Self::CalibrationDue => "calibration_due",
            Self::DepthOverLimit => "depth_over_limit",
            Self::UnexpectedRun => "unexpected_run",
            Self::TelemetryLost => "telemetry_lost",
            Self::Overspeed => "overspeed",
            Self::DepthOffTarget => "depth_off_target",
            Self::PenChanged => "pen_changed",
            Self::AlarmSoundUnavailable => "alarm_sound_unavailable",
            Self::CartridgeClaimConflict => "cartridge_claim_conflict",
            Self::ClinicStoreUnreachable => "clinic_store_unreachable",
        }
    }

    /// Whether the alarm has an auditory signal: all but `alarm_sound_unavailable`,
    /// which exists because no sound can play, and is shown instead.
    #[must_use]
    pub fn has_sound(self) -> bool {
        self != Self::AlarmSoundUnavailable
    }

    /// The alarm a needle monitor rule raises.
    #[must_use]
    pub fn of_monitor(rule: crate::safety::needle::MonitorRule) -> Self {
        use crate::safety::needle::MonitorRule as R;
        match rule {
            R::DepthOverLimit => Self::DepthOverLimit,
            R::UnexpectedRun => Self::UnexpectedRun,
            R::Overspeed => Self::Overspeed,
            R::DepthOffTarget => Self::DepthOffTarget,
            R::TelemetryLost => Self::TelemetryLost,
        }
    }

    /// Its priority.
    #[must_use]
    pub fn priority(self) -> Priority {
        match self {
            Self::LinkLost
            | Self::PenFault
            | Self::Estop
            | Self::RecordingFailed
            | Self::DepthOverLimit
            | Self::UnexpectedRun
            | Self::TelemetryLost
            | Self::CartridgeClaimConflict => Priority::High,
            Self::DepthRefused
            | Self::DeepCaution
            | Self::StartRefused
            | Self::Overspeed
            | Self::DepthOffTarget
            | Self::PenChanged
            | Self::AlarmSoundUnavailable
            | Self::ClinicStoreUnreachable => Priority::Medium,
            Self::TelemetryGaps | Self::CalibrationDue => Priority::Low,
        }
    }

    /// Whether the alarm outlives its condition until acknowledged.
    ///
    /// Latching: the high alarms (a lost link, a fault or an E-stop may be over by the
    /// time the operator looks, but the session was interrupted and they must know),
    /// and the two event alarms `depth_refused` and `start_refused`, whose condition
    /// ends the instant it starts and would otherwise vanish unseen. Non-latching:
    /// states that are only worth showing while they last (`deep_caution`,
    /// `telemetry_gaps`, `calibration_due`).
    #[must_use]
    pub fn latching(self) -> bool {
        match self {
            Self::LinkLost
            | Self::PenFault
            | Self::Estop
            | Self::RecordingFailed
            | Self::DepthRefused
            | Self::StartRefused
            | Self::DepthOverLimit
            | Self::UnexpectedRun
            | Self::TelemetryLost
            | Self::Overspeed
            | Self::DepthOffTarget
            | Self::PenChanged
            | Self::CartridgeClaimConflict => true,
            Self::DeepCaution
            | Self::TelemetryGaps
            | Self::CalibrationDue
            | Self::AlarmSoundUnavailable
            | Self::ClinicStoreUnreachable => false,
        }
    }

    /// The delay from condition to alarm, ms, as IEC 60601-1-8 asks makers to state.
    ///
    /// 0 for all but `telemetry_gaps`: their conditions are already debounced where
    /// they are detected (the link declares itself lost within 500 ms of silence) or
    /// are events. `telemetry_gaps` waits 2 s, so a single dropped sample or a brief
    /// burst does not raise an alarm; gaps that persist do.
    #[must_use]
    pub fn delay_ms(self) -> u64 {
        match self {
            Self::TelemetryGaps => 2_000,
            _ => 0,
        }
    }

    /// The condition, for the operator.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::LinkLost => "The link to the pen is lost; the pen stops itself.",
            Self::PenFault => "The pen reports a fault and has stopped.",
            Self::Estop => "Emergency stop: the pen has stopped.",
            Self::RecordingFailed => "The session record could not be written.",
            Self::DepthRefused => "A depth above the zone's limit was refused.",
            Self::DeepCaution => {
                "Depth above 1.5 mm: not evaluated for safety and effectiveness (SkinPen De Novo)."
            }
            Self::StartRefused => "The motor start was refused by the interlock.",
            Self::TelemetryGaps => "Telemetry samples are missing.",
            Self::CalibrationDue => "The pen's calibration is due.",
            Self::DepthOverLimit => {
                "The needle ran deeper than its zone allows; the station stopped it (E-stop)."
            }
            Self::UnexpectedRun => {
                "The pen ran without the station starting it; the station stopped it (E-stop)."
            }
            Self::TelemetryLost => {
                "The pen stopped reporting while the needle ran; the station stopped it (E-stop)."
            }
            Self::Overspeed => {
                "The needle turned far faster than allowed; the station stopped it (E-stop)."
            }
            Self::DepthOffTarget => {
                "The running needle stayed away from its depth; the station stopped it (E-stop)."
            }
            Self::PenChanged => "A different pen is connected; nothing runs until reset.",
            Self::AlarmSoundUnavailable => {
                "Alarms cannot sound: only the screen shows them (no sound server or stream)."
            }
            Self::CartridgeClaimConflict => {
                "A cartridge ran in two sessions: one claimed it while the clinic store was unreachable."
            }
            Self::ClinicStoreUnreachable => {
                "The clinic store cannot be reached: records wait at this station; other rooms' \
                 cartridges and treatments are not known."
            }
        }
    }

    /// What the operator should do.
    #[must_use]
    pub fn operator_action(self) -> &'static str {
        match self {
            Self::LinkLost => "Lift the pen from the skin; check the cable; wait for reconnection.",
            Self::PenFault => "Lift the pen; read the fault; reset the pen before continuing.",
            Self::Estop => "Make the client safe; find the cause; reset the pen to continue.",
            Self::RecordingFailed => {
                "Stop treating; free disk space or fix the storage; the session is not recorded."
            }
            Self::DepthRefused => "Choose a depth within the zone's limit, or change zone.",
            Self::DeepCaution => "Confirm the depth is intended for this zone and indication.",
            Self::StartRefused => "Read the reason (screening, zone, depth) and resolve it.",
            Self::TelemetryGaps => "Check the cable and the computer's load; plots may have holes.",
            Self::CalibrationDue => "Calibrate the pen before the next session.",
            Self::DepthOverLimit => {
                "Lift the pen; check the skin; take the pen out of service for a depth check."
            }
            Self::UnexpectedRun => "Lift the pen; take it out of service: it started by itself.",
            Self::TelemetryLost => {
                "Lift the pen; check the cable and that no other program drives the pen."
            }
            Self::Overspeed => "Lift the pen; take it out of service for a speed check.",
            Self::DepthOffTarget => {
                "Lift the pen; check the depth mechanism before resetting and going on."
            }
            Self::PenChanged => {
                "Check it is the pen intended, its cartridge and depth; then reset to go on."
            }
            Self::AlarmSoundUnavailable => {
                "Watch the screen; check the speakers and the sound server, or call service."
            }
            Self::CartridgeClaimConflict => {
                "Discard the cartridge; check the client of both sessions; report it as an incident."
            }
            Self::ClinicStoreUnreachable => {
                "Check the network or call IT; confirm each new cartridge came from a sealed pack."
            }
        }
    }
}

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlarmId {
    type Err = AlarmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AlarmError::UnknownAlarm {
                given: s.to_owned(),
            })
    }
}

/// An operator action the manager refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// The alarm is not active.
    #[error("alarm {id} is not active")]
    NotActive {
        /// The alarm.
        id: AlarmId,
    },
    /// A silence longer than the priority allows.
    #[error(
        "alarm {id} is {priority} priority: a silence may last at most {max_ms} ms, not {requested_ms} ms"
    )]
    SilenceTooLong {
        /// The alarm.
        id: AlarmId,
        /// Its priority.
        priority: Priority,
        /// The silence asked for, ms.
        requested_ms: u64,
        /// The longest allowed, ms.
        max_ms: u64,
    },
    /// A silence of no time: it would pause nothing.
    #[error(
        "a silence of 0 s pauses nothing: give the seconds the sound of alarm {id} should pause"
    )]
    SilenceEmpty {
        /// The alarm.
        id: AlarmId,
    },
    /// Clearing an alarm whose condition lasts.
    #[error("alarm {id} cannot be cleared while its condition lasts")]
    ConditionPresent {
        /// The alarm.
        id: AlarmId,
    },
    /// An id that is no alarm.
    #[error("unknown alarm id \"{given}\"; valid: {}", AlarmId::ALL.map(AlarmId::as_str).join(", "))]
    UnknownAlarm {
        /// The id as given.
        given: String,
    },
}

/// An active alarm, as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveAlarm {
    /// Which alarm.
    pub id: AlarmId,
    /// Its priority.
    pub priority: Priority,
    /// The latest detail from the condition.
    pub text: String,
    /// When it was raised, ms.
    pub raised_ms: u64,
    /// The operator has acknowledged it.
    pub acknowledged: bool,
    /// Audio silenced until then, ms.
    pub silenced_until_ms: Option<u64>,
    /// Its condition still lasts (false: a latched alarm waiting for acknowledgement).
    pub condition_present: bool,
}

impl ActiveAlarm {
    /// Whether it should sound at `now_ms`: not while silenced; not once acknowledged,
    /// except a high alarm, which a silence alone can pause.
    #[must_use]
    pub fn audible(&self, now_ms: u64) -> bool {
        audible(
            self.priority,
            self.acknowledged,
            self.silenced_until_ms,
            now_ms,
        )
    }
}

/// The rule behind [`ActiveAlarm::audible`], for the manager's own state too.
fn audible(
    priority: Priority,
    acknowledged: bool,
    silenced_until_ms: Option<u64>,
    now_ms: u64,
) -> bool {
    let silenced = silenced_until_ms.is_some_and(|until| now_ms < until);
    let acknowledged_quiet = acknowledged && priority != Priority::High;
    !silenced && !acknowledged_quiet
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmAction {
    /// The alarm became active.
    Raised,
    /// The operator acknowledged it.
    Acknowledged,
    /// The operator silenced its audio.
    Silenced {
        /// Until then, ms.
        until_ms: u64,
    },
    /// It stopped being active.
    Cleared,
}

/// One line of the alarm log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlarmLogEntry {
    /// When, ms.
    pub at_ms: u64,
    /// Which alarm.
    pub id: AlarmId,
    /// Its priority.
    pub priority: Priority,
    /// What happened.
    pub action: AlarmAction,
    /// The alarm's text at that moment.
    pub text: String,
}

/// A condition reported present, with its latest text.
#[derive(Debug, Clone)]
struct Condition {
    since_ms: u64,
    text: String,
}

/// A raised alarm.
#[derive(Debug, Clone)]
struct AlarmState {
    raised_ms: u64,
    text: String,
    acknowledged: bool,
    silenced_until_ms: Option<u64>,
}

/// The state of one alarm id.
#[derive(Debug, Clone, Default)]
struct Slot {
    condition: Option<Condition>,
    alarm: Option<AlarmState>,
}

/// Turns conditions into alarms and keeps the log. Pure: time comes in as `now_ms`.
#[derive(Debug, Clone, Default)]
pub struct AlarmManager {
    slots: BTreeMap<AlarmId, Slot>,
    log: Vec<AlarmLogEntry>,
}

impl AlarmManager {
    /// No conditions, no alarms.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The condition behind `id` is present (again): starts it, or refreshes its text.
    /// The alarm is raised at once if its delay is 0, otherwise by the first
    /// [`tick`](Self::tick) at or after `now_ms + delay_ms`.
    pub fn condition_present(&mut self, id: AlarmId, now_ms: u64, text: &str) {
        let slot = self.slots.entry(id).or_default();
        match &mut slot.condition {
            Some(c) => text.clone_into(&mut c.text),
            None => {
                slot.condition = Some(Condition {
                    since_ms: now_ms,
                    text: text.to_owned(),
                });
            }
        }
        if let Some(alarm) = &mut slot.alarm {
            // The operator sees the latest detail.
            text.clone_into(&mut alarm.text);
        }
        self.raise_if_due(id, now_ms);
    }

    /// The condition behind `id` has ended. A non-latching alarm clears; a latching
    /// one stays until acknowledged (or clears now if it already was). A condition that
    /// outlasted its delay without a tick still raises its alarm first, so it is logged.
    pub fn condition_ended(&mut self, id: AlarmId, now_ms: u64) {
        self.raise_if_due(id, now_ms);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.condition.take().is_none() {
            return;
        }
        let clears = slot
            .alarm
            .as_ref()
            .is_some_and(|a| !id.latching() || a.acknowledged);
        if clears {
            self.clear_now(id, now_ms);
        }
    }

    /// Raises every alarm whose condition has lasted its delay, and ends silences
    /// that have expired.
    pub fn tick(&mut self, now_ms: u64) {
        for id in AlarmId::ALL {
            self.raise_if_due(id, now_ms);
            if let Some(alarm) = self.slots.get_mut(&id).and_then(|s| s.alarm.as_mut())
                && alarm.silenced_until_ms.is_some_and(|until| now_ms >= until)
            {
                alarm.silenced_until_ms = None;
            }
        }
    }

    /// The operator has seen `id`. A latching alarm whose condition has ended is
    /// cleared; otherwise it stays active, acknowledged. Acknowledging twice is no
    /// error and logs once.
    pub fn acknowledge(&mut self, id: AlarmId, now_ms: u64) -> Result<(), AlarmError> {
        let slot = self.slots.get_mut(&id);
        let Some(slot) = slot.filter(|s| s.alarm.is_some()) else {
            return Err(AlarmError::NotActive { id });
        };
        let condition_present = slot.condition.is_some();
        let Some(alarm) = &mut slot.alarm else {
            return Err(AlarmError::NotActive { id });
        };
        if !alarm.acknowledged {
            alarm.acknowledged = true;
            let text = alarm.text.clone();
            self.log(now_ms, id, AlarmAction::Acknowledged, text);
        }
        if !condition_present {
            self.clear_now(id, now_ms);
        }
        Ok(())
    }

    /// Acknowledges every active alarm not yet acknowledged; returns how many.
    pub fn acknowledge_all(&mut self, now_ms: u64) -> usize {
        let pending: Vec<AlarmId> = self
            .active()
            .into_iter()
            .filter(|a| !a.acknowledged)
            .map(|a| a.id)
            .collect();
        for &id in &pending {
            // Each id is active, so acknowledging cannot fail.
            let _ = self.acknowledge(id, now_ms);
        }
        pending.len()
    }

    /// Silences `id`'s audio for `duration_ms` from `now_ms`: at most 2 min for a high
    /// alarm, 10 min otherwise. A new silence replaces the previous one.
    pub fn silence(
        &mut self,
        id: AlarmId,
        now_ms: u64,
        duration_ms: u64,
    ) -> Result<(), AlarmError> {
        let priority = id.priority();
        let max_ms = priority.max_silence_ms();
        let Some(alarm) = self.slots.get_mut(&id).and_then(|s| s.alarm.as_mut()) else {
            return Err(AlarmError::NotActive { id });
        };
        if duration_ms == 0 {
            return Err(AlarmError::SilenceEmpty { id });
        }
        if duration_ms > max_ms {
            return Err(AlarmError::SilenceTooLong {
                id,
                priority,
                requested_ms: duration_ms,
                max_ms,
            });
        }
        let until_ms = now_ms.saturating_add(duration_ms);
        alarm.silenced_until_ms = Some(until_ms);
        let text = alarm.text.clone();
        self.log(now_ms, id, AlarmAction::Silenced { until_ms }, text);
        Ok(())
    }

    /// Clears `id` (an operator reset); refused while its condition lasts.
    pub fn clear(&mut self, id: AlarmId, now_ms: u64) -> Result<(), AlarmError> {
        let Some(slot) = self.slots.get(&id).filter(|s| s.alarm.is_some()) else {
            return Err(AlarmError::NotActive { id });
        };
        if slot.condition.is_some() {
            return Err(AlarmError::ConditionPresent { id });
        }
        self.clear_now(id, now_ms);
        Ok(())
    }

    /// The active alarms: highest priority first, then the oldest first.
    #[must_use]
    pub fn active(&self) -> Vec<ActiveAlarm> {
        let mut active: Vec<ActiveAlarm> = self
            .slots
            .iter()
            .filter_map(|(&id, slot)| {
                slot.alarm.as_ref().map(|a| ActiveAlarm {
                    id,
                    priority: id.priority(),
                    text: a.text.clone(),
                    raised_ms: a.raised_ms,
                    acknowledged: a.acknowledged,
                    silenced_until_ms: a.silenced_until_ms,
                    condition_present: slot.condition.is_some(),
                })
            })
            .collect();
        // The id last makes the order total, so equal alarms never swap places.
        active.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.raised_ms.cmp(&b.raised_ms))
                .then(a.id.cmp(&b.id))
        });
        active
    }

    /// The alarm to show most prominently: the first of [`active`](Self::active).
    #[must_use]
    pub fn highest(&self) -> Option<ActiveAlarm> {
        self.active().into_iter().next()
    }

    /// The priority whose auditory signal should play at `now_ms`: the highest among
    /// the alarms that are [audible](ActiveAlarm::audible), or `None` for silence. A
    /// silenced medium alarm does not hold back a high one raised meanwhile: each
    /// alarm's silence is its own.
    #[must_use]
    pub fn sounding(&self, now_ms: u64) -> Option<Priority> {
        // Every tick asks: straight from the slots, nothing copied.
        self.slots
            .iter()
            .filter(|(id, _)| id.has_sound())
            .filter_map(|(id, slot)| {
                let a = slot.alarm.as_ref()?;
                audible(id.priority(), a.acknowledged, a.silenced_until_ms, now_ms)
                    .then(|| id.priority())
            })
            .max()
    }

    /// "Audio paused" as IEC 60601-1-8 asks the screen to show it: the alarm whose
    /// silence ends last among those still silenced at `now_ms`, and the ms left.
    /// `None` when no silence is running, and while a high or medium alarm sounds
    /// (the audio is not paused then: the silenced alarms say so in the list). A low
    /// alarm, whose two pulses play once, does not hide the pause.
    #[must_use]
    pub fn audio_paused(&self, now_ms: u64) -> Option<(AlarmId, u64)> {
        if matches!(
            self.sounding(now_ms),
            Some(Priority::High | Priority::Medium)
        ) {
            return None;
        }
        self.active()
            .into_iter()
            .filter_map(|a| {
                a.silenced_until_ms
                    .filter(|&until| until > now_ms)
                    .map(|until| (a.id, until - now_ms))
            })
            .max_by_key(|&(_, left_ms)| left_ms)
    }

    /// Whether `id` is active (raised and not cleared).
    #[must_use]
    pub fn is_active(&self, id: AlarmId) -> bool {
        self.slots.get(&id).is_some_and(|s| s.alarm.is_some())
    }

    /// Takes the log entries written since the last call, oldest first.
    pub fn drain_log(&mut self) -> Vec<AlarmLogEntry> {
        std::mem::take(&mut self.log)
    }

    fn raise_if_due(&mut self, id: AlarmId, now_ms: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.alarm.is_some() {
            return;
        }
        let Some(condition) = &slot.condition else {
            return;
        };
        if now_ms < condition.since_ms.saturating_add(id.delay_ms()) {
            return;
        }
        let text = condition.text.clone();
        slot.alarm = Some(AlarmState {
            raised_ms: now_ms,
            text: text.clone(),
            acknowledged: false,
            silenced_until_ms: None,
        });
        self.log(now_ms, id, AlarmAction::Raised, text);
    }

    fn clear_now(&mut self, id: AlarmId, now_ms: u64) {
        if let Some(alarm) = self.slots.get_mut(&id).and_then(|s| s.alarm.take()) {
            self.log(now_ms, id, AlarmAction::Cleared, alarm.text);
        }
    }

    fn log(&mut self, at_ms: u64, id: AlarmId, action: AlarmAction, text: String) {
        self.log.push(AlarmLogEntry {
            at_ms,
            id,
            priority: id.priority(),
            action,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_alarm_does_not_hide_a_silenced_high_alarms_pause() {
        let mut m = AlarmManager::new();
        m.condition_present(AlarmId::CalibrationDue, 0, "due soon");
        m.condition_present(AlarmId::LinkLost, 10, "lost");
        m.silence(AlarmId::LinkLost, 20, 30_000).expect("silenced");
        // The low alarm is what sounds now (its two pulses, once)...
        assert_eq!(m.sounding(20), Some(Priority::Low));
        // ...and the screen still says the high alarm's audio is paused.
        assert_eq!(m.audio_paused(20), Some((AlarmId::LinkLost, 30_000)));
    }

    #[test]
    fn the_sound_follows_the_highest_audible_alarm_and_shows_its_pause() {
        let mut m = AlarmManager::new();
        assert_eq!(m.sounding(0), None);
        m.condition_present(AlarmId::StartRefused, 0, "refused");
        m.condition_ended(AlarmId::StartRefused, 0);
        assert_eq!(m.sounding(0), Some(Priority::Medium));
        // Silenced for 60 s: quiet, and the screen counts down.
        m.silence(AlarmId::StartRefused, 1_000, 60_000)
            .expect("silenced");
        assert_eq!(m.sounding(1_000), None);
        assert_eq!(
            m.audio_paused(31_000),
            Some((AlarmId::StartRefused, 30_000))
        );
        // A high alarm raised meanwhile sounds at once; the medium stays paused.
        m.condition_present(AlarmId::LinkLost, 2_000, "lost");
        assert_eq!(m.sounding(2_000), Some(Priority::High));
        // The audio is not paused while it sounds: the screen must not say so.
        assert_eq!(m.audio_paused(2_000), None);
        assert!(
            m.silence(AlarmId::LinkLost, 2_000, 0).is_err(),
            "0 s pauses nothing"
        );
        // Acknowledging a high alarm whose condition lasts does not quiet it; a
        // silence does, for at most 2 min.
        m.acknowledge(AlarmId::LinkLost, 3_000).expect("acked");
        assert_eq!(m.sounding(3_000), Some(Priority::High));
        assert!(m.silence(AlarmId::LinkLost, 3_000, 120_001).is_err());
        m.silence(AlarmId::LinkLost, 3_000, 120_000)
            .expect("silenced");
        assert_eq!(m.sounding(3_000), None);
        assert_eq!(m.audio_paused(3_000), Some((AlarmId::LinkLost, 120_000)));
        // The medium's silence ends first: it sounds again while the high stays paused.
        m.tick(61_000);
        assert_eq!(m.sounding(61_000), Some(Priority::Medium));
        // The high's pause ends: it sounds again, as long as its condition lasts.
        m.tick(123_000);
        assert_eq!(m.sounding(123_000), Some(Priority::High));
        assert_eq!(m.audio_paused(123_000), None);
        // Its condition ends: acknowledged already, it clears; the medium is acked.
        m.condition_ended(AlarmId::LinkLost, 124_000);
        m.acknowledge(AlarmId::StartRefused, 124_000)
            .expect("acked");
        assert_eq!(m.sounding(124_000), None);
        // The sound's own alarm is medium and non-latching, and has no sound of its
        // own (it exists because none can play; when sound returns it clears).
        m.condition_present(AlarmId::AlarmSoundUnavailable, 125_000, "no server");
        assert!(m.is_active(AlarmId::AlarmSoundUnavailable));
        assert_eq!(m.sounding(125_000), None);
        assert_eq!(AlarmId::AlarmSoundUnavailable.priority(), Priority::Medium);
        assert!(!AlarmId::AlarmSoundUnavailable.latching());
        assert_eq!(
            "alarm_sound_unavailable".parse::<AlarmId>(),
            Ok(AlarmId::AlarmSoundUnavailable)
        );
    }

    /// One step of a scenario.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Present(AlarmId, u64, &'static str),
        Ended(AlarmId, u64),
        Tick(u64),
        Ack(AlarmId, u64),
        AckAll(u64, usize),
        Silence(AlarmId, u64, u64),
        Clear(AlarmId, u64),
    }

    /// Runs `steps`, expecting the errors listed in `errors` (step index, message), and
    /// compares the active alarms as `(id, acknowledged, condition_present)` and the log
    /// as `(at_ms, id, action)`.
    fn check(
        steps: &[Step],
        errors: &[(usize, &str)],
        expected_active: &[(AlarmId, bool, bool)],
        expected_log: &[(u64, AlarmId, AlarmAction)],
    ) {
        let mut m = AlarmManager::new();
        let mut got_errors = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let result = match *step {
                Step::Present(id, t, text) => {
                    m.condition_present(id, t, text);
                    Ok(())
                }
                Step::Ended(id, t) => {
                    m.condition_ended(id, t);
                    Ok(())
                }
                Step::Tick(t) => {
                    m.tick(t);
                    Ok(())
                }
                Step::Ack(id, t) => m.acknowledge(id, t),
                Step::AckAll(t, n) => {
                    assert_eq!(m.acknowledge_all(t), n, "step {i}");
                    Ok(())
                }
                Step::Silence(id, t, d) => m.silence(id, t, d),
                Step::Clear(id, t) => m.clear(id, t),
            };
            if let Err(e) = result {
                got_errors.push((i, e.to_string()));
            }
        }
        let expected_errors: Vec<(usize, String)> =
            errors.iter().map(|(i, e)| (*i, (*e).to_owned())).collect();
        assert_eq!(got_errors, expected_errors, "errors");
        let active: Vec<_> = m
            .active()
            .into_iter()
            .map(|a| (a.id, a.acknowledged, a.condition_present))
            .collect();
        assert_eq!(active, expected_active, "active");
        let log: Vec<_> = m
            .drain_log()
            .into_iter()
            .map(|e| (e.at_ms, e.id, e.action))
            .collect();
        assert_eq!(log, expected_log, "log");
        assert!(m.drain_log().is_empty(), "drained");
    }

    use AlarmAction::{Acknowledged, Cleared, Raised};
    use AlarmId::{
        CalibrationDue, DeepCaution, DepthRefused, Estop, LinkLost, PenFault, TelemetryGaps,
    };
    use Step::{Ack, AckAll, Clear, Ended, Present, Silence, Tick};

    #[test]
    fn table_of_priorities_latching_and_delays() {
        fn check(id: AlarmId, expected: (&str, Priority, bool, u64)) {
            assert_eq!(
                (id.as_str(), id.priority(), id.latching(), id.delay_ms()),
                expected
            );
            assert_eq!(id.as_str().parse::<AlarmId>(), Ok(id));
            assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{id}\"")));
        }
        use Priority::{High, Low, Medium};
        check(AlarmId::LinkLost, ("link_lost", High, true, 0));
        check(AlarmId::PenFault, ("pen_fault", High, true, 0));
        check(AlarmId::Estop, ("estop", High, true, 0));
        check(
            AlarmId::RecordingFailed,
            ("recording_failed", High, true, 0),
        );
        check(AlarmId::DepthRefused, ("depth_refused", Medium, true, 0));
        check(AlarmId::DeepCaution, ("deep_caution", Medium, false, 0));
        check(AlarmId::StartRefused, ("start_refused", Medium, true, 0));
        check(AlarmId::TelemetryGaps, ("telemetry_gaps", Low, false, 2000));
        check(AlarmId::CalibrationDue, ("calibration_due", Low, false, 0));
        check(AlarmId::DepthOverLimit, ("depth_over_limit", High, true, 0));
        check(AlarmId::UnexpectedRun, ("unexpected_run", High, true, 0));
        check(AlarmId::TelemetryLost, ("telemetry_lost", High, true, 0));
        check(AlarmId::Overspeed, ("overspeed", Medium, true, 0));
        check(
            AlarmId::DepthOffTarget,
            ("depth_off_target", Medium, true, 0),
        );
        check(AlarmId::PenChanged, ("pen_changed", Medium, true, 0));
        check(
            AlarmId::AlarmSoundUnavailable,
            ("alarm_sound_unavailable", Medium, false, 0),
        );
        check(
            AlarmId::CartridgeClaimConflict,
            ("cartridge_claim_conflict", High, true, 0),
        );
        check(
            AlarmId::ClinicStoreUnreachable,
            ("clinic_store_unreachable", Medium, false, 0),
        );
        assert!(High > Medium && Medium > Low);
        // Declared in the order of ALL: the tie-break between equal alarms.
        assert!(AlarmId::ALL.windows(2).all(|w| w[0] < w[1]));
        let mut manager = AlarmManager::new();
        manager.condition_present(AlarmId::Estop, 5, "E-stop (HOST)");
        manager.condition_present(AlarmId::DepthOverLimit, 5, "0.32 mm around the eyes");
        assert_eq!(
            manager.highest().map(|a| a.id),
            Some(AlarmId::DepthOverLimit),
            "the cause shows before the E-stop it caused"
        );
        assert_eq!(
            "siren".parse::<AlarmId>().map_err(|e| e.to_string()),
            Err(
                "unknown alarm id \"siren\"; valid: depth_over_limit, unexpected_run, \
                 telemetry_lost, link_lost, pen_fault, estop, recording_failed, \
                 cartridge_claim_conflict, overspeed, depth_off_target, pen_changed, \
                 alarm_sound_unavailable, clinic_store_unreachable, depth_refused, \
                 deep_caution, start_refused, telemetry_gaps, calibration_due"
                    .to_owned()
            )
        );
    }

    #[test]
    fn non_latching_alarm_clears_itself() {
        check(
            &[Present(DeepCaution, 10, "1.6 mm"), Ended(DeepCaution, 50)],
            &[],
            &[],
            &[(10, DeepCaution, Raised), (50, DeepCaution, Cleared)],
        );
    }

    #[test]
    fn latching_alarm_stays_until_acknowledged_after_its_condition_ends() {
        check(
            &[Present(LinkLost, 10, "no data"), Ended(LinkLost, 400)],
            &[],
            &[(LinkLost, false, false)],
            &[(10, LinkLost, Raised)],
        );
        check(
            &[
                Present(LinkLost, 10, "no data"),
                Ended(LinkLost, 400),
                Ack(LinkLost, 900),
            ],
            &[],
            &[],
            &[
                (10, LinkLost, Raised),
                (900, LinkLost, Acknowledged),
                (900, LinkLost, Cleared),
            ],
        );
        // Acknowledged while the condition lasts: stays, then clears when it ends.
        check(
            &[Present(Estop, 10, "button"), Ack(Estop, 20), Ack(Estop, 25)],
            &[],
            &[(Estop, true, true)],
            &[(10, Estop, Raised), (20, Estop, Acknowledged)],
        );
        check(
            &[
                Present(Estop, 10, "button"),
                Ack(Estop, 20),
                Ended(Estop, 30),
            ],
            &[],
            &[],
            &[
                (10, Estop, Raised),
                (20, Estop, Acknowledged),
                (30, Estop, Cleared),
            ],
        );
    }

    #[test]
    fn an_event_alarm_survives_its_instant_condition() {
        check(
            &[
                Present(DepthRefused, 5, "1.2 mm > 1.0 mm"),
                Ended(DepthRefused, 5),
                Tick(100),
            ],
            &[],
            &[(DepthRefused, false, false)],
            &[(5, DepthRefused, Raised)],
        );
    }

    #[test]
    fn cannot_clear_while_the_condition_lasts() {
        check(
            &[
                Present(PenFault, 0, "motor"),
                Clear(PenFault, 10),
                Ended(PenFault, 20),
                Clear(PenFault, 30),
                Clear(PenFault, 40),
            ],
            &[
                (
                    1,
                    "alarm pen_fault cannot be cleared while its condition lasts",
                ),
                (4, "alarm pen_fault is not active"),
            ],
            &[],
            &[(0, PenFault, Raised), (30, PenFault, Cleared)],
        );
    }

    #[test]
    fn silence_limits_by_priority() {
        let until = |until_ms| AlarmAction::Silenced { until_ms };
        check(
            &[
                Present(LinkLost, 0, ""),
                Silence(LinkLost, 10, 120_001),
                Silence(LinkLost, 10, 120_000),
                Present(TelemetryGaps, 0, ""),
                Tick(2_000),
                Silence(TelemetryGaps, 3_000, 600_001),
                Silence(TelemetryGaps, 3_000, 600_000),
                Silence(Estop, 3_000, 1),
            ],
            &[
                (
                    1,
                    "alarm link_lost is high priority: a silence may last at most 120000 ms, not 120001 ms",
                ),
                (
                    5,
                    "alarm telemetry_gaps is low priority: a silence may last at most 600000 ms, not 600001 ms",
                ),
                (7, "alarm estop is not active"),
            ],
            &[(LinkLost, false, true), (TelemetryGaps, false, true)],
            &[
                (0, LinkLost, Raised),
                (10, LinkLost, until(120_010)),
                (2_000, TelemetryGaps, Raised),
                (3_000, TelemetryGaps, until(603_000)),
            ],
        );
    }

    #[test]
    fn silence_expires_on_tick_and_gates_audio() {
        let mut m = AlarmManager::new();
        m.condition_present(LinkLost, 0, "no data");
        m.condition_present(DeepCaution, 0, "1.6 mm");
        assert!(m.silence(LinkLost, 100, 1_000).is_ok());
        let high = |m: &AlarmManager| m.active().into_iter().find(|a| a.id == LinkLost);
        assert_eq!(high(&m).and_then(|a| a.silenced_until_ms), Some(1_100));
        assert_eq!(high(&m).map(|a| a.audible(500)), Some(false));
        m.tick(1_099);
        assert_eq!(high(&m).and_then(|a| a.silenced_until_ms), Some(1_100));
        m.tick(1_100);
        assert_eq!(high(&m).and_then(|a| a.silenced_until_ms), None);
        assert_eq!(high(&m).map(|a| a.audible(1_100)), Some(true));
        // Acknowledged: a high alarm still sounds, a medium one goes quiet.
        assert_eq!(m.acknowledge_all(1_200), 2);
        assert_eq!(high(&m).map(|a| a.audible(1_200)), Some(true));
        let medium = m.active().into_iter().find(|a| a.id == DeepCaution);
        assert_eq!(medium.map(|a| a.audible(1_200)), Some(false));
    }

    #[test]
    fn delays_are_respected() {
        check(
            &[Present(TelemetryGaps, 1_000, "3 missing"), Tick(2_999)],
            &[],
            &[],
            &[],
        );
        check(
            &[
                Present(TelemetryGaps, 1_000, "3 missing"),
                Tick(2_999),
                Tick(3_000),
            ],
            &[],
            &[(TelemetryGaps, false, true)],
            &[(3_000, TelemetryGaps, Raised)],
        );
        // Gaps that end before the delay never raise.
        check(
            &[
                Present(TelemetryGaps, 1_000, "3 missing"),
                Ended(TelemetryGaps, 2_500),
                Tick(4_000),
            ],
            &[],
            &[],
            &[],
        );
        // A refresh does not restart the delay.
        check(
            &[
                Present(TelemetryGaps, 1_000, "3 missing"),
                Present(TelemetryGaps, 2_000, "9 missing"),
                Tick(3_000),
            ],
            &[],
            &[(TelemetryGaps, false, true)],
            &[(3_000, TelemetryGaps, Raised)],
        );
        // Lasted past the delay with no tick in between: raised, then cleared.
        check(
            &[
                Present(TelemetryGaps, 1_000, "3 missing"),
                Ended(TelemetryGaps, 3_500),
            ],
            &[],
            &[],
            &[
                (3_500, TelemetryGaps, Raised),
                (3_500, TelemetryGaps, Cleared),
            ],
        );
    }

    #[test]
    fn active_is_ordered_by_priority_then_age() {
        let mut m = AlarmManager::new();
        assert_eq!(m.highest(), None);
        m.condition_present(CalibrationDue, 0, "due");
        m.condition_present(DeepCaution, 10, "1.6 mm");
        m.condition_present(DepthRefused, 20, "1.2 mm");
        assert_eq!(m.highest().map(|a| a.id), Some(DeepCaution));
        m.condition_present(Estop, 30, "button");
        m.condition_present(LinkLost, 40, "no data");
        let order: Vec<AlarmId> = m.active().into_iter().map(|a| a.id).collect();
        assert_eq!(
            order,
            [Estop, LinkLost, DeepCaution, DepthRefused, CalibrationDue]
        );
        let top = m.highest().expect("active");
        assert_eq!(
            (top.id, top.priority, top.text.as_str(), top.raised_ms),
            (Estop, Priority::High, "button", 30)
        );
        assert!(m.is_active(CalibrationDue));
        assert!(!m.is_active(TelemetryGaps));
    }

    #[test]
    fn the_log_records_every_transition_with_its_time_and_text() {
        use Priority::{High, Medium};
        let mut m = AlarmManager::new();
        m.condition_present(LinkLost, 100, "no data for 500 ms");
        m.condition_present(LinkLost, 150, "no data for 550 ms");
        let _ = m.silence(LinkLost, 200, 60_000);
        m.condition_ended(LinkLost, 300);
        let _ = m.acknowledge(LinkLost, 400);
        m.condition_present(DepthRefused, 500, "1.2 mm > 1.0 mm");
        m.condition_ended(DepthRefused, 500);
        let _ = m.clear(DepthRefused, 600);
        let log = m.drain_log();
        let got: Vec<_> = log
            .iter()
            .map(|e| (e.at_ms, e.id, e.priority, e.action, e.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (100, LinkLost, High, Raised, "no data for 500 ms"),
                (
                    200,
                    LinkLost,
                    High,
                    AlarmAction::Silenced { until_ms: 60_200 },
                    "no data for 550 ms"
                ),
                (400, LinkLost, High, Acknowledged, "no data for 550 ms"),
                (400, LinkLost, High, Cleared, "no data for 550 ms"),
                (500, DepthRefused, Medium, Raised, "1.2 mm > 1.0 mm"),
                (600, DepthRefused, Medium, Cleared, "1.2 mm > 1.0 mm"),
            ]
        );
    }

    #[test]
    fn acknowledge_all_counts_and_errors_name_the_alarm() {
        check(
            &[
                Present(LinkLost, 0, ""),
                Present(DepthRefused, 0, ""),
                Ended(DepthRefused, 0),
                Present(DeepCaution, 0, ""),
                AckAll(10, 3),
                AckAll(20, 0),
                Ack(CalibrationDue, 30),
            ],
            &[(6, "alarm calibration_due is not active")],
            &[(LinkLost, true, true), (DeepCaution, true, true)],
            &[
                (0, LinkLost, Raised),
                (0, DepthRefused, Raised),
                (0, DeepCaution, Raised),
                (10, LinkLost, Acknowledged),
                (10, DepthRefused, Acknowledged),
                (10, DepthRefused, Cleared),
                (10, DeepCaution, Acknowledged),
            ],
        );
    }

    #[test]
    fn a_latched_alarm_whose_condition_returns_stays_unacknowledged() {
        check(
            &[
                Present(LinkLost, 0, "a"),
                Ended(LinkLost, 10),
                Present(LinkLost, 20, "b"),
                Ack(LinkLost, 30),
            ],
            &[],
            &[(LinkLost, true, true)],
            &[(0, LinkLost, Raised), (30, LinkLost, Acknowledged)],
        );
    }

    #[test]
    fn times_at_the_edges_do_not_panic() {
        let mut m = AlarmManager::new();
        m.condition_present(TelemetryGaps, u64::MAX, "late");
        m.tick(u64::MAX);
        assert!(m.is_active(TelemetryGaps));
        assert!(m.silence(TelemetryGaps, u64::MAX, 600_000).is_ok());
        m.condition_ended(TelemetryGaps, 0);
        assert!(!m.is_active(TelemetryGaps));
    }
}
