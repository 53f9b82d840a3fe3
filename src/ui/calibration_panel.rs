//! The calibration wizard (issue 6), shown only in technician mode, in the session
//! panel's and the plots' place (as the session library is): choose depth or speed,
//! start, follow the steps, type each reading (or let the simulated pen's gauge read),
//! review the fit with its residuals and plot, write it, verify, and read the verdict
//! with the certificate's files.
//!
//! The panel only shows the station's [`CalibrationRun`] and passes the technician's
//! input on as [`UiCommand`]s; the procedure (in `calibration::procedure`) decides
//! every step, and the station's pump drives it, so the frame never waits on the pen.

use egui::RichText;
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use super::commands::UiCommand;
use super::theme;
use crate::calibration::certificate::{CalibrationKind, PreviousFate};
use crate::calibration::fit::{
    DEPTH_FIT_TARGETS_UM, DEPTH_VERIFY_TARGETS_UM, SPEED_SETPOINTS_RPM, SPEED_VERIFY_SETPOINTS_RPM,
};
use crate::calibration::procedure::{self, Action, ReadingRequest, Stage};
use crate::calibration::verify::{
    DEPTH_TOLERANCE_UM, SPEED_TOLERANCE_PCT, depth_check, speed_check,
};
use crate::link::LinkState;
use crate::protocol::Command;
use crate::station::Station;
use crate::station::technician::CalibrationRun;

/// The plot's height, points: enough to tell a line from its points at a glance.
const PLOT_HEIGHT: f32 = 280.0;

/// The steps list's height before it scrolls, points.
const STEPS_HEIGHT: f32 = 150.0;

/// The wizard's own state: the choice before starting and the reading being typed.
#[derive(Debug)]
pub struct CalibrationPanelState {
    /// Depth or speed, for the next start.
    pub kind: CalibrationKind,
    /// Take depth readings from `SIM GAUGE`; `None` until the technician ticks or
    /// unticks it: then it follows whether the pen is the built-in simulator.
    pub sim_gauge: Option<bool>,
    /// The reading being typed, µm or rpm.
    pub reading: String,
    /// The reading last asked for: a new one moves the keyboard to the field.
    asked: Option<ReadingRequest>,
}

impl Default for CalibrationPanelState {
    fn default() -> Self {
        Self {
            kind: CalibrationKind::Depth,
            sim_gauge: None,
            reading: String::new(),
            asked: None,
        }
    }
}

impl CalibrationPanelState {
    /// Whether the next depth calibration reads `SIM GAUGE`: as ticked, else only on
    /// the simulated pen (a real pen refuses it, and the run falls back to typing).
    #[must_use]
    pub fn sim_gauge_for(&self, simulated: bool) -> bool {
        self.sim_gauge.unwrap_or(simulated)
    }
}

/// A depth in µm as millimetres, `1.25 mm`: the interlock's own wording.
fn mm(depth_um: i32) -> String {
    crate::safety::interlock::mm(i64::from(depth_um))
}

/// What the procedure is doing now, in the technician's words.
#[must_use]
pub fn action_text(kind: CalibrationKind, sim_gauge: bool, action: &Action) -> String {
    match action {
        Action::Send { command, .. } => match command {
            Command::CalGet => "Reading the pen's calibration (CAL GET)…".to_owned(),
            Command::CalSet(_) => format!("Writing… ({command})"),
            Command::Depth { depth_um } => {
                format!(
                    "Moving to {}…",
                    mm(i32::try_from(*depth_um).unwrap_or(i32::MAX))
                )
            }
            Command::Speed { rpm } => format!("Setting the speed to {rpm} rpm…"),
            Command::Run => "Starting the needle…".to_owned(),
            Command::Halt => "Stopping the needle…".to_owned(),
            other => format!("Sending {other}…"),
        },
        Action::AwaitCalibration => "Reading back the pen's calibration…".to_owned(),
        Action::Settle { target } => match kind {
            CalibrationKind::Depth => format!("Moving to {}…", mm(*target)),
            CalibrationKind::Speed if *target == 0 => "Waiting for the needle to stop…".to_owned(),
            CalibrationKind::Speed => format!("Speed settling at {target} rpm…"),
        },
        Action::Reading(r) => {
            let stage = match r.stage {
                Stage::Fit => "",
                Stage::Verify => "Verification: ",
            };
            let at = format!("(point {} of {})", r.point, r.of);
            match kind {
                CalibrationKind::Depth if sim_gauge => format!(
                    "{stage}Reading the simulated gauge at {} {at}…",
                    mm(r.target)
                ),
                CalibrationKind::Depth => {
                    format!("{stage}Enter the gauge reading at {} {at}", mm(r.target))
                }
                CalibrationKind::Speed => format!(
                    "{stage}Enter the tachometer reading at {} rpm {at}",
                    r.target
                ),
            }
        }
        Action::Review => {
            "Review the fit below: write it to the pen, or cancel to keep the previous values."
                .to_owned()
        }
        Action::Done => "Finished.".to_owned(),
    }
}

/// What became of the previous values, in words.
#[must_use]
pub fn fate_text(fate: PreviousFate) -> &'static str {
    match fate {
        PreviousFate::Replaced => "replaced by the new calibration",
        PreviousFate::Restored => "written back to the pen and read back",
        PreviousFate::NotRestored => {
            "NOT written back (the pen went away): it counts as uncalibrated until they are"
        }
        PreviousFate::Unchanged => "unchanged: nothing was written to the pen",
    }
}

/// The reading field's label, which says the unit.
#[must_use]
pub fn reading_label(kind: CalibrationKind) -> &'static str {
    match kind {
        CalibrationKind::Depth => "Gauge reading (µm)",
        CalibrationKind::Speed => "Tachometer reading (rpm)",
    }
}

/// A verification point's residual and whether it is within tolerance: µm for depth,
/// % of the setpoint for speed (`calibration::verify`'s own per-point rule).
#[must_use]
pub fn verify_residual(kind: CalibrationKind, target: i32, reading: f64) -> (f64, bool) {
    match kind {
        CalibrationKind::Depth => {
            let check = depth_check(target, reading);
            (check.residual_um, check.passed)
        }
        CalibrationKind::Speed => {
            let check = speed_check(target, reading);
            (check.residual_pct, check.passed)
        }
    }
}

/// Draws the wizard: the start form, or the run in progress or finished.
pub fn calibration_ui(
    ui: &mut egui::Ui,
    station: Option<&Station>,
    simulated: bool,
    state: &mut CalibrationPanelState,
    commands: &mut Vec<UiCommand>,
) {
    let Some(station) = station else {
        ui.heading("Calibration");
        ui.label("No pen is connected: calibration needs the pen.");
        return;
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| match station.calibration_run() {
            None => start_ui(ui, station, simulated, state, commands),
            Some(run) => run_ui(ui, station, run, state, commands),
        });
}

fn start_ui(
    ui: &mut egui::Ui,
    station: &Station,
    simulated: bool,
    state: &mut CalibrationPanelState,
    commands: &mut Vec<UiCommand>,
) {
    ui.heading("Calibration");
    if let Some(info) = station.info() {
        ui.label(crate::text::pen_line(&info.model, &info.serial, &info.fw));
    }
    if let Some(status) = station.calibration_status() {
        ui.colored_label(
            super::connection_bar::calibration_color(status),
            format!("Calibration: {status}"),
        );
    }
    if let Some(cal) = station.calibration() {
        ui.label(RichText::new(format!("On the pen: {}", procedure::describe(cal))).weak());
    }
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        ui.label("Calibrate");
        ui.selectable_value(&mut state.kind, CalibrationKind::Depth, "Depth");
        ui.selectable_value(&mut state.kind, CalibrationKind::Speed, "Speed");
    });
    let targets = |t: &[i32], unit: &dyn Fn(i32) -> String| {
        t.iter().map(|v| unit(*v)).collect::<Vec<_>>().join(", ")
    };
    match state.kind {
        CalibrationKind::Depth => {
            let mut sim_gauge = state.sim_gauge_for(simulated);
            if ui
                .checkbox(
                    &mut sim_gauge,
                    "Take readings from the simulated pen's gauge (SIM GAUGE)",
                )
                .on_hover_text(
                    "Practice without a gauge: only the simulated pen has one. A real pen \
                     refuses SIM GAUGE and the wizard asks for typed readings instead.",
                )
                .changed()
            {
                state.sim_gauge = Some(sim_gauge);
            }
            ui.label(format!(
                "Fit depths: {}. Verification depths: {}. Each verification point must \
                 read within ±{DEPTH_TOLERANCE_UM} µm.",
                targets(&DEPTH_FIT_TARGETS_UM, &|v| mm(v)),
                targets(&DEPTH_VERIFY_TARGETS_UM, &|v| mm(v)),
            ));
        }
        CalibrationKind::Speed => {
            ui.label(format!(
                "Setpoints: {} rpm, read with a tachometer. Verification: {} rpm, each \
                 within ±{SPEED_TOLERANCE_PCT} %. The needle turns: keep the pen on the bench.",
                targets(&SPEED_SETPOINTS_RPM, &|v| v.to_string()),
                targets(&SPEED_VERIFY_SETPOINTS_RPM, &|v| v.to_string()),
            ));
        }
    }
    ui.label(
        RichText::new(
            "The pen is marked uncalibrated while this runs; on a failure or Cancel its \
             previous values are written back.",
        )
        .weak(),
    );
    let connected = matches!(station.link_state(), LinkState::Connected { .. });
    if !connected {
        ui.colored_label(theme::WARN, "Waiting for the pen's link…");
    }
    if ui
        .add_enabled(connected, egui::Button::new("Start calibration"))
        .clicked()
    {
        commands.push(UiCommand::StartCalibration {
            kind: state.kind,
            sim_gauge: state.kind == CalibrationKind::Depth && state.sim_gauge_for(simulated),
        });
    }
}

fn run_ui(
    ui: &mut egui::Ui,
    station: &Station,
    run: &CalibrationRun,
    state: &mut CalibrationPanelState,
    commands: &mut Vec<UiCommand>,
) {
    let p = run.procedure();
    let kind = p.kind();
    let setup = p.setup();
    ui.heading(format!(
        "{} calibration · pen {} · technician {}",
        match kind {
            CalibrationKind::Depth => "Depth",
            CalibrationKind::Speed => "Speed",
        },
        setup.pen.serial,
        setup.technician
    ));
    if run.sim_gauge() {
        ui.label(
            RichText::new(" SIM GAUGE: readings from the simulated pen (practice, not a gauge) ")
                .color(egui::Color32::WHITE)
                .background_color(theme::SIMULATED),
        );
    }
    ui.add_space(4.0);
    if run.is_done() {
        result_ui(ui, run, commands);
    } else {
        progress_ui(ui, run, state, commands);
    }
    ui.add_space(8.0);
    ui.columns(2, |columns| {
        points_ui(&mut columns[0], run);
        plot_ui(&mut columns[1], run);
    });
    ui.add_space(6.0);
    egui::CollapsingHeader::new("Steps")
        .default_open(true)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("calibration_steps")
                .max_height(STEPS_HEIGHT)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for line in p.log() {
                        ui.label(line);
                    }
                });
        });
    // Keep the station's pen-side readings in view while the pen moves.
    if !run.is_done()
        && let Some(t) = station.last_telemetry()
    {
        ui.label(RichText::new(format!("pen reports {} at {} rpm", mm(t.depth_um), t.rpm)).weak());
    }
}

fn progress_ui(
    ui: &mut egui::Ui,
    run: &CalibrationRun,
    state: &mut CalibrationPanelState,
    commands: &mut Vec<UiCommand>,
) {
    let p = run.procedure();
    let action = p.action();
    ui.horizontal(|ui| {
        // Busy while the pen or its gauge works; still while the technician is asked.
        let busy = match action {
            Action::Review => false,
            Action::Reading(_) => run.sim_gauge(),
            _ => true,
        };
        if busy {
            ui.spinner();
        }
        ui.label(
            RichText::new(action_text(p.kind(), run.sim_gauge(), &action))
                .strong()
                .size(16.0),
        );
    });
    match &action {
        Action::Reading(request) if !run.sim_gauge() => {
            reading_ui(ui, p.kind(), *request, state, commands);
        }
        _ => state.asked = None,
    }
    if let Some(why) = run.refused() {
        ui.add(
            egui::Label::new(RichText::new(format!("Refused: {why}")).color(theme::ALARM_HIGH))
                .wrap(),
        );
    }
    if action == Action::Review {
        fit_ui(ui, run);
        ui.horizontal(|ui| {
            if ui
                .button(RichText::new("Write to pen").strong())
                .on_hover_text("CAL SET the fit, read it back, then verify at new points")
                .clicked()
            {
                commands.push(UiCommand::CalibrationAccept);
            }
            if ui
                .button("Cancel")
                .on_hover_text("Write the previous values back; nothing is calibrated")
                .clicked()
            {
                commands.push(UiCommand::CalibrationCancel);
            }
        });
    } else if ui
        .button("Cancel")
        .on_hover_text("Stop the needle and write the previous values back")
        .clicked()
    {
        commands.push(UiCommand::CalibrationCancel);
    }
}

fn reading_ui(
    ui: &mut egui::Ui,
    kind: CalibrationKind,
    request: ReadingRequest,
    state: &mut CalibrationPanelState,
    commands: &mut Vec<UiCommand>,
) {
    let asked_now = state.asked != Some(request);
    state.asked = Some(request);
    ui.horizontal(|ui| {
        let label = ui.label(reading_label(kind));
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut state.reading)
                    .hint_text(match kind {
                        CalibrationKind::Depth => "e.g. 1250",
                        CalibrationKind::Speed => "e.g. 6000",
                    })
                    .desired_width(120.0),
            )
            .labelled_by(label.id);
        if asked_now {
            // A new point: the technician types straight away.
            field.request_focus();
        }
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let recorded = ui
            .add_enabled(
                !state.reading.trim().is_empty(),
                egui::Button::new("Record reading"),
            )
            .clicked();
        if (entered || recorded) && !state.reading.trim().is_empty() {
            commands.push(UiCommand::CalibrationReading(state.reading.clone()));
            field.request_focus();
        }
    });
}

fn result_ui(ui: &mut egui::Ui, run: &CalibrationRun, commands: &mut Vec<UiCommand>) {
    let p = run.procedure();
    let (text, color) = if p.passed() {
        (" CALIBRATION PASSED ", theme::OK)
    } else {
        (" CALIBRATION FAILED ", theme::ALARM_HIGH)
    };
    ui.label(
        RichText::new(text)
            .strong()
            .size(22.0)
            .color(egui::Color32::WHITE)
            .background_color(color),
    );
    for reason in p.reasons() {
        ui.add(egui::Label::new(RichText::new(reason).color(theme::ALARM_HIGH)).wrap());
    }
    if p.depth_fit().is_some() || p.speed_fit().is_some() {
        fit_ui(ui, run);
    }
    if let Some(previous) = p.previous() {
        // The certificate's own fate; its times do not matter here.
        let fate = p
            .certificate(
                jiff::civil::DateTime::default(),
                jiff::Timestamp::UNIX_EPOCH,
            )
            .map(|c| c.previous_fate);
        ui.label(format!(
            "Previous values: {}{}",
            procedure::describe(previous),
            fate.map_or_else(String::new, |f| format!(" — {}", fate_text(f)))
        ));
    }
    match run.certificate() {
        Some(Ok((json, html))) => {
            ui.label("Certificate:");
            for path in [json, html] {
                ui.label(RichText::new(path.display().to_string()).monospace());
            }
        }
        Some(Err(why)) => {
            ui.colored_label(
                theme::ALARM_HIGH,
                format!("The certificate could not be written: {why}"),
            );
        }
        None => {}
    }
    if ui.button("Close").clicked() {
        commands.push(UiCommand::DismissCalibration);
    }
}

fn fit_ui(ui: &mut egui::Ui, run: &CalibrationRun) {
    let p = run.procedure();
    if let Some(fit) = p.depth_fit() {
        ui.label(
            RichText::new(format!(
                "Fit: g = {} ppm ({:+.3} %), o = {} µm; largest residual {:.1} µm; R² = {:.6}",
                fit.gain_ppm,
                fit.gain * 100.0,
                fit.offset_um,
                fit.max_abs_residual_um,
                fit.r_squared
            ))
            .strong(),
        );
    } else if let Some(fit) = p.speed_fit() {
        ui.label(
            RichText::new(format!(
                "Fit: s = {} ppm ({:+.3} %); largest residual {:.2} %",
                fit.gain_ppm,
                fit.gain * 100.0,
                fit.max_abs_residual_pct
            ))
            .strong(),
        );
    }
}

/// The points so far, fit then verification: target, reading, residual, and for
/// verification whether it passed.
fn points_ui(ui: &mut egui::Ui, run: &CalibrationRun) {
    let p = run.procedure();
    let kind = p.kind();
    let (unit, residual_unit) = match kind {
        CalibrationKind::Depth => ("µm", "µm"),
        CalibrationKind::Speed => ("rpm", "%"),
    };
    let fit_residuals: Vec<f64> = match (p.depth_fit(), p.speed_fit()) {
        (Some(f), _) => f.residuals_um.clone(),
        (_, Some(f)) => f.residuals_pct.clone(),
        _ => Vec::new(),
    };
    let fit_points = p.fit_points();
    let verify_points = p.verify_points();
    ui.label(RichText::new("Points").strong());
    if fit_points.is_empty() {
        ui.label(RichText::new("No readings yet.").weak());
        return;
    }
    egui::Grid::new("calibration_points")
        .num_columns(5)
        .striped(true)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for title in [
                "",
                "Target",
                "Reading",
                &format!("Residual ({residual_unit})"),
                "",
            ] {
                ui.label(RichText::new(title).strong());
            }
            ui.end_row();
            for (i, (target, reading)) in fit_points.iter().enumerate() {
                ui.label(format!("fit {}", i + 1));
                ui.label(format!("{target} {unit}"));
                ui.label(format!("{reading:.1} {unit}"));
                ui.label(
                    fit_residuals
                        .get(i)
                        .map_or_else(|| "–".to_owned(), |r| format!("{r:+.2}")),
                );
                ui.label("");
                ui.end_row();
            }
            for (i, (target, reading)) in verify_points.iter().enumerate() {
                let (residual, passed) = verify_residual(kind, *target, *reading);
                ui.label(format!("verify {}", i + 1));
                ui.label(format!("{target} {unit}"));
                ui.label(format!("{reading:.1} {unit}"));
                ui.label(format!("{residual:+.2}"));
                if passed {
                    ui.colored_label(theme::OK, "pass");
                } else {
                    ui.colored_label(theme::ALARM_HIGH, "FAIL");
                }
                ui.end_row();
            }
        });
    let tolerance = match kind {
        CalibrationKind::Depth => format!("±{DEPTH_TOLERANCE_UM} µm"),
        CalibrationKind::Speed => format!("±{SPEED_TOLERANCE_PCT} %"),
    };
    ui.label(
        RichText::new(format!(
            "Fit residual: reading − fitted line. Verification residual: reading − target, \
             within {tolerance} to pass."
        ))
        .weak(),
    );
}

/// Measured against commanded: the fit points, the verification points, the fitted
/// line and the identity line (depth in mm; speed tachometer against setpoint, rpm).
fn plot_ui(ui: &mut egui::Ui, run: &CalibrationRun) {
    let p = run.procedure();
    let kind = p.kind();
    let scale = match kind {
        CalibrationKind::Depth => 1.0 / 1000.0,
        CalibrationKind::Speed => 1.0,
    };
    let to_xy = |points: &[(i32, f64)]| -> Vec<[f64; 2]> {
        points
            .iter()
            .map(|(t, r)| [f64::from(*t) * scale, r * scale])
            .collect()
    };
    let fit_xy = to_xy(&p.fit_points());
    let verify_xy = to_xy(&p.verify_points());
    let top = match kind {
        CalibrationKind::Depth => 2.75,
        CalibrationKind::Speed => 10_000.0,
    };
    let fitted: Option<Vec<[f64; 2]>> = match (p.depth_fit(), p.speed_fit()) {
        (Some(f), _) => Some(
            [0.0, top]
                .iter()
                .map(|x| [*x, f.predict_um(x / scale) * scale])
                .collect(),
        ),
        (_, Some(f)) => Some(
            [0.0, top]
                .iter()
                .map(|x| [*x, (1.0 + f.gain) * x])
                .collect(),
        ),
        _ => None,
    };
    let (x_label, y_label) = match kind {
        CalibrationKind::Depth => ("commanded depth (mm)", "measured depth (mm)"),
        CalibrationKind::Speed => ("setpoint (rpm)", "tachometer (rpm)"),
    };
    Plot::new("calibration_plot")
        .height(PLOT_HEIGHT)
        // Bottom right: the points climb to the top right.
        .legend(Legend::default().position(egui_plot::Corner::RightBottom))
        .x_axis_label(x_label)
        .y_axis_label(y_label)
        .include_x(0.0)
        .include_x(top)
        .include_y(0.0)
        .include_y(top)
        .show(ui, |pui| {
            pui.line(
                Line::new("identity", PlotPoints::from(vec![[0.0, 0.0], [top, top]]))
                    .color(egui::Color32::GRAY)
                    .style(egui_plot::LineStyle::dashed_loose()),
            );
            if let Some(line) = fitted {
                pui.line(
                    Line::new("fitted line", PlotPoints::from(line))
                        .color(theme::DEPTH_TARGET)
                        .width(2.0),
                );
            }
            pui.points(
                Points::new("fit points", PlotPoints::from(fit_xy))
                    .color(theme::DEPTH_ACTUAL)
                    .radius(4.0),
            );
            if !verify_xy.is_empty() {
                pui.points(
                    Points::new("verification", PlotPoints::from(verify_xy))
                        .color(theme::SPEED_MEASURED)
                        .shape(egui_plot::MarkerShape::Diamond)
                        .radius(5.0),
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_should_read_as_the_technician_needs_them() {
        let depth = CalibrationKind::Depth;
        let speed = CalibrationKind::Speed;
        let reading = |stage, point, target| {
            Action::Reading(ReadingRequest {
                stage,
                point,
                of: 6,
                target,
            })
        };
        assert_eq!(
            action_text(depth, false, &Action::Settle { target: 1250 }),
            "Moving to 1.25 mm…"
        );
        assert_eq!(
            action_text(depth, false, &reading(Stage::Fit, 3, 1250)),
            "Enter the gauge reading at 1.25 mm (point 3 of 6)"
        );
        assert_eq!(
            action_text(speed, false, &Action::Settle { target: 6000 }),
            "Speed settling at 6000 rpm…"
        );
        assert!(
            action_text(speed, false, &reading(Stage::Verify, 1, 4000))
                .starts_with("Verification: Enter the tachometer reading at 4000 rpm")
        );
        let write = Action::Send {
            step: 2,
            command: Command::CalGet,
        };
        assert!(action_text(depth, true, &write).contains("CAL GET"));
    }

    #[test]
    fn verification_residuals_should_follow_the_tolerances() {
        let depth = CalibrationKind::Depth;
        assert_eq!(verify_residual(depth, 1500, 1550.0), (50.0, true));
        assert!(verify_residual(depth, 1500, 1450.5).1);
        assert!(!verify_residual(depth, 1500, 1449.5).1);
        let speed = CalibrationKind::Speed;
        assert!(verify_residual(speed, 6000, 6060.0).1);
        assert!(!verify_residual(speed, 6000, 6061.0).1);
    }
}
