//! `punctum report` through the real binary: a complete record, an interrupted one,
//! and every kind of bad input of issue 5 §6. After each run the record must be
//! byte for byte (or, for the 2 GB one, length and mtime) what it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use punctum::record::format::{
    AnswerLine, CartridgeLine, CommandLine, FORMAT_NAME, Header, Line, StateWord, SummaryLine,
    TelLine, ZoneLine, ZoneSummary,
};

const BIN: &str = env!("CARGO_BIN_EXE_punctum");

/// The header's time: 2025-11-24T16:00:00Z.
const T0_MS: i64 = 1_764_000_000_000;

fn header(version: u32) -> Line {
    Line::Header(Box::new(Header {
        utc_ms: T0_MS,
        format: FORMAT_NAME.into(),
        version,
        station_version: "0.1.0".into(),
        session_id: "20251124T170000-C042-1".into(),
        opened_at: "2025-11-24T17:00:00+01:00".into(),
        practitioner: "P7".into(),
        client: "C042".into(),
        screening: serde_json::json!({"client": "C042"}),
        pen: None,
        calibration: None,
        zones: serde_json::json!({"zones": []}),
        zones_hash: "00".repeat(32),
        simulated: true,
        alarm_sound: None,
    }))
}

fn tel(at_ms: i64, n: u32, state: StateWord, depth_um: i32) -> Line {
    Line::Tel(TelLine {
        utc_ms: T0_MS + at_ms,
        n,
        t_ms: u32::try_from(at_ms + 5000).expect("small times"),
        state,
        rpm: if state == StateWord::Running { 6000 } else { 0 },
        depth_um,
        current_ma: 300,
        temp_dc: 312,
    })
}

/// A 3-second session in the cheeks at 100 Hz: 2 s idle, then 1 s running at 800 µm.
fn session(with_summary: bool) -> Vec<Line> {
    let mut lines = vec![
        header(1),
        Line::Zone(ZoneLine {
            utc_ms: T0_MS,
            zone: "cheeks".into(),
            limit_um: 1000,
            halt_first: false,
            lowered_from_um: None,
            lowered_to_um: None,
        }),
    ];
    lines.extend((0..200).map(|i| tel(i64::from(i) * 10, i, StateWord::Idle, 0)));
    lines.push(Line::Command(CommandLine {
        utc_ms: T0_MS + 1995,
        seq: 3,
        command: "RUN".into(),
        origin: "operator".into(),
        account: None,
    }));
    lines.push(Line::Answer(AnswerLine {
        utc_ms: T0_MS + 1996,
        seq: Some(3),
        command: "RUN".into(),
        result: "ACK".into(),
        detail: None,
        rtt_us: Some(700),
    }));
    lines.push(Line::Cartridge(CartridgeLine {
        utc_ms: T0_MS + 1997,
        id: "0123456789ABCDEF".into(),
        needles: 12,
    }));
    lines.extend((200..300).map(|i| tel(i64::from(i) * 10, i, StateWord::Running, 800)));
    if with_summary {
        lines.push(Line::Summary(Box::new(SummaryLine {
            utc_ms: T0_MS + 3000,
            duration_ms: 3000,
            zones: vec![ZoneSummary {
                zone: "cheeks".into(),
                passes: 1,
                needling_ms: 990,
                max_depth_um: 800,
                refusals: 0,
            }],
            needling_ms: 990,
            refusals: 0,
            interruptions: 0,
            alarms_raised: 0,
            samples: 300,
            cartridges: vec!["0123456789ABCDEF".into()],
            next_earliest: "2025-12-22".into(),
            next_latest: None,
            next_advice: "in four weeks".into(),
            ended_by: None,
            ..SummaryLine::default()
        })));
    }
    lines
}

fn jsonl(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut out, line).expect("encodes");
        out.push(b'\n');
    }
    out
}

fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("2025-11-24_170000_C042.jsonl");
    std::fs::write(&path, bytes).expect("temp file");
    path
}

/// What a file was before a run, to check it is unchanged after.
struct Snapshot {
    path: PathBuf,
    bytes: Option<Vec<u8>>,
    len: u64,
    modified: SystemTime,
}

impl Snapshot {
    fn of(path: &Path) -> Snapshot {
        let meta = std::fs::metadata(path).expect("the record exists");
        let bytes = (meta.len() < 64 << 20).then(|| std::fs::read(path).expect("readable"));
        Snapshot {
            path: path.to_path_buf(),
            bytes,
            len: meta.len(),
            modified: meta.modified().expect("mtime"),
        }
    }

    fn assert_unchanged(&self) {
        let meta = std::fs::metadata(&self.path).expect("the record still exists");
        assert_eq!(meta.len(), self.len, "length changed");
        assert_eq!(
            meta.modified().expect("mtime"),
            self.modified,
            "mtime changed"
        );
        if let Some(bytes) = &self.bytes {
            assert!(
                std::fs::read(&self.path).expect("readable") == *bytes,
                "contents changed"
            );
        }
    }
}

/// Runs `punctum report FILE ARGS...` and checks FILE is untouched.
fn report(path: &Path, args: &[&str]) -> (Output, String, String) {
    let mut command = Command::new(BIN);
    command.arg("report").arg(path).args(args);
    run(command, path)
}

/// Runs `command` (which reads `path`) and checks `path` is untouched.
fn run(mut command: Command, path: &Path) -> (Output, String, String) {
    let snapshot = Snapshot::of(path);
    let out = command.output().expect("punctum runs");
    snapshot.assert_unchanged();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn a_complete_record_should_print_its_figures_and_exit_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), &jsonl(&session(true)));
    let (out, stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.starts_with("Session 20251124T170000-C042-1 (complete)"),
        "{stdout}"
    );
    let cheeks = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cheeks"))
        .expect("a row for the cheeks");
    let cells: Vec<&str> = cheeks.split_whitespace().collect();
    assert_eq!(cells, ["cheeks", "1", "0:01.0", "800", "0"], "{stdout}");
    assert!(stdout.contains("Summary line: agrees"), "{stdout}");
    assert!(stdout.contains("0123456789ABCDEF"), "{stdout}");
}

#[test]
fn json_should_carry_the_figures_and_csv_the_samples() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), &jsonl(&session(true)));
    let csv_path = dir.path().join("tel.csv");
    let csv_arg = csv_path.to_str().expect("utf-8 temp path");
    let (out, stdout, stderr) = report(&path, &["--json", "--csv", csv_arg]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(json["status"], "complete");
    assert_eq!(json["client"], "C042");
    assert_eq!(json["zones"][0]["zone"], "cheeks");
    assert_eq!(json["zones"][0]["passes"], 1);
    assert_eq!(json["zones"][0]["needling_ms"], 990);
    assert_eq!(json["samples"], 300);
    assert_eq!(json["disagreements"], serde_json::json!([]));
    assert!(
        stderr.contains(&format!("wrote 300 telemetry samples to {csv_arg}")),
        "{stderr}"
    );
    let csv = std::fs::read_to_string(&csv_path).expect("the CSV");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 301);
    assert_eq!(
        rows[0],
        "session_s,utc_ms,n,t_ms,state,rpm,depth_um,current_ma,temp_dc"
    );
    assert_eq!(
        rows[251],
        "2.500,1764000002500,250,7500,RUNNING,6000,800,300,312"
    );
}

#[test]
fn csv_over_the_record_itself_should_be_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), &jsonl(&session(true)));
    let same = path.to_str().expect("utf-8 temp path");
    let (out, _stdout, stderr) = report(&path, &["--csv", same]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to write the CSV over the record itself"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_record_should_report_what_was_recorded_and_exit_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), &jsonl(&session(false)));
    let (out, stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(stdout.contains("No summary line"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["cheeks", "1", "0:01.0", "800", "0"]),
        "{stdout}"
    );
}

#[test]
fn a_truncated_last_line_should_be_warned_with_its_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bytes = jsonl(&session(true));
    bytes.truncate(bytes.len() - 40);
    let path = write(dir.path(), &bytes);
    let (out, stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(": line 306: the last line is cut short"),
        "{stderr}"
    );
    assert!(stdout.contains("(interrupted)"), "{stdout}");
}

#[test]
fn garbage_in_the_middle_should_be_skipped_with_its_line_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = session(true);
    let mut bytes = jsonl(&lines[..100]);
    bytes.extend_from_slice(b"\xde\xad\xbe\xef}{ garbage\n");
    bytes.extend_from_slice(&jsonl(&lines[100..]));
    let path = write(dir.path(), &bytes);
    let (out, stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(": line 101: not JSON"), "{stderr}");
    assert!(stdout.contains("(complete)"), "{stdout}");
    assert!(stdout.contains("Summary line: agrees"), "{stdout}");
}

#[test]
fn an_unknown_line_type_should_be_skipped_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = session(true);
    let mut bytes = jsonl(&lines[..10]);
    bytes.extend_from_slice(br#"{"type":"hologram","utc_ms":1764000000100}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(&jsonl(&lines[10..]));
    let path = write(dir.path(), &bytes);
    let (out, _stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(r#": line 11: unknown line type "hologram": skipped"#),
        "{stderr}"
    );
}

#[test]
fn a_future_format_version_should_be_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut lines = session(true);
    lines[0] = header(6);
    let path = write(dir.path(), &jsonl(&lines));
    let (out, stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(
            "was written by a newer Punctum (format version 6; this station reads up to 5)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_file_that_is_not_json_should_be_refused_at_line_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), b"PK\x03\x04 this is a zip file\n\x00\x01");
    let (out, _stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a Punctum session record: line 1 is not JSON"),
        "{stderr}"
    );
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn an_empty_file_should_be_refused_as_having_no_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), b"");
    let (out, _stdout, stderr) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is empty: no header"), "{stderr}");
}

#[test]
fn a_missing_file_should_be_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .arg("report")
        .arg(dir.path().join("nope.jsonl"))
        .output()
        .expect("punctum runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open"), "{stderr}");
}

/// A valid start, then 2 GiB of zeros without a newline (sparse: cheap on disk).
/// The report runs with its address space limited to 256 MiB (`ulimit -v`), so a
/// loader that buffered the file, or the over-long line, would fail to allocate.
#[cfg(unix)]
#[test]
fn a_2_gb_file_should_load_its_valid_lines_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = session(false);
    let valid = jsonl(&lines[..50]);
    let path = write(dir.path(), &valid);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(2 << 30))
        .expect("a sparse 2 GiB file");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -v 262144 && exec "$0" report "$1""#)
        .arg(BIN)
        .arg(&path);
    let (out, stdout, stderr) = run(command, &path);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            ": line 51: {} bytes long and the file ends inside it, over the 1 MiB limit of a \
             line: skipped",
            (2_u64 << 30) - valid.len() as u64
        )),
        "{stderr}"
    );
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(
        stdout.contains("48 (0 lost)"),
        "the 48 samples before the zeros:\n{stdout}"
    );
}
