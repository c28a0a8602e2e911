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

/// `2013-02-22 10:15` (UTC).
pub fn minute(t: Timestamp) -> String {
    crate::text::format_time(t.sec)
}

/// `2013-02-22` (UTC).
pub fn day(t: Timestamp) -> String {
    crate::text::format_date(t.sec)
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

/// Cut `s` to at most `width` terminal columns by taking out its middle:
/// `libmysqlclient_r.so.16.0.0` → `libmysq…so.16.0.0`. Both ends say the
/// most about a file name (what it is, and its extension or version).
pub fn cut_middle(s: &str, width: usize) -> String {
    use crate::text::columns;
    if columns(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let room = width - 1;
    let (head_w, tail_w) = (room.div_ceil(2), room / 2);
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = columns(c.encode_utf8(&mut [0u8; 4]));
        if used + w > head_w {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used_tail = 0;
    for c in s.chars().rev() {
        let w = columns(c.encode_utf8(&mut [0u8; 4]));
        if used_tail + w > tail_w {
            break;
        }
        used_tail += w;
        tail.push(c);
    }
    tail.reverse();
    let tail: String = tail.into_iter().collect();
    format!("{head}…{tail}")
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
        assert_eq!(cut_middle("libmysqlclient_r.so.16", 11), "libmy…so.16");
        assert_eq!(cut_middle("short", 11), "short");
        assert_eq!(cut_middle("abc", 1), "…");
        assert_eq!(cut_middle("abc", 0), "");
        // Wide characters count two columns and are never split.
        assert_eq!(cut_middle("数据库备份文件", 6), "数…件");
    }
}
