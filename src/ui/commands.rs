//! What the window's panels and screens ask the app to do ([`UiCommand`]), applied by
//! the app after layout, and the few values the app hands them back ([`LogLine`]). In
//! a file of its own so that panels and screens depend on it, never on `app.rs`.

use std::path::PathBuf;

use crate::calibration::certificate::CalibrationKind;
use crate::replay::ReplayCommand;
use crate::safety::alarms::AlarmId;
use crate::safety::zones::ZoneId;

use super::technician_panel::Secret;

/// Where the station's pen is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PortChoice {
    /// The built-in simulated pen.
    Simulated,
    /// A serial port path.
    Path(String),
}

/// What a panel asks the app to do; applied after layout.
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    /// Play each alarm priority's signal once ("Test alarm sound").
    TestAlarmSound,
    /// Set the alarm volume, % (stored in the data folder's settings).
    SetAlarmVolume(u8),
    /// Close the window, ending the open session (the operator confirmed).
    CloseWindow,
    /// Connect to this pen (dropping the current link).
    Connect(PortChoice),
    /// Close the link.
    Disconnect,
    /// List the serial ports again.
    RefreshPorts,
    /// Open a session from screening answers (the file format's JSON).
    OpenSession(String),
    /// Open a session from a screening answers file.
    LoadScreening(PathBuf),
    /// Select a zone.
    SelectZone(ZoneId),
    /// Ask for a depth, µm.
    SetDepthUm(i64),
    /// Ask for a speed, rpm.
    SetSpeedRpm(i64),
    /// Start the needle.
    Start,
    /// Stop the needle.
    Stop,
    /// Emergency stop.
    EStop,
    /// The operator's reset (already confirmed in the dialog).
    Reset,
    /// Acknowledge one alarm, or all.
    Acknowledge(Option<AlarmId>),
    /// Silence an alarm's sound for its priority's longest allowed time.
    Silence(AlarmId),
    /// Add a note to the open session's record.
    AddNote(String),
    /// Record a step of the procedure (the station fills in who, when and its number).
    RecordStep {
        /// The step's kind and fields.
        entry: Box<crate::safety::procedure::StepEntry>,
        /// When it happened, station UTC ms, when earlier than now.
        at_utc_ms: Option<i64>,
    },
    /// Show a client's file (read on a background thread).
    ShowClientFile(String),
    /// Close the client's file.
    CloseClientFile,
    /// Add a follow-up or adverse event to a session of the client file's client.
    AddAmendment {
        /// The session.
        session_id: String,
        /// When it was seen.
        date: jiff::civil::Date,
        /// One of `store::amendments::KINDS`.
        kind: String,
        /// One of `store::amendments::SEVERITIES`.
        severity: String,
        /// What was seen and done.
        note: String,
    },
    /// Show the lot search.
    ShowLotSearch,
    /// Search the records for a lot.
    SearchLot(String),
    /// Close the lot search.
    CloseLotSearch,
    /// End the session.
    EndSession,
    /// Write the aftercare sheet for the client.
    SaveAftercare,
    /// Close the end-of-session summary.
    CloseSummary,
    /// Show the "Open recording" file dialog.
    ShowOpenRecording,
    /// Open this recording for replay (in the background).
    OpenRecording(PathBuf),
    /// Stop opening the recording.
    CancelOpenRecording,
    /// Close the message saying why a recording did not open.
    CloseOpenError,
    /// A replay control.
    Replay(ReplayCommand),
    /// Leave the replay for the live station (connecting if needed).
    BackToLive,
    /// Show the session library (scanning the sessions folder afresh).
    ShowLibrary,
    /// Scan the sessions folder again.
    RefreshLibrary,
    /// Close the session library.
    CloseLibrary,
    /// Show the technician dialog (unlock with the account's PIN).
    ShowTechnician,
    /// Close the technician dialog.
    CloseTechnician,
    /// The first start: create the first admin (`repeat` must match).
    CreateFirstAdmin {
        /// The account id.
        id: String,
        /// The name.
        name: String,
        /// The PIN.
        pin: Secret,
        /// The PIN again.
        repeat: Secret,
    },
    /// Sign in, unlock (the same account) or take over (another).
    SignIn {
        /// The account id.
        id: String,
        /// Its PIN.
        pin: Secret,
    },
    /// Lock the station now.
    Lock,
    /// Sign out.
    SignOut,
    /// Sign the last closed session's record.
    SignRecord {
        /// The practitioner's PIN again.
        pin: Secret,
    },
    /// Leave the record unsigned for now.
    SignRecordLater,
    /// Open the admin screen.
    ShowAdmin,
    /// Close the admin screen.
    CloseAdmin,
    /// An admin creates an account.
    CreateAccount {
        /// The id.
        id: String,
        /// The name.
        name: String,
        /// Its roles.
        roles: std::collections::BTreeSet<crate::store::accounts::Role>,
        /// Its PIN.
        pin: Secret,
    },
    /// An admin disables an account.
    DisableAccount {
        /// The account.
        id: String,
        /// Why.
        reason: String,
    },
    /// An admin resets an account's PIN.
    ResetSecret {
        /// The account.
        id: String,
        /// The new PIN.
        pin: Secret,
    },
    /// An admin sets an account's roles.
    SetRoles {
        /// The account.
        id: String,
        /// Its roles.
        roles: std::collections::BTreeSet<crate::store::accounts::Role>,
    },
    /// An admin sets a zone's protocol limit.
    SetZoneLimit {
        /// The zone.
        zone: crate::safety::zones::ZoneId,
        /// The new limit as typed, mm.
        mm_text: String,
        /// Why.
        reason: String,
    },
    /// An admin changes a setting.
    ChangeSetting {
        /// The key (`idle_lock_min`, ...).
        key: &'static str,
        /// The value typed.
        value: String,
    },
    /// Unlock technician mode.
    EnterTechnician {
        /// The technician PIN.
        pin: Secret,
        /// Who unlocks (stored on the pen with each calibration).
        technician_id: String,
    },
    /// Leave technician mode.
    LeaveTechnician,
    /// Start a depth or speed calibration of the connected pen.
    StartCalibration {
        /// Depth or speed.
        kind: CalibrationKind,
        /// Depth readings from the simulated pen's `SIM GAUGE`.
        sim_gauge: bool,
    },
    /// The technician's reading for the point awaited, as typed.
    CalibrationReading(String),
    /// Write the fit under review to the pen.
    CalibrationAccept,
    /// Cancel the calibration: the previous values are written back.
    CalibrationCancel,
    /// Close the finished calibration's result.
    DismissCalibration,
    /// The operator confirms the cartridge in the pen came from a sealed pack (the
    /// clinic store cannot check it).
    ConfirmSealedPack,
}

impl UiCommand {
    /// Commands anyone at the station may give, signed in or not, locked or not:
    /// the stops, pausing an alarm's sound (the alarm stays on screen), signing in,
    /// closing what is open, the sound's self-test, closing the window. Every other
    /// command waits for a signed-in, unlocked account (the station refuses its own
    /// operations too; this also keeps records and client data off a locked screen).
    #[must_use]
    pub fn open_to_anyone(&self) -> bool {
        matches!(
            self,
            UiCommand::Stop
                | UiCommand::EStop
                | UiCommand::Silence(_)
                | UiCommand::CloseWindow
                | UiCommand::TestAlarmSound
                | UiCommand::SignIn { .. }
                | UiCommand::CreateFirstAdmin { .. }
                | UiCommand::SignRecordLater
                | UiCommand::ShowTechnician
                | UiCommand::CloseTechnician
                | UiCommand::CloseLibrary
                | UiCommand::CloseClientFile
                | UiCommand::CloseLotSearch
                | UiCommand::CloseSummary
                | UiCommand::CloseOpenError
                | UiCommand::CancelOpenRecording
                | UiCommand::CloseAdmin
        )
    }
}

/// An event line in the window's log.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Station seconds.
    pub at_s: f64,
    /// What happened.
    pub text: String,
    /// A refusal (shown in the refusal colour).
    pub refusal: bool,
}
