//! Formatting numbers, sizes and times for the screen.
//!
//! Times are shown in UTC (`2013-02-22 10:15`), the same on every host, so a
//! screen can be compared with another operator's and tests are repeatable.

use std::time::Duration;

use humansize::{BINARY, FormatSizeOptions, format_size};

use crate::fs::Timestamp;

fn size_options() -> FormatSizeOptions {
    BINARY.decimal_places(1).decimal_zeroes(0)
}

/// A byte count for a person: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn size(bytes: u64) -> String {
    format_size(bytes, size_options())
}

/// A rate in bytes per second: `12.3 MiB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    if !bytes_per_sec.is_finite() || bytes_per_sec < 0.0 {
        return "-".into();
    }
    format!("{}/s", size(bytes_per_sec as u64))
}

/// A duration as `1:02:03` or `2:03`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2013-02-22 10:15` (UTC).
pub fn minute(t: Timestamp) -> String {
    let days = t.sec.div_euclid(86_400);
    let secs = t.sec.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60
    )
}

/// `2013-02-22` (UTC).
pub fn day(t: Timestamp) -> String {
    let (y, mo, d) = civil_from_days(t.sec.div_euclid(86_400));
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `2013-02-22 10:15:42.123456789 UTC`, for the details window.
pub fn full(t: Timestamp) -> String {
    let secs = t.sec.rem_euclid(86_400);
    format!(
        "{}:{:02}.{:09} UTC",
        minute(t),
        secs % 60,
        t.nsec.min(999_999_999)
    )
}

/// Last line of defence before text reaches a widget: any control or
/// bidirectional-override character left (there should be none: image text is
/// escaped with [`crate::text::escape`] when it enters the app) becomes `�`.
pub fn safe(s: &str) -> String {
    if !s.chars().any(dangerous) {
        return s.to_string();
    }
    s.chars()
        .map(|c| if dangerous(c) { '\u{fffd}' } else { c })
        .collect()
}

fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Cut `s` to at most `width` characters, keeping its end (`…/lib/mysql`).
pub fn keep_end(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(minute(Timestamp { sec: 0, nsec: 0 }), "1970-01-01 00:00");
        assert_eq!(
            minute(Timestamp {
                sec: 1_361_528_100,
                nsec: 0
            }),
            "2013-02-22 10:15"
        );
        assert_eq!(
            day(Timestamp {
                sec: 951_782_400,
                nsec: 0
            }),
            "2000-02-29"
        );
        assert_eq!(
            day(Timestamp {
                sec: -86_400,
                nsec: 0
            }),
            "1969-12-31"
        );
        assert_eq!(
            full(Timestamp {
                sec: 1_361_528_142,
                nsec: 5
            }),
            "2013-02-22 10:15:42.000000005 UTC"
        );
    }

    #[test]
    fn sizes_and_text() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(2 << 30), "2 GiB");
        assert_eq!(duration(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(duration(Duration::from_secs(65)), "1:05");
        assert_eq!(safe("a\x1b[2Jb"), "a\u{fffd}[2Jb");
        assert_eq!(keep_end("/var/lib/mysql", 8), "…b/mysql");
    }
}
