//! Time-series store: `cargo bench --bench timeseries`.
//!
//! The figures the plot issue names: push throughput with the window's 5 channels,
//! and the per-frame query (one bucket per pixel, 1200 px) over the whole session and
//! over the follow-live 30 s, for a 60-minute session at 1000 Hz (3.6 M rows) and a
//! 30-minute session at 100 Hz (180 k rows). Memory figures and the cost of one
//! compaction are printed to stderr during setup.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use punctum::timeseries::{Channel, TimeSeries};
use std::hint::black_box;
use std::time::Instant;

/// The window's channels: needle speed (measured, target) and depth (actual, target,
/// zone limit).
const CHANNELS: [&str; 5] = [
    "rpm",
    "rpm_target",
    "depth_um",
    "depth_target_um",
    "zone_limit_um",
];

/// Pixel columns of a wide plot.
const PIXELS: usize = 1200;

/// 2^22 rows: 69.9 min at 1000 Hz, a plausible station setting.
const CAPACITY_SAMPLES: usize = 1 << 22;

/// Deterministic telemetry-like rows: noisy speed around a target, depth steps.
struct Synth {
    state: u64,
}

impl Synth {
    fn next_noise(&mut self) -> f32 {
        // xorshift64: cheap, deterministic, good enough to defeat constant folding.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        f32::from(u16::try_from(self.state >> 54).unwrap_or(0)) - 512.0
    }

    fn row(&mut self, i: u64) -> [f32; 5] {
        let target_rpm = if (i / 60_000).is_multiple_of(2) {
            6000.0
        } else {
            9000.0
        };
        let depth_target_um = f32::from(u16::try_from(500 + (i / 20_000) % 8 * 250).unwrap_or(0));
        [
            target_rpm + self.next_noise() * 0.2,
            target_rpm,
            depth_target_um + self.next_noise() * 0.05,
            depth_target_um,
            2500.0,
        ]
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "sample indices are far below 2^53"
)]
fn session(rate_hz: u64, minutes: u64, capacity_samples: usize) -> TimeSeries {
    let mut store = TimeSeries::new(&CHANNELS, capacity_samples);
    let mut synth = Synth {
        state: 0x9e37_79b9_7f4a_7c15,
    };
    for i in 0..rate_hz * 60 * minutes {
        let t_s = i as f64 / rate_hz as f64;
        store.push(t_s, &synth.row(i)).expect("times increase");
    }
    store
}

fn channels(store: &TimeSeries) -> Vec<Channel> {
    CHANNELS
        .iter()
        .map(|name| store.channel(name).expect("channel exists"))
        .collect()
}

/// What one frame of the window asks for: one line per channel.
fn frame_points(store: &TimeSeries, channels: &[Channel], t0: f64, t1: f64) -> usize {
    channels
        .iter()
        .map(|&ch| store.plot_points(ch, t0, t1, PIXELS).len())
        .sum()
}

fn report_memory(label: &str, store: &TimeSeries) {
    eprintln!(
        "{label}: {} rows, {:.1} MB used, {:.2} bytes/sample (all 5 channels), \
         bound {:.1} MB for {} rows, {} compactions",
        store.len(),
        mib(store.bytes_used()),
        store.bytes_per_sample(),
        mib(store.max_bytes()),
        store.capacity_samples(),
        store.compactions(),
    );
}

#[expect(clippy::cast_precision_loss, reason = "a display figure")]
fn mib(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

#[expect(
    clippy::cast_precision_loss,
    reason = "sample indices are far below 2^53"
)]
fn bench_push(c: &mut Criterion) {
    const ROWS: u64 = 200_000;
    let mut group = c.benchmark_group("push_5ch");
    group.throughput(Throughput::Elements(ROWS));
    // A fresh store growing to 200 k rows: includes the doubling reallocations.
    group.bench_function("200k_rows_growing", |b| {
        b.iter(|| {
            let mut synth = Synth { state: 1 };
            let mut store = TimeSeries::new(&CHANNELS, CAPACITY_SAMPLES);
            for i in 0..ROWS {
                store
                    .push(i as f64 * 1e-3, &synth.row(i))
                    .expect("times increase");
            }
            black_box(store.len())
        });
    });
    // 200 k rows through a 32 Ki-row store: 24 compactions, their cost amortised in.
    group.bench_function("200k_rows_compacting_32Ki", |b| {
        b.iter(|| {
            let mut synth = Synth { state: 1 };
            let mut store = TimeSeries::new(&CHANNELS, 1 << 15);
            for i in 0..ROWS {
                store
                    .push(i as f64 * 1e-3, &synth.row(i))
                    .expect("times increase");
            }
            black_box(store.compactions())
        });
    });
    group.finish();
}

fn bench_queries(c: &mut Criterion, label: &str, store: &TimeSeries) {
    let chans = channels(store);
    let Some((start_s, end_s)) = store.time_range() else {
        return;
    };
    let live_s = end_s - 30.0;
    let mut group = c.benchmark_group(label);
    group.bench_function("envelope_whole_1ch", |b| {
        b.iter(|| black_box(store.envelope(chans[0], black_box(start_s), end_s, PIXELS)));
    });
    group.bench_function("envelope_last_30s_1ch", |b| {
        b.iter(|| black_box(store.envelope(chans[0], black_box(live_s), end_s, PIXELS)));
    });
    group.bench_function("frame_plot_points_whole_5ch", |b| {
        b.iter(|| frame_points(store, &chans, black_box(start_s), end_s));
    });
    group.bench_function("frame_plot_points_last_30s_5ch", |b| {
        b.iter(|| frame_points(store, &chans, black_box(live_s), end_s));
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    bench_push(c);

    let started = Instant::now();
    let long = session(1000, 60, CAPACITY_SAMPLES);
    eprintln!("60 min @ 1000 Hz built in {:.2?}", started.elapsed());
    report_memory("60 min @ 1000 Hz", &long);
    bench_queries(c, "session_60min_1000Hz", &long);
    drop(long);

    let short = session(100, 30, CAPACITY_SAMPLES);
    report_memory("30 min @ 100 Hz", &short);
    bench_queries(c, "session_30min_100Hz", &short);
    drop(short);

    // Worst-case single push: the one that finds a 3.6 M-row store full and compacts.
    let mut full = session(1000, 60, 3_600_000);
    let t_s = full.time_range().map_or(0.0, |(_, end)| end) + 1e-3;
    let started = Instant::now();
    full.push(t_s, &[0.0; 5]).expect("times increase");
    eprintln!(
        "one compaction of a full 3.6 M-row, 5-channel store: {:.2?}",
        started.elapsed()
    );
    report_memory("after that compaction", &full);
}

criterion_group!(benches, bench);
criterion_main!(benches);
