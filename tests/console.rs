//! `punctum console` driven through stdin, as a bench script would, against the
//! simulated pen over a real pty. The pen's journal is the proof of what reached it.

mod common;

use std::io::Write as _;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use common::console::*;
use common::*;
use punctum::protocol::Command;
use punctum::safety::interlock::yyyymmdd;
use punctum::sim::{Journaled, SimAction, SimPen};

/// The depths the pen executed, in order. Every connection begins with the station's
/// own `DEPTH 0` (the pen keeps a depth across `HELLO`): it comes first.
fn pen_depths(pen: &SimPen) -> Vec<i64> {
    executed(pen)
        .into_iter()
        .filter_map(|(_, c)| match c {
            Command::Depth { depth_um } => Some(depth_um),
            _ => None,
        })
        .collect()
}

#[test]
fn over_limit_depths_are_refused_and_never_reach_the_pen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert!(
        console.run("depth 0.3").starts_with("refused:"),
        "no zone yet"
    );
    assert_eq!(console.run("zone periorbital"), "ok");
    let refused = console.run("depth 0.35");
    assert!(
        refused.starts_with("refused:") && refused.contains("periorbital"),
        "{refused}"
    );
    // Latching: still active from the first refusal, until acknowledged.
    console.send("alarms");
    console.expect("status: alarm=depth_refused", "priority=medium");
    assert_eq!(console.run("depth 0.3"), "ok");
    assert!(console.run("depth 2.6").starts_with("refused:"));
    assert!(console.run("depth lots").starts_with("error:"));
    let (status, _) = console.finish();
    assert!(status.success());
    assert_eq!(
        pen_depths(&pen),
        [0, 300],
        "the pen saw only the retraction at connection and the allowed depth"
    );
}

#[test]
fn selecting_a_lower_zone_lowers_the_depth_first_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert_eq!(console.run("zone cheeks"), "ok");
    assert_eq!(console.run("depth 1.0"), "ok");
    assert_eq!(console.run("start"), "ok");
    // The needle runs at 1.00 mm: never around the eyes, not even while it stops.
    let refused = console.run("zone periorbital");
    assert!(
        refused.contains("the needle is running at 1.00 mm")
            && refused.contains("stop the needle")
            && refused.contains("(needle_above_limit)"),
        "{refused}"
    );
    // A zone the needle is within: halted first.
    assert_eq!(console.run("zone body"), "ok");
    let event = console.expect("event: zone body", "");
    assert!(event.contains("halted first"), "{event}");
    // Stopped: the eyes now, the depth lowered first.
    console.wait_idle();
    assert_eq!(console.run("zone periorbital"), "ok");
    let event = console.expect("event: zone periorbital", "");
    assert!(
        !event.contains("halted first") && event.contains("lowered from 1.00 mm to 0.30 mm"),
        "{event}"
    );
    drop(console.finish());
    assert_eq!(pen_depths(&pen), [0, 1000, 300]);
    let order: Vec<Command> = executed(&pen)
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| matches!(c, Command::Halt | Command::Depth { .. } | Command::Run))
        .collect();
    assert_eq!(
        &order[..5],
        [
            Command::Depth { depth_um: 0 },
            Command::Depth { depth_um: 1000 },
            Command::Run,
            Command::Halt,
            Command::Depth { depth_um: 300 }
        ]
    );
}

#[test]
fn estop_latches_until_the_operator_resets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert_eq!(console.run("zone cheeks"), "ok");
    assert_eq!(console.run("depth 0.5"), "ok");
    assert_eq!(console.run("start"), "ok");
    assert_eq!(console.run("estop"), "ok");
    console.expect("alarm: raised high estop", "");
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    // Until the pen confirms, the link refuses everything anyway ("an E-stop is
    // being confirmed"); the latch is what holds after that.
    console.expect("event: the pen confirmed the E-stop", "");
    let refused = console.run("start");
    assert!(refused.contains("latched"), "{refused}");
    assert!(console.run("ack estop").starts_with("ok"));
    assert_eq!(console.run("reset"), "ok");
    assert_eq!(console.run("start"), "ok");
    console.send("status");
    let status = console.expect("status:", "latched=none");
    assert!(
        status.contains("zone=cheeks") && status.contains("pen_state="),
        "{status}"
    );
    drop(console.finish());
}

#[test]
fn a_lost_link_raises_link_lost_and_nothing_restarts_on_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("pen");
    let today = yyyymmdd(jiff::Zoned::now().date());
    let pen = pen_calibrated_on(dir.path(), today, Some(link.clone()));
    let mut console = Console::start(&link, &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert_eq!(console.run("zone forehead"), "ok");
    assert_eq!(console.run("start"), "ok");
    pen.act(SimAction::Disappear { duration: None })
        .expect("pen running");
    let started = Instant::now();
    console.expect("alarm: raised high link_lost", "");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The last sample (a running needle) is not shown as the pen now.
    console.send("status");
    let status = console.expect("status:", "");
    assert!(
        status.contains("pen_state=- ") && status.contains("rpm=- "),
        "{status}"
    );
    pen.act(SimAction::Reappear).expect("pen running");
    console.expect("event: link connected", "");
    let refused = console.run("start");
    assert!(
        refused.contains("latched") && refused.contains("link loss"),
        "{refused}"
    );
    assert_eq!(console.run("reset"), "ok");
    assert_eq!(console.run("start"), "ok");
    drop(console.finish());
}

#[test]
fn a_used_cartridge_is_refused_in_a_second_session_even_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut first = Console::start(&pen.port_path(), &data);
    open_session(&mut first, dir.path(), "C-0001");
    assert_eq!(first.run("zone cheeks"), "ok");
    assert_eq!(first.run("start"), "ok");
    assert_eq!(first.run("stop"), "ok");
    first.send("end");
    first.expect("aftercare: next session", "");
    let (status, lines) = first.finish();
    assert!(status.success(), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("summary: zone=cheeks passes=1")),
        "{lines:?}"
    );

    // A new console process: the registry survived in the data folder.
    let mut second = Console::start(&pen.port_path(), &data);
    open_session(&mut second, dir.path(), "C-0002");
    assert_eq!(second.run("zone forehead"), "ok");
    let refused = second.run("start");
    assert!(
        refused.contains("cartridge") && refused.contains("used"),
        "{refused}"
    );
    drop(second.finish());
}

#[test]
fn an_overdue_calibration_refuses_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen_calibrated_on(dir.path(), yyyymmdd(jiff::civil::date(2024, 1, 15)), None);
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert!(
        console
            .seen
            .iter()
            .any(|l| l.starts_with("alarm: raised low calibration_due")),
        "{:?}",
        console.seen
    );
    assert_eq!(console.run("zone cheeks"), "ok");
    let refused = console.run("start");
    assert!(refused.contains("calibration"), "{refused}");
    drop(console.finish());
    assert!(!executed(&pen).iter().any(|(_, c)| *c == Command::Run));
}

#[test]
fn a_do_not_treat_answer_refuses_the_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    console.expect("event: link connected", "");
    let path = screening_file(dir.path(), "C-0009");
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("\"bleeding_disorder\":false", "\"bleeding_disorder\":true");
    std::fs::write(&path, text).expect("write");
    let refused = console.run(&format!("session {}", path.display()));
    assert!(
        refused.starts_with("refused: screening") && refused.contains("bleeding"),
        "{refused}"
    );
    assert!(console.run("start").starts_with("refused:"));
    assert!(
        console
            .run("session /no/such/file.json")
            .starts_with("error:")
    );
    assert!(console.run("fly away").starts_with("error:"));
    drop(console.finish());
}

#[test]
fn end_of_input_quits_and_halts_the_pen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert_eq!(console.run("zone cheeks"), "ok");
    assert_eq!(console.run("start"), "ok");
    let (status, lines) = console.finish();
    assert!(status.success(), "{lines:?}");
    assert!(lines.iter().any(|l| l == "event: pen halted"), "{lines:?}");
    let last_run_or_halt = executed(&pen)
        .into_iter()
        .map(|(_, c)| c)
        .rfind(|c| matches!(c, Command::Run | Command::Halt));
    assert_eq!(last_run_or_halt, Some(Command::Halt));
}

#[test]
fn a_clinic_table_is_enforced_and_its_limit_changes_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let table = punctum::safety::zones::ZoneTable::builtin()
        .with_limit(punctum::safety::zones::ZoneId::Cheeks, 800)
        .expect("under the ceiling");
    let table_path = dir.path().join("clinic-zones.json");
    std::fs::write(&table_path, table.to_json()).expect("write table");
    let pen = calibrated_pen(dir.path());
    ensure_accounts(&data);
    let mut child = Process::new(BIN)
        .arg("console")
        .arg("--port")
        .arg(pen.port_path())
        .arg("--data-dir")
        .arg(&data)
        .arg("--zones")
        .arg(&table_path)
        .args(["--operator", "T-3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("console starts");
    let screening = screening_file(dir.path(), "C-0042");
    let script = format!(
        "sign-in {ACCOUNT} {PIN}\nsession {}\nzone cheeks\ndepth 0.9\ndepth 0.8\nquit\n",
        screening.display()
    );
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .expect("script written");
    let out = child.wait_with_output().expect("console exits");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("event: zone limit changed: cheeks from 1.00 mm to 0.80 mm by T-3"),
        "{text}"
    );
    assert!(
        text.contains("refused: depth 0.90 mm refused: above the cheeks limit 0.80 mm"),
        "{text}"
    );
    let log = std::fs::read_to_string(data.join("zone-limit-changes.jsonl")).expect("limit log");
    assert!(
        log.contains("\"who\":\"T-3\"") && log.contains("\"new_limit_um\":800"),
        "{log}"
    );
    assert_eq!(pen_depths(&pen), [0, 800]);
    // Every alarm transition is in the log with its time.
    let alarms = std::fs::read_to_string(data.join("alarms.jsonl")).expect("alarm log");
    assert!(
        alarms.contains("depth_refused") && alarms.contains("\"at\":"),
        "{alarms}"
    );
}

#[test]
fn a_table_that_breaks_a_rule_is_refused_with_the_zone_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = punctum::safety::zones::ZoneTable::builtin()
        .to_json()
        .replacen(
            "\"protocol_limit_mm\": 0.3",
            "\"protocol_limit_mm\": 0.6",
            1,
        );
    assert!(text.contains("0.6"), "the table changed: {text}");
    let table_path = dir.path().join("bad-zones.json");
    std::fs::write(&table_path, text).expect("write table");
    let out = Process::new(BIN)
        .arg("console")
        .arg("--sim")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--zones")
        .arg(&table_path)
        .stdin(Stdio::null())
        .output()
        .expect("console runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("periorbital") && err.contains("protocol_limit_mm"),
        "{err}"
    );
    assert!(err.contains("no treatment"), "{err}");
}

#[test]
fn the_same_zone_is_refused_for_the_same_client_within_4_weeks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut first = Console::start(&pen.port_path(), &data);
    open_session(&mut first, dir.path(), "C-0042");
    assert_eq!(first.run("zone cheeks"), "ok");
    assert_eq!(first.run("start"), "ok");
    first.send("end");
    first.expect("aftercare: next session", "");
    drop(first.finish());

    let mut second = Console::start(&pen.port_path(), &data);
    open_session(&mut second, dir.path(), "C-0042");
    assert_eq!(second.run("zone cheeks"), "ok");
    let refused = second.run("start");
    assert!(
        refused.contains("zone_treated_recently") && refused.contains("cheeks"),
        "{refused}"
    );
    drop(second.finish());
}

#[test]
fn a_depth_over_1_5_mm_needs_the_caution_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = punctum::safety::zones::ZoneTable::builtin()
        .with_limit(punctum::safety::zones::ZoneId::Body, 2000)
        .expect("under the ceiling");
    let table_path = dir.path().join("clinic-zones.json");
    std::fs::write(&table_path, table.to_json()).expect("write table");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(
        dir.path().join("data").join("settings.json"),
        serde_json::json!({ "zones_file": table_path }).to_string(),
    )
    .expect("settings");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session(&mut console, dir.path(), "C-0042");
    assert_eq!(console.run("zone body"), "ok");
    let refused = console.run("depth 1.8");
    assert!(refused.contains("deep_caution"), "{refused}");
    console.expect("alarm: raised medium deep_caution", "");
    assert_eq!(console.run("ack deep_caution"), "ok");
    assert_eq!(console.run("depth 1.8"), "ok");
    assert_eq!(console.run("start"), "ok");
    drop(console.finish());
    assert_eq!(pen_depths(&pen), [0, 1800]);
}
