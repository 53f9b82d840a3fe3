//! The procedure's checklist, the client file and the lot search, driven through the
//! window's widgets with `egui_kittest` on the built-in simulated pen.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use super::app::{Screen, StationApp};
use super::window_test_support::{
    harness, open_session_unprepared, prepare, scroll_into_view, select_cheeks, step_until,
    steps_recorded,
};

fn runs_at_pen(h: &Harness<'static, StationApp>) -> usize {
    h.state()
        .simulated_pen()
        .map_or(0, super::window_test_support::runs_executed)
}

fn type_into(h: &mut Harness<'static, StationApp>, label: &str, text: &str) {
    scroll_into_view(h, label);
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

fn click(h: &mut Harness<'static, StationApp>, label: &str) {
    scroll_into_view(h, label);
    h.get_by_label(label).click();
    h.step();
}

fn refusal_says(h: &Harness<'static, StationApp>, rule: &str) -> bool {
    h.state().last_refusal().is_some_and(|r| r.contains(rule))
}

#[test]
fn a_start_is_refused_until_cleansing_and_numbing_and_the_countdown_shows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    open_session_unprepared(&mut h);
    select_cheeks(&mut h);
    h.get_by_label("Start").click();
    step_until(&mut h, "the cleansing refusal", |h| {
        refusal_says(h, "(cleansing_not_recorded)")
    });
    step_until(&mut h, "the checklist", |h| {
        h.query_by_label("Cleansing done").is_some()
    });
    click(&mut h, "Cleansing done");
    step_until(&mut h, "cleansing recorded", |h| steps_recorded(h) == 1);
    type_into(&mut h, "Numbing product", "EMLA 5%");
    type_into(&mut h, "Numbing lot", "L-2291");
    click(&mut h, "Numbing cream applied");
    step_until(&mut h, "numbing recorded", |h| steps_recorded(h) == 2);
    // The countdown to the clinic's 20 minutes.
    step_until(&mut h, "the countdown", |h| {
        h.query_all_by_label_contains("WAIT 19:5").next().is_some()
            || h.query_all_by_label_contains("WAIT 20:00").next().is_some()
    });
    h.get_by_label("Start").click();
    step_until(&mut h, "the numbing refusal", |h| {
        refusal_says(h, "minimum contact time is 20 min") && refusal_says(h, "(numbing_incomplete)")
    });
    assert_eq!(runs_at_pen(&h), 0, "no RUN reached the pen");
    // The record has both steps, by the session's practitioner.
    let session = h
        .state()
        .station()
        .and_then(crate::station::Station::session)
        .expect("a session");
    let lots = session.checklist.lots();
    assert_eq!(lots.len(), 1);
    assert_eq!(
        (lots[0].product.as_str(), lots[0].lot.as_str()),
        ("EMLA 5%", "L-2291")
    );
    assert!(session.checklist.entries().iter().all(|e| e.by == "P-7"));
}

#[test]
fn the_client_file_and_the_lot_search_open_from_the_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path());
    open_session_unprepared(&mut h);
    prepare(&mut h);
    step_until(&mut h, "the cartridge", |h| {
        h.query_all_by_label_contains("Cartridge 0123456789ABCDEF lot")
            .next()
            .is_some()
    });
    // A barcode reader types the lot and presses Enter.
    type_into(&mut h, "Cartridge 0123456789ABCDEF lot", "CART-LOT-9");
    h.key_press(egui::Key::Enter);
    h.step();
    step_until(&mut h, "the cartridge lot recorded", |h| {
        steps_recorded(h) == 3
    });
    click(&mut h, "End session");
    step_until(&mut h, "the session closed", |h| {
        h.state().station().is_some_and(|s| s.session().is_none())
    });
    step_until(&mut h, "the summary", |h| {
        h.query_by_label("Close").is_some()
    });
    h.get_by_label("Close").click();
    h.step();

    // The client file, from the screening form's client.
    h.get_by_label("Client id").focus();
    h.step();
    h.get_by_label("Client id").type_text("C-0042");
    h.step();
    click(&mut h, "Client file");
    assert_eq!(h.state().screen(), Screen::ClientFile);
    step_until(&mut h, "the file read", |h| {
        h.state()
            .client_file()
            .file()
            .is_some_and(|f| f.sessions.len() == 1)
    });
    h.step();
    assert!(
        h.query_all_by_label_contains("Course: no treated session yet")
            .next()
            .is_some()
    );
    assert!(
        h.query_all_by_label_contains("lot CART-LOT-9")
            .next()
            .is_some()
    );
    step_until(&mut h, "the client file's Close", |h| {
        h.query_by_label("Close").is_some()
    });
    h.get_by_label("Close").click();
    h.step();
    assert_eq!(h.state().screen(), Screen::Treatment);

    // The lot search.
    h.get_by_label("Lot search").click();
    h.step();
    assert_eq!(h.state().screen(), Screen::LotSearch);
    step_until(&mut h, "the lot field", |h| {
        h.query_by_label("Lot").is_some()
    });
    type_into(&mut h, "Lot", "cart-lot-9");
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the lot's uses", |h| {
        h.state()
            .lot_search()
            .hits()
            .is_some_and(|hits| hits.len() == 1)
    });
    h.step();
    assert!(
        h.query_all_by_label_contains("Lot cart-lot-9: 1 use")
            .next()
            .is_some()
    );
    // The client's name opens the client's file.
    h.get_by_label("C-0042").click();
    h.step();
    assert_eq!(h.state().screen(), Screen::ClientFile);
}
