//! Typed messages for every line of the pen protocol, both directions.
//!
//! Parsing works on a frame body that already passed the CRC. Telemetry (`T`) parses
//! into a `Copy` struct without allocating; the rarer lines (INFO, CAL) own strings.

use std::fmt::{self, Write as _};

use super::frame::{BodyError, DiscardReason, encode_frame};

/// The only protocol version this station speaks.
pub const PROTOCOL_VERSION: i64 = 1;

/// A command sequence number, 1..=65535 (section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seq(u16);

impl Seq {
    /// The first sequence number a host uses.
    pub const FIRST: Self = Self(1);

    /// A sequence number, or `None` for 0.
    #[must_use]
    pub fn new(value: u16) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// Its value.
    #[must_use]
    pub fn get(self) -> u16 {
        self.0
    }

    /// The number after this one: after 65535 comes 1.
    #[must_use]
    pub fn next(self) -> Self {
        Self(if self.0 == u16::MAX { 1 } else { self.0 + 1 })
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The pen's state, as telemetry reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PenState {
    /// Motor off, ready.
    Idle,
    /// Motor running.
    Running,
    /// The pen stopped itself; needs `RESET`.
    Fault,
    /// Emergency stop; needs `RESET`.
    Estop,
}

impl PenState {
    /// The word on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Running => "RUNNING",
            Self::Fault => "FAULT",
            Self::Estop => "ESTOP",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "IDLE" => Self::Idle,
            "RUNNING" => Self::Running,
            "FAULT" => Self::Fault,
            "ESTOP" => Self::Estop,
            _ => return None,
        })
    }
}

impl fmt::Display for PenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the pen refused a command (`NAK <seq> <REASON>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NakReason {
    /// `HELLO` with a protocol other than 1.
    Proto,
    /// Any verb but `HELLO` before a successful `HELLO`.
    Hello,
    /// No such verb.
    Unknown,
    /// Wrong count or form of arguments.
    Args,
    /// A value out of range.
    Range,
    /// Not allowed in the pen's state.
    State,
    /// `RUN` with no cartridge in.
    Cartridge,
}

impl NakReason {
    /// Every reason.
    pub const ALL: [Self; 7] = [
        Self::Proto,
        Self::Hello,
        Self::Unknown,
        Self::Args,
        Self::Range,
        Self::State,
        Self::Cartridge,
    ];

    /// The word on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proto => "PROTO",
            Self::Hello => "HELLO",
            Self::Unknown => "UNKNOWN",
            Self::Args => "ARGS",
            Self::Range => "RANGE",
            Self::State => "STATE",
            Self::Cartridge => "CARTRIDGE",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == word)
    }
}

impl fmt::Display for NakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The calibration keys a `CAL SET` may name; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CalUpdate {
    /// Depth offset estimate `o`, µm (−200..200).
    pub depth_offset_um: Option<i32>,
    /// Depth gain estimate `g` × 10⁶ (−50000..50000).
    pub depth_gain_ppm: Option<i32>,
    /// Speed sensor gain `s` × 10⁶ (−50000..50000).
    pub speed_gain_ppm: Option<i32>,
    /// Calibration date as YYYYMMDD, 0 = never.
    pub date: Option<u32>,
    /// Technician id, 1..16 of `A-Z a-z 0-9 _ -`.
    pub tech: Option<String>,
}

impl CalUpdate {
    /// True when no key is named (the pen answers `NAK ARGS`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A host-to-pen command (section 4), without its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// `HELLO <proto>`: start a host session.
    Hello {
        /// Protocol version; 1.
        proto: i64,
    },
    /// `INFO`: ask for the INFO line again.
    Info,
    /// `DEPTH <depth_um>`: new depth target.
    Depth {
        /// Target depth, µm.
        depth_um: i64,
    },
    /// `SPEED <rpm>`: new speed target.
    Speed {
        /// Target speed, strokes per minute.
        rpm: i64,
    },
    /// `RUN`: start the motor.
    Run,
    /// `HALT`: controlled stop.
    Halt,
    /// `HB`: heartbeat.
    Hb,
    /// `TEL <hz>`: telemetry rate, 0 or 10..1000.
    Tel {
        /// Rate in samples per second.
        hz: i64,
    },
    /// `RESET`: leave FAULT or ESTOP.
    Reset,
    /// `CAL GET`: ask for the CAL line.
    CalGet,
    /// `CAL SET key=value...`: write calibration.
    CalSet(CalUpdate),
    /// `SIM GAUGE`: simulated pens only; the true protrusion.
    SimGauge,
}

impl Command {
    /// The verb as written on the wire (two words for `CAL` and `SIM`).
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "HELLO",
            Self::Info => "INFO",
            Self::Depth { .. } => "DEPTH",
            Self::Speed { .. } => "SPEED",
            Self::Run => "RUN",
            Self::Halt => "HALT",
            Self::Hb => "HB",
            Self::Tel { .. } => "TEL",
            Self::Reset => "RESET",
            Self::CalGet => "CAL GET",
            Self::CalSet(_) => "CAL SET",
            Self::SimGauge => "SIM GAUGE",
        }
    }

    /// Writes the body `<seq> <VERB> [ARGS...]` into `out` (cleared first).
    pub fn write_body(&self, seq: Seq, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = write!(out, "{seq} {}", self.verb());
        match self {
            Self::Hello { proto } => {
                let _ = write!(out, " {proto}");
            }
            Self::Depth { depth_um } => {
                let _ = write!(out, " {depth_um}");
            }
            Self::Speed { rpm } => {
                let _ = write!(out, " {rpm}");
            }
            Self::Tel { hz } => {
                let _ = write!(out, " {hz}");
            }
            Self::CalSet(update) => write_cal_pairs(
                out,
                update.depth_offset_um,
                update.depth_gain_ppm,
                update.speed_gain_ppm,
                update.date,
                update.tech.as_deref(),
            ),
            Self::Info
            | Self::Run
            | Self::Halt
            | Self::Hb
            | Self::Reset
            | Self::CalGet
            | Self::SimGauge => {}
        }
    }

    /// The whole framed line, ready for the wire.
    pub fn encode(&self, seq: Seq) -> Result<Vec<u8>, BodyError> {
        let mut body = String::new();
        self.write_body(seq, &mut body);
        let mut out = Vec::with_capacity(body.len() + 6);
        encode_frame(&body, &mut out)?;
        Ok(out)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = String::new();
        self.write_body(Seq::FIRST, &mut body);
        // Drop the sequence number: a command is shown without it.
        f.write_str(body.split_once(' ').map_or("", |(_, rest)| rest))
    }
}

fn write_cal_pairs(
    out: &mut String,
    depth_offset_um: Option<i32>,
    depth_gain_ppm: Option<i32>,
    speed_gain_ppm: Option<i32>,
    date: Option<u32>,
    tech: Option<&str>,
) {
    if let Some(v) = depth_offset_um {
        let _ = write!(out, " depth_offset_um={v}");
    }
    if let Some(v) = depth_gain_ppm {
        let _ = write!(out, " depth_gain_ppm={v}");
    }
    if let Some(v) = speed_gain_ppm {
        let _ = write!(out, " speed_gain_ppm={v}");
    }
    if let Some(v) = date {
        let _ = write!(out, " date={v}");
    }
    if let Some(v) = tech {
        let _ = write!(out, " tech={v}");
    }
}

/// Why the pen could not take a command frame that passed the CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// No usable sequence number: there is nothing to answer, so the line is dropped.
    BadSeq,
    /// A sequence number, but no such verb: answer `NAK <seq> UNKNOWN`.
    UnknownVerb(Seq),
    /// A known verb with wrong arguments: answer `NAK <seq> ARGS`.
    BadArgs(Seq),
}

/// Parses a command body `<seq> <VERB> [ARGS...]` (the pen's side).
pub fn parse_command(body: &str) -> Result<(Seq, Command), CommandError> {
    let mut words = body.split(' ');
    let seq = words
        .next()
        .and_then(parse_int)
        .and_then(|v| u16::try_from(v).ok())
        .and_then(Seq::new)
        .ok_or(CommandError::BadSeq)?;
    let verb = words.next().ok_or(CommandError::UnknownVerb(seq))?;
    let args: Vec<&str> = words.collect();
    let bad_args = CommandError::BadArgs(seq);
    let one_int = |args: &[&str]| match args {
        [v] => parse_int(v).ok_or(bad_args),
        _ => Err(bad_args),
    };
    let no_args = |args: &[&str], cmd: Command| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(bad_args)
        }
    };
    let command = match verb {
        "HELLO" => Command::Hello {
            proto: one_int(&args)?,
        },
        "INFO" => no_args(&args, Command::Info)?,
        "DEPTH" => Command::Depth {
            depth_um: one_int(&args)?,
        },
        "SPEED" => Command::Speed {
            rpm: one_int(&args)?,
        },
        "RUN" => no_args(&args, Command::Run)?,
        "HALT" => no_args(&args, Command::Halt)?,
        "HB" => no_args(&args, Command::Hb)?,
        "TEL" => Command::Tel {
            hz: one_int(&args)?,
        },
        "RESET" => no_args(&args, Command::Reset)?,
        "CAL" => match args.split_first() {
            Some((&"GET", rest)) => no_args(rest, Command::CalGet)?,
            Some((&"SET", rest)) => Command::CalSet(parse_cal_update(rest).map_err(|()| bad_args)?),
            _ => return Err(bad_args),
        },
        "SIM" => match args.as_slice() {
            ["GAUGE"] => Command::SimGauge,
            _ => return Err(bad_args),
        },
        _ => return Err(CommandError::UnknownVerb(seq)),
    };
    Ok((seq, command))
}

fn parse_cal_update(pairs: &[&str]) -> Result<CalUpdate, ()> {
    let mut update = CalUpdate::default();
    if pairs.is_empty() {
        return Err(());
    }
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or(())?;
        let int = || {
            parse_int(value)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or(())
        };
        // A key named twice is malformed: which value would win is not defined.
        match key {
            "depth_offset_um" if update.depth_offset_um.is_none() => {
                update.depth_offset_um = Some(int()?);
            }
            "depth_gain_ppm" if update.depth_gain_ppm.is_none() => {
                update.depth_gain_ppm = Some(int()?);
            }
            "speed_gain_ppm" if update.speed_gain_ppm.is_none() => {
                update.speed_gain_ppm = Some(int()?);
            }
            "date" if update.date.is_none() => {
                update.date = Some(
                    parse_int(value)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or(())?,
                );
            }
            "tech" if update.tech.is_none() && !value.is_empty() => {
                update.tech = Some(value.to_owned());
            }
            _ => return Err(()),
        }
    }
    Ok(update)
}

/// The pen's INFO line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PenInfo {
    /// Model name.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub fw: String,
    /// Protocol version; the station needs 1.
    pub proto: i64,
    /// Boot counter.
    pub boot: u32,
    /// Deepest settable depth, µm.
    pub depth_max_um: i32,
    /// Depth step, µm.
    pub depth_step_um: i32,
    /// Slowest settable speed, rpm.
    pub speed_min_rpm: i32,
    /// Fastest settable speed, rpm.
    pub speed_max_rpm: i32,
    /// Watchdog period, ms.
    pub watchdog_ms: u32,
    /// Highest telemetry rate, Hz.
    pub tel_max_hz: u32,
}

/// The pen's calibration (`CAL` line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Depth offset estimate `o`, µm.
    pub depth_offset_um: i32,
    /// Depth gain estimate `g` × 10⁶.
    pub depth_gain_ppm: i32,
    /// Speed sensor gain `s` × 10⁶.
    pub speed_gain_ppm: i32,
    /// Date as YYYYMMDD; 0 = never calibrated.
    pub date: u32,
    /// Technician id; `-` = none.
    pub tech: String,
}

impl Calibration {
    /// Identity calibration, never dated, no technician: a new pen.
    #[must_use]
    pub fn identity() -> Self {
        Self {
            depth_offset_um: 0,
            depth_gain_ppm: 0,
            speed_gain_ppm: 0,
            date: 0,
            tech: "-".to_owned(),
        }
    }
}

/// One telemetry sample (`T` line). `Copy`: parsing it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Telemetry {
    /// Sample counter since `HELLO`; a gap is a lost sample.
    pub n: u32,
    /// Pen time, ms since boot (wraps).
    pub t_ms: u32,
    /// Pen state.
    pub state: PenState,
    /// Measured speed, rpm (0 when stopped).
    pub rpm: i32,
    /// Actual calibrated depth, µm.
    pub depth_um: i32,
    /// Motor current, mA.
    pub current_ma: i32,
    /// Temperature, 0.1 °C.
    pub temp_dc: i32,
}

/// Why the pen restarted (`EV ... BOOT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BootReason {
    /// Power-on.
    Power,
    /// The pen's own hardware watchdog reset it.
    WatchdogReset,
    /// Supply voltage dropped.
    Brownout,
}

impl BootReason {
    /// The word on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Power => "POWER",
            Self::WatchdogReset => "WATCHDOG_RESET",
            Self::Brownout => "BROWNOUT",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Self::Power, Self::WatchdogReset, Self::Brownout]
            .into_iter()
            .find(|r| r.as_str() == word)
    }
}

/// Who stopped the pen (`EV ... ESTOP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EstopSource {
    /// The host's E-stop byte.
    Host,
    /// The pen's stop button.
    Button,
}

impl EstopSource {
    /// The word on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "HOST",
            Self::Button => "BUTTON",
        }
    }
}

/// Why the pen stopped itself (`EV ... FAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FaultCode {
    /// No valid frame for `watchdog_ms` while running.
    Watchdog,
    /// Measured speed below half the target for 200 ms.
    Stall,
    /// Motor current above 600 mA.
    Overcurrent,
    /// Temperature above 45.0 °C.
    Overtemp,
    /// The depth mechanism did not reach its target within 1 s.
    Depth,
}

impl FaultCode {
    /// Every code.
    pub const ALL: [Self; 5] = [
        Self::Watchdog,
        Self::Stall,
        Self::Overcurrent,
        Self::Overtemp,
        Self::Depth,
    ];

    /// The word on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watchdog => "WATCHDOG",
            Self::Stall => "STALL",
            Self::Overcurrent => "OVERCURRENT",
            Self::Overtemp => "OVERTEMP",
            Self::Depth => "DEPTH",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cartridge id: 16 uppercase hex digits on the wire, unique per cartridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CartridgeId(pub u64);

impl fmt::Display for CartridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl std::str::FromStr for CartridgeId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            u64::from_str_radix(s, 16)
                .map(Self)
                .map_err(|e| e.to_string())
        } else {
            Err(format!("cartridge id {s:?} is not 16 uppercase hex digits"))
        }
    }
}

impl serde::Serialize for CartridgeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CartridgeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What an `EV` line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PenEvent {
    /// The pen (re)started; everything the host set is gone.
    Boot {
        /// Boot counter.
        boot: u32,
        /// Why.
        reason: BootReason,
    },
    /// Emergency stop.
    Estop(EstopSource),
    /// The pen stopped the motor itself.
    Fault(FaultCode),
    /// A cartridge was inserted.
    Cartridge {
        /// Its unique id.
        id: CartridgeId,
        /// Its needle count.
        needles: u32,
    },
    /// The cartridge was removed.
    CartridgeRemoved,
    /// The start button was pressed while IDLE.
    Button,
    /// The start button was pressed while RUNNING: the pen halted itself.
    HaltButton,
}

impl fmt::Display for PenEvent {
    /// The event as the wire writes it, without `EV <t_ms>`: `CART 0123456789ABCDEF 12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boot { boot, reason } => write!(f, "BOOT {boot} {}", reason.as_str()),
            Self::Estop(source) => write!(f, "ESTOP {}", source.as_str()),
            Self::Fault(code) => write!(f, "FAULT {code}"),
            Self::Cartridge { id, needles } => write!(f, "CART {id} {needles}"),
            Self::CartridgeRemoved => f.write_str("CART NONE"),
            Self::Button => f.write_str("BUTTON"),
            Self::HaltButton => f.write_str("HALT BUTTON"),
        }
    }
}

/// A pen-to-host line (section 5), plus the simulated pen's `GAUGE`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PenMessage {
    /// `ACK <seq>`.
    Ack(Seq),
    /// `NAK <seq> <REASON>`.
    Nak(Seq, NakReason),
    /// `INFO key=value...`.
    Info(PenInfo),
    /// `CAL key=value...`.
    Cal(Calibration),
    /// `T ...`: a telemetry sample.
    Telemetry(Telemetry),
    /// `EV <t_ms> ...`.
    Event {
        /// Pen time of the event.
        t_ms: u32,
        /// What happened.
        event: PenEvent,
    },
    /// `GAUGE <true_protrusion_um>` (simulated pens only).
    Gauge {
        /// True needle protrusion, µm.
        true_um: i32,
    },
}

impl serde::Serialize for Seq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Seq {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u16::deserialize(d)?;
        Self::new(v).ok_or_else(|| serde::de::Error::custom("sequence number 0"))
    }
}

impl PenMessage {
    /// Writes the body into `out` (cleared first).
    pub fn write_body(&self, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = match self {
            Self::Ack(seq) => write!(out, "ACK {seq}"),
            Self::Nak(seq, reason) => write!(out, "NAK {seq} {reason}"),
            Self::Info(i) => write!(
                out,
                "INFO model={} serial={} fw={} proto={} boot={} depth_max_um={} depth_step_um={} \
                 speed_min_rpm={} speed_max_rpm={} watchdog_ms={} tel_max_hz={}",
                i.model,
                i.serial,
                i.fw,
                i.proto,
                i.boot,
                i.depth_max_um,
                i.depth_step_um,
                i.speed_min_rpm,
                i.speed_max_rpm,
                i.watchdog_ms,
                i.tel_max_hz
            ),
            Self::Cal(c) => {
                out.push_str("CAL");
                write_cal_pairs(
                    out,
                    Some(c.depth_offset_um),
                    Some(c.depth_gain_ppm),
                    Some(c.speed_gain_ppm),
                    Some(c.date),
                    Some(&c.tech),
                );
                Ok(())
            }
            Self::Telemetry(t) => write!(
                out,
                "T {} {} {} {} {} {} {}",
                t.n, t.t_ms, t.state, t.rpm, t.depth_um, t.current_ma, t.temp_dc
            ),
            Self::Event { t_ms, event } => {
                let _ = write!(out, "EV {t_ms} ");
                match event {
                    PenEvent::Boot { boot, reason } => {
                        write!(out, "BOOT {boot} {}", reason.as_str())
                    }
                    PenEvent::Estop(source) => write!(out, "ESTOP {}", source.as_str()),
                    PenEvent::Fault(code) => write!(out, "FAULT {code}"),
                    PenEvent::Cartridge { id, needles } => write!(out, "CART {id} {needles}"),
                    PenEvent::CartridgeRemoved => write!(out, "CART NONE"),
                    PenEvent::Button => write!(out, "BUTTON"),
                    PenEvent::HaltButton => write!(out, "HALT BUTTON"),
                }
            }
            Self::Gauge { true_um } => write!(out, "GAUGE {true_um}"),
        };
    }

    /// Appends the whole framed line to `out`, reusing `scratch` for the body.
    pub fn encode_into(&self, scratch: &mut String, out: &mut Vec<u8>) -> Result<(), BodyError> {
        self.write_body(scratch);
        encode_frame(scratch, out)
    }

    /// Parses a frame body from the pen. Fails with [`DiscardReason::UnknownWord`] or
    /// [`DiscardReason::BadFields`]; allocates nothing for telemetry.
    pub fn parse(body: &str) -> Result<Self, DiscardReason> {
        let (word, rest) = body.split_once(' ').unwrap_or((body, ""));
        let bad = DiscardReason::BadFields;
        match word {
            "T" => parse_telemetry(rest).map(Self::Telemetry).ok_or(bad),
            "ACK" => parse_seq(rest).map(Self::Ack).ok_or(bad),
            "NAK" => {
                let (seq, reason) = rest.split_once(' ').ok_or(bad)?;
                Ok(Self::Nak(
                    parse_seq(seq).ok_or(bad)?,
                    NakReason::parse(reason).ok_or(bad)?,
                ))
            }
            "EV" => parse_event(rest).ok_or(bad),
            "INFO" => parse_info(rest).map(Self::Info).ok_or(bad),
            "CAL" => parse_cal(rest).map(Self::Cal).ok_or(bad),
            "GAUGE" => Ok(Self::Gauge {
                true_um: parse_i32(rest).ok_or(bad)?,
            }),
            _ => Err(DiscardReason::UnknownWord),
        }
    }
}

/// Parses a protocol integer: decimal digits with an optional leading `-` (no `+`,
/// no spaces, at least one digit).
#[must_use]
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .bytes()
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    Some(if s.starts_with('-') {
        -magnitude
    } else {
        magnitude
    })
}

fn parse_i32(s: &str) -> Option<i32> {
    parse_int(s).and_then(|v| i32::try_from(v).ok())
}

fn parse_u32(s: &str) -> Option<u32> {
    parse_int(s).and_then(|v| u32::try_from(v).ok())
}

fn parse_seq(s: &str) -> Option<Seq> {
    parse_int(s)
        .and_then(|v| u16::try_from(v).ok())
        .and_then(Seq::new)
}

fn parse_telemetry(rest: &str) -> Option<Telemetry> {
    let mut f = rest.split(' ');
    let t = Telemetry {
        n: parse_u32(f.next()?)?,
        t_ms: parse_u32(f.next()?)?,
        state: PenState::parse(f.next()?)?,
        rpm: parse_i32(f.next()?)?,
        depth_um: parse_i32(f.next()?)?,
        current_ma: parse_i32(f.next()?)?,
        temp_dc: parse_i32(f.next()?)?,
    };
    f.next().is_none().then_some(t)
}

fn parse_event(rest: &str) -> Option<PenMessage> {
    let mut f = rest.split(' ');
    let t_ms = parse_u32(f.next()?)?;
    let words: Vec<&str> = f.collect();
    let event = match words.as_slice() {
        ["BOOT", boot, reason] => PenEvent::Boot {
            boot: parse_u32(boot)?,
            reason: BootReason::parse(reason)?,
        },
        ["ESTOP", "HOST"] => PenEvent::Estop(EstopSource::Host),
        ["ESTOP", "BUTTON"] => PenEvent::Estop(EstopSource::Button),
        ["FAULT", code] => PenEvent::Fault(FaultCode::parse(code)?),
        ["CART", "NONE"] => PenEvent::CartridgeRemoved,
        ["CART", id, needles] => PenEvent::Cartridge {
            id: id.parse().ok()?,
            needles: parse_u32(needles)?,
        },
        ["BUTTON"] => PenEvent::Button,
        ["HALT", "BUTTON"] => PenEvent::HaltButton,
        _ => return None,
    };
    Some(PenMessage::Event { t_ms, event })
}

/// Splits `key=value` pairs; unknown keys are ignored by the caller.
fn pairs(rest: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    rest.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.split_once('='))
}

fn parse_info(rest: &str) -> Option<PenInfo> {
    let (mut model, mut serial, mut fw) = (None, None, None);
    let (mut proto, mut boot, mut depth_max_um, mut depth_step_um) = (None, None, None, None);
    let (mut speed_min_rpm, mut speed_max_rpm, mut watchdog_ms, mut tel_max_hz) =
        (None, None, None, None);
    for pair in pairs(rest) {
        let (key, value) = pair?;
        match key {
            "model" => model = Some(value.to_owned()),
            "serial" => serial = Some(value.to_owned()),
            "fw" => fw = Some(value.to_owned()),
            "proto" => proto = Some(parse_int(value)?),
            "boot" => boot = Some(parse_u32(value)?),
            "depth_max_um" => depth_max_um = Some(parse_i32(value)?),
            "depth_step_um" => depth_step_um = Some(parse_i32(value)?),
            "speed_min_rpm" => speed_min_rpm = Some(parse_i32(value)?),
            "speed_max_rpm" => speed_max_rpm = Some(parse_i32(value)?),
            "watchdog_ms" => watchdog_ms = Some(parse_u32(value)?),
            "tel_max_hz" => tel_max_hz = Some(parse_u32(value)?),
            // Section 5: unknown keys are ignored by hosts.
            _ => {}
        }
    }
    Some(PenInfo {
        model: model?,
        serial: serial?,
        fw: fw?,
        proto: proto?,
        boot: boot?,
        depth_max_um: depth_max_um?,
        depth_step_um: depth_step_um?,
        speed_min_rpm: speed_min_rpm?,
        speed_max_rpm: speed_max_rpm?,
        watchdog_ms: watchdog_ms?,
        tel_max_hz: tel_max_hz?,
    })
}

fn parse_cal(rest: &str) -> Option<Calibration> {
    let (mut depth_offset_um, mut depth_gain_ppm, mut speed_gain_ppm) = (None, None, None);
    let (mut date, mut tech) = (None, None);
    for pair in pairs(rest) {
        let (key, value) = pair?;
        match key {
            "depth_offset_um" => depth_offset_um = Some(parse_i32(value)?),
            "depth_gain_ppm" => depth_gain_ppm = Some(parse_i32(value)?),
            "speed_gain_ppm" => speed_gain_ppm = Some(parse_i32(value)?),
            "date" => date = Some(parse_u32(value)?),
            "tech" if !value.is_empty() => tech = Some(value.to_owned()),
            _ => {}
        }
    }
    Some(Calibration {
        depth_offset_um: depth_offset_um?,
        depth_gain_ppm: depth_gain_ppm?,
        speed_gain_ppm: speed_gain_ppm?,
        date: date?,
        tech: tech?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documents_examples() {
        assert_eq!(
            parse_command("1 HELLO 1"),
            Ok((Seq::FIRST, Command::Hello { proto: 1 }))
        );
        assert_eq!(
            PenMessage::parse("T 0 1000 IDLE 0 500 0 251"),
            Ok(PenMessage::Telemetry(Telemetry {
                n: 0,
                t_ms: 1000,
                state: PenState::Idle,
                rpm: 0,
                depth_um: 500,
                current_ma: 0,
                temp_dc: 251
            }))
        );
        assert_eq!(
            PenMessage::parse("EV 12 BOOT 7 POWER"),
            Ok(PenMessage::Event {
                t_ms: 12,
                event: PenEvent::Boot {
                    boot: 7,
                    reason: BootReason::Power
                }
            })
        );
    }

    #[test]
    fn command_errors_say_what_to_answer() {
        let seq = Seq::new(7).expect("nonzero");
        let cases = [
            ("0 HB", Err(CommandError::BadSeq)),
            ("65536 HB", Err(CommandError::BadSeq)),
            ("+7 HB", Err(CommandError::BadSeq)),
            ("7 FLY", Err(CommandError::UnknownVerb(seq))),
            ("7", Err(CommandError::UnknownVerb(seq))),
            ("7 DEPTH", Err(CommandError::BadArgs(seq))),
            ("7 DEPTH 1.5", Err(CommandError::BadArgs(seq))),
            ("7 HB 1", Err(CommandError::BadArgs(seq))),
            ("7 CAL SET", Err(CommandError::BadArgs(seq))),
            ("7 CAL SET date=1 date=2", Err(CommandError::BadArgs(seq))),
            ("7 CAL SET color=red", Err(CommandError::BadArgs(seq))),
            ("7 CAL PUT", Err(CommandError::BadArgs(seq))),
            ("7 DEPTH -50", Ok((seq, Command::Depth { depth_um: -50 }))),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_command(body), expected, "{body}");
        }
    }

    #[test]
    fn pen_lines_with_unknown_words_or_bad_fields_are_told_apart() {
        let cases = [
            ("HELLO there", DiscardReason::UnknownWord),
            ("T 1 2 IDLE 0 0 0", DiscardReason::BadFields),
            ("T 1 2 DANCING 0 0 0 0", DiscardReason::BadFields),
            ("T 1 2 IDLE 0 0 0 0 9", DiscardReason::BadFields),
            ("ACK 0", DiscardReason::BadFields),
            ("NAK 3 BECAUSE", DiscardReason::BadFields),
            ("EV 5 CART 0123 12", DiscardReason::BadFields),
            ("INFO model=x", DiscardReason::BadFields),
        ];
        for (body, expected) in cases {
            assert_eq!(PenMessage::parse(body), Err(expected), "{body}");
        }
    }

    #[test]
    fn info_ignores_unknown_keys() {
        let body = "INFO model=MNP-1 serial=SIM0001 fw=1.0.0 proto=1 boot=3 depth_max_um=2500 \
                    depth_step_um=50 speed_min_rpm=3000 speed_max_rpm=9000 watchdog_ms=300 \
                    tel_max_hz=1000 colour=blue";
        let Ok(PenMessage::Info(info)) = PenMessage::parse(body) else {
            panic!("INFO did not parse");
        };
        assert_eq!(info.depth_max_um, 2500);
        assert_eq!(info.model, "MNP-1");
    }

    #[test]
    fn seq_wraps_from_65535_to_1() {
        assert_eq!(Seq::new(65535).map(Seq::next), Seq::new(1));
        assert_eq!(Seq::new(0), None);
    }
}
