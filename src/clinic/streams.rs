//! The outbox: the data folder's append-only files, each uploaded up to a cursor.
//!
//! Nothing is copied into a queue: the station writes its files as it always has,
//! and what lies beyond a file's cursor is what the store has not got yet. The
//! cursor is always at a line's end; a batch is whole lines. The store's own copy of
//! each cursor (`upload_cursors`) is the truth; `clinic-outbox.json` keeps the last
//! one this station saw, so the depth can be shown while the store is unreachable.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// The local copy of the cursors.
pub const CURSORS_FILE: &str = "clinic-outbox.json";

/// The sessions' records folder in the data folder.
const SESSIONS_DIR: &str = "sessions";

/// The largest batch, bytes: a batch is a transaction, and a claim waits behind it.
pub const BATCH_BYTES: usize = 256 * 1024;

/// A local file the outbox uploads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// `cartridges.jsonl`: claims and releases.
    Cartridges,
    /// `treatments.jsonl`: zones treated, for the 4-week rule.
    Treatments,
    /// `audit.jsonl`: the audit trail, chain and all.
    Audit,
    /// `amendments.jsonl`: follow-ups and adverse events.
    Amendments,
    /// `clinic-zone-tables.jsonl`: zone tables an admin made at this station.
    ZoneTables,
    /// `account-changes.jsonl`: accounts an admin created or changed here.
    Accounts,
    /// `sessions/<file>`: one session's record.
    Record(String),
    /// `certificates/<file>.json`: one calibration certificate, a whole JSON
    /// document, uploaded once it is complete.
    Certificate(String),
}

impl Stream {
    /// The fixed streams, in the order they upload (claims first: they matter to
    /// other stations' decisions).
    pub const FIXED: [Stream; 6] = [
        Stream::Cartridges,
        Stream::Treatments,
        Stream::ZoneTables,
        Stream::Accounts,
        Stream::Audit,
        Stream::Amendments,
    ];

    /// The stream's name in `upload_cursors`: `cartridges`, `record:<file>`.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Cartridges => "cartridges".into(),
            Self::Treatments => "treatments".into(),
            Self::Audit => "audit".into(),
            Self::Amendments => "amendments".into(),
            Self::ZoneTables => "zone_tables".into(),
            Self::Accounts => "accounts".into(),
            Self::Record(file) => format!("record:{file}"),
            Self::Certificate(file) => format!("certificate:{file}"),
        }
    }

    /// The stream a name stands for.
    #[must_use]
    pub fn parse(name: &str) -> Option<Stream> {
        match name {
            "cartridges" => Some(Self::Cartridges),
            "treatments" => Some(Self::Treatments),
            "audit" => Some(Self::Audit),
            "amendments" => Some(Self::Amendments),
            "zone_tables" => Some(Self::ZoneTables),
            "accounts" => Some(Self::Accounts),
            other => {
                let plain = |f: &&str| !f.is_empty() && !f.contains('/');
                if let Some(f) = other.strip_prefix("record:").filter(plain) {
                    Some(Self::Record(f.to_owned()))
                } else {
                    other
                        .strip_prefix("certificate:")
                        .filter(plain)
                        .map(|f| Self::Certificate(f.to_owned()))
                }
            }
        }
    }

    /// Whether the stream is uploaded again from its start when its file was cut or
    /// replaced after upload: its lines have keys of their own (a claim, a treatment,
    /// an audit seq), so the store keeps what it had and doubles nothing. Any other
    /// such stream is blocked until its file is restored.
    #[must_use]
    pub fn uploads_again_when_replaced(&self) -> bool {
        matches!(self, Self::Cartridges | Self::Treatments | Self::Audit)
    }

    /// The local file.
    #[must_use]
    pub fn path(&self, data_root: &Path) -> PathBuf {
        match self {
            Self::Cartridges => data_root.join(crate::store::CARTRIDGES_FILE),
            Self::Treatments => data_root.join(crate::store::TREATMENTS_FILE),
            Self::Audit => data_root.join(crate::store::audit::AUDIT_FILE),
            Self::Amendments => data_root.join(crate::store::amendments::AMENDMENTS_FILE),
            Self::ZoneTables => data_root.join(super::zones::ZONE_TABLES_FILE),
            Self::Accounts => data_root.join(crate::store::account_changes::ACCOUNT_CHANGES_FILE),
            Self::Record(file) => data_root.join(SESSIONS_DIR).join(file),
            Self::Certificate(file) => data_root
                .join(crate::calibration::certificate::CERTIFICATES_DIR)
                .join(file),
        }
    }
}

/// Every stream of a data folder: the fixed files that exist, every session record
/// (`sessions/*.jsonl`) in name order (oldest first: names start with the opening
/// time), then every calibration certificate (`certificates/*.json`).
#[must_use]
pub fn list(data_root: &Path) -> Vec<Stream> {
    let mut streams: Vec<Stream> = Stream::FIXED
        .into_iter()
        .filter(|s| s.path(data_root).is_file())
        .collect();
    streams.extend(
        files_in(&data_root.join(SESSIONS_DIR), "jsonl")
            .into_iter()
            .map(Stream::Record),
    );
    streams.extend(
        files_in(
            &data_root.join(crate::calibration::certificate::CERTIFICATES_DIR),
            "json",
        )
        .into_iter()
        .map(Stream::Certificate),
    );
    streams
}

/// The regular files of `dir` ending in `.extension` (not hidden), by name.
fn files_in(dir: &Path, extension: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            let matches = Path::new(&name)
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case(extension));
            (is_file && matches && !name.starts_with('.')).then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The largest certificate uploaded, bytes (a certificate is some kilobytes).
pub const CERTIFICATE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A certificate's whole file as one batch, once it is complete (it parses as a
/// certificate), or why not yet.
///
/// # Errors
/// The read's error, or why the file is not a complete certificate (too large, not
/// JSON yet: being written, or damaged).
pub fn read_certificate(path: &Path, from: Cursor) -> std::io::Result<Result<Read, String>> {
    let len = std::fs::metadata(path)?.len();
    if from.bytes == len {
        return Ok(Ok(Read::UpToDate));
    }
    if from.bytes != 0 {
        return Ok(Err(format!(
            "changed after it was uploaded ({} bytes then, {len} now): certificates are \
             never rewritten; not uploaded again",
            from.bytes
        )));
    }
    if len > CERTIFICATE_MAX_BYTES {
        return Ok(Err(format!("{len} bytes: not a certificate")));
    }
    let bytes = std::fs::read(path)?;
    if let Err(e) = serde_json::from_slice::<crate::calibration::certificate::Certificate>(&bytes) {
        return Ok(Err(format!("not a certificate (yet): {e}")));
    }
    let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
    Ok(Ok(Read::Lines(Batch {
        from,
        bytes,
        lines,
        more: false,
    })))
}

/// Where a stream's upload stands: bytes and lines of the local file in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Bytes uploaded (at a line's end).
    pub bytes: u64,
    /// Lines uploaded.
    pub lines: u64,
    /// The last line uploaded, to tell the file from another whose line ends happen to
    /// fall at the cursor (cut, then written again). `None`: not known (a cursor
    /// from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
}

/// The last line before a cursor (at most [`TAIL_MAX_BYTES`] of its end, its
/// newline included): its length and the first 8 bytes of its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tail {
    /// Bytes.
    pub len: u32,
    /// The first 8 bytes of its SHA-256, big-endian (as `PostgreSQL`'s `bigint`).
    pub hash: i64,
}

/// The most of a last line a [`Tail`] covers.
pub const TAIL_MAX_BYTES: usize = 4096;

impl Tail {
    /// The tail of `bytes`, which end with a line's newline: the last line, or its
    /// last [`TAIL_MAX_BYTES`]. `None` for no bytes.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Option<Tail> {
        let body = bytes.strip_suffix(b"\n")?;
        let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
        let start = start.max(bytes.len().saturating_sub(TAIL_MAX_BYTES));
        Some(Tail::hashed(&bytes[start..]))
    }

    /// The tail that is exactly `window`.
    #[must_use]
    pub fn hashed(window: &[u8]) -> Tail {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(window);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Tail {
            len: u32::try_from(window.len()).unwrap_or(u32::MAX),
            hash: i64::from_be_bytes(first),
        }
    }
}

/// `clinic-outbox.json`: the cursors last seen in the store, and the last upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalCursors {
    /// The station these cursors are for (a data folder moved to another store id
    /// starts over).
    #[serde(default)]
    pub station_id: String,
    /// Per stream name.
    #[serde(default)]
    pub cursors: BTreeMap<String, Cursor>,
    /// When a batch last reached the store.
    #[serde(default)]
    pub last_upload: Option<Timestamp>,
}

impl LocalCursors {
    /// Reads the file; a missing or unreadable one is an empty one (the store's
    /// cursors are the truth, read at every connection).
    #[must_use]
    pub fn load(data_root: &Path) -> Self {
        std::fs::read(data_root.join(CURSORS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the file (atomically).
    ///
    /// # Errors
    /// The store's error when it cannot be written.
    ///
    /// # Panics
    /// Never: the cursors are plain data, which always serialise.
    pub fn save(&self, data_root: &Path) -> Result<(), crate::store::StoreError> {
        let text = serde_json::to_vec_pretty(self).expect("plain data");
        crate::store::replace_file(&data_root.join(CURSORS_FILE), &text)
    }

    /// A stream's cursor (0 when never uploaded).
    #[must_use]
    pub fn get(&self, stream: &Stream) -> Cursor {
        self.cursors
            .get(&stream.name())
            .copied()
            .unwrap_or_default()
    }
}

/// Whole lines read from a stream's file beyond a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Where it starts.
    pub from: Cursor,
    /// The bytes: whole lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// How many lines.
    pub lines: u64,
    /// The file held more when it was read (a batch full, or lines after it).
    pub more: bool,
}

impl Batch {
    /// The cursor after this batch.
    #[must_use]
    pub fn to(&self) -> Cursor {
        Cursor {
            bytes: self.from.bytes + self.bytes.len() as u64,
            lines: self.from.lines + self.lines,
            tail: Tail::of(&self.bytes).or(self.from.tail),
        }
    }

    /// The lines, without their `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes
            .strip_suffix(b"\n")
            .unwrap_or(&self.bytes)
            .split(|b| *b == b'\n')
            .filter(|_| !self.bytes.is_empty())
    }
}

/// What [`read_batch`] found.
#[derive(Debug)]
pub enum Read {
    /// Whole lines to upload.
    Lines(Batch),
    /// Nothing beyond the cursor (or only a line still being written).
    UpToDate,
    /// The file is not the one uploaded: shorter than its cursor, or the cursor no
    /// longer at a line's end (cut, or replaced, after upload).
    Replaced {
        /// Its length now.
        len: u64,
    },
}

/// The streams of `data_root` that cannot be uploaded, with why: a file cut or
/// replaced after upload that is not uploaded again, or removed after upload.
/// `cursors`: where each stream stands in the store.
#[must_use]
pub fn blocked(data_root: &Path, cursors: &LocalCursors) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = removed(data_root, cursors)
        .into_iter()
        .map(|s| (s.name(), removed_after_upload(&s.path(data_root))))
        .collect();
    for stream in list(data_root) {
        let from = cursors.get(&stream);
        if from.bytes == 0 {
            continue;
        }
        let path = stream.path(data_root);
        let why = match read_batch(&path, from, 1) {
            Ok(Read::Replaced { len }) if !stream.uploads_again_when_replaced() => Some(format!(
                "{} was cut or replaced after upload ({len} bytes now, {} in the clinic store)",
                path.display(),
                from.bytes
            )),
            _ => None,
        };
        if let Some(why) = why {
            found.push((stream.name(), why));
        }
    }
    found
}

/// Why a stream whose file is gone is blocked.
#[must_use]
pub fn removed_after_upload(path: &Path) -> String {
    format!("{} was removed after upload", path.display())
}

/// The streams the store holds some of whose file is gone from `data_root` (a stat
/// each: cheap enough for every second). The upload never lists a missing file, so
/// without this a record removed after upload would go unsaid.
#[must_use]
pub fn removed(data_root: &Path, cursors: &LocalCursors) -> Vec<Stream> {
    cursors
        .cursors
        .iter()
        .filter(|(_, c)| c.bytes > 0)
        .filter_map(|(name, _)| Stream::parse(name))
        // A certificate goes up whole, once complete: removed afterwards, nothing of
        // it is missing from the store.
        .filter(|s| !matches!(s, Stream::Certificate(_)))
        .filter(|s| {
            // Through links: a link to nothing is a removed file too.
            matches!(
                std::fs::metadata(s.path(data_root)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            )
        })
        .collect()
}

/// Reads whole lines from `path` beyond `from`, at most about `max_bytes` (more
/// only when one line is longer).
///
/// # Errors
/// The read's error; a missing file is [`Read::UpToDate`] when its cursor is 0.
pub fn read_batch(path: &Path, from: Cursor, max_bytes: usize) -> std::io::Result<Read> {
    // Every stream is looked at every round (every session record): one that has not
    // grown costs a stat, not an open.
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.bytes == 0 => {
            return Ok(Read::UpToDate);
        }
        Err(e) => return Err(e),
    };
    if len < from.bytes {
        return Ok(Read::Replaced { len });
    }
    if len == from.bytes && from.bytes == 0 {
        return Ok(Read::UpToDate);
    }
    let mut file = std::fs::File::open(path)?;
    if from.bytes > 0 {
        // The cursor is always just after a newline: anything else is another file.
        let mut before = [0u8; 1];
        file.seek(SeekFrom::Start(from.bytes - 1))?;
        file.read_exact(&mut before)?;
        if before[0] != b'\n' {
            return Ok(Read::Replaced { len });
        }
    }
    if len == from.bytes {
        return Ok(Read::UpToDate);
    }
    // Something to send: first, is the line before the cursor still the one sent?
    if let Some(tail) = from.tail {
        let n = u64::from(tail.len).min(from.bytes);
        let mut back = vec![0u8; usize::try_from(n).unwrap_or(0)];
        file.seek(SeekFrom::Start(from.bytes - n))?;
        file.read_exact(&mut back)?;
        if Tail::hashed(&back) != tail {
            return Ok(Read::Replaced { len });
        }
    }
    file.seek(SeekFrom::Start(from.bytes))?;
    let mut bytes =
        Vec::with_capacity(max_bytes.min(usize::try_from(len - from.bytes).unwrap_or(max_bytes)));
    let mut chunk = max_bytes;
    loop {
        let before = bytes.len();
        (&mut file).take(chunk as u64).read_to_end(&mut bytes)?;
        if let Some(end) = bytes.iter().rposition(|b| *b == b'\n') {
            bytes.truncate(end + 1);
            break;
        }
        if bytes.len() == before {
            // The end of the file and no newline: a line still being written.
            return Ok(Read::UpToDate);
        }
        chunk = max_bytes;
    }
    let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
    let more = from.bytes + (bytes.len() as u64) < len;
    Ok(Read::Lines(Batch {
        from,
        bytes,
        lines,
        more,
    }))
}

/// Counts the complete lines beyond each cursor, reading each file only once: what
/// was counted is remembered, and only what was appended since is read.
#[derive(Debug, Default)]
pub struct DepthCounter {
    /// Per stream: counted up to this offset, and the lines in `[0, offset)`.
    counted: BTreeMap<Stream, Cursor>,
}

/// The outbox's depth: what the store has not got yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Complete lines.
    pub lines: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl DepthCounter {
    /// The depth of `data_root`'s outbox beyond `cursors`.
    pub fn depth(&mut self, data_root: &Path, cursors: &LocalCursors) -> Depth {
        let mut depth = Depth::default();
        for stream in list(data_root) {
            let cursor = cursors.get(&stream);
            let path = stream.path(data_root);
            let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
                continue;
            };
            let counted = self.counted.entry(stream).or_insert(cursor);
            // A cursor past what was counted (uploaded meanwhile), or a file cut
            // short: count again from the cursor.
            if counted.bytes < cursor.bytes || counted.bytes > len {
                *counted = cursor;
            }
            if len > counted.bytes
                && let Ok(Some(more)) = count_lines(&path, counted.bytes, len)
            {
                counted.bytes += more.bytes;
                counted.lines += more.lines;
            }
            if counted.bytes > cursor.bytes {
                depth.bytes += counted.bytes - cursor.bytes;
                depth.lines += counted.lines.saturating_sub(cursor.lines);
            }
        }
        depth
    }
}

/// The complete lines in `[from, to)` of `path`: their bytes (up to the last `\n`)
/// and count.
fn count_lines(path: &Path, from: u64, to: u64) -> std::io::Result<Option<Cursor>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file.take(to - from));
    let (mut pos, mut last_end, mut lines) = (0u64, 0u64, 0u64);
    loop {
        let buf = std::io::BufRead::fill_buf(&mut reader)?;
        if buf.is_empty() {
            break;
        }
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                lines += 1;
                last_end = pos + i as u64 + 1;
            }
        }
        let n = buf.len();
        pos += n as u64;
        std::io::BufRead::consume(&mut reader, n);
    }
    Ok((lines > 0).then_some(Cursor {
        bytes: last_end,
        lines,
        tail: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_whole_lines_and_depth_counts_only_complete_ones() {
        let dir = tempfile::tempdir().expect("test");
        let path = Stream::Audit.path(dir.path());
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"torn").expect("test");
        let Read::Lines(b) = read_batch(&path, Cursor::default(), 10).expect("test") else {
            panic!("lines")
        };
        assert_eq!(b.bytes, b"{\"a\":1}\n");
        assert_eq!(b.lines().collect::<Vec<_>>(), vec![&b"{\"a\":1}"[..]]);
        let Read::Lines(rest) = read_batch(&path, b.to(), 1 << 20).expect("test") else {
            panic!("lines")
        };
        assert_eq!(rest.lines, 2);
        assert_eq!(
            rest.to(),
            Cursor {
                bytes: 24,
                lines: 3,
                tail: Tail::of(b"{\"a\":2}\n{\"a\":3}\n"),
            }
        );
        assert!(matches!(
            read_batch(&path, rest.to(), 1 << 20).expect("test"),
            Read::UpToDate
        ));
        let mut counter = DepthCounter::default();
        let mut cursors = LocalCursors::default();
        assert_eq!(
            counter.depth(dir.path(), &cursors),
            Depth {
                lines: 3,
                bytes: 24
            }
        );
        cursors.cursors.insert("audit".into(), b.to());
        assert_eq!(
            counter.depth(dir.path(), &cursors),
            Depth {
                lines: 2,
                bytes: 16
            }
        );
        // The torn line is finished: it counts now.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("test")
            .write_all(b"\"}\n")
            .expect("test");
        assert_eq!(counter.depth(dir.path(), &cursors).lines, 3);
        assert!(matches!(
            read_batch(
                &path,
                Cursor {
                    bytes: 10_000,
                    lines: 9,
                    tail: None,
                },
                10
            )
            .expect("test"),
            Read::Replaced { .. }
        ));
    }

    #[test]
    fn a_file_rewritten_under_its_cursor_is_replaced_never_read_mid_line() {
        let dir = tempfile::tempdir().expect("test");
        let path = Stream::Treatments.path(dir.path());
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n").expect("test");
        let at = Cursor {
            bytes: 8,
            lines: 1,
            tail: None,
        };
        assert!(matches!(
            read_batch(&path, at, 1 << 20).expect("test"),
            Read::Lines(_)
        ));
        // Emptied and written again past the cursor: the cursor is mid-line now.
        std::fs::write(&path, b"{\"b\":10}\n{\"b\":20}\n").expect("test");
        assert!(matches!(
            read_batch(&path, at, 1 << 20).expect("test"),
            Read::Replaced { len: 18 }
        ));
    }

    #[test]
    fn files_removed_cut_or_replaced_after_upload_are_named_blocked_unless_they_upload_again() {
        let dir = tempfile::tempdir().expect("test");
        let root = dir.path();
        std::fs::create_dir_all(root.join(SESSIONS_DIR)).expect("test");
        let record = Stream::Record("2026-12-01-a.jsonl".into());
        let mut cursors = LocalCursors::default();
        let at = |bytes| Cursor {
            bytes,
            lines: 1,
            tail: None,
        };
        for s in [
            &record,
            &Stream::Accounts,
            &Stream::Cartridges,
            &Stream::Amendments,
        ] {
            cursors.cursors.insert(s.name(), at(8));
        }
        // The record is gone; the accounts' file cut mid-line; the cartridges' cut
        // (they upload again); the amendments' as uploaded.
        std::fs::write(Stream::Accounts.path(root), b"{\"a\":1}").expect("test");
        std::fs::write(Stream::Cartridges.path(root), b"{}\n").expect("test");
        std::fs::write(Stream::Amendments.path(root), b"{\"a\":1}\n").expect("test");
        assert_eq!(removed(root, &cursors), vec![record.clone()]);
        let names: Vec<String> = blocked(root, &cursors)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec![record.name(), Stream::Accounts.name()]);
    }

    #[test]
    fn a_file_written_again_whose_line_ends_fall_at_the_cursor_is_told_apart_by_its_tail() {
        let dir = tempfile::tempdir().expect("test");
        let path = Stream::Accounts.path(dir.path());
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n").expect("test");
        let Read::Lines(sent) = read_batch(&path, Cursor::default(), 1 << 20).expect("test") else {
            panic!("lines")
        };
        let at = sent.to();
        assert_eq!(at.tail, Some(Tail::hashed(b"{\"a\":2}\n")));
        // The same file grown: read on from the cursor.
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").expect("test");
        assert!(matches!(
            read_batch(&path, at, 1 << 20).expect("test"),
            Read::Lines(b) if b.bytes == b"{\"a\":3}\n"
        ));
        // Cut to its first line, then written again to the same length and beyond:
        // the byte before the cursor still ends a line, but it is not the line sent.
        std::fs::write(&path, b"{\"a\":1}\n{\"x\":9}\n{\"a\":3}\n").expect("test");
        assert!(matches!(
            read_batch(&path, at, 1 << 20).expect("test"),
            Read::Replaced { .. }
        ));
        // A line longer than the tail's window: its end is what is kept.
        let long = format!("{{\"n\":\"{}\"}}\n", "x".repeat(2 * TAIL_MAX_BYTES));
        let tail = Tail::of(long.as_bytes()).expect("a tail");
        assert_eq!(tail.len as usize, TAIL_MAX_BYTES);
    }

    use std::io::Write as _;
}
