//! Issue 12 §2: the station's wall clock steps during a session. The session's axis
//! comes from the monotonic clock (format 2: `mono_ms` on every line, a `clock` line
//! for the step), or, in a format 1 record, from the pen's clock across the step; the
//! report, the CSV and the replay agree, and nothing shows a day-long gap.

use std::time::Instant;

use super::format::{Header, Line, StateWord};
use super::report::Report;
use super::testkit::{self as kit, T0_MS};
use super::writer::Recorder;
use crate::replay::Replay;

const DAY_MS: i64 = 86_400_000;

/// A format 1 session, needling 3 s in the cheeks from 1 s, whose station clock
/// moves by `step_ms` at 2.5 s (the pen's clock goes on steadily).
fn stepped_v1(step_ms: i64) -> Vec<Line> {
    let mut header = kit::header("C-STEP");
    if let Line::Header(h) = &mut header {
        h.version = 1;
    }
    let mut lines = vec![
        header,
        kit::zone(500, "cheeks"),
        kit::command(900, 1, "RUN"),
        kit::answer(901, 1, "RUN", "ACK"),
    ];
    lines.extend(kit::tel_run(0, 1000, 10, 0, StateWord::Idle, 0));
    lines.extend(kit::tel_run(1000, 4000, 10, 100, StateWord::Running, 500));
    lines.extend(kit::tel_run(4000, 5000, 10, 400, StateWord::Idle, 500));
    // In the order the station wrote them.
    lines[1..].sort_by_key(Line::utc_ms);
    for line in &mut lines {
        let shift = |utc_ms: &mut i64| {
            if *utc_ms - T0_MS >= 2500 {
                *utc_ms += step_ms;
            }
        };
        match line {
            Line::Tel(t) => shift(&mut t.utc_ms),
            Line::Zone(z) => shift(&mut z.utc_ms),
            _ => {}
        }
    }
    lines
}

fn load(lines: &[Line]) -> (tempfile::TempDir, super::Recording) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = kit::write(dir.path(), "s.jsonl", &kit::jsonl(lines));
    let rec = super::load(&path).expect("loads");
    (dir, rec)
}

#[test]
fn a_format_1_record_whose_wall_clock_stepped_keeps_a_sane_axis() {
    for step_ms in [DAY_MS, -3_600_000] {
        let (_dir, rec) = load(&stepped_v1(step_ms));
        let axis = &rec.telemetry.session_ms;
        assert!(
            axis.windows(2).all(|w| w[1] > w[0]),
            "the axis stalls or goes back: {:?}",
            axis.windows(2).find(|w| w[1] <= w[0])
        );
        assert!(
            (4980..=5000).contains(axis.last().expect("samples")),
            "{:?}",
            axis.last()
        );
        assert!(
            rec.warnings
                .iter()
                .any(|w| w.message.contains("the station's wall clock stepped")),
            "{:?}",
            rec.warnings
        );
        let report = Report::from_recording(&rec);
        assert!(
            !report
                .interruptions
                .iter()
                .any(|i| i.kind == "telemetry_gap"),
            "{:?}",
            report.interruptions
        );
        // The replay's needling time at the end is the report's: 3 s.
        let needling_ms = report.needling_ms;
        assert!((2980..=3000).contains(&needling_ms), "{needling_ms}");
        let mut replay = Replay::new(rec);
        replay.apply(crate::replay::ReplayCommand::SeekMs(f64::MAX));
        assert_eq!(replay.needling_ms(), needling_ms);
    }
}

#[test]
fn the_recorder_stamps_every_line_with_the_monotonic_clock_and_records_a_step() {
    for step_ms in [DAY_MS, -3_600_000] {
        recorded_step(step_ms);
    }
}

fn recorded_step(step_ms: i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Line::Header(header) = kit::header("C-MONO") else {
        unreachable!("a header")
    };
    let header: Header = *header;
    let started = Instant::now();
    let mut recorder = Recorder::create(dir.path(), &header).expect("created");
    // The wall clock jumps a day forward after sample 5: the lines say so.
    for n in 0..10_u32 {
        let mut line = kit::tel(i64::from(n), n, StateWord::Idle, 0);
        if let Line::Tel(t) = &mut line
            && n >= 5
        {
            t.utc_ms += step_ms;
        }
        recorder.record(line).expect("recorded");
    }
    let path = recorder
        .finish(Line::Note(super::format::NoteLine {
            utc_ms: T0_MS + step_ms + 20,
            author: "P7".into(),
            text: "done".into(),
        }))
        .expect("finished");
    let elapsed_ms = i64::try_from(started.elapsed().as_millis()).expect("small") + 1;
    let text = std::fs::read_to_string(&path).expect("read");
    let values: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(values.iter().all(|v| {
        v["mono_ms"]
            .as_i64()
            .is_some_and(|m| (0..=elapsed_ms).contains(&m))
    }));
    let clocks: Vec<&serde_json::Value> = values.iter().filter(|v| v["type"] == "clock").collect();
    assert_eq!(clocks.len(), 1, "{text}");
    let step = clocks[0]["step_ms"].as_i64().expect("step");
    assert!((step - step_ms).abs() < 1000, "{step}");
    // Loaded, the axis is the monotonic clock: no day anywhere.
    let rec = super::load(&path).expect("loads");
    assert!(
        rec.telemetry
            .session_ms
            .iter()
            .all(|&t| i64::from(t) <= elapsed_ms)
    );
    assert!(rec.lines.iter().any(|l| matches!(l.line, Line::Clock(_))));
    // A step the record holds is no damage: nothing to warn about.
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    let report = Report::from_recording(&rec);
    assert_eq!(report.clock_steps.len(), 1);
    assert!(
        report.clock_steps[0].text.starts_with(if step_ms > 0 {
            "the station's wall clock stepped 24 h 0 min 0 s forward"
        } else {
            "the station's wall clock stepped 1 h 0 min 0 s back"
        }),
        "{:?}",
        report.clock_steps
    );
}
