//! The browser on a Ceph RBD image, in a real pseudo-terminal, against the
//! one-node test cluster (`tests/rbd/cluster.sh`, see `rbd_support`):
//! `vmrescue rbd:rbd/guest` with the cluster's options opens on the guest
//! and lists `/etc`; and `vmrescue` alone on a Proxmox tree whose VM 108
//! has its disk on the cluster picks it and browses it.

use crate::common::fixture;
use crate::pty_support::{ENTER, Pty, bin};
use crate::rbd_support::{Cluster, pve_tree};
use expectrl::process::unix::WaitStatus;

/// Filter the list down to `name` and enter it.
fn enter(pty: &mut Pty, name: &str) {
    pty.send("/");
    for c in name.chars() {
        pty.send(&c.to_string());
    }
    pty.send(ENTER);
    pty.send(ENTER);
}

fn quit(pty: &mut Pty) {
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}

#[test]
fn an_rbd_image_and_a_proxmox_guest_on_rbd_open_in_the_browser() {
    let cluster = Cluster::start(&fixture("guest-a"));
    let dir = tempfile::tempdir().unwrap();
    let conf = cluster.conf();
    let keyring = cluster.keyring();
    let mut pty = Pty::spawn(
        &bin(),
        &[
            "rbd:rbd/guest",
            "--ceph-conf",
            conf.to_str().unwrap(),
            "--ceph-id",
            "vmrescue",
            "--keyring",
            keyring.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    pty.wait_listed("guest:/ ");
    enter(&mut pty, "etc");
    pty.wait_listed("guest:/etc ");
    pty.wait_for("hostname");
    quit(&mut pty);

    // The picker: VM 108 is on the cluster; Enter browses its disk.
    let (_pve, root) = pve_tree(&cluster);
    let mut pty = Pty::spawn(
        &bin(),
        &["--pve-root", root.to_str().unwrap()],
        &[],
        dir.path(),
    );
    pty.wait_for("guests of this Proxmox host");
    pty.wait_for("on-ceph");
    pty.send(ENTER);
    pty.wait_listed("guest:/ ");
    enter(&mut pty, "etc");
    pty.wait_listed("guest:/etc ");
    pty.wait_for("hostname");
    quit(&mut pty);
}
