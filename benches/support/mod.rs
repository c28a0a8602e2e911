//! What the benchmarks that race a kernel path share: a scratch folder
//! removed at the end, a read-only loop mount, dropping the page cache.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drop the page cache (root): the next read comes from the disk.
pub fn drop_caches() {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").expect("drop caches (root)");
}

/// Removes the scratch directory (image included) when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A read-only loop mount (`ro,noload`), undone when dropped.
pub struct Mount {
    /// The mount point.
    pub dir: PathBuf,
}

impl Mount {
    /// Mount `img` read-only on `dir` (made if missing).
    pub fn new(img: &Path, dir: &Path) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let st = Command::new("mount")
            .args(["-o", "loop,ro,noload"])
            .arg(img)
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -o loop,ro,noload");
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // The loop device goes with the mount (mount -o loop sets autoclear).
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// A byte source that counts what is read through it (bytes and reads), to
/// print how much of an image a command touched.
pub struct Counting {
    inner: std::sync::Arc<dyn vmrescue::io::ReadAt>,
    /// Bytes read so far.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Reads made so far.
    pub reads: std::sync::atomic::AtomicU64,
}

impl Counting {
    /// Count the reads of `inner`.
    pub fn new(inner: std::sync::Arc<dyn vmrescue::io::ReadAt>) -> Counting {
        Counting {
            inner,
            bytes: Default::default(),
            reads: Default::default(),
        }
    }
}

impl vmrescue::io::ReadAt for Counting {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
}

/// `target/bench/NAME`, built once by `benches/SCRIPT target/bench` (root:
/// loop devices and lvm2); exits saying so when it cannot be built.
pub fn bench_image(name: &str, script: &str) -> PathBuf {
    bench_image_args(name, script, &[])
}

/// [`bench_image`], the script given `args` after the folder.
pub fn bench_image_args(name: &str, script: &str, args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench");
    let img = dir.join(name);
    if !img.exists() {
        eprintln!(
            "building {} with benches/{script} (needs root)",
            img.display()
        );
        let status = Command::new("sh")
            .arg(root.join("benches").join(script))
            .arg(&dir)
            .args(args)
            .status()
            .expect("run sh");
        if !status.success() {
            eprintln!("could not build the benchmark image (run as root: loop devices and lvm2)");
            std::process::exit(1);
        }
    }
    img
}

/// Before a timed run: write back what earlier runs left dirty, and for a
/// cold run drop the page cache (root; a failure leaves it warm).
pub fn settle(cold: bool) {
    let _ = Command::new("sync").status();
    if cold {
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "3\n");
    }
}

/// Where copies go, emptied: `/dev/shm/<name>` when there is a tmpfs (the
/// destination disk's speed is not what is measured), else `dir/out`.
pub fn out_dir(dir: &Path, name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let out = if shm.is_dir() {
        shm.join(name)
    } else {
        dir.join("out")
    };
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output directory");
    out
}

/// Run a tool quietly; a failure stops the benchmark.
pub fn sh(cmd: &mut Command) {
    let st = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run tool");
    assert!(st.success(), "{cmd:?} failed");
}

/// This process's peak resident set (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Run this benchmark program again as `--child ARGS…` (so the child's
/// peak RSS is its own): it prints "seconds bytes peak_rss_kib", returned.
pub fn run_child(args: &[&std::ffi::OsStr]) -> (f64, u64, u64) {
    let o = Command::new(std::env::current_exe().expect("own path"))
        .arg("--child")
        .args(args)
        .output()
        .expect("run child");
    assert!(
        o.status.success(),
        "child {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    let num = |i: usize| {
        v.get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .expect("child output")
    };
    (num(0), num(1) as u64, num(2) as u64)
}

/// Generated disk data: per 64 KiB block, text-like (16 letters, compresses
/// to about half) or random bytes.
pub fn make_raw(path: &Path, size: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).expect("create the raw file"));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut block = vec![0u8; 65536];
    for i in 0..size / block.len() as u64 {
        let random = i % 10 < 3;
        for c in block.chunks_mut(8) {
            let r = next();
            if random {
                c.copy_from_slice(&r.to_le_bytes());
            } else {
                for (k, b) in c.iter_mut().enumerate() {
                    *b = b"etaoinshrdlu cmf"[((r >> (k * 4)) & 15) as usize];
                }
            }
        }
        w.write_all(&block).expect("write the raw file");
    }
    w.flush().expect("write the raw file");
}

/// Whose CPU time to read.
#[derive(Clone, Copy)]
pub enum UsageWho {
    /// This process.
    Myself,
    /// Its waited-for children.
    Children,
}

/// CPU time (user + system) used so far, from `/proc/self/stat` (in the
/// kernel's USER_HZ ticks, 100 per second).
pub fn cpu(who: UsageWho) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name (which is in parentheses).
    let after = &stat[stat.rfind(')').expect("a command name in parentheses") + 2..];
    let f: Vec<u64> = after.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // utime, stime, cutime, cstime are fields 14-17 of the whole line.
    let ticks = match who {
        UsageWho::Myself => f[11] + f[12],
        UsageWho::Children => f[13] + f[14],
    };
    Duration::from_millis(ticks * 10)
}

/// MiB per second.
pub fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Bytes per read in the sequential read benchmarks.
pub const CHUNK: usize = 4 << 20;

/// Read all of the image at `path` through vmrescue in [`CHUNK`] reads:
/// the time taken and the virtual size.
pub fn read_through(path: &Path) -> (Duration, u64) {
    use vmrescue::io::ReadAt;
    let img = vmrescue::image::open(path).expect("open the image");
    let src = &img.source;
    let size = src.size();
    let mut buf = vec![0u8; CHUNK];
    let mut fold = 0u64;
    let t = std::time::Instant::now();
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(CHUNK as u64) as usize;
        src.read_exact_at(pos, &mut buf[..n])
            .expect("read the image");
        fold = fold.wrapping_add(u64::from(buf[0]) ^ u64::from(buf[n - 1]));
        pos += n as u64;
    }
    let d = t.elapsed();
    std::hint::black_box(fold);
    (d, size)
}

/// `qemu-img convert` of the `format` image at `path` to QEMU's null block
/// driver (reads and decompresses everything, writes nothing): its time.
pub fn qemu_null(path: &Path, format: &str, size: u64) -> Duration {
    let t = std::time::Instant::now();
    let out = Command::new("qemu-img")
        .args(["convert", "-n", "-f", format])
        .arg(path)
        .arg("--target-image-opts")
        .arg(format!("driver=null-co,size={size}"))
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

/// The best of three passes of vmrescue and of qemu-img, and the CPU time
/// each used per pass.
pub struct Race {
    /// vmrescue's best wall-clock time.
    pub ours: Duration,
    /// qemu-img's best wall-clock time.
    pub qemu: Duration,
    /// vmrescue's CPU time, summed over three passes.
    pub cpu_ours: Duration,
    /// qemu-img's CPU time, summed over three passes.
    pub cpu_qemu: Duration,
}

/// Race vmrescue and qemu-img over the `format` image at `path` (`size`
/// virtual bytes): the page cache warmed first, then three passes each.
pub fn race(path: &Path, format: &str, size: u64) -> Race {
    let _ = read_through(path);
    let mut r = Race {
        ours: Duration::MAX,
        qemu: Duration::MAX,
        cpu_ours: Duration::ZERO,
        cpu_qemu: Duration::ZERO,
    };
    for _ in 0..3 {
        let c = cpu(UsageWho::Myself);
        let (d, n) = read_through(path);
        r.cpu_ours += cpu(UsageWho::Myself) - c;
        assert_eq!(n, size);
        r.ours = r.ours.min(d);
        let c = cpu(UsageWho::Children);
        r.qemu = r.qemu.min(qemu_null(path, format, size));
        r.cpu_qemu += cpu(UsageWho::Children) - c;
    }
    r
}

impl Race {
    /// The table row: label, file size, both speeds, their ratio (above 1:
    /// vmrescue is faster) and CPU seconds per pass.
    pub fn row(&self, label: &str, path: &Path, size: u64) -> String {
        let file_mib = std::fs::metadata(path).map_or(0, |m| m.len() >> 20);
        let (a, b) = (mib_s(size, self.ours), mib_s(size, self.qemu));
        format!(
            "{label:<17} {file_mib:>9} {a:>15.0} {b:>15.0} {:>7.2} {:>9.2} {:>9.2}",
            a / b,
            self.cpu_ours.as_secs_f64() / 3.0,
            self.cpu_qemu.as_secs_f64() / 3.0,
        )
    }
}

/// The heading of [`Race::row`]'s table.
pub fn race_heading() -> String {
    format!(
        "{:<17} {:>9} {:>15} {:>15} {:>7} {:>9} {:>9}",
        "image", "file MiB", "vmrescue MiB/s", "qemu-img MiB/s", "ratio", "our CPU s", "qemu CPU s"
    )
}

/// The virtual size to benchmark in bytes (`VMRESCUE_BENCH_MIB`, else
/// `default_mib`), or `None` when not run by `cargo bench` (`cargo test
/// --benches` runs bench programs without `--bench`).
pub fn bench_size(default_mib: u64) -> Option<u64> {
    if !std::env::args().any(|a| a == "--bench") {
        return None;
    }
    let mib: u64 = std::env::var("VMRESCUE_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_mib);
    Some(mib << 20)
}

/// Start `vmrescue ARGS…` in a real pseudo-terminal (120×40) and return the
/// time from the start to the first frame whose text holds every string of
/// `wanted` (the file pane's title and an entry of the listing); the program
/// is then quit with `q`. Fails after 30 s, showing the screen.
pub fn first_frame(args: &[&str], wanted: &[&str]) -> Duration {
    use expectrl::{Expect, Session};
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "stty rows 40 cols 120 && exec \"$0\" {}",
            quoted.join(" ")
        ))
        .arg(env!("CARGO_BIN_EXE_vmrescue"))
        .env("TERM", "xterm-256color");
    let start = std::time::Instant::now();
    let mut session = Session::spawn(cmd).expect("spawn vmrescue in a pty");
    let rows = 40.try_into().expect("40 rows");
    let cols = 120.try_into().expect("120 columns");
    let mut parser = vt100::Parser::new(rows, cols, 0);
    let mut buf = [0u8; 65536];
    loop {
        if let Ok(n) = session.try_read(&mut buf) {
            parser.process(&buf[..n]);
        }
        let screen = parser.screen().contents();
        if wanted.iter().all(|w| screen.contains(w)) {
            let took = start.elapsed();
            let _ = session.send("q");
            let _ = session.get_process_mut().wait();
            return took;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no first frame showing {wanted:?}:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Make `img` (`size` as mke2fs takes it, e.g. `1T`) an ext4 holding the
/// tree at `tree` (`mke2fs -d`, with `extra` options), written under a
/// temporary name and renamed when done; the tree is removed afterwards.
pub fn mke2fs_from(tree: &Path, img: &Path, size: &str, extra: &[&str]) {
    let tmp = img.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let o = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .args(extra)
        .arg("-d")
        .arg(tree)
        .arg(&tmp)
        .arg(size)
        .output()
        .expect("mke2fs (Debian package e2fsprogs)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&tmp, img).expect("rename the new image");
    let _ = std::fs::remove_dir_all(tree);
}

/// Read all of `src` in 1 MiB reads into `out`, the next read on a second
/// thread while the current one is written (as `cp` reads a file): how the
/// network-disk benchmarks (NBD, RBD) read a whole disk.
pub fn read_in_order(src: std::sync::Arc<dyn vmrescue::io::ReadAt>, out: &Path) {
    let size = src.size();
    let mut f = File::create(out).expect("create the output file");
    let chunk = 1u64 << 20;
    let read = move |src: &dyn vmrescue::io::ReadAt, at: u64| {
        let mut b = vec![0u8; chunk.min(size - at) as usize];
        src.read_exact_at(at, &mut b).expect("read from the disk");
        b
    };
    let mut next = (size > 0).then(|| read(&*src, 0));
    let mut at = 0u64;
    while let Some(buf) = next.take() {
        let following = at + chunk;
        let h = (following < size).then(|| {
            let src = std::sync::Arc::clone(&src);
            std::thread::spawn(move || read(&*src, following))
        });
        f.write_all(&buf).expect("write the output file");
        next = h.map(|h| h.join().expect("the reading thread"));
        at = following;
    }
    f.sync_all().expect("sync the output file");
}

/// Write `mib` MiB of generated bytes (xorshift, no two blocks alike, nothing
/// a reader could skip as zeros) to `path`: the data the network-disk
/// benchmarks read.
pub fn write_generated(path: &Path, mib: u64) {
    let mut w = BufWriter::new(File::create(path).expect("create the data file"));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for c in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&block).expect("write the data file");
    }
    w.flush().expect("write the data file");
}

/// How many times each row is timed (`VMRESCUE_BENCH_REPS`, default 3):
/// a row reports the median, so that one run disturbed by another process
/// on a shared machine does not decide a ratio. Once in a smoke run
/// (`cargo test` runs bench programs without `--bench`).
pub fn reps() -> usize {
    if !std::env::args().any(|a| a == "--bench") {
        return 1;
    }
    std::env::var("VMRESCUE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(3)
}

/// The median of `times` (the lower middle one of an even count).
pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times
        .get((times.len().saturating_sub(1)) / 2)
        .copied()
        .unwrap_or(0.0)
}

/// Run `f` [`reps`] times (after a priming run when warm), each into the
/// emptied folder `out_dir(dir, name)` after [`settle`], the folder removed
/// after it: the median of the seconds each run gives, and every run's
/// other result.
pub fn median_of_runs<T>(
    dir: &Path,
    name: &str,
    cold: bool,
    mut f: impl FnMut(&Path) -> (f64, T),
) -> (f64, Vec<T>) {
    if !cold {
        f(&out_dir(dir, name));
    }
    let (mut times, mut got) = (Vec::new(), Vec::new());
    for _ in 0..reps() {
        let out = out_dir(dir, name);
        settle(cold);
        let (secs, t) = f(&out);
        let _ = std::fs::remove_dir_all(&out);
        times.push(secs);
        got.push(t);
    }
    (median(times), got)
}

/// [`median_of_runs`] of `f`, timed around the call.
pub fn median_wall(dir: &Path, name: &str, cold: bool, f: impl Fn(&Path)) -> f64 {
    median_of_runs(dir, name, cold, |out| {
        let t = Instant::now();
        f(out);
        (t.elapsed().as_secs_f64(), ())
    })
    .0
}
