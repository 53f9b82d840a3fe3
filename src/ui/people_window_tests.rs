//! Sign-in, the idle lock, the lock screen, the hand-over and the record's signature
//! driven through the window with `egui_kittest`, against the built-in simulated pen
//! on a real pty. Waits have deadlines (`step_until`), never sleeps.

use std::time::Duration;

use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, Screen, StationApp};
use super::controls::ESTOP_LABEL;
use super::window_test_support::{
    ACCOUNT, PIN, fill, harness, harness_signed_out, options, scroll_into_view, sign_in,
    start_in_cheeks, step_until,
};
use crate::sim::Journaled;
use crate::station::Station;

/// The built-in pen's journal position now.
fn journal_mark(h: &egui_kittest::Harness<'static, StationApp>) -> u64 {
    h.state()
        .simulated_pen()
        .expect("the built-in pen")
        .journal_mark()
}

/// The built-in pen journaled something `what` matches since `mark`.
fn pen_saw(
    h: &egui_kittest::Harness<'static, StationApp>,
    mark: u64,
    what: impl Fn(&Journaled) -> bool,
) -> bool {
    h.state()
        .simulated_pen()
        .is_some_and(|p| p.journal_since(mark).0.iter().any(|e| what(&e.what)))
}

#[test]
fn the_idle_lock_never_falls_while_the_needle_runs_and_the_stops_work_on_the_lock_screen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    start_in_cheeks(&mut h);
    // A short idle time, for the test: it passes many times over while the needle runs.
    h.state_mut()
        .station_mut()
        .expect("station")
        .set_idle_lock(Duration::from_millis(200));
    let running_since = std::time::Instant::now();
    step_until(&mut h, "a second of needling", |_| {
        running_since.elapsed() > Duration::from_secs(1)
    });
    assert!(
        !h.state().station().is_some_and(Station::is_locked),
        "the lock never falls while the needle runs"
    );
    // Stopped (Space), the lock falls once idle.
    h.key_press(egui::Key::Space);
    step_until(&mut h, "the idle lock", |h| {
        h.state().screen() == Screen::Locked
    });
    h.step();
    assert!(h.query_by_label_contains("STATION LOCKED").is_some());
    // Locked: nothing starts.
    let refused = h.state_mut().station_mut().expect("station").start();
    assert!(refused.is_err_and(|e| e.to_string().contains("locked")));
    // The E-stop and Stop are on the lock screen, and work.
    // The screen just changed: wait for its layout to settle, as an eye does.
    scroll_into_view(&mut h, "Stop");
    let mark = journal_mark(&h);
    h.get_by_label("Stop").click();
    step_until(&mut h, "HALT at the pen, from the lock screen", |h| {
        pen_saw(h, mark, |e| {
            matches!(
                e,
                Journaled::Command {
                    command: Some(crate::protocol::Command::Halt),
                    ..
                }
            )
        })
    });
    let mark = journal_mark(&h);
    h.get_by_label(ESTOP_LABEL).click();
    step_until(
        &mut h,
        "the E-stop byte at the pen, from the lock screen",
        |h| pen_saw(h, mark, |e| matches!(e, Journaled::EstopByte)),
    );
    // The alarm banner stays visible over the lock screen.
    step_until(&mut h, "the estop alarm on the lock screen", |h| {
        h.query_by_label_contains("HIGH ALARM  estop").is_some()
    });
    assert_eq!(h.state().screen(), Screen::Locked);
    // Nothing that shows records or client data opens on the lock screen.
    h.state_mut().apply(super::commands::UiCommand::ShowLibrary);
    h.state_mut()
        .apply(super::commands::UiCommand::ShowLotSearch);
    h.step();
    assert_eq!(h.state().screen(), Screen::Locked);
    assert_eq!(
        h.state().last_refusal(),
        Some("refused: the station is locked: unlock it first")
    );
    // The same account's PIN unlocks.
    sign_in(&mut h, ACCOUNT, PIN);
    assert!(h.state().screen() != Screen::Locked);
    let record = h
        .state()
        .station()
        .and_then(Station::record_path)
        .map(std::path::Path::to_path_buf)
        .expect("a record");
    let text = std::fs::read_to_string(record).expect("record");
    assert!(
        text.contains(r#""type":"access","#) && text.contains("lock (idle)"),
        "the lock is in the record"
    );
}

#[test]
fn the_first_start_creates_the_admin_and_a_wrong_pin_is_said() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = options(dir.path());
    let mut h = harness_signed_out(egui::vec2(1280.0, 800.0), move || {
        StationApp::new(opts, Persisted::default())
    });
    step_until(&mut h, "the first admin's form", |h| {
        h.query_by_label_contains("create the clinic's first admin")
            .is_some()
    });
    assert_eq!(h.state().screen(), Screen::SignIn);
    // Nothing but the stops while nobody is signed in.
    assert!(h.query_by_label("Start").is_none());
    assert!(h.query_by_label(ESTOP_LABEL).is_some());
    fill(
        &mut h,
        &[
            ("Account", "boss"),
            ("Name", "Dr Boss"),
            ("PIN", "7391046"),
            ("PIN again", "7391046"),
        ],
    );
    h.get_by_label("Create admin").click();
    step_until(&mut h, "the sign-in form", |h| {
        h.query_by_label("Sign in").is_some()
    });
    for (field, text) in [("Account", "boss"), ("PIN", "1111111")] {
        h.get_by_label(field).focus();
        h.step();
        h.get_by_label(field).type_text(text);
        h.step();
    }
    h.get_by_label("Sign in").click();
    step_until(&mut h, "the refusal", |h| {
        h.query_all_by_label_contains("wrong PIN or password for boss (4 tries left")
            .next()
            .is_some()
    });
    sign_in(&mut h, "boss", "7391046");
    // An admin only: the admin screen, not a treatment.
    h.get_by_label("Admin").click();
    step_until(&mut h, "the admin screen", |h| {
        h.state().screen() == Screen::Admin
    });
    h.step();
    assert!(h.query_all_by_label_contains("Dr Boss").next().is_some());
}
