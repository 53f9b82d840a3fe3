//! The clinic store for real: a throwaway `PostgreSQL` server (`common::pg`), stations
//! as `punctum console` processes on their simulated pens, each with its own data
//! folder, and network faults made by stopping the server, by cutting one station's
//! link at a relay (`CutProxy`: the connection drops), or by pulling one station's
//! cable (`common::netns`: the server in a network namespace of its own, a veth pair
//! per station, packets lost without a word). Never a mock; never skipped.

mod common;

use std::path::Path;
use std::process::Command as Process;
use std::time::Instant;

use common::console::{BIN, Console, open_session};
use common::pg::{CutProxy, PgServer};
use common::*;
use punctum::protocol::{CartridgeId, Command};
use punctum::sim::{PenConfig, SimConfig, SimPen};

fn ran(pen: &SimPen) -> bool {
    executed(pen).iter().any(|(_, c)| *c == Command::Run)
}

/// `punctum clinic <args>` on `data`: exit code and output.
fn clinic_cmd(data: &Path, url: &str, args: &[&str]) -> (i32, String) {
    let out = Process::new(BIN)
        .arg("clinic")
        .args(args)
        .arg("--clinic")
        .arg(url)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("punctum clinic runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A station on `pen` with data folder `data`, joined to the store at `url`.
fn station(pen: &SimPen, data: &Path, url: &str) -> Console {
    let mut c = Console::start_with(&pen.port_path(), data, "", &["--clinic", url]);
    c.expect("event: clinic store", "as station");
    c
}

/// Waits until the station's `clinic` line contains every one of `needles`.
fn wait_clinic(station: &mut Console, needles: &[&str]) -> String {
    let deadline = Instant::now() + 3 * DEADLINE;
    loop {
        station.send("clinic");
        let line = station.expect("clinic:", "");
        if needles.iter().all(|n| line.contains(n)) {
            return line;
        }
        assert!(Instant::now() < deadline, "never {needles:?}: {line}");
        // Asked again at once: each `clinic` is answered after the console's own
        // loop turn, so this is no busy spin.
        std::thread::yield_now();
    }
}

/// Waits until `sql` (one row, one bigint) on database `db` gives `want`: the store
/// has what the station uploads (its `clinic` line's depth is counted each second,
/// so it may lag the files by that much).
fn wait_store(server: &PgServer, db: &str, sql: &str, want: i64) {
    let mut client = server.client(db);
    let deadline = Instant::now() + 3 * DEADLINE;
    loop {
        let got: i64 = client.query_one(sql, &[]).expect(sql).get(0);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, never {want}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A store with its schema, and its URL.
fn store(server: &PgServer, name: &str) -> String {
    let url = server.create_db(name);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (code, out) = clinic_cmd(tmp.path(), &url, &["init"]);
    assert_eq!(code, 0, "{out}");
    url
}

#[test]
fn the_schema_is_created_upgraded_and_refused_when_newer_and_no_output_shows_the_password() {
    let server = PgServer::start();
    let url = server.create_db("schema");
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path();
    // Everything any command printed: the password must be in none of it.
    let mut said = String::new();
    let mut clinic_cmd = |data: &Path, url: &str, args: &[&str]| {
        let (code, out) = clinic_cmd(data, url, args);
        said.push_str(&out);
        (code, out)
    };
    let (code, out) = clinic_cmd(data, &url, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("state: incompatible") && out.contains("clinic init"),
        "{out}"
    );
    let (code, out) = clinic_cmd(data, &url, &["init"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("initialised at schema version"), "{out}");
    let (code, out) = clinic_cmd(data, &url, &["init"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already has the clinic schema"), "{out}");
    let (code, out) = clinic_cmd(data, &url, &["migrate"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already"), "{out}");
    let (code, out) = clinic_cmd(data, &url, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(status["state"], "connected");
    assert_eq!(status["schema"], status["station_schema"]);
    // A store migrated by a newer station: this one refuses to migrate or use it.
    let mut db = server.client("schema");
    db.execute(
        "INSERT INTO punctum_schema (version, name, sha256) VALUES (999, 'future', 'x')",
        &[],
    )
    .expect("a newer version");
    let (code, out) = clinic_cmd(data, &url, &["migrate"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("update this station"), "{out}");
    let (code, out) = clinic_cmd(data, &url, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("update this station"), "{out}");
    db.execute("DELETE FROM punctum_schema WHERE version = 999", &[])
        .expect("back");
    // An applied migration edited since: refused.
    db.execute(
        "UPDATE punctum_schema SET sha256 = 'edited' WHERE version = 1",
        &[],
    )
    .expect("edit");
    let (code, out) = clinic_cmd(data, &url, &["migrate"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("differs from this station's"), "{out}");
    let (code, out) = clinic_cmd(data, &url, &["status"]);
    assert_eq!(code, 3, "a station does not use it either: {out}");
    assert!(out.contains("differs from this station's"), "{out}");
    // A wrong password, a refused connection: said, and the password never shown.
    let wrong = url.replace(server.password(), "not-the-password");
    let (code, out) = clinic_cmd(data, &wrong, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("password authentication failed"), "{out}");
    let mut stopped = PgServer::start();
    let gone = stopped.url("postgres");
    stopped.stop();
    let (code, out) = clinic_cmd(data, &gone, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("state: unreachable"), "{out}");
    assert!(!said.contains(server.password()) && !said.contains(stopped.password()));
}

#[test]
fn two_stations_claiming_one_cartridge_in_the_same_moment_run_it_at_one() {
    let server = PgServer::start();
    let url = store(&server, "race");
    for trial in 0..3u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let cartridge = 0x0000_0000_0000_0A00 + trial;
        let pens = [
            pen_with_cartridge("SIM-A1", cartridge),
            pen_with_cartridge("SIM-A2", cartridge),
        ];
        let mut stations = [
            station(&pens[0], &dir.path().join("a"), &url),
            station(&pens[1], &dir.path().join("b"), &url),
        ];
        // New clients each trial: the store remembers the last trial's cheeks.
        let clients = [format!("C-{trial}001"), format!("C-{trial}002")];
        for (s, client) in stations.iter_mut().zip(&clients) {
            open_session(s, dir.path(), client);
            wait_clinic(s, &["state=connected"]);
            assert_eq!(s.run("zone cheeks"), "ok");
        }
        stations[0].send("start");
        stations[1].send("start");
        let answers = [stations[0].expect_result(), stations[1].expect_result()];
        assert_eq!(
            answers.iter().filter(|a| *a == "ok").count(),
            1,
            "trial {trial}: {answers:?}"
        );
        let refused = answers.iter().find(|a| *a != "ok").expect("one refused");
        assert!(refused.contains("cartridge_used"), "{refused}");
        assert_eq!(usize::from(ran(&pens[0])) + usize::from(ran(&pens[1])), 1);
        let live: i64 = server
            .client("race")
            .query_one(
                "SELECT count(*) FROM cartridge_claims WHERE cartridge_id = $1 \
                 AND released_at IS NULL",
                &[&CartridgeId(cartridge).to_string()],
            )
            .expect("count")
            .get(0);
        assert_eq!(live, 1, "one live claim in the store");
        for s in stations {
            drop(s.finish());
        }
    }
}

#[test]
fn a_zone_treated_in_one_room_is_refused_in_another_within_4_weeks() {
    let server = PgServer::start();
    let url = store(&server, "zones");
    let dir = tempfile::tempdir().expect("temp dir");
    let pens = [
        pen_with_cartridge("SIM-B1", 0x0000_0000_0000_0B01),
        pen_with_cartridge("SIM-B2", 0x0000_0000_0000_0B02),
    ];
    let mut first = station(&pens[0], &dir.path().join("a"), &url);
    open_session(&mut first, dir.path(), "C-0042");
    wait_clinic(&mut first, &["state=connected"]);
    assert_eq!(first.run("zone cheeks"), "ok");
    assert_eq!(first.run("start"), "ok");
    assert_eq!(first.run("stop"), "ok");
    drop(first.finish());
    // Another room, later, its own data folder: only the store knows.
    let mut second = station(&pens[1], &dir.path().join("b"), &url);
    open_session(&mut second, dir.path(), "C-0042");
    wait_clinic(&mut second, &["state=connected"]);
    assert_eq!(second.run("zone cheeks"), "ok");
    let refused = second.run("start");
    assert!(
        refused.contains("zone_treated_recently") && refused.contains("cheeks"),
        "{refused}"
    );
    assert_eq!(second.run("zone forehead"), "ok");
    assert_eq!(second.run("start"), "ok");
    assert!(!ran(&pens[1]) || second.run("stop") == "ok");
    drop(second.finish());
}

/// Lines of a local file, and of its copy in the store (decompressed, in order).
fn local_and_stored(server: &PgServer, db: &str, record: &Path) -> (Vec<u8>, Vec<u8>, i64) {
    let local = std::fs::read(record).expect("record");
    let session_id = String::from_utf8_lossy(&local)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["session_id"].as_str().map(str::to_owned))
        .expect("header");
    let rows = server
        .client(db)
        .query(
            "SELECT first_byte, end_byte, lines, zstd FROM record_chunks \
             WHERE session_id = $1 ORDER BY first_byte",
            &[&session_id],
        )
        .expect("chunks");
    let mut stored = Vec::new();
    let mut lines = 0i64;
    for row in rows {
        let first: i64 = row.get(0);
        assert_eq!(
            first,
            i64::try_from(stored.len()).expect("size"),
            "chunks in order, no gap"
        );
        let bytes = zstd::decode_all(row.get::<_, &[u8]>(3)).expect("zstd");
        assert_eq!(
            row.get::<_, i64>(1) - first,
            i64::try_from(bytes.len()).expect("size")
        );
        lines += i64::from(row.get::<_, i32>(2));
        stored.extend(bytes);
    }
    (local, stored, lines)
}

/// The data folder's session record once closed (the pen answered the closing HALT:
/// the summary is its last line, and every byte of it can be in the store), and its
/// session id.
fn closed_record(data: &Path) -> (std::path::PathBuf, String) {
    let record = std::fs::read_dir(data.join("sessions"))
        .expect("sessions")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a record");
    let closed = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        if text
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"type\":\"summary\""))
        {
            let header: serde_json::Value =
                serde_json::from_str(text.lines().next().expect("header")).expect("json");
            let session = header["session_id"].as_str().expect("id").to_owned();
            return (record, session);
        }
        assert!(Instant::now() < closed, "the record never closed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_store_outage_mid_session_queues_the_record_and_the_upload_loses_and_doubles_nothing() {
    let mut server = PgServer::start();
    let url = store(&server, "outage");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("a");
    let pen = pen_with_cartridge("SIM-C1", 0x0000_0000_0000_0C01);
    let mut s = station(&pen, &data, &url);
    open_session(&mut s, dir.path(), "C-0007");
    wait_clinic(&mut s, &["state=connected"]);
    assert_eq!(s.run("zone cheeks"), "ok");
    assert_eq!(s.run("start"), "ok");
    wait_clinic(
        &mut s,
        &["state=connected", "outbox_lines=", "last_upload=2"],
    );
    server.stop();
    s.expect("alarm: raised medium clinic_store_unreachable", "");
    // The session goes on: the needle stops and starts again, all recorded locally.
    assert_eq!(s.run("stop"), "ok");
    assert_eq!(s.run("start"), "ok");
    let queued = wait_clinic(&mut s, &["state=unreachable"]);
    let depth: u64 = queued
        .split_whitespace()
        .find_map(|w| w.strip_prefix("outbox_lines="))
        .and_then(|n| n.parse().ok())
        .expect("outbox_lines");
    assert!(depth > 0, "records queue while the store is away: {queued}");
    assert_eq!(s.run("stop"), "ok");
    server.start_again();
    s.expect("alarm: cleared medium clinic_store_unreachable", "");
    s.send("end");
    s.expect("summary: session=", "");
    let (record, _) = closed_record(&data);
    let size = i64::try_from(std::fs::metadata(&record).expect("record").len()).expect("size");
    wait_store(
        &server,
        "outage",
        "SELECT coalesce(max(end_byte), 0) FROM record_chunks",
        size,
    );
    wait_clinic(&mut s, &["state=connected", "outbox_lines=0 "]);
    let (local, stored, lines) = local_and_stored(&server, "outage", &record);
    assert_eq!(
        stored.len(),
        local.len(),
        "every byte in the store, none twice"
    );
    assert!(
        stored == local,
        "the store's copy is the record, byte for byte"
    );
    let local_lines = memchr::memchr_iter(b'\n', &local).count();
    assert_eq!(usize::try_from(lines).expect("lines"), local_lines);
    assert!(
        String::from_utf8_lossy(&local).contains("\"event\":\"unreachable\""),
        "the record says the store was away"
    );
    // The session's rows.
    let mut db = server.client("outage");
    let row = db
        .query_one(
            "SELECT client, summary IS NOT NULL FROM sessions s \
             JOIN upload_cursors c ON c.session_id = s.session_id LIMIT 1",
            &[],
        )
        .expect("session row");
    assert_eq!(row.get::<_, String>(0), "C-0007");
    assert!(row.get::<_, bool>(1), "the summary is a row too");
    // The audit trail, line for line.
    let audit_local = std::fs::read_to_string(data.join("audit.jsonl")).expect("audit");
    let audit_store: i64 = db
        .query_one("SELECT count(*) FROM audit_events", &[])
        .expect("count")
        .get(0);
    assert_eq!(
        usize::try_from(audit_store).expect("n"),
        audit_local.lines().count()
    );
    drop(s.finish());
}

#[test]
fn a_cartridge_claimed_while_cut_off_needs_a_sealed_pack_and_a_later_conflict_alarms_both_rooms() {
    let server = PgServer::start();
    let url = store(&server, "conflict");
    let proxy = CutProxy::start(server.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let cartridge = 0x0000_0000_0000_0D07;
    let pens = [
        pen_with_cartridge("SIM-D1", cartridge),
        pen_with_cartridge("SIM-D2", cartridge),
    ];
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = station(&pens[0], &data_a, &server.url_via(&proxy, "conflict"));
    let mut b = station(&pens[1], &data_b, &url);
    for (s, client) in [(&mut a, "C-0101"), (&mut b, "C-0102")] {
        open_session(s, dir.path(), client);
        wait_clinic(s, &["state=connected"]);
        assert_eq!(s.run("zone cheeks"), "ok");
    }
    // Room A loses the network in the middle of its claim.
    proxy.cut();
    let refused = a.run("start");
    assert!(refused.contains("sealed_pack_unconfirmed"), "{refused}");
    assert!(
        a.seen
            .iter()
            .any(|l| l.starts_with("alarm: raised medium clinic_store_unreachable")),
        "{:#?}",
        a.seen
    );
    let history = wait_clinic(&mut a, &["state=unreachable"]);
    assert!(history.contains("history=incomplete"), "{history}");
    assert!(a.run("sealed-pack").starts_with("ok: cartridge"));
    assert_eq!(a.run("start"), "ok");
    assert_eq!(a.run("stop"), "ok");
    // Room B, connected, claims the same cartridge: the store has no claim yet.
    assert_eq!(b.run("start"), "ok");
    assert_eq!(b.run("stop"), "ok");
    assert!(ran(&pens[0]) && ran(&pens[1]));
    // The network returns: A's claim reaches the store and meets B's.
    proxy.restore();
    a.expect("alarm: raised high cartridge_claim_conflict", "C-01");
    b.expect("alarm: raised high cartridge_claim_conflict", "");
    let conflicts: i64 = server
        .client("conflict")
        .query_one("SELECT count(*) FROM claim_conflicts", &[])
        .expect("count")
        .get(0);
    assert_eq!(conflicts, 1);
    for (s, data) in [(a, &data_a), (b, &data_b)] {
        drop(s.finish());
        let audit = std::fs::read_to_string(data.join("audit.jsonl")).expect("audit");
        assert!(audit.contains("\"claim_conflict\""), "{}", data.display());
        let record = std::fs::read_dir(data.join("sessions"))
            .expect("sessions")
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>();
        assert!(
            record.contains("\"event\":\"claim_conflict\""),
            "the conflict is in {}'s record",
            data.display()
        );
    }
    let a_record = std::fs::read_dir(data_a.join("sessions"))
        .expect("sessions")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(a_record.contains("\"event\":\"sealed_pack_confirmed\""));
}

#[test]
fn in_strict_mode_nothing_starts_without_the_store() {
    let server = PgServer::start();
    store(&server, "strict");
    let proxy = CutProxy::start(server.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("a");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("settings.json"), r#"{"clinic_strict": true}"#).expect("settings");
    let pen = pen_with_cartridge("SIM-E1", 0x0000_0000_0000_0E77);
    let mut s = station(&pen, &data, &server.url_via(&proxy, "strict"));
    open_session(&mut s, dir.path(), "C-0201");
    wait_clinic(&mut s, &["state=connected", "strict=true"]);
    assert_eq!(s.run("zone cheeks"), "ok");
    proxy.cut();
    let refused = s.run("start");
    assert!(refused.contains("clinic_store_required"), "{refused}");
    let refused = s.run("sealed-pack");
    assert!(
        refused.contains("strict mode"),
        "confirming changes nothing: {refused}"
    );
    let refused = s.run("start");
    assert!(refused.contains("clinic_store_required"), "{refused}");
    assert!(!ran(&pen));
    proxy.restore();
    wait_clinic(&mut s, &["state=connected"]);
    assert_eq!(s.run("start"), "ok");
    drop(s.finish());
}

#[test]
fn a_zone_limit_changed_at_one_station_holds_at_the_others_from_their_next_session() {
    let server = PgServer::start();
    let url = store(&server, "limits");
    let dir = tempfile::tempdir().expect("temp dir");
    let pens = [
        pen_with_cartridge("SIM-F1", 0x0000_0000_0000_0F71),
        pen_with_cartridge("SIM-F2", 0x0000_0000_0000_0F72),
    ];
    let mut a = station(&pens[0], &dir.path().join("a"), &url);
    let mut b = station(&pens[1], &dir.path().join("b"), &url);
    for s in [&mut a, &mut b] {
        s.expect("event: link connected", "");
        wait_clinic(s, &["state=connected"]);
    }
    let changed = a.run("limit cheeks 0.5 lowered after a reaction in room 3");
    assert!(changed.starts_with("ok"), "{changed}");
    // Room B opens its next session at once: the clinic's table holds there.
    let screening = common::console::screening_file(dir.path(), "C-0401");
    assert_eq!(b.run(&format!("session {}", screening.display())), "ok");
    assert_eq!(b.run("zone cheeks"), "ok");
    b.expect("event: zone cheeks active", "limit 0.50 mm");
    let refused = b.run("depth 0.8");
    assert!(refused.contains("depth_above_limit"), "{refused}");
    assert_eq!(b.run("depth 0.5"), "ok");
    drop(b.finish());
    // Written where B reads its table at its next start, and audited with its origin.
    let data_b = dir.path().join("b");
    let audit = std::fs::read_to_string(data_b.join("audit.jsonl")).expect("audit");
    assert!(
        audit.contains("\"via\":\"clinic store\"") && audit.contains("reaction in room 3"),
        "{audit}"
    );
    let table = std::fs::read_to_string(data_b.join("zones.clinic.json")).expect("table file");
    let table = punctum::safety::zones::ZoneTable::from_json(&table).expect("a zone table");
    let cheeks = "cheeks".parse().expect("zone id");
    assert_eq!(table.limit_um(cheeks), 500);
    let versions: i64 = server
        .client("limits")
        .query_one(
            "SELECT count(*) FROM zone_tables WHERE changed_by = 'P-7'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(versions, 1);
    drop(a.finish());
}

#[test]
fn a_store_at_the_previous_schema_with_data_in_it_is_migrated_and_keeps_it() {
    let server = PgServer::start();
    let url = server.create_db("old");
    let mut db = server.client("old");
    // The previous version: every migration but the last.
    let previous = punctum::clinic::schema::SCHEMA_VERSION - 1;
    let done = punctum::clinic::schema::migrate(&mut db, previous).expect("previous schema");
    assert_eq!((done.from, done.to), (0, previous));
    // What a version-1 clinic holds: a station, a live cartridge claim, a treatment.
    db.batch_execute(
        "INSERT INTO stations (station_id, version) VALUES ('room-1', '0.0.9');
         INSERT INTO cartridge_claims (cartridge_id, session_id, station_id, client, claimed_at)
             VALUES ('00000000000000F1', 'old-session', 'room-1', 'C-0300', now());
         INSERT INTO treatments (client, zone, treated_on, session_id, station_id)
             VALUES ('C-0301', 'cheeks', current_date, 'old-session-2', 'room-1');",
    )
    .expect("version 1 data");
    let tmp = tempfile::tempdir().expect("temp dir");
    let (code, out) = clinic_cmd(tmp.path(), &url, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("punctum clinic migrate"), "{out}");
    let (code, out) = clinic_cmd(tmp.path(), &url, &["migrate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "migrated from schema version {previous} to {}",
            previous + 1
        )),
        "{out}"
    );
    // The old treatment and claim still decide.
    let pen = pen_with_cartridge("SIM-G1", 0x0000_0000_0000_00F1);
    let mut s = station(&pen, &tmp.path().join("a"), &url);
    open_session(&mut s, tmp.path(), "C-0301");
    wait_clinic(&mut s, &["state=connected"]);
    assert_eq!(s.run("zone cheeks"), "ok");
    let refused = s.run("start");
    assert!(refused.contains("zone_treated_recently"), "{refused}");
    assert_eq!(s.run("zone forehead"), "ok");
    let refused = s.run("start");
    assert!(
        refused.contains("cartridge_used") && refused.contains("old-session"),
        "{refused}"
    );
    assert!(!ran(&pen));
    // The new version's table fills: the station's accounts reach it.
    wait_store(
        &server,
        "old",
        "SELECT count(*) FROM accounts WHERE account_id = 'P-7'",
        1,
    );
    drop(s.finish());
}

#[test]
fn a_calibration_certificate_reaches_the_store_by_pen_serial() {
    let server = PgServer::start();
    let url = store(&server, "certificates");
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = journaling_pen_with(
        "SIM-CAL7",
        SimConfig {
            pen: PenConfig {
                hidden: punctum::sim::HiddenErrors {
                    speed_gain_ppm: 20_000,
                    ..punctum::sim::HiddenErrors::default()
                },
                ..PenConfig::default()
            },
            ..SimConfig::default()
        },
    );
    let mut s = station(&pen, &dir.path().join("a"), &url);
    s.expect("event: link connected", "");
    let entered = s.run(&format!("technician Ana-B {}", common::console::PIN));
    assert_eq!(entered, "ok: technician mode on (Ana-B)");
    s.send("cal speed");
    for phase in ["cal: reading fit", "cal: reading verify"] {
        if phase == "cal: reading verify" {
            s.expect("cal: write this fit to the pen?", "");
            s.send("yes");
        }
        for _ in 0..3 {
            s.expect(phase, "");
            s.send(&format!("{:.0}", pen.stats().true_rpm));
        }
    }
    s.expect("ok: speed calibration passed", "certificate");
    wait_store(
        &server,
        "certificates",
        "SELECT count(*) FROM calibration_certificates",
        1,
    );
    let row = server
        .client("certificates")
        .query_one(
            "SELECT pen_serial, technician, passed, body->>'readings_from' \
             FROM calibration_certificates",
            &[],
        )
        .expect("one certificate");
    assert_eq!(row.get::<_, String>(0), "SIM-CAL7");
    assert_eq!(row.get::<_, String>(1), "Ana-B");
    assert!(row.get::<_, bool>(2));
    drop(s.finish());
}

#[test]
fn what_the_store_refused_stays_refused_when_it_goes_away() {
    let server = PgServer::start();
    let url = store(&server, "memory");
    let proxy = CutProxy::start(server.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let cartridge = 0x0000_0000_0000_0E51;
    let pens = [
        pen_with_cartridge("SIM-H1", cartridge),
        pen_with_cartridge("SIM-H2", cartridge),
    ];
    let mut a = station(&pens[0], &dir.path().join("a"), &url);
    let mut b = station(
        &pens[1],
        &dir.path().join("b"),
        &server.url_via(&proxy, "memory"),
    );
    for s in [&mut a, &mut b] {
        open_session(s, dir.path(), "C-0501");
        wait_clinic(s, &["state=connected"]);
        assert_eq!(s.run("zone cheeks"), "ok");
    }
    assert_eq!(a.run("start"), "ok");
    let refused = b.run("start");
    assert!(refused.contains("zone_treated_recently"), "{refused}");
    assert_eq!(b.run("zone forehead"), "ok");
    let refused = b.run("start");
    assert!(refused.contains("cartridge_used"), "{refused}");
    // Room B loses the store: what it said stands, no sealed pack makes it otherwise.
    proxy.cut();
    let refused = b.run("start");
    assert!(refused.contains("cartridge_used"), "offline: {refused}");
    let refused = b.run("sealed-pack");
    assert!(refused.contains("was used in session"), "{refused}");
    assert_eq!(b.run("zone cheeks"), "ok");
    let refused = b.run("start");
    assert!(
        refused.contains("zone_treated_recently") || refused.contains("cartridge_used"),
        "offline: {refused}"
    );
    assert!(!ran(&pens[1]));
    drop(b.finish());
    // Restarted while the store is still away: kept in the data folder.
    let mut b = Console::start_with(
        &pens[1].port_path(),
        &dir.path().join("b"),
        "",
        &["--clinic", &server.url_via(&proxy, "memory")],
    );
    open_session(&mut b, dir.path(), "C-0501");
    assert_eq!(b.run("zone cheeks"), "ok");
    let refused = b.run("start");
    assert!(
        refused.contains("cartridge_used") || refused.contains("zone_treated_recently"),
        "after a restart: {refused}"
    );
    let refused = b.run("sealed-pack");
    assert!(refused.contains("was used in session"), "{refused}");
    assert_eq!(b.run("zone forehead"), "ok");
    let refused = b.run("start");
    assert!(
        refused.contains("cartridge_used"),
        "after a restart: {refused}"
    );
    assert!(!ran(&pens[1]));
    drop(b.finish());
    drop(a.finish());
}

#[test]
fn a_station_that_never_reaches_the_store_says_so_and_a_lost_identity_is_refused() {
    let server = PgServer::start();
    let url = store(&server, "ident");
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen_with_cartridge("SIM-I1", 0x0000_0000_0000_0E61);
    // A store nobody listens for: the alarm, from the start.
    let mut gone = PgServer::start();
    let gone_url = gone.create_db("ident");
    gone.stop();
    let mut s = station(&pen, &dir.path().join("a"), &gone_url);
    open_session(&mut s, dir.path(), "C-0601");
    // Before or after the pen's link came up: seen already, or still to come.
    let alarm = "alarm: raised medium clinic_store_unreachable";
    if !s.seen.iter().any(|l| l.starts_with(alarm)) {
        s.expect(alarm, "");
    }
    drop(s.finish());
    let record: String = std::fs::read_dir(dir.path().join("a").join("sessions"))
        .expect("sessions")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        record.contains("\"event\":\"unreachable\"") && record.contains("history_incomplete"),
        "a session opened while the store is away says so: {record}"
    );
    // Joined and uploaded, then its identity lost: no second identity.
    let data = dir.path().join("b");
    let mut s = station(&pen, &data, &url);
    s.expect("event: link connected", "");
    wait_clinic(&mut s, &["state=connected", "last_upload=2"]);
    drop(s.finish());
    std::fs::remove_file(data.join("clinic-station.json")).expect("identity");
    let mut c = Console::start_as(&pen.port_path(), &data, "", &["--clinic", &url]);
    let said = c.expect("error:", "clinic-station.json");
    assert!(said.contains("restore it"), "{said}");
    let (status, _) = c.finish();
    assert!(!status.success());
}

#[test]
fn a_treatments_file_cut_after_upload_is_uploaded_again_from_its_start_and_loses_nothing_new() {
    let server = PgServer::start();
    let url = store(&server, "cut");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("a");
    let pen = pen_with_cartridge("SIM-J1", 0x0000_0000_0000_0E71);
    let mut s = station(&pen, &data, &url);
    open_session(&mut s, dir.path(), "C-0701");
    wait_clinic(&mut s, &["state=connected"]);
    assert_eq!(s.run("zone cheeks"), "ok");
    assert_eq!(s.run("start"), "ok");
    wait_store(&server, "cut", "SELECT count(*) FROM treatments", 1);
    drop(s.finish());
    // Cut by hand (a restore from an old backup, an editor): the store has more.
    std::fs::File::create(data.join("treatments.jsonl")).expect("truncate");
    // A new cartridge for the new session (the first is used).
    let pen = pen_with_cartridge("SIM-J1", 0x0000_0000_0000_0E72);
    let mut s = station(&pen, &data, &url);
    open_session(&mut s, dir.path(), "C-0702");
    let notice = "uploaded again from its start";
    if !s.seen.iter().any(|l| l.contains(notice)) {
        s.expect("event: clinic store:", notice);
    }
    assert_eq!(s.run("zone nose"), "ok");
    assert_eq!(s.run("start"), "ok");
    // The new treatment reaches the store; the old one stays there.
    wait_store(
        &server,
        "cut",
        "SELECT count(*) FROM treatments WHERE client IN ('C-0701', 'C-0702')",
        2,
    );
    drop(s.finish());
}

/// The `account:` lines of the station's last `accounts` listing.
fn accounts_of(station: &mut Console) -> Vec<String> {
    assert_eq!(station.run("accounts"), "ok");
    let end = station.seen.len() - 1;
    let start = station.seen[..end]
        .iter()
        .rposition(|l| !l.starts_with("account: "))
        .map_or(0, |i| i + 1);
    station.seen[start..end].to_vec()
}

/// The accounts after the cut in the test below: dev and cara disabled, P-7 the
/// admin still, ana a practitioner.
fn after_the_cut(lines: &[String]) -> bool {
    let find = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("account: {id} ")))
            .cloned()
            .unwrap_or_default()
    };
    find("dev").ends_with("DISABLED")
        && find("cara").ends_with("DISABLED")
        && find("P-7").contains("roles=practitioner,technician,admin")
        && find("ana").contains("roles=practitioner")
        && !find("ana").contains("admin")
}

/// The hash `accounts.json` in `data` keeps for `id` (empty if none).
fn secret_of(data: &Path, id: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("accounts.json")).expect("accounts"),
    )
    .expect("json");
    json["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["secret"].to_string())
        .unwrap_or_default()
}

/// The store kept the refused change of the test below, why, and one P-7.
fn store_kept_every_account_change(server: &PgServer, db_name: &str) {
    let mut db = server.client(db_name);
    let refused: i64 = db
        .query_one(
            "SELECT count(*) FROM account_changes
             WHERE NOT taken AND account_id = 'P-7' AND refusal LIKE '%last enabled admin%'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(refused, 1);
    let p7: i64 = db
        .query_one(
            "SELECT count(*) FROM accounts WHERE lower(account_id) = 'p-7'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(p7, 1, "one P-7 in the clinic");
}

#[test]
fn accounts_are_the_clinics_an_account_made_or_disabled_in_one_room_holds_in_the_other() {
    let server = PgServer::start();
    let url = store(&server, "people");
    let proxy = CutProxy::start(server.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let pens = [
        pen_with_cartridge("SIM-H1", 0x0000_0000_0000_0A71),
        pen_with_cartridge("SIM-H2", 0x0000_0000_0000_0A72),
    ];
    // Both folders made their own first admin P-7: the clinic keeps the one that
    // arrived first, and the other room takes it.
    let mut a = station(&pens[0], &dir.path().join("a"), &url);
    let mut b = station(
        &pens[1],
        &dir.path().join("b"),
        &server.url_via(&proxy, "people"),
    );
    for s in [&mut a, &mut b] {
        wait_clinic(s, &["state=connected"]);
    }
    for (id, roles, pin) in [
        ("cara", "practitioner", "731904"),
        ("ana", "admin", "482139"),
        ("dev", "technician", "615283"),
    ] {
        let made = a.run(&format!("account add {id} {roles} {pin} {id} Name"));
        assert!(made.starts_with("ok"), "{made}");
    }
    // Room B has them within moments, and cara signs in there with her PIN.
    for id in ["cara", "ana", "dev"] {
        let prefix = format!("event: clinic store: account {id}:");
        let added = |l: &String| l.starts_with(&prefix) && l.contains("added from");
        if !b.seen.iter().any(added) {
            b.expect(&prefix, "added from the clinic store");
        }
    }
    assert!(b.run("sign-in cara 731904").starts_with("ok"));
    assert!(b.run("sign-in P-7 258013").starts_with("ok"));
    // Disabled in room A: refused in room B.
    assert!(
        a.run("account disable cara left the clinic")
            .starts_with("ok")
    );
    b.expect(
        "event: clinic store: account cara:",
        "disabled as in the clinic store",
    );
    let refused = b.run("sign-in cara 731904");
    assert!(refused.contains("disabled"), "{refused}");

    // Room B loses the network. Meanwhile each room changes accounts on its own.
    proxy.cut();
    wait_clinic(&mut b, &["state=unreachable"]);
    assert!(b.run("account reset dev 640271").starts_with("ok"));
    // P-7 gives up the admin role here while ana still has it...
    assert!(
        b.run("account roles P-7 practitioner,technician")
            .starts_with("ok")
    );
    // ...and ana gives it up in room A while P-7 still has it there.
    assert!(a.run("sign-in ana 482139").starts_with("ok"));
    assert!(
        a.run("account disable dev left the clinic")
            .starts_with("ok")
    );
    assert!(a.run("account roles ana practitioner").starts_with("ok"));
    // The network returns: B's changes reach the store, which takes what it can: the
    // new PIN of dev (disabled in room A: both hold), not the clinic's last admin
    // giving up the role.
    proxy.restore();
    b.expect("event: clinic store:", "last enabled admin");
    b.expect(
        "event: clinic store: account P-7:",
        "roles as in the clinic store",
    );
    // B was signed in as P-7 with other roles: it locks; P-7 signs in again.
    b.expect(
        "event: the account P-7 was changed through the clinic store",
        "the station locked",
    );
    let refused = b.run("accounts");
    assert!(refused.starts_with("refused"), "{refused}");
    assert!(b.run("sign-in P-7 258013").starts_with("ok"));
    let listed = accounts_of(&mut b);
    assert!(after_the_cut(&listed), "{listed:#?}");
    // A takes dev's new secret (disabled or not, the reset held): both rooms agree.
    let deadline = Instant::now() + 3 * DEADLINE;
    loop {
        if secret_of(&dir.path().join("a"), "dev") == secret_of(&dir.path().join("b"), "dev") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "room A never took dev's new secret"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(a.run("sign-in P-7 258013").starts_with("ok"));
    let listed = accounts_of(&mut a);
    assert!(after_the_cut(&listed), "{listed:#?}");
    store_kept_every_account_change(&server, "people");
    for s in [a, b] {
        let (_, seen) = s.finish();
        assert!(
            !seen.iter().any(|l| l.contains("$argon2")),
            "no hash is ever shown"
        );
    }
    let audit = std::fs::read_to_string(dir.path().join("b").join("audit.jsonl")).expect("audit");
    assert!(audit.contains("\"account_synced\""));
}

#[test]
fn a_pulled_cable_loses_packets_silently_mid_claim_and_mid_session_and_the_outbox_drains_whole() {
    let mut net = common::netns::ServerNet::new();
    let server = PgServer::start_in(&mut net);
    let _ = store(&server, "cable");
    let (cable_a, cable_b) = (net.link(), net.link());
    let dir = tempfile::tempdir().expect("temp dir");
    let cartridge = 0x0000_0000_0000_0E01;
    let pens = [
        pen_with_cartridge("SIM-N1", cartridge),
        pen_with_cartridge("SIM-N2", cartridge),
    ];
    let data_a = dir.path().join("a");
    let mut a = station(
        &pens[0],
        &data_a,
        &server.url_at(cable_a.server_ip(), "cable"),
    );
    let mut b = station(
        &pens[1],
        &dir.path().join("b"),
        &server.url_at(cable_b.server_ip(), "cable"),
    );
    for (s, client) in [(&mut a, "C-0201"), (&mut b, "C-0202")] {
        open_session(s, dir.path(), client);
        wait_clinic(s, &["state=connected", "last_upload=2"]);
        assert_eq!(s.run("zone cheeks"), "ok");
    }
    // Room A's cable is pulled just as it claims its cartridge: no answer ever comes
    // (no reset, no refusal), and the claim's deadline decides.
    cable_a.cut();
    let refused = a.run("start");
    assert!(refused.contains("sealed_pack_unconfirmed"), "{refused}");
    assert!(a.run("sealed-pack").starts_with("ok: cartridge"));
    assert_eq!(a.run("start"), "ok");
    // The session goes on with the needle running; the store's silence is found
    // (keepalives, the TCP user timeout) and said.
    if !a
        .seen
        .iter()
        .any(|l| l.starts_with("alarm: raised medium clinic_store_unreachable"))
    {
        a.expect("alarm: raised medium clinic_store_unreachable", "");
    }
    let queued = wait_clinic(&mut a, &["state=unreachable"]);
    assert!(
        !queued.contains("outbox_lines=0 "),
        "records queue: {queued}"
    );
    assert_eq!(a.run("stop"), "ok");
    // Room B, on its own cable, claims the same cartridge: the store knows no claim.
    assert_eq!(b.run("start"), "ok");
    assert_eq!(b.run("stop"), "ok");
    assert!(ran(&pens[0]) && ran(&pens[1]));
    // The cable is back: A's outbox drains, and its offline claim meets B's.
    cable_a.restore();
    a.expect("alarm: raised high cartridge_claim_conflict", "C-02");
    b.expect("alarm: raised high cartridge_claim_conflict", "");
    a.send("end");
    a.expect("summary: session=", "");
    let (record, session) = closed_record(&data_a);
    let size = i64::try_from(std::fs::metadata(&record).expect("record").len()).expect("size");
    wait_store(
        &server,
        "cable",
        &format!(
            "SELECT coalesce(max(end_byte), 0) FROM record_chunks WHERE session_id = '{session}'"
        ),
        size,
    );
    let (local, stored, lines) = local_and_stored(&server, "cable", &record);
    assert!(
        stored == local,
        "the store's copy is the record, byte for byte"
    );
    assert_eq!(
        usize::try_from(lines).expect("lines"),
        memchr::memchr_iter(b'\n', &local).count(),
        "every line once"
    );
    let conflicts: i64 = server
        .client("cable")
        .query_one("SELECT count(*) FROM claim_conflicts", &[])
        .expect("count")
        .get(0);
    assert_eq!(conflicts, 1);
    drop(a.finish());
    drop(b.finish());
}

/// Sends `line` until the answer no longer says the store has not been asked yet
/// (the station reads the clinic's accounts within a second of connecting).
fn once_asked(station: &mut Console, line: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = station.run(line);
        if !answer.contains("has not been asked yet") && !answer.contains("does not answer") {
            return answer;
        }
        assert!(Instant::now() < deadline, "{answer}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_new_room_takes_the_clinics_accounts_and_makes_no_admin_of_its_own() {
    let server = PgServer::start();
    let url = store(&server, "join");
    let dir = tempfile::tempdir().expect("temp dir");
    let pens = [
        pen_with_cartridge("SIM-J1", 0x0000_0000_0000_0B71),
        pen_with_cartridge("SIM-J2", 0x0000_0000_0000_0B72),
    ];
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    // A new clinic: the first room's first admin is the clinic's.
    let mut a = Console::start_as(&pens[0].port_path(), &data_a, "", &["--clinic", &url]);
    a.expect("event: no account here yet", "only for a new clinic");
    let made = once_asked(&mut a, "first-admin boss 482139 Boss Person");
    assert!(made.starts_with("ok"), "{made}");
    wait_store(&server, "join", "SELECT count(*) FROM accounts", 1);
    // A second new room cannot make an admin of its own: it takes the clinic's.
    let mut b = Console::start_as(&pens[1].port_path(), &data_b, "", &["--clinic", &url]);
    let refused = once_asked(&mut b, "first-admin mal 555123 Mallory");
    assert!(
        refused.starts_with("refused") && refused.contains("has accounts"),
        "{refused}"
    );
    if !b
        .seen
        .iter()
        .any(|l| l.contains("account boss: added from"))
    {
        b.expect(
            "event: clinic store: account boss:",
            "added from the clinic store",
        );
    }
    assert!(b.run("sign-in boss 482139").starts_with("ok"));
    assert!(
        b.run("first-admin mal 555123 Mallory")
            .starts_with("refused")
    );
    let accounts: i64 = server
        .client("join")
        .query_one("SELECT count(*) FROM accounts", &[])
        .expect("count")
        .get(0);
    assert_eq!(accounts, 1, "no admin of room B's own");
    drop(b.finish());
    // A room that worked alone, with an admin of its own, then joins: it brings no
    // admin into the clinic, and its own is disabled there.
    let data_c = dir.path().join("c");
    {
        use punctum::store::accounts::{Accounts, NewAccount, Role};
        let folder = punctum::store::DataDir::open(&data_c).expect("data dir");
        Accounts::of(&folder)
            .create_first_admin(
                &NewAccount {
                    id: "mallory".into(),
                    name: "Mallory".into(),
                    roles: [Role::Admin].into(),
                    secret: "731264".into(),
                },
                jiff::Timestamp::now(),
            )
            .expect("a room's own admin");
    }
    let mut c = Console::start_as(&pens[1].port_path(), &data_c, "", &["--clinic", &url]);
    c.expect("event: clinic store:", "before it joined the clinic");
    c.expect(
        "event: clinic store: account mallory:",
        "disabled: the clinic store does not have it",
    );
    let refused = c.run("sign-in mallory 731264");
    assert!(refused.contains("disabled"), "{refused}");
    assert!(c.run("sign-in boss 482139").starts_with("ok"));
    drop(c.finish());
    let mallory: i64 = server
        .client("join")
        .query_one(
            "SELECT count(*) FROM accounts WHERE account_id = 'mallory'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(mallory, 0, "no admin of room C's own in the clinic");
    drop(a.finish());
    // Room A's changes file cut after upload: `clinic status` says the stream is
    // blocked, and exits 3 for scripts.
    let changes = data_a.join("account-changes.jsonl");
    let bytes = std::fs::read(&changes).expect("changes");
    std::fs::write(&changes, &bytes[..bytes.len() / 2]).expect("cut");
    let (code, out) = clinic_cmd(&data_a, &url, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("blocked: accounts:"), "{out}");
    let (_, json) = clinic_cmd(&data_a, &url, &["status", "--json"]);
    assert!(
        json.contains("\"blocked\":[{\"stream\":\"accounts\""),
        "{json}"
    );
    // Room A again: its account changes could not reach the store, so none is made.
    let mut a = Console::start_as(&pens[0].port_path(), &data_a, "", &["--clinic", &url]);
    wait_clinic(&mut a, &["state=connected", "blocked=accounts"]);
    assert!(a.run("sign-in boss 482139").starts_with("ok"));
    let refused = a.run("account add zoe practitioner 318274 Zoe");
    assert!(
        refused.starts_with("refused") && refused.contains("cannot reach the clinic store"),
        "{refused}"
    );
    drop(a.finish());
}
