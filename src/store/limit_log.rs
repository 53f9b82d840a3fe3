//! The zone-limit change log (`zone-limit-changes.jsonl`), and the zone table the
//! station last ran with (`zones.last.json`).
//!
//! At start the station compares the clinic's current table with the last one; each
//! zone whose depth limit differs is logged with who accepted the change, so a limit
//! never changes without a trace.

use std::fs;
use std::io;

use jiff::Timestamp;

use super::{DataDir, Loaded, StoreError, jsonl, replace_file};

/// The change log's file in the data folder.
pub const LIMIT_CHANGES_FILE: &str = "zone-limit-changes.jsonl";

/// The last zone table's file in the data folder.
pub const ZONE_TABLE_FILE: &str = "zones.last.json";

/// One change of a zone's depth limit: a line of `zone-limit-changes.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitChangeRecord {
    /// The zone's string id.
    pub zone: String,
    /// The limit before the change, in µm.
    pub old_limit_um: i32,
    /// The limit after the change, in µm.
    pub new_limit_um: i32,
    /// Who made or accepted the change.
    pub who: String,
    /// When.
    pub at: Timestamp,
    /// A hash of the zone table the new limit comes from.
    pub table_hash: String,
    /// Why, when an admin changed it at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Appends `record` to `zone-limit-changes.jsonl` in `dir`, synced before returning.
pub fn append_limit_change(dir: &DataDir, record: &LimitChangeRecord) -> Result<(), StoreError> {
    jsonl::append(&dir.path(LIMIT_CHANGES_FILE), record)
}

/// Reads every change recorded in `dir`; unreadable lines are reported, not dropped.
pub fn read_limit_changes(dir: &DataDir) -> Result<Loaded<LimitChangeRecord>, StoreError> {
    jsonl::read_all(&dir.path(LIMIT_CHANGES_FILE))
}

/// The text of the zone table the station last ran with, or `None` if none was
/// stored yet. The text is returned as stored: parsing it is the caller's business.
pub fn last_zone_table(dir: &DataDir) -> Result<Option<String>, StoreError> {
    let path = dir.path(ZONE_TABLE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Includes a file that is not UTF-8 (`InvalidData`).
        Err(source) => Err(StoreError::Read { path, source }),
    }
}

/// Stores `json` as the last zone table, replacing the previous one atomically: it
/// is written to a temporary file (mode 0600), synced, then renamed over the old
/// one, so after a crash the file holds either the old table or the new, never half.
pub fn store_zone_table(dir: &DataDir, json: &str) -> Result<(), StoreError> {
    replace_file(&dir.path(ZONE_TABLE_FILE), json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::temp_path_for;
    use super::super::test_support::{Unwritable, mode_of};
    use super::*;

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
        (tmp, dir)
    }

    fn change(zone: &str, old_limit_um: i32, new_limit_um: i32) -> LimitChangeRecord {
        LimitChangeRecord {
            zone: zone.to_owned(),
            old_limit_um,
            new_limit_um,
            who: "dr. lee".to_owned(),
            at: Timestamp::from_second(1_700_000_000).expect("timestamp"),
            table_hash: "ab12".to_owned(),
            reason: None,
        }
    }

    #[test]
    fn limit_log_round_trips() {
        let (_tmp, dir) = data_dir();
        assert!(read_limit_changes(&dir).expect("read").entries.is_empty());
        append_limit_change(&dir, &change("forehead", 500, 750)).expect("write");
        append_limit_change(&dir, &change("neck", 250, 200)).expect("write");
        let loaded = read_limit_changes(&dir).expect("read");
        assert_eq!(
            loaded.entries,
            vec![change("forehead", 500, 750), change("neck", 250, 200)]
        );
        assert!(loaded.bad_lines.is_empty());
        assert_eq!(mode_of(&dir.path(LIMIT_CHANGES_FILE)), 0o600);
    }

    #[test]
    fn zone_table_round_trips_and_is_replaced_whole() {
        let (_tmp, dir) = data_dir();
        assert_eq!(last_zone_table(&dir).expect("read"), None);
        store_zone_table(&dir, "{\"zones\":[1]}").expect("write");
        assert_eq!(
            last_zone_table(&dir).expect("read").as_deref(),
            Some("{\"zones\":[1]}")
        );
        store_zone_table(&dir, "{}").expect("write");
        assert_eq!(last_zone_table(&dir).expect("read").as_deref(), Some("{}"));
        assert_eq!(mode_of(&dir.path(ZONE_TABLE_FILE)), 0o600);
        assert!(!temp_path_for(&dir.path(ZONE_TABLE_FILE)).exists());
    }

    #[test]
    fn store_replaces_a_stale_temp_file_and_a_loose_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_tmp, dir) = data_dir();
        let table = dir.path(ZONE_TABLE_FILE);
        fs::write(&table, "old").expect("fs");
        fs::set_permissions(&table, fs::Permissions::from_mode(0o644)).expect("fs");
        let temp = temp_path_for(&dir.path(ZONE_TABLE_FILE));
        fs::write(&temp, "half a tab").expect("fs");
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o666)).expect("fs");

        store_zone_table(&dir, "new").expect("write");
        assert_eq!(last_zone_table(&dir).expect("read").as_deref(), Some("new"));
        assert_eq!(mode_of(&table), 0o600);
        assert!(!temp.exists());
    }

    #[test]
    fn failed_store_leaves_the_old_table() {
        let (_tmp, dir) = data_dir();
        store_zone_table(&dir, "old").expect("write");
        // A folder where the temporary file goes makes the write fail, for root too.
        let temp = temp_path_for(&dir.path(ZONE_TABLE_FILE));
        fs::create_dir(&temp).expect("fs");
        fs::write(temp.join("x"), "x").expect("fs");
        let err = store_zone_table(&dir, "new").expect_err("should fail");
        assert!(matches!(err, StoreError::Write { .. }), "{err}");
        assert!(err.to_string().contains(".tmp"), "{err}");
        assert_eq!(last_zone_table(&dir).expect("read").as_deref(), Some("old"));
    }

    #[test]
    fn write_errors_are_returned() {
        let (_tmp, dir) = data_dir();
        // Dropped before `_tmp`, so the folder is writable again for its removal.
        let _guard = Unwritable::new(dir.root());
        let err = append_limit_change(&dir, &change("neck", 1, 2)).expect_err("should fail");
        assert!(err.to_string().contains(LIMIT_CHANGES_FILE), "{err}");
        let err = store_zone_table(&dir, "{}").expect_err("should fail");
        assert!(matches!(err, StoreError::Write { .. }), "{err}");
    }

    #[test]
    fn a_table_that_is_not_text_is_a_read_error() {
        let (_tmp, dir) = data_dir();
        fs::write(dir.path(ZONE_TABLE_FILE), b"\xff\xfe").expect("fs");
        let err = last_zone_table(&dir).expect_err("should fail");
        assert!(matches!(err, StoreError::Read { .. }), "{err}");
        assert!(err.to_string().contains(ZONE_TABLE_FILE), "{err}");
    }
}
