//! Showing bytes from an image to a person.
//!
//! Guest names are bytes, not UTF-8, and may hold escape sequences meant to
//! drive a terminal. Everything shown goes through [`escape`]: printable
//! UTF-8 stays as it is, control characters and invalid bytes become `\xNN`,
//! and a backslash becomes `\\`, so the output can be read back unambiguously.

/// Escape `bytes` for display on a terminal.
pub fn escape(bytes: &[u8]) -> String {
    escape_tabs(bytes, None)
}

/// Escape a line of a file for the viewer: as [`escape`], except that a
/// tab becomes spaces up to the next stop (every `tab` columns) when
/// `tab` is given.
pub fn escape_tabs(bytes: &[u8], tab: Option<usize>) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut col = 0usize;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match tab {
                Some(t) if c == '\t' && t > 0 => {
                    let n = t - col % t;
                    out.extend(std::iter::repeat_n(' ', n));
                    col += n;
                }
                _ => {
                    let before = out.len();
                    push_char(&mut out, c);
                    if tab.is_some() {
                        col += columns(&out[before..]);
                    }
                }
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
            col += 4;
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

/// A mountpoint (from a guest's fstab, or a Windows guest's drive) for
/// display: a drive (`C:\`) as Windows writes it, any other as
/// [`escape_str`] shows a string from an image.
pub fn escape_mountpoint(m: &str) -> String {
    match m.as_bytes() {
        [letter, b':', b'\\'] if letter.is_ascii_alphabetic() => m.to_string(),
        _ => escape_str(m),
    }
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

/// Terminal columns `s` takes (wide characters, as in CJK names, take two).
pub fn columns(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` and spaces up to `width` columns: after it, or before it when `right`.
pub fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(columns(s)));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// `n` and the noun: `1 file`, `2 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether two names are the same without case, as Windows compares them
/// (NTFS's `$UpCase` table, registry key and value names): one character
/// for one, so a character whose upper case is several (`ß`) stays itself.
/// Names that are not UTF-8 compare only ASCII letters without case.
pub fn same_without_case(a: &[u8], b: &[u8]) -> bool {
    fn up(c: char) -> char {
        let mut u = c.to_uppercase();
        match (u.next(), u.next()) {
            (Some(one), None) => one,
            _ => c,
        }
    }
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(a), Ok(b)) => a.chars().map(up).eq(b.chars().map(up)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::same_without_case;

    #[test]
    fn names_without_case_as_windows_compares_them() {
        assert!(same_without_case(b"System32", b"SYSTEM32"));
        assert!(same_without_case(
            "Größe.txt".as_bytes(),
            "GRößE.TXT".as_bytes()
        ));
        assert!(same_without_case(
            "ünïcødé".as_bytes(),
            "ÜNÏCØDÉ".as_bytes()
        ));
        // One character for one: ß is not SS.
        assert!(!same_without_case("ß".as_bytes(), b"SS"));
        assert!(!same_without_case(b"abc", b"abd"));
        assert!(same_without_case(b"caf\xe9", b"CAF\xe9"));
    }

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

/// Undo the `\ooo` octal escapes of fstab and `/proc/mounts` (a space is
/// written `\040`). Escapes above `\377` are kept as they are.
pub fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A Unix time as `YYYY-MM-DD HH:MM` in UTC.
pub fn format_time(sec: i64) -> String {
    let (y, m, d) = civil_from_days(sec.div_euclid(86_400));
    let s = sec.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        s / 3600,
        (s % 3600) / 60
    )
}

/// A Unix time as `YYYY-MM-DD` in UTC.
pub fn format_date(sec: i64) -> String {
    let (y, m, d) = civil_from_days(sec.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn unescapes_fstab_octal() {
        assert_eq!(unescape_octal("/my\\040dir"), b"/my dir");
        assert_eq!(unescape_octal("a\\777b"), b"a\\777b");
        assert_eq!(unescape_octal("end\\04"), b"end\\04");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_488_450_780), "2017-03-02 10:33");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(-86_400), "1969-12-31");
    }
}
