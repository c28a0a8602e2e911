//! File viewer benchmark: the first page and the jump to the end of a
//! 4 GiB log (sparse in the middle, text at both ends) inside an ext4 image
//! read by our reader, and the in-file search throughput over 1 GiB of real
//! log text in the same image, against `grep -c` on the same bytes as a
//! host file, in the same run. Prints times, MB/s and ratios; asserts
//! nothing.
//!
//! Run: `cargo bench --bench viewer`. The image is made at bench time with
//! `mke2fs -d` in a temporary folder under `$VMRESCUE_BENCH_DIR` (default
//! `/var/tmp/vmrescue-bench`) and removed at the end. As root, the page
//! cache is also dropped once for a cold first page and end.

use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vmrescue::fs::ext::Ext;
use vmrescue::fs::{FsOptions, FsView};
use vmrescue::io::{FileSource, ReadAt};
use vmrescue::ops::pager::search::{self, Outcome};
use vmrescue::ops::pager::{Pager, source};

const SPARSE_BYTES: u64 = 4 << 30;
const TEXT_BYTES: usize = 1 << 30;
const NEEDLE: &[u8] = b"kernel: NEEDLE-AT-THE-END";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("viewer: a benchmark; run it with `cargo bench --bench viewer`");
        return;
    }
    let base = std::path::PathBuf::from(
        std::env::var("VMRESCUE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/vmrescue-bench".into()),
    );
    std::fs::create_dir_all(&base).expect("bench directory");
    let tmp = tempfile::Builder::new()
        .prefix("viewer-")
        .tempdir_in(&base)
        .expect("temporary folder");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("var/log")).expect("tree");
    let t = Instant::now();
    let text = tree.join("var/log/messages");
    write_text(&text);
    write_sparse(&tree.join("var/log/huge.log"));
    let image = tmp.path().join("viewer.img");
    let ok = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("3G")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mke2fs -d failed");
    println!(
        "image made in {:.1} s: a 4 GiB sparse log and 1 GiB of log text (ext4, mke2fs -d)",
        t.elapsed().as_secs_f64()
    );

    let root = nix::unistd::Uid::effective().is_root();
    let open = || -> Arc<dyn FsView> {
        let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(&image).expect("open image"));
        Arc::new(Ext::open(src, &FsOptions::default()).expect("open ext4"))
    };
    println!();
    println!("{:<44} {:>10} {:>12}", "4 GiB log", "time", "bytes read");
    let runs: &[&str] = if root { &["cold", "warm"] } else { &["warm"] };
    for &c in runs {
        if c == "cold" {
            let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
        }
        let t = Instant::now();
        let fs = open();
        let o = source::open(&fs, b"/var/log/huge.log").expect("open the log");
        let mut p = Pager::new(o.content.clone(), o.format);
        let rows = p.page(22, 80);
        let first = t.elapsed();
        assert_eq!(rows.len(), 22);
        println!(
            "{:<44} {:>7.2} ms {:>12}",
            format!("first page ({c}, with opening the fs)"),
            ms(first),
            p.bytes_read
        );
        let before = p.bytes_read;
        let t = Instant::now();
        p.end(22, 80);
        let rows = p.page(22, 80);
        let end = t.elapsed();
        assert!(
            rows.last()
                .is_some_and(|r| r.text.starts_with("the last line"))
        );
        println!(
            "{:<44} {:>7.2} ms {:>12}",
            format!("jump to the end ({c})"),
            ms(end),
            p.bytes_read - before
        );
    }

    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "search in 1 GiB of log text (warm)", "time", "MB/s", "ratio"
    );
    // Warm the caches: the image's blocks, the host file's.
    let _ = Command::new("cat")
        .arg(&image)
        .stdout(std::process::Stdio::null())
        .status();
    let grep = best(3, || {
        let out = Command::new("grep")
            .arg("-c")
            .arg(std::str::from_utf8(NEEDLE).unwrap_or_default())
            .arg(&text)
            .output()
            .expect("grep");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    });
    let fs = open();
    let o = source::open(&fs, b"/var/log/messages").expect("open the text");
    let no = AtomicBool::new(false);
    let row = |name: &str, base: Option<(u64, u64)>| {
        let secs = best(3, || {
            let r = search::find(
                &o.content,
                &search::Query::new(NEEDLE, 0, true, base),
                &no,
                &mut |_, _| {},
            );
            assert!(matches!(r, Outcome::Found(_)), "{r:?}");
        });
        println!(
            "{:<44} {:>7.1} ms {:>10.0} {:>8.2}",
            name,
            secs * 1e3,
            TEXT_BYTES as f64 / secs / 1e6,
            secs / grep
        );
    };
    row("vmrescue search (ext4 reader)", None);
    row("vmrescue search, counting lines", Some((0, 1)));
    println!(
        "{:<44} {:>7.1} ms {:>10.0} {:>8.2}",
        "grep -c on the host file (same bytes)",
        grep * 1e3,
        TEXT_BYTES as f64 / grep / 1e6,
        1.0
    );
    println!("(ratio: our time / grep's; below 1 is faster)");
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The fastest of `n` runs of `f`, in seconds.
fn best(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// 1 GiB of syslog-like lines; the needle only on the last line.
fn write_text(path: &Path) {
    let f = std::fs::File::create(path).expect("text file");
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut written = 0usize;
    let mut i = 0u64;
    let last = format!(
        "Dec  2 23:59:59 guest {}\n",
        String::from_utf8_lossy(NEEDLE)
    );
    while written + 200 < TEXT_BYTES - last.len() {
        let line = format!(
            "Dec  2 {:02}:{:02}:{:02} guest systemd[1]: Started Session {i} of user root (pid {}).\n",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            i * 7 % 32768
        );
        w.write_all(line.as_bytes()).expect("write");
        written += line.len();
        i += 1;
    }
    let pad = TEXT_BYTES - last.len() - written;
    w.write_all(&vec![b'.'; pad - 1]).expect("write");
    w.write_all(b"\n").expect("write");
    w.write_all(last.as_bytes()).expect("write");
    w.flush().expect("flush");
}

/// A 4 GiB log: 1 MiB of lines at the start, a hole, lines at the end.
fn write_sparse(path: &Path) {
    let f = std::fs::File::create(path).expect("sparse file");
    let head: String = (0..20_000)
        .map(|i| {
            format!(
                "Dec  1 00:00:{:02} guest kernel: boot message {i}\n",
                i % 60
            )
        })
        .collect();
    f.write_all_at(head.as_bytes(), 0).expect("write");
    let tail: String = (0..1000)
        .map(|i| {
            format!(
                "Dec  2 23:59:{:02} guest kernel: late message {i}\n",
                i % 60
            )
        })
        .chain(std::iter::once("the last line of the log\n".to_string()))
        .collect();
    f.write_all_at(tail.as_bytes(), SPARSE_BYTES - tail.len() as u64)
        .expect("write");
}
