//! When the window draws: only when something visible changes, and never faster than
//! the eye needs.
//!
//! A station is left on all day beside a client. egui draws a frame on input and
//! when asked; everything in the window that asks for a frame without input does so
//! here, with a [`Reason`], so that the policy is in one place and a test can see
//! why each frame was asked for:
//!
//! | state | frames without input |
//! |---|---|
//! | needle running (live plots), replay playing | 30 per second ([`LIVE_INTERVAL`]) |
//! | a session open (recorded), needle idle | 30 per second: each frame takes the telemetry into the record, so a crash loses at most a frame (33 ms) and the recorder's 15 ms |
//! | pen connected, no session, needle idle: the plots scroll | 4 per second ([`IDLE_INTERVAL`]) |
//! | a flashing alarm | at each change of its flash phase (2 Hz high, 0.6 Hz medium) |
//! | a record loading, the library scanning | 10 per second (the progress bar) |
//! | paused replay, no pen, nothing loading | none: the window waits for input |
//!
//! The link wakes the window when one of its events (a state change, an answer, a
//! pen event, a needle monitor trip) arrives ([`crate::link::Waker`]), so a change is
//! drawn at once, whatever the rate above; telemetry alone never wakes it.

use std::time::Duration;

/// Frames while the needle runs or a replay plays: 30 per second is plenty for the
/// eye, whatever the telemetry rate.
pub const LIVE_INTERVAL: Duration = Duration::from_millis(33);

/// Frames while a pen is connected and its needle idle: the plots scroll slowly.
pub const IDLE_INTERVAL: Duration = Duration::from_millis(250);

/// Frames while a progress bar moves (a record loading, the library scanning).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Why the window asked for a frame without input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The needle runs: live plots and figures.
    NeedleRunning,
    /// A replay plays.
    ReplayPlaying,
    /// A session is open with the needle idle: its record takes the telemetry in
    /// at each frame.
    SessionRecorded,
    /// A pen is connected and idle, no session: plots scroll, the telemetry's age
    /// counts up.
    PenIdle,
    /// An alarm flashes: the next change of its phase.
    AlarmFlash,
    /// A progress bar moves.
    Progress,
    /// An alarm's audio is paused: its countdown's next second.
    AudioPaused,
}

/// The frame's requests, kept in the context's temporary memory for tests.
#[derive(Debug, Clone, Default)]
struct Requested(Vec<(Reason, Duration)>);

fn id() -> egui::Id {
    egui::Id::unique("punctum-repaint-requests")
}

/// Starts a frame's list of requests (the app calls it first in each frame).
pub fn begin_frame(ctx: &egui::Context) {
    ctx.data_mut(|d| d.insert_temp(id(), Requested::default()));
}

/// Asks for a frame within `after`, for `reason`.
pub fn request(ctx: &egui::Context, reason: Reason, after: Duration) {
    ctx.request_repaint_after(after);
    ctx.data_mut(|d| {
        d.get_temp_mut_or_default::<Requested>(id())
            .0
            .push((reason, after));
    });
}

/// What this frame asked for so far, and why, soonest first.
#[must_use]
pub fn requested(ctx: &egui::Context) -> Vec<(Reason, Duration)> {
    let mut list = ctx.data(|d| d.get_temp::<Requested>(id()).unwrap_or_default().0);
    list.sort_by_key(|&(reason, after)| (after, reason));
    list
}

/// Counts frames and logs the rate every 10 s, with the last frame's reasons, at
/// `PUNCTUM_LOG=punctum::frames=info`: how the README's frame rates are measured.
#[derive(Debug)]
pub struct FrameCounter {
    frames: u64,
    since: std::time::Instant,
}

impl Default for FrameCounter {
    fn default() -> Self {
        Self {
            frames: 0,
            since: std::time::Instant::now(),
        }
    }
}

impl FrameCounter {
    /// Counts a frame (call first in each frame, before [`begin_frame`]: the reasons
    /// logged are then the previous frame's).
    pub fn count(&mut self, ctx: &egui::Context) {
        self.frames += 1;
        let elapsed = self.since.elapsed();
        if elapsed >= Duration::from_secs(10) {
            #[allow(clippy::cast_precision_loss)] // frame counts far below 2^52
            let fps = self.frames as f64 / elapsed.as_secs_f64();
            tracing::info!(
                target: "punctum::frames",
                "{fps:.1} frames/s; last frame asked for {:?}",
                requested(ctx)
            );
            self.frames = 0;
            self.since = std::time::Instant::now();
        }
    }
}

/// How long until a flashing alarm changes phase, at `time_s`, for a flash of
/// `hz` (bright for the first half of each period).
#[must_use]
pub fn until_flash_change(hz: f64, time_s: f64) -> Duration {
    if hz <= 0.0 || !time_s.is_finite() {
        return IDLE_INTERVAL;
    }
    let half_s = 0.5 / hz;
    let into_s = time_s.rem_euclid(half_s);
    // A millisecond late rather than early: a frame just before the change would
    // draw the old phase and ask again at once.
    Duration::try_from_secs_f64((half_s - into_s).max(0.0) + 0.001).unwrap_or(IDLE_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_is_redrawn_just_after_each_change_of_phase() {
        // 2 Hz: phases change every 250 ms.
        let at = |t| until_flash_change(2.0, t).as_secs_f64();
        assert!((at(0.0) - 0.251).abs() < 1e-9);
        assert!((at(0.2) - 0.051).abs() < 1e-9);
        assert!((at(0.25) - 0.251).abs() < 1e-9);
        // 0.6 Hz: every 833 ms.
        assert!((until_flash_change(0.6, 0.0).as_secs_f64() - 0.834_333).abs() < 1e-3);
    }
}
