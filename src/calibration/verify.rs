//! Verification of a written calibration, and the pen's calibration maths mirrored.
//!
//! After `CAL SET`, the wizard commands new depths (or speeds) and the technician
//! measures them again. [`verify_depth`] passes only if every gauge reading is within
//! [`DEPTH_TOLERANCE_UM`] of its target, three times tighter than the ±0.15 mm a
//! cleared pen claims; [`verify_speed`] only if every tachometer reading is within
//! [`SPEED_TOLERANCE_PCT`] of its setpoint. Each point gets its own line in the report.
//!
//! The `mirror` functions compute what a pen does with a calibration
//! (`pen-protocol.md`, section 8, as `src/sim/pen.rs` implements it), so tests and a
//! wizard's preview can say what the pen will place, report and measure.
//!
//! Pure: no pen, no clock, no files.

use std::collections::BTreeSet;

use super::fit::{
    DepthPoint, FitError, SpeedPoint, check_depth_readings, check_speed_readings, max_abs,
};
use crate::protocol::Calibration;

/// A verified depth passes within this many µm of its target.
pub const DEPTH_TOLERANCE_UM: f64 = 50.0;

/// A verified speed passes within this many % of its setpoint.
pub const SPEED_TOLERANCE_PCT: f64 = 1.0;

/// Verification needs at least this many new (non-fit) targets.
pub const MIN_VERIFY_POINTS: usize = 3;

/// One verified depth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthCheck {
    /// The depth commanded, µm (through the written calibration).
    pub target_um: i32,
    /// What the gauge read, µm.
    pub measured_um: f64,
    /// measured − target, µm.
    pub residual_um: f64,
    /// |residual| ≤ [`DEPTH_TOLERANCE_UM`].
    pub passed: bool,
}

/// One verified speed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeedCheck {
    /// The speed set, rpm.
    pub setpoint_rpm: i32,
    /// What the tachometer read, rpm.
    pub measured_rpm: f64,
    /// (measured − setpoint) / setpoint × 100, %.
    pub residual_pct: f64,
    /// |residual| ≤ [`SPEED_TOLERANCE_PCT`].
    pub passed: bool,
}

/// The verification of a depth calibration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthVerification {
    /// The calibration verified (as read back with `CAL GET`).
    pub written: Calibration,
    /// Every point, in the order measured.
    pub checks: Vec<DepthCheck>,
    /// The largest |residual|, µm.
    pub max_abs_residual_um: f64,
    /// Every point within tolerance.
    pub passed: bool,
    /// One sentence per failed point; empty when passed.
    pub reasons: Vec<String>,
}

/// The verification of a speed calibration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeedVerification {
    /// The calibration verified (as read back with `CAL GET`).
    pub written: Calibration,
    /// Every point, in the order measured.
    pub checks: Vec<SpeedCheck>,
    /// The largest |residual|, %.
    pub max_abs_residual_pct: f64,
    /// Every point within tolerance.
    pub passed: bool,
    /// One sentence per failed point; empty when passed.
    pub reasons: Vec<String>,
}

/// Verifies a depth calibration from gauge readings taken after it was written.
///
/// `fit_targets_um` are the depths the fit used: verification needs at least
/// [`MIN_VERIFY_POINTS`] distinct depths not among them. Readings are refused as in
/// the fit (not finite, negative, above the maximum), but a reading far from its
/// target is not refused: it is a failed point.
pub fn verify_depth(
    written: &Calibration,
    fit_targets_um: &[i32],
    points: &[DepthPoint],
) -> Result<DepthVerification, FitError> {
    check_depth_readings(points, false)?;
    let targets: Vec<i32> = points.iter().map(|p| p.commanded_um).collect();
    check_new_targets(&targets, fit_targets_um)?;
    let mut reasons = Vec::new();
    let checks: Vec<DepthCheck> = points
        .iter()
        .map(|p| {
            let check = depth_check(p.commanded_um, p.measured_um);
            if !check.passed {
                reasons.push(format!(
                    "at {} µm the gauge read {} µm, {:+.1} µm off; the limit is ±{DEPTH_TOLERANCE_UM} µm",
                    p.commanded_um, p.measured_um, check.residual_um
                ));
            }
            check
        })
        .collect();
    let residuals: Vec<f64> = checks.iter().map(|c| c.residual_um).collect();
    Ok(DepthVerification {
        written: written.clone(),
        max_abs_residual_um: max_abs(&residuals),
        passed: reasons.is_empty(),
        checks,
        reasons,
    })
}

/// Verifies a speed calibration from tachometer readings taken after it was written.
///
/// `fit_setpoints_rpm` are the setpoints the fit used: verification needs at least
/// [`MIN_VERIFY_POINTS`] distinct setpoints not among them. Readings are refused as in
/// the fit (not finite, negative, above the maximum), but a reading far from its
/// setpoint is a failed point.
pub fn verify_speed(
    written: &Calibration,
    fit_setpoints_rpm: &[i32],
    points: &[SpeedPoint],
) -> Result<SpeedVerification, FitError> {
    check_speed_readings(points, false)?;
    let setpoints: Vec<i32> = points.iter().map(|p| p.setpoint_rpm).collect();
    check_new_targets(&setpoints, fit_setpoints_rpm)?;
    let mut reasons = Vec::new();
    let checks: Vec<SpeedCheck> = points
        .iter()
        .map(|p| {
            let check = speed_check(p.setpoint_rpm, p.measured_rpm);
            if !check.passed {
                reasons.push(format!(
                    "at {} rpm the tachometer read {} rpm, {:+.2} % off; the limit is ±{SPEED_TOLERANCE_PCT} %",
                    p.setpoint_rpm, p.measured_rpm, check.residual_pct
                ));
            }
            check
        })
        .collect();
    let residuals: Vec<f64> = checks.iter().map(|c| c.residual_pct).collect();
    Ok(SpeedVerification {
        written: written.clone(),
        max_abs_residual_pct: max_abs(&residuals),
        passed: reasons.is_empty(),
        checks,
        reasons,
    })
}

/// One verified depth: its residual and whether it is within ±[`DEPTH_TOLERANCE_UM`].
/// The rule [`verify_depth`] applies to each point, for showing points as they come.
#[must_use]
pub fn depth_check(target_um: i32, measured_um: f64) -> DepthCheck {
    let residual_um = measured_um - f64::from(target_um);
    DepthCheck {
        target_um,
        measured_um,
        residual_um,
        passed: residual_um.abs() <= DEPTH_TOLERANCE_UM,
    }
}

/// One verified speed: its residual in % and whether it is within
/// ±[`SPEED_TOLERANCE_PCT`]. The rule [`verify_speed`] applies to each point.
#[must_use]
pub fn speed_check(setpoint_rpm: i32, measured_rpm: f64) -> SpeedCheck {
    let setpoint = f64::from(setpoint_rpm);
    // × 100 before ÷ setpoint: a reading exactly 1 % off comes out 1.0 exactly.
    let residual_pct = (measured_rpm - setpoint) * 100.0 / setpoint;
    SpeedCheck {
        setpoint_rpm,
        measured_rpm,
        residual_pct,
        passed: residual_pct.abs() <= SPEED_TOLERANCE_PCT,
    }
}

/// Enough points, and enough of them at targets the fit did not use.
fn check_new_targets(targets: &[i32], fit_targets: &[i32]) -> Result<(), FitError> {
    if targets.len() < MIN_VERIFY_POINTS {
        return Err(FitError::TooFewPoints {
            what: "verification",
            got: targets.len(),
            need: MIN_VERIFY_POINTS,
        });
    }
    let new: BTreeSet<i32> = targets
        .iter()
        .copied()
        .filter(|t| !fit_targets.contains(t))
        .collect();
    if new.len() < MIN_VERIFY_POINTS {
        return Err(FitError::TooFewNewPoints {
            got: new.len(),
            need: MIN_VERIFY_POINTS,
        });
    }
    Ok(())
}

/// The pen's calibration maths (section 8), mirrored from `src/sim/pen.rs`.
pub mod mirror {
    use crate::protocol::Calibration;

    fn ppm(value: i32) -> f64 {
        f64::from(value) / 1e6
    }

    /// The raw mechanism position, µm, at which the pen places a depth target:
    /// `r = (target − o) / (1 + g)`.
    #[must_use]
    pub fn placed_raw_um(calibration: &Calibration, target_um: f64) -> f64 {
        (target_um - f64::from(calibration.depth_offset_um))
            / (1.0 + ppm(calibration.depth_gain_ppm))
    }

    /// The depth the pen reports at raw position `raw_um`: `(1 + g)·r + o`.
    #[must_use]
    pub fn reported_depth_um(calibration: &Calibration, raw_um: f64) -> f64 {
        (1.0 + ppm(calibration.depth_gain_ppm)) * raw_um + f64::from(calibration.depth_offset_um)
    }

    /// The true protrusion at raw position `raw_um` of a pen whose true errors are
    /// `true_gain_ppm` and `true_offset_um`.
    #[must_use]
    pub fn true_depth_um(true_gain_ppm: i32, true_offset_um: i32, raw_um: f64) -> f64 {
        (1.0 + ppm(true_gain_ppm)) * raw_um + f64::from(true_offset_um)
    }

    /// What a gauge reads when such a pen, under `calibration`, is set to `target_um`.
    /// Unrounded (the simulated pen's `SIM GAUGE` rounds it to the µm).
    #[must_use]
    pub fn gauge_reading_um(
        true_gain_ppm: i32,
        true_offset_um: i32,
        calibration: &Calibration,
        target_um: f64,
    ) -> f64 {
        true_depth_um(
            true_gain_ppm,
            true_offset_um,
            placed_raw_um(calibration, target_um),
        )
    }

    /// What a tachometer reads when a pen whose speed sensor's true gain error is
    /// `true_speed_gain_ppm` regulates, under `calibration`, to `setpoint_rpm`: the
    /// pen holds `sensor·(1 + s_cal)` at the setpoint, and the sensor reads
    /// `true / (1 + s_true)`.
    #[must_use]
    pub fn tach_reading_rpm(
        true_speed_gain_ppm: i32,
        calibration: &Calibration,
        setpoint_rpm: f64,
    ) -> f64 {
        setpoint_rpm * (1.0 + ppm(true_speed_gain_ppm)) / (1.0 + ppm(calibration.speed_gain_ppm))
    }
}

#[cfg(test)]
mod tests {
    use super::mirror::{gauge_reading_um, placed_raw_um, reported_depth_um, tach_reading_rpm};
    use super::*;
    use crate::calibration::fit::{
        DEPTH_FIT_TARGETS_UM, DEPTH_VERIFY_TARGETS_UM, SPEED_SETPOINTS_RPM,
        SPEED_VERIFY_SETPOINTS_RPM, fit_depth, fit_speed,
    };

    fn cal(gain_ppm: i32, offset_um: i32, speed_ppm: i32) -> Calibration {
        Calibration {
            depth_gain_ppm: gain_ppm,
            depth_offset_um: offset_um,
            speed_gain_ppm: speed_ppm,
            ..Calibration::identity()
        }
    }

    fn depth_points(readings: &[(i32, f64)]) -> Vec<DepthPoint> {
        readings
            .iter()
            .map(|&(commanded_um, measured_um)| DepthPoint {
                commanded_um,
                measured_um,
            })
            .collect()
    }

    #[test]
    fn depth_verification_passes_at_50_um_and_fails_just_beyond() {
        let written = cal(30_000, -40, 0);
        let at_limit = depth_points(&[(500, 550.0), (1500, 1450.0), (2000, 2000.0)]);
        let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &at_limit).expect("valid");
        assert!(report.passed, "{:?}", report.reasons);
        assert!(report.reasons.is_empty());
        assert_eq!(report.checks.len(), 3);
        assert!((report.max_abs_residual_um - 50.0).abs() < 1e-12);
        assert_eq!(report.written, written);

        let beyond = depth_points(&[(500, 550.5), (1500, 1449.9), (2000, 2000.0)]);
        let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &beyond).expect("valid");
        assert!(!report.passed);
        assert_eq!(
            report.checks.iter().map(|c| c.passed).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(report.reasons.len(), 2);
        assert!(
            report.reasons[0].contains("at 500 µm"),
            "{}",
            report.reasons[0]
        );
        assert!(
            report.reasons[0].contains("+50.5 µm"),
            "{}",
            report.reasons[0]
        );

        // Far off is a failed point, not refused input.
        let far = depth_points(&[(500, 900.0), (1500, 1500.0), (2000, 2000.0)]);
        let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &far).expect("valid");
        assert!(!report.passed);
    }

    #[test]
    fn speed_verification_passes_at_1_percent_and_fails_just_beyond() {
        let written = cal(0, 0, 10_000);
        let at_limit =
            [(4000, 4040.0), (6500, 6435.0), (8500, 8500.0)].map(|(setpoint_rpm, measured_rpm)| {
                SpeedPoint {
                    setpoint_rpm,
                    measured_rpm,
                }
            });
        let report = verify_speed(&written, &SPEED_SETPOINTS_RPM, &at_limit).expect("valid");
        assert!(report.passed, "{:?}", report.reasons);
        assert!((report.max_abs_residual_pct - 1.0).abs() < 1e-12);

        let beyond =
            [(4000, 4040.5), (6500, 6435.0), (8500, 8500.0)].map(|(setpoint_rpm, measured_rpm)| {
                SpeedPoint {
                    setpoint_rpm,
                    measured_rpm,
                }
            });
        let report = verify_speed(&written, &SPEED_SETPOINTS_RPM, &beyond).expect("valid");
        assert!(!report.passed);
        assert_eq!(report.reasons.len(), 1);
        assert!(
            report.reasons[0].contains("at 4000 rpm"),
            "{}",
            report.reasons[0]
        );
    }

    #[test]
    fn verification_needs_three_new_points_and_sane_readings() {
        let written = Calibration::identity();
        let two = depth_points(&[(500, 500.0), (1500, 1500.0)]);
        assert_eq!(
            verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &two),
            Err(FitError::TooFewPoints {
                what: "verification",
                got: 2,
                need: 3
            })
        );
        // Three points, but one repeats a fit depth and two are the same depth.
        let old = depth_points(&[(250, 250.0), (500, 500.0), (500, 501.0), (1500, 1500.0)]);
        let err = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &old).expect_err("old");
        assert_eq!(err, FitError::TooFewNewPoints { got: 2, need: 3 });
        assert!(err.to_string().contains("only repeats the fit"));
        let nan = depth_points(&[(500, f64::NAN), (1500, 1500.0), (2000, 2000.0)]);
        assert_eq!(
            verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &nan),
            Err(FitError::NotFinite { point: 1 })
        );
        let fit_setpoints =
            [(3000, 3000.0), (6000, 6000.0), (9000, 9000.0)].map(|(setpoint_rpm, measured_rpm)| {
                SpeedPoint {
                    setpoint_rpm,
                    measured_rpm,
                }
            });
        assert_eq!(
            verify_speed(&written, &SPEED_SETPOINTS_RPM, &fit_setpoints),
            Err(FitError::TooFewNewPoints { got: 0, need: 3 })
        );
    }

    #[test]
    fn mirror_places_and_reports_as_section_8_says() {
        let c = cal(30_000, -40, 0);
        // r = (1000 + 40) / 1.03; reported back = 1000.
        let raw = placed_raw_um(&c, 1000.0);
        assert!((raw - 1040.0 / 1.03).abs() < 1e-9);
        assert!((reported_depth_um(&c, raw) - 1000.0).abs() < 1e-9);
        // A pen whose calibration matches its true errors places the true target.
        assert!((gauge_reading_um(30_000, -40, &c, 1234.0) - 1234.0).abs() < 1e-9);
        // Under identity it reads (1 + g)·target + o.
        let identity = Calibration::identity();
        assert!((gauge_reading_um(30_000, -40, &identity, 1000.0) - 990.0).abs() < 1e-9);
        // Speed: identity → (1 + s)·S; calibrated with s → S.
        assert!((tach_reading_rpm(10_000, &identity, 6000.0) - 6060.0).abs() < 1e-9);
        assert!((tach_reading_rpm(10_000, &cal(0, 0, 10_000), 6000.0) - 6000.0).abs() < 1e-9);
    }

    #[test]
    fn fit_then_verify_with_the_mirrored_pen_passes_within_10_um() {
        let (g_ppm, o_um) = (30_000, -40);
        let identity = Calibration::identity();
        // The simulated gauge rounds to the µm, as SIM GAUGE does.
        let fit_points: Vec<DepthPoint> = DEPTH_FIT_TARGETS_UM
            .iter()
            .map(|&r| DepthPoint {
                commanded_um: r,
                measured_um: gauge_reading_um(g_ppm, o_um, &identity, f64::from(r)).round(),
            })
            .collect();
        let fit = fit_depth(&fit_points).expect("fits");
        let written = Calibration {
            depth_gain_ppm: fit.gain_ppm,
            depth_offset_um: fit.offset_um,
            ..identity.clone()
        };
        for target in (250..=2500).step_by(50) {
            let read = gauge_reading_um(g_ppm, o_um, &written, f64::from(target)).round();
            assert!(
                (read - f64::from(target)).abs() <= 10.0,
                "{target}: {read} (fit {fit:?})"
            );
        }
        let verify: Vec<DepthPoint> = DEPTH_VERIFY_TARGETS_UM
            .iter()
            .map(|&t| DepthPoint {
                commanded_um: t,
                measured_um: gauge_reading_um(g_ppm, o_um, &written, f64::from(t)).round(),
            })
            .collect();
        let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &verify).expect("valid");
        assert!(report.passed, "{:?}", report.reasons);

        let speed_points: Vec<SpeedPoint> = SPEED_SETPOINTS_RPM
            .iter()
            .map(|&s| SpeedPoint {
                setpoint_rpm: s,
                measured_rpm: tach_reading_rpm(-20_000, &identity, f64::from(s)).round(),
            })
            .collect();
        let speed_fit = fit_speed(&speed_points).expect("fits");
        assert!((speed_fit.gain_ppm + 20_000).abs() <= 100, "{speed_fit:?}");
        let written = cal(0, 0, speed_fit.gain_ppm);
        let verify: Vec<SpeedPoint> = SPEED_VERIFY_SETPOINTS_RPM
            .iter()
            .map(|&s| SpeedPoint {
                setpoint_rpm: s,
                measured_rpm: tach_reading_rpm(-20_000, &written, f64::from(s)).round(),
            })
            .collect();
        let report = verify_speed(&written, &SPEED_SETPOINTS_RPM, &verify).expect("valid");
        assert!(report.passed, "{:?}", report.reasons);
    }
}
