//! The doctor's text parsers on hostile guest files: the bytes are split at
//! NULs into `/var/log/apt/history.log`, `/var/log/dpkg.log`,
//! `/var/log/yum.log`, `/var/log/dnf.rpm.log` (gzip-compressed when they
//! start so), `/etc/selinux/config` and `/etc/fstab` of an in-memory guest,
//! then the package history and the notes check run: no panic, no hang, at
//! most the events asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::doctor::{self, Context, history};
use vmrescue::fs::mem::MemFs;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let mut next = || parts.next().unwrap_or(&[]);
    let mut fs = MemFs::new();
    let root = fs.root_id();
    let var = fs.add_dir(root, b"var", 0o755);
    let log = fs.add_dir(var, b"log", 0o755);
    let apt = fs.add_dir(log, b"apt", 0o755);
    let etc = fs.add_dir(root, b"etc", 0o755);
    let selinux = fs.add_dir(etc, b"selinux", 0o755);
    fs.add_file(apt, b"history.log", 0o644, next());
    fs.add_file(log, b"dpkg.log", 0o644, next());
    fs.add_file(log, b"dpkg.log.2.gz", 0o644, next());
    fs.add_file(log, b"yum.log", 0o644, next());
    fs.add_file(log, b"dnf.rpm.log", 0o644, next());
    fs.add_file(selinux, b"config", 0o644, next());
    fs.add_file(etc, b"fstab", 0o644, next());
    fs.add_file(root, b".autorelabel", 0o644, b"");
    for count in [0, 1, 10] {
        assert!(history::last_transactions(&fs, count).len() <= count);
    }
    let ctx = Context::new(&fs, None, None);
    let mut out = Vec::new();
    doctor::notes::check(&ctx, &mut out);
    assert!(!out.is_empty(), "the relabel note");
});
