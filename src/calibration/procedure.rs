//! The calibration procedure (`pen-protocol.md`, section 8): one state machine for the
//! depth and the speed wizard, pure. Its driver (the station) sends what
//! [`Procedure::action`] asks for and reports back the pen's answers, `CAL` lines,
//! telemetry and the technician's readings; the window and the console only show the
//! procedure and pass the technician's input on.
//!
//! The steps, for depth (speed alike, with setpoints and a tachometer):
//! 1. `CAL GET`: the previous values, kept for the certificate and for restoring.
//! 2. `CAL SET` identity, **dated 0** (`depth_gain_ppm=0 depth_offset_um=0 date=0
//!    tech=-`): from here until verification passes the pen itself says "never
//!    calibrated", so a station that dies mid-way leaves a pen the interlock will not
//!    start, never a half-calibrated pen that looks valid.
//! 3. For each fit target: `DEPTH r`, wait until telemetry shows the mechanism there
//!    (speed: `DEPTH 0`, `SPEED s`, `RUN`, wait until the speed holds), then a reading.
//! 4. The fit ([`fit_depth`] / [`fit_speed`]); the technician reviews it and accepts.
//! 5. `CAL SET` the fit (still dated 0), `CAL GET`, compare field by field.
//! 6. Verification at new targets; pass only if every point is in tolerance.
//! 7. Pass: `CAL SET date=<today> tech=<id>`, `CAL GET`, compare: calibrated.
//!    Fail (any refusal, NAK, mismatch, failed point, or the technician's cancel):
//!    `HALT` if the needle may turn, `CAL SET` every previous value, `CAL GET`,
//!    compare. Nothing is marked calibrated.
//!
//! A link loss ends the procedure at once: the previous values could not be written,
//! so the certificate says `not_restored` and [`Procedure::pending_restore`] gives the
//! values for the station to write back when the pen returns.

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::certificate::{CalibrationKind, Certificate, Measurements, PenIdentity, PreviousFate};
use super::fit::{
    DEPTH_FIT_TARGETS_UM, DEPTH_VERIFY_TARGETS_UM, DepthFit, DepthPoint, FitError,
    SPEED_SETPOINTS_RPM, SPEED_VERIFY_SETPOINTS_RPM, SpeedFit, SpeedPoint, check_depth_readings,
    check_speed_readings, fit_depth, fit_speed, parse_depth_reading_um, parse_speed_reading_rpm,
};
use super::verify::{DepthVerification, SpeedVerification, verify_depth, verify_speed};
use crate::protocol::{CalUpdate, Calibration, Command, PenState, Telemetry};

/// How close (µm) the reported depth must be to the target to count as arrived: the
/// pen rounds its reported depth to the µm.
pub const DEPTH_ARRIVED_UM: i32 = 2;

/// How close (%) the reported speed must hold to the setpoint to count as settled.
pub const SPEED_SETTLED_PCT: f64 = 0.5;

/// How long (pen ms) the speed must hold within [`SPEED_SETTLED_PCT`].
pub const SPEED_HOLD_MS: u32 = 300;

/// How long (pen ms) the pen may take to reach a depth or a speed.
pub const SETTLE_TIMEOUT_MS: u32 = 3000;

/// Is `id` a technician id the protocol takes (`tech`: 1..16 of `A-Z a-z 0-9 _ -`)?
#[must_use]
pub fn valid_technician_id(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && id != "-"
}

/// Fit or verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A point for the fit, under identity calibration.
    Fit,
    /// A point verifying the written fit.
    Verify,
}

/// The reading the procedure waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingRequest {
    /// Fit or verification.
    pub stage: Stage,
    /// The point, counted from 1 within its stage.
    pub point: usize,
    /// Points in the stage.
    pub of: usize,
    /// The depth (µm) or speed (rpm) the pen was set to.
    pub target: i32,
}

/// What the procedure needs from its driver now.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this command; report its end with [`Procedure::on_answer`]. `step` numbers
    /// the actions, so the driver sends each once.
    Send {
        /// This action's number.
        step: u32,
        /// The command.
        command: Command,
    },
    /// `CAL GET` was acknowledged: waiting for its `CAL` line
    /// ([`Procedure::on_calibration`]).
    AwaitCalibration,
    /// Waiting for the pen to reach the target (telemetry, [`Procedure::on_telemetry`]).
    Settle {
        /// The depth (µm) or speed (rpm).
        target: i32,
    },
    /// Waiting for the technician's reading ([`Procedure::on_reading_text`]), or the
    /// simulated gauge's ([`Procedure::on_reading_value`]).
    Reading(ReadingRequest),
    /// The fit is ready for the technician's review: [`Procedure::accept`] writes it,
    /// [`Procedure::cancel`] restores the previous values.
    Review,
    /// Finished; the certificate is [`Procedure::certificate`].
    Done,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    ReadPrevious,
    WriteIdentity,
    Retract,
    Position {
        stage: Stage,
        index: usize,
    },
    Run {
        stage: Stage,
        index: usize,
    },
    Settling {
        stage: Stage,
        index: usize,
    },
    Reading {
        stage: Stage,
        index: usize,
    },
    Review,
    WriteFit,
    Stamp,
    /// `HALT`, then wait for the pen to report IDLE: the pen takes `CAL SET` only
    /// when idle, and the interlock refuses it while the needle may turn.
    Halt(After),
    Stopping(After),
    Restore,
    /// The depth mechanism back to 0 (retracted) at the end, passed or restored.
    Park,
    Done,
}

/// Where a halt leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Review,
    Stamp,
    Restore,
}

impl After {
    fn phase(self) -> Phase {
        match self {
            Self::Review => Phase::Review,
            Self::Stamp => Phase::Stamp,
            Self::Restore => Phase::Restore,
        }
    }
}

/// How a command the procedure asked for ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerEnd {
    /// The pen acknowledged it.
    Ack,
    /// It did not reach the pen, or the pen refused it (a NAK changes nothing): why.
    Refused(String),
    /// It may have reached the pen but no answer came: why.
    Unknown(String),
}

/// Which `CAL GET` a read-back answers, and what it must equal.
#[derive(Debug, Clone, PartialEq)]
enum ReadBack {
    Previous,
    Expect(Calibration),
}

/// Everything the procedure starts from.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Depth or speed.
    pub kind: CalibrationKind,
    /// The pen, from its INFO.
    pub pen: PenIdentity,
    /// The technician's id, as the pen will store it (see [`valid_technician_id`]).
    pub technician: String,
    /// Today's date as `YYYYMMDD`, written when the calibration passes.
    pub today_yyyymmdd: u32,
    /// Where readings come from, in words, for the certificate (a typed gauge or
    /// tachometer, or the simulated pen's `SIM GAUGE`).
    pub readings_from: String,
}

/// One calibration in progress. See the module documentation for the steps.
#[derive(Debug, Clone)]
pub struct Procedure {
    setup: Setup,
    phase: Phase,
    step: u32,
    /// A `CAL GET` to send (`false`) or acknowledged, its `CAL` line awaited (`true`).
    read_back: Option<(ReadBack, bool)>,
    /// The previous values, once read.
    previous: Option<Calibration>,
    /// The pen may hold something other than `previous` (identity or the fit).
    touched: bool,
    /// A `RUN` was acknowledged and no `HALT` since.
    may_run: bool,
    fit_targets: Vec<i32>,
    verify_targets: Vec<i32>,
    fit_readings: Vec<f64>,
    verify_readings: Vec<f64>,
    depth_fit: Option<DepthFit>,
    speed_fit: Option<SpeedFit>,
    depth_verification: Option<DepthVerification>,
    speed_verification: Option<SpeedVerification>,
    /// The calibration written with the fit and read back (dated 0).
    fitted: Option<Calibration>,
    /// The final calibration in effect, when passed.
    written: Option<Calibration>,
    /// Why it failed, one sentence each.
    reasons: Vec<String>,
    fate: Option<PreviousFate>,
    settle_start_ms: Option<u32>,
    hold_start_ms: Option<u32>,
    /// What happened, one line a step, for the technician.
    log: Vec<String>,
}

impl Procedure {
    /// A procedure with the standard targets ([`DEPTH_FIT_TARGETS_UM`] and
    /// [`DEPTH_VERIFY_TARGETS_UM`], or the speed setpoints).
    #[must_use]
    pub fn new(setup: Setup) -> Self {
        let (fit_targets, verify_targets) = match setup.kind {
            CalibrationKind::Depth => (
                DEPTH_FIT_TARGETS_UM.to_vec(),
                DEPTH_VERIFY_TARGETS_UM.to_vec(),
            ),
            CalibrationKind::Speed => (
                SPEED_SETPOINTS_RPM.to_vec(),
                SPEED_VERIFY_SETPOINTS_RPM.to_vec(),
            ),
        };
        Self::with_targets(setup, fit_targets, verify_targets)
    }

    /// A procedure with the caller's targets (checked by the fit and verification as
    /// any other input).
    #[must_use]
    pub fn with_targets(setup: Setup, fit_targets: Vec<i32>, verify_targets: Vec<i32>) -> Self {
        let log = vec![format!(
            "{} calibration of pen {} by {}",
            setup.kind.as_str(),
            setup.pen.serial,
            setup.technician
        )];
        Self {
            setup,
            phase: Phase::ReadPrevious,
            step: 1,
            read_back: Some((ReadBack::Previous, false)),
            previous: None,
            touched: false,
            may_run: false,
            fit_targets,
            verify_targets,
            fit_readings: Vec::new(),
            verify_readings: Vec::new(),
            depth_fit: None,
            speed_fit: None,
            depth_verification: None,
            speed_verification: None,
            fitted: None,
            written: None,
            reasons: Vec::new(),
            fate: None,
            settle_start_ms: None,
            hold_start_ms: None,
            log,
        }
    }

    /// Depth or speed.
    #[must_use]
    pub fn kind(&self) -> CalibrationKind {
        self.setup.kind
    }

    /// What the procedure started from.
    #[must_use]
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// What the driver must do now.
    #[must_use]
    pub fn action(&self) -> Action {
        let send = |command| Action::Send {
            step: self.step,
            command,
        };
        match self.read_back {
            Some((_, false)) => return send(Command::CalGet),
            Some((_, true)) => return Action::AwaitCalibration,
            None => {}
        }
        match &self.phase {
            Phase::ReadPrevious => send(Command::CalGet),
            Phase::WriteIdentity => send(Command::CalSet(self.identity_update())),
            // Before a speed run and after a depth calibration: the needle retracted.
            Phase::Retract | Phase::Park => send(Command::Depth { depth_um: 0 }),
            Phase::Position { stage, index } => {
                let target = i64::from(self.target(*stage, *index));
                send(match self.setup.kind {
                    CalibrationKind::Depth => Command::Depth { depth_um: target },
                    CalibrationKind::Speed => Command::Speed { rpm: target },
                })
            }
            Phase::Run { .. } => send(Command::Run),
            Phase::Settling { stage, index } => Action::Settle {
                target: self.target(*stage, *index),
            },
            Phase::Reading { stage, index } => Action::Reading(self.request(*stage, *index)),
            Phase::Review => Action::Review,
            Phase::WriteFit => send(Command::CalSet(self.fit_update())),
            Phase::Stamp => send(Command::CalSet(CalUpdate {
                date: Some(self.setup.today_yyyymmdd),
                tech: Some(self.setup.technician.clone()),
                ..CalUpdate::default()
            })),
            Phase::Halt(_) => send(Command::Halt),
            Phase::Stopping(_) => Action::Settle { target: 0 },
            Phase::Restore => send(Command::CalSet(self.restore_update())),
            Phase::Done => Action::Done,
        }
    }

    fn request(&self, stage: Stage, index: usize) -> ReadingRequest {
        ReadingRequest {
            stage,
            point: index + 1,
            of: self.targets(stage).len(),
            target: self.target(stage, index),
        }
    }

    fn targets(&self, stage: Stage) -> &[i32] {
        match stage {
            Stage::Fit => &self.fit_targets,
            Stage::Verify => &self.verify_targets,
        }
    }

    fn target(&self, stage: Stage, index: usize) -> i32 {
        self.targets(stage)[index]
    }

    fn identity_update(&self) -> CalUpdate {
        let undated = CalUpdate {
            date: Some(0),
            tech: Some("-".to_owned()),
            ..CalUpdate::default()
        };
        match self.setup.kind {
            CalibrationKind::Depth => CalUpdate {
                depth_gain_ppm: Some(0),
                depth_offset_um: Some(0),
                ..undated
            },
            CalibrationKind::Speed => CalUpdate {
                speed_gain_ppm: Some(0),
                ..undated
            },
        }
    }

    fn fit_update(&self) -> CalUpdate {
        match (&self.depth_fit, &self.speed_fit) {
            (Some(fit), _) => CalUpdate {
                depth_gain_ppm: Some(fit.gain_ppm),
                depth_offset_um: Some(fit.offset_um),
                ..CalUpdate::default()
            },
            (_, Some(fit)) => CalUpdate {
                speed_gain_ppm: Some(fit.gain_ppm),
                ..CalUpdate::default()
            },
            // Review comes only after a fit; an empty update would be NAK ARGS.
            (None, None) => CalUpdate::default(),
        }
    }

    fn restore_update(&self) -> CalUpdate {
        let previous = self.previous.clone().unwrap_or_else(Calibration::identity);
        CalUpdate {
            depth_offset_um: Some(previous.depth_offset_um),
            depth_gain_ppm: Some(previous.depth_gain_ppm),
            speed_gain_ppm: Some(previous.speed_gain_ppm),
            date: Some(previous.date),
            tech: Some(previous.tech),
        }
    }

    /// What the pen should hold after `update`, from `base`.
    fn applied(base: &Calibration, update: &CalUpdate) -> Calibration {
        Calibration {
            depth_offset_um: update.depth_offset_um.unwrap_or(base.depth_offset_um),
            depth_gain_ppm: update.depth_gain_ppm.unwrap_or(base.depth_gain_ppm),
            speed_gain_ppm: update.speed_gain_ppm.unwrap_or(base.speed_gain_ppm),
            date: update.date.unwrap_or(base.date),
            tech: update.tech.clone().unwrap_or_else(|| base.tech.clone()),
        }
    }

    /// The end of the command sent for `step`. Ends for other steps are ignored.
    pub fn on_answer(&mut self, step: u32, end: AnswerEnd) {
        let Action::Send {
            step: current,
            command,
        } = self.action()
        else {
            return;
        };
        if step != current {
            return;
        }
        self.step += 1;
        if let Some((read_back, false)) = self.read_back.take() {
            match end {
                AnswerEnd::Ack => self.read_back = Some((read_back, true)),
                AnswerEnd::Refused(why) | AnswerEnd::Unknown(why) => {
                    self.failed_step(format!("CAL GET failed: {why}"));
                }
            }
            return;
        }
        let why = match end {
            AnswerEnd::Ack => None,
            AnswerEnd::Refused(why) => Some(why),
            AnswerEnd::Unknown(why) => {
                if matches!(command, Command::CalSet(_)) {
                    // It may have been written: the pen's values are no longer known.
                    self.touched = true;
                }
                Some(why)
            }
        };
        if self.phase == Phase::Park {
            // The calibration itself is settled; the needle's parking only informs.
            self.log.push(match why {
                None => "needle retracted (depth 0)".to_owned(),
                Some(why) => format!("the needle could not be retracted: {why}"),
            });
            self.phase = Phase::Done;
            return;
        }
        if let Some(why) = why {
            let what = format!("{} failed: {why}", command.verb());
            match self.phase {
                // A HALT that failed still goes on: the pen's watchdog stops a needle
                // the link can no longer reach.
                Phase::Halt(after) if after != After::Review => {
                    self.log.push(format!("failed: {what}"));
                    self.reasons.push(what);
                    self.may_run = false;
                    self.phase = Phase::Restore;
                }
                _ => self.failed_step(what),
            }
            return;
        }
        match (&self.phase, command) {
            (Phase::ReadPrevious, _) => self.read_back = Some((ReadBack::Previous, false)),
            (Phase::WriteIdentity, Command::CalSet(update)) => {
                self.touched = true;
                let previous = self.previous.clone().unwrap_or_else(Calibration::identity);
                self.log
                    .push("identity calibration written, undated".into());
                self.read_back = Some((ReadBack::Expect(Self::applied(&previous, &update)), false));
            }
            (Phase::Retract, _) => {
                self.phase = Phase::Position {
                    stage: Stage::Fit,
                    index: 0,
                };
            }
            (Phase::Position { stage, index }, _) => {
                let (stage, index) = (*stage, *index);
                self.phase = if self.setup.kind == CalibrationKind::Speed && !self.may_run {
                    Phase::Run { stage, index }
                } else {
                    self.settling(stage, index)
                };
            }
            (Phase::Run { stage, index }, _) => {
                self.may_run = true;
                let (stage, index) = (*stage, *index);
                self.phase = self.settling(stage, index);
            }
            (Phase::WriteFit, Command::CalSet(update)) => {
                let base = self.previous.clone().unwrap_or_else(Calibration::identity);
                let identity = Self::applied(&base, &self.identity_update());
                self.read_back = Some((ReadBack::Expect(Self::applied(&identity, &update)), false));
            }
            (Phase::Stamp, Command::CalSet(update)) => {
                let base = self.fitted.clone().unwrap_or_else(Calibration::identity);
                self.read_back = Some((ReadBack::Expect(Self::applied(&base, &update)), false));
            }
            (Phase::Halt(after), _) => {
                let after = *after;
                self.may_run = false;
                self.settle_start_ms = None;
                self.phase = Phase::Stopping(after);
            }
            (Phase::Restore, Command::CalSet(update)) => {
                let base = self.previous.clone().unwrap_or_else(Calibration::identity);
                self.read_back = Some((ReadBack::Expect(Self::applied(&base, &update)), false));
            }
            _ => {}
        }
    }

    /// Depth calibration leaves the needle retracted; speed already ran at depth 0.
    fn park_or_done(&self) -> Phase {
        match self.setup.kind {
            CalibrationKind::Depth => Phase::Park,
            CalibrationKind::Speed => Phase::Done,
        }
    }

    fn settling(&mut self, stage: Stage, index: usize) -> Phase {
        self.settle_start_ms = None;
        self.hold_start_ms = None;
        Phase::Settling { stage, index }
    }

    /// A `CAL` line from the pen. Only one answering this procedure's `CAL GET` counts.
    pub fn on_calibration(&mut self, calibration: &Calibration) {
        let Some((read_back, true)) = self.read_back.clone() else {
            return;
        };
        self.read_back = None;
        match read_back {
            ReadBack::Previous => {
                self.log
                    .push(format!("previous calibration: {}", describe(calibration)));
                self.previous = Some(calibration.clone());
                self.phase = Phase::WriteIdentity;
            }
            ReadBack::Expect(expected) if *calibration != expected => {
                let what = format!(
                    "the pen read back {}, not the {} written",
                    describe(calibration),
                    describe(&expected)
                );
                self.failed_step(what);
            }
            ReadBack::Expect(expected) => self.read_back_matched(expected),
        }
    }

    fn read_back_matched(&mut self, calibration: Calibration) {
        match self.phase {
            Phase::WriteIdentity => {
                self.phase = match self.setup.kind {
                    CalibrationKind::Depth => Phase::Position {
                        stage: Stage::Fit,
                        index: 0,
                    },
                    CalibrationKind::Speed => Phase::Retract,
                };
            }
            Phase::WriteFit => {
                self.log.push(format!(
                    "fit written and read back: {}",
                    describe(&calibration)
                ));
                self.fitted = Some(calibration);
                self.phase = Phase::Position {
                    stage: Stage::Verify,
                    index: 0,
                };
            }
            Phase::Stamp => {
                self.log
                    .push(format!("calibrated: {}", describe(&calibration)));
                self.written = Some(calibration);
                self.fate = Some(PreviousFate::Replaced);
                self.phase = self.park_or_done();
            }
            Phase::Restore => {
                self.log.push(format!(
                    "previous calibration restored and read back: {}",
                    describe(&calibration)
                ));
                self.fate = Some(PreviousFate::Restored);
                self.phase = self.park_or_done();
            }
            _ => {}
        }
    }

    /// A telemetry sample, while settling or stopping.
    pub fn on_telemetry(&mut self, t: &Telemetry) {
        if let Phase::Stopping(after) = self.phase {
            let start = *self.settle_start_ms.get_or_insert(t.t_ms);
            if t.state != PenState::Running {
                self.phase = after.phase();
            } else if t.t_ms.wrapping_sub(start) > SETTLE_TIMEOUT_MS {
                self.failed_step(format!(
                    "the needle did not stop within {} s of HALT",
                    SETTLE_TIMEOUT_MS / 1000
                ));
            }
            return;
        }
        let Phase::Settling { stage, index } = self.phase else {
            return;
        };
        let target = self.target(stage, index);
        let start = *self.settle_start_ms.get_or_insert(t.t_ms);
        if matches!(t.state, PenState::Fault | PenState::Estop) {
            self.fail(format!("the pen went to {} while settling", t.state));
            return;
        }
        let arrived = match self.setup.kind {
            CalibrationKind::Depth => {
                t.state == PenState::Idle
                    && (i64::from(t.depth_um) - i64::from(target)).abs()
                        <= i64::from(DEPTH_ARRIVED_UM)
            }
            CalibrationKind::Speed => {
                let off_pct =
                    (f64::from(t.rpm) - f64::from(target)).abs() * 100.0 / f64::from(target);
                let holding = t.state == PenState::Running && off_pct <= SPEED_SETTLED_PCT;
                if holding {
                    let since = *self.hold_start_ms.get_or_insert(t.t_ms);
                    t.t_ms.wrapping_sub(since) >= SPEED_HOLD_MS
                } else {
                    self.hold_start_ms = None;
                    false
                }
            }
        };
        if arrived {
            self.phase = Phase::Reading { stage, index };
        } else if t.t_ms.wrapping_sub(start) > SETTLE_TIMEOUT_MS {
            let (what, unit) = match self.setup.kind {
                CalibrationKind::Depth => ("depth", "µm"),
                CalibrationKind::Speed => ("speed", "rpm"),
            };
            self.fail(format!(
                "the pen did not reach the {what} {target} {unit} within {} s (last reported {} µm, {} rpm, {})",
                SETTLE_TIMEOUT_MS / 1000,
                t.depth_um,
                t.rpm,
                t.state
            ));
        }
    }

    /// A typed reading for the point awaited. A reading that is not a number,
    /// negative, out of range or implausibly far from the target is refused with the
    /// reason, and the same point is asked again.
    pub fn on_reading_text(&mut self, text: &str) -> Result<(), FitError> {
        let value = match self.setup.kind {
            CalibrationKind::Depth => parse_depth_reading_um(text)?,
            CalibrationKind::Speed => parse_speed_reading_rpm(text)?,
        };
        self.on_reading_value(value)
    }

    /// A reading for the point awaited, as a number (the simulated gauge's).
    pub fn on_reading_value(&mut self, value: f64) -> Result<(), FitError> {
        let Phase::Reading { stage, index } = self.phase else {
            return Ok(());
        };
        let target = self.target(stage, index);
        let point = index + 1;
        // The same checks as the fit's, for this point alone, numbered as it is.
        let band = stage == Stage::Fit;
        let checked = match self.setup.kind {
            CalibrationKind::Depth => check_depth_readings(
                &[DepthPoint {
                    commanded_um: target,
                    measured_um: value,
                }],
                band,
            ),
            CalibrationKind::Speed => check_speed_readings(
                &[SpeedPoint {
                    setpoint_rpm: target,
                    measured_rpm: value,
                }],
                band,
            ),
        };
        checked.map_err(|e| renumber(e, point))?;
        let unit = match self.setup.kind {
            CalibrationKind::Depth => "µm",
            CalibrationKind::Speed => "rpm",
        };
        self.log.push(format!(
            "{} point {point}: set {target} {unit}, read {value} {unit}",
            match stage {
                Stage::Fit => "fit",
                Stage::Verify => "verify",
            }
        ));
        match stage {
            Stage::Fit => self.fit_readings.push(value),
            Stage::Verify => self.verify_readings.push(value),
        }
        if index + 1 < self.targets(stage).len() {
            self.phase = Phase::Position {
                stage,
                index: index + 1,
            };
        } else {
            match stage {
                Stage::Fit => self.finish_fit(),
                Stage::Verify => self.finish_verify(),
            }
        }
        Ok(())
    }

    fn finish_fit(&mut self) {
        let result = match self.setup.kind {
            CalibrationKind::Depth => fit_depth(&self.depth_points(Stage::Fit)).map(|fit| {
                let line = format!(
                    "fit: g = {} ppm, o = {} µm, largest residual {:.1} µm",
                    fit.gain_ppm, fit.offset_um, fit.max_abs_residual_um
                );
                self.depth_fit = Some(fit);
                line
            }),
            CalibrationKind::Speed => fit_speed(&self.speed_points(Stage::Fit)).map(|fit| {
                let line = format!(
                    "fit: s = {} ppm, largest residual {:.2} %",
                    fit.gain_ppm, fit.max_abs_residual_pct
                );
                self.speed_fit = Some(fit);
                line
            }),
        };
        match result {
            Ok(line) => {
                self.log.push(line);
                // The pen takes CAL SET only idle: the needle stops for the review.
                self.phase = if self.may_run {
                    Phase::Halt(After::Review)
                } else {
                    Phase::Review
                };
            }
            Err(e) => self.fail(format!("fit refused: {e}")),
        }
    }

    fn finish_verify(&mut self) {
        let fitted = self.fitted.clone().unwrap_or_else(Calibration::identity);
        let verdict = match self.setup.kind {
            CalibrationKind::Depth => verify_depth(
                &fitted,
                &self.fit_targets,
                &self.depth_points(Stage::Verify),
            )
            .map(|v| {
                let verdict = (v.passed, v.reasons.clone(), v.max_abs_residual_um, "µm");
                self.depth_verification = Some(v);
                verdict
            }),
            CalibrationKind::Speed => verify_speed(
                &fitted,
                &self.fit_targets,
                &self.speed_points(Stage::Verify),
            )
            .map(|v| {
                let verdict = (v.passed, v.reasons.clone(), v.max_abs_residual_pct, "%");
                self.speed_verification = Some(v);
                verdict
            }),
        };
        match verdict {
            Ok((true, _, largest, unit)) => {
                self.log
                    .push(format!("verified: largest residual {largest:.2} {unit}"));
                self.phase = if self.may_run {
                    Phase::Halt(After::Stamp)
                } else {
                    Phase::Stamp
                };
            }
            Ok((false, reasons, _, _)) => {
                for reason in reasons {
                    self.fail(format!("verification failed: {reason}"));
                }
            }
            Err(e) => self.fail(format!("verification refused: {e}")),
        }
    }

    /// The stage's (target, reading) pairs so far.
    fn pairs(&self, stage: Stage) -> Vec<(i32, f64)> {
        let readings = match stage {
            Stage::Fit => &self.fit_readings,
            Stage::Verify => &self.verify_readings,
        };
        self.targets(stage)
            .iter()
            .copied()
            .zip(readings.iter().copied())
            .collect()
    }

    fn depth_points(&self, stage: Stage) -> Vec<DepthPoint> {
        self.pairs(stage)
            .into_iter()
            .map(|(commanded_um, measured_um)| DepthPoint {
                commanded_um,
                measured_um,
            })
            .collect()
    }

    fn speed_points(&self, stage: Stage) -> Vec<SpeedPoint> {
        self.pairs(stage)
            .into_iter()
            .map(|(setpoint_rpm, measured_rpm)| SpeedPoint {
                setpoint_rpm,
                measured_rpm,
            })
            .collect()
    }

    /// The technician accepts the fit under review: it is written.
    pub fn accept(&mut self) {
        if self.phase == Phase::Review {
            self.log.push("fit accepted by the technician".into());
            self.phase = Phase::WriteFit;
        }
    }

    /// The technician cancels: the previous values are restored (a cancel once the
    /// procedure is done, or while restoring, changes nothing).
    pub fn cancel(&mut self) {
        if !matches!(
            self.phase,
            Phase::Done
                | Phase::Park
                | Phase::Restore
                | Phase::Halt(After::Restore)
                | Phase::Stopping(After::Restore)
        ) {
            // A CAL GET in flight is abandoned: its line would compare against the
            // wrong values.
            self.read_back = None;
            self.fail("cancelled by the technician".into());
        }
    }

    /// The link was lost (or the pen rebooted): nothing more can be sent. The pen
    /// may hold identity or the unverified fit, undated: see [`Self::pending_restore`].
    pub fn on_link_lost(&mut self, why: &str) {
        if self.phase == Phase::Park {
            self.log
                .push(format!("the needle could not be retracted: {why}"));
            self.phase = Phase::Done;
        } else if self.phase != Phase::Done {
            self.read_back = None;
            let what = format!("the pen disconnected during calibration ({why})");
            if self.touched {
                self.finish_unrestored(what);
            } else {
                self.reasons.push(what);
                self.fate = Some(PreviousFate::Unchanged);
                self.phase = Phase::Done;
            }
        }
    }

    fn fail(&mut self, why: String) {
        self.log.push(format!("failed: {why}"));
        self.reasons.push(why);
        if self.phase == Phase::Done {
            return;
        }
        self.phase = if self.may_run {
            Phase::Halt(After::Restore)
        } else if self.touched {
            Phase::Restore
        } else {
            self.fate = Some(PreviousFate::Unchanged);
            Phase::Done
        };
    }

    /// A step failed: during the restore, nothing more is tried; otherwise the
    /// procedure fails and restores.
    fn failed_step(&mut self, what: String) {
        if self.phase == Phase::Restore || self.phase == Phase::Stopping(After::Restore) {
            self.finish_unrestored(what);
        } else {
            self.fail(what);
        }
    }

    /// The driver waited too long for what [`Self::action`] asks (a `CAL` line, a
    /// settle without telemetry): `what` says for what.
    pub fn on_timeout(&mut self, what: &str) {
        if self.phase == Phase::Park {
            self.log
                .push(format!("the needle could not be retracted: {what}"));
            self.phase = Phase::Done;
        } else if self.phase != Phase::Done {
            self.read_back = None;
            self.failed_step(format!("timed out: {what}"));
        }
    }

    fn finish_unrestored(&mut self, why: String) {
        self.log.push(format!("failed: {why}"));
        self.reasons.push(why);
        self.fate = Some(PreviousFate::NotRestored);
        self.phase = Phase::Done;
    }

    /// Finished (passed, failed and restored, or not restored).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Passed: fit accepted, written, read back equal, verified, dated.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.phase == Phase::Done && self.written.is_some()
    }

    /// Why it failed so far.
    #[must_use]
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// What happened, one line a step.
    #[must_use]
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// The previous values, once read.
    #[must_use]
    pub fn previous(&self) -> Option<&Calibration> {
        self.previous.as_ref()
    }

    /// The previous values, when the procedure ended without writing them back while
    /// the pen may hold others: the station writes them when the pen returns.
    #[must_use]
    pub fn pending_restore(&self) -> Option<&Calibration> {
        (self.fate == Some(PreviousFate::NotRestored))
            .then_some(self.previous.as_ref())
            .flatten()
    }

    /// The depth fit, once made.
    #[must_use]
    pub fn depth_fit(&self) -> Option<&DepthFit> {
        self.depth_fit.as_ref()
    }

    /// The speed fit, once made.
    #[must_use]
    pub fn speed_fit(&self) -> Option<&SpeedFit> {
        self.speed_fit.as_ref()
    }

    /// The fit points so far: (target, reading).
    #[must_use]
    pub fn fit_points(&self) -> Vec<(i32, f64)> {
        self.pairs(Stage::Fit)
    }

    /// The verification points so far: (target, reading).
    #[must_use]
    pub fn verify_points(&self) -> Vec<(i32, f64)> {
        self.pairs(Stage::Verify)
    }

    /// The certificate, once done; `local_time` and `utc` are the end's.
    #[must_use]
    pub fn certificate(&self, local_time: DateTime, utc: Timestamp) -> Option<Certificate> {
        if self.phase != Phase::Done {
            return None;
        }
        let measurements = match self.setup.kind {
            CalibrationKind::Depth => Measurements::Depth {
                fit_points: self.depth_points(Stage::Fit),
                fit: self.depth_fit.clone(),
                verification: self.depth_verification.clone(),
            },
            CalibrationKind::Speed => Measurements::Speed {
                fit_points: self.speed_points(Stage::Fit),
                fit: self.speed_fit.clone(),
                verification: self.speed_verification.clone(),
            },
        };
        Some(Certificate {
            format: super::certificate::CERTIFICATE_FORMAT,
            pen: self.setup.pen.clone(),
            local_time,
            utc,
            technician: self.setup.technician.clone(),
            station_version: super::certificate::STATION_VERSION.to_owned(),
            measurements,
            passed: self.passed(),
            reasons: self.reasons.clone(),
            previous: self.previous.clone().unwrap_or_else(Calibration::identity),
            previous_fate: self.fate.unwrap_or(PreviousFate::NotRestored),
            written: self.written.clone(),
            readings_from: self.setup.readings_from.clone(),
        })
    }
}

/// A reading's error renumbered to its point in the stage (the checks number from 1
/// within the slice they are given).
fn renumber(error: FitError, point: usize) -> FitError {
    match error {
        FitError::NotFinite { .. } => FitError::NotFinite { point },
        FitError::Negative { value, unit, .. } => FitError::Negative { point, value, unit },
        FitError::AboveMaximum {
            value, max, unit, ..
        } => FitError::AboveMaximum {
            point,
            value,
            max,
            unit,
        },
        FitError::Implausible {
            commanded,
            value,
            off,
            band,
            unit,
            ..
        } => FitError::Implausible {
            point,
            commanded,
            value,
            off,
            band,
            unit,
        },
        other => other,
    }
}

/// A calibration in words: `g = 30000 ppm, o = -40 µm, s = 0 ppm, date 20261124, tech T1`.
#[must_use]
pub fn describe(c: &Calibration) -> String {
    format!(
        "g = {} ppm, o = {} µm, s = {} ppm, date {}, tech {}",
        c.depth_gain_ppm, c.depth_offset_um, c.speed_gain_ppm, c.date, c.tech
    )
}
