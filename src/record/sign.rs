//! Signed records: at the end of a session the practitioner signs the record by
//! entering the PIN again, and a closing `signature` line is appended with the
//! SHA-256 of every byte before it, the account and the time (21 CFR 11.50 and 11.70:
//! the signature names the signer, the time and its meaning, and is linked to the
//! record so that a change to the record breaks it).
//!
//! A signed record is final: [`sign`] refuses a record that is signed already, that
//! is not closed (no summary line), or that does not end with a whole line; and
//! nothing else is appended after the signature (amendments go to
//! `amendments.jsonl`). [`check`] recomputes the hash: any byte changed before the
//! signature line, or after it, shows.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::format::{Line, SignatureLine};
use crate::store::audit::hex;

/// What a signature means: the practitioner reviewed the record and approves it.
pub const MEANING: &str = "reviewed and approved";

/// A record's signature as [`check`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// No signature line.
    Unsigned,
    /// Signed, and the hash matches every byte before the signature line.
    Valid(SignatureLine),
    /// A signature line whose hash does not match: the record changed after it was
    /// signed (or the line itself was edited).
    Broken {
        /// The signature as written.
        signature: SignatureLine,
        /// What is wrong.
        why: String,
    },
}

impl SignatureStatus {
    /// One line for a person.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            SignatureStatus::Unsigned => "UNSIGNED".to_owned(),
            SignatureStatus::Valid(s) => format!(
                "signed by {} ({}) at {}, {}; SHA-256 verified ({} bytes)",
                s.account,
                s.name,
                crate::record::format::utc_text(s.utc_ms),
                s.meaning,
                s.bytes
            ),
            SignatureStatus::Broken { signature, why } => format!(
                "SIGNATURE BROKEN: signed by {} at {}, but {why}",
                signature.account,
                crate::record::format::utc_text(signature.utc_ms)
            ),
        }
    }
}

/// Why a record cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Signed already: nothing is appended to a signed record.
    #[error("the record is signed already ({0}); amendments go to the client file")]
    AlreadySigned(String),
    /// No summary: the session is not closed (or the record was interrupted).
    #[error("the record has no summary line: only a closed session's record is signed")]
    NotClosed,
    /// The last line is cut short.
    #[error("the record does not end with a whole line: it cannot be signed as it is")]
    Torn,
    /// The file could not be read or written.
    #[error("cannot sign {}: {source}", path.display())]
    Io {
        /// The record.
        path: std::path::PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// How much of a record's end is read to find its last lines (a signature line is
/// far shorter; a summary line too).
const TAIL_WINDOW_BYTES: u64 = 256 * 1024;

/// Appends the signature line to the closed record at `path`, signed by `account`
/// (`name`) at `utc_ms`, and syncs it. Returns the line. The record is read once, in
/// constant memory, whatever its size.
pub fn sign(
    path: &Path,
    account: &str,
    name: &str,
    utc_ms: i64,
) -> Result<SignatureLine, SignError> {
    let io_error = |source| SignError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io_error)?;
    let (tail_start, tail) = read_tail(&mut file).map_err(io_error)?;
    if let Some(status) = find_signature(&mut file, tail_start, &tail).map_err(io_error)? {
        return Err(SignError::AlreadySigned(status.describe()));
    }
    if tail.last() != Some(&b'\n') {
        return Err(SignError::Torn);
    }
    let closed = matches!(
        serde_json::from_slice::<Line>(last_line(&tail)),
        Ok(Line::Summary(_))
    );
    if !closed {
        return Err(SignError::NotClosed);
    }
    let len = file.metadata().map_err(io_error)?.len();
    let sha256 = hash_prefix(&mut file, len).map_err(io_error)?;
    let signature = SignatureLine {
        utc_ms,
        account: account.to_owned(),
        name: name.to_owned(),
        meaning: MEANING.to_owned(),
        sha256,
        bytes: len,
    };
    let mut line = serde_json::to_vec(&Line::Signature(signature.clone()))
        .map_err(|e| io_error(io::Error::other(e)))?;
    line.push(b'\n');
    file.seek(SeekFrom::End(0)).map_err(io_error)?;
    file.write_all(&line).map_err(io_error)?;
    file.sync_data().map_err(io_error)?;
    Ok(signature)
}

/// The signature of the record at `path`, verified: the file's end is read for the
/// signature line, the bytes before it hashed in constant memory.
pub fn check(path: &Path) -> io::Result<SignatureStatus> {
    let mut file = crate::files::open_regular(path)?;
    let (tail_start, tail) = read_tail(&mut file)?;
    Ok(find_signature(&mut file, tail_start, &tail)?.unwrap_or(SignatureStatus::Unsigned))
}

/// [`check`] on a record's bytes in memory.
#[must_use]
pub fn check_bytes(bytes: &[u8]) -> SignatureStatus {
    let mut cursor = io::Cursor::new(bytes);
    find_signature(&mut cursor, 0, bytes)
        .ok()
        .flatten()
        .unwrap_or(SignatureStatus::Unsigned)
}

/// The file's last [`TAIL_WINDOW_BYTES`], and where they start.
fn read_tail(file: &mut fs::File) -> io::Result<(u64, Vec<u8>)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_WINDOW_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    Ok((start, tail))
}

/// Looks for a signature among the last lines of `tail` (the bytes of `reader` from
/// `tail_start` on) and verifies it against the bytes of `reader` before it. `None`:
/// no signature line. Whatever follows a signature is a change after signing.
fn find_signature<R: Read + Seek>(
    reader: &mut R,
    tail_start: u64,
    tail: &[u8],
) -> io::Result<Option<SignatureStatus>> {
    let mut end = tail.len();
    for _ in 0..64 {
        if end == 0 {
            break;
        }
        let body_end = if tail[end - 1] == b'\n' { end - 1 } else { end };
        let start = memchr::memrchr(b'\n', &tail[..body_end]).map_or(0, |i| i + 1);
        let line = &tail[start..body_end];
        // Any JSON spelling of a signature line counts (spaces, key order): one
        // re-serialised must not pass for no signature.
        if memchr::memmem::find(line, b"signature").is_some()
            && let Ok(Line::Signature(signature)) = serde_json::from_slice::<Line>(line)
        {
            let before = tail_start + start as u64;
            let after = tail.len() - end;
            let hash = hash_prefix(reader, before)?;
            if hash != signature.sha256 || before != signature.bytes {
                return Ok(Some(SignatureStatus::Broken {
                    why: format!(
                        "the {before} bytes before the signature do not hash to what was \
                         signed: the record was changed after signing"
                    ),
                    signature,
                }));
            }
            if after > 0 {
                return Ok(Some(SignatureStatus::Broken {
                    why: format!("{after} bytes were appended after the signature"),
                    signature,
                }));
            }
            return Ok(Some(SignatureStatus::Valid(signature)));
        }
        end = start;
    }
    Ok(None)
}

/// SHA-256 (hex) of the first `len` bytes of `reader`, read in 1 MiB blocks.
fn hash_prefix<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<String> {
    reader.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0_u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
        let n = reader.read(&mut block[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the record ended while it was read",
            ));
        }
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

/// The last line of `bytes` (which end with a newline), without it.
fn last_line(bytes: &[u8]) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
    &body[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed record: a header, a note and a summary line.
    fn record() -> String {
        let summary = serde_json::to_string(&Line::Summary(Box::default())).expect("json");
        format!(
            "{}\n{}\n{summary}\n",
            r#"{"type":"header","format":"punctum-session","version":4,"utc_ms":1}"#,
            r#"{"type":"note","utc_ms":2,"author":"P-7","text":"ok"}"#
        )
    }

    #[test]
    fn a_signed_record_verifies_and_fails_after_any_byte_changes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("r.jsonl");
        let record = record();
        fs::write(&path, &record).expect("write");
        assert_eq!(check(&path).expect("read"), SignatureStatus::Unsigned);
        let sig = sign(&path, "P-7", "Pat Seven", 4).expect("sign");
        assert_eq!(sig.bytes, record.len() as u64);
        assert!(matches!(
            check(&path).expect("read"),
            SignatureStatus::Valid(_)
        ));
        assert!(matches!(
            sign(&path, "P-7", "Pat Seven", 5),
            Err(SignError::AlreadySigned(_))
        ));
        let signed = fs::read(&path).expect("read");
        // Every byte before the signature line, flipped one at a time.
        for i in 0..record.len() {
            let mut changed = signed.clone();
            changed[i] ^= 0x01;
            assert!(
                !matches!(check_bytes(&changed), SignatureStatus::Valid(_)),
                "byte {i} changed and still valid"
            );
        }
        // The signature line's own bytes: its hash or length edited.
        let text = String::from_utf8(signed.clone()).expect("utf8");
        let forged = text.replace(&sig.sha256, &"0".repeat(64));
        assert!(matches!(
            check_bytes(forged.as_bytes()),
            SignatureStatus::Broken { .. }
        ));
        let mut appended = signed.clone();
        appended.extend_from_slice(
            b"{\"type\":\"note\",\"utc_ms\":9,\"author\":\"x\",\"text\":\"late\"}\n",
        );
        assert!(matches!(
            check_bytes(&appended),
            SignatureStatus::Broken { .. }
        ));
    }

    #[test]
    fn only_a_closed_whole_record_is_signed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("r.jsonl");
        let record = record();
        let open = record.rsplit_once(r#"{"type":"summary""#).expect("split").0;
        fs::write(&path, open).expect("write");
        assert!(matches!(
            sign(&path, "P-7", "P", 4),
            Err(SignError::NotClosed)
        ));
        fs::write(&path, record.trim_end()).expect("write");
        assert!(matches!(sign(&path, "P-7", "P", 4), Err(SignError::Torn)));
    }
}
