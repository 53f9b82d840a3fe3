//! Treatment history: which zone was treated for which client on which day, kept in
//! `treatments.jsonl` for the rule that a zone is not treated again within four weeks.
//!
//! Zones are stored by their string id: the safety module owns the zone type and the
//! rule, and this store stays independent of both.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use jiff::civil::Date;

use super::{DataDir, StoreError, jsonl};

/// The history's file in the data folder.
pub const TREATMENTS_FILE: &str = "treatments.jsonl";

/// One treated zone: a line of `treatments.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TreatmentRecord {
    /// The client, as the station identifies them.
    pub client: String,
    /// The zone's string id.
    pub zone: String,
    /// The day it was treated (the clinic's local date).
    pub date: Date,
    /// The session it was treated in.
    pub session_id: String,
}

/// The latest treatment day of every (client, zone).
#[derive(Debug, Clone)]
pub struct TreatmentHistory {
    /// The history's file.
    path: PathBuf,
    /// Latest day per zone, per client.
    latest: BTreeMap<String, BTreeMap<String, Date>>,
    /// Every record read or written, so an identical record is not appended twice.
    recorded: HashSet<TreatmentRecord>,
    /// One line per unreadable line of the file, as `file:line: reason`.
    warnings: Vec<String>,
}

impl TreatmentHistory {
    /// Loads the history from `treatments.jsonl` in `dir` (empty if the file is
    /// missing). Unreadable lines are left in the file and listed in [`Self::warnings`].
    pub fn load(dir: &DataDir) -> Result<TreatmentHistory, StoreError> {
        let path = dir.path(TREATMENTS_FILE);
        let loaded = jsonl::read_all::<TreatmentRecord>(&path)?;
        let warnings = loaded.warnings(&path);
        let mut history = TreatmentHistory {
            path,
            latest: BTreeMap::new(),
            recorded: HashSet::new(),
            warnings,
        };
        for record in loaded.entries {
            history.insert(record);
        }
        Ok(history)
    }

    /// The latest day `zone` was treated for `client`, if ever. Lines may be out of
    /// date order (a clock fixed after the fact); the latest date wins, not the last line.
    #[must_use]
    pub fn last_treated(&self, client: &str, zone: &str) -> Option<Date> {
        self.latest.get(client)?.get(zone).copied()
    }

    /// Every zone treated for `client`, with its latest day.
    #[must_use]
    pub fn zones_for(&self, client: &str) -> BTreeMap<String, Date> {
        self.latest.get(client).cloned().unwrap_or_default()
    }

    /// Records that `zone` was treated for `client` on `date` in `session_id`,
    /// appending it to the file and syncing before returning. An identical record
    /// already held is not written again. On error nothing changes in memory.
    pub fn record(
        &mut self,
        client: &str,
        zone: &str,
        date: Date,
        session_id: &str,
    ) -> Result<(), StoreError> {
        let record = TreatmentRecord {
            client: client.to_owned(),
            zone: zone.to_owned(),
            date,
            session_id: session_id.to_owned(),
        };
        if self.recorded.contains(&record) {
            return Ok(());
        }
        jsonl::append(&self.path, &record)?;
        self.insert(record);
        Ok(())
    }

    /// Folds in a treatment read from a session record, without writing anything:
    /// the record is its durable copy. The history file and the records are both
    /// read at start, so a zone treated in a session whose history line was lost
    /// (a crash between the two) still counts.
    pub fn learn(&mut self, record: TreatmentRecord) {
        if !self.recorded.contains(&record) {
            self.insert(record);
        }
    }

    /// The unreadable lines found at load, as `file:line: reason`.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Folds a record into the latest-day map.
    fn insert(&mut self, record: TreatmentRecord) {
        let day = self
            .latest
            .entry(record.client.clone())
            .or_default()
            .entry(record.zone.clone())
            .or_insert(record.date);
        *day = (*day).max(record.date);
        self.recorded.insert(record);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use jiff::civil::date;

    use super::super::test_support::{Unwritable, mode_of};
    use super::*;

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
        (tmp, dir)
    }

    #[test]
    fn last_treated_picks_the_latest_date_not_the_last_line() {
        let (_tmp, dir) = data_dir();
        let mut history = TreatmentHistory::load(&dir).expect("load");
        history
            .record("ann", "forehead", date(2025, 3, 1), "s1")
            .expect("ok");
        history
            .record("ann", "forehead", date(2025, 5, 2), "s2")
            .expect("ok");
        history
            .record("ann", "forehead", date(2025, 4, 9), "s3")
            .expect("ok");
        history
            .record("bob", "forehead", date(2025, 6, 1), "s4")
            .expect("ok");
        assert_eq!(
            history.last_treated("ann", "forehead"),
            Some(date(2025, 5, 2))
        );
        assert_eq!(history.last_treated("ann", "cheek-left"), None);
        assert_eq!(history.last_treated("carl", "forehead"), None);

        let reloaded = TreatmentHistory::load(&dir).expect("load");
        assert_eq!(
            reloaded.last_treated("ann", "forehead"),
            Some(date(2025, 5, 2))
        );
        assert_eq!(
            reloaded.last_treated("bob", "forehead"),
            Some(date(2025, 6, 1))
        );
        assert!(reloaded.warnings().is_empty());
    }

    #[test]
    fn zones_for_gives_the_latest_date_per_zone() {
        let (_tmp, dir) = data_dir();
        let mut history = TreatmentHistory::load(&dir).expect("load");
        history
            .record("ann", "forehead", date(2025, 3, 1), "s1")
            .expect("ok");
        history
            .record("ann", "neck", date(2025, 3, 1), "s1")
            .expect("ok");
        history
            .record("ann", "forehead", date(2025, 4, 1), "s2")
            .expect("ok");
        history
            .record("bob", "chin", date(2025, 4, 1), "s3")
            .expect("ok");
        let expected = BTreeMap::from([
            ("forehead".to_owned(), date(2025, 4, 1)),
            ("neck".to_owned(), date(2025, 3, 1)),
        ]);
        assert_eq!(history.zones_for("ann"), expected);
        assert_eq!(
            TreatmentHistory::load(&dir).expect("load").zones_for("ann"),
            expected
        );
        assert!(history.zones_for("nobody").is_empty());
    }

    #[test]
    fn an_identical_record_is_written_once() {
        let (_tmp, dir) = data_dir();
        let mut history = TreatmentHistory::load(&dir).expect("load");
        history
            .record("ann", "neck", date(2025, 3, 1), "s1")
            .expect("ok");
        history
            .record("ann", "neck", date(2025, 3, 1), "s1")
            .expect("ok");
        let path = dir.path(TREATMENTS_FILE);
        assert_eq!(fs::read_to_string(&path).expect("fs").lines().count(), 1);
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn bad_lines_become_warnings_and_the_file_is_unchanged() {
        let (_tmp, dir) = data_dir();
        let path = dir.path(TREATMENTS_FILE);
        let content = concat!(
            "{\"client\":\"ann\",\"zone\":\"neck\",\"date\":\"2025-03-01\",\"session_id\":\"s1\"}\n",
            "{\"client\":\"ann\",\"zone\":\"neck\",\"date\":\"2025-02-30\",\"session_id\":\"s2\"}\n",
            "{\"client\":\"ann\",\"zone\":\"chin\",\"date\":\"2025-03-02\",\"session_id\":\"s1\"}\n",
            "{\"client\":\"ann\",\"zone\":\"neck\",\"da"
        );
        fs::write(&path, content).expect("fs");
        let history = TreatmentHistory::load(&dir).expect("load");
        assert_eq!(history.last_treated("ann", "neck"), Some(date(2025, 3, 1)));
        assert_eq!(history.last_treated("ann", "chin"), Some(date(2025, 3, 2)));
        let prefix = path.display().to_string();
        let warnings = history.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!("{prefix}:2: ")),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with(&format!("{prefix}:4: ")),
            "{warnings:?}"
        );
        assert_eq!(fs::read_to_string(&path).expect("fs"), content);
    }

    #[test]
    fn write_error_is_returned_and_memory_is_unchanged() {
        let (_tmp, dir) = data_dir();
        let mut history = TreatmentHistory::load(&dir).expect("load");
        // Dropped before `_tmp`, so the folder is writable again for its removal.
        let _guard = Unwritable::new(dir.root());
        let err = history
            .record("ann", "neck", date(2025, 3, 1), "s1")
            .expect_err("should fail");
        assert!(matches!(err, StoreError::Write { .. }), "{err}");
        assert!(err.to_string().contains(TREATMENTS_FILE), "{err}");
        assert_eq!(history.last_treated("ann", "neck"), None);
    }

    #[test]
    fn a_treatment_learned_from_a_record_counts_and_writes_nothing() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path()).expect("data dir");
        let mut history = TreatmentHistory::load(&dir).expect("load");
        let date = jiff::civil::date(2026, 11, 2);
        history.learn(TreatmentRecord {
            client: "C-1".into(),
            zone: "cheeks".into(),
            date,
            session_id: "S-1".into(),
        });
        assert_eq!(history.last_treated("C-1", "cheeks"), Some(date));
        assert!(!dir.path(TREATMENTS_FILE).exists());
    }
}
