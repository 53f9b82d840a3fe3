//! What the window tests share: a harness on the built-in simulated pen, and frames
//! run until something holds, with a deadline that only bounds a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;

use super::app::{Persisted, StationApp, WindowOptions};

/// Generous: a loaded 2-core machine may be slow, and a deadline only bounds a failure.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The window's options for a test: the built-in simulated pen at 100 Hz, `data_dir`.
pub fn options(data_dir: &Path) -> WindowOptions {
    WindowOptions {
        sim: true,
        data_dir: Some(data_dir.to_path_buf()),
        telemetry_hz: 100,
        ..WindowOptions::default()
    }
}

/// The window at 1280×800 on the simulated pen, its data in `data_dir`.
pub fn harness(data_dir: &Path) -> Harness<'static, StationApp> {
    let options = options(data_dir);
    harness_with(move || StationApp::new(options, Persisted::default()))
}

/// The window at 1280×800, as `app` builds it.
pub fn harness_with(app: impl FnOnce() -> StationApp + 'static) -> Harness<'static, StationApp> {
    let mut app = Some(app);
    Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        .build_eframe(move |_cc| app.take().map(|f| f()).expect("built once"))
}

/// Runs frames until `pred` holds; a frame every few milliseconds, like a screen.
/// On the deadline it fails with the event log and the active alarms.
pub fn step_until(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    pred: impl Fn(&Harness<'static, StationApp>) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    while !pred(h) {
        if Instant::now() >= deadline {
            let app = h.state();
            let log: Vec<&str> = app.log_lines().collect();
            let alarms = app.station().map(|s| s.alarms().active());
            panic!("no {what} within {DEADLINE:?}; log: {log:#?}; alarms: {alarms:#?}");
        }
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}
