//! Showing bytes from an image to a person.
//!
//! Guest names are bytes, not UTF-8, and may hold escape sequences meant to
//! drive a terminal. Everything shown goes through [`escape`]: printable
//! UTF-8 stays as it is, control characters and invalid bytes become `\xNN`,
//! and a backslash becomes `\\`, so the output can be read back unambiguously.

/// Escape `bytes` for display on a terminal.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Escape a string that came from an image (labels, names from metadata).
pub fn escape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_char(&mut out, c);
    }
    out
}

fn push_char(out: &mut String, c: char) {
    if c == '\\' {
        out.push_str("\\\\");
    } else if is_dangerous(c) {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    } else {
        out.push(c);
    }
}

/// Characters that must never reach a terminal raw: C0/C1 controls, DEL, and
/// the bidirectional overrides that can make a name read as another.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_invalid_bytes() {
        assert_eq!(escape(b"libc.so.6"), "libc.so.6");
        assert_eq!(escape(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape(b"caf\xe9"), "caf\\xe9");
        assert_eq!(escape("café".as_bytes()), "café");
        assert_eq!(escape(b"a\\b"), "a\\\\b");
        assert_eq!(escape("\u{9b}x".as_bytes()), "\\xc2\\x9bx");
        assert_eq!(escape(b"new\nline"), "new\\x0aline");
    }
}
