//! Recording overhead at 1000 Hz: a whole station (link thread, recorder thread,
//! station pumped at a window's 60 frames/s) against the built-in simulated pen over a
//! real pty, with the needle running and the session recorded; then the same without
//! a session (nothing recorded) for comparison. Run in release mode:
//!
//! ```text
//! cargo bench --bench recording              # 60 s each
//! cargo bench --bench recording -- quick     # 10 s each
//! ```
//!
//! Figures: the link thread's timed duties (heartbeats every 80 ms, retries, E-stop
//! resends) done on time and late (more than 20 ms after due), the latest of them;
//! telemetry received, dropped and recorded; the record's size per sample.

use std::time::{Duration, Instant};

use punctum::link::{DEADLINE_SLACK, Link, LinkConfig, LinkState};
use punctum::protocol::Command;
use punctum::record::Line;
use punctum::safety::interlock::SafetyUpdate;
use punctum::safety::screening::QuestionId;
use punctum::safety::zones::ZoneId;
use punctum::station::{Station, setup};

/// A window frame: the station is pumped this often.
const FRAME: Duration = Duration::from_millis(16);

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let secs = if quick { 10 } else { 60 };
    println!(
        "machine: {} cores; {secs} s per run at 1000 Hz, station pumped every {} ms",
        std::thread::available_parallelism().map_or(0, usize::from),
        FRAME.as_millis()
    );
    run(secs, true);
    run(secs, false);
}

fn screening() -> String {
    // Every answerable question answered no: nothing to declare.
    let answers: serde_json::Map<String, serde_json::Value> = QuestionId::ALL
        .iter()
        .filter(|q| q.answerable())
        .map(|q| (q.as_str().to_owned(), serde_json::Value::Bool(false)))
        .collect();
    serde_json::json!({
        "client": "BENCH-1", "dob": "1990-05-01", "indication": "rejuvenation",
        "practitioner": "P-7", "answers": answers, "confirmed_cautions": []
    })
    .to_string()
}

#[allow(clippy::cast_precision_loss)] // printed figures: counts far below 2^52
fn run(secs: u64, recording: bool) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = setup::open_data_dir(Some(&tmp.path().join("data"))).expect("data dir");
    let zones = setup::load_zones(None, &data).expect("zones");
    let pen = setup::start_builtin_sim(&data).expect("simulated pen");
    let mut config = LinkConfig::new(pen.port_path());
    config.zones = zones.clone();
    config.telemetry_hz = 1000;
    let link = Link::spawn(config).expect("link");
    let mut station = Station::new(link, data, zones).expect("station");
    let until = Instant::now() + Duration::from_secs(10);
    while !matches!(station.link_state(), LinkState::Connected { .. }) {
        assert!(Instant::now() < until, "no connection");
        station.pump(FRAME);
    }
    if recording {
        let outcome = station.open_session(&screening()).expect("session");
        assert!(outcome.passed());
        station
            .safety(SafetyUpdate::SelectZone(ZoneId::Cheeks))
            .expect("link")
            .expect("zone");
        station
            .command(Command::Depth { depth_um: 800 })
            .expect("depth");
        let run = station.command(Command::Run).expect("run");
        assert_eq!(run.outcome, punctum::link::Outcome::Ack, "{run:?}");
    }
    let before = station.stats().clone();
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < Duration::from_secs(secs) {
        next += FRAME;
        station.pump(next.saturating_duration_since(Instant::now()));
        // What the window does between pumps (drawing) is not modelled: the pump waits
        // out the rest of the frame.
        while Instant::now() < next {
            station.pump(next.saturating_duration_since(Instant::now()));
        }
    }
    let record = station.record_path().map(std::path::Path::to_path_buf);
    if recording {
        station.end_session(true).expect("end");
    }
    // One more stats report after the run.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        station.pump(FRAME);
    }
    let after = station.stats().clone();
    let met = after.deadlines_met - before.deadlines_met;
    let missed = after.deadlines_missed - before.deadlines_missed;
    println!(
        "{}: link deadlines met {met}, missed {missed} (late by > {} ms), latest {:.2} ms; \
         telemetry received {}, lost {}, dropped {}",
        if recording {
            "recording, needle running"
        } else {
            "not recording (no session)"
        },
        DEADLINE_SLACK.as_millis(),
        after.deadline_late_max_us as f64 / 1000.0,
        after.telemetry_samples - before.telemetry_samples,
        after.samples_lost - before.samples_lost,
        after.telemetry_dropped - before.telemetry_dropped,
    );
    if let Some(path) = record {
        let text = std::fs::read_to_string(&path).expect("record");
        let tel_lines = text
            .lines()
            .filter(|l| l.starts_with(r#"{"type":"tel""#))
            .count();
        // The summary counts the samples the station received while the session was
        // open; every one of them should have a line.
        let samples = match text.lines().last().map(serde_json::from_str::<Line>) {
            Some(Ok(Line::Summary(summary))) => summary.samples,
            _ => panic!("the record has no summary"),
        };
        let bytes = text.len();
        println!(
            "  record: {tel_lines} telemetry lines of {samples} samples received in the \
             session ({} lost), {} lines, {:.1} MB, {:.0} bytes per telemetry line",
            samples.saturating_sub(tel_lines as u64),
            text.lines().count(),
            bytes as f64 / 1e6,
            bytes as f64 / tel_lines.max(1) as f64
        );
    }
    station.shutdown();
    drop(pen);
}
