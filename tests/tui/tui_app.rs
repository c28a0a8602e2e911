//! State tests of the TUI: `App::update` with actions and job results run in
//! place (no terminal): navigation, marks across directories and volumes,
//! the filter, dialogs, and a copy-out on the story's guest.

use crate::tui_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_support::{MemOpener, story};
use vmrescue::tui::Action;
use vmrescue::tui::app::{Focus, Right};
use vmrescue::tui::dialogs::{ConfirmKind, Dialog};

#[test]
fn opens_the_guest_root_and_expands_the_layers() {
    let st = story(120, 40);
    let app = &st.app;
    assert_eq!(app.focus, Focus::Files);
    let pane = app.pane().expect("the guest root is shown");
    assert_eq!(app.layout.volume(pane.on.unwrap()).name, "vg_ta/lv_root");
    assert_eq!(pane.path, b"/");
    // Directories first, by name.
    let names: Vec<&str> = pane.entries.iter().map(|e| e.shown.as_str()).collect();
    assert_eq!(&names[..3], ["bin", "boot", "dev"]);
    // The guest comes first, and is selected; the tree is open down to the LVs.
    let shown: Vec<String> = app
        .layers
        .visible()
        .iter()
        .map(|p| app.layers.node(p).unwrap().name.clone())
        .collect();
    assert_eq!(
        shown,
        [
            "CentOS release 6.4 (Final) — guest",
            "vm-108-disk-1.raw",
            "p1",
            "p2",
            "vg_ta",
            "lv_root",
            "lv_home",
            "lv_swap"
        ]
    );
    assert_eq!(
        app.layers.current().unwrap().name,
        "CentOS release 6.4 (Final) — guest"
    );
}

#[test]
fn navigation_flags_the_repointed_libc_link() {
    let mut st = story(80, 24);
    st.cd("/lib64");
    let pane = st.app.pane().unwrap();
    let flagged: Vec<(&str, &str)> = pane
        .entries
        .iter()
        .filter_map(|e| e.suspect.as_deref().map(|r| (e.shown.as_str(), r)))
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    let (name, reason) = flagged[0];
    assert_eq!(name, "libc.so.6");
    assert_eq!(
        reason,
        "the target is glibc 2.14 but ld.so is ld-2.12.so (glibc 2.12); \
         outside lib dirs: /opt/glibc-2.14/lib; changed 2024-05-02, others 2013-02-22"
    );
    // Back selects the directory we came from; at the root, Back goes to the tree.
    st.act(Action::Back);
    assert_eq!(st.path(), "/");
    assert_eq!(st.current(), "lib64");
    st.act(Action::Back);
    assert_eq!(st.app.focus, Focus::Layers);
    // End and Home, page keys stay in range.
    st.app.focus = Focus::Files;
    st.act(Action::End);
    let last = st.app.pane().unwrap().visible.len() - 1;
    assert_eq!(st.app.pane().unwrap().selected, last);
    st.act(Action::PageDown);
    assert_eq!(st.app.pane().unwrap().selected, last);
    st.act(Action::PageUp);
    st.act(Action::PageUp);
    st.act(Action::PageUp);
    assert_eq!(st.app.pane().unwrap().selected, 0);
}

#[test]
fn a_symlink_to_a_directory_is_followed_inside_the_guest() {
    let mut st = story(80, 24);
    let mut fs = tui_support::centos_root();
    fs.symlink("/data", "/var/lib/../lib/mysql", tui_support::T2013);
    let mut opener = MemOpener::story();
    opener.map.insert("vg_ta/lv_root".into(), Arc::new(fs));
    st.jobs.opener = Arc::new(opener);
    st.app.fss.clear();
    st.app.open_tree(st.app.pane().unwrap().tree);
    st.jobs.run_inline(&mut st.app);
    st.select("data");
    st.act(Action::Open);
    assert_eq!(st.path(), "/var/lib/mysql");
    let _ = &st.opener;
}

#[test]
fn marks_across_directories_and_volumes() {
    let mut st = story(120, 40);
    st.cd("/var/lib/mysql");
    st.select("ibdata1");
    st.act(Action::MarkToggle);
    // Marking moves down.
    assert_ne!(st.current(), "ibdata1");
    st.cd("/lib64");
    st.select("libc-2.12.so");
    st.act(Action::MarkToggle);
    assert_eq!(st.app.marks.len(), 2);
    assert_eq!(st.app.marks.total_size(), (10 << 20) + 1_926_800);
    // Another volume: lv_home.
    st.select_layer("lv_home");
    st.act(Action::Open);
    assert_eq!(st.app.focus, Focus::Files);
    assert_eq!(
        st.app
            .layout
            .volume(st.app.pane().unwrap().on.unwrap())
            .name,
        "vg_ta/lv_home"
    );
    st.select("ta");
    st.act(Action::MarkToggle);
    assert_eq!(st.app.marks.len(), 3);
    assert_eq!(st.app.marks.trees().len(), 2);
    assert_eq!(st.app.marks.dirs(), 1);
    // Back on the guest, the last directory is remembered and the marks are still there.
    st.select_layer("CentOS release 6.4 (Final) — guest");
    st.act(Action::Open);
    assert_eq!(st.path(), "/lib64");
    st.select("libc-2.12.so");
    st.act(Action::MarkToggle);
    assert_eq!(st.app.marks.len(), 2, "toggling again unmarks");
    // Mark all shown in a directory, then clear everything.
    st.act(Action::MarkAll);
    let n = st.app.pane().unwrap().visible.len();
    assert_eq!(st.app.marks.len(), 2 + n);
    st.act(Action::ClearMarks);
    assert!(st.app.marks.is_empty());
    // Marking in the layer pane is refused with a message.
    st.app.focus = Focus::Layers;
    st.act(Action::MarkToggle);
    assert!(st.app.marks.is_empty());
    assert!(
        st.app
            .message
            .as_ref()
            .unwrap()
            .text
            .contains("marks are for files")
    );
}

#[test]
fn filter_by_name() {
    let mut st = story(80, 24);
    st.cd("/lib64");
    let all = st.app.pane().unwrap().entries.len();
    st.act(Action::FilterStart);
    for c in "LIBC".chars() {
        st.act(Action::Insert(c));
    }
    let shown: Vec<String> = {
        let p = st.app.pane().unwrap();
        p.visible
            .iter()
            .map(|&i| p.entries[i].shown.clone())
            .collect()
    };
    assert_eq!(shown, ["libc-2.12.so", "libc.so.6"], "case-insensitive");
    st.act(Action::DeleteBack);
    st.act(Action::Confirm);
    assert!(!st.app.pane().unwrap().editing_filter);
    assert_eq!(st.app.pane().unwrap().filter.text, "LIB");
    // Keys move in the filtered list; a mark-all marks only what is shown.
    st.act(Action::MarkAll);
    assert_eq!(st.app.marks.len(), st.app.pane().unwrap().visible.len());
    assert!(st.app.marks.len() < all);
    // Esc on the main screen clears the filter.
    st.act(Action::Cancel);
    assert_eq!(st.app.pane().unwrap().visible.len(), all);
    // Esc while typing clears it too; entering a directory resets it.
    st.act(Action::FilterStart);
    st.act(Action::Insert('z'));
    st.act(Action::Cancel);
    assert_eq!(st.app.pane().unwrap().visible.len(), all);
    st.act(Action::FilterStart);
    st.act(Action::Insert('s'));
    st.act(Action::Insert('e'));
    st.act(Action::Confirm);
    assert_eq!(st.current(), "security");
    st.act(Action::Open);
    assert!(st.app.pane().unwrap().filter.text.is_empty());
}

#[test]
fn a_filter_typed_while_the_directory_loads_is_kept() {
    // An operator types `/lib` right after pressing Enter, before the
    // listing is back: the filter applies to the new directory when it comes.
    let mut st = story(80, 24);
    st.act(Action::FilterStart);
    st.act(Action::Insert('6'));
    st.act(Action::Confirm);
    assert_eq!(st.current(), "lib64");
    st.app.update(&Action::Open);
    assert!(
        st.app.pane().unwrap().filter.text.is_empty(),
        "another directory starts without the old filter"
    );
    st.app.update(&Action::FilterStart);
    for c in "libc".chars() {
        st.app.update(&Action::Insert(c));
    }
    st.jobs.run_inline(&mut st.app);
    let p = st.app.pane().unwrap();
    assert_eq!(p.path, b"/lib64");
    assert!(p.editing_filter, "still typing");
    assert_eq!(p.filter.text, "libc");
    let shown: Vec<&str> = p
        .visible
        .iter()
        .map(|&i| p.entries[i].shown.as_str())
        .collect();
    assert_eq!(shown, ["libc-2.12.so", "libc.so.6"]);
    assert_eq!(st.current(), "libc-2.12.so");
}

#[test]
fn help_details_restore_and_doctor_dialogs() {
    let mut st = story(120, 40);
    st.act(Action::ToggleHelp);
    assert!(matches!(st.app.dialog, Some(Dialog::Help { .. })));
    st.act(Action::MoveDown);
    assert!(matches!(st.app.dialog, Some(Dialog::Help { scroll: 1 })));
    st.act(Action::ToggleHelp);
    assert!(st.app.dialog.is_none());
    st.cd("/lib64");
    st.select("libc-2.12.so");
    st.act(Action::ShowDetails);
    let Some(Dialog::Details {
        details: Some(d), ..
    }) = &st.app.dialog
    else {
        panic!("details loaded");
    };
    assert_eq!(d.path, "/lib64/libc-2.12.so");
    let elf = d.elf.as_ref().expect("ELF facts");
    assert_eq!(elf.soname.as_deref(), Some(&b"libc.so.6"[..]));
    assert!(
        elf.summary().contains("64-bit LSB shared object, x86-64"),
        "{}",
        elf.summary()
    );
    assert_eq!(d.xattrs[0].0, "security.selinux");
    st.act(Action::Cancel);
    assert!(st.app.dialog.is_none());
    // r on the flagged link: the restore dialog with its problems.
    st.select("libc.so.6");
    st.act(Action::RestoreSymlink);
    let Some(Dialog::Restore(r)) = &st.app.dialog else {
        panic!("restore dialog");
    };
    assert_eq!(r.path, "/lib64/libc.so.6");
    assert_eq!(r.target, "/opt/glibc-2.14/lib/libc.so.6");
    assert_eq!(r.problems.len(), 3);
    st.act(Action::Cancel);
    // i on a link to a file shows its details, with where it leads (Enter
    // views the file: tests/tui_viewer.rs).
    st.act(Action::ShowDetails);
    let Some(Dialog::Details {
        details: Some(d), ..
    }) = &st.app.dialog
    else {
        panic!("details of the link");
    };
    assert_eq!(d.resolved, Some(Ok("/opt/glibc-2.14/lib/libc.so.6".into())));
    st.act(Action::Cancel);
    // r on a regular file says what r is for.
    st.select("ld-2.12.so");
    st.act(Action::RestoreSymlink);
    assert!(st.app.dialog.is_none());
    assert!(
        st.app
            .message
            .as_ref()
            .unwrap()
            .text
            .contains("symbolic link")
    );
    // The doctor scans the whole guest: the repointed link comes first.
    st.act(Action::Doctor);
    let Some(Dialog::Doctor(d)) = &st.app.dialog else {
        panic!("doctor view");
    };
    let report = d.report.as_ref().expect("the scan ran");
    assert_eq!(
        report.findings[0].path.as_deref().unwrap(),
        b"/lib64/libc.so.6"
    );
    st.act(Action::Cancel);
    // i in the layer pane shows the node's facts.
    st.select_layer("lv_root");
    st.act(Action::ShowDetails);
    let Some(Dialog::Message { lines, .. }) = &st.app.dialog else {
        panic!("layer facts");
    };
    assert!(
        lines
            .iter()
            .any(|l| l == "guest root: CentOS release 6.4 (Final)"),
        "{lines:?}"
    );
}

#[test]
fn unreadable_volumes_say_why() {
    let mut st = story(80, 24);
    st.select_layer("p1");
    st.act(Action::Open);
    match &st.app.right {
        Right::Failed(_, why) => assert!(why.contains("unsupported"), "{why}"),
        _ => panic!("p1 cannot be opened by the test opener"),
    }
    st.select_layer("lv_swap");
    st.act(Action::Open);
    let m = st.app.message.as_ref().unwrap();
    assert!(m.error && m.text.contains("swap"), "{m:?}");
}

fn read_tree(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path().strip_prefix(root).unwrap().display().to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn copy_dialog_progress_cancel_and_summary() {
    let mut st = story(120, 40);
    let out = tempfile::tempdir().unwrap();
    // Nothing marked: the selected entry is copied.
    st.cd("/var/lib");
    st.select("mysql");
    st.act(Action::CopyMarked);
    let Some(Dialog::CopySetup(c)) = &st.app.dialog else {
        panic!("copy dialog");
    };
    // From the guest's tree: the files go where the guest has them.
    assert_eq!(c.dest.text, "./rescued/vm-108-disk-1/");
    let p = c.summary.as_ref().expect("plan made");
    assert_eq!((p.files, p.dirs, p.symlinks), (4, 3, 1));
    assert_eq!(p.bytes, (10 << 20) + 48 * 1024 + 17 + 21);
    // Edit the destination: clear it and type the temp dir.
    for _ in 0..100 {
        st.act(Action::DeleteBack);
    }
    for ch in out.path().display().to_string().chars() {
        st.act(Action::Insert(ch));
    }
    st.act(Action::Confirm);
    // Inline, the copy has run to the end: the summary is shown.
    assert!(st.app.copy.is_none());
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary");
    };
    assert!(!summary.cancelled);
    assert_eq!(summary.files, 4);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(
        read_tree(out.path()),
        [
            "mysql",
            "mysql/ib_logfile0",
            "mysql/ibdata1",
            "mysql/mysql",
            "mysql/mysql.sock",
            "mysql/mysql/user.MYD",
            "mysql/mysql/user.frm",
            "mysql/test"
        ]
    );
    let fs = tui_support::centos_root();
    let ib = out.path().join("mysql/ibdata1");
    assert_eq!(
        std::fs::read(&ib).unwrap(),
        fs.contents(b"/var/lib/mysql/ibdata1")
    );
    let m = std::fs::metadata(&ib).unwrap();
    assert!(
        m.blocks() * 512 < m.len() / 2,
        "holes kept: {} blocks",
        m.blocks()
    );
    assert_eq!(m.mode() & 0o777, 0o660);
    assert_eq!(
        std::fs::read_link(out.path().join("mysql/mysql.sock")).unwrap(),
        Path::new("/var/run/mysqld/mysqld.sock")
    );
    st.act(Action::Cancel);
    // Again into the same folder: nothing is overwritten, every file is
    // there and the same (as `cp --skip-existing` counts them).
    st.act(Action::CopyMarked);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = vmrescue::tui::text_field::TextField::new(&out.path().display().to_string());
    }
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary");
    };
    assert_eq!(summary.files, 0);
    assert_eq!(summary.unchanged, 5, "4 files and the symlink");
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    st.act(Action::Cancel);
}

#[test]
fn copy_across_volumes_and_cancel_questions() {
    let mut st = story(120, 40);
    st.cd("/var/log");
    st.select("messages");
    st.act(Action::MarkToggle);
    st.select_layer("lv_home");
    st.act(Action::Open);
    st.select("ta");
    st.act(Action::MarkToggle);
    // The copy dialog (planning left pending: no job runs until asked).
    st.app.update(&Action::CopyMarked);
    let Some(Dialog::CopySetup(c)) = &st.app.dialog else {
        panic!("copy dialog");
    };
    assert_eq!(c.dest.text, "./rescued/vm-108-disk-1/");
    assert_eq!(c.volumes, ["guest", "vg_ta/lv_home"]);
    assert!(c.summary.is_none());
    // Enter before the plan is ready does nothing but say so.
    st.app.update(&Action::Confirm);
    assert!(matches!(st.app.dialog, Some(Dialog::CopySetup(_))));
    let out = tempfile::tempdir().unwrap();
    // Plan, then start without running the copy job: the progress window is up.
    st.jobs.run_inline(&mut st.app);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = vmrescue::tui::text_field::TextField::new(&out.path().display().to_string());
    }
    st.app.update(&Action::Confirm);
    assert!(st.app.copy.is_some());
    assert_eq!(st.app.context(), vmrescue::tui::keymap::Context::Progress);
    // Esc asks; n keeps copying; b hides the window.
    st.app.update(&Action::Cancel);
    assert!(
        matches!(&st.app.dialog, Some(Dialog::Confirm(c)) if c.kind == ConfirmKind::CancelCopy)
    );
    st.app.update(&Action::Cancel);
    assert!(st.app.dialog.is_none());
    st.app.update(&Action::Background);
    assert!(st.app.copy.as_ref().unwrap().hidden);
    assert_eq!(st.app.context(), vmrescue::tui::keymap::Context::Main);
    // Quitting while it runs asks first; yes cancels, and quits when the job ends.
    st.app.update(&Action::Quit);
    assert!(
        matches!(&st.app.dialog, Some(Dialog::Confirm(c)) if c.kind == ConfirmKind::QuitDuringCopy)
    );
    st.app.update(&Action::Confirm);
    assert!(
        st.app
            .copy
            .as_ref()
            .unwrap()
            .cancel
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(!st.app.quit, "waits for the copy to stop");
    st.jobs.run_inline(&mut st.app);
    assert!(st.app.quit);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary");
    };
    assert!(summary.cancelled);
    // Cancelled before the first file: nothing half-written is left.
    assert!(!out.path().join("guest/messages").exists());
}

#[test]
fn one_volume_copy_then_per_volume_folders() {
    let mut st = story(120, 40);
    st.cd("/var/log");
    st.select("messages");
    st.act(Action::MarkToggle);
    st.select_layer("lv_home");
    st.act(Action::Open);
    st.select("ta");
    st.act(Action::MarkToggle);
    let out = tempfile::tempdir().unwrap();
    st.act(Action::CopyMarked);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = vmrescue::tui::text_field::TextField::new(&out.path().display().to_string());
    }
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary");
    };
    assert!(
        summary.failed.is_empty() && summary.skipped.is_empty(),
        "{summary:?}"
    );
    assert_eq!(
        read_tree(out.path()),
        [
            "guest",
            "guest/messages",
            "vg_ta_lv_home",
            "vg_ta_lv_home/ta",
            "vg_ta_lv_home/ta/notes.txt"
        ]
    );
}

// ----- the TUI tells the truth (issue #10) -----

fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn ctrl(c: char) -> KeyEvent {
    key(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn message(st: &tui_support::Story) -> String {
    st.app
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

/// The story's root as another program left it: a new link in `/lib64`.
fn root_with_libc_at(target: &str) -> Arc<dyn vmrescue::fs::FsView> {
    let mut fs = tui_support::centos_root();
    fs.symlink("/lib64/libc.so.6.new", target, tui_support::T2013);
    Arc::new(fs)
}

/// The screen as drawn at the app's size.
fn render(app: &vmrescue::tui::App) -> String {
    let (w, h) = app.size;
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| vmrescue::tui::views::draw(f, app)).unwrap();
    term.backend().to_string()
}

/// Whether the directory shown holds an entry shown as `name`.
fn lists(st: &tui_support::Story, name: &str) -> bool {
    st.app
        .pane()
        .is_some_and(|p| p.entries.iter().any(|e| e.shown == name))
}

/// An app whose lv_root reader is `fs` (as if the image held it now).
fn swap_root(st: &mut tui_support::Story, fs: Arc<dyn vmrescue::fs::FsView>) {
    let mut opener = MemOpener::story();
    opener.map.insert("vg_ta/lv_root".into(), fs);
    st.jobs.opener = Arc::new(opener);
}

#[test]
fn an_image_written_elsewhere_is_noticed_and_read_again() {
    let mut st = story(120, 40);
    st.cd("/lib64");
    st.select("libc.so.6");
    // Another program writes the image (here: the reader gets another guest,
    // and the file's modification time moves).
    swap_root(&mut st, root_with_libc_at("libc-2.12.so"));
    let image = st.app.layout.disks[0]
        .origin
        .host_path()
        .unwrap()
        .to_path_buf();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    // The next tick notices, says so, and reads the directory again.
    st.app.tick(std::time::Instant::now());
    st.jobs.run_inline(&mut st.app);
    assert!(message(&st).contains("changed on disk"), "{}", message(&st));
    assert!(st.app.message_first);
    assert_eq!(st.path(), "/lib64");
    assert_eq!(st.current(), "libc.so.6", "the selection is kept");
    assert!(
        lists(&st, "libc.so.6.new"),
        "the listing comes from the new reader"
    );
    // Once seen, the same image is not news again.
    assert!(!st.app.check_images());
}

#[test]
fn a_key_after_an_outside_write_is_not_acted_on_stale_state() {
    let mut st = story(120, 40);
    st.cd("/var/lib/mysql");
    let image = st.app.layout.disks[0]
        .origin
        .host_path()
        .unwrap()
        .to_path_buf();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&image)
        .unwrap()
        .set_len(std::fs::metadata(&image).unwrap().len() + 512)
        .unwrap();
    // `c` would copy what the old reader says: it is not acted on.
    st.app.key(key(KeyCode::Char('c'), KeyModifiers::NONE));
    st.jobs.run_inline(&mut st.app);
    assert!(st.app.dialog.is_none());
    assert!(message(&st).contains("changed on disk"), "{}", message(&st));
    assert_eq!(st.path(), "/var/lib/mysql");
}

#[test]
fn ctrl_l_reads_the_shown_directory_again() {
    let mut st = story(120, 40);
    st.cd("/lib64");
    swap_root(&mut st, root_with_libc_at("libc-2.12.so"));
    st.app.key(ctrl('l'));
    st.jobs.run_inline(&mut st.app);
    assert!(st.app.redraw);
    assert_eq!(st.path(), "/lib64");
    assert!(lists(&st, "libc.so.6.new"));
    assert!(message(&st).contains("read again"), "{}", message(&st));
}

#[test]
fn help_over_a_dialog_returns_to_it() {
    let mut st = story(120, 40);
    st.cd("/lib64");
    st.select("libc.so.6");
    // r, then ? before the analysis arrives: the answer still reaches the
    // restore dialog under the help.
    st.app.update(&Action::RestoreSymlink);
    st.app.update(&Action::ToggleHelp);
    st.jobs.run_inline(&mut st.app);
    assert!(matches!(st.app.dialog, Some(Dialog::Help { .. })));
    st.act(Action::Cancel);
    let Some(Dialog::Restore(r)) = &st.app.dialog else {
        panic!("Esc on the help shows the restore dialog again");
    };
    assert!(
        !r.analyzing,
        "the analysis arrived while the help was shown"
    );
    // A target typed and planned survives the help too.
    st.act(Action::TypeTarget);
    for c in "libc-2.12.so".chars() {
        st.act(Action::Insert(c));
    }
    st.act(Action::Confirm);
    let n = match &st.app.dialog {
        Some(Dialog::Restore(r)) => r.candidates.len(),
        _ => panic!("restore dialog"),
    };
    st.act(Action::ToggleHelp);
    st.act(Action::MoveDown);
    st.act(Action::Cancel);
    let Some(Dialog::Restore(r)) = &st.app.dialog else {
        panic!("restore dialog");
    };
    assert_eq!(r.candidates.len(), n);
    assert!(r.candidates.iter().any(|c| c.shown == "libc-2.12.so"));
    st.act(Action::Cancel);
    assert!(st.app.dialog.is_none());
    // The same from the doctor view and the details window; ? toggles.
    st.act(Action::Doctor);
    st.act(Action::ToggleHelp);
    st.act(Action::ToggleHelp);
    assert!(matches!(st.app.dialog, Some(Dialog::Doctor(_))));
    st.act(Action::ToggleHelp);
    st.act(Action::Cancel);
    assert!(matches!(st.app.dialog, Some(Dialog::Doctor(_))));
    st.act(Action::Cancel);
    st.act(Action::ShowDetails);
    st.act(Action::ToggleHelp);
    st.act(Action::Cancel);
    assert!(matches!(st.app.dialog, Some(Dialog::Details { .. })));
    st.act(Action::Cancel);
    assert!(st.app.dialog.is_none());
}

#[test]
fn a_snapshot_is_named_and_copied_to_its_own_folder() {
    let st = story(120, 40);
    let config = vmrescue::tui::AppConfig {
        snapshot: Some("before-upgrade".into()),
        ..Default::default()
    };
    let mut app = vmrescue::tui::App::new(Arc::clone(&st.app.layout), config);
    app.resize(120, 40);
    app.start();
    st.jobs.run_inline(&mut app);
    assert_eq!(app.image, "vm-108-disk-1.raw@before-upgrade");
    let status = vmrescue::tui::views::status::status_text(&app);
    assert!(
        status.contains("vm-108-disk-1.raw@before-upgrade")
            && status.contains("guest@before-upgrade:/")
            && status.contains("on vg_ta/lv_root"),
        "{status}"
    );
    assert_eq!(
        app.default_dest(&[lv_root(&app)]),
        "./rescued/vm-108-disk-1@before-upgrade/vg_ta_lv_root/"
    );
    // On screen: the tree's disk, the file list's title, the status bar.
    let screen = render(&app);
    assert!(
        screen.contains("▼ vm-108-disk-1.raw@before-upgrade"),
        "{screen}"
    );
    assert!(screen.contains("┌ guest@before-upgrade:/ "), "{screen}");
    // The live disk's folder is another one.
    assert_eq!(
        st.app.default_dest(&[lv_root(&st.app)]),
        "./rescued/vm-108-disk-1/vg_ta_lv_root/"
    );
}

#[test]
fn names_that_exist_in_the_destination_skip_overwrite_or_go_to_a_new_folder() {
    use vmrescue::tui::dialogs::IfExists;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("messages"), b"older copy").unwrap();
    let copy = |choice: IfExists| {
        let mut st = story(120, 40);
        st.cd("/var/log");
        st.select("messages");
        st.act(Action::CopyMarked);
        for c in dest.display().to_string().chars() {
            st.act(Action::Insert(c));
        }
        let setup = |st: &tui_support::Story| match &st.app.dialog {
            Some(Dialog::CopySetup(c)) => (
                c.dest.text.clone(),
                c.dest_entries,
                c.new_folder.clone(),
                c.if_exists,
            ),
            _ => panic!("copy dialog"),
        };
        let (text, entries, new_folder, _) = setup(&st);
        assert_eq!(text, dest.display().to_string(), "/ replaced the default");
        assert_eq!(entries, 1);
        assert!(
            new_folder.starts_with(&format!("{}-", dest.display()))
                && !Path::new(&new_folder).exists(),
            "{new_folder}"
        );
        for _ in 0..3 {
            if setup(&st).3 == choice {
                break;
            }
            st.act(Action::CycleExisting);
        }
        let screen = render(&st.app);
        assert!(screen.contains("holds 1 entry already"), "{screen}");
        st.act(Action::Confirm);
        let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
            panic!("summary");
        };
        summary.clone()
    };
    // A file that differs is kept and listed as a conflict (`cp --skip-existing`).
    let s = copy(IfExists::Skip);
    assert_eq!(s.failed.len(), 1, "{s:?}");
    assert_eq!(std::fs::read(dest.join("messages")).unwrap(), b"older copy");
    let s = copy(IfExists::NewFolder);
    assert!(s.skipped.is_empty() && s.failed.is_empty(), "{s:?}");
    assert_eq!(std::fs::read(dest.join("messages")).unwrap(), b"older copy");
    assert!(out.path().join("d-2/messages").is_file());
    let s = copy(IfExists::Overwrite);
    assert!(s.skipped.is_empty() && s.failed.is_empty(), "{s:?}");
    assert_ne!(std::fs::read(dest.join("messages")).unwrap(), b"older copy");
}

#[test]
fn messages_go_with_the_next_action_or_after_a_while() {
    let mut st = story(120, 40);
    st.act(Action::MarkAll);
    assert!(message(&st).contains("marked"), "{}", message(&st));
    st.act(Action::MoveDown);
    assert!(st.app.message.is_none(), "the next action clears it");
    st.act(Action::MarkAll);
    let t = st.app.message.as_ref().unwrap().since;
    st.app.tick(t + std::time::Duration::from_secs(2));
    assert!(st.app.message.is_some());
    st.app
        .tick(t + std::time::Duration::from_secs(vmrescue::tui::app::MESSAGE_SECONDS));
    assert!(st.app.message.is_none(), "it expired");
    // An error stays until the next key.
    st.select_layer("lv_swap");
    st.act(Action::Open);
    let t = st.app.message.as_ref().unwrap().since;
    st.app.tick(t + std::time::Duration::from_secs(60));
    assert!(st.app.message.as_ref().is_some_and(|m| m.error));
}

#[test]
fn details_name_the_owner_as_ls_does() {
    let mut st = story(120, 40);
    let mut fs = tui_support::centos_root();
    fs.file(
        "/etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\nmysql:x:27:27:MySQL Server:/var/lib/mysql:/bin/bash\n",
        tui_support::T2013,
    );
    fs.file(
        "/etc/group",
        b"root:x:0:\nmysql:x:27:\n",
        tui_support::T2013,
    );
    let ino = fs.file("/var/lib/mysql/owned", b"x", tui_support::T2013);
    fs.set_owner(ino, 27, 500);
    swap_root(&mut st, Arc::new(fs));
    st.act(Action::Redraw);
    st.cd("/var/lib/mysql");
    st.select("owned");
    st.act(Action::ShowDetails);
    let text: Vec<String> = match &st.app.dialog {
        Some(Dialog::Details {
            details: Some(d), ..
        }) => vmrescue::tui::views::details::details_lines(d)
            .iter()
            .map(|l| l.to_string())
            .collect(),
        _ => panic!("details"),
    };
    assert!(
        text.iter().any(|l| l.ends_with("uid 27 (mysql) gid 500")),
        "{text:?}"
    );
}

#[test]
fn text_fields_edit_like_a_shell() {
    let mut st = story(120, 40);
    st.cd("/lib64");
    st.app.key(key(KeyCode::Char('/'), KeyModifiers::NONE));
    for c in "libc so".chars() {
        st.app.key(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let filter = |st: &tui_support::Story| st.app.pane().unwrap().filter.clone();
    st.app.key(ctrl('w'));
    assert_eq!(filter(&st).text, "libc ");
    st.app.key(ctrl('a'));
    assert_eq!(filter(&st).cursor, 0);
    st.app.key(key(KeyCode::Char('x'), KeyModifiers::NONE));
    st.app.key(ctrl('e'));
    assert_eq!(
        (filter(&st).text.as_str(), filter(&st).cursor),
        ("xlibc ", 6)
    );
    st.app.key(key(KeyCode::Home, KeyModifiers::NONE));
    st.app.key(key(KeyCode::End, KeyModifiers::NONE));
    st.app.key(key(KeyCode::Left, KeyModifiers::NONE));
    st.app.key(ctrl('u'));
    assert_eq!((filter(&st).text.as_str(), filter(&st).cursor), (" ", 0));
    st.app.key(key(KeyCode::Esc, KeyModifiers::NONE));
    // The copy destination: Ctrl-W takes off the last folder, and a `/`
    // typed over the untouched default starts a new path (on lv_root on its
    // own, whose files go in a folder of its own).
    st.select_layer("lv_root");
    st.act(Action::Open);
    st.cd("/lib64");
    st.select("libc-2.12.so");
    st.act(Action::CopyMarked);
    let dest = |st: &tui_support::Story| match &st.app.dialog {
        Some(Dialog::CopySetup(c)) => c.dest.text.clone(),
        _ => panic!("copy dialog"),
    };
    assert_eq!(dest(&st), "./rescued/vm-108-disk-1/vg_ta_lv_root/");
    st.app.key(ctrl('w'));
    assert_eq!(dest(&st), "./rescued/vm-108-disk-1/");
    st.app.key(key(KeyCode::Char('/'), KeyModifiers::NONE));
    assert_eq!(dest(&st), "./rescued/vm-108-disk-1//", "edited: / is typed");
    st.app.key(key(KeyCode::Esc, KeyModifiers::NONE));
    st.act(Action::CopyMarked);
    for c in "/srv/x".chars() {
        st.app.key(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    assert_eq!(dest(&st), "/srv/x");
    st.app.key(ctrl('a'));
    st.app.key(key(KeyCode::Char('~'), KeyModifiers::NONE));
    assert_eq!(dest(&st), "~/srv/x");
}

#[test]
fn a_name_holding_a_slash_is_shown_escaped() {
    let mut st = story(120, 40);
    let mut fs = tui_support::centos_root();
    let ino = fs.file("/tmp/plain", b"x", tui_support::T2013);
    fs.raw_entry(b"/tmp", b"../../escape", ino);
    swap_root(&mut st, Arc::new(fs));
    st.act(Action::Redraw);
    st.cd("/tmp");
    st.select(r"..\x2f..\x2fescape");
    st.act(Action::ShowDetails);
    let Some(Dialog::Details { title, .. }) = &st.app.dialog else {
        panic!("details");
    };
    assert_eq!(title, r"/tmp/..\x2f..\x2fescape");
}

#[test]
fn an_image_that_keeps_changing_is_read_again_every_few_seconds() {
    use std::time::{Duration, Instant, SystemTime};
    let mut st = story(120, 40);
    st.cd("/lib64");
    let image = st.app.layout.disks[0]
        .origin
        .host_path()
        .unwrap()
        .to_path_buf();
    let touch = |secs: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(secs))
            .unwrap();
    };
    let t0 = Instant::now();
    touch(5);
    assert!(
        st.app.check_images_at(t0),
        "a first change holds the key back"
    );
    st.jobs.run_inline(&mut st.app);
    assert!(message(&st).contains("changed on disk"), "{}", message(&st));
    // It changes again a second later: not read again yet, and keys work.
    touch(10);
    assert!(!st.app.check_images_at(t0 + Duration::from_secs(1)));
    assert!(st.app.pane().unwrap().loaded);
    let before = st.app.pane().unwrap().selected;
    st.app.key(key(KeyCode::Down, KeyModifiers::NONE));
    assert_eq!(st.app.pane().unwrap().selected, before + 1);
    // A few seconds on, it is read again, and the status says it is busy.
    st.app.tick(t0 + Duration::from_secs(6));
    st.jobs.run_inline(&mut st.app);
    assert!(message(&st).contains("keeps changing"), "{}", message(&st));
    assert_eq!(st.path(), "/lib64");
}

#[test]
fn a_destination_that_cannot_take_files_is_refused_before_the_copy_starts() {
    let mut st = story(120, 40);
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a folder would have to be: no user, root
    // included, can create files below it.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    st.cd("/etc");
    st.select("fstab");
    st.act(Action::CopyMarked);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = vmrescue::tui::text_field::TextField::new(&file.join("sub").display().to_string());
    }
    st.act(Action::Confirm);
    assert!(st.app.copy.is_none(), "no copy started");
    assert!(
        matches!(st.app.dialog, Some(Dialog::CopySetup(_))),
        "the dialog stays open for another folder"
    );
    let m = st.app.message.as_ref().expect("a message");
    assert!(m.error, "an error: {}", m.text);
    assert!(
        m.text.contains("cannot copy there") && m.text.contains("not-a-folder"),
        "{}",
        m.text
    );
    // Another folder then works.
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = vmrescue::tui::text_field::TextField::new(&dir.path().display().to_string());
    }
    st.act(Action::Confirm);
    assert!(matches!(st.app.dialog, Some(Dialog::Summary { .. })));
    assert!(!std::fs::read(dir.path().join("fstab")).unwrap().is_empty());
}

/// The copy dialog into a folder that fills up (a 64 KiB tmpfs) while a
/// folder of 60 small files and the 10 MiB (512 KiB of data) ibdata1 are
/// written: the summary counts and names every file that did not fit,
/// with the host's reason; none of them is left in the destination, under
/// its name or a temporary one; the files that fit are whole. Before, the
/// dialog says the plan is larger than the space there, and the first
/// Enter only warns.
#[test]
fn a_destination_that_fills_up_names_each_file_that_did_not_fit() {
    crate::common::require_root("mounting a small tmpfs as the destination");
    let mut fs = tui_support::centos_root();
    fs.dir("/srv", tui_support::T2013);
    fs.dir("/srv/d", tui_support::T2013);
    let body = |i: u8| -> Vec<u8> { (0..3000u32).map(|j| (j as u8) ^ i).collect() };
    for i in 0..60u8 {
        fs.file(format!("/srv/d/f{i:02}"), &body(i), tui_support::T2013);
    }
    fs.file(
        "/srv/d/ibdata1",
        &tui_support::centos_root().contents(b"/var/lib/mysql/ibdata1"),
        tui_support::T2013,
    );
    let mut opener = MemOpener::story();
    opener.map.insert("vg_ta/lv_root".into(), Arc::new(fs));
    let mut st = tui_support::story_with(opener, 120, 40);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let _mount = crate::loop_support::Tmpfs::mount(&dest, "64k");
    st.cd("/srv");
    st.select("d");
    st.act(Action::CopyMarked);
    // Typed, as the operator would: the dialog looks at the folder.
    for _ in 0..100 {
        st.act(Action::DeleteBack);
    }
    for ch in dest.display().to_string().chars() {
        st.act(Action::Insert(ch));
    }
    // The plan is larger than the space there: the dialog says so, and the
    // first Enter only warns.
    let screen = tui_support::screen(&st.app);
    assert!(
        screen.contains("more than the 64 KiB free there"),
        "{screen}"
    );
    st.act(Action::Confirm);
    assert!(matches!(st.app.dialog, Some(Dialog::CopySetup(_))));
    assert!(st.app.copy.is_none());
    assert!(
        message(&st).starts_with("64 KiB free there, the copy needs up to 10.2 MiB")
            && message(&st).ends_with("Enter again copies what fits"),
        "{}",
        message(&st)
    );
    // Enter again copies what fits.
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary: {:?}", st.app.dialog.is_some());
    };
    let summary = summary.clone();
    assert!(!summary.cancelled);
    assert!(summary.files > 0, "{summary:#?}");
    assert_eq!(summary.files + summary.failed_count, 61, "{summary:#?}");
    assert_eq!(summary.failed.len() as u64, summary.failed_count);
    let failed: Vec<&str> = summary
        .failed
        .iter()
        .map(|(p, why)| {
            assert!(why.contains("No space left on device"), "{p}: {why}");
            p.strip_prefix("/srv/d/").expect("a file of /srv/d")
        })
        .collect();
    assert!(failed.contains(&"ibdata1"), "{failed:?}");
    let made = read_tree(&dest.join("d"));
    assert_eq!(made.len() as u64, summary.files, "{made:?}");
    for name in &made {
        assert!(!failed.contains(&name.as_str()), "{name} failed but exists");
        let i: u8 = name
            .strip_prefix('f')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: not a source file (a temporary name?)"));
        assert_eq!(std::fs::read(dest.join("d").join(name)).unwrap(), body(i));
    }
    assert_eq!(
        message(&st),
        format!(
            "copy finished, {} items failed; see the summary",
            summary.failed_count
        )
    );
    let screen = tui_support::screen(&st.app);
    assert!(
        screen.contains(&format!("Failed ({}):", summary.failed_count))
            && screen.contains("No space left on device"),
        "{screen}"
    );
}

/// The story's root volume as a tree of its own.
fn lv_root(app: &vmrescue::tui::App) -> vmrescue::tui::tree::Tree {
    let v = app.layout.find_volume("vg_ta/lv_root").unwrap();
    vmrescue::tui::tree::Tree::Volume(v)
}
