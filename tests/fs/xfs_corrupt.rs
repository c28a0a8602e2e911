//! Damaged XFS images: bad v5 checksums are reported with the structure and
//! byte position and reading goes on; broken structures give errors naming
//! the inode, the structure and the position; nothing panics or hangs.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::fs::path::resolve;
use vmrescue::fs::xfs::Xfs;
use vmrescue::fs::{FileType, FsView, NodeId};
use vmrescue::io::ReadAt;

fn image(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).expect("read fixture")
}

fn open_bytes(bytes: Vec<u8>) -> vmrescue::Result<Xfs> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Xfs::open(src)
}

fn problems(fs: &Xfs) -> String {
    vmrescue::problem::texts(&fs.status().problems).join("\n")
}

fn node(fs: &Xfs, path: &str) -> NodeId {
    resolve(fs, path.as_bytes(), false).expect("resolve").node
}

/// `xfs_db -r -c CMD...` on the fixture `name`: its output.
fn xfs_db(name: &str, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r");
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let out = c.arg(common::fixture(name)).output().expect("run xfs_db");
    assert!(out.status.success(), "xfs_db {cmds:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Byte position of filesystem block `fsbno` (AG-relative form), by xfs_db.
fn fsb_pos(name: &str, fsbno: u64) -> usize {
    let out = xfs_db(name, &[&format!("convert fsb {fsbno} daddr")]);
    // "0xc01e (49182)"
    let daddr: usize = out
        .split(['(', ')'])
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("xfs_db convert: {out}"));
    daddr * 512
}

/// Walk everything, tolerating errors, reading at most 1 MiB per file and
/// visiting at most `limit` nodes; returns the number of errors met.
fn tolerant_walk(fs: &dyn FsView, limit: usize) -> usize {
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
            FileType::Directory if seen.insert(n) => match fs.read_dir(n) {
                Ok(entries) => stack.extend(entries.into_iter().map(|e| e.node)),
                Err(_) => errors += 1,
            },
            FileType::Regular => {
                let _ = fs.read_at(n, 0, &mut buf).map_err(|_| errors += 1);
                let _ = fs.extents(n).map_err(|_| errors += 1);
            }
            FileType::Symlink => {
                let _ = fs.read_link(n).map_err(|_| errors += 1);
            }
            _ => {}
        }
    }
    errors
}

#[test]
fn bad_superblock_magic_is_an_error() {
    let mut img = image("xfs-v5-1k");
    img[0] ^= 0xff;
    let e = open_bytes(img).unwrap_err().to_string();
    assert!(
        e.contains("xfs superblock") && e.contains("bad magic"),
        "{e}"
    );
}

#[test]
fn superblock_checksum_mismatch_is_reported() {
    let mut img = image("xfs-v5-1k");
    img[400] ^= 0x01; // inside the checksummed sector, past the fields
    let fs = open_bytes(img).unwrap();
    let p = problems(&fs);
    assert!(
        p.contains("xfs superblock at byte 0: checksum mismatch"),
        "{p}"
    );
}

#[test]
fn damaged_ag_headers_are_reported_and_reading_goes_on() {
    let mut img = image("xfs-v5-1k");
    let agblocks = u64::from(open_bytes(img.clone()).unwrap().superblock().sb_agblocks);
    let ag1 = (agblocks * 1024) as usize;
    img[ag1 + 512] ^= 0xff; // AG 1's AGF magic
    img[ag1 + 1024 + 100] ^= 0x10; // AG 1's AGI, an unlinked bucket
    let fs = open_bytes(img).unwrap();
    let p = problems(&fs);
    assert!(p.contains("xfs AG 1 AGF at byte"), "{p}");
    assert!(p.contains("bad magic"), "{p}");
    assert!(p.contains("xfs AG 1 AGI at byte"), "{p}");
    assert!(p.contains("checksum mismatch"), "{p}");
    assert_eq!(tolerant_walk(&fs, 100_000), 0);
}

#[test]
fn damaged_inodes_give_errors_and_checksum_problems() {
    let img = image("xfs-v5-1k");
    let fs = open_bytes(img.clone()).unwrap();
    let hello = node(&fs, "/hello.txt");
    let medium = node(&fs, "/dir/sub/medium");
    let pos = |n: NodeId| fs.superblock().inode_pos(n.0).unwrap() as usize;
    let (hello_pos, medium_pos) = (pos(hello), pos(medium));
    let mut img = img;
    img[hello_pos + 41] ^= 0x01; // mtime: only the checksum tells
    img[medium_pos] ^= 0xff; // di_magic
    let fs = open_bytes(img).unwrap();
    let m = fs.metadata(hello).unwrap();
    assert_eq!(m.size, 13);
    let p = problems(&fs);
    assert!(
        p.contains(&format!(
            "xfs inode {} at byte {hello_pos}: checksum mismatch",
            hello.0
        )),
        "{p}"
    );
    let e = fs.metadata(medium).unwrap_err().to_string();
    assert!(
        e.contains(&format!("xfs inode {} at byte {medium_pos}", medium.0))
            && e.contains("bad magic"),
        "{e}"
    );
    // The rest of the tree is still read.
    assert_eq!(tolerant_walk(&fs, 100_000), 1);
}

#[test]
fn damaged_directory_blocks_are_reported_and_skipped() {
    let name = "xfs-v5-1k";
    let out = xfs_db(name, &["path /dir5000", "bmap"]);
    // "data offset 0 startblock 206 (0/206) count 4 flag 0"
    let first: u64 = out
        .split_whitespace()
        .nth(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("xfs_db bmap: {out}"));
    let pos = fsb_pos(name, first);
    let mut img = image(name);
    let fs = open_bytes(img.clone()).unwrap();
    let dir = node(&fs, "/dir5000");
    let all = fs.read_dir(dir).unwrap().len();
    // A flipped byte in an entry name: the checksum says so.
    img[pos + 200] ^= 0x01;
    let fs = open_bytes(img.clone()).unwrap();
    assert_eq!(fs.read_dir(dir).unwrap().len(), all);
    let p = problems(&fs);
    assert!(
        p.contains(&format!(
            "xfs directory inode {}: directory block 0 at byte {pos}: checksum mismatch",
            dir.0
        )),
        "{p}"
    );
    // A bad magic: that block's entries are left out, the others listed.
    img[pos] ^= 0xff;
    let fs = open_bytes(img).unwrap();
    let fewer = fs.read_dir(dir).unwrap().len();
    assert!(fewer < all && fewer > 0, "{fewer} of {all}");
    assert!(problems(&fs).contains("bad magic"), "{}", problems(&fs));
}

#[test]
fn damaged_bmbt_blocks_give_errors_naming_inode_and_block() {
    let name = "xfs-v5-1k";
    let out = xfs_db(name, &["path /frag", "p u3.bmbt.ptrs"]);
    let fsbno: u64 = out
        .rsplit('=')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("xfs_db: {out}"));
    let pos = fsb_pos(name, fsbno);
    let mut img = image(name);
    let fs = open_bytes(img.clone()).unwrap();
    let frag = node(&fs, "/frag");
    img[pos] ^= 0xff;
    let fs = open_bytes(img.clone()).unwrap();
    let mut buf = vec![0u8; 4096];
    let e = fs.read_at(frag, 0, &mut buf).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "xfs inode {}: data fork: bmbt block {fsbno}",
            frag.0
        )) && e.contains("bad magic"),
        "{e}"
    );
    // A pointer to itself: a loop, found.
    img[pos] ^= 0xff;
    let bs = 1024;
    let hdr = 72;
    let maxrecs = (bs - hdr) / 16;
    let ptr_at = pos + hdr + maxrecs * 8;
    img[ptr_at..ptr_at + 8].copy_from_slice(&fsbno.to_be_bytes());
    let fs = open_bytes(img).unwrap();
    let e = fs.read_at(frag, 0, &mut buf).unwrap_err().to_string();
    assert!(e.contains("bmbt block"), "{e}");
}

#[test]
fn truncated_image_gives_errors_not_panics() {
    let mut img = image("xfs-v5-1k");
    img.truncate(img.len() * 2 / 5);
    let fs = open_bytes(img).unwrap();
    assert!(problems(&fs).contains("truncated"), "{}", problems(&fs));
    assert!(tolerant_walk(&fs, 100_000) > 0);
    // Cut inside the superblock's sector: an error.
    let mut img = image("xfs-v5-1k");
    img.truncate(300);
    assert!(open_bytes(img).is_err());
}

/// Tiny deterministic generator (xorshift), so failures can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Metadata regions of a fixture: AG headers, inode slots of every node,
/// and the first block of every directory and of /frag's btree.
fn metadata_regions(fs: &Xfs, img_len: usize) -> Vec<(usize, usize)> {
    let sb = fs.superblock();
    let bs = sb.block_size() as usize;
    let mut v = Vec::new();
    for ag in 0..u64::from(sb.sb_agcount) {
        let at = (ag * u64::from(sb.sb_agblocks)) as usize * bs;
        v.push((at, 4 * usize::from(sb.sb_sectsize)));
    }
    let mut stack = vec![fs.root()];
    while let Some(n) = stack.pop() {
        if let Some(p) = sb.inode_pos(n.0) {
            v.push((p as usize, usize::from(sb.sb_inodesize)));
        }
        if let Ok(entries) = fs.read_dir(n) {
            stack.extend(entries.into_iter().take(50).map(|e| e.node));
        }
    }
    v.retain(|&(a, l)| a + l <= img_len);
    v
}

#[test]
fn seeded_byte_flips_never_panic_or_hang() {
    for name in ["xfs-v5-1k", "xfs-v4-noftype"] {
        let pristine = image(name);
        let fs = open_bytes(pristine.clone()).unwrap();
        let regions = metadata_regions(&fs, pristine.len());
        drop(fs);
        let mut rng = Rng(0x5eed_0000 + pristine.len() as u64);
        for round in 0..40 {
            let mut img = pristine.clone();
            for _ in 0..8 {
                let (at, len) = regions[(rng.next() % regions.len() as u64) as usize];
                let off = at + (rng.next() % len as u64) as usize;
                img[off] ^= 1 << (rng.next() % 8);
            }
            let started = Instant::now();
            if let Ok(fs) = open_bytes(img) {
                let _ = fs.status();
                tolerant_walk(&fs, 20_000);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} round {round}: took {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn the_binary_survives_a_damaged_image() {
    // Through the CLI (killed after 300 s): a flipped AGF, inode and bmbt block.
    let dir = tempfile::tempdir().unwrap();
    let path = common::fixture_copy("xfs-v5-1k", dir.path());
    let mut img = std::fs::read(&path).unwrap();
    let fs = open_bytes(img.clone()).unwrap();
    let root_pos = fs.superblock().inode_pos(fs.root().0).unwrap() as usize;
    let hello = fs
        .superblock()
        .inode_pos(node(&fs, "/hello.txt").0)
        .unwrap() as usize;
    img[512] ^= 0x55;
    img[hello + 2] ^= 0x80;
    img[root_pos + 100] ^= 0x01; // the root's di_crc
    std::fs::write(&path, &img).unwrap();
    let out = common::vmrescue(&["walk", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dir/sub/medium"),
        "{err}"
    );
}
