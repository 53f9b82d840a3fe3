//! Who is at the station, in the window: the sign-in screen (and the first admin's
//! creation on the first start), the lock screen, the account strip (who, lock,
//! sign out, admin), and the dialog that signs a closed session's record.
//!
//! Every screen here only asks: the station decides (`station::people`). While the
//! lock screen or the sign-in screen shows, the alarm banner, the E-stop and Stop
//! stay on screen (the app draws them around the centre).

use egui::RichText;

use super::commands::UiCommand;
use super::technician_panel::Secret;
use super::theme;
use crate::station::Station;
use crate::store::accounts::roles_text;

/// The fields of the sign-in, lock and sign-record screens, and the station's last
/// refusal. Secrets are cleared after every try.
#[derive(Default)]
pub struct PeopleState {
    /// The account id typed.
    pub id: String,
    /// The PIN typed.
    pub pin: String,
    /// First admin: the name.
    pub name: String,
    /// First admin: the PIN again.
    pub pin_repeat: String,
    /// The PIN typed to sign a record.
    pub sign_pin: String,
    /// The record the operator chose to leave unsigned for now.
    pub sign_later: Option<std::path::PathBuf>,
    /// The station's last refusal, in its words.
    error: Option<String>,
}

impl std::fmt::Debug for PeopleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeopleState")
            .field("id", &self.id)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl PeopleState {
    /// The station refused: say why, forget the secrets typed.
    pub fn refused(&mut self, why: String) {
        self.forget();
        self.error = Some(why);
    }

    /// A step worked: forget the secrets typed and the last refusal.
    pub fn done(&mut self) {
        self.forget();
        self.error = None;
    }

    fn forget(&mut self) {
        self.pin.clear();
        self.pin_repeat.clear();
        self.sign_pin.clear();
    }

    /// The station's last refusal shown.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// A form's grid, centred under the heading (a grid in a centred column would sit at
/// its left edge).
fn centred_form(ui: &mut egui::Ui, id: &str, add: impl FnOnce(&mut egui::Ui)) {
    const FORM_WIDTH: f32 = 290.0;
    ui.horizontal(|ui| {
        ui.add_space(((ui.available_width() - FORM_WIDTH) / 2.0).max(0.0));
        egui::Grid::new(id)
            .num_columns(2)
            .spacing([10.0, 6.0])
            .show(ui, add);
    });
}

/// A labelled single-line field; `password` masks it. Enter in it submits.
fn field(ui: &mut egui::Ui, label: &str, text: &mut String, password: bool) -> bool {
    let label = ui.label(label);
    let response = ui
        .add(
            egui::TextEdit::singleline(text)
                .password(password)
                .desired_width(200.0),
        )
        .labelled_by(label.id);
    ui.end_row();
    response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}

fn error_ui(ui: &mut egui::Ui, state: &PeopleState) {
    if let Some(error) = &state.error {
        ui.add(egui::Label::new(RichText::new(error).color(theme::REFUSAL)).wrap());
    }
}

/// The sign-in screen; on the first start (`first_admin`), the first admin's form.
/// `first_admin`: `Err` when the accounts file cannot be read (nobody signs in).
/// `clinic`: the clinic store this station belongs to (without its password), whose
/// accounts it takes.
pub fn sign_in_ui(
    ui: &mut egui::Ui,
    state: &mut PeopleState,
    first_admin: Result<bool, String>,
    clinic: Option<&str>,
    commands: &mut Vec<UiCommand>,
) {
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading("Punctum");
        ui.add_space(12.0);
        match first_admin {
            Err(why) => {
                ui.colored_label(theme::ALARM_HIGH, why);
                ui.label("Nobody can sign in until the accounts file is restored.");
            }
            Ok(true) => first_admin_ui(ui, state, clinic, commands),
            Ok(false) => {
                ui.label("Sign in to treat, calibrate or manage the station.");
                ui.add_space(6.0);
                let mut submit = false;
                centred_form(ui, "sign_in_form", |ui| {
                    field(ui, "Account", &mut state.id, false);
                    submit |= field(ui, "PIN", &mut state.pin, true);
                });
                let ready = !state.id.trim().is_empty() && !state.pin.is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new(RichText::new("Sign in").strong()))
                    .clicked()
                    || (submit && ready)
                {
                    commands.push(UiCommand::SignIn {
                        id: state.id.trim().to_owned(),
                        pin: Secret(state.pin.clone()),
                    });
                }
            }
        }
        error_ui(ui, state);
    });
}

fn first_admin_ui(
    ui: &mut egui::Ui,
    state: &mut PeopleState,
    clinic: Option<&str>,
    commands: &mut Vec<UiCommand>,
) {
    if let Some(store) = clinic {
        // A room of a clinic takes the clinic's accounts: the form is for a new
        // clinic only (the station refuses it otherwise, and says why).
        ui.label(RichText::new("No account at this station yet").strong());
        ui.add(
            egui::Label::new(format!(
                "This station belongs to the clinic store {store}: its accounts are taken \
                 from the store as soon as it answers (the bar shows its state), and the \
                 sign-in appears. Create an admin here only for a new clinic, whose store \
                 has no account yet."
            ))
            .wrap(),
        );
        ui.add_space(6.0);
        ui.label(RichText::new("A new clinic: create its first admin account").strong());
    } else {
        ui.label(RichText::new("First start: create the clinic's first admin account").strong());
    }
    ui.label(
        "The admin adds the practitioners and technicians. A technician PIN set before \
         becomes a technician account, with the same PIN.",
    );
    ui.label(
        RichText::new(
            "Id: 1-32 of A-Z a-z 0-9 _ - (records keep it). PIN: 4-12 digits, not all the \
             same, not a run like 1234; or a password of 10 characters or more.",
        )
        .weak(),
    );
    let mut submit = false;
    centred_form(ui, "first_admin_form", |ui| {
        field(ui, "Account", &mut state.id, false);
        field(ui, "Name", &mut state.name, false);
        field(ui, "PIN", &mut state.pin, true);
        submit |= field(ui, "PIN again", &mut state.pin_repeat, true);
    });
    let ready =
        !state.id.trim().is_empty() && !state.name.trim().is_empty() && !state.pin.is_empty();
    if ui
        .add_enabled(
            ready,
            egui::Button::new(RichText::new("Create admin").strong()),
        )
        .clicked()
        || (submit && ready)
    {
        commands.push(UiCommand::CreateFirstAdmin {
            id: state.id.trim().to_owned(),
            name: state.name.trim().to_owned(),
            pin: Secret(state.pin.clone()),
            repeat: Secret(state.pin_repeat.clone()),
        });
    }
}

/// The lock screen: who locked it, the PIN to unlock, another practitioner's
/// take-over. The E-stop, Stop and the alarm banner stay around it.
pub fn lock_ui(
    ui: &mut egui::Ui,
    state: &mut PeopleState,
    station: &Station,
    commands: &mut Vec<UiCommand>,
) {
    let who = station
        .signed_in()
        .map(|s| s.id().to_owned())
        .unwrap_or_default();
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading(
            RichText::new("STATION LOCKED")
                .color(theme::ALARM_MEDIUM)
                .strong(),
        );
        ui.label(format!(
            "Locked by {who}. Emergency stop and Stop still work."
        ));
        if let Some(session) = station.session() {
            ui.label(format!(
                "Session {} (client {}) stays open.",
                session.id, session.answers.client
            ));
        }
        ui.add_space(10.0);
        let mut submit = false;
        centred_form(ui, "unlock_form", |ui| {
            field(ui, "Account", &mut state.id, false);
            submit |= field(ui, "PIN", &mut state.pin, true);
        });
        ui.label(
            RichText::new(format!(
                "{who}'s PIN unlocks. Another practitioner's account and PIN take over \
                 (a recorded hand-over)."
            ))
            .weak(),
        );
        let ready = !state.pin.is_empty();
        let label = if state.id.trim().is_empty() || state.id.trim() == who {
            "Unlock"
        } else {
            "Take over"
        };
        if ui
            .add_enabled(ready, egui::Button::new(RichText::new(label).strong()))
            .clicked()
            || (submit && ready)
        {
            // An empty account field is the account that locked.
            let id = Some(state.id.trim().to_owned())
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| who.clone());
            commands.push(UiCommand::SignIn {
                id,
                pin: Secret(state.pin.clone()),
            });
        }
        error_ui(ui, state);
    });
}

/// The strip under the connection bar: who is signed in, the idle lock's countdown,
/// Lock, Sign out, and Admin for an admin.
pub fn account_strip_ui(
    ui: &mut egui::Ui,
    station: &Station,
    admin_open: bool,
    commands: &mut Vec<UiCommand>,
) {
    let Some(who) = station.signed_in() else {
        return;
    };
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("Signed in: {} ({})", who.id(), who.name())).strong());
        ui.label(RichText::new(roles_text(who.roles())).weak());
        if let Some(left) = station.idle_left() {
            let secs = left.as_secs();
            ui.label(RichText::new(format!("idle lock in {}:{:02}", secs / 60, secs % 60)).weak());
        }
        if ui
            .button("Lock")
            .on_hover_text("Lock the station now (not while the needle runs)")
            .clicked()
        {
            commands.push(UiCommand::Lock);
        }
        if ui.button("Sign out").clicked() {
            commands.push(UiCommand::SignOut);
        }
        if who.has(crate::store::accounts::Role::Admin) {
            if admin_open {
                if ui.button("Close admin").clicked() {
                    commands.push(UiCommand::CloseAdmin);
                }
            } else if ui.button("Admin").clicked() {
                commands.push(UiCommand::ShowAdmin);
            }
        }
    });
}

/// The dialog that signs the last closed session's record, for its practitioner.
pub fn sign_record_ui(
    ctx: &egui::Context,
    state: &mut PeopleState,
    station: &Station,
    commands: &mut Vec<UiCommand>,
) {
    let Some(record) = station.unsigned_record() else {
        return;
    };
    if state.sign_later.as_deref() == Some(record.path.as_path())
        || station
            .active_account()
            .is_none_or(|a| a.id() != record.practitioner)
    {
        return;
    }
    egui::Window::new("Sign the session record")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(format!(
                "Session {}: sign its record as {}, {}.",
                record.session_id,
                record.practitioner,
                crate::record::sign::MEANING
            ));
            ui.label(
                RichText::new(
                    "After signing nothing is added to the record; follow-ups go to the \
                     client's file.",
                )
                .weak(),
            );
            let mut submit = false;
            egui::Grid::new("sign_record_form")
                .num_columns(2)
                .show(ui, |ui| {
                    submit |= field(ui, "Your PIN", &mut state.sign_pin, true);
                });
            ui.horizontal(|ui| {
                let ready = !state.sign_pin.is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new(RichText::new("Sign").strong()))
                    .clicked()
                    || (submit && ready)
                {
                    commands.push(UiCommand::SignRecord {
                        pin: Secret(state.sign_pin.clone()),
                    });
                }
                if ui.button("Later").clicked() {
                    commands.push(UiCommand::SignRecordLater);
                }
            });
            error_ui(ui, state);
        });
}
