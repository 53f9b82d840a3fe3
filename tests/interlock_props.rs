//! The interlock, proven end to end: random sequences of operator commands go through
//! the real link thread to the simulated pen over a pty, and the pen's own journal
//! must show no `DEPTH` above the then-active zone's limit, and no `RUN` while the
//! station's state forbids it.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use punctum::link::{Link, LinkEvent, Outcome};
use punctum::protocol::{CartridgeId, Command};
use punctum::safety::interlock::{CartridgeCheck, DEEP_CAUTION_UM, SafetyUpdate, SessionFacts};
use punctum::safety::zones::{ZoneId, ZoneTable};
use punctum::sim::{Journaled, SimConfig, SimPen};

/// What an operator (or a buggy screen, or a script) may ask.
#[derive(Debug, Clone)]
enum Op {
    Zone(ZoneId),
    Depth(i64),
    Speed(i64),
    Run,
    Halt,
    EStop,
    Reset,
    AckDeep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => proptest::sample::select(ZoneId::ALL.to_vec()).prop_map(Op::Zone),
        4 => (-2..=110i64).prop_map(|k| Op::Depth(k * 25)),
        1 => (2500..=9500i64).prop_map(Op::Speed),
        3 => Just(Op::Run),
        1 => Just(Op::Halt),
        1 => Just(Op::EStop),
        2 => Just(Op::Reset),
        1 => Just(Op::AckDeep),
    ]
}

/// The test's own, independent model of when RUN is allowed.
#[derive(Debug, Default)]
struct Oracle {
    zone: Option<ZoneId>,
    depth_target_um: Option<i64>,
    deep_acknowledged: bool,
    latched: bool,
}

impl Oracle {
    fn limit_um(&self, zones: &ZoneTable) -> Option<i64> {
        self.zone.map(|z| i64::from(zones.limit_um(z)))
    }

    fn run_allowed(&self, zones: &ZoneTable) -> bool {
        let Some(limit) = self.limit_um(zones) else {
            return false;
        };
        let depth_ok = self.depth_target_um.is_none_or(|d| {
            d <= limit && (d <= i64::from(DEEP_CAUTION_UM) || self.deep_acknowledged)
        });
        !self.latched && depth_ok
    }
}

fn applied(link: &Link, id: punctum::link::RequestId) {
    expect_event(
        link,
        "safety applied",
        |e| matches!(e, LinkEvent::SafetyApplied { id: got, .. } if *got == id),
    );
}

/// Waits until everything sent so far has been executed by the pen: a heartbeat goes
/// out after whatever the link still had queued (stop-and-wait keeps order).
fn barrier(link: &Link, pen: &SimPen) {
    let answer = request(link, Command::Hb);
    let seq = answer.seq.expect("the heartbeat went out");
    journal_wait(
        pen,
        "the barrier heartbeat",
        |e| matches!(&e.what, Journaled::Command { seq: s, .. } if *s == seq),
    );
}

/// Carries out one operator request and updates the oracle with what was accepted.
fn apply(link: &Link, op: &Op, oracle: &mut Oracle, zones: &ZoneTable) {
    match op {
        Op::Zone(zone) => {
            let id = link
                .update_safety(SafetyUpdate::SelectZone(*zone))
                .expect("alive");
            applied(link, id);
            oracle.zone = Some(*zone);
            oracle.deep_acknowledged = false;
            let limit = oracle.limit_um(zones).expect("just selected");
            if oracle.depth_target_um.is_some_and(|d| d > limit) {
                oracle.depth_target_um = Some(limit);
            }
        }
        Op::Depth(depth_um) => {
            if request(
                link,
                Command::Depth {
                    depth_um: *depth_um,
                },
            )
            .outcome
                == Outcome::Ack
            {
                oracle.depth_target_um = Some(*depth_um);
            }
        }
        Op::Speed(rpm) => {
            let _ = request(link, Command::Speed { rpm: *rpm });
        }
        Op::Run => {
            let _ = request(link, Command::Run);
        }
        Op::Halt => {
            let _ = request(link, Command::Halt);
        }
        Op::EStop => {
            link.estop().expect("alive");
            expect_event(link, "E-stop confirmed", |e| {
                matches!(e, LinkEvent::EstopConfirmed)
            });
            oracle.latched = true;
        }
        Op::Reset => {
            if request(link, Command::Reset).outcome == Outcome::Ack {
                oracle.latched = false;
            }
        }
        Op::AckDeep => {
            let id = link
                .update_safety(SafetyUpdate::AcknowledgeDeepCaution)
                .expect("alive");
            applied(link, id);
            oracle.deep_acknowledged = oracle.zone.is_some();
        }
    }
}

fn run_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    // Calibrated today: common::sim sees to that.
    let pen = sim(SimConfig::default());
    let zones = ZoneTable::builtin();
    let (link, _) = connect(link_config(&pen, 50));
    // The station's part: a passed screening and a fresh cartridge.
    let id = link
        .update_safety(SafetyUpdate::Session(Some(SessionFacts {
            session_id: "S-prop".into(),
            client: "C-prop".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: BTreeMap::new(),
        })))
        .expect("link alive");
    applied(&link, id);
    let id = link
        .update_safety(SafetyUpdate::CartridgeChecked {
            id: CartridgeId(0x0123_4567_89AB_CDEF),
            check: CartridgeCheck::Fresh,
        })
        .expect("link alive");
    applied(&link, id);

    let mut oracle = Oracle::default();
    for op in ops {
        barrier(&link, &pen);
        let mark = pen.journal_mark();
        let run_was_allowed = oracle.run_allowed(&zones);
        apply(&link, op, &mut oracle, &zones);
        barrier(&link, &pen);
        let (entries, _) = pen.journal_since(mark);
        let limit = oracle.limit_um(&zones);
        for entry in entries {
            let Journaled::Command {
                command: Some(command),
                duplicate: false,
                ..
            } = &entry.what
            else {
                continue;
            };
            match command {
                Command::Depth { depth_um } => {
                    let Some(limit) = limit else {
                        return Err(TestCaseError::fail(format!(
                            "the pen received DEPTH {depth_um} with no zone selected (after {op:?})"
                        )));
                    };
                    prop_assert!(
                        *depth_um <= limit,
                        "the pen received DEPTH {} above the {:?} limit {} (after {:?})",
                        depth_um,
                        oracle.zone,
                        limit,
                        op
                    );
                }
                Command::Run => prop_assert!(
                    run_was_allowed,
                    "the pen received RUN in a refused state: {:?} (op {:?})",
                    oracle,
                    op
                ),
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_command_sequence_gets_a_forbidden_depth_or_start_to_the_pen(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        run_sequence(&ops)?;
    }
}
