//! Many files: the peak resident memory (RSS) of `vmrescue layers`, `ls -R`,
//! `find` and `cp` on an ext4 holding 10 million empty files (1,000 to a
//! directory), against the 64 MiB the issue allows, with the usual tools'
//! time and peak RSS on the same image in the same run for context: `ls -R`,
//! `find` and `cp -a` on a read-only kernel loop mount, `debugfs -R rdump`.
//!
//! Every command runs as its own process under GNU `time` (`%M`: the
//! child's `ru_maxrss` from `getrusage`, its peak RSS in KiB). The image is
//! built once by `benches/many-files-image.sh` (about 5 minutes for 10
//! million files as root; 40 GiB sparse, 2.7 GiB allocated) and kept under
//! `target/bench`. Copies go to a fresh ext4 on a loop device (made again
//! for each copy: 10 million inodes do not fit in /dev/shm) when root, else
//! to a scratch folder. Copying 10 million files takes any of the tools an
//! hour or more, so the full run stops each copy after 300 s (SIGINT;
//! `VMRESCUE_BENCH_COPY_SECS`, 0 for no limit) and counts what it made:
//! vmrescue counts the whole tree before its first file, so its peak covers
//! the planning of all 10 million. The page cache is left as it is (warm
//! after the first command). Asserts nothing about time or memory; it
//! prints them.
//!
//! `cargo bench --bench many_files` (root for the kernel rows and the
//! scratch ext4); `VMRESCUE_BENCH_FILES` sets the number of files. Under
//! `cargo test` a smoke run of 20,000 files, copies not stopped.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The issue's bound on the peak RSS of any command.
const LIMIT_MIB: u64 = 64;
/// Files of the full run and of the smoke run.
const FULL_FILES: u64 = 10_000_000;
const SMOKE_FILES: u64 = 20_000;

/// One measured command.
struct Row {
    task: &'static str,
    tool: String,
    secs: f64,
    rss_kib: u64,
    /// Copies: files and directories made.
    made: Option<u64>,
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let files: u64 = std::env::var("VMRESCUE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { SMOKE_FILES } else { FULL_FILES });
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let name = format!("many-files-{files}.img");
    let img = support::bench_image_args(&name, "many-files-image.sh", &[&files.to_string()]);
    let root = rustix::process::geteuid().is_root();
    let bin = env!("CARGO_BIN_EXE_vmrescue");
    let image = img.to_str().expect("a UTF-8 path");
    println!(
        "many_files: {files} empty files in {} directories of {image} ({} MiB allocated)",
        files.div_ceil(1000),
        allocated_mib(&img)
    );
    if !root {
        println!("not root: the kernel-mount rows and the scratch ext4 are left out");
    }
    let mut rows = Vec::new();
    let mut ours = |task: &'static str, args: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        rows.push(measure(task, "vmrescue", &mut cmd));
    };
    ours("layers", &["layers", image]);
    ours("ls -R", &["ls", "-R", image, "/many"]);
    ours("find", &["find", image, "/many"]);
    // Copying 10 million files takes each tool an hour or more: the full run
    // stops every copy after the same time (SIGINT; vmrescue plans the whole
    // tree first) and counts the files made.
    let limit: Option<u64> = std::env::var("VMRESCUE_BENCH_COPY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .or((!smoke).then_some(300))
        .filter(|&s| s > 0);
    let dest = Dest::new(&bench, files, root);
    let out = dest.fresh();
    let mut cp = Command::new(bin);
    cp.args(["cp", "-q", image, "/many"]).arg(&out);
    let mut row = measure_within("cp -r", "vmrescue", &mut cp, limit);
    row.made = dest.made(&out, files, limit);
    rows.push(row);
    let mut copies: Vec<(&str, Command)> = Vec::new();
    let mnt = root.then(|| support::Mount::new(&img, &bench.join("many-files.mnt")));
    if let Some(mnt) = &mnt {
        let many = mnt.dir.join("many");
        let peer = |task, tool: &str, cmd: &mut Command| measure(task, tool, cmd);
        rows.push(peer(
            "ls -R",
            "kernel ls -R",
            Command::new("ls").arg("-R").arg(&many),
        ));
        rows.push(peer("find", "kernel find", Command::new("find").arg(&many)));
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(&many);
        copies.push(("kernel cp -a", cp));
    }
    let mut rdump = Command::new("debugfs");
    rdump.arg("-R");
    copies.push(("debugfs rdump", rdump));
    for (tool, mut cmd) in copies {
        let out = dest.fresh();
        if tool.starts_with("debugfs") {
            cmd.arg(format!("rdump /many {}", out.display())).arg(&img);
        } else {
            cmd.arg(&out);
        }
        let mut row = measure_within("cp -r", tool, &mut cmd, limit);
        row.made = dest.made(&out, files, limit);
        rows.push(row);
    }
    drop(mnt);
    drop(dest);
    report(&rows, files, limit);
}

/// Run `cmd` under GNU `time`, its output thrown away: wall time and peak RSS.
fn measure(task: &'static str, tool: &str, cmd: &mut Command) -> Row {
    measure_within(task, tool, cmd, None)
}

/// [`measure`], the command stopped with SIGINT after `limit` seconds
/// (GNU `time` reports the peak RSS of the process tree it waited for).
fn measure_within(task: &'static str, tool: &str, cmd: &mut Command, limit: Option<u64>) -> Row {
    let stats = std::env::temp_dir().join(format!("vmrescue-many-files-{}", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed.args(["-f", "%e %M", "-o"]).arg(&stats);
    if let Some(secs) = limit {
        timed.args(["timeout", "-s", "INT"]).arg(secs.to_string());
    }
    timed
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let o = timed
        .output()
        .expect("run /usr/bin/time (Debian package time)");
    // `ls` and `find` on a damaged or partly readable tree say so and exit 1;
    // this tree is whole, so anything but success is a failure (`timeout`
    // exits 124 when it stopped the command).
    let stopped = limit.is_some() && o.status.code() == Some(124);
    assert!(
        o.status.success() || stopped,
        "{task} ({tool}) failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&stats).expect("GNU time's report");
    let _ = std::fs::remove_file(&stats);
    // The last line (a failing command puts a note above it).
    let last = text.lines().last().unwrap_or_default();
    let mut v = last.split_whitespace();
    let secs = v.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let rss_kib = v.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    eprintln!(
        "  {task:<10} {tool:<14} {secs:>8.2} s {:>6} MiB",
        rss_kib / 1024
    );
    Row {
        task,
        tool: tool.to_string(),
        secs,
        rss_kib,
        made: None,
    }
}

/// Where copies go: a fresh ext4 on a loop device for each copy (root),
/// else `target/bench/many-files-out`.
struct Dest {
    img: PathBuf,
    dir: PathBuf,
    inodes: u64,
    root: bool,
}

impl Dest {
    fn new(bench: &Path, files: u64, root: bool) -> Dest {
        Dest {
            img: bench.join("many-files-out.img"),
            dir: bench.join("many-files-out"),
            inodes: files + files.div_ceil(1000) + 1000,
            root,
        }
    }

    /// Files and directories a copy into `out` made: all of them (checked)
    /// when it was not stopped, else the inodes in use on the scratch ext4
    /// (less those a new ext4 uses).
    fn made(&self, out: &Path, files: u64, limit: Option<u64>) -> Option<u64> {
        if limit.is_none() {
            let many = out.join("many");
            let first = many.join("d0000");
            let n = std::fs::read_dir(&first).map_or(0, |d| d.count());
            assert_eq!(
                n as u64,
                files.min(1000),
                "files copied into {}",
                first.display()
            );
            let hello = std::fs::read(many.join("hello.txt")).expect("hello.txt copied");
            assert!(hello.starts_with(b"hello"), "hello.txt's bytes");
            // The files, hello.txt, the directories and /many itself.
            return Some(files + 2 + files.div_ceil(1000));
        }
        if !self.root {
            return None;
        }
        let st = rustix::fs::statvfs(out).ok()?;
        // A new ext4 uses its first 11 inodes (lost+found the last).
        Some((st.f_files - st.f_ffree).saturating_sub(11))
    }

    /// An empty destination directory.
    fn fresh(&self) -> PathBuf {
        self.unmount();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("destination directory");
        if !self.root {
            return self.dir.clone();
        }
        let _ = std::fs::remove_file(&self.img);
        // As many 128 MiB groups as the inodes need (32,768 a group).
        let size = (self.inodes.div_ceil(32_768) + 2) * (128 << 20);
        std::fs::File::create(&self.img)
            .and_then(|f| f.set_len(size))
            .expect("scratch image");
        support::sh(
            Command::new("mke2fs")
                .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-N"])
                .arg(self.inodes.to_string())
                .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
                .arg(&self.img),
        );
        support::sh(
            Command::new("mount")
                .args(["-o", "loop,noinit_itable,noatime"])
                .arg(&self.img)
                .arg(&self.dir),
        );
        // Unmounted by the next call, or when dropped.
        self.dir.clone()
    }

    fn unmount(&self) {
        if self.root {
            let _ = Command::new("umount")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        self.unmount();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.img);
    }
}

/// Blocks of `path` allocated on the host, in MiB.
fn allocated_mib(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| (m.blocks() * 512) >> 20)
}

fn report(rows: &[Row], files: u64, limit: Option<u64>) {
    println!();
    println!(
        "{:<10} {:<15} {:>9} {:>13} {:>10} {:>12}",
        "task", "tool", "seconds", "peak RSS MiB", "ratio", "made"
    );
    for r in rows {
        // Time (per entry made, for copies) against vmrescue's own row of
        // the same task.
        let per = |x: &Row| x.secs / x.made.unwrap_or(1).max(1) as f64;
        let ratio = rows
            .iter()
            .find(|o| o.task == r.task && o.tool == "vmrescue")
            .filter(|o| o.secs > 0.0 && r.secs > 0.0 && r.tool != "vmrescue")
            .map_or(String::new(), |o| format!("{:.2}", per(o) / per(r)));
        let made = r.made.map_or(String::new(), |n| n.to_string());
        println!(
            "{:<10} {:<15} {:>9.2} {:>13.1} {:>10} {:>12}",
            r.task,
            r.tool,
            r.secs,
            r.rss_kib as f64 / 1024.0,
            ratio,
            made
        );
    }
    println!(
        "(ratio: vmrescue's time / the tool's, per entry made for copies; below 1.00 \
         vmrescue is faster)"
    );
    if let Some(secs) = limit {
        println!(
            "(copies stopped after {secs} s: compare the files and directories made; \
             vmrescue counts the whole tree first)"
        );
    }
    println!();
    for r in rows.iter().filter(|r| r.tool == "vmrescue") {
        let mib = r.rss_kib as f64 / 1024.0;
        let verdict = if mib < LIMIT_MIB as f64 {
            "under"
        } else {
            "OVER"
        };
        println!(
            "vmrescue {:<10} peak RSS {mib:>6.1} MiB: {verdict} {LIMIT_MIB} MiB ({files} files)",
            r.task
        );
    }
}
