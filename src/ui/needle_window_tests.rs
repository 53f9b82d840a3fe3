//! The window and the needle as measured (issue 11): a pen an earlier host left at
//! 1.00 mm (and then stopped with its own button), the periorbital zone, Start. The
//! window must show where the needle is next to the depth control, and the refusal
//! or the wait; the pen's own journal must show no start.

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp, WindowOptions};
use super::window_test_support::{fill_screening_form, harness_with, runs_executed, step_until};
use crate::link::{Link, LinkConfig, LinkEvent, LinkState};
use crate::protocol::{Calibration, CartridgeId, Command, PenEvent, PenState};
use crate::safety::interlock::{CartridgeCheck, SafetyUpdate, SessionFacts, yyyymmdd};
use crate::safety::zones::ZoneId;
use crate::sim::{Journaled, PenConfig, PhysicalFault, SimAction, SimConfig, SimPen};
use crate::station::Station;

const WAIT: Duration = Duration::from_secs(10);

/// A simulated pen, calibrated today, journaling its telemetry.
fn pen() -> SimPen {
    SimPen::spawn(SimConfig {
        pen: PenConfig {
            journal_telemetry: true,
            ..PenConfig::default()
        },
        initial_calibration: Some(Calibration {
            date: yyyymmdd(jiff::Zoned::now().date()),
            tech: "T1".into(),
            ..Calibration::identity()
        }),
        ..SimConfig::default()
    })
    .expect("the simulated pen starts")
}

/// An earlier host: sets 1.00 mm in the body zone, waits until the needle is there,
/// presses the pen's stop button (ESTOP: the next host's retraction is refused until
/// a reset) and leaves.
fn left_at_1_mm_and_stopped(pen: &SimPen) {
    let link = Link::spawn(LinkConfig::new(pen.port_path())).expect("link");
    let applied = |link: &Link, update| {
        let id = link.update_safety(update).expect("alive");
        link.wait_for(
            WAIT,
            |e| matches!(e, LinkEvent::SafetyApplied { id: got, result: Ok(_) } if *got == id),
            |_| {},
        )
        .expect("applied");
    };
    link.wait_for(
        WAIT,
        |e| matches!(e, LinkEvent::State(LinkState::Connected { .. })),
        |_| {},
    )
    .expect("connected");
    applied(
        &link,
        SafetyUpdate::Session(Some(SessionFacts {
            session_id: "S-earlier".into(),
            client: "C-earlier".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: std::collections::BTreeMap::new(),
            preparation: crate::safety::procedure::Preparation::waived(
                "not a treatment: a test of the needle rules",
            ),
        })),
    );
    applied(
        &link,
        SafetyUpdate::CartridgeChecked {
            id: CartridgeId(0x0123_4567_89AB_CDEF),
            check: CartridgeCheck::Fresh,
        },
    );
    applied(&link, SafetyUpdate::SelectZone(ZoneId::Body));
    let id = link
        .send(Command::Depth { depth_um: 1000 })
        .expect("queued");
    link.wait_for(
        WAIT,
        |e| matches!(e, LinkEvent::Answer(a) if a.id == id),
        |_| {},
    )
    .expect("answered");
    pen.wait_for(
        WAIT,
        |e| matches!(e.what, Journaled::Sample(t) if t.depth_um == 1000),
    )
    .expect("the needle at 1.00 mm");
    pen.act(SimAction::PressStopButton).expect("pen alive");
    pen.wait_for(WAIT, |e| {
        matches!(e.what, Journaled::Event(PenEvent::Estop(_)))
    })
    .expect("stopped");
    link.shutdown();
}

fn shows(h: &Harness<'static, StationApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn open_session(h: &mut Harness<'static, StationApp>) {
    step_until(h, "the pen's telemetry", |h| {
        h.state()
            .station()
            .is_some_and(|s| s.last_telemetry().is_some())
    });
    fill_screening_form(h);
    super::window_test_support::scroll_into_view(h, "Open session");
    h.get_by_label("Open session").click();
    step_until(h, "an open session", |h| {
        h.state().station().is_some_and(|s| s.session().is_some())
    });
    super::window_test_support::prepare(h);
}

#[test]
fn a_pen_left_at_1_mm_shows_its_depth_and_a_start_around_the_eyes_never_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen();
    left_at_1_mm_and_stopped(&pen);
    let runs_before = runs_executed(&pen);
    let options = WindowOptions {
        port: Some(pen.port_path()),
        data_dir: Some(dir.path().to_path_buf()),
        telemetry_hz: 500,
        ..WindowOptions::default()
    };
    let mut h = harness_with(move || StationApp::new(options, Persisted::default()));
    open_session(&mut h);
    // The pen is in ESTOP, so the retraction at connection was refused: the needle is
    // still at 1.00 mm, and the window says so next to the depth control.
    step_until(&mut h, "the measured depth", |h| {
        shows(h, "needle measured 1.00 mm · pen target unknown")
    });
    // Found stopped: an alarm says so, not only a refused start.
    step_until(&mut h, "the E-stop alarm", |h| {
        h.state()
            .station()
            .is_some_and(|s| s.alarms().is_active(crate::safety::alarms::AlarmId::Estop))
    });
    h.get_by_label("zone periorbital").hover();
    h.step();
    h.get_by_label("zone periorbital").click();
    step_until(&mut h, "the periorbital zone", |h| {
        h.state()
            .station()
            .and_then(Station::safety_summary)
            .and_then(|s| s.zone)
            == Some(ZoneId::Periorbital)
    });
    h.get_by_label("Start").click();
    step_until(&mut h, "the refusal", |h| {
        h.state()
            .last_refusal()
            .is_some_and(|r| r.contains("start refused"))
    });
    assert!(shows(&h, "needle measured 1.00 mm"));
    assert!(shows(&h, "E-stop"), "the latched stop is on screen");

    // The mechanism jams, the operator resets: the pen is retracted, but the needle
    // does not move. A start now waits for it, and ends refused: never RUN.
    pen.act(SimAction::InjectFault(PhysicalFault::DepthJam))
        .expect("pen alive");
    h.get_by_label("Reset…").click();
    step_until(&mut h, "the reset dialog", |h| {
        h.query_by_label("Confirm reset").is_some()
    });
    h.get_by_label("Confirm reset").click();
    step_until(&mut h, "the pen reset and retracted", |h| {
        h.state()
            .station()
            .and_then(Station::safety_summary)
            .is_some_and(|s| s.latched.is_empty() && s.depth_target_um == Some(0))
            && h.state()
                .station()
                .and_then(Station::last_telemetry)
                .is_some_and(|t| t.state == PenState::Idle)
    });
    assert!(shows(&h, "needle measured 1.00 mm · pen target 0.00 mm"));
    h.get_by_label("Start").click();
    step_until(&mut h, "the wait or the refusal", |h| {
        shows(h, "starting when the needle reaches 0.00 mm (now 1.00 mm)")
            || h.state().last_refusal().is_some_and(|r| {
                r.contains("the needle is at 1.00 mm, deeper than the periorbital limit 0.30 mm")
                    || r.contains("pen fault DEPTH")
            })
    });
    step_until(&mut h, "the start's end", |h| {
        h.state()
            .station()
            .is_some_and(|s| s.held_start().is_none())
            && h.state().last_refusal().is_some_and(|r| {
                r.contains("deeper than the periorbital limit") || r.contains("pen fault")
            })
    });
    assert_eq!(runs_executed(&pen), runs_before, "the pen never started");
}
