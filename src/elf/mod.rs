//! Just enough ELF to choose a library: class, machine, type, `DT_SONAME`
//! and the version definitions (`GLIBC_2.12`).
//!
//! Only the ELF header, the program headers, the dynamic segment and the
//! parts of the string table they name are read, each bounded, so scanning
//! a whole `/lib64` reads a few KiB per file.

use crate::fs::{FsView, NodeId};

/// Largest dynamic segment or string table read.
const MAX_TABLE: u64 = 1 << 20;
/// Most program headers looked at.
const MAX_PHDRS: u64 = 256;

/// What vmrescue needs to know about an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub fn read(fs: &dyn FsView, node: NodeId) -> Option<ElfInfo> {
    let size = fs.metadata(node).ok()?.size;
    let mut r = Reader {
        fs,
        node,
        size,
        little: true,
    };
    let head = r.bytes(0, 64.min(size))?;
    if head.len() < 52 || &head[0..4] != b"\x7fELF" {
        return None;
    }
    let is64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    r.little = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
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
        soname: None,
        versions: Vec::new(),
        needed: Vec::new(),
        big_endian: !r.little,
    };
    let phnum = u64::from(phnum).min(MAX_PHDRS);
    let min_ent = if is64 { 56 } else { 32 };
    if phnum == 0 || u64::from(phentsize) < min_ent {
        return Some(info);
    }
    let phdrs = r.bytes(phoff, phnum * u64::from(phentsize))?;
    let mut loads = Vec::new();
    let mut dynamic: Option<(u64, u64)> = None;
    for i in 0..phnum as usize {
        let b = &phdrs[i * phentsize as usize..];
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
            1 => loads.push(Load {
                vaddr,
                offset,
                filesz,
            }),
            2 => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Some(info);
    };
    let dyns = r.bytes(dyn_off, dyn_size.min(MAX_TABLE))?;
    let ent = if is64 { 16 } else { 8 };
    let (mut strtab, mut strsz, mut soname, mut verdef, mut verdefnum) =
        (None, None, None, None, None);
    let mut needed = Vec::new();
    for chunk in dyns.chunks_exact(ent) {
        let tag = r.word(chunk, 0, is64)?;
        let val = r.word(chunk, ent / 2, is64)?;
        match tag {
            0 => break,
            1 if needed.len() < MAX_NEEDED => needed.push(val),
            5 => strtab = Some(val),
            10 => strsz = Some(val),
            14 => soname = Some(val),
            0x6fff_fffc => verdef = Some(val),
            0x6fff_fffd => verdefnum = Some(val),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Some(info);
    };
    let str_off = vaddr_to_offset(&loads, strtab)?;
    let strings = r.bytes(str_off, strsz.min(MAX_TABLE))?;
    let string_at = |off: u64| -> Option<Vec<u8>> {
        let s = strings.get(usize::try_from(off).ok()?..)?;
        let end = s.iter().position(|&c| c == 0)?;
        Some(s[..end].to_vec())
    };
    info.soname = soname.and_then(string_at);
    info.needed = needed.into_iter().filter_map(string_at).collect();
    if let (Some(vd), Some(n)) = (verdef, verdefnum) {
        info.versions = read_verdefs(&r, &loads, vd, n.min(1024), &string_at).unwrap_or_default();
    }
    Some(info)
}

/// Walk the `Elf*_Verdef` chain (same layout in ELF32 and ELF64).
fn read_verdefs(
    r: &Reader<'_>,
    loads: &[Load],
    vaddr: u64,
    count: u64,
    string_at: &dyn Fn(u64) -> Option<Vec<u8>>,
) -> Option<Vec<String>> {
    let mut off = vaddr_to_offset(loads, vaddr)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let vd = r.bytes(off, 20)?;
        let vd_flags = r.u16(&vd, 2)?;
        let vd_aux = u64::from(r.u32(&vd, 12)?);
        let vd_next = u64::from(r.u32(&vd, 16)?);
        // The base definition (VER_FLG_BASE) names the file itself.
        if vd_flags & 1 == 0 {
            let aux = r.bytes(off.checked_add(vd_aux)?, 8)?;
            let name = string_at(u64::from(r.u32(&aux, 0)?))?;
            out.push(String::from_utf8_lossy(&name).to_string());
        }
        if vd_next == 0 {
            break;
        }
        off = off.checked_add(vd_next)?;
    }
    Some(out)
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
    fn versions_compare_numerically() {
        assert!(compare_versions("2.9", "2.12").is_lt());
        assert!(compare_versions("2.12", "2.12").is_eq());
        assert!(compare_versions("2.14", "2.2.5").is_gt());
    }
}
