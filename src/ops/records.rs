//! Listings for scripts: one record per file, as a JSON array or as CSV.
//!
//! `ls --json`/`--csv` and `find --json`/`--csv` print the same record for a
//! file: what `ls -l` shows, under the names of [`FIELDS`]. The JSON object
//! and the CSV row are made from the same [`record`], so the two formats can
//! never disagree; `docs/json.md` documents the fields.

use std::io::Write;

use crate::fs::{FileType, Metadata};
use crate::ops::find::iso_time;
use crate::ops::list::Owners;
use crate::text::escape;

/// The fields of a record, in the order of the CSV columns.
pub const FIELDS: [&str; 17] = [
    "path",
    "type",
    "mode",
    "perm",
    "inode",
    "nlink",
    "uid",
    "gid",
    "user",
    "group",
    "size",
    "rdev",
    "mtime",
    "mtime_nsec",
    "mtime_iso",
    "target",
    "error",
];

/// What is known of a file: its metadata, or why it could not be read.
#[derive(Debug, Clone, Copy)]
pub enum Known<'a> {
    /// The metadata was read.
    Meta(&'a Metadata),
    /// It was not: the type when the directory entry gave one, and why.
    Unreadable {
        /// The type the directory entry gave, if any.
        file_type: Option<FileType>,
        /// Why the metadata could not be read.
        why: &'a str,
    },
}

/// The record of the file shown as `shown` (already escaped): every field of
/// [`FIELDS`], `null` where it does not apply (`rdev` but for devices,
/// `target` but for symlinks, `error` when the metadata was read). Paths
/// and targets are escaped as `ls` shows them.
pub fn record(
    shown: &str,
    known: Known<'_>,
    owners: &Owners,
    target: Option<&[u8]>,
) -> serde_json::Value {
    let m = match known {
        Known::Meta(m) => m,
        Known::Unreadable { file_type, why } => {
            let mut v = serde_json::Map::new();
            for f in FIELDS {
                v.insert(f.into(), serde_json::Value::Null);
            }
            v.insert("path".into(), shown.into());
            v.insert("type".into(), serde_json::json!(file_type));
            v.insert("error".into(), why.into());
            return serde_json::Value::Object(v);
        }
    };
    let rdev = matches!(m.file_type, FileType::CharDevice | FileType::BlockDevice)
        .then(|| serde_json::json!([m.rdev.0, m.rdev.1]));
    serde_json::json!({
        "path": shown,
        "type": m.file_type,
        "mode": m.mode_string(),
        "perm": format!("{:04o}", m.perm & 0o7777),
        "inode": m.ino,
        "nlink": m.nlink,
        "uid": m.uid,
        "gid": m.gid,
        "user": owners.user(m.uid),
        "group": owners.group(m.gid),
        "size": m.size,
        "rdev": rdev,
        "mtime": m.mtime.sec,
        "mtime_nsec": m.mtime.nsec,
        "mtime_iso": iso_time(m.mtime),
        "target": target.map(escape),
        "error": serde_json::Value::Null,
    })
}

/// The format records are printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of objects, one object a line.
    Json,
    /// CSV (RFC 4180) with a header line of [`FIELDS`].
    Csv,
}

/// Prints records one by one as they come, so a long walk streams.
#[derive(Debug)]
pub struct Printer {
    format: Format,
    count: u64,
}

impl Printer {
    /// A printer in `format`; nothing is written until [`Printer::begin`].
    pub fn new(format: Format) -> Printer {
        Printer { format, count: 0 }
    }

    /// Write what comes before the first record (`[`, or the CSV header).
    pub fn begin(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            Format::Json => out.write_all(b"["),
            Format::Csv => writeln!(out, "{}", FIELDS.join(",")),
        }
    }

    /// Write one record.
    pub fn record(&mut self, out: &mut dyn Write, v: &serde_json::Value) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                out.write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, v).map_err(std::io::Error::other)?;
            }
            Format::Csv => {
                let cells: Vec<String> = FIELDS.iter().map(|f| csv_cell(&v[*f])).collect();
                writeln!(out, "{}", cells.join(","))?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Write what comes after the last record (`]`).
    pub fn end(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            Format::Json if self.count == 0 => out.write_all(b"]\n"),
            Format::Json => out.write_all(b"\n]\n"),
            Format::Csv => Ok(()),
        }
    }
}

/// A JSON value as one CSV cell: null is empty, `rdev`'s pair is
/// `MAJOR:MINOR`, text is quoted when it holds a comma, a quote or a line
/// break (quotes doubled), as RFC 4180 asks.
fn csv_cell(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => return String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(":"),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_quote_as_rfc4180() {
        assert_eq!(csv_cell(&serde_json::Value::Null), "");
        assert_eq!(csv_cell(&"a,b".into()), "\"a,b\"");
        assert_eq!(csv_cell(&"say \"hi\"".into()), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell(&"plain".into()), "plain");
        assert_eq!(csv_cell(&serde_json::json!([8, 1])), "8:1");
        assert_eq!(csv_cell(&serde_json::json!(4096)), "4096");
    }

    #[test]
    fn json_and_csv_print_the_same_fields() {
        let owners = Owners::numeric();
        let v = record(
            "/x",
            Known::Unreadable {
                file_type: Some(FileType::Regular),
                why: "bad inode",
            },
            &owners,
            None,
        );
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), FIELDS.len());
        for f in FIELDS {
            assert!(obj.contains_key(f), "{f}");
        }
        let mut json = Vec::new();
        let mut p = Printer::new(Format::Json);
        p.begin(&mut json).unwrap();
        p.record(&mut json, &v).unwrap();
        p.end(&mut json).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(back[0]["error"], "bad inode");
        let mut csv = Vec::new();
        let mut p = Printer::new(Format::Csv);
        p.begin(&mut csv).unwrap();
        p.record(&mut csv, &v).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], FIELDS.join(","));
        assert_eq!(lines[1], "/x,regular,,,,,,,,,,,,,,,bad inode");
        let mut empty = Vec::new();
        let mut p = Printer::new(Format::Json);
        p.begin(&mut empty).unwrap();
        p.end(&mut empty).unwrap();
        assert_eq!(empty, b"[]\n");
    }
}
