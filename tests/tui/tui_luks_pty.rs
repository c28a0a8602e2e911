//! The passphrase dialog end to end in a real pseudo-terminal (expectrl +
//! vt100, 80×24) on `tests/fixtures/make/luks.sh`'s LUKS2 volume: the
//! browser starts without asking on the terminal, shows the volume locked,
//! Enter on it opens the dialog, the passphrase typed shows as stars only,
//! a wrong one says so, the right one shows the LVM inside beneath the
//! volume and its filesystem opens; `q` quits and the terminal is restored.

use crate::common::{fixture, fixture_file};
use crate::pty_support::{ENTER, Pty, bin};
use expectrl::process::unix::WaitStatus;

fn typed(pty: &mut Pty, text: &str) {
    for c in text.chars() {
        pty.send(&c.to_string());
    }
}

#[test]
fn the_passphrase_typed_in_the_dialog_unlocks_the_volume() {
    let pass = String::from_utf8(std::fs::read(fixture_file("luks.pass")).unwrap()).unwrap();
    let img = fixture("luks2-pbkdf2");
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(&bin(), &[img.to_str().unwrap()], &[], dir.path());
    // No question before the screen: the left pane shows the volume locked.
    pty.wait_for("locked");
    assert!(!pty.screen().contains("Passphrase for"), "{}", pty.screen());
    // The disk is the volume (a whole-disk LUKS), selected in the left pane.
    pty.send(ENTER);
    pty.wait_for("Unlock disk0");
    typed(&mut pty, "nope");
    pty.wait_for("> ****");
    pty.send(ENTER);
    pty.wait_for("wrong passphrase (2 tries left)");
    typed(&mut pty, &pass);
    pty.wait_for(&format!("> {}", "*".repeat(pass.len())));
    assert!(!pty.screen().contains(&pass), "{}", pty.screen());
    pty.send(ENTER);
    pty.wait_for("disk0 unlocked");
    pty.wait_for("vg_bare");
    pty.wait_for("lv_data");
    assert!(!pty.screen().contains(&pass), "{}", pty.screen());
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}
