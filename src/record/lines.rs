//! Splitting a file into lines without ever holding more than one bounded buffer.
//!
//! A record can be as large as its disk, and a damaged one can hold gigabytes
//! without a newline. [`LineReader`] reads in fixed chunks into one buffer, hands
//! out each line as a slice of that buffer (no copy), and skips a line longer than
//! [`MAX_LINE_BYTES`] while reading it, keeping only its length. Whatever the file,
//! the reader holds [`MAX_LINE_BYTES`] plus one chunk.

use std::io::{self, Read};

/// The longest line handed out, newline excluded: 1 MiB. A header with a large
/// zone table and screening is a few KiB; anything longer is damage.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The default read size: large enough that syscalls cost nothing next to parsing.
pub const DEFAULT_CHUNK_BYTES: usize = 256 << 10;

/// One line of the file.
#[derive(Debug, PartialEq, Eq)]
pub enum RawLine<'a> {
    /// A line up to [`MAX_LINE_BYTES`] long, without its newline.
    Text {
        /// The line's bytes.
        bytes: &'a [u8],
        /// It ended with a newline (false only for a last line cut short).
        terminated: bool,
    },
    /// A line longer than [`MAX_LINE_BYTES`]: skipped, only its length is known.
    TooLong {
        /// Its length in bytes, newline excluded.
        len_bytes: u64,
        /// It ended with a newline (false if the file ended first).
        terminated: bool,
    },
}

/// Reads lines from `R` through one bounded buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    /// `MAX_LINE_BYTES + chunk` bytes: a partial line of up to the limit, plus room
    /// for one more read.
    buf: Vec<u8>,
    chunk_bytes: usize,
    /// The unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes after `start` already searched for a newline (none found).
    scanned: usize,
    /// Length so far of an over-long line being skipped, if one is.
    skipping: Option<u64>,
    eof: bool,
    done: bool,
    line_no: u64,
    bytes_read: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader with [`DEFAULT_CHUNK_BYTES`] reads.
    pub fn new(inner: R) -> Self {
        Self::with_chunk(inner, DEFAULT_CHUNK_BYTES)
    }

    /// A reader that reads `chunk_bytes` at a time (small for a quick look at a
    /// header, large for a whole file).
    pub fn with_chunk(inner: R, chunk_bytes: usize) -> Self {
        let chunk_bytes = chunk_bytes.max(1);
        LineReader {
            inner,
            buf: vec![0; MAX_LINE_BYTES + chunk_bytes],
            chunk_bytes,
            start: 0,
            end: 0,
            scanned: 0,
            skipping: None,
            eof: false,
            done: false,
            line_no: 0,
            bytes_read: 0,
        }
    }

    /// The number of the last line handed out (0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Bytes read from the file so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Bytes of the file handed out so far as lines (newlines included): where the
    /// next line starts.
    pub fn offset(&self) -> u64 {
        self.bytes_read - (self.end - self.start) as u64
    }

    /// The next line with its number (from 1), or `None` at the end of the file.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, RawLine<'_>)>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let from = self.start + self.scanned;
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[from..self.end]) {
                let line_end = from + pos;
                let line_start = self.start;
                self.start = line_end + 1;
                self.scanned = 0;
                self.line_no += 1;
                let len = line_end - line_start;
                let raw = match self.skipping.take() {
                    Some(skipped) => RawLine::TooLong {
                        len_bytes: skipped + len as u64,
                        terminated: true,
                    },
                    None if len > MAX_LINE_BYTES => RawLine::TooLong {
                        len_bytes: len as u64,
                        terminated: true,
                    },
                    None => RawLine::Text {
                        bytes: &self.buf[line_start..line_end],
                        terminated: true,
                    },
                };
                return Ok(Some((self.line_no, raw)));
            }
            self.scanned = self.end - self.start;
            if self.eof {
                return Ok(self.last_fragment());
            }
            self.make_room();
            self.fill()?;
        }
    }

    /// At the end of the file: what is left, a line without its newline, if any.
    fn last_fragment(&mut self) -> Option<(u64, RawLine<'_>)> {
        self.done = true;
        let len = self.end - self.start;
        let raw = match self.skipping.take() {
            Some(skipped) => RawLine::TooLong {
                len_bytes: skipped + len as u64,
                terminated: false,
            },
            None if len == 0 => return None,
            None if len > MAX_LINE_BYTES => RawLine::TooLong {
                len_bytes: len as u64,
                terminated: false,
            },
            None => RawLine::Text {
                bytes: &self.buf[self.start..self.end],
                terminated: false,
            },
        };
        self.start = self.end;
        self.line_no += 1;
        Some((self.line_no, raw))
    }

    /// Makes room for one chunk after the unconsumed bytes: drops a partial line
    /// that is already over the limit (keeping its length), else moves the partial
    /// line to the front of the buffer.
    fn make_room(&mut self) {
        let pending = self.end - self.start;
        if self.skipping.is_some() || pending > MAX_LINE_BYTES {
            *self.skipping.get_or_insert(0) += pending as u64;
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
        } else if self.start > 0 {
            // A partial line of a few hundred bytes at most in a sound file.
            self.buf.copy_within(self.start..self.end, 0);
            self.end = pending;
            self.start = 0;
        }
    }

    /// Reads one chunk (or less) after `end`; notes the end of the file.
    fn fill(&mut self) -> io::Result<()> {
        let want = self.chunk_bytes.min(self.buf.len() - self.end);
        loop {
            match self.inner.read(&mut self.buf[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as owned values: its text and whether it ended with a newline, or
    /// (for a line over the limit) its length and the same.
    type Owned = Result<(Vec<u8>, bool), (u64, bool)>;

    /// Every line of `data`, read `chunk` bytes at a time, as owned values.
    fn lines(data: &[u8], chunk: usize) -> Vec<(u64, Owned)> {
        let mut reader = LineReader::with_chunk(data, chunk);
        let mut out = Vec::new();
        while let Some((no, raw)) = reader.next_line().expect("reads from memory") {
            out.push(match raw {
                RawLine::Text { bytes, terminated } => (no, Ok((bytes.to_vec(), terminated))),
                RawLine::TooLong {
                    len_bytes,
                    terminated,
                } => (no, Err((len_bytes, terminated))),
            });
        }
        assert_eq!(reader.bytes_read(), data.len() as u64);
        assert_eq!(reader.offset(), data.len() as u64);
        out
    }

    #[test]
    fn lines_should_come_out_whole_whatever_the_read_size() {
        let data = b"one\ntwo two\n\nthree";
        for chunk in [1, 2, 3, 5, 64, 1 << 16] {
            assert_eq!(
                lines(data, chunk),
                vec![
                    (1, Ok((b"one".to_vec(), true))),
                    (2, Ok((b"two two".to_vec(), true))),
                    (3, Ok((Vec::new(), true))),
                    (4, Ok((b"three".to_vec(), false))),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_empty_input_should_have_no_lines_and_a_final_newline_no_empty_last_line() {
        assert!(lines(b"", 7).is_empty());
        assert_eq!(lines(b"a\n", 7), vec![(1, Ok((b"a".to_vec(), true)))]);
    }

    #[test]
    fn a_line_over_the_limit_should_be_skipped_with_its_length_and_the_next_one_kept() {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.extend_from_slice(b"\nafter\n");
        data.extend(std::iter::repeat_n(0_u8, 3 * MAX_LINE_BYTES));
        for chunk in [4096, 1 << 16, DEFAULT_CHUNK_BYTES] {
            assert_eq!(
                lines(&data, chunk),
                vec![
                    (1, Err(((MAX_LINE_BYTES + 10) as u64, true))),
                    (2, Ok((b"after".to_vec(), true))),
                    (3, Err(((3 * MAX_LINE_BYTES) as u64, false))),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_should_be_kept() {
        let mut data = vec![b'y'; MAX_LINE_BYTES];
        data.push(b'\n');
        let out = lines(&data, 1 << 16);
        assert_eq!(out.len(), 1);
        let (no, line) = &out[0];
        assert_eq!(*no, 1);
        assert_eq!(
            line.as_ref().map(|(b, t)| (b.len(), *t)),
            Ok((MAX_LINE_BYTES, true))
        );
    }
}
