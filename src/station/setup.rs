//! Starting a station: the data folder, the zone table (built-in, or a clinic's,
//! with every limit change recorded), and the built-in simulated pen. Shared by the
//! console and the window, so both start the same way.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::protocol::Calibration;
use crate::safety::interlock::mm;
use crate::safety::zones::ZoneTable;
use crate::sim::{SimConfig, SimPen};
use crate::store::{self, DataDir};

/// The station's settings file in the data folder.
pub const SETTINGS_FILE: &str = "settings.json";

/// What `settings.json` may hold.
#[derive(Debug, Default, serde::Deserialize)]
struct Settings {
    /// A clinic's zone table.
    zones_file: Option<PathBuf>,
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
    let settings_path = data.path(SETTINGS_FILE);
    let settings: Settings = match std::fs::read_to_string(&settings_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid settings JSON", settings_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
        Err(e) => return Err(e).context(format!("cannot read {}", settings_path.display())),
    };
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
            };
            log.append(&record)?;
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
