//! The generator, sample by sample, against IEC 60601-1-8's ranges: read back with the
//! same analysis the end-to-end tests use on a real sound server's output.

use super::*;
use crate::sound::analysis::{Pulse, ms, pulses};

/// A floor well above rounding noise and far below any pulse.
const FLOOR: f64 = 200.0;

fn within(value: f64, range: std::ops::RangeInclusive<f64>, what: &str) {
    assert!(
        range.contains(&value),
        "{what}: {value:.1} not in {range:?}"
    );
}

/// The spacings between consecutive pulses at the 50 % points, ms.
fn spacings_50(found: &[Pulse]) -> Vec<f64> {
    found
        .windows(2)
        .map(|w| ms(w[1].start_50 - w[0].end_50))
        .collect()
}

#[test]
fn the_high_burst_is_10_pulses_3_2_pause_3_2_within_the_standard() {
    let samples = render(&HIGH, 100);
    let found = pulses(&samples, FLOOR);
    assert_eq!(found.len(), 10, "{found:#?}");
    for p in &found {
        within(ms(p.duration_50()), 75.0..=200.0, "pulse duration");
        within(
            ms(p.end_10 - p.start_10),
            75.0..=200.0,
            "pulse duration at 10 %",
        );
    }
    let spacings = spacings_50(&found);
    let td = ms(found[0].duration_50());
    let ts = spacings[0];
    for (i, &s) in spacings.iter().enumerate() {
        match i + 1 {
            // After the 3rd and the 8th: 2 × spacing + pulse duration.
            3 | 8 => within(
                s,
                (2.0 * ts + td - 2.0)..=(2.0 * ts + td + 2.0),
                "wide spacing",
            ),
            5 => within(s, 350.0..=1300.0, "pause between the 5th and 6th"),
            _ => within(s, 50.0..=125.0, "spacing"),
        }
    }
    // The burst repeats: the rest of the period is silence, 2.5 to 15 s.
    let last_end = found[9].end_50;
    within(
        ms(samples.len() - last_end),
        2500.0..=15_000.0,
        "interburst",
    );
    assert_eq!(HIGH.period_ms(), Some(HIGH.burst_ms() + HIGH_INTERBURST_MS));
}

#[test]
fn medium_is_3_pulses_and_low_2_once() {
    let medium = pulses(&render(&MEDIUM, 100), FLOOR);
    assert_eq!(medium.len(), 3);
    for p in &medium {
        within(ms(p.duration_50()), 125.0..=250.0, "medium pulse");
    }
    for s in spacings_50(&medium) {
        within(s, 125.0..=250.0, "medium spacing");
    }
    let period = f64::from(MEDIUM.period_ms().expect("medium repeats"));
    within(
        period - f64::from(MEDIUM.burst_ms()),
        2500.0..=30_000.0,
        "medium interburst",
    );

    let low_samples = render(&LOW, 100);
    let low = pulses(&low_samples, FLOOR);
    assert!((1..=2).contains(&low.len()), "{low:#?}");
    assert_eq!(LOW.period_ms(), None, "low plays once");
    assert_eq!(low_samples.len(), samples_in(LOW.burst_ms()));
}

#[test]
fn each_pulse_rises_in_10_to_20_percent_of_its_duration_and_all_are_level() {
    for pattern in [HIGH, MEDIUM, LOW] {
        let found = pulses(&render(&pattern, 100), FLOOR);
        #[allow(clippy::cast_precision_loss)]
        for p in &found {
            let share = p.rise() as f64 / (p.end_10 - p.start_10) as f64;
            within(share, 0.10..=0.20, "rise time share");
        }
        let peaks: Vec<f64> = found.iter().map(|p| p.peak).collect();
        let (lo, hi) = peaks
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        within(20.0 * (hi / lo).log10(), 0.0..=10.0, "level difference, dB");
    }
}

#[test]
fn a_pulse_has_its_fundamental_and_4_harmonics_within_15_db() {
    use rustfft::FftPlanner;
    use rustfft::num_complex::Complex;
    within(FUNDAMENTAL_HZ, 150.0..=1000.0, "fundamental");
    // The steady middle of a pulse, 4096 samples (85 ms) with a Hann window.
    let one = pulse(200, 1.0);
    let n = 4096;
    let start = (one.len() - n) / 2;
    #[allow(clippy::cast_precision_loss)]
    let mut buf: Vec<Complex<f64>> = one[start..start + n]
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            Complex::new(f64::from(s) * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    #[allow(clippy::cast_precision_loss)]
    let bin_hz = f64::from(SAMPLE_RATE_HZ) / n as f64;
    // The strongest bin within 2 bins of a frequency, dB.
    let level_db = |hz: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let centre = (hz / bin_hz).round() as usize;
        let peak = (centre - 2..=centre + 2)
            .map(|k| buf[k].norm())
            .fold(0.0, f64::max);
        20.0 * peak.log10()
    };
    let fundamental_db = level_db(FUNDAMENTAL_HZ);
    let harmonics_in_band = (2..=8)
        .map(|h| FUNDAMENTAL_HZ * f64::from(h))
        .filter(|&hz| (300.0..=4000.0).contains(&hz))
        .filter(|&hz| (level_db(hz) - fundamental_db).abs() <= 15.0)
        .count();
    assert!(harmonics_in_band >= 4, "{harmonics_in_band} harmonics");
    // The fundamental is the strongest component: the pitch is the one stated.
    let strongest = (1..buf.len() / 2)
        .max_by(|&a, &b| buf[a].norm().total_cmp(&buf[b].norm()))
        .expect("bins");
    #[allow(clippy::cast_precision_loss)]
    let strongest_hz = strongest as f64 * bin_hz;
    within(
        strongest_hz,
        (FUNDAMENTAL_HZ - 2.0 * bin_hz)..=(FUNDAMENTAL_HZ + 2.0 * bin_hz),
        "peak",
    );
}

/// Plays `ms` of the sequencer into a buffer, in 10 ms blocks as a server asks.
fn play(seq: &mut Sequencer, ms_total: u32) -> Vec<i16> {
    let mut out = vec![0_i16; samples_in(ms_total)];
    for block in out.chunks_mut(samples_in(10)) {
        seq.fill(block);
    }
    out
}

#[test]
fn a_stream_starts_with_300_ms_of_silence_then_the_alarm() {
    let mut seq = Sequencer::new(100);
    seq.set_alarm(Some(Priority::High));
    let out = play(&mut seq, 2000);
    let found = pulses(&out, FLOOR);
    let first = found.first().expect("a pulse");
    within(
        ms(first.start_10),
        298.0..=302.0,
        "first pulse after the lead-in",
    );
    assert_eq!(seq.produced(), out.len() as u64);
}

#[test]
fn a_higher_priority_starts_at_once_and_silence_stops_at_once() {
    let mut seq = Sequencer::new(100);
    let _ = play(&mut seq, LEAD_IN_MS);
    seq.set_alarm(Some(Priority::Medium));
    let medium = play(&mut seq, 100);
    assert!(pulses(&medium, FLOOR).len() == 1, "medium began");
    // Mid-pulse, high is asked for: its first pulse begins at the next sample.
    seq.set_alarm(Some(Priority::High));
    assert_eq!(seq.program(), Program::Alarm(Priority::High));
    let high = play(&mut seq, HIGH.burst_ms());
    let found = pulses(&high, FLOOR);
    assert_eq!(found.len(), 10, "the whole high burst");
    assert!(ms(found[0].start_10) < 2.0);
    // The same priority again keeps its place; silence is silence from the next block.
    seq.set_alarm(Some(Priority::High));
    seq.set_alarm(None);
    assert!(play(&mut seq, 500).iter().all(|&s| s == 0));
}

#[test]
fn low_sounds_once_and_a_test_never_covers_an_alarm() {
    let mut seq = Sequencer::new(100);
    let _ = play(&mut seq, LEAD_IN_MS);
    seq.set_alarm(Some(Priority::Low));
    // Asked during the low burst, the test follows it.
    assert!(seq.test(Program::TestAll));
    let out = play(&mut seq, LOW.burst_ms() + 2_000);
    let found = pulses(&out, FLOOR);
    assert!(found.len() > 2, "the low burst, then the test: {found:#?}");
    // The low burst's second pulse whole (170 ms at the 50 % points), then the test
    // after a gap, as between its own priorities.
    assert!(
        ms(found[1].duration_50()) > 160.0,
        "the test does not cut the low burst: {found:#?}"
    );
    assert!(
        ms(found[2].start_10 - found[1].end_10) >= 990.0,
        "a gap before the test: {found:#?}"
    );
    // A second test while one plays is refused.
    assert!(!seq.test(Program::TestAll));
    // An alarm cancels a test in progress, and no test plays over a medium or high.
    seq.set_alarm(Some(Priority::Medium));
    assert_eq!(seq.program(), Program::Alarm(Priority::Medium));
    assert!(!seq.test(Program::TestAll));
    seq.set_alarm(Some(Priority::High));
    assert!(!seq.test(Program::TestTone));
    // Once the low alarm has played its only burst, nothing plays: 20 s of silence.
    let mut low = Sequencer::new(100);
    low.set_alarm(Some(Priority::Low));
    let out = play(&mut low, 20_000);
    assert_eq!(pulses(&out, FLOOR).len(), 2, "two pulses, not repeated");
    assert!(
        low.test(Program::TestTone),
        "a quiet low alarm lets a test play"
    );
}

#[test]
fn the_test_plays_each_priority_once_high_first() {
    let mut seq = Sequencer::new(100);
    assert!(seq.test(Program::TestAll));
    let out = play(&mut seq, LEAD_IN_MS + test_all_ms() + 500);
    assert_eq!(pulses(&out, FLOOR).len(), 10 + 3 + 2);
    assert_eq!(seq.program(), Program::Silence);
}

#[test]
fn a_change_of_volume_keeps_the_burst_in_its_place() {
    let mut seq = Sequencer::new(100);
    let _ = play(&mut seq, LEAD_IN_MS);
    seq.set_alarm(Some(Priority::High));
    // Mid-burst, after the 5th pulse, the volume goes down.
    let mut out = play(&mut seq, 2_000);
    seq.set_volume(60);
    out.extend(play(&mut seq, HIGH.burst_ms() - 2_000 + 500));
    let found = pulses(&out, FLOOR);
    assert_eq!(found.len(), 10, "one burst, not restarted: {found:#?}");
    assert!(
        found[9].peak < found[0].peak * 0.7,
        "the later pulses are quieter"
    );
}

#[test]
fn high_never_plays_below_its_floor_and_the_setting_has_one() {
    let quiet = pulses(&render(&HIGH, VOLUME_MIN_PCT), FLOOR)[0].peak;
    let floor = pulses(&render(&HIGH, HIGH_VOLUME_MIN_PCT), FLOOR)[0].peak;
    assert!(
        (quiet - floor).abs() < 1.0,
        "high at the floor: {quiet} vs {floor}"
    );
    let medium_quiet = pulses(&render(&MEDIUM, VOLUME_MIN_PCT), FLOOR)[0].peak;
    assert!(medium_quiet < floor / 4.0, "medium follows the setting");
    assert_eq!(check_volume(70), Ok(70));
    let refused = check_volume(5).expect_err("below the minimum");
    assert!(refused.contains("10 to 100 %"), "{refused}");
    assert!(check_volume(101).is_err() && check_volume(-1).is_err());
}
