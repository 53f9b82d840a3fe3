//! The audit trail (`audit.jsonl`): who did what at the station, append-only and
//! hash-chained, so that a changed, removed or reordered line is found
//! ([`verify`]). Modelled on 21 CFR 11.10(e): secure, computer-generated,
//! time-stamped, never obscuring what was recorded before.
//!
//! # The chain
//! Each line is one JSON object ([`AuditLine`]): a sequence number (`seq`, 1 for the
//! first line, one more for each line), the UTC time, the station and OS user, the
//! signed-in account (if any), the event's `kind` and its `detail`, and `prev`: the
//! SHA-256 (lower-case hex) of the previous line's bytes without its newline (64
//! zeros for the first line). `audit.head.json` holds the last line's `seq` and hash,
//! replaced after every append, so that a change to the last line, or lines cut off
//! the end, are found too.
//!
//! Lines are appended under the file's exclusive `flock` (several stations may share
//! the data folder): the last line is read, the new one chained to it, written and
//! synced, then the head replaced. A crash between the two writes leaves the head one
//! line behind: [`verify`] says so as a note, not as tampering.
//!
//! **Boundary:** the log says what happened; it decides nothing. Callers (the
//! accounts store, the station, the command-line tools) append their events.

use std::fmt;
use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{DataDir, StoreError, jsonl, replace_file};

/// The audit log's file in the data folder.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// The log's head: the last line's `seq` and hash.
pub const AUDIT_HEAD_FILE: &str = "audit.head.json";

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How much of the log's end is read to find its last line (a line is far shorter).
const TAIL_WINDOW_BYTES: u64 = 64 * 1024;

/// The most problems [`verify`] lists; beyond that it only counts them.
pub const MAX_PROBLEMS_LISTED: usize = 100;

/// What happened. Serialized in `snake_case` (`sign_in_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// The first admin account was created (the station's first start).
    FirstAdmin,
    /// The old technician PIN became an account.
    AccountMigrated,
    /// An account signed in.
    SignIn,
    /// A sign-in was refused (wrong secret, unknown or disabled account, lockout).
    SignInFailed,
    /// Too many wrong secrets: the account's sign-ins are refused for a while.
    LockedOut,
    /// The account signed out.
    SignOut,
    /// The station locked (idle or on demand).
    Lock,
    /// The same account unlocked the station.
    Unlock,
    /// Another practitioner took over the station (mid-session: also in the record).
    HandOver,
    /// An admin created an account.
    AccountCreated,
    /// An admin disabled an account.
    AccountDisabled,
    /// An admin changed an account's roles.
    AccountRoles,
    /// An admin reset an account's PIN or password.
    SecretReset,
    /// A zone's protocol limit changed.
    ZoneLimitChanged,
    /// The station's settings changed.
    SettingsChanged,
    /// Technician mode on or off.
    TechnicianMode,
    /// A pen calibration ended (certificate written, or failed).
    Calibration,
    /// A session record was signed.
    RecordSigned,
    /// Data left the station (a report as CSV or JSON, hand-outs).
    Export,
    /// A lot was looked up (which clients a lot reached).
    LotQuery,
    /// A client's file was opened.
    ClientFile,
    /// The clinic store could not check a new cartridge; the operator confirmed it
    /// came from a sealed pack.
    SealedPackConfirmed,
    /// A cartridge ran in two sessions: an offline claim met another station's.
    ClaimConflict,
    /// An account was made as the clinic store holds it (changed at another station).
    AccountSynced,
    /// A kind a later version wrote: kept and shown, never dropped.
    #[serde(other)]
    Other,
}

impl AuditKind {
    /// Every kind, for help texts and filters.
    pub const ALL: [AuditKind; 24] = [
        Self::FirstAdmin,
        Self::AccountMigrated,
        Self::SignIn,
        Self::SignInFailed,
        Self::LockedOut,
        Self::SignOut,
        Self::Lock,
        Self::Unlock,
        Self::HandOver,
        Self::AccountCreated,
        Self::AccountDisabled,
        Self::AccountRoles,
        Self::SecretReset,
        Self::ZoneLimitChanged,
        Self::SettingsChanged,
        Self::TechnicianMode,
        Self::Calibration,
        Self::RecordSigned,
        Self::Export,
        Self::LotQuery,
        Self::ClientFile,
        Self::SealedPackConfirmed,
        Self::ClaimConflict,
        Self::AccountSynced,
    ];

    /// The name in the file (`sign_in_failed`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstAdmin => "first_admin",
            Self::AccountMigrated => "account_migrated",
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::LockedOut => "locked_out",
            Self::SignOut => "sign_out",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::HandOver => "hand_over",
            Self::AccountCreated => "account_created",
            Self::AccountDisabled => "account_disabled",
            Self::AccountRoles => "account_roles",
            Self::SecretReset => "secret_reset",
            Self::ZoneLimitChanged => "zone_limit_changed",
            Self::SettingsChanged => "settings_changed",
            Self::TechnicianMode => "technician_mode",
            Self::Calibration => "calibration",
            Self::RecordSigned => "record_signed",
            Self::Export => "export",
            Self::LotQuery => "lot_query",
            Self::ClientFile => "client_file",
            Self::SealedPackConfirmed => "sealed_pack_confirmed",
            Self::ClaimConflict => "claim_conflict",
            Self::AccountSynced => "account_synced",
            Self::Other => "other",
        }
    }

    /// The kind named `name` (as in the file), if there is one.
    #[must_use]
    pub fn parse(name: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append: what happened, who was signed in, the particulars.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// The account signed in when it happened (for a sign-in: the account named).
    pub account: Option<String>,
    /// The particulars: plain strings and numbers, never a secret.
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event with no particulars yet.
    #[must_use]
    pub fn new(kind: AuditKind, account: Option<&str>) -> AuditEvent {
        AuditEvent {
            kind,
            account: account.map(str::to_owned),
            detail: serde_json::Map::new(),
        }
    }

    /// Adds a particular.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> AuditEvent {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// One line of the log, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    /// 1 for the first line, one more for each line after it.
    pub seq: u64,
    /// When, UTC.
    pub at: Timestamp,
    /// The station's host name.
    pub station: String,
    /// The operating-system user running the station.
    pub os_user: String,
    /// The signed-in account, if any.
    pub account: Option<String>,
    /// What happened.
    pub kind: AuditKind,
    /// The particulars.
    #[serde(default)]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// SHA-256 (hex) of the previous line's bytes without its newline.
    pub prev: String,
}

/// What `audit.head.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// The last line's `seq`.
    seq: u64,
    /// SHA-256 (hex) of the last line's bytes without its newline.
    sha256: String,
}

/// The audit log of one data folder. Cheap to clone; every append opens the file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    /// `audit.jsonl`.
    path: PathBuf,
    /// `audit.head.json`.
    head: PathBuf,
    /// This machine's name, for the `station` field.
    station: String,
    /// The OS user, for the `os_user` field.
    os_user: String,
}

impl AuditLog {
    /// The log of `dir` (the file is created by the first append).
    #[must_use]
    pub fn of(dir: &DataDir) -> AuditLog {
        AuditLog {
            path: dir.path(AUDIT_FILE),
            head: dir.path(AUDIT_HEAD_FILE),
            station: host_name(),
            os_user: std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
        }
    }

    /// The log's file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` at `at`, chained to the last line, synced to disk, and moves
    /// the head to it. Returns the line as written.
    ///
    /// Errors: the file cannot be locked, read or written ([`StoreError`]); nothing is
    /// half-written except, on a full disk, a torn last line that the next append
    /// ends and [`verify`] reports.
    pub fn append_at(&self, event: AuditEvent, at: Timestamp) -> Result<AuditLine, StoreError> {
        let (mut file, _) = jsonl::open_locked(&self.path)?;
        let read_error = |source: io::Error| StoreError::Read {
            path: self.path.clone(),
            source,
        };
        let write_error = |source: io::Error| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        let tail = last_line(&mut file).map_err(read_error)?;
        let (last_seq, prev, torn) = match &tail {
            None => (self.head_seq().unwrap_or(0), GENESIS.to_owned(), false),
            Some(tail) => {
                let seq = tail.last_good_seq.or_else(|| self.head_seq()).unwrap_or(0);
                (seq, sha256_hex(&tail.bytes), !tail.ended)
            }
        };
        let line = AuditLine {
            seq: last_seq + 1,
            at,
            station: self.station.clone(),
            os_user: self.os_user.clone(),
            account: event.account,
            kind: event.kind,
            detail: event.detail,
            prev,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        let hash = sha256_hex(&bytes);
        bytes.push(b'\n');
        if torn {
            // A line cut short by a crash stays a line of its own (verify names it).
            bytes.insert(0, b'\n');
        }
        file.write_all(&bytes).map_err(write_error)?;
        file.sync_data().map_err(write_error)?;
        let head = Head {
            seq: line.seq,
            sha256: hash,
        };
        let json = serde_json::to_vec(&head).map_err(|source| StoreError::Encode {
            path: self.head.clone(),
            source,
        })?;
        replace_file(&self.head, &json)?;
        drop(file);
        Ok(line)
    }

    /// [`append_at`](Self::append_at) now.
    pub fn append(&self, event: AuditEvent) -> Result<AuditLine, StoreError> {
        self.append_at(event, Timestamp::now())
    }

    /// The head's `seq`, if the head file can be read.
    fn head_seq(&self) -> Option<u64> {
        read_head(&self.head).ok().flatten().map(|h| h.seq)
    }
}

/// The last line of the log as read from its end.
struct Tail {
    /// Its bytes, without the newline.
    bytes: Vec<u8>,
    /// It ends with a newline (else a write was cut short).
    ended: bool,
    /// The `seq` of the last line in the window that parses.
    last_good_seq: Option<u64>,
}

/// Reads the end of the log: its last line and the last `seq` that parses.
fn last_line(file: &mut fs::File) -> io::Result<Option<Tail>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(TAIL_WINDOW_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut window = Vec::new();
    file.read_to_end(&mut window)?;
    let ended = window.last() == Some(&b'\n');
    let body = if ended {
        &window[..window.len() - 1]
    } else {
        &window[..]
    };
    let from = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
    let last = body[from..].to_vec();
    // The last line that parses, looking back through the window: a torn last line
    // does not lose the sequence.
    let last_good_seq = body
        .split(|&b| b == b'\n')
        .rev()
        .find_map(|line| serde_json::from_slice::<SeqOnly>(line).ok())
        .map(|s| s.seq);
    Ok(Some(Tail {
        bytes: last,
        ended,
        last_good_seq,
    }))
}

/// The fields [`verify`] needs of a line.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// The fields [`verify`] needs of a line.
#[derive(Deserialize)]
struct Chain<'a> {
    seq: u64,
    #[serde(borrow)]
    prev: &'a str,
}

/// Reads the head file: `None` when there is none.
fn read_head(path: &Path) -> Result<Option<Head>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("the head file {} is not readable: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read the head file {}: {e}", path.display())),
    }
}

/// One finding of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    /// The line (1-based) where the chain breaks.
    pub line: u64,
    /// What is wrong, for a person.
    pub what: String,
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Lines read.
    pub lines: u64,
    /// Where the chain breaks, first [`MAX_PROBLEMS_LISTED`].
    pub problems: Vec<AuditProblem>,
    /// How many problems in all.
    pub problem_count: u64,
    /// Something worth saying that is not tampering (the head one line behind after
    /// a crash).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether the log is intact.
    #[must_use]
    pub fn intact(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, line: u64, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS_LISTED {
            self.problems.push(AuditProblem { line, what });
        }
    }
}

/// Checks the log at `dir`'s `audit.jsonl` line by line: each line parses, its `seq`
/// follows the line before, its `prev` is the hash of the line before; and the last
/// line is the one the head names. Reads the file once, in constant memory.
///
/// Errors: only when the file cannot be read at all. A missing log with no head is an
/// empty, intact log; a missing log with a head is a problem (the log was removed).
pub fn verify(dir: &DataDir) -> Result<VerifyReport, StoreError> {
    verify_files(&dir.path(AUDIT_FILE), &dir.path(AUDIT_HEAD_FILE))
}

/// [`verify`] on explicit paths.
#[allow(
    clippy::too_many_lines,
    reason = "one pass over the lines with every check in order reads best as one function"
)]
pub fn verify_files(log: &Path, head: &Path) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let head = match read_head(head) {
        Ok(head) => head,
        Err(why) => {
            report.problem(0, why);
            None
        }
    };
    let file = match crate::files::open_regular(log) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(head) = head {
                report.problem(
                    0,
                    format!(
                        "the log {} is missing but its head names line seq {}: the log was \
                         removed",
                        log.display(),
                        head.seq
                    ),
                );
            }
            return Ok(report);
        }
        Err(source) => {
            return Err(StoreError::Read {
                path: log.to_path_buf(),
                source,
            });
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(512);
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_seq: u64 = 0;
    let mut last: Option<(u64, String)> = None;
    let mut before_last: Option<(u64, String)> = None;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| StoreError::Read {
                path: log.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        report.lines += 1;
        let number = report.lines;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let hash = sha256_hex(body);
        match serde_json::from_slice::<Chain<'_>>(body) {
            Err(_) => report.problem(
                number,
                "not an audit line (changed by hand, or cut short by a crash)".to_owned(),
            ),
            Ok(chain) => {
                let mut wrong = Vec::new();
                if chain.seq != prev_seq + 1 {
                    if chain.seq > prev_seq + 1 {
                        wrong.push(format!(
                            "seq {} where {} was expected: {} line(s) before it were removed",
                            chain.seq,
                            prev_seq + 1,
                            chain.seq - prev_seq - 1
                        ));
                    } else {
                        wrong.push(format!(
                            "seq {} after seq {}: lines were moved or copied",
                            chain.seq, prev_seq
                        ));
                    }
                }
                if chain.prev != prev_hash {
                    wrong.push(if number == 1 {
                        "the first line's chain hash is not the start of a log: lines before \
                         it were removed"
                            .to_owned()
                    } else {
                        format!(
                            "its chain hash does not match line {}: line {} was changed, or \
                             lines were removed or moved here",
                            number - 1,
                            number - 1
                        )
                    });
                }
                if !wrong.is_empty() {
                    report.problem(number, wrong.join("; "));
                }
                prev_seq = chain.seq;
            }
        }
        before_last = last.take();
        last = Some((prev_seq, hash.clone()));
        prev_hash = hash;
    }
    match (head, last) {
        (None, None) => {}
        (None, Some(_)) => report.problem(
            report.lines,
            "the head file is missing: the last line cannot be checked (removed by hand?)"
                .to_owned(),
        ),
        (Some(head), None) => report.problem(
            0,
            format!(
                "the log is empty but its head names line seq {}: the log was emptied",
                head.seq
            ),
        ),
        (Some(head), Some((seq, hash))) => {
            if head.sha256 != hash || head.seq != seq {
                let behind_by_one =
                    before_last.is_some_and(|(s, h)| s == head.seq && h == head.sha256);
                if behind_by_one {
                    report.notes.push(format!(
                        "the head names the line before the last (seq {}): the station \
                         stopped between writing line {} and its head",
                        head.seq, report.lines
                    ));
                } else if head.seq > seq {
                    report.problem(
                        report.lines,
                        format!(
                            "the head names seq {} but the log ends at seq {seq}: lines at the \
                             end were removed",
                            head.seq
                        ),
                    );
                } else {
                    report.problem(
                        report.lines,
                        format!(
                            "the last line does not match the head (seq {}): it was changed",
                            head.seq
                        ),
                    );
                }
            }
        }
    }
    Ok(report)
}

/// Which lines [`show`] keeps. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this account.
    pub account: Option<String>,
    /// Only these kinds (any of them); empty: every kind.
    pub kinds: Vec<AuditKind>,
    /// From this instant on (inclusive).
    pub from: Option<Timestamp>,
    /// Before this instant (exclusive).
    pub until: Option<Timestamp>,
}

impl AuditFilter {
    /// Whether `line` passes.
    #[must_use]
    pub fn keeps(&self, line: &AuditLine) -> bool {
        self.account
            .as_ref()
            .is_none_or(|a| line.account.as_deref() == Some(a.as_str()))
            && (self.kinds.is_empty() || self.kinds.contains(&line.kind))
            && self.from.is_none_or(|from| line.at >= from)
            && self.until.is_none_or(|until| line.at < until)
    }
}

/// Calls `each` with every line of the log that `filter` keeps, in file order (with
/// its line number); lines that do not parse are passed to `bad` with their number.
/// A missing log has no lines.
pub fn show(
    dir: &DataDir,
    filter: &AuditFilter,
    mut each: impl FnMut(u64, &AuditLine),
    mut bad: impl FnMut(u64),
) -> Result<(), StoreError> {
    let path = dir.path(AUDIT_FILE);
    let file = match crate::files::open_regular(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Read { path, source }),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| StoreError::Read {
                path: path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        match serde_json::from_slice::<AuditLine>(line.strip_suffix(b"\n").unwrap_or(&line)) {
            Ok(parsed) => {
                if filter.keeps(&parsed) {
                    each(number, &parsed);
                }
            }
            Err(_) => bad(number),
        }
    }
}

/// One line for a person: `seq  time  kind  account  key=value ...`.
#[must_use]
pub fn describe(line: &AuditLine) -> String {
    use fmt::Write as _;
    let mut text = format!(
        "{:>7}  {}  {:<18}  {:<12}",
        line.seq,
        line.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        line.kind.as_str(),
        line.account.as_deref().unwrap_or("-"),
    );
    for (key, value) in &line.detail {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(text, "  {key}={}", crate::text::shown(&value));
    }
    text
}

/// Appends `event` to the audit log of the data folder a session record lives in
/// (`<data>/sessions/<record>`), for the command-line tools; a record outside a data
/// folder has no log to write to (`Ok`, nothing written).
pub fn beside_record(record: &Path, event: AuditEvent) -> Result<(), String> {
    let Some(root) = record
        .parent()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == crate::record::writer::SESSIONS_DIR)
        })
        .and_then(Path::parent)
    else {
        return Ok(());
    };
    let data = DataDir::open(root).map_err(|e| e.to_string())?;
    AuditLog::of(&data)
        .append(event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// SHA-256 of `bytes` as 64 lower-case hex digits.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    text
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else
/// "unknown").
pub(crate) fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
        (tmp, dir)
    }

    fn write_lines(dir: &DataDir, n: u64) -> AuditLog {
        let log = AuditLog::of(dir);
        for i in 0..n {
            log.append(AuditEvent::new(AuditKind::SignIn, Some("ana")).with("i", i))
                .expect("append");
        }
        log
    }

    fn lines_of(dir: &DataDir) -> Vec<String> {
        fs::read_to_string(dir.path(AUDIT_FILE))
            .expect("log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn rewrite(dir: &DataDir, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(dir.path(AUDIT_FILE), text).expect("rewrite");
    }

    #[test]
    fn an_untouched_log_verifies_and_chains_from_genesis() {
        let (_tmp, dir) = data_dir();
        assert!(verify(&dir).expect("verify").intact(), "no log is intact");
        write_lines(&dir, 5);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.lines, 5);
        assert!(report.intact(), "{:?}", report.problems);
        let first: AuditLine = serde_json::from_str(&lines_of(&dir)[0]).expect("line");
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev, GENESIS);
        assert_eq!(first.account.as_deref(), Some("ana"));
    }

    #[test]
    fn an_edit_names_the_line_after_it() {
        let (_tmp, dir) = data_dir();
        write_lines(&dir, 5);
        let mut lines = lines_of(&dir);
        lines[2] = lines[2].replace("\"ana\"", "\"eve\"");
        rewrite(&dir, &lines);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.problem_count, 1, "{:?}", report.problems);
        assert_eq!(report.problems[0].line, 4);
        assert!(report.problems[0].what.contains("line 3 was changed"));
    }

    #[test]
    fn a_deletion_and_a_swap_are_named() {
        let (_tmp, dir) = data_dir();
        write_lines(&dir, 6);
        let mut lines = lines_of(&dir);
        lines.remove(2);
        rewrite(&dir, &lines);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.problems[0].line, 3, "{:?}", report.problems);
        assert!(
            report.problems[0]
                .what
                .contains("1 line(s) before it were removed")
        );

        let (_tmp, dir) = data_dir();
        write_lines(&dir, 6);
        let mut lines = lines_of(&dir);
        lines.swap(3, 4);
        rewrite(&dir, &lines);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.problems[0].line, 4, "{:?}", report.problems);
        assert!(
            report.problems[0]
                .what
                .contains("seq 5 where 4 was expected")
        );
    }

    #[test]
    fn the_last_line_and_the_end_are_guarded_by_the_head() {
        let (_tmp, dir) = data_dir();
        write_lines(&dir, 4);
        let mut lines = lines_of(&dir);
        lines[3] = lines[3].replace("\"ana\"", "\"eve\"");
        rewrite(&dir, &lines);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.problems[0].line, 4, "{:?}", report.problems);
        assert!(report.problems[0].what.contains("changed"));

        let (_tmp, dir) = data_dir();
        write_lines(&dir, 4);
        let mut lines = lines_of(&dir);
        lines.truncate(2);
        rewrite(&dir, &lines);
        let report = verify(&dir).expect("verify");
        assert!(
            report.problems[0]
                .what
                .contains("lines at the end were removed")
        );
    }

    #[test]
    fn a_torn_line_is_named_and_the_chain_goes_on() {
        let (_tmp, dir) = data_dir();
        let log = write_lines(&dir, 3);
        let mut text = fs::read(dir.path(AUDIT_FILE)).expect("log");
        text.extend_from_slice(b"{\"seq\":4,\"at\"");
        fs::write(dir.path(AUDIT_FILE), text).expect("torn");
        let line = log
            .append(AuditEvent::new(AuditKind::Lock, Some("ana")))
            .expect("append after a torn line");
        assert_eq!(line.seq, 4);
        let report = verify(&dir).expect("verify");
        assert_eq!(report.problem_count, 1, "{:?}", report.problems);
        assert_eq!(report.problems[0].line, 4);
    }

    #[test]
    fn show_filters_by_account_kind_and_time() {
        let (_tmp, dir) = data_dir();
        let log = AuditLog::of(&dir);
        let t0: Timestamp = "2026-11-30T10:00:00Z".parse().expect("time");
        log.append_at(AuditEvent::new(AuditKind::SignIn, Some("ana")), t0)
            .expect("append");
        log.append_at(
            AuditEvent::new(AuditKind::SignInFailed, Some("bo")),
            t0 + jiff::SignedDuration::from_hours(25),
        )
        .expect("append");
        log.append_at(
            AuditEvent::new(AuditKind::LotQuery, Some("ana")).with("lot", "L-1"),
            t0 + jiff::SignedDuration::from_hours(26),
        )
        .expect("append");
        let seqs = |filter: AuditFilter| {
            let mut seqs = Vec::new();
            show(
                &dir,
                &filter,
                |_, l| seqs.push(l.seq),
                |_| panic!("bad line"),
            )
            .expect("show");
            seqs
        };
        assert_eq!(
            seqs(AuditFilter {
                account: Some("ana".into()),
                ..AuditFilter::default()
            }),
            [1, 3]
        );
        assert_eq!(
            seqs(AuditFilter {
                kinds: vec![AuditKind::SignInFailed],
                ..AuditFilter::default()
            }),
            [2]
        );
        assert_eq!(
            seqs(AuditFilter {
                from: Some(t0 + jiff::SignedDuration::from_hours(24)),
                ..AuditFilter::default()
            }),
            [2, 3]
        );
    }
}
