//! A whole bench calibration on a real station: `cargo bench --bench calibration`.
//!
//! The simulated pen on a real pseudo-terminal, with the hidden errors
//! (g = +3 %, o = −40 µm; and s = +2 % for speed), the real link thread and interlock,
//! the station driving the procedure. Depth readings come from `SIM GAUGE`; speed
//! readings from the simulated rotor's true speed, as a tachometer reads it. Prints,
//! per run: the time a calibration takes, the fit, and afterwards the worst gauge
//! error over every depth from 0.25 to 2.5 mm in 50 µm steps (the issue: ±10 µm).

use std::time::{Duration, Instant};

use punctum::calibration::certificate::CalibrationKind;
use punctum::calibration::procedure::Action;
use punctum::link::{Link, LinkConfig, LinkState, Outcome};
use punctum::protocol::{Calibration, Command};
use punctum::safety::zones::ZoneTable;
use punctum::sim::{HiddenErrors, PenConfig, SimConfig, SimPen};
use punctum::station::Station;
use punctum::store::DataDir;

const DEADLINE: Duration = Duration::from_mins(2);
const RUNS: usize = 3;

fn until(station: &mut Station, what: &str, mut done: impl FnMut(&mut Station) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(station) {
        assert!(Instant::now() < deadline, "no {what} within {DEADLINE:?}");
        station.pump(Duration::from_millis(5));
    }
}

fn setup() -> (SimPen, Station, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = SimPen::spawn(SimConfig {
        pen: PenConfig {
            hidden: HiddenErrors {
                depth_gain_ppm: 30_000,
                depth_offset_um: -40,
                speed_gain_ppm: 20_000,
            },
            ..PenConfig::default()
        },
        initial_calibration: Some(Calibration::identity()),
        ..SimConfig::default()
    })
    .expect("sim pen");
    let data = DataDir::open(dir.path().join("data")).expect("data");
    let link = Link::spawn(LinkConfig::new(pen.port_path())).expect("link");
    let mut station = Station::new(link, data, ZoneTable::builtin()).expect("station");
    until(&mut station, "connection", |s| {
        matches!(s.link_state(), LinkState::Connected { .. }) && s.last_telemetry().is_some()
    });
    station
        .create_first_admin(&punctum::store::accounts::NewAccount {
            id: "bench".into(),
            name: "Bench technician".into(),
            roles: [punctum::store::accounts::Role::Technician].into(),
            secret: "739146".into(),
        })
        .expect("first admin");
    station.sign_in("bench", "739146").expect("signs in");
    station.enter_technician("739146", "bench").expect("unlock");
    until(&mut station, "technician mode", |s| {
        s.technician().is_some()
    });
    (pen, station, dir)
}

fn calibrate(station: &mut Station, pen: &SimPen, kind: CalibrationKind) -> Duration {
    let started = Instant::now();
    station
        .start_calibration(kind, kind == CalibrationKind::Depth)
        .expect("starts");
    until(station, "the end", |s| {
        let Some(run) = s.calibration_run() else {
            return false;
        };
        if run.is_done() {
            return true;
        }
        match run.procedure().action() {
            Action::Review => s.calibration_accept(),
            Action::Reading(_) if kind == CalibrationKind::Speed => {
                let rpm = pen.stats().true_rpm;
                s.calibration_reading(&format!("{rpm:.0}"))
                    .expect("reading");
            }
            _ => {}
        }
        false
    });
    let elapsed = started.elapsed();
    let run = station.calibration_run().expect("run");
    assert!(run.procedure().passed(), "{:?}", run.procedure().log());
    if let Some(fit) = run.procedure().depth_fit() {
        println!(
            "depth: {:.2} s; fit g = {} ppm, o = {} µm, largest fit residual {:.2} µm",
            elapsed.as_secs_f64(),
            fit.gain_ppm,
            fit.offset_um,
            fit.max_abs_residual_um
        );
    }
    if let Some(fit) = run.procedure().speed_fit() {
        println!(
            "speed: {:.2} s; fit s = {} ppm, largest fit residual {:.3} %",
            elapsed.as_secs_f64(),
            fit.gain_ppm,
            fit.max_abs_residual_pct
        );
    }
    station.dismiss_calibration();
    elapsed
}

fn worst_gauge_error_um(station: &mut Station) -> i32 {
    let mut worst = 0;
    for target in (250..=2500).step_by(50) {
        let answer = station
            .command(Command::Depth {
                depth_um: i64::from(target),
            })
            .expect("link");
        assert_eq!(answer.outcome, Outcome::Ack);
        until(station, "the depth", |s| {
            s.last_telemetry()
                .is_some_and(|t| (t.depth_um - target).abs() <= 2)
        });
        let read = station.sim_gauge_um().expect("the simulated gauge reads");
        worst = worst.max((read - target).abs());
    }
    worst
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: skip the long runs.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut depth_secs = Vec::new();
    let mut speed_secs = Vec::new();
    let mut worst = Vec::new();
    for _ in 0..RUNS {
        let (pen, mut station, _dir) = setup();
        depth_secs.push(calibrate(&mut station, &pen, CalibrationKind::Depth).as_secs_f64());
        worst.push(worst_gauge_error_um(&mut station));
        speed_secs.push(calibrate(&mut station, &pen, CalibrationKind::Speed).as_secs_f64());
        station.shutdown();
    }
    println!(
        "depth calibration (9 points, SIM GAUGE): {:.2}..{:.2} s over {RUNS} runs",
        depth_secs.iter().copied().fold(f64::INFINITY, f64::min),
        depth_secs.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "speed calibration (6 setpoints, typed tachometer): {:.2}..{:.2} s",
        speed_secs.iter().copied().fold(f64::INFINITY, f64::min),
        speed_secs.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "after calibration, worst |SIM GAUGE − target| over 0.25..2.5 mm in 50 µm steps: {} µm (runs: {worst:?})",
        worst.iter().max().copied().unwrap_or_default()
    );
}
