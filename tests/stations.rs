//! Two stations on one data folder (a shared clinic folder), each its own `punctum
//! console` process with its own simulated pen: the cartridge rule and the 4-week
//! rule decide on what the other station has written, at the moment they decide, and
//! a claim is atomic between the two processes.

mod common;

use std::path::Path;

use common::console::{Console, open_session};
use common::*;
use punctum::protocol::{CartridgeId, Command};
use punctum::sim::{Cartridge, SimPen};

/// Two stations on one data folder, both started before either treats: sessions open
/// for `clients`, the cheeks selected.
fn two_stations(dir: &Path, pens: &[SimPen; 2], clients: [&str; 2]) -> [Console; 2] {
    let data = dir.join("shared-data");
    let mut stations = [
        Console::start(&pens[0].port_path(), &data),
        Console::start(&pens[1].port_path(), &data),
    ];
    for (station, client) in stations.iter_mut().zip(clients) {
        open_session(station, dir, client);
        assert_eq!(station.run("zone cheeks"), "ok");
    }
    stations
}

fn ran(pen: &SimPen) -> bool {
    executed(pen).iter().any(|(_, c)| *c == Command::Run)
}

/// Sends `start` to both stations at once (two writes, microseconds apart) and
/// returns their answers.
fn start_both(stations: &mut [Console; 2]) -> [String; 2] {
    stations[0].send("start");
    stations[1].send("start");
    let first = stations[0].expect_result();
    let second = stations[1].expect_result();
    [first, second]
}

#[test]
fn a_cartridge_one_station_used_is_refused_by_the_other_in_either_order() {
    for first in [0, 1] {
        let dir = tempfile::tempdir().expect("temp dir");
        let cartridge = 0x0000_0000_0000_00C1;
        let pens = [
            pen_with_cartridge("SIM-R1", cartridge),
            pen_with_cartridge("SIM-R2", cartridge),
        ];
        let mut stations = two_stations(dir.path(), &pens, ["C-0001", "C-0002"]);
        let second = 1 - first;
        assert_eq!(stations[first].run("start"), "ok");
        let refused = stations[second].run("start");
        assert!(
            refused.contains("cartridge_used") && refused.contains("00000000000000C1"),
            "station {second}: {refused}"
        );
        assert!(ran(&pens[first]) && !ran(&pens[second]));
        for station in stations {
            drop(station.finish());
        }
    }
}

#[test]
fn one_cartridge_started_at_two_stations_at_once_runs_in_one() {
    for trial in 0..3u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let cartridge = 0x0000_0000_0000_0D00 + trial;
        let pens = [
            pen_with_cartridge("SIM-S1", cartridge),
            pen_with_cartridge("SIM-S2", cartridge),
        ];
        let mut stations = two_stations(dir.path(), &pens, ["C-0001", "C-0002"]);
        let answers = start_both(&mut stations);
        let oks = answers.iter().filter(|a| *a == "ok").count();
        assert_eq!(oks, 1, "trial {trial}: {answers:?}");
        let refused = answers.iter().find(|a| *a != "ok").expect("one refused");
        assert!(refused.contains("cartridge_used"), "{refused}");
        assert_eq!(
            usize::from(ran(&pens[0])) + usize::from(ran(&pens[1])),
            1,
            "the pens' journals: one RUN"
        );
        for station in stations {
            drop(station.finish());
        }
    }
}

#[test]
fn a_zone_treated_at_one_station_is_refused_at_the_other_within_4_weeks() {
    for first in [0, 1] {
        let dir = tempfile::tempdir().expect("temp dir");
        let pens = [
            pen_with_cartridge("SIM-Z1", 0x0000_0000_0000_0E01),
            pen_with_cartridge("SIM-Z2", 0x0000_0000_0000_0E02),
        ];
        let mut stations = two_stations(dir.path(), &pens, ["C-0042", "C-0042"]);
        let second = 1 - first;
        assert_eq!(stations[first].run("start"), "ok");
        let refused = stations[second].run("start");
        assert!(
            refused.contains("zone_treated_recently") && refused.contains("cheeks"),
            "station {second}: {refused}"
        );
        // Another zone is no trouble.
        assert_eq!(stations[second].run("zone forehead"), "ok");
        assert_eq!(stations[second].run("start"), "ok");
        for station in stations {
            drop(station.finish());
        }
    }
}

#[test]
fn one_client_started_at_two_stations_at_once_is_treated_at_one() {
    for trial in 0..3u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let pens = [
            pen_with_cartridge("SIM-T1", 0x0000_0000_0000_0F00 + 2 * trial),
            pen_with_cartridge("SIM-T2", 0x0000_0000_0000_0F01 + 2 * trial),
        ];
        let mut stations = two_stations(dir.path(), &pens, ["C-0042", "C-0042"]);
        let answers = start_both(&mut stations);
        let oks = answers.iter().filter(|a| *a == "ok").count();
        assert_eq!(oks, 1, "trial {trial}: {answers:?}");
        let refused = answers.iter().find(|a| *a != "ok").expect("one refused");
        assert!(refused.contains("zone_treated_recently"), "{refused}");
        for station in stations {
            drop(station.finish());
        }
    }
}

#[test]
fn a_start_refused_for_another_reason_claims_nothing() {
    for trial in 0..3u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let cartridge = 0x0000_0000_0000_0AB0 + trial;
        let pens = [
            pen_with_cartridge("SIM-P1", cartridge),
            pen_with_cartridge("SIM-P2", cartridge),
        ];
        let data = dir.path().join("shared-data");
        // Station 0 cannot see its needle (telemetry off): its start is refused, and it
        // must not hold the cartridge meanwhile, even for a moment.
        let mut stations = [
            Console::start_with(&pens[0].port_path(), &data, "", &["--telemetry-hz", "0"]),
            Console::start(&pens[1].port_path(), &data),
        ];
        for (station, zone) in stations.iter_mut().zip(["forehead", "cheeks"]) {
            open_session(station, dir.path(), "C-0007");
            assert_eq!(station.run(&format!("zone {zone}")), "ok");
        }
        let [blind, seeing] = start_both(&mut stations);
        assert!(blind.contains("telemetry_off"), "trial {trial}: {blind}");
        assert_eq!(seeing, "ok", "trial {trial}");
        let claims = std::fs::read_to_string(data.join("cartridges.jsonl")).expect("registry");
        assert_eq!(
            claims.lines().count(),
            1,
            "only the start that ran: {claims}"
        );
        for station in stations {
            drop(station.finish());
        }
    }
}

#[test]
fn a_start_again_with_its_claims_held_takes_no_lock_and_a_new_claim_gives_up_on_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pen = pen_with_cartridge("SIM-L1", 0x0000_0000_0000_0CC1);
    let data = dir.path().join("data");
    let mut c = Console::start(&pen.port_path(), &data);
    open_session(&mut c, dir.path(), "C-0009");
    assert_eq!(c.run("zone cheeks"), "ok");
    assert_eq!(c.run("start"), "ok");
    assert_eq!(c.run("stop"), "ok");
    c.wait_idle();
    // Another program holds both files' locks (a backup tool, a hung process).
    let holders: Vec<std::fs::File> = ["cartridges.jsonl", "treatments.jsonl"]
        .iter()
        .map(|name| {
            let file = std::fs::File::open(data.join(name)).expect("the file");
            file.lock().expect("lock");
            file
        })
        .collect();
    // The session's own cartridge and zone: no lock needed, the needle starts.
    assert_eq!(c.run("start"), "ok");
    assert_eq!(c.run("stop"), "ok");
    c.wait_idle();
    // A new cartridge must be claimed: the station gives up on the lock and says so,
    // and the pen runs nothing.
    let runs_before = executed(&pen)
        .iter()
        .filter(|(_, c)| *c == Command::Run)
        .count();
    pen.act(punctum::sim::SimAction::InsertCartridge(Cartridge {
        id: CartridgeId(0x0000_0000_0000_0CC2),
        needles: 12,
    }))
    .expect("pen alive");
    c.expect("event: pen CART 0000000000000CC2", "");
    let refused = c.run("start");
    assert!(
        refused.contains("held its lock for over 200 ms"),
        "{refused}"
    );
    let runs_after = executed(&pen)
        .iter()
        .filter(|(_, c)| *c == Command::Run)
        .count();
    assert_eq!(runs_before, runs_after);
    drop(holders);
    assert_eq!(c.run("start"), "ok", "free again");
    drop(c.finish());
}
