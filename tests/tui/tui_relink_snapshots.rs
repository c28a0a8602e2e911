//! Snapshots (ratatui `TestBackend` + insta) of the restore dialog and the
//! doctor view at 80×24 and 120×40, on the story's in-memory guest: its
//! volumes hold no real filesystem on disk, so the dialog shows the
//! candidates and why the repair cannot be written there.

use crate::tui_support;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tui_support::{Story, story};
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::views;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn render(st: &Story) -> String {
    let (w, h) = st.app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| views::draw(f, &st.app)).unwrap();
    term.backend().to_string()
}

#[test]
fn restore_dialog() {
    for (w, h) in SIZES {
        let mut st = story(w, h);
        st.cd("/lib64");
        st.select("libc.so.6");
        st.act(Action::RestoreSymlink);
        let Some(Dialog::Restore(r)) = &st.app.dialog else {
            panic!("restore dialog");
        };
        assert!(!r.analyzing);
        assert_eq!(r.candidates[0].shown, "libc-2.12.so");
        let screen = render(&st);
        assert!(screen.contains("Restore symlink"), "{screen}");
        assert!(screen.contains("* libc-2.12.so"), "{screen}");
        assert!(screen.contains("Cannot write:"), "{screen}");
        insta::assert_snapshot!(format!("restore_{w}x{h}"), screen);
    }
}

#[test]
fn doctor_view() {
    for (w, h) in SIZES {
        let mut st = story(w, h);
        st.act(Action::Doctor);
        let screen = render(&st);
        assert!(screen.contains("The guest cannot start"), "{screen}");
        assert!(screen.contains("/lib64/libc.so.6"), "{screen}");
        assert!(screen.contains("proposed: libc-2.12.so"), "{screen}");
        insta::assert_snapshot!(format!("doctor_{w}x{h}"), screen);
    }
}
