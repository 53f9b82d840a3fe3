//! The clinic store in the window, through `egui_kittest`, on the built-in simulated
//! pen over a real pty: with the store away, the connection bar says so, and a new
//! cartridge runs only after "Confirm sealed pack", which the record keeps. Waits
//! have deadlines (`step_until`), never sleeps.

use egui_kittest::kittest::Queryable as _;

use super::app::{Persisted, StationApp, WindowOptions};
use super::window_test_support::{
    harness_signed_out, harness_with, open_session, options, runs_executed, scroll_into_view,
    select_cheeks, step_until,
};
use crate::safety::interlock::CartridgeCheck;
use crate::station::Station;

/// The interlock's verdict on the cartridge in the pen.
fn cartridge_check(h: &egui_kittest::Harness<'static, StationApp>) -> Option<CartridgeCheck> {
    h.state()
        .station()
        .and_then(Station::safety_summary)
        .and_then(|s| s.cartridge.as_ref())
        .map(|c| c.check.clone())
}

#[test]
fn with_the_clinic_store_away_the_bar_says_so_and_a_new_cartridge_waits_for_a_sealed_pack() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A store nobody answers for: a closed port on this machine.
    let options = WindowOptions {
        clinic: Some("postgres://punctum:not-shown@127.0.0.1:1/clinic".into()),
        ..options(dir.path())
    };
    let mut h = harness_with(move || StationApp::new(options, Persisted::default()));
    step_until(&mut h, "the store unreachable in the bar", |h| {
        h.query_by_label_contains("Clinic: UNREACHABLE").is_some()
    });
    assert!(h.query_by_label_contains("not-shown").is_none());
    open_session(&mut h);
    select_cheeks(&mut h);
    h.get_by_label("Start").click();
    step_until(&mut h, "the sealed-pack question", |h| {
        cartridge_check(h)
            == Some(CartridgeCheck::Offline {
                sealed_pack_confirmed: false,
            })
            && h.query_by_label("Confirm sealed pack").is_some()
    });
    assert_eq!(
        runs_executed(h.state().simulated_pen().expect("the built-in pen")),
        0,
        "nothing ran before the confirmation"
    );
    scroll_into_view(&mut h, "Confirm sealed pack");
    h.get_by_label("Confirm sealed pack").click();
    step_until(&mut h, "the confirmation", |h| {
        cartridge_check(h)
            == Some(CartridgeCheck::Offline {
                sealed_pack_confirmed: true,
            })
    });
    h.get_by_label("Start").click();
    step_until(&mut h, "the needle running", |h| {
        h.state()
            .station()
            .and_then(Station::last_telemetry)
            .is_some_and(|t| t.rpm > 1000)
    });
    let record = h
        .state()
        .station()
        .and_then(Station::record_path)
        .expect("a record")
        .to_path_buf();
    step_until(&mut h, "the confirmation in the record", |_| {
        std::fs::read_to_string(&record).is_ok_and(|text| {
            text.contains("\"event\":\"sealed_pack_confirmed\"")
                && text.contains("\"event\":\"unreachable\"")
        })
    });
}

#[test]
fn a_new_room_of_a_clinic_waits_for_the_clinics_accounts_rather_than_making_its_own_admin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WindowOptions {
        clinic: Some("postgres://punctum:not-shown@127.0.0.1:1/clinic".into()),
        ..options(dir.path())
    };
    let mut h = harness_signed_out(egui::vec2(1280.0, 800.0), move || {
        StationApp::new(options, Persisted::default())
    });
    step_until(&mut h, "the clinic's words on the first start", |h| {
        h.query_by_label_contains("No account at this station yet")
            .is_some()
            && h.query_by_label_contains(
                "belongs to the clinic store postgres://punctum@127.0.0.1:1/clinic",
            )
            .is_some()
    });
    assert!(h.query_by_label_contains("not-shown").is_none());
    super::window_test_support::fill(
        &mut h,
        &[
            ("Account", "mal"),
            ("Name", "Mallory"),
            ("PIN", "7391046"),
            ("PIN again", "7391046"),
        ],
    );
    h.get_by_label("Create admin").click();
    step_until(&mut h, "the refusal", |h| {
        h.query_all_by_label_contains("does not answer now")
            .next()
            .is_some()
    });
    let accounts =
        crate::store::accounts::Accounts::of(h.state().station().expect("station").data());
    assert!(
        accounts.is_empty().expect("readable"),
        "no admin of its own"
    );
}
