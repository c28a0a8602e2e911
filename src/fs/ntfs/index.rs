//! Directory indexes (`$I30`): the `$INDEX_ROOT` value and the INDX blocks
//! of `$INDEX_ALLOCATION`, walked in key order with every block visited at
//! most once (a loop in the B+ tree is an error naming the block), the
//! update sequence (fixups) of each block checked.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::HashSet;

/// One `$FILE_NAME` key of a directory index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// MFT record number of the file.
    pub record: u64,
    /// The name, UTF-16LE.
    pub name: Vec<u8>,
    /// 0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS.
    pub namespace: u8,
    /// File attribute flags the index keeps (0x1000_0000: a directory, 0x400: a reparse point).
    pub attrs: u32,
}

/// Why an index does not read: a description with the byte (of the value or the block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexError {
    /// Where: `$INDEX_ROOT` or `INDX block at VCN n`.
    pub place: String,
    /// Byte within it.
    pub at: u64,
    /// What was wrong.
    pub detail: String,
}

fn le16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}
fn le32(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}
fn le64(b: &[u8], o: usize) -> Option<u64> {
    b.get(o..o.checked_add(8)?)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

/// Apply the update sequence of a multi-sector record in place (512-byte strides).
pub fn fixup(rec: &mut [u8], place: &str) -> Result<(), IndexError> {
    let err = |at: usize, d: String| IndexError {
        place: place.to_string(),
        at: at as u64,
        detail: d,
    };
    let off = usize::from(le16(rec, 4).ok_or_else(|| err(4, "record too short".into()))?);
    let count = usize::from(le16(rec, 6).ok_or_else(|| err(6, "record too short".into()))?);
    let sectors = rec.len() / 512;
    if count == 0 || count.saturating_sub(1) != sectors {
        return Err(err(
            6,
            format!("update sequence of {count} entries for {sectors} sectors"),
        ));
    }
    let usn = le16(rec, off)
        .ok_or_else(|| err(4, format!("update sequence at {off} is outside the record")))?;
    for i in 0..sectors {
        let end = i.saturating_mul(512).saturating_add(510);
        let at = off.saturating_add(2).saturating_add(i.saturating_mul(2));
        let fix = le16(rec, at).ok_or_else(|| err(at, "update sequence array cut".into()))?;
        let have = le16(rec, end).unwrap_or(0);
        if have != usn {
            return Err(err(
                end,
                format!(
                    "update sequence number {have:#06x}, expected {usn:#06x}: torn or damaged write"
                ),
            ));
        }
        if let Some(s) = rec.get_mut(end..end.saturating_add(2)) {
            s.copy_from_slice(&fix.to_le_bytes());
        }
    }
    Ok(())
}

/// One node's entries: an entry (none for the last) and the subnode before it.
type Node = Vec<(Option<IndexEntry>, Option<u64>)>;

/// The entries of one node: (entry, subnode VCN) in order; the last carries only a subnode.
fn node_entries(b: &[u8], header: usize, place: &str) -> Result<Node, IndexError> {
    let err = |at: usize, d: String| IndexError {
        place: place.to_string(),
        at: at as u64,
        detail: d,
    };
    let first = le32(b, header).ok_or_else(|| err(header, "index header cut".into()))?;
    let total =
        le32(b, header.saturating_add(4)).ok_or_else(|| err(header, "index header cut".into()))?;
    let start = header.saturating_add(first as usize);
    let end = header.saturating_add(total as usize).min(b.len());
    let mut at = start;
    let mut out = Vec::new();
    loop {
        if at.saturating_add(16) > end {
            return Err(err(
                at,
                "entries run past the index's size without a last entry".into(),
            ));
        }
        let len = usize::from(le16(b, at.saturating_add(8)).unwrap_or(0));
        let key_len = usize::from(le16(b, at.saturating_add(10)).unwrap_or(0));
        let flags = le16(b, at.saturating_add(12)).unwrap_or(0);
        if len < 16 || at.saturating_add(len) > end || len % 8 != 0 {
            return Err(err(at, format!("index entry length {len}")));
        }
        let sub = if flags & 1 != 0 {
            if len < 24 {
                return Err(err(
                    at,
                    "entry with a subnode is shorter than 24 bytes".into(),
                ));
            }
            Some(le64(b, at.saturating_add(len).saturating_sub(8)).unwrap_or(0))
        } else {
            None
        };
        let entry = if flags & 2 != 0 {
            None
        } else {
            let key = b
                .get(at.saturating_add(16)..at.saturating_add(16).saturating_add(key_len))
                .filter(|k| k.len() >= 66 && 16usize.saturating_add(key_len) <= len)
                .ok_or_else(|| err(at, format!("$FILE_NAME key of {key_len} bytes")))?;
            let nlen = usize::from(key.get(64).copied().unwrap_or(0));
            let name = key
                .get(66..66usize.saturating_add(nlen.saturating_mul(2)))
                .ok_or_else(|| {
                    err(
                        at.saturating_add(16 + 64),
                        format!("name of {nlen} characters past the key"),
                    )
                })?;
            Some(IndexEntry {
                record: le64(b, at).unwrap_or(0) & 0x0000_FFFF_FFFF_FFFF,
                name: name.to_vec(),
                namespace: key.get(65).copied().unwrap_or(0),
                attrs: le32(key, 56).unwrap_or(0),
            })
        };
        let last = entry.is_none();
        out.push((entry, sub));
        if last {
            return Ok(out);
        }
        at = at.saturating_add(len);
    }
}

/// Read the index: `root` is the `$INDEX_ROOT` value, `block(vcn)` reads one
/// INDX block (before fixups) of `$INDEX_ALLOCATION`. At most `limit` entries.
pub fn walk(
    root: &[u8],
    mut block: impl FnMut(u64) -> Result<Vec<u8>, IndexError>,
    limit: usize,
) -> Result<Vec<IndexEntry>, IndexError> {
    let top = node_entries(root, 16, "$INDEX_ROOT")?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // Stack of nodes being walked: their entries and the next position.
    let mut stack: Vec<(Node, usize, bool)> = vec![(top, 0, false)];
    while let Some((entries, pos, descended)) = stack.last_mut() {
        let Some((entry, sub)) = entries.get(*pos).cloned() else {
            stack.pop();
            continue;
        };
        if let Some(vcn) = sub
            && !*descended
        {
            *descended = true;
            let place = format!("INDX block at VCN {vcn}");
            if !seen.insert(vcn) {
                return Err(IndexError {
                    place,
                    at: 16,
                    detail: "reached twice: a loop in the index".into(),
                });
            }
            if stack.len() > 64 {
                return Err(IndexError {
                    place,
                    at: 16,
                    detail: "the index is more than 64 levels deep".into(),
                });
            }
            let mut b = block(vcn)?;
            if b.get(0..4) != Some(b"INDX") {
                return Err(IndexError {
                    place,
                    at: 0,
                    detail: "no \"INDX\" signature".into(),
                });
            }
            fixup(&mut b, &place)?;
            if le64(&b, 16) != Some(vcn) {
                return Err(IndexError {
                    place,
                    at: 16,
                    detail: format!("says it is VCN {}", le64(&b, 16).unwrap_or(0)),
                });
            }
            let sub_entries = node_entries(&b, 24, &place)?;
            stack.push((sub_entries, 0, false));
            continue;
        }
        *pos = pos.saturating_add(1);
        *descended = false;
        if let Some(e) = entry {
            if out.len() >= limit {
                return Err(IndexError {
                    place: "$INDEX_ROOT".into(),
                    at: 0,
                    detail: format!("more than {limit} entries"),
                });
            }
            out.push(e);
        }
    }
    Ok(out)
}
