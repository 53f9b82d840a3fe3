//! What the window tests share: a harness on the built-in simulated pen, and frames
//! run until something holds, with a deadline that only bounds a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp, WindowOptions};
use crate::link::LinkState;
use crate::safety::zones::ZoneId;
use crate::station::Station;

/// Generous: a loaded 2-core machine may be slow, and a deadline only bounds a failure.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The window's options for a test: the built-in simulated pen at 500 Hz (a treatment
/// start needs at least that), `data_dir`.
pub fn options(data_dir: &Path) -> WindowOptions {
    WindowOptions {
        sim: true,
        data_dir: Some(data_dir.to_path_buf()),
        telemetry_hz: 500,
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
    harness_sized(egui::Vec2::new(1280.0, 800.0), app)
}

/// The window at `size`, as `app` builds it; with a live station, [`ACCOUNT`] (every
/// role, the data folder's first admin) signs in through the sign-in screen.
pub fn harness_sized(
    size: egui::Vec2,
    app: impl FnOnce() -> StationApp + 'static,
) -> Harness<'static, StationApp> {
    let mut h = harness_signed_out(size, app);
    h.step();
    let data = h.state().station().map(|s| s.data().root().to_path_buf());
    if let Some(data) = data {
        ensure_accounts(&data);
        sign_in(&mut h, ACCOUNT, PIN);
    }
    h
}

/// The window at `size`, as `app` builds it, nobody signed in.
pub fn harness_signed_out(
    size: egui::Vec2,
    app: impl FnOnce() -> StationApp + 'static,
) -> Harness<'static, StationApp> {
    let mut app = Some(app);
    Harness::builder()
        .with_size(size)
        .build_eframe(move |_cc| app.take().map(|f| f()).expect("built once"))
}

/// The window tests' account: the first admin, with every role.
pub const ACCOUNT: &str = "P-7";

/// [`ACCOUNT`]'s PIN.
pub const PIN: &str = "258013";

/// Makes [`ACCOUNT`] the first admin (every role) of the data folder at `data` unless
/// it has accounts.
pub fn ensure_accounts(data: &Path) {
    use crate::store::accounts::{Accounts, NewAccount, Role};
    let dir = crate::store::DataDir::open(data).expect("data dir");
    let accounts = Accounts::of(&dir);
    if accounts.is_empty().expect("accounts readable") {
        accounts
            .create_first_admin(
                &NewAccount {
                    id: ACCOUNT.into(),
                    name: "Pat Seven".into(),
                    roles: Role::ALL.into_iter().collect(),
                    secret: PIN.into(),
                },
                jiff::Timestamp::now(),
            )
            .expect("first admin");
    }
}

/// Types each `(label, text)` into its field, as a person does.
pub fn fill(h: &mut Harness<'static, StationApp>, fields: &[(&str, &str)]) {
    for (field, text) in fields {
        h.get_by_label(field).focus();
        h.step();
        h.get_by_label(field).type_text(text);
        h.step();
    }
}

/// Signs `id` in through the sign-in (or lock) screen, as a person types.
pub fn sign_in(h: &mut Harness<'static, StationApp>, id: &str, pin: &str) {
    h.step();
    h.get_by_label("Account").focus();
    h.step();
    // The form keeps the account typed before a refusal: cleared first, as a person
    // deletes it.
    for _ in 0..h.state().people_form().id.chars().count() {
        h.key_press(egui::Key::Backspace);
    }
    h.step();
    h.get_by_label("Account").type_text(id);
    h.step();
    h.get_by_label("PIN").focus();
    h.step();
    h.get_by_label("PIN").type_text(pin);
    h.step();
    h.key_press(egui::Key::Enter);
    step_until(h, "the sign-in", |h| {
        h.state()
            .station()
            .and_then(Station::active_account)
            .is_some_and(|a| a.id() == id)
    });
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

/// Fills the screening form through its widgets, as a person does (C-0042, born
/// 1990-05-01, P-7, every question no, rejuvenation): the form is then ready for
/// "Open session".
pub fn fill_screening_form(h: &mut Harness<'static, StationApp>) {
    for (field, text) in [("Client id", "C-0042"), ("Date of birth", "1990-05-01")] {
        h.get_by_label(field).focus();
        h.step();
        h.get_by_label(field).type_text(text);
        h.step();
    }
    // One click a frame, as a person clicks.
    let questions = h.get_all_by_label("no").count();
    assert_eq!(questions, 17, "every answerable question has a no");
    for i in 0..questions {
        h.get_all_by_label("no")
            .nth(i)
            .expect("still there")
            .click();
        h.step();
    }
    h.get_by_label("Indication").click();
    step_until(h, "the indication list", |h| {
        h.query_by_label("rejuvenation").is_some()
    });
    h.get_by_label("rejuvenation").click();
    h.step();
}

pub fn connected(h: &Harness<'static, StationApp>) -> bool {
    h.state()
        .station()
        .is_some_and(|s| matches!(s.link_state(), LinkState::Connected { .. }))
}

/// Fills the form through its widgets and opens the session, then records the steps
/// before the needle through the checklist (cleansing; no numbing, with a reason).
pub fn open_session(h: &mut Harness<'static, StationApp>) {
    open_session_unprepared(h);
    prepare(h);
}

/// Fills the form through its widgets and opens the session; no step recorded.
pub fn open_session_unprepared(h: &mut Harness<'static, StationApp>) {
    step_until(h, "a connected pen", connected);
    fill_screening_form(h);
    let form = &h.state().screening;
    assert!(
        form.to_json(ACCOUNT).is_some(),
        "the form is complete: {form:?}"
    );
    scroll_into_view(h, "Open session");
    h.get_by_label("Open session").click();
    step_until(h, "an open session", |h| {
        h.state().station().is_some_and(|s| s.session().is_some())
    });
}

/// Scrolls the widget labelled `label` into view, as a person scrolls, and waits
/// until the scroll's animation is over (its place unchanged for three frames): a
/// click on a widget still sliding lands where it was.
pub fn scroll_into_view(h: &mut Harness<'static, StationApp>, label: &str) {
    h.get_by_label(label).scroll_to_me();
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    let mut still = 0;
    while still < 3 {
        assert!(Instant::now() < deadline, "{label} never settled");
        h.step();
        let rect = h.get_by_label(label).rect();
        if last == Some(rect) {
            still += 1;
        } else {
            still = 0;
        }
        last = Some(rect);
    }
}

/// The number of steps the open session has recorded.
pub fn steps_recorded(h: &Harness<'static, StationApp>) -> usize {
    h.state()
        .station()
        .and_then(|s| s.session())
        .map_or(0, |s| s.checklist.entries().len())
}

/// Records cleansing and "no numbing" (with a reason) through the checklist's
/// widgets, as a person does.
pub fn prepare(h: &mut Harness<'static, StationApp>) {
    let before = steps_recorded(h);
    step_until(h, "the checklist", |h| {
        h.query_by_label("Cleansing done").is_some()
    });
    // As a person does: scroll the session panel to the button, then click.
    scroll_into_view(h, "Cleansing done");
    h.get_by_label("Cleansing done").click();
    step_until(h, "cleansing recorded", |h| steps_recorded(h) == before + 1);
    scroll_into_view(h, "No numbing, because");
    h.get_by_label("No numbing, because").focus();
    h.step();
    h.get_by_label("No numbing, because")
        .type_text("test of the window, no client");
    h.step();
    h.get_all_by_label("Record")
        .next()
        .expect("the no-numbing button")
        .click();
    step_until(h, "no numbing recorded", |h| {
        steps_recorded(h) == before + 2
    });
}

pub fn select_cheeks(h: &mut Harness<'static, StationApp>) {
    // As a person does: move onto the zone (its tooltip shows), then click.
    h.get_by_label("zone cheeks").hover();
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("zone cheeks").click();
    step_until(h, "the cheeks active", |h| {
        h.state()
            .station()
            .and_then(|s| s.safety_summary())
            .and_then(|s| s.zone)
            == Some(ZoneId::Cheeks)
    });
}

/// A session, the cheeks, and the needle running.
pub fn start_in_cheeks(h: &mut Harness<'static, StationApp>) {
    open_session(h);
    select_cheeks(h);
    h.get_by_label("Start").click();
    step_until(h, "the needle running", |h| {
        h.state()
            .station()
            .and_then(Station::last_telemetry)
            .is_some_and(|t| t.rpm > 1000)
    });
}

/// How many `RUN`s the simulated pen carried out (its journal: the pen-side truth).
pub fn runs_executed(pen: &crate::sim::SimPen) -> usize {
    pen.journal()
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                crate::sim::Journaled::Command {
                    command: Some(crate::protocol::Command::Run),
                    duplicate: false,
                    ..
                }
            )
        })
        .count()
}

/// A throwaway PulseAudio server and a capture of its null sink: the integration
/// tests' own helper, shared so the window is tested through a real server too.
#[path = "../../tests/common/pulse.rs"]
pub mod pulse;
