//! A session's report, computed from its record: per zone the needling time,
//! passes, maximum depth and refusals; the alarms; the interruptions.
//!
//! The figures are recomputed from the lines by the station's own rule
//! ([`super::figures`], fed in the order the station wrote them), so that an
//! interrupted record, which has no summary, still gets them. When the summary line
//! is there it is shown too, and every figure on which it disagrees with the lines is
//! listed: a disagreement means lines were lost, skipped or changed.
//!
//! [`write_csv`] exports the telemetry for spreadsheets and pandas.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::figures::{FigureSample, Figures};
pub use super::figures::{MAX_SAMPLE_GAP_MS, ZoneFigures as ZoneReport};
use super::format::{Line, StepLine, SummaryLine};
use super::recording::{InFileOrder, RecordStatus, Recording};

/// Warnings listed in the text report; all of them are in the JSON.
const TEXT_WARNINGS: usize = 20;

/// Everything `punctum report` shows about one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The record's file.
    pub path: String,
    /// The session's id.
    pub session_id: String,
    /// The client's pseudonym.
    pub client: String,
    /// The practitioner's id.
    pub practitioner: String,
    /// When it opened, RFC 3339 with the station's offset.
    pub opened_at: String,
    /// The station's version that wrote it.
    pub station_version: String,
    /// The record's format version.
    pub format_version: u32,
    /// The pen as recorded (`model serial S, firmware F`), when the link had it.
    pub pen: Option<String>,
    /// Recorded on the built-in simulated pen: not a treatment.
    pub simulated: bool,
    /// Whether alarms could be heard when the session opened (the header's
    /// `alarm_sound`), when recorded.
    pub alarm_sound: Option<String>,
    /// `complete` (it ends with its summary) or `interrupted`.
    pub status: &'static str,
    /// The session's length, ms.
    pub duration_ms: i64,
    /// Telemetry samples loaded.
    pub samples: u64,
    /// Samples the pen numbered but the record lacks (gaps in `n`).
    pub samples_lost: u64,
    /// All needling time, ms.
    pub needling_ms: u64,
    /// Per zone, in the order they were first selected; a last `zone: null` entry
    /// holds commands refused with no zone selected.
    pub zones: Vec<ZoneReport>,
    /// All interlock refusals.
    pub refusals: u32,
    /// Every alarm raised (or acted on) during the session, in order.
    pub alarms: Vec<AlarmReport>,
    /// Link losses, pen faults, emergency stops, pen reboots and telemetry gaps.
    pub interruptions: Vec<Interruption>,
    /// Interruptions as the station's summary counts them: link losses, pen faults,
    /// reboots of a pen already connected, and needle monitor stops.
    pub station_interruptions: u32,
    /// Cartridges that ran, in order.
    pub cartridges: Vec<String>,
    /// Operators' notes.
    pub notes: Vec<NoteReport>,
    /// The indication, from the header's screening.
    pub indication: Option<String>,
    /// The procedure's steps, corrections included, in the order recorded.
    pub steps: Vec<StepReport>,
    /// Products and lots used, as they stand after corrections.
    pub lots: Vec<crate::safety::procedure::LotUse>,
    /// Follow-up and adverse events added after the session, from the client's file
    /// (`punctum report` reads them from the record's data folder).
    pub amendments: Vec<crate::store::amendments::Amendment>,
    /// The practitioner's signature, checked against the file's bytes:
    /// `UNSIGNED`, `signed by ... SHA-256 verified`, or `SIGNATURE BROKEN: ...`
    /// (`punctum report` fills it in; `None`: not checked).
    pub signature: Option<String>,
    /// Signed and the hash matches.
    pub signature_valid: Option<bool>,
    /// Steps of the station's wall clock (`clock` lines): the axis did not follow
    /// them.
    pub clock_steps: Vec<ClockStepReport>,
    /// The summary line, as recorded.
    pub summary: Option<SummaryLine>,
    /// Where the summary line disagrees with the figures above.
    pub disagreements: Vec<String>,
    /// Lines the loader skipped or kept with a warning.
    pub warnings: Vec<WarningReport>,
}

/// A step of the station's wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockStepReport {
    /// When, session ms.
    pub at_ms: i64,
    /// How far, ms (+ forward).
    pub step_ms: i64,
    /// In words.
    pub text: String,
}

/// One alarm, from its raising to its clearing. Times are session ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmReport {
    /// Its id (`link_lost`, ...).
    pub alarm: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// Its text when raised (else its first recorded text).
    pub text: String,
    /// When it was raised; `None`: it was active when the record began.
    pub raised_ms: Option<i64>,
    /// When it was acknowledged, if it was.
    pub acknowledged_ms: Option<i64>,
    /// When it was silenced, if it was.
    pub silenced_ms: Option<i64>,
    /// When it cleared, if it did before the record ended.
    pub cleared_ms: Option<i64>,
}

/// Something that interrupted the treatment. Times are session ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interruption {
    /// When.
    pub at_ms: i64,
    /// `link_lost`, `fault`, `estop`, `reboot`, `needle_stopped` (the needle monitor's
    /// E-stop), `telemetry_gap`, or, where the telemetry counter started again,
    /// `pen_restart` (with the pen's `EV BOOT`) or `counter_reset` (without).
    pub kind: &'static str,
    /// The link's reason, the pen's event, or the gap's samples.
    pub detail: String,
    /// How long: to the link's reconnection, or the gap's length.
    pub duration_ms: Option<i64>,
}

/// A step of the procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// Its number in the session.
    pub number: u32,
    /// When it happened, session ms (before 0: before the session opened).
    pub at_ms: i64,
    /// When it was recorded, session ms.
    pub recorded_ms: i64,
    /// The record's step word.
    pub step: String,
    /// Who recorded it.
    pub by: String,
    /// The step in words.
    pub text: String,
    /// Later corrections that replace fields of it, by number.
    pub corrected_by: Vec<u32>,
    /// A later correction voided it.
    pub void: bool,
}

/// An operator's note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteReport {
    /// Session ms.
    pub at_ms: i64,
    /// Who wrote it.
    pub author: String,
    /// The note.
    pub text: String,
}

/// A loader warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarningReport {
    /// The line number, from 1.
    pub line: u64,
    /// What was wrong and what was done.
    pub message: String,
}

/// What the non-telemetry lines add up to besides the zones' figures, in file order.
#[derive(Default)]
struct LineFigures {
    alarms: Vec<AlarmReport>,
    interruptions: Vec<Interruption>,
    station_interruptions: u32,
    /// The station has met the pen since its last BOOT.
    pen_known: bool,
    cartridges: Vec<String>,
    notes: Vec<NoteReport>,
    clock_steps: Vec<ClockStepReport>,
    steps: Vec<(StepLine, i64)>,
}

impl LineFigures {
    fn on_line(&mut self, at_ms: i64, line: &Line) {
        match line {
            Line::Alarm(a) => on_alarm(&mut self.alarms, a, at_ms),
            Line::Link(l) if l.state == "lost" => {
                self.station_interruptions += 1;
                self.interruptions.push(Interruption {
                    at_ms,
                    kind: "link_lost",
                    detail: l.detail.clone().unwrap_or_default(),
                    duration_ms: None,
                });
            }
            Line::Link(l) if l.state == "connected" => {
                self.pen_known = true;
                // The link is back: that ends the last loss still open.
                if let Some(lost) = self
                    .interruptions
                    .iter_mut()
                    .rev()
                    .find(|i| i.kind == "link_lost")
                    .filter(|i| i.duration_ms.is_none())
                {
                    lost.duration_ms = Some(at_ms - lost.at_ms);
                }
            }
            Line::Event(e) => self.on_event(at_ms, &e.event),
            Line::Monitor(m) => {
                // The station counts the monitor's stop as an interruption of its own;
                // the pen's `EV ESTOP HOST` that follows is listed as well.
                self.station_interruptions += 1;
                self.interruptions.push(Interruption {
                    at_ms,
                    kind: "needle_stopped",
                    detail: format!("{}: {}", m.rule, m.message),
                    duration_ms: None,
                });
            }
            Line::Cartridge(c) if !self.cartridges.contains(&c.id) => {
                self.cartridges.push(c.id.clone());
            }
            Line::Note(n) => self.notes.push(NoteReport {
                at_ms,
                author: n.author.clone(),
                text: n.text.clone(),
            }),
            Line::Step(s) => self.steps.push(((**s).clone(), at_ms)),
            Line::Clock(c) => self.clock_steps.push(ClockStepReport {
                at_ms,
                step_ms: c.step_ms,
                text: c.describe(),
            }),
            _ => {}
        }
    }

    fn on_event(&mut self, at_ms: i64, event: &str) {
        let kind = match event.split_whitespace().next().unwrap_or_default() {
            "FAULT" => "fault",
            "ESTOP" => "estop",
            "BOOT" => "reboot",
            _ => return,
        };
        // As the station counts: a BOOT is an interruption only from a pen it was
        // already talking to; an E-stop is the operator's own.
        if kind == "fault" || (kind == "reboot" && self.pen_known) {
            self.station_interruptions += 1;
        }
        if kind == "reboot" {
            self.pen_known = false;
        }
        self.interruptions.push(Interruption {
            at_ms,
            kind,
            detail: event.to_owned(),
            duration_ms: None,
        });
    }
}

impl Report {
    /// The report of `rec`, figures recomputed from its lines.
    #[must_use]
    pub fn from_recording(rec: &Recording) -> Report {
        // A session opened with the pen connected has no `connected` line: the pen is
        // known from the header, and a reboot of it is an interruption, as the station
        // counts it.
        let mut line_figures = LineFigures {
            pen_known: rec.header.pen.is_some(),
            ..LineFigures::default()
        };
        let mut zone_figures = Figures::new();
        let tel = &rec.telemetry;
        rec.for_each_in_file_order(|item| match item {
            InFileOrder::Sample(i) => {
                zone_figures.on_sample(FigureSample::new(
                    tel.t_ms[i],
                    tel.state[i],
                    tel.depth_um[i],
                ));
            }
            InFileOrder::Line(timed) => {
                zone_figures.on_line(&timed.line);
                line_figures.on_line(timed.session_ms, &timed.line);
            }
        });
        let LineFigures {
            alarms,
            mut interruptions,
            station_interruptions,
            cartridges,
            notes,
            clock_steps,
            steps,
            ..
        } = line_figures;
        let (steps, lots) = steps_report(&steps);

        let (samples_lost, gaps) = telemetry_figures(rec);
        interruptions.extend(gaps);
        interruptions.sort_by_key(|i| i.at_ms);

        // Every zone selected is listed, blank if never used; what happened with no
        // zone selected comes last, if anything did.
        let refusals = zone_figures.refusals();
        let mut zone_list: Vec<ZoneReport> = zone_figures
            .zones()
            .iter()
            .filter(|z| z.zone.is_some() || !z.is_blank())
            .cloned()
            .collect();
        zone_list.sort_by_key(|z| z.zone.is_none());

        let header = &rec.header;
        let mut report = Report {
            path: rec.path.display().to_string(),
            session_id: header.session_id.clone(),
            client: header.client.clone(),
            practitioner: header.practitioner.clone(),
            opened_at: header.opened_at.clone(),
            station_version: header.station_version.clone(),
            format_version: header.version,
            pen: header
                .pen
                .as_ref()
                .map(|p| format!("{} serial {}, firmware {}", p.model, p.serial, p.fw)),
            simulated: header.simulated,
            alarm_sound: header.alarm_sound.clone(),
            status: match rec.status {
                RecordStatus::Complete => "complete",
                RecordStatus::Interrupted => "interrupted",
            },
            duration_ms: rec.duration_ms(),
            samples: rec.telemetry.len() as u64,
            samples_lost,
            needling_ms: zone_list.iter().map(|z| z.needling_ms).sum(),
            zones: zone_list,
            refusals,
            alarms,
            interruptions,
            station_interruptions,
            cartridges,
            notes,
            indication: header
                .screening
                .get("indication")
                .and_then(|i| i.as_str())
                .map(str::to_owned),
            steps,
            lots,
            amendments: Vec::new(),
            signature: None,
            signature_valid: None,
            clock_steps,
            summary: rec.summary.clone(),
            disagreements: Vec::new(),
            warnings: rec
                .warnings
                .iter()
                .map(|w| WarningReport {
                    line: w.line_no,
                    message: w.message.clone(),
                })
                .collect(),
        };
        report.disagreements = report.compare_with_summary();
        report
    }

    /// Adds the session's amendments (follow-up, adverse events) from its client's file.
    #[must_use]
    pub fn with_amendments(mut self, amendments: Vec<crate::store::amendments::Amendment>) -> Self {
        self.amendments = amendments;
        self
    }

    /// Zones treated: the needle started or ran in them (the station's rule).
    pub fn zones_treated(&self) -> impl Iterator<Item = &str> {
        self.zones
            .iter()
            .filter(|z| z.treated())
            .filter_map(|z| z.zone.as_deref())
    }

    /// Every figure on which the summary line disagrees with the lines.
    fn compare_with_summary(&self) -> Vec<String> {
        let Some(summary) = &self.summary else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut differs = |what: &str, in_summary: String, from_lines: String| {
            if in_summary != from_lines {
                out.push(format!(
                    "{what}: {in_summary} in the summary, {from_lines} from the lines"
                ));
            }
        };
        let blank = ZoneReport::default();
        for z in &summary.zones {
            let ours = self
                .zones
                .iter()
                .find(|r| r.zone.as_deref() == Some(z.zone.as_str()))
                .unwrap_or(&blank);
            let name = format!("zone {}", z.zone);
            differs(
                &format!("{name} passes"),
                z.passes.to_string(),
                ours.passes.to_string(),
            );
            differs(
                &format!("{name} needling ms"),
                z.needling_ms.to_string(),
                ours.needling_ms.to_string(),
            );
            differs(
                &format!("{name} max depth µm"),
                z.max_depth_um.to_string(),
                ours.max_depth_um.to_string(),
            );
            differs(
                &format!("{name} refusals"),
                z.refusals.to_string(),
                ours.refusals.to_string(),
            );
        }
        for ours in &self.zones {
            if let Some(zone) = &ours.zone
                && !ours.is_blank()
                && !summary.zones.iter().any(|z| &z.zone == zone)
            {
                differs(
                    &format!("zone {zone}"),
                    "absent".into(),
                    format!("{} passes, {} needling ms", ours.passes, ours.needling_ms),
                );
            }
        }
        differs(
            "needling ms",
            summary.needling_ms.to_string(),
            self.needling_ms.to_string(),
        );
        differs(
            "refusals",
            summary.refusals.to_string(),
            self.refusals.to_string(),
        );
        differs(
            "interruptions",
            summary.interruptions.to_string(),
            self.station_interruptions.to_string(),
        );
        let raised = self.alarms.iter().filter(|a| a.raised_ms.is_some()).count();
        differs(
            "alarms raised",
            summary.alarms_raised.to_string(),
            raised.to_string(),
        );
        differs(
            "samples",
            summary.samples.to_string(),
            self.samples.to_string(),
        );
        let theirs: BTreeSet<&String> = summary.cartridges.iter().collect();
        let ours: BTreeSet<&String> = self.cartridges.iter().collect();
        if theirs != ours {
            differs(
                "cartridges",
                join_or_none(summary.cartridges.iter()),
                join_or_none(self.cartridges.iter()),
            );
        }
        out
    }

    /// The report as text for a terminal: aligned tables.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Session {} ({})",
            crate::text::shown(&self.session_id),
            self.status
        );
        out.push_str(&self.text_about());
        out.push_str("\nZones\n");
        out.push_str(&self.text_zones());
        out.push_str("\nAlarms\n");
        out.push_str(&self.text_alarms());
        out.push_str("\nInterruptions\n");
        out.push_str(&self.text_interruptions());
        out.push_str(&self.text_procedure());
        if !self.notes.is_empty() {
            out.push_str("\nNotes\n");
            let rows: Vec<Vec<String>> = self
                .notes
                .iter()
                .map(|n| vec![clock(n.at_ms), n.author.clone(), n.text.clone()])
                .collect();
            out.push_str(&table(&["at", "by", "note"], &rows, &[0]));
        }
        if !self.clock_steps.is_empty() {
            out.push_str("\nClock steps (the session's time axis did not follow them)\n");
            let rows: Vec<Vec<String>> = self
                .clock_steps
                .iter()
                .map(|c| vec![clock(c.at_ms), c.text.clone()])
                .collect();
            out.push_str(&table(&["at", "what"], &rows, &[0]));
        }
        out.push('\n');
        out.push_str(&self.text_summary());
        out.push_str(&self.text_warnings());
        out
    }

    fn text_procedure(&self) -> String {
        let mut out = String::new();
        if !self.steps.is_empty() {
            out.push_str("\nProcedure\n");
            let rows: Vec<Vec<String>> = self
                .steps
                .iter()
                .map(|s| {
                    let mut state = String::new();
                    if s.void {
                        state.push_str("void");
                    } else if !s.corrected_by.is_empty() {
                        let by: Vec<String> = s.corrected_by.iter().map(u32::to_string).collect();
                        state = format!("corrected by {}", by.join(", "));
                    }
                    vec![
                        s.number.to_string(),
                        signed_clock(s.at_ms),
                        signed_clock(s.recorded_ms),
                        s.by.clone(),
                        s.text.clone(),
                        state,
                    ]
                })
                .collect();
            out.push_str(&table(
                &["step", "at", "recorded", "by", "what", "since"],
                &rows,
                &[0, 1, 2],
            ));
        }
        if !self.lots.is_empty() {
            out.push_str("\nProducts and lots\n");
            let rows: Vec<Vec<String>> = self
                .lots
                .iter()
                .map(|l| vec![l.kind.as_str().to_owned(), l.product.clone(), l.lot.clone()])
                .collect();
            out.push_str(&table(&["kind", "product", "lot"], &rows, &[]));
        }
        if !self.amendments.is_empty() {
            out.push_str("\nAmendments (added after the session; the record is unchanged)\n");
            let rows: Vec<Vec<String>> = self
                .amendments
                .iter()
                .map(|a| {
                    vec![
                        a.date.to_string(),
                        a.kind.clone(),
                        a.severity.clone(),
                        a.by.clone(),
                        a.note.clone(),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["date", "kind", "severity", "by", "note"],
                &rows,
                &[],
            ));
        }
        out
    }

    fn text_about(&self) -> String {
        let pen = self.pen.clone().unwrap_or_else(|| "not recorded".into());
        let pen = if self.simulated {
            format!("{pen} (SIMULATED: not a treatment)")
        } else {
            pen
        };
        let row = |name: &str, value: String| vec![name.to_owned(), value];
        let about = [
            row("file", self.path.clone()),
            row("client", self.client.clone()),
            row("practitioner", self.practitioner.clone()),
            row("opened", self.opened_at.clone()),
            row(
                "signature",
                self.signature
                    .clone()
                    .unwrap_or_else(|| "not checked".into()),
            ),
            row("pen", pen),
            row(
                "alarm sound",
                self.alarm_sound.clone().map_or_else(
                    || "not recorded (a station without sound wrote it)".to_owned(),
                    |s| format!("{s} when the session opened"),
                ),
            ),
            row(
                "station",
                format!(
                    "{}, format version {}",
                    self.station_version, self.format_version
                ),
            ),
            row("duration", clock(self.duration_ms)),
            row("needling", clock_u64(self.needling_ms)),
            row(
                "samples",
                format!("{} ({} lost)", self.samples, self.samples_lost),
            ),
            row("cartridges", join_or_none(self.cartridges.iter())),
        ];
        table(&[], &about, &[])
    }

    fn text_zones(&self) -> String {
        if self.zones.is_empty() {
            return "  none selected\n".into();
        }
        let rows: Vec<Vec<String>> = self
            .zones
            .iter()
            .map(|z| {
                vec![
                    z.zone.clone().unwrap_or_else(|| "(no zone)".into()),
                    z.passes.to_string(),
                    clock_u64(z.needling_ms),
                    z.max_depth_um.to_string(),
                    z.refusals.to_string(),
                ]
            })
            .collect();
        table(
            &["zone", "passes", "needling", "max depth µm", "refusals"],
            &rows,
            &[1, 2, 3, 4],
        )
    }

    fn text_alarms(&self) -> String {
        if self.alarms.is_empty() {
            return "  none\n".into();
        }
        let at = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), clock);
        let rows: Vec<Vec<String>> = self
            .alarms
            .iter()
            .map(|a| {
                vec![
                    a.raised_ms.map_or_else(|| "before".to_owned(), clock),
                    a.priority.clone(),
                    a.alarm.clone(),
                    at(a.acknowledged_ms),
                    at(a.silenced_ms),
                    at(a.cleared_ms),
                    a.text.clone(),
                ]
            })
            .collect();
        table(
            &[
                "raised",
                "priority",
                "alarm",
                "acknowledged",
                "silenced",
                "cleared",
                "text",
            ],
            &rows,
            &[0, 3, 4, 5],
        )
    }

    fn text_interruptions(&self) -> String {
        if self.interruptions.is_empty() {
            return "  none\n".into();
        }
        let rows: Vec<Vec<String>> = self
            .interruptions
            .iter()
            .map(|i| {
                vec![
                    clock(i.at_ms),
                    i.kind.to_owned(),
                    i.duration_ms.map_or_else(|| "-".to_owned(), clock),
                    i.detail.clone(),
                ]
            })
            .collect();
        table(&["at", "what", "for", "detail"], &rows, &[0, 2])
    }

    fn text_summary(&self) -> String {
        match &self.summary {
            None => "No summary line: the session was interrupted; the figures above come \
                     from the lines recorded before the cut.\n"
                .into(),
            Some(s) if self.disagreements.is_empty() => format!(
                "Summary line: agrees with the figures above. Next session from {}{}: {}\n",
                s.next_earliest,
                s.next_latest
                    .as_deref()
                    .map(|l| format!(" to {l}"))
                    .unwrap_or_default(),
                crate::text::shown(&s.next_advice)
            ),
            Some(_) => {
                let mut out = String::from(
                    "Summary line DISAGREES with the lines (lines lost or skipped?):\n",
                );
                for d in &self.disagreements {
                    let _ = writeln!(out, "  - {}", crate::text::shown(d));
                }
                out
            }
        }
    }

    fn text_warnings(&self) -> String {
        let mut out = String::new();
        if self.warnings.is_empty() {
            return out;
        }
        let _ = writeln!(out, "\nWarnings ({})", self.warnings.len());
        for w in self.warnings.iter().take(TEXT_WARNINGS) {
            let _ = writeln!(out, "  line {}: {}", w.line, crate::text::shown(&w.message));
        }
        if self.warnings.len() > TEXT_WARNINGS {
            let _ = writeln!(
                out,
                "  ... and {} more (all in --json)",
                self.warnings.len() - TEXT_WARNINGS
            );
        }
        out
    }
}

/// Applies one alarm transition to the list.
fn on_alarm(alarms: &mut Vec<AlarmReport>, a: &super::format::AlarmLine, at_ms: i64) {
    if a.action == "raised" {
        alarms.push(AlarmReport {
            alarm: a.alarm.clone(),
            priority: a.priority.clone(),
            text: a.text.clone(),
            raised_ms: Some(at_ms),
            acknowledged_ms: None,
            silenced_ms: None,
            cleared_ms: None,
        });
        return;
    }
    let open = alarms
        .iter()
        .rposition(|r| r.alarm == a.alarm && r.cleared_ms.is_none());
    let i = open.unwrap_or_else(|| {
        // Raised before the record began (a calibration due at start, say).
        alarms.push(AlarmReport {
            alarm: a.alarm.clone(),
            priority: a.priority.clone(),
            text: a.text.clone(),
            raised_ms: None,
            acknowledged_ms: None,
            silenced_ms: None,
            cleared_ms: None,
        });
        alarms.len() - 1
    });
    let entry = &mut alarms[i];
    let slot = match a.action.as_str() {
        "acknowledged" => &mut entry.acknowledged_ms,
        "silenced" => &mut entry.silenced_ms,
        "cleared" => &mut entry.cleared_ms,
        _ => return,
    };
    slot.get_or_insert(at_ms);
}

/// Lost samples and telemetry gaps, from the columns.
fn telemetry_figures(rec: &Recording) -> (u64, Vec<Interruption>) {
    use crate::protocol::counter::{CounterStep, counter_step};
    let tel = &rec.telemetry;
    let mut lost = 0_u64;
    let mut gaps = Vec::new();
    // When the pen said it booted, session ms: a reset counter is then a restart.
    let boots: Vec<i64> = rec
        .lines
        .iter()
        .filter(|l| matches!(&l.line, Line::Event(e) if e.event.starts_with("BOOT")))
        .map(|l| l.session_ms)
        .collect();
    for i in 1..tel.len() {
        let (prev_n, n) = (tel.n[i - 1], tel.n[i]);
        match counter_step(prev_n, tel.t_ms[i - 1], n, tel.t_ms[i]) {
            CounterStep::Next => {}
            CounterStep::Lost(missing) => lost += u64::from(missing),
            CounterStep::Reset => {
                let (from_ms, to_ms) = (
                    i64::from(tel.session_ms[i - 1]),
                    i64::from(tel.session_ms[i]),
                );
                let booted = boots.iter().any(|&b| (from_ms..=to_ms).contains(&b));
                let (kind, what) = if booted {
                    ("pen_restart", "the pen restarted (EV BOOT)")
                } else {
                    ("counter_reset", "the counter was reset")
                };
                gaps.push(Interruption {
                    at_ms: from_ms,
                    kind,
                    detail: format!(
                        "the pen's counter went from n={prev_n} to n={n} and its clock from \
                         {} to {} ms: {what}, not lost samples",
                        tel.t_ms[i - 1],
                        tel.t_ms[i]
                    ),
                    duration_ms: None,
                });
            }
        }
        let step_ms = tel.session_ms[i] - tel.session_ms[i - 1];
        if step_ms > MAX_SAMPLE_GAP_MS {
            gaps.push(Interruption {
                at_ms: i64::from(tel.session_ms[i - 1]),
                kind: "telemetry_gap",
                detail: format!("no telemetry between samples n={prev_n} and n={n}"),
                duration_ms: Some(i64::from(step_ms)),
            });
        }
    }
    (lost, gaps)
}

/// `m:ss.s`, or `h:mm:ss.s` from an hour; negative times keep their sign.
#[must_use]
pub fn clock(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let tenths = ms.unsigned_abs().saturating_add(50) / 100;
    let (h, rest) = (tenths / 36_000, tenths % 36_000);
    let (m, rest) = (rest / 600, rest % 600);
    let (s, t) = (rest / 10, rest % 10);
    if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}.{t}")
    } else {
        format!("{sign}{m}:{s:02}.{t}")
    }
}

/// [`clock`] for an unsigned count of ms.
fn clock_u64(ms: u64) -> String {
    clock(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn join_or_none<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let joined = items.map(String::as_str).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "none".into()
    } else {
        joined
    }
}

/// An aligned table, indented by two spaces; columns in `right` are right-aligned.
/// The steps and their lots, from the record's `step` lines and their session ms.
fn steps_report(
    lines: &[(StepLine, i64)],
) -> (Vec<StepReport>, Vec<crate::safety::procedure::LotUse>) {
    use crate::safety::procedure::Checklist;
    let mut checklist = Checklist::new();
    let mut reports = Vec::new();
    for (line, at_ms) in lines {
        let entry = line.to_entry(*at_ms);
        reports.push(StepReport {
            number: line.number,
            at_ms: entry.as_ref().map_or(*at_ms, |e| e.at_ms),
            recorded_ms: *at_ms,
            step: line.step.clone(),
            by: line.by.clone(),
            text: entry.as_ref().map_or_else(
                |_| line.describe(),
                crate::safety::procedure::StepEntry::describe,
            ),
            corrected_by: Vec::new(),
            void: false,
        });
        if let Ok(entry) = entry {
            checklist.push(entry);
        }
    }
    for entry in checklist.entries() {
        let Some(target) = entry.corrects else {
            continue;
        };
        if let Some(r) = reports.iter_mut().find(|r| r.number == target) {
            if entry.void {
                r.void = true;
            } else {
                r.corrected_by.push(entry.number);
            }
        }
    }
    (reports, checklist.lots())
}

/// `clock`, with a minus sign for a time before the session opened.
fn signed_clock(ms: i64) -> String {
    if ms < 0 {
        format!("-{}", clock(-ms))
    } else {
        clock(ms)
    }
}

/// An aligned table. Cells are shown with [`crate::text::shown`]: notes, ids, file
/// names and alarm texts come from outside.
fn table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| crate::text::shown(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([headers.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0; columns];
    let all = std::iter::once(headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
        .filter(|h| !h.is_empty())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>();
    for row in &all {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &all {
        out.push(' ');
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let last = i + 1 == row.len();
            out.push(' ');
            if right.contains(&i) {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if !last {
                    out.push_str(&pad);
                }
            }
            if !last {
                out.push(' ');
            }
        }
        out.push('\n');
    }
    out
}

/// Why the telemetry could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output is the record itself: writing would destroy it.
    #[error("refusing to write the CSV over the record itself: {}", path.display())]
    SameFile {
        /// The output asked for.
        path: PathBuf,
    },
    /// The output could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The output.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing failed part way (disk full, ...); the file is incomplete.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
}

/// The CSV's header row.
pub const CSV_HEADER: [&str; 9] = [
    "session_s",
    "utc_ms",
    "n",
    "t_ms",
    "state",
    "rpm",
    "depth_um",
    "current_ma",
    "temp_dc",
];

/// Writes the telemetry of `rec` to `out` as CSV, one row per sample, streaming;
/// returns the rows written. `session_s` is the session axis in seconds (3
/// decimals); `utc_ms` is the same instant in UTC ms (the header's time plus the
/// session axis: the station's raw reception stamps are not kept in memory, see
/// [`super::load`] for how samples are placed).
pub fn write_csv(rec: &Recording, out: &Path) -> Result<u64, ExportError> {
    if is_same_file(&rec.path, out) {
        return Err(ExportError::SameFile {
            path: out.to_path_buf(),
        });
    }
    let file = File::create(out).map_err(|source| ExportError::Create {
        path: out.to_path_buf(),
        source,
    })?;
    let write_error = |source: csv::Error| ExportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(256 << 10, file));
    writer.write_record(CSV_HEADER).map_err(write_error)?;
    let tel = &rec.telemetry;
    let utc0_ms = rec.header.utc_ms;
    let mut field = String::with_capacity(32);
    let mut put = |writer: &mut csv::Writer<_>, args: std::fmt::Arguments| {
        field.clear();
        let _ = field.write_fmt(args);
        writer.write_field(field.as_bytes())
    };
    for i in 0..tel.len() {
        let ms = tel.session_ms[i];
        put(&mut writer, format_args!("{}.{:03}", ms / 1000, ms % 1000)).map_err(write_error)?;
        put(&mut writer, format_args!("{}", utc0_ms + i64::from(ms))).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.n[i])).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.t_ms[i])).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.state[i].as_str())).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.rpm[i])).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.depth_um[i])).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.current_ma[i])).map_err(write_error)?;
        put(&mut writer, format_args!("{}", tel.temp_dc[i])).map_err(write_error)?;
        writer.write_record(None::<&[u8]>).map_err(write_error)?;
    }
    // Flushes both buffers: an error here (disk full) must not be lost in a drop.
    writer.flush().map_err(|e| write_error(e.into()))?;
    Ok(tel.len() as u64)
}

/// Whether `out` is the file at `record` (the same path, a link, or another name).
fn is_same_file(record: &Path, out: &Path) -> bool {
    let (Ok(a), Ok(b)) = (std::fs::metadata(record), std::fs::metadata(out)) else {
        // An output that does not exist yet cannot be the record.
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        std::fs::canonicalize(record).ok() == std::fs::canonicalize(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::ZoneSummary;
    use crate::record::load::load;
    use crate::record::testkit as kit;

    /// A session in two zones with a refusal, a link loss with its alarm, a gap with
    /// lost samples, a fault, a cartridge and a note; `summary` adds a summary line
    /// that agrees with it.
    fn session(summary: bool) -> Vec<Line> {
        use crate::record::format::StateWord::{Fault, Idle, Running};
        let mut l = vec![kit::header("C042"), kit::zone(0, "cheeks")];
        l.extend(kit::tel_run(0, 1000, 10, 0, Idle, 0));
        l.push(kit::command(995, 5, "RUN"));
        l.push(kit::answer(996, 5, "RUN", "ACK"));
        l.push(kit::cartridge(997, "0123456789ABCDEF"));
        l.extend(kit::tel_run(1000, 1500, 10, 100, Running, 700));
        l.push(kit::refusal(1495, "DEPTH 1200", Some("cheeks")));
        l.push(kit::refusal(1496, "RUN", None));
        l.extend(kit::tel_run(1500, 3000, 10, 150, Running, 800));
        l.extend(kit::tel_run(3000, 4000, 10, 300, Idle, 0));
        l.push(kit::alarm(4000, "link_lost", "raised"));
        l.push(kit::link(4000, "lost", Some("silence")));
        l.push(kit::alarm(5000, "link_lost", "acknowledged"));
        l.push(kit::link(5500, "connected", None));
        l.push(kit::alarm(5500, "link_lost", "cleared"));
        l.push(kit::zone(6000, "forehead"));
        l.extend(kit::tel_run(6000, 6500, 10, 500, Idle, 0));
        l.push(kit::answer(6500, 9, "RUN", "ACK"));
        l.extend(kit::tel_run(6500, 7000, 10, 550, Running, 500));
        l.push(kit::event(7000, "FAULT STALL"));
        l.extend(kit::tel_run(7000, 7100, 10, 600, Fault, 500));
        l.push(Line::Note(crate::record::format::NoteLine {
            utc_ms: kit::T0_MS + 7200,
            author: "P7".into(),
            text: "client felt fine".into(),
        }));
        if summary {
            let mut s = kit::summary(
                7300,
                vec![
                    ZoneSummary {
                        zone: "cheeks".into(),
                        passes: 1,
                        needling_ms: 1990,
                        max_depth_um: 800,
                        refusals: 1,
                    },
                    ZoneSummary {
                        zone: "forehead".into(),
                        passes: 1,
                        needling_ms: 490,
                        max_depth_um: 500,
                        refusals: 0,
                    },
                ],
                510,
                &["0123456789ABCDEF"],
            );
            if let Line::Summary(s) = &mut s {
                s.refusals = 2;
                s.interruptions = 2;
                s.alarms_raised = 1;
            }
            l.push(s);
        }
        l
    }

    fn report_of(lines: &[Line]) -> (tempfile::TempDir, Recording, Report) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = kit::write(dir.path(), "s.jsonl", &kit::jsonl(lines));
        let rec = load(&path).expect("loads");
        let report = Report::from_recording(&rec);
        (dir, rec, report)
    }

    #[test]
    fn figures_should_be_recomputed_per_zone_and_agree_with_a_true_summary() {
        let (_dir, _rec, r) = report_of(&session(true));
        assert_eq!(r.status, "complete");
        assert_eq!(r.samples, 510);
        assert_eq!(r.samples_lost, 100);
        assert_eq!(
            r.zones,
            vec![
                ZoneReport {
                    zone: Some("cheeks".into()),
                    passes: 1,
                    needling_ms: 1990,
                    max_depth_um: 800,
                    refusals: 1
                },
                ZoneReport {
                    zone: Some("forehead".into()),
                    passes: 1,
                    needling_ms: 490,
                    max_depth_um: 500,
                    refusals: 0
                },
                ZoneReport {
                    zone: None,
                    refusals: 1,
                    ..ZoneReport::default()
                },
            ]
        );
        assert_eq!(r.needling_ms, 2480);
        assert_eq!(r.refusals, 2);
        assert_eq!(
            r.zones_treated().collect::<Vec<_>>(),
            vec!["cheeks", "forehead"]
        );
        assert_eq!(
            r.alarms,
            vec![AlarmReport {
                alarm: "link_lost".into(),
                priority: "high".into(),
                text: "link_lost text".into(),
                raised_ms: Some(4000),
                acknowledged_ms: Some(5000),
                silenced_ms: None,
                cleared_ms: Some(5500),
            }]
        );
        let kinds: Vec<(i64, &str, Option<i64>)> = r
            .interruptions
            .iter()
            .map(|i| (i.at_ms, i.kind, i.duration_ms))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (3990, "telemetry_gap", Some(2010)),
                (4000, "link_lost", Some(1500)),
                (7000, "fault", None),
            ]
        );
        assert_eq!(r.station_interruptions, 2);
        assert_eq!(r.cartridges, vec!["0123456789ABCDEF"]);
        assert_eq!(r.notes.len(), 1);
        assert!(r.disagreements.is_empty(), "{:?}", r.disagreements);
        assert!(
            r.to_text().contains("Summary line: agrees"),
            "{}",
            r.to_text()
        );
    }

    #[test]
    fn the_run_down_after_a_zone_change_should_stay_with_the_pass_in_the_old_zone() {
        use crate::record::format::StateWord::{Idle, Running};
        let mut l = vec![kit::header("C042"), kit::zone(0, "cheeks")];
        l.push(kit::answer(5, 1, "RUN", "ACK"));
        l.extend(kit::tel_run(10, 1000, 10, 0, Running, 1000));
        // Halt first, then the zone: the motor is still running down at 1000 µm.
        l.push(kit::answer(1000, 2, "HALT", "ACK"));
        l.push(kit::zone(1001, "periorbital"));
        l.extend(kit::tel_run(1001, 1031, 10, 99, Running, 1000));
        l.extend(kit::tel_run(1031, 1100, 10, 102, Idle, 1000));
        let (_dir, _rec, r) = report_of(&l);
        assert_eq!(r.zones.len(), 2);
        assert_eq!(r.zones[0].zone.as_deref(), Some("cheeks"));
        assert_eq!(r.zones[0].needling_ms, 1001 + 10 * 2 - 10);
        assert_eq!(r.zones[1].zone.as_deref(), Some("periorbital"));
        assert!(r.zones[1].is_blank(), "{:?}", r.zones[1]);
        assert_eq!(r.zones_treated().collect::<Vec<_>>(), vec!["cheeks"]);
    }

    #[test]
    fn a_summary_that_disagrees_with_the_lines_should_be_flagged_figure_by_figure() {
        let mut lines = session(true);
        // Lose a pass's worth of lines: the RUN answer in the forehead.
        let i = lines
            .iter()
            .position(|l| matches!(l, Line::Answer(a) if a.utc_ms == kit::T0_MS + 6500))
            .expect("the forehead's RUN answer");
        lines.remove(i);
        let (_dir, _rec, r) = report_of(&lines);
        assert_eq!(
            r.disagreements,
            vec!["zone forehead passes: 1 in the summary, 0 from the lines"]
        );
        let text = r.to_text();
        assert!(text.contains("Summary line DISAGREES"), "{text}");
        assert!(text.contains("  - zone forehead passes: 1 in the summary, 0 from the lines"));
    }

    #[test]
    fn an_interrupted_record_should_still_get_its_figures() {
        let mut lines = session(false);
        lines.truncate(lines.len() - 62);
        let (_dir, rec, r) = report_of(&lines);
        assert_eq!(rec.status, RecordStatus::Interrupted);
        assert_eq!(r.status, "interrupted");
        assert!(r.summary.is_none());
        assert!(r.disagreements.is_empty());
        assert_eq!(r.zones[0].needling_ms, 1990);
        assert_eq!(r.zones[1].zone.as_deref(), Some("forehead"));
        assert_eq!(
            r.zones[1].needling_ms, 0,
            "the cut came before its pass ran"
        );
        assert_eq!(r.zones[1].passes, 1);
        assert!(
            r.to_text()
                .contains("No summary line: the session was interrupted")
        );
    }

    #[test]
    fn the_text_should_align_its_tables() {
        let (_dir, _rec, r) = report_of(&session(true));
        let text = r.to_text();
        let zone_rows: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "Zones")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(zone_rows.len(), 4, "{text}");
        assert!(zone_rows[0].starts_with("  zone"), "{text}");
        assert!(zone_rows[1].starts_with("  cheeks "), "{text}");
        assert!(zone_rows[3].starts_with("  (no zone)"), "{text}");
        // Right-aligned numbers end where their header ends.
        let width = |s: &str| s.chars().count();
        assert!(
            zone_rows.iter().all(|r| width(r) == width(zone_rows[0])),
            "{text}"
        );
        assert!(text.contains("0:02.0"), "cheeks' needling 1990 ms:\n{text}");
        assert!(text.contains("link_lost"), "{text}");
        assert!(text.contains("client felt fine"), "{text}");
    }

    #[test]
    fn the_json_should_carry_the_same_figures() {
        let (_dir, _rec, r) = report_of(&session(true));
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(json["status"], "complete");
        assert_eq!(json["zones"][0]["zone"], "cheeks");
        assert_eq!(json["zones"][0]["needling_ms"], 1990);
        assert_eq!(json["zones"][2]["zone"], serde_json::Value::Null);
        assert_eq!(json["alarms"][0]["cleared_ms"], 5500);
        assert_eq!(json["interruptions"][1]["kind"], "link_lost");
        assert_eq!(json["summary"]["samples"], 510);
        assert_eq!(json["warnings"], serde_json::json!([]));
    }

    #[test]
    fn an_alarm_acted_on_but_raised_before_the_record_should_say_so() {
        let lines = vec![
            kit::header("C042"),
            kit::alarm(10, "calibration_due", "acknowledged"),
            kit::alarm(20, "calibration_due", "raised"),
            kit::alarm(30, "calibration_due", "silenced"),
        ];
        let (_dir, _rec, r) = report_of(&lines);
        assert_eq!(r.alarms.len(), 2);
        assert_eq!(r.alarms[0].raised_ms, None);
        assert_eq!(r.alarms[0].acknowledged_ms, Some(10));
        assert_eq!(r.alarms[1].raised_ms, Some(20));
        assert_eq!(r.alarms[1].silenced_ms, Some(30));
        assert!(r.to_text().contains("before"), "{}", r.to_text());
    }

    #[test]
    fn clock_should_round_to_tenths_and_show_hours_past_one() {
        assert_eq!(clock(0), "0:00.0");
        assert_eq!(clock(1990), "0:02.0");
        assert_eq!(clock(61_234), "1:01.2");
        assert_eq!(clock(3_723_400), "1:02:03.4");
        assert_eq!(clock(-1500), "-0:01.5");
    }

    #[test]
    fn csv_should_have_its_header_and_one_row_per_sample() {
        let (dir, rec, _r) = report_of(&session(true));
        let out = dir.path().join("tel.csv");
        let rows = write_csv(&rec, &out).expect("writes");
        assert_eq!(rows, 510);
        let mut reader = csv::Reader::from_path(&out).expect("reads back");
        let headers: Vec<String> = reader
            .headers()
            .expect("a header row")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(headers, CSV_HEADER);
        let records: Vec<csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .expect("rows parse");
        assert_eq!(records.len(), 510);
        let row = |i: usize| records[i].iter().collect::<Vec<_>>();
        assert_eq!(
            row(150),
            vec![
                "1.500",
                "1764000001500",
                "150",
                "6500",
                "RUNNING",
                "6000",
                "800",
                "300",
                "312"
            ]
        );
        assert_eq!(row(0)[..5], ["0.000", "1764000000000", "0", "5000", "IDLE"]);
    }

    #[test]
    fn csv_should_refuse_to_overwrite_the_record_by_any_name() {
        let (dir, rec, _r) = report_of(&session(true));
        let before = std::fs::read(&rec.path).expect("readable");
        let err = write_csv(&rec, &rec.path).expect_err("refused");
        assert!(matches!(err, ExportError::SameFile { .. }), "{err}");
        assert!(err.to_string().contains("over the record itself"), "{err}");
        let other_name = dir.path().join("sub/../s.jsonl");
        std::fs::create_dir(dir.path().join("sub")).expect("sub folder");
        assert!(matches!(
            write_csv(&rec, &other_name),
            Err(ExportError::SameFile { .. })
        ));
        let hard_link = dir.path().join("link.csv");
        std::fs::hard_link(&rec.path, &hard_link).expect("hard link");
        assert!(matches!(
            write_csv(&rec, &hard_link),
            Err(ExportError::SameFile { .. })
        ));
        assert_eq!(std::fs::read(&rec.path).expect("readable"), before);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_csv_write_failure_should_name_the_file() {
        let (_dir, rec, _r) = report_of(&session(true));
        let err = write_csv(&rec, Path::new("/dev/full")).expect_err("disk full");
        assert!(matches!(err, ExportError::Write { .. }), "{err}");
        assert!(
            err.to_string().starts_with("cannot write /dev/full: "),
            "{err}"
        );
        let err = write_csv(&rec, Path::new("/nonexistent-dir/t.csv")).expect_err("no folder");
        assert!(
            err.to_string()
                .starts_with("cannot create /nonexistent-dir/t.csv: "),
            "{err}"
        );
    }
}
