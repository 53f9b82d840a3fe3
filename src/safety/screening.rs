//! Screening before every session: who must not be treated, and who may be treated
//! only with the practitioner's recorded confirmation (the clinical reference, "Who
//! must not be treated").
//!
//! # The answers file
//!
//! ```json
//! {
//!   "client": "C-0042",
//!   "dob": "1990-05-01",
//!   "indication": "rejuvenation",
//!   "practitioner": "P-7",
//!   "answers": { "skin_cancer_or_keratosis": false, "open_wounds": false, ... },
//!   "confirmed_cautions": ["herpes_history"]
//! }
//! ```
//!
//! - `client`, `practitioner`: 1..=32 of `A-Z a-z 0-9 _ -` (ids, never names: the
//!   records carry no personal data beyond the date of birth).
//! - `dob`: `YYYY-MM-DD`, a real calendar date.
//! - `indication`: one of [`Indication::ALL`]'s ids.
//! - `answers`: every answerable question ([`QuestionId::answerable`], i.e. all but
//!   `under_22`, which is derived from `dob`) as a boolean, `true` meaning "yes, this
//!   applies". Nothing may be left out: a question not asked is not a "no".
//!   Intake forms often include `under_22` too: it is accepted when it agrees with
//!   `dob` on the session's day, and refused, naming both, when it does not
//!   ([`parse_answers_checked`]); the age from `dob` decides either way.
//! - `confirmed_cautions`: caution ids the practitioner confirms treating despite;
//!   required, may be empty. Confirming a caution answered `false` is harmless and
//!   has no effect.
//! - No other fields: a misspelt key is refused rather than ignored.
//!
//! A date of birth in the future is checked by [`parse_answers_checked`], which takes
//! today's date (this module reads no clock). [`parse_answers`] checks everything
//! else; [`evaluate`] refuses a future date of birth anyway, since the age comes out
//! below 22.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde_json::Value;

/// The minimum age for treatment, years (the FDA's authorised population).
pub const MIN_AGE_YEARS: i16 = 22;

/// The default window for `recent_laser_or_peel`, days: the reference says
/// "recently"; the station's default is 2 weeks, configurable.
pub const DEFAULT_LASER_PEEL_WINDOW_DAYS: u32 = 14;

/// What a "yes" to a question means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// The station refuses to start the session.
    DoNotTreat,
    /// Treatment only with the practitioner's recorded confirmation.
    Caution,
}

/// A screening question, with the reference's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum QuestionId {
    /// Age under 22, derived from the date of birth.
    #[serde(rename = "under_22")]
    Under22,
    /// Active skin cancer or solar keratosis in the area.
    SkinCancerOrKeratosis,
    /// Open wounds or lesions in the area.
    OpenWounds,
    /// Active bacterial, fungal or viral infection in the area.
    ActiveInfection,
    /// Active acne (grade III–IV) or papulopustular rosacea in the area.
    ActiveAcneOrRosacea,
    /// Bleeding disorder.
    BleedingDisorder,
    /// Isotretinoin within the last 6 months.
    #[serde(rename = "isotretinoin_6mo")]
    Isotretinoin6mo,
    /// Laser treatment or chemical peel in the area recently.
    RecentLaserOrPeel,
    /// Takes anticoagulants.
    Anticoagulants,
    /// Eczema, psoriasis or severe rosacea in the area.
    EczemaPsoriasisRosacea,
    /// History of herpes.
    HerpesHistory,
    /// Keloid tendency.
    Keloids,
    /// Scleroderma.
    Scleroderma,
    /// Poor wound healing.
    PoorHealing,
    /// Scars or stretch marks under 1 year old in the area.
    RecentScars,
    /// Facial trauma within 6 months.
    #[serde(rename = "facial_trauma_6mo")]
    FacialTrauma6mo,
    /// Lidocaine sensitivity.
    LidocaineSensitivity,
    /// Fitzpatrick skin type IV–VI.
    FitzpatrickIvVi,
}

impl QuestionId {
    /// Every question: the do-not-treat ones, then the cautions, as in the reference.
    pub const ALL: [Self; 18] = [
        Self::Under22,
        Self::SkinCancerOrKeratosis,
        Self::OpenWounds,
        Self::ActiveInfection,
        Self::ActiveAcneOrRosacea,
        Self::BleedingDisorder,
        Self::Isotretinoin6mo,
        Self::RecentLaserOrPeel,
        Self::Anticoagulants,
        Self::EczemaPsoriasisRosacea,
        Self::HerpesHistory,
        Self::Keloids,
        Self::Scleroderma,
        Self::PoorHealing,
        Self::RecentScars,
        Self::FacialTrauma6mo,
        Self::LidocaineSensitivity,
        Self::FitzpatrickIvVi,
    ];

    /// The id used in answers files and records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Under22 => "under_22",
            Self::SkinCancerOrKeratosis => "skin_cancer_or_keratosis",
            Self::OpenWounds => "open_wounds",
            Self::ActiveInfection => "active_infection",
            Self::ActiveAcneOrRosacea => "active_acne_or_rosacea",
            Self::BleedingDisorder => "bleeding_disorder",
            Self::Isotretinoin6mo => "isotretinoin_6mo",
            Self::RecentLaserOrPeel => "recent_laser_or_peel",
            Self::Anticoagulants => "anticoagulants",
            Self::EczemaPsoriasisRosacea => "eczema_psoriasis_rosacea",
            Self::HerpesHistory => "herpes_history",
            Self::Keloids => "keloids",
            Self::Scleroderma => "scleroderma",
            Self::PoorHealing => "poor_healing",
            Self::RecentScars => "recent_scars",
            Self::FacialTrauma6mo => "facial_trauma_6mo",
            Self::LidocaineSensitivity => "lidocaine_sensitivity",
            Self::FitzpatrickIvVi => "fitzpatrick_iv_vi",
        }
    }

    /// Whether a "yes" refuses the session or asks for confirmation.
    #[must_use]
    pub fn kind(self) -> QuestionKind {
        match self {
            Self::Under22
            | Self::SkinCancerOrKeratosis
            | Self::OpenWounds
            | Self::ActiveInfection
            | Self::ActiveAcneOrRosacea
            | Self::BleedingDisorder
            | Self::Isotretinoin6mo
            | Self::RecentLaserOrPeel => QuestionKind::DoNotTreat,
            Self::Anticoagulants
            | Self::EczemaPsoriasisRosacea
            | Self::HerpesHistory
            | Self::Keloids
            | Self::Scleroderma
            | Self::PoorHealing
            | Self::RecentScars
            | Self::FacialTrauma6mo
            | Self::LidocaineSensitivity
            | Self::FitzpatrickIvVi => QuestionKind::Caution,
        }
    }

    /// The condition in the reference's words, without the laser/peel window
    /// (used in refusal reasons).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Under22 => "age under 22",
            Self::SkinCancerOrKeratosis => "active skin cancer or solar keratosis in the area",
            Self::OpenWounds => "open wounds or lesions in the area",
            Self::ActiveInfection => {
                "active bacterial, fungal or viral infection in the area (herpes, warts)"
            }
            Self::ActiveAcneOrRosacea => {
                "active acne (grade III–IV) or papulopustular rosacea in the area"
            }
            Self::BleedingDisorder => "bleeding disorder (haemophilia)",
            Self::Isotretinoin6mo => "isotretinoin within the last 6 months",
            Self::RecentLaserOrPeel => "laser treatment or chemical peel in the area recently",
            Self::Anticoagulants => "takes anticoagulants / blood thinners",
            Self::EczemaPsoriasisRosacea => "eczema, psoriasis or severe rosacea in the area",
            Self::HerpesHistory => "history of herpes (consider prophylaxis)",
            Self::Keloids => "keloid tendency",
            Self::Scleroderma => "scleroderma",
            Self::PoorHealing => "poor wound healing",
            Self::RecentScars => "scars or stretch marks under 1 year old in the area",
            Self::FacialTrauma6mo => "facial trauma within 6 months",
            Self::LidocaineSensitivity => "lidocaine (numbing cream) sensitivity",
            Self::FitzpatrickIvVi => "Fitzpatrick skin type IV–VI (temporary darkening possible)",
        }
    }

    /// The question as put to the client. `laser_peel_window_days` is the clinic's
    /// window for `recent_laser_or_peel` (default
    /// [`DEFAULT_LASER_PEEL_WINDOW_DAYS`]).
    #[must_use]
    pub fn text(self, laser_peel_window_days: u32) -> String {
        match self {
            Self::Under22 => format!("Is the client under {MIN_AGE_YEARS} years old?"),
            Self::RecentLaserOrPeel => format!(
                "Laser treatment or chemical peel in the area within the last \
                 {laser_peel_window_days} days?"
            ),
            _ => {
                let label = self.label();
                let mut chars = label.chars();
                let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
                format!("{}{}?", first.unwrap_or_default(), chars.as_str())
            }
        }
    }

    /// Whether the answers file answers it: `under_22` is derived from the date of
    /// birth instead.
    #[must_use]
    pub fn answerable(self) -> bool {
        self != Self::Under22
    }
}

impl fmt::Display for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuestionId {
    type Err = ScreeningError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| ScreeningError::UnknownQuestion { id: s.to_owned() })
    }
}

/// Why the client is treated; sets the course of sessions (see `aftercare`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Indication {
    /// General skin rejuvenation.
    Rejuvenation,
    /// Acne scars.
    AcneScars,
    /// Wrinkles.
    Wrinkles,
    /// Stretch marks.
    StretchMarks,
    /// Maintenance after a course.
    Maintenance,
}

impl Indication {
    /// Every indication.
    pub const ALL: [Self; 5] = [
        Self::Rejuvenation,
        Self::AcneScars,
        Self::Wrinkles,
        Self::StretchMarks,
        Self::Maintenance,
    ];

    /// The id used in answers files and records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejuvenation => "rejuvenation",
            Self::AcneScars => "acne_scars",
            Self::Wrinkles => "wrinkles",
            Self::StretchMarks => "stretch_marks",
            Self::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for Indication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Indication {
    type Err = ScreeningError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| ScreeningError::UnknownIndication {
                given: s.to_owned(),
            })
    }
}

/// A parsed, well-formed answers file (not yet evaluated).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScreeningAnswers {
    /// Client id, 1..=32 of `A-Z a-z 0-9 _ -`.
    pub client: String,
    /// Date of birth.
    pub dob: Date,
    /// Why the client is treated.
    pub indication: Indication,
    /// Practitioner id, 1..=32 of `A-Z a-z 0-9 _ -`.
    pub practitioner: String,
    /// Every answerable question; `true` = "yes, this applies".
    pub answers: BTreeMap<QuestionId, bool>,
    /// Caution ids the practitioner confirmed.
    pub confirmed_cautions: BTreeSet<QuestionId>,
    /// `under_22` as the file gave it, if it did; checked against `dob` by
    /// [`parse_answers_checked`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_under_22: Option<bool>,
}

/// A defect in an answers file. Each names the field or question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreeningError {
    /// The text is not JSON.
    #[error("screening answers are not JSON: {0}")]
    NotJson(String),
    /// The top level is not an object.
    #[error("screening answers must be a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("field \"{field}\" is missing")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field this format does not have.
    #[error("field \"{field}\" is not part of the answers format")]
    UnknownField {
        /// The field as given.
        field: String,
    },
    /// A field of the wrong JSON type.
    #[error("field \"{field}\": expected {expected}, found {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The value found, as JSON.
        found: String,
    },
    /// `client` or `practitioner` is not a valid id.
    #[error("field \"{field}\": \"{value}\" is not 1 to 32 of A-Z a-z 0-9 _ -")]
    BadId {
        /// `client` or `practitioner`.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// `dob` is not a `YYYY-MM-DD` calendar date.
    #[error("field \"dob\": \"{value}\" is not a date: {reason}")]
    BadDate {
        /// The value as given.
        value: String,
        /// Why.
        reason: String,
    },
    /// `dob` is after today.
    #[error("field \"dob\": {dob} is in the future (today is {today})")]
    FutureDob {
        /// The date of birth.
        dob: Date,
        /// Today.
        today: Date,
    },
    /// `indication` is none of the known ids.
    #[error(
        "field \"indication\": unknown indication \"{given}\"; valid: {}",
        valid_indications()
    )]
    UnknownIndication {
        /// The value as given.
        given: String,
    },
    /// An answerable question has no answer.
    #[error("answers: question \"{id}\" is not answered")]
    MissingQuestion {
        /// The question.
        id: QuestionId,
    },
    /// An id that is no question.
    #[error("unknown question id \"{id}\"; valid: {}", valid_questions())]
    UnknownQuestion {
        /// The id as given.
        id: String,
    },
    /// `under_22` given as an answer that contradicts the date of birth.
    #[error(
        "answers: \"under_22\" is {stated}, but dob {dob} makes the client {age_years} on {today}"
    )]
    Under22Contradicts {
        /// The answer as given.
        stated: bool,
        /// The date of birth.
        dob: Date,
        /// The age it gives on `today`, whole years.
        age_years: i16,
        /// The session's day.
        today: Date,
    },
    /// An answer that is not `true` or `false`.
    #[error("answers: question \"{id}\" must be true or false, found {found}")]
    NotBoolean {
        /// The question.
        id: QuestionId,
        /// The value found, as JSON.
        found: String,
    },
    /// A confirmed caution that is not a caution id.
    #[error(
        "confirmed_cautions: \"{given}\" is not a caution id; cautions: {}",
        valid_cautions()
    )]
    NotACaution {
        /// The value as given.
        given: String,
    },
}

fn valid_indications() -> String {
    Indication::ALL.map(Indication::as_str).join(", ")
}

fn valid_questions() -> String {
    QuestionId::ALL.map(QuestionId::as_str).join(", ")
}

fn valid_cautions() -> String {
    QuestionId::ALL
        .into_iter()
        .filter(|q| q.kind() == QuestionKind::Caution)
        .map(QuestionId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fields of an answers file.
const FIELDS: [&str; 6] = [
    "client",
    "dob",
    "indication",
    "practitioner",
    "answers",
    "confirmed_cautions",
];

/// Parses and checks an answers file (see the module doc), except that the date of
/// birth is not compared with today: use [`parse_answers_checked`] for that.
pub fn parse_answers(json: &str) -> Result<ScreeningAnswers, ScreeningError> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| ScreeningError::NotJson(e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(ScreeningError::NotAnObject);
    };
    if let Some(field) = root.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ScreeningError::UnknownField {
            field: field.clone(),
        });
    }
    let field = |name: &'static str| {
        root.get(name)
            .ok_or(ScreeningError::MissingField { field: name })
    };
    let string = |name: &'static str| match field(name)? {
        Value::String(s) => Ok(s.as_str()),
        other => Err(wrong_type(name, "a string", other)),
    };
    let client = parse_id("client", string("client")?)?;
    let dob = parse_date(string("dob")?)?;
    let indication: Indication = string("indication")?.parse()?;
    let practitioner = parse_id("practitioner", string("practitioner")?)?;
    let Value::Object(given) = field("answers")? else {
        return Err(wrong_type(
            "answers",
            "an object of question ids to booleans",
            field("answers")?,
        ));
    };
    let mut answers = BTreeMap::new();
    let mut stated_under_22 = None;
    for (key, value) in given {
        let id: QuestionId = key.parse()?;
        let Value::Bool(yes) = value else {
            return Err(ScreeningError::NotBoolean {
                id,
                found: value.to_string(),
            });
        };
        if id.answerable() {
            answers.insert(id, *yes);
        } else {
            stated_under_22 = Some(*yes);
        }
    }
    if let Some(id) = QuestionId::ALL
        .into_iter()
        .find(|q| q.answerable() && !answers.contains_key(q))
    {
        return Err(ScreeningError::MissingQuestion { id });
    }
    let Value::Array(confirmed) = field("confirmed_cautions")? else {
        return Err(wrong_type(
            "confirmed_cautions",
            "an array of caution ids",
            field("confirmed_cautions")?,
        ));
    };
    let mut confirmed_cautions = BTreeSet::new();
    for value in confirmed {
        let Value::String(s) = value else {
            return Err(wrong_type(
                "confirmed_cautions",
                "an array of caution ids",
                value,
            ));
        };
        match s.parse::<QuestionId>() {
            Ok(id) if id.kind() == QuestionKind::Caution => {
                confirmed_cautions.insert(id);
            }
            _ => return Err(ScreeningError::NotACaution { given: s.clone() }),
        }
    }
    Ok(ScreeningAnswers {
        client,
        dob,
        indication,
        practitioner,
        answers,
        confirmed_cautions,
        stated_under_22,
    })
}

/// [`parse_answers`], and the date of birth must not be after `today`, and a stated
/// `under_22` must agree with the age `dob` gives on `today`.
pub fn parse_answers_checked(json: &str, today: Date) -> Result<ScreeningAnswers, ScreeningError> {
    let answers = parse_answers(json)?;
    if answers.dob > today {
        return Err(ScreeningError::FutureDob {
            dob: answers.dob,
            today,
        });
    }
    let age_years = age_years(answers.dob, today);
    if let Some(stated) = answers.stated_under_22
        && stated != (age_years < MIN_AGE_YEARS)
    {
        return Err(ScreeningError::Under22Contradicts {
            stated,
            dob: answers.dob,
            age_years,
            today,
        });
    }
    Ok(answers)
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ScreeningError {
    let mut found = found.to_string();
    if found.chars().count() > 40 {
        found = found.chars().take(40).collect::<String>() + "…";
    }
    ScreeningError::WrongType {
        field,
        expected,
        found,
    }
}

fn parse_id(field: &'static str, value: &str) -> Result<String, ScreeningError> {
    let ok = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ScreeningError::BadId {
            field,
            value: value.to_owned(),
        })
    }
}

/// Strictly `YYYY-MM-DD`: jiff alone would also take a datetime and drop its time.
fn parse_date(value: &str) -> Result<Date, ScreeningError> {
    let bad = |reason: &str| ScreeningError::BadDate {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let b = value.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(bad("expected YYYY-MM-DD"));
    }
    let year = value.get(0..4).and_then(|s| s.parse::<i16>().ok());
    let month = value.get(5..7).and_then(|s| s.parse::<i8>().ok());
    let day = value.get(8..10).and_then(|s| s.parse::<i8>().ok());
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(bad("expected YYYY-MM-DD"));
    };
    Date::new(year, month, day).map_err(|_| bad("no such day in the calendar"))
}

/// The result of screening, for the record and for the decision to start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScreeningOutcome {
    /// Age on the day of the session, whole years.
    pub age_years: i16,
    /// Do-not-treat questions that apply (including `under_22`), in `QuestionId::ALL`
    /// order.
    pub do_not_treat: Vec<QuestionId>,
    /// Cautions that apply and the practitioner did not confirm.
    pub unconfirmed_cautions: Vec<QuestionId>,
    /// Cautions that apply and the practitioner confirmed.
    pub confirmed_cautions: Vec<QuestionId>,
}

impl ScreeningOutcome {
    /// True when the session may start: nothing that forbids treatment, and every
    /// caution that applies confirmed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.do_not_treat.is_empty() && self.unconfirmed_cautions.is_empty()
    }

    /// One sentence per reason the session may not start; empty when it passed.
    #[must_use]
    pub fn reasons(&self) -> Vec<String> {
        let refusals = self.do_not_treat.iter().map(|&q| match q {
            QuestionId::Under22 => format!(
                "Do not treat: the client is {} years old; the minimum age is {MIN_AGE_YEARS}.",
                self.age_years
            ),
            _ => format!("Do not treat: {} ({q}).", q.label()),
        });
        let cautions = self.unconfirmed_cautions.iter().map(|&q| {
            format!(
                "Caution not confirmed by the practitioner: {} ({q}).",
                q.label()
            )
        });
        refusals.chain(cautions).collect()
    }
}

/// Age in whole years on `today`, birthday-exact: one more year on the birthday
/// itself. A 29 February birthday counts from 1 March in common years (the later,
/// more cautious reading). Negative when `dob` is after `today`.
#[must_use]
pub fn age_years(dob: Date, today: Date) -> i16 {
    // Years are -9999..=9999 in jiff, so the difference fits in i16.
    let years = today.year() - dob.year();
    if (today.month(), today.day()) < (dob.month(), dob.day()) {
        years - 1
    } else {
        years
    }
}

/// Screens `answers` for a session on `today`. A missing answer counts as "yes"
/// (cannot happen for parsed answers; a hand-built map is treated cautiously).
#[must_use]
pub fn evaluate(answers: &ScreeningAnswers, today: Date) -> ScreeningOutcome {
    let age_years = age_years(answers.dob, today);
    let mut outcome = ScreeningOutcome {
        age_years,
        do_not_treat: Vec::new(),
        unconfirmed_cautions: Vec::new(),
        confirmed_cautions: Vec::new(),
    };
    for q in QuestionId::ALL {
        let applies = if q == QuestionId::Under22 {
            age_years < MIN_AGE_YEARS
        } else {
            answers.answers.get(&q).copied().unwrap_or(true)
        };
        if !applies {
            continue;
        }
        match q.kind() {
            QuestionKind::DoNotTreat => outcome.do_not_treat.push(q),
            QuestionKind::Caution if answers.confirmed_cautions.contains(&q) => {
                outcome.confirmed_cautions.push(q);
            }
            QuestionKind::Caution => outcome.unconfirmed_cautions.push(q),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use serde_json::{Map, json};

    use super::*;

    /// A valid answers file: everything "no", nothing confirmed.
    fn clean() -> Map<String, Value> {
        let answers: Map<String, Value> = QuestionId::ALL
            .into_iter()
            .filter(|q| q.answerable())
            .map(|q| (q.as_str().to_owned(), Value::Bool(false)))
            .collect();
        let Value::Object(map) = json!({
            "client": "C-0042",
            "dob": "1990-05-01",
            "indication": "rejuvenation",
            "practitioner": "P-7",
            "answers": answers,
            "confirmed_cautions": [],
        }) else {
            unreachable!()
        };
        map
    }

    fn with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut map = clean();
        edit(&mut map);
        Value::Object(map).to_string()
    }

    fn answer(id: &str, value: Value) -> String {
        let id = id.to_owned();
        with(move |m| {
            m["answers"]
                .as_object_mut()
                .expect("answers")
                .insert(id, value);
        })
    }

    #[test]
    fn ids_match_the_reference_and_serde() {
        fn check(q: QuestionId, expected: (&str, QuestionKind)) {
            assert_eq!((q.as_str(), q.kind()), expected);
            assert_eq!(q.as_str().parse::<QuestionId>(), Ok(q));
            assert_eq!(serde_json::to_string(&q).ok(), Some(format!("\"{q}\"")));
        }
        use QuestionKind::{Caution, DoNotTreat};
        let expected = [
            ("under_22", DoNotTreat),
            ("skin_cancer_or_keratosis", DoNotTreat),
            ("open_wounds", DoNotTreat),
            ("active_infection", DoNotTreat),
            ("active_acne_or_rosacea", DoNotTreat),
            ("bleeding_disorder", DoNotTreat),
            ("isotretinoin_6mo", DoNotTreat),
            ("recent_laser_or_peel", DoNotTreat),
            ("anticoagulants", Caution),
            ("eczema_psoriasis_rosacea", Caution),
            ("herpes_history", Caution),
            ("keloids", Caution),
            ("scleroderma", Caution),
            ("poor_healing", Caution),
            ("recent_scars", Caution),
            ("facial_trauma_6mo", Caution),
            ("lidocaine_sensitivity", Caution),
            ("fitzpatrick_iv_vi", Caution),
        ];
        for (q, e) in QuestionId::ALL.into_iter().zip(expected) {
            check(q, e);
        }
        for i in Indication::ALL {
            assert_eq!(i.as_str().parse::<Indication>(), Ok(i));
            assert_eq!(serde_json::to_string(&i).ok(), Some(format!("\"{i}\"")));
        }
    }

    #[test]
    fn question_texts() {
        fn check(q: QuestionId, window_days: u32, expected: &str) {
            assert_eq!(q.text(window_days), expected);
        }
        check(QuestionId::Under22, 14, "Is the client under 22 years old?");
        check(
            QuestionId::RecentLaserOrPeel,
            14,
            "Laser treatment or chemical peel in the area within the last 14 days?",
        );
        check(
            QuestionId::RecentLaserOrPeel,
            30,
            "Laser treatment or chemical peel in the area within the last 30 days?",
        );
        check(QuestionId::Keloids, 14, "Keloid tendency?");
        check(
            QuestionId::FitzpatrickIvVi,
            14,
            "Fitzpatrick skin type IV–VI (temporary darkening possible)?",
        );
    }

    #[test]
    fn a_clean_file_parses() {
        let parsed = parse_answers(&with(|_| {})).expect("valid");
        assert_eq!(parsed.client, "C-0042");
        assert_eq!(parsed.dob, date(1990, 5, 1));
        assert_eq!(parsed.indication, Indication::Rejuvenation);
        assert_eq!(parsed.practitioner, "P-7");
        assert_eq!(parsed.answers.len(), 17);
        assert!(parsed.confirmed_cautions.is_empty());
    }

    #[test]
    fn the_readmes_example_answers_file_passes() {
        let example = include_str!("../../assets/examples/screening.json");
        let answers = parse_answers_checked(example, date(2026, 11, 30)).expect("valid");
        assert!(evaluate(&answers, date(2026, 11, 30)).passed());
    }

    #[test]
    fn a_stated_under_22_that_agrees_with_dob_is_accepted() {
        let adult = parse_answers_checked(&answer("under_22", json!(false)), date(2025, 6, 1))
            .expect("agrees: 35 years old");
        assert_eq!(adult.stated_under_22, Some(false));
        assert!(evaluate(&adult, date(2025, 6, 1)).passed());
        let young = |stated: bool| {
            let json = with(|m| {
                m.insert("dob".into(), json!("2004-06-02"));
                m["answers"]
                    .as_object_mut()
                    .expect("answers")
                    .insert("under_22".into(), json!(stated));
            });
            parse_answers_checked(&json, date(2025, 6, 1)).map_err(|e| e.to_string())
        };
        // 20 years old on the day (21 tomorrow): "under 22" is true.
        let parsed = young(true).expect("agrees");
        assert_eq!(
            evaluate(&parsed, date(2025, 6, 1)).do_not_treat,
            vec![QuestionId::Under22]
        );
        assert_eq!(
            young(false),
            Err("answers: \"under_22\" is false, but dob 2004-06-02 makes the client 20 on 2025-06-01"
                .to_owned())
        );
    }

    fn check_error(json: &str, expected: &str) {
        match parse_answers_checked(json, date(2025, 6, 1)) {
            Ok(_) => panic!("accepted, expected: {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }

    #[test]
    fn structural_defects_name_the_field_or_question() {
        let check = check_error;
        check(
            "{",
            "screening answers are not JSON: EOF while parsing an object at line 1 column 1",
        );
        check("[1]", "screening answers must be a JSON object");
        check(
            &with(|m| {
                m.remove("dob");
            }),
            "field \"dob\" is missing",
        );
        check(
            &with(|m| {
                m.remove("answers");
            }),
            "field \"answers\" is missing",
        );
        check(
            &with(|m| {
                m.remove("confirmed_cautions");
            }),
            "field \"confirmed_cautions\" is missing",
        );
        check(
            &with(|m| {
                m.insert("notes".into(), json!("x"));
            }),
            "field \"notes\" is not part of the answers format",
        );
        check(
            &with(|m| {
                m["answers"]
                    .as_object_mut()
                    .expect("answers")
                    .remove("keloids");
            }),
            "answers: question \"keloids\" is not answered",
        );
        check(
            &answer("tattoos", json!(false)),
            "unknown question id \"tattoos\"; valid: under_22, skin_cancer_or_keratosis, \
             open_wounds, active_infection, active_acne_or_rosacea, bleeding_disorder, \
             isotretinoin_6mo, recent_laser_or_peel, anticoagulants, eczema_psoriasis_rosacea, \
             herpes_history, keloids, scleroderma, poor_healing, recent_scars, \
             facial_trauma_6mo, lidocaine_sensitivity, fitzpatrick_iv_vi",
        );
        check(
            &answer("under_22", json!(true)),
            "answers: \"under_22\" is true, but dob 1990-05-01 makes the client 35 on 2025-06-01",
        );
        check(
            &answer("under_22", json!("no")),
            "answers: question \"under_22\" must be true or false, found \"no\"",
        );
        check(
            &answer("open_wounds", json!("no")),
            "answers: question \"open_wounds\" must be true or false, found \"no\"",
        );
        check(
            &answer("open_wounds", Value::Null),
            "answers: question \"open_wounds\" must be true or false, found null",
        );
        check(
            &with(|m| {
                m.insert("answers".into(), json!([]));
            }),
            "field \"answers\": expected an object of question ids to booleans, found []",
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let check = check_error;
        check(
            &with(|m| {
                m.insert("dob".into(), json!("1990-02-30"));
            }),
            "field \"dob\": \"1990-02-30\" is not a date: no such day in the calendar",
        );
        check(
            &with(|m| {
                m.insert("dob".into(), json!("01/05/1990"));
            }),
            "field \"dob\": \"01/05/1990\" is not a date: expected YYYY-MM-DD",
        );
        check(
            &with(|m| {
                m.insert("dob".into(), json!("1990-05-01T00:00"));
            }),
            "field \"dob\": \"1990-05-01T00:00\" is not a date: expected YYYY-MM-DD",
        );
        check(
            &with(|m| {
                m.insert("dob".into(), json!(19_900_501));
            }),
            "field \"dob\": expected a string, found 19900501",
        );
        check(
            &with(|m| {
                m.insert("dob".into(), json!("2025-06-02"));
            }),
            "field \"dob\": 2025-06-02 is in the future (today is 2025-06-01)",
        );
        check(
            &with(|m| {
                m.insert("indication".into(), json!("tattoo_removal"));
            }),
            "field \"indication\": unknown indication \"tattoo_removal\"; valid: rejuvenation, \
             acne_scars, wrinkles, stretch_marks, maintenance",
        );
        check(
            &with(|m| {
                m.insert("confirmed_cautions".into(), json!(["open_wounds"]));
            }),
            "confirmed_cautions: \"open_wounds\" is not a caution id; cautions: anticoagulants, \
             eczema_psoriasis_rosacea, herpes_history, keloids, scleroderma, poor_healing, \
             recent_scars, facial_trauma_6mo, lidocaine_sensitivity, fitzpatrick_iv_vi",
        );
        check(
            &with(|m| {
                m.insert("confirmed_cautions".into(), json!(["keloid"]));
            }),
            "confirmed_cautions: \"keloid\" is not a caution id; cautions: anticoagulants, \
             eczema_psoriasis_rosacea, herpes_history, keloids, scleroderma, poor_healing, \
             recent_scars, facial_trauma_6mo, lidocaine_sensitivity, fitzpatrick_iv_vi",
        );
        check(
            &with(|m| {
                m.insert("confirmed_cautions".into(), json!([3]));
            }),
            "field \"confirmed_cautions\": expected an array of caution ids, found 3",
        );
        check(
            &with(|m| {
                m.insert("client".into(), json!(""));
            }),
            "field \"client\": \"\" is not 1 to 32 of A-Z a-z 0-9 _ -",
        );
        check(
            &with(|m| {
                m.insert("client".into(), json!("Jane Doe"));
            }),
            "field \"client\": \"Jane Doe\" is not 1 to 32 of A-Z a-z 0-9 _ -",
        );
        check(
            &with(|m| {
                m.insert("practitioner".into(), json!("P".repeat(33)));
            }),
            &format!(
                "field \"practitioner\": \"{}\" is not 1 to 32 of A-Z a-z 0-9 _ -",
                "P".repeat(33)
            ),
        );
        check(
            &with(|m| {
                m.insert("practitioner".into(), json!("Pé"));
            }),
            "field \"practitioner\": \"Pé\" is not 1 to 32 of A-Z a-z 0-9 _ -",
        );
    }

    #[test]
    fn boundary_ids_and_dates_are_accepted() {
        fn check(json: &str) {
            assert!(
                parse_answers_checked(json, date(2025, 6, 1)).is_ok(),
                "{json}"
            );
        }
        check(&with(|m| {
            m.insert("client".into(), json!("a".repeat(32)));
        }));
        check(&with(|m| {
            m.insert("client".into(), json!("Z_9-z"));
        }));
        check(&with(|m| {
            m.insert("dob".into(), json!("2025-06-01"));
        }));
        check(&with(|m| {
            m.insert("dob".into(), json!("2000-02-29"));
        }));
    }

    #[test]
    fn outcomes() {
        /// `yes`: questions answered "yes"; `confirmed`: confirmed cautions.
        fn check(
            dob: Date,
            today: Date,
            yes: &[QuestionId],
            confirmed: &[QuestionId],
            expected: (bool, &[QuestionId], &[QuestionId], &[QuestionId]),
        ) {
            let mut answers = parse_answers(&with(|_| {})).expect("valid");
            answers.dob = dob;
            for q in yes {
                answers.answers.insert(*q, true);
            }
            answers.confirmed_cautions = confirmed.iter().copied().collect();
            let outcome = evaluate(&answers, today);
            let (passed, dnt, unconfirmed, confirmed) = expected;
            assert_eq!(outcome.passed(), passed, "{outcome:?}");
            assert_eq!(outcome.do_not_treat, dnt);
            assert_eq!(outcome.unconfirmed_cautions, unconfirmed);
            assert_eq!(outcome.confirmed_cautions, confirmed);
            assert_eq!(outcome.reasons().len(), dnt.len() + unconfirmed.len());
        }
        use QuestionId as Q;
        let adult = date(1990, 5, 1);
        let today = date(2025, 6, 1);
        check(adult, today, &[], &[], (true, &[], &[], &[]));
        check(
            adult,
            today,
            &[Q::OpenWounds],
            &[],
            (false, &[Q::OpenWounds], &[], &[]),
        );
        check(
            adult,
            today,
            &[Q::RecentLaserOrPeel, Q::BleedingDisorder],
            &[],
            (
                false,
                &[Q::BleedingDisorder, Q::RecentLaserOrPeel],
                &[],
                &[],
            ),
        );
        check(
            adult,
            today,
            &[Q::Keloids],
            &[],
            (false, &[], &[Q::Keloids], &[]),
        );
        check(
            adult,
            today,
            &[Q::Keloids],
            &[Q::Keloids],
            (true, &[], &[], &[Q::Keloids]),
        );
        // A confirmation does not outweigh a do-not-treat answer.
        check(
            adult,
            today,
            &[Q::OpenWounds, Q::Keloids],
            &[Q::Keloids],
            (false, &[Q::OpenWounds], &[], &[Q::Keloids]),
        );
        // Confirming a caution that does not apply changes nothing.
        check(adult, today, &[], &[Q::Scleroderma], (true, &[], &[], &[]));
        // Age: 21 years 364 days is refused; the 22nd birthday passes.
        check(
            date(2003, 6, 2),
            today,
            &[],
            &[],
            (false, &[Q::Under22], &[], &[]),
        );
        check(date(2003, 6, 1), today, &[], &[], (true, &[], &[], &[]));
        // A future date of birth is under 22 too.
        check(
            date(2030, 1, 1),
            today,
            &[],
            &[],
            (false, &[Q::Under22], &[], &[]),
        );
    }

    #[test]
    fn ages_are_birthday_exact() {
        fn check(dob: Date, today: Date, expected: i16) {
            assert_eq!(age_years(dob, today), expected, "{dob} on {today}");
        }
        check(date(2003, 6, 1), date(2025, 6, 1), 22);
        check(date(2003, 6, 2), date(2025, 6, 1), 21);
        check(date(2003, 12, 31), date(2025, 12, 30), 21);
        check(date(2004, 2, 29), date(2026, 2, 28), 21);
        check(date(2004, 2, 29), date(2026, 3, 1), 22);
        check(date(2004, 2, 29), date(2028, 2, 29), 24);
        check(date(2026, 1, 1), date(2025, 1, 1), -1);
        check(Date::MIN, Date::MAX, 19998);
    }

    #[test]
    fn reasons_read_as_sentences() {
        let outcome = ScreeningOutcome {
            age_years: 21,
            do_not_treat: vec![QuestionId::Under22, QuestionId::OpenWounds],
            unconfirmed_cautions: vec![QuestionId::HerpesHistory],
            confirmed_cautions: vec![],
        };
        assert_eq!(
            outcome.reasons(),
            [
                "Do not treat: the client is 21 years old; the minimum age is 22.",
                "Do not treat: open wounds or lesions in the area (open_wounds).",
                "Caution not confirmed by the practitioner: history of herpes (consider \
                 prophylaxis) (herpes_history).",
            ]
        );
    }
}
