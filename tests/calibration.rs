//! Bench calibration through the real binary: `punctum console` with its technician
//! commands, against the simulated pen (hidden errors chosen per test) on a real pty.
//! Readings are typed on stdin, read off the simulated bench as a technician reads a
//! gauge or a tachometer.

mod common;

use std::path::Path;
use std::time::Instant;

use common::console::*;
use common::*;
use punctum::calibration::certificate::{self, PreviousFate};
use punctum::calibration::verify::mirror;
use punctum::protocol::Calibration;
use punctum::safety::interlock::yyyymmdd;
use punctum::sim::{HiddenErrors, PenConfig, SimConfig, SimPen};

fn previous() -> Calibration {
    Calibration {
        depth_offset_um: 5,
        depth_gain_ppm: 1000,
        speed_gain_ppm: -300,
        date: yyyymmdd(
            jiff::Zoned::now()
                .date()
                .saturating_sub(jiff::Span::new().days(100)),
        ),
        tech: "OLD".into(),
    }
}

/// A simulated pen with hidden errors, calibrated `previous()`.
fn pen(depth_gain_ppm: i32, depth_offset_um: i32, speed_gain_ppm: i32) -> SimPen {
    sim(SimConfig {
        pen: PenConfig {
            hidden: HiddenErrors {
                depth_gain_ppm,
                depth_offset_um,
                speed_gain_ppm,
            },
            ..PenConfig::default()
        },
        initial_calibration: Some(previous()),
        ..SimConfig::default()
    })
}

/// A console in technician mode as `Ana-B` (stored on the pen), signed in as the
/// tests' account (a technician among its roles), its PIN again.
fn technician_console(pen: &SimPen, data: &Path) -> Console {
    let mut console = Console::start(&pen.port_path(), data);
    console.expect("event: link connected", "");
    let entered = console.run(&format!("technician Ana-B {PIN}"));
    assert_eq!(entered, "ok: technician mode on (Ana-B)");
    console
}

/// The target in a `cal: reading ...` prompt: "pen at 1250 µm" / "turning at 6000 rpm".
fn prompt_target(prompt: &str) -> i32 {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    words
        .windows(2)
        .find_map(|w| match w {
            [n, "µm;" | "rpm"] => n.parse().ok(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no target in {prompt:?}"))
}

/// What the bench's gauge reads once the pen is at `target_um`.
fn gauge(pen: &SimPen, target_um: i32) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        // The simulated pen publishes its state every loop (about 20 ms): poll it.
        let stats = pen.stats();
        if !stats.depth_moving && (stats.reported_depth_um - target_um).abs() <= 2 {
            return stats.true_depth_um.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the pen never reached {target_um}: {stats:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// What the bench's tachometer reads (the console asks once the speed has held).
fn tach(pen: &SimPen) -> String {
    format!("{:.0}", pen.stats().true_rpm)
}

/// The certificate named in the console's final line.
fn certificate_of(line: &str) -> certificate::Certificate {
    let path = line
        .split_whitespace()
        .find(|w| Path::new(w).extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no certificate in {line:?}"));
    certificate::load(Path::new(path)).expect("the certificate loads")
}

#[test]
fn a_depth_calibration_typed_on_stdin_passes_and_places_every_depth_within_10_um() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen(30_000, -40, 0);
    let mut console = technician_console(&pen, dir.path());
    console.send("cal depth");
    let mut refused_once = false;
    for _ in 0..6 {
        let prompt = console.expect("cal: reading fit", "type the gauge reading in µm");
        if !refused_once {
            // Bad readings are refused with the reason; the point is asked again.
            for (bad, why) in [
                ("abc", "not a number"),
                ("-5", "negative"),
                ("9000", "above"),
            ] {
                console.send(bad);
                console.expect("refused:", why);
                console.expect("cal: reading fit 1/6", "");
            }
            refused_once = true;
        }
        console.send(&gauge(&pen, prompt_target(&prompt)));
    }
    let fit = console.expect("cal: fit p = (1 + g)·r + o", "");
    let gain_ppm: i32 = fit
        .split("g = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no gain in {fit:?}"));
    // Gauge readings are whole µm, so the estimate is near, not exactly, +3 %.
    assert!((gain_ppm - 30_000).abs() <= 500, "{fit}");
    console.expect("cal: point commanded 2500 µm", "residual");
    console.expect("cal: write this fit to the pen?", "");
    console.send("yes");
    for _ in 0..3 {
        let prompt = console.expect("cal: reading verify", "");
        console.send(&gauge(&pen, prompt_target(&prompt)));
    }
    let done = console.expect("ok: depth calibration passed", "certificate");
    let c = certificate_of(&done);
    assert!(c.passed, "{c:?}");
    assert_eq!(c.technician, "Ana-B");
    assert_eq!(c.previous, previous());
    assert_eq!(c.previous_fate, PreviousFate::Replaced);
    assert!(c.readings_from.contains("gauge"), "{}", c.readings_from);
    let written = c.written.expect("written");
    assert_eq!(written.date, yyyymmdd(jiff::Zoned::now().date()));
    assert_eq!(written.speed_gain_ppm, previous().speed_gain_ppm);
    for target in (250..=2500).step_by(50) {
        let target = f64::from(target);
        let read = mirror::gauge_reading_um(30_000, -40, &written, target);
        assert!((read - target).abs() <= 10.0, "{target} µm gauges {read}");
    }
    console.send("status");
    let status = console.expect("status:", "");
    assert!(status.contains("technician=Ana-B"), "{status}");
    assert!(status.contains("calibration=\"Valid until"), "{status}");
    let (exit, _) = console.finish();
    assert!(exit.success());
}

#[test]
fn a_speed_calibration_typed_on_stdin_passes_within_1_percent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen(0, 0, 20_000);
    let mut console = technician_console(&pen, dir.path());
    console.send("cal speed");
    for _ in 0..3 {
        console.expect("cal: reading fit", "needle retracted");
        console.send(&tach(&pen));
    }
    let fit = console.expect("cal: fit tach = (1 + s)·setpoint", "");
    assert!(fit.contains("s = 19") || fit.contains("s = 20"), "{fit}");
    console.expect("cal: write this fit to the pen?", "");
    console.send("yes");
    for _ in 0..3 {
        console.expect("cal: reading verify", "");
        console.send(&tach(&pen));
    }
    let done = console.expect("ok: speed calibration passed", "");
    let c = certificate_of(&done);
    assert!(c.passed);
    console.finish();
}

#[test]
fn operators_cannot_calibrate_and_a_wrong_pin_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen(0, 0, 0);
    let mut console = Console::start(&pen.port_path(), dir.path());
    console.expect("event: link connected", "");
    let refused = console.run("cal depth sim");
    assert!(refused.contains("needs technician mode"), "{refused}");
    // A practitioner-only account cannot enter technician mode, whatever its PIN.
    assert_eq!(
        console.run("account add Pat practitioner 73910462 Pat Lee"),
        "ok: account Pat created (practitioner)"
    );
    assert!(console.run("lock").starts_with("ok: station locked"));
    console.sign_in("Pat", "73910462");
    let refused = console.run("technician Pat 73910462");
    assert!(refused.contains("Pat is not a technician"), "{refused}");
    console.sign_in(ACCOUNT, PIN);
    let refused = console.run("technician Ana-B 111222");
    assert!(
        refused.contains("wrong PIN or password for P-7 (4 tries left"),
        "{refused}"
    );
    let refused = console.run("technician set-pin 135790");
    assert!(refused.contains("an account's PIN now"), "{refused}");
    // The accounts file holds a hash, never the PIN.
    let stored = std::fs::read_to_string(dir.path().join("accounts.json")).expect("accounts");
    assert!(
        !stored.contains(PIN) && stored.contains("$argon2id$"),
        "{stored}"
    );
    console.finish();
}

#[test]
fn a_broken_pen_is_refused_and_keeps_its_previous_calibration() {
    let dir = tempfile::tempdir().expect("temp dir");
    // +8 % gain: beyond the protocol's ±5 %.
    let pen = pen(80_000, 0, 0);
    let mut console = technician_console(&pen, dir.path());
    let failed = console.run("cal depth sim");
    assert!(
        failed.starts_with("refused: depth calibration failed"),
        "{failed}"
    );
    assert!(failed.contains("broken"), "{failed}");
    let c = certificate_of(&failed);
    assert!(!c.passed);
    assert_eq!(c.previous_fate, PreviousFate::Restored);
    // Written back and read back by the station: the pen is as it was.
    let seen = console.seen.join("\n");
    assert!(
        seen.contains("cal: previous calibration restored and read back"),
        "{seen}"
    );
    console.send("status");
    let status = console.expect("status:", "");
    assert!(status.contains("calibration=\"Valid until"), "{status}");
    console.finish();
}

#[test]
fn end_of_input_mid_calibration_writes_the_previous_values_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen(30_000, -40, 0);
    let mut console = technician_console(&pen, dir.path());
    console.send("cal depth");
    let prompt = console.expect("cal: reading fit 1/6", "");
    console.send(&gauge(&pen, prompt_target(&prompt)));
    console.expect("cal: reading fit 2/6", "");
    let (exit, lines) = console.finish();
    assert!(exit.success());
    let all = lines.join("\n");
    assert!(all.contains("cancelled by the technician"), "{all}");
    assert!(
        all.contains("previous calibration restored and read back"),
        "{all}"
    );
    assert!(all.contains("refused: depth calibration failed"), "{all}");
}

#[test]
fn the_station_warns_30_days_before_the_calibration_falls_due() {
    let today = jiff::Zoned::now().date();
    let ago = |days: i64| yyyymmdd(today.saturating_sub(jiff::Span::new().days(days)));
    // 340 days old: valid for 25 more days (365 in all), so due soon.
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen_calibrated_on(dir.path(), ago(340), None);
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    let raised = console.expect("alarm: raised low calibration_due", "due in 25 days");
    assert!(raised.contains("valid until"), "{raised}");
    console.send("status");
    let status = console.expect("status:", "");
    assert!(status.contains("calibration=\"Due soon"), "{status}");
    assert!(status.contains("(25 days left)"), "{status}");
    drop(console.finish());

    // 300 days old: 65 days left, no warning.
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen_calibrated_on(dir.path(), ago(300), None);
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    console.expect("event: link connected", "");
    console.send("status");
    let status = console.expect("status:", "");
    assert!(status.contains("calibration=\"Valid until"), "{status}");
    assert!(status.contains("(65 days left)"), "{status}");
    let (_, lines) = console.finish();
    assert!(
        !lines.iter().any(|l| l.contains("calibration_due")),
        "{lines:?}"
    );
}
