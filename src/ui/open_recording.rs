//! Opening a recording: the file dialog (`egui_file`, drawn in egui: no GTK or portal
//! on the station), the progress of the background load with Cancel, and the reason
//! when a file cannot be opened.

use std::path::Path;

use egui::RichText;
use egui_file::FileDialog;

use super::commands::UiCommand;
use super::theme;
use crate::replay::open::{Loading, Phase};

/// The folder under the data folder where sessions are recorded.
pub const SESSIONS_DIR: &str = "sessions";

/// The dialog's state, and the last failure to show.
#[derive(Default)]
pub struct OpenRecordingState {
    dialog: Option<FileDialog>,
    /// Why the last open failed, until the operator closes the message.
    pub error: Option<String>,
}

impl std::fmt::Debug for OpenRecordingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRecordingState")
            .field("dialog_open", &self.dialog.is_some())
            .field("error", &self.error)
            .finish()
    }
}

impl OpenRecordingState {
    /// Opens the dialog in `sessions/` of the data folder `data_root` (or the data
    /// folder itself, or the working directory, whichever exists first), listing
    /// `.jsonl` files.
    pub fn show_dialog(&mut self, data_root: Option<&Path>) {
        let start = data_root
            .map(|root| root.join(SESSIONS_DIR))
            .filter(|p| p.is_dir())
            .or_else(|| data_root.filter(|p| p.is_dir()).map(Path::to_path_buf))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let filter = Box::new(|path: &Path| {
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"))
        });
        let mut dialog = FileDialog::open_file()
            .title("Open recording")
            .initial_path(start)
            .show_files_filter(filter)
            .show_new_folder(false)
            .show_rename(false)
            .default_size([720.0, 480.0]);
        dialog.open();
        self.dialog = Some(dialog);
    }

    /// Whether the dialog is showing.
    #[must_use]
    pub fn dialog_open(&self) -> bool {
        self.dialog.as_ref().is_some_and(FileDialog::visible)
    }
}

/// Draws the dialog while it is open; a chosen file becomes
/// [`UiCommand::OpenRecording`].
pub fn dialog_ui(
    ctx: &egui::Context,
    state: &mut OpenRecordingState,
    commands: &mut Vec<UiCommand>,
) {
    let Some(dialog) = &mut state.dialog else {
        return;
    };
    if dialog.show(ctx).selected()
        && let Some(path) = dialog.path()
    {
        commands.push(UiCommand::OpenRecording(path.to_path_buf()));
    }
    if !dialog.visible() {
        state.dialog = None;
    }
}

/// Draws the progress of a background open, with Cancel.
pub fn loading_ui(ctx: &egui::Context, loading: &Loading, commands: &mut Vec<UiCommand>) {
    egui::Modal::new(egui::Id::unique("replay_loading")).show(ctx, |ui| {
        ui.set_width(460.0);
        ui.heading("Opening recording");
        ui.label(file_label(loading.path()));
        let (read, size) = loading.progress();
        let text = match (loading.cancelling(), loading.phase()) {
            (true, _) => "cancelling…".to_owned(),
            (false, Phase::Indexing) => "preparing the replay…".to_owned(),
            #[allow(clippy::cast_precision_loss)] // MB for a person
            (false, Phase::Reading) => format!(
                "{:.1} of {:.1} MB",
                read as f64 / 1_048_576.0,
                size as f64 / 1_048_576.0
            ),
        };
        ui.add(egui::ProgressBar::new(loading.fraction()).text(text));
        if ui
            .add_enabled(!loading.cancelling(), egui::Button::new("Cancel"))
            .clicked()
        {
            commands.push(UiCommand::CancelOpenRecording);
        }
    });
    // Progress moves without input.
    super::repaint::request(
        ctx,
        super::repaint::Reason::Progress,
        super::repaint::PROGRESS_INTERVAL,
    );
}

/// Draws why the last open failed, until closed.
pub fn error_ui(ctx: &egui::Context, error: &str, commands: &mut Vec<UiCommand>) {
    let modal = egui::Modal::new(egui::Id::unique("replay_open_error")).show(ctx, |ui| {
        ui.set_width(520.0);
        ui.heading("The recording could not be opened");
        ui.colored_label(theme::ALARM_HIGH, RichText::new(error).strong());
        ui.label("The file was not changed.");
        if ui.button("Close").clicked() {
            commands.push(UiCommand::CloseOpenError);
        }
    });
    if modal.should_close() {
        commands.push(UiCommand::CloseOpenError);
    }
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
