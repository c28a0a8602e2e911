//! The ELF reader on hostile files: the bytes as a file of an in-memory
//! tree, read with `elf::read` (headers, dynamic segment, version
//! definitions and needs), the release banner scanned, and the file loaded
//! as a program by the loader model (its interpreter and needed libraries
//! are the same file under their names). No panic, bounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::elf::{self, loader::Loader};
use vmrescue::fs::mem::MemFs;

fuzz_target!(|data: &[u8]| {
    let mut fs = MemFs::new();
    let root = fs.root_id();
    let node = fs.add_file(root, b"prog", 0o755, data);
    let info = elf::read(&fs, node);
    let _ = elf::release_version(&fs, node);
    if let Some(i) = &info {
        let _ = (i.summary(), i.glibc_version());
        // Every name it needs, and its interpreter, are this file again.
        let lib = fs.add_dir(root, b"lib", 0o755);
        for n in i.needed.iter().take(8) {
            if vmrescue::fs::path::is_safe_name(n) {
                fs.link(lib, n, node);
            }
        }
    }
    let read = |n| elf::read(&fs, n);
    let loader = Loader::new(&fs, &read);
    let _ = loader.load(b"/prog");
});
