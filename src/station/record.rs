//! From the station's types to a session record's lines ([`crate::record::format`]).
//!
//! Kept apart from the station's logic so the file's vocabulary is in one place:
//! wire words for states and commands, stable ids for rules, alarms and zones.

use crate::link::{Answer, LinkState, Outcome, WireOrigin};
use crate::protocol::{Calibration, Command, PenEvent, PenInfo, Seq, Telemetry};
use crate::record::format::{
    AlarmLine, AnswerLine, CalibrationRecord, CommandLine, EventLine, LinkLine, MonitorLine,
    PenInfoRecord, RefusalLine, TelLine, ZoneLine,
};
use crate::safety::alarms::{AlarmAction, AlarmLogEntry};
use crate::safety::interlock::{PenChange, Refusal, ZonePlan};
use crate::safety::needle::Trip;
use crate::safety::zones::ZoneId;

/// The station's UTC wall-clock, ms since the Unix epoch.
#[must_use]
pub fn utc_ms_now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A telemetry sample.
#[must_use]
pub fn tel(utc_ms: i64, t: &Telemetry) -> TelLine {
    TelLine {
        utc_ms,
        n: t.n,
        t_ms: t.t_ms,
        state: t.state.into(),
        rpm: t.rpm,
        depth_um: t.depth_um,
        current_ma: t.current_ma,
        temp_dc: t.temp_dc,
    }
}

/// A command written to the pen.
#[must_use]
///
/// `account`: who was signed in when an operator's command went out (the link's own
/// commands carry none).
pub fn command(
    utc_ms: i64,
    seq: Seq,
    command: &Command,
    origin: WireOrigin,
    account: Option<&str>,
) -> CommandLine {
    CommandLine {
        utc_ms,
        seq: u32::from(seq.get()),
        command: command.to_string(),
        origin: origin.as_str().to_owned(),
        account: (origin == WireOrigin::Owner)
            .then_some(account)
            .flatten()
            .map(str::to_owned),
    }
}

/// How a command ended (a refusal is a [`refusal`] line instead).
#[must_use]
pub fn answer(
    utc_ms: i64,
    seq: Option<Seq>,
    command: &Command,
    outcome: &Outcome,
    round_trip: Option<std::time::Duration>,
) -> AnswerLine {
    let (result, detail) = match outcome {
        Outcome::Ack => ("ACK".to_owned(), None),
        Outcome::Nak(reason) => (format!("NAK {}", reason.as_str()), None),
        Outcome::Unanswered => ("UNANSWERED".to_owned(), None),
        Outcome::NotSent(why) => ("NOT_SENT".to_owned(), Some(why.clone())),
        Outcome::Refused(refusal) => ("REFUSED".to_owned(), Some(refusal.to_string())),
    };
    AnswerLine {
        utc_ms,
        seq: seq.map(|s| u32::from(s.get())),
        command: command.to_string(),
        result,
        detail,
        rtt_us: round_trip.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
    }
}

/// An owner's command's end.
#[must_use]
pub fn owner_answer(utc_ms: i64, a: &Answer) -> AnswerLine {
    answer(utc_ms, a.seq, &a.command, &a.outcome, a.round_trip)
}

/// A command the interlock refused.
#[must_use]
pub fn refusal(
    utc_ms: i64,
    command: &Command,
    refusal: &Refusal,
    zone: Option<ZoneId>,
) -> RefusalLine {
    RefusalLine {
        utc_ms,
        command: command.to_string(),
        rule: refusal.rule.as_str().to_owned(),
        message: refusal.message.clone(),
        zone: zone.map(|z| z.as_str().to_owned()),
    }
}

/// A pen event.
#[must_use]
pub fn event(utc_ms: i64, t_ms: u32, event: &PenEvent) -> EventLine {
    EventLine {
        utc_ms,
        t_ms,
        event: event.to_string(),
    }
}

/// An alarm transition.
#[must_use]
///
/// `account`: who was signed in, kept for an acknowledgement or a silence (an
/// operator's act).
pub fn alarm(utc_ms: i64, entry: &AlarmLogEntry, account: Option<&str>) -> AlarmLine {
    let action = match entry.action {
        AlarmAction::Raised => "raised",
        AlarmAction::Acknowledged => "acknowledged",
        AlarmAction::Silenced { .. } => "silenced",
        AlarmAction::Cleared => "cleared",
    };
    AlarmLine {
        utc_ms,
        alarm: entry.id.as_str().to_owned(),
        priority: entry.priority.as_str().to_owned(),
        action: action.to_owned(),
        text: entry.text.clone(),
        account: matches!(
            entry.action,
            AlarmAction::Acknowledged | AlarmAction::Silenced { .. }
        )
        .then_some(account)
        .flatten()
        .map(str::to_owned),
    }
}

/// A zone made active.
#[must_use]
pub fn zone(utc_ms: i64, plan: &ZonePlan) -> ZoneLine {
    ZoneLine {
        utc_ms,
        zone: plan.zone.as_str().to_owned(),
        limit_um: plan.limit_um,
        halt_first: plan.halt_first,
        lowered_from_um: plan.lower_depth.map(|(from, _)| from),
        lowered_to_um: plan.lower_depth.map(|(_, to)| to),
    }
}

/// A link state change.
#[must_use]
pub fn link(utc_ms: i64, state: &LinkState) -> LinkLine {
    let (state, detail) = match state {
        LinkState::Connecting { last_error, .. } => ("connecting", last_error.clone()),
        LinkState::Handshaking => ("handshaking", None),
        LinkState::Connected { info, .. } => (
            "connected",
            Some(format!("{} {} fw {}", info.model, info.serial, info.fw)),
        ),
        LinkState::Lost(reason) => ("lost", Some(reason.to_string())),
        LinkState::Closed => ("closed", None),
    };
    LinkLine {
        utc_ms,
        state: state.to_owned(),
        detail,
    }
}

/// A needle monitor stop.
#[must_use]
pub fn monitor(utc_ms: i64, trip: &Trip, reaction: std::time::Duration) -> MonitorLine {
    MonitorLine {
        utc_ms,
        rule: trip.rule.as_str().to_owned(),
        zone: trip.zone.map(|z| z.as_str().to_owned()),
        limit_um: trip.limit_um,
        target_um: trip.target_um,
        depth_um: trip.depth_um,
        rpm: trip.rpm,
        t_ms: trip.t_ms,
        reaction_us: u64::try_from(reaction.as_micros()).unwrap_or(u64::MAX),
        message: trip.message.clone(),
    }
}

/// A different pen answered.
#[must_use]
pub fn pen_changed(utc_ms: i64, change: &PenChange) -> LinkLine {
    LinkLine {
        utc_ms,
        state: "pen_changed".to_owned(),
        detail: Some(format!(
            "serial {} before, {} now",
            change.from_serial, change.to_serial
        )),
    }
}

/// The pen's INFO.
#[must_use]
pub fn pen_info(info: &PenInfo) -> PenInfoRecord {
    PenInfoRecord {
        model: info.model.clone(),
        serial: info.serial.clone(),
        fw: info.fw.clone(),
        proto: info.proto,
        boot: info.boot,
        depth_max_um: info.depth_max_um,
        depth_step_um: info.depth_step_um,
        speed_min_rpm: info.speed_min_rpm,
        speed_max_rpm: info.speed_max_rpm,
        watchdog_ms: info.watchdog_ms,
        tel_max_hz: info.tel_max_hz,
    }
}

/// The pen's calibration.
#[must_use]
pub fn calibration(cal: &Calibration) -> CalibrationRecord {
    CalibrationRecord {
        depth_offset_um: cal.depth_offset_um,
        depth_gain_ppm: cal.depth_gain_ppm,
        speed_gain_ppm: cal.speed_gain_ppm,
        date: cal.date,
        tech: cal.tech.clone(),
    }
}
