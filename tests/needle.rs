//! The needle decided on its measured state, through the real binary: `punctum
//! console` against simulated pens that journal every telemetry sample, so every
//! check is on the pen's own account of where the needle was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::console::{BIN, Console, open_session};
use common::*;
use punctum::protocol::{Command, PenState, Telemetry};
use punctum::safety::needle::REPORT_STEP_UM;
use punctum::sim::{Journaled, PhysicalFault, SimAction, SimConfig, SimPen};

/// The console at 1000 Hz telemetry on `port`, data in `data`.
fn console(port: &Path, data: &Path) -> Console {
    Console::start_with(port, data, "", &["--telemetry-hz", "1000"])
}

/// A journaling pen, the console at 1000 Hz on it, a session open for C-0042 and
/// `zone` selected: the temporary folder, the pen and the console.
fn treating(serial: &str, zone: &str) -> (tempfile::TempDir, SimPen, Console) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = journaling_pen(serial);
    let mut c = console(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut c, dir.path(), "C-0042");
    assert_eq!(c.run(&format!("zone {zone}")), "ok");
    (dir, pen, c)
}

/// A journaling pen on the real link at 1000 Hz, treating the cheeks, the needle seen
/// running.
fn running_on_link(serial: &str) -> (SimPen, punctum::link::Link) {
    let pen = journaling_pen(serial);
    let (link, _) = connect(link_config(&pen, 1000));
    prepare_treatment(&link, punctum::safety::zones::ZoneId::Cheeks);
    assert_eq!(
        request(&link, Command::Run).outcome,
        punctum::link::Outcome::Ack
    );
    wait_sample(&pen, 0, |t| t.state == PenState::Running);
    (pen, link)
}

/// Waits for the needle monitor's stop on `link`, and returns what it saw.
fn monitor_stop(link: &punctum::link::Link) -> punctum::safety::needle::Trip {
    let stopped = expect_event(link, "the monitor's stop", |e| {
        matches!(e, punctum::link::LinkEvent::NeedleStopped { .. })
    });
    let punctum::link::LinkEvent::NeedleStopped { trip, .. } = stopped else {
        unreachable!("matched above")
    };
    trip
}

/// The pen-side truth of one pass: the running samples after the pen executed the
/// `RUN` found from journal index `mark` on, until the needle stopped.
fn pass_after(pen: &SimPen, mark: u64) -> Vec<Telemetry> {
    let (entries, _) = pen.journal_since(mark);
    let mut started = false;
    let mut pass = Vec::new();
    for e in entries {
        match e.what {
            Journaled::Command {
                command: Some(Command::Run),
                answer: punctum::sim::Answer::Ack,
                duplicate: false,
                ..
            } => started = true,
            Journaled::Sample(t) if started && t.state == PenState::Running => pass.push(t),
            Journaled::Sample(_) if started && !pass.is_empty() => break,
            _ => {}
        }
    }
    pass
}

/// The depth of the last sample the pen sent before it executed the first `RUN` from
/// `mark` on: where the needle was when the station let it start.
fn depth_at_run(pen: &SimPen, mark: u64) -> i32 {
    let (entries, _) = pen.journal_since(mark);
    let mut last = None;
    for e in entries {
        match e.what {
            Journaled::Sample(t) => last = Some(t.depth_um),
            Journaled::Command {
                command: Some(Command::Run),
                duplicate: false,
                ..
            } => return last.expect("a sample before RUN"),
            _ => {}
        }
    }
    panic!("the pen never executed RUN");
}

/// Lets the needle run `ms` of pen time from its next running sample on.
fn run_for(pen: &SimPen, ms: u32) {
    let mark = pen.journal_mark();
    let first = wait_sample(pen, mark, |t| t.state == PenState::Running);
    wait_sample(pen, mark, |t| {
        t.state == PenState::Running && t.t_ms.wrapping_sub(first.t_ms) >= ms
    });
}

/// The record's `punctum report --json`, parsed.
fn report_json(record: &Path) -> serde_json::Value {
    let out = Process::new(BIN)
        .arg("report")
        .arg(record)
        .arg("--json")
        .output()
        .expect("report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

fn record_path(console: &Console) -> PathBuf {
    let line = console
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("summary: record="))
        .expect("the summary names its record");
    PathBuf::from(line)
}

fn zone_figure(report: &serde_json::Value, zone: &str, field: &str) -> i64 {
    report["zones"]
        .as_array()
        .expect("zones")
        .iter()
        .find(|z| z["zone"] == zone)
        .unwrap_or_else(|| panic!("{zone} in {report:#}"))[field]
        .as_i64()
        .expect("a number")
}

#[test]
fn a_zone_change_to_the_eyes_waits_for_the_needle_and_the_figures_agree() {
    let (_dir, pen, mut c) = treating("SIM-EYES", "body");
    assert_eq!(c.run("depth 1.5"), "ok");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen, 1000);
    // Around the eyes, not while the needle runs at 1.50 mm: stop first.
    let refused = c.run("zone periorbital");
    assert!(refused.contains("(needle_above_limit)"), "{refused}");
    let mark = pen.journal_mark();
    assert_eq!(c.run("stop"), "ok");
    c.wait_idle();
    assert_eq!(c.run("zone periorbital"), "ok");
    assert_eq!(c.run("depth 0.3"), "ok");
    let started = c.run("start");
    assert_eq!(started, "ok", "{:#?}", c.seen);
    // The pen's own account: RUN went out only once the needle was at 0.30 mm.
    let at_run = depth_at_run(&pen, mark);
    assert!(at_run <= 300 + REPORT_STEP_UM, "RUN at {at_run} µm");
    run_for(&pen, 200);
    let pass = pass_after(&pen, mark);
    assert!(!pass.is_empty());
    let deepest = pass.iter().map(|t| t.depth_um).max().unwrap_or_default();
    assert!(
        deepest <= 300 + REPORT_STEP_UM,
        "{deepest} µm around the eyes"
    );
    // The operator was told why it waited, unless the needle was there already.
    if at_run < 1500 && c.seen.iter().any(|l| l.contains("starting when")) {
        assert!(
            c.seen
                .iter()
                .any(|l| l.starts_with("event: starting when the needle reaches 0.30 mm (now ")),
            "{:#?}",
            c.seen
        );
    }
    // A stop and a start back to back, then the summary against the report.
    assert_eq!(c.run("zone forehead"), "ok");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen, 200);
    c.send("end");
    let summary = c.expect("summary: zone=periorbital", "");
    assert!(summary.contains("max_depth_mm=0.30"), "{summary}");
    c.expect("aftercare: next session", "");
    let record = record_path(&c);
    drop(c.finish());
    let report = report_json(&record);
    assert_eq!(
        report["disagreements"],
        serde_json::json!([]),
        "the report recomputes the station's own summary: {report:#}"
    );
    assert!(zone_figure(&report, "periorbital", "max_depth_um") <= 300);
    assert!(zone_figure(&report, "forehead", "needling_ms") >= 150);
    assert_eq!(zone_figure(&report, "body", "max_depth_um"), 1500);
}

#[test]
fn a_pen_left_deep_by_an_earlier_station_is_retracted_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = journaling_pen("SIM-LEFT");
    // Station A leaves the pen at 1.00 mm and goes.
    let mut a = console(&pen.port_path(), &data);
    open_session(&mut a, dir.path(), "C-0001");
    assert_eq!(a.run("zone body"), "ok");
    assert_eq!(a.run("depth 1.0"), "ok");
    wait_sample(&pen, 0, |t| t.depth_um == 1000);
    drop(a.finish());
    // Station B (or A restarted): periorbital, start, no depth given.
    let mark = pen.journal_mark();
    let mut b = console(&pen.port_path(), &data);
    open_session(&mut b, dir.path(), "C-0002");
    assert_eq!(b.run("zone periorbital"), "ok");
    b.send("status");
    let status = b.expect("status:", "");
    assert!(status.contains("depth_target_mm=0.00"), "{status}");
    assert_eq!(b.run("start"), "ok");
    run_for(&pen, 200);
    let at_run = depth_at_run(&pen, mark);
    assert!(
        at_run <= REPORT_STEP_UM,
        "RUN with the needle at {at_run} µm"
    );
    let deepest = pass_after(&pen, mark)
        .iter()
        .map(|t| t.depth_um)
        .max()
        .unwrap_or_default();
    assert!(
        deepest <= 300 + REPORT_STEP_UM,
        "{deepest} µm around the eyes"
    );
    drop(b.finish());
}

#[test]
fn a_pen_swapped_mid_session_is_a_new_pen_that_waits_for_the_operator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen_a = journaling_pen("SIM-A");
    let pen_b = journaling_pen("SIM-B");
    // A technician left pen B at 2.00 mm on the bench.
    leave_deep(&pen_b, 2000);
    let cable = dir.path().join("pen");
    repoint(&cable, &pen_a.slave_path());
    let mut c = console(&cable, &dir.path().join("data"));
    open_session(&mut c, dir.path(), "C-0042");
    assert_eq!(c.run("zone cheeks"), "ok");
    assert_eq!(c.run("depth 0.5"), "ok");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen_a, 100);
    // The cable moves to pen B.
    let mark = pen_b.journal_mark();
    repoint(&cable, &pen_b.slave_path());
    pen_a
        .act(SimAction::Disappear { duration: None })
        .expect("pen A alive");
    c.expect("event: a different pen answered", "SIM-A before, SIM-B now");
    c.expect("alarm: raised medium pen_changed", "");
    let refused = c.run("start");
    assert!(
        refused.contains("change of pen") && refused.contains("(latched)"),
        "{refused}"
    );
    assert_eq!(c.run("reset"), "ok");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen_b, 100);
    // Pen B was retracted at connection and ran within the cheeks' limit.
    let deepest = pass_after(&pen_b, mark)
        .iter()
        .map(|t| t.depth_um)
        .max()
        .unwrap_or_default();
    assert!(
        deepest <= 1000 + REPORT_STEP_UM,
        "{deepest} µm in the cheeks"
    );
    assert!(depth_at_run(&pen_b, mark) <= REPORT_STEP_UM);
    drop(c.finish());
}

#[test]
fn the_needle_monitor_stops_a_needle_that_slips_deeper_and_it_is_on_record() {
    let (_dir, pen, mut c) = treating("SIM-SLIP", "periorbital");
    assert_eq!(c.run("depth 0.3"), "ok");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen, 50);
    let mark = pen.journal_mark();
    pen.act(SimAction::InjectFault(PhysicalFault::DepthCreep))
        .expect("pen alive");
    let alarm = c.expect("alarm: raised high depth_over_limit", "");
    assert!(
        alarm.contains("above the periorbital limit 0.30 mm"),
        "{alarm}"
    );
    // The E-stop byte reached the pen, and after it the needle ran no more.
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    journal_wait(
        &pen,
        "the pen in ESTOP",
        |e| matches!(e.what, Journaled::Sample(t) if t.state == PenState::Estop),
    );
    let (after, _) = pen.journal_since(mark);
    let byte_at = after
        .iter()
        .position(|e| matches!(e.what, Journaled::EstopByte))
        .expect("the byte");
    assert!(
        !after[byte_at..]
            .iter()
            .any(|e| matches!(e.what, Journaled::Sample(t) if t.state == PenState::Running)),
        "the needle ran after the E-stop byte"
    );
    // The station stopped it on the very first sample deeper than the limit allows.
    let first_over = after
        .iter()
        .find_map(|e| match e.what {
            Journaled::Sample(t)
                if t.state == PenState::Running && t.depth_um > 300 + REPORT_STEP_UM =>
            {
                Some(t)
            }
            _ => None,
        })
        .expect("a sample over the limit");
    let refused = c.run("start");
    assert!(refused.contains("needle monitor stop"), "{refused}");
    // The E-stop the station sent is not taken for a pen found stopped.
    assert!(
        !c.seen.iter().any(|l| l.contains("found in ESTOP")),
        "{:#?}",
        c.seen
    );
    c.send("end");
    c.expect("aftercare: next session", "");
    let record = record_path(&c);
    drop(c.finish());
    let text = std::fs::read_to_string(&record).expect("record");
    let monitor: serde_json::Value = text
        .lines()
        .find(|l| l.contains(r#""type":"monitor""#))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .expect("the stop is on record");
    assert_eq!(monitor["rule"], "depth_over_limit");
    assert_eq!(monitor["zone"], "periorbital");
    assert_eq!(
        (monitor["depth_um"].as_i64(), monitor["t_ms"].as_u64()),
        (
            Some(i64::from(first_over.depth_um)),
            Some(u64::from(first_over.t_ms))
        ),
        "tripped on the first sample over the limit"
    );
    let report = report_json(&record);
    assert_eq!(report["disagreements"], serde_json::json!([]), "{report:#}");
    assert!(
        report["interruptions"]
            .as_array()
            .expect("interruptions")
            .iter()
            .any(|i| i["kind"] == "needle_stopped"),
        "{report:#}"
    );
}

#[test]
fn a_pen_that_starts_by_itself_or_overspeeds_is_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (fault, alarm) in [
        (PhysicalFault::Runaway, "alarm: raised high unexpected_run"),
        (PhysicalFault::Overspeed, "alarm: raised medium overspeed"),
    ] {
        let pen = journaling_pen("SIM-FAULT");
        let data = dir.path().join(format!("data-{fault}"));
        let mut c = console(&pen.port_path(), &data);
        open_session(&mut c, dir.path(), "C-0042");
        assert_eq!(c.run("zone cheeks"), "ok");
        if fault == PhysicalFault::Overspeed {
            assert_eq!(c.run("speed 6000"), "ok");
            assert_eq!(c.run("start"), "ok");
            run_for(&pen, 300);
        }
        pen.act(SimAction::InjectFault(fault)).expect("pen alive");
        c.expect(alarm, "");
        journal_wait(&pen, "the E-stop byte", |e| {
            matches!(e.what, Journaled::EstopByte)
        });
        // The pen is stopped: its own telemetry shows ESTOP.
        journal_wait(
            &pen,
            "the pen in ESTOP",
            |e| matches!(e.what, Journaled::Sample(t) if t.state == PenState::Estop),
        );
        drop(c.finish());
    }
}

#[test]
fn a_needle_stuck_off_its_target_while_running_is_stopped() {
    let (_dir, pen, mut c) = treating("SIM-JAM", "cheeks");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen, 50);
    pen.act(SimAction::InjectFault(PhysicalFault::DepthJam))
        .expect("pen alive");
    assert_eq!(c.run("depth 0.8"), "ok");
    // 160 ms of travel, 250 ms of grace and 100 ms off target: the monitor acts before
    // the pen's own FAULT DEPTH at 1 s.
    c.expect("alarm: raised medium depth_off_target", "");
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    assert!(
        !pen.journal().iter().any(|e| matches!(
            e.what,
            Journaled::Event(punctum::protocol::PenEvent::Fault(_))
        )),
        "the station stopped it first"
    );
    drop(c.finish());
}

#[test]
fn a_start_with_telemetry_off_is_refused_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = sim(SimConfig::default());
    let mut c = Console::start_with(
        &pen.port_path(),
        &dir.path().join("data"),
        "",
        &["--telemetry-hz", "0"],
    );
    open_session(&mut c, dir.path(), "C-0042");
    assert_eq!(c.run("zone cheeks"), "ok");
    let refused = c.run("start");
    assert!(
        refused.contains("telemetry is off") && refused.contains("telemetry_off"),
        "{refused}"
    );
    assert!(!executed(&pen).iter().any(|(_, c)| *c == Command::Run));
    drop(c.finish());
}

#[test]
fn a_pen_that_stops_reporting_while_running_is_stopped_and_the_link_reconnects() {
    let (pen, link) = running_on_link("SIM-QUIET");
    // The pen stops reporting (as a second host's `TEL 0` or a firmware fault would
    // leave it) and still answers the station's heartbeats: lines, but no samples.
    pen.act(SimAction::TelemetryRate(0)).expect("pen alive");
    let trip = monitor_stop(&link);
    assert_eq!(
        trip.rule,
        punctum::safety::needle::MonitorRule::TelemetryLost
    );
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    // No samples for the silence limit: the link starts again and asks for them.
    expect_event(&link, "the loss", |e| {
        matches!(
            e,
            punctum::link::LinkEvent::State(punctum::link::LinkState::Lost(
                punctum::link::LossReason::TelemetryStopped
            ))
        )
    });
    wait_connected(&link);
    let mark = pen.journal_mark();
    wait_sample(&pen, mark, |t| t.state == PenState::Estop);
}

#[test]
fn estop_or_stop_typed_while_a_start_is_held_cancels_it() {
    for word in ["estop", "stop"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let pen = journaling_pen("SIM-HOLD");
        let mut c = console(&pen.port_path(), &dir.path().join("data"));
        open_session(&mut c, dir.path(), "C-0042");
        assert_eq!(c.run("zone body"), "ok");
        // From 0 to 1.50 mm takes 300 ms: the start waits, and the word comes at once.
        assert_eq!(c.run("depth 1.5"), "ok");
        c.send("start");
        c.send(word);
        let start = c.expect_result();
        assert!(
            start.starts_with("refused: RUN not sent: cancelled by"),
            "{word}: {start}"
        );
        assert_eq!(c.expect_result(), "ok", "{word}");
        assert!(
            !executed(&pen).iter().any(|(_, c)| *c == Command::Run),
            "{word}: RUN reached the pen"
        );
        drop(c.finish());
    }
}

#[test]
fn a_pen_reboot_in_a_session_leaves_the_report_agreeing_with_the_summary() {
    let (_dir, pen, mut c) = treating("SIM-BOOT", "cheeks");
    assert_eq!(c.run("start"), "ok");
    run_for(&pen, 50);
    pen.act(SimAction::Reboot(punctum::protocol::BootReason::Brownout))
        .expect("pen alive");
    c.expect("event: link connected", "");
    assert_eq!(c.run("reset"), "ok");
    c.send("end");
    let summary = c.expect("summary: session=", "");
    assert!(summary.contains("interruptions=1"), "{summary}");
    c.expect("aftercare: next session", "");
    let record = record_path(&c);
    drop(c.finish());
    let report = report_json(&record);
    assert_eq!(report["disagreements"], serde_json::json!([]), "{report:#}");
}

#[test]
fn a_pen_reporting_more_slowly_than_asked_is_stopped_and_asked_again() {
    let (pen, link) = running_on_link("SIM-SLOW");
    // Another program (or the firmware) slows the pen to 20 Hz: a sample every 50 ms,
    // in which a slipping needle travels 250 µm.
    let mark = pen.journal_mark();
    pen.act(SimAction::TelemetryRate(20)).expect("pen alive");
    let trip = monitor_stop(&link);
    assert_eq!(
        trip.rule,
        punctum::safety::needle::MonitorRule::TelemetryLost
    );
    assert!(
        trip.message.contains("not at the 1000 Hz asked"),
        "{}",
        trip.message
    );
    // The link asks for the rate again; the pen reports at 1000 Hz once more.
    pen.wait_for_since(mark, DEADLINE, |e| {
        matches!(
            e.what,
            Journaled::Command {
                command: Some(Command::Tel { hz: 1000 }),
                ..
            }
        )
    })
    .expect("TEL 1000 asked again");
    let after = pen.journal_mark();
    let first = wait_sample(&pen, after, |_| true);
    wait_sample(&pen, after, |t| {
        t.n == first.n + 1 && t.t_ms == first.t_ms + 1
    });
}
