//! Reading a disk over NBD with 10 ms added to every request (nbdkit's
//! `delay` filter, `rdelay=10ms`), against `qemu-img convert` from the same
//! server in the same run.
//!
//! `cargo bench --bench nbd_read` (needs nbdkit, qemu-img and mke2fs). Four
//! numbers, each against its target:
//! - `layers` of the bundled demo disk (the seed-shaped MBR + LVM image;
//!   target under 0.3 s: the probes of all volumes are asked for at once);
//! - the full-screen browser on that disk, from the start of `vmrescue URI`
//!   in a pseudo-terminal to the first frame listing the guest's root
//!   (target under 0.5 s);
//! - `vmrescue cp` of a 1 GiB file out of an ext4 image served over NBD,
//!   against `qemu-img convert -O raw` of the same export to a file, in
//!   MiB/s of data moved (the image's allocated bytes for qemu-img, which
//!   skips holes; target: at least 0.8 of qemu-img's rate);
//! - a sequential read of the raw export in 1 MiB reads on two threads
//!   through the client library alone, against the same qemu-img run.
//!
//! `VMRESCUE_BENCH_MIB` sets another size than 1 GiB. Prints times, MiB/s
//! and ratios (above 1: vmrescue is faster); asserts nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::image::nbd;

#[path = "support/mod.rs"]
mod support;

/// nbdkit serving `file` read-only with the delay filter on a Unix socket; killed on drop.
struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(file: &Path, sock: &Path) -> Server {
    let child = Command::new("nbdkit")
        .args(["-f", "-r", "--exit-with-parent", "-U"])
        .arg(sock)
        .args(["--filter=delay", "file"])
        .arg(file)
        .arg("rdelay=10ms")
        .stdout(Stdio::null())
        .spawn()
        .expect("nbdkit (Debian package nbdkit)");
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nbdkit did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child, format!("nbd+unix:///?socket={}", sock.display()))
}

fn layers(uri: &str) -> (Duration, u64) {
    let started = Instant::now();
    let image = vmrescue::image::open(Path::new(uri)).unwrap();
    let layout = vmrescue::layers::scan(vec![image]);
    let t = started.elapsed();
    assert!(
        layout.volumes.len() >= 5,
        "the demo's layers were not all found"
    );
    (t, layout.volumes.len() as u64)
}

/// Read all of `uri` as `cp` reads a file ([`support::read_in_order`]).
fn read_all(uri: &str, out: &Path) -> Duration {
    let started = Instant::now();
    let n = Arc::new(nbd::Nbd::open(&nbd::parse_uri(uri).unwrap()).unwrap());
    support::read_in_order(n, out);
    started.elapsed()
}

fn qemu_img(uri: &str, out: &Path) -> Duration {
    let started = Instant::now();
    let o = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw", uri])
        .arg(out)
        .output()
        .expect("qemu-img (Debian package qemu-utils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::File::open(out).unwrap().sync_all().unwrap();
    started.elapsed()
}

fn data_file(dir: &Path, mib: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("nbd-data-{mib}.raw"));
    if p.exists() {
        return p;
    }
    support::write_generated(&p, mib);
    p
}

/// An ext4 image (cached under `dir`) holding `/big.bin`, a copy of `data`.
fn ext4_with(dir: &Path, data: &Path, mib: u64) -> PathBuf {
    let img = dir.join(format!("nbd-ext4-{mib}.img"));
    if img.exists() {
        return img;
    }
    let tree = dir.join(format!("nbd-ext4-{mib}.d"));
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::hard_link(data, tree.join("big.bin")).unwrap();
    let size = format!("{}M", mib + mib / 16 + 64);
    support::mke2fs_from(&tree, &img, &size, &[]);
    img
}

/// `vmrescue cp URI /big.bin OUT/` with the copy written to disk (synced).
fn cp_file(uri: &str, out: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(["cp", uri, "/big.bin"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::File::open(out.join("big.bin"))
        .unwrap()
        .sync_all()
        .unwrap();
    let t = started.elapsed();
    let _ = std::fs::remove_dir_all(out);
    t
}

/// Bytes the file `p` has allocated on the host (what qemu-img moves).
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().blocks() * 512
}

fn main() {
    // `cargo test --benches` runs bench programs with no arguments too; only
    // `cargo bench` passes --bench: then a small smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let mib: u64 = if full {
        std::env::var("VMRESCUE_BENCH_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024)
    } else {
        16
    };
    let tmp = tempfile::tempdir().unwrap();
    let demo = vmrescue::demo::path().unwrap();
    let s = serve(&demo, &tmp.path().join("demo.sock"));
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (t, volumes) = layers(&s.1);
        best = best.min(t);
        println!(
            "layers over NBD (+10 ms per request): {:.3} s, {volumes} volumes",
            t.as_secs_f64()
        );
    }
    println!(
        "layers best of 3: {:.3} s (target < 0.3 s)",
        best.as_secs_f64()
    );

    let mut frames: Vec<Duration> = (0..if full { 3 } else { 1 })
        .map(|_| support::first_frame(&[&s.1], &["guest:/", "lib64/"]))
        .collect();
    frames.sort();
    println!(
        "browser over NBD (+10 ms per request), start to the first frame listing the guest: \
         median {:.3} s of {} (target < 0.5 s)",
        frames[frames.len() / 2].as_secs_f64(),
        frames.len()
    );

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let data = data_file(&dir, mib);
    let rate = |bytes: u64, t: Duration| bytes as f64 / (1u64 << 20) as f64 / t.as_secs_f64();

    let img = ext4_with(&dir, &data, mib);
    let e = serve(&img, &tmp.path().join("ext4.sock"));
    // Written to memory when there is a tmpfs: the network side is measured,
    // not this machine's disk.
    let out = support::out_dir(tmp.path(), "vmrescue-nbd-bench");
    let ours = cp_file(&e.1, &out.join("cp"));
    let theirs = qemu_img(&e.1, &out.join("qemu.raw"));
    let _ = std::fs::remove_file(out.join("qemu.raw"));
    let (a, b) = (rate(mib << 20, ours), rate(allocated(&img), theirs));
    println!(
        "cp of a {mib} MiB file over NBD (+10 ms per request): vmrescue cp {:.2} s ({a:.0} MiB/s), \
         qemu-img convert of the image {:.2} s ({b:.0} MiB/s of {} MiB allocated), \
         ratio {:.2} (target >= 0.8)",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        allocated(&img) >> 20,
        a / b
    );
    drop(e);

    let d = serve(&data, &tmp.path().join("data.sock"));
    let ours = read_all(&d.1, &out.join("ours.raw"));
    let _ = std::fs::remove_file(out.join("ours.raw"));
    let theirs = qemu_img(&d.1, &out.join("qemu.raw"));
    let _ = std::fs::remove_file(out.join("qemu.raw"));
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "read {mib} MiB of the raw export over NBD (+10 ms per request), client library alone: \
         vmrescue {:.2} s ({:.0} MiB/s), qemu-img convert {:.2} s ({:.0} MiB/s), ratio {:.2}",
        ours.as_secs_f64(),
        rate(mib << 20, ours),
        theirs.as_secs_f64(),
        rate(mib << 20, theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
