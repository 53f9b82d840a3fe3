use jiff::civil::date;

use super::*;
use crate::safety::procedure::{LotKind, LotUse};
use crate::safety::zones::ZoneId;
use crate::station::session::ZoneFiguresOut;

const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\"";

fn summary() -> SessionSummary {
    SessionSummary {
        session_id: "20261130T101500-C-0042-1abc".into(),
        client: "C-0042".into(),
        zones: vec![ZoneFiguresOut {
            zone: ZoneId::Cheeks,
            passes: 3,
            needling_ms: 754_000,
            max_depth_um: 800,
            refusals: 0,
        }],
        needling_ms: 754_000,
        refusals: 0,
        interruptions: 0,
        aftercare: crate::safety::aftercare::aftercare_lines()
            .iter()
            .map(|l| (*l).to_owned())
            .collect(),
        next_earliest: date(2026, 12, 30),
        next_latest: None,
        next_advice: "Next session from 2026-12-30 (acne scars: ...).".into(),
        course: Some("acne scars: session 2 of 3–6; next from 2026-12-30".into()),
        date: date(2026, 11, 30),
        practitioner: "P-7".into(),
        indication: "acne_scars".into(),
        lots: vec![LotUse {
            kind: LotKind::Serum,
            product: HOSTILE.into(),
            lot: "S-<b>1</b>".into(),
        }],
        steps: vec![("10:02".into(), format!("note {HOSTILE}"))],
    }
}

#[test]
fn the_pages_carry_what_the_client_needs() {
    let s = summary();
    let page = aftercare_page(&s, Some("Clinique du Parc"));
    for needed in [
        "Clinique du Parc",
        "C-0042",
        "2026-11-30",
        "cheeks",
        "sunscreen from 24 h on",
        "Next session: from 2026-12-30",
        "acne scars: session 2 of 3–6",
        "@page{size:A4",
    ] {
        assert!(page.contains(needed), "{needed}");
    }
    let page = summary_page(&s, None);
    for needed in [
        "Punctum",
        "Session summary",
        "12:34 min",
        "0.80 mm",
        "10:02",
    ] {
        assert!(page.contains(needed), "{needed}");
    }
}

#[test]
fn hostile_text_is_escaped_by_construction() {
    let s = summary();
    for page in [
        aftercare_page(&s, Some(HOSTILE)),
        summary_page(&s, Some(HOSTILE)),
    ] {
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>1</b>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quoted&quot;"));
    }
}

#[test]
fn handouts_are_owner_only_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = crate::store::DataDir::open(tmp.path().join("data")).expect("data");
    let s = summary();
    let (a1, p1) = write_handouts(&data, &s, None).expect("written");
    let first = std::fs::read(&a1).expect("read");
    let (a2, p2) = write_handouts(&data, &s, Some("Other")).expect("written again");
    assert_ne!(a1, a2);
    assert_ne!(p1, p2);
    assert!(a2.to_string_lossy().ends_with("_aftercare-2.html"));
    assert_eq!(std::fs::read(&a1).expect("read"), first);
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&a1), 0o600);
    assert_eq!(mode(&data.path(HANDOUTS_DIR)), 0o700);
}
