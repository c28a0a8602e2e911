//! A guest whose disk has a loop device attached is "in use", not running:
//! the loop device is named, the guest list says so, and a running QEMU
//! stays "running".

use crate::loop_support;
use crate::pve_support;

use pve_support::fake_host;
use vmrescue::pve::{self, Status};

#[test]
fn a_loop_device_on_a_disk_is_in_use_not_running() {
    let f = fake_host();
    let image = f.image(109, "vm-109-disk-0.raw");
    assert_eq!(pve::find(&f.host(), 109).unwrap().status, Status::Stopped);
    let held = loop_support::Attached::read_only(&image, 0, None);
    let g = pve::find(&f.host(), 109).unwrap();
    match &g.status {
        Status::InUse(w) => assert!(
            w.contains(&format!(
                "{} (read-only, offset 0) has the image attached",
                held.dev
            )) && w.contains(&format!("losetup -d {}", held.dev)),
            "{w}"
        ),
        other => panic!("expected in use, got {other:?}"),
    }
    let ([_, _, _, status], lines) = pve::describe(&g);
    assert_eq!(status, "in use");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("in use: sata0: ") && l.contains(&held.dev)),
        "{lines:?}"
    );
    let (code, out, _) = f.run(&[]);
    assert_eq!(code, 0);
    let row = out.lines().find(|l| l.starts_with("109 ")).unwrap();
    assert!(row.contains("in use") && !row.contains("running"), "{out}");
    // Opening it warns with the holder, and not that it runs.
    let (code, _, err) = f.run(&["layers", "109"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("VM 109 is not running, but a disk of it is in use")
            && err.contains(&held.dev)
            && !err.contains("is running"),
        "{err}"
    );
    drop(held);
    assert_eq!(pve::find(&f.host(), 109).unwrap().status, Status::Stopped);
}
