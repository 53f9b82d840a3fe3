//! The session library: the records in the data folder's `sessions/`, newest first,
//! with their date, client, practitioner, zones treated, duration and state, a search
//! by client, and a Replay button per session.
//!
//! The folder is scanned on a background thread ([`Library::scan`] reads a whole
//! record when it has no summary, and an interrupted record can be gigabytes), so the
//! frame loop, and with it the live station's pump, never waits on the disk. The
//! screen takes the place of the session panel and the plots; the alarm banner, the
//! connection bar and the controls (Stop, E-STOP) stay where they are.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use egui::{RichText, Role, WidgetInfo};

use super::commands::UiCommand;
use super::theme;
use crate::record::library::{Library, SessionEntry};
use crate::record::recording::RecordStatus;

/// Scan warnings listed in full before "and N more".
const WARNINGS_SHOWN: usize = 50;

/// How often the screen looks for a finished scan while nothing else repaints.
const SCAN_POLL: Duration = Duration::from_millis(100);

/// The library screen's state: whether it shows, the folder, the scan under way or
/// its result, and the search text.
#[derive(Debug, Default)]
pub struct LibraryState {
    open: bool,
    sessions_dir: Option<PathBuf>,
    /// A scan under way: its result arrives here once.
    scan: Option<Receiver<Library>>,
    library: Option<Library>,
    /// The search box: part of a client pseudonym, any case.
    pub query: String,
    /// The session open at the station now: its record has no summary yet because it
    /// is still being written, not because it was interrupted.
    pub open_session: Option<String>,
}

impl LibraryState {
    /// Shows the screen for `sessions_dir` and scans it afresh (records may have been
    /// written since the last look).
    pub fn show(&mut self, sessions_dir: PathBuf) {
        self.open = true;
        self.sessions_dir = Some(sessions_dir);
        self.rescan();
    }

    /// Scans the folder again, in the background. A scan still running is left to
    /// finish on its own; its result is dropped.
    pub fn rescan(&mut self) {
        let Some(dir) = self.sessions_dir.clone() else {
            return;
        };
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("library-scan".into())
            .spawn(move || {
                // The receiver is gone if the screen was closed or refreshed: fine.
                let _ = tx.send(Library::scan(&dir));
            });
        match spawned {
            Ok(_) => self.scan = Some(rx),
            Err(e) => {
                self.scan = None;
                self.library = Some(Library {
                    entries: Vec::new(),
                    warnings: vec![format!("cannot start scanning the folder: {e}")],
                });
            }
        }
    }

    /// Hides the screen (the last scan's result is kept until the next show).
    pub fn close(&mut self) {
        self.open = false;
        self.scan = None;
    }

    /// Takes a finished scan's result; never waits. Called every frame.
    pub fn poll(&mut self) {
        let Some(rx) = &self.scan else {
            return;
        };
        match rx.try_recv() {
            Ok(library) => {
                self.library = Some(library);
                self.scan = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                // The scan thread ended without a result: it panicked.
                self.library = Some(Library {
                    entries: Vec::new(),
                    warnings: vec!["the folder scan stopped unexpectedly; try Refresh".into()],
                });
                self.scan = None;
            }
        }
    }

    /// Whether the screen shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether a scan is under way.
    #[must_use]
    pub fn scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// The last scan's result.
    #[must_use]
    pub fn library(&self) -> Option<&Library> {
        self.library.as_ref()
    }

    /// The folder listed.
    #[must_use]
    pub fn sessions_dir(&self) -> Option<&Path> {
        self.sessions_dir.as_deref()
    }

    /// The sessions the search matches, newest first.
    #[must_use]
    pub fn shown(&self) -> Vec<&SessionEntry> {
        self.library
            .as_ref()
            .map(|l| l.search(self.query.trim()).collect())
            .unwrap_or_default()
    }
}

/// A duration as `m:ss`, or `h:mm:ss` from an hour on (seconds rounded down).
#[must_use]
pub fn duration_text(duration_ms: i64) -> String {
    let total_s = duration_ms.max(0) / 1000;
    let (h, m, s) = (total_s / 3600, total_s / 60 % 60, total_s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// When the session opened, as the station's clock showed it then (`opened_at`);
/// for a header without a readable `opened_at`, the UTC time in this machine's zone.
#[must_use]
pub fn opened_text(entry: &SessionEntry) -> String {
    if let Some(local) = entry
        .opened_at
        .get(..19)
        .and_then(|t| t.parse::<jiff::civil::DateTime>().ok())
    {
        return local.strftime("%Y-%m-%d %H:%M").to_string();
    }
    jiff::Timestamp::from_millisecond(entry.opened_utc_ms).map_or_else(
        |_| "?".to_owned(),
        |t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// The zones treated, as a comma list; a dash for none.
#[must_use]
pub fn zones_text(entry: &SessionEntry) -> String {
    if entry.zones_treated.is_empty() {
        "–".to_owned()
    } else {
        entry.zones_treated.join(", ")
    }
}

/// The accessible name of a row's Replay button: the file it opens.
#[must_use]
pub fn replay_button_label(entry: &SessionEntry) -> String {
    let file = entry.path.file_name().map_or_else(
        || entry.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!("Replay {file}")
}

/// Draws the library screen. `replay_refused` says why a recording may not be
/// opened now (an open session), shown above the table; Replay still asks, and the
/// app refuses with the same reason in its log.
pub fn library_ui(
    ui: &mut egui::Ui,
    state: &mut LibraryState,
    replay_refused: Option<&str>,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading("Session library");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Close").clicked() {
                commands.push(UiCommand::CloseLibrary);
            }
            if ui
                .add_enabled(!state.scanning(), egui::Button::new("Refresh"))
                .on_hover_text("Read the sessions folder again")
                .clicked()
            {
                commands.push(UiCommand::RefreshLibrary);
            }
        });
    });
    if let Some(dir) = state.sessions_dir() {
        ui.label(RichText::new(dir.display().to_string()).weak());
    }
    if let Some(why) = replay_refused {
        ui.colored_label(theme::REFUSAL, why);
    }
    ui.separator();

    if state.scanning() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Scanning…");
        });
        super::repaint::request(ui.ctx(), super::repaint::Reason::Progress, SCAN_POLL);
        return;
    }
    let Some(total) = state.library().map(|l| l.entries.len()) else {
        return;
    };

    ui.horizontal(|ui| {
        let label = ui.label("Search client");
        ui.add(
            egui::TextEdit::singleline(&mut state.query)
                .hint_text("part of a pseudonym")
                .desired_width(220.0),
        )
        .labelled_by(label.id);
        if !state.query.is_empty() && ui.small_button("Clear").clicked() {
            state.query.clear();
        }
    });
    let shown = state.shown();
    ui.label(format!(
        "{} of {total} session{}",
        shown.len(),
        if total == 1 { "" } else { "s" }
    ));
    ui.add_space(4.0);

    let warnings = state.library().map_or(&[][..], |l| l.warnings.as_slice());
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if total == 0 {
                ui.label("No sessions recorded yet. Each session is recorded here as it runs.");
            } else if shown.is_empty() {
                ui.label(format!(
                    "No session for a client matching \"{}\".",
                    state.query.trim()
                ));
            } else {
                table_ui(ui, &shown, state.open_session.as_deref(), commands);
            }
            warnings_ui(ui, warnings);
        });
}

/// The table's columns: title, and the least width, points, so the columns keep
/// their places as the search narrows the rows.
const COLUMNS: [(&str, f32); 8] = [
    ("Opened", 118.0),
    ("Client", 90.0),
    ("Practitioner", 90.0),
    ("Zones treated", ZONES_WIDTH),
    ("Duration", 62.0),
    ("Status", 96.0),
    ("", 84.0),
    ("", 60.0),
];

/// The zones column's width: longer lists wrap, rather than push the Replay button
/// off screen or move the columns as the search changes the rows.
const ZONES_WIDTH: f32 = 260.0;

/// One table cell, at least `column`'s width.
fn cell(ui: &mut egui::Ui, column: usize, add: impl FnOnce(&mut egui::Ui)) {
    ui.vertical(|ui| {
        ui.set_min_width(COLUMNS[column].1);
        add(ui);
    });
}

fn table_ui(
    ui: &mut egui::Ui,
    shown: &[&SessionEntry],
    open_session: Option<&str>,
    commands: &mut Vec<UiCommand>,
) {
    egui::Grid::new("library_table")
        .num_columns(COLUMNS.len())
        .striped(true)
        .spacing([14.0, 6.0])
        .show(ui, |ui| {
            for (i, (title, _)) in COLUMNS.iter().enumerate() {
                cell(ui, i, |ui| {
                    ui.label(RichText::new(*title).strong());
                });
            }
            ui.end_row();
            for entry in shown {
                row_ui(ui, entry, open_session, commands);
                ui.end_row();
            }
        });
}

fn row_ui(
    ui: &mut egui::Ui,
    entry: &SessionEntry,
    open_session: Option<&str>,
    commands: &mut Vec<UiCommand>,
) {
    cell(ui, 0, |ui| {
        ui.label(opened_text(entry))
            .on_hover_text(entry.path.display().to_string());
    });
    cell(ui, 1, |ui| {
        ui.label(RichText::new(crate::text::shown(&entry.client)).strong());
    });
    cell(ui, 2, |ui| {
        ui.label(crate::text::shown(&entry.practitioner));
    });
    cell(ui, 3, |ui| {
        ui.set_max_width(ZONES_WIDTH);
        ui.add(egui::Label::new(zones_text(entry)).wrap());
    });
    cell(ui, 4, |ui| {
        ui.label(duration_text(entry.duration_ms));
    });
    cell(ui, 5, |ui| match entry.status {
        RecordStatus::Complete => {
            ui.label("Complete");
        }
        RecordStatus::Interrupted if open_session == Some(entry.session_id.as_str()) => {
            ui.colored_label(theme::OK, "OPEN NOW")
                .on_hover_text("The session open at this station: its record is being written");
        }
        RecordStatus::Interrupted => {
            ui.label(
                RichText::new(" INTERRUPTED ")
                    .strong()
                    .color(theme::ON_ALARM)
                    .background_color(theme::WARN),
            )
            .on_hover_text("The record ends without its summary: the session was cut off");
        }
    });
    cell(ui, 6, |ui| {
        if entry.simulated {
            ui.label(
                RichText::new(" SIMULATED ")
                    .strong()
                    .color(egui::Color32::WHITE)
                    .background_color(theme::SIMULATED),
            )
            .on_hover_text("Recorded on the built-in simulated pen");
        }
    });
    cell(ui, 7, |ui| {
        let name = replay_button_label(entry);
        let button = ui
            .button("Replay")
            .on_hover_text(format!("Open {} in replay", entry.path.display()));
        // A screen reader (and a test) tells the rows' buttons apart by their file.
        button.widget_info(|| WidgetInfo::labeled(Role::Button, true, &name));
        if button.clicked() {
            commands.push(UiCommand::OpenRecording(entry.path.clone()));
        }
        let file = ui
            .small_button("File")
            .on_hover_text(format!("{}'s client file", entry.client));
        let name = format!("Client file {}", entry.client);
        file.widget_info(|| WidgetInfo::labeled(Role::Button, true, &name));
        if file.clicked() {
            commands.push(UiCommand::ShowClientFile(entry.client.clone()));
        }
    });
}

fn warnings_ui(ui: &mut egui::Ui, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    ui.add_space(10.0);
    ui.label(
        RichText::new(format!(
            "{} file{} could not be listed in full:",
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" }
        ))
        .strong()
        .color(theme::WARN),
    );
    for warning in warnings.iter().take(WARNINGS_SHOWN) {
        ui.add(egui::Label::new(RichText::new(warning).color(theme::WARN)).wrap());
    }
    if warnings.len() > WARNINGS_SHOWN {
        ui.label(format!("and {} more", warnings.len() - WARNINGS_SHOWN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_should_read_as_minutes_or_hours() {
        assert_eq!(duration_text(0), "0:00");
        assert_eq!(duration_text(20_999), "0:20");
        assert_eq!(duration_text(754_000), "12:34");
        assert_eq!(duration_text(3_725_000), "1:02:05");
        assert_eq!(duration_text(-5), "0:00");
    }

    fn entry(opened_at: &str) -> SessionEntry {
        SessionEntry {
            path: PathBuf::from("/data/sessions/2025-11-24_170000_C-1.jsonl"),
            session_id: "S".into(),
            client: "C-1".into(),
            practitioner: "P".into(),
            opened_utc_ms: 1_764_000_000_000,
            opened_at: opened_at.into(),
            duration_ms: 0,
            zones_treated: vec!["cheeks".into(), "chin".into()],
            cartridges: Vec::new(),
            status: RecordStatus::Complete,
            simulated: false,
            indication: None,
            zones: Vec::new(),
            lots: Vec::new(),
            notes: Vec::new(),
            notes_omitted: 0,
            bytes: 0,
        }
    }

    #[test]
    fn the_date_should_be_the_station_clock_at_opening() {
        assert_eq!(
            opened_text(&entry("2025-11-24T17:00:42+01:00")),
            "2025-11-24 17:00"
        );
        // Garbled: the UTC time (2025-11-24T16:00Z) in this machine's zone.
        let text = opened_text(&entry("garbled"));
        assert!(text.starts_with("2025-11-2"), "{text}");
        assert_eq!(zones_text(&entry("")), "cheeks, chin");
        assert_eq!(
            replay_button_label(&entry("")),
            "Replay 2025-11-24_170000_C-1.jsonl"
        );
    }
}
