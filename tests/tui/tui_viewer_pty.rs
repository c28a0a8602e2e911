//! The file viewer end to end in a real pseudo-terminal (expectrl + vt100,
//! 80×24): `vmrescue --demo` (the bundled disk, made by mke2fs and LVM),
//! filters down to `/var/log`, Enter on `messages` opens the viewer, `/`
//! searches, `n` goes on until nothing is left below, `q` closes it and
//! quits, and the terminal is restored.

use crate::pty_support::{ENTER, Pty, bin};
use expectrl::process::unix::WaitStatus;

fn typed(pty: &mut Pty, text: &str) {
    for c in text.chars() {
        pty.send(&c.to_string());
    }
}

#[test]
fn view_and_search_var_log_messages_of_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(&bin(), &["--demo"], &[], dir.path());
    pty.wait_listed("guest:/ ");
    for (name, path) in [("var", "/var "), ("log", "/var/log ")] {
        pty.send("/");
        typed(&mut pty, name);
        pty.send(ENTER);
        pty.send(ENTER);
        pty.wait_listed(&format!("guest:{path}"));
    }
    pty.send("/");
    typed(&mut pty, "messages");
    pty.send(ENTER);
    pty.send(ENTER);
    // The viewer: the file's path on the title line, numbered lines.
    pty.wait_for(" /var/log/messages ");
    pty.wait_for("   1 Mar  2 10:25:13 ta kernel: EXT4-fs (dm-0): re-mounted.");
    pty.wait_for("line 1  text");
    // Search: the first match's line comes to the top.
    pty.send("/");
    typed(&mut pty, "SEGV");
    pty.wait_for("/SEGV");
    pty.send(ENTER);
    pty.wait_for("line 2  text");
    let screen = pty.screen();
    let first = screen.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("   2 Mar  2 10:33:51 ta init: tty (/dev/tty1)"),
        "{screen}"
    );
    pty.send("n");
    pty.wait_for("line 3  text");
    pty.send("n");
    pty.wait_for("not found below: SEGV");
    // Back to the list, then quit.
    pty.send("q");
    pty.wait_for("guest:/var/log ");
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}
