//! Session start: the client, the screening questionnaire with cautions, and the
//! open session's facts. Treatment cannot start until screening passes (the interlock
//! refuses it); this panel only collects answers and shows the outcome.

use std::collections::{BTreeMap, BTreeSet};

use egui::RichText;

use super::commands::UiCommand;
use super::theme;
use crate::safety::screening::{
    DEFAULT_LASER_PEEL_WINDOW_DAYS, Indication, QuestionId, QuestionKind,
};
use crate::station::Station;

/// The form's state (runtime only: it names a client, so it is never persisted).
#[derive(Debug, Clone, Default)]
pub struct ScreeningForm {
    /// Client pseudonym id (no names are needed).
    pub client: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub dob: String,
    /// The indication.
    pub indication: Option<Indication>,
    /// Each answerable question's answer; `None` until answered.
    pub answers: BTreeMap<QuestionId, bool>,
    /// Cautions the practitioner confirmed.
    pub confirmed: BTreeSet<QuestionId>,
    /// A screening answers file to load instead.
    pub file: String,
    /// A note being written for the open session's record.
    pub note: String,
}

impl ScreeningForm {
    /// The answers file's JSON, once every question is answered. `practitioner`: the
    /// signed-in account (the session's practitioner, never typed).
    #[must_use]
    pub fn to_json(&self, practitioner: &str) -> Option<String> {
        let answerable: Vec<QuestionId> = QuestionId::ALL
            .into_iter()
            .filter(|q| q.answerable())
            .collect();
        if answerable.iter().any(|q| !self.answers.contains_key(q)) {
            return None;
        }
        let answers: serde_json::Map<String, serde_json::Value> = self
            .answers
            .iter()
            .map(|(q, a)| (q.as_str().to_owned(), serde_json::Value::Bool(*a)))
            .collect();
        let confirmed: Vec<&str> = self
            .confirmed
            .iter()
            .filter(|q| self.answers.get(q) == Some(&true))
            .map(|q| q.as_str())
            .collect();
        Some(
            serde_json::json!({
                "client": self.client.trim(),
                "dob": self.dob.trim(),
                "indication": self.indication.map(Indication::as_str),
                "practitioner": practitioner,
                "answers": answers,
                "confirmed_cautions": confirmed,
            })
            .to_string(),
        )
    }
}

/// Draws the session panel.
pub fn session_panel_ui(
    ui: &mut egui::Ui,
    station: Option<&Station>,
    form: &mut ScreeningForm,
    checklist: &mut super::checklist_panel::ChecklistState,
    commands: &mut Vec<UiCommand>,
) {
    ui.heading("Session");
    if let Some(station) = station
        && let Some(session) = station.session()
    {
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                open_session_ui(ui, session, station.record_path(), commands);
                if station.history_incomplete() {
                    ui.colored_label(
                        theme::ALARM_MEDIUM,
                        "History incomplete: the clinic store cannot be reached, so other \
                         rooms' treatments of this client are not known.",
                    );
                }
                ui.separator();
                super::checklist_panel::checklist_ui(ui, station, session, checklist, commands);
                ui.separator();
                note_and_end_ui(ui, &mut form.note, commands);
            });
        return;
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            client_ui(ui, form);
            let client = form.client.trim().to_owned();
            if !client.is_empty()
                && ui
                    .button("Client file")
                    .on_hover_text("Every session of this client this station can read")
                    .clicked()
            {
                commands.push(UiCommand::ShowClientFile(client));
            }
            ui.separator();
            questions_ui(ui, form);
            ui.separator();
            let practitioner = station.and_then(Station::account_id).unwrap_or_default();
            ui.label(format!("Practitioner: {practitioner} (signed in)"));
            let json = form.to_json(practitioner);
            let ready = json.is_some()
                && !form.client.trim().is_empty()
                && !practitioner.is_empty()
                && form.indication.is_some();
            let open = ui.add_enabled(ready, egui::Button::new("Open session"));
            if !ready {
                ui.small("Answer every question and fill in the client to open a session.");
            }
            if open.clicked()
                && let Some(json) = json
            {
                commands.push(UiCommand::OpenSession(json));
            }
            ui.separator();
            ui.label("Or load a screening answers file:");
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut form.file)
                        .hint_text("/path/screening.json")
                        .desired_width(200.0),
                );
                if ui.button("Load").clicked() && !form.file.trim().is_empty() {
                    commands.push(UiCommand::LoadScreening(form.file.trim().into()));
                }
            });
        });
}

fn client_ui(ui: &mut egui::Ui, form: &mut ScreeningForm) {
    egui::Grid::new("client_grid")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("Client id");
            ui.add(egui::TextEdit::singleline(&mut form.client).hint_text("C-0042"))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Date of birth");
            ui.add(egui::TextEdit::singleline(&mut form.dob).hint_text("1990-05-01"))
                .labelled_by(label.id);
            ui.end_row();
            ui.label("");
            egui::ComboBox::new("indication", "Indication")
                .selected_text(form.indication.map_or("choose…", Indication::as_str))
                .show_ui(ui, |ui| {
                    for indication in Indication::ALL {
                        ui.selectable_value(
                            &mut form.indication,
                            Some(indication),
                            indication.as_str(),
                        );
                    }
                });
            ui.end_row();
        });
}

fn questions_ui(ui: &mut egui::Ui, form: &mut ScreeningForm) {
    for kind in [QuestionKind::DoNotTreat, QuestionKind::Caution] {
        ui.label(
            RichText::new(match kind {
                QuestionKind::DoNotTreat => "Do not treat if yes",
                QuestionKind::Caution => "Caution: yes needs the practitioner's confirmation",
            })
            .strong(),
        );
        for q in QuestionId::ALL
            .into_iter()
            .filter(|q| q.answerable() && q.kind() == kind)
        {
            ui.horizontal(|ui| {
                let mut answer = form.answers.get(&q).copied();
                ui.radio_value(&mut answer, Some(false), "no");
                ui.radio_value(&mut answer, Some(true), "yes");
                if let Some(a) = answer {
                    form.answers.insert(q, a);
                }
                let text = q.text(DEFAULT_LASER_PEEL_WINDOW_DAYS);
                match (kind, answer) {
                    (QuestionKind::DoNotTreat, Some(true)) => {
                        ui.colored_label(theme::ALARM_HIGH, text);
                    }
                    (QuestionKind::Caution, Some(true)) => {
                        ui.colored_label(theme::WARN, text);
                    }
                    _ => {
                        ui.label(text);
                    }
                }
            });
            if kind == QuestionKind::Caution && form.answers.get(&q) == Some(&true) {
                let mut confirmed = form.confirmed.contains(&q);
                ui.indent(q.as_str(), |ui| {
                    if ui
                        .checkbox(&mut confirmed, format!("confirm caution: {}", q.as_str()))
                        .changed()
                    {
                        if confirmed {
                            form.confirmed.insert(q);
                        } else {
                            form.confirmed.remove(&q);
                        }
                    }
                });
            }
        }
    }
}

fn open_session_ui(
    ui: &mut egui::Ui,
    session: &crate::station::session::Session,
    record: Option<&std::path::Path>,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.strong(&session.answers.client);
        ui.label(format!(
            "· {} · age {} · {}",
            session.answers.indication.as_str(),
            session.outcome.age_years,
            session.answers.practitioner
        ));
        if record.is_none() {
            ui.colored_label(theme::ALARM_HIGH, "NOT RECORDING");
        }
    });
    egui::CollapsingHeader::new("Session details")
        .id_salt("session_details")
        .show(ui, |ui| session_details_ui(ui, session, record));
    ui.colored_label(theme::OK, "Screening passed.");
    if let Some(course) = &session.course {
        ui.label(format!("Course: {}", course.text));
        if let Some(caution) = &course.caution {
            ui.colored_label(theme::WARN, format!("Caution: {caution}"));
        }
    }
    if ui.button("Client file").clicked() {
        commands.push(UiCommand::ShowClientFile(session.answers.client.clone()));
    }
}

/// The note field and End session, below the checklist.
fn note_and_end_ui(ui: &mut egui::Ui, note: &mut String, commands: &mut Vec<UiCommand>) {
    ui.add_space(8.0);
    let label = ui.label("Note for the record");
    ui.horizontal(|ui| {
        let field = ui
            .add(
                egui::TextEdit::singleline(note)
                    .hint_text("what the record should say")
                    .desired_width(300.0),
            )
            .labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let add = ui.add_enabled(!note.trim().is_empty(), egui::Button::new("Add note"));
        if (add.clicked() || entered) && !note.trim().is_empty() {
            commands.push(UiCommand::AddNote(note.trim().to_owned()));
            note.clear();
        }
    });
    ui.add_space(8.0);
    if ui.button("End session").clicked() {
        commands.push(UiCommand::EndSession);
    }
}

fn session_details_ui(
    ui: &mut egui::Ui,
    session: &crate::station::session::Session,
    record: Option<&std::path::Path>,
) {
    egui::Grid::new("session_grid")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Session");
            ui.label(&session.id);
            ui.end_row();
            ui.label("Client");
            ui.label(&session.answers.client);
            ui.end_row();
            ui.label("Age");
            ui.label(session.outcome.age_years.to_string());
            ui.end_row();
            ui.label("Indication");
            ui.label(session.answers.indication.as_str());
            ui.end_row();
            ui.label("Practitioner");
            ui.label(&session.answers.practitioner);
            ui.end_row();
            ui.label("Cautions");
            let cautions: Vec<&str> = session
                .outcome
                .confirmed_cautions
                .iter()
                .map(|q| q.as_str())
                .collect();
            ui.label(if cautions.is_empty() {
                "none".to_owned()
            } else {
                cautions.join(", ")
            });
            ui.end_row();
            ui.label("Record");
            match record {
                Some(path) => ui
                    .label(
                        path.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    )
                    .on_hover_text(path.display().to_string()),
                None => ui.colored_label(theme::ALARM_HIGH, "NOT RECORDING"),
            };
            ui.end_row();
        });
}
