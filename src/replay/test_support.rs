//! TEST SUPPORT (compiled for tests only): recorded sessions written as scripts of
//! [`Line`]s, turned into a [`Recording`] in memory or written as a JSON Lines file.
//!
//! The in-memory recording is built the simple way a test needs, not the loader's
//! way: telemetry is placed by the pen's clock from the first sample; every other line
//! at its UTC time less the header's. Scripts keep the pen's and the station's clocks
//! in step, so any faithful loader places them the same.

// A broken script is a broken test: panicking with the reason is what a test wants.
#![allow(clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};

use crate::record::format::{
    AlarmLine, AnswerLine, FORMAT_NAME, FORMAT_VERSION, Header, Line, LinkLine, NoteLine,
    StateWord, SummaryLine, TelLine, ZoneLine,
};
use crate::record::recording::{RecordStatus, Recording, TelColumns, TelSample, TimedLine};
use crate::safety::zones::ZoneTable;

/// The header's UTC time in scripts: 2025-11-24.
pub const BASE_UTC_MS: i64 = 1_764_000_000_000;

/// The pen had been on this long when a script's session opened, ms.
pub const PEN_UP_MS: u32 = 7_000;

/// A header opened at `utc_ms`, with the built-in zone table.
#[must_use]
pub fn header(utc_ms: i64) -> Line {
    let zones = ZoneTable::builtin();
    Line::Header(Box::new(Header {
        utc_ms,
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        station_version: env!("CARGO_PKG_VERSION").into(),
        session_id: "20251124T160000-C-0042-1".into(),
        opened_at: "2025-11-24T16:00:00+00:00".into(),
        practitioner: "P-7".into(),
        client: "C-0042".into(),
        screening: serde_json::json!({"client": "C-0042"}),
        pen: None,
        calibration: None,
        zones: serde_json::from_str(&zones.to_json()).unwrap_or_default(),
        zones_hash: zones.hash_hex().to_owned(),
        simulated: true,
        alarm_sound: None,
    }))
}

/// Cheeks from 1 s (RUN at 2 s, running 2 to 5 s), forehead from 6 s (RUN at 7 s,
/// running 7 to 9 s), 100 Hz telemetry for 20 s; a link loss raised at 10 s,
/// acknowledged at 12 s, cleared at 15 s; a note at 16 s; 20 s in all.
#[must_use]
pub fn treatment() -> Script {
    Script::new()
        .telemetry(0, 2000, 10, StateWord::Idle, 0, 0)
        .telemetry(2000, 5000, 10, StateWord::Running, 6000, 800)
        .telemetry(5000, 7000, 10, StateWord::Idle, 0, 800)
        .telemetry(7000, 9000, 10, StateWord::Running, 7000, 500)
        .telemetry(9000, 20_000, 10, StateWord::Idle, 0, 500)
        .zone(1000, "cheeks", 1000)
        .answer(1500, "SPEED 6000", "ACK")
        .answer(1600, "DEPTH 800", "ACK")
        .answer(2000, "RUN", "ACK")
        .answer(5000, "HALT", "ACK")
        .zone(6000, "forehead", 500)
        .answer(6100, "DEPTH 500", "ACK")
        .answer(6200, "SPEED 7000", "NAK ARGS")
        .answer(7000, "RUN", "ACK")
        .answer(9000, "HALT", "ACK")
        .alarm(
            10_000,
            "link_lost",
            "high",
            "raised",
            "link to the pen lost",
        )
        .link(10_000, "lost")
        .alarm(
            12_000,
            "link_lost",
            "high",
            "acknowledged",
            "link to the pen lost",
        )
        .alarm(
            15_000,
            "link_lost",
            "high",
            "cleared",
            "link to the pen lost",
        )
        .note(16_000, "client fine")
        .summary(20_000)
}

/// A session written line by line, times in session ms.
#[derive(Debug, Clone)]
pub struct Script {
    lines: Vec<Line>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// A header at [`BASE_UTC_MS`] and nothing else.
    #[must_use]
    pub fn new() -> Self {
        Self {
            lines: vec![header(BASE_UTC_MS)],
        }
    }

    fn utc(at_ms: i64) -> i64 {
        BASE_UTC_MS + at_ms
    }

    /// Adds any line.
    #[must_use]
    pub fn line(mut self, line: Line) -> Self {
        self.lines.push(line);
        self
    }

    /// One sample every `every_ms` from `from_ms` up to (not including) `to_ms`.
    #[must_use]
    pub fn telemetry(
        mut self,
        from_ms: u32,
        to_ms: u32,
        every_ms: u32,
        state: StateWord,
        rpm: i32,
        depth_um: i32,
    ) -> Self {
        let mut at = from_ms;
        while at < to_ms {
            self.lines.push(Line::Tel(TelLine {
                utc_ms: Self::utc(i64::from(at)),
                n: at / every_ms.max(1),
                t_ms: PEN_UP_MS + at,
                state,
                rpm,
                depth_um,
                current_ma: if state == StateWord::Running { 300 } else { 0 },
                temp_dc: 310,
            }));
            at += every_ms.max(1);
        }
        self
    }

    /// The interlock made `zone` active, limit `limit_um`.
    #[must_use]
    pub fn zone(self, at_ms: i64, zone: &str, limit_um: i32) -> Self {
        self.line(Line::Zone(ZoneLine {
            utc_ms: Self::utc(at_ms),
            zone: zone.into(),
            limit_um,
            halt_first: false,
            lowered_from_um: None,
            lowered_to_um: None,
        }))
    }

    /// The pen answered `command` (wire text) with `result` (`ACK`, `NAK ARGS`...).
    #[must_use]
    pub fn answer(self, at_ms: i64, command: &str, result: &str) -> Self {
        self.line(Line::Answer(AnswerLine {
            utc_ms: Self::utc(at_ms),
            seq: Some(1),
            command: command.into(),
            result: result.into(),
            detail: None,
            rtt_us: Some(900),
        }))
    }

    /// An alarm transition.
    #[must_use]
    pub fn alarm(self, at_ms: i64, alarm: &str, priority: &str, action: &str, text: &str) -> Self {
        self.line(Line::Alarm(AlarmLine {
            utc_ms: Self::utc(at_ms),
            alarm: alarm.into(),
            priority: priority.into(),
            action: action.into(),
            text: text.into(),
            account: None,
        }))
    }

    /// A link change.
    #[must_use]
    pub fn link(self, at_ms: i64, state: &str) -> Self {
        self.line(Line::Link(LinkLine {
            utc_ms: Self::utc(at_ms),
            state: state.into(),
            detail: None,
        }))
    }

    /// An operator's note.
    #[must_use]
    pub fn note(self, at_ms: i64, text: &str) -> Self {
        self.line(Line::Note(NoteLine {
            utc_ms: Self::utc(at_ms),
            author: "P-7".into(),
            text: text.into(),
        }))
    }

    /// The closing summary, the session `duration_ms` long (figures left at zero:
    /// replay does not read them).
    #[must_use]
    pub fn summary(self, duration_ms: i64) -> Self {
        self.line(Line::Summary(Box::new(SummaryLine {
            utc_ms: Self::utc(duration_ms),
            duration_ms,
            zones: Vec::new(),
            needling_ms: 0,
            refusals: 0,
            interruptions: 0,
            alarms_raised: 0,
            samples: 0,
            cartridges: Vec::new(),
            next_earliest: "2025-12-22".into(),
            next_latest: None,
            next_advice: "in four weeks".into(),
            ended_by: None,
            ..SummaryLine::default()
        })))
    }

    /// The lines in file order: the header, then by time (stable).
    #[must_use]
    pub fn lines(&self) -> Vec<Line> {
        let mut lines = self.lines.clone();
        if let Some(rest) = lines.get_mut(1..) {
            rest.sort_by_key(Line::utc_ms);
        }
        lines
    }

    /// The recording, built in memory (see the module doc).
    #[must_use]
    pub fn recording(&self) -> Recording {
        recording_from_lines(
            Path::new("/test/2025-11-24_160000_C-0042.jsonl"),
            self.lines(),
        )
    }

    /// Writes the lines as a JSON Lines file `name` in `dir`, and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let mut text = String::new();
        for line in self.lines() {
            text.push_str(&serde_json::to_string(&line).expect("a line encodes"));
            text.push('\n');
        }
        std::fs::write(&path, text).expect("the temp dir is writable");
        path
    }
}

/// A recording from `lines`, the first being the header (see the module doc).
///
/// # Panics
/// When the first line is not a header: a broken test.
#[must_use]
pub fn recording_from_lines(path: &Path, lines: Vec<Line>) -> Recording {
    let mut lines = lines.into_iter();
    let Some(Line::Header(header)) = lines.next() else {
        panic!("a script starts with its header");
    };
    let mut telemetry = TelColumns::default();
    let mut timed = Vec::new();
    let mut summary = None;
    let mut first_tel: Option<(u32, i64)> = None;
    for (i, line) in lines.enumerate() {
        let session_ms = line.utc_ms() - header.utc_ms;
        match line {
            Line::Tel(t) => {
                let (t0, s0) = *first_tel.get_or_insert((t.t_ms, session_ms));
                let placed = s0 + i64::from(t.t_ms.wrapping_sub(t0));
                telemetry.push(TelSample {
                    session_ms: u32::try_from(placed).expect("a test session's time"),
                    n: t.n,
                    t_ms: t.t_ms,
                    state: t.state,
                    rpm: t.rpm,
                    depth_um: t.depth_um,
                    current_ma: t.current_ma,
                    temp_dc: t.temp_dc,
                });
            }
            Line::Summary(s) => summary = Some(*s),
            line => timed.push(TimedLine {
                session_ms,
                line_no: i as u64 + 2,
                tel_before: telemetry.len(),
                line,
            }),
        }
    }
    Recording {
        path: path.to_path_buf(),
        header: *header,
        telemetry,
        lines: timed,
        status: if summary.is_some() {
            RecordStatus::Complete
        } else {
            RecordStatus::Interrupted
        },
        summary,
        warnings: Vec::new(),
    }
}
