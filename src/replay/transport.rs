//! The transport: one time cursor over a recorded session, and how it moves (play and
//! pause, speed, seeking, a loop). Pure arithmetic on session milliseconds: it knows
//! nothing of what was recorded (stepping to the next sample or event is in
//! [`super::Replay`], which knows the times).

use std::time::Duration;

/// The playback speeds offered, slowest first.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// Index of 1× in [`SPEEDS`]: the speed a replay starts at.
pub const NORMAL_SPEED_INDEX: usize = 2;

/// The shortest loop, ms: a shorter selection would wrap every frame.
pub const MIN_LOOP_MS: f64 = 100.0;

/// A time range of the session, ms, `start_ms < end_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Where it starts, session ms.
    pub start_ms: f64,
    /// Where it ends, session ms.
    pub end_ms: f64,
}

impl Range {
    /// The range between two points in either order, clamped to `[0, duration_ms]`;
    /// `None` when shorter than [`MIN_LOOP_MS`].
    #[must_use]
    pub fn between(a_ms: f64, b_ms: f64, duration_ms: f64) -> Option<Self> {
        let clamp = |t: f64| {
            if t.is_nan() {
                0.0
            } else {
                t.clamp(0.0, duration_ms)
            }
        };
        let (a, b) = (clamp(a_ms), clamp(b_ms));
        let (start_ms, end_ms) = if a <= b { (a, b) } else { (b, a) };
        (end_ms - start_ms >= MIN_LOOP_MS).then_some(Self { start_ms, end_ms })
    }

    /// Its length, ms.
    #[must_use]
    pub fn len_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }

    /// Whether `t_ms` lies in `[start, end]`.
    #[must_use]
    pub fn contains(&self, t_ms: f64) -> bool {
        (self.start_ms..=self.end_ms).contains(&t_ms)
    }
}

/// The cursor and its motion.
#[derive(Debug, Clone, PartialEq)]
pub struct Transport {
    /// Where the cursor is, session ms, within `[0, duration_ms]`. Fractional: at
    /// 0.25× a 60 Hz frame moves it by 4 ms and a quarter.
    position_ms: f64,
    duration_ms: f64,
    playing: bool,
    speed_index: usize,
    /// A range marked on the timeline (shift-drag), not yet a loop.
    selection: Option<Range>,
    /// The loop's range.
    loop_range: Option<Range>,
    /// Playing wraps within `loop_range`.
    looping: bool,
}

impl Transport {
    /// A paused cursor at the start of a session `duration_ms` long, at 1×.
    #[must_use]
    pub fn new(duration_ms: f64) -> Self {
        Self {
            position_ms: 0.0,
            duration_ms: if duration_ms.is_finite() {
                duration_ms.max(0.0)
            } else {
                0.0
            },
            playing: false,
            speed_index: NORMAL_SPEED_INDEX,
            selection: None,
            loop_range: None,
            looping: false,
        }
    }

    /// Where the cursor is, session ms.
    #[must_use]
    pub fn position_ms(&self) -> f64 {
        self.position_ms
    }

    /// The session's length, ms.
    #[must_use]
    pub fn duration_ms(&self) -> f64 {
        self.duration_ms
    }

    /// Whether it plays.
    #[must_use]
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// The speed, as a factor of real time.
    #[must_use]
    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed_index.min(SPEEDS.len() - 1)]
    }

    /// The speed's index in [`SPEEDS`].
    #[must_use]
    pub fn speed_index(&self) -> usize {
        self.speed_index
    }

    /// Sets the speed to `SPEEDS[index]` (clamped to the list).
    pub fn set_speed_index(&mut self, index: usize) {
        self.speed_index = index.min(SPEEDS.len() - 1);
    }

    /// Plays. At the end (or past the loop's end while looping), it starts over from
    /// the start (or the loop's start), as a player does.
    pub fn play(&mut self) {
        if let Some(range) = self.active_loop() {
            if !range.contains(self.position_ms) || self.position_ms >= range.end_ms {
                self.position_ms = range.start_ms;
            }
        } else if self.position_ms >= self.duration_ms {
            self.position_ms = 0.0;
        }
        self.playing = self.duration_ms > 0.0;
    }

    /// Pauses.
    pub fn pause(&mut self) {
        self.playing = false;
    }

    /// Plays if paused, pauses if playing.
    pub fn toggle_play(&mut self) {
        if self.playing {
            self.pause();
        } else {
            self.play();
        }
    }

    /// Moves the cursor by `real_elapsed` × speed when playing. While looping it wraps
    /// from the loop's end to its start (and a cursor moved out of the loop comes back
    /// to it); otherwise it stops at the session's end and pauses there.
    pub fn advance(&mut self, real_elapsed: Duration) {
        if !self.playing {
            return;
        }
        let mut next = self.position_ms + real_elapsed.as_secs_f64() * 1000.0 * self.speed();
        if let Some(range) = self.active_loop() {
            if next >= range.end_ms {
                next = range.start_ms + (next - range.end_ms) % range.len_ms();
            } else if next < range.start_ms {
                next = range.start_ms;
            }
        } else if next >= self.duration_ms {
            next = self.duration_ms;
            self.playing = false;
        }
        self.position_ms = next;
    }

    /// Puts the cursor at `t_ms`, clamped to the session. Playing goes on from there.
    pub fn seek_ms(&mut self, t_ms: f64) {
        self.position_ms = if t_ms.is_nan() {
            0.0
        } else {
            t_ms.clamp(0.0, self.duration_ms)
        };
    }

    /// Moves the cursor by `delta_ms` (negative: back), clamped to the session.
    pub fn jump_ms(&mut self, delta_ms: f64) {
        self.seek_ms(self.position_ms + delta_ms);
    }

    /// The range marked on the timeline.
    #[must_use]
    pub fn selection(&self) -> Option<Range> {
        self.selection
    }

    /// Marks `[a, b]` (either order; clamped; `None` when too short or `None` given).
    pub fn select(&mut self, range: Option<(f64, f64)>) {
        self.selection = range.and_then(|(a, b)| Range::between(a, b, self.duration_ms));
    }

    /// The loop's range, set or not, on or off.
    #[must_use]
    pub fn loop_range(&self) -> Option<Range> {
        self.loop_range
    }

    /// The loop, when it is on and set.
    #[must_use]
    pub fn active_loop(&self) -> Option<Range> {
        self.loop_range.filter(|_| self.looping)
    }

    /// Whether looping is on.
    #[must_use]
    pub fn looping(&self) -> bool {
        self.looping
    }

    /// Turns looping on or off; on needs a loop range (false is returned without one).
    pub fn set_looping(&mut self, on: bool) -> bool {
        self.looping = on && self.loop_range.is_some();
        self.looping == on
    }

    /// Makes the selection the loop and turns looping on; false when nothing is
    /// selected.
    pub fn loop_selection(&mut self) -> bool {
        let Some(range) = self.selection else {
            return false;
        };
        self.loop_range = Some(range);
        self.looping = true;
        if self.playing && !range.contains(self.position_ms) {
            self.position_ms = range.start_ms;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn it_starts_paused_at_zero_at_normal_speed() {
        let t = Transport::new(60_000.0);
        assert!((t.position_ms() - 0.0).abs() < f64::EPSILON);
        assert!(!t.playing());
        assert!((t.speed() - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn advancing_moves_by_real_time_times_speed_only_while_playing() {
        let mut t = Transport::new(60_000.0);
        t.advance(ms(500));
        assert!((t.position_ms() - 0.0).abs() < f64::EPSILON, "paused");
        t.play();
        t.advance(ms(500));
        assert!((t.position_ms() - 500.0).abs() < 1e-9);
        for (index, expected_step) in SPEEDS.iter().map(|s| s * 100.0).enumerate() {
            t.set_speed_index(index);
            let before = t.position_ms();
            t.advance(ms(100));
            assert!(
                (t.position_ms() - before - expected_step).abs() < 1e-9,
                "speed {}",
                SPEEDS[index]
            );
        }
        t.pause();
        let before = t.position_ms();
        t.advance(ms(1000));
        assert!((t.position_ms() - before).abs() < f64::EPSILON);
    }

    #[test]
    #[allow(clippy::float_cmp)] // exact constants
    fn the_speeds_run_from_a_quarter_to_sixteen_and_clamp() {
        assert_eq!(SPEEDS, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
        let mut t = Transport::new(1000.0);
        t.set_speed_index(99);
        assert!((t.speed() - 16.0).abs() < f64::EPSILON);
        t.set_speed_index(0);
        assert!((t.speed() - 0.25).abs() < f64::EPSILON);
    }

    #[test]
    fn playing_stops_and_pauses_at_the_end_and_play_starts_over() {
        let mut t = Transport::new(1000.0);
        t.play();
        t.set_speed_index(6); // 16×
        t.advance(ms(100)); // 1600 ms of session: past the end
        assert!((t.position_ms() - 1000.0).abs() < f64::EPSILON);
        assert!(!t.playing(), "paused at the end");
        t.play();
        assert!(t.playing());
        assert!(t.position_ms().abs() < f64::EPSILON, "from the start again");
    }

    #[test]
    fn seeking_and_jumping_clamp_to_the_session() {
        let mut t = Transport::new(10_000.0);
        t.seek_ms(4000.0);
        t.jump_ms(5000.0);
        assert!((t.position_ms() - 9000.0).abs() < f64::EPSILON);
        t.jump_ms(5000.0);
        assert!((t.position_ms() - 10_000.0).abs() < f64::EPSILON);
        t.jump_ms(-25_000.0);
        assert!(t.position_ms().abs() < f64::EPSILON);
        t.seek_ms(f64::NAN);
        assert!(t.position_ms().abs() < f64::EPSILON);
        t.seek_ms(-3.0);
        assert!(t.position_ms().abs() < f64::EPSILON);
    }

    #[test]
    fn a_loop_wraps_playing_from_its_end_to_its_start() {
        let mut t = Transport::new(60_000.0);
        t.select(Some((12_000.0, 10_000.0))); // either order
        assert_eq!(
            t.selection(),
            Some(Range {
                start_ms: 10_000.0,
                end_ms: 12_000.0
            })
        );
        assert!(t.loop_selection());
        assert!(t.looping());
        t.play();
        assert!(
            (t.position_ms() - 10_000.0).abs() < f64::EPSILON,
            "play enters the loop"
        );
        t.advance(ms(1500));
        assert!((t.position_ms() - 11_500.0).abs() < 1e-9);
        t.advance(ms(1000)); // 12 500: half a second past the end
        assert!((t.position_ms() - 10_500.0).abs() < 1e-9, "wrapped");
        assert!(t.playing(), "a loop never pauses");
        // Many loops in one step still land inside.
        t.set_speed_index(6);
        t.advance(ms(1_000));
        assert!(t.active_loop().is_some_and(|r| r.contains(t.position_ms())));
        // Off: plays through to the end.
        t.set_looping(false);
        t.seek_ms(11_900.0);
        t.advance(ms(100));
        assert!(t.position_ms() > 12_000.0);
    }

    #[test]
    fn looping_needs_a_range_and_a_tiny_selection_is_none() {
        let mut t = Transport::new(60_000.0);
        assert!(!t.set_looping(true));
        assert!(!t.looping());
        assert!(!t.loop_selection());
        t.select(Some((5000.0, 5050.0)));
        assert_eq!(t.selection(), None, "shorter than the minimum loop");
        t.select(Some((-500.0, 90_000.0)));
        assert_eq!(
            t.selection(),
            Some(Range {
                start_ms: 0.0,
                end_ms: 60_000.0
            }),
            "clamped to the session"
        );
        t.select(None);
        assert_eq!(t.selection(), None);
    }

    #[test]
    fn an_empty_session_never_plays() {
        let mut t = Transport::new(0.0);
        t.play();
        assert!(!t.playing());
        let mut t = Transport::new(f64::NAN);
        t.play();
        assert!(!t.playing());
        assert!(t.duration_ms().abs() < f64::EPSILON);
    }
}
