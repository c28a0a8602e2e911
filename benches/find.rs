//! `vmrescue find` against GNU `find` on a read-only kernel loop mount of the
//! same ext4 image, measured in the same run, warm and cold page cache.
//!
//! The image is made at bench time with `mke2fs -d` from a generated tree of
//! 100,000 files (100 folders of 10 folders of 100 files, some symlinks) and
//! removed afterwards. Cases: every path (`find /`), a name test (`-name
//! '*7.txt'`, no metadata needed), and a size test (`-size +0`, every inode
//! read). Prints the best of three runs per tool and the ratio; "cold" drops
//! the page cache (`echo 3 > /proc/sys/vm/drop_caches`) before each run. No
//! timed assertions.
//!
//! `cargo bench --bench find` (root: loop devices, mounts, drop_caches);
//! `VMRESCUE_BENCH_FILES` changes the number of files, `VMRESCUE_BENCH_DIR`
//! the scratch directory (default `target/bench-find`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::{Mount, Scratch, drop_caches, ms};

/// Timed runs of each tool per case (after one warm-up run when warm).
const RUNS: usize = 3;

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a small smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let files: usize = std::env::var("VMRESCUE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2_000 } else { 100_000 });
    let root = std::env::var_os("VMRESCUE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-find"));
    let is_root = rustix::process::geteuid().is_root();
    if !is_root {
        println!("find benchmark: needs root (loop mount, drop_caches); nothing measured");
        return;
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    let scratch = Scratch(root.clone());
    let tree = root.join("tree");
    let (dirs, made) = make_tree(&tree, files);
    let img = root.join("find.img");
    let t = Instant::now();
    mke2fs(&tree, &img, made + dirs);
    println!(
        "find benchmark: {made} files in {dirs} folders, ext4 image made by mke2fs -d in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&tree).expect("remove the generated tree");
    let mnt = Mount::new(&img, &root.join("mnt"));
    let bin = env!("CARGO_BIN_EXE_vmrescue");
    let cases: [(&str, &[&str]); 3] = [
        ("every path", &[]),
        ("-name '*7.txt'", &["-name", "*7.txt"]),
        ("-size +0 (every inode)", &["-size", "+0"]),
    ];
    for cold in [false, true] {
        println!(
            "\npage cache: {}",
            if cold {
                "cold (dropped before each run)"
            } else {
                "warm"
            }
        );
        for (label, args) in cases {
            let gnu = best(cold, || {
                let mut c = Command::new("find");
                c.arg(&mnt.dir).args(args);
                c
            });
            let ours = best(cold, || {
                let mut c = Command::new(bin);
                c.arg("find").arg(&img).arg("/").args(args);
                c
            });
            let (gl, gt) = gnu;
            let (ol, ot) = ours;
            println!(
                "  {label:<24} GNU find {:>8.1} ms ({gl} lines)   vmrescue find {:>8.1} ms ({ol} lines)   ratio {:.2}",
                ms(gt),
                ms(ot),
                ot.as_secs_f64() / gt.as_secs_f64().max(1e-9)
            );
            // The same files on both sides (GNU prints the mount point first).
            assert_eq!(gl, ol, "{label}: line counts differ");
        }
    }
    drop(mnt);
    drop(scratch);
}

/// Best of [`RUNS`] runs of the command `make` builds: (stdout lines, time).
fn best(cold: bool, make: impl Fn() -> Command) -> (usize, Duration) {
    if !cold {
        run_counting(make());
    }
    let mut best = Duration::MAX;
    let mut lines = 0;
    for _ in 0..RUNS {
        if cold {
            drop_caches();
        }
        let t = Instant::now();
        lines = run_counting(make());
        best = best.min(t.elapsed());
    }
    (lines, best)
}

/// Run, counting the lines of standard output (as a reader of it would).
fn run_counting(mut cmd: Command) -> usize {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
    let _ = child.wait();
    lines
}

/// `files` files, 100 per folder, folders 10 to a parent; every 50th a symlink.
fn make_tree(root: &Path, files: usize) -> (usize, usize) {
    let per_dir = 100;
    let leaf_dirs = files.div_ceil(per_dir);
    let mut made = 0;
    let mut dirs = 1;
    for d in 0..leaf_dirs {
        let dir = root.join(format!("top{:03}/mid{:02}", d / 10, d % 10));
        if d % 10 == 0 {
            dirs += 1;
        }
        dirs += 1;
        std::fs::create_dir_all(&dir).expect("make a folder");
        for f in 0..per_dir.min(files - made) {
            let p = dir.join(format!("file-{d}-{f}.txt"));
            if f % 50 == 49 {
                std::os::unix::fs::symlink(format!("file-{d}-0.txt"), &p).expect("symlink");
            } else {
                // Small contents: -size +0 matches most files.
                std::fs::write(&p, if f % 3 == 0 { &b""[..] } else { b"data\n" })
                    .expect("write a file");
            }
            made += 1;
        }
    }
    (dirs, made)
}

fn mke2fs(tree: &Path, img: &Path, inodes: usize) {
    let f = std::fs::File::create(img).expect("image");
    f.set_len(1 << 30).expect("image size");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-N"])
        .arg((inodes + 1000).to_string())
        .arg("-d")
        .arg(tree)
        .arg(img)
        .status()
        .expect("mke2fs");
    assert!(st.success(), "mke2fs -d");
}
