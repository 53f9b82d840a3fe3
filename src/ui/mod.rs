//! Front ends: the operator console (and, with the window, one file per panel).
//! They show and ask; the station core and the interlock decide.

pub mod console;
