//! Frame time of the station window with a long session in memory:
//! `cargo bench --bench window`.
//!
//! The real app (all panels, the face map, both plots) runs in an `egui_kittest` harness
//! against the built-in simulated pen. The station's time-series store is filled with a
//! synthetic session first, then frames are timed in the two plot modes: following the
//! last 30 s, and the whole session at once. A frame here is egui's whole pass (layout,
//! per-pixel aggregation of the visible range, plot items); the GPU's rasterising is
//! not included.

use std::time::Instant;

use egui_kittest::Harness;
use punctum::ui::app::{Persisted, StationApp, WindowOptions};
use punctum::ui::plots::PlotMode;

#[path = "common/frames.rs"]
mod frames;

fn run(name: &str, minutes: u64, hz: u64, frames: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WindowOptions {
        sim: true,
        data_dir: Some(dir.path().to_path_buf()),
        telemetry_hz: 100,
        ..WindowOptions::default()
    };
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        .build_eframe(move |_cc| StationApp::new(options, Persisted::default()));
    harness.step();
    let samples = minutes * 60 * hz;
    let fill_started = Instant::now();
    {
        let app = harness.state_mut();
        let station = app.station_mut().expect("connected to the built-in pen");
        let now_s = station.now_s();
        #[allow(clippy::cast_precision_loss)] // sample counts far below 2^52
        let span_s = samples as f64 / hz as f64;
        // A fresh store with the same channels, filled with the past `span_s` seconds.
        let names: Vec<String> = station
            .series()
            .channel_names()
            .iter()
            .map(ToString::to_string)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let capacity = station.series().capacity_samples();
        let series = station.series_mut();
        *series = punctum::timeseries::TimeSeries::new(&names, capacity);
        for i in 0..samples {
            #[allow(clippy::cast_precision_loss)]
            let t_s = now_s - span_s + i as f64 / hz as f64;
            #[allow(clippy::cast_precision_loss)]
            let wobble = (i % 97) as f32;
            let values = [6000.0 + wobble, 6000.0, 1.0 - wobble / 1000.0, 1.0, 1.0];
            series.push(t_s, &values).expect("time goes forward");
        }
    }
    let fill = fill_started.elapsed();
    let (bytes, per_sample) = {
        let station = harness.state().station().expect("connected");
        (
            station.series().bytes_used(),
            station.series().bytes_per_sample(),
        )
    };
    for mode in [PlotMode::FollowLive, PlotMode::WholeSession] {
        harness.state_mut().plots.mode = mode;
        let times = frames::time_frames(&mut harness, frames);
        println!(
            "{name} ({samples} samples/channel, {mode:?}): frame {} (points in the speed plot: {})",
            frames::summary_ms(&times),
            harness.state().plots.last_speed_points
        );
    }
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "{name}: store {mb:.1} MB ({per_sample:.1} bytes/sample, 5 channels), filled in {:.2} s",
        fill.as_secs_f64()
    );
}

fn main() {
    // `cargo test` runs benches with --bench absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        run("smoke", 1, 100, 5);
        return;
    }
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    run("30 min at 100 Hz", 30, 100, 300);
    run("60 min at 1000 Hz", 60, 1000, 300);
}
