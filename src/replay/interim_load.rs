//! INTERIM: a minimal streaming reader of session records, standing in for
//! `crate::record::load` (written at the same time on another branch) so that replay
//! can open real files before the two merge. At the merge this file is deleted and
//! [`super::open::open_file`] calls `crate::record::load::load_with_progress`.
//!
//! It is honest but plain: the header must be the first line and of a version this
//! station reads; a line that is not valid JSON of a known type is skipped with a
//! warning naming its number (a cut last line says so); telemetry is placed by the
//! pen's clock, re-anchored on the station's where the pen's jumps. It never
//! modifies the file. The real loader's error messages, limits (a 2 GB file) and
//! speed are its own; nothing outside `open_file` depends on this reader.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::record::format::{FORMAT_NAME, FORMAT_VERSION, Header, Line, TelLine};
use crate::record::recording::{
    LineWarning, RecordStatus, Recording, TelColumns, TelSample, TimedLine,
};

/// Progress is reported at least every this many bytes.
const REPORT_EVERY_BYTES: u64 = 1 << 20;

/// A pen-clock step larger than this (a reboot, a wrap, a gap) or a pen clock this far
/// from the station's re-anchors the samples on the station's clock.
const REANCHOR_MS: i64 = 1000;

/// Reads `path`; see the module doc. `progress` returning false cancels.
pub(super) fn load_with_progress(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> anyhow::Result<Recording> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut bytes_read = 0u64;
    let mut next_report = 0u64;
    let mut header = None;
    let mut placer = Placer::default();
    let mut telemetry = TelColumns::default();
    let mut lines = Vec::new();
    let mut summary = None;
    let mut warnings = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {} after line {line_no}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes_read += n as u64;
        if bytes_read >= next_report {
            if !progress(bytes_read, size) {
                bail!("cancelled");
            }
            next_report = bytes_read + REPORT_EVERY_BYTES;
        }
        let cut = buf.last() != Some(&b'\n');
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let parsed = serde_json::from_slice::<Line>(text);
        let Some(header) = &header else {
            let h = first_header(line_no, parsed)?;
            placer.header_utc_ms = h.utc_ms;
            header = Some(h);
            continue;
        };
        match parsed {
            Ok(Line::Tel(t)) => telemetry.push(placer.place(&t)),
            Ok(Line::Summary(s)) => summary = Some(*s),
            Ok(Line::Header(_)) => warnings.push(LineWarning {
                line_no,
                message: "a second header; skipped".into(),
            }),
            Ok(line) => lines.push(TimedLine {
                session_ms: line.utc_ms() - header.utc_ms,
                line_no,
                line,
            }),
            Err(e) => warnings.push(LineWarning {
                line_no,
                message: if cut {
                    format!("the last line is cut short ({e}); skipped")
                } else {
                    format!("{e}; skipped")
                },
            }),
        }
    }
    progress(bytes_read, size);
    let Some(header) = header else {
        bail!(
            "{} is empty: no header, not a session record",
            path.display()
        );
    };
    telemetry.shrink_to_fit();
    let status = if summary.is_some() {
        RecordStatus::Complete
    } else {
        RecordStatus::Interrupted
    };
    Ok(Recording {
        path: path.to_path_buf(),
        header,
        telemetry,
        lines,
        summary,
        status,
        warnings,
    })
}

/// The first line, which must be a header this station reads.
fn first_header(line_no: u64, parsed: serde_json::Result<Line>) -> anyhow::Result<Header> {
    let h = match parsed {
        Ok(Line::Header(h)) => h,
        Ok(other) => bail!(
            "line {line_no}: a \"{}\" line where the header must be: not a session record",
            other.kind()
        ),
        Err(e) => bail!("line {line_no}: not a session record header ({e})"),
    };
    if h.format != FORMAT_NAME {
        bail!(
            "line {line_no}: the format is \"{}\", not \"{FORMAT_NAME}\"",
            h.format
        );
    }
    if h.version > FORMAT_VERSION {
        bail!(
            "line {line_no}: format version {} is newer than this station reads \
             ({FORMAT_VERSION}); open it with a newer Punctum",
            h.version
        );
    }
    Ok(*h)
}

/// Places samples on the session axis by the pen's clock.
#[derive(Debug, Default)]
struct Placer {
    header_utc_ms: i64,
    /// A sample's pen time and session time that later samples count from.
    anchor: Option<(u32, i64)>,
    last_t_ms: u32,
    last_session_ms: u32,
}

impl Placer {
    fn place(&mut self, t: &TelLine) -> TelSample {
        let station_ms = t.utc_ms - self.header_utc_ms;
        let by_pen = self.anchor.and_then(|(t0, s0)| {
            let step = i64::from(t.t_ms.wrapping_sub(self.last_t_ms));
            let pen_ms = s0 + i64::from(t.t_ms.wrapping_sub(t0));
            (step <= REANCHOR_MS && (pen_ms - station_ms).abs() <= REANCHOR_MS).then_some(pen_ms)
        });
        let session_ms = by_pen.unwrap_or_else(|| {
            self.anchor = Some((t.t_ms, station_ms));
            station_ms
        });
        // Never before the previous sample: the columns' times are non-decreasing.
        let session_ms = u32::try_from(session_ms.max(0))
            .unwrap_or(u32::MAX)
            .max(self.last_session_ms);
        self.last_t_ms = t.t_ms;
        self.last_session_ms = session_ms;
        TelSample {
            session_ms,
            n: t.n,
            t_ms: t.t_ms,
            state: t.state,
            rpm: t.rpm,
            depth_um: t.depth_um,
            current_ma: t.current_ma,
            temp_dc: t.temp_dc,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::replay::test_support::{header, tel};

    fn write(lines: &[String], tail: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        for line in lines {
            writeln!(file, "{line}").expect("write");
        }
        write!(file, "{tail}").expect("write");
        file
    }

    fn json(line: &Line) -> String {
        serde_json::to_string(line).expect("encodes")
    }

    fn load(path: &Path) -> anyhow::Result<Recording> {
        load_with_progress(path, &mut |_, _| true)
    }

    #[test]
    fn it_reads_a_cut_record_as_interrupted_with_a_warning() {
        let base = 1_764_000_000_000;
        let lines = [
            json(&header(base)),
            json(&tel(base, 0, 500)),
            json(&tel(base, 10, 510)),
        ];
        let file = write(&lines, r#"{"type":"tel","utc_ms":"#);
        let rec = load(file.path()).expect("loads");
        assert_eq!(rec.status, RecordStatus::Interrupted);
        assert_eq!(rec.telemetry.session_ms, vec![0, 10]);
        assert_eq!(rec.warnings.len(), 1);
        assert_eq!(rec.warnings[0].line_no, 4);
        assert!(
            rec.warnings[0].message.contains("cut short"),
            "{:?}",
            rec.warnings
        );
    }

    #[test]
    fn it_refuses_what_is_not_a_record_naming_the_line() {
        let empty = write(&[], "");
        let e = load(empty.path()).expect_err("empty");
        assert!(format!("{e:#}").contains("empty"), "{e:#}");
        let garbage = write(&["not json".into()], "");
        let e = load(garbage.path()).expect_err("garbage");
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
        let mut future = header(0);
        if let Line::Header(h) = &mut future {
            h.version = FORMAT_VERSION + 1;
        }
        let file = write(&[json(&future)], "");
        let e = load(file.path()).expect_err("future");
        assert!(format!("{e:#}").contains("newer"), "{e:#}");
    }

    #[test]
    fn the_pen_clock_places_samples_and_a_reboot_reanchors_them() {
        let base = 1_000_000;
        let mut placer = Placer {
            header_utc_ms: base,
            ..Placer::default()
        };
        let mut at = |utc: i64, t_ms: u32| {
            let Line::Tel(mut t) = tel(base, 0, t_ms) else {
                unreachable!()
            };
            t.utc_ms = base + utc;
            placer.place(&t).session_ms
        };
        assert_eq!(at(100, 5000), 100);
        // The station's clock jitters by a frame; the pen's does not.
        assert_eq!(at(125, 5010), 110);
        assert_eq!(at(118, 5020), 120);
        // A reboot: the pen's clock starts again; the station's clock places it.
        assert_eq!(at(3000, 3), 3000);
        assert_eq!(at(3011, 13), 3010);
    }

    #[test]
    fn cancelling_stops_the_read() {
        let base = 0;
        let file = write(&[json(&header(base)), json(&tel(base, 0, 0))], "");
        let e = load_with_progress(file.path(), &mut |_, _| false).expect_err("cancelled");
        assert!(format!("{e}").contains("cancelled"));
    }
}
