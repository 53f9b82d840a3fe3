//! Technician mode in the window: the dialog that sets the technician PIN or unlocks
//! with it, and the TECHNICIAN MODE strip shown while it is on.
//!
//! The way in is a small "Technician" button at the end of the connection bar, never
//! a control an operator needs, so nobody stumbles into it. The station decides: the
//! PIN rules, wrong PINs, the lockout and the refusal while a session is open are its
//! words, shown as they come. The dialog never keeps a PIN longer than it must: the
//! fields are cleared once the station has taken them, and `Debug` hides them.

use egui::RichText;

use super::commands::UiCommand;
use super::theme;

/// A PIN on its way from the dialog to the station: `Debug` never shows it, so a
/// command logged or printed in a failing test does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The technician dialog's state: whether it shows, its fields, and the station's
/// last answer.
#[derive(Default)]
pub struct TechnicianState {
    open: bool,
    /// The signed-in technician's account, or why technician mode is not open to
    /// the account signed in (as the station last said).
    account: Option<Result<String, String>>,
    /// The technician's id, stored on the pen with each calibration.
    pub technician_id: String,
    /// The PIN typed to unlock.
    pub pin: String,
    /// The station's last refusal, in its words.
    error: Option<String>,
    /// A friendly word after a step that worked (the PIN was set).
    info: Option<String>,
    /// Unlock accepted by the station; the interlock's answer is awaited.
    awaiting: bool,
}

impl std::fmt::Debug for TechnicianState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PIN fields are left out on purpose.
        f.debug_struct("TechnicianState")
            .field("open", &self.open)
            .field("account", &self.account)
            .field("technician_id", &self.technician_id)
            .field("error", &self.error)
            .field("awaiting", &self.awaiting)
            .finish_non_exhaustive()
    }
}

impl TechnicianState {
    /// Shows the dialog; `account`: the signed-in technician's id, or why technician
    /// mode is not open to whoever is signed in. The technician id stored on the pen
    /// starts as the account's id when it fits (16 characters).
    pub fn show(&mut self, account: Result<String, String>) {
        self.open = true;
        if let Ok(id) = &account
            && self.technician_id.is_empty()
            && id.len() <= 16
        {
            id.clone_into(&mut self.technician_id);
        }
        self.account = Some(account);
        self.error = None;
        self.info = None;
    }

    /// Hides the dialog and forgets every PIN typed.
    pub fn close(&mut self) {
        self.open = false;
        self.awaiting = false;
        self.forget_pins();
        self.error = None;
        self.info = None;
    }

    fn forget_pins(&mut self) {
        self.pin.clear();
    }

    /// Whether the dialog shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The station's last refusal shown in the dialog.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The station refused a step: say why, and clear the PIN fields (a PIN is typed
    /// again, never kept).
    pub fn refused(&mut self, why: String) {
        self.forget_pins();
        self.awaiting = false;
        self.info = None;
        self.error = Some(why);
    }

    /// The station took the PIN; the interlock's answer is awaited.
    pub fn unlocking(&mut self) {
        self.forget_pins();
        self.error = None;
        self.awaiting = true;
    }

    /// Follows the station after its pump: closes the dialog once technician mode is
    /// on, or shows the interlock's refusal (`refusal`: the last one logged).
    pub fn follow(&mut self, technician_on: bool, toggle_pending: bool, refusal: Option<&str>) {
        if !self.awaiting || toggle_pending {
            return;
        }
        if technician_on {
            self.close();
        } else {
            self.refused(refusal.map_or_else(
                || "technician mode was not switched on".to_owned(),
                str::to_owned,
            ));
        }
    }
}

/// Draws the technician dialog, when it shows.
pub fn technician_dialog_ui(
    ctx: &egui::Context,
    state: &mut TechnicianState,
    commands: &mut Vec<UiCommand>,
) {
    if !state.open {
        return;
    }
    egui::Window::new("Technician mode")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.set_min_width(380.0);
            ui.label("For bench calibration of pens. Operators do not need this.");
            ui.add_space(6.0);
            match state.account.clone() {
                Some(Err(why)) => {
                    ui.colored_label(theme::ALARM_HIGH, why);
                    ui.label("An admin gives an account the technician role.");
                }
                Some(Ok(account)) => unlock_ui(ui, state, &account, commands),
                None => {}
            }
            if let Some(info) = &state.info {
                ui.colored_label(theme::OK, info);
            }
            if let Some(error) = &state.error {
                ui.add(egui::Label::new(RichText::new(error).color(theme::REFUSAL)).wrap());
            }
            if state.awaiting {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Waiting for the interlock…");
                });
            }
            ui.separator();
            if ui.button("Close").clicked() {
                commands.push(UiCommand::CloseTechnician);
            }
        });
}

/// A labelled single-line field; `password` masks it.
fn field(ui: &mut egui::Ui, label: &str, text: &mut String, password: bool) -> egui::Response {
    let label = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .password(password)
            .desired_width(180.0),
    )
    .labelled_by(label.id)
}

fn unlock_ui(
    ui: &mut egui::Ui,
    state: &mut TechnicianState,
    account: &str,
    commands: &mut Vec<UiCommand>,
) {
    ui.heading("Unlock technician mode");
    ui.label(format!(
        "Signed in as {account}: your PIN or password again."
    ));
    let mut submit = false;
    egui::Grid::new("technician_unlock")
        .num_columns(2)
        .spacing([10.0, 6.0])
        .show(ui, |ui| {
            field(ui, "Technician id", &mut state.technician_id, false);
            ui.end_row();
            let pin = field(ui, "Your PIN", &mut state.pin, true);
            submit |= pin.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.end_row();
        });
    ui.label(RichText::new("The id is stored on the pen with each calibration.").weak());
    let ready = !state.awaiting && !state.pin.is_empty() && !state.technician_id.trim().is_empty();
    if ui.add_enabled(ready, egui::Button::new("Unlock")).clicked() || (submit && ready) {
        commands.push(UiCommand::EnterTechnician {
            pin: Secret(state.pin.clone()),
            technician_id: state.technician_id.trim().to_owned(),
        });
    }
}

/// The label of the strip while technician mode is on.
#[must_use]
pub fn strip_text(technician: &str) -> String {
    format!(" TECHNICIAN MODE — {technician} ")
}

/// The TECHNICIAN MODE strip: who is in, and the way out.
pub fn technician_strip_ui(ui: &mut egui::Ui, technician: &str, commands: &mut Vec<UiCommand>) {
    ui.horizontal(|ui| {
        ui.label(
            RichText::new(strip_text(technician))
                .strong()
                .size(16.0)
                .color(theme::ON_TECHNICIAN)
                .background_color(theme::TECHNICIAN),
        );
        ui.label("Calibration may be written to the pen.");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Leave technician mode").clicked() {
                commands.push(UiCommand::LeaveTechnician);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_should_never_show_a_pin() {
        let state = TechnicianState {
            pin: "482916".into(),
            ..TechnicianState::default()
        };
        let shown = format!("{state:?} {:?}", Secret("482916".into()));
        assert!(!shown.contains("482916"), "{shown}");
    }

    #[test]
    fn a_refusal_should_clear_the_typed_pins() {
        let mut state = TechnicianState::default();
        state.show(Ok("Ana-B".into()));
        state.pin = "1111".into();
        state.refused("wrong technician PIN".into());
        assert!(state.pin.is_empty());
        assert_eq!(state.error(), Some("wrong technician PIN"));
    }
}
