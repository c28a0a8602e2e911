//! The doctor's mounts, space and accounts checks on hostile guest files:
//! the input, split at NUL bytes, is `/etc/passwd`, `/etc/shadow`,
//! `/etc/group`, `/etc/nsswitch.conf`, `/etc/fstab`, `/etc/shells`, and
//! then a disk image the fstab's sources are resolved against. The three
//! checks run on the namespace built from them and on the root alone: no
//! panic, no hang, every finding names a check and says something.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::doctor::{self, Context};
use vmrescue::fs::FsView;
use vmrescue::fs::mem::MemFs;
use vmrescue::guest::Namespace;
use vmrescue::image::{Image, ImageFormat};
use vmrescue::layers::VolumeId;

const FILES: [&[u8]; 6] = [
    b"passwd",
    b"shadow",
    b"group",
    b"nsswitch.conf",
    b"fstab",
    b"shells",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(FILES.len() + 1, |&b| b == 0);
    let mut root = MemFs::new();
    let etc = root.add_dir(root.root_id(), b"etc", 0o755);
    for name in FILES {
        root.add_file(etc, name, 0o644, parts.next().unwrap_or_default());
    }
    let disk = parts.next().unwrap_or_default();
    let bin = root.add_dir(root.root_id(), b"bin", 0o755);
    root.add_file(bin, b"sh", 0o755, b"\x7fELF");
    root.add_symlink(bin, b"bash", b"sh");
    root.add_symlink(bin, b"loop", b"loop");
    let lib = root.add_dir(root.root_id(), b"lib64", 0o755);
    root.add_file(lib, b"libc.so.6", 0o755, b"\x7fELF");
    root.add_file(lib, b"libnss_files.so.2", 0o755, b"\x7fELF");
    let root: Arc<dyn FsView> = Arc::new(root);

    let image = Image::from_source("fuzz.img", Arc::new(disk.to_vec()), ImageFormat::Raw);
    let layout = vmrescue::layers::scan(vec![image]);
    let run = |ctx: &Context<'_>| {
        let mut out = Vec::new();
        let checked = [
            doctor::mounts::check(ctx, &mut out),
            doctor::space::check(ctx, doctor::space::Os::Linux, &mut out),
            doctor::space::check(
                ctx,
                doctor::space::Os::Windows {
                    system: Some(b"/".as_slice()),
                },
                &mut out,
            ),
            doctor::accounts::check(ctx, &mut out),
        ];
        for c in &checked {
            assert!(!c.summary.is_empty());
        }
        for f in &out {
            assert!(!f.summary.is_empty());
            let _ = f.impact.heading();
        }
    };
    run(&Context::new(&*root, None, Some(&layout)));
    run(&Context::new(&*root, None, None));
    if layout.volumes.is_empty() {
        return;
    }
    let open = |v: VolumeId| -> vmrescue::Result<Arc<dyn FsView>> {
        if v == VolumeId(0) {
            return Ok(Arc::clone(&root));
        }
        Ok(Arc::new(MemFs::new()))
    };
    let ns = Namespace::build(&layout, VolumeId(0), &open);
    let fs = ns.fs();
    run(&Context::new(&*fs, Some(&ns), Some(&layout)));
});
