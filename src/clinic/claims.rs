//! The clinic-wide decisions' SQL: a cartridge claim (one `INSERT` under the partial
//! unique index `cartridge_claims_live`), a zone claim under the 4-week rule (a
//! transaction holding an advisory lock on the client and zone), and a client's
//! treatment history. Called by the `punctum-clinic` thread only.

use jiff::Timestamp;
use jiff::civil::Date;

use super::{ClinicError, db_error};

/// The answer to a cartridge claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartridgeAnswer {
    /// The cartridge is this session's (`new`: this call claimed it).
    Claimed {
        /// This call wrote the claim.
        new: bool,
    },
    /// Another session holds it.
    HeldBy {
        /// That session.
        session_id: String,
        /// Its station.
        station_id: String,
    },
}

/// A cartridge claim's particulars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartridgeClaimRequest {
    /// The cartridge's id as the pen reports it.
    pub cartridge_id: String,
    /// The session claiming it.
    pub session_id: String,
    /// The client treated.
    pub client: String,
    /// When.
    pub at: Timestamp,
}

/// Claims a cartridge for a session: one statement, so two stations claiming in the
/// same millisecond cannot both win.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn claim_cartridge(
    db: &mut postgres::Client,
    station_id: &str,
    claim: &CartridgeClaimRequest,
) -> Result<CartridgeAnswer, ClinicError> {
    let won = db
        .query_opt(
            "INSERT INTO cartridge_claims (cartridge_id, session_id, station_id, client, claimed_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (cartridge_id) WHERE released_at IS NULL DO NOTHING
             RETURNING claim_id",
            &[
                &claim.cartridge_id,
                &claim.session_id,
                &station_id,
                &claim.client,
                &claim.at,
            ],
        )
        .map_err(db_error)?;
    if won.is_some() {
        return Ok(CartridgeAnswer::Claimed { new: true });
    }
    let holder = db
        .query_opt(
            "SELECT session_id, station_id FROM cartridge_claims
             WHERE cartridge_id = $1 AND released_at IS NULL",
            &[&claim.cartridge_id],
        )
        .map_err(db_error)?;
    match holder {
        Some(row) => {
            let session_id: String = row.get(0);
            if session_id == claim.session_id {
                Ok(CartridgeAnswer::Claimed { new: false })
            } else {
                Ok(CartridgeAnswer::HeldBy {
                    session_id,
                    station_id: row.get(1),
                })
            }
        }
        // Released between the two statements: claim again.
        None => claim_cartridge(db, station_id, claim),
    }
}

/// A zone claim's particulars.
#[derive(Debug, Clone)]
pub struct ZoneClaimRequest {
    /// The client.
    pub client: String,
    /// The zone's string id.
    pub zone: String,
    /// The clinic's date today.
    pub date: Date,
    /// The session.
    pub session_id: String,
    /// The 4-week rule, `allowed(last, today)`: the safety module's, applied here
    /// under the lock to what every station has written.
    pub allowed: fn(Date, Date) -> bool,
}

/// The answer to a zone claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneAnswer {
    /// The zone is this session's to treat (`new`: this call claimed it).
    Claimed {
        /// This call wrote the claim.
        new: bool,
    },
    /// Treated too recently in another session.
    TreatedOn {
        /// That day.
        date: Date,
        /// That session.
        session_id: String,
        /// Its station.
        station_id: String,
    },
}

/// Claims a zone for a session unless another session treated it for the client
/// too recently (`allowed`), in one transaction under an advisory lock on (client, zone):
/// two stations treating one client's cheeks cannot both pass.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn claim_zone(
    db: &mut postgres::Client,
    station_id: &str,
    claim: &ZoneClaimRequest,
) -> Result<ZoneAnswer, ClinicError> {
    let mut tx = db.transaction().map_err(db_error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))",
        &[&claim.client, &claim.zone],
    )
    .map_err(db_error)?;
    let mine = tx
        .query_opt(
            "SELECT 1 FROM treatments WHERE client = $1 AND zone = $2 AND session_id = $3
             AND released_at IS NULL",
            &[&claim.client, &claim.zone, &claim.session_id],
        )
        .map_err(db_error)?;
    if mine.is_some() {
        return Ok(ZoneAnswer::Claimed { new: false });
    }
    let last = tx
        .query_opt(
            "SELECT treated_on, session_id, station_id FROM treatments
             WHERE client = $1 AND zone = $2 AND session_id <> $3 AND released_at IS NULL
             ORDER BY treated_on DESC LIMIT 1",
            &[&claim.client, &claim.zone, &claim.session_id],
        )
        .map_err(db_error)?;
    if let Some(row) = last {
        let date: Date = row.get(0);
        if !(claim.allowed)(date, claim.date) {
            return Ok(ZoneAnswer::TreatedOn {
                date,
                session_id: row.get(1),
                station_id: row.get(2),
            });
        }
    }
    tx.execute(
        "INSERT INTO treatments (client, zone, treated_on, session_id, station_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client, zone, session_id) WHERE released_at IS NULL DO NOTHING",
        &[
            &claim.client,
            &claim.zone,
            &claim.date,
            &claim.session_id,
            &station_id,
        ],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(ZoneAnswer::Claimed { new: true })
}

/// The last day each zone was treated for `client`, in any session but
/// `except_session`, at any station.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn zone_history(
    db: &mut postgres::Client,
    client: &str,
    except_session: Option<&str>,
) -> Result<Vec<(String, Date)>, ClinicError> {
    let rows = db
        .query(
            "SELECT zone, max(treated_on) FROM treatments
             WHERE client = $1 AND released_at IS NULL
               AND ($2::text IS NULL OR session_id <> $2)
             GROUP BY zone ORDER BY zone",
            &[&client, &except_session],
        )
        .map_err(db_error)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
