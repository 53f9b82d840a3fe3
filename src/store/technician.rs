//! The technician PIN (`technician-pin.json`): the lock on technician mode, where
//! pens are calibrated. Operators never get past it.
//!
//! The PIN is set on first use ([`TechnicianPin::set`], when [`TechnicianPin::load`]
//! finds no file) and afterwards only changed by someone who knows it
//! ([`TechnicianPin::change`]). The file holds a salted Argon2id hash as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), who set the PIN and when; the
//! PIN itself is never written anywhere, and neither it nor the hash appears in an
//! error message or in `Debug` output.
//!
//! # PIN rules
//! 4 to 12 ASCII digits ([`PIN_MIN_DIGITS`], [`PIN_MAX_DIGITS`]): a pen-side keypad
//! and a touch screen both have digits. Refused as trivially guessed: all digits the
//! same (`0000`, `77777`) and runs of consecutive digits up or down, counting 9 to 0 as
//! consecutive (`1234`, `9876`, `7890`). See [`PinRule`].
//!
//! # Guessing
//! After [`MAX_WRONG_TRIES`] wrong PINs in a row every try is refused, right or wrong,
//! for [`LOCKOUT`]; then the count starts again. The count is kept in memory only, so
//! restarting the station resets it. That matters little: whoever can restart the
//! station runs as the user who owns the data folder, and could as well delete this
//! file and set a new PIN (the reset path for a forgotten PIN). The PIN guards the
//! station's screen, not the account.
//!
//! For the same reason the hash is as private as the PIN would be: 10 000 four-digit
//! PINs take minutes to try offline against a copied hash. Mode 0600 is what keeps it
//! private; a longer PIN is what makes a copied hash expensive.
//!
//! # A damaged file
//! A file that cannot be read or parsed is an error ([`PinError::Corrupt`],
//! [`PinError::Store`]), never "no PIN": treating it as unset would let anyone set a
//! new one. The station keeps technician mode locked until someone with access to the
//! data folder restores or removes the file.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::{ARGON2ID_IDENT, Argon2, Params, PasswordHasher as _, PasswordVerifier as _};
use jiff::Timestamp;

use super::{DataDir, StoreError, replace_file};

/// The PIN's file in the data folder.
pub const TECHNICIAN_PIN_FILE: &str = "technician-pin.json";

/// The fewest digits a PIN may have.
pub const PIN_MIN_DIGITS: usize = 4;

/// The most digits a PIN may have.
pub const PIN_MAX_DIGITS: usize = 12;

/// Wrong PINs in a row before tries are refused for [`LOCKOUT`].
pub const MAX_WRONG_TRIES: u32 = 5;

/// How long tries are refused after [`MAX_WRONG_TRIES`] wrong PINs.
pub const LOCKOUT: Duration = Duration::from_mins(1);

/// Upper bounds on the Argon2 costs accepted from the file. The station writes the
/// crate's defaults (19 MiB, 2 passes, 1 lane); a damaged file asking for terabytes
/// would otherwise abort the station on its first verify.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// See [`MAX_MEMORY_KIB`].
const MAX_PASSES: u32 = 16;
/// See [`MAX_MEMORY_KIB`].
const MAX_LANES: u32 = 16;

/// Why a PIN is not accepted as a new PIN. The messages never repeat the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinRule {
    /// Something other than the digits 0 to 9.
    #[error("a PIN is digits 0-9 only")]
    NotDigits,
    /// Fewer than [`PIN_MIN_DIGITS`] digits.
    #[error("too short: {digits} digits, at least {PIN_MIN_DIGITS} needed")]
    TooShort {
        /// How many digits were given.
        digits: usize,
    },
    /// More than [`PIN_MAX_DIGITS`] digits.
    #[error("too long: {digits} digits, at most {PIN_MAX_DIGITS} allowed")]
    TooLong {
        /// How many digits were given.
        digits: usize,
    },
    /// Every digit the same.
    #[error("all digits the same is too easy to guess")]
    AllSame,
    /// Consecutive digits up or down.
    #[error("consecutive digits (like 1234 or 9876) are too easy to guess")]
    Sequence,
}

/// An error from the technician PIN store. None of them holds the PIN or its hash.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The new PIN breaks a rule.
    #[error("the new PIN is refused: {0}")]
    Rule(#[from] PinRule),
    /// No technician was named as setting the PIN.
    #[error("the technician setting the PIN must be named")]
    NoTechnician,
    /// [`TechnicianPin::set`] found a PIN already set (or a damaged PIN file).
    #[error(
        "a technician PIN is already set in {}; it can only be changed with the current PIN",
        path.display()
    )]
    AlreadySet {
        /// The PIN file.
        path: PathBuf,
    },
    /// The current PIN given to [`TechnicianPin::change`] is wrong.
    #[error("the current PIN is wrong ({tries_left} tries left before a pause)")]
    WrongPin {
        /// Tries left before [`LOCKOUT`]; 0 means the pause has begun.
        tries_left: u32,
    },
    /// Too many wrong PINs: tries are refused for now.
    #[error("too many wrong PINs: try again in {retry_after_secs} s")]
    LockedOut {
        /// Whole seconds until tries are accepted again (rounded up).
        retry_after_secs: u64,
    },
    /// The PIN file is there but cannot be understood.
    #[error(
        "the technician PIN file {} is damaged ({reason}); technician mode stays locked \
         until it is restored or removed by someone with access to the data folder",
        path.display()
    )]
    Corrupt {
        /// The PIN file.
        path: PathBuf,
        /// What is wrong with it, without quoting its content.
        reason: String,
    },
    /// The hash could not be computed (the system's random source failed).
    #[error("cannot hash the PIN: {0}")]
    Hash(String),
    /// The file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of one PIN try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// The PIN is right; the wrong-try count is back to 0.
    Accepted,
    /// The PIN is wrong.
    Wrong {
        /// Tries left before [`LOCKOUT`]; 0 means the pause has begun.
        tries_left: u32,
    },
    /// Refused without looking at the PIN: too many wrong tries a moment ago.
    LockedOut {
        /// How long until tries are accepted again.
        retry_after: Duration,
    },
}

/// What the file holds. No `Debug`: it carries the hash.
#[derive(serde::Serialize, serde::Deserialize)]
struct PinFile {
    /// The Argon2id PHC string.
    phc: String,
    /// The technician who set the PIN.
    set_by: String,
    /// When.
    set_at: Timestamp,
}

/// The wrong-try count behind the lockout.
#[derive(Debug, Default)]
struct Guard {
    /// Wrong PINs in a row since the last right one or the last lockout's end.
    wrong_tries: u32,
    /// Tries are refused before this instant.
    locked_until: Option<Instant>,
}

/// The technician PIN as stored, with the in-memory count of wrong tries. Shareable
/// between threads: tries are serialised, so guesses cannot race past the count.
pub struct TechnicianPin {
    /// The parsed PHC string.
    hash: PasswordHash,
    /// The technician who set the PIN.
    set_by: String,
    /// When.
    set_at: Timestamp,
    /// The lockout's state.
    guard: Mutex<Guard>,
}

impl fmt::Debug for TechnicianPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the hash of a short PIN is nearly as good as the PIN to whoever
        // reads a log, so it is left out.
        let guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("TechnicianPin")
            .field("hash", &"<redacted>")
            .field("set_by", &self.set_by)
            .field("set_at", &self.set_at)
            .field("wrong_tries", &guard.wrong_tries)
            .field("locked_until", &guard.locked_until)
            .finish()
    }
}

impl TechnicianPin {
    /// Reads the PIN from `dir`. `None` means no PIN has been set: first use.
    ///
    /// A file that cannot be read is [`PinError::Store`], one that cannot be parsed
    /// (not JSON of the right shape, not an Argon2id PHC string, costs beyond
    /// reason) is [`PinError::Corrupt`]; neither is ever taken as "no PIN".
    pub fn load(dir: &DataDir) -> Result<Option<TechnicianPin>, PinError> {
        let path = dir.path(TECHNICIAN_PIN_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }.into()),
        };
        let corrupt = |reason: String| PinError::Corrupt {
            path: path.clone(),
            reason,
        };
        // serde's own message may quote the file (the hash), so only its kind and
        // place are reported.
        let file: PinFile = serde_json::from_slice(&bytes).map_err(|e| {
            let what = if e.is_data() {
                "JSON of the wrong shape"
            } else {
                "not valid JSON"
            };
            corrupt(format!("{what} at line {} column {}", e.line(), e.column()))
        })?;
        let hash = parse_hash(&file.phc).map_err(|reason| corrupt(reason.to_owned()))?;
        Ok(Some(TechnicianPin::new(hash, file.set_by, file.set_at)))
    }

    /// Sets the PIN on first use: checks it against the [rules](PinRule), hashes it
    /// with a fresh random salt and writes the file atomically (mode 0600).
    ///
    /// Refused with [`PinError::AlreadySet`] when the file exists at all, even
    /// damaged: only [`change`](Self::change) replaces a PIN. (One station process
    /// uses a data folder at a time, so nothing else can create the file between the
    /// check and the write.)
    pub fn set(dir: &DataDir, pin: &str, set_by: &str) -> Result<TechnicianPin, PinError> {
        let path = dir.path(TECHNICIAN_PIN_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => return Err(PinError::AlreadySet { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Read { path, source }.into()),
        }
        write_new(dir, pin, set_by)
    }

    /// Replaces the PIN with `new_pin`, set by `changed_by`, after checking `old_pin`
    /// (which counts towards the lockout like any try). The new PIN is checked against
    /// the rules first, so a mistyped new PIN does not cost a try. On any error the
    /// file is left as it was. The returned value replaces `self`.
    pub fn change(
        &self,
        dir: &DataDir,
        old_pin: &str,
        new_pin: &str,
        changed_by: &str,
    ) -> Result<TechnicianPin, PinError> {
        self.change_at(dir, old_pin, new_pin, changed_by, Instant::now())
    }

    /// [`change`](Self::change) with the clock passed in.
    pub fn change_at(
        &self,
        dir: &DataDir,
        old_pin: &str,
        new_pin: &str,
        changed_by: &str,
        now: Instant,
    ) -> Result<TechnicianPin, PinError> {
        check_rules(new_pin)?;
        check_technician(changed_by)?;
        match self.verify_at(old_pin, now) {
            PinCheck::Accepted => write_new(dir, new_pin, changed_by),
            PinCheck::Wrong { tries_left } => Err(PinError::WrongPin { tries_left }),
            PinCheck::LockedOut { retry_after } => Err(PinError::LockedOut {
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            }),
        }
    }

    /// Whether `pin` is the PIN (and tries are not locked out just now).
    #[must_use]
    pub fn verify(&self, pin: &str) -> bool {
        self.check(pin) == PinCheck::Accepted
    }

    /// Tries `pin` now, saying why a refused try was refused.
    #[must_use]
    pub fn check(&self, pin: &str) -> PinCheck {
        self.verify_at(pin, Instant::now())
    }

    /// Tries `pin` at `now` (the clock passed in so the lockout can be tested).
    ///
    /// The comparison is Argon2's, constant-time in the hash. One try costs one
    /// Argon2id hash with the crate's defaults (19 MiB, 2 passes): about 20 ms on the
    /// 2-core build box, release and debug alike since dependencies are optimised in
    /// debug builds too (`cargo bench --bench technician_pin`). Short enough to run on
    /// the UI thread. During a lockout nothing is hashed.
    #[must_use]
    pub fn verify_at(&self, pin: &str, now: Instant) -> PinCheck {
        // Held across the hash: concurrent tries queue up and each one is counted.
        let mut guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = guard.locked_until {
            if now < until {
                return PinCheck::LockedOut {
                    retry_after: until.saturating_duration_since(now),
                };
            }
            *guard = Guard::default();
        }
        if Argon2::default()
            .verify_password(pin.as_bytes(), &self.hash)
            .is_ok()
        {
            guard.wrong_tries = 0;
            return PinCheck::Accepted;
        }
        guard.wrong_tries += 1;
        if guard.wrong_tries >= MAX_WRONG_TRIES {
            guard.locked_until = Some(now + LOCKOUT);
        }
        PinCheck::Wrong {
            tries_left: MAX_WRONG_TRIES.saturating_sub(guard.wrong_tries),
        }
    }

    /// The stored PHC string, for moving the PIN into an account
    /// (`store::accounts`) unchanged: the technician keeps the same PIN.
    pub(crate) fn phc(&self) -> String {
        self.hash.to_string()
    }

    /// The technician who set the PIN.
    #[must_use]
    pub fn set_by(&self) -> &str {
        &self.set_by
    }

    /// When the PIN was set.
    #[must_use]
    pub fn set_at(&self) -> Timestamp {
        self.set_at
    }

    /// A PIN as read or just written, with no wrong tries yet.
    fn new(hash: PasswordHash, set_by: String, set_at: Timestamp) -> TechnicianPin {
        TechnicianPin {
            hash,
            set_by,
            set_at,
            guard: Mutex::new(Guard::default()),
        }
    }
}

/// Checks `pin` against the [rules](PinRule).
pub fn check_rules(pin: &str) -> Result<(), PinRule> {
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PinRule::NotDigits);
    }
    let digits: Vec<u8> = pin.bytes().map(|b| b - b'0').collect();
    if digits.len() < PIN_MIN_DIGITS {
        return Err(PinRule::TooShort {
            digits: digits.len(),
        });
    }
    if digits.len() > PIN_MAX_DIGITS {
        return Err(PinRule::TooLong {
            digits: digits.len(),
        });
    }
    let steps = || digits.windows(2).map(|w| (w[1] + 10 - w[0]) % 10);
    if steps().all(|step| step == 0) {
        return Err(PinRule::AllSame);
    }
    // Up by one each digit, or down by one (9 after 0 counts as down: step 9 mod 10).
    if steps().all(|step| step == 1) || steps().all(|step| step == 9) {
        return Err(PinRule::Sequence);
    }
    Ok(())
}

/// Refuses a blank technician name: the file says who set the PIN.
fn check_technician(set_by: &str) -> Result<(), PinError> {
    if set_by.trim().is_empty() {
        return Err(PinError::NoTechnician);
    }
    Ok(())
}

/// Checks, hashes and writes `pin` as the PIN, replacing any file atomically.
fn write_new(dir: &DataDir, pin: &str, set_by: &str) -> Result<TechnicianPin, PinError> {
    check_rules(pin)?;
    check_technician(set_by)?;
    // `hash_password` draws a 16-byte salt from the OS (getrandom).
    let hash = Argon2::default()
        .hash_password(pin.as_bytes())
        .map_err(|e| PinError::Hash(e.to_string()))?;
    let set_at = Timestamp::now();
    let file = PinFile {
        phc: hash.to_string(),
        set_by: set_by.to_owned(),
        set_at,
    };
    let path = dir.path(TECHNICIAN_PIN_FILE);
    let mut json = serde_json::to_vec_pretty(&file).map_err(|source| StoreError::Encode {
        path: path.clone(),
        source,
    })?;
    json.push(b'\n');
    replace_file(&path, &json)?;
    Ok(TechnicianPin::new(hash, set_by.to_owned(), set_at))
}

/// Parses a stored PHC string, accepting only Argon2id with costs within reason.
pub(crate) fn parse_hash(phc: &str) -> Result<PasswordHash, &'static str> {
    let hash = PasswordHash::new(phc).map_err(|_| "the hash is not a PHC string")?;
    if hash.algorithm != ARGON2ID_IDENT {
        return Err("the hash is not Argon2id");
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("the hash lacks its salt or its output");
    }
    let params = Params::try_from(&hash).map_err(|_| "the hash's Argon2 costs are invalid")?;
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_PASSES
        || params.p_cost() > MAX_LANES
    {
        return Err("the hash's Argon2 costs are beyond what the station writes");
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{Unwritable, mode_of};
    use super::*;

    /// A PIN long enough that its digits cannot turn up by chance in the file's
    /// base64 salt and hash.
    const PIN: &str = "482139570615";

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
        (tmp, dir)
    }

    fn stored_text(dir: &DataDir) -> String {
        fs::read_to_string(dir.path(TECHNICIAN_PIN_FILE)).expect("PIN file")
    }

    #[test]
    fn first_use_finds_no_pin() {
        let (_tmp, dir) = data_dir();
        assert!(TechnicianPin::load(&dir).expect("load").is_none());
    }

    #[test]
    fn set_then_load_verifies_the_right_pin_only() {
        let (_tmp, dir) = data_dir();
        let before = Timestamp::now();
        let set = TechnicianPin::set(&dir, PIN, "tech-07").expect("set");
        assert!(set.verify(PIN));

        let loaded = TechnicianPin::load(&dir).expect("load").expect("a PIN");
        assert_eq!(loaded.set_by(), "tech-07");
        assert_eq!(loaded.set_at(), set.set_at());
        assert!(loaded.set_at() >= before && loaded.set_at() <= Timestamp::now());
        assert_eq!(
            loaded.check("482139570614"),
            PinCheck::Wrong {
                tries_left: MAX_WRONG_TRIES - 1
            }
        );
        assert!(!loaded.verify(""));
        assert!(loaded.verify(PIN));
    }

    #[test]
    fn the_file_holds_a_salted_argon2id_hash_not_the_pin_and_is_owner_only() {
        let (_tmp, dir) = data_dir();
        TechnicianPin::set(&dir, PIN, "tech-07").expect("set");
        let path = dir.path(TECHNICIAN_PIN_FILE);
        assert_eq!(mode_of(&path), 0o600);
        let text = stored_text(&dir);
        assert!(!text.contains(PIN), "{text}");
        let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let phc = file["phc"].as_str().expect("phc string");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(file["set_by"], "tech-07");
        // Nothing else in the folder holds it either, and no temporary file is left.
        let names: Vec<String> = fs::read_dir(dir.root())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![TECHNICIAN_PIN_FILE.to_owned()]);

        // A fresh salt each time: the same PIN set twice hashes differently.
        let (_tmp2, dir2) = data_dir();
        TechnicianPin::set(&dir2, PIN, "tech-07").expect("set");
        let phc2: serde_json::Value = serde_json::from_str(&stored_text(&dir2)).expect("JSON");
        assert_ne!(phc2["phc"].as_str().expect("phc string"), phc);
    }

    #[test]
    fn set_refuses_when_a_pin_exists_even_a_damaged_one() {
        let (_tmp, dir) = data_dir();
        TechnicianPin::set(&dir, "2580", "tech-07").expect("set");
        let before = stored_text(&dir);
        let err = TechnicianPin::set(&dir, "1397", "intruder").expect_err("should refuse");
        assert!(matches!(err, PinError::AlreadySet { .. }), "{err}");
        assert!(err.to_string().contains(TECHNICIAN_PIN_FILE), "{err}");
        assert_eq!(stored_text(&dir), before);

        fs::write(dir.path(TECHNICIAN_PIN_FILE), "garbage").expect("fs");
        let err = TechnicianPin::set(&dir, "1397", "intruder").expect_err("should refuse");
        assert!(matches!(err, PinError::AlreadySet { .. }), "{err}");
        assert_eq!(stored_text(&dir), "garbage");
    }

    #[test]
    fn change_needs_the_old_pin_and_leaves_the_file_alone_without_it() {
        let (_tmp, dir) = data_dir();
        let pin = TechnicianPin::set(&dir, "2580", "tech-07").expect("set");
        let before = stored_text(&dir);

        let err = pin
            .change(&dir, "2581", "739146", "tech-09")
            .expect_err("wrong old PIN");
        assert!(
            matches!(err, PinError::WrongPin { tries_left } if tries_left == MAX_WRONG_TRIES - 1),
            "{err}"
        );
        assert_eq!(stored_text(&dir), before);

        // A new PIN that breaks a rule is refused before the old one is tried.
        let err = pin
            .change(&dir, "2580", "1111", "tech-09")
            .expect_err("weak new PIN");
        assert!(matches!(err, PinError::Rule(PinRule::AllSame)), "{err}");
        assert_eq!(stored_text(&dir), before);

        let changed = pin
            .change(&dir, "2580", "739146", "tech-09")
            .expect("change");
        assert_eq!(changed.set_by(), "tech-09");
        assert_eq!(mode_of(&dir.path(TECHNICIAN_PIN_FILE)), 0o600);
        let loaded = TechnicianPin::load(&dir).expect("load").expect("a PIN");
        assert_eq!(loaded.set_by(), "tech-09");
        assert!(!loaded.verify("2580"));
        assert!(loaded.verify("739146"));
    }

    #[test]
    fn change_is_refused_during_a_lockout() {
        let (_tmp, dir) = data_dir();
        let pin = TechnicianPin::set(&dir, "2580", "tech-07").expect("set");
        let before = stored_text(&dir);
        let t0 = Instant::now();
        for _ in 0..MAX_WRONG_TRIES {
            assert!(matches!(pin.verify_at("0852", t0), PinCheck::Wrong { .. }));
        }
        let err = pin
            .change_at(
                &dir,
                "2580",
                "739146",
                "tech-07",
                t0 + Duration::from_millis(500),
            )
            .expect_err("locked");
        assert!(
            matches!(
                err,
                PinError::LockedOut {
                    retry_after_secs: 60
                }
            ),
            "{err}"
        );
        assert_eq!(stored_text(&dir), before);
    }

    #[test]
    fn pin_rules() {
        let cases: [(&str, Result<(), PinRule>); 17] = [
            ("2580", Ok(())),
            ("739146", Ok(())),
            ("482139570615", Ok(())),
            ("1233", Ok(())),
            ("258", Err(PinRule::TooShort { digits: 3 })),
            ("", Err(PinRule::TooShort { digits: 0 })),
            ("4821395706152", Err(PinRule::TooLong { digits: 13 })),
            ("12a4", Err(PinRule::NotDigits)),
            (" 2580", Err(PinRule::NotDigits)),
            ("-258", Err(PinRule::NotDigits)),
            // Non-ASCII digits (Arabic-Indic) are not 0-9.
            (
                "\u{661}\u{662}\u{663}\u{664}\u{665}",
                Err(PinRule::NotDigits),
            ),
            ("0000", Err(PinRule::AllSame)),
            ("777777777777", Err(PinRule::AllSame)),
            ("1234", Err(PinRule::Sequence)),
            ("0123456789", Err(PinRule::Sequence)),
            ("9876", Err(PinRule::Sequence)),
            ("7890", Err(PinRule::Sequence)),
        ];
        for (pin, expected) in cases {
            assert_eq!(check_rules(pin), expected, "{pin:?}");
            if let Err(rule) = expected {
                // The reason is told, and the PIN is not repeated in it (the
                // sequence rule's message names 1234 and 9876 as examples).
                let message = rule.to_string();
                assert!(!message.is_empty());
                if pin.len() >= 4 && rule != PinRule::Sequence {
                    assert!(!message.contains(pin), "{message}");
                }
            }
        }
        assert_eq!(check_rules("3210"), Err(PinRule::Sequence));
    }

    #[test]
    fn set_refuses_a_rule_breaking_pin_or_a_blank_technician_and_writes_nothing() {
        let (_tmp, dir) = data_dir();
        let err = TechnicianPin::set(&dir, "1234", "tech-07").expect_err("weak");
        assert!(matches!(err, PinError::Rule(PinRule::Sequence)), "{err}");
        assert!(err.to_string().contains("consecutive"), "{err}");
        let err = TechnicianPin::set(&dir, "2580", "  ").expect_err("no technician");
        assert!(matches!(err, PinError::NoTechnician), "{err}");
        assert!(TechnicianPin::load(&dir).expect("load").is_none());
    }

    #[test]
    fn five_wrong_tries_lock_for_a_minute_then_tries_resume() {
        let (_tmp, dir) = data_dir();
        let pin = TechnicianPin::set(&dir, "2580", "tech-07").expect("set");
        let t0 = Instant::now();
        for tries_left in (0..MAX_WRONG_TRIES).rev() {
            assert_eq!(pin.verify_at("0852", t0), PinCheck::Wrong { tries_left });
        }
        // Locked: even the right PIN is refused, without being hashed.
        assert_eq!(
            pin.verify_at("2580", t0),
            PinCheck::LockedOut {
                retry_after: LOCKOUT
            }
        );
        let almost = t0 + LOCKOUT.saturating_sub(Duration::from_millis(1));
        assert_eq!(
            pin.verify_at("2580", almost),
            PinCheck::LockedOut {
                retry_after: Duration::from_millis(1)
            }
        );
        // After the pause the count starts again.
        assert_eq!(
            pin.verify_at("0852", t0 + LOCKOUT),
            PinCheck::Wrong {
                tries_left: MAX_WRONG_TRIES - 1
            }
        );
        assert_eq!(pin.verify_at("2580", t0 + LOCKOUT), PinCheck::Accepted);
    }

    #[test]
    fn a_right_pin_resets_the_wrong_try_count() {
        let (_tmp, dir) = data_dir();
        let pin = TechnicianPin::set(&dir, "2580", "tech-07").expect("set");
        let t0 = Instant::now();
        for _ in 1..MAX_WRONG_TRIES {
            assert!(matches!(pin.verify_at("0852", t0), PinCheck::Wrong { .. }));
        }
        assert_eq!(pin.verify_at("2580", t0), PinCheck::Accepted);
        assert_eq!(
            pin.verify_at("0852", t0),
            PinCheck::Wrong {
                tries_left: MAX_WRONG_TRIES - 1
            }
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_never_no_pin() {
        let (_tmp, dir) = data_dir();
        TechnicianPin::set(&dir, PIN, "tech-07").expect("set");
        let good = stored_text(&dir);
        let phc = serde_json::from_str::<serde_json::Value>(&good).expect("JSON")["phc"]
            .as_str()
            .expect("phc")
            .to_owned();
        let cases = [
            (String::new(), "not valid JSON"),
            (good[..good.len() / 2].to_owned(), "not valid JSON"),
            (
                format!(
                    "{{\"phc\": 7, \"set_by\": \"x\", \"set_at\": \"{}\"}}",
                    Timestamp::now()
                ),
                "wrong shape",
            ),
            (good.replace("\"set_by\"", "\"who\""), "wrong shape"),
            (
                good.replace(&phc, "$argon2id$not-a-hash"),
                "not a PHC string",
            ),
            (good.replace("$argon2id$", "$argon2i$"), "not Argon2id"),
            (good.replace("m=19456", "m=4000000"), "beyond"),
            (good.replace("m=19456", "m=1"), "costs are invalid"),
        ];
        for (text, reason) in cases {
            fs::write(dir.path(TECHNICIAN_PIN_FILE), &text).expect("fs");
            let err = TechnicianPin::load(&dir).expect_err("damaged");
            assert!(matches!(err, PinError::Corrupt { .. }), "{err}");
            let message = err.to_string();
            assert!(message.contains(TECHNICIAN_PIN_FILE), "{message}");
            assert!(message.contains("damaged"), "{message}");
            assert!(message.contains(reason), "{message}");
            // The hash is not quoted back.
            assert!(!message.contains("argon2"), "{message}");
        }

        fs::write(dir.path(TECHNICIAN_PIN_FILE), b"\xff\xfe").expect("fs");
        let err = TechnicianPin::load(&dir).expect_err("damaged");
        assert!(matches!(err, PinError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let (_tmp, dir) = data_dir();
        // A folder where the file should be cannot be read as a file, for root too.
        fs::create_dir(dir.path(TECHNICIAN_PIN_FILE)).expect("fs");
        let err = TechnicianPin::load(&dir).expect_err("unreadable");
        assert!(
            matches!(err, PinError::Store(StoreError::Read { .. })),
            "{err}"
        );
        assert!(err.to_string().contains(TECHNICIAN_PIN_FILE), "{err}");
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_the_file() {
        let (_tmp, dir) = data_dir();
        // Dropped before `_tmp`, so the folder is writable again for its removal.
        let guard = Unwritable::new(dir.root());
        let err = TechnicianPin::set(&dir, "2580", "tech-07").expect_err("unwritable");
        assert!(matches!(err, PinError::Store(_)), "{err}");
        assert!(err.to_string().contains(TECHNICIAN_PIN_FILE), "{err}");
        drop(guard);
        assert!(TechnicianPin::load(&dir).expect("load").is_none());
    }

    #[test]
    fn debug_output_holds_neither_the_pin_nor_the_hash() {
        let (_tmp, dir) = data_dir();
        let pin = TechnicianPin::set(&dir, PIN, "tech-07").expect("set");
        let text = stored_text(&dir);
        let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let phc = file["phc"].as_str().expect("phc");
        let salt_and_hash = phc.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let debug = format!("{pin:?} {pin:#?}");
        assert!(debug.contains("tech-07"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains(PIN), "{debug}");
        assert!(!debug.contains("argon2"), "{debug}");
        for part in salt_and_hash {
            assert!(!debug.contains(part), "{debug}");
        }
    }
}
