//! What a replay says about itself: the REPLAY strip across the top (so nobody takes
//! it for a live session), the recording's header where the live session panel is,
//! the pen's readings at the cursor, and the list of events to jump to.

use egui::{RichText, Vec2};

use super::commands::UiCommand;
use super::plots::clock;
use super::replay_panel::{clock_ms, event_color};
use super::theme;
use crate::record::recording::RecordStatus;
use crate::replay::{Replay, ReplayCommand};
use crate::safety::alarms::ActiveAlarm;
use crate::safety::interlock::mm;

/// Warnings listed in full before "and N more".
const WARNINGS_SHOWN: usize = 20;

/// The strip's text: `REPLAY — <file>`. The window's title says the same.
#[must_use]
pub fn replay_title(file_name: &str) -> String {
    format!("REPLAY — {file_name}")
}

/// Draws the REPLAY strip: the file, "Session library", "Open recording…" and
/// "Back to live", and a live pen's highest alarm if it has one (the live station
/// runs on underneath).
pub fn replay_strip_ui(
    ui: &mut egui::Ui,
    replay: &Replay,
    live_alarm: Option<&ActiveAlarm>,
    commands: &mut Vec<UiCommand>,
) {
    egui::Frame::new()
        .fill(theme::REPLAY)
        .inner_margin(egui::Margin::symmetric(12, 6))
        .show(ui, |ui| {
            ui.set_min_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(replay_title(&replay.file_name()))
                        .size(20.0)
                        .strong()
                        .color(theme::ON_REPLAY),
                );
                ui.label(
                    RichText::new("a recorded session: nothing here reaches a pen")
                        .color(theme::ON_REPLAY),
                );
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button("Back to live").clicked() {
                        commands.push(UiCommand::BackToLive);
                    }
                    if ui.button("Open recording…").clicked() {
                        commands.push(UiCommand::ShowOpenRecording);
                    }
                    if ui.button("Session library").clicked() {
                        commands.push(UiCommand::ShowLibrary);
                    }
                    if let Some(alarm) = live_alarm {
                        ui.label(
                            RichText::new(format!(
                                " LIVE PEN: {} ALARM {} ",
                                alarm.priority.as_str().to_uppercase(),
                                alarm.id
                            ))
                            .strong()
                            .color(theme::ON_ALARM)
                            .background_color(super::alarm_banner::priority_color(alarm.priority)),
                        );
                    }
                });
            });
        });
}

/// The events list's state between frames.
#[derive(Debug, Clone, Default)]
pub struct EventsListState {
    /// How many events were at or before the cursor when the list last scrolled.
    followed: Option<usize>,
}

/// Draws the recording's header, its warnings, and its events (click to go there).
pub fn header_ui(
    ui: &mut egui::Ui,
    replay: &Replay,
    events: &mut EventsListState,
    commands: &mut Vec<UiCommand>,
) {
    let rec = replay.recording();
    let h = &rec.header;
    ui.heading("Recorded session");
    if h.simulated {
        ui.label(
            RichText::new(" SIMULATED PEN ")
                .strong()
                .color(egui::Color32::WHITE)
                .background_color(theme::SIMULATED),
        );
    }
    egui::Grid::new("replay_header")
        .num_columns(2)
        .show(ui, |ui| {
            // A record is a file from outside: its strings are shown escaped.
            let mut row = |label: &str, value: String| {
                ui.label(label);
                ui.label(crate::text::shown(&value));
                ui.end_row();
            };
            row("File", replay.file_name());
            row("Session", h.session_id.clone());
            row("Date", h.opened_at.clone());
            row("Client", h.client.clone());
            row("Practitioner", h.practitioner.clone());
            row(
                "Pen",
                h.pen.as_ref().map_or_else(
                    || "not recorded".to_owned(),
                    |p| crate::text::pen_line(&p.model, &p.serial, &p.fw),
                ),
            );
            row("Zone table", short_hash(&h.zones_hash));
            #[allow(clippy::cast_precision_loss)] // ms of a session
            let duration_s = rec.duration_ms() as f64 / 1000.0;
            row("Duration", clock(duration_s));
            row("Samples", rec.telemetry.len().to_string());
            row("Station", h.station_version.clone());
        });
    let warnings = rec.warnings.len();
    let (status, color) = match rec.status {
        RecordStatus::Complete => ("Complete".to_owned(), theme::OK),
        RecordStatus::Interrupted => (
            "Interrupted: the file ends without its summary".to_owned(),
            theme::WARN,
        ),
    };
    ui.colored_label(color, RichText::new(status).strong());
    if warnings > 0 || !replay.notes().is_empty() {
        let title = format!(
            "{warnings} line warning{} from the loader, {} from the replay",
            if warnings == 1 { "" } else { "s" },
            replay.notes().len()
        );
        egui::CollapsingHeader::new(RichText::new(title).color(theme::WARN))
            .id_salt("replay_warnings")
            .show(ui, |ui| {
                for w in rec.warnings.iter().take(WARNINGS_SHOWN) {
                    ui.small(w.to_string());
                }
                if warnings > WARNINGS_SHOWN {
                    ui.small(format!("... and {} more", warnings - WARNINGS_SHOWN));
                }
                for note in replay.notes() {
                    ui.small(crate::text::shown(note));
                }
            });
    } else {
        ui.small("no line warnings");
    }
    if !replay.amendments().is_empty() {
        ui.label(
            RichText::new(format!(
                "Follow-up added after the session ({})",
                replay.amendments().len()
            ))
            .strong()
            .color(theme::WARN),
        );
        for a in replay.amendments() {
            ui.label(crate::text::shown(&format!(
                "{} {} ({}) by {}: {}",
                a.date, a.kind, a.severity, a.by, a.note
            )));
        }
    }
    ui.separator();
    events_ui(ui, replay, events, commands);
}

/// The first 12 hex digits of a hash, enough to tell tables apart at a glance.
fn short_hash(hash: &str) -> String {
    hash.get(..12)
        .map_or_else(|| hash.to_owned(), |h| format!("{h}…"))
}

/// The events, one line each (the full text on hover), the one at the cursor
/// highlighted and scrolled to as the cursor moves. Only the visible rows are laid
/// out, so a record with thousands of events costs no more a frame.
fn events_ui(
    ui: &mut egui::Ui,
    replay: &Replay,
    state: &mut EventsListState,
    commands: &mut Vec<UiCommand>,
) {
    let events = replay.events();
    ui.label(RichText::new(format!("Events ({})", events.len())).strong());
    #[allow(clippy::cast_precision_loss)] // session ms
    let passed = events.partition_point(|e| e.at_ms as f64 <= replay.position_ms());
    let current = passed.checked_sub(1);
    let row_height = ui.spacing().interact_size.y;
    let mut area = egui::ScrollArea::vertical()
        .id_salt("replay_events")
        .auto_shrink([false, false]);
    if state.followed != Some(passed) {
        state.followed = Some(passed);
        // Keep the current event in view, a third of the way down.
        #[allow(clippy::cast_precision_loss)] // a row count, for a scroll offset
        let rows_above = passed as f32 - ui.available_height() / row_height / 3.0;
        let spacing = ui.spacing().item_spacing.y;
        area = area.vertical_scroll_offset((rows_above * (row_height + spacing)).max(0.0));
    }
    area.show_rows(ui, row_height, events.len(), |ui, rows| {
        for (i, event) in events.iter().enumerate().skip(rows.start).take(rows.len()) {
            #[allow(clippy::cast_precision_loss)] // session ms
            let at_ms = event.at_ms as f64;
            let line = format!("{}  {}", clock_ms(at_ms), event.text);
            let text = RichText::new(&line).color(event_color(event.kind));
            let response = ui
                .add(egui::Button::selectable(Some(i) == current, text).truncate())
                .on_hover_text(line);
            if response.clicked() {
                commands.push(UiCommand::Replay(ReplayCommand::SeekMs(at_ms)));
            }
        }
    });
}

/// The pen's readings and the zone at the cursor.
pub fn cursor_facts_ui(ui: &mut egui::Ui, replay: &Replay) {
    ui.label(RichText::new("At the cursor").strong());
    match replay.active_zone() {
        Some(zone) => {
            ui.label(RichText::new(format!("Zone: {}", zone.zone)).strong());
            ui.colored_label(
                theme::DEPTH_LIMIT,
                format!("limit {}", mm(i64::from(zone.limit_um))),
            );
        }
        None => {
            ui.label(RichText::new("Zone: none selected").strong());
        }
    }
    let Some(t) = replay.last_telemetry() else {
        ui.label("no telemetry yet");
        return;
    };
    theme::pen_state_label(ui, t.state);
    egui::Grid::new("replay_cursor_facts")
        .num_columns(2)
        .spacing(Vec2::new(12.0, 2.0))
        .show(ui, |ui| {
            ui.label("speed");
            ui.label(format!("{} rpm", t.rpm));
            ui.end_row();
            ui.label("depth");
            ui.label(mm(i64::from(t.depth_um)));
            ui.end_row();
            ui.label("current");
            ui.label(format!("{} mA", t.current_ma));
            ui.end_row();
            ui.label("temperature");
            ui.label(format!("{:.1} °C", f64::from(t.temp_dc) / 10.0));
            ui.end_row();
        });
}
