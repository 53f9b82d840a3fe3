//! `punctum sim`: a simulated pen on a pseudo-terminal, for demonstrations and for
//! testing a station without hardware.
//!
//! The first line on stdout is `port: <path>`, the path a host opens; everything the
//! pen does is reported on stderr. Actions can be scheduled with `--at` or typed on
//! stdin while it runs. It stops on Ctrl-C (SIGINT) or SIGTERM, removing its symlink.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, select};

use super::pen::{Cartridge, HiddenErrors, JournalEntry, Journaled, PenConfig};
use super::{SimAction, SimConfig, SimPen, parse_fraction, parse_secs};
use crate::protocol::PenMessage;

/// Flags of `punctum sim`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
ACTIONS (for --at and stdin, one per line):
  stall | overcurrent | overtemp | depth-jam   inject a physical condition; the pen's own
                                               detection faults (STALL, OVERCURRENT, ...)
  depth-creep | runaway | overspeed            faults the pen does not notice: the needle
                                               slips deeper, the motor starts by itself, the
                                               speed runs past its target (the station's
                                               needle monitor must stop them)
  tel-stop | tel-rate=HZ                       the pen stops sending telemetry, or sends it at
                                               HZ, and goes on answering (a firmware fault,
                                               a second host's TEL)
  clear                                        end every injected condition (a pen in FAULT
                                               still needs RESET)
  corrupt=FRACTION                             flip a bit in that fraction of lines, 0..1
  silent[=SECS]                                stop reading and writing (until clear)
  disappear[=SECS]                             close the pty; come back on a new one
  reappear                                     come back now
  reboot[=power|brownout|watchdog_reset]       restart; the boot counter goes up
  button | stop-button                         the pen's start / stop (E-stop) button
  cart-remove | cart-insert=ID/NEEDLES         pull out / push in a cartridge

EXAMPLES:
  punctum sim --link /tmp/pen
  punctum sim --link /tmp/pen --at 5:stall --at 10:disappear=3 --at 20:reboot=brownout
  punctum sim --no-cartridge --corrupt 0.01 --seed 7
  punctum sim --cal-file ~/.punctum/sim-cal.json --hidden-depth-gain-ppm 25000")]
pub struct SimArgs {
    /// Keep a symlink at PATH pointing at the pen's pty, re-pointed when the pen comes
    /// back after `disappear`. Hosts should open this path. Example: --link /tmp/pen
    #[arg(long, value_name = "PATH")]
    pub link: Option<PathBuf>,

    /// The cartridge in the pen at start: 16 uppercase hex digits and a needle count.
    /// [default: 0123456789ABCDEF:12]
    #[arg(long, value_name = "ID:NEEDLES", conflicts_with = "no_cartridge")]
    pub cartridge: Option<Cartridge>,

    /// Start with no cartridge in the pen (RUN is then refused with NAK CARTRIDGE).
    #[arg(long)]
    pub no_cartridge: bool,

    /// Serial number reported in INFO (1..32 of A-Z a-z 0-9 _ - .).
    #[arg(long, default_value = "SIM00001")]
    pub serial: String,

    /// Boot counter at start; each simulated reboot adds one.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub boot_count: u32,

    /// Hidden true depth gain error, ppm (the pen's real g; calibration estimates it).
    #[arg(long, value_name = "PPM", default_value_t = HiddenErrors::default().depth_gain_ppm,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-50_000..=50_000))]
    pub hidden_depth_gain_ppm: i32,

    /// Hidden true depth offset error, µm (the pen's real o).
    #[arg(long, value_name = "UM", default_value_t = HiddenErrors::default().depth_offset_um,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-200..=200))]
    pub hidden_depth_offset_um: i32,

    /// Hidden true speed-sensor gain error, ppm (the pen's real s).
    #[arg(long, value_name = "PPM", default_value_t = HiddenErrors::default().speed_gain_ppm,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-50_000..=50_000))]
    pub hidden_speed_gain_ppm: i32,

    /// Persist the calibration (CAL SET) in this JSON file; a missing file means a pen
    /// never calibrated. Without it the calibration lives in memory only.
    #[arg(long, value_name = "PATH")]
    pub cal_file: Option<PathBuf>,

    /// When no calibration file exists, start calibrated today by "the factory"
    /// (identity values, tech FACTORY) instead of never calibrated, so a station will
    /// start the needle. Without it the pen reports date 0 and starts are refused.
    #[arg(long)]
    pub factory_calibrated: bool,

    /// Flip one bit in this fraction of output lines, 0..1. Example: --corrupt 0.01
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = parse_fraction)]
    pub corrupt: f64,

    /// Seed of the deterministic noise and corruption.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Send telemetry as fast as the port accepts (in batches of 64 samples, `n`
    /// consecutive) instead of at the TEL rate; for throughput benchmarks.
    #[arg(long)]
    pub unthrottled: bool,

    /// Perform ACTION SECS seconds after start (repeatable; see ACTIONS below).
    /// Example: --at 5:stall --at 10:disappear=3
    #[arg(long = "at", value_name = "SECS:ACTION", value_parser = parse_at)]
    pub at: Vec<(Duration, SimAction)>,
}

/// Parses `SECS:ACTION`, e.g. `2.5:reboot=brownout`.
fn parse_at(text: &str) -> Result<(Duration, SimAction), String> {
    let Some((secs, action)) = text.split_once(':') else {
        return Err(format!("{text:?} is not SECS:ACTION, e.g. 5:stall"));
    };
    Ok((parse_secs(secs)?, action.parse()?))
}

impl SimArgs {
    /// The pen configuration these flags describe.
    #[must_use]
    pub fn to_config(&self) -> SimConfig {
        let cartridge = if self.no_cartridge {
            None
        } else {
            Some(self.cartridge.unwrap_or_default())
        };
        SimConfig {
            pen: PenConfig {
                serial: self.serial.clone(),
                boot_count: self.boot_count,
                hidden: HiddenErrors {
                    depth_gain_ppm: self.hidden_depth_gain_ppm,
                    depth_offset_um: self.hidden_depth_offset_um,
                    speed_gain_ppm: self.hidden_speed_gain_ppm,
                },
                cartridge,
                unthrottled_telemetry: self.unthrottled,
                seed: self.seed,
                journal_telemetry: false,
            },
            link_path: self.link.clone(),
            cal_file: self.cal_file.clone(),
            corrupt_fraction: self.corrupt,
            schedule: self.at.clone(),
            initial_calibration: self
                .factory_calibrated
                .then(|| crate::protocol::Calibration {
                    date: crate::safety::interlock::yyyymmdd(jiff::Zoned::now().date()),
                    tech: "FACTORY".into(),
                    ..crate::protocol::Calibration::identity()
                }),
        }
    }
}

/// Runs `punctum sim` until Ctrl-C or SIGTERM.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    let pen = SimPen::spawn(args.to_config()).context("cannot start the simulated pen")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "port: {}",
            crate::text::shown(&pen.port_path().display().to_string())
        )?;
        stdout.flush()?;
    }
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        // A second signal while the first is handled finds the channel full: fine.
        let _ = stop_tx.try_send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    let mut typed = stdin_actions()?;
    let mut mark = 0;
    loop {
        select! {
            recv(stop_rx) -> _ => break,
            recv(typed) -> line => match line {
                Ok(action) => pen.act(action).context("the simulated pen stopped")?,
                // EOF on stdin ends the typing, not the pen.
                Err(_) => typed = crossbeam_channel::never(),
            },
            default(Duration::from_millis(100)) => {}
        }
        let (entries, next) = pen.journal_since(mark);
        mark = next;
        for entry in entries {
            if let Some(text) = describe(&entry) {
                // The journal quotes what the host sent.
                eprintln!(
                    "[boot {} t={} ms] {}",
                    entry.boot,
                    entry.t_ms,
                    crate::text::shown(&text)
                );
            }
        }
    }
    eprintln!("stopping the simulated pen");
    pen.shutdown()
        .context("the simulated pen did not stop cleanly")?;
    Ok(())
}

/// Reads action words from stdin on a thread of its own.
///
/// The thread is not joined: a blocking read of stdin cannot be interrupted, and the
/// process ends right after the pen stops, which ends the thread too.
fn stdin_actions() -> anyhow::Result<Receiver<SimAction>> {
    let (tx, rx) = crossbeam_channel::bounded(16);
    std::thread::Builder::new()
        .name("sim-stdin".to_owned())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match line.parse::<SimAction>() {
                    Ok(action) => {
                        if tx.send(action).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("ignored: {}", crate::text::shown(&e)),
                }
            }
        })
        .context("cannot start the stdin reader")?;
    Ok(rx)
}

/// A line for stderr about a journal entry; `None` for the routine ones.
fn describe(entry: &JournalEntry) -> Option<String> {
    Some(match &entry.what {
        Journaled::Event(event) => {
            let mut body = String::new();
            PenMessage::Event {
                t_ms: entry.t_ms,
                event: *event,
            }
            .write_body(&mut body);
            format!("sent {body}")
        }
        Journaled::Action(action) => format!("action: {action}"),
        Journaled::LinkUp { path } => format!("port up at {}", path.display()),
        Journaled::LinkDown => "port gone (unplugged)".to_owned(),
        Journaled::SilenceStarted => "silent: not reading or writing".to_owned(),
        Journaled::SilenceEnded => "speaking again".to_owned(),
        Journaled::CalibrationChanged(cal) => {
            let mut body = String::new();
            PenMessage::Cal(cal.clone()).write_body(&mut body);
            format!("calibration written: {body}")
        }
        Journaled::CalPersistFailed { error } => format!("calibration NOT persisted: {error}"),
        Journaled::Command {
            command: Some(crate::protocol::Command::Hello { .. }),
            ..
        } => "host said HELLO".to_owned(),
        Journaled::Command { .. }
        | Journaled::Unaddressed { .. }
        | Journaled::Discarded(_)
        | Journaled::EstopByte
        | Journaled::Sample(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> Result<SimArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.sim)
    }

    #[test]
    fn flags_make_the_config() {
        let args = parse(&[
            "--link",
            "/tmp/pen",
            "--cartridge",
            "00000000000000AA:7",
            "--hidden-depth-offset-um",
            "-40",
            "--corrupt",
            "0.25",
            "--at",
            "5:stall",
            "--at",
            "1.5:disappear=3",
            "--unthrottled",
        ])
        .expect("valid flags");
        let config = args.to_config();
        assert_eq!(config.link_path, Some(PathBuf::from("/tmp/pen")));
        let cartridge = config.pen.cartridge.expect("cartridge");
        assert_eq!((cartridge.id.0, cartridge.needles), (0xAA, 7));
        assert_eq!(config.pen.hidden.depth_offset_um, -40);
        assert!(config.pen.unthrottled_telemetry);
        assert!((config.corrupt_fraction - 0.25).abs() < 1e-12);
        assert_eq!(config.schedule.len(), 2);
        assert_eq!(
            config.schedule[1],
            (
                Duration::from_millis(1500),
                SimAction::Disappear {
                    duration: Some(Duration::from_secs(3))
                }
            )
        );
    }

    #[test]
    fn no_cartridge_and_defaults() {
        let config = parse(&["--no-cartridge"]).expect("valid").to_config();
        assert_eq!(config.pen.cartridge, None);
        assert_eq!(config.pen.serial, "SIM00001");
        assert_eq!(config.pen.boot_count, 1);
        let config = parse(&[]).expect("valid").to_config();
        assert_eq!(config.pen.cartridge, Some(Cartridge::default()));
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["--corrupt", "1.5"][..],
            &["--at", "5"],
            &["--at", "x:stall"],
            &["--at", "5:fly"],
            &["--cartridge", "12:3"],
            &["--cartridge", "0123456789ABCDEF:12", "--no-cartridge"],
            &["--hidden-depth-offset-um", "900"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
