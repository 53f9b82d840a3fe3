//! The link thread against the simulated pen, over real pseudo-terminals, end to end.

mod common;

use std::time::{Duration, Instant};

use common::*;
use punctum::link::{LinkEvent, LinkState, LossReason, Outcome};
use punctum::protocol::{
    BootReason, Command, EstopSource, FaultCode, NakReason, PenEvent, PenMessage, PenState, Seq,
    crc16,
};
use punctum::safety::interlock::Rule;
use punctum::safety::zones::ZoneId;
use punctum::sim::{Journaled, SimAction, SimConfig};

#[test]
fn the_handshake_says_hello_reads_calibration_and_starts_telemetry() {
    let pen = sim(SimConfig::default());
    let (link, info) = connect(link_config(&pen, 500));
    assert_eq!(info.proto, 1);
    assert_eq!(info.model, "MNP-1");
    assert_eq!(info.watchdog_ms, 300);
    let handshake: Vec<Command> = executed(&pen)
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| *c != Command::Hb)
        .take(4)
        .collect();
    // The pen keeps its depth across HELLO: the station retracts it before anything
    // else, and knows the target from then on.
    assert_eq!(
        handshake,
        [
            Command::Hello { proto: 1 },
            Command::Depth { depth_um: 0 },
            Command::CalGet,
            Command::Tel { hz: 500 }
        ]
    );
    // Telemetry flows, counted from 0 after HELLO.
    let first = link
        .telemetry()
        .recv_timeout(DEADLINE)
        .expect("telemetry arrives");
    assert_eq!(first.n, 0);
    link.shutdown();
}

#[test]
fn the_pen_answers_every_nak_reason() {
    let pen = sim(SimConfig::default());
    let mut host = RawHost::open(&pen.port_path());
    let nak = |host: &mut RawHost, seq: u16, reason: NakReason| {
        let want = PenMessage::Nak(Seq::new(seq).expect("nonzero"), reason);
        host.expect(&format!("NAK {seq} {reason}"), |m| *m == want);
    };
    host.send(1, &Command::Depth { depth_um: 500 });
    nak(&mut host, 1, NakReason::Hello);
    host.send(2, &Command::Hello { proto: 2 });
    nak(&mut host, 2, NakReason::Proto);
    host.hello(3);
    host.send_body("4 FLY");
    nak(&mut host, 4, NakReason::Unknown);
    host.send_body("5 DEPTH");
    nak(&mut host, 5, NakReason::Args);
    // 510 µm is not a multiple of the 50 µm step.
    host.send(6, &Command::Depth { depth_um: 510 });
    nak(&mut host, 6, NakReason::Range);
    host.send(7, &Command::Run);
    host.expect_ack(7);
    host.send(8, &Command::Reset);
    nak(&mut host, 8, NakReason::State);
    host.send(9, &Command::Halt);
    host.expect_ack(9);
    pen.act(SimAction::RemoveCartridge).expect("pen running");
    host.expect("EV CART NONE", |m| {
        matches!(
            m,
            PenMessage::Event {
                event: PenEvent::CartridgeRemoved,
                ..
            }
        )
    });
    host.send(10, &Command::Run);
    nak(&mut host, 10, NakReason::Cartridge);
}

#[test]
fn the_link_reports_naks_as_outcomes() {
    let pen = sim(SimConfig::default());
    // Telemetry on: a start is decided on the needle as measured.
    let (link, _) = connect(link_config(&pen, 500));
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(
        request(&link, Command::Depth { depth_um: 500 }).outcome,
        Outcome::Ack
    );
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    // The interlock allows RESET always; the pen refuses it while running.
    let answer = request(&link, Command::Reset);
    assert_eq!(answer.outcome, Outcome::Nak(NakReason::State));
    assert!(answer.seq.is_some());
    // What the interlock refuses never reaches the pen, and says why.
    let refused = request(&link, Command::Depth { depth_um: 2550 });
    assert!(
        matches!(&refused.outcome, Outcome::Refused(r) if r.rule == Rule::DepthAboveLimit),
        "{refused:?}"
    );
    assert_eq!(refused.seq, None);
}

#[test]
fn a_duplicate_frame_is_answered_again_but_executed_once() {
    let pen = sim(SimConfig::default());
    let mut host = RawHost::open(&pen.port_path());
    host.hello(1);
    let depth = Command::Depth { depth_um: 500 };
    host.send(2, &depth);
    host.expect_ack(2);
    host.send(2, &depth);
    host.expect_ack(2);
    journal_wait(&pen, "the duplicate", |e| {
        matches!(
            e.what,
            Journaled::Command {
                duplicate: true,
                ..
            }
        )
    });
    let entries = pen.journal();
    let seq2: Vec<bool> = entries
        .iter()
        .filter_map(|e| match &e.what {
            Journaled::Command { seq, duplicate, .. } if seq.get() == 2 => Some(*duplicate),
            _ => None,
        })
        .collect();
    assert_eq!(
        seq2,
        [false, true],
        "first executed, second answered as a duplicate"
    );
}

#[test]
fn the_watchdog_fires_300_ms_after_the_host_goes_quiet_and_not_before() {
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 500));
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    // From here the test stops proving it is alive: it waits on the pen alone. After
    // 250 ms the link must stop all frames, and the pen's watchdog must act.
    let fault = journal_wait(&pen, "FAULT WATCHDOG", |e| {
        matches!(
            e.what,
            Journaled::Event(PenEvent::Fault(FaultCode::Watchdog))
        )
    });
    let last_frame_ms = pen
        .journal()
        .iter()
        .filter(|e| e.boot == fault.boot && matches!(e.what, Journaled::Command { .. }))
        .map(|e| e.t_ms)
        .filter(|&t| t <= fault.t_ms)
        .max()
        .expect("the pen heard the host before");
    let quiet_ms = fault.t_ms - last_frame_ms;
    assert!(quiet_ms >= 300, "watchdog fired after only {quiet_ms} ms");
    assert!(
        quiet_ms < 400,
        "watchdog fired {quiet_ms} ms after the last frame"
    );
    // The link said why it went quiet, and the operator sees the fault.
    expect_event(&link, "OwnerStalled", |e| {
        matches!(e, LinkEvent::OwnerStalled)
    });
    expect_event(&link, "EV FAULT WATCHDOG", |e| {
        matches!(
            e,
            LinkEvent::Pen {
                event: PenEvent::Fault(FaultCode::Watchdog),
                ..
            }
        )
    });
    // Nothing restarts on its own: RUN is refused until an operator resets.
    let refused = request(&link, Command::Run);
    assert!(
        matches!(&refused.outcome, Outcome::Refused(r) if r.rule == Rule::Latched),
        "{refused:?}"
    );
}

#[test]
fn an_owner_slow_while_the_needle_is_idle_keeps_the_heartbeats_going() {
    // An idle window draws a few frames a second: the owner proves it is alive less
    // often than the 250 ms a running needle needs. With the needle idle the link
    // keeps the pen's link alive (the watchdog acts only on a running motor).
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 500));
    let mark = pen.journal_mark();
    let is_hb = |e: &punctum::sim::JournalEntry| {
        matches!(
            e.what,
            Journaled::Command {
                command: Some(Command::Hb),
                ..
            }
        )
    };
    let first = pen
        .wait_for_since(mark, DEADLINE, is_hb)
        .expect("heartbeats");
    // One second of pen time with no sign of life from the owner: heartbeats go on.
    let later = pen.wait_for_since(mark, DEADLINE, |e| {
        is_hb(e) && e.boot == first.boot && e.t_ms >= first.t_ms + 1000
    });
    assert!(
        later.is_some(),
        "the heartbeats stopped with the needle idle"
    );
    let mut stalled = false;
    while let Ok(event) = link.events().try_recv() {
        stalled |= matches!(event, LinkEvent::OwnerStalled);
    }
    assert!(!stalled, "OwnerStalled with the needle idle");
    // The needle asked to run: now a silent owner stops the frames, and the pen's
    // watchdog the needle (the test above).
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    journal_wait(&pen, "FAULT WATCHDOG", |e| {
        matches!(
            e.what,
            Journaled::Event(PenEvent::Fault(FaultCode::Watchdog))
        )
    });
    expect_event(&link, "OwnerStalled", |e| {
        matches!(e, LinkEvent::OwnerStalled)
    });
}

#[test]
fn an_info_line_lost_on_the_way_is_asked_for_again_and_the_link_comes_up() {
    let pen = sim(SimConfig::default());
    // The INFO that answers the station's HELLO never arrives.
    pen.act(SimAction::LoseNext("INFO".into()))
        .expect("the pen takes actions");
    let (_link, info) = connect(link_config(&pen, 100));
    assert_eq!(info.serial, "SIM00001");
    let asked_again = executed(&pen)
        .iter()
        .any(|(_, c)| matches!(c, Command::Info));
    assert!(asked_again, "the station did not ask INFO again");
}

#[test]
fn the_estop_byte_mid_line_stops_the_pen_and_voids_the_line() {
    let pen = sim(SimConfig::default());
    let mut host = RawHost::open(&pen.port_path());
    host.hello(1);
    host.send(2, &Command::Run);
    host.expect_ack(2);
    let body = "3 DEPTH 1000";
    let line = format!("{body}*{:04X}\n", crc16(body.as_bytes()));
    let (head, tail) = line.split_at(7);
    host.write_raw(head.as_bytes());
    host.write_raw(&[0x18]);
    host.write_raw(tail.as_bytes());
    host.expect("EV ESTOP HOST", |m| {
        matches!(
            m,
            PenMessage::Event {
                event: PenEvent::Estop(EstopSource::Host),
                ..
            }
        )
    });
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    // The interrupted DEPTH was never executed, nor answered.
    host.send(4, &Command::Hb);
    host.expect_ack(4);
    assert!(
        !executed(&pen)
            .iter()
            .any(|(_, c)| *c == Command::Depth { depth_um: 1000 })
    );
    assert_eq!(pen.stats().state, PenState::Estop);
}

#[test]
fn the_links_estop_is_confirmed_and_needs_a_reset() {
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 500));
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    link.estop().expect("link alive");
    expect_event(&link, "EstopConfirmed", |e| {
        matches!(e, LinkEvent::EstopConfirmed)
    });
    journal_wait(&pen, "the E-stop byte", |e| {
        matches!(e.what, Journaled::EstopByte)
    });
    assert_eq!(pen.stats().state, PenState::Estop);
    let refused = request(&link, Command::Run);
    assert!(
        matches!(&refused.outcome, Outcome::Refused(r) if r.rule == Rule::Latched),
        "{refused:?}"
    );
    assert_eq!(request(&link, Command::Reset).outcome, Outcome::Ack);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
}

#[test]
fn link_loss_when_the_pen_disappears_and_reconnection_when_it_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = sim(SimConfig {
        link_path: Some(dir.path().join("pen")),
        ..SimConfig::default()
    });
    let (link, _) = connect(link_config(&pen, 100));
    let queued = link.send(Command::Hb).expect("queued");
    let _ = answer_to(&link, queued);
    pen.act(SimAction::Disappear { duration: None })
        .expect("pen running");
    let lost = expect_event(&link, "link loss", |e| {
        matches!(e, LinkEvent::State(LinkState::Lost(_)))
    });
    assert!(
        matches!(
            lost,
            LinkEvent::State(LinkState::Lost(
                LossReason::PortError(_) | LossReason::Silence
            ))
        ),
        "{lost:?}"
    );
    // While it is gone, commands are refused, not queued for later.
    let refused = request(&link, Command::Run);
    assert!(
        matches!(refused.outcome, Outcome::NotSent(_)),
        "{refused:?}"
    );
    pen.act(SimAction::Reappear).expect("pen running");
    wait_connected(&link);
    assert_eq!(request(&link, Command::Hb).outcome, Outcome::Ack);
}

#[test]
fn silence_with_telemetry_on_is_a_link_loss() {
    let pen = sim(SimConfig::default());
    let mut config = link_config(&pen, 100);
    // Unanswered heartbeats would otherwise be noticed first (4 × 100 ms < 500 ms).
    config.retry_timeout = Duration::from_secs(1);
    let (link, _) = connect(config);
    pen.act(SimAction::GoSilent { duration: None })
        .expect("pen running");
    journal_wait(&pen, "silence", |e| {
        matches!(e.what, Journaled::SilenceStarted)
    });
    let started = Instant::now();
    expect_event(&link, "loss by silence", |e| {
        matches!(e, LinkEvent::State(LinkState::Lost(LossReason::Silence)))
    });
    assert!(started.elapsed() >= Duration::from_millis(400));
    pen.act(SimAction::ClearFaults).expect("pen running");
    wait_connected(&link);
}

#[test]
fn a_command_unanswered_after_three_retries_is_a_link_loss() {
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 0));
    prepare_treatment(&link, ZoneId::Cheeks);
    pen.act(SimAction::GoSilent { duration: None })
        .expect("pen running");
    journal_wait(&pen, "silence", |e| {
        matches!(e.what, Journaled::SilenceStarted)
    });
    let id = link.send(Command::Depth { depth_um: 300 }).expect("queued");
    let answer = answer_to(&link, id);
    assert!(
        matches!(answer.outcome, Outcome::Unanswered | Outcome::NotSent(_)),
        "{answer:?}"
    );
    expect_event(&link, "loss by unanswered command", |e| {
        matches!(
            e,
            LinkEvent::State(LinkState::Lost(LossReason::Unanswered(_)))
        )
    });
    let stats = stats_after(&link, Duration::ZERO);
    assert!(stats.retries >= 3, "{stats:?}");
}

#[test]
fn a_reboot_mid_session_is_seen_and_the_host_says_hello_again() {
    let pen = sim(SimConfig::default());
    let (link, info) = connect(link_config(&pen, 500));
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    pen.act(SimAction::Reboot(BootReason::Brownout))
        .expect("pen running");
    let boot = expect_event(&link, "EV BOOT", |e| {
        matches!(
            e,
            LinkEvent::Pen {
                event: PenEvent::Boot { .. },
                ..
            }
        )
    });
    assert!(matches!(
        boot,
        LinkEvent::Pen { event: PenEvent::Boot { reason: BootReason::Brownout, boot }, .. }
            if boot == info.boot + 1
    ));
    let again = wait_connected(&link);
    assert_eq!(again.boot, info.boot + 1);
    let hellos = executed(&pen)
        .iter()
        .filter(|(_, c)| matches!(c, Command::Hello { .. }))
        .count();
    assert_eq!(hellos, 2);
    // The reboot stopped the motor, and nothing restarted it.
    assert_eq!(pen.stats().state, PenState::Idle);
}

#[test]
fn corrupted_lines_from_the_pen_are_counted_and_never_acted_on() {
    let pen = sim(SimConfig {
        corrupt_fraction: 0.05,
        ..SimConfig::default()
    });
    let (link, _) = connect(link_config(&pen, 200));
    let mut previous_n = None;
    let until = Instant::now() + Duration::from_secs(2);
    let mut skipped = 0u64;
    while Instant::now() < until {
        link.feed_liveness();
        if let Ok(t) = link.telemetry().recv_timeout(Duration::from_millis(50)) {
            // A corrupted sample never gets through: the counter only moves forward.
            if let Some(p) = previous_n {
                assert!(t.n > p, "sample {} after {p}", t.n);
                skipped += u64::from(t.n - p - 1);
            }
            previous_n = Some(t.n);
        }
        while link.events().try_recv().is_ok() {}
    }
    let stats = stats_after(&link, Duration::ZERO);
    assert!(stats.discarded.total() > 0, "{stats:?}");
    assert!(pen.stats().lines_corrupted > 0);
    // Each sample missing from the sequence is a discarded line, nothing else.
    assert!(
        skipped <= stats.discarded.total(),
        "{skipped} skipped, {stats:?}"
    );
}

#[test]
fn corrupted_commands_are_discarded_by_the_pen_and_never_executed() {
    let pen = sim(SimConfig::default());
    let mut host = RawHost::open(&pen.port_path());
    host.hello(1);
    let crc_of_500 = crc16(b"2 DEPTH 500");
    // One bit flipped in the body ('5' -> '7'); the CRC is the original's.
    host.write_raw(format!("2 DEPTH 700*{crc_of_500:04X}\n").as_bytes());
    host.send(3, &Command::Hb);
    host.expect_ack(3);
    journal_wait(&pen, "a discarded line", |e| {
        matches!(e.what, Journaled::Discarded(_))
    });
    assert!(
        !executed(&pen)
            .iter()
            .any(|(_, c)| matches!(c, Command::Depth { .. }))
    );
}

#[test]
fn telemetry_at_1000_hz_for_5_s_arrives_with_zero_gaps() {
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 1000));
    let mut expected_n = 0u32;
    let deadline = Instant::now() + Duration::from_secs(30);
    while expected_n < 5000 {
        assert!(
            Instant::now() < deadline,
            "only {expected_n} samples in time"
        );
        link.feed_liveness();
        if let Ok(t) = link.telemetry().recv_timeout(Duration::from_millis(50)) {
            assert_eq!(t.n, expected_n, "telemetry gap");
            expected_n += 1;
        }
        while link.events().try_recv().is_ok() {}
    }
    let stats = stats_after(&link, Duration::ZERO);
    assert_eq!(stats.telemetry_gaps, 0, "{stats:?}");
    assert_eq!(stats.samples_lost, 0, "{stats:?}");
    assert_eq!(stats.telemetry_dropped, 0, "{stats:?}");
}

#[test]
fn the_estop_byte_is_resent_every_20_ms_until_the_pen_confirms() {
    let pen = sim(SimConfig::default());
    let (link, _) = connect(link_config(&pen, 500));
    prepare_treatment(&link, ZoneId::Cheeks);
    assert_eq!(request(&link, Command::Run).outcome, Outcome::Ack);
    // A pen that hears nothing for a while: the byte must keep going out.
    pen.act(SimAction::GoSilent { duration: None })
        .expect("pen running");
    journal_wait(&pen, "silence", |e| {
        matches!(e.what, Journaled::SilenceStarted)
    });
    link.estop().expect("link alive");
    let resent = expect_event(
        &link,
        "several E-stop bytes",
        |e| matches!(e, LinkEvent::Stats(s) if s.estop_bytes_sent >= 5),
    );
    let LinkEvent::Stats(stats) = resent else {
        unreachable!()
    };
    assert!(stats.estop_bytes_sent >= 5);
    // When the pen hears again, it stops, and the link sees it confirmed.
    pen.act(SimAction::ClearFaults).expect("pen running");
    expect_event(&link, "EstopConfirmed", |e| {
        matches!(e, LinkEvent::EstopConfirmed)
    });
    assert_eq!(pen.stats().state, PenState::Estop);
}

#[test]
fn a_slow_owner_loses_display_telemetry_counted_never_the_link() {
    let pen = sim(SimConfig::default());
    let mut config = link_config(&pen, 1000);
    config.telemetry_capacity = 200;
    let (link, _) = connect(config);
    // The owner stays alive (events are read) but never drains telemetry.
    let dropped = expect_event(
        &link,
        "dropped telemetry",
        |e| matches!(e, LinkEvent::Stats(s) if s.telemetry_dropped > 500),
    );
    let LinkEvent::Stats(stats) = dropped else {
        unreachable!()
    };
    // The reader kept up: every sample arrived, none lost on the wire.
    assert_eq!(stats.samples_lost, 0, "{stats:?}");
    assert_eq!(link.telemetry().len(), 200);
    // Commands still work.
    assert_eq!(request(&link, Command::Hb).outcome, Outcome::Ack);
}
