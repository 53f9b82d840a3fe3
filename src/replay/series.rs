//! The plots' time series of a recorded session: the same channels as the live
//! station's (`Station::series`), so the same plot code draws both.
//!
//! One row per telemetry sample at its session time, in seconds. The targets and the
//! limit are not in the telemetry: they are carried forward from the lines before each
//! sample, as the live station carries them: the speed target from `SPEED` answered
//! `ACK`, the depth target from `DEPTH` answered `ACK` (or lowered by a zone change),
//! the limit from zone changes. Before the first of each, the value is NaN: the plot
//! shows no line rather than a false zero.

use crate::protocol::{Command, parse_command};
use crate::record::format::Line;
use crate::record::recording::Recording;
use crate::station::SeriesChannels;
use crate::timeseries::TimeSeries;

/// The command a record's `command` text names (`DEPTH 800`), if it is one.
#[must_use]
pub fn parse_recorded_command(text: &str) -> Option<Command> {
    // The wire parser wants a sequence number first; the record leaves it out.
    parse_command(&format!("1 {text}")).ok().map(|(_, c)| c)
}

/// What the lines say the targets and the limit are, as they go.
#[derive(Debug, Clone, Copy, Default)]
struct Targets {
    speed_rpm: Option<i64>,
    depth_um: Option<i64>,
    limit_um: Option<i32>,
}

impl Targets {
    fn apply(&mut self, line: &Line) {
        match line {
            Line::Answer(a) if a.result == "ACK" => match parse_recorded_command(&a.command) {
                Some(Command::Speed { rpm }) => self.speed_rpm = Some(rpm),
                Some(Command::Depth { depth_um }) => self.depth_um = Some(depth_um),
                _ => {}
            },
            Line::Zone(z) => {
                self.limit_um = Some(z.limit_um);
                if let Some(to) = z.lowered_to_um {
                    self.depth_um = Some(i64::from(to));
                }
            }
            _ => {}
        }
    }
}

/// The series of `recording` and its channels. It holds every sample raw: its capacity
/// is the sample count, so it never decimates.
#[must_use]
pub fn build(recording: &Recording) -> (TimeSeries, SeriesChannels) {
    let tel = &recording.telemetry;
    let (series, channels) = SeriesChannels::new_series(tel.len());
    let mut series = series;
    let mut targets = Targets::default();
    let mut lines = recording.lines.iter().peekable();
    for i in 0..tel.len() {
        let t_ms = tel.session_ms[i];
        while let Some(timed) = lines.next_if(|l| l.session_ms <= i64::from(t_ms)) {
            targets.apply(&timed.line);
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        // Plot values: µm and rpm are far below f32's exact-integer range.
        let values = {
            let mm = |um: Option<i64>| um.map_or(f32::NAN, |um| um as f32 / 1000.0);
            [
                tel.rpm[i] as f32,
                targets.speed_rpm.map_or(f32::NAN, |r| r as f32),
                tel.depth_um[i] as f32 / 1000.0,
                mm(targets.depth_um),
                mm(targets.limit_um.map(i64::from)),
            ]
        };
        // Session times are non-decreasing (the recording's invariant), so a push
        // fails only on a broken recording; such a sample is left out of the plot.
        let _ = series.push(f64::from(t_ms) / 1000.0, &values);
    }
    (series, channels)
}
