//! Replay of a long recorded session: `cargo bench --bench replay`.
//!
//! A synthetic 30-minute session at 1000 Hz (1.8 M samples) is built in memory, the
//! way the loader hands it over: passes of 20 s every 30 s, a zone change every
//! 3 minutes, speed and depth acknowledgements, an alarm raised and cleared every
//! minute. Timed: building the replay (series and index), the state at a cursor
//! (what each frame asks: zone, per-zone figures, alarms, last sample) at random
//! positions, and whole window frames in replay mode, playing and showing the whole
//! session.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use punctum::record::format::{
    AlarmLine, AnswerLine, FORMAT_NAME, FORMAT_VERSION, Header, Line, StateWord, ZoneLine,
};
use punctum::record::recording::{RecordStatus, Recording, TelColumns, TelSample, TimedLine};
use punctum::replay::{Replay, ReplayCommand};
use punctum::safety::zones::ZoneTable;
use punctum::ui::app::{Persisted, StationApp, WindowOptions};
use punctum::ui::plots::PlotMode;

#[path = "common/frames.rs"]
mod frames;

use frames::percentile;

fn header() -> Header {
    let zones = ZoneTable::builtin();
    Header {
        utc_ms: 1_764_000_000_000,
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        station_version: env!("CARGO_PKG_VERSION").into(),
        session_id: "bench".into(),
        opened_at: "2025-11-24T16:00:00+00:00".into(),
        practitioner: "P-7".into(),
        client: "C-0042".into(),
        screening: serde_json::Value::Null,
        pen: None,
        calibration: None,
        zones: serde_json::from_str(&zones.to_json()).expect("the built-in table is JSON"),
        zones_hash: zones.hash_hex().to_owned(),
        simulated: true,
        alarm_sound: None,
    }
}

/// `minutes` of a session at `hz`.
fn recording(minutes: u32, hz: u32) -> Recording {
    let duration_ms = minutes * 60_000;
    let every_ms = 1000 / hz;
    let base = 1_764_000_000_000;
    let mut lines = Vec::new();
    let mut push = |at_ms: u32, line: Line| {
        lines.push(TimedLine {
            session_ms: i64::from(at_ms),
            line_no: 0,
            // Filled in below, once the samples are known.
            tel_before: 0,
            line,
        });
    };
    let zones = ["forehead", "cheeks", "perioral", "chin_jawline", "neck"];
    let limits = [500, 1000, 500, 1000, 1000];
    let mut t = 0;
    while t < duration_ms {
        let utc_ms = base + i64::from(t);
        if t % 180_000 == 0 {
            let z = (t / 180_000) as usize % zones.len();
            push(
                t,
                Line::Zone(ZoneLine {
                    utc_ms,
                    zone: zones[z].into(),
                    limit_um: limits[z],
                    halt_first: false,
                    lowered_from_um: None,
                    lowered_to_um: None,
                }),
            );
            push(t + 100, answer(utc_ms + 100, "DEPTH 500"));
            push(t + 200, answer(utc_ms + 200, "SPEED 6000"));
        }
        if t % 30_000 == 1000 {
            push(t, answer(utc_ms, "RUN"));
        }
        if t % 30_000 == 21_000 {
            push(t, answer(utc_ms, "HALT"));
        }
        if t % 60_000 == 45_000 {
            for (dt, action) in [(0, "raised"), (3000, "cleared")] {
                push(
                    t + dt,
                    Line::Alarm(AlarmLine {
                        utc_ms: utc_ms + i64::from(dt),
                        alarm: "telemetry_gaps".into(),
                        priority: "low".into(),
                        action: action.into(),
                        text: "gaps".into(),
                        account: None,
                    }),
                );
            }
        }
        t += 1000;
    }
    lines.sort_by_key(|l| l.session_ms);
    let samples = (duration_ms / every_ms) as usize;
    let mut telemetry = TelColumns::default();
    for i in 0..samples {
        let at_ms = u32::try_from(i).expect("fits") * every_ms;
        let running = (1000..21_000).contains(&(at_ms % 30_000));
        let wobble = i32::try_from(i % 97).expect("small");
        telemetry.push(TelSample {
            session_ms: at_ms,
            n: u32::try_from(i).expect("fits"),
            t_ms: 7000 + at_ms,
            state: if running {
                StateWord::Running
            } else {
                StateWord::Idle
            },
            rpm: if running { 6000 + wobble } else { 0 },
            depth_um: 500 - wobble,
            current_ma: 300,
            temp_dc: 310,
        });
    }
    // The samples received before each line: those stamped before it.
    for line in &mut lines {
        let at = u32::try_from(line.session_ms).expect("fits");
        line.tel_before = telemetry.session_ms.partition_point(|&t| t < at);
    }
    Recording {
        path: PathBuf::from("bench.jsonl"),
        header: header(),
        telemetry,
        lines,
        summary: None,
        status: RecordStatus::Interrupted,
        warnings: Vec::new(),
    }
}

fn answer(utc_ms: i64, command: &str) -> Line {
    Line::Answer(AnswerLine {
        utc_ms,
        seq: Some(1),
        command: command.into(),
        result: "ACK".into(),
        detail: None,
        rtt_us: Some(800),
    })
}

fn run(name: &str, minutes: u32, hz: u32, queries: usize, frames: usize) {
    let rec = recording(minutes, hz);
    let samples = rec.telemetry.len();
    let tel_bytes = rec.telemetry.heap_bytes();
    let started = Instant::now();
    let mut replay = Replay::new(rec);
    let build = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let series_mb = replay.series().bytes_used() as f64 / 1e6;
    #[allow(clippy::cast_precision_loss)]
    let tel_mb = tel_bytes as f64 / 1e6;
    println!(
        "{name}: {samples} samples, {} events; replay built in {:.3} s \
         (series {series_mb:.1} MB on top of the recording's {tel_mb:.1} MB of telemetry)",
        replay.events().len(),
        build.as_secs_f64()
    );

    // The state at the cursor, as each frame asks it, at pseudo-random positions.
    let duration_ms = replay.duration_ms();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut times = Vec::with_capacity(queries);
    let mut sink = 0usize;
    for _ in 0..queries {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        #[allow(clippy::cast_precision_loss)]
        let at = (x % 1_000_000) as f64 / 1_000_000.0 * duration_ms;
        replay.apply(ReplayCommand::SeekMs(at));
        let started = Instant::now();
        sink += replay.active_alarms().len()
            + replay.zone_figures().len()
            + usize::from(replay.last_sample().is_some())
            + usize::from(replay.active_zone().is_some());
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name}: state at the cursor p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs ({sink})",
        us(percentile(&times, 50)),
        us(percentile(&times, 99)),
        us(times.last().copied().unwrap_or_default())
    );

    // Whole window frames in replay mode.
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WindowOptions {
        sim: true,
        data_dir: Some(dir.path().to_path_buf()),
        ..WindowOptions::default()
    };
    replay.apply(ReplayCommand::SeekMs(duration_ms / 3.0));
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        .build_eframe(move |_cc| StationApp::new_replay(options, Persisted::default(), replay));
    harness
        .state_mut()
        .apply(punctum::ui::app::UiCommand::Replay(ReplayCommand::Play));
    for mode in [PlotMode::FollowLive, PlotMode::WholeSession] {
        harness.state_mut().plots.mode = mode;
        let times = frames::time_frames(&mut harness, frames);
        println!(
            "{name} (replay playing, {mode:?}): frame {}",
            frames::summary_ms(&times)
        );
    }
}

fn main() {
    // `cargo test` runs benches with --bench absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        run("smoke", 1, 100, 100, 5);
        return;
    }
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    run("30 min at 1000 Hz", 30, 1000, 10_000, 300);
}
