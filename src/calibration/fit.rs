//! The least-squares fits of a bench calibration (`pen-protocol.md`, section 8), and
//! the checks on the readings that go into them.
//!
//! **Depth.** With identity calibration a commanded depth `r` µm places the mechanism
//! at raw position `r`, and the gauge reads the true protrusion `p = (1 + g)·r + o`.
//! [`fit_depth`] fits that line by ordinary least squares on the pairs `(r, p)`; the
//! estimates are what `CAL SET depth_gain_ppm=… depth_offset_um=…` writes.
//!
//! **Speed.** The pen's sensor reads `true / (1 + s)` and, with identity calibration,
//! the pen regulates that sensor reading onto the setpoint `S`. So the rotor turns at
//! `true = (1 + s)·S`, which is what a tachometer reads. [`fit_speed`] fits
//! `tach = (1 + s)·S` through the origin by least squares; the estimate is what
//! `CAL SET speed_gain_ppm=…` writes. With that written, the pen regulates its
//! corrected reading `sensor·(1 + s)` onto `S`, and the rotor turns at `S`.
//!
//! Bad input is refused with a [`FitError`] that says what is wrong and why, in words a
//! technician at the bench can act on. A fit whose estimates are beyond what the
//! protocol can store is refused too: such a pen is broken or out of adjustment, and
//! must not be calibrated into service.
//!
//! Everything here is pure arithmetic: no pen, no clock, no files.

use std::collections::BTreeSet;

/// The depths commanded for a depth fit, µm: six across 0.25–2.5 mm, on the version 1
/// pen's 50 µm step, the ends included so the fit is anchored where it matters most.
pub const DEPTH_FIT_TARGETS_UM: [i32; 6] = [250, 750, 1250, 1750, 2250, 2500];

/// The depths a depth calibration is verified at, µm: none of them is in
/// [`DEPTH_FIT_TARGETS_UM`], so verification tests the line between the fit points.
pub const DEPTH_VERIFY_TARGETS_UM: [i32; 3] = [500, 1500, 2000];

/// The setpoints a speed fit needs, rpm: the version 1 pen's range, ends and middle.
pub const SPEED_SETPOINTS_RPM: [i32; 3] = [3000, 6000, 9000];

/// The setpoints a speed calibration is verified at, rpm: none of them is in
/// [`SPEED_SETPOINTS_RPM`].
pub const SPEED_VERIFY_SETPOINTS_RPM: [i32; 3] = [4000, 6500, 8500];

/// A depth fit needs at least this many points...
pub const MIN_DEPTH_POINTS: usize = 5;

/// ...at this many distinct commanded depths, or the line is poorly determined.
pub const MIN_DISTINCT_DEPTHS: usize = 5;

/// The shallowest commanded depth must be at most this, µm (the 0.25 mm).
pub const DEPTH_SPAN_LOW_UM: i32 = 250;

/// The deepest commanded depth must be at least this, µm (the 2.5 mm, the
/// version 1 pen's deepest).
pub const DEPTH_SPAN_HIGH_UM: i32 = 2500;

/// No gauge reading (or commanded depth) can exceed this, µm: the needle cannot
/// protrude 3 mm from a pen whose deepest setting is 2.5 mm and whose error the
/// protocol bounds to 5 % + 200 µm.
pub const DEPTH_READING_MAX_UM: f64 = 3000.0;

/// No fit point may lie farther than this from the fitted depth line, µm: the
/// tolerance verification will hold the calibrated pen to. A point that does is a
/// mistyped reading (too small a slip for [`DEPTH_BAND_FIXED_UM`] to catch) or a
/// mechanism that is not linear, which no gain and offset can correct.
pub const DEPTH_MAX_RESIDUAL_UM: f64 = 50.0;

/// No fit point may lie farther than this from the fitted speed line, % of its
/// setpoint: the tolerance verification holds the pen to.
pub const SPEED_MAX_RESIDUAL_PCT: f64 = 1.0;

/// A depth reading farther than this many µm, plus [`DEPTH_BAND_FRACTION`] of the
/// commanded depth, from the commanded depth is refused as implausible.
///
/// The protocol can correct at most 200 µm of offset and 5 % of gain; the band is
/// wider (300 µm + 10 %), so a pen just beyond adjustment still gets
/// through to the fit (which refuses it, saying the pen is out of adjustment), while a
/// mistyped reading (1520 for 1250, a reading in mm) is caught at the point it was made.
pub const DEPTH_BAND_FIXED_UM: f64 = 300.0;

/// See [`DEPTH_BAND_FIXED_UM`].
pub const DEPTH_BAND_FRACTION: f64 = 0.10;

/// The fastest the version 1 pen is set to, rpm.
pub const SPEED_MAX_RPM: i32 = 9000;

/// No tachometer reading can exceed this, rpm: twice the pen's fastest setting.
pub const SPEED_READING_MAX_RPM: f64 = 2.0 * SPEED_MAX_RPM as f64;

/// A tachometer reading more than this fraction from its setpoint is refused as
/// implausible: twice the 5 % the protocol can correct (same reasoning as
/// [`DEPTH_BAND_FIXED_UM`]).
pub const SPEED_BAND_FRACTION: f64 = 0.10;

/// `depth_offset_um` the protocol can store: −200..=200 µm.
pub const DEPTH_OFFSET_RANGE_UM: std::ops::RangeInclusive<i32> = -200..=200;

/// `depth_gain_ppm` the protocol can store: −50000..=50000 (±5 %).
pub const DEPTH_GAIN_RANGE_PPM: std::ops::RangeInclusive<i32> = -50_000..=50_000;

/// `speed_gain_ppm` the protocol can store: −50000..=50000 (±5 %).
pub const SPEED_GAIN_RANGE_PPM: std::ops::RangeInclusive<i32> = -50_000..=50_000;

/// What a bad reading or a bad fit is; every message says what and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// A typed reading is not a number.
    #[error("{text:?} is not a number: type the reading in {unit}, e.g. 1250")]
    NotANumber {
        /// What was typed.
        text: String,
        /// The unit the reading is in (`µm`, `rpm`).
        unit: &'static str,
    },
    /// A reading is NaN or infinite.
    #[error("point {point}: the reading is not a finite number")]
    NotFinite {
        /// The point, counted from 1.
        point: usize,
    },
    /// A reading is below zero: no gauge or tachometer reads that.
    #[error(
        "point {point}: the reading {value} {unit} is negative; a gauge or tachometer cannot read below 0"
    )]
    Negative {
        /// The point, counted from 1.
        point: usize,
        /// The reading.
        value: f64,
        /// Its unit.
        unit: &'static str,
    },
    /// A reading is beyond anything the pen can produce.
    #[error(
        "point {point}: the reading {value} {unit} is above {max} {unit}, more than this pen can produce"
    )]
    AboveMaximum {
        /// The point, counted from 1.
        point: usize,
        /// The reading.
        value: f64,
        /// The largest plausible reading.
        max: f64,
        /// Its unit.
        unit: &'static str,
    },
    /// A commanded depth or setpoint is outside what a pen accepts.
    #[error("point {point}: the commanded {value} {unit} is outside 0..={max} {unit}")]
    CommandOutOfRange {
        /// The point, counted from 1.
        point: usize,
        /// The commanded depth or setpoint.
        value: i32,
        /// The largest accepted.
        max: i32,
        /// Its unit.
        unit: &'static str,
    },
    /// A reading is so far from what was commanded that it is a typing mistake, or
    /// the pen is far beyond adjustment.
    #[error(
        "point {point}: the reading {value} {unit} is {off:.1} {unit} from the commanded {commanded} {unit}, \
         more than the {band:.1} {unit} a pen within adjustment can be off: check the reading; \
         if it is right, the pen is broken and must not be calibrated into service"
    )]
    Implausible {
        /// The point, counted from 1.
        point: usize,
        /// The commanded depth or setpoint.
        commanded: i32,
        /// The reading.
        value: f64,
        /// How far the reading is from the commanded value.
        off: f64,
        /// How far it may be.
        band: f64,
        /// Its unit.
        unit: &'static str,
    },
    /// Fewer points than the fit needs.
    #[error("{got} points measured; a {what} calibration needs at least {need}")]
    TooFewPoints {
        /// `depth`, `speed`, `verification`.
        what: &'static str,
        /// How many were given.
        got: usize,
        /// How many are needed.
        need: usize,
    },
    /// Too few distinct commanded depths: repeats do not determine a line.
    #[error("only {got} distinct depths measured; the fit needs at least {need} different depths")]
    TooFewDistinctDepths {
        /// How many distinct depths were given.
        got: usize,
        /// How many are needed.
        need: usize,
    },
    /// The commanded depths do not span the range the pen is used over.
    #[error(
        "the depths measured run from {lowest_um} to {highest_um} µm; they must cover at least \
         {DEPTH_SPAN_LOW_UM} to {DEPTH_SPAN_HIGH_UM} µm so the fit holds over the whole range"
    )]
    SpanTooNarrow {
        /// The shallowest commanded depth.
        lowest_um: i32,
        /// The deepest commanded depth.
        highest_um: i32,
    },
    /// A required speed setpoint was not measured.
    #[error(
        "no reading at {rpm} rpm; a speed calibration needs readings at 3000, 6000 and 9000 rpm"
    )]
    MissingSetpoint {
        /// The setpoint missing.
        rpm: i32,
    },
    /// A verification depth or speed was also a fit point.
    #[error(
        "only {got} of the verification points are new (not fit points); verification needs at \
         least {need} new ones, or it only repeats the fit"
    )]
    TooFewNewPoints {
        /// How many new distinct targets were given.
        got: usize,
        /// How many are needed.
        need: usize,
    },
    /// A point lies farther from the fitted line than a calibration may leave: a
    /// mistyped reading, or a mechanism that is not linear.
    #[error(
        "point {point}: the reading lies {residual:+.1} {unit} off the fitted line, more than the \
         ±{limit} {unit} a calibration must achieve: check the reading; if it is right, the pen \
         does not follow a straight line and must not be calibrated into service"
    )]
    OffTheLine {
        /// The point, counted from 1.
        point: usize,
        /// Its residual (measured − fitted).
        residual: f64,
        /// The largest residual allowed.
        limit: f64,
        /// `µm` or `%`.
        unit: &'static str,
    },
    /// The fitted depth gain is beyond what the protocol stores.
    #[error(
        "the fitted depth gain is {gain_ppm} ppm ({pct:+.2} %), beyond the ±50000 ppm (±5 %) a pen \
         can be corrected by: the pen is broken or out of adjustment and must not be calibrated \
         into service", pct = f64::from(*gain_ppm) / 1e4
    )]
    DepthGainOutOfRange {
        /// The fitted gain, ppm.
        gain_ppm: i32,
    },
    /// The fitted depth offset is beyond what the protocol stores.
    #[error(
        "the fitted depth offset is {offset_um} µm, beyond the ±200 µm a pen can be corrected by: \
         the pen is broken or out of adjustment and must not be calibrated into service"
    )]
    DepthOffsetOutOfRange {
        /// The fitted offset, µm.
        offset_um: i32,
    },
    /// The fitted speed gain is beyond what the protocol stores.
    #[error(
        "the fitted speed sensor gain is {gain_ppm} ppm ({pct:+.2} %), beyond the ±50000 ppm (±5 %) \
         a pen can be corrected by: the pen is broken or out of adjustment and must not be \
         calibrated into service", pct = f64::from(*gain_ppm) / 1e4
    )]
    SpeedGainOutOfRange {
        /// The fitted gain, ppm.
        gain_ppm: i32,
    },
}

/// One depth measurement: the depth commanded and what the gauge read.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthPoint {
    /// The depth commanded, µm. For a fit point, commanded under identity calibration,
    /// so it is the raw mechanism position `r`.
    pub commanded_um: i32,
    /// The true protrusion the gauge read, µm.
    pub measured_um: f64,
}

/// One speed measurement: the setpoint and what the tachometer read.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeedPoint {
    /// The speed set, rpm.
    pub setpoint_rpm: i32,
    /// The rotor's true speed the tachometer read, rpm.
    pub measured_rpm: f64,
}

/// A depth fit `p = (1 + g)·r + o`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthFit {
    /// `g` × 10⁶ rounded to the nearest integer (halves away from zero), as `CAL SET`
    /// writes it.
    pub gain_ppm: i32,
    /// `o` rounded to the nearest µm (halves away from zero), as `CAL SET` writes it.
    pub offset_um: i32,
    /// The fitted `g`, unrounded.
    pub gain: f64,
    /// The fitted `o`, µm, unrounded.
    pub offset_um_f: f64,
    /// Per point, in the order given: measured − fitted (the unrounded line), µm.
    pub residuals_um: Vec<f64>,
    /// The largest |residual|, µm.
    pub max_abs_residual_um: f64,
    /// The coefficient of determination, 1 − `SS_res` / `SS_tot`.
    pub r_squared: f64,
}

impl DepthFit {
    /// The fitted (unrounded) protrusion at raw position `raw_um`.
    #[must_use]
    pub fn predict_um(&self, raw_um: f64) -> f64 {
        (1.0 + self.gain) * raw_um + self.offset_um_f
    }
}

/// A speed fit `tach = (1 + s)·setpoint`, through the origin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeedFit {
    /// `s` × 10⁶ rounded to the nearest integer (halves away from zero), as `CAL SET`
    /// writes it.
    pub gain_ppm: i32,
    /// The fitted `s`, unrounded.
    pub gain: f64,
    /// Per point, in the order given: (measured − fitted) / setpoint × 100, in %.
    pub residuals_pct: Vec<f64>,
    /// The largest |residual|, %.
    pub max_abs_residual_pct: f64,
}

/// Parses a typed gauge reading, µm. Surrounding blanks are ignored.
pub fn parse_depth_reading_um(text: &str) -> Result<f64, FitError> {
    parse_reading(text, "µm")
}

/// Parses a typed tachometer reading, rpm. Surrounding blanks are ignored.
pub fn parse_speed_reading_rpm(text: &str) -> Result<f64, FitError> {
    parse_reading(text, "rpm")
}

fn parse_reading(text: &str, unit: &'static str) -> Result<f64, FitError> {
    let not_a_number = || FitError::NotANumber {
        text: text.to_owned(),
        unit,
    };
    let value: f64 = text.trim().parse().map_err(|_| not_a_number())?;
    // "inf" and "NaN" parse as f64 but are not readings.
    if value.is_finite() {
        Ok(value)
    } else {
        Err(not_a_number())
    }
}

/// Fits `p = (1 + g)·r + o` to depth points taken under identity calibration.
///
/// Refuses: a reading that is not finite, negative, above
/// [`DEPTH_READING_MAX_UM`] or outside the plausible band around its commanded depth
/// ([`DEPTH_BAND_FIXED_UM`]); fewer than [`MIN_DEPTH_POINTS`] points or
/// [`MIN_DISTINCT_DEPTHS`] distinct depths; depths not covering
/// [`DEPTH_SPAN_LOW_UM`]..[`DEPTH_SPAN_HIGH_UM`]; a point farther than
/// [`DEPTH_MAX_RESIDUAL_UM`] from the fitted line (a slip, or a mechanism that is not
/// linear); a gain or offset beyond the protocol's ranges (a broken pen).
pub fn fit_depth(points: &[DepthPoint]) -> Result<DepthFit, FitError> {
    check_depth_readings(points, true)?;
    if points.len() < MIN_DEPTH_POINTS {
        return Err(FitError::TooFewPoints {
            what: "depth",
            got: points.len(),
            need: MIN_DEPTH_POINTS,
        });
    }
    let distinct: BTreeSet<i32> = points.iter().map(|p| p.commanded_um).collect();
    if distinct.len() < MIN_DISTINCT_DEPTHS {
        return Err(FitError::TooFewDistinctDepths {
            got: distinct.len(),
            need: MIN_DISTINCT_DEPTHS,
        });
    }
    // Both exist: there are at least MIN_DISTINCT_DEPTHS of them.
    let lowest_um = distinct.first().copied().unwrap_or_default();
    let highest_um = distinct.last().copied().unwrap_or_default();
    if lowest_um > DEPTH_SPAN_LOW_UM || highest_um < DEPTH_SPAN_HIGH_UM {
        return Err(FitError::SpanTooNarrow {
            lowest_um,
            highest_um,
        });
    }

    // Ordinary least squares on centred sums: the slope is S_rp / S_rr. Centring keeps
    // the sums small (µm around the mean, not µm² around zero), so nothing cancels.
    let n = count_f64(points.len());
    let mean_r = points
        .iter()
        .map(|p| f64::from(p.commanded_um))
        .sum::<f64>()
        / n;
    let mean_p = points.iter().map(|p| p.measured_um).sum::<f64>() / n;
    // Centred sums: Σ(r − r̄)², Σ(r − r̄)(p − p̄), Σ(p − p̄)².
    let (mut spread_r, mut covariation, mut spread_p) = (0.0, 0.0, 0.0);
    for point in points {
        let dr = f64::from(point.commanded_um) - mean_r;
        let dp = point.measured_um - mean_p;
        spread_r += dr * dr;
        covariation += dr * dp;
        spread_p += dp * dp;
    }
    // spread_r > 0: there are at least two distinct depths.
    let slope = covariation / spread_r;
    let gain = slope - 1.0;
    let offset_um_f = mean_p - slope * mean_r;

    let residuals_um: Vec<f64> = points
        .iter()
        .map(|p| p.measured_um - (slope * f64::from(p.commanded_um) + offset_um_f))
        .collect();
    let ss_res: f64 = residuals_um.iter().map(|e| e * e).sum();
    // Every reading equal (spread_p = 0) cannot pass the band check over a 2.25 mm span,
    // but say 1 rather than divide by zero if it ever did.
    let r_squared = if spread_p > 0.0 {
        1.0 - ss_res / spread_p
    } else {
        1.0
    };

    // Before the range checks: one mistyped reading at the deep end can push the gain
    // out of range, and "check point 6" helps the technician more than "broken pen".
    check_on_the_line(&residuals_um, DEPTH_MAX_RESIDUAL_UM, "µm")?;
    let gain_ppm = round_to_i32(gain * 1e6);
    let offset_um = round_to_i32(offset_um_f);
    if !DEPTH_GAIN_RANGE_PPM.contains(&gain_ppm) {
        return Err(FitError::DepthGainOutOfRange { gain_ppm });
    }
    if !DEPTH_OFFSET_RANGE_UM.contains(&offset_um) {
        return Err(FitError::DepthOffsetOutOfRange { offset_um });
    }
    Ok(DepthFit {
        gain_ppm,
        offset_um,
        gain,
        offset_um_f,
        max_abs_residual_um: max_abs(&residuals_um),
        residuals_um,
        r_squared,
    })
}

/// Fits `tach = (1 + s)·setpoint` through the origin to speed points taken under
/// identity calibration.
///
/// Least squares through the origin: `1 + s = Σ S·T / Σ S²`.
///
/// Refuses: a reading that is not finite, negative, above [`SPEED_READING_MAX_RPM`] or
/// more than [`SPEED_BAND_FRACTION`] from its setpoint; a setpoint outside
/// 1..=[`SPEED_MAX_RPM`]; a missing setpoint of [`SPEED_SETPOINTS_RPM`]; a point
/// farther than [`SPEED_MAX_RESIDUAL_PCT`] from the fitted line; a gain beyond the
/// protocol's range (a broken pen).
pub fn fit_speed(points: &[SpeedPoint]) -> Result<SpeedFit, FitError> {
    check_speed_readings(points, true)?;
    if points.len() < SPEED_SETPOINTS_RPM.len() {
        return Err(FitError::TooFewPoints {
            what: "speed",
            got: points.len(),
            need: SPEED_SETPOINTS_RPM.len(),
        });
    }
    for rpm in SPEED_SETPOINTS_RPM {
        if !points.iter().any(|p| p.setpoint_rpm == rpm) {
            return Err(FitError::MissingSetpoint { rpm });
        }
    }
    // Σ setpoint·tach and Σ setpoint².
    let (mut sum_setpoint_tach, mut sum_setpoint_sq) = (0.0, 0.0);
    for point in points {
        let setpoint = f64::from(point.setpoint_rpm);
        sum_setpoint_tach += setpoint * point.measured_rpm;
        sum_setpoint_sq += setpoint * setpoint;
    }
    // sum_setpoint_sq > 0: every setpoint is at least 1 rpm.
    let factor = sum_setpoint_tach / sum_setpoint_sq;
    let gain = factor - 1.0;
    let residuals_pct: Vec<f64> = points
        .iter()
        .map(|p| {
            let s = f64::from(p.setpoint_rpm);
            (p.measured_rpm - factor * s) / s * 100.0
        })
        .collect();
    check_on_the_line(&residuals_pct, SPEED_MAX_RESIDUAL_PCT, "%")?;
    let gain_ppm = round_to_i32(gain * 1e6);
    if !SPEED_GAIN_RANGE_PPM.contains(&gain_ppm) {
        return Err(FitError::SpeedGainOutOfRange { gain_ppm });
    }
    Ok(SpeedFit {
        gain_ppm,
        gain,
        max_abs_residual_pct: max_abs(&residuals_pct),
        residuals_pct,
    })
}

/// Checks each depth point's commanded depth and reading; with `band`, also that the
/// reading is within the plausible band around the commanded depth (fit points,
/// taken under identity calibration).
pub(crate) fn check_depth_readings(points: &[DepthPoint], band: bool) -> Result<(), FitError> {
    const UNIT: &str = "µm";
    for (i, p) in points.iter().enumerate() {
        let point = i + 1;
        // The commanded depth comes from the station, not the technician, but a
        // caller's bug must not reach the arithmetic either.
        let max_commanded = round_to_i32(DEPTH_READING_MAX_UM);
        if !(0..=max_commanded).contains(&p.commanded_um) {
            return Err(FitError::CommandOutOfRange {
                point,
                value: p.commanded_um,
                max: max_commanded,
                unit: UNIT,
            });
        }
        check_reading(point, p.measured_um, DEPTH_READING_MAX_UM, UNIT)?;
        if band {
            let commanded = f64::from(p.commanded_um);
            let allowed = DEPTH_BAND_FIXED_UM + DEPTH_BAND_FRACTION * commanded;
            let off = (p.measured_um - commanded).abs();
            if off > allowed {
                return Err(FitError::Implausible {
                    point,
                    commanded: p.commanded_um,
                    value: p.measured_um,
                    off,
                    band: allowed,
                    unit: UNIT,
                });
            }
        }
    }
    Ok(())
}

/// Checks each speed point's setpoint and reading; with `band`, also that the reading
/// is within [`SPEED_BAND_FRACTION`] of its setpoint.
pub(crate) fn check_speed_readings(points: &[SpeedPoint], band: bool) -> Result<(), FitError> {
    const UNIT: &str = "rpm";
    for (i, p) in points.iter().enumerate() {
        let point = i + 1;
        if !(1..=SPEED_MAX_RPM).contains(&p.setpoint_rpm) {
            return Err(FitError::CommandOutOfRange {
                point,
                value: p.setpoint_rpm,
                max: SPEED_MAX_RPM,
                unit: UNIT,
            });
        }
        check_reading(point, p.measured_rpm, SPEED_READING_MAX_RPM, UNIT)?;
        if band {
            let setpoint = f64::from(p.setpoint_rpm);
            let allowed = SPEED_BAND_FRACTION * setpoint;
            let off = (p.measured_rpm - setpoint).abs();
            if off > allowed {
                return Err(FitError::Implausible {
                    point,
                    commanded: p.setpoint_rpm,
                    value: p.measured_rpm,
                    off,
                    band: allowed,
                    unit: UNIT,
                });
            }
        }
    }
    Ok(())
}

/// Refuses a fit with a residual beyond `limit`, naming the point farthest off the
/// line: one bad reading pulls the line toward itself and puts its neighbours off it
/// too, but it stays the farthest.
fn check_on_the_line(residuals: &[f64], limit: f64, unit: &'static str) -> Result<(), FitError> {
    let farthest = residuals
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
    match farthest {
        Some((i, &residual)) if residual.abs() > limit => Err(FitError::OffTheLine {
            point: i + 1,
            residual,
            limit,
            unit,
        }),
        _ => Ok(()),
    }
}

fn check_reading(point: usize, value: f64, max: f64, unit: &'static str) -> Result<(), FitError> {
    if !value.is_finite() {
        return Err(FitError::NotFinite { point });
    }
    if value < 0.0 {
        return Err(FitError::Negative { point, value, unit });
    }
    if value > max {
        return Err(FitError::AboveMaximum {
            point,
            value,
            max,
            unit,
        });
    }
    Ok(())
}

/// The largest absolute value; 0 for none.
pub(crate) fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// A point count as f64 (exact: counts are far below 2^53).
#[allow(clippy::cast_precision_loss)]
fn count_f64(n: usize) -> f64 {
    n as f64
}

/// Rounds to the nearest integer, halves away from zero, saturating at the i32 bounds.
// `as` saturates (and maps NaN to 0) rather than wrapping; a saturated value is far
// outside every protocol range and is refused as such.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn round_to_i32(value: f64) -> i32 {
    value.round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on `p = (1 + g)·r + o` exactly, at the standard fit targets.
    fn exact_depth(gain: f64, offset_um: f64) -> Vec<DepthPoint> {
        DEPTH_FIT_TARGETS_UM
            .iter()
            .map(|&r| DepthPoint {
                commanded_um: r,
                measured_um: (1.0 + gain) * f64::from(r) + offset_um,
            })
            .collect()
    }

    fn depth(points: &[(i32, f64)]) -> Vec<DepthPoint> {
        points
            .iter()
            .map(|&(commanded_um, measured_um)| DepthPoint {
                commanded_um,
                measured_um,
            })
            .collect()
    }

    fn speed(points: &[(i32, f64)]) -> Vec<SpeedPoint> {
        points
            .iter()
            .map(|&(setpoint_rpm, measured_rpm)| SpeedPoint {
                setpoint_rpm,
                measured_rpm,
            })
            .collect()
    }

    #[test]
    fn standard_targets_meet_the_rules_they_are_checked_against() {
        let on_step = |d: &i32| d % 50 == 0 && (0..=2500).contains(d);
        assert!(DEPTH_FIT_TARGETS_UM.iter().all(on_step));
        assert!(DEPTH_VERIFY_TARGETS_UM.iter().all(on_step));
        assert!(DEPTH_FIT_TARGETS_UM.len() >= MIN_DEPTH_POINTS);
        assert_eq!(DEPTH_FIT_TARGETS_UM.iter().min(), Some(&DEPTH_SPAN_LOW_UM));
        assert_eq!(DEPTH_FIT_TARGETS_UM.iter().max(), Some(&DEPTH_SPAN_HIGH_UM));
        assert!(DEPTH_VERIFY_TARGETS_UM.len() >= 3);
        assert!(
            DEPTH_VERIFY_TARGETS_UM
                .iter()
                .all(|d| !DEPTH_FIT_TARGETS_UM.contains(d))
        );
        assert!(
            SPEED_VERIFY_SETPOINTS_RPM
                .iter()
                .all(|s| !SPEED_SETPOINTS_RPM.contains(s) && (3000..=9000).contains(s))
        );
    }

    #[test]
    fn exact_line_with_plus_3_percent_and_minus_40_um_is_recovered_exactly() {
        let fit = fit_depth(&exact_depth(0.03, -40.0)).expect("fits");
        assert_eq!(fit.gain_ppm, 30_000);
        assert_eq!(fit.offset_um, -40);
        assert!((fit.gain - 0.03).abs() < 1e-12, "{}", fit.gain);
        assert!((fit.offset_um_f + 40.0).abs() < 1e-9, "{}", fit.offset_um_f);
        assert!(fit.max_abs_residual_um < 1e-9);
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
        assert_eq!(fit.residuals_um.len(), DEPTH_FIT_TARGETS_UM.len());
    }

    #[test]
    fn noisy_depth_data_gives_the_independently_computed_answer() {
        // r = 250, 750, 1250, 1750, 2250, 2500; p = 1.02·r + 15 + e with
        // e = +3, −2, +1, −4, +2, 0. Worked by hand on the raw sums:
        //   n = 6, Σr = 8750, Σr² = 16 562 500, Σe = 0, Σr·e = −2000.
        //   mean r = 1458.333…, S_rr = Σr² − (Σr)²/n = 3 802 083.333…
        //   S_re = Σr·e − Σr·Σe/n = −2000
        //   slope = 1.02 + S_re / S_rr = 1.02 − 0.000 526 027 397 3…
        //   intercept = 15 + mean e − (slope − 1.02)·mean r = 15.767 123 287 7…
        let e = [3.0, -2.0, 1.0, -4.0, 2.0, 0.0];
        let points: Vec<DepthPoint> = DEPTH_FIT_TARGETS_UM
            .iter()
            .zip(e)
            .map(|(&r, e)| DepthPoint {
                commanded_um: r,
                measured_um: 1.02 * f64::from(r) + 15.0 + e,
            })
            .collect();
        let fit = fit_depth(&points).expect("fits");
        let s_rr = 16_562_500.0 - 8750.0_f64 * 8750.0 / 6.0;
        let slope = 1.02 - 2000.0 / s_rr;
        let intercept = 15.0 + 2000.0 / s_rr * (8750.0 / 6.0);
        assert!((fit.gain - (slope - 1.0)).abs() < 1e-12, "{}", fit.gain);
        assert!(
            (fit.offset_um_f - intercept).abs() < 1e-9,
            "{}",
            fit.offset_um_f
        );
        assert!((fit.offset_um_f - 15.767_123_287_7).abs() < 1e-9);
        // 0.019 473 972 6… → 19 474 ppm; 15.77 → 16 µm.
        assert_eq!(fit.gain_ppm, 19_474);
        assert_eq!(fit.offset_um, 16);
        // Residuals sum to zero and are orthogonal to r, as least squares demands.
        let sum: f64 = fit.residuals_um.iter().sum();
        let dot: f64 = fit
            .residuals_um
            .iter()
            .zip(DEPTH_FIT_TARGETS_UM)
            .map(|(e, r)| e * f64::from(r))
            .sum();
        assert!(sum.abs() < 1e-9 && dot.abs() < 1e-6, "{sum} {dot}");
        assert!(fit.r_squared > 0.9999 && fit.r_squared < 1.0);
    }

    #[test]
    fn residuals_of_known_size_around_a_line() {
        // Two points at each of five depths, ±5 µm around p = r: the fit is p = r
        // exactly (the pairs cancel) and every residual is ±5.
        let mut pairs = Vec::new();
        for r in [250, 750, 1250, 1750, 2500] {
            pairs.push((r, f64::from(r) + 5.0));
            pairs.push((r, f64::from(r) - 5.0));
        }
        let fit = fit_depth(&depth(&pairs)).expect("fits");
        assert_eq!((fit.gain_ppm, fit.offset_um), (0, 0));
        assert!(fit.gain.abs() < 1e-12 && fit.offset_um_f.abs() < 1e-9);
        for (i, residual) in fit.residuals_um.iter().enumerate() {
            let expected = if i % 2 == 0 { 5.0 } else { -5.0 };
            assert!((residual - expected).abs() < 1e-9, "{i}: {residual}");
        }
        assert!((fit.max_abs_residual_um - 5.0).abs() < 1e-9);
        // SS_res = 10·25; SS_tot = 2·Σ(r − mean)² + 10·25.
        let mean = (250.0 + 750.0 + 1250.0 + 1750.0 + 2500.0) / 5.0;
        let s_rr: f64 = [250.0, 750.0, 1250.0, 1750.0, 2500.0]
            .iter()
            .map(|r: &f64| 2.0 * (r - mean) * (r - mean))
            .sum();
        let expected_r2 = 1.0 - 250.0 / (s_rr + 250.0);
        assert!((fit.r_squared - expected_r2).abs() < 1e-12);
    }

    #[test]
    fn rounding_to_protocol_units_is_half_away_from_zero() {
        // Exact ties are checked on the helper: in a fit, float noise decides them.
        assert_eq!(round_to_i32(-40.5), -41);
        assert_eq!(round_to_i32(40.5), 41);
        assert_eq!(round_to_i32(29_999.6), 30_000);
        let fit = fit_depth(&exact_depth(-0.012_345_4, 37.4)).expect("fits");
        assert_eq!((fit.gain_ppm, fit.offset_um), (-12_345, 37));
    }

    #[test]
    fn speed_fit_through_the_origin_matches_the_closed_form() {
        // Exact: tach = 1.01·S → s = 1 %.
        let exact = speed(&[(3000, 3030.0), (6000, 6060.0), (9000, 9090.0)]);
        let fit = fit_speed(&exact).expect("fits");
        assert_eq!(fit.gain_ppm, 10_000);
        assert!(fit.max_abs_residual_pct < 1e-9);

        // Noisy: ΣS·T = 3000·2950 + 6000·5890 + 9000·8850 = 123 840 000,
        // ΣS² = 126 000 000 → 1 + s = 0.982 857 142 8…, s = −17 142.86 ppm → −17 143.
        let noisy = speed(&[(3000, 2950.0), (6000, 5890.0), (9000, 8850.0)]);
        let fit = fit_speed(&noisy).expect("fits");
        let factor = 123_840_000.0 / 126_000_000.0;
        assert!((fit.gain - (factor - 1.0)).abs() < 1e-12);
        assert_eq!(fit.gain_ppm, -17_143);
        let expected: Vec<f64> = [(3000.0, 2950.0), (6000.0, 5890.0), (9000.0, 8850.0)]
            .iter()
            .map(|(s, t)| (t - factor * s) / s * 100.0)
            .collect();
        for (got, want) in fit.residuals_pct.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-12, "{got} {want}");
        }
        // Through the origin, not a free line: Σ S·residual = 0.
        let weighted: f64 = [3000.0, 6000.0, 9000.0]
            .iter()
            .zip(&fit.residuals_pct)
            .map(|(s, pct)| s * s * pct)
            .sum();
        assert!(weighted.abs() < 1e-3, "{weighted}");
    }

    #[test]
    fn typed_readings_that_are_not_numbers_are_refused() {
        assert_eq!(parse_depth_reading_um(" 1250.5 "), Ok(1250.5));
        assert_eq!(parse_speed_reading_rpm("6000"), Ok(6000.0));
        for bad in ["", "12x", "1,250", "NaN", "inf", "-inf", "mm"] {
            let err = parse_depth_reading_um(bad).expect_err(bad);
            assert!(matches!(err, FitError::NotANumber { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("not a number"), "{err}");
        }
    }

    #[test]
    fn depth_readings_not_finite_negative_or_out_of_range_are_refused() {
        let mut points = exact_depth(0.0, 0.0);
        points[2].measured_um = f64::NAN;
        let err = fit_depth(&points).expect_err("nan");
        assert_eq!(err, FitError::NotFinite { point: 3 });
        assert!(err.to_string().starts_with("point 3:"), "{err}");

        let mut points = exact_depth(0.0, 0.0);
        points[0].measured_um = -1.0;
        let err = fit_depth(&points).expect_err("negative");
        assert!(matches!(err, FitError::Negative { point: 1, .. }), "{err}");
        assert!(err.to_string().contains("negative"), "{err}");

        let mut points = exact_depth(0.0, 0.0);
        points[5].measured_um = 3000.5;
        let err = fit_depth(&points).expect_err("too deep");
        assert!(
            matches!(err, FitError::AboveMaximum { point: 6, .. }),
            "{err}"
        );

        // A reading in the wrong unit: 125 (0.125 mm as hundredths?) at 1250
        // commanded is 1125 µm off, beyond the band of 300 + 125.
        let mut points = exact_depth(0.0, 0.0);
        points[2].measured_um = 125.0;
        let implausible = fit_depth(&points).expect_err("implausible");
        assert!(
            matches!(implausible, FitError::Implausible { point: 3, .. }),
            "{implausible}"
        );
        assert!(implausible.to_string().contains("check the reading"));
        // Just inside the band passes the reading check.
        points[2].measured_um = 1250.0 + 425.0;
        assert!(check_depth_readings(&points, true).is_ok());

        let mut points = exact_depth(0.0, 0.0);
        points[1].commanded_um = -50;
        assert!(matches!(
            fit_depth(&points),
            Err(FitError::CommandOutOfRange { point: 2, .. })
        ));
    }

    #[test]
    fn a_point_off_the_fitted_line_is_refused_naming_the_point() {
        // A slip of the fingers, 1520 for 1250: inside the plausibility band (off by
        // 270 of 425) but far off the line the other points make.
        let mut points = exact_depth(0.03, -40.0);
        points[2].measured_um = 1520.0;
        let err = fit_depth(&points).expect_err("off the line");
        let FitError::OffTheLine {
            point,
            residual,
            limit,
            unit,
        } = err.clone()
        else {
            panic!("{err}");
        };
        assert_eq!((point, limit, unit), (3, DEPTH_MAX_RESIDUAL_UM, "µm"));
        assert!(residual > 50.0, "{residual}");
        assert!(err.to_string().starts_with("point 3:"), "{err}");
        assert!(err.to_string().contains("check the reading"), "{err}");
        // Just inside ±50 µm, at a point that barely moves the line, is accepted.
        let mut points = exact_depth(0.0, 0.0);
        points.push(DepthPoint {
            commanded_um: 1250,
            measured_um: 1250.0,
        });
        points.push(DepthPoint {
            commanded_um: 1250,
            measured_um: 1250.0 + 49.0,
        });
        let fit = fit_depth(&points).expect("within 50 µm");
        assert!(fit.max_abs_residual_um > 40.0 && fit.max_abs_residual_um <= 50.0);

        // Speed: a reading 2 % off the line the others make.
        let bent = speed(&[
            (3000, 3000.0),
            (6000, 6000.0),
            (9000, 9000.0),
            (6000, 6150.0),
        ]);
        let err = fit_speed(&bent).expect_err("off the line");
        assert!(
            matches!(
                err,
                FitError::OffTheLine {
                    point: 4,
                    unit: "%",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn too_few_points_distinct_depths_or_span_are_refused() {
        let four = depth(&[(250, 250.0), (1000, 1000.0), (1750, 1750.0), (2500, 2500.0)]);
        assert_eq!(
            fit_depth(&four),
            Err(FitError::TooFewPoints {
                what: "depth",
                got: 4,
                need: 5
            })
        );
        let repeats = depth(&[
            (250, 250.0),
            (250, 251.0),
            (1000, 1000.0),
            (1750, 1750.0),
            (2500, 2500.0),
        ]);
        assert_eq!(
            fit_depth(&repeats),
            Err(FitError::TooFewDistinctDepths { got: 4, need: 5 })
        );
        let shallow_start = depth(&[
            (300, 300.0),
            (750, 750.0),
            (1250, 1250.0),
            (1750, 1750.0),
            (2500, 2500.0),
        ]);
        let err = fit_depth(&shallow_start).expect_err("span");
        assert_eq!(
            err,
            FitError::SpanTooNarrow {
                lowest_um: 300,
                highest_um: 2500
            }
        );
        assert!(err.to_string().contains("250 to 2500"), "{err}");
        let short_end = depth(&[
            (250, 250.0),
            (750, 750.0),
            (1250, 1250.0),
            (1750, 1750.0),
            (2450, 2450.0),
        ]);
        assert!(matches!(
            fit_depth(&short_end),
            Err(FitError::SpanTooNarrow { .. })
        ));
        assert_eq!(
            fit_depth(&[]),
            Err(FitError::TooFewPoints {
                what: "depth",
                got: 0,
                need: 5
            })
        );
    }

    #[test]
    fn a_depth_fit_beyond_the_protocols_ranges_is_refused_as_a_broken_pen() {
        // +6 % gain: readings within the plausibility band, fit beyond ±5 %.
        let err = fit_depth(&exact_depth(0.06, 0.0)).expect_err("gain");
        assert_eq!(err, FitError::DepthGainOutOfRange { gain_ppm: 60_000 });
        assert!(
            err.to_string()
                .contains("must not be calibrated into service")
        );
        assert!(err.to_string().contains("+6.00 %"), "{err}");
        // −250 µm offset.
        let err = fit_depth(&exact_depth(0.0, -250.0)).expect_err("offset");
        assert_eq!(err, FitError::DepthOffsetOutOfRange { offset_um: -250 });
        assert!(err.to_string().contains("broken or out of adjustment"));
        // The edges of the ranges are accepted.
        let fit = fit_depth(&exact_depth(0.05, 200.0)).expect("edge");
        assert_eq!((fit.gain_ppm, fit.offset_um), (50_000, 200));
        let fit = fit_depth(&exact_depth(-0.05, 0.0)).expect("edge");
        assert_eq!(fit.gain_ppm, -50_000);
    }

    #[test]
    fn speed_refusals_say_why() {
        let missing = speed(&[(3000, 3000.0), (6000, 6000.0), (8000, 8000.0)]);
        let err = fit_speed(&missing).expect_err("missing");
        assert_eq!(err, FitError::MissingSetpoint { rpm: 9000 });
        assert!(err.to_string().contains("9000 rpm"));
        assert_eq!(
            fit_speed(&speed(&[(3000, 3000.0), (9000, 9000.0)])),
            Err(FitError::TooFewPoints {
                what: "speed",
                got: 2,
                need: 3
            })
        );
        let base = [(3000, 3000.0), (6000, 6000.0), (9000, 9000.0)];
        let with = |i: usize, value: f64| {
            let mut points = speed(&base);
            points[i].measured_rpm = value;
            fit_speed(&points).expect_err("bad reading")
        };
        assert_eq!(with(1, f64::INFINITY), FitError::NotFinite { point: 2 });
        assert!(matches!(
            with(0, -3000.0),
            FitError::Negative { point: 1, .. }
        ));
        assert!(matches!(
            with(2, 18_001.0),
            FitError::AboveMaximum { point: 3, .. }
        ));
        assert!(matches!(
            with(2, 9000.0 * 1.11),
            FitError::Implausible { point: 3, .. }
        ));
        let mut points = speed(&base);
        points[0].setpoint_rpm = 0;
        assert!(matches!(
            fit_speed(&points),
            Err(FitError::CommandOutOfRange { point: 1, .. })
        ));
        // +7 %: plausible readings, a sensor beyond adjustment.
        let broken = speed(&[(3000, 3210.0), (6000, 6420.0), (9000, 9630.0)]);
        let err = fit_speed(&broken).expect_err("broken");
        assert_eq!(err, FitError::SpeedGainOutOfRange { gain_ppm: 70_000 });
        assert!(
            err.to_string()
                .contains("must not be calibrated into service")
        );
    }
}
