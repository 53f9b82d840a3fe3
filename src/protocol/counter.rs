//! What a step in the telemetry counter means: the next sample, samples lost on the
//! way, or a counter that started again (a pen restart, a `HELLO` from another host).
//!
//! One rule for the link's statistics (and so the `telemetry_gaps` alarm) and the
//! report. A pen reports at most 1000 samples a second (protocol §5, `tel_max_hz`),
//! so between two samples at most one sample per millisecond of the pen's own clock
//! can have gone missing; a counter that jumps further, goes backwards, or comes with
//! the pen's clock going backwards did not lose anything: it was reset.

/// The step from one sample (`prev_n`, `prev_t_ms`) to the next (`n`, `t_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterStep {
    /// `n` follows `prev_n` (wrapping at 2³²).
    Next,
    /// This many samples between them never arrived.
    Lost(u32),
    /// The counter started again: no sample count can be told from it.
    Reset,
}

/// The most samples a pen sends per millisecond of its clock (1000 Hz).
const MAX_SAMPLES_PER_MS: u64 = 1;

/// Classifies the step from (`prev_n`, `prev_t_ms`) to (`n`, `t_ms`).
#[must_use]
pub fn counter_step(prev_n: u32, prev_t_ms: u32, n: u32, t_ms: u32) -> CounterStep {
    if n == prev_n.wrapping_add(1) {
        return CounterStep::Next;
    }
    if t_ms < prev_t_ms {
        // The pen's clock went back: it restarted (or its counter and clock were
        // reset). Its 49-day wrap comes with a consecutive counter, handled above.
        return CounterStep::Reset;
    }
    let missing = n.wrapping_sub(prev_n).wrapping_sub(1);
    let elapsed_ms = u64::from(t_ms - prev_t_ms);
    if u64::from(missing) <= elapsed_ms * MAX_SAMPLES_PER_MS {
        CounterStep::Lost(missing)
    } else {
        CounterStep::Reset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_the_pen_could_not_have_sent_is_a_reset_not_lost_samples() {
        assert_eq!(counter_step(41, 1000, 42, 1001), CounterStep::Next);
        assert_eq!(counter_step(u32::MAX, 5, 0, 6), CounterStep::Next);
        // One sample dropped at 1000 Hz.
        assert_eq!(counter_step(41, 1000, 43, 1002), CounterStep::Lost(1));
        // 100 ms without samples at 100 Hz.
        assert_eq!(counter_step(10, 1000, 20, 1100), CounterStep::Lost(9));
        // A million more while the pen's clock goes backwards: a restart.
        assert_eq!(
            counter_step(500, 90_000, 1_000_500, 300),
            CounterStep::Reset
        );
        // Far more than the clock allows, or backwards: a reset.
        assert_eq!(
            counter_step(500, 90_000, 1_000_500, 90_010),
            CounterStep::Reset
        );
        assert_eq!(counter_step(500, 90_000, 3, 90_010), CounterStep::Reset);
    }
}
