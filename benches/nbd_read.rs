//! Reading a disk over NBD with 10 ms added to every request (nbdkit's
//! `delay` filter, `rdelay=10ms`), against `qemu-img convert` from the same
//! server in the same run.
//!
//! `cargo bench --bench nbd_read` (needs nbdkit and qemu-img). Two numbers:
//! `layers` of the bundled demo disk (the seed-shaped MBR + LVM image;
//! target under 0.3 s: the probes of all volumes are asked for at once), and
//! a sequential read of 1 GiB of generated data (`VMRESCUE_BENCH_MIB` sets
//! another size) through vmrescue's client in 1 MiB reads on two threads,
//! as `cp` reads a file, against `qemu-img convert -O raw` of the same
//! export to a file. Prints times, MiB/s and the ratio (above 1: vmrescue
//! is faster); asserts nothing about time.

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

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let data = data_file(&dir, mib);
    let d = serve(&data, &tmp.path().join("data.sock"));
    let ours = read_all(&d.1, &tmp.path().join("ours.raw"));
    let _ = std::fs::remove_file(tmp.path().join("ours.raw"));
    let theirs = qemu_img(&d.1, &tmp.path().join("qemu.raw"));
    let _ = std::fs::remove_file(tmp.path().join("qemu.raw"));
    let rate = |t: Duration| mib as f64 / t.as_secs_f64();
    println!(
        "read {mib} MiB over NBD (+10 ms per request): vmrescue {:.2} s ({:.0} MiB/s), \
         qemu-img convert {:.2} s ({:.0} MiB/s), ratio {:.2} (target >= 0.8)",
        ours.as_secs_f64(),
        rate(ours),
        theirs.as_secs_f64(),
        rate(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
