//! End-to-end tests in real pseudo-terminals (expectrl + vt100, 80×24).
//!
//! * The `vmrescue` binary on a partitioned image made with sfdisk/sgdisk:
//!   the layer tree, keys, help, quitting; a GPT partition name full of
//!   escape sequences is drawn escaped and never reaches the terminal;
//!   without a terminal it refuses with exit code 2.
//! * `vmrescue --demo`: navigate with keys to `guest:/var/lib/mysql`,
//!   mark everything, copy to a temp dir, quit; the copy is compared with
//!   what `debugfs rdump` takes out of the same filesystem, and the terminal
//!   must be restored (alternate screen left, cursor shown, echo back on).
//! * A Windows guest image (`windows.sh`): drive letters at the top of the
//!   guest's tree, `C:/Users/Administrator/Documents` copied out and
//!   compared with what ntfs-3g reads.
//! * A copy of 60,000 small files (mke2fs -d) stopped with Esc and `y`: the
//!   summary counts exactly the files left, each whole, none hidden.
//! * The same flow on an in-memory story guest run as a child in the pty
//!   (this test binary is its own child), and SIGTERM and panics restore the
//!   terminal.
//!
//! This file has its own `main` (no libtest harness) so the binary can be
//! its own child: with `VMRESCUE_TUI_CHILD` set it runs the TUI instead.

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

mod common;
mod image_support;
mod pty_support;
mod tui_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use expectrl::process::unix::{Signal, WaitStatus};
use pty_support::{DOWN, ENTER, ESC, Pty, bin};
use vmrescue::fs::FsView;
use vmrescue::tui::copier::JobCopier;
use vmrescue::tui::{AppConfig, Options};

// ----- the vmrescue binary -----

fn binary_on_a_partitioned_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = tui_support::make_story_image(dir.path());
    let mut pty = Pty::spawn(&bin(), &[image.to_str().unwrap()], &[], dir.path());
    pty.wait_for("vm-108-disk-1.raw");
    pty.wait_for("p2 6.3 GiB");
    // No filesystem to open yet: the layers pane has the keys.
    pty.send(DOWN);
    pty.send(ENTER);
    pty.wait_for("p1 holds");
    pty.send("i");
    pty.wait_for("Partition: Linux");
    pty.wait_for("(sector 63)");
    pty.send(ESC);
    pty.send("?");
    pty.wait_for("Keys");
    pty.wait_for("Next row");
    pty.send(ESC);
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}

/// With `NO_COLOR` set the browser draws no colour (bold and reverse stay:
/// the status bar and the cursor row are still seen); without it, colours.
fn no_color_turns_the_colours_off() {
    let dir = tempfile::tempdir().unwrap();
    for (envs, colour) in [(&[][..], true), (&[("NO_COLOR", "1")][..], false)] {
        let mut pty = Pty::spawn(&bin(), &["--demo"], envs, dir.path());
        pty.wait_listed("guest:/ ");
        let screen = pty.parser.screen();
        let (rows, cols) = screen.size();
        let mut coloured = 0;
        let mut inverse = 0;
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                let cell = screen.cell(r, c).unwrap();
                if cell.fgcolor() != vt100::Color::Default
                    || cell.bgcolor() != vt100::Color::Default
                {
                    coloured += 1;
                }
                if cell.inverse() {
                    inverse += 1;
                }
            }
        }
        assert_eq!(coloured > 0, colour, "{envs:?}: {coloured} coloured cells");
        assert!(
            inverse > 0,
            "{envs:?}: the cursor row and status bar are reversed"
        );
        pty.send("q");
        let st = pty.wait_exit();
        assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    }
}

fn hostile_partition_name_does_not_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("hostile.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let name = "\x1b]0;pwned\x07\x1b[2J\x1b[31mX";
    let st = Command::new("sgdisk")
        .arg("-n")
        .arg("1:2048:+8M")
        .arg("-c")
        .arg(format!("1:{name}"))
        .arg(&image)
        .output()
        .expect("run sgdisk (Debian package gdisk)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut pty = Pty::spawn(&bin(), &[image.to_str().unwrap()], &[], dir.path());
    pty.wait_for("hostile.img");
    pty.send(DOWN);
    pty.send("i");
    pty.wait_for(r"\x1b]0;pwned\x07\x1b[2J\x1b[31mX");
    let spy = pty.parser.callbacks();
    assert_eq!(spy.bells, 0, "no bell");
    assert_eq!(spy.titles, 0, "no window title set");
    assert_eq!(spy.osc, 0, "no OSC sequence");
    pty.send(ESC);
    pty.send("q");
    pty.wait_exit();
    pty.assert_restored();
}

fn without_a_terminal_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let image = tui_support::make_story_image(dir.path());
    let out = Command::new(bin()).arg(&image).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a terminal"), "{err}");
    assert!(out.stdout.is_empty());
}

// ----- the TUI on the story's guest (this binary as the child) -----

fn child() {
    let dir = PathBuf::from(std::env::var("VMRESCUE_TUI_DIR").expect("dir"));
    let mode = std::env::var("VMRESCUE_TUI_CHILD").unwrap_or_default();
    let image = tui_support::make_story_image(&dir);
    let layout = Arc::new(tui_support::story_layout(&image));
    let mut opener = tui_support::MemOpener::story();
    match mode.as_str() {
        "panic-ui" => {
            opener.map.insert(
                "vg_ta/lv_root".into(),
                Arc::new(Panicky { in_status: true }),
            );
        }
        "panic-job" => {
            opener.map.insert(
                "vg_ta/lv_root".into(),
                Arc::new(Panicky { in_status: false }),
            );
        }
        _ => {}
    }
    // A panic on the UI thread: the volume on its own (the guest's tree
    // asks its volumes for their status on a job thread).
    let config = AppConfig {
        volume: (mode == "panic-ui").then(|| "vg_ta/lv_root".to_string()),
        ..AppConfig::default()
    };
    let opts = Options {
        layout,
        config,
        opener: Arc::new(opener),
        copier: Arc::new(JobCopier),
    };
    let code = match vmrescue::tui::run(opts) {
        Ok(None) => 0,
        Ok(Some(sig)) => 128 + sig,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    };
    std::process::exit(code);
}

/// A filesystem that panics: in `status()` (read on the UI thread) or in
/// `read_dir()` (on a job thread).
struct Panicky {
    in_status: bool,
}

impl FsView for Panicky {
    fn status(&self) -> vmrescue::fs::FsStatus {
        assert!(!self.in_status, "status() exploded");
        Default::default()
    }
    fn root(&self) -> vmrescue::fs::NodeId {
        vmrescue::fs::NodeId(2)
    }
    fn metadata(&self, node: vmrescue::fs::NodeId) -> vmrescue::Result<vmrescue::fs::Metadata> {
        tui_support::centos_home().metadata(node)
    }
    fn read_dir(&self, _: vmrescue::fs::NodeId) -> vmrescue::Result<Vec<vmrescue::fs::DirEntry>> {
        panic!("read_dir exploded")
    }
    fn read_link(&self, _: vmrescue::fs::NodeId) -> vmrescue::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn read_at(&self, _: vmrescue::fs::NodeId, _: u64, _: &mut [u8]) -> vmrescue::Result<usize> {
        Ok(0)
    }
    fn extents(&self, _: vmrescue::fs::NodeId) -> vmrescue::Result<Vec<vmrescue::fs::FileExtent>> {
        Ok(Vec::new())
    }
    fn xattrs(&self, _: vmrescue::fs::NodeId) -> vmrescue::Result<Vec<vmrescue::fs::Xattr>> {
        Ok(Vec::new())
    }
}

fn spawn_child(mode: &str, dir: &Path) -> Pty {
    let me = std::env::current_exe().unwrap();
    Pty::spawn(
        &me,
        &[],
        &[
            ("VMRESCUE_TUI_CHILD", mode),
            ("VMRESCUE_TUI_DIR", dir.to_str().unwrap()),
        ],
        dir,
    )
}

/// Type a filter and open the match: `/name` Enter Enter.
fn open_by_filter(pty: &mut Pty, name: &str, path_after: &str) {
    pty.send("/");
    for c in name.chars() {
        pty.send(&c.to_string());
    }
    pty.send(ENTER);
    pty.send(ENTER);
    pty.wait_listed(path_after);
}

/// F5 copies what is marked to the default destination (the dialog shows
/// each of `shown` first), the copy finishes with nothing skipped, quit:
/// the terminal is restored.
fn copy_marked_and_quit(pty: &mut Pty, shown: &[&str]) {
    pty.send("\x1b[15~");
    pty.wait_for("Copy out of the image");
    for s in shown {
        pty.wait_for(s);
    }
    pty.send(ENTER);
    pty.wait_for("Copy finished");
    pty.wait_for("Nothing was skipped and nothing failed.");
    pty.send(ESC);
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}

/// From the guest root: go to `/var/lib/mysql` by typing filters, mark
/// `ib_logfile0` and `ibdata1`, copy them with F5 to the default destination
/// (under the current directory), quit; returns the destination folder.
fn copy_flow(pty: &mut Pty, dir: &Path) -> PathBuf {
    pty.wait_listed("guest:/ ");
    open_by_filter(pty, "var", "guest:/var ");
    open_by_filter(pty, "lib", "guest:/var/lib ");
    open_by_filter(pty, "mysql", "guest:/var/lib/mysql ");
    pty.wait_for("ibdata1");
    // Mark the two data files with Space (which moves down), from the top.
    pty.send("g");
    pty.send(DOWN);
    pty.send(DOWN);
    pty.send(" ");
    pty.send(" ");
    pty.wait_for("marked 2 (10.0 MiB)");
    // F5 copies them to the default destination under the current directory.
    copy_marked_and_quit(pty, &["./rescued/vm-108-disk-1/", "2 files (10.0 MiB)"]);
    dir.join("rescued/vm-108-disk-1")
}

fn story_copy_out_of_var_lib_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = spawn_child("story", dir.path());
    let out = copy_flow(&mut pty, dir.path());
    let fs = tui_support::centos_root();
    for name in ["ibdata1", "ib_logfile0"] {
        let guest = format!("/var/lib/mysql/{name}");
        let got = std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == fs.contents(guest.as_bytes()), "{name} differs");
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["ib_logfile0", "ibdata1"]);
}

/// `vmrescue --demo` as the operator would: the guest root opens, type
/// filters down to `/var/lib/mysql`, `a` marks everything there, F5 copies
/// it to the default destination, quit. The copy must equal what debugfs
/// (`rdump`, a real tool) takes out of the same filesystem, holes kept.
fn demo_copy_out_of_var_lib_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(&bin(), &["--demo"], &[], dir.path());
    pty.wait_listed("guest:/ ");
    open_by_filter(&mut pty, "var", "guest:/var ");
    open_by_filter(&mut pty, "lib", "guest:/var/lib ");
    open_by_filter(&mut pty, "mysql", "guest:/var/lib/mysql ");
    pty.wait_for("ibdata1");
    pty.send("a");
    pty.wait_for("marked 6");
    copy_marked_and_quit(&mut pty, &["./rescued/vm-108-disk-1/"]);
    let out = dir.path().join("rescued/vm-108-disk-1");

    // The reference: debugfs rdump of /var/lib/mysql from lv_root of the demo
    // disk (the fixture is built by the same script as the bundled demo).
    let lv = image_support::volume_file(&common::fixture("demo"), "vg_ta/lv_root", dir.path());
    let reference = image_support::rdump(&lv, "/var/lib/mysql", &dir.path().join("reference"));
    assert_eq!(
        image_support::tree_digest(&out),
        image_support::tree_digest(&reference)
    );
    // ibdata1 is a 256 MiB file with little data: it stays sparse.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(out.join("ibdata1")).unwrap();
    assert_eq!(m.len(), 256 << 20);
    assert!(
        m.blocks() * 512 < 8 << 20,
        "ibdata1 lost its holes: {} blocks",
        m.blocks()
    );
}

/// A Windows guest (`windows.sh`): the guest's tree has its drive letters
/// at the top; type filters down to `C:\\Users\\Administrator\\Documents`,
/// `a` marks everything there, F5 copies it, quit. The copy must hold the
/// bytes ntfs-3g reads (`windows-c.sha256`).
fn windows_copy_out_of_users() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture("windows");
    let mut pty = Pty::spawn(&bin(), &[image.to_str().unwrap()], &[], dir.path());
    pty.wait_listed("guest:/ ");
    pty.wait_for("C:");
    pty.wait_for("D:");
    open_by_filter(&mut pty, "C:", "guest:/C: ");
    open_by_filter(&mut pty, "Users", "guest:/C:/Users ");
    open_by_filter(&mut pty, "Administrator", "guest:/C:/Users/Administrator ");
    open_by_filter(
        &mut pty,
        "Documents",
        "guest:/C:/Users/Administrator/Documents ",
    );
    pty.wait_for("notes.txt");
    pty.send("a");
    pty.wait_for("marked 2");
    copy_marked_and_quit(&mut pty, &["./rescued/windows/"]);
    let out = dir.path().join("rescued/windows");
    let sums = std::fs::read_to_string(common::fixture_file("windows-c.sha256")).unwrap();
    let mut checked = 0;
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let Some(rest) = path.strip_prefix("/Users/Administrator/Documents/") else {
            continue;
        };
        assert_eq!(image_support::sha256_file(&out.join(rest)), sum, "{rest}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// Stopping a copy of many small files from the browser, as the operator
/// would (`a` marks all, `c`, Enter, Esc, `y`), while the writer threads
/// hold files: the summary says it was cancelled, and what it counts is
/// exactly what is in the destination, every file whole and equal to the
/// source, no half-written or hidden file left.
fn cancelling_a_copy_of_many_small_files() {
    let dir = tempfile::tempdir().unwrap();
    // 60 folders of 1,000 files of 512 B to 3 KiB, made by mke2fs -d.
    let tree = dir.path().join("tree");
    for d in 0..60u32 {
        let sub = tree.join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..1000u32 {
            let n = 512 + ((d * 1000 + f) * 7919 % 2560) as usize;
            let data: Vec<u8> = (0..n).map(|i| ((d + f) as usize + i) as u8).collect();
            std::fs::write(sub.join(format!("f{f:04}")), data).unwrap();
        }
    }
    let image = dir.path().join("many.img");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("384M")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mke2fs (e2fsprogs) runs");
    assert!(st.success(), "mke2fs -d: {st}");
    let mut pty = Pty::spawn(&bin(), &[image.to_str().unwrap()], &[], dir.path());
    pty.wait_listed("disk0:/ ");
    pty.wait_for("d00/");
    pty.send("a");
    // The 60 folders and lost+found.
    pty.wait_for("marked 61");
    pty.send("c");
    pty.wait_for("60000 files");
    pty.send(ENTER);
    pty.wait_for("Copying to ./rescued/many/disk0/");
    pty.send(ESC);
    pty.wait_for("Stop the copy?");
    pty.send("y");
    pty.wait_for("Cancelled.");
    // "N files (..." on the summary.
    let screen = pty.screen();
    let copied: u64 = screen
        .lines()
        .find_map(|l| {
            let l = l.trim_start_matches(|c: char| !c.is_ascii_digit());
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with("files (").then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no file count in the summary:\n{screen}"));
    pty.send(ESC);
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
    let out = dir.path().join("rescued/many/disk0");
    let mut files = 0u64;
    for e in walkdir::WalkDir::new(&out).min_depth(1) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "left behind: {}",
            e.path().display()
        );
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(&out).unwrap();
            let want = std::fs::read(tree.join(rel)).unwrap();
            assert!(
                std::fs::read(e.path()).unwrap() == want,
                "{} differs",
                rel.display()
            );
            files += 1;
        }
    }
    assert_eq!(files, copied, "the summary counts what is there");
    assert!(copied < 60_000, "the copy ended before it was cancelled");
    println!("(cancelled after {copied} of 60000 files) ");
}

fn sigterm_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = spawn_child("story", dir.path());
    pty.wait_listed("guest:/ ");
    // Resizing the terminal redraws at the new size (times appear at 120 columns).
    assert!(!pty.screen().contains("Modified (UTC)"));
    pty.session
        .get_process_mut()
        .set_window_size(120, 40)
        .unwrap();
    pty.parser
        .screen_mut()
        .set_size(40.try_into().unwrap(), 120.try_into().unwrap());
    pty.wait_for("Modified (UTC)");
    pty.wait_for("2013-02-22 10:15");
    pty.session.get_process_mut().kill(Signal::SIGTERM).unwrap();
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 143)), "{st:?}");
    pty.assert_restored();
}

fn a_panic_on_the_ui_thread_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = spawn_child("panic-ui", dir.path());
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 101)), "{st:?}");
    pty.assert_restored();
    assert!(
        pty.screen().contains("status() exploded"),
        "{}",
        pty.screen()
    );
}

fn a_panic_in_a_job_is_reported_and_the_ui_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = spawn_child("panic-job", dir.path());
    pty.wait_for("internal error (please report it): read_dir exploded");
    pty.send("?");
    pty.wait_for("Keys");
    pty.send(ESC);
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}

fn main() {
    if std::env::var_os("VMRESCUE_TUI_CHILD").is_some() {
        child();
        return;
    }
    let tests: &[(&str, fn())] = &[
        (
            "binary_on_a_partitioned_image",
            binary_on_a_partitioned_image,
        ),
        (
            "hostile_partition_name_does_not_reach_the_terminal",
            hostile_partition_name_does_not_reach_the_terminal,
        ),
        (
            "without_a_terminal_it_refuses",
            without_a_terminal_it_refuses,
        ),
        (
            "no_color_turns_the_colours_off",
            no_color_turns_the_colours_off,
        ),
        (
            "story_copy_out_of_var_lib_mysql",
            story_copy_out_of_var_lib_mysql,
        ),
        (
            "demo_copy_out_of_var_lib_mysql",
            demo_copy_out_of_var_lib_mysql,
        ),
        ("windows_copy_out_of_users", windows_copy_out_of_users),
        (
            "cancelling_a_copy_of_many_small_files",
            cancelling_a_copy_of_many_small_files,
        ),
        (
            "sigterm_restores_the_terminal",
            sigterm_restores_the_terminal,
        ),
        (
            "a_panic_on_the_ui_thread_restores_the_terminal",
            a_panic_on_the_ui_thread_restores_the_terminal,
        ),
        (
            "a_panic_in_a_job_is_reported_and_the_ui_goes_on",
            a_panic_in_a_job_is_reported_and_the_ui_goes_on,
        ),
    ];
    // Arguments other than options are name filters, as with libtest.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        print!("test {name} ... ");
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
