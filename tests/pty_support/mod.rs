//! A program in a real pseudo-terminal for end-to-end TUI tests: expectrl
//! for the pty, vt100 for the screen, a spy on what the program asked the
//! terminal to do besides drawing, and a check that it restored the terminal.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::Session;
use expectrl::process::unix::WaitStatus;

/// Terminal rows.
pub const ROWS: u16 = 24;
/// Terminal columns.
pub const COLS: u16 = 80;
/// Longest wait for a screen or an exit.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Counts what the terminal was asked to do besides drawing.
#[derive(Default)]
pub struct Spy {
    /// Bells rung.
    pub bells: usize,
    /// Window titles or icon names set.
    pub titles: usize,
    /// Other OSC sequences.
    pub osc: usize,
    /// Clipboard writes.
    pub clipboard: usize,
}

impl vt100::Callbacks for Spy {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.bells += 1;
    }
    fn set_window_title(&mut self, _: &mut vt100::Screen, _: &[u8]) {
        self.titles += 1;
    }
    fn set_window_icon_name(&mut self, _: &mut vt100::Screen, _: &[u8]) {
        self.titles += 1;
    }
    fn copy_to_clipboard(&mut self, _: &mut vt100::Screen, _: &[u8], _: &[u8]) {
        self.clipboard += 1;
    }
    fn unhandled_osc(&mut self, _: &mut vt100::Screen, _: &[&[u8]]) {
        self.osc += 1;
    }
}

/// A program in a pseudo-terminal, with a vt100 screen of what it drew.
pub struct Pty {
    /// The pty session.
    pub session: expectrl::session::OsSession,
    /// The screen.
    pub parser: vt100::Parser<Spy>,
    /// How it ended, once it did.
    pub exited: Option<WaitStatus>,
}

impl Pty {
    /// Start `cmd` in a pty of 80×24 (the size is set on the terminal before
    /// the program starts, so it never sees a 0×0 terminal).
    pub fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Pty {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "stty rows {ROWS} cols {COLS} echo icanon && exec \"$0\" \"$@\""
            ))
            .arg(program)
            .args(args)
            .current_dir(cwd)
            .env("TERM", "xterm-256color")
            .env("RUST_BACKTRACE", "0")
            .env_remove("NO_COLOR");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let session = Session::spawn(cmd).expect("spawn in a pty");
        Pty {
            session,
            parser: vt100::Parser::new_with_callbacks(
                ROWS.try_into().unwrap(),
                COLS.try_into().unwrap(),
                0,
                Spy::default(),
            ),
            exited: None,
        }
    }

    pub fn pump(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        match self.session.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.parser.process(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => false,
        }
    }

    pub fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// Read output until the screen contains `text`.
    pub fn wait_for(&mut self, text: &str) {
        let start = Instant::now();
        loop {
            while self.pump() {}
            if self.screen().contains(text) {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out waiting for {text:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the status line shows `status` (a `volume:path `) and the
    /// directory's listing is on screen (no "reading…" left), so that keys
    /// sent next act on its entries.
    pub fn wait_listed(&mut self, status: &str) {
        self.wait_for(status);
        let start = Instant::now();
        loop {
            while self.pump() {}
            if !self.screen().contains("reading…") {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out waiting for the listing of {status:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send(&mut self, keys: &str) {
        use std::io::Write;
        self.session.write_all(keys.as_bytes()).expect("write keys");
        self.session.flush().expect("flush keys");
        // Let the program read one key (sequence) at a time, as a person types.
        std::thread::sleep(Duration::from_millis(60));
        while self.pump() {}
    }

    /// Wait for the program to end, reading what it still writes.
    pub fn wait_exit(&mut self) -> WaitStatus {
        let start = Instant::now();
        loop {
            while self.pump() {}
            if let Ok(st) = self.session.get_process().status()
                && !matches!(st, WaitStatus::StillAlive)
            {
                while self.pump() {}
                self.exited = Some(st);
                return st;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `q`: the program ends with exit code 0 and the terminal is restored.
    pub fn quit(&mut self) {
        self.send("q");
        let st = self.wait_exit();
        assert!(matches!(st, WaitStatus::Exited(_, 0)), "{st:?}");
        self.assert_restored();
    }

    /// The terminal is as the program found it: main screen, cursor shown, echo on.
    pub fn assert_restored(&self) {
        let s = self.parser.screen();
        assert!(!s.alternate_screen(), "alternate screen left");
        assert!(!s.hide_cursor(), "cursor shown");
        let pty = self.session.get_process().get_raw_handle().expect("pty");
        let t = nix::sys::termios::tcgetattr(&pty).expect("termios");
        use nix::sys::termios::LocalFlags;
        assert!(
            t.local_flags.contains(LocalFlags::ICANON),
            "canonical mode back"
        );
        assert!(t.local_flags.contains(LocalFlags::ECHO), "echo back");
    }
}

/// Keys.
pub const DOWN: &str = "\x1b[B";
/// Enter.
pub const ENTER: &str = "\r";
/// Escape.
pub const ESC: &str = "\x1b";

/// The vmrescue binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vmrescue"))
}
