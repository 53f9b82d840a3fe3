//! Timing whole window frames, shared by the window and replay benchmarks.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use punctum::ui::app::StationApp;

/// The nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// Runs 10 frames to settle, then times `frames` more; the times, sorted.
pub fn time_frames(harness: &mut Harness<'static, StationApp>, frames: usize) -> Vec<Duration> {
    for _ in 0..10 {
        harness.step();
    }
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let started = Instant::now();
        harness.step();
        times.push(started.elapsed());
    }
    times.sort_unstable();
    times
}

/// `p50 … ms, p99 … ms, max … ms` of sorted frame times.
pub fn summary_ms(sorted: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 99)),
        ms(sorted.last().copied().unwrap_or_default())
    )
}
