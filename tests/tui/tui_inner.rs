//! Enter on a disk image stored as a file in the browsed filesystem opens
//! it as a disk (issue #13, "images inside filesystems"): the left pane
//! gets its layers under the volume holding the file, the right pane its
//! first filesystem; files that hold no disk open in the viewer as before.
//!
//! Over `tests/fixtures/make/inner.sh`'s host disk, read by the userspace
//! engine, driven by key presses.

use crate::common;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sha2::{Digest, Sha256};
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::event::Event;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::tree::Tree;
use vmrescue::tui::{Action, App, AppConfig};

/// The app over the fixture, its only filesystem (the host's p1) open.
fn app() -> (App, Jobs) {
    let img = vmrescue::image::open(&common::fixture("inner-host")).unwrap();
    crate::tui_support::userspace_app(vmrescue::layers::scan(vec![img]), AppConfig::default())
}

fn key(app: &mut App, jobs: &Jobs, code: KeyCode) {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    jobs.run_inline(app);
}

fn current(app: &App) -> String {
    app.pane()
        .and_then(|p| p.current())
        .map(|e| e.shown.clone())
        .unwrap_or_default()
}

/// Go to folder `path` from the root of the tree shown, and select `name`
/// in it, by key presses.
fn go(app: &mut App, jobs: &Jobs, path: &str, name: &str) {
    let select = |app: &mut App, name: &str| {
        key(app, jobs, KeyCode::Home);
        for _ in 0..100 {
            if current(app) == name {
                return;
            }
            key(app, jobs, KeyCode::Down);
        }
        panic!("{name} not found");
    };
    for c in path.split('/').filter(|c| !c.is_empty()) {
        select(app, c);
        key(app, jobs, KeyCode::Enter);
    }
    select(app, name);
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn enter_on_a_qcow2_file_opens_it_as_a_disk_under_its_volume() {
    let (mut app, jobs) = app();
    go(
        &mut app,
        &jobs,
        "/var/lib/vz/images/100",
        "vm-100-disk-0.qcow2",
    );
    key(&mut app, &jobs, KeyCode::Enter);
    // No viewer: the right pane shows the clone's filesystem.
    assert!(app.dialog.is_none(), "a window is open");
    let pane = app.pane().expect("browsing");
    let Tree::Volume(v) = pane.tree else {
        panic!("not a volume: {:?}", pane.tree)
    };
    assert_eq!(app.layout.volume(v).name, "p1:vm-100-disk-0.qcow2/p1");
    assert_eq!(pane.path, b"/");
    // The left pane: the image's disk under the host's p1, its p1 under it,
    // selected.
    let host_p1 = &app.layers.roots[0].children[0];
    assert_eq!(host_p1.volume.as_deref(), Some("p1"));
    let disk = &host_p1.children[0];
    assert_eq!(disk.name, "/var/lib/vz/images/100/vm-100-disk-0.qcow2");
    assert!(
        disk.description
            .contains("backing ../9000/base-9000-disk-0.qcow2"),
        "{}",
        disk.description
    );
    assert_eq!(
        app.layers
            .current()
            .and_then(|n| n.volume.clone())
            .as_deref(),
        Some("p1:vm-100-disk-0.qcow2/p1")
    );
    // The guest's files, through the clone and its backing file.
    go(&mut app, &jobs, "/data", "changed.bin");
    let fs = app.fs(Tree::Volume(v)).unwrap().clone();
    let node = vmrescue::fs::path::resolve(&*fs, b"/data/changed.bin", true)
        .unwrap()
        .node;
    let mut buf = vec![0u8; 4096];
    assert_eq!(fs.read_at(node, 0, &mut buf).unwrap(), 4096);
    let want = std::fs::read_to_string(common::fixture_file("inner-host.digests")).unwrap();
    let want = want
        .lines()
        .find_map(|l| l.strip_prefix("/data/changed.bin@vm-100 "))
        .unwrap();
    assert_eq!(sha256(&buf), want);

    // Back in the host's tree, Enter on the same file shows the same disk
    // again (not a second copy).
    let volumes = app.layout.volumes.len();
    app.open_volume(vmrescue::layers::VolumeId(0));
    jobs.run_inline(&mut app);
    while app.pane().is_some_and(|p| p.path != b"/") {
        key(&mut app, &jobs, KeyCode::Backspace);
    }
    go(
        &mut app,
        &jobs,
        "/var/lib/vz/images/100",
        "vm-100-disk-0.qcow2",
    );
    key(&mut app, &jobs, KeyCode::Enter);
    assert_eq!(app.layout.volumes.len(), volumes);
    assert_eq!(app.pane().map(|p| p.tree), Some(Tree::Volume(v)));
}

#[test]
fn enter_on_a_text_file_still_opens_the_viewer() {
    let (mut app, jobs) = app();
    let volumes = app.layout.volumes.len();
    go(&mut app, &jobs, "/etc", "passwd");
    key(&mut app, &jobs, KeyCode::Enter);
    assert!(
        matches!(&app.dialog, Some(Dialog::Viewer(_))),
        "no viewer on /etc/passwd"
    );
    assert_eq!(app.layout.volumes.len(), volumes);
}

#[test]
fn a_missing_backing_file_is_said_and_nothing_is_added() {
    let (mut app, jobs) = app();
    let volumes = app.layout.volumes.len();
    go(
        &mut app,
        &jobs,
        "/var/lib/vz/images/102",
        "vm-102-disk-0.qcow2",
    );
    key(&mut app, &jobs, KeyCode::Enter);
    assert!(app.dialog.is_none());
    assert_eq!(app.layout.volumes.len(), volumes);
    let msg = app
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert!(
        msg.contains("holds a disk image that cannot be opened")
            && msg.contains("../9999/base-9999-disk-0.qcow2"),
        "{msg}"
    );
    // `v` still shows its bytes in the viewer.
    app.update(&Action::View);
    jobs.run_inline(&mut app);
    assert!(matches!(&app.dialog, Some(Dialog::Viewer(_))));
}
