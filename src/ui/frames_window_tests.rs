//! Issue 12 §4 and §7 through the window: it asks for frames only with a reason a
//! test can see (none for a paused replay without a pen, a few a second while the
//! pen is idle, 30 while the needle runs or a replay plays), sends its title only
//! when it changes, and a close with a session open asks first and then ends the
//! session on the way out, halting the pen. And the connection bar says why a port
//! cannot be opened.

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp};
use super::repaint::{self, IDLE_INTERVAL, LIVE_INTERVAL, Reason};
use super::window_test_support::{harness, harness_with, options, start_in_cheeks, step_until};
use crate::protocol::PenState;
use crate::replay::Replay;
use crate::replay::test_support::treatment;
use crate::station::Station;

/// The viewport commands the last frame sent.
fn commands(h: &Harness<'static, StationApp>) -> Vec<egui::ViewportCommand> {
    h.output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .map(|v| v.commands.clone())
        .unwrap_or_default()
}

fn titles(h: &Harness<'static, StationApp>) -> usize {
    commands(h)
        .iter()
        .filter(|c| matches!(c, egui::ViewportCommand::Title(_)))
        .count()
}

#[test]
fn an_idle_station_asks_for_a_few_frames_a_second_and_a_running_needle_for_30() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    // The title went out with the first frame (the harness runs it when built).
    wait_for_pen_state(&mut h, PenState::Idle);
    for _ in 0..5 {
        h.step();
        assert_eq!(titles(&h), 0, "the title is sent again: {:?}", commands(&h));
        assert_eq!(
            repaint::requested(&h.ctx),
            vec![(Reason::PenIdle, IDLE_INTERVAL)]
        );
    }
    // A session open, the needle idle: every frame takes the telemetry into the
    // record, so a crash loses at most a frame's worth.
    super::window_test_support::open_session(&mut h);
    h.step();
    assert_eq!(
        repaint::requested(&h.ctx),
        vec![(Reason::SessionRecorded, LIVE_INTERVAL)]
    );
    super::window_test_support::select_cheeks(&mut h);
    h.get_by_label("Start").click();
    wait_for_pen_state(&mut h, PenState::Running);
    h.step();
    assert!(
        repaint::requested(&h.ctx).contains(&(Reason::NeedleRunning, LIVE_INTERVAL)),
        "{:?}",
        repaint::requested(&h.ctx)
    );
}

#[test]
fn a_paused_replay_without_a_pen_draws_nothing_until_input_and_30_frames_while_playing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = options(dir.path());
    let mut h = harness_with(move || {
        StationApp::new_replay(
            opts,
            Persisted::default(),
            Replay::new(treatment().recording()),
        )
    });
    // egui's own first frames (fonts, layout) may ask for one more.
    for _ in 0..4 {
        h.step();
    }
    assert_eq!(repaint::requested(&h.ctx), Vec::new());
    let delay = h.output().viewport_output[&egui::ViewportId::ROOT].repaint_delay;
    assert_eq!(delay, Duration::MAX, "a frame was asked for");
    h.get_by_label("Play").click();
    step_until(&mut h, "playing", |h| {
        h.state().replay().is_some_and(|r| r.transport().playing())
    });
    h.step();
    assert_eq!(
        repaint::requested(&h.ctx),
        vec![(Reason::ReplayPlaying, LIVE_INTERVAL)]
    );
}

#[test]
fn closing_with_a_session_open_asks_first_then_halts_and_closes_the_record() {
    use eframe::App as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    start_in_cheeks(&mut h);
    let record = h
        .state()
        .station()
        .and_then(Station::record_path)
        .expect("recording")
        .to_path_buf();
    // The window manager's close: held back, and asked about.
    assert!(close_button(&mut h), "the close was not held back");
    // "Keep working" keeps everything as it was.
    h.get_by_label("Keep working").click();
    h.step();
    assert!(h.state().station().is_some_and(|s| s.session().is_some()));
    // Asked again, and confirmed: the window closes...
    assert!(close_button(&mut h), "the close was not held back");
    h.get_by_label("End the session and close").click();
    h.step();
    step_until(&mut h, "the close", |h| {
        commands(h).contains(&egui::ViewportCommand::Close)
    });
    // ...and on the way out the pen is halted and the record closed with its summary.
    h.state_mut().on_exit(None);
    let rec = crate::record::load(&record).expect("loads");
    let summary = rec.summary.expect("the record has its summary");
    assert_eq!(summary.ended_by.as_deref(), Some("window closed"));
    assert!(rec.lines.iter().any(|l| matches!(
        &l.line,
        crate::record::Line::Command(c) if c.command == "HALT"
    )));
}

#[test]
fn the_connection_bar_says_why_a_port_cannot_be_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("ttyACM7");
    let mut opts = options(dir.path());
    opts.sim = false;
    opts.port = Some(missing.clone());
    let mut h = harness_with(move || StationApp::new(opts, Persisted::default()));
    let expected = format!(
        "{} does not exist: is the pen plugged in and switched on?",
        missing.display()
    );
    step_until(&mut h, "the port's problem in the bar", |h| {
        h.query_by_label_contains(&expected).is_some()
    });
}

#[test]
fn on_small_screens_the_operator_still_sees_the_needle_the_duration_and_the_alarms() {
    for (width, height) in [(1024.0, 600.0), (1280.0, 720.0)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = options(dir.path());
        let mut h =
            super::window_test_support::harness_sized(egui::vec2(width, height), move || {
                StationApp::new(opts, Persisted::default())
            });
        // The session through the station (the form's later questions scroll on
        // a small screen; filling it is the other tests' business).
        wait_for_pen_state(&mut h, PenState::Idle);
        {
            let station = h.state_mut().station_mut().expect("connected");
            station
                .open_session(&screening_json())
                .expect("the session opens");
            for entry in [
                crate::safety::procedure::StepEntry::new(
                    crate::safety::procedure::StepKind::Cleansing,
                    0,
                    "",
                ),
                crate::safety::procedure::StepEntry {
                    reason: Some("test of the window, no client".into()),
                    ..crate::safety::procedure::StepEntry::new(
                        crate::safety::procedure::StepKind::NoNumbing,
                        0,
                        "",
                    )
                },
            ] {
                station.record_step(entry, None).expect("step recorded");
            }
            station
                .safety(crate::safety::interlock::SafetyUpdate::SelectZone(
                    crate::safety::zones::ZoneId::Cheeks,
                ))
                .expect("link alive")
                .expect("zone selected");
            station.start().expect("start asked");
        }
        wait_for_pen_state(&mut h, PenState::Running);
        for _ in 0..3 {
            h.step();
        }
        let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(width, height));
        for (shown, exact) in [
            ("EMERGENCY STOP", true),
            ("needle measured", false),
            ("speed measured", false),
            ("session 0:", false),
            ("No active alarm", true),
            ("Alarms", true),
            ("Start", true),
            ("Stop", true),
        ] {
            let node = if exact {
                h.get_by_label(shown)
            } else {
                h.get_by_label_contains(shown)
            };
            let rect = node.rect();
            assert!(
                screen.contains_rect(rect),
                "{width}×{height}: {shown:?} at {rect:?} is off the screen"
            );
        }
    }
}

/// A screening answers file that passes: every question answered no.
fn screening_json() -> String {
    let answers: serde_json::Map<String, serde_json::Value> =
        crate::safety::screening::QuestionId::ALL
            .iter()
            .filter(|q| q.answerable())
            .map(|q| (q.as_str().to_owned(), serde_json::Value::Bool(false)))
            .collect();
    serde_json::json!({
        "client": "C-0042", "dob": "1990-05-01", "indication": "rejuvenation",
        "practitioner": "P-7", "answers": answers, "confirmed_cautions": []
    })
    .to_string()
}

/// Runs frames until the station's latest sample shows the pen in `state`.
fn wait_for_pen_state(h: &mut Harness<'static, StationApp>, state: PenState) {
    step_until(h, &format!("the pen {state}"), |h| {
        h.state()
            .station()
            .and_then(Station::last_telemetry)
            .is_some_and(|t| t.state == state)
    });
}

/// The window manager's close button, then the frames until the question shows.
/// Returns whether the close was held back (`CancelClose`) in the frame that saw it.
fn close_button(h: &mut Harness<'static, StationApp>) -> bool {
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
    let held_back = commands(h).contains(&egui::ViewportCommand::CancelClose);
    step_until(h, "the question", |h| {
        h.query_by_label("End the session and close").is_some()
    });
    held_back
}
