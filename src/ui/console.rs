//! `punctum console`: a line-oriented operator console on stdin and stdout, for
//! technicians at the bench and for automation.
//!
//! It goes through exactly the same station core, interlock and link thread as the
//! window. Commands are read one per line and carried out one at a time: a command's
//! answer is printed before the next line is read, so a script's output is in its
//! order. Every output line begins with one word (`ok`, `refused:`, `error:`,
//! `alarm:`, `status:`, `event:`, `summary:`, `aftercare:`, `help:`) so scripts can
//! parse it. See `docs/console.md`.
//!
//! Exit codes: 0 after `quit` or the end of input (the pen is halted first); 1 when the
//! console cannot start (bad zone table, data folder, port); 2 for a usage error.

use std::collections::VecDeque;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, select};

use crate::link::{Link, LinkConfig, LinkState, Outcome};
use crate::protocol::Command;
use crate::safety::alarms::{AlarmAction, AlarmId, AlarmLogEntry};
use crate::safety::interlock::{SafetyUpdate, ZonePlan, mm};
use crate::safety::zones::ZoneId;
use crate::station::{Notice, Station, StationError, setup};

/// Options of `punctum console`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("pen").required(true).args(["port", "sim"])))]
pub struct ConsoleArgs {
    /// The pen's serial port (e.g. /dev/ttyACM0, or a `punctum sim` link path).
    #[arg(long, value_name = "PATH")]
    pub port: Option<PathBuf>,
    /// Use the built-in simulated pen instead of a real one.
    #[arg(long)]
    pub sim: bool,
    /// The data folder: cartridge registry, treatment history, limit changes.
    /// [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A clinic's own zone table (same format and rules as assets/zones.json). Also
    /// settable as `zones_file` in `<data dir>/settings.json`.
    #[arg(long, value_name = "FILE")]
    pub zones: Option<PathBuf>,
    /// Who is at the station (recorded with zone-limit changes). [default: `$USER`]
    #[arg(long, value_name = "ID")]
    pub operator: Option<String>,
    /// Sign in as this account at start. Its PIN is read from `--pin-fd`, else from
    /// the terminal (echo off); never from the command line. Without it, the first
    /// line is `sign-in <id> <pin>`.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// With `--account`: read the PIN from this file descriptor (its first line).
    #[arg(long, value_name = "FD", requires = "account")]
    pub pin_fd: Option<u32>,
    /// Telemetry rate asked of the pen, Hz. The needle monitor sees the needle once per
    /// sample: at 5 mm/s a needle slipping deeper travels 5000/N µm between two samples
    /// (5 µm at the pen's 1000 Hz, 50 µm at 100 Hz).
    #[arg(long, default_value_t = 1000)]
    pub telemetry_hz: u32,
    /// The clinic store this station is part of: a `postgres://` URL, or a connection
    /// file (mode 0600; a password on the command line is visible to other users).
    /// [default: `<data dir>/clinic.conn` when it exists; else the station works alone]
    #[arg(long, value_name = "URL|FILE")]
    pub clinic: Option<String>,
    /// Sound the alarms (IEC 60601-1-8 signals through the desktop's sound server).
    /// Without it the console is silent, so bench scripts are not noisy.
    #[arg(long)]
    pub sound: bool,
}

/// The station on the pen `--port` names, else on the built-in simulated pen (which
/// lives as long as the console: it is returned with the station).
fn open_station(
    args: &ConsoleArgs,
    data: crate::store::DataDir,
    zones: crate::safety::zones::ZoneTable,
    out: &mut Printer,
) -> anyhow::Result<(Station, Option<crate::sim::SimPen>)> {
    let mut sim = None;
    let port = if let Some(port) = &args.port {
        port.clone()
    } else {
        let pen = setup::start_builtin_sim(&data)?;
        out.line(&format!(
            "event: SIMULATED pen on {} (not a real pen)",
            pen.port_path().display()
        ));
        let path = pen.port_path();
        sim = Some(pen);
        path
    };
    let mut config = LinkConfig::new(&port);
    config.zones = zones.clone();
    config.telemetry_hz = args.telemetry_hz;
    let link = Link::spawn(config).context("cannot start the link thread")?;
    let mut station = Station::new(link, data, zones).context("cannot open the station")?;
    station.set_simulated(sim.is_some());
    Ok((station, sim))
}

/// Joins the clinic store `--clinic` (or `clinic.conn`) names, if any: false when it
/// is named wrongly (said; the console ends).
fn join_clinic(station: &mut Station, args: &ConsoleArgs, out: &mut Printer) -> bool {
    match setup::join_clinic(station, args.clinic.as_deref()) {
        Ok(Some(said)) => out.line(&format!("event: {said}")),
        Ok(None) => {}
        Err(e) => {
            out.line(&format!("error: {e:#}"));
            return false;
        }
    }
    true
}

/// Runs the console until `quit`, the end of input or a signal.
pub fn run(args: &ConsoleArgs) -> anyhow::Result<ExitCode> {
    // First of all: from here on SIGINT, SIGTERM and SIGHUP halt the pen and close the
    // record before the console leaves, rather than ending it on the spot.
    let mut stops = Stops {
        rx: crate::signals::listen(None).context("cannot install the signal handlers")?,
        pending: None,
    };
    let data = setup::open_data_dir(args.data_dir.as_deref())?;
    let zones = setup::load_zones(args.zones.as_deref(), &data)?;
    let mut out = Printer::default();
    let who = setup::operator(args.operator.as_deref());
    for change in setup::record_limit_changes(&data, &zones, &who)? {
        out.line(&format!("event: {change}"));
    }

    // The built-in simulated pen lives as long as the console.
    let (mut station, _sim) = open_station(args, data, zones, &mut out)?;
    let (sound, _, volume_warning) =
        setup::start_sound(Some(station.data()), args.sound, None, None);
    station.set_sound(sound);
    if !join_clinic(&mut station, args, &mut out)
        || !sign_in_at_start(&mut station, args, volume_warning, &mut out)
    {
        station.shutdown();
        return Ok(ExitCode::FAILURE);
    }

    // Scripts start typing at once: give the link a moment to come up first.
    let mut stopped_by = match wait_for_link(&mut station, &mut stops, &mut out) {
        Ok(stop) => stop,
        Err(code) => {
            station.shutdown();
            return Ok(code);
        }
    };

    let input = spawn_stdin_reader()?;
    // Lines typed while a start was held, carried out after it.
    let mut deferred: VecDeque<String> = VecDeque::new();
    while stopped_by.is_none() {
        if let Some(stop) = stops.take() {
            stopped_by = Some(stop);
            break;
        }
        let typed = if let Some(typed) = deferred.pop_front() {
            typed
        } else {
            select! {
                recv(stops.rx) -> stop => {
                    stopped_by = stop.ok();
                    break;
                },
                recv(input) -> typed => {
                    let Ok(typed) = typed else { break };
                    typed
                },
                // Telemetry waits in the link's channel until the station takes it
                // in and hands it to the recorder: what a crash of the console can
                // lose is this plus the recorder's 15 ms.
                default(IDLE_PUMP) => {
                    station.pump(Duration::ZERO);
                    out.notices(station.take_notices());
                    continue;
                },
            }
        };
        // Lines typed back to back must not starve the link: take in what it said (and
        // prove the station alive) before each one, so `status` shows the pen as it is
        // now.
        station.pump(Duration::ZERO);
        out.notices(station.take_notices());
        let flow = execute(
            &mut station,
            typed.trim(),
            &mut out,
            &mut Held {
                input: &input,
                stops: &mut stops,
            },
            &mut deferred,
        );
        if flow == Flow::Quit {
            break;
        }
        out.notices(station.take_notices());
    }
    if let Some(stop) = stopped_by {
        stop_on_signal(&mut station, stop, &mut out);
    }
    // quit and end of input: halt the pen first.
    let halted = station.command(Command::Halt);
    out.notices(station.take_notices());
    match halted {
        Ok(answer) if answer.outcome == Outcome::Ack => out.line("event: pen halted"),
        Ok(answer) => out.line(&format!("event: halt not confirmed: {}", answer.outcome)),
        Err(e) => out.line(&format!("event: halt not confirmed: {e}")),
    }
    station.shutdown();
    out.line("event: console closed");
    Ok(stopped_by.map_or(ExitCode::SUCCESS, |stop| ExitCode::from(stop.exit_code())))
}

/// Says when the first admin is still to be created; with `--account`, signs it in
/// with the PIN from `--pin-fd` or the terminal. `false` (said) when refused: the
/// console does not start.
/// (`volume_warning`: a bad alarm volume setting, said first.)
fn sign_in_at_start(
    station: &mut Station,
    args: &ConsoleArgs,
    volume_warning: Option<String>,
    out: &mut Printer,
) -> bool {
    if let Some(warning) = volume_warning {
        out.line(&format!("warning: {warning}"));
    }
    match station.needs_first_admin() {
        Ok(true) if station.clinic_status().is_some() => out.line(
            "event: no account here yet: the clinic store's accounts are taken as soon as it \
             answers (first-admin <id> <pin> <name> only for a new clinic, whose store has none)",
        ),
        Ok(true) => out.line(
            "event: no account yet: create the clinic's first admin with first-admin <id> <pin> <name>",
        ),
        Ok(false) => {}
        Err(e) => out.line(&format!("warning: {e}")),
    }
    let Some(account) = &args.account else {
        return true;
    };
    let pin_fd = args.pin_fd;
    let signed =
        read_pin(pin_fd).and_then(|pin| station.sign_in(account, &pin).map_err(|e| e.to_string()));
    match signed {
        Ok(_) => {
            out.line(&format!("ok: signed in as {account}"));
            true
        }
        Err(why) => {
            out.line(&format!("refused: sign-in as {account}: {why}"));
            false
        }
    }
}

/// The PIN for `--account`: the first line of file descriptor `fd` (through
/// `/proc/self/fd`, no unsafe code), else typed at the terminal with echo off.
fn read_pin(fd: Option<u32>) -> Result<String, String> {
    let text = match fd {
        Some(fd) => {
            let path = format!("/proc/self/fd/{fd}");
            let mut line = String::new();
            let file = std::fs::File::open(&path)
                .map_err(|e| format!("cannot read the PIN from fd {fd}: {e}"))?;
            std::io::BufReader::new(file)
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the PIN from fd {fd}: {e}"))?;
            line
        }
        None => rpassword::prompt_password("PIN: ")
            .map_err(|e| format!("cannot read the PIN from the terminal: {e}"))?,
    };
    let pin = text.trim_end_matches(['\n', '\r']).to_owned();
    if pin.is_empty() {
        return Err("no PIN given".into());
    }
    Ok(pin)
}

/// `quit` refused: a locked station's open session is closed by its practitioner,
/// or safely by the end of input or a signal.
const LOCKED_QUIT: &str = "refused: the station is locked with a session open: unlock it first \
                           (end of input or a signal still closes the record safely)";

/// Signals as the console's loops see them: a stop taken while a command held the
/// console (a start waiting for the needle, a calibration) stays pending until the
/// main loop acts on it.
pub(super) struct Stops {
    /// The stops, as `crate::signals::listen` delivers them.
    pub(super) rx: Receiver<crate::signals::Stop>,
    pending: Option<crate::signals::Stop>,
}

impl Stops {
    /// Whether a stop has come (it stays pending).
    pub(super) fn arrived(&mut self) -> bool {
        if self.pending.is_none() {
            self.pending = self.rx.try_recv().ok();
        }
        self.pending.is_some()
    }

    /// The stop that came, if one did.
    pub(super) fn take(&mut self) -> Option<crate::signals::Stop> {
        self.arrived();
        self.pending.take()
    }
}

/// What a command that holds the console (a start, a calibration) watches besides
/// the station: the typed lines and the signals.
pub(super) struct Held<'a> {
    /// Lines typed on stdin.
    pub(super) input: &'a Receiver<String>,
    /// SIGINT, SIGTERM, SIGHUP.
    pub(super) stops: &'a mut Stops,
}

/// How long a console told to stop waits for the pen to report the motor stopped.
const SIGNAL_HALT_WAIT: Duration = Duration::from_secs(1);

/// A signal: halt the pen and see it stop, then close the open session's record
/// with its summary, marked as ended by the signal.
fn stop_on_signal(station: &mut Station, stop: crate::signals::Stop, out: &mut Printer) {
    out.line(&format!(
        "event: {}: halting the pen and closing the session before leaving",
        stop.name()
    ));
    match station.halt_before_exit(SIGNAL_HALT_WAIT) {
        Some(state) => out.line(&format!("event: pen reports {state}")),
        None => out.line(&format!(
            "event: no telemetry showed the motor stopped within {SIGNAL_HALT_WAIT:?}"
        )),
    }
    out.notices(station.take_notices());
    if station.session().is_some() {
        end_session_by(station, out, Some(format!("signal {}", stop.name())));
    }
}

/// Gives the link up to 10 s to come up, taking in what it says. A port the console
/// cannot open (no permission, no such port, held by another program, not a serial
/// port) is no link loss to wait out: it says what to do and ends with exit 1
/// (`Err`). A signal meanwhile is returned, to be acted on.
fn wait_for_link(
    station: &mut Station,
    stops: &mut Stops,
    out: &mut Printer,
) -> Result<Option<crate::signals::Stop>, ExitCode> {
    let until = Instant::now() + Duration::from_secs(10);
    while !matches!(station.link_state(), LinkState::Connected { .. }) && Instant::now() < until {
        station.pump(Duration::from_millis(50));
        out.notices(station.take_notices());
        if let Some(stop) = stops.take() {
            return Ok(Some(stop));
        }
        if let LinkState::Connecting {
            last_error: Some(why),
            port_problem: Some(_),
            ..
        } = station.link_state()
        {
            out.line(&format!("error: {why}"));
            return Err(ExitCode::FAILURE);
        }
    }
    Ok(None)
}

fn spawn_stdin_reader() -> anyhow::Result<Receiver<String>> {
    let (tx, rx) = crossbeam_channel::bounded(64);
    // Not joined: a blocked read of stdin cannot be interrupted; the thread ends with
    // the process.
    std::thread::Builder::new()
        .name("punctum-console-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the stdin reader")?;
    Ok(rx)
}

/// Whether the console goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Read the next command.
    Continue,
    /// Halt the pen and leave.
    Quit,
}

/// How often the console takes in what the link said while no command is typed.
const IDLE_PUMP: Duration = Duration::from_millis(10);

/// How long a note waits for the recorder to confirm it is written.
pub(super) const NOTE_CONFIRM_WAIT: Duration = Duration::from_secs(2);

const HELP: &[&str] = &[
    "session <screening.json>   open a session (screening answers file)",
    "zone <id>                  select a zone: forehead periorbital nose cheeks perioral chin_jawline neck decollete scalp body",
    "depth <mm>                 needle depth in mm, 0.05 steps (e.g. depth 0.5)",
    "speed <rpm>                needle speed in strokes per minute",
    "start | stop               start / stop the needle",
    "estop                      emergency stop (the E-stop byte goes out at once)",
    "reset                      the operator's reset after an E-stop, fault or link loss",
    "ack <alarm id|all>         acknowledge an alarm (ack deep_caution allows depths over 1.5 mm)",
    "silence <alarm id> [secs]  silence an alarm's sound (high: at most 120 s)",
    "status | alarms            show the station's state / the active alarms",
    "sound [test|volume <pct>]  the alarm sound's state; play each priority once; set the volume",
    "note <text>                add a note to the session's record",
    "end                        end the session: summary and aftercare",
    "quit                       halt the pen and leave",
];

fn execute(
    station: &mut Station,
    line: &str,
    out: &mut Printer,
    held: &mut Held<'_>,
    deferred: &mut VecDeque<String>,
) -> Flow {
    if line.is_empty() || line.starts_with('#') {
        return Flow::Continue;
    }
    // Every line typed is activity: the idle lock's clock starts again.
    station.touch();
    if super::console_people::execute(station, line, out).is_some() {
        return Flow::Continue;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if let Some(flow) = super::console_calibration::execute(station, &words, out, held) {
        return flow;
    }
    if super::console_clinic::execute(station, &words, out)
        .or_else(|| super::console_steps::execute_client(station, line, out))
        .is_some()
    {
        return Flow::Continue;
    }
    if super::console_steps::execute(station, line, out).is_some() {
        warn_if_unrecorded(station, words.first().copied(), out);
        return Flow::Continue;
    }
    let usage = |out: &mut Printer, text: &str| out.line(&format!("error: {text}"));
    match words.as_slice() {
        ["help"] => print_help(out),
        ["quit"] if station.is_locked() && station.session().is_some() => out.line(LOCKED_QUIT),
        ["quit"] => return Flow::Quit,
        ["session", path] => open_session(station, Path::new(path), out),
        ["zone", id] => match id.parse::<ZoneId>() {
            Ok(zone) => match station.safety(SafetyUpdate::SelectZone(zone)) {
                Ok(Ok(_)) => out.line("ok"),
                Ok(Err(refusal)) => out.line(&format!("refused: {refusal}")),
                Err(e) => out.line(&format!("error: {e}")),
            },
            Err(e) => usage(out, &format!("{e}; usage: zone <id>")),
        },
        ["depth", value] => match parse_depth_um(value) {
            Ok(depth_um) => send(station, Command::Depth { depth_um }, out),
            Err(e) => usage(out, &format!("{e}; usage: depth <mm>, e.g. depth 0.5")),
        },
        ["speed", value] => match value.parse::<i64>() {
            Ok(rpm) => send(station, Command::Speed { rpm }, out),
            Err(_) => usage(
                out,
                &format!("{value:?} is not a whole number of rpm; usage: speed <rpm>"),
            ),
        },
        ["start"] => start(station, out, held, deferred),
        ["stop"] => send(station, Command::Halt, out),
        ["reset"] => send(station, Command::Reset, out),
        ["estop"] => match station.estop() {
            Ok(()) => out.line("ok"),
            Err(e) => out.line(&format!("error: {e}")),
        },
        ["ack", "all"] => match station.acknowledge(None) {
            Ok(n) => out.line(&format!("ok: {n} acknowledged")),
            Err(e) => out.line(&format!("refused: {e}")),
        },
        ["ack", id] => match id.parse::<AlarmId>() {
            Ok(alarm) => match station.acknowledge(Some(alarm)) {
                Ok(_) => out.line("ok"),
                Err(e) => out.line(&format!("refused: {e}")),
            },
            Err(e) => usage(out, &format!("{e}; usage: ack <alarm id|all>")),
        },
        ["silence", id, rest @ ..] if rest.len() <= 1 => {
            let secs = rest.first().map_or(Ok(120), |s| s.parse::<u64>());
            match (id.parse::<AlarmId>(), secs) {
                (Ok(alarm), Ok(secs)) => {
                    let now = station.now_ms();
                    match station.alarms_mut().silence(alarm, now, secs * 1000) {
                        Ok(()) => out.line("ok"),
                        Err(e) => out.line(&format!("refused: {e}")),
                    }
                }
                (Err(e), _) => usage(out, &format!("{e}; usage: silence <alarm id> [secs]")),
                (_, Err(_)) => usage(out, "usage: silence <alarm id> [secs]"),
            }
        }
        ["status"] => out.line(&status_line(station)),
        ["sound", rest @ ..] => sound(station, rest, out),
        ["alarms"] => list_alarms(station, out),
        ["end"] => end_session(station, out),
        ["note", ..] if words.len() > 1 => note(station, line, out),
        [verb, ..] if HELP.iter().any(|h| h.starts_with(verb)) => {
            usage(out, &format!("wrong arguments for {verb}; try help"));
        }
        // Only the first word is repeated: a mistyped `sign-in` line holds a PIN.
        [first, ..] => usage(out, &format!("unknown command {first:?}; try help")),
        [] => {}
    }
    warn_if_unrecorded(station, words.first().copied(), out);
    Flow::Continue
}

/// `help`: every command, one per line.
fn print_help(out: &mut Printer) {
    for h in HELP
        .iter()
        .chain(super::console_people::HELP)
        .chain(super::console_steps::HELP)
        .chain(super::console_steps::CLIENT_HELP)
        .chain(super::console_calibration::HELP)
        .chain(super::console_clinic::HELP)
    {
        out.line(&format!("help: {h}"));
    }
}

fn note(station: &mut Station, line: &str, out: &mut Printer) {
    let text = line
        .trim_start()
        .strip_prefix("note")
        .unwrap_or_default()
        .trim();
    // `ok` only once the note is safe from a crash: a full disk is said here.
    match station
        .note(text)
        .and_then(|()| station.confirm_recorded(NOTE_CONFIRM_WAIT))
    {
        Ok(()) => out.line("ok"),
        Err(e) => out.line(&format!("refused: {e}")),
    }
}

/// A command the record would hold, once the record can no longer be written: the
/// operator learns it from the answer, not later from a missing line.
fn warn_if_unrecorded(station: &Station, verb: Option<&str>, out: &mut Printer) {
    let recorded_verb = matches!(
        verb,
        Some(
            "zone"
                | "depth"
                | "speed"
                | "start"
                | "stop"
                | "reset"
                | "estop"
                | "ack"
                | "silence"
                | "step"
        )
    );
    if recorded_verb
        && station.session().is_some()
        && let Some(why) = station.recording_failure()
    {
        out.line(&format!("warning: not recorded: recording failed: {why}"));
    }
}

fn end_session(station: &mut Station, out: &mut Printer) {
    end_session_by(station, out, None);
}

/// Ends the session, `ended_by` something other than `end` if given, and prints the
/// summary and aftercare.
fn end_session_by(station: &mut Station, out: &mut Printer, ended_by: Option<String>) {
    let record = station.record_path().map(Path::to_path_buf);
    match station.end_session_ended_by(true, ended_by) {
        Ok(summary) => {
            if let Some(path) = record {
                out.line(&format!("summary: record={}", path.display()));
            }
            out.line(&format!(
                "summary: session={} client={} needling_s={:.1} refusals={} interruptions={}",
                summary.session_id,
                summary.client,
                secs(summary.needling_ms),
                summary.refusals,
                summary.interruptions
            ));
            for z in &summary.zones {
                out.line(&format!(
                    "summary: zone={} passes={} needling_s={:.1} max_depth_mm={} refusals={}",
                    z.zone,
                    z.passes,
                    secs(z.needling_ms),
                    mm(i64::from(z.max_depth_um)).trim_end_matches(" mm"),
                    z.refusals
                ));
            }
            for line in &summary.aftercare {
                out.line(&format!("aftercare: {line}"));
            }
            // The advice names the dates (earliest, and latest where the schedule has one).
            out.line(&format!("aftercare: next session: {}", summary.next_advice));
            if let Some(course) = &summary.course {
                out.line(&format!("aftercare: course: {course}"));
            }
            // The printable hand-outs the client takes home.
            let (settings, _) =
                crate::store::StationSettings::load(station.data()).unwrap_or_default();
            match crate::handout::write_handouts(
                station.data(),
                &summary,
                settings.clinic_name.as_deref(),
            ) {
                Ok((aftercare, page)) => {
                    out.line(&format!("summary: handout={}", aftercare.display()));
                    out.line(&format!("summary: handout={}", page.display()));
                }
                Err(e) => out.line(&format!("warning: the hand-outs could not be written: {e}")),
            }
        }
        Err(e) => out.line(&format!("refused: {e}")),
    }
}

/// `sound`, `sound test`, `sound volume <pct>`.
fn sound(station: &mut Station, words: &[&str], out: &mut Printer) {
    let status = station.sound().status();
    match words {
        [] => {
            let (settings, _) =
                crate::store::StationSettings::load(station.data()).unwrap_or_default();
            out.line(&format!(
                "status: sound={} volume_pct={} detail={}",
                status.word(),
                settings.alarm_volume_pct,
                status
            ));
        }
        ["test"] => match station.test_alarm_sound() {
            Ok(()) => out.line("ok: playing high, medium and low once, high first"),
            Err(e) => out.line(&format!("refused: {e}")),
        },
        ["volume", pct] => match pct.parse::<i64>() {
            Ok(pct) => match setup::set_alarm_volume(station.data(), station.sound(), pct) {
                Ok(said) => out.line(&format!("ok: {said}")),
                Err(e) => out.line(&format!("refused: {e}")),
            },
            Err(_) => out.line("error: usage: sound volume <10-100>"),
        },
        _ => out.line("error: usage: sound [test|volume <pct>]"),
    }
}

fn list_alarms(station: &Station, out: &mut Printer) {
    let active = station.alarms().active();
    if active.is_empty() {
        out.line("status: alarms=none");
    }
    for a in active {
        out.line(&format!(
            "status: alarm={} priority={} acknowledged={} silenced={} silence_left_s={} \
             condition={} text={}",
            a.id,
            a.priority.as_str(),
            a.acknowledged,
            a.silenced_until_ms.is_some(),
            a.silenced_until_ms.map_or_else(
                || "-".to_owned(),
                |until| until
                    .saturating_sub(station.now_ms())
                    .div_ceil(1000)
                    .to_string()
            ),
            a.condition_present,
            a.text
        ));
    }
}

#[allow(clippy::cast_precision_loss)] // session times are far below 2^52 ms
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn open_session(station: &mut Station, path: &Path, out: &mut Printer) {
    let text = match crate::files::read_text(path, crate::files::MAX_TEXT_FILE_BYTES) {
        Ok(text) => text,
        Err(e) => return out.line(&format!("error: cannot read {}: {e}", path.display())),
    };
    match station.open_session(&text) {
        Ok(outcome) if outcome.passed() => {
            out.line("ok");
            if let Some(s) = station.session() {
                let cautions: Vec<&str> = outcome
                    .confirmed_cautions
                    .iter()
                    .map(|q| q.as_str())
                    .collect();
                out.line(&format!(
                    "event: session {} opened: client={} age={} indication={} practitioner={} cautions_confirmed={}",
                    s.id,
                    s.answers.client,
                    outcome.age_years,
                    s.answers.indication,
                    s.answers.practitioner,
                    if cautions.is_empty() { "none".to_owned() } else { cautions.join(",") }
                ));
            }
            if let Some(path) = station.record_path() {
                out.line(&format!("event: recording to {}", path.display()));
            }
            if let Some(course) = station.session().and_then(|s| s.course.clone()) {
                out.line(&format!("event: course: {}", course.text));
                if let Some(caution) = course.caution {
                    out.line(&format!("event: course caution: {caution}"));
                }
            }
            out.line(
                "event: before the needle: record cleansing and the numbing cream (or no \
                 numbing with a reason); see steps",
            );
        }
        Ok(outcome) => out.line(&format!(
            "refused: screening: {}",
            outcome.reasons().join("; ")
        )),
        Err(StationError::Screening(e)) => out.line(&format!("error: {e}")),
        Err(e) => out.line(&format!("refused: {e}")),
    }
}

fn send(station: &mut Station, command: Command, out: &mut Printer) {
    let shown = command.to_string();
    match station.command(command) {
        Ok(answer) => out.line(&outcome_line(&shown, answer.outcome)),
        Err(e) => out.line(&format!("error: {e}")),
    }
}

/// `start`: claims and asks through the station, then waits for the pen's answer,
/// printing what happens meanwhile as it happens (a start held until the needle is in
/// place says so before its `ok`). Typed meanwhile: `estop` goes out at once and
/// `stop` at once (either cancels a held start); the end of input cancels it too; any
/// other line is carried out after the start's answer.
fn start(
    station: &mut Station,
    out: &mut Printer,
    held: &mut Held<'_>,
    deferred: &mut VecDeque<String>,
) {
    let id = match station.start() {
        Ok(id) => id,
        Err(e) => return out.line(&format!("refused: start not sent: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut started = None;
    // The results of what was typed meanwhile, printed after the start's own.
    let mut later: Vec<String> = Vec::new();
    let mut stop_id = None;
    let mut input_open = true;
    let mut signalled = false;
    while Instant::now() < deadline && (started.is_none() || stop_id.is_some()) {
        // A signal cancels the held start as Stop does; the main loop then halts
        // the pen and closes the record.
        if !signalled && held.stops.arrived() {
            signalled = true;
            let _ = station.request(Command::Halt);
        }
        if input_open && !signalled {
            select! {
                recv(held.input) -> typed => if let Ok(line) = typed {
                    match line.trim() {
                        "estop" => later.push(match station.estop() {
                            Ok(()) => "ok".to_owned(),
                            Err(e) => format!("error: {e}"),
                        }),
                        "stop" => match station.request(Command::Halt) {
                            Ok(halt) => stop_id = Some(halt),
                            Err(e) => later.push(format!("error: {e}")),
                        },
                        _ => deferred.push_back(line),
                    }
                } else {
                    // The end of input: the console is leaving; no start now.
                    input_open = false;
                    let _ = station.request(Command::Halt);
                },
                default(Duration::from_millis(10)) => {},
            }
        }
        station.pump(if input_open && !signalled {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        });
        for notice in station.take_notices() {
            match notice {
                Notice::Answer(answer) if answer.id == id => started = Some(answer.outcome),
                Notice::Answer(answer) if Some(answer.id) == stop_id => {
                    stop_id = None;
                    later.push(outcome_line(&Command::Halt.to_string(), answer.outcome));
                }
                other => out.notices(vec![other]),
            }
        }
    }
    match started {
        Some(outcome) => out.line(&outcome_line(&Command::Run.to_string(), outcome)),
        None => out.line("error: no answer to RUN within 5 s"),
    }
    for line in later {
        out.line(&line);
    }
    if !input_open {
        deferred.push_back("quit".to_owned());
    }
}

/// How a command ended, as the console prints it: `ok`, `refused:` or `error:`.
fn outcome_line(shown: &str, outcome: Outcome) -> String {
    match outcome {
        Outcome::Ack => "ok".to_owned(),
        Outcome::Refused(refusal) => format!("refused: {refusal}"),
        Outcome::Nak(reason) => format!("refused: the pen answered NAK {reason} to {shown}"),
        Outcome::NotSent(why) => format!("refused: {shown} not sent: {why}"),
        Outcome::Unanswered => format!("error: {shown} unanswered; the link is lost"),
    }
}

/// Parses a depth in mm ("0.5", "1.25") into µm without float surprises.
pub(super) fn parse_depth_um(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a depth in mm (digits, at most 3 decimals: whole µm)");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let negative = whole.starts_with('-');
    let whole = whole.trim_start_matches('-');
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 3
        || whole.len() > 3
    {
        return Err(bad());
    }
    let whole_um = if whole.is_empty() {
        0
    } else {
        whole.parse::<i64>().map_err(|_| bad())? * 1000
    };
    let frac_um = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse::<i64>().map_err(|_| bad())?
    };
    let um = whole_um + frac_um;
    Ok(if negative { -um } else { um })
}

fn status_line(station: &Station) -> String {
    let link = match station.link_state() {
        LinkState::Connected { .. } => "connected",
        LinkState::Connecting { .. } => "connecting",
        LinkState::Handshaking => "handshaking",
        LinkState::Lost(_) => "lost",
        LinkState::Closed => "closed",
    };
    // Only a sample from a link that is up is the pen now: after a loss the last one
    // (a needle RUNNING at 6000 rpm) would contradict the alarm's "assumed stopped".
    let t = station
        .last_telemetry()
        .filter(|_| matches!(station.link_state(), LinkState::Connected { .. }));
    let summary = station.safety_summary();
    let opt_mm = |um: Option<i32>| {
        um.map_or_else(|| "-".to_owned(), |um| mm(i64::from(um)).replace(" mm", ""))
    };
    let cartridge = summary.and_then(|s| s.cartridge.as_ref()).map_or_else(
        || "none".to_owned(),
        |c| {
            let check = match &c.check {
                crate::safety::interlock::CartridgeCheck::Unchecked => "unchecked",
                crate::safety::interlock::CartridgeCheck::Fresh => "fresh",
                crate::safety::interlock::CartridgeCheck::UsedBefore { .. } => "used",
                crate::safety::interlock::CartridgeCheck::Offline {
                    sealed_pack_confirmed: true,
                } => "offline-confirmed",
                crate::safety::interlock::CartridgeCheck::Offline {
                    sealed_pack_confirmed: false,
                } => "offline-unconfirmed",
            };
            format!("{}:{}:{check}", c.id, c.needles)
        },
    );
    let latched = summary.map_or_else(String::new, |s| {
        s.latched
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    let highest = station.alarms().highest().map_or_else(
        || "none".to_owned(),
        |a| format!("{}:{}", a.priority.as_str(), a.id),
    );
    format!(
        "status: link={link} pen_state={} needle={} zone={} limit_mm={} depth_target_mm={} depth_mm={} rpm={} \
         telemetry_age_ms={} start_held={} cartridge={cartridge} latched={} session={} alarms={} \
         highest={highest} sound={} audio_paused={} \
         simulated={} technician={} calibration={:?}",
        t.map_or_else(|| "-".to_owned(), |t| t.state.to_string()),
        // The interlock's view, which the next command is judged on: the last sample
        // may say IDLE while a RUN the pen has acknowledged is not yet in telemetry.
        if summary.is_some_and(|s| s.running) {
            "running"
        } else {
            "stopped"
        },
        summary
            .and_then(|s| s.zone)
            .map_or_else(|| "none".to_owned(), |z| z.to_string()),
        opt_mm(summary.and_then(|s| s.limit_um)),
        opt_mm(summary.and_then(|s| s.depth_target_um)),
        opt_mm(t.map(|t| t.depth_um)),
        t.map_or_else(|| "-".to_owned(), |t| t.rpm.to_string()),
        station
            .telemetry_age()
            .map_or_else(|| "-".to_owned(), |age| age.as_millis().to_string()),
        station.held_start().is_some(),
        if latched.is_empty() { "none" } else { &latched },
        station.session().map_or("none", |s| s.id.as_str()),
        station.alarms().active().len(),
        station.sound().status().word(),
        station.alarms().audio_paused(station.now_ms()).map_or_else(
            || "none".to_owned(),
            |(id, left_ms)| format!("{id}:{}s", left_ms.div_ceil(1000))
        ),
        station
            .info()
            .is_some_and(|i| i.model.contains("SIM") || i.fw.contains("sim")),
        station.technician().unwrap_or("off"),
        station
            .calibration_status()
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
    )
}

/// Prints lines, flushing each, so a pipe sees them at once.
#[derive(Default)]
pub(super) struct Printer {
    last_connect_error: Option<String>,
}

impl Printer {
    /// Prints one line. Every line may quote text from outside (a note, a file
    /// name, the pen's INFO, an error echoing what was typed): its control characters
    /// are shown escaped ([`crate::text::shown`]).
    #[allow(clippy::unused_self)] // one door for every line, so output stays in order
    pub(super) fn line(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the reader went away) ends nothing here: the pen is still
        // halted on the way out.
        let _ = writeln!(stdout, "{}", crate::text::shown(text));
        let _ = stdout.flush();
    }

    pub(super) fn notices(&mut self, notices: Vec<Notice>) {
        for notice in notices {
            match notice {
                Notice::Alarm(entry) => self.alarm(&entry),
                Notice::Link(state) => self.link(state),
                Notice::Pen(event) => self.line(&format!("event: pen {event}")),
                Notice::ZonePlan(plan) => self.zone_plan(&plan),
                Notice::Info(text) => self.line(&format!("event: {text}")),
                // The console waits for its own answers and prints them itself, and
                // prints the final summary at `end`.
                Notice::Answer(_) | Notice::SessionClosed(_) => {}
            }
        }
    }

    fn alarm(&mut self, e: &AlarmLogEntry) {
        let p = e.priority.as_str();
        match e.action {
            AlarmAction::Raised => self.line(&format!("alarm: raised {p} {} {}", e.id, e.text)),
            AlarmAction::Cleared => self.line(&format!("alarm: cleared {p} {} {}", e.id, e.text)),
            AlarmAction::Acknowledged => self.line(&format!("event: alarm acknowledged {}", e.id)),
            AlarmAction::Silenced { until_ms } => {
                self.line(&format!(
                    "event: alarm silenced {} until_ms={until_ms}",
                    e.id
                ));
            }
        }
    }

    fn link(&mut self, state: LinkState) {
        match state {
            LinkState::Connected { info, calibration } => {
                self.last_connect_error = None;
                self.line(&format!(
                    "event: link connected model={} serial={} fw={} calibration_date={}",
                    info.model, info.serial, info.fw, calibration.date
                ));
            }
            LinkState::Lost(reason) => self.line(&format!("event: link lost: {reason}")),
            LinkState::Connecting {
                last_error: Some(e),
                ..
            } if self.last_connect_error.as_ref() != Some(&e) => {
                self.line(&format!("event: link connecting: {e}"));
                self.last_connect_error = Some(e);
            }
            LinkState::Closed => self.line("event: link closed"),
            LinkState::Connecting { .. } | LinkState::Handshaking => {}
        }
    }

    fn zone_plan(&mut self, plan: &ZonePlan) {
        self.line(&format!("event: {plan}"));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_depth_um;

    #[test]
    fn depths_parse_in_mm_without_float_error() {
        let cases = [
            ("0.5", Ok(500)),
            ("1.25", Ok(1250)),
            ("2", Ok(2000)),
            (".3", Ok(300)),
            ("0.05", Ok(50)),
            ("-0.1", Ok(-100)),
            ("0.0505", Err(())),
            ("abc", Err(())),
            ("", Err(())),
            ("1e3", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_depth_um(text).map_err(|_| ()), expected, "{text}");
        }
    }
}
