//! Copy-out benchmark: `vmrescue cp` against `cp -a` (and, from an ext4
//! image, `debugfs rdump`), measured in the same run, warm page cache.
//!
//! Cases: (a) one 1 GiB file, (b) a generated tree of about 30,000 small
//! files (100 per directory, 0–16 KiB, with symlinks and hard links).
//! Prints the best of three runs of each tool, the ratios, and vmrescue's
//! peak RSS (`VmHWM`, sampled while it runs). No timed assertions.
//!
//! (c) The TUI's copy job against `vmrescue cp`, both from an ext4 image of
//! tree (b) (`mke2fs -d`, no root needed): the TUI row is this program run
//! again as a child that drives the browser headless through the code the
//! terminal runs — [`App`] on the image, every entry of the root marked,
//! the copy dialog's plan and copy on job threads ([`Jobs::spawn`]), their
//! events handled and a frame drawn (on a `TestBackend`) between batches
//! as `tui::run` does — timed as a whole process like the CLI.
//!
//! `cargo bench --bench copy`; `VMRESCUE_BENCH_DIR` picks the scratch
//! directory (default `/dev/shm/vmrescue-bench-copy` when there is a tmpfs,
//! else `target/bench-copy`: on an ext4 without a journal, the kernel skips
//! over inodes freed in the last 30 s when it makes new ones, so each run
//! after the first would measure that), `VMRESCUE_BENCH_COLD=1` (root)
//! also drops the page cache before every run, `VMRESCUE_BENCH_BIG_MIB` and
//! `VMRESCUE_BENCH_FILES` shrink the cases for a quick trial.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the files are copied from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
enum Source {
    /// A host directory (vmrescue reads it through `fs::host`; `cp -a` directly).
    HostDir,
    /// An ext4 image made with `mke2fs -d` from the same tree (vmrescue's own
    /// reader; `cp -a` from a read-only loop mount, needs root; `debugfs rdump`).
    Ext4Image,
}

/// Switch the source here.
const SOURCE: Source = Source::HostDir;

/// Timed runs of each tool per case (after one warm-up run).
const RUNS: usize = 3;

/// A size from the environment (for quick trial runs), or the default.
fn env_size(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--tui-child") {
        tui_child(Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    let shm = Path::new("/dev/shm");
    let root = std::env::var_os("VMRESCUE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| match shm.is_dir() {
            true => shm.join("vmrescue-bench-copy"),
            false => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-copy"),
        });
    let cold = std::env::var_os("VMRESCUE_BENCH_COLD").is_some();
    // `cargo test --all-targets` runs this without `--bench`: a small smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (big_default, files_default) = if smoke { (8, 200) } else { (1024, 30_000) };
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    if smoke {
        println!("smoke run (`cargo bench --bench copy` runs the real sizes)");
    }
    println!(
        "copy-out benchmark, source: {SOURCE:?}, page cache: {}",
        if cold { "cold" } else { "warm" }
    );
    println!("scratch directory: {}", root.display());

    let big = root.join("big");
    std::fs::create_dir_all(&big).unwrap();
    let big_mib = env_size("VMRESCUE_BENCH_BIG_MIB", big_default);
    write_noise(&big.join("big.bin"), big_mib << 20, 1);
    let small = root.join("small");
    let (files, bytes) = make_small_tree(
        &small,
        env_size("VMRESCUE_BENCH_FILES", files_default) as usize,
    );
    println!("(b) generated {files} files, {} MiB", bytes >> 20);

    let labels = [
        format!("(a) one file of {big_mib} MiB"),
        format!("(b) {files} small files"),
    ];
    for (label, tree) in labels.iter().zip([&big, &small]) {
        println!("\n{label}");
        let case = Case::prepare(&root, tree);
        let mut results: Vec<(&str, Option<Duration>)> = Vec::new();
        let (t, rss) = case.best(cold, |dst| case.vmrescue(dst));
        results.push(("vmrescue cp", t));
        results.push(("cp -a", case.best(cold, |dst| case.cp_a(dst)).0));
        if SOURCE == Source::Ext4Image {
            results.push(("debugfs rdump", case.best(cold, |dst| case.rdump(dst)).0));
        }
        let ours = results[0].1;
        for (tool, t) in &results {
            match t {
                Some(t) => {
                    let ratio = ours.map(|o| o.as_secs_f64() / t.as_secs_f64());
                    println!(
                        "  {tool:<14} {:>8.3} s  {:>8.1} MB/s  vmrescue/this = {}",
                        t.as_secs_f64(),
                        case.bytes as f64 / t.as_secs_f64() / 1e6,
                        ratio.map_or("-".into(), |r| format!("{r:.2}"))
                    );
                }
                None => println!("  {tool:<14} failed"),
            }
        }
        if let Some(kib) = rss {
            println!("  vmrescue peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
        case.cleanup();
    }
    tui_against_cli(&root, &small, files, cold);
    let _ = std::fs::remove_dir_all(&root);
}

/// (c): the TUI's copy job against `vmrescue cp`, from an ext4 image of `tree`.
fn tui_against_cli(root: &Path, tree: &Path, files: usize, cold: bool) {
    println!(
        "\n(c) {files} small files from an ext4 image: the TUI's copy job against `vmrescue cp`"
    );
    let image = root.join("tui.img");
    make_ext4(tree, &image, du(tree));
    let case = Case {
        image: image.clone(),
        cp_src: image.clone(),
        mount: None,
        out: root.join("out"),
        bytes: du(tree),
    };
    let (cli, cli_rss) = case.best(cold, |dst| case.vmrescue(dst));
    let (tui, tui_rss) = case.best(cold, |dst| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg("--tui-child").arg(&image).arg(dst);
        timed(cmd)
    });
    for (tool, t, rss) in [
        ("vmrescue cp", cli, cli_rss),
        ("TUI copy job", tui, tui_rss),
    ] {
        match t {
            Some(t) => println!(
                "  {tool:<14} {:>8.3} s  peak RSS {:>6.1} MiB",
                t.as_secs_f64(),
                rss.unwrap_or(0) as f64 / 1024.0
            ),
            None => println!("  {tool:<14} failed"),
        }
    }
    if let (Some(c), Some(t)) = (cli, tui) {
        println!(
            "  TUI copy job / vmrescue cp = {:.2}",
            t.as_secs_f64() / c.as_secs_f64()
        );
    }
    let _ = std::fs::remove_file(&image);
}

/// The browser on `image`, headless: mark every entry of the root, copy
/// them into `dest` through the copy dialog, with the plan and the copy on
/// job threads and a frame drawn between event batches, as `tui::run` does.
/// Exits non-zero unless the copy ends with nothing failed.
fn tui_child(image: &Path, dest: &Path) {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::sync::Arc;
    use vmrescue::tui::copier::JobCopier;
    use vmrescue::tui::dialogs::Dialog;
    use vmrescue::tui::jobs::Jobs;
    use vmrescue::tui::{Action, App, AppConfig, Event, views};

    let img = vmrescue::image::open(image).expect("open the image");
    let layout = Arc::new(vmrescue::layers::scan(vec![img]));
    let jobs = Jobs {
        layout: Arc::clone(&layout),
        opener: Arc::new(vmrescue::engine::userspace::Userspace::default()),
        copier: Arc::new(JobCopier),
    };
    let mut app = App::new(layout, AppConfig::default());
    app.resize(120, 40);
    app.start();
    // Opening the volume and listing its root, as on the way in.
    jobs.run_inline(&mut app);
    app.update(&Action::MarkAll);
    app.update(&Action::CopyMarked);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut started = false;
    let mut done = false;
    while !done {
        for effect in app.take_effects() {
            jobs.spawn(effect, tx.clone());
        }
        term.draw(|f| views::draw(f, &app)).unwrap();
        // The plan is ready: type the destination and press Enter.
        if !started
            && let Some(Dialog::CopySetup(c)) = &app.dialog
            && c.summary.is_some()
        {
            app.update(&Action::DeleteToStart);
            for ch in dest.display().to_string().chars() {
                app.update(&Action::Insert(ch));
            }
            app.update(&Action::Confirm);
            assert!(app.copy.is_some(), "the copy did not start");
            started = true;
            continue;
        }
        let first = rx.recv().expect("a job event");
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(512));
        for ev in batch {
            let end = matches!(
                &ev,
                Event::Job(vmrescue::tui::event::JobResult::CopyDone(_))
            );
            app.handle(ev);
            done |= end;
        }
    }
    match &app.dialog {
        Some(Dialog::Summary { summary, .. }) if summary.failed_count == 0 => {}
        Some(Dialog::Summary { summary, .. }) => {
            eprintln!("TUI copy failed: {:?}", summary.failed.first());
            std::process::exit(1);
        }
        _ => {
            eprintln!("TUI copy: no summary");
            std::process::exit(1);
        }
    }
}

/// Deterministic incompressible bytes.
fn write_noise(path: &Path, len: u64, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// About 30,000 files in directories of 100, sizes 0–16 KiB; every 50th
/// entry is a symlink, every 200th a hard link.
fn make_small_tree(root: &Path, count: usize) -> (usize, u64) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let data: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut bytes = 0;
    let mut last_file: Option<PathBuf> = None;
    for i in 0..count {
        let dir = root.join(format!("d{:03}/s{:02}", i / 1000, (i / 100) % 10));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let p = dir.join(format!("f{i:05}"));
        if i % 50 == 49 {
            std::os::unix::fs::symlink(format!("../s00/f{:05}", i - i % 100), &p).unwrap();
        } else if i % 200 == 101 {
            std::fs::hard_link(last_file.as_ref().unwrap(), &p).unwrap();
        } else {
            let len = match next() % 10 {
                0 => 0,
                1..=6 => (next() % 4096) as usize,
                _ => (next() % 16384) as usize,
            };
            std::fs::write(&p, &data[..len]).unwrap();
            bytes += len as u64;
            last_file = Some(p);
        }
    }
    (count, bytes)
}

struct Case {
    /// What vmrescue reads: the tree or an image of it.
    image: PathBuf,
    /// What `cp -a` copies: the tree or a mount of the image.
    cp_src: PathBuf,
    mount: Option<PathBuf>,
    out: PathBuf,
    bytes: u64,
}

impl Case {
    fn prepare(root: &Path, tree: &Path) -> Case {
        let bytes = du(tree);
        let out = root.join("out");
        match SOURCE {
            Source::HostDir => Case {
                image: tree.to_path_buf(),
                cp_src: tree.to_path_buf(),
                mount: None,
                out,
                bytes,
            },
            Source::Ext4Image => {
                let image = root.join("fs.img");
                make_ext4(tree, &image, bytes);
                let mnt = root.join("mnt");
                std::fs::create_dir_all(&mnt).unwrap();
                let mounted = Command::new("mount")
                    .args(["-o", "ro,loop,noload"])
                    .arg(&image)
                    .arg(&mnt)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(mounted, "mounting the image needs root");
                Case {
                    image,
                    cp_src: mnt.clone(),
                    mount: Some(mnt),
                    out,
                    bytes,
                }
            }
        }
    }

    /// Best time of [`RUNS`] (after one warm-up run), and the highest peak RSS seen.
    fn best(
        &self,
        cold: bool,
        run: impl Fn(&Path) -> Option<(Duration, Option<u64>)>,
    ) -> (Option<Duration>, Option<u64>) {
        let mut best: Option<Duration> = None;
        let mut rss: Option<u64> = None;
        for i in 0..=RUNS {
            let _ = std::fs::remove_dir_all(&self.out);
            std::fs::create_dir_all(&self.out).unwrap();
            if cold {
                sync_and_drop_caches();
            }
            let Some((t, r)) = run(&self.out) else {
                return (None, rss);
            };
            rss = rss.max(r);
            if i > 0 || cold {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        let _ = std::fs::remove_dir_all(&self.out);
        (best, rss)
    }

    fn vmrescue(&self, dst: &Path) -> Option<(Duration, Option<u64>)> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmrescue"));
        cmd.arg("cp").arg("-q").arg(&self.image).arg("/.").arg(dst);
        timed(cmd)
    }

    fn cp_a(&self, dst: &Path) -> Option<(Duration, Option<u64>)> {
        let mut cmd = Command::new("cp");
        cmd.arg("-a").arg(self.cp_src.join(".")).arg(dst);
        timed(cmd)
    }

    fn rdump(&self, dst: &Path) -> Option<(Duration, Option<u64>)> {
        let mut cmd = Command::new("debugfs");
        cmd.arg("-R")
            .arg(format!("rdump / {}", dst.display()))
            .arg(&self.image);
        timed(cmd)
    }

    fn cleanup(&self) {
        if let Some(m) = &self.mount {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

/// Run `cmd`, timing it and sampling its peak RSS (`VmHWM`, KiB) while it runs.
fn timed(mut cmd: Command) -> Option<(Duration, Option<u64>)> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().ok()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut hwm = None;
    let status = loop {
        if let Some(s) = child.try_wait().ok()? {
            break s;
        }
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            hwm = hwm.max(Some(kib));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        eprintln!(
            "  {:?} failed: {}",
            cmd.get_program(),
            err.lines().last().unwrap_or("")
        );
        return None;
    }
    Some((elapsed, hwm))
}

/// An ext4 image of `tree` (holding `bytes` of file data) at `image`, by `mke2fs -d`.
fn make_ext4(tree: &Path, image: &Path, bytes: u64) {
    let size_mib = bytes / (1 << 20) * 3 / 2 + 256;
    let ok = Command::new("mke2fs")
        .stdout(Stdio::null())
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(tree)
        .arg(image)
        .arg(format!("{size_mib}M"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mke2fs -d failed (e2fsprogs needed)");
}

/// Apparent bytes of the regular files under `p` (hard links once).
fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert(m.ino()) {
                total += m.len();
            }
        }
    }
    total
}

fn sync_and_drop_caches() {
    let _ = Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        eprintln!("  (dropping the page cache needs root)");
    }
}
