//! The procedure's checklist in the session panel: each step's state (done, counting
//! down, missing before the needle), the forms that record them, and the steps as
//! recorded. Recording goes through the station ([`UiCommand::RecordStep`]), which
//! checks the step; the interlock decides the start on what is recorded. A lot field
//! takes a barcode reader's typing and its Enter.

use egui::RichText;

use crate::safety::procedure::{Item, ItemState, StepEntry, StepKind, countdown};
use crate::safety::screening::QuestionId;
use crate::safety::zones::ZoneId;
use crate::station::Station;
use crate::station::session::Session;

use super::commands::UiCommand;
use super::theme;

/// What the operator is typing into the checklist's forms.
#[derive(Debug, Clone, Default)]
pub struct ChecklistState {
    /// Numbing cream's product.
    pub numbing_product: String,
    /// Numbing cream's lot.
    pub numbing_lot: String,
    /// Applied this many minutes before now.
    pub numbing_minutes_ago: u32,
    /// The deliberate confirmation for a lidocaine-sensitive client.
    pub lidocaine_confirmed: bool,
    /// Why no numbing.
    pub no_numbing_reason: String,
    /// Test spot zone.
    pub spot_zone: Option<ZoneId>,
    /// Test spot depth, mm as typed.
    pub spot_depth_mm: String,
    /// The reaction seen.
    pub reaction: String,
    /// Serum's product.
    pub serum_product: String,
    /// Serum's lot.
    pub serum_lot: String,
    /// The cartridge's lot, typed or scanned.
    pub cartridge_lot: String,
    /// The step a correction names.
    pub correct_step: Option<u32>,
    /// Void it (else replace the lot).
    pub correct_void: bool,
    /// The new lot for a correction.
    pub correct_lot: String,
    /// Why the correction.
    pub correct_reason: String,
}

fn record(commands: &mut Vec<UiCommand>, entry: StepEntry, at_utc_ms: Option<i64>) {
    commands.push(UiCommand::RecordStep {
        entry: Box::new(entry),
        at_utc_ms,
    });
}

fn new(kind: StepKind) -> StepEntry {
    StepEntry::new(kind, 0, "")
}

/// Draws the checklist of the open session.
pub fn checklist_ui(
    ui: &mut egui::Ui,
    station: &Station,
    session: &Session,
    state: &mut ChecklistState,
    commands: &mut Vec<UiCommand>,
) {
    let items = station.checklist().unwrap_or_default();
    ui.strong("Procedure");
    egui::Grid::new("checklist_grid")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for item in &items {
                item_row(ui, session, item);
            }
        });
    ui.add_space(4.0);
    let done = |label: &str| {
        items
            .iter()
            .find(|i| i.label.starts_with(label))
            .is_some_and(|i| i.state != ItemState::Pending)
    };
    if !done("Cleansing") && ui.button("Cleansing done").clicked() {
        record(commands, new(StepKind::Cleansing), None);
    }
    numbing_ui(ui, session, &items, state, commands);
    egui::CollapsingHeader::new("Test spot (optional)")
        .id_salt("test_spot")
        .show(ui, |ui| test_spot_ui(ui, state, commands));
    lots_ui(ui, station, state, commands);
    if !done("Aftercare") && ui.button("Aftercare given").clicked() {
        record(commands, new(StepKind::AftercareGiven), None);
    }
    egui::CollapsingHeader::new(format!(
        "Steps recorded ({})",
        session.checklist.entries().len()
    ))
    .id_salt("steps_recorded")
    .show(ui, |ui| recorded_ui(ui, session, state, commands));
}

fn item_row(ui: &mut egui::Ui, session: &Session, item: &Item) {
    let (word, color) = match &item.state {
        ItemState::Pending if item.required => ("MISSING".to_owned(), theme::ALARM_MEDIUM),
        ItemState::Pending => ("—".to_owned(), ui.visuals().weak_text_color()),
        ItemState::Waiting { remaining_ms } => {
            (format!("WAIT {}", countdown(*remaining_ms)), theme::WARN)
        }
        ItemState::Ready => ("READY".to_owned(), theme::OK),
        ItemState::Overdue => ("PAST WINDOW".to_owned(), theme::WARN),
        ItemState::Done => ("done".to_owned(), theme::OK),
        ItemState::Waived => ("waived".to_owned(), theme::OK),
    };
    ui.label(RichText::new(word).strong().color(color));
    let mut text = item.label.clone();
    if let Some(at_ms) = item.at_ms.filter(|_| item.state != ItemState::Pending) {
        text = format!("{text} {}", session.wall_clock(at_ms));
    }
    if !item.detail.is_empty() {
        text = format!("{text}: {}", item.detail);
    }
    ui.add(egui::Label::new(text).wrap());
    ui.end_row();
}

fn numbing_ui(
    ui: &mut egui::Ui,
    session: &Session,
    items: &[Item],
    state: &mut ChecklistState,
    commands: &mut Vec<UiCommand>,
) {
    let numbing = items.iter().find(|i| i.label == "Numbing cream");
    let on = numbing.is_some_and(|i| {
        matches!(
            i.state,
            ItemState::Waiting { .. } | ItemState::Ready | ItemState::Overdue
        )
    });
    if on {
        if ui.button("Numbing cream removed").clicked() {
            record(commands, new(StepKind::NumbingRemoved), None);
        }
        return;
    }
    if numbing.is_some_and(|i| matches!(i.state, ItemState::Done | ItemState::Waived)) {
        return;
    }
    egui::CollapsingHeader::new("Numbing cream")
        .id_salt("numbing")
        .default_open(true)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                let l = ui.label("Numbing product");
                ui.add(egui::TextEdit::singleline(&mut state.numbing_product).desired_width(110.0))
                    .labelled_by(l.id);
                let l = ui.label("Numbing lot");
                ui.add(egui::TextEdit::singleline(&mut state.numbing_lot).desired_width(90.0))
                    .labelled_by(l.id);
            });
            ui.horizontal(|ui| {
                let l = ui.label("Applied minutes ago");
                ui.add(
                    egui::DragValue::new(&mut state.numbing_minutes_ago)
                        // Below the limit: by the time it is recorded, seconds have passed.
                        .range(0..=crate::safety::procedure::NUMBING_BACKDATE_MAX_MIN - 1),
                )
                .labelled_by(l.id);
            });
            let sensitive = session
                .answers
                .confirmed_cautions
                .contains(&QuestionId::LidocaineSensitivity);
            if sensitive {
                ui.colored_label(
                    theme::ALARM_MEDIUM,
                    "Lidocaine sensitivity was confirmed at screening.",
                );
                ui.checkbox(
                    &mut state.lidocaine_confirmed,
                    "I confirm numbing is intended despite the lidocaine sensitivity",
                );
            }
            let ready = !state.numbing_product.trim().is_empty()
                && !state.numbing_lot.trim().is_empty()
                && (!sensitive || state.lidocaine_confirmed);
            if ui
                .add_enabled(ready, egui::Button::new("Numbing cream applied"))
                .clicked()
            {
                let at = (state.numbing_minutes_ago > 0).then(|| {
                    crate::station::record::utc_ms_now()
                        - i64::from(state.numbing_minutes_ago) * 60_000
                });
                record(
                    commands,
                    StepEntry {
                        product: Some(state.numbing_product.trim().to_owned()),
                        lot: Some(state.numbing_lot.trim().to_owned()),
                        lidocaine_confirmed: state.lidocaine_confirmed,
                        ..new(StepKind::NumbingApplied)
                    },
                    at,
                );
                state.lidocaine_confirmed = false;
            }
            ui.horizontal(|ui| {
                let l = ui.label("No numbing, because");
                ui.add(
                    egui::TextEdit::singleline(&mut state.no_numbing_reason).desired_width(140.0),
                )
                .labelled_by(l.id);
                let reason = state.no_numbing_reason.trim().to_owned();
                if ui
                    .add_enabled(!reason.is_empty(), egui::Button::new("Record"))
                    .clicked()
                {
                    record(
                        commands,
                        StepEntry {
                            reason: Some(reason),
                            ..new(StepKind::NoNumbing)
                        },
                        None,
                    );
                    state.no_numbing_reason.clear();
                }
            });
        });
}

fn test_spot_ui(ui: &mut egui::Ui, state: &mut ChecklistState, commands: &mut Vec<UiCommand>) {
    ui.horizontal(|ui| {
        egui::ComboBox::new("spot_zone", "Zone")
            .selected_text(state.spot_zone.map_or("choose…", ZoneId::as_str))
            .show_ui(ui, |ui| {
                for zone in ZoneId::ALL {
                    ui.selectable_value(&mut state.spot_zone, Some(zone), zone.as_str());
                }
            });
        let l = ui.label("Depth mm");
        ui.add(egui::TextEdit::singleline(&mut state.spot_depth_mm).desired_width(50.0))
            .labelled_by(l.id);
        let depth_um = super::console::parse_depth_um(state.spot_depth_mm.trim())
            .ok()
            .and_then(|um| i32::try_from(um).ok());
        if ui
            .add_enabled(
                state.spot_zone.is_some() && depth_um.is_some(),
                egui::Button::new("Test spot made"),
            )
            .clicked()
        {
            record(
                commands,
                StepEntry {
                    zone: state.spot_zone,
                    depth_um,
                    ..new(StepKind::TestSpot)
                },
                None,
            );
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("Reaction");
        ui.add(egui::TextEdit::singleline(&mut state.reaction).desired_width(160.0))
            .labelled_by(l.id);
        let reaction = state.reaction.trim().to_owned();
        if ui
            .add_enabled(!reaction.is_empty(), egui::Button::new("Record reaction"))
            .clicked()
        {
            record(
                commands,
                StepEntry {
                    reaction: Some(reaction),
                    ..new(StepKind::TestSpotReaction)
                },
                None,
            );
            state.reaction.clear();
        }
    });
}

fn lots_ui(
    ui: &mut egui::Ui,
    station: &Station,
    state: &mut ChecklistState,
    commands: &mut Vec<UiCommand>,
) {
    let cartridge = station
        .safety_summary()
        .and_then(|s| s.cartridge.as_ref())
        .map(|c| c.id.to_string());
    ui.horizontal(|ui| {
        let l = ui.label(match &cartridge {
            Some(id) => format!("Cartridge {id} lot"),
            None => "Cartridge lot (no cartridge in the pen)".to_owned(),
        });
        let field = ui
            .add_enabled(
                cartridge.is_some(),
                egui::TextEdit::singleline(&mut state.cartridge_lot)
                    .hint_text("type or scan")
                    .desired_width(110.0),
            )
            .labelled_by(l.id);
        // A barcode reader types the lot and presses Enter.
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let lot = state.cartridge_lot.trim().to_owned();
        let clicked = ui
            .add_enabled(
                cartridge.is_some() && !lot.is_empty(),
                egui::Button::new("Record lot"),
            )
            .clicked();
        if (clicked || entered) && cartridge.is_some() && !lot.is_empty() {
            record(
                commands,
                StepEntry {
                    lot: Some(lot),
                    ..new(StepKind::CartridgeLot)
                },
                None,
            );
            state.cartridge_lot.clear();
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("Serum");
        ui.add(egui::TextEdit::singleline(&mut state.serum_product).desired_width(100.0))
            .labelled_by(l.id);
        let l = ui.label("Serum lot");
        ui.add(egui::TextEdit::singleline(&mut state.serum_lot).desired_width(80.0))
            .labelled_by(l.id);
        let ready = !state.serum_product.trim().is_empty() && !state.serum_lot.trim().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new("Serum applied"))
            .clicked()
        {
            record(
                commands,
                StepEntry {
                    product: Some(state.serum_product.trim().to_owned()),
                    lot: Some(state.serum_lot.trim().to_owned()),
                    ..new(StepKind::Serum)
                },
                None,
            );
            state.serum_lot.clear();
        }
    });
}

/// The steps as recorded, and the correction form.
fn recorded_ui(
    ui: &mut egui::Ui,
    session: &Session,
    state: &mut ChecklistState,
    commands: &mut Vec<UiCommand>,
) {
    let entries = session.checklist.entries();
    if entries.is_empty() {
        ui.label("No step recorded yet.");
        return;
    }
    egui::Grid::new("steps_grid")
        .num_columns(3)
        .striped(true)
        .show(ui, |ui| {
            for e in entries {
                ui.label(e.number.to_string());
                ui.label(session.wall_clock(e.at_ms));
                ui.add(egui::Label::new(format!("{} (by {})", e.describe(), e.by)).wrap());
                ui.end_row();
            }
        });
    ui.label("Correct a step (the step stays on file; the correction is a new line)");
    ui.horizontal(|ui| {
        egui::ComboBox::new("correct_step", "Step")
            .selected_text(
                state
                    .correct_step
                    .map_or("choose…".to_owned(), |n| n.to_string()),
            )
            .show_ui(ui, |ui| {
                for e in entries.iter().filter(|e| e.kind() != StepKind::Correction) {
                    ui.selectable_value(
                        &mut state.correct_step,
                        Some(e.number),
                        format!("{} {}", e.number, e.kind().label()),
                    );
                }
            });
        ui.checkbox(&mut state.correct_void, "did not happen");
    });
    ui.horizontal(|ui| {
        if !state.correct_void {
            let l = ui.label("New lot");
            ui.add(egui::TextEdit::singleline(&mut state.correct_lot).desired_width(80.0))
                .labelled_by(l.id);
        }
        let l = ui.label("Why");
        ui.add(egui::TextEdit::singleline(&mut state.correct_reason).desired_width(120.0))
            .labelled_by(l.id);
    });
    let reason = state.correct_reason.trim().to_owned();
    let ready = state.correct_step.is_some()
        && !reason.is_empty()
        && (state.correct_void || !state.correct_lot.trim().is_empty());
    if ui
        .add_enabled(ready, egui::Button::new("Record correction"))
        .clicked()
    {
        record(
            commands,
            StepEntry {
                corrects: state.correct_step,
                void: state.correct_void,
                lot: (!state.correct_void).then(|| state.correct_lot.trim().to_owned()),
                reason: Some(reason),
                ..new(StepKind::Correction)
            },
            None,
        );
        state.correct_reason.clear();
        state.correct_lot.clear();
    }
}
