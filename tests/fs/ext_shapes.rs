//! Filesystem shapes the committed fixtures do not have, built in the test
//! by real tools (mke2fs, then the kernel through a loop mount) and compared
//! with the kernel's own view of the same bytes. Needs root.

use crate::common;
use crate::ext_support;
use crate::image_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ext_support::{KernelMount, assert_same, kernel_walk, open_path, walk};
use vmrescue::fs::FsView;

/// A fresh image of `size` bytes made by `mke2fs ARGS`, populated by the
/// shell `script` run inside a read-write kernel mount of it.
fn build(dir: &Path, size: u64, mkfs: &[&str], script: &str) -> PathBuf {
    let image = dir.join("fs.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(size))
        .expect("create the image");
    let out = image_support::tool(
        "mke2fs",
        &[&["-q", "-F"], mkfs, &[image.to_str().unwrap()]].concat(),
        "e2fsprogs",
    );
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = KernelMount::new(&image, "rw", false);
    let st = Command::new("sh")
        .args(["-euc", script])
        .current_dir(m.path())
        .status()
        .expect("run the populate script");
    assert!(st.success(), "populate script failed: {script}");
    drop(m);
    image
}

/// Our walk of `image` equals the kernel's (read-only loop, `ro,noload`).
fn assert_parity(what: &str, image: &Path) {
    let m = KernelMount::new(image, "ro,noload", true);
    let theirs = kernel_walk(&m.path());
    drop(m);
    let fs = open_path(image, false);
    assert_same(what, &walk(&fs), &theirs);
    assert!(
        fs.status().problems.is_empty(),
        "{what}: problems on a healthy image: {:?}",
        fs.status().problems
    );
}

/// With ea_inode, an xattr value kept in its own inode is charged to the
/// owner's `i_blocks`: a fast symlink carrying one has blocks counted, yet
/// its target is still in `i_block` (the kernel decides by size alone).
#[test]
fn fast_symlinks_with_values_in_ea_inodes_read_their_target() {
    common::require_root("loop-mounts an image it builds with mke2fs");
    let dir = tempfile::tempdir().unwrap();
    let image = build(
        dir.path(),
        64 << 20,
        &["-t", "ext4", "-b", "4096", "-O", "ea_inode"],
        r#"
        big() { head -c "$1" /dev/zero | tr '\0' "$2"; }
        ln -s short-target fast
        ln -s "$(big 59 a)" fast59
        ln -s "$(big 100 b)" slow
        for l in fast fast59 slow; do
            setfattr -h -n trusted.big -v "$(big 20000 v)" "$l"
        done
        ln -s t2 fast-small-xattr
        setfattr -h -n trusted.mid -v "$(big 3000 m)" fast-small-xattr
        "#,
    );
    let fs = open_path(&image, false);
    let node = |p: &str| {
        vmrescue::fs::path::resolve(&fs, p.as_bytes(), false)
            .unwrap()
            .node
    };
    assert_eq!(fs.read_link(node("/fast")).unwrap(), b"short-target");
    assert!(
        fs.metadata(node("/fast")).unwrap().allocated.unwrap() > 0,
        "the EA inode's blocks should be charged to the link (else this test proves nothing)"
    );
    assert_eq!(fs.read_link(node("/fast59")).unwrap(), vec![b'a'; 59]);
    assert_eq!(fs.read_link(node("/slow")).unwrap(), vec![b'b'; 100]);
    drop(fs);
    assert_parity("ea_inode symlinks", &image);
}

/// bigalloc with 1 KiB blocks has s_first_data_block 0, yet the primary
/// superblock is block 1 and the group descriptors start at block 2.
#[test]
fn bigalloc_with_1k_blocks_finds_its_group_descriptors() {
    common::require_root("loop-mounts an image it builds with mke2fs");
    let dir = tempfile::tempdir().unwrap();
    let image = build(
        dir.path(),
        64 << 20,
        &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "4096"],
        r#"
        mkdir -p a/b
        printf 'hello\n' >a/hello
        head -c 300000 /dev/urandom >a/b/random
        for i in $(seq 1 300); do : >"a/entry-$i"; done
        ln -s hello a/link
        "#,
    );
    let out = image_support::tool("dumpe2fs", &["-h", image.to_str().unwrap()], "e2fsprogs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("First block:") && l.ends_with(" 0")),
        "mke2fs no longer makes s_first_data_block 0 here:\n{text}"
    );
    assert_parity("bigalloc, 1 KiB blocks", &image);
}

/// bigalloc groups hold 8 × block size clusters, so group 1 and its backup
/// superblock start further out than the usual 8 × block size blocks; with
/// 1 KiB blocks, groups also start at block 0.
#[test]
fn a_damaged_bigalloc_primary_superblock_falls_back_to_a_backup() {
    for (bs, cluster, backup_at) in [
        ("4096", "16384", 4u64 * 32768 * 4096),
        ("1024", "4096", 4 * 8192 * 1024),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(1 << 30))
            .unwrap();
        let out = image_support::tool(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                bs,
                "-O",
                "bigalloc",
                "-C",
                cluster,
                image.to_str().unwrap(),
            ],
            "e2fsprogs",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut b = std::fs::read(&image).unwrap();
        b[1024 + 0x38] = 0; // s_magic
        let src: std::sync::Arc<dyn vmrescue::io::ReadAt> = std::sync::Arc::new(b);
        let fs = vmrescue::fs::ext::Ext::open(src, &Default::default())
            .unwrap_or_else(|e| panic!("{bs}-byte blocks: {e}"));
        let p = vmrescue::problem::texts(&fs.status().problems).join("\n");
        assert!(
            p.contains(&format!("using the backup superblock at byte {backup_at}")),
            "{bs}-byte blocks: {p}"
        );
        let names: Vec<Vec<u8>> = fs
            .read_dir(fs.root())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"lost+found".to_vec()]);
    }
}
