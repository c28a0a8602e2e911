//! The NTFS reader on hostile bytes. The first byte picks what the rest feeds:
//! 0: laid over the MFT of a real image (`ntfs.img`, made by
//!    `tests/fixtures/make/ntfs.sh`; found through `NTFS_FUZZ_BASE`,
//!    `VMRESCUE_FIXTURES` or `target/fixtures-built`) from record 0, then
//!    the volume is opened and walked (records, attribute lists, indexes,
//!    runs, compressed units, reparse points, streams);
//! 1: a whole volume of arbitrary bytes (the boot sector checks);
//! 2: one LZNT1 compression unit;
//! 3: a directory index: an `$INDEX_ROOT` value (first 256 bytes) and INDX
//!    blocks of 4096 bytes (the rest), walked with the loop check.
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsView;
use vmrescue::fs::ntfs::{NtfsVolume, index, lznt1};
use vmrescue::io::ReadAt;

/// The base image and the byte position of its MFT.
fn base() -> &'static (Vec<u8>, usize) {
    static BASE: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("NTFS_FUZZ_BASE") {
            candidates.push(p.into());
        }
        if let Some(d) = std::env::var_os("VMRESCUE_FIXTURES") {
            candidates.push(PathBuf::from(d).join("ntfs.img"));
        }
        candidates.push("../target/fixtures-built/ntfs.img".into());
        candidates.push("target/fixtures-built/ntfs.img".into());
        let path = candidates.iter().find(|p| p.exists()).unwrap_or_else(|| {
            panic!("ntfs needs an NTFS image: run tests/fixtures/make/ntfs.sh OUTDIR and set NTFS_FUZZ_BASE=OUTDIR/ntfs.img")
        });
        let img = std::fs::read(path).expect("read the base image");
        let cluster = u64::from(u16::from_le_bytes([img[11], img[12]])) * u64::from(img[13]);
        let mft = u64::from_le_bytes(img[48..56].try_into().unwrap()) * cluster;
        (img, mft as usize)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let (img, mft) = base();
            let mut img = img.clone();
            let n = rest.len().min(img.len() - mft);
            img[*mft..mft + n].copy_from_slice(&rest[..n]);
            let src: Arc<dyn ReadAt> = Arc::new(img);
            if let Ok(fs) = NtfsVolume::open(src) {
                let _ = fs.status();
                walk::walk(&fs);
            }
        }
        1 => {
            let src: Arc<dyn ReadAt> = Arc::new(rest.to_vec());
            if let Ok(fs) = NtfsVolume::open(src) {
                let _ = fs.status();
                walk::walk(&fs);
            }
        }
        2 => {
            if let Ok(out) = lznt1::decompress(rest, 65536) {
                assert!(out.len() <= 65536);
            }
        }
        _ => {
            let (root, blocks) = rest.split_at(rest.len().min(256));
            let _ = index::walk(
                root,
                |vcn| {
                    let at = usize::try_from(vcn).ok().and_then(|v| v.checked_mul(4096));
                    match at.and_then(|a| blocks.get(a..a + 4096)) {
                        Some(b) => Ok(b.to_vec()),
                        None => Err(index::IndexError {
                            place: format!("VCN {vcn}"),
                            at: 0,
                            detail: "out".into(),
                        }),
                    }
                },
                100_000,
            );
        }
    }
});
