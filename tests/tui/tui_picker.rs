//! `vmrescue` alone on a Proxmox host, in a terminal: the guest picker.
//! Its state on its own, then the binary in a pseudo-terminal over a fake
//! `/etc/pve` (see `pve_support`): a guest without openable disks says why,
//! Enter on VM 108 opens its qcow2 disk in the browser, q leaves.

use crate::pty_support;
use crate::pve_support;

use expectrl::process::unix::WaitStatus;
use pty_support::{DOWN, ENTER, Pty, bin};
use vmrescue::tui::Action;
use vmrescue::tui::picker::{PickRow, Picked, Picker};

fn row(vmid: u32, unopenable: Option<&str>) -> PickRow {
    PickRow {
        vmid,
        cells: [
            vmid.to_string(),
            "VM".into(),
            format!("vm{vmid}"),
            "stopped".into(),
        ],
        disks: "1 disk".into(),
        lines: vec![format!("scsi0 local:{vmid}/disk.raw")],
        unopenable: unopenable.map(str::to_string),
    }
}

#[test]
fn keys_move_open_and_quit() {
    let mut p = Picker::new(
        vec![
            row(100, None),
            row(110, Some("VM 110: no disk can be opened")),
            row(200, None),
        ],
        "/etc/pve",
    );
    assert_eq!(p.update(Action::MoveUp, 10), None);
    assert_eq!(p.selected, 0);
    p.update(Action::End, 10);
    assert_eq!(p.selected, 2);
    p.update(Action::MoveDown, 10);
    assert_eq!(p.selected, 2, "stays on the last row");
    p.update(Action::PageUp, 10);
    assert_eq!(p.selected, 0);
    p.update(Action::MoveDown, 10);
    // A guest whose disks cannot be opened says why and stays.
    assert_eq!(p.update(Action::Open, 10), None);
    assert_eq!(p.message.as_deref(), Some("VM 110: no disk can be opened"));
    // Any key clears the message.
    p.update(Action::MoveDown, 10);
    assert_eq!(p.message, None);
    assert_eq!(p.update(Action::Open, 10), Some(Picked::Open(200)));
    assert_eq!(p.update(Action::Cancel, 10), Some(Picked::Quit));
    assert_eq!(p.update(Action::Quit, 10), Some(Picked::Quit));
    // No guests: Enter does nothing.
    let mut empty = Picker::new(Vec::new(), "/etc/pve");
    assert_eq!(empty.update(Action::Open, 10), None);
}

/// `vmrescue --pve-root ROOT` of a fake host in a pty (the host is kept
/// alive with it).
fn picker_on_fake_host() -> (pve_support::Fake, Pty) {
    let f = pve_support::fake_host();
    let root = f.root();
    let pty = Pty::spawn(
        &bin(),
        &["--pve-root", root.to_str().unwrap()],
        &[],
        f.dir.path(),
    );
    (f, pty)
}

#[test]
fn pick_a_guest_then_browse_its_disks() {
    let (_f, mut pty) = picker_on_fake_host();
    pty.wait_for("guests of this Proxmox host");
    pty.wait_for("Enter open its disks");
    pty.wait_for("centos6-db");
    // 100 (the template's base image is there), 108, 109, 110 (on Ceph).
    pty.send(DOWN);
    pty.send(DOWN);
    pty.send(DOWN);
    pty.wait_for("VM 110 on-ceph");
    pty.send(ENTER);
    pty.wait_for("VM 110: no disk can be opened");
    pty.send("k");
    pty.send("k");
    pty.wait_for("VM 108 centos6-db");
    pty.send(ENTER);
    // The browser, on VM 108's qcow2 disk, its guest root open.
    pty.wait_for("vm-108-disk-1.qcow2");
    pty.wait_listed("p1:/ ");
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}

#[test]
fn q_leaves_the_picker_and_restores_the_terminal() {
    let (_f, mut pty) = picker_on_fake_host();
    pty.wait_for("centos6-db");
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}
