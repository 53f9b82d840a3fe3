//! Shared helpers for the end-to-end tests: a simulated pen on a real pty, the real
//! link thread, and waits with deadlines (never tuned sleeps).
#![allow(dead_code)] // each test file uses its own subset

pub mod console;

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
        SafetyUpdate::Session(Some(SessionFacts {
            session_id: "S-test".into(),
            client: "C-test".into(),
            screening_passed: true,
            screening_reasons: Vec::new(),
            last_treated: std::collections::BTreeMap::new(),
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
