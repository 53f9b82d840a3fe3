//! Starting a station: the data folder, the zone table (built-in, or a clinic's,
//! with every limit change recorded), and the built-in simulated pen. Shared by the
//! console and the window, so both start the same way.

use std::path::Path;

use anyhow::Context as _;

use crate::protocol::Calibration;
use crate::safety::interlock::mm;
use crate::safety::zones::ZoneTable;
use crate::sim::{SimConfig, SimPen};
use crate::store::{self, DataDir};

/// Starts the alarm sound at the volume in the settings (the default without a data
/// folder), on the server at `socket` or the environment's, or
/// [`Sound::off`](crate::sound::Sound::off) when not `wanted`. Returns the sound, the
/// volume it plays at, and the settings' warning (a volume out of range, keys this
/// version does not know), to be said at start. The self-test tone plays as soon as the sound server takes
/// the stream.
#[must_use]
pub fn start_sound(
    data: Option<&DataDir>,
    wanted: bool,
    socket: Option<&Path>,
    waker: Option<crate::link::Waker>,
) -> (crate::sound::Sound, u8, Option<String>) {
    // A settings file that cannot be read has already stopped the start (the zone
    // table comes first); here it would only cost the stored volume.
    let (settings, warning) = data
        .and_then(|data| store::StationSettings::load(data).ok())
        .unwrap_or_default();
    let volume_pct = settings.alarm_volume_pct;
    if !wanted {
        // The settings' warnings (a volume out of range, a key this version does not
        // know) are said whether or not sound is wanted.
        return (crate::sound::Sound::off(), volume_pct, warning);
    }
    (
        crate::sound::Sound::start(socket, volume_pct, waker),
        volume_pct,
        warning,
    )
}

/// Sets the alarm volume: checked, stored in the settings, and played from now on.
/// Returns what to tell the operator.
///
/// # Errors
/// Out of range (nothing changes), or the settings could not be written.
pub fn set_alarm_volume(
    data: &DataDir,
    sound: &crate::sound::Sound,
    volume_pct: i64,
) -> Result<String, String> {
    let volume = store::StationSettings::store_volume(data, volume_pct)?;
    sound.set_volume(volume);
    Ok(format!(
        "alarm volume {volume} % (high-priority alarms at {} % at least)",
        crate::sound::signal::HIGH_VOLUME_MIN_PCT
    ))
}

/// Opens the data folder: `dir`, or the XDG default.
pub fn open_data_dir(dir: Option<&Path>) -> anyhow::Result<DataDir> {
    let root = dir
        .map(Path::to_path_buf)
        .or_else(DataDir::default_root)
        .context("no data folder: give --data-dir (no $HOME or $XDG_DATA_HOME here)")?;
    DataDir::open(&root).with_context(|| format!("cannot open the data folder {}", root.display()))
}

/// The zone table in force: `flag`, else `zones_file` in the settings, else the
/// built-in one. A table that breaks a rule is an error: no silent fallback.
pub fn load_zones(flag: Option<&Path>, data: &DataDir) -> anyhow::Result<ZoneTable> {
    let (settings, _) = store::StationSettings::load(data).map_err(anyhow::Error::msg)?;
    match flag.map(Path::to_path_buf).or(settings.zones_file) {
        Some(path) => ZoneTable::load(&path)
            .with_context(|| format!("the zone table {} is refused; no treatment", path.display())),
        None => Ok(ZoneTable::builtin()),
    }
}

/// Records each limit that differs from the table the station last ran with (who,
/// when, old, new) and returns one sentence per change.
pub fn record_limit_changes(
    data: &DataDir,
    zones: &ZoneTable,
    who: &str,
) -> anyhow::Result<Vec<String>> {
    // Under the change log's lock: two stations starting together on one data folder
    // record a change once, and store the table one after the other.
    let mut tail = store::Tail::new(data.path(store::LIMIT_CHANGES_FILE));
    let said = store::jsonl::with_lock(&mut tail, |log| {
        let previous = match store::last_zone_table(data)? {
            Some(text) => ZoneTable::from_json(&text).ok(),
            None => None,
        };
        let baseline = previous.unwrap_or_else(ZoneTable::builtin);
        let mut said = Vec::new();
        for change in baseline.limit_changes(zones) {
            let record = store::LimitChangeRecord {
                zone: change.zone.as_str().to_owned(),
                old_limit_um: change.old_limit_um,
                new_limit_um: change.new_limit_um,
                who: who.to_owned(),
                at: jiff::Timestamp::now(),
                table_hash: zones.hash_hex().to_owned(),
                reason: None,
            };
            log.append(&record)?;
            // A table changed outside the station (a file edited by hand): audited
            // with the OS user and `--operator`, there is no account to name.
            let event =
                store::audit::AuditEvent::new(store::audit::AuditKind::ZoneLimitChanged, None)
                    .with("zone", record.zone.clone())
                    .with("from_um", record.old_limit_um)
                    .with("to_um", record.new_limit_um)
                    .with("who", who.to_owned())
                    .with("how", "the zone table file changed outside the station");
            store::audit::AuditLog::of(data).append(event)?;
            said.push(format!(
                "zone limit changed: {} from {} to {} by {who}",
                record.zone,
                mm(i64::from(record.old_limit_um)),
                mm(i64::from(record.new_limit_um))
            ));
        }
        store::store_zone_table(data, &zones.to_json())?;
        Ok(said)
    })?;
    Ok(said)
}

/// Who is at the station: `given`, else `$USER`.
#[must_use]
pub fn operator(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The built-in simulated pen, its calibration kept in the data folder (dated the day
/// the folder first met it, as a pen comes calibrated from its maker).
pub fn start_builtin_sim(data: &DataDir) -> anyhow::Result<SimPen> {
    let cal_file = data.path("sim-pen-calibration.json");
    if !cal_file.exists() {
        let factory = Calibration {
            date: crate::safety::interlock::yyyymmdd(jiff::Zoned::now().date()),
            tech: "FACTORY".into(),
            ..Calibration::identity()
        };
        crate::sim::cal_file::store(&cal_file, &factory)
            .context("cannot write the simulated pen's calibration")?;
    }
    let config = SimConfig {
        cal_file: Some(cal_file),
        ..SimConfig::default()
    };
    SimPen::spawn(config).context("cannot start the simulated pen")
}

/// Joins the clinic store `flag` names (a `postgres://` URL, or a connection file),
/// else the one in the data folder's `clinic.conn`; nothing when neither exists.
/// Returns what to tell the operator (the store without its password, this station's
/// id, strict or not).
///
/// # Errors
/// A wrong address or connection file, an identity that cannot be written, or the
/// thread not starting. An unreachable store is not an error: the station starts,
/// and says so.
pub fn join_clinic(
    station: &mut crate::station::Station,
    flag: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let root = station.data().root().to_path_buf();
    let Some(target) = crate::clinic::ClinicTarget::resolve(flag, &root)? else {
        return Ok(None);
    };
    let identity = crate::clinic::StationIdentity::of(&root)?;
    let strict = crate::store::StationSettings::load(station.data())
        .map(|(s, _)| s.clinic_strict)
        .map_err(anyhow::Error::msg)?;
    let said = format!(
        "clinic store {target} as station {}{}",
        identity.station_id,
        if strict {
            " (strict: nothing starts without it)"
        } else {
            ""
        }
    );
    let link = crate::clinic::ClinicLink::start(target, root, identity.station_id)
        .context("cannot start the clinic store's thread")?;
    station.join_clinic(link, strict)?;
    Ok(Some(said))
}
