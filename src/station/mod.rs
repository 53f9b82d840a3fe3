//! The station core: the owner of the link, shared by the console (and the window).
//!
//! It turns what the link reports into alarms, looks cartridges up in the registry,
//! opens and closes sessions (screening, the same-zone interval, aftercare), and keeps
//! per-zone figures. It holds no safety rule of its own: it tells the interlock what
//! only the station knows, and the interlock, in the link thread, decides.

pub mod admin;
mod clinic;
pub mod people;
pub mod record;
pub mod session;
pub mod setup;
mod steps;
pub mod technician;
#[cfg(test)]
mod technician_tests;

use crate::sound::{Sound, SoundStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use jiff::civil::Date;

use crate::link::{Answer, Link, LinkEvent, LinkState, LinkStats, Outcome, RequestId, WireEvent};
use crate::protocol::{Calibration, Command, PenEvent, PenInfo, PenState, Telemetry};
use crate::record::format::{Header, Line, NoteLine, SummaryLine, ZoneSummary};
use crate::record::writer::{RecordError, Recorder, SESSIONS_DIR};
use crate::safety::aftercare::same_zone_allowed;
use crate::safety::alarms::{AlarmId, AlarmLogEntry, AlarmManager};
use crate::safety::interlock::{
    self, CartridgeCheck, Refusal, Rule, SafetySummary, SafetyUpdate, SessionFacts, ZonePlan,
};
use crate::safety::screening::{self, ScreeningAnswers, ScreeningOutcome};
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::store::accounts::Role;
use crate::store::{CartridgeRegistry, DataDir, StoreError, TreatmentHistory};
use crate::timeseries::{Channel, TimeSeries};
use session::{Session, SessionSummary};

/// The alarm log in the data folder.
pub const ALARM_LOG_FILE: &str = "alarms.jsonl";

/// One line of the alarm log file: the entry, with the wall-clock time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AlarmLogRecord {
    /// UTC time of the transition.
    pub at: jiff::Timestamp,
    /// The session open at the time, if any.
    pub session_id: Option<String>,
    /// The transition.
    #[serde(flatten)]
    pub entry: AlarmLogEntry,
}

/// Days before the calibration falls due from which `calibration_due` is raised.
pub const CALIBRATION_WARN_DAYS: i32 = crate::calibration::status::DUE_SOON_DAYS;

/// Something the station wants its front end to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// An alarm was raised, acknowledged, silenced or cleared.
    Alarm(AlarmLogEntry),
    /// The link changed state.
    Link(LinkState),
    /// The pen reported an event.
    Pen(PenEvent),
    /// The interlock carried out a zone plan.
    ZonePlan(ZonePlan),
    /// Something for the operator to read.
    Info(String),
    /// A command asked with [`Station::request`] ended (the console waits instead).
    Answer(Answer),
    /// A session's record was closed with this summary: the final figures, which
    /// include the needle's run-down after the session's closing `HALT` (the summary
    /// [`Station::end_session`] returned was taken before it).
    SessionClosed(Box<SessionSummary>),
}

/// Why a station operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// The link thread is gone.
    #[error("the link thread has ended")]
    LinkClosed,
    /// The link's command queue is full.
    #[error("the link is busy; try again")]
    LinkBusy,
    /// No answer in time.
    #[error("no answer from the link within {0:?}")]
    Timeout(Duration),
    /// The data folder failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The screening file is invalid.
    #[error("screening: {0}")]
    Screening(String),
    /// No session is open.
    #[error("no session is open")]
    NoSession,
    /// A session is already open.
    #[error("session {0} is already open; end it first")]
    SessionOpen(String),
    /// The session's record could not be started: the session does not open.
    #[error("the session cannot be recorded, so it does not open: {0}")]
    Recording(RecordError),
    /// The open session's record can no longer be written (a full disk, a vanished
    /// folder): what was asked is not in the record.
    #[error("not recorded: recording failed: {0}")]
    NotRecorded(String),
    /// A line built from what was typed would be too long for any reader.
    #[error("{0}")]
    TooLong(RecordError),
    /// Technician mode or a calibration refused, and why.
    #[error("{0}")]
    Technician(String),
    /// The pen did not carry out a command asked of it: the command and its end.
    #[error("{0}")]
    Pen(String),
    /// A step of the procedure was refused, nothing recorded: why.
    #[error("step refused: {0}")]
    Step(crate::safety::procedure::StepError),
    /// Who is at the station does not allow it (nobody signed in, locked, a role
    /// missing), or a sign-in or an account change was refused: why.
    #[error("{0}")]
    Access(String),
}

/// How long one telemetry gap keeps the `telemetry_gaps` condition present, ms.
const GAP_CONDITION_MS: u64 = 750;

/// How long the station waits for one answer from the link.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The station: link, alarms, data folder, session.
pub struct Station {
    link: Link,
    data: DataDir,
    registry: CartridgeRegistry,
    history: TreatmentHistory,
    zones: ZoneTable,
    alarms: AlarmManager,
    started: Instant,
    session: Option<Session>,
    summary: Option<SafetySummary>,
    link_state: LinkState,
    info: Option<PenInfo>,
    calibration: Option<Calibration>,
    last_telemetry: Option<Telemetry>,
    /// When the last sample arrived (the owner's view: the window says how old it is).
    last_telemetry_at: Option<Instant>,
    /// The link has just connected: the next sample shows the state the pen was found
    /// in.
    awaiting_first_sample: bool,
    stats: LinkStats,
    gaps_seen: u64,
    gaps_last_ms: u64,
    notices: Vec<Notice>,
    answers: BTreeMap<RequestId, Answer>,
    applied: BTreeMap<RequestId, Result<Option<ZonePlan>, Refusal>>,
    pending_requests: BTreeSet<RequestId>,
    pending_safety: BTreeSet<RequestId>,
    sessions_opened: u32,
    series: TimeSeries,
    channels: SeriesChannels,
    speed_target_rpm: Option<i64>,
    series_rejected: u64,
    recorder: Option<Recorder>,
    /// Why the open session's record stopped being written, once it has: every
    /// command that would add to it says so from then on.
    record_failure: Option<String>,
    closing: Option<Closing>,
    simulated: bool,
    desk: technician::Desk,
    last_gauge_um: Option<i32>,
    /// The operator's `RUN` the link holds until the needle is in place, and what
    /// the screen says meanwhile.
    held_start: Option<(RequestId, String)>,
    /// What each start claimed in the data folder, until its `RUN` is answered: a
    /// start that did not happen releases them.
    pending_claims: BTreeMap<RequestId, Claims>,
    /// The interlock's verdicts on prechecks, until taken.
    prechecked: BTreeMap<RequestId, Result<(), Refusal>>,
    /// The session records as last read (header and summary of each): the course of
    /// treatment at each opening. Refreshed before it is used.
    library: crate::record::Library,
    /// Who is at the station: sign-in, the lock, the accounts.
    people: people::People,
    /// The last closed session's record, until its practitioner signs it.
    unsigned: Option<people::UnsignedRecord>,
    /// The alarms' sound: follows the alarms on every tick.
    sound: SoundFollower,
    /// The sound's state as the open session's record last says it (the header, then
    /// `sound` lines).
    sound_recorded: Option<SoundStatus>,
    /// The sound's status generation and whether a session was recorded when the
    /// station last looked ([`Self::watch_sound`]).
    sound_seen: Option<(u64, bool)>,
    /// The clinic store, when the station is part of one.
    clinic: Option<clinic::ClinicPart>,
}

/// The station's hold on the alarm sound: a station that goes (a disconnect, the
/// end) silences what its alarms were sounding.
struct SoundFollower(Sound);

impl Drop for SoundFollower {
    fn drop(&mut self) {
        self.0.follow(None);
    }
}

/// What one start claimed in the data folder (only what it claimed itself).
#[derive(Debug, Clone, Default)]
struct Claims {
    session_id: String,
    client: String,
    date: Option<Date>,
    cartridge: Option<crate::protocol::CartridgeId>,
    zone: Option<ZoneId>,
}

/// A record whose session has ended, kept open until the pen answers the session's
/// closing `HALT` (the window does not wait for it), so the record holds it.
#[derive(Debug)]
struct Closing {
    /// The session, whose figures take every line until the record closes.
    session: Session,
    /// When the session ended, on the wall clock (the summary's label).
    ended_utc_ms: i64,
    /// When the session ended on the record's monotonic clock: `duration_ms`.
    ended_mono_ms: i64,
    /// The day it ended, for the next session's dates.
    today: Date,
    /// The closing `HALT` request, if it could be sent.
    halt: Option<RequestId>,
    /// Closed then in any case.
    deadline: Instant,
    /// What ended the session other than the operator (`signal SIGTERM`), for the
    /// summary line.
    ended_by: Option<String>,
}

/// How long a closing record waits for the pen's answer to the closing `HALT`: its
/// three retries and then some.
const CLOSING_WAIT: Duration = Duration::from_secs(1);

/// The live plots' channels in [`Station::series`].
#[derive(Debug, Clone, Copy)]
pub struct SeriesChannels {
    /// Measured speed, rpm.
    pub rpm: Channel,
    /// Target speed, rpm.
    pub target_rpm: Channel,
    /// Actual depth, mm.
    pub depth_mm: Channel,
    /// Target depth, mm.
    pub target_depth_mm: Channel,
    /// The active zone's limit, mm.
    pub limit_mm: Channel,
}

/// Samples the live store keeps: 4 h at 1000 Hz. Beyond that its own policy bounds
/// memory (see `timeseries`).
pub const SERIES_CAPACITY_SAMPLES: usize = 4 * 3600 * 1000;

impl Station {
    /// A station owning `link`, with its data folder.
    pub fn new(link: Link, data: DataDir, zones: ZoneTable) -> Result<Self, StationError> {
        let mut registry = CartridgeRegistry::load(&data)?;
        let mut history = TreatmentHistory::load(&data)?;
        // The session records are the durable account of what was treated and which
        // cartridges ran; the two stores' own files are read too (and written as
        // before), so either alone keeps the rules.
        let library = crate::record::Library::scan(&data.path(SESSIONS_DIR));
        learn_from_records(&library, &mut history, &mut registry);
        let (series, channels) = new_series();
        let (desk, desk_warning) = technician::Desk::load(&data);
        let data_for_people = data.clone();
        let mut station = Self {
            link,
            data,
            registry,
            history,
            zones,
            alarms: AlarmManager::new(),
            started: Instant::now(),
            session: None,
            summary: None,
            link_state: LinkState::Connecting {
                attempt: 0,
                last_error: None,
                port_problem: None,
            },
            info: None,
            calibration: None,
            last_telemetry: None,
            last_telemetry_at: None,
            awaiting_first_sample: false,
            stats: LinkStats::default(),
            gaps_seen: 0,
            gaps_last_ms: 0,
            notices: Vec::new(),
            answers: BTreeMap::new(),
            applied: BTreeMap::new(),
            pending_requests: BTreeSet::new(),
            pending_safety: BTreeSet::new(),
            sessions_opened: 0,
            series,
            channels,
            speed_target_rpm: None,
            series_rejected: 0,
            recorder: None,
            record_failure: None,
            closing: None,
            simulated: false,
            desk,
            last_gauge_um: None,
            held_start: None,
            pending_claims: BTreeMap::new(),
            prechecked: BTreeMap::new(),
            library,
            people: people::People::new(crate::store::accounts::Accounts::of(&data_for_people)),
            unsigned: None,
            sound: SoundFollower(Sound::off()),
            sound_recorded: None,
            sound_seen: None,
            clinic: None,
        };
        if let Ok((settings, _)) = crate::store::StationSettings::load(&station.data) {
            station.set_idle_lock(Duration::from_mins(u64::from(settings.idle_lock_min)));
        }
        if let Some(warning) = desk_warning {
            station
                .notices
                .push(Notice::Info(format!("data folder: {warning}")));
        }
        for warning in station
            .registry
            .warnings()
            .iter()
            .chain(station.history.warnings())
            .chain(&station.library.warnings)
        {
            station
                .notices
                .push(Notice::Info(format!("data folder: {warning}")));
        }
        Ok(station)
    }

    /// Milliseconds since the station started: the alarms' clock.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn today() -> Date {
        jiff::Zoned::now().date()
    }

    /// Takes the notices gathered since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Handles whatever the link has sent, waiting at most `timeout` for the first.
    pub fn pump(&mut self, timeout: Duration) {
        self.link.feed_liveness();
        let events = self.link.events().clone();
        let telemetry = self.link.telemetry().clone();
        select! {
            recv(events) -> e => if let Ok(e) = e { self.on_link_event(e) },
            recv(telemetry) -> t => if let Ok(t) = t { self.on_telemetry(t) },
            default(timeout) => {},
        }
        while let Ok(t) = telemetry.try_recv() {
            self.on_telemetry(t);
        }
        while let Ok(e) = events.try_recv() {
            self.on_link_event(e);
        }
        self.tick();
    }

    fn tick(&mut self) {
        self.drive_calibration();
        self.check_idle_lock();
        self.clinic_tick();
        if let Some(e) = self.recorder.as_ref().and_then(Recorder::failure) {
            self.on_record_error(&e);
        }
        if self
            .closing
            .as_ref()
            .is_some_and(|c| Instant::now() >= c.deadline)
        {
            self.finish_closing();
        }
        let now = self.now_ms();
        // Gaps are a condition only while they keep coming: one gap holds it for
        // GAP_CONDITION_MS, so a single dropped sample (or a short burst) ends before
        // the alarm's 2 s delay and only gaps that persist raise it.
        if self.gaps_last_ms > 0 && now.saturating_sub(self.gaps_last_ms) > GAP_CONDITION_MS {
            self.alarms.condition_ended(AlarmId::TelemetryGaps, now);
        }
        self.watch_sound(now);
        self.alarms.tick(now);
        // The highest audible alarm sounds; the thread hears only changes.
        self.sound.0.follow(self.alarms.sounding(now));
        let entries = self.alarms.drain_log();
        if entries.is_empty() {
            return;
        }
        let path = self.data.path(ALARM_LOG_FILE);
        let mut failed = None;
        for entry in entries {
            let record = AlarmLogRecord {
                at: jiff::Timestamp::now(),
                session_id: self.session.as_ref().map(|s| s.id.clone()),
                entry: entry.clone(),
            };
            if let Err(e) = crate::store::jsonl::append(&path, &record) {
                failed = Some(e.to_string());
            }
            if self.recorder.is_some() {
                if entry.action == crate::safety::alarms::AlarmAction::Raised
                    && let Some(session) = self.recorded_session()
                {
                    session.alarms_raised += 1;
                }
                let account = self.signed_in().map(|s| s.id().to_owned());
                self.record(Line::Alarm(record::alarm(
                    record.at.as_millisecond(),
                    &entry,
                    account.as_deref(),
                )));
            }
            self.notices.push(Notice::Alarm(entry));
        }
        if let Some(why) = failed
            && !self.alarms.is_active(AlarmId::RecordingFailed)
        {
            self.recording_failed(&format!("cannot write the alarm log: {why}"));
            for entry in self.alarms.drain_log() {
                self.notices.push(Notice::Alarm(entry));
            }
        }
    }

    fn on_telemetry(&mut self, t: Telemetry) {
        self.technician_telemetry(&t);
        self.record_sample(&t);
        if let Some(session) = self.recorded_session() {
            session.samples += 1;
            self.record(Line::Tel(record::tel(record::utc_ms_now(), &t)));
        }
        let previous = self.last_telemetry.map(|p| p.state);
        self.last_telemetry = Some(t);
        self.last_telemetry_at = Some(Instant::now());
        // A pen found stopped (FAULT or ESTOP from before this connection) is an alarm
        // too: the interlock has latched a stop for it, and the operator must see why
        // starts are refused. Only the first sample of a connection tells that; later
        // stops come with their own events.
        let now = self.now_ms();
        let first_of_connection = std::mem::take(&mut self.awaiting_first_sample);
        match t.state {
            _ if !first_of_connection => {}
            PenState::Fault if !self.alarms.is_active(AlarmId::PenFault) => {
                self.alarms.condition_present(
                    AlarmId::PenFault,
                    now,
                    "the pen was found in FAULT at connection (its cause came before); reset \
                     needed",
                );
            }
            PenState::Estop if !self.alarms.is_active(AlarmId::Estop) => {
                self.alarms.condition_present(
                    AlarmId::Estop,
                    now,
                    "the pen was found in ESTOP at connection (stopped before); reset needed",
                );
            }
            _ => {}
        }
        if previous == Some(PenState::Fault) && t.state != PenState::Fault {
            self.alarms
                .condition_ended(AlarmId::PenFault, self.now_ms());
        }
        if previous == Some(PenState::Estop) && t.state != PenState::Estop {
            self.alarms.condition_ended(AlarmId::Estop, self.now_ms());
        }
    }

    /// The session whose record is open: the open one, or one whose record waits for
    /// its closing `HALT`.
    fn recorded_session(&mut self) -> Option<&mut Session> {
        match (&mut self.session, &mut self.closing) {
            (Some(session), _) => Some(session),
            (None, Some(closing)) => Some(&mut closing.session),
            (None, None) => None,
        }
    }

    fn on_link_event(&mut self, event: LinkEvent) {
        let now = self.now_ms();
        if self.recorded_session().is_some() {
            self.record_link_event(&event);
        }
        if self.technician_event(&event) {
            return;
        }
        let closing_halt_answered = matches!(
            (&event, &self.closing),
            (LinkEvent::Answer(a), Some(Closing { halt: Some(id), .. })) if a.id == *id
        );
        match event {
            LinkEvent::State(state) => {
                match &state {
                    LinkState::Connected { info, calibration } => {
                        self.awaiting_first_sample = true;
                        self.info = Some(info.clone());
                        self.calibration = Some(calibration.clone());
                        self.alarms.condition_ended(AlarmId::LinkLost, now);
                        self.check_calibration_due();
                    }
                    LinkState::Lost(reason) => {
                        let text =
                            format!("link to the pen lost: {reason}; the motor is assumed stopped");
                        self.alarms.condition_present(AlarmId::LinkLost, now, &text);
                        if let Some(session) = &mut self.session {
                            session.interruptions += 1;
                        }
                    }
                    _ => {}
                }
                self.link_state = state.clone();
                self.notices.push(Notice::Link(state));
            }
            LinkEvent::Answer(answer) => self.on_answer(answer),
            LinkEvent::Pen { event, .. } => self.on_pen_event(event),
            LinkEvent::Calibration(cal) => {
                self.calibration = Some(cal);
                self.check_calibration_due();
            }
            LinkEvent::Info(info) => self.info = Some(info),
            LinkEvent::Stats(stats) => {
                if stats.telemetry_gaps > self.gaps_seen {
                    self.gaps_seen = stats.telemetry_gaps;
                    self.gaps_last_ms = now;
                    let text =
                        format!("telemetry gaps: {} samples lost so far", stats.samples_lost);
                    self.alarms
                        .condition_present(AlarmId::TelemetryGaps, now, &text);
                }
                self.stats = stats;
            }
            LinkEvent::SafetyApplied { id, result } => {
                if let Ok(Some(plan)) = &result {
                    self.notices.push(Notice::ZonePlan(*plan));
                    // A new zone ends a caution asked for in the old one, unless the
                    // depth target itself is still deep.
                    let deep = self
                        .summary
                        .as_ref()
                        .and_then(|s| s.depth_target_um)
                        .is_some_and(|d| d.min(plan.limit_um) > interlock::DEEP_CAUTION_UM);
                    if !deep {
                        self.alarms.condition_ended(AlarmId::DeepCaution, now);
                    }
                }
                if self.pending_safety.remove(&id) {
                    if let Err(refusal) = result {
                        self.notices
                            .push(Notice::Info(format!("refused: {refusal}")));
                    }
                } else {
                    self.applied.insert(id, result);
                }
            }
            LinkEvent::Safety(summary) => self.on_summary(summary),
            LinkEvent::EstopConfirmed => {
                self.notices
                    .push(Notice::Info("the pen confirmed the E-stop".into()));
            }
            LinkEvent::OwnerStalled => {
                self.notices.push(Notice::Info(
                    "the station stalled; heartbeats were held back".into(),
                ));
            }
            LinkEvent::Gauge { true_um } => self.last_gauge_um = Some(true_um),
            event @ (LinkEvent::NeedleStopped { .. }
            | LinkEvent::StartHeld { .. }
            | LinkEvent::PenChanged(_)) => self.on_needle_news(event, now),
            LinkEvent::Prechecked { id, result } => {
                self.prechecked.insert(id, result);
            }
            LinkEvent::OwnerResumed | LinkEvent::Wire(_) => {}
        }
        if closing_halt_answered {
            self.finish_closing();
        }
    }

    /// What the link says of the needle: a monitor stop, a start held until the needle
    /// is in place, a new pen.
    fn on_needle_news(&mut self, event: LinkEvent, now: u64) {
        match event {
            LinkEvent::NeedleStopped { trip, .. } => {
                let alarm = AlarmId::of_monitor(trip.rule);
                // An event: the alarm latches until the operator acknowledges it.
                self.alarms.condition_present(alarm, now, &trip.message);
                self.alarms.condition_ended(alarm, now);
                if let Some(session) = &mut self.session {
                    session.interruptions += 1;
                }
                self.notices.push(Notice::Info(format!(
                    "needle monitor: {}; E-stop sent, reset needed",
                    trip.message
                )));
            }
            LinkEvent::StartHeld {
                id,
                target_um,
                depth_um,
                refusal,
            } => {
                let text = match (target_um, depth_um) {
                    _ if refusal.rule == Rule::TelemetryStale => format!(
                        "start waiting for the pen's telemetry: {}; Stop cancels",
                        refusal
                            .message
                            .strip_prefix("start refused: ")
                            .unwrap_or(&refusal.message)
                    ),
                    (Some(target), Some(depth)) => format!(
                        "starting when the needle reaches {} (now {}); Stop cancels",
                        interlock::mm(i64::from(target)),
                        interlock::mm(i64::from(depth))
                    ),
                    _ => format!("start waiting: {}; Stop cancels", refusal.message),
                };
                self.notices.push(Notice::Info(text.clone()));
                self.held_start = Some((id, text));
            }
            LinkEvent::PenChanged(change) => {
                let text = format!(
                    "a different pen answered (serial {} before, {} now): its calibration, \
                     cartridge and depth are judged afresh; reset to go on",
                    change.from_serial, change.to_serial
                );
                self.alarms
                    .condition_present(AlarmId::PenChanged, now, &text);
                self.alarms.condition_ended(AlarmId::PenChanged, now);
                self.notices.push(Notice::Info(text));
            }
            _ => {}
        }
    }

    /// The lines a link event adds to the open session's record.
    fn record_link_event(&mut self, event: &LinkEvent) {
        let utc_ms = record::utc_ms_now();
        let line = match event {
            LinkEvent::State(state) => Line::Link(record::link(utc_ms, state)),
            LinkEvent::Answer(answer) => match &answer.outcome {
                Outcome::Refused(refusal) => Line::Refusal(record::refusal(
                    utc_ms,
                    &answer.command,
                    refusal,
                    self.summary.as_ref().and_then(|s| s.zone),
                )),
                _ => Line::Answer(record::owner_answer(utc_ms, answer)),
            },
            LinkEvent::Pen { t_ms, event } => Line::Event(record::event(utc_ms, *t_ms, event)),
            LinkEvent::Wire(WireEvent::Sent {
                seq,
                command,
                origin,
            }) => Line::Command(record::command(
                utc_ms,
                *seq,
                command,
                *origin,
                self.signed_in().map(crate::store::accounts::SignedIn::id),
            )),
            LinkEvent::Wire(WireEvent::Answered {
                seq,
                command,
                outcome,
                round_trip,
                ..
            }) => Line::Answer(record::answer(
                utc_ms,
                Some(*seq),
                command,
                outcome,
                Some(*round_trip),
            )),
            LinkEvent::SafetyApplied {
                result: Ok(Some(plan)),
                ..
            } => Line::Zone(record::zone(utc_ms, plan)),
            LinkEvent::NeedleStopped { trip, reaction } => {
                Line::Monitor(record::monitor(utc_ms, trip, *reaction))
            }
            LinkEvent::PenChanged(change) => Line::Link(record::pen_changed(utc_ms, change)),
            LinkEvent::SafetyApplied {
                result: Err(refusal),
                ..
            } => Line::Refusal(crate::record::format::RefusalLine {
                utc_ms,
                command: "(safety update)".to_owned(),
                rule: refusal.rule.as_str().to_owned(),
                message: refusal.message.clone(),
                zone: self
                    .summary
                    .as_ref()
                    .and_then(|s| s.zone)
                    .map(|z| z.as_str().to_owned()),
            }),
            _ => return,
        };
        self.record(line);
    }

    /// Hands a line to the open session's recorder, and to its figures (the summary is
    /// computed from exactly the lines the record holds); a failure stops the needle.
    fn record(&mut self, line: Line) {
        if let Some(session) = self.recorded_session() {
            session.figures.on_line(&line);
        }
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        if let Err(e) = recorder.record(line) {
            self.on_record_error(&e);
        }
    }

    /// The record cannot be written: stop recording, stop the needle, raise the
    /// alarm, and have the interlock refuse any start until a new session opens.
    fn on_record_error(&mut self, e: &RecordError) {
        // Dropping the recorder flushes what it still can.
        self.recorder = None;
        let why = e.to_string();
        self.record_failure = Some(why.clone());
        self.recording_failed(&why);
        let _ = self
            .link
            .update_safety(SafetyUpdate::RecordingFailed(why.clone()));
        self.notices
            .push(Notice::Info(format!("recording failed: {why}")));
    }

    fn on_summary(&mut self, summary: SafetySummary) {
        let now = self.now_ms();
        // Deep caution lasts while the depth target is above 1.5 mm, in treatment: on
        // the bench (technician mode) there is no client, and calibration goes to 2.5 mm.
        let deep = |s: &SafetySummary| {
            !s.technician
                && s.depth_target_um
                    .is_some_and(|d| d > interlock::DEEP_CAUTION_UM)
        };
        let entered_bench =
            summary.technician && !self.summary.as_ref().is_some_and(|s| s.technician);
        if deep(&summary) {
            let text = format!(
                "depth target {} is above 1.50 mm (not evaluated in DEN160029)",
                interlock::mm(i64::from(summary.depth_target_um.unwrap_or_default()))
            );
            self.alarms
                .condition_present(AlarmId::DeepCaution, now, &text);
        } else if self.summary.as_ref().is_some_and(deep) || entered_bench {
            self.alarms.condition_ended(AlarmId::DeepCaution, now);
        }
        // A cartridge the registry has not judged yet: judge it now, on what the data
        // folder says now (another station may have used it since the last look).
        if let Some(c) = &summary.cartridge
            && c.check == CartridgeCheck::Unchecked
        {
            self.refresh_stores();
            let session_id = self.session.as_ref().map(|s| s.id.clone());
            let check = self.cartridge_check(c.id, session_id.as_deref());
            let _ = self
                .link
                .update_safety(SafetyUpdate::CartridgeChecked { id: c.id, check });
        }
        self.summary = Some(summary);
    }

    fn on_pen_event(&mut self, event: PenEvent) {
        let now = self.now_ms();
        match event {
            PenEvent::Estop(source) => {
                let text = format!("emergency stop ({}); reset needed", source.as_str());
                self.alarms.condition_present(AlarmId::Estop, now, &text);
            }
            PenEvent::Fault(code) => {
                let text = format!("the pen stopped itself: FAULT {code}; reset needed");
                self.alarms.condition_present(AlarmId::PenFault, now, &text);
                if let Some(session) = &mut self.session {
                    session.interruptions += 1;
                }
            }
            // The BOOT a pen sends when it powers up before the station first meets it
            // is no fault; a BOOT from a pen the station was already talking to is.
            PenEvent::Boot { boot, reason } if self.info.is_some() => {
                self.info = None;
                let text = format!(
                    "the pen rebooted (boot {boot}, {}); reset needed",
                    reason.as_str()
                );
                self.alarms.condition_present(AlarmId::PenFault, now, &text);
                if let Some(session) = &mut self.session {
                    session.interruptions += 1;
                }
            }
            _ => {}
        }
        self.notices.push(Notice::Pen(event));
    }

    fn on_answer(&mut self, answer: Answer) {
        let now = self.now_ms();
        if self
            .held_start
            .as_ref()
            .is_some_and(|(id, _)| *id == answer.id)
        {
            self.held_start = None;
        }
        if let Some(claims) = self.pending_claims.remove(&answer.id)
            && answer.outcome != Outcome::Ack
        {
            self.release_claims(&claims);
        }
        match &answer.outcome {
            Outcome::Refused(refusal) => {
                let alarm = match refusal.rule {
                    Rule::DeepCaution => Some(AlarmId::DeepCaution),
                    _ if answer.command == Command::Run => Some(AlarmId::StartRefused),
                    Rule::DepthAboveLimit | Rule::DepthInvalid | Rule::NoZone
                        if matches!(answer.command, Command::Depth { .. }) =>
                    {
                        Some(AlarmId::DepthRefused)
                    }
                    _ => None,
                };
                if let Some(alarm) = alarm {
                    self.alarms.condition_present(alarm, now, &refusal.message);
                    // A refusal is an event: its condition ends at once; the latching
                    // alarm stays until acknowledged. The deep caution lasts while
                    // the operator has not acknowledged it.
                    if alarm != AlarmId::DeepCaution {
                        self.alarms.condition_ended(alarm, now);
                    }
                }
            }
            Outcome::Ack if answer.command == Command::Run => self.on_run_acknowledged(),
            Outcome::Ack if matches!(answer.command, Command::Speed { .. }) => {
                if let Command::Speed { rpm } = answer.command {
                    self.speed_target_rpm = Some(rpm);
                }
            }
            Outcome::Ack if answer.command == Command::Reset => {
                for id in [AlarmId::Estop, AlarmId::PenFault, AlarmId::LinkLost] {
                    self.alarms.condition_ended(id, now);
                }
            }
            _ => {}
        }
        if self.pending_requests.remove(&answer.id) {
            self.notices.push(Notice::Answer(answer));
        } else {
            self.answers.insert(answer.id, answer);
        }
    }

    fn on_run_acknowledged(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(cartridge) = self.summary.as_ref().and_then(|s| s.cartridge.clone()) else {
            return;
        };
        let id_text = cartridge.id.to_string();
        if session.cartridges.contains(&id_text) {
            return;
        }
        session.cartridges.push(id_text);
        // The start claimed it already (nothing is written again); a start that did
        // not claim (none does today) records it here.
        let result = self.registry.mark_used(
            cartridge.id,
            &session.id,
            &session.answers.client,
            jiff::Timestamp::now(),
        );
        self.record(Line::Cartridge(crate::record::format::CartridgeLine {
            utc_ms: record::utc_ms_now(),
            id: cartridge.id.to_string(),
            needles: cartridge.needles,
        }));
        if let Err(e) = result {
            self.recording_failed(&format!(
                "cannot record cartridge {} as used: {e}",
                cartridge.id
            ));
        }
    }

    /// A record could not be written: raise the high alarm and stop the needle, so
    /// treatment never goes on unrecorded.
    fn recording_failed(&mut self, why: &str) {
        let now = self.now_ms();
        self.alarms
            .condition_present(AlarmId::RecordingFailed, now, why);
        let _ = self.link.send(Command::Halt);
    }

    fn check_calibration_due(&mut self) {
        use crate::calibration::CalibrationStatus as S;
        let now = self.now_ms();
        let Some(cal) = &self.calibration else { return };
        // One rule for the alarm, the window and the console: `calibration::status`.
        let due_text = match crate::calibration::calibration_status(cal, Self::today()) {
            S::Valid { .. } => None,
            S::Never => Some(
                "the pen is not calibrated (date 0: never, or a calibration did not finish): \
                 calibrate it"
                    .to_owned(),
            ),
            status @ S::NotADate { .. } => Some(format!("the pen's calibration: {status}")),
            S::DueSoon {
                valid_until,
                days_left,
                ..
            } => Some(format!(
                "the pen's calibration is valid until {valid_until}: due in {days_left} days"
            )),
            S::Overdue { overdue_since, .. } => Some(format!(
                "the pen's calibration is overdue since {overdue_since}"
            )),
        };
        match due_text {
            Some(text) => self
                .alarms
                .condition_present(AlarmId::CalibrationDue, now, &text),
            None => self.alarms.condition_ended(AlarmId::CalibrationDue, now),
        }
    }

    // ----- operator requests -----

    /// Sends a pen command through the interlock without waiting; its end comes back
    /// as [`Notice::Answer`]. For front ends whose frame loop must never block. (A
    /// start goes through [`Self::start`], which claims first.)
    pub fn request(&mut self, command: Command) -> Result<RequestId, StationError> {
        self.require_for(&command)?;
        let id = self.link.send(command).map_err(link_error)?;
        self.pending_requests.insert(id);
        Ok(id)
    }

    /// Tells the interlock `update` without waiting (the zone plan comes back as
    /// [`Notice::ZonePlan`], a refusal as [`Notice::Info`]).
    pub fn request_safety(&mut self, update: SafetyUpdate) -> Result<RequestId, StationError> {
        self.require(None)?;
        let id = self.link.update_safety(update).map_err(link_error)?;
        self.pending_safety.insert(id);
        Ok(id)
    }

    /// Sends a pen command through the interlock and waits for its end. A `RUN` goes
    /// through [`Self::start_and_wait`], which claims the cartridge and zone first.
    pub fn command(&mut self, command: Command) -> Result<Answer, StationError> {
        if command == Command::Run {
            return self.start_and_wait();
        }
        self.require_for(&command)?;
        let id = self.link.send(command).map_err(link_error)?;
        self.wait_answer(id)
    }

    /// Every operator command but `HALT` needs an active account (signed in, not
    /// locked): a stop is never held back.
    fn require_for(&self, command: &Command) -> Result<(), StationError> {
        if *command == Command::Halt {
            return Ok(());
        }
        self.require(None).map(|_| ())
    }

    /// Waits for the end of request `id`.
    fn wait_answer(&mut self, id: RequestId) -> Result<Answer, StationError> {
        self.wait_for(|station| station.answers.remove(&id))
    }

    /// Pumps the link's events until `take` finds what was waited for, at most
    /// [`ANSWER_WAIT`] ([`StationError::Timeout`] then).
    fn wait_for<T>(
        &mut self,
        mut take: impl FnMut(&mut Self) -> Option<T>,
    ) -> Result<T, StationError> {
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            if let Some(found) = take(self) {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StationError::Timeout(ANSWER_WAIT));
            }
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// Tells the interlock `update` and waits for its result. An operator's update:
    /// needs an active account.
    pub fn safety(
        &mut self,
        update: SafetyUpdate,
    ) -> Result<Result<Option<ZonePlan>, Refusal>, StationError> {
        self.require(None)?;
        self.safety_from_station(update)
    }

    /// [`Self::safety`] for what the station itself tells the interlock.
    fn safety_from_station(
        &mut self,
        update: SafetyUpdate,
    ) -> Result<Result<Option<ZonePlan>, Refusal>, StationError> {
        let id = self.link.update_safety(update).map_err(link_error)?;
        self.wait_for(|station| station.applied.remove(&id))
    }

    /// The interlock's verdict on `command` now, without sending it.
    fn precheck(&mut self, command: Command) -> Result<Result<(), Refusal>, StationError> {
        let id = self.link.precheck(command).map_err(link_error)?;
        self.wait_for(|station| station.prechecked.remove(&id))
    }

    /// Emergency stop: the byte goes out at once.
    pub fn estop(&mut self) -> Result<(), StationError> {
        self.link.estop().map_err(link_error)?;
        let now = self.now_ms();
        self.alarms.condition_present(
            AlarmId::Estop,
            now,
            "emergency stop (station); reset needed",
        );
        self.tick();
        Ok(())
    }

    /// Opens a session from a screening answers file's text.
    ///
    /// The session's practitioner is the signed-in account, which must hold the
    /// practitioner role; a screening file naming someone else is said, not followed.
    pub fn open_session(&mut self, json: &str) -> Result<ScreeningOutcome, StationError> {
        let who = self.require(Some(Role::Practitioner))?;
        if let Some(s) = &self.session {
            return Err(StationError::SessionOpen(s.id.clone()));
        }
        if let Some(technician) = self.technician() {
            return Err(StationError::Technician(format!(
                "technician mode is on ({technician}): leave it before a treatment session"
            )));
        }
        // The last session's record is closed before a new one opens.
        self.finish_closing();
        let today = Self::today();
        let mut answers: ScreeningAnswers = screening::parse_answers_checked(json, today)
            .map_err(|e| StationError::Screening(e.to_string()))?;
        if answers.practitioner != who.id() {
            self.notices.push(Notice::Info(format!(
                "the screening file names practitioner {}; the session's practitioner is the \
                 signed-in account {}",
                answers.practitioner,
                who.id()
            )));
            who.id().clone_into(&mut answers.practitioner);
        }
        let outcome = screening::evaluate(&answers, today);
        if !outcome.passed() {
            return Ok(outcome);
        }
        // The clinic's zone table first: a limit changed in another room holds here
        // from this session on.
        self.refresh_clinic_zone_table();
        self.sessions_opened += 1;
        // Unique across stations too: two stations sharing a data folder may open a
        // session for one client in the same second, and the cartridge and zone rules
        // tell sessions apart by their ids.
        let id = format!(
            "{}-{}-{}{:06x}",
            jiff::Zoned::now().strftime("%Y%m%dT%H%M%S"),
            answers.client,
            self.sessions_opened,
            station_tag() & 0xFF_FFFF
        );
        // What other stations have written since the last look counts too.
        self.refresh_stores();
        let mut last_treated = BTreeMap::new();
        // Other rooms' treatments too, when the clinic store answers; else the
        // history is marked incomplete (on screen, and in the record once it opens).
        let clinic_history = self.clinic_history(&answers.client).unwrap_or_default();
        for (zone, date) in self
            .history
            .zones_for(&answers.client)
            .into_iter()
            .chain(clinic_history)
        {
            match zone.parse::<ZoneId>() {
                Ok(zone) => {
                    let last = last_treated.entry(zone).or_insert(date);
                    *last = (*last).max(date);
                }
                // Never silently: a hand-edited line the 4-week rule cannot use.
                Err(e) => self.notices.push(Notice::Info(format!(
                    "data folder: a treatment of {} on {date} names {e}: the 4-week rule \
                     cannot use it",
                    answers.client
                ))),
            }
        }
        let facts = SessionFacts {
            session_id: id.clone(),
            client: answers.client.clone(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated,
            preparation: crate::safety::procedure::Preparation::default(),
        };
        // The record first: a session that cannot be recorded does not open.
        let sound_at_open = self.sound.0.status();
        let recorder = self.start_record(&id, &answers, json, &sound_at_open)?;
        let record_path = recorder.path().to_path_buf();
        if let Err(e) = self.safety_from_station(SafetyUpdate::Session(Some(facts))) {
            // Dropping the recorder leaves a header-only record, read back as
            // interrupted: the attempt is on file.
            drop(recorder);
            return Err(e);
        }
        // The course: what the records say now (other stations' sessions included).
        self.library.refresh(&self.data.path(SESSIONS_DIR));
        let past = crate::client::past_sessions(self.library.of_client(&answers.client));
        let course = crate::safety::course::opening(answers.indication, &past, today);
        let mut session = Session::new(id, answers, outcome.clone(), today);
        session.course = Some(course);
        session.opened_s = self.now_s();
        session.opened_at = recorder.opened();
        session.axis_utc_ms = record::utc_ms_now() - recorder.mono_ms();
        session.procedure = self.procedure_settings();
        session.record_path = Some(record_path);
        self.session = Some(session);
        self.recorder = Some(recorder);
        // Said in the record now that there is one.
        self.clinic_state_into_record();
        // What the header says; a change from here on is a `sound` line.
        self.sound_recorded = Some(sound_at_open);
        self.record_failure = None;
        // A cartridge judged for no session (or another) is judged again for this one.
        if let Some(c) = self.summary.as_ref().and_then(|s| s.cartridge.clone()) {
            let check = self.cartridge_check(c.id, None);
            let _ = self.safety_from_station(SafetyUpdate::CartridgeChecked { id: c.id, check })?;
        }
        Ok(outcome)
    }

    /// The registry's verdict on cartridge `id` for session `session_id`, on what it
    /// has read so far.
    fn cartridge_check(
        &self,
        id: crate::protocol::CartridgeId,
        session_id: Option<&str>,
    ) -> CartridgeCheck {
        match self.registry.used_outside(id, session_id) {
            Some(used) => CartridgeCheck::UsedBefore {
                session_id: used.session_id.clone(),
            },
            None => CartridgeCheck::Fresh,
        }
    }

    /// Reads what other stations appended to the registry and the history since the
    /// last look. A read error is said, and the rules go on with what was read (the
    /// start's own claim re-reads under the lock, and refuses on an error).
    fn refresh_stores(&mut self) {
        let results = [self.registry.refresh(), self.history.refresh()];
        for result in results {
            match result {
                Ok(warnings) => {
                    for w in warnings {
                        self.notices.push(Notice::Info(format!("data folder: {w}")));
                    }
                }
                Err(e) => self.notices.push(Notice::Info(format!("data folder: {e}"))),
            }
        }
    }

    /// Asks the pen to start the needle, without waiting; the end comes back as
    /// [`Notice::Answer`]. First, in the data folder and under its locks, the cartridge
    /// and the zone are claimed for the open session on what every station has
    /// written until now, and the interlock is told: a cartridge another session
    /// holds, or a zone treated for this client within 4 weeks by another session,
    /// and the interlock refuses the start. A start that does not happen releases
    /// what it claimed. The interlock in the link decides, as for every command.
    pub fn start(&mut self) -> Result<RequestId, StationError> {
        let id = self.send_start()?;
        self.pending_requests.insert(id);
        Ok(id)
    }

    /// [`Self::start`], waiting for the pen's answer (the console).
    pub fn start_and_wait(&mut self) -> Result<Answer, StationError> {
        let id = self.send_start()?;
        self.wait_answer(id)
    }

    /// Claims for the start, sends `RUN`, and keeps the claims until its answer says
    /// whether they stand (released unless the pen acknowledged it).
    fn send_start(&mut self) -> Result<RequestId, StationError> {
        // The interlock refuses too (`not_signed_in`, `role_missing`); asked here first
        // so nothing is claimed for a start that cannot happen.
        let role = if self.technician().is_some() {
            Role::Technician
        } else {
            Role::Practitioner
        };
        self.require(Some(role))?;
        let claims = self.claim_for_start()?;
        let id = match self.link.send(Command::Run) {
            Ok(id) => id,
            Err(e) => {
                // No RUN went to the link: nothing will answer it, so nothing would
                // release what was claimed for it.
                if let Some(claims) = &claims {
                    self.release_claims(claims);
                }
                return Err(link_error(e));
            }
        };
        if let Some(claims) = claims {
            self.pending_claims.insert(id, claims);
        }
        Ok(id)
    }

    /// Claims the inserted cartridge and the active zone for the open session, and
    /// tells the interlock what the data folder says now. `None`: nothing to claim
    /// (no session, or technician mode: the interlock judges those starts).
    fn claim_for_start(&mut self) -> Result<Option<Claims>, StationError> {
        if self.technician().is_some() {
            return Ok(None);
        }
        let Some(session) = &self.session else {
            return Ok(None);
        };
        let (session_id, client) = (session.id.clone(), session.answers.client.clone());
        // A start the interlock refuses for another reason claims nothing: it would
        // only keep another station from a cartridge or a zone until released.
        if let Err(refusal) = self.precheck(Command::Run)?
            && !refusal.rule.is_transient()
            && !matches!(
                refusal.rule,
                Rule::CartridgeUnchecked
                    | Rule::CartridgeUsed
                    | Rule::ZoneTreatedRecently
                    // The store is asked again: it may answer now.
                    | Rule::SealedPackUnconfirmed
                    | Rule::ClinicStoreRequired
            )
        {
            return Ok(None);
        }
        // Says what changed in the files since the last look (the claims below read on
        // under the locks themselves).
        self.refresh_stores();
        let today = Self::today();
        let mut claims = Claims {
            session_id: session_id.clone(),
            client: client.clone(),
            date: Some(today),
            ..Claims::default()
        };
        let summary = self.summary.clone();
        if let Some(c) = summary.as_ref().and_then(|s| s.cartridge.as_ref()) {
            // The clinic store first (every room's claims), then the data folder.
            let in_store = self.clinic_cartridge(c.id, &session_id, &client);
            let claimed = match &in_store {
                clinic::StoreCartridge::HeldBy(other) => Ok(crate::store::CartridgeClaim::UsedIn(
                    crate::store::CartridgeUse::new(c.id, other, &client, jiff::Timestamp::now()),
                )),
                _ => self
                    .registry
                    .claim(c.id, &session_id, &client, jiff::Timestamp::now()),
            };
            let check = match claimed {
                Ok(crate::store::CartridgeClaim::Claimed { new }) => {
                    if new {
                        claims.cartridge = Some(c.id);
                    }
                    if matches!(in_store, clinic::StoreCartridge::Unreachable) {
                        self.offline_check(c.id)
                    } else {
                        CartridgeCheck::Fresh
                    }
                }
                Ok(crate::store::CartridgeClaim::UsedIn(used)) => CartridgeCheck::UsedBefore {
                    session_id: used.session_id,
                },
                Err(e) => {
                    self.release_claims(&claims);
                    return Err(StationError::Store(e));
                }
            };
            // Not waited for: the link takes its commands in order, so the interlock
            // has this before the RUN that follows.
            self.request_safety(SafetyUpdate::CartridgeChecked { id: c.id, check })?;
        }
        if let Some(zone) = summary.as_ref().and_then(|s| s.zone) {
            // The clinic store first: a treatment in another room within 4 weeks
            // refuses the start (the interlock judges on that day).
            let in_store = self.clinic_zone(&client, zone.as_str(), today, &session_id);
            let store_day = match in_store {
                clinic::StoreZone::TreatedOn(day) => Some(day),
                _ => None,
            };
            let claimed = if store_day.is_some() {
                Ok(crate::store::ZoneClaim::Claimed { new: false })
            } else {
                self.history
                    .claim(&client, zone.as_str(), today, &session_id, |last| {
                        last.is_none_or(|last| same_zone_allowed(last, today))
                    })
            };
            match claimed {
                Ok(crate::store::ZoneClaim::Claimed { new: true }) => claims.zone = Some(zone),
                Ok(_) => {}
                Err(e) => {
                    self.release_claims(&claims);
                    return Err(StationError::Store(e));
                }
            }
            // The interlock judges on what every station has written until now.
            let mut history: BTreeMap<ZoneId, Date> = self
                .history
                .zones_for_other(&client, Some(&session_id))
                .into_iter()
                .filter_map(|(zone, date)| zone.parse::<ZoneId>().ok().map(|z| (z, date)))
                .collect();
            // Every room's treatments the store told of (now, at the opening, at
            // earlier starts): kept while the store is away.
            for (z, day) in self
                .store_history_of(&client)
                .into_iter()
                .chain(store_day.map(|day| (zone, day)))
            {
                let last = history.entry(z).or_insert(day);
                *last = (*last).max(day);
            }
            self.request_safety(SafetyUpdate::ZoneHistory(history))?;
        }
        self.wake_clinic();
        Ok(Some(claims))
    }

    /// Releases what a start claimed, when the start did not happen. A failure to
    /// write the release leaves the claim standing, which errs on the safe side (the
    /// cartridge counts as used, the zone as treated today): it is said.
    fn release_claims(&mut self, claims: &Claims) {
        let now = jiff::Timestamp::now();
        if let Some(id) = claims.cartridge
            && let Err(e) = self
                .registry
                .release(id, &claims.session_id, &claims.client, now)
        {
            self.notices.push(Notice::Info(format!(
                "cartridge {id} stays claimed for session {}: {e}",
                claims.session_id
            )));
        }
        if let (Some(zone), Some(date)) = (claims.zone, claims.date)
            && let Err(e) =
                self.history
                    .release(&claims.client, zone.as_str(), date, &claims.session_id)
        {
            self.notices.push(Notice::Info(format!(
                "{zone} stays recorded as treated for {}: {e}",
                claims.client
            )));
        }
    }

    /// Creates the session's record and writes its header.
    fn start_record(
        &self,
        id: &str,
        answers: &ScreeningAnswers,
        json: &str,
        sound: &SoundStatus,
    ) -> Result<Recorder, StationError> {
        let now = jiff::Zoned::now();
        let header = Header {
            utc_ms: now.timestamp().as_millisecond(),
            format: crate::record::FORMAT_NAME.to_owned(),
            version: crate::record::FORMAT_VERSION,
            station_version: env!("CARGO_PKG_VERSION").to_owned(),
            session_id: id.to_owned(),
            // Local time with its offset: the clinic's date is what the 4-week rule
            // counts in.
            opened_at: now.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            practitioner: answers.practitioner.clone(),
            client: answers.client.clone(),
            // The answers file parsed as answers, so it is JSON.
            screening: serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
            pen: self.info.as_ref().map(record::pen_info),
            calibration: self.calibration.as_ref().map(record::calibration),
            zones: serde_json::from_str(&self.zones.to_json()).unwrap_or(serde_json::Value::Null),
            zones_hash: self.zones.hash_hex().to_owned(),
            simulated: self.simulated,
            alarm_sound: Some(sound.to_string()),
        };
        Recorder::create(&self.data.path(SESSIONS_DIR), &header).map_err(StationError::Recording)
    }

    /// Gives the station the alarm sound to drive (by default [`Sound::off`]). From the
    /// next tick the highest audible alarm sounds through it, and a sound that cannot
    /// play is the `alarm_sound_unavailable` alarm.
    pub fn set_sound(&mut self, sound: Sound) {
        self.sound.0.follow(None);
        self.sound = SoundFollower(sound);
        self.sound_seen = None;
    }

    /// Plays each priority's signal once ("Test alarm sound"), unless an alarm sounds.
    ///
    /// # Errors
    /// Why it cannot ([`Sound::test_all`]).
    pub fn test_alarm_sound(&self) -> Result<(), String> {
        // A low alarm plays its burst once: after it, a test covers nothing.
        let sounding = self.alarms.sounding(self.now_ms());
        self.sound.0.test_all(matches!(
            sounding,
            Some(crate::safety::alarms::Priority::High | crate::safety::alarms::Priority::Medium)
        ))
    }

    /// The alarm sound the station drives.
    #[must_use]
    pub fn sound(&self) -> &Sound {
        &self.sound.0
    }

    /// An alarm system that cannot sound is an alarm condition: raised while the
    /// sound is unavailable (with its reason), ended once it works. A station without
    /// sound (`off`) has chosen silence; one still starting has not failed yet.
    fn watch_sound(&mut self, now: u64) {
        // Every tick comes here: only a new status, or a session opened or closed
        // since, is worth reading the status for.
        let seen = (self.sound.0.generation(), self.recorder.is_some());
        if self.sound_seen == Some(seen) {
            return;
        }
        self.sound_seen = Some(seen);
        let status = self.sound.0.status();
        // The record tells whether alarms could be heard throughout: every change
        // while the session is open is a line.
        if self.recorder.is_none() {
            self.sound_recorded = None;
        } else if self.sound_recorded.as_ref() != Some(&status) {
            self.record(Line::Sound(crate::record::format::SoundLine {
                utc_ms: record::utc_ms_now(),
                state: status.word().to_owned(),
                detail: status.to_string(),
            }));
            self.sound_recorded = Some(status.clone());
        }
        match status {
            SoundStatus::Unavailable { reason } => self.alarms.condition_present(
                AlarmId::AlarmSoundUnavailable,
                now,
                &format!("alarms cannot sound: {reason}"),
            ),
            SoundStatus::Working { .. } | SoundStatus::Off => {
                self.alarms
                    .condition_ended(AlarmId::AlarmSoundUnavailable, now);
            }
            SoundStatus::Starting => {}
        }
    }

    /// Who is at the station: the signed-in account's id (locked or not), else
    /// "nobody".
    #[must_use]
    pub fn operator(&self) -> &str {
        self.signed_in().map_or("nobody", |s| s.id())
    }

    /// Marks the pen as the built-in simulator: its records say so.
    pub fn set_simulated(&mut self, simulated: bool) {
        self.simulated = simulated;
    }

    /// Adds an operator's note to the open session's record.
    pub fn note(&mut self, text: &str) -> Result<(), StationError> {
        let who = self.require(None)?;
        if self.session.is_none() {
            return Err(StationError::NoSession);
        }
        let line = Line::Note(NoteLine {
            utc_ms: record::utc_ms_now(),
            author: who.id().to_owned(),
            text: text.to_owned(),
        });
        crate::record::writer::check_line_fits(&line, "the note").map_err(StationError::TooLong)?;
        if let Some(why) = &self.record_failure {
            return Err(StationError::NotRecorded(why.clone()));
        }
        self.record(line);
        if let Some(why) = &self.record_failure {
            return Err(StationError::NotRecorded(why.clone()));
        }
        if let Some(session) = &mut self.session {
            session.notes.push(text.to_owned());
        }
        Ok(())
    }

    /// Waits, at most `timeout`, until every line recorded so far is written to the
    /// operating system (safe from a crash of this process). The console answers a
    /// note only then; the window, which must not wait, learns of a failure from the
    /// `recording_failed` alarm.
    pub fn confirm_recorded(&mut self, timeout: Duration) -> Result<(), StationError> {
        if let Some(why) = &self.record_failure {
            return Err(StationError::NotRecorded(why.clone()));
        }
        let Some(recorder) = &mut self.recorder else {
            return Ok(());
        };
        if let Err(e) = recorder.confirm(timeout) {
            self.on_record_error(&e);
            return Err(StationError::NotRecorded(e.to_string()));
        }
        Ok(())
    }

    /// Why the open session's record can no longer be written, if it cannot.
    #[must_use]
    pub fn recording_failure(&self) -> Option<&str> {
        self.record_failure.as_deref()
    }

    /// The open session's record file.
    #[must_use]
    pub fn record_path(&self) -> Option<&std::path::Path> {
        self.recorder.as_ref().map(Recorder::path)
    }

    /// Ends the session: halts the needle, records the zones treated, and returns the
    /// summary with aftercare.
    pub fn end_session(&mut self, wait: bool) -> Result<SessionSummary, StationError> {
        self.end_session_ended_by(wait, None)
    }

    /// [`Station::end_session`] for a session ended by something other than the
    /// operator: `ended_by` (e.g. `signal SIGTERM`) goes into the summary line.
    pub fn end_session_ended_by(
        &mut self,
        wait: bool,
        ended_by: Option<String>,
    ) -> Result<SessionSummary, StationError> {
        // The operator's end needs an active account; a signal or a closing window
        // (`ended_by`) always closes the record safely.
        if ended_by.is_none() {
            self.require(None)?;
        }
        if self.session.is_none() {
            return Err(StationError::NoSession);
        }
        // Stop the needle first, while the session is open so its record holds the
        // HALT; the window does not wait for the pen's answer (its frame loop must not
        // block), the console does.
        let halt = if wait {
            let _ = self.command(Command::Halt);
            None
        } else {
            self.request(Command::Halt).ok()
        };
        let Some(session) = self.session.take() else {
            return Err(StationError::NoSession);
        };
        let _ = self.link.update_safety(SafetyUpdate::Session(None));
        let today = Self::today();
        let summary = session.summary(today);
        // A zone counts as treated once the needle started in it (each start claimed
        // it already; this writes nothing new unless a claim was lost).
        for zone in summary
            .zones
            .iter()
            .filter(|z| z.passes > 0 || z.needling_ms > 0)
        {
            if let Err(e) = self.history.record(
                &session.answers.client,
                zone.zone.as_str(),
                session.date,
                &session.id,
            ) {
                self.recording_failed(&format!("cannot record the zones treated: {e}"));
            }
        }
        if let Some(recorder) = &self.recorder {
            self.closing = Some(Closing {
                session,
                ended_utc_ms: record::utc_ms_now(),
                ended_mono_ms: recorder.mono_ms(),
                today,
                halt,
                deadline: Instant::now() + CLOSING_WAIT,
                ended_by,
            });
        }
        // Alarms raised up to now belong in this record.
        self.tick();
        if wait && let Some(closed) = self.finish_closing() {
            return Ok(closed);
        }
        Ok(summary)
    }

    /// The summary line of `session`'s record, ended at `ended_utc_ms` (wall clock)
    /// and `ended_mono_ms` (the record's monotonic clock), if it has one open.
    fn summary_line(
        &self,
        session: &Session,
        summary: &SessionSummary,
        ended_utc_ms: i64,
        ended_mono_ms: i64,
    ) -> Option<SummaryLine> {
        self.recorder.as_ref()?;
        // Lines stay in time order: the summary is written after the closing HALT's
        // answer; `duration_ms` still ends where the session ended, on the monotonic
        // clock (a wall-clock step during the session does not bend it).
        let utc_ms = ended_utc_ms.max(record::utc_ms_now());
        // The notes, as far as they fit the summary's share; the rest are counted.
        let (mut notes, mut notes_omitted, mut bytes) = (Vec::new(), 0u32, 0usize);
        for note in &session.notes {
            bytes += note.len();
            if bytes <= crate::record::format::SUMMARY_NOTES_MAX_BYTES {
                notes.push(note.clone());
            } else {
                notes_omitted += 1;
            }
        }
        Some(SummaryLine {
            utc_ms,
            duration_ms: ended_mono_ms,
            zones: summary
                .zones
                .iter()
                .map(|z| ZoneSummary {
                    zone: z.zone.as_str().to_owned(),
                    passes: z.passes,
                    needling_ms: z.needling_ms,
                    max_depth_um: z.max_depth_um,
                    refusals: z.refusals,
                })
                .collect(),
            needling_ms: summary.needling_ms,
            refusals: summary.refusals,
            interruptions: summary.interruptions,
            alarms_raised: session.alarms_raised,
            samples: session.samples,
            cartridges: session.cartridges.clone(),
            next_earliest: summary.next_earliest.to_string(),
            next_latest: summary.next_latest.map(|d| d.to_string()),
            next_advice: summary.next_advice.clone(),
            ended_by: None,
            indication: Some(session.answers.indication.as_str().to_owned()),
            lots: session.checklist.lots(),
            notes,
            notes_omitted,
            course: summary.course.clone(),
        })
    }

    /// Writes the closing record's summary, from its figures as they are now, and
    /// closes it; a failure raises the alarm. Returns the final summary.
    fn finish_closing(&mut self) -> Option<SessionSummary> {
        let closing = self.closing.take()?;
        let summary = closing.session.summary(closing.today);
        let line = self
            .summary_line(
                &closing.session,
                &summary,
                closing.ended_utc_ms,
                closing.ended_mono_ms,
            )
            .map(|mut line| {
                line.ended_by.clone_from(&closing.ended_by);
                line
            })?;
        let recorder = self.recorder.take()?;
        let path = recorder.path().to_path_buf();
        if let Err(e) = recorder.finish(Line::Summary(Box::new(line))) {
            let why = e.to_string();
            self.recording_failed(&why);
            self.notices
                .push(Notice::Info(format!("recording failed: {why}")));
        } else {
            self.unsigned = Some(people::UnsignedRecord {
                path,
                session_id: closing.session.id.clone(),
                practitioner: closing.session.answers.practitioner.clone(),
            });
        }
        self.notices
            .push(Notice::SessionClosed(Box::new(summary.clone())));
        Some(summary)
    }

    /// Acknowledges one alarm (`Some`) or all; the deep caution acknowledgement also
    /// goes to the interlock.
    pub fn acknowledge(&mut self, id: Option<AlarmId>) -> Result<usize, String> {
        self.require(None).map_err(|e| e.to_string())?;
        let now = self.now_ms();
        let acknowledged = match id {
            Some(id) => self
                .alarms
                .acknowledge(id, now)
                .map(|()| 1)
                .map_err(|e| e.to_string())?,
            None => self.alarms.acknowledge_all(now),
        };
        if id.is_none_or(|id| id == AlarmId::DeepCaution)
            && (id.is_some() || self.alarms.is_active(AlarmId::DeepCaution))
        {
            let _ = self.safety(SafetyUpdate::AcknowledgeDeepCaution);
        }
        self.tick();
        Ok(acknowledged)
    }

    /// Seconds since the station started: the plots' time axis.
    #[must_use]
    pub fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn record_sample(&mut self, t: &Telemetry) {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        // Plot values: µm and rpm are far below f32's exact-integer range.
        let values = {
            let summary = self.summary.as_ref();
            // An unknown target, or no zone, is NaN: the store skips it, so the plot
            // shows no line rather than a false zero.
            let mm = |um: Option<i32>| um.map_or(f32::NAN, |um| um as f32 / 1000.0);
            [
                t.rpm as f32,
                self.speed_target_rpm.map_or(f32::NAN, |r| r as f32),
                t.depth_um as f32 / 1000.0,
                mm(summary.and_then(|s| s.depth_target_um)),
                mm(summary.and_then(|s| s.limit_um)),
            ]
        };
        let now = self.now_s();
        // The station's clock only moves forward, so a refused sample is a bug; count
        // it rather than fail the telemetry path.
        if self.series.push(now, &values).is_err() {
            self.series_rejected += 1;
        }
    }

    /// The live time series (measured and target speed, depths, the zone limit).
    #[must_use]
    pub fn series(&self) -> &TimeSeries {
        &self.series
    }

    /// The live time series, to fill from elsewhere (a replayed record, a benchmark's
    /// synthetic session). Samples must not go back in time (the store refuses them).
    pub fn series_mut(&mut self) -> &mut TimeSeries {
        &mut self.series
    }

    /// The channels of [`Self::series`].
    #[must_use]
    pub fn channels(&self) -> SeriesChannels {
        self.channels
    }

    /// Samples the live store refused (time going backwards): zero unless a bug.
    #[must_use]
    pub fn series_rejected(&self) -> u64 {
        self.series_rejected
    }

    /// The last speed target the pen acknowledged, rpm.
    #[must_use]
    pub fn speed_target_rpm(&self) -> Option<i64> {
        self.speed_target_rpm
    }

    /// The alarm manager, to list or silence alarms.
    pub fn alarms_mut(&mut self) -> &mut AlarmManager {
        &mut self.alarms
    }

    /// The alarm manager.
    #[must_use]
    pub fn alarms(&self) -> &AlarmManager {
        &self.alarms
    }

    /// The operator's start the link holds until the needle is in place, as the
    /// screen says it (`starting when the needle reaches 0.30 mm (now 1.12 mm)`).
    #[must_use]
    pub fn held_start(&self) -> Option<&str> {
        self.held_start.as_ref().map(|(_, text)| text.as_str())
    }

    /// The interlock's last summary.
    #[must_use]
    pub fn safety_summary(&self) -> Option<&SafetySummary> {
        self.summary.as_ref()
    }

    /// Halts the pen before the process leaves (a signal, the window closed): sends
    /// `HALT` without waiting for its answer, then takes in what the link says until
    /// a sample that arrived after the `HALT` shows the motor not running, at most
    /// `wait`. Returns the pen's state as that sample measured it, or `None` when no
    /// such sample came (no pen, a dead link: the pen's watchdog stops it then).
    pub fn halt_before_exit(&mut self, wait: Duration) -> Option<PenState> {
        let asked = Instant::now();
        let _ = self.request(Command::Halt);
        let deadline = asked + wait;
        loop {
            if let (Some(t), Some(at)) = (self.last_telemetry, self.last_telemetry_at)
                && at > asked
                && t.state != PenState::Running
            {
                return Some(t.state);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.pump(left.min(Duration::from_millis(20)));
        }
    }

    /// The last telemetry sample.
    #[must_use]
    pub fn last_telemetry(&self) -> Option<Telemetry> {
        self.last_telemetry
    }

    /// How long ago the last telemetry sample reached the station.
    #[must_use]
    pub fn telemetry_age(&self) -> Option<Duration> {
        self.last_telemetry_at.map(|at| at.elapsed())
    }

    /// The link's state.
    #[must_use]
    pub fn link_state(&self) -> &LinkState {
        &self.link_state
    }

    /// The link's statistics.
    #[must_use]
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The pen's INFO.
    #[must_use]
    pub fn info(&self) -> Option<&PenInfo> {
        self.info.as_ref()
    }

    /// The pen's calibration.
    #[must_use]
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The open session.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The zone table in force.
    #[must_use]
    pub fn zones(&self) -> &ZoneTable {
        &self.zones
    }

    /// The data folder.
    #[must_use]
    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// Halts the pen and closes the link.
    pub fn shutdown(mut self) {
        // A record still waiting for its closing HALT's answer gets its summary now.
        self.finish_closing();
        self.link.shutdown();
    }
}

/// Folds the zones treated and the cartridges run, as the session records tell them,
/// into the treatment history and the cartridge registry.
fn learn_from_records(
    library: &crate::record::Library,
    history: &mut TreatmentHistory,
    registry: &mut CartridgeRegistry,
) {
    for entry in &library.entries {
        if let Some(date) = entry.opened_date() {
            for zone in &entry.zones_treated {
                history.learn(crate::store::TreatmentRecord {
                    client: entry.client.clone(),
                    zone: zone.clone(),
                    date,
                    session_id: entry.session_id.clone(),
                    released: false,
                });
            }
        }
        let first_run = jiff::Timestamp::from_millisecond(entry.opened_utc_ms)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        for id in entry
            .cartridges
            .iter()
            .filter_map(|c| c.parse::<crate::protocol::CartridgeId>().ok())
        {
            registry.learn(crate::store::CartridgeUse {
                id,
                session_id: entry.session_id.clone(),
                client: entry.client.clone(),
                first_run,
                released: false,
            });
        }
    }
}

/// A random number drawn once per process (the standard library's hasher keys come
/// from the operating system's random source): it tells this station's sessions
/// from another's opened in the same second.
fn station_tag() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static TAG: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    })
}

/// The live store and its channels.
fn new_series() -> (TimeSeries, SeriesChannels) {
    SeriesChannels::new_series(SERIES_CAPACITY_SAMPLES)
}

impl SeriesChannels {
    /// The channels' names in the store, in order.
    pub const NAMES: [&'static str; 5] = [
        "rpm",
        "target_rpm",
        "depth_mm",
        "target_depth_mm",
        "limit_mm",
    ];

    /// A store of `capacity` samples holding the session views' channels, and those
    /// channels: the live station's, and a replay's, are the same.
    #[must_use]
    pub fn new_series(capacity: usize) -> (TimeSeries, SeriesChannels) {
        let series = TimeSeries::new(&Self::NAMES, capacity);
        let channel = |name| {
            series
                .channel(name)
                .unwrap_or_else(|| unreachable!("{name} was just created"))
        };
        let channels = SeriesChannels {
            rpm: channel("rpm"),
            target_rpm: channel("target_rpm"),
            depth_mm: channel("depth_mm"),
            target_depth_mm: channel("target_depth_mm"),
            limit_mm: channel("limit_mm"),
        };
        (series, channels)
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(link_error)`
fn link_error(e: crate::link::LinkError) -> StationError {
    match e {
        crate::link::LinkError::Busy => StationError::LinkBusy,
        crate::link::LinkError::Closed => StationError::LinkClosed,
    }
}
