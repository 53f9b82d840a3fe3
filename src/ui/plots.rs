//! The central area: the face map, session duration, and the plots of needle speed
//! and depth against time, live or replayed (drawn from a [`SessionSource`]).
//!
//! The plots read the source's time-series store, aggregated per pixel column
//! (min/max) for the visible range: `egui_plot` is never handed every sample, so a
//! frame costs the same after an hour at 1000 Hz as after a minute. In a replay,
//! "now" is the cursor: following shows the seconds up to it, and a vertical line
//! marks it.

use egui::RichText;
use egui_plot::{Legend, Line, Plot, VLine};

use super::commands::UiCommand;
use super::face_map::{ZoneState, face_map_ui};
use super::source::SessionSource;
use super::theme;
use crate::safety::zones::ZoneId;
use crate::timeseries::Channel;

/// The follow-live window by default, seconds.
pub const DEFAULT_FOLLOW_S: f64 = 30.0;

/// How the plots choose their time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlotMode {
    /// The last few seconds, moving with time (in a replay: up to the cursor).
    #[default]
    FollowLive,
    /// Frozen where it was: drag to pan, scroll or pinch to zoom.
    Paused,
    /// The whole session at once.
    WholeSession,
}

/// The plots' state.
#[derive(Debug, Clone, Default)]
pub struct PlotsState {
    /// Follow, paused, or whole session.
    pub mode: PlotMode,
    /// Points handed to the speed plot in the last frame (for tests and the footer).
    pub last_speed_points: usize,
    /// The speed plot's vertical range in the last frame, rpm (for tests).
    pub last_speed_range_rpm: (f64, f64),
    /// The depth plot's vertical range in the last frame, mm (for tests).
    pub last_depth_range_mm: (f64, f64),
}

/// Draws the face map, session duration and plots.
pub fn central_ui(
    ui: &mut egui::Ui,
    source: Option<&dyn SessionSource>,
    state: &mut PlotsState,
    follow_window_s: &mut f64,
    commands: &mut Vec<UiCommand>,
) {
    // On a small screen (1024×600) the face map, the duration and the plots do not
    // all fit: the centre scrolls. What the operator must always see (the measured
    // depth and speed, the session's duration, the alarms) is in the panels beside.
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            central_contents_ui(ui, source, state, follow_window_s, commands);
        });
}

fn central_contents_ui(
    ui: &mut egui::Ui,
    source: Option<&dyn SessionSource>,
    state: &mut PlotsState,
    follow_window_s: &mut f64,
    commands: &mut Vec<UiCommand>,
) {
    let top_height = (ui.available_height() * 0.55).max(300.0);
    ui.horizontal(|ui| {
        ui.set_height(top_height);
        ui.vertical(|ui| {
            ui.set_width((ui.available_width() * 0.55).max(300.0));
            ui.set_height(top_height);
            face_ui(ui, source, commands);
        });
        ui.separator();
        ui.vertical(|ui| {
            duration_ui(ui, source);
        });
    });
    ui.separator();
    plots_ui(ui, source, state, follow_window_s);
}

/// The plot modes' labels: a replay follows its cursor, and its frozen view is not
/// called "Pause", which is the transport's.
fn mode_labels(live: bool) -> [&'static str; 3] {
    if live {
        ["Follow live", "Pause", "Whole session"]
    } else {
        ["Follow cursor", "Free view", "Whole session"]
    }
}

fn face_ui(ui: &mut egui::Ui, source: Option<&dyn SessionSource>, commands: &mut Vec<UiCommand>) {
    let Some(source) = source else {
        ui.label("No pen connected.");
        return;
    };
    let active = source.active_zone();
    let treated = source.session().map(|s| s.treated()).unwrap_or_default();
    let states = |zone: ZoneId| {
        if Some(zone) == active {
            ZoneState::Active
        } else if treated.contains(&zone) {
            ZoneState::Treated
        } else {
            ZoneState::NotTreated
        }
    };
    // A replay's map shows the zones but chooses nothing.
    let response = face_map_ui(ui, source.zones(), &states, source.can_command());
    if let Some(zone) = response.clicked
        && source.can_command()
    {
        commands.push(UiCommand::SelectZone(zone));
    }
}

/// The session's duration in one line, as the controls panel shows it on every
/// screen size: `session 12:04 · needling 3:10`.
#[must_use]
pub fn duration_line(session: &super::source::SessionProgress) -> String {
    #[allow(clippy::cast_precision_loss)] // ms of a session, far below 2^52
    let needling_s = session.needling_ms as f64 / 1000.0;
    format!(
        "session {} · needling {}",
        clock(session.elapsed_s),
        clock(needling_s)
    )
}

fn duration_ui(ui: &mut egui::Ui, source: Option<&dyn SessionSource>) {
    ui.label(RichText::new("Session duration").strong());
    let Some(session) = source.and_then(SessionSource::session) else {
        ui.label("No session open.");
        return;
    };
    #[allow(clippy::cast_precision_loss)] // ms of a session, far below 2^52
    let needling_s = session.needling_ms as f64 / 1000.0;
    ui.label(RichText::new(format!("elapsed {}", clock(session.elapsed_s))).size(20.0));
    ui.label(RichText::new(format!("needling {}", clock(needling_s))).size(20.0));
    ui.add_space(6.0);
    ui.label("Needling time per zone");
    let figures: Vec<_> = session
        .zones
        .iter()
        .map(|f| (f.zone, f.needling_ms))
        .collect();
    let longest_ms = figures.iter().map(|(_, ms)| *ms).max().unwrap_or(0).max(1);
    for (zone, ms) in figures {
        #[allow(clippy::cast_precision_loss)] // ms of a session
        let fraction = ms as f32 / longest_ms as f32;
        #[allow(clippy::cast_precision_loss)]
        let secs = ms as f64 / 1000.0;
        ui.add(
            egui::ProgressBar::new(fraction)
                .text(format!("{zone}: {secs:.1} s"))
                .desired_width(ui.available_width().min(320.0)),
        );
    }
}

/// Grid steps of 1, 2 or 5 × 10ⁿ, each a multiple of the one before (e.g. 1000,
/// 5000, 10 000 rpm; 0.1, 0.5, 1 mm): `egui_plot`'s default steps are powers of ten
/// only, and on a plot 100 points tall that left a 0–9000 rpm axis with one label,
/// "0" (labels need 20 points between them).
#[must_use]
#[allow(clippy::needless_pass_by_value)] // the signature egui_plot's spacer takes
pub fn nice_steps(input: egui_plot::GridInput) -> [f64; 3] {
    // `base_step_size` spans egui_plot's finest grid spacing (8 points); labels need
    // 20 between them, so the labelled step is at least three of those.
    let labelled = nice_at_least(3.0 * input.base_step_size.abs().max(f64::MIN_POSITIVE));
    let mantissa = labelled / 10_f64.powf(labelled.log10().floor());
    // A finer grid that divides it: 1 → 0.2, 2 → 1, 5 → 1 (× 10ⁿ).
    let fine = if (mantissa - 2.0).abs() < 1e-6 {
        labelled / 2.0
    } else {
        labelled / 5.0
    };
    [fine, labelled, next_nice(labelled)]
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `x` (positive).
fn nice_at_least(x: f64) -> f64 {
    let power = 10_f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// The next step that is a multiple of `step`: 1 → 5, 2 → 10, 5 → 10 (× 10ⁿ).
fn next_nice(step: f64) -> f64 {
    let mantissa = step / 10_f64.powf(step.log10().floor());
    if (mantissa - 5.0).abs() < 1e-6 {
        step * 2.0
    } else {
        step * 5.0
    }
}

/// A tick's text with the decimals its step needs: `0.5` (step 0.5), `10` (step 5).
#[must_use]
pub fn tick_text(value: f64, step: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=15 decimals
    let decimals = (-step.abs().max(1e-15).log10().floor()).clamp(0.0, 15.0) as usize;
    // -0.0 shows as 0.
    let value = if value.abs() < step.abs() * 1e-9 {
        0.0
    } else {
        value
    };
    format!("{value:.decimals$}")
}

/// A speed tick: thousands of rpm as `5k`, `10k`, `2.5k`, as pens' dials show
/// them; below a thousand the whole number.
#[must_use]
pub fn rpm_tick(rpm: f64, step: f64) -> String {
    if rpm.abs() < step.abs() * 1e-9 {
        "0".to_owned()
    } else if step >= 1000.0 || (rpm.abs() >= 1000.0 && step >= 100.0) {
        format!("{}k", tick_text(rpm / 1000.0, step / 1000.0))
    } else {
        tick_text(rpm, step)
    }
}

/// `m:ss`.
#[must_use]
pub fn clock(secs: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative, < 2^63
    let whole = secs.max(0.0) as u64;
    format!("{}:{:02}", whole / 60, whole % 60)
}

#[allow(clippy::too_many_lines)] // two plots sharing one time range read best together
fn plots_ui(
    ui: &mut egui::Ui,
    source: Option<&dyn SessionSource>,
    state: &mut PlotsState,
    follow_window_s: &mut f64,
) {
    let [follow, paused, whole] = mode_labels(source.is_none_or(SessionSource::is_live));
    ui.horizontal(|ui| {
        ui.selectable_value(&mut state.mode, PlotMode::FollowLive, follow);
        ui.selectable_value(&mut state.mode, PlotMode::Paused, paused);
        ui.selectable_value(&mut state.mode, PlotMode::WholeSession, whole);
        ui.add(
            egui::DragValue::new(follow_window_s)
                .range(5.0..=600.0)
                .suffix(" s")
                .prefix("window "),
        );
        if state.mode == PlotMode::Paused {
            ui.small("drag to pan, scroll to zoom");
        }
    });
    let Some(source) = source else {
        return;
    };
    let series = source.series();
    let ch = source.channels();
    let now_s = source.now_s();
    let whole_s = source.whole_range_s();
    // A replay marks its cursor; live, now is the right edge.
    let cursor_s = (!source.is_live()).then_some(now_s);
    let mode = state.mode;
    let window_s = *follow_window_s;
    // Fixed scales read at a glance: the pen's whole speed range, and depth up to a
    // little above the zone's limit.
    let speed_max_rpm = source.speed_max_rpm();
    let depth_top_mm = source
        .active_limit_um()
        .map_or(1.0, |um| f64::from(um) / 1000.0 + 0.25);
    let link = egui::Id::unique("punctum_plots_x");
    // Tall enough for three labelled ticks; in a scrolling centre the space left may
    // be less than that.
    let height = ((ui.available_height() - 10.0) / 2.0).max(140.0);
    // Every plot shows its whole scale, with room for the top line: setting the time
    // range alone each frame left the vertical range where egui_plot started it (0
    // to 1), so a 6000 rpm line ran off the top with no tick beside it.
    let speed_y = (-0.03 * speed_max_rpm, speed_max_rpm * 1.05);
    let depth_y = (-0.03 * depth_top_mm, depth_top_mm);
    let range = move |pui: &mut egui_plot::PlotUi<'_>, y: (f64, f64)| -> (f64, f64) {
        match mode {
            PlotMode::FollowLive => {
                let r = (now_s - window_s, now_s);
                pui.set_plot_bounds_x(r.0..=r.1);
                pui.set_plot_bounds_y(y.0..=y.1);
                r
            }
            PlotMode::WholeSession => {
                pui.set_plot_bounds_x(whole_s.0..=whole_s.1);
                pui.set_plot_bounds_y(y.0..=y.1);
                whole_s
            }
            PlotMode::Paused => {
                let b = pui.plot_bounds();
                (b.min()[0], b.max()[0])
            }
        }
    };
    let buckets = |pui: &egui_plot::PlotUi<'_>| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a width in pixels
        let px = pui.transform().frame().width().max(1.0) as usize;
        px
    };
    let interactive = mode == PlotMode::Paused;
    let cursor_line = |pui: &mut egui_plot::PlotUi<'_>| {
        if let Some(t_s) = cursor_s {
            // No name: the cursor is not a series and has no place in the legend.
            pui.vline(VLine::new("", t_s).color(theme::REPLAY_CURSOR).width(2.0));
        }
    };
    let series_line = |name: &str, channel: Channel, t0: f64, t1: f64, n: usize| {
        Line::new(name.to_owned(), series.plot_points(channel, t0, t1, n))
    };
    // What both plots share: the time axis (linked), the legend, the 1-2-5 grid with
    // labelled ticks, the vertical scale, and pan and zoom only in the free view.
    let session_plot = |id: &str, y: (f64, f64)| {
        Plot::new(id)
            .height(height)
            .link_axis(link, [true, false])
            .legend(Legend::default())
            .allow_drag(interactive)
            .allow_zoom(interactive)
            .allow_scroll(interactive)
            .default_y_bounds(y.0, y.1)
            .y_axis_min_width(44.0)
            .x_axis_formatter(|mark, _range| tick_text(mark.value, mark.step_size))
            .x_grid_spacer(egui_plot::uniform_grid_spacer(nice_steps))
            .y_grid_spacer(egui_plot::uniform_grid_spacer(nice_steps))
    };
    let speed = session_plot("speed_plot", speed_y)
        .y_axis_label("rpm")
        .y_axis_formatter(|mark, _range| rpm_tick(mark.value, mark.step_size))
        .show(ui, |pui| {
            let (t0, t1) = range(pui, speed_y);
            let n = buckets(pui);
            let measured = series.plot_points(ch.rpm, t0, t1, n);
            let points = measured.len();
            pui.line(
                Line::new("measured rpm", measured)
                    .color(theme::SPEED_MEASURED)
                    .width(2.0),
            );
            pui.line(
                series_line("target rpm", ch.target_rpm, t0, t1, n).color(theme::SPEED_TARGET),
            );
            cursor_line(pui);
            points
        });
    state.last_speed_points = speed.inner;
    let bounds = speed.transform.bounds();
    state.last_speed_range_rpm = (bounds.min()[1], bounds.max()[1]);
    let depth = session_plot("depth_plot", depth_y)
        .x_axis_label("time (s)")
        .y_axis_label("depth (mm)")
        .y_axis_formatter(|mark, _range| tick_text(mark.value, mark.step_size))
        .show(ui, |pui| {
            let (t0, t1) = range(pui, depth_y);
            let n = buckets(pui);
            pui.line(
                series_line("actual depth", ch.depth_mm, t0, t1, n)
                    .color(theme::DEPTH_ACTUAL)
                    .width(2.0),
            );
            pui.line(
                series_line("target depth", ch.target_depth_mm, t0, t1, n)
                    .color(theme::DEPTH_TARGET),
            );
            pui.line(
                series_line("zone limit", ch.limit_mm, t0, t1, n)
                    .color(theme::DEPTH_LIMIT)
                    .style(egui_plot::LineStyle::dashed_loose()),
            );
            cursor_line(pui);
        });
    let bounds = depth.transform.bounds();
    state.last_depth_range_mm = (bounds.min()[1], bounds.max()[1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_steps_are_1_2_or_5_and_ticks_show_the_decimals_their_step_needs() {
        let steps = |base: f64| {
            nice_steps(egui_plot::GridInput {
                bounds: (0.0, 1.0),
                base_step_size: base,
            })
        };
        let close = |got: [f64; 3], want: [f64; 3]| {
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9 * w),
                "{got:?} != {want:?}"
            );
        };
        // 776 rpm per 8 points: labels every 5000 (about 50 points apart).
        close(steps(776.0), [1000.0, 5000.0, 10_000.0]);
        // 0.108 mm per 8 points: labels every 0.5 mm.
        close(steps(0.108), [0.1, 0.5, 1.0]);
        close(steps(0.05), [0.1, 0.2, 1.0]);
        close(steps(0.3), [0.2, 1.0, 5.0]);
        assert_eq!(tick_text(0.5, 0.5), "0.5");
        assert_eq!(tick_text(1.0, 0.5), "1.0");
        assert_eq!(tick_text(-0.0, 0.5), "0.0");
        assert_eq!(tick_text(25.0, 5.0), "25");
        assert_eq!(rpm_tick(5000.0, 5000.0), "5k");
        assert_eq!(rpm_tick(0.0, 5000.0), "0");
        assert_eq!(rpm_tick(2500.0, 500.0), "2.5k");
        assert_eq!(rpm_tick(500.0, 100.0), "500");
    }
}
