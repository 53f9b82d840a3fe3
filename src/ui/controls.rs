//! Controls: the EMERGENCY STOP, depth and speed, start and stop, the operator's
//! reset (with confirmation), and the last refusal with its reason.
//!
//! The depth control stops at the active zone's limit and shows it. It is a
//! convenience, not the safety: whatever reaches the station is checked again by the
//! interlock in the link thread, and a refusal from any path is shown here. Beside it,
//! the needle's depth as the pen measures it and the target the pen acknowledged: the
//! slider is what the operator is choosing, the pen may be elsewhere. A start the link
//! holds until the needle is in place says so under Start.

use std::fmt::Write as _;

use egui::{RichText, Vec2};

use super::commands::{LogLine, UiCommand};
use super::theme;
use crate::safety::interlock::mm;
use crate::station::Station;

/// The controls' state.
#[derive(Debug, Clone)]
pub struct ControlsState {
    /// The depth the operator is choosing, mm.
    pub depth_mm: f64,
    /// The speed the operator is choosing, rpm.
    pub speed_rpm: f64,
    /// The reset confirmation dialog is open.
    pub confirm_reset: bool,
}

impl Default for ControlsState {
    fn default() -> Self {
        Self {
            depth_mm: 0.0,
            speed_rpm: 6000.0,
            confirm_reset: false,
        }
    }
}

/// A sample older than this is shown with its age beside the measured depth.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// The label of the emergency stop, for tests and screen readers.
pub const ESTOP_LABEL: &str = "EMERGENCY STOP";

/// Draws the controls.
/// The controls while nobody may treat (signed out, or the lock is down): the
/// E-stop and Stop only, which always work, and what the needle does now.
pub fn stop_only_ui(ui: &mut egui::Ui, station: Option<&Station>, commands: &mut Vec<UiCommand>) {
    estop_ui(ui, commands);
    ui.separator();
    let stop = egui::Button::new(RichText::new("Stop").strong()).min_size(Vec2::new(120.0, 36.0));
    if ui.add(stop).clicked() {
        commands.push(UiCommand::Stop);
    }
    let needle = match station.and_then(Station::last_telemetry) {
        Some(t) if t.state == crate::protocol::PenState::Running => {
            format!("Needle RUNNING at {} rpm", t.rpm)
        }
        Some(t) => format!("Needle {}", t.state),
        None => "Needle: no telemetry".to_owned(),
    };
    ui.label(RichText::new(needle).strong());
}

/// The E-stop button, full width.
fn estop_ui(ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
    let estop = egui::Button::new(
        RichText::new(ESTOP_LABEL)
            .size(22.0)
            .strong()
            .color(theme::ON_ESTOP),
    )
    .fill(theme::ESTOP)
    .min_size(Vec2::new(ui.available_width(), 64.0));
    if ui
        .add(estop)
        .on_hover_text("Esc: stops the needle at once")
        .clicked()
    {
        commands.push(UiCommand::EStop);
    }
    ui.small("Esc: emergency stop · Space: stop the needle. No key starts anything.");
}

/// The operator's controls: the E-stop, depth, speed, start and stop, the needle.
pub fn controls_ui(
    ui: &mut egui::Ui,
    station: Option<&Station>,
    state: &mut ControlsState,
    last_refusal: Option<&LogLine>,
    commands: &mut Vec<UiCommand>,
) {
    estop_ui(ui, commands);
    // The session's duration, here on every screen size (the centre may scroll).
    if let Some(session) = station.and_then(super::source::SessionSource::session) {
        ui.label(RichText::new(super::plots::duration_line(&session)).strong());
    }
    ui.separator();

    let summary = station.and_then(Station::safety_summary);
    let zone = summary.and_then(|s| s.zone);
    let limit_um = summary.and_then(|s| s.limit_um);
    if let (Some(zone), Some(limit_um)) = (zone, limit_um) {
        ui.label(RichText::new(format!("Zone: {zone}")).strong());
        ui.colored_label(
            theme::DEPTH_LIMIT,
            format!("limit {}", mm(i64::from(limit_um))),
        );
    } else {
        // Two lines, like a selected zone's, so nothing below moves on selection.
        ui.label(RichText::new("Zone: none selected").strong());
        ui.label("click a zone on the face map");
    }
    depth_ui(ui, state, limit_um, commands);
    measured_depth_ui(ui, station, limit_um);
    speed_ui(ui, station, state, commands);

    ui.horizontal(|ui| {
        let start =
            egui::Button::new(RichText::new("Start").strong()).min_size(Vec2::new(90.0, 32.0));
        if ui.add(start).clicked() {
            commands.push(UiCommand::Start);
        }
        let stop =
            egui::Button::new(RichText::new("Stop").strong()).min_size(Vec2::new(90.0, 32.0));
        if ui.add(stop).clicked() {
            commands.push(UiCommand::Stop);
        }
        if ui
            .button("Reset…")
            .on_hover_text("After an E-stop, a fault or a link loss")
            .clicked()
        {
            state.confirm_reset = true;
        }
    });
    if let Some(held) = station.and_then(Station::held_start) {
        ui.colored_label(theme::WARN, RichText::new(held).strong());
    }
    if let Some(latched) = summary.filter(|s| !s.latched.is_empty()) {
        let causes: Vec<String> = latched.latched.iter().map(ToString::to_string).collect();
        ui.colored_label(
            theme::ALARM_HIGH,
            format!("Stopped after: {}. Reset to go on.", causes.join(", ")),
        );
    }
    if let Some(refusal) = last_refusal {
        ui.add_space(4.0);
        egui::Frame::group(ui.style())
            .stroke(egui::Stroke::new(1.0, theme::REFUSAL))
            .show(ui, |ui| {
                ui.colored_label(theme::REFUSAL, RichText::new(&refusal.text).strong());
            });
    }
    reset_dialog_ui(ui, state, commands);
}

fn depth_ui(
    ui: &mut egui::Ui,
    state: &mut ControlsState,
    limit_um: Option<i32>,
    commands: &mut Vec<UiCommand>,
) {
    let max_mm = limit_um.map_or(0.0, |um| f64::from(um) / 1000.0);
    // The control never offers more than the limit (after a zone change too).
    state.depth_mm = state.depth_mm.clamp(0.0, max_mm);
    ui.add_enabled_ui(limit_um.is_some(), |ui| {
        let slider = egui::Slider::new(&mut state.depth_mm, 0.0..=max_mm)
            .step_by(0.05)
            .fixed_decimals(2)
            .suffix(" mm")
            .text("depth");
        let response = ui.add(slider);
        if settled(ui, &response) {
            #[allow(clippy::cast_possible_truncation)] // ≤ 2.5 mm in µm
            let depth_um = (state.depth_mm * 1000.0).round() as i64;
            commands.push(UiCommand::SetDepthUm(depth_um));
        }
    });
}

/// The needle's measured depth and the pen's acknowledged target, under the depth
/// control: red when the needle is deeper than the zone allows.
fn measured_depth_ui(ui: &mut egui::Ui, station: Option<&Station>, limit_um: Option<i32>) {
    let measured_um = station
        .and_then(Station::last_telemetry)
        .map(|t| t.depth_um);
    let target_um = station
        .and_then(Station::safety_summary)
        .and_then(|s| s.depth_target_um);
    let Some(measured_um) = measured_um else {
        ui.label("needle: not measured yet (no telemetry)");
        return;
    };
    let target = target_um.map_or_else(|| "unknown".to_owned(), |t| mm(i64::from(t)));
    let mut text = format!(
        "needle measured {} · pen target {target}",
        mm(i64::from(measured_um))
    );
    // An old sample is not the needle now: say how old, so it is never read as live.
    let stale = station
        .and_then(Station::telemetry_age)
        .filter(|age| *age > STALE_AFTER);
    if let Some(age) = stale {
        let _ = write!(text, " · no telemetry for {:.1} s", age.as_secs_f64());
    }
    let deeper = limit_um.is_some_and(|limit| measured_um > limit);
    let color = if deeper || stale.is_some() {
        theme::ALARM_HIGH
    } else {
        theme::DEPTH_ACTUAL
    };
    ui.colored_label(color, RichText::new(text).strong())
        .on_hover_text("As the pen reports it in its telemetry; starts are decided on this");
}

fn speed_ui(
    ui: &mut egui::Ui,
    station: Option<&Station>,
    state: &mut ControlsState,
    commands: &mut Vec<UiCommand>,
) {
    let (min, max) = station
        .and_then(Station::info)
        .map_or((3000.0, 9000.0), |i| {
            (f64::from(i.speed_min_rpm), f64::from(i.speed_max_rpm))
        });
    let response = ui.add(
        egui::Slider::new(&mut state.speed_rpm, min..=max)
            .step_by(50.0)
            .suffix(" rpm")
            .text("speed"),
    );
    // The measured speed beside its control, as the depth's is, and the target the
    // pen acknowledged (not the slider's value, which goes out only when let go).
    let measured = station.and_then(Station::last_telemetry).map_or_else(
        || "not measured yet".to_owned(),
        |t| format!("{} rpm", t.rpm),
    );
    let target = station.and_then(Station::speed_target_rpm).map_or_else(
        || "not set by the station".to_owned(),
        |rpm| format!("{rpm} rpm ({} strokes/s)", rpm / 60),
    );
    let text = format!("speed measured {measured} · pen target {target}");
    ui.colored_label(theme::SPEED_MEASURED, RichText::new(text).strong())
        .on_hover_text("As the pen reports it in its telemetry");
    if settled(ui, &response) {
        #[allow(clippy::cast_possible_truncation)] // rpm within the pen's range
        commands.push(UiCommand::SetSpeedRpm(state.speed_rpm.round() as i64));
    }
}

/// A slider's new value is asked for once the hand lets go: at the end of a drag, on a
/// click (press and release may fall in one frame), or on a key. Not on every frame of
/// a drag: the pen would be sent every value on the way.
fn settled(ui: &egui::Ui, response: &egui::Response) -> bool {
    response.drag_stopped() || (response.changed() && !ui.input(|i| i.pointer.any_down()))
}

fn reset_dialog_ui(ui: &mut egui::Ui, state: &mut ControlsState, commands: &mut Vec<UiCommand>) {
    if !state.confirm_reset {
        return;
    }
    let modal = egui::Modal::new(egui::Id::unique("confirm_reset")).show(ui.ctx(), |ui| {
        ui.heading("Reset the pen?");
        ui.label("This clears the latched stop after an E-stop, a fault or a link loss.");
        ui.label("The needle does not start by itself: Start is still needed.");
        ui.horizontal(|ui| {
            if ui.button("Confirm reset").clicked() {
                commands.push(UiCommand::Reset);
                state.confirm_reset = false;
            }
            if ui.button("Cancel").clicked() {
                state.confirm_reset = false;
            }
        });
    });
    if modal.should_close() {
        state.confirm_reset = false;
    }
}
