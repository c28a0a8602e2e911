//! A read-only reader of Windows registry hive files (the "regf" format):
//! keys by path, and their values. Enough for inspection (SOFTWARE and
//! SYSTEM), nothing more: no transaction logs, no security cells.
//!
//! Layout (the format as documented by Microsoft's `cmlib` structures and
//! the public regf specifications): a 4096-byte base block (`regf`, the
//! root key's cell offset at 36, the hive bins' size at 40), then hive bins
//! (`hbin`) holding cells. A cell offset is relative to the first bin (file
//! byte 4096); a cell starts with its size as an `i32`, negative when the
//! cell is allocated. Key nodes (`nk`) name their subkey list (`lf`, `lh`,
//! `li`, or `ri`, a list of such lists) and their value list (cell offsets
//! of `vk` records). A value's data is in the `vk` itself when the size's
//! top bit is set (up to 4 bytes), else in a cell, or for more than 16344
//! bytes in a `db` record listing segments.
//!
//! Every offset and count comes from the file and is checked: a damaged
//! hive gives an error naming the cell and its byte position in the file.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::io::le;

/// The base block's size; cell offsets count from its end.
const BASE_BLOCK: usize = 4096;
/// Data of one `db` segment at most.
const DB_SEGMENT: usize = 16344;
/// Largest value data read (a value bigger than this is refused).
const MAX_VALUE: usize = 16 << 20;
/// Most components of a key path.
const MAX_DEPTH: usize = 512;
/// `nk` flag: the name is Latin-1, one byte a character.
const KEY_COMP_NAME: u16 = 0x0020;
/// `vk` flag: the name is Latin-1, one byte a character.
const VALUE_COMP_NAME: u16 = 0x0001;

/// Why a hive cannot be read: the structure, its byte position in the
/// file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveError {
    /// The structure (`base block`, `nk cell`).
    pub structure: String,
    /// Its byte position in the hive file.
    pub offset: u64,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for HiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.structure, self.offset, self.detail
        )
    }
}

type Result<T> = std::result::Result<T, HiveError>;

fn err<T>(structure: &str, offset: usize, detail: impl Into<String>) -> Result<T> {
    Err(HiveError {
        structure: structure.to_string(),
        offset: offset as u64,
        detail: detail.into(),
    })
}

/// A hive file's bytes, checked at its base block.
pub struct Hive<'a> {
    bytes: &'a [u8],
    root: u32,
    /// The primary and secondary sequence numbers differ: Windows did not
    /// finish writing it (its `.LOG` files hold the rest).
    pub dirty: bool,
}

/// A key of a hive.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// File byte position of its `nk` cell's data.
    at: usize,
}

/// A value's data type (`REG_SZ` is 1, `REG_BINARY` 3, `REG_DWORD` 4…).
pub type ValueType = u32;
/// `REG_SZ`.
pub const REG_SZ: ValueType = 1;
/// `REG_EXPAND_SZ`.
pub const REG_EXPAND_SZ: ValueType = 2;
/// `REG_DWORD`.
pub const REG_DWORD: ValueType = 4;

/// A value: its name, type and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Its name (empty for the key's default value).
    pub name: String,
    /// Its data type.
    pub kind: ValueType,
    /// Its data.
    pub data: Vec<u8>,
}

impl Value {
    /// The data as text: UTF-16LE up to the first NUL (`REG_SZ`,
    /// `REG_EXPAND_SZ`).
    pub fn text(&self) -> Option<String> {
        if self.kind != REG_SZ && self.kind != REG_EXPAND_SZ {
            return None;
        }
        Some(utf16(&self.data))
    }

    /// The data as a `REG_DWORD`.
    pub fn dword(&self) -> Option<u32> {
        (self.kind == REG_DWORD).then(|| le::u32(&self.data, 0))?
    }
}

/// UTF-16LE text up to the first NUL, bad units replaced.
pub fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Latin-1 text (a "compressed" name).
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// Names compared as Windows does for keys and values: without case.
fn same_name(a: &str, b: &str) -> bool {
    crate::text::same_without_case(a.as_bytes(), b.as_bytes())
}

impl<'a> Hive<'a> {
    /// Check the base block of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Result<Hive<'a>> {
        let Some(base) = bytes.get(..BASE_BLOCK) else {
            return err(
                "base block",
                0,
                format!(
                    "the file is {} bytes, shorter than a base block (4096)",
                    bytes.len()
                ),
            );
        };
        if base.get(..4) != Some(b"regf") {
            return err(
                "base block",
                0,
                "no \"regf\" signature: not a registry hive",
            );
        }
        let primary = le::u32(base, 4).unwrap_or(0);
        let secondary = le::u32(base, 8).unwrap_or(0);
        let major = le::u32(base, 20).unwrap_or(0);
        if major != 1 {
            return err(
                "base block",
                20,
                format!("major version {major}, expected 1"),
            );
        }
        let root = le::u32(base, 36).unwrap_or(0);
        let hive = Hive {
            bytes,
            root,
            dirty: primary != secondary,
        };
        hive.nk(root, "root key")?;
        Ok(hive)
    }

    /// The root key.
    pub fn root(&self) -> Result<Key> {
        let at = self.nk(self.root, "root key")?;
        Ok(Key { at })
    }

    /// The data of the allocated cell at cell offset `off` (relative to the
    /// first hive bin), without its size field; `what` names it in errors.
    fn cell(&self, off: u32, what: &str) -> Result<(usize, &'a [u8])> {
        let at = usize::try_from(off)
            .ok()
            .and_then(|o| o.checked_add(BASE_BLOCK))
            .filter(|&a| a < self.bytes.len());
        let Some(at) = at else {
            return err(
                what,
                0,
                format!(
                    "cell offset {off} lies past the end of the hive ({} bytes)",
                    self.bytes.len()
                ),
            );
        };
        let Some(size) = le::u32(self.bytes, at).map(|s| s as i32) else {
            return err(what, at, "the cell's size lies past the end of the hive");
        };
        if size >= 0 {
            return err(what, at, "the cell is free (its size is not negative)");
        }
        let len = usize::try_from(size.unsigned_abs()).unwrap_or(usize::MAX);
        let data = at
            .checked_add(len)
            .and_then(|end| self.bytes.get(at.checked_add(4)?..end));
        match data {
            Some(d) if len >= 8 => Ok((at.checked_add(4).unwrap_or(at), d)),
            _ => err(
                what,
                at,
                format!(
                    "a cell of {len} bytes does not fit in the hive ({} bytes)",
                    self.bytes.len()
                ),
            ),
        }
    }

    /// The `nk` cell at cell offset `off`: its file position.
    fn nk(&self, off: u32, what: &str) -> Result<usize> {
        let (at, d) = self.cell(off, what)?;
        if d.get(..2) != Some(b"nk") || d.len() < 76 {
            return err(what, at, "not a key node (no \"nk\" signature)");
        }
        Ok(at)
    }

    fn nk_data(&self, key: Key) -> &'a [u8] {
        self.bytes.get(key.at..).unwrap_or_default()
    }

    /// A key's name.
    pub fn name(&self, key: Key) -> Result<String> {
        let d = self.nk_data(key);
        let flags = le::u16(d, 2).unwrap_or(0);
        let len = usize::from(le::u16(d, 72).unwrap_or(0));
        let Some(raw) = 76usize.checked_add(len).and_then(|end| d.get(76..end)) else {
            return err(
                "nk cell",
                key.at,
                format!("a name of {len} bytes runs past the hive's end"),
            );
        };
        Ok(if flags & KEY_COMP_NAME != 0 {
            latin1(raw)
        } else {
            utf16(raw)
        })
    }

    /// The subkeys of `key`: an error if any of them is damaged.
    pub fn subkeys(&self, key: Key) -> Result<Vec<Key>> {
        self.children(key)?.into_iter().collect()
    }

    /// The subkeys of `key`, each a key or why it cannot be read; an error
    /// when the list itself cannot be read.
    fn children(&self, key: Key) -> Result<Vec<Result<Key>>> {
        let d = self.nk_data(key);
        let count = le::u32(d, 20).unwrap_or(0);
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = le::u32(d, 28).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        self.subkey_list(list, 0, &mut out)?;
        Ok(out)
    }

    /// The keys of subkey list `off` (an `ri` holds other lists, one level).
    fn subkey_list(&self, off: u32, depth: u8, out: &mut Vec<Result<Key>>) -> Result<()> {
        let (at, d) = self.cell(off, "subkey list")?;
        let sig = d.get(..2).unwrap_or_default();
        let count = usize::from(le::u16(d, 2).unwrap_or(0));
        let step = match sig {
            b"lf" | b"lh" => 8,
            b"li" | b"ri" => 4,
            _ => {
                return err(
                    "subkey list",
                    at,
                    format!(
                        "signature {:?}, expected lf, lh, li or ri",
                        String::from_utf8_lossy(sig)
                    ),
                );
            }
        };
        // Every element must lie in the cell: the count is bounded by it.
        if count
            .checked_mul(step)
            .and_then(|n| n.checked_add(4))
            .is_none_or(|n| n > d.len())
        {
            return err(
                "subkey list",
                at,
                format!("{count} elements do not fit in its cell"),
            );
        }
        for i in 0..count {
            let Some(child) = i
                .checked_mul(step)
                .and_then(|o| o.checked_add(4))
                .and_then(|o| le::u32(d, o))
            else {
                break;
            };
            if sig == b"ri" {
                if depth > 0 {
                    return err("subkey list", at, "an index root inside an index root");
                }
                self.subkey_list(child, 1, out)?;
            } else {
                out.push(self.nk(child, "nk cell").map(|at| Key { at }));
            }
        }
        Ok(())
    }

    /// The subkey of `key` called `name` (without case). A damaged
    /// sibling does not hide it; when it is not found among the readable
    /// ones, the first damage is the answer (it may have been that key).
    pub fn subkey(&self, key: Key, name: &str) -> Result<Option<Key>> {
        let mut damage = None;
        for k in self.children(key)? {
            match k.and_then(|k| Ok((k, self.name(k)?))) {
                Ok((k, n)) if same_name(&n, name) => return Ok(Some(k)),
                Ok(_) => {}
                Err(e) => {
                    damage.get_or_insert(e);
                }
            }
        }
        damage.map_or(Ok(None), Err)
    }

    /// The key at `path` below the root (components separated by `\`).
    pub fn key(&self, path: &str) -> Result<Option<Key>> {
        let mut key = self.root()?;
        for name in path.split('\\').filter(|c| !c.is_empty()).take(MAX_DEPTH) {
            match self.subkey(key, name)? {
                Some(k) => key = k,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
    }

    /// The values of `key`.
    pub fn values(&self, key: Key) -> Result<Vec<Value>> {
        let d = self.nk_data(key);
        let count = usize::try_from(le::u32(d, 36).unwrap_or(0)).unwrap_or(usize::MAX);
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = le::u32(d, 40).unwrap_or(u32::MAX);
        let (at, l) = self.cell(list, "value list")?;
        if count.checked_mul(4).is_none_or(|n| n > l.len()) {
            return err(
                "value list",
                at,
                format!("{count} values do not fit in its cell"),
            );
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let Some(off) = i.checked_mul(4).and_then(|o| le::u32(l, o)) else {
                break;
            };
            out.push(self.value_at(off)?);
        }
        Ok(out)
    }

    /// The value of `key` called `name` (without case; empty for the default).
    pub fn value(&self, key: Key, name: &str) -> Result<Option<Value>> {
        Ok(self
            .values(key)?
            .into_iter()
            .find(|v| same_name(&v.name, name)))
    }

    /// The `vk` record at cell offset `off`.
    fn value_at(&self, off: u32) -> Result<Value> {
        let (at, d) = self.cell(off, "vk cell")?;
        if d.get(..2) != Some(b"vk") || d.len() < 20 {
            return err("vk cell", at, "not a value (no \"vk\" signature)");
        }
        let name_len = usize::from(le::u16(d, 2).unwrap_or(0));
        let size = le::u32(d, 4).unwrap_or(0);
        let data_off = le::u32(d, 8).unwrap_or(0);
        let kind = le::u32(d, 12).unwrap_or(0);
        let flags = le::u16(d, 16).unwrap_or(0);
        let Some(raw) = 20usize.checked_add(name_len).and_then(|end| d.get(20..end)) else {
            return err(
                "vk cell",
                at,
                format!("a name of {name_len} bytes runs past its cell"),
            );
        };
        let name = if flags & VALUE_COMP_NAME != 0 {
            latin1(raw)
        } else {
            utf16(raw)
        };
        let data = if size & 0x8000_0000 != 0 {
            // Resident: in the data offset field itself.
            let len = usize::try_from(size & 0x7fff_ffff)
                .unwrap_or(usize::MAX)
                .min(4);
            data_off
                .to_le_bytes()
                .get(..len)
                .unwrap_or_default()
                .to_vec()
        } else {
            let len = usize::try_from(size).unwrap_or(usize::MAX);
            if len > MAX_VALUE {
                return err(
                    "vk cell",
                    at,
                    format!("value data of {len} bytes, more than the {MAX_VALUE} read"),
                );
            }
            if len == 0 {
                Vec::new()
            } else {
                self.value_data(data_off, len)?
            }
        };
        Ok(Value { name, kind, data })
    }

    /// `len` bytes of value data at cell offset `off`: in one cell, or
    /// through a `db` record.
    fn value_data(&self, off: u32, len: usize) -> Result<Vec<u8>> {
        let (at, d) = self.cell(off, "value data")?;
        if len > DB_SEGMENT && d.get(..2) == Some(b"db") {
            let segments = usize::from(le::u16(d, 2).unwrap_or(0));
            let list = le::u32(d, 4).unwrap_or(u32::MAX);
            let (lat, l) = self.cell(list, "db segment list")?;
            if segments.checked_mul(4).is_none_or(|n| n > l.len()) {
                return err(
                    "db segment list",
                    lat,
                    format!("{segments} segments do not fit in its cell"),
                );
            }
            let mut out = Vec::with_capacity(len);
            for i in 0..segments {
                let Some(seg) = i.checked_mul(4).and_then(|o| le::u32(l, o)) else {
                    break;
                };
                let (_, s) = self.cell(seg, "db segment")?;
                let want = len.saturating_sub(out.len()).min(DB_SEGMENT).min(s.len());
                out.extend_from_slice(s.get(..want).unwrap_or_default());
                if out.len() >= len {
                    break;
                }
            }
            if out.len() < len {
                return err(
                    "db record",
                    at,
                    format!("its segments hold {} of {len} bytes", out.len()),
                );
            }
            return Ok(out);
        }
        match d.get(..len) {
            Some(b) => Ok(b.to_vec()),
            None => err(
                "value data",
                at,
                format!("{len} bytes do not fit in a cell of {} bytes", d.len()),
            ),
        }
    }
}

/// An empty hive: a 4096-byte base block and one hive bin holding the
/// root key (`ROOT`, no subkeys or values), its security record and a free
/// cell, as `tests/fixtures/make/lib/empty-hive.py` writes it for the
/// fixtures (there, `hivexregedit` accepting it is the test).
#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
pub(crate) fn empty_hive() -> Vec<u8> {
    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }
    const NONE: u32 = u32::MAX;
    let mut h = vec![0u8; 2 * BASE_BLOCK];
    let (root, sk) = (0x20usize, 0x78usize);
    put(&mut h, 0, b"regf");
    for (at, v) in [(4, 1u32), (8, 1), (20, 1), (24, 5), (32, 1), (44, 1)] {
        put(&mut h, at, &v.to_le_bytes());
    }
    put(&mut h, 36, &(root as u32).to_le_bytes());
    put(&mut h, 40, &(BASE_BLOCK as u32).to_le_bytes());
    let sum = h[..508].chunks_exact(4).fold(0u32, |x, w| {
        x ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])
    });
    put(&mut h, 508, &sum.to_le_bytes());
    let bin = BASE_BLOCK;
    put(&mut h, bin, b"hbin");
    put(&mut h, bin + 8, &(BASE_BLOCK as u32).to_le_bytes());
    // The root key: a cell of 88 bytes.
    let nk = bin + root;
    put(&mut h, nk, &(-88i32).to_le_bytes());
    put(&mut h, nk + 4, b"nk");
    put(&mut h, nk + 6, &0x2cu16.to_le_bytes());
    for (at, v) in [
        (28, NONE),
        (32, NONE),
        (40, NONE),
        (44, sk as u32),
        (48, NONE),
    ] {
        put(&mut h, nk + 4 + at, &v.to_le_bytes());
    }
    put(&mut h, nk + 4 + 72, &4u16.to_le_bytes());
    put(&mut h, nk + 4 + 76, b"ROOT");
    // Its security record, linked to itself, with an empty descriptor.
    let at = bin + sk;
    put(&mut h, at, &(-48i32).to_le_bytes());
    put(&mut h, at + 4, b"sk");
    for (off, v) in [(4, sk as u32), (8, sk as u32), (12, 1), (16, 20)] {
        put(&mut h, at + 4 + off, &v.to_le_bytes());
    }
    put(&mut h, at + 4 + 20, &[1, 0, 0x00, 0x80]);
    // The rest of the bin: one free cell.
    let free = sk + 48;
    put(
        &mut h,
        bin + free,
        &((BASE_BLOCK - free) as i32).to_le_bytes(),
    );
    h
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn minimal_hive() {
        let empty = empty_hive();
        let h = Hive::new(&empty).unwrap();
        assert!(!h.dirty);
        assert_eq!(h.name(h.root().unwrap()).unwrap(), "ROOT");
        let root = h.root().unwrap();
        assert!(h.subkeys(root).unwrap().is_empty());
        assert!(h.values(root).unwrap().is_empty());
        assert!(h.key(r"Microsoft\Windows NT").unwrap().is_none());
        assert!(h.key("").unwrap().is_some());
    }

    #[test]
    fn not_a_hive() {
        let e = Hive::new(&[0u8; 100]).err().unwrap();
        assert_eq!(e.structure, "base block");
        assert!(e.to_string().contains("shorter than a base block"), "{e}");
        let minimal = empty_hive();
        let mut b = minimal.clone();
        b[0] = b'x';
        assert!(Hive::new(&b).err().unwrap().detail.contains("regf"));
        // The root key's cell offset pointing past the end.
        let mut b = minimal.clone();
        b[36..40].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let e = Hive::new(&b).err().unwrap();
        assert!(e.detail.contains("past the end"), "{e}");
    }

    /// Every byte of the bins set to each of a few values, and every
    /// truncation: an answer or an error, never a panic.
    #[test]
    fn damaged_bytes_never_panic() {
        let walk = |b: &[u8]| {
            let Ok(h) = Hive::new(b) else { return };
            let Ok(root) = h.root() else { return };
            let _ = h.name(root);
            let _ = h.values(root);
            if let Ok(keys) = h.subkeys(root) {
                for k in keys.into_iter().take(16) {
                    let _ = h.name(k);
                    let _ = h.values(k);
                }
            }
            let _ = h.key(r"a\b\c");
        };
        let minimal = empty_hive();
        for i in 0..minimal.len() {
            for v in [0x00, 0xff, 0x7f, 0x80] {
                let mut b = minimal.clone();
                b[i] = v;
                walk(&b);
            }
        }
        for n in (0..minimal.len()).step_by(7) {
            walk(&minimal[..n]);
        }
    }

    #[test]
    fn names_without_case() {
        assert!(same_name("CurrentVersion", "currentversion"));
        assert!(same_name("Über", "über"));
        assert!(!same_name("Select", "Selec"));
    }
}
