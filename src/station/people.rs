//! Who is at the station: sign-in, the lock (idle and on demand), the hand-over, and
//! the admin's changes, each checked here, below every front end, and audited.
//!
//! The station holds at most one signed-in account ([`SignedIn`], made only by the
//! accounts store after the secret was checked). "Active" means signed in and not
//! locked: every operator action but `HALT` and the E-stop needs an active account
//! ([`Station::require`]), and the interlock is told who is active and with which
//! roles (`SafetyUpdate::Operator`), so a `RUN` needs a practitioner (a technician on
//! the bench) whatever asks for it.
//!
//! The lock falls after [`StationSettings::idle_lock_min`] without activity
//! ([`Station::touch`]), and on demand, but never while the needle runs or a start is
//! held: the interlock refuses the change then too. Locked, the station still halts
//! and E-stops; unlocking takes the same account's secret, and another account's
//! sign-in is a hand-over (recorded in the open session's record and the audit log).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::{Notice, Station, StationError, record};
use crate::record::format::{AccessLine, Line};
use crate::safety::interlock::{OperatorFacts, SafetyUpdate};
use crate::store::accounts::{Account, Accounts, NewAccount, Role, SignInError, SignedIn};
use crate::store::audit::{AuditEvent, AuditKind};

/// The default idle time before the lock falls (the clinic's setting overrides it).
pub const DEFAULT_IDLE_LOCK: Duration = Duration::from_mins(10);

/// Who is at the station.
#[derive(Debug)]
pub(super) struct People {
    /// The data folder's accounts (read on every decision).
    pub(super) accounts: Accounts,
    /// The account signed in, locked or not.
    signed_in: Option<SignedIn>,
    /// The lock is down: only halt and E-stop until the same account's secret.
    locked: bool,
    /// The last operator activity (input in the window, a console line).
    last_activity: Instant,
    /// Idle time before the lock falls.
    idle_lock: Duration,
    /// The interlock is being told who is active: the station pumps the link while it
    /// waits, and the idle lock must not fall in the middle of it.
    applying: bool,
    /// The account signed in was changed elsewhere: the lock falls as soon as the
    /// needle is still.
    relock: bool,
}

impl People {
    pub(super) fn new(accounts: Accounts) -> People {
        People {
            accounts,
            signed_in: None,
            locked: false,
            last_activity: Instant::now(),
            idle_lock: DEFAULT_IDLE_LOCK,
            applying: false,
            relock: false,
        }
    }
}

/// Why the station locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// No activity for the clinic's idle time.
    Idle,
    /// The operator locked it.
    Demand,
    /// The account signed in was changed at another station (through the clinic
    /// store): its PIN, roles or state here are no longer what the sign-in checked.
    AccountChanged,
}

impl LockReason {
    fn as_str(self) -> &'static str {
        match self {
            LockReason::Idle => "idle",
            LockReason::Demand => "on demand",
            LockReason::AccountChanged => "account changed at the clinic",
        }
    }
}

/// What a sign-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Nobody was signed in: now this account is.
    SignedIn,
    /// The same account unlocked the station.
    Unlocked,
    /// Another account took over from `from` (mid-session: recorded).
    HandedOver {
        /// Who was signed in before.
        from: String,
    },
}

impl Station {
    /// The data folder's accounts.
    #[must_use]
    pub fn accounts(&self) -> &Accounts {
        &self.people.accounts
    }

    /// No account exists yet: the first start, where the first admin is created.
    pub fn needs_first_admin(&self) -> Result<bool, StationError> {
        self.people.accounts.is_empty().map_err(access)
    }

    /// Creates the first admin (and moves an old technician PIN into an account).
    /// Nobody is signed in afterwards: the admin signs in like anyone. At a station
    /// that belongs to a clinic store, only for a new clinic: the store answers and
    /// has no account yet (else the station takes the clinic's accounts; a first
    /// admin made here would become an admin of every room).
    pub fn create_first_admin(&mut self, new: &NewAccount) -> Result<Vec<Account>, StationError> {
        if let Some(status) = self.clinic_status() {
            let connected = matches!(status.state, crate::clinic::StoreState::Connected);
            if !(connected && status.accounts_rev == Some(0)) {
                return Err(StationError::Access(format!(
                    "this station belongs to the clinic store {}, which {}: its accounts \
                     come from the store; sign in with a clinic account once they arrive \
                     (a first admin is made here only for a new clinic, with the store \
                     answering)",
                    status.store,
                    if !connected {
                        "does not answer now"
                    } else if status.accounts_rev.is_none() {
                        "has not been asked yet (a moment)"
                    } else {
                        "has accounts"
                    }
                )));
            }
        }
        let accounts = self
            .people
            .accounts
            .create_first_admin(new, Timestamp::now())
            .map_err(access)?;
        if accounts.len() > 1 {
            self.notices.push(Notice::Info(format!(
                "the technician PIN became the technician account {}",
                accounts[1].id
            )));
        }
        Ok(accounts)
    }

    /// Signs `id` in with `secret`. Locked by the same account: unlocks. Another
    /// account while one is signed in: a hand-over (mid-session, the session's
    /// practitioner becomes the new account, who must be a practitioner). Refused
    /// while the needle runs when it would change who is at the station.
    pub fn sign_in(&mut self, id: &str, secret: &str) -> Result<SignInOutcome, StationError> {
        let before = self.people.signed_in.as_ref().map(|s| s.id().to_owned());
        let same = before.as_deref() == Some(id);
        if !same && self.needle_may_run() {
            return Err(StationError::Access(
                "another account cannot take over while the needle runs: stop it first".into(),
            ));
        }
        let who = self
            .people
            .accounts
            .sign_in(id, secret, Timestamp::now())
            .map_err(|e| match e {
                SignInError::Accounts(e) => access(e),
                other => StationError::Access(other.to_string()),
            })?;
        if !same && self.session.is_some() && !who.has(Role::Practitioner) {
            return Err(StationError::Access(format!(
                "{id} is not a practitioner: a session is open, and only a practitioner takes \
                 it over"
            )));
        }
        self.apply_operator(Some(&who))?;
        let outcome = match before {
            None => SignInOutcome::SignedIn,
            Some(_) if same => {
                self.audit(AuditEvent::new(AuditKind::Unlock, Some(id)));
                SignInOutcome::Unlocked
            }
            Some(from) => {
                let mut event =
                    AuditEvent::new(AuditKind::HandOver, Some(id)).with("from", from.clone());
                if let Some(session) = &mut self.session {
                    event = event.with("session", session.id.clone());
                    id.clone_into(&mut session.answers.practitioner);
                    let line = Line::Access(AccessLine {
                        utc_ms: record::utc_ms_now(),
                        action: "hand_over".into(),
                        account: id.to_owned(),
                        from: Some(from.clone()),
                    });
                    self.record(line);
                }
                self.audit(event);
                SignInOutcome::HandedOver { from }
            }
        };
        self.people.signed_in = Some(who);
        self.people.locked = false;
        self.people.last_activity = Instant::now();
        Ok(outcome)
    }

    /// Locks the station: halt and E-stop only until the same account's secret (or
    /// another account's hand-over). Refused while the needle runs or a start is held.
    pub fn lock(&mut self, reason: LockReason) -> Result<(), StationError> {
        let Some(who) = self.people.signed_in.as_ref().map(|s| s.id().to_owned()) else {
            return Err(StationError::Access("nobody is signed in".into()));
        };
        if self.people.locked {
            return Ok(());
        }
        if self.needle_may_run() {
            return Err(StationError::Access(
                "the station does not lock while the needle runs: stop it first".into(),
            ));
        }
        self.apply_operator(None)?;
        self.people.locked = true;
        self.audit(AuditEvent::new(AuditKind::Lock, Some(&who)).with("why", reason.as_str()));
        if self.session.is_some() {
            self.record(Line::Access(AccessLine {
                utc_ms: record::utc_ms_now(),
                action: format!("lock ({})", reason.as_str()),
                account: who,
                from: None,
            }));
        }
        Ok(())
    }

    /// Signs out. Refused while a session is open (lock instead, or close it) or the
    /// needle runs.
    pub fn sign_out(&mut self) -> Result<(), StationError> {
        let Some(who) = self.people.signed_in.as_ref().map(|s| s.id().to_owned()) else {
            return Ok(());
        };
        if let Some(session) = &self.session {
            return Err(StationError::Access(format!(
                "session {} is open: close it first, or lock the station",
                session.id
            )));
        }
        if self.technician().is_some() {
            return Err(StationError::Access(
                "technician mode is on: leave it first".into(),
            ));
        }
        if self.needle_may_run() {
            return Err(StationError::Access(
                "not while the needle runs: stop it first".into(),
            ));
        }
        self.apply_operator(None)?;
        self.people.signed_in = None;
        self.people.locked = false;
        self.audit(AuditEvent::new(AuditKind::SignOut, Some(&who)));
        Ok(())
    }

    /// Takes the sign-in away, to hand it to the station that replaces this one (the
    /// window connecting to another port): the account and whether it was locked.
    pub fn take_sign_in(&mut self) -> Option<(SignedIn, bool)> {
        let who = self.people.signed_in.take()?;
        let locked = std::mem::take(&mut self.people.locked);
        let _ = self.apply_operator(None);
        Some((who, locked))
    }

    /// Resumes a sign-in taken from the station this one replaces (the roles read
    /// from the accounts file again).
    pub fn resume_sign_in(&mut self, (who, locked): (SignedIn, bool)) -> Result<(), StationError> {
        if !locked {
            self.apply_operator(Some(&who))?;
        }
        self.people.signed_in = Some(who);
        self.people.locked = locked;
        self.people.last_activity = Instant::now();
        Ok(())
    }

    /// Operator activity now: the idle lock's clock starts again.
    pub fn touch(&mut self) {
        self.people.last_activity = Instant::now();
    }

    /// The idle time before the lock falls.
    pub fn set_idle_lock(&mut self, idle: Duration) {
        self.people.idle_lock = idle;
    }

    /// The idle time before the lock falls.
    #[must_use]
    pub fn idle_lock(&self) -> Duration {
        self.people.idle_lock
    }

    /// Time left before the idle lock, while an account is active.
    #[must_use]
    pub fn idle_left(&self) -> Option<Duration> {
        self.active_account().map(|_| {
            self.people
                .idle_lock
                .saturating_sub(self.people.last_activity.elapsed())
        })
    }

    /// The account signed in (locked or not).
    #[must_use]
    pub fn signed_in(&self) -> Option<&SignedIn> {
        self.people.signed_in.as_ref()
    }

    /// The lock is down.
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.people.locked
    }

    /// The account signed in and unlocked.
    #[must_use]
    pub fn active_account(&self) -> Option<&SignedIn> {
        self.people
            .signed_in
            .as_ref()
            .filter(|_| !self.people.locked)
    }

    /// The active account's id, for the lines an operator causes.
    #[must_use]
    pub fn account_id(&self) -> Option<&str> {
        self.active_account().map(SignedIn::id)
    }

    /// The active account, holding `role` (if one is asked) in the accounts file as it
    /// is now (an admin may have changed it since the sign-in); else why not.
    pub fn require(&self, role: Option<Role>) -> Result<SignedIn, StationError> {
        let Some(who) = self.people.signed_in.as_ref() else {
            return Err(StationError::Access(
                "nobody is signed in: sign in first".into(),
            ));
        };
        if self.people.locked {
            return Err(StationError::Access(format!(
                "the station is locked: {} unlocks it with the PIN, or another account signs in",
                who.id()
            )));
        }
        if let Some(role) = role
            && !self.people.accounts.still_has(who, role).map_err(access)?
        {
            let a = if role == Role::Admin { "an" } else { "a" };
            return Err(StationError::Access(format!(
                "{} is not {a} {role} (or the account was disabled): only {a} {role} may do this",
                who.id()
            )));
        }
        Ok(who.clone())
    }

    /// Checks the active account's secret again (signing a record): a try like any
    /// sign-in, counted towards its lockout and audited.
    pub fn confirm_secret(&mut self, secret: &str) -> Result<SignedIn, StationError> {
        let who = self.require(None)?;
        self.people
            .accounts
            .sign_in(who.id(), secret, Timestamp::now())
            .map_err(|e| StationError::Access(e.to_string()))
    }

    /// At a station of a clinic, account changes must reach the clinic store: refused
    /// while this station's changes file is blocked (cut, replaced or removed after
    /// upload), since the store would never hear of them and the station would undo
    /// them.
    fn account_changes_reach_the_clinic(&self) -> Result<(), StationError> {
        let blocked = self.clinic_status().is_some_and(|s| {
            s.blocked
                .contains(&crate::clinic::streams::Stream::Accounts.name())
        });
        if blocked {
            return Err(StationError::Access(
                "account changes made here cannot reach the clinic store: this station's \
                 account-changes.jsonl was cut, replaced or removed after upload (restore \
                 it and restart); change accounts at another station"
                    .into(),
            ));
        }
        Ok(())
    }

    /// An admin's change to the accounts: the role checked on the file as it is now,
    /// refused while it could not reach the clinic store, and the clinic thread woken
    /// so the other rooms have it at once. `change` gets the accounts and the admin.
    fn change_accounts<T>(
        &mut self,
        change: impl FnOnce(&Accounts, &SignedIn) -> Result<T, StationError>,
    ) -> Result<(SignedIn, T), StationError> {
        let admin = self.require(Some(Role::Admin))?;
        self.account_changes_reach_the_clinic()?;
        let done = change(&self.people.accounts, &admin)?;
        self.wake_clinic();
        Ok((admin, done))
    }

    /// An admin adds an account.
    pub fn create_account(&mut self, new: &NewAccount) -> Result<Account, StationError> {
        self.change_accounts(|accounts, admin| {
            accounts
                .create(admin, new, Timestamp::now())
                .map_err(access)
        })
        .map(|(_, made)| made)
    }

    /// An admin disables an account (never deleted).
    pub fn disable_account(&mut self, id: &str, reason: &str) -> Result<(), StationError> {
        self.change_accounts(|accounts, admin| {
            if admin.id() == id {
                return Err(StationError::Access(
                    "an admin does not disable the account signed in; another admin does".into(),
                ));
            }
            accounts
                .disable(admin, id, reason, Timestamp::now())
                .map_err(access)
        })
        .map(|_| ())
    }

    /// An admin sets an account's roles.
    pub fn set_account_roles(
        &mut self,
        id: &str,
        roles: &BTreeSet<Role>,
    ) -> Result<(), StationError> {
        let (admin, ()) = self.change_accounts(|accounts, admin| {
            accounts
                .set_roles(admin, id, roles, Timestamp::now())
                .map_err(access)
        })?;
        if admin.id() == id {
            // The station's own view follows at once.
            let who = self.people.signed_in.clone();
            self.apply_operator(who.as_ref())?;
        }
        Ok(())
    }

    /// An admin resets an account's PIN or password.
    pub fn reset_secret(&mut self, id: &str, secret: &str) -> Result<(), StationError> {
        self.change_accounts(|accounts, admin| {
            accounts
                .reset_secret(admin, id, secret, Timestamp::now())
                .map_err(access)
        })
        .map(|_| ())
    }

    /// The clinic store changed account `id`: if it is the one signed in, the station
    /// locks as soon as the needle is still (the sign-in checked a PIN and roles that
    /// may be gone), and the same account unlocks with its PIN as it is now.
    pub(super) fn account_changed_elsewhere(&mut self, id: &str) {
        if self
            .account_id()
            .is_some_and(|who| who.eq_ignore_ascii_case(id))
        {
            self.people.relock = true;
            self.check_relock();
        }
    }

    /// Appends `event` to the audit log; a failure is said, never silent.
    pub(super) fn audit(&mut self, event: AuditEvent) {
        if let Err(e) = self.people.accounts.audit().append(event) {
            self.notices.push(Notice::Info(format!(
                "the audit log could not be written: {e}"
            )));
        }
    }

    /// Audits `event` as the active account's.
    pub fn audit_event(&mut self, kind: AuditKind, detail: &[(&str, String)]) {
        let account = self.account_id().map(str::to_owned);
        let mut event = AuditEvent::new(kind, account.as_deref());
        for (key, value) in detail {
            event = event.with(key, value.clone());
        }
        self.audit(event);
    }

    /// Tells the interlock who is active (with the roles the file gives now), and
    /// waits for it to apply.
    fn apply_operator(&mut self, who: Option<&SignedIn>) -> Result<(), StationError> {
        let facts = match who {
            None => None,
            Some(who) => {
                let account = self
                    .people
                    .accounts
                    .get(who.id())
                    .map_err(access)?
                    .filter(|a| !a.disabled);
                Some(OperatorFacts {
                    account: who.id().to_owned(),
                    practitioner: account.as_ref().is_some_and(|a| a.has(Role::Practitioner)),
                    technician: account.as_ref().is_some_and(|a| a.has(Role::Technician)),
                })
            }
        };
        self.people.applying = true;
        let applied = self.safety_from_station(SafetyUpdate::Operator(facts));
        self.people.applying = false;
        match applied? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(StationError::Access(refusal.message)),
        }
    }

    /// The needle runs, or may: measured running, `RUN` acknowledged or on the wire,
    /// or a start held.
    pub(super) fn needle_may_run(&self) -> bool {
        self.held_start.is_some()
            || self.summary.as_ref().is_some_and(|s| s.running)
            || self
                .last_telemetry
                .is_some_and(|t| t.state == crate::protocol::PenState::Running)
    }

    /// The lock for an account changed through the clinic store
    /// ([`Station::account_changed_elsewhere`]): it falls once the needle is still,
    /// and technician mode ends with the technician role.
    fn check_relock(&mut self) {
        if self.people.relock
            && !self.people.locked
            && !self.people.applying
            && self.people.signed_in.is_some()
            && !self.needle_may_run()
        {
            self.people.relock = false;
            let who = self.account_id().unwrap_or_default().to_owned();
            let still_technician = self.people.signed_in.as_ref().is_some_and(|w| {
                self.people
                    .accounts
                    .still_has(w, Role::Technician)
                    .unwrap_or(false)
            });
            if self.technician().is_some() && !still_technician {
                // Technician mode is the technician role's: it ends with the role.
                let said = match self.leave_technician() {
                    Ok(()) => format!("technician mode ended: {who} is no longer a technician"),
                    Err(e) => format!(
                        "{who} is no longer a technician, and technician mode could not end: {e}"
                    ),
                };
                self.notices.push(Notice::Info(said));
            }
            match self.lock(LockReason::AccountChanged) {
                Ok(()) => self.notices.push(Notice::Info(format!(
                    "the account {who} was changed through the clinic store: the station \
                     locked; sign in again"
                ))),
                Err(e) => self.notices.push(Notice::Info(format!(
                    "the account {who} was changed through the clinic store, and the station \
                     could not lock: {e}"
                ))),
            }
        }
    }

    /// From every tick: the idle lock falls when its time has come and the needle
    /// is still (else it waits for the needle to stop).
    pub(super) fn check_idle_lock(&mut self) {
        self.check_relock();
        if self.people.locked
            || self.people.applying
            || self.people.signed_in.is_none()
            || self.people.last_activity.elapsed() < self.people.idle_lock
            || self.needle_may_run()
        {
            return;
        }
        match self.lock(LockReason::Idle) {
            Ok(()) => self.notices.push(Notice::Info(
                "the station locked after idle time: sign in to unlock".into(),
            )),
            Err(e) => {
                // Tried again at the next activity's idle time, not every tick.
                self.people.last_activity = Instant::now();
                self.notices
                    .push(Notice::Info(format!("the idle lock did not fall: {e}")));
            }
        }
    }
}

/// A closed session's record waiting for its practitioner's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedRecord {
    /// The record.
    pub path: std::path::PathBuf,
    /// Its session.
    pub session_id: String,
    /// Who signs it: the session's practitioner when it closed.
    pub practitioner: String,
}

impl Station {
    /// The last closed session's record, until it is signed.
    #[must_use]
    pub fn unsigned_record(&self) -> Option<&UnsignedRecord> {
        self.unsigned.as_ref()
    }

    /// The session's practitioner signs its closed record with the PIN (or password)
    /// again: a closing `signature` line with the SHA-256 of everything before it
    /// (`record::sign`). Only the practitioner who closed it signs; a record still
    /// closing (the pen's answer to the closing `HALT`, at most a second) waits.
    pub fn sign_record(
        &mut self,
        secret: &str,
    ) -> Result<crate::record::format::SignatureLine, StationError> {
        let who = self.require(Some(Role::Practitioner))?;
        if self.closing.is_some() {
            return Err(StationError::Access(
                "the record is still closing (the pen's answer to the closing HALT): try again \
                 in a second"
                    .into(),
            ));
        }
        let Some(record) = self.unsigned.clone() else {
            return Err(StationError::Access(
                "no closed session's record is waiting to be signed".into(),
            ));
        };
        if record.practitioner != who.id() {
            return Err(StationError::Access(format!(
                "session {} is {}'s to sign, not {}'s",
                record.session_id,
                record.practitioner,
                who.id()
            )));
        }
        let who = self.confirm_secret(secret)?;
        let signature =
            crate::record::sign::sign(&record.path, who.id(), who.name(), record::utc_ms_now())
                .map_err(|e| StationError::Access(e.to_string()))?;
        self.unsigned = None;
        self.audit(
            AuditEvent::new(AuditKind::RecordSigned, Some(who.id()))
                .with("session", record.session_id.clone())
                .with("sha256", signature.sha256.clone())
                .with("bytes", signature.bytes),
        );
        Ok(signature)
    }
}

/// An accounts error as the station's.
#[allow(
    clippy::needless_pass_by_value,
    reason = "used as map_err(access): takes the error by value"
)]
fn access(e: crate::store::accounts::AccountError) -> StationError {
    StationError::Access(e.to_string())
}
