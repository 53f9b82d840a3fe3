//! One treatment session: who, the screening, and its figures.
//!
//! The per-zone figures are not computed here: the station feeds every line it records
//! to [`crate::record::figures::Figures`], the one rule the report and replay use too,
//! so the summary it writes is what `punctum report` recomputes from the lines.

use std::time::Instant;

use jiff::civil::Date;

use crate::record::figures::{Figures, ZoneFigures};
use crate::safety::aftercare::{self, NextSession};
use crate::safety::procedure::{Checklist, ProcedureSettings};
use crate::safety::screening::{ScreeningAnswers, ScreeningOutcome};
use crate::safety::zones::ZoneId;

/// An open session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id.
    pub id: String,
    /// The screening answers it was opened with.
    pub answers: ScreeningAnswers,
    /// The screening's outcome.
    pub outcome: ScreeningOutcome,
    /// The date it was opened.
    pub date: Date,
    /// Link losses, pen faults, reboots and needle monitor stops during it.
    pub interruptions: u32,
    /// When it opened, in station seconds (the plots' time axis).
    pub opened_s: f64,
    /// Alarms raised while it was open.
    pub alarms_raised: u32,
    /// Cartridges that ran in it, ids.
    pub cartridges: Vec<String>,
    /// Telemetry samples received while it was open.
    pub samples: u64,
    /// Its record's file, while it is being written.
    pub record_path: Option<std::path::PathBuf>,
    /// The per-zone figures, fed every line of the record as it is written.
    pub figures: Figures,
    /// The procedure's steps, as recorded.
    pub checklist: Checklist,
    /// The clinic's procedure times when the session opened.
    pub procedure: ProcedureSettings,
    /// The zero of the record's axis (its header).
    pub opened_at: Instant,
    /// The station's UTC wall clock at the zero of the record's axis, ms: a time on
    /// the axis is shown as this plus its ms.
    pub axis_utc_ms: i64,
    /// The operators' notes, in order.
    pub notes: Vec<String>,
    /// The course of treatment as it stood when the session opened.
    pub course: Option<crate::safety::course::CourseStatus>,
}

/// What `end` reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionSummary {
    /// The session's id.
    pub session_id: String,
    /// The client's pseudonym.
    pub client: String,
    /// Per zone, in zone order.
    pub zones: Vec<ZoneFiguresOut>,
    /// All needling time, ms.
    pub needling_ms: u64,
    /// All refusals.
    pub refusals: u32,
    /// Link losses and faults.
    pub interruptions: u32,
    /// The aftercare sheet.
    pub aftercare: Vec<String>,
    /// When the next session may be.
    pub next_earliest: Date,
    /// ... and should be by, when the schedule says.
    pub next_latest: Option<Date>,
    /// The schedule's advice.
    pub next_advice: String,
    /// The course of treatment: `acne scars: session 2 of 3–6; next from 2027-01-04`.
    pub course: Option<String>,
    /// The session's date.
    pub date: Date,
    /// The practitioner.
    pub practitioner: String,
    /// The indication.
    pub indication: String,
    /// Products and lots used, as they stand after corrections.
    pub lots: Vec<crate::safety::procedure::LotUse>,
    /// The procedure's steps as they stand: local time `HH:MM` and the step in words.
    pub steps: Vec<(String, String)>,
}

/// Figures of a zone that was selected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ZoneFiguresOut {
    /// The zone.
    pub zone: ZoneId,
    /// Needle starts.
    pub passes: u32,
    /// Motor time, ms.
    pub needling_ms: u64,
    /// Deepest actual depth while running, µm.
    pub max_depth_um: i32,
    /// Refusals while it was active.
    pub refusals: u32,
}

impl Session {
    /// A session opened on `date`.
    #[must_use]
    pub fn new(
        id: String,
        answers: ScreeningAnswers,
        outcome: ScreeningOutcome,
        date: Date,
    ) -> Self {
        Self {
            id,
            answers,
            outcome,
            date,
            interruptions: 0,
            opened_s: 0.0,
            alarms_raised: 0,
            cartridges: Vec::new(),
            samples: 0,
            record_path: None,
            figures: Figures::new(),
            checklist: Checklist::new(),
            procedure: ProcedureSettings::default(),
            opened_at: Instant::now(),
            axis_utc_ms: jiff::Timestamp::now().as_millisecond(),
            notes: Vec::new(),
            course: None,
        }
    }

    /// Figures of every zone met so far, with the zone as the station knows it
    /// (`None`: what happened with no zone selected, or a zone id it does not know).
    pub fn zone_figures(&self) -> impl Iterator<Item = (Option<ZoneId>, &ZoneFigures)> {
        self.figures
            .zones()
            .iter()
            .map(|f| (f.zone.as_deref().and_then(|z| z.parse().ok()), f))
    }

    /// A time on the session's axis (ms since it opened) as the station's local
    /// wall-clock time now says it, `HH:MM`.
    #[must_use]
    pub fn wall_clock(&self, at_ms: i64) -> String {
        // To the nearest second first: a time typed as 22:30 lands a few ms either side
        // of it on the axis, and must read 22:30, never 22:29.
        let utc_ms = self.axis_utc_ms.saturating_add(at_ms);
        let rounded_ms = (utc_ms + 500).div_euclid(1000) * 1000;
        jiff::Timestamp::from_millisecond(rounded_ms).map_or_else(
            |_| "?".to_owned(),
            |t| {
                t.to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%H:%M")
                    .to_string()
            },
        )
    }

    /// All needling time so far, ms.
    #[must_use]
    pub fn needling_ms(&self) -> u64 {
        self.figures.needling_ms()
    }

    /// The summary, with aftercare and the next session's dates.
    #[must_use]
    pub fn summary(&self, today: Date) -> SessionSummary {
        let mut zones: Vec<ZoneFiguresOut> = self
            .zone_figures()
            .filter_map(|(zone, f)| {
                zone.map(|zone| ZoneFiguresOut {
                    zone,
                    passes: f.passes,
                    needling_ms: f.needling_ms,
                    max_depth_um: f.max_depth_um,
                    refusals: f.refusals,
                })
            })
            .collect();
        zones.sort_by_key(|z| z.zone);
        let NextSession {
            earliest,
            latest,
            advice,
        } = aftercare::next_session(self.answers.indication, today);
        SessionSummary {
            session_id: self.id.clone(),
            client: self.answers.client.clone(),
            needling_ms: self.figures.needling_ms(),
            refusals: self.figures.refusals(),
            interruptions: self.interruptions,
            zones,
            aftercare: aftercare::aftercare_lines()
                .iter()
                .map(|&l| l.to_owned())
                .collect(),
            next_earliest: earliest,
            next_latest: latest,
            next_advice: advice,
            course: self.course.as_ref().map(|c| c.text.clone()),
            date: self.date,
            practitioner: self.answers.practitioner.clone(),
            indication: self.answers.indication.as_str().to_owned(),
            lots: self.checklist.lots(),
            steps: self
                .checklist
                .effective()
                .into_iter()
                .map(|e| (self.wall_clock(e.step.at_ms), e.step.describe()))
                .collect(),
        }
    }
}
