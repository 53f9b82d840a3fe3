//! Link figures over a real pseudo-terminal, against the simulated pen. Run in
//! release mode:
//!
//! ```text
//! cargo run --release --example link_bench            # all three, 60 s at 1000 Hz
//! cargo run --release --example link_bench -- quick   # a 10 s soak instead of 60 s
//! ```
//!
//! 1. The pen at 1000 Hz for 60 s: samples lost (target: zero).
//! 2. The pen unthrottled: telemetry frames/s the link sustains with zero loss.
//! 3. Command round trip (owner's request to the pen's answer), p50 and p99.

use std::time::{Duration, Instant};

use punctum::link::stats::percentile;
use punctum::link::{Link, LinkConfig, LinkEvent, LinkState, LinkStats, Outcome};
use punctum::protocol::Command;
use punctum::safety::interlock::SafetyUpdate;
use punctum::safety::zones::ZoneId;
use punctum::sim::{SimConfig, SimPen};

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let soak_secs = if quick { 10 } else { 60 };
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    soak_1000_hz(soak_secs);
    unthrottled(10);
    round_trip(5000);
}

fn start(config: SimConfig, hz: u32) -> (SimPen, Link) {
    let pen = SimPen::spawn(config).expect("simulated pen");
    let mut link_config = LinkConfig::new(pen.port_path());
    link_config.telemetry_hz = hz;
    let link = Link::spawn(link_config).expect("link");
    link.wait_for(
        Duration::from_secs(10),
        |e| matches!(e, LinkEvent::State(LinkState::Connected { .. })),
        |_| {},
    )
    .expect("connected");
    (pen, link)
}

/// Drains telemetry for `secs`, checking the counter; returns (samples, gaps seen).
fn drain(link: &Link, secs: u64) -> (u64, u64, Duration) {
    let mut samples = 0u64;
    let mut gaps = 0u64;
    let mut expected = None;
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    while Instant::now() < until {
        link.feed_liveness();
        while let Ok(t) = link.telemetry().try_recv() {
            if expected.is_some_and(|e| e != t.n) {
                gaps += 1;
            }
            expected = Some(t.n.wrapping_add(1));
            samples += 1;
        }
        while link.events().try_recv().is_ok() {}
        if let Ok(t) = link.telemetry().recv_timeout(Duration::from_millis(20)) {
            if expected.is_some_and(|e| e != t.n) {
                gaps += 1;
            }
            expected = Some(t.n.wrapping_add(1));
            samples += 1;
        }
    }
    (samples, gaps, started.elapsed())
}

fn final_stats(link: &Link) -> LinkStats {
    let mut last = None;
    let _ = link
        .wait_for(
            Duration::from_secs(2),
            |e| matches!(e, LinkEvent::Stats(_)),
            |_| {},
        )
        .map(|e| {
            if let LinkEvent::Stats(s) = e {
                last = Some(s);
            }
        });
    last.unwrap_or_default()
}

fn soak_1000_hz(secs: u64) {
    let (_pen, link) = start(SimConfig::default(), 1000);
    let (samples, gaps, elapsed) = drain(&link, secs);
    let stats = final_stats(&link);
    println!(
        "1000 Hz for {secs} s: {samples} samples in {:.1} s, gaps seen {gaps}, link counted \
         gaps {} lost {} dropped {} discarded {}",
        elapsed.as_secs_f64(),
        stats.telemetry_gaps,
        stats.samples_lost,
        stats.telemetry_dropped,
        stats.discarded.total()
    );
}

fn unthrottled(secs: u64) {
    let mut config = SimConfig::default();
    config.pen.unthrottled_telemetry = true;
    let (pen, link) = start(config, 1000);
    let (samples, gaps, elapsed) = drain(&link, secs);
    let stats = final_stats(&link);
    #[allow(clippy::cast_precision_loss)]
    let rate = samples as f64 / elapsed.as_secs_f64();
    let sim = pen.stats();
    println!(
        "unthrottled for {secs} s: {rate:.0} frames/s received, gaps seen {gaps}, link counted \
         lost {} dropped {} discarded {}; pen dropped {} lines it could not write",
        stats.samples_lost,
        stats.telemetry_dropped,
        stats.discarded.total(),
        sim.telemetry_dropped
    );
}

fn round_trip(count: usize) {
    let (_pen, link) = start(SimConfig::default(), 100);
    // DEPTH passes the interlock only in a zone: select one, as an operator would.
    let id = link
        .update_safety(SafetyUpdate::SelectZone(ZoneId::Cheeks))
        .expect("link alive");
    link.wait_for(
        Duration::from_secs(2),
        |e| matches!(e, LinkEvent::SafetyApplied { id: got, result: Ok(_) } if *got == id),
        |_| {},
    )
    .expect("zone selected");
    let mut rtts_us = Vec::with_capacity(count);
    for i in 0..count {
        let depth_um = if i % 2 == 0 { 500 } else { 550 };
        let id = link.send(Command::Depth { depth_um }).expect("queued");
        let answer = link
            .wait_for(
                Duration::from_secs(2),
                |e| matches!(e, LinkEvent::Answer(a) if a.id == id),
                |_| {},
            )
            .expect("answered");
        let LinkEvent::Answer(answer) = answer else {
            unreachable!()
        };
        assert_eq!(answer.outcome, Outcome::Ack);
        if let Some(rtt) = answer.round_trip {
            rtts_us.push(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
        }
    }
    rtts_us.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let ms = |v: Option<u64>| v.map_or(f64::NAN, |us| us as f64 / 1000.0);
    println!(
        "round trip over {} commands through the interlock (telemetry at 100 Hz alongside): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        rtts_us.len(),
        ms(percentile(&rtts_us, 50)),
        ms(percentile(&rtts_us, 99)),
        ms(rtts_us.last().copied())
    );
}
