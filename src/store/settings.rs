//! The station's settings: `settings.json` in the data folder, replaced whole.
//!
//! | key | meaning |
//! |---|---|
//! | `zones_file` | a clinic's zone table (the console's and window's `--zones` win over it) |
//! | `alarm_volume_pct` | the alarms' volume, 10–100 % (default 70; high-priority alarms play at 50 % at least) |
//! | `numbing_min_contact_min` | the numbing cream's minimum contact time before needling, 1–120 min (default 20) |
//! | `numbing_max_contact_min` | the end of its contact window, from the minimum to 240 min (default 40) |
//! | `test_spot_wait_min` | the wait before a test spot's reaction is read, 0–180 min (default 15) |
//! | `clinic_name` | the clinic's name on the hand-outs (default: none, the pages say "Punctum") |
//! | `clinic_strict` | with a clinic store: nothing starts while it cannot be reached (default false: a new cartridge needs a sealed-pack confirmation instead) |
//!
//! A file that is not JSON refuses the station's start (a zone table named in it must
//! not be silently ignored), and so do procedure times out of range (a numbing time
//! the clinic set must not silently become another). A volume out of range is
//! reported and the default used: an alarm louder than set is better than none. Keys this version does not know are
//! kept when the station saves a change.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DataDir, StoreError, replace_file};
use crate::safety::procedure::{self, ProcedureSettings};
use crate::sound::signal::{VOLUME_DEFAULT_PCT, check_volume};

/// The file's name in the data folder.
pub const SETTINGS_FILE: &str = "settings.json";

/// The idle lock's default, minutes.
pub const IDLE_LOCK_MIN_DEFAULT: u32 = 10;

/// The idle lock's range, minutes: at least a minute (a lock that falls mid-sentence
/// is a nuisance); at most an hour (Aesthetic Record's longest is 30 min).
pub const IDLE_LOCK_MIN_RANGE: std::ops::RangeInclusive<u32> = 1..=60;

/// Refuses an idle time outside [`IDLE_LOCK_MIN_RANGE`].
pub fn check_idle_lock(minutes: u32) -> Result<(), String> {
    if IDLE_LOCK_MIN_RANGE.contains(&minutes) {
        Ok(())
    } else {
        Err(format!(
            "idle_lock_min {minutes} refused: {} to {} minutes",
            IDLE_LOCK_MIN_RANGE.start(),
            IDLE_LOCK_MIN_RANGE.end()
        ))
    }
}

/// The settings, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StationSettings {
    /// A clinic's zone table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones_file: Option<PathBuf>,
    /// The alarms' volume, %.
    pub alarm_volume_pct: u8,
    /// The numbing cream's minimum contact time, minutes.
    pub numbing_min_contact_min: u32,
    /// The end of the numbing cream's contact window, minutes.
    pub numbing_max_contact_min: u32,
    /// The wait before a test spot's reaction is read, minutes.
    pub test_spot_wait_min: u32,
    /// The clinic's name, for the hand-outs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinic_name: Option<String>,
    /// Idle time before the station locks, minutes ([`IDLE_LOCK_MIN_RANGE`]).
    pub idle_lock_min: u32,
    /// With a clinic store: nothing starts while it cannot be reached.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clinic_strict: bool,
    /// Keys a later version wrote: kept as they are.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Default for StationSettings {
    fn default() -> Self {
        Self {
            zones_file: None,
            alarm_volume_pct: VOLUME_DEFAULT_PCT,
            numbing_min_contact_min: procedure::NUMBING_MIN_CONTACT_MIN_DEFAULT,
            numbing_max_contact_min: procedure::NUMBING_MAX_CONTACT_MIN_DEFAULT,
            test_spot_wait_min: procedure::TEST_SPOT_WAIT_MIN_DEFAULT,
            clinic_name: None,
            idle_lock_min: IDLE_LOCK_MIN_DEFAULT,
            clinic_strict: false,
            other: serde_json::Map::new(),
        }
    }
}

impl StationSettings {
    /// The procedure's times.
    #[must_use]
    pub fn procedure(&self) -> ProcedureSettings {
        ProcedureSettings {
            numbing_min_contact_min: self.numbing_min_contact_min,
            numbing_max_contact_min: self.numbing_max_contact_min,
            test_spot_wait_min: self.test_spot_wait_min,
        }
    }

    /// Reads the settings: the defaults when there is no file, and a warning when a
    /// value was out of range and its default used.
    ///
    /// # Errors
    /// The file cannot be read or is not settings JSON: what and why, with its path.
    pub fn load(dir: &DataDir) -> Result<(Self, Option<String>), String> {
        let path = dir.path(SETTINGS_FILE);
        let text = match crate::files::read_text(&path, crate::files::MAX_TEXT_FILE_BYTES) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::default(), None));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not valid settings JSON: {e}", path.display()))?;
        // The volume is checked on its own, whatever its JSON type (256, -3, 50.5,
        // "70", null): a bad one costs the setting, never the station's start.
        let mut warning = None;
        if let Some(object) = value.as_object_mut()
            && let Some(volume) = object.get("alarm_volume_pct")
        {
            let checked = volume
                .as_i64()
                .ok_or_else(|| format!("alarm volume {volume} refused: it must be a whole number"))
                .and_then(check_volume);
            if let Err(why) = checked {
                object.remove("alarm_volume_pct");
                warning = Some(format!(
                    "{}: {why}; the default {VOLUME_DEFAULT_PCT} % is used",
                    path.display()
                ));
            }
        }
        let settings: Self = serde_json::from_value(value)
            .map_err(|e| format!("{} is not valid settings JSON: {e}", path.display()))?;
        settings
            .procedure()
            .check()
            .map_err(|why| format!("{}: {why}", path.display()))?;
        check_idle_lock(settings.idle_lock_min)
            .map_err(|why| format!("{}: {why}", path.display()))?;
        // Keys this version does not know are kept (a later version wrote them), and
        // said: a misspelt setting must not pass for the default unnoticed.
        if !settings.other.is_empty() {
            let keys: Vec<&str> = settings.other.keys().map(String::as_str).collect();
            let unknown = format!(
                "{}: unknown key{} {} kept, not used by this version",
                path.display(),
                if keys.len() == 1 { "" } else { "s" },
                keys.join(", ")
            );
            warning = Some(match warning {
                Some(w) => format!("{w}; {unknown}"),
                None => unknown,
            });
        }
        Ok((settings, warning))
    }

    /// Stores the settings, replacing the file whole.
    pub fn save(&self, dir: &DataDir) -> Result<(), StoreError> {
        let path = dir.path(SETTINGS_FILE);
        let mut json = serde_json::to_vec_pretty(self).map_err(|source| StoreError::Encode {
            path: path.clone(),
            source,
        })?;
        json.push(b'\n');
        replace_file(&path, &json)
    }

    /// Sets the alarm volume and stores it.
    ///
    /// # Errors
    /// The volume is out of range (nothing changes), or the file cannot be written.
    pub fn store_volume(dir: &DataDir, volume_pct: i64) -> Result<u8, String> {
        let volume = check_volume(volume_pct)?;
        let (mut settings, _) = Self::load(dir)?;
        settings.alarm_volume_pct = volume;
        settings.save(dir).map_err(|e| e.to_string())?;
        Ok(volume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_survives_a_restart_and_keeps_the_other_settings() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("data")).expect("data dir");
        assert_eq!(
            StationSettings::load(&dir),
            Ok((StationSettings::default(), None))
        );
        std::fs::write(
            dir.path(SETTINGS_FILE),
            r#"{"zones_file": "/clinic/zones.json", "later_key": [1, 2]}"#,
        )
        .expect("write");
        assert_eq!(StationSettings::store_volume(&dir, 40), Ok(40));
        let (loaded, warning) = StationSettings::load(&dir).expect("loads");
        // A key this version does not know is kept, and said.
        let warning = warning.expect("the unknown key is said");
        assert!(warning.contains("unknown key later_key kept"), "{warning}");
        assert_eq!(loaded.alarm_volume_pct, 40);
        assert_eq!(loaded.zones_file, Some(PathBuf::from("/clinic/zones.json")));
        assert_eq!(loaded.other["later_key"], serde_json::json!([1, 2]));
        // Out of range: refused at entry, and the stored value stays.
        let refused = StationSettings::store_volume(&dir, 3).expect_err("refused");
        assert!(refused.contains("10 to 100 %"), "{refused}");
        assert_eq!(
            StationSettings::load(&dir)
                .expect("loads")
                .0
                .alarm_volume_pct,
            40
        );
    }

    #[test]
    fn a_volume_out_of_range_in_the_file_warns_and_garbage_is_an_error() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("data")).expect("data dir");
        std::fs::write(dir.path(SETTINGS_FILE), r#"{"alarm_volume_pct": 3}"#).expect("write");
        let (loaded, warning) = StationSettings::load(&dir).expect("loads");
        assert_eq!(loaded.alarm_volume_pct, VOLUME_DEFAULT_PCT);
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("settings.json") && warning.contains("10 to 100"),
            "{warning}"
        );
        // Whatever its JSON type, a bad volume costs only the setting.
        for bad in ["256", "-3", "50.5", "\"70\"", "null", "[]"] {
            std::fs::write(
                dir.path(SETTINGS_FILE),
                format!(r#"{{"alarm_volume_pct": {bad}, "zones_file": "/z.json"}}"#),
            )
            .expect("write");
            let (loaded, warning) = StationSettings::load(&dir).expect(bad);
            assert_eq!(loaded.alarm_volume_pct, VOLUME_DEFAULT_PCT, "{bad}");
            assert_eq!(loaded.zones_file, Some(PathBuf::from("/z.json")), "{bad}");
            assert!(warning.is_some(), "{bad}");
        }
        std::fs::write(
            dir.path(SETTINGS_FILE),
            r#"{"numbing_min_contact_min": 300}"#,
        )
        .expect("write");
        let error = StationSettings::load(&dir).expect_err("out of range");
        assert!(
            error.contains("numbing_min_contact_min 300 refused"),
            "{error}"
        );
        std::fs::write(dir.path(SETTINGS_FILE), "garbage").expect("write");
        let error = StationSettings::load(&dir).expect_err("not JSON");
        assert!(error.contains("not valid settings JSON"), "{error}");
    }
}
