//! The clinic's zone table in the store. Where an admin changes a limit, the station
//! writes the whole new table to `clinic-zone-tables.jsonl` (its outbox: the data
//! folder first), and the upload makes it the store's newest version. Every station
//! takes the newest before it opens a session, and within a second when idle; a
//! station with a session open takes it when the session ends (the interlock never
//! changes a limit under a pass).

use jiff::Timestamp;
use postgres::Transaction;

use super::streams::Batch;
use super::upload::Applied;
use super::{ClinicError, db_error};

/// The outbox file of zone tables published at this station.
pub const ZONE_TABLES_FILE: &str = "clinic-zone-tables.jsonl";

/// A line of [`ZONE_TABLES_FILE`]: a table an admin made here, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedTable {
    /// SHA-256 of the table's canonical form (`ZoneTable::hash_hex`).
    pub sha256: String,
    /// The table in its file format.
    pub table: serde_json::Value,
    /// The zone whose limit changed.
    pub zone: String,
    /// Its limit before, µm.
    pub old_limit_um: i32,
    /// Its limit now, µm.
    pub new_limit_um: i32,
    /// The admin's account.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// The store's newest zone table: the last change made (by the stations' clocks),
/// not the last to arrive: a change made offline and uploaded later does not undo a
/// newer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTable {
    /// Its version (grows with every change at any station).
    pub version: i64,
    /// The station where it was made.
    pub station_id: String,
    /// SHA-256 of its canonical form.
    pub sha256: String,
    /// The table in its file format.
    pub json: String,
    /// The change that made it: zone, old and new limit (µm), who, why.
    pub zone: String,
    /// The limit before, µm.
    pub old_limit_um: i32,
    /// The limit after, µm.
    pub new_limit_um: i32,
    /// The admin's account.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// The newest zone table in the store, if any station ever published one.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn newest(db: &mut postgres::Client) -> Result<Option<StoreTable>, ClinicError> {
    let row = db
        .query_opt(
            "SELECT version, station_id, sha256, table_json::text, zone, old_limit_um,
                    new_limit_um, changed_by, reason
             FROM zone_tables ORDER BY changed_at DESC, version DESC LIMIT 1",
            &[],
        )
        .map_err(db_error)?;
    Ok(row.map(|r| StoreTable {
        version: r.get(0),
        station_id: r.get(1),
        sha256: r.get(2),
        json: r.get(3),
        zone: r.get(4),
        old_limit_um: r.get(5),
        new_limit_um: r.get(6),
        by: r.get(7),
        reason: r.get(8),
    }))
}

/// A batch of [`ZONE_TABLES_FILE`]: each line a new version.
pub(super) fn apply_lines(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut applied = Applied::default();
    let first = batch.from.lines + 1;
    for (i, raw) in batch.lines().enumerate() {
        let n = first + i as u64;
        let line: PublishedTable = match serde_json::from_slice(raw) {
            Ok(line) => line,
            Err(e) => {
                applied.warnings.push(format!(
                    "line {n}: {e} (kept in the local file, not in the clinic store)"
                ));
                continue;
            }
        };
        // A change made while this station could not reach the store, older than
        // one another station made meanwhile: kept, but the newer change stands.
        let newest: Option<Timestamp> = tx
            .query_one("SELECT max(changed_at) FROM zone_tables", &[])
            .map_err(db_error)?
            .get(0);
        if newest.is_some_and(|t| t > line.at) {
            applied.warnings.push(format!(
                "line {n}: the {} limit change to {} µm by {} ({}) reached the clinic store \
                 after a newer change at another station: the newer one stands",
                line.zone, line.new_limit_um, line.by, line.at
            ));
        }
        tx.execute(
            "INSERT INTO zone_tables (station_id, line_no, sha256, table_json, zone,
                 old_limit_um, new_limit_um, changed_by, reason, changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (station_id, line_no) DO NOTHING",
            &[
                &station_id,
                &i64::try_from(n).unwrap_or(i64::MAX),
                &line.sha256,
                &line.table,
                &line.zone,
                &line.old_limit_um,
                &line.new_limit_um,
                &line.by,
                &line.reason,
                &line.at,
            ],
        )
        .map_err(db_error)?;
    }
    Ok(applied)
}
