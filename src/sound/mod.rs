//! The alarms' sound: IEC 60601-1-8's auditory signals, played through the desktop's
//! sound server on a thread of its own.
//!
//! - [`signal`]: the signals' parameters (the one place they live) and the
//!   [`Sequencer`](signal::Sequencer) that turns "what should sound" into samples.
//! - [`pulse`]: one playback stream on a PulseAudio (or pipewire-pulse) server,
//!   through the pure-Rust `pulseaudio` crate, on a socket with timeouts.
//! - [`analysis`]: reads pulses back from samples (tests, the bench).
//! - This file: [`Sound`], the handle the station drives, and the audio thread
//!   (`punctum-sound`).
//!
//! **Sound never holds up the station.** The handle's calls put a message on a bounded
//! channel and return; a full channel drops the message, and the station sends its
//! state again on its next tick. The thread reconnects with backoff (250 ms doubling
//! to 5 s) when the server vanishes.
//!
//! **Fail safe.** The status ([`SoundStatus`]) says `working` only once the server has
//! played the stream past its self-test tone; any failure makes it `unavailable` with
//! the reason, which the station raises as the `alarm_sound_unavailable` alarm.

pub mod analysis;
pub mod pulse;
pub mod signal;

use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use crate::link::Waker;
use crate::safety::alarms::Priority;
use pulse::{Incoming, SoundError, Stream};
use signal::{Program, Sequencer};

/// How long the thread waits on the server for any one step.
const SERVER_TIMEOUT: Duration = Duration::from_secs(1);

/// A stream that has not played its self-test within this is not working. Longer
/// than [`SERVER_TIMEOUT`]: an idle sink (PulseAudio's null sink, a device waking from
/// suspend) may sleep up to about 2 s before it asks a new stream for data.
const SELF_TEST_DEADLINE: Duration = Duration::from_secs(4);

/// The first wait before trying a server again.
const BACKOFF_MIN: Duration = Duration::from_millis(250);

/// The longest wait between tries.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Messages waiting for the thread at most.
const CHANNEL_CAPACITY: usize = 32;

/// Whether alarms can be heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundStatus {
    /// The station was started without sound (the console without `--sound`).
    Off,
    /// Connecting, or the self-test tone has not played yet.
    Starting,
    /// The server has played the stream past its self-test tone.
    Working {
        /// The sink the server plays to.
        sink: String,
    },
    /// No sound can be played: why, in the operator's words.
    Unavailable {
        /// The reason.
        reason: String,
    },
}

impl SoundStatus {
    /// One word: `off`, `starting`, `working`, `unavailable`.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Starting => "starting",
            Self::Working { .. } => "working",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

impl std::fmt::Display for SoundStatus {
    /// `working (alarm_sink)`, `unavailable: no sound server at …`, `off`,
    /// `starting`: what the record's header and the screens say.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Working { sink } if !sink.is_empty() => write!(f, "working ({sink})"),
            Self::Unavailable { reason } => write!(f, "unavailable: {reason}"),
            other => f.write_str(other.word()),
        }
    }
}

/// What the thread was last told to sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Followed {
    /// Nothing yet.
    Nothing,
    /// This signal, or silence.
    Signal(Option<Priority>),
}

/// What the station asks of the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Alarm(Option<Priority>),
    Test(Program),
    Volume(u8),
    Shutdown,
}

struct Shared {
    status: Mutex<SoundStatus>,
    /// Bumped at every change of `status`, so a caller polling every tick reads the
    /// status only when it changed.
    generation: std::sync::atomic::AtomicU64,
    waker: Option<Waker>,
    /// Until when the last "Test alarm sound" plays.
    testing_until: Mutex<Option<Instant>>,
}

impl Shared {
    fn set(&self, status: SoundStatus) {
        let mut current = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != status {
            match &status {
                SoundStatus::Unavailable { reason } => {
                    tracing::warn!("alarm sound unavailable: {reason}");
                }
                other => tracing::info!("alarm sound {other}"),
            }
            *current = status;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            drop(current);
            if let Some(waker) = &self.waker {
                (waker.0)();
            }
        }
    }
}

/// The handle to the audio thread. Cheap to clone; every call returns at once.
#[derive(Clone)]
pub struct Sound {
    requests: Option<Sender<Request>>,
    shared: Arc<Shared>,
    /// The last alarm signal the thread accepted, so a tick only sends a change.
    last_alarm: Arc<Mutex<Followed>>,
}

impl std::fmt::Debug for Sound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sound")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Sound {
    /// No sound: status [`SoundStatus::Off`], every call does nothing.
    #[must_use]
    pub fn off() -> Self {
        Self {
            requests: None,
            shared: Arc::new(Shared {
                status: Mutex::new(SoundStatus::Off),
                generation: std::sync::atomic::AtomicU64::new(0),
                waker: None,
                testing_until: Mutex::new(None),
            }),
            last_alarm: Arc::new(Mutex::new(Followed::Nothing)),
        }
    }

    /// Starts the audio thread on the server at `socket`, or else the one the
    /// environment names ([`pulse::socket_path`]), at `volume_pct`; it plays the
    /// self-test tone as soon as its stream is up. `waker` is called (on the audio
    /// thread) when the status changes.
    #[must_use]
    pub fn start(socket: Option<&std::path::Path>, volume_pct: u8, waker: Option<Waker>) -> Self {
        let path = socket.map_or_else(
            || pulse::socket_path(|name| std::env::var_os(name)),
            |socket| Ok(socket.to_path_buf()),
        );
        let (tx, rx) = bounded(CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            status: Mutex::new(SoundStatus::Starting),
            generation: std::sync::atomic::AtomicU64::new(0),
            waker,
            testing_until: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("punctum-sound".into())
            .spawn(move || run(&rx, &thread_shared, &path, volume_pct));
        if let Err(e) = spawned {
            shared.set(SoundStatus::Unavailable {
                reason: format!("the audio thread could not start: {e}"),
            });
        }
        Self {
            requests: Some(tx),
            shared,
            last_alarm: Arc::new(Mutex::new(Followed::Nothing)),
        }
    }

    /// Whether alarms can be heard now.
    #[must_use]
    pub fn status(&self) -> SoundStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A number that changes whenever [`status`](Self::status) does.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.shared
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sounds `priority`'s signal (the station's highest audible alarm), or nothing.
    /// Only a change is sent; a full channel leaves it for the next call.
    pub fn follow(&self, priority: Option<Priority>) {
        let mut last = self
            .last_alarm
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last != Followed::Signal(priority) && self.send(Request::Alarm(priority)) {
            *last = Followed::Signal(priority);
        }
    }

    /// Plays each priority's signal once, high first ("Test alarm sound"), about 8 s.
    /// `alarm_sounding`: the station's alarms are sounding, and a test never covers
    /// them.
    ///
    /// # Errors
    /// Why it cannot play, in the operator's words: sound off, unavailable (with its
    /// reason), an alarm sounding, or the audio thread busy.
    pub fn test_all(&self, alarm_sounding: bool) -> Result<(), String> {
        let mut testing = self
            .shared
            .testing_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match self.status() {
            SoundStatus::Off => {
                Err("the alarm sound is off (the console's --sound turns it on)".into())
            }
            SoundStatus::Unavailable { reason } => {
                Err(format!("the alarm sound is unavailable: {reason}"))
            }
            _ if alarm_sounding => Err("an alarm is sounding: test once it is quiet".into()),
            _ if testing.is_some_and(|until| now < until) => {
                Err("a test is playing already: wait for its end".into())
            }
            _ if self.send(Request::Test(Program::TestAll)) => {
                // The lead-in of a stream still starting, and the test itself.
                *testing = Some(
                    now + Duration::from_millis(u64::from(
                        signal::LEAD_IN_MS + signal::test_all_ms(),
                    )),
                );
                Ok(())
            }
            _ => Err("the audio thread is busy: try again".into()),
        }
    }

    /// Plays at `volume_pct` from now on (checked by [`signal::check_volume`]).
    pub fn set_volume(&self, volume_pct: u8) {
        self.send(Request::Volume(volume_pct));
    }

    fn send(&self, request: Request) -> bool {
        let Some(tx) = &self.requests else {
            return false;
        };
        match tx.try_send(request) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Disconnected(_)) => {
                self.shared.set(SoundStatus::Unavailable {
                    reason: "the audio thread has stopped".into(),
                });
                false
            }
        }
    }

    /// Stops the audio thread (it ends within one server request, about 10 ms).
    pub fn shutdown(&self) {
        self.send(Request::Shutdown);
    }
}

/// What the station last asked for, kept across reconnections.
struct Wanted {
    alarm: Option<Priority>,
    volume_pct: u8,
    /// A test asked for while no stream was up (starting): played once one is.
    test: Option<Program>,
}

impl Wanted {
    /// Applies a request; false on shutdown.
    fn apply(&mut self, request: Request, sequencer: Option<&mut Sequencer>) -> bool {
        match request {
            Request::Alarm(p) => {
                self.alarm = p;
                if let Some(s) = sequencer {
                    s.set_alarm(p);
                }
            }
            Request::Volume(v) => {
                self.volume_pct = v;
                if let Some(s) = sequencer {
                    s.set_volume(v);
                }
            }
            Request::Test(program) => match sequencer {
                Some(s) => {
                    // Refused only over an alarm or another test, which the station
                    // has already checked: nothing to tell.
                    let _ = s.test(program);
                }
                None => self.test = Some(program),
            },
            Request::Shutdown => return false,
        }
        true
    }
}

/// The audio thread: connect, play, and on any failure say why and try again.
fn run(
    requests: &Receiver<Request>,
    shared: &Shared,
    path: &Result<std::path::PathBuf, SoundError>,
    volume_pct: u8,
) {
    let mut wanted = Wanted {
        alarm: None,
        volume_pct,
        test: None,
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let outcome = match path {
            Ok(path) => Stream::open(path, SERVER_TIMEOUT)
                .and_then(|(stream, first)| play(stream, first, requests, shared, &mut wanted)),
            Err(e) => Err(e.clone()),
        };
        match outcome {
            Ok(Shutdown) => return,
            Err(e) => {
                let was_working = matches!(
                    *shared.status.lock().unwrap_or_else(PoisonError::into_inner),
                    SoundStatus::Working { .. }
                );
                if was_working {
                    // It played, then failed (a server restart): try again soon.
                    backoff = BACKOFF_MIN;
                }
                shared.set(SoundStatus::Unavailable {
                    reason: e.to_string(),
                });
            }
        }
        // Wait before the next try, taking requests meanwhile.
        let until = Instant::now() + backoff;
        loop {
            match requests.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(request) => {
                    if !wanted.apply(request, None) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The station asked the thread to stop (or dropped every handle).
struct Shutdown;

/// Plays on `stream` until shutdown or a failure.
fn play(
    mut stream: Stream,
    first_samples: usize,
    requests: &Receiver<Request>,
    shared: &Shared,
    wanted: &mut Wanted,
) -> Result<Shutdown, SoundError> {
    let mut sequencer = Sequencer::new(wanted.volume_pct);
    sequencer.set_alarm(wanted.alarm);
    let _ = sequencer.test(wanted.test.take().unwrap_or(Program::TestTone));
    // Working once the sink has read past the lead-in and a tone's length, whatever
    // played there (the tone, or an alarm that was already asked for).
    let confirm_at = signal::samples_in(signal::LEAD_IN_MS + signal::TEST_TONE_MS) as u64;
    let opened = Instant::now();
    let mut confirmed = false;
    let mut buffer = vec![0_i16; first_samples];
    sequencer.fill(&mut buffer);
    stream.write(&buffer)?;
    stream.set_timeout(SELF_TEST_DEADLINE)?;
    loop {
        loop {
            match requests.try_recv() {
                Ok(request) => {
                    if !wanted.apply(request, Some(&mut sequencer)) {
                        return Ok(Shutdown);
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Ok(Shutdown),
            }
        }
        let incoming = stream.receive().map_err(|e| match e {
            // Playing, the server asks for samples every few ms: a second without a
            // request is a sink that stopped (suspended) or a server that is stuck.
            SoundError::Lost { path, why } if confirmed && why == pulse::NO_ANSWER => {
                SoundError::Lost {
                    path,
                    why: "it stopped asking for sound for 1 s (a suspended sink, or a stuck \
                          server)"
                        .into(),
                }
            }
            other => other,
        })?;
        match incoming {
            Incoming::Request(samples) => {
                buffer.resize(samples, 0);
                sequencer.fill(&mut buffer);
                stream.write(&buffer)?;
                if !confirmed {
                    if opened.elapsed() > SELF_TEST_DEADLINE {
                        return Err(SoundError::Lost {
                            path: stream.path().to_owned(),
                            why: format!(
                                "it took the alarm stream but played nothing within {} s",
                                SELF_TEST_DEADLINE.as_secs()
                            ),
                        });
                    }
                    stream.ask_played()?;
                }
            }
            Incoming::Played(read) if !confirmed && read >= confirm_at => {
                confirmed = true;
                // Playing: the server asks every few ms from now on; a second without
                // a word is a server that has gone.
                stream.set_timeout(SERVER_TIMEOUT)?;
                shared.set(SoundStatus::Working {
                    sink: stream.sink().to_owned(),
                });
            }
            Incoming::Underflow => {
                tracing::debug!("alarm stream underflow: the audio thread was late");
            }
            Incoming::Played(_) | Incoming::Other => {}
        }
    }
}
