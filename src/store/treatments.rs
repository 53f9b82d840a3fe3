//! Treatment history: which zone was treated for which client on which day, kept in
//! `treatments.jsonl` for the rule that a zone is not treated again within four weeks,
//! by any station that shares the data folder.
//!
//! A zone is **claimed** for a session just before the needle first starts in it
//! ([`TreatmentHistory::claim`]): under the file's exclusive lock the history reads
//! what other processes appended since its last read, asks the caller's rule whether
//! the zone may be treated, and appends the claim only then. Two stations treating
//! one client's cheeks cannot both pass. A claim whose start did not happen is
//! **released** by a later line (the earlier line stays).
//!
//! Zones are stored by their string id: the safety module owns the zone type and the
//! rule, and this store stays independent of both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::civil::Date;

use super::jsonl::Tail;
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
    /// This line releases the claim of (`client`, `zone`, `session_id`): the start it
    /// was made for did not happen. An earlier claim stays on file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl TreatmentRecord {
    /// A treatment (a claim) of `zone` for `client` on `date` in `session_id`.
    #[must_use]
    pub fn new(client: &str, zone: &str, date: Date, session_id: &str) -> Self {
        Self {
            client: client.to_owned(),
            zone: zone.to_owned(),
            date,
            session_id: session_id.to_owned(),
            released: false,
        }
    }
}

/// What [`TreatmentHistory::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneClaim {
    /// The zone is this session's to treat: `new` when this call wrote the claim.
    Claimed {
        /// This call wrote the claim (false: the session held it already).
        new: bool,
    },
    /// The caller's rule refused, on the latest treatment by another session.
    Refused {
        /// That treatment's day.
        date: Date,
        /// Its session.
        session_id: String,
    },
}

/// Every (client, zone) treated, with the day and the session of each treatment.
#[derive(Debug, Clone)]
pub struct TreatmentHistory {
    /// The history's file.
    path: PathBuf,
    /// Reads on from where the last read stopped.
    tail: Tail,
    /// Per client, per zone: (day, session) of each treatment, at most one per session.
    treated: BTreeMap<String, BTreeMap<String, Vec<(Date, String)>>>,
    /// One line per unreadable line of the file, as `file:line: reason`.
    warnings: Vec<String>,
}

impl TreatmentHistory {
    /// Loads the history from `treatments.jsonl` in `dir` (empty if the file is
    /// missing). Unreadable lines are left in the file and listed in [`Self::warnings`].
    pub fn load(dir: &DataDir) -> Result<TreatmentHistory, StoreError> {
        let path = dir.path(TREATMENTS_FILE);
        let mut history = TreatmentHistory {
            tail: Tail::new(&path),
            path,
            treated: BTreeMap::new(),
            warnings: Vec::new(),
        };
        history.warnings = history.refresh()?;
        Ok(history)
    }

    /// Takes in what was appended to the file since the last read (by other stations
    /// sharing the folder, too). Returns the warnings for new unreadable lines.
    pub fn refresh(&mut self) -> Result<Vec<String>, StoreError> {
        let loaded = self.tail.read_new::<TreatmentRecord>()?;
        let warnings = loaded.warnings(&self.path);
        for record in loaded.entries {
            self.apply(record);
        }
        Ok(warnings)
    }

    /// The latest day `zone` was treated for `client`, if ever. Lines may be out of
    /// date order (a clock fixed after the fact); the latest date wins, not the last line.
    #[must_use]
    pub fn last_treated(&self, client: &str, zone: &str) -> Option<Date> {
        self.latest(client, zone, None).map(|(date, _)| date)
    }

    /// The latest treatment of `zone` for `client` by a session other than
    /// `except_session` (all sessions with `None`): its day and session.
    #[must_use]
    pub fn latest(
        &self,
        client: &str,
        zone: &str,
        except_session: Option<&str>,
    ) -> Option<(Date, &str)> {
        self.treated
            .get(client)?
            .get(zone)?
            .iter()
            .filter(|(_, session)| Some(session.as_str()) != except_session)
            .max_by_key(|(date, _)| *date)
            .map(|(date, session)| (*date, session.as_str()))
    }

    /// Every zone treated for `client`, with its latest day.
    #[must_use]
    pub fn zones_for(&self, client: &str) -> BTreeMap<String, Date> {
        self.zones_for_other(client, None)
    }

    /// Every zone treated for `client` by a session other than `except_session`, with
    /// its latest day: what the same-zone interval judges a session on.
    #[must_use]
    pub fn zones_for_other(
        &self,
        client: &str,
        except_session: Option<&str>,
    ) -> BTreeMap<String, Date> {
        let Some(zones) = self.treated.get(client) else {
            return BTreeMap::new();
        };
        zones
            .keys()
            .filter_map(|zone| {
                self.latest(client, zone, except_session)
                    .map(|(date, _)| (zone.clone(), date))
            })
            .collect()
    }

    /// Claims `zone` for `client` in `session_id` on `date`, if `allowed` says yes to
    /// the latest treatment of that zone by another session (`None`: never treated):
    /// one step under the file's lock, on everything appended until then. A zone the
    /// session holds already is its own without the lock (it was judged when claimed):
    /// a start again in the session never waits on another station's lock.
    pub fn claim(
        &mut self,
        client: &str,
        zone: &str,
        date: Date,
        session_id: &str,
        allowed: impl FnOnce(Option<Date>) -> bool,
    ) -> Result<ZoneClaim, StoreError> {
        if self.held(client, zone, session_id) {
            return Ok(ZoneClaim::Claimed { new: false });
        }
        jsonl::under_lock(self, |history, locked| {
            let other = history
                .latest(client, zone, Some(session_id))
                .map(|(date, session)| (date, session.to_owned()));
            if !allowed(other.as_ref().map(|(date, _)| *date)) {
                let (date, session_id) = other.unwrap_or((date, String::new()));
                return Ok(ZoneClaim::Refused { date, session_id });
            }
            if history.held(client, zone, session_id) {
                return Ok(ZoneClaim::Claimed { new: false });
            }
            jsonl::append_folded(
                history,
                locked,
                TreatmentRecord::new(client, zone, date, session_id),
            )?;
            Ok(ZoneClaim::Claimed { new: true })
        })
    }

    /// Releases the claim of `zone` for `client` by `session_id`: the start it was made
    /// for did not happen. A line says so; the claim's line stays.
    pub fn release(
        &mut self,
        client: &str,
        zone: &str,
        date: Date,
        session_id: &str,
    ) -> Result<(), StoreError> {
        let record = TreatmentRecord {
            released: true,
            ..TreatmentRecord::new(client, zone, date, session_id)
        };
        jsonl::append_under_lock(self, record)
    }

    /// Records that `zone` was treated for `client` on `date` in `session_id`,
    /// appending it to the file and syncing before returning. A treatment already
    /// held for that session is not written again. On error nothing changes in memory.
    pub fn record(
        &mut self,
        client: &str,
        zone: &str,
        date: Date,
        session_id: &str,
    ) -> Result<(), StoreError> {
        self.claim(client, zone, date, session_id, |_| true)
            .map(|_| ())
    }

    /// Folds in a treatment read from a session record, without writing anything:
    /// the record is its durable copy. The history file and the records are both
    /// read at start, so a zone treated in a session whose history line was lost
    /// (a crash between the two) still counts.
    pub fn learn(&mut self, record: TreatmentRecord) {
        self.apply(record);
    }

    /// The unreadable lines found at load, as `file:line: reason`.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// `session_id` holds a treatment of (`client`, `zone`) (claimed, not released).
    #[must_use]
    pub fn held(&self, client: &str, zone: &str, session_id: &str) -> bool {
        self.treated
            .get(client)
            .and_then(|zones| zones.get(zone))
            .is_some_and(|list| list.iter().any(|(_, s)| s == session_id))
    }

    /// Folds a line in: a treatment (at most one per session, the earliest day kept),
    /// or the release of one.
    fn apply(&mut self, record: TreatmentRecord) {
        let list = self
            .treated
            .entry(record.client)
            .or_default()
            .entry(record.zone)
            .or_default();
        if record.released {
            list.retain(|(_, s)| *s != record.session_id);
        } else if let Some(held) = list.iter_mut().find(|(_, s)| *s == record.session_id) {
            held.0 = held.0.max(record.date);
        } else {
            list.push((record.date, record.session_id));
        }
    }
}

impl jsonl::Folded for TreatmentHistory {
    type Record = TreatmentRecord;

    fn tail_mut(&mut self) -> &mut Tail {
        &mut self.tail
    }

    fn apply(&mut self, record: TreatmentRecord) {
        TreatmentHistory::apply(self, record);
    }

    fn warn(&mut self, warnings: Vec<String>) {
        self.warnings.extend(warnings);
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
    fn a_treatment_of_the_same_session_is_written_once() {
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
            released: false,
        });
        assert_eq!(history.last_treated("C-1", "cheeks"), Some(date));
        assert!(!dir.path(TREATMENTS_FILE).exists());
    }
}
