//! Frames per second and CPU use of the station window in each state an operator
//! leaves it in (issue 12 §7): `cargo bench --bench idle`.
//!
//! The real app runs in an `egui_kittest` harness, driven the way eframe drives it:
//! a frame is drawn when egui's repaint callback asks for one (the app's own
//! requests, and the link's waker), at the time asked, and at no other. So the
//! frames counted are the ones the app asks for. CPU is this process's (user +
//! system, from `/proc/self/stat`): the app's frames, its link and recorder threads,
//! and the built-in simulated pen, which lives in the window's process too. The GPU's
//! rasterising is not included: under Xvfb with Mesa's software GL it adds about
//! 25 ms of CPU per 1280×800 frame (README: `PUNCTUM_LOG=punctum::frames=info`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use punctum::protocol::PenState;
use punctum::safety::interlock::SafetyUpdate;
use punctum::safety::zones::ZoneId;
use punctum::ui::app::{Persisted, StationApp, WindowOptions};

/// CPU seconds this process has used (user + system).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// When egui next asks for a frame (eframe's event loop keeps the same).
type NextFrame = Arc<Mutex<Option<Instant>>>;

/// The app as `build` makes it (given the window's context), in a harness whose
/// frames are scheduled as eframe schedules them: see [`measure`].
fn harness_with(
    build: impl FnOnce(&egui::Context) -> StationApp + 'static,
) -> (Harness<'static, StationApp>, NextFrame) {
    let next: NextFrame = Arc::new(Mutex::new(None));
    let asked = Arc::clone(&next);
    let mut build = Some(build);
    let harness = Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        // egui's time advances as a screen's would at 30 frames a second (the
        // replay moves by it).
        .with_step_dt(1.0 / 30.0)
        .build_eframe(move |cc| {
            let asked = Arc::clone(&asked);
            cc.egui_ctx.set_request_repaint_callback(move |info| {
                let at = Instant::now() + info.delay;
                if let Ok(mut next) = asked.lock() {
                    *next = Some(next.map_or(at, |n| n.min(at)));
                }
            });
            (build.take().expect("built once"))(&cc.egui_ctx)
        });
    (harness, next)
}

/// The live app on the built-in simulated pen, woken by its link as the window is.
fn harness(mut options: WindowOptions) -> (Harness<'static, StationApp>, NextFrame) {
    harness_with(move |ctx| {
        options.repaint_ctx = Some(ctx.clone());
        StationApp::new(options, Persisted::default())
    })
}

/// Runs the event loop for `secs`: frames when asked, nothing otherwise.
fn measure(name: &str, h: &mut Harness<'static, StationApp>, next: &NextFrame, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    let cpu_before = cpu_secs();
    let started = Instant::now();
    let mut frames = 0_u32;
    while Instant::now() < until {
        let due = next.lock().ok().and_then(|mut n| {
            let due = (*n).filter(|at| *at <= Instant::now());
            if due.is_some() {
                *n = None;
            }
            due
        });
        if due.is_some() {
            h.step();
            frames += 1;
        } else {
            let wait = next
                .lock()
                .ok()
                .and_then(|n| *n)
                .map_or(Duration::from_millis(5), |at| {
                    at.saturating_duration_since(Instant::now())
                });
            std::thread::sleep(wait.min(Duration::from_millis(5)));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    println!(
        "{name}: {:.1} frames/s, {:.3} cores ({:.1} CPU-s per minute)",
        f64::from(frames) / wall,
        cpu / wall,
        cpu / wall * 60.0
    );
}

fn options(dir: &std::path::Path, hz: u32) -> WindowOptions {
    WindowOptions {
        sim: true,
        data_dir: Some(dir.to_path_buf()),
        telemetry_hz: hz,
        ..WindowOptions::default()
    }
}

const SCREENING: &str = r#"{"client":"C-BENCH","dob":"1990-05-01","indication":"rejuvenation","practitioner":"P-7","answers":{"skin_cancer_or_keratosis":false,"open_wounds":false,"active_infection":false,"active_acne_or_rosacea":false,"bleeding_disorder":false,"isotretinoin_6mo":false,"recent_laser_or_peel":false,"anticoagulants":false,"eczema_psoriasis_rosacea":false,"herpes_history":false,"keloids":false,"scleroderma":false,"poor_healing":false,"recent_scars":false,"facial_trauma_6mo":false,"lidocaine_sensitivity":false,"fitzpatrick_iv_vi":false},"confirmed_cautions":[]}"#;

fn step_until(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    pred: impl Fn(&StationApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred(h.state()) {
        assert!(Instant::now() < deadline, "no {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The needle running in the cheeks, through the station as the window's buttons
/// would ask; returns the session's record.
fn run_needle(h: &mut Harness<'static, StationApp>) -> std::path::PathBuf {
    step_until(h, "idle telemetry", |app| {
        app.station()
            .and_then(punctum::station::Station::last_telemetry)
            .is_some_and(|t| t.state == PenState::Idle)
    });
    let station = h.state_mut().station_mut().expect("connected");
    station.open_session(SCREENING).expect("session opens");
    station
        .safety(SafetyUpdate::SelectZone(ZoneId::Cheeks))
        .expect("link alive")
        .expect("zone");
    station.start().expect("start asked");
    step_until(h, "the needle running", |app| {
        app.station()
            .and_then(punctum::station::Station::last_telemetry)
            .is_some_and(|t| t.state == PenState::Running)
    });
    h.state()
        .station()
        .and_then(punctum::station::Station::record_path)
        .expect("recording")
        .to_path_buf()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs = if quick { 1 } else { 20 };
    println!(
        "machine: {} cores; {secs} s per state",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let dir = tempfile::tempdir().expect("temp dir");

    for hz in [100, 1000] {
        let (mut h, next) = harness(options(&dir.path().join(format!("idle{hz}")), hz));
        step_until(&mut h, "the pen", |app| app.station().is_some());
        measure(
            &format!("idle, pen connected, telemetry at {hz} Hz"),
            &mut h,
            &next,
            secs,
        );
    }

    // A treatment start needs telemetry at 500 Hz at least (the interlock refuses
    // 100 Hz: telemetry_too_slow), so the needle runs at 500 and 1000 Hz.
    let mut record = None;
    for hz in [500, 1000] {
        let (mut h, next) = harness(options(&dir.path().join(format!("live{hz}")), hz));
        let path = run_needle(&mut h);
        measure(
            &format!("live plotting, needle running at {hz} Hz"),
            &mut h,
            &next,
            secs,
        );
        let station = h.state_mut().station_mut().expect("connected");
        let _ = station.end_session(true);
        record = Some(path);
    }

    let record = record.expect("a record");
    let rec = punctum::record::load(&record).expect("the record loads");
    let replay_options = WindowOptions {
        sim: false,
        ..options(&dir.path().join("replay"), 100)
    };
    let (mut h, next) = harness_with(move |_ctx| {
        StationApp::new_replay(
            replay_options,
            Persisted::default(),
            punctum::replay::Replay::new(rec),
        )
    });
    for _ in 0..4 {
        h.step();
    }
    measure("replay paused, no pen", &mut h, &next, secs);
    h.get_by_label("Play").click();
    step_until(&mut h, "the replay playing", |app| {
        app.replay().is_some_and(|r| r.transport().playing())
    });
    // Half the time: the record is as long as one live measurement.
    measure("replay playing, no pen", &mut h, &next, secs.div_ceil(2));
    let still = h.state().replay().is_some_and(|r| r.transport().playing());
    assert!(still, "the replay ended before the measurement did");
}
