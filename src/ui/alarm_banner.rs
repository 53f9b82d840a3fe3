//! Alarms: the banner with the highest-priority active alarm (the most visible thing
//! on screen, in the reference's colours and flashing rates) and the alarm list with
//! acknowledge and silence.
//!
//! Both draw from a [`SessionSource`]: live, or the alarms active at a replay's
//! cursor. A replay's alarms say they were recorded and offer no buttons: there is
//! nothing to acknowledge in the past.
//!
//! IEC 60601-1-8 as the clinical reference gives it: high is red, flashing at 1.4 to
//! 2.8 Hz (here 2 Hz); medium is yellow, flashing at 0.4 to 0.8 Hz (here 0.6 Hz);
//! low is cyan, steady.

use egui::{Color32, RichText};

use super::commands::UiCommand;
use super::plots::clock;
use super::source::SessionSource;
use super::theme;
use crate::safety::alarms::{ActiveAlarm, Priority};

/// The banner's inner height, points.
const BANNER_HEIGHT: f32 = 28.0;

/// Flash frequency of high-priority alarms, Hz.
pub const HIGH_FLASH_HZ: f64 = 2.0;
/// Flash frequency of medium-priority alarms, Hz.
pub const MEDIUM_FLASH_HZ: f64 = 0.6;

/// The colour of a priority.
#[must_use]
pub fn priority_color(priority: Priority) -> Color32 {
    match priority {
        Priority::High => theme::ALARM_HIGH,
        Priority::Medium => theme::ALARM_MEDIUM,
        Priority::Low => theme::ALARM_LOW,
    }
}

/// How fast an alarm of `priority` flashes, Hz; `None`: it does not (low).
#[must_use]
pub fn flash_hz(priority: Priority) -> Option<f64> {
    match priority {
        Priority::High => Some(HIGH_FLASH_HZ),
        Priority::Medium => Some(MEDIUM_FLASH_HZ),
        Priority::Low => None,
    }
}

/// Is a flashing alarm in its bright phase at `time_s`? Low priority never flashes.
#[must_use]
pub fn flash_on(priority: Priority, time_s: f64) -> bool {
    flash_hz(priority).is_none_or(|hz| (time_s * hz).fract() < 0.5)
}

/// Draws the banner: the highest active alarm, full width, flashing by priority.
pub fn banner_ui(
    ui: &mut egui::Ui,
    source: Option<&dyn SessionSource>,
    commands: &mut Vec<UiCommand>,
) {
    let live = source.is_none_or(SessionSource::is_live);
    // The banner keeps its height with or without an alarm, so nothing below it jumps
    // when one is raised.
    let Some(alarm) = source.and_then(SessionSource::highest_alarm) else {
        egui::Frame::new()
            .inner_margin(egui::Margin::symmetric(12, 8))
            .show(ui, |ui| {
                ui.set_min_height(BANNER_HEIGHT);
                ui.horizontal_centered(|ui| {
                    let text = if live {
                        "No active alarm"
                    } else {
                        "No alarm active at the cursor"
                    };
                    ui.colored_label(theme::OK, RichText::new(text).size(16.0));
                });
            });
        return;
    };
    let time_s = ui.input(|i| i.time);
    let color = priority_color(alarm.priority);
    let bright = alarm.acknowledged || flash_on(alarm.priority, time_s);
    let fill = if bright {
        color
    } else {
        color.gamma_multiply(0.35)
    };
    egui::Frame::new()
        .fill(fill)
        .inner_margin(egui::Margin::symmetric(12, 8))
        .show(ui, |ui| {
            ui.set_min_width(ui.available_width());
            ui.set_min_height(BANNER_HEIGHT);
            // Right to left: the buttons and "audio paused" first, on the right, so a
            // long alarm text never pushes them off the screen; the text takes what
            // is left, cut short with its whole on hover.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(paused) = source.and_then(SessionSource::audio_paused) {
                    audio_paused_ui(ui, paused);
                }
                if live {
                    if alarm.silenced_until_ms.is_none()
                        && ui.button(format!("Silence {}", alarm.id)).clicked()
                    {
                        commands.push(UiCommand::Silence(alarm.id));
                    }
                    if !alarm.acknowledged
                        && ui.button(format!("Acknowledge {}", alarm.id)).clicked()
                    {
                        commands.push(UiCommand::Acknowledge(Some(alarm.id)));
                    }
                }
                let mut text = format!(
                    "{} ALARM  {}  —  {}",
                    alarm.priority.as_str().to_uppercase(),
                    alarm.id,
                    alarm.text
                );
                if !live {
                    text.push_str(&recorded_suffix(&alarm));
                }
                ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                    ui.add(
                        egui::Label::new(
                            RichText::new(text)
                                .size(20.0)
                                .strong()
                                .color(theme::ON_ALARM),
                        )
                        .truncate(),
                    );
                });
            });
        });
    // Flashing needs a frame at each change of phase, even when nothing else changes.
    if let Some(hz) = flash_hz(alarm.priority)
        && !alarm.acknowledged
    {
        super::repaint::request(
            ui.ctx(),
            super::repaint::Reason::AlarmFlash,
            super::repaint::until_flash_change(hz, time_s),
        );
    }
}

/// `AUDIO PAUSED 1:43 (link_lost)`: IEC 60601-1-8 asks the screen to say the sound
/// is paused, and for how long, while an alarm is silenced.
fn audio_paused_ui(ui: &mut egui::Ui, (id, left_ms): (crate::safety::alarms::AlarmId, u64)) {
    let secs = left_ms.div_ceil(1000);
    ui.label(
        RichText::new(format!(
            " AUDIO PAUSED {}:{:02} ({id}) ",
            secs / 60,
            secs % 60
        ))
        .size(18.0)
        .strong()
        // Light on dark, readable on every priority's colour and in both phases of
        // the flash.
        .color(egui::Color32::WHITE)
        .background_color(egui::Color32::from_black_alpha(200)),
    );
    // The countdown's next second.
    let to_next_second = left_ms % 1000;
    super::repaint::request(
        ui.ctx(),
        super::repaint::Reason::AudioPaused,
        std::time::Duration::from_millis(if to_next_second == 0 {
            1000
        } else {
            to_next_second
        }),
    );
}

/// How a replayed alarm says it is a recording: `  (recorded; raised at 0:10)`.
fn recorded_suffix(alarm: &ActiveAlarm) -> String {
    #[allow(clippy::cast_precision_loss)] // session ms, far below 2^52
    let raised_s = alarm.raised_ms as f64 / 1000.0;
    format!("  (recorded; raised at {})", clock(raised_s))
}

fn alarm_buttons_ui(ui: &mut egui::Ui, alarm: &ActiveAlarm, commands: &mut Vec<UiCommand>) {
    if !alarm.acknowledged && ui.button(format!("Acknowledge {}", alarm.id)).clicked() {
        commands.push(UiCommand::Acknowledge(Some(alarm.id)));
    }
    if alarm.silenced_until_ms.is_none() && ui.button(format!("Silence {}", alarm.id)).clicked() {
        commands.push(UiCommand::Silence(alarm.id));
    }
}

/// Draws the list of every active alarm, highest first.
pub fn alarm_list_ui(
    ui: &mut egui::Ui,
    source: Option<&dyn SessionSource>,
    commands: &mut Vec<UiCommand>,
) {
    let Some(source) = source else {
        ui.label(RichText::new("Alarms").strong());
        return;
    };
    let live = source.is_live();
    let active = source.active_alarms();
    // The count says how many there are, even when the list must scroll to show them.
    ui.label(
        RichText::new(if active.is_empty() {
            "Alarms".to_owned()
        } else {
            format!("Alarms ({})", active.len())
        })
        .strong(),
    );
    if active.is_empty() {
        ui.label("none");
        return;
    }
    // Scrolls when the alarms outgrow the panel (a small screen, several alarms with
    // long texts): none is ever cut off out of reach.
    egui::ScrollArea::vertical()
        .id_salt("alarm_list")
        .max_height((ui.available_height() - 30.0).max(60.0))
        // Room for two alarms at least, on the smallest screen.
        .min_scrolled_height(90.0)
        .auto_shrink([false, true])
        .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysVisible)
        .show(ui, |ui| {
            for alarm in &active {
                ui.horizontal_wrapped(|ui| {
                    ui.label(
                        RichText::new(format!(" {} ", alarm.priority.as_str()))
                            .color(theme::ON_ALARM)
                            .background_color(priority_color(alarm.priority)),
                    );
                    let mut text = format!("{}: {}", alarm.id, alarm.text);
                    if alarm.acknowledged {
                        text.push_str(" (acknowledged)");
                    }
                    if alarm.silenced_until_ms.is_some() {
                        text.push_str(" (audio paused)");
                    }
                    if !live {
                        text.push_str(&recorded_suffix(alarm));
                    }
                    ui.label(text);
                    if live {
                        alarm_buttons_ui(ui, alarm, commands);
                    }
                });
            }
        });
    if live && ui.button("Acknowledge all").clicked() {
        commands.push(UiCommand::Acknowledge(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashing_rates_follow_the_standard() {
        // High at 2 Hz: bright for the first quarter second of each half second.
        assert!(flash_on(Priority::High, 0.0));
        assert!(!flash_on(Priority::High, 0.3));
        assert!(flash_on(Priority::High, 0.5));
        // Medium at 0.6 Hz: a period of 1.67 s.
        assert!(flash_on(Priority::Medium, 0.5));
        assert!(!flash_on(Priority::Medium, 1.0));
        // Low is steady.
        assert!(flash_on(Priority::Low, 0.3));
        assert!((1.4..=2.8).contains(&HIGH_FLASH_HZ));
        assert!((0.4..=0.8).contains(&MEDIUM_FLASH_HZ));
    }
}
