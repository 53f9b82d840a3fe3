//! The session library screen, driven with `egui_kittest` against the built-in
//! simulated pen, over real record files in a temporary data folder: complete
//! records, an interrupted one cut mid-line, and a file that is not a record.

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};

use super::app::StationApp;
use super::commands::UiCommand;
use super::window_test_support::{harness, step_until};
use crate::record::format::{Line, SummaryLine, ZoneSummary};
use crate::record::recording::RecordStatus;
use crate::record::writer::SESSIONS_DIR;
use crate::replay::test_support::{Script, treatment};
use crate::safety::alarms::AlarmId;

const DAY_MS: i64 = 86_400_000;

/// The treatment script's session, complete: cheeks and forehead, 0:20.
const FIRST: &str = "2025-11-24_160000_C-0042.jsonl";
/// Another client two days on, not simulated: chin, 1:02:05.
const SECOND: &str = "2025-11-26_160000_C-0077.jsonl";
/// The first client again four days on, cut off mid-line without a summary.
const CUT: &str = "2025-11-28_160000_C-0042.jsonl";
/// Not a record at all.
const GARBAGE: &str = "garbage.jsonl";

/// `lines` moved `days` later, for `client` seen by `practitioner`.
fn session_of(
    lines: Vec<Line>,
    days: i64,
    client: &str,
    practitioner: &str,
    simulated: bool,
) -> Vec<Line> {
    lines
        .into_iter()
        .map(|line| {
            let mut value = serde_json::to_value(&line).expect("a line encodes");
            value["utc_ms"] = (line.utc_ms() + days * DAY_MS).into();
            if let Line::Header(_) = line {
                value["client"] = client.into();
                value["practitioner"] = practitioner.into();
                value["simulated"] = simulated.into();
                value["session_id"] = format!("S-{client}-{days}").into();
                value["opened_at"] = format!("2025-11-{:02}T16:00:00+00:00", 24 + days).into();
            }
            serde_json::from_value(value).expect("a line decodes")
        })
        .collect()
}

/// A summary closing a session `duration_ms` long that treated `zones` (one pass each).
fn summary(duration_ms: i64, zones: &[&str]) -> Line {
    Line::Summary(Box::new(SummaryLine {
        utc_ms: crate::replay::test_support::BASE_UTC_MS + duration_ms,
        duration_ms,
        zones: zones
            .iter()
            .map(|z| ZoneSummary {
                zone: (*z).into(),
                passes: 1,
                needling_ms: 1000,
                max_depth_um: 500,
                refusals: 0,
            })
            .collect(),
        needling_ms: 1000,
        refusals: 0,
        interruptions: 0,
        alarms_raised: 0,
        samples: 0,
        cartridges: Vec::new(),
        next_earliest: "2025-12-22".into(),
        next_latest: None,
        next_advice: "in four weeks".into(),
        ended_by: None,
        ..SummaryLine::default()
    }))
}

fn write_lines(dir: &Path, name: &str, lines: &[Line], tail: &[u8]) -> PathBuf {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend(serde_json::to_vec(line).expect("a line encodes"));
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(tail);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("the temp dir is writable");
    path
}

/// The script's lines less its summary.
fn without_summary(script: &Script) -> Vec<Line> {
    script
        .lines()
        .into_iter()
        .filter(|l| !matches!(l, Line::Summary(_)))
        .collect()
}

/// Writes the four files into `<data>/sessions/`.
fn write_sessions(data: &Path) -> PathBuf {
    let sessions = data.join(SESSIONS_DIR);
    std::fs::create_dir_all(&sessions).expect("sessions folder");
    let mut first = without_summary(&treatment());
    first.push(summary(20_000, &["cheeks", "forehead"]));
    write_lines(&sessions, FIRST, &first, b"");
    let second = Script::new()
        .zone(1000, "chin", 1000)
        .line(summary(3_725_000, &["chin"]))
        .lines();
    write_lines(
        &sessions,
        SECOND,
        &session_of(second, 2, "C-0077", "P-3", false),
        b"",
    );
    // Cut off mid-line, as a killed station leaves it.
    let cut = session_of(without_summary(&treatment()), 4, "C-0042", "P-7", true);
    write_lines(&sessions, CUT, &cut, b"{\"type\":\"tel\",\"utc_ms\":17");
    std::fs::write(sessions.join(GARBAGE), "this is not a record\n").expect("writable");
    sessions
}

fn open_library(h: &mut Harness<'static, StationApp>) {
    h.step();
    h.get_by_label("Session library").click();
    step_until(h, "the scanned library", |h| {
        let library = h.state().library();
        library.is_open() && !library.scanning() && library.library().is_some()
    });
    h.step();
}

fn replay_button(name: &str) -> String {
    format!("Replay {name}")
}

fn type_search(h: &mut Harness<'static, StationApp>, text: &str) {
    if h.query_by_label("Clear").is_some() {
        h.get_by_label("Clear").click();
        h.step();
    }
    h.get_by_label("Search client").focus();
    h.step();
    h.get_by_label("Search client").type_text(text);
    h.step();
    h.step();
}

#[test]
fn the_library_should_list_sessions_search_by_client_and_replay_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sessions = write_sessions(dir.path());
    let mut h = harness(dir.path());
    open_library(&mut h);

    // Newest first, in the state and on the screen.
    let shown: Vec<(String, RecordStatus)> = h
        .state()
        .library()
        .shown()
        .iter()
        .map(|e| (e.client.clone(), e.status.clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("C-0042".to_owned(), RecordStatus::Interrupted),
            ("C-0077".to_owned(), RecordStatus::Complete),
            ("C-0042".to_owned(), RecordStatus::Complete),
        ]
    );
    let row_top = |name: &str| h.get_by_label(&replay_button(name)).rect().top();
    assert!(row_top(CUT) < row_top(SECOND) && row_top(SECOND) < row_top(FIRST));

    assert!(h.query_by_label("3 of 3 sessions").is_some());
    assert_eq!(h.query_all_by_label("C-0042").count(), 2);
    assert!(h.query_by_label("C-0077").is_some());
    assert!(h.query_by_label("P-3").is_some());
    assert!(h.query_by_label("2025-11-26 16:00").is_some());
    // Complete: from the summary; interrupted: from its lines (RUN in each zone).
    assert_eq!(h.query_all_by_label("cheeks, forehead").count(), 2);
    assert!(h.query_by_label("chin").is_some());
    assert!(h.query_by_label("0:20").is_some());
    assert!(h.query_by_label("1:02:05").is_some());
    assert!(
        h.query_by_label("0:19").is_some(),
        "the cut record's last line"
    );
    assert_eq!(h.query_all_by_label_contains("INTERRUPTED").count(), 1);
    assert_eq!(h.query_all_by_label("Complete").count(), 2);
    assert_eq!(
        h.query_all_by_label_contains("SIMULATED ").count(),
        2 + 1,
        "two rows and the bar's badge"
    );

    // The damaged files are named under the table.
    let garbage = sessions.join(GARBAGE).display().to_string();
    // The station's event log names it too (the station reads the records at start
    // for the 4-week rule); the library's own line is the one under the table.
    let warnings: Vec<String> = h
        .query_all_by_label_contains(&garbage)
        // A label's text is its accesskit value.
        .filter_map(|n| n.accesskit_node().value())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("not JSON")),
        "{warnings:?}"
    );
    let cut = sessions.join(CUT).display().to_string();
    // Under the table, and in the station's event log.
    assert!(
        h.query_all_by_label_contains(&format!("{cut}: 1 warning"))
            .next()
            .is_some()
    );

    // The search narrows by client, any case.
    type_search(&mut h, "0077");
    assert!(h.query_by_label("1 of 3 sessions").is_some());
    assert!(h.query_by_label(&replay_button(SECOND)).is_some());
    assert!(h.query_by_label(&replay_button(FIRST)).is_none());
    type_search(&mut h, "c-0042");
    assert!(h.query_by_label("2 of 3 sessions").is_some());
    assert!(h.query_by_label(&replay_button(SECOND)).is_none());
    type_search(&mut h, "nobody");
    assert!(h.query_by_label("0 of 3 sessions").is_some());
    assert!(
        h.query_by_label_contains("No session for a client matching \"nobody\"")
            .is_some()
    );
    type_search(&mut h, "42");

    // Replay opens that file, and the library gives way to it.
    h.get_by_label(&replay_button(FIRST)).click();
    step_until(&mut h, "the replay", |h| h.state().replay().is_some());
    h.step();
    let replay = h.state().replay().expect("in replay");
    assert_eq!(replay.recording().path, sessions.join(FIRST));
    assert!(!h.state().library().is_open());
    assert!(h.query_by_label(&format!("REPLAY — {FIRST}")).is_some());

    // From the replay, the library opens again and replays another.
    open_library(&mut h);
    assert!(
        h.query_by_label("2 of 3 sessions").is_some(),
        "the search is kept"
    );
    h.get_by_label(&replay_button(CUT)).click();
    step_until(&mut h, "the cut record in replay", |h| {
        h.state()
            .replay()
            .is_some_and(|r| r.recording().path == sessions.join(CUT))
    });
}

#[test]
fn an_empty_folder_should_say_so_and_refresh_should_find_a_new_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    open_library(&mut h);
    assert!(
        h.query_by_label_contains("No sessions recorded yet")
            .is_some()
    );
    assert!(h.query_by_label("0 of 0 sessions").is_some());

    let sessions = dir.path().join(SESSIONS_DIR);
    std::fs::create_dir_all(&sessions).expect("sessions folder");
    treatment().write(&sessions, FIRST);
    h.get_by_label("Refresh").click();
    step_until(&mut h, "the new record listed", |h| {
        h.query_by_label("1 of 1 session").is_some()
    });
    assert!(h.query_by_label(&replay_button(FIRST)).is_some());
    h.get_by_label("Close").click();
    h.step();
    h.step();
    assert!(!h.state().library().is_open());
    assert!(h.query_by_label(&replay_button(FIRST)).is_none());
}

#[test]
fn during_a_session_the_library_should_refuse_replay_and_keep_the_live_alarms_in_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_sessions(dir.path());
    let mut h = harness(dir.path());
    step_until(&mut h, "a connected pen", |h| {
        h.state().station().is_some_and(|s| s.info().is_some())
    });
    let answers: serde_json::Map<String, serde_json::Value> =
        crate::safety::screening::QuestionId::ALL
            .into_iter()
            .filter(|q| q.answerable())
            .map(|q| (q.as_str().to_owned(), serde_json::Value::Bool(false)))
            .collect();
    let json = serde_json::json!({
        "client": "C-0042", "dob": "1990-05-01", "indication": "rejuvenation",
        "practitioner": "P-7", "answers": answers, "confirmed_cautions": []
    });
    h.state_mut()
        .apply(UiCommand::OpenSession(json.to_string()));
    assert!(
        h.state().station().and_then(|s| s.session()).is_some(),
        "{:?}",
        h.state().log_lines().collect::<Vec<_>>()
    );
    open_library(&mut h);
    assert!(
        h.query_by_label_contains("before opening a recording")
            .is_some(),
        "the screen says why Replay will be refused"
    );
    h.get_by_label(&replay_button(FIRST)).click();
    h.step();
    assert!(!h.state().opening() && h.state().replay().is_none());
    assert!(
        h.state()
            .last_refusal()
            .is_some_and(|r| r.contains("before opening a recording"))
    );
    // The live station stays in charge: Escape stops the pen, and its alarm shows
    // in the banner above the library.
    h.key_press(egui::Key::Escape);
    step_until(&mut h, "the estop alarm in the banner", |h| {
        h.query_by_label_contains("HIGH ALARM  estop").is_some()
    });
    assert!(
        h.state()
            .station()
            .is_some_and(|s| s.alarms().is_active(AlarmId::Estop))
    );
    assert!(h.state().library().is_open());
}
