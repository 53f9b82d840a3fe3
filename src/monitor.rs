//! `punctum monitor`: a technician's first tool. It connects through the link thread,
//! prints the pen's INFO and calibration, then one live status line.
//!
//! On a terminal the status line is rewritten in place; piped, a line a second is
//! printed instead, so logs stay readable. Ctrl-C (or `--duration`) ends it: the link
//! sends `HALT` and closes the port. (The pen's watchdog would stop the needle
//! anyway, 300 ms after the last heartbeat.)

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::select;

use crate::link::{Link, LinkConfig, LinkEvent, LinkState, LinkStats};
use crate::protocol::{Calibration, PenInfo, PenMessage, Telemetry};
use crate::text::shown;

/// Options of `punctum monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// The pen's serial port, e.g. /dev/ttyACM0, or the path `punctum sim` printed.
    #[arg(long)]
    pub port: PathBuf,
    /// Telemetry rate to ask of the pen, Hz (0 = off, or 10..=1000).
    #[arg(long, default_value_t = 20, value_parser = parse_hz)]
    pub telemetry_hz: u32,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

fn parse_hz(s: &str) -> Result<u32, String> {
    let hz: u32 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if hz == 0 || (10..=1000).contains(&hz) {
        Ok(hz)
    } else {
        Err(format!("{hz} Hz: the pen takes 0 (off) or 10..=1000"))
    }
}

/// Runs the monitor until Ctrl-C or the end of `--duration`.
pub fn run(args: &MonitorArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let ends_at = match args.duration {
        Some(secs) if secs.is_finite() && secs >= 0.0 => {
            Some(Instant::now() + Duration::try_from_secs_f64(secs)?)
        }
        Some(secs) => anyhow::bail!("--duration {secs}: give a number of seconds"),
        None => None,
    };
    let mut config = LinkConfig::new(&args.port);
    config.telemetry_hz = args.telemetry_hz;
    let link = Link::spawn(config).context("cannot start the link thread")?;
    let interactive = std::io::stdout().is_terminal();
    println!("connecting to {}", shown(&args.port.display().to_string()));

    let mut view = StatusView::default();
    let mut next_print = Instant::now();
    while !stop.load(Ordering::Relaxed) && ends_at.is_none_or(|t| Instant::now() < t) {
        link.feed_liveness();
        select! {
            recv(link.events()) -> event => match event {
                Ok(event) => view.on_event(event, interactive),
                Err(_) => break,
            },
            recv(link.telemetry()) -> sample => {
                if let Ok(sample) = sample {
                    view.last = Some(sample);
                }
                while let Ok(sample) = link.telemetry().try_recv() {
                    view.last = Some(sample);
                }
            },
            default(Duration::from_millis(50)) => {},
        }
        let now = Instant::now();
        if view.connected && now >= next_print {
            let status_line = view.status_line();
            if interactive {
                print!("\r\x1b[2K{status_line}");
                next_print = now + Duration::from_millis(100);
            } else {
                println!("{status_line}");
                next_print = now + Duration::from_secs(1);
            }
            let _ = std::io::stdout().flush();
        }
    }
    if interactive {
        println!();
    }
    link.shutdown();
    println!("halted; link closed");
    Ok(ExitCode::SUCCESS)
}

/// What the monitor knows, and how it prints it.
#[derive(Debug, Default)]
struct StatusView {
    connected: bool,
    last: Option<Telemetry>,
    stats: LinkStats,
    last_error: Option<String>,
}

impl StatusView {
    fn on_event(&mut self, event: LinkEvent, interactive: bool) {
        let lead = if interactive { "\r\x1b[2K" } else { "" };
        match event {
            LinkEvent::State(LinkState::Connected { info, calibration }) => {
                self.connected = true;
                self.last_error = None;
                println!("{lead}{}", shown(&info_line(&info)));
                println!("{}", shown(&calibration_line(&calibration)));
            }
            LinkEvent::State(LinkState::Lost(reason)) => {
                self.connected = false;
                println!(
                    "{lead}link: lost ({}); the motor is assumed stopped; reconnecting",
                    shown(&reason.to_string())
                );
            }
            LinkEvent::State(LinkState::Connecting { last_error, .. })
                if last_error != self.last_error =>
            {
                if let Some(e) = &last_error {
                    println!("{lead}link: cannot connect yet ({}); retrying", shown(e));
                }
                self.last_error = last_error;
            }
            LinkEvent::Pen { t_ms, event } => {
                println!("{lead}event: t_ms={t_ms} {}", shown(&event.to_string()));
            }
            LinkEvent::Calibration(c) if self.connected => {
                println!("{lead}{}", shown(&calibration_line(&c)));
            }
            LinkEvent::Stats(stats) => self.stats = stats,
            LinkEvent::OwnerStalled => println!("{lead}link: monitor stalled; heartbeats held"),
            _ => {}
        }
    }

    fn status_line(&self) -> String {
        let pen = self.last.map_or_else(
            || "state=? (no telemetry yet)".to_owned(),
            |t| {
                format!(
                    "state={} rpm={} depth_um={} current_ma={} temp_c={:.1}",
                    t.state,
                    t.rpm,
                    t.depth_um,
                    t.current_ma,
                    f64::from(t.temp_dc) / 10.0
                )
            },
        );
        let s = &self.stats;
        let ms = |us: Option<u64>| {
            #[allow(clippy::cast_precision_loss)] // microseconds, far below 2^52
            us.map_or_else(|| "-".to_owned(), |us| format!("{:.2}", us as f64 / 1000.0))
        };
        format!(
            "status: {pen} | rtt_p50_ms={} rtt_p99_ms={} tel_hz={:.0} gaps={} lost={} retries={} discarded={}",
            ms(s.rtt_p50_us),
            ms(s.rtt_p99_us),
            s.telemetry_rate_hz,
            s.telemetry_gaps,
            s.samples_lost,
            s.retries,
            s.discarded.total()
        )
    }
}

/// The INFO line as the pen wrote it, without its first word.
fn info_line(info: &PenInfo) -> String {
    let mut body = String::new();
    PenMessage::Info(info.clone()).write_body(&mut body);
    format!("info: {}", body.strip_prefix("INFO ").unwrap_or(&body))
}

fn calibration_line(c: &Calibration) -> String {
    let date = if c.date == 0 {
        "never".to_owned()
    } else {
        c.date.to_string()
    };
    format!(
        "calibration: depth_offset_um={} depth_gain_ppm={} speed_gain_ppm={} date={date} tech={}",
        c.depth_offset_um, c.depth_gain_ppm, c.speed_gain_ppm, c.tech
    )
}
