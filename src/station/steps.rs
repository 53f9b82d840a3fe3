//! The procedure's steps in the open session: checked by
//! [`crate::safety::procedure::Checklist`], recorded as `step` lines, and passed to
//! the interlock as the session's preparation (its start rule needs cleansing and
//! numbing).

use crate::record::format::{Line, StepLine};
use crate::safety::interlock::SafetyUpdate;
use crate::safety::procedure::{Item, ProcedureSettings, StepContext, StepEntry, StepKind};
use crate::safety::screening::QuestionId;

use super::{Station, StationError, record};

impl Station {
    /// The clinic's procedure times from the settings (the defaults when the file
    /// cannot be read now: a settings file that could not be read stopped the start).
    pub(super) fn procedure_settings(&self) -> ProcedureSettings {
        crate::store::StationSettings::load(&self.data)
            .map(|(s, _)| s.procedure())
            .unwrap_or_default()
    }

    /// Records a step of the procedure in the open session. `entry` gives the kind
    /// and its fields; the station sets its number, who recorded it (the session's
    /// practitioner), the cartridge in the pen (for a cartridge lot) and its times:
    /// now, or `at_utc_ms` (station UTC ms) when the operator says it happened
    /// earlier. Then the interlock gets the session's preparation, so the start rule
    /// decides on what is recorded. Returns the step as recorded.
    ///
    /// # Errors
    /// No session, the step refused ([`StationError::Step`], with why), a time in the
    /// future, or the record cannot be written (then nothing counts as recorded).
    pub fn record_step(
        &mut self,
        mut entry: StepEntry,
        at_utc_ms: Option<i64>,
    ) -> Result<StepEntry, StationError> {
        // Steps are the practitioner's: recorded by the signed-in one.
        let who = self.require(Some(crate::store::accounts::Role::Practitioner))?;
        if let Some(why) = &self.record_failure {
            return Err(StationError::NotRecorded(why.clone()));
        }
        let cartridge = self
            .summary
            .as_ref()
            .and_then(|s| s.cartridge.as_ref())
            .map(|c| c.id.to_string());
        let Some(recorder) = &self.recorder else {
            return Err(StationError::NoSession);
        };
        let Some(session) = &self.session else {
            return Err(StationError::NoSession);
        };
        let recorded_ms = recorder.mono_ms();
        let utc_ms = record::utc_ms_now();
        let earlier_ms = match at_utc_ms {
            Some(at) if at > utc_ms => {
                return Err(StationError::Step(
                    crate::safety::procedure::StepError::Refused(
                        "a step cannot be recorded as happening in the future".to_owned(),
                    ),
                ));
            }
            Some(at) => utc_ms - at,
            None => 0,
        };
        entry.recorded_ms = recorded_ms;
        entry.at_ms = recorded_ms - earlier_ms;
        who.id().clone_into(&mut entry.by);
        if entry.kind() == StepKind::CartridgeLot {
            entry.cartridge = cartridge;
        }
        let ctx = StepContext {
            now_ms: recorded_ms,
            settings: session.procedure,
            lidocaine_sensitive: session
                .answers
                .confirmed_cautions
                .contains(&QuestionId::LidocaineSensitivity),
            zones: &self.zones,
        };
        let entry = session
            .checklist
            .check_new(entry, &ctx)
            .map_err(StationError::Step)?;
        let line = Line::Step(Box::new(step_line(utc_ms, at_utc_ms, &entry)));
        crate::record::writer::check_line_fits(&line, "the step").map_err(StationError::TooLong)?;
        self.record(line);
        if let Some(why) = &self.record_failure {
            return Err(StationError::NotRecorded(why.clone()));
        }
        let Some(session) = &mut self.session else {
            return Err(StationError::NoSession);
        };
        session.checklist.push(entry.clone());
        let preparation = session
            .checklist
            .preparation(session.opened_at, session.procedure);
        // Not waited for: the link takes its commands in order, so the interlock has
        // this before any `RUN` asked after it (and the window's frame never waits).
        self.request_safety(SafetyUpdate::Preparation(preparation))?;
        Ok(entry)
    }

    /// The open session's checklist now: what is done, what is counting down, what is
    /// missing before the needle may start.
    #[must_use]
    pub fn checklist(&self) -> Option<Vec<Item>> {
        let session = self.session.as_ref()?;
        let now_ms = self
            .recorder
            .as_ref()
            .map_or(0, crate::record::writer::Recorder::mono_ms);
        Some(session.checklist.items(now_ms, session.procedure))
    }
}

/// A step as its record line.
fn step_line(utc_ms: i64, at_utc_ms: Option<i64>, entry: &StepEntry) -> StepLine {
    StepLine {
        utc_ms,
        number: entry.number,
        step: entry.kind().as_str().to_owned(),
        by: entry.by.clone(),
        at_utc_ms,
        product: entry.product.clone(),
        lot: entry.lot.clone(),
        cartridge: entry.cartridge.clone(),
        zone: entry.zone.map(|z| z.as_str().to_owned()),
        depth_um: entry.depth_um,
        reaction: entry.reaction.clone(),
        reason: entry.reason.clone(),
        corrects: entry.corrects,
        void: entry.void,
        lidocaine_confirmed: entry.lidocaine_confirmed,
    }
}
