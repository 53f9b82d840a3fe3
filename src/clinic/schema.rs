//! The clinic store's schema: numbered SQL files (`assets/clinic/V<n>__<name>.sql`)
//! compiled into the station and applied in order, all in one transaction, under an
//! advisory lock so two stations migrating at once take turns.
//!
//! `punctum_schema` lists what was applied, with each file's SHA-256: a released
//! migration that was edited is refused, and so is a store whose schema is newer
//! than this station knows (an older station must not write into tables it does not
//! understand).

use sha2::Digest as _;

use super::ClinicError;

/// One migration: version `n` is applied after `n - 1`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3...
    pub version: i32,
    /// The file's name part (`clinic_core`).
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration this station knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "clinic_core",
        sql: include_str!("../../assets/clinic/V1__clinic_core.sql"),
    },
    Migration {
        version: 2,
        name: "zone_tables",
        sql: include_str!("../../assets/clinic/V2__zone_tables.sql"),
    },
    Migration {
        version: 3,
        name: "certificates",
        sql: include_str!("../../assets/clinic/V3__certificates.sql"),
    },
    Migration {
        version: 4,
        name: "accounts",
        sql: include_str!("../../assets/clinic/V4__accounts.sql"),
    },
];

/// The schema version this station is built for: the last migration's.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// An arbitrary constant: the advisory lock every migration takes.
const MIGRATION_LOCK: i64 = 0x7075_6e63_7475_6d01;

/// The table of applied migrations.
const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS punctum_schema (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    sha256      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version before (0: an empty database).
    pub from: i32,
    /// The version after.
    pub to: i32,
}

/// The SHA-256 of a migration's SQL, lower-case hex.
fn checksum(sql: &str) -> String {
    crate::store::audit::hex(&sha2::Sha256::digest(sql.as_bytes()))
}

/// The version the store is at (0: never initialised).
///
/// # Errors
/// [`ClinicError::Db`] when it cannot be read.
pub fn version(client: &mut impl postgres::GenericClient) -> Result<i32, ClinicError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('punctum_schema') IS NOT NULL", &[])
        .map_err(super::db_error)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM punctum_schema", &[])
        .map_err(super::db_error)?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Applies the migrations up to `target` (normally [`SCHEMA_VERSION`]) in one
/// transaction.
///
/// # Errors
/// [`ClinicError::Schema`] when the store is newer than `target` or an applied
/// migration differs from this station's; [`ClinicError::Db`] when a statement
/// fails (nothing is applied then).
pub fn migrate(client: &mut postgres::Client, target: i32) -> Result<Migrated, ClinicError> {
    let mut tx = client.transaction().map_err(super::db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(super::db_error)?;
    tx.batch_execute(SCHEMA_TABLE).map_err(super::db_error)?;
    let applied = applied(&mut tx)?;
    let from = applied.last().map_or(0, |(v, _)| *v);
    check_applied(&applied, target)?;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
    {
        tx.batch_execute(m.sql).map_err(|e| {
            ClinicError::Schema(format!(
                "migration {} ({}) failed, nothing was applied: {}",
                m.version,
                m.name,
                super::pg_reason(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO punctum_schema (version, name, sha256) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .map_err(super::db_error)?;
    }
    tx.commit().map_err(super::db_error)?;
    Ok(Migrated {
        from,
        to: target.max(from),
    })
}

/// The migrations applied, in order: version and SHA-256.
fn applied(client: &mut impl postgres::GenericClient) -> Result<Vec<(i32, String)>, ClinicError> {
    Ok(client
        .query(
            "SELECT version, sha256 FROM punctum_schema ORDER BY version",
            &[],
        )
        .map_err(super::db_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Refuses a store this station cannot use as it is: newer than `target`, or with a
/// migration whose SQL is not this station's.
fn check_applied(applied: &[(i32, String)], target: i32) -> Result<(), ClinicError> {
    if let Some((newest, _)) = applied.last()
        && *newest > target
    {
        return Err(ClinicError::Schema(format!(
            "the clinic store's schema is version {newest}; this station is built for \
             version {target}: update this station"
        )));
    }
    for (version, sum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(m) if checksum(m.sql) == *sum => {}
            Some(m) => {
                return Err(ClinicError::Schema(format!(
                    "migration {version} ({}) in the clinic store differs from this \
                     station's: the store was migrated by another build",
                    m.name
                )));
            }
            None => {
                return Err(ClinicError::Schema(format!(
                    "the clinic store lists migration {version}, which this station does not know"
                )));
            }
        }
    }
    Ok(())
}

/// Checks that the store is at exactly this station's [`SCHEMA_VERSION`], before a
/// station uses it.
///
/// # Errors
/// [`ClinicError::Schema`] saying what to run (`punctum clinic init`, `migrate`, or
/// an update of the station).
pub fn check_current(client: &mut postgres::Client) -> Result<(), ClinicError> {
    let current = version(client)?;
    if current > 0 {
        check_applied(&applied(client)?, SCHEMA_VERSION)?;
    }
    match current {
        0 => Err(ClinicError::Schema(
            "the clinic store has no schema yet: run `punctum clinic init`".into(),
        )),
        v if v < SCHEMA_VERSION => Err(ClinicError::Schema(format!(
            "the clinic store's schema is version {v}, this station needs {SCHEMA_VERSION}: \
             run `punctum clinic migrate`"
        ))),
        v if v > SCHEMA_VERSION => Err(ClinicError::Schema(format!(
            "the clinic store's schema is version {v}; this station is built for version \
             {SCHEMA_VERSION}: update this station"
        ))),
        _ => Ok(()),
    }
}
