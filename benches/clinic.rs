//! The clinic store under load: `cargo bench --bench clinic`.
//!
//! Against one throwaway `PostgreSQL` 15 on this machine (`tests/common/pg.rs`, fsync
//! on, as a clinic's server runs), through the station's own `ClinicLink` (one
//! `punctum-clinic` thread and connection per station):
//!
//! - **load**: `PUNCTUM_BENCH_STATIONS` stations (default 100) for
//!   `PUNCTUM_BENCH_SECS` (default 60). Each writes a session record at 100 Hz
//!   telemetry (lines in the station's format, handed to the file every 100 ms as the
//!   recorder does), opens a new session every 10 s, and before each claims a
//!   cartridge drawn from a shared pool (so stations contend), writing the claim to
//!   its `cartridges.jsonl` as the station does. Reported: claim latency p50/p99
//!   (the station's call, queue and round trip), the outboxes' depth over the run
//!   (does upload keep up?), then after the drain: double claims (a cartridge two
//!   stations both believe they won, and live claims per cartridge) and record lines
//!   lost (every local line is in the store's chunks, byte for byte).
//! - **catch-up**: one station's outbox holding an hour of offline work (one session
//!   record at 1000 Hz, the station's default: 3.6 M lines), drained from a cold
//!   start: seconds, and MB/s of record.

// Counts and microseconds turned into printed figures: far below 2^52.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/common/netns.rs"]
mod netns;
#[path = "../tests/common/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use punctum::clinic::claims::{CartridgeAnswer, CartridgeClaimRequest};
use punctum::clinic::{ClinicLink, ClinicTarget};
use punctum::protocol::CartridgeId;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A header line as the station writes it (the fields the store reads).
fn header(session_id: &str, client: &str, utc_ms: i64) -> String {
    format!(
        "{{\"type\":\"header\",\"utc_ms\":{utc_ms},\"format\":\"punctum-session\",\"version\":5,\
         \"station_version\":\"bench\",\"session_id\":\"{session_id}\",\"opened_at\":\"-\",\
         \"practitioner\":\"P-7\",\"client\":\"{client}\",\"screening\":{{}},\"pen\":null,\
         \"calibration\":null,\"zones\":{{}},\"zones_hash\":\"-\",\"simulated\":true,\"mono_ms\":0}}\n"
    )
}

/// A telemetry line as the station writes it.
fn tel(utc_ms: i64, n: u64) -> String {
    format!(
        "{{\"type\":\"tel\",\"utc_ms\":{utc_ms},\"n\":{n},\"t_ms\":{n},\"state\":\"RUNNING\",\
         \"rpm\":{},\"depth_um\":{},\"current_ma\":412,\"temp_dc\":312,\"mono_ms\":{n}}}\n",
        6000 + (n % 7),
        500 + (n % 3) * 10
    )
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The record file of a session in a data folder.
fn record_path(root: &Path, session_id: &str) -> PathBuf {
    root.join("sessions").join(format!("{session_id}.jsonl"))
}

#[derive(Default)]
struct Totals {
    claim_us: Vec<u64>,
    /// Cartridge → the (station, session) that the store told it won.
    won: BTreeMap<String, Vec<String>>,
    refused: u64,
    unreachable: u64,
    /// (station root, session id) of every record written.
    records: Vec<(PathBuf, String)>,
}

/// One station: claims, sessions, a record at 100 Hz, until `until`.
fn run_station(
    index: usize,
    root: &Path,
    link: &ClinicLink,
    pool: u64,
    offset: Duration,
    until: Instant,
    totals: &Mutex<Totals>,
) {
    std::fs::create_dir_all(root.join("sessions")).expect("sessions dir");
    std::thread::sleep(offset);
    let mut session = 0u64;
    let mut n = 0u64;
    while Instant::now() < until {
        session += 1;
        let session_id = format!("bench-{index:03}-{session:04}");
        let client = format!("C-{index:03}{session:04}");
        // A cartridge from the shared pool: stations contend for the same ids.
        let cartridge = CartridgeId(0xB000_0000 + (index as u64 * 7919 + session * 104_729) % pool);
        let asked = Instant::now();
        let answer = link.claim_cartridge(CartridgeClaimRequest {
            cartridge_id: cartridge.to_string(),
            session_id: session_id.clone(),
            client: client.clone(),
            at: jiff::Timestamp::now(),
        });
        let us = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
        {
            let mut t = totals.lock().expect("totals");
            t.claim_us.push(us);
            match &answer {
                Ok(CartridgeAnswer::Claimed { .. }) => t
                    .won
                    .entry(cartridge.to_string())
                    .or_default()
                    .push(session_id.clone()),
                Ok(CartridgeAnswer::HeldBy { .. }) => t.refused += 1,
                Err(_) => t.unreachable += 1,
            }
            t.records.push((root.to_path_buf(), session_id.clone()));
        }
        if matches!(answer, Ok(CartridgeAnswer::Claimed { .. })) {
            // As the station: the claim goes into the data folder too (the outbox).
            let claim_line = serde_json::to_string(&punctum::store::CartridgeUse::new(
                cartridge,
                &session_id,
                &client,
                jiff::Timestamp::now(),
            ))
            .expect("claim line");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(root.join("cartridges.jsonl"))
                .expect("cartridges");
            writeln!(f, "{claim_line}").expect("claim");
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(record_path(root, &session_id))
            .expect("record");
        file.write_all(header(&session_id, &client, now_ms()).as_bytes())
            .expect("header");
        // 10 s of needling at 100 Hz, handed over every 100 ms.
        let session_end = Instant::now() + Duration::from_secs(10);
        let mut next = Instant::now();
        while Instant::now() < session_end.min(until) {
            let mut chunk = String::with_capacity(10 * 160);
            for _ in 0..10 {
                n += 1;
                chunk.push_str(&tel(now_ms(), n));
            }
            // Like the station's recorder: no wake; the upload looks each second.
            file.write_all(chunk.as_bytes()).expect("tel");
            next += Duration::from_millis(100);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Waits until every link's outbox is empty (or `limit`); the time it took.
fn drain(links: &[ClinicLink], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let pending: u64 = links.iter().map(|l| l.status().outbox.lines).sum();
        // Depth is counted once a second: two zeros a second apart are a drained outbox.
        if pending == 0 {
            std::thread::sleep(Duration::from_millis(1100));
            if links.iter().map(|l| l.status().outbox.lines).sum::<u64>() == 0 {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < limit,
            "the outboxes never drained: {pending} lines left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every local record line is in the store, byte for byte: (lines checked, lost).
fn check_records(db: &mut postgres::Client, records: &[(PathBuf, String)]) -> (u64, u64) {
    let (mut lines, mut lost) = (0u64, 0u64);
    for (root, session) in records {
        let local = std::fs::read(record_path(root, session)).unwrap_or_default();
        let local_lines = memchr::memchr_iter(b'\n', &local).count() as u64;
        let rows = db
            .query(
                "SELECT zstd FROM record_chunks WHERE session_id = $1 ORDER BY first_byte",
                &[session],
            )
            .expect("chunks");
        let mut stored = Vec::with_capacity(local.len());
        for r in rows {
            stored.extend(zstd::decode_all(r.get::<_, &[u8]>(0)).expect("zstd"));
        }
        lines += local_lines;
        if stored != local {
            let stored_lines = memchr::memchr_iter(b'\n', &stored).count() as u64;
            lost += local_lines.saturating_sub(stored_lines).max(1);
        }
    }
    (lines, lost)
}

// One run, one report: split, it would only pass its figures around.
#[allow(clippy::too_many_lines)]
fn load(server: &pg::PgServer) {
    let stations = usize::try_from(env_or("PUNCTUM_BENCH_STATIONS", 100)).expect("count");
    let secs = env_or("PUNCTUM_BENCH_SECS", 60);
    let url = server.create_db("load");
    let mut db = server.client("load");
    let target = ClinicTarget::parse(&url).expect("url");
    {
        let mut c = target.connect("bench init").expect("connect");
        punctum::clinic::schema::migrate(&mut c, punctum::clinic::schema::SCHEMA_VERSION)
            .expect("schema");
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let roots: Vec<PathBuf> = (0..stations)
        .map(|i| tmp.path().join(format!("station-{i:03}")))
        .collect();
    let links: Vec<ClinicLink> = roots
        .iter()
        .enumerate()
        .map(|(i, root)| {
            std::fs::create_dir_all(root).expect("root");
            ClinicLink::start(target.clone(), root.clone(), format!("bench-{i:03}"))
                .expect("clinic thread")
        })
        .collect();
    // Every station connected before the clock starts.
    let ready = Instant::now() + Duration::from_mins(1);
    while links.iter().any(|l| !l.status().state.is_connected()) {
        assert!(Instant::now() < ready, "not every station connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    let totals = Mutex::new(Totals::default());
    let depths = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    // Stations open their sessions spread over the 10 s a session lasts, as rooms do;
    // `PUNCTUM_BENCH_ALIGNED=1`: all in the same instant (the worst burst).
    let aligned = env_or("PUNCTUM_BENCH_ALIGNED", 0) == 1;
    let offsets: Vec<Duration> = (0..stations)
        .map(|i| {
            if aligned {
                Duration::ZERO
            } else {
                Duration::from_millis(10_000 * i as u64 / stations as u64)
            }
        })
        .collect();
    let offsets = &offsets;
    // Pool: about as many cartridges as claims in the run, so stations often meet.
    let pool = (stations as u64 * (secs / 10 + 1)).max(10);
    std::thread::scope(|scope| {
        for (i, (root, link)) in roots.iter().zip(&links).enumerate() {
            let totals = &totals;
            std::thread::Builder::new()
                .name(format!("bench-station-{i}"))
                .spawn_scoped(scope, move || {
                    run_station(i, root, link, pool, offsets[i], until, totals);
                })
                .expect("station thread");
        }
        let depths = Arc::clone(&depths);
        let links = &links;
        std::thread::Builder::new()
            .name("bench-depth".into())
            .spawn_scoped(scope, move || {
                while Instant::now() < until {
                    std::thread::sleep(Duration::from_secs(1));
                    let pending: u64 = links.iter().map(|l| l.status().outbox.lines).sum();
                    depths
                        .lock()
                        .expect("depths")
                        .push((started.elapsed().as_secs_f64(), pending));
                }
            })
            .expect("depth thread");
    });
    let tail = drain(&links, Duration::from_mins(5));
    let totals = totals.into_inner().expect("totals");
    let mut us = totals.claim_us.clone();
    us.sort_unstable();
    let depths = depths.lock().expect("depths").clone();
    let half = depths.len() / 2;
    let max_of = |d: &[(f64, u64)]| d.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let lines_per_s = stations as u64 * 100;
    let double_wins = totals.won.values().filter(|w| w.len() > 1).count();
    let live_doubles: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT cartridge_id FROM cartridge_claims \
             WHERE released_at IS NULL GROUP BY cartridge_id HAVING count(*) > 1) d",
            &[],
        )
        .expect("doubles")
        .get(0);
    let (record_lines, lost) = check_records(&mut db, &totals.records);
    println!(
        "clinic/load: {stations} stations × {secs} s, telemetry 100 Hz each ({lines_per_s} record lines/s in all), sessions opened {}",
        if aligned {
            "by every station in the same instant"
        } else {
            "spread over 10 s"
        }
    );
    println!(
        "  claims: {} ({} won, {} held elsewhere, {} unanswered); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        us.len(),
        totals.won.values().map(Vec::len).sum::<usize>(),
        totals.refused,
        totals.unreachable,
        percentile(&us, 0.50) as f64 / 1000.0,
        percentile(&us, 0.99) as f64 / 1000.0,
        us.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "  outboxes (all stations, sampled each second): max {} lines in the first half, {} in the second ({:.2} s of writing); drained {:.1} s after the writers stopped",
        max_of(&depths[..half]),
        max_of(&depths[half..]),
        max_of(&depths[half..]) as f64 / lines_per_s as f64,
        tail.as_secs_f64()
    );
    println!(
        "  correctness: {double_wins} cartridges won twice, {live_doubles} with two live claims; {lost} of {record_lines} record lines lost"
    );
    drop(links);
}

fn catch_up(server: &pg::PgServer) {
    let url = server.create_db("catchup");
    let target = ClinicTarget::parse(&url).expect("url");
    {
        let mut c = target.connect("bench init").expect("connect");
        punctum::clinic::schema::migrate(&mut c, punctum::clinic::schema::SCHEMA_VERSION)
            .expect("schema");
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("offline");
    std::fs::create_dir_all(root.join("sessions")).expect("sessions");
    // An hour at 1000 Hz, written while the store was away.
    let session_id = "catchup-0001";
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(record_path(&root, session_id)).expect("record"),
    );
    let t0 = now_ms();
    out.write_all(header(session_id, "C-9999", t0).as_bytes())
        .expect("header");
    let lines = env_or("PUNCTUM_BENCH_CATCHUP_LINES", 3_600_000);
    for n in 1..=lines {
        out.write_all(tel(t0 + i64::try_from(n).expect("n"), n).as_bytes())
            .expect("tel");
    }
    out.flush().expect("flush");
    drop(out);
    let bytes = std::fs::metadata(record_path(&root, session_id))
        .expect("size")
        .len();
    let started = Instant::now();
    let link = ClinicLink::start(target, root.clone(), "catchup".into()).expect("thread");
    let took = drain(std::slice::from_ref(&link), Duration::from_mins(30));
    let mut db = server.client("catchup");
    let compressed: i64 = db
        .query_one("SELECT sum(length(zstd))::bigint FROM record_chunks", &[])
        .expect("size")
        .get(0);
    let (checked, lost) = check_records(&mut db, &[(root, session_id.to_owned())]);
    drop(link);
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "clinic/catch_up: one hour offline at 1000 Hz ({} lines, {mb:.0} MB): drained in {:.1} s ({:.1} MB/s), stored zstd {:.0} MB ({:.1}×); {lost} of {checked} lines lost; connection {:.1} s after start",
        lines + 1,
        took.as_secs_f64(),
        mb / took.as_secs_f64(),
        compressed as f64 / 1e6,
        bytes as f64 / compressed as f64,
        started.elapsed().as_secs_f64() - took.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter picks one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    // fsync on: the clinic's server keeps what it acknowledges.
    let server = pg::PgServer::start_with(&[("max_connections", "300")]);
    if wants("load") {
        load(&server);
    }
    if wants("catch_up") {
        catch_up(&server);
    }
}
