//! The client's file, the course and the lot search over a folder of generated
//! records (hundreds of sessions, some interrupted, one damaged), through the library
//! and through the real binary; amendments never change a record's bytes.

mod common;

use std::process::Command;

use common::clinic_records::{self, DAY_MS, Planned};
use common::console::BIN;
use punctum::client::{ClientFile, lot_query};
use punctum::record::Library;
use sha2::{Digest as _, Sha256};

fn punctum(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_client_file_and_the_lot_search_cover_every_readable_record() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let sessions = data.join("sessions");
    let plans = clinic_records::clinic(&sessions, 300, 40, 200);
    let damaged = clinic_records::damaged(&sessions);

    let library = Library::scan(&sessions);
    assert_eq!(library.entries.len(), 300);
    assert_eq!(library.warnings.len(), 1, "{:?}", library.warnings);
    assert!(library.warnings[0].contains(&damaged.display().to_string()));

    // Client C-0007: every 10th session is interrupted, so some of theirs are.
    let today = jiff::civil::date(2026, 11, 30);
    let mine: Vec<&Planned> = plans.iter().filter(|p| p.client == "C-0007").collect();
    let file = ClientFile::build(&library, &[], "C-0007", today);
    assert_eq!(file.sessions.len(), mine.len());
    let interrupted = file.sessions.iter().filter(|s| s.interrupted).count();
    assert_eq!(interrupted, mine.iter().filter(|p| p.interrupted).count());
    assert!(interrupted > 0, "the test needs an interrupted session");
    for s in &file.sessions {
        let plan = mine
            .iter()
            .find(|p| p.session_id() == s.session_id)
            .expect("a planned session");
        assert_eq!(s.date, Some(plan.date()));
        assert_eq!(s.indication.as_deref(), Some(plan.indication));
        assert_eq!(s.zones.len(), 1, "{s:?}");
        assert_eq!(s.zones[0].zone, plan.zone);
        assert_eq!(s.zones[0].max_depth_um, plan.depth_um);
        assert_eq!(s.zones[0].needling_ms, u64::from(plan.samples - 1), "{s:?}");
        // Lots and notes from the summary, or (interrupted) from the lines.
        let lots: Vec<&str> = s.lots.iter().map(|l| l.lot.as_str()).collect();
        assert!(lots.contains(&plan.numbing_lot.as_str()), "{lots:?}");
        assert!(lots.contains(&plan.serum_lot.as_str()), "{lots:?}");
        assert!(lots.contains(&plan.cartridge_lot.as_str()), "{lots:?}");
        assert_eq!(s.notes, vec![plan.note.clone()]);
    }
    // Newest first; the depth history per zone oldest first.
    assert!(file.sessions.windows(2).all(|w| w[0].date >= w[1].date));
    let cheeks = &file.zone_history["cheeks"];
    assert!(cheeks.windows(2).all(|w| w[0].date <= w[1].date));
    assert_eq!(
        cheeks.len(),
        mine.iter().filter(|p| p.zone == "cheeks").count()
    );

    // A lot: every session that used it, and nothing else.
    let hits = lot_query(&library, "ser-3");
    let expected: Vec<String> = plans
        .iter()
        .filter(|p| p.serum_lot == "SER-3")
        .map(Planned::session_id)
        .collect();
    assert_eq!(hits.len(), expected.len());
    assert!(
        hits.iter()
            .all(|h| expected.contains(&h.session_id) && h.kind == "serum")
    );

    // A record copied under another name counts once, and is named.
    let copy = sessions.join("zz_copy.jsonl");
    std::fs::copy(sessions.join(mine[0].file_name()), &copy).expect("copy");
    let library = Library::scan(&sessions);
    assert_eq!(library.entries.len(), 300, "the copy is left out");
    assert!(
        library
            .warnings
            .iter()
            .any(|w| w.contains("zz_copy.jsonl") && w.contains("left out")),
        "{:?}",
        library.warnings
    );
    std::fs::remove_file(&copy).expect("remove");

    // The same through the real binary.
    let dir = data.to_str().expect("utf-8");
    let (code, out, err) = punctum(&["lots", "CART-7", "--data-dir", dir]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Lot CART-7: 10 uses in 300 records"),
        "{out}"
    );
    assert!(
        err.contains("0000_damaged.jsonl"),
        "the damaged record is said: {err}"
    );
    let (code, out, _) = punctum(&["lots", "NO-SUCH-LOT", "--data-dir", dir]);
    assert_eq!(code, 1);
    assert!(out.contains(": 0 uses"), "{out}");
    let (code, out, err) = punctum(&["client", "C-0007", "--data-dir", dir, "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["sessions"].as_array().map(Vec::len), Some(mine.len()));
    let (code, out, _) = punctum(&["client", "C-0007", "--data-dir", dir]);
    assert_eq!(code, 0);
    assert!(out.contains("INTERRUPTED"), "{out}");
    assert!(out.contains("Depth per zone"), "{out}");
    let (code, _, err) = punctum(&["client", "C-9999", "--data-dir", dir]);
    assert_eq!(code, 1);
    assert!(err.contains("no session of client C-9999"), "{err}");
    let nowhere = tmp.path().join("nowhere");
    let (code, _, err) = punctum(&["lots", "X", "--data-dir", nowhere.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(err.contains("no data folder at"), "{err}");
    assert!(!nowhere.exists(), "reading creates no folder");
}

#[test]
fn the_course_counts_each_indication_across_recorded_sessions() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let sessions = tmp.path().join("sessions");
    std::fs::create_dir_all(&sessions).expect("folder");
    let day = |d: i64| 1_780_000_000_000_i64 + d * DAY_MS; // from 2026-05-28
    let plan = |client: &str, indication: &'static str, d: i64| Planned {
        client: client.into(),
        indication,
        opened_utc_ms: day(d),
        zone: "cheeks",
        depth_um: 800,
        samples: 50,
        numbing_lot: "N".into(),
        serum_lot: "S".into(),
        cartridge_lot: "C".into(),
        interrupted: false,
        note: String::new(),
    };
    for p in [
        plan("ACNE", "acne_scars", 0),
        plan("ACNE", "acne_scars", 31),
        plan("ACNE", "acne_scars", 62),
        plan("REJ", "rejuvenation", 0),
        plan("MAINT", "acne_scars", 0),
        plan("MAINT", "maintenance", 120),
    ] {
        clinic_records::write(&sessions, &p);
    }
    let library = Library::scan(&sessions);
    let today = jiff::civil::date(2026, 11, 30);
    let text = |client: &str| {
        ClientFile::build(&library, &[], client, today)
            .course
            .expect("a course")
            .text
    };
    // 2026-05-28 + 62 days = 2026-07-29: the next a month on.
    assert_eq!(
        text("ACNE"),
        "acne scars: 3 of 3–6 sessions done; next from 2026-08-29"
    );
    assert_eq!(
        text("REJ"),
        "rejuvenation: 1 session done (every 4–6 weeks); next between 2026-06-25 and 2026-07-09; \
         the schedule's latest date (2026-07-09) has passed"
    );
    assert_eq!(
        text("MAINT"),
        "maintenance: 1 session done (every 3–6 months); next between 2026-12-25 and \
         2027-03-25"
    );
    // Opening the fourth acne session today.
    let past = punctum::client::past_sessions(library.of_client("ACNE"));
    let opening = punctum::safety::course::opening(
        punctum::safety::screening::Indication::AcneScars,
        &past,
        today,
    );
    assert_eq!(
        opening.text,
        "acne scars: session 4 of 3–6; next from 2026-12-30"
    );
    assert_eq!(opening.caution, None);
}

#[test]
fn an_amendment_never_changes_the_records_bytes_and_the_report_shows_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let sessions = data.join("sessions");
    let plans = clinic_records::clinic(&sessions, 3, 1, 20);
    let path = sessions.join(plans[2].file_name());
    let digest = |p: &std::path::Path| Sha256::digest(std::fs::read(p).expect("read"));
    let before: Vec<_> = plans
        .iter()
        .map(|p| digest(&sessions.join(p.file_name())))
        .collect();
    let dir = data.to_str().expect("utf-8");
    let session = plans[2].session_id();
    let hostile = "redness <script>alert(1)</script> & \"quotes\"";
    let (code, out, err) = punctum(&[
        "amend",
        "--data-dir",
        dir,
        "--session",
        &session,
        "--kind",
        "redness_persistent",
        "--severity",
        "moderate",
        "--note",
        hostile,
        "--by",
        "P-7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("amended session"), "{out}");
    // Refusals say why and write nothing.
    for (args, why) in [
        (
            vec!["--kind", "sunburn", "--severity", "mild"],
            "unknown kind",
        ),
        (
            vec!["--kind", "infection", "--severity", "awful"],
            "unknown severity",
        ),
    ] {
        let mut all = vec![
            "amend",
            "--data-dir",
            dir,
            "--session",
            &session,
            "--note",
            "x",
        ];
        all.extend(args);
        let (code, _, err) = punctum(&all);
        assert_eq!(code, 1);
        assert!(err.contains(why), "{err}");
    }
    let (code, _, err) = punctum(&[
        "amend",
        "--data-dir",
        dir,
        "--session",
        "S-nope",
        "--kind",
        "infection",
        "--severity",
        "mild",
        "--note",
        "x",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no session S-nope"), "{err}");
    let after: Vec<_> = plans
        .iter()
        .map(|p| digest(&sessions.join(p.file_name())))
        .collect();
    assert_eq!(before, after, "no record changed");
    let amendments = std::fs::read_to_string(data.join("amendments.jsonl")).expect("the file");
    assert_eq!(amendments.lines().count(), 1);

    let (code, out, err) = punctum(&["report", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Amendments (added after the session"), "{out}");
    assert!(out.contains("redness_persistent"), "{out}");
    // Replay shows them too: the background open reads them beside the record.
    let mut loading = punctum::replay::open::Loading::start(path.clone()).expect("starts");
    match loading.wait(std::time::Duration::from_secs(10)) {
        Some(punctum::replay::open::LoadOutcome::Opened(replay)) => {
            assert_eq!(replay.amendments().len(), 1);
            assert_eq!(replay.amendments()[0].kind, "redness_persistent");
        }
        other => panic!("the replay did not open: {other:?}"),
    }
    let file = ClientFile::open(
        &punctum::store::DataDir::open(&data).expect("data"),
        &plans[2].client,
        jiff::civil::date(2026, 11, 30),
    );
    let amended = file
        .sessions
        .iter()
        .find(|s| s.session_id == session)
        .expect("the session");
    assert_eq!(amended.amendments.len(), 1);
    assert_eq!(amended.amendments[0].note, hostile);
}
