//! Man pages and completions come from the command definitions: every
//! visible command has its page with the options `--help` shows, the
//! story's EXAMPLES, and each shell gets a script that knows the commands.

use crate::common;

#[test]
fn man_writes_a_page_per_visible_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::vmrescue(&["man", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "vmrescue.1",
        "vmrescue-layers.1",
        "vmrescue-ls.1",
        "vmrescue-cat.1",
        "vmrescue-find.1",
        "vmrescue-cp.1",
        "vmrescue-doctor.1",
        "vmrescue-relink.1",
        "vmrescue-undo.1",
        "vmrescue-mount.1",
        "vmrescue-map.1",
        "vmrescue-cleanup.1",
        "vmrescue-completions.1",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing: {names:?}"
        );
    }
    // Hidden commands get no page.
    assert!(
        !names
            .iter()
            .any(|n| n.contains("walk") || n.contains("pack")),
        "{names:?}"
    );
    let top = std::fs::read_to_string(dir.path().join("vmrescue.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH VMRESCUE 1"),
        "{top}"
    );
    assert!(top.contains(".SH EXAMPLES"), "{top}");
    for step in [
        "vmrescue layers",
        "vmrescue doctor 108",
        "vmrescue cp 108",
        "vmrescue relink 108",
        "vmrescue undo",
    ] {
        assert!(top.contains(step), "the story lacks {step}");
    }
    assert!(
        top.contains("vmrescue\\-cp(1)") || top.contains("vmrescue-cp(1)"),
        "SEE ALSO"
    );
    let cp = std::fs::read_to_string(dir.path().join("vmrescue-cp.1")).unwrap();
    assert!(cp.contains("one\\-file\\-system"), "{cp}");
    assert!(cp.contains(".TH VMRESCUE-CP 1"), "{cp}");
}

#[test]
fn completions_know_the_commands() {
    for (shell, mark) in [
        ("bash", "_vmrescue()"),
        ("zsh", "#compdef vmrescue"),
        ("fish", "complete -c vmrescue"),
    ] {
        let out = common::vmrescue(&["completions", shell]);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(mark), "{shell}: {text}");
        for cmd in ["layers", "doctor", "relink"] {
            assert!(text.contains(cmd), "{shell} lacks {cmd}");
        }
        assert!(
            !text.contains("pack-demo"),
            "{shell} offers a hidden command"
        );
    }
    let out = common::vmrescue(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}
