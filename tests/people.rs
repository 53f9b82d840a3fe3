//! Accounts, roles, sign-in, the lockout, the technician PIN's migration, signed
//! records and the audit trail, through the real `punctum` binary (the console on a
//! simulated pen over a real pty, `punctum report`, `punctum audit`).

mod common;

use std::path::Path;
use std::process::Command as Process;

use common::console::*;

const PAT_PIN: &str = "73910462";
const TOM_PIN: &str = "55019284";

/// Runs `punctum args...`; its exit code, stdout and stderr.
fn punctum(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Process::new(BIN).args(args).output().expect("punctum runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console signed in as the admin (every role), with Pat (practitioner only)
/// and Tom (technician only) added.
fn clinic(pen: &punctum::sim::SimPen, data: &Path) -> Console {
    let mut c = Console::start(&pen.port_path(), data);
    c.expect("event: link connected", "");
    assert_eq!(
        c.run(&format!("account add Pat practitioner {PAT_PIN} Pat Lee")),
        "ok: account Pat created (practitioner)"
    );
    assert_eq!(
        c.run(&format!("account add Tom technician {TOM_PIN} Tom Ng")),
        "ok: account Tom created (technician)"
    );
    c
}

#[test]
fn roles_are_enforced_below_the_interface() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut c = clinic(&pen, &data);
    let screening = screening_file(dir.path(), "C-0042");

    // A practitioner cannot change limits, settings or accounts.
    assert!(c.run("lock").starts_with("ok: station locked"));
    c.sign_in("Pat", PAT_PIN);
    let refused = c.run("limit cheeks 0.8 tighter for this clinic");
    assert!(refused.contains("Pat is not an admin"), "{refused}");
    let refused = c.run("setting idle_lock_min 5");
    assert!(
        refused.starts_with("refused:") && refused.contains("admin"),
        "{refused}"
    );
    let refused = c.run(&format!("account add Eve admin {PAT_PIN} Eve"));
    assert!(
        refused.starts_with("refused:") && refused.contains("admin"),
        "{refused}"
    );

    // A technician-only account cannot open a session nor start the needle.
    assert!(c.run("lock").starts_with("ok: station locked"));
    c.sign_in("Tom", TOM_PIN);
    let refused = c.run(&format!("session {}", screening.display()));
    assert!(refused.contains("Tom is not a practitioner"), "{refused}");
    let refused = c.run("start");
    assert!(refused.starts_with("refused:"), "{refused}");
    assert!(refused.contains("not a practitioner"), "{refused}");

    // The practitioner treats; the session is hers, whatever the screening file says.
    assert!(c.run("lock").starts_with("ok: station locked"));
    c.sign_in("Pat", PAT_PIN);
    assert_eq!(c.run(&format!("session {}", screening.display())), "ok");
    assert!(c.run("step cleanse").starts_with("ok: step"));
    // A technician cannot take over an open session.
    assert!(c.run("lock").starts_with("ok: station locked"));
    let refused = c.run(&format!("sign-in Tom {TOM_PIN}"));
    assert!(
        refused.contains("only a practitioner takes it over"),
        "{refused}"
    );
    c.sign_in("Pat", PAT_PIN);
    assert!(c.run("note by Pat").starts_with("ok"));

    // Locked: nothing but the stops.
    assert!(c.run("lock").starts_with("ok: station locked"));
    assert!(c.run("zone cheeks").contains("locked"));
    for command in [
        "end",
        "client C-0042",
        "lots L-1",
        "amend S-1 follow_up mild x",
        "quit",
    ] {
        let refused = c.run(command);
        assert!(
            refused.starts_with("refused:") && refused.contains("locked"),
            "{command}: {refused}"
        );
    }
    // A mistyped sign-in never repeats its PIN.
    let error = c.run(&format!("signin Pat {PAT_PIN}"));
    assert!(
        error.starts_with("error: unknown command") && !error.contains(PAT_PIN),
        "{error}"
    );
    assert_eq!(c.run("stop"), "ok", "Stop works locked");
    // The admin, a practitioner too, takes over: a recorded hand-over.
    c.send(&format!("sign-in {ACCOUNT} {PIN}"));
    c.expect("ok:", "Pat handed over to P-7");
    assert_eq!(c.run("estop"), "ok");
    assert!(c.run("ack all").starts_with("ok"));
    c.send("end");
    c.expect("aftercare:", "");
    let (status, lines) = c.finish();
    assert!(status.success(), "{lines:?}");

    let record = only_record(&data);
    let text = std::fs::read_to_string(&record).expect("record");
    assert!(
        text.contains(r#""practitioner":"Pat""#),
        "the session opened as Pat's"
    );
    assert!(
        text.contains(r#""type":"access""#) && text.contains(r#""from":"Pat""#),
        "the hand-over is in the record"
    );
    assert!(text.contains(r#""type":"note""#) && text.contains(r#""author":"Pat""#));
    assert!(
        text.contains(r#""account":"Pat""#),
        "her commands carry her account"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(r#""action":"acknowledged""#) && l.contains(r#""account":"P-7""#)),
        "the acknowledgement carries who"
    );
}

fn only_record(data: &Path) -> std::path::PathBuf {
    std::fs::read_dir(data.join("sessions"))
        .expect("sessions")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a record")
}

#[test]
fn the_lockout_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    ensure_accounts(&data);
    let mut c = Console::start_as(&pen.port_path(), &data, "", &[]);
    for left in (0..5).rev() {
        let refused = c.run(&format!("sign-in {ACCOUNT} 1357902"));
        let said = match left {
            0 => "(too many wrong tries: paused for 60 s)".to_owned(),
            1 => "(1 try left".to_owned(),
            n => format!("({n} tries left"),
        };
        assert!(refused.contains(&said), "{refused}");
    }
    let refused = c.run(&format!("sign-in {ACCOUNT} {PIN}"));
    assert!(refused.contains("too many wrong tries"), "{refused}");
    c.finish();
    // A new station process on the same data folder: still locked out.
    let mut c = Console::start_as(&pen.port_path(), &data, "", &[]);
    let refused = c.run(&format!("sign-in {ACCOUNT} {PIN}"));
    assert!(
        refused.contains("too many wrong tries") && refused.contains("try again in"),
        "{refused}"
    );
    assert!(c.run("zone cheeks").contains("nobody is signed in"));
    c.finish();
    let (code, out, _) = punctum(&[
        "audit",
        "show",
        "--kind",
        "locked_out,sign_in_failed",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("locked_out"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("sign_in_failed")).count(),
        7,
        "{out}"
    );
}

#[test]
fn a_technician_pin_is_migrated_into_an_account_and_keeps_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = punctum::store::DataDir::open(&data).expect("data");
    punctum::store::TechnicianPin::set(&store, "482916", "Ana B").expect("an old technician PIN");
    let pen = calibrated_pen(dir.path());
    let mut c = Console::start_as(&pen.port_path(), &data, "", &[]);
    c.expect("event:", "no account yet");
    let created = c.run("first-admin boss 7391046 Dr Boss");
    assert!(
        created.contains("the technician PIN is now the account Ana-B (technician)"),
        "{created}"
    );
    assert!(
        data.join("technician-pin.migrated.json").exists(),
        "kept, renamed"
    );
    assert!(!data.join("technician-pin.json").exists());
    c.sign_in("Ana-B", "482916");
    assert_eq!(
        c.run("technician Ana-B 482916"),
        "ok: technician mode on (Ana-B)"
    );
    assert!(c.run("technician off").starts_with("ok"));
    c.finish();
    // The accounts file removed: no one becomes the admin again.
    std::fs::remove_file(data.join("accounts.json")).expect("remove");
    let mut c = Console::start_as(&pen.port_path(), &data, "", &[]);
    let refused = c.run("first-admin evil 7391046 Evil");
    assert!(
        refused.contains("the audit log records a first admin (boss)"),
        "{refused}"
    );
    c.finish();
}

#[test]
fn a_signed_record_fails_verification_after_any_byte_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut c = Console::start(&pen.port_path(), &data);
    open_session(&mut c, dir.path(), "C-0042");
    c.send("end");
    c.expect("aftercare:", "");
    let refused = c.run("sign 1357902");
    assert!(refused.contains("wrong PIN"), "{refused}");
    let signed = c.run(&format!("sign {PIN}"));
    assert!(signed.starts_with("ok: record signed by P-7"), "{signed}");
    assert!(
        c.run(&format!("sign {PIN}"))
            .contains("no closed session's record")
    );
    c.finish();

    let record = only_record(&data);
    let path = record.to_str().expect("utf-8");
    let (code, out, err) = punctum(&["report", path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("signed by P-7 (Pat Seven)") && out.contains("SHA-256 verified"),
        "{out}"
    );
    let bytes = std::fs::read(&record).expect("record");
    let last = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines");
    assert!(
        std::str::from_utf8(&bytes[last..])
            .expect("utf-8")
            .contains(r#""type":"signature""#),
        "the signature is the last line"
    );
    // Any byte before the signature, changed: broken (exit 3). A few places: the
    // header, the middle, the summary.
    for at in [10, last / 2, last - 5] {
        let mut changed = bytes.clone();
        changed[at] ^= 0x20;
        std::fs::write(&record, &changed).expect("tamper");
        let (code, out, err) = punctum(&["report", path]);
        assert_eq!(code, Some(3), "byte {at}: {out}{err}");
        assert!(
            out.contains("SIGNATURE BROKEN") || err.contains("SIGNATURE BROKEN"),
            "byte {at}: {out}{err}"
        );
    }
    // The signature line removed: the audit log remembers the signing.
    std::fs::write(&record, &bytes[..=last]).expect("unsign");
    let (code, out, err) = punctum(&["report", path]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.contains("no signature line: it was removed"), "{out}");
    std::fs::write(&record, &bytes).expect("restore");
    let (code, _, _) = punctum(&["report", path]);
    assert_eq!(code, Some(0), "restored, valid again");
    // Signed: the export is audited.
    let (code, _, _) = punctum(&["report", path, "--json"]);
    assert_eq!(code, Some(0));
    let (_, out, _) = punctum(&[
        "audit",
        "show",
        "--kind",
        "record_signed,export",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    assert!(
        out.contains("record_signed") && out.contains("export"),
        "{out}"
    );
}

#[test]
fn audit_verify_names_the_line_after_an_edit_a_deletion_and_a_swap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pen = calibrated_pen(dir.path());
    let mut c = clinic(&pen, &data);
    assert!(c.run("setting idle_lock_min 15").starts_with("ok"));
    assert!(
        c.run("limit cheeks 0.8 clinic protocol 2026-12")
            .starts_with("ok: cheeks limit now 0.80 mm")
    );
    let refused = c.run("limit cheeks 3.5 above the ceiling");
    assert!(
        refused.starts_with("refused:") && refused.contains("ceiling"),
        "{refused}"
    );
    c.finish();
    let d = data.to_str().expect("utf-8");
    let (code, out, _) = punctum(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, Some(0), "{out}");
    let (_, shown, _) = punctum(&[
        "audit",
        "show",
        "--account",
        "P-7",
        "--kind",
        "zone_limit_changed",
        "--data-dir",
        d,
    ]);
    assert!(
        shown.contains("zone=cheeks") && shown.contains("to_um=800"),
        "{shown}"
    );

    let log = data.join("audit.jsonl");
    let original = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 6, "{original}");
    let write = |lines: &[String]| std::fs::write(&log, lines.join("\n") + "\n").expect("write");
    let owned: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();

    let mut edited = owned.clone();
    edited[2] = edited[2].replacen("P-7", "P-8", 1);
    write(&edited);
    let (code, out, _) = punctum(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("TAMPERED: line 4: its chain hash does not match line 3"),
        "{out}"
    );

    let mut removed = owned.clone();
    removed.remove(3);
    write(&removed);
    let (code, out, _) = punctum(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("TAMPERED: line 4: seq 5 where 4 was expected"),
        "{out}"
    );

    let mut swapped = owned.clone();
    swapped.swap(1, 2);
    write(&swapped);
    let (code, out, _) = punctum(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("TAMPERED: line 2: seq 3 where 2 was expected"),
        "{out}"
    );

    write(&owned);
    let (code, _, _) = punctum(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, Some(0));
}
