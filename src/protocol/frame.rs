//! Framing: `BODY "*" CRC "\n"`, the CRC, and the streaming decoder.
//!
//! The decoder is the one place where raw bytes from the wire become lines. It never
//! allocates after construction (a telemetry line is checked in place, or copied into
//! a fixed 256-byte buffer when it arrives split across reads), it resynchronises at
//! the next `\n` after any garbage, and it counts every discarded line by reason.

use std::fmt;

/// Longest body the protocol allows (section 2).
pub const MAX_BODY_LEN: usize = 250;
/// A line longer than this many bytes before its `\n` is discarded (section 2).
pub const MAX_LINE_LEN: usize = 256;
/// The emergency-stop byte (CAN), sent by the host at any moment (section 3).
pub const ESTOP_BYTE: u8 = 0x18;

/// Slice-by-16 tables: the CRC is most of the decoder's work per line.
const CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_IBM_3740);

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).
///
/// The catalogue names this CRC `CRC-16/IBM-3740`; it is the one the pen maker calls
/// CCITT-FALSE.
#[must_use]
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

/// Why a body cannot be framed: the protocol's rules for `BODY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is empty.
    #[error("frame body is empty")]
    Empty,
    /// The body is longer than 250 bytes.
    #[error("frame body is {len_bytes} bytes, more than 250")]
    TooLong {
        /// Its length.
        len_bytes: usize,
    },
    /// The body holds a byte that is not printable ASCII, or a `*`.
    #[error("frame body holds byte 0x{byte:02X}, which is not printable ASCII or is '*'")]
    BadByte {
        /// The offending byte.
        byte: u8,
    },
}

/// Checks a body against section 2: 1..=250 printable ASCII bytes, no `*`.
pub fn check_body(body: &[u8]) -> Result<(), BodyError> {
    if body.is_empty() {
        return Err(BodyError::Empty);
    }
    if body.len() > MAX_BODY_LEN {
        return Err(BodyError::TooLong {
            len_bytes: body.len(),
        });
    }
    if let Some(&byte) = body
        .iter()
        .find(|&&b| !(0x20..=0x7E).contains(&b) || b == b'*')
    {
        return Err(BodyError::BadByte { byte });
    }
    Ok(())
}

/// Appends the framed line `BODY*CRC\n` to `out`.
pub fn encode_frame(body: &str, out: &mut Vec<u8>) -> Result<(), BodyError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    check_body(body.as_bytes())?;
    out.reserve(body.len() + 6);
    out.extend_from_slice(body.as_bytes());
    out.push(b'*');
    let crc = crc16(body.as_bytes());
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((crc >> shift) & 0xF)]);
    }
    out.push(b'\n');
    Ok(())
}

/// Why a received line was discarded. Nothing in a discarded line is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// Longer than 256 bytes before its `\n`.
    TooLong,
    /// No `*` in the line.
    NoStar,
    /// The CRC field is not exactly 4 uppercase hex digits.
    BadCrcDigits,
    /// The CRC does not match the body.
    CrcMismatch,
    /// The CRC matched, but the body breaks section 2 (empty, over 250 bytes,
    /// unprintable bytes or a second `*`).
    BadBody,
    /// The first word is not one this side knows (counted, then ignored).
    UnknownWord,
    /// A known first word with fields of the wrong count or form.
    BadFields,
}

impl DiscardReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [Self; 7] = [
        Self::TooLong,
        Self::NoStar,
        Self::BadCrcDigits,
        Self::CrcMismatch,
        Self::BadBody,
        Self::UnknownWord,
        Self::BadFields,
    ];

    /// A short stable name, used in status lines and statistics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::NoStar => "no_star",
            Self::BadCrcDigits => "bad_crc_digits",
            Self::CrcMismatch => "crc_mismatch",
            Self::BadBody => "bad_body",
            Self::UnknownWord => "unknown_word",
            Self::BadFields => "bad_fields",
        }
    }
}

impl fmt::Display for DiscardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts of discarded lines, one counter per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiscardCounts {
    /// Lines over 256 bytes.
    pub too_long: u64,
    /// Lines with no `*`.
    pub no_star: u64,
    /// Lines whose CRC field is not 4 uppercase hex digits.
    pub bad_crc_digits: u64,
    /// Lines whose CRC did not match.
    pub crc_mismatch: u64,
    /// Lines whose body broke section 2 although the CRC matched.
    pub bad_body: u64,
    /// Lines with an unknown first word.
    pub unknown_word: u64,
    /// Lines with a known first word and malformed fields.
    pub bad_fields: u64,
}

impl DiscardCounts {
    /// Adds one to the counter for `reason`.
    pub fn count(&mut self, reason: DiscardReason) {
        *self.get_mut(reason) += 1;
    }

    /// The counter for `reason`.
    #[must_use]
    pub fn get(&self, reason: DiscardReason) -> u64 {
        match reason {
            DiscardReason::TooLong => self.too_long,
            DiscardReason::NoStar => self.no_star,
            DiscardReason::BadCrcDigits => self.bad_crc_digits,
            DiscardReason::CrcMismatch => self.crc_mismatch,
            DiscardReason::BadBody => self.bad_body,
            DiscardReason::UnknownWord => self.unknown_word,
            DiscardReason::BadFields => self.bad_fields,
        }
    }

    fn get_mut(&mut self, reason: DiscardReason) -> &mut u64 {
        match reason {
            DiscardReason::TooLong => &mut self.too_long,
            DiscardReason::NoStar => &mut self.no_star,
            DiscardReason::BadCrcDigits => &mut self.bad_crc_digits,
            DiscardReason::CrcMismatch => &mut self.crc_mismatch,
            DiscardReason::BadBody => &mut self.bad_body,
            DiscardReason::UnknownWord => &mut self.unknown_word,
            DiscardReason::BadFields => &mut self.bad_fields,
        }
    }

    /// All discarded lines together.
    #[must_use]
    pub fn total(&self) -> u64 {
        DiscardReason::ALL.iter().map(|&r| self.get(r)).sum()
    }
}

/// What the decoder hands out, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A line whose CRC matched: its body, printable ASCII without `*`.
    Frame(&'a str),
    /// The E-stop byte (only when the decoder watches for it: the pen side).
    EStop,
    /// A line that was discarded, and why.
    Discarded(DiscardReason),
}

/// The streaming decoder: bytes in, frames out.
///
/// It keeps at most one partial line (256 bytes) between calls. `\r` is ignored
/// wherever it appears. With [`FrameDecoder::watching_estop`], a `0x18` byte anywhere
/// is reported at once and discards the partial line around it (the pen's side of
/// section 3); the host side leaves it off, since a pen never sends that byte.
#[derive(Debug)]
pub struct FrameDecoder {
    /// The partial line, without `\r`; never longer than `MAX_LINE_LEN`.
    partial: Vec<u8>,
    /// The current line has gone past `MAX_LINE_LEN`; drop bytes until `\n`.
    overflowed: bool,
    watch_estop: bool,
    discards: DiscardCounts,
    frames_ok: u64,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder for the host side (the E-stop byte is just a bad byte there).
    #[must_use]
    pub fn new() -> Self {
        Self {
            partial: Vec::with_capacity(MAX_LINE_LEN),
            overflowed: false,
            watch_estop: false,
            discards: DiscardCounts::default(),
            frames_ok: 0,
        }
    }

    /// A decoder for the pen side, which acts on the E-stop byte mid-line.
    #[must_use]
    pub fn watching_estop() -> Self {
        Self {
            watch_estop: true,
            ..Self::new()
        }
    }

    /// Lines discarded so far, by reason. Callers that reject a frame at the message
    /// level (unknown word, bad fields) add to these with [`Self::count_discard`].
    #[must_use]
    pub fn discards(&self) -> &DiscardCounts {
        &self.discards
    }

    /// Frames whose CRC matched so far.
    #[must_use]
    pub fn frames_ok(&self) -> u64 {
        self.frames_ok
    }

    /// Counts a frame that passed the CRC but was rejected by the message parser.
    pub fn count_discard(&mut self, reason: DiscardReason) {
        self.discards.count(reason);
    }

    /// Forgets any partial line (after a reconnection, say).
    pub fn reset_partial(&mut self) {
        self.partial.clear();
        self.overflowed = false;
    }

    /// Feeds `input`, calling `sink` for each frame, E-stop and discarded line, in order.
    pub fn feed(&mut self, mut input: &[u8], mut sink: impl FnMut(Decoded<'_>)) {
        while !input.is_empty() {
            let stop = if self.watch_estop {
                memchr::memchr3(b'\n', b'\r', ESTOP_BYTE, input)
            } else {
                memchr::memchr2(b'\n', b'\r', input)
            };
            let Some(pos) = stop else {
                self.append(input);
                return;
            };
            let (segment, rest) = input.split_at(pos);
            let special = rest[0];
            input = &rest[1..];
            match special {
                b'\r' => self.append(segment),
                ESTOP_BYTE => {
                    self.reset_partial();
                    sink(Decoded::EStop);
                }
                _ => {
                    // End of line. The common case, a whole line in one read with no
                    // partial before it, is checked in place without copying.
                    if self.partial.is_empty() && !self.overflowed {
                        if segment.len() > MAX_LINE_LEN {
                            self.discard(DiscardReason::TooLong, &mut sink);
                        } else {
                            self.finish_line(segment, &mut sink);
                        }
                    } else {
                        self.append(segment);
                        if self.overflowed {
                            self.reset_partial();
                            self.discard(DiscardReason::TooLong, &mut sink);
                        } else {
                            let line = std::mem::take(&mut self.partial);
                            self.finish_line(&line, &mut sink);
                            self.partial = line;
                            self.partial.clear();
                        }
                    }
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_LINE_LEN {
            self.overflowed = true;
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn discard(&mut self, reason: DiscardReason, sink: &mut impl FnMut(Decoded<'_>)) {
        self.discards.count(reason);
        sink(Decoded::Discarded(reason));
    }

    fn finish_line(&mut self, line: &[u8], sink: &mut impl FnMut(Decoded<'_>)) {
        match check_line(line) {
            Ok(body) => {
                self.frames_ok += 1;
                sink(Decoded::Frame(body));
            }
            Err(reason) => self.discard(reason, sink),
        }
    }
}

/// Checks one line (without `\r` and `\n`, at most 256 bytes) and returns its body.
fn check_line(line: &[u8]) -> Result<&str, DiscardReason> {
    let Some(star) = memchr::memrchr(b'*', line) else {
        return Err(DiscardReason::NoStar);
    };
    let (body, crc_field) = (&line[..star], &line[star + 1..]);
    let Some(crc_sent) = parse_crc_field(crc_field) else {
        return Err(DiscardReason::BadCrcDigits);
    };
    if crc16(body) != crc_sent {
        return Err(DiscardReason::CrcMismatch);
    }
    if check_body(body).is_err() {
        return Err(DiscardReason::BadBody);
    }
    // check_body proved every byte printable ASCII, so this cannot fail.
    std::str::from_utf8(body).map_err(|_| DiscardReason::BadBody)
}

fn parse_crc_field(field: &[u8]) -> Option<u16> {
    if field.len() != 4 {
        return None;
    }
    field.iter().try_fold(0u16, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u16::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        decoder.feed(bytes, |d| {
            out.push(match d {
                Decoded::Frame(body) => format!("frame:{body}"),
                Decoded::EStop => "estop".to_owned(),
                Decoded::Discarded(r) => format!("discard:{r}"),
            });
        });
        out
    }

    #[test]
    fn crc_matches_the_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn the_documents_examples_are_valid() {
        let examples = [
            "1 HELLO 1*B18E",
            "ACK 1*92BD",
            "3 DEPTH 500*B2DD",
            "T 0 1000 IDLE 0 500 0 251*2092",
            "EV 12 BOOT 7 POWER*5319",
        ];
        for line in examples {
            let (body, _) = line.split_once('*').expect("example has a star");
            let mut framed = Vec::new();
            encode_frame(body, &mut framed).expect("valid body");
            assert_eq!(framed, format!("{line}\n").into_bytes(), "encoding {body}");
            let mut d = FrameDecoder::new();
            assert_eq!(decode_all(&mut d, &framed), vec![format!("frame:{body}")]);
        }
    }

    #[test]
    fn every_discard_reason_is_counted_and_the_decoder_resynchronises() {
        let cases: &[(&[u8], &str)] = &[
            (b"ACK 1 92BD\n", "discard:no_star"),
            (b"ACK 1*92bd\n", "discard:bad_crc_digits"),
            (b"ACK 1*92B\n", "discard:bad_crc_digits"),
            (b"ACK 1*92BE\n", "discard:crc_mismatch"),
            (b"\n", "discard:no_star"),
        ];
        for (input, expected) in cases {
            let mut d = FrameDecoder::new();
            let mut bytes = input.to_vec();
            bytes.extend_from_slice(b"ACK 1*92BD\n");
            let got = decode_all(&mut d, &bytes);
            assert_eq!(got, vec![(*expected).to_owned(), "frame:ACK 1".to_owned()]);
            assert_eq!(d.discards().total(), 1);
            assert_eq!(d.frames_ok(), 1);
        }
    }

    #[test]
    fn a_line_over_256_bytes_is_discarded_even_when_split_across_reads() {
        let long = vec![b'A'; 300];
        let mut d = FrameDecoder::new();
        let mut got = decode_all(&mut d, &long[..100]);
        got.extend(decode_all(&mut d, &long[100..]));
        got.extend(decode_all(&mut d, b"\nACK 1*92BD\n"));
        assert_eq!(got, vec!["discard:too_long", "frame:ACK 1"]);
        assert_eq!(d.discards().too_long, 1);
    }

    #[test]
    fn a_line_of_exactly_256_bytes_is_not_too_long() {
        let mut d = FrameDecoder::new();
        let line = [b'x'; 256];
        assert_eq!(
            decode_all(&mut d, &[&line[..], b"\n"].concat()),
            vec!["discard:no_star"]
        );
    }

    #[test]
    fn carriage_returns_are_ignored_anywhere() {
        let mut d = FrameDecoder::new();
        assert_eq!(decode_all(&mut d, b"AC\rK 1*92BD\r\n"), vec!["frame:ACK 1"]);
    }

    #[test]
    fn split_lines_join_across_reads() {
        let mut d = FrameDecoder::new();
        let bytes = b"3 DEPTH 500*B2DD\n";
        for split in 0..bytes.len() {
            let mut got = decode_all(&mut d, &bytes[..split]);
            got.extend(decode_all(&mut d, &bytes[split..]));
            assert_eq!(got, vec!["frame:3 DEPTH 500"], "split at {split}");
        }
    }

    #[test]
    fn the_estop_byte_mid_line_is_reported_and_discards_the_partial_line() {
        let mut d = FrameDecoder::watching_estop();
        let got = decode_all(&mut d, b"3 DEP\x18TH 500*B2DD\n4 HB*0000\n");
        assert_eq!(got[0], "estop");
        // The rest of the broken line has no valid frame in it.
        assert!(!got.iter().any(|g| g.starts_with("frame:3")));
    }

    #[test]
    fn the_host_side_treats_the_estop_byte_as_a_bad_byte() {
        let mut d = FrameDecoder::new();
        let body = "A\u{18}B";
        let crc = crc16(body.as_bytes());
        let line = format!("{body}*{crc:04X}\n");
        assert_eq!(
            decode_all(&mut d, line.as_bytes()),
            vec!["discard:bad_body"]
        );
    }

    #[test]
    fn bodies_breaking_section_2_cannot_be_encoded() {
        let mut out = Vec::new();
        assert_eq!(encode_frame("", &mut out), Err(BodyError::Empty));
        assert_eq!(
            encode_frame("a*b", &mut out),
            Err(BodyError::BadByte { byte: b'*' })
        );
        assert_eq!(
            encode_frame(&"x".repeat(251), &mut out),
            Err(BodyError::TooLong { len_bytes: 251 })
        );
        assert!(encode_frame(&"x".repeat(250), &mut out).is_ok());
    }
}
