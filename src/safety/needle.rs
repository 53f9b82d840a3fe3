//! The needle as the pen's telemetry shows it, and the needle monitor.
//!
//! The interlock decides on the pen's measured state, never on what the station
//! assumes it sent: [`NeedleWatch`] keeps the latest sample (state, speed, depth,
//! when it arrived) and whether the depth mechanism has stopped moving, and
//! [`NeedleMonitor`] judges every sample while the needle runs. A monitor trip is a
//! [`Trip`]: the link sends the E-stop byte for it at once and latches a stop.
//!
//! Pure, like the rest of `safety/`: time comes in (the station's monotonic
//! `Instant` of arrival, the pen's own `t_ms`), nothing is read from a clock.
//!
//! The figures and their reasons are stated for operators in `docs/alarms.md`.

use std::fmt;
use std::time::{Duration, Instant};

use super::zones::ZoneId;
use crate::protocol::{PenState, Telemetry};

/// A needle within this of its target has arrived: one step of the pen's depth
/// setting (section 9: `depth_step_um` = 50).
pub const ARRIVED_WITHIN_UM: i32 = 50;

/// The pen's depth reporting step, µm: the only tolerance the monitor allows above a
/// zone's limit. A reading over the limit by more than this is a needle too deep.
pub const REPORT_STEP_UM: i32 = 10;

/// The mechanism has stopped moving when every sample for this long (pen clock) read
/// the same depth within [`REPORT_STEP_UM`]. At 5 mm/s the needle moves 100 µm in that
/// time, so a moving needle never looks settled.
pub const SETTLE_MS: u32 = 20;

/// Depth travel of a version 1 pen, µm per ms (5 mm/s, section 9).
pub const TRAVEL_UM_PER_MS: u32 = 5;

/// How long past its travel time a running needle may stay more than
/// [`ARRIVED_WITHIN_UM`] from its target before the monitor stops it, ms. The
/// allowance covers a move that starts a sample late and a little jitter; the pen's
/// own FAULT DEPTH comes only after 1 s.
pub const OFF_TARGET_GRACE_MS: u32 = 250;

/// A measured speed above the allowed speed by more than this, percent, is an
/// overspeed: beyond any calibration error a pen is allowed (±5 %, section 8 ranges)
/// and any measurement noise.
pub const OVERSPEED_MARGIN_PCT: i64 = 15;

/// ... and it must last this long (pen clock), ms, so that one noisy reading does not
/// stop a treatment.
pub const OVERSPEED_MS: u32 = 100;

/// The pen's speed ramp, rpm per ms (20 000 rpm/s, section 4): after a lower speed
/// target the allowed speed comes down no faster than this.
pub const RAMP_RPM_PER_MS: i64 = 20;

/// The oldest a sample may be for a start to rely on it, at `telemetry_hz`: two sample
/// periods and 50 ms for scheduling (52 ms at 1000 Hz, 70 ms at 100 Hz, 250 ms at
/// 10 Hz). `None`: telemetry is off, and nothing can be fresh.
#[must_use]
pub fn fresh_within(telemetry_hz: u32) -> Option<Duration> {
    (telemetry_hz > 0).then(|| Duration::from_millis(2 * 1000 / u64::from(telemetry_hz) + 50))
}

/// A treatment start needs telemetry at least this fast, Hz: the monitor sees the
/// needle once per sample, and at 5 mm/s a needle slipping deeper travels
/// 5000/N µm between two samples: 10 µm at 500 Hz, the pen's reporting step.
pub const MIN_TREATMENT_TELEMETRY_HZ: u32 = 500;

/// While the needle runs, no sample for this long (and at least [`fresh_within`]) is
/// a needle the station cannot see: the monitor stops it. Longer than the start's
/// freshness bound, so that a loaded station's scheduling (tens of ms) does not stop a
/// treatment; at 5 mm/s a needle slipping meanwhile travels at most 0.5 mm, and the
/// first sample after shows it.
pub const SILENCE_TRIP_MIN: Duration = Duration::from_millis(100);

/// How long the running needle may go unseen at `telemetry_hz` before the monitor
/// stops it (see [`SILENCE_TRIP_MIN`]). `None`: telemetry is off.
#[must_use]
pub fn unseen_after(telemetry_hz: u32) -> Option<Duration> {
    fresh_within(telemetry_hz).map(|fresh| fresh.max(SILENCE_TRIP_MIN))
}

/// The latest telemetry sample, with the station's time of arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// The pen's state.
    pub state: PenState,
    /// Measured speed, rpm.
    pub rpm: i32,
    /// Actual (calibrated) depth, µm.
    pub depth_um: i32,
    /// Pen time of the sample, ms since boot (wraps).
    pub t_ms: u32,
    /// When the station received it (monotonic).
    pub received: Instant,
}

/// The needle as telemetry shows it: the latest sample and whether the depth has
/// stopped moving.
#[derive(Debug, Clone, Default)]
pub struct NeedleWatch {
    latest: Option<Measured>,
    /// The latest sample's counter `n`.
    latest_n: Option<u32>,
    /// Pen time between the last two samples with consecutive `n`, ms: how often the
    /// pen reports, whatever it was asked.
    spacing_ms: Option<u32>,
    /// The depth the mechanism has held, within [`REPORT_STEP_UM`], since
    /// `steady_since_t_ms`.
    steady_depth_um: i32,
    steady_since_t_ms: u32,
}

impl NeedleWatch {
    /// Takes a sample received at `received`.
    pub fn on_sample(&mut self, t: &Telemetry, received: Instant) {
        let continues = self
            .latest
            .is_some_and(|m| t.t_ms.wrapping_sub(m.t_ms) < u32::MAX / 2);
        if !continues || (t.depth_um - self.steady_depth_um).abs() > REPORT_STEP_UM {
            self.steady_depth_um = t.depth_um;
            self.steady_since_t_ms = t.t_ms;
        }
        if let (Some(m), Some(n)) = (self.latest, self.latest_n)
            && continues
            && t.n == n.wrapping_add(1)
        {
            self.spacing_ms = Some(t.t_ms.wrapping_sub(m.t_ms));
        }
        self.latest_n = Some(t.n);
        self.latest = Some(Measured {
            state: t.state,
            rpm: t.rpm,
            depth_um: t.depth_um,
            t_ms: t.t_ms,
            received,
        });
    }

    /// Forgets everything: a new connection, a new pen, a reboot (a new pen clock).
    pub fn forget(&mut self) {
        *self = Self::default();
    }

    /// The latest sample, if one came since the last [`Self::forget`].
    #[must_use]
    pub fn latest(&self) -> Option<&Measured> {
        self.latest.as_ref()
    }

    /// The depth has held still for [`SETTLE_MS`] of pen time.
    #[must_use]
    pub fn settled(&self) -> bool {
        self.latest
            .is_some_and(|m| m.t_ms.wrapping_sub(self.steady_since_t_ms) >= SETTLE_MS)
    }

    /// How old the latest sample is at `now`.
    #[must_use]
    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.latest
            .map(|m| now.saturating_duration_since(m.received))
    }

    /// The pen reports more slowly than asked at `telemetry_hz`: the pen-clock time
    /// between its last two samples (consecutive, none lost) is over two periods and
    /// 2 ms. Another program may have lowered the rate (`TEL`), or the firmware: the
    /// station then sees the needle too seldom. `Some(spacing_ms)` when so.
    #[must_use]
    pub fn reporting_too_slow(&self, telemetry_hz: u32) -> Option<u32> {
        let period_ms = 1000 / telemetry_hz.max(1);
        self.spacing_ms
            .filter(|&spacing| telemetry_hz > 0 && spacing > 2 * period_ms.max(1) + 2)
    }

    /// The needle runs, as measured.
    #[must_use]
    pub fn running(&self) -> bool {
        self.latest.is_some_and(|m| m.state == PenState::Running)
    }
}

/// What the needle monitor watches for while the needle runs. Each trip sends the
/// E-stop byte and latches a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorRule {
    /// The measured depth is above the limit of the zone the needle runs in.
    DepthOverLimit,
    /// The pen runs, and the station did not start it.
    UnexpectedRun,
    /// The measured speed is far above the speed allowed.
    Overspeed,
    /// The measured depth stays away from its target while the needle runs.
    DepthOffTarget,
    /// No telemetry while the needle runs: the station cannot see it.
    TelemetryLost,
}

impl MonitorRule {
    /// Every rule.
    pub const ALL: [Self; 5] = [
        Self::DepthOverLimit,
        Self::UnexpectedRun,
        Self::Overspeed,
        Self::DepthOffTarget,
        Self::TelemetryLost,
    ];

    /// The stable id, as records and alarms use it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepthOverLimit => "depth_over_limit",
            Self::UnexpectedRun => "unexpected_run",
            Self::Overspeed => "overspeed",
            Self::DepthOffTarget => "depth_off_target",
            Self::TelemetryLost => "telemetry_lost",
        }
    }
}

impl fmt::Display for MonitorRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MonitorRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown needle monitor rule {s:?}"))
    }
}

/// The monitor stopped the needle: which rule, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The rule.
    pub rule: MonitorRule,
    /// The zone the needle ran in: its pass's, else the active one (`None`: on the
    /// bench, or none selected).
    pub zone: Option<ZoneId>,
    /// The depth limit in force, µm (the bench's is 0: retracted).
    pub limit_um: Option<i32>,
    /// The depth target the pen acknowledged, µm.
    pub target_um: Option<i32>,
    /// The measured depth, µm.
    pub depth_um: i32,
    /// The measured speed, rpm.
    pub rpm: i32,
    /// The speed allowed at that moment, rpm (for an overspeed).
    pub allowed_rpm: Option<i64>,
    /// Pen time of the sample, ms.
    pub t_ms: u32,
    /// What happened, for the operator.
    pub message: String,
}

/// A needle start, while the needle runs: the zone it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The zone selected when the pen acknowledged `RUN` (`None` on the bench). A zone
    /// selected while the needle runs takes force when it stops: the run-down after
    /// the zone change's `HALT` belongs to this pass.
    pub zone: Option<ZoneId>,
}

/// The allowed speed: the acknowledged target, coming down from an earlier, higher
/// one no faster than the pen may ramp.
#[derive(Debug, Clone, Copy, Default)]
struct SpeedAllowance {
    /// The acknowledged target, rpm; `None`: not set since the connection.
    target_rpm: Option<i64>,
    /// A higher speed allowed before, rpm, and the pen time it began to come down.
    decay: Option<(i64, u32)>,
}

impl SpeedAllowance {
    fn allowed_at(&self, t_ms: u32, unknown_rpm: i64) -> i64 {
        let target = self.target_rpm.unwrap_or(unknown_rpm);
        match self.decay {
            Some((from, since)) => {
                let fallen = i64::from(t_ms.wrapping_sub(since)) * RAMP_RPM_PER_MS;
                target.max(from - fallen)
            }
            None => target,
        }
    }
}

/// The needle monitor's memory between samples.
#[derive(Debug, Clone, Default)]
pub struct NeedleMonitor {
    speed: SpeedAllowance,
    /// When the depth target was acknowledged (pen time of the latest sample then)
    /// and the depth measured then: the move's travel allowance starts there.
    target_set: Option<(u32, i32)>,
    /// Since when (pen time) the running needle has been off its target.
    off_target_since: Option<u32>,
    /// Since when (pen time) the speed has been above the allowed speed.
    overspeed_since: Option<u32>,
}

/// What the monitor needs of the interlock's state for one sample.
#[derive(Debug, Clone, Copy)]
pub struct MonitorInput {
    /// The pass under way.
    pub pass: Option<Pass>,
    /// The zone whose limit holds the running needle (`None` on the bench, or none
    /// selected).
    pub zone: Option<ZoneId>,
    /// A `RUN` is on the wire, not yet answered.
    pub run_in_flight: bool,
    /// The depth limit the running needle is held to, µm: the lower of the active
    /// zone's and the pass's zone's (0 on the bench).
    pub limit_um: Option<i32>,
    /// The depth target the pen acknowledged, µm.
    pub target_um: Option<i32>,
    /// The pen's fastest speed (INFO), rpm: allowed while no target is known.
    pub speed_max_rpm: i64,
}

impl NeedleMonitor {
    /// Forgets the speed and depth history: a new connection or a new pen.
    pub fn forget(&mut self) {
        *self = Self::default();
    }

    /// The pen acknowledged a depth target while the latest sample was `latest`.
    pub fn on_depth_target(&mut self, latest: Option<&Measured>) {
        self.target_set = latest.map(|m| (m.t_ms, m.depth_um));
        self.off_target_since = None;
    }

    /// The pen acknowledged a speed target, with the latest sample `latest`.
    pub fn on_speed_target(&mut self, rpm: i64, latest: Option<&Measured>, unknown_rpm: i64) {
        let t_ms = latest.map_or(0, |m| m.t_ms);
        let allowed_now = self.speed.allowed_at(t_ms, unknown_rpm);
        self.speed.decay = (rpm < allowed_now).then_some((allowed_now, t_ms));
        self.speed.target_rpm = Some(rpm);
    }

    /// The speed target is no longer known (a connection: the pen may hold any).
    pub fn forget_speed(&mut self) {
        self.speed = SpeedAllowance::default();
    }

    /// The needle, seen in `m` away from `target_um`, may still be on its way there:
    /// the target was acknowledged less than its travel time at 5 mm/s, plus
    /// [`SETTLE_MS`] and [`OFF_TARGET_GRACE_MS`], before `m` (pen clock).
    #[must_use]
    pub fn on_its_way(&self, m: &Measured, target_um: i32) -> bool {
        let Some((set_t_ms, from_um)) = self.target_set else {
            return false;
        };
        let travel_ms = (from_um - target_um).unsigned_abs() / TRAVEL_UM_PER_MS;
        m.t_ms.wrapping_sub(set_t_ms) <= travel_ms + SETTLE_MS + OFF_TARGET_GRACE_MS
    }

    /// Judges one sample (already taken into the needle watch). `None`: nothing wrong.
    pub fn judge(&mut self, m: &Measured, input: &MonitorInput) -> Option<Trip> {
        if m.state != PenState::Running {
            self.off_target_since = None;
            self.overspeed_since = None;
            return None;
        }
        let trip = |rule, message: String, allowed_rpm| Trip {
            rule,
            zone: input.zone.or(input.pass.and_then(|p| p.zone)),
            limit_um: input.limit_um,
            target_um: input.target_um,
            depth_um: m.depth_um,
            rpm: m.rpm,
            allowed_rpm,
            t_ms: m.t_ms,
            message,
        };
        // A RUN on the wire is the station's own start: the pen answers it before it
        // starts, so a running sample may come first.
        if input.pass.is_none() && !input.run_in_flight {
            return Some(trip(
                MonitorRule::UnexpectedRun,
                format!(
                    "the pen runs ({} rpm, depth {}) and the station did not start it",
                    m.rpm,
                    mm(m.depth_um)
                ),
                None,
            ));
        }
        if let Some(limit_um) = input.limit_um
            && m.depth_um > limit_um + REPORT_STEP_UM
        {
            let place = input.zone.or(input.pass.and_then(|p| p.zone)).map_or_else(
                || "on the bench, where the needle turns only retracted".to_owned(),
                |z| format!("above the {z} limit {}", mm(limit_um)),
            );
            return Some(trip(
                MonitorRule::DepthOverLimit,
                format!("the needle runs at {}, {place}", mm(m.depth_um)),
                None,
            ));
        }
        if let Some(trip) = self.judge_speed(m, input, trip) {
            return Some(trip);
        }
        self.judge_target(m, input, trip)
    }

    fn judge_speed(
        &mut self,
        m: &Measured,
        input: &MonitorInput,
        trip: impl Fn(MonitorRule, String, Option<i64>) -> Trip,
    ) -> Option<Trip> {
        let allowed = self.speed.allowed_at(m.t_ms, input.speed_max_rpm);
        let bound = allowed * (100 + OVERSPEED_MARGIN_PCT) / 100;
        if i64::from(m.rpm) <= bound {
            self.overspeed_since = None;
            return None;
        }
        let since = *self.overspeed_since.get_or_insert(m.t_ms);
        (m.t_ms.wrapping_sub(since) >= OVERSPEED_MS).then(|| {
            trip(
                MonitorRule::Overspeed,
                format!(
                    "the needle turns at {} rpm, more than {OVERSPEED_MARGIN_PCT} % above the {allowed} rpm \
                     allowed, for {OVERSPEED_MS} ms",
                    m.rpm
                ),
                Some(allowed),
            )
        })
    }

    fn judge_target(
        &mut self,
        m: &Measured,
        input: &MonitorInput,
        trip: impl Fn(MonitorRule, String, Option<i64>) -> Trip,
    ) -> Option<Trip> {
        let target_um = input.target_um?;
        let off_um = (m.depth_um - target_um).abs();
        if off_um <= ARRIVED_WITHIN_UM {
            self.off_target_since = None;
            return None;
        }
        // The move's own travel time first: a needle on its way is not off target.
        let (set_t_ms, from_um) = self.target_set.unwrap_or((m.t_ms, m.depth_um));
        let travel_ms = (from_um - target_um).unsigned_abs() / TRAVEL_UM_PER_MS;
        if m.t_ms.wrapping_sub(set_t_ms) <= travel_ms + OFF_TARGET_GRACE_MS {
            return None;
        }
        let since = *self.off_target_since.get_or_insert(m.t_ms);
        (m.t_ms.wrapping_sub(since) >= OFF_TARGET_HOLD_MS).then(|| {
            trip(
                MonitorRule::DepthOffTarget,
                format!(
                    "the needle runs at {}, {} from its target {}, past its travel time",
                    mm(m.depth_um),
                    mm(off_um),
                    mm(target_um)
                ),
                None,
            )
        })
    }
}

/// How long (pen clock) a running needle stays off its target, past its travel time
/// and grace, before the monitor stops it, ms.
pub const OFF_TARGET_HOLD_MS: u32 = 100;

fn mm(depth_um: i32) -> String {
    super::interlock::mm(i64::from(depth_um))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: u32, state: PenState, depth_um: i32, rpm: i32) -> Telemetry {
        Telemetry {
            n: t_ms,
            t_ms,
            state,
            rpm,
            depth_um,
            current_ma: 0,
            temp_dc: 250,
        }
    }

    #[test]
    fn a_needle_settles_only_after_holding_still_for_the_settle_time() {
        let t0 = Instant::now();
        let mut w = NeedleWatch::default();
        // Moving at 5 µm/ms, sampled every ms: never settled.
        for t in 0..40u32 {
            let depth = 1500 - i32::try_from(t * 5).expect("small");
            w.on_sample(&sample(t, PenState::Idle, depth, 0), t0);
            assert!(!w.settled(), "moving at t={t}");
        }
        // Arrived: settled once 20 ms of samples agree within a reporting step (the
        // last 10 µm of the move count as still).
        for t in 40..56u32 {
            w.on_sample(&sample(t, PenState::Idle, 1300, 0), t0);
            assert!(!w.settled(), "t={t}");
        }
        for t in 56..=60u32 {
            w.on_sample(&sample(t, PenState::Idle, 1300, 0), t0);
        }
        assert!(w.settled());
        // At 10 Hz two equal samples 100 ms apart are enough.
        let mut slow = NeedleWatch::default();
        slow.on_sample(&sample(0, PenState::Idle, 300, 0), t0);
        assert!(!slow.settled(), "one sample proves nothing");
        slow.on_sample(&sample(100, PenState::Idle, 300, 0), t0);
        assert!(slow.settled());
    }

    #[test]
    fn freshness_follows_the_telemetry_rate() {
        assert_eq!(fresh_within(0), None);
        assert_eq!(fresh_within(1000), Some(Duration::from_millis(52)));
        assert_eq!(fresh_within(100), Some(Duration::from_millis(70)));
        assert_eq!(fresh_within(10), Some(Duration::from_millis(250)));
    }

    fn measured(t_ms: u32, depth_um: i32, rpm: i32) -> Measured {
        Measured {
            state: PenState::Running,
            rpm,
            depth_um,
            t_ms,
            received: Instant::now(),
        }
    }

    fn input(zone: ZoneId, limit_um: i32, target_um: i32) -> MonitorInput {
        MonitorInput {
            pass: Some(Pass { zone: Some(zone) }),
            zone: Some(zone),
            run_in_flight: false,
            limit_um: Some(limit_um),
            target_um: Some(target_um),
            speed_max_rpm: 9000,
        }
    }

    #[test]
    fn depth_above_the_limit_by_more_than_one_reporting_step_trips_at_once() {
        let mut monitor = NeedleMonitor::default();
        let i = input(ZoneId::Periorbital, 300, 300);
        assert_eq!(monitor.judge(&measured(0, 310, 6000), &i), None, "one step");
        let trip = monitor
            .judge(&measured(1, 311, 6000), &i)
            .expect("above the limit");
        assert_eq!(trip.rule, MonitorRule::DepthOverLimit);
        assert_eq!(trip.zone, Some(ZoneId::Periorbital));
        assert!(
            trip.message.contains("0.311 mm") && trip.message.contains("periorbital limit 0.30 mm"),
            "{}",
            trip.message
        );
    }

    #[test]
    fn a_run_nobody_started_trips_unless_a_run_is_on_the_wire() {
        let mut monitor = NeedleMonitor::default();
        let mut i = input(ZoneId::Cheeks, 1000, 500);
        i.pass = None;
        i.run_in_flight = true;
        assert_eq!(monitor.judge(&measured(0, 500, 100), &i), None);
        i.run_in_flight = false;
        let trip = monitor.judge(&measured(1, 500, 200), &i).expect("trip");
        assert_eq!(trip.rule, MonitorRule::UnexpectedRun);
    }

    #[test]
    fn overspeed_trips_after_its_hold_and_a_lowered_target_comes_down_at_the_ramp() {
        let mut monitor = NeedleMonitor::default();
        let i = input(ZoneId::Cheeks, 1000, 500);
        monitor.on_speed_target(9000, None, 9000);
        // Lowered to 3000 at t=1000: the pen may take 300 ms to come down.
        monitor.on_speed_target(3000, Some(&measured(1000, 500, 9000)), 9000);
        for t in (1000..1300).step_by(10) {
            let ramp = 9000 - i32::try_from((t - 1000) * 20).expect("small");
            assert_eq!(monitor.judge(&measured(t, 500, ramp), &i), None, "t={t}");
        }
        // Stuck at 6000 rpm (twice the target): tripped 100 ms after it shows.
        let (t, trip) = (1300..1500)
            .find_map(|t| {
                monitor
                    .judge(&measured(t, 500, 6000), &i)
                    .map(|trip| (t, trip))
            })
            .expect("overspeed");
        assert_eq!(trip.rule, MonitorRule::Overspeed);
        assert!((1300..=1420).contains(&t), "tripped at {t}");
    }

    #[test]
    fn a_needle_that_stays_off_target_past_its_travel_time_trips() {
        let mut monitor = NeedleMonitor::default();
        let i = input(ZoneId::Cheeks, 1000, 500);
        // Target set at t=0 from 1000 µm: 100 ms of travel, 250 ms grace, 100 ms hold.
        monitor.on_depth_target(Some(&measured(0, 1000, 6000)));
        for t in 0..=350 {
            assert_eq!(monitor.judge(&measured(t, 900, 6000), &i), None, "t={t}");
        }
        let (t, trip) = (351..600)
            .find_map(|t| {
                monitor
                    .judge(&measured(t, 900, 6000), &i)
                    .map(|trip| (t, trip))
            })
            .expect("off target");
        assert_eq!(trip.rule, MonitorRule::DepthOffTarget);
        assert_eq!(t, 451);
    }

    #[test]
    fn a_needle_that_is_not_running_is_never_judged() {
        let mut monitor = NeedleMonitor::default();
        let mut m = measured(0, 2500, 0);
        m.state = PenState::Idle;
        let mut i = input(ZoneId::Periorbital, 300, 300);
        i.pass = None;
        assert_eq!(monitor.judge(&m, &i), None);
    }
}
