//! Damaged filesystems: bad checksums are reported with the structure and
//! byte position and reading goes on; broken structures give errors with
//! byte positions; nothing panics, hangs or allocates without bound.

use crate::common;
use crate::ext_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::fs::FsOptions;
use vmrescue::fs::ext::{Ext, RunKind};
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView, NodeId};
use vmrescue::io::ReadAt;

fn image(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).expect("read fixture")
}

fn open_bytes(bytes: Vec<u8>) -> vmrescue::Result<Ext> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Ext::open(src, &FsOptions::default())
}

fn problems(fs: &Ext) -> String {
    vmrescue::problem::texts(&fs.status().problems).join("\n")
}

fn node(fs: &Ext, path: &str) -> NodeId {
    resolve(fs, path.as_bytes(), false).expect("resolve").node
}

/// Physical block of the first data run of `path`.
fn first_block(fs: &Ext, path: &str) -> u64 {
    let inode = fs.read_inode(node(fs, path).0 as u32).unwrap();
    match fs.runs(&inode).unwrap()[0].kind {
        RunKind::Data(p) => p,
        other => panic!("{path}: first run is {other:?}"),
    }
}

/// Walk everything, tolerating errors, reading at most 1 MiB per file and
/// visiting at most `limit` nodes; returns the number of errors met.
pub fn tolerant_walk(fs: &dyn FsView, limit: usize) -> usize {
    let mut errors = 0;
    let mut stack = vec![fs.root()];
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut visited = 0;
    while let Some(n) = stack.pop() {
        visited += 1;
        if visited > limit {
            break;
        }
        let Ok(m) = fs.metadata(n) else {
            errors += 1;
            continue;
        };
        let _ = fs.xattrs(n).map_err(|_| errors += 1);
        match m.file_type {
            FileType::Directory => {
                if !seen.insert(n) {
                    continue;
                }
                match fs.read_dir(n) {
                    Ok(entries) => {
                        for (i, e) in entries.into_iter().enumerate() {
                            if i < 50 {
                                let _ = fs.lookup(n, &e.name);
                            }
                            stack.push(e.node);
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            FileType::Regular => {
                if fs.read_at(n, 0, &mut buf).is_err() {
                    errors += 1;
                }
                let _ = fs.read_at(n, m.size.saturating_sub(10), &mut buf[..100]);
                let _ = fs.extents(n).map_err(|_| errors += 1);
                let _ = fs.host_extent(n, 0, 1 << 20);
            }
            FileType::Symlink if fs.read_link(n).is_err() => errors += 1,
            _ => {}
        }
    }
    errors
}

#[test]
fn bad_superblock_checksum_is_reported() {
    let mut b = image("ext-ext4-4k");
    b[1024 + 0x300] ^= 0x55; // inside s_reserved
    let fs = open_bytes(b).unwrap();
    let p = problems(&fs);
    assert!(
        p.contains("ext superblock at byte 2044: checksum mismatch"),
        "{p}"
    );
    assert_eq!(tolerant_walk(&fs, 100_000), 0);
}

#[test]
fn broken_superblocks_are_refused_with_positions() {
    let cases: &[(usize, u8, &str)] = &[
        (0x38, 0x00, "ext superblock at byte 1080: bad s_magic"),
        (0x18, 30, "ext superblock at byte 1048: s_log_block_size 30"),
        (0x28, 0, "ext superblock at byte 1064: s_inodes_per_group"),
    ];
    for &(off, val, want) in cases {
        let mut b = image("ext-ext4-4k");
        b[1024 + off] = val;
        if off == 0x28 {
            b[1024 + off + 1] = 0;
            b[1024 + off + 2] = 0;
            b[1024 + off + 3] = 0;
        }
        let e = open_bytes(b).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    // An unknown incompatible feature is named and refused.
    let mut b = image("ext-ext4-4k");
    b[1024 + 0x60 + 3] |= 0x40;
    let e = open_bytes(b).unwrap_err().to_string();
    assert!(e.contains("unknown incompat feature 0x40000000"), "{e}");
    // A truncated image.
    let b = image("ext-ext4-4k")[..1500].to_vec();
    assert!(open_bytes(b).is_err());
}

#[test]
fn a_damaged_primary_superblock_falls_back_to_a_backup() {
    for name in ["ext-ext2-1k", "ext-ext4-1k"] {
        let mut b = image(name);
        b[1024 + 0x38] = 0; // s_magic
        let fs = open_bytes(b).unwrap();
        let p = problems(&fs);
        assert!(
            p.contains("ext superblock at byte 1080: bad s_magic"),
            "{p}"
        );
        assert!(
            p.contains("using the backup superblock at byte 8389632"),
            "{p}"
        );
        ext_support::assert_same(
            name,
            &ext_support::walk(&fs),
            &ext_support::manifest(&format!("{name}.walk")),
        );
    }
}

#[test]
fn a_wiped_primary_superblock_is_found_by_its_backup_from_the_cli() {
    // The first 4 KiB zeroed (the primary superblock with them): `layers`
    // still calls it ext2, naming the backup, and `ls` reads through it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wiped.img");
    let mut b = image("ext-ext2-1k");
    b[..4096].fill(0);
    std::fs::write(&path, b).unwrap();
    let img = path.to_str().unwrap();
    let out = common::vmrescue(&["layers", img]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ext2 (primary superblock damaged; backup superblock at byte 8389632)"),
        "{text}"
    );
    assert!(
        text.contains("userspace  ext2: read by vmrescue itself"),
        "{text}"
    );
    let out = common::vmrescue(&["ls", img, "/"]);
    assert_eq!(out.status.code(), Some(1), "problems make the exit code 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("using the backup superblock at byte 8389632"),
        "{err}"
    );
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(names.lines().any(|l| l == "abs-link"), "{names}");
}

#[test]
fn bad_group_descriptor_checksums_are_reported() {
    // metadata_csum (crc32c) on the 4 KiB image: descriptors at block 1.
    let mut b = image("ext-ext4-4k");
    b[4096 + 0xC] ^= 1; // bg_free_blocks_count_lo of group 0
    let fs = open_bytes(b).unwrap();
    assert!(
        problems(&fs).contains("ext group descriptor 0 at byte 4096: checksum mismatch"),
        "{}",
        problems(&fs)
    );
    assert_eq!(tolerant_walk(&fs, 100_000), 0);
    // gdt_csum (crc16) on the 1 KiB meta_bg image: group 1's descriptor is in block 2.
    let mut b = image("ext-ext4-1k");
    b[2048 + 32 + 0xC] ^= 1;
    let fs = open_bytes(b).unwrap();
    assert!(
        problems(&fs).contains("ext group descriptor 1 at byte 2080: checksum mismatch"),
        "{}",
        problems(&fs)
    );
}

#[test]
fn bad_inode_checksum_is_reported_and_the_file_still_reads() {
    let clean = ext_support::open("ext-ext4-4k");
    let ino = node(&clean, "/hello.txt").0 as u32;
    let pos = clean.inode_position(ino).unwrap();
    let mut b = image("ext-ext4-4k");
    b[pos as usize + 0x8] ^= 1; // i_atime
    let fs = open_bytes(b).unwrap();
    let n = node(&fs, "/hello.txt");
    let mut buf = [0u8; 64];
    assert_eq!(fs.read_at(n, 0, &mut buf).unwrap(), 13);
    let p = problems(&fs);
    assert!(
        p.contains(&format!("ext inode {ino} at byte {pos}: checksum mismatch")),
        "{p}"
    );
}

/// The extent tree of `/frag` (depth >= 1): (index node block, leaf blocks).
fn frag_tree(fs: &Ext) -> (u64, Vec<u64>) {
    let inode = fs.read_inode(node(fs, "/frag").0 as u32).unwrap();
    let ib = inode.i_block();
    let depth = u16::from_le_bytes([ib[6], ib[7]]);
    assert!(
        depth >= 2,
        "frag should have a deep extent tree, depth {depth}"
    );
    let first_child = u64::from(u32::from_le_bytes(ib[16..20].try_into().unwrap()));
    (first_child, vec![])
}

#[test]
fn broken_extent_nodes_give_errors_with_positions() {
    let clean = ext_support::open("ext-ext4-4k");
    let (idx, _) = frag_tree(&clean);
    let pos = (idx * 4096) as usize;
    // A flipped entry byte: the tail checksum catches it.
    let mut b = image("ext-ext4-4k");
    b[pos + 12 + 2] ^= 1; // ei_block of the first index entry
    let fs = open_bytes(b).unwrap();
    tolerant_walk(&fs, 100_000);
    assert!(
        problems(&fs).contains("ext4 extent node of inode"),
        "{}",
        problems(&fs)
    );
    // A bad magic: reading the file fails, naming the node and its position.
    let mut b = image("ext-ext4-4k");
    b[pos] ^= 0xff;
    let fs = open_bytes(b).unwrap();
    let n = node(&fs, "/frag");
    let e = fs.read_at(n, 0, &mut [0u8; 4096]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("ext4 extent node at byte {pos}: bad eh_magic")),
        "{e}"
    );
    assert!(fs.extents(n).is_err());
    // Two index entries pointing at the same node: a loop is an error, not a hang.
    let mut b = image("ext-ext4-4k");
    let first = b[pos + 12 + 4..pos + 12 + 10].to_vec();
    b[pos + 24 + 4..pos + 24 + 10].copy_from_slice(&first);
    let fs = open_bytes(b).unwrap();
    let n = node(&fs, "/frag");
    let e = fs.extents(n).unwrap_err().to_string();
    assert!(e.contains("referenced twice"), "{e}");
    // An index pointing at itself fails the depth check.
    let mut b = image("ext-ext4-4k");
    b[pos + 12 + 4..pos + 12 + 8].copy_from_slice(&(idx as u32).to_le_bytes());
    b[pos + 12 + 8..pos + 12 + 10].copy_from_slice(&[0, 0]);
    let fs = open_bytes(b).unwrap();
    let n = node(&fs, "/frag");
    assert!(fs.read_at(n, 0, &mut [0u8; 16]).is_err());
    assert!(fs.extents(n).is_err());
    // An extent past the end of the filesystem.
    let inode = clean
        .read_inode(node(&clean, "/hello.txt").0 as u32)
        .unwrap();
    let ext_pos = (inode.pos + 0x28 + 12 + 8) as usize; // ee_start_lo of the first extent
    let mut b = image("ext-ext4-4k");
    b[ext_pos..ext_pos + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let fs = open_bytes(b).unwrap();
    let e = fs
        .read_at(node(&fs, "/hello.txt"), 0, &mut [0u8; 16])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("ext4 extent at byte {}", inode.pos + 0x28 + 12)),
        "{e}"
    );
    assert!(e.contains("outside the filesystem"), "{e}");
}

#[test]
fn broken_directory_blocks_are_reported_and_the_rest_listed() {
    let clean = ext_support::open("ext-ext4-4k");
    let dir = first_block(&clean, "/dir") as usize * 4096;
    let want: Vec<Vec<u8>> = clean
        .read_dir(node(&clean, "/dir"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    // A flipped name byte: checksum mismatch reported, listing still complete.
    let mut b = image("ext-ext4-4k");
    let at = b[dir..dir + 4096]
        .windows(8)
        .position(|w| w == b"hardlink")
        .unwrap();
    b[dir + at] = b'H';
    let fs = open_bytes(b).unwrap();
    let got = fs.read_dir(node(&fs, "/dir")).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().any(|e| e.name == b"Hardlink"));
    assert_problem(
        &fs,
        &format!("ext directory block of inode {}", node(&fs, "/dir").0),
    );
    assert_problem(&fs, "checksum mismatch");
    // A zero rec_len: a problem, and the entries after it are still read.
    let mut b = image("ext-ext4-4k");
    b[dir + 12 + 4] = 0; // ".." rec_len
    b[dir + 12 + 5] = 0;
    let fs = open_bytes(b).unwrap();
    let got = fs.read_dir(node(&fs, "/dir")).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(
        problems(&fs).contains(&format!("at byte {}: bad rec_len 0", dir + 12)),
        "{}",
        problems(&fs)
    );
}

#[test]
fn a_damaged_htree_index_falls_back_to_a_scan() {
    let clean = ext_support::open("ext-ext4-4k");
    let root = first_block(&clean, "/big") as usize * 4096;
    let names: Vec<_> = clean.read_dir(node(&clean, "/big")).unwrap();
    let mut b = image("ext-ext4-4k");
    // Point every index entry at block 0 (the root itself).
    let count = u16::from_le_bytes([b[root + 0x22], b[root + 0x23]]) as usize;
    for i in 0..count {
        let o = root + 0x20 + 8 * i + 4;
        b[o..o + 4].copy_from_slice(&0u32.to_le_bytes());
    }
    let fs = open_bytes(b).unwrap();
    let big = node(&fs, "/big");
    for e in names.iter().step_by(97) {
        assert_eq!(fs.lookup(big, &e.name).unwrap(), Some(e.node));
    }
    // A directory entry naming the root again (a loop) does not trap a walk.
    let mut b = image("ext-ext4-4k");
    let dir = first_block(&clean, "/dir/sub") as usize * 4096;
    let sub_ino = node(&clean, "/dir/sub/deeper").0 as u32;
    let at = (0..4096 - 4)
        .step_by(4)
        .find(|&o| u32::from_le_bytes(b[dir + o..dir + o + 4].try_into().unwrap()) == sub_ino)
        .unwrap();
    b[dir + at..dir + at + 4].copy_from_slice(&2u32.to_le_bytes());
    let fs = open_bytes(b).unwrap();
    let start = Instant::now();
    tolerant_walk(&fs, 100_000);
    assert!(
        resolve(
            &fs,
            b"/dir/sub/deeper/dir/sub/deeper/dir/sub/deeper/hello.txt",
            true
        )
        .is_ok()
    );
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn huge_sizes_do_not_allocate_or_hang() {
    for name in ["ext-ext4-4k", "ext-ext2-1k"] {
        let clean = ext_support::open(name);
        let mut b = image(name);
        for path in ["/hello.txt", "/dir", "/slow-link"] {
            let ino = node(&clean, path).0 as u32;
            let pos = clean.inode_position(ino).unwrap() as usize;
            b[pos + 4..pos + 8].copy_from_slice(&u32::MAX.to_le_bytes());
            b[pos + 0x6C..pos + 0x70].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        let fs = open_bytes(b).unwrap();
        let start = Instant::now();
        let f = node(&fs, "/hello.txt");
        let mut buf = vec![0u8; 1 << 16];
        assert!(fs.read_at(f, 1 << 50, &mut buf).is_ok());
        let _ = fs.extents(f);
        let _ = fs.read_dir(node(&fs, "/dir"));
        assert!(fs.read_link(node(&fs, "/slow-link")).is_err());
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name}: too slow"
        );
    }
}

/// With large_dir a directory's i_size has 64 bits: a damaged one puts up
/// to 2^52 blocks of hole past the directory's data, passed over at once.
#[test]
fn a_huge_large_dir_directory_size_does_not_hang() {
    let name = "ext-ext4-eainode";
    let clean = ext_support::open(name);
    let want = clean.read_dir(node(&clean, "/dir")).unwrap();
    let ino = node(&clean, "/dir").0 as u32;
    let pos = clean.inode_position(ino).unwrap() as usize;
    for size_high in [0x100u32, u32::MAX] {
        let mut b = image(name);
        b[pos + 0x6C..pos + 0x70].copy_from_slice(&size_high.to_le_bytes());
        let fs = open_bytes(b).unwrap();
        let start = Instant::now();
        let dir = node(&fs, "/dir");
        assert!(fs.metadata(dir).unwrap().size >= u64::from(size_high) << 32);
        assert_eq!(fs.read_dir(dir).unwrap(), want);
        assert!(fs.lookup(dir, b"sub").unwrap().is_some());
        assert!(fs.lookup(dir, b"absent").unwrap().is_none());
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "size_high {size_high:#x}: too slow"
        );
    }
}

/// Without the 64bit feature the kernel reads only the low 32 bits of
/// i_file_acl: the two bytes at 0x76 are padding (on the Hurd, i_mode_high),
/// and whatever is there must not move the xattr block.
#[test]
fn i_file_acl_high_is_ignored_without_64bit() {
    let name = "ext-ext4-noextent"; // ^64bit, 128-byte inodes: xattrs live in a block
    let clean = ext_support::open(name);
    assert!(!clean.superblock().is_64bit());
    let f = node(&clean, "/hello.txt");
    let want = clean.xattrs(f).unwrap();
    assert!(want.iter().any(|x| x.name == b"user.color"), "{want:?}");
    let pos = clean.inode_position(f.0 as u32).unwrap() as usize;
    let mut b = image(name);
    b[pos + 0x76..pos + 0x78].copy_from_slice(&1u16.to_le_bytes());
    let fs = open_bytes(b).unwrap();
    assert_eq!(fs.xattrs(node(&fs, "/hello.txt")).unwrap(), want);
}

/// Flip bytes all over the metadata of each fixture (fixed seed): open and
/// walk must end with results or errors, never a panic.
#[test]
fn random_damage_never_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in [
        "ext-ext4-4k",
        "ext-ext2-1k",
        "ext-ext4-1k",
        "ext-inline",
        "ext-journal-ext4",
    ] {
        let clean = image(name);
        // Metadata lives in the first few MiB of these images.
        let span = clean.len().min(4 << 20);
        for _ in 0..12 {
            let mut b = clean.clone();
            for _ in 0..200 {
                let at = (rand() as usize) % span;
                b[at] ^= 1 << (rand() % 8);
            }
            if let Ok(fs) = open_bytes(b) {
                tolerant_walk(&fs, 20_000);
            }
        }
    }
}

/// Apply `change` to the raw inode of `path` in image bytes `b` and store
/// the checksum the changed inode should carry, so only the change is damage.
fn patch_inode(b: &mut [u8], clean: &Ext, path: &str, change: impl FnOnce(&mut [u8])) -> u64 {
    let ino = node(clean, path).0 as u32;
    let pos = clean.inode_position(ino).unwrap() as usize;
    let size = usize::from(clean.superblock().s_inode_size);
    let raw = &mut b[pos..pos + size];
    change(raw);
    let c = vmrescue::fs::ext::inode::inode_checksum(clean.csum_seed(), ino, raw);
    vmrescue::fs::ext::inode::set_inode_checksum(raw, c);
    pos as u64
}

/// Assert that `fs` reported a problem containing `want`.
fn assert_problem(fs: &Ext, want: &str) {
    let p = problems(fs);
    assert!(p.contains(want), "no problem {want:?} in:\n{p}");
}

/// Write `bytes` as `name` in a fresh directory; returns (dir, path).
fn temp_image(name: &str, bytes: Vec<u8>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let p = path.to_str().unwrap().to_string();
    (dir, p)
}

/// A leaf listing a later logical block before an earlier one (the kernel
/// refuses it, e2fsck calls it corruption): read by logical block all the
/// same, reported with the node's position, and `cat` and `cp` agree.
#[test]
fn extents_out_of_logical_order_are_read_in_order_and_reported() {
    let name = "ext-ext4-4k";
    let clean = ext_support::open(name);
    let f = node(&clean, "/punched");
    let size = clean.metadata(f).unwrap().size;
    let want = ext_support::sha256(&clean, f, size);
    let want_extents = clean.extents(f).unwrap();
    assert!(want_extents.len() >= 2, "{want_extents:?}");
    let mut b = image(name);
    let pos = patch_inode(&mut b, &clean, "/punched", |raw| {
        // Swap the two leaf entries in i_block (the root, depth 0).
        let e = 0x28 + 12;
        let first = raw[e..e + 12].to_vec();
        raw.copy_within(e + 12..e + 24, e);
        raw[e + 12..e + 24].copy_from_slice(&first);
    });
    let fs = open_bytes(b.clone()).unwrap();
    let f = node(&fs, "/punched");
    assert_eq!(ext_support::sha256(&fs, f, size), want);
    assert_eq!(fs.extents(f).unwrap(), want_extents);
    assert_problem(
        &fs,
        &format!(
            "ext4 extent node of inode {} at byte {}: entries are not in logical block order (entry 1 at byte {}",
            f.0,
            pos + 0x28,
            pos + 0x28 + 24
        ),
    );
    // From the command line: the same bytes from cat and cp, exit code 1.
    let (dir, img) = temp_image("unsorted.img", b);
    let cat = common::vmrescue(&["cat", &img, "/punched"]);
    assert_eq!(cat.status.code(), Some(1), "{cat:?}");
    let mut clean_bytes = vec![0u8; size as usize];
    clean
        .read_at(node(&clean, "/punched"), 0, &mut clean_bytes)
        .unwrap();
    assert!(cat.stdout == clean_bytes, "cat returned other bytes");
    let err = String::from_utf8_lossy(&cat.stderr);
    assert!(err.contains("not in logical block order"), "{err}");
    let out = dir.path().join("out");
    let cp = common::vmrescue(&["cp", &img, "/punched", out.to_str().unwrap()]);
    assert_eq!(cp.status.code(), Some(1), "{cp:?}");
    let copied = std::fs::read(&out).unwrap();
    assert!(copied == clean_bytes, "cp wrote other bytes");
    let err = String::from_utf8_lossy(&cp.stderr);
    assert!(err.contains("not in logical block order"), "{err}");
    // Index entries out of order in an index node of /frag's deep tree.
    let f = node(&clean, "/frag");
    let frag_size = clean.metadata(f).unwrap().size;
    let (want_sha, want_ext) = (
        ext_support::sha256(&clean, f, frag_size),
        clean.extents(f).unwrap(),
    );
    let (idx, _) = frag_tree(&clean);
    let at = idx as usize * 4096 + 12;
    let mut b = image(name);
    let first = b[at..at + 12].to_vec();
    b.copy_within(at + 12..at + 24, at);
    b[at + 12..at + 24].copy_from_slice(&first);
    let fs = open_bytes(b).unwrap();
    let f = node(&fs, "/frag");
    assert_eq!(ext_support::sha256(&fs, f, frag_size), want_sha);
    assert_eq!(fs.extents(f).unwrap(), want_ext);
    assert_problem(
        &fs,
        &format!(
            "at byte {}: entries are not in logical block order (entry 1",
            idx * 4096
        ),
    );
    // A zero-length extent (the kernel refuses it too) is a problem, not silence.
    let mut b = image(name);
    let pos = patch_inode(&mut b, &clean, "/punched", |raw| {
        raw[0x28 + 24 + 4..0x28 + 24 + 6].fill(0); // ee_len of the second extent
    });
    let fs = open_bytes(b).unwrap();
    let f = node(&fs, "/punched");
    assert_eq!(fs.extents(f).unwrap(), want_extents[..1]);
    assert_problem(
        &fs,
        &format!(
            "ext4 extent of inode {} at byte {}: ee_len 0",
            f.0,
            pos + 0x28 + 24
        ),
    );
}

/// Every checksum mismatch met while reading is a problem naming the
/// structure and its byte position, and makes `ls`, `cat` and `cp` exit 1
/// (a tampered inode's owner is still shown, but not as if it were valid).
#[test]
fn checksum_mismatches_found_while_reading_make_the_commands_exit_1() {
    let name = "ext-ext4-4k";
    let clean = ext_support::open(name);
    let inode_pos = clean
        .inode_position(node(&clean, "/hello.txt").0 as u32)
        .unwrap() as usize;
    let (idx, _) = frag_tree(&clean);
    let dir = first_block(&clean, "/dir") as usize * 4096;
    let big = first_block(&clean, "/big") as usize * 4096;
    let noext = ext_support::open("ext-ext4-noextent");
    let acl = noext
        .read_inode(node(&noext, "/hello.txt").0 as u32)
        .unwrap()
        .i_file_acl as usize
        * noext.block_size() as usize;
    type Damage = (&'static str, usize, &'static [&'static str], &'static str);
    let cases: &[Damage] = &[
        (name, inode_pos + 2, &["ls", "-l", "/"], "ext inode"), // i_uid
        (
            name,
            idx as usize * 4096 + 12 + 2,
            &["cat", "/frag"],
            "ext4 extent node",
        ),
        (name, dir + 30, &["ls", "/dir"], "ext directory block"),
        (name, big + 0x28, &["ls", "/big"], "ext htree node"),
        (
            "ext-ext4-noextent",
            acl + 0x40,
            &["cp", "/hello.txt"],
            "ext xattr block",
        ),
    ];
    for &(img_name, at, args, what) in cases {
        let mut b = image(img_name);
        b[at] ^= 0x10;
        let (dir, img) = temp_image("damaged.img", b);
        let mut argv = vec![args[0], img.as_str()];
        argv.extend_from_slice(&args[1..]);
        let out = dir.path().join("out");
        if args[0] == "cp" {
            argv.push(out.to_str().unwrap());
        }
        let run = common::vmrescue(&argv);
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(what) && err.contains("checksum mismatch"),
            "{args:?}: {err}"
        );
    }
}

/// The names `read_dir` lists in directory `d`.
fn names(fs: &Ext, d: NodeId) -> Vec<Vec<u8>> {
    fs.read_dir(d)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// The byte offset of the directory entry named `name` in block `block`.
fn entry_at(block: &[u8], name: &[u8]) -> usize {
    let mut off = 0;
    while off + 8 <= block.len() {
        let rec = usize::from(u16::from_le_bytes([block[off + 4], block[off + 5]]));
        let len = usize::from(block[off + 6]);
        if &block[off + 8..off + 8 + len] == name {
            return off;
        }
        assert!(rec >= 12, "no entry {name:?}");
        off += rec;
    }
    panic!("no entry {name:?}");
}

/// Damaged entries are each a problem with their position; the readable
/// entries around them are still listed, also past an entry whose rec_len
/// would hide the rest of the block (salvaged as e2fsck does).
#[test]
fn damaged_directory_entries_are_reported_and_the_rest_salvaged() {
    let name = "ext-ext4-4k";
    let clean = ext_support::open(name);
    let dir = first_block(&clean, "/dir") as usize * 4096;
    let d = node(&clean, "/dir");
    let want = names(&clean, d);
    assert!(want.len() >= 3, "{want:?}");
    let first = want[0].clone();
    let b0 = image(name);
    let at = dir + entry_at(&b0[dir..dir + 4096], &first);
    // rec_len 8: the rest of the block would be unreachable.
    let mut b = b0.clone();
    b[at + 4..at + 6].copy_from_slice(&8u16.to_le_bytes());
    let fs = open_bytes(b).unwrap();
    assert_eq!(names(&fs, d), want);
    assert_problem(
        &fs,
        &format!(
            "ext directory entry of inode {} at byte {at}: bad rec_len 8",
            d.0
        ),
    );
    assert_problem(&fs, "entries read on from byte");
    // An 8-byte hole with rec_len 8 before a good entry (e2fsck's special
    // case): the entry right after it is read, the rest too.
    let mut b = b0.clone();
    let end = dir + 4096 - 12; // the checksum tail stays
    b.copy_within(at..end - 8, at + 8);
    b[at..at + 4].copy_from_slice(&(d.0 as u32).to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&[8, 0, 4, 1]); // rec_len 8, name_len 4
    let fs = open_bytes(b).unwrap();
    assert_eq!(names(&fs, d), want);
    assert_problem(
        &fs,
        &format!(
            "at byte {at}: bad rec_len 8 (name_len 4); entries read on from byte {}",
            at + 8
        ),
    );
    // A reserved inode number (the journal's), and one past s_inodes_count.
    for (ino, what) in [
        (8u32, "inode 8 is reserved"),
        (u32::MAX, "inode 4294967295 out of range"),
    ] {
        let mut b = b0.clone();
        b[at..at + 4].copy_from_slice(&ino.to_le_bytes());
        let fs = open_bytes(b).unwrap();
        assert_eq!(names(&fs, d), want[1..], "{what}");
        assert_problem(
            &fs,
            &format!("ext directory entry of inode {} at byte {at}: {what}", d.0),
        );
    }
}

/// A second `..` (a regular file) after the real `.` and `..` is listed
/// (escaped) with a problem, and `cp` names it as skipped.
#[test]
fn a_second_dotdot_entry_is_surfaced_and_skipped_by_cp() {
    let name = "ext-ext4-4k";
    let clean = ext_support::open(name);
    let dir = first_block(&clean, "/dir") as usize * 4096;
    let d = node(&clean, "/dir");
    let mut b = image(name);
    let at = dir + entry_at(&b[dir..dir + 4096], b"hardlink");
    b[at + 6] = 2;
    b[at + 8..at + 10].copy_from_slice(b"..");
    let fs = open_bytes(b.clone()).unwrap();
    let got = fs.read_dir(d).unwrap();
    let dotdot = got
        .iter()
        .find(|e| e.name == b"..")
        .expect("second .. listed");
    assert_eq!(
        fs.metadata(dotdot.node).unwrap().file_type,
        FileType::Regular
    );
    assert_eq!(
        got.iter()
            .filter(|e| e.name == b"." || e.name == b"..")
            .count(),
        1
    );
    assert_problem(
        &fs,
        &format!(
            "ext directory entry of inode {} at byte {at}: the name .. ",
            d.0
        ),
    );
    let (tmp, img) = temp_image("dotdot.img", b);
    let ls = common::vmrescue(&["ls", "-a", &img, "/dir"]);
    assert_eq!(ls.status.code(), Some(1));
    let text = String::from_utf8_lossy(&ls.stdout);
    assert!(text.lines().any(|l| l == "\\x2e\\x2e"), "{text}");
    let out = tmp.path().join("out");
    let cp = common::vmrescue(&["cp", &img, "/dir", out.to_str().unwrap()]);
    assert_eq!(cp.status.code(), Some(1));
    let err = String::from_utf8_lossy(&cp.stderr);
    assert!(err.contains("/dir/..") && err.contains("skipped"), "{err}");
}

/// Invalid fast symlinks (a size i_block cannot hold, flags that
/// contradict) and inodes flagged both INLINE_DATA and EXTENTS are refused
/// as the kernel refuses them, each with a problem naming the inode.
#[test]
fn invalid_fast_symlinks_and_conflicting_flags_are_reported() {
    let name = "ext-ext4-4k";
    let clean = ext_support::open(name);
    assert_eq!(
        clean.read_link(node(&clean, "/fast-link")).unwrap(),
        b"hello.txt"
    );
    type Change = fn(&mut [u8]);
    let cases: &[(&str, Change, &str)] = &[
        (
            "/fast-link",
            |raw| raw[4] = 70,
            "invalid fast symlink (i_size 70",
        ),
        (
            "/fast-link",
            |raw| raw[0x22] |= 0x08,
            "invalid fast symlink (i_size 9",
        ), // EXTENTS
        (
            "/hello.txt",
            |raw| raw[0x23] |= 0x10,
            "has both INLINE_DATA and EXTENTS",
        ),
    ];
    for &(path, change, want) in cases {
        let mut b = image(name);
        let pos = patch_inode(&mut b, &clean, path, change);
        let fs = open_bytes(b.clone()).unwrap();
        let n = node(&fs, path);
        let e = if path == "/fast-link" {
            fs.read_link(n).unwrap_err()
        } else {
            assert!(fs.extents(n).is_err());
            fs.read_at(n, 0, &mut [0u8; 16]).unwrap_err()
        };
        let e = e.to_string();
        assert!(e.contains(want), "{e}");
        assert!(
            e.contains(&format!("at byte {pos}")) || e.contains(&format!("at byte {}", pos + 0x20)),
            "{e}"
        );
        assert!(problems(&fs).contains(want), "{}", problems(&fs));
        let (_tmp, img) = temp_image("flags.img", b);
        let ls = common::vmrescue(&["ls", "-l", &img, "/"]);
        assert_eq!(ls.status.code(), Some(1), "{path}");
    }
    // A slow symlink whose target holds a NUL byte before i_size (e2fsck:
    // invalid symlink), and one whose data block is gone.
    let at = first_block(&clean, "/slow-link") as usize * 4096 + 5;
    let mut b = image(name);
    b[at] = 0;
    let fs = open_bytes(b).unwrap();
    let e = fs
        .read_link(node(&fs, "/slow-link"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid symlink (a NUL byte at 5 of its 229-byte target)"),
        "{e}"
    );
    assert_problem(&fs, "a NUL byte at 5");
    let mut b = image(name);
    patch_inode(&mut b, &clean, "/slow-link", |raw| {
        raw[0x28 + 12 + 4..0x28 + 12 + 6].fill(0)
    });
    let fs = open_bytes(b).unwrap();
    assert!(fs.read_link(node(&fs, "/slow-link")).is_err());
    assert_problem(&fs, "invalid symlink (i_size 229 and no data block)");
}

/// An inline-data file whose `system.data` xattr is damaged: never the
/// xattr's own bytes (or invented zeros) as file data; the bytes the inode
/// holds are read, the rest is an error, and the damage is a problem.
#[test]
fn inline_data_is_bounded_by_its_damaged_system_data_xattr() {
    let name = "ext-inline";
    let clean = ext_support::open(name);
    let f = node(&clean, "/inline-150");
    let mut want = vec![0u8; 150];
    assert_eq!(clean.read_at(f, 0, &mut want).unwrap(), 150);
    let inode = clean.read_inode(f.0 as u32).unwrap();
    let e = 128 + usize::from(inode.i_extra_isize) + 4; // the first in-inode entry
    assert_eq!(
        (inode.raw[e + 1], &inode.raw[e + 16..e + 20]),
        (7, &b"data"[..])
    );
    // e_value_offs 0: the value would overlap the entry itself.
    // e_value_size 10: the value holds less than i_size says.
    let cases: &[(usize, u8, usize)] = &[(e + 2, 0, 60), (e + 8, 10, 70)];
    for &(at, val, held) in cases {
        let mut b = image(name);
        let pos = patch_inode(&mut b, &clean, "/inline-150", |raw| {
            raw[at] = val;
            raw[at + 1] = 0;
        });
        let fs = open_bytes(b.clone()).unwrap();
        let f = node(&fs, "/inline-150");
        let mut got = vec![0u8; 150];
        let n = fs.read_at(f, 0, &mut got).unwrap();
        assert_eq!(n, held);
        assert_eq!(got[..n], want[..n]);
        assert!(fs.read_at(f, n as u64, &mut got).is_err());
        assert_problem(
            &fs,
            &format!(
                "ext inline data of inode {} at byte {pos}: i_size 150 but i_block and the system.data xattr hold only {held} bytes",
                f.0
            ),
        );
        let (_tmp, img) = temp_image("inline.img", b);
        let cat = common::vmrescue(&["cat", &img, "/inline-150"]);
        assert_eq!(cat.status.code(), Some(1));
        assert!(cat.stdout == want[..held], "cat printed other bytes");
    }
}
