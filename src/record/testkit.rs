//! Records written for the unit tests: real files in temporary folders, built from
//! the format's own types with `serde_json`, plus whatever damage a test adds.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::format::{
    AlarmLine, AnswerLine, CartridgeLine, CommandLine, EventLine, FORMAT_NAME, FORMAT_VERSION,
    Header, Line, LinkLine, RefusalLine, StateWord, SummaryLine, TelLine, ZoneLine, ZoneSummary,
};

/// The header's time: 2025-11-24T16:00:00Z.
pub const T0_MS: i64 = 1_764_000_000_000;

/// A header opened at [`T0_MS`] for `client`.
pub fn header(client: &str) -> Line {
    Line::Header(Box::new(Header {
        utc_ms: T0_MS,
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        station_version: "0.1.0".into(),
        session_id: format!("20251124T170000-{client}-1"),
        opened_at: "2025-11-24T17:00:00+01:00".into(),
        practitioner: "P7".into(),
        client: client.into(),
        screening: serde_json::json!({"client": client}),
        pen: None,
        calibration: None,
        zones: serde_json::json!({"zones": []}),
        zones_hash: "00".repeat(32),
        simulated: true,
        alarm_sound: None,
    }))
}

/// A telemetry sample `n` received `at_ms` after the header, pen clock = `at_ms + 5000`.
pub fn tel(at_ms: i64, n: u32, state: StateWord, depth_um: i32) -> Line {
    let running = state == StateWord::Running;
    Line::Tel(TelLine {
        utc_ms: T0_MS + at_ms,
        n,
        t_ms: u32::try_from(at_ms + 5000).expect("test times are small"),
        state,
        rpm: if running { 6000 } else { 0 },
        depth_um,
        current_ma: if running { 300 } else { 20 },
        temp_dc: 312,
    })
}

/// Samples every `step_ms` from `from_ms` (inclusive) to `to_ms` (exclusive), `n`
/// counting on from `first_n`.
pub fn tel_run(
    from_ms: i64,
    to_ms: i64,
    step_ms: usize,
    first_n: u32,
    state: StateWord,
    depth_um: i32,
) -> Vec<Line> {
    (from_ms..to_ms)
        .step_by(step_ms)
        .zip(first_n..)
        .map(|(at, n)| tel(at, n, state, depth_um))
        .collect()
}

/// The zone made active at `at_ms`.
pub fn zone(at_ms: i64, zone: &str) -> Line {
    Line::Zone(ZoneLine {
        utc_ms: T0_MS + at_ms,
        zone: zone.into(),
        limit_um: 1000,
        halt_first: false,
        lowered_from_um: None,
        lowered_to_um: None,
    })
}

/// A command sent at `at_ms`.
pub fn command(at_ms: i64, seq: u32, command: &str) -> Line {
    Line::Command(CommandLine {
        utc_ms: T0_MS + at_ms,
        seq,
        command: command.into(),
        origin: "operator".into(),
        account: None,
    })
}

/// The pen's answer at `at_ms`.
pub fn answer(at_ms: i64, seq: u32, command: &str, result: &str) -> Line {
    Line::Answer(AnswerLine {
        utc_ms: T0_MS + at_ms,
        seq: Some(seq),
        command: command.into(),
        result: result.into(),
        detail: None,
        rtt_us: Some(800),
    })
}

/// A refusal at `at_ms` in `zone`.
pub fn refusal(at_ms: i64, command: &str, zone: Option<&str>) -> Line {
    Line::Refusal(RefusalLine {
        utc_ms: T0_MS + at_ms,
        command: command.into(),
        rule: "depth_above_limit".into(),
        message: format!("{command} refused"),
        zone: zone.map(Into::into),
    })
}

/// A pen event at `at_ms`.
pub fn event(at_ms: i64, event: &str) -> Line {
    Line::Event(EventLine {
        utc_ms: T0_MS + at_ms,
        t_ms: u32::try_from(at_ms + 5000).expect("test times are small"),
        event: event.into(),
    })
}

/// An alarm transition at `at_ms`.
pub fn alarm(at_ms: i64, alarm: &str, action: &str) -> Line {
    Line::Alarm(AlarmLine {
        utc_ms: T0_MS + at_ms,
        alarm: alarm.into(),
        priority: "high".into(),
        action: action.into(),
        text: format!("{alarm} text"),
        account: None,
    })
}

/// A link state change at `at_ms`.
pub fn link(at_ms: i64, state: &str, detail: Option<&str>) -> Line {
    Line::Link(LinkLine {
        utc_ms: T0_MS + at_ms,
        state: state.into(),
        detail: detail.map(Into::into),
    })
}

/// A cartridge's first run at `at_ms`.
pub fn cartridge(at_ms: i64, id: &str) -> Line {
    Line::Cartridge(CartridgeLine {
        utc_ms: T0_MS + at_ms,
        id: id.into(),
        needles: 12,
    })
}

/// A summary at `at_ms` with the given zones.
pub fn summary(at_ms: i64, zones: Vec<ZoneSummary>, samples: u64, cartridges: &[&str]) -> Line {
    Line::Summary(Box::new(SummaryLine {
        utc_ms: T0_MS + at_ms,
        duration_ms: at_ms,
        needling_ms: zones.iter().map(|z| z.needling_ms).sum(),
        refusals: zones.iter().map(|z| z.refusals).sum(),
        zones,
        interruptions: 0,
        alarms_raised: 0,
        samples,
        cartridges: cartridges.iter().map(|&c| c.to_owned()).collect(),
        next_earliest: "2025-12-22".into(),
        next_latest: None,
        next_advice: "in four weeks".into(),
        ended_by: None,
        ..SummaryLine::default()
    }))
}

/// The bytes of `lines`, one JSON object per line.
pub fn jsonl(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut out, line).expect("lines encode");
        out.push(b'\n');
    }
    out
}

/// Writes `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(bytes).expect("temp file written");
    path
}
