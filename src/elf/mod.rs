//! Just enough ELF to choose a library and to load it as `ld.so` would:
//! class, machine, type, `PT_INTERP`, `DT_SONAME`, `DT_NEEDED`, `DT_RPATH`,
//! `DT_RUNPATH`, the version definitions (`GLIBC_2.12`) and the versions
//! each needed file must define (`DT_VERNEED`), and whether the file is
//! shorter than its loadable segments.
//!
//! Only the ELF header, the program headers, the dynamic segment and the
//! parts of the string table they name are read, each bounded, so scanning
//! a whole `/lib64` reads a few KiB per file. [`ldcache`] reads
//! `/etc/ld.so.cache`, [`loader`] resolves names as `ld.so` does.

pub mod ldcache;
pub mod loader;

use crate::fs::{FsView, NodeId};

/// Largest dynamic segment or string table read.
const MAX_TABLE: u64 = 1 << 20;
/// Most program headers looked at.
const MAX_PHDRS: u64 = 256;

/// Longest `PT_INTERP`, `DT_RPATH` or `DT_RUNPATH` kept (as `PATH_MAX`).
const MAX_PATHS: usize = 4096;
/// Most `DT_VERNEED` files, and versions per file, looked at.
const MAX_VERNEED: u64 = 256;
/// How far into a file [`release_version`] looks.
const MAX_RELEASE_SCAN: u64 = 8 << 20;

/// One version an object needs from one of its needed files (`Elf*_Vernaux`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededVersion {
    /// The version's name (`GLIBC_2.34`).
    pub name: String,
    /// `VER_FLG_WEAK`: a missing definition is only a warning for `ld.so`.
    pub weak: bool,
    /// `vna_other`: the version index the object's symbols use
    /// (`VER_NDX`, bit 15 hidden).
    pub index: u16,
}

/// The versions an object needs from one file (`Elf*_Verneed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionNeed {
    /// `vn_file`: the needed file's name as in `DT_NEEDED` (`libc.so.6`).
    pub file: Vec<u8>,
    /// The versions needed from it.
    pub versions: Vec<NeededVersion>,
}

/// What vmrescue needs to know about an ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElfInfo {
    /// 32 or 64.
    pub class: u8,
    /// `e_machine` (62 = x86-64, 3 = i386, 183 = AArch64).
    pub machine: u16,
    /// `e_type` (2 = executable, 3 = shared object).
    pub elf_type: u16,
    /// `DT_SONAME`, if any.
    pub soname: Option<Vec<u8>>,
    /// Names of the version definitions (`GLIBC_2.2.5`, …, `GLIBC_2.12`).
    pub versions: Vec<String>,
    /// `DT_NEEDED` entries, in order (at most [`MAX_NEEDED`]).
    pub needed: Vec<Vec<u8>>,
    /// Most significant byte first.
    pub big_endian: bool,
    /// `PT_INTERP`: the program interpreter (`/lib64/ld-linux-x86-64.so.2`).
    pub interp: Option<Vec<u8>>,
    /// `DT_RPATH`, colon-separated, tokens unexpanded.
    pub rpath: Option<Vec<u8>>,
    /// `DT_RUNPATH`, colon-separated, tokens unexpanded.
    pub runpath: Option<Vec<u8>>,
    /// `DT_VERNEED`: per needed file, the versions it must define.
    pub verneed: Vec<VersionNeed>,
    /// The name of the base version definition (`VER_FLG_BASE`), usually the SONAME.
    pub version_base: Option<String>,
    /// The file ends before the end of a `PT_LOAD` segment's file range
    /// (or of its program headers): `ld.so` cannot map it.
    pub truncated: bool,
    /// `DF_1_NODEFLIB`: `ld.so` skips the cache and the default directories for its needs.
    pub nodeflib: bool,
}

/// Most `DT_NEEDED` entries kept.
pub const MAX_NEEDED: usize = 64;

impl ElfInfo {
    /// The machine in words.
    pub fn machine_name(&self) -> String {
        match self.machine {
            3 => "i386".into(),
            62 => "x86-64".into(),
            40 => "ARM".into(),
            183 => "AArch64".into(),
            8 => "MIPS".into(),
            20 => "PowerPC".into(),
            21 => "PowerPC64".into(),
            22 => "S/390".into(),
            243 => "RISC-V".into(),
            m => format!("machine {m}"),
        }
    }

    /// `ELF64 x86-64` style description.
    pub fn describe(&self) -> String {
        format!("ELF{} {}", self.class, self.machine_name())
    }

    /// `file`-style summary: `ELF 64-bit LSB shared object, x86-64`.
    pub fn summary(&self) -> String {
        let kind = match self.elf_type {
            1 => "relocatable",
            2 => "executable",
            3 => "shared object",
            4 => "core file",
            _ => "unknown type",
        };
        format!(
            "ELF {}-bit {} {kind}, {}",
            self.class,
            if self.big_endian { "MSB" } else { "LSB" },
            self.machine_name()
        )
    }

    /// The highest `GLIBC_x.y` version defined, as `x.y`.
    pub fn glibc_version(&self) -> Option<String> {
        self.versions
            .iter()
            .filter_map(|v| v.strip_prefix("GLIBC_"))
            .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .max_by(|a, b| compare_versions(a, b))
            .map(str::to_string)
    }
}

/// Compare dotted version strings numerically (`2.9` < `2.12`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}

struct Reader<'a> {
    fs: &'a dyn FsView,
    node: NodeId,
    size: u64,
    little: bool,
}

impl Reader<'_> {
    fn bytes(&self, off: u64, len: u64) -> Option<Vec<u8>> {
        if len > MAX_TABLE || off.checked_add(len)? > self.size {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .fs
                .read_at(self.node, off + done as u64, &mut buf[done..])
                .ok()?;
            if n == 0 {
                return None;
            }
            done += n;
        }
        Some(buf)
    }

    fn u16(&self, b: &[u8], off: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        })
    }

    fn u32(&self, b: &[u8], off: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        })
    }

    fn u64(&self, b: &[u8], off: usize) -> Option<u64> {
        let x: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
        Some(if self.little {
            u64::from_le_bytes(x)
        } else {
            u64::from_be_bytes(x)
        })
    }

    /// A word: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, b: &[u8], off: usize, is64: bool) -> Option<u64> {
        if is64 {
            self.u64(b, off)
        } else {
            self.u32(b, off).map(u64::from)
        }
    }
}

/// A loadable segment: virtual address range and file offset.
struct Load {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

fn vaddr_to_offset(loads: &[Load], vaddr: u64) -> Option<u64> {
    loads
        .iter()
        .find(|l| vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz)
        .map(|l| l.offset + (vaddr - l.vaddr))
}

/// Read the ELF facts of a regular file; `None` if it is not ELF or is damaged.
///
/// A file cut short is still read as far as it goes, with
/// [`ElfInfo::truncated`] set.
pub fn read(fs: &dyn FsView, node: NodeId) -> Option<ElfInfo> {
    let size = fs.metadata(node).ok()?.size;
    let mut r = Reader {
        fs,
        node,
        size,
        little: true,
    };
    let head = r.bytes(0, 64.min(size))?;
    if head.len() < 52 || head.get(0..4)? != b"\x7fELF" {
        return None;
    }
    let is64 = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    r.little = match head.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    if is64 && head.len() < 64 {
        return None;
    }
    let elf_type = r.u16(&head, 16)?;
    let machine = r.u16(&head, 18)?;
    let (phoff, phentsize, phnum) = if is64 {
        (r.u64(&head, 32)?, r.u16(&head, 54)?, r.u16(&head, 56)?)
    } else {
        (
            u64::from(r.u32(&head, 28)?),
            r.u16(&head, 42)?,
            r.u16(&head, 44)?,
        )
    };
    let mut info = ElfInfo {
        class: if is64 { 64 } else { 32 },
        machine,
        elf_type,
        big_endian: !r.little,
        ..ElfInfo::default()
    };
    let phnum = u64::from(phnum).min(MAX_PHDRS);
    let min_ent = if is64 { 56 } else { 32 };
    if phnum == 0 || u64::from(phentsize) < min_ent {
        return Some(info);
    }
    let table_len = phnum * u64::from(phentsize);
    if phoff.checked_add(table_len).is_none_or(|end| end > size) {
        info.truncated = true;
        return Some(info);
    }
    let phdrs = r.bytes(phoff, table_len)?;
    let mut loads = Vec::new();
    let mut dynamic: Option<(u64, u64)> = None;
    let mut interp: Option<(u64, u64)> = None;
    for b in phdrs.chunks_exact(usize::from(phentsize)) {
        let p_type = r.u32(b, 0)?;
        let (offset, vaddr, filesz) = if is64 {
            (r.u64(b, 8)?, r.u64(b, 16)?, r.u64(b, 32)?)
        } else {
            (
                u64::from(r.u32(b, 4)?),
                u64::from(r.u32(b, 8)?),
                u64::from(r.u32(b, 16)?),
            )
        };
        match p_type {
            1 => {
                if offset.checked_add(filesz).is_none_or(|end| end > size) {
                    info.truncated = true;
                }
                loads.push(Load {
                    vaddr,
                    offset,
                    filesz,
                });
            }
            2 => dynamic = Some((offset, filesz)),
            3 => interp = Some((offset, filesz)),
            _ => {}
        }
    }
    if let Some((off, len)) = interp {
        let len = len.min(MAX_PATHS as u64);
        match r.bytes(off, len) {
            Some(b) => {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                info.interp = Some(b[..end].to_vec());
            }
            None => info.truncated = true,
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Some(info);
    };
    let Some(dyns) = r.bytes(dyn_off, dyn_size.min(MAX_TABLE)) else {
        return info.truncated.then_some(info);
    };
    let ent = if is64 { 16 } else { 8 };
    let mut d = DynTags::default();
    for chunk in dyns.chunks_exact(ent) {
        let tag = r.word(chunk, 0, is64)?;
        let val = r.word(chunk, ent / 2, is64)?;
        match tag {
            0 => break,
            1 if d.needed.len() < MAX_NEEDED => d.needed.push(val),
            5 => d.strtab = Some(val),
            10 => d.strsz = Some(val),
            14 => d.soname = Some(val),
            15 => d.rpath = Some(val),
            29 => d.runpath = Some(val),
            0x6fff_fffb => info.nodeflib = val & 0x800 != 0,
            0x6fff_fffc => d.verdef = Some(val),
            0x6fff_fffd => d.verdefnum = Some(val),
            0x6fff_fffe => d.verneed = Some(val),
            0x6fff_ffff => d.verneednum = Some(val),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (d.strtab, d.strsz) else {
        return Some(info);
    };
    let Some(str_off) = vaddr_to_offset(&loads, strtab) else {
        return info.truncated.then_some(info);
    };
    let Some(strings) = r.bytes(
        str_off,
        strsz.min(MAX_TABLE).min(size.saturating_sub(str_off)),
    ) else {
        return info.truncated.then_some(info);
    };
    let string_at = |off: u64| -> Option<Vec<u8>> {
        let s = strings.get(usize::try_from(off).ok()?..)?;
        let end = s.iter().position(|&c| c == 0)?;
        Some(s[..end].to_vec())
    };
    let path_at = |off: u64| string_at(off).filter(|p| p.len() <= MAX_PATHS);
    info.soname = d.soname.and_then(string_at);
    info.rpath = d.rpath.and_then(path_at);
    info.runpath = d.runpath.and_then(path_at);
    info.needed = d.needed.into_iter().filter_map(string_at).collect();
    if let (Some(vd), Some(n)) = (d.verdef, d.verdefnum) {
        let (versions, base) =
            read_verdefs(&r, &loads, vd, n.min(1024), &string_at).unwrap_or_default();
        info.versions = versions;
        info.version_base = base;
    }
    if let (Some(vn), Some(n)) = (d.verneed, d.verneednum) {
        info.verneed = read_verneeds(&r, &loads, vn, n.min(MAX_VERNEED), &string_at);
    }
    Some(info)
}

/// The dynamic tags [`read`] looks at (string table offsets and addresses).
#[derive(Default)]
struct DynTags {
    strtab: Option<u64>,
    strsz: Option<u64>,
    soname: Option<u64>,
    rpath: Option<u64>,
    runpath: Option<u64>,
    verdef: Option<u64>,
    verdefnum: Option<u64>,
    verneed: Option<u64>,
    verneednum: Option<u64>,
    needed: Vec<u64>,
}

/// Walk the `Elf*_Verdef` chain (same layout in ELF32 and ELF64): the
/// defined versions, and the base definition's name apart.
fn read_verdefs(
    r: &Reader<'_>,
    loads: &[Load],
    vaddr: u64,
    count: u64,
    string_at: &dyn Fn(u64) -> Option<Vec<u8>>,
) -> Option<(Vec<String>, Option<String>)> {
    let mut off = vaddr_to_offset(loads, vaddr)?;
    let mut out = Vec::new();
    let mut base = None;
    for _ in 0..count {
        let vd = r.bytes(off, 20)?;
        let vd_flags = r.u16(&vd, 2)?;
        let vd_aux = u64::from(r.u32(&vd, 12)?);
        let vd_next = u64::from(r.u32(&vd, 16)?);
        let aux = r.bytes(off.checked_add(vd_aux)?, 8)?;
        let name = string_at(u64::from(r.u32(&aux, 0)?))?;
        let name = String::from_utf8_lossy(&name).to_string();
        // The base definition (VER_FLG_BASE) names the file itself.
        if vd_flags & 1 == 0 {
            out.push(name);
        } else {
            base = Some(name);
        }
        if vd_next == 0 {
            break;
        }
        off = off.checked_add(vd_next)?;
    }
    Some((out, base))
}

/// Walk the `Elf*_Verneed` chain and each entry's `Elf*_Vernaux` list (same
/// layout in ELF32 and ELF64). What cannot be read ends the walk; what was
/// read is kept.
fn read_verneeds(
    r: &Reader<'_>,
    loads: &[Load],
    vaddr: u64,
    count: u64,
    string_at: &dyn Fn(u64) -> Option<Vec<u8>>,
) -> Vec<VersionNeed> {
    let mut out = Vec::new();
    let Some(mut off) = vaddr_to_offset(loads, vaddr) else {
        return out;
    };
    for _ in 0..count {
        let Some(vn) = r.bytes(off, 16) else { break };
        let (Some(cnt), Some(file), Some(aux), Some(next)) =
            (r.u16(&vn, 2), r.u32(&vn, 4), r.u32(&vn, 8), r.u32(&vn, 12))
        else {
            break;
        };
        let Some(file) = string_at(u64::from(file)) else {
            break;
        };
        let mut need = VersionNeed {
            file,
            versions: Vec::new(),
        };
        let mut aux_off = off.checked_add(u64::from(aux));
        for _ in 0..u64::from(cnt).min(MAX_VERNEED) {
            let Some(a_off) = aux_off else { break };
            let Some(a) = r.bytes(a_off, 16) else { break };
            let (Some(flags), Some(other), Some(name), Some(a_next)) =
                (r.u16(&a, 4), r.u16(&a, 6), r.u32(&a, 8), r.u32(&a, 12))
            else {
                break;
            };
            if let Some(name) = string_at(u64::from(name)) {
                need.versions.push(NeededVersion {
                    name: String::from_utf8_lossy(&name).to_string(),
                    weak: flags & 2 != 0,
                    index: other,
                });
            }
            if a_next == 0 {
                break;
            }
            aux_off = a_off.checked_add(u64::from(a_next));
        }
        out.push(need);
        if next == 0 {
            break;
        }
        match off.checked_add(u64::from(next)) {
            Some(o) => off = o,
            None => break,
        }
    }
    out
}

/// The glibc release a `libc.so.6` or `ld.so` says it is: the `X.Y` of the
/// "… release version X.Y" banner both carry (what `ld.so --version` and
/// running `libc.so.6` print), looked for in the first 8 MiB.
pub fn release_version(fs: &dyn FsView, node: NodeId) -> Option<String> {
    const NEEDLE: &[u8] = b"release version ";
    const CHUNK: u64 = 256 * 1024;
    let size = fs.metadata(node).ok()?.size.min(MAX_RELEASE_SCAN);
    let mut off = 0u64;
    while off < size {
        // Overlap the chunks so a banner across a boundary is seen whole.
        let len = CHUNK.min(size - off);
        let mut buf = vec![0u8; len as usize];
        let mut done = 0;
        while done < buf.len() {
            match fs.read_at(node, off + done as u64, &mut buf[done..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        buf.truncate(done);
        let mut from = 0;
        while let Some(i) = find(&buf[from..], NEEDLE) {
            let start = from + i + NEEDLE.len();
            let v: Vec<u8> = buf[start..]
                .iter()
                .take(16)
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .copied()
                .collect();
            let v = String::from_utf8_lossy(&v)
                .trim_end_matches('.')
                .to_string();
            if v.contains('.') && v.starts_with(|c: char| c.is_ascii_digit()) {
                return Some(v);
            }
            from = start;
        }
        if done < len as usize || off + len >= size {
            break;
        }
        off += len - 64;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    fn read_bytes(data: &[u8]) -> Option<ElfInfo> {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let node = fs.add_file(root, b"f", 0o644, data);
        read(&fs, node)
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert!(read_bytes(b"\x7fELF\x02\x01\x01").is_none());
        let mut junk = vec![0xffu8; 4096];
        junk[..4].copy_from_slice(b"\x7fELF");
        junk[4] = 2;
        junk[5] = 1;
        let _ = read_bytes(&junk);
        assert!(read_bytes(b"not an elf file at all").is_none());
    }

    #[test]
    fn reads_the_host_libc() {
        // The libc of the machine running the tests: SONAME, needed, versions.
        let path = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a libc.so.6 on the host");
        let info = read_bytes(&std::fs::read(path).unwrap()).expect("ELF");
        assert_eq!(info.soname.as_deref(), Some(&b"libc.so.6"[..]));
        assert_eq!(info.elf_type, 3);
        assert!(
            info.summary().contains("shared object"),
            "{}",
            info.summary()
        );
        let v = info.glibc_version().expect("GLIBC_ versions");
        assert!(compare_versions(&v, "2.17").is_ge(), "{v}");
    }

    #[test]
    fn cut_and_damaged_files_are_read_without_panic() {
        let Some(data) = ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
        else {
            return;
        };
        let whole = read_bytes(&data).expect("ELF");
        assert!(!whole.truncated);
        assert!(!whole.verneed.is_empty(), "libc needs ld.so's versions");
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let node = fs.add_file(root, b"libc", 0o755, &data);
        let release = release_version(&fs, node).expect("a release banner");
        assert!(release.starts_with("2."), "{release}");
        // (Past the last loadable segment come the section headers: cutting
        // those is no harm to ld.so.)
        for cut in [64, 200, 4096, data.len() / 2] {
            if let Some(i) = read_bytes(&data[..cut]) {
                assert!(i.truncated, "cut at {cut}");
            }
        }
        let mut bad = data.clone();
        for (k, at) in (0..bad.len()).step_by(997).enumerate() {
            bad[at] ^= (k as u8) | 1;
        }
        let _ = read_bytes(&bad);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("2.9", "2.12").is_lt());
        assert!(compare_versions("2.12", "2.12").is_eq());
        assert!(compare_versions("2.14", "2.2.5").is_gt());
    }
}
