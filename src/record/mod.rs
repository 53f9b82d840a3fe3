//! Session records: every session as a JSON Lines file in the data folder, written
//! while it runs, read back for replay, the report and the session library.
//!
//! - [`format`]: the lines, the file's vocabulary (`docs/session-format.md`).
//! - [`recording`]: a record in memory, telemetry in columns.
//! - [`writer`]: the recorder thread that writes a session as it runs.
//! - [`lines`]: splitting a file of any size into lines through one bounded buffer.
//! - [`load`]: reading a record back, with a warning per bad line.
//! - [`library`]: the index of past sessions in the data folder.
//! - [`figures`]: the per-zone figures by one rule, for the live summary, the report
//!   and replay.
//! - [`report`]: a record's figures recomputed from its lines, as text, JSON or CSV.
//! - [`report_cmd`]: `punctum report`.
//!
//! **Boundary:** this module knows the file format and nothing of the safety rules;
//! the station feeds the writer, and the readers never modify a file.

#[cfg(test)]
mod clock_tests;
pub mod figures;
pub mod format;
pub mod library;
pub mod lines;
pub mod load;
pub mod recording;
pub mod report;
pub mod report_cmd;
pub mod sign;
#[cfg(test)]
mod testkit;
pub mod writer;

pub use format::{FORMAT_NAME, FORMAT_VERSION, Line};
pub use library::{Library, SessionEntry};
pub use load::{LoadError, load, load_with_progress};
pub use recording::{
    InFileOrder, LineWarning, RecordStatus, Recording, TelColumns, TelSample, TimedLine,
};
