//! The window's colours, in one place, each named for what it means.
//!
//! Alarm colours follow IEC 60601-1-8 as the clinical reference gives them: red for
//! high priority, yellow for medium, cyan for low.

use egui::Color32;

/// High-priority alarm: red.
pub const ALARM_HIGH: Color32 = Color32::from_rgb(0xD3, 0x1F, 0x1F);
/// Medium-priority alarm: yellow.
pub const ALARM_MEDIUM: Color32 = Color32::from_rgb(0xF2, 0xC2, 0x00);
/// Low-priority alarm: cyan.
pub const ALARM_LOW: Color32 = Color32::from_rgb(0x00, 0xB7, 0xC7);
/// Text on an alarm colour.
pub const ON_ALARM: Color32 = Color32::BLACK;
/// The emergency-stop button.
pub const ESTOP: Color32 = Color32::from_rgb(0xC6, 0x10, 0x10);
/// Text on the emergency-stop button.
pub const ON_ESTOP: Color32 = Color32::WHITE;
/// The SIMULATED badge: never to be mistaken for a real pen.
pub const SIMULATED: Color32 = Color32::from_rgb(0x8E, 0x44, 0xAD);
/// Good news (link up, fresh cartridge, calibration valid).
pub const OK: Color32 = Color32::from_rgb(0x2E, 0x9E, 0x4F);
/// A warning that is not an alarm (calibration due soon).
pub const WARN: Color32 = Color32::from_rgb(0xE0, 0x8E, 0x00);
/// A refusal from the safety core.
pub const REFUSAL: Color32 = Color32::from_rgb(0xE0, 0x55, 0x22);
/// A step of the procedure (on the replay's timeline, the checklist).
pub const STEP: Color32 = Color32::from_rgb(0x6F, 0xB0, 0x8A);
/// Measured needle speed.
pub const SPEED_MEASURED: Color32 = Color32::from_rgb(0x3C, 0x8D, 0xDC);
/// Target needle speed.
pub const SPEED_TARGET: Color32 = Color32::from_rgb(0x9A, 0xB8, 0xD8);
/// Actual depth.
pub const DEPTH_ACTUAL: Color32 = Color32::from_rgb(0xD9, 0x6C, 0x1E);
/// Target depth.
pub const DEPTH_TARGET: Color32 = Color32::from_rgb(0xE8, 0xB0, 0x7E);
/// The zone's depth limit.
pub const DEPTH_LIMIT: Color32 = ALARM_HIGH;
/// The replay marking (the REPLAY strip): never to be mistaken for a live session.
pub const REPLAY: Color32 = Color32::from_rgb(0x1F, 0x5F, 0xA8);
/// Text on the replay marking.
pub const ON_REPLAY: Color32 = Color32::WHITE;
/// The replay's cursor, on the plots and the timeline.
pub const REPLAY_CURSOR: Color32 = Color32::from_rgb(0xF0, 0xF0, 0x40);
/// The replay's loop range and selection on the timeline.
pub const REPLAY_LOOP: Color32 = Color32::from_rgba_unmultiplied_const(0x5C, 0xA9, 0xF2, 0x50);

/// The pen's state as a strong label (`pen RUNNING`), red when stopped by a fault or an
/// E-stop, green while the needle runs: the live connection bar and replay's readings
/// show it alike.
pub fn pen_state_label(ui: &mut egui::Ui, state: crate::protocol::PenState) {
    use crate::protocol::PenState;
    let color = match state {
        PenState::Estop | PenState::Fault => ALARM_HIGH,
        PenState::Running => OK,
        PenState::Idle => ui.visuals().text_color(),
    };
    ui.label(
        egui::RichText::new(format!("pen {state}"))
            .strong()
            .color(color),
    );
}

/// The TECHNICIAN MODE strip: calibration may be written, nobody may forget it.
pub const TECHNICIAN: Color32 = Color32::from_rgb(0x8A, 0x5A, 0x00);
/// Text on the technician marking.
pub const ON_TECHNICIAN: Color32 = Color32::WHITE;
