use std::collections::BTreeSet;

use super::*;
use crate::store::DataDir;
use crate::store::accounts::{Accounts, NewAccount, Role};

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

/// The store as a change by one of its enabled admins finds it.
fn view(current: Option<&ClinicAccount>, other_enabled_admins: i64) -> StoreView<'_> {
    StoreView {
        current,
        other_enabled_admins,
        others_accounts: false,
        by_is_admin: true,
    }
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
    let taken = merge(&view(None, 1), created, "room-1").expect("new to the store");
    assert!(taken == created.account);
    let mut clinics = created.account.clone();
    "Cara".clone_into(&mut clinics.id);
    let refused = merge(&view(Some(&held(&clinics, "room-2")), 1), created, "room-1")
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
    let merged = merge(
        &view(Some(&held(&in_store, "room-2")), 1),
        &reset_on_rev,
        "room-1",
    )
    .expect("taken");
    assert!(merged.disabled, "the disabling elsewhere stands");
    assert_eq!(merged.secret, reset.account.secret);
    // And the other way round.
    let mut disabled_on_rev = disabled.clone();
    disabled_on_rev.base_rev = Some(7);
    let merged = merge(
        &view(Some(&held(&created.account, "room-2")), 1),
        &disabled_on_rev,
        "room-1",
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
    let refused = merge(
        &view(Some(&held(&lines[1].account, "room-2")), 1),
        reset,
        "room-1",
    )
    .expect_err("not taken");
    assert!(refused.contains("before it took the clinic's"), "{refused}");
    // The store's cara came from room 1's own line: taken.
    assert!(
        merge(
            &view(Some(&held(&lines[1].account, "room-1")), 1),
            reset,
            "room-1"
        )
        .is_ok()
    );
    // Not in the store at all.
    assert!(merge(&view(None, 1), reset, "room-1").is_err());
}

#[test]
fn no_change_leaves_the_clinic_without_an_enabled_admin() {
    let lines = lines();
    let ana = &lines[0].account;
    let mut demoted = lines[4].clone();
    demoted.account.roles = BTreeSet::from([Role::Practitioner]);
    demoted.base_rev = Some(3);
    let refused =
        merge(&view(Some(&held(ana, "room-1")), 0), &demoted, "room-1").expect_err("last admin");
    assert!(refused.contains("last enabled admin"), "{refused}");
    assert!(merge(&view(Some(&held(ana, "room-1")), 1), &demoted, "room-1").is_ok());
}

#[test]
fn a_line_the_store_cannot_trust_is_refused() {
    let lines = lines();
    let mut unknown = lines[1].clone();
    unknown.kind = ChangeKind::Other;
    assert!(merge(&view(None, 1), &unknown, "room-1").is_err());
    let mut bad_hash = lines[1].clone();
    "plain-text-pin".clone_into(&mut bad_hash.account.secret);
    let refused = merge(&view(None, 1), &bad_hash, "room-1").expect_err("bad hash");
    assert!(
        !refused.contains("plain-text-pin"),
        "never quoted: {refused}"
    );
    let mut bad_id = lines[1].clone();
    "a b".clone_into(&mut bad_id.account.id);
    assert!(merge(&view(None, 1), &bad_id, "room-1").is_err());
}

#[test]
fn a_room_brings_no_accounts_of_its_own_into_a_clinic_and_only_its_admins_change_them() {
    let lines = lines();
    let (first_admin, created, reset) = (&lines[0], &lines[1], &lines[2]);
    let clinic = StoreView {
        others_accounts: true,
        ..view(None, 1)
    };
    // Its first admin from before it joined: not brought in.
    let refused = merge(&clinic, first_admin, "room-9").expect_err("not brought in");
    assert!(refused.contains("before it joined"), "{refused}");
    let mut seed = created.clone();
    seed.kind = ChangeKind::Seed;
    assert!(merge(&clinic, &seed, "room-9").is_err());
    // A new clinic: its first room's accounts found it.
    assert!(merge(&view(None, 0), first_admin, "room-1").is_ok());
    // An account created, or changed, by someone who is not the clinic's admin.
    let outsider = StoreView {
        by_is_admin: false,
        ..clinic
    };
    let refused = merge(&outsider, created, "room-9").expect_err("not an admin");
    assert!(
        refused.contains("not an enabled admin of the clinic"),
        "{refused}"
    );
    let cara = held(&created.account, "room-1");
    let mut on_rev = reset.clone();
    on_rev.base_rev = Some(3);
    let outsider = StoreView {
        current: Some(&cara),
        ..outsider
    };
    assert!(merge(&outsider, &on_rev, "room-9").is_err());
    let admin = StoreView {
        by_is_admin: true,
        ..outsider
    };
    assert!(merge(&admin, &on_rev, "room-9").is_ok());
}
