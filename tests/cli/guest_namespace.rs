//! The guest namespace (issue #12) against the kernel.
//!
//! The fixture (`tests/fixtures/make/guest.sh`) is a two-disk guest whose
//! `/etc/fstab` mounts volumes of both disks in every form a real fstab
//! uses. Each test builds the same tree with the kernel: loop mounts of the
//! volumes' byte ranges (from `guest.mounts`, computed from sgdisk and lvm2,
//! not from vmrescue) at the fstab's mountpoints in a temporary directory,
//! unmounted by a drop guard whatever happens. vmrescue's `ls -lanR`, `cp`
//! and `cat` over the namespace must show what GNU `ls`, a walk and the
//! bytes of that tree show.
//!
//! What the kernel tree cannot do the way the guest does at boot, and how
//! the comparison deals with it (the only normalisations):
//! - `/srv/archive` has no mountpoint directory on the root filesystem (the
//!   guest's systemd would create it at boot) and the root is mounted
//!   read-only: that volume is mounted in a directory of its own and its
//!   listing spliced in at `/srv/archive`, as GNU `ls` would print it had
//!   the directory existed (`/srv` keeps its on-disk link count).
//! - `/boot/efi` is vfat, which this kernel cannot mount: vmrescue reads it
//!   in userspace, and what it shows there is compared with what mtools
//!   reads (`guest-a.efi.manifest`) instead of with the kernel tree.
//! - Placeholders: the `nofail` device of `/mnt/backup` is on no disk; `/tmp`
//!   (tmpfs) and `/proc` have no device. The kernel tree leaves the root's
//!   empty directories there (and `/boot`'s at `/boot/efi`); vmrescue shows
//!   an empty folder of its own (and says why on stderr for the first). At those four
//!   mountpoints only the name, the type and the emptiness are compared:
//!   their mode, links, owner, size and time are masked on both sides, with
//!   the `total` of the directories holding them. `swap` is not mounted and
//!   the `noauto` entry (`/mnt/boot-rescue`) is not mounted: both sides show
//!   the root's directory there.
//! - GNU `ls` runs with `TZ=UTC LC_ALL=C --time-style='+%Y-%m-%d %H:%M'
//!   --quoting-style=literal` (vmrescue's time format, bytewise order, raw
//!   names), its names are escaped as vmrescue shows them (`caf\xe9.txt`)
//!   and its headers `.`/`./x` read as `/`/`/x`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture, fixture_file, require_root, vmrescue};
use sha2::{Digest, Sha256};
use vmrescue::repair::undo::hex;

// ------------------------------------------------------------------ the kernel tree

/// One line of `guest.mounts`.
#[derive(Debug, Clone)]
enum Mount {
    /// A filesystem on IMAGE at OFFSET, SIZE bytes long.
    Volume {
        mountpoint: String,
        image: String,
        offset: u64,
        size: u64,
        fstype: String,
    },
    /// A bind mount of another path of the tree.
    Bind { mountpoint: String, source: String },
}

impl Mount {
    fn mountpoint(&self) -> &str {
        match self {
            Mount::Volume { mountpoint, .. } | Mount::Bind { mountpoint, .. } => mountpoint,
        }
    }
}

/// The mounts the guest makes at boot, in fstab order (`guest.mounts`).
fn boot_mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string(fixture_file("guest.mounts")).expect("read guest.mounts");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [mp, "bind", src] => Mount::Bind {
                    mountpoint: mp.to_string(),
                    source: src.to_string(),
                },
                [mp, img, off, size, fstype] => Mount::Volume {
                    mountpoint: mp.to_string(),
                    image: img.to_string(),
                    offset: off.parse().expect("offset"),
                    size: size.parse().expect("size"),
                    fstype: fstype.to_string(),
                },
                _ => panic!("guest.mounts: bad line {l:?}"),
            }
        })
        .collect()
}

/// The fixture's image file `name` (`guest-a.img`).
fn image(name: &str) -> PathBuf {
    fixture(name.strip_suffix(".img").expect("an .img name"))
}

/// The guest's volumes mounted by the kernel, read-only, at their
/// mountpoints under `root` (`/srv/archive` under `archive`: see the module
/// docs). Unmounted, innermost first, when dropped.
struct KernelTree {
    root: tempfile::TempDir,
    archive: Option<tempfile::TempDir>,
    /// What is mounted, in mount order.
    mounted: Vec<PathBuf>,
    /// Private copies of the images the kernel mounts: a loop device over
    /// the shared fixture would make the other tests' reads of it see the
    /// image in use.
    copies: tempfile::TempDir,
}

impl KernelTree {
    /// The whole tree the guest mounts at boot (vfat excepted).
    fn guest() -> KernelTree {
        Self::with(|_| true)
    }

    /// One volume alone at the tree's root, as `--volume` shows it.
    fn volume(mountpoint: &str) -> KernelTree {
        require_root("loop-mounts a volume of the guest to compare with the kernel");
        let m = boot_mounts()
            .into_iter()
            .find(|m| m.mountpoint() == mountpoint)
            .unwrap_or_else(|| panic!("no mount {mountpoint} in guest.mounts"));
        let Mount::Volume {
            image: img,
            offset,
            size,
            fstype,
            ..
        } = m
        else {
            panic!("{mountpoint} is a bind mount");
        };
        let mut t = KernelTree {
            root: tempfile::tempdir().expect("tempdir"),
            archive: None,
            mounted: Vec::new(),
            copies: tempfile::tempdir().expect("tempdir"),
        };
        let at = t.root.path().to_path_buf();
        t.mount_volume(&img, offset, size, &fstype, &at);
        t
    }

    fn with(keep: impl Fn(&Mount) -> bool) -> KernelTree {
        require_root("loop-mounts the guest's volumes to compare with the kernel");
        let mut t = KernelTree {
            root: tempfile::tempdir().expect("tempdir"),
            archive: None,
            mounted: Vec::new(),
            copies: tempfile::tempdir().expect("tempdir"),
        };
        for m in boot_mounts().iter().filter(|m| keep(m)) {
            match m {
                Mount::Volume {
                    mountpoint,
                    image: img,
                    offset,
                    size,
                    fstype,
                } => {
                    if fstype == "vfat" {
                        continue; // no vfat in this kernel: see the module docs
                    }
                    let at = t.path(mountpoint);
                    let at = if at.is_dir() {
                        at
                    } else {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let p = dir.path().to_path_buf();
                        assert_eq!(mountpoint, "/srv/archive", "{mountpoint}: no mountpoint");
                        t.archive = Some(dir);
                        p
                    };
                    t.mount_volume(img, *offset, *size, fstype, &at);
                }
                Mount::Bind { mountpoint, source } => {
                    let (src, at) = (t.path(source), t.path(mountpoint));
                    run_ok(Command::new("mount").arg("--bind").arg(&src).arg(&at));
                    t.mounted.push(at);
                }
            }
        }
        t
    }

    fn mount_volume(&mut self, img: &str, offset: u64, size: u64, fstype: &str, at: &Path) {
        let opts = match fstype {
            // Another test may have the same XFS mounted: same UUID.
            "xfs" => "ro,norecovery,nouuid",
            "ext4" => "ro,noload",
            _ => "ro",
        };
        run_ok(
            Command::new("mount")
                .arg("-t")
                .arg(fstype)
                .arg("-o")
                .arg(format!("{opts},loop,offset={offset},sizelimit={size}"))
                .arg(self.copy_of(img))
                .arg(at),
        );
        self.mounted.push(at.to_path_buf());
    }

    /// This tree's own copy of fixture image `img` (made on first use).
    fn copy_of(&self, img: &str) -> PathBuf {
        let name = img.strip_suffix(".img").expect("an .img name");
        let copy = self.copies.path().join(img);
        if copy.exists() {
            copy
        } else {
            common::fixture_copy(name, self.copies.path())
        }
    }

    /// Host path of guest path `p` in the main tree.
    fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p.trim_start_matches('/'))
    }

    /// Where `/srv/archive` is mounted, when it is.
    fn archive(&self) -> Option<&Path> {
        self.archive.as_ref().map(|d| d.path())
    }
}

impl Drop for KernelTree {
    fn drop(&mut self) {
        for at in self.mounted.iter().rev() {
            let ok = Command::new("umount")
                .arg(at)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Busy (a process still in it): detach it now, the kernel
                // finishes when it is free; never leave it mounted.
                let _ = Command::new("umount").arg("-l").arg(at).status();
            }
        }
    }
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ------------------------------------------------------------------ ls -lanR

/// One directory of an `ls -lR` listing: its header and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    dir: String,
    lines: Vec<String>,
}

/// Split `ls -R` output into directories.
fn blocks(text: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut at_start = true;
    for line in text.lines() {
        if line.is_empty() {
            at_start = true;
            continue;
        }
        if at_start && let Some(dir) = line.strip_suffix(':') {
            out.push(Block {
                dir: dir.to_string(),
                lines: Vec::new(),
            });
            at_start = false;
            continue;
        }
        at_start = false;
        out.last_mut()
            .unwrap_or_else(|| panic!("a line before any header: {line:?}"))
            .lines
            .push(line.to_string());
    }
    out
}

/// GNU `ls -lanR` of `dir`, in vmrescue's time format and escaping, headers
/// as guest paths under `prefix` (`""` for the guest root).
fn gnu_ls(dir: &Path, prefix: &str) -> Vec<Block> {
    let out = run_ok(
        Command::new("ls")
            .args([
                "-lanR",
                "--time-style=+%Y-%m-%d %H:%M",
                "--quoting-style=literal",
                ".",
            ])
            .current_dir(dir)
            .env("TZ", "UTC")
            .env("LC_ALL", "C"),
    );
    // Names as vmrescue shows them: invalid UTF-8 as \xNN.
    let text: String = out
        .split(|&b| b == b'\n')
        .map(vmrescue::text::escape)
        .collect::<Vec<_>>()
        .join("\n");
    let mut b = blocks(&text);
    for block in &mut b {
        let rest = block
            .dir
            .strip_prefix('.')
            .expect("GNU ls headers start with .");
        block.dir = match (prefix, rest) {
            ("", "") => "/".to_string(),
            _ => format!("{prefix}{rest}"),
        };
    }
    if prefix.is_empty() {
        // The guest's `/..` is `/` itself, not the host directory the tree
        // is mounted in.
        let blocks_1k = |p: &Path| std::fs::metadata(p).expect("stat").blocks() / 2;
        let (host_up, root) = (blocks_1k(&dir.join("..")), blocks_1k(dir));
        let top = &mut b[0];
        let dot = entry(top, ".");
        replace_entry(top, "..", renamed(&dot, ".."));
        add_total(top, root as i64 - host_up as i64);
        realign(top);
    }
    b
}

/// The fields of a long-listing line: mode, links, owner, group, size,
/// date, time, then the name (with ` -> target`).
fn fields(line: &str) -> (Vec<&str>, &str) {
    let mut rest = line;
    let mut f = Vec::new();
    for _ in 0..7 {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        f.push(&rest[..end]);
        rest = &rest[end..];
    }
    (f, rest.strip_prefix(' ').unwrap_or(rest))
}

/// The line of entry `name` in a directory's listing.
fn entry(block: &Block, name: &str) -> String {
    block
        .lines
        .iter()
        .find(|l| !l.starts_with("total ") && fields(l).1 == name)
        .unwrap_or_else(|| panic!("{name} not in the listing of {}", block.dir))
        .clone()
}

/// Replace the line of entry `name` with `line`.
fn replace_entry(block: &mut Block, name: &str, line: String) {
    let at = block
        .lines
        .iter()
        .position(|l| !l.starts_with("total ") && fields(l).1 == name)
        .unwrap_or_else(|| panic!("{name} not in the listing of {}", block.dir));
    block.lines[at] = line;
}

/// Add `delta` KiB to a listing's `total`.
fn add_total(block: &mut Block, delta: i64) {
    for l in &mut block.lines {
        if let Some(n) = l.strip_prefix("total ") {
            *l = format!("total {}", n.parse::<i64>().expect("total") + delta);
        }
    }
}

/// `line` (a long-listing line) with its name replaced.
fn renamed(line: &str, name: &str) -> String {
    let (f, _) = fields(line);
    format!("{} {name}", f.join(" "))
}

/// Re-pad a block's entry lines as `ls -ln` pads them (links, owner, group
/// and size numbers to the right, each as wide as the widest).
fn realign(block: &mut Block) {
    let entries: Vec<(Vec<String>, String)> = block
        .lines
        .iter()
        .filter(|l| !l.starts_with("total "))
        .map(|l| {
            let (f, name) = fields(l);
            (f.iter().map(|s| s.to_string()).collect(), name.to_string())
        })
        .collect();
    let w = |i: usize| entries.iter().map(|(f, _)| f[i].len()).max().unwrap_or(0);
    let (wl, wu, wg, ws) = (w(1), w(2), w(3), w(4));
    let total = block
        .lines
        .iter()
        .find(|l| l.starts_with("total "))
        .cloned();
    block.lines = total
        .into_iter()
        .chain(entries.iter().map(|(f, name)| {
            format!(
                "{} {:>wl$} {:>wu$} {:>wg$} {:>ws$} {} {} {name}",
                f[0], f[1], f[2], f[3], f[4], f[5], f[6]
            )
        }))
        .collect();
}

/// What GNU `ls -lanR` would print for the guest's tree as it boots.
fn kernel_ls(tree: &KernelTree) -> Vec<Block> {
    let mut main = gnu_ls(tree.root.path(), "");
    let Some(arch_dir) = tree.archive() else {
        return main;
    };
    // Splice /srv/archive in (see the module docs).
    let mut arch = gnu_ls(arch_dir, "/srv/archive");
    let srv_at = main
        .iter()
        .position(|b| b.dir == "/srv")
        .expect("/srv listed");
    let srv_dot = entry(&main[srv_at], ".");
    let top = &mut arch[0];
    assert_eq!(top.dir, "/srv/archive");
    let arch_dot = entry(top, ".");
    replace_entry(top, "..", renamed(&srv_dot, ".."));
    let blocks_1k = |p: &Path| std::fs::metadata(p).expect("stat").blocks() as i64 / 2;
    add_total(
        top,
        blocks_1k(&tree.path("/srv")) - blocks_1k(&arch_dir.join("..")),
    );
    realign(top);
    let srv = &mut main[srv_at];
    let at = srv
        .lines
        .iter()
        .position(|l| !l.starts_with("total ") && fields(l).1 > "archive")
        .unwrap_or(srv.lines.len());
    srv.lines.insert(at, renamed(&arch_dot, "archive"));
    add_total(srv, blocks_1k(arch_dir));
    realign(srv);
    // /srv/archive's listings come right after /srv's: "archive" sorts
    // before the other directories of /srv.
    let tail = main.split_off(srv_at + 1);
    main.extend(arch);
    main.extend(tail);
    main
}

/// Mountpoints where the kernel tree has an empty directory (see the module
/// docs); vmrescue shows a folder of its own there, or (`/boot/efi`) the
/// vfat it reads in userspace.
const PLACEHOLDERS: [&str; 4] = ["/boot/efi", "/mnt/backup", "/tmp", "/proc"];

/// The guest's ESP mountpoint (vfat).
const EFI: &str = "/boot/efi";

/// `guest-a.efi.manifest` (PATH TYPE SIZE SHA256, paths from the vfat's
/// root) as guest paths.
fn efi_manifest() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(common::fixture_file("guest-a.efi.manifest"))
        .expect("guest-a.efi.manifest");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                format!("{EFI}{}", f[0]),
                f[1].to_string(),
                f.get(2).copied().unwrap_or("").to_string(),
                f.get(3).copied().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// vmrescue's `ls -lanR` blocks at and under /boot/efi name exactly what
/// mtools reads there, with its sizes.
fn assert_efi_listing(efi: &[Block]) {
    let mut ours: Vec<(String, String, String)> = Vec::new();
    for b in efi {
        for l in &b.lines {
            if l.starts_with("total ") {
                continue;
            }
            let (f, name) = fields(l);
            if name == "." || name == ".." {
                continue;
            }
            let kind = if f[0].starts_with('d') { "d" } else { "f" };
            // The fstab mounts it `umask=0077`: as vfat shows it.
            let mode = if kind == "d" {
                "drwx------"
            } else {
                "-rwx------"
            };
            assert_eq!(f[0], mode, "{}/{name}: {l}", b.dir);
            let size = if kind == "f" {
                f[4].to_string()
            } else {
                String::new()
            };
            ours.push((format!("{}/{name}", b.dir), kind.to_string(), size));
        }
    }
    ours.sort();
    let want: Vec<(String, String, String)> = efi_manifest()
        .into_iter()
        .map(|(p, k, size, _)| (p, k, size))
        .collect();
    assert_eq!(ours, want, "/boot/efi: vmrescue (left) and mtools (right)");
}

/// Mask the placeholders' metadata: their line in the parent's listing,
/// `.` in their own, and both listings' `total`.
fn mask_placeholders(listing: &mut [Block]) {
    let mask = |line: &str| {
        let (f, name) = fields(line);
        format!("{}????????? ? ? ? ? ????-??-?? ??:?? {name}", &f[0][..1])
    };
    for mp in PLACEHOLDERS {
        let (parent, name) = mp.rsplit_once('/').expect("absolute");
        let parent = if parent.is_empty() { "/" } else { parent };
        for b in listing.iter_mut() {
            let which = if b.dir == parent {
                name
            } else if b.dir == mp {
                "."
            } else {
                continue;
            };
            for l in &mut b.lines {
                if l.starts_with("total ") {
                    *l = "total ?".to_string();
                } else if fields(l).1 == which {
                    *l = mask(l);
                }
            }
            realign(b);
        }
    }
}

/// vmrescue's listing, split into directories.
fn vmrescue_ls(args: &[&str]) -> (Vec<Block>, String, i32) {
    let out = vmrescue(args);
    let text = String::from_utf8(out.stdout).expect("vmrescue ls prints UTF-8");
    (
        blocks(&text),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Fail with the first directory that differs, both ways.
fn assert_same_listing(ours: &[Block], kernel: &[Block], stderr: &str) {
    let dirs = |b: &[Block]| b.iter().map(|b| b.dir.clone()).collect::<Vec<_>>();
    for (o, k) in ours.iter().zip(kernel) {
        assert_eq!(
            o,
            k,
            "{}: vmrescue (left) and the kernel (right) differ\n\
             vmrescue:\n{}\nkernel:\n{}\nvmrescue's stderr:\n{stderr}",
            k.dir,
            o.lines.join("\n"),
            k.lines.join("\n")
        );
    }
    let (o, k) = (dirs(ours), dirs(kernel));
    let only = |a: &[String], b: &[String]| {
        a.iter()
            .filter(|d| !b.contains(d))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        o,
        k,
        "the directories listed differ: only vmrescue lists {:?}, only the kernel {:?}; \
         vmrescue's stderr:\n{stderr}",
        only(&o, &k),
        only(&k, &o)
    );
}

fn guest_args<'a>(a: &'a str, b: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![a, "--disk", b, "--engine", "userspace"];
    v.extend_from_slice(rest);
    v
}

#[test]
fn ls_lanr_of_the_whole_guest_matches_the_kernel_mounts() {
    let tree = KernelTree::guest();
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let mut args = vec!["ls", "-lanR"];
    args.extend(guest_args(a, b, &["/"]));
    let (mut ours, stderr, code) = vmrescue_ls(&args);
    let mut kernel = kernel_ls(&tree);
    // The vfat, read in userspace, against mtools.
    let efi: Vec<Block> = ours
        .iter()
        .filter(|b| under(b.dir.as_bytes(), EFI.as_bytes()))
        .cloned()
        .collect();
    ours.retain(|b| !under(b.dir.as_bytes(), EFI.as_bytes()));
    kernel.retain(|b| b.dir != EFI);
    assert_efi_listing(&efi);
    mask_placeholders(&mut ours);
    mask_placeholders(&mut kernel);
    assert_same_listing(&ours, &kernel, &stderr);
    for mp in PLACEHOLDERS.iter().filter(|&&mp| mp != EFI) {
        let b = ours
            .iter()
            .find(|b| b.dir == *mp)
            .expect("placeholder listed");
        assert_eq!(b.lines.len(), 3, "{mp} is empty: {b:?}");
    }
    // Listed, but not silently: the missing device is named.
    assert_eq!(code, 1, "problems make the exit code 1: {stderr}");
    assert!(!stderr.contains("/boot/efi"), "{stderr}");
    assert!(stderr.contains("/mnt/backup"), "{stderr}");
    // The listing did cross into every volume.
    for dir in [
        "/home/alice",
        "/var/log",
        "/srv/data/www",
        "/srv/archive/2025",
        "/srv/my files",
        "/var/www/css",
        "/boot/grub2",
    ] {
        assert!(ours.iter().any(|b| b.dir == dir), "{dir} not listed");
    }
}

#[test]
fn ls_with_volume_shows_that_volumes_own_paths() {
    let tree = KernelTree::volume("/home");
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let mut args = vec!["ls", "-lanR", "--volume", "vg-sys/home"];
    args.extend(guest_args(a, b, &["/"]));
    let (ours, stderr, code) = vmrescue_ls(&args);
    assert_eq!(code, 0, "{stderr}");
    let kernel = gnu_ls(tree.root.path(), "");
    assert_same_listing(&ours, &kernel, &stderr);
    assert!(ours.iter().any(|b| b.dir == "/alice/photos"), "{ours:?}");
}

// ------------------------------------------------------------------ cp

/// What a walk sees of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Regular files and symlinks only (a host directory's size is the host's).
    size: Option<u64>,
    mtime_ns: i128,
    target: Option<Vec<u8>>,
    sha256: Option<String>,
    /// Regular files only.
    nlink: Option<u64>,
}

/// A walk: every path's [`Node`], and the groups of hard-linked paths.
type Walk = (BTreeMap<Vec<u8>, Node>, BTreeSet<Vec<Vec<u8>>>);

/// Every path under `dir` (guest paths under `prefix`), and the groups of
/// paths that are hard links of one file (files with more than one link).
fn walk(dir: &Path, prefix: &str) -> Walk {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap_or_else(|e| panic!("walking {}: {e}", dir.display()));
        let rel = e.path().strip_prefix(dir).expect("under dir");
        let mut path = prefix.as_bytes().to_vec();
        if !rel.as_os_str().is_empty() {
            path.push(b'/');
            path.extend_from_slice(rel.as_os_str().as_bytes());
        }
        if path.is_empty() {
            path.push(b'/');
        }
        let m = std::fs::symlink_metadata(e.path()).expect("lstat");
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "link"
        } else {
            "other"
        };
        let sha256 = ft.is_file().then(|| {
            let bytes = std::fs::read(e.path()).expect("read");
            hex(&Sha256::digest(&bytes))
        });
        if ft.is_file() && m.nlink() > 1 {
            inodes
                .entry((m.dev(), m.ino()))
                .or_default()
                .push(path.clone());
        }
        let node = Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: (!ft.is_dir()).then_some(m.size()),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            target: ft.is_symlink().then(|| {
                std::fs::read_link(e.path())
                    .expect("readlink")
                    .into_os_string()
                    .into_vec()
            }),
            sha256,
            nlink: ft.is_file().then_some(m.nlink()),
        };
        nodes.insert(path, node);
    }
    let groups = inodes
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    (nodes, groups)
}

/// The kernel tree walked as the guest sees it (`/srv/archive` spliced in).
fn kernel_walk(tree: &KernelTree) -> Walk {
    let (mut nodes, mut groups) = walk(tree.root.path(), "");
    if let Some(arch) = tree.archive() {
        let (n, g) = walk(arch, "/srv/archive");
        nodes.extend(n);
        groups.extend(g);
    }
    (nodes, groups)
}

/// Keep the paths at or below `top` (a guest path), renamed as `cp` names
/// them below DEST: `/home/alice` → `/home/alice` when copying `/home` keeps
/// `home/`.
fn subtree(nodes: &BTreeMap<Vec<u8>, Node>, top: &[u8]) -> BTreeMap<Vec<u8>, Node> {
    nodes
        .iter()
        .filter(|(p, _)| {
            p.as_slice() == top || (p.starts_with(top) && p.get(top.len()) == Some(&b'/'))
        })
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

/// Mountpoints whose files cannot be copied here (see the module docs):
/// `cp` must report them as skipped.
const UNREADABLE: [&str; 1] = ["/mnt/backup"];

fn under(p: &[u8], top: &[u8]) -> bool {
    p == top || (p.starts_with(top) && p.get(top.len()) == Some(&b'/'))
}

/// The copy holds the kernel tree's paths with the same metadata and
/// bytes; at the placeholders (module docs), at most an empty directory.
fn assert_same_nodes(ours: &BTreeMap<Vec<u8>, Node>, kernel: &BTreeMap<Vec<u8>, Node>) {
    let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for mp in PLACEHOLDERS.iter().filter(|&&mp| mp != EFI) {
        for (p, n) in ours.iter().filter(|(p, _)| under(p, mp.as_bytes())) {
            assert!(
                p.as_slice() == mp.as_bytes() && n.kind == "dir",
                "{}: nothing is copied at or under {mp} but an empty directory",
                show(p)
            );
        }
    }
    let keep = |p: &&Vec<u8>| !PLACEHOLDERS.iter().any(|u| under(p, u.as_bytes()));
    let a: BTreeSet<&Vec<u8>> = ours.keys().filter(keep).collect();
    let b: BTreeSet<&Vec<u8>> = kernel.keys().filter(keep).collect();
    let missing: Vec<String> = b.difference(&a).map(|p| show(p)).collect();
    let extra: Vec<String> = a.difference(&b).map(|p| show(p)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the copy: {missing:?}; not in the guest: {extra:?}"
    );
    for p in a {
        assert_eq!(
            ours[p],
            kernel[p],
            "{}: copy (left) and kernel (right)",
            show(p)
        );
    }
}

fn copy(rest: &[&str]) -> (tempfile::TempDir, String, i32) {
    let out = tempfile::tempdir().expect("tempdir");
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let mut args = vec!["cp", "-q"];
    args.extend(guest_args(a, b, rest));
    args.push(out.path().to_str().unwrap());
    let o = vmrescue(&args);
    (
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

#[test]
fn cp_of_the_root_copies_every_volume_like_the_kernel_tree() {
    let tree = KernelTree::guest();
    let (kernel, kgroups) = kernel_walk(&tree);
    let (out, stderr, code) = copy(&["/."]);
    let (ours, groups) = walk(out.path(), "");
    let mut kernel = kernel;
    // DEST itself is the host's.
    kernel.insert(b"/".to_vec(), ours[&b"/".to_vec()].clone());
    assert_same_nodes(&ours, &kernel);
    assert_eq!(groups, kgroups, "hard links");
    assert!(
        groups
            .iter()
            .any(|g| g.len() == 2 && g[0] == b"/home/alice/notes-hardlink.txt"),
        "{groups:?}"
    );
    // Skipped, with the reason, never silently; the exit code says so.
    assert_eq!(code, 1, "{stderr}");
    for p in UNREADABLE {
        assert!(stderr.contains(p), "{p} not reported as skipped: {stderr}");
    }
    // The vfat's files, copied from the userspace reader, are mtools's.
    for (p, kind, size, sha) in efi_manifest() {
        let got = &ours[p.as_bytes()];
        assert_eq!(got.mode & 0o777, 0o700, "{p}: umask=0077");
        if kind == "d" {
            assert_eq!(got.kind, "dir", "{p}");
        } else {
            assert_eq!(got.size, Some(size.parse().unwrap()), "{p}");
            assert_eq!(got.sha256.as_deref(), Some(sha.as_str()), "{p}");
        }
    }
    let sparse = std::fs::metadata(out.path().join("opt/app/sparse.img")).expect("sparse.img");
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "holes kept: {} blocks",
        sparse.blocks()
    );
}

#[test]
fn cp_of_home_copies_the_home_volume() {
    let tree = KernelTree::guest();
    let (kernel, _) = kernel_walk(&tree);
    let (out, stderr, code) = copy(&["/home"]);
    assert_eq!(code, 0, "{stderr}");
    let (ours, groups) = walk(out.path(), "");
    let mut want = subtree(&kernel, b"/home");
    // DEST itself is the host's.
    want.insert(b"/".to_vec(), ours[&b"/".to_vec()].clone());
    assert_same_nodes(&ours, &want);
    assert_eq!(groups.len(), 1, "notes.txt and its hard link: {groups:?}");
}

#[test]
fn cp_one_file_system_stays_on_the_root_volume() {
    let root_alone = KernelTree::volume("/");
    let (kernel, _) = walk(root_alone.root.path(), "");
    let (out, stderr, code) = copy(&["-x", "/."]);
    let (mut ours, _) = walk(out.path(), "");
    // The guest's systemd would have made /srv/archive on the root volume
    // (as GNU cp -x then copies it): allowed, empty.
    if ours
        .get(b"/srv/archive".as_slice())
        .is_some_and(|n| n.kind == "dir")
    {
        ours.remove(b"/srv/archive".as_slice());
    }
    let show = |s: &BTreeSet<&Vec<u8>>| {
        s.iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
    };
    let a: BTreeSet<&Vec<u8>> = ours.keys().collect();
    let b: BTreeSet<&Vec<u8>> = kernel.keys().collect();
    assert_eq!(
        show(&a),
        show(&b),
        "cp -x copies the root volume's paths only: {stderr}"
    );
    for (p, n) in &kernel {
        // Mountpoints may carry the mounted volume's attributes (as GNU cp -x
        // makes them); their contents are not copied (the paths above).
        if n.kind != "dir" {
            assert_eq!(&ours[p], n, "{}", String::from_utf8_lossy(p));
        }
    }
    assert!(code == 0 || code == 1, "{code}: {stderr}");
}

#[test]
fn the_kernel_tree_is_the_one_the_fixture_recorded() {
    // guest.manifest was written by guest.sh from its own kernel mounts: the
    // tree these tests build must be the same (else a comparison above
    // would test the helper, not vmrescue).
    let tree = KernelTree::guest();
    let (nodes, _) = kernel_walk(&tree);
    let manifest = std::fs::read(fixture_file("guest.manifest")).expect("guest.manifest");
    let mut recorded = BTreeMap::new();
    for line in manifest.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let f: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        assert_eq!(f.len(), 10, "{}", String::from_utf8_lossy(line));
        let text = |i: usize| String::from_utf8_lossy(f[i]).into_owned();
        let kind = match f[1] {
            b"d" => "dir",
            b"f" => "file",
            b"l" => "link",
            _ => "other",
        };
        let node = Node {
            kind,
            mode: u32::from_str_radix(&text(2), 8).expect("mode"),
            uid: text(3).parse().expect("uid"),
            gid: text(4).parse().expect("gid"),
            size: (kind != "dir").then(|| text(6).parse().expect("size")),
            mtime_ns: text(7).parse().expect("mtime"),
            target: (kind == "link").then(|| f[8].to_vec()),
            sha256: (kind == "file").then(|| text(9)),
            nlink: (kind == "file").then(|| text(5).parse().expect("nlink")),
        };
        recorded.insert(f[0].to_vec(), node);
    }
    // The manifest leaves the vfat out; the kernel tree has /boot's directory there.
    let walked: BTreeMap<Vec<u8>, Node> = nodes
        .into_iter()
        .filter(|(p, _)| !under(p, b"/boot/efi"))
        .collect();
    assert_eq!(walked.len(), recorded.len());
    assert_same_nodes(&walked, &recorded);
    assert!(walked.contains_key(b"/usr/share/doc/caf\xe9.txt".as_slice()));
    assert!(walked.contains_key(b"/srv/archive/2025/report.txt".as_slice()));
}

// ------------------------------------------------------------------ cat, ls of a missing device

#[test]
fn cat_follows_absolute_symlinks_across_volumes_inside_the_guest() {
    let manifest = std::fs::read(fixture_file("guest.manifest")).expect("guest.manifest");
    let sha_of = |path: &[u8]| -> String {
        manifest
            .split(|&b| b == b'\n')
            .map(|l| l.split(|&b| b == b'\t').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&path))
            .and_then(|f| f.get(9).map(|s| String::from_utf8_lossy(s).into_owned()))
            .unwrap_or_else(|| panic!("{} not in guest.manifest", String::from_utf8_lossy(path)))
    };
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // root → home, and home → root.
    for (link, target) in [
        ("/root/notes-link", &b"/home/alice/notes.txt"[..]),
        ("/home/alice/hostname-link", b"/etc/hostname"),
    ] {
        let mut args = vec!["cat"];
        args.extend(guest_args(a, b, &[link]));
        let out = vmrescue(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{link}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex(&Sha256::digest(&out.stdout)), sha_of(target), "{link}");
    }
}

#[test]
fn ls_of_the_missing_nofail_device_says_why() {
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let mut args = vec!["ls", "-la"];
    args.extend(guest_args(a, b, &["/mnt/backup"]));
    let out = vmrescue(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("3d6f1c2a-6e0b-4c1f-9a51-0c6b1d2e7fff"),
        "names the device it looked for: {stderr}"
    );
    assert!(stderr.contains("/mnt/backup"), "{stderr}");
}

#[test]
fn mounts_that_are_not_here_are_said_where_they_matter() {
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // A file far from it: nothing said about /mnt/backup.
    let mut args = vec!["cat"];
    args.extend(guest_args(a, b, &["/home/alice/notes.txt"]));
    let out = vmrescue(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing to say: {stderr}");
    // find over the whole guest: both are named, and the exit code is 1.
    let mut args = vec!["find"];
    args.extend(guest_args(a, b, &["/", "-name", "*.txt"]));
    let out = vmrescue(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("/boot/efi"), "read in userspace: {stderr}");
    assert!(stderr.contains("/mnt/backup"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/home/alice/notes.txt"));
    // find below /home: nothing is missing there.
    let mut args = vec!["find"];
    args.extend(guest_args(a, b, &["/home", "-name", "*.txt"]));
    let out = vmrescue(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------------ layers --json

#[test]
fn layers_json_lists_the_mount_table() {
    let (a, b) = (image("guest-a.img"), image("guest-b.img"));
    let out = vmrescue(&[
        "layers",
        "--json",
        a.to_str().unwrap(),
        "--disk",
        b.to_str().unwrap(),
        "--engine",
        "userspace",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "layers --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mounts = v["mounts"].as_array().expect("a mounts array");
    let by_mp = |mp: &str| {
        mounts
            .iter()
            .find(|m| m["mountpoint"] == mp)
            .unwrap_or_else(|| panic!("no mount {mp} in {mounts:#?}"))
    };
    // (mountpoint, spec, volume, state, guessed): every fstab line.
    let expect = [
        (
            "/",
            "UUID=3d6f1c2a-6e0b-4c1f-9a51-0c6b1d2e7f01",
            Some("vg-sys/root"),
            "mounted",
            false,
        ),
        ("/boot", "LABEL=boot", Some("p2"), "mounted", false),
        (
            "/boot/efi",
            "PARTUUID=8a1d6c4e-2b7f-4e3a-9c5d-1f0e2d3c4ba1",
            Some("p1"),
            "mounted",
            false,
        ),
        (
            "/home",
            "/dev/mapper/vg--sys-home",
            Some("vg-sys/home"),
            "mounted",
            false,
        ),
        (
            "/var",
            "/dev/vg-sys/var",
            Some("vg-sys/var"),
            "mounted",
            false,
        ),
        (
            "none",
            "/dev/disk/by-uuid/3d6f1c2a-6e0b-4c1f-9a51-0c6b1d2e7f04",
            Some("vg-sys/swap"),
            "swap",
            false,
        ),
        ("/srv/data", "/dev/vdb1", Some("disk1p1"), "mounted", true),
        (
            "/srv/archive",
            "PARTLABEL=archive",
            Some("disk1p2"),
            "mounted",
            false,
        ),
        (
            "/srv/my files",
            "/dev/disk/by-uuid/3d6f1c2a-6e0b-4c1f-9a51-0c6b1d2e7f08",
            Some("disk1p3"),
            "mounted",
            false,
        ),
        ("/var/www", "/srv/data/www", None, "bind", false),
        ("/tmp", "tmpfs", None, "virtual", false),
        ("/proc", "proc", None, "virtual", false),
        (
            "/mnt/backup",
            "UUID=3d6f1c2a-6e0b-4c1f-9a51-0c6b1d2e7fff",
            None,
            "missing",
            false,
        ),
        (
            "/mnt/boot-rescue",
            "/dev/disk/by-label/boot",
            Some("p2"),
            "noauto",
            false,
        ),
    ];
    for (mp, spec, volume, state, guessed) in expect {
        let m = by_mp(mp);
        assert_eq!(m["spec"], spec, "{mp}: {m}");
        match volume {
            Some(vol) => assert_eq!(m["volume"], vol, "{mp}: {m}"),
            None => assert!(m["volume"].is_null(), "{mp}: {m}"),
        }
        assert_eq!(m["state"], state, "{mp}: {m}");
        assert_eq!(m["guessed"], guessed, "{mp}: {m}");
    }
    assert_eq!(by_mp("/var")["fstype"], "xfs");
    assert_eq!(by_mp("/srv/archive")["fstype"], "ext4");
    assert_eq!(
        mounts.len(),
        expect.len(),
        "one entry per fstab line: {mounts:#?}"
    );
}
