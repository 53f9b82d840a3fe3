//! Which station this is, to the clinic store: an id made once per data folder and
//! kept in `clinic-station.json`, so a restart (or a new host name) is the same
//! station and its upload cursors stay its own.

use std::path::Path;

use sha2::Digest as _;

use super::ClinicError;

/// The identity file in the data folder.
pub const IDENTITY_FILE: &str = "clinic-station.json";

/// This station's id in the clinic store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StationIdentity {
    /// `<host name>-<6 hex digits>`: readable, and unique when two data folders
    /// share a host.
    pub station_id: String,
}

impl StationIdentity {
    /// The data folder's identity, made and written (0600) the first time.
    ///
    /// # Errors
    /// [`ClinicError::Config`] when the file cannot be read, parsed or written.
    ///
    /// # Panics
    /// Never: the identity is plain strings, which always serialise.
    pub fn of(data_root: &Path) -> Result<Self, ClinicError> {
        let path = data_root.join(IDENTITY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                ClinicError::Config(format!("{}: not a station identity: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A folder that uploaded before, its identity lost: a new id would
                // upload everything again under it.
                let known = super::streams::LocalCursors::load(data_root).station_id;
                if !known.is_empty() {
                    return Err(ClinicError::Config(format!(
                        "{} is missing, but this data folder uploaded to the clinic store as \
                         station {known} ({}): restore it as {{\"station_id\": \"{known}\"}} \
                         rather than join as a new station (which would upload everything \
                         again)",
                        path.display(),
                        super::streams::CURSORS_FILE
                    )));
                }
                let seed = format!(
                    "{}-{}-{:?}-{}",
                    crate::store::audit::host_name(),
                    std::process::id(),
                    std::time::SystemTime::now(),
                    data_root.display()
                );
                let digest = sha2::Sha256::digest(seed.as_bytes());
                let host: String = crate::store::audit::host_name()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(40)
                    .collect();
                let id = Self {
                    station_id: format!("{host}-{}", &crate::store::audit::hex(&digest)[..6]),
                };
                let text = serde_json::to_string_pretty(&id).expect("plain strings");
                // `create_new`: two processes starting on one folder keep one id.
                let created = crate::store::create_options()
                    .write(true)
                    .create_new(true)
                    .open(&path);
                let mut file = match created {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Self::of(data_root);
                    }
                    Err(e) => {
                        return Err(ClinicError::Config(format!(
                            "cannot write {}: {e}",
                            path.display()
                        )));
                    }
                };
                std::io::Write::write_all(&mut file, text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| {
                        ClinicError::Config(format!("cannot write {}: {e}", path.display()))
                    })?;
                crate::store::sync_parent(&path).map_err(|e| ClinicError::Config(e.to_string()))?;
                Ok(id)
            }
            Err(e) => Err(ClinicError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}
