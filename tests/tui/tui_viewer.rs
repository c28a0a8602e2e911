//! The file viewer in the TUI, driven through `App::update` with its jobs
//! run in place: Enter, `F3` and `v` open it on a file, `/` searches, `n`
//! and `N` go on, `g`/`G`, wrap and hex, a gzip'd log shown decompressed,
//! Esc stops a search then closes. The guest's root is a host folder
//! holding files made by the real tools; screens are snapshotted at 80×24
//! and at an odd 41×13.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::tui_support::{MemOpener, Story, story_with};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vmrescue::fs::FsView;
use vmrescue::fs::host::HostFs;
use vmrescue::ops::pager::Mode;
use vmrescue::tui::dialogs::{Dialog, ViewerDialog};
use vmrescue::tui::{Action, views};

/// 300 lines of a syslog-like log.
fn messages() -> String {
    (1..=300)
        .map(|i| {
            let what = if i % 100 == 42 {
                "EXT4-fs error (device dm-0): bad block bitmap"
            } else {
                "systemd[1]: Started Session of user root."
            };
            format!("Dec  2 08:{:02}:{:02} guest {what} #{i}\n", i / 60, i % 60)
        })
        .collect()
}

/// The guest: `/var/log/messages`, its gzip'd rotation, a binary, a link.
fn guest(root: &Path) {
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("var/log/messages"), messages()).unwrap();
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(root.join("var/log/messages"))
        .output()
        .unwrap();
    assert!(gz.status.success());
    std::fs::write(root.join("var/log/messages-20261201.gz"), gz.stdout).unwrap();
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.extend((0..=255u8).cycle().take(2000));
    std::fs::write(root.join("bin/tool"), elf).unwrap();
    std::os::unix::fs::symlink("/var/log/messages", root.join("var/log/syslog")).unwrap();
}

/// The story's layout with a host folder as the root volume.
fn viewer_story(w: u16, h: u16) -> (Story, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    guest(root.path());
    let mut map: HashMap<String, Arc<dyn FsView>> = HashMap::new();
    map.insert(
        "vg_ta/lv_root".into(),
        Arc::new(HostFs::open(root.path()).unwrap()),
    );
    (story_with(MemOpener { map }, w, h), root)
}

fn viewer(st: &Story) -> &ViewerDialog {
    match &st.app.dialog {
        Some(Dialog::Viewer(v)) => v,
        _ => panic!("the viewer is not shown"),
    }
}

fn texts(st: &Story) -> Vec<String> {
    viewer(st).rows.iter().map(|r| r.text.clone()).collect()
}

fn render(st: &Story) -> String {
    let (w, h) = st.app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| views::draw(f, &st.app)).unwrap();
    term.backend().to_string()
}

fn key(st: &mut Story, code: KeyCode) {
    st.app.key(KeyEvent::new(code, KeyModifiers::NONE));
    st.jobs.run_inline(&mut st.app);
}

fn type_text(st: &mut Story, s: &str) {
    for c in s.chars() {
        key(st, KeyCode::Char(c));
    }
}

fn open_messages(w: u16, h: u16) -> (Story, tempfile::TempDir) {
    let (mut st, root) = viewer_story(w, h);
    st.cd("/var/log");
    st.select("messages");
    key(&mut st, KeyCode::Enter);
    (st, root)
}

#[test]
fn enter_on_a_file_opens_the_viewer_with_numbered_lines() {
    let (st, _root) = open_messages(80, 24);
    let v = viewer(&st);
    assert_eq!(v.title, "/var/log/messages");
    assert_eq!(v.rows.len(), 22);
    assert_eq!(v.rows[0].number, Some(1));
    assert_eq!(
        v.rows[0].text,
        "Dec  2 08:00:01 guest systemd[1]: Started Session of user root. #1"
    );
    assert_eq!(v.rows[21].number, Some(22));
    let screen = render(&st);
    assert!(screen.contains("line 1  text"), "{screen}");
    insta::assert_snapshot!("viewer_messages_80x24", screen);
}

#[test]
fn an_odd_small_terminal_still_shows_the_file_and_its_position() {
    let (mut st, _root) = open_messages(41, 13);
    key(&mut st, KeyCode::Char('G'));
    let screen = render(&st);
    assert!(screen.contains("#300"), "{screen}");
    assert!(screen.contains("100%"), "{screen}");
    insta::assert_snapshot!("viewer_end_41x13", screen);
}

#[test]
fn search_next_previous_and_not_found() {
    let (mut st, _root) = open_messages(80, 24);
    key(&mut st, KeyCode::Char('/'));
    type_text(&mut st, "EXT4-fs error");
    assert!(render(&st).contains("/EXT4-fs error"));
    key(&mut st, KeyCode::Enter);
    let v = viewer(&st);
    assert!(v.search.is_none(), "the search ran in place");
    assert_eq!(v.rows[0].number, Some(42), "{:?}", v.rows[0]);
    assert!(v.rows[0].hit);
    assert!(v.rows[0].text.ends_with("bad block bitmap #42"));
    key(&mut st, KeyCode::Char('n'));
    assert_eq!(viewer(&st).rows[0].number, Some(142));
    key(&mut st, KeyCode::Char('n'));
    assert_eq!(viewer(&st).rows[0].number, Some(242));
    key(&mut st, KeyCode::Char('n'));
    assert_eq!(
        viewer(&st).message.as_deref(),
        Some("not found below: EXT4-fs error")
    );
    assert!(render(&st).contains("not found below: EXT4-fs error"));
    key(&mut st, KeyCode::Char('N'));
    assert_eq!(viewer(&st).rows[0].number, Some(142));
    key(&mut st, KeyCode::Char('g'));
    assert_eq!(viewer(&st).rows[0].number, Some(1));
}

#[test]
fn esc_stops_a_running_search_then_closes_the_viewer() {
    let (mut st, _root) = open_messages(80, 24);
    key(&mut st, KeyCode::Char('/'));
    type_text(&mut st, "absent");
    // Enter starts the search; Esc arrives before its job runs.
    st.app
        .key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(viewer(&st).search.is_some());
    st.app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    st.jobs.run_inline(&mut st.app);
    assert_eq!(viewer(&st).message.as_deref(), Some("search stopped"));
    key(&mut st, KeyCode::Esc);
    assert!(st.app.dialog.is_none());
    assert_eq!(st.current(), "messages");
}

#[test]
fn f3_and_v_open_the_viewer_i_shows_details_q_closes() {
    let (mut st, _root) = viewer_story(80, 24);
    st.cd("/var/log");
    st.select("syslog");
    key(&mut st, KeyCode::F(3));
    // The symlink was followed inside the guest.
    assert_eq!(viewer(&st).title, "/var/log/messages");
    key(&mut st, KeyCode::Char('q'));
    assert!(st.app.dialog.is_none());
    key(&mut st, KeyCode::Char('v'));
    assert!(matches!(st.app.dialog, Some(Dialog::Viewer(_))));
    key(&mut st, KeyCode::F(3));
    assert!(st.app.dialog.is_none());
    key(&mut st, KeyCode::Char('i'));
    assert!(matches!(st.app.dialog, Some(Dialog::Details { .. })));
    key(&mut st, KeyCode::Esc);
    // A folder is not viewed.
    st.act(Action::Back);
    st.select("log");
    key(&mut st, KeyCode::Char('v'));
    assert!(st.app.dialog.is_none());
    let msg = st.app.message.as_ref().map(|m| m.text.clone());
    assert_eq!(
        msg.as_deref(),
        Some("the viewer shows files: select one in the file list")
    );
}

#[test]
fn a_gzipped_log_is_shown_decompressed_wrap_and_hex_toggle() {
    let (mut st, _root) = viewer_story(80, 24);
    st.cd("/var/log");
    st.select("messages-20261201.gz");
    key(&mut st, KeyCode::Enter);
    assert!(texts(&st)[0].ends_with("#1"));
    let screen = render(&st);
    assert!(screen.contains("text, from gz"), "{screen}");
    key(&mut st, KeyCode::Char('G'));
    assert_eq!(viewer(&st).rows[21].number, Some(300));
    key(&mut st, KeyCode::Char('x'));
    let v = viewer(&st);
    assert_eq!(v.pager.as_ref().unwrap().mode, Mode::Hex);
    // The same place, in hex: the row holding the first byte shown before.
    let top = v.pager.as_ref().unwrap().top();
    assert!(top > 0 && top.is_multiple_of(16));
    assert!(
        v.rows[0].text.starts_with(&format!("{top:08x}  ")),
        "{:?}",
        v.rows[0]
    );
    key(&mut st, KeyCode::Char('x'));
    key(&mut st, KeyCode::Char('w'));
    assert!(render(&st).contains("no wrap"));
}

#[test]
fn a_binary_opens_in_hex() {
    let (mut st, _root) = viewer_story(80, 24);
    st.cd("/bin");
    st.select("tool");
    key(&mut st, KeyCode::Enter);
    let v = viewer(&st);
    assert_eq!(v.pager.as_ref().unwrap().mode, Mode::Hex);
    assert_eq!(
        v.rows[0].text,
        "00000000  7f 45 4c 46 02 01 01 00 00 01 02 03 04 05 06 07  .ELF............"
    );
    insta::assert_snapshot!("viewer_hex_80x24", render(&st));
}
