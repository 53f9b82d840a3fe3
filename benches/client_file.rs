//! The client file and the lot search over a clinic's records:
//! `cargo bench --bench client_file`.
//!
//! Writes 1,000 session records (100 clients, 10 sessions each, every 10th
//! interrupted; 2,000 telemetry samples a record, about 0.2 MB) with the format's own
//! types, then times, in release mode:
//! - opening a client file from nothing but the folder ([`ClientFile::open`]: it lists
//!   the folder, reads each record's header and summary, reads the interrupted ones
//!   whole), warm (the files in the page cache), as the window does on a click;
//! - the same from a library already read (`ClientFile::open_with`: `Library::refresh`
//!   reads only records that are new or changed, then the amendments and the build),
//!   as the window does from its second use on, and the station at every opening;
//! - a lot query both ways.
//!
//! Without `--bench` (as `cargo test --benches` runs it), 50 records, to check it runs.

#[path = "../tests/common/clinic_records.rs"]
mod clinic_records;

use std::time::{Duration, Instant};

use punctum::client::{ClientFile, lot_query};
use punctum::record::Library;
use punctum::store::DataDir;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (sessions, clients, samples, runs) = if quick {
        (50, 5, 100, 3)
    } else {
        (1000, 100, 2000, 15)
    };
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("data");
    let sessions_dir = root.join("sessions");
    let started = Instant::now();
    let plans = clinic_records::clinic(&sessions_dir, sessions, clients, samples);
    let bytes: u64 = std::fs::read_dir(&sessions_dir)
        .expect("folder")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    let interrupted = plans.iter().filter(|p| p.interrupted).count();
    println!(
        "{sessions} records ({interrupted} interrupted), {clients} clients, {mb:.0} MB, written \
         in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let data = DataDir::open(&root).expect("data");
    let today = jiff::civil::date(2026, 11, 30);
    let client = "C-0007";
    let expected = plans.iter().filter(|p| p.client == client).count();

    // Warm the page cache once, as a station that has run a while has.
    let _ = ClientFile::open(&data, client, today);
    let open: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let file = ClientFile::open(&data, client, today);
            let took = t.elapsed();
            assert_eq!(file.sessions.len(), expected);
            took
        })
        .collect();
    let mut library = Library::scan(&sessions_dir);
    let refresh: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let file = ClientFile::open_with(&mut library, &data, client, today);
            let took = t.elapsed();
            assert_eq!(file.sessions.len(), expected);
            took
        })
        .collect();
    let lot = "SER-3";
    let lot_uses = plans.iter().filter(|p| p.serum_lot == lot).count();
    let lot_scan: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let hits = lot_query(&Library::scan(&sessions_dir), lot);
            let took = t.elapsed();
            assert_eq!(hits.len(), lot_uses);
            took
        })
        .collect();
    let lot_held: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let hits = lot_query(&library, lot);
            let took = t.elapsed();
            assert_eq!(hits.len(), lot_uses);
            took
        })
        .collect();
    println!(
        "client file ({expected} sessions) from the folder, warm: median {:.1} ms, max {:.1} ms",
        ms(median(open.clone())),
        ms(open.iter().copied().max().unwrap_or_default())
    );
    println!(
        "client file from a library already read (the window's path: refresh, amendments, \
         build): median {:.2} ms",
        ms(median(refresh))
    );
    println!(
        "lot query ({lot_uses} uses) from the folder, warm: median {:.1} ms; on a library \
         already read: median {:.3} ms",
        ms(median(lot_scan)),
        ms(median(lot_held))
    );
}
