//! The restore dialog on a disk served over NBD (App state, jobs run in
//! place, as `tui_relink`): qemu-nbd serves a copy of the demo with its
//! default of one client at a time, and the repair writes on the TUI's own
//! connection; on an export served read-only the dialog says why it cannot
//! write.

use std::path::Path;

use crate::common;
use crate::image_support::{
    assert_e2fsck_clean, debugfs_target, files_in, sha256_file, volume_file,
};
use crate::nbd_support::{Listen, Server, qemu_nbd, qemu_nbd_writable};
use crate::tui_relink::{Demo, assert_mentions, restore_text};
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::{ConfirmKind, Dialog};

/// The TUI over what `serve` starts to serve a copy of the demo (given the
/// copy and its folder), `/lib64/libc.so.6` selected; the server first, to
/// outlive the TUI.
fn demo_over(serve: impl FnOnce(&Path, &Path) -> Server) -> (Server, Demo) {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("demo", dir.path());
    let server = serve(&image, dir.path());
    let mut d = Demo::open(dir, image, Path::new(&server.uri));
    d.at_libc();
    (server, d)
}

#[test]
fn the_restore_dialog_writes_through_an_nbd_export_on_its_own_connection() {
    let (server, mut d) = demo_over(|image, dir| qemu_nbd_writable(image, "demo", dir));
    d.act(Action::RestoreSymlink);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog");
    };
    let plan = r.plan.as_ref().expect("a plan for the best candidate");
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    assert_eq!(plan.bytes(), 256);
    let text = restore_text(r);
    assert_mentions(&text, &format!("256 bytes of {}", server.uri));
    // Nobody can list an NBD export's clients: the plan says so.
    assert_mentions(&text, "cannot tell whether the guest");
    d.act(Action::Confirm);
    let Some(Dialog::Confirm(c)) = &d.app.dialog else {
        panic!("question before writing");
    };
    assert_eq!(c.kind, ConfirmKind::ApplyRelink);
    assert!(
        c.lines
            .iter()
            .any(|l| l.contains(&format!("256 bytes of {} change", server.uri))),
        "{:?}",
        c.lines
    );
    let undo = d.answer_yes_and_check_written();
    // The undo record is keyed by the URI.
    let record = std::fs::read_to_string(&undo).unwrap();
    assert!(
        record.contains(&format!("\"image\": \"{}\"", server.uri)),
        "{record}"
    );
    // The pane reads the new link through the export.
    let e = d.app.pane().unwrap().current().unwrap();
    assert_eq!(e.target_shown.as_deref(), Some("libc-2.12.so"));
    // The file behind the export holds what was planned.
    let (dir, image, before) = d.close();
    let fs = volume_file(&image, "vg_ta/lv_root", dir.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    // The TUI's connection is closed: `vmrescue undo` is the one client now.
    let o = common::vmrescue(&["undo", "--yes", undo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sha256_file(&image), before, "undo restores every byte");
    drop(server);
}

#[test]
fn on_a_read_only_nbd_export_the_dialog_says_why_it_cannot_write() {
    let (server, mut d) =
        demo_over(|image, dir| qemu_nbd(image, "demo", Listen::Unix(&dir.join("ro.sock"))));
    d.assert_cannot_write("the NBD server serves the export read-only");
    let (dir, image, before) = d.close();
    assert_eq!(sha256_file(&image), before);
    assert!(files_in(&dir.path().join("undo")).is_empty());
    drop(server);
}
