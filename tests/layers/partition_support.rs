//! Helpers shared by the partition, probe and layers tests: the tools'
//! reports as data, and byte sources with damage applied.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::image::{Image, ImageFormat};
use vmrescue::io::{FileSource, ReadAt};
use vmrescue::layers::{Layout, scan};

/// The partition-table fixtures with an `sfdisk --json` report.
pub const TABLE_FIXTURES: &[&str] = &[
    "part-mbr",
    "part-mbr-0f",
    "part-mbr-4k",
    "part-gpt",
    "part-gpt-4k",
    "part-gpt-damaged",
    "demo",
];

/// Fixtures without a partition table.
pub const BARE_FIXTURES: &[&str] = &[
    "bare-ext4",
    "bare-xfs",
    "bare-vfat",
    "bare-fat32",
    "bare-btrfs",
    "bare-pv",
];

/// One partition as `sfdisk --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfdiskPart {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub part_type: String,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub bootable: bool,
    pub attrs: Option<String>,
}

/// A table as `sfdisk --json` prints it.
#[derive(Debug, Clone)]
pub struct SfdiskTable {
    pub label: String,
    pub id: String,
    pub sector_size: u64,
    pub partitions: Vec<SfdiskPart>,
}

/// Parse `<name>.sfdisk.json`.
pub fn sfdisk(name: &str) -> SfdiskTable {
    let text = common_report(&format!("{name}.sfdisk.json"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("sfdisk json");
    let t = &v["partitiontable"];
    let s = |x: &serde_json::Value| x.as_str().map(str::to_string);
    let mut partitions = Vec::new();
    for p in t["partitions"].as_array().expect("partitions") {
        let node = p["node"].as_str().expect("node");
        let digits: String = node
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        partitions.push(SfdiskPart {
            number: digits.parse().expect("partition number"),
            start: p["start"].as_u64().expect("start"),
            size: p["size"].as_u64().expect("size"),
            part_type: s(&p["type"]).expect("type"),
            name: s(&p["name"]),
            uuid: s(&p["uuid"]),
            bootable: p["bootable"].as_bool().unwrap_or(false),
            attrs: s(&p["attrs"]),
        });
    }
    SfdiskTable {
        label: s(&t["label"]).expect("label"),
        id: s(&t["id"]).expect("id"),
        sector_size: t["sectorsize"].as_u64().unwrap_or(512),
        partitions,
    }
}

/// `<name>.blkid`: blocks of `blkid -p -o export` output, each headed `VOLUME=<name>`.
pub fn blkid(name: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let text = common_report(&format!("{name}.blkid"));
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        // blkid -o export escapes spaces and specials with a backslash.
        let v = v.replace("\\ ", " ");
        if k == "VOLUME" {
            out.push((v, BTreeMap::new()));
        } else if let Some((_, m)) = out.last_mut() {
            m.insert(k.to_string(), v);
        }
    }
    out
}

fn common_report(file: &str) -> String {
    crate::common::report(file)
}

/// Read the layers of one image file.
pub fn layout_of(path: &Path) -> Layout {
    let img = vmrescue::image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    scan(vec![img])
}

/// A byte source with damage applied: a prefix of `base` (truncation) with
/// some bytes replaced.
pub struct Damaged {
    base: Arc<dyn ReadAt>,
    size: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl Damaged {
    /// The first `size` bytes of `base` with `patches` (position, new bytes)
    /// applied; patches must not overlap.
    pub fn new(base: &Arc<dyn ReadAt>, size: u64, mut patches: Vec<(u64, Vec<u8>)>) -> Damaged {
        patches.sort_by_key(|(at, _)| *at);
        for w in patches.windows(2) {
            assert!(
                w[0].0 + w[0].1.len() as u64 <= w[1].0,
                "overlapping patches"
            );
        }
        Damaged {
            base: Arc::clone(base),
            size,
            patches,
        }
    }
}

impl ReadAt for Damaged {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| vmrescue::io::past_end(offset, buf.len(), self.size))?;
        self.base.read_exact_at(offset, buf)?;
        // Patches are sorted by position and do not overlap (see `Damaged::new`).
        let first = self
            .patches
            .partition_point(|(at, b)| at + b.len() as u64 <= offset);
        for (at, bytes) in &self.patches[first..] {
            if *at >= end {
                break;
            }
            let p_end = at + bytes.len() as u64;
            let lo = offset.max(*at);
            let hi = end.min(p_end);
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// The fixture image `name`, opened as a byte source.
pub fn source(name: &str) -> (PathBuf, Arc<dyn ReadAt>) {
    let path = crate::common::fixture(name);
    let src = FileSource::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, Arc::new(src))
}

/// Read `len` bytes at `offset` of a source.
pub fn bytes(src: &dyn ReadAt, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    src.read_exact_at(offset, &mut b).expect("read");
    b
}

/// Scan a damaged copy; panics (with the case's description) if the scan
/// panics or takes longer than `limit`. Returns the layout's problems.
pub fn scan_damaged(path: &Path, src: Damaged, what: &str, limit: Duration) -> Vec<String> {
    let image = Image::from_source(path.to_path_buf(), Arc::new(src), ImageFormat::Raw);
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let what_owned = what.to_string();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let layout = scan(vec![image]);
            // Everything the CLI would show must be computable too.
            let roots = vmrescue::layers::tree::build(&layout);
            let _ = vmrescue::layers::tree::render_text(&roots);
            let _ = serde_json::to_string(&roots).expect("json");
            vmrescue::problem::texts(&layout.all_problems())
        }));
        let _ = tx.send(result.map_err(|_| what_owned));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(problems)) => problems,
        Ok(Err(w)) => panic!("scan panicked on {w}"),
        Err(_) => panic!(
            "scan of {what} did not finish within {:?} (hang?)",
            started.elapsed()
        ),
    }
}

/// Write a partition table on `target` (an image file or a block device)
/// with sfdisk from `script` (sfdisk's input format).
pub fn write_table(target: &Path, script: &str) {
    use std::io::Write;
    let mut sfdisk = std::process::Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(target)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run sfdisk (Debian package fdisk)");
    sfdisk
        .stdin
        .take()
        .expect("sfdisk stdin")
        .write_all(script.as_bytes())
        .expect("write the sfdisk script");
    assert!(
        sfdisk.wait().expect("wait for sfdisk").success(),
        "sfdisk failed"
    );
}

/// Run a tool to build a test image; fails the test with its stderr.
pub fn run_tool(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
