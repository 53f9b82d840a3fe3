//! The client's file and the lot search: what the station's records say of a client
//! (every session this station can read, per-zone depth history, the course of
//! treatment, follow-up and adverse events), and of a product lot (every session and
//! client that used it).
//!
//! Built from [`crate::record::Library`] (each record's header and summary; only an
//! interrupted record is read whole) and the data folder's `amendments.jsonl`. Reads
//! only: a record is never changed, and an amendment is a line of its own.

pub mod cmd;

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::record::library::{Library, SessionEntry};
use crate::record::recording::RecordStatus;
use crate::safety::course::{self, CourseStatus, PastSession};
use crate::safety::procedure::LotUse;
use crate::safety::screening::Indication;
use crate::store::amendments::Amendment;
use crate::store::{DataDir, amendments};

/// The folder of session records in the data folder.
pub use crate::record::writer::SESSIONS_DIR;

/// One session in a client's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSession {
    /// The session's id.
    pub session_id: String,
    /// The clinic's date.
    pub date: Option<Date>,
    /// The indication.
    pub indication: Option<String>,
    /// The practitioner.
    pub practitioner: String,
    /// Per zone selected: id, passes, needling ms, deepest µm.
    pub zones: Vec<ZoneLine>,
    /// Products and lots.
    pub lots: Vec<LotUse>,
    /// The operators' notes.
    pub notes: Vec<String>,
    /// Notes only in the record (too long for its summary).
    pub notes_omitted: u32,
    /// The session ended without its summary (a crash, a power cut, a pulled cable
    /// that ended the program).
    pub interrupted: bool,
    /// Recorded on the built-in simulated pen.
    pub simulated: bool,
    /// The session is open now at this station (its record has no summary yet).
    pub open_now: bool,
    /// All needling time, ms.
    pub needling_ms: u64,
    /// Follow-up and adverse events added since, in the order added.
    pub amendments: Vec<Amendment>,
    /// The record's file.
    pub path: String,
}

/// A zone's figures in one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneLine {
    /// The zone's id.
    pub zone: String,
    /// Needle starts.
    pub passes: u32,
    /// Needling time, ms.
    pub needling_ms: u64,
    /// Deepest measured depth while running, µm.
    pub max_depth_um: i32,
}

/// One point of a zone's depth history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepthPoint {
    /// The session's date.
    pub date: Option<Date>,
    /// The session.
    pub session_id: String,
    /// Deepest measured depth while running, µm.
    pub max_depth_um: i32,
    /// Needling time, ms.
    pub needling_ms: u64,
}

/// A client's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientFile {
    /// The client's pseudonym.
    pub client: String,
    /// Sessions, newest first.
    pub sessions: Vec<ClientSession>,
    /// Per zone treated, its sessions oldest first.
    pub zone_history: BTreeMap<String, Vec<DepthPoint>>,
    /// Where the course stands today.
    pub course: Option<CourseStatus>,
    /// Records and amendment lines that could not be read, each naming its file.
    pub warnings: Vec<String>,
}

impl ClientFile {
    /// The file of `client` from the data folder's records and amendments, on `today`.
    #[must_use]
    pub fn open(data: &DataDir, client: &str, today: Date) -> ClientFile {
        Self::open_with(&mut Library::default(), data, client, today)
    }

    /// [`Self::open`] with a library kept from an earlier read: only records that are
    /// new or changed since are read (the window keeps one for its screens).
    #[must_use]
    pub fn open_with(
        library: &mut Library,
        data: &DataDir,
        client: &str,
        today: Date,
    ) -> ClientFile {
        library.refresh(&data.path(SESSIONS_DIR));
        let library = &*library;
        let mut warnings = library.warnings.clone();
        let amendments = match amendments::read_all(data) {
            Ok(loaded) => {
                warnings.extend(loaded.warnings(&data.path(amendments::AMENDMENTS_FILE)));
                loaded.entries
            }
            Err(e) => {
                warnings.push(e.to_string());
                Vec::new()
            }
        };
        let mut file = Self::build(library, &amendments, client, today);
        file.warnings = warnings;
        file
    }

    /// The file of `client` from a scanned library and the amendments.
    #[must_use]
    pub fn build(
        library: &Library,
        amendments: &[Amendment],
        client: &str,
        today: Date,
    ) -> ClientFile {
        let sessions: Vec<ClientSession> = library
            .of_client(client)
            .map(|e| session_of(e, amendments))
            .collect();
        let mut zone_history: BTreeMap<String, Vec<DepthPoint>> = BTreeMap::new();
        for s in sessions.iter().rev() {
            for z in s.zones.iter().filter(|z| z.passes > 0 || z.needling_ms > 0) {
                zone_history
                    .entry(z.zone.clone())
                    .or_default()
                    .push(DepthPoint {
                        date: s.date,
                        session_id: s.session_id.clone(),
                        max_depth_um: z.max_depth_um,
                        needling_ms: z.needling_ms,
                    });
            }
        }
        let past = past_sessions(library.of_client(client));
        ClientFile {
            client: client.to_owned(),
            sessions,
            zone_history,
            course: course::current(&past, today),
            warnings: library.warnings.clone(),
        }
    }

    /// Marks the session open now at this station: its record has no summary yet
    /// because it is still being written, not because it was interrupted.
    pub fn mark_open(&mut self, session_id: &str) {
        for s in self
            .sessions
            .iter_mut()
            .filter(|s| s.session_id == session_id)
        {
            s.open_now = true;
            s.interrupted = false;
        }
    }

    /// The file as text for a terminal.
    #[must_use]
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let shown = crate::text::shown;
        let mut out = format!("Client {}\n", shown(&self.client));
        match &self.course {
            Some(c) => {
                let _ = writeln!(out, "Course: {}", c.text);
            }
            None => out.push_str("Course: no treated session\n"),
        }
        let _ = writeln!(out, "\nSessions ({})", self.sessions.len());
        for s in &self.sessions {
            let _ = writeln!(
                out,
                "- {} {} {}{}{} ({}, needling {})",
                s.date
                    .map_or_else(|| "date unknown".to_owned(), |d| d.to_string()),
                shown(s.indication.as_deref().unwrap_or("indication unknown")),
                shown(&s.session_id),
                if s.interrupted {
                    " INTERRUPTED"
                } else if s.open_now {
                    " OPEN NOW"
                } else {
                    ""
                },
                if s.simulated { " SIMULATED" } else { "" },
                shown(&s.practitioner),
                minutes(s.needling_ms)
            );
            for z in &s.zones {
                let _ = writeln!(
                    out,
                    "    zone {}: {} passes, {}, deepest {}",
                    z.zone,
                    z.passes,
                    minutes(z.needling_ms),
                    crate::safety::interlock::mm(i64::from(z.max_depth_um))
                );
            }
            for l in &s.lots {
                let _ = writeln!(
                    out,
                    "    {} {} lot {}",
                    l.kind.as_str(),
                    shown(&l.product),
                    shown(&l.lot)
                );
            }
            for n in &s.notes {
                let _ = writeln!(out, "    note: {}", shown(n));
            }
            if s.notes_omitted > 0 {
                let _ = writeln!(
                    out,
                    "    {} more notes in the record (too long for its summary)",
                    s.notes_omitted
                );
            }
            for a in &s.amendments {
                let _ = writeln!(
                    out,
                    "    amendment {} {} ({}) by {}: {}",
                    a.date,
                    a.kind,
                    a.severity,
                    shown(&a.by),
                    shown(&a.note)
                );
            }
        }
        if !self.zone_history.is_empty() {
            out.push_str("\nDepth per zone (oldest first)\n");
            for (zone, points) in &self.zone_history {
                let _ = writeln!(out, "- {zone}: {}", depth_history(points, ", "));
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {}", shown(w));
        }
        out
    }
}

/// A zone's depth history in words: `2026-01-05 0.80 mm, 2026-02-05 0.85 mm`, joined
/// by `separator`.
#[must_use]
pub fn depth_history(points: &[DepthPoint], separator: &str) -> String {
    points
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.date.map_or_else(|| "?".to_owned(), |d| d.to_string()),
                crate::safety::interlock::mm(i64::from(p.max_depth_um))
            )
        })
        .collect::<Vec<_>>()
        .join(separator)
}

fn minutes(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{}:{:02} min", secs / 60, secs % 60)
}

fn session_of(e: &SessionEntry, amendments: &[Amendment]) -> ClientSession {
    ClientSession {
        session_id: e.session_id.clone(),
        date: e.opened_date(),
        indication: e.indication.clone(),
        practitioner: e.practitioner.clone(),
        zones: e
            .zones
            .iter()
            .map(|z| ZoneLine {
                zone: z.zone.clone(),
                passes: z.passes,
                needling_ms: z.needling_ms,
                max_depth_um: z.max_depth_um,
            })
            .collect(),
        lots: e.lots.clone(),
        notes: e.notes.clone(),
        notes_omitted: e.notes_omitted,
        interrupted: e.status == RecordStatus::Interrupted,
        simulated: e.simulated,
        open_now: false,
        needling_ms: e.zones.iter().map(|z| z.needling_ms).sum(),
        amendments: amendments
            .iter()
            .filter(|a| a.session_id == e.session_id && a.client == e.client)
            .cloned()
            .collect(),
        path: e.path.display().to_string(),
    }
}

/// The course's view of a client's sessions: date, indication, whether the needle
/// ran on a real pen. A session whose indication this version does not know is left
/// out.
pub fn past_sessions<'a>(entries: impl Iterator<Item = &'a SessionEntry>) -> Vec<PastSession> {
    entries
        .filter_map(|e| {
            Some(PastSession {
                date: e.opened_date()?,
                indication: e.indication.as_deref()?.parse::<Indication>().ok()?,
                // A session on the built-in simulated pen is not a treatment.
                treated: !e.zones_treated.is_empty() && !e.simulated,
            })
        })
        .collect()
}

/// One use of a lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LotHit {
    /// The lot as recorded.
    pub lot: String,
    /// What it was of: `numbing_cream`, `serum`, `cartridge`.
    pub kind: String,
    /// The product's name, or the cartridge's id.
    pub product: String,
    /// The session.
    pub session_id: String,
    /// Its date.
    pub date: Option<Date>,
    /// The client's pseudonym.
    pub client: String,
    /// The practitioner.
    pub practitioner: String,
    /// The record's file.
    pub path: String,
}

/// Every session and client that used lot `lot` (exact, ignoring case), newest first.
#[must_use]
pub fn lot_query(library: &Library, lot: &str) -> Vec<LotHit> {
    library
        .lot_uses(lot)
        .into_iter()
        .map(|(e, l)| LotHit {
            lot: l.lot.clone(),
            kind: l.kind.as_str().to_owned(),
            product: l.product.clone(),
            session_id: e.session_id.clone(),
            date: e.opened_date(),
            client: e.client.clone(),
            practitioner: e.practitioner.clone(),
            path: e.path.display().to_string(),
        })
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
