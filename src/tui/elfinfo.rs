//! What an ELF file says about itself: class, machine, type, DT_SONAME and
//! DT_NEEDED, read from the dynamic section through the program headers (so
//! stripped section tables do not matter).

use elf::ElfBytes;
use elf::abi;
use elf::endian::AnyEndian;

use crate::fs::{FsView, NodeId};
use crate::text::escape;

/// Largest file read whole to inspect its ELF header (64 MiB).
pub const MAX_ELF_BYTES: u64 = 64 << 20;
/// Most DT_NEEDED entries listed.
const MAX_NEEDED: usize = 64;

/// The facts shown in the details window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `ELF 64-bit LSB shared object, x86-64`.
    pub summary: String,
    /// DT_SONAME, escaped.
    pub soname: Option<String>,
    /// DT_NEEDED entries, escaped.
    pub needed: Vec<String>,
}

/// Read the ELF facts of regular file `node` of `size` bytes; `Ok(None)` when
/// it is not an ELF file.
pub fn read(fs: &dyn FsView, node: NodeId, size: u64) -> Result<Option<ElfInfo>, String> {
    let mut magic = [0u8; 4];
    let n = fs.read_at(node, 0, &mut magic).map_err(|e| e.to_string())?;
    if n < 4 || magic != *b"\x7fELF" {
        return Ok(None);
    }
    if size > MAX_ELF_BYTES {
        return Err(super::strings::elf_too_large(MAX_ELF_BYTES));
    }
    let mut buf = vec![0u8; size as usize];
    let mut filled = 0usize;
    while filled < buf.len() {
        let got = fs
            .read_at(node, filled as u64, &mut buf[filled..])
            .map_err(|e| e.to_string())?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    buf.truncate(filled);
    parse(&buf).map(Some)
}

/// Parse ELF facts from a whole file's bytes.
pub fn parse(data: &[u8]) -> Result<ElfInfo, String> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(data).map_err(|e| format!("ELF: {e}"))?;
    let h = &file.ehdr;
    let class = match h.class {
        elf::file::Class::ELF32 => "32-bit",
        elf::file::Class::ELF64 => "64-bit",
    };
    let endian = if data.get(5) == Some(&2) {
        "MSB"
    } else {
        "LSB"
    };
    let kind = match h.e_type {
        abi::ET_EXEC => "executable",
        abi::ET_DYN => "shared object",
        abi::ET_REL => "relocatable",
        abi::ET_CORE => "core file",
        _ => "unknown type",
    };
    let machine = match h.e_machine {
        abi::EM_X86_64 => "x86-64".to_string(),
        abi::EM_386 => "Intel 80386".to_string(),
        abi::EM_AARCH64 => "ARM aarch64".to_string(),
        abi::EM_ARM => "ARM".to_string(),
        abi::EM_PPC64 => "PowerPC64".to_string(),
        abi::EM_S390 => "IBM S/390".to_string(),
        abi::EM_RISCV => "RISC-V".to_string(),
        m => format!("machine {m}"),
    };
    let summary = format!("ELF {class} {endian} {kind}, {machine}");
    let mut info = ElfInfo {
        summary,
        soname: None,
        needed: Vec::new(),
    };
    let Ok(Some(dynamic)) = file.dynamic() else {
        return Ok(info);
    };
    let mut strtab_vaddr = None;
    let mut soname_off = None;
    let mut needed_offs = Vec::new();
    for d in dynamic.iter().take(4096) {
        match d.d_tag {
            abi::DT_NULL => break,
            abi::DT_STRTAB => strtab_vaddr = Some(d.d_val()),
            abi::DT_SONAME => soname_off = Some(d.d_val()),
            abi::DT_NEEDED if needed_offs.len() < MAX_NEEDED => needed_offs.push(d.d_val()),
            _ => {}
        }
    }
    let Some(strtab) = strtab_vaddr.and_then(|v| vaddr_to_offset(&file, v)) else {
        return Ok(info);
    };
    let string_at = |off: u64| -> Option<String> {
        let start = usize::try_from(strtab.checked_add(off)?).ok()?;
        let rest = data.get(start..)?;
        let end = rest.iter().take(4096).position(|&b| b == 0)?;
        Some(escape(&rest[..end]))
    };
    info.soname = soname_off.and_then(string_at);
    info.needed = needed_offs.into_iter().filter_map(string_at).collect();
    Ok(info)
}

fn vaddr_to_offset(file: &ElfBytes<'_, AnyEndian>, vaddr: u64) -> Option<u64> {
    let segments = file.segments()?;
    segments
        .iter()
        .take(256)
        .filter(|p| p.p_type == abi::PT_LOAD)
        .find(|p| vaddr >= p.p_vaddr && vaddr - p.p_vaddr < p.p_filesz)
        .and_then(|p| p.p_offset.checked_add(vaddr - p.p_vaddr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"\x7fELF\x02\x01\x01").is_err());
        let mut junk = vec![0u8; 256];
        junk[..4].copy_from_slice(b"\x7fELF");
        let _ = parse(&junk);
    }

    #[test]
    fn reads_the_soname_of_a_host_library() {
        // Any shared library of the host that runs the tests will do.
        let candidates = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ];
        let path = candidates
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("a libc.so.6 on the host");
        let data = std::fs::read(path).unwrap();
        let info = parse(&data).unwrap();
        assert_eq!(info.soname.as_deref(), Some("libc.so.6"));
        assert!(info.summary.contains("shared object"), "{}", info.summary);
    }
}
