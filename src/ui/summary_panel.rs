//! End of session: the summary per zone, the aftercare and the next session's dates,
//! shown, and saved as the printable hand-outs the client takes home
//! ([`crate::handout`]: the aftercare sheet and the session summary).

use std::path::Path;

use egui::RichText;

use super::commands::UiCommand;
use crate::safety::interlock::mm;
use crate::station::session::SessionSummary;

/// Draws the summary window.
pub fn summary_window_ui(
    ctx: &egui::Context,
    summary: &SessionSummary,
    saved_to: Option<&Path>,
    commands: &mut Vec<UiCommand>,
) {
    egui::Window::new("Session summary")
        .collapsible(false)
        .resizable(true)
        .default_width(560.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(format!(
                "Session {} · client {}",
                summary.session_id, summary.client
            ));
            #[allow(clippy::cast_precision_loss)] // ms of a session
            let needling_s = summary.needling_ms as f64 / 1000.0;
            ui.label(format!(
                "needling {needling_s:.1} s · refusals {} · interruptions {}",
                summary.refusals, summary.interruptions
            ));
            ui.separator();
            egui::Grid::new("summary_zones")
                .striped(true)
                .num_columns(5)
                .show(ui, |ui| {
                    for head in ["zone", "passes", "needling", "max depth", "refusals"] {
                        ui.label(RichText::new(head).strong());
                    }
                    ui.end_row();
                    for z in &summary.zones {
                        ui.label(z.zone.as_str());
                        ui.label(z.passes.to_string());
                        #[allow(clippy::cast_precision_loss)]
                        let secs = z.needling_ms as f64 / 1000.0;
                        ui.label(format!("{secs:.1} s"));
                        ui.label(mm(i64::from(z.max_depth_um)));
                        ui.label(z.refusals.to_string());
                        ui.end_row();
                    }
                });
            ui.separator();
            ui.label(RichText::new("Aftercare").strong());
            for line in &summary.aftercare {
                ui.label(format!("• {line}"));
            }
            ui.label(RichText::new(&summary.next_advice).strong());
            if let Some(course) = &summary.course {
                ui.label(format!("Course: {course}"));
            }
            ui.separator();
            ui.horizontal(|ui| {
                if ui
                    .button("Save hand-outs")
                    .on_hover_text("The aftercare sheet and the session summary, as pages to print")
                    .clicked()
                {
                    commands.push(UiCommand::SaveAftercare);
                }
                if ui.button("Close").clicked() {
                    commands.push(UiCommand::CloseSummary);
                }
            });
            if let Some(path) = saved_to {
                ui.label(format!("Saved: {}", path.display()));
            }
        });
}
