//! A disk image stored as a file in a filesystem, opened through the
//! filesystem (`--open`, Enter in the browser): the same bytes at
//! `/images/a.qcow2` and `/images/b.qcow2` of an in-memory filesystem, so a
//! qcow2 header naming `b.qcow2`, `../images/a.qcow2` or `/images/b.qcow2`
//! as its backing file builds a chain (or a loop) inside the filesystem;
//! then reads of the first MiB, and the "what does this file hold" sentence.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsView;
use vmrescue::fs::mem::MemFs;
use vmrescue::image::OpenOptions;
use vmrescue::image::inner::open_in_fs;
use vmrescue::io::ReadAt;

/// Read at most this much of the virtual disk per input.
const READ_LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = vmrescue::layers::inner::not_a_disk(&data.to_vec());
    let mut m = MemFs::new();
    let root = m.root_id();
    let dir = m.add_dir(root, b"images", 0o755);
    m.add_file(dir, b"a.qcow2", 0o644, data);
    m.add_file(dir, b"b.qcow2", 0o644, data);
    let fs: Arc<dyn FsView> = Arc::new(m);
    let Ok(img) = open_in_fs(fs, b"/images/a.qcow2", &OpenOptions::default()) else {
        return;
    };
    let size = img.source.size();
    let mut buf = vec![0u8; 65536];
    let mut pos = 0;
    while pos < size.min(READ_LIMIT) {
        let n = (size - pos).min(buf.len() as u64) as usize;
        if img.source.read_exact_at(pos, &mut buf[..n]).is_err() {
            break;
        }
        pos += n as u64;
    }
    let _ = img.source.refresh();
});
