//! Our btrfs reader against the kernel: the walk of every subvolume of
//! every fixture built by `tests/fixtures/make/btrfs.sh` equals the
//! kernel's (recorded when the fixture was built, from a read-only mount
//! with `rescue=nologreplay`).

use crate::common;
use crate::ext_support::{assert_same, manifest, walk};

use std::sync::Arc;

use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView, SubvolSpec};
use vmrescue::io::{FileSource, ReadAt};

fn open(name: &str) -> Btrfs {
    let p = common::fixture(name);
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(&p).expect("open image"));
    Btrfs::open(src).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parity_of(name: &str, fs: &Btrfs, walk_file: &str) {
    let ours = walk(fs);
    assert_same(walk_file, &ours, &manifest(walk_file));
    let st = fs.status();
    assert!(
        st.problems.is_empty(),
        "{name}: problems: {:?}",
        st.problems
    );
    assert_eq!(st.fs_type, "btrfs");
}

fn parity(name: &str) {
    let fs = open(name);
    parity_of(name, &fs, &format!("{name}.walk"));
}

#[test]
fn main_default_subvolume_matches_the_kernel() {
    // Needs the compression of the helper branch for compressed extents.
    parity("btrfs-main");
    let fs = open("btrfs-main");
    assert_eq!(fs.status().label.as_deref(), Some("vmrxb"));
    assert!(fs.status().notes.is_empty(), "{:?}", fs.status().notes);
}

#[test]
fn main_other_subvolumes_match_the_kernel() {
    for (spec, file) in [
        (SubvolSpec::Id(5), "btrfs-main.top.walk"),
        (SubvolSpec::Path(b"@home".to_vec()), "btrfs-main.home.walk"),
        (SubvolSpec::Path(b"/@snap".to_vec()), "btrfs-main.snap.walk"),
    ] {
        let mut fs = open("btrfs-main");
        fs.select(&spec).unwrap();
        parity_of("btrfs-main", &fs, file);
    }
}

#[test]
fn subvolumes_are_listed_with_their_paths() {
    let fs = open("btrfs-main");
    let mut paths: Vec<(String, bool)> = fs
        .subvolumes()
        .iter()
        .map(|s| (String::from_utf8_lossy(&s.path).into_owned(), s.read_only))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            (String::new(), false),
            ("@".into(), false),
            ("@/nested".into(), false),
            ("@home".into(), false),
            ("@snap".into(), false),
        ]
    );
    let err = fs
        .subvolume_root(&SubvolSpec::Path(b"@nope".to_vec()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("@nope"), "{err}");
    let err = fs
        .subvolume_root(&SubvolSpec::Id(999))
        .unwrap_err()
        .to_string();
    assert!(err.contains("999"), "{err}");
    // Subvolumes are separate devices, as the kernel shows them.
    let root = fs.root();
    let nested = resolve(&fs, b"/nested", false).unwrap().node;
    assert_ne!(fs.dev(root), fs.dev(nested));
    assert_eq!(fs.metadata(nested).unwrap().ino, 256);
}

#[test]
fn lookup_by_name_hash_agrees_with_the_directory_listing() {
    let fs = open("btrfs-main");
    let dir = resolve(&fs, b"/dir5000", false).unwrap().node;
    let entries = fs.read_dir(dir).unwrap();
    assert_eq!(entries.len(), 5000);
    for e in entries.iter().step_by(97) {
        assert_eq!(fs.lookup(dir, &e.name).unwrap(), Some(e.node));
    }
    assert_eq!(fs.lookup(dir, b"absent").unwrap(), None);
}

#[test]
fn holes_and_preallocation_are_not_data() {
    let fs = open("btrfs-main");
    let sparse = resolve(&fs, b"/sparse", false).unwrap().node;
    let x = fs.extents(sparse).unwrap();
    let data: u64 = x.iter().filter(|e| !e.unwritten).map(|e| e.len).sum();
    assert_eq!(data, 3 * 4096, "{x:?}");
    let pre = resolve(&fs, b"/prealloc", false).unwrap().node;
    let x = fs.extents(pre).unwrap();
    assert!(x.iter().any(|e| e.unwritten), "{x:?}");
    let m = fs.metadata(pre).unwrap();
    assert_eq!(m.file_type, FileType::Regular);
    assert!(m.crtime.is_some());
}

#[test]
fn other_checksum_kinds_match_the_kernel() {
    // xxhash and blake2 are verified only with the checksum helper branch.
    for name in ["btrfs-xxhash", "btrfs-sha256", "btrfs-blake2"] {
        parity(name);
    }
}

#[test]
fn with_no_journal_the_log_tree_is_not_replayed_like_nologreplay() {
    let p = common::fixture("btrfs-log");
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(&p).expect("open image"));
    let fs = Btrfs::open_with(src, &vmrescue::fs::FsOptions { no_journal: true }).unwrap();
    parity_of("btrfs-log", &fs, "btrfs-log.walk");
    assert_eq!(fs.status().notes, [vmrescue::fs::btrfs::LOG_NOTE]);
    assert_eq!(fs.lookup(fs.root(), b"logged").unwrap(), None);
}
