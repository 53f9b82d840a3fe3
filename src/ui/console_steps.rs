//! The console's procedure commands: `step ...` records a step of the open session,
//! `steps` shows its checklist (`docs/console.md`). Words may be quoted as in a shell
//! (`step numbing "EMLA 5%" L-2291`).

use crate::safety::procedure::{Item, ItemState, StepEntry, StepKind, countdown};
use crate::safety::zones::ZoneId;
use crate::station::{Station, StationError};

use super::console::Printer;

/// The help lines of these commands.
pub const HELP: &[&str] = &[
    "steps                      the session's checklist: done, counting down, missing",
    "step cleanse [at HH:MM]    cleansing done (now, or at a time earlier today)",
    "step numbing <product> <lot> [at HH:MM] [confirm-lidocaine]   numbing cream applied",
    "step numbing-removed [at HH:MM]   numbing cream removed",
    "step no-numbing <reason>   no numbing, and why",
    "step test-spot <zone> <mm> [at HH:MM]   a test spot made",
    "step reaction <text>       the test spot's reaction, after the clinic's wait",
    "step serum <product> <lot> a serum or growth factor applied",
    "step cartridge-lot <lot>   the lot of the cartridge in the pen",
    "step aftercare             aftercare given",
    "step correct <n> void <reason>   step n did not happen (it stays on file)",
    "step correct <n> <field> <value> ... because <reason>   replace fields of step n: product lot at zone depth reaction",
];

/// Runs `line` if it is a procedure command (`None`: it is not).
pub(super) fn execute(station: &mut Station, line: &str, out: &mut Printer) -> Option<()> {
    let first = line.split_whitespace().next()?;
    match first {
        "steps" => {
            show(station, out);
            Some(())
        }
        "step" => {
            let Some(words) = shlex::split(line) else {
                out.line("error: unbalanced quotes; usage: step <kind> ... (try help)");
                return Some(());
            };
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            match parse(&words[1..]) {
                Ok((entry, at_utc_ms)) => record(station, entry, at_utc_ms, out),
                Err(why) => out.line(&format!("error: {why}; try help")),
            }
            Some(())
        }
        _ => None,
    }
}

fn record(station: &mut Station, entry: StepEntry, at_utc_ms: Option<i64>, out: &mut Printer) {
    match station.record_step(entry, at_utc_ms) {
        Ok(entry) => {
            // `ok` once the step is safe from a crash, as for a note.
            match station.confirm_recorded(super::console::NOTE_CONFIRM_WAIT) {
                Ok(()) => out.line(&format!("ok: step {} {}", entry.number, entry.describe())),
                Err(e) => out.line(&format!("refused: {e}")),
            }
        }
        Err(StationError::Step(
            crate::safety::procedure::StepError::LidocaineConfirmationNeeded,
        )) => {
            out.line(
                "refused: the client's lidocaine sensitivity was confirmed at screening; to \
                 record the numbing cream, give the same command again ending with \
                 confirm-lidocaine",
            );
        }
        Err(e) => out.line(&format!("refused: {e}")),
    }
}

/// Prints the checklist, one `checklist:` line per item, then `ok`.
fn show(station: &Station, out: &mut Printer) {
    let Some(items) = station.checklist() else {
        out.line("refused: no session is open");
        return;
    };
    for item in items {
        out.line(&format!("checklist: {}", item_words(&item)));
    }
    if let Some(session) = station.session() {
        for entry in session.checklist.entries() {
            let new_time =
                if entry.kind() == StepKind::Correction && entry.at_ms != entry.recorded_ms {
                    format!(" (its new time: {})", session.wall_clock(entry.at_ms))
                } else {
                    String::new()
                };
            let at = if entry.kind() == StepKind::Correction {
                entry.recorded_ms
            } else {
                entry.at_ms
            };
            out.line(&format!(
                "checklist: step {} at {} by {}: {}{new_time}",
                entry.number,
                session.wall_clock(at),
                entry.by,
                entry.describe()
            ));
        }
    }
    out.line("ok");
}

/// One checklist item in words: `Numbing cream: waiting 12:30 (EMLA ...)`.
#[must_use]
pub fn item_words(item: &Item) -> String {
    let state = match &item.state {
        ItemState::Pending if item.required => "MISSING before the needle".to_owned(),
        ItemState::Pending => "not recorded".to_owned(),
        ItemState::Waiting { remaining_ms } => {
            format!("waiting, {} left", countdown(*remaining_ms))
        }
        ItemState::Ready => "due now".to_owned(),
        ItemState::Overdue => "past the window's end".to_owned(),
        ItemState::Done => "done".to_owned(),
        ItemState::Waived => "waived".to_owned(),
    };
    if item.detail.is_empty() {
        format!("{}: {state}", item.label)
    } else {
        format!("{}: {state} ({})", item.label, item.detail)
    }
}

/// A step from the words after `step`, with the time it happened when given.
fn parse(words: &[&str]) -> Result<(StepEntry, Option<i64>), String> {
    let Some((&kind_word, rest)) = words.split_first() else {
        return Err("which step?".to_owned());
    };
    // Only these take a time: elsewhere "at" is a word of a reason or a reaction.
    let (rest, at_utc_ms) = if matches!(
        kind_word,
        "cleanse" | "numbing" | "numbing-removed" | "test-spot"
    ) {
        take_at(rest)?
    } else {
        (rest.to_vec(), None)
    };
    // A keyword where a value belongs is a value left out (`step numbing EMLA at 9:40`).
    let values = match kind_word {
        "numbing" | "serum" | "test-spot" => 2,
        "cartridge-lot" => 1,
        _ => 0,
    };
    if let Some(word) = rest
        .iter()
        .take(values)
        .find(|w| matches!(**w, "at" | "confirm-lidocaine" | "because" | "void"))
    {
        return Err(format!(
            "{word:?} is where a value belongs: a value is missing"
        ));
    }
    let new = |kind| StepEntry::new(kind, 0, "");
    let joined = |words: &[&str]| {
        let text = words.join(" ");
        (!text.is_empty()).then_some(text)
    };
    let entry = match (kind_word, rest.as_slice()) {
        ("cleanse", []) => new(StepKind::Cleansing),
        ("numbing", [product, lot, flags @ ..]) => {
            let lidocaine_confirmed = match flags {
                [] => false,
                ["confirm-lidocaine"] => true,
                _ => return Err(format!("unexpected {flags:?} after the lot")),
            };
            StepEntry {
                product: Some((*product).to_owned()),
                lot: Some((*lot).to_owned()),
                lidocaine_confirmed,
                ..new(StepKind::NumbingApplied)
            }
        }
        ("numbing-removed", []) => new(StepKind::NumbingRemoved),
        ("no-numbing", reason) if !reason.is_empty() => StepEntry {
            reason: joined(reason),
            ..new(StepKind::NoNumbing)
        },
        ("test-spot", [zone, depth]) => StepEntry {
            zone: Some(zone.parse::<ZoneId>().map_err(|e| e.to_string())?),
            depth_um: Some(parse_mm(depth)?),
            ..new(StepKind::TestSpot)
        },
        ("reaction", text) if !text.is_empty() => StepEntry {
            reaction: joined(text),
            ..new(StepKind::TestSpotReaction)
        },
        ("serum", [product, lot]) => StepEntry {
            product: Some((*product).to_owned()),
            lot: Some((*lot).to_owned()),
            ..new(StepKind::Serum)
        },
        ("cartridge-lot", [lot]) => StepEntry {
            lot: Some((*lot).to_owned()),
            ..new(StepKind::CartridgeLot)
        },
        ("aftercare", []) => new(StepKind::AftercareGiven),
        ("correct", [number, more @ ..]) => return parse_correction(number, more),
        _ => return Err(format!("wrong arguments for step {kind_word}")),
    };
    Ok((entry, at_utc_ms))
}

fn parse_correction(number: &str, words: &[&str]) -> Result<(StepEntry, Option<i64>), String> {
    let corrects = number
        .parse::<u32>()
        .map_err(|_| format!("{number:?} is not a step number"))?;
    let mut entry = StepEntry {
        corrects: Some(corrects),
        ..StepEntry::new(StepKind::Correction, 0, "")
    };
    if let ["void", reason @ ..] = words {
        entry.void = true;
        entry.reason = Some(reason.join(" ")).filter(|r| !r.is_empty());
        return Ok((entry, None));
    }
    let because = words
        .iter()
        .position(|w| *w == "because")
        .ok_or("a correction ends with: because <reason>")?;
    let (fields, reason) = (&words[..because], &words[because + 1..]);
    entry.reason = Some(reason.join(" ")).filter(|r| !r.is_empty());
    let mut at_utc_ms = None;
    let mut seen = Vec::new();
    for pair in fields.chunks(2) {
        let [field, value] = pair else {
            return Err(format!("field {:?} has no value", pair[0]));
        };
        if seen.contains(field) {
            return Err(format!("field {field:?} is given twice"));
        }
        seen.push(*field);
        let value = (*value).to_owned();
        match *field {
            "product" => entry.product = Some(value),
            "lot" => entry.lot = Some(value),
            "reaction" => entry.reaction = Some(value),
            "zone" => entry.zone = Some(value.parse::<ZoneId>().map_err(|e| e.to_string())?),
            "depth" => entry.depth_um = Some(parse_mm(&value)?),
            "at" => at_utc_ms = Some(parse_clock(&value)?),
            other => return Err(format!("no field {other:?}")),
        }
    }
    Ok((entry, at_utc_ms))
}

/// Takes a trailing or embedded `at HH:MM` out of `words`.
fn take_at<'a>(words: &[&'a str]) -> Result<(Vec<&'a str>, Option<i64>), String> {
    match words.iter().position(|w| *w == "at") {
        Some(i) if i + 1 < words.len() => {
            let at = parse_clock(words[i + 1])?;
            let mut rest = words[..i].to_vec();
            rest.extend_from_slice(&words[i + 2..]);
            Ok((rest, Some(at)))
        }
        _ => Ok((words.to_vec(), None)),
    }
}

/// `HH:MM`, the station's local time, as UTC ms: the last time the clock showed it
/// (today, or yesterday for a time later than now: `at 23:50` typed at 00:10).
fn parse_clock(text: &str) -> Result<i64, String> {
    let time: jiff::civil::Time = text
        .parse()
        .map_err(|_| format!("{text:?} is not a time of day (HH:MM)"))?;
    let now = jiff::Zoned::now();
    let mut at = now
        .with()
        .time(time)
        .build()
        .map_err(|e| format!("{text}: {e}"))?;
    if at > now {
        at = at
            .checked_sub(jiff::Span::new().days(1))
            .map_err(|e| format!("{text}: {e}"))?;
        let back = now.timestamp().as_millisecond() - at.timestamp().as_millisecond();
        if back > i64::from(crate::safety::procedure::NUMBING_BACKDATE_MAX_MIN) * 60_000 {
            return Err(format!(
                "{text} is later than now ({}), and as yesterday's it would be {} min back, \
                 more than {}: a step's time is earlier today, or before midnight just after \
                 it",
                now.strftime("%H:%M"),
                back / 60_000,
                crate::safety::procedure::NUMBING_BACKDATE_MAX_MIN
            ));
        }
    }
    Ok(at.timestamp().as_millisecond())
}

/// `0.5` (mm) as µm, exact to the µm (the window's admin screen too).
pub(super) fn parse_mm(text: &str) -> Result<i32, String> {
    super::console::parse_depth_um(text)
        .ok()
        .and_then(|um| i32::try_from(um).ok())
        .ok_or_else(|| format!("{text:?} is not a depth in mm (e.g. 0.5)"))
}

/// `lots <lot>`: every use of a lot, audited.
fn lots(station: &mut Station, lot: &str, out: &mut Printer) {
    let library = crate::record::Library::scan(&station.data().path(crate::client::SESSIONS_DIR));
    let hits = crate::client::lot_query(&library, lot);
    station.audit_event(
        crate::store::audit::AuditKind::LotQuery,
        &[
            ("lot", (*lot).to_owned()),
            ("uses", hits.len().to_string()),
            ("via", "console".into()),
        ],
    );
    for h in &hits {
        out.line(&format!(
            "lot: {} {} {} client={} session={} by={} product={}",
            h.lot,
            h.date.map_or_else(|| "?".to_owned(), |d| d.to_string()),
            h.kind,
            h.client,
            h.session_id,
            h.practitioner,
            h.product
        ));
    }
    out.line(&format!("ok: {} uses", hits.len()));
}

/// The client-file commands' help lines.
pub const CLIENT_HELP: &[&str] = &[
    "client [pseudonym]         the client's file (default: the open session's client)",
    "lots <lot>                 every session and client that used a lot",
    "amend <session id> [YYYY-MM-DD] <kind> <severity> <note>   a follow-up or adverse event",
];

/// Runs `line` if it is a client-file command (`None`: it is not).
pub(super) fn execute_client(station: &mut Station, line: &str, out: &mut Printer) -> Option<()> {
    let first = line.split_whitespace().next()?;
    if !matches!(first, "client" | "lots" | "amend") {
        return None;
    }
    // Client data and amendments: for a signed-in, unlocked account only.
    if let Err(e) = station.require(None) {
        out.line(&format!("refused: {e}"));
        return Some(());
    }
    let Some(owned) = shlex::split(line) else {
        out.line("error: unbalanced quotes");
        return Some(());
    };
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["client", rest @ ..] if rest.len() <= 1 => {
            let client = rest
                .first()
                .map(|c| (*c).to_owned())
                .or_else(|| station.session().map(|s| s.answers.client.clone()));
            let Some(client) = client else {
                out.line("error: no session is open; usage: client <pseudonym>");
                return Some(());
            };
            station.audit_event(
                crate::store::audit::AuditKind::ClientFile,
                &[("client", client.clone()), ("via", "console".into())],
            );
            let mut file =
                crate::client::ClientFile::open(station.data(), &client, jiff::Zoned::now().date());
            if let Some(open) = station.session() {
                file.mark_open(&open.id);
            }
            for text in file.to_text().lines() {
                out.line(&format!("client: {text}"));
            }
            out.line("ok");
        }
        ["lots", lot] if !lot.trim().is_empty() => lots(station, lot, out),
        ["client", ..] => out.line("error: usage: client [pseudonym]"),
        ["amend", session, rest @ ..] => {
            let looks_like_date = |w: &str| {
                w.len() >= 8
                    && w.contains('-')
                    && w.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            };
            let (date, rest) = match rest.first() {
                Some(w) if looks_like_date(w) => match w.parse::<jiff::civil::Date>() {
                    Ok(date) => (Some(date), &rest[1..]),
                    Err(e) => {
                        out.line(&format!("error: {w:?} is not a date (YYYY-MM-DD): {e}"));
                        return Some(());
                    }
                },
                _ => (None, rest),
            };
            let [kind, severity, note @ ..] = rest else {
                out.line("error: usage: amend <session id> [YYYY-MM-DD] <kind> <severity> <note>");
                return Some(());
            };
            let by = station.operator().to_owned();
            match crate::client::cmd::add_amendment(
                station.data(),
                session,
                date,
                kind,
                severity,
                &note.join(" "),
                &by,
            ) {
                Ok(a) => out.line(&format!(
                    "ok: session {} amended: {} {} on {}",
                    a.session_id, a.kind, a.severity, a.date
                )),
                Err(e) => out.line(&format!("refused: {e}")),
            }
        }
        ["lots" | "amend", ..] => out.line(&format!("error: usage: {}", usage_of(words[0]))),
        _ => return None,
    }
    Some(())
}

/// A client-file command's usage line.
fn usage_of(verb: &str) -> &'static str {
    CLIENT_HELP
        .iter()
        .find(|h| h.starts_with(verb))
        .copied()
        .unwrap_or("try help")
}
