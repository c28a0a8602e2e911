//! NBD servers for the tests: qemu-nbd and nbdkit (Debian packages
//! qemu-utils and nbdkit) serving an image over TCP on 127.0.0.1 or over a
//! Unix socket, started and waited for, killed when the test ends.
//!
//! Used by `tests/cli/nbd.rs` and `tests/tui/tui_nbd.rs` (through `#[path]`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when the test ends however it ends.
pub struct Server {
    pub child: Child,
    /// The URI to give vmrescue.
    pub uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Where a server listens.
#[derive(Clone, Copy)]
pub enum Listen<'a> {
    Tcp(u16),
    Unix(&'a Path),
}

/// Start `program args` and wait (at most 20 s) until it accepts connections.
pub fn start(
    program: &str,
    package: &str,
    args: &[String],
    listen: Listen<'_>,
    uri: String,
) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} (Debian package {package}): {e}"));
    let server = Server { child, uri };
    let started = Instant::now();
    loop {
        let up = match listen {
            Listen::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Listen::Unix(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
        };
        if up {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{program} {args:?} did not start listening within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// qemu-nbd serving `image` read-only as export `name` (no image lock:
/// other tests read the same fixture).
pub fn qemu_nbd(image: &Path, name: &str, listen: Listen<'_>) -> Server {
    let mut args = vec![
        "--read-only".to_string(),
        "--persistent".into(),
        "--shared=8".into(),
        "-x".into(),
        name.into(),
        "--image-opts".into(),
    ];
    let uri = match listen {
        Listen::Tcp(port) => {
            args.extend([
                "-b".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ]);
            format!("nbd://127.0.0.1:{port}/{name}")
        }
        Listen::Unix(p) => {
            args.extend(["-k".into(), p.display().to_string()]);
            format!("nbd+unix:///{name}?socket={}", p.display())
        }
    };
    args.push(format!(
        "driver=raw,file.driver=file,file.filename={},file.locking=off",
        image.display()
    ));
    start("qemu-nbd", "qemu-utils", &args, listen, uri)
}

/// qemu-nbd serving `image` (a copy) writable as export `name` on a Unix
/// socket in `dir`, with its default of one client at a time (no
/// `--shared`): a repair reads and writes on one connection.
/// `--persistent`, for the commands that follow one another (an `undo`).
pub fn qemu_nbd_writable(image: &Path, name: &str, dir: &Path) -> Server {
    let sock = dir.join(format!("{name}.sock"));
    let args = vec![
        "--persistent".to_string(),
        "-x".into(),
        name.into(),
        "-f".into(),
        "raw".into(),
        "-k".into(),
        sock.display().to_string(),
        image.display().to_string(),
    ];
    let uri = format!("nbd+unix:///{name}?socket={}", sock.display());
    start("qemu-nbd", "qemu-utils", &args, Listen::Unix(&sock), uri)
}

/// nbdkit (foreground, read-only) with `filters` and `plugin_args`.
pub fn nbdkit(
    filters: &[&str],
    plugin_args: &[String],
    extra: &[&str],
    listen: Listen<'_>,
) -> Server {
    nbdkit_with(true, filters, plugin_args, extra, listen)
}

/// [`nbdkit`], serving the export writable.
pub fn nbdkit_writable(
    filters: &[&str],
    plugin_args: &[String],
    extra: &[&str],
    listen: Listen<'_>,
) -> Server {
    nbdkit_with(false, filters, plugin_args, extra, listen)
}

fn nbdkit_with(
    read_only: bool,
    filters: &[&str],
    plugin_args: &[String],
    extra: &[&str],
    listen: Listen<'_>,
) -> Server {
    let mut args = vec!["-f".to_string(), "--exit-with-parent".into()];
    if read_only {
        args.push("-r".into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let uri = match listen {
        Listen::Tcp(port) => {
            args.extend([
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ]);
            format!("nbd://127.0.0.1:{port}/")
        }
        Listen::Unix(p) => {
            args.extend(["-U".into(), p.display().to_string()]);
            format!("nbd+unix:///?socket={}", p.display())
        }
    };
    args.extend(filters.iter().map(|f| format!("--filter={f}")));
    args.extend(plugin_args.iter().cloned());
    start("nbdkit", "nbdkit", &args, listen, uri)
}
