//! The safety core: zones and their depth limits, the interlock, alarms, screening
//! and aftercare. Pure: no I/O, no clock, no threads, no egui. Time comes in as
//! arguments.
//!
//! **Invariant:** safety never does I/O. The link calls the interlock before every
//! command reaches the wire; the window and the console only ask.

pub mod aftercare;
pub mod alarms;
pub mod course;
pub mod interlock;
pub mod needle;
pub mod procedure;
pub mod screening;
pub mod zones;
