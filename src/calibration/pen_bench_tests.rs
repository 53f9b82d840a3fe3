//! The calibration maths end to end against the simulated pen's own model
//! ([`PenModel`], driven purely through protocol frames and a test clock): a pen with
//! hidden errors g = +3 % and o = −40 µm is measured with `SIM GAUGE` under identity
//! calibration, fitted, written with `CAL SET`, and then must place every depth from
//! 0.25 to 2.5 mm within ±10 µm. Likewise for speed, with the rotor's true speed as
//! the tachometer.

use crate::calibration::fit::{
    DEPTH_FIT_TARGETS_UM, DEPTH_VERIFY_TARGETS_UM, DepthPoint, SPEED_SETPOINTS_RPM,
    SPEED_VERIFY_SETPOINTS_RPM, SpeedPoint, fit_depth, fit_speed,
};
use crate::calibration::verify::{verify_depth, verify_speed};
use crate::protocol::{Calibration, Decoded, FrameDecoder, PenMessage, encode_frame};
use crate::sim::{HiddenErrors, PenConfig, PenModel};

/// A simulated pen on a bench with a millisecond clock.
struct Bench {
    pen: PenModel,
    now_ms: u64,
    out: Vec<u8>,
    host: FrameDecoder,
    next_seq: u16,
}

impl Bench {
    fn new(hidden: HiddenErrors) -> Self {
        let config = PenConfig {
            hidden,
            ..PenConfig::default()
        };
        let mut out = Vec::new();
        let pen = PenModel::new(config, Calibration::identity(), 0, &mut out);
        let mut bench = Self {
            pen,
            now_ms: 0,
            out,
            host: FrameDecoder::new(),
            next_seq: 1,
        };
        bench.ack("HELLO 1");
        bench
    }

    fn said(&mut self) -> Vec<PenMessage> {
        let mut messages = Vec::new();
        let out = std::mem::take(&mut self.out);
        self.host.feed(&out, |d| {
            if let Decoded::Frame(body) = d {
                messages.push(PenMessage::parse(body).expect("the pen speaks the protocol"));
            }
        });
        messages
    }

    /// Sends a command; panics unless it is acknowledged. Returns what followed.
    fn ack(&mut self, command: &str) -> Vec<PenMessage> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut framed = Vec::new();
        encode_frame(&format!("{seq} {command}"), &mut framed).expect("valid body");
        self.pen.on_bytes(self.now_ms, &framed, &mut self.out);
        let said = self.said();
        assert!(
            said.iter()
                .any(|m| matches!(m, PenMessage::Ack(s) if s.get() == seq)),
            "{command}: {said:?}"
        );
        said
    }

    /// Lets `ms` pass, feeding the watchdog every 100 ms as a host does.
    fn wait(&mut self, ms: u64) {
        for i in 0..ms {
            self.now_ms += 1;
            self.pen.tick(self.now_ms, &mut self.out);
            if i % 100 == 99 {
                self.ack("HB");
            }
        }
        self.said();
    }

    /// Commands a depth, lets the mechanism arrive (5 mm/s: 2.5 mm in 500 ms), and
    /// reads the gauge.
    fn gauge_at(&mut self, depth_um: i32) -> f64 {
        self.ack(&format!("DEPTH {depth_um}"));
        self.wait(700);
        assert!(!self.pen.depth_moving());
        let said = self.ack("SIM GAUGE");
        let true_um = said
            .iter()
            .find_map(|m| match m {
                PenMessage::Gauge { true_um } => Some(*true_um),
                _ => None,
            })
            .expect("SIM GAUGE answers GAUGE");
        f64::from(true_um)
    }

    /// Runs at `rpm`, lets the ramp settle (20000 rpm/s: 9000 rpm in 450 ms), and
    /// reads the rotor's true speed as a tachometer would.
    fn tach_at(&mut self, rpm: i32) -> f64 {
        self.ack(&format!("SPEED {rpm}"));
        self.ack("RUN");
        self.wait(800);
        let true_rpm = self.pen.true_rpm();
        self.ack("HALT");
        self.wait(400);
        true_rpm
    }
}

fn hidden(depth_gain_ppm: i32, depth_offset_um: i32, speed_gain_ppm: i32) -> HiddenErrors {
    HiddenErrors {
        depth_gain_ppm,
        depth_offset_um,
        speed_gain_ppm,
    }
}

#[test]
fn depth_calibration_of_a_plus_3_percent_minus_40_um_pen_places_every_depth_within_10_um() {
    let mut bench = Bench::new(hidden(30_000, -40, 0));
    let fit_points: Vec<DepthPoint> = DEPTH_FIT_TARGETS_UM
        .iter()
        .map(|&r| DepthPoint {
            commanded_um: r,
            measured_um: bench.gauge_at(r),
        })
        .collect();
    let fit = fit_depth(&fit_points).expect("a pen within adjustment fits");
    // SIM GAUGE rounds to the µm, so the estimates are near, not exactly, the truth.
    assert!((fit.gain_ppm - 30_000).abs() <= 500, "{fit:?}");
    assert!((fit.offset_um + 40).abs() <= 2, "{fit:?}");
    bench.ack(&format!(
        "CAL SET depth_gain_ppm={} depth_offset_um={}",
        fit.gain_ppm, fit.offset_um
    ));
    let written = bench
        .ack("CAL GET")
        .into_iter()
        .find_map(|m| match m {
            PenMessage::Cal(c) => Some(c),
            _ => None,
        })
        .expect("CAL GET answers CAL");
    assert_eq!(
        (written.depth_gain_ppm, written.depth_offset_um),
        (fit.gain_ppm, fit.offset_um)
    );

    for target in (250..=2500).step_by(50) {
        let read = bench.gauge_at(target);
        assert!(
            (read - f64::from(target)).abs() <= 10.0,
            "at {target} µm the gauge reads {read} (fit {fit:?})"
        );
    }
    let verify: Vec<DepthPoint> = DEPTH_VERIFY_TARGETS_UM
        .iter()
        .map(|&t| DepthPoint {
            commanded_um: t,
            measured_um: bench.gauge_at(t),
        })
        .collect();
    let report = verify_depth(&written, &DEPTH_FIT_TARGETS_UM, &verify).expect("valid");
    assert!(report.passed, "{:?}", report.reasons);
}

#[test]
fn speed_calibration_of_a_plus_2_percent_sensor_holds_every_setpoint_within_1_percent() {
    let mut bench = Bench::new(hidden(0, 0, 20_000));
    let points: Vec<SpeedPoint> = SPEED_SETPOINTS_RPM
        .iter()
        .map(|&s| SpeedPoint {
            setpoint_rpm: s,
            measured_rpm: bench.tach_at(s),
        })
        .collect();
    // Under identity the rotor turns (1 + s)·setpoint.
    assert!((points[0].measured_rpm - 3060.0).abs() < 1e-6, "{points:?}");
    let fit = fit_speed(&points).expect("fits");
    assert_eq!(fit.gain_ppm, 20_000);
    bench.ack(&format!("CAL SET speed_gain_ppm={}", fit.gain_ppm));
    let written = Calibration {
        speed_gain_ppm: fit.gain_ppm,
        ..Calibration::identity()
    };
    let verify: Vec<SpeedPoint> = SPEED_VERIFY_SETPOINTS_RPM
        .iter()
        .map(|&s| SpeedPoint {
            setpoint_rpm: s,
            measured_rpm: bench.tach_at(s),
        })
        .collect();
    let report = verify_speed(&written, &SPEED_SETPOINTS_RPM, &verify).expect("valid");
    assert!(report.passed, "{:?}", report.reasons);
    assert!(report.max_abs_residual_pct < 1e-6, "{report:?}");
}
