//! Replay of a recorded session: one time cursor over a [`Recording`], and the state
//! of the session at the cursor, for the station window to draw with the same views
//! as a live session (`ui::source::SessionSource`).
//!
//! Pure: no egui, no clock (time comes in through [`Replay::advance`]), no I/O except
//! in [`open`], which reads a file on a background thread.
//!
//! - [`transport`]: the cursor and its motion (play, speed, seek, loop).
//! - [`index`]: the state at any instant (zone, figures, alarms) by binary search.
//! - [`series`]: the plots' time series, the live station's channels.
//! - [`events`]: what the timeline marks.
//! - [`open`]: opening a file in the background, with progress and cancel.

pub mod events;
pub mod index;
pub mod open;
pub mod series;
pub mod transport;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::protocol::{PenState, Telemetry};
use crate::record::format::StateWord;
use crate::record::recording::{Recording, TelSample};
use crate::safety::alarms::ActiveAlarm;
use crate::safety::zones::{ZoneId, ZoneTable};
use crate::station::SeriesChannels;
use crate::timeseries::TimeSeries;

pub use events::{EventKind, TimelineEvent};
pub use index::{StateIndex, ZoneChange, ZoneFigure};
pub use transport::{Range, SPEEDS, Transport};

/// Back or forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards the start.
    Back,
    /// Towards the end.
    Forward,
}

/// What the replay's controls ask for; applied with [`Replay::apply`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplayCommand {
    /// Play if paused, pause if playing.
    TogglePlay,
    /// Play.
    Play,
    /// Pause.
    Pause,
    /// Set the speed to `SPEEDS[i]`.
    SetSpeedIndex(usize),
    /// One telemetry sample back or forward (pauses).
    StepSample(Direction),
    /// To the previous or next event on the timeline (pauses).
    StepEvent(Direction),
    /// Move the cursor by this many ms (negative: back).
    JumpMs(i64),
    /// Put the cursor here, session ms.
    SeekMs(f64),
    /// Mark a range on the timeline, session ms (either order), or clear it.
    Select(Option<(f64, f64)>),
    /// Loop the marked range.
    LoopSelection,
    /// Looping on or off.
    SetLooping(bool),
}

/// A recorded session being replayed.
pub struct Replay {
    recording: Recording,
    zones: ZoneTable,
    series: TimeSeries,
    channels: SeriesChannels,
    index: StateIndex,
    events: Vec<TimelineEvent>,
    transport: Transport,
    notes: Vec<String>,
    amendments: Vec<crate::store::amendments::Amendment>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("path", &self.recording.path)
            .field("samples", &self.recording.telemetry.len())
            .field("events", &self.events.len())
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// The session's follow-up and adverse events, from its client's file (added
    /// after the session; the record is unchanged).
    #[must_use]
    pub fn amendments(&self) -> &[crate::store::amendments::Amendment] {
        &self.amendments
    }

    /// Adds a note about the replay itself (shown with the loader's warnings).
    pub fn add_note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Gives the replay its session's amendments (`open` reads them).
    pub fn set_amendments(&mut self, amendments: Vec<crate::store::amendments::Amendment>) {
        self.amendments = amendments;
    }

    /// A replay of `recording`, paused at its start, at 1×. Builds the plots' series
    /// and the index: O(samples), once (the README's figures give the time for a
    /// 30-minute session at 1000 Hz; `cargo bench --bench replay`).
    #[must_use]
    pub fn new(recording: Recording) -> Self {
        let mut notes = Vec::new();
        // The zone table the session ran under, from its header: the face map shows
        // the limits that were in force, not today's.
        let zones = match ZoneTable::from_json(&recording.header.zones.to_string()) {
            Ok(table) => {
                if table.hash_hex() != recording.header.zones_hash {
                    notes.push(format!(
                        "the header's zone table hashes to {}, not to the recorded {}",
                        table.hash_hex(),
                        recording.header.zones_hash
                    ));
                }
                table
            }
            Err(e) => {
                notes.push(format!(
                    "the header's zone table cannot be read ({e}); the face map shows the \
                     built-in limits, the plots the recorded ones"
                ));
                ZoneTable::builtin()
            }
        };
        let (series, channels) = series::build(&recording);
        let index = StateIndex::build(&recording);
        notes.extend(index.notes());
        let events = events::events_of(&recording.lines);
        #[allow(clippy::cast_precision_loss)] // ms of a session, far below 2^52
        let transport = Transport::new(recording.duration_ms().max(0) as f64);
        Self {
            recording,
            zones,
            series,
            channels,
            index,
            events,
            transport,
            notes,
            amendments: Vec::new(),
        }
    }

    /// The recording.
    #[must_use]
    pub fn recording(&self) -> &Recording {
        &self.recording
    }

    /// The file's name, for titles.
    #[must_use]
    pub fn file_name(&self) -> String {
        self.recording.path.file_name().map_or_else(
            || self.recording.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// What the replay could not use from the recording (the zone table, unknown
    /// alarms or zones), one line each. The loader's own warnings are in
    /// [`Recording::warnings`].
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The zone table the session ran under (or the built-in one, see [`Self::notes`]).
    #[must_use]
    pub fn zones(&self) -> &ZoneTable {
        &self.zones
    }

    /// The plots' series.
    #[must_use]
    pub fn series(&self) -> &TimeSeries {
        &self.series
    }

    /// The series' channels.
    #[must_use]
    pub fn channels(&self) -> SeriesChannels {
        self.channels
    }

    /// The timeline's events, in time order.
    #[must_use]
    pub fn events(&self) -> &[TimelineEvent] {
        &self.events
    }

    /// The transport (cursor, speed, loop).
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The cursor, session ms.
    #[must_use]
    pub fn position_ms(&self) -> f64 {
        self.transport.position_ms()
    }

    /// The session's length, ms.
    #[must_use]
    pub fn duration_ms(&self) -> f64 {
        self.transport.duration_ms()
    }

    /// The cursor in whole ms, for the index.
    fn cursor_ms(&self) -> i64 {
        // Within [0, duration]: a session's ms fit in i64.
        #[allow(clippy::cast_possible_truncation)]
        let ms = self.transport.position_ms().floor() as i64;
        ms
    }

    /// Moves the cursor by `real_elapsed` at the replay's speed, when playing.
    pub fn advance(&mut self, real_elapsed: Duration) {
        self.transport.advance(real_elapsed);
    }

    /// Applies a control.
    pub fn apply(&mut self, command: ReplayCommand) {
        match command {
            ReplayCommand::TogglePlay => self.transport.toggle_play(),
            ReplayCommand::Play => self.transport.play(),
            ReplayCommand::Pause => self.transport.pause(),
            ReplayCommand::SetSpeedIndex(i) => self.transport.set_speed_index(i),
            ReplayCommand::StepSample(direction) => {
                self.transport.pause();
                if let Some(t_ms) = self.sample_beside(direction) {
                    self.transport.seek_ms(t_ms);
                }
            }
            ReplayCommand::StepEvent(direction) => {
                self.transport.pause();
                if let Some(t_ms) = self.event_beside(direction) {
                    self.transport.seek_ms(t_ms);
                }
            }
            #[allow(clippy::cast_precision_loss)] // a jump of a few seconds
            ReplayCommand::JumpMs(delta_ms) => self.transport.jump_ms(delta_ms as f64),
            ReplayCommand::SeekMs(t_ms) => self.transport.seek_ms(t_ms),
            ReplayCommand::Select(range) => self.transport.select(range),
            ReplayCommand::LoopSelection => {
                self.transport.loop_selection();
            }
            ReplayCommand::SetLooping(on) => {
                self.transport.set_looping(on);
            }
        }
    }

    /// The time of the sample just before (or after) the cursor.
    fn sample_beside(&self, direction: Direction) -> Option<f64> {
        let times = &self.recording.telemetry.session_ms;
        let pos = self.transport.position_ms();
        let i = match direction {
            Direction::Back => times
                .partition_point(|&t| f64::from(t) < pos)
                .checked_sub(1)?,
            Direction::Forward => times.partition_point(|&t| f64::from(t) <= pos),
        };
        times.get(i).map(|&t| f64::from(t))
    }

    /// The time of the event just before (or after) the cursor.
    #[allow(clippy::cast_precision_loss)] // session ms, far below 2^52
    fn event_beside(&self, direction: Direction) -> Option<f64> {
        let pos = self.transport.position_ms();
        let i = match direction {
            Direction::Back => self
                .events
                .partition_point(|e| (e.at_ms as f64) < pos)
                .checked_sub(1)?,
            Direction::Forward => self.events.partition_point(|e| (e.at_ms as f64) <= pos),
        };
        self.events.get(i).map(|e| e.at_ms as f64)
    }

    /// The zone active at the cursor, with its recorded limit.
    #[must_use]
    pub fn active_zone(&self) -> Option<ZoneChange> {
        self.index.zone_at(self.cursor_ms())
    }

    /// Per zone treated by the cursor: passes and needling time up to it.
    #[must_use]
    pub fn zone_figures(&self) -> Vec<ZoneFigure> {
        self.index
            .figures_at(&self.recording.telemetry, self.cursor_ms())
    }

    /// Zones with a pass by the cursor, in zone order.
    #[must_use]
    pub fn treated_zones(&self) -> Vec<ZoneId> {
        self.zone_figures()
            .into_iter()
            .filter(|f| f.passes > 0)
            .map(|f| f.zone)
            .collect()
    }

    /// All needling time up to the cursor, ms.
    #[must_use]
    pub fn needling_ms(&self) -> u64 {
        self.index
            .needling_total_at(&self.recording.telemetry, self.cursor_ms())
    }

    /// The alarms active at the cursor, highest first.
    #[must_use]
    pub fn active_alarms(&self) -> Vec<ActiveAlarm> {
        self.index.alarms_at(self.transport.position_ms())
    }

    /// The last telemetry sample at or before the cursor.
    #[must_use]
    pub fn last_sample(&self) -> Option<TelSample> {
        let t = u32::try_from(self.cursor_ms().max(0)).unwrap_or(u32::MAX);
        self.recording.telemetry.last_at(t)
    }

    /// [`Self::last_sample`] as the live station's telemetry type.
    #[must_use]
    pub fn last_telemetry(&self) -> Option<Telemetry> {
        self.last_sample().map(|s| Telemetry {
            n: s.n,
            t_ms: s.t_ms,
            state: pen_state(s.state),
            rpm: s.rpm,
            depth_um: s.depth_um,
            current_ma: s.current_ma,
            temp_dc: s.temp_dc,
        })
    }

    /// The index (for the report and tests).
    #[must_use]
    pub fn index(&self) -> &StateIndex {
        &self.index
    }
}

/// A recorded state word as the protocol's state.
#[must_use]
pub fn pen_state(word: StateWord) -> PenState {
    match word {
        StateWord::Idle => PenState::Idle,
        StateWord::Running => PenState::Running,
        StateWord::Fault => PenState::Fault,
        StateWord::Estop => PenState::Estop,
    }
}
