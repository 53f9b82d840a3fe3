//! The per-zone figures of a session, by one rule: passes, needling time, maximum
//! depth and refusals. The live station, `punctum report` and replay all compute them
//! here, from the same record lines in the same order, so a report never disagrees
//! with a summary the station itself wrote (`docs/session-format.md`, "Figures").
//!
//! The rule:
//! - A **pass** starts when the pen acknowledges `RUN` (an `answer` line `RUN` →
//!   `ACK`). It counts in the zone selected at that moment, and lasts until a sample
//!   shows the needle stopped (or the link drops). A `RUN` acknowledged while a pass
//!   in the same zone is under way (a second `start`, a stop and a start back to back
//!   before the needle stopped) continues it. A zone selected while the needle runs
//!   takes force for the next pass: the run-down after a zone change's `HALT` belongs
//!   to the pass in the old zone.
//! - **Needling time** is the pen-clock time between two consecutive samples that both
//!   show `RUNNING`, unless more than [`MAX_SAMPLE_GAP_MS`] apart or separated by a
//!   link loss or a pen reboot; it counts in the zone of the pass under way.
//! - **Maximum depth** is the deepest actual depth of any sample showing `RUNNING`,
//!   in the zone of its pass. Only samples while the needle runs count.
//! - **Refusals** are the interlock's refusals (`refusal` lines), in the zone each
//!   line names.
//! - A sample showing `RUNNING` with no pass under way (a record that begins mid-run,
//!   a pen that started by itself) starts an implicit pass in the selected zone, with
//!   no pass counted.
//!
//! Pure: no I/O, no clock.

use super::format::{Line, StateWord};

/// Two samples further apart than this are not needling time: the telemetry was
/// interrupted, and the needle is assumed stopped meanwhile, ms.
pub const MAX_SAMPLE_GAP_MS: u32 = 1000;

/// One telemetry sample, as the figures need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FigureSample {
    /// Pen time, ms (wraps).
    pub t_ms: u32,
    /// The pen reported `RUNNING`.
    pub running: bool,
    /// Actual depth, µm.
    pub depth_um: i32,
}

impl FigureSample {
    /// From a sample's fields as the record holds them.
    #[must_use]
    pub fn new(t_ms: u32, state: StateWord, depth_um: i32) -> Self {
        Self {
            t_ms,
            running: state == StateWord::Running,
            depth_um,
        }
    }
}

/// One zone's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ZoneFigures {
    /// The zone's id as recorded; `None` for what happened with no zone selected.
    pub zone: Option<String>,
    /// Needle starts (`RUN` acknowledged) while it was selected.
    pub passes: u32,
    /// Running time of its passes, ms.
    pub needling_ms: u64,
    /// Deepest actual depth of its passes' running samples, µm (0: never ran).
    pub max_depth_um: i32,
    /// Interlock refusals while it was selected.
    pub refusals: u32,
}

impl ZoneFigures {
    /// Nothing happened in it.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.passes == 0 && self.needling_ms == 0 && self.max_depth_um == 0 && self.refusals == 0
    }

    /// The needle started or ran in it: the zone counts as treated.
    #[must_use]
    pub fn treated(&self) -> bool {
        self.passes > 0 || self.needling_ms > 0
    }
}

/// What one input added to the figures: replay indexes these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Nothing.
    Nothing,
    /// A pass started in zone slot `slot` (see [`Figures::zones`]).
    Pass {
        /// The zone's slot.
        slot: usize,
    },
    /// Needling time went to zone slot `slot`, from the previous sample to this one.
    Needling {
        /// The zone's slot.
        slot: usize,
        /// The time added, ms.
        dt_ms: u32,
    },
}

/// The figures so far, fed line by line in record order.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Per zone, in the order zones were first met.
    zones: Vec<ZoneFigures>,
    /// The zone selected now (its slot).
    selected: Option<usize>,
    /// The zone of the pass under way (its slot).
    pass: Option<usize>,
    /// The pass under way was started by an acknowledged `RUN` (not implicit: samples
    /// may reach the record just before the `RUN`'s answer does).
    pass_acknowledged: bool,
    /// The previous sample, while the next one may pair with it.
    last: Option<FigureSample>,
}

impl Figures {
    /// No figures yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Per zone, in the order zones were first met; the slot of a zone is its index.
    /// What happened with no zone selected is under `zone: None`.
    #[must_use]
    pub fn zones(&self) -> &[ZoneFigures] {
        &self.zones
    }

    /// All needling time, ms.
    #[must_use]
    pub fn needling_ms(&self) -> u64 {
        self.zones.iter().map(|z| z.needling_ms).sum()
    }

    /// All refusals.
    #[must_use]
    pub fn refusals(&self) -> u32 {
        self.zones.iter().map(|z| z.refusals).sum()
    }

    /// The figures of `zone`, if it was met.
    #[must_use]
    pub fn zone(&self, zone: &str) -> Option<&ZoneFigures> {
        self.zones.iter().find(|z| z.zone.as_deref() == Some(zone))
    }

    /// The slot of `zone`, added if new.
    pub fn slot(&mut self, zone: Option<&str>) -> usize {
        if let Some(i) = self.zones.iter().position(|z| z.zone.as_deref() == zone) {
            return i;
        }
        self.zones.push(ZoneFigures {
            zone: zone.map(str::to_owned),
            ..ZoneFigures::default()
        });
        self.zones.len() - 1
    }

    fn selected_slot(&mut self) -> usize {
        match self.selected {
            Some(slot) => slot,
            None => self.slot(None),
        }
    }

    /// Takes one record line (a `tel` line is a sample).
    pub fn on_line(&mut self, line: &Line) -> Counted {
        match line {
            Line::Tel(t) => self.on_sample(FigureSample::new(t.t_ms, t.state, t.depth_um)),
            Line::Zone(z) => {
                self.selected = Some(self.slot(Some(&z.zone)));
                Counted::Nothing
            }
            Line::Answer(a) if a.command == "RUN" && a.result == "ACK" => {
                let slot = self.selected_slot();
                if self.pass == Some(slot) && self.pass_acknowledged {
                    // Started again before it was seen to stop (a second `start`, or a
                    // stop and a start back to back): the same pass goes on.
                    return Counted::Nothing;
                }
                // A new pass, or the answer to the start of the running samples just
                // before it (they reached the record first): counted once.
                self.zones[slot].passes += 1;
                self.pass = Some(slot);
                self.pass_acknowledged = true;
                Counted::Pass { slot }
            }
            Line::Refusal(r) => {
                let slot = self.slot(r.zone.as_deref());
                self.zones[slot].refusals += 1;
                Counted::Nothing
            }
            Line::Link(l) if matches!(l.state.as_str(), "lost" | "connected" | "pen_changed") => {
                self.break_pass();
                Counted::Nothing
            }
            Line::Event(e) if e.event.starts_with("BOOT") => {
                self.break_pass();
                Counted::Nothing
            }
            _ => Counted::Nothing,
        }
    }

    /// The needle is stopped and the pen clock may start again: nothing pairs across.
    fn break_pass(&mut self) {
        self.pass = None;
        self.pass_acknowledged = false;
        self.last = None;
    }

    /// Takes one telemetry sample.
    pub fn on_sample(&mut self, sample: FigureSample) -> Counted {
        let previous = self.last.replace(sample);
        if !sample.running {
            self.pass = None;
            self.pass_acknowledged = false;
            return Counted::Nothing;
        }
        let slot = if let Some(slot) = self.pass {
            slot
        } else {
            let slot = self.selected_slot();
            self.pass = Some(slot);
            slot
        };
        let figures = &mut self.zones[slot];
        figures.max_depth_um = figures.max_depth_um.max(sample.depth_um);
        let Some(previous) = previous.filter(|p| p.running) else {
            return Counted::Nothing;
        };
        let dt_ms = sample.t_ms.wrapping_sub(previous.t_ms);
        if dt_ms > MAX_SAMPLE_GAP_MS {
            return Counted::Nothing;
        }
        figures.needling_ms += u64::from(dt_ms);
        Counted::Needling { slot, dt_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{AnswerLine, LinkLine, RefusalLine, ZoneLine};

    fn zone(z: &str) -> Line {
        Line::Zone(ZoneLine {
            utc_ms: 0,
            zone: z.into(),
            limit_um: 1000,
            halt_first: false,
            lowered_from_um: None,
            lowered_to_um: None,
        })
    }

    fn run_ack() -> Line {
        Line::Answer(AnswerLine {
            utc_ms: 0,
            seq: Some(1),
            command: "RUN".into(),
            result: "ACK".into(),
            detail: None,
            rtt_us: Some(100),
        })
    }

    fn refusal(z: Option<&str>) -> Line {
        Line::Refusal(RefusalLine {
            utc_ms: 0,
            command: "RUN".into(),
            rule: "needle_moving".into(),
            message: "m".into(),
            zone: z.map(str::to_owned),
        })
    }

    fn feed_samples(f: &mut Figures, from_ms: u32, to_ms: u32, running: bool, depth_um: i32) {
        for t_ms in (from_ms..=to_ms).step_by(10) {
            f.on_sample(FigureSample {
                t_ms,
                running,
                depth_um,
            });
        }
    }

    /// One check per case: the lines in order, then the expected (zone, passes,
    /// needling ms, max depth, refusals).
    fn check(feed: impl FnOnce(&mut Figures), expected: &[(Option<&str>, u32, u64, i32, u32)]) {
        let mut f = Figures::new();
        feed(&mut f);
        let got: Vec<_> = f
            .zones()
            .iter()
            .filter(|z| !z.is_blank() || z.zone.is_some())
            .map(|z| {
                (
                    z.zone.as_deref(),
                    z.passes,
                    z.needling_ms,
                    z.max_depth_um,
                    z.refusals,
                )
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_pass_counts_in_the_zone_selected_when_run_was_acknowledged() {
        check(
            |f| {
                f.on_line(&zone("cheeks"));
                f.on_line(&run_ack());
                feed_samples(f, 0, 1000, true, 1000);
                // The zone changes while the needle runs down: still the cheeks' pass.
                f.on_line(&zone("periorbital"));
                feed_samples(f, 1010, 1050, true, 1000);
                feed_samples(f, 1060, 1060, false, 300);
                f.on_line(&run_ack());
                feed_samples(f, 1070, 1570, true, 300);
            },
            &[
                (Some("cheeks"), 1, 1050, 1000, 0),
                (Some("periorbital"), 1, 500, 300, 0),
            ],
        );
    }

    #[test]
    fn halt_and_run_a_millisecond_apart_start_a_new_pass_in_the_new_zone() {
        // The pen never reports IDLE between them: the new RUN's ACK starts the pass.
        check(
            |f| {
                f.on_line(&zone("cheeks"));
                f.on_line(&run_ack());
                feed_samples(f, 0, 500, true, 500);
                f.on_line(&zone("forehead"));
                f.on_line(&run_ack());
                feed_samples(f, 510, 1000, true, 500);
            },
            &[
                (Some("cheeks"), 1, 500, 500, 0),
                (Some("forehead"), 1, 500, 500, 0),
            ],
        );
    }

    #[test]
    fn only_running_samples_count_and_gaps_and_link_losses_break_the_time() {
        check(
            |f| {
                f.on_line(&zone("body"));
                // Idle at depth: no depth counts.
                feed_samples(f, 0, 100, false, 2000);
                f.on_line(&run_ack());
                feed_samples(f, 110, 210, true, 1500);
                // A 2 s gap: not needling time.
                feed_samples(f, 2210, 2310, true, 1500);
                f.on_line(&Line::Link(LinkLine {
                    utc_ms: 0,
                    state: "lost".into(),
                    detail: None,
                }));
                // After a loss the pen clock may restart: nothing pairs across it.
                feed_samples(f, 5, 105, true, 1500);
            },
            &[(Some("body"), 1, 300, 1500, 0)],
        );
    }

    #[test]
    fn a_start_while_the_pass_goes_on_in_the_same_zone_is_not_a_new_pass() {
        check(
            |f| {
                f.on_line(&zone("cheeks"));
                f.on_line(&run_ack());
                feed_samples(f, 0, 500, true, 500);
                // `start` pressed again, and a stop and start back to back.
                f.on_line(&run_ack());
                feed_samples(f, 510, 1000, true, 500);
                f.on_line(&run_ack());
                feed_samples(f, 1010, 1010, false, 500);
                // Stopped, then started again: a new pass.
                f.on_line(&run_ack());
                feed_samples(f, 1020, 1100, true, 500);
            },
            &[(Some("cheeks"), 2, 1080, 500, 0)],
        );
    }

    #[test]
    fn refusals_count_in_the_zone_their_line_names() {
        check(
            |f| {
                f.on_line(&refusal(None));
                f.on_line(&zone("nose"));
                f.on_line(&refusal(Some("nose")));
                f.on_line(&refusal(Some("nose")));
            },
            &[(None, 0, 0, 0, 1), (Some("nose"), 0, 0, 0, 2)],
        );
    }

    #[test]
    fn a_start_whose_answer_follows_its_first_samples_is_one_pass() {
        check(
            |f| {
                f.on_line(&zone("nose"));
                feed_samples(f, 0, 20, true, 400);
                f.on_line(&run_ack());
                feed_samples(f, 30, 100, true, 400);
            },
            &[(Some("nose"), 1, 100, 400, 0)],
        );
    }

    #[test]
    fn a_run_with_no_acknowledged_start_counts_in_the_selected_zone_without_a_pass() {
        check(
            |f| {
                f.on_line(&zone("neck"));
                feed_samples(f, 0, 100, true, 400);
            },
            &[(Some("neck"), 0, 100, 400, 0)],
        );
    }
}
