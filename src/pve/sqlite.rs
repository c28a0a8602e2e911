//! A small read-only SQLite reader: enough to read one table's rows out of
//! a database file and its write-ahead log, as pmxcfs leaves them on a dead
//! Proxmox host (`/var/lib/pve-cluster/config.db` and `config.db-wal`).
//!
//! Field names follow SQLite's file format description
//! (<https://www.sqlite.org/fileformat2.html>): the 100-byte database
//! header, table b-tree pages (interior `0x05`, leaf `0x0d`), cells with
//! varint payload sizes and row ids, overflow page chains, the record format
//! (header of serial types, then the values) and WAL frames (a 32-byte WAL
//! header, then 24-byte frame headers each followed by one page; a frame
//! counts when its salts match the header's and the running checksum
//! matches; the database is the pages of the last commit frame, later frames
//! winning over earlier ones and over the main file).
//!
//! Nothing is trusted: page numbers are checked against the database size,
//! b-tree walks and overflow chains remember the pages they have visited,
//! depths and sizes are capped.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::{HashMap, HashSet};

/// The magic string at the start of a database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Deepest b-tree walked (SQLite's own limit is 20).
const MAX_DEPTH: usize = 20;
/// Most rows read from one table.
const MAX_ROWS: usize = 1_000_000;
/// Largest record payload read (pmxcfs files are far smaller).
const MAX_PAYLOAD: u64 = 64 << 20;
/// Most columns decoded from one record.
const MAX_COLUMNS: usize = 2000;

/// Why a database cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Byte position in the file (or the WAL) where known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "SQLite database at byte {o}: {}", self.detail),
            None => write!(f, "SQLite database: {}", self.detail),
        }
    }
}

fn err(offset: Option<u64>, detail: impl Into<String>) -> SqlError {
    SqlError {
        offset,
        detail: detail.into(),
    }
}

/// One value of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL (also an `INTEGER PRIMARY KEY` column, whose value is the row id).
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text, as stored (UTF-8 for pmxcfs).
    Text(Vec<u8>),
    /// A blob.
    Blob(Vec<u8>),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes of a text or blob value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Text(b) | Value::Blob(b) => Some(b),
            _ => None,
        }
    }
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row id (the `INTEGER PRIMARY KEY` column's value).
    pub rowid: i64,
    /// The record's values, in column order.
    pub values: Vec<Value>,
}

/// An opened database: the main file's pages with the committed WAL frames
/// over them.
#[derive(Debug)]
pub struct Db<'a> {
    main: &'a [u8],
    page_size: u32,
    usable: u32,
    page_count: u32,
    /// Page number → the WAL page that replaces the main file's.
    wal_pages: HashMap<u32, &'a [u8]>,
    /// Facts worth telling (WAL frames applied or ignored).
    pub notes: Vec<String>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let a: [u8; 4] = s.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

/// A varint at `at`: (value, length). SQLite's varints are 1-9 bytes, big
/// endian, seven bits per byte except the ninth, which gives all eight.
pub fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9usize {
        let byte = *b.get(at.checked_add(i)?)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i.checked_add(1)?));
        }
    }
    None
}

/// Page size from the header's two-byte field (1 means 65536).
fn page_size_of(raw: u16) -> Option<u32> {
    let size = if raw == 1 { 65536 } else { u32::from(raw) };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

/// The WAL checksum (SQLite's `walChecksumBytes`): pairs of 32-bit words in
/// the byte order the WAL magic chose, folded into (s0, s1).
fn wal_checksum(data: &[u8], big_endian: bool, mut s: (u32, u32)) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |i: usize| -> u32 {
            let a: [u8; 4] = pair
                .get(i..i.saturating_add(4))
                .and_then(|x| x.try_into().ok())
                .unwrap_or([0; 4]);
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        s.0 = s.0.wrapping_add(word(0)).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(4)).wrapping_add(s.0);
    }
    s
}

impl<'a> Db<'a> {
    /// Open a database from its main file's bytes and, if there is one, its
    /// WAL's. A damaged WAL is not fatal: the frames before the damage that
    /// were committed are used and the rest is ignored, as SQLite does.
    pub fn open(main: &'a [u8], wal: Option<&'a [u8]>) -> Result<Db<'a>, SqlError> {
        if main.get(..16) != Some(&MAGIC[..]) {
            return Err(err(Some(0), "no SQLite header (magic string missing)"));
        }
        let raw = be16(main, 16).ok_or_else(|| err(Some(16), "header cut short"))?;
        let page_size =
            page_size_of(raw).ok_or_else(|| err(Some(16), format!("bad page size {raw}")))?;
        let reserved = main
            .get(20)
            .copied()
            .ok_or_else(|| err(Some(20), "header cut short"))?;
        let usable = page_size.saturating_sub(u32::from(reserved));
        if usable < 480 {
            return Err(err(
                Some(20),
                format!("usable page size {usable} below 480"),
            ));
        }
        // The header's page count counts when the change counter matches
        // "version valid for"; else the file's size says.
        let from_file = u32::try_from(
            (main.len() as u64)
                .checked_div(u64::from(page_size))
                .unwrap_or(0),
        )
        .unwrap_or(u32::MAX);
        let counted = be32(main, 28).unwrap_or(0);
        let valid = be32(main, 24).is_some() && be32(main, 24) == be32(main, 92);
        let mut page_count = if valid && counted > 0 {
            counted.min(from_file)
        } else {
            from_file
        };
        let mut db = Db {
            main,
            page_size,
            usable,
            page_count,
            wal_pages: HashMap::new(),
            notes: Vec::new(),
        };
        if let Some(w) = wal
            && !w.is_empty()
            && let Some(count) = db.apply_wal(w)
        {
            page_count = count;
            db.page_count = page_count;
        }
        if db.page_count == 0 {
            return Err(err(Some(28), "database holds no page"));
        }
        Ok(db)
    }

    /// Read the WAL's committed frames into `wal_pages`; the database size
    /// in pages of the last commit, if any frame was committed.
    fn apply_wal(&mut self, w: &'a [u8]) -> Option<u32> {
        let magic = be32(w, 0);
        let big_endian = match magic {
            Some(0x377f_0682) => false,
            Some(0x377f_0683) => true,
            _ => {
                self.notes
                    .push("config.db-wal ignored: no WAL header (bad magic)".into());
                return None;
            }
        };
        let wal_page = be32(w, 8).unwrap_or(0);
        if wal_page != self.page_size {
            self.notes.push(format!(
                "WAL ignored: its page size {wal_page} is not the database's {}",
                self.page_size
            ));
            return None;
        }
        let salts = (be32(w, 16), be32(w, 20));
        let hdr = w.get(..24)?;
        let mut sum = wal_checksum(hdr, big_endian, (0, 0));
        if Some(sum.0) != be32(w, 24) || Some(sum.1) != be32(w, 28) {
            self.notes
                .push("WAL ignored: its header checksum does not match".into());
            return None;
        }
        let page = usize::try_from(self.page_size).ok()?;
        let frame = page.checked_add(24)?;
        let mut pending: Vec<(u32, &'a [u8])> = Vec::new();
        let mut committed = 0usize;
        let mut frames = 0usize;
        let mut db_size = None;
        let mut at = 32usize;
        while let Some(end) = at.checked_add(frame) {
            let Some(f) = w.get(at..end) else { break };
            let (Some(fh), Some(data)) = (f.get(..24), f.get(24..)) else {
                break;
            };
            if (be32(fh, 8), be32(fh, 12)) != salts {
                // A frame of an earlier generation of the log: the end.
                break;
            }
            let Some(head8) = fh.get(..8) else { break };
            sum = wal_checksum(head8, big_endian, sum);
            sum = wal_checksum(data, big_endian, sum);
            if Some(sum.0) != be32(fh, 16) || Some(sum.1) != be32(fh, 20) {
                self.notes.push(format!(
                    "WAL frame at byte {at}: checksum does not match; it and later frames ignored"
                ));
                break;
            }
            let pgno = be32(fh, 0).unwrap_or(0);
            if pgno == 0 {
                break;
            }
            pending.push((pgno, data));
            frames = frames.saturating_add(1);
            let commit = be32(fh, 4).unwrap_or(0);
            if commit > 0 {
                for (p, d) in pending.drain(..) {
                    self.wal_pages.insert(p, d);
                }
                committed = frames;
                db_size = Some(commit);
            }
            at = end;
        }
        if frames > committed {
            self.notes.push(format!(
                "WAL: {} frame(s) after the last commit ignored",
                frames.saturating_sub(committed)
            ));
        }
        if committed > 0 {
            self.notes
                .push(format!("WAL: {committed} committed frame(s) applied"));
        }
        db_size
    }

    /// Page `n` (1-based), from the WAL if it has a newer copy.
    fn page(&self, n: u32) -> Result<&'a [u8], SqlError> {
        if n == 0 || n > self.page_count {
            return Err(err(
                None,
                format!("page {n} is past the database's {} pages", self.page_count),
            ));
        }
        if let Some(p) = self.wal_pages.get(&n) {
            return Ok(p);
        }
        let size = u64::from(self.page_size);
        let start = u64::from(n.saturating_sub(1)).saturating_mul(size);
        let end = start.saturating_add(size);
        let (Ok(s), Ok(e)) = (usize::try_from(start), usize::try_from(end)) else {
            return Err(err(Some(start), format!("page {n} out of reach")));
        };
        self.main
            .get(s..e)
            .ok_or_else(|| err(Some(start), format!("page {n} is past the end of the file")))
    }

    /// Every row of the table b-tree rooted at page `root`, in row id order.
    pub fn table_rows(&self, root: u32) -> Result<Vec<Row>, SqlError> {
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        self.walk(root, 0, &mut seen, &mut rows)?;
        Ok(rows)
    }

    fn walk(
        &self,
        pgno: u32,
        depth: usize,
        seen: &mut HashSet<u32>,
        rows: &mut Vec<Row>,
    ) -> Result<(), SqlError> {
        if depth > MAX_DEPTH {
            return Err(err(
                None,
                format!("b-tree deeper than {MAX_DEPTH} at page {pgno}"),
            ));
        }
        if !seen.insert(pgno) {
            return Err(err(
                None,
                format!("b-tree page {pgno} is reached twice (a loop)"),
            ));
        }
        let page = self.page(pgno)?;
        let hdr = if pgno == 1 { 100usize } else { 0 };
        let at = |what: &str| err(None, format!("page {pgno}: {what}"));
        let kind = *page.get(hdr).ok_or_else(|| at("header cut short"))?;
        let cells =
            usize::from(be16(page, hdr.saturating_add(3)).ok_or_else(|| at("header cut short"))?);
        let (ptrs, interior) = match kind {
            0x0d => (hdr.saturating_add(8), false),
            0x05 => (hdr.saturating_add(12), true),
            k => return Err(at(&format!("not a table b-tree page (type {k:#04x})"))),
        };
        for i in 0..cells {
            let off = usize::from(
                be16(page, ptrs.saturating_add(i.saturating_mul(2)))
                    .ok_or_else(|| at("cell pointer array past the page"))?,
            );
            if off >= page.len() || off < ptrs {
                return Err(at(&format!("cell {i} at {off} outside the page")));
            }
            if interior {
                let child = be32(page, off).ok_or_else(|| at("cell cut short"))?;
                self.walk(child, depth.saturating_add(1), seen, rows)?;
            } else {
                if rows.len() >= MAX_ROWS {
                    return Err(at("too many rows"));
                }
                rows.push(self.leaf_cell(pgno, page, off)?);
            }
        }
        if interior {
            let right = be32(page, hdr.saturating_add(8)).ok_or_else(|| at("header cut short"))?;
            self.walk(right, depth.saturating_add(1), seen, rows)?;
        }
        Ok(())
    }

    /// A table leaf cell: payload size, row id, the local payload, and the
    /// overflow chain for the rest.
    fn leaf_cell(&self, pgno: u32, page: &[u8], off: usize) -> Result<Row, SqlError> {
        let at = |what: &str| err(None, format!("page {pgno} cell at {off}: {what}"));
        let (size, n1) = varint(page, off).ok_or_else(|| at("payload size cut short"))?;
        let p = off.saturating_add(n1);
        let (rowid, n2) = varint(page, p).ok_or_else(|| at("row id cut short"))?;
        let p = p.saturating_add(n2);
        if size > MAX_PAYLOAD {
            return Err(at(&format!("payload of {size} bytes is too large")));
        }
        let size = usize::try_from(size).map_err(|_| at("payload too large"))?;
        let u = usize::try_from(self.usable).map_err(|_| at("bad page size"))?;
        // How much stays on the page (the file format's X, M and K).
        let x = u.saturating_sub(35);
        let local = if size <= x {
            size
        } else {
            let m = (u.saturating_sub(12))
                .saturating_mul(32)
                .checked_div(255)
                .unwrap_or(0);
            let m = m.saturating_sub(23);
            let k = m.saturating_add(
                size.saturating_sub(m)
                    .checked_rem(u.saturating_sub(4))
                    .unwrap_or(0),
            );
            if k <= x { k } else { m }
        };
        let mut payload = page
            .get(p..p.saturating_add(local))
            .ok_or_else(|| at("payload past the page"))?
            .to_vec();
        if local < size {
            let mut next = be32(page, p.saturating_add(local))
                .ok_or_else(|| at("overflow pointer past the page"))?;
            let mut seen = HashSet::new();
            while payload.len() < size {
                if next == 0 {
                    return Err(at("overflow chain ends early"));
                }
                if !seen.insert(next) {
                    return Err(at(&format!("overflow chain loops at page {next}")));
                }
                let op = self.page(next)?;
                let want = size.saturating_sub(payload.len()).min(u.saturating_sub(4));
                let chunk = op
                    .get(4..4usize.saturating_add(want))
                    .ok_or_else(|| at("overflow page cut short"))?;
                payload.extend_from_slice(chunk);
                next = be32(op, 0).unwrap_or(0);
            }
        }
        let rowid = i64::from_ne_bytes(rowid.to_ne_bytes());
        let values = record(&payload).ok_or_else(|| at("bad record"))?;
        Ok(Row { rowid, values })
    }

    /// The root page of table `name`, from the schema table (page 1).
    pub fn table_root(&self, name: &str) -> Result<u32, SqlError> {
        for row in self.table_rows(1)? {
            let v = &row.values;
            let is_table = v.first().and_then(Value::as_bytes) == Some(b"table");
            let named = v.get(1).and_then(Value::as_bytes) == Some(name.as_bytes());
            if is_table && named {
                let root = v.get(3).and_then(Value::as_int).unwrap_or(0);
                return u32::try_from(root)
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| err(None, format!("table {name}: bad root page {root}")));
            }
        }
        Err(err(None, format!("no table named {name}")))
    }
}

/// Decode a record: a varint header length, the serial types, the values.
pub fn record(payload: &[u8]) -> Option<Vec<Value>> {
    let (hlen, n) = varint(payload, 0)?;
    let hlen = usize::try_from(hlen).ok()?;
    if hlen > payload.len() || hlen < n {
        return None;
    }
    let mut types = Vec::new();
    let mut p = n;
    while p < hlen {
        let (t, m) = varint(payload, p)?;
        types.push(t);
        if types.len() > MAX_COLUMNS {
            return None;
        }
        p = p.checked_add(m)?;
    }
    let mut values = Vec::with_capacity(types.len());
    let mut at = hlen;
    for t in types {
        let len: usize = match t {
            0 | 8 | 9 => 0,
            1..=4 => usize::try_from(t).ok()?,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return None,
            n => usize::try_from(n.checked_sub(12)? / 2).ok()?,
        };
        let bytes = payload.get(at..at.checked_add(len)?)?;
        at = at.checked_add(len)?;
        values.push(match t {
            0 => Value::Null,
            8 => Value::Int(0),
            9 => Value::Int(1),
            1..=6 => {
                // Big-endian two's complement, sign-extended.
                let mut v: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    -1
                } else {
                    0
                };
                for b in bytes {
                    v = (v << 8) | i64::from(*b);
                }
                Value::Int(v)
            }
            7 => Value::Float(f64::from_be_bytes(bytes.try_into().ok()?)),
            n if n % 2 == 0 => Value::Blob(bytes.to_vec()),
            _ => Value::Text(bytes.to_vec()),
        });
    }
    Some(values)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
    }

    #[test]
    fn records() {
        // header 4 bytes: types 1 (1-byte int), 0x13 (text of 3), 0 (null)
        let r = record(&[4, 1, 0x13, 0, 0xfe, b'a', b'b', b'c']).unwrap();
        assert_eq!(
            r,
            vec![Value::Int(-2), Value::Text(b"abc".to_vec()), Value::Null]
        );
        // absurd header length, reserved types, value past the end
        assert_eq!(record(&[0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(record(&[2, 10]), None);
        assert_eq!(record(&[2, 0x21]), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Db::open(b"not sqlite", None).is_err());
        let mut h = vec![0u8; 512];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(Db::open(&h, None).is_err());
    }
}
