//! The restore dialog (`r`) and the doctor view (`!`) on a copy of the demo
//! image, with the userspace engine:
//!
//! * `App::update` state tests (jobs run in place): candidates and plan,
//!   choosing another candidate, the question before writing and its "no",
//!   the write, the refreshed pane and the status line; the doctor's finding
//!   opening its restore dialog; an image locked the way QEMU locks it makes
//!   the dialog say why it cannot write.
//! * The whole flow in a real pseudo-terminal (expectrl + vt100) on the
//!   `vmrescue` binary: navigate to `/lib64/libc.so.6`, `r`, `y`, `y`, quit;
//!   then e2fsck finds the volume clean, debugfs and our `ls -l` read
//!   `libc-2.12.so`, and the undo file puts the image back byte for byte.
//! * In a pseudo-terminal too: the help over the restore dialog gives it
//!   back on Esc; `vmrescue undo` run beside the TUI is noticed without a
//!   key and the old link shows again; a qcow2 internal snapshot is named
//!   and copied to a folder of its own.

use crate::common;
use crate::image_support;
use crate::loop_support;
use crate::pty_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image_support::{assert_e2fsck_clean, debugfs_target, files_in, sha256_file, volume_file};
use pty_support::{ENTER, ESC, Pty, bin};
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::FsOptions;
use vmrescue::tui::copier::JobCopier;
use vmrescue::tui::dialogs::{ConfirmKind, Dialog, RestoreDialog};
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::{Action, App, AppConfig};

/// The TUI state over a copy of the demo, jobs run in place.
pub(crate) struct Demo {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) image: PathBuf,
    pub(crate) before: String,
    pub(crate) app: App,
    jobs: Jobs,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let image = common::fixture_copy("demo", dir.path());
        Demo::open(dir, image.clone(), &image)
    }

    /// The TUI over `source`: `image` (a copy of the demo in `dir`) or
    /// what serves it (an NBD URI).
    pub(crate) fn open(dir: tempfile::TempDir, image: PathBuf, source: &Path) -> Demo {
        let before = sha256_file(&image);
        let img = vmrescue::image::open(source).unwrap();
        let mut layout = vmrescue::layers::scan(vec![img]);
        let userspace = Arc::new(Userspace::default());
        let found = vmrescue::layers::inspect::inspect(&layout, &|id| {
            userspace.open_fs(&layout, id, &FsOptions::default())
        });
        layout.apply_inspection(&found);
        let layout = Arc::new(layout);
        let jobs = Jobs {
            layout: Arc::clone(&layout),
            opener: userspace,
            copier: Arc::new(JobCopier),
        };
        let config = AppConfig {
            undo_dir: dir.path().join("undo"),
            // No Proxmox configuration here.
            pve_root: dir.path().join("no-pve"),
            ..AppConfig::default()
        };
        let mut app = App::new(layout, config);
        app.resize(120, 40);
        app.start();
        jobs.run_inline(&mut app);
        Demo {
            dir,
            image,
            before,
            app,
            jobs,
        }
    }

    /// Close the TUI (and its disks' connections): the folder, the image
    /// and its SHA-256 from before.
    pub(crate) fn close(self) -> (tempfile::TempDir, PathBuf, String) {
        (self.dir, self.image, self.before)
    }

    /// `y` to the question before writing: the repair is written, the
    /// message says so and names the one undo file, which it returns.
    pub(crate) fn answer_yes_and_check_written(&mut self) -> PathBuf {
        self.act(Action::Confirm);
        assert!(self.app.dialog.is_none());
        let msg = self.message();
        assert!(
            msg.contains("relinked /lib64/libc.so.6 → libc-2.12.so"),
            "{msg}"
        );
        let mut undo = files_in(&self.dir.path().join("undo"));
        assert_eq!(undo.len(), 1);
        assert!(msg.contains(&undo[0].display().to_string()), "{msg}");
        undo.remove(0)
    }

    /// `r` on the selected link: the dialog plans, says "Cannot write:"
    /// with `why`, and `y` asks nothing and says so again, as an error.
    pub(crate) fn assert_cannot_write(&mut self, why: &str) {
        self.act(Action::RestoreSymlink);
        let Some(Dialog::Restore(r)) = &self.app.dialog else {
            panic!("restore dialog");
        };
        let plan = r.plan.as_ref().expect("planned");
        assert!(!plan.can_apply());
        let text = restore_text(r);
        assert!(
            text.iter()
                .any(|l| l.starts_with("Cannot write:") && l.contains(why)),
            "{text:?}"
        );
        self.act(Action::Confirm);
        assert!(
            matches!(self.app.dialog, Some(Dialog::Restore(_))),
            "no question"
        );
        assert!(
            self.message().contains("Cannot write"),
            "{}",
            self.message()
        );
        assert!(self.app.message.as_ref().unwrap().error);
    }

    pub(crate) fn act(&mut self, a: Action) {
        self.app.update(&a);
        self.jobs.run_inline(&mut self.app);
    }

    pub(crate) fn current(&self) -> String {
        self.app
            .pane()
            .and_then(|p| p.current())
            .map(|e| e.shown.clone())
            .unwrap_or_default()
    }

    pub(crate) fn select(&mut self, name: &str) {
        self.act(Action::Home);
        for _ in 0..500 {
            if self.current() == name {
                return;
            }
            self.act(Action::MoveDown);
        }
        panic!("{name} not found");
    }

    /// From the guest root to `/lib64`, `libc.so.6` selected.
    pub(crate) fn at_libc(&mut self) {
        self.select("lib64");
        self.act(Action::Open);
        self.select("libc.so.6");
    }

    /// `t`, the text, Enter: plan a target of the operator's own.
    fn type_target(&mut self, text: &str) -> &RestoreDialog {
        self.act(Action::TypeTarget);
        for c in text.chars() {
            self.act(Action::Insert(c));
        }
        self.act(Action::Confirm);
        match &self.app.dialog {
            Some(Dialog::Restore(r)) => r,
            _ => panic!("restore dialog"),
        }
    }

    pub(crate) fn message(&self) -> String {
        self.app
            .message
            .as_ref()
            .map(|m| m.text.clone())
            .unwrap_or_default()
    }
}

/// One of `lines` contains `what`.
pub(crate) fn assert_mentions(lines: &[String], what: &str) {
    assert!(lines.iter().any(|l| l.contains(what)), "{what}: {lines:?}");
}

/// The restore dialog's lines as text.
pub(crate) fn restore_text(r: &RestoreDialog) -> Vec<String> {
    vmrescue::tui::views::restore::restore_lines(r)
        .0
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn restore_dialog_plans_asks_writes_and_refreshes() {
    let mut d = Demo::new();
    d.at_libc();
    d.act(Action::RestoreSymlink);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog");
    };
    assert_eq!(r.path, "/lib64/libc.so.6");
    assert_eq!(r.target, "/opt/glibc-2.14/lib/libc.so.6");
    assert!(!r.analyzing);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("glibc 2.14 but ld.so is ld-2.12.so")),
        "{:?}",
        r.problems
    );
    assert_eq!(r.candidates[0].shown, "libc-2.12.so");
    assert!(
        r.candidates[0]
            .reasons
            .iter()
            .any(|x| x == "matches ld-2.12.so")
    );
    assert_eq!(r.chosen, Some(0));
    let plan = r.plan.as_ref().expect("a plan for the best candidate");
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    assert_eq!(plan.bytes(), 256);
    // The dialog shows the plan.
    let text = restore_text(r);
    assert!(text.iter().any(|l| l.contains("256 bytes of")), "{text:?}");
    assert!(
        text.iter().any(|l| l.contains("undo file: saved under")),
        "{text:?}"
    );
    // y asks first; n goes back to the dialog, and nothing was written.
    d.act(Action::Confirm);
    let Some(Dialog::Confirm(c)) = &d.app.dialog else {
        panic!("question before writing");
    };
    assert_eq!(c.kind, ConfirmKind::ApplyRelink);
    assert!(
        c.lines.iter().any(|l| l.contains("to   libc-2.12.so?")),
        "{:?}",
        c.lines
    );
    d.act(Action::Cancel);
    assert!(matches!(d.app.dialog, Some(Dialog::Restore(_))));
    assert_eq!(sha256_file(&d.image), d.before);
    // y, y: written off the UI thread (here: in place), the pane refreshed.
    d.act(Action::Confirm);
    d.answer_yes_and_check_written();
    assert_eq!(d.current(), "libc.so.6", "the link stays selected");
    let e = d.app.pane().unwrap().current().unwrap();
    assert_eq!(e.target_shown.as_deref(), Some("libc-2.12.so"));
    // Only the new ctime can still flag it (changed much later than its
    // neighbours: true, it was just repaired); not where it points.
    let flag = e.suspect.clone().unwrap_or_default();
    assert!(!flag.contains("outside"), "{flag}");
    assert!(d.app.message_first, "the outcome shows over the flag");
    // The status bar no longer says read-only.
    let status = vmrescue::tui::views::status::status_text(&d.app);
    assert!(
        status.contains("WRITTEN: 1 repair") && !status.contains("read-only"),
        "{status}"
    );
    let fs = volume_file(&d.image, "vg_ta/lv_root", d.dir.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    // The doctor finds nothing broken now.
    d.act(Action::Doctor);
    let Some(Dialog::Doctor(v)) = &d.app.dialog else {
        panic!("doctor");
    };
    let report = v.report.as_ref().unwrap();
    assert!(!report.has_problems(), "{:?}", report.findings);
}

#[test]
fn another_candidate_can_be_typed_and_chosen() {
    let mut d = Demo::new();
    d.at_libc();
    d.act(Action::RestoreSymlink);
    // The demo has one candidate; ↓ stays on it.
    d.act(Action::MoveDown);
    let Some(Dialog::Restore(r)) = &mut d.app.dialog else {
        panic!("restore dialog");
    };
    assert_eq!(r.candidates.len(), 1, "{:?}", r.candidates);
    assert_eq!(r.selected, 0);
    // Type glibc 2.14's libc (outside the library directories) as the
    // operator's own target: `t`, the path, Enter plans it.
    let r = d.type_target("/opt/glibc-2.14/lib/libc-2.14.so");
    assert!(r.typing.is_none());
    assert_eq!(r.candidates.len(), 2);
    assert!(r.candidates[1].reasons[0].contains("typed by you"));
    assert_eq!(r.selected, 1);
    assert_eq!(r.chosen, Some(1));
    let plan = r.plan.as_ref().expect("planned");
    assert_eq!(plan.new_target, b"/opt/glibc-2.14/lib/libc-2.14.so");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("outside the library directories")),
        "{:?}",
        plan.warnings
    );
    let (lines, hl) = vmrescue::tui::views::restore::restore_lines(r);
    assert!(lines[hl.unwrap()].to_string().contains("libc-2.14.so"));
    // A typed target that is already listed selects that candidate.
    let r = d.type_target("libc-2.12.so");
    assert_eq!((r.candidates.len(), r.selected, r.chosen), (2, 0, Some(0)));
    assert_eq!(
        r.plan.as_ref().expect("planned").new_target,
        b"libc-2.12.so"
    );
    // One that does not exist in the guest is planned, and refused.
    let r = d.type_target("libc-9.99.so");
    let plan = r.plan.as_ref().expect("planned");
    assert!(!plan.can_apply());
    assert_mentions(&plan.blockers, "would not resolve");
    // The dialog offers the TUI's own way past it, not the command's --force.
    let text = restore_text(r);
    assert_mentions(&text, "f allows it (y still asks)");
    assert!(!text.iter().any(|l| l.contains("--force")), "{text:?}");
    d.act(Action::Confirm);
    assert!(d.message().contains("Cannot write"), "{}", d.message());
    assert!(!d.message().contains("--force"), "{}", d.message());
    // f plans it again, allowed; y asks the same question; n writes nothing.
    d.act(Action::Force);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog");
    };
    assert!(r.force);
    let plan = r.plan.as_ref().expect("planned again");
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    assert_eq!(plan.new_target, b"libc-9.99.so");
    assert_mentions(&plan.warnings, "would not resolve");
    let text = restore_text(r);
    assert_mentions(&text, "allowed with f");
    assert!(!text.iter().any(|l| l.contains("--force")), "{text:?}");
    d.act(Action::Confirm);
    let Some(Dialog::Confirm(c)) = &d.app.dialog else {
        panic!("the question before writing");
    };
    assert_eq!(c.kind, ConfirmKind::ApplyRelink);
    d.act(Action::Cancel);
    // f again: not allowed any more.
    d.act(Action::Force);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog");
    };
    assert!(!r.force && !r.can_apply());
    // Esc while typing drops the text and stays in the dialog.
    d.act(Action::TypeTarget);
    d.act(Action::Insert('x'));
    d.act(Action::Cancel);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog");
    };
    assert!(r.typing.is_none());
    assert_eq!(r.candidates.len(), 3);
    // Esc closes without writing.
    d.act(Action::Cancel);
    assert!(d.app.dialog.is_none());
    assert_eq!(sha256_file(&d.image), d.before);
}

#[test]
fn doctor_finding_goes_to_its_file_and_r_opens_its_restore_dialog() {
    let mut d = Demo::new();
    d.act(Action::Doctor);
    let Some(Dialog::Doctor(v)) = &d.app.dialog else {
        panic!("doctor view");
    };
    let report = v.report.as_ref().expect("scanned");
    assert_eq!(
        report.findings[0].path.as_deref().unwrap(),
        b"/lib64/libc.so.6"
    );
    assert_eq!(report.recent[0].path, b"/lib64/libc.so.6");
    let (lines, hl) = vmrescue::tui::views::doctor::doctor_lines(v);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert!(
        text.iter().any(|l| l.contains("proposed: libc-2.12.so")),
        "{text:?}"
    );
    assert!(hl.is_some());
    // Enter goes to the file.
    d.act(Action::Open);
    assert!(d.app.dialog.is_none());
    assert_eq!(d.app.pane().unwrap().path, b"/lib64");
    assert_eq!(d.current(), "libc.so.6");
    // r repairs it: the restore dialog.
    d.act(Action::Doctor);
    d.act(Action::RestoreSymlink);
    let Some(Dialog::Restore(r)) = &d.app.dialog else {
        panic!("restore dialog from the doctor");
    };
    assert_eq!(r.path, "/lib64/libc.so.6");
    assert!(r.plan.as_ref().is_some_and(|p| p.can_apply()));
    // The file list went to the link.
    assert_eq!(d.app.pane().unwrap().path, b"/lib64");
    assert_eq!(d.current(), "libc.so.6");
}

#[test]
fn an_image_in_use_cannot_be_written_and_the_dialog_says_why() {
    use std::os::fd::AsFd;
    let mut d = Demo::new();
    let holder = std::fs::File::open(&d.image).unwrap();
    for byte in [100, 101, 201] {
        let fl = nix::libc::flock {
            l_type: nix::libc::F_RDLCK as nix::libc::c_short,
            l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
            l_start: byte,
            l_len: 1,
            l_pid: 0,
        };
        nix::fcntl::fcntl(holder.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl)).unwrap();
    }
    d.at_libc();
    d.assert_cannot_write("in use");
    drop(holder);
    assert_eq!(sha256_file(&d.image), d.before);
    assert!(files_in(&d.dir.path().join("undo")).is_empty());
}

// ----- the binary in a pseudo-terminal -----

/// `/name` Enter: select the entry by filtering.
fn select_by_filter(pty: &mut Pty, name: &str) {
    pty.send("/");
    for c in name.chars() {
        pty.send(&c.to_string());
    }
    pty.send(ENTER);
}

/// The binary in a pseudo-terminal on a copy of the demo (undo files under
/// `state`), `/lib64/libc.so.6` selected.
struct PtyDemo {
    dir: tempfile::TempDir,
    image: PathBuf,
    before: String,
    state: PathBuf,
    pty: Pty,
}

fn pty_at_libc() -> PtyDemo {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("demo", dir.path());
    let before = sha256_file(&image);
    let state = dir.path().join("state");
    let mut pty = Pty::spawn(
        &bin(),
        &[image.to_str().unwrap()],
        &[("XDG_STATE_HOME", state.to_str().unwrap())],
        dir.path(),
    );
    pty.wait_listed("guest:/ ");
    select_by_filter(&mut pty, "lib64");
    pty.send(ENTER);
    pty.wait_listed("guest:/lib64 ");
    select_by_filter(&mut pty, "libc.so.6");
    PtyDemo {
        dir,
        image,
        before,
        state,
        pty,
    }
}

#[test]
fn pty_navigate_restore_write_quit() {
    let PtyDemo {
        dir,
        image,
        before,
        state,
        mut pty,
    } = pty_at_libc();
    pty.send("r");
    pty.wait_for("Restore symlink");
    pty.wait_for("libc-2.12.so");
    pty.wait_for("256 bytes of");
    pty.send("y");
    pty.wait_for("Write the repair?");
    pty.send("y");
    pty.wait_for("relinked /lib64/libc.so.6");
    pty.wait_for("libc.so.6 → libc-2.12.so");
    pty.quit();

    let fs = volume_file(&image, "vg_ta/lv_root", dir.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    let o = common::vmrescue(&["ls", "-l", image.to_str().unwrap(), "/lib64/libc.so.6"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/lib64/libc.so.6 -> libc-2.12.so"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The undo file went to $XDG_STATE_HOME/vmrescue/undo and puts every byte back.
    undo_the_repair(&state, &image, &before);
}

/// `vmrescue undo` with the one undo file under `state`: the image is as
/// it was (`before` is its SHA-256).
fn undo_the_repair(state: &Path, image: &Path, before: &str) {
    let undo = files_in(&state.join("vmrescue/undo"));
    assert_eq!(undo.len(), 1, "{undo:?}");
    let o = common::vmrescue(&["undo", undo[0].to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sha256_file(image), before);
}

/// `r`, `?`, Esc: the restore dialog is back; `y`, `y` writes; then
/// `vmrescue undo` in another shell puts the old link back, and the TUI
/// notices within a second, shows the old link again and `!` finds it.
#[test]
fn pty_help_over_restore_then_an_undo_elsewhere_is_noticed() {
    // The temporary folder stays in `d` until the end.
    let d = pty_at_libc();
    let (image, before, state, mut pty) = (d.image, d.before, d.state, d.pty);
    // A frame can arrive in pieces (the program is descheduled between its
    // writes under load): wait until the whole state is on screen, never
    // judge the screen at the first sign of a new frame.
    let until = |pty: &mut Pty, what: &str, ok: &dyn Fn(&str) -> bool| {
        let start = std::time::Instant::now();
        loop {
            while pty.pump() {}
            if ok(&pty.screen()) {
                return;
            }
            assert!(
                start.elapsed() < pty_support::TIMEOUT,
                "timed out waiting until {what}; screen:\n{}",
                pty.screen()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    pty.send("r");
    pty.wait_for("256 bytes of");
    pty.send("?");
    until(&mut pty, "the help covers the restore dialog", &|s| {
        s.contains("Next row") && !s.contains("256 bytes of")
    });
    pty.send(ESC);
    until(&mut pty, "the restore dialog is back", &|s| {
        s.contains("256 bytes of") && s.contains("Restore symlink") && !s.contains("Next row")
    });
    pty.send("y");
    pty.wait_for("Write the repair?");
    pty.send("y");
    pty.wait_for("relinked /lib64/libc.so.6");
    pty.wait_for("libc.so.6 → libc-2.12.so");
    pty.wait_for("WRITTEN: 1 repair");
    // Another shell undoes the repair.
    undo_the_repair(&state, &image, &before);
    // No key pressed: the TUI sees it by itself, says so, and lists the
    // folder again (two waits: under load the listing can finish after the
    // message has been replaced).
    until(&mut pty, "the change is noticed", &|s| {
        s.contains("changed on disk")
    });
    until(&mut pty, "the old link is listed again", &|s| {
        s.contains("libc.so.6 → /opt/g") && !s.contains("reading…")
    });
    pty.send("!");
    pty.wait_for("proposed: libc-2.12.so");
    pty.send(ESC);
    pty.quit();
    assert_eq!(
        sha256_file(&image),
        before,
        "nothing written after the undo"
    );
}

/// `--snapshot NAME` on a qcow2 image: the title and the status bar name
/// the snapshot, the copy goes to a folder of its own, and when that folder
/// holds files already the dialog offers what to do with them.
#[test]
fn pty_a_snapshot_is_named_and_gets_its_own_copy_folder() {
    let dir = tempfile::tempdir().unwrap();
    let raw = common::fixture_copy("demo", dir.path());
    let image = dir.path().join("vm-108-disk-0.qcow2");
    for args in [
        vec![
            "convert",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
        vec!["snapshot", "-c", "before-upgrade", image.to_str().unwrap()],
    ] {
        let o = std::process::Command::new("qemu-img")
            .args(&args)
            .output()
            .expect("run qemu-img (Debian package qemu-utils)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let folder = dir.path().join("rescued/vm-108-disk-0@before-upgrade");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("lib64"), b"an earlier copy").unwrap();
    let mut pty = Pty::spawn(
        &bin(),
        &["--snapshot", "before-upgrade", image.to_str().unwrap()],
        &[],
        dir.path(),
    );
    pty.wait_listed("guest@before-upgrade:/ ");
    let screen = pty.screen();
    // The status line keeps its end when it is cut: the image's name may
    // lose its start.
    assert!(screen.contains("qcow2@before-upgrade │"), "{screen}");
    select_by_filter(&mut pty, "lib64");
    pty.send("c");
    pty.wait_for("./rescued/vm-108-disk-0@before-upgrade/");
    pty.wait_for("holds 1 entry already");
    pty.wait_for("[skip it]");
    pty.send("\t");
    pty.wait_for("[overwrite it]");
    pty.send(ESC);
    pty.quit();
}

/// A read-only loop device over `vg_ta/lv_root`, mounted `ro,noload` after
/// the dialog planned the write: `y` `y` is refused (the check is made again
/// at the write), the screen names the loop device and how to release it,
/// and the image is unchanged.
#[test]
fn pty_a_read_only_loop_mount_attached_after_planning_refuses_the_write() {
    common::require_root("attaches a loop device and mounts it");
    let mut d = pty_at_libc();
    d.pty.send("r");
    d.pty.wait_for("Restore symlink");
    d.pty.wait_for("256 bytes of");
    assert!(
        !d.pty.screen().contains("Cannot write"),
        "{}",
        d.pty.screen()
    );
    let held = loop_support::Attached::read_only(&d.image, 269_484_032, Some(1 << 30))
        .mount_ro(&d.dir.path().join("mnt"));
    d.pty.send("y");
    d.pty.wait_for("Write the repair?");
    d.pty.send("y");
    d.pty.wait_for("in use");
    let loop_name = held.dev.trim_start_matches("/dev/");
    d.pty.wait_for(loop_name);
    assert!(!d.pty.screen().contains("relinked"), "{}", d.pty.screen());
    d.pty.send(ESC);
    d.pty.quit();
    drop(held);
    assert_eq!(
        sha256_file(&d.image),
        d.before,
        "the refused write changed the image"
    );
    assert!(files_in(&d.state.join("vmrescue/undo")).is_empty());
}
