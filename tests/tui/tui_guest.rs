//! The browser on the guest as it boots: the guest's node comes first and
//! opens at start, `/home` is the volume the guest's fstab mounts there (and
//! says so), the status bar names the volume as you cross into it, and marks
//! and copies span volumes in one tree.

use crate::tui_support;

use tui_support::story;
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::views::status::status_text;

#[test]
fn the_guest_opens_at_start_with_its_mounts_marked() {
    let st = story(120, 40);
    let pane = st.app.pane().expect("the guest's tree is shown");
    assert!(pane.tree.is_guest());
    assert_eq!(pane.path, b"/");
    let name = |v| st.app.layout.volume(v).name.clone();
    assert_eq!(pane.on.map(name).as_deref(), Some("vg_ta/lv_root"));
    let home = pane
        .entries
        .iter()
        .find(|e| e.shown == "home")
        .expect("/home listed");
    assert_eq!(home.mounted.as_deref(), Some("vg_ta/lv_home"));
    let etc = pane.entries.iter().find(|e| e.shown == "etc").unwrap();
    assert_eq!(etc.mounted, None);
    assert!(status_text(&st.app).contains("guest:/ │ on vg_ta/lv_root"));
}

#[test]
fn crossing_into_home_names_its_volume() {
    let mut st = story(120, 40);
    st.cd("/home/ta");
    let pane = st.app.pane().unwrap();
    assert!(pane.tree.is_guest());
    let on = pane.on.map(|v| st.app.layout.volume(v).name.clone());
    assert_eq!(on.as_deref(), Some("vg_ta/lv_home"));
    let status = status_text(&st.app);
    assert!(
        status.contains("guest:/home/ta │ on vg_ta/lv_home"),
        "{status}"
    );
    // And back out of the mount with `..`: the root volume again.
    st.act(Action::Back);
    st.act(Action::Back);
    assert_eq!(st.path(), "/");
    assert!(status_text(&st.app).contains("on vg_ta/lv_root"));
}

#[test]
fn marks_on_two_volumes_copy_as_one_tree() {
    let mut st = story(120, 40);
    st.cd("/var/log");
    st.select("messages");
    st.act(Action::MarkToggle);
    st.cd("/home/ta");
    st.select("notes.txt");
    st.act(Action::MarkToggle);
    assert!(matches!(st.app.marks.trees().as_slice(), [t] if t.is_guest()));
    let out = tempfile::tempdir().unwrap();
    st.act(Action::CopyMarked);
    let Some(Dialog::CopySetup(c)) = &mut st.app.dialog else {
        panic!("copy dialog");
    };
    // One tree: no folder per volume.
    assert_eq!(c.dest.text, "./rescued/vm-108-disk-1/");
    c.dest = vmrescue::tui::text_field::TextField::new(&out.path().display().to_string());
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("summary");
    };
    assert!(
        summary.failed.is_empty() && summary.skipped.is_empty(),
        "{summary:?}"
    );
    assert_eq!(
        std::fs::read(out.path().join("notes.txt")).unwrap(),
        b"remember the backup\n"
    );
    assert!(out.path().join("messages").is_file());
}

#[test]
fn the_guest_node_lists_its_mount_table() {
    let st = story(120, 40);
    let node = st.app.layers.roots.first().unwrap();
    let lines = vmrescue::tui::layers::node_lines(node);
    assert!(lines.iter().any(|l| l == "/ vg_ta/lv_root"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "/home vg_ta/lv_home"),
        "{lines:?}"
    );
}

#[test]
fn a_typed_target_in_the_guest_is_judged_in_the_whole_guest() {
    use vmrescue::tui::event::Effect;
    let mut st = story(120, 40);
    st.cd("/lib64");
    st.select("libc.so.6");
    st.act(Action::RestoreSymlink);
    st.act(Action::TypeTarget);
    for c in "libc-2.12.so".chars() {
        st.act(Action::Insert(c));
    }
    // Enter plans the typed target: the plan is for the link on lv_root,
    // with the guest's tree to judge the target in.
    st.app.update(&Action::Confirm);
    let planned = st.app.take_effects().into_iter().find_map(|e| match e {
        Effect::PlanRelink {
            volume,
            link,
            guest,
            ..
        } => Some((volume, link, guest)),
        _ => None,
    });
    let (volume, link, guest) = planned.expect("a plan is asked for");
    assert_eq!(st.app.layout.volume(volume).name, "vg_ta/lv_root");
    assert_eq!(link, b"/lib64/libc.so.6");
    let guest = guest.expect("judged in the guest's tree");
    assert_eq!(guest.link, b"/lib64/libc.so.6");
}
