//! The passphrase dialog (issue #18: "the TUI asks for the passphrase when
//! the volume is opened"): a locked LUKS volume shows as locked in the left
//! pane; Enter on it opens a dialog that shows a `*` per character typed
//! and never the passphrase, Esc cancels, a wrong passphrase says so and
//! leaves two more tries, and the right one shows what the volume holds
//! (the LVM inside) beneath it.
//!
//! Over `tests/fixtures/make/luks.sh`'s LUKS2 volume (cryptsetup's header,
//! pbkdf2), read by the userspace engine, driven by key presses.

use crate::common;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vmrescue::tui::app::Focus;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::event::Event;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::{App, AppConfig};

fn passphrase() -> String {
    String::from_utf8(std::fs::read(common::fixture_file("luks.pass")).unwrap()).unwrap()
}

/// The app over the fixture (no key given), the LUKS volume selected in the left pane.
fn app() -> (App, Jobs) {
    let img = vmrescue::image::open(&common::fixture("luks2-pbkdf2")).unwrap();
    let (mut app, jobs) =
        crate::tui_support::userspace_app(vmrescue::layers::scan(vec![img]), AppConfig::default());
    app.dialog = None;
    assert!(app.layers.reveal_volume("disk0"), "no node for disk0");
    app.focus = Focus::Layers;
    (app, jobs)
}

fn key(app: &mut App, jobs: &Jobs, code: KeyCode) {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    jobs.run_inline(app);
}

fn typed(app: &mut App, jobs: &Jobs, text: &str) {
    for c in text.chars() {
        key(app, jobs, KeyCode::Char(c));
    }
}

/// The dialog's error line, if the passphrase dialog is open.
fn dialog_error(app: &App) -> Option<Option<String>> {
    match &app.dialog {
        Some(Dialog::Passphrase(p)) => Some(p.error.clone()),
        _ => None,
    }
}

fn volumes(app: &App) -> Vec<String> {
    app.layout.volumes.iter().map(|v| v.name.clone()).collect()
}

#[test]
fn a_locked_volume_unlocks_in_the_dialog_and_shows_its_lvm_beneath_it() {
    let (mut app, jobs) = app();
    let node = app.layers.current().unwrap();
    let luks = node.luks.as_ref().expect("the node is a LUKS volume");
    assert_eq!(luks.unlocked_by, None);
    assert!(node.children.is_empty());
    assert!(
        crate::tui_support::screen(&app).contains("locked"),
        "the left pane says locked"
    );
    assert!(!volumes(&app).iter().any(|v| v.contains("lv_data")));

    key(&mut app, &jobs, KeyCode::Enter);
    assert_eq!(dialog_error(&app), Some(None), "the dialog is open");
    // A wrong passphrase: stars only, then the message and two tries left.
    typed(&mut app, &jobs, "not-it");
    let screen = crate::tui_support::screen(&app);
    assert!(screen.contains("Unlock disk0"), "{screen}");
    assert!(screen.contains("> ******_"), "{screen}");
    assert!(!screen.contains("not-it"), "{screen}");
    key(&mut app, &jobs, KeyCode::Enter);
    assert_eq!(
        dialog_error(&app),
        Some(Some("wrong passphrase".to_string()))
    );
    let screen = crate::tui_support::screen(&app);
    assert!(
        screen.contains("wrong passphrase (2 tries left)"),
        "{screen}"
    );
    assert!(!volumes(&app).iter().any(|v| v.contains("lv_data")));

    // Backspace takes back a character; then the right passphrase.
    typed(&mut app, &jobs, "x");
    key(&mut app, &jobs, KeyCode::Backspace);
    let pass = passphrase();
    typed(&mut app, &jobs, &pass);
    let screen = crate::tui_support::screen(&app);
    assert!(!screen.contains(&pass), "{screen}");
    assert!(
        screen.contains(&format!("> {}_", "*".repeat(pass.len()))),
        "{screen}"
    );
    key(&mut app, &jobs, KeyCode::Enter);
    assert!(app.dialog.is_none(), "the dialog closed");
    assert!(
        volumes(&app).iter().any(|v| v == "disk0/vg_bare/lv_data"),
        "{:?}",
        volumes(&app)
    );
    // The volume stays selected, unlocked, with its content beneath it.
    let node = app.layers.current().unwrap();
    assert_eq!(node.volume.as_deref(), Some("disk0"));
    assert_eq!(node.luks.as_ref().unwrap().unlocked_by, Some(0));
    assert!(!node.children.is_empty());
    let shown: Vec<String> = app
        .layers
        .visible()
        .iter()
        .map(|p| app.layers.node(p).unwrap().name.clone())
        .collect();
    assert!(shown.iter().any(|n| n.ends_with("vg_bare")), "{shown:?}");
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.text.contains("disk0 unlocked")),
        "{:?}",
        app.message.as_ref().map(|m| &m.text)
    );
    // Its filesystem opens as any other: /top.txt is there.
    assert!(app.layers.reveal_volume("disk0/vg_bare/lv_data"));
    key(&mut app, &jobs, KeyCode::Enter);
    let pane = app.pane().expect("the LV's filesystem is shown");
    assert!(pane.entries.iter().any(|e| e.shown == "top.txt"));
}

#[test]
fn three_wrong_passphrases_close_the_dialog_and_the_volume_stays_locked() {
    let (mut app, jobs) = app();
    let before = volumes(&app);
    key(&mut app, &jobs, KeyCode::Enter);
    for i in 0..3 {
        assert!(dialog_error(&app).is_some(), "closed after {i} tries");
        typed(&mut app, &jobs, "wrong");
        key(&mut app, &jobs, KeyCode::Enter);
    }
    assert!(app.dialog.is_none(), "still open after three tries");
    let text = app
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert_eq!(text, "disk0 stays locked: wrong passphrase");
    assert_eq!(volumes(&app), before);
    // Enter again: a new dialog, three new tries.
    key(&mut app, &jobs, KeyCode::Enter);
    assert_eq!(dialog_error(&app), Some(None));
}

#[test]
fn esc_cancels_and_an_empty_passphrase_is_not_tried() {
    let (mut app, jobs) = app();
    let before = volumes(&app);
    key(&mut app, &jobs, KeyCode::Enter);
    key(&mut app, &jobs, KeyCode::Enter);
    assert_eq!(
        dialog_error(&app),
        Some(None),
        "nothing typed, nothing tried"
    );
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.text.contains("type the passphrase first"))
    );
    typed(&mut app, &jobs, &passphrase());
    key(&mut app, &jobs, KeyCode::Esc);
    assert!(app.dialog.is_none());
    assert_eq!(volumes(&app), before);
    let node = app.layers.current().unwrap();
    assert_eq!(node.luks.as_ref().unwrap().unlocked_by, None);
}

/// A disk image opened from a file in a filesystem (`DiskOrigin::File`)
/// is no disk of the scan: the unlock's new scan of the disks opens it
/// again, under the same volume, with the same volumes in it.
#[test]
fn an_unlock_keeps_the_disk_images_opened_from_files() {
    use vmrescue::engine::VolumeOpener;
    let luks = vmrescue::image::open(&common::fixture("luks2-pbkdf2")).unwrap();
    let host = vmrescue::image::open(&common::fixture("inner-host")).unwrap();
    let mut layout = vmrescue::layers::scan(vec![luks, host]);
    let holder = layout
        .volumes
        .iter()
        .find(|v| v.content.label.as_deref() == Some("pveroot"))
        .expect("the host's root filesystem")
        .id;
    let userspace = vmrescue::engine::userspace::Userspace::default();
    let fs = userspace.open(&layout, holder).unwrap();
    let src = vmrescue::layers::inner::open_image_file(
        &layout,
        holder,
        fs,
        b"/var/lib/vz/images/101/vm-101-disk-0.raw",
        &vmrescue::image::OpenOptions::default(),
    )
    .unwrap();
    let added: Vec<String> = layout
        .add_image_file(holder, src)
        .into_iter()
        .map(|v| layout.volume(v).name.clone())
        .collect();
    assert!(!added.is_empty(), "the image file holds volumes");
    let (mut app, jobs) = crate::tui_support::userspace_app(layout, AppConfig::default());
    app.dialog = None;
    assert!(app.layers.reveal_volume("disk0"), "no node for disk0");
    app.focus = Focus::Layers;
    key(&mut app, &jobs, KeyCode::Enter);
    typed(&mut app, &jobs, &passphrase());
    key(&mut app, &jobs, KeyCode::Enter);
    assert!(app.dialog.is_none(), "the dialog closed");
    let now = volumes(&app);
    assert!(
        now.iter().any(|v| v == "disk0/vg_bare/lv_data"),
        "not unlocked: {now:?}"
    );
    for name in &added {
        assert!(
            now.contains(name),
            "{name} is gone after the unlock: {now:?}"
        );
    }
    let files: Vec<String> = app
        .layout
        .disks
        .iter()
        .filter(|d| matches!(d.origin, vmrescue::layers::DiskOrigin::File { .. }))
        .map(|d| d.origin.to_string())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].contains("vm-101-disk-0.raw"), "{files:?}");
}
