//! `/etc/ld.so.cache`, as glibc's `ld.so` reads it: the table `ldconfig`
//! writes of library names (`libc.so.6`) and the paths they resolve to,
//! each marked with the ABI it is for.
//!
//! Two formats exist (glibc's `dl-cache.h`): the old one (`ld.so-1.7.0`,
//! 12-byte entries, string offsets from the end of its table) and the new
//! one (`glibc-ld.so.cache1.1`, 24-byte entries with a hwcap word, string
//! offsets from the new header), either alone or the new one after the old
//! table at the next 8-byte boundary. When the new table is there `ld.so`
//! uses it alone, and so does this reader.
//!
//! Hostile input: every count is checked against the bytes there are, every
//! string is bounded, and nothing panics.

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

/// The old format's magic.
const MAGIC_OLD: &[u8] = b"ld.so-1.7.0";
/// The new format's magic and version.
const MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
/// Size of the new header (magic, version, nlibs, len_strings, flags,
/// padding, extension offset, unused words).
const NEW_HEADER: usize = 48;
/// Size of an old entry (flags, key, value).
const OLD_ENTRY: usize = 12;
/// Size of a new entry (flags, key, value, osversion, hwcap).
const NEW_ENTRY: usize = 24;
/// Longest string (a path) read from the table.
const MAX_STRING: usize = 4096;
/// Largest cache read: real ones are well under 1 MiB.
pub const MAX_CACHE: usize = 64 << 20;

/// `FLAG_ELF`: an ELF library of no particular ABI (accepted by every `ld.so`).
pub const FLAG_ELF: i32 = 0x0001;
/// `FLAG_ELF_LIBC6`: an ELF glibc library.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_TYPE_MASK`.
const FLAG_TYPE_MASK: i32 = 0x00ff;
/// `FLAG_REQUIRED_MASK`: the ABI bits.
const FLAG_REQUIRED_MASK: i32 = 0xff00;

/// Which layout the file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ld.so-1.7.0` alone (glibc before 2.2, libc5).
    Old,
    /// `glibc-ld.so.cache1.1`, alone or after the old table.
    New,
}

/// One entry: a library name and the path `ld.so` opens for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `FLAG_ELF_LIBC6` and the ABI bits (`FLAG_X8664_LIB64` = 0x0300 …).
    pub flags: i32,
    /// The library's name (its SONAME, as `ldconfig` read it).
    pub key: Vec<u8>,
    /// The absolute path.
    pub value: Vec<u8>,
    /// The hwcap word (new format; 0 in the old one). Bit 62 marks a
    /// `glibc-hwcaps` subdirectory entry.
    pub hwcap: u64,
}

/// A parsed `ld.so.cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    /// The layout used.
    pub format: Format,
    /// The entries in file order (`ldconfig` sorts them, most specific first).
    pub entries: Vec<Entry>,
    /// Entries whose strings could not be read (skipped).
    pub damaged: usize,
}

/// The flags value an `ld.so` for this ELF class and machine takes from the
/// cache besides [`FLAG_ELF`] (glibc's `_DL_CACHE_DEFAULT_ID`), or `None`
/// when the machine's ABI bits cannot be told from class and machine alone.
pub fn default_id(class: u8, machine: u16) -> Option<&'static [i32]> {
    Some(match (class, machine) {
        (32, 3) => &[FLAG_ELF_LIBC6],
        (64, 62) => &[0x0303],
        (32, 62) => &[0x0803],
        (64, 183) => &[0x0a03],
        (64, 21) => &[0x0503],
        (64, 22) => &[0x0403],
        (64, 2) | (64, 43) => &[0x0103],
        (64, 50) => &[0x0203],
        (64, 243) => &[0x0f03, 0x1003],
        (64, 258) => &[0x1103, 0x1203],
        _ => return None,
    })
}

/// Whether an entry's flags suit an object of this class and machine, as
/// `_dl_cache_check_flags` decides (`FLAG_ELF`, or the default id). For a
/// machine whose ABI bits are unknown here, any ELF entry is accepted.
pub fn flags_match(flags: i32, class: u8, machine: u16) -> bool {
    if flags == FLAG_ELF {
        return true;
    }
    match default_id(class, machine) {
        Some(ids) => ids.contains(&flags),
        None => {
            let kind = flags & FLAG_TYPE_MASK;
            (kind == FLAG_ELF || kind == FLAG_ELF_LIBC6)
                && (class == 64 || flags & FLAG_REQUIRED_MASK == 0 || machine == 40)
        }
    }
}

impl LdCache {
    /// The path `ld.so` takes for `name` from an object of this class and
    /// machine: the first matching entry that is not a `glibc-hwcaps` one
    /// (which depend on the CPU), else the first matching entry.
    pub fn lookup(&self, name: &[u8], class: u8, machine: u16) -> Option<&[u8]> {
        let mut matching = self
            .entries
            .iter()
            .filter(|e| e.key == name && flags_match(e.flags, class, machine));
        let first = matching.next()?;
        if first.hwcap & (1 << 62) == 0 {
            return Some(&first.value);
        }
        Some(
            matching
                .find(|e| e.hwcap & (1 << 62) == 0)
                .map_or(&first.value[..], |e| &e.value[..]),
        )
    }
}

/// Why a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheError(pub String);

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse the bytes of an `ld.so.cache`.
pub fn parse(data: &[u8]) -> Result<LdCache, CacheError> {
    if data.starts_with(MAGIC_NEW) {
        return parse_new(data, 0);
    }
    if !data.starts_with(MAGIC_OLD) {
        return Err(CacheError(
            "ld.so.cache: not a cache (bad magic at byte 0)".into(),
        ));
    }
    // The old header: magic (11 bytes), then nlibs at byte 12 (aligned).
    let nlibs = u32_at(data, 12, true)
        .ok_or_else(|| CacheError("ld.so.cache: header cut short at byte 12".into()))?;
    let table_end = usize::try_from(nlibs)
        .ok()
        .and_then(|n| n.checked_mul(OLD_ENTRY))
        .and_then(|n| n.checked_add(16))
        .filter(|&end| end <= data.len())
        .ok_or_else(|| {
            CacheError(format!(
                "ld.so.cache: {nlibs} entries at byte 16 do not fit in {} bytes",
                data.len()
            ))
        })?;
    // The new table follows at the next 8-byte boundary, when there is one.
    let aligned = table_end.checked_add(7).map(|n| n & !7);
    if let Some(start) = aligned
        && data.get(start..).is_some_and(|d| d.starts_with(MAGIC_NEW))
    {
        return parse_new(data, start);
    }
    let strings = data.get(table_end..).unwrap_or_default();
    let mut out = LdCache {
        format: Format::Old,
        entries: Vec::new(),
        damaged: 0,
    };
    for i in 0..nlibs as usize {
        let Some(off) = i.checked_mul(OLD_ENTRY).and_then(|o| o.checked_add(16)) else {
            break;
        };
        let (Some(flags), Some(key), Some(value)) = (
            u32_at(data, off, true),
            off.checked_add(4).and_then(|o| u32_at(data, o, true)),
            off.checked_add(8).and_then(|o| u32_at(data, o, true)),
        ) else {
            break;
        };
        match (string_at(strings, key), string_at(strings, value)) {
            (Some(key), Some(value)) => out.entries.push(Entry {
                flags: flags as i32,
                key,
                value,
                hwcap: 0,
            }),
            _ => out.damaged = out.damaged.saturating_add(1),
        }
    }
    Ok(out)
}

/// The new table starting at byte `start` of `data`; its string offsets
/// count from `start`.
fn parse_new(data: &[u8], start: usize) -> Result<LdCache, CacheError> {
    let cache = data.get(start..).unwrap_or_default();
    if cache.len() < NEW_HEADER {
        return Err(CacheError(format!(
            "ld.so.cache: new header at byte {start} cut short"
        )));
    }
    let fits = |n: u32| {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(NEW_ENTRY))
            .and_then(|n| n.checked_add(NEW_HEADER))
            .is_some_and(|end| end <= cache.len())
    };
    // Byte 28: 0 unknown (before glibc 2.33: then the count that fits
    // decides), 2 little-endian, 3 big-endian.
    let little = match cache.get(28) {
        Some(2) => true,
        Some(3) => false,
        _ => {
            u32_at(cache, 20, true).is_some_and(fits) || !u32_at(cache, 20, false).is_some_and(fits)
        }
    };
    let nlibs = u32_at(cache, 20, little).unwrap_or(0);
    if !fits(nlibs) {
        return Err(CacheError(format!(
            "ld.so.cache: {nlibs} entries at byte {} do not fit in {} bytes",
            start.saturating_add(NEW_HEADER),
            data.len()
        )));
    }
    let mut out = LdCache {
        format: Format::New,
        entries: Vec::new(),
        damaged: 0,
    };
    for i in 0..nlibs as usize {
        let Some(off) = i
            .checked_mul(NEW_ENTRY)
            .and_then(|o| o.checked_add(NEW_HEADER))
        else {
            break;
        };
        let field = |at: usize| off.checked_add(at).and_then(|o| u32_at(cache, o, little));
        let (Some(flags), Some(key), Some(value)) = (field(0), field(4), field(8)) else {
            break;
        };
        let hwcap = off
            .checked_add(16)
            .and_then(|o| cache.get(o..o.checked_add(8)?))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, |b| {
                if little {
                    u64::from_le_bytes(b)
                } else {
                    u64::from_be_bytes(b)
                }
            });
        match (string_at(cache, key), string_at(cache, value)) {
            (Some(key), Some(value)) => out.entries.push(Entry {
                flags: flags as i32,
                key,
                value,
                hwcap,
            }),
            _ => out.damaged = out.damaged.saturating_add(1),
        }
    }
    Ok(out)
}

fn u32_at(data: &[u8], off: usize, little: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// The NUL-terminated string at `off`, at most [`MAX_STRING`] bytes, not empty.
fn string_at(data: &[u8], off: u32) -> Option<Vec<u8>> {
    let s = data.get(usize::try_from(off).ok()?..)?;
    let s = s.get(..s.len().min(MAX_STRING.saturating_add(1)))?;
    let end = s.iter().position(|&c| c == 0)?;
    (end > 0)
        .then(|| s.get(..end).map(<[u8]>::to_vec))
        .flatten()
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    /// A new-format cache with these (flags, key, value) entries.
    fn new_cache(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut table = Vec::new();
        for (flags, key, value) in entries {
            let k = base + strings.len();
            strings.extend_from_slice(key.as_bytes());
            strings.push(0);
            let v = base + strings.len();
            strings.extend_from_slice(value.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&(k as u32).to_le_bytes());
            table.extend_from_slice(&(v as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&0u64.to_le_bytes());
        }
        let mut out = MAGIC_NEW.to_vec();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&[2, 0, 0, 0]);
        out.extend_from_slice(&[0; 16]);
        assert_eq!(out.len(), NEW_HEADER);
        out.extend(table);
        out.extend(strings);
        out
    }

    #[test]
    fn new_format_lookup_by_abi() {
        let c = parse(&new_cache(&[
            (0x0303, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
            (0x0003, "libz.so.1", "/lib/i386-linux-gnu/libz.so.1"),
        ]))
        .unwrap();
        assert_eq!(c.format, Format::New);
        assert_eq!(c.entries.len(), 2);
        assert_eq!(
            c.lookup(b"libz.so.1", 64, 62),
            Some(&b"/lib/x86_64-linux-gnu/libz.so.1"[..])
        );
        assert_eq!(
            c.lookup(b"libz.so.1", 32, 3),
            Some(&b"/lib/i386-linux-gnu/libz.so.1"[..])
        );
        assert_eq!(c.lookup(b"libz.so.1", 64, 183), None);
        assert_eq!(c.lookup(b"libc.so.6", 64, 62), None);
    }

    #[test]
    fn new_after_old_table() {
        let new = new_cache(&[(0x0303, "libc.so.6", "/lib64/libc.so.6")]);
        let mut data = MAGIC_OLD.to_vec();
        data.push(0);
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        while !data.len().is_multiple_of(8) {
            data.push(0);
        }
        data.extend(new);
        let c = parse(&data).unwrap();
        assert_eq!(c.format, Format::New);
        assert_eq!(
            c.lookup(b"libc.so.6", 64, 62),
            Some(&b"/lib64/libc.so.6"[..])
        );
    }

    #[test]
    fn hostile_counts_are_errors() {
        let mut data = new_cache(&[(0x0303, "a", "/a")]);
        data[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&data).is_err());
        assert!(parse(b"ld.so-1.7.0\0\xff\xff\xff\xff").is_err());
        assert!(parse(b"nothing").is_err());
        assert!(parse(MAGIC_NEW).is_err());
    }

    #[test]
    fn the_host_cache_parses() {
        let Ok(data) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let c = parse(&data).unwrap();
        assert!(!c.entries.is_empty());
        assert!(c.entries.iter().any(|e| e.key == b"libc.so.6"));
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            let p = c.lookup(b"libc.so.6", 64, 62).expect("the host's libc");
            let p = std::str::from_utf8(p).unwrap();
            assert!(std::path::Path::new(p).exists(), "{p}");
        }
    }
}
