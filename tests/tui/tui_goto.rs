//! The browser's go-to prompt (`:`). On a Windows guest
//! (`tests/fixtures/make/windows.sh`) a path in Windows' spelling
//! (`C:\Users\...`, any case, either slash) goes where `vmrescue ls` goes
//! with it, through the one function every command reads guest paths with;
//! a path that is not there says so and leaves the pane where it was. On a
//! Linux guest, links are taken as `cd` and `ls` take them: a link to a
//! folder is entered, any other link is shown itself, in its own folder.
//! Driven by key presses over images read by the userspace engine.

use crate::common;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vmrescue::engine::userspace::Userspace;
use vmrescue::tui::event::Event;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::tree::Tree;
use vmrescue::tui::{App, AppConfig};

/// The app over the fixture's MBR disk, inspected as the commands inspect
/// it: the guest (C: and D:) open.
fn app() -> (App, Jobs) {
    app_over("windows")
}

/// The app over fixture `name`, its guest open.
fn app_over(name: &str) -> (App, Jobs) {
    let img = vmrescue::image::open(&common::fixture(name)).unwrap();
    let mut layout = vmrescue::layers::scan(vec![img]);
    let us = Userspace::default();
    let options = vmrescue::fs::FsOptions::default();
    let found =
        vmrescue::layers::inspect::inspect(&layout, &|id| us.open_fs(&layout, id, &options));
    layout.apply_inspection(&found);
    crate::tui_support::userspace_app(layout, AppConfig::default())
}

fn key(app: &mut App, jobs: &Jobs, code: KeyCode) {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    jobs.run_inline(app);
}

/// `:`, then `path` typed, then Enter.
fn go_to(app: &mut App, jobs: &Jobs, path: &str) {
    key(app, jobs, KeyCode::Char(':'));
    for c in path.chars() {
        key(app, jobs, KeyCode::Char(c));
    }
    key(app, jobs, KeyCode::Enter);
}

fn shown(app: &App) -> (String, String) {
    let p = app.pane().expect("a folder is shown");
    (
        String::from_utf8_lossy(&p.path).into_owned(),
        p.current().map(|e| e.shown.clone()).unwrap_or_default(),
    )
}

#[test]
fn go_to_takes_windows_paths_in_the_guest() {
    let (mut app, jobs) = app();
    assert!(matches!(app.pane().map(|p| p.tree), Some(Tree::Guest(_))));
    // The drive letters are folders of a made-up root, not mountpoints
    // missing from a Linux root: nothing to say about them on opening.
    let notes = app
        .fs_status()
        .map(|st| st.notes.clone())
        .unwrap_or_default();
    assert!(
        notes
            .iter()
            .all(|n| !n.contains("does not exist in the guest")),
        "{notes:?}"
    );
    // A folder, Windows' spelling: the pane lists it.
    go_to(&mut app, &jobs, r"C:\Users\Administrator\Documents");
    assert_eq!(shown(&app).0, "/C:/Users/Administrator/Documents");
    // A file, another case and the other slash: its folder, the cursor on it.
    go_to(&mut app, &jobs, "c:/users/administrator/desktop/größe.txt");
    assert_eq!(
        shown(&app),
        ("/C:/Users/Administrator/Desktop".into(), "Größe.txt".into())
    );
    // Another drive.
    go_to(&mut app, &jobs, r"D:\Backups\db");
    assert_eq!(shown(&app).0, "/D:/Backups/db");
    // The tree's own spelling still works, and a path from the folder shown.
    go_to(&mut app, &jobs, "/C:/Windows/System32");
    go_to(&mut app, &jobs, "drivers");
    assert_eq!(shown(&app).0, "/C:/Windows/System32/drivers");
    // Not there: said, and the pane stays.
    go_to(&mut app, &jobs, r"C:\Users\Nobody");
    assert_eq!(shown(&app).0, "/C:/Windows/System32/drivers");
    let said = app.message.as_ref().expect("a message");
    assert!(said.error, "{}", said.text);
    assert!(
        said.text.starts_with(r"Go to C:\Users\Nobody: ") && said.text.contains("not found"),
        "{}",
        said.text
    );
    // Esc leaves the prompt without going anywhere.
    key(&mut app, &jobs, KeyCode::Char(':'));
    key(&mut app, &jobs, KeyCode::Char('D'));
    key(&mut app, &jobs, KeyCode::Esc);
    assert!(app.pane().unwrap().goto.is_none());
    assert_eq!(shown(&app).0, "/C:/Windows/System32/drivers");
}

#[test]
fn go_to_a_link_shows_the_link_and_enters_a_linked_folder() {
    // Debian 12: `/lib` and `/lib64` are links to folders in `/usr`.
    let (mut app, jobs) = app_over("debian12");
    go_to(&mut app, &jobs, "/lib");
    assert_eq!(shown(&app).0, "/usr/lib");
    // A link to a file, reached through a linked folder: the link itself,
    // in the folder it is in, not its target.
    go_to(&mut app, &jobs, "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(
        shown(&app),
        ("/usr/lib64".into(), "ld-linux-x86-64.so.2".into())
    );
}
