//! XFS log replay benchmark: vmrescue's in-memory replay of a dirty 64 MiB
//! log against the kernel's own log recovery (a read-write mount of a copy
//! of the same image), measured in the same run.
//!
//! The image (2 GiB sparse, `mkfs.xfs -l size=64m`) is filled with metadata
//! changes (300,000 files created, renamed, chmod'ed and partly removed)
//! through a loop mount, then shut down (`xfs_io -x -c 'shutdown -f'`) so
//! the log is dirty (the XFS log worker is held off meanwhile, through
//! `/proc/sys/fs/xfs/xfssyncd_centisecs`, put back after, so only log space
//! pressure moves the tail and most of the log is live). Prints the best of three
//! `Xfs::open` (replay included), the kernel's mount time, the log's live
//! part, the replay rate and what a full log would take at that rate, and
//! the ratio.
//! The target: under a second for a full log. Needs root (loop devices,
//! mounts), mkfs.xfs and xfs_io; without them it says so and stops.
//!
//! `cargo bench --bench xfs_replay`; `VMRESCUE_BENCH_DIR` picks the scratch
//! directory (default `target/bench-xfs-replay`), `VMRESCUE_BENCH_FILES`
//! the number of files.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::fs::FsView;
use vmrescue::fs::xfs::Xfs;
use vmrescue::io::{FileSource, ReadAt};

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(img: &Path, files: u64) {
    let mnt = img.with_extension("mnt");
    sh(&format!(
        r#"
img={img}; mnt={mnt}
rm -f "$img"; truncate -s 2G "$img"
mkfs.xfs -q -f -l size=64m "$img"
mkdir -p "$mnt"
l=$(losetup -f --show "$img")
# The log worker would push the tail on every 30 s (xfssyncd_centisecs):
# held off while the files are made, so the log fills up as far as the
# kernel's own space pressure lets it; put back after.
sync_cs=$(cat /proc/sys/fs/xfs/xfssyncd_centisecs)
trap 'echo "$sync_cs" > /proc/sys/fs/xfs/xfssyncd_centisecs; umount "$mnt" 2>/dev/null || true; losetup -d "$l"' EXIT
echo 720000 > /proc/sys/fs/xfs/xfssyncd_centisecs
mount "$l" "$mnt"
python3 - "$mnt" {files} <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(n // 1000 + 1):
    os.mkdir(os.path.join(root, "d%d" % d))
for i in range(n):
    p = os.path.join(root, "d%d" % (i // 1000), "file-%d" % i)
    open(p, "w").close()
    os.chmod(p, 0o600)
    if i % 3 == 0:
        os.rename(p, p + "-renamed")
    elif i % 3 == 1:
        os.unlink(p)
PY
xfs_io -x -c 'shutdown -f' "$mnt"
umount "$mnt"
"#,
        img = img.display(),
        mnt = mnt.display(),
    ));
}

/// Seconds the kernel takes to mount (recover) a copy of `img`.
fn kernel_mount(img: &Path) -> Duration {
    let copy = img.with_extension("copy");
    let mnt = img.with_extension("mnt");
    sh(&format!(
        "cp --sparse=always {} {}",
        img.display(),
        copy.display()
    ));
    let l = sh(&format!("losetup -f --show {}", copy.display()));
    let l = l.trim();
    let t = Instant::now();
    sh(&format!("mount -o nouuid {l} {}", mnt.display()));
    let took = t.elapsed();
    sh(&format!(
        "umount {}; losetup -d {l}; rm -f {}",
        mnt.display(),
        copy.display()
    ));
    took
}

fn main() {
    let root = sh("id -u").trim() == "0";
    let tools = Command::new("sh")
        .args(["-c", "command -v mkfs.xfs && command -v xfs_io"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !tools {
        println!("xfs_replay: needs root, mkfs.xfs and xfs_io: not run");
        return;
    }
    let dir = std::env::var_os("VMRESCUE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-xfs-replay"));
    std::fs::create_dir_all(&dir).unwrap();
    let files = std::env::var("VMRESCUE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let img = dir.join("dirty.img");
    println!("xfs_replay: building a dirty image with {files} files");
    build(&img, files);
    let logprint = sh(&format!(
        "xfs_logprint -t {} 2>&1 | grep -m1 -i 'tail' || true",
        img.display()
    ));
    let log_bbs: u64 = sh(&format!(
        "xfs_logprint -t {} 2>&1 | grep -m1 -o 'length: [0-9]*' | grep -o '[0-9]*' || true",
        img.display()
    ))
    .trim()
    .parse()
    .unwrap_or(0);
    // The live part of the log: from the tail to the head, around the end.
    let num = |key: &str| -> Option<u64> {
        let rest = logprint.split(key).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    };
    let live_bbs = match (num("tail:"), num("head:")) {
        (Some(t), Some(h)) if log_bbs > 0 => (h + log_bbs - t) % log_bbs,
        _ => 0,
    };
    let mut best = Duration::MAX;
    let mut note = String::new();
    for _ in 0..3 {
        let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(&img).unwrap());
        let t = Instant::now();
        let fs = Xfs::open(src).unwrap();
        let took = t.elapsed();
        best = best.min(took);
        note = fs.status().notes.join("; ");
        fs.read_dir(fs.root()).unwrap();
    }
    let kernel = kernel_mount(&img);
    println!("log: {}", logprint.trim());
    let live_mib = (live_bbs * 512) as f64 / (1 << 20) as f64;
    let log_mib = (log_bbs * 512) as f64 / (1 << 20) as f64;
    println!("live part of the log: {live_mib:.1} MiB of {log_mib:.0} MiB");
    println!("vmrescue: {note}");
    println!(
        "replay in memory (Xfs::open): {:.3} s (best of 3)\nkernel mount with recovery: {:.3} s\nratio: {:.2}x",
        best.as_secs_f64(),
        kernel.as_secs_f64(),
        best.as_secs_f64() / kernel.as_secs_f64().max(1e-9)
    );
    if live_mib > 0.0 {
        // The kernel keeps at most about three quarters of the log live
        // (it pushes the tail on): what replaying all of it would take.
        println!(
            "replay rate: {:.0} MiB of log per second; a full {log_mib:.0} MiB log at this rate: {:.3} s",
            live_mib / best.as_secs_f64(),
            best.as_secs_f64() * log_mib / live_mib
        );
    }
    if best > Duration::from_secs(1) {
        println!("NOTE: over the 1 s target");
    }
}
