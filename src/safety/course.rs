//! The course of treatment (the clinical reference, "Session intervals"): which
//! session of its course this one is, what the course asks next, and whether a
//! session opens earlier than the course allows.
//!
//! A course is the run of a client's latest sessions with one indication: counting
//! back from the newest, it stops at a session with another indication. Only sessions
//! in which the needle ran count (a session opened and ended without needling treated
//! nothing). Acne scars and wrinkles have a course of 3–6 sessions a month apart;
//! rejuvenation repeats every 4–6 weeks; maintenance every 3–6 months; stretch marks
//! have no stated interval (the 4-week same-area minimum applies).
//!
//! The 28-day same-area rule is the interlock's, at every start; here an opening
//! within 28 days of the last session is said as what it is (its zones are refused),
//! and an opening earlier than only the course asks (maintenance at 2 months) is a
//! caution. Pure: dates come in.

use jiff::ToSpan as _;
use jiff::civil::Date;
use serde::Serialize;

use super::aftercare::{self, SAME_ZONE_MIN_DAYS};
use super::screening::Indication;

/// A past session, as the course counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastSession {
    /// The clinic's date it was held.
    pub date: Date,
    /// Its indication.
    pub indication: Indication,
    /// The needle ran in it.
    pub treated: bool,
}

/// Where a course stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CourseStatus {
    /// The course's indication.
    pub indication: Indication,
    /// Sessions of the course, this one included when one is opening.
    pub sessions: u32,
    /// The course's planned number of sessions (acne scars, wrinkles: 3–6).
    pub planned: Option<(u32, u32)>,
    /// The course's last session before now.
    pub last: Option<Date>,
    /// The next session's earliest date.
    pub next_earliest: Date,
    /// ... and latest, when the schedule gives one.
    pub next_latest: Option<Date>,
    /// One line for the screen and the hand-out: `acne scars: session 2 of 3–6; next
    /// from 2027-01-04`.
    pub text: String,
    /// When the opening is earlier than the course (or the 28-day rule) allows: why.
    pub caution: Option<String>,
}

fn planned(indication: Indication) -> Option<(u32, u32)> {
    matches!(indication, Indication::AcneScars | Indication::Wrinkles).then_some((3, 6))
}

fn schedule(indication: Indication) -> &'static str {
    match indication {
        Indication::Rejuvenation => "every 4–6 weeks",
        Indication::AcneScars | Indication::Wrinkles => "a month apart",
        Indication::Maintenance => "every 3–6 months",
        Indication::StretchMarks => "at least 4 weeks apart",
    }
}

/// The course's sessions before now: the latest run of treated sessions with
/// `indication`, newest first.
fn run_of(indication: Indication, past: &[PastSession], before: Date) -> Vec<Date> {
    let mut treated: Vec<&PastSession> = past
        .iter()
        .filter(|p| p.treated && p.date <= before)
        .collect();
    treated.sort_by_key(|p| std::cmp::Reverse(p.date));
    treated
        .iter()
        .take_while(|p| p.indication == indication)
        .map(|p| p.date)
        .collect()
}

fn count_words(indication: Indication, n: u32, done: bool) -> String {
    let name = indication.as_str().replace('_', " ");
    match planned(indication) {
        Some((lo, hi)) if n > hi && done => format!(
            "{name}: {n} sessions done, beyond the course of {lo}–{hi} (consider maintenance)"
        ),
        Some((lo, hi)) if n > hi => {
            format!("{name}: session {n}, beyond the course of {lo}–{hi} (consider maintenance)")
        }
        Some((lo, hi)) if done => format!("{name}: {n} of {lo}–{hi} sessions done"),
        Some((lo, hi)) => format!("{name}: session {n} of {lo}–{hi}"),
        None if done => format!(
            "{name}: {n} session{} done ({})",
            if n == 1 { "" } else { "s" },
            schedule(indication)
        ),
        None => format!("{name}: session {n} ({})", schedule(indication)),
    }
}

fn next_words(earliest: Date, latest: Option<Date>) -> String {
    match latest {
        Some(latest) => format!("next between {earliest} and {latest}"),
        None => format!("next from {earliest}"),
    }
}

/// The course of a session of `indication` opening on `today`, after `past` sessions
/// of the client (any order; sessions on later dates are ignored).
#[must_use]
pub fn opening(indication: Indication, past: &[PastSession], today: Date) -> CourseStatus {
    let run = run_of(indication, past, today);
    let sessions = u32::try_from(run.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let last = run.first().copied();
    let next = aftercare::next_session(indication, today);
    let caution = last.and_then(|last| {
        let allowed_from = aftercare::next_session(indication, last).earliest;
        if today >= allowed_from {
            return None;
        }
        let days = last.until(today).map_or(0, |s| s.get_days());
        let same_zone_from = last.saturating_add(SAME_ZONE_MIN_DAYS.days());
        Some(if today < same_zone_from {
            format!(
                "the last session was on {last}, {days} days ago: the zones treated then are \
                 refused until {same_zone_from} (no two sessions on the same area within \
                 {SAME_ZONE_MIN_DAYS} days)"
            )
        } else {
            format!(
                "earlier than the course asks: the last session was on {last}, {days} days \
                 ago; {} sessions are {}, the next from {allowed_from}",
                indication.as_str().replace('_', " "),
                schedule(indication)
            )
        })
    });
    CourseStatus {
        indication,
        sessions,
        planned: planned(indication),
        last,
        next_earliest: next.earliest,
        next_latest: next.latest,
        text: format!(
            "{}; {}",
            count_words(indication, sessions, false),
            next_words(next.earliest, next.latest)
        ),
        caution,
    }
}

/// Where the course of the client's latest treated session stands on `today` (the
/// client file): `None` when no session was treated.
#[must_use]
pub fn current(past: &[PastSession], today: Date) -> Option<CourseStatus> {
    let latest = past
        .iter()
        .filter(|p| p.treated && p.date <= today)
        .max_by_key(|p| p.date)?;
    let indication = latest.indication;
    let run = run_of(indication, past, today);
    let sessions = u32::try_from(run.len()).unwrap_or(u32::MAX);
    let next = aftercare::next_session(indication, latest.date);
    let overdue = next
        .latest
        .filter(|latest| today > *latest)
        .map(|latest| format!("; the schedule's latest date ({latest}) has passed"))
        .unwrap_or_default();
    Some(CourseStatus {
        indication,
        sessions,
        planned: planned(indication),
        last: Some(latest.date),
        next_earliest: next.earliest,
        next_latest: next.latest,
        text: format!(
            "{}; {}{overdue}",
            count_words(indication, sessions, true),
            next_words(next.earliest, next.latest)
        ),
        caution: None,
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn past(dates: &[(Date, Indication)]) -> Vec<PastSession> {
        dates
            .iter()
            .map(|&(date, indication)| PastSession {
                date,
                indication,
                treated: true,
            })
            .collect()
    }

    #[test]
    fn acne_scars_count_their_course_and_say_the_next_date() {
        use Indication::AcneScars;
        let history = past(&[(date(2026, 11, 4), AcneScars)]);
        let c = opening(AcneScars, &history, date(2026, 12, 4));
        assert_eq!(c.text, "acne scars: session 2 of 3–6; next from 2027-01-04");
        assert_eq!(c.caution, None);
        assert_eq!(c.sessions, 2);
        // Six done: the seventh is beyond the course.
        let six: Vec<(Date, Indication)> = (1..=6).map(|m| (date(2026, m, 1), AcneScars)).collect();
        let c = opening(AcneScars, &past(&six), date(2026, 8, 1));
        assert!(
            c.text
                .starts_with("acne scars: session 7, beyond the course of 3–6"),
            "{}",
            c.text
        );
        let now = current(&past(&six), date(2026, 6, 20)).expect("a course");
        assert_eq!(
            now.text,
            "acne scars: 6 of 3–6 sessions done; next from 2026-07-01"
        );
    }

    #[test]
    fn another_indication_starts_a_new_course_and_untreated_sessions_do_not_count() {
        use Indication::{AcneScars, Maintenance};
        let mut history = past(&[
            (date(2026, 1, 5), AcneScars),
            (date(2026, 2, 5), AcneScars),
            (date(2026, 3, 5), AcneScars),
            (date(2026, 7, 1), Maintenance),
        ]);
        history.push(PastSession {
            date: date(2026, 8, 1),
            indication: Maintenance,
            treated: false,
        });
        let c = opening(Maintenance, &history, date(2026, 10, 1));
        assert_eq!(c.sessions, 2);
        assert_eq!(
            c.text,
            "maintenance: session 2 (every 3–6 months); next between 2027-01-01 and 2027-04-01"
        );
        assert_eq!(c.caution, None);
        let c = opening(AcneScars, &history, date(2026, 10, 1));
        assert_eq!(c.sessions, 1, "maintenance ended the acne course");
    }

    #[test]
    fn an_early_opening_is_a_caution_and_within_28_days_says_the_refusal() {
        use Indication::{Maintenance, Rejuvenation};
        let c = opening(
            Maintenance,
            &past(&[(date(2026, 9, 1), Maintenance)]),
            date(2026, 11, 1),
        );
        let caution = c.caution.expect("two months after a maintenance session");
        assert!(
            caution.contains("earlier than the course asks")
                && caution.contains("the next from 2026-12-01"),
            "{caution}"
        );
        let c = opening(
            Rejuvenation,
            &past(&[(date(2026, 11, 10), Rejuvenation)]),
            date(2026, 11, 30),
        );
        let caution = c.caution.expect("20 days later");
        assert!(
            caution.contains("20 days ago") && caution.contains("refused until 2026-12-08"),
            "{caution}"
        );
        // Rejuvenation at 5 weeks is within its schedule.
        let c = opening(
            Rejuvenation,
            &past(&[(date(2026, 10, 26), Rejuvenation)]),
            date(2026, 11, 30),
        );
        assert_eq!(c.caution, None);
        assert_eq!(c.sessions, 2);
    }

    #[test]
    fn the_current_course_says_when_the_schedule_has_passed() {
        let c = current(
            &past(&[(date(2026, 1, 10), Indication::Rejuvenation)]),
            date(2026, 6, 1),
        )
        .expect("a course");
        assert_eq!(
            c.text,
            "rejuvenation: 1 session done (every 4–6 weeks); next between 2026-02-07 and \
             2026-02-21; the schedule's latest date (2026-02-21) has passed"
        );
        assert_eq!(current(&[], date(2026, 6, 1)), None);
    }
}
