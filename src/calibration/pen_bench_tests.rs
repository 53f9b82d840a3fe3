//! The calibration maths end to end against the simulated pen's own model
//! ([`PenModel`], driven purely through protocol frames and a test clock): a pen with
//! hidden errors g = +3 % and o = −40 µm is measured with `SIM GAUGE` under identity
//! calibration, fitted, written with `CAL SET`, and then must place every depth from
//! 0.25 to 2.5 mm within ±10 µm. Likewise for speed, with the rotor's true speed as
//! the tachometer.

use crate::calibration::fit::{
    DEPTH_FIT_TARGETS_UM, DEPTH_VERIFY_TARGETS_UM, DepthPoint, SPEED_SETPOINTS_RPM,
    SPEED_VERIFY_SETPOINTS_RPM, SpeedPoint, fit_depth, fit_speed,
};
use crate::calibration::test_bench::{Bench, hidden};
use crate::calibration::verify::{verify_depth, verify_speed};
use crate::protocol::{Calibration, PenMessage};

#[test]
fn depth_calibration_of_a_plus_3_percent_minus_40_um_pen_places_every_depth_within_10_um() {
    let mut bench = Bench::new(Calibration::identity(), hidden(30_000, -40, 0));
    let fit_points: Vec<DepthPoint> = DEPTH_FIT_TARGETS_UM
        .iter()
        .map(|&r| DepthPoint {
            commanded_um: r,
            measured_um: bench.gauge_at(r),
        })
        .collect();
    let fit = fit_depth(&fit_points).expect("a pen within adjustment fits");
    // SIM GAUGE rounds to the µm, so the estimates are near, not exactly, the truth.
    assert!((fit.gain_ppm - 30_000).abs() <= 500, "{fit:?}");
    assert!((fit.offset_um + 40).abs() <= 2, "{fit:?}");
    bench.ack(&format!(
        "CAL SET depth_gain_ppm={} depth_offset_um={}",
        fit.gain_ppm, fit.offset_um
    ));
    let written = bench
        .ack("CAL GET")
        .into_iter()
        .find_map(|m| match m {
            PenMessage::Cal(c) => Some(c),
            _ => None,
        })
        .expect("CAL GET answers CAL");
    assert_eq!(
        (written.depth_gain_ppm, written.depth_offset_um),
        (fit.gain_ppm, fit.offset_um)
    );

    for target in (250..=2500).step_by(50) {
        let read = bench.gauge_at(target);
        assert!(
            (read - f64::from(target)).abs() <= 10.0,
            "at {target} µm the gauge reads {read} (fit {fit:?})"
        );
    }
    let verify: Vec<DepthPoint> = DEPTH_VERIFY_TARGETS_UM
        .iter()
        .map(|&t| DepthPoint {
            commanded_um: t,
            measured_um: bench.gauge_at(t),
        })
        .collect();
    let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &verify).expect("valid");
    assert!(report.passed, "{:?}", report.reasons);
}

#[test]
fn speed_calibration_of_a_plus_2_percent_sensor_holds_every_setpoint_within_1_percent() {
    let mut bench = Bench::new(Calibration::identity(), hidden(0, 0, 20_000));
    let points: Vec<SpeedPoint> = SPEED_SETPOINTS_RPM
        .iter()
        .map(|&s| SpeedPoint {
            setpoint_rpm: s,
            measured_rpm: bench.tach_at(s),
        })
        .collect();
    // Under identity the rotor turns (1 + s)·setpoint.
    assert!((points[0].measured_rpm - 3060.0).abs() < 1e-6, "{points:?}");
    let fit = fit_speed(&points).expect("fits");
    assert_eq!(fit.gain_ppm, 20_000);
    bench.ack(&format!("CAL SET speed_gain_ppm={}", fit.gain_ppm));
    let written = Calibration {
        speed_gain_ppm: fit.gain_ppm,
        ..Calibration::identity()
    };
    let verify: Vec<SpeedPoint> = SPEED_VERIFY_SETPOINTS_RPM
        .iter()
        .map(|&s| SpeedPoint {
            setpoint_rpm: s,
            measured_rpm: bench.tach_at(s),
        })
        .collect();
    let report = verify_speed(&written, &SPEED_SETPOINTS_RPM, &verify).expect("valid");
    assert!(report.passed, "{:?}", report.reasons);
    assert!(report.max_abs_residual_pct < 1e-6, "{report:?}");
}
