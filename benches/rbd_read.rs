//! Reading a Ceph RBD image through vmrescue's librbd reader (several
//! object-sized reads in flight, readahead) against `rbd export` of the
//! same image from the same cluster in the same run (Debian's qemu-img
//! reads RBD only with qemu-block-extra, which the tests do not install).
//!
//! `cargo bench --bench rbd_read` (needs the Ceph packages of scripts/lib.sh's
//! TEST_PACKAGES). Starts the one-node test
//! cluster of `tests/rbd/cluster.sh` (memstore OSD on this machine, no
//! added latency) holding 256 MiB of generated data (`VMRESCUE_BENCH_MIB`
//! sets another size, at most 384: the OSD keeps it in memory), reads it
//! all in 1 MiB reads on two threads as `cp` reads a file, and prints times,
//! MiB/s, requests and the ratio (above 1: vmrescue is faster); asserts
//! the bytes, nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::image::rbd;

#[path = "support/mod.rs"]
mod support;

/// The cluster, stopped on drop.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(root().join("tests/rbd/cluster.sh"))
            .arg("stop")
            .arg(&self.0)
            .status();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start(dir: &Path, image: &Path) -> Cluster {
    let out = Command::new("sh")
        .arg(root().join("tests/rbd/cluster.sh"))
        .arg("start")
        .arg(dir)
        .arg(image)
        .output()
        .unwrap();
    let c = Cluster(dir.to_path_buf());
    assert!(
        out.status.success(),
        "the test Ceph cluster did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c
}

/// Open the image and read it all as `cp` reads a file; the time and the
/// requests sent.
fn read_all(spec: &str, out: &Path) -> (Duration, u64) {
    let started = Instant::now();
    let r = Arc::new(
        rbd::Rbd::open(
            &rbd::parse(spec).unwrap(),
            &rbd::CephOptions::default(),
            None,
        )
        .unwrap(),
    );
    support::read_in_order(r.clone(), out);
    (started.elapsed(), r.requests())
}

/// A command that writes `out`, timed, its file synced.
fn timed(cmd: &mut Command, out: &Path) -> Duration {
    let started = Instant::now();
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::File::open(out).unwrap().sync_all().unwrap();
    started.elapsed()
}

fn data_file(dir: &Path, mib: u64) -> PathBuf {
    let p = dir.join(format!("rbd-data-{mib}.raw"));
    support::write_generated(&p, mib);
    p
}

fn same(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

fn main() {
    // `cargo test --benches` runs bench programs without --bench: then a
    // small smoke run.
    let mib = support::bench_size(256).map_or(16, |b| (b >> 20).clamp(8, 384));
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), mib);
    let cluster = start(&tmp.path().join("ceph"), &data);
    let conf = cluster.0.join("ceph.conf");
    let keyring = cluster.0.join("client.vmrescue.keyring");
    // The head was written into after the import (cluster.sh): compare with
    // the snapshot taken before, the imported bytes.
    let spec = format!(
        "rbd:rbd/guest@before:conf={}:id=vmrescue:keyring={}",
        conf.display(),
        keyring.display()
    );
    let rate = |t: Duration| mib as f64 / t.as_secs_f64();
    for round in 1..=2 {
        let ours_out = tmp.path().join("ours.raw");
        let (ours, requests) = read_all(&spec, &ours_out);
        assert!(same(&ours_out, &data), "vmrescue read other bytes");
        let _ = std::fs::remove_file(&ours_out);

        let export_out = tmp.path().join("export.raw");
        let export = timed(
            Command::new("rbd")
                .arg("-c")
                .arg(&conf)
                .args(["--id", "vmrescue", "--keyring"])
                .arg(&keyring)
                .args(["export", "--no-progress", "rbd/guest@before"])
                .arg(&export_out),
            &export_out,
        );
        let _ = std::fs::remove_file(&export_out);

        println!(
            "round {round}: read {mib} MiB from Ceph RBD (local memstore OSD): \
             vmrescue {:.2} s ({:.0} MiB/s, {requests} requests), \
             rbd export {:.2} s ({:.0} MiB/s); ratio {:.2}",
            ours.as_secs_f64(),
            rate(ours),
            export.as_secs_f64(),
            rate(export),
            export.as_secs_f64() / ours.as_secs_f64(),
        );
    }
}
