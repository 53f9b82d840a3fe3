//! Bench calibration of a pen's depth and speed (issue 6; `pen-protocol.md`, section 8):
//! the pure core the technician's wizard and the console flows are built on.
//!
//! - [`fit`]: the readings' checks, the depth least-squares line and the speed fit
//!   through the origin, the standard target sets, and every refusal with its reason.
//! - [`verify`]: verification of a written calibration (±50 µm, ±1 %), one report line
//!   per point, and the pen's calibration maths mirrored.
//! - [`certificate`]: the certificate of a calibration, written once as JSON and as a
//!   self-contained HTML page into `<data>/certificates/`.
//! - [`procedure`]: the depth and speed procedures as one state machine: what to
//!   send, what to wait for, the failure path that restores the previous values.
//! - [`status`]: a pen's calibration status for display (valid, due soon, overdue).
//!
//! **Boundary:** no egui, no link, no threads, no clock: the date and time come in.
//! The only I/O is [`certificate::write`] and [`certificate::load`]. Driving the pen
//! (`CAL SET`, `CAL GET`, restoring the previous values) is the caller's.

pub mod certificate;
pub mod fit;
pub mod procedure;
pub mod status;
pub mod verify;

#[cfg(test)]
mod pen_bench_tests;
#[cfg(test)]
mod procedure_tests;
#[cfg(test)]
mod test_bench;

pub use fit::{DepthFit, DepthPoint, FitError, SpeedFit, SpeedPoint, fit_depth, fit_speed};
pub use procedure::{Action, AnswerEnd, Procedure, ReadingRequest, Setup, Stage};
pub use status::{CalibrationStatus, calibration_status};
pub use verify::{DepthVerification, SpeedVerification, verify_depth, verify_speed};
