//! The real `punctum` binary, driven as a user or a script would drive it.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command as Process, Stdio};

use common::*;
use punctum::protocol::{Command, PenEvent};
use punctum::sim::{SimConfig, SimPen};

const BIN: &str = env!("CARGO_BIN_EXE_punctum");

#[test]
fn help_lists_the_window_options_and_every_subcommand() {
    let out = Process::new(BIN)
        .arg("--help")
        .output()
        .expect("punctum runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--port",
        "--sim",
        "--data-dir",
        "--zones",
        "console",
        "sim",
        "monitor",
        "ports",
        "replay",
        "report",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn without_a_display_the_window_says_so_and_points_to_the_console() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Process::new(BIN)
        .args(["--sim", "--data-dir"])
        .arg(dir.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("window could not open") && err.contains("punctum console"),
        "{err}"
    );
}

#[test]
fn sim_help_documents_its_flags_and_actions() {
    let out = Process::new(BIN)
        .args(["sim", "--help"])
        .output()
        .expect("punctum runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--link",
        "--cartridge",
        "--no-cartridge",
        "--cal-file",
        "--corrupt",
        "--at",
        "--unthrottled",
        "--hidden-depth-gain-ppm",
        "disappear",
        "reboot",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

#[test]
fn a_bad_sim_flag_is_a_clear_usage_error() {
    let out = Process::new(BIN)
        .args(["sim", "--corrupt", "2"])
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--corrupt"), "{err}");
}

#[test]
fn punctum_sim_serves_a_host_through_its_link_and_acts_on_schedule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link_path = dir.path().join("pen");
    let child = Process::new(BIN)
        .args(["sim", "--link"])
        .arg(&link_path)
        .args(["--at", "1:button"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("punctum sim starts");
    // Killed even when an assertion fails, so no pen outlives the test.
    let mut child = KillOnDrop(child);
    // Kept open to the end: the sim must never write into a closed pipe.
    let mut stdout = BufReader::new(child.0.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the first line");
    assert_eq!(first.trim_end(), format!("port: {}", link_path.display()));

    let mut config = punctum::link::LinkConfig::new(&link_path);
    config.telemetry_hz = 10;
    let (link, info) = connect(config);
    assert_eq!(info.model, "MNP-1");
    expect_event(&link, "the scheduled start button", |e| {
        matches!(
            e,
            punctum::link::LinkEvent::Pen {
                event: PenEvent::Button,
                ..
            }
        )
    });
    link.shutdown();

    // SIGTERM ends it cleanly and removes the symlink.
    let pid = child.0.id().to_string();
    let killed = Process::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let status = child.0.wait().expect("it exits");
    assert!(status.success(), "{status:?}");
    assert!(!link_path.exists(), "the symlink is removed");
}

#[test]
fn punctum_monitor_prints_info_calibration_and_status_then_halts_the_pen() {
    let pen: SimPen = sim(SimConfig::default());
    let out = Process::new(BIN)
        .args([
            "monitor",
            "--telemetry-hz",
            "50",
            "--duration",
            "2.5",
            "--port",
        ])
        .arg(pen.port_path())
        .output()
        .expect("punctum monitor runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("info: model=MNP-1 serial=SIM00001"), "{text}");
    assert!(text.contains("calibration: depth_offset_um=0"), "{text}");
    assert!(text.contains("status: state=IDLE"), "{text}");
    assert!(text.contains("tel_hz="), "{text}");
    assert!(text.trim_end().ends_with("halted; link closed"), "{text}");
    // The pen heard the HALT before the port closed.
    journal_wait(&pen, "HALT", |e| {
        matches!(
            &e.what,
            punctum::sim::Journaled::Command {
                command: Some(Command::Halt),
                ..
            }
        )
    });
}

#[test]
fn punctum_monitor_says_why_it_cannot_connect() {
    let out = Process::new(BIN)
        .args([
            "monitor",
            "--port",
            "/dev/punctum-no-such-port",
            "--duration",
            "0.5",
        ])
        .output()
        .expect("punctum monitor runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("cannot connect yet"), "{text}");
    assert!(text.contains("/dev/punctum-no-such-port"), "{text}");
}

#[test]
fn punctum_ports_lists_without_failing() {
    let out = Process::new(BIN)
        .arg("ports")
        .output()
        .expect("punctum runs");
    assert!(out.status.success());
}

#[test]
fn punctum_replay_names_a_missing_file_before_opening_a_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-session.jsonl");
    let out = Process::new(BIN)
        .arg("replay")
        .arg(&missing)
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open") && err.contains("no-such-session.jsonl"),
        "{err}"
    );
    let out = Process::new(BIN)
        .arg("replay")
        .arg(dir.path())
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a file"));
}

#[test]
fn punctum_replay_without_a_display_says_so_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("s.jsonl");
    std::fs::write(&file, "{}\n").expect("written");
    let out = Process::new(BIN)
        .arg("replay")
        .arg(&file)
        .args(["--data-dir"])
        .arg(dir.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("window could not open"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("there"), "{}\n");
}

#[test]
fn replay_help_documents_the_file_and_its_options() {
    let out = Process::new(BIN)
        .args(["replay", "--help"])
        .output()
        .expect("punctum runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["FILE", "--data-dir", "--sim", "without connecting"] {
        assert!(text.contains(word), "replay --help lacks {word}:\n{text}");
    }
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
