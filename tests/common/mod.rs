//! Shared helpers for the end-to-end tests: a simulated pen on a real pty, the real
//! link thread, and waits with deadlines (never tuned sleeps).
#![allow(dead_code)] // each test file uses its own subset

pub mod clinic_records;
pub mod console;
pub mod netns;
pub mod pg;
pub mod pulse;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use punctum::link::{Answer, Link, LinkConfig, LinkEvent, LinkState, LinkStats, RequestId};
use punctum::protocol::{
    Calibration, CartridgeId, Command, Decoded, FrameDecoder, PenInfo, PenMessage, Seq,
    encode_frame,
};
use punctum::safety::interlock::{CartridgeCheck, SafetyUpdate, SessionFacts, yyyymmdd};
use punctum::safety::zones::ZoneId;
use punctum::sim::{JournalEntry, Journaled, SimConfig, SimPen};
use serialport::{SerialPort as _, TTYPort};

/// Generous: a loaded 2-core CI machine may be slow, and a deadline only bounds a
/// failure, never a pass.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Starts a simulated pen. Unless the test says otherwise, it comes calibrated today,
/// so the interlock lets it start.
pub fn sim(mut config: SimConfig) -> SimPen {
    if config.initial_calibration.is_none() {
        config.initial_calibration = Some(Calibration {
            date: yyyymmdd(jiff::Zoned::now().date()),
            tech: "T1".into(),
            ..Calibration::identity()
        });
    }
    SimPen::spawn(config).expect("the simulated pen starts")
}

/// Tells the link's interlock what a station would: a passed screening, the default
/// cartridge fresh, and `zone` selected. After it, `RUN` and depths within the zone
/// reach the pen.
pub fn prepare_treatment(link: &Link, zone: ZoneId) {
    let updates = [
        SafetyUpdate::Operator(Some(punctum::safety::interlock::OperatorFacts {
            account: "P-test".into(),
            practitioner: true,
            technician: true,
        })),
        SafetyUpdate::Session(Some(SessionFacts {
            session_id: "S-test".into(),
            client: "C-test".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: std::collections::BTreeMap::new(),
            preparation: punctum::safety::procedure::Preparation::waived(
                "not a treatment: a test of the needle rules",
            ),
        })),
        SafetyUpdate::CartridgeChecked {
            id: CartridgeId(0x0123_4567_89AB_CDEF),
            check: CartridgeCheck::Fresh,
        },
        SafetyUpdate::SelectZone(zone),
    ];
    for update in updates {
        let id = link.update_safety(update).expect("link alive");
        let applied = expect_event(
            link,
            "safety applied",
            |e| matches!(e, LinkEvent::SafetyApplied { id: got, .. } if *got == id),
        );
        assert!(
            matches!(applied, LinkEvent::SafetyApplied { result: Ok(_), .. }),
            "{applied:?}"
        );
    }
}

/// A link config for the pen's port with telemetry at `hz`.
pub fn link_config(pen: &SimPen, hz: u32) -> LinkConfig {
    let mut config = LinkConfig::new(pen.port_path());
    config.telemetry_hz = hz;
    config
}

/// Starts a link and waits until it is connected; returns the pen's INFO.
pub fn connect(config: LinkConfig) -> (Link, PenInfo) {
    let link = Link::spawn(config).expect("link thread starts");
    let info = wait_connected(&link);
    (link, info)
}

/// Waits for the next `Connected` state.
pub fn wait_connected(link: &Link) -> PenInfo {
    let event = link
        .wait_for(
            DEADLINE,
            |e| matches!(e, LinkEvent::State(LinkState::Connected { .. })),
            |_| {},
        )
        .expect("the link connects");
    let LinkEvent::State(LinkState::Connected { info, .. }) = event else {
        unreachable!("matched above")
    };
    info
}

/// Waits for an event `pred` accepts, or panics naming `what`.
pub fn expect_event(link: &Link, what: &str, pred: impl FnMut(&LinkEvent) -> bool) -> LinkEvent {
    link.wait_for(DEADLINE, pred, |_| {})
        .unwrap_or_else(|| panic!("no {what} within {DEADLINE:?}"))
}

/// Sends `command` and waits for its answer.
pub fn request(link: &Link, command: Command) -> Answer {
    let id = link.send(command).expect("the link takes the command");
    answer_to(link, id)
}

/// Waits for the answer to request `id`.
pub fn answer_to(link: &Link, id: RequestId) -> Answer {
    let event = expect_event(
        link,
        "answer",
        |e| matches!(e, LinkEvent::Answer(a) if a.id == id),
    );
    let LinkEvent::Answer(answer) = event else {
        unreachable!("matched above")
    };
    answer
}

/// Waits for the next statistics snapshot at least `after` newer than now.
pub fn stats_after(link: &Link, after: Duration) -> LinkStats {
    let from = Instant::now();
    loop {
        let event = expect_event(link, "statistics", |e| matches!(e, LinkEvent::Stats(_)));
        if let LinkEvent::Stats(stats) = event
            && from.elapsed() >= after
        {
            return stats;
        }
    }
}

/// Waits for a journal entry.
pub fn journal_wait(
    pen: &SimPen,
    what: &str,
    pred: impl Fn(&JournalEntry) -> bool,
) -> JournalEntry {
    pen.wait_for(DEADLINE, pred)
        .unwrap_or_else(|| panic!("the pen's journal shows no {what} within {DEADLINE:?}"))
}

/// The commands the pen executed (not duplicates), in order.
pub fn executed(pen: &SimPen) -> Vec<(u32, Command)> {
    pen.journal()
        .into_iter()
        .filter_map(|e| match e.what {
            Journaled::Command {
                command: Some(c),
                duplicate: false,
                ..
            } => Some((e.t_ms, c)),
            _ => None,
        })
        .collect()
}

/// A simulated pen with serial `serial` that journals every telemetry sample (the
/// pen-side truth of where the needle was), calibrated today.
pub fn journaling_pen(serial: &str) -> SimPen {
    journaling_pen_with(serial, SimConfig::default())
}

/// A journaling pen with cartridge `cartridge` (12 needles) in it.
pub fn pen_with_cartridge(serial: &str, cartridge: u64) -> SimPen {
    journaling_pen_with(
        serial,
        SimConfig {
            pen: punctum::sim::PenConfig {
                cartridge: Some(punctum::sim::Cartridge {
                    id: CartridgeId(cartridge),
                    needles: 12,
                }),
                ..punctum::sim::PenConfig::default()
            },
            ..SimConfig::default()
        },
    )
}

/// [`journaling_pen`] on top of `config` (a cartridge, a link path...).
pub fn journaling_pen_with(serial: &str, mut config: SimConfig) -> SimPen {
    config.pen.serial = serial.into();
    config.pen.journal_telemetry = true;
    sim(config)
}

/// Connects a throwaway host to `pen`, sets `depth_um` and leaves once the needle is
/// there, as an earlier host would: the pen keeps that depth across the next `HELLO`.
/// Up to 1.50 mm in the body zone of a session; deeper, as a technician on the bench.
pub fn leave_deep(pen: &SimPen, depth_um: i64) {
    let (earlier, _) = connect(link_config(pen, 100));
    if depth_um > 1500 {
        let id = earlier
            .update_safety(SafetyUpdate::Operator(Some(
                punctum::safety::interlock::OperatorFacts {
                    account: "T-test".into(),
                    practitioner: false,
                    technician: true,
                },
            )))
            .expect("alive");
        expect_event(
            &earlier,
            "signed in",
            |e| matches!(e, LinkEvent::SafetyApplied { id: got, result: Ok(_) } if *got == id),
        );
        let id = earlier
            .update_safety(SafetyUpdate::Technician(true))
            .expect("alive");
        expect_event(
            &earlier,
            "technician mode",
            |e| matches!(e, LinkEvent::SafetyApplied { id: got, result: Ok(_) } if *got == id),
        );
    } else {
        prepare_treatment(&earlier, ZoneId::Body);
    }
    let answer = request(&earlier, Command::Depth { depth_um });
    assert_eq!(answer.outcome, punctum::link::Outcome::Ack, "{answer:?}");
    wait_sample(pen, 0, |t| i64::from(t.depth_um) == depth_um);
    earlier.shutdown();
}

/// Waits for a journaled telemetry sample from index `mark` on that `pred` accepts
/// (the pen must journal its telemetry).
pub fn wait_sample(
    pen: &SimPen,
    mark: u64,
    pred: impl Fn(&punctum::protocol::Telemetry) -> bool,
) -> punctum::protocol::Telemetry {
    let entry = pen
        .wait_for_since(mark, DEADLINE, |e| match &e.what {
            Journaled::Sample(t) => pred(t),
            _ => false,
        })
        .unwrap_or_else(|| panic!("no such sample within {DEADLINE:?}"));
    let Journaled::Sample(t) = entry.what else {
        unreachable!("matched above")
    };
    t
}

/// Every telemetry sample the pen journaled, in order.
pub fn samples(pen: &SimPen) -> Vec<punctum::protocol::Telemetry> {
    pen.journal()
        .into_iter()
        .filter_map(|e| match e.what {
            Journaled::Sample(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// Points the symlink `link` at `target`, atomically (a cable moved).
pub fn repoint(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("rename the symlink into place");
}

/// A bare host: the pty opened directly, for tests that must write what the link
/// never would (bad frames, a command before HELLO, a duplicate).
pub struct RawHost {
    port: TTYPort,
    decoder: FrameDecoder,
    pending: std::collections::VecDeque<PenMessage>,
}

impl RawHost {
    /// Opens the pen's port.
    pub fn open(path: &Path) -> Self {
        let port = serialport::new(path.to_string_lossy(), 115_200)
            .timeout(Duration::from_millis(50))
            .open_native()
            .expect("the pty opens");
        Self {
            port,
            decoder: FrameDecoder::new(),
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Writes raw bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).expect("write to the pty");
    }

    /// Frames and writes a body.
    pub fn send_body(&mut self, body: &str) {
        let mut line = Vec::new();
        encode_frame(body, &mut line).expect("framable body");
        self.write_raw(&line);
    }

    /// Sends a command with a given sequence number.
    pub fn send(&mut self, seq: u16, command: &Command) {
        let seq = Seq::new(seq).expect("nonzero seq");
        let line = command.encode(seq).expect("framable");
        self.write_raw(&line);
    }

    /// Waits for a message `pred` accepts; telemetry and others are skipped.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&PenMessage) -> bool) -> PenMessage {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Some(m) = self.pending.pop_front() {
                if pred(&m) {
                    return m;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {what} from the pen within {DEADLINE:?}"
            );
            let mut buf = [0u8; 4096];
            match self.port.read(&mut buf) {
                Ok(n) => {
                    let pending = &mut self.pending;
                    self.decoder.feed(&buf[..n], |d| {
                        if let Decoded::Frame(body) = d
                            && let Ok(m) = PenMessage::parse(body)
                        {
                            pending.push_back(m);
                        }
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading the pty: {e}"),
            }
        }
    }

    /// Says HELLO and waits for its ACK.
    pub fn hello(&mut self, seq: u16) {
        self.send(seq, &Command::Hello { proto: 1 });
        self.expect_ack(seq);
    }

    /// Waits for `ACK seq`.
    pub fn expect_ack(&mut self, seq: u16) {
        let want = Seq::new(seq).expect("nonzero");
        self.expect(&format!("ACK {seq}"), |m| *m == PenMessage::Ack(want));
    }

    /// Clears what the pen sent so far (used before counting answers).
    pub fn flush_input(&mut self) {
        self.port
            .clear(serialport::ClearBuffer::Input)
            .expect("flush the pty");
        self.pending.clear();
    }
}
