//! Technician mode and bench calibration, on the station (issue 6).
//!
//! The station unlocks technician mode for a signed-in account with the technician
//! role, after its PIN again, tells the interlock ([`SafetyUpdate::Technician`]), and runs
//! one [`Procedure`] at a time: it sends what the procedure asks through the link (so
//! the interlock checks every command), feeds it the answers, `CAL` lines, telemetry,
//! the simulated gauge and the technician's readings, and writes the certificate
//! when it ends.
//!
//! When a calibration ends without the previous values written back (the pen went
//! away, or refused the restore), they are kept in `<data>/calibration-pending.json`
//! and written back the next time that pen is connected in technician mode. Until
//! then the pen holds date 0: the interlock refuses to treat with it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::calibration::certificate::{self, CalibrationKind, PenIdentity};
use crate::calibration::procedure::{self, Action, AnswerEnd, Procedure, Setup};
use crate::calibration::{CalibrationStatus, calibration_status};
use crate::link::{Answer, LinkEvent, LinkState, Outcome, RequestId};
use crate::protocol::{CalUpdate, Calibration, Command, PenEvent, PenState, Telemetry};
use crate::safety::interlock::SafetyUpdate;
use crate::store::{DataDir, replace_file};

use super::{Notice, Station, StationError, link_error};

/// The pending restore's file in the data folder.
pub const PENDING_RESTORE_FILE: &str = "calibration-pending.json";

/// How long a `CAL` line may take after its `CAL GET` was acknowledged.
const CAL_LINE_WAIT: Duration = Duration::from_secs(3);

/// How long the pen may take to settle, by the station's clock (the procedure's own
/// limit counts pen time, which stops when telemetry does).
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// How long the simulated gauge may take to answer.
const GAUGE_WAIT: Duration = Duration::from_secs(3);

/// A pen's previous calibration, still to be written back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingRestore {
    /// The pen's serial.
    pub serial: String,
    /// The values to write back.
    pub previous: Calibration,
    /// Why they were not written back.
    pub why: String,
    /// When that happened.
    pub since: jiff::Timestamp,
}

/// Technician mode's state on the station.
#[derive(Debug, Default)]
pub(super) struct Desk {
    /// The technician's id while technician mode is on (as the interlock applied it).
    technician: Option<String>,
    /// A mode change asked of the interlock: its request and the id (None: leaving).
    toggle: Option<(RequestId, Option<String>)>,
    /// The calibration in progress, or the last one until dismissed.
    run: Option<CalibrationRun>,
    /// Previous values still to be written back.
    pending: Option<PendingRestore>,
    /// The write-back in progress: `CAL SET` then `CAL GET`.
    restore: Option<RestoreJob>,
    /// The write-back was tried for this connection and failed: not again until
    /// technician mode is entered again.
    restore_failed: bool,
}

#[derive(Debug)]
struct RestoreJob {
    set: Option<RequestId>,
    get: Option<RequestId>,
    /// `CAL GET` acknowledged; its line awaited since.
    awaiting_line: Option<Instant>,
}

/// One calibration on the station: the procedure and what the station does for it.
#[derive(Debug)]
pub struct CalibrationRun {
    procedure: Procedure,
    sim_gauge: bool,
    /// The procedure's step sent, and its request.
    sent: Option<(u32, RequestId)>,
    /// A `SIM GAUGE` in flight, and since when.
    gauge: Option<(RequestId, Instant)>,
    /// The action waited on, and since when (for the station's own time limits).
    waiting: Option<(Action, Instant)>,
    /// The last reading refused, and why.
    refused: Option<String>,
    /// Where the certificate was written, or why it could not be.
    certificate: Option<Result<(PathBuf, PathBuf), String>>,
}

impl CalibrationRun {
    /// The procedure: its action, points, fit, log and verdict.
    #[must_use]
    pub fn procedure(&self) -> &Procedure {
        &self.procedure
    }

    /// Readings come from the simulated pen's `SIM GAUGE`.
    #[must_use]
    pub fn sim_gauge(&self) -> bool {
        self.sim_gauge
    }

    /// The last reading refused (not a number, negative, out of range...), and why;
    /// cleared by the next accepted reading.
    #[must_use]
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// The certificate's files (JSON, HTML), or why they could not be written; `None`
    /// until the procedure ends.
    #[must_use]
    pub fn certificate(&self) -> Option<&Result<(PathBuf, PathBuf), String>> {
        self.certificate.as_ref()
    }

    /// Finished, certificate written (or its failure known).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.procedure.is_done() && self.certificate.is_some()
    }
}

fn yyyymmdd(date: jiff::civil::Date) -> u32 {
    let (y, m, d) = (date.year(), date.month(), date.day());
    u32::try_from(i32::from(y) * 10_000 + i32::from(m) * 100 + i32::from(d)).unwrap_or(0)
}

fn answer_end(outcome: &Outcome) -> AnswerEnd {
    match outcome {
        Outcome::Ack => AnswerEnd::Ack,
        Outcome::Nak(reason) => AnswerEnd::Refused(format!("the pen answered NAK {reason}")),
        Outcome::Refused(refusal) => AnswerEnd::Refused(format!("refused: {refusal}")),
        Outcome::NotSent(why) => AnswerEnd::Refused(format!("not sent: {why}")),
        Outcome::Unanswered => AnswerEnd::Unknown("no answer from the pen".into()),
    }
}

/// Why a command was not acknowledged, in words (empty for an ACK).
fn why_not_acked(outcome: &Outcome) -> String {
    match answer_end(outcome) {
        AnswerEnd::Refused(why) | AnswerEnd::Unknown(why) => why,
        AnswerEnd::Ack => String::new(),
    }
}

impl Desk {
    pub(super) fn load(data: &DataDir) -> (Self, Option<String>) {
        let path = data.path(PENDING_RESTORE_FILE);
        let (pending, warning) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<PendingRestore>(&bytes) {
                Ok(p) => (Some(p), None),
                Err(e) => (
                    None,
                    Some(format!(
                        "{}: unreadable ({e}); left as it is. A pen calibrated when it was \
                         written may hold date 0 and must be calibrated again",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(format!("{}: {e}", path.display()))),
        };
        (
            Self {
                pending,
                ..Self::default()
            },
            warning,
        )
    }
}

impl Station {
    /// Technician mode for the signed-in account, which must hold the technician
    /// role; `secret` is its PIN or password again (a try like a sign-in, counted
    /// towards its lockout). `technician_id` is stored on the pen with each
    /// calibration (1 to 16 characters: the account's id when it fits). Refused while a
    /// session is open; the interlock applies it (the result comes as a notice;
    /// [`Self::technician`] then says who).
    pub fn enter_technician(
        &mut self,
        secret: &str,
        technician_id: &str,
    ) -> Result<(), StationError> {
        self.require(Some(crate::store::accounts::Role::Technician))?;
        if !procedure::valid_technician_id(technician_id) {
            return Err(StationError::Technician(format!(
                "technician id {technician_id:?}: 1 to 16 of A-Z a-z 0-9 _ - (the pen stores it)"
            )));
        }
        if let Some(session) = &self.session {
            return Err(StationError::SessionOpen(session.id.clone()));
        }
        self.confirm_secret(secret)?;
        let id = self
            .link
            .update_safety(SafetyUpdate::Technician(true))
            .map_err(link_error)?;
        self.desk.toggle = Some((id, Some(technician_id.to_owned())));
        // Another chance at a restore that failed before.
        self.desk.restore_failed = false;
        Ok(())
    }

    /// Leaves technician mode. Refused while a calibration runs (cancel it first); the
    /// interlock refuses it while the needle turns.
    pub fn leave_technician(&mut self) -> Result<(), StationError> {
        if self.desk.run.as_ref().is_some_and(|r| !r.is_done()) {
            return Err(StationError::Technician(
                "a calibration is running: cancel it first".into(),
            ));
        }
        let id = self
            .link
            .update_safety(SafetyUpdate::Technician(false))
            .map_err(link_error)?;
        self.desk.toggle = Some((id, None));
        Ok(())
    }

    /// The technician's id while technician mode is on.
    #[must_use]
    pub fn technician(&self) -> Option<&str> {
        self.desk.technician.as_deref()
    }

    /// A mode change is waiting for the interlock.
    #[must_use]
    pub fn technician_toggle_pending(&self) -> bool {
        self.desk.toggle.is_some()
    }

    /// Starts a depth or speed calibration of the connected pen. `sim_gauge`: take
    /// depth readings from the simulated pen's `SIM GAUGE` (a real pen refuses it).
    pub fn start_calibration(
        &mut self,
        kind: CalibrationKind,
        sim_gauge: bool,
    ) -> Result<(), StationError> {
        let Some(technician) = self.desk.technician.clone() else {
            return Err(StationError::Technician(
                "calibration needs technician mode (PIN)".into(),
            ));
        };
        if self.desk.run.as_ref().is_some_and(|r| !r.is_done()) {
            return Err(StationError::Technician(
                "a calibration is running already".into(),
            ));
        }
        if self.desk.restore.is_some() {
            return Err(StationError::Technician(
                "the pen's previous calibration is being written back; wait for it".into(),
            ));
        }
        let (LinkState::Connected { .. }, Some(info)) = (&self.link_state, &self.info) else {
            return Err(StationError::Technician(
                "no pen is connected: calibration needs the pen".into(),
            ));
        };
        if self
            .desk
            .pending
            .as_ref()
            .is_some_and(|p| p.serial == info.serial)
        {
            return Err(StationError::Technician(
                "this pen's previous calibration is still to be written back".into(),
            ));
        }
        let readings_from = match (kind, sim_gauge) {
            (CalibrationKind::Depth, true) => {
                "the simulated pen's SIM GAUGE (practice, not a gauge)"
            }
            (CalibrationKind::Depth, false) => "a depth gauge, read by the technician",
            (CalibrationKind::Speed, _) => "a tachometer, read by the technician",
        };
        let setup = Setup {
            kind,
            pen: PenIdentity {
                model: info.model.clone(),
                serial: info.serial.clone(),
                fw: info.fw.clone(),
            },
            technician,
            today_yyyymmdd: yyyymmdd(Self::today()),
            readings_from: readings_from.to_owned(),
        };
        self.desk.run = Some(CalibrationRun {
            procedure: Procedure::new(setup),
            sim_gauge: sim_gauge && kind == CalibrationKind::Depth,
            sent: None,
            gauge: None,
            waiting: None,
            refused: None,
            certificate: None,
        });
        self.notices.push(Notice::Info(format!(
            "{} calibration started",
            kind.as_str()
        )));
        self.drive_calibration();
        Ok(())
    }

    /// The calibration in progress, or the last one until dismissed.
    #[must_use]
    pub fn calibration_run(&self) -> Option<&CalibrationRun> {
        self.desk.run.as_ref()
    }

    /// The technician's reading for the point awaited. Refused with the reason (the
    /// same point is asked again).
    pub fn calibration_reading(&mut self, text: &str) -> Result<(), String> {
        let Some(run) = &mut self.desk.run else {
            return Err("no calibration is running".into());
        };
        if !matches!(run.procedure.action(), Action::Reading(_)) {
            return Err("no reading is awaited now".into());
        }
        match run.procedure.on_reading_text(text) {
            Ok(()) => {
                run.refused = None;
                self.drive_calibration();
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                run.refused = Some(why.clone());
                Err(why)
            }
        }
    }

    /// The technician accepts the fit under review: it is written to the pen.
    pub fn calibration_accept(&mut self) {
        if let Some(run) = &mut self.desk.run {
            run.procedure.accept();
        }
        self.drive_calibration();
    }

    /// The technician cancels: the needle stops and the previous values are restored.
    pub fn calibration_cancel(&mut self) {
        if let Some(run) = &mut self.desk.run {
            run.procedure.cancel();
        }
        self.drive_calibration();
    }

    /// Forgets a finished calibration (its certificate stays on disk).
    pub fn dismiss_calibration(&mut self) {
        if self.desk.run.as_ref().is_some_and(CalibrationRun::is_done) {
            self.desk.run = None;
        }
    }

    /// Previous values still to be written back to a pen, if any.
    #[must_use]
    pub fn pending_restore(&self) -> Option<&PendingRestore> {
        self.desk.pending.as_ref()
    }

    /// Asks the simulated pen's gauge (`SIM GAUGE`) and waits for its reading, µm: the
    /// true protrusion now. A real pen refuses the verb (`NAK UNKNOWN`).
    pub fn sim_gauge_um(&mut self) -> Result<i32, StationError> {
        // Only the reading that answers this request counts.
        self.last_gauge_um = None;
        let answer = self.command(Command::SimGauge)?;
        if answer.outcome != Outcome::Ack {
            return Err(StationError::Pen(format!(
                "SIM GAUGE: {}",
                why_not_acked(&answer.outcome)
            )));
        }
        // The GAUGE line follows its ACK.
        let deadline = Instant::now() + GAUGE_WAIT;
        loop {
            if let Some(true_um) = self.last_gauge_um.take() {
                return Ok(true_um);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StationError::Timeout(GAUGE_WAIT));
            }
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// The connected pen's calibration status today (`None` until its calibration
    /// is known).
    #[must_use]
    pub fn calibration_status(&self) -> Option<CalibrationStatus> {
        self.calibration
            .as_ref()
            .map(|c| calibration_status(c, Self::today()))
    }

    // ----- fed by the pump -----

    /// Routes a link event to technician mode; `true` when it was this module's
    /// alone (an answer to a calibration's own command).
    pub(super) fn technician_event(&mut self, event: &LinkEvent) -> bool {
        match event {
            LinkEvent::SafetyApplied { id, result } => {
                if self.desk.toggle.as_ref().is_some_and(|(t, _)| t == id) {
                    let (_, entering) = self.desk.toggle.take().unwrap_or((*id, None));
                    match (result, entering) {
                        (Ok(_), Some(technician)) => {
                            self.notices.push(Notice::Info(format!(
                                "technician mode on ({technician}): calibration may be written"
                            )));
                            self.audit_event(
                                crate::store::audit::AuditKind::TechnicianMode,
                                &[("on", "true".into()), ("technician_id", technician.clone())],
                            );
                            self.desk.technician = Some(technician);
                        }
                        (Ok(_), None) => {
                            self.notices
                                .push(Notice::Info("technician mode off".into()));
                            self.audit_event(
                                crate::store::audit::AuditKind::TechnicianMode,
                                &[("on", "false".into())],
                            );
                            self.desk.technician = None;
                            self.desk.run = None;
                        }
                        (Err(refusal), _) => self
                            .notices
                            .push(Notice::Info(format!("refused: {refusal}"))),
                    }
                    return true;
                }
                false
            }
            LinkEvent::Answer(answer) => self.calibration_answer(answer),
            LinkEvent::Calibration(cal) => {
                if let Some(run) = &mut self.desk.run {
                    run.procedure.on_calibration(cal);
                }
                self.restore_line(cal);
                self.drive_calibration();
                false
            }
            LinkEvent::Gauge { true_um } => {
                // The calibration's own gauge reading is its alone.
                let Some(run) = &mut self.desk.run else {
                    return false;
                };
                if run.gauge.take().is_none() {
                    return false;
                }
                match run.procedure.on_reading_value(f64::from(*true_um)) {
                    Ok(()) => run.refused = None,
                    Err(e) => run.refused = Some(e.to_string()),
                }
                self.drive_calibration();
                true
            }
            LinkEvent::State(LinkState::Lost(reason)) => {
                self.calibration_lost(&reason.to_string());
                false
            }
            LinkEvent::State(LinkState::Connected { info, .. }) => {
                self.desk.restore_failed = false;
                if let Some(p) = &self.desk.pending
                    && p.serial == info.serial
                    && self.desk.technician.is_none()
                {
                    self.notices.push(Notice::Info(format!(
                        "pen {}: its calibration from before an interrupted calibration is \
                         still to be written back; it is uncalibrated until then: enter \
                         technician mode to write it back",
                        p.serial
                    )));
                }
                false
            }
            LinkEvent::Pen {
                event: PenEvent::Boot { .. },
                ..
            } => {
                self.calibration_lost("the pen rebooted");
                false
            }
            _ => false,
        }
    }

    fn calibration_lost(&mut self, why: &str) {
        if let Some(run) = &mut self.desk.run {
            run.procedure.on_link_lost(why);
            run.sent = None;
            run.gauge = None;
        }
        self.desk.restore = None;
        self.drive_calibration();
    }

    fn calibration_answer(&mut self, answer: &Answer) -> bool {
        if let Some(job) = &mut self.desk.restore
            && (job.set == Some(answer.id) || job.get == Some(answer.id))
        {
            self.restore_answer(answer);
            return true;
        }
        let Some(run) = &mut self.desk.run else {
            return false;
        };
        if let Some((step, id)) = run.sent
            && id == answer.id
        {
            run.sent = None;
            run.procedure.on_answer(step, answer_end(&answer.outcome));
            self.drive_calibration();
            return true;
        }
        if run.gauge.as_ref().is_some_and(|(id, _)| *id == answer.id) {
            if answer.outcome != Outcome::Ack {
                run.gauge = None;
                run.sim_gauge = false;
                run.refused = Some(format!(
                    "the pen has no simulated gauge ({}): type the gauge reading",
                    why_not_acked(&answer.outcome)
                ));
            }
            return true;
        }
        false
    }

    pub(super) fn technician_telemetry(&mut self, t: &Telemetry) {
        if let Some(run) = &mut self.desk.run {
            run.procedure.on_telemetry(t);
        }
    }

    /// Sends what the procedure asks, enforces the station's time limits, writes the
    /// certificate at the end; and writes back pending previous values.
    pub(super) fn drive_calibration(&mut self) {
        // Each pass may complete a step that asks for the next at once.
        for _ in 0..4 {
            if !self.drive_once() {
                break;
            }
        }
        self.drive_restore();
    }

    /// One step of driving; `true` when something changed.
    fn drive_once(&mut self) -> bool {
        let Some(run) = &mut self.desk.run else {
            return false;
        };
        if run.certificate.is_some() {
            return false;
        }
        let action = run.procedure.action();
        let now = Instant::now();
        let since = match &run.waiting {
            Some((a, since)) if *a == action => *since,
            _ => {
                run.waiting = Some((action.clone(), now));
                now
            }
        };
        match action {
            Action::Send { step, command } => {
                if run.sent.is_some_and(|(s, _)| s == step) {
                    return false;
                }
                match self.link.send(command) {
                    Ok(id) => {
                        run.sent = Some((step, id));
                        false
                    }
                    Err(e) => {
                        run.procedure
                            .on_answer(step, AnswerEnd::Refused(format!("not sent: {e}")));
                        true
                    }
                }
            }
            Action::AwaitCalibration if now - since > CAL_LINE_WAIT => {
                run.procedure
                    .on_timeout("the pen sent no CAL line after CAL GET");
                true
            }
            Action::Settle { target } if now - since > SETTLE_WAIT => {
                run.procedure.on_timeout(&format!(
                    "the pen did not report reaching {target} within {} s (is telemetry on?)",
                    SETTLE_WAIT.as_secs()
                ));
                true
            }
            Action::Reading(_) if run.sim_gauge => match run.gauge {
                Some((_, asked)) if now - asked > GAUGE_WAIT => {
                    run.gauge = None;
                    run.sim_gauge = false;
                    run.refused =
                        Some("the simulated gauge did not answer: type the gauge reading".into());
                    true
                }
                Some(_) => false,
                None => match self.link.send(Command::SimGauge) {
                    Ok(id) => {
                        run.gauge = Some((id, now));
                        false
                    }
                    Err(e) => {
                        run.sim_gauge = false;
                        run.refused = Some(format!("SIM GAUGE not sent ({e}): type the reading"));
                        true
                    }
                },
            },
            Action::Done => {
                self.finish_calibration();
                true
            }
            _ => false,
        }
    }

    fn finish_calibration(&mut self) {
        let Some(run) = &mut self.desk.run else {
            return;
        };
        let local = jiff::Zoned::now();
        let Some(certificate) = run
            .procedure
            .certificate(local.datetime(), local.timestamp())
        else {
            return;
        };
        let written = certificate::write(&self.data, &certificate).map_err(|e| e.to_string());
        let verdict = if certificate.passed {
            "PASSED".to_owned()
        } else {
            format!("FAILED: {}", certificate.reasons.join("; "))
        };
        let files = match &written {
            Ok((json, _)) => format!("certificate {}", json.display()),
            Err(e) => format!("the certificate could not be written: {e}"),
        };
        self.notices.push(Notice::Info(format!(
            "{} calibration {verdict}; {files}",
            certificate.kind().as_str()
        )));
        run.certificate = Some(written);
        let pending = run
            .procedure
            .pending_restore()
            .map(|previous| PendingRestore {
                serial: certificate.pen.serial.clone(),
                previous: previous.clone(),
                why: certificate.reasons.join("; "),
                since: jiff::Timestamp::now(),
            });
        self.audit_event(
            crate::store::audit::AuditKind::Calibration,
            &[
                ("kind", certificate.kind().as_str().to_owned()),
                ("pen", certificate.pen.serial.clone()),
                ("verdict", verdict),
                ("files", files),
            ],
        );
        if let Some(pending) = pending {
            self.save_pending(Some(pending));
        }
    }

    fn save_pending(&mut self, pending: Option<PendingRestore>) {
        let path = self.data.path(PENDING_RESTORE_FILE);
        let result = match &pending {
            Some(p) => serde_json::to_vec_pretty(p)
                .map_err(|e| e.to_string())
                .and_then(|bytes| replace_file(&path, &bytes).map_err(|e| e.to_string())),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            self.notices.push(Notice::Info(format!(
                "cannot write {}: {e}; the pen's previous calibration is kept in memory only",
                path.display()
            )));
        }
        if let Some(p) = &pending {
            self.notices.push(Notice::Info(format!(
                "pen {}: its previous calibration could not be written back ({}); it holds \
                 date 0 (uncalibrated) until it is, the next time it is connected in \
                 technician mode",
                p.serial, p.why
            )));
        }
        self.desk.pending = pending;
    }

    /// Starts writing back pending previous values when their pen is connected, idle,
    /// in technician mode, with no calibration running.
    fn drive_restore(&mut self) {
        if let Some(job) = &self.desk.restore {
            if job
                .awaiting_line
                .is_some_and(|since| since.elapsed() > CAL_LINE_WAIT)
            {
                self.restore_done(Err("the pen sent no CAL line after CAL GET".into()));
            }
            return;
        }
        let Some(pending) = &self.desk.pending else {
            return;
        };
        let ready = self.desk.technician.is_some()
            && !self.desk.restore_failed
            && self.desk.run.as_ref().is_none_or(CalibrationRun::is_done)
            && matches!(self.link_state, LinkState::Connected { .. })
            && self
                .info
                .as_ref()
                .is_some_and(|i| i.serial == pending.serial)
            && self
                .last_telemetry
                .is_some_and(|t| t.state == PenState::Idle);
        if !ready {
            return;
        }
        let p = &pending.previous;
        let update = CalUpdate {
            depth_offset_um: Some(p.depth_offset_um),
            depth_gain_ppm: Some(p.depth_gain_ppm),
            speed_gain_ppm: Some(p.speed_gain_ppm),
            date: Some(p.date),
            tech: Some(p.tech.clone()),
        };
        match self.link.send(Command::CalSet(update)) {
            Ok(id) => {
                self.desk.restore = Some(RestoreJob {
                    set: Some(id),
                    get: None,
                    awaiting_line: None,
                });
                self.notices.push(Notice::Info(format!(
                    "pen {}: writing back its previous calibration",
                    pending.serial
                )));
            }
            Err(e) => self.restore_done(Err(format!("CAL SET not sent: {e}"))),
        }
    }

    fn restore_answer(&mut self, answer: &Answer) {
        let Some(job) = &mut self.desk.restore else {
            return;
        };
        if answer.outcome != Outcome::Ack {
            let why = why_not_acked(&answer.outcome);
            self.restore_done(Err(format!("{}: {why}", answer.command.verb())));
            return;
        }
        if job.set == Some(answer.id) {
            match self.link.send(Command::CalGet) {
                Ok(id) => job.get = Some(id),
                Err(e) => self.restore_done(Err(format!("CAL GET not sent: {e}"))),
            }
        } else {
            job.awaiting_line = Some(Instant::now());
        }
    }

    fn restore_line(&mut self, cal: &Calibration) {
        if self
            .desk
            .restore
            .as_ref()
            .is_some_and(|j| j.awaiting_line.is_some())
        {
            let expected = self.desk.pending.as_ref().map(|p| p.previous.clone());
            if expected.as_ref() == Some(cal) {
                self.restore_done(Ok(()));
            } else {
                self.restore_done(Err(format!(
                    "the pen read back {}, not the values written",
                    procedure::describe(cal)
                )));
            }
        }
    }

    fn restore_done(&mut self, result: Result<(), String>) {
        self.desk.restore = None;
        let serial = self
            .desk
            .pending
            .as_ref()
            .map(|p| p.serial.clone())
            .unwrap_or_default();
        match result {
            Ok(()) => {
                self.notices.push(Notice::Info(format!(
                    "pen {serial}: previous calibration written back and read back"
                )));
                self.save_pending(None);
            }
            Err(why) => {
                self.desk.restore_failed = true;
                self.notices.push(Notice::Info(format!(
                    "pen {serial}: the previous calibration could not be written back ({why}); \
                     it stays uncalibrated"
                )));
            }
        }
    }
}
