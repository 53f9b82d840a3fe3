//! The procedure driven against the simulated pen's own model ([`PenModel`]) through
//! protocol frames and a test clock: the passes, and every failure path ending with
//! the pen holding its previous values (or, when it cannot be reached, dated 0).

use super::certificate::{CalibrationKind, PenIdentity, PreviousFate};
use super::fit::FitError;
use super::procedure::{Action, AnswerEnd, Procedure, ReadingRequest, Setup, Stage};
use super::test_bench::{Bench, hidden};
use crate::protocol::{Calibration, Command, PenMessage, PenState, Telemetry};

const TODAY: u32 = 20_261_124;

fn previous() -> Calibration {
    Calibration {
        depth_offset_um: 5,
        depth_gain_ppm: 1000,
        speed_gain_ppm: -300,
        date: 20_250_601,
        tech: "OLD".to_owned(),
    }
}

fn setup(kind: CalibrationKind) -> Setup {
    Setup {
        kind,
        pen: PenIdentity {
            model: "MNP-1".into(),
            serial: "SIM00001".into(),
            fw: "1.0.0".into(),
        },
        technician: "Ana-B".into(),
        today_yyyymmdd: TODAY,
        readings_from: "test bench".into(),
    }
}

/// What the technician does at a reading or a review.
enum Input {
    Text(String),
    Cancel,
    Unplug,
}

/// Drives `procedure` against the bench to its end. `reading` answers each reading
/// request; refused readings are collected. At the review the fit is accepted.
fn drive(
    bench: &mut Bench,
    procedure: &mut Procedure,
    mut reading: impl FnMut(&mut Bench, ReadingRequest) -> Input,
) -> Vec<FitError> {
    let mut refused = Vec::new();
    let mut seen = 0;
    for _ in 0..100_000 {
        // Telemetry first, in order, as the station's pump gives it.
        let samples: Vec<Telemetry> = bench.telemetry[seen..].to_vec();
        seen = bench.telemetry.len();
        for t in &samples {
            procedure.on_telemetry(t);
        }
        match procedure.action() {
            Action::Send { step, command } => {
                if bench.unplugged {
                    procedure.on_link_lost("the port disappeared");
                    continue;
                }
                let (end, said) = bench.send(&command);
                procedure.on_answer(
                    step,
                    match end {
                        Ok(()) => AnswerEnd::Ack,
                        Err(why) => AnswerEnd::Refused(why),
                    },
                );
                for m in said {
                    if let PenMessage::Cal(c) = m {
                        procedure.on_calibration(&c);
                    }
                }
            }
            Action::AwaitCalibration => panic!("the CAL line follows its ACK at once"),
            Action::Settle { .. } => bench.tick(),
            Action::Reading(request) => match reading(bench, request) {
                Input::Text(text) => {
                    if let Err(e) = procedure.on_reading_text(&text) {
                        refused.push(e);
                    }
                }
                Input::Cancel => procedure.cancel(),
                Input::Unplug => {
                    bench.unplugged = true;
                    procedure.on_link_lost("the port disappeared");
                }
            },
            Action::Review => procedure.accept(),
            Action::Done => return refused,
        }
    }
    panic!("the procedure never ended: {:?}", procedure.log());
}

fn gauge_reading(bench: &mut Bench, _: ReadingRequest) -> Input {
    Input::Text(format!("{}", bench.gauge()))
}

fn certificate(procedure: &Procedure) -> super::certificate::Certificate {
    procedure
        .certificate(
            "2026-11-24T10:00:00".parse().expect("date"),
            "2026-11-24T09:00:00Z".parse().expect("timestamp"),
        )
        .expect("done")
}

#[test]
fn a_depth_calibration_passes_and_places_every_depth_within_10_um() {
    let mut bench = Bench::new(previous(), hidden(30_000, -40, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    let refused = drive(&mut bench, &mut procedure, gauge_reading);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(procedure.passed(), "{:?}", procedure.log());
    let written = bench.pen.calibration().clone();
    assert_eq!(written.date, TODAY);
    assert_eq!(written.tech, "Ana-B");
    // Speed untouched by a depth calibration.
    assert_eq!(written.speed_gain_ppm, previous().speed_gain_ppm);
    let c = certificate(&procedure);
    assert!(c.passed);
    assert_eq!(c.previous, previous());
    assert_eq!(c.previous_fate, PreviousFate::Replaced);
    assert_eq!(c.written.as_ref(), Some(&written));
    // The needle is left retracted.
    assert_eq!(
        procedure.log().last().map(String::as_str),
        Some("needle retracted (depth 0)")
    );
    assert_eq!(procedure.fit_points().len(), 6);
    assert_eq!(procedure.verify_points().len(), 3);
    for target in (250..=2500).step_by(50) {
        let depth_um = i64::from(target);
        bench
            .send(&Command::Depth { depth_um })
            .0
            .expect("acknowledged");
        for _ in 0..70 {
            bench.tick();
        }
        let read = bench.gauge();
        assert!(
            (read - f64::from(target)).abs() <= 10.0,
            "at {target} µm the gauge reads {read}"
        );
    }
}

#[test]
fn a_speed_calibration_passes_within_1_percent_with_the_needle_retracted() {
    let mut bench = Bench::new(previous(), hidden(0, 0, 20_000));
    let mut procedure = Procedure::new(setup(CalibrationKind::Speed));
    let refused = drive(&mut bench, &mut procedure, |bench, request| {
        // The tachometer reads the rotor; the needle is retracted while it turns.
        assert_eq!(bench.pen.reported_depth_um(), 0, "{request:?}");
        Input::Text(format!("{:.0}", bench.pen.true_rpm()))
    });
    assert!(refused.is_empty(), "{refused:?}");
    assert!(procedure.passed(), "{:?}", procedure.log());
    let fit = procedure.speed_fit().expect("fitted");
    assert!((fit.gain_ppm - 20_000).abs() <= 200, "{fit:?}");
    assert_eq!(bench.pen.calibration().speed_gain_ppm, fit.gain_ppm);
    assert_eq!(
        bench.pen.calibration().depth_gain_ppm,
        previous().depth_gain_ppm
    );
    // The needle was stopped before the calibration was written and at the end.
    assert_eq!(bench.pen.state(), PenState::Idle);
}

#[test]
fn bad_readings_are_refused_with_the_reason_and_the_point_is_asked_again() {
    let mut bench = Bench::new(previous(), hidden(30_000, -40, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    let mut bad = vec!["abc", "-5", "1e9", "NaN", "2000"];
    let refused = drive(&mut bench, &mut procedure, |bench, request| {
        if request.stage == Stage::Fit
            && request.point == 1
            && let Some(text) = bad.pop()
        {
            return Input::Text(text.to_owned());
        }
        gauge_reading(bench, request)
    });
    let words: Vec<String> = refused.iter().map(ToString::to_string).collect();
    assert_eq!(words.len(), 5, "{words:?}");
    // 2000 µm at the 250 µm point: implausible; 1e9: above the maximum.
    assert!(words[0].contains("point 1"), "{words:?}");
    assert!(words.iter().any(|w| w.contains("negative")), "{words:?}");
    assert!(
        words.iter().any(|w| w.contains("not a number")),
        "{words:?}"
    );
    assert!(procedure.passed(), "{:?}", procedure.log());
}

#[test]
fn a_broken_pen_is_refused_and_its_previous_values_are_restored() {
    // +8 % gain: beyond the protocol's ±5 %.
    let mut bench = Bench::new(previous(), hidden(80_000, 0, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    drive(&mut bench, &mut procedure, gauge_reading);
    assert!(!procedure.passed());
    let reasons = procedure.reasons().join("; ");
    assert!(reasons.contains("fit refused"), "{reasons}");
    assert!(reasons.contains("broken"), "{reasons}");
    assert_eq!(*bench.pen.calibration(), previous());
    let c = certificate(&procedure);
    assert!(!c.passed);
    assert_eq!(c.previous_fate, PreviousFate::Restored);
    assert_eq!(c.written, None);
}

#[test]
fn a_failed_verification_restores_the_previous_values() {
    let mut bench = Bench::new(previous(), hidden(30_000, -40, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    drive(&mut bench, &mut procedure, |bench, request| {
        let read = bench.gauge();
        // The gauge slipped by 80 µm at one verification depth.
        let slip = if request.stage == Stage::Verify && request.point == 2 {
            80.0
        } else {
            0.0
        };
        Input::Text(format!("{}", read + slip))
    });
    assert!(!procedure.passed());
    let reasons = procedure.reasons().join("; ");
    assert!(reasons.contains("verification failed"), "{reasons}");
    assert!(reasons.contains("±50"), "{reasons}");
    assert_eq!(*bench.pen.calibration(), previous());
    assert_eq!(
        certificate(&procedure).previous_fate,
        PreviousFate::Restored
    );
}

#[test]
fn a_cancel_mid_speed_calibration_halts_then_restores() {
    let mut bench = Bench::new(previous(), hidden(0, 0, 20_000));
    let mut procedure = Procedure::new(setup(CalibrationKind::Speed));
    drive(&mut bench, &mut procedure, |bench, request| {
        if request.point == 2 {
            assert_eq!(bench.pen.state(), PenState::Running);
            return Input::Cancel;
        }
        Input::Text(format!("{:.0}", bench.pen.true_rpm()))
    });
    assert!(!procedure.passed());
    assert_eq!(procedure.reasons(), ["cancelled by the technician"]);
    assert_eq!(bench.pen.state(), PenState::Idle);
    assert_eq!(*bench.pen.calibration(), previous());
}

#[test]
fn an_unplugged_pen_is_left_dated_0_and_the_previous_values_are_pending() {
    let mut bench = Bench::new(previous(), hidden(30_000, -40, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    drive(&mut bench, &mut procedure, |bench, request| {
        if request.point == 3 {
            return Input::Unplug;
        }
        gauge_reading(bench, request)
    });
    assert!(!procedure.passed());
    assert!(
        procedure.reasons()[0].contains("disconnected"),
        "{:?}",
        procedure.reasons()
    );
    // The pen says "never calibrated" until the values are written back.
    assert_eq!(bench.pen.calibration().date, 0);
    assert_eq!(procedure.pending_restore(), Some(&previous()));
    assert_eq!(
        certificate(&procedure).previous_fate,
        PreviousFate::NotRestored
    );
}

#[test]
fn a_restore_the_pen_refuses_leaves_it_pending() {
    let mut bench = Bench::new(previous(), hidden(30_000, -40, 0));
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    drive(&mut bench, &mut procedure, |bench, request| {
        if request.point == 2 {
            // E-stop: the pen takes CAL SET only when idle.
            bench.estop();
            return Input::Cancel;
        }
        gauge_reading(bench, request)
    });
    let reasons = procedure.reasons().join("; ");
    assert!(reasons.contains("CAL SET failed: NAK STATE"), "{reasons}");
    assert_eq!(bench.pen.calibration().date, 0);
    assert_eq!(procedure.pending_restore(), Some(&previous()));
}

#[test]
fn nothing_is_written_when_the_first_read_fails() {
    let mut procedure = Procedure::new(setup(CalibrationKind::Depth));
    let Action::Send { step, command } = procedure.action() else {
        panic!("CAL GET first");
    };
    assert_eq!(command, Command::CalGet);
    procedure.on_answer(step, AnswerEnd::Refused("the link is not connected".into()));
    assert!(procedure.is_done());
    assert_eq!(procedure.pending_restore(), None);
    assert_eq!(
        certificate(&procedure).previous_fate,
        PreviousFate::Unchanged
    );
}

#[test]
fn technician_ids_follow_the_protocol() {
    use super::procedure::valid_technician_id;
    for ok in ["T1", "Ana-B_01", "abcdefghijklmnop"] {
        assert!(valid_technician_id(ok), "{ok}");
    }
    for bad in ["", "-", "a.b", "Ana B", "abcdefghijklmnopq", "é"] {
        assert!(!valid_technician_id(bad), "{bad}");
    }
}
