//! Technician mode and the calibration wizard driven through the window with
//! `egui_kittest`, against a simulated pen on a real pty: widgets are found by their
//! labels, text is typed and buttons clicked as a technician would. Waits have
//! deadlines (`step_until`), never sleeps.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp};
use super::commands::UiCommand;
use super::technician_panel::strip_text;
use super::window_test_support::{harness, harness_with, options, step_until};
use crate::calibration::certificate::CalibrationKind;
use crate::calibration::procedure::Action;
use crate::link::LinkState;
use crate::protocol::{Calibration, Command};
use crate::safety::interlock::yyyymmdd;
use crate::sim::{HiddenErrors, Journaled, PenConfig, SimConfig};
use crate::station::Station;
use crate::station::technician::CalibrationRun;

use super::window_test_support::PIN;
/// The window tests' account: a technician among its roles.
const TECHNICIAN: &str = super::window_test_support::ACCOUNT;

/// The pen's calibration before the wizard: valid, 200 days old.
fn previous() -> Calibration {
    Calibration {
        depth_offset_um: 5,
        depth_gain_ppm: 1000,
        speed_gain_ppm: -300,
        date: yyyymmdd(
            jiff::Zoned::now()
                .date()
                .saturating_sub(jiff::Span::new().days(200)),
        ),
        tech: "OLD".into(),
    }
}

/// The window on a simulated pen with these hidden errors and [`previous`].
fn bench(dir: &std::path::Path, hidden: HiddenErrors) -> Harness<'static, StationApp> {
    let options = options(dir);
    let config = SimConfig {
        pen: PenConfig {
            hidden,
            ..PenConfig::default()
        },
        initial_calibration: Some(previous()),
        ..SimConfig::default()
    };
    harness_with(move || StationApp::new_with_sim(options, Persisted::default(), config))
}

/// Some node's label contains `text` (a wrapped label is one node and its runs).
fn shows(h: &Harness<'static, StationApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn connected(h: &Harness<'static, StationApp>) -> bool {
    h.state().station().is_some_and(|s| {
        matches!(s.link_state(), LinkState::Connected { .. })
            && s.last_telemetry().is_some()
            && s.calibration().is_some()
    })
}

/// Types into the field labelled `label`, as a person does: click into it, type.
fn type_into(h: &mut Harness<'static, StationApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

fn run(h: &Harness<'static, StationApp>) -> Option<Action> {
    h.state()
        .station()
        .and_then(Station::calibration_run)
        .map(|r| r.procedure().action())
}

/// Unlocks technician mode through the dialog's widgets, as the signed-in
/// technician (the window tests' account, every role): the PIN again.
fn set_pin_and_unlock(h: &mut Harness<'static, StationApp>) {
    step_until(h, "a connected pen", connected);
    h.get_by_label("Technician").click();
    step_until(h, "the unlock form", |h| {
        h.query_by_label("Unlock technician mode").is_some()
    });
    // The signed-in account is offered as the technician's id.
    assert_eq!(
        h.state().technician_dialog().technician_id,
        TECHNICIAN,
        "the id is filled in"
    );
    type_into(h, "Your PIN", PIN);
    h.get_by_label("Unlock").click();
    step_until(h, "technician mode", |h| {
        h.state().station().and_then(Station::technician) == Some(TECHNICIAN)
    });
    step_until(h, "the TECHNICIAN MODE strip", |h| {
        h.query_by_label(&strip_text(TECHNICIAN)).is_some()
    });
    assert!(
        !h.state().technician_dialog().is_open(),
        "the dialog closed"
    );
}

#[test]
fn technician_mode_needs_the_technician_role_and_the_account_s_pin_with_the_station_s_refusals_shown()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    step_until(&mut h, "a connected pen", connected);
    // A practitioner-only account is told why, and never sees the PIN form.
    h.state_mut()
        .station_mut()
        .expect("station")
        .create_account(&crate::store::accounts::NewAccount {
            id: "Pat".into(),
            name: "Pat".into(),
            roles: [crate::store::accounts::Role::Practitioner].into(),
            secret: "73910462".into(),
        })
        .expect("an admin adds a practitioner");
    h.state_mut()
        .station_mut()
        .expect("station")
        .lock(crate::station::people::LockReason::Demand)
        .expect("locks");
    super::window_test_support::sign_in(&mut h, "Pat", "73910462");
    h.get_by_label("Technician").click();
    step_until(&mut h, "the role's refusal", |h| {
        shows(h, "Pat is not a technician")
    });
    assert!(h.query_by_label("Unlock technician mode").is_none());
    h.get_by_label("Close").click();
    h.step();
    h.state_mut()
        .station_mut()
        .expect("station")
        .lock(crate::station::people::LockReason::Demand)
        .expect("locks");
    super::window_test_support::sign_in(&mut h, TECHNICIAN, PIN);
    h.get_by_label("Technician").click();
    step_until(&mut h, "the unlock form", |h| {
        h.query_by_label("Unlock technician mode").is_some()
    });
    // A wrong PIN: the station's words, and no technician mode.
    type_into(&mut h, "Your PIN", "097531");
    h.get_by_label("Unlock").click();
    step_until(&mut h, "the wrong-PIN refusal", |h| {
        shows(h, "wrong PIN or password for P-7 (4 tries left")
    });
    assert!(h.state().station().and_then(Station::technician).is_none());
    assert!(h.query_by_label("Start calibration").is_none());
    // The right one.
    type_into(&mut h, "Your PIN", PIN);
    h.get_by_label("Unlock").click();
    step_until(&mut h, "technician mode", |h| {
        h.query_by_label(&strip_text(TECHNICIAN)).is_some()
    });
    step_until(&mut h, "the wizard", |h| {
        h.query_by_label("Start calibration").is_some()
    });
    // Out again: the wizard goes with it.
    h.get_by_label("Leave technician mode").click();
    step_until(&mut h, "operator mode", |h| {
        h.state().station().and_then(Station::technician).is_none()
    });
    h.step();
    assert!(h.query_by_label("Start calibration").is_none());
    assert!(h.query_by_label(&strip_text(TECHNICIAN)).is_none());
}

#[test]
fn a_depth_calibration_with_the_sim_gauge_passes_writes_its_certificate_and_the_pen() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The pen: +3 % gain, −40 µm offset, hidden.
    let mut h = bench(
        dir.path(),
        HiddenErrors {
            depth_gain_ppm: 30_000,
            depth_offset_um: -40,
            speed_gain_ppm: 0,
        },
    );
    set_pin_and_unlock(&mut h);
    h.step();
    assert!(
        shows(&h, "calibration: Valid until"),
        "the bar shows the pen's status"
    );
    // Depth is the default, and the gauge box is ticked by default on the simulated
    // pen: the run reads SIM GAUGE without being told.
    h.get_by_label("Start calibration").click();
    step_until(&mut h, "the run", |h| run(h).is_some());
    assert!(
        h.state()
            .station()
            .and_then(Station::calibration_run)
            .is_some_and(CalibrationRun::sim_gauge)
    );
    step_until(&mut h, "the fit under review", |h| {
        run(h) == Some(Action::Review)
    });
    h.step();
    assert!(shows(&h, "Fit: g = "));
    assert!(shows(&h, "Review the fit below"));
    h.get_by_label("Write to pen").click();
    step_until(&mut h, "the calibration's end", |h| {
        h.state()
            .station()
            .and_then(Station::calibration_run)
            .is_some_and(CalibrationRun::is_done)
    });
    h.step();
    assert!(
        shows(&h, "CALIBRATION PASSED"),
        "log: {:?}",
        h.state()
            .station()
            .and_then(Station::calibration_run)
            .map(|r| r.procedure().log().to_vec())
    );
    // Every verification point passed and says so.
    assert_eq!(h.query_all_by_label("pass").count(), 3);
    let station = h.state().station().expect("connected");
    let run = station.calibration_run().expect("kept until closed");
    let (json, html) = run
        .certificate()
        .and_then(|c| c.as_ref().ok())
        .cloned()
        .expect("the certificate was written");
    assert!(json.exists() && html.exists(), "{json:?} {html:?}");
    assert!(h.query_by_label(&json.display().to_string()).is_some());
    let cal = station.calibration().expect("read back").clone();
    assert!(
        (cal.depth_gain_ppm - 30_000).abs() <= 1_000 && (cal.depth_offset_um + 40).abs() <= 10,
        "the pen holds the fit: {cal:?}"
    );
    assert_ne!(cal, previous());
    assert_eq!(cal.tech, TECHNICIAN);
    // Close: the start form again, and the bar says the pen is valid for a year.
    h.get_by_label("Close").click();
    step_until(&mut h, "the start form", |h| {
        h.query_by_label("Start calibration").is_some()
    });
    assert!(shows(&h, "calibration: Valid until") && shows(&h, "(365 days left)"));
}

#[test]
fn a_typed_speed_calibration_refuses_abc_and_goes_on_after_a_good_reading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = bench(
        dir.path(),
        HiddenErrors {
            speed_gain_ppm: 10_000,
            ..HiddenErrors::default()
        },
    );
    set_pin_and_unlock(&mut h);
    h.get_by_label("Speed").click();
    h.step();
    h.get_by_label("Start calibration").click();
    step_until(
        &mut h,
        "the first reading asked",
        |h| matches!(run(h), Some(Action::Reading(r)) if r.point == 1),
    );
    step_until(&mut h, "the prompt", |h| {
        shows(h, "Enter the tachometer reading at 3000 rpm (point 1 of 3)")
    });
    type_into(&mut h, "Tachometer reading (rpm)", "abc");
    h.get_by_label("Record reading").click();
    step_until(&mut h, "the refusal in red", |h| {
        shows(h, "Refused: \"abc\" is not a number")
    });
    assert!(
        matches!(run(&h), Some(Action::Reading(r)) if r.point == 1),
        "the same point is asked again"
    );
    // The technician deletes the bad text and types the tachometer's reading.
    h.get_by_label("Tachometer reading (rpm)").focus();
    h.step();
    for _ in 0.."abc".len() {
        h.key_press(egui::Key::Backspace);
        h.step();
    }
    let mut readings = 0;
    step_until(&mut h, "the calibration's end", |h| {
        h.state()
            .station()
            .and_then(Station::calibration_run)
            .is_some_and(CalibrationRun::is_done)
            || matches!(run(h), Some(Action::Reading(_) | Action::Review))
    });
    while let Some(action) = run(&h) {
        match action {
            Action::Reading(request) => {
                let rpm = h
                    .state()
                    .simulated_pen()
                    .expect("the simulated pen")
                    .stats()
                    .true_rpm;
                type_into(&mut h, "Tachometer reading (rpm)", &format!("{rpm:.0}"));
                h.get_by_label("Record reading").click();
                step_until(
                    &mut h,
                    "the next step",
                    |h| !matches!(run(h), Some(Action::Reading(r)) if r == request),
                );
                readings += 1;
                h.step();
                assert!(!shows(&h, "Refused:"), "a good reading clears the refusal");
            }
            Action::Review => {
                h.step();
                h.get_by_label("Write to pen").click();
                step_until(&mut h, "past the review", |h| {
                    run(h) != Some(Action::Review)
                });
            }
            Action::Done => break,
            _ => step_until(&mut h, "a reading, the review or the end", |h| {
                matches!(
                    run(h),
                    Some(Action::Reading(_) | Action::Review | Action::Done)
                )
            }),
        }
    }
    step_until(&mut h, "the verdict", |h| shows(h, "CALIBRATION PASSED"));
    assert_eq!(readings, 6, "3 fit and 3 verification readings");
    assert_eq!(h.query_all_by_label("pass").count(), 3);
    let cal = h
        .state()
        .station()
        .and_then(Station::calibration)
        .expect("read back")
        .clone();
    assert!(
        (cal.speed_gain_ppm - 10_000).abs() <= 1_000,
        "the pen holds the fit: {cal:?}"
    );
    // The refused reading is in the event log too.
    assert!(
        h.state()
            .log_lines()
            .any(|l| l.contains("refused") && l.contains("abc")),
        "{:?}",
        h.state().log_lines().collect::<Vec<_>>()
    );
}

#[test]
fn an_operator_sees_no_calibration_controls_and_a_forged_start_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    step_until(&mut h, "a connected pen", connected);
    h.step();
    for label in [
        "Start calibration",
        "Write to pen",
        "Record reading",
        "Leave technician mode",
        "Take readings from the simulated pen's gauge (SIM GAUGE)",
    ] {
        assert!(h.query_by_label(label).is_none(), "{label} shown");
    }
    assert!(
        h.query_by_label("Technician").is_some(),
        "the way in is there"
    );
    assert!(
        shows(&h, "calibration: Valid until"),
        "the status is shown to everyone"
    );
    // What a buggy screen would send: the station refuses, and nothing is written.
    let mark = h
        .state()
        .simulated_pen()
        .expect("the built-in pen")
        .journal_mark();
    h.state_mut().apply(UiCommand::StartCalibration {
        kind: CalibrationKind::Depth,
        sim_gauge: true,
    });
    h.step();
    assert!(
        h.state()
            .last_refusal()
            .is_some_and(|r| r.contains("calibration needs technician mode")),
        "{:?}",
        h.state().last_refusal()
    );
    let (entries, _) = h
        .state()
        .simulated_pen()
        .expect("the built-in pen")
        .journal_since(mark);
    let writes: Vec<_> = entries
        .into_iter()
        .filter(|e| {
            matches!(
                e.what,
                Journaled::Command {
                    command: Some(Command::CalSet(_)),
                    ..
                }
            )
        })
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}
