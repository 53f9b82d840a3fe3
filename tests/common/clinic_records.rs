//! A clinic's worth of session records, written with the format's own types: for the
//! client-file and lot tests (`tests/client_file.rs`) and the bench
//! (`benches/client_file.rs`). Each record has a header (format 3, its screening with
//! the indication), the procedure's steps with products and lots, a zone, a `RUN`
//! acknowledged and running telemetry, and (unless interrupted) its summary.
#![allow(dead_code)] // the bench and the tests use their own subsets

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use punctum::record::format::{
    AnswerLine, CommandLine, FORMAT_NAME, FORMAT_VERSION, Header, Line, NoteLine, StateWord,
    StepLine, SummaryLine, TelLine, ZoneLine, ZoneSummary,
};
use punctum::safety::procedure::{LotKind, LotUse};

/// A day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// One session to write.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The client's pseudonym.
    pub client: String,
    /// The indication id.
    pub indication: &'static str,
    /// When it opened, UTC ms.
    pub opened_utc_ms: i64,
    /// The zone treated and its depth, µm.
    pub zone: &'static str,
    /// Depth, µm.
    pub depth_um: i32,
    /// Needling samples (1 ms apart, RUNNING).
    pub samples: u32,
    /// Numbing cream lot.
    pub numbing_lot: String,
    /// Serum lot.
    pub serum_lot: String,
    /// Cartridge lot.
    pub cartridge_lot: String,
    /// No summary: the session was interrupted.
    pub interrupted: bool,
    /// An operator's note.
    pub note: String,
}

impl Planned {
    /// The session's id.
    #[must_use]
    pub fn session_id(&self) -> String {
        format!("S-{}-{}", self.client, self.opened_utc_ms)
    }

    /// The clinic's date (the header's `opened_at` is written in UTC).
    #[must_use]
    pub fn date(&self) -> jiff::civil::Date {
        jiff::Timestamp::from_millisecond(self.opened_utc_ms)
            .expect("a time")
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    }

    /// The file name it is written under, as the station names records
    /// (`<date>_<time>_<client>.jsonl`, the header's UTC time).
    #[must_use]
    pub fn file_name(&self) -> String {
        let at = jiff::Timestamp::from_millisecond(self.opened_utc_ms)
            .expect("a time")
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%d_%H%M%S")
            .to_string();
        format!("{at}_{}.jsonl", self.client)
    }
}

fn screening(client: &str, indication: &str) -> serde_json::Value {
    serde_json::json!({
        "client": client, "dob": "1990-05-01", "indication": indication,
        "practitioner": "P-7", "answers": {}, "confirmed_cautions": []
    })
}

fn step(utc_ms: i64, number: u32, step: &str, product: Option<&str>, lot: Option<&str>) -> Line {
    Line::Step(Box::new(StepLine {
        utc_ms,
        number,
        step: step.into(),
        by: "P-7".into(),
        at_utc_ms: None,
        product: product.map(str::to_owned),
        lot: lot.map(str::to_owned),
        cartridge: (step == "cartridge_lot").then(|| "0123456789ABCDEF".to_owned()),
        zone: None,
        depth_um: None,
        reaction: None,
        reason: None,
        corrects: None,
        void: false,
        lidocaine_confirmed: false,
    }))
}

/// Writes `plan` into `sessions_dir`; returns its path.
#[allow(clippy::too_many_lines)] // one record, line by line, reads best whole
pub fn write(sessions_dir: &Path, plan: &Planned) -> PathBuf {
    let t0 = plan.opened_utc_ms;
    let opened_at = jiff::Timestamp::from_millisecond(t0)
        .expect("a time")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string();
    let mut lines: Vec<(Line, i64)> = vec![(
        Line::Header(Box::new(Header {
            utc_ms: t0,
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            station_version: "0.1.0".into(),
            session_id: plan.session_id(),
            opened_at,
            practitioner: "P-7".into(),
            client: plan.client.clone(),
            screening: screening(&plan.client, plan.indication),
            pen: None,
            calibration: None,
            zones: serde_json::json!({"zones": []}),
            zones_hash: "00".repeat(32),
            simulated: false,
            alarm_sound: None,
        })),
        0,
    )];
    let mut at = 1000;
    let mut push = |line: Line, mono: i64| lines.push((line, mono));
    push(step(t0 + at, 1, "cleansing", None, None), at);
    at += 1000;
    push(
        step(
            t0 + at,
            2,
            "numbing_applied",
            Some("EMLA 5%"),
            Some(&plan.numbing_lot),
        ),
        at,
    );
    at += 1_200_000;
    push(step(t0 + at, 3, "numbing_removed", None, None), at);
    at += 1000;
    push(
        step(t0 + at, 4, "cartridge_lot", None, Some(&plan.cartridge_lot)),
        at,
    );
    push(
        Line::Zone(ZoneLine {
            utc_ms: t0 + at,
            zone: plan.zone.into(),
            limit_um: 1000,
            halt_first: false,
            lowered_from_um: None,
            lowered_to_um: None,
        }),
        at,
    );
    push(
        Line::Command(CommandLine {
            utc_ms: t0 + at,
            seq: 1,
            command: "RUN".into(),
            origin: "operator".into(),
            account: Some("P-7".into()),
        }),
        at,
    );
    push(
        Line::Answer(AnswerLine {
            utc_ms: t0 + at,
            seq: Some(1),
            command: "RUN".into(),
            result: "ACK".into(),
            detail: None,
            rtt_us: Some(900),
        }),
        at,
    );
    for n in 0..plan.samples {
        at += 1;
        push(
            Line::Tel(TelLine {
                utc_ms: t0 + at,
                n,
                t_ms: u32::try_from(at).expect("small"),
                state: StateWord::Running,
                rpm: 6000,
                depth_um: plan.depth_um,
                current_ma: 300,
                temp_dc: 312,
            }),
            at,
        );
    }
    at += 1;
    push(
        Line::Tel(TelLine {
            utc_ms: t0 + at,
            n: plan.samples,
            t_ms: u32::try_from(at).expect("small"),
            state: StateWord::Idle,
            rpm: 0,
            depth_um: plan.depth_um,
            current_ma: 20,
            temp_dc: 312,
        }),
        at,
    );
    push(
        step(t0 + at, 5, "serum", Some("HA serum"), Some(&plan.serum_lot)),
        at,
    );
    push(
        Line::Note(NoteLine {
            utc_ms: t0 + at,
            author: "P-7".into(),
            text: plan.note.clone(),
        }),
        at,
    );
    if !plan.interrupted {
        // What the figures make of the lines: the time from the first running sample to
        // the last.
        let needling_ms = u64::from(plan.samples.saturating_sub(1));
        push(
            Line::Summary(Box::new(SummaryLine {
                utc_ms: t0 + at,
                duration_ms: at,
                zones: vec![ZoneSummary {
                    zone: plan.zone.into(),
                    passes: 1,
                    needling_ms,
                    max_depth_um: plan.depth_um,
                    refusals: 0,
                }],
                needling_ms,
                samples: u64::from(plan.samples) + 1,
                indication: Some(plan.indication.into()),
                lots: vec![
                    LotUse {
                        kind: LotKind::NumbingCream,
                        product: "EMLA 5%".into(),
                        lot: plan.numbing_lot.clone(),
                    },
                    LotUse {
                        kind: LotKind::Cartridge,
                        product: "0123456789ABCDEF".into(),
                        lot: plan.cartridge_lot.clone(),
                    },
                    LotUse {
                        kind: LotKind::Serum,
                        product: "HA serum".into(),
                        lot: plan.serum_lot.clone(),
                    },
                ],
                notes: vec![plan.note.clone()],
                next_earliest: "2099-01-01".into(),
                next_advice: String::new(),
                ..SummaryLine::default()
            })),
            at,
        );
    }
    let path = sessions_dir.join(plan.file_name());
    let mut out = BufWriter::new(std::fs::File::create(&path).expect("create a record"));
    for (line, mono_ms) in &lines {
        let mut value = serde_json::to_value(line).expect("encodes");
        value["mono_ms"] = serde_json::json!(mono_ms);
        serde_json::to_writer(&mut out, &value).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    path
}

/// The clinic: `sessions` records over `clients` clients, a session every 30 days per
/// client from 2025-01-01, indications by client, every 10th interrupted, lots shared
/// by batch (`NUM-<i/50>`, `SER-<i/20>`, `CART-<i/10>`). Returns the plans in writing
/// order.
pub fn clinic(sessions_dir: &Path, sessions: usize, clients: usize, samples: u32) -> Vec<Planned> {
    const INDICATIONS: [&str; 5] = [
        "rejuvenation",
        "acne_scars",
        "wrinkles",
        "stretch_marks",
        "maintenance",
    ];
    const ZONES: [(&str, i32); 4] = [
        ("cheeks", 800),
        ("forehead", 400),
        ("chin_jawline", 900),
        ("neck", 450),
    ];
    std::fs::create_dir_all(sessions_dir).expect("sessions folder");
    let start = 1_735_732_800_000_i64; // 2025-01-01T12:00:00Z
    let mut plans = Vec::new();
    for i in 0..sessions {
        let client_no = i % clients;
        let round = i64::try_from(i / clients).expect("small");
        let (zone, depth_um) = ZONES[(i / clients) % ZONES.len()];
        let plan = Planned {
            client: format!("C-{client_no:04}"),
            indication: INDICATIONS[client_no % INDICATIONS.len()],
            opened_utc_ms: start
                + round * 30 * DAY_MS
                + i64::try_from(client_no).expect("small") * 60_000,
            zone,
            depth_um: depth_um + i32::try_from(round % 3).expect("small") * 50,
            samples,
            numbing_lot: format!("NUM-{}", i / 50),
            serum_lot: format!("SER-{}", i / 20),
            cartridge_lot: format!("CART-{}", i / 10),
            interrupted: i % 10 == 7,
            note: format!("session {i}: <b>fine</b> & \"calm\""),
        };
        write(sessions_dir, &plan);
        plans.push(plan);
    }
    plans
}

/// A damaged record in `sessions_dir`: a header that is not JSON.
pub fn damaged(sessions_dir: &Path) -> PathBuf {
    let path = sessions_dir.join("0000_damaged.jsonl");
    std::fs::write(&path, b"{\"type\":\"header\",\"utc_ms\": garbage\n").expect("write");
    path
}
