//! Journal recovery in memory: the view equals the kernel's after it replays
//! the journal, `no_journal` equals the on-disk state, and the image is never
//! written.

use crate::common;
use crate::ext_support;

use std::process::Command;

use ext_support::{assert_same, manifest, open_path, walk};
use sha2::{Digest, Sha256};
use vmrescue::fs::FsView;
use vmrescue::fs::path::resolve;

fn file_sha(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read image");
    Sha256::digest(&bytes).to_vec()
}

fn read_all(fs: &dyn FsView, path: &[u8]) -> Vec<u8> {
    let node = resolve(fs, path, false).expect("resolve").node;
    let size = fs.metadata(node).unwrap().size;
    let mut buf = vec![0u8; size as usize];
    assert_eq!(fs.read_at(node, 0, &mut buf).unwrap(), size as usize);
    buf
}

fn debugfs(image: &std::path::Path, request: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .expect("run debugfs");
    assert!(out.status.success(), "debugfs {request}");
    out.stdout
}

fn check(name: &str) {
    let image = common::fixture(name);
    let before = file_sha(&image);

    let fs = open_path(&image, false);
    let st = fs.status();
    assert!(
        st.notes
            .iter()
            .any(|n| n.starts_with("journal replayed in memory: 2 transactions, ")),
        "{name}: notes {:?}",
        st.notes
    );
    assert!(
        st.notes.iter().any(|n| n.contains("has no commit block")),
        "{:?}",
        st.notes
    );
    assert!(st.problems.is_empty(), "{name}: {:?}", st.problems);
    assert_same(name, &walk(&fs), &manifest(&format!("{name}.walk")));
    // The revoked block keeps its on-disk bytes, the uncommitted one too.
    assert!(read_all(&fs, b"/revoked.txt").starts_with(b"revoked block\n"));
    assert!(read_all(&fs, b"/uncommitted.txt").starts_with(b"uncommitted block\n"));
    assert_eq!(read_all(&fs, b"/hello.txt"), b"hello, world\nmore\n");
    // Replayed data is not offered for copy_file_range.
    let fresh = resolve(&fs, b"/newdir/fresh.txt", false).unwrap().node;
    assert!(fs.host_extent(fresh, 0, 4096).is_none());

    let disk = open_path(&image, true);
    let st = disk.status();
    assert!(
        st.notes
            .iter()
            .any(|n| n.contains("not replayed (--no-journal)")),
        "{:?}",
        st.notes
    );
    assert_same(
        &format!("{name} without the journal"),
        &walk(&disk),
        &manifest(&format!("{name}.nojournal.walk")),
    );
    // debugfs reads the on-disk state too (it does not recover).
    assert_eq!(
        read_all(&disk, b"/hello.txt"),
        debugfs(&image, "cat /hello.txt")
    );
    assert!(resolve(&disk, b"/old-name", false).is_ok());
    assert!(resolve(&fs, b"/old-name", false).is_err());
    let ls = String::from_utf8_lossy(&debugfs(&image, "ls -p /")).to_string();
    assert!(
        ls.contains("/old-name/") && !ls.contains("/new-name/"),
        "{ls}"
    );

    assert_eq!(before, file_sha(&image), "{name}: the image changed");
}

#[test]
fn ext4_journal_is_replayed_in_memory() {
    check("ext-journal-ext4");
}

#[test]
fn ext3_journal_is_replayed_in_memory() {
    check("ext-journal-ext3");
}

#[test]
fn journal_checksum_v1_is_replayed_in_memory() {
    check("ext-journal-v1");
}

#[test]
fn journal_checksum_v2_is_replayed_in_memory() {
    check("ext-journal-v2");
}

#[test]
fn an_external_journal_is_named_and_the_disk_state_shown() {
    let image = common::fixture("ext-journal-ext4");
    let mut b = std::fs::read(&image).unwrap();
    b[1024 + 0xE0..1024 + 0xE4].copy_from_slice(&0u32.to_le_bytes()); // s_journal_inum
    b[1024 + 0xE4..1024 + 0xE8].copy_from_slice(&0x0801u32.to_le_bytes()); // s_journal_dev
    let src: std::sync::Arc<dyn vmrescue::io::ReadAt> = std::sync::Arc::new(b);
    let fs = vmrescue::fs::ext::Ext::open(src, &vmrescue::fs::FsOptions::default()).unwrap();
    let st = fs.status();
    assert!(
        st.notes
            .iter()
            .any(|n| n.contains("external device") && n.contains("not available")),
        "{:?}",
        st.notes
    );
    assert_same(
        "external journal",
        &walk(&fs),
        &manifest("ext-journal-ext4.nojournal.walk"),
    );
}

#[test]
fn kernel_replay_of_a_copy_matches() {
    common::require_root(
        "loop-mounts copies of the journal fixtures read-write so the kernel replays them",
    );
    for name in [
        "ext-journal-ext4",
        "ext-journal-ext3",
        "ext-journal-v1",
        "ext-journal-v2",
    ] {
        let ours = walk(&open_path(&common::fixture(name), false));
        let tmp = tempfile::tempdir().unwrap();
        let copy = common::fixture_copy(name, tmp.path());
        let m = ext_support::KernelMount::new(&copy, "ro", false);
        let theirs = ext_support::kernel_walk(&m.path());
        drop(m);
        assert_same(name, &ours, &theirs);
        // The kernel's recovery wrote the copy; our reader now sees a clean journal.
        let after = open_path(&copy, false);
        assert!(!after.journal_replayed());
        assert_same(
            &format!("{name} after the kernel's recovery"),
            &walk(&after),
            &theirs,
        );
    }
}

#[test]
fn the_engine_opens_ext_volumes_with_and_without_the_journal() {
    use vmrescue::engine::select_volume;
    use vmrescue::engine::userspace::Userspace;
    use vmrescue::fs::FsOptions;
    let open_fs = |layout: &vmrescue::layers::Layout, id, opts: &FsOptions| {
        Userspace::default().open_fs(layout, id, opts)
    };
    let image = common::fixture("ext-journal-ext4");
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
    let id = select_volume(&layout, None).unwrap();
    let fs = open_fs(&layout, id, &FsOptions::default()).unwrap();
    assert_eq!(fs.status().fs_type, "ext4");
    assert_same("engine", &walk(&*fs), &manifest("ext-journal-ext4.walk"));
    let disk = open_fs(&layout, id, &FsOptions { no_journal: true }).unwrap();
    assert_same(
        "engine, no journal",
        &walk(&*disk),
        &manifest("ext-journal-ext4.nojournal.walk"),
    );
    let ext3 = common::fixture("ext-journal-ext3");
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&ext3).unwrap()]);
    let fs = open_fs(
        &layout,
        select_volume(&layout, None).unwrap(),
        &FsOptions::default(),
    )
    .unwrap();
    assert_eq!(fs.status().fs_type, "ext3");
}

/// The journal-relative blocks of the commit blocks, from debugfs's logdump.
fn commit_blocks(image: &std::path::Path) -> Vec<u64> {
    String::from_utf8_lossy(&debugfs(image, "logdump"))
        .lines()
        .filter(|l| l.contains("(commit block) at block "))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn replay_stops_at_a_commit_block_with_a_bad_checksum() {
    let image = common::fixture("ext-journal-ext4");
    let commits = commit_blocks(&image);
    assert_eq!(commits.len(), 2, "{commits:?}");
    let phys: u64 = String::from_utf8_lossy(&debugfs(&image, &format!("bmap <8> {}", commits[1])))
        .trim()
        .parse()
        .unwrap();
    let pos = phys * 4096 + 0x40; // inside the commit block, past its header and checksum
    let mut b = std::fs::read(&image).unwrap();
    b[pos as usize] ^= 0xff;
    let src: std::sync::Arc<dyn vmrescue::io::ReadAt> = std::sync::Arc::new(b);
    let fs = vmrescue::fs::ext::Ext::open(src, &vmrescue::fs::FsOptions::default()).unwrap();
    let st = fs.status();
    assert!(
        st.notes
            .iter()
            .any(|n| n.starts_with("journal replayed in memory: 1 transactions, ")),
        "{:?}",
        st.notes
    );
    let want = format!("jbd2 commit block at byte {}", phys * 4096);
    assert!(
        st.problems
            .iter()
            .map(ToString::to_string)
            .any(|p| p.contains(&want) && p.contains("checksum mismatch")),
        "{:?}",
        st.problems
    );
    // Without the revoke of transaction 2, transaction 1's garbage for revoked.txt shows.
    assert!(read_all(&fs, b"/revoked.txt").starts_with(b"REVOKED!"));
    assert_eq!(read_all(&fs, b"/hello.txt"), b"hello, world\nmore\n");
}

fn open_bytes(b: Vec<u8>) -> vmrescue::fs::ext::Ext {
    let src: std::sync::Arc<dyn vmrescue::io::ReadAt> = std::sync::Arc::new(b);
    vmrescue::fs::ext::Ext::open(src, &vmrescue::fs::FsOptions::default()).unwrap()
}

/// Byte position of the journal superblock (journal block 0).
fn journal_sb_pos(image: &std::path::Path) -> usize {
    let phys: usize = String::from_utf8_lossy(&debugfs(image, "bmap <8> 0"))
        .trim()
        .parse()
        .unwrap();
    phys * 4096
}

/// A journal that cannot be trusted (a bad magic, a bad superblock
/// checksum) is never replayed: the on-disk state is shown, with a problem
/// that names the damage and --no-journal, and `ls` exits 1, not 2.
#[test]
fn an_untrusted_journal_is_not_replayed_and_the_disk_state_shown() {
    let image = common::fixture("ext-journal-ext4");
    let jsb = journal_sb_pos(&image);
    let cases: &[(usize, &str)] = &[
        (jsb, "bad h_magic"),
        // Inside s_users, covered by the v3 superblock checksum.
        (
            jsb + 0x200,
            &format!("at byte {}: checksum mismatch", jsb + 0xFC),
        ),
    ];
    for &(at, want) in cases {
        let mut b = std::fs::read(&image).unwrap();
        b[at] ^= 0x01;
        let fs = open_bytes(b.clone());
        let st = fs.status();
        assert!(!fs.journal_replayed());
        let p = vmrescue::problem::texts(&st.problems).join("\n");
        assert!(
            p.contains("the journal cannot be replayed") && p.contains(want),
            "{p}"
        );
        assert!(p.contains("--no-journal"), "{p}");
        assert_same(
            "untrusted journal",
            &walk(&fs),
            &manifest("ext-journal-ext4.nojournal.walk"),
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.img");
        std::fs::write(&path, b).unwrap();
        let ls = common::vmrescue(&["ls", path.to_str().unwrap(), "/"]);
        assert_eq!(ls.status.code(), Some(1), "{ls:?}");
        let err = String::from_utf8_lossy(&ls.stderr);
        assert!(err.contains("--no-journal"), "{err}");
    }
}

/// A damaged journal inode while the superblock's backup of it
/// (s_jnl_blocks) is intact: the journal is read through the backup, as
/// e2fsck does, and replayed as the kernel would replay it.
#[test]
fn a_damaged_journal_inode_is_replaced_by_its_backup() {
    let image = common::fixture("ext-journal-ext4");
    let clean = open_path(&image, true);
    let pos = clean.inode_position(8).unwrap() as usize;
    let mut b = std::fs::read(&image).unwrap();
    b[pos + 0x28..pos + 0x28 + 60].fill(0); // i_block: no extent tree at all
    let fs = open_bytes(b);
    assert!(fs.journal_replayed());
    let p = vmrescue::problem::texts(&fs.status().problems).join("\n");
    assert!(
        p.contains(&format!("ext journal inode at byte {pos}: inode 8:"))
            && p.contains("s_jnl_blocks"),
        "{p}"
    );
    assert_same(
        "journal through its backup",
        &walk(&fs),
        &manifest("ext-journal-ext4.walk"),
    );
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An ext4 filesystem whose journal is on a journal device (mke2fs -O
/// journal_dev, then -J device=), with a committed transaction (written by
/// debugfs) that rewrites /hello.txt's block: it is replayed from the device
/// when the device is among the volumes (`--disk`), as the kernel replays it.
#[test]
fn an_external_journal_device_given_with_disk_is_replayed() {
    common::require_root("mke2fs -J device= wants a block device: a loop device of the journal");
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    std::fs::create_dir(p("src")).unwrap();
    std::fs::write(tmp.path().join("src/hello.txt"), b"hello, disk\n").unwrap();
    run(
        "mke2fs",
        &[
            "-q",
            "-F",
            "-O",
            "journal_dev",
            "-b",
            "4096",
            &p("jdev.img"),
            "2048",
        ],
    );
    // mke2fs finds the journal through a loop device; other tests of this
    // binary attach and detach loop devices at the same time, so the device
    // number is checked to still be ours, and the journal mke2fs recorded to
    // be this one (`Journal UUID` against the device's own UUID).
    let journal_uuid = run(
        "blkid",
        &["-p", "-s", "UUID", "-o", "value", &p("jdev.img")],
    );
    let mut recorded = String::new();
    for _ in 0..3 {
        let lo = run("losetup", &["-f", "--show", &p("jdev.img")]);
        let made = Command::new("mke2fs")
            .args([
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-d",
                &p("src"),
                "-J",
            ])
            .arg(format!("device={lo}"))
            .args([&p("fs.img"), "8M"])
            .status();
        run("losetup", &["-d", &lo]);
        assert!(made.unwrap().success());
        recorded = run("dumpe2fs", &["-h", &p("fs.img")])
            .lines()
            .find_map(|l| l.strip_prefix("Journal UUID:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if recorded == journal_uuid.trim() {
            break;
        }
    }
    assert_eq!(
        recorded,
        journal_uuid.trim(),
        "mke2fs recorded another journal three times"
    );
    let block = run("debugfs", &["-R", "bmap /hello.txt 0", &p("fs.img")]);
    let mut t1 = b"HELLO, JOURNAL\n".to_vec();
    t1.resize(4096, 0);
    std::fs::write(p("t1"), &t1).unwrap();
    let mut w = Command::new("debugfs")
        .args(["-w", "-f", "-", &p("fs.img")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let script = format!("jo -f {}\njw -b {block} {}\njc\n", p("jdev.img"), p("t1"));
    w.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(w.wait().unwrap().success());
    let before = (
        file_sha(tmp.path().join("fs.img").as_path()),
        file_sha(tmp.path().join("jdev.img").as_path()),
    );

    let src = |n: &str| -> std::sync::Arc<dyn vmrescue::io::ReadAt> {
        std::sync::Arc::new(std::fs::read(p(n)).unwrap())
    };
    let opts = vmrescue::fs::FsOptions::default();
    let alone = vmrescue::fs::ext::Ext::open(src("fs.img"), &opts).unwrap();
    assert_eq!(read_all(&alone, b"/hello.txt"), b"hello, disk\n");
    assert!(
        alone
            .status()
            .notes
            .iter()
            .any(|n| n.contains("not available"))
    );
    let fs =
        vmrescue::fs::ext::Ext::open_with_journal_devices(src("fs.img"), &opts, &[src("jdev.img")])
            .unwrap();
    assert!(fs.journal_replayed(), "{:?}", fs.status());
    assert!(
        fs.status().problems.is_empty(),
        "{:?}",
        fs.status().problems
    );
    assert_eq!(read_all(&fs, b"/hello.txt"), b"HELLO, JOURN");
    // From the command line, the journal device passed with --disk.
    let cat = common::vmrescue(&["cat", "--disk", &p("jdev.img"), &p("fs.img"), "/hello.txt"]);
    assert_eq!(cat.status.code(), Some(0), "{cat:?}");
    assert_eq!(cat.stdout, b"HELLO, JOURN");
    assert_eq!(before.0, file_sha(tmp.path().join("fs.img").as_path()));
    assert_eq!(before.1, file_sha(tmp.path().join("jdev.img").as_path()));
    // The kernel, given the device, replays the same.
    let lo = run("losetup", &["-f", "--show", &p("jdev.img")]);
    let m = ext_support::KernelMount::new(
        tmp.path().join("fs.img").as_path(),
        &format!("ro,journal_path={lo}"),
        false,
    );
    let theirs = std::fs::read(m.path().join("hello.txt")).unwrap();
    drop(m);
    run("losetup", &["-d", &lo]);
    assert_eq!(theirs, b"HELLO, JOURN");
}
