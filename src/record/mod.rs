//! Session records: every session as a JSON Lines file in the data folder, written
//! while it runs, read back for replay, the report and the session library.
//!
//! - [`format`]: the lines, the file's vocabulary (`docs/session-format.md`).
//! - [`recording`]: a record in memory, telemetry in columns.
//! - [`writer`]: the recorder thread that writes a session as it runs.
//!
//! **Boundary:** this module knows the file format and nothing of the safety rules;
//! the station feeds the writer, and the readers never modify a file.

pub mod format;
pub mod recording;
pub mod writer;

pub use format::{FORMAT_NAME, FORMAT_VERSION, Line};
pub use recording::{LineWarning, RecordStatus, Recording, TelColumns, TelSample, TimedLine};
