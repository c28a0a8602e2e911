//! The browser's fixes of December 2026, each against the behaviour it replaces:
//! "skip it" in the copy dialog is `cp --skip-existing`; problems found
//! while browsing reach the header.

use crate::common;
use crate::tui_support;

use tui_support::story;
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::text_field::TextField;

/// Copy the selected entry into `dest` with the dialog's default answer to
/// names that exist; the summary.
fn copy_into(
    st: &mut tui_support::Story,
    dest: &std::path::Path,
) -> vmrescue::tui::copier::CopySummary {
    st.act(Action::CopyMarked);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = TextField::new(&dest.display().to_string());
    }
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("no summary: {:?}", st.app.message);
    };
    let s = summary.clone();
    st.act(Action::Cancel);
    s
}

/// A rerun into the same folder counts what is there and the same as
/// unchanged (not skipped), and lists a file that differs as a conflict,
/// the way `cp --skip-existing` does.
#[test]
fn skip_existing_in_the_browser_is_skip_same() {
    let mut st = story(120, 40);
    let out = tempfile::tempdir().unwrap();
    st.cd("/var/lib");
    st.select("mysql");
    let first = copy_into(&mut st, out.path());
    assert_eq!((first.files, first.unchanged), (4, 0));
    let again = copy_into(&mut st, out.path());
    assert_eq!(
        (again.files, again.unchanged),
        (0, 5),
        "4 files and the symlink"
    );
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    let lines: Vec<String> = vmrescue::tui::views::summary::summary_lines(&again)
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        lines.contains(&"5 files were already there and the same (left alone).".to_string()),
        "{lines:?}"
    );
    // A file changed on the host since is kept and named.
    std::fs::write(out.path().join("mysql/ib_logfile0"), b"other").unwrap();
    let third = copy_into(&mut st, out.path());
    assert_eq!(third.unchanged, 4);
    assert_eq!(third.failed.len(), 1, "{:?}", third.failed);
    let (path, why) = &third.failed[0];
    assert_eq!(path, "/var/lib/mysql/ib_logfile0");
    assert!(why.contains("already exists and differs"), "{why}");
    assert!(
        why.ends_with("(choose \"overwrite it\" to replace it)"),
        "{why}"
    );
}

/// An app over the image file at `path` (read by the userspace engine),
/// with its first filesystem open.
fn app_on(path: &std::path::Path) -> (vmrescue::tui::App, vmrescue::tui::jobs::Jobs) {
    let img = vmrescue::image::open(path).unwrap();
    let layout = std::sync::Arc::new(vmrescue::layers::scan(vec![img]));
    let jobs = vmrescue::tui::jobs::Jobs {
        layout: std::sync::Arc::clone(&layout),
        opener: std::sync::Arc::new(vmrescue::engine::userspace::Userspace::default()),
        copier: std::sync::Arc::new(vmrescue::tui::copier::JobCopier),
    };
    let mut app = vmrescue::tui::App::new(layout, vmrescue::tui::AppConfig::default());
    app.resize(120, 30);
    app.start();
    jobs.run_inline(&mut app);
    (app, jobs)
}

/// The screen as text.
fn render(app: &vmrescue::tui::App) -> String {
    let (w, h) = app.size;
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| vmrescue::tui::views::draw(f, app)).unwrap();
    term.backend().to_string()
}

/// Open the entry named `name` in the folder shown.
fn open_entry(app: &mut vmrescue::tui::App, jobs: &vmrescue::tui::jobs::Jobs, name: &str) {
    select_entry(app, jobs, name);
    app.update(&Action::Open);
    jobs.run_inline(app);
}

/// The ext filesystem of the image at `path` (the journal replayed), the
/// node of guest path `file` and the block its first data run starts at.
fn first_block(
    image: &std::path::Path,
    file: &[u8],
) -> (vmrescue::fs::ext::Ext, vmrescue::fs::NodeId, u64) {
    use vmrescue::fs::ext::{Ext, RunKind};
    let fs = Ext::open(
        vmrescue::image::open(image).unwrap().source,
        &vmrescue::fs::FsOptions::default(),
    )
    .unwrap();
    let node = vmrescue::fs::path::resolve(&fs, file, false).unwrap().node;
    let inode = fs.read_inode(node.0 as u32).unwrap();
    let RunKind::Data(block) = fs.runs(&inode).unwrap()[0].kind else {
        panic!("{}: no data run", String::from_utf8_lossy(file));
    };
    (fs, node, block)
}

/// A bad directory-block checksum met while browsing (not at open) reaches
/// the header, as the filesystem's problem log has it.
#[test]
fn problems_found_while_browsing_reach_the_header() {
    use vmrescue::fs::FsView;
    let fixture = common::fixture("ext-ext4-4k");
    let (clean, dir, block) = first_block(&fixture, b"/dir");
    assert!(clean.status().problems.is_empty());
    let mut bytes = std::fs::read(&fixture).unwrap();
    let at = block as usize * 4096;
    let off = bytes[at..at + 4096]
        .windows(8)
        .position(|w| w == b"hardlink")
        .unwrap();
    bytes[at + off] = b'H';
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("damaged.img");
    std::fs::write(&path, &bytes).unwrap();
    // Opening the filesystem finds nothing: the damage is met by reading /dir.
    let (opened, _, _) = first_block(&path, b"/dir");
    assert!(opened.status().problems.is_empty());
    let (mut app, jobs) = app_on(&path);
    open_entry(&mut app, &jobs, "dir");
    let problems = &app.fs_status().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(
        text.contains(&format!("ext directory block of inode {}", dir.0))
            && text.contains("checksum mismatch"),
        "{text}"
    );
    let screen = render(&app);
    let header = screen.lines().next().unwrap();
    assert!(header.contains("checksum mismatch"), "{screen}");
}

/// Run `program ARGS`, which must succeed.
fn run(program: &str, args: &[&str]) {
    let o = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The bytes of `path` in the filesystem the app shows now.
fn read_shown(app: &vmrescue::tui::App, path: &[u8]) -> Vec<u8> {
    let tree = app.pane().expect("browsing").tree;
    let fs = app.fs(tree).expect("open");
    let node = vmrescue::fs::path::resolve(&**fs, path, true).unwrap().node;
    let size = fs.metadata(node).unwrap().size;
    let mut buf = vec![0u8; size as usize];
    fs.read_at(node, 0, &mut buf).unwrap();
    buf
}

/// A qcow2 image whose mapping changes under the browser (a cluster that
/// read as zeros is allocated and written by qemu-io): once the change is
/// noticed and read again, the new bytes are read, not the zeros of a
/// stale L2 table.
#[test]
fn a_reload_reads_a_qcow2_mapping_changed_under_the_browser() {
    use vmrescue::fs::FsView;
    let tmp = tempfile::tempdir().unwrap();
    let raw = common::fixture("ext-ext4-4k");
    let (clean, hello, block) = first_block(&raw, b"/hello.txt");
    let size = clean.metadata(hello).unwrap().size as usize;
    assert!(size > 0 && size <= 4096);
    let q = tmp.path().join("disk.qcow2");
    let qs = q.to_str().unwrap();
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=4096",
            raw.to_str().unwrap(),
            qs,
        ],
    );
    let at = (block * 4096).to_string();
    // The file's cluster unmapped: it reads as zeros.
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", &format!("discard {at} 4096"), qs],
    );
    let (mut app, jobs) = app_on(&q);
    assert_eq!(read_shown(&app, b"/hello.txt"), vec![0u8; size]);
    // Mapped again, to new bytes, by another program.
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", &format!("write -P 0x5a {at} 4096"), qs],
    );
    assert!(app.check_images(), "the change is noticed");
    jobs.run_inline(&mut app);
    assert!(
        app.message.as_ref().is_some_and(|m| !m.error),
        "{:?}",
        app.message
    );
    assert_eq!(read_shown(&app, b"/hello.txt"), vec![0x5au8; size]);
}

/// The restore dialog on a volume the kernel engine serves (a whole-disk
/// ext4, which needs no device-mapper): the plan is the kernel applier's,
/// the question says the volume is mounted read-write by the kernel, `y`
/// writes through that mount with the same undo record as `relink --engine
/// kernel`, and the folder is listed again with the new target.
#[test]
fn the_restore_dialog_relinks_through_the_kernel_engine() {
    use vmrescue::engine::{EngineChoice, Engines};
    use vmrescue::repair::relink::Applier;
    common::require_root("the kernel engine mounts a loop device");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for d in ["lib64", "opt/glibc-2.14/lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("lib64/libc-2.12.so"),
        tui_support::tiny_elf("libc.so.6"),
    )
    .unwrap();
    std::fs::write(
        root.join("opt/glibc-2.14/lib/libc-2.14.so"),
        tui_support::tiny_elf("libc.so.6"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/opt/glibc-2.14/lib/libc-2.14.so",
        root.join("lib64/libc.so.6"),
    )
    .unwrap();
    let image = tmp.path().join("fs.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run(
        "mke2fs",
        &[
            "-q",
            "-F",
            "-t",
            "ext4",
            "-d",
            root.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
    );
    let undo_dir = tmp.path().join("undo");
    let layout = std::sync::Arc::new(vmrescue::layers::scan(vec![
        vmrescue::image::open(&image).unwrap(),
    ]));
    let engines = std::sync::Arc::new(Engines::new(EngineChoice::Kernel));
    let jobs = vmrescue::tui::jobs::Jobs {
        layout: std::sync::Arc::clone(&layout),
        opener: engines.clone(),
        copier: std::sync::Arc::new(vmrescue::tui::copier::JobCopier),
    };
    let config = vmrescue::tui::AppConfig {
        engine: "kernel".into(),
        undo_dir: undo_dir.clone(),
        pve_root: tmp.path().join("no-pve"),
        ..vmrescue::tui::AppConfig::default()
    };
    let mut app = vmrescue::tui::App::new(layout, config);
    app.resize(120, 40);
    app.start();
    jobs.run_inline(&mut app);
    assert!(
        app.fs_status().is_some_and(|s| s
            .notes
            .iter()
            .any(|n| n.contains("mounted by the kernel engine"))),
        "{:?} {:?}",
        app.fs_status(),
        app.message
    );
    open_entry(&mut app, &jobs, "lib64");
    select_entry(&mut app, &jobs, "libc.so.6");
    app.update(&Action::RestoreSymlink);
    jobs.run_inline(&mut app);
    let Some(Dialog::Restore(r)) = &app.dialog else {
        panic!("restore dialog: {:?}", app.message);
    };
    let plan = r
        .plan
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", r.plan_error));
    assert_eq!(plan.applier, Applier::Kernel);
    assert_eq!(plan.new_target, b"libc-2.12.so");
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    app.update(&Action::Confirm);
    let Some(Dialog::Confirm(c)) = &app.dialog else {
        panic!("the question: {:?}", app.message);
    };
    let question = c.lines.join("\n");
    assert!(
        question.contains("disk0 is mounted READ-WRITE by the kernel engine"),
        "{question}"
    );
    assert!(question.contains("undo file first"), "{question}");
    app.update(&Action::Confirm);
    jobs.run_inline(&mut app);
    let msg = app.message.clone().expect("a message");
    assert!(
        !msg.error
            && msg
                .text
                .starts_with("relinked /lib64/libc.so.6 → libc-2.12.so"),
        "{msg:?}"
    );
    let undo: Vec<_> = std::fs::read_dir(&undo_dir).unwrap().flatten().collect();
    assert_eq!(undo.len(), 1);
    let record = vmrescue::repair::undo::load_record(&undo[0].path()).unwrap();
    assert!(
        matches!(record, vmrescue::repair::undo::UndoRecord::Symlink { .. }),
        "{record:?}"
    );
    // Listed again, through a new read-only mount, with the new target.
    let entry = app
        .pane()
        .and_then(|p| p.entries.iter().find(|e| e.name == b"libc.so.6"))
        .expect("listed again");
    assert_eq!(entry.target.as_deref(), Some(&b"libc-2.12.so"[..]));
    drop(app);
    drop(jobs);
    assert!(engines.close().is_empty());
    let loops = std::process::Command::new("losetup")
        .arg("-j")
        .arg(&image)
        .output()
        .unwrap();
    assert!(loops.stdout.is_empty(), "left attached: {loops:?}");
    run("e2fsck", &["-fn", image.to_str().unwrap()]);
    let fs = vmrescue::fs::ext::Ext::open(
        vmrescue::image::open(&image).unwrap().source,
        &vmrescue::fs::FsOptions::default(),
    )
    .unwrap();
    let node = vmrescue::fs::path::resolve(&fs, b"/lib64/libc.so.6", false)
        .unwrap()
        .node;
    use vmrescue::fs::FsView;
    assert_eq!(fs.read_link(node).unwrap(), b"libc-2.12.so");
}

/// Select the entry named `name` in the folder shown (without opening it).
fn select_entry(app: &mut vmrescue::tui::App, jobs: &vmrescue::tui::jobs::Jobs, name: &str) {
    app.focus = vmrescue::tui::app::Focus::Files;
    app.update(&Action::Home);
    for _ in 0..200 {
        if app
            .pane()
            .and_then(|p| p.current())
            .is_some_and(|e| e.shown == name)
        {
            return;
        }
        app.update(&Action::MoveDown);
        jobs.run_inline(app);
    }
    panic!("{name} not listed");
}

/// The story's filesystems, as if the kernel engine served them but could
/// not start its session.
struct KernelCannotStart(tui_support::MemOpener);

impl vmrescue::engine::VolumeOpener for KernelCannotStart {
    fn engine(&self) -> String {
        "kernel".into()
    }
    fn open(
        &self,
        layout: &vmrescue::layers::Layout,
        id: vmrescue::layers::VolumeId,
    ) -> Result<std::sync::Arc<dyn vmrescue::fs::FsView>, String> {
        self.0.open(layout, id)
    }
    fn kernel_session(
        &self,
        _layout: &vmrescue::layers::Layout,
        _id: vmrescue::layers::VolumeId,
    ) -> Option<Result<std::sync::Arc<vmrescue::engine::kernel::Session>, String>> {
        Some(Err("/dev/loop-control is missing".into()))
    }
}

/// Where the kernel engine serves a volume, the restore dialog plans with
/// it and nothing else: when its session cannot start, the plan says why
/// (it never falls back to writing in place under a kernel mount).
#[test]
fn a_volume_the_kernel_engine_serves_is_never_planned_in_place() {
    let mut st = story(120, 40);
    st.jobs.opener = std::sync::Arc::new(KernelCannotStart(tui_support::MemOpener::story()));
    st.cd("/lib64");
    st.select("libc.so.6");
    st.act(Action::RestoreSymlink);
    let Some(Dialog::Restore(r)) = &st.app.dialog else {
        panic!("restore dialog: {:?}", st.app.message);
    };
    assert!(r.plan.is_none(), "{:?}", r.plan.as_ref().map(|p| p.applier));
    assert_eq!(
        r.plan_error.as_deref(),
        Some("vg_ta/lv_root: starting the kernel engine: /dev/loop-control is missing")
    );
    st.act(Action::Confirm);
    assert!(!matches!(st.app.dialog, Some(Dialog::Confirm(_))));
}

/// The restore dialog on a link in a btrfs subvolume outside the default
/// one (the `btrfs-relink` fixture with its default set to `root`, as
/// openSUSE boots from a snapshot, and a link added in `home`), through the
/// kernel engine: the guest path is located in that subvolume, the plan is
/// made and written through a read-write mount of it, with an undo record
/// naming the subvolume, and the kernel reads the new target.
#[test]
fn the_restore_dialog_relinks_in_a_btrfs_subvolume_outside_the_default_one() {
    use vmrescue::engine::{EngineChoice, Engines};
    use vmrescue::repair::relink::Applier;
    common::require_root("the kernel engine mounts a loop device");
    let tmp = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("btrfs-relink", tmp.path());
    let elf = tmp.path().join("libfoo.so.2.0");
    std::fs::write(&elf, tui_support::tiny_elf("libfoo.so.2")).unwrap();
    run(
        "sh",
        &[
            "-euc",
            "m=$(mktemp -d); mount -t btrfs -o loop \"$1\" \"$m\"; \
             mkdir -p \"$m/home/user/lib\"; cp \"$2\" \"$m/home/user/lib/\"; \
             ln -s libfoo.so.1.0 \"$m/home/user/lib/libfoo.so.2\"; \
             id=$(btrfs inspect-internal rootid \"$m/root\"); \
             btrfs subvolume set-default \"$id\" \"$m\"; umount \"$m\"; rmdir \"$m\"",
            "sh",
            image.to_str().unwrap(),
            elf.to_str().unwrap(),
        ],
    );
    let undo_dir = tmp.path().join("undo");
    let mut layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
    let engines = std::sync::Arc::new(Engines::new(EngineChoice::Kernel));
    // The guest's root and mounts, found as the command line finds them.
    let found = vmrescue::layers::inspect::inspect(&layout, &|id| {
        engines
            .userspace()
            .open_fs(&layout, id, &vmrescue::fs::FsOptions::default())
    });
    layout.apply_inspection(&found);
    let layout = std::sync::Arc::new(layout);
    let jobs = vmrescue::tui::jobs::Jobs {
        layout: std::sync::Arc::clone(&layout),
        opener: engines.clone(),
        copier: std::sync::Arc::new(vmrescue::tui::copier::JobCopier),
    };
    let config = vmrescue::tui::AppConfig {
        engine: "kernel".into(),
        undo_dir: undo_dir.clone(),
        pve_root: tmp.path().join("no-pve"),
        ..vmrescue::tui::AppConfig::default()
    };
    let mut app = vmrescue::tui::App::new(layout, config);
    app.resize(120, 40);
    app.start();
    jobs.run_inline(&mut app);
    assert!(app.pane().expect("a tree").tree.is_guest());
    for d in ["home", "user", "lib"] {
        open_entry(&mut app, &jobs, d);
    }
    select_entry(&mut app, &jobs, "libfoo.so.2");
    app.update(&Action::RestoreSymlink);
    jobs.run_inline(&mut app);
    let Some(Dialog::Restore(r)) = &app.dialog else {
        panic!("restore dialog: {:?}", app.message);
    };
    assert!(
        r.subvolume.is_some(),
        "home lies outside the default subvolume"
    );
    assert_eq!(r.link, b"/user/lib/libfoo.so.2");
    let plan = r
        .plan
        .as_ref()
        .unwrap_or_else(|| panic!("{:?} {:?}", r.plan_error, r.analysis_error));
    assert_eq!(plan.applier, Applier::Kernel);
    assert_eq!(plan.subvolume, r.subvolume);
    assert_eq!(plan.volume, "disk0@/home");
    assert_eq!(plan.new_target, b"libfoo.so.2.0");
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    app.update(&Action::Confirm);
    let Some(Dialog::Confirm(_)) = &app.dialog else {
        panic!("the question: {:?}", app.message);
    };
    app.update(&Action::Confirm);
    jobs.run_inline(&mut app);
    let msg = app.message.clone().expect("a message");
    assert!(!msg.error, "{msg:?}");
    let undo: Vec<_> = std::fs::read_dir(&undo_dir).unwrap().flatten().collect();
    assert_eq!(undo.len(), 1);
    let record = vmrescue::repair::undo::load_record(&undo[0].path()).unwrap();
    assert!(
        matches!(
            record,
            vmrescue::repair::undo::UndoRecord::Symlink {
                subvolume: Some(_),
                ..
            }
        ),
        "{record:?}"
    );
    drop(app);
    drop(jobs);
    assert!(engines.close().is_empty());
    let mnt = tempfile::tempdir().unwrap();
    run(
        "mount",
        &[
            "-t",
            "btrfs",
            "-o",
            "ro,loop,subvol=home",
            image.to_str().unwrap(),
            mnt.path().to_str().unwrap(),
        ],
    );
    let target = std::fs::read_link(mnt.path().join("user/lib/libfoo.so.2"));
    run("umount", &[mnt.path().to_str().unwrap()]);
    assert_eq!(target.unwrap(), std::path::Path::new("libfoo.so.2.0"));
    run("btrfs", &["check", "--readonly", image.to_str().unwrap()]);
}
