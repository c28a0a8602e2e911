//! The guest's namespace from a hostile `/etc/fstab`: the bytes up to the
//! first NUL are the fstab of an in-memory guest root, the rest a disk image
//! whose volumes the fstab's sources are resolved against (every spelling:
//! UUID=, LABEL=, /dev/mapper with `--`, kernel names, by-* links). The
//! namespace is built (mounts in order, binds, mounts over mounts, virtual
//! and missing entries) and its merged tree walked: no panic, no hang, and
//! every mountpoint in the table resolves inside the tree or is explained.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::mem::MemFs;
use vmrescue::fs::{FsView, path};
use vmrescue::guest::Namespace;
use vmrescue::image::{Image, ImageFormat};
use vmrescue::layers::{VolumeId, fstab};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, disk) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let image = Image::from_source("fuzz.img", Arc::new(disk.to_vec()), ImageFormat::Raw);
    let layout = vmrescue::layers::scan(vec![image]);
    for e in fstab::parse(text) {
        let _ = e.options();
        let _ = layout.resolve_spec(&e.spec);
        let _ = fstab::udev_unescape(&e.spec);
    }
    if layout.volumes.is_empty() {
        return;
    }
    // The root: a small guest with the fstab; every other volume: a folder
    // holding one file and a link that climbs out.
    let mut root = MemFs::new();
    let etc = root.add_dir(root.root_id(), b"etc", 0o755);
    root.add_file(etc, b"fstab", 0o644, text);
    root.add_dir(root.root_id(), b"home", 0o755);
    root.add_symlink(root.root_id(), b"up", b"../../home/..");
    let root: Arc<dyn FsView> = Arc::new(root);
    let open = |v: VolumeId| -> vmrescue::Result<Arc<dyn FsView>> {
        if v == VolumeId(0) {
            return Ok(Arc::clone(&root));
        }
        let mut fs = MemFs::new();
        fs.add_file(fs.root_id(), b"f", 0o644, b"x");
        fs.add_symlink(fs.root_id(), b"l", b"/etc/fstab");
        Ok(Arc::new(fs))
    };
    let ns = Namespace::build(&layout, VolumeId(0), &open);
    let fs = ns.fs();
    let _ = fs.status();
    if let Ok(entries) = fs.read_dir(fs.root()) {
        for e in entries.iter().take(64) {
            let _ = fs.metadata(e.node);
            let _ = ns.mount_of(e.node);
            let _ = ns.is_mountpoint(e.node);
        }
    }
    for m in ns.mounts() {
        let _ = m.state.reason();
        let _ = ns.locate(&m.mountpoint);
        let _ = ns.unavailable(&m.mountpoint, true);
        if let Ok(r) = path::resolve(&*fs, &m.mountpoint, true) {
            let _ = fs.read_dir(r.node);
            let _ = fs.dev(r.node);
        }
    }
    let _ = path::resolve(&*fs, b"/up/l", true);
});
