use std::collections::BTreeSet;

use super::*;
use crate::store::DataDir;
use crate::store::accounts::{Accounts, NewAccount};

fn now() -> Timestamp {
    "2026-12-01T09:00:00Z".parse().expect("time")
}

/// The changes an admin `ana` makes in a new folder: ana created, cara created, cara's
/// PIN reset, cara disabled, cara's roles set.
fn lines() -> Vec<AccountChange> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
    let accounts = Accounts::of(&dir);
    let new = |id: &str, roles: &[Role], secret: &str| NewAccount {
        id: id.into(),
        name: format!("{id} name"),
        roles: roles.iter().copied().collect(),
        secret: secret.into(),
    };
    accounts
        .create_first_admin(&new("ana", &[Role::Admin], "482139"), now())
        .expect("first admin");
    let ana = accounts.sign_in("ana", "482139", now()).expect("sign in");
    accounts
        .create(&ana, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    accounts
        .reset_secret(&ana, "cara", "902746", now())
        .expect("reset");
    accounts
        .disable(&ana, "cara", "left", now())
        .expect("disable");
    accounts
        .set_roles(
            &ana,
            "ana",
            &BTreeSet::from([Role::Admin, Role::Practitioner]),
            now(),
        )
        .expect("roles");
    crate::store::jsonl::read_all::<AccountChange>(&dir.path(ACCOUNT_CHANGES_FILE))
        .expect("read")
        .entries
}

fn held(account: &StoredAccount, origin: &str) -> ClinicAccount {
    ClinicAccount {
        account: account.clone(),
        origin_station: origin.into(),
    }
}

#[test]
fn an_account_the_clinic_has_already_stands() {
    let lines = lines();
    let created = &lines[1];
    assert_eq!(created.kind, ChangeKind::Created);
    let taken = merge(None, created, "room-1", 1).expect("new to the store");
    assert!(taken == created.account);
    let mut clinics = created.account.clone();
    "Cara".clone_into(&mut clinics.id);
    let refused = merge(Some(&held(&clinics, "room-2")), created, "room-1", 1)
        .expect_err("the clinic's stands");
    assert!(
        refused.contains("exists in the clinic store already"),
        "{refused}"
    );
    assert!(refused.contains("room-2"), "{refused}");
}

#[test]
fn a_change_sets_only_what_it_changed() {
    let lines = lines();
    let (created, reset, disabled) = (&lines[1], &lines[2], &lines[3]);
    // Disabled at room 2 first; room 1's PIN reset (made on the clinic's revision)
    // arrives later: both hold.
    let mut in_store = created.account.clone();
    in_store.disabled = true;
    let mut reset_on_rev = reset.clone();
    reset_on_rev.base_rev = Some(7);
    let merged =
        merge(Some(&held(&in_store, "room-2")), &reset_on_rev, "room-1", 1).expect("taken");
    assert!(merged.disabled, "the disabling elsewhere stands");
    assert_eq!(merged.secret, reset.account.secret);
    // And the other way round.
    let mut disabled_on_rev = disabled.clone();
    disabled_on_rev.base_rev = Some(7);
    let merged = merge(
        Some(&held(&created.account, "room-2")),
        &disabled_on_rev,
        "room-1",
        1,
    )
    .expect("taken");
    assert!(merged.disabled);
    assert_eq!(
        merged.secret, created.account.secret,
        "the secret is not touched"
    );
}

#[test]
fn a_change_to_a_stations_own_account_before_it_took_the_clinics_is_refused() {
    let lines = lines();
    let reset = &lines[2];
    assert!(reset.base_rev.is_none());
    // The store's cara came from room 2: room 1's old change to its own cara is not
    // applied to room 2's.
    let refused =
        merge(Some(&held(&lines[1].account, "room-2")), reset, "room-1", 1).expect_err("not taken");
    assert!(refused.contains("before it took the clinic's"), "{refused}");
    // The store's cara came from room 1's own line: taken.
    assert!(merge(Some(&held(&lines[1].account, "room-1")), reset, "room-1", 1).is_ok());
    // Not in the store at all.
    assert!(merge(None, reset, "room-1", 1).is_err());
}

#[test]
fn no_change_leaves_the_clinic_without_an_enabled_admin() {
    let lines = lines();
    let ana = &lines[0].account;
    let mut demoted = lines[4].clone();
    demoted.account.roles = BTreeSet::from([Role::Practitioner]);
    demoted.base_rev = Some(3);
    let refused = merge(Some(&held(ana, "room-1")), &demoted, "room-1", 0).expect_err("last admin");
    assert!(refused.contains("last enabled admin"), "{refused}");
    assert!(merge(Some(&held(ana, "room-1")), &demoted, "room-1", 1).is_ok());
}

#[test]
fn a_line_the_store_cannot_trust_is_refused() {
    let lines = lines();
    let mut unknown = lines[1].clone();
    unknown.kind = ChangeKind::Other;
    assert!(merge(None, &unknown, "room-1", 1).is_err());
    let mut bad_hash = lines[1].clone();
    "plain-text-pin".clone_into(&mut bad_hash.account.secret);
    let refused = merge(None, &bad_hash, "room-1", 1).expect_err("bad hash");
    assert!(
        !refused.contains("plain-text-pin"),
        "never quoted: {refused}"
    );
    let mut bad_id = lines[1].clone();
    "a b".clone_into(&mut bad_id.account.id);
    assert!(merge(None, &bad_id, "room-1", 1).is_err());
}
