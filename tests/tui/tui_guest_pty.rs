//! The guest as it boots, end to end in a real pseudo-terminal (expectrl +
//! vt100, 80×24) on the bundled demo disk (made by mke2fs and LVM): the
//! browser opens on the guest, `/home` is the other LV (the status bar says
//! so), a file there is marked; the find dialog finds a table of the shop's
//! database on lv_root and jumps to it; `/var/log/messages` is viewed and
//! searched; the three marks on two volumes are copied in one go, and the
//! bytes are those `vmrescue cat` gives.

use std::path::Path;
use std::process::Command;

use crate::pty_support::{DOWN, ENTER, Pty, bin};
use expectrl::process::unix::WaitStatus;

fn typed(pty: &mut Pty, text: &str) {
    for c in text.chars() {
        pty.send(&c.to_string());
    }
}

/// Filter the list down to `name` and accept the filter (the cursor is on it).
fn select(pty: &mut Pty, name: &str) {
    pty.send("/");
    typed(pty, name);
    pty.send(ENTER);
}

fn cat(path: &str) -> Vec<u8> {
    let o = Command::new(bin())
        .args(["cat", "--demo", path])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// Wait until the copy left `file` complete in `dir`.
fn wait_copied(pty: &mut Pty, dir: &Path, file: &str, want: &[u8]) {
    let start = std::time::Instant::now();
    loop {
        while pty.pump() {}
        if std::fs::read(dir.join(file)).is_ok_and(|b| b == want) {
            return;
        }
        assert!(
            start.elapsed() < crate::pty_support::TIMEOUT,
            "{file} not copied; screen:\n{}",
            pty.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn browse_find_view_mark_on_two_volumes_and_copy() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(&bin(), &["--demo"], &[], dir.path());
    pty.wait_listed("guest:/ ");
    // /home is lv_home, mounted by the guest's fstab.
    assert!(
        pty.screen().contains("home/ [vg_ta/lv_home]"),
        "{}",
        pty.screen()
    );
    select(&mut pty, "home");
    pty.send(ENTER);
    pty.wait_listed("guest:/home ");
    pty.wait_for("on vg_ta/lv_home");
    select(&mut pty, "ta");
    pty.send(ENTER);
    pty.wait_listed("guest:/home/ta ");
    select(&mut pty, ".bashrc");
    pty.send(" ");
    pty.wait_for("marked 1");
    // Find a table of the shop's database (on lv_root) and jump to it.
    pty.send("\x06");
    pty.wait_for("Find");
    typed(&mut pty, "orders.MYD");
    pty.send(ENTER);
    pty.wait_for("1 found");
    for _ in 0..4 {
        pty.send(DOWN);
    }
    pty.send(ENTER);
    pty.wait_listed("guest:/var/lib/mysql/ta_shop ");
    pty.wait_for("on vg_ta/lv_root");
    pty.send(" ");
    pty.wait_for("marked 2");
    // The log: viewed and searched, then marked too.
    for path in ["guest:/var/lib/mysql ", "guest:/var/lib ", "guest:/var "] {
        pty.send("\x7f");
        pty.wait_listed(path);
    }
    select(&mut pty, "log");
    pty.send(ENTER);
    pty.wait_listed("guest:/var/log ");
    select(&mut pty, "messages");
    pty.send(ENTER);
    pty.wait_for(" /var/log/messages ");
    pty.send("/");
    typed(&mut pty, "SEGV");
    pty.send(ENTER);
    pty.wait_for("line 2  text");
    pty.send("q");
    pty.wait_for("guest:/var/log ");
    pty.send(" ");
    pty.wait_for("marked 3");
    // One copy across both volumes, into a folder typed over the default.
    pty.send("c");
    pty.wait_for("./rescued/");
    typed(&mut pty, &format!("{}/", out.path().display()));
    pty.send(ENTER);
    for (file, guest) in [
        (".bashrc", "/home/ta/.bashrc"),
        ("orders.MYD", "/var/lib/mysql/ta_shop/orders.MYD"),
        ("messages", "/var/log/messages"),
    ] {
        wait_copied(&mut pty, out.path(), file, &cat(guest));
    }
    pty.send(ENTER);
    pty.send("q");
    let st = pty.wait_exit();
    assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
    pty.assert_restored();
}
