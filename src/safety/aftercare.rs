//! Aftercare and the course of sessions (the clinical reference, "Session intervals"
//! and "Aftercare").
//!
//! Every schedule respects the same-area minimum: no two sessions on the same area
//! less than 4 weeks ([`SAME_ZONE_MIN_DAYS`]) apart. Dates are arguments; this module
//! reads no clock.

use jiff::ToSpan as _;
use jiff::civil::Date;

use super::screening::Indication;

/// The shortest interval between two sessions on the same area, days (4 weeks; Dr.
/// Pen, Graham).
pub const SAME_ZONE_MIN_DAYS: i32 = 28;

/// Given to the client at the end of every session.
const AFTERCARE: [&str; 4] = [
    "Redness and sensitivity for 24–48 h, like a mild sunburn; most side effects go within a few days.",
    "No makeup and no harsh skincare (retinoids, acids) for at least 24–48 h.",
    "Gentle moisturiser; sunscreen from 24 h on; no direct sun for about a week.",
    "No strenuous exercise or heavy sweating for 72 h.",
];

/// The aftercare advice, one line per point, as the reference gives it.
#[must_use]
pub fn aftercare_lines() -> &'static [&'static str] {
    &AFTERCARE
}

/// When the next session should be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NextSession {
    /// The first day it may be, never less than 4 weeks after the session.
    pub earliest: Date,
    /// The last day the schedule suggests, when the reference gives one.
    pub latest: Option<Date>,
    /// One sentence for the client and the record.
    pub advice: String,
}

/// The next session after one on `session_date` for `indication`:
///
/// - rejuvenation: every 4–6 weeks;
/// - acne scars, wrinkles: a course of 3–6 sessions a month apart (a calendar month,
///   never under 4 weeks; no latest date is given);
/// - maintenance: every 3–6 months;
/// - stretch marks: the reference states no interval, so the 4-week same-area minimum
///   applies, and the advice says so.
#[must_use]
pub fn next_session(indication: Indication, session_date: Date) -> NextSession {
    let min = session_date.saturating_add(SAME_ZONE_MIN_DAYS.days());
    // A calendar-month or longer interval is never under the minimum, but the max keeps
    // that true by construction rather than by arithmetic.
    let at_least_min = |d: Date| d.max(min);
    let (earliest, latest, schedule) = match indication {
        Indication::Rejuvenation => (
            at_least_min(session_date.saturating_add(4.weeks())),
            Some(session_date.saturating_add(6.weeks())),
            "general skin rejuvenation: every 4–6 weeks",
        ),
        Indication::AcneScars => (
            at_least_min(session_date.saturating_add(1.month())),
            None,
            "acne scars: a course of 3–6 sessions spaced a month apart",
        ),
        Indication::Wrinkles => (
            at_least_min(session_date.saturating_add(1.month())),
            None,
            "wrinkles: a course of 3–6 sessions spaced a month apart",
        ),
        Indication::Maintenance => (
            at_least_min(session_date.saturating_add(3.months())),
            Some(session_date.saturating_add(6.months())),
            "maintenance: every 3–6 months",
        ),
        Indication::StretchMarks => (
            min,
            None,
            "stretch marks: no interval is stated in the reference, so the 4-week \
             minimum between sessions on the same area applies",
        ),
    };
    let advice = match latest {
        Some(latest) => format!("Next session between {earliest} and {latest} ({schedule})."),
        None => format!("Next session from {earliest} ({schedule})."),
    };
    NextSession {
        earliest,
        latest,
        advice,
    }
}

/// Whether an area last treated on `last_treated` may be treated on `today`: at least
/// [`SAME_ZONE_MIN_DAYS`] later. A `last_treated` after `today` (a clock or record
/// error) is refused, and so is one whose minimum would fall past the last date jiff
/// represents.
#[must_use]
pub fn same_zone_allowed(last_treated: Date, today: Date) -> bool {
    last_treated
        .checked_add(SAME_ZONE_MIN_DAYS.days())
        .is_ok_and(|allowed_from| today >= allowed_from)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn aftercare_is_the_references() {
        let lines = aftercare_lines();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("Redness and sensitivity for 24–48 h"));
        assert!(lines[3].contains("72 h"));
    }

    #[test]
    fn next_session_follows_the_indication() {
        fn check(indication: Indication, session: Date, expected: (Date, Option<Date>, &str)) {
            let next = next_session(indication, session);
            assert_eq!(
                (next.earliest, next.latest, next.advice.as_str()),
                expected,
                "{indication}"
            );
            assert!(next.earliest >= session.saturating_add(SAME_ZONE_MIN_DAYS.days()));
        }
        let d = date(2025, 6, 1);
        check(
            Indication::Rejuvenation,
            d,
            (
                date(2025, 6, 29),
                Some(date(2025, 7, 13)),
                "Next session between 2025-06-29 and 2025-07-13 (general skin rejuvenation: \
                 every 4–6 weeks).",
            ),
        );
        check(
            Indication::AcneScars,
            d,
            (
                date(2025, 7, 1),
                None,
                "Next session from 2025-07-01 (acne scars: a course of 3–6 sessions spaced \
                 a month apart).",
            ),
        );
        check(
            Indication::Wrinkles,
            date(2025, 1, 31),
            (
                date(2025, 2, 28),
                None,
                "Next session from 2025-02-28 (wrinkles: a course of 3–6 sessions spaced a \
                 month apart).",
            ),
        );
        // February: a calendar month is exactly the 4-week minimum.
        check(
            Indication::AcneScars,
            date(2025, 2, 1),
            (
                date(2025, 3, 1),
                None,
                "Next session from 2025-03-01 (acne scars: a course of 3–6 sessions spaced \
                 a month apart).",
            ),
        );
        check(
            Indication::Maintenance,
            date(2025, 8, 31),
            (
                date(2025, 11, 30),
                Some(date(2026, 2, 28)),
                "Next session between 2025-11-30 and 2026-02-28 (maintenance: every 3–6 \
                 months).",
            ),
        );
        check(
            Indication::StretchMarks,
            d,
            (
                date(2025, 6, 29),
                None,
                "Next session from 2025-06-29 (stretch marks: no interval is stated in the \
                 reference, so the 4-week minimum between sessions on the same area applies).",
            ),
        );
    }

    #[test]
    fn next_session_near_the_end_of_time_does_not_panic() {
        for indication in Indication::ALL {
            let next = next_session(indication, Date::MAX);
            assert_eq!(next.earliest, Date::MAX);
        }
    }

    #[test]
    fn same_zone_needs_four_weeks() {
        fn check(last: Date, today: Date, expected: bool) {
            assert_eq!(same_zone_allowed(last, today), expected, "{last} → {today}");
        }
        let last = date(2025, 6, 1);
        check(last, date(2025, 6, 28), false);
        check(last, date(2025, 6, 29), true);
        check(last, date(2025, 9, 1), true);
        check(last, last, false);
        check(last, date(2025, 5, 1), false);
        check(Date::MAX, Date::MAX, false);
        check(date(2024, 2, 1), date(2024, 2, 29), true);
    }
}
