//! The station window: one eframe app, panels in their own files.
//!
//! Structure follows egui's demo app: persisted settings (`Persisted`) apart from
//! runtime state; each panel is a `*_ui` function that draws from the station's state
//! and returns [`UiCommand`]s; the app applies them once, after layout, never in the
//! middle of drawing. The window holds no safety rule: it asks the station, and the
//! interlock in the link thread decides; a refusal is shown with its reason.
//!
//! The frame loop never blocks on I/O: each frame drains the link's channels
//! (`Station::pump` with a zero timeout), which also proves to the link that the window
//! is alive. Should a frame freeze for 250 ms, the link stops the heartbeats and the
//! pen's watchdog stops the needle.
//!
//! Two modes share the session views (face map, duration, plots, alarm banner and
//! list, all drawn from a [`SessionSource`]): live, from the station; and replay, from
//! a recorded session at the replay's cursor, with the transport and timeline at the
//! bottom and a REPLAY strip across the top. A recording opens on a background
//! thread (`replay::open`), so the frame loop keeps running while it loads.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::link::discovery::{self, PortEntry};
use crate::link::{LinkConfig, LinkState, Outcome};
use crate::protocol::Command;
use crate::replay::open::{LoadOutcome, Loading};
use crate::replay::{Direction, Replay, ReplayCommand};
use crate::safety::interlock::SafetyUpdate;
use crate::sim::{SimConfig, SimPen};
use crate::sound::Sound;
use crate::station::session::SessionSummary;
use crate::station::{Notice, Station, setup};

pub use super::commands::{LogLine, PortChoice, UiCommand};
use super::source::SessionSource;
use super::{
    alarm_banner, calibration_panel, checklist_panel, client_file_panel, connection_bar, controls,
    library_panel, lot_search_panel, open_recording, plots, replay_info, replay_panel,
    session_panel, summary_panel, technician_panel,
};

/// What takes the centre of the live window (the session panel's and the plots'
/// place); the alarm banner, the connection bar, the controls (Stop, E-STOP) and the
/// alarm list stay on every screen. One place decides it: [`StationApp::screen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The session panel (screening, the open session and its checklist) and the
    /// face map and plots.
    Treatment,
    /// The session library.
    Library,
    /// A client's file.
    ClientFile,
    /// The lot search.
    LotSearch,
    /// The calibration wizard (technician mode only).
    Calibration,
    /// Nobody is signed in: the sign-in screen (the first admin's form on the first
    /// start).
    SignIn,
    /// The lock is down: unlock or take over; the E-stop and Stop stay.
    Locked,
    /// The admin screen: accounts, zone limits, settings.
    Admin,
}

/// Settings kept across runs by eframe's persistence.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// The pen used last.
    pub last_port: Option<PortChoice>,
    /// Dark theme.
    pub dark_mode: bool,
    /// The follow-live window of the plots, seconds.
    pub follow_window_s: f64,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            last_port: None,
            dark_mode: true,
            follow_window_s: plots::DEFAULT_FOLLOW_S,
        }
    }
}

/// How the window was started.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    /// `--port`: a pen to use.
    pub port: Option<PathBuf>,
    /// `--sim`: the built-in simulated pen, even if a pen is plugged in.
    pub sim: bool,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--zones`.
    pub zones: Option<PathBuf>,
    /// `--operator`.
    pub operator: Option<String>,
    /// Telemetry rate asked of the pen, Hz.
    pub telemetry_hz: u32,
    /// `punctum replay FILE`: open this recording at start, without connecting to a
    /// pen ("Back to live" connects).
    pub replay: Option<PathBuf>,
    /// The window's context: the link wakes it when an event arrives (see
    /// [`super::repaint`]). `None`: nothing wakes it but input and its own requests.
    pub repaint_ctx: Option<egui::Context>,
    /// Sound the alarms through the desktop's sound server (the window always does;
    /// tests choose).
    pub sound: bool,
    /// The sound server's socket instead of the environment's (tests).
    pub sound_socket: Option<PathBuf>,
    /// `--clinic`: the clinic store (a URL or a connection file); else the data
    /// folder's `clinic.conn`, else none.
    pub clinic: Option<String>,
}

/// A file's length and modification time (`None` when it does not exist): enough to
/// tell that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp(Option<(u64, Option<std::time::SystemTime>)>);

impl FileStamp {
    fn of(path: &std::path::Path) -> Self {
        Self(
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.len(), m.modified().ok())),
        )
    }
}

/// The station window.
pub struct StationApp {
    /// Settings kept across runs.
    pub persisted: Persisted,
    options: WindowOptions,
    station: Option<Station>,
    sim: Option<SimPen>,
    port: Option<PortChoice>,
    ports: Vec<PortEntry>,
    /// The screening form.
    pub screening: session_panel::ScreeningForm,
    /// Depth and speed controls, and the reset dialog.
    pub controls: controls::ControlsState,
    /// Plot modes.
    pub plots: plots::PlotsState,
    log: VecDeque<LogLine>,
    last_refusal: Option<LogLine>,
    summary: Option<SessionSummary>,
    aftercare_file: Option<PathBuf>,
    fatal: Option<String>,
    /// The recorded session shown instead of the live one.
    replay: Option<Replay>,
    /// A recording opening in the background.
    loading: Option<Loading>,
    /// The file dialog and the last failure to open.
    open_recording: open_recording::OpenRecordingState,
    /// The timeline's drag state.
    replay_panel: replay_panel::ReplayPanelState,
    /// The replay's events list (which event it follows).
    replay_events: replay_info::EventsListState,
    /// The session library screen.
    library: library_panel::LibraryState,
    /// The procedure checklist's forms.
    pub checklist: checklist_panel::ChecklistState,
    /// The client file screen.
    client_file: client_file_panel::ClientFileState,
    /// The lot search screen.
    lot_search: lot_search_panel::LotSearchState,
    /// The records as the client file and the lot search last read them.
    records: client_file_panel::SharedLibrary,
    /// The technician dialog (PIN).
    technician: technician_panel::TechnicianState,
    /// The sign-in, lock and sign-record screens' fields.
    people: super::sign_in_panel::PeopleState,
    /// Whether the data folder has no account yet (the first-admin form), with the
    /// accounts file's length and time when it was read: the sign-in screen reads
    /// the file again only when it changed (another station or the console may
    /// create the first admin), not every frame.
    first_admin_needed: Option<(FileStamp, Result<bool, String>)>,
    /// The admin screen.
    admin: super::admin_panel::AdminState,
    /// The calibration wizard's choices and typed reading.
    calibration: calibration_panel::CalibrationPanelState,
    /// The simulated pen to start instead of the built-in one (its hidden errors, its
    /// calibration): for tests and demonstrations.
    sim_config: Option<SimConfig>,
    /// The window title last sent to the viewport.
    title_sent: Option<String>,
    /// Closing the window: asked, confirmed, or forced by a signal.
    exit: ExitState,
    /// Frames drawn, for `PUNCTUM_LOG=punctum::frames=info` (the README's figures).
    frames: super::repaint::FrameCounter,
    /// The alarms' sound: lives as long as the window, so the self-test plays at
    /// start and the sound's state shows before any pen is connected.
    sound: Sound,
    /// The alarm volume as the settings hold it, %.
    alarm_volume_pct: u8,
}

/// How the window is closing (see [`super::close_dialog`]).
#[derive(Debug, Default)]
struct ExitState {
    /// The close question is on screen.
    asking: bool,
    /// Closing with a session open was confirmed (or a signal asked for it).
    confirmed: bool,
    /// Send the close to the viewport in this frame.
    close_now: bool,
    /// What ends the open session: `window closed`, `signal SIGTERM`.
    ended_by: Option<String>,
    /// Signals, once listened for (by [`run`]).
    signals: Option<crossbeam_channel::Receiver<crate::signals::Stop>>,
    /// The signal that closed the window, for the exit status.
    stopped_by: Option<std::sync::Arc<std::sync::Mutex<Option<crate::signals::Stop>>>>,
}

/// How long the closing window waits for the pen to report the motor stopped.
const EXIT_HALT_WAIT: Duration = Duration::from_secs(1);

const LOG_LINES: usize = 200;

impl StationApp {
    /// The app, started on the pen the options and the port list choose; or, with
    /// `options.replay`, opening that recording without connecting.
    #[must_use]
    pub fn new(options: WindowOptions, persisted: Persisted) -> Self {
        let replay_file = options.replay.clone();
        let mut app = Self::unconnected(options, persisted);
        app.refresh_ports();
        if let Some(path) = replay_file {
            app.apply(UiCommand::OpenRecording(path));
            return app;
        }
        let choice = app.initial_port();
        app.connect(choice);
        app
    }

    /// The app showing `replay`, with no pen connected ("Back to live" connects). For
    /// tests, benchmarks, and a caller that has a recording in hand.
    #[must_use]
    pub fn new_replay(options: WindowOptions, persisted: Persisted, replay: Replay) -> Self {
        let mut app = Self::unconnected(options, persisted);
        app.refresh_ports();
        app.enter_replay(replay);
        app
    }

    /// The app on a simulated pen started from `config` (hidden errors, a first
    /// calibration) instead of the built-in one; reconnecting to "built-in simulated
    /// pen" starts it again from the same config. For tests and demonstrations.
    #[must_use]
    pub fn new_with_sim(options: WindowOptions, persisted: Persisted, config: SimConfig) -> Self {
        let mut app = Self::unconnected(options, persisted);
        app.sim_config = Some(config);
        app.refresh_ports();
        app.connect(PortChoice::Simulated);
        app
    }

    fn unconnected(options: WindowOptions, persisted: Persisted) -> Self {
        let waker = options
            .repaint_ctx
            .clone()
            .map(|ctx| crate::link::Waker(std::sync::Arc::new(move || ctx.request_repaint())));
        // Without a data folder (the connection says why) the alarms sound at the
        // default volume meanwhile.
        let data = setup::open_data_dir(options.data_dir.as_deref()).ok();
        let (sound, alarm_volume_pct, volume_warning) = setup::start_sound(
            data.as_ref(),
            options.sound,
            options.sound_socket.as_deref(),
            waker,
        );
        let mut app = Self::fields(options, persisted, sound, alarm_volume_pct);
        if let Some(warning) = volume_warning {
            app.note(warning, true);
        }
        // The records read once in the background now, so that the first client file
        // or lot search reads only what changed since.
        if let Some(data) = &data {
            client_file_panel::warm(&app.records, data.path(crate::record::writer::SESSIONS_DIR));
        }
        app
    }

    fn fields(
        options: WindowOptions,
        persisted: Persisted,
        sound: Sound,
        alarm_volume_pct: u8,
    ) -> Self {
        Self {
            persisted,
            options,
            station: None,
            sim: None,
            port: None,
            ports: Vec::new(),
            screening: session_panel::ScreeningForm::default(),
            controls: controls::ControlsState::default(),
            plots: plots::PlotsState::default(),
            log: VecDeque::new(),
            last_refusal: None,
            summary: None,
            aftercare_file: None,
            fatal: None,
            replay: None,
            loading: None,
            open_recording: open_recording::OpenRecordingState::default(),
            replay_panel: replay_panel::ReplayPanelState::default(),
            replay_events: replay_info::EventsListState::default(),
            library: library_panel::LibraryState::default(),
            checklist: checklist_panel::ChecklistState::default(),
            client_file: client_file_panel::ClientFileState::default(),
            lot_search: lot_search_panel::LotSearchState::default(),
            records: client_file_panel::SharedLibrary::default(),
            technician: technician_panel::TechnicianState::default(),
            people: super::sign_in_panel::PeopleState::default(),
            first_admin_needed: None,
            admin: super::admin_panel::AdminState::default(),
            calibration: calibration_panel::CalibrationPanelState::default(),
            sim_config: None,
            title_sent: None,
            exit: ExitState::default(),
            frames: super::repaint::FrameCounter::default(),
            sound,
            alarm_volume_pct,
        }
    }

    /// `--port`, else `--sim`, else a marked pen, else the last port if present, else
    /// the built-in simulated pen, so a new user sees the station working at once.
    fn initial_port(&self) -> PortChoice {
        if let Some(port) = &self.options.port {
            return PortChoice::Path(port.to_string_lossy().into_owned());
        }
        if self.options.sim {
            return PortChoice::Simulated;
        }
        if let Some(pen) = self.ports.iter().find(|p| p.is_pen) {
            return PortChoice::Path(pen.path.clone());
        }
        match &self.persisted.last_port {
            Some(PortChoice::Path(p)) if self.ports.iter().any(|e| &e.path == p) => {
                PortChoice::Path(p.clone())
            }
            _ => PortChoice::Simulated,
        }
    }

    fn refresh_ports(&mut self) {
        match discovery::list_ports() {
            Ok(ports) => self.ports = ports,
            Err(e) => self.note(format!("cannot list serial ports: {e}"), false),
        }
    }

    fn connect(&mut self, choice: PortChoice) {
        // Whoever is signed in stays signed in on the new connection.
        let carried = self.station.as_mut().and_then(Station::take_sign_in);
        self.disconnect();
        match self.start_station(&choice) {
            Ok(()) => {
                if let (Some(station), Some(carried)) = (&mut self.station, carried)
                    && let Err(e) = station.resume_sign_in(carried)
                {
                    self.note(format!("sign in again: {e}"), true);
                }
                self.persisted.last_port = Some(choice.clone());
                self.port = Some(choice);
            }
            Err(e) => {
                let text = format!("{e:#}");
                self.note(text.clone(), true);
                if self.station.is_none() {
                    self.fatal = Some(text);
                }
            }
        }
    }

    fn start_station(&mut self, choice: &PortChoice) -> anyhow::Result<()> {
        let data = setup::open_data_dir(self.options.data_dir.as_deref())?;
        let zones = setup::load_zones(self.options.zones.as_deref(), &data)?;
        let who = setup::operator(self.options.operator.as_deref());
        for change in setup::record_limit_changes(&data, &zones, &who)? {
            self.note(change, false);
        }
        let path = match choice {
            PortChoice::Simulated => {
                let pen = match &self.sim_config {
                    Some(config) => SimPen::spawn(config.clone())?,
                    None => setup::start_builtin_sim(&data)?,
                };
                let path = pen.port_path();
                self.sim = Some(pen);
                path
            }
            PortChoice::Path(p) => PathBuf::from(p),
        };
        let mut config = LinkConfig::new(&path);
        config.zones = zones.clone();
        config.telemetry_hz = self.options.telemetry_hz.max(10);
        if let Some(ctx) = self.options.repaint_ctx.clone() {
            config.waker = Some(crate::link::Waker(std::sync::Arc::new(move || {
                ctx.request_repaint();
            })));
        }
        let link = crate::link::Link::spawn(config)?;
        let mut station = Station::new(link, data, zones)?;
        station.set_simulated(matches!(choice, PortChoice::Simulated));
        station.set_sound(self.sound.clone());
        if let Some(said) = setup::join_clinic(&mut station, self.options.clinic.as_deref())? {
            self.note(said, false);
        }
        self.station = Some(station);
        self.fatal = None;
        Ok(())
    }

    /// A close asked while a session is open is held back and asked about; a signal
    /// closes at once (the session ended on the way out, by [`Self::end_before_exit`]).
    fn handle_close(&mut self, ctx: &egui::Context) {
        if let Some(signals) = &self.exit.signals
            && let Ok(stop) = signals.try_recv()
        {
            self.exit.ended_by = Some(format!("signal {}", stop.name()));
            self.exit.confirmed = true;
            if let Some(slot) = &self.exit.stopped_by
                && let Ok(mut slot) = slot.lock()
            {
                *slot = Some(stop);
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        let session_open = self.station.as_ref().is_some_and(|s| s.session().is_some());
        if ctx.input(|i| i.viewport().close_requested()) && session_open && !self.exit.confirmed {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.exit.asking = true;
        }
    }

    /// On the way out with a session open: halt the pen and see it stop (at most
    /// [`EXIT_HALT_WAIT`]), then close the record with its summary, marked with what
    /// ended it.
    fn end_before_exit(&mut self) {
        let Some(station) = &mut self.station else {
            return;
        };
        if station.session().is_none() {
            return;
        }
        let ended_by = self
            .exit
            .ended_by
            .clone()
            .unwrap_or_else(|| "window closed".to_owned());
        let _ = station.halt_before_exit(EXIT_HALT_WAIT);
        if let Err(e) = station.end_session_ended_by(true, Some(ended_by)) {
            tracing::error!("the session could not be ended on the way out: {e}");
        }
    }

    /// Listens for SIGINT, SIGTERM and SIGHUP: each closes the window, ending the
    /// session as a confirmed close would; the signal goes into `stopped_by`.
    pub fn listen_for_signals(
        &mut self,
        signals: crossbeam_channel::Receiver<crate::signals::Stop>,
        stopped_by: std::sync::Arc<std::sync::Mutex<Option<crate::signals::Stop>>>,
    ) {
        self.exit.signals = Some(signals);
        self.exit.stopped_by = Some(stopped_by);
    }

    fn disconnect(&mut self) {
        if let Some(station) = self.station.take() {
            station.shutdown();
        }
        self.sim = None;
        self.port = None;
    }

    fn note(&mut self, text: String, refusal: bool) {
        let at_s = self.station.as_ref().map_or(0.0, Station::now_s);
        // The log quotes the pen, files and what was typed: one line each, controls
        // shown escaped.
        // (Usually nothing to escape: the String is then kept, not copied.)
        let text = match crate::text::shown(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        let line = LogLine {
            at_s,
            text,
            refusal,
        };
        if refusal {
            self.last_refusal = Some(line.clone());
        }
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// The station, when connected.
    #[must_use]
    pub fn station(&self) -> Option<&Station> {
        self.station.as_ref()
    }

    /// The station, to drive it from a benchmark or a test.
    pub fn station_mut(&mut self) -> Option<&mut Station> {
        self.station.as_mut()
    }

    /// The built-in simulated pen, when it is the one in use.
    #[must_use]
    pub fn simulated_pen(&self) -> Option<&SimPen> {
        self.sim.as_ref()
    }

    /// The last refusal shown.
    #[must_use]
    pub fn last_refusal(&self) -> Option<&str> {
        self.last_refusal.as_ref().map(|l| l.text.as_str())
    }

    /// The recording being replayed, in replay mode.
    #[must_use]
    pub fn replay(&self) -> Option<&Replay> {
        self.replay.as_ref()
    }

    /// Whether a recording is opening in the background.
    #[must_use]
    pub fn opening(&self) -> bool {
        self.loading.is_some()
    }

    /// Why the last recording did not open, while that is shown.
    #[must_use]
    pub fn open_error(&self) -> Option<&str> {
        self.open_recording.error.as_deref()
    }

    /// The session library screen's state.
    #[must_use]
    pub fn library(&self) -> &library_panel::LibraryState {
        &self.library
    }

    /// The technician dialog's state.
    #[must_use]
    pub fn technician_dialog(&self) -> &technician_panel::TechnicianState {
        &self.technician
    }

    /// The calibration wizard's state.
    #[must_use]
    pub fn calibration_panel(&self) -> &calibration_panel::CalibrationPanelState {
        &self.calibration
    }

    /// The event log's lines, oldest first.
    pub fn log_lines(&self) -> impl Iterator<Item = &str> {
        self.log.iter().map(|l| l.text.as_str())
    }

    /// Why a recording may not be opened now, if it may not.
    ///
    /// Not while a session is open: the treatment's live view (its alarm banner above
    /// all) must not be hidden behind a recording, and the keys change meaning in a
    /// replay (Space plays instead of stopping the needle). Outside a session the
    /// interlock refuses to start the needle, so nothing live needs the screen. The
    /// live station keeps being pumped in replay all the same (see `logic`).
    fn replay_refused(&self) -> Option<String> {
        self.station
            .as_ref()
            .and_then(Station::session)
            .map(|s| format!("refused: end session {} before opening a recording", s.id))
    }

    fn enter_replay(&mut self, replay: Replay) {
        let text = format!(
            "replay of {}: {} samples, {} events, {} line warnings",
            replay.file_name(),
            replay.recording().telemetry.len(),
            replay.events().len(),
            replay.recording().warnings.len()
        );
        self.replay_panel = replay_panel::ReplayPanelState::default();
        self.replay_events = replay_info::EventsListState::default();
        // The library's Replay lands here: show the recording it asked for.
        self.library.close();
        self.replay = Some(replay);
        self.note(text, false);
    }

    fn start_opening(&mut self, path: &Path) {
        if let Some(why) = self.replay_refused() {
            return self.note(why, true);
        }
        // A second open replaces the first (dropping it cancels and joins its thread).
        self.loading = None;
        self.open_recording.error = None;
        match Loading::start(path.to_path_buf()) {
            Ok(loading) => self.loading = Some(loading),
            Err(e) => {
                let text = format!("{}: cannot start loading: {e}", path.display());
                self.open_recording.error = Some(text.clone());
                self.note(text, true);
            }
        }
    }

    /// Takes a finished background open's outcome; never waits.
    fn poll_opening(&mut self) {
        let Some(outcome) = self.loading.as_mut().and_then(Loading::poll) else {
            return;
        };
        self.loading = None;
        match outcome {
            LoadOutcome::Opened(replay) => {
                // A session may have opened while the file loaded.
                if let Some(why) = self.replay_refused() {
                    return self.note(why, true);
                }
                self.enter_replay(*replay);
            }
            LoadOutcome::Failed(why) => {
                self.note(format!("recording not opened: {why}"), true);
                self.open_recording.error = Some(why);
            }
            LoadOutcome::Cancelled => self.note("opening the recording cancelled".into(), false),
        }
    }

    fn back_to_live(&mut self) {
        self.replay = None;
        if self.station.is_none() && self.fatal.is_none() {
            let choice = self.initial_port();
            self.connect(choice);
        }
    }

    /// Where the data folder is, for the file dialog to start in.
    /// Stores and applies a new alarm volume; the slider shows what was stored.
    fn set_alarm_volume(&mut self, pct: u8) {
        let data = match &self.station {
            Some(station) => Ok(station.data().clone()),
            None => {
                setup::open_data_dir(self.options.data_dir.as_deref()).map_err(|e| e.to_string())
            }
        };
        match data.and_then(|data| setup::set_alarm_volume(&data, &self.sound, i64::from(pct))) {
            Ok(said) => {
                self.alarm_volume_pct = pct;
                self.note(said, false);
            }
            Err(why) => self.note(format!("refused: {why}"), true),
        }
    }

    fn data_root(&self) -> Option<PathBuf> {
        self.station
            .as_ref()
            .map(|s| s.data().root().to_path_buf())
            .or_else(|| self.options.data_dir.clone())
            .or_else(crate::store::DataDir::default_root)
    }

    /// Handles the link's news; never waits. Called every frame.
    pub fn pump(&mut self) {
        let Some(station) = &mut self.station else {
            return;
        };
        station.pump(Duration::ZERO);
        let notices = station.take_notices();
        for notice in notices {
            match notice {
                Notice::Answer(answer) => match answer.outcome {
                    Outcome::Refused(refusal) => self.note(format!("refused: {refusal}"), true),
                    Outcome::Nak(reason) => {
                        self.note(
                            format!("the pen refused {}: NAK {reason}", answer.command),
                            true,
                        );
                    }
                    Outcome::NotSent(why) => {
                        self.note(format!("{} not sent: {why}", answer.command), true);
                    }
                    Outcome::Unanswered => {
                        self.note(format!("{} unanswered: link lost", answer.command), true);
                    }
                    Outcome::Ack => {}
                },
                Notice::Info(text) => {
                    let refusal = text.starts_with("refused");
                    self.note(text, refusal);
                }
                Notice::ZonePlan(plan) => self.note(plan.to_string(), false),
                Notice::Link(LinkState::Lost(reason)) => {
                    self.note(format!("link lost: {reason}"), false);
                }
                Notice::Link(LinkState::Connected { info, .. }) => {
                    self.note(format!("link up: {} {}", info.model, info.serial), false);
                }
                Notice::Link(_) => {}
                Notice::Pen(event) => self.note(format!("pen: {event}"), false),
                Notice::Alarm(entry) => {
                    let action = match entry.action {
                        crate::safety::alarms::AlarmAction::Raised => "raised",
                        crate::safety::alarms::AlarmAction::Acknowledged => "acknowledged",
                        crate::safety::alarms::AlarmAction::Silenced { .. } => "silenced",
                        crate::safety::alarms::AlarmAction::Cleared => "cleared",
                    };
                    self.note(
                        format!(
                            "alarm {action}: {} {} — {}",
                            entry.priority.as_str(),
                            entry.id,
                            entry.text
                        ),
                        false,
                    );
                }
                Notice::SessionClosed(summary) => {
                    // The final figures, run-down included, replace those shown at End.
                    if self
                        .summary
                        .as_ref()
                        .is_some_and(|s| s.session_id == summary.session_id)
                    {
                        self.summary = Some(*summary);
                    }
                }
            }
        }
        self.follow_technician();
    }

    /// The technician dialog follows the interlock's answer to an unlock.
    fn follow_technician(&mut self) {
        let Some(station) = &self.station else {
            return;
        };
        self.technician.follow(
            station.technician().is_some(),
            station.technician_toggle_pending(),
            self.last_refusal.as_ref().map(|l| l.text.as_str()),
        );
    }

    /// Applies one command. Panels return these; tests may apply them directly (a
    /// buggy screen would send exactly this).
    #[allow(
        clippy::too_many_lines,
        reason = "one routing table of every command to the part of the app that applies it"
    )]
    pub fn apply(&mut self, command: UiCommand) {
        if self
            .station
            .as_ref()
            .is_some_and(|s| s.active_account().is_none())
            && !command.open_to_anyone()
        {
            let why = if self.station.as_ref().is_some_and(Station::is_locked) {
                "the station is locked: unlock it first"
            } else {
                "nobody is signed in: sign in first"
            };
            return self.note(format!("refused: {why}"), true);
        }
        match command {
            UiCommand::Connect(choice) => self.connect(choice),
            UiCommand::Disconnect => self.disconnect(),
            UiCommand::RefreshPorts => self.refresh_ports(),
            UiCommand::CloseSummary => {
                self.summary = None;
                self.aftercare_file = None;
            }
            UiCommand::SaveAftercare => self.save_aftercare(),
            UiCommand::CloseWindow => {
                self.exit
                    .ended_by
                    .get_or_insert_with(|| "window closed".to_owned());
                self.exit.confirmed = true;
                self.exit.close_now = true;
            }
            UiCommand::LoadScreening(path) => {
                match crate::files::read_text(&path, crate::files::MAX_TEXT_FILE_BYTES) {
                    Ok(json) => self.open_session(&json),
                    Err(e) => self.note(format!("cannot read {}: {e}", path.display()), true),
                }
            }
            UiCommand::OpenSession(json) => self.open_session(&json),
            UiCommand::ShowOpenRecording => {
                if let Some(why) = self.replay_refused() {
                    self.note(why, true);
                } else {
                    let root = self.data_root();
                    self.open_recording.show_dialog(root.as_deref());
                }
            }
            UiCommand::OpenRecording(path) => self.start_opening(&path),
            UiCommand::CancelOpenRecording => {
                if let Some(loading) = &self.loading {
                    loading.cancel();
                }
            }
            UiCommand::CloseOpenError => self.open_recording.error = None,
            UiCommand::Replay(command) => {
                if let Some(replay) = &mut self.replay {
                    replay.apply(command);
                }
            }
            UiCommand::BackToLive => self.back_to_live(),
            UiCommand::ShowLibrary => match self.data_root() {
                Some(root) => {
                    self.client_file.close();
                    self.lot_search.close();
                    self.library.open_session = self
                        .station
                        .as_ref()
                        .and_then(Station::session)
                        .map(|s| s.id.clone());
                    self.library
                        .show(root.join(crate::record::writer::SESSIONS_DIR));
                }
                None => self.note("no data folder to list sessions from".into(), true),
            },
            UiCommand::RefreshLibrary => self.library.rescan(),
            UiCommand::ShowClientFile(_)
            | UiCommand::CloseClientFile
            | UiCommand::AddAmendment { .. }
            | UiCommand::ShowLotSearch
            | UiCommand::SearchLot(_)
            | UiCommand::CloseLotSearch => self.apply_screens(command),
            UiCommand::TestAlarmSound => {
                let tested = match &self.station {
                    Some(station) => station.test_alarm_sound(),
                    None => self.sound.test_all(false),
                };
                match tested {
                    Ok(()) => self.note(
                        "alarm sound test: high, medium and low once, high first".into(),
                        false,
                    ),
                    Err(why) => self.note(format!("refused: alarm sound test: {why}"), true),
                }
            }
            UiCommand::SetAlarmVolume(pct) => self.set_alarm_volume(pct),
            UiCommand::CloseLibrary => self.library.close(),
            UiCommand::CloseTechnician => self.technician.close(),
            UiCommand::CreateFirstAdmin { .. }
            | UiCommand::SignIn { .. }
            | UiCommand::Lock
            | UiCommand::SignOut
            | UiCommand::SignRecord { .. }
            | UiCommand::SignRecordLater => self.apply_people(command),
            UiCommand::ShowAdmin
            | UiCommand::CloseAdmin
            | UiCommand::CreateAccount { .. }
            | UiCommand::DisableAccount { .. }
            | UiCommand::ResetSecret { .. }
            | UiCommand::SetRoles { .. }
            | UiCommand::SetZoneLimit { .. }
            | UiCommand::ChangeSetting { .. } => self.apply_admin(command),
            UiCommand::ShowTechnician
            | UiCommand::EnterTechnician { .. }
            | UiCommand::LeaveTechnician => self.apply_technician(command),
            UiCommand::StartCalibration { .. }
            | UiCommand::CalibrationReading(_)
            | UiCommand::CalibrationAccept
            | UiCommand::CalibrationCancel
            | UiCommand::DismissCalibration => self.apply_calibration(command),
            other => self.apply_to_station(other),
        }
    }

    /// Whether the first admin is still to be created: read again only when the
    /// accounts file changed since the last look (a stat per frame, not a read).
    fn first_admin_needed(&mut self) -> Result<bool, String> {
        let Some(station) = &self.station else {
            return Ok(false);
        };
        let stamp = FileStamp::of(&station.data().path(crate::store::accounts::ACCOUNTS_FILE));
        match &self.first_admin_needed {
            Some((seen, answer)) if *seen == stamp => answer.clone(),
            _ => {
                let answer = station.needs_first_admin().map_err(|e| e.to_string());
                self.first_admin_needed = Some((stamp, answer.clone()));
                answer
            }
        }
    }

    /// Sign-in, lock and signature: the station decides, the screens show its words.
    fn apply_people(&mut self, command: UiCommand) {
        let Some(station) = &mut self.station else {
            return self.note("no pen connected".into(), true);
        };
        let result: Result<Option<String>, String> = match command {
            UiCommand::CreateFirstAdmin {
                id,
                name,
                pin,
                repeat,
            } => {
                if pin.0 == repeat.0 {
                    let new = crate::store::accounts::NewAccount {
                        id: id.clone(),
                        name,
                        roles: [crate::store::accounts::Role::Admin].into(),
                        secret: pin.0,
                    };
                    station
                        .create_first_admin(&new)
                        .map(|_| Some(format!("first admin {id} created: sign in")))
                        .map_err(|e| e.to_string())
                } else {
                    Err("the two PINs differ: type the same PIN twice".into())
                }
            }
            UiCommand::SignIn { id, pin } => station
                .sign_in(&id, &pin.0)
                .map(|outcome| {
                    Some(match outcome {
                        crate::station::people::SignInOutcome::SignedIn => {
                            format!("{id} signed in")
                        }
                        crate::station::people::SignInOutcome::Unlocked => {
                            format!("unlocked by {id}")
                        }
                        crate::station::people::SignInOutcome::HandedOver { from } => {
                            format!("{from} handed over to {id}")
                        }
                    })
                })
                .map_err(|e| e.to_string()),
            UiCommand::Lock => station
                .lock(crate::station::people::LockReason::Demand)
                .map(|()| Some("station locked".into()))
                .map_err(|e| e.to_string()),
            UiCommand::SignOut => station
                .sign_out()
                .map(|()| Some("signed out".into()))
                .map_err(|e| e.to_string()),
            UiCommand::SignRecord { pin } => station
                .sign_record(&pin.0)
                .map(|s| {
                    Some(format!(
                        "record signed by {} (SHA-256 {})",
                        s.account, s.sha256
                    ))
                })
                .map_err(|e| e.to_string()),
            UiCommand::SignRecordLater => {
                self.people.sign_later = station.unsigned_record().map(|r| r.path.clone());
                Ok(Some("the record stays unsigned for now".into()))
            }
            _ => Ok(None),
        };
        match result {
            Ok(said) => {
                self.people.done();
                // A new account starts from the screen it chose; nothing typed stays.
                self.people.id.clear();
                self.people.name.clear();
                if let Some(said) = said {
                    self.note(said, false);
                }
            }
            Err(why) => {
                self.note(format!("refused: {why}"), true);
                self.people.refused(why);
            }
        }
    }

    /// The admin screen's commands: the station checks the role and every rule.
    fn apply_admin(&mut self, command: UiCommand) {
        let Some(station) = &mut self.station else {
            return self.note("no pen connected".into(), true);
        };
        let result: Result<String, String> = match command {
            UiCommand::ShowAdmin => {
                match station.require(Some(crate::store::accounts::Role::Admin)) {
                    Ok(_) => {
                        let accounts = station.accounts().list().unwrap_or_default();
                        self.admin.show(accounts, station.settings().ok());
                        return;
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            UiCommand::CloseAdmin => {
                self.admin.close();
                return;
            }
            UiCommand::CreateAccount {
                id,
                name,
                roles,
                pin,
            } => station
                .create_account(&crate::store::accounts::NewAccount {
                    id,
                    name,
                    roles,
                    secret: pin.0,
                })
                .map(|a| format!("account {} created", a.id))
                .map_err(|e| e.to_string()),
            UiCommand::DisableAccount { id, reason } => station
                .disable_account(&id, &reason)
                .map(|()| format!("account {id} disabled"))
                .map_err(|e| e.to_string()),
            UiCommand::ResetSecret { id, pin } => station
                .reset_secret(&id, &pin.0)
                .map(|()| format!("{id}: new PIN set"))
                .map_err(|e| e.to_string()),
            UiCommand::SetRoles { id, roles } => station
                .set_account_roles(&id, &roles)
                .map(|()| format!("{id}: roles {}", crate::store::accounts::roles_text(&roles)))
                .map_err(|e| e.to_string()),
            UiCommand::SetZoneLimit {
                zone,
                mm_text,
                reason,
            } => super::console::parse_depth_um(&mm_text)
                .and_then(|um| {
                    i32::try_from(um).map_err(|_| format!("{mm_text} mm is out of range"))
                })
                .and_then(|um| {
                    station
                        .set_zone_limit(zone, um, &reason)
                        .map(|()| {
                            format!(
                                "{zone} limit now {}",
                                crate::safety::interlock::mm(i64::from(um))
                            )
                        })
                        .map_err(|e| e.to_string())
                }),
            UiCommand::ChangeSetting { key, value } => {
                super::admin_panel::setting_change(key, &value).and_then(|change| {
                    station
                        .change_setting(&change)
                        .map(|()| format!("{key} = {value}"))
                        .map_err(|e| e.to_string())
                })
            }
            _ => return,
        };
        let accounts = station.accounts().list().unwrap_or_default();
        let settings = station.settings().ok();
        self.admin.refresh(accounts, settings);
        match &result {
            Ok(said) => self.note(said.clone(), false),
            Err(why) => self.note(format!("refused: {why}"), true),
        }
        self.admin.said(result);
    }

    /// Technician mode's commands: the station decides, the dialog shows its words.
    fn apply_technician(&mut self, command: UiCommand) {
        let Some(station) = &mut self.station else {
            self.technician.refused("no pen connected".into());
            return self.note("no pen connected".into(), true);
        };
        match command {
            UiCommand::ShowTechnician => {
                let account = station
                    .require(Some(crate::store::accounts::Role::Technician))
                    .map(|who| who.id().to_owned())
                    .map_err(|e| e.to_string());
                self.technician.show(account);
            }
            UiCommand::EnterTechnician { pin, technician_id } => {
                match station.enter_technician(&pin.0, &technician_id) {
                    Ok(()) => self.technician.unlocking(),
                    Err(e) => {
                        let why = e.to_string();
                        self.note(format!("refused: technician mode: {why}"), true);
                        self.technician.refused(why);
                    }
                }
            }
            UiCommand::LeaveTechnician => {
                if let Err(e) = station.leave_technician() {
                    self.note(format!("refused: {e}"), true);
                }
            }
            _ => {}
        }
    }

    /// The calibration wizard's commands, passed on to the station's run.
    fn apply_calibration(&mut self, command: UiCommand) {
        let Some(station) = &mut self.station else {
            return self.note("no pen connected".into(), true);
        };
        match command {
            UiCommand::StartCalibration { kind, sim_gauge } => {
                match station.start_calibration(kind, sim_gauge) {
                    Ok(()) => self.calibration.reading.clear(),
                    Err(e) => self.note(format!("refused: {e}"), true),
                }
            }
            UiCommand::CalibrationReading(text) => match station.calibration_reading(&text) {
                Ok(()) => self.calibration.reading.clear(),
                // The panel shows the run's refusal in red; the log keeps it too.
                Err(why) => self.note(format!("refused: reading {text:?}: {why}"), true),
            },
            UiCommand::CalibrationAccept => station.calibration_accept(),
            UiCommand::CalibrationCancel => station.calibration_cancel(),
            UiCommand::DismissCalibration => station.dismiss_calibration(),
            _ => {}
        }
    }

    fn open_session(&mut self, json: &str) {
        let Some(station) = &mut self.station else {
            return self.note("no pen connected".into(), true);
        };
        match station.open_session(json) {
            Ok(outcome) if outcome.passed() => {
                let id = station.session().map(|s| s.id.clone()).unwrap_or_default();
                self.note(format!("session {id} opened"), false);
            }
            Ok(outcome) => self.note(
                format!("refused: screening: {}", outcome.reasons().join("; ")),
                true,
            ),
            Err(e) => self.note(format!("refused: {e}"), true),
        }
    }

    #[allow(clippy::needless_pass_by_value)] // commands are applied once, by value
    fn apply_to_station(&mut self, command: UiCommand) {
        let Some(station) = &mut self.station else {
            return self.note("no pen connected".into(), true);
        };
        let result = match command {
            UiCommand::SelectZone(zone) => station
                .request_safety(SafetyUpdate::SelectZone(zone))
                .map(|_| ()),
            UiCommand::SetDepthUm(depth_um) => {
                station.request(Command::Depth { depth_um }).map(|_| ())
            }
            UiCommand::SetSpeedRpm(rpm) => station.request(Command::Speed { rpm }).map(|_| ()),
            UiCommand::Start => station.start().map(|_| ()),
            UiCommand::ConfirmSealedPack => match station.confirm_sealed_pack() {
                Ok(id) => {
                    self.note(
                        format!("cartridge {id} confirmed from a sealed pack (recorded)"),
                        false,
                    );
                    Ok(())
                }
                Err(e) => Err(e),
            },
            UiCommand::Stop => station.request(Command::Halt).map(|_| ()),
            UiCommand::Reset => station.request(Command::Reset).map(|_| ()),
            UiCommand::EStop => station.estop(),
            UiCommand::Acknowledge(id) => {
                if let Err(e) = station.acknowledge(id) {
                    self.note(format!("refused: {e}"), true);
                }
                Ok(())
            }
            UiCommand::Silence(id) => {
                let now = station.now_ms();
                let most = id.priority().max_silence_ms();
                if let Err(e) = station.alarms_mut().silence(id, now, most) {
                    self.note(format!("refused: {e}"), true);
                }
                Ok(())
            }
            UiCommand::RecordStep { entry, at_utc_ms } => {
                match station.record_step(*entry, at_utc_ms) {
                    Ok(entry) => {
                        self.note(
                            format!("step {} recorded: {}", entry.number, entry.describe()),
                            false,
                        );
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            UiCommand::AddNote(text) => {
                let added = station.note(&text);
                if added.is_ok() {
                    self.note(format!("note added to the record: {text}"), false);
                }
                added
            }
            UiCommand::EndSession => match station.end_session(false) {
                Ok(summary) => {
                    self.summary = Some(summary);
                    self.screening = session_panel::ScreeningForm::default();
                    Ok(())
                }
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.note(format!("refused: {e}"), true);
        }
    }

    /// The client file's and the lot search's commands.
    fn apply_screens(&mut self, command: UiCommand) {
        match command {
            UiCommand::ShowClientFile(client) => match self.data_root() {
                Some(root) => {
                    self.library.close();
                    self.lot_search.close();
                    let open = self
                        .station
                        .as_ref()
                        .and_then(Station::session)
                        .map(|s| s.id.clone());
                    if let Some(station) = &mut self.station {
                        station.audit_event(
                            crate::store::audit::AuditKind::ClientFile,
                            &[("client", client.clone()), ("via", "window".into())],
                        );
                    }
                    self.client_file.show(client, root, &self.records, open);
                }
                None => self.note("no data folder to read the client file from".into(), true),
            },
            UiCommand::CloseClientFile => self.client_file.close(),
            UiCommand::AddAmendment {
                session_id,
                date,
                kind,
                severity,
                note,
            } => self.add_amendment(&session_id, date, &kind, &severity, &note),
            UiCommand::ShowLotSearch => match self.data_root() {
                Some(root) => {
                    self.library.close();
                    self.client_file.close();
                    self.lot_search.show(
                        root.join(crate::record::writer::SESSIONS_DIR),
                        &self.records,
                    );
                }
                None => self.note("no data folder to search".into(), true),
            },
            UiCommand::SearchLot(lot) => {
                self.note(format!("lot search: {lot}"), false);
                if let Some(station) = &mut self.station {
                    station.audit_event(
                        crate::store::audit::AuditKind::LotQuery,
                        &[("lot", lot.clone()), ("via", "window".into())],
                    );
                }
                self.lot_search.search(lot);
            }
            UiCommand::CloseLotSearch => self.lot_search.close(),
            _ => {}
        }
    }

    /// Adds a follow-up event to a session (the record is not changed), and reads the
    /// client file again.
    fn add_amendment(
        &mut self,
        session_id: &str,
        date: jiff::civil::Date,
        kind: &str,
        severity: &str,
        note: &str,
    ) {
        let Some(root) = self.data_root() else {
            return self.note("no data folder".into(), true);
        };
        let who = setup::operator(self.options.operator.as_deref());
        let added = crate::store::DataDir::open(&root)
            .map_err(|e| e.to_string())
            .and_then(|data| {
                crate::client::cmd::add_amendment(
                    &data,
                    session_id,
                    Some(date),
                    kind,
                    severity,
                    note,
                    &who,
                )
            });
        match added {
            Ok(a) => {
                self.note(
                    format!(
                        "session {} amended: {} {} on {}",
                        a.session_id, a.kind, a.severity, a.date
                    ),
                    false,
                );
                self.client_file.reload();
            }
            Err(e) => self.note(format!("refused: amendment: {e}"), true),
        }
    }

    fn save_aftercare(&mut self) {
        let (Some(summary), Some(station)) = (&self.summary, &self.station) else {
            return;
        };
        let (settings, _) = crate::store::StationSettings::load(station.data()).unwrap_or_default();
        match crate::handout::write_handouts(
            station.data(),
            summary,
            settings.clinic_name.as_deref(),
        ) {
            Ok((aftercare, page)) => {
                self.aftercare_file = Some(aftercare.clone());
                self.note(
                    format!(
                        "hand-outs saved: {} and {}",
                        aftercare.display(),
                        page.display()
                    ),
                    false,
                );
            }
            Err(e) => self.note(format!("cannot save the hand-outs: {e}"), true),
        }
    }

    /// Draws the whole window and returns what its panels asked for.
    pub fn window_ui(&mut self, ui: &mut egui::Ui) -> Vec<UiCommand> {
        let mut commands = Vec::new();
        if self.replay.is_some() {
            self.replay_window_ui(ui, &mut commands);
        } else {
            self.live_window_ui(ui, &mut commands);
        }
        // Over either mode.
        super::close_dialog::dialog_ui(ui.ctx(), &mut self.exit.asking, &mut commands);
        open_recording::dialog_ui(ui.ctx(), &mut self.open_recording, &mut commands);
        if let Some(loading) = &self.loading {
            open_recording::loading_ui(ui.ctx(), loading, &mut commands);
        }
        if let Some(error) = &self.open_recording.error {
            open_recording::error_ui(ui.ctx(), error, &mut commands);
        }
        commands
    }

    #[allow(
        clippy::too_many_lines,
        reason = "the live window's layout in one place, top to bottom, panel by panel"
    )]
    fn live_window_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
        // Keys that can only make things safer: Escape stops everything, Space stops
        // the needle (unless a text field has the keyboard). No key starts anything.
        let (escape, space) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::Escape),
                i.key_pressed(egui::Key::Space),
            )
        });
        if escape {
            commands.push(UiCommand::EStop);
        }
        if space && !ui.ctx().egui_wants_keyboard_input() {
            commands.push(UiCommand::Stop);
        }
        if let Some(fatal) = &self.fatal {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.heading("The station cannot treat");
                ui.colored_label(super::theme::ALARM_HIGH, fatal);
                ui.label("Fix the cause (a zone table, the data folder, the port) and restart.");
            });
            return;
        }
        let simulated = self.sim.is_some();
        let live = self.station.as_ref().map(|s| s as &dyn SessionSource);
        egui::Panel::top("alarm_banner").show(ui, |ui| {
            alarm_banner::banner_ui(ui, live, commands);
        });
        let technician = self
            .station
            .as_ref()
            .and_then(Station::technician)
            .map(str::to_owned);
        if let Some(id) = &technician {
            egui::Panel::top("technician_strip").show(ui, |ui| {
                technician_panel::technician_strip_ui(ui, id, commands);
            });
        }
        egui::Panel::top("connection_bar").show(ui, |ui| {
            connection_bar::connection_bar_ui(
                ui,
                self.station.as_ref(),
                &self.ports,
                self.port.as_ref(),
                simulated,
                &mut self.persisted.dark_mode,
                &connection_bar::SoundView {
                    status: self.sound.status(),
                    volume_pct: self.alarm_volume_pct,
                },
                commands,
            );
        });
        if let Some(station) = &self.station
            && station.active_account().is_some()
        {
            egui::Panel::top("account_strip").show(ui, |ui| {
                super::sign_in_panel::account_strip_ui(ui, station, self.admin.is_open(), commands);
            });
        }
        egui::Panel::bottom("event_log")
            .default_size(90.0)
            .resizable(true)
            .show(ui, |ui| {
                log_ui(ui, &self.log);
            });
        let screen = self.screen();
        // On a 1024-point-wide panel PC the session panel gives up room to the centre.
        let session_width = (ui.available_width() * 0.4).clamp(340.0, 480.0);
        if screen == Screen::Treatment {
            egui::Panel::left("session_panel")
                .default_size(session_width)
                .min_size(340.0)
                .resizable(true)
                .show(ui, |ui| {
                    session_panel::session_panel_ui(
                        ui,
                        self.station.as_ref(),
                        &mut self.screening,
                        &mut self.checklist,
                        commands,
                    );
                });
        }
        egui::Panel::right("controls_panel")
            .default_size(300.0)
            .min_size(290.0)
            .resizable(true)
            .show(ui, |ui| {
                if matches!(screen, Screen::SignIn | Screen::Locked) {
                    // Nobody may treat: the stops only, which always work.
                    controls::stop_only_ui(ui, self.station.as_ref(), commands);
                } else {
                    controls::controls_ui(
                        ui,
                        self.station.as_ref(),
                        &mut self.controls,
                        self.last_refusal.as_ref(),
                        commands,
                    );
                }
                ui.separator();
                alarm_banner::alarm_list_ui(ui, live, commands);
            });
        self.live_central_ui(ui, screen, simulated, commands);
        technician_panel::technician_dialog_ui(ui.ctx(), &mut self.technician, commands);
        if let Some(station) = &self.station {
            super::sign_in_panel::sign_record_ui(ui.ctx(), &mut self.people, station, commands);
        }
        if let Some(summary) = &self.summary {
            summary_panel::summary_window_ui(
                ui.ctx(),
                summary,
                self.aftercare_file.as_deref(),
                commands,
            );
        }
    }

    /// The screen the live window shows: a screen the operator opened (the library,
    /// a client file, the lot search), else in technician mode the calibration wizard
    /// (operators never see it), else the treatment.
    #[must_use]
    pub fn screen(&self) -> Screen {
        if let Some(station) = &self.station {
            if station.signed_in().is_none() {
                return Screen::SignIn;
            }
            if station.is_locked() {
                return Screen::Locked;
            }
        }
        if self.admin.is_open() {
            Screen::Admin
        } else if self.library.is_open() {
            Screen::Library
        } else if self.client_file.is_open() {
            Screen::ClientFile
        } else if self.lot_search.is_open() {
            Screen::LotSearch
        } else if self
            .station
            .as_ref()
            .and_then(Station::technician)
            .is_some()
        {
            Screen::Calibration
        } else {
            Screen::Treatment
        }
    }

    /// The sign-in, lock and sign-record screens' fields.
    #[must_use]
    pub fn people_form(&self) -> &super::sign_in_panel::PeopleState {
        &self.people
    }

    /// The client file screen's state.
    #[must_use]
    pub fn client_file(&self) -> &client_file_panel::ClientFileState {
        &self.client_file
    }

    /// The lot search screen's state.
    #[must_use]
    pub fn lot_search(&self) -> &lot_search_panel::LotSearchState {
        &self.lot_search
    }

    /// The live window's centre, by screen.
    fn live_central_ui(
        &mut self,
        ui: &mut egui::Ui,
        screen: Screen,
        simulated: bool,
        commands: &mut Vec<UiCommand>,
    ) {
        let refused = self.replay_refused();
        let first_admin = if screen == Screen::SignIn {
            self.first_admin_needed()
        } else {
            Ok(false)
        };
        let live = self.station.as_ref().map(|s| s as &dyn SessionSource);
        egui::CentralPanel::default().show(ui, |ui| match screen {
            Screen::Library => {
                library_panel::library_ui(ui, &mut self.library, refused.as_deref(), commands);
            }
            Screen::ClientFile => {
                client_file_panel::client_file_ui(ui, &mut self.client_file, commands);
            }
            Screen::LotSearch => {
                lot_search_panel::lot_search_ui(ui, &mut self.lot_search, commands);
            }
            Screen::Calibration => calibration_panel::calibration_ui(
                ui,
                self.station.as_ref(),
                simulated,
                &mut self.calibration,
                commands,
            ),
            Screen::Treatment => plots::central_ui(
                ui,
                live,
                &mut self.plots,
                &mut self.persisted.follow_window_s,
                commands,
            ),
            Screen::SignIn => {
                let clinic = self
                    .station
                    .as_ref()
                    .and_then(Station::clinic_status)
                    .map(|c| c.store);
                super::sign_in_panel::sign_in_ui(
                    ui,
                    &mut self.people,
                    first_admin.clone(),
                    clinic.as_deref(),
                    commands,
                );
            }
            Screen::Locked => {
                if let Some(station) = &self.station {
                    super::sign_in_panel::lock_ui(ui, &mut self.people, station, commands);
                }
            }
            Screen::Admin => {
                if let Some(station) = &self.station {
                    super::admin_panel::admin_ui(ui, &mut self.admin, station.zones(), commands);
                }
            }
        });
    }

    /// The replay: the REPLAY strip, the alarms at the cursor, the recording's header
    /// where the session panel is, the readings at the cursor and the alarm list where
    /// the controls are, the shared face map and plots in the centre, and the
    /// transport with the timeline at the bottom.
    fn replay_window_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
        let Some(replay) = &self.replay else {
            return;
        };
        // A replay has no needle: Space plays and pauses, the arrows step. Escape
        // still stops a live pen, if one is connected underneath.
        let keys_free = !ui.ctx().egui_wants_keyboard_input() && !self.open_recording.dialog_open();
        let (escape, space, left, right) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::Escape),
                i.key_pressed(egui::Key::Space),
                i.key_pressed(egui::Key::ArrowLeft),
                i.key_pressed(egui::Key::ArrowRight),
            )
        });
        if escape && self.station.is_some() {
            commands.push(UiCommand::EStop);
        }
        if keys_free {
            let mut push = |pressed: bool, command| {
                if pressed {
                    commands.push(UiCommand::Replay(command));
                }
            };
            push(space, ReplayCommand::TogglePlay);
            push(left, ReplayCommand::StepSample(Direction::Back));
            push(right, ReplayCommand::StepSample(Direction::Forward));
        }
        let source: Option<&dyn SessionSource> = Some(replay);
        let live_alarm = self.station.as_ref().and_then(|s| s.alarms().highest());
        egui::Panel::top("replay_strip")
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                replay_info::replay_strip_ui(ui, replay, live_alarm.as_ref(), commands);
            });
        egui::Panel::top("alarm_banner").show(ui, |ui| {
            alarm_banner::banner_ui(ui, source, commands);
        });
        egui::Panel::bottom("replay_panel")
            .resizable(false)
            .show(ui, |ui| {
                replay_panel::replay_panel_ui(ui, replay, &mut self.replay_panel, commands);
            });
        let library_open = self.library.is_open();
        if !library_open {
            egui::Panel::left("session_panel")
                .default_size(480.0)
                .min_size(480.0)
                .resizable(true)
                .show(ui, |ui| {
                    replay_info::header_ui(ui, replay, &mut self.replay_events, commands);
                });
        }
        egui::Panel::right("controls_panel")
            .default_size(300.0)
            .min_size(290.0)
            .resizable(true)
            .show(ui, |ui| {
                replay_info::cursor_facts_ui(ui, replay);
                ui.separator();
                alarm_banner::alarm_list_ui(ui, source, commands);
            });
        if library_open {
            // No session is open in replay: the library's Replay opens another file.
            egui::CentralPanel::default().show(ui, |ui| {
                library_panel::library_ui(ui, &mut self.library, None, commands);
            });
        } else {
            egui::CentralPanel::default().show(ui, |ui| {
                plots::central_ui(
                    ui,
                    source,
                    &mut self.plots,
                    &mut self.persisted.follow_window_s,
                    commands,
                );
            });
        }
    }
}

fn log_ui(ui: &mut egui::Ui, log: &VecDeque<LogLine>) {
    egui::ScrollArea::vertical()
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for line in log {
                let text = format!("{:>8.1} s  {}", line.at_s, line.text);
                if line.refusal {
                    ui.colored_label(super::theme::REFUSAL, text);
                } else {
                    ui.label(text);
                }
            }
        });
}

/// Writes a file only its owner can read: it names a client.
impl eframe::App for StationApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.frames.count(ctx);
        super::repaint::begin_frame(ctx);
        self.handle_close(ctx);
        // The live station is pumped in replay too: its link needs the liveness
        // (without it the link holds back heartbeats and the pen's watchdog trips),
        // and its alarms keep being logged (the REPLAY strip shows the highest).
        self.pump();
        // Any input is activity: the idle lock's clock starts again.
        let active = ctx.input(|i| {
            i.events.iter().any(|e| {
                matches!(
                    e,
                    egui::Event::PointerButton { .. }
                        | egui::Event::PointerMoved(_)
                        | egui::Event::Key { .. }
                        | egui::Event::Text(_)
                        | egui::Event::MouseWheel { .. }
                        | egui::Event::Touch { .. }
                )
            })
        });
        if active && let Some(station) = &mut self.station {
            station.touch();
        }
        self.poll_opening();
        self.library.poll();
        self.client_file.poll();
        self.lot_search.poll();
        if let Some(replay) = &mut self.replay {
            // Real time since the last frame, capped: after a stall (a minimised
            // window) the replay resumes rather than leaps.
            let dt_s = ctx.input(|i| i.unstable_dt).clamp(0.0, 0.25);
            replay.advance(Duration::from_secs_f32(dt_s));
            if replay.transport().playing() {
                super::repaint::request(
                    ctx,
                    super::repaint::Reason::ReplayPlaying,
                    super::repaint::LIVE_INTERVAL,
                );
            }
        }
        ctx.set_theme(if self.persisted.dark_mode {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        // The title says SIMULATED, or REPLAY, too: it is what a task bar shows.
        let title = if let Some(replay) = &self.replay {
            format!(
                "Punctum — {}",
                replay_info::replay_title(&replay.file_name())
            )
        } else if self.sim.is_some() {
            "Punctum — SIMULATED PEN".to_owned()
        } else {
            "Punctum".to_owned()
        };
        // Sent only when it changes: winit reports no title on X11 and Wayland, so
        // comparing with the viewport's would send it (and ask a frame) every frame.
        if self.title_sent.as_deref() != Some(title.as_str()) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title_sent = Some(title);
        }
        // The live plots and figures, and the liveness the link needs while the
        // needle runs; while a session is recorded, also the station's intake of
        // telemetry (what a crash can lose waits in the link's channel until a frame
        // takes it in); slowly while the pen idles outside a session (super::repaint).
        if let Some(station) = &self.station {
            let running = station
                .last_telemetry()
                .is_some_and(|t| t.state == crate::protocol::PenState::Running);
            if running {
                super::repaint::request(
                    ctx,
                    super::repaint::Reason::NeedleRunning,
                    super::repaint::LIVE_INTERVAL,
                );
            } else if station.session().is_some() {
                super::repaint::request(
                    ctx,
                    super::repaint::Reason::SessionRecorded,
                    super::repaint::LIVE_INTERVAL,
                );
            } else {
                super::repaint::request(
                    ctx,
                    super::repaint::Reason::PenIdle,
                    super::repaint::IDLE_INTERVAL,
                );
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let commands = self.window_ui(ui);
        for command in commands {
            self.apply(command);
        }
        if std::mem::take(&mut self.exit.close_now) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.persisted);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.end_before_exit();
        // Close the port; the pen was halted first.
        self.disconnect();
    }
}

/// Opens the window; returns when it is closed.
/// Returns the signal that closed it, if one did.
pub fn run(options: WindowOptions) -> anyhow::Result<Option<crate::signals::Stop>> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Punctum")
            .with_inner_size([1280.0, 800.0])
            // 1024×600 is a common panel PC: everything the operator needs still
            // shows there, the rest scrolls.
            .with_min_inner_size([1024.0, 600.0]),
        ..eframe::NativeOptions::default()
    };
    let stopped_by = std::sync::Arc::new(std::sync::Mutex::new(None));
    let app_stopped_by = std::sync::Arc::clone(&stopped_by);
    eframe::run_native(
        "Punctum",
        native,
        Box::new(move |cc| {
            let persisted = cc
                .storage
                .and_then(|s| eframe::get_value::<Persisted>(s, eframe::APP_KEY))
                .unwrap_or_default();
            // Signals first: from here on they close the window the careful way.
            let ctx = cc.egui_ctx.clone();
            let signals = crate::signals::listen(Some(Box::new(move || ctx.request_repaint())))?;
            let options = WindowOptions {
                repaint_ctx: Some(cc.egui_ctx.clone()),
                ..options
            };
            let mut app = StationApp::new(options, persisted);
            app.listen_for_signals(signals, app_stopped_by);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the window could not open: {e}. Without a display, `punctum console --sim` \
             runs the same station on a terminal"
        )
    })?;
    Ok(stopped_by.lock().ok().and_then(|slot| *slot))
}

#[cfg(test)]
mod tests {
    //! The window driven with `egui_kittest`, against the built-in simulated pen on a
    //! real pty: widgets are found by their accessible labels, as a screen reader
    //! would find them.

    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Instant;

    use crate::safety::alarms::AlarmId;
    use crate::safety::zones::ZoneId;

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable as _;

    use super::*;
    use crate::sim::{Journaled, SimAction};

    use super::super::window_test_support::{
        DEADLINE, connected, harness, open_session, select_cheeks, start_in_cheeks, step_until,
    };

    #[test]
    fn filling_in_screening_should_open_a_session() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        open_session(&mut h);
        let session = h
            .state()
            .station()
            .and_then(Station::session)
            .map(|s| s.answers.client.clone());
        assert_eq!(session.as_deref(), Some("C-0042"));
        h.step();
        assert!(h.query_by_label("Screening passed.").is_some());
    }

    #[test]
    fn clicking_the_face_map_should_select_the_zone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        open_session(&mut h);
        select_cheeks(&mut h);
        h.step();
        assert!(h.query_by_label_contains("Zone: cheeks").is_some());
    }

    #[test]
    fn a_depth_above_the_limit_should_show_the_refusal_and_never_reach_the_pen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        open_session(&mut h);
        select_cheeks(&mut h);
        // What a buggy screen would send: the core refuses it, and the window says why.
        h.state_mut().apply(UiCommand::SetDepthUm(1200));
        step_until(&mut h, "the refusal on screen", |h| {
            // In the controls' refusal box and in the event log.
            h.query_all_by_label_contains("depth 1.20 mm refused: above the cheeks limit 1.00 mm")
                .count()
                >= 2
        });
        let pen = h.state().simulated_pen().expect("the built-in pen");
        let depths: Vec<Journaled> = pen
            .journal()
            .into_iter()
            .map(|e| e.what)
            .filter(|w| {
                // The connection's own retraction (DEPTH 0) is the only depth sent.
                matches!(
                    w,
                    Journaled::Command {
                        command: Some(Command::Depth { depth_um }),
                        ..
                    } if *depth_um != 0
                )
            })
            .collect();
        assert!(depths.is_empty(), "the pen received {depths:?}");
    }

    #[test]
    fn ending_a_session_should_show_the_summary_and_save_the_aftercare_sheet() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        start_in_cheeks(&mut h);
        h.get_by_label("End session").click();
        step_until(&mut h, "the summary", |h| {
            h.query_by_label("Session summary").is_some()
        });
        h.get_by_label("Save hand-outs").click();
        step_until(&mut h, "the saved sheet", |h| {
            h.query_by_label_contains("Saved: ").is_some()
        });
        let sheet = std::fs::read_dir(dir.path().join(crate::handout::HANDOUTS_DIR))
            .expect("the hand-outs folder")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().ends_with("_aftercare.html"))
            .expect("an aftercare page");
        let text = std::fs::read_to_string(sheet.path()).expect("readable");
        assert!(
            text.contains("sunscreen") && text.contains("Next session") && text.contains("cheeks"),
            "{text}"
        );
        let mode = sheet.metadata().expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "it names a client");
    }

    #[test]
    fn a_note_typed_in_the_window_should_land_in_the_session_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        open_session(&mut h);
        let record = h
            .state()
            .station()
            .and_then(Station::record_path)
            .expect("the session is being recorded")
            .to_path_buf();
        h.step();
        h.get_by_label("Note for the record").focus();
        h.step();
        h.get_by_label("Note for the record")
            .type_text("mild erythema, client comfortable");
        h.step();
        h.get_by_label("Add note").click();
        step_until(&mut h, "the note in the log", |h| {
            h.state()
                .log
                .iter()
                .any(|l| l.text.contains("note added to the record"))
        });
        h.get_by_label("End session").click();
        step_until(&mut h, "the summary", |h| {
            h.query_by_label("Session summary").is_some()
        });
        // The window does not wait for the pen's answer to the closing HALT; the
        // record stays open for it and closes with the summary once it comes.
        let read = |record: &std::path::Path| -> Vec<crate::record::Line> {
            std::fs::read_to_string(record)
                .expect("the record")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a record line"))
                .collect()
        };
        step_until(&mut h, "the record's summary", |_| {
            matches!(read(&record).last(), Some(crate::record::Line::Summary(_)))
        });
        let lines = read(&record);
        let note_at = lines
            .iter()
            .position(|l| matches!(l,
                crate::record::Line::Note(n) if n.text == "mild erythema, client comfortable" && n.author == "P-7"))
            .expect("the note is in the record");
        assert!(
            lines[note_at..].iter().any(|l| matches!(l,
                crate::record::Line::Answer(a) if a.command == "HALT" && a.result == "ACK")),
            "the closing HALT and its answer are in the record"
        );
        let last_utc_ms = lines.iter().map(crate::record::Line::utc_ms).max();
        assert_eq!(
            lines.last().map(crate::record::Line::utc_ms),
            last_utc_ms,
            "the summary is the last line in time too"
        );
    }

    #[test]
    fn the_depth_slider_should_set_the_depth_and_stop_at_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        open_session(&mut h);
        h.get_by_label("zone periorbital").hover();
        h.step();
        h.get_by_label("zone periorbital").click();
        step_until(&mut h, "periorbital active", |h| {
            h.state()
                .station()
                .and_then(|s| s.safety_summary())
                .and_then(|s| s.zone)
                == Some(ZoneId::Periorbital)
        });
        // Press on the slider's far right end, as a hand on a mouse would.
        let rail = h
            .get_all_by_label("depth")
            .next()
            .expect("the depth slider")
            .rect();
        let end = egui::pos2(rail.right() - 1.0, rail.center().y);
        h.hover_at(end);
        h.step();
        h.event(egui::Event::PointerButton {
            pos: end,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: egui::Modifiers::default(),
        });
        h.step();
        h.event(egui::Event::PointerButton {
            pos: end,
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: egui::Modifiers::default(),
        });
        h.step();
        step_until(&mut h, "the depth acknowledged at the limit", |h| {
            h.state()
                .station()
                .and_then(|s| s.safety_summary())
                .and_then(|s| s.depth_target_um)
                == Some(300)
        });
        assert!(
            (h.state().controls.depth_mm - 0.3).abs() < 1e-9,
            "the control stopped at the limit"
        );
    }

    #[test]
    fn start_should_feed_the_speed_plot_and_escape_should_estop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        start_in_cheeks(&mut h);
        step_until(&mut h, "points in the speed plot", |h| {
            h.state().plots.last_speed_points > 10
        });
        h.key_press(egui::Key::Escape);
        step_until(&mut h, "ESTOP on screen", |h| {
            h.query_by_label_contains("pen ESTOP").is_some()
        });
        step_until(&mut h, "the estop alarm", |h| {
            h.query_by_label_contains("HIGH ALARM  estop").is_some()
        });
    }

    #[test]
    fn a_vanished_pen_should_raise_link_lost_within_1_s() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path());
        step_until(&mut h, "a connected pen", connected);
        let pen = h.state().simulated_pen().expect("the built-in pen");
        let mark = pen.journal_mark();
        pen.act(SimAction::Disappear { duration: None })
            .expect("pen running");
        pen.wait_for_since(mark, DEADLINE, |e| matches!(e.what, Journaled::LinkDown))
            .expect("the pen unplugged");
        let gone = Instant::now();
        step_until(&mut h, "the link_lost alarm in the banner", |h| {
            h.query_by_label_contains("HIGH ALARM  link_lost").is_some()
        });
        assert!(
            gone.elapsed() < Duration::from_secs(1),
            "took {:?}",
            gone.elapsed()
        );
    }
    #[test]
    fn a_recording_is_refused_while_a_session_is_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = crate::replay::test_support::treatment().write(dir.path(), "r.jsonl");
        let mut h = harness(dir.path());
        open_session(&mut h);
        h.state_mut().apply(UiCommand::OpenRecording(path));
        h.state_mut().apply(UiCommand::ShowOpenRecording);
        h.step();
        assert!(!h.state().opening());
        assert!(h.state().replay().is_none());
        assert!(
            h.state()
                .last_refusal()
                .is_some_and(|r| r.contains("before opening a recording")),
            "{:?}",
            h.state().last_refusal()
        );
    }

    #[test]
    fn open_recording_picks_a_file_in_the_sessions_folder_and_back_to_live_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sessions = dir.path().join(super::open_recording::SESSIONS_DIR);
        std::fs::create_dir_all(&sessions).expect("sessions folder");
        let name = "2025-11-24_160000_C-0042.jsonl";
        crate::replay::test_support::treatment().write(&sessions, name);
        let options = WindowOptions {
            sim: true,
            data_dir: Some(dir.path().to_path_buf()),
            telemetry_hz: 100,
            ..WindowOptions::default()
        };
        // The file dialog's own icons (a folder, arrows) are in the window's emoji
        // fonts but not in the harness's: draw them as boxes rather than fail.
        let mut h = Harness::builder()
            .with_size(egui::Vec2::new(1280.0, 800.0))
            .allow_missing_glyphs()
            .build_eframe(move |_cc| StationApp::new(options, Persisted::default()));
        step_until(&mut h, "a connected pen", connected);
        // Recordings open for a signed-in account only.
        super::super::window_test_support::ensure_accounts(dir.path());
        super::super::window_test_support::sign_in(
            &mut h,
            super::super::window_test_support::ACCOUNT,
            super::super::window_test_support::PIN,
        );
        h.get_by_label("Open recording…").click();
        step_until(&mut h, "the file in the dialog", |h| {
            h.query_by_label_contains(name).is_some()
        });
        h.get_by_label_contains(name).click();
        h.step();
        h.get_by_label("Open").click();
        step_until(&mut h, "the replay", |h| h.state().replay().is_some());
        h.step();
        assert!(h.query_by_label(&format!("REPLAY — {name}")).is_some());
        // The live station runs on underneath: over three times the link's 500 ms
        // loss timeout, its link stays up (the frames keep feeding its liveness).
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_millis(1500) {
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(connected(&h), "the link stayed up during the replay");
        let station = h.state().station().expect("still there");
        assert!(!station.alarms().is_active(AlarmId::LinkLost));
        // Esc still stops the live pen from the replay.
        h.key_press(egui::Key::Escape);
        step_until(&mut h, "the live estop alarm", |h| {
            h.state()
                .station()
                .is_some_and(|s| s.alarms().is_active(AlarmId::Estop))
        });
        assert!(h.state().replay().is_some(), "still in replay");
        h.get_by_label("Back to live").click();
        step_until(&mut h, "live again", |h| h.state().replay().is_none());
        h.step();
        assert!(h.query_by_label(controls::ESTOP_LABEL).is_some());
        assert!(connected(&h));
    }

    #[test]
    fn back_to_live_from_punctum_replay_connects_the_pen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = WindowOptions {
            sim: true,
            data_dir: Some(dir.path().to_path_buf()),
            telemetry_hz: 100,
            ..WindowOptions::default()
        };
        let replay = Replay::new(crate::replay::test_support::treatment().recording());
        let mut h = Harness::builder()
            .with_size(egui::Vec2::new(1280.0, 800.0))
            .build_eframe(move |_cc| StationApp::new_replay(options, Persisted::default(), replay));
        h.step();
        assert!(h.state().station().is_none());
        h.get_by_label("Back to live").click();
        step_until(&mut h, "a connected pen", connected);
        assert!(h.state().replay().is_none());
    }
}
