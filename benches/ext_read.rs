//! ext reader benchmark: `ls -l` of a 100,000-entry directory, and reading
//! out one 1 GiB file and a tree of ~30,000 small files from an ext4 image,
//! against `debugfs` and a read-only kernel loop mount in the same run, with
//! a warm and a cold page cache. Prints times, rates, ratios and our peak RSS;
//! asserts nothing.
//!
//! Run as root (loop mounts, `drop_caches`): `cargo bench --bench ext_read`.
//! The image is built once with mke2fs -d (+ `e2fsck -D` to index the big
//! directory) under `$VMRESCUE_BENCH_DIR` (default `/var/tmp/vmrescue-bench`).
//!
//! HOOK for the lead: [`copy_out`] is a minimal stand-in for the real copy-out
//! (`ops::copy`). Replace its body with a call to that code and the "copy"
//! rows measure `vmrescue cp` itself; the "read" rows measure the reader alone.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;
use support::{median_of_runs, median_wall, peak_rss_kib, reps, run_child, sh};

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vmrescue::fs::FsOptions;
use vmrescue::fs::ext::Ext;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView};
use vmrescue::io::{FileSource, ReadAt};
use vmrescue::ops::copy::{CopyJob, CopyOptions, CopySource};

const STAMP: &str = "ext-bench v1: 1 GiB file, 30,000 small files, 100,000-entry directory";
const BIG_BYTES: usize = 1 << 30;
const TREE_FILES: usize = 30_000;
const DIR_ENTRIES: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    // `cargo test --all-targets` runs bench programs too (without `--bench`):
    // the benchmark builds a 3 GiB image and takes minutes, so only `cargo bench` runs it.
    if !args.iter().any(|a| a == "--bench") {
        println!("ext_read: a benchmark; run it with `cargo bench --bench ext_read`");
        return;
    }
    let dir = PathBuf::from(
        std::env::var("VMRESCUE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/vmrescue-bench".into()),
    );
    std::fs::create_dir_all(&dir).expect("bench directory");
    let image = dir.join("ext4-bench.img");
    build_image(&dir, &image);
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        println!(
            "not root: the kernel-mount rows and cold-cache runs are left out (run as root for them)"
        );
    }
    let mnt = root.then(|| Mount::new(&image));
    // VMRESCUE_BENCH_ONLY=ls (or big, tree) runs one group of rows.
    let only = std::env::var("VMRESCUE_BENCH_ONLY").ok();
    let want = |g: &str| only.as_deref().is_none_or(|o| o == g);
    let mut rows: Vec<Row> = Vec::new();
    let caches: &[bool] = if root { &[false, true] } else { &[false] };
    for &cold in caches {
        let c = if cold { "cold" } else { "warm" };
        // ls -l of the big directory.
        if want("ls") {
            rows.push(ours(&dir, "ls", &image, cold, c));
            rows.push(tool(&dir, "ls", "debugfs", cold, c, |_| {
                sh(Command::new("debugfs")
                    .args(["-R", "ls -l /big100k"])
                    .arg(&image))
            }));
            if let Some(m) = &mnt {
                rows.push(tool(&dir, "ls", "kernel ls -l", cold, c, |_| {
                    sh(Command::new("ls").arg("-l").arg(m.dir.join("big100k")))
                }));
            }
        }
        // One 1 GiB file, then the tree of small files.
        for (task, src) in [("big", "/big.bin"), ("tree", "/tree")] {
            if !want(task) {
                continue;
            }
            rows.push(ours(&dir, &format!("read-{task}"), &image, cold, c));
            rows.push(ours(&dir, &format!("copy-{task}"), &image, cold, c));
            rows.push(tool(
                &dir,
                &format!("copy-{task}"),
                "debugfs rdump",
                cold,
                c,
                |out| {
                    sh(Command::new("debugfs")
                        .arg("-R")
                        .arg(format!("rdump {src} {}", out.display()))
                        .arg(&image))
                },
            ));
            if let Some(m) = &mnt {
                rows.push(tool(
                    &dir,
                    &format!("copy-{task}"),
                    "kernel cp -a",
                    cold,
                    c,
                    |out| {
                        sh(Command::new("cp")
                            .arg("-a")
                            .arg(m.dir.join(&src[1..]))
                            .arg(out))
                    },
                ));
            }
        }
    }
    drop(mnt);
    report(&rows);
}

struct Row {
    task: String,
    tool: String,
    cache: &'static str,
    secs: f64,
    bytes: u64,
    rss_kib: Option<u64>,
}

fn report(rows: &[Row]) {
    println!();
    println!(
        "each time is the median of {} runs (VMRESCUE_BENCH_REPS)",
        reps()
    );
    println!(
        "{:<11} {:<5} {:<16} {:>9} {:>10} {:>10}",
        "task", "cache", "tool", "seconds", "MB/s", "peak RSS"
    );
    for r in rows {
        let rate = if r.bytes > 0 {
            format!("{:.0}", r.bytes as f64 / r.secs / 1e6)
        } else {
            "-".into()
        };
        let rss = r
            .rss_kib
            .map_or("-".into(), |k| format!("{} MiB", k / 1024));
        println!(
            "{:<11} {:<5} {:<16} {:>9.3} {:>10} {:>10}",
            r.task, r.cache, r.tool, r.secs, rate, rss
        );
    }
    println!();
    println!("ratios (vmrescue time / other time; <= 1.00 means vmrescue is as fast or faster):");
    for r in rows.iter().filter(|r| r.tool == "vmrescue") {
        let copy_task = r.task.replace("read-", "copy-");
        for o in rows
            .iter()
            .filter(|o| o.tool != "vmrescue" && o.cache == r.cache && o.task == copy_task)
        {
            println!(
                "  {:<11} {:<5} vs {:<16} {:.2}",
                r.task,
                r.cache,
                o.tool,
                r.secs / o.secs
            );
        }
    }
    if let Some(ls) = rows
        .iter()
        .find(|r| r.tool == "vmrescue" && r.task == "ls" && r.cache == "warm")
    {
        println!(
            "ls -l of {DIR_ENTRIES} entries (warm): {:.0} ms (target < 200 ms)",
            ls.secs * 1e3
        );
    }
    let rss = rows.iter().filter_map(|r| r.rss_kib).max().unwrap_or(0);
    println!(
        "peak RSS of vmrescue over all tasks: {} MiB (target < 64 MiB)",
        rss / 1024
    );
}

/// The median time of `f` ([`median_wall`]).
fn tool(
    dir: &Path,
    task: &str,
    name: &str,
    cold: bool,
    cache: &'static str,
    f: impl Fn(&Path),
) -> Row {
    let secs = median_wall(dir, "vmrescue-bench-out", cold, f);
    let bytes = if task.ends_with("big") {
        BIG_BYTES as u64
    } else if task.ends_with("tree") {
        tree_bytes()
    } else {
        0
    };
    Row {
        task: task.into(),
        tool: name.into(),
        cache,
        secs,
        bytes,
        rss_kib: None,
    }
}

/// Time our reader in a child process (so its peak RSS is its own).
fn ours(dir: &Path, task: &str, image: &Path, cold: bool, cache: &'static str) -> Row {
    let run = |out: &Path| run_child(&[task.as_ref(), image.as_os_str(), out.as_os_str()]);
    let (secs, runs) = median_of_runs(dir, "vmrescue-bench-out", cold, |out| {
        let (secs, got, peak) = run(out);
        (secs, (got, peak))
    });
    let bytes = runs.last().map_or(0, |r| r.0);
    let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    Row {
        task: task.into(),
        tool: "vmrescue".into(),
        cache,
        secs,
        bytes,
        rss_kib: Some(rss),
    }
}

fn tree_bytes() -> u64 {
    (0..TREE_FILES).map(|i| small_size(i) as u64).sum()
}

/// The child: run one task, print "seconds bytes peak_rss_kib".
fn child(args: &[String]) {
    let task = args[0].as_str();
    let image = Path::new(&args[1]);
    let out = Path::new(&args[2]);
    let t = Instant::now();
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(image).expect("open image"));
    let fs: Arc<dyn FsView> = Arc::new(Ext::open(src, &FsOptions::default()).expect("open ext4"));
    let bytes = match task {
        "ls" => ls_l(&*fs, b"/big100k"),
        "read-big" => read_tree(&*fs, b"/big.bin"),
        "read-tree" => read_tree(&*fs, b"/tree"),
        "copy-big" => copy_out(fs, b"/big.bin", out),
        "copy-tree" => copy_out(fs, b"/tree", out),
        other => panic!("unknown task {other}"),
    };
    println!("{} {bytes} {}", t.elapsed().as_secs_f64(), peak_rss_kib());
}

/// What `ls -l` needs: every entry's metadata and link target, formatted.
/// Metadata is fetched in inode order (inode tables are then read in
/// sequence, whatever order the htree keeps the names in), output in
/// directory order.
fn ls_l(fs: &dyn FsView, path: &[u8]) -> u64 {
    let t = Instant::now();
    let dir = resolve(fs, path, true).expect("resolve").node;
    let entries = fs.read_dir(dir).expect("read_dir");
    let t_dir = t.elapsed();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].node);
    let mut metas = vec![None; entries.len()];
    for i in order {
        metas[i] = Some(fs.metadata(entries[i].node).expect("metadata"));
    }
    let t_meta = t.elapsed();
    let mut out = String::new();
    for (e, m) in entries.iter().zip(metas) {
        let m = m.expect("fetched");
        out.clear();
        out.push_str(&m.mode_string());
        out.push_str(&format!(
            " {} {} {} {} {} ",
            m.nlink, m.uid, m.gid, m.size, m.mtime.sec
        ));
        out.push_str(&String::from_utf8_lossy(&e.name));
        if m.file_type == FileType::Symlink {
            out.push_str(" -> ");
            out.push_str(&String::from_utf8_lossy(
                &fs.read_link(e.node).expect("read_link"),
            ));
        }
        std::hint::black_box(&out);
    }
    eprintln!(
        "ls: read_dir {:?}, metadata {:?}, format {:?}",
        t_dir,
        t_meta - t_dir,
        t.elapsed() - t_meta
    );
    0
}

/// Read every file under `path` into a sink; returns the bytes read.
fn read_tree(fs: &dyn FsView, path: &[u8]) -> u64 {
    let start = resolve(fs, path, false).expect("resolve").node;
    let mut buf = vec![0u8; 8 << 20];
    let mut total = 0u64;
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        let m = fs.metadata(n).expect("metadata");
        match m.file_type {
            // Depth first in directory order (pushed reversed, popped in order),
            // so a cold read goes through the disk the way it was written.
            FileType::Directory => stack.extend(
                fs.read_dir(n)
                    .expect("read_dir")
                    .into_iter()
                    .rev()
                    .map(|e| e.node),
            ),
            FileType::Regular => {
                let mut off = 0;
                while off < m.size {
                    let k = fs.read_at(n, off, &mut buf).expect("read_at");
                    std::hint::black_box(&buf[..k]);
                    off += k as u64;
                }
                total += m.size;
            }
            FileType::Symlink => {
                std::hint::black_box(fs.read_link(n).expect("read_link"));
            }
            _ => {}
        }
    }
    total
}

/// `vmrescue cp`'s own job (`ops::copy`): `path` of the guest into the
/// existing directory `dest`, with every rule `cp` follows (holes, hard
/// links, modes, times, `copy_file_range`/`sendfile` where possible).
fn copy_out(fs: Arc<dyn FsView>, path: &[u8], dest: &Path) -> u64 {
    let source = CopySource::resolve(&*fs, path).expect("resolve");
    let job = CopyJob {
        fs,
        sources: vec![source],
        dest: dest.to_path_buf(),
        options: CopyOptions::for_this_user(false),
    };
    let summary = job.run(&AtomicBool::new(false), &mut |_| {});
    assert!(summary.is_clean(), "copy-out problems: {summary:?}");
    summary.bytes
}

struct Mount {
    dir: PathBuf,
    loopdev: String,
}

impl Mount {
    fn new(image: &Path) -> Mount {
        let o = Command::new("losetup")
            .args(["-f", "--show", "-r"])
            .arg(image)
            .output()
            .expect("losetup");
        assert!(o.status.success(), "losetup failed");
        let loopdev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let dir = image.with_extension("mnt");
        std::fs::create_dir_all(&dir).expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "ext4", "-o", "ro,noload"])
            .arg(&loopdev)
            .arg(&dir)
            .status();
        if !st.is_ok_and(|s| s.success()) {
            let _ = Command::new("losetup").arg("-d").arg(&loopdev).status();
            panic!("mount failed");
        }
        Mount { dir, loopdev }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .status();
    }
}

fn small_size(i: usize) -> usize {
    (i * 7919) % 16384
}

/// Build the image once: a 1 GiB file, ~30,000 small files with some
/// symlinks, and a directory of 100,000 entries. As root the files are
/// written through a kernel mount (fast, and the big directory becomes an
/// htree as on a real system); otherwise with `mke2fs -d` (slow for the big
/// directory, which e2fsprogs fills linearly) and `e2fsck -D` to index it.
fn build_image(dir: &Path, image: &Path) {
    let stamp = dir.join("stamp");
    if image.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(STAMP) {
        return;
    }
    println!(
        "building the benchmark image in {} (once)...",
        dir.display()
    );
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_file(image);
    File::create(image)
        .and_then(|f| f.set_len(3 << 30))
        .expect("image file");
    let root = nix::unistd::Uid::effective().is_root();
    if root {
        sh(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
            .arg(image));
        let o = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .expect("losetup");
        assert!(o.status.success(), "losetup failed");
        let loopdev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let mnt = dir.join("build-mnt");
        std::fs::create_dir_all(&mnt).expect("mount point");
        let ok = Command::new("mount")
            .arg(&loopdev)
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            populate(&mnt);
            sh(Command::new("umount").arg(&mnt));
        }
        let _ = Command::new("losetup").arg("-d").arg(&loopdev).status();
        assert!(ok, "mount failed");
    } else {
        let stage = dir.join("stage");
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).expect("stage");
        populate(&stage);
        sh(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
            .arg(&stage)
            .arg(image));
        // e2fsck exits 1 when it changed something (it indexed the directory).
        let st = Command::new("e2fsck")
            .args(["-fyD"])
            .arg(image)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("e2fsck");
        assert!(st.code().is_some_and(|c| c <= 1), "e2fsck -fyD failed");
        std::fs::remove_dir_all(&stage).expect("remove stage");
    }
    std::fs::write(&stamp, STAMP).expect("stamp");
}

fn populate(root: &Path) {
    std::fs::create_dir_all(root.join("tree")).expect("tree");
    let mut chunk = vec![0u8; 1 << 20];
    let mut big = File::create(root.join("big.bin")).expect("big.bin");
    for i in 0..BIG_BYTES / chunk.len() {
        for (k, b) in chunk.iter_mut().enumerate() {
            *b = (i * 31 + k * 7) as u8 | 1;
        }
        big.write_all(&chunk).expect("write big.bin");
    }
    drop(big);
    for i in 0..TREE_FILES {
        let d = root.join("tree").join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        if i % 50 == 49 {
            symlink(format!("f{:05}", i - 1), d.join(format!("l{i:05}"))).expect("symlink");
            continue;
        }
        let n = small_size(i);
        std::fs::write(d.join(format!("f{i:05}")), &chunk[..n]).expect("small file");
    }
    let bigdir = root.join("big100k");
    std::fs::create_dir_all(&bigdir).expect("mkdir");
    for i in 0..DIR_ENTRIES {
        File::create(bigdir.join(format!("entry-{i:06}"))).expect("entry");
    }
}
