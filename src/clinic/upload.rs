//! One batch of the outbox into the store, in one transaction: the rows the lines
//! make, then the stream's cursor, checked to be where the batch starts. A batch
//! sent twice (a lost answer, a restart) finds the cursor past it and changes
//! nothing; every row also has a natural key, so a retry doubles nothing.
//!
//! What each stream's lines become:
//! - `cartridges`: a claim (an `INSERT` under the live-claim index) or a release. A
//!   claim the index refuses because another session holds the cartridge was made
//!   while this station could not reach the store: it is a **conflict**, kept in
//!   `claim_conflicts` and returned.
//! - `treatments`: a treated zone, or a release.
//! - `audit`: `audit_events`, the line kept as written (its hash chain with it).
//! - `amendments`: `amendments`.
//! - `zone_tables`: a new version of the clinic's zone table (`zone_tables`).
//! - `certificate:<file>`: a calibration certificate, whole, by pen serial.
//! - `record:<file>`: a zstd chunk of the bytes in `record_chunks`, plus the
//!   session's header, steps, summary and signature as rows.
//!
//! A line that does not parse is still uploaded where the stream keeps bytes (the
//! records) and is otherwise skipped with a warning: the local file keeps it, and the
//! outbox must not stall on a hand edit.

use postgres::Transaction;
use sha2::Digest as _;

use super::streams::{Batch, Cursor, Stream};
use super::{ClinicError, db_error};

/// zstd level for record chunks: fast, and still some 8× on telemetry lines.
const ZSTD_LEVEL: i32 = 3;

/// A cartridge claimed at two stations: found when an offline claim was uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The cartridge.
    pub cartridge_id: String,
    /// The session that holds it in the store.
    pub holder_session: String,
    /// That session's station.
    pub holder_station: String,
    /// This station's session that ran it offline.
    pub offline_session: String,
    /// This station.
    pub offline_station: String,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// Conflicts found (cartridges only).
    pub conflicts: Vec<Conflict>,
    /// Lines skipped: `line N: why`.
    pub warnings: Vec<String>,
}

/// What [`apply`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The batch is in; the cursor is at its end.
    Done(Applied),
    /// The store's cursor is not where the batch starts (already uploaded, or the
    /// local copy of the cursor was stale): read again from there.
    CursorAt(Cursor),
}

/// The store's cursor for a stream of a station (0 when never uploaded).
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn cursor(
    db: &mut impl postgres::GenericClient,
    station_id: &str,
    stream: &Stream,
) -> Result<Cursor, ClinicError> {
    let row = db
        .query_opt(
            "SELECT bytes, lines, tail_len, tail_hash FROM upload_cursors
             WHERE station_id = $1 AND stream = $2",
            &[&station_id, &stream.name()],
        )
        .map_err(db_error)?;
    Ok(row.map_or(Cursor::default(), |r| cursor_in(&r, 0)))
}

/// The cursor in columns `first` (bytes), `first + 1` (lines), `first + 2` and
/// `first + 3` (its tail's length and hash) of `row`.
fn cursor_in(row: &postgres::Row, first: usize) -> Cursor {
    let tail_len: Option<i32> = row.get(first + 2);
    let tail_hash: Option<i64> = row.get(first + 3);
    Cursor {
        bytes: u64::try_from(row.get::<_, i64>(first)).unwrap_or(0),
        lines: u64::try_from(row.get::<_, i64>(first + 1)).unwrap_or(0),
        tail: tail_len
            .zip(tail_hash)
            .map(|(len, hash)| super::streams::Tail {
                len: u32::try_from(len).unwrap_or(0),
                hash,
            }),
    }
}

/// Every cursor of a station, by stream name.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn cursors(
    db: &mut postgres::Client,
    station_id: &str,
) -> Result<std::collections::BTreeMap<String, Cursor>, ClinicError> {
    let rows = db
        .query(
            "SELECT stream, bytes, lines, tail_len, tail_hash FROM upload_cursors
             WHERE station_id = $1",
            &[&station_id],
        )
        .map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), cursor_in(r, 1)))
        .collect())
}

/// Sets a stream's cursor back to its start: the local file was replaced, and its
/// lines (each with a key of its own) are uploaded again.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn rewind(
    db: &mut postgres::Client,
    station_id: &str,
    stream: &Stream,
) -> Result<(), ClinicError> {
    db.execute(
        "UPDATE upload_cursors SET bytes = 0, lines = 0, tail_len = NULL, tail_hash = NULL,
             updated_at = now()
         WHERE station_id = $1 AND stream = $2",
        &[&station_id, &stream.name()],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Records the station as seen (first upload, or a new version).
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn register_station(db: &mut postgres::Client, station_id: &str) -> Result<(), ClinicError> {
    db.execute(
        "INSERT INTO stations (station_id, version) VALUES ($1, $2)
         ON CONFLICT (station_id) DO UPDATE SET last_seen = now(), version = EXCLUDED.version",
        &[&station_id, &env!("CARGO_PKG_VERSION")],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Applies `batch` of `stream` for `station_id`, all or nothing.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`]; nothing is applied then.
pub fn apply(
    db: &mut postgres::Client,
    station_id: &str,
    stream: &Stream,
    batch: &Batch,
) -> Result<Outcome, ClinicError> {
    let mut tx = db.transaction().map_err(db_error)?;
    let name = stream.name();
    let row = tx
        .query_opt(
            "SELECT bytes, lines, tail_len, tail_hash, session_id FROM upload_cursors
             WHERE station_id = $1 AND stream = $2 FOR UPDATE",
            &[&station_id, &name],
        )
        .map_err(db_error)?;
    let at = row.as_ref().map_or(Cursor::default(), |r| cursor_in(r, 0));
    if at != batch.from {
        return Ok(Outcome::CursorAt(at));
    }
    let mut session_id: Option<String> = row.and_then(|r| r.get(4));
    let applied = match stream {
        Stream::Cartridges => cartridges(&mut tx, station_id, batch)?,
        Stream::Treatments => treatments(&mut tx, station_id, batch)?,
        Stream::Audit => audit(&mut tx, station_id, batch)?,
        Stream::Amendments => amendments(&mut tx, station_id, batch)?,
        Stream::ZoneTables => super::zones::apply_lines(&mut tx, station_id, batch)?,
        Stream::Accounts => super::accounts::apply_lines(&mut tx, station_id, batch)?,
        Stream::Record(file) => record(&mut tx, station_id, file, batch, &mut session_id)?,
        Stream::Certificate(file) => certificate(&mut tx, station_id, file, batch)?,
    };
    let to = batch.to();
    let (bytes, lines) = (i64_of(to.bytes), i64_of(to.lines));
    let tail_len: Option<i32> = to.tail.map(|t| i32::try_from(t.len).unwrap_or(i32::MAX));
    let tail_hash: Option<i64> = to.tail.map(|t| t.hash);
    tx.execute(
        "INSERT INTO upload_cursors (station_id, stream, bytes, lines, session_id,
             tail_len, tail_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (station_id, stream) DO UPDATE
         SET bytes = EXCLUDED.bytes, lines = EXCLUDED.lines,
             session_id = EXCLUDED.session_id, tail_len = EXCLUDED.tail_len,
             tail_hash = EXCLUDED.tail_hash, updated_at = now()",
        &[
            &station_id,
            &name,
            &bytes,
            &lines,
            &session_id,
            &tail_len,
            &tail_hash,
        ],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(Outcome::Done(applied))
}

/// A count as `PostgreSQL`'s `bigint`.
fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Each line with its 1-based number in the file, parsed as `T`; an unparsable line
/// is a warning.
pub(super) fn parsed<'a, T: serde::de::DeserializeOwned>(
    batch: &'a Batch,
    warnings: &'a mut Vec<String>,
) -> impl Iterator<Item = (u64, T)> + 'a {
    let first = batch.from.lines + 1;
    batch.lines().enumerate().filter_map(move |(i, line)| {
        let n = first + i as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(v) => Some((n, v)),
            Err(e) => {
                warnings.push(format!(
                    "line {n}: {e} (kept in the local file, not in the clinic store)"
                ));
                None
            }
        }
    })
}

fn cartridges(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut applied = Applied::default();
    let mut warnings = Vec::new();
    let lines: Vec<(u64, crate::store::CartridgeUse)> = parsed(batch, &mut warnings).collect();
    applied.warnings = warnings;
    // A claim released later in the same batch was a start that did not happen (the
    // interlock refused it while the store was away): it is kept as released, and
    // meets no other session's claim.
    let released_later = |i: usize, line: &crate::store::CartridgeUse| {
        lines[i + 1..]
            .iter()
            .find(|(_, l)| l.released && l.id == line.id && l.session_id == line.session_id)
            .map(|(_, l)| l.first_run)
    };
    for (i, (_, line)) in lines.iter().enumerate() {
        let id = line.id.to_string();
        if !line.released
            && let Some(released_at) = released_later(i, line)
        {
            tx.execute(
                "INSERT INTO cartridge_claims
                 (cartridge_id, session_id, station_id, client, claimed_at, released_at, offline)
                 SELECT $1, $2, $3, $4, $5, $6, true
                 WHERE NOT EXISTS (SELECT 1 FROM cartridge_claims
                     WHERE cartridge_id = $1 AND session_id = $2 AND released_at IS NULL)",
                &[
                    &id,
                    &line.session_id,
                    &station_id,
                    &line.client,
                    &line.first_run,
                    &released_at,
                ],
            )
            .map_err(db_error)?;
            continue;
        }
        if line.released {
            tx.execute(
                "UPDATE cartridge_claims SET released_at = $3
                 WHERE cartridge_id = $1 AND session_id = $2 AND released_at IS NULL",
                &[&id, &line.session_id, &line.first_run],
            )
            .map_err(db_error)?;
            continue;
        }
        // Claimed online, this is a repeat and changes nothing; claimed offline, it
        // is the claim itself (and `offline` says so).
        let won = tx
            .query_opt(
                "INSERT INTO cartridge_claims
                 (cartridge_id, session_id, station_id, client, claimed_at, offline)
                 VALUES ($1, $2, $3, $4, $5, true)
                 ON CONFLICT (cartridge_id) WHERE released_at IS NULL DO NOTHING
                 RETURNING claim_id",
                &[
                    &id,
                    &line.session_id,
                    &station_id,
                    &line.client,
                    &line.first_run,
                ],
            )
            .map_err(db_error)?;
        if won.is_some() {
            continue;
        }
        let holder = tx
            .query_one(
                "SELECT session_id, station_id FROM cartridge_claims
                 WHERE cartridge_id = $1 AND released_at IS NULL",
                &[&id],
            )
            .map_err(db_error)?;
        let (holder_session, holder_station): (String, String) = (holder.get(0), holder.get(1));
        if holder_session == line.session_id {
            continue;
        }
        tx.execute(
            "INSERT INTO claim_conflicts
             (cartridge_id, holder_session, holder_station, offline_session, offline_station)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
            &[
                &id,
                &holder_session,
                &holder_station,
                &line.session_id,
                &station_id,
            ],
        )
        .map_err(db_error)?;
        applied.conflicts.push(Conflict {
            cartridge_id: id,
            holder_session,
            holder_station,
            offline_session: line.session_id.clone(),
            offline_station: station_id.to_owned(),
        });
    }
    Ok(applied)
}

fn treatments(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut warnings = Vec::new();
    let lines: Vec<(u64, crate::store::TreatmentRecord)> = parsed(batch, &mut warnings).collect();
    for (_, t) in lines {
        if t.released {
            tx.execute(
                "UPDATE treatments SET released_at = now()
                 WHERE client = $1 AND zone = $2 AND session_id = $3 AND released_at IS NULL",
                &[&t.client, &t.zone, &t.session_id],
            )
            .map_err(db_error)?;
        } else {
            tx.execute(
                "INSERT INTO treatments (client, zone, treated_on, session_id, station_id, offline)
                 VALUES ($1, $2, $3, $4, $5, true)
                 ON CONFLICT (client, zone, session_id) WHERE released_at IS NULL DO NOTHING",
                &[&t.client, &t.zone, &t.date, &t.session_id, &station_id],
            )
            .map_err(db_error)?;
        }
    }
    Ok(Applied {
        conflicts: Vec::new(),
        warnings,
    })
}

fn audit(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut warnings = Vec::new();
    let first = batch.from.lines + 1;
    let insert = tx
        .prepare(
            "INSERT INTO audit_events (station_id, seq, at, kind, account, line)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .map_err(db_error)?;
    for (i, raw) in batch.lines().enumerate() {
        let n = first + i as u64;
        let line = match serde_json::from_slice::<crate::store::audit::AuditLine>(raw) {
            Ok(line) => line,
            Err(e) => {
                warnings.push(format!(
                    "line {n}: {e} (kept in the local file, not in the clinic store)"
                ));
                continue;
            }
        };
        let text = String::from_utf8_lossy(raw);
        let kind = line.kind.as_str();
        tx.execute(
            &insert,
            &[
                &station_id,
                &i64_of(line.seq),
                &line.at,
                &kind,
                &line.account,
                &text.as_ref(),
            ],
        )
        .map_err(db_error)?;
    }
    Ok(Applied {
        conflicts: Vec::new(),
        warnings,
    })
}

fn amendments(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut warnings = Vec::new();
    let lines: Vec<(u64, serde_json::Value)> = parsed(batch, &mut warnings).collect();
    for (n, body) in lines {
        let session = body
            .get("session_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned();
        tx.execute(
            "INSERT INTO amendments (station_id, line_no, session_id, body)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&station_id, &i64_of(n), &session, &body],
        )
        .map_err(db_error)?;
    }
    Ok(Applied {
        conflicts: Vec::new(),
        warnings,
    })
}

/// A certificate, whole (checked complete by `streams::read_certificate`): its row,
/// by pen serial.
fn certificate(
    tx: &mut Transaction<'_>,
    station_id: &str,
    file: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let c: crate::calibration::certificate::Certificate = serde_json::from_slice(&batch.bytes)
        .map_err(|e| ClinicError::Db(format!("{file}: not a certificate: {e}")))?;
    let body: serde_json::Value = serde_json::from_slice(&batch.bytes)
        .map_err(|e| ClinicError::Db(format!("{file}: {e}")))?;
    tx.execute(
        "INSERT INTO calibration_certificates
         (station_id, file, pen_serial, pen_model, issued_at, technician, passed, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        &[
            &station_id,
            &file,
            &c.pen.serial,
            &c.pen.model,
            &c.utc,
            &c.technician,
            &c.passed,
            &body,
        ],
    )
    .map_err(db_error)?;
    Ok(Applied::default())
}

/// A record's batch: the chunk, then the rows its lines make. The session's id is
/// the header's (the first line, in the first batch), kept with the stream's cursor
/// (`session_id`) for the batches after it.
fn record(
    tx: &mut Transaction<'_>,
    station_id: &str,
    file: &str,
    batch: &Batch,
    session_id: &mut Option<String>,
) -> Result<Applied, ClinicError> {
    let mut warnings = Vec::new();
    let first = batch.from.lines + 1;
    let mut rows: Vec<(u64, serde_json::Value)> = Vec::new();
    for (i, raw) in batch.lines().enumerate() {
        let n = first + i as u64;
        // Telemetry lines (nearly all) make no row: only the few that do are parsed.
        if !is_row_line(raw) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(v) => {
                if v.get("type").and_then(serde_json::Value::as_str) == Some("header") {
                    *session_id = v
                        .get("session_id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned);
                }
                rows.push((n, v));
            }
            Err(e) => warnings.push(format!(
                "line {n}: {e} (in the store's copy of the record; no row made of it)"
            )),
        }
    }
    // A record whose header cannot be read is still uploaded, under its file's name:
    // the outbox must not stall on one damaged file.
    let session_id = session_id
        .get_or_insert_with(|| {
            warnings.push(format!("{file}: no readable header: kept as file:{file}"));
            format!("file:{file}")
        })
        .clone();
    let digest = sha2::Sha256::digest(&batch.bytes).to_vec();
    let compressed = zstd::bulk::compress(&batch.bytes, ZSTD_LEVEL)
        .map_err(|e| ClinicError::Db(format!("zstd: {e}")))?;
    let lines = i32::try_from(batch.lines).unwrap_or(i32::MAX);
    tx.execute(
        "INSERT INTO record_chunks
         (session_id, station_id, first_byte, end_byte, first_line, lines, sha256, zstd)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        &[
            &session_id,
            &station_id,
            &i64_of(batch.from.bytes),
            &i64_of(batch.to().bytes),
            &i64_of(first),
            &lines,
            &digest,
            &compressed,
        ],
    )
    .map_err(db_error)?;
    for (n, v) in rows {
        row_of_line(tx, station_id, &session_id, n, &v)?;
    }
    Ok(Applied {
        conflicts: Vec::new(),
        warnings,
    })
}

/// Whether a record line's `type` is one that makes a row (checked on the bytes,
/// without parsing: the type comes first in every line the station writes).
fn is_row_line(raw: &[u8]) -> bool {
    const KINDS: [&[u8]; 4] = [
        b"\"type\":\"header\"",
        b"\"type\":\"step\"",
        b"\"type\":\"summary\"",
        b"\"type\":\"signature\"",
    ];
    let head = &raw[..raw.len().min(40)];
    KINDS.iter().any(|k| head.windows(k.len()).any(|w| w == *k))
}

/// The row a header, step, summary or signature line makes.
fn row_of_line(
    tx: &mut Transaction<'_>,
    station_id: &str,
    session_id: &str,
    line_no: u64,
    v: &serde_json::Value,
) -> Result<(), ClinicError> {
    let text = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let utc = v
        .get("utc_ms")
        .and_then(serde_json::Value::as_i64)
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    match v.get("type").and_then(serde_json::Value::as_str) {
        Some("header") => {
            let opened = utc.unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            tx.execute(
                "INSERT INTO sessions (session_id, station_id, client, practitioner, opened_at, header)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING",
                &[
                    &session_id,
                    &station_id,
                    &text("client"),
                    &text("practitioner"),
                    &opened,
                    v,
                ],
            )
            .map_err(db_error)?;
        }
        Some("step") => {
            tx.execute(
                "INSERT INTO session_steps (session_id, line_no, step) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&session_id, &i64_of(line_no), v],
            )
            .map_err(db_error)?;
        }
        Some("summary") => {
            tx.execute(
                "UPDATE sessions SET summary = $2, closed_at = $3 WHERE session_id = $1",
                &[&session_id, v, &utc],
            )
            .map_err(db_error)?;
        }
        Some("signature") => {
            tx.execute(
                "UPDATE sessions SET signature = $2 WHERE session_id = $1",
                &[&session_id, v],
            )
            .map_err(db_error)?;
        }
        _ => {}
    }
    Ok(())
}
