//! Closing the window while a session is open: asked first.
//!
//! The close button (or the window manager's close) while a session is open is held
//! back and this dialog asks. "End the session and close" halts the pen, waits up to
//! a second for it to report the motor stopped, closes the record with its summary
//! (marked `ended_by: "window closed"`) and closes the window; "Keep working" does
//! nothing. A signal (SIGINT, SIGTERM, SIGHUP) closes without asking, the same way,
//! the record marked with the signal's name.

use super::commands::UiCommand;

/// Draws the question while `asking`.
pub fn dialog_ui(ctx: &egui::Context, asking: &mut bool, commands: &mut Vec<UiCommand>) {
    if !*asking {
        return;
    }
    let modal = egui::Modal::new(egui::Id::unique("confirm_close")).show(ctx, |ui| {
        ui.heading("A session is open");
        ui.label(
            "Closing halts the pen and ends the session: its record is closed with its summary.",
        );
        ui.label("End it here to see the summary and the aftercare sheet first.");
        ui.horizontal(|ui| {
            if ui.button("End the session and close").clicked() {
                commands.push(UiCommand::CloseWindow);
                *asking = false;
            }
            if ui.button("Keep working").clicked() {
                *asking = false;
            }
        });
    });
    if modal.should_close() {
        *asking = false;
    }
}
