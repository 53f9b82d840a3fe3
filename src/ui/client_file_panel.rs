//! The client's file screen: the course of treatment, every session this station can
//! read (date, indication, zones with depth and needling time, products and lots,
//! notes, interrupted), the depth history per zone, and the follow-up and adverse
//! events, with a form that adds one to a session (an amendment: the record is never
//! edited). Opened from the session panel (the client being screened or treated) and
//! from the session library. It takes the place of the session panel and the plots;
//! the alarm banner, the connection bar and the controls stay.
//!
//! The file is read on a background thread ([`ClientFile::open`] scans the records),
//! so the frame loop never waits on the disk.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use egui::RichText;

use super::commands::UiCommand;
use super::theme;
use crate::client::ClientFile;
use crate::record::Library;

/// The records as last read, kept by the window for its client file and lot search:
/// each use reads only the records that are new or changed since
/// ([`Library::refresh`]), on a background thread.
pub type SharedLibrary = Arc<Mutex<Library>>;
use crate::store::DataDir;
use crate::store::amendments::{KINDS, SEVERITIES};

/// Reads the records in `sessions_dir` into `library` on a background thread (the
/// window's start), so that its first use reads only what changed since.
pub fn warm(library: &SharedLibrary, sessions_dir: PathBuf) {
    let library = Arc::clone(library);
    // A thread that cannot start only costs the head start.
    let _ = std::thread::Builder::new()
        .name("records-warm".into())
        .spawn(move || {
            library
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .refresh(&sessions_dir);
        });
}

/// The screen's state.
#[derive(Debug, Default)]
pub struct ClientFileState {
    client: Option<String>,
    data_root: Option<PathBuf>,
    loading: Option<Receiver<ClientFile>>,
    file: Option<ClientFile>,
    library: SharedLibrary,
    /// The session open at the station now, if any: its record has no summary yet.
    open_session: Option<String>,
    /// The amendment form: which session.
    pub amend_session: Option<String>,
    /// ... what kind.
    pub amend_kind: String,
    /// ... how severe.
    pub amend_severity: String,
    /// ... seen on (YYYY-MM-DD; empty: today).
    pub amend_date: String,
    /// ... the note.
    pub amend_note: String,
}

impl ClientFileState {
    /// Shows `client`'s file from the data folder at `data_root`, read afresh, with
    /// the records kept in `library`.
    pub fn show(
        &mut self,
        client: String,
        data_root: PathBuf,
        library: &SharedLibrary,
        open_session: Option<String>,
    ) {
        self.open_session = open_session;
        self.client = Some(client);
        self.data_root = Some(data_root);
        self.library = Arc::clone(library);
        self.reload();
    }

    /// Reads the file again, in the background.
    pub fn reload(&mut self) {
        let (Some(client), Some(root)) = (self.client.clone(), self.data_root.clone()) else {
            return;
        };
        let (tx, rx) = mpsc::channel();
        let library = Arc::clone(&self.library);
        let spawned = std::thread::Builder::new()
            .name("client-file".into())
            .spawn(move || {
                let file = match DataDir::open(&root) {
                    Ok(data) => {
                        // A thread that panicked while holding it left a library that is
                        // still a valid (if older) read: refresh brings it up to date.
                        let mut library = library
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        ClientFile::open_with(
                            &mut library,
                            &data,
                            &client,
                            jiff::Zoned::now().date(),
                        )
                    }
                    Err(e) => ClientFile {
                        client,
                        sessions: Vec::new(),
                        zone_history: std::collections::BTreeMap::new(),
                        course: None,
                        warnings: vec![e.to_string()],
                    },
                };
                let _ = tx.send(file);
            });
        if spawned.is_ok() {
            self.loading = Some(rx);
        }
    }

    /// Takes a finished read; never waits.
    pub fn poll(&mut self) {
        let Some(rx) = &self.loading else { return };
        match rx.try_recv() {
            Ok(mut file) => {
                if let Some(open) = &self.open_session {
                    file.mark_open(open);
                }
                self.file = Some(file);
                self.loading = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.loading = None,
        }
    }

    /// Whether the screen shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.client.is_some()
    }

    /// Whether a read is under way.
    #[must_use]
    pub fn loading(&self) -> bool {
        self.loading.is_some()
    }

    /// The file as last read.
    #[must_use]
    pub fn file(&self) -> Option<&ClientFile> {
        self.file.as_ref()
    }

    /// Hides the screen.
    pub fn close(&mut self) {
        self.client = None;
        self.file = None;
        self.loading = None;
    }
}

/// Draws the client's file.
pub fn client_file_ui(
    ui: &mut egui::Ui,
    state: &mut ClientFileState,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading(format!(
            "Client file: {}",
            state.client.as_deref().unwrap_or_default()
        ));
        if ui.button("Close").clicked() {
            commands.push(UiCommand::CloseClientFile);
        }
    });
    if state.loading() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading the records…");
        });
        super::repaint::request(
            ui.ctx(),
            super::repaint::Reason::Progress,
            std::time::Duration::from_millis(100),
        );
    }
    let Some(file) = state.file.clone() else {
        return;
    };
    match &file.course {
        Some(c) => ui.label(RichText::new(format!("Course: {}", c.text)).strong()),
        None => ui.label("Course: no treated session yet"),
    };
    for w in &file.warnings {
        ui.colored_label(theme::WARN, format!("warning: {w}"));
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            sessions_ui(ui, &file, state, commands);
            ui.separator();
            ui.strong("Depth per zone (oldest first)");
            egui::Grid::new("zone_history")
                .striped(true)
                .show(ui, |ui| {
                    for (zone, points) in &file.zone_history {
                        ui.label(zone);
                        ui.add(
                            egui::Label::new(crate::client::depth_history(points, " · ")).wrap(),
                        );
                        ui.end_row();
                    }
                });
        });
}

fn sessions_ui(
    ui: &mut egui::Ui,
    file: &ClientFile,
    state: &mut ClientFileState,
    commands: &mut Vec<UiCommand>,
) {
    ui.strong(format!("Sessions ({})", file.sessions.len()));
    egui::Grid::new("client_sessions")
        .striped(true)
        .min_col_width(90.0)
        .num_columns(5)
        .show(ui, |ui| {
            for h in [
                "Date",
                "Indication",
                "Zones (deepest, needling)",
                "Products and lots",
                "Notes and follow-up",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for s in &file.sessions {
                ui.vertical(|ui| {
                    ui.label(s.date.map_or_else(|| "?".to_owned(), |d| d.to_string()));
                    if s.interrupted {
                        ui.colored_label(theme::ALARM_MEDIUM, "INTERRUPTED");
                    }
                    if s.open_now {
                        ui.colored_label(theme::OK, "OPEN NOW");
                    }
                    if s.simulated {
                        ui.colored_label(theme::SIMULATED, "SIMULATED");
                    }
                });
                ui.label(s.indication.as_deref().unwrap_or("?"));
                let zones: Vec<String> = s
                    .zones
                    .iter()
                    .map(|z| {
                        if z.passes == 0 && z.needling_ms == 0 {
                            format!("{} (selected, not needled)", z.zone)
                        } else {
                            format!(
                                "{} {} {}:{:02}",
                                z.zone,
                                crate::safety::interlock::mm(i64::from(z.max_depth_um)),
                                z.needling_ms / 60_000,
                                z.needling_ms / 1000 % 60
                            )
                        }
                    })
                    .collect();
                ui.label(if zones.is_empty() {
                    "–".to_owned()
                } else {
                    zones.join("\n")
                });
                let lots: Vec<String> = s
                    .lots
                    .iter()
                    .map(|l| format!("{} lot {}", l.product, l.lot))
                    .collect();
                ui.label(if lots.is_empty() {
                    "–".to_owned()
                } else {
                    lots.join("\n")
                });
                ui.vertical(|ui| {
                    for n in &s.notes {
                        ui.add(egui::Label::new(n.as_str()).wrap());
                    }
                    for a in &s.amendments {
                        ui.colored_label(
                            theme::WARN,
                            format!("{} {} ({}): {}", a.date, a.kind, a.severity, a.note),
                        );
                    }
                    if ui.small_button("Add follow-up…").clicked() {
                        state.amend_session = Some(s.session_id.clone());
                    }
                });
                ui.end_row();
            }
        });
    amendment_form_ui(ui, state, commands);
}

fn amendment_form_ui(
    ui: &mut egui::Ui,
    state: &mut ClientFileState,
    commands: &mut Vec<UiCommand>,
) {
    let Some(session_id) = state.amend_session.clone() else {
        return;
    };
    ui.separator();
    ui.strong(format!("Follow-up for session {session_id}"));
    ui.horizontal(|ui| {
        egui::ComboBox::new("amend_kind", "Kind")
            .selected_text(if state.amend_kind.is_empty() {
                "choose…"
            } else {
                &state.amend_kind
            })
            .show_ui(ui, |ui| {
                for k in KINDS {
                    ui.selectable_value(&mut state.amend_kind, k.to_owned(), k);
                }
            });
        egui::ComboBox::new("amend_severity", "Severity")
            .selected_text(if state.amend_severity.is_empty() {
                "choose…"
            } else {
                &state.amend_severity
            })
            .show_ui(ui, |ui| {
                for s in SEVERITIES {
                    ui.selectable_value(&mut state.amend_severity, s.to_owned(), s);
                }
            });
        let l = ui.label("Seen on");
        ui.add(
            egui::TextEdit::singleline(&mut state.amend_date)
                .hint_text("today")
                .desired_width(90.0),
        )
        .labelled_by(l.id);
    });
    let l = ui.label("Note");
    ui.add(egui::TextEdit::multiline(&mut state.amend_note).desired_rows(2))
        .labelled_by(l.id);
    let date = if state.amend_date.trim().is_empty() {
        Some(jiff::Zoned::now().date())
    } else {
        state.amend_date.trim().parse::<jiff::civil::Date>().ok()
    };
    if date.is_none() {
        ui.colored_label(theme::REFUSAL, "The date is YYYY-MM-DD.");
    }
    ui.horizontal(|ui| {
        let ready = date.is_some()
            && !state.amend_kind.is_empty()
            && !state.amend_severity.is_empty()
            && !state.amend_note.trim().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new("Add to the file"))
            .clicked()
            && let Some(date) = date
        {
            commands.push(UiCommand::AddAmendment {
                session_id: session_id.clone(),
                date,
                kind: state.amend_kind.clone(),
                severity: state.amend_severity.clone(),
                note: state.amend_note.trim().to_owned(),
            });
            state.amend_note.clear();
            state.amend_session = None;
        }
        if ui.button("Cancel").clicked() {
            state.amend_session = None;
        }
    });
}
