//! The station's data folder and the small durable stores kept in it.
//!
//! Everything the station must remember across restarts lives in one folder
//! ([`DataDir`], by default `$XDG_DATA_HOME/punctum`, else `~/.local/share/punctum`),
//! created with mode 0700; every file in it is created with mode 0600, because it
//! names clients.
//!
//! | File | Written by | Holds |
//! |------|------------|-------|
//! | `cartridges.jsonl` | [`CartridgeRegistry`] | one line per (cartridge, session): a cartridge that has run once is never reused in another session |
//! | `treatments.jsonl` | [`TreatmentHistory`] | one line per treated zone: client, zone id, date, session (for the 4-week same-zone rule) |
//! | `zone-limit-changes.jsonl` | [`append_limit_change`] | one line per change of a zone's depth limit: zone, old and new limit, who, when, table hash |
//! | `zones.last.json` | [`store_zone_table`] | the zone table the station last ran with, so a changed clinic table is noticed at start |
//! | `alarms.jsonl` | the station core | every alarm raised, acknowledged, silenced or cleared, with its UTC time |
//! | `settings.json` | [`StationSettings`] | the station's settings (a clinic's zone table file, the alarm volume); replaced whole |
//! | `amendments.jsonl` | [`amendments`] | follow-up and adverse events added after a session, linked to it (a record is never edited) |
//! | `accounts.json` | [`accounts::Accounts`] | the accounts: id, name, roles, a salted Argon2id hash of the PIN or password, disabled or not; replaced whole |
//! | `sign-in-lockouts.json` | [`accounts::Accounts`] | wrong tries and lockouts per account, so a restart does not reset them |
//! | `audit.jsonl`, `audit.head.json` | [`audit::AuditLog`] | the hash-chained audit trail and its last line's hash |
//! | `technician-pin.json` | [`TechnicianPin`] | before accounts: the technician PIN; moved into an account at the first start (`technician-pin.migrated.json`) |
//! | `clinic.conn` | the clinic's IT | the clinic store's URL, one line, mode 0600 (`crate::clinic::ClinicTarget`) |
//! | `clinic-station.json` | `crate::clinic::StationIdentity` | this station's id in the clinic store |
//! | `clinic-outbox.json` | `crate::clinic::worker` | the upload cursors last seen in the store (a cache) |
//! | `clinic-zone-tables.jsonl` | the station's admin changes | zone tables made here, for the clinic store |
//! | `clinic-verdicts.json` | `crate::clinic::verdicts` | what the clinic store refused (used cartridges, zones treated elsewhere), kept while it is away |
//!
//! The `.jsonl` files are append-only JSON Lines ([`jsonl`]): each record is written as
//! one line and synced before the call returns. A line that cannot be read (a crash in
//! the middle of a write, a hand edit) is reported with its line number and left on
//! disk as it is: the store never rewrites what it has written, so nothing is lost
//! by a reader that does not understand it.
//!
//! Several station processes may share a data folder. The cartridge registry and the
//! treatment history read on from where they last stopped before every decision
//! ([`jsonl::Tail`]), and claim a cartridge or a zone under the file's exclusive lock
//! ([`jsonl::with_lock`]), so two stations never both claim one. The lock is the
//! operating system's `flock`: it holds between processes on one machine (see the
//! README for network folders).
//!
//! **Boundary:** this module knows nothing of the safety rules. It stores zone ids as
//! strings and answers "when", "who", "which session"; the safety module decides what
//! those answers allow.

pub mod account_changes;
pub mod accounts;
pub mod amendments;
pub mod audit;
pub mod audit_cmd;
pub mod cartridges;
pub mod jsonl;
pub mod limit_log;
pub mod settings;
pub mod technician;
pub mod treatments;

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

pub use cartridges::{CARTRIDGES_FILE, CartridgeClaim, CartridgeRegistry, CartridgeUse};
pub use jsonl::{BadLine, Loaded, Tail};
pub use limit_log::{
    LIMIT_CHANGES_FILE, LimitChangeRecord, ZONE_TABLE_FILE, append_limit_change, last_zone_table,
    read_limit_changes, store_zone_table,
};
pub use settings::{SETTINGS_FILE, StationSettings};
pub use technician::{
    LOCKOUT, MAX_WRONG_TRIES, PIN_MAX_DIGITS, PIN_MIN_DIGITS, PinCheck, PinError, PinRule,
    TECHNICIAN_PIN_FILE, TechnicianPin,
};
pub use treatments::{TREATMENTS_FILE, TreatmentHistory, TreatmentRecord, ZoneClaim};

/// The name of the data folder under the XDG data home.
const APP_DIR_NAME: &str = "punctum";

/// Permission bits of the data folder when this module creates it: owner only.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Permission bits of every file this module creates: owner read and write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// An error from a store. Every variant names the file (or folder) concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data folder could not be created or inspected.
    #[error("cannot create the data folder {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The data folder's path exists but is not a folder.
    #[error("the data folder {} exists but is not a folder", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A file could not be written or synced: the record is not stored.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said (disk full, permission denied, ...).
        source: io::Error,
    },
    /// Another program has held the file's lock too long: nothing was claimed.
    #[error(
        "cannot claim in {}: another program has held its lock for over {} ms",
        path.display(),
        waited.as_millis()
    )]
    Locked {
        /// The file.
        path: PathBuf,
        /// How long the station waited.
        waited: std::time::Duration,
    },
    /// A record could not be turned into JSON (it never reached the file).
    #[error("cannot encode a record for {}: {source}", path.display())]
    Encode {
        /// The file the record was meant for.
        path: PathBuf,
        /// What serde said.
        source: serde_json::Error,
    },
}

/// The station's data folder. Holding one means the folder exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    /// The folder itself.
    root: PathBuf,
}

impl DataDir {
    /// Opens the data folder at `root`, creating it and any missing parents (mode
    /// 0700) if it does not exist. An existing folder's permissions are left alone:
    /// the operator may have chosen them.
    pub fn open(root: impl Into<PathBuf>) -> Result<DataDir, StoreError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => return Ok(DataDir { root }),
            Ok(_) => return Err(StoreError::NotADirectory { path: root }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::CreateDir { path: root, source }),
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            builder.mode(DIR_MODE);
            if let Err(source) = builder.create(&root) {
                return Err(StoreError::CreateDir { path: root, source });
            }
            // The umask may have taken bits off the mode given at creation; set it
            // outright so the folder is exactly owner-only.
            if let Err(source) = fs::set_permissions(&root, fs::Permissions::from_mode(DIR_MODE)) {
                return Err(StoreError::CreateDir { path: root, source });
            }
        }
        #[cfg(not(unix))]
        if let Err(source) = builder.create(&root) {
            return Err(StoreError::CreateDir { path: root, source });
        }
        Ok(DataDir { root })
    }

    /// The default data folder per the XDG base directory spec: `$XDG_DATA_HOME/punctum`,
    /// else `$HOME/.local/share/punctum`. `None` when neither variable gives an
    /// absolute path (the spec says to ignore a relative `XDG_DATA_HOME`).
    #[must_use]
    pub fn default_root() -> Option<PathBuf> {
        default_root_from(
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// The folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of the file `name` inside the folder.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// [`DataDir::default_root`] with the environment passed in, so it can be tested
/// without changing the process environment (which other test threads read).
fn default_root_from(xdg_data_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(xdg) = xdg_data_home.filter(|p| p.is_absolute()) {
        return Some(xdg.join(APP_DIR_NAME));
    }
    home.filter(|p| p.is_absolute())
        .map(|home| home.join(".local").join("share").join(APP_DIR_NAME))
}

/// Options for opening a file this module may create: mode 0600 if it is new.
pub(crate) fn create_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options
}

/// Syncs the folder holding `path`, so a file just created or renamed into it is
/// still there after a power cut (syncing the file alone does not record its name).
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    // An empty parent means a bare relative file name: the current folder.
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    #[cfg(unix)]
    {
        let synced = fs::File::open(parent).and_then(|dir| dir.sync_all());
        if let Err(source) = synced {
            return Err(StoreError::Write {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    // Other systems cannot open a folder as a file; their file sync has to do.
    #[cfg(not(unix))]
    let _ = parent;
    Ok(())
}

/// Replaces the file at `path` with `bytes` atomically: they are written to a
/// temporary file of this process's own (`.<name>.<pid>.tmp`, a fresh file, mode 0600,
/// in the same folder so the rename cannot cross file systems; another station
/// sharing the folder writes its own), synced, renamed over `path`, and the folder
/// synced. After a crash `path` holds either the old content or the new, never half.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp_path = temp_path_for(path);
    let temp_path = temp_path.as_path();
    let written = write_synced(temp_path, bytes).and_then(|()| {
        fs::rename(temp_path, path).map_err(|source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        })
    });
    if let Err(e) = written {
        // The write already failed and that error is what the caller needs; a
        // leftover temporary file is harmless and is replaced on the next store.
        let _ = fs::remove_file(temp_path);
        return Err(e);
    }
    sync_parent(path)
}

/// This process's temporary file for replacing `path`: `.<name>.<pid>.tmp` beside it.
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to a fresh file at `path` (mode 0600) and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let write_error = |source: io::Error| StoreError::Write {
        path: PathBuf::from(path),
        source,
    };
    // A temporary file left by a crash may carry other permissions; start afresh so
    // the mode given at creation applies.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_error(e)),
    }
    let mut file = create_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the store tests.

    use std::fs;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::{Path, PathBuf};

    /// The permission bits of `path`.
    pub(crate) fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("fs").permissions().mode() & 0o777
    }

    /// Makes writes into the folder `dir` fail, for root too, and puts things back
    /// when dropped so the temporary folder can be removed.
    ///
    /// As a normal user the folder and the files in it are made read-only (0500 and
    /// 0400: a read-only folder alone still lets its files be appended to). Root ignores permission
    /// bits, so when a probe write still succeeds the folder is moved aside and a
    /// regular file put in its place: every path inside it then has a regular file
    /// as its parent, which fails for anyone.
    pub(crate) struct Unwritable {
        dir: PathBuf,
        moved_to: Option<PathBuf>,
    }

    impl Unwritable {
        pub(crate) fn new(dir: &Path) -> Unwritable {
            set_file_modes(dir, 0o400);
            fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).expect("fs");
            let probe = dir.join("probe");
            let probe_written = fs::File::create(&probe).is_ok();
            if !probe_written {
                return Unwritable {
                    dir: dir.to_path_buf(),
                    moved_to: None,
                };
            }
            fs::remove_file(&probe).expect("fs");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("fs");
            set_file_modes(dir, 0o600);
            let mut aside = dir.as_os_str().to_owned();
            aside.push(".aside");
            let aside = PathBuf::from(aside);
            fs::rename(dir, &aside).expect("fs");
            fs::File::create(dir)
                .expect("ok")
                .write_all(b"not a folder")
                .expect("ok");
            Unwritable {
                dir: dir.to_path_buf(),
                moved_to: Some(aside),
            }
        }
    }

    impl Drop for Unwritable {
        fn drop(&mut self) {
            if let Some(aside) = &self.moved_to {
                let _ = fs::remove_file(&self.dir);
                let _ = fs::rename(aside, &self.dir);
            } else {
                let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
                set_file_modes(&self.dir, 0o600);
            }
        }
    }

    /// Sets the mode of every regular file directly in `dir`.
    fn set_file_modes(dir: &Path, mode: u32) {
        for entry in fs::read_dir(dir).expect("fs").flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::mode_of;
    use super::*;

    #[test]
    fn open_creates_missing_folder_and_parents_owner_only() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("a").join("b").join("punctum");
        let dir = DataDir::open(&root).expect("data dir");
        assert!(root.is_dir());
        assert_eq!(dir.root(), root);
        assert_eq!(mode_of(&root), 0o700);
        assert_eq!(dir.path("x.jsonl"), root.join("x.jsonl"));
    }

    #[test]
    fn open_leaves_an_existing_folder_as_it_is() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("data");
        fs::create_dir(&root).expect("fs");
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).expect("fs");
        }
        DataDir::open(&root).expect("data dir");
        assert_eq!(mode_of(&root), 0o750);
    }

    #[test]
    fn open_refuses_a_regular_file() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("data");
        fs::write(&root, b"x").expect("fs");
        let err = DataDir::open(&root).expect_err("should fail");
        assert!(matches!(err, StoreError::NotADirectory { .. }), "{err}");
        assert!(err.to_string().contains(&*root.to_string_lossy()));
    }

    #[test]
    fn open_under_a_regular_file_fails_naming_the_folder() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = tmp.path().join("file");
        fs::write(&file, b"x").expect("fs");
        let root = file.join("punctum");
        let err = DataDir::open(&root).expect_err("should fail");
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains(&*root.to_string_lossy()));
    }

    #[test]
    fn default_root_follows_xdg() {
        let check = |xdg: Option<&str>, home: Option<&str>, expected: Option<&str>| {
            assert_eq!(
                default_root_from(xdg.map(PathBuf::from), home.map(PathBuf::from)),
                expected.map(PathBuf::from),
                "XDG_DATA_HOME={xdg:?} HOME={home:?}"
            );
        };
        check(Some("/x/data"), Some("/home/u"), Some("/x/data/punctum"));
        check(None, Some("/home/u"), Some("/home/u/.local/share/punctum"));
        check(
            Some(""),
            Some("/home/u"),
            Some("/home/u/.local/share/punctum"),
        );
        check(
            Some("rel"),
            Some("/home/u"),
            Some("/home/u/.local/share/punctum"),
        );
        check(None, None, None);
        check(None, Some(""), None);
    }
}
