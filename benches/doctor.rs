//! `vmrescue doctor` on a real Debian 12 guest grown to 100,000 files and
//! about 2,000 ELF objects, against what an operator does by hand with the
//! kernel: a read-only loop mount and `ldd` (the guest's own loader, in a
//! chroot) on the programs that boot. Both measured in the same run, warm
//! and cold page cache; best of three. No timed assertions.
//!
//! The guest is the doctor fixture's Debian tree
//! (`tests/fixtures/make/lib/debian.sh`, cached under `$VMRESCUE_FIXTURES`
//! or `target/bench-doctor`), plus 100,000 small files under /srv and copies
//! of its shared libraries in /opt/bench-lib/NN (named in ld.so.conf.d, so
//! the doctor looks at them), made into an ext4 image with `mke2fs -d`.
//!
//! `cargo bench --bench doctor` (root: loop mounts, chroot, drop_caches);
//! `VMRESCUE_BENCH_FILES` changes the number of files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::{Mount, Scratch, drop_caches, ms};

/// Timed runs of each side (after one warm-up run when warm).
const RUNS: usize = 3;
/// The programs `ldd` is run on: what the doctor's closure check starts from.
const ROOTS: &[&str] = &[
    "/sbin/init",
    "/bin/sh",
    "/bin/bash",
    "/bin/login",
    "/sbin/agetty",
    "/usr/sbin/sshd",
];

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a small smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let files: usize = std::env::var("VMRESCUE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1_000 } else { 100_000 });
    if !rustix::process::geteuid().is_root() {
        println!("doctor benchmark: needs root (mmdebstrap, loop mount, chroot); nothing measured");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("target/bench-doctor");
    let cache = std::env::var_os("VMRESCUE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures"));
    let _ = std::fs::remove_dir_all(root.join("work"));
    std::fs::create_dir_all(root.join("work")).expect("bench directory");
    let scratch = Scratch(root.join("work"));
    let tree = scratch.0.join("tree");
    // The Debian tree, as the doctor fixtures make it.
    let st = Command::new("sh")
        .arg("-c")
        .arg(". tests/fixtures/make/lib/debian.sh && debian_tree \"$1\" \"$2\"")
        .arg("sh")
        .arg(&cache)
        .arg(&tree)
        .current_dir(&manifest)
        .status()
        .expect("sh");
    assert!(st.success(), "debian_tree (lib/debian.sh)");
    let elf = grow(&tree, files, if smoke { 2 } else { 20 });
    let img = scratch.0.join("doctor.img");
    mke2fs(&tree, &img, files + 40_000);
    std::fs::remove_dir_all(&tree).expect("remove the tree");
    println!(
        "doctor benchmark: Debian 12 + {files} files, {elf} ELF objects in the library directories"
    );
    let mnt = Mount::new(&img, &scratch.0.join("mnt"));
    let bin = env!("CARGO_BIN_EXE_vmrescue");
    for cold in [false, true] {
        let ours = best(cold, || {
            let mut c = Command::new(bin);
            c.arg("doctor").arg(&img);
            c
        });
        let ldd = best(cold, || {
            let mut c = Command::new("sh");
            let mut script = String::new();
            for r in ROOTS {
                script.push_str(&format!("chroot \"$1\" /usr/bin/ldd {r}; "));
            }
            c.arg("-c").arg(script).arg("sh").arg(&mnt.dir);
            c
        });
        println!(
            "  page cache {:<5} vmrescue doctor (every check) {:>8.1} ms   mount + chroot ldd of {} programs {:>8.1} ms   ratio {:.2}",
            if cold { "cold" } else { "warm" },
            ms(ours),
            ROOTS.len(),
            ms(ldd),
            ours.as_secs_f64() / ldd.as_secs_f64().max(1e-9)
        );
    }
    drop(mnt);
    drop(scratch);
}

/// Add `files` small files under /srv/bench and `copies` copies of the
/// guest's shared libraries under /opt/bench-lib (named in ld.so.conf.d).
/// Returns how many ELF objects the library directories then hold.
fn grow(tree: &Path, files: usize, copies: usize) -> usize {
    for i in 0..files {
        let dir = tree.join(format!("srv/bench/d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).expect("folder");
        }
        std::fs::write(dir.join(format!("f{i}.txt")), b"data\n").expect("file");
    }
    let libs = tree.join("usr/lib/x86_64-linux-gnu");
    let mut originals = Vec::new();
    for e in std::fs::read_dir(&libs).expect("multiarch library directory") {
        let e = e.expect("entry");
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.contains(".so") && e.file_type().expect("type").is_file() {
            originals.push(e.path());
        }
    }
    let mut conf = String::new();
    for c in 0..copies {
        let dir = tree.join(format!("opt/bench-lib/{c:02}"));
        std::fs::create_dir_all(&dir).expect("folder");
        for p in &originals {
            let name = p.file_name().expect("name");
            std::fs::copy(p, dir.join(name)).expect("copy a library");
        }
        conf.push_str(&format!("/opt/bench-lib/{c:02}\n"));
    }
    std::fs::write(tree.join("etc/ld.so.conf.d/bench.conf"), conf).expect("ld.so.conf.d");
    originals.len() * (copies + 1)
}

/// Best of [`RUNS`] runs of the command `make` builds.
fn best(cold: bool, make: impl Fn() -> Command) -> Duration {
    if !cold {
        run(make());
    }
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        if cold {
            drop_caches();
        }
        let t = Instant::now();
        run(make());
        best = best.min(t.elapsed());
    }
    best
}

fn run(mut cmd: Command) {
    let _ = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
}

fn mke2fs(tree: &Path, img: &Path, inodes: usize) {
    let f = std::fs::File::create(img).expect("image");
    f.set_len(3 << 30).expect("image size");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-N"])
        .arg(inodes.to_string())
        .arg("-d")
        .arg(tree)
        .arg(img)
        .status()
        .expect("mke2fs");
    assert!(st.success(), "mke2fs -d");
}
