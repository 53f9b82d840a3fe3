//! The clinic admin's changes at the station: a zone's protocol limit and the
//! settings. Each needs an enabled admin (read from the accounts file now), is
//! checked by the same rules as a file (never above the compiled ceilings), written,
//! told to the interlock where it matters, and audited with who, what and why.

use jiff::Timestamp;

use super::{Station, StationError};
use crate::safety::interlock::{SafetyUpdate, mm};
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::store::accounts::Role;
use crate::store::audit::{AuditEvent, AuditKind};
use crate::store::settings::check_idle_lock;
use crate::store::{self, StationSettings};

/// The clinic's zone table, when an admin edits it at the station and no table file
/// is set yet.
pub const CLINIC_ZONES_FILE: &str = "zones.clinic.json";

/// A setting an admin may change at the station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    /// Idle time before the lock, minutes.
    IdleLockMin(u32),
    /// The numbing cream's minimum contact time, minutes.
    NumbingMinContactMin(u32),
    /// The end of the numbing cream's contact window, minutes.
    NumbingMaxContactMin(u32),
    /// The test spot's wait, minutes.
    TestSpotWaitMin(u32),
    /// The clinic's name on the hand-outs (`None`: none).
    ClinicName(Option<String>),
    /// The clinic store's strict mode: nothing starts while it cannot be reached.
    ClinicStrict(bool),
}

impl SettingChange {
    /// The setting's key in `settings.json`.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            SettingChange::IdleLockMin(_) => "idle_lock_min",
            SettingChange::NumbingMinContactMin(_) => "numbing_min_contact_min",
            SettingChange::NumbingMaxContactMin(_) => "numbing_max_contact_min",
            SettingChange::TestSpotWaitMin(_) => "test_spot_wait_min",
            SettingChange::ClinicName(_) => "clinic_name",
            SettingChange::ClinicStrict(_) => "clinic_strict",
        }
    }

    /// A change from a key and a typed value (`idle_lock_min 15`).
    pub fn parse(key: &str, value: &str) -> Result<SettingChange, String> {
        let minutes = || {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{key}: {value:?} is not a whole number of minutes"))
        };
        Ok(match key {
            "idle_lock_min" => SettingChange::IdleLockMin(minutes()?),
            "numbing_min_contact_min" => SettingChange::NumbingMinContactMin(minutes()?),
            "numbing_max_contact_min" => SettingChange::NumbingMaxContactMin(minutes()?),
            "test_spot_wait_min" => SettingChange::TestSpotWaitMin(minutes()?),
            "clinic_name" => {
                SettingChange::ClinicName(Some(value.trim().to_owned()).filter(|v| !v.is_empty()))
            }
            "clinic_strict" => SettingChange::ClinicStrict(match value.trim() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                other => return Err(format!("clinic_strict: {other:?} is not on or off")),
            }),
            other => {
                return Err(format!(
                    "no setting {other:?} (idle_lock_min, numbing_min_contact_min, \
                     numbing_max_contact_min, test_spot_wait_min, clinic_name, clinic_strict)"
                ));
            }
        })
    }

    fn value_text(&self) -> String {
        match self {
            SettingChange::IdleLockMin(v)
            | SettingChange::NumbingMinContactMin(v)
            | SettingChange::NumbingMaxContactMin(v)
            | SettingChange::TestSpotWaitMin(v) => v.to_string(),
            SettingChange::ClinicName(name) => name.clone().unwrap_or_default(),
            SettingChange::ClinicStrict(on) => if *on { "on" } else { "off" }.to_owned(),
        }
    }
}

impl Station {
    /// An admin sets `zone`'s protocol limit to `limit_um`, with a reason. Refused
    /// above the zone's compiled ceiling (nothing is clamped), off the 0.05 mm step,
    /// while a session is open or the needle runs, and without a reason. The table is
    /// written to the clinic's table file, the change to `zone-limit-changes.jsonl`
    /// and the audit log, and the interlock holds the new limit before this returns.
    pub fn set_zone_limit(
        &mut self,
        zone: ZoneId,
        limit_um: i32,
        reason: &str,
    ) -> Result<(), StationError> {
        let admin = self.require(Some(Role::Admin))?;
        if reason.trim().is_empty() {
            return Err(StationError::Access(
                "a zone limit changes only with a reason".into(),
            ));
        }
        if let Some(session) = &self.session {
            return Err(StationError::SessionOpen(session.id.clone()));
        }
        let old_um = self.zones.limit_um(zone);
        if old_um == limit_um {
            return Err(StationError::Access(format!(
                "{zone} is at {} already",
                mm(i64::from(limit_um))
            )));
        }
        let table = self
            .zones
            .with_limit(zone, limit_um)
            .map_err(|e| StationError::Access(format!("limit refused: {e}")))?;
        // The interlock first: if it refuses (a pass under way), nothing is written.
        match self.safety_from_station(SafetyUpdate::ZoneTable(Box::new(table.clone())))? {
            Ok(_) => {}
            Err(refusal) => return Err(StationError::Access(refusal.message)),
        }
        let file = self.keep_zone_table(&table, admin.id(), reason.trim())?;
        self.publish_zone_table(&table, zone, old_um, limit_um, admin.id(), reason.trim());
        self.zones = table;
        self.audit(
            AuditEvent::new(AuditKind::ZoneLimitChanged, Some(admin.id()))
                .with("zone", zone.as_str())
                .with("from_um", old_um)
                .with("to_um", limit_um)
                .with("reason", reason.trim().to_owned())
                .with("file", file.display().to_string()),
        );
        Ok(())
    }

    /// Writes `table` (the interlock holds it already) where the station reads its
    /// table at start (the clinic's table file, named in the settings), each changed
    /// limit to `zone-limit-changes.jsonl` (by `who`, for `reason`), and as the table
    /// last run with. Returns the table file.
    pub(super) fn keep_zone_table(
        &mut self,
        table: &ZoneTable,
        who: &str,
        reason: &str,
    ) -> Result<std::path::PathBuf, StationError> {
        let (mut settings, _) = StationSettings::load(&self.data).map_err(StationError::Access)?;
        let file = settings
            .zones_file
            .clone()
            .unwrap_or_else(|| self.data.path(CLINIC_ZONES_FILE));
        store::replace_file(&file, table.to_json().as_bytes())?;
        if settings.zones_file.is_none() {
            settings.zones_file = Some(file.clone());
            settings.save(&self.data)?;
        }
        for change in self.zones.limit_changes(table) {
            store::append_limit_change(
                &self.data,
                &store::LimitChangeRecord {
                    zone: change.zone.as_str().to_owned(),
                    old_limit_um: change.old_limit_um,
                    new_limit_um: change.new_limit_um,
                    who: who.to_owned(),
                    at: Timestamp::now(),
                    table_hash: table.hash_hex().to_owned(),
                    reason: Some(reason.to_owned()),
                },
            )?;
        }
        store::store_zone_table(&self.data, &table.to_json())?;
        Ok(file)
    }

    /// The settings as the file holds them now.
    pub fn settings(&self) -> Result<StationSettings, StationError> {
        StationSettings::load(&self.data)
            .map(|(s, _)| s)
            .map_err(StationError::Access)
    }

    /// An admin changes a setting: checked by the same rules as the file, written,
    /// audited. The idle lock takes effect at once; the procedure's times from the
    /// next session.
    pub fn change_setting(&mut self, change: &SettingChange) -> Result<(), StationError> {
        let admin = self.require(Some(Role::Admin))?;
        let mut settings = self.settings()?;
        let before = match change {
            SettingChange::IdleLockMin(_) => settings.idle_lock_min.to_string(),
            SettingChange::NumbingMinContactMin(_) => settings.numbing_min_contact_min.to_string(),
            SettingChange::NumbingMaxContactMin(_) => settings.numbing_max_contact_min.to_string(),
            SettingChange::TestSpotWaitMin(_) => settings.test_spot_wait_min.to_string(),
            SettingChange::ClinicName(_) => settings.clinic_name.clone().unwrap_or_default(),
            SettingChange::ClinicStrict(_) => {
                if settings.clinic_strict { "on" } else { "off" }.to_owned()
            }
        };
        match change {
            SettingChange::IdleLockMin(v) => {
                check_idle_lock(*v).map_err(StationError::Access)?;
                settings.idle_lock_min = *v;
            }
            SettingChange::NumbingMinContactMin(v) => settings.numbing_min_contact_min = *v,
            SettingChange::NumbingMaxContactMin(v) => settings.numbing_max_contact_min = *v,
            SettingChange::TestSpotWaitMin(v) => settings.test_spot_wait_min = *v,
            SettingChange::ClinicName(name) => {
                if name.as_ref().is_some_and(|n| n.chars().count() > 80) {
                    return Err(StationError::Access(
                        "the clinic's name is at most 80 characters".into(),
                    ));
                }
                settings.clinic_name.clone_from(name);
            }
            SettingChange::ClinicStrict(on) => settings.clinic_strict = *on,
        }
        settings
            .procedure()
            .check()
            .map_err(|why| StationError::Access(format!("refused: {why}")))?;
        settings.save(&self.data)?;
        if let SettingChange::IdleLockMin(v) = change {
            self.set_idle_lock(std::time::Duration::from_mins(u64::from(*v)));
        }
        if let SettingChange::ClinicStrict(on) = change {
            self.set_clinic_strict(*on);
        }
        self.audit(
            AuditEvent::new(AuditKind::SettingsChanged, Some(admin.id()))
                .with("key", change.key())
                .with("from", before)
                .with("to", change.value_text()),
        );
        Ok(())
    }
}
