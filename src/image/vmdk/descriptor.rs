//! The VMDK descriptor: the text that names a disk's extents, its content ID
//! and its parent.
//!
//! It is a file of its own (`monolithicFlat`, `twoGbMaxExtent*`, `vmfs*`) or
//! embedded in a hosted sparse extent (`monolithicSparse`,
//! `streamOptimized`). Lines are `key = "value"` pairs, `#` comments and
//! extent lines `ACCESS SECTORS TYPE "FILE" [OFFSET]` (VMware's "Virtual Disk
//! Format 1.1"). Everything here is bounded: the text, its lines and the
//! number of extents.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::error::{Error, Result};

/// The largest descriptor we read (VMware writes a few hundred bytes; a
/// disk of many 2 GiB extents needs more).
pub const MAX_DESCRIPTOR: u64 = 1 << 20;

/// The most extents one descriptor may list (a 62 TiB disk in 2 GiB
/// extents has about 32 000).
pub const MAX_EXTENTS: usize = 32_768;

/// `parentCID` of a disk that has no parent.
pub const NO_PARENT: u32 = 0xffff_ffff;

/// The kind of an extent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentKind {
    /// `FLAT` or `VMFS`: the bytes as they are, from `offset` sectors into the file.
    Flat,
    /// `SPARSE`: a hosted sparse extent (`KDMV` header, grain tables).
    Sparse,
    /// `ZERO`: no file, reads as zeros.
    Zero,
    /// A kind vmrescue does not read (`VMFSSPARSE`, `SESPARSE`, `VMFSRDM`, `VMFSRAW`).
    Other,
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// `RW`, `RDONLY` or `NOACCESS`.
    pub access: String,
    /// Virtual size of the extent in 512-byte sectors.
    pub sectors: u64,
    /// The type word as written (`FLAT`, `SPARSE`, ...).
    pub type_name: String,
    /// What the type means to us.
    pub kind: ExtentKind,
    /// The file name (relative to the descriptor's folder, usually).
    pub file: Option<String>,
    /// For flat extents: the first sector of the extent in its file.
    pub offset: u64,
    /// Byte position of the line in the descriptor text, for messages.
    pub at: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `version=`.
    pub version: Option<u32>,
    /// `CID=`: the content ID, changed by VMware at every first write of a session.
    pub cid: Option<u32>,
    /// `parentCID=`: the parent's CID when this disk was made ([`NO_PARENT`]: none).
    pub parent_cid: Option<u32>,
    /// `createType=`.
    pub create_type: String,
    /// `parentFileNameHint=`.
    pub parent_hint: Option<String>,
    /// The extent lines, in order.
    pub extents: Vec<ExtentLine>,
    /// `ddb.adapterType`.
    pub adapter: Option<String>,
    /// `ddb.virtualHWVersion`.
    pub hw_version: Option<String>,
}

impl Descriptor {
    /// The sum of the extents' sizes in bytes, if it fits.
    pub fn size(&self) -> Option<u64> {
        self.extents
            .iter()
            .try_fold(0u64, |acc, e| acc.checked_add(e.sectors.checked_mul(512)?))
    }

    /// Whether the descriptor names a parent disk.
    pub fn has_parent(&self) -> bool {
        self.parent_cid.is_some_and(|c| c != NO_PARENT) || self.parent_hint.is_some()
    }
}

/// Whether `head` (the first bytes of a file) looks like a descriptor file.
pub fn looks_like_descriptor(head: &[u8]) -> bool {
    if head.starts_with(b"# Disk DescriptorFile") {
        return true;
    }
    // Hand-written descriptors may start with other comments: the text must
    // be printable and carry a createType line near the start.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => match head.get(..e.valid_up_to()) {
            Some(b) => std::str::from_utf8(b).unwrap_or(""),
            None => "",
        },
    };
    text.len() >= 64
        && !text.contains('\0')
        && text
            .lines()
            .any(|l| l.trim_start().starts_with("createType"))
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

fn parse_cid(v: &str) -> Option<u32> {
    u32::from_str_radix(unquote(v), 16).ok()
}

/// Parse descriptor text. `name` and `base` (the byte position of the text
/// in its file) are used in messages.
pub fn parse(text: &[u8], name: &str, base: u64) -> Result<Descriptor> {
    // An embedded descriptor is padded with NULs to its sector count.
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = text.get(..end).unwrap_or_default();
    let structure = format!("{name}: VMDK descriptor");
    let mut d = Descriptor::default();
    let mut pos = 0u64;
    for raw in text.split(|&b| b == b'\n') {
        let at = base.saturating_add(pos);
        pos = pos.saturating_add(raw.len() as u64).saturating_add(1);
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
            if d.extents.len() >= MAX_EXTENTS {
                return Err(Error::corrupt(
                    structure,
                    at,
                    format!("more than {MAX_EXTENTS} extent lines"),
                ));
            }
            d.extents.push(parse_extent(line, &structure, at)?);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        match key {
            "version" => d.version = unquote(value).parse().ok(),
            "CID" => {
                d.cid = Some(parse_cid(value).ok_or_else(|| {
                    Error::corrupt(
                        structure.clone(),
                        at,
                        format!("CID {value:?} is not a hexadecimal number"),
                    )
                })?);
            }
            "parentCID" => {
                d.parent_cid = Some(parse_cid(value).ok_or_else(|| {
                    Error::corrupt(
                        structure.clone(),
                        at,
                        format!("parentCID {value:?} is not a hexadecimal number"),
                    )
                })?);
            }
            "createType" => d.create_type = unquote(value).to_string(),
            "parentFileNameHint" => {
                let v = unquote(value);
                if !v.is_empty() {
                    d.parent_hint = Some(v.to_string());
                }
            }
            "ddb.adapterType" => d.adapter = Some(unquote(value).to_string()),
            "ddb.virtualHWVersion" => d.hw_version = Some(unquote(value).to_string()),
            _ => {}
        }
    }
    if d.extents.is_empty() {
        return Err(Error::corrupt(
            structure,
            base,
            "no extent lines (RW SECTORS TYPE \"FILE\")",
        ));
    }
    if d.size().is_none() {
        return Err(Error::corrupt(
            structure,
            base,
            "the extents' sizes add up past 2^64 bytes",
        ));
    }
    Ok(d)
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
fn parse_extent(line: &str, structure: &str, at: u64) -> Result<ExtentLine> {
    let bad = |why: String| Error::corrupt(structure.to_string(), at, why);
    let mut rest = line;
    let mut word = || -> Option<&str> {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (w, r) = t.split_at(end);
        rest = r;
        (!w.is_empty()).then_some(w)
    };
    let access = word().unwrap_or_default().to_string();
    let sectors_word = word().ok_or_else(|| bad(format!("extent line {line:?} has no size")))?;
    let sectors: u64 = sectors_word
        .parse()
        .map_err(|_| bad(format!("extent size {sectors_word:?} is not a number")))?;
    let type_name = word()
        .ok_or_else(|| bad(format!("extent line {line:?} has no type")))?
        .to_string();
    let kind = match type_name.as_str() {
        "FLAT" | "VMFS" => ExtentKind::Flat,
        "SPARSE" => ExtentKind::Sparse,
        "ZERO" => ExtentKind::Zero,
        _ => ExtentKind::Other,
    };
    let t = rest.trim_start();
    let (file, after) = if let Some(q) = t.strip_prefix('"') {
        let close = q
            .find('"')
            .ok_or_else(|| bad(format!("extent file name in {line:?} has no closing quote")))?;
        let (f, r) = q.split_at(close);
        (Some(f.to_string()), r.get(1..).unwrap_or(""))
    } else {
        (None, t)
    };
    let offset = match after.split_whitespace().next() {
        Some(w) => w
            .parse()
            .map_err(|_| bad(format!("extent offset {w:?} is not a number")))?,
        None => 0,
    };
    if file.is_none() && kind != ExtentKind::Zero {
        return Err(bad(format!(
            "{type_name} extent line {line:?} names no file"
        )));
    }
    Ok(ExtentLine {
        access,
        sectors,
        type_name,
        kind,
        file,
        offset,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_two_extent_descriptor() {
        let text = b"# Disk DescriptorFile\nversion=1\nCID=12ab34cd\nparentCID=ffffffff\n\
createType=\"twoGbMaxExtentFlat\"\n\n# Extent description\nRW 4192256 FLAT \"d-f001.vmdk\" 0\n\
RW 100 FLAT \"my disk-f002.vmdk\" 0\nRDONLY 8 ZERO\n\nddb.adapterType = \"ide\"\n";
        let d = parse(text, "d.vmdk", 0).unwrap();
        assert_eq!(d.cid, Some(0x12ab_34cd));
        assert!(!d.has_parent());
        assert_eq!(d.create_type, "twoGbMaxExtentFlat");
        assert_eq!(d.extents.len(), 3);
        assert_eq!(
            d.extents.get(1).and_then(|e| e.file.as_deref()),
            Some("my disk-f002.vmdk")
        );
        assert_eq!(d.extents.get(2).map(|e| e.kind), Some(ExtentKind::Zero));
        assert_eq!(d.size(), Some((4_192_256 + 108) * 512));
        assert_eq!(d.adapter.as_deref(), Some("ide"));
    }

    #[test]
    fn refuses_bad_lines_with_their_position() {
        let text = b"# Disk DescriptorFile\nCID=zz\n";
        let e = parse(text, "d.vmdk", 512).unwrap_err().to_string();
        assert!(e.contains("at byte 534"), "{e}");
        let text = b"createType=\"monolithicFlat\"\nRW 12x FLAT \"a\" 0\n";
        let e = parse(text, "d.vmdk", 0).unwrap_err().to_string();
        assert!(e.contains("at byte 28") && e.contains("12x"), "{e}");
        let e = parse(b"createType=x\n", "d.vmdk", 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no extent lines"), "{e}");
    }
}
