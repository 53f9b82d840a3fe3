use super::*;
use crate::store::audit::{self, AuditFilter};

const ADMIN_PIN: &str = "482139";

fn data_dir() -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
    (tmp, dir)
}

fn now() -> Timestamp {
    "2026-12-01T09:00:00Z".parse().expect("time")
}

fn new(id: &str, roles: &[Role], secret: &str) -> NewAccount {
    NewAccount {
        id: id.into(),
        name: format!("{id} name"),
        roles: roles.iter().copied().collect(),
        secret: secret.into(),
    }
}

fn with_admin() -> (tempfile::TempDir, DataDir, Accounts, SignedIn) {
    let (tmp, dir) = data_dir();
    let accounts = Accounts::of(&dir);
    accounts
        .create_first_admin(&new("ana", &[Role::Admin], ADMIN_PIN), now())
        .expect("first admin");
    let admin = accounts.sign_in("ana", ADMIN_PIN, now()).expect("sign in");
    (tmp, dir, accounts, admin)
}

fn kinds(dir: &DataDir) -> Vec<AuditKind> {
    let mut kinds = Vec::new();
    audit::show(
        dir,
        &AuditFilter::default(),
        |_, l| kinds.push(l.kind),
        |_| {},
    )
    .expect("show");
    kinds
}

#[test]
fn the_first_admin_is_created_once_and_nothing_is_stored_in_clear() {
    let (_tmp, dir, accounts, admin) = with_admin();
    assert!(admin.has(Role::Admin));
    let err = accounts
        .create_first_admin(&new("eve", &[Role::Admin], "917364"), now())
        .expect_err("only once");
    assert!(matches!(err, AccountError::NotFirst), "{err}");
    let text = fs::read_to_string(dir.path(ACCOUNTS_FILE)).expect("file");
    assert!(!text.contains(ADMIN_PIN));
    assert!(text.contains("$argon2id$"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path(ACCOUNTS_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(kinds(&dir), [AuditKind::FirstAdmin, AuditKind::SignIn]);
}

#[test]
fn a_technician_pin_becomes_a_technician_account_with_the_same_pin() {
    let (_tmp, dir) = data_dir();
    TechnicianPin::set(&dir, "258013", "Ana B.").expect("old PIN");
    let accounts = Accounts::of(&dir);
    let list = accounts
        .create_first_admin(
            &new("ana", &[Role::Admin, Role::Practitioner], ADMIN_PIN),
            now(),
        )
        .expect("first admin");
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].id, "Ana-B-");
    assert_eq!(list[1].name, "Ana B.");
    assert_eq!(list[1].roles, BTreeSet::from([Role::Technician]));
    let tech = accounts
        .sign_in("Ana-B-", "258013", now())
        .expect("the old PIN works");
    assert!(tech.has(Role::Technician) && !tech.has(Role::Admin));
    assert!(!dir.path(TECHNICIAN_PIN_FILE).exists());
    assert!(dir.path(MIGRATED_PIN_FILE).exists(), "kept, renamed");
    assert!(kinds(&dir).contains(&AuditKind::AccountMigrated));
}

#[test]
fn wrong_secrets_lock_the_account_and_the_lockout_survives_a_new_reader() {
    let (_tmp, dir, accounts, _admin) = with_admin();
    for left in (1..MAX_WRONG_TRIES).rev() {
        let err = accounts.sign_in("ana", "111222", now()).expect_err("wrong");
        assert!(
            matches!(err, SignInError::Wrong { tries_left, .. } if tries_left == left),
            "{err}"
        );
    }
    let err = accounts.sign_in("ana", "111222", now()).expect_err("wrong");
    assert!(
        matches!(err, SignInError::Wrong { tries_left: 0, .. }),
        "{err}"
    );
    // A restart: a new reader of the same folder.
    let again = Accounts::of(&dir);
    let err = again.sign_in(
        "ana",
        ADMIN_PIN,
        now() + jiff::SignedDuration::from_secs(30),
    );
    assert!(
        matches!(
            err,
            Err(SignInError::LockedOut {
                retry_after_secs: 30,
                ..
            })
        ),
        "{err:?}"
    );
    // A clock stepped back a day does not lengthen it beyond LOCKOUT from now.
    let back = now() - jiff::SignedDuration::from_hours(24);
    assert!(matches!(
        again.sign_in("ana", ADMIN_PIN, back),
        Err(SignInError::LockedOut {
            retry_after_secs: 60,
            ..
        })
    ));
    again
        .sign_in("ana", ADMIN_PIN, back + jiff::SignedDuration::from_secs(61))
        .expect("after the pause");
    assert!(kinds(&dir).contains(&AuditKind::LockedOut));
}

#[test]
fn only_an_enabled_admin_manages_accounts_and_the_last_admin_stays() {
    let (_tmp, dir, accounts, admin) = with_admin();
    accounts
        .create(&admin, &new("P-7", &[Role::Practitioner], "5820317"), now())
        .expect("create");
    let p7 = accounts.sign_in("P-7", "5820317", now()).expect("sign in");
    let err = accounts
        .create(&p7, &new("eve", &[Role::Admin], "9173640"), now())
        .expect_err("not an admin");
    assert!(matches!(err, AccountError::NotAdmin { .. }), "{err}");
    assert!(matches!(
        accounts.create(&admin, &new("p-7", &[Role::Technician], "9173640"), now()),
        Err(AccountError::Exists { .. })
    ));
    assert!(matches!(
        accounts.disable(&admin, "ana", "leaving", now()),
        Err(AccountError::LastAdmin { .. })
    ));
    assert!(matches!(
        accounts.set_roles(&admin, "ana", &BTreeSet::from([Role::Practitioner]), now()),
        Err(AccountError::LastAdmin { .. })
    ));
    accounts
        .disable(&admin, "P-7", "left the clinic", now())
        .expect("disable");
    assert!(matches!(
        accounts.sign_in("P-7", "5820317", now()),
        Err(SignInError::Disabled { .. })
    ));
    assert!(accounts.get("P-7").expect("get").expect("kept").disabled);
    // An admin who lost the role since signing in can no longer act.
    accounts
        .create(&admin, &new("bo", &[Role::Admin], "7391046"), now())
        .expect("second admin");
    let bo = accounts.sign_in("bo", "7391046", now()).expect("bo");
    accounts
        .set_roles(&bo, "ana", &BTreeSet::from([Role::Practitioner]), now())
        .expect("roles");
    assert!(!accounts.still_has(&admin, Role::Admin).expect("read"));
    assert!(matches!(
        accounts.create(&admin, &new("cy", &[Role::Practitioner], "7391046"), now()),
        Err(AccountError::NotAdmin { .. })
    ));
    accounts
        .reset_secret(&bo, "ana", "a long passphrase", now())
        .expect("reset");
    accounts
        .sign_in("ana", "a long passphrase", now())
        .expect("new password");
    let all = kinds(&dir);
    for kind in [
        AuditKind::AccountCreated,
        AuditKind::AccountDisabled,
        AuditKind::AccountRoles,
        AuditKind::SecretReset,
        AuditKind::SignInFailed,
    ] {
        assert!(all.contains(&kind), "{kind} audited");
    }
    assert!(audit::verify(&dir).expect("verify").intact());
}

#[test]
fn secrets_follow_the_rules() {
    assert!(matches!(
        check_secret("1234"),
        Err(AccountError::Pin(PinRule::Sequence))
    ));
    assert!(matches!(
        check_secret("12"),
        Err(AccountError::Pin(PinRule::TooShort { .. }))
    ));
    assert!(matches!(
        check_secret("short pw"),
        Err(AccountError::PasswordLength { chars: 8 })
    ));
    assert!(check_secret("258013").is_ok());
    assert!(check_secret("correct horse").is_ok());
    assert!(check_id("P-7").is_ok());
    assert!(check_id("Ana B").is_err());
    assert!(check_id("").is_err());
    assert_eq!(
        Role::parse_list("practitioner, admin").expect("roles"),
        BTreeSet::from([Role::Practitioner, Role::Admin])
    );
    assert!(matches!(
        Role::parse_list("nurse"),
        Err(AccountError::UnknownRole { .. })
    ));
}

#[test]
fn a_damaged_accounts_file_is_an_error_never_no_accounts() {
    let (_tmp, dir, accounts, _admin) = with_admin();
    fs::write(dir.path(ACCOUNTS_FILE), "{ not json").expect("damage");
    assert!(matches!(
        accounts.is_empty(),
        Err(AccountError::Corrupt { .. })
    ));
    assert!(matches!(
        accounts.create_first_admin(&new("eve", &[Role::Admin], "917364"), now()),
        Err(AccountError::Corrupt { .. })
    ));
}

/// The lines of `account-changes.jsonl`.
fn changes(dir: &DataDir) -> Vec<AccountChange> {
    let loaded = jsonl::read_all::<AccountChange>(&dir.path(ACCOUNT_CHANGES_FILE)).expect("read");
    assert!(loaded.bad_lines.is_empty(), "torn lines");
    loaded.entries
}

#[test]
fn every_change_is_written_to_the_changes_file_with_the_whole_account() {
    let (_tmp, dir, accounts, admin) = with_admin();
    accounts
        .create(&admin, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    accounts
        .set_roles(
            &admin,
            "cara",
            &[Role::Practitioner, Role::Technician].into(),
            now(),
        )
        .expect("roles");
    accounts
        .reset_secret(&admin, "cara", "640271", now())
        .expect("reset");
    accounts
        .disable(&admin, "cara", "left the clinic", now())
        .expect("disable");
    let lines = changes(&dir);
    let kinds: Vec<&str> = lines.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["first_admin", "created", "roles", "secret", "disabled"]
    );
    let last = lines.last().expect("a line");
    assert_eq!(last.by, "ana");
    assert!(last.account.disabled);
    assert_eq!(last.account.roles.len(), 2);
    // The hash the file keeps is the one in the line (a store needs it to sign in).
    let file = accounts.read().expect("read");
    assert!(file.accounts[1] == last.account);
    assert!(lines.iter().all(|c| c.base_rev.is_none()));
    #[cfg(unix)]
    assert_eq!(
        crate::store::test_support::mode_of(&dir.path(ACCOUNT_CHANGES_FILE)),
        0o600
    );
}

#[test]
fn a_folder_from_before_the_changes_file_is_seeded_with_every_account() {
    let (_tmp, dir, accounts, admin) = with_admin();
    accounts
        .create(&admin, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    fs::remove_file(dir.path(ACCOUNT_CHANGES_FILE)).expect("remove");
    accounts
        .create(&admin, &new("dev", &[Role::Technician], "615283"), now())
        .expect("create");
    let kinds: Vec<(String, &str)> = changes(&dir)
        .iter()
        .map(|c| (c.account.id.clone(), c.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ana".to_owned(), "seed"),
            ("cara".to_owned(), "seed"),
            ("dev".to_owned(), "created")
        ]
    );
    // seed_changes does nothing once the file exists.
    accounts.seed_changes().expect("seed");
    assert_eq!(changes(&dir).len(), 3);
}

/// Two rooms: here ana (the admin) and cara; the other room ana, cara and eli,
/// each made there (other hashes, other times).
fn two_rooms() -> (
    tempfile::TempDir,
    DataDir,
    Accounts,
    SignedIn,
    tempfile::TempDir,
    Accounts,
    SignedIn,
) {
    let (tmp, dir, accounts, admin) = with_admin();
    accounts
        .create(&admin, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    let (tmp2, _, other, other_admin) = with_admin();
    for (id, pin) in [("cara", "731904"), ("eli", "573920")] {
        other
            .create(&other_admin, &new(id, &[Role::Practitioner], pin), now())
            .expect("create");
    }
    (tmp, dir, accounts, admin, tmp2, other, other_admin)
}

#[test]
fn adopting_the_clinics_accounts_waits_for_this_stations_changes_then_takes_them() {
    let (_tmp, dir, accounts, admin, _tmp2, other, other_admin) = two_rooms();
    other
        .reset_secret(&other_admin, "cara", "902746", now())
        .expect("reset");
    let clinic: Vec<(StoredAccount, i64)> = other
        .read()
        .expect("read")
        .accounts
        .into_iter()
        .zip(10..)
        .collect();
    // Three wrong tries for cara here.
    for _ in 0..3 {
        assert!(accounts.sign_in("cara", "111111", now()).is_err());
    }
    let written = fs::metadata(dir.path(ACCOUNT_CHANGES_FILE))
        .expect("meta")
        .len();
    assert_eq!(
        accounts
            .adopt(&clinic, &[], Some(written - 1), now())
            .expect("adopt"),
        Adoption::Waiting,
        "a change not in the store yet is never undone"
    );
    assert!(accounts.sign_in("cara", "731904", now()).is_ok());
    let Adoption::Done(done) = accounts
        .adopt(&clinic, &[], Some(written), now())
        .expect("adopt")
    else {
        panic!("waiting");
    };
    let said: Vec<(&str, &str)> = done
        .iter()
        .map(|a| (a.id.as_str(), a.what.as_str()))
        .collect();
    assert!(
        said.contains(&("cara", "secret as in the clinic store")),
        "{said:?}"
    );
    assert!(
        said.contains(&("eli", "added from the clinic store")),
        "{said:?}"
    );
    assert!(
        matches!(
            accounts.sign_in("cara", "731904", now()),
            Err(SignInError::Wrong { tries_left: 4, .. })
        ),
        "the old PIN is gone, and the lockout count restarted with the new secret"
    );
    assert!(accounts.sign_in("cara", "902746", now()).is_ok());
    assert!(accounts.sign_in("eli", "573920", now()).is_ok());
    assert_eq!(
        accounts.get("eli").expect("get").map(|a| a.created_by),
        Some("ana".to_owned())
    );
    // Nothing new: nothing changes, nothing is audited.
    let synced = |dir: &DataDir| {
        kinds(dir)
            .iter()
            .filter(|k| **k == AuditKind::AccountSynced)
            .count()
    };
    let before = synced(&dir);
    assert!(before >= 2);
    assert_eq!(
        accounts
            .adopt(&clinic, &[], Some(written), now())
            .expect("adopt"),
        Adoption::Done(Vec::new())
    );
    assert_eq!(synced(&dir), before);
    // Changes made here now carry the clinic's revision.
    accounts
        .set_roles(&admin, "eli", &[Role::Technician].into(), now())
        .expect("roles");
    assert_eq!(changes(&dir).last().and_then(|c| c.base_rev), Some(12));
}

#[test]
fn a_local_account_the_clinic_never_heard_of_is_disabled_on_adoption() {
    let (_tmp, dir, accounts, _admin) = with_admin();
    let clinic: Vec<(StoredAccount, i64)> =
        vec![(accounts.read().expect("read").accounts[0].clone(), 1)];
    // An account added by hand to accounts.json, with no line in the changes file.
    let mut file = accounts.read().expect("read");
    let mut forged = file.accounts[0].clone();
    "mallory".clone_into(&mut forged.id);
    file.accounts.push(forged);
    accounts.write(&file).expect("write");
    let written = fs::metadata(dir.path(ACCOUNT_CHANGES_FILE))
        .expect("meta")
        .len();
    let Adoption::Done(done) = accounts
        .adopt(&clinic, &[], Some(written), now())
        .expect("adopt")
    else {
        panic!("waiting");
    };
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, "mallory");
    assert!(matches!(
        accounts.sign_in("mallory", ADMIN_PIN, now()),
        Err(SignInError::Disabled { .. })
    ));
    assert!(accounts.sign_in("ana", ADMIN_PIN, now()).is_ok());
    // An empty store takes nothing from nobody.
    assert_eq!(
        accounts
            .adopt(&[], &[], Some(written), now())
            .expect("adopt"),
        Adoption::Done(Vec::new())
    );
}

#[test]
fn a_torn_last_line_a_damaged_clinic_row_and_a_blocked_file_do_not_stop_adoption() {
    let (_tmp, dir, accounts, admin, _tmp2, other, _) = two_rooms();
    let mut clinic: Vec<(StoredAccount, i64)> = other
        .read()
        .expect("read")
        .accounts
        .into_iter()
        .zip(1..)
        .collect();
    // The store's cara was edited by hand into a hash no station can read.
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$notahash".clone_into(&mut clinic[1].0.secret);
    let path = dir.path(ACCOUNT_CHANGES_FILE);
    let written = fs::metadata(&path).expect("meta").len();
    // A write cut short at the end of the changes file: no change, no wait.
    std::io::Write::write_all(
        &mut fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open"),
        b"{\"kind\":\"roles\",\"acc",
    )
    .expect("torn");
    let Adoption::Done(done) = accounts
        .adopt(&clinic, &[], Some(written), now())
        .expect("adopt")
    else {
        panic!("a torn last line held the adoption");
    };
    let ids: Vec<&str> = done.iter().map(|a| a.id.as_str()).collect();
    assert!(ids.contains(&"eli"), "{ids:?}");
    assert!(
        !ids.contains(&"cara"),
        "a damaged row is not taken: {ids:?}"
    );
    // This station's own cara stands, and everyone still signs in.
    assert!(accounts.sign_in("cara", "731904", now()).is_ok());
    assert!(accounts.sign_in("eli", "573920", now()).is_ok());
    assert!(accounts.sign_in("ana", ADMIN_PIN, now()).is_ok());
    // A row the store could not even read as an account: named, and this
    // station's copy kept.
    let without_cara: Vec<(StoredAccount, i64)> = clinic
        .iter()
        .filter(|(a, _)| a.id != "cara")
        .cloned()
        .collect();
    let damaged = [("cara".to_owned(), "not an account".to_owned())];
    accounts
        .adopt(&without_cara, &damaged, Some(written), now())
        .expect("adopt");
    assert!(
        !accounts.get("cara").expect("get").expect("cara").disabled,
        "not disabled for a damaged row"
    );
    // A blocked changes file (no wait): the clinic's accounts are taken anyway.
    accounts
        .create(&admin, &new("fay", &[Role::Practitioner], "830541"), now())
        .expect("create");
    assert_eq!(
        accounts
            .adopt(&without_cara, &damaged, Some(written), now())
            .expect("adopt"),
        Adoption::Waiting
    );
    let Adoption::Done(done) = accounts
        .adopt(&without_cara, &damaged, None, now())
        .expect("adopt")
    else {
        panic!("waiting");
    };
    assert!(
        done.iter()
            .any(|a| a.id == "fay" && a.what.starts_with("disabled"))
    );
}

#[test]
fn accounts_taken_from_the_clinic_are_not_seeded_back() {
    let (_tmp, dir, accounts, admin) = with_admin();
    let mut file = accounts.read().expect("read");
    file.accounts[0].clinic_rev = Some(4);
    accounts.write(&file).expect("write");
    fs::remove_file(dir.path(ACCOUNT_CHANGES_FILE)).expect("remove");
    accounts
        .create(&admin, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    let kinds: Vec<&str> = changes(&dir).iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["created"], "ana is the clinic's: no seed line");
}

#[test]
fn an_account_the_clinic_gave_and_has_lost_is_kept_as_it_was() {
    let (_tmp, dir, accounts, admin) = with_admin();
    accounts
        .create(&admin, &new("cara", &[Role::Practitioner], "731904"), now())
        .expect("create");
    let mut file = accounts.read().expect("read");
    let clinic: Vec<(StoredAccount, i64)> = file.accounts.iter().cloned().zip(1..).collect();
    let written = fs::metadata(dir.path(ACCOUNT_CHANGES_FILE))
        .expect("meta")
        .len();
    accounts
        .adopt(&clinic, &[], Some(written), now())
        .expect("adopt");
    // The store restored from a backup older than cara: she stays as she was.
    file = accounts.read().expect("read");
    assert!(file.accounts[1].clinic_rev.is_some());
    let Adoption::Done(done) = accounts
        .adopt(&clinic[..1], &[], Some(written), now())
        .expect("adopt")
    else {
        panic!("waiting");
    };
    assert!(done.is_empty(), "{done:?}");
    assert!(
        accounts.sign_in("CARA", "731904", now()).is_ok(),
        "ids ignore case"
    );
}
