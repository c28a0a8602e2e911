//! OVA archives: a tar (ustar or pax) holding an OVF descriptor and the
//! virtual machine's disks, read in place.
//!
//! The archive is never unpacked: its members are found by walking the tar
//! headers (a bounded number of them), each disk is a [`Window`] of the
//! file, and the disks the OVF's `<Disk>` elements name (through their
//! `<File ovf:href>`) are opened in that order as the layer tree's top
//! nodes. The OVF is scanned for those two elements only; its size is capped.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{ReadAt, Window, read_vec};

/// The most tar headers read (members, pax and long-name headers included).
pub const MAX_MEMBERS: usize = 4096;
/// The largest OVF descriptor read.
pub const MAX_OVF: u64 = 4 << 20;
/// The largest pax extended header or GNU long name read.
const MAX_EXTENDED: u64 = 1 << 20;

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path in the archive.
    pub name: String,
    /// Byte position of its data in the archive.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// Whether `head` (the first 512 bytes of a file) is a tar header whose
/// first member is an `.ovf` file (the OVF specification puts it first).
pub fn has_magic(head: &[u8]) -> bool {
    let Some(magic) = head.get(257..262) else {
        return false;
    };
    if magic != b"ustar" {
        return false;
    }
    // A pax header may come first: then the name is in the next header.
    let name = field_str(head.get(..100).unwrap_or_default());
    let kind = head.get(156).copied().unwrap_or(0);
    name.to_ascii_lowercase().ends_with(".ovf") || kind == b'x' || kind == b'g'
}

fn field_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

/// An octal (or base-256) number field.
fn field_num(b: &[u8]) -> Option<u64> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        // GNU base-256: big-endian, the top bit of the first byte set.
        let mut v = u64::from(b.first()? & 0x7f);
        for &c in b.get(1..)? {
            v = v.checked_mul(256)?.checked_add(u64::from(c))?;
        }
        return Some(v);
    }
    let s = field_str(b);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The members of the tar archive `file` (`name` for messages).
pub fn members(file: &dyn ReadAt, name: &str) -> Result<Vec<Member>> {
    let size = file.size();
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    let structure = format!("{name}: tar header");
    for _ in 0..MAX_MEMBERS {
        if pos.checked_add(512).is_none_or(|e| e > size) {
            break;
        }
        let h = read_vec(file, pos, 512, 512)
            .map_err(|e| Error::corrupt(structure.clone(), pos, e.to_string()))?;
        if h.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        let stored: u64 = h.get(148..156).and_then(field_num).ok_or_else(|| {
            Error::corrupt(
                structure.clone(),
                pos.saturating_add(148),
                "checksum is not a number",
            )
        })?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if sum != stored {
            return Err(Error::corrupt(
                structure,
                pos.saturating_add(148),
                format!("checksum {stored} but the header sums to {sum}"),
            ));
        }
        let len = h.get(124..136).and_then(field_num).ok_or_else(|| {
            Error::corrupt(
                structure.clone(),
                pos.saturating_add(124),
                "size is not a number",
            )
        })?;
        let data = pos.saturating_add(512);
        let kind = h.get(156).copied().unwrap_or(0);
        match kind {
            b'x' | b'L' => {
                let text = read_vec(file, data, len, MAX_EXTENDED)
                    .map_err(|e| Error::corrupt(structure.clone(), data, e.to_string()))?;
                long_name = if kind == b'L' {
                    Some(field_str(&text))
                } else {
                    pax_path(&text).or(long_name)
                };
            }
            b'g' => {}
            _ => {
                let mut n = field_str(h.get(..100).unwrap_or_default());
                let prefix = field_str(h.get(345..500).unwrap_or_default());
                if !prefix.is_empty() {
                    n = format!("{prefix}/{n}");
                }
                let n = long_name.take().unwrap_or(n);
                if matches!(kind, b'0' | 0 | b'7') {
                    if data.checked_add(len).is_none_or(|e| e > size) {
                        return Err(Error::corrupt(
                            format!("{name}: tar member {}", crate::text::escape_str(&n)),
                            pos,
                            format!(
                                "{len} bytes from byte {data} run past the archive's end ({size} bytes): it is truncated"
                            ),
                        ));
                    }
                    out.push(Member {
                        name: n,
                        offset: data,
                        size: len,
                    });
                }
            }
        }
        let blocks = len.div_ceil(512).saturating_mul(512);
        pos = data.saturating_add(blocks);
    }
    if out.len() >= MAX_MEMBERS {
        return Err(Error::Unsupported(format!(
            "{name}: more than {MAX_MEMBERS} tar headers"
        )));
    }
    Ok(out)
}

/// The `path` record of a pax extended header (`LEN path=VALUE\n` records).
fn pax_path(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|l| l.split_once(' ').map(|(_, r)| r))
        .find_map(|r| r.strip_prefix("path=").map(str::to_string))
}

/// The value of attribute `attr` (with or without its `ovf:` prefix) in a tag's text.
fn attribute(tag: &str, attr: &str) -> Option<String> {
    for key in [format!("ovf:{attr}="), format!(" {attr}=")] {
        if let Some(i) = tag.find(&key) {
            let rest = tag.get(i.saturating_add(key.len())..)?;
            let quote = rest.chars().next()?;
            if quote != '"' && quote != '\'' {
                continue;
            }
            let rest = rest.get(1..)?;
            let end = rest.find(quote)?;
            return Some(unescape(rest.get(..end)?));
        }
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The start tags named `element` (any namespace prefix) in `xml`.
fn tags<'a>(xml: &'a str, element: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = xml;
    // Each turn consumes at least one '<': bounded by the text's length.
    while let Some(i) = rest.find('<') {
        let after = rest.get(i.saturating_add(1)..).unwrap_or("");
        let end = after.find('>').unwrap_or(after.len());
        let tag = after.get(..end).unwrap_or("");
        let tag_name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or("");
        if local == element {
            out.push(tag);
        }
        rest = after;
    }
    out
}

/// The disk files an OVF names, in `<Disk>` order (files no disk names
/// follow, for OVFs without a DiskSection).
pub fn disk_files(ovf: &str) -> Vec<String> {
    let files: Vec<(Option<String>, String)> = tags(ovf, "File")
        .into_iter()
        .filter_map(|t| Some((attribute(t, "id"), attribute(t, "href")?)))
        .collect();
    let mut out = Vec::new();
    for d in tags(ovf, "Disk") {
        let Some(r) = attribute(d, "fileRef") else {
            continue;
        };
        if let Some((_, href)) = files
            .iter()
            .find(|(id, _)| id.as_deref() == Some(r.as_str()))
            && !out.contains(href)
        {
            out.push(href.clone());
        }
    }
    if out.is_empty() {
        out = files.into_iter().map(|(_, h)| h).collect();
    }
    out
}

/// A disk of an OVA: its name in the OVF and its bytes in the archive.
pub struct OvaDisk {
    /// The `ovf:href` (the member's name).
    pub name: String,
    /// The member.
    pub member: Member,
    /// The member's bytes.
    pub source: Arc<dyn ReadAt>,
}

/// The disks of the OVA in `file`, in the OVF's order.
pub fn disks(file: Arc<dyn ReadAt>, name: &str) -> Result<Vec<OvaDisk>> {
    let members = members(&*file, name)?;
    let ovf = members
        .iter()
        .find(|m| m.name.to_ascii_lowercase().ends_with(".ovf"))
        .ok_or_else(|| Error::NotFound(format!("{name}: the OVA holds no .ovf descriptor")))?;
    let text = read_vec(&*file, ovf.offset, ovf.size, MAX_OVF).map_err(|e| {
        Error::corrupt(
            format!("{name}: OVF {}", ovf.name),
            ovf.offset,
            e.to_string(),
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    for href in disk_files(&text) {
        let m = members
            .iter()
            .find(|m| m.name == href || m.name.trim_start_matches("./") == href)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{name}: disk file {} named by the OVF {} is not in the archive",
                    crate::text::escape_str(&href),
                    ovf.name
                ))
            })?;
        out.push(OvaDisk {
            name: href,
            member: m.clone(),
            source: Arc::new(Window::new(Arc::clone(&file), m.offset, m.size)),
        });
    }
    if out.is_empty() {
        return Err(Error::NotFound(format!(
            "{name}: the OVF {} names no disk files",
            ovf.name
        )));
    }
    Ok(out)
}

/// The path shown for a disk of an OVA: the archive's path, then the member.
pub fn disk_path(ova: &Path, member: &str) -> PathBuf {
    ova.join(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovf_disks_follow_disk_order() {
        let ovf = r#"<Envelope><References><File ovf:href="b.vmdk" ovf:id="f2"/>
<File ovf:id="f1" ovf:href="a.vmdk"/><File ovf:href="notes.iso" ovf:id="f3"/></References>
<DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1"/><Disk ovf:fileRef='f2'/></DiskSection></Envelope>"#;
        assert_eq!(disk_files(ovf), vec!["a.vmdk", "b.vmdk"]);
    }

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(field_num(b"00000001750\0"), Some(1000));
        assert_eq!(
            field_num(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(field_num(b"12x\0"), None);
    }
}
