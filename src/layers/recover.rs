//! Finding volumes whose partition table is lost (zeroed, overwritten).
//!
//! [`search`] looks for what a partition held — filesystem superblocks
//! (ext, XFS, btrfs, FAT, exFAT, NTFS), swap headers and LVM2 PV labels — at
//! the offsets real partitioners start partitions at: sector 63 (DOS-era
//! fdisk), every MiB (2048-sector alignment), and cylinder boundaries of
//! 255 heads × 63 sectors (with the 63-sector gap logical partitions
//! leave). A volume found is skipped as a whole (its size comes from its
//! superblock or label), and the places right after its end are tried
//! first. The number of probes is bounded: on big disks the MiB grid gets
//! coarser, and the search stops after [`MAX_PROBES`] probes.
//!
//! Each probe reads 8 KiB at the candidate offset and 256 bytes at +64 KiB
//! (btrfs); only a hit is probed in full.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::probe::{self, Content, ContentKind};
use crate::io::{ReadAt, Window};

/// Bytes in a sector as partitioners count them.
const SECTOR: u64 = 512;
/// One MiB: the alignment of every partitioner since about 2010.
const MIB: u64 = 1 << 20;
/// A cylinder of the classic 255 heads × 63 sectors geometry.
const CYLINDER: u64 = 255 * 63 * SECTOR;
/// The gap DOS-era tools leave before a partition (and a logical partition
/// after its EBR).
const TRACK: u64 = 63 * SECTOR;
/// At most this many candidate offsets are probed.
pub const MAX_PROBES: u64 = 32768;
/// The MiB grid has at most this many points; bigger disks get a coarser grid.
const MAX_GRID: u64 = 16384;
/// The cylinder grid is used only on disks of at most this many cylinders.
const MAX_CYLINDERS: u64 = 4096;
/// A gap shorter than this between a volume's end and the next volume (or
/// the disk's end) is the tail its filesystem could not use (less than one
/// block): the partition included it.
const TAIL: u64 = 64 * 1024;

/// A volume found by [`search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes: the size its content gives itself, plus a tail
    /// shorter than [`TAIL`] up to the next volume, clipped to the disk.
    pub size: u64,
    /// What it holds.
    pub content: Content,
    /// The size its content claims (before the tail was added or the disk's
    /// end clipped it).
    pub claimed: u64,
}

impl Found {
    /// Where the size came from, in words.
    pub fn size_from(&self) -> &'static str {
        match self.content.kind {
            ContentKind::LvmPv => "PV label",
            ContentKind::Swap => "swap header",
            ContentKind::Vfat | ContentKind::Exfat | ContentKind::Ntfs => "boot sector",
            _ => "superblock",
        }
    }

    /// `recovered: ext4 at 1 MiB, 255.97 MiB (from superblock)`.
    pub fn describe(&self) -> String {
        let at = if self.start.is_multiple_of(MIB) {
            format!("{} MiB", self.start / MIB)
        } else {
            format!("sector {}", self.start / SECTOR)
        };
        format!(
            "recovered: {} at {at}, {} (from {})",
            self.content.kind.name(),
            humansize::format_size(self.claimed, humansize::BINARY),
            self.size_from()
        )
    }
}

/// What [`search`] did.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The volumes found, in disk order, not overlapping.
    pub found: Vec<Found>,
    /// Offsets probed.
    pub probes: u64,
    /// Whether the probe budget ran out before the disk's end.
    pub stopped_at: Option<u64>,
    /// Reads that failed (offset and error), at most a few kept.
    pub errors: Vec<String>,
}

/// Progress of a search: bytes of the disk covered so far, and the disk's size.
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// A progress printer for a terminal: says nothing during the first two
/// seconds, then prints the share covered to stderr at most every second.
pub fn stderr_progress() -> impl Fn(u64, u64) {
    let start = std::time::Instant::now();
    let last = std::cell::Cell::new(start);
    move |done, total| {
        let now = std::time::Instant::now();
        if now.duration_since(start).as_secs() < 2 {
            return;
        }
        if done < total && now.duration_since(last.get()).as_secs() < 1 {
            return;
        }
        last.set(now);
        let pct = if total == 0 {
            100
        } else {
            (u128::from(done) * 100 / u128::from(total)) as u64
        };
        eprintln!("vmrescue: searching the disk for lost volumes: {pct}%");
    }
}

/// Search `disk` for volumes. `progress` is called now and then.
pub fn search(disk: &Arc<dyn ReadAt>, progress: Option<Progress<'_>>) -> Search {
    let size = disk.size();
    let mut out = Search::default();
    let grid = MIB.saturating_mul(size.div_ceil(MIB.saturating_mul(MAX_GRID)).max(1));
    let cylinders = size / CYLINDER <= MAX_CYLINDERS;
    // Offsets to try besides the grids: the classic first partitions, then
    // the places after each volume found.
    let mut extra: BTreeSet<u64> = [TRACK, MIB].into_iter().collect();
    let mut from = SECTOR;
    let mut buf = vec![0u8; 0x10100];
    while let Some(at) = next_candidate(from, grid, cylinders, &extra) {
        if at >= size {
            break;
        }
        if out.probes >= MAX_PROBES {
            out.stopped_at = Some(at);
            break;
        }
        out.probes += 1;
        if let Some(p) = progress
            && out.probes.is_multiple_of(256)
        {
            p(at, size);
        }
        from = at.saturating_add(SECTOR);
        let likely = extra.contains(&at);
        let Some(found) = probe_at(disk, at, size, likely, &mut buf, &mut out.errors) else {
            continue;
        };
        let end = at.saturating_add(found.claimed).min(size);
        // Where the next partition would start: right after, at the next
        // MiB (and a MiB later, past an EBR), at the next cylinder (and a
        // track later, past an EBR).
        let mib = align_up(end, MIB);
        let cyl = align_up(end, CYLINDER);
        for c in [
            Some(end),
            mib,
            mib.and_then(|m| m.checked_add(MIB)),
            cyl,
            cyl.and_then(|c| c.checked_add(TRACK)),
            end.checked_add(TRACK),
        ]
        .into_iter()
        .flatten()
        {
            if c.is_multiple_of(SECTOR) {
                extra.insert(c);
            }
        }
        from = end.max(from);
        out.found.push(found);
    }
    if let Some(p) = progress {
        p(size, size);
    }
    // The unusable tail of a filesystem (less than a block) belongs to its
    // partition: end it at the next boundary (the next volume, the disk's
    // end, a MiB, a cylinder) when that is less than [`TAIL`] away.
    for i in 0..out.found.len() {
        let next = out.found.get(i + 1).map_or(size, |f| f.start);
        let f = &mut out.found[i];
        let end = f.start.saturating_add(f.size);
        let boundary = [Some(next), align_up(end, MIB), align_up(end, CYLINDER)]
            .into_iter()
            .flatten()
            .filter(|&b| b >= end && b <= next && b - end < TAIL)
            .min();
        if let Some(b) = boundary {
            f.size = b - f.start;
        }
    }
    out
}

/// The smallest candidate offset at or after `from`.
fn next_candidate(from: u64, grid: u64, cylinders: bool, extra: &BTreeSet<u64>) -> Option<u64> {
    let mut best = extra.range(from..).next().copied();
    let mut consider = |c: Option<u64>| {
        if let Some(c) = c {
            best = Some(best.map_or(c, |b| b.min(c)));
        }
    };
    consider(align_up(from, grid));
    if cylinders {
        consider(align_up(from, CYLINDER));
        consider(align_up(from.saturating_sub(TRACK), CYLINDER).and_then(|c| c.checked_add(TRACK)));
    }
    best
}

/// `x` rounded up to a multiple of `unit` (`unit` > 0).
fn align_up(x: u64, unit: u64) -> Option<u64> {
    x.div_ceil(unit).checked_mul(unit)
}

/// Look for a volume starting at `at`.
/// `likely`: a place where a partition probably starts (sector 63, 1 MiB,
/// right after a volume found): there a filesystem whose first superblock
/// is gone is looked for by its backups too (a full probe, more reads).
fn probe_at(
    disk: &Arc<dyn ReadAt>,
    at: u64,
    size: u64,
    likely: bool,
    buf: &mut [u8],
    errors: &mut Vec<String>,
) -> Option<Found> {
    const MAX_ERRORS: usize = 8;
    buf.fill(0);
    let left = size - at;
    let head = left.min(0x2000) as usize;
    let mut read = |off: u64, dst: &mut [u8]| match disk.read_exact_at(off, dst) {
        Ok(()) => true,
        Err(e) => {
            if errors.len() < MAX_ERRORS {
                errors.push(format!("byte {off}: {e}"));
            }
            false
        }
    };
    if !read(at, &mut buf[..head]) {
        return None;
    }
    if left >= 0x10100 {
        read(at + 0x10000, &mut buf[0x10000..0x10100]);
    }
    if !likely {
        // Most places are empty: skip the magic table for them.
        if buf[..head].iter().all(|&x| x == 0) && buf[0x10000..].iter().all(|&x| x == 0) {
            return None;
        }
        let quick = probe::probe_bytes(buf);
        if !wanted(quick.kind) || !plausible(quick.kind, buf) {
            return None;
        }
    } else {
        let quick = probe::probe_bytes(buf);
        if wanted(quick.kind) && !plausible(quick.kind, buf) {
            return None;
        }
    }
    let window = Window::new(Arc::clone(disk), at, left);
    let content = probe::probe(&window);
    if !wanted(content.kind) {
        return None;
    }
    let mut claimed = content.size.filter(|&n| n >= 64 * 1024)?;
    if content.kind == ContentKind::Ntfs {
        // The backup boot sector follows the sectors NTFS counts: it is the
        // partition's last sector (and must not be taken for a volume).
        let sector = crate::io::le::u16(buf, 11).map_or(SECTOR, u64::from);
        claimed = claimed.saturating_add(sector);
    }
    Some(Found {
        start: at,
        size: claimed.min(left),
        content,
        claimed,
    })
}

/// The kinds a partition holds and that say their own size (not CD
/// images nor squashfs, which live in files more than in partitions).
fn wanted(kind: ContentKind) -> bool {
    (kind.is_filesystem() && !matches!(kind, ContentKind::Iso9660 | ContentKind::Squashfs))
        || matches!(kind, ContentKind::Swap | ContentKind::LvmPv)
}

/// Checks beyond the magic: an ext superblock (two magic bytes) must be a
/// primary one (group 0) with sane sizes; an LVM2 label must be in the
/// sector it says it is in (seen from a sector earlier, the label of a PV
/// looks like one in its sector 2 and would put the PV a sector early).
fn plausible(kind: ContentKind, b: &[u8]) -> bool {
    use crate::io::le;
    if kind == ContentKind::LvmPv {
        return (0..4u64).any(|sector| {
            let off = (sector * SECTOR) as usize;
            b.get(off..off + 8) == Some(b"LABELONE") && le::u64(b, off + 8) == Some(sector)
        });
    }
    if kind.is_ext() {
        const SB: usize = 1024;
        let ok = || -> Option<bool> {
            Some(
                le::u16(b, SB + 0x5a)? == 0
                    && le::u32(b, SB + 0x18)? <= 6
                    && le::u32(b, SB + 0x20)? > 0
                    && le::u32(b, SB)? > 0
                    && le::u32(b, SB + 0x4)? > 0,
            )
        };
        return ok().unwrap_or(false);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext_at(disk: &mut [u8], at: usize, blocks: u32) {
        let sb = at + 1024;
        disk[sb..sb + 4].copy_from_slice(&128u32.to_le_bytes()); // inodes
        disk[sb + 4..sb + 8].copy_from_slice(&blocks.to_le_bytes());
        disk[sb + 0x18..sb + 0x1c].copy_from_slice(&0u32.to_le_bytes()); // 1 KiB blocks
        disk[sb + 0x20..sb + 0x24].copy_from_slice(&8192u32.to_le_bytes());
        disk[sb + 0x38..sb + 0x3a].copy_from_slice(&[0x53, 0xef]);
    }

    fn run(disk: Vec<u8>) -> Search {
        let src: Arc<dyn ReadAt> = Arc::new(disk);
        search(&src, None)
    }

    #[test]
    fn finds_filesystems_at_sector_63_and_mib_boundaries() {
        let mut disk = vec![0u8; 8 << 20];
        // 2016 KiB from sector 63 leaves a 512-byte tail before 2 MiB.
        ext_at(&mut disk, 63 * 512, 2016);
        ext_at(&mut disk, 2 << 20, 3072);
        let s = run(disk);
        let got: Vec<(u64, u64)> = s.found.iter().map(|f| (f.start, f.size)).collect();
        assert_eq!(got, [(32256, (2 << 20) - 32256), (2 << 20, 3 << 20)]);
        assert_eq!(
            s.found[1].describe(),
            "recovered: ext2 at 2 MiB, 3 MiB (from superblock)"
        );
    }

    #[test]
    fn finds_a_logical_partition_after_a_cylinder_and_track() {
        let mut disk = vec![0u8; 3 * CYLINDER as usize];
        let at = (CYLINDER + TRACK) as usize;
        ext_at(&mut disk, at, 1024);
        let s = run(disk);
        assert_eq!(s.found.len(), 1);
        assert_eq!(s.found[0].start, at as u64);
        assert!(s.found[0].describe().contains("sector 16128"));
    }

    #[test]
    fn backup_superblocks_and_nonsense_are_not_volumes() {
        let mut disk = vec![0u8; 4 << 20];
        ext_at(&mut disk, 1 << 20, 1024);
        disk[(1 << 20) + 1024 + 0x5a] = 1; // s_block_group_nr
        ext_at(&mut disk, 2 << 20, 0); // no blocks
        ext_at(&mut disk, 3 << 20, 1 << 30); // claims more than the disk: clipped
        let s = run(disk);
        assert_eq!(s.found.len(), 1, "{:?}", s.found);
        assert_eq!(s.found[0].start, 3 << 20);
        assert_eq!(s.found[0].size, 1 << 20);
        assert_eq!(s.found[0].claimed, 1 << 40);
    }

    #[test]
    fn a_pv_is_found_at_its_own_start_not_a_sector_early() {
        let mut disk = vec![0u8; 4 << 20];
        let label = (2 << 20) + 512;
        disk[label..label + 8].copy_from_slice(b"LABELONE");
        disk[label + 8..label + 16].copy_from_slice(&1u64.to_le_bytes());
        disk[label + 20..label + 24].copy_from_slice(&32u32.to_le_bytes());
        disk[label + 24..label + 32].copy_from_slice(b"LVM2 001");
        disk[label + 32..label + 64].copy_from_slice(&[b'A'; 32]);
        disk[label + 64..label + 72].copy_from_slice(&(1u64 << 20).to_le_bytes());
        // Something ending a sector before the PV makes the search probe there first.
        ext_at(&mut disk, 1 << 20, 1023);
        let s = run(disk);
        let got: Vec<(u64, ContentKind)> =
            s.found.iter().map(|f| (f.start, f.content.kind)).collect();
        assert_eq!(
            got,
            [(1 << 20, ContentKind::Ext2), (2 << 20, ContentKind::LvmPv)]
        );
        assert_eq!(
            s.found[0].size,
            1 << 20,
            "the 1 KiB tail belongs to the ext volume"
        );
    }

    #[test]
    fn an_ntfs_backup_boot_sector_is_not_a_second_volume() {
        let mut disk = vec![0u8; 4 << 20];
        let mut boot = [0u8; 512];
        boot[3..11].copy_from_slice(b"NTFS    ");
        boot[11..13].copy_from_slice(&512u16.to_le_bytes());
        boot[13] = 8;
        boot[0x28..0x30].copy_from_slice(&2047u64.to_le_bytes()); // sectors
        boot[510] = 0x55;
        boot[511] = 0xaa;
        let start = 1 << 20;
        disk[start..start + 512].copy_from_slice(&boot);
        let backup = start + 2047 * 512;
        disk[backup..backup + 512].copy_from_slice(&boot);
        let s = run(disk);
        let got: Vec<(u64, u64)> = s.found.iter().map(|f| (f.start, f.size)).collect();
        assert_eq!(got, [(1 << 20, 1 << 20)]);
    }

    #[test]
    fn probes_are_bounded_on_huge_disks() {
        struct Huge;
        impl ReadAt for Huge {
            fn read_exact_at(&self, _: u64, buf: &mut [u8]) -> std::io::Result<()> {
                buf.fill(0);
                Ok(())
            }
            fn size(&self) -> u64 {
                u64::MAX / 2
            }
        }
        let src: Arc<dyn ReadAt> = Arc::new(Huge);
        let s = search(&src, None);
        assert!(s.probes <= MAX_PROBES);
        assert!(s.found.is_empty());
    }

    #[test]
    fn read_errors_are_kept_not_fatal() {
        struct Broken;
        impl ReadAt for Broken {
            fn read_exact_at(&self, off: u64, _: &mut [u8]) -> std::io::Result<()> {
                Err(std::io::Error::other(format!("bad sector at {off}")))
            }
            fn size(&self) -> u64 {
                64 << 20
            }
        }
        let src: Arc<dyn ReadAt> = Arc::new(Broken);
        let s = search(&src, None);
        assert!(s.found.is_empty());
        assert_eq!(s.errors.len(), 8);
    }
}
