//! The XFS log replay on hostile log bytes: the input is laid over the
//! internal log of a real dirty image (`xfs-replay-v5.img`, made by
//! `tests/fixtures/make/xfs-dirty.sh`; found through `XFS_LOG_FUZZ_BASE`,
//! `VMRESCUE_FIXTURES` or `target/fixtures-built`), from the log's first
//! block, then the filesystem is opened (the log replayed in memory) and
//! walked.
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsView;
use vmrescue::fs::xfs::Xfs;
use vmrescue::fs::xfs::overlay::Overlay;
use vmrescue::io::ReadAt;

/// The base image and the byte position of its log.
fn base() -> &'static (Arc<dyn ReadAt>, u64) {
    static BASE: OnceLock<(Arc<dyn ReadAt>, u64)> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("XFS_LOG_FUZZ_BASE") {
            candidates.push(p.into());
        }
        if let Some(d) = std::env::var_os("VMRESCUE_FIXTURES") {
            candidates.push(PathBuf::from(d).join("xfs-replay-v5.img"));
        }
        candidates.push("../target/fixtures-built/xfs-replay-v5.img".into());
        candidates.push("target/fixtures-built/xfs-replay-v5.img".into());
        let path = candidates
            .iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!("xfs_log needs a dirty XFS image: run tests/fixtures/make/xfs-dirty.sh OUTDIR and set XFS_LOG_FUZZ_BASE=OUTDIR/xfs-replay-v5.img")
            });
        let img = std::fs::read(path).expect("read the base image");
        let be32 = |o: usize| u32::from_be_bytes(img[o..o + 4].try_into().unwrap());
        let be64 = |o: usize| u64::from_be_bytes(img[o..o + 8].try_into().unwrap());
        let bs = u64::from(be32(4));
        let agblocks = u64::from(be32(84));
        let agblklog = img[124];
        let fsb = be64(48);
        let block = (fsb >> agblklog) * agblocks + (fsb & ((1 << agblklog) - 1));
        (Arc::new(img) as Arc<dyn ReadAt>, block * bs)
    })
}

fuzz_target!(|data: &[u8]| {
    let (img, log) = base();
    let mut sectors = BTreeMap::new();
    for (i, chunk) in data.chunks(512).enumerate() {
        let mut s = vec![0u8; 512];
        s[..chunk.len()].copy_from_slice(chunk);
        sectors.insert(log / 512 + i as u64, s.into_boxed_slice());
    }
    let src: Arc<dyn ReadAt> = Arc::new(Overlay::new(Arc::clone(img), sectors));
    if let Ok(fs) = Xfs::open(src) {
        let _ = fs.status();
        walk::walk(&fs);
    }
});
