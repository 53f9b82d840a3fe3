//! The alarm signals, sample by sample: the one place their parameters live.
//!
//! IEC 60601-1-8 (Tables 3 and 4, as device makers and alarm-chip datasheets cite
//! them) gives ranges; the values chosen here sit inside them, and `docs/alarms.md`
//! states them. Each pulse rises linearly over [`RISE_FRACTION`] of its nominal
//! duration and falls the same way, so its 10–90 % rise time is 12 % of the pulse (the
//! standard asks 10–20 %). The constants are nominal (envelope from zero to zero);
//! measured between the envelope's 50 % points a pulse is shorter by one ramp and a
//! spacing longer by one, and the values are chosen so that both readings fall
//! within the standard's ranges. The wide spacing `2 × spacing + pulse` holds at any
//! threshold: the ramp added to two spacings and taken from one pulse adds one ramp,
//! as it does to the wide spacing itself.
//!
//! Every pulse has the same waveform and the same peak level: a fundamental of
//! [`FUNDAMENTAL_HZ`] with harmonics 2 to 5 at [`HARMONIC_LEVELS`] (all within 300 to
//! 4000 Hz and within 15 dB of the fundamental).
//!
//! Pure: no clock and no I/O. The audio thread ([`super::player`]) asks a
//! [`Sequencer`] for samples as the sound server asks for them.

use crate::safety::alarms::Priority;

/// The sample rate the station plays at, Hz.
pub const SAMPLE_RATE_HZ: u32 = 48_000;

/// The fundamental of every pulse, Hz (C5; the standard: 150–1000 Hz).
pub const FUNDAMENTAL_HZ: f64 = 523.25;

/// The harmonics' amplitudes relative to the fundamental: harmonic `n` (1-based) has
/// `HARMONIC_LEVELS[n - 1]`. In dB: 0, −3.1, −6.0, −8.0, −10.5 (the standard: at
/// least four harmonics within ±15 dB of the fundamental).
pub const HARMONIC_LEVELS: [f64; 5] = [1.0, 0.7, 0.5, 0.4, 0.3];

/// The envelope's linear rise (and fall) as a fraction of the pulse's duration.
pub const RISE_FRACTION: f64 = 0.15;

/// Silence written when a stream starts, ms: a sound server (and the device behind it)
/// clips the first tens of ms a fresh stream plays.
pub const LEAD_IN_MS: u32 = 300;

/// The high-priority pulse duration, ms (the standard: 75–200; 136 at the 50 % points).
pub const HIGH_PULSE_MS: u32 = 160;
/// The high-priority pulse spacing, ms (the standard: 50–125; 104 at the 50 % points).
pub const HIGH_SPACING_MS: u32 = 80;
/// The spacing after the 3rd and the 8th high pulse: 2 × spacing + pulse, ms.
pub const HIGH_WIDE_SPACING_MS: u32 = 2 * HIGH_SPACING_MS + HIGH_PULSE_MS;
/// Between the 5th and the 6th high pulse, ms (the standard: 350–1300).
pub const HIGH_PAUSE_MS: u32 = 700;
/// From the end of a high burst to the start of the next, ms (the standard: 2.5–15 s).
pub const HIGH_INTERBURST_MS: u32 = 3_000;

/// The medium-priority pulse duration, ms (the standard: 125–250; 170 at the 50 %
/// points).
pub const MEDIUM_PULSE_MS: u32 = 200;
/// The medium-priority pulse spacing, ms (the standard: 125–250; 180 at the 50 %
/// points).
pub const MEDIUM_SPACING_MS: u32 = 150;
/// From the end of a medium burst to the start of the next, ms (the standard:
/// 2.5–30 s).
pub const MEDIUM_INTERBURST_MS: u32 = 5_000;

/// The low-priority pulse duration, ms (the standard: 125–250).
pub const LOW_PULSE_MS: u32 = 200;
/// The low-priority pulse spacing, ms (the standard: 125–250).
pub const LOW_SPACING_MS: u32 = 150;

/// The self-test tone: one pulse of this duration, ms, when a stream starts.
pub const TEST_TONE_MS: u32 = 150;

/// The lowest volume the setting accepts, % (0 would silence every alarm).
pub const VOLUME_MIN_PCT: u8 = 10;
/// The lowest level a high-priority alarm plays at, %, whatever the setting.
pub const HIGH_VOLUME_MIN_PCT: u8 = 50;
/// The volume of a station that has never been set, %.
pub const VOLUME_DEFAULT_PCT: u8 = 70;

/// The peak sample value at 100 %: 80 % of full scale, headroom for the server's
/// mixing.
const FULL_PEAK: f64 = 0.8 * 32_767.0;

/// One priority's auditory signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// The priority it signals.
    pub priority: Priority,
    /// Each pulse's duration, ms.
    pub pulse_ms: u32,
    /// The spacing after each pulse but the last, ms (so one entry fewer than
    /// pulses).
    pub spacings_ms: &'static [u32],
    /// From the end of the burst's last pulse to the start of the next burst, ms;
    /// `None`: the burst plays once.
    pub interburst_ms: Option<u32>,
}

/// High priority: 10 pulses, 3 + 2, pause, 3 + 2, repeated.
pub const HIGH: Pattern = Pattern {
    priority: Priority::High,
    pulse_ms: HIGH_PULSE_MS,
    spacings_ms: &[
        HIGH_SPACING_MS,
        HIGH_SPACING_MS,
        HIGH_WIDE_SPACING_MS,
        HIGH_SPACING_MS,
        HIGH_PAUSE_MS,
        HIGH_SPACING_MS,
        HIGH_SPACING_MS,
        HIGH_WIDE_SPACING_MS,
        HIGH_SPACING_MS,
    ],
    interburst_ms: Some(HIGH_INTERBURST_MS),
};

/// Medium priority: 3 pulses, repeated.
pub const MEDIUM: Pattern = Pattern {
    priority: Priority::Medium,
    pulse_ms: MEDIUM_PULSE_MS,
    spacings_ms: &[MEDIUM_SPACING_MS, MEDIUM_SPACING_MS],
    interburst_ms: Some(MEDIUM_INTERBURST_MS),
};

/// Low priority: 2 pulses, once when it starts to sound (the standard allows no
/// repetition; a low alarm such as a calibration due soon may last all day).
pub const LOW: Pattern = Pattern {
    priority: Priority::Low,
    pulse_ms: LOW_PULSE_MS,
    spacings_ms: &[LOW_SPACING_MS],
    interburst_ms: None,
};

impl Pattern {
    /// The pattern of `priority`.
    #[must_use]
    pub fn of(priority: Priority) -> Pattern {
        match priority {
            Priority::High => HIGH,
            Priority::Medium => MEDIUM,
            Priority::Low => LOW,
        }
    }

    /// How many pulses a burst has.
    #[must_use]
    pub fn pulses(&self) -> usize {
        self.spacings_ms.len() + 1
    }

    /// Each pulse's start within the burst, ms from the first's.
    #[must_use]
    pub fn pulse_starts_ms(&self) -> Vec<u32> {
        let mut starts = vec![0];
        let mut at = 0;
        for spacing in self.spacings_ms {
            at += self.pulse_ms + spacing;
            starts.push(at);
        }
        starts
    }

    /// The burst, from the first pulse's start to the last one's end, ms.
    #[must_use]
    pub fn burst_ms(&self) -> u32 {
        self.pulse_starts_ms().last().copied().unwrap_or(0) + self.pulse_ms
    }

    /// From one burst's start to the next's, ms; `None` for a burst played once.
    #[must_use]
    pub fn period_ms(&self) -> Option<u32> {
        self.interburst_ms.map(|gap| self.burst_ms() + gap)
    }
}

/// The level one priority plays at, as a fraction of [`FULL_PEAK`]: the station's
/// setting, never under [`HIGH_VOLUME_MIN_PCT`] for a high alarm.
#[must_use]
pub fn level(priority: Priority, volume_pct: u8) -> f64 {
    let pct = match priority {
        Priority::High => volume_pct.max(HIGH_VOLUME_MIN_PCT),
        Priority::Medium | Priority::Low => volume_pct,
    };
    f64::from(pct.min(100)) / 100.0
}

/// Checks a volume setting: [`VOLUME_MIN_PCT`] to 100 %.
pub fn check_volume(volume_pct: i64) -> Result<u8, String> {
    u8::try_from(volume_pct)
        .ok()
        .filter(|v| (VOLUME_MIN_PCT..=100).contains(v))
        .ok_or_else(|| {
            format!(
                "alarm volume {volume_pct} % refused: it must be {VOLUME_MIN_PCT} to 100 % \
                 (high-priority alarms play at {HIGH_VOLUME_MIN_PCT} % at least, whatever the \
                 setting)"
            )
        })
}

/// Samples in `ms` at [`SAMPLE_RATE_HZ`].
#[must_use]
pub fn samples_in(ms: u32) -> usize {
    // 48 samples per ms: exact.
    usize::try_from(u64::from(ms) * u64::from(SAMPLE_RATE_HZ) / 1000).unwrap_or(usize::MAX)
}

/// One pulse of `duration_ms` at `level` (0–1 of the station's full peak), with its
/// envelope.
#[must_use]
pub fn pulse(duration_ms: u32, level: f64) -> Vec<i16> {
    let n = samples_in(duration_ms);
    #[allow(clippy::cast_precision_loss)] // at most a few thousand samples
    let (len, ramp) = (n as f64, (n as f64 * RISE_FRACTION).max(1.0));
    let norm: f64 = HARMONIC_LEVELS.iter().sum();
    let rate = f64::from(SAMPLE_RATE_HZ);
    (0..n)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let t = i as f64;
            let envelope = (t / ramp).min((len - t) / ramp).clamp(0.0, 1.0);
            let wave: f64 = HARMONIC_LEVELS
                .iter()
                .zip(1_u32..)
                .map(|(amp, h)| {
                    amp * (std::f64::consts::TAU * FUNDAMENTAL_HZ * f64::from(h) * t / rate).sin()
                })
                .sum();
            // |wave| ≤ norm, so the product stays within ±FULL_PEAK.
            #[allow(clippy::cast_possible_truncation)]
            let sample = (wave / norm * envelope * level * FULL_PEAK).round() as i16;
            sample
        })
        .collect()
}

/// One burst of `pattern` at `volume_pct`, then its interburst silence if it repeats:
/// one period, ready to loop.
#[must_use]
pub fn render(pattern: &Pattern, volume_pct: u8) -> Vec<i16> {
    let one = pulse(pattern.pulse_ms, level(pattern.priority, volume_pct));
    let total_ms = pattern.period_ms().unwrap_or_else(|| pattern.burst_ms());
    let mut out = vec![0_i16; samples_in(total_ms)];
    for start_ms in pattern.pulse_starts_ms() {
        let at = samples_in(start_ms);
        out[at..at + one.len()].copy_from_slice(&one);
    }
    out
}

/// What a [`Sequencer`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// Nothing.
    Silence,
    /// One priority's signal, looping if it repeats.
    Alarm(Priority),
    /// The self-test tone, once.
    TestTone,
    /// Each priority once, high first, a second apart: the "Test alarm sound" control.
    TestAll,
}

/// The samples of `program` at `volume_pct`, and whether they loop.
fn render_program(program: Program, volume_pct: u8) -> Option<(Vec<i16>, bool)> {
    match program {
        Program::Silence => None,
        Program::Alarm(p) => {
            let pattern = Pattern::of(p);
            Some((
                render(&pattern, volume_pct),
                pattern.interburst_ms.is_some(),
            ))
        }
        Program::TestTone => Some((
            pulse(TEST_TONE_MS, level(Priority::Medium, volume_pct)),
            false,
        )),
        Program::TestAll => {
            let gap = vec![0_i16; samples_in(TEST_GAP_MS)];
            let mut all = Vec::new();
            for p in [Priority::High, Priority::Medium, Priority::Low] {
                let pattern = Pattern::of(p);
                let mut burst = render(&pattern, volume_pct);
                burst.truncate(samples_in(pattern.burst_ms()));
                all.extend(burst);
                all.extend_from_slice(&gap);
            }
            Some((all, false))
        }
    }
}

/// The silence after each priority in the "Test alarm sound" sequence, ms.
pub const TEST_GAP_MS: u32 = 1_000;

/// How long "Test alarm sound" plays: each priority's burst and a gap after it, ms.
#[must_use]
pub fn test_all_ms() -> u32 {
    [HIGH, MEDIUM, LOW]
        .iter()
        .map(|p| p.burst_ms() + TEST_GAP_MS)
        .sum()
}

/// What is being played, and where.
#[derive(Debug, Clone)]
struct Playing {
    program: Program,
    samples: Vec<i16>,
    repeat: bool,
    pos: usize,
}

/// Turns what should sound into samples, block by block, as a sound server asks for
/// them. A new program starts at the next sample asked for; an alarm keeps its place
/// in its pattern while it stays the same (a change of volume included). A stream's
/// first [`LEAD_IN_MS`] are silence whatever is asked.
#[derive(Debug, Clone)]
pub struct Sequencer {
    volume_pct: u8,
    alarm: Option<Priority>,
    playing: Option<Playing>,
    /// A test asked for while a low alarm's burst plays: it follows the burst.
    pending_test: Option<Program>,
    lead_in_left: usize,
    /// Samples produced since the stream started.
    produced: u64,
}

impl Sequencer {
    /// A sequencer for a fresh stream, at `volume_pct`.
    #[must_use]
    pub fn new(volume_pct: u8) -> Self {
        Self {
            volume_pct,
            alarm: None,
            playing: None,
            pending_test: None,
            lead_in_left: samples_in(LEAD_IN_MS),
            produced: 0,
        }
    }

    fn start(&mut self, program: Program) {
        self.playing = render_program(program, self.volume_pct).map(|(samples, repeat)| Playing {
            program,
            samples,
            repeat,
            pos: 0,
        });
    }

    /// The alarm signal to play: the station's [`AlarmManager::sounding`]. An alarm
    /// cancels a test in progress. A change of priority starts the new pattern from
    /// its first pulse; the same priority again changes nothing.
    ///
    /// [`AlarmManager::sounding`]: crate::safety::alarms::AlarmManager::sounding
    pub fn set_alarm(&mut self, alarm: Option<Priority>) {
        if alarm == self.alarm {
            return;
        }
        self.alarm = alarm;
        self.pending_test = None;
        match alarm {
            Some(p) => self.start(Program::Alarm(p)),
            None => self.playing = None,
        }
    }

    /// Plays a test program (the tone or every priority), never over an alarm signal:
    /// refused (false) while a high or medium alarm sounds or another test plays;
    /// after a low alarm's burst, which plays once, if it is still playing.
    pub fn test(&mut self, program: Program) -> bool {
        if !matches!(program, Program::TestTone | Program::TestAll) {
            return false;
        }
        if matches!(self.alarm, Some(Priority::High | Priority::Medium)) {
            return false;
        }
        match &self.playing {
            Some(p) if matches!(p.program, Program::TestTone | Program::TestAll) => false,
            Some(_) => {
                self.pending_test = Some(program);
                true
            }
            None => {
                self.start(program);
                true
            }
        }
    }

    /// Sets the volume: what plays goes on at the new level from where it is.
    pub fn set_volume(&mut self, volume_pct: u8) {
        if volume_pct == self.volume_pct {
            return;
        }
        self.volume_pct = volume_pct;
        if let Some(playing) = &mut self.playing
            && let Some((samples, _)) = render_program(playing.program, volume_pct)
        {
            // The same program at another level has the same length.
            playing.samples = samples;
        }
    }

    /// The volume, %.
    #[must_use]
    pub fn volume_pct(&self) -> u8 {
        self.volume_pct
    }

    /// What plays now (an alarm that played its only burst is still the alarm).
    #[must_use]
    pub fn program(&self) -> Program {
        match (self.alarm, &self.playing) {
            (_, Some(p)) => p.program,
            (Some(p), None) => Program::Alarm(p),
            (None, None) => Program::Silence,
        }
    }

    /// Samples produced since the stream started.
    #[must_use]
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        let mut i = 0;
        while i < out.len() {
            if self.lead_in_left > 0 {
                let n = self.lead_in_left.min(out.len() - i);
                out[i..i + n].fill(0);
                self.lead_in_left -= n;
                i += n;
                continue;
            }
            let Some(playing) = &mut self.playing else {
                out[i..].fill(0);
                i = out.len();
                continue;
            };
            let n = (playing.samples.len() - playing.pos).min(out.len() - i);
            out[i..i + n].copy_from_slice(&playing.samples[playing.pos..playing.pos + n]);
            playing.pos += n;
            i += n;
            if playing.pos == playing.samples.len() {
                if playing.repeat {
                    playing.pos = 0;
                } else {
                    // A burst played once (low, a test) ends; the alarm stays what it
                    // is, so a low alarm does not play again until it changes. A test
                    // that waited for it starts now.
                    self.playing = None;
                    if let Some(test) = self.pending_test.take() {
                        self.start(test);
                        // A gap first, as between the test's own priorities: it must
                        // not sound like part of the alarm's burst.
                        if let Some(p) = &mut self.playing {
                            let mut samples = vec![0_i16; samples_in(TEST_GAP_MS)];
                            samples.append(&mut p.samples);
                            p.samples = samples;
                        }
                    }
                }
            }
        }
        self.produced += out.len() as u64;
    }
}

#[cfg(test)]
#[path = "signal_tests.rs"]
mod tests;
