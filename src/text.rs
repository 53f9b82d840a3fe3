//! Showing text that came from outside the program: safely, on one line.
//!
//! Notes, client and practitioner ids, file names, a clinic zone table's names, the
//! pen's INFO and CAL strings and any error that quotes them may hold control
//! characters. Written raw to a terminal, `ESC[2J` clears the screen, `ESC]0;…BEL`
//! retitles it and `ESC[31m` paints a fake red line; a newline forges a line of its
//! own. [`shown`] is the one rule for all of them: every control character (C0, DEL,
//! C1) and every bidirectional-override character is written as a visible escape
//! (`\u{1b}`, `\n`, `\u{202e}`), everything else as it is. Records keep the text
//! exactly as typed: escaping happens only where text is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with its control and bidi-override characters escaped (see the module doc).
/// Borrowed when there is nothing to escape, which is almost always.
#[must_use]
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`shown`] for multi-line text the program wrote itself around outside strings
/// that are already escaped: each line is escaped, the newlines between them kept.
#[must_use]
pub fn shown_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&shown(line));
    }
    out
}

/// The pen as every screen names it, from its INFO strings: `model · serial S · fw F`,
/// shown escaped (the strings are the pen's own).
#[must_use]
pub fn pen_line(model: &str, serial: &str, fw: &str) -> String {
    shown(&format!("{model} · serial {serial} · fw {fw}")).into_owned()
}

/// Control characters, and the characters that reorder text on screen (the
/// "Trojan Source" family): U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_made_visible_and_plain_text_is_untouched() {
        let typed = "redness \u{1b}[2J \u{1b}]0;TITLE\u{7} \u{1b}[31mFAKE alarm cleared \u{1b}[0m";
        assert_eq!(
            shown(typed),
            "redness \\u{1b}[2J \\u{1b}]0;TITLE\\u{7} \\u{1b}[31mFAKE alarm cleared \\u{1b}[0m"
        );
        assert_eq!(
            shown("a\nb\r\tc\u{7f}\u{9b}31m"),
            "a\\nb\\r\\tc\\u{7f}\\u{9b}31m"
        );
        assert_eq!(shown("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert!(matches!(shown("Joues – 0,5 mm µ é 日本"), Cow::Borrowed(_)));
        assert_eq!(shown_lines("a\u{1b}\nb"), "a\\u{1b}\nb");
    }
}
