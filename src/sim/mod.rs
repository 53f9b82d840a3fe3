//! The simulated pen: the pen's side of the maker's protocol (`shared/pen-protocol.md`),
//! on a real pseudo-terminal, so the station's link thread can be tested and demonstrated
//! without hardware.
//!
//! - [`pen`]: the pure pen model ([`PenModel`]). Bytes and time in, bytes and journal
//!   entries out; no I/O, no clock, no threads. Every protocol rule lives there.
//! - [`runner`]: the thread that owns the pty master, feeds the model and writes its
//!   output; also the link-level misbehaviour (corruption, silence, unplugging).
//! - [`cal_file`]: the calibration persisted as JSON, surviving restarts.
//! - [`cli`]: the `punctum sim` subcommand.
//!
//! **Boundary:** tests drive a [`SimPen`] through [`SimPen::act`] and read the pen-side
//! truth from its journal ([`SimPen::wait_for`]); they never sleep for a tuned time.

pub mod cal_file;
pub mod cli;
pub mod pen;
pub mod runner;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use cal_file::CalFileError;
pub use pen::{
    Answer, Cartridge, HiddenErrors, JournalEntry, Journaled, ModelCounters, PenConfig, PenModel,
    PhysicalFault,
};
pub use runner::{SimPen, SimStats, pty_pair};

use crate::protocol::BootReason;

/// Everything a simulated pen is started with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The pen itself: identity, hidden errors, cartridge, telemetry mode.
    pub pen: PenConfig,
    /// A stable symlink kept pointing at the current pty (re-pointed after a simulated
    /// unplug). `None`: hosts open the `/dev/pts/N` path directly.
    pub link_path: Option<PathBuf>,
    /// Where the calibration is persisted. `None`: in memory only (it still survives
    /// simulated reboots within the process).
    pub cal_file: Option<PathBuf>,
    /// Fraction 0..=1 of output lines that get one bit flipped.
    pub corrupt_fraction: f64,
    /// Actions applied at the given times after start.
    pub schedule: Vec<(Duration, SimAction)>,
    /// The calibration the pen comes with when no calibration file exists yet.
    /// `None`: identity, never calibrated (date 0).
    pub initial_calibration: Option<crate::protocol::Calibration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            pen: PenConfig::default(),
            link_path: None,
            cal_file: None,
            corrupt_fraction: 0.0,
            schedule: Vec::new(),
            initial_calibration: None,
        }
    }
}

/// Something done to the running pen from outside: a physical condition, a button, a
/// cartridge, or misbehaviour of the link. Sent with [`SimPen::act`], scheduled in
/// [`SimConfig::schedule`], or typed as a word (see [`SimAction::from_str`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SimAction {
    /// Start a physical condition that the pen's own fault detection will notice.
    InjectFault(PhysicalFault),
    /// End every injected condition: physical faults, corruption, silence and
    /// disappearance. A pen already in FAULT stays there until `RESET`.
    ClearFaults,
    /// Flip one bit in this fraction (0..=1) of output lines from now on.
    Corrupt(f64),
    /// Lose the next output line that begins with this word (`INFO`, `CAL`, `ACK`),
    /// as a glitch on the USB line would: the host must cope with a line that never
    /// arrives.
    LoseNext(String),
    /// Stop reading and writing the port, for a while or (`None`) until cleared. The
    /// pen keeps running, so its watchdog fires if it was running.
    GoSilent {
        /// How long; `None` until [`SimAction::ClearFaults`].
        duration: Option<Duration>,
    },
    /// Close the pty (as unplugging USB would), then come back on a new pty after
    /// `duration` (or on [`SimAction::Reappear`]), re-pointing the link symlink.
    Disappear {
        /// How long; `None` until [`SimAction::Reappear`] or [`SimAction::ClearFaults`].
        duration: Option<Duration>,
    },
    /// Come back now after [`SimAction::Disappear`].
    Reappear,
    /// Restart the pen: all volatile state is lost, the boot counter goes up by one.
    Reboot(BootReason),
    /// The pen's start button.
    PressStartButton,
    /// The pen's stop button: an emergency stop (`EV ... ESTOP BUTTON`).
    PressStopButton,
    /// The pen reports telemetry at this rate, Hz (0: not at all), and goes on
    /// answering commands, as a firmware fault or a second host's `TEL` would leave it
    /// (the host's next `TEL` sets it again).
    TelemetryRate(u32),
    /// Pull the cartridge out.
    RemoveCartridge,
    /// Push a cartridge in.
    InsertCartridge(Cartridge),
}

impl SimAction {
    /// The words [`SimAction::from_str`] accepts, for help texts.
    pub const WORDS_HELP: &'static str = "stall | overcurrent | overtemp | depth-jam | \
        depth-creep | runaway | overspeed | tel-stop | tel-rate=HZ | clear | \
        corrupt=FRACTION | lose-next=WORD | silent[=SECS] | disappear[=SECS] | reappear | \
        reboot[=power|brownout|watchdog_reset] | button | stop-button | cart-remove | \
        cart-insert=ID/NEEDLES";
}

/// Parses a non-negative, finite number of seconds without panicking.
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is not a non-negative, finite number of seconds"))
}

impl FromStr for SimAction {
    type Err = String;

    /// Parses one action word, as used by `--at SECS:ACTION` and on the sim's stdin:
    /// see [`SimAction::WORDS_HELP`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (word, value) = match text.split_once('=') {
            Some((w, v)) => (w, Some(v)),
            None => (text, None),
        };
        let no_value = |action: Self| match value {
            None => Ok(action),
            Some(_) => Err(format!("action {word:?} takes no value")),
        };
        let duration = || value.map(parse_secs).transpose();
        match word {
            "stall" => no_value(Self::InjectFault(PhysicalFault::Stall)),
            "overcurrent" => no_value(Self::InjectFault(PhysicalFault::Overcurrent)),
            "overtemp" => no_value(Self::InjectFault(PhysicalFault::Overtemp)),
            "depth-jam" => no_value(Self::InjectFault(PhysicalFault::DepthJam)),
            "depth-creep" => no_value(Self::InjectFault(PhysicalFault::DepthCreep)),
            "runaway" => no_value(Self::InjectFault(PhysicalFault::Runaway)),
            "overspeed" => no_value(Self::InjectFault(PhysicalFault::Overspeed)),
            "tel-stop" => no_value(Self::TelemetryRate(0)),
            "tel-rate" => {
                let hz = value
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|hz| *hz == 0 || (10..=1000).contains(hz));
                hz.map(Self::TelemetryRate).ok_or_else(|| {
                    "tel-rate needs a rate of 0 or 10..1000 Hz, e.g. tel-rate=20".to_owned()
                })
            }
            "clear" => no_value(Self::ClearFaults),
            "corrupt" => {
                let Some(value) = value else {
                    return Err("corrupt needs a fraction, e.g. corrupt=0.1".to_owned());
                };
                Ok(Self::Corrupt(parse_fraction(value)?))
            }
            "lose-next" => match value {
                Some(word) if !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase()) => {
                    Ok(Self::LoseNext(word.to_owned()))
                }
                _ => Err("lose-next needs a line's first word, e.g. lose-next=INFO".to_owned()),
            },
            "silent" => Ok(Self::GoSilent {
                duration: duration()?,
            }),
            "disappear" => Ok(Self::Disappear {
                duration: duration()?,
            }),
            "reappear" => no_value(Self::Reappear),
            "reboot" => Ok(Self::Reboot(
                match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("power") => BootReason::Power,
                    Some("brownout") => BootReason::Brownout,
                    Some("watchdog_reset" | "watchdog-reset" | "watchdog") => {
                        BootReason::WatchdogReset
                    }
                    Some(other) => {
                        return Err(format!(
                            "reboot reason {other:?} is not power, brownout or watchdog_reset"
                        ));
                    }
                },
            )),
            "button" => no_value(Self::PressStartButton),
            "stop-button" => no_value(Self::PressStopButton),
            "cart-remove" => no_value(Self::RemoveCartridge),
            "cart-insert" => {
                let Some(value) = value else {
                    return Err(
                        "cart-insert needs ID/NEEDLES, e.g. cart-insert=00000000000000AA/12"
                            .to_owned(),
                    );
                };
                Ok(Self::InsertCartridge(value.parse()?))
            }
            _ => Err(format!(
                "unknown action {word:?}; expected one of: {}",
                Self::WORDS_HELP
            )),
        }
    }
}

impl fmt::Display for SimAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Option<Duration>| d.map(|d| format!("={}", d.as_secs_f64()));
        match self {
            Self::InjectFault(fault) => f.write_str(fault.word()),
            Self::ClearFaults => f.write_str("clear"),
            Self::Corrupt(fraction) => write!(f, "corrupt={fraction}"),
            Self::LoseNext(word) => write!(f, "lose-next={word}"),
            Self::GoSilent { duration } => {
                write!(f, "silent{}", secs(duration).unwrap_or_default())
            }
            Self::Disappear { duration } => {
                write!(f, "disappear{}", secs(duration).unwrap_or_default())
            }
            Self::Reappear => f.write_str("reappear"),
            Self::Reboot(reason) => write!(f, "reboot={}", reason.as_str().to_ascii_lowercase()),
            Self::PressStartButton => f.write_str("button"),
            Self::PressStopButton => f.write_str("stop-button"),
            Self::TelemetryRate(0) => f.write_str("tel-stop"),
            Self::TelemetryRate(hz) => write!(f, "tel-rate={hz}"),
            Self::RemoveCartridge => f.write_str("cart-remove"),
            Self::InsertCartridge(c) => write!(f, "cart-insert={}/{}", c.id, c.needles),
        }
    }
}

/// Parses a fraction 0..=1.
pub(crate) fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

/// A tiny deterministic generator (xorshift64*): the sim's noise and corruption must
/// repeat exactly for a given seed, and need nothing stronger.
#[derive(Debug, Clone)]
pub(crate) struct XorShift64(u64);

impl XorShift64 {
    /// A generator; seed 0 (a fixed point of xorshift) is replaced by a constant.
    pub(crate) fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..1.
    // Both operands are at most 2^53, which an f64 holds exactly: no precision is lost.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..bound (bound > 0).
    // The remainder is below `bound`, itself a usize, so it always fits.
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }
}

/// Why a simulated pen could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The pseudo-terminal pair could not be created or configured.
    #[error("cannot create a pseudo-terminal pair: {0}")]
    Pty(#[from] serialport::Error),
    /// The pty master could not be made non-blocking.
    #[error("cannot make the pty master non-blocking: {0}")]
    NonBlocking(std::io::Error),
    /// The link symlink could not be made.
    #[error("cannot make the symlink {path}: {source}")]
    Link {
        /// The link path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The link path exists and is not a symlink; the sim will not overwrite it.
    #[error("{path} exists and is not a symlink; refusing to replace it")]
    LinkOccupied {
        /// The link path.
        path: PathBuf,
    },
    /// The calibration file could not be read.
    #[error(transparent)]
    CalFile(#[from] CalFileError),
    /// A configuration value is unusable.
    #[error("bad simulated-pen configuration: {0}")]
    BadConfig(String),
    /// The pen's thread could not be started.
    #[error("cannot start the simulated pen's thread: {0}")]
    Thread(std::io::Error),
    /// The pen's thread has stopped; it takes no more actions.
    #[error("the simulated pen has stopped")]
    Stopped,
    /// The pen's thread panicked.
    #[error("the simulated pen's thread panicked")]
    Panicked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_words_parse_and_print_back() {
        let words = [
            "stall",
            "overcurrent",
            "overtemp",
            "depth-jam",
            "depth-creep",
            "runaway",
            "overspeed",
            "tel-stop",
            "tel-rate=20",
            "clear",
            "corrupt=0.1",
            "silent=2",
            "silent",
            "disappear=3",
            "reappear",
            "reboot=brownout",
            "reboot=watchdog_reset",
            "reboot=power",
            "button",
            "stop-button",
            "cart-remove",
            "cart-insert=00000000000000AA/12",
        ];
        for word in words {
            let action: SimAction = word.parse().expect(word);
            assert_eq!(action.to_string(), word);
        }
    }

    #[test]
    fn bad_action_words_say_why() {
        for bad in [
            "fly",
            "corrupt",
            "corrupt=2",
            "silent=-1",
            "silent=nan",
            "reboot=tired",
            "cart-insert=12/3",
            "stall=3",
        ] {
            assert!(bad.parse::<SimAction>().is_err(), "{bad}");
        }
    }

    #[test]
    fn xorshift_is_deterministic_and_in_range() {
        let mut a = XorShift64::new(7);
        let mut b = XorShift64::new(7);
        for _ in 0..1000 {
            let x = a.next_f64();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x.to_bits(), b.next_f64().to_bits());
        }
    }
}
