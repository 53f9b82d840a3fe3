//! What a session view shows, whatever its source: the live station, or a recorded
//! session at the replay's cursor. The face map, the session duration, the plots,
//! the alarm banner and the alarm list draw from a [`SessionSource`], so live and
//! replay share that code rather than copy it.
//!
//! "Now" is the source's: the live station's clock, or the replay's cursor. Every
//! question is about that instant; a replay answers by binary search, so a frame
//! costs the same at any point of a long recording.

use crate::link::LinkState;
use crate::protocol::Telemetry;
use crate::replay::Replay;
use crate::safety::alarms::{ActiveAlarm, AlarmId};
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::station::{SeriesChannels, Station};
use crate::timeseries::TimeSeries;

/// The pen's top speed when the source does not know the pen, rpm.
pub const DEFAULT_SPEED_MAX_RPM: f64 = 9000.0;

/// One zone's figures so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneProgress {
    /// The zone.
    pub zone: ZoneId,
    /// Needle starts in it.
    pub passes: u32,
    /// Motor time in it, ms.
    pub needling_ms: u64,
}

/// An open session's figures so far.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionProgress {
    /// Since the session opened, seconds.
    pub elapsed_s: f64,
    /// All needling time, ms.
    pub needling_ms: u64,
    /// Per zone treated or tried, in zone order.
    pub zones: Vec<ZoneProgress>,
}

impl SessionProgress {
    /// Zones with at least one pass: treated this session.
    #[must_use]
    pub fn treated(&self) -> Vec<ZoneId> {
        self.zones
            .iter()
            .filter(|z| z.passes > 0)
            .map(|z| z.zone)
            .collect()
    }
}

/// The data the shared session views need. Implemented by [`Station`] (live) and
/// [`Replay`] (recorded).
pub trait SessionSource {
    /// A live session (alarms can be acknowledged) rather than a recording.
    fn is_live(&self) -> bool;
    /// Whether commands can reach a pen now (the face map is clickable). Never in a
    /// replay.
    fn can_command(&self) -> bool;
    /// The plots' time series.
    fn series(&self) -> &TimeSeries;
    /// Its channels.
    fn channels(&self) -> SeriesChannels;
    /// Now on the plots' time axis, seconds: the station's clock, or the cursor.
    fn now_s(&self) -> f64;
    /// The whole session on the plots' time axis, seconds (start, end).
    fn whole_range_s(&self) -> (f64, f64);
    /// The zone table in force.
    fn zones(&self) -> &ZoneTable;
    /// The active zone now.
    fn active_zone(&self) -> Option<ZoneId>;
    /// The active zone's limit now, µm.
    fn active_limit_um(&self) -> Option<i32>;
    /// The session's figures up to now; `None` when no session is open.
    fn session(&self) -> Option<SessionProgress>;
    /// The alarms active now, highest priority first.
    fn active_alarms(&self) -> Vec<ActiveAlarm>;
    /// The alarm to show most prominently.
    fn highest_alarm(&self) -> Option<ActiveAlarm> {
        self.active_alarms().into_iter().next()
    }
    /// The last telemetry sample up to now.
    fn last_sample(&self) -> Option<Telemetry>;
    /// "Audio paused": the silenced alarm whose silence ends last, and the ms left
    /// (live only: a replay has nothing to pause).
    fn audio_paused(&self) -> Option<(AlarmId, u64)> {
        None
    }
    /// The pen's top speed, rpm (the speed plot's scale).
    fn speed_max_rpm(&self) -> f64;
}

impl SessionSource for Station {
    fn is_live(&self) -> bool {
        true
    }

    fn can_command(&self) -> bool {
        matches!(self.link_state(), LinkState::Connected { .. })
    }

    fn series(&self) -> &TimeSeries {
        Station::series(self)
    }

    fn channels(&self) -> SeriesChannels {
        Station::channels(self)
    }

    fn now_s(&self) -> f64 {
        Station::now_s(self)
    }

    fn whole_range_s(&self) -> (f64, f64) {
        let start_s = self.session().map_or_else(
            || self.series().time_range().map_or(0.0, |(t0, _)| t0),
            |s| s.opened_s,
        );
        (start_s, self.now_s().max(start_s + 1.0))
    }

    fn zones(&self) -> &ZoneTable {
        Station::zones(self)
    }

    fn active_zone(&self) -> Option<ZoneId> {
        self.safety_summary().and_then(|s| s.zone)
    }

    fn active_limit_um(&self) -> Option<i32> {
        self.safety_summary().and_then(|s| s.limit_um)
    }

    fn session(&self) -> Option<SessionProgress> {
        let session = Station::session(self)?;
        Some(SessionProgress {
            elapsed_s: (self.now_s() - session.opened_s).max(0.0),
            needling_ms: session.needling_ms(),
            zones: session
                .zone_figures()
                .filter_map(|(zone, f)| {
                    zone.map(|zone| ZoneProgress {
                        zone,
                        passes: f.passes,
                        needling_ms: f.needling_ms,
                    })
                })
                .collect(),
        })
    }

    fn active_alarms(&self) -> Vec<ActiveAlarm> {
        self.alarms().active()
    }

    fn highest_alarm(&self) -> Option<ActiveAlarm> {
        self.alarms().highest()
    }

    fn audio_paused(&self) -> Option<(AlarmId, u64)> {
        self.alarms().audio_paused(self.now_ms())
    }

    fn last_sample(&self) -> Option<Telemetry> {
        self.last_telemetry()
    }

    fn speed_max_rpm(&self) -> f64 {
        self.info()
            .map_or(DEFAULT_SPEED_MAX_RPM, |i| f64::from(i.speed_max_rpm))
    }
}

impl SessionSource for Replay {
    fn is_live(&self) -> bool {
        false
    }

    fn can_command(&self) -> bool {
        false
    }

    fn series(&self) -> &TimeSeries {
        Replay::series(self)
    }

    fn channels(&self) -> SeriesChannels {
        Replay::channels(self)
    }

    fn now_s(&self) -> f64 {
        self.position_ms() / 1000.0
    }

    fn whole_range_s(&self) -> (f64, f64) {
        (0.0, (self.duration_ms() / 1000.0).max(1.0))
    }

    fn zones(&self) -> &ZoneTable {
        Replay::zones(self)
    }

    fn active_zone(&self) -> Option<ZoneId> {
        Replay::active_zone(self).map(|z| z.zone)
    }

    fn active_limit_um(&self) -> Option<i32> {
        Replay::active_zone(self).map(|z| z.limit_um)
    }

    fn session(&self) -> Option<SessionProgress> {
        Some(SessionProgress {
            elapsed_s: self.position_ms() / 1000.0,
            needling_ms: self.needling_ms(),
            zones: self
                .zone_figures()
                .into_iter()
                .map(|f| ZoneProgress {
                    zone: f.zone,
                    passes: f.passes,
                    needling_ms: f.needling_ms,
                })
                .collect(),
        })
    }

    fn active_alarms(&self) -> Vec<ActiveAlarm> {
        Replay::active_alarms(self)
    }

    fn last_sample(&self) -> Option<Telemetry> {
        self.last_telemetry()
    }

    fn speed_max_rpm(&self) -> f64 {
        self.recording()
            .header
            .pen
            .as_ref()
            .map_or(DEFAULT_SPEED_MAX_RPM, |p| f64::from(p.speed_max_rpm))
    }
}
