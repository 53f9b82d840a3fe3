//! Issue 13 through the window: the connection bar says whether alarms can be heard,
//! an alarm system that cannot sound is an alarm on screen, "audio paused" counts
//! down while an alarm is silenced, and "Test alarm sound" plays each priority once
//! through a real sound server.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp, WindowOptions};
use super::commands::UiCommand;
use super::repaint::{self, Reason};
use super::window_test_support::pulse::{Capture, PulseServer};
use super::window_test_support::{harness_with, options, step_until};
use crate::safety::alarms::AlarmId;
use crate::sound::analysis::pulses;

fn with_sound(data_dir: &std::path::Path, socket: std::path::PathBuf) -> WindowOptions {
    WindowOptions {
        sound: true,
        sound_socket: Some(socket),
        ..options(data_dir)
    }
}

fn sound_alarm_active(h: &Harness<'static, StationApp>) -> bool {
    h.state()
        .station()
        .is_some_and(|s| s.alarms().is_active(AlarmId::AlarmSoundUnavailable))
}

#[test]
fn without_a_sound_server_the_window_says_so_raises_the_alarm_and_counts_down_a_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = with_sound(dir.path(), dir.path().join("no-server").join("native"));
    let mut h = harness_with(move || StationApp::new(opts, Persisted::default()));
    step_until(&mut h, "the sound's alarm", sound_alarm_active);
    h.step();
    assert!(h.query_by_label_contains("Sound: UNAVAILABLE").is_some());
    assert!(
        h.query_by_label_contains("MEDIUM ALARM  alarm_sound_unavailable")
            .is_some()
    );
    // Silenced: the banner says audio is paused, and for how long (10 min for a
    // medium alarm), and asks a frame for the countdown's next second.
    // A long alarm text never pushes the banner's buttons off the screen.
    for button in h.get_all_by_label("Silence alarm_sound_unavailable") {
        assert!(
            button.rect().max.x <= 1280.0,
            "off screen: {:?}",
            button.rect()
        );
    }
    h.get_all_by_label("Silence alarm_sound_unavailable")
        .next()
        .expect("the banner's button")
        .click();
    step_until(&mut h, "the silence", |h| {
        h.state()
            .station()
            .and_then(|s| s.alarms().audio_paused(s.now_ms()))
            .is_some()
    });
    h.step();
    assert!(
        h.query_by_label_contains("AUDIO PAUSED 10:00 (alarm_sound_unavailable)")
            .or_else(|| h.query_by_label_contains("AUDIO PAUSED 9:59 (alarm_sound_unavailable)"))
            .is_some()
    );
    assert!(
        repaint::requested(&h.ctx)
            .iter()
            .any(|(reason, _)| *reason == Reason::AudioPaused)
    );
    // The test control refuses, and says why.
    h.state_mut().apply(UiCommand::TestAlarmSound);
    h.step();
    assert!(
        h.state()
            .log_lines()
            .any(|l| l.contains("refused: alarm sound test: the alarm sound is unavailable"))
    );
}

#[test]
fn with_a_sound_server_the_bar_says_working_and_the_test_plays_each_priority_once() {
    let server = PulseServer::start();
    let capture = Capture::start(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = with_sound(dir.path(), server.socket());
    let mut h = harness_with(move || StationApp::new(opts, Persisted::default()));
    step_until(&mut h, "sound working", |h| {
        h.query_by_label_contains("Sound: working").is_some()
    });
    assert!(!sound_alarm_active(&h));
    let asked = std::time::Instant::now();
    h.get_by_label_contains("Sound: working").click();
    step_until(&mut h, "the sound menu", |h| {
        h.query_by_label("Test alarm sound").is_some()
    });
    h.get_by_label("Test alarm sound").click();
    h.step();
    let from = capture.index_at(asked);
    let to = from + crate::sound::signal::samples_in(8_500);
    capture.wait_for(to);
    let found: Vec<_> = pulses(&capture.samples()[from..to], 500.0)
        .into_iter()
        .filter(|p| p.start_10 > 0)
        .collect();
    assert_eq!(found.len(), 10 + 3 + 2, "{found:#?}");
    // The volume is stored in the data folder's settings, and survives a restart.
    h.state_mut().apply(UiCommand::SetAlarmVolume(35));
    let (settings, _) = crate::store::StationSettings::load(
        &crate::store::DataDir::open(dir.path()).expect("data dir"),
    )
    .expect("settings");
    assert_eq!(settings.alarm_volume_pct, 35);
}
