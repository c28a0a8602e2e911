//! A fake Proxmox host for tests: the `/etc/pve` tree of
//! `tests/fixtures/pve/host1` with its dir storage pointed at a temporary
//! directory that holds copies of the qcow2 fixtures (VM 108, 109, 100, 201)
//! and a linked clone (111) made by `qemu-img`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use vmrescue::pve::Host;

pub struct Fake {
    pub dir: tempfile::TempDir,
}

impl Fake {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("pve")
    }
    pub fn vz(&self) -> PathBuf {
        self.dir.path().join("vz")
    }
    pub fn image(&self, vmid: u32, file: &str) -> PathBuf {
        self.vz().join("images").join(vmid.to_string()).join(file)
    }
    pub fn host(&self) -> Host {
        let mut h = Host::new(&self.root());
        h.run_dir = self.dir.path().join("run");
        h
    }
    /// Run `vmrescue ARGS... --pve-root ROOT`.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let root = self.root();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--pve-root", root.to_str().unwrap()]);
        let out = common::vmrescue(&all);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

pub fn cp(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn fake_host() -> Fake {
    let f = Fake {
        dir: tempfile::tempdir().unwrap(),
    };
    let tree = common::root().join("tests/fixtures/pve/host1");
    for sub in ["qemu-server", "lxc"] {
        std::fs::create_dir_all(f.root().join(sub)).unwrap();
        for e in std::fs::read_dir(tree.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), f.root().join(sub).join(e.file_name())).unwrap();
        }
    }
    let cfg = std::fs::read_to_string(tree.join("storage.cfg")).unwrap();
    let cfg = cfg.replace("/var/lib/vz", f.vz().to_str().unwrap());
    std::fs::write(f.root().join("storage.cfg"), cfg).unwrap();
    let part_q = common::fixture("qcow2-part");
    let part_raw = common::fixture("qcow2-part-raw");
    cp(&part_q, &f.image(108, "vm-108-disk-1.qcow2"));
    cp(&part_raw, &f.image(109, "vm-109-disk-0.raw"));
    cp(&part_q, &f.image(100, "base-100-disk-0.qcow2"));
    cp(&part_raw, &f.image(201, "vm-201-disk-0.raw"));
    // A linked clone, as Proxmox makes it: backing file relative to the clone.
    std::fs::create_dir_all(f.image(111, "")).unwrap();
    let st = Command::new("qemu-img")
        .current_dir(f.image(111, ""))
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "../100/base-100-disk-0.qcow2",
            "-F",
            "qcow2",
            "vm-111-disk-0.qcow2",
        ])
        .status()
        .expect("qemu-img (Debian package qemu-utils) is needed");
    assert!(st.success());
    f
}
