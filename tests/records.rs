//! Session records written by the real console against the simulated pen: what a
//! record holds, that every line validates against the published schema, and that
//! nothing is lost or goes on unrecorded when the process dies or the disk fills.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::console::*;
use common::*;
use punctum::protocol::{Command, FaultCode, PenEvent};
use punctum::record::Line;
use punctum::sim::Journaled;

/// The records in a data folder's `sessions/`, sorted by name.
fn records(data: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data.join("sessions")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
}

/// The one record in `data`.
fn the_record(data: &Path) -> PathBuf {
    let found = records(data);
    assert_eq!(found.len(), 1, "one record expected: {found:?}");
    found.into_iter().next().expect("one")
}

/// Every complete line of the file, parsed; a torn last line (no newline) is left out.
fn read_lines(path: &Path) -> Vec<Line> {
    let bytes = std::fs::read(path).expect("read the record");
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[][..],
    };
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "line {} is not a record line: {e}: {}",
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// Waits until the record's complete lines satisfy `pred` (it is flushed as it goes).
fn wait_for_lines(path: &Path, what: &str, pred: impl Fn(&[Line]) -> bool) -> Vec<Line> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines = if path.exists() {
            read_lines(path)
        } else {
            Vec::new()
        };
        if pred(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "the record never showed {what} within {DEADLINE:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn running_samples(lines: &[Line]) -> usize {
    lines
        .iter()
        .filter(|l| matches!(l, Line::Tel(t) if t.state.as_str() == "RUNNING"))
        .count()
}

/// The schema, compiled.
fn schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/session.schema.json");
    let text = std::fs::read_to_string(path).expect("schema file");
    let value: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler
        .add_resource("session.schema.json", value)
        .expect("schema resource");
    let index = compiler
        .compile("session.schema.json", &mut schemas)
        .expect("the schema compiles");
    (schemas, index)
}

/// Validates every line of the file against the schema.
fn assert_valid(path: &Path) {
    let (schemas, index) = schema();
    let text = std::fs::read_to_string(path).expect("read");
    for (i, line) in text.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if let Err(e) = schemas.validate(&value, index) {
            panic!("line {} does not validate: {e:#}\n{line}", i + 1);
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one session, every kind of line, reads best whole
fn a_console_session_is_recorded_whole_and_every_line_validates_against_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session_unprepared(&mut console, dir.path(), "C-0042");
    let announced = console.expect("event: recording to", "");
    let path = the_record(&data);
    assert!(announced.ends_with(&*path.to_string_lossy()), "{announced}");
    // Every kind of step line, so each validates against the schema.
    let five_ago = jiff::Zoned::now()
        .checked_sub(jiff::Span::new().minutes(5))
        .expect("a time")
        .strftime("%H:%M")
        .to_string();
    let at_correction = format!("step correct 1 at {five_ago} because cleansed before");
    for step in [
        "step cleanse",
        r#"step numbing "EMLA 5%" L-1"#,
        "step numbing-removed",
        "step no-numbing test of the station",
        "step test-spot cheeks 0.5",
        "step serum HA S-1",
        "step cartridge-lot CL-1",
        "step correct 2 lot L-2 because mistyped",
        "step correct 5 void made on the wrong client",
        &at_correction,
    ] {
        let answer = console.run(step);
        assert!(answer.starts_with("ok: step"), "{step}: {answer}");
    }

    assert_eq!(console.run("zone cheeks"), "ok");
    assert!(console.run("depth 1.2").starts_with("refused:"));
    assert_eq!(console.run("depth 0.5"), "ok");
    assert_eq!(console.run("start"), "ok");
    wait_for_lines(&path, "running telemetry", |l| running_samples(l) >= 5);
    assert_eq!(console.run("note client comfortable, no bleeding"), "ok");
    assert_eq!(console.run("stop"), "ok");
    assert_eq!(console.run("ack all").split(':').next(), Some("ok"));
    console.send("end");
    let record_line = console.expect("summary: record=", "");
    assert!(record_line.ends_with(&*path.to_string_lossy()));
    drop(console.finish());

    // Named by date and client, private to the station's user.
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let today = jiff::Zoned::now().strftime("%Y-%m-%d").to_string();
    assert!(
        name.starts_with(&today) && name.ends_with("_C-0042.jsonl"),
        "{name}"
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_valid(&path);

    let lines = read_lines(&path);
    let Some(Line::Header(header)) = lines.first() else {
        panic!("the first line is not the header: {:?}", lines.first());
    };
    assert_eq!(header.client, "C-0042");
    assert_eq!(header.practitioner, "P-7");
    assert_eq!(header.version, punctum::record::FORMAT_VERSION);
    assert!(header.pen.as_ref().is_some_and(|p| !p.serial.is_empty()));
    assert!(header.calibration.is_some());
    assert_eq!(header.zones_hash.len(), 64);
    assert_eq!(header.screening["client"], "C-0042");
    let Some(Line::Summary(summary)) = lines.last() else {
        panic!("the last line is not the summary");
    };
    assert_eq!(summary.zones.len(), 1);
    assert_eq!(summary.zones[0].zone, "cheeks");
    assert_eq!(summary.zones[0].passes, 1);
    assert_eq!(summary.refusals, 1);
    assert!(summary.needling_ms > 0);
    assert_eq!(summary.cartridges.len(), 1);
    let tel = lines.iter().filter(|l| matches!(l, Line::Tel(_))).count();
    assert_eq!(summary.samples, u64::try_from(tel).expect("fits"));

    // Everything that happened is there, in order.
    let has = |pred: &dyn Fn(&Line) -> bool| lines.iter().any(pred);
    assert!(has(
        &|l| matches!(l, Line::Command(c) if c.command == "DEPTH 500" && c.origin == "operator" && c.seq > 0)
    ));
    assert!(has(
        &|l| matches!(l, Line::Answer(a) if a.command == "DEPTH 500" && a.result == "ACK" && a.seq.is_some())
    ));
    assert!(has(
        &|l| matches!(l, Line::Answer(a) if a.command == "RUN" && a.result == "ACK")
    ));
    assert!(has(
        &|l| matches!(l, Line::Refusal(r) if r.command == "DEPTH 1200" && r.rule == "depth_above_limit" && r.zone.as_deref() == Some("cheeks"))
    ));
    assert!(has(
        &|l| matches!(l, Line::Zone(z) if z.zone == "cheeks" && z.limit_um == 1000)
    ));
    assert!(has(
        &|l| matches!(l, Line::Alarm(a) if a.alarm == "depth_refused" && a.action == "raised")
    ));
    assert!(has(
        &|l| matches!(l, Line::Alarm(a) if a.alarm == "depth_refused" && a.action == "acknowledged")
    ));
    assert!(has(
        &|l| matches!(l, Line::Note(n) if n.text == "client comfortable, no bleeding" && n.author == "P-7")
    ));
    assert!(has(&|l| matches!(l, Line::Cartridge(_))));
    let times: Vec<i64> = lines.iter().map(Line::utc_ms).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1] + 1000),
        "times run forward"
    );
    assert!(running_samples(&lines) >= 5);
}

#[test]
fn a_killed_console_leaves_an_interrupted_record_holding_everything_flushed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0043");
    assert_eq!(console.run("zone forehead"), "ok");
    assert_eq!(console.run("depth 0.5"), "ok");
    assert_eq!(console.run("start"), "ok");
    let path = the_record(&data);
    // The recorder flushes while the session runs: the lines appear without an end.
    let before = wait_for_lines(&path, "running telemetry", |l| running_samples(l) >= 10);
    console.child.kill().expect("kill -9");
    console.child.wait().expect("reaped");

    let after = read_lines(&path);
    assert!(after.len() >= before.len(), "nothing flushed was lost");
    assert_eq!(after[..before.len()], before[..]);
    assert!(matches!(after.first(), Some(Line::Header(_))));
    assert!(
        !after.iter().any(|l| matches!(l, Line::Summary(_))),
        "no summary: the record is interrupted"
    );
    // The needle stopped: the pen's watchdog, with no heartbeat from a dead station.
    journal_wait(&pen, "a watchdog fault", |e| {
        matches!(
            &e.what,
            Journaled::Event(PenEvent::Fault(FaultCode::Watchdog))
        )
    });
}

#[test]
fn a_full_disk_raises_recording_failed_stops_the_needle_and_refuses_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    // Files the console writes may grow to 128 KiB (ulimit counts 512-byte blocks);
    // writing past that fails with EFBIG, as on a full disk. SIGXFSZ is ignored so the
    // write fails instead of killing the process.
    let mut console = Console::start_with(
        &pen.port_path(),
        &data,
        "trap '' XFSZ; ulimit -f 256",
        &["--telemetry-hz", "1000"],
    );
    open_session(&mut console, dir.path(), "C-0044");
    assert_eq!(console.run("zone forehead"), "ok");
    assert_eq!(console.run("depth 0.5"), "ok");
    let mark = pen.journal_mark();
    assert_eq!(console.run("start"), "ok");
    let raised = console.expect("alarm: raised high recording_failed", "");
    assert!(
        raised.contains("File too large") || raised.contains("cannot write"),
        "{raised}"
    );
    // The needle is stopped by the station itself.
    let halted = pen.wait_for_since(mark, DEADLINE, |e| {
        matches!(
            &e.what,
            Journaled::Command {
                command: Some(Command::Halt),
                ..
            }
        )
    });
    assert!(
        halted.is_some(),
        "no HALT reached the pen after the failure"
    );
    // And nothing restarts it while the session goes unrecorded.
    let refused = console.run("start");
    assert!(
        refused.starts_with("refused:") && refused.contains("recording_failed"),
        "{refused}"
    );
    // A note is refused, not answered ok and lost (issue 12 §9)...
    let note = console.run("note client comfortable");
    assert!(
        note.starts_with("refused: not recorded: recording failed:"),
        "{note}"
    );
    // ...and a command that acts still acts, and says it went unrecorded.
    assert_eq!(console.run("zone cheeks"), "ok");
    console.expect("warning: not recorded: recording failed:", "");
    drop(console.finish());
    // What was written before the failure is still a readable record.
    let lines = read_lines(&the_record(&data));
    assert!(matches!(lines.first(), Some(Line::Header(_))));
}

#[test]
fn the_schema_names_every_zone_and_line_type_the_station_knows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/session.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    let zones: Vec<String> = schema["$defs"]["zone"]["properties"]["zone"]["enum"]
        .as_array()
        .expect("zone enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    let known: Vec<String> = punctum::safety::zones::ZoneId::ALL
        .iter()
        .map(|z| z.as_str().to_owned())
        .collect();
    assert_eq!(zones, known);
    let kinds: Vec<String> = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|r| {
            r["$ref"]
                .as_str()
                .expect("ref")
                .trim_start_matches("#/$defs/")
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, Line::KINDS);
}

#[test]
fn the_schema_rejects_lines_the_format_does_not_allow() {
    let (schemas, index) = schema();
    let good = serde_json::json!({"type": "tel", "utc_ms": 1, "n": 0, "t_ms": 5,
        "state": "RUNNING", "rpm": 6000, "depth_um": 500, "current_ma": 300, "temp_dc": 300});
    assert!(schemas.validate(&good, index).is_ok());
    let mut bad_state = good.clone();
    bad_state["state"] = "FLYING".into();
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("depth_um");
    let mut extra = good.clone();
    extra["colour"] = "blue".into();
    let unknown = serde_json::json!({"type": "teleport", "utc_ms": 1});
    let bad_zone = serde_json::json!({"type": "zone", "utc_ms": 1, "zone": "elbow",
        "limit_um": 1000, "halt_first": false, "lowered_from_um": null, "lowered_to_um": null});
    for (what, line) in [
        ("a state no pen has", bad_state),
        ("a missing field", missing),
        ("an unknown field", extra),
        ("an unknown type", unknown),
        ("an unknown zone", bad_zone),
    ] {
        assert!(
            schemas.validate(&line, index).is_err(),
            "{what} should not validate: {line}"
        );
    }
}

#[test]
fn the_four_week_rule_and_the_cartridge_registry_read_the_session_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut first = Console::start(&pen.port_path(), &data);
    open_session(&mut first, dir.path(), "C-0050");
    assert_eq!(first.run("zone cheeks"), "ok");
    assert_eq!(first.run("start"), "ok");
    assert_eq!(first.run("stop"), "ok");
    first.send("end");
    first.expect("aftercare: next session", "");
    drop(first.finish());
    // The stores' own files are lost; the session record remains.
    for file in ["treatments.jsonl", "cartridges.jsonl"] {
        std::fs::remove_file(data.join(file)).expect("the store wrote it");
    }
    assert_eq!(records(&data).len(), 1);

    let mut second = Console::start(&pen.port_path(), &data);
    open_session(&mut second, dir.path(), "C-0050");
    assert_eq!(second.run("zone cheeks"), "ok");
    let refused = second.run("start");
    assert!(
        refused.contains("zone_treated_recently") && refused.contains("cheeks"),
        "{refused}"
    );
    second.send("end");
    second.expect("aftercare: next session", "");
    drop(second.finish());

    // Another client, another zone, the same cartridge: refused as used.
    let mut third = Console::start(&pen.port_path(), &data);
    open_session(&mut third, dir.path(), "C-0051");
    assert_eq!(third.run("zone forehead"), "ok");
    let refused = third.run("start");
    assert!(
        refused.contains("cartridge") && refused.contains("used"),
        "{refused}"
    );
    drop(third.finish());
}

#[test]
fn a_killed_session_loads_as_interrupted_with_everything_before_the_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0045");
    assert_eq!(console.run("zone forehead"), "ok");
    assert_eq!(console.run("depth 0.5"), "ok");
    assert_eq!(console.run("start"), "ok");
    let path = the_record(&data);
    let flushed = wait_for_lines(&path, "running telemetry", |l| running_samples(l) >= 10);
    console.child.kill().expect("kill -9");
    console.child.wait().expect("reaped");

    let recording = punctum::record::load(&path).expect("an interrupted record loads");
    assert_eq!(recording.status, punctum::record::RecordStatus::Interrupted);
    assert!(recording.summary.is_none());
    let tel_flushed = flushed.iter().filter(|l| matches!(l, Line::Tel(_))).count();
    assert!(recording.telemetry.len() >= tel_flushed);
    assert!(
        recording
            .lines
            .iter()
            .any(|l| matches!(&l.line, Line::Zone(z) if z.zone == "forehead"))
    );
    assert!(recording.duration_ms() > 0);
}
