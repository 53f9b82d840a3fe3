//! One playback stream on a PulseAudio server (or PipeWire's pipewire-pulse), in the
//! server's native protocol through the pure-Rust `pulseaudio` crate: nothing to
//! install to build, nothing but the server's socket to run.
//!
//! The crate's own `Client::from_env` is not used, for two traps measured here: it
//! blocks forever on a server that accepts the connection and never answers, and its
//! socket lookup gives up at the first candidate path that does not exist. So the
//! station resolves the path itself ([`socket_path`]), opens the Unix socket with read
//! and write timeouts, and speaks the protocol's messages on it: the handshake, one
//! stream, data as the server asks for it ([`Incoming::Request`]), and timing queries.
//!
//! Every message is read whole (its descriptor, then exactly its length) before it is
//! parsed, so a message the crate cannot parse is skipped without losing the framing.

use std::ffi::OsString;
use std::io::{BufReader, Cursor, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pulseaudio::protocol::stream::{BufferAttr, StreamFlags};
use pulseaudio::protocol::{
    self, AuthParams, AuthReply, ChannelMap, ChannelVolume, Command, CreatePlaybackStreamReply,
    LatencyParams, PlaybackLatency, PlaybackStreamParams, Prop, Props, SampleFormat, SampleSpec,
    SetClientNameReply, TagStructReader,
};

use super::signal::SAMPLE_RATE_HZ;

/// Bytes per sample: signed 16-bit little-endian, mono.
const BYTES_PER_SAMPLE: u32 = 2;

/// The server's target buffer, ms: what it keeps queued ahead of the sink. It bounds
/// how late a new alarm's first pulse can be (plus the sink's own latency).
pub const TARGET_BUFFER_MS: u32 = 40;

/// The smallest request the server makes, ms: how often the audio thread wakes.
pub const REQUEST_MS: u32 = 10;

/// Why a read timed out, as [`SoundError::Lost`] says it.
pub const NO_ANSWER: &str = "no answer in time";

/// The tag of our timing queries' replies.
const LATENCY_TAG: u32 = 0x7000_0001;

/// Why sound cannot play, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoundError {
    /// Neither `PULSE_SERVER` nor `XDG_RUNTIME_DIR` names a socket.
    #[error(
        "no sound server: neither PULSE_SERVER nor XDG_RUNTIME_DIR is set (is a desktop \
         session with PulseAudio or PipeWire running?)"
    )]
    NoServerConfigured,
    /// `PULSE_SERVER` names no local socket the station can use.
    #[error(
        "PULSE_SERVER is {0:?}: the station needs a local server's socket (unix:/absolute/path); \
         a network server (tcp:) is not supported"
    )]
    UnusableServer(String),
    /// The socket could not be opened.
    #[error("no sound server at {path}: {why}")]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// The OS's reason.
        why: String,
    },
    /// The server refused or failed a step.
    #[error("the sound server at {path} refused {step}: {why}")]
    Refused {
        /// The socket's path.
        path: PathBuf,
        /// What was asked.
        step: &'static str,
        /// The server's reason.
        why: String,
    },
    /// The server did not answer in time, or the connection broke.
    #[error("the sound server at {path} stopped answering ({why})")]
    Lost {
        /// The socket's path.
        path: PathBuf,
        /// What happened.
        why: String,
    },
}

/// The server's socket: the first `unix:` entry (or bare path) of `PULSE_SERVER`,
/// else `$XDG_RUNTIME_DIR/pulse/native`. The file need not exist yet: connecting says
/// so, and the audio thread tries again.
pub fn socket_path(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, SoundError> {
    if let Some(server) = env("PULSE_SERVER").filter(|s| !s.is_empty()) {
        let text = server.to_string_lossy().into_owned();
        // A list of servers, tried in order: "{host}unix:/path tcp:host ...".
        for entry in text.split_whitespace() {
            let entry = entry.strip_prefix('{').map_or(entry, |rest| {
                // "{machine-id}address": the machine part only limits where it applies.
                rest.split_once('}').map_or(rest, |(_, address)| address)
            });
            if let Some(path) = entry.strip_prefix("unix:").filter(|p| p.starts_with('/')) {
                return Ok(PathBuf::from(path));
            }
            if entry.starts_with('/') {
                return Ok(PathBuf::from(entry));
            }
        }
        return Err(SoundError::UnusableServer(text));
    }
    env("XDG_RUNTIME_DIR")
        .filter(|s| !s.is_empty())
        .map(|dir| PathBuf::from(dir).join("pulse").join("native"))
        .ok_or(SoundError::NoServerConfigured)
}

/// The length of a PulseAudio cookie: the server refuses an `AUTH` whose cookie has
/// any other length as a protocol error, whatever its authentication.
const COOKIE_BYTES: usize = 256;

/// The cookie a server with cookie authentication asks for: `PULSE_COOKIE`, else
/// `~/.config/pulse/cookie`, else `~/.pulse-cookie`. Zeros when none is found or it
/// is not a cookie (a server with anonymous authentication takes any; one without
/// refuses, and the station says so).
fn cookie() -> Vec<u8> {
    pulseaudio::cookie_path_from_env()
        .and_then(|path| {
            let file = crate::files::open_regular(&path).ok()?;
            let mut bytes = Vec::new();
            // Never read a large file by mistake.
            file.take(COOKIE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .ok()?;
            (bytes.len() == COOKIE_BYTES).then_some(bytes)
        })
        .unwrap_or_else(|| vec![0; COOKIE_BYTES])
}

/// What the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Send this many more samples.
    Request(usize),
    /// A timing reply: the sink has read this many samples of the stream.
    Played(u64),
    /// The stream ran dry (the station was late).
    Underflow,
    /// Anything else (started, other notifications).
    Other,
}

/// One playback stream: mono, 16-bit, [`SAMPLE_RATE_HZ`].
pub struct Stream {
    path: PathBuf,
    sock: BufReader<UnixStream>,
    version: u16,
    channel: u32,
    sink: String,
    bytes: Vec<u8>,
}

impl Stream {
    /// Connects to the server at `path` and opens the stream on its default sink. No
    /// step waits longer than `timeout`.
    pub fn open(path: &Path, timeout: Duration) -> Result<(Self, usize), SoundError> {
        let connect = |why: std::io::Error| SoundError::Connect {
            path: path.to_owned(),
            why: why.to_string(),
        };
        let sock = UnixStream::connect(path).map_err(connect)?;
        sock.set_read_timeout(Some(timeout)).map_err(connect)?;
        sock.set_write_timeout(Some(timeout)).map_err(connect)?;
        let mut stream = Self {
            path: path.to_owned(),
            sock: BufReader::new(sock),
            version: protocol::MAX_VERSION,
            channel: 0,
            sink: String::new(),
            bytes: Vec::new(),
        };
        let auth = AuthParams {
            version: protocol::MAX_VERSION,
            supports_shm: false,
            supports_memfd: false,
            cookie: cookie(),
        };
        stream.send(0, &Command::Auth(auth), "the connection")?;
        let (_, reply): (u32, AuthReply) = stream.reply("the connection")?;
        stream.version = protocol::MAX_VERSION.min(reply.version);

        let mut props = Props::new();
        props.set(Prop::ApplicationName, c"Punctum");
        props.set(Prop::MediaRole, c"event");
        stream.send(1, &Command::SetClientName(props), "the client's name")?;
        let _: (u32, SetClientNameReply) = stream.reply("the client's name")?;

        let bytes_per_ms = SAMPLE_RATE_HZ / 1000 * BYTES_PER_SAMPLE;
        let mut stream_props = Props::new();
        stream_props.set(Prop::MediaName, c"Punctum alarms");
        let params = PlaybackStreamParams {
            sample_spec: SampleSpec {
                format: SampleFormat::S16Le,
                channels: 1,
                sample_rate: SAMPLE_RATE_HZ,
            },
            channel_map: ChannelMap::mono(),
            sink_name: Some(protocol::DEFAULT_SINK.to_owned()),
            buffer_attr: BufferAttr {
                target_length: TARGET_BUFFER_MS * bytes_per_ms,
                minimum_request_length: REQUEST_MS * bytes_per_ms,
                ..BufferAttr::default()
            },
            cvolume: Some(ChannelVolume::norm(1)),
            props: stream_props,
            flags: StreamFlags {
                adjust_latency: true,
                start_muted: Some(false),
                ..StreamFlags::default()
            },
            ..PlaybackStreamParams::default()
        };
        stream.send(
            2,
            &Command::CreatePlaybackStream(params),
            "the alarm stream",
        )?;
        let (_, created): (u32, CreatePlaybackStreamReply) = stream.reply("the alarm stream")?;
        stream.channel = created.channel;
        stream.sink = created
            .sink_name
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::debug!(
            attr = ?created.buffer_attr,
            requested = created.requested_bytes,
            latency_us = created.stream_latency,
            suspended = created.suspended,
            "alarm stream created"
        );
        let first = created.requested_bytes / BYTES_PER_SAMPLE;
        Ok((stream, usize::try_from(first).unwrap_or(0)))
    }

    /// How long [`receive`](Self::receive) waits for the server from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), SoundError> {
        self.sock
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.lost(&e))
    }

    /// The sink the server connected the stream to.
    #[must_use]
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// The server's socket.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the server's next message (waiting at most the timeout given to
    /// [`open`](Self::open)).
    pub fn receive(&mut self) -> Result<Incoming, SoundError> {
        let descriptor = protocol::read_descriptor(&mut self.sock).map_err(|e| self.lost(&e))?;
        let mut payload = vec![0_u8; usize::try_from(descriptor.length).unwrap_or(0)];
        self.sock
            .read_exact(&mut payload)
            .map_err(|e| self.lost(&e))?;
        if descriptor.channel != u32::MAX {
            // A memblock: a playback stream is sent none; skip it whole.
            return Ok(Incoming::Other);
        }
        let mut cursor = Cursor::new(payload);
        let Ok((seq, command)) = Command::read_tag_prefixed(&mut cursor, self.version) else {
            // Something this crate cannot parse: skipped whole, the framing holds.
            return Ok(Incoming::Other);
        };
        Ok(match command {
            Command::Request(r) if r.channel == self.channel => {
                Incoming::Request(usize::try_from(r.length / BYTES_PER_SAMPLE).unwrap_or(0))
            }
            Command::Reply if seq == LATENCY_TAG => {
                let mut ts = TagStructReader::new(&mut cursor, self.version);
                let latency: PlaybackLatency = ts.read().map_err(|e| self.lost(&e))?;
                Incoming::Played(
                    u64::try_from(latency.read_offset).unwrap_or(0) / u64::from(BYTES_PER_SAMPLE),
                )
            }
            Command::Underflow(u) if u.channel == self.channel => Incoming::Underflow,
            Command::PlaybackStreamKilled(channel) if channel == self.channel => {
                return Err(SoundError::Lost {
                    path: self.path.clone(),
                    why: "the server ended the alarm stream".into(),
                });
            }
            Command::Error(e) => {
                return Err(SoundError::Refused {
                    path: self.path.clone(),
                    step: "a request",
                    why: format!("{e:?}"),
                });
            }
            other => {
                tracing::trace!(?other, "sound server message");
                Incoming::Other
            }
        })
    }

    /// Sends samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), SoundError> {
        self.bytes.clear();
        for s in samples {
            self.bytes.extend_from_slice(&s.to_le_bytes());
        }
        let channel = self.channel;
        let Self { sock, bytes, .. } = self;
        let result = protocol::write_memblock(sock.get_mut(), channel, bytes, 0)
            .and_then(|()| sock.get_mut().flush().map_err(Into::into));
        result.map_err(|e| self.lost(&e))
    }

    /// Asks how far the sink has played; the answer comes as [`Incoming::Played`].
    pub fn ask_played(&mut self) -> Result<(), SoundError> {
        let query = Command::GetPlaybackLatency(LatencyParams {
            channel: self.channel,
            now: SystemTime::now(),
        });
        let version = self.version;
        protocol::write_command_message(self.sock.get_mut(), LATENCY_TAG, &query, version)
            .map_err(|e| self.lost(&e))
    }

    fn send(&mut self, seq: u32, command: &Command, step: &'static str) -> Result<(), SoundError> {
        let version = self.version;
        protocol::write_command_message(self.sock.get_mut(), seq, command, version)
            .map_err(|e| self.refused(step, &e))
    }

    fn reply<T: protocol::CommandReply>(
        &mut self,
        step: &'static str,
    ) -> Result<(u32, T), SoundError> {
        let version = self.version;
        protocol::read_reply_message(&mut self.sock, version).map_err(|e| self.refused(step, &e))
    }

    fn refused(&self, step: &'static str, e: &protocol::ProtocolError) -> SoundError {
        match e {
            protocol::ProtocolError::ServerError(code) => SoundError::Refused {
                path: self.path.clone(),
                step,
                why: match code {
                    protocol::PulseError::NoEntity => "no such sink (no sound device)".into(),
                    protocol::PulseError::AccessDenied => "access denied (its cookie?)".into(),
                    other => format!("{other:?}"),
                },
            },
            other => self.lost(other),
        }
    }

    fn lost(&self, e: &dyn std::fmt::Display) -> SoundError {
        let text = e.to_string();
        let why = if text.contains("timed out")
            || text.contains("would block")
            || text.contains("Resource temporarily unavailable")
        {
            NO_ANSWER.to_owned()
        } else if text.contains("failed to fill whole buffer")
            || text.contains("Broken pipe")
            || text.contains("Connection reset")
        {
            // The server closed the connection: it ended, or refused what it was sent.
            "it closed the connection".to_owned()
        } else {
            text
        };
        SoundError::Lost {
            path: self.path.clone(),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_socket_comes_from_pulse_server_then_the_runtime_dir() {
        let path = |vars| socket_path(env(vars));
        assert_eq!(
            path(&[
                ("PULSE_SERVER", "unix:/tmp/p/native"),
                ("XDG_RUNTIME_DIR", "/run/user/1")
            ]),
            Ok(PathBuf::from("/tmp/p/native"))
        );
        assert_eq!(
            path(&[("PULSE_SERVER", "tcp:box {abc}unix:/s/native")]),
            Ok(PathBuf::from("/s/native"))
        );
        assert_eq!(
            path(&[("PULSE_SERVER", "/s/native")]),
            Ok(PathBuf::from("/s/native"))
        );
        // A missing runtime socket is still the answer: the thread retries it.
        assert_eq!(
            path(&[("XDG_RUNTIME_DIR", "/run/user/1000")]),
            Ok(PathBuf::from("/run/user/1000/pulse/native"))
        );
        assert_eq!(
            path(&[("PULSE_SERVER", "tcp:10.0.0.2")]),
            Err(SoundError::UnusableServer("tcp:10.0.0.2".into()))
        );
        assert_eq!(path(&[]), Err(SoundError::NoServerConfigured));
        // Nothing the station can open: said, with what was given.
        for given in ["unix:", "relative/native", "unix:relative"] {
            let vars = [("PULSE_SERVER", given)];
            let error = socket_path(env(&vars)).expect_err("unusable");
            assert!(error.to_string().contains("unix:/absolute/path"), "{error}");
        }
    }

    #[test]
    fn a_server_that_accepts_and_never_answers_times_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("native");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let started = std::time::Instant::now();
        let result = Stream::open(&path, Duration::from_millis(200));
        let Err(SoundError::Lost { why, .. } | SoundError::Refused { why, .. }) = result else {
            panic!("a silent server must fail");
        };
        assert!(why.contains("no answer in time"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
        let missing = Stream::open(&dir.path().join("none"), Duration::from_millis(200));
        assert!(matches!(missing, Err(SoundError::Connect { .. })));
    }
}
