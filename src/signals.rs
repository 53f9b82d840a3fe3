//! SIGINT, SIGTERM and SIGHUP as events: a process told to stop halts the pen and
//! closes the session's record before it exits, instead of dying with the needle
//! running (the pen's watchdog would stop it only about 240 ms later) and the record
//! without its summary.
//!
//! [`listen`] starts a thread (`punctum-signals`) that turns each signal into a
//! [`Stop`] on a channel; the console's loop and the window's frame take it from
//! there. Once installed, these signals no longer end the process by themselves.

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A request to stop, from a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// The signal's number.
    pub signo: i32,
}

impl Stop {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self.signo {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }

    /// The exit status a shell expects of a process ended by this signal: 128 + its
    /// number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
    #[must_use]
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.signo).unwrap_or(1)
    }
}

/// Installs the handlers and returns the channel the stops arrive on (bounded: a
/// storm of signals while the first is handled is one stop). `wake`, if given, is
/// called after each (the window: a repaint, so the frame sees the stop at once).
pub fn listen(wake: Option<Box<dyn Fn() + Send>>) -> std::io::Result<Receiver<Stop>> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("punctum-signals".into())
        .spawn(move || {
            for signo in signals.forever() {
                // Full: a stop is already waiting to be handled.
                let _ = tx.try_send(Stop { signo });
                if let Some(wake) = &wake {
                    wake();
                }
            }
        })?;
    Ok(rx)
}
