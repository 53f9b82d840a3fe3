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

use super::app::UiCommand;
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
}

/// Draws the face map, session duration and plots.
pub fn central_ui(
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
    let height = ((ui.available_height() - 10.0) / 2.0).max(80.0);
    let range = move |pui: &mut egui_plot::PlotUi<'_>| -> (f64, f64) {
        match mode {
            PlotMode::FollowLive => {
                let r = (now_s - window_s, now_s);
                pui.set_plot_bounds_x(r.0..=r.1);
                r
            }
            PlotMode::WholeSession => {
                pui.set_plot_bounds_x(whole_s.0..=whole_s.1);
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
    let speed = Plot::new("speed_plot")
        .height(height)
        .link_axis(link, [true, false])
        .legend(Legend::default())
        .y_axis_label("rpm")
        .allow_drag(interactive)
        .allow_zoom(interactive)
        .allow_scroll(interactive)
        .include_y(0.0)
        .include_y(speed_max_rpm)
        .show(ui, |pui| {
            let (t0, t1) = range(pui);
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
    Plot::new("depth_plot")
        .height(height)
        .link_axis(link, [true, false])
        .legend(Legend::default())
        .x_axis_label("time (s)")
        .y_axis_label("depth (mm)")
        .allow_drag(interactive)
        .allow_zoom(interactive)
        .allow_scroll(interactive)
        .include_y(0.0)
        .include_y(depth_top_mm)
        .show(ui, |pui| {
            let (t0, t1) = range(pui);
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
}
