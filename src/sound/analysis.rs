//! Reading pulses back from samples: where each pulse starts and ends, measured on
//! its envelope as IEC 60601-1-8 measures them. The signal tests read the generator's
//! output with it, and the end-to-end tests and the `alarm_sound` bench read what a
//! real sound server played (the null sink's monitor).

/// The envelope's window, samples: a little over one period of the station's
/// fundamental (92 samples at 48 kHz), so the waveform's peak is always inside.
/// Edges read up to half a window (1 ms) early, and ends as late.
const WINDOW_SAMPLES: usize = 96;

/// One pulse found in a recording. Sample indices into the samples given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pulse {
    /// The envelope's first sample at or above 10 % of the pulse's peak.
    pub start_10: usize,
    /// The first at or above 50 %.
    pub start_50: usize,
    /// The first at or above 90 %.
    pub start_90: usize,
    /// The last at or above 50 %.
    pub end_50: usize,
    /// The last at or above 10 %.
    pub end_10: usize,
    /// The envelope's peak (sample units).
    pub peak: f64,
}

impl Pulse {
    /// Its duration between the 50 % points, in samples.
    #[must_use]
    pub fn duration_50(&self) -> usize {
        self.end_50 - self.start_50
    }

    /// Its 10–90 % rise time, in samples.
    #[must_use]
    pub fn rise(&self) -> usize {
        self.start_90 - self.start_10
    }
}

/// The envelope: at each sample, the largest magnitude within half a window on either
/// side.
#[must_use]
pub fn envelope(samples: &[i16]) -> Vec<f64> {
    let half = WINDOW_SAMPLES / 2;
    // A monotonic deque gives the sliding maximum in one pass.
    let mut out = Vec::with_capacity(samples.len());
    let mut deque: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let magnitude = |i: usize| f64::from(samples[i]).abs();
    let mut next = 0;
    for i in 0..samples.len() {
        let hi = (i + half).min(samples.len() - 1);
        while next <= hi {
            while deque
                .back()
                .is_some_and(|&b| magnitude(b) <= magnitude(next))
            {
                deque.pop_back();
            }
            deque.push_back(next);
            next += 1;
        }
        while deque.front().is_some_and(|&f| f + half < i) {
            deque.pop_front();
        }
        out.push(deque.front().map_or(0.0, |&f| magnitude(f)));
    }
    out
}

/// The pulses in `samples`: stretches whose envelope rises above `floor` (sample
/// units, above the noise) for at least 10 ms, each measured against its own peak.
#[must_use]
pub fn pulses(samples: &[i16], floor: f64) -> Vec<Pulse> {
    let env = envelope(samples);
    let min_len = super::signal::samples_in(10);
    let mut found = Vec::new();
    let mut i = 0;
    while i < env.len() {
        if env[i] < floor {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < env.len() && env[j] >= floor {
            j += 1;
        }
        // [i, j) is above the floor; widen to the 10 % points of its own peak.
        let peak = env[i..j].iter().copied().fold(0.0, f64::max);
        if j - i >= min_len {
            let first = |level: f64| (i..j).find(|&k| env[k] >= level * peak).unwrap_or(i);
            let last = |level: f64| (i..j).rev().find(|&k| env[k] >= level * peak).unwrap_or(j);
            let mut start_10 = i;
            while start_10 > 0 && env[start_10 - 1] >= 0.1 * peak {
                start_10 -= 1;
            }
            let mut end_10 = j - 1;
            while end_10 + 1 < env.len() && env[end_10 + 1] >= 0.1 * peak {
                end_10 += 1;
            }
            found.push(Pulse {
                start_10: first(0.1).min(start_10),
                start_50: first(0.5),
                start_90: first(0.9),
                end_50: last(0.5),
                end_10: last(0.1).max(end_10),
                peak,
            });
            // The envelope window smears a pulse's edges by half a window: an edge the
            // window reaches is the same pulse.
            j = j.max(end_10 + 1);
        }
        i = j;
    }
    found
}

/// Milliseconds in `samples` at the station's rate.
#[must_use]
pub fn ms(samples: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)] // recordings are far shorter than 2^52 samples
    let n = samples as f64;
    n * 1000.0 / f64::from(super::signal::SAMPLE_RATE_HZ)
}
