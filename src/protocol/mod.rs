//! The pen maker's serial protocol, version 1 (`shared/pen-protocol.md`): frames, the
//! CRC, and typed messages in both directions. Bytes in, messages out; no I/O.
//!
//! **Invariant:** nothing here touches a port, a clock or a thread. The link thread
//! (host side) and the simulated pen (pen side) both build on this module, so the two
//! sides cannot drift apart.
//!
//! Units are integers, named in every field: `depth_um` (µm), `rpm` (strokes per
//! minute), `current_ma` (mA), `temp_dc` (0.1 °C), `t_ms` (ms since pen boot, wraps).

pub mod counter;
pub mod frame;
pub mod message;

pub use frame::{
    BodyError, Decoded, DiscardCounts, DiscardReason, ESTOP_BYTE, FrameDecoder, MAX_BODY_LEN,
    MAX_LINE_LEN, crc16, encode_frame,
};
pub use message::{
    BootReason, CalUpdate, Calibration, CartridgeId, Command, CommandError, EstopSource, FaultCode,
    NakReason, PROTOCOL_VERSION, PenEvent, PenInfo, PenMessage, PenState, Seq, Telemetry,
    parse_command, parse_int,
};
