//! The needle monitor's and the start rules' figures (issue 11), over a real
//! pseudo-terminal against the simulated pen at 1000 Hz. Run in release mode:
//!
//! ```text
//! cargo run --release --example needle_bench            # 200 stops, 30 zone changes
//! cargo run --release --example needle_bench -- quick   # 50 and 10
//! ```
//!
//! 1. From a telemetry sample that shows the needle above the zone's limit to the
//!    E-stop byte on the wire: the needle slips deeper (the simulated pen's
//!    `depth-creep`: 5 mm/s past its target, unnoticed by the pen) while it runs at
//!    0.30 mm around the eyes. Measured twice:
//!    - the station's reaction, on its monotonic clock: from the port reader's read
//!      that brought the sample to the E-stop byte written (`LinkEvent::NeedleStopped`);
//!    - the pen's view, on its own 1 ms clock: from emitting the sample to receiving
//!      the byte (pty transit and the simulated pen's scheduling included).
//! 2. How long a zone change from the body at 1.50 mm to the eyes at 0.30 mm keeps the
//!    operator waiting before `RUN` may go out: the needle is stopped (the eyes are
//!    refused while it runs that deep), the zone selected (the depth lowered to
//!    0.30 mm), and the start requested right after, as the console does; from the
//!    start request, the zone change and the stop to `RUN` on the wire.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use punctum::link::stats;
use punctum::link::{Link, LinkConfig, LinkEvent, LinkState, Outcome, WireEvent};
use punctum::protocol::{Calibration, CartridgeId, Command, PenState};
use punctum::safety::interlock::{CartridgeCheck, SafetyUpdate, SessionFacts, yyyymmdd};
use punctum::safety::zones::ZoneId;
use punctum::sim::{Journaled, PenConfig, PhysicalFault, SimAction, SimConfig, SimPen};

const WAIT: Duration = Duration::from_secs(10);

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (stops, changes) = if quick { (50, 10) } else { (200, 30) };
    println!(
        "machine: {} cores, telemetry 1000 Hz",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    estop_latency(stops);
    zone_change_wait(changes);
}

fn start() -> (SimPen, Link) {
    let pen = SimPen::spawn(SimConfig {
        pen: PenConfig {
            journal_telemetry: true,
            ..PenConfig::default()
        },
        initial_calibration: Some(Calibration {
            date: yyyymmdd(jiff::Zoned::now().date()),
            tech: "T1".into(),
            ..Calibration::identity()
        }),
        ..SimConfig::default()
    })
    .expect("simulated pen");
    let mut config = LinkConfig::new(pen.port_path());
    config.telemetry_hz = 1000;
    let link = Link::spawn(config).expect("link");
    link.wait_for(
        WAIT,
        |e| matches!(e, LinkEvent::State(LinkState::Connected { .. })),
        |_| {},
    )
    .expect("connected");
    for update in [
        SafetyUpdate::Session(Some(SessionFacts {
            session_id: "S-bench".into(),
            client: "C-bench".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: BTreeMap::new(),
            preparation: punctum::safety::procedure::Preparation::waived(
                "not a treatment: a test of the needle rules",
            ),
        })),
        SafetyUpdate::CartridgeChecked {
            id: CartridgeId(0x0123_4567_89AB_CDEF),
            check: CartridgeCheck::Fresh,
        },
    ] {
        safety(&link, update);
    }
    (pen, link)
}

fn safety(link: &Link, update: SafetyUpdate) {
    let id = link.update_safety(update).expect("alive");
    link.wait_for(
        WAIT,
        |e| matches!(e, LinkEvent::SafetyApplied { id: got, result: Ok(_) } if *got == id),
        |_| {},
    )
    .expect("applied");
}

fn ack(link: &Link, command: &Command) {
    let id = link.send(command.clone()).expect("queued");
    let event = link
        .wait_for(
            WAIT,
            |e| matches!(e, LinkEvent::Answer(a) if a.id == id),
            |_| {},
        )
        .expect("answered");
    let LinkEvent::Answer(answer) = event else {
        unreachable!()
    };
    assert_eq!(answer.outcome, Outcome::Ack, "{command:?}: {answer:?}");
}

fn drain(link: &Link) {
    while link.telemetry().try_recv().is_ok() {}
}

/// Waits for a sample in `state` that came after the call (older ones are drained).
fn wait_state(link: &Link, state: PenState) {
    drain(link);
    let until = Instant::now() + WAIT;
    loop {
        link.feed_liveness();
        if let Ok(t) = link.telemetry().recv_timeout(Duration::from_millis(20))
            && t.state == state
        {
            return;
        }
        while link.events().try_recv().is_ok() {}
        assert!(Instant::now() < until, "the pen never showed {state}");
    }
}

/// Waits until the measured speed reaches `rpm`.
fn wait_speed(link: &Link, rpm: i32) {
    drain(link);
    let until = Instant::now() + WAIT;
    loop {
        link.feed_liveness();
        if let Ok(t) = link.telemetry().recv_timeout(Duration::from_millis(20))
            && t.rpm >= rpm
        {
            return;
        }
        while link.events().try_recv().is_ok() {}
        assert!(Instant::now() < until, "the pen never reached {rpm} rpm");
    }
}

fn estop_latency(trials: usize) {
    let (pen, link) = start();
    safety(&link, SafetyUpdate::SelectZone(ZoneId::Periorbital));
    let limit_um = 300;
    let mut station_us = Vec::new();
    let mut pen_ms = Vec::new();
    for _ in 0..trials {
        ack(&link, &Command::Depth { depth_um: limit_um });
        ack(&link, &Command::Run);
        wait_state(&link, PenState::Running);
        let mark = pen.journal_mark();
        pen.act(SimAction::InjectFault(PhysicalFault::DepthCreep))
            .expect("pen alive");
        let event = link
            .wait_for(
                WAIT,
                |e| matches!(e, LinkEvent::NeedleStopped { .. }),
                |_| {},
            )
            .expect("the monitor stops the needle");
        let LinkEvent::NeedleStopped { reaction, .. } = event else {
            unreachable!()
        };
        station_us.push(u64::try_from(reaction.as_micros()).unwrap_or(u64::MAX));
        let byte = pen
            .wait_for_since(mark, WAIT, |e| matches!(e.what, Journaled::EstopByte))
            .expect("the byte reached the pen");
        let (entries, _) = pen.journal_since(mark);
        let first_over = entries
            .iter()
            .find_map(|e| match &e.what {
                Journaled::Sample(t) if i64::from(t.depth_um) > limit_um + 10 => Some(e.t_ms),
                _ => None,
            })
            .expect("a sample over the limit");
        pen_ms.push(u64::from(byte.t_ms.wrapping_sub(first_over)));
        pen.act(SimAction::ClearFaults).expect("pen alive");
        wait_state(&link, PenState::Estop);
        ack(&link, &Command::Reset);
        drain(&link);
    }
    station_us.sort_unstable();
    pen_ms.sort_unstable();
    println!(
        "E-stop after a sample above the limit ({trials} stops): station reaction p50 {} µs, \
         p99 {} µs, max {} µs; pen's view (1 ms clock) p50 {} ms, p99 {} ms, max {} ms",
        percentile(&station_us, 50),
        percentile(&station_us, 99),
        station_us.last().copied().unwrap_or(0),
        percentile(&pen_ms, 50),
        percentile(&pen_ms, 99),
        pen_ms.last().copied().unwrap_or(0),
    );
}

fn zone_change_wait(trials: usize) {
    let (_pen, link) = start();
    let mut run_wait_ms = Vec::new();
    let mut change_to_run_ms = Vec::new();
    let mut stop_to_run_ms = Vec::new();
    for _ in 0..trials {
        safety(&link, SafetyUpdate::SelectZone(ZoneId::Body));
        ack(&link, &Command::Depth { depth_um: 1500 });
        ack(&link, &Command::Run);
        wait_speed(&link, 6000);
        // The eyes are refused while the needle runs at 1.50 mm: stop, then select.
        let stopped = Instant::now();
        ack(&link, &Command::Halt);
        wait_state(&link, PenState::Idle);
        let changed = Instant::now();
        safety(&link, SafetyUpdate::SelectZone(ZoneId::Periorbital));
        ack(&link, &Command::Depth { depth_um: 300 });
        let asked = Instant::now();
        let id = link.send(Command::Run).expect("queued");
        let mut sent = None;
        let event = link
            .wait_for(
                WAIT,
                |e| matches!(e, LinkEvent::Answer(a) if a.id == id),
                |e| {
                    if let LinkEvent::Wire(WireEvent::Sent {
                        command: Command::Run,
                        ..
                    }) = e
                    {
                        sent.get_or_insert_with(Instant::now);
                    }
                },
            )
            .expect("answered");
        let LinkEvent::Answer(answer) = event else {
            unreachable!()
        };
        assert_eq!(answer.outcome, Outcome::Ack, "{answer:?}");
        let sent = sent.unwrap_or_else(Instant::now);
        run_wait_ms.push(duration_ms(sent.duration_since(asked)));
        change_to_run_ms.push(duration_ms(sent.duration_since(changed)));
        stop_to_run_ms.push(duration_ms(sent.duration_since(stopped)));
        ack(&link, &Command::Halt);
        wait_state(&link, PenState::Idle);
        drain(&link);
    }
    run_wait_ms.sort_unstable();
    change_to_run_ms.sort_unstable();
    stop_to_run_ms.sort_unstable();
    println!(
        "zone change body 1.50 mm -> periorbital 0.30 mm ({trials} changes): start request to RUN \
         on the wire p50 {} ms, p99 {} ms, max {} ms; from the zone change p50 {} ms, p99 {} ms; \
         from the stop (6000 rpm) p50 {} ms, p99 {} ms",
        percentile(&run_wait_ms, 50),
        percentile(&run_wait_ms, 99),
        run_wait_ms.last().copied().unwrap_or(0),
        percentile(&change_to_run_ms, 50),
        percentile(&change_to_run_ms, 99),
        percentile(&stop_to_run_ms, 50),
        percentile(&stop_to_run_ms, 99),
    );
}

/// The `p`th percentile of sorted `values` (0 when there are none).
fn percentile(values: &[u64], p: usize) -> u64 {
    stats::percentile(values, p).unwrap_or(0)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
