//! The admin screen: accounts (create, disable, roles, reset a PIN), the zone limits
//! (edited in place, never above the compiled ceilings, each with a reason) and the
//! settings (idle lock, numbing times, the clinic's name). It only asks: the station
//! checks the admin role on the accounts file as it is now, and every rule.

use std::collections::{BTreeMap, BTreeSet};

use egui::RichText;

use super::commands::UiCommand;
use super::technician_panel::Secret;
use super::theme;
use crate::safety::interlock::mm;
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::station::admin::SettingChange;
use crate::store::StationSettings;
use crate::store::accounts::{Account, Role, roles_text};

/// The admin screen's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminTab {
    /// The accounts.
    #[default]
    Accounts,
    /// The zone limits.
    ZoneLimits,
    /// The settings.
    Settings,
}

/// The admin screen's state: what it shows (read by the app when it opens and after
/// every change) and the fields typed.
#[derive(Default)]
pub struct AdminState {
    open: bool,
    /// The tab shown.
    pub tab: AdminTab,
    /// The accounts as last read.
    pub accounts: Vec<Account>,
    /// The settings as last read.
    pub settings: Option<StationSettings>,
    /// New account: id, name, roles, PIN.
    pub new_id: String,
    /// New account's name.
    pub new_name: String,
    /// New account's roles.
    pub new_roles: BTreeSet<Role>,
    /// New account's PIN.
    pub new_pin: String,
    /// The account acted on (disable, roles, reset).
    pub target: String,
    /// Why it is disabled.
    pub disable_reason: String,
    /// Its new PIN.
    pub reset_pin: String,
    /// The new limit typed per zone, mm.
    pub limits: BTreeMap<ZoneId, String>,
    /// Why the limits change.
    pub limit_reason: String,
    /// The settings typed: key to value.
    pub setting_values: BTreeMap<&'static str, String>,
    /// The station's last answer: `Ok` said what was done.
    result: Option<Result<String, String>>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("open", &self.open)
            .field("tab", &self.tab)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Opens the screen on what the station read.
    pub fn show(&mut self, accounts: Vec<Account>, settings: Option<StationSettings>) {
        self.open = true;
        self.refresh(accounts, settings);
        self.result = None;
    }

    /// What the station reads now.
    pub fn refresh(&mut self, accounts: Vec<Account>, settings: Option<StationSettings>) {
        self.accounts = accounts;
        if let Some(s) = &settings {
            for (key, value) in [
                ("idle_lock_min", s.idle_lock_min.to_string()),
                (
                    "numbing_min_contact_min",
                    s.numbing_min_contact_min.to_string(),
                ),
                (
                    "numbing_max_contact_min",
                    s.numbing_max_contact_min.to_string(),
                ),
                ("test_spot_wait_min", s.test_spot_wait_min.to_string()),
                ("clinic_name", s.clinic_name.clone().unwrap_or_default()),
            ] {
                self.setting_values.insert(key, value);
            }
        }
        self.settings = settings;
    }

    /// Closes the screen, forgetting the PINs typed.
    pub fn close(&mut self) {
        self.open = false;
        self.new_pin.clear();
        self.reset_pin.clear();
    }

    /// Whether the screen shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The station's answer to the last change.
    pub fn said(&mut self, result: Result<String, String>) {
        if result.is_ok() {
            self.new_pin.clear();
            self.reset_pin.clear();
        }
        self.result = Some(result);
    }

    /// The station's last answer.
    #[must_use]
    pub fn result(&self) -> Option<&Result<String, String>> {
        self.result.as_ref()
    }
}

/// The admin screen in the centre.
pub fn admin_ui(
    ui: &mut egui::Ui,
    state: &mut AdminState,
    zones: &ZoneTable,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading("Admin");
        ui.selectable_value(&mut state.tab, AdminTab::Accounts, "Accounts");
        ui.selectable_value(&mut state.tab, AdminTab::ZoneLimits, "Zone limits");
        ui.selectable_value(&mut state.tab, AdminTab::Settings, "Settings");
        if ui.button("Close").clicked() {
            commands.push(UiCommand::CloseAdmin);
        }
    });
    match &state.result {
        Some(Ok(text)) => {
            ui.colored_label(theme::OK, text);
        }
        Some(Err(text)) => {
            ui.add(egui::Label::new(RichText::new(text).color(theme::REFUSAL)).wrap());
        }
        None => {}
    }
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| match state.tab {
        AdminTab::Accounts => accounts_ui(ui, state, commands),
        AdminTab::ZoneLimits => limits_ui(ui, state, zones, commands),
        AdminTab::Settings => settings_ui(ui, state, commands),
    });
}

fn roles_checkboxes(ui: &mut egui::Ui, roles: &mut BTreeSet<Role>, salt: &str) {
    ui.horizontal(|ui| {
        for role in Role::ALL {
            let mut on = roles.contains(&role);
            if ui
                .checkbox(&mut on, role.as_str())
                .on_hover_text(format!("{salt}: {role}"))
                .changed()
            {
                if on {
                    roles.insert(role);
                } else {
                    roles.remove(&role);
                }
            }
        }
    });
}

fn accounts_ui(ui: &mut egui::Ui, state: &mut AdminState, commands: &mut Vec<UiCommand>) {
    egui::Grid::new("accounts_list")
        .num_columns(4)
        .striped(true)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for h in ["Account", "Name", "Roles", "State"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for a in &state.accounts {
                if ui.selectable_label(state.target == a.id, &a.id).clicked() {
                    state.target.clone_from(&a.id);
                }
                ui.label(crate::text::shown(&a.name));
                ui.label(roles_text(&a.roles));
                ui.label(if a.disabled { "disabled" } else { "enabled" });
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    ui.label(RichText::new("New account").strong());
    egui::Grid::new("new_account")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Account id");
            ui.text_edit_singleline(&mut state.new_id);
            ui.end_row();
            ui.label("Name");
            ui.text_edit_singleline(&mut state.new_name);
            ui.end_row();
            ui.label("Roles");
            roles_checkboxes(ui, &mut state.new_roles, "new account");
            ui.end_row();
            ui.label("PIN");
            ui.add(egui::TextEdit::singleline(&mut state.new_pin).password(true));
            ui.end_row();
        });
    if ui.button("Create account").clicked() {
        commands.push(UiCommand::CreateAccount {
            id: state.new_id.trim().to_owned(),
            name: state.new_name.trim().to_owned(),
            roles: state.new_roles.clone(),
            pin: Secret(state.new_pin.clone()),
        });
    }
    ui.add_space(8.0);
    ui.label(RichText::new("Selected account").strong());
    if state.target.is_empty() {
        ui.label("Click an account above.");
        return;
    }
    let target = state.target.clone();
    ui.label(format!(
        "Account {target}: accounts are disabled, never deleted (records keep the id)."
    ));
    egui::Grid::new("account_actions")
        .num_columns(3)
        .show(ui, |ui| {
            ui.label("Reason");
            ui.text_edit_singleline(&mut state.disable_reason);
            if ui.button("Disable").clicked() {
                commands.push(UiCommand::DisableAccount {
                    id: target.clone(),
                    reason: state.disable_reason.trim().to_owned(),
                });
            }
            ui.end_row();
            ui.label("New PIN");
            ui.add(egui::TextEdit::singleline(&mut state.reset_pin).password(true));
            if ui.button("Reset PIN").clicked() {
                commands.push(UiCommand::ResetSecret {
                    id: target.clone(),
                    pin: Secret(state.reset_pin.clone()),
                });
            }
            ui.end_row();
        });
    if let Some(account) = state.accounts.iter().find(|a| a.id == target) {
        let mut roles = account.roles.clone();
        ui.horizontal(|ui| {
            ui.label("Roles");
            roles_checkboxes(ui, &mut roles, &target);
        });
        if roles != account.roles {
            commands.push(UiCommand::SetRoles { id: target, roles });
        }
    }
}

fn limits_ui(
    ui: &mut egui::Ui,
    state: &mut AdminState,
    zones: &ZoneTable,
    commands: &mut Vec<UiCommand>,
) {
    ui.label(
        "Protocol limits per zone. A new limit is never above the zone's compiled ceiling, \
         is a multiple of 0.05 mm, takes effect between sessions, and needs a reason.",
    );
    egui::Grid::new("zone_limits")
        .num_columns(5)
        .striped(true)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for h in ["Zone", "Limit", "Ceiling", "New limit, mm", ""] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for zone in ZoneId::ALL {
                let entry = zones.zone(zone);
                ui.label(zone.as_str());
                ui.label(mm(i64::from(entry.limit_um)));
                ui.label(mm(i64::from(
                    zone.compiled_ceiling_um().min(entry.ceiling_um),
                )));
                let typed = state.limits.entry(zone).or_default();
                ui.add(
                    egui::TextEdit::singleline(typed)
                        .desired_width(70.0)
                        .hint_text(format!("{:.2}", f64::from(entry.limit_um) / 1000.0)),
                );
                if ui
                    .add_enabled(!typed.trim().is_empty(), egui::Button::new("Apply"))
                    .on_hover_text(format!("apply the new {zone} limit"))
                    .clicked()
                {
                    commands.push(UiCommand::SetZoneLimit {
                        zone,
                        mm_text: typed.trim().to_owned(),
                        reason: state.limit_reason.trim().to_owned(),
                    });
                }
                ui.end_row();
            }
        });
    ui.horizontal(|ui| {
        ui.label("Reason");
        ui.add(egui::TextEdit::singleline(&mut state.limit_reason).desired_width(360.0));
    });
}

fn settings_ui(ui: &mut egui::Ui, state: &mut AdminState, commands: &mut Vec<UiCommand>) {
    egui::Grid::new("settings_grid")
        .num_columns(3)
        .show(ui, |ui| {
            for (key, label) in [
                ("idle_lock_min", "Idle lock, minutes (1-60)"),
                (
                    "numbing_min_contact_min",
                    "Numbing: minimum contact, minutes",
                ),
                (
                    "numbing_max_contact_min",
                    "Numbing: end of contact window, minutes",
                ),
                ("test_spot_wait_min", "Test spot wait, minutes"),
                ("clinic_name", "Clinic's name (hand-outs)"),
            ] {
                ui.label(label);
                let value = state.setting_values.entry(key).or_default();
                ui.add(egui::TextEdit::singleline(value).desired_width(200.0));
                if ui
                    .button("Save")
                    .on_hover_text(format!("save {key}"))
                    .clicked()
                {
                    commands.push(UiCommand::ChangeSetting {
                        key,
                        value: value.clone(),
                    });
                }
                ui.end_row();
            }
        });
}

/// A change typed in the settings tab, as the station's.
pub fn setting_change(key: &str, value: &str) -> Result<SettingChange, String> {
    SettingChange::parse(key, value)
}
