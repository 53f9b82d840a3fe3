//! Link statistics: what the link thread counts and reports to its owner.

use std::collections::VecDeque;
use std::time::Duration;

use crate::protocol::DiscardCounts;

/// How many recent round trips the percentiles are taken over.
const RTT_WINDOW: usize = 1024;

/// A snapshot of the link's counters, sent to the owner a few times a second.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkStats {
    /// Frames from the pen whose CRC matched and whose fields parsed.
    pub frames_ok: u64,
    /// Lines from the pen discarded, by reason.
    pub discarded: DiscardCounts,
    /// Telemetry samples received.
    pub telemetry_samples: u64,
    /// Gaps in the telemetry counter `n` (each gap may lose several samples).
    pub telemetry_gaps: u64,
    /// Samples lost in those gaps, from the counter.
    pub samples_lost: u64,
    /// Steps of the counter that were a reset (a restart, another host's `HELLO`),
    /// not lost samples ([`crate::protocol::counter`]).
    pub counter_resets: u64,
    /// Samples received but dropped because the owner did not drain its channel.
    pub telemetry_dropped: u64,
    /// Events dropped because the owner did not drain its channel.
    pub events_dropped: u64,
    /// Command frames written (first sends).
    pub commands_sent: u64,
    /// Resends of an unanswered command frame.
    pub retries: u64,
    /// NAKs received.
    pub naks: u64,
    /// Answers whose sequence number matched nothing in flight (late duplicates).
    pub stray_answers: u64,
    /// Times the link was declared lost.
    pub link_losses: u64,
    /// Completed handshakes.
    pub connects: u64,
    /// E-stop bytes written.
    pub estop_bytes_sent: u64,
    /// Times the needle monitor stopped the needle (each sends the E-stop byte).
    pub monitor_trips: u64,
    /// Most recent command round trip, microseconds.
    pub rtt_last_us: Option<u64>,
    /// Median round trip over the last 1024 answers, microseconds.
    pub rtt_p50_us: Option<u64>,
    /// 99th-percentile round trip over the last 1024 answers, microseconds.
    pub rtt_p99_us: Option<u64>,
    /// Telemetry rate measured over the last second, samples per second.
    pub telemetry_rate_hz: f64,
    /// Timed duties done (heartbeats, retries, E-stop resends).
    pub deadlines_met: u64,
    /// Timed duties done more than [`DEADLINE_SLACK`] after they fell due.
    pub deadlines_missed: u64,
    /// The latest any timed duty was done after it fell due, microseconds.
    pub deadline_late_max_us: u64,
}

/// How late a timed duty may be and still count as on time: a quarter of the 80 ms
/// heartbeat interval, far inside the pen's 300 ms watchdog.
pub const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// Counts the link thread's timed duties and how late each was done.
#[derive(Debug, Default)]
pub(crate) struct DeadlineWatch {
    met: u64,
    missed: u64,
    late_max_us: u64,
}

impl DeadlineWatch {
    /// A duty that fell due `late` ago was just done.
    pub(crate) fn record(&mut self, late: Duration) {
        if late > DEADLINE_SLACK {
            self.missed += 1;
        } else {
            self.met += 1;
        }
        self.late_max_us = self
            .late_max_us
            .max(u64::try_from(late.as_micros()).unwrap_or(u64::MAX));
    }

    /// Writes the counters into `stats`.
    pub(crate) fn fill(&self, stats: &mut LinkStats) {
        stats.deadlines_met = self.met;
        stats.deadlines_missed = self.missed;
        stats.deadline_late_max_us = self.late_max_us;
    }
}

/// Keeps the recent round trips and gives their percentiles.
#[derive(Debug, Default)]
pub(crate) struct RttWindow {
    recent_us: VecDeque<u64>,
}

impl RttWindow {
    pub(crate) fn record(&mut self, rtt: Duration) {
        if self.recent_us.len() == RTT_WINDOW {
            self.recent_us.pop_front();
        }
        self.recent_us
            .push_back(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
    }

    /// Writes last, p50 and p99 into `stats`.
    pub(crate) fn fill(&self, stats: &mut LinkStats) {
        stats.rtt_last_us = self.recent_us.back().copied();
        let mut sorted: Vec<u64> = self.recent_us.iter().copied().collect();
        sorted.sort_unstable();
        stats.rtt_p50_us = percentile(&sorted, 50);
        stats.rtt_p99_us = percentile(&sorted, 99);
    }
}

/// The nearest-rank percentile of sorted values.
#[must_use]
pub fn percentile(sorted: &[u64], pct: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn the_window_keeps_the_last_1024() {
        let mut w = RttWindow::default();
        for us in 0..2000u64 {
            w.record(Duration::from_micros(us));
        }
        let mut s = LinkStats::default();
        w.fill(&mut s);
        assert_eq!(s.rtt_last_us, Some(1999));
        assert_eq!(s.rtt_p50_us, Some(976 + 511));
    }
}
