use super::*;

const MIN: i64 = 60_000;

fn ctx(zones: &ZoneTable, now_ms: i64) -> StepContext<'_> {
    StepContext {
        now_ms,
        settings: ProcedureSettings::default(),
        lidocaine_sensitive: false,
        zones,
    }
}

fn record(list: &mut Checklist, entry: StepEntry, ctx: &StepContext<'_>) -> u32 {
    let entry = list.check_new(entry, ctx).expect("accepted");
    let number = entry.number;
    list.push(entry);
    number
}

fn numbing(at_ms: i64, now_ms: i64) -> StepEntry {
    StepEntry {
        product: Some("EMLA 5%".into()),
        lot: Some("L-2291".into()),
        at_ms,
        ..StepEntry::new(StepKind::NumbingApplied, now_ms, "P-1")
    }
}

#[test]
fn preparation_follows_the_steps_and_their_times() {
    let zones = ZoneTable::builtin();
    let opened = Instant::now();
    let settings = ProcedureSettings::default();
    let mut list = Checklist::new();
    assert_eq!(
        list.preparation(opened, settings),
        Preparation {
            cleansed: false,
            numbing: Numbing::NotRecorded,
            test_spot_unread: false,
        }
    );
    record(
        &mut list,
        StepEntry::new(StepKind::Cleansing, 1000, "P-1"),
        &ctx(&zones, 1000),
    );
    // Applied 5 minutes before the session opened (stated time).
    record(&mut list, numbing(-5 * MIN, 2000), &ctx(&zones, 2000));
    let prep = list.preparation(opened, settings);
    assert!(prep.cleansed);
    match prep.numbing {
        Numbing::Applied {
            applied_at,
            min_contact,
        } => {
            assert_eq!(opened.duration_since(applied_at), Duration::from_mins(5));
            assert_eq!(min_contact, Duration::from_mins(20));
        }
        other => panic!("{other:?}"),
    }
    record(
        &mut list,
        StepEntry::new(StepKind::NumbingRemoved, 17 * MIN, "P-1"),
        &ctx(&zones, 17 * MIN),
    );
    assert_eq!(
        list.preparation(opened, settings).numbing,
        Numbing::Removed {
            contact: Duration::from_mins(22),
            min_contact: Duration::from_mins(20)
        }
    );
}

#[test]
fn a_correction_is_a_later_line_and_the_earlier_stays() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    let c = ctx(&zones, 10 * MIN);
    let numbing_no = record(&mut list, numbing(0, 10 * MIN), &c);
    // The lot was mistyped: replaced.
    let fix = StepEntry {
        corrects: Some(numbing_no),
        lot: Some("L-2292".into()),
        reason: Some("lot mistyped".into()),
        ..StepEntry::new(StepKind::Correction, 11 * MIN, "P-1")
    };
    let fix_no = record(&mut list, fix, &ctx(&zones, 11 * MIN));
    assert_eq!(list.entries().len(), 2);
    assert_eq!(list.entries()[0].lot.as_deref(), Some("L-2291"));
    let effective = list.effective();
    assert_eq!(effective.len(), 1);
    assert_eq!(effective[0].step.lot.as_deref(), Some("L-2292"));
    assert_eq!(effective[0].corrected_by, vec![fix_no]);
    assert_eq!(list.lots()[0].lot, "L-2292");
    // Voided: gone from what stands, on file still.
    let void = StepEntry {
        corrects: Some(numbing_no),
        void: true,
        reason: Some("recorded for the wrong client".into()),
        ..StepEntry::new(StepKind::Correction, 12 * MIN, "P-1")
    };
    record(&mut list, void, &ctx(&zones, 12 * MIN));
    assert!(list.effective().is_empty());
    assert_eq!(list.entries().len(), 3);
    assert_eq!(
        list.preparation(Instant::now(), ProcedureSettings::default())
            .numbing,
        Numbing::NotRecorded
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one table of refusals reads best whole
fn refusals_say_what_and_why() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    let c = ctx(&zones, 30 * MIN);
    let refused = |list: &Checklist, entry: StepEntry| match list.check_new(entry, &c) {
        Err(e) => e.to_string(),
        Ok(e) => panic!("accepted {e:?}"),
    };
    let cases: Vec<(StepEntry, &str)> = vec![
        (
            StepEntry {
                lot: None,
                ..numbing(0, 0)
            },
            "the numbing cream's lot is missing",
        ),
        (
            StepEntry {
                lot: Some("  ".into()),
                ..numbing(0, 0)
            },
            "the lot is empty",
        ),
        (
            StepEntry {
                lot: Some(" L-1".into()),
                ..numbing(0, 0)
            },
            "the lot begins or ends with a space",
        ),
        (
            StepEntry::new(StepKind::Cleansing, 30 * MIN - 181 * MIN, "P"),
            "a step more than 180 min ago cannot be recorded",
        ),
        (
            StepEntry {
                lidocaine_confirmed: true,
                ..numbing(0, 0)
            },
            "no lidocaine sensitivity was confirmed at screening",
        ),
        (
            StepEntry {
                zone: Some(ZoneId::Cheeks),
                depth_um: Some(-10),
                ..StepEntry::new(StepKind::TestSpot, 0, "P")
            },
            "depth must be above 0 mm",
        ),
        (
            StepEntry {
                lot: Some("L\u{7}1".into()),
                ..numbing(0, 0)
            },
            "control character",
        ),
        (
            StepEntry {
                lot: Some("L".repeat(41)),
                ..numbing(0, 0)
            },
            "longer than 40",
        ),
        (numbing(31 * MIN, 0), "in the future"),
        (
            numbing(30 * MIN - 181 * MIN, 0),
            "more than 180 min ago cannot be recorded",
        ),
        (
            StepEntry::new(StepKind::NumbingRemoved, 0, "P"),
            "no numbing cream is recorded as on",
        ),
        (
            StepEntry::new(StepKind::NoNumbing, 0, "P"),
            "the reason for no numbing is missing",
        ),
        (
            StepEntry {
                zone: Some(ZoneId::Periorbital),
                depth_um: Some(500),
                ..StepEntry::new(StepKind::TestSpot, 0, "P")
            },
            "a test spot at 0.50 mm in periorbital is refused: the zone's limit is 0.30 mm",
        ),
        (
            StepEntry {
                reaction: Some("none".into()),
                ..StepEntry::new(StepKind::TestSpotReaction, 0, "P")
            },
            "no test spot is recorded",
        ),
        (
            StepEntry {
                lot: Some("C-9".into()),
                ..StepEntry::new(StepKind::CartridgeLot, 0, "P")
            },
            "a cartridge in the pen is missing",
        ),
        (
            StepEntry {
                corrects: Some(7),
                void: true,
                reason: Some("x".into()),
                ..StepEntry::new(StepKind::Correction, 0, "P")
            },
            "there is no step 7",
        ),
    ];
    for (entry, expected) in cases {
        let why = refused(&list, entry);
        assert!(why.contains(expected), "{why} / {expected}");
    }
    // A correction replacing a field its step does not have.
    let n = record(&mut list, StepEntry::new(StepKind::Cleansing, 0, "P"), &c);
    let why = refused(
        &list,
        StepEntry {
            corrects: Some(n),
            lot: Some("L".into()),
            reason: Some("x".into()),
            ..StepEntry::new(StepKind::Correction, 0, "P")
        },
    );
    assert!(why.contains("has no lot; it has: at"), "{why}");
}

#[test]
fn lidocaine_sensitivity_needs_a_deliberate_confirmation() {
    let zones = ZoneTable::builtin();
    let list = Checklist::new();
    let c = StepContext {
        lidocaine_sensitive: true,
        ..ctx(&zones, MIN)
    };
    assert_eq!(
        list.check_new(numbing(0, MIN), &c),
        Err(StepError::LidocaineConfirmationNeeded)
    );
    let confirmed = StepEntry {
        lidocaine_confirmed: true,
        ..numbing(0, MIN)
    };
    let entry = list.check_new(confirmed, &c).expect("confirmed");
    assert!(entry.describe().contains("lidocaine sensitivity confirmed"));
}

#[test]
fn the_test_spot_reaction_waits_for_the_clinics_time() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    record(
        &mut list,
        StepEntry {
            zone: Some(ZoneId::Cheeks),
            depth_um: Some(500),
            ..StepEntry::new(StepKind::TestSpot, 0, "P")
        },
        &ctx(&zones, 0),
    );
    let reaction = |now| StepEntry {
        reaction: Some("mild erythema".into()),
        ..StepEntry::new(StepKind::TestSpotReaction, now, "P")
    };
    let why = list
        .check_new(reaction(10 * MIN), &ctx(&zones, 10 * MIN))
        .expect_err("too early")
        .to_string();
    assert!(why.contains("15 min wait: 5:00 left"), "{why}");
    let items = list.items(10 * MIN, ProcedureSettings::default());
    assert_eq!(
        items[2].state,
        ItemState::Waiting {
            remaining_ms: 5 * MIN
        }
    );
    record(&mut list, reaction(15 * MIN), &ctx(&zones, 15 * MIN));
    assert_eq!(
        list.items(15 * MIN, ProcedureSettings::default())[2].state,
        ItemState::Done
    );
}

#[test]
fn the_numbing_countdown_runs_to_the_window() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    record(&mut list, numbing(0, 0), &ctx(&zones, 0));
    let settings = ProcedureSettings::default();
    let state = |now| list.items(now, settings)[1].state.clone();
    assert_eq!(
        state(MIN + 30_000),
        ItemState::Waiting {
            remaining_ms: 18 * MIN + 30_000
        }
    );
    assert_eq!(state(20 * MIN), ItemState::Ready);
    assert_eq!(state(41 * MIN), ItemState::Overdue);
    assert!(
        list.items(MIN, settings)[1]
            .detail
            .contains("minimum 20 min, window 20–40 min")
    );
}

#[test]
fn settings_out_of_range_are_refused() {
    let bad = [
        ProcedureSettings {
            numbing_min_contact_min: 0,
            ..ProcedureSettings::default()
        },
        ProcedureSettings {
            numbing_max_contact_min: 10,
            ..ProcedureSettings::default()
        },
        ProcedureSettings {
            test_spot_wait_min: 3000,
            ..ProcedureSettings::default()
        },
    ];
    for s in bad {
        assert!(s.check().is_err(), "{s:?}");
    }
    assert_eq!(ProcedureSettings::default().check(), Ok(()));
}

#[test]
fn the_numbing_is_not_waived_nor_removed_out_of_order() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    let c = ctx(&zones, 30 * MIN);
    let applied = record(&mut list, numbing(10 * MIN, 30 * MIN), &c);
    // No numbing over a cream recorded as on.
    let why = list
        .check_new(
            StepEntry {
                reason: Some("changed mind".into()),
                ..StepEntry::new(StepKind::NoNumbing, 30 * MIN, "P")
            },
            &c,
        )
        .expect_err("the cream is on")
        .to_string();
    assert!(why.contains("recorded as on (step 1)"), "{why}");
    // A removal stated before the application.
    let early = StepEntry {
        at_ms: 5 * MIN,
        ..StepEntry::new(StepKind::NumbingRemoved, 30 * MIN, "P")
    };
    let why = list.check_new(early, &c).expect_err("before").to_string();
    assert!(why.contains("5:00 before the application"), "{why}");
    let removed = record(
        &mut list,
        StepEntry::new(StepKind::NumbingRemoved, 30 * MIN, "P"),
        &c,
    );
    // A correction that would move the application after its removal.
    let why = list
        .check_new(
            StepEntry {
                corrects: Some(applied),
                at_ms: 29 * MIN + 59_000,
                recorded_ms: 30 * MIN,
                reason: Some("typo".into()),
                ..StepEntry::new(StepKind::Correction, 30 * MIN, "P")
            },
            &ctx(&zones, 30 * MIN),
        )
        .map(|_| ())
        .err();
    // 29:59 is before the removal at 30:00: allowed; the removal moved earlier is not.
    assert_eq!(why, None);
    let why = list
        .check_new(
            StepEntry {
                corrects: Some(removed),
                at_ms: 9 * MIN,
                recorded_ms: 30 * MIN,
                reason: Some("typo".into()),
                ..StepEntry::new(StepKind::Correction, 30 * MIN, "P")
            },
            &c,
        )
        .expect_err("removal before application")
        .to_string();
    assert!(why.contains("before the application"), "{why}");
    // An empty product through a correction is refused as a new step's would be.
    let why = list
        .check_new(
            StepEntry {
                corrects: Some(applied),
                product: Some(String::new()),
                reason: Some("x".into()),
                ..StepEntry::new(StepKind::Correction, 30 * MIN, "P")
            },
            &c,
        )
        .expect_err("empty")
        .to_string();
    assert!(why.contains("the product is empty"), "{why}");
}

#[test]
fn a_test_spot_unread_holds_the_needle_and_a_long_contact_is_said() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    record(
        &mut list,
        StepEntry {
            zone: Some(ZoneId::Cheeks),
            depth_um: Some(500),
            ..StepEntry::new(StepKind::TestSpot, 0, "P")
        },
        &ctx(&zones, 0),
    );
    let settings = ProcedureSettings::default();
    assert!(list.preparation(Instant::now(), settings).test_spot_unread);
    record(
        &mut list,
        StepEntry {
            reaction: Some("none".into()),
            ..StepEntry::new(StepKind::TestSpotReaction, 20 * MIN, "P")
        },
        &ctx(&zones, 20 * MIN),
    );
    assert!(!list.preparation(Instant::now(), settings).test_spot_unread);
    // 50 minutes of contact: done, but past the window's end, and said.
    record(
        &mut list,
        numbing(20 * MIN, 20 * MIN),
        &ctx(&zones, 20 * MIN),
    );
    record(
        &mut list,
        StepEntry::new(StepKind::NumbingRemoved, 70 * MIN, "P"),
        &ctx(&zones, 70 * MIN),
    );
    let item = &list.items(70 * MIN, settings)[1];
    assert_eq!(item.state, ItemState::Overdue);
    assert!(
        item.detail.contains("longer than the window's 40 min"),
        "{}",
        item.detail
    );
}

#[test]
fn a_spots_time_corrected_later_cannot_leave_its_reaction_early() {
    let zones = ZoneTable::builtin();
    let mut list = Checklist::new();
    let spot = record(
        &mut list,
        StepEntry {
            zone: Some(ZoneId::Cheeks),
            depth_um: Some(500),
            ..StepEntry::new(StepKind::TestSpot, 0, "P")
        },
        &ctx(&zones, 0),
    );
    record(
        &mut list,
        StepEntry {
            reaction: Some("none".into()),
            ..StepEntry::new(StepKind::TestSpotReaction, 30 * MIN, "P")
        },
        &ctx(&zones, 30 * MIN),
    );
    let settings = ProcedureSettings::default();
    assert!(!list.preparation(Instant::now(), settings).test_spot_unread);
    // The spot "was made just now": its reaction would come before the wait.
    let later = StepEntry {
        corrects: Some(spot),
        at_ms: 30 * MIN,
        recorded_ms: 31 * MIN,
        reason: Some("typed the wrong time".into()),
        ..StepEntry::new(StepKind::Correction, 31 * MIN, "P")
    };
    let why = list
        .check_new(later.clone(), &ctx(&zones, 31 * MIN))
        .expect_err("refused")
        .to_string();
    assert!(why.contains("before the clinic's 15 min wait"), "{why}");
    // And were such a line in a record, the interlock would still hold the needle.
    let mut forced = list.clone();
    forced.push(StepEntry { number: 3, ..later });
    assert!(
        forced
            .preparation(Instant::now(), settings)
            .test_spot_unread
    );
}
