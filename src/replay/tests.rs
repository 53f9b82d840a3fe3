//! The replay model: the cursor over a recorded session and the state at the cursor.

use std::time::Duration;

use super::open::{LoadOutcome, Loading};
use super::test_support::{Script, treatment};
use super::*;
use crate::record::format::StateWord;
use crate::safety::alarms::{AlarmId, Priority};

const DEADLINE: Duration = Duration::from_secs(20);

fn replay(script: &Script) -> Replay {
    Replay::new(script.recording())
}

fn seek(r: &mut Replay, ms: f64) {
    r.apply(ReplayCommand::SeekMs(ms));
}

#[test]
fn the_cursor_plays_at_each_speed_and_pauses_at_the_end() {
    let mut r = replay(&treatment());
    assert!((r.duration_ms() - 20_000.0).abs() < f64::EPSILON);
    r.apply(ReplayCommand::Play);
    r.advance(Duration::from_secs(1));
    assert!((r.position_ms() - 1000.0).abs() < 1e-6);
    r.apply(ReplayCommand::SetSpeedIndex(0)); // 0.25×
    r.advance(Duration::from_secs(1));
    assert!((r.position_ms() - 1250.0).abs() < 1e-6);
    r.apply(ReplayCommand::SetSpeedIndex(6)); // 16×
    r.advance(Duration::from_secs(2));
    assert!(
        (r.position_ms() - 20_000.0).abs() < 1e-6,
        "clamped at the end"
    );
    assert!(!r.transport().playing(), "paused at the end");
    r.apply(ReplayCommand::TogglePlay);
    assert!(r.transport().playing());
    assert!(r.position_ms().abs() < 1e-6, "play at the end starts over");
}

#[test]
fn jumps_move_five_seconds_and_clamp() {
    let mut r = replay(&treatment());
    r.apply(ReplayCommand::JumpMs(5000));
    assert!((r.position_ms() - 5000.0).abs() < 1e-6);
    r.apply(ReplayCommand::JumpMs(-5000));
    r.apply(ReplayCommand::JumpMs(-5000));
    assert!(r.position_ms().abs() < 1e-6);
    seek(&mut r, 18_000.0);
    r.apply(ReplayCommand::JumpMs(5000));
    assert!((r.position_ms() - 20_000.0).abs() < 1e-6);
}

#[test]
fn a_loop_of_the_selection_wraps_while_playing() {
    let mut r = replay(&treatment());
    r.apply(ReplayCommand::Select(Some((4000.0, 2000.0))));
    r.apply(ReplayCommand::LoopSelection);
    r.apply(ReplayCommand::Play);
    assert!((r.position_ms() - 2000.0).abs() < 1e-6);
    r.advance(Duration::from_millis(2500));
    assert!((r.position_ms() - 2500.0).abs() < 1e-6, "wrapped to 2.5 s");
    r.apply(ReplayCommand::SetLooping(false));
    r.advance(Duration::from_millis(2500));
    assert!(
        (r.position_ms() - 5000.0).abs() < 1e-6,
        "plays on without the loop"
    );
}

#[test]
fn stepping_moves_one_sample_and_pauses() {
    let mut r = replay(&treatment());
    seek(&mut r, 2005.0);
    r.apply(ReplayCommand::Play);
    r.apply(ReplayCommand::StepSample(Direction::Forward));
    assert!((r.position_ms() - 2010.0).abs() < 1e-6);
    assert!(!r.transport().playing(), "a step pauses");
    r.apply(ReplayCommand::StepSample(Direction::Back));
    assert!((r.position_ms() - 2000.0).abs() < 1e-6);
    r.apply(ReplayCommand::StepSample(Direction::Back));
    assert!((r.position_ms() - 1990.0).abs() < 1e-6);
    seek(&mut r, 0.0);
    r.apply(ReplayCommand::StepSample(Direction::Back));
    assert!(
        r.position_ms().abs() < 1e-6,
        "nothing before the first sample"
    );
    seek(&mut r, 20_000.0);
    r.apply(ReplayCommand::StepSample(Direction::Forward));
    assert!(
        (r.position_ms() - 20_000.0).abs() < 1e-6,
        "nothing after the last"
    );
}

#[test]
fn event_navigation_goes_to_the_previous_and_next_event() {
    let mut r = replay(&treatment());
    let times: Vec<u64> = r.events().iter().map(|e| e.at_ms).collect();
    // Zones, the NAK, the alarm's three changes, the link loss, the note; plain
    // ACKs are not events.
    assert_eq!(
        times,
        [1000, 6000, 6200, 10_000, 10_000, 12_000, 15_000, 16_000]
    );
    seek(&mut r, 5000.0);
    r.apply(ReplayCommand::StepEvent(Direction::Forward));
    assert!((r.position_ms() - 6000.0).abs() < 1e-6);
    r.apply(ReplayCommand::StepEvent(Direction::Forward));
    assert!((r.position_ms() - 6200.0).abs() < 1e-6);
    r.apply(ReplayCommand::StepEvent(Direction::Forward));
    assert!((r.position_ms() - 10_000.0).abs() < 1e-6);
    r.apply(ReplayCommand::StepEvent(Direction::Forward));
    assert!(
        (r.position_ms() - 12_000.0).abs() < 1e-6,
        "two events at one time are one stop"
    );
    r.apply(ReplayCommand::StepEvent(Direction::Back));
    assert!((r.position_ms() - 10_000.0).abs() < 1e-6);
    seek(&mut r, 500.0);
    r.apply(ReplayCommand::StepEvent(Direction::Back));
    assert!((r.position_ms() - 500.0).abs() < 1e-6, "no event before");
}

#[test]
fn event_kinds_colour_the_timeline() {
    let r = replay(&treatment());
    let kinds: Vec<EventKind> = r.events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Zone,
            EventKind::Zone,
            EventKind::CommandFailed,
            EventKind::AlarmRaised(Priority::High),
            EventKind::LinkLost,
            EventKind::AlarmChanged,
            EventKind::AlarmChanged,
            EventKind::Note,
        ]
    );
    assert!(r.events()[2].text.contains("SPEED 7000: NAK ARGS"));
}

#[test]
fn the_alarms_at_the_cursor_follow_raise_acknowledge_and_clear() {
    let mut r = replay(&treatment());
    seek(&mut r, 5000.0);
    assert!(r.active_alarms().is_empty());
    seek(&mut r, 9999.0);
    assert!(r.active_alarms().is_empty(), "not before it was raised");
    seek(&mut r, 11_000.0);
    let alarms = r.active_alarms();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].id, AlarmId::LinkLost);
    assert_eq!(alarms[0].priority, Priority::High);
    assert_eq!(alarms[0].raised_ms, 10_000);
    assert!(!alarms[0].acknowledged);
    seek(&mut r, 13_000.0);
    assert!(r.active_alarms()[0].acknowledged);
    seek(&mut r, 15_000.0);
    assert!(r.active_alarms().is_empty(), "cleared at 15 s");
    // Back again: the state is a function of the cursor, not of the way there.
    seek(&mut r, 11_000.0);
    assert_eq!(r.active_alarms().len(), 1);
}

#[test]
fn alarms_are_ordered_like_the_live_banner_and_silence_is_shown() {
    let script = Script::new()
        .alarm(1000, "depth_refused", "medium", "raised", "depth refused")
        .alarm(2000, "telemetry_gaps", "low", "raised", "gaps")
        .alarm(3000, "estop", "high", "raised", "emergency stop")
        .alarm(4000, "depth_refused", "medium", "silenced", "depth refused")
        .alarm(4500, "made_up", "high", "raised", "from a newer station")
        .summary(6000);
    let mut r = replay(&script);
    seek(&mut r, 5000.0);
    let ids: Vec<AlarmId> = r.active_alarms().iter().map(|a| a.id).collect();
    assert_eq!(
        ids,
        [
            AlarmId::Estop,
            AlarmId::DepthRefused,
            AlarmId::TelemetryGaps
        ]
    );
    assert!(r.active_alarms()[1].silenced_until_ms.is_some());
    assert!(
        r.notes().iter().any(|n| n.contains("made_up")),
        "{:?}",
        r.notes()
    );
}

#[test]
fn alarms_at_the_cursor_match_a_plain_replay_of_every_transition() {
    // Far more transitions than a checkpoint holds, at odd times.
    let mut script = Script::new();
    let mut naive: Vec<(i64, &str, &str)> = Vec::new();
    for i in 0..300i64 {
        let at = 100 + i * 37;
        let (alarm, action) = match i % 5 {
            0 => ("telemetry_gaps", "raised"),
            1 => ("telemetry_gaps", "cleared"),
            2 => ("pen_fault", "raised"),
            3 => ("pen_fault", "acknowledged"),
            _ => ("pen_fault", if i % 2 == 0 { "cleared" } else { "silenced" }),
        };
        let priority = if alarm == "pen_fault" { "high" } else { "low" };
        script = script.alarm(at, alarm, priority, action, "x");
        naive.push((at, alarm, action));
    }
    let mut r = replay(&script.summary(12_000));
    for probe in (0..12_000).step_by(53) {
        seek(&mut r, f64::from(probe));
        let mut expected: Vec<(&str, bool)> = Vec::new();
        for &(_, alarm, action) in naive.iter().filter(|t| t.0 <= i64::from(probe)) {
            let existing = expected.iter().position(|e| e.0 == alarm);
            match (action, existing) {
                ("raised", None) => expected.push((alarm, false)),
                ("acknowledged", Some(i)) => expected[i].1 = true,
                ("cleared", Some(i)) => {
                    expected.remove(i);
                }
                _ => {}
            }
        }
        let mut got: Vec<(String, bool)> = r
            .active_alarms()
            .iter()
            .map(|a| (a.id.to_string(), a.acknowledged))
            .collect();
        got.sort();
        let mut expected: Vec<(String, bool)> = expected
            .into_iter()
            .map(|(a, ack)| (a.to_owned(), ack))
            .collect();
        expected.sort();
        assert_eq!(got, expected, "at {probe} ms");
    }
}

#[test]
fn needling_and_passes_count_up_to_the_cursor_per_zone() {
    let mut r = replay(&treatment());
    seek(&mut r, 1500.0);
    assert_eq!(
        r.active_zone().map(|z| (z.zone, z.limit_um)),
        Some((ZoneId::Cheeks, 1000))
    );
    assert!(r.zone_figures().is_empty(), "selected, not yet treated");
    assert!(r.treated_zones().is_empty());
    seek(&mut r, 4000.0);
    let figures = r.zone_figures();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].zone, ZoneId::Cheeks);
    assert_eq!(figures[0].passes, 1);
    // Running samples from 2000 ms: 2000 ms of needling by the sample at 4000.
    assert_eq!(figures[0].needling_ms, 2000);
    assert_eq!(r.treated_zones(), [ZoneId::Cheeks]);
    seek(&mut r, 6500.0);
    assert_eq!(r.active_zone().map(|z| z.zone), Some(ZoneId::Forehead));
    // The last running sample of the pass is at 4990.
    assert_eq!(r.zone_figures()[0].needling_ms, 2990);
    assert_eq!(r.zone_figures().len(), 1, "forehead selected, not treated");
    seek(&mut r, 19_000.0);
    let figures = r.zone_figures();
    assert_eq!(
        figures
            .iter()
            .map(|f| (f.zone, f.passes, f.needling_ms))
            .collect::<Vec<_>>(),
        [(ZoneId::Forehead, 1, 1990), (ZoneId::Cheeks, 1, 2990)],
        "zone order: forehead before cheeks"
    );
    assert_eq!(r.needling_ms(), 2990 + 1990);
}

#[test]
fn a_telemetry_gap_is_not_needling_time() {
    let script = Script::new()
        .zone(0, "cheeks", 1000)
        .answer(100, "RUN", "ACK")
        .telemetry(100, 1100, 100, StateWord::Running, 6000, 800)
        // 1.5 s without telemetry: the needle is assumed stopped meanwhile.
        .telemetry(2600, 3100, 100, StateWord::Running, 6000, 800)
        .summary(4000);
    let mut r = replay(&script);
    seek(&mut r, 4000.0);
    // 100..1000 (900 ms) and 2600..3000 (400 ms).
    assert_eq!(r.needling_ms(), 1300);
    seek(&mut r, 2700.0);
    assert_eq!(r.needling_ms(), 1000);
}

#[test]
fn a_pen_running_down_after_a_zone_change_still_counts_in_the_old_zone() {
    let script = Script::new()
        .zone(0, "cheeks", 1000)
        .answer(100, "RUN", "ACK")
        .telemetry(100, 1100, 100, StateWord::Running, 6000, 800)
        // The eyes chosen at 1050: the needle halted, still RUNNING for 50 ms.
        .zone(1050, "periorbital", 300)
        .telemetry(1100, 1200, 50, StateWord::Running, 3000, 800)
        .telemetry(1200, 2000, 100, StateWord::Idle, 0, 300)
        .summary(3000);
    let mut r = replay(&script);
    seek(&mut r, 3000.0);
    let figures = r.zone_figures();
    let of = |zone: ZoneId| {
        figures
            .iter()
            .find(|f| f.zone == zone)
            .map(|f| f.needling_ms)
    };
    // 100 to 1150 (samples every 100 ms, then 50 ms), all in the cheeks.
    assert_eq!(of(ZoneId::Cheeks), Some(1050));
    assert_eq!(of(ZoneId::Periorbital).unwrap_or(0), 0);
}

#[test]
fn the_last_sample_is_the_one_at_or_before_the_cursor() {
    let mut r = replay(&treatment());
    seek(&mut r, 2004.0);
    let t = r.last_telemetry().expect("a sample");
    assert_eq!(t.state, crate::protocol::PenState::Running);
    assert_eq!(t.rpm, 6000);
    assert_eq!(r.last_sample().map(|s| s.session_ms), Some(2000));
    let empty = Replay::new(Script::new().summary(1000).recording());
    assert!(empty.last_sample().is_none());
}

#[test]
fn the_series_carries_the_acknowledged_targets_and_the_zone_limit() {
    let r = replay(&treatment());
    let ch = r.channels();
    let at = |channel, t_s: f64| {
        r.series()
            .plot_points(channel, t_s, t_s, 1)
            .first()
            .map(|p| p[1])
    };
    assert_eq!(
        at(ch.target_rpm, 0.5),
        None,
        "no target before the first ACK"
    );
    assert_eq!(at(ch.limit_mm, 0.5), None, "no zone yet");
    assert_eq!(at(ch.target_rpm, 3.0), Some(6000.0));
    assert_eq!(at(ch.rpm, 3.0), Some(6000.0));
    assert_eq!(at(ch.limit_mm, 3.0), Some(1.0));
    let target = at(ch.target_depth_mm, 3.0).expect("a depth target");
    assert!((target - 0.8).abs() < 1e-6);
    // The NAKed SPEED 7000 left the target where it was.
    assert_eq!(at(ch.target_rpm, 8.0), Some(6000.0));
    assert_eq!(at(ch.limit_mm, 8.0), Some(0.5));
    assert_eq!(r.series().len(), 2000);
}

#[test]
fn a_header_whose_zone_table_cannot_be_read_falls_back_with_a_note() {
    let mut rec = treatment().recording();
    rec.header.zones = serde_json::json!({"zones": "nonsense"});
    let r = Replay::new(rec);
    assert!(
        r.notes().iter().any(|n| n.contains("zone table")),
        "{:?}",
        r.notes()
    );
    assert_eq!(r.zones().hash_hex(), ZoneTable::builtin().hash_hex());
}

#[test]
fn opening_a_file_in_the_background_gives_the_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = treatment().write(dir.path(), "2025-11-24_160000_C-0042.jsonl");
    let mut loading = Loading::start(path).expect("thread starts");
    match loading.wait(DEADLINE) {
        Some(LoadOutcome::Opened(r)) => {
            assert_eq!(r.file_name(), "2025-11-24_160000_C-0042.jsonl");
            assert_eq!(r.recording().telemetry.len(), 2000);
            assert_eq!(r.events().len(), 8);
        }
        other => panic!("not opened: {other:?}"),
    }
    let (read, size) = loading.progress();
    assert!(size > 0 && read == size, "{read} of {size}");
}

#[test]
fn a_missing_file_fails_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.jsonl");
    let mut loading = Loading::start(path).expect("thread starts");
    match loading.wait(DEADLINE) {
        Some(LoadOutcome::Failed(why)) => assert!(why.contains("nope.jsonl"), "{why}"),
        other => panic!("not failed: {other:?}"),
    }
}

#[test]
fn a_cancelled_open_ends_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = treatment().write(dir.path(), "s.jsonl");
    let mut loading = Loading::start(path).expect("thread starts");
    loading.cancel();
    assert!(loading.cancelling());
    // It may have finished reading before the cancel: then it is dropped unopened
    // all the same.
    match loading.wait(DEADLINE) {
        Some(LoadOutcome::Cancelled) => {}
        other => panic!("not cancelled: {other:?}"),
    }
}
