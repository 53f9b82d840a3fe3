//! The calibration tests' bench: the simulated pen's own model ([`PenModel`]) driven
//! through protocol frames on a millisecond test clock, as a host would drive it.

use crate::protocol::{
    Calibration, Command, Decoded, FrameDecoder, PenMessage, Seq, Telemetry, encode_frame,
};
use crate::sim::{HiddenErrors, PenConfig, PenModel};

/// Hidden errors: the pen's true depth gain (ppm), depth offset (µm) and speed-sensor
/// gain (ppm).
pub(super) fn hidden(
    depth_gain_ppm: i32,
    depth_offset_um: i32,
    speed_gain_ppm: i32,
) -> HiddenErrors {
    HiddenErrors {
        depth_gain_ppm,
        depth_offset_um,
        speed_gain_ppm,
    }
}

/// A simulated pen on a bench with a millisecond clock, telemetry at 100 Hz.
pub(super) struct Bench {
    pub(super) pen: PenModel,
    now_ms: u64,
    out: Vec<u8>,
    host: FrameDecoder,
    seq: Seq,
    pub(super) telemetry: Vec<Telemetry>,
    /// The pen answers nothing from here on (unplugged).
    pub(super) unplugged: bool,
}

impl Bench {
    /// A pen holding `calibration`, with `hidden` errors, greeted with `HELLO` and
    /// asked for telemetry at 100 Hz.
    pub(super) fn new(calibration: Calibration, hidden: HiddenErrors) -> Self {
        let config = PenConfig {
            hidden,
            ..PenConfig::default()
        };
        let mut out = Vec::new();
        let pen = PenModel::new(config, calibration, 0, &mut out);
        let mut bench = Self {
            pen,
            now_ms: 0,
            out,
            host: FrameDecoder::new(),
            seq: Seq::new(1).expect("valid"),
            telemetry: Vec::new(),
            unplugged: false,
        };
        for command in [Command::Hello { proto: 1 }, Command::Tel { hz: 100 }] {
            bench.send(&command).0.expect("acknowledged");
        }
        bench
    }

    /// The lines the pen has sent since the last look; telemetry is also kept.
    pub(super) fn said(&mut self) -> Vec<PenMessage> {
        let mut messages = Vec::new();
        let out = std::mem::take(&mut self.out);
        self.host.feed(&out, |d| {
            if let Decoded::Frame(body) = d {
                messages.push(PenMessage::parse(body).expect("the pen speaks the protocol"));
            }
        });
        for m in &messages {
            if let PenMessage::Telemetry(t) = m {
                self.telemetry.push(*t);
            }
        }
        messages
    }

    /// Sends a command: ACK or the NAK's reason, and the lines that followed.
    pub(super) fn send(&mut self, command: &Command) -> (Result<(), String>, Vec<PenMessage>) {
        let seq = self.seq;
        self.seq = seq.next();
        let framed = command.encode(seq).expect("valid command");
        self.pen.on_bytes(self.now_ms, &framed, &mut self.out);
        let said = self.said();
        let end = said
            .iter()
            .find_map(|m| match m {
                PenMessage::Ack(s) if *s == seq => Some(Ok(())),
                PenMessage::Nak(s, reason) if *s == seq => Some(Err(format!("NAK {reason}"))),
                _ => None,
            })
            .expect("the pen answers every command");
        (end, said)
    }

    /// 10 ms pass, a heartbeat every 50 ms as a host sends.
    pub(super) fn tick(&mut self) {
        for _ in 0..10 {
            self.now_ms += 1;
            self.pen.tick(self.now_ms, &mut self.out);
            if self.now_ms.is_multiple_of(50) {
                let mut hb = Vec::new();
                encode_frame(&format!("{} HB", self.seq.get()), &mut hb).expect("valid");
                self.seq = self.seq.next();
                self.pen.on_bytes(self.now_ms, &hb, &mut self.out);
            }
        }
        self.said();
    }

    pub(super) fn gauge(&mut self) -> f64 {
        let (_, said) = self.send(&Command::SimGauge);
        said.iter()
            .find_map(|m| match m {
                PenMessage::Gauge { true_um } => Some(f64::from(*true_um)),
                _ => None,
            })
            .expect("SIM GAUGE answers GAUGE")
    }

    pub(super) fn estop(&mut self) {
        self.pen.on_bytes(self.now_ms, &[0x18], &mut self.out);
        self.tick();
    }

    /// Sends a command typed as on the wire (`"CAL SET depth_gain_ppm=…"`); panics
    /// unless it is acknowledged. Returns what followed.
    pub(super) fn ack(&mut self, command: &str) -> Vec<PenMessage> {
        let seq = self.seq;
        self.seq = seq.next();
        let mut framed = Vec::new();
        encode_frame(&format!("{} {command}", seq.get()), &mut framed).expect("valid body");
        self.pen.on_bytes(self.now_ms, &framed, &mut self.out);
        let said = self.said();
        assert!(
            said.iter()
                .any(|m| matches!(m, PenMessage::Ack(s) if *s == seq)),
            "{command}: {said:?}"
        );
        said
    }

    /// Lets about `ms` pass (in 10 ms ticks, heartbeats included).
    pub(super) fn wait(&mut self, ms: u64) {
        for _ in 0..ms.div_ceil(10) {
            self.tick();
        }
    }

    /// Commands a depth, lets the mechanism arrive (5 mm/s: 2.5 mm in 500 ms), and
    /// reads the gauge.
    pub(super) fn gauge_at(&mut self, depth_um: i32) -> f64 {
        self.ack(&format!("DEPTH {depth_um}"));
        self.wait(700);
        assert!(!self.pen.depth_moving());
        self.gauge()
    }

    /// Runs at `rpm`, lets the ramp settle (20000 rpm/s: 9000 rpm in 450 ms), and
    /// reads the rotor's true speed as a tachometer would.
    pub(super) fn tach_at(&mut self, rpm: i32) -> f64 {
        self.ack(&format!("SPEED {rpm}"));
        self.ack("RUN");
        self.wait(800);
        let true_rpm = self.pen.true_rpm();
        self.ack("HALT");
        self.wait(400);
        true_rpm
    }
}
