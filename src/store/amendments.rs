//! Follow-up and adverse events added after a session (`amendments.jsonl`): the
//! client's file holds them, linked to the session; the session's record is never
//! edited. One line per amendment, appended and synced; a bad line is reported with
//! its number and left on disk.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{DataDir, Loaded, StoreError, jsonl};

/// The file's name in the data folder.
pub const AMENDMENTS_FILE: &str = "amendments.jsonl";

/// The kinds of follow-up event, by id.
pub const KINDS: [&str; 7] = [
    "redness_persistent",
    "hyperpigmentation",
    "infection",
    "allergic_reaction",
    "scarring",
    "follow_up",
    "other",
];

/// The severities, by id.
pub const SEVERITIES: [&str; 3] = ["mild", "moderate", "severe"];

/// The longest note, characters.
pub const NOTE_MAX_CHARS: usize = 2000;

/// One follow-up or adverse event, linked to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amendment {
    /// The client's pseudonym.
    pub client: String,
    /// The session it follows.
    pub session_id: String,
    /// When the event was seen (the clinic's date).
    pub date: Date,
    /// One of [`KINDS`].
    pub kind: String,
    /// One of [`SEVERITIES`].
    pub severity: String,
    /// What was seen and done.
    pub note: String,
    /// Who added it.
    pub by: String,
    /// When it was added.
    pub recorded_at: Timestamp,
}

impl Amendment {
    /// Checks the fields: known kind and severity, a date from the session's day to
    /// `today`, a note of at most [`NOTE_MAX_CHARS`] without control characters
    /// (line breaks allowed).
    ///
    /// # Errors
    /// Which field, and what it must be.
    pub fn check(&self, session_date: Date, today: Date) -> Result<(), String> {
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(format!(
                "unknown kind {:?}; valid: {}",
                self.kind,
                KINDS.join(" ")
            ));
        }
        if !SEVERITIES.contains(&self.severity.as_str()) {
            return Err(format!(
                "unknown severity {:?}; valid: {}",
                self.severity,
                SEVERITIES.join(" ")
            ));
        }
        if self.date < session_date {
            return Err(format!(
                "the date {} is before the session ({session_date})",
                self.date
            ));
        }
        if self.date > today {
            return Err(format!("the date {} is after today ({today})", self.date));
        }
        if self.note.trim().is_empty() {
            return Err("the note is empty: say what was seen".to_owned());
        }
        if self.note.chars().count() > NOTE_MAX_CHARS {
            return Err(format!(
                "the note is longer than {NOTE_MAX_CHARS} characters"
            ));
        }
        if self
            .note
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err("the note holds a control character".to_owned());
        }
        Ok(())
    }
}

/// Appends `amendment` (checked by the caller), synced before returning.
pub fn append(dir: &DataDir, amendment: &Amendment) -> Result<(), StoreError> {
    jsonl::append(&dir.path(AMENDMENTS_FILE), amendment)
}

/// Every amendment in the folder, with the file's bad lines.
pub fn read_all(dir: &DataDir) -> Result<Loaded<Amendment>, StoreError> {
    jsonl::read_all(&dir.path(AMENDMENTS_FILE))
}

/// The amendments of `session_id` whose record is at `record` (in a data folder's
/// `sessions/`): read from that data folder. `Ok(empty)` for a record outside a data
/// folder, or a folder with no amendments.
///
/// # Errors
/// The amendments file exists but cannot be read: why.
pub fn beside_record(record: &std::path::Path, session_id: &str) -> Result<Vec<Amendment>, String> {
    let Some(root) = record
        .parent()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == crate::record::writer::SESSIONS_DIR)
        })
        .and_then(std::path::Path::parent)
        .filter(|d| d.join(AMENDMENTS_FILE).exists())
    else {
        return Ok(Vec::new());
    };
    let data = DataDir::open(root).map_err(|e| e.to_string())?;
    for_session(&data, session_id).map_err(|e| e.to_string())
}

/// The amendments of `session_id`, in the order added (bad lines skipped).
pub fn for_session(dir: &DataDir, session_id: &str) -> Result<Vec<Amendment>, StoreError> {
    Ok(read_all(dir)?
        .entries
        .into_iter()
        .filter(|a| a.session_id == session_id)
        .collect())
}
