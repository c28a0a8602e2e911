//! The TUI's find dialog (`Ctrl-F`, `F7`): fields, results streamed from the
//! walk job, "changed recently", Esc stopping a search, Enter jumping to the
//! file, and drawing at 80×24 and odd sizes. App-level: actions and keys
//! through `App::update`, jobs run in place.

use crate::tui_support;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_support::{T2024, story};
use vmrescue::fs::FileType;
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::dialogs::find::{FindDialog, Focus};

fn key(st: &mut tui_support::Story, code: KeyCode, mods: KeyModifiers) {
    st.app.key(KeyEvent::new(code, mods));
    st.jobs.run_inline(&mut st.app);
}

fn type_text(st: &mut tui_support::Story, text: &str) {
    for c in text.chars() {
        key(st, KeyCode::Char(c), KeyModifiers::NONE);
    }
}

fn dialog(st: &tui_support::Story) -> &FindDialog {
    match &st.app.dialog {
        Some(Dialog::Find(f)) => f,
        _ => panic!("the find dialog is open"),
    }
}

fn paths(st: &tui_support::Story) -> Vec<String> {
    dialog(st).results.iter().map(|h| h.shown.clone()).collect()
}

fn render(app: &vmrescue::tui::App) -> String {
    let (w, h) = app.size;
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| vmrescue::tui::views::draw(f, app)).unwrap();
    term.backend().to_string()
}

#[test]
fn ctrl_f_finds_by_name_and_enter_jumps_to_the_file() {
    let mut st = story(80, 24);
    key(&mut st, KeyCode::Char('f'), KeyModifiers::CONTROL);
    assert_eq!(dialog(&st).focus, Focus::Field(0));
    // Plain text matches anywhere in the name, in any case.
    type_text(&mut st, "LIBC.so");
    key(&mut st, KeyCode::Enter, KeyModifiers::NONE);
    let found = paths(&st);
    assert_eq!(
        found.iter().collect::<std::collections::BTreeSet<_>>(),
        ["/lib64/libc.so.6", "/opt/glibc-2.14/lib/libc.so.6"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter()
            .collect(),
        "{found:?}"
    );
    let search = dialog(&st).search.as_ref().unwrap();
    assert!(!search.running);
    assert!(search.counts.seen > 20, "{:?}", search.counts);
    let screen = render(&st.app);
    assert!(screen.contains("/opt/glibc-2.14/lib/libc.so.6"), "{screen}");
    assert!(screen.contains("2 found"), "{screen}");
    // Down through the fields into the results, to the glibc one, Enter.
    for _ in 0..4 {
        key(&mut st, KeyCode::Down, KeyModifiers::NONE);
    }
    assert_eq!(dialog(&st).focus, Focus::Results);
    let at = found.iter().position(|p| p.starts_with("/opt")).unwrap();
    for _ in 0..at {
        key(&mut st, KeyCode::Down, KeyModifiers::NONE);
    }
    key(&mut st, KeyCode::Enter, KeyModifiers::NONE);
    assert!(st.app.dialog.is_none(), "the dialog closed");
    assert_eq!(st.path(), "/opt/glibc-2.14/lib");
    assert_eq!(st.current(), "libc.so.6");
}

#[test]
fn f7_with_a_glob_type_and_size() {
    let mut st = story(120, 40);
    key(&mut st, KeyCode::F(7), KeyModifiers::NONE);
    type_text(&mut st, "lib*");
    key(&mut st, KeyCode::Tab, KeyModifiers::NONE);
    type_text(&mut st, "f");
    key(&mut st, KeyCode::Tab, KeyModifiers::NONE);
    type_text(&mut st, "+1M");
    key(&mut st, KeyCode::Enter, KeyModifiers::NONE);
    let d = dialog(&st);
    assert!(!d.results.is_empty());
    for h in &d.results {
        assert_eq!(h.file_type, FileType::Regular, "{}", h.shown);
        assert!(h.size.unwrap() > 1 << 20, "{}", h.shown);
        let name = h.shown.rsplit('/').next().unwrap();
        assert!(name.starts_with("lib"), "{}", h.shown);
    }
    assert!(paths(&st).contains(&"/opt/glibc-2.14/lib/libc.so.6".to_string()));
    // A size find cannot read: said, and nothing searched.
    key(&mut st, KeyCode::Char('x'), KeyModifiers::NONE);
    let req_before = d_req(&st);
    key(&mut st, KeyCode::Enter, KeyModifiers::NONE);
    let d = dialog(&st);
    assert!(
        d.error.as_deref().unwrap().contains("-size"),
        "{:?}",
        d.error
    );
    assert_eq!(d_req(&st), req_before, "no new search");
    assert!(render(&st.app).contains("invalid argument"));
}

fn d_req(st: &tui_support::Story) -> Option<u64> {
    dialog(st).search.as_ref().map(|s| s.req)
}

#[test]
fn ctrl_r_lists_the_newest_changes_newest_first() {
    let mut st = story(80, 24);
    key(&mut st, KeyCode::Char('f'), KeyModifiers::CONTROL);
    key(&mut st, KeyCode::Char('r'), KeyModifiers::CONTROL);
    let d = dialog(&st);
    let s = d.search.as_ref().unwrap();
    assert!(s.recent && !s.running);
    let times: Vec<i64> = d.results.iter().map(|h| h.mtime.unwrap().sec).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(times[0], T2024);
    let newest: Vec<&str> = d
        .results
        .iter()
        .take_while(|h| h.mtime.unwrap().sec == T2024)
        .map(|h| h.shown.as_str())
        .collect();
    assert!(newest.contains(&"/lib64/libc.so.6"), "{newest:?}");
    assert!(
        newest.contains(&"/opt/glibc-2.14/lib/libc.so.6"),
        "{newest:?}"
    );
    assert!(render(&st.app).contains("newest changes"));
    // The fields narrow it: only links.
    key(&mut st, KeyCode::Tab, KeyModifiers::NONE);
    type_text(&mut st, "l");
    key(&mut st, KeyCode::Char('r'), KeyModifiers::CONTROL);
    let d = dialog(&st);
    assert!(d.results.iter().all(|h| h.file_type == FileType::Symlink));
    assert_eq!(d.results[0].shown, "/lib64/libc.so.6");
}

#[test]
fn esc_stops_a_running_search_then_closes() {
    let mut st = story(80, 24);
    st.act(Action::Find);
    // Start without running the job: the search is under way.
    st.app.update(&Action::Confirm);
    let cancel = {
        let s = dialog(&st).search.as_ref().unwrap();
        assert!(s.running);
        s.cancel.clone()
    };
    assert!(render(&st.app).contains("searching"));
    st.app.update(&Action::Cancel);
    assert!(cancel.load(std::sync::atomic::Ordering::Relaxed));
    let s = dialog(&st).search.as_ref().unwrap();
    assert!(!s.running && s.cancelled);
    // The job sees the flag and ends at once; its last words are taken.
    st.jobs.run_inline(&mut st.app);
    assert!(dialog(&st).results.len() <= 1);
    assert!(render(&st.app).contains("stopped"));
    st.app.update(&Action::Cancel);
    assert!(st.app.dialog.is_none());
    // Closing the dialog stops its search too.
    st.act(Action::Find);
    st.app.update(&Action::Confirm);
    let cancel = dialog(&st).search.as_ref().unwrap().cancel.clone();
    st.app.update(&Action::Quit);
    assert!(cancel.load(std::sync::atomic::Ordering::Relaxed));
}

#[test]
fn draws_at_80x24_and_odd_sizes() {
    for (w, h) in [(80, 24), (200, 60), (41, 13), (20, 7), (7, 3)] {
        let mut st = story(w, h);
        st.act(Action::Find);
        type_text(&mut st, "lib");
        key(&mut st, KeyCode::Enter, KeyModifiers::NONE);
        for _ in 0..6 {
            key(&mut st, KeyCode::PageDown, KeyModifiers::NONE);
        }
        let screen = render(&st.app);
        if w >= 41 {
            assert!(screen.contains("Find in"), "{w}x{h}\n{screen}");
            let d = dialog(&st);
            assert_eq!(d.focus, Focus::Results);
            // The highlighted result is on screen.
            assert!(d.selected >= d.scroll, "{w}x{h}");
        }
    }
}

#[test]
fn needs_an_open_filesystem() {
    let mut st = story(80, 24);
    st.app.right = vmrescue::tui::app::Right::Empty;
    st.act(Action::Find);
    assert!(st.app.dialog.is_none());
    assert!(
        st.app
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("open a volume"))
    );
}
