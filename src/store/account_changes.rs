//! The accounts' changes (`account-changes.jsonl`): what a clinic store needs to share
//! one set of accounts between stations.
//!
//! Every change an admin makes here (an account created, disabled, its roles or its
//! secret set) is appended as one line holding the whole account after the change,
//! under the accounts' lock and *before* `accounts.json` is replaced, whether or not
//! the station belongs to a clinic. The first line written in a folder whose accounts
//! existed before the file did is preceded by one `seed` line per account, so the
//! file always accounts for every account. It holds the Argon2id hashes: mode 0600,
//! like `accounts.json`.
//!
//! A clinic store applies each line with [`merge`], the one rule for what the clinic
//! takes; every station then adopts the clinic's accounts
//! ([`super::accounts::Accounts::adopt`]).

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::accounts::{StoredAccount, check_stored};

/// The changes' file in the data folder.
pub const ACCOUNT_CHANGES_FILE: &str = "account-changes.jsonl";

/// What a line of [`ACCOUNT_CHANGES_FILE`] did. Serialized in `snake_case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// An account that existed before this file did (written when the file starts).
    Seed,
    /// The first admin (the station's first start).
    FirstAdmin,
    /// The old technician PIN, made an account.
    Migrated,
    /// An admin created the account.
    Created,
    /// An admin disabled it.
    Disabled,
    /// An admin set its roles.
    Roles,
    /// An admin set its PIN or password.
    Secret,
    /// A kind a later version wrote: refused by this version's store rule.
    #[serde(other)]
    Other,
}

impl ChangeKind {
    /// Whether the line brings a whole new account (rather than changing one).
    #[must_use]
    pub fn creates(self) -> bool {
        matches!(
            self,
            Self::Seed | Self::FirstAdmin | Self::Migrated | Self::Created
        )
    }

    /// The name in the file and in the store (`first_admin`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::FirstAdmin => "first_admin",
            Self::Migrated => "migrated",
            Self::Created => "created",
            Self::Disabled => "disabled",
            Self::Roles => "roles",
            Self::Secret => "secret",
            Self::Other => "other",
        }
    }
}

/// One line of [`ACCOUNT_CHANGES_FILE`]. No `Debug` of the hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountChange {
    /// What was done.
    pub kind: ChangeKind,
    /// The whole account after the change (the hash included).
    pub account: StoredAccount,
    /// The clinic store's revision of the account this change was made on: `None`
    /// when the station had not taken the account from a clinic store yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_rev: Option<i64>,
    /// The admin's account (for a seed: who created the account).
    pub by: String,
    /// When.
    pub at: Timestamp,
}

impl fmt::Debug for AccountChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountChange")
            .field("kind", &self.kind)
            .field("account", &self.account.id)
            .field("base_rev", &self.base_rev)
            .field("by", &self.by)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// An account as the clinic store holds it.
#[derive(Clone)]
pub struct ClinicAccount {
    /// The account (its `clinic_rev` unset: the store keeps the revision apart).
    pub account: StoredAccount,
    /// The station whose line created it in the store.
    pub origin_station: String,
}

/// What the clinic store holds that a change is judged on.
#[derive(Clone, Copy, Default)]
pub struct StoreView<'a> {
    /// The account the change names (by id, ignoring case), if the store has it.
    pub current: Option<&'a ClinicAccount>,
    /// The store's enabled admins other than this account.
    pub other_enabled_admins: i64,
    /// Whether the store holds an account another station brought: the clinic exists
    /// apart from this station.
    pub others_accounts: bool,
    /// Whether the change's author (`by`) is an enabled admin in the store.
    pub by_is_admin: bool,
}

/// The clinic's account once `change`, from `station_id`, is applied to what the
/// store holds (`store`), or why the store refuses it.
///
/// The rules:
/// - A line that brings an account (seed, first admin, migrated, created) is taken
///   only if the store has no account of that id: the clinic's account stands, and
///   the station takes it (two rooms cannot both own "admin").
/// - A station's own accounts from before it joined (seed, first admin, migrated)
///   found a new clinic, but are not brought into a clinic that has accounts from
///   other stations: a room that joins brings in no admin of its own.
/// - Every other change (created, disabled, roles, secret) is taken only from an
///   enabled admin of the clinic, and sets only what it changed: a PIN reset in one
///   room and a disabling in another both hold.
/// - A change made to an account before the station took the clinic's (no
///   `base_rev`) is taken only if this station's own line created it in the store.
/// - No change leaves the clinic without an enabled admin.
///
/// # Errors
/// The refusal, as a sentence for the station's operator and the store's row.
pub fn merge(
    store: &StoreView<'_>,
    change: &AccountChange,
    station_id: &str,
) -> Result<StoredAccount, String> {
    let (current, other_enabled_admins) = (store.current, store.other_enabled_admins);
    let id = &change.account.id;
    check_stored(&change.account)?;
    if change.kind == ChangeKind::Other {
        return Err(format!(
            "account {id}: a change of a kind this version does not know"
        ));
    }
    if change.kind.creates() {
        if let Some(held) = current {
            return Err(format!(
                "an account {} exists in the clinic store already (from station {}): \
                 the clinic's stands, and this station takes it",
                held.account.id, held.origin_station
            ));
        }
        let own = change.kind != ChangeKind::Created;
        if own && store.others_accounts {
            return Err(format!(
                "account {id} was made at this station before it joined the clinic ({}): \
                 a room brings no accounts of its own into a clinic that has accounts; \
                 the clinic's admin adds it",
                change.kind.as_str()
            ));
        }
        if !own && !store.by_is_admin {
            return Err(not_an_admin(change));
        }
        let mut account = change.account.clone();
        account.clinic_rev = None;
        return Ok(account);
    }
    let Some(held) = current else {
        return Err(format!(
            "account {id} is not in the clinic store: its {} change is not taken",
            change.kind.as_str()
        ));
    };
    if !store.by_is_admin {
        return Err(not_an_admin(change));
    }
    if change.base_rev.is_none() && held.origin_station != station_id {
        return Err(format!(
            "the {} change of {id} was made to this station's own account before it took \
             the clinic's (from station {}): not taken",
            change.kind.as_str(),
            held.origin_station
        ));
    }
    let mut account = held.account.clone();
    match change.kind {
        ChangeKind::Disabled => account.disabled = change.account.disabled,
        ChangeKind::Roles => account.roles.clone_from(&change.account.roles),
        ChangeKind::Secret => {
            account.secret.clone_from(&change.account.secret);
            account
                .secret_set_by
                .clone_from(&change.account.secret_set_by);
            account.secret_set_at = change.account.secret_set_at;
        }
        _ => unreachable!("creating kinds returned above"),
    }
    if held.account.is_enabled_admin() && !account.is_enabled_admin() && other_enabled_admins == 0 {
        return Err(format!(
            "{id} is the clinic's last enabled admin: its {} change is not taken",
            change.kind.as_str()
        ));
    }
    account.clinic_rev = None;
    Ok(account)
}

/// The refusal of a change whose author is not an enabled admin of the clinic.
fn not_an_admin(change: &AccountChange) -> String {
    format!(
        "the {} change of {} was made by {}, who is not an enabled admin of the clinic \
         (an admin of this station only, from before it joined, or disabled meanwhile): \
         not taken",
        change.kind.as_str(),
        change.account.id,
        change.by
    )
}

#[cfg(test)]
#[path = "account_changes_tests.rs"]
mod tests;
