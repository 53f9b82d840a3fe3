//! Technician mode and calibration on a real station: the link thread, the interlock
//! and the simulated pen on a real pseudo-terminal. Waits have deadlines, no sleeps.

use std::time::{Duration, Instant};

use crate::calibration::certificate::{self, CalibrationKind, PreviousFate};
use crate::calibration::procedure::Action;
use crate::link::{Link, LinkConfig, LinkState, Outcome};
use crate::protocol::{CalUpdate, Calibration, Command};
use crate::safety::interlock::{Rule, yyyymmdd};
use crate::safety::zones::ZoneTable;
use crate::sim::{HiddenErrors, PenConfig, SimAction, SimConfig, SimPen};
use crate::store::DataDir;

use super::Station;
use super::technician::PENDING_RESTORE_FILE;

/// Generous: a loaded 2-core machine may be slow; a deadline only bounds a failure.
const DEADLINE: Duration = Duration::from_mins(1);

const PIN: &str = "482916";

fn previous() -> Calibration {
    Calibration {
        depth_offset_um: 5,
        depth_gain_ppm: 1000,
        speed_gain_ppm: -300,
        date: yyyymmdd(
            jiff::Zoned::now()
                .date()
                .saturating_sub(jiff::Span::new().days(200)),
        ),
        tech: "OLD".into(),
    }
}

struct Bench {
    pen: SimPen,
    station: Station,
    _dir: tempfile::TempDir,
}

fn bench(depth_gain_ppm: i32, depth_offset_um: i32, speed_gain_ppm: i32) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = SimPen::spawn(SimConfig {
        pen: PenConfig {
            hidden: HiddenErrors {
                depth_gain_ppm,
                depth_offset_um,
                speed_gain_ppm,
            },
            ..PenConfig::default()
        },
        initial_calibration: Some(previous()),
        ..SimConfig::default()
    })
    .expect("the simulated pen starts");
    let data = DataDir::open(dir.path().join("data")).expect("data folder");
    let link = Link::spawn(LinkConfig::new(pen.port_path())).expect("link");
    let mut station = Station::new(link, data, ZoneTable::builtin()).expect("station");
    until(&mut station, "connected", |s| {
        matches!(s.link_state(), LinkState::Connected { .. }) && s.last_telemetry().is_some()
    });
    Bench {
        pen,
        station,
        _dir: dir,
    }
}

fn until(station: &mut Station, what: &str, mut done: impl FnMut(&mut Station) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(station) {
        assert!(
            Instant::now() < deadline,
            "no {what} within {DEADLINE:?}; notices: {:?}; log: {:?}",
            station.take_notices(),
            station
                .calibration_run()
                .map(|r| r.procedure().log().to_vec())
        );
        station.pump(Duration::from_millis(20));
    }
}

/// The bench's accounts: Ana-B, the first admin, a technician (PIN [`PIN`]);
/// Pat, a practitioner only (PIN `PRACTITIONER_PIN`). Ana-B signs in.
fn sign_in_technician(station: &mut Station) {
    use crate::store::accounts::{NewAccount, Role};
    station
        .create_first_admin(&NewAccount {
            id: "Ana-B".into(),
            name: "Ana B".into(),
            roles: [Role::Technician].into(),
            secret: PIN.into(),
        })
        .expect("first admin");
    station.sign_in("Ana-B", PIN).expect("signs in");
    station
        .create_account(&NewAccount {
            id: "Pat".into(),
            name: "Pat".into(),
            roles: [Role::Practitioner].into(),
            secret: PRACTITIONER_PIN.into(),
        })
        .expect("practitioner");
}

const PRACTITIONER_PIN: &str = "73910462";

fn unlock(station: &mut Station) {
    sign_in_technician(station);
    station
        .enter_technician(PIN, "Ana-B")
        .expect("PIN accepted");
    until(station, "technician mode", |s| s.technician().is_some());
}

/// Drives a calibration to its end: the simulated gauge answers depth readings;
/// `tach` gives speed readings from the pen's true rotor speed.
fn run_to_end(station: &mut Station, pen: &SimPen) {
    until(station, "the calibration's end", |s| {
        let Some(run) = s.calibration_run() else {
            return false;
        };
        if run.is_done() {
            return true;
        }
        match run.procedure().action() {
            Action::Review => s.calibration_accept(),
            Action::Reading(_) if run.procedure().kind() == CalibrationKind::Speed => {
                let rpm = pen.stats().true_rpm;
                s.calibration_reading(&format!("{rpm:.0}"))
                    .expect("a plausible reading");
            }
            _ => {}
        }
        false
    });
}

fn gauge_at(station: &mut Station, depth_um: i32) -> i32 {
    let answer = station
        .command(Command::Depth {
            depth_um: i64::from(depth_um),
        })
        .expect("link");
    assert_eq!(answer.outcome, Outcome::Ack, "{answer:?}");
    until(station, "the depth", |s| {
        s.last_telemetry()
            .is_some_and(|t| (t.depth_um - depth_um).abs() <= 2)
    });
    station.sim_gauge_um().expect("the simulated gauge reads")
}

#[test]
fn a_depth_calibration_on_the_station_passes_and_every_depth_gauges_within_10_um() {
    let Bench {
        pen,
        mut station,
        _dir,
    } = bench(30_000, -40, 0);
    unlock(&mut station);
    station
        .start_calibration(CalibrationKind::Depth, true)
        .expect("starts");
    run_to_end(&mut station, &pen);
    let run = station.calibration_run().expect("kept until dismissed");
    assert!(run.procedure().passed(), "{:?}", run.procedure().log());
    let (json, html) = run
        .certificate()
        .expect("written")
        .clone()
        .expect("certificate files");
    let c = certificate::load(&json).expect("loads");
    assert!(c.passed);
    assert_eq!(c.previous, previous());
    assert_eq!(c.previous_fate, PreviousFate::Replaced);
    assert_eq!(c.technician, "Ana-B");
    assert!(c.readings_from.contains("SIM GAUGE"), "{}", c.readings_from);
    assert!(html.exists());
    let written = station.calibration().expect("known").clone();
    assert_eq!(c.written.as_ref(), Some(&written));
    assert_eq!(written.date, yyyymmdd(jiff::Zoned::now().date()));
    for target in (250..=2500).step_by(250) {
        let read = gauge_at(&mut station, target);
        assert!(
            (read - target).abs() <= 10,
            "at {target} µm the gauge reads {read}"
        );
    }
    assert!(
        station
            .calibration_status()
            .is_some_and(crate::calibration::CalibrationStatus::is_valid),
        "{:?}",
        station.calibration_status()
    );
}

#[test]
fn a_speed_calibration_on_the_station_passes_within_1_percent() {
    let Bench {
        pen,
        mut station,
        _dir,
    } = bench(0, 0, 20_000);
    unlock(&mut station);
    station
        .start_calibration(CalibrationKind::Speed, false)
        .expect("starts");
    run_to_end(&mut station, &pen);
    let run = station.calibration_run().expect("kept");
    assert!(run.procedure().passed(), "{:?}", run.procedure().log());
    let fit = run.procedure().speed_fit().expect("fitted");
    assert!((fit.gain_ppm - 20_000).abs() <= 300, "{fit:?}");
}

#[test]
fn operators_cannot_write_calibration_and_technician_mode_needs_the_pin() {
    let Bench {
        pen: _pen,
        mut station,
        _dir,
    } = bench(0, 0, 0);
    // Nobody signed in: refused.
    let e = station.enter_technician(PIN, "Ana-B").expect_err("nobody");
    assert!(e.to_string().contains("nobody is signed in"), "{e}");
    sign_in_technician(&mut station);
    station.sign_in("Pat", PRACTITIONER_PIN).expect("hand-over");
    let answer = station
        .command(Command::CalSet(CalUpdate {
            date: Some(20_260_101),
            ..CalUpdate::default()
        }))
        .expect("link");
    let Outcome::Refused(refusal) = answer.outcome else {
        panic!("an operator's CAL SET must be refused: {answer:?}");
    };
    assert_eq!(refusal.rule, Rule::TechnicianOnly);
    assert_eq!(station.calibration(), Some(&previous()));
    // A practitioner-only account: refused, whatever the PIN.
    let e = station
        .enter_technician(PRACTITIONER_PIN, "Pat")
        .expect_err("not a technician");
    assert!(e.to_string().contains("not a technician"), "{e}");
    station.sign_in("Ana-B", PIN).expect("back");
    let e = station
        .enter_technician("000111", "Ana-B")
        .expect_err("wrong PIN");
    assert!(e.to_string().contains("tries left"), "{e}");
    let e = station.enter_technician(PIN, "Ana B").expect_err("bad id");
    assert!(e.to_string().contains("technician id"), "{e}");
    let e = station
        .start_calibration(CalibrationKind::Depth, true)
        .expect_err("locked");
    assert!(e.to_string().contains("technician mode"), "{e}");
    // The PIN is never stored in plain text.
    let stored =
        std::fs::read_to_string(station.data().path("accounts.json")).expect("accounts file");
    assert!(!stored.contains(PIN), "{stored}");
    assert!(stored.contains("$argon2id$"), "{stored}");
    station.enter_technician(PIN, "Ana-B").expect("right PIN");
    until(&mut station, "technician mode", |s| {
        s.technician().is_some()
    });
    station.leave_technician().expect("leaves");
    until(&mut station, "operator mode", |s| s.technician().is_none());
}

/// Starts a depth calibration with typed readings (so the test chooses the moment),
/// types the readings before fit point `point`, unplugs the pen there, and waits for
/// the calibration's end.
fn unplug_at_reading(station: &mut Station, pen: &SimPen, point: usize) {
    station
        .start_calibration(CalibrationKind::Depth, false)
        .expect("starts");
    until(station, "the reading to unplug at", |s| {
        let Some(Action::Reading(r)) = s.calibration_run().map(|r| r.procedure().action()) else {
            return false;
        };
        if r.point == point {
            return true;
        }
        let reading = format!("{}", r.target * 103 / 100 - 40);
        s.calibration_reading(&reading).expect("plausible");
        false
    });
    pen.act(SimAction::Disappear { duration: None })
        .expect("unplugged");
    until(station, "the calibration's end", |s| {
        s.calibration_run()
            .is_some_and(super::technician::CalibrationRun::is_done)
    });
}

#[test]
fn a_pen_unplugged_mid_calibration_gets_its_previous_values_back_when_it_returns() {
    let Bench {
        pen,
        mut station,
        _dir,
    } = bench(30_000, -40, 0);
    unlock(&mut station);
    unplug_at_reading(&mut station, &pen, 3);
    let run = station.calibration_run().expect("kept");
    assert!(!run.procedure().passed());
    let json = run
        .certificate()
        .expect("written")
        .clone()
        .expect("files")
        .0;
    assert_eq!(
        certificate::load(&json).expect("loads").previous_fate,
        PreviousFate::NotRestored
    );
    let pending = station.pending_restore().expect("pending").clone();
    assert_eq!(pending.previous, previous());
    assert!(station.data().path(PENDING_RESTORE_FILE).exists());
    // The pen itself holds date 0 meanwhile: uncalibrated for the interlock.
    pen.act(SimAction::Reappear).expect("plugged back");
    until(&mut station, "the previous values written back", |s| {
        s.pending_restore().is_none()
    });
    assert_eq!(station.calibration(), Some(&previous()));
    assert!(!station.data().path(PENDING_RESTORE_FILE).exists());
}

#[test]
fn a_pending_restore_survives_a_station_restart_and_is_written_back_in_technician_mode() {
    let Bench {
        pen,
        mut station,
        _dir,
    } = bench(30_000, -40, 0);
    unlock(&mut station);
    unplug_at_reading(&mut station, &pen, 1);
    let data_root = station.data().root().to_path_buf();
    station.shutdown();

    // A new station on the same data folder; the pen comes back.
    pen.act(SimAction::Reappear).expect("plugged back");
    let data = DataDir::open(&data_root).expect("data folder");
    let link = Link::spawn(LinkConfig::new(pen.port_path())).expect("link");
    let mut station = Station::new(link, data, ZoneTable::builtin()).expect("station");
    assert_eq!(
        station.pending_restore().map(|p| p.previous.clone()),
        Some(previous())
    );
    let mut told = false;
    until(&mut station, "the notice", |s| {
        told |= s
            .take_notices()
            .iter()
            .any(|n| matches!(n, super::Notice::Info(t) if t.contains("still to be written back")));
        told
    });
    // Until then the pen is undated: the interlock would not start it.
    assert_eq!(station.calibration().map(|c| c.date), Some(0));
    station
        .sign_in("Ana-B", PIN)
        .expect("signs in after the restart");
    station.enter_technician(PIN, "Ana-B").expect("PIN");
    until(&mut station, "the previous values written back", |s| {
        s.pending_restore().is_none()
    });
    assert_eq!(station.calibration(), Some(&previous()));
}

#[test]
fn technician_mode_ends_when_the_clinic_takes_the_technician_role_away() {
    use crate::store::accounts::Role;
    let mut b = bench(0, 0, 0);
    unlock(&mut b.station);
    // Another room, through the clinic store, leaves Ana-B an admin only: as the
    // adoption writes it into this folder's accounts.
    let accounts = b.station.accounts().clone();
    let admin = accounts
        .sign_in("Ana-B", PIN, jiff::Timestamp::now())
        .expect("admin");
    accounts
        .set_roles(
            &admin,
            "Ana-B",
            &[Role::Admin].into(),
            jiff::Timestamp::now(),
        )
        .expect("roles");
    b.station.account_changed_elsewhere("Ana-B");
    until(&mut b.station, "technician mode over", |s| {
        s.technician().is_none() && !s.technician_toggle_pending()
    });
    let notices = b.station.take_notices();
    assert!(
        notices
            .iter()
            .any(|n| format!("{n:?}").contains("no longer a technician")),
        "{notices:?}"
    );
    // Locked: the account signs in again with what it is now.
    assert!(b.station.is_locked());
}
