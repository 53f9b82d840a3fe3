//! Loading a session record: the header strictly, everything after it forgivingly.
//!
//! The file is streamed through one bounded buffer ([`super::lines`]) and opened
//! read-only: it is never modified, and a file of any size costs the telemetry
//! columns plus about 1 MiB. What cannot be a record at all (an empty file, a first
//! line that is not a header, a newer format) is a [`LoadError`]. Past the header,
//! a bad line is skipped with a [`LineWarning`] naming its line number, and the rest
//! loads: a record cut short by a crash is exactly what must still be readable.
//!
//! Telemetry lines are 99.9 % of a record and take a fast path: a line that starts
//! `{"type":"tel"` is parsed straight into [`TelLine`] (serde's internally tagged
//! enums buffer every field before choosing a variant, which is several times
//! slower). Anything else, or a telemetry line the fast path rejects, goes through
//! [`Line`], whose errors say what is wrong.
//!
//! Telemetry is placed on the session axis by the pen's clock (`TelClock`), and
//! kept in file order with the other lines (`keep_file_order`): a sample the
//! station received before a zone change is never placed after it, so replay and
//! the report see the same order the station did.

use std::path::{Path, PathBuf};

use super::format::{
    FORMAT_NAME, FORMAT_VERSION, Header, Line, StateWord, TelLine, describe_clock_step,
};
use super::lines::{LineReader, MAX_LINE_BYTES, RawLine};
use super::recording::{LineWarning, RecordStatus, Recording, TelColumns, TelSample, TimedLine};

/// How a telemetry line starts when the station wrote it (serde writes the tag first).
const TEL_PREFIX: &[u8] = br#"{"type":"tel""#;

/// When the pen's clock and the station's disagree by more than this, telemetry is
/// re-anchored on the station's clock: the pen's clock cannot drift that far in a
/// session, so it rebooted, wrapped or the samples stopped for a while.
const MAX_CLOCK_DISAGREEMENT_MS: i64 = 1000;

/// A telemetry line as read: its fields and, from format 2, `mono_ms` (the recorder
/// adds it to every line).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(from = "TelWire")]
struct TelRead {
    tel: TelLine,
    mono_ms: Option<i64>,
}

/// The wire form of [`TelRead`]: flat, so the fast path parses without `flatten`.
#[derive(serde::Deserialize)]
struct TelWire {
    utc_ms: i64,
    #[serde(default)]
    mono_ms: Option<i64>,
    n: u32,
    t_ms: u32,
    state: StateWord,
    rpm: i32,
    depth_um: i32,
    current_ma: i32,
    temp_dc: i32,
}

impl From<TelWire> for TelRead {
    fn from(w: TelWire) -> Self {
        TelRead {
            tel: TelLine {
                utc_ms: w.utc_ms,
                n: w.n,
                t_ms: w.t_ms,
                state: w.state,
                rpm: w.rpm,
                depth_um: w.depth_um,
                current_ma: w.current_ma,
                temp_dc: w.temp_dc,
            },
            mono_ms: w.mono_ms,
        }
    }
}

/// The session time of any other line, from format 2.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct Stamp {
    #[serde(default)]
    mono_ms: Option<i64>,
}

/// In a format 1 record (no `mono_ms`), consecutive samples whose station times
/// moved more than this away from the pen's clock mark a step of the station's wall
/// clock: the axis follows the pen across it.
const WALL_STEP_MS: i64 = 1000;

/// Warnings listed one by one; past this they are counted. A file of millions of
/// garbage lines must not become millions of warnings in memory.
pub const MAX_WARNINGS: usize = 1000;

/// Why a file could not be loaded as a session record. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened (missing, no permission).
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading failed part way (an I/O error, a directory).
    #[error("cannot read {} at line {line_no}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The line being read.
        line_no: u64,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty: no header.
    #[error("{} is empty: no header, so not a Punctum session record", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The first line is not JSON at all.
    #[error("{} is not a Punctum session record: line 1 is not JSON: {reason}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said, or why the line was not parsed.
        reason: String,
    },
    /// The first line is JSON but not a session header this station understands.
    #[error(
        "{} is not a Punctum session record: line 1 is not a session header: {reason}",
        path.display()
    )]
    NotHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The header's format version is newer than this station reads. Guessing at a
    /// newer file could show a session wrongly, so it is refused.
    #[error(
        "{} was written by a newer Punctum (format version {version}; this station reads up to {FORMAT_VERSION})",
        path.display()
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u64,
    },
    /// The progress callback asked to stop.
    #[error("loading {} was cancelled", path.display())]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
}

/// Loads the record at `path`. See [`load_with_progress`].
pub fn load(path: &Path) -> Result<Recording, LoadError> {
    load_with_progress(path, &mut |_, _| true)
}

/// Loads the record at `path`, calling `progress(bytes_read, file_bytes)` as it goes
/// (about every 256 KiB, and once at the start); `progress` returning `false`
/// cancels the load with [`LoadError::Cancelled`].
///
/// The first line must be a header of format version 1; anything else is an error.
/// After it, bad lines are skipped and listed in [`Recording::warnings`] with their
/// line numbers. The record is [`RecordStatus::Complete`] if a summary line was read,
/// else [`RecordStatus::Interrupted`].
pub fn load_with_progress(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Recording, LoadError> {
    let cancelled = || LoadError::Cancelled {
        path: path.to_path_buf(),
    };
    // Opened read-only: nothing here can change the file. A FIFO or a device is
    // refused at once rather than read forever.
    let file = crate::files::open_regular(path).map_err(|source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // A file still being written grows while it is read; the progress bar only needs
    // a size that is never below what was read.
    let mut file_bytes = file.metadata().map_or(0, |m| m.len());
    if !progress(0, file_bytes) {
        return Err(cancelled());
    }
    let mut reader = LineReader::new(file);
    let header = read_header(path, &mut reader)?;
    let mut builder = Builder::new(header.utc_ms);
    // What `progress` was last told: it starts at 0, whatever the header took.
    let mut reported = 0;
    loop {
        let line_no = reader.line_no() + 1;
        let next = reader.next_line().map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            line_no,
            source,
        })?;
        let Some((line_no, raw)) = next else { break };
        match raw {
            RawLine::Text { bytes, terminated } => builder.on_line(line_no, bytes, terminated),
            RawLine::TooLong {
                len_bytes,
                terminated,
            } => builder.warn(
                line_no,
                format!(
                    "{len_bytes} bytes long{}, over the {} MiB limit of a line: skipped",
                    if terminated {
                        ""
                    } else {
                        " and the file ends inside it"
                    },
                    MAX_LINE_BYTES >> 20
                ),
            ),
        }
        if reader.bytes_read() != reported {
            reported = reader.bytes_read();
            file_bytes = file_bytes.max(reported);
            if !progress(reported, file_bytes) {
                return Err(cancelled());
            }
        }
    }
    // The end, always told: a small file is read in one chunk with its header.
    let read = reader.bytes_read();
    if read != reported {
        let _ = progress(read, file_bytes.max(read));
    }
    Ok(builder.finish(path, header))
}

/// Reads and checks line 1. The version is decided before the header is parsed
/// strictly, so that a newer header (with fields this version does not know, or
/// without some it needs) still gets "newer version" rather than "bad header".
pub(crate) fn read_header<R: std::io::Read>(
    path: &Path,
    reader: &mut LineReader<R>,
) -> Result<Header, LoadError> {
    let next = reader.next_line().map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        line_no: 1,
        source,
    })?;
    match next {
        None => Err(LoadError::Empty {
            path: path.to_path_buf(),
        }),
        Some((_, RawLine::TooLong { len_bytes, .. })) => Err(LoadError::NotJson {
            path: path.to_path_buf(),
            reason: format!(
                "it is {len_bytes} bytes long, and a header is under {} MiB",
                MAX_LINE_BYTES >> 20
            ),
        }),
        Some((_, RawLine::Text { bytes, .. })) => parse_header(path, bytes),
    }
}

/// Checks and parses a header line.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, LoadError> {
    let not_header = |reason: String| LoadError::NotHeader {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadError::NotJson {
            path: path.to_path_buf(),
            reason: "the line is blank".into(),
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| LoadError::NotJson {
            path: path.to_path_buf(),
            reason: json_reason(&e),
        })?;
    let Some(object) = value.as_object() else {
        return Err(not_header(format!(
            "it is a JSON {}, not an object",
            json_kind(&value)
        )));
    };
    match object.get("type") {
        Some(serde_json::Value::String(t)) if t == "header" => {}
        Some(serde_json::Value::String(t)) => {
            return Err(not_header(format!("it is a \"{t}\" line")));
        }
        _ => return Err(not_header("it has no \"type\"".into())),
    }
    match object.get("format") {
        Some(serde_json::Value::String(f)) if f == FORMAT_NAME => {}
        Some(serde_json::Value::String(f)) => {
            return Err(not_header(format!(
                "its format is \"{f}\", not \"{FORMAT_NAME}\""
            )));
        }
        _ => return Err(not_header("it has no \"format\"".into())),
    }
    let Some(version) = object.get("version").and_then(serde_json::Value::as_u64) else {
        return Err(not_header(
            "its \"version\" is missing or not a whole number".into(),
        ));
    };
    if version > u64::from(FORMAT_VERSION) {
        return Err(LoadError::NewerVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    if version == 0 {
        return Err(not_header("format version 0 does not exist".into()));
    }
    // `Header` ignores the "type" key; every other field is checked here.
    serde_json::from_value::<Header>(value).map_err(|e| not_header(json_reason(&e)))
}

/// A `serde_json` error without its "at line 1 column N": inside one line of the
/// record, "line 1" would be misread as the file's line 1.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.column() > 0 => format!("{message} (column {})", e.column()),
        Some(message) => message.to_owned(),
        None => text,
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Why a line that did not parse as a [`Line`] is bad, in words.
fn classify(bytes: &[u8], error: &serde_json::Error) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(e) => format!("not JSON: {}", json_reason(&e)),
        Ok(serde_json::Value::Object(object)) => match object.get("type") {
            Some(serde_json::Value::String(t)) if Line::KINDS.contains(&t.as_str()) => {
                format!("a \"{t}\" line with bad fields: {}", json_reason(error))
            }
            Some(serde_json::Value::String(t)) => format!("unknown line type \"{t}\""),
            Some(_) => "its \"type\" is not a string".into(),
            None => "a JSON object without \"type\"".into(),
        },
        Ok(other) => format!("a JSON {}, not an object", json_kind(&other)),
    }
}

/// Places telemetry on the session axis. The pen's clock is steady to the
/// millisecond, the station's reception time jitters with the USB and the OS, so
/// samples follow the pen's clock from an anchor taken on the station's clock, and
/// are re-anchored whenever the pen's clock cannot be trusted to continue: a gap in
/// `n` (lost samples, a new `HELLO`), the pen's clock going back (a reboot or a
/// wrap), or the two clocks disagreeing by over [`MAX_CLOCK_DISAGREEMENT_MS`].
#[derive(Debug, Default)]
struct TelClock {
    /// Session ms of the anchor sample, on the station's clock.
    anchor_session_ms: i64,
    /// The pen's `t_ms` at the anchor.
    anchor_t_ms: u32,
    /// `n` and `t_ms` of the previous sample.
    prev: Option<(u32, u32)>,
    /// Session ms given to the previous sample: the axis never goes back.
    last_session_ms: i64,
    /// The latest time of a non-telemetry line so far: later samples are not
    /// placed before it.
    floor_ms: i64,
}

impl TelClock {
    /// The session ms of a sample received at `station_ms` (session ms on the
    /// station's clock) with the pen's `n` and `t_ms`.
    fn place(&mut self, station_ms: i64, n: u32, t_ms: u32) -> u32 {
        let by_pen = match self.prev {
            Some((prev_n, prev_t_ms)) if n == prev_n.wrapping_add(1) && t_ms >= prev_t_ms => {
                // Every step since the anchor went forward, so this cannot underflow.
                let at = self.anchor_session_ms + i64::from(t_ms - self.anchor_t_ms);
                ((at - station_ms).abs() <= MAX_CLOCK_DISAGREEMENT_MS).then_some(at)
            }
            _ => None,
        };
        let at = by_pen.unwrap_or_else(|| {
            self.anchor_session_ms = station_ms;
            self.anchor_t_ms = t_ms;
            station_ms
        });
        let at = at.max(self.last_session_ms).max(0);
        self.last_session_ms = at;
        self.prev = Some((n, t_ms));
        u32::try_from(at).unwrap_or(u32::MAX)
    }
}

/// The record being assembled, line by line.
struct Builder {
    header_utc_ms: i64,
    telemetry: TelColumns,
    lines: Vec<TimedLine>,
    summary: Option<(u64, super::format::SummaryLine)>,
    warnings: Vec<LineWarning>,
    /// Warnings past [`MAX_WARNINGS`]: how many, and the first one's line.
    unlisted: Option<(u64, u64)>,
    clock: TelClock,
    /// The previous sample's place on the station's axis, ms.
    last_tel_station_ms: Option<i64>,
    /// Format 1 only: the wall-clock steps found so far, summed, ms: subtracted from
    /// `utc_ms` to put a line on the axis.
    wall_steps_ms: i64,
    /// Format 1 only: the previous sample's `utc_ms`, `n` and `t_ms`.
    last_tel: Option<(i64, u32, u32)>,
}

impl Builder {
    fn new(header_utc_ms: i64) -> Self {
        Builder {
            header_utc_ms,
            telemetry: TelColumns::default(),
            lines: Vec::new(),
            summary: None,
            warnings: Vec::new(),
            unlisted: None,
            clock: TelClock::default(),
            last_tel_station_ms: None,
            wall_steps_ms: 0,
            last_tel: None,
        }
    }

    fn warn(&mut self, line_no: u64, message: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(LineWarning { line_no, message });
        } else {
            self.unlisted.get_or_insert((line_no, 0)).1 += 1;
        }
    }

    fn on_line(&mut self, line_no: u64, bytes: &[u8], terminated: bool) {
        if bytes.starts_with(TEL_PREFIX)
            && let Ok(read) = serde_json::from_slice::<TelRead>(bytes)
        {
            self.on_tel(line_no, &read.tel, read.mono_ms);
            return;
        }
        match serde_json::from_slice::<Line>(bytes) {
            Ok(line) => {
                let mono_ms = serde_json::from_slice::<Stamp>(bytes)
                    .ok()
                    .and_then(|s| s.mono_ms);
                self.on_parsed(line_no, line, mono_ms);
            }
            Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {
                self.warn(line_no, "blank line: skipped".into());
            }
            Err(e) if !terminated => {
                let why = classify(bytes, &e);
                self.warn(
                    line_no,
                    format!(
                        "the last line is cut short (the file ends without a newline; {why}): \
                         skipped, the recording was interrupted while writing it"
                    ),
                );
            }
            Err(e) => {
                let why = classify(bytes, &e);
                self.warn(line_no, format!("{why}: skipped"));
            }
        }
    }

    fn note_after_summary(&mut self, line_no: u64) {
        if let Some((summary_line_no, _)) = self.summary {
            self.warn(
                line_no,
                format!("comes after the summary (line {summary_line_no}): kept"),
            );
        }
    }

    /// A line's place on the session axis, ms: its `mono_ms` (format 2), else its
    /// `utc_ms` from the header's, less the wall-clock steps found (format 1).
    fn station_ms(&self, utc_ms: i64, mono_ms: Option<i64>) -> i64 {
        mono_ms.unwrap_or_else(|| {
            utc_ms
                .saturating_sub(self.header_utc_ms)
                .saturating_sub(self.wall_steps_ms)
        })
    }

    fn on_parsed(&mut self, line_no: u64, line: Line, mono_ms: Option<i64>) {
        match line {
            // Not taken by the fast path (fields in another order): the same sample.
            Line::Tel(tel) => self.on_tel(line_no, &tel, mono_ms),
            Line::Header(_) => self.warn(line_no, "a second header: skipped".into()),
            // The signature is checked on the file's bytes (`record::sign::check`),
            // not placed on the session's axis.
            Line::Signature(_) => {}
            Line::Summary(summary) => match &self.summary {
                Some((first, _)) => self.warn(
                    line_no,
                    format!("a second summary: skipped (the one on line {first} is kept)"),
                ),
                None => self.summary = Some((line_no, *summary)),
            },
            line => {
                self.note_after_summary(line_no);
                let session_ms = self.station_ms(line.utc_ms(), mono_ms);
                self.keep_file_order(session_ms);
                self.lines.push(TimedLine {
                    session_ms,
                    line_no,
                    tel_before: self.telemetry.len(),
                    line,
                });
            }
        }
    }

    /// Keeps the session axis in file order around a line at `line_ms`: the samples
    /// the station received before it are not placed after it, and those after it
    /// not before it. The pen's clock places samples to within the USB's jitter of
    /// when they arrived, and a few ms matter: a zone change is written the moment
    /// it happens, and the samples on either side belong to different zones.
    ///
    /// A line stamped more than [`MAX_CLOCK_DISAGREEMENT_MS`] before the samples
    /// already placed is out of order in the file itself (the pen's clock never
    /// strays that far from the station's): it moves nothing.
    fn keep_file_order(&mut self, line_ms: i64) {
        let column = &mut self.telemetry.session_ms;
        if let Some(&last) = column.last()
            && i64::from(last) > line_ms.saturating_add(MAX_CLOCK_DISAGREEMENT_MS)
        {
            return;
        }
        let at_ms = line_ms.max(self.clock.floor_ms).max(0);
        let at = u32::try_from(at_ms).unwrap_or(u32::MAX);
        // The last few samples, received within the jitter before the line.
        let first_later = column.partition_point(|&t| t <= at);
        column[first_later..].fill(at);
        self.clock.floor_ms = at_ms;
        self.clock.last_session_ms = at_ms;
    }

    fn on_tel(&mut self, line_no: u64, tel: &TelLine, mono_ms: Option<i64>) {
        self.note_after_summary(line_no);
        if mono_ms.is_none() {
            self.find_wall_step(line_no, tel);
        }
        // On the session's axis (`mono_ms`, or `utc_ms` with the wall clock's steps
        // taken out): a recorded wall-clock step is no reason to warn.
        let station_ms = self.station_ms(tel.utc_ms, mono_ms);
        if let Some(last) = self.last_tel_station_ms
            && station_ms < last
        {
            self.warn(
                line_no,
                format!(
                    "telemetry goes back {} ms on the station's clock: kept",
                    last - station_ms
                ),
            );
        }
        self.last_tel_station_ms = Some(station_ms);
        let session_ms = self.clock.place(station_ms, tel.n, tel.t_ms);
        self.telemetry.push(TelSample {
            session_ms,
            n: tel.n,
            t_ms: tel.t_ms,
            state: tel.state,
            rpm: tel.rpm,
            depth_um: tel.depth_um,
            current_ma: tel.current_ma,
            temp_dc: tel.temp_dc,
        });
    }

    /// Format 1: between two consecutive samples (the counter steps by one, the pen's
    /// clock goes forward) the pen's clock is the truth; station times that moved
    /// more than [`WALL_STEP_MS`] away from it stepped, and later lines are put back.
    fn find_wall_step(&mut self, line_no: u64, tel: &TelLine) {
        if let Some((prev_utc_ms, prev_n, prev_t_ms)) = self.last_tel
            && tel.n == prev_n.wrapping_add(1)
            && tel.t_ms >= prev_t_ms
        {
            let pen_ms = i64::from(tel.t_ms - prev_t_ms);
            let step_ms = tel.utc_ms - prev_utc_ms - pen_ms;
            if step_ms.abs() > WALL_STEP_MS {
                self.wall_steps_ms += step_ms;
                self.warn(
                    line_no,
                    format!(
                        "{} here (a format 1 record has no monotonic clock): the session's \
                         time axis follows the pen's clock across it",
                        describe_clock_step(step_ms)
                    ),
                );
            }
        }
        self.last_tel = Some((tel.utc_ms, tel.n, tel.t_ms));
    }

    fn finish(mut self, path: &Path, header: Header) -> Recording {
        if let Some((line_no, count)) = self.unlisted {
            self.warnings.push(LineWarning {
                line_no,
                message: format!("{count} more warnings from this line on are not listed"),
            });
        }
        self.telemetry.shrink_to_fit();
        self.lines.shrink_to_fit();
        self.warnings.shrink_to_fit();
        let summary = self.summary.map(|(_, s)| s);
        Recording {
            path: path.to_path_buf(),
            header,
            telemetry: self.telemetry,
            lines: self.lines,
            status: if summary.is_some() {
                RecordStatus::Complete
            } else {
                RecordStatus::Interrupted
            },
            summary,
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{StateWord, ZoneSummary};
    use crate::record::testkit::{self as kit, T0_MS};

    fn load_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Recording, LoadError>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = kit::write(dir.path(), "s.jsonl", bytes);
        let before = std::fs::read(&path).expect("readable");
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let loaded = load(&path);
        assert_eq!(
            std::fs::read(&path).expect("readable"),
            before,
            "file changed"
        );
        assert_eq!(
            std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            mtime
        );
        (dir, loaded)
    }

    fn loaded(bytes: &[u8]) -> Recording {
        load_bytes(bytes).1.expect("loads")
    }

    fn error(bytes: &[u8]) -> String {
        let (dir, result) = load_bytes(bytes);
        let message = result.expect_err("refused").to_string();
        assert!(
            message.contains(&dir.path().join("s.jsonl").display().to_string()),
            "{message}"
        );
        message
    }

    fn messages(rec: &Recording) -> Vec<String> {
        rec.warnings.iter().map(ToString::to_string).collect()
    }

    /// A clean session: header, zone, a pass of 2 s at 100 Hz, summary.
    fn session() -> Vec<crate::record::format::Line> {
        let mut lines = vec![kit::header("C042"), kit::zone(0, "cheeks")];
        lines.extend(kit::tel_run(0, 1000, 10, 0, StateWord::Idle, 0));
        lines.push(kit::command(995, 5, "RUN"));
        lines.push(kit::answer(996, 5, "RUN", "ACK"));
        lines.push(kit::cartridge(997, "0123456789ABCDEF"));
        lines.extend(kit::tel_run(1000, 3000, 10, 100, StateWord::Running, 800));
        lines.push(kit::summary(
            3000,
            vec![ZoneSummary {
                zone: "cheeks".into(),
                passes: 1,
                needling_ms: 1990,
                max_depth_um: 800,
                refusals: 0,
            }],
            300,
            &["0123456789ABCDEF"],
        ));
        lines
    }

    #[test]
    fn a_complete_record_should_load_everything_in_columns_and_lines() {
        let rec = loaded(&kit::jsonl(&session()));
        assert_eq!(rec.status, RecordStatus::Complete);
        assert!(rec.warnings.is_empty(), "{:?}", messages(&rec));
        assert_eq!(rec.header.client, "C042");
        assert_eq!(rec.telemetry.len(), 300);
        assert_eq!(rec.telemetry.session_ms[0], 0);
        assert_eq!(rec.telemetry.session_ms[299], 2990);
        assert_eq!(rec.telemetry.state[150], StateWord::Running);
        assert_eq!(rec.telemetry.depth_um[150], 800);
        let kinds: Vec<(&str, i64, u64)> = rec
            .lines
            .iter()
            .map(|l| (l.line.kind(), l.session_ms, l.line_no))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("zone", 0, 2),
                ("command", 995, 103),
                ("answer", 996, 104),
                ("cartridge", 997, 105)
            ]
        );
        assert_eq!(rec.summary.as_ref().map(|s| s.samples), Some(300));
        assert_eq!(rec.duration_ms(), 3000);
        assert_eq!(
            rec.telemetry.heap_bytes(),
            300 * TelColumns::BYTES_PER_SAMPLE,
            "columns shrunk to fit"
        );
    }

    #[test]
    fn a_record_without_summary_should_load_as_interrupted_with_everything_before_the_cut() {
        let mut lines = session();
        lines.pop();
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(rec.status, RecordStatus::Interrupted);
        assert!(rec.warnings.is_empty(), "{:?}", messages(&rec));
        assert_eq!(rec.telemetry.len(), 300);
        assert_eq!(rec.duration_ms(), 2990);
    }

    #[test]
    fn a_truncated_last_line_should_be_skipped_with_a_warning_naming_it() {
        let mut bytes = kit::jsonl(&session()[..104]);
        let cut = kit::jsonl(&[kit::tel(1000, 100, StateWord::Running, 800)]);
        bytes.extend_from_slice(&cut[..cut.len() / 2]);
        let rec = loaded(&bytes);
        assert_eq!(rec.status, RecordStatus::Interrupted);
        assert_eq!(rec.telemetry.len(), 100);
        assert_eq!(rec.warnings.len(), 1, "{:?}", messages(&rec));
        assert_eq!(rec.warnings[0].line_no, 105);
        assert!(
            rec.warnings[0].message.contains("cut short"),
            "{:?}",
            messages(&rec)
        );
    }

    #[test]
    fn a_complete_last_line_without_newline_should_still_load() {
        let mut bytes = kit::jsonl(&session());
        bytes.pop();
        let rec = loaded(&bytes);
        assert_eq!(rec.status, RecordStatus::Complete);
        assert!(rec.warnings.is_empty(), "{:?}", messages(&rec));
    }

    #[test]
    fn garbage_in_the_middle_should_be_skipped_and_the_rest_loaded() {
        let lines = session();
        let mut bytes = kit::jsonl(&lines[..50]);
        bytes.extend_from_slice(b"\x00\x00\xff\xfe garbage {\"type\n");
        bytes.extend_from_slice(b"{\"type\":\"tel\",\"utc_ms\":\n");
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(b"[1,2,3]\n");
        bytes.extend_from_slice(&kit::jsonl(&lines[50..]));
        let rec = loaded(&bytes);
        assert_eq!(rec.status, RecordStatus::Complete);
        assert_eq!(rec.telemetry.len(), 300);
        let warnings = messages(&rec);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].starts_with("line 51: not JSON"), "{warnings:?}");
        assert!(warnings[1].starts_with("line 52: not JSON"), "{warnings:?}");
        assert_eq!(warnings[2], "line 53: blank line: skipped");
        assert!(
            warnings[3].starts_with("line 54: a JSON array, not an object"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_unknown_line_type_should_be_skipped_naming_the_type() {
        let lines = session();
        let mut bytes = kit::jsonl(&lines[..3]);
        bytes.extend_from_slice(br#"{"type":"teleport","utc_ms":1764000000500,"to":"mars"}"#);
        bytes.push(b'\n');
        bytes.extend_from_slice(&kit::jsonl(&lines[3..]));
        let rec = loaded(&bytes);
        assert_eq!(rec.telemetry.len(), 300);
        assert_eq!(
            messages(&rec),
            vec![r#"line 4: unknown line type "teleport": skipped"#]
        );
    }

    #[test]
    fn a_known_type_with_bad_fields_should_be_skipped_saying_why() {
        let lines = session();
        let mut bytes = kit::jsonl(&lines[..3]);
        bytes.extend_from_slice(br#"{"type":"zone","utc_ms":1764000000500,"limit_um":900}"#);
        bytes.push(b'\n');
        bytes.extend_from_slice(
            br#"{"type":"tel","utc_ms":1764000000501,"n":1,"t_ms":1,"state":"DANCING","rpm":0,"depth_um":0,"current_ma":0,"temp_dc":0}"#,
        );
        bytes.push(b'\n');
        bytes.extend_from_slice(&kit::jsonl(&lines[3..]));
        let rec = loaded(&bytes);
        let warnings = messages(&rec);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with(r#"line 4: a "zone" line with bad fields: missing field `zone`"#),
            "{warnings:?}"
        );
        assert!(
            warnings[1]
                .starts_with(r#"line 5: a "tel" line with bad fields: unknown variant `DANCING`"#),
            "{warnings:?}"
        );
        assert!(!warnings[1].contains("line 1 column"), "{warnings:?}");
        assert_eq!(rec.telemetry.len(), 300);
        assert_eq!(rec.lines.len(), 4);
    }

    #[test]
    fn a_second_header_should_be_skipped() {
        let mut lines = session();
        lines.insert(5, kit::header("C043"));
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(messages(&rec), vec!["line 6: a second header: skipped"]);
        assert_eq!(rec.header.client, "C042");
    }

    #[test]
    fn lines_after_the_summary_should_be_kept_and_warned() {
        let mut lines = session();
        lines.push(kit::tel(3100, 300, StateWord::Idle, 0));
        lines.push(kit::zone(3200, "forehead"));
        lines.push(kit::summary(3300, Vec::new(), 0, &[]));
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(rec.status, RecordStatus::Complete);
        assert_eq!(rec.telemetry.len(), 301);
        assert_eq!(rec.lines.last().map(|l| l.line.kind()), Some("zone"));
        assert_eq!(rec.summary.as_ref().map(|s| s.duration_ms), Some(3000));
        assert_eq!(
            messages(&rec),
            vec![
                "line 307: comes after the summary (line 306): kept",
                "line 308: comes after the summary (line 306): kept",
                "line 309: a second summary: skipped (the one on line 306 is kept)",
            ]
        );
    }

    #[test]
    fn telemetry_whose_station_time_goes_back_should_be_kept_and_warned() {
        let lines = vec![
            kit::header("C042"),
            kit::tel(0, 0, StateWord::Idle, 0),
            kit::tel(10, 1, StateWord::Idle, 0),
            kit::tel(5, 2, StateWord::Idle, 0),
            kit::tel(30, 3, StateWord::Idle, 0),
        ];
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(rec.telemetry.len(), 4);
        assert_eq!(
            messages(&rec),
            vec!["line 4: telemetry goes back 5 ms on the station's clock: kept"]
        );
        assert!(rec.telemetry.session_ms.is_sorted());
    }

    #[test]
    fn a_line_over_a_mebibyte_should_be_skipped_without_being_kept() {
        let lines = session();
        let mut bytes = kit::jsonl(&lines[..3]);
        bytes.extend(std::iter::repeat_n(b'z', 3 << 20));
        bytes.push(b'\n');
        bytes.extend_from_slice(&kit::jsonl(&lines[3..]));
        let rec = loaded(&bytes);
        assert_eq!(rec.status, RecordStatus::Complete);
        assert_eq!(
            messages(&rec),
            vec!["line 4: 3145728 bytes long, over the 1 MiB limit of a line: skipped"]
        );
    }

    #[test]
    fn warnings_past_the_limit_should_be_counted_not_listed() {
        let lines = session();
        let mut bytes = kit::jsonl(&lines[..1]);
        for _ in 0..MAX_WARNINGS + 500 {
            bytes.extend_from_slice(b"#!\n");
        }
        bytes.extend_from_slice(&kit::jsonl(&lines[1..]));
        let rec = loaded(&bytes);
        assert_eq!(rec.warnings.len(), MAX_WARNINGS + 1);
        let last = rec.warnings.last().expect("a last warning");
        assert_eq!(last.line_no, 2 + MAX_WARNINGS as u64);
        assert_eq!(
            last.message,
            "500 more warnings from this line on are not listed"
        );
        assert_eq!(rec.telemetry.len(), 300);
    }

    #[test]
    fn an_empty_file_should_be_refused_as_having_no_header() {
        let message = error(b"");
        assert!(message.contains("is empty: no header"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_json_should_be_refused_at_line_1() {
        let message = error(b"Dear diary,\ntoday I microneedled.\n");
        assert!(
            message.contains("is not a Punctum session record: line 1 is not JSON: expected"),
            "{message}"
        );
        let message = error(b"\n");
        assert!(
            message.contains("line 1 is not JSON: the line is blank"),
            "{message}"
        );
        let message = error(&vec![0_u8; 2 << 20]);
        assert!(
            message.contains("line 1 is not JSON: it is 2097152 bytes long"),
            "{message}"
        );
    }

    #[test]
    fn json_that_is_not_a_header_should_be_refused_saying_what_it_is() {
        let tel_first = kit::jsonl(&[kit::tel(0, 0, StateWord::Idle, 0)]);
        let message = error(&tel_first);
        assert!(
            message.contains(r#"line 1 is not a session header: it is a "tel" line"#),
            "{message}"
        );
        let message = error(b"[1,2]\n");
        assert!(
            message.contains("it is a JSON array, not an object"),
            "{message}"
        );
        let message = error(br#"{"type":"header","format":"other-thing","version":1}"#);
        assert!(
            message.contains(r#"its format is "other-thing", not "punctum-session""#),
            "{message}"
        );
        let message =
            error(br#"{"type":"header","format":"punctum-session","version":1,"utc_ms":5}"#);
        assert!(message.contains("missing field"), "{message}");
        let message = error(br#"{"type":"header","format":"punctum-session","version":0}"#);
        assert!(
            message.contains("format version 0 does not exist"),
            "{message}"
        );
    }

    #[test]
    fn a_newer_format_version_should_be_refused_even_with_fields_this_version_lacks() {
        let header = r#"{"type":"header","format":"punctum-session","version":6,"utc_ms":1,"hologram":{"x":1}}"#;
        let mut bytes = header.as_bytes().to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(&kit::jsonl(&session()[1..]));
        let message = error(&bytes);
        assert!(
            message.ends_with(
                "was written by a newer Punctum (format version 6; this station reads up to 5)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_missing_file_should_be_an_open_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nope.jsonl");
        let message = load(&path).expect_err("missing").to_string();
        assert!(
            message.starts_with(&format!("cannot open {}", path.display())),
            "{message}"
        );
    }

    #[test]
    fn progress_should_be_reported_and_cancel_should_stop_the_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut lines = vec![kit::header("C042")];
        lines.extend(kit::tel_run(0, 100_000, 10, 0, StateWord::Idle, 0));
        let bytes = kit::jsonl(&lines);
        let path = kit::write(dir.path(), "s.jsonl", &bytes);
        let size = bytes.len() as u64;
        let mut calls = Vec::new();
        let rec = load_with_progress(&path, &mut |read, total| {
            calls.push((read, total));
            true
        })
        .expect("loads");
        assert_eq!(rec.telemetry.len(), 10_000);
        assert_eq!(calls.first(), Some(&(0, size)));
        assert_eq!(calls.last(), Some(&(size, size)));
        assert!(calls.len() > 2, "{calls:?}");
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "{calls:?}");

        let mut seen = 0;
        let result = load_with_progress(&path, &mut |read, _| {
            seen += 1;
            read == 0
        });
        assert!(
            matches!(result, Err(LoadError::Cancelled { .. })),
            "{result:?}"
        );
        assert_eq!(seen, 2);
    }

    #[test]
    fn telemetry_should_follow_the_pen_clock_between_station_anchors() {
        // Station times jitter by up to 7 ms; the pen's clock is steady at 10 ms.
        let jitter = [0, 7, 2, 5, 1, 6, 0, 3];
        let mut lines = vec![kit::header("C042")];
        for (i, j) in (0..8_u32).zip(jitter) {
            let mut line = kit::tel(100 + i64::from(i) * 10 + j, i, StateWord::Idle, 0);
            if let crate::record::format::Line::Tel(t) = &mut line {
                t.t_ms = 50_000 + i * 10;
            }
            lines.push(line);
        }
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(
            rec.telemetry.session_ms,
            vec![100, 110, 120, 130, 140, 150, 160, 170]
        );
    }

    /// One sample: station time, n, pen time.
    fn tel_at(at_ms: i64, n: u32, t_ms: u32) -> crate::record::format::Line {
        let mut line = kit::tel(at_ms, n, StateWord::Idle, 0);
        if let crate::record::format::Line::Tel(t) = &mut line {
            t.t_ms = t_ms;
        }
        line
    }

    #[test]
    fn telemetry_should_reanchor_on_a_reboot_a_gap_or_a_drift_and_never_go_back() {
        let lines = vec![
            kit::header("C042"),
            tel_at(1000, 0, 9000),
            tel_at(1012, 1, 9010),
            // The pen rebooted: its clock starts again.
            tel_at(1500, 0, 20),
            tel_at(1508, 1, 30),
            // Samples 2..4 lost: re-anchored on the station's 1600.
            tel_at(1600, 5, 130),
            tel_at(1611, 6, 140),
            // The pen's clock says +10 ms, the station's +2000: consecutive samples,
            // so the station's wall clock stepped (a format 1 record has no other
            // clock): the axis follows the pen.
            tel_at(3611, 7, 150),
            // And stepped back 1.5 s: the pen's clock again.
            tel_at(2100, 8, 160),
        ];
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(
            rec.telemetry.session_ms,
            vec![1000, 1010, 1500, 1510, 1600, 1610, 1620, 1630]
        );
    }

    #[test]
    fn telemetry_should_stay_in_file_order_around_other_lines() {
        let lines = vec![
            kit::header("C042"),
            // Anchored on a late arrival: the pen's clock places the next one at 1020.
            tel_at(1010, 0, 1000),
            tel_at(1012, 1, 1010),
            // Written at 1015, after sample 1: sample 1 is not placed after it.
            kit::zone(1015, "cheeks"),
            tel_at(1016, 2, 1020),
            // Anchored early, then a line at 1050: the next sample is not before it.
            tel_at(1040, 3, 1030),
            kit::command(1050, 1, "RUN"),
            tel_at(1051, 4, 1040),
            tel_at(1052, 5, 1050),
            tel_at(1062, 6, 1060),
            // Stamped 1.5 s before the samples it follows: out of order in the file
            // itself, so it moves nothing.
            kit::command(-500, 2, "HALT"),
            tel_at(1072, 7, 1070),
        ];
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(
            rec.telemetry.session_ms,
            vec![1010, 1015, 1030, 1040, 1050, 1060, 1070, 1080]
        );
    }

    #[test]
    fn telemetry_before_the_header_time_should_sit_at_zero() {
        let lines = vec![
            kit::header("C042"),
            tel_at(-300, 0, 10),
            tel_at(-290, 1, 20),
        ];
        let rec = loaded(&kit::jsonl(&lines));
        assert_eq!(rec.telemetry.session_ms, vec![0, 0]);
        assert_eq!(rec.header.utc_ms, T0_MS);
    }
}
