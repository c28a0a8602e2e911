//! The btrfs log tree replayed in memory against the kernel's own log
//! recovery: the fixtures of `tests/fixtures/make/btrfs-log.sh` carry
//! changes fsync'd but never committed, the kernel's walk after it replayed
//! a copy (`<name>.walk`, a read-write mount) and the on-disk state
//! (`<name>.nologreplay.walk`, `mount -o ro,rescue=nologreplay`).

use crate::common;
use crate::ext_support::{assert_same, manifest, walk};

use std::sync::Arc;

use vmrescue::fs::btrfs::{Btrfs, LOG_NOTE, NOT_REPLAYED_NOTE, REPLAYED_NOTE};
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsOptions, FsView};
use vmrescue::io::ReadAt;

const DIRTY: &[&str] = &["btrfs-log-ops", "btrfs-log-data", "btrfs-log"];

fn open_bytes(bytes: Vec<u8>, no_journal: bool) -> vmrescue::Result<Btrfs> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Btrfs::open_with(src, &FsOptions { no_journal })
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).expect("read fixture")
}

fn replay_note(fs: &Btrfs) -> Option<String> {
    fs.status()
        .notes
        .into_iter()
        .find(|n| n.starts_with(REPLAYED_NOTE))
}

/// Files whose ctime the kernel's replay sets to the time of the mount:
/// a name the log no longer has is unlinked after the logged inode item was
/// copied (`rm two-links-2; fsync two-links`). Ours keeps the logged ctime.
const STAMPED_AT_REPLAY: &[&str] = &["/two-links"];

/// The walk with the ctime of [`STAMPED_AT_REPLAY`] left out.
fn unstamped(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut f: Vec<&str> = l.split('\t').collect();
            if f.len() > 7 && STAMPED_AT_REPLAY.contains(&f[0]) {
                f[7] = "(replay time)";
            }
            f.join("\t")
        })
        .collect()
}

#[test]
fn replayed_walks_match_the_kernels_log_recovery() {
    for name in DIRTY {
        let fs = open_bytes(image(name), false).unwrap();
        if *name != "btrfs-log" {
            // btrfs-log (of btrfs.sh) has no replayed walk: `logged` is checked below.
            assert_same(
                name,
                &unstamped(walk(&fs)),
                &unstamped(manifest(&format!("{name}.walk"))),
            );
        }
        let st = fs.status();
        assert!(st.problems.is_empty(), "{name}: {:?}", st.problems);
        let note = replay_note(&fs).unwrap_or_else(|| panic!("{name}: {:?}", st.notes));
        let subvols = if *name == "btrfs-log-data" {
            "2 subvolumes"
        } else {
            "1 subvolume "
        };
        assert!(note.contains(&format!(" items in {subvols}")), "{note}");
    }
    let fs = open_bytes(image("btrfs-log"), false).unwrap();
    let n = resolve(&fs, b"/logged", false).unwrap().node;
    let mut buf = [0u8; 64];
    let k = fs.read_at(n, 0, &mut buf).unwrap();
    assert_eq!(&buf[..k], b"only in the log\n");
}

#[test]
fn no_journal_shows_what_nologreplay_shows() {
    for name in ["btrfs-log-ops", "btrfs-log-data"] {
        let fs = open_bytes(image(name), true).unwrap();
        assert_same(
            name,
            &walk(&fs),
            &manifest(&format!("{name}.nologreplay.walk")),
        );
        assert_eq!(fs.status().notes, [LOG_NOTE]);
        assert!(fs.status().problems.is_empty());
    }
    let fs = open_bytes(image("btrfs-log"), true).unwrap();
    assert_same("btrfs-log", &walk(&fs), &manifest("btrfs-log.walk"));
}

#[test]
fn clean_filesystems_have_no_replay_note() {
    let fs = open_bytes(image("btrfs-sha256"), false).unwrap();
    assert!(fs.superblock().log_root == 0);
    assert!(fs.status().notes.is_empty(), "{:?}", fs.status().notes);
}

/// Logical address of the log root tree and of the first log tree.
fn log_blocks(img: &[u8]) -> (u64, u64) {
    let src: Arc<dyn ReadAt> = Arc::new(img.to_vec());
    let fs = Btrfs::open_with(src, &FsOptions { no_journal: true }).unwrap();
    let log_root = fs.superblock().log_root;
    // The log root tree is one leaf: its first item is the root item of
    // the subvolume's log tree (bytenr at offset 176 of the item).
    let phys = fs.physical_copies(log_root).unwrap()[0] as usize;
    let item_off = u32::from_le_bytes(img[phys + 0x65 + 17..][..4].try_into().unwrap()) as usize;
    let item = phys + 0x65 + item_off;
    let tree = u64::from_le_bytes(img[item + 176..][..8].try_into().unwrap());
    (log_root, tree)
}

fn damage(img: &mut [u8], logical: u64) {
    let src: Arc<dyn ReadAt> = Arc::new(img.to_vec());
    let fs = Btrfs::open_with(src, &FsOptions { no_journal: true }).unwrap();
    for p in fs.physical_copies(logical).unwrap() {
        img[p as usize + 0x200] ^= 0x5a;
    }
}

#[test]
fn a_bad_log_block_leaves_the_on_disk_state_with_a_problem() {
    let name = "btrfs-log-ops";
    let clean = image(name);
    let (root, tree) = log_blocks(&clean);
    for at in [root, tree] {
        let mut img = clean.clone();
        damage(&mut img, at);
        let fs = open_bytes(img, false).unwrap();
        let st = fs.status();
        assert!(
            st.notes.contains(&NOT_REPLAYED_NOTE.to_string()),
            "{:?}",
            st.notes
        );
        let p = vmrescue::problem::texts(&st.problems).join("\n");
        assert!(p.contains("btrfs log tree"), "{p}");
        assert!(p.contains(&at.to_string()), "{p}");
        assert_same(
            name,
            &walk(&fs),
            &manifest(&format!("{name}.nologreplay.walk")),
        );
    }
}

#[test]
fn random_damage_in_log_blocks_never_panics() {
    let clean = image("btrfs-log-ops");
    let (_, tree) = log_blocks(&clean);
    let src: Arc<dyn ReadAt> = Arc::new(clean.clone());
    let fs = Btrfs::open_with(src, &FsOptions { no_journal: true }).unwrap();
    let phys = fs.physical_copies(tree).unwrap()[0] as usize;
    let ns = fs.superblock().nodesize as usize;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..48 {
        let mut img = clean.clone();
        for _ in 0..(1 + round % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let off = phys + 0x65 + (seed as usize % (ns - 0x65));
            img[off] = (seed >> 32) as u8;
        }
        // Keep the block's checksum right so the items are parsed.
        fix_csum(&mut img[phys..phys + ns]);
        if let Ok(fs) = open_bytes(img, false) {
            let root = fs.root();
            if let Ok(es) = fs.read_dir(root) {
                for e in es.into_iter().take(100) {
                    let _ = fs.metadata(e.node);
                    let _ = fs.xattrs(e.node);
                    if e.file_type == Some(FileType::Regular) {
                        let mut buf = vec![0u8; 1 << 16];
                        let _ = fs.read_at(e.node, 0, &mut buf);
                    }
                }
            }
        }
    }
}

/// Recompute a crc32c tree block checksum.
fn fix_csum(block: &mut [u8]) {
    let c = crc32c::crc32c(&block[0x20..]);
    block[..4].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn ls_shows_the_replayed_state_and_no_journal_the_last_commit() {
    let img = common::fixture("btrfs-log-ops");
    let img = img.to_str().unwrap();
    let ls = common::vmrescue(&["ls", img, "/"]);
    assert_eq!(ls.status.code(), Some(0), "{ls:?}");
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(out.lines().any(|l| l == "new-file"), "{out}");
    assert!(!out.lines().any(|l| l == "unlink-me"), "{out}");
    let ls = common::vmrescue(&["ls", "--no-journal", img, "/"]);
    assert_eq!(ls.status.code(), Some(0), "{ls:?}");
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(!out.lines().any(|l| l == "new-file"), "{out}");
    assert!(out.lines().any(|l| l == "unlink-me"), "{out}");
    // A damaged log: the last commit, a problem naming it, exit status 1.
    let mut b = image("btrfs-log-ops");
    let (root, _) = log_blocks(&b);
    damage(&mut b, root);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.img");
    std::fs::write(&path, b).unwrap();
    let ls = common::vmrescue(&["ls", path.to_str().unwrap(), "/"]);
    assert_eq!(ls.status.code(), Some(1), "{ls:?}");
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(out.lines().any(|l| l == "unlink-me"), "{out}");
    let err = String::from_utf8_lossy(&ls.stderr);
    assert!(
        err.contains("btrfs log tree") && err.contains("--no-journal"),
        "{err}"
    );
}

#[test]
fn the_kernel_engine_says_it_does_not_replay_the_log() {
    common::require_root("the kernel engine mounts a loop device");
    let img = common::fixture("btrfs-log-ops");
    let ls = common::vmrescue(&["ls", "--engine", "kernel", img.to_str().unwrap(), "/"]);
    assert_eq!(ls.status.code(), Some(0), "{ls:?}");
    let err = String::from_utf8_lossy(&ls.stderr);
    assert!(
        err.contains(vmrescue::fs::btrfs::KERNEL_NOT_REPLAYED_NOTE),
        "{err}"
    );
    // What the kernel's nologreplay mount shows: the last commit.
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(out.lines().any(|l| l == "unlink-me"), "{out}");
    assert!(!out.lines().any(|l| l == "new-file"), "{out}");
}
