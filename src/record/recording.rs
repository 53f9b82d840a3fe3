//! A session record in memory: the header, the telemetry in columns, and every other
//! line in order. The loader ([`super::load`]) fills it; replay, the report and the
//! library read it.
//!
//! Times are session milliseconds: from the header's `utc_ms`. Telemetry is placed
//! on that axis by the pen's own clock (steady to the millisecond), re-anchored on
//! the station's clock whenever the pen's clock jumps (a reboot, a wrap, a gap), so
//! that samples are evenly spaced where the pen sent them evenly and events (stamped
//! by the station) still line up within a frame.

use std::path::PathBuf;

use super::format::{Header, Line, StateWord, SummaryLine};

/// The telemetry of a record, one column per field: a 30-minute session at 1000 Hz
/// (1.8 M samples) takes [`TelColumns::BYTES_PER_SAMPLE`] × 1.8 M bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelColumns {
    /// Session time of each sample, ms (non-decreasing).
    pub session_ms: Vec<u32>,
    /// The pen's sample counter `n`.
    pub n: Vec<u32>,
    /// Pen time, ms.
    pub t_ms: Vec<u32>,
    /// Pen state.
    pub state: Vec<StateWord>,
    /// Measured speed, rpm.
    pub rpm: Vec<i32>,
    /// Actual depth, µm.
    pub depth_um: Vec<i32>,
    /// Motor current, mA.
    pub current_ma: Vec<i32>,
    /// Temperature, 0.1 °C.
    pub temp_dc: Vec<i32>,
}

/// One telemetry sample read back from the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelSample {
    /// Session time, ms.
    pub session_ms: u32,
    /// The pen's sample counter.
    pub n: u32,
    /// Pen time, ms.
    pub t_ms: u32,
    /// Pen state.
    pub state: StateWord,
    /// Measured speed, rpm.
    pub rpm: i32,
    /// Actual depth, µm.
    pub depth_um: i32,
    /// Motor current, mA.
    pub current_ma: i32,
    /// Temperature, 0.1 °C.
    pub temp_dc: i32,
}

impl TelColumns {
    /// Bytes one sample takes in the columns (not counting spare capacity).
    pub const BYTES_PER_SAMPLE: usize = 4 * 7 + std::mem::size_of::<StateWord>();

    /// Samples held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.session_ms.len()
    }

    /// No samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.session_ms.is_empty()
    }

    /// Appends a sample.
    pub fn push(&mut self, s: TelSample) {
        self.session_ms.push(s.session_ms);
        self.n.push(s.n);
        self.t_ms.push(s.t_ms);
        self.state.push(s.state);
        self.rpm.push(s.rpm);
        self.depth_um.push(s.depth_um);
        self.current_ma.push(s.current_ma);
        self.temp_dc.push(s.temp_dc);
    }

    /// Sample `i`, if there is one.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<TelSample> {
        Some(TelSample {
            session_ms: *self.session_ms.get(i)?,
            n: *self.n.get(i)?,
            t_ms: *self.t_ms.get(i)?,
            state: *self.state.get(i)?,
            rpm: *self.rpm.get(i)?,
            depth_um: *self.depth_um.get(i)?,
            current_ma: *self.current_ma.get(i)?,
            temp_dc: *self.temp_dc.get(i)?,
        })
    }

    /// How many samples lie at or before `session_ms` (the index of the first later one).
    #[must_use]
    pub fn count_until(&self, session_ms: u32) -> usize {
        self.session_ms.partition_point(|&t| t <= session_ms)
    }

    /// The last sample at or before `session_ms`.
    #[must_use]
    pub fn last_at(&self, session_ms: u32) -> Option<TelSample> {
        self.count_until(session_ms)
            .checked_sub(1)
            .and_then(|i| self.get(i))
    }

    /// Heap bytes held by the columns, spare capacity included.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        4 * (self.session_ms.capacity()
            + self.n.capacity()
            + self.t_ms.capacity()
            + self.rpm.capacity()
            + self.depth_um.capacity()
            + self.current_ma.capacity()
            + self.temp_dc.capacity())
            + self.state.capacity() * std::mem::size_of::<StateWord>()
    }

    /// Gives back spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.session_ms.shrink_to_fit();
        self.n.shrink_to_fit();
        self.t_ms.shrink_to_fit();
        self.state.shrink_to_fit();
        self.rpm.shrink_to_fit();
        self.depth_um.shrink_to_fit();
        self.current_ma.shrink_to_fit();
        self.temp_dc.shrink_to_fit();
    }
}

/// A line other than telemetry, header and summary, placed on the session axis.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedLine {
    /// Session time, ms (may be negative only for a clock that stepped back).
    pub session_ms: i64,
    /// The line number in the file, from 1.
    pub line_no: u64,
    /// How many telemetry samples (of [`Recording::telemetry`]) came before it in the
    /// file: the exact order the station wrote, which the figures follow.
    pub tel_before: usize,
    /// The line.
    pub line: Line,
}

/// One item of a record in file order: see [`Recording::for_each_in_file_order`].
#[derive(Debug, Clone, Copy)]
pub enum InFileOrder<'a> {
    /// Telemetry sample `index` of [`Recording::telemetry`].
    Sample(usize),
    /// A line other than telemetry.
    Line(&'a TimedLine),
}

/// Whether the record ended normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// It ends with its summary.
    Complete,
    /// It ends without one: the station stopped (a kill, a crash, a power cut, a full
    /// disk) before the session ended. Everything before the cut is loaded.
    Interrupted,
}

/// Something wrong with one line that the loader skipped or repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineWarning {
    /// The line number, from 1.
    pub line_no: u64,
    /// What is wrong and what was done.
    pub message: String,
}

impl std::fmt::Display for LineWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line_no, self.message)
    }
}

/// A whole record, loaded.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// Its telemetry.
    pub telemetry: TelColumns,
    /// Every other line, in file order (which is time order).
    pub lines: Vec<TimedLine>,
    /// The closing summary, when the session ended normally.
    pub summary: Option<SummaryLine>,
    /// Complete or interrupted.
    pub status: RecordStatus,
    /// Lines skipped or repaired, in file order.
    pub warnings: Vec<LineWarning>,
}

impl Recording {
    /// Visits every telemetry sample and every other line in the order the station
    /// wrote them.
    pub fn for_each_in_file_order<'a>(&'a self, mut visit: impl FnMut(InFileOrder<'a>)) {
        let mut next_sample = 0;
        for line in &self.lines {
            let upto = line.tel_before.min(self.telemetry.len());
            while next_sample < upto {
                visit(InFileOrder::Sample(next_sample));
                next_sample += 1;
            }
            visit(InFileOrder::Line(line));
        }
        for i in next_sample..self.telemetry.len() {
            visit(InFileOrder::Sample(i));
        }
    }

    /// The session's length, ms: from the header to the summary, or to the last line
    /// of an interrupted record.
    #[must_use]
    pub fn duration_ms(&self) -> i64 {
        if let Some(summary) = &self.summary {
            return summary.duration_ms;
        }
        let last_tel = self.telemetry.session_ms.last().map(|&t| i64::from(t));
        let last_line = self.lines.last().map(|l| l.session_ms);
        last_tel.max(last_line).unwrap_or(0).max(0)
    }
}
