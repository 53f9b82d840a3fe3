//! The connection bar: the alarm sound's state, the pen, the link's health,
//! calibration and cartridge.

use egui::RichText;

use super::commands::{PortChoice, UiCommand};
use super::theme;
use crate::calibration::CalibrationStatus;
use crate::link::LinkState;
use crate::link::discovery::PortEntry;
use crate::safety::interlock::CartridgeCheck;
use crate::sound::SoundStatus;
use crate::sound::signal::VOLUME_MIN_PCT;
use crate::station::Station;

/// What the bar shows of the alarm sound.
#[derive(Debug, Clone)]
pub struct SoundView {
    /// Whether alarms can be heard.
    pub status: SoundStatus,
    /// The volume setting, %.
    pub volume_pct: u8,
}

/// Draws the bar: theme switch, port picker, the sound, link health, pen details,
/// calibration, cartridge.
// Each argument is one thing the bar shows, owned by a different part of the app.
#[allow(clippy::too_many_arguments)]
pub fn connection_bar_ui(
    ui: &mut egui::Ui,
    station: Option<&Station>,
    ports: &[PortEntry],
    current: Option<&PortChoice>,
    simulated: bool,
    dark_mode: &mut bool,
    sound: &SoundView,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal_wrapped(|ui| {
        // First, at the bar's left end: its menu then opens over the session panel,
        // never over the EMERGENCY STOP button at the right.
        sound_ui(ui, sound, commands);
        ui.separator();
        let theme = if *dark_mode {
            "Light theme"
        } else {
            "Dark theme"
        };
        if ui.small_button(theme).clicked() {
            *dark_mode = !*dark_mode;
        }
        if ui
            .button("Open recording…")
            .on_hover_text("Replay a recorded session (not while a session is open)")
            .clicked()
        {
            commands.push(UiCommand::ShowOpenRecording);
        }
        if ui
            .button("Session library")
            .on_hover_text("Past sessions in the data folder: search by client, replay one")
            .clicked()
        {
            commands.push(UiCommand::ShowLibrary);
        }
        if ui
            .button("Lot search")
            .on_hover_text(
                "Every session and client that used a lot: numbing cream, serum, cartridge",
            )
            .clicked()
        {
            commands.push(UiCommand::ShowLotSearch);
        }
        if simulated {
            // Wherever it matters: nobody may mistake the simulated pen for a real one.
            ui.label(
                RichText::new(" SIMULATED PEN ")
                    .strong()
                    .color(egui::Color32::WHITE)
                    .background_color(theme::SIMULATED),
            );
        }
        port_picker_ui(ui, ports, current, commands);
        if ui
            .button("Refresh ports")
            .on_hover_text("List serial ports again")
            .clicked()
        {
            commands.push(UiCommand::RefreshPorts);
        }
        if station.is_some() {
            if ui.button("Disconnect").clicked() {
                commands.push(UiCommand::Disconnect);
            }
        } else if let Some(choice) = current.cloned().or(Some(PortChoice::Simulated))
            && ui.button("Connect").clicked()
        {
            commands.push(UiCommand::Connect(choice));
        }
        ui.separator();
        let Some(station) = station else {
            ui.label("not connected");
            return;
        };
        link_ui(ui, station);
        if let Some(status) = station.clinic_status() {
            ui.separator();
            clinic_ui(ui, &status);
        }
        ui.separator();
        pen_ui(ui, station, commands);
        if station.technician().is_none() {
            ui.separator();
            // Small and last: operators never need it, so they do not stumble into it.
            if ui
                .small_button("Technician")
                .on_hover_text("Technician mode (PIN): bench calibration of the pen")
                .clicked()
            {
                commands.push(UiCommand::ShowTechnician);
            }
        }
    });
}

fn port_label(choice: Option<&PortChoice>, ports: &[PortEntry]) -> String {
    match choice {
        None => "no pen".to_owned(),
        Some(PortChoice::Simulated) => "built-in simulated pen".to_owned(),
        Some(PortChoice::Path(p)) => match ports.iter().find(|e| &e.path == p) {
            Some(e) if e.is_pen => format!("{p} (pen)"),
            _ => p.clone(),
        },
    }
}

fn port_picker_ui(
    ui: &mut egui::Ui,
    ports: &[PortEntry],
    current: Option<&PortChoice>,
    commands: &mut Vec<UiCommand>,
) {
    egui::ComboBox::new("port_picker", "Pen")
        .selected_text(port_label(current, ports))
        .width(230.0)
        .show_ui(ui, |ui| {
            // Pens first (the list is sorted so), marked; then other ports; then the sim.
            for entry in ports {
                let text = match (&entry.product, entry.is_pen) {
                    (Some(product), true) => format!("[pen] {} — {product}", entry.path),
                    (Some(product), false) => format!("{} — {product}", entry.path),
                    (None, _) => entry.path.clone(),
                };
                let choice = PortChoice::Path(entry.path.clone());
                if ui
                    .selectable_label(current == Some(&choice), text)
                    .clicked()
                {
                    commands.push(UiCommand::Connect(choice));
                }
            }
            let sim = PortChoice::Simulated;
            if ui
                .selectable_label(current == Some(&sim), "built-in simulated pen")
                .clicked()
            {
                commands.push(UiCommand::Connect(sim));
            }
        });
}

fn link_ui(ui: &mut egui::Ui, station: &Station) {
    // A port that cannot be opened is said in full: the operator must act.
    if let LinkState::Connecting {
        last_error: Some(why),
        port_problem: Some(_),
        ..
    } = station.link_state()
    {
        ui.label(
            RichText::new(crate::text::shown(why))
                .strong()
                .color(theme::ALARM_HIGH),
        );
        return;
    }
    let (text, color) = match station.link_state() {
        LinkState::Connected { .. } => ("link up", theme::OK),
        LinkState::Handshaking => ("handshake…", theme::WARN),
        LinkState::Connecting { .. } => ("connecting…", theme::WARN),
        LinkState::Lost(_) => ("LINK LOST", theme::ALARM_HIGH),
        LinkState::Closed => ("closed", theme::ALARM_HIGH),
    };
    ui.label(RichText::new(text).strong().color(color));
    let s = station.stats();
    #[allow(clippy::cast_precision_loss)] // microseconds, far below 2^52
    let rtt = s.rtt_p50_us.map_or_else(
        || "–".to_owned(),
        |us| format!("{:.2} ms", us as f64 / 1000.0),
    );
    ui.label(format!(
        "rtt {rtt} · {:.0} Hz · gaps {} · retries {}",
        s.telemetry_rate_hz, s.telemetry_gaps, s.retries
    ))
    .on_hover_text(format!(
        "samples lost {}, dropped for display {}, lines discarded {}",
        s.samples_lost,
        s.telemetry_dropped,
        s.discarded.total()
    ));
    if let Some(t) = station.last_telemetry() {
        theme::pen_state_label(ui, t.state);
    }
}

/// The clinic store: its state in a word, the outbox's depth and the last upload;
/// the store, this station's id and the reason on hover. Never silent: a station
/// that works alone shows nothing here.
fn clinic_ui(ui: &mut egui::Ui, status: &crate::clinic::ClinicStatus) {
    use crate::clinic::StoreState;
    let (word, color) = match &status.state {
        StoreState::Connected => ("Clinic: connected", theme::OK),
        StoreState::Connecting => ("Clinic: connecting…", theme::WARN),
        StoreState::Unreachable(_) => ("Clinic: UNREACHABLE", theme::ALARM_MEDIUM),
        StoreState::Incompatible(_) => ("Clinic: NOT USABLE", theme::ALARM_HIGH),
    };
    let last = status.last_upload.map_or_else(
        || "never".to_owned(),
        |t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S")
                .to_string()
        },
    );
    let outbox = if status.outbox.lines == 0 {
        "outbox empty".to_owned()
    } else {
        format!("outbox {} lines", status.outbox.lines)
    };
    let reason = match &status.state {
        StoreState::Unreachable(why) | StoreState::Incompatible(why) => format!("\n{why}"),
        _ => String::new(),
    };
    ui.label(RichText::new(word).strong().color(color))
        .on_hover_text(format!(
            "{} as station {}{reason}",
            status.store, status.station_id
        ));
    if !status.blocked.is_empty() {
        ui.colored_label(
            theme::ALARM_HIGH,
            format!("NOT UPLOADED: {}", status.blocked.join(", ")),
        )
        .on_hover_text("A file was cut or replaced after upload: restore it from a backup");
    }
    ui.label(format!("{outbox} · uploaded {last}"))
        .on_hover_text(format!(
            "{} lines ({} bytes) written here and not yet in the clinic store",
            status.outbox.lines, status.outbox.bytes
        ));
}

fn pen_ui(ui: &mut egui::Ui, station: &Station, commands: &mut Vec<UiCommand>) {
    if let Some(info) = station.info() {
        ui.label(crate::text::pen_line(&info.model, &info.serial, &info.fw));
    }
    // One rule for the status, the station's (the interlock's 365 days, 30 days'
    // warning), so the bar and the console never disagree.
    if let Some(status) = station.calibration_status() {
        ui.colored_label(calibration_color(status), format!("calibration: {status}"))
            .on_hover_text(
                station
                    .calibration()
                    .map_or_else(String::new, crate::calibration::procedure::describe),
            );
    }
    if let Some(pending) = station.pending_restore() {
        ui.colored_label(theme::ALARM_HIGH, pending_restore_text(&pending.serial))
            .on_hover_text(format!("since {}: {}", pending.since, pending.why));
    }
    match station.safety_summary().and_then(|s| s.cartridge.as_ref()) {
        None => {
            ui.colored_label(theme::WARN, "no cartridge");
        }
        Some(c) => {
            let (state, color) = match &c.check {
                CartridgeCheck::Fresh => ("fresh", theme::OK),
                CartridgeCheck::Unchecked => ("checking…", theme::WARN),
                CartridgeCheck::UsedBefore { .. } => ("USED", theme::ALARM_HIGH),
                CartridgeCheck::Offline {
                    sealed_pack_confirmed: true,
                } => ("sealed pack confirmed", theme::WARN),
                CartridgeCheck::Offline {
                    sealed_pack_confirmed: false,
                } => ("NOT CHECKED: clinic store away", theme::ALARM_MEDIUM),
            };
            ui.colored_label(
                color,
                format!("cartridge {} · {} needles · {state}", c.id, c.needles),
            );
            if matches!(
                c.check,
                CartridgeCheck::Offline {
                    sealed_pack_confirmed: false
                }
            ) && ui
                .button("Confirm sealed pack")
                .on_hover_text(
                    "The clinic store cannot tell whether another room used this cartridge. \
                     Confirm only if you took it from a sealed pack yourself: it is recorded.",
                )
                .clicked()
            {
                commands.push(UiCommand::ConfirmSealedPack);
            }
        }
    }
}

/// The calibration status's colour: green while valid, amber when due within 30 days,
/// red when overdue or never calibrated (the interlock then refuses to treat).
#[must_use]
pub fn calibration_color(status: CalibrationStatus) -> egui::Color32 {
    match status {
        CalibrationStatus::Valid { .. } => theme::OK,
        CalibrationStatus::DueSoon { .. } => theme::WARN,
        CalibrationStatus::Never
        | CalibrationStatus::NotADate { .. }
        | CalibrationStatus::Overdue { .. } => theme::ALARM_HIGH,
    }
}

/// The note shown while a pen's previous calibration is still to be written back.
#[must_use]
pub fn pending_restore_text(serial: &str) -> String {
    format!("previous calibration of pen {serial} still to be written back; enter technician mode")
}

/// The alarm sound: its state in a word (the detail on hover), and a menu with the
/// volume and "Test alarm sound".
fn sound_ui(ui: &mut egui::Ui, sound: &SoundView, commands: &mut Vec<UiCommand>) {
    let (word, color) = match &sound.status {
        SoundStatus::Working { .. } => ("Sound: working", theme::OK),
        SoundStatus::Unavailable { .. } => ("Sound: UNAVAILABLE", theme::ALARM_MEDIUM),
        SoundStatus::Starting => ("Sound: starting", ui.visuals().weak_text_color()),
        SoundStatus::Off => ("Sound: off", ui.visuals().weak_text_color()),
    };
    let detail = sound.status.to_string();
    ui.menu_button(RichText::new(word).color(color).strong(), |ui| {
        ui.label(format!("Alarm sound {detail}"));
        let mut volume = sound.volume_pct;
        let slider = ui.add(
            egui::Slider::new(&mut volume, VOLUME_MIN_PCT..=100)
                .suffix(" %")
                .text("alarm volume"),
        );
        // One store per choice: when the drag ends, or a click or key sets it.
        if slider.drag_stopped() || (slider.changed() && !slider.dragged()) {
            commands.push(UiCommand::SetAlarmVolume(volume));
        }
        ui.label(format!(
            "High-priority alarms play at {} % at least.",
            crate::sound::signal::HIGH_VOLUME_MIN_PCT
        ));
        if ui
            .button("Test alarm sound")
            .on_hover_text("Plays high, medium and low once, high first (about 8 s)")
            .clicked()
        {
            commands.push(UiCommand::TestAlarmSound);
        }
    })
    .response
    .on_hover_text(format!("Alarm sound {detail}"));
}
