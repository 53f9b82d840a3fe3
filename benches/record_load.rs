//! Loading a session record: `cargo bench --bench record_load`.
//!
//! Writes a realistic 30-minute session recorded at 1000 Hz (header, 1.8 M telemetry
//! lines, a few hundred command, answer, zone, alarm, event and link lines, the
//! summary) with the format's own types, then loads it with `punctum::record::load`
//! in fresh child processes of this binary, so that each load's peak memory (`VmHWM`)
//! is its own and not the generator's. Prints the best and median load time, MB/s,
//! the peak memory, and the columns' bytes per sample.
//!
//! Without `--bench` (as `cargo test --benches` runs it), a 1-minute session instead.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use punctum::record::format::{
    AlarmLine, AnswerLine, CartridgeLine, CommandLine, EventLine, FORMAT_NAME, FORMAT_VERSION,
    Header, Line, LinkLine, NoteLine, PenInfoRecord, StateWord, SummaryLine, TelLine, ZoneLine,
    ZoneSummary,
};
use punctum::record::report::Report;
use punctum::record::{RecordStatus, TelColumns, load};

const T0_MS: i64 = 1_764_000_000_000;
const CHILD_FLAG: &str = "--child-load";

/// The zones treated, with their depth (µm), a few minutes each.
const ZONES: [(&str, i32); 6] = [
    ("forehead", 500),
    ("cheeks", 1000),
    ("nose", 500),
    ("chin", 1000),
    ("perioral", 800),
    ("neck", 500),
];

/// Writes the session and says what it holds.
struct Generator {
    out: BufWriter<File>,
    lines: u64,
    samples: u64,
    /// Pen sample counter (restarts at `HELLO` after the link loss).
    n: u32,
    seq: u32,
    zone_summaries: Vec<ZoneSummary>,
    alarms_raised: u32,
    prev_running: bool,
}

impl Generator {
    fn line(&mut self, line: &Line) {
        serde_json::to_writer(&mut self.out, line).expect("encodes");
        self.out.write_all(b"\n").expect("writes");
        self.lines += 1;
    }

    /// Telemetry for pen time `t_ms` (ms since the session began).
    fn tel(&mut self, t_ms: u32, running: bool, depth_um: i32) {
        // Pseudo-random but repeatable noise.
        let noise = i32::try_from(t_ms.wrapping_mul(2_654_435_761) >> 27).unwrap_or(0) - 16;
        let state = if running {
            StateWord::Running
        } else {
            StateWord::Idle
        };
        let line = Line::Tel(TelLine {
            // USB delivers in 4 ms batches; the station stamps on reception.
            utc_ms: T0_MS + i64::from(t_ms / 4 * 4 + 3),
            n: self.n,
            t_ms: 1_200_000 + t_ms,
            state,
            rpm: if running { 6000 + noise } else { 0 },
            depth_um: depth_um + if running { noise / 4 } else { 0 },
            current_ma: if running { 280 + noise } else { 15 },
            temp_dc: 310 + i32::try_from(t_ms / 20_000).unwrap_or(0),
        });
        self.line(&line);
        if running
            && self.prev_running
            && let Some(zone) = self.zone_summaries.last_mut()
        {
            zone.needling_ms += 1;
            zone.max_depth_um = zone.max_depth_um.max(depth_um + noise / 4);
        }
        self.prev_running = running;
        self.n = self.n.wrapping_add(1);
        self.samples += 1;
    }

    fn command(&mut self, at_ms: u32, command: &str, passes: bool) {
        self.seq += 1;
        let utc_ms = T0_MS + i64::from(at_ms);
        self.line(&Line::Command(CommandLine {
            utc_ms,
            seq: self.seq,
            command: command.into(),
            origin: "operator".into(),
            account: Some("P-7".into()),
        }));
        self.line(&Line::Answer(AnswerLine {
            utc_ms: utc_ms + 1,
            seq: Some(self.seq),
            command: command.into(),
            result: "ACK".into(),
            detail: None,
            rtt_us: Some(850),
        }));
        if passes && let Some(zone) = self.zone_summaries.last_mut() {
            zone.passes += 1;
        }
    }

    /// The link drops for 1.5 s at `at_ms`; the pen's watchdog stops the needle, and
    /// after the new HELLO its counter starts again. Returns when it is back.
    fn link_loss(&mut self, at_ms: u32) -> u32 {
        self.alarm(
            at_ms,
            "link_lost",
            "raised",
            "link to the pen lost: silence",
        );
        self.line(&Line::Link(LinkLine {
            utc_ms: T0_MS + i64::from(at_ms),
            state: "lost".into(),
            detail: Some("no telemetry for 500 ms".into()),
        }));
        let back_ms = at_ms + 1500;
        self.line(&Line::Link(LinkLine {
            utc_ms: T0_MS + i64::from(back_ms),
            state: "connected".into(),
            detail: None,
        }));
        self.alarm(back_ms, "link_lost", "acknowledged", "link lost");
        self.alarm(back_ms, "link_lost", "cleared", "link lost");
        self.n = 0;
        self.prev_running = false;
        back_ms
    }

    fn alarm(&mut self, at_ms: u32, alarm: &str, action: &str, text: &str) {
        if action == "raised" {
            self.alarms_raised += 1;
        }
        self.line(&Line::Alarm(AlarmLine {
            utc_ms: T0_MS + i64::from(at_ms),
            alarm: alarm.into(),
            priority: "high".into(),
            action: action.into(),
            text: text.into(),
            account: None,
        }));
    }
}

/// The header of the generated session: a real pen, the shipped zone table.
fn header() -> Line {
    let zones_json =
        serde_json::from_str::<serde_json::Value>(include_str!("../assets/zones.json"))
            .expect("the zone table is JSON");
    Line::Header(Box::new(Header {
        utc_ms: T0_MS,
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        station_version: env!("CARGO_PKG_VERSION").into(),
        session_id: "20251124T170000-C042-1".into(),
        opened_at: "2025-11-24T17:00:00+01:00".into(),
        practitioner: "P7".into(),
        client: "C042".into(),
        screening: serde_json::json!({"client": "C042", "age": 35, "indication": "texture"}),
        pen: Some(PenInfoRecord {
            model: "MN-3".into(),
            serial: "SN00042".into(),
            fw: "1.4.2".into(),
            proto: 1,
            boot: 17,
            depth_max_um: 2500,
            depth_step_um: 50,
            speed_min_rpm: 4000,
            speed_max_rpm: 12000,
            watchdog_ms: 300,
            tel_max_hz: 1000,
        }),
        calibration: None,
        zones: zones_json,
        zones_hash: "ab".repeat(32),
        simulated: false,
        alarm_sound: None,
    }))
}

/// Writes a `minutes`-long session at 1000 Hz to `path`; returns (lines, samples).
fn generate(path: &Path, minutes: u32) -> (u64, u64) {
    let mut g = Generator {
        out: BufWriter::with_capacity(1 << 20, File::create(path).expect("temp file")),
        lines: 0,
        samples: 0,
        n: 0,
        seq: 0,
        zone_summaries: Vec::new(),
        alarms_raised: 0,
        prev_running: false,
    };
    g.line(&header());
    g.line(&Line::Cartridge(CartridgeLine {
        utc_ms: T0_MS + 5,
        id: "0123456789ABCDEF".into(),
        needles: 12,
    }));
    let total_ms = minutes * 60_000;
    let zone_ms = total_ms / 6;
    let link_lost_at_ms = total_ms / 2 + 7_000;
    let mut t_ms = 0_u32;
    let mut interruptions = 0;
    for (i, &(zone, depth_um)) in ZONES.iter().enumerate() {
        let zone_end_ms = (u32::try_from(i).unwrap_or(0) + 1) * zone_ms;
        g.line(&Line::Zone(ZoneLine {
            utc_ms: T0_MS + i64::from(t_ms),
            zone: zone.into(),
            limit_um: depth_um + 200,
            halt_first: false,
            lowered_from_um: None,
            lowered_to_um: None,
        }));
        g.zone_summaries.push(ZoneSummary {
            zone: zone.into(),
            passes: 0,
            needling_ms: 0,
            max_depth_um: 0,
            refusals: 0,
        });
        g.command(t_ms + 1, &format!("DEPTH {depth_um}"), false);
        // Passes of 20 s with 10 s pauses.
        while t_ms < zone_end_ms {
            let phase_ms = (t_ms % zone_ms) % 30_000;
            if phase_ms == 10_000 {
                g.command(t_ms, "RUN", true);
            } else if phase_ms == 0 && !t_ms.is_multiple_of(zone_ms) {
                g.command(t_ms, "HALT", false);
            }
            if t_ms == link_lost_at_ms {
                t_ms = g.link_loss(t_ms);
                interruptions += 1;
                continue;
            }
            let running = (10_000..30_000).contains(&phase_ms);
            g.tel(t_ms, running, depth_um);
            t_ms += 1;
        }
        g.command(t_ms, "HALT", false);
        g.line(&Line::Note(NoteLine {
            utc_ms: T0_MS + i64::from(t_ms),
            author: "P7".into(),
            text: format!("{zone} done, mild erythema"),
        }));
    }
    g.line(&Line::Event(EventLine {
        utc_ms: T0_MS + i64::from(t_ms),
        t_ms: 1_200_000 + t_ms,
        event: "BUTTON".into(),
    }));
    let samples = g.samples;
    let zones = std::mem::take(&mut g.zone_summaries);
    let alarms_raised = g.alarms_raised;
    g.line(&Line::Summary(Box::new(SummaryLine {
        utc_ms: T0_MS + i64::from(t_ms) + 10,
        duration_ms: i64::from(t_ms) + 10,
        needling_ms: zones.iter().map(|z| z.needling_ms).sum(),
        refusals: 0,
        zones,
        interruptions,
        alarms_raised,
        samples,
        cartridges: vec!["0123456789ABCDEF".into()],
        next_earliest: "2025-12-22".into(),
        next_latest: Some("2026-01-05".into()),
        next_advice: "in four to six weeks".into(),
        ended_by: None,
        ..SummaryLine::default()
    })));
    let lines = g.lines;
    g.out.flush().expect("written");
    (lines, samples)
}

/// This process's peak resident memory so far, KiB (Linux; 0 elsewhere).
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// In the child: one load, measured; prints one `key=value` line for the parent.
fn child_load(path: &Path) {
    let before_kib = vm_hwm_kib();
    let started = Instant::now();
    let rec = load(path).expect("the generated record loads");
    let load_s = started.elapsed().as_secs_f64();
    let after_kib = vm_hwm_kib();
    assert_eq!(rec.status, RecordStatus::Complete);
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings.first());
    println!(
        "load_s={load_s} hwm_before_kib={before_kib} hwm_after_kib={after_kib} samples={} \
         heap_bytes={} lines={}",
        rec.telemetry.len(),
        rec.telemetry.heap_bytes(),
        rec.lines.len()
    );
}

struct Run {
    load: Duration,
    hwm_before_kib: u64,
    hwm_after_kib: u64,
    samples: u64,
    heap_bytes: u64,
}

fn spawn_load(path: &Path) -> Run {
    let exe = std::env::current_exe().expect("this bench's path");
    let out = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(path)
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> f64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("child printed no {key}: {text}"))
    };
    Run {
        load: Duration::try_from_secs_f64(field("load_s")).expect("a duration"),
        hwm_before_kib: count(field("hwm_before_kib")),
        hwm_after_kib: count(field("hwm_after_kib")),
        samples: count(field("samples")),
        heap_bytes: count(field("heap_bytes")),
    }
}

/// A count printed by the child, read back as f64.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // whole, positive, < 2^52
fn count(value: f64) -> u64 {
    value as u64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD_FLAG) {
        child_load(Path::new(&args[i + 1]));
        return;
    }
    // `cargo test --benches` runs this without --bench: keep that quick.
    let quick = !args.iter().any(|a| a == "--bench");
    let (minutes, runs) = if quick { (1, 1) } else { (30, 5) };
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("session.jsonl");
    let started = Instant::now();
    let (lines, samples) = generate(&path, minutes);
    let file_bytes = std::fs::metadata(&path).expect("written").len();
    #[allow(clippy::cast_precision_loss)]
    let file_mb = file_bytes as f64 / 1e6;
    println!(
        "{minutes}-minute session at 1000 Hz: {lines} lines, {samples} telemetry samples, \
         {file_mb:.1} MB, written in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let mut results: Vec<Run> = (0..runs).map(|_| spawn_load(&path)).collect();
    for r in &results {
        assert_eq!(r.samples, samples, "every sample loaded");
    }
    results.sort_by_key(|r| r.load);
    let best = &results[0];
    let median = &results[results.len() / 2];
    let peak_kib = results.iter().map(|r| r.hwm_after_kib).max().unwrap_or(0);
    let base_kib = results.iter().map(|r| r.hwm_before_kib).max().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let per_sample = best.heap_bytes as f64 / best.samples as f64;
    #[allow(clippy::cast_precision_loss)]
    let heap_mb = best.heap_bytes as f64 / 1e6;
    println!(
        "load ({runs} runs, each in a fresh process): best {:.3} s, median {:.3} s, \
         {:.0} MB/s at the median",
        best.load.as_secs_f64(),
        median.load.as_secs_f64(),
        file_mb / median.load.as_secs_f64()
    );
    #[allow(clippy::cast_precision_loss)]
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "peak memory of the loading process (VmHWM): {:.1} MiB (before the load: {:.1} MiB)",
        mib(peak_kib),
        mib(base_kib)
    );
    println!(
        "telemetry columns: {heap_mb:.1} MB, {per_sample:.1} bytes/sample \
         (TelColumns::BYTES_PER_SAMPLE = {})",
        TelColumns::BYTES_PER_SAMPLE
    );

    // The report over the same record, in this process: figures and timing, and a
    // check that the generator's summary agrees with its lines.
    let rec = load(&path).expect("loads");
    let started = Instant::now();
    let report = Report::from_recording(&rec);
    let report_s = started.elapsed().as_secs_f64();
    assert!(
        report.disagreements.is_empty(),
        "the generated summary disagrees: {:?}",
        report.disagreements
    );
    let csv_path = dir.path().join("tel.csv");
    let started = Instant::now();
    let rows = punctum::record::report::write_csv(&rec, &csv_path).expect("CSV written");
    let csv_s = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let csv_mb = std::fs::metadata(&csv_path).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "report figures: {report_s:.3} s; CSV export: {rows} rows, {csv_mb:.1} MB in {csv_s:.2} s"
    );
}
