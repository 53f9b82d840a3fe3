//! The session library: an index of the records in the data folder's `sessions/`,
//! for the library screen (date, client, zones, duration; search by client) and for
//! the rules that look back at past sessions (the same zone not within four weeks,
//! a cartridge never used in two sessions).
//!
//! Scanning is cheap: a record's header is its first line and its summary its last,
//! so [`SessionEntry::read`] reads the first line and the last
//! [`TAIL_BYTES`] of the file. Only a record without a summary (a session that was
//! interrupted) is read whole, streaming, and its figures recomputed from its lines
//! the way `punctum report` does. Files are opened read-only.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::format::{Header, Line, SummaryLine, ZoneSummary};
use super::lines::LineReader;
use super::load::{LoadError, load, read_header};
use super::recording::RecordStatus;
use super::report::Report;

/// How much of a record's end is read to find its summary.
pub const TAIL_BYTES: u64 = 64 << 10;

/// Read size for a header: a header is a few KiB.
const HEADER_CHUNK_BYTES: usize = 16 << 10;

/// One past session, as the library lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The record's file.
    pub path: PathBuf,
    /// The session's id.
    pub session_id: String,
    /// The client's pseudonym.
    pub client: String,
    /// The practitioner's id.
    pub practitioner: String,
    /// When it opened, UTC ms since the Unix epoch.
    pub opened_utc_ms: i64,
    /// When it opened, RFC 3339 with the station's offset then.
    pub opened_at: String,
    /// Its length, ms.
    pub duration_ms: i64,
    /// Zones where the needle started or ran, in the record's order.
    pub zones_treated: Vec<String>,
    /// Cartridges that ran, ids.
    pub cartridges: Vec<String>,
    /// Whether it ended with its summary.
    pub status: RecordStatus,
    /// Recorded on the built-in simulated pen.
    pub simulated: bool,
    /// The indication (the header's screening), when it has one.
    pub indication: Option<String>,
    /// Per zone selected: passes, needling time, deepest depth, refusals.
    pub zones: Vec<ZoneSummary>,
    /// Products and lots used, as they stand after corrections (format 3).
    pub lots: Vec<crate::safety::procedure::LotUse>,
    /// The operators' notes.
    pub notes: Vec<String>,
    /// Notes the summary did not repeat for their size (they are in the record).
    pub notes_omitted: u32,
    /// The file's size when it was read: [`Library::refresh`] reads it again only
    /// when this changed.
    pub bytes: u64,
}

/// Why one record could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// Its header (or, for an interrupted record, its body) could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The end of the file could not be read.
    #[error("cannot read the end of {}: {source}", path.display())]
    Tail {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl SessionEntry {
    /// Reads the library's entry for the record at `path`: its header, and its
    /// summary from the file's end, or the whole record when it has no summary.
    /// The second value lists problems found in a record read whole (its loader
    /// warnings), for the library's warnings.
    pub fn read(path: &Path) -> Result<(SessionEntry, Vec<String>), LibraryError> {
        let file = crate::files::open_regular(path).map_err(|source| LoadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // The size before reading: a record that grows meanwhile is read again at the
        // next refresh.
        let bytes = file.metadata().map_or(0, |m| m.len());
        let (header, header_end) = {
            let mut reader = LineReader::with_chunk(&file, HEADER_CHUNK_BYTES);
            let header = read_header(path, &mut reader)?;
            (header, reader.offset())
        };
        if let Some(summary) =
            summary_in_tail(&file, header_end).map_err(|source| LibraryError::Tail {
                path: path.to_path_buf(),
                source,
            })?
        {
            let entry = SessionEntry {
                bytes,
                ..Self::from_summary(path, header, &summary)
            };
            return Ok((entry, Vec::new()));
        }
        drop(file);
        // No summary at the end: an interrupted session (or one with lines after
        // its summary). Read it whole and count what the lines show.
        let rec = load(path)?;
        let report = Report::from_recording(&rec);
        let mut problems = Vec::new();
        if let Some(first) = rec.warnings.first() {
            let count = rec.warnings.len();
            problems.push(format!(
                "{}: {count} warning{} (first: {first})",
                path.display(),
                if count == 1 { "" } else { "s" }
            ));
        }
        let entry = SessionEntry {
            path: path.to_path_buf(),
            duration_ms: rec.duration_ms(),
            zones_treated: report.zones_treated().map(str::to_owned).collect(),
            zones: report
                .zones
                .iter()
                .filter_map(|z| {
                    Some(ZoneSummary {
                        zone: z.zone.clone()?,
                        passes: z.passes,
                        needling_ms: z.needling_ms,
                        max_depth_um: z.max_depth_um,
                        refusals: z.refusals,
                    })
                })
                .collect(),
            lots: report.lots,
            notes: report.notes.into_iter().map(|n| n.text).collect(),
            cartridges: report.cartridges,
            status: rec.status,
            bytes,
            ..Self::from_header(path, rec.header)
        };
        Ok((entry, problems))
    }

    fn from_header(path: &Path, header: Header) -> SessionEntry {
        SessionEntry {
            path: path.to_path_buf(),
            session_id: header.session_id,
            client: header.client,
            practitioner: header.practitioner,
            opened_utc_ms: header.utc_ms,
            opened_at: header.opened_at,
            duration_ms: 0,
            zones_treated: Vec::new(),
            cartridges: Vec::new(),
            status: RecordStatus::Interrupted,
            simulated: header.simulated,
            indication: header
                .screening
                .get("indication")
                .and_then(|i| i.as_str())
                .map(str::to_owned),
            zones: Vec::new(),
            lots: Vec::new(),
            notes: Vec::new(),
            notes_omitted: 0,
            bytes: 0,
        }
    }

    fn from_summary(path: &Path, header: Header, summary: &SummaryLine) -> SessionEntry {
        SessionEntry {
            duration_ms: summary.duration_ms,
            // The station's rule: a zone counts as treated once the needle started.
            zones_treated: summary
                .zones
                .iter()
                .filter(|z| z.passes > 0 || z.needling_ms > 0)
                .map(|z| z.zone.clone())
                .collect(),
            cartridges: summary.cartridges.clone(),
            status: RecordStatus::Complete,
            zones: summary.zones.clone(),
            lots: summary.lots.clone(),
            notes: summary.notes.clone(),
            notes_omitted: summary.notes_omitted,
            ..Self::from_header(path, header)
        }
    }

    /// The clinic's date of the session: the date the station wrote in
    /// `opened_at` (its local date), else the UTC time in this machine's time zone.
    #[must_use]
    pub fn opened_date(&self) -> Option<Date> {
        if let Some(date) = self
            .opened_at
            .get(..10)
            .and_then(|d| d.parse::<Date>().ok())
        {
            return Some(date);
        }
        jiff::Timestamp::from_millisecond(self.opened_utc_ms)
            .ok()
            .map(|t| t.to_zoned(jiff::tz::TimeZone::system()).date())
    }
}

/// The summary line in the last [`TAIL_BYTES`] of `file` (after the header), if any.
/// The last summary wins; lines after it are allowed.
fn summary_in_tail(mut file: &File, header_end: u64) -> std::io::Result<Option<SummaryLine>> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES).max(header_end);
    if start >= len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    // `take`: a file still being written may have grown since `len`.
    file.take(len - start).read_to_end(&mut tail)?;
    let mut pieces: Vec<&[u8]> = tail.split(|&b| b == b'\n').collect();
    if start > header_end && !pieces.is_empty() {
        // The read began inside a line.
        pieces.remove(0);
    }
    let finder = memchr::memmem::Finder::new(br#""summary""#);
    for piece in pieces.iter().rev() {
        if finder.find(piece).is_some()
            && let Ok(Line::Summary(summary)) = serde_json::from_slice::<Line>(piece)
        {
            return Ok(Some(*summary));
        }
    }
    Ok(None)
}

/// Whether the record's file is named as the station names it:
/// `<YYYY-MM-DD>_<HHMMSS>_<client>.jsonl` (or `-2`, `-3`…), its date the header's.
fn station_named(e: &SessionEntry) -> bool {
    let Some(name) = e.path.file_stem().and_then(|n| n.to_str()) else {
        return false;
    };
    let date = e.opened_at.get(..10).unwrap_or_default();
    let client_part = format!("_{}", e.client);
    name.starts_with(date)
        && (name.ends_with(&client_part)
            || name
                .rsplit_once('-')
                .is_some_and(|(head, n)| head.ends_with(&client_part) && n.parse::<u32>().is_ok()))
}

/// One record read: its entry and the problems found, or why it could not be.
type EntryRead = Result<(SessionEntry, Vec<String>), LibraryError>;

/// The records in a data folder's `sessions/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Library {
    /// One entry per readable record, newest first.
    pub entries: Vec<SessionEntry>,
    /// Files that could not be listed, and records with damaged lines, each naming
    /// its file.
    pub warnings: Vec<String>,
}

impl Library {
    /// Lists the `*.jsonl` records in `sessions_dir`. A missing folder is an empty
    /// library; an unreadable or damaged file is a warning, and the others are
    /// listed all the same.
    #[must_use]
    pub fn scan(sessions_dir: &Path) -> Library {
        let mut library = Library::default();
        library.refresh(sessions_dir);
        library
    }

    /// Brings the library up to date with `sessions_dir`: records it has not read,
    /// and records whose size changed since (a session still being written, by this
    /// station or another), are read; records gone from the folder leave it; the
    /// others are kept as read. The warnings are this refresh's.
    pub fn refresh(&mut self, sessions_dir: &Path) {
        let mut known: std::collections::HashMap<PathBuf, SessionEntry> = self
            .entries
            .drain(..)
            .map(|e| (e.path.clone(), e))
            .collect();
        let library = self;
        library.warnings.clear();
        let dir = match std::fs::read_dir(sessions_dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                library
                    .warnings
                    .push(format!("cannot list {}: {e}", sessions_dir.display()));
                // What was read stays: a folder that cannot be listed now loses no
                // session already known.
                library.entries.extend(known.into_values());
                library.sort();
                return;
            }
        };
        let mut paths = Vec::new();
        for item in dir {
            match item {
                Ok(item) => {
                    let path = item.path();
                    let is_record = path.extension().is_some_and(|e| e == "jsonl")
                        && !item.file_name().to_string_lossy().starts_with('.')
                        && path.is_file();
                    if is_record {
                        paths.push(path);
                    }
                }
                Err(e) => library
                    .warnings
                    .push(format!("cannot list {}: {e}", sessions_dir.display())),
            }
        }
        paths.sort();
        let mut to_read = Vec::new();
        for path in paths {
            if let Some(entry) = known.remove(&path)
                && std::fs::metadata(&path).is_ok_and(|m| m.len() == entry.bytes)
            {
                library.entries.push(entry);
            } else {
                to_read.push(path);
            }
        }
        // Records are read on the machine's cores (at most 4), each thread a share of
        // the files in order: an interrupted record is read whole, and those dominate.
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4)
            .min(to_read.len().max(1));
        let share = to_read.len().div_ceil(threads).max(1);
        let results: Vec<Vec<EntryRead>> = std::thread::scope(|scope| {
            let handles: Vec<_> = to_read
                .chunks(share)
                .map(|chunk| {
                    std::thread::Builder::new()
                        .name("library-read".into())
                        .spawn_scoped(scope, move || {
                            chunk.iter().map(|p| SessionEntry::read(p)).collect()
                        })
                })
                .collect();
            handles
                .into_iter()
                .zip(to_read.chunks(share))
                .map(|(handle, chunk)| match handle {
                    // A thread that cannot start: its share is read here.
                    Err(_) => chunk.iter().map(|p| SessionEntry::read(p)).collect(),
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        chunk
                            .iter()
                            .map(|p| {
                                Err(LibraryError::Tail {
                                    path: p.clone(),
                                    source: std::io::Error::other(
                                        "reading it stopped unexpectedly",
                                    ),
                                })
                            })
                            .collect()
                    }),
                })
                .collect()
        });
        for result in results.into_iter().flatten() {
            match result {
                Ok((entry, problems)) => {
                    library.entries.push(entry);
                    library.warnings.extend(problems);
                }
                Err(e) => library.warnings.push(e.to_string()),
            }
        }
        library.sort();
        library.dedupe();
    }

    /// One entry per session: a record copied under another name (a backup put back,
    /// a copy from another station) would count a session twice in the course, the
    /// client file and a lot's uses. The complete record, else the larger, is kept;
    /// the other is named in a warning.
    fn dedupe(&mut self) {
        let mut kept: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut drop = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            match kept.get(&e.session_id) {
                None => {
                    kept.insert(e.session_id.clone(), i);
                }
                Some(&j) => {
                    let other = &self.entries[j];
                    // Complete first; then the file named as the station names records
                    // (`<date>_<time>_<client>.jsonl`), not a copy; then the larger.
                    let rank = |x: &SessionEntry| {
                        (
                            x.status == RecordStatus::Complete,
                            station_named(x),
                            x.bytes,
                        )
                    };
                    let better = rank(e) > rank(other);
                    let (keep, lose) = if better { (i, j) } else { (j, i) };
                    kept.insert(e.session_id.clone(), keep);
                    drop.push((lose, keep));
                }
            }
        }
        if drop.is_empty() {
            return;
        }
        for &(lose, keep) in &drop {
            self.warnings.push(format!(
                "{} records session {} too, as {} does: it is left out",
                self.entries[lose].path.display(),
                self.entries[lose].session_id,
                self.entries[keep].path.display()
            ));
        }
        let losers: std::collections::HashSet<usize> = drop.iter().map(|&(l, _)| l).collect();
        let mut i = 0;
        self.entries.retain(|_| {
            let keep = !losers.contains(&i);
            i += 1;
            keep
        });
    }

    /// Newest first.
    fn sort(&mut self) {
        self.entries.sort_by(|a, b| {
            b.opened_utc_ms
                .cmp(&a.opened_utc_ms)
                .then_with(|| b.path.cmp(&a.path))
        });
    }

    /// The sessions whose client pseudonym contains `client_query`, ignoring case
    /// (all of them for an empty query), newest first.
    pub fn search(&self, client_query: &str) -> impl Iterator<Item = &SessionEntry> {
        let query = client_query.to_lowercase();
        self.entries
            .iter()
            .filter(move |e| e.client.to_lowercase().contains(&query))
    }

    /// The sessions of `client` (exact pseudonym), newest first.
    pub fn of_client<'a>(&'a self, client: &'a str) -> impl Iterator<Item = &'a SessionEntry> {
        self.entries.iter().filter(move |e| e.client == client)
    }

    /// Every use of lot `lot` (exact, ignoring case and surrounding spaces: a scanner
    /// and a keyboard may differ in case), newest session first: the session and what
    /// the lot was of.
    #[must_use]
    pub fn lot_uses(&self, lot: &str) -> Vec<(&SessionEntry, &crate::safety::procedure::LotUse)> {
        let wanted = lot.trim();
        self.entries
            .iter()
            .flat_map(|e| e.lots.iter().map(move |l| (e, l)))
            .filter(|(_, l)| l.lot.eq_ignore_ascii_case(wanted))
            .collect()
    }

    /// The zones treated for `client` (exact pseudonym), each with the date of its
    /// latest treatment, sorted by zone: what the 4-week same-zone rule needs.
    /// Simulated sessions count too, as the station's own history counts them.
    #[must_use]
    pub fn zones_treated_by(&self, client: &str) -> Vec<(String, Date)> {
        let mut latest: std::collections::BTreeMap<String, Date> =
            std::collections::BTreeMap::new();
        for entry in self.entries.iter().filter(|e| e.client == client) {
            let Some(date) = entry.opened_date() else {
                continue;
            };
            for zone in &entry.zones_treated {
                let slot = latest.entry(zone.clone()).or_insert(date);
                *slot = (*slot).max(date);
            }
        }
        latest.into_iter().collect()
    }

    /// Every cartridge that ran, as `(cartridge id, session id, client)`, newest
    /// session first: what the used-cartridge registry needs.
    #[must_use]
    pub fn cartridges_used(&self) -> Vec<(String, String, String)> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.cartridges
                    .iter()
                    .map(|c| (c.clone(), e.session_id.clone(), e.client.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{StateWord, ZoneSummary};
    use crate::record::testkit as kit;

    /// A header for `client` opened `days` days after the kit's T0.
    fn header(client: &str, days: i64) -> Line {
        let mut line = kit::header(client);
        if let Line::Header(h) = &mut line {
            h.utc_ms += days * 86_400_000;
            h.opened_at = format!("2025-11-{:02}T17:00:00+01:00", 24 + days);
            h.session_id = format!("S-{client}-{days}");
        }
        line
    }

    fn zone_summary(zone: &str, passes: u32, needling_ms: u64) -> ZoneSummary {
        ZoneSummary {
            zone: zone.into(),
            passes,
            needling_ms,
            max_depth_um: 0,
            refusals: 0,
        }
    }

    /// A complete record whose summary says what was treated (and nothing else does).
    fn complete(client: &str, days: i64, zones: Vec<ZoneSummary>, carts: &[&str]) -> Vec<u8> {
        kit::jsonl(&[header(client, days), kit::summary(60_000, zones, 0, carts)])
    }

    /// An interrupted record: cheeks started (RUN ACK), forehead ran (telemetry only),
    /// chin only selected.
    fn interrupted(client: &str, days: i64) -> Vec<u8> {
        let mut lines = vec![header(client, days), kit::zone(0, "cheeks")];
        lines.push(kit::answer(10, 1, "RUN", "ACK"));
        lines.push(kit::cartridge(11, "00000000000000AA"));
        lines.push(kit::zone(100, "forehead"));
        lines.extend(kit::tel_run(100, 200, 10, 0, StateWord::Running, 600));
        lines.push(kit::zone(300, "chin"));
        lines.push(kit::tel(40_000, 99, StateWord::Idle, 0));
        // The kit's lines are timed from its T0; this header opens `days` later.
        let lines: Vec<Line> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let mut value = serde_json::to_value(&line).expect("encodes");
                if i > 0 {
                    value["utc_ms"] = (line.utc_ms() + days * 86_400_000).into();
                }
                serde_json::from_value(value).expect("decodes")
            })
            .collect();
        let mut bytes = kit::jsonl(&lines);
        bytes.extend_from_slice(b"{\"type\":\"tel\",\"utc");
        bytes
    }

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        kit::write(
            d,
            "2025-11-24_170000_C042.jsonl",
            &complete(
                "C042",
                0,
                vec![zone_summary("cheeks", 2, 5000), zone_summary("chin", 0, 0)],
                &["00000000000000C1"],
            ),
        );
        kit::write(d, "2025-11-26_170000_c042b.jsonl", &interrupted("c042b", 2));
        kit::write(
            d,
            "2025-11-28_170000_C042.jsonl",
            &complete(
                "C042",
                4,
                vec![
                    zone_summary("forehead", 1, 100),
                    zone_summary("cheeks", 0, 10),
                ],
                &["00000000000000C2"],
            ),
        );
        kit::write(
            d,
            "2025-11-25_170000_Z9.jsonl",
            &complete("Z9", 1, vec![zone_summary("cheeks", 1, 1)], &[]),
        );
        kit::write(d, "empty.jsonl", b"");
        kit::write(d, "notes.jsonl", b"shopping list\n");
        kit::write(
            d,
            "future.jsonl",
            br#"{"type":"header","format":"punctum-session","version":7}"#,
        );
        kit::write(d, "readme.txt", b"not a record");
        std::fs::create_dir(d.join("folder.jsonl")).expect("a folder");
        dir
    }

    #[test]
    fn a_missing_folder_should_be_an_empty_library() {
        let dir = tempfile::tempdir().expect("temp dir");
        let library = Library::scan(&dir.path().join("sessions"));
        assert_eq!(library, Library::default());
    }

    #[test]
    fn scan_should_list_records_newest_first_and_warn_of_bad_files_by_name() {
        let dir = folder();
        let library = Library::scan(dir.path());
        let listed: Vec<(&str, i64, &RecordStatus)> = library
            .entries
            .iter()
            .map(|e| (e.session_id.as_str(), e.duration_ms, &e.status))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("S-C042-4", 60_000, &RecordStatus::Complete),
                ("S-c042b-2", 40_000, &RecordStatus::Interrupted),
                ("S-Z9-1", 60_000, &RecordStatus::Complete),
                ("S-C042-0", 60_000, &RecordStatus::Complete),
            ]
        );
        let first = &library.entries[0];
        assert_eq!(first.zones_treated, vec!["forehead", "cheeks"]);
        assert_eq!(first.cartridges, vec!["00000000000000C2"]);
        assert_eq!(first.opened_at, "2025-11-28T17:00:00+01:00");
        assert_eq!(first.practitioner, "P7");
        assert!(first.simulated);
        assert_eq!(
            library.entries[3].zones_treated,
            vec!["cheeks"],
            "chin had no pass"
        );

        let warnings = &library.warnings;
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        let about = |name: &str| {
            warnings
                .iter()
                .find(|w| w.contains(&dir.path().join(name).display().to_string()))
                .unwrap_or_else(|| panic!("no warning about {name}: {warnings:#?}"))
        };
        assert!(about("empty.jsonl").contains("is empty"));
        assert!(about("notes.jsonl").contains("line 1 is not JSON"));
        assert!(about("future.jsonl").contains("newer Punctum (format version 7"));
        assert!(
            about("2025-11-26_170000_c042b.jsonl")
                .contains("c042b.jsonl: 1 warning (first: line 18: the last line is cut short"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn an_interrupted_record_should_get_its_zones_and_cartridges_from_its_lines() {
        let dir = folder();
        let library = Library::scan(dir.path());
        let entry = library
            .entries
            .iter()
            .find(|e| e.client == "c042b")
            .expect("listed");
        assert_eq!(entry.status, RecordStatus::Interrupted);
        // The needle started in the cheeks and ran on after the forehead was selected
        // without a new start: a pass counts in the zone it started in.
        assert_eq!(entry.zones_treated, vec!["cheeks"]);
        assert_eq!(entry.cartridges, vec!["00000000000000AA"]);
        assert_eq!(entry.duration_ms, 40_000);
    }

    #[test]
    fn search_should_match_part_of_the_client_ignoring_case() {
        let dir = folder();
        let library = Library::scan(dir.path());
        let ids = |q: &str| {
            library
                .search(q)
                .map(|e| e.session_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("c042"), vec!["S-C042-4", "S-c042b-2", "S-C042-0"]);
        assert_eq!(ids("42B"), vec!["S-c042b-2"]);
        assert_eq!(ids("").len(), 4);
        assert!(ids("nobody").is_empty());
    }

    #[test]
    fn zones_treated_by_should_give_each_zone_its_latest_date_for_that_client_only() {
        let dir = folder();
        let library = Library::scan(dir.path());
        let date = |s: &str| s.parse::<Date>().expect("a date");
        assert_eq!(
            library.zones_treated_by("C042"),
            vec![
                ("cheeks".to_owned(), date("2025-11-28")),
                ("forehead".to_owned(), date("2025-11-28")),
            ]
        );
        assert_eq!(
            library.zones_treated_by("Z9"),
            vec![("cheeks".to_owned(), date("2025-11-25"))]
        );
        assert!(
            library.zones_treated_by("c042").is_empty(),
            "exact pseudonym"
        );
    }

    #[test]
    fn cartridges_used_should_name_session_and_client() {
        let dir = folder();
        let library = Library::scan(dir.path());
        let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            library.cartridges_used(),
            vec![
                s("00000000000000C2", "S-C042-4", "C042"),
                s("00000000000000AA", "S-c042b-2", "c042b"),
                s("00000000000000C1", "S-C042-0", "C042"),
            ]
        );
    }

    #[test]
    fn the_summary_should_be_found_in_the_tail_of_a_long_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Lines say cheeks ran, the summary says chin: the summary is what is read.
        let mut lines = vec![header("C1", 0), kit::zone(0, "cheeks")];
        lines.extend(kit::tel_run(0, 20_000, 10, 0, StateWord::Running, 500));
        lines.push(kit::summary(
            20_000,
            vec![zone_summary("chin", 1, 1)],
            2000,
            &[],
        ));
        // A few lines after the summary, still within the tail.
        lines.extend(kit::tel_run(20_000, 20_100, 10, 2000, StateWord::Idle, 0));
        let bytes = kit::jsonl(&lines);
        assert!(bytes.len() as u64 > 2 * TAIL_BYTES);
        let path = kit::write(dir.path(), "long.jsonl", &bytes);
        let (entry, problems) = SessionEntry::read(&path).expect("reads");
        assert_eq!(entry.zones_treated, vec!["chin"]);
        assert_eq!(entry.status, RecordStatus::Complete);
        assert!(problems.is_empty());

        // With more than the tail after the summary, the record is read whole.
        lines.extend(kit::tel_run(20_100, 40_000, 10, 2010, StateWord::Idle, 0));
        let path = kit::write(dir.path(), "longer.jsonl", &kit::jsonl(&lines));
        let (entry, problems) = SessionEntry::read(&path).expect("reads");
        assert_eq!(entry.zones_treated, vec!["cheeks"], "from the lines");
        assert_eq!(entry.status, RecordStatus::Complete);
        assert_eq!(problems.len(), 1, "lines after the summary: {problems:?}");
    }

    #[test]
    fn opened_date_should_fall_back_to_the_utc_time() {
        let entry = SessionEntry {
            path: PathBuf::new(),
            session_id: String::new(),
            client: String::new(),
            practitioner: String::new(),
            opened_utc_ms: kit::T0_MS,
            opened_at: "garbled".into(),
            duration_ms: 0,
            zones_treated: Vec::new(),
            cartridges: Vec::new(),
            status: RecordStatus::Complete,
            simulated: false,
            indication: None,
            zones: Vec::new(),
            lots: Vec::new(),
            notes: Vec::new(),
            notes_omitted: 0,
            bytes: 0,
        };
        let date = entry.opened_date().expect("a date");
        let utc = "2025-11-24".parse::<Date>().expect("a date");
        assert!((date - utc).get_days().abs() <= 1, "{date}");
    }
}
