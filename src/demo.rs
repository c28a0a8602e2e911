//! The bundled demo disk: a CentOS 6 guest whose `/lib64/libc.so.6` was
//! repointed at a hand-built glibc, built by `assets/make-demo.sh` with real
//! tools (sfdisk, lvm2, mke2fs, mkswap, debugfs, gcc).
//!
//! The disk is 2 GiB but only a few MiB of it hold data, so it is stored in
//! a small sparse container of our own (see [`pack`]): the data extents and
//! their bytes, all in one zstd frame. [`path`] unpacks it once per process
//! to a fresh sparse file in a temporary directory, named like the story's
//! disk (`vm-108-disk-1.raw`); [`cleanup`] removes it.
//!
//! Container layout, after zstd decompression (integers little-endian):
//! `MAGIC` (16 bytes), virtual size (u64), extent count (u64), that many
//! `(offset u64, length u64)` pairs (sorted, not overlapping, inside the
//! size), then the extents' bytes in the same order. Everything else reads
//! as zeros.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};

/// The demo disk's file name once unpacked: the disk of the story.
pub const FILE_NAME: &str = "vm-108-disk-1.raw";

/// The packed demo disk.
static ASSET: &[u8] = include_bytes!("../assets/demo.img.sparse.zst");

/// First bytes of a decompressed container.
const MAGIC: &[u8; 16] = b"vmrescue-sparse1";
/// Granularity of zero detection when packing.
const BLOCK: u64 = 4096;
/// Limits when unpacking: far above the demo, small enough to be safe.
const MAX_EXTENTS: u64 = 1 << 20;
const MAX_DATA: u64 = 1 << 30;

/// The unpacked demo of this process, removed by [`cleanup`].
static UNPACKED: Mutex<Option<(tempfile::TempDir, PathBuf)>> = Mutex::new(None);

/// Path of the demo disk, unpacked on first use into a fresh temporary
/// directory (`$TMPDIR/vmrescue-demo-XXXXXX/vm-108-disk-1.raw`).
pub fn path() -> Result<PathBuf> {
    let mut guard = UNPACKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = guard.as_ref() {
        return Ok(p.clone());
    }
    let dir = tempfile::Builder::new()
        .prefix("vmrescue-demo-")
        .tempdir()
        .map_err(|e| Error::io("temporary directory for the demo image", e))?;
    let p = unpack_into(dir.path())?;
    *guard = Some((dir, p.clone()));
    Ok(p)
}

/// Remove the demo disk unpacked by [`path`], if any.
pub fn cleanup() {
    let mut guard = UNPACKED.lock().unwrap_or_else(|e| e.into_inner());
    *guard = None;
}

/// Unpack the demo disk into `dir` as [`FILE_NAME`]; returns its path.
/// The caller owns the file (for tests and repairs on a private copy).
pub fn unpack_into(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(FILE_NAME);
    unpack(ASSET, &p)?;
    Ok(p)
}

/// The packed demo disk as embedded in the binary.
pub fn asset() -> &'static [u8] {
    ASSET
}

/// Write the disk held in container `packed` to a new sparse file `dst`.
/// Returns the disk's size.
pub fn unpack(packed: &[u8], dst: &Path) -> Result<u64> {
    let corrupt = |detail: String| Error::corrupt("demo container", 0, detail);
    let mut dec = zstd::stream::read::Decoder::new(packed)
        .map_err(|e| Error::io("demo container (zstd)", e))?;
    let mut read = |buf: &mut [u8]| {
        dec.read_exact(buf)
            .map_err(|e| Error::io("demo container (zstd)", e))
    };
    let mut head = [0u8; 32];
    read(&mut head)?;
    if &head[..16] != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let u64_at = |b: &[u8], i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    let size = u64_at(&head, 16);
    let count = u64_at(&head, 24);
    if count > MAX_EXTENTS {
        return Err(corrupt(format!("{count} extents (limit {MAX_EXTENTS})")));
    }
    let mut table = vec![0u8; (count * 16) as usize];
    read(&mut table)?;
    let mut extents = Vec::with_capacity(count as usize);
    let mut end_of_previous = 0u64;
    let mut total = 0u64;
    for pair in table.chunks_exact(16) {
        let (off, len) = (u64_at(pair, 0), u64_at(pair, 8));
        let end = off
            .checked_add(len)
            .filter(|&e| off >= end_of_previous && e <= size)
            .ok_or_else(|| {
                corrupt(format!(
                    "extent at {off} (+{len}) out of order or past {size}"
                ))
            })?;
        total = total.saturating_add(len);
        end_of_previous = end;
        extents.push((off, len));
    }
    if total > MAX_DATA {
        return Err(corrupt(format!("{total} bytes of data (limit {MAX_DATA})")));
    }
    let out = File::create(dst).with_path(dst)?;
    let mut buf = vec![0u8; 1 << 20];
    for (off, len) in extents {
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            read(&mut buf[..n])?;
            out.write_all_at(&buf[..n], off + done).with_path(dst)?;
            done += n as u64;
        }
    }
    out.set_len(size).with_path(dst)?;
    Ok(size)
}

/// Pack the disk image at `image` into a container: only its non-zero 4 KiB
/// blocks are kept (holes are found with `SEEK_DATA`/`SEEK_HOLE`, then zero
/// blocks inside the data are dropped too), compressed with zstd.
pub fn pack(image: &Path) -> Result<Vec<u8>> {
    let file = File::open(image).with_path(image)?;
    let size = file.metadata().with_path(image)?.len();
    let mut extents: Vec<(u64, u64)> = Vec::new();
    let mut data = Vec::new();
    let mut block = vec![0u8; BLOCK as usize];
    for (start, end) in data_ranges(&file, size) {
        let mut at = start - start % BLOCK;
        while at < end {
            let n = (size - at).min(BLOCK) as usize;
            file.read_exact_at(&mut block[..n], at).with_path(image)?;
            if block[..n].iter().any(|&b| b != 0) {
                match extents.last_mut() {
                    Some((o, l)) if *o + *l == at => *l += n as u64,
                    _ => extents.push((at, n as u64)),
                }
                data.extend_from_slice(&block[..n]);
            }
            at += BLOCK;
        }
    }
    let mut raw = Vec::with_capacity(32 + extents.len() * 16 + data.len());
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&size.to_le_bytes());
    raw.extend_from_slice(&(extents.len() as u64).to_le_bytes());
    for (o, l) in &extents {
        raw.extend_from_slice(&o.to_le_bytes());
        raw.extend_from_slice(&l.to_le_bytes());
    }
    raw.extend_from_slice(&data);
    let mut enc =
        zstd::stream::Encoder::new(Vec::new(), 19).map_err(|e| Error::io("zstd encoder", e))?;
    enc.include_checksum(true)
        .map_err(|e| Error::io("zstd encoder", e))?;
    enc.long_distance_matching(true)
        .map_err(|e| Error::io("zstd encoder", e))?;
    std::io::Write::write_all(&mut enc, &raw).map_err(|e| Error::io("zstd encoder", e))?;
    enc.finish().map_err(|e| Error::io("zstd encoder", e))
}

/// The byte ranges of `file` that may hold data, by `SEEK_DATA`/`SEEK_HOLE`
/// (the whole file when the filesystem cannot tell).
fn data_ranges(file: &File, size: u64) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let mut out = Vec::new();
    let mut pos = 0i64;
    let Ok(size_i) = i64::try_from(size) else {
        return vec![(0, size)];
    };
    while pos < size_i {
        let start = match lseek(file, pos, Whence::SeekData) {
            Ok(s) => s,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(_) => return vec![(0, size)],
        };
        let end = match lseek(file, start, Whence::SeekHole) {
            Ok(e) => e.min(size_i),
            Err(_) => size_i,
        };
        if end <= start {
            break;
        }
        out.push((start as u64, end as u64));
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_round_trip_keeps_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.img");
        let f = File::create(&src).unwrap();
        f.set_len(10 << 20).unwrap();
        f.write_all_at(b"hello", 4090).unwrap(); // straddles two blocks
        f.write_all_at(&[7u8; 10000], 5 << 20).unwrap();
        f.write_all_at(b"end", (10 << 20) - 3).unwrap();
        drop(f);
        let packed = pack(&src).unwrap();
        let dst = dir.path().join("dst.img");
        assert_eq!(unpack(&packed, &dst).unwrap(), 10 << 20);
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&dst).unwrap().blocks();
        assert!(
            blocks * 512 < 100 << 10,
            "unpacked file is not sparse: {blocks} blocks"
        );
    }

    #[test]
    fn unpack_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("x");
        assert!(unpack(b"not zstd at all", &dst).is_err());
        let bad = zstd::stream::encode_all(
            &b"vmrescue-sparse1\0\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff"[..],
            1,
        )
        .unwrap();
        assert!(unpack(&bad, &dst).is_err());
        let mut raw = MAGIC.to_vec();
        raw.extend_from_slice(&100u64.to_le_bytes());
        raw.extend_from_slice(&1u64.to_le_bytes());
        raw.extend_from_slice(&90u64.to_le_bytes());
        raw.extend_from_slice(&20u64.to_le_bytes()); // past the end
        let bad = zstd::stream::encode_all(&raw[..], 1).unwrap();
        let e = unpack(&bad, &dst).unwrap_err().to_string();
        assert!(e.contains("past 100"), "{e}");
    }
}
