//! The station's accounts (`accounts.json`): who may treat, calibrate and manage.
//!
//! Each account has an id (the name records keep: 1 to 32 of `A-Z a-z 0-9 _ -`, as
//! the screening file's practitioner), a display name, one or more [`Role`]s, and a
//! secret: a PIN (4 to 12 digits, the technician PIN's rules) or a password (10 to 128
//! characters, not all digits), stored only as a salted Argon2id PHC string. Accounts
//! are never deleted, only disabled: the records keep their ids.
//!
//! # Who may do what
//! The rules live here, below every front end. A [`SignedIn`] is made only by
//! [`Accounts::sign_in`], and every change takes one and checks, on the file as it is
//! now (another station may have changed it), that the account is still enabled and
//! an admin. The last enabled admin cannot be disabled or lose the role.
//!
//! # The first start
//! With no account yet, [`Accounts::create_first_admin`] creates the first admin. A
//! `technician-pin.json` from before accounts becomes a technician account with the
//! same hash, so the technician keeps the PIN; the old file is renamed
//! `technician-pin.migrated.json`, never deleted.
//!
//! # Guessing
//! After [`MAX_WRONG_TRIES`] wrong secrets in a row an account's sign-ins are refused
//! for [`LOCKOUT`]. The count and the lockout are kept in `sign-in-lockouts.json`
//! under the accounts' lock, so a restart or another station does not reset them. A
//! wall clock stepped back before a lockout began restarts the lockout from now (it
//! never lasts longer than [`LOCKOUT`] from a reading of the clock).
//!
//! Every change and every sign-in, right or wrong, is appended to the audit log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::account_changes::{ACCOUNT_CHANGES_FILE, AccountChange, ChangeKind};
use super::audit::{AuditEvent, AuditKind, AuditLog};
use super::technician::{self, PinRule, TECHNICIAN_PIN_FILE, TechnicianPin, parse_hash};
use super::{DataDir, StoreError, jsonl, replace_file};

pub use super::technician::{LOCKOUT, MAX_WRONG_TRIES};

/// The accounts' file in the data folder.
pub const ACCOUNTS_FILE: &str = "accounts.json";

/// Wrong tries and lockouts, per account.
pub const LOCKOUTS_FILE: &str = "sign-in-lockouts.json";

/// Taken (`flock`) around every change of the two files above.
const LOCK_FILE: &str = "accounts.lock";

/// Where the old technician PIN goes once it is an account.
pub const MIGRATED_PIN_FILE: &str = "technician-pin.migrated.json";

/// The fewest characters of a password (a secret that is not all digits).
pub const PASSWORD_MIN_CHARS: usize = 10;

/// The most characters of a password.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// What an account may do. An account holds one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Treats: opens sessions, runs the needle, records steps, signs records.
    Practitioner,
    /// Calibrates pens (technician mode).
    Technician,
    /// Manages accounts, the zone limits and the settings.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Practitioner, Role::Technician, Role::Admin];

    /// The name in files and commands.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Technician => "technician",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == name.trim())
    }

    /// Roles from a comma-separated list (`practitioner,technician`).
    pub fn parse_list(text: &str) -> Result<BTreeSet<Role>, AccountError> {
        let mut roles = BTreeSet::new();
        for name in text.split(',').filter(|n| !n.trim().is_empty()) {
            roles.insert(Role::parse(name).ok_or_else(|| AccountError::UnknownRole {
                name: name.trim().to_owned(),
            })?);
        }
        if roles.is_empty() {
            return Err(AccountError::NoRole);
        }
        Ok(roles)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles as `practitioner,technician`.
#[must_use]
pub fn roles_text(roles: &BTreeSet<Role>) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Why an account operation was refused. None holds a secret or a hash.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The account id is not 1 to 32 of `A-Z a-z 0-9 _ -`.
    #[error("account id {id:?} is not 1 to 32 of A-Z a-z 0-9 _ -")]
    BadId {
        /// The id given.
        id: String,
    },
    /// The display name is empty or too long.
    #[error("an account's name is 1 to 64 characters")]
    BadName,
    /// An account with this id exists (ids are compared ignoring case).
    #[error("an account {id} exists already (ids are never reused, even disabled)")]
    Exists {
        /// The id.
        id: String,
    },
    /// No account with this id.
    #[error("no account {id}")]
    Unknown {
        /// The id.
        id: String,
    },
    /// A role name that is not one (digits are not repeated: a PIN typed in its place).
    #[error(
        "no role {} (roles: practitioner, technician, admin)",
        if name.bytes().all(|b| b.is_ascii_digit()) { "(digits: a PIN in the roles' place?)".to_owned() } else { format!("{name:?}") }
    )]
    UnknownRole {
        /// The name given.
        name: String,
    },
    /// No role given.
    #[error("an account needs at least one role (practitioner, technician, admin)")]
    NoRole,
    /// The PIN breaks a rule.
    #[error("the PIN is refused: {0}")]
    Pin(#[from] PinRule),
    /// The password is too short or too long.
    #[error(
        "the password is refused: {chars} characters, {PASSWORD_MIN_CHARS} to \
         {PASSWORD_MAX_CHARS} needed (or a PIN of 4 to 12 digits)"
    )]
    PasswordLength {
        /// Characters given.
        chars: usize,
    },
    /// Accounts exist: the first admin is created only once.
    #[error("accounts exist already: only an admin adds accounts")]
    NotFirst,
    /// The accounts file is empty or gone, but the audit log records a first admin:
    /// the accounts were lost or removed, this is no first start.
    #[error(
        "the audit log records a first admin ({id}), but the accounts file is empty or \
         missing: restore accounts.json from a backup (a first start happens once)"
    )]
    AccountsLost {
        /// The first admin the log names.
        id: String,
    },
    /// The account doing this is not (or no longer) an admin, or is disabled.
    #[error("{id} is not an enabled admin: accounts are managed by an admin")]
    NotAdmin {
        /// Who tried.
        id: String,
    },
    /// The last enabled admin would go.
    #[error("{id} is the last enabled admin: add another admin first")]
    LastAdmin {
        /// The admin.
        id: String,
    },
    /// The account file is there but cannot be understood.
    #[error(
        "the accounts file {} is damaged ({reason}); nobody can sign in until it is \
         restored from a backup",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, without quoting it.
        reason: String,
    },
    /// The technician PIN file to migrate cannot be read.
    #[error(transparent)]
    Migration(#[from] technician::PinError),
    /// The hash could not be computed.
    #[error("cannot hash the secret: {0}")]
    Hash(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a sign-in was refused. The messages never repeat the secret.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No account with this id.
    #[error("no account {id}")]
    Unknown {
        /// The id typed.
        id: String,
    },
    /// The account is disabled.
    #[error("the account {id} is disabled")]
    Disabled {
        /// The id.
        id: String,
    },
    /// The secret is wrong.
    #[error(
        "wrong PIN or password for {id} ({})",
        match tries_left {
            0 => format!("too many wrong tries: paused for {} s", LOCKOUT.as_secs()),
            1 => "1 try left before a pause".to_owned(),
            n => format!("{n} tries left before a pause"),
        }
    )]
    Wrong {
        /// The id.
        id: String,
        /// Tries left before [`LOCKOUT`]; 0: the pause has begun.
        tries_left: u32,
    },
    /// Too many wrong secrets a moment ago.
    #[error("too many wrong tries for {id}: try again in {retry_after_secs} s")]
    LockedOut {
        /// The id.
        id: String,
        /// Whole seconds until tries are taken again.
        retry_after_secs: u64,
    },
    /// The accounts cannot be read or the lockout not kept.
    #[error(transparent)]
    Accounts(#[from] AccountError),
}

/// One account as stored (in `accounts.json`, a line of `account-changes.jsonl`, a
/// clinic store's row). No `Debug` derive: it carries the hash.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAccount {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) roles: BTreeSet<Role>,
    /// The Argon2id PHC string.
    pub(crate) secret: String,
    #[serde(default)]
    pub(crate) disabled: bool,
    pub(crate) created_by: String,
    pub(crate) created_at: Timestamp,
    pub(crate) secret_set_by: String,
    pub(crate) secret_set_at: Timestamp,
    /// The clinic store's revision this account was last taken at (only in
    /// `accounts.json`, at a station that belongs to a clinic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clinic_rev: Option<i64>,
    /// Keys a later version wrote: kept.
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, serde_json::Value>,
}

impl fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAccount")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl StoredAccount {
    /// The account's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it is enabled and holds the admin role.
    #[must_use]
    pub fn is_enabled_admin(&self) -> bool {
        !self.disabled && self.roles.contains(&Role::Admin)
    }

    /// What differs from `other`, in words (`roles, secret`); empty when the same
    /// (the clinic revision and unknown keys aside).
    fn differences(&self, other: &StoredAccount) -> Vec<&'static str> {
        let mut what = Vec::new();
        if self.id != other.id {
            what.push("id");
        }
        if self.name != other.name {
            what.push("name");
        }
        if self.roles != other.roles {
            what.push("roles");
        }
        if self.disabled != other.disabled {
            what.push(if other.disabled {
                "disabled"
            } else {
                "enabled"
            });
        }
        if self.secret != other.secret
            || self.secret_set_by != other.secret_set_by
            || self.secret_set_at != other.secret_set_at
        {
            what.push("secret");
        }
        if self.created_by != other.created_by || self.created_at != other.created_at {
            what.push("created");
        }
        what
    }
}

/// The accounts' file.
#[derive(Clone, Default, Serialize, Deserialize)]
struct AccountsFile {
    format: u32,
    accounts: Vec<StoredAccount>,
}

/// An account as others see it: never the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The id records keep.
    pub id: String,
    /// The name shown.
    pub name: String,
    /// What it may do.
    pub roles: BTreeSet<Role>,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
    /// Which admin created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When its secret was last set.
    pub secret_set_at: Timestamp,
}

impl Account {
    /// Whether it holds `role`.
    #[must_use]
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// An account whose secret was just checked. Made only by [`Accounts::sign_in`]:
/// holding one is the proof an operation asks for (and which it re-checks against
/// the file as it is now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    id: String,
    name: String,
    roles: BTreeSet<Role>,
    at: Timestamp,
}

impl SignedIn {
    /// The account's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its roles when it signed in.
    #[must_use]
    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }

    /// Whether it held `role` when it signed in.
    #[must_use]
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// When it signed in.
    #[must_use]
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// A new account, as an admin gives it.
#[derive(Clone)]
pub struct NewAccount {
    /// The id (see the module's rules).
    pub id: String,
    /// The name shown.
    pub name: String,
    /// Its roles.
    pub roles: BTreeSet<Role>,
    /// Its PIN or password.
    pub secret: String,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What [`Accounts::adopt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Changes made here are not all in the clinic store yet: nothing was touched.
    Waiting,
    /// The accounts are the clinic's; what changed here (none: they were already).
    Done(Vec<Adopted>),
}

/// One account changed by [`Accounts::adopt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The account.
    pub id: String,
    /// What changed, in words.
    pub what: String,
    /// The clinic store's revision taken (`None`: disabled, not in the store).
    pub rev: Option<i64>,
    /// Whether a station where this account is signed in must lock: what its sign-in
    /// checked (enabled, roles, secret) changed.
    pub relock: bool,
}

impl Adopted {
    /// Its audit line (`account_synced`: the clinic store acted, no account did).
    fn audit_event(&self) -> AuditEvent {
        let event = AuditEvent::new(AuditKind::AccountSynced, None)
            .with("account", self.id.clone())
            .with("change", self.what.clone());
        match self.rev {
            Some(rev) => event.with("clinic_rev", rev),
            None => event,
        }
    }
}

/// Wrong tries of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Guard {
    wrong_tries: u32,
    #[serde(default)]
    locked_at: Option<Timestamp>,
}

/// The accounts of one data folder. Every call reads the file as it is now.
#[derive(Debug, Clone)]
pub struct Accounts {
    dir: DataDir,
    audit: AuditLog,
}

impl Accounts {
    /// The accounts of `dir`; nothing is read yet.
    #[must_use]
    pub fn of(dir: &DataDir) -> Accounts {
        Accounts {
            dir: dir.clone(),
            audit: AuditLog::of(dir),
        }
    }

    /// The audit log the accounts write to.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Every account, in the order created.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.read()?.accounts.iter().map(public).collect())
    }

    /// Whether no account exists yet (the first start).
    pub fn is_empty(&self) -> Result<bool, AccountError> {
        Ok(self.read()?.accounts.is_empty())
    }

    /// The account `id`, as it is now.
    pub fn get(&self, id: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .read()?
            .accounts
            .iter()
            .find(|a| a.id == id)
            .map(public))
    }

    /// Whether `who` is still enabled and holds `role`, on the file as it is now.
    pub fn still_has(&self, who: &SignedIn, role: Role) -> Result<bool, AccountError> {
        Ok(self
            .get(&who.id)?
            .is_some_and(|a| !a.disabled && a.has(role)))
    }

    /// Creates the first admin (`roles` holds admin and any others), and moves an old
    /// technician PIN into an account. Refused once any account exists.
    pub fn create_first_admin(
        &self,
        new: &NewAccount,
        now: Timestamp,
    ) -> Result<Vec<Account>, AccountError> {
        check_new(new)?;
        let phc = hash_secret(&new.secret)?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        if !file.accounts.is_empty() {
            return Err(AccountError::NotFirst);
        }
        // Deleting accounts.json must not make anyone the admin: the log remembers.
        let filter = super::audit::AuditFilter {
            kinds: vec![AuditKind::FirstAdmin],
            ..super::audit::AuditFilter::default()
        };
        let mut earlier = None;
        super::audit::show(
            &self.dir,
            &filter,
            |_, line| {
                earlier.get_or_insert_with(|| line.account.clone().unwrap_or_default());
            },
            |_| {},
        )?;
        if let Some(id) = earlier {
            return Err(AccountError::AccountsLost { id });
        }
        let mut roles = new.roles.clone();
        roles.insert(Role::Admin);
        file.format = 1;
        file.accounts.push(stored(new, roles, phc, &new.id, now));
        let migrated = self.migrate_pin(&mut file, now)?;
        let changes: Vec<AccountChange> = file
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| AccountChange {
                kind: if i == 0 {
                    ChangeKind::FirstAdmin
                } else {
                    ChangeKind::Migrated
                },
                account: a.clone(),
                base_rev: None,
                by: new.id.clone(),
                at: now,
            })
            .collect();
        self.commit(&AccountsFile::default(), &file, &changes)?;
        if migrated.is_some() {
            let from = self.dir.path(TECHNICIAN_PIN_FILE);
            let to = self.dir.path(MIGRATED_PIN_FILE);
            fs::rename(&from, &to).map_err(|source| StoreError::Write { path: to, source })?;
        }
        self.audit.append_at(
            AuditEvent::new(AuditKind::FirstAdmin, Some(&new.id))
                .with("name", new.name.clone())
                .with("roles", roles_text(&file.accounts[0].roles)),
            now,
        )?;
        if let Some((id, set_by)) = migrated {
            self.audit.append_at(
                AuditEvent::new(AuditKind::AccountMigrated, Some(&new.id))
                    .with("account", id)
                    .with("from", TECHNICIAN_PIN_FILE)
                    .with("pin_set_by", set_by),
                now,
            )?;
        }
        Ok(file.accounts.iter().map(public).collect())
    }

    /// The old technician PIN as a technician account (same hash), if there is one.
    fn migrate_pin(
        &self,
        file: &mut AccountsFile,
        now: Timestamp,
    ) -> Result<Option<(String, String)>, AccountError> {
        let Some(pin) = TechnicianPin::load(&self.dir)? else {
            return Ok(None);
        };
        let mut id: String = pin
            .set_by()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(32)
            .collect();
        if id.trim_matches('-').is_empty() {
            "technician".clone_into(&mut id);
        }
        if file.accounts.iter().any(|a| a.id.eq_ignore_ascii_case(&id)) {
            id = format!("{}-tech", id.chars().take(27).collect::<String>());
        }
        let new = NewAccount {
            id: id.clone(),
            name: pin.set_by().to_owned(),
            roles: BTreeSet::from([Role::Technician]),
            secret: String::new(),
        };
        let mut account = stored(
            &new,
            new.roles.clone(),
            pin.phc(),
            &file.accounts[0].id,
            now,
        );
        pin.set_by().clone_into(&mut account.secret_set_by);
        account.secret_set_at = pin.set_at();
        file.accounts.push(account);
        Ok(Some((id, pin.set_by().to_owned())))
    }

    /// Checks `secret` for `id` at `now`, keeping the wrong-try count and lockout on
    /// disk. Every try is audited (never the secret).
    pub fn sign_in(&self, id: &str, secret: &str, now: Timestamp) -> Result<SignedIn, SignInError> {
        let failed = |why: &str| {
            AuditEvent::new(AuditKind::SignInFailed, Some(id)).with("why", why.to_owned())
        };
        let _lock = self.lock().map_err(AccountError::from)?;
        let file = self.read()?;
        // Ids are unique ignoring case: `admin` signs in as the clinic's `Admin`.
        let Some(account) = file.accounts.iter().find(|a| a.id.eq_ignore_ascii_case(id)) else {
            self.audit
                .append_at(failed("unknown account"), now)
                .map_err(AccountError::from)?;
            return Err(SignInError::Unknown { id: id.to_owned() });
        };
        if account.disabled {
            self.audit
                .append_at(failed("disabled"), now)
                .map_err(AccountError::from)?;
            return Err(SignInError::Disabled { id: id.to_owned() });
        }
        let mut guards = self.read_guards()?;
        let id = account.id.as_str();
        let guard = guards.entry(id.to_owned()).or_default();
        if let Some(at) = guard.locked_at {
            // A clock stepped back before the lockout began restarts it from now.
            let began = if now < at { now } else { at };
            let until = began + jiff::SignedDuration::try_from(LOCKOUT).unwrap_or_default();
            if now < until {
                let left = until.duration_since(now);
                if began != at {
                    guard.locked_at = Some(began);
                    self.write_guards(&guards)?;
                }
                self.audit
                    .append_at(failed("locked out"), now)
                    .map_err(AccountError::from)?;
                return Err(SignInError::LockedOut {
                    id: id.to_owned(),
                    retry_after_secs: u64::try_from(left.as_secs()).unwrap_or(0)
                        + u64::from(left.subsec_nanos() > 0),
                });
            }
            *guard = Guard::default();
        }
        let hash = parse_hash(&account.secret).map_err(|reason| AccountError::Corrupt {
            path: self.dir.path(ACCOUNTS_FILE),
            reason: format!("account {id}: {reason}"),
        })?;
        if Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
        {
            if guards.remove(id).is_some_and(|g| g != Guard::default()) {
                self.write_guards(&guards)?;
            }
            self.audit
                .append_at(
                    AuditEvent::new(AuditKind::SignIn, Some(id))
                        .with("roles", roles_text(&account.roles)),
                    now,
                )
                .map_err(AccountError::from)?;
            return Ok(SignedIn {
                id: account.id.clone(),
                name: account.name.clone(),
                roles: account.roles.clone(),
                at: now,
            });
        }
        guard.wrong_tries += 1;
        let tries_left = MAX_WRONG_TRIES.saturating_sub(guard.wrong_tries);
        if tries_left == 0 {
            *guard = Guard {
                wrong_tries: 0,
                locked_at: Some(now),
            };
        }
        self.write_guards(&guards)?;
        self.audit
            .append_at(failed("wrong secret").with("tries_left", tries_left), now)
            .map_err(AccountError::from)?;
        if tries_left == 0 {
            self.audit
                .append_at(
                    AuditEvent::new(AuditKind::LockedOut, Some(id)).with("secs", LOCKOUT.as_secs()),
                    now,
                )
                .map_err(AccountError::from)?;
        }
        Err(SignInError::Wrong {
            id: id.to_owned(),
            tries_left,
        })
    }

    /// An admin adds an account.
    pub fn create(
        &self,
        by: &SignedIn,
        new: &NewAccount,
        now: Timestamp,
    ) -> Result<Account, AccountError> {
        check_new(new)?;
        let phc = hash_secret(&new.secret)?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        require_admin(&file, by)?;
        if file
            .accounts
            .iter()
            .any(|a| a.id.eq_ignore_ascii_case(&new.id))
        {
            return Err(AccountError::Exists { id: new.id.clone() });
        }
        let account = stored(new, new.roles.clone(), phc, &by.id, now);
        let shown = public(&account);
        let before = file.clone();
        file.accounts.push(account.clone());
        let change = AccountChange {
            kind: ChangeKind::Created,
            account,
            base_rev: None,
            by: by.id.clone(),
            at: now,
        };
        self.commit(&before, &file, &[change])?;
        self.audit.append_at(
            AuditEvent::new(AuditKind::AccountCreated, Some(&by.id))
                .with("account", new.id.clone())
                .with("name", new.name.clone())
                .with("roles", roles_text(&new.roles)),
            now,
        )?;
        Ok(shown)
    }

    /// An admin disables `id` (never deleted: records keep the id). `reason` is audited.
    pub fn disable(
        &self,
        by: &SignedIn,
        id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        self.change(by, id, now, ChangeKind::Disabled, |file, index| {
            let account = &file.accounts[index];
            if account.roles.contains(&Role::Admin) && enabled_admins(file) == 1 {
                return Err(AccountError::LastAdmin { id: id.to_owned() });
            }
            file.accounts[index].disabled = true;
            Ok(AuditEvent::new(AuditKind::AccountDisabled, Some(&by.id))
                .with("account", id.to_owned())
                .with("reason", reason.trim().to_owned()))
        })
    }

    /// An admin sets `id`'s roles.
    pub fn set_roles(
        &self,
        by: &SignedIn,
        id: &str,
        roles: &BTreeSet<Role>,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        if roles.is_empty() {
            return Err(AccountError::NoRole);
        }
        self.change(by, id, now, ChangeKind::Roles, |file, index| {
            let was = file.accounts[index].roles.clone();
            if was.contains(&Role::Admin)
                && !roles.contains(&Role::Admin)
                && !file.accounts[index].disabled
                && enabled_admins(file) == 1
            {
                return Err(AccountError::LastAdmin { id: id.to_owned() });
            }
            file.accounts[index].roles.clone_from(roles);
            Ok(AuditEvent::new(AuditKind::AccountRoles, Some(&by.id))
                .with("account", id.to_owned())
                .with("from", roles_text(&was))
                .with("to", roles_text(roles)))
        })
    }

    /// An admin sets a new PIN or password for `id` (a forgotten one); its lockout
    /// ends.
    pub fn reset_secret(
        &self,
        by: &SignedIn,
        id: &str,
        secret: &str,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        check_secret(secret)?;
        let phc = hash_secret(secret)?;
        self.change(by, id, now, ChangeKind::Secret, |file, index| {
            let account = &mut file.accounts[index];
            account.secret = phc;
            account.secret_set_by.clone_from(&by.id);
            account.secret_set_at = now;
            Ok(
                AuditEvent::new(AuditKind::SecretReset, Some(&by.id))
                    .with("account", id.to_owned()),
            )
        })?;
        let _lock = self.lock()?;
        let mut guards = self.read_guards()?;
        if guards.remove(id).is_some() {
            self.write_guards(&guards)?;
        }
        Ok(())
    }

    /// Under the lock: the admin check, the account's index, `apply`, the change's
    /// line and the write ([`Accounts::commit`]), the audit line `apply` returned.
    fn change(
        &self,
        by: &SignedIn,
        id: &str,
        now: Timestamp,
        kind: ChangeKind,
        apply: impl FnOnce(&mut AccountsFile, usize) -> Result<AuditEvent, AccountError>,
    ) -> Result<(), AccountError> {
        let _lock = self.lock()?;
        let mut file = self.read()?;
        require_admin(&file, by)?;
        let index = file
            .accounts
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| AccountError::Unknown { id: id.to_owned() })?;
        let before = file.clone();
        let event = apply(&mut file, index)?;
        let change = AccountChange {
            kind,
            account: file.accounts[index].clone(),
            base_rev: before.accounts[index].clinic_rev,
            by: by.id.clone(),
            at: now,
        };
        self.commit(&before, &file, &[change])?;
        self.audit.append_at(event, now)?;
        Ok(())
    }

    /// Under the lock: appends `changes` to [`ACCOUNT_CHANGES_FILE`] (after a `seed`
    /// line for each account of `before` if the file is new), then replaces the
    /// accounts' file with `file`. The changes go first: a crash between the two
    /// leaves a change a clinic store still applies, never a change it never hears of.
    fn commit(
        &self,
        before: &AccountsFile,
        file: &AccountsFile,
        changes: &[AccountChange],
    ) -> Result<(), AccountError> {
        self.seed_changes_locked(before, Timestamp::now())?;
        let path = self.dir.path(ACCOUNT_CHANGES_FILE);
        for change in changes {
            jsonl::append(&path, change)?;
        }
        self.write(file)
    }

    /// Starts [`ACCOUNT_CHANGES_FILE`] with a `seed` line per account, if the file is
    /// missing and accounts exist (a folder from before the file, about to join a
    /// clinic store). Nothing when the file exists.
    ///
    /// # Errors
    /// The accounts cannot be read or the file not written.
    pub fn seed_changes(&self) -> Result<(), AccountError> {
        let _lock = self.lock()?;
        let file = self.read()?;
        self.seed_changes_locked(&file, Timestamp::now())
    }

    fn seed_changes_locked(&self, file: &AccountsFile, now: Timestamp) -> Result<(), AccountError> {
        let path = self.dir.path(ACCOUNT_CHANGES_FILE);
        if file.accounts.is_empty() || path.exists() {
            return Ok(());
        }
        // Accounts taken from a clinic store are the clinic's already.
        for account in file.accounts.iter().filter(|a| a.clinic_rev.is_none()) {
            jsonl::append(
                &path,
                &AccountChange {
                    kind: ChangeKind::Seed,
                    account: account.clone(),
                    base_rev: account.clinic_rev,
                    by: account.created_by.clone(),
                    at: now,
                },
            )?;
        }
        Ok(())
    }

    /// The bytes of [`ACCOUNT_CHANGES_FILE`] up to its last newline: whole lines only
    /// (a torn last line, a write cut short, is no change, and the next line written
    /// ends it first).
    fn changes_written(&self) -> Result<u64, AccountError> {
        let path = self.dir.path(ACCOUNT_CHANGES_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(memchr::memrchr(b'\n', &bytes).map_or(0, |i| i as u64 + 1)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(StoreError::Read { path, source }.into()),
        }
    }

    /// Makes this folder's accounts the clinic store's (`clinic`: each account with
    /// its revision), once every change made here is in the store: the store holds
    /// `uploaded_bytes` of [`ACCOUNT_CHANGES_FILE`] and the file is no longer (else
    /// [`Adoption::Waiting`], and nothing is touched: a change made here is not undone
    /// before the store has judged it).
    ///
    /// An account the store has replaces the local one (a secret changed elsewhere
    /// also ends the local lockout); one it lacks is added. A local account the store
    /// does not have, with every change uploaded, was not made by an admin of this
    /// station (a hand-edited file): it is disabled. Each change is audited
    /// (`account_synced`). An empty `clinic` changes nothing (a new store: this
    /// station's own lines fill it first).
    ///
    /// # Errors
    /// The files cannot be read or written.
    pub fn adopt(
        &self,
        clinic: &[(StoredAccount, i64)],
        damaged: &[(String, String)],
        uploaded_bytes: Option<u64>,
        now: Timestamp,
    ) -> Result<Adoption, AccountError> {
        let _lock = self.lock()?;
        if let Some(uploaded) = uploaded_bytes
            && self.changes_written()? != uploaded
        {
            return Ok(Adoption::Waiting);
        }
        // Never written here what this station could not read back.
        let mut damaged: Vec<(String, String)> = damaged.to_vec();
        let clinic: Vec<&(StoredAccount, i64)> = clinic
            .iter()
            .filter(|(a, _)| match check_stored(a) {
                Ok(()) => true,
                Err(why) => {
                    damaged.push((a.id.clone(), why));
                    false
                }
            })
            .collect();
        if clinic.is_empty() {
            return Ok(Adoption::Done(Vec::new()));
        }
        let mut file = self.read()?;
        let original = file.accounts.clone();
        let mut adopted = Vec::new();
        let mut secrets_changed = Vec::new();
        let mut taken = vec![false; clinic.len()];
        for local in &mut file.accounts {
            let found = clinic
                .iter()
                .position(|(a, _)| a.id.eq_ignore_ascii_case(&local.id));
            if found.is_none()
                && damaged
                    .iter()
                    .any(|(id, _)| id.eq_ignore_ascii_case(&local.id))
            {
                // The store's row is damaged: this station's copy stays as it is.
                continue;
            }
            let Some(i) = found else {
                if local.clinic_rev.is_some() {
                    // Taken from the clinic before, and gone from it now: the store
                    // was restored from an older backup (the room that made the
                    // account sends it again when it connects). Kept as it was: a
                    // store that lost an account must not lock its people out.
                    continue;
                }
                if !local.disabled {
                    local.disabled = true;
                    adopted.push(Adopted {
                        id: local.id.clone(),
                        what: if uploaded_bytes.is_some() {
                            "disabled: the clinic store does not have it (refused when this \
                             station sent it, as a room's own account from before it \
                             joined, or added to accounts.json by hand)"
                        } else {
                            "disabled: not in the clinic store (this station's account \
                             changes cannot reach it: its changes file is blocked)"
                        }
                        .to_owned(),
                        rev: None,
                        relock: true,
                    });
                }
                continue;
            };
            taken[i] = true;
            let (theirs, rev) = clinic[i];
            if local.secret != theirs.secret {
                secrets_changed.push(local.id.clone());
            }
            adopted.extend(take_clinics(local, theirs, *rev));
        }
        for (i, (theirs, rev)) in clinic.iter().copied().enumerate() {
            if !taken[i] {
                let mut account = theirs.clone();
                account.clinic_rev = Some(*rev);
                file.accounts.push(account);
                adopted.push(Adopted {
                    id: theirs.id.clone(),
                    what: if theirs.disabled {
                        "added from the clinic store (disabled)".to_owned()
                    } else {
                        "added from the clinic store".to_owned()
                    },
                    rev: Some(*rev),
                    relock: false,
                });
            }
        }
        if original != file.accounts {
            file.format = file.format.max(1);
            self.write(&file)?;
        }
        if !secrets_changed.is_empty() {
            let mut guards = self.read_guards()?;
            let had = guards.len();
            guards.retain(|id, _| !secrets_changed.contains(id));
            if guards.len() != had {
                self.write_guards(&guards)?;
            }
        }
        for a in &adopted {
            self.audit.append_at(a.audit_event(), now)?;
        }
        Ok(Adoption::Done(adopted))
    }

    /// The accounts' lock, held until the returned file is dropped.
    fn lock(&self) -> Result<fs::File, StoreError> {
        jsonl::open_locked(&self.dir.path(LOCK_FILE)).map(|(file, _)| file)
    }

    fn read(&self) -> Result<AccountsFile, AccountError> {
        let path = self.dir.path(ACCOUNTS_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AccountsFile::default()),
            Err(source) => return Err(StoreError::Read { path, source }.into()),
        };
        let file: AccountsFile =
            serde_json::from_slice(&bytes).map_err(|e| AccountError::Corrupt {
                path: path.clone(),
                reason: format!(
                    "not an accounts file at line {} column {}",
                    e.line(),
                    e.column()
                ),
            })?;
        for account in &file.accounts {
            parse_hash(&account.secret).map_err(|reason| AccountError::Corrupt {
                path: path.clone(),
                reason: format!("account {}: {reason}", account.id),
            })?;
        }
        Ok(file)
    }

    fn write(&self, file: &AccountsFile) -> Result<(), AccountError> {
        let path = self.dir.path(ACCOUNTS_FILE);
        let mut json = serde_json::to_vec_pretty(file).map_err(|source| StoreError::Encode {
            path: path.clone(),
            source,
        })?;
        json.push(b'\n');
        replace_file(&path, &json)?;
        Ok(())
    }

    fn read_guards(&self) -> Result<BTreeMap<String, Guard>, AccountError> {
        let path = self.dir.path(LOCKOUTS_FILE);
        match fs::read(&path) {
            // A damaged lockout file must not unlock anyone: it is an error.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AccountError::Corrupt {
                path,
                reason: format!("not a lockout file ({e})"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(StoreError::Read { path, source }.into()),
        }
    }

    fn write_guards(&self, guards: &BTreeMap<String, Guard>) -> Result<(), AccountError> {
        let path = self.dir.path(LOCKOUTS_FILE);
        let json = serde_json::to_vec(guards).map_err(|source| StoreError::Encode {
            path: path.clone(),
            source,
        })?;
        replace_file(&path, &json)?;
        Ok(())
    }
}

/// Makes `local` the clinic's `theirs`, at revision `rev`: what changed, if anything
/// a person would see.
fn take_clinics(local: &mut StoredAccount, theirs: &StoredAccount, rev: i64) -> Option<Adopted> {
    let what = local.differences(theirs);
    // What a sign-in checked is gone: a disabling, other roles, or a secret changed
    // at another station. Not the first taking of an account this station made
    // before it joined, whose roles stand.
    let relock = what
        .iter()
        .any(|w| ["disabled", "enabled", "roles", "id"].contains(w))
        || (what.contains(&"secret") && local.clinic_rev.is_some());
    if !what.is_empty() || local.clinic_rev != Some(rev) {
        let other = std::mem::take(&mut local.other);
        *local = theirs.clone();
        local.other = other;
        local.clinic_rev = Some(rev);
    }
    (!what.is_empty()).then(|| Adopted {
        id: theirs.id.clone(),
        what: format!("{} as in the clinic store", what.join(", ")),
        rev: Some(rev),
        relock,
    })
}

/// Refuses unless `by` is, in `file` as it is now, an enabled admin.
fn require_admin(file: &AccountsFile, by: &SignedIn) -> Result<(), AccountError> {
    let ok = file
        .accounts
        .iter()
        .any(|a| a.id == by.id && a.is_enabled_admin());
    if ok {
        Ok(())
    } else {
        Err(AccountError::NotAdmin { id: by.id.clone() })
    }
}

fn enabled_admins(file: &AccountsFile) -> usize {
    file.accounts
        .iter()
        .filter(|a| a.is_enabled_admin())
        .count()
}

fn public(a: &StoredAccount) -> Account {
    Account {
        id: a.id.clone(),
        name: a.name.clone(),
        roles: a.roles.clone(),
        disabled: a.disabled,
        created_by: a.created_by.clone(),
        created_at: a.created_at,
        secret_set_at: a.secret_set_at,
    }
}

fn stored(
    new: &NewAccount,
    roles: BTreeSet<Role>,
    phc: String,
    by: &str,
    now: Timestamp,
) -> StoredAccount {
    StoredAccount {
        id: new.id.clone(),
        name: new.name.trim().to_owned(),
        roles,
        secret: phc,
        disabled: false,
        created_by: by.to_owned(),
        created_at: now,
        secret_set_by: by.to_owned(),
        secret_set_at: now,
        clinic_rev: None,
        other: BTreeMap::new(),
    }
}

/// Checks a new account's id, name, roles and secret.
fn check_new(new: &NewAccount) -> Result<(), AccountError> {
    check_id(&new.id)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::BadName);
    }
    if new.roles.is_empty() {
        return Err(AccountError::NoRole);
    }
    check_secret(&new.secret)
}

/// Whether `account` (from a clinic store, or a changes line) is one a station can
/// keep: a valid id and an Argon2id PHC string within this station's cost limits.
///
/// # Errors
/// Why not, in words (never quoting the hash).
pub fn check_stored(account: &StoredAccount) -> Result<(), String> {
    check_id(&account.id).map_err(|e| e.to_string())?;
    parse_hash(&account.secret).map_err(|why| format!("account {}: {why}", account.id))?;
    Ok(())
}

/// An id is 1 to 32 of `A-Z a-z 0-9 _ -` (the screening file's practitioner id).
pub fn check_id(id: &str) -> Result<(), AccountError> {
    let ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadId { id: id.to_owned() })
    }
}

/// A secret of digits only is a PIN (the technician PIN's rules); anything else is a
/// password of [`PASSWORD_MIN_CHARS`] to [`PASSWORD_MAX_CHARS`] characters.
pub fn check_secret(secret: &str) -> Result<(), AccountError> {
    if !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_digit()) {
        return technician::check_rules(secret).map_err(AccountError::Pin);
    }
    let chars = secret.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(AccountError::PasswordLength { chars });
    }
    Ok(())
}

/// A salted Argon2id PHC string of `secret` (the crate's defaults: 19 MiB, 2 passes).
fn hash_secret(secret: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
