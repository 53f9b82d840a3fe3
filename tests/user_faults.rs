//! Issue 12: faults found by trying Punctum as users would. Each test drives the real
//! binary (the console through stdin, `report` on files) against the simulated pen on
//! a real pty, and would fail on the station before the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::console::*;
use punctum::record::Line;

const ESC: char = '\u{1b}';

/// The one record in `data/sessions`.
fn the_record(data: &Path) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(data.join("sessions"))
        .expect("sessions folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(found.len(), 1, "one record expected: {found:?}");
    found.into_iter().next().expect("one")
}

fn read_lines(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .expect("record readable")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record line"))
        .collect()
}

/// `punctum report ARGS`: exit status, stdout, stderr.
fn report(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String, String) {
    let out = Process::new(BIN)
        .arg("report")
        .args(args)
        .output()
        .expect("punctum report runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn text_from_outside_is_shown_escaped_and_recorded_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0100");
    let typed = format!("redness {ESC}[2J {ESC}]0;TITLE\u{7} {ESC}[31mFAKE alarm cleared {ESC}[0m");
    assert_eq!(console.run(&format!("note {typed}")), "ok");
    // The error for a zone typed with an escape sequence quotes it escaped.
    let refused = console.run(&format!("zone {ESC}[31mcheeks"));
    assert!(refused.starts_with("error:"), "{refused}");
    assert!(refused.contains("\\u{1b}[31mcheeks"), "{refused}");
    assert!(
        console
            .seen
            .iter()
            .all(|l| !l.contains(ESC) && !l.contains('\u{7}'))
    );
    console.send("end");
    console.expect("summary: session=", "");
    let (status, lines) = console.finish();
    assert!(status.success(), "{lines:?}");

    // The record keeps the note exactly as typed.
    let record = the_record(&data);
    assert!(
        read_lines(&record)
            .iter()
            .any(|l| matches!(l, Line::Note(n) if n.text == typed))
    );
    // The report shows it escaped, on one line.
    let (status, stdout, stderr) = report(&[record.as_os_str()]);
    assert!(status.success(), "{stderr}");
    assert!(
        !stdout.contains(ESC) && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains("redness \\u{1b}[2J \\u{1b}]0;TITLE\\u{7} \\u{1b}[31mFAKE alarm cleared"),
        "{stdout}"
    );
}

#[test]
fn a_note_too_long_to_read_back_is_refused_and_the_record_stays_readable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0101");
    let refused = console.run(&format!("note {}", "x".repeat(1_200_000)));
    assert!(
        refused.starts_with("refused: the note refused")
            && refused.contains("a line holds at most 1048576 bytes"),
        "{}",
        &refused[..refused.len().min(300)]
    );
    // A long note that fits is kept whole.
    let long = "y".repeat(1_000_000);
    assert_eq!(console.run(&format!("note {long}")), "ok");
    console.send("end");
    console.expect("summary: session=", "");
    let (status, _) = console.finish();
    assert!(status.success());
    let rec = punctum::record::load(&the_record(&data)).expect("loads");
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    assert!(
        rec.lines
            .iter()
            .any(|l| matches!(&l.line, Line::Note(n) if n.text == long))
    );
}

#[test]
fn report_refuses_a_fifo_a_device_and_a_link_to_dev_zero_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("session.jsonl");
    let made = Process::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let link = dir.path().join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (link.as_path(), "a character device"),
    ] {
        let started = Instant::now();
        let (status, _, stderr) = report(&[path.as_os_str()]);
        assert!(!status.success(), "{}", path.display());
        assert!(
            stderr.contains(&format!("not a regular file ({what})")),
            "{}: {stderr}",
            path.display()
        );
        // "At once": a blocked open or an endless read would never return.
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

fn screening_with(dir: &Path, client: &str, dob: &str, under_22: bool) -> PathBuf {
    let path = screening_file(dir, client);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    json["dob"] = serde_json::json!(dob);
    json["answers"]["under_22"] = serde_json::json!(under_22);
    std::fs::write(&path, json.to_string()).expect("write");
    path
}

#[test]
fn an_intake_forms_under_22_is_accepted_when_it_agrees_with_the_date_of_birth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &dir.path().join("data"));
    console.expect("event: link connected", "");
    let contradicts = screening_with(dir.path(), "C-0103", "1990-05-01", true);
    let refused = console.run(&format!("session {}", contradicts.display()));
    assert!(
        refused.contains("\"under_22\" is true, but dob 1990-05-01 makes the client"),
        "{refused}"
    );
    let agrees = screening_with(dir.path(), "C-0103", "1990-05-01", false);
    assert_eq!(console.run(&format!("session {}", agrees.display())), "ok");
}

#[test]
fn a_clinic_zone_table_saved_with_a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = dir.path().join("clinic-zones.json");
    let text = punctum::safety::zones::ZoneTable::builtin().to_json();
    std::fs::write(&table, format!("\u{feff}{text}")).expect("write");
    let pen = calibrated_pen(dir.path());
    let table_arg = table.to_string_lossy().into_owned();
    let mut console = Console::start_with(
        &pen.port_path(),
        &dir.path().join("data"),
        "",
        &["--zones", &table_arg],
    );
    console.expect("event: link connected", "");
    // A refused table ends the console before the link comes up.
    console.send("status");
    console.expect("status:", "");
}

#[test]
fn a_signal_halts_the_running_needle_and_closes_the_record_with_its_summary() {
    use punctum::protocol::{Command, FaultCode, PenEvent, PenState};
    use punctum::sim::Journaled;
    for (signal, exit_code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let pen = calibrated_pen(dir.path());
        let mut console = Console::start(&pen.port_path(), &data);
        open_session(&mut console, dir.path(), "C-0104");
        assert_eq!(console.run("zone forehead"), "ok");
        assert_eq!(console.run("depth 0.5"), "ok");
        assert_eq!(console.run("start"), "ok");
        // Running, as the station itself measures it.
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            console.send("status");
            if console.expect("status:", "").contains("pen_state=RUNNING") {
                break;
            }
            assert!(Instant::now() < deadline, "never running");
        }
        let mark = pen.journal_mark();
        let killed = Process::new("kill")
            .arg(format!("-{signal}"))
            .arg(console.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(killed.success());
        // The station's own HALT reaches the pen: not the watchdog's fault.
        let halted = pen.wait_for_since(mark, common::DEADLINE, |e| {
            matches!(
                &e.what,
                Journaled::Command {
                    command: Some(Command::Halt),
                    ..
                }
            )
        });
        assert!(halted.is_some(), "SIG{signal}: no HALT reached the pen");
        let (status, lines) = console.finish();
        assert_eq!(status.code(), Some(exit_code), "SIG{signal}: {lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("event: SIG{signal}: halting"))),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("event: pen reports {}", PenState::Idle)),
            "{lines:#?}"
        );
        assert!(
            !pen.journal().iter().any(|e| matches!(
                &e.what,
                Journaled::Event(PenEvent::Fault(FaultCode::Watchdog))
            )),
            "SIG{signal}: the watchdog had to stop the needle"
        );
        let rec = punctum::record::load(&the_record(&data)).expect("loads");
        let summary = rec.summary.expect("the record has its summary");
        assert_eq!(
            summary.ended_by.as_deref(),
            Some(format!("signal SIG{signal}").as_str())
        );
        assert!(summary.needling_ms > 0);
    }
}

/// `punctum console ARGS` run to its end with no input: exit status and stdout.
fn console_once(program: &mut Process) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    let out = program
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the console runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_port_the_user_may_not_open_is_said_at_once_with_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let uid = Process::new("id").arg("-u").output().expect("id runs");
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    // As root (CI), a real user outside the dialout group: nobody, on the simulated
    // pen's pty (root:tty, 0620). Otherwise a port file this user may not open.
    let pen = calibrated_pen(dir.path());
    let forbidden = if root {
        pen.port_path()
    } else {
        let path = dir.path().join("ttyFORBIDDEN");
        std::fs::write(&path, b"").expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .expect("chmod");
        path
    };
    let mut program = if root {
        // The data folder is the unprivileged user's own.
        let chowned = Process::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .expect("chown runs");
        assert!(chowned.success());
        let mut p = Process::new("setpriv");
        p.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        p
    } else {
        Process::new(BIN)
    };
    program
        .arg("console")
        .arg("--port")
        .arg(&forbidden)
        .arg("--data-dir")
        .arg(&data);
    let (status, stdout, took) = console_once(&mut program);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error: permission denied on {}: add your user to the dialout group (`sudo usermod -aG dialout $USER`, then log in again)",
            forbidden.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("NotSent"), "{stdout}");
    // At once: not after the 10 s a link gets to come up.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn a_port_that_does_not_exist_and_one_another_program_holds_each_say_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("ttyACM9");
    let (status, stdout, _) = console_once(
        Process::new(BIN)
            .arg("console")
            .arg("--port")
            .arg(&missing)
            .arg("--data-dir")
            .arg(dir.path().join("data")),
    );
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error: {} does not exist: is the pen plugged in and switched on?",
            missing.display()
        )),
        "{stdout}"
    );

    let pen = calibrated_pen(dir.path());
    let mut first = Console::start(&pen.port_path(), &dir.path().join("data1"));
    first.expect("event: link connected", "");
    let (status, stdout, _) = console_once(
        Process::new(BIN)
            .arg("console")
            .arg("--port")
            .arg(pen.port_path())
            .arg("--data-dir")
            .arg(dir.path().join("data2")),
    );
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("is held by another program (a serial monitor, another Punctum)"),
        "{stdout}"
    );
    // A path that opens but is no serial port.
    for not_a_port in [
        dir.path().to_path_buf(),
        std::path::PathBuf::from("/dev/null"),
    ] {
        let (status, stdout, took) = console_once(
            Process::new(BIN)
                .arg("console")
                .arg("--port")
                .arg(&not_a_port)
                .arg("--data-dir")
                .arg(dir.path().join("data3")),
        );
        assert_eq!(status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "error: {} is not a serial port",
                not_a_port.display()
            )),
            "{stdout}"
        );
        assert!(took < Duration::from_secs(8), "took {took:?}");
    }
    // The first station never noticed.
    first.send("status");
    assert!(first.expect("status:", "").contains("link=connected"));
}

#[test]
fn one_lost_sample_raises_no_gap_alarm_and_gaps_that_persist_do() {
    use punctum::link::{Link, LinkConfig, LinkState};
    use punctum::safety::alarms::AlarmId;
    use punctum::safety::zones::ZoneTable;
    use punctum::sim::{SimAction, SimConfig};
    use punctum::station::{Station, setup};

    let dir = tempfile::tempdir().expect("temp dir");
    let pen = common::sim(SimConfig::default());
    let mut config = LinkConfig::new(pen.port_path());
    config.telemetry_hz = 1000;
    let data = setup::open_data_dir(Some(&dir.path().join("data"))).expect("data dir");
    let mut station = Station::new(
        Link::spawn(config).expect("link"),
        data,
        ZoneTable::builtin(),
    )
    .expect("station");
    let pump_until = |station: &mut Station, what: &str, pred: &dyn Fn(&Station) -> bool| {
        let deadline = Instant::now() + common::DEADLINE;
        while !pred(station) {
            assert!(Instant::now() < deadline, "no {what} within the deadline");
            station.pump(Duration::from_millis(20));
        }
    };
    pump_until(&mut station, "link", &|s| {
        matches!(s.link_state(), LinkState::Connected { .. })
    });
    // One telemetry line lost on the way.
    pen.act(SimAction::LoseNext("T".into())).expect("act");
    pump_until(&mut station, "the gap counted", &|s| {
        s.stats().telemetry_gaps == 1
    });
    assert_eq!(station.stats().samples_lost, 1);
    // Past the alarm's 2 s delay, on the station's own clock: never raised.
    let gap_at = station.now_ms();
    while station.now_ms() < gap_at + 3000 {
        station.pump(Duration::from_millis(20));
        assert!(
            !station.alarms().is_active(AlarmId::TelemetryGaps),
            "one lost sample raised telemetry_gaps"
        );
    }
    // Gaps that keep coming (5 % of lines corrupted: a bad cable) raise it.
    pen.act(SimAction::Corrupt(0.05)).expect("act");
    pump_until(&mut station, "telemetry_gaps raised", &|s| {
        s.alarms().is_active(AlarmId::TelemetryGaps)
    });
    station.shutdown();
}

#[test]
fn report_tells_a_pen_restart_and_a_counter_reset_from_lost_samples() {
    use punctum::record::format::{EventLine, FORMAT_NAME, Header, StateWord, TelLine};
    const T0_MS: i64 = 1_764_000_000_000;
    let header = Line::Header(Box::new(Header {
        utc_ms: T0_MS,
        format: FORMAT_NAME.into(),
        version: punctum::record::FORMAT_VERSION,
        station_version: "0.1.0".into(),
        session_id: "S-1".into(),
        opened_at: "2025-11-24T17:00:00+01:00".into(),
        practitioner: "P7".into(),
        client: "C042".into(),
        screening: serde_json::json!({}),
        pen: None,
        calibration: None,
        zones: serde_json::json!({"zones": []}),
        zones_hash: "00".repeat(32),
        simulated: true,
        alarm_sound: None,
    }));
    let tel = |at_ms: i64, n: u32, t_ms: u32| {
        Line::Tel(TelLine {
            utc_ms: T0_MS + at_ms,
            n,
            t_ms,
            state: StateWord::Idle,
            rpm: 0,
            depth_um: 0,
            current_ma: 0,
            temp_dc: 300,
        })
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, lines: &[Line]| {
        let path = dir.path().join(format!("{name}.jsonl"));
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).expect("json") + "\n")
            .collect();
        std::fs::write(&path, text).expect("write");
        path
    };
    // The counter jumps by a million while the pen's clock goes back: no BOOT line.
    let reset = write(
        "counter-reset",
        &[
            header.clone(),
            tel(0, 500, 90_000),
            tel(10, 1_000_500, 300),
            tel(20, 1_000_501, 310),
        ],
    );
    // The same with the pen's EV BOOT between: a restart.
    let boot = Line::Event(EventLine {
        utc_ms: T0_MS + 5,
        t_ms: 0,
        event: "BOOT 2 POWER".into(),
    });
    let restart = write(
        "pen-restart",
        &[
            header,
            tel(0, 500, 90_000),
            boot,
            tel(10, 3, 300),
            tel(20, 4, 310),
        ],
    );
    for (path, kind, what) in [
        (&reset, "counter_reset", "the counter was reset"),
        (&restart, "pen_restart", "the pen restarted (EV BOOT)"),
    ] {
        let (status, stdout, stderr) = report(&[path.as_os_str(), std::ffi::OsStr::new("--json")]);
        assert!(status.success(), "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(json["samples_lost"], 0, "{stdout}");
        let interruptions = json["interruptions"].as_array().expect("array");
        assert!(
            interruptions.iter().any(
                |i| i["kind"] == kind && i["detail"].as_str().is_some_and(|d| d.contains(what))
            ),
            "{stdout}"
        );
    }
}

#[test]
fn a_signal_during_a_held_start_cancels_it_and_the_needle_never_runs() {
    use punctum::protocol::Command;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0105");
    assert_eq!(console.run("zone cheeks"), "ok");
    // The needle travels to 1.00 mm (200 ms at 5 mm/s): the start waits for it.
    console.send("depth 1.0");
    console.send("start");
    console.expect("event: starting when the needle reaches", "");
    let killed = Process::new("kill")
        .arg("-INT")
        .arg(console.child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (status, lines) = console.finish();
    assert_eq!(status.code(), Some(130), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("refused: RUN not sent")),
        "{lines:#?}"
    );
    assert!(
        !common::executed(&pen)
            .iter()
            .any(|(_, c)| *c == Command::Run),
        "the needle was started after the signal"
    );
    let rec = punctum::record::load(&the_record(&data)).expect("loads");
    let summary = rec.summary.expect("summary");
    assert_eq!(summary.ended_by.as_deref(), Some("signal SIGINT"));
    assert_eq!(summary.needling_ms, 0);
}

#[test]
fn a_note_at_the_limit_is_either_refused_or_read_back_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut console = Console::start(&pen.port_path(), &data);
    open_session(&mut console, dir.path(), "C-0106");
    // Around the limit, where the line's own fields (type, times, author) decide.
    let mut kept = Vec::new();
    for len in (1_048_420..1_048_530).step_by(7) {
        let text = "A".repeat(len);
        let answer = console.run(&format!("note {text}"));
        if answer == "ok" {
            kept.push(len);
        } else {
            assert!(
                answer.contains("a line holds at most 1048576 bytes"),
                "{len}: {}",
                &answer[..80.min(answer.len())]
            );
        }
    }
    assert!(!kept.is_empty(), "every note near the limit was refused");
    console.send("end");
    console.expect("summary: session=", "");
    drop(console.finish());
    let rec = punctum::record::load(&the_record(&data)).expect("loads");
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    let notes: Vec<usize> = rec
        .lines
        .iter()
        .filter_map(|l| match &l.line {
            Line::Note(n) => Some(n.text.len()),
            _ => None,
        })
        .collect();
    assert_eq!(notes, kept, "every note answered ok reads back");
}
