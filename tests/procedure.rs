//! The procedure's start rule through the real binary: `punctum console` on the
//! simulated pen over a real pty. The needle does not start until cleansing and
//! numbing are recorded (the contact time reached, or no numbing with a reason); the
//! pen's journal is the proof that no `RUN` reached it before. Corrections are later
//! lines; the earlier stays in the record.

mod common;

use common::console::*;
use common::*;
use punctum::protocol::Command;

fn runs(pen: &punctum::sim::SimPen) -> usize {
    executed(pen)
        .into_iter()
        .filter(|(_, c)| *c == Command::Run)
        .count()
}

/// `HH:MM` local time `minutes` ago.
fn clock_ago(minutes: i64) -> String {
    jiff::Zoned::now()
        .checked_sub(jiff::Span::new().minutes(minutes))
        .expect("a time")
        .strftime("%H:%M")
        .to_string()
}

#[test]
#[allow(clippy::too_many_lines)] // one session, step by step, reads best whole
fn the_needle_waits_for_cleansing_and_the_numbing_contact_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let data = dir.path().join("data");
    let mut c = Console::start(&pen.port_path(), &data);
    open_session_unprepared(&mut c, dir.path(), "C-0042");
    assert_eq!(c.run("zone cheeks"), "ok");
    assert_eq!(c.run("depth 0.5"), "ok");
    let refused = c.run("start");
    assert!(
        refused.ends_with(
            "start refused: cleansing is not recorded; record it first (cleansing_not_recorded)"
        ),
        "{refused}"
    );
    assert!(c.run("step cleanse").starts_with("ok: step 1 cleansing"));
    let refused = c.run("start");
    assert!(
        refused.contains("numbing is not recorded") && refused.ends_with("(numbing_incomplete)"),
        "{refused}"
    );
    assert!(
        c.run(r#"step numbing "EMLA 5%" L-2291"#)
            .starts_with("ok: step 2 numbing cream applied: EMLA 5%, lot L-2291")
    );
    let refused = c.run("start");
    assert!(
        refused.contains("the clinic's minimum contact time is 20 min"),
        "{refused}"
    );
    c.send("steps");
    c.expect("checklist: Numbing cream: waiting", "left");
    assert_eq!(c.expect_result(), "ok");
    assert!(c.run("step numbing-removed").starts_with("ok: step 3"));
    let refused = c.run("start");
    assert!(refused.contains("was removed after 0:0"), "{refused}");
    assert_eq!(runs(&pen), 0, "no RUN reached the pen");

    // The cream went on in the waiting room 25 minutes ago: a correction says so.
    let corrected = c.run(&format!(
        "step correct 2 at {} because applied in the waiting room",
        clock_ago(25)
    ));
    assert!(
        corrected.starts_with("ok: step 4 correction"),
        "{corrected}"
    );
    assert_eq!(c.run("start"), "ok");
    assert_eq!(c.run("stop"), "ok");
    c.wait_idle();
    assert_eq!(runs(&pen), 1);

    // Refusals that record nothing.
    assert!(
        c.run("step correct 4 void oops")
            .contains("is a correction")
    );
    assert!(
        c.run("step correct 9 void oops")
            .contains("there is no step 9")
    );
    assert!(
        c.run("step reaction red")
            .contains("no test spot is recorded")
    );
    assert!(
        c.run("step numbing EMLA")
            .starts_with("error: wrong arguments")
    );
    assert!(
        c.run(r#"step serum "unterminated"#)
            .starts_with("error: unbalanced quotes")
    );
    c.send("end");
    c.expect("aftercare: course:", "rejuvenation: session 1");
    let (status, lines) = c.finish();
    assert!(status.success(), "{lines:?}");

    // The record: the numbing line as first written, and the correction after it.
    let record = std::fs::read_dir(data.join("sessions"))
        .expect("sessions")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("a record");
    let text = std::fs::read_to_string(&record).expect("read");
    let steps: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|v| v["type"] == "step")
        .collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_eq!(steps[1]["step"], "numbing_applied");
    assert!(
        steps[1].get("at_utc_ms").is_none(),
        "the first line stays as written"
    );
    assert_eq!(steps[3]["step"], "correction");
    assert_eq!(steps[3]["corrects"], 2);
    assert!(steps[3]["at_utc_ms"].is_i64());
    assert_eq!(
        text.lines().next().map(|l| l.contains(r#""version":5"#)),
        Some(true)
    );
    // The report lists the steps with their times, and the corrected one says so.
    let out = std::process::Command::new(BIN)
        .arg("report")
        .arg(&record)
        .output()
        .expect("report");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("Procedure"), "{report}");
    assert!(report.contains("corrected by 4"), "{report}");
    assert!(report.contains("numbing_cream  EMLA 5%"), "{report}");
}

#[test]
fn a_lidocaine_sensitive_client_needs_a_deliberate_confirmation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut c = Console::start(&pen.port_path(), &dir.path().join("data"));
    c.expect("event: link connected", "");
    let screening = screening_file(dir.path(), "C-0043");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&screening).expect("read")).expect("JSON");
    json["answers"]["lidocaine_sensitivity"] = true.into();
    json["confirmed_cautions"] = serde_json::json!(["lidocaine_sensitivity"]);
    std::fs::write(&screening, json.to_string()).expect("write");
    assert_eq!(c.run(&format!("session {}", screening.display())), "ok");
    let refused = c.run("step numbing EMLA L-1");
    assert!(
        refused.contains("lidocaine sensitivity was confirmed at screening")
            && refused.contains("confirm-lidocaine"),
        "{refused}"
    );
    c.send("steps");
    c.expect("checklist: Numbing cream: MISSING", "");
    assert_eq!(c.expect_result(), "ok");
    let ok = c.run("step numbing EMLA L-1 confirm-lidocaine");
    assert!(ok.contains("lidocaine sensitivity confirmed"), "{ok}");
    // The client then declines before the cream goes on (step 1 void): no numbing,
    // with a reason, opens the way (after cleansing).
    assert!(
        c.run("step correct 1 void declined before it went on")
            .starts_with("ok: step 2")
    );
    assert!(
        c.run("step no-numbing client declined")
            .starts_with("ok: step 3")
    );
    assert!(c.run("step cleanse").starts_with("ok: step 4"));
    assert_eq!(c.run("zone forehead"), "ok");
    assert_eq!(c.run("depth 0.3"), "ok");
    assert_eq!(c.run("start"), "ok");
    let (status, _) = c.finish();
    assert!(status.success());
}

#[test]
fn tricks_that_would_start_the_needle_early_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let mut c = Console::start(&pen.port_path(), &dir.path().join("data"));
    open_session_unprepared(&mut c, dir.path(), "C-0044");
    // A time later than now is not quietly taken as yesterday's.
    let later = jiff::Zoned::now()
        .checked_add(jiff::Span::new().minutes(60))
        .expect("a time")
        .strftime("%H:%M")
        .to_string();
    let refused = c.run(&format!("step cleanse at {later}"));
    assert!(
        refused.contains("is later than now") || refused.contains("more than 180 min ago"),
        "{refused}"
    );
    assert!(c.run("step cleanse").starts_with("ok: step 1"));
    // A keyword where a value belongs.
    let refused = c.run("step numbing EMLA confirm-lidocaine");
    assert!(refused.contains("a value is missing"), "{refused}");
    // No numbing over a cream recorded as on.
    assert!(c.run("step numbing EMLA L-1").starts_with("ok: step 2"));
    let refused = c.run("step no-numbing changed mind");
    assert!(refused.contains("recorded as on (step 2)"), "{refused}");
    assert!(
        c.run("step correct 2 void never applied")
            .starts_with("ok: step 3")
    );
    assert!(
        c.run("step no-numbing client declined")
            .starts_with("ok: step 4")
    );
    // A test spot whose reaction is not read holds the needle.
    assert!(c.run("step test-spot cheeks 0.5").starts_with("ok: step 5"));
    assert_eq!(c.run("zone cheeks"), "ok");
    assert_eq!(c.run("depth 0.5"), "ok");
    let refused = c.run("start");
    assert!(refused.ends_with("(test_spot_pending)"), "{refused}");
    assert_eq!(runs(&pen), 0, "no RUN reached the pen");
    // Voided, the spot no longer holds it.
    assert!(
        c.run("step correct 5 void made on the wrong client")
            .starts_with("ok: step 6")
    );
    assert_eq!(c.run("start"), "ok");
    let (status, _) = c.finish();
    assert!(status.success());
}

#[test]
fn a_misspelt_setting_is_said_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = calibrated_pen(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("settings.json"), r#"{"test_spot_wait_mins": 5}"#).expect("write");
    let mut c = Console::start(&pen.port_path(), &data);
    let warning = c.expect("warning:", "unknown key test_spot_wait_mins");
    assert!(warning.contains("not used by this version"), "{warning}");
    let (status, _) = c.finish();
    assert!(status.success());
}
