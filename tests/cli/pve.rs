//! Proxmox VE discovery against a fake `/etc/pve` tree
//! (`tests/fixtures/pve/host1`: dir, lvmthin, zfspool and rbd storages, VMs
//! with qcow2 and raw disks, a linked clone, containers). The dir storage is
//! pointed at a temporary directory holding copies of the qcow2 fixtures; a
//! running VM is simulated by a real `qemu-io` holding QEMU's image locks.

use crate::common;
use crate::pve_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pve_support::fake_host;
use vmrescue::pve::{self, GuestKind, Status};

#[test]
fn lists_guests_with_their_disks() {
    let f = fake_host();
    let guests = pve::list(&f.host()).unwrap();
    let ids: Vec<u32> = guests.iter().map(|g| g.vmid).collect();
    assert_eq!(ids, [100, 108, 109, 110, 111, 200, 201]);
    let g108 = &guests[1];
    assert_eq!(g108.kind, GuestKind::Vm);
    assert_eq!(g108.name(), Some("centos6-db"));
    assert_eq!(g108.status, Status::Stopped);
    assert_eq!(g108.config.snapshots, ["before-glibc"]);
    // Boot disk first, EFI vars last; no cdrom, TPM state or unused volume.
    let keys: Vec<&str> = g108.disks.iter().map(|d| d.line.key.as_str()).collect();
    assert_eq!(keys, ["scsi0", "virtio1", "efidisk0"]);
    assert_eq!(
        g108.disks[0].path.as_ref().unwrap(),
        &f.image(108, "vm-108-disk-1.qcow2")
    );
    assert_eq!(
        g108.disks[1].path.as_ref().unwrap(),
        &PathBuf::from("/dev/pve/vm-108-disk-0")
    );
    let g109 = &guests[2];
    assert_eq!(
        g109.disks[1].path.as_ref().unwrap(),
        &PathBuf::from("/dev/zvol/rpool/data/vm-109-disk-1")
    );
    // A disk on hyper-converged Ceph: an `rbd:` image with the node's
    // ceph.conf and keyring, taken from the configuration tree given.
    let g110 = &guests[3];
    let root = f.root();
    let root = root.to_str().unwrap();
    assert_eq!(
        g110.disks[0].path.as_ref().unwrap(),
        &PathBuf::from(format!(
            "rbd:vms/vm-110-disk-0:conf={root}/ceph.conf:id=admin:\
             keyring={root}/priv/ceph.client.admin.keyring"
        ))
    );
    let g111 = &guests[4];
    assert_eq!(
        g111.disks[0].path.as_ref().unwrap(),
        &f.image(111, "vm-111-disk-0.qcow2")
    );
    let g200 = &guests[5];
    assert_eq!(g200.kind, GuestKind::Container);
    assert_eq!(g200.name(), Some("web"));
    let keys: Vec<&str> = g200.disks.iter().map(|d| d.line.key.as_str()).collect();
    assert_eq!(keys, ["rootfs", "mp0", "mp1"]);
    assert!(
        g200.disks[0]
            .path
            .as_ref()
            .unwrap_err()
            .contains("ZFS dataset")
    );
    assert_eq!(
        g200.disks[1].path.as_ref().unwrap(),
        &PathBuf::from("/dev/pve/vm-200-disk-1")
    );
    assert!(
        g200.disks[2]
            .path
            .as_ref()
            .unwrap_err()
            .contains("bind-mounted")
    );
    assert!(guests[0].config.template);
}

#[test]
fn vmrescue_alone_prints_the_list() {
    let f = fake_host();
    let (code, out, err) = f.run(&[]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "VMID",
        "108   VM    centos6-db",
        "scsi0 local:108/vm-108-disk-1.qcow2 32M →",
        "virtio1 local-lvm:vm-108-disk-0 8G → /dev/pve/vm-108-disk-0 (missing)",
        "snapshots: before-glibc",
        "golden-image (template)",
        "virtio0 ceph-vms:vm-110-disk-0 16G → rbd:vms/vm-110-disk-0:conf=",
        "200   CT    web",
        "stopped",
        "vmrescue ID",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    assert!(!out.contains("running"), "{out}");
    // A subcommand without an image says the same, as an error.
    let (code, _, err) = f.run(&["layers"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no IMAGE given") && err.contains("centos6-db"),
        "{err}"
    );
}

#[test]
fn a_vmid_opens_the_guest_disks() {
    let f = fake_host();
    let direct = common::vmrescue(&[
        "layers",
        f.image(108, "vm-108-disk-1.qcow2").to_str().unwrap(),
    ]);
    let direct = String::from_utf8_lossy(&direct.stdout).into_owned();
    for args in [&["layers", "108"][..], &["layers", "--vmid", "108"][..]] {
        let (code, out, err) = f.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, direct, "{args:?}");
        assert!(
            err.contains(
                "skipping virtio1 (local-lvm:vm-108-disk-0): /dev/pve/vm-108-disk-0 does not exist"
            ),
            "{err}"
        );
        assert!(err.contains("skipping efidisk0"), "{err}");
    }
    // A raw disk on dir storage, and a container's raw root.
    let (code, out, err) = f.run(&["layers", "109"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("vm-109-disk-0.raw") && out.contains("ext4"),
        "{out}"
    );
    let (code, out, err) = f.run(&["layers", "201"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vm-201-disk-0.raw"), "{out}");
    // A linked clone shows its base image as the backing file.
    let (code, out, err) = f.run(&["layers", "111"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("backing ../100/base-100-disk-0.qcow2 (qcow2, 32 MiB)")
            && out.contains("ext4"),
        "{out}"
    );
    // A guest on Ceph RBD whose cluster cannot be reached from here (this
    // configuration tree has no ceph.conf), and one that does not exist.
    let (code, _, err) = f.run(&["layers", "110"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("rbd:vms/vm-110-disk-0") && err.contains("ceph.conf"),
        "{err}"
    );
    let (code, _, err) = f.run(&["layers", "999"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("VM or container 999") && err.contains("100, 108, 109"),
        "{err}"
    );
    // --snapshot reaches the qcow2 disks of a guest.
    let (code, _, err) = f.run(&["layers", "108", "--snapshot", "before-glibc"]);
    assert_eq!(code, 2);
    assert!(err.contains("snapshot \"before-glibc\""), "{err}");
}

/// `qemu-io` holding an image open read-write, as a running VM does.
struct Holder(Child);

impl Holder {
    fn start(image: &Path) -> Holder {
        let child = Command::new("qemu-io")
            .args(["-c", "sleep 60000"])
            .arg(image)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-io (Debian package qemu-utils) is needed");
        let h = Holder(child);
        let start = Instant::now();
        // qemu-io takes its shared lock first and the write lock a moment
        // later: wait for the write lock, as a running VM holds it.
        while !pve::is_image_in_use(image)
            .unwrap()
            .is_some_and(|why| why.contains("write"))
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "qemu-io never locked {}",
                image.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_vm_holding_its_image_is_running() {
    let f = fake_host();
    let image = f.image(108, "vm-108-disk-1.qcow2");
    assert_eq!(pve::is_image_in_use(&image).unwrap(), None);
    let holder = Holder::start(&image);
    let why = pve::is_image_in_use(&image).unwrap().unwrap();
    assert!(why.contains("QEMU") && why.contains("write"), "{why}");
    assert!(
        why.contains("qemu-io"),
        "the process should be named: {why}"
    );
    let g = pve::find(&f.host(), 108).unwrap();
    match &g.status {
        Status::Running(w) => assert!(w.starts_with("scsi0: ") && w.contains("QEMU"), "{w}"),
        other => panic!("expected running, got {other:?}"),
    }
    let (code, out, _) = f.run(&[]);
    assert_eq!(code, 0);
    let row = out.lines().find(|l| l.starts_with("108 ")).unwrap();
    assert!(row.contains("running"), "{out}");
    assert!(out.contains("running: scsi0: a QEMU process"), "{out}");
    // Opening it still works, with a warning.
    let (code, _, err) = f.run(&["layers", "108"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("VM 108 is running") && err.contains("may be inconsistent"),
        "{err}"
    );
    let (_, _, err) = f.run(&["layers", image.to_str().unwrap()]);
    assert!(err.contains("is in use"), "{err}");
    drop(holder);
    assert_eq!(pve::is_image_in_use(&image).unwrap(), None);
    assert_eq!(pve::find(&f.host(), 108).unwrap().status, Status::Stopped);
}

#[test]
fn a_live_pid_file_means_running() {
    let f = fake_host();
    // A process named like Proxmox's QEMU binary.
    let kvm = f.dir.path().join("kvm");
    std::fs::copy("/bin/sleep", &kvm).unwrap();
    // Another test thread forking while the copy was open for writing can make
    // exec fail with ETXTBSY for a moment: try again.
    let mut tries = 0;
    let mut child = loop {
        match Command::new(&kvm).arg("60").spawn() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawn {}: {e}", kvm.display()),
        }
    };
    let run = f.dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("109.pid"), format!("{}\n", child.id())).unwrap();
    // The new program's command line appears a moment after spawn returns.
    let start = Instant::now();
    while std::fs::read(format!("/proc/{}/cmdline", child.id()))
        .unwrap()
        .is_empty()
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    let g = pve::find(&f.host(), 109).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    match &g.status {
        Status::Running(w) => assert!(w.contains("109.pid") && w.contains("kvm"), "{w}"),
        other => panic!("expected running, got {other:?}"),
    }
    // A stale pid file (the process is gone) is not a running VM.
    assert_eq!(pve::find(&f.host(), 109).unwrap().status, Status::Stopped);
    // Nor is a pid file naming a process that is not QEMU.
    std::fs::write(run.join("109.pid"), format!("{}\n", std::process::id())).unwrap();
    assert_eq!(pve::find(&f.host(), 109).unwrap().status, Status::Stopped);
}
