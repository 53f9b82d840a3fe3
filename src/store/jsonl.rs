//! Append-only JSON Lines files: one JSON record per line, each synced to disk before
//! [`append`] returns.
//!
//! Reading is forgiving and writing is not: [`read_all`] keeps every line it can
//! parse and reports the others by line number, while [`append`] returns every I/O
//! error. Neither ever rewrites a file, so a line this version cannot read (a torn
//! write, a newer format, a hand edit) stays on disk for a person to look at.
//!
//! Several processes may share a file (two stations on one data folder): [`Tail`]
//! reads on from where it last stopped, so a rule decides on what the others have
//! appended since, and [`with_lock`] holds the file's exclusive lock for a decision
//! and the line that records it, so two processes never both claim one thing.

use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, create_options, sync_parent};

/// A line of a JSON Lines file that could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line number, counting from 1.
    pub line: usize,
    /// Why it could not be read.
    pub reason: String,
}

/// What [`read_all`] found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    /// The records that could be read, in file order.
    pub entries: Vec<T>,
    /// The lines that could not, in file order. They are still on disk.
    pub bad_lines: Vec<BadLine>,
    /// ([`Tail`] only) the file was replaced or rewritten since the last read, not only
    /// appended to, and was read again from its start.
    pub restarted: bool,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            entries: Vec::new(),
            bad_lines: Vec::new(),
            restarted: false,
        }
    }
}

impl<T> Loaded<T> {
    /// One warning per bad line, as `file:line: reason`, for the operator; first, if
    /// the file was read again from its start, a line that says so.
    #[must_use]
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        let restarted = self.restarted.then(|| {
            format!(
                "{}: replaced or rewritten since it was last read: read again from its start",
                path.display()
            )
        });
        restarted
            .into_iter()
            .chain(
                self.bad_lines
                    .iter()
                    .map(|bad| format!("{}:{}: {}", path.display(), bad.line, bad.reason)),
            )
            .collect()
    }
}

/// Appends `record` to the file at `path` as one line, creating the file (mode 0600)
/// if it is missing, and syncs it to disk before returning.
///
/// If the file does not end in a newline (a previous write was cut short by a crash
/// or a full disk), a newline is written first, so the torn line stays a bad line of
/// its own and does not swallow this record.
pub fn append<T: Serialize>(path: &Path, record: &T) -> Result<(), StoreError> {
    let (mut file, created) = open_for_append(path).map_err(|source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    write_record(&mut file, created, path, record).map(|_| ())
}

/// Writes `record` as one line at the end of `file` (at `path`, opened by
/// [`open_for_append`]) and syncs it, and its folder too when the file was `created`.
/// A last line left without its newline is ended first. Returns the bytes written.
fn write_record<T: Serialize>(
    file: &mut fs::File,
    created: bool,
    path: &Path,
    record: &T,
) -> Result<Vec<u8>, StoreError> {
    let mut line = serde_json::to_vec(record).map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    line.push(b'\n');
    let write_error = |source: io::Error| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !created && ends_without_newline(file).map_err(write_error)? {
        line.insert(0, b'\n');
    }
    // One write of the whole line: with O_APPEND it lands at the end in one piece
    // unless the disk fills, and the next append repairs the line boundary then.
    file.write_all(&line).map_err(write_error)?;
    file.sync_data().map_err(write_error)?;
    if created {
        sync_parent(path)?;
    }
    Ok(line)
}

/// Opens `path` for appending and reading its last byte; says whether it was created.
fn open_for_append(path: &Path) -> io::Result<(fs::File, bool)> {
    let mut options = create_options();
    options.read(true).append(true);
    // Trying `create_new` first tells whether the folder entry needs syncing too.
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            options.open(path).map(|file| (file, false))
        }
        Err(e) => Err(e),
    }
}

/// Whether the file is non-empty and its last byte is not a newline.
fn ends_without_newline(file: &mut fs::File) -> io::Result<bool> {
    let len_bytes = file.metadata()?.len();
    if len_bytes == 0 {
        return Ok(false);
    }
    // Reading moves only the read position: O_APPEND still writes at the end.
    file.seek(SeekFrom::Start(len_bytes - 1))?;
    let mut last = [0_u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Reads every record of the file at `path`. A missing file holds no records.
///
/// Each line that is not valid JSON of `T` (including a last line cut short by a
/// crash, and a blank line) is reported in [`Loaded::bad_lines`] with its number;
/// every other line is kept. The file is never modified.
pub fn read_all<T: DeserializeOwned>(path: &Path) -> Result<Loaded<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(parse_lines(&bytes))
}

/// Reads a JSON Lines file on from where the last read stopped: the records other
/// processes (or this one) appended since. Only whole lines are taken; a line still
/// being written is read the next time, once its newline is there.
#[derive(Debug, Clone)]
pub struct Tail {
    path: PathBuf,
    /// Bytes read so far: the start of the first line not read yet.
    offset: u64,
    /// Lines read so far, for the line numbers of warnings.
    lines_read: usize,
    /// The offset of an unfinished last line already reported, so it is reported once.
    fragment_reported_at: Option<u64>,
    /// The file read: (device, inode). Another means the file was replaced.
    identity: Option<(u64, u64)>,
    /// The last bytes read (up to [`TAIL_CHECK_BYTES`], ending with a newline): if they
    /// are not where they were, the file was rewritten, not appended to.
    last_bytes: Vec<u8>,
    /// The file was replaced or rewritten since a read, and read again from its start
    /// (said in the next [`Loaded::restarted`]).
    restarted: bool,
}

/// How long [`with_lock`] waits for a lock another process holds: another station
/// holds it for microseconds, and the station's thread must never stall past the
/// link's 250 ms liveness limit (the pen's watchdog would stop a running needle).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How often it tries again meanwhile.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(2);

/// How many of the last bytes read [`Tail`] checks are still in place before reading on.
const TAIL_CHECK_BYTES: usize = 64;

impl Tail {
    /// A reader of `path` that has read nothing yet.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: 0,
            lines_read: 0,
            fragment_reported_at: None,
            identity: None,
            last_bytes: Vec::new(),
            restarted: false,
        }
    }

    /// Starts over at the beginning of the file.
    fn restart(&mut self) {
        self.offset = 0;
        self.lines_read = 0;
        self.fragment_reported_at = None;
        self.last_bytes.clear();
        self.restarted = true;
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole lines appended since the last call. A missing file holds none.
    /// A file shorter than what was read (replaced, or cut by hand) is read again from
    /// its start: the records are facts, and taking one twice changes nothing.
    pub fn read_new<T: DeserializeOwned>(&mut self) -> Result<Loaded<T>, StoreError> {
        let path = self.path.clone();
        let read_error = |source| StoreError::Read {
            path: path.clone(),
            source,
        };
        let mut file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(source) => return Err(read_error(source)),
        };
        let meta = file.metadata().map_err(read_error)?;
        let identity = file_identity(&meta);
        if self.identity.is_some_and(|known| Some(known) != identity) {
            // Replaced (a new file under the old name): read the new one from its start.
            self.restart();
        }
        self.identity = identity;
        let len_bytes = meta.len();
        if len_bytes < self.offset {
            // Cut short: it was rewritten.
            self.restart();
        }
        if self.offset > 0 {
            // Rewritten in place and grown again: the bytes before the offset are not
            // the ones read.
            let check_from = self.offset - self.last_bytes.len() as u64;
            let mut there = vec![0; self.last_bytes.len()];
            file.seek(SeekFrom::Start(check_from)).map_err(read_error)?;
            file.read_exact(&mut there).map_err(read_error)?;
            if there != self.last_bytes {
                self.restart();
            }
        }
        if len_bytes == self.offset {
            return Ok(Loaded::default());
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(read_error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(read_error)?;
        // Whole lines only: a record still being written waits for its newline.
        let whole_len = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |end| end + 1);
        let whole = &bytes[..whole_len];
        let mut loaded = parse_lines::<T>(whole);
        // The records taken before stay taken: a line removed by hand is not forgotten,
        // which errs on the safe side.
        loaded.restarted = std::mem::take(&mut self.restarted);
        for bad in &mut loaded.bad_lines {
            bad.line += self.lines_read;
        }
        self.lines_read += memchr::memchr_iter(b'\n', whole).count();
        self.offset += whole_len as u64;
        if whole_len > 0 {
            let keep = whole_len.min(TAIL_CHECK_BYTES);
            self.last_bytes.clear();
            self.last_bytes
                .extend_from_slice(&whole[whole_len - keep..]);
        }
        // An unfinished last line: a write cut short by a crash or a full disk (the
        // next append ends it with a newline, and it stays a bad line of its own).
        // Said once; it is read again, whole, once its newline is there.
        if whole_len < bytes.len() && self.fragment_reported_at != Some(self.offset) {
            self.fragment_reported_at = Some(self.offset);
            loaded.bad_lines.push(BadLine {
                line: self.lines_read + 1,
                reason: "cut short (incomplete record, no newline yet)".to_owned(),
            });
        }
        Ok(loaded)
    }

    /// Marks `line`, just appended at `offset` by a holder of the lock, as read.
    fn advance_past(&mut self, offset: u64, line: &[u8], lines: usize) {
        self.offset = offset + line.len() as u64;
        self.lines_read += lines;
        // The check bytes run on from those before the offset into this line.
        self.last_bytes.extend_from_slice(line);
        let drop = self.last_bytes.len().saturating_sub(TAIL_CHECK_BYTES);
        self.last_bytes.drain(..drop);
    }
}

/// A JSON Lines file held under its exclusive lock: see [`with_lock`].
#[derive(Debug)]
pub struct Locked<'t> {
    file: fs::File,
    tail: &'t mut Tail,
    created: bool,
}

impl Locked<'_> {
    /// Reads the whole lines appended since the tail's last read (by anyone: under
    /// the lock nobody else can append until it is released).
    pub fn read_new<T: DeserializeOwned>(&mut self) -> Result<Loaded<T>, StoreError> {
        self.tail.read_new()
    }

    /// Appends `record` as one line and syncs it; the tail then counts it as read.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), StoreError> {
        // Everything before was read under this lock: the tail ends where this line
        // ends, unless the file was cut short and is being read again.
        let before = self
            .file
            .metadata()
            .map_err(|source| StoreError::Write {
                path: self.tail.path.clone(),
                source,
            })?
            .len();
        let line = write_record(&mut self.file, self.created, &self.tail.path, record)?;
        self.created = false;
        if before == self.tail.offset {
            let lines = memchr::memchr_iter(b'\n', &line).count();
            self.tail.advance_past(before, &line, lines);
        }
        Ok(())
    }
}

/// Runs `decide` holding the exclusive lock of `tail`'s file (created, mode 0600, if
/// missing), so that what it reads and what it appends are one step for every
/// process that takes the lock too. The lock is the operating system's advisory
/// `flock`: it holds between processes on one machine; see the README for network
/// folders. It is released when `decide` returns.
pub fn with_lock<R>(
    tail: &mut Tail,
    decide: impl FnOnce(&mut Locked<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let path = tail.path.clone();
    let write_error = |source: io::Error| StoreError::Write {
        path: path.clone(),
        source,
    };
    let (file, created) = open_locked(&path)?;
    let mut locked = Locked {
        file,
        tail,
        created,
    };
    let result = decide(&mut locked);
    // Closing the file releases the lock; unlock first so an error is not hidden.
    let unlocked = locked.file.unlock();
    let value = result?;
    unlocked.map_err(write_error)?;
    Ok(value)
}

/// Opens `path` for appending and reading (created, mode 0600, if missing) and takes
/// its exclusive `flock`, waiting at most [`LOCK_WAIT`]; says whether it was created.
/// The lock is released when the file is closed (or unlocked).
pub(crate) fn open_locked(path: &Path) -> Result<(fs::File, bool), StoreError> {
    let write_error = |source: io::Error| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (file, created) = open_for_append(path).map_err(write_error)?;
    // Another station holds it for microseconds; something that holds it longer (a
    // hung process, a backup tool) must not freeze the station: give up and say so.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok((file, created)),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    waited: LOCK_WAIT,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(write_error(e)),
        }
    }
}

/// A store folded from one append-only file of records (the cartridge registry, the
/// treatment history): what [`under_lock`] needs of it.
pub trait Folded {
    /// One line of the file.
    type Record: Serialize + DeserializeOwned;
    /// The reader of the file, on from where it last stopped.
    fn tail_mut(&mut self) -> &mut Tail;
    /// Takes in one record.
    fn apply(&mut self, record: Self::Record);
    /// Keeps warnings about the file's lines.
    fn warn(&mut self, warnings: Vec<String>);
}

/// Runs `decide` on `store` under its file's lock, after taking in every line
/// appended until then: a decision and the line that records it are one step for
/// every process that does the same.
pub fn under_lock<S: Folded, R>(
    store: &mut S,
    decide: impl FnOnce(&mut S, &mut Locked<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let mut tail = store.tail_mut().clone();
    let result = with_lock(&mut tail, |locked| {
        let loaded = locked.read_new::<S::Record>()?;
        store.warn(loaded.warnings(locked.tail.path()));
        for record in loaded.entries {
            store.apply(record);
        }
        decide(store, locked)
    });
    *store.tail_mut() = tail;
    result
}

/// Appends `record`, a line that needs no decision (a release, a use recorded as it
/// happened), under the file's lock after taking in every line appended until then.
pub fn append_under_lock<S: Folded>(store: &mut S, record: S::Record) -> Result<(), StoreError> {
    under_lock(store, |store, locked| append_folded(store, locked, record))
}

/// Appends `record` under the lock, then takes it in: the store never holds what the
/// file does not.
pub fn append_folded<S: Folded>(
    store: &mut S,
    locked: &mut Locked<'_>,
    record: S::Record,
) -> Result<(), StoreError> {
    locked.append(&record)?;
    store.apply(record);
    Ok(())
}

/// The (device, inode) of a file, where the system has them.
#[allow(clippy::unnecessary_wraps)] // `None` on systems without inodes
fn file_identity(meta: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Parses JSON Lines from `bytes`; see [`read_all`].
fn parse_lines<T: DeserializeOwned>(bytes: &[u8]) -> Loaded<T> {
    let mut loaded = Loaded::default();
    if bytes.is_empty() {
        return loaded;
    }
    // A final newline ends the last line; it does not start an empty one.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        // Tolerate CRLF from a file edited on another system.
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            loaded.bad_lines.push(BadLine {
                line,
                reason: "blank line".to_owned(),
            });
            continue;
        }
        match serde_json::from_slice::<T>(raw) {
            Ok(entry) => loaded.entries.push(entry),
            Err(e) => loaded.bad_lines.push(BadLine {
                line,
                reason: describe(&e),
            }),
        }
    }
    loaded
}

/// A short reason for a line that did not parse. serde's message gives a column,
/// which is within the line here, and its own "line 1", which would mislead.
fn describe(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Eof => "cut short (incomplete record)",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "not a valid record",
        serde_json::error::Category::Io => "unreadable",
    };
    let message = error.to_string();
    // serde_json appends " at line L column C"; keep the column only.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head);
    format!("{kind}: {message} (column {})", error.column())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{Unwritable, mode_of};
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        n: u32,
        s: String,
    }

    fn rec(n: u32) -> Rec {
        Rec {
            n,
            s: format!("r{n}"),
        }
    }

    #[test]
    fn missing_file_is_empty() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let loaded: Loaded<Rec> = read_all(&tmp.path().join("none.jsonl")).expect("read");
        assert_eq!(loaded, Loaded::default());
    }

    #[test]
    fn append_then_read_round_trips_in_order() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("r.jsonl");
        for n in 1..=3 {
            append(&path, &rec(n)).expect("write");
        }
        let loaded: Loaded<Rec> = read_all(&path).expect("read");
        assert_eq!(loaded.entries, vec![rec(1), rec(2), rec(3)]);
        assert!(loaded.bad_lines.is_empty());
        let text = fs::read_to_string(&path).expect("fs");
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn new_file_is_owner_read_write_only() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("r.jsonl");
        append(&path, &rec(1)).expect("write");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn bad_lines_are_reported_by_number_kept_and_left_on_disk() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("r.jsonl");
        let bytes = concat!(
            "{\"n\":1,\"s\":\"r1\"}\n",
            "garbage \u{0}\u{7f}\n",
            "{\"n\":2,\"s\":\"r2\"}\n",
            "{\"n\":\"three\",\"s\":\"r3\"}\n",
            "\n",
            "{\"n\":4,\"s\":\"r4\"}\n",
            "{\"n\":5,\"s\":\"r"
        )
        .as_bytes()
        .to_vec();
        let mut with_invalid_utf8 = bytes.clone();
        with_invalid_utf8.splice(0..0, b"\xff\xfe{\n".iter().copied());
        fs::write(&path, &with_invalid_utf8).expect("fs");

        let loaded: Loaded<Rec> = read_all(&path).expect("read");
        assert_eq!(loaded.entries, vec![rec(1), rec(2), rec(4)]);
        let lines: Vec<usize> = loaded.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![1, 3, 5, 6, 8]);
        assert!(
            loaded.bad_lines[4].reason.contains("cut short"),
            "{:?}",
            loaded.bad_lines
        );
        assert!(loaded.bad_lines[2].reason.contains("not a valid record"));
        assert_eq!(
            fs::read(&path).expect("fs"),
            with_invalid_utf8,
            "reading changed the file"
        );

        let warnings = loaded.warnings(&path);
        assert!(warnings[0].starts_with(&format!("{}:1: ", path.display())));
    }

    #[test]
    fn append_after_a_torn_line_starts_a_new_line() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("r.jsonl");
        fs::write(&path, b"{\"n\":1,\"s\":\"r1\"}\n{\"n\":2,\"s\"").expect("fs");
        append(&path, &rec(3)).expect("write");
        let loaded: Loaded<Rec> = read_all(&path).expect("read");
        assert_eq!(loaded.entries, vec![rec(1), rec(3)]);
        assert_eq!(loaded.bad_lines.len(), 1);
        assert_eq!(loaded.bad_lines[0].line, 2);
        // The torn bytes are still there, untouched.
        let text = fs::read_to_string(&path).expect("fs");
        assert!(text.contains("{\"n\":2,\"s\"\n"));
    }

    #[test]
    fn crlf_lines_are_read() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("r.jsonl");
        fs::write(
            &path,
            b"{\"n\":1,\"s\":\"r1\"}\r\n{\"n\":2,\"s\":\"r2\"}\r\n",
        )
        .expect("ok");
        let loaded: Loaded<Rec> = read_all(&path).expect("read");
        assert_eq!(loaded.entries, vec![rec(1), rec(2)]);
    }

    #[test]
    fn write_error_is_returned_naming_the_file() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        fs::create_dir(&dir).expect("fs");
        let path = dir.join("r.jsonl");
        let _guard = Unwritable::new(&dir);
        let err = append(&path, &rec(1)).expect_err("should fail");
        assert!(matches!(err, StoreError::Write { .. }), "{err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    #[test]
    fn unreadable_path_is_a_read_error() {
        let tmp = tempfile::tempdir().expect("temp dir");
        // A folder where the file should be fails for root too.
        let path = tmp.path().join("r.jsonl");
        fs::create_dir(&path).expect("fs");
        let err = read_all::<Rec>(&path).expect_err("should fail");
        assert!(matches!(err, StoreError::Read { .. }), "{err}");
    }

    #[test]
    fn a_tail_reads_on_and_starts_over_when_the_file_is_rewritten() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("t.jsonl");
        let mut tail = Tail::new(&path);
        assert!(
            tail.read_new::<Rec>()
                .expect("missing is empty")
                .entries
                .is_empty()
        );
        append(&path, &rec(1)).expect("append");
        append(&path, &rec(2)).expect("append");
        assert_eq!(
            tail.read_new::<Rec>().expect("read").entries,
            [rec(1), rec(2)]
        );
        append(&path, &rec(3)).expect("append");
        assert_eq!(tail.read_new::<Rec>().expect("read").entries, [rec(3)]);

        // Rewritten in place (a line removed by hand), then grown past the old end by
        // another station's append: every line is read again, none from the middle.
        fs::write(&path, "{\"n\":2,\"s\":\"r2\"}\n").expect("rewrite");
        append(
            &path,
            &Rec {
                n: 40,
                s: "a much longer line than before, past the offset".into(),
            },
        )
        .expect("append");
        let loaded = tail.read_new::<Rec>().expect("read");
        assert!(loaded.restarted);
        assert!(loaded.bad_lines.is_empty(), "{:?}", loaded.bad_lines);
        assert_eq!(loaded.entries.len(), 2);
        // Replaced by a new file under the same name: read from its start.
        let other = tmp.path().join("new.jsonl");
        append(&other, &rec(7)).expect("append");
        fs::rename(&other, &path).expect("replace");
        let loaded = tail.read_new::<Rec>().expect("read");
        assert_eq!(loaded.entries, [rec(7)]);
        assert!(loaded.restarted);
    }

    #[test]
    fn a_lock_held_too_long_by_another_program_is_given_up_and_said() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("locked.jsonl");
        append(&path, &rec(1)).expect("append");
        // Another open file description holds the lock (as another process would).
        let holder = fs::File::open(&path).expect("open");
        holder.lock().expect("lock");
        let started = std::time::Instant::now();
        let mut tail = Tail::new(&path);
        let err = with_lock(&mut tail, |locked| locked.append(&rec(2))).expect_err("locked");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(
            err.to_string().contains("held its lock for over 200 ms"),
            "{err}"
        );
        assert!(started.elapsed() >= LOCK_WAIT);
        holder.unlock().expect("unlock");
        with_lock(&mut tail, |locked| locked.append(&rec(2))).expect("free again");
        assert_eq!(
            read_all::<Rec>(&path).expect("read").entries,
            [rec(1), rec(2)]
        );
    }
}
