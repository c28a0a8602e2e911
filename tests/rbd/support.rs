//! A one-node Ceph cluster for the RBD tests (`tests/rbd/cluster.sh`),
//! started by a test and stopped when it is dropped, and a Proxmox
//! configuration tree whose VM 108 has its disk on it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::root;

/// The running cluster; stopped on drop, even when the test fails.
pub struct Cluster {
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(image: &Path) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("vmrescue-ceph-")
            .tempdir()
            .unwrap();
        let script = root().join("tests/rbd/cluster.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg("start")
            .arg(dir.path())
            .arg(image)
            .env("CEPH_START_SECONDS", "60")
            .output()
            .unwrap();
        let cluster = Cluster { dir };
        assert!(
            out.status.success(),
            "the test Ceph cluster did not start:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("ceph.conf")
    }

    pub fn keyring(&self) -> PathBuf {
        self.dir.path().join("client.vmrescue.keyring")
    }

    /// `--ceph-conf`, `--ceph-id`, `--keyring` for the read-only client.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--ceph-conf".into(),
            self.conf().display().to_string(),
            "--ceph-id".into(),
            "vmrescue".into(),
            "--keyring".into(),
            self.keyring().display().to_string(),
        ]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(root().join("tests/rbd/cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

impl Cluster {
    /// The monitor's port.
    pub fn port(&self) -> String {
        let env = std::fs::read_to_string(self.dir.path().join("env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix("CEPH_MON_PORT="))
            .unwrap()
            .to_string()
    }
}

/// A Proxmox configuration tree (`/etc/pve`) in a temporary directory:
/// external-cluster `rbd` storage `ceph-ext` (the cluster's monitor, the
/// read-only client `vmrescue` and its keyring in `priv/ceph/`), and VM 108
/// `on-ceph` with its disk `scsi0` on it (`rbd/guest`). The tree's root.
pub fn pve_tree(cluster: &Cluster) -> (tempfile::TempDir, PathBuf) {
    let pve = tempfile::tempdir().unwrap();
    let root = pve.path().join("etc-pve");
    std::fs::create_dir_all(root.join("qemu-server")).unwrap();
    std::fs::create_dir_all(root.join("priv/ceph")).unwrap();
    std::fs::write(
        root.join("storage.cfg"),
        format!(
            "rbd: ceph-ext\n\tpool rbd\n\tmonhost v2:127.0.0.1:{}\n\
             \tusername vmrescue\n\tcontent images\n\tkrbd 0\n",
            cluster.port()
        ),
    )
    .unwrap();
    std::fs::copy(cluster.keyring(), root.join("priv/ceph/ceph-ext.keyring")).unwrap();
    std::fs::write(
        root.join("qemu-server/108.conf"),
        "boot: order=scsi0\nname: on-ceph\nscsi0: ceph-ext:guest,size=64M\n",
    )
    .unwrap();
    (pve, root)
}
