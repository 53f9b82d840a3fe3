//! Punctum: a treatment-station controller for motorized microneedling pens.
//!
//! See `ARCHITECTURE.md` for the map of modules and threads.

pub mod calibration;
pub mod cli;
pub mod client;
pub mod clinic;
pub mod files;
pub mod handout;
pub mod link;
pub mod monitor;
pub mod protocol;
pub mod record;
pub mod replay;
pub mod safety;
pub mod signals;
pub mod sim;
pub mod sound;
pub mod station;
pub mod store;
pub mod text;
pub mod timeseries;
pub mod ui;
