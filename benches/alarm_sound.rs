//! The alarm sound's figures (issue 13), measured from a recording of what a real
//! PulseAudio server played: `cargo bench --bench alarm_sound`. Needs Debian's
//! `pulseaudio` and `pulseaudio-utils` (the bench starts its own server on a null
//! sink and stops it).
//!
//! - **Delay, condition to first audible pulse.** A refused depth (`depth_refused`,
//!   medium, stated delay 0): from the command's sending to the first pulse's 10 %
//!   point, 20 times. A lost link (`link_lost`, high): from the pen vanishing to the
//!   first pulse (the link's own detection, ≤ 500 ms, included), and from the alarm's
//!   `alarm: raised` line to the first pulse, 5 times. Each is an upper bound by up to
//!   one capture block (20 ms): the capture only says when a block *arrived*.
//! - **Pulse timings** of the high burst and the medium signal, read from the
//!   recording at the envelope's 50 % points, against IEC 60601-1-8's ranges.

#[path = "../tests/common/pulse.rs"]
mod pulse;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use pulse::{Capture, PulseServer};
use punctum::protocol::Calibration;
use punctum::safety::interlock::yyyymmdd;
use punctum::sim::{SimAction, SimConfig, SimPen};
use punctum::sound::analysis::{Pulse, ms, pulses};
use punctum::sound::signal::{self, samples_in};

const DEADLINE: Duration = Duration::from_secs(20);
const BIN: &str = env!("CARGO_BIN_EXE_punctum");
const FLOOR: f64 = 500.0;

const SCREENING: &str = r#"{"client":"C-SOUND","dob":"1990-05-01","indication":"rejuvenation","practitioner":"P-7","answers":{"skin_cancer_or_keratosis":false,"open_wounds":false,"active_infection":false,"active_acne_or_rosacea":false,"bleeding_disorder":false,"isotretinoin_6mo":false,"recent_laser_or_peel":false,"anticoagulants":false,"eczema_psoriasis_rosacea":false,"herpes_history":false,"keloids":false,"scleroderma":false,"poor_healing":false,"recent_scars":false,"facial_trauma_6mo":false,"lidocaine_sensitivity":false,"fitzpatrick_iv_vi":false},"confirmed_cautions":[]}"#;

struct Console {
    stdin: std::process::ChildStdin,
    lines: Receiver<(Instant, String)>,
    child: std::process::Child,
}

impl Console {
    fn start(port: &Path, data: &Path, server: &PulseServer) -> Self {
        let mut child = Command::new(BIN)
            .args(["console", "--sound", "--port"])
            .arg(port)
            .arg("--data-dir")
            .arg(data)
            .env("PULSE_SERVER", server.address())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the console starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = crossbeam_channel::bounded(10_000);
        std::thread::Builder::new()
            .name("bench-console-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            })
            .expect("reader thread");
        let stdin = child.stdin.take().expect("stdin");
        Self {
            stdin,
            lines,
            child,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write");
        self.stdin.flush().expect("flush");
    }

    /// The arrival time and text of the next line starting with `prefix`.
    fn expect(&mut self, prefix: &str) -> (Instant, String) {
        loop {
            let (at, line) = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no `{prefix}` line"));
            if line.starts_with(prefix) {
                return (at, line);
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pulses_from(capture: &Capture, from: usize, len_ms: u32) -> Vec<Pulse> {
    let to = from + samples_in(len_ms);
    capture.wait_for(to);
    pulses(&capture.samples()[from..to], FLOOR)
        .into_iter()
        .filter(|p| p.start_10 > 0)
        .collect()
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((values.len() - 1) as f64 * q).round() as usize;
        values[i]
    };
    println!(
        "{name:<58} n={:<3} min {:>6.1}  p50 {:>6.1}  p95 {:>6.1}  max {:>6.1} ms",
        values.len(),
        values[0],
        pick(0.5),
        pick(0.95),
        values[values.len() - 1]
    );
}

fn range_line(what: &str, measured: &[f64], range: (f64, f64)) {
    let lo = measured.iter().copied().fold(f64::MAX, f64::min);
    let hi = measured.iter().copied().fold(0.0, f64::max);
    let ok = lo >= range.0 && hi <= range.1;
    println!(
        "{what:<40} {lo:>7.1} – {hi:>7.1} ms   standard {:>6.0} – {:>6.0} ms   {}",
        range.0,
        range.1,
        if ok { "within" } else { "OUTSIDE" }
    );
}

#[allow(clippy::too_many_lines)] // one measurement, told in order
fn main() {
    let server = PulseServer::start();
    let capture = Capture::start(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let cal_file = dir.path().join("pen-cal.json");
    punctum::sim::cal_file::store(
        &cal_file,
        &Calibration {
            date: yyyymmdd(jiff::Zoned::now().date()),
            tech: "T1".into(),
            ..Calibration::identity()
        },
    )
    .expect("calibration file");
    let link = dir.path().join("pen");
    let pen = SimPen::spawn(SimConfig {
        cal_file: Some(cal_file),
        link_path: Some(link.clone()),
        ..SimConfig::default()
    })
    .expect("the simulated pen");
    let mut console = Console::start(&link, &dir.path().join("data"), &server);
    console.expect("event: link connected");
    let deadline = Instant::now() + DEADLINE;
    loop {
        console.send("status");
        let (_, status) = console.expect("status:");
        if status.contains(" sound=working ") {
            break;
        }
        assert!(Instant::now() < deadline, "sound never working: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let screening = dir.path().join("screening.json");
    std::fs::write(&screening, SCREENING).expect("screening");
    console.send(&format!("session {}", screening.display()));
    console.expect("ok");
    console.send("zone periorbital");
    console.expect("ok");

    // Medium: a refused depth, 20 times.
    let mut medium_delays = Vec::new();
    let mut medium_pulses = Vec::new();
    for _ in 0..20 {
        let asked = Instant::now();
        console.send("depth 0.35");
        console.expect("refused:");
        let from = capture.index_at(asked);
        let found = pulses_from(&capture, from, 1_500);
        assert_eq!(found.len(), 3, "{found:#?}");
        medium_delays.push(ms(found[0].start_10));
        medium_pulses.extend(found);
        console.send("ack depth_refused");
        console.expect("ok");
    }

    // High: the pen vanishes, 5 times; the first time, two whole bursts.
    let mut high_total = Vec::new();
    let mut high_after_raise = Vec::new();
    let mut high_burst = Vec::new();
    for round in 0..5 {
        let lost = Instant::now();
        pen.act(SimAction::Disappear { duration: None })
            .expect("pen running");
        let (raised, _) = console.expect("alarm: raised high link_lost");
        let from = capture.index_at(lost);
        let listen_ms = if round == 0 {
            2 * signal::HIGH.period_ms().expect("repeats") + 1_000
        } else {
            1_500
        };
        let found = pulses_from(&capture, from, listen_ms);
        assert!(!found.is_empty(), "no pulse");
        high_total.push(ms(found[0].start_10));
        let raised_index = capture.index_at(raised).max(from);
        high_after_raise.push(ms(found[0].start_10 + from - raised_index));
        if round == 0 {
            high_burst = found;
        }
        pen.act(SimAction::Reappear).expect("pen running");
        console.expect("event: link connected");
        console.send("ack link_lost");
        console.expect("ok");
    }
    drop(console);

    println!("alarm sound through PulseAudio (null sink, recorded with parec at 20 ms blocks)");
    println!();
    summary(
        "depth_refused (medium): command sent → first pulse",
        medium_delays,
    );
    summary("link_lost (high): pen vanished → first pulse", high_total);
    summary(
        "link_lost (high): `alarm: raised` line → first pulse",
        high_after_raise,
    );
    println!();
    assert!(
        high_burst.len() >= 20,
        "two high bursts: {}",
        high_burst.len()
    );
    let durations = |ps: &[Pulse]| ps.iter().map(|p| ms(p.duration_50())).collect::<Vec<_>>();
    let spacing = |ps: &[Pulse], i: usize| ms(ps[i + 1].start_50 - ps[i].end_50);
    let first = &high_burst[..10];
    let normal: Vec<f64> = [0, 1, 3, 5, 6, 8]
        .iter()
        .map(|&i| spacing(first, i))
        .collect();
    let wide: Vec<f64> = [2, 7].iter().map(|&i| spacing(first, i)).collect();
    let td = ms(first[0].duration_50());
    let ts = normal[0];
    range_line("high: pulse duration", &durations(first), (75.0, 200.0));
    range_line("high: spacing", &normal, (50.0, 125.0));
    range_line(
        "high: after the 3rd and 8th (2ts + td)",
        &wide,
        (2.0 * ts + td - 5.0, 2.0 * ts + td + 5.0),
    );
    range_line("high: 5th → 6th", &[spacing(first, 4)], (350.0, 1_300.0));
    range_line(
        "high: interburst (10th → next 1st)",
        &[spacing(&high_burst, 9)],
        (2_500.0, 15_000.0),
    );
    #[allow(clippy::cast_precision_loss)]
    let rises: Vec<f64> = first
        .iter()
        .map(|p| 100.0 * p.rise() as f64 / (p.end_10 - p.start_10) as f64)
        .collect();
    println!(
        "{:<40} {:>7.1} – {:>7.1} %    standard     10 –     20 %",
        "high: rise time (10–90 %) of duration",
        rises.iter().copied().fold(f64::MAX, f64::min),
        rises.iter().copied().fold(0.0, f64::max)
    );
    range_line(
        "medium: pulse duration",
        &durations(&medium_pulses),
        (125.0, 250.0),
    );
    let medium_spacings: Vec<f64> = medium_pulses
        .chunks(3)
        .flat_map(|c| [spacing(c, 0), spacing(c, 1)])
        .collect();
    range_line("medium: spacing", &medium_spacings, (125.0, 250.0));
}
