//! The replay's transport, at the bottom of the window in replay mode: play and
//! pause, speed, steps, jumps, the loop, and a timeline across the window's width that
//! marks events and alarms, shows the cursor, scrubs on click and drag, and marks a
//! range with shift-drag (to loop it).
//!
//! The timeline maps its whole width linearly to the session, start at the left edge
//! ([`timeline_ms_at`]). Its accessible name is `timeline` (a slider whose value is the
//! cursor in seconds).

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, Vec2, WidgetInfo};

use super::commands::UiCommand;
use super::plots::clock;
use super::theme;
use crate::replay::{Direction, EventKind, Replay, ReplayCommand, SPEEDS};
use crate::safety::alarms::Priority;

/// The timeline's height, points.
pub const TIMELINE_HEIGHT: f32 = 44.0;

/// Events within this many points of the pointer are listed in its tooltip.
const HOVER_PX: f32 = 4.0;

/// The panel's state between frames.
#[derive(Debug, Clone, Default)]
pub struct ReplayPanelState {
    /// Where a shift-drag on the timeline started, session ms.
    selecting_from_ms: Option<f64>,
}

/// The session time under `x` on a timeline drawn in `rect`, ms, clamped to the
/// session. Pure: the tests click where this says.
#[must_use]
pub fn timeline_ms_at(rect: Rect, x: f32, duration_ms: f64) -> f64 {
    if rect.width() <= 0.0 {
        return 0.0;
    }
    let fraction = f64::from(((x - rect.left()) / rect.width()).clamp(0.0, 1.0));
    fraction * duration_ms
}

/// Where session time `t_ms` is on a timeline drawn in `rect`.
#[must_use]
pub fn timeline_x_of(rect: Rect, t_ms: f64, duration_ms: f64) -> f32 {
    if duration_ms <= 0.0 {
        return rect.left();
    }
    #[allow(clippy::cast_possible_truncation)] // a fraction of a width in points
    let fraction = (t_ms / duration_ms).clamp(0.0, 1.0) as f32;
    rect.left() + fraction * rect.width()
}

/// `m:ss.mmm`, for the cursor's position.
#[must_use]
pub fn clock_ms(ms: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative ms
    let whole = ms.max(0.0).round() as u64;
    format!(
        "{}:{:02}.{:03}",
        whole / 60_000,
        whole / 1000 % 60,
        whole % 1000
    )
}

/// The colour of an event's tick.
#[must_use]
pub fn event_color(kind: EventKind) -> Color32 {
    match kind {
        EventKind::AlarmRaised(Priority::High) | EventKind::LinkLost | EventKind::NeedleStopped => {
            theme::ALARM_HIGH
        }
        EventKind::AlarmRaised(Priority::Medium) => theme::ALARM_MEDIUM,
        EventKind::AlarmRaised(Priority::Low) => theme::ALARM_LOW,
        EventKind::AlarmChanged | EventKind::Link | EventKind::Clock | EventKind::Sound => {
            Color32::GRAY
        }
        EventKind::Refusal | EventKind::CommandFailed => theme::REFUSAL,
        EventKind::Pen => theme::SIMULATED,
        EventKind::Zone => theme::SPEED_MEASURED,
        EventKind::Cartridge => theme::OK,
        EventKind::Note => Color32::WHITE,
        EventKind::Step => theme::STEP,
    }
}

/// Draws the transport row and the timeline.
pub fn replay_panel_ui(
    ui: &mut egui::Ui,
    replay: &Replay,
    state: &mut ReplayPanelState,
    commands: &mut Vec<UiCommand>,
) {
    transport_ui(ui, replay, commands);
    timeline_ui(ui, replay, state, commands);
    ui.small(
        "Space: play/pause · Left/Right: one sample · click or drag the timeline to move \
         the cursor · shift-drag to mark a range to loop",
    );
}

fn transport_ui(ui: &mut egui::Ui, replay: &Replay, commands: &mut Vec<UiCommand>) {
    let transport = replay.transport();
    let mut push = |command| commands.push(UiCommand::Replay(command));
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Prev event")
            .on_hover_text("To the previous event or alarm")
            .clicked()
        {
            push(ReplayCommand::StepEvent(Direction::Back));
        }
        if ui.button("-5 s").clicked() {
            push(ReplayCommand::JumpMs(-5000));
        }
        if ui
            .button("Step back")
            .on_hover_text("One telemetry sample back (Left)")
            .clicked()
        {
            push(ReplayCommand::StepSample(Direction::Back));
        }
        let play = if transport.playing() { "Pause" } else { "Play" };
        let play_button =
            egui::Button::new(RichText::new(play).strong()).min_size(Vec2::new(70.0, 0.0));
        if ui.add(play_button).on_hover_text("Space").clicked() {
            push(ReplayCommand::TogglePlay);
        }
        if ui
            .button("Step forward")
            .on_hover_text("One telemetry sample forward (Right)")
            .clicked()
        {
            push(ReplayCommand::StepSample(Direction::Forward));
        }
        if ui.button("+5 s").clicked() {
            push(ReplayCommand::JumpMs(5000));
        }
        if ui
            .button("Next event")
            .on_hover_text("To the next event or alarm")
            .clicked()
        {
            push(ReplayCommand::StepEvent(Direction::Forward));
        }
        ui.separator();
        ui.label("speed");
        for (index, speed) in SPEEDS.iter().enumerate() {
            let label = format!("{speed}x");
            if ui
                .selectable_label(transport.speed_index() == index, label)
                .clicked()
            {
                push(ReplayCommand::SetSpeedIndex(index));
            }
        }
        ui.separator();
        let mut looping = transport.looping();
        let has_loop = transport.loop_range().is_some();
        if ui
            .add_enabled(has_loop, egui::Checkbox::new(&mut looping, "Loop"))
            .on_disabled_hover_text("Shift-drag on the timeline, then \"Loop selection\"")
            .changed()
        {
            push(ReplayCommand::SetLooping(looping));
        }
        if ui
            .add_enabled(
                transport.selection().is_some(),
                egui::Button::new("Loop selection"),
            )
            .on_disabled_hover_text("Shift-drag on the timeline to select a range")
            .clicked()
        {
            push(ReplayCommand::LoopSelection);
        }
        if transport.selection().is_some() && ui.button("Clear selection").clicked() {
            push(ReplayCommand::Select(None));
        }
        ui.separator();
        ui.label(
            RichText::new(format!(
                "{} / {}",
                clock_ms(transport.position_ms()),
                clock_ms(transport.duration_ms())
            ))
            .monospace(),
        );
    });
}

#[allow(clippy::too_many_lines)] // one widget: its input, then its painting
fn timeline_ui(
    ui: &mut egui::Ui,
    replay: &Replay,
    state: &mut ReplayPanelState,
    commands: &mut Vec<UiCommand>,
) {
    let transport = replay.transport();
    let duration_ms = transport.duration_ms();
    let size = Vec2::new(ui.available_width(), TIMELINE_HEIGHT);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    response.widget_info(|| WidgetInfo::slider(true, transport.position_ms() / 1000.0, "timeline"));

    // Input: shift-drag marks a range; any other press or drag moves the cursor.
    let shift = ui.input(|i| i.modifiers.shift);
    let pointer_ms = response
        .interact_pointer_pos()
        .map(|p| timeline_ms_at(rect, p.x, duration_ms));
    if response.drag_started() && shift {
        // From where the button went down: a drag starts only after some movement.
        state.selecting_from_ms = ui
            .input(|i| i.pointer.press_origin())
            .map(|p| timeline_ms_at(rect, p.x, duration_ms));
    }
    if let (Some(from), Some(to)) = (state.selecting_from_ms, pointer_ms) {
        if response.dragged() || response.drag_stopped() {
            commands.push(UiCommand::Replay(ReplayCommand::Select(Some((from, to)))));
        }
        if response.drag_stopped() {
            state.selecting_from_ms = None;
        }
    } else if let Some(t_ms) = pointer_ms
        && !shift
        && (response.clicked() || response.is_pointer_button_down_on())
    {
        commands.push(UiCommand::Replay(ReplayCommand::SeekMs(t_ms)));
    }
    if !response.is_pointer_button_down_on() && !response.drag_stopped() {
        state.selecting_from_ms = None;
    }

    if !ui.is_rect_visible(rect) {
        return;
    }
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 3.0, visuals.extreme_bg_color);
    let x = |t_ms: f64| timeline_x_of(rect, t_ms, duration_ms);
    if let Some(range) = transport.loop_range() {
        let span = Rect::from_x_y_ranges(x(range.start_ms)..=x(range.end_ms), rect.y_range());
        let fill = if transport.looping() {
            theme::REPLAY_LOOP
        } else {
            theme::REPLAY_LOOP.gamma_multiply(0.4)
        };
        painter.rect_filled(span, 0.0, fill);
    }
    if let Some(range) = transport.selection() {
        let span = Rect::from_x_y_ranges(x(range.start_ms)..=x(range.end_ms), rect.y_range());
        painter.rect_stroke(
            span.shrink(1.0),
            0.0,
            Stroke::new(1.5, theme::REPLAY_CURSOR),
            egui::StrokeKind::Inside,
        );
    }
    time_ticks(&painter, rect, duration_ms, visuals.weak_text_color());
    // Events as ticks: alarms raised reach the full height, so they stand out.
    for event in replay.events() {
        #[allow(clippy::cast_precision_loss)] // session ms
        let ex = x(event.at_ms as f64);
        let (top, width) = match event.kind {
            EventKind::AlarmRaised(_) | EventKind::LinkLost => (rect.top() + 2.0, 2.5),
            _ => (rect.top() + rect.height() * 0.35, 1.5),
        };
        painter.line_segment(
            [egui::pos2(ex, top), egui::pos2(ex, rect.bottom() - 14.0)],
            Stroke::new(width, event_color(event.kind)),
        );
    }
    let cx = x(transport.position_ms());
    painter.line_segment(
        [egui::pos2(cx, rect.top()), egui::pos2(cx, rect.bottom())],
        Stroke::new(2.5, theme::REPLAY_CURSOR),
    );

    if let Some(pos) = response.hover_pos() {
        let t_ms = timeline_ms_at(rect, pos.x, duration_ms);
        #[allow(clippy::cast_precision_loss)] // session ms
        let near: Vec<&crate::replay::TimelineEvent> = replay
            .events()
            .iter()
            .filter(|e| (x(e.at_ms as f64) - pos.x).abs() <= HOVER_PX)
            .take(8)
            .collect();
        response.on_hover_ui_at_pointer(|ui| {
            ui.label(clock_ms(t_ms));
            for event in near {
                #[allow(clippy::cast_precision_loss)] // session ms
                let at = clock_ms(event.at_ms as f64);
                ui.colored_label(event_color(event.kind), format!("{at}  {}", event.text));
            }
        });
    }
}

/// Time labels along the bottom, at a round step at least 90 points apart.
fn time_ticks(painter: &egui::Painter, rect: Rect, duration_ms: f64, color: Color32) {
    const STEPS_S: [f64; 12] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    ];
    if duration_ms <= 0.0 || rect.width() <= 0.0 {
        return;
    }
    let px_per_s = f64::from(rect.width()) / (duration_ms / 1000.0);
    let step_s = STEPS_S
        .into_iter()
        .find(|s| s * px_per_s >= 90.0)
        .unwrap_or(3600.0);
    let mut t_s = 0.0;
    while t_s * 1000.0 <= duration_ms {
        let x = timeline_x_of(rect, t_s * 1000.0, duration_ms);
        painter.line_segment(
            [
                egui::pos2(x, rect.bottom() - 12.0),
                egui::pos2(x, rect.bottom() - 8.0),
            ],
            Stroke::new(1.0, color),
        );
        let anchor = if t_s == 0.0 {
            Align2::LEFT_BOTTOM
        } else {
            Align2::CENTER_BOTTOM
        };
        painter.text(
            egui::pos2(x + 1.0, rect.bottom()),
            anchor,
            clock(t_s),
            FontId::proportional(10.0),
            color,
        );
        t_s += step_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_maps_its_width_to_the_session_both_ways() {
        let rect = Rect::from_min_size(egui::pos2(100.0, 0.0), Vec2::new(1000.0, 40.0));
        assert!((timeline_ms_at(rect, 100.0, 20_000.0)).abs() < 1e-9);
        assert!((timeline_ms_at(rect, 600.0, 20_000.0) - 10_000.0).abs() < 1e-9);
        assert!((timeline_ms_at(rect, 5000.0, 20_000.0) - 20_000.0).abs() < 1e-9);
        assert!((timeline_ms_at(rect, -5.0, 20_000.0)).abs() < 1e-9);
        assert!((timeline_x_of(rect, 5000.0, 20_000.0) - 350.0).abs() < 1e-3);
        let empty = Rect::from_min_size(egui::pos2(0.0, 0.0), Vec2::ZERO);
        assert!(timeline_ms_at(empty, 3.0, 1000.0).abs() < 1e-9);
        assert!((timeline_x_of(rect, 5.0, 0.0) - 100.0).abs() < 1e-6);
    }

    #[test]
    fn clock_ms_shows_minutes_seconds_and_milliseconds() {
        assert_eq!(clock_ms(0.0), "0:00.000");
        assert_eq!(clock_ms(61_250.4), "1:01.250");
        assert_eq!(clock_ms(-3.0), "0:00.000");
    }
}
