//! Front ends: the station window (one file per panel) and the operator console.
//! They show and ask; the station core and the interlock decide.

pub mod admin_panel;
pub mod alarm_banner;
pub mod app;
pub mod calibration_panel;
pub mod checklist_panel;
pub mod client_file_panel;
pub mod close_dialog;
pub mod commands;
pub mod connection_bar;
pub mod console;
pub mod console_calibration;
pub mod console_clinic;
pub mod console_people;
pub mod console_steps;
pub mod controls;
pub mod face_map;
pub mod library_panel;
pub mod lot_search_panel;
pub mod open_recording;
pub mod plots;
pub mod repaint;
pub mod replay_info;
pub mod replay_panel;
pub mod session_panel;
pub mod sign_in_panel;
pub mod source;
pub mod summary_panel;
pub mod technician_panel;
pub mod theme;

#[cfg(test)]
mod calibration_window_tests;
#[cfg(test)]
mod clinic_window_tests;
#[cfg(test)]
mod frames_window_tests;
#[cfg(test)]
mod library_window_tests;
#[cfg(test)]
mod needle_window_tests;
#[cfg(test)]
mod people_window_tests;
#[cfg(test)]
mod procedure_window_tests;
#[cfg(test)]
mod replay_window_tests;
#[cfg(test)]
mod sound_window_tests;
#[cfg(test)]
mod window_test_support;
