//! The calibration certificate's page: the pen, the technician, every point, the fit
//! and its plot (inline SVG), the verification, the verdict, and the previous values'
//! fate. Built with `maud`: every value is escaped by construction.

use maud::{Markup, html};

use crate::calibration::certificate::{Certificate, Measurements, PreviousFate};
use crate::calibration::fit::{DepthFit, DepthPoint, SpeedFit, SpeedPoint};
use crate::calibration::verify::{
    DEPTH_TOLERANCE_UM, DepthVerification, SPEED_TOLERANCE_PCT, SpeedVerification,
};
use crate::protocol::Calibration;

/// The certificate as a self-contained HTML page.
#[must_use]
pub fn certificate_page(c: &Certificate) -> String {
    let kind = c.kind().as_str();
    let (class, word) = if c.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let rows = [
        ("Pen model", c.pen.model.clone()),
        ("Pen serial", c.pen.serial.clone()),
        ("Pen firmware", c.pen.fw.clone()),
        (
            "Date (local)",
            c.local_time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        ),
        ("UTC", c.utc.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ("Technician", c.technician.clone()),
        ("Readings from", c.readings_from.clone()),
        ("Station version", c.station_version.clone()),
    ];
    let fate = match c.previous_fate {
        PreviousFate::Replaced => "Previous (replaced)",
        PreviousFate::Restored => "Previous (restored)",
        PreviousFate::NotRestored => "Previous (NOT restored: pen uncalibrated)",
        PreviousFate::Unchanged => "Previous (unchanged: nothing was written)",
    };
    let body = html! {
        h1 { "Pen " (kind) " calibration certificate" }
        div class={ "banner " (class) } { (word) }
        @if !c.reasons.is_empty() {
            h2 { "Why it failed" }
            ul { @for reason in &c.reasons { li { (reason) } } }
        }
        h2 { "Pen and calibration" }
        table.facts {
            @for (name, value) in &rows {
                tr { th { (name) } td { (value) } }
            }
        }
        @match &c.measurements {
            Measurements::Depth { fit_points, fit, verification } => {
                (depth_sections(fit_points, fit.as_ref(), verification.as_ref()))
            }
            Measurements::Speed { fit_points, fit, verification } => {
                (speed_sections(fit_points, fit.as_ref(), verification.as_ref()))
            }
        }
        h2 { "Calibration values" }
        table {
            tr {
                th {}
                th.n { "depth_gain_ppm" } th.n { "depth_offset_um" } th.n { "speed_gain_ppm" }
                th.n { "date" } th { "tech" }
            }
            (cal_row(fate, &c.previous))
            @match &c.written {
                Some(written) => (cal_row("Written", written)),
                None => tr { th { "Written" } td colspan="5" { "nothing: not calibrated" } },
            }
        }
    };
    super::page(
        &format!("{kind} calibration certificate {}", c.pen.serial),
        None,
        "Calibration certificate",
        &body,
    )
    .into_string()
}

fn cal_row(label: &str, cal: &Calibration) -> Markup {
    html! {
        tr {
            th { (label) }
            td.n { (cal.depth_gain_ppm) }
            td.n { (cal.depth_offset_um) }
            td.n { (cal.speed_gain_ppm) }
            td.n { (cal.date) }
            td { (cal.tech) }
        }
    }
}

fn depth_sections(
    points: &[DepthPoint],
    fit: Option<&DepthFit>,
    verification: Option<&DepthVerification>,
) -> Markup {
    let plotted: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p.commanded_um), p.measured_um))
        .collect();
    html! {
        h2 { "Fit points (identity calibration)" }
        table {
            tr { th.n { "#" } th.n { "commanded, µm" } th.n { "gauge, µm" } th.n { "residual, µm" } }
            @for (i, p) in points.iter().enumerate() {
                tr {
                    td.n { (i + 1) }
                    td.n { (p.commanded_um) }
                    td.n { (p.measured_um) }
                    td.n {
                        (fit.and_then(|f| f.residuals_um.get(i))
                            .map_or_else(|| "–".to_owned(), |r| format!("{r:+.1}")))
                    }
                }
            }
        }
        @if let Some(f) = fit {
            h2 { "Fit p = (1 + g)·r + o" }
            table.facts {
                tr { td { "g" } td { (f.gain_ppm) " ppm (" (format!("{:+.4}", f.gain * 100.0)) " %)" } }
                tr { td { "o" } td { (f.offset_um) " µm (" (format!("{:+.2}", f.offset_um_f)) " µm unrounded)" } }
                tr { td { "largest |residual|" } td { (format!("{:.1}", f.max_abs_residual_um)) " µm" } }
                tr { td { "R²" } td { (format!("{:.6}", f.r_squared)) } }
            }
        }
        h2 { "Measured against commanded depth" }
        (svg_plot(&plotted, fit.map(|f| (1.0 + f.gain, f.offset_um_f)), "commanded depth, µm", "gauge, µm"))
        @if let Some(v) = verification {
            (verification_table(
                &format!("±{DEPTH_TOLERANCE_UM} µm"),
                ["target, µm", "gauge, µm", "residual, µm"],
                v.checks.iter().map(|c| (c.target_um, c.measured_um, format!("{:+.1}", c.residual_um), c.passed)),
            ))
        }
    }
}

fn speed_sections(
    points: &[SpeedPoint],
    fit: Option<&SpeedFit>,
    verification: Option<&SpeedVerification>,
) -> Markup {
    let plotted: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p.setpoint_rpm), p.measured_rpm))
        .collect();
    html! {
        h2 { "Fit points (identity calibration)" }
        table {
            tr { th.n { "#" } th.n { "setpoint, rpm" } th.n { "tachometer, rpm" } th.n { "residual, %" } }
            @for (i, p) in points.iter().enumerate() {
                tr {
                    td.n { (i + 1) }
                    td.n { (p.setpoint_rpm) }
                    td.n { (p.measured_rpm) }
                    td.n {
                        (fit.and_then(|f| f.residuals_pct.get(i))
                            .map_or_else(|| "–".to_owned(), |r| format!("{r:+.3}")))
                    }
                }
            }
        }
        @if let Some(f) = fit {
            h2 { "Fit tachometer = (1 + s)·setpoint" }
            table.facts {
                tr { td { "s" } td { (f.gain_ppm) " ppm (" (format!("{:+.4}", f.gain * 100.0)) " %)" } }
                tr { td { "largest |residual|" } td { (format!("{:.3}", f.max_abs_residual_pct)) " %" } }
            }
        }
        h2 { "Measured against set speed" }
        (svg_plot(&plotted, fit.map(|f| (1.0 + f.gain, 0.0)), "setpoint, rpm", "tachometer, rpm"))
        @if let Some(v) = verification {
            (verification_table(
                &format!("±{SPEED_TOLERANCE_PCT} %"),
                ["setpoint, rpm", "tachometer, rpm", "residual, %"],
                v.checks.iter().map(|c| (c.setpoint_rpm, c.measured_rpm, format!("{:+.3}", c.residual_pct), c.passed)),
            ))
        }
    }
}

/// The verification table: one row per point (target, reading, residual as shown,
/// passed), with a pass/FAIL column.
fn verification_table(
    tolerance: &str,
    headers: [&str; 3],
    rows: impl Iterator<Item = (i32, f64, String, bool)>,
) -> Markup {
    let [target, reading, residual] = headers;
    html! {
        h2 { "Verification (" (tolerance) ")" }
        table {
            tr { th.n { (target) } th.n { (reading) } th.n { (residual) } th { "result" } }
            @for (t, measured, r, passed) in rows {
                tr {
                    td.n { (t) }
                    td.n { (measured) }
                    td.n { (r) }
                    @if passed { td { "pass" } } @else { td.bad { "FAIL" } }
                }
            }
        }
    }
}

/// A scatter of `(x, y)` points with the identity line (dashed grey) and, if given,
/// the fitted line `y = slope·x + intercept` (blue), on axes from 0 to a little past
/// the largest value. Plain shapes only, so simple SVG renderers used for printing
/// draw them too.
fn svg_plot(
    points: &[(f64, f64)],
    line: Option<(f64, f64)>,
    x_label: &str,
    y_label: &str,
) -> Markup {
    const W: f64 = 480.0;
    const H: f64 = 360.0;
    const M: f64 = 50.0;
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let max = finite.iter().fold(1.0_f64, |m, &(x, y)| m.max(x).max(y)) * 1.05;
    let sx = |x: f64| format!("{:.1}", M + x / max * (W - 2.0 * M));
    let sy = |y: f64| format!("{:.1}", H - M - y / max * (H - 2.0 * M));
    let fitted = line.filter(|(a, b)| a.is_finite() && b.is_finite());
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H)
            viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label=(format!("{y_label} against {x_label}")) {
            line x1=(M) y1=(H - M) x2=(W - M) y2=(H - M) stroke="#000" {}
            line x1=(M) y1=(M) x2=(M) y2=(H - M) stroke="#000" {}
            text x=(W / 2.0) y=(H - 12.0) text-anchor="middle" font-size="12" { (x_label) }
            text x="14" y=(H / 2.0) text-anchor="middle" font-size="12"
                transform=(format!("rotate(-90 14 {})", H / 2.0)) { (y_label) }
            text x=(M) y=(H - M + 14.0) font-size="11" text-anchor="middle" { "0" }
            text x=(W - M) y=(H - M + 14.0) font-size="11" text-anchor="middle" { (format!("{max:.0}")) }
            text x=(M - 4.0) y=(M + 4.0) font-size="11" text-anchor="end" { (format!("{max:.0}")) }
            line x1=(sx(0.0)) y1=(sy(0.0)) x2=(sx(max)) y2=(sy(max)) stroke="#888" stroke-dasharray="5,4" {}
            @if let Some((slope, intercept)) = fitted {
                line x1=(sx(0.0)) y1=(sy(intercept)) x2=(sx(max)) y2=(sy(slope * max + intercept))
                    stroke="#1f5fbf" stroke-width="1.5" {}
            }
            @for (x, y) in &finite {
                circle cx=(sx(*x)) cy=(sy(*y)) r="4" fill="#c0392b" {}
            }
        }
        p { "Dashed: identity (no error). Blue: the fit. Dots: measured." }
    }
}
