//! The lot search screen: every session and client that used a lot (numbing cream,
//! serum, cartridge), newest first, for a recall. The lot field takes a barcode
//! reader's typing and its Enter. The records are scanned on a background thread.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use super::commands::UiCommand;
use super::theme;
use crate::client::{LotHit, lot_query};

/// The screen's state.
#[derive(Debug, Default)]
pub struct LotSearchState {
    open: bool,
    sessions_dir: Option<PathBuf>,
    /// The lot typed or scanned.
    pub query: String,
    searching: Option<Receiver<LotAnswer>>,
    result: Option<LotAnswer>,
    library: super::client_file_panel::SharedLibrary,
}

/// A search's answer.
#[derive(Debug)]
struct LotAnswer {
    /// The lot searched for.
    lot: String,
    /// Its uses.
    hits: Vec<LotHit>,
    /// Records read.
    records: usize,
    /// Records that could not be read.
    warnings: Vec<String>,
}

impl LotSearchState {
    /// Shows the screen for the records in `sessions_dir`, kept in `library`.
    pub fn show(
        &mut self,
        sessions_dir: PathBuf,
        library: &super::client_file_panel::SharedLibrary,
    ) {
        self.open = true;
        self.sessions_dir = Some(sessions_dir);
        self.library = std::sync::Arc::clone(library);
    }

    /// Searches for `lot`, in the background.
    pub fn search(&mut self, lot: String) {
        let Some(dir) = self.sessions_dir.clone() else {
            return;
        };
        let (tx, rx) = mpsc::channel();
        let library = std::sync::Arc::clone(&self.library);
        let spawned = std::thread::Builder::new()
            .name("lot-search".into())
            .spawn(move || {
                let mut library = library
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                library.refresh(&dir);
                let hits = lot_query(&library, &lot);
                let _ = tx.send(LotAnswer {
                    lot,
                    hits,
                    records: library.entries.len(),
                    warnings: library.warnings.clone(),
                });
            });
        if spawned.is_ok() {
            self.searching = Some(rx);
        }
    }

    /// Takes a finished search; never waits.
    pub fn poll(&mut self) {
        let Some(rx) = &self.searching else { return };
        match rx.try_recv() {
            Ok(result) => {
                self.result = Some(result);
                self.searching = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.searching = None,
        }
    }

    /// Whether the screen shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The last search's uses.
    #[must_use]
    pub fn hits(&self) -> Option<&[LotHit]> {
        self.result.as_ref().map(|r| r.hits.as_slice())
    }

    /// Whether a search is under way.
    #[must_use]
    pub fn searching(&self) -> bool {
        self.searching.is_some()
    }

    /// Hides the screen.
    pub fn close(&mut self) {
        self.open = false;
        self.searching = None;
    }
}

/// Draws the lot search.
pub fn lot_search_ui(ui: &mut egui::Ui, state: &mut LotSearchState, commands: &mut Vec<UiCommand>) {
    ui.horizontal(|ui| {
        ui.heading("Lot search");
        if ui.button("Close").clicked() {
            commands.push(UiCommand::CloseLotSearch);
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("Lot");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut state.query)
                    .hint_text("type or scan")
                    .desired_width(160.0),
            )
            .labelled_by(l.id);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let lot = state.query.trim().to_owned();
        if (ui
            .add_enabled(!lot.is_empty(), egui::Button::new("Search"))
            .clicked()
            || entered)
            && !lot.is_empty()
        {
            commands.push(UiCommand::SearchLot(lot));
        }
    });
    if state.searching() {
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
    let Some(LotAnswer {
        lot,
        hits,
        records,
        warnings,
    }) = &state.result
    else {
        return;
    };
    ui.label(format!(
        "Lot {lot}: {} use{} in {records} records",
        hits.len(),
        if hits.len() == 1 { "" } else { "s" }
    ));
    for w in warnings {
        ui.colored_label(theme::WARN, format!("warning: {w}"));
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("lot_hits")
                .striped(true)
                .num_columns(6)
                .show(ui, |ui| {
                    for h in [
                        "Date",
                        "Client",
                        "Kind",
                        "Product",
                        "Practitioner",
                        "Session",
                    ] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for h in hits {
                        ui.label(h.date.map_or_else(|| "?".to_owned(), |d| d.to_string()));
                        if ui
                            .link(&h.client)
                            .on_hover_text("Open the client's file")
                            .clicked()
                        {
                            commands.push(UiCommand::ShowClientFile(h.client.clone()));
                        }
                        ui.label(&h.kind);
                        ui.label(&h.product);
                        ui.label(&h.practitioner);
                        ui.label(&h.session_id);
                        ui.end_row();
                    }
                });
        });
}
