//! The browser on a btrfs guest whose root is subvolume `@` (named by its
//! boot loader's `rootflags=subvol=@`; the default subvolume is the top
//! level) and whose fstab mounts `@home` on /home
//! (`tests/fixtures/make/btrfs-guest.sh`): the guest's tree shows both,
//! the subvolumes are children of the volume in the left pane, and Enter
//! on one opens it alone. Userspace engine, driven by key presses.

use crate::common;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sha2::{Digest, Sha256};
use vmrescue::engine::VolumeOpener;
use vmrescue::tui::event::Event;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::tree::Tree;
use vmrescue::tui::{App, AppConfig};

/// The app over the fixture, inspected as the commands inspect it.
fn app(config: AppConfig) -> (App, Jobs) {
    let img = vmrescue::image::open(&common::fixture("btrfs-guest")).unwrap();
    let mut layout = vmrescue::layers::scan(vec![img]);
    let us = vmrescue::engine::userspace::Userspace::default();
    let found = vmrescue::layers::inspect::inspect(&layout, &|id| {
        us.open(&layout, id).map_err(vmrescue::Error::Unsupported)
    });
    layout.apply_inspection(&found);
    crate::tui_support::userspace_app(layout, config)
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

fn names(app: &App) -> Vec<String> {
    app.pane()
        .map(|p| p.entries.iter().map(|e| e.shown.clone()).collect())
        .unwrap_or_default()
}

/// Open folder `path` from the root of the tree shown, by key presses.
fn go(app: &mut App, jobs: &Jobs, path: &str) {
    for c in path.split('/').filter(|c| !c.is_empty()) {
        key(app, jobs, KeyCode::Home);
        for _ in 0..100 {
            if current(app) == c {
                break;
            }
            key(app, jobs, KeyCode::Down);
        }
        assert_eq!(current(app), c, "{c} not found");
        key(app, jobs, KeyCode::Enter);
    }
}

/// The kernel's sum of guest path `path`.
fn kernel_sum(path: &str) -> String {
    common::report("btrfs-guest.sums")
        .lines()
        .find_map(|l| l.strip_suffix(path).and_then(|s| s.strip_suffix("  ")))
        .unwrap_or_else(|| panic!("{path} not in btrfs-guest.sums"))
        .to_string()
}

/// Read file `name` of the folder shown whole, through the app's open tree.
fn read_shown(app: &App, name: &str) -> Vec<u8> {
    let pane = app.pane().unwrap();
    let entry = pane.entries.iter().find(|e| e.shown == name).unwrap();
    let fs = app.fs(pane.tree).expect("the tree is open");
    let size = fs.metadata(entry.node).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    let mut at = 0;
    while at < size {
        let n = fs.read_at(entry.node, at as u64, &mut buf[at..]).unwrap();
        assert!(n > 0);
        at += n;
    }
    buf
}

#[test]
fn the_guest_tree_shows_the_root_subvolume_and_home_on_its_own() {
    let (mut app, jobs) = app(AppConfig::default());
    let pane = app.pane().expect("the guest's tree is open");
    assert!(pane.tree.is_guest());
    assert_eq!(names(&app), ["boot", "etc", "home"]);
    go(&mut app, &jobs, "/home/user");
    assert_eq!(names(&app), ["big.log", "notes.txt"]);
    // A zstd-compressed file of @home, as the kernel reads it.
    let data = read_shown(&app, "big.log");
    let hex: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, kernel_sum("/home/user/big.log"));
}

#[test]
fn enter_on_a_subvolume_in_the_left_pane_opens_it_alone() {
    let (mut app, jobs) = app(AppConfig::default());
    app.focus = vmrescue::tui::app::Focus::Layers;
    key(&mut app, &jobs, KeyCode::Home);
    for _ in 0..50 {
        if app.layers.current().map(|n| n.name.as_str()) == Some("@home") {
            break;
        }
        key(&mut app, &jobs, KeyCode::Down);
    }
    let node = app.layers.current().unwrap().clone();
    assert_eq!(node.kind, "subvolume");
    assert_eq!(node.volume.as_deref(), Some("disk0@/@home"));
    key(&mut app, &jobs, KeyCode::Enter);
    let pane = app.pane().expect("the subvolume is open");
    assert!(
        matches!(pane.tree, Tree::Subvolume(_, _)),
        "{:?}",
        pane.tree
    );
    assert_eq!(app.tree_name(pane.tree), "disk0@/@home");
    assert_eq!(names(&app), ["user"]);
}

#[test]
fn volume_at_subvolume_on_the_command_line_opens_it() {
    let (app, _jobs) = app(AppConfig {
        volume: Some("disk0@old".into()),
        ..AppConfig::default()
    });
    let pane = app.pane().expect("the subvolume is open");
    assert!(
        matches!(pane.tree, Tree::Subvolume(_, _)),
        "{:?}",
        pane.tree
    );
    assert_eq!(names(&app), ["etc"]);
    assert_eq!(app.layers.current().map(|n| n.name.as_str()), Some("@old"));
}
