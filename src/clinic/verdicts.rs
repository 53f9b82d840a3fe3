//! What the clinic store refused, kept so that it stays refused while the store is
//! away, a restart included: the cartridges it said other sessions hold, and the
//! latest day it said each client's zone was treated. `clinic-verdicts.json`,
//! replaced whole at each change; treatment days older than [`KEEP_DAYS`] are dropped
//! when it is read (the 4-week rule needs 28).

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::Date;

use crate::store::StoreError;

/// The file in the data folder.
pub const VERDICTS_FILE: &str = "clinic-verdicts.json";

/// Treatment days kept, counted back from today.
pub const KEEP_DAYS: i64 = 60;

/// One client's zone, as the store said it was last treated (in another session).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Treated {
    /// The client.
    pub client: String,
    /// The zone's string id.
    pub zone: String,
    /// The day.
    pub date: Date,
}

/// The verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdicts {
    /// Cartridge id → the session (and station) the store said holds it.
    #[serde(default)]
    pub cartridges: BTreeMap<String, String>,
    /// Zones treated elsewhere, the latest day each.
    #[serde(default)]
    pub treatments: Vec<Treated>,
}

impl Verdicts {
    /// Reads the file (none: nothing known yet), dropping treatment days before
    /// `today` − [`KEEP_DAYS`].
    ///
    /// # Errors
    /// [`StoreError::Read`] when it cannot be read or is not this file: a verdict lost
    /// silently could let a used cartridge run.
    pub fn load(data_root: &Path, today: Date) -> Result<Self, StoreError> {
        let path = data_root.join(VERDICTS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let mut verdicts: Self = serde_json::from_slice(&bytes).map_err(|e| StoreError::Read {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let oldest = today
            .checked_sub(jiff::Span::new().days(KEEP_DAYS))
            .unwrap_or(today);
        verdicts.treatments.retain(|t| t.date >= oldest);
        Ok(verdicts)
    }

    /// Writes the file (atomically).
    ///
    /// # Errors
    /// The store's error.
    ///
    /// # Panics
    /// Never: plain data always serialises.
    pub fn save(&self, data_root: &Path) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(self).expect("plain data");
        crate::store::replace_file(&data_root.join(VERDICTS_FILE), &json)
    }

    /// The session the store said holds `cartridge`, if it said so.
    #[must_use]
    pub fn holder(&self, cartridge: &str) -> Option<&str> {
        self.cartridges.get(cartridge).map(String::as_str)
    }

    /// The latest day the store said `client`'s `zone` was treated.
    #[must_use]
    pub fn treated(&self, client: &str, zone: &str) -> Option<Date> {
        self.treatments
            .iter()
            .filter(|t| t.client == client && t.zone == zone)
            .map(|t| t.date)
            .max()
    }

    /// Every zone the store said `client` had treated, the latest day each.
    #[must_use]
    pub fn of_client(&self, client: &str) -> Vec<(String, Date)> {
        self.treatments
            .iter()
            .filter(|t| t.client == client)
            .map(|t| (t.zone.clone(), t.date))
            .collect()
    }

    /// Keeps that `client`'s `zone` was treated on `date` (the latest day wins).
    /// Whether anything changed.
    pub fn keep_treated(&mut self, client: &str, zone: &str, date: Date) -> bool {
        if let Some(t) = self
            .treatments
            .iter_mut()
            .find(|t| t.client == client && t.zone == zone)
        {
            if t.date >= date {
                return false;
            }
            t.date = date;
            return true;
        }
        self.treatments.push(Treated {
            client: client.to_owned(),
            zone: zone.to_owned(),
            date,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_survive_a_restart_and_old_days_go() {
        let dir = tempfile::tempdir().expect("test");
        let today: Date = "2026-12-01".parse().expect("test");
        let mut v = Verdicts::default();
        v.cartridges
            .insert("00000000000000C1".into(), "S-1 (station a)".into());
        assert!(v.keep_treated("C-1", "cheeks", "2026-11-30".parse().expect("test")));
        assert!(!v.keep_treated("C-1", "cheeks", "2026-11-01".parse().expect("test")));
        assert!(v.keep_treated("C-2", "nose", "2026-09-01".parse().expect("test")));
        v.save(dir.path()).expect("test");
        let back = Verdicts::load(dir.path(), today).expect("test");
        assert_eq!(back.holder("00000000000000C1"), Some("S-1 (station a)"));
        assert_eq!(
            back.treated("C-1", "cheeks"),
            Some("2026-11-30".parse().expect("test"))
        );
        assert_eq!(back.treated("C-2", "nose"), None, "over 60 days old");
        std::fs::write(dir.path().join(VERDICTS_FILE), b"{not json").expect("test");
        assert!(Verdicts::load(dir.path(), today).is_err());
    }
}
