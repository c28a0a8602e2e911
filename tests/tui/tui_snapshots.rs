//! Snapshots of the screen (ratatui `TestBackend` + insta) at 80×24 and
//! 120×40: the main screen on `/lib64` with the flagged `libc.so.6`, the copy
//! dialog, the progress gauge, the help overlay, a hostile directory.
//! Deterministic: times are shown in UTC, the image path is a file name, and
//! the copy progress is set by hand.

use crate::tui_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use tui_support::{Story, story};
use vmrescue::tui::Action;
use vmrescue::tui::copier::CopyProgress;
use vmrescue::tui::dialogs::CopyJob;
use vmrescue::tui::views;
use vmrescue::tui::views::layout::Screen;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn render(st: &Story) -> String {
    let (w, h) = st.app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| views::draw(f, &st.app)).unwrap();
    term.backend().to_string()
}

fn at_libc(w: u16, h: u16) -> Story {
    let mut st = story(w, h);
    st.cd("/lib64");
    st.select("libc.so.6");
    st
}

#[test]
fn main_screen_on_lib64() {
    for (w, h) in SIZES {
        let st = at_libc(w, h);
        let screen = render(&st);
        assert!(
            screen.contains("! libc.so.6 → /opt/g")
                && (w < 100 || screen.contains("libc.so.6 → /opt/glibc…/libc.so.6")),
            "{screen}"
        );
        assert!(screen.contains("the target is glibc 2.14"), "{screen}");
        insta::assert_snapshot!(format!("main_lib64_{w}x{h}"), screen);
    }
}

#[test]
fn copy_dialog() {
    for (w, h) in SIZES {
        let mut st = story(w, h);
        st.cd("/var/lib/mysql");
        st.act(Action::MarkAll);
        st.act(Action::CopyMarked);
        let screen = render(&st);
        // From the guest's tree: the files go where the guest has them.
        assert!(screen.contains("./rescued/vm-108-disk-1/"));
        insta::assert_snapshot!(format!("copy_dialog_{w}x{h}"), screen);
    }
}

#[test]
fn progress_gauge() {
    for (w, h) in SIZES {
        let mut st = story(w, h);
        st.cd("/var/lib/mysql");
        st.app.copy = Some(CopyJob {
            progress: CopyProgress {
                bytes_done: 6 << 20,
                bytes_total: 10 << 20,
                files_done: 1,
                files_total: 4,
                current: "/var/lib/mysql/ibdata1".into(),
                elapsed: Duration::from_secs(3),
            },
            cancel: Arc::new(AtomicBool::new(false)),
            dest: PathBuf::from("./rescued/vm-108-disk-1/vg_ta_lv_root/"),
            hidden: false,
            cancelling: false,
        });
        let screen = render(&st);
        assert!(screen.contains("60%"));
        assert!(screen.contains("2 MiB/s"));
        insta::assert_snapshot!(format!("progress_{w}x{h}"), screen);
    }
}

#[test]
fn help_overlay() {
    for (w, h) in SIZES {
        let mut st = story(w, h);
        st.act(Action::ToggleHelp);
        let screen = render(&st);
        for key in ["PgDn", "Backspace", "Space Insert"] {
            assert!(screen.contains(key), "{key} listed");
        }
        insta::assert_snapshot!(format!("help_{w}x{h}"), screen);
    }
}

#[test]
fn help_lists_every_binding() {
    let keymap = vmrescue::tui::keymap::Keymap::builtin();
    let text: String = views::help::help_lines(&keymap)
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    for b in &keymap.bindings {
        for k in &b.keys {
            assert!(text.contains(&k.to_string()), "{k} in the help");
        }
    }
    for key in ["F5", "F10", "Ctrl-C", "Esc", "?"] {
        assert!(text.contains(key), "{key}");
    }
}

#[test]
fn hostile_names_are_drawn_escaped() {
    let mut st = story(120, 40);
    st.cd("/tmp");
    let screen = render(&st);
    assert!(screen.contains(r"\x1b[2J\x1b[31mred"), "{screen}");
    assert!(screen.contains(r"title\x1b]0;pwned\x07"));
    assert!(screen.contains(r"bell\x07\x9b1m"));
    assert!(!screen.chars().any(|c| c.is_control() && c != '\n'));
    insta::assert_snapshot!("hostile_tmp_120x40", screen);
}

#[test]
fn header_shows_journal_replay_and_checksum_problems() {
    for (status, expect) in [
        (
            vmrescue::fs::FsStatus {
                notes: vec!["journal replayed in memory: 3 transactions".into()],
                ..Default::default()
            },
            "journal replayed in memory: 3 transactions",
        ),
        (
            vmrescue::fs::FsStatus {
                notes: vec!["journal replayed in memory: 3 transactions".into()],
                problems: vec![
                    "block group 3: descriptor checksum mismatch".into(),
                    "inode 12: checksum mismatch".into(),
                ],
                ..Default::default()
            },
            // In the guest's tree, a problem names its volume.
            "2 filesystem problems, first: vg_ta/lv_root: block group 3: descriptor checksum mismatch",
        ),
    ] {
        let mut st = story(120, 40);
        let mut fs = tui_support::centos_root();
        fs.set_status(status);
        let mut opener = tui_support::MemOpener::story();
        opener.map.insert("vg_ta/lv_root".into(), Arc::new(fs));
        st.jobs.opener = Arc::new(opener);
        st.app.fss.clear();
        let v = st.app.pane().unwrap().tree;
        st.app.open_tree(v);
        st.jobs.run_inline(&mut st.app);
        let screen = render(&st);
        let header = screen.lines().next().unwrap();
        assert!(header.contains(expect), "{header}");
    }
}

/// The README's key table, made from `assets/keymap.txt` (a change to the
/// keymap shows up here, so the README can be updated with it).
#[test]
fn keymap_table_for_the_readme() {
    let table = vmrescue::tui::keymap::Keymap::builtin().markdown();
    assert!(table.contains("| `c` `F5` | Copy the marked files"));
    insta::assert_snapshot!("keymap_markdown", table);
}

/// The sizes an operator's terminal may have, small to large.
const ALL_SIZES: [(u16, u16); 4] = [(40, 15), (60, 20), (80, 24), (200, 50)];

/// The rows of the file list on screen (between the pane's borders).
fn file_rows(screen: &str, w: u16) -> Vec<String> {
    let left = usize::from(Screen::new(Rect::new(0, 0, w, 24)).files.x);
    screen
        .lines()
        .map(|l| l.trim_matches('"').chars().skip(left).collect::<String>())
        .collect()
}

#[test]
fn narrow_and_wide_terminals_keep_names_and_whole_numbers() {
    for (w, h) in ALL_SIZES {
        let mut st = at_libc(w, h);
        st.select("libpthread-2.12.so");
        let screen = render(&st);
        let rows = file_rows(&screen, w).join("\n");
        // The name column is always there.
        assert!(rows.contains("Name"), "{w}x{h}:\n{screen}");
        assert!(rows.contains("libc.so.6"), "{w}x{h}:\n{screen}");
        // A long name is cut in the middle, never at its end only.
        assert!(
            rows.contains("libpthread-2.12.so") || rows.contains('…'),
            "{w}x{h}:\n{screen}"
        );
        // A size is shown whole or not at all: never "0.0 KiB" for 210.0 KiB.
        for (whole, size) in [("151.0 KiB", "ld-2.12.so"), ("582.3 KiB", "libm-2.12.so")] {
            let line = rows.lines().find(|l| l.contains(size)).unwrap_or("");
            assert!(
                !rows.contains("Size") || line.contains(whole),
                "{w}x{h} {size}: {line}\n{screen}"
            );
        }
        if w >= 60 {
            assert!(rows.contains("Size"), "{w}x{h}: sizes fit from 60 columns");
        }
        if w >= 80 {
            // The layer pane keeps the guest root's badge and mountpoints.
            let tree: String = screen
                .lines()
                .filter(|l| l.contains("lv_root") || l.contains("lv_home"))
                .collect();
            assert!(tree.contains(" / (root)"), "{w}x{h}:\n{screen}");
            assert!(tree.contains(" /home"), "{w}x{h}:\n{screen}");
        }
        if w >= 200 {
            assert!(rows.contains("Mode") && rows.contains("Modified (UTC)"));
            assert!(rows.contains("libc.so.6 → /opt/glibc-2.14/lib/libc.so.6"));
        }
        insta::assert_snapshot!(format!("main_lib64_any_{w}x{h}"), screen);
    }
}

#[test]
fn a_long_name_is_cut_in_the_middle() {
    let mut st = story(60, 20);
    let mut fs = tui_support::centos_root();
    fs.file(
        "/tmp/mysql-backup-2013-02-22-before-the-upgrade.sql.gz",
        b"x",
        tui_support::T2013,
    );
    let mut opener = tui_support::MemOpener::story();
    opener.map.insert("vg_ta/lv_root".into(), Arc::new(fs));
    st.jobs.opener = Arc::new(opener);
    st.act(Action::Redraw);
    st.cd("/tmp");
    st.select("mysql-backup-2013-02-22-before-the-upgrade.sql.gz");
    let screen = render(&st);
    assert!(screen.contains("mysql-ba…e.sql.gz"), "{screen}");
    insta::assert_snapshot!("long_name_60x20", screen);
}

/// Every size from a sliver to a wide terminal draws without a panic, with
/// each kind of window open.
#[test]
fn any_size_draws() {
    let mut st = at_libc(80, 24);
    let setups: [&[Action]; 4] = [
        &[],
        &[Action::ToggleHelp],
        &[Action::RestoreSymlink, Action::ToggleHelp],
        &[Action::CopyMarked],
    ];
    for acts in setups {
        st.app.dialog = None;
        st.app.under.clear();
        for a in acts {
            st.act(*a);
        }
        for w in (1..=130)
            .step_by(7)
            .chain([2, 3, 39, 41, 49, 50, 51, 59, 61])
        {
            for h in [1, 2, 3, 5, 8, 13, 15, 24, 41] {
                st.app.resize(w, h);
                let screen = render(&st);
                assert_eq!(screen.lines().count(), usize::from(h));
            }
        }
    }
}
