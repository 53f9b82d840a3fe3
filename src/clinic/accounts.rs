//! The clinic's accounts in the store. Every admin change at a station is first a
//! line of its `account-changes.jsonl` (the data folder first); the upload applies
//! each line with the one rule of [`merge`] (the clinic's account stands, a change
//! sets only its own fields, no clinic without an enabled admin), and records every
//! line, taken or refused. Each station then takes the clinic's accounts
//! ([`crate::store::accounts::Accounts::adopt`]) within a second of a change, once
//! its own changes are in: a practitioner created in room 1 signs in in room 2, and
//! one disabled in room 1 no longer can.
//!
//! Lockouts (wrong tries) stay per station; the store never sees a secret in clear.

use postgres::Transaction;

use super::streams::Batch;
use super::upload::Applied;
use super::{ClinicError, db_error};
use crate::store::account_changes::{AccountChange, ClinicAccount, StoreView, merge};
use crate::store::accounts::StoredAccount;

/// The advisory lock every accounts batch holds: changes are applied one station at
/// a time, so their sequence numbers commit in order (a station that saw revision
/// `n` has seen every change before it) and two rooms cannot each disable one of the
/// last two admins.
const ACCOUNTS_LOCK: i64 = 0x5055_4e43_4143_4354; // "PUNCACCT"

/// A batch of `account-changes.jsonl`.
pub(super) fn apply_lines(
    tx: &mut Transaction<'_>,
    station_id: &str,
    batch: &Batch,
) -> Result<Applied, ClinicError> {
    let mut applied = Applied::default();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACCOUNTS_LOCK])
        .map_err(db_error)?;
    let lines: Vec<(u64, serde_json::Value)> =
        super::upload::parsed(batch, &mut applied.warnings).collect();
    for (n, line) in lines {
        let change: AccountChange = match serde_json::from_value(line.clone()) {
            Ok(change) => change,
            Err(e) => {
                applied.warnings.push(format!(
                    "line {n}: {e} (kept in the local file, not in the clinic store)"
                ));
                continue;
            }
        };
        let line_no = i64::try_from(n).unwrap_or(i64::MAX);
        let id = change.account.id().to_owned();
        let (current, facts) = held(tx, &change, station_id)?;
        let verdict = match &current {
            Err(why) => Err(format!(
                "the clinic store's account {id} is damaged ({why}): the {} change is not \
                 taken",
                change.kind.as_str()
            )),
            Ok(current) => merge(
                &StoreView {
                    current: current.as_ref(),
                    ..facts
                },
                &change,
                station_id,
            ),
        };
        let refusal = verdict.as_ref().err().cloned();
        let seq: Option<i64> = tx
            .query_opt(
                "INSERT INTO account_changes (station_id, line_no, account_id, kind,
                     changed_by, changed_at, taken, refusal, change)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (station_id, line_no) DO NOTHING
                 RETURNING seq",
                &[
                    &station_id,
                    &line_no,
                    &id,
                    &change.kind.as_str(),
                    &change.by,
                    &change.at,
                    &verdict.is_ok(),
                    &refusal,
                    &line,
                ],
            )
            .map_err(db_error)?
            .map(|r| r.get(0));
        // Already recorded (a batch sent twice): applied the first time.
        let Some(seq) = seq else {
            continue;
        };
        match verdict {
            Ok(account) => {
                let json = serde_json::to_value(&account)
                    .map_err(|e| ClinicError::Db(format!("account {id}: {e}")))?;
                let stored_id = account.id().to_owned();
                if matches!(current, Ok(Some(_))) {
                    tx.execute(
                        "UPDATE accounts SET account = $2, rev = $3, updated_at = now()
                         WHERE lower(account_id) = lower($1)",
                        &[&stored_id, &json, &seq],
                    )
                    .map_err(db_error)?;
                } else {
                    tx.execute(
                        "INSERT INTO accounts (account_id, account, rev, origin_station)
                         VALUES ($1, $2, $3, $4)",
                        &[&stored_id, &json, &seq, &station_id],
                    )
                    .map_err(db_error)?;
                }
            }
            Err(why) => applied.warnings.push(format!(
                "line {n}: {why} (the change stays in the local file; this station takes \
                 the clinic's accounts)"
            )),
        }
    }
    Ok(applied)
}

/// What the store holds for `change` from `station_id`: its account, locked for this
/// transaction (`Err`: the row is not an account someone can sign in with, edited by
/// hand), and the rest of [`StoreView`] (its `current` left `None`).
fn held(
    tx: &mut Transaction<'_>,
    change: &AccountChange,
    station_id: &str,
) -> Result<(Result<Option<ClinicAccount>, String>, StoreView<'static>), ClinicError> {
    let id = change.account.id();
    let row = tx
        .query_opt(
            "SELECT account, origin_station FROM accounts
                 WHERE lower(account_id) = lower($1) FOR UPDATE",
            &[&id],
        )
        .map_err(db_error)?;
    let current = match row {
        Some(r) => readable(r.get(0), id)
            .map(|account| {
                Some(ClinicAccount {
                    account,
                    origin_station: r.get(1),
                })
            })
            .map_err(|e| e.reason().to_owned()),
        None => Ok(None),
    };
    // Text comparisons only: a row edited by hand must not fail the batch.
    let facts = tx
        .query_one(
            "SELECT
                 count(*) FILTER (WHERE lower(account_id) <> lower($1) AND enabled_admin),
                 coalesce(bool_or(origin_station <> $2), false),
                 coalesce(bool_or(lower(account_id) = lower($3) AND enabled_admin), false)
             FROM (SELECT account_id, origin_station,
                          coalesce(account->>'disabled', 'false') <> 'true'
                          AND coalesce(account->'roles' ? 'admin', false) AS enabled_admin
                   FROM accounts) a",
            &[&id, &station_id, &change.by],
        )
        .map_err(db_error)?;
    Ok((
        current,
        StoreView {
            current: None,
            other_enabled_admins: facts.get(0),
            others_accounts: facts.get(1),
            by_is_admin: facts.get(2),
        },
    ))
}

/// The clinic's newest account revision (0: no account yet): cheap, polled each
/// second; the accounts are read only when it moves.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
pub fn revision(db: &mut postgres::Client) -> Result<i64, ClinicError> {
    Ok(db
        .query_one("SELECT coalesce(max(rev), 0)::bigint FROM accounts", &[])
        .map_err(db_error)?
        .get(0))
}

/// Every account in the store with its revision, by id; and the rows a station must
/// not take (not an account, an id that is not one, a hash that is not an Argon2id
/// PHC string: hand-edited), by id with why. A station never writes into its own
/// accounts file what it could not read back.
///
/// # Errors
/// [`ClinicError::Unreachable`] or [`ClinicError::Db`].
#[allow(clippy::type_complexity)]
pub fn all(
    db: &mut postgres::Client,
) -> Result<(Vec<(StoredAccount, i64)>, Vec<(String, String)>), ClinicError> {
    let rows = db
        .query(
            "SELECT account_id, account, rev FROM accounts ORDER BY account_id",
            &[],
        )
        .map_err(db_error)?;
    let mut good = Vec::new();
    let mut damaged = Vec::new();
    for r in &rows {
        let id: String = r.get(0);
        match readable(r.get(1), &id) {
            Ok(account) => good.push((account, r.get(2))),
            Err(e) => damaged.push((id, e.reason().to_owned())),
        }
    }
    Ok((good, damaged))
}

/// The account in row `id`, if a station can keep it: an account's shape, its own
/// id, a valid id and an Argon2id hash within the station's limits
/// (`check_stored`). `Err`: the row was edited by hand.
fn readable(json: serde_json::Value, id: &str) -> Result<StoredAccount, ClinicError> {
    let account: StoredAccount = serde_json::from_value(json)
        .map_err(|e| ClinicError::Db(format!("the store's account {id}: {e}")))?;
    crate::store::accounts::check_stored(&account).map_err(ClinicError::Db)?;
    if !account.id().eq_ignore_ascii_case(id) {
        return Err(ClinicError::Db(format!("the row names {}", account.id())));
    }
    Ok(account)
}
