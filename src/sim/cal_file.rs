//! The simulated pen's calibration memory: a small JSON file, so a calibration survives
//! restarts of the simulator as a real pen's survives power cycles.
//!
//! A missing file is a pen never calibrated (identity, date 0, tech `-`). A file that
//! cannot be read, parsed or holds out-of-range values is an error at start: silently
//! falling back to identity would hide a broken calibration. Writes go to a temporary
//! file in the same directory, then a rename, so a crash never leaves half a file.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::pen::check_calibration;
use crate::protocol::Calibration;

/// Why the calibration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CalFileError {
    /// The file exists but could not be read.
    #[error("cannot read calibration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not the JSON of a calibration.
    #[error("calibration file {path} is corrupt: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The file parsed, but a value is outside section 8's ranges.
    #[error("calibration file {path} holds an invalid calibration: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which value, and why.
        reason: String,
    },
    /// The file could not be written.
    #[error("cannot write calibration file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Reads the calibration at `path`; a missing file gives the identity calibration.
pub fn load(path: &Path) -> Result<Calibration, CalFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Calibration::identity()),
        Err(source) => {
            return Err(CalFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let calibration: Calibration =
        serde_json::from_str(&text).map_err(|source| CalFileError::Parse {
            path: path.to_owned(),
            source,
        })?;
    check_calibration(&calibration).map_err(|reason| CalFileError::Invalid {
        path: path.to_owned(),
        reason,
    })?;
    Ok(calibration)
}

/// Writes `calibration` to `path` atomically (temporary file, sync, rename).
pub fn store(path: &Path, calibration: &Calibration) -> Result<(), CalFileError> {
    let write_err = |source| CalFileError::Write {
        path: path.to_owned(),
        source,
    };
    let mut text = serde_json::to_string_pretty(calibration)
        .map_err(|e| write_err(std::io::Error::other(e)))?;
    text.push('\n');
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Same directory, so the rename stays on one file system and is atomic.
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless, the error below is not.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_identity_calibration() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cal = load(&dir.path().join("none.json")).expect("missing is fine");
        assert_eq!(cal, Calibration::identity());
        assert_eq!(cal.tech, "-");
        assert_eq!(cal.date, 0);
    }

    #[test]
    fn a_stored_calibration_loads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cal.json");
        let cal = Calibration {
            depth_offset_um: -12,
            depth_gain_ppm: 15_000,
            speed_gain_ppm: -300,
            // YYYY_MM_DD: grouped by date field, which reads better than by thousands.
            #[allow(clippy::inconsistent_digit_grouping)]
            date: 2024_02_29,
            tech: "ana_b".to_owned(),
        };
        store(&path, &cal).expect("store");
        assert_eq!(load(&path).expect("load"), cal);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_corrupt_or_invalid_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cal.json");
        fs::write(&path, "{ not json").expect("write");
        let err = load(&path).expect_err("corrupt");
        assert!(matches!(err, CalFileError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("cal.json"));

        let mut bad = serde_json::to_value(Calibration::identity()).expect("to json");
        bad["depth_offset_um"] = 900.into();
        fs::write(&path, bad.to_string()).expect("write");
        let err = load(&path).expect_err("invalid");
        assert!(matches!(err, CalFileError::Invalid { .. }), "{err}");
    }
}
