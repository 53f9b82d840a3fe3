//! One treatment session: who, the screening, and per-zone figures.

use std::collections::BTreeMap;

use jiff::civil::Date;

use crate::protocol::{PenState, Telemetry};
use crate::safety::aftercare::{self, NextSession};
use crate::safety::screening::{ScreeningAnswers, ScreeningOutcome};
use crate::safety::zones::ZoneId;

/// A gap between two samples longer than this is not counted as needling time: the
/// telemetry was interrupted, and the needle is assumed stopped meanwhile.
const MAX_SAMPLE_GAP_MS: u32 = 1000;

/// Figures for one zone of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ZoneFigures {
    /// The zone (`None`: commands refused with no zone selected).
    pub zone: Option<ZoneId>,
    /// Times the needle was started in it.
    pub passes: u32,
    /// Time the motor ran in it, ms.
    pub needling_ms: u64,
    /// Deepest actual depth while running, µm.
    pub max_depth_um: i32,
    /// Commands the interlock refused while it was active.
    pub refusals: u32,
}

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
    /// Link losses and pen faults during it.
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
    zones: BTreeMap<Option<ZoneId>, ZoneFigures>,
    last_sample: Option<Telemetry>,
    /// The zone the needle was started in, while it runs: a pass belongs to its zone
    /// even while the pen runs down after a zone change that halted it.
    pass: Option<Pass>,
}

/// A needle start, while the needle runs.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// The zone active when it started (`None`: none was).
    zone: Option<ZoneId>,
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
            zones: BTreeMap::new(),
            last_sample: None,
            pass: None,
        }
    }

    fn figures(&mut self, zone: Option<ZoneId>) -> &mut ZoneFigures {
        self.zones.entry(zone).or_insert_with(|| ZoneFigures {
            zone,
            ..ZoneFigures::default()
        })
    }

    /// Figures of every zone selected so far (`zone` is `None` for refusals made with
    /// no zone selected).
    pub fn zone_figures(&self) -> impl Iterator<Item = &ZoneFigures> {
        self.zones.values()
    }

    /// All needling time so far, ms.
    #[must_use]
    pub fn needling_ms(&self) -> u64 {
        self.zones.values().map(|f| f.needling_ms).sum()
    }

    /// A telemetry sample while `zone` is active.
    pub fn on_telemetry(&mut self, t: &Telemetry, zone: Option<ZoneId>) {
        self.samples += 1;
        if let Some(prev) = self.last_sample
            && prev.state == PenState::Running
            && t.state == PenState::Running
        {
            let dt_ms = t.t_ms.wrapping_sub(prev.t_ms);
            if dt_ms <= MAX_SAMPLE_GAP_MS {
                let figures = self.figures(self.pass.map_or(zone, |p| p.zone));
                figures.needling_ms += u64::from(dt_ms);
                figures.max_depth_um = figures.max_depth_um.max(t.depth_um);
            }
        }
        if t.state != PenState::Running {
            self.pass = None;
        }
        self.last_sample = Some(*t);
    }

    /// The pen acknowledged RUN in `zone`.
    pub fn on_run(&mut self, zone: Option<ZoneId>) {
        self.pass = Some(Pass { zone });
        self.figures(zone).passes += 1;
    }

    /// The interlock refused a command while `zone` was active.
    pub fn on_refusal(&mut self, zone: Option<ZoneId>) {
        self.figures(zone).refusals += 1;
    }

    /// The summary, with aftercare and the next session's dates.
    #[must_use]
    pub fn summary(&self, today: Date) -> SessionSummary {
        let zones: Vec<ZoneFiguresOut> = self
            .zones
            .values()
            .filter_map(|f| {
                f.zone.map(|zone| ZoneFiguresOut {
                    zone,
                    passes: f.passes,
                    needling_ms: f.needling_ms,
                    max_depth_um: f.max_depth_um,
                    refusals: f.refusals,
                })
            })
            .collect();
        let NextSession {
            earliest,
            latest,
            advice,
        } = aftercare::next_session(self.answers.indication, today);
        SessionSummary {
            session_id: self.id.clone(),
            client: self.answers.client.clone(),
            needling_ms: self.zones.values().map(|f| f.needling_ms).sum(),
            refusals: self.zones.values().map(|f| f.refusals).sum(),
            interruptions: self.interruptions,
            zones,
            aftercare: aftercare::aftercare_lines()
                .iter()
                .map(|&l| l.to_owned())
                .collect(),
            next_earliest: earliest,
            next_latest: latest,
            next_advice: advice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::screening::{self, QuestionId};

    fn session() -> Session {
        // Every answerable question answered no: nothing to declare.
        let answers: serde_json::Map<String, serde_json::Value> = QuestionId::ALL
            .iter()
            .filter(|q| q.answerable())
            .map(|q| (q.as_str().to_owned(), serde_json::Value::Bool(false)))
            .collect();
        let json = serde_json::json!({
            "client": "C-1", "dob": "1990-05-01", "indication": "rejuvenation",
            "practitioner": "P-7", "answers": answers, "confirmed_cautions": []
        })
        .to_string();
        let answers = screening::parse_answers(&json).expect("answers");
        let today = jiff::civil::date(2026, 11, 24);
        let outcome = screening::evaluate(&answers, today);
        Session::new("S-1".into(), answers, outcome, today)
    }

    fn sample(t_ms: u32, state: PenState, depth_um: i32) -> Telemetry {
        Telemetry {
            n: t_ms / 10,
            t_ms,
            state,
            rpm: if state == PenState::Running { 6000 } else { 0 },
            depth_um,
            current_ma: 300,
            temp_dc: 300,
        }
    }

    #[test]
    fn a_pass_belongs_to_the_zone_it_started_in_even_while_the_pen_runs_down() {
        let mut s = session();
        let cheeks = Some(ZoneId::Cheeks);
        let eyes = Some(ZoneId::Periorbital);
        s.on_run(cheeks);
        for t in (0..=1000).step_by(10) {
            s.on_telemetry(&sample(t, PenState::Running, 1000), cheeks);
        }
        // The operator chose the eyes: the interlock halted the needle first, but the
        // pen still reports RUNNING for a few samples while it stops.
        for t in (1010..=1050).step_by(10) {
            s.on_telemetry(&sample(t, PenState::Running, 1000), eyes);
        }
        s.on_telemetry(&sample(1060, PenState::Idle, 300), eyes);
        s.on_run(eyes);
        for t in (1070..=1570).step_by(10) {
            s.on_telemetry(&sample(t, PenState::Running, 300), eyes);
        }
        let figures: Vec<&ZoneFigures> = s.zone_figures().collect();
        let of = |z| {
            figures
                .iter()
                .find(|f| f.zone == z)
                .copied()
                .expect("zone figures")
        };
        assert_eq!(of(cheeks).needling_ms, 1050);
        assert_eq!(of(cheeks).max_depth_um, 1000);
        assert_eq!(of(eyes).needling_ms, 500);
        assert_eq!(of(eyes).max_depth_um, 300, "never the cheeks' depth");
        assert_eq!((of(cheeks).passes, of(eyes).passes), (1, 1));
    }
}
