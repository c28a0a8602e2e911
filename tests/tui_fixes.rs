//! The browser's fixes of December 2026, each against the behaviour it replaces:
//! "skip it" in the copy dialog is `cp --skip-existing`.

mod tui_support;

use tui_support::story;
use vmrescue::tui::Action;
use vmrescue::tui::dialogs::Dialog;
use vmrescue::tui::text_field::TextField;

/// Copy the selected entry into `dest` with the dialog's default answer to
/// names that exist; the summary.
fn copy_into(
    st: &mut tui_support::Story,
    dest: &std::path::Path,
) -> vmrescue::tui::copier::CopySummary {
    st.act(Action::CopyMarked);
    if let Some(Dialog::CopySetup(c)) = &mut st.app.dialog {
        c.dest = TextField::new(&dest.display().to_string());
    }
    st.act(Action::Confirm);
    let Some(Dialog::Summary { summary, .. }) = &st.app.dialog else {
        panic!("no summary: {:?}", st.app.message);
    };
    let s = summary.clone();
    st.act(Action::Cancel);
    s
}

/// A rerun into the same folder counts what is there and the same as
/// unchanged (not skipped), and lists a file that differs as a conflict,
/// the way `cp --skip-existing` does.
#[test]
fn skip_existing_in_the_browser_is_skip_same() {
    let mut st = story(120, 40);
    let out = tempfile::tempdir().unwrap();
    st.cd("/var/lib");
    st.select("mysql");
    let first = copy_into(&mut st, out.path());
    assert_eq!((first.files, first.unchanged), (4, 0));
    let again = copy_into(&mut st, out.path());
    assert_eq!(
        (again.files, again.unchanged),
        (0, 5),
        "4 files and the symlink"
    );
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    let lines: Vec<String> = vmrescue::tui::views::summary::summary_lines(&again)
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        lines.contains(&"5 files were already there and the same (left alone).".to_string()),
        "{lines:?}"
    );
    // A file changed on the host since is kept and named.
    std::fs::write(out.path().join("mysql/ib_logfile0"), b"other").unwrap();
    let third = copy_into(&mut st, out.path());
    assert_eq!(third.unchanged, 4);
    assert_eq!(third.failed.len(), 1, "{:?}", third.failed);
    let (path, why) = &third.failed[0];
    assert_eq!(path, "/var/lib/mysql/ib_logfile0");
    assert!(why.contains("already exists and differs"), "{why}");
    assert!(
        why.ends_with("(choose \"overwrite it\" to replace it)"),
        "{why}"
    );
}
