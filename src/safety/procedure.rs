//! The procedure around the needling, as the session's checklist (the clinical
//! reference, "The procedure"): cleansing → numbing cream (20–40 min) → an optional
//! test spot → needling, zone by zone → serums or growth factors → aftercare.
//!
//! Each step the operator records is a [`StepEntry`], numbered in the order recorded.
//! A step is never changed: a later [`StepKind::Correction`] names the step it
//! corrects, why, and either voids it or replaces some of its fields. [`Checklist`]
//! folds the entries into what stands ([`Checklist::effective`]), checks a new entry
//! before it is recorded ([`Checklist::check_new`]), and derives what the interlock
//! needs for a start ([`Checklist::preparation`]): cleansing recorded, and the numbing
//! cream's contact time reached (or "no numbing" recorded with a reason).
//!
//! Times are on the session's axis: ms since the session opened, on the station's
//! monotonic clock (a numbing cream applied before the session opened is negative).
//! Pure: no clock, no I/O.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::zones::{ZoneId, ZoneTable};

/// The clinic's default minimum contact time of the numbing cream, minutes.
pub const NUMBING_MIN_CONTACT_MIN_DEFAULT: u32 = 20;
/// The end of the reference's 20–40 min window, minutes.
pub const NUMBING_MAX_CONTACT_MIN_DEFAULT: u32 = 40;
/// The default wait between a test spot and reading its reaction, minutes.
pub const TEST_SPOT_WAIT_MIN_DEFAULT: u32 = 15;
/// The longest before its recording a step may be said to have happened (a numbing
/// cream applied in the waiting room), minutes: an older time is a typing mistake (or
/// yesterday's), refused.
pub const NUMBING_BACKDATE_MAX_MIN: u32 = 180;
/// Longest product name, reason or reaction, characters.
pub const TEXT_MAX_CHARS: usize = 200;
/// Longest lot number, characters (a GS1 lot is at most 20).
pub const LOT_MAX_CHARS: usize = 40;

/// The clinic's times for the procedure (settings: `numbing_min_contact_min`,
/// `numbing_max_contact_min`, `test_spot_wait_min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureSettings {
    /// Minimum contact time of the numbing cream before needling, minutes.
    pub numbing_min_contact_min: u32,
    /// The end of the contact window, minutes: past it the checklist says so.
    pub numbing_max_contact_min: u32,
    /// Wait between a test spot and reading its reaction, minutes.
    pub test_spot_wait_min: u32,
}

impl Default for ProcedureSettings {
    fn default() -> Self {
        Self {
            numbing_min_contact_min: NUMBING_MIN_CONTACT_MIN_DEFAULT,
            numbing_max_contact_min: NUMBING_MAX_CONTACT_MIN_DEFAULT,
            test_spot_wait_min: TEST_SPOT_WAIT_MIN_DEFAULT,
        }
    }
}

impl ProcedureSettings {
    /// Checks the times: the minimum 1–120 min, the window's end at or after it and at
    /// most 240 min, the test spot's wait 0–180 min (read in the same session).
    ///
    /// # Errors
    /// Which time, and the range it must be in.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=120).contains(&self.numbing_min_contact_min) {
            return Err(format!(
                "numbing_min_contact_min {} refused: it must be 1 to 120 minutes",
                self.numbing_min_contact_min
            ));
        }
        if self.numbing_max_contact_min < self.numbing_min_contact_min
            || self.numbing_max_contact_min > 240
        {
            return Err(format!(
                "numbing_max_contact_min {} refused: it must be from the minimum ({}) to 240 \
                 minutes",
                self.numbing_max_contact_min, self.numbing_min_contact_min
            ));
        }
        // The reaction is read in the same session, and a step is never dated more
        // than 180 minutes back.
        if self.test_spot_wait_min > NUMBING_BACKDATE_MAX_MIN {
            return Err(format!(
                "test_spot_wait_min {} refused: it must be 0 to {NUMBING_BACKDATE_MAX_MIN} \
                 minutes",
                self.test_spot_wait_min
            ));
        }
        Ok(())
    }

    fn min_contact_ms(&self) -> i64 {
        i64::from(self.numbing_min_contact_min) * 60_000
    }

    fn max_contact_ms(&self) -> i64 {
        i64::from(self.numbing_max_contact_min) * 60_000
    }
}

/// What a step is. The ids are the record's `step` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The skin was cleansed.
    Cleansing,
    /// Numbing cream applied: product, lot, when.
    NumbingApplied,
    /// Numbing cream removed.
    NumbingRemoved,
    /// No numbing, with the reason.
    NoNumbing,
    /// A test spot: zone and depth.
    TestSpot,
    /// The test spot's reaction, read after the clinic's wait.
    TestSpotReaction,
    /// A serum or growth factor: product and lot.
    Serum,
    /// The lot of the cartridge in the pen (its id from the pen).
    CartridgeLot,
    /// Aftercare given to the client.
    AftercareGiven,
    /// Corrects an earlier step: voids it or replaces fields.
    Correction,
}

impl StepKind {
    /// Every kind, in the procedure's order.
    pub const ALL: [Self; 10] = [
        Self::Cleansing,
        Self::NumbingApplied,
        Self::NumbingRemoved,
        Self::NoNumbing,
        Self::TestSpot,
        Self::TestSpotReaction,
        Self::CartridgeLot,
        Self::Serum,
        Self::AftercareGiven,
        Self::Correction,
    ];

    /// The record's word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cleansing => "cleansing",
            Self::NumbingApplied => "numbing_applied",
            Self::NumbingRemoved => "numbing_removed",
            Self::NoNumbing => "no_numbing",
            Self::TestSpot => "test_spot",
            Self::TestSpotReaction => "test_spot_reaction",
            Self::Serum => "serum",
            Self::CartridgeLot => "cartridge_lot",
            Self::AftercareGiven => "aftercare_given",
            Self::Correction => "correction",
        }
    }

    /// For people: `numbing cream applied`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Cleansing => "cleansing",
            Self::NumbingApplied => "numbing cream applied",
            Self::NumbingRemoved => "numbing cream removed",
            Self::NoNumbing => "no numbing",
            Self::TestSpot => "test spot",
            Self::TestSpotReaction => "test spot reaction",
            Self::Serum => "serum / growth factor",
            Self::CartridgeLot => "cartridge lot",
            Self::AftercareGiven => "aftercare given",
            Self::Correction => "correction",
        }
    }

    /// The kind whose record word is `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Fields a step of this kind carries (and a correction of it may replace).
    #[must_use]
    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::NumbingApplied => &[Field::Product, Field::Lot, Field::At],
            Self::Serum => &[Field::Product, Field::Lot],
            Self::CartridgeLot => &[Field::Lot],
            Self::TestSpot => &[Field::Zone, Field::Depth, Field::At],
            Self::TestSpotReaction => &[Field::Reaction],
            // No numbing's reason is not replaced: void it, and record it again.
            Self::Cleansing | Self::NumbingRemoved | Self::AftercareGiven | Self::NoNumbing => {
                &[Field::At]
            }
            Self::Correction => &[],
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of a step, by name (what a correction replaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The product's name.
    Product,
    /// The lot number.
    Lot,
    /// When it happened.
    At,
    /// The test spot's zone.
    Zone,
    /// The test spot's depth.
    Depth,
    /// The reaction seen.
    Reaction,
}

impl Field {
    /// The name the console and the window use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Lot => "lot",
            Self::At => "at",
            Self::Zone => "zone",
            Self::Depth => "depth",
            Self::Reaction => "reaction",
        }
    }
}

/// One recorded step, as the record holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepEntry {
    /// 1, 2, ... in the order recorded in the session.
    pub number: u32,
    /// What it is (`None` only in a default value being built).
    pub kind: Option<StepKind>,
    /// When it happened, ms on the session's axis (a time stated earlier than the
    /// recording, for a numbing cream applied before the session opened).
    pub at_ms: i64,
    /// When it was recorded, ms on the session's axis.
    pub recorded_ms: i64,
    /// Who recorded it.
    pub by: String,
    /// Product name (numbing cream, serum).
    pub product: Option<String>,
    /// Lot number (numbing cream, serum, cartridge).
    pub lot: Option<String>,
    /// The cartridge's id, from the pen (cartridge lot).
    pub cartridge: Option<String>,
    /// The test spot's zone.
    pub zone: Option<ZoneId>,
    /// The test spot's depth, µm.
    pub depth_um: Option<i32>,
    /// The reaction seen at the test spot.
    pub reaction: Option<String>,
    /// Why (no numbing; a correction).
    pub reason: Option<String>,
    /// The step a correction corrects.
    pub corrects: Option<u32>,
    /// A correction that says the corrected step did not happen.
    pub void: bool,
    /// The client's lidocaine sensitivity was confirmed again before this numbing.
    pub lidocaine_confirmed: bool,
}

impl StepEntry {
    /// A new step of `kind`, at `now_ms` (its `number` is given when it is checked).
    #[must_use]
    pub fn new(kind: StepKind, now_ms: i64, by: &str) -> Self {
        Self {
            kind: Some(kind),
            at_ms: now_ms,
            recorded_ms: now_ms,
            by: by.to_owned(),
            ..Self::default()
        }
    }

    /// Its kind (a default entry is a cleansing).
    #[must_use]
    pub fn kind(&self) -> StepKind {
        self.kind.unwrap_or(StepKind::Cleansing)
    }

    /// The step in words, without its time: `numbing cream applied: EMLA, lot L-1`.
    #[must_use]
    pub fn describe(&self) -> String {
        let details = self.details();
        if details.is_empty() {
            self.kind().label().to_owned()
        } else {
            format!("{}: {details}", self.kind().label())
        }
    }

    /// Its fields in words, without its kind: `EMLA, lot L-1` (empty for a step that
    /// has none).
    #[must_use]
    pub fn details(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.corrects {
            parts.push(if self.void {
                format!("step {c} void")
            } else {
                format!("step {c}")
            });
        }
        if let Some(p) = &self.product {
            parts.push(p.clone());
        }
        if let Some(c) = &self.cartridge {
            parts.push(format!("cartridge {c}"));
        }
        if let Some(l) = &self.lot {
            parts.push(format!("lot {l}"));
        }
        if let Some(z) = self.zone {
            parts.push(z.as_str().to_owned());
        }
        if let Some(d) = self.depth_um {
            parts.push(super::interlock::mm(i64::from(d)));
        }
        if let Some(r) = &self.reaction {
            parts.push(format!("reaction: {r}"));
        }
        if let Some(r) = &self.reason {
            parts.push(format!("reason: {r}"));
        }
        if self.lidocaine_confirmed {
            parts.push("lidocaine sensitivity confirmed".to_owned());
        }
        parts.join(", ")
    }
}

/// A step as it stands after the corrections that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The step with every correction's replacements applied.
    pub step: StepEntry,
    /// The corrections applied to it, by number.
    pub corrected_by: Vec<u32>,
}

/// What the interlock needs of the procedure for a treatment start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preparation {
    /// Cleansing is recorded.
    pub cleansed: bool,
    /// Where the numbing stands.
    pub numbing: Numbing,
    /// A test spot was made and its reaction is not read yet.
    pub test_spot_unread: bool,
}

impl Preparation {
    /// Cleansing recorded and "no numbing" for `reason`: ready for a start.
    #[must_use]
    pub fn waived(reason: &str) -> Self {
        Self {
            cleansed: true,
            numbing: Numbing::Waived {
                reason: reason.to_owned(),
            },
            test_spot_unread: false,
        }
    }
}

/// Where the numbing stands, for the interlock (times as `Instant`s: it decides at its
/// own `now`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Numbing {
    /// Nothing recorded.
    #[default]
    NotRecorded,
    /// The cream is on.
    Applied {
        /// Since when.
        applied_at: Instant,
        /// The clinic's minimum contact time.
        min_contact: Duration,
    },
    /// The cream was on for `contact`, and is off.
    Removed {
        /// How long it was on.
        contact: Duration,
        /// The clinic's minimum contact time.
        min_contact: Duration,
    },
    /// "No numbing", with the operator's reason.
    Waived {
        /// Why.
        reason: String,
    },
}

/// What the station knows when it checks a new step.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// Now, ms on the session's axis.
    pub now_ms: i64,
    /// The clinic's times.
    pub settings: ProcedureSettings,
    /// `lidocaine_sensitivity` was confirmed at screening.
    pub lidocaine_sensitive: bool,
    /// The zone table in force (a test spot's depth is within its zone's limit).
    pub zones: &'a ZoneTable,
}

/// A step refused before it was recorded: why, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The client has a lidocaine sensitivity: the numbing needs a deliberate
    /// confirmation.
    #[error(
        "the client's lidocaine sensitivity was confirmed at screening: confirm it again \
         deliberately before the numbing cream is recorded"
    )]
    LidocaineConfirmationNeeded,
    /// Anything else: what and why.
    #[error("{0}")]
    Refused(String),
}

fn refused<T>(why: impl Into<String>) -> Result<T, StepError> {
    Err(StepError::Refused(why.into()))
}

/// The session's steps, in the order recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checklist {
    entries: Vec<StepEntry>,
}

impl Checklist {
    /// An empty checklist.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A checklist of recorded entries (a record read back): kept as they are, in
    /// their order, even where one would be refused now.
    #[must_use]
    pub fn from_entries(entries: Vec<StepEntry>) -> Self {
        Self { entries }
    }

    /// Every entry, corrections included, in the order recorded.
    #[must_use]
    pub fn entries(&self) -> &[StepEntry] {
        &self.entries
    }

    /// The number the next entry gets.
    #[must_use]
    pub fn next_number(&self) -> u32 {
        self.entries
            .last()
            .map_or(1, |e| e.number.saturating_add(1))
    }

    /// Checks `entry` and, when it may be recorded, numbers it and returns it; the
    /// caller records it, then [`Self::push`]es it.
    ///
    /// # Errors
    /// The step is refused: what is missing or wrong, in words.
    #[allow(clippy::too_many_lines)] // one rule per kind of step, in one match
    pub fn check_new(
        &self,
        mut entry: StepEntry,
        ctx: &StepContext<'_>,
    ) -> Result<StepEntry, StepError> {
        entry.number = self.next_number();
        check_texts(&entry)?;
        if entry.at_ms > ctx.now_ms {
            return refused("a step cannot be recorded as happening in the future");
        }
        // Any step: a time hours back is a typing mistake (or yesterday's), never a
        // step of this session.
        check_backdate(&entry, ctx)?;
        if entry.lidocaine_confirmed && !ctx.lidocaine_sensitive {
            return refused(
                "no lidocaine sensitivity was confirmed at screening for this client: leave \
                 the lidocaine confirmation out",
            );
        }
        let effective = self.effective();
        let kind = entry.kind();
        match kind {
            StepKind::Cleansing | StepKind::AftercareGiven => {}
            StepKind::NumbingApplied => {
                need(entry.product.as_ref(), "the numbing cream's product")?;
                need(entry.lot.as_ref(), "the numbing cream's lot")?;
                if ctx.lidocaine_sensitive && !entry.lidocaine_confirmed {
                    return Err(StepError::LidocaineConfirmationNeeded);
                }
            }
            StepKind::NumbingRemoved => {
                let on = numbing_steps(&effective)
                    .last()
                    .is_some_and(|s| s.kind() == StepKind::NumbingApplied);
                if !on {
                    return refused(
                        "no numbing cream is recorded as on: record its application first",
                    );
                }
            }
            StepKind::NoNumbing => {
                need(entry.reason.as_ref(), "the reason for no numbing")?;
                if let Some(on) = numbing_steps(&effective)
                    .last()
                    .filter(|s| s.kind() == StepKind::NumbingApplied)
                {
                    return refused(format!(
                        "numbing cream is recorded as on (step {}): record its removal, or \
                         void step {} if it was never applied, first",
                        on.number, on.number
                    ));
                }
            }
            StepKind::TestSpot => {
                let Some(zone) = entry.zone else {
                    return refused("a test spot needs its zone");
                };
                let Some(depth_um) = entry.depth_um else {
                    return refused("a test spot needs its depth");
                };
                let limit_um = ctx.zones.limit_um(zone);
                if depth_um <= 0 {
                    return refused("a test spot's depth must be above 0 mm");
                }
                if depth_um > limit_um {
                    return refused(format!(
                        "a test spot at {} in {zone} is refused: the zone's limit is {}",
                        super::interlock::mm(i64::from(depth_um)),
                        super::interlock::mm(i64::from(limit_um))
                    ));
                }
            }
            StepKind::TestSpotReaction => {
                need(entry.reaction.as_ref(), "the reaction seen")?;
                let Some(spot) = effective
                    .iter()
                    .rev()
                    .find(|e| e.step.kind() == StepKind::TestSpot)
                else {
                    return refused("no test spot is recorded: record the test spot first");
                };
                let ready_ms =
                    spot.step.at_ms + i64::from(ctx.settings.test_spot_wait_min) * 60_000;
                if ctx.now_ms < ready_ms {
                    return refused(format!(
                        "the test spot's reaction is read after the clinic's {} min wait: {} \
                         left",
                        ctx.settings.test_spot_wait_min,
                        countdown(ready_ms - ctx.now_ms)
                    ));
                }
            }
            StepKind::Serum => {
                need(entry.product.as_ref(), "the serum's product")?;
                need(entry.lot.as_ref(), "the serum's lot")?;
            }
            StepKind::CartridgeLot => {
                need(entry.cartridge.as_ref(), "a cartridge in the pen")?;
                need(entry.lot.as_ref(), "the cartridge's lot")?;
            }
            StepKind::Correction => self.check_correction(&entry, ctx)?,
        }
        if matches!(
            kind,
            StepKind::NumbingApplied | StepKind::NumbingRemoved | StepKind::Correction
        ) {
            // The steps as they would stand with this one: judged once, for both rules.
            let mut after = self.clone();
            after.push(entry.clone());
            let after = after.effective();
            check_numbing_order(&after)?;
            if kind == StepKind::Correction
                && last_spot(&after, ctx.settings) == SpotState::ReadEarly
            {
                return refused(format!(
                    "the test spot's reaction would then be read before the clinic's {} min \
                     wait: correct the reaction's time too, or void it",
                    ctx.settings.test_spot_wait_min
                ));
            }
        }
        Ok(entry)
    }

    fn check_correction(&self, entry: &StepEntry, ctx: &StepContext<'_>) -> Result<(), StepError> {
        need(entry.reason.as_ref(), "the reason for the correction")?;
        let Some(target_number) = entry.corrects else {
            return refused("a correction names the step it corrects");
        };
        let Some(target) = self.entries.iter().find(|e| e.number == target_number) else {
            return refused(format!("there is no step {target_number}"));
        };
        if target.kind() == StepKind::Correction {
            return refused(format!(
                "step {target_number} is a correction: correct step {} itself",
                target.corrects.unwrap_or(0)
            ));
        }
        if self.is_void(target_number) {
            return refused(format!("step {target_number} is already void"));
        }
        if entry.void {
            return Ok(());
        }
        let allowed = target.kind().fields();
        let given = given_fields(entry);
        if given.is_empty() {
            return refused(format!(
                "a correction of step {target_number} ({}) voids it or replaces one of: {}",
                target.kind().label(),
                field_list(allowed)
            ));
        }
        if let Some(bad) = given.iter().find(|f| !allowed.contains(f)) {
            return refused(format!(
                "step {target_number} ({}) has no {}; it has: {}",
                target.kind().label(),
                bad.as_str(),
                field_list(allowed)
            ));
        }
        // The step as it would stand is checked as a new one would be (a lidocaine
        // confirmation stands from the original).
        let mut corrected = self
            .effective_of(target_number)
            .unwrap_or_else(|| target.clone());
        apply_fields(&mut corrected, entry);
        corrected.lidocaine_confirmed |= target.lidocaine_confirmed;
        if corrected.kind() == StepKind::TestSpot
            && let (Some(zone), Some(depth_um)) = (corrected.zone, corrected.depth_um)
            && (depth_um <= 0 || depth_um > ctx.zones.limit_um(zone))
        {
            return refused(format!(
                "a test spot at {} in {zone} is refused: the zone's limit is {}",
                super::interlock::mm(i64::from(depth_um)),
                super::interlock::mm(i64::from(ctx.zones.limit_um(zone)))
            ));
        }
        check_backdate(&corrected, ctx)?;
        Ok(())
    }

    /// Adds a checked entry (or one read back from a record).
    pub fn push(&mut self, entry: StepEntry) {
        self.entries.push(entry);
    }

    fn is_void(&self, number: u32) -> bool {
        self.entries
            .iter()
            .any(|e| e.kind() == StepKind::Correction && e.corrects == Some(number) && e.void)
    }

    fn effective_of(&self, number: u32) -> Option<StepEntry> {
        self.effective()
            .into_iter()
            .find(|e| e.step.number == number)
            .map(|e| e.step)
    }

    /// The steps that stand, in the order recorded: corrections applied, void steps
    /// left out, corrections themselves not listed.
    #[must_use]
    pub fn effective(&self) -> Vec<Effective> {
        let mut out: Vec<Effective> = Vec::new();
        for entry in &self.entries {
            if entry.kind() != StepKind::Correction {
                out.push(Effective {
                    step: entry.clone(),
                    corrected_by: Vec::new(),
                });
                continue;
            }
            let Some(target) = entry.corrects else {
                continue;
            };
            if entry.void {
                out.retain(|e| e.step.number != target);
            } else if let Some(e) = out.iter_mut().find(|e| e.step.number == target) {
                apply_fields(&mut e.step, entry);
                e.corrected_by.push(entry.number);
            }
        }
        out
    }

    /// What a start needs of the procedure, for the interlock. `opened` is the
    /// session's opening instant (its axis' zero).
    #[must_use]
    pub fn preparation(&self, opened: Instant, settings: ProcedureSettings) -> Preparation {
        let effective = self.effective();
        let cleansed = effective
            .iter()
            .any(|e| e.step.kind() == StepKind::Cleansing);
        let min_contact =
            Duration::from_millis(u64::try_from(settings.min_contact_ms()).unwrap_or(0));
        let steps = numbing_steps(&effective);
        let numbing = match steps.last().map(|s| s.kind()) {
            None => Numbing::NotRecorded,
            Some(StepKind::NoNumbing) => Numbing::Waived {
                reason: steps
                    .last()
                    .and_then(|s| s.reason.clone())
                    .unwrap_or_default(),
            },
            Some(StepKind::NumbingApplied) => Numbing::Applied {
                applied_at: at_instant(opened, steps.last().map_or(0, |s| s.at_ms)),
                min_contact,
            },
            Some(_) => {
                // Removed: the application is the one just before it.
                let removed = steps.last().map_or(0, |s| s.at_ms);
                let applied = steps
                    .iter()
                    .rev()
                    .find(|s| s.kind() == StepKind::NumbingApplied)
                    .map_or(removed, |s| s.at_ms);
                Numbing::Removed {
                    contact: Duration::from_millis(
                        u64::try_from(removed.saturating_sub(applied)).unwrap_or(0),
                    ),
                    min_contact,
                }
            }
        };
        let test_spot_unread = matches!(
            last_spot(&effective, settings),
            SpotState::Unread | SpotState::ReadEarly
        );
        Preparation {
            cleansed,
            numbing,
            test_spot_unread,
        }
    }

    /// The checklist for the screen and the console, at `now_ms`.
    #[must_use]
    pub fn items(&self, now_ms: i64, settings: ProcedureSettings) -> Vec<Item> {
        let effective = self.effective();
        let find = |kind: StepKind| {
            effective
                .iter()
                .rev()
                .find(|e| e.step.kind() == kind)
                .map(|e| e.step.clone())
        };
        let mut items = vec![Item::from_step(
            "Cleansing",
            find(StepKind::Cleansing).as_ref(),
            true,
        )];
        items.push(numbing_item(&effective, now_ms, settings));
        let spot = find(StepKind::TestSpot);
        let reaction = find(StepKind::TestSpotReaction);
        items.push(match (&spot, &reaction) {
            (None, _) => Item::pending("Test spot (optional)", false, String::new()),
            (Some(spot), Some(reaction)) => Item::done(
                "Test spot",
                reaction.at_ms,
                format!("{}; {}", spot.describe(), reaction.describe()),
            ),
            (Some(spot), None) => {
                let ready = spot.at_ms + i64::from(settings.test_spot_wait_min) * 60_000;
                Item {
                    label: "Test spot".to_owned(),
                    state: if now_ms < ready {
                        ItemState::Waiting {
                            remaining_ms: ready - now_ms,
                        }
                    } else {
                        ItemState::Ready
                    },
                    detail: format!("{}; reaction not read yet", spot.describe()),
                    at_ms: Some(spot.at_ms),
                    required: false,
                }
            }
        });
        items.push(every_item(
            "Cartridge lot",
            &effective,
            StepKind::CartridgeLot,
        ));
        items.push(every_item(
            "Serums / growth factors",
            &effective,
            StepKind::Serum,
        ));
        items.push(Item::from_step(
            "Aftercare given",
            find(StepKind::AftercareGiven).as_ref(),
            false,
        ));
        items
    }

    /// The products and lots that stand (numbing creams, serums, cartridges), in the
    /// order recorded.
    #[must_use]
    pub fn lots(&self) -> Vec<LotUse> {
        self.effective()
            .into_iter()
            .filter_map(|e| {
                let kind = match e.step.kind() {
                    StepKind::NumbingApplied => LotKind::NumbingCream,
                    StepKind::Serum => LotKind::Serum,
                    StepKind::CartridgeLot => LotKind::Cartridge,
                    _ => return None,
                };
                Some(LotUse {
                    kind,
                    product: e.step.product.or(e.step.cartridge).unwrap_or_default(),
                    lot: e.step.lot.unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// What a lot was of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotKind {
    /// A numbing cream.
    NumbingCream,
    /// A serum or growth factor.
    Serum,
    /// A needle cartridge.
    Cartridge,
}

impl LotKind {
    /// The record's word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NumbingCream => "numbing_cream",
            Self::Serum => "serum",
            Self::Cartridge => "cartridge",
        }
    }
}

/// A product's lot used in a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LotUse {
    /// What it is.
    pub kind: LotKind,
    /// The product's name, or the cartridge's id.
    pub product: String,
    /// The lot number.
    pub lot: String,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `Cleansing`, `Numbing cream`, ...
    pub label: String,
    /// Where it stands.
    pub state: ItemState,
    /// What was recorded, in words.
    pub detail: String,
    /// When, ms on the session's axis.
    pub at_ms: Option<i64>,
    /// Needed before the needle starts.
    pub required: bool,
}

/// Where a checklist line stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemState {
    /// Not recorded.
    Pending,
    /// Counting down to a time (the numbing's minimum contact, the test spot's wait).
    Waiting {
        /// Left, ms.
        remaining_ms: i64,
    },
    /// Its time is reached; the next action is due (remove the cream, read the spot).
    Ready,
    /// Past the numbing window's end.
    Overdue,
    /// Done.
    Done,
    /// Waived: no numbing, with the reason in `detail`.
    Waived,
}

impl Item {
    fn pending(label: &str, required: bool, detail: String) -> Self {
        Self {
            label: label.to_owned(),
            state: ItemState::Pending,
            detail,
            at_ms: None,
            required,
        }
    }

    fn done(label: &str, at_ms: i64, detail: String) -> Self {
        Self {
            label: label.to_owned(),
            state: ItemState::Done,
            detail,
            at_ms: Some(at_ms),
            required: false,
        }
    }

    fn from_step(label: &str, step: Option<&StepEntry>, required: bool) -> Self {
        match step {
            Some(s) => Self {
                required,
                ..Self::done(label, s.at_ms, s.details())
            },
            None => Self::pending(label, required, String::new()),
        }
    }
}

/// A line for a step that may be recorded several times (lots, serums): every one of
/// them, the time of the last.
fn every_item(label: &str, effective: &[Effective], kind: StepKind) -> Item {
    let steps: Vec<&StepEntry> = effective
        .iter()
        .map(|e| &e.step)
        .filter(|s| s.kind() == kind)
        .collect();
    Item {
        label: label.to_owned(),
        state: if steps.is_empty() {
            ItemState::Pending
        } else {
            ItemState::Done
        },
        detail: steps
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join("; "),
        at_ms: steps.last().map(|s| s.at_ms),
        required: false,
    }
}

fn numbing_item(effective: &[Effective], now_ms: i64, settings: ProcedureSettings) -> Item {
    let steps = numbing_steps(effective);
    let window = format!(
        "minimum {} min, window {}–{} min",
        settings.numbing_min_contact_min,
        settings.numbing_min_contact_min,
        settings.numbing_max_contact_min
    );
    let mut item = Item::pending("Numbing cream", true, window.clone());
    let Some(last) = steps.last() else {
        return item;
    };
    item.at_ms = Some(last.at_ms);
    match last.kind() {
        StepKind::NoNumbing => {
            item.state = ItemState::Waived;
            item.detail = last.describe();
        }
        StepKind::NumbingApplied => {
            let on_ms = now_ms - last.at_ms;
            item.state = if on_ms < settings.min_contact_ms() {
                ItemState::Waiting {
                    remaining_ms: settings.min_contact_ms() - on_ms,
                }
            } else if on_ms > settings.max_contact_ms() {
                ItemState::Overdue
            } else {
                ItemState::Ready
            };
            item.detail = format!(
                "{}; on for {} ({window}); record its removal before needling",
                last.details(),
                countdown(on_ms)
            );
        }
        _ => {
            let applied = steps
                .iter()
                .rev()
                .find(|s| s.kind() == StepKind::NumbingApplied);
            let contact_ms = applied.map_or(0, |a| last.at_ms - a.at_ms);
            item.state = if contact_ms < settings.min_contact_ms() {
                ItemState::Pending
            } else if contact_ms > settings.max_contact_ms() {
                ItemState::Overdue
            } else {
                ItemState::Done
            };
            let product = applied.map(|a| a.details()).unwrap_or_default();
            item.detail = if contact_ms < settings.min_contact_ms() {
                format!(
                    "{product}; removed after {}, under the {} min minimum: apply again, or \
                     record no numbing with a reason",
                    countdown(contact_ms),
                    settings.numbing_min_contact_min
                )
            } else if contact_ms > settings.max_contact_ms() {
                format!(
                    "{product}; contact {}, longer than the window's {} min: a caution for \
                     the record",
                    countdown(contact_ms),
                    settings.numbing_max_contact_min
                )
            } else {
                format!("{product}; contact {} ({window})", countdown(contact_ms))
            };
        }
    }
    item
}

/// The numbing steps that stand, in order.
fn numbing_steps(effective: &[Effective]) -> Vec<&StepEntry> {
    effective
        .iter()
        .map(|e| &e.step)
        .filter(|s| {
            matches!(
                s.kind(),
                StepKind::NumbingApplied | StepKind::NumbingRemoved | StepKind::NoNumbing
            )
        })
        .collect()
}

fn at_instant(opened: Instant, at_ms: i64) -> Instant {
    let offset = Duration::from_millis(at_ms.unsigned_abs());
    if at_ms >= 0 {
        opened.checked_add(offset).unwrap_or(opened)
    } else {
        opened.checked_sub(offset).unwrap_or(opened)
    }
}

fn need(value: Option<&String>, what: &str) -> Result<(), StepError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(()),
        _ => refused(format!("{what} is missing")),
    }
}

fn check_backdate(entry: &StepEntry, ctx: &StepContext<'_>) -> Result<(), StepError> {
    if ctx.now_ms - entry.at_ms > i64::from(NUMBING_BACKDATE_MAX_MIN) * 60_000 {
        return refused(format!(
            "a step more than {NUMBING_BACKDATE_MAX_MIN} min ago cannot be recorded: check \
             the time"
        ));
    }
    Ok(())
}

/// Where the last test spot that stands is, as the steps stand after corrections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpotState {
    /// No test spot stands.
    None,
    /// Its reaction is not read.
    Unread,
    /// Its reaction was read before the clinic's wait had passed (a spot's time moved
    /// later by a correction can do that).
    ReadEarly,
    /// Its reaction was read after the wait.
    Read,
}

fn last_spot(effective: &[Effective], settings: ProcedureSettings) -> SpotState {
    let wait_ms = i64::from(settings.test_spot_wait_min) * 60_000;
    let mut state = SpotState::None;
    let mut spot_at = 0;
    for e in effective {
        match e.step.kind() {
            StepKind::TestSpot => {
                spot_at = e.step.at_ms;
                state = SpotState::Unread;
            }
            StepKind::TestSpotReaction if state != SpotState::None => {
                state = if e.step.at_ms >= spot_at + wait_ms {
                    SpotState::Read
                } else {
                    SpotState::ReadEarly
                };
            }
            _ => {}
        }
    }
    state
}

/// Each removal of the numbing cream after the application it ends.
fn check_numbing_order(effective: &[Effective]) -> Result<(), StepError> {
    let mut applied: Option<&StepEntry> = None;
    for step in numbing_steps(effective) {
        match step.kind() {
            StepKind::NumbingApplied => applied = Some(step),
            StepKind::NumbingRemoved => {
                if let Some(a) = applied
                    && step.at_ms < a.at_ms
                {
                    return refused(format!(
                        "the removal (step {}) would be {} before the application it ends \
                         (step {}): check the times",
                        step.number,
                        countdown(a.at_ms - step.at_ms),
                        a.number
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_texts(entry: &StepEntry) -> Result<(), StepError> {
    let texts = [
        ("product", entry.product.as_ref(), TEXT_MAX_CHARS),
        ("lot", entry.lot.as_ref(), LOT_MAX_CHARS),
        ("reaction", entry.reaction.as_ref(), TEXT_MAX_CHARS),
        ("reason", entry.reason.as_ref(), TEXT_MAX_CHARS),
    ];
    for (what, text, max) in texts {
        let Some(text) = text else { continue };
        if text.chars().count() > max {
            return refused(format!("the {what} is longer than {max} characters"));
        }
        if text.chars().any(char::is_control) {
            return refused(format!("the {what} holds a control character"));
        }
        if text.trim().is_empty() {
            return refused(format!("the {what} is empty"));
        }
        if text.trim() != text {
            return refused(format!("the {what} begins or ends with a space"));
        }
    }
    Ok(())
}

fn given_fields(entry: &StepEntry) -> Vec<Field> {
    let mut given = Vec::new();
    if entry.product.is_some() {
        given.push(Field::Product);
    }
    if entry.lot.is_some() {
        given.push(Field::Lot);
    }
    if entry.zone.is_some() {
        given.push(Field::Zone);
    }
    if entry.depth_um.is_some() {
        given.push(Field::Depth);
    }
    if entry.reaction.is_some() {
        given.push(Field::Reaction);
    }
    // A correction's own `at_ms` is when it was recorded; a replaced time differs.
    if entry.at_ms != entry.recorded_ms {
        given.push(Field::At);
    }
    given
}

fn apply_fields(step: &mut StepEntry, correction: &StepEntry) {
    if let Some(p) = &correction.product {
        step.product = Some(p.clone());
    }
    if let Some(l) = &correction.lot {
        step.lot = Some(l.clone());
    }
    if let Some(z) = correction.zone {
        step.zone = Some(z);
    }
    if let Some(d) = correction.depth_um {
        step.depth_um = Some(d);
    }
    if let Some(r) = &correction.reaction {
        step.reaction = Some(r.clone());
    }
    if correction.at_ms != correction.recorded_ms {
        step.at_ms = correction.at_ms;
    }
}

fn field_list(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `m:ss` for a span of ms, to the nearest second (negative spans as 0:00).
#[must_use]
pub fn countdown(ms: i64) -> String {
    let secs = (ms.max(0) + 500) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
#[path = "procedure_tests.rs"]
mod tests;
