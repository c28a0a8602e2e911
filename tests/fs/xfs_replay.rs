//! The XFS log replayed in memory against the kernel's own recovery: the
//! fixtures of `tests/fixtures/make/xfs-dirty.sh` were shut down with their
//! last changes only in the log, and each carries the kernel's walk after it
//! replayed a copy (`<name>.walk`) and the on-disk state
//! (`<name>.norecovery.walk`, `mount -o ro,norecovery`).

use crate::common;
use crate::ext_support;

use std::path::Path;
use std::sync::Arc;

use ext_support::{assert_same, manifest, walk};
use vmrescue::fs::xfs::{NO_JOURNAL_NOTE, REPLAYED_NOTE, Xfs};
use vmrescue::fs::{FsOptions, FsView};
use vmrescue::io::{FileSource, ReadAt};

const DIRTY: &[&str] = &["xfs-replay-v5", "xfs-replay-wrap"];

fn open_path(p: &Path, no_journal: bool) -> Xfs {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(p).expect("open image"));
    Xfs::open_with(src, &FsOptions { no_journal })
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn open_bytes(bytes: Vec<u8>) -> vmrescue::Result<Xfs> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Xfs::open(src)
}

#[test]
fn replayed_walks_match_the_kernels_recovery() {
    for name in DIRTY {
        let fs = open_path(&common::fixture(name), false);
        assert_same(name, &walk(&fs), &manifest(&format!("{name}.walk")));
        let st = fs.status();
        assert!(st.problems.is_empty(), "{name}: {:?}", st.problems);
        let note = st
            .notes
            .iter()
            .find(|n| n.starts_with(REPLAYED_NOTE))
            .unwrap_or_else(|| panic!("{name}: {:?}", st.notes));
        assert!(note.contains(" transactions, "), "{note}");
    }
}

#[test]
fn no_journal_shows_the_on_disk_state() {
    for name in DIRTY {
        let fs = open_path(&common::fixture(name), true);
        assert_same(
            name,
            &walk(&fs),
            &manifest(&format!("{name}.norecovery.walk")),
        );
        assert_eq!(fs.status().notes, vec![NO_JOURNAL_NOTE.to_string()]);
    }
}

#[test]
fn ls_says_the_log_was_replayed() {
    let image = common::fixture("xfs-replay-v5");
    let out = common::vmrescue(&["ls", image.to_str().unwrap(), "/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("log replayed in memory") || stdout.contains("log replayed in memory"),
        "stdout: {stdout}\nstderr: {err}"
    );
    assert!(stdout.contains("after"), "{stdout}");
}
