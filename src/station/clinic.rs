//! The station as part of a clinic: the `punctum-clinic` thread's answers turned
//! into the station's decisions, alarms and records.
//!
//! - Claims ask the store first ([`Station::clinic_cartridge`], `clinic_zone`), then
//!   write the data folder as a station alone does. A store that does not answer in
//!   time is unreachable: the station decides on its own folder, and the interlock
//!   hears it (`CartridgeCheck::Offline`, `SafetyUpdate::ClinicStore`).
//! - The store's state is the medium alarm `clinic_store_unreachable`, a `clinic`
//!   line in the open session's record at each change, and the interlock's
//!   `ClinicFacts` (strict mode refuses every start while unreachable).
//! - A conflict found on upload raises the high alarm `cartridge_claim_conflict`, is
//!   recorded on this station's session (a `clinic` line when it is open, else an
//!   amendment) and in the audit trail. The other station does the same for its own
//!   session when its thread learns of it.

use jiff::Timestamp;

use super::{Notice, Station, StationError};
use crate::clinic::claims::{CartridgeAnswer, CartridgeClaimRequest, ZoneAnswer, ZoneClaimRequest};
use crate::clinic::upload::Conflict;
use crate::clinic::verdicts::Verdicts;
use crate::clinic::zones::{PublishedTable, StoreTable, ZONE_TABLES_FILE};
use crate::clinic::{ClinicError, ClinicEvent, ClinicLink, ClinicStatus};
use crate::protocol::CartridgeId;
use crate::record::Line;
use crate::record::format::ClinicLine;
use crate::safety::alarms::AlarmId;
use crate::safety::interlock::{CartridgeCheck, ClinicFacts, SafetyUpdate};
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::store::accounts::Role;
use crate::store::audit::AuditKind;

/// The station's part in a clinic.
#[derive(Debug)]
pub(super) struct ClinicPart {
    /// The thread.
    pub(super) link: ClinicLink,
    /// The clinic's strict mode: nothing starts without the store.
    pub(super) strict: bool,
    /// The store answered the latest request (what the interlock was told); `None`
    /// until the first answer or failure.
    pub(super) reachable: Option<bool>,
    /// What the store refused (cartridges other sessions hold, zones treated
    /// elsewhere), kept in the data folder: the store going away, or a restart, does
    /// not turn "used" into a sealed-pack question.
    pub(super) verdicts: Verdicts,
    /// A cartridge the operator confirmed came from a sealed pack, for a session.
    pub(super) sealed_pack: Option<(String, CartridgeId)>,
    /// A cartridge the store gave a session: a later start in the same session
    /// needs no confirmation while the store is away.
    pub(super) store_claimed: Option<(String, CartridgeId)>,
    /// The open session's client history lacks other rooms' (the store could not be
    /// read): shown on screen until it can.
    pub(super) history_incomplete: bool,
    /// The store's newest zone table, waiting for the session to end (the interlock
    /// never changes a limit under a session).
    pub(super) pending_table: Option<StoreTable>,
}

/// What the store said of a cartridge claim.
pub(super) enum StoreCartridge {
    /// The station is not part of a clinic.
    Alone,
    /// The session holds it in the store.
    Claimed,
    /// Another session holds it.
    HeldBy(String),
    /// The store could not be asked.
    Unreachable,
}

/// What the store said of a zone claim.
pub(super) enum StoreZone {
    /// The station is not part of a clinic.
    Alone,
    /// The session holds it in the store.
    Claimed,
    /// Treated too recently in another session: that day.
    TreatedOn(jiff::civil::Date),
    /// The store could not be asked.
    Unreachable,
}

impl Station {
    /// Makes this station part of a clinic: its thread uploads the outbox and answers
    /// claims from now on. `strict`: nothing starts while the store is unreachable.
    ///
    /// # Errors
    /// [`StationError::Store`] when `clinic-verdicts.json` cannot be read: what the
    /// store refused must not be forgotten silently.
    pub fn join_clinic(&mut self, link: ClinicLink, strict: bool) -> Result<(), StationError> {
        let verdicts = Verdicts::load(self.data.root(), Self::today())?;
        self.clinic = Some(ClinicPart {
            link,
            strict,
            // Until the thread says otherwise: a strict station refuses starts until
            // the store has answered once.
            reachable: None,
            verdicts,
            sealed_pack: None,
            store_claimed: None,
            history_incomplete: false,
            pending_table: None,
        });
        self.tell_clinic_facts();
        Ok(())
    }

    /// The clinic store's status, when the station is part of one.
    #[must_use]
    pub fn clinic_status(&self) -> Option<ClinicStatus> {
        self.clinic.as_ref().map(|c| c.link.status())
    }

    /// Sets the strict mode (an admin's setting), told to the interlock at once.
    pub(super) fn set_clinic_strict(&mut self, strict: bool) {
        if let Some(c) = &mut self.clinic {
            c.strict = strict;
            self.tell_clinic_facts();
        }
    }

    /// Whether the clinic's strict mode is on.
    #[must_use]
    pub fn clinic_strict(&self) -> bool {
        self.clinic.as_ref().is_some_and(|c| c.strict)
    }

    /// The open session's client history lacks other rooms' treatments (the clinic
    /// store could not be read when it opened or at the last start).
    #[must_use]
    pub fn history_incomplete(&self) -> bool {
        self.session.is_some() && self.clinic.as_ref().is_some_and(|c| c.history_incomplete)
    }

    /// The operator confirms that the cartridge in the pen came from a sealed pack,
    /// while the clinic store cannot check it: the start it allows is recorded
    /// (a `clinic` line and the audit trail). Needs a practitioner and an open
    /// session.
    ///
    /// # Errors
    /// [`StationError::Access`] without the role; [`StationError::NoSession`];
    /// [`StationError::Pen`] without a cartridge or when the store answers (no
    /// confirmation is needed then).
    pub fn confirm_sealed_pack(&mut self) -> Result<CartridgeId, StationError> {
        let who = self.require(Some(Role::Practitioner))?;
        let session_id = self
            .session
            .as_ref()
            .map(|s| s.id.clone())
            .ok_or(StationError::NoSession)?;
        let Some(cartridge) = self.summary.as_ref().and_then(|s| s.cartridge.clone()) else {
            return Err(StationError::Pen("no cartridge is in the pen".into()));
        };
        if let Some(used) = self.registry.used_outside(cartridge.id, Some(&session_id)) {
            return Err(StationError::Pen(format!(
                "cartridge {} was used in session {}: insert a new one",
                cartridge.id, used.session_id
            )));
        }
        let Some(clinic) = &mut self.clinic else {
            return Err(StationError::Pen(
                "this station is not part of a clinic store: the data folder checks the \
                 cartridge"
                    .into(),
            ));
        };
        if let Some(holder) = clinic.verdicts.holder(&cartridge.id.to_string()) {
            return Err(StationError::Pen(format!(
                "the clinic store said cartridge {} was used in session {holder}: insert a new \
                 one",
                cartridge.id
            )));
        }
        if clinic.strict {
            return Err(StationError::Pen(
                "the clinic's strict mode starts nothing without the clinic store: a \
                 sealed-pack confirmation does not change that"
                    .into(),
            ));
        }
        if clinic.link.status().state.is_connected() && clinic.reachable == Some(true) {
            return Err(StationError::Pen(
                "the clinic store answers: it checks the cartridge, no confirmation is needed"
                    .into(),
            ));
        }
        clinic.sealed_pack = Some((session_id.clone(), cartridge.id));
        let account = who.id().to_owned();
        self.record(Line::Clinic(ClinicLine {
            utc_ms: super::record::utc_ms_now(),
            event: "sealed_pack_confirmed".into(),
            detail: format!(
                "{account} confirmed cartridge {} came from a sealed pack (the clinic store \
                 could not check it)",
                cartridge.id
            ),
            account: Some(account),
            cartridge: Some(cartridge.id.to_string()),
        }));
        self.audit_event(
            AuditKind::SealedPackConfirmed,
            &[
                ("cartridge", cartridge.id.to_string()),
                ("session", session_id),
            ],
        );
        // The interlock takes a cartridge's verdict whatever the state: a refusal here
        // would be a cartridge removed meanwhile, and then the next one is unchecked.
        let _ = self.safety_from_station(SafetyUpdate::CartridgeChecked {
            id: cartridge.id,
            check: CartridgeCheck::Offline {
                sealed_pack_confirmed: true,
            },
        })?;
        Ok(cartridge.id)
    }

    /// Asks the store to claim `cartridge` for the session (with a deadline).
    pub(super) fn clinic_cartridge(
        &mut self,
        cartridge: CartridgeId,
        session_id: &str,
        client: &str,
    ) -> StoreCartridge {
        let Some(clinic) = &self.clinic else {
            return StoreCartridge::Alone;
        };
        let answer = clinic.link.claim_cartridge(CartridgeClaimRequest {
            cartridge_id: cartridge.to_string(),
            session_id: session_id.to_owned(),
            client: client.to_owned(),
            at: Timestamp::now(),
        });
        match answer {
            Ok(CartridgeAnswer::Claimed { .. }) => {
                if let Some(c) = &mut self.clinic {
                    c.store_claimed = Some((session_id.to_owned(), cartridge));
                }
                self.clinic_reachable(true, None);
                StoreCartridge::Claimed
            }
            Ok(CartridgeAnswer::HeldBy {
                session_id,
                station_id,
            }) => {
                self.clinic_reachable(true, None);
                let holder = format!("{session_id} (station {station_id})");
                if let Some(c) = &mut self.clinic {
                    c.verdicts
                        .cartridges
                        .insert(cartridge.to_string(), holder.clone());
                }
                self.save_verdicts();
                StoreCartridge::HeldBy(holder)
            }
            Err(e) => {
                self.clinic_reachable(false, Some(&e));
                // What the store said before it went away still stands.
                match self
                    .clinic
                    .as_ref()
                    .and_then(|c| c.verdicts.holder(&cartridge.to_string()))
                {
                    Some(holder) => StoreCartridge::HeldBy(holder.to_owned()),
                    None => StoreCartridge::Unreachable,
                }
            }
        }
    }

    /// The interlock's verdict for a cartridge the data folder knows no use of, when
    /// the store could not be asked: fresh when the store gave it to this session
    /// before it went away, else offline (confirmed or not).
    pub(super) fn offline_check(&self, cartridge: CartridgeId) -> CartridgeCheck {
        let this_session = |held: &Option<(String, CartridgeId)>| {
            held.as_ref().is_some_and(|(session, id)| {
                *id == cartridge && self.session.as_ref().is_some_and(|s| s.id == *session)
            })
        };
        let Some(clinic) = &self.clinic else {
            return CartridgeCheck::Fresh;
        };
        if this_session(&clinic.store_claimed) {
            return CartridgeCheck::Fresh;
        }
        CartridgeCheck::Offline {
            sealed_pack_confirmed: this_session(&clinic.sealed_pack),
        }
    }

    /// Asks the store to claim `zone` for the session under the 4-week rule.
    pub(super) fn clinic_zone(
        &mut self,
        client: &str,
        zone: &str,
        date: jiff::civil::Date,
        session_id: &str,
    ) -> StoreZone {
        let Some(clinic) = &self.clinic else {
            return StoreZone::Alone;
        };
        let answer = clinic.link.claim_zone(ZoneClaimRequest {
            client: client.to_owned(),
            zone: zone.to_owned(),
            date,
            session_id: session_id.to_owned(),
            allowed: crate::safety::aftercare::same_zone_allowed,
        });
        match answer {
            Ok(ZoneAnswer::Claimed { .. }) => {
                self.clinic_reachable(true, None);
                StoreZone::Claimed
            }
            Ok(ZoneAnswer::TreatedOn { date, .. }) => {
                self.clinic_reachable(true, None);
                self.remember_treated(client, zone, date);
                StoreZone::TreatedOn(date)
            }
            Err(e) => {
                self.clinic_reachable(false, Some(&e));
                self.mark_history_incomplete(e.reason());
                // What the store said before it went away still stands.
                let known = self
                    .clinic
                    .as_ref()
                    .and_then(|c| c.verdicts.treated(client, zone));
                match known {
                    Some(day) => StoreZone::TreatedOn(day),
                    None => StoreZone::Unreachable,
                }
            }
        }
    }

    /// Other rooms' treatments of `client` (the last day per zone), or `None` when
    /// alone or unreachable (then the history is marked incomplete).
    pub(super) fn clinic_history(
        &mut self,
        client: &str,
    ) -> Option<Vec<(String, jiff::civil::Date)>> {
        let clinic = self.clinic.as_mut()?;
        clinic.history_incomplete = false;
        match clinic.link.zone_history(client, None) {
            Ok(history) => {
                self.clinic_reachable(true, None);
                for (zone, day) in &history {
                    self.remember_treated(client, zone, *day);
                }
                Some(history)
            }
            Err(e) => {
                self.clinic_reachable(false, Some(&e));
                if let Some(c) = &mut self.clinic {
                    c.history_incomplete = true;
                }
                None
            }
        }
    }

    /// What the store said of `client`'s zones (the latest day each), this run.
    pub(super) fn store_history_of(&self, client: &str) -> Vec<(ZoneId, jiff::civil::Date)> {
        self.clinic.as_ref().map_or_else(Vec::new, |c| {
            c.verdicts
                .of_client(client)
                .into_iter()
                .filter_map(|(zone, day)| zone.parse::<ZoneId>().ok().map(|z| (z, day)))
                .collect()
        })
    }

    /// Keeps what the store said of a client's zone (the latest day), in the data
    /// folder too.
    fn remember_treated(&mut self, client: &str, zone: &str, day: jiff::civil::Date) {
        let changed = self
            .clinic
            .as_mut()
            .is_some_and(|c| c.verdicts.keep_treated(client, zone, day));
        if changed {
            self.save_verdicts();
        }
    }

    /// Writes `clinic-verdicts.json`; a failure is said (the verdict holds in memory
    /// until the station stops).
    fn save_verdicts(&mut self) {
        let saved = self
            .clinic
            .as_ref()
            .map(|c| c.verdicts.save(self.data.root()));
        if let Some(Err(e)) = saved {
            self.notices.push(Notice::Info(format!(
                "clinic store: what it refused could not be kept in the data folder: {e}"
            )));
        }
    }

    /// A session just opened: its record says whether the store is away, and whether
    /// the client's history is incomplete (read while it opened).
    pub(super) fn clinic_state_into_record(&mut self) {
        let Some(clinic) = &mut self.clinic else {
            return;
        };
        let incomplete = std::mem::take(&mut clinic.history_incomplete);
        if clinic.reachable == Some(false) {
            let why = match clinic.link.status().state {
                crate::clinic::StoreState::Unreachable(why)
                | crate::clinic::StoreState::Incompatible(why) => why,
                _ => "no answer".to_owned(),
            };
            self.record(Line::Clinic(ClinicLine {
                utc_ms: super::record::utc_ms_now(),
                event: "unreachable".into(),
                detail: format!("clinic store unreachable when the session opened: {why}"),
                account: None,
                cartridge: None,
            }));
        }
        if incomplete {
            self.mark_history_incomplete(
                "the clinic store could not be read when the session opened",
            );
        }
    }

    /// Says in the open record that the client's history is incomplete (once per
    /// session).
    pub(super) fn mark_history_incomplete(&mut self, why: &str) {
        let Some(clinic) = &mut self.clinic else {
            return;
        };
        if clinic.history_incomplete || self.session.is_none() {
            return;
        }
        clinic.history_incomplete = true;
        self.record(Line::Clinic(ClinicLine {
            utc_ms: super::record::utc_ms_now(),
            event: "history_incomplete".into(),
            detail: format!(
                "the client's history from other rooms is not known: {why}; only this \
                 station's records are"
            ),
            account: None,
            cartridge: None,
        }));
    }

    /// Wakes the clinic thread: the data folder was written.
    pub(super) fn wake_clinic(&self) {
        if let Some(c) = &self.clinic {
            c.link.wake();
        }
    }

    /// The store answered (or did not): the alarm, the record and the interlock
    /// follow a change.
    fn clinic_reachable(&mut self, reachable: bool, why: Option<&ClinicError>) {
        let Some(clinic) = &mut self.clinic else {
            return;
        };
        if clinic.reachable == Some(reachable) {
            return;
        }
        clinic.reachable = Some(reachable);
        let now = self.now_ms();
        if reachable {
            self.alarms
                .condition_ended(AlarmId::ClinicStoreUnreachable, now);
        } else {
            let why = why.map_or_else(
                || "no answer".to_owned(),
                |e| format!("clinic store unreachable: {}", e.reason()),
            );
            self.alarms
                .condition_present(AlarmId::ClinicStoreUnreachable, now, &why);
        }
        let detail = match why {
            Some(e) => e.to_string(),
            None if reachable => "the clinic store answers again".into(),
            None => "the clinic store cannot be reached".into(),
        };
        self.record(Line::Clinic(ClinicLine {
            utc_ms: super::record::utc_ms_now(),
            event: if reachable {
                "reachable"
            } else {
                "unreachable"
            }
            .into(),
            detail,
            account: None,
            cartridge: None,
        }));
        self.tell_clinic_facts();
    }

    /// Tells the interlock the store's state and the strict mode.
    fn tell_clinic_facts(&mut self) {
        let facts = self.clinic.as_ref().map(|c| ClinicFacts {
            strict: c.strict,
            reachable: c.reachable == Some(true),
        });
        if let Err(e) = self.safety_from_station(SafetyUpdate::ClinicStore(facts)) {
            self.notices.push(Notice::Info(format!(
                "clinic store: the interlock was not told: {e}"
            )));
        }
    }

    /// What the clinic thread said since the last tick.
    pub(super) fn clinic_tick(&mut self) {
        let Some(clinic) = &self.clinic else {
            return;
        };
        for event in clinic.link.events() {
            match event {
                ClinicEvent::Reachable => self.clinic_reachable(true, None),
                ClinicEvent::Unreachable(why) => {
                    self.clinic_reachable(false, Some(&ClinicError::Unreachable(why)));
                }
                ClinicEvent::Conflict(conflict) => self.on_conflict(&conflict),
                ClinicEvent::Warning(text) => {
                    self.notices
                        .push(Notice::Info(format!("clinic store: {text}")));
                }
                ClinicEvent::ZoneTable(table) => self.offer_zone_table(table),
                ClinicEvent::Accounts(changed) => {
                    for a in changed {
                        self.notices.push(Notice::Info(format!(
                            "clinic store: account {}: {}",
                            a.id, a.what
                        )));
                        if a.relock {
                            self.account_changed_elsewhere(&a.id);
                        }
                    }
                }
            }
        }
        if self.session.is_none()
            && let Some(table) = self.clinic.as_mut().and_then(|c| c.pending_table.take())
        {
            self.offer_zone_table(table);
        }
    }

    /// An admin's new zone table, into the outbox (the data folder first) so the
    /// store makes it the clinic's: other stations take it before their next session.
    /// A failure to write it is said; the change stands here.
    pub(super) fn publish_zone_table(
        &mut self,
        table: &ZoneTable,
        zone: ZoneId,
        old_limit_um: i32,
        new_limit_um: i32,
        by: &str,
        reason: &str,
    ) {
        if self.clinic.is_none() {
            return;
        }
        let line = PublishedTable {
            sha256: table.hash_hex().to_owned(),
            table: serde_json::from_str(&table.to_json()).unwrap_or_default(),
            zone: zone.as_str().to_owned(),
            old_limit_um,
            new_limit_um,
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: Timestamp::now(),
        };
        if let Err(e) = crate::store::jsonl::append(&self.data.path(ZONE_TABLES_FILE), &line) {
            self.notices.push(Notice::Info(format!(
                "the new limit holds here but could not be queued for the clinic store: {e}"
            )));
            return;
        }
        // Into the store before the admin's command returns, so another room's next
        // session has it; when the store is away, the outbox keeps it.
        let sent = self
            .clinic
            .as_ref()
            .is_some_and(|c| c.link.flush_zone_tables());
        if !sent {
            self.notices.push(Notice::Info(
                "the new limit holds here; the clinic store has not got it yet (other rooms \
                 take it once it has)"
                    .into(),
            ));
        }
    }

    /// Asks the store for the clinic's newest zone table and takes it (before a
    /// session opens). Unreachable: the station's own table stands.
    pub(super) fn refresh_clinic_zone_table(&mut self) {
        let Some(clinic) = &self.clinic else {
            return;
        };
        match clinic.link.zone_table() {
            Ok(Some(table)) => {
                self.clinic_reachable(true, None);
                self.offer_zone_table(table);
            }
            Ok(None) => self.clinic_reachable(true, None),
            Err(e) => self.clinic_reachable(false, Some(&e)),
        }
    }

    /// The store's newest zone table: taken now unless it is the table in force, or
    /// a session is open or the needle runs (then when the session ends).
    fn offer_zone_table(&mut self, stored: StoreTable) {
        if stored.sha256 == self.zones.hash_hex() {
            return;
        }
        let table = match ZoneTable::from_json(&stored.json) {
            Ok(table) => table,
            Err(e) => {
                self.notices.push(Notice::Info(format!(
                    "clinic store: its zone table (version {}, station {}) is refused: {e}; \
                     this station keeps its own",
                    stored.version, stored.station_id
                )));
                return;
            }
        };
        if self.session.is_some() {
            if let Some(c) = &mut self.clinic {
                c.pending_table = Some(stored);
            }
            return;
        }
        let told = self.safety_from_station(SafetyUpdate::ZoneTable(Box::new(table.clone())));
        if !matches!(told, Ok(Ok(_))) {
            // The needle runs (bench work): again at the next tick.
            if let Some(c) = &mut self.clinic {
                c.pending_table = Some(stored);
            }
            return;
        }
        let who = format!(
            "{} (clinic store, station {})",
            stored.by, stored.station_id
        );
        let kept = self.keep_zone_table(&table, &who, &stored.reason);
        let changes = self.zones.limit_changes(&table);
        self.zones = table;
        if let Err(e) = kept {
            self.notices.push(Notice::Info(format!(
                "the clinic's zone table holds, but could not be written to the data folder: {e}"
            )));
        }
        for change in changes {
            self.notices.push(Notice::Info(format!(
                "zone limit {}: {} → {} µm, from the clinic store ({} at station {}: {})",
                change.zone,
                change.old_limit_um,
                change.new_limit_um,
                stored.by,
                stored.station_id,
                stored.reason
            )));
            self.audit_event(
                AuditKind::ZoneLimitChanged,
                &[
                    ("zone", change.zone.as_str().to_owned()),
                    ("from_um", change.old_limit_um.to_string()),
                    ("to_um", change.new_limit_um.to_string()),
                    ("reason", stored.reason.clone()),
                    ("via", "clinic store".to_owned()),
                    ("by", stored.by.clone()),
                    ("station", stored.station_id.clone()),
                ],
            );
        }
    }

    /// A cartridge ran in two sessions: the high alarm, this station's session's
    /// record (or an amendment to it), and the audit trail.
    fn on_conflict(&mut self, c: &Conflict) {
        let station_id = self
            .clinic
            .as_ref()
            .map(|p| p.link.status().station_id)
            .unwrap_or_default();
        // This station's session of the two, and the other.
        let (mine, other, other_station) = if c.offline_station == station_id {
            (&c.offline_session, &c.holder_session, &c.holder_station)
        } else {
            (&c.holder_session, &c.offline_session, &c.offline_station)
        };
        let text = format!(
            "cartridge {} ran in session {mine} here and in session {other} at station \
             {other_station}: it was claimed while a station could not reach the clinic store",
            c.cartridge_id
        );
        let now = self.now_ms();
        self.alarms
            .condition_present(AlarmId::CartridgeClaimConflict, now, &text);
        // An event: the latched alarm stays until acknowledged.
        self.alarms
            .condition_ended(AlarmId::CartridgeClaimConflict, now);
        let open = self.session.as_ref().is_some_and(|s| s.id == *mine) && self.recorder.is_some();
        if open {
            self.record(Line::Clinic(ClinicLine {
                utc_ms: super::record::utc_ms_now(),
                event: "claim_conflict".into(),
                detail: text.clone(),
                account: None,
                cartridge: Some(c.cartridge_id.clone()),
            }));
        } else {
            self.amend_for_conflict(mine, &text);
        }
        self.audit_event(
            AuditKind::ClaimConflict,
            &[
                ("cartridge", c.cartridge_id.clone()),
                ("session", mine.clone()),
                ("other_session", other.clone()),
                ("other_station", other_station.clone()),
            ],
        );
        self.notices.push(Notice::Info(format!("alarm: {text}")));
        self.wake_clinic();
    }

    /// An amendment to a closed session of this station: the conflict, on file with
    /// the session (the record itself is never changed).
    fn amend_for_conflict(&mut self, session_id: &str, text: &str) {
        self.library.refresh(&self.data.path(super::SESSIONS_DIR));
        let (client, date) = self
            .library
            .entries
            .iter()
            .find(|e| e.session_id == session_id)
            .map_or_else(
                || (String::new(), Self::today()),
                |e| {
                    (
                        e.client.clone(),
                        e.opened_date().unwrap_or_else(Self::today),
                    )
                },
            );
        let amendment = crate::store::amendments::Amendment {
            client,
            session_id: session_id.to_owned(),
            date,
            kind: "other".into(),
            severity: "moderate".into(),
            note: format!("clinic store: {text}"),
            by: "punctum (clinic store)".into(),
            recorded_at: Timestamp::now(),
        };
        if let Err(e) = crate::store::amendments::append(&self.data, &amendment) {
            self.notices.push(Notice::Info(format!(
                "the conflict could not be added to session {session_id}: {e}"
            )));
        }
    }
}
