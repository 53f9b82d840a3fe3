//! The window in replay mode, driven with `egui_kittest`: no pen, a recording built
//! from lines. Each harness step is 0.25 s of egui time, which is the real time the
//! replay advances by per frame.

use std::path::Path;

use egui::{Event, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};

use super::app::{Persisted, StationApp, WindowOptions};
use super::window_test_support::{harness_with, options, step_until};
use crate::replay::Replay;
use crate::replay::test_support::treatment;
use crate::safety::zones::ZoneId;

/// A harness step, in session ms at 1×.
const STEP_MS: f64 = 250.0;

/// The window on the treatment script, built in memory.
fn replay_harness(dir: &Path) -> Harness<'static, StationApp> {
    let options = options(dir);
    let mut h = harness_with(move || {
        StationApp::new_replay(
            options,
            Persisted::default(),
            Replay::new(treatment().recording()),
        )
    });
    h.step();
    h
}

fn position_ms(h: &Harness<'static, StationApp>) -> f64 {
    h.state().replay().expect("in replay").position_ms()
}

fn press(h: &Harness<'static, StationApp>, pos: Pos2, pressed: bool, modifiers: Modifiers) {
    h.event(Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers,
    });
}

/// Where on the timeline session time `t_ms` is.
fn timeline_pos(h: &Harness<'static, StationApp>, t_ms: f64) -> Pos2 {
    let rect = h.get_by_label("timeline").rect();
    let duration_ms = h.state().replay().expect("in replay").duration_ms();
    #[allow(clippy::cast_possible_truncation)]
    let x = rect.left() + (t_ms / duration_ms) as f32 * rect.width();
    egui::pos2(x, rect.center().y)
}

/// Clicks the timeline where `t_ms` is, as a hand would.
fn click_timeline(h: &mut Harness<'static, StationApp>, t_ms: f64) {
    let pos = timeline_pos(h, t_ms);
    h.hover_at(pos);
    h.step();
    press(h, pos, true, Modifiers::default());
    h.step();
    press(h, pos, false, Modifiers::default());
    h.step();
}

fn assert_near(got: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (got - expected).abs() <= tolerance,
        "{what}: {got} is not within {tolerance} of {expected}"
    );
}

/// A timeline pixel is 20 s / ~1260 px ≈ 16 ms.
const PIXEL_MS: f64 = 40.0;

#[test]
fn punctum_replay_opens_the_file_without_a_pen_and_says_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = treatment().write(dir.path(), "2025-11-24_160000_C-0042.jsonl");
    let before = std::fs::read(&path).expect("written");
    let options = WindowOptions {
        replay: Some(path.clone()),
        ..options(dir.path())
    };
    let mut h = harness_with(move || StationApp::new(options, Persisted::default()));
    step_until(&mut h, "the replay", |h| h.state().replay().is_some());
    h.step();
    assert!(h.state().station().is_none(), "no pen connection in replay");
    assert!(
        h.query_by_label("REPLAY — 2025-11-24_160000_C-0042.jsonl")
            .is_some()
    );
    assert!(h.query_by_label("Back to live").is_some());
    assert!(h.query_by_label("Complete").is_some());
    assert!(h.query_by_label("C-0042").is_some());
    assert!(h.query_by_label("EMERGENCY STOP").is_none(), "no controls");
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        before,
        "unchanged"
    );
}

#[test]
fn an_alarm_raised_at_10_s_is_in_the_banner_at_11_s_and_not_at_5_s() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    click_timeline(&mut h, 5000.0);
    assert_near(position_ms(&h), 5000.0, PIXEL_MS, "cursor");
    h.step();
    assert!(h.query_by_label_contains("HIGH ALARM").is_none());
    assert!(h.query_by_label("No alarm active at the cursor").is_some());
    click_timeline(&mut h, 11_000.0);
    assert_near(position_ms(&h), 11_000.0, PIXEL_MS, "cursor");
    h.step();
    // In the banner and in the list, each saying it is a recording.
    assert_eq!(
        h.query_all_by_label_contains("(recorded; raised at 0:10)")
            .count(),
        2
    );
    assert!(
        h.query_by_label_contains("HIGH ALARM  link_lost  —  link to the pen lost")
            .is_some()
    );
    // The past cannot be acknowledged.
    assert!(h.query_by_label("Acknowledge link_lost").is_none());
    assert!(h.query_by_label("Silence link_lost").is_none());
    assert!(h.query_by_label("Acknowledge all").is_none());
    // And it clears at 15 s, as it did.
    click_timeline(&mut h, 16_000.0);
    h.step();
    assert!(h.query_by_label_contains("HIGH ALARM").is_none());
}

#[test]
fn play_advances_at_the_speed_chosen_and_pause_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    h.get_by_label("Play").click();
    step_until(&mut h, "playing", |h| {
        h.state().replay().is_some_and(|r| r.transport().playing())
    });
    let start = position_ms(&h);
    for _ in 0..4 {
        h.step();
    }
    assert_near(
        position_ms(&h) - start,
        4.0 * STEP_MS,
        1e-3,
        "4 frames at 1x",
    );
    h.get_by_label("4x").click();
    step_until(&mut h, "4x", |h| {
        h.state()
            .replay()
            .is_some_and(|r| (r.transport().speed() - 4.0).abs() < f64::EPSILON)
    });
    let start = position_ms(&h);
    h.step();
    assert_near(
        position_ms(&h) - start,
        4.0 * STEP_MS,
        1e-3,
        "a frame at 4x",
    );
    h.get_by_label("Pause").click();
    step_until(&mut h, "paused", |h| {
        h.state().replay().is_some_and(|r| !r.transport().playing())
    });
    let held = position_ms(&h);
    for _ in 0..4 {
        h.step();
    }
    assert_near(position_ms(&h), held, 0.0, "paused");
    h.get_by_label("+5 s").click();
    h.step();
    assert_near(position_ms(&h), held + 5000.0, 1e-6, "+5 s");
    h.get_by_label("-5 s").click();
    h.step();
    assert_near(position_ms(&h), held, 1e-6, "-5 s");
    // Playing to the end pauses there.
    h.get_by_label("16x").click();
    h.step();
    h.get_by_label("Play").click();
    step_until(&mut h, "the end", |h| {
        h.state()
            .replay()
            .is_some_and(|r| !r.transport().playing() && r.position_ms() >= r.duration_ms())
    });
}

#[test]
fn space_plays_and_pauses_and_the_arrows_step_one_sample() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    click_timeline(&mut h, 3000.0);
    h.key_press(egui::Key::ArrowRight);
    h.step();
    let at = position_ms(&h);
    assert_near(at % 10.0, 0.0, 1e-6, "on a sample (100 Hz)");
    h.key_press(egui::Key::ArrowRight);
    h.step();
    assert_near(position_ms(&h), at + 10.0, 1e-6, "one sample on");
    h.key_press(egui::Key::ArrowLeft);
    h.step();
    assert_near(position_ms(&h), at, 1e-6, "one sample back");
    h.key_press(egui::Key::Space);
    h.step();
    assert!(h.state().replay().is_some_and(|r| r.transport().playing()));
    h.key_press(egui::Key::Space);
    h.step();
    assert!(h.state().replay().is_some_and(|r| !r.transport().playing()));
}

#[test]
fn the_face_map_and_duration_follow_the_cursor_and_choose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    let selected = |h: &Harness<'static, StationApp>, zone: &str| {
        // egui writes a widget's "selected" as accesskit's "toggled".
        h.get_by_label(&format!("zone {zone}"))
            .accesskit_node()
            .toggled()
            == Some(egui::accesskit::Toggled::True)
    };
    click_timeline(&mut h, 3000.0);
    h.step();
    assert!(selected(&h, "cheeks"));
    assert!(!selected(&h, "forehead"));
    click_timeline(&mut h, 19_000.0);
    h.step();
    assert!(selected(&h, "forehead"));
    assert!(!selected(&h, "cheeks"));
    assert!(h.query_by_label_contains("cheeks: 3.0 s").is_some());
    assert!(h.query_by_label_contains("forehead: 2.0 s").is_some());
    // A click on the map chooses nothing in a replay.
    h.get_by_label("zone nose").hover();
    h.step();
    h.get_by_label("zone nose").click();
    h.step();
    h.step();
    let replay = h.state().replay().expect("in replay");
    assert_eq!(replay.active_zone().map(|z| z.zone), Some(ZoneId::Forehead));
    assert!(h.state().last_refusal().is_none(), "nothing was asked");
}

#[test]
fn dragging_scrubs_and_shift_dragging_marks_a_range_to_loop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    // Scrub: press at 2 s, drag to 8 s, let go.
    let from = timeline_pos(&h, 2000.0);
    let to = timeline_pos(&h, 8000.0);
    h.hover_at(from);
    h.step();
    press(&h, from, true, Modifiers::default());
    h.step();
    assert_near(position_ms(&h), 2000.0, PIXEL_MS, "pressed");
    for i in 1u8..=4 {
        h.hover_at(from.lerp(to, f32::from(i) / 4.0));
        h.step();
    }
    press(&h, to, false, Modifiers::default());
    h.step();
    assert_near(position_ms(&h), 8000.0, PIXEL_MS, "dragged");
    // Shift-drag from 10 s to 14 s marks the range, and leaves the cursor.
    let from = timeline_pos(&h, 10_000.0);
    let to = timeline_pos(&h, 14_000.0);
    h.event(Event::ModifiersChanged(Modifiers::SHIFT));
    h.hover_at(from);
    h.step();
    press(&h, from, true, Modifiers::SHIFT);
    h.step();
    for i in 1u8..=4 {
        h.hover_at(from.lerp(to, f32::from(i) / 4.0));
        h.step();
    }
    press(&h, to, false, Modifiers::SHIFT);
    h.step();
    h.event(Event::ModifiersChanged(Modifiers::default()));
    h.step();
    let replay = h.state().replay().expect("in replay");
    let range = replay.transport().selection().expect("a range marked");
    assert_near(range.start_ms, 10_000.0, PIXEL_MS, "range start");
    assert_near(range.end_ms, 14_000.0, PIXEL_MS, "range end");
    assert_near(position_ms(&h), 8000.0, PIXEL_MS, "the cursor stayed");
    h.get_by_label("Loop selection").click();
    h.step();
    assert!(h.state().replay().is_some_and(|r| r.transport().looping()));
    h.get_by_label("16x").click();
    h.step();
    h.get_by_label("Play").click();
    // 16× is 4 s a frame: a 4 s loop wraps every frame, and stays inside.
    for _ in 0..6 {
        h.step();
        let at = position_ms(&h);
        assert!((9_900.0..=14_100.0).contains(&at), "{at} left the loop");
    }
}

#[test]
fn prev_and_next_event_jump_between_marks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    h.get_by_label("Next event").click();
    h.step();
    assert_near(position_ms(&h), 1000.0, 1e-6, "the cheeks' selection");
    h.get_by_label("Next event").click();
    h.step();
    assert_near(position_ms(&h), 6000.0, 1e-6, "the forehead's");
    h.get_by_label("Prev event").click();
    h.step();
    assert_near(position_ms(&h), 1000.0, 1e-6, "back");
    // The event list goes there too.
    h.get_by_label_contains("note by P-7: client fine").click();
    h.step();
    assert_near(position_ms(&h), 16_000.0, 1e-6, "the note");
}

#[test]
fn a_file_that_is_not_a_record_says_why_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.jsonl");
    std::fs::write(&path, "this is not json\n").expect("written");
    let options = WindowOptions {
        replay: Some(path.clone()),
        ..options(dir.path())
    };
    let mut h = harness_with(move || StationApp::new(options, Persisted::default()));
    step_until(&mut h, "the failure", |h| h.state().open_error().is_some());
    h.step();
    assert!(
        h.query_by_label("The recording could not be opened")
            .is_some()
    );
    let error = h.state().open_error().unwrap_or_default().to_owned();
    assert!(
        error.contains("garbage.jsonl") && error.contains("line 1"),
        "{error}"
    );
    assert!(h.state().replay().is_none());
    h.get_by_label("Close").click();
    step_until(&mut h, "the message closed", |h| {
        h.state().open_error().is_none()
    });
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "this is not json\n"
    );
}

#[test]
fn every_plot_shows_its_whole_scale_whatever_the_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    let max_rpm = h
        .state()
        .replay()
        .map(crate::ui::source::SessionSource::speed_max_rpm)
        .expect("in replay");
    for label in ["Whole session", "Follow cursor"] {
        h.get_by_label(label).click();
        for _ in 0..3 {
            h.step();
        }
        let (lo, hi) = h.state().plots.last_speed_range_rpm;
        assert!(lo <= 0.0 && hi >= max_rpm, "{label}: {lo}..{hi} rpm");
        let (lo, hi) = h.state().plots.last_depth_range_mm;
        assert!(lo <= 0.0 && hi >= 1.0, "{label}: {lo}..{hi} mm");
    }
}

/// The texts the last frame painted inside `rect`.
fn painted_texts_in(h: &Harness<'static, StationApp>, rect: egui::Rect) -> Vec<String> {
    h.output()
        .shapes
        .iter()
        .filter_map(|clipped| match &clipped.shape {
            egui::epaint::Shape::Text(t) if rect.contains(t.pos) => {
                Some(t.galley.text().to_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_plots_label_their_scales_with_more_than_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = replay_harness(dir.path());
    h.get_by_label("Whole session").click();
    for _ in 0..3 {
        h.step();
    }
    // Left of the plots, where the vertical axes' labels go.
    let texts = painted_texts_in(
        &h,
        egui::Rect::from_min_max(egui::pos2(480.0, 440.0), egui::pos2(560.0, 715.0)),
    );
    // Whatever the plots' height: more than the zero on each scale, in its unit
    // (thousands of rpm; mm with the decimals the step needs).
    let thousands = texts.iter().filter(|t| t.ends_with('k')).count();
    let depths = texts
        .iter()
        .filter(|t| t.parse::<f64>().is_ok_and(|mm| mm > 0.0 && mm < 2.0))
        .count();
    assert!(texts.iter().any(|t| t == "0"), "{texts:?}");
    assert!(thousands >= 1, "no rpm tick above 0: {texts:?}");
    assert!(depths >= 1, "no depth tick above 0: {texts:?}");
}
