//! A pen's calibration status, for display: never calibrated, valid until a date, due
//! soon, or overdue since a date.
//!
//! The rule is the interlock's ([`check_calibration`](crate::safety::interlock::check_calibration)):
//! a calibration is valid while it is at most [`CALIBRATION_VALID_DAYS`] days old, so
//! its last valid day is the calibration date plus 365 days. The station warns
//! [`DUE_SOON_DAYS`] days before that.

use std::fmt;

use jiff::Span;
use jiff::civil::Date;

use crate::protocol::Calibration;
use crate::safety::interlock::{CALIBRATION_VALID_DAYS, calibration_date};

/// The station warns this many days (or fewer) before a calibration falls due.
pub const DUE_SOON_DAYS: i32 = 30;

/// Where a pen's calibration stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationStatus {
    /// The pen has never been calibrated (date 0).
    Never,
    /// The pen's calibration date is not a calendar date: treated as overdue.
    NotADate {
        /// The date as the pen sent it.
        yyyymmdd: u32,
    },
    /// Valid, with more than [`DUE_SOON_DAYS`] days left.
    Valid {
        /// The calibration date.
        calibrated: Date,
        /// The last day it is valid.
        valid_until: Date,
        /// Days from today to `valid_until` (0 on the last day).
        days_left: i32,
    },
    /// Valid, with [`DUE_SOON_DAYS`] days or fewer left.
    DueSoon {
        /// The calibration date.
        calibrated: Date,
        /// The last day it is valid.
        valid_until: Date,
        /// Days from today to `valid_until` (0 on the last day).
        days_left: i32,
    },
    /// No longer valid.
    Overdue {
        /// The calibration date.
        calibrated: Date,
        /// The first day it was no longer valid.
        overdue_since: Date,
    },
}

impl CalibrationStatus {
    /// The pen may treat on this status (the interlock decides; this says the same).
    #[must_use]
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Valid { .. } | Self::DueSoon { .. })
    }

    /// Deserves a warning: due soon, overdue, never calibrated or a bad date.
    #[must_use]
    pub fn needs_attention(self) -> bool {
        !matches!(self, Self::Valid { .. })
    }
}

impl fmt::Display for CalibrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("Never calibrated"),
            Self::NotADate { yyyymmdd } => {
                write!(
                    f,
                    "Calibration date {yyyymmdd} is not a date: treat as overdue"
                )
            }
            Self::Valid {
                valid_until,
                days_left,
                ..
            } => write!(f, "Valid until {valid_until} ({} left)", days(*days_left)),
            Self::DueSoon {
                valid_until,
                days_left,
                ..
            } => write!(
                f,
                "Due soon: valid until {valid_until} ({} left)",
                days(*days_left)
            ),
            Self::Overdue { overdue_since, .. } => write!(f, "Overdue since {overdue_since}"),
        }
    }
}

fn days(n: i32) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

/// The status of `calibration` on `today`.
#[must_use]
pub fn calibration_status(calibration: &Calibration, today: Date) -> CalibrationStatus {
    if calibration.date == 0 {
        return CalibrationStatus::Never;
    }
    let Some(calibrated) = calibration_date(calibration.date) else {
        return CalibrationStatus::NotADate {
            yyyymmdd: calibration.date,
        };
    };
    let valid_until = calibrated.saturating_add(Span::new().days(CALIBRATION_VALID_DAYS));
    // Days, as the interlock counts them (`until` on civil dates is in days).
    let days_left = today
        .until(valid_until)
        .map_or(i32::MIN, |span| span.get_days());
    if days_left < 0 {
        CalibrationStatus::Overdue {
            calibrated,
            overdue_since: valid_until.saturating_add(Span::new().days(1)),
        }
    } else if days_left <= DUE_SOON_DAYS {
        CalibrationStatus::DueSoon {
            calibrated,
            valid_until,
            days_left,
        }
    } else {
        CalibrationStatus::Valid {
            calibrated,
            valid_until,
            days_left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::interlock::{check_calibration, yyyymmdd};

    fn dated(date: Date) -> Calibration {
        Calibration {
            date: yyyymmdd(date),
            ..Calibration::identity()
        }
    }

    fn day(text: &str) -> Date {
        text.parse().expect("date")
    }

    #[test]
    fn statuses_across_the_year_agree_with_the_interlock() {
        let calibrated = day("2025-03-01");
        let cal = dated(calibrated);
        // 2025-03-01 + 365 days = 2026-03-01 (no 29 February between).
        let last = day("2026-03-01");
        let cases = [
            (day("2025-03-01"), "Valid until 2026-03-01 (365 days left)"),
            (day("2026-01-29"), "Valid until 2026-03-01 (31 days left)"),
            (
                day("2026-01-30"),
                "Due soon: valid until 2026-03-01 (30 days left)",
            ),
            (
                day("2026-02-28"),
                "Due soon: valid until 2026-03-01 (1 day left)",
            ),
            (last, "Due soon: valid until 2026-03-01 (0 days left)"),
            (day("2026-03-02"), "Overdue since 2026-03-02"),
            (day("2030-01-01"), "Overdue since 2026-03-02"),
        ];
        for (today, expected) in cases {
            let status = calibration_status(&cal, today);
            assert_eq!(status.to_string(), expected, "{today}");
            assert_eq!(
                status.is_valid(),
                check_calibration(Some(&cal), today).is_ok(),
                "{today}: the status and the interlock disagree"
            );
        }
        assert_eq!(
            calibration_status(&cal, day("2026-01-30")),
            CalibrationStatus::DueSoon {
                calibrated,
                valid_until: last,
                days_left: 30
            }
        );
        assert!(!calibration_status(&cal, day("2025-06-01")).needs_attention());
        assert!(calibration_status(&cal, day("2026-02-01")).needs_attention());
    }

    #[test]
    fn never_and_bad_dates_are_not_valid() {
        let today = day("2026-01-01");
        let never = Calibration::identity();
        assert_eq!(calibration_status(&never, today), CalibrationStatus::Never);
        assert_eq!(
            calibration_status(&never, today).to_string(),
            "Never calibrated"
        );
        assert!(!calibration_status(&never, today).is_valid());
        let bad = Calibration {
            date: 20_250_230,
            ..Calibration::identity()
        };
        let status = calibration_status(&bad, today);
        assert_eq!(
            status,
            CalibrationStatus::NotADate {
                yyyymmdd: 20_250_230
            }
        );
        assert!(!status.is_valid() && status.needs_attention());
        assert!(check_calibration(Some(&bad), today).is_err());
    }
}
