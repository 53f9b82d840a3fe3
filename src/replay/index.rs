//! The session's state at any instant, precomputed once so that each frame's question
//! ("what was true at the cursor?") is a few binary searches, never a walk over the
//! 1.8 M samples of a 30-minute session at 1000 Hz.
//!
//! - Zone changes: sorted by time; the active zone is the last at or before the cursor.
//! - Passes (needle starts, `RUN` acknowledged): sorted by time, each with the running
//!   count per zone after it.
//! - Needling: runs of consecutive RUNNING samples in one zone ("segments"), each with
//!   the needling totals per zone before it; the time into the segment at the cursor is
//!   one subtraction.
//! - Alarms: every transition sorted by time, with a snapshot of the active alarms
//!   every [`CHECKPOINT_EVERY`] transitions; the state at the cursor is the snapshot
//!   before it plus at most that many transitions.
//!
//! Passes and needling are counted by the station's own rule ([`crate::record::figures`]),
//! fed the lines and samples in the order the station wrote them, so the figures at the
//! end of a replay are the summary's and the report's. Within a segment the time is
//! the pen's clock, as the rule counts it.

use crate::record::figures::{Counted, FigureSample, Figures};
use crate::record::format::Line;
use crate::record::recording::{InFileOrder, Recording, TelColumns};
use crate::safety::alarms::{ActiveAlarm, AlarmId, Priority};
use crate::safety::zones::ZoneId;

use super::events::parse_priority;

pub use crate::record::figures::MAX_SAMPLE_GAP_MS;

/// Alarm transitions between two snapshots.
pub const CHECKPOINT_EVERY: usize = 64;

/// Notes about lines the index could not use, at most this many (then a count).
const MAX_NOTES: usize = 50;

/// One slot per zone, and a last one for "no zone selected".
const SLOTS: usize = ZoneId::ALL.len() + 1;

fn slot(zone: Option<ZoneId>) -> usize {
    zone.map_or(SLOTS - 1, |z| z as usize)
}

/// A zone made active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneChange {
    /// When, session ms.
    pub at_ms: i64,
    /// The zone.
    pub zone: ZoneId,
    /// Its limit as recorded, µm.
    pub limit_um: i32,
}

/// A zone's figures up to an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneFigure {
    /// The zone.
    pub zone: ZoneId,
    /// Needle starts in it so far.
    pub passes: u32,
    /// Motor time in it so far, ms.
    pub needling_ms: u64,
}

/// A run of RUNNING samples `first..=last` whose gaps all count for one zone: its
/// needling time up to sample `k` is `t_ms[k] - t_ms[first]` on the pen's clock.
#[derive(Debug, Clone)]
struct Segment {
    first: usize,
    last: usize,
    slot: usize,
    /// Needling per slot before this segment, ms.
    before_ms: [u64; SLOTS],
}

/// What an alarm line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Raised,
    Acknowledged,
    Silenced,
    Cleared,
}

#[derive(Debug, Clone)]
struct AlarmTransition {
    at_ms: i64,
    id: AlarmId,
    priority: Priority,
    action: Action,
    text: String,
}

/// The precomputed state of a recorded session over time.
#[derive(Debug, Clone, Default)]
pub struct StateIndex {
    zone_changes: Vec<ZoneChange>,
    /// `RUN` acknowledged: when, and the passes per slot after it.
    passes: Vec<(i64, [u32; SLOTS])>,
    segments: Vec<Segment>,
    alarms: Vec<AlarmTransition>,
    /// `checkpoints[k]`: the active alarms after the first `k · CHECKPOINT_EVERY`
    /// transitions.
    checkpoints: Vec<Vec<ActiveAlarm>>,
    notes: Vec<String>,
    notes_dropped: usize,
}

impl StateIndex {
    /// Builds the index of `recording`. Lines it cannot use (an unknown zone or alarm,
    /// an unknown alarm action) are left out and noted (see [`Self::notes`]).
    #[must_use]
    pub fn build(recording: &Recording) -> Self {
        let mut index = Self::default();
        for timed in &recording.lines {
            let at_ms = timed.session_ms;
            match &timed.line {
                Line::Zone(z) => match z.zone.parse::<ZoneId>() {
                    Ok(zone) => index.zone_changes.push(ZoneChange {
                        at_ms,
                        zone,
                        limit_um: z.limit_um,
                    }),
                    Err(e) => {
                        index.note(format!("line {}: {e}; zone change ignored", timed.line_no));
                    }
                },
                Line::Alarm(a) => {
                    let Ok(id) = a.alarm.parse::<AlarmId>() else {
                        index.note(format!(
                            "line {}: unknown alarm \"{}\"; not shown in the banner",
                            timed.line_no, a.alarm
                        ));
                        continue;
                    };
                    let action = match a.action.as_str() {
                        "raised" => Action::Raised,
                        "acknowledged" => Action::Acknowledged,
                        "silenced" => Action::Silenced,
                        "cleared" => Action::Cleared,
                        other => {
                            index.note(format!(
                                "line {}: unknown alarm action \"{other}\"; ignored",
                                timed.line_no
                            ));
                            continue;
                        }
                    };
                    index.alarms.push(AlarmTransition {
                        at_ms,
                        id,
                        priority: parse_priority(&a.priority).unwrap_or_else(|| id.priority()),
                        action,
                        text: a.text.clone(),
                    });
                }
                _ => {}
            }
        }
        // Sorted (stably) so that binary searches hold even if the station's clock
        // stepped back mid-session.
        index.zone_changes.sort_by_key(|z| z.at_ms);
        index.alarms.sort_by_key(|a| a.at_ms);
        index.build_figures(recording);
        index.passes.sort_by_key(|p| p.0);
        index.build_checkpoints();
        index
    }

    /// Passes and needling segments, by the figures' own rule over the record in file
    /// order.
    fn build_figures(&mut self, recording: &Recording) {
        let tel = &recording.telemetry;
        let mut figures = Figures::new();
        // The figures' slots (zones in the order met) mapped to the index's.
        let mut slots: Vec<usize> = Vec::new();
        let mut pass_counts = [0u32; SLOTS];
        let mut totals = [0u64; SLOTS];
        let (passes, segments) = (&mut self.passes, &mut self.segments);
        recording.for_each_in_file_order(|item| {
            let (counted, sample, line_ms) = match item {
                InFileOrder::Sample(i) => {
                    let s = FigureSample::new(tel.t_ms[i], tel.state[i], tel.depth_um[i]);
                    (figures.on_sample(s), Some(i), None)
                }
                InFileOrder::Line(timed) => {
                    (figures.on_line(&timed.line), None, Some(timed.session_ms))
                }
            };
            while slots.len() < figures.zones().len() {
                let zone = figures.zones()[slots.len()]
                    .zone
                    .as_deref()
                    .and_then(|z| z.parse::<ZoneId>().ok());
                slots.push(slot(zone));
            }
            match (counted, sample, line_ms) {
                (Counted::Pass { slot }, _, Some(at_ms)) => {
                    pass_counts[slots[slot]] += 1;
                    passes.push((at_ms, pass_counts));
                }
                (Counted::Needling { slot, dt_ms }, Some(i), _) if i > 0 => {
                    let s = slots[slot];
                    match segments.last_mut() {
                        Some(seg) if seg.last == i - 1 && seg.slot == s => seg.last = i,
                        _ => segments.push(Segment {
                            first: i - 1,
                            last: i,
                            slot: s,
                            before_ms: totals,
                        }),
                    }
                    totals[s] += u64::from(dt_ms);
                }
                _ => {}
            }
        });
    }

    fn note(&mut self, text: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(text);
        } else {
            self.notes_dropped += 1;
        }
    }

    /// What the index left out, one line each (the first 50, then a count).
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.notes.clone();
        if self.notes_dropped > 0 {
            notes.push(format!("... and {} more", self.notes_dropped));
        }
        notes
    }

    fn build_checkpoints(&mut self) {
        let mut state: Vec<ActiveAlarm> = Vec::new();
        self.checkpoints.push(state.clone());
        for (i, transition) in self.alarms.iter().enumerate() {
            apply(&mut state, transition);
            if (i + 1) % CHECKPOINT_EVERY == 0 {
                self.checkpoints.push(state.clone());
            }
        }
    }

    /// The zone active at `t_ms`, with its recorded limit.
    #[must_use]
    pub fn zone_at(&self, t_ms: i64) -> Option<ZoneChange> {
        let n = self.zone_changes.partition_point(|z| z.at_ms <= t_ms);
        n.checked_sub(1)
            .and_then(|i| self.zone_changes.get(i))
            .copied()
    }

    /// Every zone change, in time order.
    #[must_use]
    pub fn zone_changes(&self) -> &[ZoneChange] {
        &self.zone_changes
    }

    /// Per zone with a pass or needling time by `t_ms`, its passes and needling time
    /// up to `t_ms`, in zone order. `tel` is the recording's telemetry.
    #[must_use]
    pub fn figures_at(&self, tel: &TelColumns, t_ms: i64) -> Vec<ZoneFigure> {
        let passes = self.passes_at(t_ms);
        let needling = self.needling_at(tel, t_ms);
        ZoneId::ALL
            .into_iter()
            .map(|zone| ZoneFigure {
                zone,
                passes: passes[slot(Some(zone))],
                needling_ms: needling[slot(Some(zone))],
            })
            .filter(|f| f.passes > 0 || f.needling_ms > 0)
            .collect()
    }

    /// All needling time up to `t_ms` (with no zone selected too), ms.
    #[must_use]
    pub fn needling_total_at(&self, tel: &TelColumns, t_ms: i64) -> u64 {
        self.needling_at(tel, t_ms).iter().sum()
    }

    fn passes_at(&self, t_ms: i64) -> [u32; SLOTS] {
        let n = self.passes.partition_point(|p| p.0 <= t_ms);
        n.checked_sub(1)
            .and_then(|i| self.passes.get(i))
            .map_or([0; SLOTS], |p| p.1)
    }

    fn needling_at(&self, tel: &TelColumns, t_ms: i64) -> [u64; SLOTS] {
        // Past u32 ms (49 days) is after every sample.
        let t = u32::try_from(t_ms.max(0)).unwrap_or(u32::MAX);
        let Some(last) = tel.count_until(t).checked_sub(1) else {
            return [0; SLOTS];
        };
        let k = self.segments.partition_point(|s| s.first <= last);
        let Some(seg) = k.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return [0; SLOTS];
        };
        let mut totals = seg.before_ms;
        let end = last.min(seg.last);
        totals[seg.slot] += u64::from(tel.t_ms[end].wrapping_sub(tel.t_ms[seg.first]));
        totals
    }

    /// The alarms active at `t_ms`: highest priority first, then the oldest, as the
    /// live alarm manager orders them.
    #[must_use]
    pub fn alarms_at(&self, t_ms: f64) -> Vec<ActiveAlarm> {
        #[allow(clippy::cast_precision_loss)] // session ms, far below 2^52
        let n = self.alarms.partition_point(|a| a.at_ms as f64 <= t_ms);
        let checkpoint = (n / CHECKPOINT_EVERY).min(self.checkpoints.len().saturating_sub(1));
        let mut state = self
            .checkpoints
            .get(checkpoint)
            .cloned()
            .unwrap_or_default();
        for transition in self
            .alarms
            .get(checkpoint * CHECKPOINT_EVERY..n)
            .unwrap_or_default()
        {
            apply(&mut state, transition);
        }
        state.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.raised_ms.cmp(&b.raised_ms))
                .then(a.id.cmp(&b.id))
        });
        state
    }
}

/// One transition applied to the active alarms.
fn apply(state: &mut Vec<ActiveAlarm>, t: &AlarmTransition) {
    let at_ms = u64::try_from(t.at_ms).unwrap_or(0);
    let existing = state.iter().position(|a| a.id == t.id);
    match (t.action, existing) {
        (Action::Raised, None) => state.push(ActiveAlarm {
            id: t.id,
            priority: t.priority,
            text: t.text.clone(),
            raised_ms: at_ms,
            acknowledged: false,
            silenced_until_ms: None,
            // The record does not say when a condition ended; the views do not show it.
            condition_present: true,
        }),
        (Action::Raised, Some(i)) => state[i].text.clone_from(&t.text),
        (Action::Acknowledged, Some(i)) => {
            state[i].acknowledged = true;
            state[i].text.clone_from(&t.text);
        }
        (Action::Silenced, Some(i)) => {
            // The line does not carry the end of the silence: the priority's longest
            // allowed silence, which is what the station grants.
            state[i].silenced_until_ms = Some(at_ms + t.priority.max_silence_ms());
            state[i].text.clone_from(&t.text);
        }
        (Action::Cleared, Some(i)) => {
            state.remove(i);
        }
        // A change to an alarm not active (a record cut before its raise): nothing.
        (Action::Acknowledged | Action::Silenced | Action::Cleared, None) => {}
    }
}
