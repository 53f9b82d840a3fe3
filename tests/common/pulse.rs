//! A throwaway PulseAudio server with a null sink, and a capture of everything played
//! to it (`parec` on the sink's monitor), for the end-to-end sound tests and the
//! `alarm_sound` bench. Debian's `pulseaudio` and `pulseaudio-utils`; `.ci/run`
//! installs them.
//!
//! Each server runs in a temporary runtime folder of its own (socket, cookie, state),
//! as a child process that the value's drop kills: nothing outlives the test.

#![allow(dead_code)] // each test binary uses a part

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The null sink's name, and so the name the station reports as its sink.
pub const SINK: &str = "alarm_sink";

/// A PulseAudio server on a socket of its own.
pub struct PulseServer {
    dir: PathBuf,
    child: Option<Child>,
}

impl PulseServer {
    /// Starts a server in a fresh temporary folder and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("punctum-pulse-")
            .tempdir()
            .expect("temp dir")
            .keep();
        Self::start_in(&dir)
    }

    /// Starts a server whose socket is `dir/pulse/native` (again, after [`kill`]).
    ///
    /// [`kill`]: Self::kill
    pub fn start_in(dir: &Path) -> Self {
        Self::start_with(dir, true)
    }

    /// A server with no sink at all: no sound device.
    pub fn start_without_sink() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("punctum-pulse-")
            .tempdir()
            .expect("temp dir")
            .keep();
        Self::start_with(&dir, false)
    }

    fn start_with(dir: &Path, sink: bool) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .expect("runtime dir mode");
        let mut command = Command::new("pulseaudio");
        command.args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disable-shm=yes",
            "-n",
            "--load=module-native-protocol-unix auth-anonymous=1",
        ]);
        if sink {
            command.arg(format!(
                "--load=module-null-sink sink_name={SINK} rate=48000 channels=1"
            ));
        }
        let child = command
            .env("XDG_RUNTIME_DIR", dir)
            .env("HOME", dir)
            .env_remove("PULSE_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "pulseaudio runs (install Debian's pulseaudio and pulseaudio-utils; .ci/run does)",
            );
        let server = Self {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            let answered = Command::new("pactl")
                .arg("info")
                .env("PULSE_SERVER", server.address())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the PulseAudio server never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's runtime folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("pulse").join("native")
    }

    /// `PULSE_SERVER` for it.
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket().display())
    }

    /// Kills the server (the sound server "vanishes").
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything played to the null sink from the capture's start: mono s16 at 48 kHz,
/// with the arrival time of each block, so an instant maps to a sample index.
pub struct Capture {
    child: Child,
    shared: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    samples: Vec<i16>,
    /// (arrival, samples received by then).
    marks: Vec<(Instant, usize)>,
}

impl Capture {
    /// Starts `parec` on the sink's monitor with 20 ms blocks (without a short
    /// latency the first pulses are lost), and waits for its first block.
    pub fn start(server: &PulseServer) -> Self {
        let mut child = Command::new("parec")
            .args([
                "--latency-msec=20",
                "--rate=48000",
                "--channels=1",
                "--format=s16le",
            ])
            .arg(format!("--device={SINK}.monitor"))
            .env("PULSE_SERVER", server.address())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("parec runs (Debian's pulseaudio-utils)");
        let mut stdout = child.stdout.take().expect("piped");
        let shared = Arc::new(Mutex::new(Captured::default()));
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("test-parec".into())
            .spawn(move || {
                let mut buf = vec![0_u8; 8192];
                let mut odd: Option<u8> = None;
                loop {
                    let n = match stdout.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let now = Instant::now();
                    let mut bytes: Vec<u8> = odd.take().into_iter().collect();
                    bytes.extend_from_slice(&buf[..n]);
                    if bytes.len() % 2 == 1 {
                        odd = bytes.pop();
                    }
                    let mut c = writer.lock().unwrap_or_else(PoisonError::into_inner);
                    c.samples.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]])),
                    );
                    let total = c.samples.len();
                    c.marks.push((now, total));
                }
            })
            .expect("capture thread");
        let capture = Self { child, shared };
        capture.wait_for(1);
        capture
    }

    /// How many samples had arrived by `at`: the sample played at `at` has this index
    /// or a later one (the capture lags by its 20 ms blocks), so delays measured from
    /// it are upper bounds.
    pub fn index_at(&self, at: Instant) -> usize {
        let c = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        c.marks
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |&(_, n)| n)
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<i16> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples
            .clone()
    }

    /// Waits until `n` samples have arrived (a server's clock, not ours: a deadline
    /// only bounds a failure).
    pub fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + DEADLINE * 3;
        loop {
            let have = self
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .samples
                .len();
            if have >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the capture stalled at {have} samples"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
