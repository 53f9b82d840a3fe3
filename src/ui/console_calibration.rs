//! The console's technician commands: `technician ...` and `cal depth|speed`, the
//! same flows as the window's wizard, driven by lines on stdin (bench automation).
//!
//! A calibration holds the console until it ends: the station drives the pen, the
//! console prints each step as `cal: ...`, and when a reading is due it prints a
//! `cal: reading ...` prompt and takes the next input line as the reading (`cancel`
//! cancels). At the review it prints the fit and its residuals and takes `yes` (write
//! it) or `cancel`. The end is one line: `ok: ... passed` or `refused: ... failed`,
//! with the certificate's path. End of input mid-calibration cancels it (the previous
//! values are written back) before the console leaves.

use std::time::{Duration, Instant};

use crossbeam_channel::select;

use super::console::{Flow, Printer};
use crate::calibration::certificate::CalibrationKind;
use crate::calibration::procedure::{Action, Stage};
use crate::station::Station;

/// How long the console waits for the interlock to apply a mode change.
const MODE_WAIT: Duration = Duration::from_secs(5);

/// The help lines of the technician commands.
pub(super) const HELP: &[&str] = &[
    "technician set-pin <pin> [who]  set the technician PIN (first use only; 4-12 digits)",
    "technician <id> <pin>           enter technician mode as <id> (stored on the pen)",
    "technician off                  leave technician mode",
    "cal depth [sim]                 depth calibration; readings on stdin (µm), or sim: SIM GAUGE",
    "cal speed                       speed calibration; tachometer readings on stdin (rpm)",
];

/// Carries out a technician command; `None` when `words` is not one.
pub(super) fn execute(
    station: &mut Station,
    words: &[&str],
    out: &mut Printer,
    held: &mut super::console::Held<'_>,
) -> Option<Flow> {
    match words {
        ["technician", "set-pin", ..] => out.line(
            "refused: the technician PIN is an account's PIN now: an admin adds an account \
             with the technician role (account add), and the technician signs in",
        ),
        ["technician", "off"] => match station.leave_technician() {
            Ok(()) => wait_mode(station, false, out),
            Err(e) => out.line(&format!("refused: {e}")),
        },
        ["technician", id, pin] => match station.enter_technician(pin, id) {
            Ok(()) => wait_mode(station, true, out),
            Err(e) => out.line(&format!("refused: {e}")),
        },
        ["technician", ..] => out.line("error: usage: technician <id> <your pin> | technician off"),
        ["cal", "depth"] => {
            return Some(calibrate(station, CalibrationKind::Depth, false, out, held));
        }
        ["cal", "depth", "sim"] => {
            return Some(calibrate(station, CalibrationKind::Depth, true, out, held));
        }
        ["cal", "speed"] => {
            return Some(calibrate(station, CalibrationKind::Speed, false, out, held));
        }
        ["cal", ..] => out.line("error: usage: cal depth [sim] | cal speed"),
        _ => return None,
    }
    Some(Flow::Continue)
}

/// Waits until the interlock has applied a mode change, printing the outcome.
fn wait_mode(station: &mut Station, entering: bool, out: &mut Printer) {
    let deadline = Instant::now() + MODE_WAIT;
    while station.technician_toggle_pending() && Instant::now() < deadline {
        station.pump(Duration::from_millis(20));
    }
    out.notices(station.take_notices());
    match (entering, station.technician()) {
        (true, Some(id)) => out.line(&format!("ok: technician mode on ({id})")),
        (false, None) => out.line("ok: technician mode off"),
        (true, None) => out.line("refused: technician mode not entered"),
        (false, Some(_)) => out.line("refused: technician mode still on"),
    }
}

fn calibrate(
    station: &mut Station,
    kind: CalibrationKind,
    sim_gauge: bool,
    out: &mut Printer,
    held: &mut super::console::Held<'_>,
) -> Flow {
    if let Err(e) = station.start_calibration(kind, sim_gauge) {
        out.line(&format!("refused: {e}"));
        return Flow::Continue;
    }
    let mut printed_log = 0;
    let mut prompted: Option<Action> = None;
    let mut printed_refusal: Option<String> = None;
    let mut flow = Flow::Continue;
    let mut cancelled = false;
    loop {
        station.pump(Duration::from_millis(20));
        // A signal cancels the calibration (the previous values go back), then the
        // console halts the pen and leaves.
        if !cancelled && held.stops.arrived() {
            cancelled = true;
            out.line("event: signal during calibration: cancelling");
            station.calibration_cancel();
            flow = Flow::Quit;
        }
        let Some(run) = station.calibration_run() else {
            out.notices(station.take_notices());
            out.line("error: the calibration was dropped");
            return flow;
        };
        let procedure = run.procedure();
        for line in &procedure.log()[printed_log..] {
            out.line(&format!("cal: {line}"));
        }
        printed_log = procedure.log().len();
        let notices = station.take_notices();
        out.notices(notices);
        let Some(run) = station.calibration_run() else {
            return flow;
        };
        let procedure = run.procedure();
        if let Some(why) = run.refused()
            && printed_refusal.as_deref() != Some(why)
        {
            out.line(&format!("refused: {why}"));
            printed_refusal = Some(why.to_owned());
            // Ask again.
            prompted = None;
        }
        if run.is_done() {
            finish(station, kind, out);
            return flow;
        }
        let action = procedure.action();
        let wants_line = match &action {
            Action::Reading(_) => !run.sim_gauge(),
            Action::Review => true,
            _ => false,
        };
        if !wants_line {
            prompted = None;
            continue;
        }
        if prompted.as_ref() != Some(&action) {
            prompt(station, &action, out);
            prompted = Some(action.clone());
        }
        if cancelled {
            continue;
        }
        // The next line is the answer; the station is pumped while waiting.
        select! {
            recv(held.input) -> line => if let Ok(line) = line {
                answer(station, &action, line.trim(), out);
            } else {
                // End of input: cancel (the previous values go back), then leave.
                out.line("event: end of input during calibration: cancelling");
                station.calibration_cancel();
                cancelled = true;
                flow = Flow::Quit;
            },
            default(Duration::from_millis(20)) => {},
        }
    }
}

fn prompt(station: &Station, action: &Action, out: &mut Printer) {
    let Some(run) = station.calibration_run() else {
        return;
    };
    match action {
        Action::Reading(r) => {
            let stage = match r.stage {
                Stage::Fit => "fit",
                Stage::Verify => "verify",
            };
            let what = match run.procedure().kind() {
                CalibrationKind::Depth => {
                    format!("pen at {} µm; type the gauge reading in µm", r.target)
                }
                CalibrationKind::Speed => format!(
                    "pen turning at {} rpm (needle retracted); type the tachometer reading in rpm",
                    r.target
                ),
            };
            out.line(&format!(
                "cal: reading {stage} {}/{}: {what}, or cancel",
                r.point, r.of
            ));
        }
        Action::Review => {
            let p = run.procedure();
            if let Some(fit) = p.depth_fit() {
                out.line(&format!(
                    "cal: fit p = (1 + g)·r + o: g = {} ppm, o = {} µm, R² = {:.6}, largest residual {:.1} µm",
                    fit.gain_ppm, fit.offset_um, fit.r_squared, fit.max_abs_residual_um
                ));
                for ((target, reading), residual) in p.fit_points().iter().zip(&fit.residuals_um) {
                    out.line(&format!(
                        "cal: point commanded {target} µm, measured {reading} µm, residual {residual:+.1} µm"
                    ));
                }
            }
            if let Some(fit) = p.speed_fit() {
                out.line(&format!(
                    "cal: fit tach = (1 + s)·setpoint: s = {} ppm, largest residual {:.2} %",
                    fit.gain_ppm, fit.max_abs_residual_pct
                ));
                for ((target, reading), residual) in p.fit_points().iter().zip(&fit.residuals_pct) {
                    out.line(&format!(
                        "cal: point setpoint {target} rpm, measured {reading} rpm, residual {residual:+.2} %"
                    ));
                }
            }
            out.line("cal: write this fit to the pen? yes, or cancel");
        }
        _ => {}
    }
}

fn answer(station: &mut Station, action: &Action, line: &str, out: &mut Printer) {
    match (action, line) {
        (_, "cancel") => station.calibration_cancel(),
        (Action::Review, "yes") => station.calibration_accept(),
        (Action::Review, _) => {
            // Not repeated: a line typed here may hold a PIN.
            out.line("error: not an answer: answer yes or cancel");
            prompt(station, action, out);
        }
        (Action::Reading(_), text) => {
            // A refused reading is printed by the loop (the run keeps its reason).
            let _ = station.calibration_reading(text);
        }
        _ => {}
    }
}

fn finish(station: &mut Station, kind: CalibrationKind, out: &mut Printer) {
    let Some(run) = station.calibration_run() else {
        return;
    };
    let files = match run.certificate() {
        Some(Ok((json, html))) => format!("certificate {} {}", json.display(), html.display()),
        Some(Err(e)) => format!("the certificate could not be written: {e}"),
        None => String::new(),
    };
    let procedure = run.procedure();
    if procedure.passed() {
        out.line(&format!(
            "ok: {} calibration passed; {files}",
            kind.as_str()
        ));
    } else {
        out.line(&format!(
            "refused: {} calibration failed: {}; {files}",
            kind.as_str(),
            procedure.reasons().join("; ")
        ));
    }
    station.dismiss_calibration();
}
