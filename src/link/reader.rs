//! The port reader: a thread that only reads, decodes and parses.
//!
//! It hands every parsed line, and every discarded one, to the control thread. It
//! never waits on the owner, so a slow window cannot stall the port.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serialport::TTYPort;

use crate::protocol::{Decoded, DiscardReason, FrameDecoder, PenMessage};

/// What the reader tells the control thread. `generation` tells connections apart,
/// so that a late message from a closed port is never taken for the new one.
#[derive(Debug)]
pub(crate) struct FromReader {
    pub generation: u64,
    pub at: Instant,
    pub what: ReaderMsg,
}

#[derive(Debug)]
pub(crate) enum ReaderMsg {
    Message(PenMessage),
    Discarded(DiscardReason),
    /// The port failed; the reader has ended.
    PortError(String),
}

/// How long one read may wait: bounds how late the reader notices `stop`.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

pub(crate) fn spawn(
    mut port: TTYPort,
    generation: u64,
    stop: Arc<AtomicBool>,
    out: Sender<FromReader>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("punctum-link-rx".into())
        .spawn(move || {
            use serialport::SerialPort as _;
            if let Err(e) = port.set_timeout(READ_TIMEOUT) {
                let _ = out.send(FromReader {
                    generation,
                    at: Instant::now(),
                    what: ReaderMsg::PortError(e.to_string()),
                });
                return;
            }
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let n = match port.read(&mut buf) {
                    Ok(0) => {
                        report_error(&out, generation, "the port was closed".into());
                        return;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        report_error(&out, generation, e.to_string());
                        return;
                    }
                };
                let at = Instant::now();
                let mut gone = false;
                decoder.feed(&buf[..n], |decoded| {
                    let what = match decoded {
                        Decoded::Frame(body) => match PenMessage::parse(body) {
                            Ok(message) => ReaderMsg::Message(message),
                            Err(reason) => ReaderMsg::Discarded(reason),
                        },
                        Decoded::Discarded(reason) => ReaderMsg::Discarded(reason),
                        // The host decoder does not watch for the E-stop byte.
                        Decoded::EStop => return,
                    };
                    if !gone {
                        gone = out
                            .send(FromReader {
                                generation,
                                at,
                                what,
                            })
                            .is_err();
                    }
                });
                if gone {
                    return;
                }
            }
        })
}

fn report_error(out: &Sender<FromReader>, generation: u64, error: String) {
    let _ = out.send(FromReader {
        generation,
        at: Instant::now(),
        what: ReaderMsg::PortError(error),
    });
}
